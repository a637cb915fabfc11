/*
 * The daemon's parts and how they hold together (see ARCHITECTURE.md):
 *
 *   Paho delivery thread --(decode, WriteBatch to RocksDB WAL)--> return to Paho
 *          \--push_wait--> shard queue [mpmc, by device hash] --> shard thread
 *                                (rollups, rule engine) --emit--> alert queue
 *                                [mpmc of pointers] --> publisher thread (seq,
 *                                history, MQTT publish, SSE feed)
 *
 * Only the creation of a new series and configuration reloads take locks.
 */
#ifndef ISLEWATCH_DAEMON_INT_H
#define ISLEWATCH_DAEMON_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "islewatch/config.h"
#include "islewatch/mpmc.h"
#include "islewatch/payload.h"
#include "islewatch/rules.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"

struct iw_daemon;
struct iw_mqtt;
struct iw_rules_engine;
struct iw_alert;

/* What the delivery threads read for each message; replaced whole on reload. */
struct iw_ingest_view {
    const struct iw_config *cfg;
    size_t n;
    struct iw_topic_pattern *pat;       /* one per cfg->sources[i] */
    size_t *slot;                       /* per source: its counters (iw_stats_source_slot) */
};

/* One item of a shard queue: a stored sample, by value (32 bytes). A
 * message's samples all go to one shard (its device's), pushed in order by
 * the connection's delivery thread; conn and last let the shard put the
 * message back together although other connections' items may interleave. */
struct iw_shard_item {
    uint32_t series_id;
    char     flag;
    uint8_t  is_event;
    uint8_t  conn;                       /* index of the connection that stored it */
    uint8_t  last : 1;                   /* 1 on the message's last sample */
    uint8_t  marked : 1;                 /* its store write added a late mark (ingest.c) */
    uint8_t  retained : 1;               /* from a retained copy sent at a SUBSCRIBE */
    int64_t  ts;
    double   value;
    int64_t  recv_ms;
};
_Static_assert(sizeof(struct iw_shard_item) == 32, "a queue item is half a cache line");

#define IW_MAX_CONNECTIONS 64             /* broker.connections' maximum */

/* A series name cut into its levels, for the rule engine. */
struct iw_name_split {     /* each level passed iw_label_valid: it fits whole */
    char source[IW_LABEL_MAX + 1], site[IW_LABEL_MAX + 1], device[IW_LABEL_MAX + 1],
         metric[IW_LABEL_MAX + 1];
};

/* A message being put back together by its shard (see iw_shard_item). */
struct iw_shard_msg {
    size_t n;
    struct iw_shard_item items[IW_PAYLOAD_MAX_SAMPLES];
};

struct iw_shard {
    int index;
    struct iw_daemon *d;
    struct iw_mpmc q;
    pthread_t thread;
    struct iw_rules_engine *rules;
    char qname[32];
    struct iw_shard_msg *pending[IW_MAX_CONNECTIONS]; /* per connection, allocated on first use */
    struct iw_name_split sp[IW_PAYLOAD_MAX_SAMPLES];  /* the message being handed to the rules */
    struct iw_rsample rs[IW_PAYLOAD_MAX_SAMPLES];
    uint32_t *late_ids;                  /* series with a late_hour pending (owned by this shard) */
    size_t n_late, cap_late;
    /* Reload hand-off: the main thread stores a config, the shard applies it
     * on its own thread and bumps reload_done. */
    _Atomic(struct iw_config *) pending_cfg;
    _Atomic uint64_t reload_done;
    /* Alerts the rule engine emitted that wait for the shard's next state
     * write (pipeline.c): owned copies. */
    struct iw_alert **held;
    size_t n_held, cap_held;
    uint64_t late_counted;               /* the engine's out_of_order already in iw_stats */
    /* Stop hand-off (iw_pipeline_finish_late): the main thread bumps
     * finish_req, the shard judges its held late samples and sets
     * finish_done to it. */
    _Atomic uint64_t finish_req, finish_done;
};

#define IW_RECV_TS_SLOTS 4096            /* a power of two */

