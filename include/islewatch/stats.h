/*
 * Process-wide counters for /metrics (SPEC §7). Hot-path counters are
 * relaxed atomics: each is an independent monotonic count, nothing is
 * ordered by them, and a scrape may see one a little ahead of another.
 */
#ifndef ISLEWATCH_STATS_H
#define ISLEWATCH_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/config.h"
#include "islewatch/payload.h"

#define IW_STATS_MAX_SOURCES 32
#define IW_STATS_WRITE_BUCKETS 12     /* 50us .. 1s and +Inf */
#define IW_STATS_BATCH_BUCKETS 10     /* points per write: 1 .. 256 and +Inf */
#define IW_STATS_MAX_QUEUES 66        /* shard queues + the alert queue */
#define IW_STATS_DELAY_BUCKETS 19     /* 0.5ms .. 60s and +Inf */
#define IW_STATS_DELAY_MAX_MS 3600000 /* older than this: backfill, not observed */

/* Why a message's ingest delay was not observed (the `reason` label). */
enum iw_delay_skip {
    IW_DELAY_FUTURE = 0,      /* ts later than the clock when durable (device clock ahead) */
    IW_DELAY_OVER_1H,         /* ts an hour or more old (buffered upload, backfill) */
    IW_DELAY_SKIP_COUNT
};

struct iw_stats {
    _Atomic uint64_t received[IW_STATS_MAX_SOURCES];      /* by source slot (iw_stats_source_slot) */
    _Atomic uint64_t stored_points[IW_STATS_MAX_SOURCES];
    _Atomic uint64_t stored_messages[IW_STATS_MAX_SOURCES];
    _Atomic int64_t  last_stored_ms[IW_STATS_MAX_SOURCES]; /* wall clock at receipt of the last stored message */
    _Atomic uint64_t rejected[IW_REJ_COUNT];               /* messages, once per reason each */
    _Atomic uint64_t write_bucket[IW_STATS_WRITE_BUCKETS]; /* store write latency histogram
                                                            * (its count: the buckets' sum) */
    _Atomic uint64_t write_ns_sum;
    _Atomic uint64_t batch_bucket[IW_STATS_BATCH_BUCKETS]; /* points per write batch histogram */
    _Atomic uint64_t batch_points_sum;
    _Atomic uint64_t delay_bucket[IW_STATS_DELAY_BUCKETS]; /* ts -> durable, one per message */
    _Atomic uint64_t delay_us_sum;                         /* microseconds: no wrap in practice */
    _Atomic uint64_t delay_skipped[IW_DELAY_SKIP_COUNT];   /* not observed, by reason */
    _Atomic uint64_t backpressure_waits;                   /* a shard queue was full */
    _Atomic uint64_t store_errors;
    _Atomic uint64_t late_samples;                         /* older than what a rule instance had
                                                            * evaluated: judged on their own time */
    _Atomic int      store_failing;                        /* the last message write failed */
    _Atomic uint64_t alerts_active[IW_SEV_COUNT];
    _Atomic int      broker_connected;
    _Atomic int      broker_sub_refused;                    /* the broker refused a source filter */
    _Atomic uint64_t alerts_refused;                        /* MQTT 5: PUBACK >= 0x80 for an alert */
    _Atomic uint64_t broker_reconnects;
    _Atomic int      reload_ok;                            /* 1 after a good (re)load */
    _Atomic uint64_t reloads_total;
    _Atomic int      db_open;
    _Atomic uint64_t in_callback;                          /* messages being handled now */
    _Atomic uint64_t alert_acked_seq;                      /* last alert message the broker
                                                            * acknowledged (mqtt_client.c) */
};

extern struct iw_stats iw_stats;
extern const double iw_stats_write_bounds[IW_STATS_WRITE_BUCKETS - 1];   /* seconds */
extern const double iw_stats_batch_bounds[IW_STATS_BATCH_BUCKETS - 1];   /* points */
extern const double iw_stats_delay_bounds[IW_STATS_DELAY_BUCKETS - 1];   /* seconds */

static inline void iw_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Record one store write of `points` points that took `ns`. */
void iw_stats_write(uint64_t ns, uint64_t points);

/*
 * Record how late a message became durable against its own timestamp: the
 * wall clock (CLOCK_REALTIME, read here, so call it right after the store
 * write returned) minus `ts_ms`. Observed in islewatch_ingest_delay_seconds
 * when 0 <= delay < 1 h; otherwise counted in
 * islewatch_ingest_delay_unobserved_total{reason="future"|"over_1h"}, so a
 * device clock ahead of ours or a backlog of old samples cannot pollute the
 * quantiles. Call it only for messages that carry a ts (without one, the
 * ts is our own receipt time and says nothing about the publisher).
 * Relaxed atomics only: no lock, no allocation.
 */
void iw_stats_ingest_delay(int64_t ts_ms);

/* Alerts published, by (rule, severity, status): a small table (not per message). */
void iw_stats_alert_published(const char *rule, const char *severity, const char *status);
/*
 * Give every rule of cfg its rows at 0 (each severity it can publish with,
 * firing and resolved), so the metric shows them before the first alert.
 * At start and after each reload; rows already there keep their counts.
 */
void iw_stats_alert_declare(const struct iw_config *cfg);

/* Queue depth gauges, registered by the pipeline. */
typedef size_t (*iw_depth_fn)(const void *q);
void iw_stats_register_queue(const char *name, iw_depth_fn fn, const void *q);
void iw_stats_unregister_queues(void);

/*
 * The counters' slot of the source named name, kept for the life of the
 * process: a reload that reorders, adds or removes sources leaves every
 * source's counters under its own name (a removed source's stay, frozen).
 * The first IW_STATS_MAX_SOURCES names get a slot each; later ones share
 * the last. One thread at a time (the main thread, building a config's view).
 */
size_t iw_stats_source_slot(const char *name);

/*
 * Render every metric in the Prometheus text format (HELP and TYPE lines)
 * into a malloc'd string. Per-source metrics: one series per slot named so far.
 */
char *iw_stats_render(void);

#endif /* ISLEWATCH_STATS_H */
