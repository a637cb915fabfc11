/* Counters and their Prometheus text rendering. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "islewatch/stats.h"

struct iw_stats iw_stats;

const double iw_stats_write_bounds[IW_STATS_WRITE_BUCKETS - 1] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
};

const double iw_stats_batch_bounds[IW_STATS_BATCH_BUCKETS - 1] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256,
};

/* The histogram bucket of s (seconds, points): the first bound >= s, else the last (+Inf). */
static size_t bucket_of(double s, const double *bounds, size_t n_buckets)
{
    size_t b = 0;
    while (b < n_buckets - 1 && s > bounds[b])
        b++;
    return b;
}

void iw_stats_write(uint64_t ns, uint64_t points)
{
    size_t b = bucket_of((double)ns / 1e9, iw_stats_write_bounds, IW_STATS_WRITE_BUCKETS);
    iw_stat_add(&iw_stats.write_bucket[b], 1);
    iw_stat_add(&iw_stats.write_ns_sum, ns);
    iw_stat_add(&iw_stats.batch_bucket[bucket_of((double)points, iw_stats_batch_bounds,
                                                 IW_STATS_BATCH_BUCKETS)], 1);
    iw_stat_add(&iw_stats.batch_points_sum, points);
}

/* Fine below 10 ms, where the publish -> durable target (p99 <= 5 ms) lies; coarse up to a minute. */
const double iw_stats_delay_bounds[IW_STATS_DELAY_BUCKETS - 1] = {
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
};

void iw_stats_ingest_delay(int64_t ts_ms)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;

    /* Range checks in ms first, so that the ns arithmetic below cannot overflow
     * whatever ts a device sent. ts_ms == now_ms is a delay of 0..1 ms. */
    if (ts_ms > now_ms) {
        iw_stat_add(&iw_stats.delay_skipped[IW_DELAY_FUTURE], 1);
        return;
    }
    if (ts_ms <= now_ms - IW_STATS_DELAY_MAX_MS) {
        iw_stat_add(&iw_stats.delay_skipped[IW_DELAY_OVER_1H], 1);
        return;
    }
    int64_t ns = ((int64_t)now.tv_sec - ts_ms / 1000) * 1000000000LL + now.tv_nsec -
                 (ts_ms % 1000) * 1000000LL;
    size_t b = bucket_of((double)ns / 1e9, iw_stats_delay_bounds, IW_STATS_DELAY_BUCKETS);
    iw_stat_add(&iw_stats.delay_bucket[b], 1);
    iw_stat_add(&iw_stats.delay_us_sum, (uint64_t)(ns / 1000));
}

/* ---- alerts published: few distinct label sets, updated per alert, not per message ---- */

struct alert_row {
    char *rule, *severity, *status;
    uint64_t n;
};
static pthread_mutex_t alert_lock = PTHREAD_MUTEX_INITIALIZER;
static struct alert_row *alert_rows;
static size_t n_alert_rows, cap_alert_rows;

/* Add `add` to the row (rule, severity, status), made at 0 when missing. */
static void alert_row_add(const char *rule, const char *severity, const char *status,
                          uint64_t add)
{
    pthread_mutex_lock(&alert_lock);
    for (size_t i = 0; i < n_alert_rows; i++) {
        struct alert_row *r = &alert_rows[i];
        if (strcmp(r->rule, rule) == 0 && strcmp(r->severity, severity) == 0 &&
            strcmp(r->status, status) == 0) {
            r->n += add;
            pthread_mutex_unlock(&alert_lock);
            return;
        }
    }
    if (n_alert_rows == cap_alert_rows) {
        size_t cap = cap_alert_rows ? cap_alert_rows * 2 : 16;
        struct alert_row *nr = realloc(alert_rows, cap * sizeof(*nr));
        if (nr == NULL) {
            pthread_mutex_unlock(&alert_lock);
            return;
        }
        alert_rows = nr;
        cap_alert_rows = cap;
    }
    alert_rows[n_alert_rows++] = (struct alert_row){ strdup(rule), strdup(severity),
                                                     strdup(status), add };
    pthread_mutex_unlock(&alert_lock);
}

void iw_stats_alert_published(const char *rule, const char *severity, const char *status)
{
    alert_row_add(rule, severity, status, 1);
}