struct iw_daemon {
    /* Current config. Atomic: the main thread swaps it on reload while other
     * threads read it; replaced configs are kept until exit (a few KB per
     * reload), so a reader never sees a freed one. */
    _Atomic(struct iw_config *) cfg;
    struct iw_config **old_cfgs;
    size_t n_old_cfgs;
    /* The config the daemon started with: the running value of every setting
     * read only at start (a reload compares with it, not with the last file). */
    const struct iw_config *boot_cfg;
    const char *cfg_path;
    int cli_log_level;                   /* --log-level, or -1: the config's log_level */
    _Atomic(struct iw_ingest_view *) view;
    /* Set before the connections close: a message callback waiting for a
     * failing store gives up (ingest.c, store_durably). seq_cst, a flag. */
    _Atomic bool stopping;
    struct iw_store *store;
    struct iw_shard *shards;
    int n_shards;
    /*
     * Per series id, its rollup watermark as its shard published it (0: none
     * yet; loaded from the store at start). Only the owning shard writes it;
     * delivery threads read it to mark samples that fall below it (ingest.c
     * explains the fences that pair the two).
     */
    _Atomic int64_t *wm;
    int64_t *late_hour;                  /* per series id: hour of late samples not yet recomputed */
    uint32_t *late_marks;                /* per series id: how many of them carry a late mark */
    struct iw_mqtt *mqtt;
    struct iw_alert_pub *pub;
    struct iw_http *http;
    _Atomic int stop;                    /* shard and publisher threads exit */
    /* Set by a connect that found no session although clean_session is
     * false: the broker lost its state (restarted without persistence), so
     * the retained alert states are gone too; the publisher re-sends them. */
    _Atomic bool retained_lost;
    /* The next "outbox/<n>" key of an emitted alert (pipeline.c): set by the
     * publisher's start past those of an earlier run, then taken by the
     * shards (fetch_add, relaxed: a counter only). */
    _Atomic uint64_t outbox_next;
    int64_t start_ms;
    /*
     * The last receipt time given a message without ts, per slot of device
     * hashes (ingest.c): shared by the connections, since a shared
     * subscription spreads one device's messages over them.
     */
    _Atomic int64_t recv_ts[IW_RECV_TS_SLOTS];
    /*
     * Test-only (ISLEWATCH_TEST_KILL_AFTER_WRITES=N in the environment): the
     * daemon kills itself with SIGKILL right after its Nth message write,
     * before Paho is told the message was handled: the kill -9 window that
     * SPEC §2's guarantees are about, hit on purpose. 0: off.
     */
    int64_t test_kill_after;
    _Atomic int64_t test_writes;
    /* The same (ISLEWATCH_TEST_KILL_BEFORE_WRITES=N) just before the Nth
     * message write: the message is in no batch yet. */
    int64_t test_kill_before;
    _Atomic int64_t test_writes_before;
    /*
     * Test-only, the same for the alert path (0: off); each kills the daemon
     * with SIGKILL at one crash window of an alert (ARCHITECTURE.md):
     * ISLEWATCH_TEST_KILL_AFTER_ALERT_RECORDS=N: the publisher, right after
     *   its Nth record write ("alert/<seq>"...), before handing it to Paho;
     * ISLEWATCH_TEST_KILL_AFTER_ALERT_PUBLISHES=N: the publisher, right after
     *   the Nth message Paho took (a firing is two: alerts.topic, then its
     *   retained state), before anything else;
     * ISLEWATCH_TEST_KILL_BEFORE_ALERT_RECORDS=N: the publisher, taking its
     *   Nth alert, before recording it (after a second's pause that lets the
     *   shard that emitted it go on);
     * ISLEWATCH_TEST_KILL_AFTER_ALERT_HANDOFFS=N: a shard, right after it
     *   handed the shards' Nth alert to the publisher and the publisher dealt
     *   with it (recorded, given to Paho), before the shard goes on.
     * Publisher counters: publisher thread only.
     */
    int64_t test_kill_after_alert_records, test_alert_records;
    int64_t test_kill_after_alert_publishes, test_alert_publishes;
    int64_t test_kill_before_alert_records, test_alerts_taken;
    int64_t test_kill_after_alert_handoffs;
    _Atomic int64_t test_alert_handoffs;
    _Atomic int64_t test_alerts_done;    /* alerts the publisher dealt with */
    /* Test-only (ISLEWATCH_TEST_FAIL_WRITES_IF=PATH): while PATH exists, every
     * message write fails as a full disk's would. NULL: off. */
    const char *test_fail_writes_if;
};

/*
 * Late marks (pipeline.c): a sample below its series' published watermark
 * changes an hour already rolled up, so its write carries a mark for that
 * hour. relaxed: the owning shard reads its own writes; a delivery thread's
 * stale value is caught by the fence in ingest.c's mark_raced.
 */
