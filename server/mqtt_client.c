/*
 * The broker session (Paho C, MQTTAsync). One client per broker.connections,
 * MQTT 3.1.1 (or 5 with broker.protocol), persistent session and fixed client
 * id, Paho persistence kept in our RocksDB (mqtt_persist.c: QoS 2 messages
 * received but not yet handled survive kill -9, SPEC §2), and our own
 * reconnect loop with capped exponential backoff and jitter that always
 * resubscribes.
 *
 * Why MQTT 5 is offered (bench/RESULTS.md, "QoS 2 under a burst"): over
 * 3.1.1 Paho acknowledges a QoS 2 PUBLISH with PUBREC as it arrives and calls
 * us only at PUBREL, so a blocking callback does not stop it reading, and a
 * broker that runs ahead of its own in-flight limit (mosquitto 2.0.11 does)
 * fills Paho's memory with its backlog. Over MQTT 5 Paho calls us as the
 * PUBLISH arrives, so our callback blocks the reading as with QoS 0 and 1,
 * and the CONNECT's Receive Maximum bounds what the broker may send ahead.
 * The price is in iw_mqtt_replay: Paho sends that PUBREC before it calls us
 * and never delivers the message again, so a kill -9 inside the callback is
 * repaired from the PUBLISH Paho persisted.
 *
 * Threads: Paho calls on_message on its receive thread (ingest path);
 * connect/subscribe results arrive on Paho's threads too; iw_mqtt_tick runs on
 * the main thread. Connection state is an atomic per connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <MQTTAsync.h>

#include "islewatch/clock.h"
#include "islewatch/log.h"
#include "islewatch/stats.h"
#include "daemon_int.h"
#include "mqtt_persist.h"
#include "tls_probe.h"

enum { CONN_DOWN = 0, CONN_CONNECTING = 1, CONN_UP = 2, CONN_DONE = 3 /* a drain, finished */ };

/* A drain (see drain_tick) ends once no message came for this long after its UNSUBSCRIBE. */
enum { DRAIN_QUIET_MS = 3000 };

/* MQTT 5: how many QoS 1 and 2 messages the broker may have in flight to one
 * connection (Receive Maximum). Our callback takes one at a time; a few more
 * keep the pipe full while it writes. */
enum { RECEIVE_MAXIMUM = 32 };

struct iw_mconn {
    struct iw_mqtt *m;
    int idx;
    MQTTAsync client;
    _Atomic int state;
    int64_t next_attempt_ms;              /* main thread only */
    int64_t backoff_ms;                   /* main thread only */
    bool ever_connected;
    char client_id[256];
    struct iw_conn_ingest *ing;
    /* Filters of the last SUBSCRIBE, to unsubscribe the ones a reload drops.
     * Written by whichever thread subscribes (Paho's on connect, the main
     * thread on reload); sub_lock keeps them apart (not the message path). */
    pthread_mutex_t sub_lock;
    char *filters[IW_MAX_SOURCES];
    int filter_qos[IW_MAX_SOURCES];
    int n_filters;
    bool sub_failed;                      /* a SUBSCRIBE failed: the next one sends all */
    char *sent[IW_MAX_SOURCES];           /* the filters of the last SUBSCRIBE, in its order */
    int n_sent;                           /*   (to name the ones a SUBACK refuses) */
    _Atomic bool refused;                 /* the broker refused a filter: retried (iw_mqtt_tick) */
    struct iw_complaint refusals;         /* their log lines: the retries would flood it */
    int64_t sub_retry_ms, sub_backoff_ms; /* main thread only */
    MQTTProperties props;                 /* MQTT 5 CONNECT properties (main thread only) */
    _Atomic bool subscribed;              /* the SUBSCRIBE after its last connect succeeded */
    /* A drain: the persistent session of a client id this daemon used before
     * (broker.connections or broker.client_id changed), connected once to take
     * what it queued and to end its subscriptions (drain_tick). */
    bool drain;
    _Atomic int64_t up_ms;                /* drains only: when it came up */
    _Atomic int64_t last_msg_ms;          /* drains only: its last message's arrival */
    _Atomic uint64_t drained;             /* drains only: messages taken */
};

/*
 * SPEC §5: a subscriber that connects late sees what is firing now, so the
 * retained states on alerts.active_topic must be the firing episodes' and no
 * others. A broker can hold others: restored from an older persistence file
 * or backup, or killed before it wrote a clear. So at every connect of
 * connection 0 the states are read back, on a connection of the check's own
 * (client id "<connection 0's>-check", clean session, no persistence, MQTT
 * 3.1.1): it SUBSCRIBEs to the active topics' filter and to a marker topic,
 * and at the SUBACK publishes a marker there. mosquitto queues a
 * subscription's retained messages before it answers the SUBSCRIBE, so they
 * all arrive before the marker. (A broker that does otherwise makes the
 * reading incomplete; that costs a state set again, never a firing one
 * cleared: alert_pub.c compares.) The publisher compares and corrects, then
 * ends the round (iw_mqtt_retained_finish) and the main thread disconnects.
 *
 * Its own connection, not connection 0: no device message shares a callback
 * with it (the message path has no branch for it), and no command of the
 * check goes through Paho's persisted command queue, which connection 0 has
 * for its alerts (a first version on connection 0 crashed inside Paho's
 * MQTTAsync_unpersistCommand, 2026-12-07). The main thread alone connects
 * and disconnects it (check_tick); Paho's callbacks move `conn` and `state`.
 */
enum {
    RCHK_OFF = 0,
    RCHK_PENDING = 1,                     /* connection 0 came up: the main thread starts it */
    RCHK_READING = 2,                     /* connecting, subscribing */
    RCHK_COLLECTING = 3,                  /* SUBACK seen, marker sent: states are kept */
    RCHK_DONE = 4,                        /* the marker came back */
    RCHK_FAILED = 5,
};
enum { CHK_IDLE = 0, CHK_CONNECTING = 1, CHK_UP = 2, CHK_CLOSING = 3 };
enum { RCHK_MAX_STATES = 100000 };        /* more are not kept: the check is then partial */
enum { CHK_CLOSE_MS = 10000 };            /* a disconnect unanswered this long is taken as done */

struct retained_check {
    _Atomic(char *) filter;               /* set by the publisher; NULL: no check */
    char **retired;                       /* publisher thread only; freed at exit */
    size_t n_retired;
    char marker[300];                     /* immutable once started */
    char client_id[300];                  /* immutable once started */
    MQTTAsync client;                     /* created at start, connected per round; NULL: none */
    /* CHK_*: set by the main thread before it calls Paho to connect or
     * disconnect, and by Paho's callbacks after; seq_cst, though only the
     * value travels (no data is published with it). */
    _Atomic int conn;
    int64_t closing_since;                /* main thread only */
    _Atomic int state;                    /* RCHK_* */
    _Atomic uint64_t round;               /* one per connect of connection 0; the marker's payload */
    pthread_mutex_t lock;                 /* the states read (never a device message's path) */
    struct iw_retained_state *got;
    size_t n_got, cap_got;
    bool partial;                         /* some were not kept */
    const char *round_filter;             /* the filter the round subscribed to */
};

struct iw_mqtt {
    struct iw_daemon *d;
    /* The config at start: a reload changes no connection setting (client id,
     * credentials, TLS, keep-alive, ...) until a restart, so a reconnect never
     * mixes the old password with a new user name; only the content of the
     * password file is read again (reread_password). Kept until exit (daemon.c). */
    const struct iw_config *cfg;
    int n;
    struct iw_mconn *c;                   /* n connections, then the drains: n_all in all */
    int n_all;
    char uri[512];
    char *password;                       /* main thread only (try_connect) */
    bool password_unreadable;             /* the last re-read failed: said once */
    MQTTClient_persistence persist;       /* Paho's store, in our RocksDB */
    unsigned rng;
    bool v5;                              /* broker.protocol: "5" */
    /* The last alert message handed to Paho whose PUBACK/PUBCOMP is awaited:
     * its seq << 16 | its token (for QoS > 0 Paho's token is the MQTT packet
     * id, 1..65535). 0: none. See iw_mqtt_publish and on_delivered. */
    _Atomic uint64_t watch;
    struct iw_complaint pub_refused;      /* MQTT 5: the broker refused an alert message */
    struct iw_complaint clear_refused;    /*   or a retained clear */
    _Atomic uint64_t refused_seq;         /* the lowest seq refused (0: none), on_publish_refused5 */
    _Atomic bool tls_probe_due;           /* a TLS connect failed: say why (iw_mqtt_tick) */
    int64_t next_tls_probe_ms;            /* main thread only: at most one probe a second, */
    int64_t next_tls_log_ms;              /*   and the same reason logged once a minute */
    char tls_why[600];
    struct retained_check snap;           /* the retained alert states read back */
    _Atomic bool stopping;                /* iw_mqtt_stop began: connections close */
};

/* ---- message path ---- */

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct iw_mconn *c = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    int handled;

    /* seq_cst: the reload path swaps the view and then reads this epoch; an
     * even value read after the swap proves this thread will load the new
     * view on its next message (see iw_mqtt_quiesce). */
    atomic_fetch_add(&c->ing->epoch, 1);
    iw_stat_add(&iw_stats.in_callback, 1);
    handled = iw_ingest_message(c->ing, topic, tlen, msg->payload, (size_t)msg->payloadlen,
                                msg->retained != 0, msg->qos == 2 ? msg->msgid : 0);
    atomic_fetch_sub_explicit(&iw_stats.in_callback, 1, memory_order_relaxed);
    atomic_fetch_add(&c->ing->epoch, 1);
    if (c->drain) {                       /* relaxed: read by drain_tick as a hint only */
        atomic_store_explicit(&c->last_msg_ms, iw_now_ms(), memory_order_relaxed);
        atomic_fetch_add_explicit(&c->drained, (uint64_t)handled, memory_order_relaxed);
    }
    if (handled) {
        MQTTAsync_freeMessage(&msg);
        MQTTAsync_free(topic);
    }
    return handled;
}