/* The severities one rule's parameters can publish with. */
static void declare_params(const char *rule, enum iw_rule_kind kind,
                           const struct iw_rule_params *p)
{
    bool sev[IW_SEV_COUNT] = { false };

    if (kind == IW_RULE_WATER_QUALITY) {
        sev[p->sev_below_target] = sev[p->sev_worse_than_v] = true;
    } else if (kind == IW_RULE_AIR_QUALITY) {
        for (int l = p->min_level >= 1 ? p->min_level : 1; l <= 6; l++)
            sev[p->sev_by_level[l]] = true;
    } else {
        sev[p->severity] = true;
    }
    for (int s = 0; s < IW_SEV_COUNT; s++) {
        if (!sev[s])
            continue;
        alert_row_add(rule, iw_severity_name((enum iw_severity)s), "firing", 0);
        alert_row_add(rule, iw_severity_name((enum iw_severity)s), "resolved", 0);
    }
}

void iw_stats_alert_declare(const struct iw_config *cfg)
{
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct iw_rule *r = &cfg->rules[i];
        declare_params(r->name, r->kind, &r->p);
        for (size_t k = 0; k < r->n_sites; k++)
            declare_params(r->name, r->kind, &r->sites[k].p);
    }
}

/* ---- queue gauges ---- */

struct queue_row {
    const char *name;
    iw_depth_fn fn;
    const void *q;
};
static struct queue_row queues[IW_STATS_MAX_QUEUES];
static size_t n_queues;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

void iw_stats_register_queue(const char *name, iw_depth_fn fn, const void *q)
{
    pthread_mutex_lock(&queue_lock);
    if (n_queues < IW_STATS_MAX_QUEUES)
        queues[n_queues++] = (struct queue_row){ name, fn, q };
    pthread_mutex_unlock(&queue_lock);
}

void iw_stats_unregister_queues(void)
{
    pthread_mutex_lock(&queue_lock);
    n_queues = 0;
    pthread_mutex_unlock(&queue_lock);
}

/* ---- rendering ---- */

struct buf {
    char *p;
    size_t n, cap;
};

/* Source names by slot. Written once per slot, by one thread, before any
 * counter of that slot is used; release/acquire so /metrics reads a whole
 * name. Never freed: a slot keeps its name for the life of the process. */
static _Atomic(char *) slot_name[IW_STATS_MAX_SOURCES];

size_t iw_stats_source_slot(const char *name)
{
    for (size_t i = 0; i < IW_STATS_MAX_SOURCES; i++) {
        const char *n = atomic_load_explicit(&slot_name[i], memory_order_acquire);
        if (n != NULL && strcmp(n, name) == 0)
            return i;
        if (n == NULL) {                /* the first free slot: this name's from now on */
            char *copy = strdup(name);
            if (copy == NULL)
                break;
            atomic_store_explicit(&slot_name[i], copy, memory_order_release);
            return i;
        }
    }
    return IW_STATS_MAX_SOURCES - 1;
}

static void bprintf(struct buf *b, const char *fmt, ...) IW_PRINTF(2, 3);
static void bprintf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0)
            return;
        if (b->p != NULL && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)w;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return;
        b->p = np;
        b->cap = cap;
    }
}

/* Label values escaped as the text format wants (\\, \", \n). */
static void blabel(struct buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            bprintf(b, "\\%c", *v);
        else if (*v == '\n')
            bprintf(b, "\\n");
        else
            bprintf(b, "%c", *v);
    }
}

static uint64_t ld(_Atomic uint64_t *c) { return atomic_load_explicit(c, memory_order_relaxed); }

/*
 * A Prometheus histogram: n buckets, the last one +Inf (bounds has n - 1).
 * _count is the +Inf bucket as read here, not the separate counter: an
 * observation between the two reads would make them differ in one scrape.
 */