static inline bool iw_below_wm(const struct iw_daemon *d, uint32_t id, int64_t ts)
{
    int64_t w = atomic_load_explicit(&d->wm[id], memory_order_relaxed);
    return w != 0 && ts < w;
}

/* ingest.c */
IW_NODISCARD int iw_ingest_view_build(const struct iw_config *cfg, struct iw_ingest_view **out,
                                      struct iw_diag *diag);
void iw_ingest_view_free(struct iw_ingest_view *v);

/* Per-connection state of the delivery path (one per Paho client). */
/*
 * Per connection: the series of a device's last message, by position, in a
 * direct-mapped table keyed by the hash of "<source>/<site>/<device>/". A
 * message whose metrics come in the same order as that device's previous one
 * finds every series here, each checked by its full name, without probing
 * the store's dictionary. Only the connection's own delivery thread uses it.
 */
#define IW_DEV_CACHE 1024                 /* entries, a power of two */
#define IW_DEV_CACHE_METRICS 16           /* series remembered per device */
struct iw_dev_cache_ent {
    uint32_t prefix_hash;
    const struct iw_series *se[IW_DEV_CACHE_METRICS];
    const struct iw_series *dev;         /* the device's entry "<source>/<site>/<device>" (ingest.c) */
};

struct iw_conn_ingest {
    struct iw_daemon *d;
    uint8_t idx;                         /* the connection's index, < IW_MAX_CONNECTIONS */
    const char *client_id;               /* its MQTT client id (receipt times of QoS 2) */
    /* MQTT 5 (broker.protocol): every QoS 2 message leaves its receipt key, the
     * mark iw_mqtt_replay reads to tell a handled message from one a kill -9
     * interrupted. Over 3.1.1 only messages without ts need it. */
    bool qos2_marks;
    /* The latest receipt time this connection stored (its "rx/<idx>" key, written
     * in the same batch): a restart stamps after it (iw_ingest_restore_receipts). */
    int64_t rx_last;
    struct iw_wbatch *wb;
    struct iw_decoded dec;
    char name[1024];
    struct iw_shard_item items[IW_PAYLOAD_MAX_SAMPLES];
    const struct iw_series *series[IW_PAYLOAD_MAX_SAMPLES];
    struct iw_dev_cache_ent dev_cache[IW_DEV_CACHE];
    /* Quiescence for reload: odd while a message is being handled. */
    _Atomic uint64_t epoch;
};
/*
 * Handle one message. Returns 1 when handled (stored, rejected or skipped), 0
 * to have Paho retry. retained: the broker's retain flag (a stored copy sent
 * on subscribe, not a live message). qos2_id: the message id of a QoS 2
 * delivery, else 0 (a message without ts keeps its time of receipt across a
 * redelivery of the same exchange).
 */
int iw_ingest_message(struct iw_conn_ingest *c, const char *topic, size_t tlen,
                      const char *payload, size_t plen, bool retained, int qos2_id);
/*
 * Before the first message: give messages without ts times after every one
 * an earlier run stored (a backlog's times run ahead of the clock, and
 * starting again from the clock would land on its points and replace them).
 * A store that cannot be read is logged; stamping then starts at the clock.
 */
void iw_ingest_restore_receipts(struct iw_daemon *d);
/*
 * Republish rejected input when rejected_topic is set (mqtt_client.c provides
 * the sender): why[0..n_why) are the reasons, the first one is "reason";
 * stored is how many of the message's samples were stored anyway (0 when the
 * whole message was rejected).
 */
void iw_ingest_reject(struct iw_conn_ingest *c, const struct iw_ingest_view *v, int src,
                      const uint8_t *why, size_t n_why, size_t stored, const char *topic,
                      size_t tlen, const char *payload, size_t plen);

/* pipeline.c */
IW_NODISCARD int iw_pipeline_start(struct iw_daemon *d, struct iw_diag *diag);
void iw_pipeline_stop(struct iw_daemon *d);
/* At a stop, while the broker is still connected: have every shard judge the
 * late samples it holds (rule_late.c waits for an upload's pause), and wait
 * (at most timeout_ms) until they and the publisher are done, so that their
 * alerts go out now, not at the next start. */
void iw_pipeline_finish_late(struct iw_daemon *d, int timeout_ms);
/* Apply a new config to every shard's rule engine, on the shards' own threads. */
void iw_pipeline_reload(struct iw_daemon *d, struct iw_config *cfg);