void iw_mqtt_quiesce(struct iw_mqtt *m)
{
    for (int i = 0; i < m->n_all; i++) {
        uint64_t e = atomic_load(&m->c[i].ing->epoch);
        if ((e & 1) == 0)
            continue;                         /* not inside a message: next one sees the new view */
        while (atomic_load(&m->c[i].ing->epoch) == e) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- rejected messages ---- */

/*
 * s[0..len) as the text of a JSON string into out (cap bytes, NUL-terminated).
 * Returns how many bytes of s it holds: fewer than len when out is full (a
 * control byte takes six characters).
 */
static size_t json_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0, i;
    for (i = 0; i < len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7F) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else if (ch >= 0x80) {
            /* keep valid UTF-8 sequences, replace invalid bytes by U+FFFD */
            size_t n = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
            if (n > 1 && i + n <= len && iw_utf8_valid(s + i, n) && o + n < cap) {
                memcpy(out + o, s + i, n);
                o += n;
                i += n - 1;
            } else {
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
            }
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return i;
}

void iw_ingest_reject(struct iw_conn_ingest *ing, const struct iw_ingest_view *v, int src,
                      const uint8_t *why, size_t n_why, size_t stored, const char *topic,
                      size_t tlen, const char *payload, size_t plen)
{
    const char *tmpl = v->cfg->ingest.rejected_topic;
    struct iw_mqtt *m = ing->d->mqtt;
    char rtopic[512], etopic[1024], esource[256], epayload[8192], msg[10240];
    /* Every reason name is under 20 bytes: IW_REJ_COUNT quoted names always fit. */
    char reasons[IW_REJ_COUNT * 24];
    size_t rl = 0;
    const char *sname = src >= 0 ? v->cfg->sources[src].name : "unknown";
    const char *brace;
    int n;

    if (tmpl == NULL || m == NULL || n_why == 0)
        return;
    for (size_t i = 0; i < n_why && i < IW_REJ_COUNT; i++)
        rl += (size_t)snprintf(reasons + rl, sizeof(reasons) - rl, "%s\"%s\"", i ? "," : "",
                               iw_reject_name((enum iw_reject)why[i]));
    brace = strstr(tmpl, "{source}");
    if (brace != NULL)
        snprintf(rtopic, sizeof(rtopic), "%.*s%s%s", (int)(brace - tmpl), tmpl, sname, brace + 8);
    else
        snprintf(rtopic, sizeof(rtopic), "%s", tmpl);
    (void)json_escape(etopic, sizeof(etopic), topic, tlen);
    /* A source name is any label: a '"' or '\\' in it is valid there, not in JSON. */
    (void)json_escape(esource, sizeof(esource), sname, strlen(sname));
    /* Truncated: past 4096 bytes, or cut short by its escapes. */
    bool cut = json_escape(epayload, sizeof(epayload), payload, plen > 4096 ? 4096 : plen) < plen;
    char ts[40];
    n = snprintf(msg, sizeof(msg), "{\"reason\":\"%s\",\"reasons\":[%s],\"source\":\"%s\","
                 "\"topic\":\"%s\",\"ts\":\"%s\",\"payload\":\"%s\",\"payload_bytes\":%zu,"
                 "\"truncated\":%s,\"samples_stored\":%zu}",
                 iw_reject_name((enum iw_reject)why[0]), reasons, esource, etopic,
                 iw_rfc3339_format(iw_now_ms(), ts, sizeof(ts)), epayload, plen,
                 cut ? "true" : "false", stored);
    if (n > 0 && (size_t)n < sizeof(msg))
        (void)iw_mqtt_publish(m, rtopic, msg, (size_t)n, 0, false, 0);
}

/* ---- connection management ---- */

static void set_broker_gauge(struct iw_mqtt *m)
{
    int up = 1;
    for (int i = 0; i < m->n; i++)
        if (atomic_load_explicit(&m->c[i].state, memory_order_relaxed) != CONN_UP)
            up = 0;
    atomic_store_explicit(&iw_stats.broker_connected, up, memory_order_relaxed);
}

/*
 * Paho calls this (on the receive thread of connection 0) when the broker
 * acknowledged a QoS 1 or 2 message we published. If it is the alert message
 * watched, its seq is the broker's now: recorded in the store ("alert_acked")
 * so that a start after a kill -9 sends it again only when it was not
 * acknowledged (alert_pub.c), and shown in /metrics. One store write per
 * alert message, none per device message.
 */
static void alert_acked(struct iw_mqtt *m, uint64_t seq);

static void on_delivered(void *ctx, MQTTAsync_token token)
{
    struct iw_mconn *c = ctx;
    /* acquire: pairs with the release store in iw_mqtt_publish, so seq and
     * token are one publish's (both in one word, so never mixed). */
    uint64_t w = atomic_load_explicit(&c->m->watch, memory_order_acquire);

    if (w != 0 && (w & 0xffff) == ((uint64_t)token & 0xffff))
        alert_acked(c->m, w >> 16);
}

/*
 * A drain whose connection drops is not connected again: most likely another
 * client uses that client id now (a database copied to a second instance
 * carries the first one's session record), and taking the id back and forth
 * would cut that client off every second and take its messages. Its record
 * stays: the next start tries once more. True when c is such a drain.
 */
static bool drain_lost(struct iw_mconn *c, const char *how)
{
    if (!c->drain)
        return false;
    if (atomic_exchange(&c->state, CONN_DONE) != CONN_DONE)
        IW_LOG_WARN("mqtt", "connection %d: the session of client id \"%s\" %s while its "
                    "messages were being taken; another client may be using that id (a copied "
                    "database?): it is left alone until the next start. If it is an old "
                    "session of this daemon, remove it on the broker", c->idx, c->client_id, how);
    return true;
}

/*
 * MQTT 5: the broker sent DISCONNECT (an administrator's kick, a session
 * taken over, the broker shutting down, ...). Paho calls this instead of
 * connectionLost and then closes the socket: without it the connection
 * would stay marked up and never be made again.
 */
static void on_disconnected5(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
    struct iw_mconn *c = ctx;
    (void)props;
    if (drain_lost(c, "was disconnected by the broker"))
        return;
    IW_LOG_WARN("mqtt", "connection %d to %s: the broker disconnected it (reason %d: %s%s); "
                "reconnecting with backoff", c->idx, c->m->uri, (int)reason,
                MQTTReasonCode_toString(reason),
                reason == MQTTREASONCODE_SESSION_TAKEN_OVER
                ? ": another client connected with the client id; give each islewatchd its own "
                  "broker.client_id" : "");
    atomic_store(&c->subscribed, false);
    atomic_store(&c->state, CONN_DOWN);
    set_broker_gauge(c->m);
}

/*
 * MQTT 5 alert messages report to these two, with their seq as the context
 * (0: a retained clear, which has none): Paho calls on_publish_acked5 for a
 * PUBACK/PUBCOMP that accepts, on_publish_refused5 for one with a reason
 * code of 0x80 or more, e.g. 135 Not authorized from a broker ACL that does
 * not let islewatchd write to the alert topics. (Connection 0 has no
 * deliveryComplete under MQTT 5: Paho calls it for refusals too.)
 * The lowest refused seq is kept in the store ("alert_refused"): the next
 * start sends the messages from it again (alert_pub.c). Until then the
 * acknowledged seq does not pass it, so no later PUBACK (the accepted
 * retained copy of the same seq, say) marks it as delivered.
 * Paho's receive thread of connection 0 only.
 */
static struct iw_mqtt *live_mqtt;         /* the daemon's one client, for the v5 contexts */

static void alert_acked(struct iw_mqtt *m, uint64_t seq)
{
    uint64_t refused = atomic_load_explicit(&m->refused_seq, memory_order_relaxed);
    char buf[24];

    /* relaxed: a gauge written only by connection 0's receive thread (and
     * once at start, before any connection: alert_pub.c). */
    if (seq == 0 || seq <= atomic_load_explicit(&iw_stats.alert_acked_seq, memory_order_relaxed)
        || (refused != 0 && seq >= refused))
        return;
    atomic_store_explicit(&iw_stats.alert_acked_seq, seq, memory_order_relaxed);
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)seq);
    if (iw_store_meta_put(m->d->store, "alert_acked", buf, strlen(buf)) != IW_OK)
        IW_LOG_WARN("alerts", "cannot record that the broker acknowledged seq=%s; after a "
                    "kill -9 it is sent again (harmless: same id and seq)", buf);
}

static void on_publish_acked5(void *ctx, MQTTAsync_successData5 *r)
{
    (void)r;
    if (live_mqtt != NULL)
        alert_acked(live_mqtt, (uint64_t)(uintptr_t)ctx);
}

static void on_publish_refused5(void *ctx, MQTTAsync_failureData5 *r)
{
    struct iw_mqtt *m = live_mqtt;
    uint64_t seq = (uint64_t)(uintptr_t)ctx;
    int reason = r != NULL ? (int)r->reasonCode : 0;
    char buf[24];

    /* Paho also fails a publish it abandons (a negative code, reason 0) when
     * the connection closes: Paho sends that again, it was not refused. */
    if (m == NULL || reason < 0x80)
        return;
    iw_stat_add(&iw_stats.alerts_refused, 1);
    if (seq == 0) {
        iw_complain(&m->clear_refused, IW_LOG_LEVEL_ERROR, "alerts", "the broker refused to clear "
                    "a retained alert state (reason %d: %s); allow user \"%s\" to publish on "
                    "alerts.active_topic in the broker's ACL", reason,
                    MQTTReasonCode_toString((enum MQTTReasonCodes)reason),
                    m->cfg->broker.username ? m->cfg->broker.username : "(none)");
        return;
    }
    uint64_t had = atomic_load_explicit(&m->refused_seq, memory_order_relaxed);
    if (had == 0 || seq < had) {
        atomic_store_explicit(&m->refused_seq, seq, memory_order_relaxed);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)seq);
        if (iw_store_meta_put(m->d->store, "alert_refused", buf, strlen(buf)) != IW_OK)
            IW_LOG_WARN("alerts", "cannot record that the broker refused seq=%s; the next start "
                        "does not send it again", buf);
    }
    if (atomic_load_explicit(&iw_stats.alert_acked_seq, memory_order_relaxed) >= seq) {
        atomic_store_explicit(&iw_stats.alert_acked_seq, seq - 1, memory_order_relaxed);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)(seq - 1));
        if (iw_store_meta_put(m->d->store, "alert_acked", buf, strlen(buf)) != IW_OK)
            IW_LOG_WARN("alerts", "cannot record that seq=%llu is not acknowledged",
                        (unsigned long long)seq);
    }
    iw_complain(&m->pub_refused, IW_LOG_LEVEL_ERROR, "alerts", "the broker refused alert message "
                "seq=%llu (reason %d: %s): subscribers do not get it; allow user \"%s\" to "
                "publish on alerts.topic and alerts.active_topic in the broker's ACL, then restart "
                "islewatchd, which sends the refused messages again", (unsigned long long)seq,
                reason, MQTTReasonCode_toString((enum MQTTReasonCodes)reason),
                m->cfg->broker.username ? m->cfg->broker.username : "(none)");
}