static void histogram(struct buf *b, const char *name, const char *help, _Atomic uint64_t *bucket,
                      const double *bounds, size_t n, double sum)
{
    uint64_t cum = 0;
    bprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < n; i++) {
        cum += ld(&bucket[i]);
        if (i < n - 1)
            bprintf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
        else
            bprintf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    bprintf(b, "%s_sum %.9f\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
}

char *iw_stats_render(void)
{
    struct buf b = {0};
    const char *source_names[IW_STATS_MAX_SOURCES];
    size_t n_sources = 0;

    while (n_sources < IW_STATS_MAX_SOURCES
           && (source_names[n_sources] = atomic_load_explicit(&slot_name[n_sources],
                                                              memory_order_acquire)) != NULL)
        n_sources++;
    bprintf(&b, "# HELP islewatch_messages_received_total MQTT messages received, by source.\n"
                "# TYPE islewatch_messages_received_total counter\n");
    for (size_t i = 0; i < n_sources; i++) {
        bprintf(&b, "islewatch_messages_received_total{source=\"");
        blabel(&b, source_names[i]);
        bprintf(&b, "\"} %llu\n", (unsigned long long)ld(&iw_stats.received[i]));
    }
    bprintf(&b, "# HELP islewatch_messages_stored_total Messages whose samples are durably stored, by source.\n"
                "# TYPE islewatch_messages_stored_total counter\n");
    for (size_t i = 0; i < n_sources; i++) {
        bprintf(&b, "islewatch_messages_stored_total{source=\"");
        blabel(&b, source_names[i]);
        bprintf(&b, "\"} %llu\n", (unsigned long long)ld(&iw_stats.stored_messages[i]));
    }
    bprintf(&b, "# HELP islewatch_last_stored_timestamp_seconds Wall-clock time, at receipt, of the "
                "last message whose samples were stored, by source (0: none since start).\n"
                "# TYPE islewatch_last_stored_timestamp_seconds gauge\n");
    for (size_t i = 0; i < n_sources; i++) {
        int64_t ms = atomic_load_explicit(&iw_stats.last_stored_ms[i], memory_order_relaxed);
        bprintf(&b, "islewatch_last_stored_timestamp_seconds{source=\"");
        blabel(&b, source_names[i]);
        bprintf(&b, "\"} %lld.%03lld\n", (long long)(ms / 1000), (long long)(ms % 1000));
    }
    bprintf(&b, "# HELP islewatch_points_stored_total Points written to RocksDB, by source.\n"
                "# TYPE islewatch_points_stored_total counter\n");
    for (size_t i = 0; i < n_sources; i++) {
        bprintf(&b, "islewatch_points_stored_total{source=\"");
        blabel(&b, source_names[i]);
        bprintf(&b, "\"} %llu\n", (unsigned long long)ld(&iw_stats.stored_points[i]));
    }
    bprintf(&b, "# HELP islewatch_messages_rejected_total Messages rejected, whole or in part "
                "(some members dropped), by reason; a message counts once per reason.\n"
                "# TYPE islewatch_messages_rejected_total counter\n");
    for (int r = 0; r < IW_REJ_COUNT; r++)
        bprintf(&b, "islewatch_messages_rejected_total{reason=\"%s\"} %llu\n",
                iw_reject_name((enum iw_reject)r), (unsigned long long)ld(&iw_stats.rejected[r]));

    bprintf(&b, "# HELP islewatch_queue_depth Items waiting in each internal queue.\n"
                "# TYPE islewatch_queue_depth gauge\n");
    pthread_mutex_lock(&queue_lock);
    for (size_t i = 0; i < n_queues; i++)
        bprintf(&b, "islewatch_queue_depth{queue=\"%s\"} %zu\n", queues[i].name,
                queues[i].fn(queues[i].q));
    pthread_mutex_unlock(&queue_lock);
    bprintf(&b, "# HELP islewatch_messages_waiting Messages being handled by the MQTT delivery threads.\n"
                "# TYPE islewatch_messages_waiting gauge\n"
                "islewatch_messages_waiting %llu\n", (unsigned long long)ld(&iw_stats.in_callback));
    bprintf(&b, "# HELP islewatch_backpressure_waits_total Times a delivery thread waited for a full shard queue.\n"
                "# TYPE islewatch_backpressure_waits_total counter\n"
                "islewatch_backpressure_waits_total %llu\n",
            (unsigned long long)ld(&iw_stats.backpressure_waits));

    histogram(&b, "islewatch_store_write_seconds", "Latency of RocksDB batch writes (WAL).",
              iw_stats.write_bucket, iw_stats_write_bounds, IW_STATS_WRITE_BUCKETS,
              (double)ld(&iw_stats.write_ns_sum) / 1e9);
    histogram(&b, "islewatch_store_batch_points", "Points per RocksDB write of a message's "
              "samples (its WAL write batch).", iw_stats.batch_bucket, iw_stats_batch_bounds,
              IW_STATS_BATCH_BUCKETS, (double)ld(&iw_stats.batch_points_sum));
    histogram(&b, "islewatch_ingest_delay_seconds", "Per message, the wall clock when its "
              "samples were durable (WAL write returned) minus the message's own ts: publish to "
              "durable when the device stamps ts at publish. Only 0 <= delay < 1h; messages "
              "without a ts are not observed.",
              iw_stats.delay_bucket, iw_stats_delay_bounds, IW_STATS_DELAY_BUCKETS,
              (double)ld(&iw_stats.delay_us_sum) / 1e6);
    bprintf(&b, "# HELP islewatch_ingest_delay_unobserved_total Messages left out of "
                "islewatch_ingest_delay_seconds: ts ahead of the clock (future) or 1h or more old "
                "(over_1h: buffered uploads, backfill).\n"
                "# TYPE islewatch_ingest_delay_unobserved_total counter\n"
                "islewatch_ingest_delay_unobserved_total{reason=\"future\"} %llu\n"
                "islewatch_ingest_delay_unobserved_total{reason=\"over_1h\"} %llu\n",
            (unsigned long long)ld(&iw_stats.delay_skipped[IW_DELAY_FUTURE]),
            (unsigned long long)ld(&iw_stats.delay_skipped[IW_DELAY_OVER_1H]));
    bprintf(&b, "# HELP islewatch_store_errors_total Failed store writes (retried).\n"
                "# TYPE islewatch_store_errors_total counter\n"
                "islewatch_store_errors_total %llu\n", (unsigned long long)ld(&iw_stats.store_errors));

    bprintf(&b, "# HELP islewatch_late_samples_total Samples older than what a rule instance had "
                "evaluated (a backlog, a redelivery), judged on their own time; once per instance.\n"
                "# TYPE islewatch_late_samples_total counter\n"
                "islewatch_late_samples_total %llu\n", (unsigned long long)ld(&iw_stats.late_samples));

    bprintf(&b, "# HELP islewatch_alerts_published_total Alert messages published, by rule, severity and status.\n"
                "# TYPE islewatch_alerts_published_total counter\n");
    pthread_mutex_lock(&alert_lock);
    for (size_t i = 0; i < n_alert_rows; i++) {
        bprintf(&b, "islewatch_alerts_published_total{rule=\"");
        blabel(&b, alert_rows[i].rule);
        bprintf(&b, "\",severity=\"%s\",status=\"%s\"} %llu\n", alert_rows[i].severity,
                alert_rows[i].status, (unsigned long long)alert_rows[i].n);
    }
    pthread_mutex_unlock(&alert_lock);
    bprintf(&b, "# HELP islewatch_alerts_active Alert instances firing now, by severity.\n"
                "# TYPE islewatch_alerts_active gauge\n");
    for (int s = 0; s < IW_SEV_COUNT; s++)
        bprintf(&b, "islewatch_alerts_active{severity=\"%s\"} %llu\n",
                iw_severity_name((enum iw_severity)s),
                (unsigned long long)ld(&iw_stats.alerts_active[s]));

    bprintf(&b, "# HELP islewatch_broker_connected 1 when every broker connection is up.\n"
                "# TYPE islewatch_broker_connected gauge\n"
                "islewatch_broker_connected %d\n",
            atomic_load_explicit(&iw_stats.broker_connected, memory_order_relaxed));
    bprintf(&b, "# HELP islewatch_broker_subscriptions_refused 1 while the broker refuses a "
                "source topic's subscription (its ACL); retried with backoff.\n"
                "# TYPE islewatch_broker_subscriptions_refused gauge\n"
                "islewatch_broker_subscriptions_refused %d\n",
            atomic_load_explicit(&iw_stats.broker_sub_refused, memory_order_relaxed));
    bprintf(&b, "# HELP islewatch_alerts_refused_total Alert messages the broker refused "
                "(MQTT 5 reason code 0x80 or more, e.g. its ACL).\n"
                "# TYPE islewatch_alerts_refused_total counter\n"
                "islewatch_alerts_refused_total %llu\n",
            (unsigned long long)ld(&iw_stats.alerts_refused));
    bprintf(&b, "# HELP islewatch_alert_acked_seq seq of the last alert message the broker "
                "acknowledged (alerts.qos 1 or 2; 0: none yet).\n"
                "# TYPE islewatch_alert_acked_seq gauge\n"
                "islewatch_alert_acked_seq %llu\n",
            (unsigned long long)ld(&iw_stats.alert_acked_seq));
    bprintf(&b, "# HELP islewatch_broker_reconnects_total Reconnections to the broker.\n"
                "# TYPE islewatch_broker_reconnects_total counter\n"
                "islewatch_broker_reconnects_total %llu\n",
            (unsigned long long)ld(&iw_stats.broker_reconnects));
    bprintf(&b, "# HELP islewatch_config_last_reload_successful 1 when the last config (re)load succeeded.\n"
                "# TYPE islewatch_config_last_reload_successful gauge\n"
                "islewatch_config_last_reload_successful %d\n",
            atomic_load_explicit(&iw_stats.reload_ok, memory_order_relaxed));
    bprintf(&b, "# HELP islewatch_config_reloads_total Config reloads attempted.\n"
                "# TYPE islewatch_config_reloads_total counter\n"
                "islewatch_config_reloads_total %llu\n", (unsigned long long)ld(&iw_stats.reloads_total));
    return b.p;
}
