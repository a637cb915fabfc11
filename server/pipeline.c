/*
 * Shard workers. Every device (source/site/device) belongs to exactly one
 * shard (hash of its name), so a shard owns the rollups of that device's
 * series and the rule instances that read them, and needs no lock for either.
 * A shard pops the samples the delivery threads stored, maintains minute/hour
 * rollups (store_query.c recomputes a closed minute from the raw points),
 * feeds the rule engine, and ticks it for wall-clock rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "islewatch/clock.h"
#include "islewatch/log.h"
#include "islewatch/rules.h"
#include "islewatch/silences.h"
#include "islewatch/stats.h"
#include "daemon_int.h"

#define SHARD_BATCH 64

/* ---- rule engine environment ---- */

static void env_emit(void *ctx, const struct iw_alert *a)
{
    struct iw_shard *sh = ctx;
    iw_alert_pub_submit(sh->d->pub, a);
}

static int env_state_put(void *ctx, const char *key, const void *val, size_t len)
{
    struct iw_shard *sh = ctx;
    char k[1024];
    snprintf(k, sizeof(k), "rstate/%s", key);
    return iw_store_meta_put(sh->d->store, k, val, len);
}

static int env_state_del(void *ctx, const char *key)
{
    struct iw_shard *sh = ctx;
    char k[1024];
    snprintf(k, sizeof(k), "rstate/%s", key);
    return iw_store_meta_delete(sh->d->store, k);
}

static int env_write_point(void *ctx, const char *series, int64_t ts, double value, bool valid)
{
    struct iw_shard *sh = ctx;
    const struct iw_series *s;
    struct iw_diag diag = {0};
    int rc = iw_store_series_intern(sh->d->store, series, strlen(series), &s);
    if (rc != IW_OK)
        return rc;
    struct iw_wbatch *b = iw_wbatch_new();
    if (b == NULL)
        return IW_E_NOMEM;
    /* An invalid average is stored, flagged 'I', so queries show it but no
     * compliance figure counts it. */
    iw_wbatch_put_point(b, s->id, ts, value, valid ? 0 : 'I');
    rc = iw_store_write(sh->d->store, b, &diag);
    /* A device may also publish a metric of that name: its open minute now
     * holds a point this shard did not fold (the device's shard is this one). */
    if (s->id < IW_STORE_DEFAULT_MAX_SERIES)
        sh->d->open_acc[s->id].exact = false;
    iw_wbatch_free(b);
    iw_diag_fini(&diag);
    return rc;
}

struct read_ctx {
    iw_rules_point_cb cb;
    void *cbctx;
};

static int read_adapter(void *ctx, const struct iw_point *p)
{
    struct read_ctx *r = ctx;
    return r->cb(r->cbctx, p->ts, p->value, p->flag);
}

static int env_read_points(void *ctx, const char *series, int64_t from, int64_t to,
                           iw_rules_point_cb cb, void *cbctx)
{
    struct iw_shard *sh = ctx;
    const struct iw_series *s = iw_store_series_find(sh->d->store, series, strlen(series));
    struct read_ctx r = { cb, cbctx };
    if (s == NULL)
        return IW_OK;
    return iw_store_read_points(sh->d->store, s->id, from, to == INT64_MAX ? to : to + 1,
                                read_adapter, &r);
}

static bool env_is_silenced(void *ctx, const struct iw_alert *a, int64_t now_ms)
{
    (void)ctx;
    return iw_silences_match(a, now_ms);        /* silences created through the HTTP API */
}

static bool env_owns_device(void *ctx, const char *source, const char *site, const char *device)
{
    struct iw_shard *sh = ctx;
    char name[768];
    int n = snprintf(name, sizeof(name), "%s/%s/%s", source, site, device);
    if (n < 0 || (size_t)n >= sizeof(name))
        return sh->index == 0;
    return iw_hash(name, (size_t)n) % (uint32_t)sh->d->n_shards == (uint32_t)sh->index;
}