static void on_connlost(void *ctx, char *cause)
{
    struct iw_mconn *c = ctx;
    if (drain_lost(c, "was closed")) {
        if (cause)
            MQTTAsync_free(cause);
        return;
    }
    if (cause != NULL)
        IW_LOG_WARN("mqtt", "connection %d to %s lost (%s); reconnecting with backoff", c->idx,
                    c->m->uri, cause);
    else    /* mosquitto closes the older of two connections with one client id, silently */
        IW_LOG_WARN("mqtt", "connection %d to %s lost (closed without a reason given; if this "
                    "repeats every few seconds, another client may be connecting with the "
                    "client id \"%s\": give each islewatchd its own broker.client_id); "
                    "reconnecting with backoff", c->idx, c->m->uri, c->client_id);
    atomic_store(&c->subscribed, false);
    atomic_store(&c->state, CONN_DOWN);
    set_broker_gauge(c->m);
    if (cause)
        MQTTAsync_free(cause);
}

/* /readyz and the gauge: is a source subscription refused on any connection? */
static void set_refused_gauge(struct iw_mqtt *m)
{
    int refused = 0;
    for (int i = 0; i < m->n; i++)
        refused |= atomic_load(&m->c[i].refused);
    atomic_store_explicit(&iw_stats.broker_sub_refused, refused, memory_order_relaxed);
}

/*
 * The broker refused filters of the last SUBSCRIBE: refused[i] for sent[i]
 * (NULL: the whole SUBSCRIBE failed, every filter is sent again). The refused
 * ones leave c->filters, so the retry (iw_mqtt_tick, with backoff) sends only
 * them: sending the granted ones again would replay their retained messages.
 * Paho's thread; sub_lock keeps c->filters and c->sent consistent.
 */
static void subscribe_refused(struct iw_mconn *c, const bool *refused, int code,
                              const char *message)
{
    char first[600] = "";
    int n = 0;

    pthread_mutex_lock(&c->sub_lock);
    for (int i = 0; i < c->n_sent; i++) {
        if (refused != NULL && !refused[i])
            continue;
        if (n++ == 0)
            snprintf(first, sizeof(first), "%s", c->sent[i]);
        for (int k = 0; refused != NULL && k < c->n_filters; k++)
            if (c->filters[k] != NULL && strcmp(c->filters[k], c->sent[i]) == 0) {
                free(c->filters[k]);
                c->filters[k] = c->filters[--c->n_filters];
                c->filter_qos[k] = c->filter_qos[c->n_filters];
                break;
            }
    }
    if (refused == NULL)
        c->sub_failed = true;
    pthread_mutex_unlock(&c->sub_lock);
    atomic_store(&c->refused, true);
    set_refused_gauge(c->m);
    iw_complain(&c->refusals, IW_LOG_LEVEL_ERROR, "mqtt", "connection %d: the broker refused "
                "the subscription to %d source topic(s) (first: %s; code %d: %s): nothing is "
                "received from them; allow user \"%s\" to read them in the broker's ACL. "
                "islewatchd retries with backoff", c->idx, n, first[0] ? first : "?", code,
                message ? message : "no reason given",
                c->m->cfg->broker.username ? c->m->cfg->broker.username : "(none)");
}

static void subscribe_granted(struct iw_mconn *c)
{
    bool was = atomic_exchange(&c->refused, false);
    atomic_store(&c->subscribed, true);
    set_refused_gauge(c->m);
    if (!c->drain)
        IW_LOG_INFO("mqtt", "connection %d subscribed to %zu source(s)%s", c->idx,
                    atomic_load(&c->m->d->view)->n, was ? " (the broker grants them now)" : "");
}

/* MQTT 3.1.1: granted QoS 0x80 is a refusal. Paho gives the list only for
 * more than one filter; one refused filter goes to on_subscribe_failed. */
static void on_subscribed(void *ctx, MQTTAsync_successData *r)
{
    struct iw_mconn *c = ctx;
    bool refused[IW_MAX_SOURCES] = { false }, any = false;

    pthread_mutex_lock(&c->sub_lock);
    for (int i = 0; r != NULL && c->n_sent > 1 && r->alt.qosList != NULL && i < c->n_sent; i++)
        any |= refused[i] = r->alt.qosList[i] == 0x80;
    pthread_mutex_unlock(&c->sub_lock);
    if (any)
        subscribe_refused(c, refused, 0x80, "refused by the broker");
    else
        subscribe_granted(c);
}

/* A SUBSCRIBE Paho gave up on (a negative code: the connection closed before
 * the SUBACK) is no refusal: the next connect subscribes to everything. */
static void subscribe_abandoned(struct iw_mconn *c, int code)
{
    pthread_mutex_lock(&c->sub_lock);
    c->sub_failed = true;
    pthread_mutex_unlock(&c->sub_lock);
    if (!atomic_load(&c->m->stopping))
        IW_LOG_WARN("mqtt", "connection %d: the SUBSCRIBE was not answered (Paho code %d: the "
                    "connection closed first); it is sent again at the next connect", c->idx,
                    code);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
    struct iw_mconn *c = ctx;
    bool refused[IW_MAX_SOURCES] = { true };
    int code = r ? r->code : 0;
    if (code < 0) {
        subscribe_abandoned(c, code);
        return;
    }
    /* One filter refused (0x80): that one; anything else: the SUBSCRIBE failed. */
    subscribe_refused(c, code == 0x80 ? refused : NULL, code,
                      r && r->message ? r->message : code == 0x80 ? "refused by the broker" : NULL);
}

/* MQTT 5: a SUBACK can succeed as a packet and refuse filters (reason >= 0x80).
 * Paho 1.3 fills alt.sub.reasonCodes only for more than one filter; for one
 * there is reasonCode (and a refusal goes to on_subscribe_failed5). */
static void on_subscribed5(void *ctx, MQTTAsync_successData5 *r)
{
    struct iw_mconn *c = ctx;
    bool refused[IW_MAX_SOURCES] = { false };
    int code = 0;
    if (r != NULL && r->alt.sub.reasonCodeCount > 1 && r->alt.sub.reasonCodes != NULL) {
        for (int i = 0; i < r->alt.sub.reasonCodeCount && i < IW_MAX_SOURCES; i++)
            if (r->alt.sub.reasonCodes[i] >= 0x80) {
                refused[i] = true;
                code = r->alt.sub.reasonCodes[i];
            }
    } else if (r != NULL && r->reasonCode >= 0x80) {
        refused[0] = true;
        code = r->reasonCode;
    }
    if (code != 0)
        subscribe_refused(c, refused, code, MQTTReasonCode_toString((enum MQTTReasonCodes)code));
    else
        subscribe_granted(c);
}

static void on_subscribe_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
    bool refused[IW_MAX_SOURCES] = { true };
    int code = r ? (r->reasonCode ? (int)r->reasonCode : r->code) : 0;
    if (code < 0) {
        subscribe_abandoned(ctx, code);
        return;
    }
    subscribe_refused(ctx, code >= 0x80 ? refused : NULL, code,
                      r && r->message ? r->message
                      : code >= 0x80 ? MQTTReasonCode_toString((enum MQTTReasonCodes)code) : NULL);
}

/*
 * The filters of a persistent session (clean_session false) are kept in the
 * store under "mqtt_filters/<client id>", one "QOS FILTER" line each, so that
 * the first connect after a restart also UNSUBSCRIBEs those of sources that
 * were removed while the daemon was stopped: the broker keeps a session's
 * subscriptions, and would otherwise deliver their topics for ever, each
 * message rejected as no_source.
 */
static void filters_key(const struct iw_mconn *c, char *key, size_t cap)
{
    snprintf(key, cap, "mqtt_filters/%s", c->client_id);
}

/* Under sub_lock: c->filters as they are now. */
static void filters_save(struct iw_mconn *c)
{
    char key[300], *buf;
    size_t len = 0, cap = 1;

    if (c->m->cfg->broker.clean_session)
        return;
    for (int i = 0; i < c->n_filters; i++)
        cap += c->filters[i] != NULL ? strlen(c->filters[i]) + 4 : 0;
    if ((buf = malloc(cap)) == NULL)
        return;
    for (int i = 0; i < c->n_filters; i++)
        if (c->filters[i] != NULL)
            len += (size_t)snprintf(buf + len, cap - len, "%d %s\n", c->filter_qos[i], c->filters[i]);
    filters_key(c, key, sizeof(key));
    if (iw_store_meta_put(c->m->d->store, key, buf, len) != IW_OK)
        IW_LOG_WARN("mqtt", "connection %d: cannot keep its subscriptions in the store; a source "
                    "removed before the next start may stay subscribed", c->idx);
    free(buf);
}

/* At start: the filters the session had, as the previous SUBSCRIBE's. */
static void filters_load(struct iw_mconn *c)
{
    char key[300];
    void *v = NULL;
    size_t len = 0;

    if (c->m->cfg->broker.clean_session)
        return;
    filters_key(c, key, sizeof(key));
    if (iw_store_meta_get(c->m->d->store, key, &v, &len) != IW_OK || v == NULL)
        return;
    const char *p = v, *end = p + len;
    while (p < end && c->n_filters < IW_MAX_SOURCES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        if (nl - p > 2 && p[0] >= '0' && p[0] <= '2' && p[1] == ' ') {
            char *f = strndup(p + 2, (size_t)(nl - p - 2));
            if (f != NULL) {
                c->filter_qos[c->n_filters] = p[0] - '0';
                c->filters[c->n_filters++] = f;
            }
        }
        p = nl + 1;
    }
    free(v);
}

/*
 * A session kept under another client id (broker.client_id or
 * broker.connections changed since it was used) stays on the broker with its
 * subscriptions: it holds the device messages sent while the daemon was
 * stopped, and queues every new one for a client that no longer connects; as
 * a member of a shared subscription it even takes its share of the group's
 * messages away from the connections that read them (3 -> 2 connections lost
 * a third). Each such session becomes a drain (drain_tick): connected once,
 * after our own connections are subscribed, it gives up its subscriptions and
 * hands what it queued to ingest. Its record goes once that is done.
 */
struct abandoned_ctx {
    struct iw_mqtt *m;
    char ids[IW_MAX_CONNECTIONS][256];
    int n, room;
};

