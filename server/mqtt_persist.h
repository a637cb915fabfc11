/* Paho persistence callbacks backed by the store (see mqtt_persist.c). */
#ifndef ISLEWATCH_MQTT_PERSIST_H
#define ISLEWATCH_MQTT_PERSIST_H

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

#endif