static int restore_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct iw_shard *sh = ctx;
    char k[1024];
    if (klen <= 7 || klen - 7 >= sizeof(k))
        return 0;
    memcpy(k, key + 7, klen - 7);            /* strip "rstate/" */
    k[klen - 7] = '\0';
    int rc = iw_rules_engine_restore(sh->rules, k, val, vlen);
    if (rc == IW_E_INVAL)
        IW_LOG_WARN("rules", "shard %d: unreadable rule state %s skipped", sh->index, k);
    return 0;
}

/* ---- rollups ---- */

static void rollup_warn(uint32_t id, int rc)
{
    if (rc != IW_OK)
        IW_LOG_WARN("rollup", "series %u: rollup failed (%s); queries fall back to raw points",
                    id, iw_strerror(rc));
}

/*
 * Late samples (older than the series' open minute: a backlog uploaded after
 * an outage) update an already rolled-up minute. Recomputing it per sample
 * would cost a scan and a write each; instead each series keeps one pending
 * late minute, recomputed when a late sample of another minute arrives or
 * when the shard goes idle. An ordered backlog thus costs one recompute per
 * minute, like live data.
 */
static void late_flush_one(struct iw_shard *sh, uint32_t id)
{
    int64_t m = sh->d->late_minute[id];
    if (m == 0)
        return;
    sh->d->late_minute[id] = 0;
    rollup_warn(id, iw_store_rollup_range(sh->d->store, id, m, m + IW_MS_PER_MIN, false));
}

static void late_flush_all(struct iw_shard *sh)
{
    for (size_t i = 0; i < sh->n_late; i++)
        late_flush_one(sh, sh->late_ids[i]);
    sh->n_late = 0;
}

static void late_mark(struct iw_shard *sh, uint32_t id, int64_t m)
{
    int64_t *late = &sh->d->late_minute[id];
    if (*late == m)
        return;
    if (*late != 0) {
        late_flush_one(sh, id);                 /* still listed in late_ids: that is harmless */
    } else {
        if (sh->n_late == sh->cap_late) {
            size_t cap = sh->cap_late ? sh->cap_late * 2 : 256;
            uint32_t *n = realloc(sh->late_ids, cap * sizeof(*n));
            if (n == NULL) {                     /* cannot defer: recompute now */
                rollup_warn(id, iw_store_rollup_range(sh->d->store, id, m, m + IW_MS_PER_MIN, false));
                return;
            }
            sh->late_ids = n;
            sh->cap_late = cap;
        }
        sh->late_ids[sh->n_late++] = id;
    }
    *late = m;
}

static void acc_start(struct iw_open_minute *a, int64_t ts, double v, bool exact)
{
    /* 0.0 + v: the fold's sum starts at 0, so -0.0 sums to +0.0 there too. */
    *a = (struct iw_open_minute){ .min = v, .max = v, .sum = 0.0 + v, .last = v, .last_ts = ts,
                                  .count = 1, .exact = exact };
}

/* The fold store_query.c's fold_minute makes of the same points in time order. */
static void acc_add(struct iw_open_minute *a, int64_t ts, double v)
{
    if (ts <= a->last_ts) {
        a->exact = false;                    /* replaced or reordered: recompute at close */
    } else {
        if (v < a->min) a->min = v;
        if (v > a->max) a->max = v;
        a->sum += v;
        a->last = v;
        a->last_ts = ts;
    }
    a->count++;
}