static int abandoned_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct abandoned_ctx *a = ctx;
    const size_t plen = strlen("mqtt_filters/");
    const char *id = key + plen;
    int subs = 0, idlen = (int)(klen - plen);

    for (int i = 0; i < a->m->n; i++)
        if (klen - plen == strlen(a->m->c[i].client_id)
            && memcmp(id, a->m->c[i].client_id, klen - plen) == 0)
            return 0;
    for (size_t i = 0; i < vlen; i++)
        subs += ((const char *)val)[i] == '\n';
    if (a->n >= a->room || klen - plen >= sizeof(a->ids[0])) {
        IW_LOG_WARN("mqtt", "the broker still holds the persistent session of client id "
                    "\"%.*s\" (broker.client_id or broker.connections changed since it was "
                    "used), with %d source topic(s), and no connection is left to take its "
                    "messages (at most %d in all): remove the session on the broker", idlen, id,
                    subs, IW_MAX_CONNECTIONS);
        return 0;
    }
    IW_LOG_WARN("mqtt", "the broker still holds the persistent session of client id \"%.*s\" "
                "(broker.client_id or broker.connections changed since it was used), with %d "
                "source topic(s): once the connections are subscribed, islewatchd takes the "
                "messages it queued and ends its subscriptions", idlen, id, subs);
    snprintf(a->ids[a->n++], sizeof(a->ids[0]), "%.*s", idlen, id);
    return 0;
}

/*
 * SUBSCRIBE to the sources of the current view and UNSUBSCRIBE the filters of
 * the previous one that it dropped. `all` (on connect) subscribes to every
 * filter; otherwise (on reload) only to the new ones and those whose QoS
 * changed: a broker sends its retained messages again to every SUBSCRIBE, and
 * a retained heartbeat replayed by a reload would be a message the device did
 * not send (an absence alert resolved, SPEC §3).
 */
static void subscribe_all(struct iw_mconn *c, bool all)
{
    const struct iw_ingest_view *v = atomic_load_explicit(&c->m->d->view, memory_order_acquire);
    const struct iw_config *cfg = v->cfg;
    char *filters[IW_MAX_SOURCES], *gone[IW_MAX_SOURCES], *fresh[IW_MAX_SOURCES];
    int qos[IW_MAX_SOURCES], fresh_qos[IW_MAX_SOURCES];
    int n = 0, n_gone = 0, n_fresh = 0;

    for (size_t i = 0; i < v->n && n < IW_MAX_SOURCES && !c->drain; i++) {
        char buf[600];
        if (c->m->n > 1)                  /* the connections open, not a reloaded count */
            snprintf(buf, sizeof(buf), "$share/%s/%s", cfg->broker.share_group, v->pat[i].filter);
        else
            snprintf(buf, sizeof(buf), "%s", v->pat[i].filter);
        filters[n] = strdup(buf);
        qos[n] = cfg->sources[i].qos;
        n++;
    }
    pthread_mutex_lock(&c->sub_lock);
    all = all || c->sub_failed;
    c->sub_failed = false;
    /* Filters to subscribe to: all, or those the previous SUBSCRIBE lacked. */
    for (int k = 0; k < n; k++) {
        bool had = false;
        for (int i = 0; i < c->n_filters && !all && !had; i++)
            had = filters[k] != NULL && strcmp(filters[k], c->filters[i]) == 0 &&
                  qos[k] == c->filter_qos[i];
        if (!had && filters[k] != NULL) {
            fresh[n_fresh] = filters[k];
            fresh_qos[n_fresh++] = qos[k];
        }
    }
    /* Filters of the previous config that the new one no longer has. */
    for (int i = 0; i < c->n_filters; i++) {
        bool kept = false;
        for (int k = 0; k < n && !kept; k++)
            kept = filters[k] != NULL && strcmp(filters[k], c->filters[i]) == 0;
        if (kept)
            free(c->filters[i]);
        else
            gone[n_gone++] = c->filters[i];
    }
    for (int i = 0; i < n; i++) {
        c->filters[i] = filters[i] ? strdup(filters[i]) : NULL;
        c->filter_qos[i] = qos[i];
    }
    c->n_filters = n;
    filters_save(c);
    if (n_fresh > 0) {
        for (int i = 0; i < c->n_sent; i++)
            free(c->sent[i]);
        c->n_sent = 0;
        for (int i = 0; i < n_fresh; i++)
            if ((c->sent[c->n_sent] = strdup(fresh[i])) != NULL)
                c->n_sent++;
    }
    pthread_mutex_unlock(&c->sub_lock);

    if (n_fresh > 0) {
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        if (c->m->v5) {
            ro.onSuccess5 = on_subscribed5;
            ro.onFailure5 = on_subscribe_failed5;
        } else {
            ro.onSuccess = on_subscribed;
            ro.onFailure = on_subscribe_failed;
        }
        ro.context = c;
        int rc = MQTTAsync_subscribeMany(c->client, n_fresh, fresh, fresh_qos, &ro);
        if (rc != MQTTASYNC_SUCCESS)
            IW_LOG_ERROR("mqtt", "connection %d: cannot send SUBSCRIBE (code %d)", c->idx, rc);
    }
    /* Only then UNSUBSCRIBE (Paho sends in order): a message the broker
     * handled between the two would match neither the old filter nor a new
     * one that covers it (a widened topic) and be lost (SPEC §3: a reload
     * drops no message). Covered by both meanwhile, it may come twice; its
     * store is idempotent. */
    if (n_gone > 0) {
        MQTTAsync_responseOptions uo = MQTTAsync_responseOptions_initializer;
        if (MQTTAsync_unsubscribeMany(c->client, n_gone, gone, &uo) != MQTTASYNC_SUCCESS)
            IW_LOG_WARN("mqtt", "connection %d: cannot unsubscribe from %d dropped filter(s)",
                        c->idx, n_gone);
        else
            IW_LOG_INFO("mqtt", "connection %d unsubscribed from %d filter(s) the config dropped "
                        "(first: %s)", c->idx, n_gone, gone[0]);
        for (int i = 0; i < n_gone; i++)
            free(gone[i]);
    }
    for (int i = 0; i < n; i++)
        free(filters[i]);
}

/* ---- reading back the retained alert states (see struct retained_check) ---- */

/* topic[0..len) matches filter, whose wildcards are whole '+' levels only. */
static bool filter_match(const char *f, const char *t, size_t len)
{
    const char *end = t + len;
    for (;;) {
        if (*f == '+') {
            while (t < end && *t != '/')
                t++;
            f++;
        } else {
            for (; *f != '\0' && *f != '/'; f++, t++)
                if (t == end || *t != *f)
                    return false;
        }
        if (*f == '\0')
            return t == end;
        if (t == end || *t != '/')          /* *f == '/': the next level */
            return false;
        f++;
        t++;
    }
}

/*
 * The check's connection (see struct retained_check): the marker ends a
 * round; the retained states on the active topics' filter that came with
 * the SUBSCRIBE are kept for the publisher; the rest (live copies of our own
 * publishes, a stale round's marker) are dropped.
 */
static void check_take(struct iw_mqtt *m, const char *topic, size_t tlen,
                       const MQTTAsync_message *msg)
{
    struct retained_check *k = &m->snap;
    const char *f = atomic_load_explicit(&k->filter, memory_order_acquire);

    if (tlen == strlen(k->marker) && memcmp(topic, k->marker, tlen) == 0) {
        char buf[24];
        int expect = RCHK_COLLECTING;
        size_t n = msg->payloadlen > 0 && (size_t)msg->payloadlen < sizeof(buf)
                       ? (size_t)msg->payloadlen : 0;
        if (n > 0)
            memcpy(buf, msg->payload, n);
        buf[n] = '\0';
        /* acq_rel: the states appended before (under lock) are the
         * publisher's once it reads DONE with acquire (iw_mqtt_retained_poll). */
        if (strtoull(buf, NULL, 10) == atomic_load(&k->round))
            atomic_compare_exchange_strong_explicit(&k->state, &expect, RCHK_DONE,
                                                    memory_order_acq_rel, memory_order_relaxed);
        return;
    }
    if (f == NULL || !filter_match(f, topic, tlen) || !msg->retained || msg->payloadlen <= 0
        || atomic_load_explicit(&k->state, memory_order_acquire) != RCHK_COLLECTING)
        return;
    pthread_mutex_lock(&k->lock);
    if (k->n_got == k->cap_got && k->cap_got < RCHK_MAX_STATES) {
        size_t cap = k->cap_got ? k->cap_got * 2 : 64;
        struct iw_retained_state *v = realloc(k->got, cap * sizeof(*v));
        if (v != NULL) {
            k->got = v;
            k->cap_got = cap;
        }
    }
    struct iw_retained_state *e = k->n_got < k->cap_got ? &k->got[k->n_got] : NULL;
    if (e != NULL && (e->topic = strndup(topic, tlen)) != NULL
        && (e->payload = strndup(msg->payload, (size_t)msg->payloadlen)) != NULL) {
        e->len = (size_t)msg->payloadlen;
        k->n_got++;
    } else {
        if (e != NULL)
            free(e->topic);
        k->partial = true;
    }
    pthread_mutex_unlock(&k->lock);
}

static int on_check_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    check_take(ctx, topic, topic_len > 0 ? (size_t)topic_len : strlen(topic), msg);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* A round that has not ended fails; say why once (not when the daemon is stopping). */
static void check_failed(struct iw_mqtt *m, const char *what, int code)
{
    int st = atomic_load(&m->snap.state);
    while ((st == RCHK_READING || st == RCHK_COLLECTING)
           && !atomic_compare_exchange_weak(&m->snap.state, &st, RCHK_FAILED))
        ;
    if ((st == RCHK_READING || st == RCHK_COLLECTING) && !atomic_load(&m->stopping))
        IW_LOG_WARN("alerts", "cannot read back the retained alert states on %s: %s (code %d); "
                    "check that the broker lets client id \"%s\" connect, subscribe to that "
                    "topic, and subscribe and publish to %s", atomic_load(&m->snap.filter), what,
                    code, m->snap.client_id, m->snap.marker);
}

