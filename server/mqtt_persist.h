/* Paho persistence callbacks backed by the store (see mqtt_persist.c). */
#ifndef ISLEWATCH_MQTT_PERSIST_H
#define ISLEWATCH_MQTT_PERSIST_H

#include <stdbool.h>
#include <stddef.h>

#include <MQTTClientPersistence.h>

struct iw_store;

/* Fill p so that Paho keeps its in-flight state in st (which must outlive the client). */
void iw_mqtt_persistence_init(MQTTClient_persistence *p, struct iw_store *st);

/*
 * The metadata key that keeps the time of receipt given to the QoS 2 message
 * `msgid` of client `client_id` when it had no ts (ingest.c): written with
 * its samples, read back when Paho delivers the same message again after a
 * kill -9, and deleted when a new PUBLISH takes the id (mqtt_persist.c).
 * Outside Paho's "paho/<client id>/" keys, so Paho never sees it. -1 when it
 * does not fit in cap bytes.
 */
#define IW_RECEIPT_KEY_MAX 300
int iw_mqtt_receipt_key(const char *client_id, int msgid, char *out, size_t cap);

/* A QoS 2 PUBLISH as Paho persists it on arrival (its whole packet). */
struct iw_mqtt_publish {
    int msgid;
    bool retained;
    const char *topic;                   /* not NUL-terminated: tlen bytes */
    size_t tlen;
    const char *payload;
    size_t plen;
};

/*
 * Decode the packet b[0..n) of a received QoS 2 PUBLISH (MQTT 3.1.1 when
 * v5 is false, else 5: properties are skipped); out points into b. IW_OK, or
 * IW_E_INVAL for anything else or a packet cut short.
 */
int iw_mqtt_publish_decode(const unsigned char *b, size_t n, bool v5, struct iw_mqtt_publish *out);

/*
 * Call fn for each QoS 2 PUBLISH that client_id received over MQTT 5 and
 * that Paho still keeps ("r5-" records: not yet released by PUBREL), in key
 * order (not arrival order). A record that does not decode is logged and skipped.
 * fn returns non-zero to stop. IW_OK or the store's error.
 */
int iw_mqtt_received_v5_scan(struct iw_store *st, const char *client_id,
                             int (*fn)(void *ctx, const struct iw_mqtt_publish *p), void *ctx);

#endif