static void rollup_sample(struct iw_shard *sh, uint32_t id, int64_t ts, double v)
{
    struct iw_daemon *d = sh->d;
    int64_t m = iw_floor_to(ts, IW_MS_PER_MIN);
    int64_t *open = &d->open_minute[id];
    struct iw_open_minute *a = &d->open_acc[id];

    if (*open == 0) {
        /* First sample of this series since start: close what a previous run left open. */
        int64_t w = iw_store_rollup_watermark(d->store, id);
        if (w == INT64_MIN)
            w = m - d->cfg->storage.retention_raw_ms;
        if (w < m)
            rollup_warn(id, iw_store_rollup_range(d->store, id, w, m, true));
        else if (m < w)
            late_mark(sh, id, m);
        *open = m > w ? m : w;
        /* The open minute may hold points of an earlier run: never exact
         * (and so never taken for a one-point minute). */
        acc_start(a, ts, v, false);
    } else if (m > *open) {
        /*
         * The open minute closes. One sample (most minutes at one sample per
         * minute) needs no rollup key (store format 3: readers fold its
         * point); more, folded exactly as they came, is written as is. The
         * store is read back only for an inexact minute, and when an hour
         * closes, to write the hour's rollup and move the watermark: so the
         * stored watermark lags by up to an hour, above it readers use raw
         * points, and a restart rolls up again from it. A minute with points
         * from an earlier run may lack its key: readers fold it, and
         * retention writes it.
         */
        bool hour_closes = iw_floor_to(*open, IW_MS_PER_HOUR) != iw_floor_to(m, IW_MS_PER_HOUR);
        if (!iw_store_sparse_minutes(d->store) || hour_closes || !a->exact) {
            rollup_warn(id, iw_store_rollup_range(d->store, id, *open, m, true));
        } else if (a->count >= 2) {
            struct iw_rollup r = { .ts = *open, .min = a->min, .max = a->max, .sum = a->sum,
                                   .last = a->last, .count = a->count, .last_ts = a->last_ts };
            rollup_warn(id, iw_store_put_minute(d->store, id, &r));
        }
        *open = m;
        acc_start(a, ts, v, true);
    } else if (m < *open) {
        late_mark(sh, id, m);
    } else {
        acc_add(a, ts, v);
    }
}

/* ---- the worker ---- */

static void copy_level(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void split_name(const struct iw_series *s, struct iw_name_split *o)
{
    copy_level(o->source, sizeof(o->source), s->name, (size_t)(s->site_off - 1));
    copy_level(o->site, sizeof(o->site), s->name + s->site_off,
               (size_t)(s->device_off - s->site_off - 1));
    copy_level(o->device, sizeof(o->device), s->name + s->device_off,
               (size_t)(s->metric_off - s->device_off - 1));
    copy_level(o->metric, sizeof(o->metric), s->name + s->metric_off,
               (size_t)(s->len - s->metric_off));
}

static void apply_reload(struct iw_shard *sh)
{
    /* acquire: pairs with the release in iw_pipeline_reload: the new config is
     * fully built before this shard sees the pointer. */
    struct iw_config *cfg = atomic_exchange_explicit(&sh->pending_cfg, NULL, memory_order_acquire);
    if (cfg == NULL)
        return;
    if (sh->rules != NULL && iw_rules_engine_reload(sh->rules, cfg, iw_now_ms()) != IW_OK)
        IW_LOG_ERROR("rules", "shard %d: out of memory applying the new rules; keeping the old ones",
                     sh->index);
    /* release: the main thread frees the old config only after every shard
     * has finished with it (acquire load of reload_done). */
    atomic_fetch_add_explicit(&sh->reload_done, 1, memory_order_release);
}

/*
 * Wait for the first item of a batch. The queue is the buffer, so when it is
 * empty the shard naps SHARD_NAP_MS instead of the generic backoff's
 * spin/yield/short sleeps, and then takes what gathered: at 10,000
 * messages/s (40,000 samples/s per shard) that is ~160 samples per wake-up.
 * Each wake-up costs ~25 µs of CPU on this VM (perf): with 1 ms naps the two
 * shards spent ~6 % of the daemon's CPU waking up, with 4 ms ~2 %. Rules see
 * a sample at most ~4 ms later; its durability does not wait for the shard.
 */
#define SHARD_NAP_MS 4
static int shard_pop_first(struct iw_shard *sh, struct iw_shard_item *out, int64_t timeout_ms)
{
    const struct timespec nap = { 0, SHARD_NAP_MS * 1000000 };
    for (int64_t waited = 0;; waited += SHARD_NAP_MS) {
        if (iw_mpmc_pop(&sh->q, out) == IW_OK)
            return IW_OK;
        if (waited >= timeout_ms)
            return IW_E_EMPTY;
        nanosleep(&nap, NULL);
    }
}

/*
 * One message's samples, whole: roll each up, then hand them to the rule
 * engine together, so water and air rules evaluate the message once (an
 * hourly air message split in two would close its hour on half the
 * pollutants and drop the rest as out of order).
 */
static void handle_message(struct iw_shard *sh, const struct iw_shard_item *items, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct iw_series *s = iw_store_series_by_id(sh->d->store, items[i].series_id);
        if (s == NULL)
            continue;
        rollup_sample(sh, s->id, items[i].ts, items[i].value);
        split_name(s, &sh->sp[k]);
        sh->rs[k] = (struct iw_rsample){
            .source = sh->sp[k].source, .site = sh->sp[k].site, .device = sh->sp[k].device,
            .metric = sh->sp[k].metric, .ts = items[i].ts, .value = items[i].value,
            .flag = items[i].flag, .recv_ms = items[i].recv_ms, .is_event = items[i].is_event,
            .series_id = s->id + 1,
        };
        k++;
    }
    if (k > 0 && sh->rules != NULL)
        iw_rules_on_samples(sh->rules, sh->rs, k);
}