static void on_check_subscribed(void *ctx, MQTTAsync_successData *r)
{
    struct iw_mqtt *m = ctx;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    char buf[24];
    int expect = RCHK_READING, rc;

    if (r != NULL && r->alt.qosList != NULL && (r->alt.qosList[0] >= 0x80 || r->alt.qosList[1] >= 0x80)) {
        /* [0] the active topics' filter, [1] the marker topic */
        char what[400];
        int k = r->alt.qosList[0] >= 0x80 ? 0 : 1;
        snprintf(what, sizeof(what), "the broker refused the SUBSCRIBE to %s",
                 k == 0 ? atomic_load(&m->snap.filter) : m->snap.marker);
        check_failed(m, what, r->alt.qosList[k]);
        return;
    }
    /* Collecting from now: the retained states queued with the SUBACK come
     * next, then the marker. */
    if (!atomic_compare_exchange_strong(&m->snap.state, &expect, RCHK_COLLECTING))
        return;
    msg.payloadlen = snprintf(buf, sizeof(buf), "%llu",
                              (unsigned long long)atomic_load(&m->snap.round));
    msg.payload = buf;
    msg.qos = 1;
    rc = MQTTAsync_sendMessage(m->snap.client, m->snap.marker, &msg, NULL);
    if (rc != MQTTASYNC_SUCCESS)
        check_failed(m, "cannot publish its marker", rc);
}

static void on_check_subscribe_failed(void *ctx, MQTTAsync_failureData *r)
{
    check_failed(ctx, "the SUBSCRIBE failed", r ? r->code : 0);
}

static void on_check_connected(void *ctx, MQTTAsync_successData *r)
{
    struct iw_mqtt *m = ctx;
    struct retained_check *k = &m->snap;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    (void)r;

    atomic_store(&k->conn, CHK_UP);
    if (atomic_load(&k->state) != RCHK_READING)
        return;                           /* ended meanwhile: check_tick disconnects */
    ro.onSuccess = on_check_subscribed;
    ro.onFailure = on_check_subscribe_failed;
    ro.context = m;
    /* round_filter: set by check_tick before the connect, kept until exit. */
    char *filters[2] = { (char *)k->round_filter, k->marker };
    int qos[2] = { 1, 1 };
    int rc = MQTTAsync_subscribeMany(k->client, 2, filters, qos, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        check_failed(m, "cannot send the SUBSCRIBE", rc);
}

static void on_check_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
    struct iw_mqtt *m = ctx;
    atomic_store(&m->snap.conn, CHK_IDLE);
    check_failed(m, "the connect failed", r ? r->code : 0);
}

static void on_check_connlost(void *ctx, char *cause)
{
    struct iw_mqtt *m = ctx;
    atomic_store(&m->snap.conn, CHK_IDLE);
    check_failed(m, "the connection was lost", 0);
    if (cause)
        MQTTAsync_free(cause);
}

static void on_check_closed(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    atomic_store(&((struct iw_mqtt *)ctx)->snap.conn, CHK_IDLE);
}

static void on_check_close_failed(void *ctx, MQTTAsync_failureData *r)
{
    (void)r;
    atomic_store(&((struct iw_mqtt *)ctx)->snap.conn, CHK_IDLE);
}

static void check_states_free(struct retained_check *k)
{
    for (size_t i = 0; i < k->n_got; i++) {
        free(k->got[i].topic);
        free(k->got[i].payload);
    }
    k->n_got = 0;
    k->partial = false;
}

/* Connection 0 is up (a Paho thread): a new round, which check_tick starts. */
static void check_request(struct iw_mqtt *m)
{
    if (m->snap.client == NULL)
        return;
    atomic_fetch_add(&m->snap.round, 1);
    atomic_store(&m->snap.state, RCHK_PENDING);
}

static void check_close(struct iw_mqtt *m, int64_t now)
{
    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
    dopt.timeout = 1000;
    dopt.onSuccess = on_check_closed;
    dopt.onFailure = on_check_close_failed;
    dopt.context = m;
    m->snap.closing_since = now;
    atomic_store(&m->snap.conn, CHK_CLOSING);
    if (MQTTAsync_disconnect(m->snap.client, &dopt) != MQTTASYNC_SUCCESS)
        atomic_store(&m->snap.conn, CHK_IDLE);
}

static void conn_credentials(struct iw_mqtt *m, MQTTAsync_connectOptions *co,
                             MQTTAsync_SSLOptions *ssl);

/*
 * Main thread: connect the check's connection for a pending round (after
 * closing the one of an earlier round), and close it once the round is over.
 */
static void check_tick(struct iw_mqtt *m, int64_t now)
{
    struct retained_check *k = &m->snap;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    int st = atomic_load(&k->state), cs = atomic_load(&k->conn);

    if (k->client == NULL)
        return;
    if (cs == CHK_CLOSING && now - k->closing_since >= CHK_CLOSE_MS) {
        atomic_store(&k->conn, CHK_IDLE);     /* no answer: Paho's own timeout has passed */
        cs = CHK_IDLE;
    }
    if (cs == CHK_UP && st != RCHK_READING && st != RCHK_COLLECTING) {
        check_close(m, now);                  /* over, or a newer round waits for it */
        return;
    }
    if (st != RCHK_PENDING || cs != CHK_IDLE)
        return;
    char *f = atomic_load_explicit(&k->filter, memory_order_acquire);
    int expect = RCHK_PENDING;
    pthread_mutex_lock(&k->lock);
    check_states_free(k);
    k->round_filter = f;
    pthread_mutex_unlock(&k->lock);
    if (!atomic_compare_exchange_strong(&k->state, &expect, f != NULL ? RCHK_READING : RCHK_OFF)
        || f == NULL)
        return;
    co.cleansession = 1;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.keepAliveInterval = 30;
    co.connectTimeout = 10;
    co.onSuccess = on_check_connected;
    co.onFailure = on_check_connect_failed;
    co.context = m;
    conn_credentials(m, &co, &ssl);
    atomic_store(&k->conn, CHK_CONNECTING);
    int rc = MQTTAsync_connect(k->client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        atomic_store(&k->conn, CHK_IDLE);
        check_failed(m, "cannot start the connect", rc);
    }
}

int iw_mqtt_retained_watch(struct iw_mqtt *m, const char *tmpl)
{
    char buf[1024];
    size_t o = 0;
    bool var_level = false;

    if (m == NULL)
        return IW_OK;
    /* The template's topics, as a filter: a level with a {placeholder} is '+'. */
    for (const char *t = tmpl;; t++) {
        if (*t == '/' || *t == '\0') {
            if (var_level)
                buf[o++] = '+';
            if (*t == '\0')
                break;
            buf[o++] = '/';
            var_level = false;
            continue;
        }
        if (*t == '{')
            var_level = true;
        if (!var_level)
            buf[o++] = *t;
        if (o + 2 >= sizeof(buf))
            return IW_E_INVAL;
    }
    buf[o] = '\0';
    char *old = atomic_load(&m->snap.filter);
    if (old != NULL && strcmp(old, buf) == 0)
        return IW_OK;
    char *f = strdup(buf);
    char **r = old != NULL ? realloc(m->snap.retired, (m->snap.n_retired + 1) * sizeof(*r)) : NULL;
    if (f == NULL || (old != NULL && r == NULL)) {
        free(f);
        return IW_E_NOMEM;
    }
    if (old != NULL) {
        m->snap.retired = r;
        r[m->snap.n_retired++] = old;   /* a delivery may still be reading it */
    }
    /* release: pairs with the acquire loads in check_begin and check_take. */
    atomic_store_explicit(&m->snap.filter, f, memory_order_release);
    return IW_OK;
}

enum iw_retained_check iw_mqtt_retained_poll(struct iw_mqtt *m, uint64_t *round)
{
    if (m == NULL)
        return IW_RCHK_NONE;
    /* acquire: pairs with the marker's acq_rel exchange to DONE. */
    int st = atomic_load_explicit(&m->snap.state, memory_order_acquire);
    *round = atomic_load(&m->snap.round);
    switch (st) {
    case RCHK_PENDING: case RCHK_READING: case RCHK_COLLECTING: return IW_RCHK_READING;
    case RCHK_DONE: return IW_RCHK_DONE;
    case RCHK_FAILED: return IW_RCHK_FAILED;
    default: return IW_RCHK_NONE;
    }
}

int iw_mqtt_retained_finish(struct iw_mqtt *m, struct iw_retained_state **v, size_t *n,
                            bool *partial)
{
    struct retained_check *k = &m->snap;
    int rc = IW_OK;

    *v = NULL;
    *n = 0;
    *partial = false;
    pthread_mutex_lock(&k->lock);
    if (atomic_load(&k->state) == RCHK_DONE) {
        /* The states of a round under a filter since replaced are not the
         * ones the publisher compares against: none. */
        if (k->round_filter == atomic_load(&k->filter)) {
            *v = k->got;
            *n = k->n_got;
            *partial = k->partial;
            k->got = NULL;
            k->n_got = k->cap_got = 0;
        } else {
            rc = IW_E_INVAL;
        }
    }
    check_states_free(k);
    /* Over, unless connection 0 came up again meanwhile (PENDING: its round
     * comes next). A marker or SUBACK of this round still on its way finds
     * the state moved on and does nothing. */
    int st = atomic_load(&k->state);
    while (st != RCHK_PENDING && st != RCHK_OFF
           && !atomic_compare_exchange_weak(&k->state, &st, RCHK_OFF))
        ;
    pthread_mutex_unlock(&k->lock);
    return rc;                            /* check_tick disconnects */
}

const char *iw_mqtt_retained_who(const struct iw_mqtt *m, const char **marker)
{
    *marker = m->snap.marker;
    return m->snap.client_id;
}

void iw_mqtt_retained_free(struct iw_retained_state *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].topic);
        free(v[i].payload);
    }
    free(v);
}

static void connected(struct iw_mconn *c, bool present)
{
    if (c->drain) {
        /* No SUBSCRIBE: every filter of its session is "gone" (subscribe_all),
         * so the broker stops queueing for it; what it holds still comes. */
        IW_LOG_INFO("mqtt", "connection %d up as \"%s\" (session %s): taking the messages it "
                    "held", c->idx, c->client_id, present ? "present" : "new");
        c->up_ms = iw_now_ms();
        atomic_store(&c->state, CONN_UP);
        subscribe_all(c, true);
        return;
    }
    if (c->ever_connected)
        iw_stat_add(&iw_stats.broker_reconnects, 1);
    c->ever_connected = true;
    IW_LOG_INFO("mqtt", "connection %d up to %s as \"%s\" (session %s)", c->idx, c->m->uri,
                c->client_id, present ? "present" : "new");
    atomic_store(&c->state, CONN_UP);
    set_broker_gauge(c->m);
    /* release/acquire with the publisher's exchange: only a flag, no data
     * travels with it (the publisher re-reads its own active states).
     * No session: a broker restarted without persistence has lost its
     * retained messages too. With clean_session true every connect finds
     * none, so nothing tells a lost store from a kept one: set them again
     * at every connect (retained only, as published: no alert is re-sent). */
    if (c->idx == 0)
        check_request(c->m);              /* before the flag: the publisher waits for it */
    if (c->idx == 0 && !present)
        atomic_store_explicit(&c->m->d->retained_lost, true, memory_order_release);
    /* Always resubscribe: a broker may keep the session but lose subscriptions. */
    subscribe_all(c, true);
}