/* mqtt_client.c */
IW_NODISCARD int iw_mqtt_start(struct iw_daemon *d, struct iw_diag *diag);
/* Disconnect every connection (no more deliveries); publishing is buffered from then on. */
void iw_mqtt_stop(struct iw_mqtt *m);
void iw_mqtt_free(struct iw_mqtt *m);
/* Before the first tick, with the pipeline running: hand the pipeline the
 * QoS 2 messages received over MQTT 5 that a kill -9 cut short (mqtt_client.c).
 * IW_OK, or an error (logged) when one could not be stored. */
IW_NODISCARD int iw_mqtt_replay(struct iw_mqtt *m);
void iw_mqtt_tick(struct iw_mqtt *m, int64_t now_ms);        /* reconnects; main thread */
bool iw_mqtt_connected(const struct iw_mqtt *m);
/* At least one connection is up, so devices' messages can reach the daemon.
 * Any thread; m may be NULL (no broker: true). */
bool iw_mqtt_any_connected(const struct iw_mqtt *m);
/*
 * Publish on the first connection; Paho buffers (persisted, at most
 * alerts.outbox_max messages) while disconnected, also before the first
 * connect and after iw_mqtt_stop. IW_OK when Paho took the message,
 * IW_E_MQTT when it refused it for now (buffer full, no message id free:
 * retry later), IW_E_INVAL when it can never take it (bad topic). seq > 0
 * (an alert message's, QoS > 0): when the broker acknowledges this message,
 * and it is still the last one so marked, seq is recorded as acknowledged
 * ("alert_acked" in the store, islewatch_alert_acked_seq).
 */
int iw_mqtt_publish(struct iw_mqtt *m, const char *topic, const void *payload, size_t len,
                    int qos, bool retained, uint64_t seq);
/* Why iw_mqtt_publish returned rc (not IW_OK), for a log line. */
const char *iw_mqtt_publish_error(int rc);
/* Subscribe to the sources of the current view, unsubscribe from filters no longer there. */
void iw_mqtt_resubscribe(struct iw_mqtt *m);
/* Wait until no delivery thread still uses a view older than the current one. */
void iw_mqtt_quiesce(struct iw_mqtt *m);

/*
 * Reading back the retained alert states (SPEC §5: they must be the firing
 * episodes' and no others), at every connect of connection 0. Publisher
 * thread only; m may be NULL (no check).
 */
struct iw_retained_state {
    char *topic, *payload;                 /* owned, NUL-terminated */
    size_t len;
};
enum iw_retained_check { IW_RCHK_NONE, IW_RCHK_READING, IW_RCHK_DONE, IW_RCHK_FAILED };
/* Read back the states on the topics of active_topic template tmpl from the
 * next connect on. IW_OK, IW_E_INVAL (too long), IW_E_NOMEM. */
int iw_mqtt_retained_watch(struct iw_mqtt *m, const char *tmpl);
/* Where the check of the latest connect is; *round: which connect. */
enum iw_retained_check iw_mqtt_retained_poll(struct iw_mqtt *m, uint64_t *round);
/* End the check (the main thread then closes its connection). After
 * IW_RCHK_DONE, the states read (the caller frees them:
 * iw_mqtt_retained_free) and whether some were not kept; none when it is
 * abandoned or failed, and IW_E_INVAL when they were read under a template
 * since replaced (iw_mqtt_retained_watch). */
int iw_mqtt_retained_finish(struct iw_mqtt *m, struct iw_retained_state **v, size_t *n,
                            bool *partial);
/* Connection 0, the alerts' connection, is up and not closing (iw_mqtt_stop).
 * Any thread; m may be NULL (false). */
bool iw_mqtt_alerts_up(const struct iw_mqtt *m);
void iw_mqtt_retained_free(struct iw_retained_state *v, size_t n);
/* The check's client id, and its marker topic in *marker (both fixed at start). */
const char *iw_mqtt_retained_who(const struct iw_mqtt *m, const char **marker);

/* alert_pub.c */
struct iw_alert_pub;
IW_NODISCARD int iw_alert_pub_start(struct iw_daemon *d, struct iw_alert_pub **out,
                                    struct iw_diag *diag);
void iw_alert_pub_stop(struct iw_alert_pub *p);
/* Has the publisher handled every alert submitted so far? */
bool iw_alert_pub_settled(const struct iw_alert_pub *p);
/*
 * Called on a shard thread: take a copy of the alert and queue it for
 * publishing. outbox: the "outbox/<n>" key under which the shard stored it
 * (the publisher removes it in the batch that records the alert), or NULL.
 */
void iw_alert_pub_submit(struct iw_alert_pub *p, const struct iw_alert *a, const char *outbox);

#endif