/*
 * Gather an item into its connection's pending message and handle the
 * message at its last sample. Items of one connection arrive in the order it
 * pushed them (the queue keeps each producer's order); other connections'
 * items may come in between, and a batch may end inside a message.
 */
static void gather(struct iw_shard *sh, const struct iw_shard_item *it)
{
    struct iw_shard_msg *m = it->conn < IW_MAX_CONNECTIONS ? sh->pending[it->conn] : NULL;
    if (m == NULL && it->conn < IW_MAX_CONNECTIONS) {
        m = sh->pending[it->conn] = calloc(1, sizeof(*m));   /* once per connection */
        if (m == NULL)
            IW_LOG_ERROR("pipeline", "shard %d: out of memory for connection %u's messages; "
                         "its samples reach the rules one at a time", sh->index, it->conn);
    }
    if (m == NULL) {
        handle_message(sh, it, 1);
        return;
    }
    m->items[m->n++] = *it;
    if (it->last || m->n == IW_PAYLOAD_MAX_SAMPLES) {   /* a message has at most that many */
        handle_message(sh, m->items, m->n);
        m->n = 0;
    }
}

static void *shard_main(void *arg)
{
    struct iw_shard *sh = arg;
    struct iw_shard_item items[SHARD_BATCH];
    int64_t next_tick = 0;
    char tname[16];

    snprintf(tname, sizeof(tname), "iw-shard-%d", sh->index);
    pthread_setname_np(pthread_self(), tname);
    for (;;) {
        size_t n = 0;
        if (shard_pop_first(sh, &items[0], 200) == IW_OK) {
            n = 1;
            while (n < SHARD_BATCH && iw_mpmc_pop(&sh->q, &items[n]) == IW_OK)
                n++;
        } else {
            late_flush_all(sh);                  /* idle: finish deferred rollups */
            if (atomic_load_explicit(&sh->d->stop, memory_order_acquire))
                break;                           /* drained and told to stop */
        }
        apply_reload(sh);
        for (size_t i = 0; i < n; i++)
            gather(sh, &items[i]);
        int64_t now = iw_now_ms();
        if (sh->rules != NULL && now >= next_tick) {
            iw_rules_tick(sh->rules, now);
            next_tick = now + 250;
        }
    }
    return NULL;
}

static size_t shard_depth(const void *q) { return iw_mpmc_depth(q); }