static void on_connected(void *ctx, MQTTAsync_successData *r)
{
    connected(ctx, r != NULL && r->alt.connect.sessionPresent);
}

static void on_connected5(void *ctx, MQTTAsync_successData5 *r)
{
    connected(ctx, r != NULL && r->alt.connect.sessionPresent);
}

/* A broker's refusal (MQTT 3.1.1 CONNACK return codes 1..5) in words, with what to check. */
static const char *connack_refusal(int code)
{
    switch (code) {
    case 1: return "it does not accept MQTT 3.1.1; use a broker that does";
    case 2: return "it rejected the client id; check broker.client_id";
    case 3: return "server unavailable; check the broker's own log";
    case 4: return "bad user name or password; check broker.username and broker.password_file";
    case 5: return "not authorized; check broker.username and broker.password_file, and the "
                   "broker's ACL";
    default: return NULL;
    }
}

/* The same for an MQTT 5 CONNACK's reason code (0x80 and above). */
static const char *connack_refusal5(int reason)
{
    switch (reason) {
    case 0x84: return "it does not accept MQTT 5; set broker.protocol: \"3.1.1\"";
    case 0x85: return "it rejected the client id; check broker.client_id";
    case 0x86: return "bad user name or password; check broker.username and broker.password_file";
    case 0x87: return "not authorized; check broker.username and broker.password_file, and the "
                      "broker's ACL";
    case 0x88: case 0x89: return "server unavailable or busy; check the broker's own log";
    case 0x8A: return "this client is banned; check the broker's configuration";
    default: return reason >= 0x80 ? "see the broker's own log" : NULL;
    }
}

static void connect_failed(struct iw_mconn *c, int code, const char *refusal, const char *message)
{
    if (refusal != NULL)
        IW_LOG_ERROR("mqtt", "connection %d: the broker at %s refused the connection (CONNACK "
                     "code %d): %s; will retry", c->idx, c->m->uri, code, refusal);
    else if (strncmp(c->m->uri, "ssl://", 6) == 0)
        atomic_store(&c->m->tls_probe_due, true);     /* OpenSSL's reason, next tick */
    if (refusal == NULL)
        IW_LOG_WARN("mqtt", "connection %d to %s failed (code %d: %s)%s; will retry", c->idx,
                    c->m->uri, code, message ? message : "no reason given",
                    strncmp(c->m->uri, "ssl://", 6) == 0
                        ? (c->m->cfg->broker.tls_cert_file != NULL
                           ? " (is the broker up, its certificate signed by broker.tls.ca_file or "
                             "a system CA and issued for the host in broker.url, and "
                             "broker.tls.cert_file a valid certificate the broker's CA signed, "
                             "with key_file its key? the \"TLS with\" line says which)"
                           : " (is the broker up, and its certificate signed by broker.tls.ca_file "
                             "or a system CA and issued for the host in broker.url? the "
                             "\"TLS with\" line says which; a broker that requires a client "
                             "certificate needs broker.tls.cert_file and key_file)")
                        : " (is the broker running and reachable there? check broker.url)");
    atomic_store(&c->state, CONN_DOWN);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData *r)
{
    /* Paho reports a CONNACK refusal with its return code (> 0); its own failures are < 0. */
    connect_failed(ctx, r ? r->code : 0, r ? connack_refusal(r->code) : NULL,
                   r ? r->message : NULL);
}

static void on_connect_failed5(void *ctx, MQTTAsync_failureData5 *r)
{
    /* Paho 1.3 puts a CONNACK's reason in code, not always in reasonCode. */
    int reason = r == NULL ? 0 : (int)r->reasonCode >= 0x80 ? (int)r->reasonCode
                 : r->code >= 0x80 ? r->code : 0;
    connect_failed(ctx, reason >= 0x80 ? reason : r ? r->code : 0, connack_refusal5(reason),
                   r ? r->message : NULL);
}

static int read_password(const char *file, char **out, struct iw_diag *diag);

/*
 * broker.password_file is read again before every connect attempt: the
 * refusal says to check it, and an operator who fixes or rotates the password
 * there expects the next attempt to use it without a restart (its path, like
 * every connection setting, is the one read at start). Unreadable now, the
 * password read before stays.
 */
static void reread_password(struct iw_mqtt *m)
{
    const char *file = m->cfg->broker.password_file;
    struct iw_diag diag = {0};
    char *pw = NULL;

    if (file == NULL)
        return;
    if (read_password(file, &pw, &diag) != IW_OK) {
        if (!m->password_unreadable)
            IW_LOG_WARN("mqtt", "%s; connecting with the password read before",
                        iw_diag_first(&diag));
        iw_diag_fini(&diag);
        m->password_unreadable = true;
        return;
    }
    m->password_unreadable = false;
    if (m->password != NULL && strcmp(pw, m->password) == 0) {
        free(pw);
        return;
    }
    IW_LOG_INFO("mqtt", "broker.password_file %s changed: connecting with its new password", file);
    free(m->password);                  /* Paho keeps its own copy of what it was given */
    m->password = pw;
}

/* The user name, password and TLS settings of every connection to the broker. */
static void conn_credentials(struct iw_mqtt *m, MQTTAsync_connectOptions *co,
                             MQTTAsync_SSLOptions *ssl)
{
    const struct iw_config *cfg = m->cfg;
    if (cfg->broker.username)
        co->username = cfg->broker.username;
    if (m->password)
        co->password = m->password;
    if (strncmp(m->uri, "ssl://", 6) == 0) {
        ssl->trustStore = cfg->broker.tls_ca_file;
        ssl->keyStore = cfg->broker.tls_cert_file;
        ssl->privateKey = cfg->broker.tls_key_file;
        ssl->enableServerCertAuth = 1;
        ssl->verify = 1;                /* the certificate must be for the host in broker.url */
        co->ssl = ssl;
    }
}

static void try_connect(struct iw_mqtt *m, struct iw_mconn *c)
{
    const struct iw_config *cfg = m->cfg;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;

    reread_password(m);
    if (m->v5) {
        /* A persistent session is one that never expires (3.1.1's clean
         * session false); Receive Maximum bounds the broker's sending ahead. */
        MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL };
        co = co5;
        co.cleanstart = cfg->broker.clean_session;
        MQTTProperties_free(&c->props);
        p.value.integer4 = cfg->broker.clean_session ? 0 : 0xFFFFFFFFu;
        MQTTProperties_add(&c->props, &p);
        p.identifier = MQTTPROPERTY_CODE_RECEIVE_MAXIMUM;
        p.value.integer2 = RECEIVE_MAXIMUM;
        MQTTProperties_add(&c->props, &p);
        co.connectProperties = &c->props;
        co.onSuccess5 = on_connected5;
        co.onFailure5 = on_connect_failed5;
    } else {
        co.cleansession = cfg->broker.clean_session;
        co.MQTTVersion = MQTTVERSION_3_1_1;
        co.onSuccess = on_connected;
        co.onFailure = on_connect_failed;
    }
    co.keepAliveInterval = (int)(cfg->broker.keepalive_ms / 1000);
    co.connectTimeout = 10;
    co.context = c;
    co.automaticReconnect = 0;          /* ours: backoff with jitter, always resubscribe */
    co.maxInflight = 65535;
    conn_credentials(m, &co, &ssl);
    atomic_store(&c->subscribed, false);
    atomic_store(&c->state, CONN_CONNECTING);
    int rc = MQTTAsync_connect(c->client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        IW_LOG_WARN("mqtt", "connection %d: connect to %s refused locally (code %d); will retry",
                    c->idx, m->uri, rc);
        atomic_store(&c->state, CONN_DOWN);
    }
}

/*
 * A drain connects once every connection of ours is subscribed (so a message
 * its session stops queueing reaches one of them), and ends once nothing came
 * for DRAIN_QUIET_MS: what it queued is handled, its session is left without
 * subscriptions, and its record goes. True: leave it alone this tick.
 */
static bool drain_tick(struct iw_mqtt *m, struct iw_mconn *c, int64_t now)
{
    int st = atomic_load(&c->state);

    if (st == CONN_DONE)
        return true;
    if (st == CONN_UP) {
        /* relaxed: on_message's hints; a message after the check is one more
         * reason to wait, and a late one only delays the end. */
        int64_t last = atomic_load_explicit(&c->last_msg_ms, memory_order_relaxed);
        int64_t up = atomic_load(&c->up_ms);
        if (now - (last > up ? last : up) < DRAIN_QUIET_MS)
            return true;
        MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
        dopt.timeout = 2000;
        atomic_store(&c->state, CONN_DONE);
        (void)MQTTAsync_disconnect(c->client, &dopt);
        char key[300];
        filters_key(c, key, sizeof(key));
        if (iw_store_meta_delete(m->d->store, key) != IW_OK)
            IW_LOG_DEBUG("mqtt", "cannot remove %s from the store; taken again at the next start",
                         key);
        IW_LOG_INFO("mqtt", "connection %d: the session of client id \"%s\" has no subscription "
                    "left; took %llu message(s) it held", c->idx, c->client_id,
                    (unsigned long long)atomic_load_explicit(&c->drained, memory_order_relaxed));
        return true;
    }
    if (st != CONN_DOWN)
        return true;
    for (int i = 0; i < m->n; i++)
        if (atomic_load(&m->c[i].state) != CONN_UP || !atomic_load(&m->c[i].subscribed))
            return true;
    return false;
}

/* After a failed TLS connect: why, in OpenSSL's words. A new reason (a
 * broker that came up with an expired certificate) at once, the same one
 * again once a minute. */
static void tls_probe_tick(struct iw_mqtt *m, int64_t now)
{
    char why[600];

    if (!atomic_load(&m->tls_probe_due) || now < m->next_tls_probe_ms
        || atomic_load(&m->stopping))
        return;
    atomic_store(&m->tls_probe_due, false);
    m->next_tls_probe_ms = now + 1000;
    int rc = iw_tls_probe(m->uri, m->cfg->broker.tls_ca_file, m->cfg->broker.tls_cert_file,
                          m->cfg->broker.tls_key_file, 2000, why, sizeof(why));
    if (strcmp(why, m->tls_why) == 0 && now < m->next_tls_log_ms)
        return;
    snprintf(m->tls_why, sizeof(m->tls_why), "%s", why);
    m->next_tls_log_ms = now + 60000;
    IW_LOG_WARN("mqtt", "TLS with %s: %s%s", m->uri, why,
                rc == IW_OK ? ", so the failure is elsewhere (the broker's log may say)" : "");
}