int iw_pipeline_start(struct iw_daemon *d, struct iw_diag *diag)
{
    const struct iw_config *cfg = d->cfg;
    struct iw_rules_env env = {
        .emit = env_emit, .state_put = env_state_put, .state_del = env_state_del,
        .write_point = env_write_point, .read_points = env_read_points,
        .owns_device = env_owns_device, .is_silenced = env_is_silenced,
    };

    d->n_shards = cfg->storage.shards;
    d->shards = calloc((size_t)d->n_shards, sizeof(*d->shards));
    d->open_minute = calloc(IW_STORE_DEFAULT_MAX_SERIES, sizeof(*d->open_minute));
    d->late_minute = calloc(IW_STORE_DEFAULT_MAX_SERIES, sizeof(*d->late_minute));
    d->open_acc = calloc(IW_STORE_DEFAULT_MAX_SERIES, sizeof(*d->open_acc));
    if (d->shards == NULL || d->open_minute == NULL || d->late_minute == NULL ||
        d->open_acc == NULL)
        return IW_E_NOMEM;
    for (int i = 0; i < d->n_shards; i++) {
        struct iw_shard *sh = &d->shards[i];
        sh->index = i;
        sh->d = d;
        if (iw_mpmc_init(&sh->q, cfg->storage.queue_size, sizeof(struct iw_shard_item)) != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "storage.queue_size %zu: cannot allocate the shard queue "
                        "(use a power of two, e.g. 65536)", cfg->storage.queue_size);
            return IW_E_CONFIG;
        }
        env.ctx = sh;
        if (iw_rules_engine_new(cfg, &env, iw_now_ms(), &sh->rules) != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "cannot build the rule engine (out of memory)");
            return IW_E_NOMEM;
        }
        if (iw_store_meta_scan(d->store, "rstate/", restore_cb, sh) != IW_OK)
            IW_LOG_WARN("rules", "shard %d: could not read the stored rule state", i);
        snprintf(sh->qname, sizeof(sh->qname), "shard%d", i);
        iw_stats_register_queue(sh->qname, shard_depth, &sh->q);
    }
    for (int i = 0; i < d->n_shards; i++) {
        if (pthread_create(&d->shards[i].thread, NULL, shard_main, &d->shards[i]) != 0) {
            iw_diag_set(diag, NULL, 0, 0, "cannot start shard thread %d", i);
            return IW_E_NOMEM;
        }
    }
    return IW_OK;
}

void iw_pipeline_reload(struct iw_daemon *d, struct iw_config *cfg)
{
    uint64_t before[64];
    for (int i = 0; i < d->n_shards && i < 64; i++) {
        before[i] = atomic_load_explicit(&d->shards[i].reload_done, memory_order_acquire);
        /* release: publishes the fully built config to the shard (pairs with apply_reload). */
        atomic_store_explicit(&d->shards[i].pending_cfg, cfg, memory_order_release);
    }
    for (int i = 0; i < d->n_shards && i < 64; i++) {
        while (atomic_load_explicit(&d->shards[i].reload_done, memory_order_acquire) == before[i]) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
}

void iw_pipeline_stop(struct iw_daemon *d)
{
    if (d->shards == NULL)
        return;
    /* release: shards see stop only after the producers are gone; they drain first. */
    atomic_store_explicit(&d->stop, 1, memory_order_release);
    for (int i = 0; i < d->n_shards; i++)
        if (d->shards[i].thread)
            pthread_join(d->shards[i].thread, NULL);
    iw_stats_unregister_queues();
    for (int i = 0; i < d->n_shards; i++) {
        iw_rules_engine_free(d->shards[i].rules);
        iw_mpmc_fini(&d->shards[i].q);
        free(d->shards[i].late_ids);
        for (int c = 0; c < IW_MAX_CONNECTIONS; c++)
            free(d->shards[i].pending[c]);
    }
    free(d->shards);
    d->shards = NULL;
    free(d->open_minute);
    free(d->late_minute);
    free(d->open_acc);
    d->open_minute = d->late_minute = NULL;
    d->open_acc = NULL;
}