void iw_mqtt_tick(struct iw_mqtt *m, int64_t now)
{
    const struct iw_config *cfg = m->d->cfg;
    check_tick(m, now);
    tls_probe_tick(m, now);
    for (int i = 0; i < m->n_all; i++) {
        struct iw_mconn *c = &m->c[i];
        if (c->drain && drain_tick(m, c, now))
            continue;
        if (atomic_load(&c->state) != CONN_DOWN) {
            if (atomic_load(&c->state) != CONN_UP)
                continue;
            c->backoff_ms = 0;
            /* Filters the broker refused (its ACL): asked for again with the
             * reconnect's backoff, so an ACL fixed on the broker takes effect. */
            if (!atomic_load(&c->refused)) {
                c->sub_backoff_ms = 0;
            } else if (now >= c->sub_retry_ms) {
                if (c->sub_backoff_ms > 0)
                    subscribe_all(c, false);
                c->sub_backoff_ms = c->sub_backoff_ms == 0 ? cfg->broker.reconnect_min_ms
                                                           : c->sub_backoff_ms * 2;
                if (c->sub_backoff_ms > cfg->broker.reconnect_max_ms)
                    c->sub_backoff_ms = cfg->broker.reconnect_max_ms;
                c->sub_retry_ms = now + c->sub_backoff_ms;
            }
            continue;
        }
        if (now < c->next_attempt_ms)
            continue;
        try_connect(m, c);
        /* Capped exponential backoff with "equal jitter": half fixed, half random. */
        c->backoff_ms = c->backoff_ms == 0 ? cfg->broker.reconnect_min_ms : c->backoff_ms * 2;
        if (c->backoff_ms > cfg->broker.reconnect_max_ms)
            c->backoff_ms = cfg->broker.reconnect_max_ms;
        int64_t half = c->backoff_ms / 2;
        c->next_attempt_ms = now + half + (half > 0 ? (int64_t)(rand_r(&m->rng) % (unsigned)(half + 1)) : 0);
    }
}

bool iw_mqtt_connected(const struct iw_mqtt *m)
{
    for (int i = 0; i < m->n; i++)
        if (atomic_load(&m->c[i].state) != CONN_UP || atomic_load(&m->c[i].refused))
            return false;
    return m->n > 0;
}

bool iw_mqtt_alerts_up(const struct iw_mqtt *m)
{
    return m != NULL && m->n > 0 && !atomic_load(&m->stopping)
           && atomic_load(&m->c[0].state) == CONN_UP;
}

bool iw_mqtt_any_connected(const struct iw_mqtt *m)
{
    if (m == NULL)
        return true;
    for (int i = 0; i < m->n; i++)
        /* relaxed: a status read, nothing else is published through it. */
        if (atomic_load_explicit(&m->c[i].state, memory_order_relaxed) == CONN_UP)
            return true;
    return false;
}

int iw_mqtt_publish(struct iw_mqtt *m, const char *topic, const void *payload, size_t len,
                    int qos, bool retained, uint64_t seq)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retained;
    if (m->v5 && qos > 0) {
        ro.onSuccess5 = on_publish_acked5;
        ro.onFailure5 = on_publish_refused5;
        ro.context = (void *)(uintptr_t)seq;
    }
    int rc = MQTTAsync_sendMessage(m->c[0].client, topic, &msg, &ro);
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        /* release: pairs with the acquire in on_delivered. Paho may send
         * the PUBLISH, and take its PUBACK, before this store: that PUBACK
         * then finds the previous watch (another packet id, or the same id
         * of an earlier message, already acknowledged) and this message
         * counts as unacknowledged: sent again after a kill -9, the safe
         * side. Packet ids take 16 bits, seq the other 48. */
        if (seq > 0 && qos > 0 && ro.token > 0)
            atomic_store_explicit(&m->watch, seq << 16 | ((uint64_t)ro.token & 0xffff),
                                  memory_order_release);
        return IW_OK;
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
    case MQTTASYNC_BAD_STRUCTURE:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_BAD_MQTT_OPTION:
        return IW_E_INVAL;                /* this message can never go: retrying is useless */
    default:
        return IW_E_MQTT;                 /* buffer full, no message id free...: try again later */
    }
}

const char *iw_mqtt_publish_error(int rc)
{
    return rc == IW_E_INVAL ? "the message itself is invalid (topic not UTF-8 or too long?)"
                            : "its outbound buffer is full (alerts.outbox_max) or it is not ready";
}

void iw_mqtt_resubscribe(struct iw_mqtt *m)
{
    for (int i = 0; i < m->n; i++)
        if (atomic_load(&m->c[i].state) == CONN_UP)
            subscribe_all(&m->c[i], false);
}

/* ---- MQTT 5: QoS 2 messages a kill -9 interrupted ---- */

struct replay_ctx {
    struct iw_mconn *c;
    int handled, skipped, failed;
};

static int replay_one(void *ctx, const struct iw_mqtt_publish *p)
{
    struct replay_ctx *rc = ctx;
    struct iw_conn_ingest *ing = rc->c->ing;
    char rk[IW_RECEIPT_KEY_MAX];
    void *v = NULL;
    size_t len;

    /* Its receipt key went in with its samples: handled before the stop. */
    if (iw_mqtt_receipt_key(ing->client_id, p->msgid, rk, sizeof(rk)) == 0 &&
        iw_store_meta_get(ing->d->store, rk, &v, &len) == IW_OK) {
        free(v);
        rc->skipped++;
        return 0;
    }
    /* As on_message would have: 0 is a failed write, retried a few times
     * (iw_ingest_message waits 100 ms each). */
    for (int tries = 0; tries < 50; tries++) {
        if (iw_ingest_message(ing, p->topic, p->tlen, p->payload, p->plen, p->retained,
                              p->msgid)) {
            rc->handled++;
            return 0;
        }
    }
    rc->failed++;
    return 0;
}

/*
 * Over MQTT 5 Paho persists a QoS 2 PUBLISH, sends PUBREC and then calls
 * on_message; after a kill -9 it restores the record as "received" and
 * neither the broker's PUBREL nor its DUP resend makes it call us again
 * (MQTTProtocol_handlePublishes / handlePubrels in Paho 1.3). A message whose
 * callback the kill cut short would be lost: hand every such record to the
 * pipeline before connecting. Those handled before the kill carry their
 * receipt key (qos2_marks) and are skipped, so nothing is stored or alerted
 * twice. Records are read whatever broker.protocol says now: a switch back
 * to 3.1.1 after a kill -9 loses nothing either.
 */
int iw_mqtt_replay(struct iw_mqtt *m)
{
    for (int i = 0; m != NULL && i < m->n; i++) {
        struct replay_ctx rc = { .c = &m->c[i] };
        bool marks = m->c[i].ing->qos2_marks;
        m->c[i].ing->qos2_marks = true;       /* a replayed message leaves its mark too */
        int r = iw_mqtt_received_v5_scan(m->d->store, m->c[i].client_id, replay_one, &rc);
        m->c[i].ing->qos2_marks = marks;
        if (r != IW_OK) {
            IW_LOG_ERROR("mqtt", "cannot read the QoS 2 messages connection %d kept before the "
                         "last stop (%s); check the database", i, iw_strerror(r));
            return r;
        }
        if (rc.handled + rc.skipped + rc.failed > 0)
            IW_LOG_INFO("mqtt", "connection %d: %d QoS 2 message(s) received over MQTT 5 before "
                        "the last stop were not handled then and are now; %d were", i,
                        rc.handled, rc.skipped);
        if (rc.failed > 0) {
            /* Connecting would let the broker complete their exchanges and
             * Paho drop the records: stop with them kept instead. */
            IW_LOG_ERROR("mqtt", "connection %d: %d kept QoS 2 message(s) could not be stored "
                         "(see the errors above); not connecting, so that they are kept: fix "
                         "the store and start again", i, rc.failed);
            return IW_E_IO;
        }
    }
    return IW_OK;
}

/* ---- start / stop ---- */

static int read_password(const char *file, char **out, struct iw_diag *diag)
{
    FILE *f = fopen(file, "r");
    char line[1024];

    if (f == NULL) {
        iw_diag_set(diag, NULL, 0, 0, "broker.password_file %s: %s (create it with the "
                    "password on its first line, readable by the daemon)", file, strerror(errno));
        return IW_E_IO;
    }
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    *out = strdup(line);
    return *out ? IW_OK : IW_E_NOMEM;
}

/* Paho opens the TLS files only when it connects, and then fails without naming
 * them ("TCP/TLS connect failure", retried forever): check them at start. */
static int check_tls_file(const char *key, const char *file, struct iw_diag *diag)
{
    FILE *f;

    if (file == NULL)
        return IW_OK;
    f = fopen(file, "r");
    if (f == NULL) {
        iw_diag_set(diag, NULL, 0, 0, "broker.tls.%s %s: %s (give a PEM file readable by the "
                    "daemon)", key, file, strerror(errno));
        return IW_E_IO;
    }
    fclose(f);
    return IW_OK;
}

static int make_uri(const char *url, char *out, size_t cap, struct iw_diag *diag)
{
    const char *rest;
    const char *scheme;
    if (strncmp(url, "mqtt://", 7) == 0) { scheme = "tcp://"; rest = url + 7; }
    else if (strncmp(url, "tcp://", 6) == 0) { scheme = "tcp://"; rest = url + 6; }
    else if (strncmp(url, "mqtts://", 8) == 0) { scheme = "ssl://"; rest = url + 8; }
    else if (strncmp(url, "ssl://", 6) == 0) { scheme = "ssl://"; rest = url + 6; }
    else {
        iw_diag_set(diag, NULL, 0, 0, "broker.url \"%s\": use mqtt://HOST:PORT or mqtts://HOST:PORT", url);
        return IW_E_CONFIG;
    }
    /* Default ports when none is given. */
    const char *colon = strrchr(rest, ':');
    const char *bracket = strrchr(rest, ']');
    bool has_port = colon != NULL && (bracket == NULL || colon > bracket);
    snprintf(out, cap, "%s%s%s", scheme, rest,
             has_port ? "" : (scheme[0] == 's' ? ":8883" : ":1883"));
    return IW_OK;
}

/*
 * Paho C keeps an in-memory ring of trace entries that nothing reads unless its
 * trace is switched on (MQTT_C_CLIENT_TRACE). At its default level it still
 * formats a line (vsnprintf, under a process-wide mutex) for every packet:
 * 11-14 % of islewatchd's CPU per message at QoS 0 and 1 (bench/RESULTS.md,
 * "Paho's trace level"). Errors only, then, unless someone asked Paho for a trace.
 */
static void paho_trace_errors_only(void)
{
    if (getenv("MQTT_C_CLIENT_TRACE") == NULL)
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
}

/*
 * Set up m->c[i] under client id `id`: a connection of ours, or a drain of an
 * earlier one's session (no alerts, see drain_tick). i < IW_MAX_CONNECTIONS.
 */
static int conn_init(struct iw_mqtt *m, int i, const char *id, bool drain, struct iw_diag *diag)
{
    const struct iw_config *cfg = m->cfg;
    struct iw_mconn *c = &m->c[i];
    MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer;
    int rc;

    c->m = m;
    c->idx = i;
    c->drain = drain;
    pthread_mutex_init(&c->sub_lock, NULL);
    snprintf(c->client_id, sizeof(c->client_id), "%s", id);
    c->ing = calloc(1, sizeof(*c->ing));
    if (c->ing == NULL || (c->ing->wb = iw_wbatch_new()) == NULL)
        return IW_E_NOMEM;
    c->ing->d = m->d;
    c->ing->client_id = c->client_id;
    c->ing->idx = (uint8_t)i;             /* i < IW_MAX_CONNECTIONS */
    cro.MQTTVersion = m->v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    c->ing->qos2_marks = m->v5;
    /* Alerts published while the broker is away wait in Paho's persisted
     * buffer and go out in order on reconnect (bounded by outbox_max).
     * sendWhileDisconnected alone is not enough: Paho refuses sends until
     * MQTTAsync_connect was called once, and again after MQTTAsync_disconnect
     * (iw_mqtt_stop), which would lose the resolves a changed rule raises
     * at start and the alerts the shards flush while stopping. */
    cro.sendWhileDisconnected = i == 0;
    cro.allowDisconnectedSendAtAnyTime = i == 0;
    cro.maxBufferedMessages = (int)cfg->alerts.outbox_max;
    cro.deleteOldestMessages = 0;
    cro.restoreMessages = 1;
    cro.persistQoS0 = 0;
    rc = MQTTAsync_createWithOptions(&c->client, m->uri, c->client_id,
                                     MQTTCLIENT_PERSISTENCE_USER, &m->persist, &cro);
    if (rc != MQTTASYNC_SUCCESS) {
        iw_diag_set(diag, NULL, 0, 0, "cannot create the MQTT client for %s (Paho code %d)",
                    m->uri, rc);
        c->client = NULL;
        return IW_E_MQTT;
    }
    /* Alerts go on connection 0; under MQTT 5 their own callbacks count them
     * (on_publish_acked5), since Paho's deliveryComplete comes for refusals too. */
    MQTTAsync_setCallbacks(c->client, c, on_connlost, on_message,
                           i == 0 && !m->v5 ? on_delivered : NULL);
    if (m->v5)
        MQTTAsync_setDisconnected(c->client, c, on_disconnected5);
    filters_load(c);
    return IW_OK;
}

int iw_mqtt_start(struct iw_daemon *d, struct iw_diag *diag)
{
    const struct iw_config *cfg = d->cfg;
    struct iw_mqtt *m = calloc(1, sizeof(*m));
    size_t o;
    int rc;

    if (m == NULL)
        return IW_E_NOMEM;
    m->d = d;
    m->cfg = cfg;
    m->rng = (unsigned)iw_mono_ns();
    m->v5 = cfg->broker.protocol == IW_MQTT_5;
    live_mqtt = m;                        /* before any connection: Paho's threads read it */
    if ((rc = make_uri(cfg->broker.url, m->uri, sizeof(m->uri), diag)) != IW_OK)
        goto fail;
    if (cfg->broker.password_file && (rc = read_password(cfg->broker.password_file, &m->password, diag)) != IW_OK)
        goto fail;
    if (strncmp(m->uri, "ssl://", 6) != 0 &&
        (cfg->broker.tls_ca_file || cfg->broker.tls_cert_file || cfg->broker.tls_key_file))
        IW_LOG_WARN("mqtt", "broker.tls is set but broker.url %s is plain: the TLS files are "
                    "not used and the connection (with its password) is not encrypted; use "
                    "mqtts://HOST:PORT", cfg->broker.url);
    if (strncmp(m->uri, "ssl://", 6) == 0 &&
        ((rc = check_tls_file("ca_file", cfg->broker.tls_ca_file, diag)) != IW_OK ||
         (rc = check_tls_file("cert_file", cfg->broker.tls_cert_file, diag)) != IW_OK ||
         (rc = check_tls_file("key_file", cfg->broker.tls_key_file, diag)) != IW_OK))
        goto fail;
    iw_mqtt_persistence_init(&m->persist, d->store);
    paho_trace_errors_only();
    m->n = cfg->broker.connections;
    m->c = calloc(IW_MAX_CONNECTIONS, sizeof(*m->c));      /* room for the drains */
    if (m->c == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (int i = 0; i < m->n; i++) {
        char id[256];
        if (m->n == 1)
            snprintf(id, sizeof(id), "%s", cfg->broker.client_id);
        else
            snprintf(id, sizeof(id), "%s-%d", cfg->broker.client_id, i);
        if ((rc = conn_init(m, i, id, false, diag)) != IW_OK)
            goto fail;
        m->n_all++;
    }
    if (!cfg->broker.clean_session) {
        struct abandoned_ctx *a = calloc(1, sizeof(*a));
        if (a == NULL) {
            rc = IW_E_NOMEM;
            goto fail;
        }
        a->m = m;
        a->room = IW_MAX_CONNECTIONS - m->n;
        if (iw_store_meta_scan(d->store, "mqtt_filters/", abandoned_cb, a) != IW_OK)
            IW_LOG_WARN("mqtt", "cannot read the subscriptions kept in the store; a session "
                        "left by an earlier broker.connections is not taken");
        for (int k = 0; k < a->n && rc == IW_OK; k++)
            if ((rc = conn_init(m, m->n + k, a->ids[k], true, diag)) == IW_OK)
                m->n_all++;
        free(a);
        if (rc != IW_OK)
            goto fail;
    }
    /* The marker topic of the retained-state check: ours alone (the client
     * id is unique per broker), with no wildcard in it. */
    pthread_mutex_init(&m->snap.lock, NULL);
    o = (size_t)snprintf(m->snap.marker, sizeof(m->snap.marker), "islewatch/retained-check/");
    for (const char *id = m->c[0].client_id; *id && o + 1 < sizeof(m->snap.marker); id++)
        m->snap.marker[o++] = (*id == '/' || *id == '+' || *id == '#') ? '_' : *id;
    m->snap.marker[o] = '\0';
    snprintf(m->snap.client_id, sizeof(m->snap.client_id), "%s-check", m->c[0].client_id);
    {
        MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer;
        cro.MQTTVersion = MQTTVERSION_3_1_1;
        if (MQTTAsync_createWithOptions(&m->snap.client, m->uri, m->snap.client_id,
                                        MQTTCLIENT_PERSISTENCE_NONE, NULL, &cro)
                != MQTTASYNC_SUCCESS
            || MQTTAsync_setCallbacks(m->snap.client, m, on_check_connlost, on_check_message,
                                      NULL) != MQTTASYNC_SUCCESS) {
            IW_LOG_WARN("alerts", "cannot create the MQTT client \"%s\" that reads the retained "
                        "alert states back at a connect; a broker that lost its session gets "
                        "every firing state set again, stale ones are not cleared",
                        m->snap.client_id);
            if (m->snap.client != NULL)
                MQTTAsync_destroy(&m->snap.client);
            m->snap.client = NULL;
        }
    }
    d->mqtt = m;
    return IW_OK;                           /* the main loop's first tick connects */
fail:
    d->mqtt = NULL;
    iw_mqtt_free(m);
    return rc;
}

void iw_mqtt_stop(struct iw_mqtt *m)
{
    if (m == NULL)
        return;
    atomic_store(&m->stopping, true);     /* a check cut short now is not a broker's failure */
    if (m->snap.client != NULL && atomic_load(&m->snap.conn) != CHK_IDLE) {
        MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
        dopt.timeout = 500;
        (void)MQTTAsync_disconnect(m->snap.client, &dopt);
        for (int k = 0; k < 100 && MQTTAsync_isConnected(m->snap.client); k++) {
            struct timespec ts = { 0, 10 * 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 0; m->c != NULL && i < m->n_all; i++) {
        struct iw_mconn *c = &m->c[i];
        if (c->client != NULL) {
            MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
            dopt.timeout = 2000;
            if (atomic_load(&c->state) == CONN_UP)
                MQTTAsync_disconnect(c->client, &dopt);
            /* Wait for the disconnect to finish (bounded). */
            for (int k = 0; k < 200 && MQTTAsync_isConnected(c->client); k++) {
                struct timespec ts = { 0, 10 * 1000000 };
                nanosleep(&ts, NULL);
            }
            atomic_store(&c->state, CONN_DOWN);
        }
    }
}

void iw_mqtt_free(struct iw_mqtt *m)
{
    if (m == NULL)
        return;
    for (int i = 0; m->c != NULL && i < IW_MAX_CONNECTIONS; i++) {
        struct iw_mconn *c = &m->c[i];
        if (c->m == NULL)
            continue;                     /* never set up */
        if (c->client != NULL)
            MQTTAsync_destroy(&c->client);
        for (int k = 0; k < c->n_filters; k++)
            free(c->filters[k]);
        for (int k = 0; k < c->n_sent; k++)
            free(c->sent[k]);
        pthread_mutex_destroy(&c->sub_lock);
        MQTTProperties_free(&c->props);
        if (c->ing != NULL) {
            iw_wbatch_free(c->ing->wb);
            free(c->ing);
        }
    }
    free(m->c);
    free(m->password);
    if (m->snap.client != NULL)
        MQTTAsync_destroy(&m->snap.client);
    if (m->snap.marker[0] != '\0') {          /* initialised */
        check_states_free(&m->snap);
        pthread_mutex_destroy(&m->snap.lock);
    }
    free(m->snap.got);
    free(atomic_load(&m->snap.filter));
    for (size_t i = 0; i < m->snap.n_retired; i++)
        free(m->snap.retired[i]);
    free(m->snap.retired);
    if (live_mqtt == m)
        live_mqtt = NULL;                 /* after every client is destroyed: no callback runs */
    free(m);
}
