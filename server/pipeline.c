/*
 * Shard workers. Every device (source/site/device) belongs to exactly one
 * shard (hash of its name), so a shard owns the rollups of that device's
 * series and the rule instances that read them, and needs no lock for either.
 * A shard pops the samples the delivery threads stored, maintains minute/hour
 * rollups (store_query.c recomputes a closed minute from the raw points),
 * feeds the rule engine, and ticks it for wall-clock rules.
 */
#include <inttypes.h>
#include <signal.h>
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
#define LATE_FLUSH_MS 1000      /* a busy shard still redoes late hours this often */

static void late_mark(struct iw_shard *sh, uint32_t id, int64_t hour, bool marked);
static void split_name(const struct iw_series *s, struct iw_name_split *o);

/* ---- rule engine environment ---- */

/*
 * Test-only (ISLEWATCH_TEST_KILL_AFTER_ALERT_HANDOFFS, daemon_int.h): after
 * the shards' Nth alert went to the publisher (done: how many alerts the
 * publisher had dealt with before), wait until the publisher dealt with it
 * too (at most 10 s), then SIGKILL: nothing the shard does after the
 * hand-off happens.
 */
static void test_kill_handoff(struct iw_daemon *d, int64_t done)
{
    const struct timespec ms = { 0, 1000000 };
    if (IW_LIKELY(d->test_kill_after_alert_handoffs <= 0)
        || atomic_fetch_add_explicit(&d->test_alert_handoffs, 1, memory_order_relaxed) + 1
               != d->test_kill_after_alert_handoffs)
        return;
    /* acquire: pairs with the publisher's release after it dealt with an alert. */
    for (int i = 0; i < 10000 && atomic_load_explicit(&d->test_alerts_done, memory_order_acquire)
                                     <= done; i++)
        nanosleep(&ms, NULL);
    IW_LOG_WARN("pipeline", "ISLEWATCH_TEST_KILL_AFTER_ALERT_HANDOFFS: killing myself (SIGKILL) "
                "after hand-off %lld", (long long)d->test_kill_after_alert_handoffs);
    raise(SIGKILL);
}

/*
 * Alerts across kill -9 (ARCHITECTURE.md): an alert the engine emits is held
 * until the shard's next state write, which comes at once when the
 * instance's state changes with it (fire, resolve, escalate, repeat), and
 * goes into that write's batch as "outbox/<n>" beside the state: the new
 * state and its alert are durable together or not at all. Only then is it
 * handed to the publisher, which removes the outbox entry in the batch that
 * records the alert; a start publishes the entries left. An alert that no
 * state write follows (a late episode of the past) is written alone at the
 * end of the shard's step (held_flush). Alerts are rare: the hot path only
 * tests n_held.
 */
static void env_emit(void *ctx, const struct iw_alert *a)
{
    struct iw_shard *sh = ctx;
    struct iw_alert *copy = NULL;

    if (sh->n_held == sh->cap_held) {
        size_t cap = sh->cap_held ? sh->cap_held * 2 : 8;
        struct iw_alert **h = realloc(sh->held, cap * sizeof(*h));
        if (h != NULL) {
            sh->held = h;
            sh->cap_held = cap;
        }
    }
    if (sh->n_held == sh->cap_held || iw_alert_dup(a, &copy) != IW_OK) {
        IW_LOG_ERROR("pipeline", "shard %d: out of memory holding alert %s of rule %s; it is "
                     "published now, without its outbox entry (a kill -9 before it is recorded "
                     "loses it)", sh->index, a->id, a->rule);
        iw_alert_pub_submit(sh->d->pub, a, NULL);
        return;
    }
    sh->held[sh->n_held++] = copy;
}

/* Hand the held alerts to the publisher; first: the outbox number of the
 * first (0: they have no outbox entry). */
static void held_submit(struct iw_shard *sh, uint64_t first)
{
    char key[32];

    for (size_t i = 0; i < sh->n_held; i++) {
        int64_t done = atomic_load_explicit(&sh->d->test_alerts_done, memory_order_acquire);
        snprintf(key, sizeof(key), "outbox/%020" PRIu64, first + i);
        iw_alert_pub_submit(sh->d->pub, sh->held[i], first != 0 ? key : NULL);
        iw_alert_free(sh->held[i]);
        test_kill_handoff(sh->d, done);
    }
    sh->n_held = 0;
}

/*
 * Write the rule state record k (val, or a removal when val is NULL; none
 * when k is NULL) together with the held alerts' outbox entries, then hand
 * those to the publisher. The state's result.
 */
static int state_write(struct iw_shard *sh, const char *k, const void *val, size_t len)
{
    struct iw_wbatch *b = sh->n_held > 0 ? iw_wbatch_new() : NULL;
    struct iw_diag diag = {0};
    char key[32];
    int rc;

    if (b == NULL) {                     /* nothing held, or out of memory */
        rc = k == NULL ? IW_OK : val == NULL ? iw_store_meta_delete(sh->d->store, k)
                                             : iw_store_meta_put(sh->d->store, k, val, len);
        held_submit(sh, 0);
        return rc;
    }
    uint64_t first = atomic_fetch_add_explicit(&sh->d->outbox_next, sh->n_held,
                                               memory_order_relaxed);
    for (size_t i = 0; i < sh->n_held; i++) {
        char *json = NULL;
        size_t jlen = 0;
        snprintf(key, sizeof(key), "outbox/%020" PRIu64, first + i);
        if (iw_alert_to_json(sh->held[i], &json, &jlen) == IW_OK)
            iw_wbatch_put_meta(b, key, json, jlen);
        free(json);
    }
    if (k != NULL && val != NULL)
        iw_wbatch_put_meta(b, k, val, len);
    else if (k != NULL)
        iw_wbatch_delete_meta(b, k);
    rc = iw_store_write(sh->d->store, b, &diag);
    if (rc != IW_OK) {
        IW_LOG_ERROR("pipeline", "shard %d: cannot record %zu emitted alert(s) (%s); they are "
                     "published now, but a kill -9 before they are recorded loses them",
                     sh->index, sh->n_held, iw_diag_first(&diag));
        iw_diag_fini(&diag);
    }
    iw_wbatch_free(b);
    held_submit(sh, rc == IW_OK ? first : 0);
    return rc;
}

/* The end of a step: alerts no state write took along go on their own. */
static void held_flush(struct iw_shard *sh)
{
    if (IW_UNLIKELY(sh->n_held > 0))
        (void)state_write(sh, NULL, NULL, 0);
}

static int env_state_put(void *ctx, const char *key, const void *val, size_t len)
{
    struct iw_shard *sh = ctx;
    char k[1024];
    snprintf(k, sizeof(k), "rstate/%s", key);
    return state_write(sh, k, val, len);
}

static int env_state_del(void *ctx, const char *key)
{
    struct iw_shard *sh = ctx;
    char k[1024];
    snprintf(k, sizeof(k), "rstate/%s", key);
    return state_write(sh, k, NULL, 0);
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
    /* A device may also publish a metric of that name, and so give the series
     * rollups: below their watermark the point needs a late mark, as a
     * device's sample does (the series' shard is this one). */
    bool late = iw_below_wm(sh->d, s->id, ts);
    if (late)
        iw_wbatch_mark_late(b, s->id, ts, 1);
    rc = iw_store_write(sh->d->store, b, &diag);
    if (rc == IW_OK && late)
        late_mark(sh, s->id, iw_floor_to(ts, IW_MS_PER_HOUR), true);
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

/* Every series of the store's dictionary and every device's entry (metric ""),
 * split into its levels (rules take effect). */
static int env_each_series(void *ctx, int (*cb)(void *cbctx, const char *source, const char *site,
                                                const char *device, const char *metric),
                           void *cbctx)
{
    struct iw_shard *sh = ctx;
    struct iw_name_split sp;
    uint32_t n = iw_store_series_count(sh->d->store);

    for (uint32_t id = 0; id < n; id++) {
        const struct iw_series *s = iw_store_series_by_id(sh->d->store, id);
        /* <source>/<site>/<device>/<metric>, or a device's entry (metric "") */
        if (s == NULL || (s->metric_off >= s->len && !iw_series_is_device(s)))
            continue;
        split_name(s, &sp);
        if (cb(cbctx, sp.source, sp.site, sp.device, sp.metric) != 0)
            break;
    }
    return IW_OK;
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
    /* Any shard: one failing store fails every series at once. */
    static struct iw_complaint failing;
    if (rc != IW_OK)
        iw_complain(&failing, IW_LOG_LEVEL_WARN, "rollup", "series %u: rollup failed (%s); "
                    "queries fall back to raw points (a store failing to write: see /readyz)", id, iw_strerror(rc));
}

/*
 * Rollups are written an hour at a time. A series' watermark W (store_query.c:
 * rollups below it, raw points from it on) moves when the first sample of a
 * later hour arrives: the shard recomputes [W, that minute) from the raw
 * points and writes the new W with them. Between two moves nothing is written
 * and nothing is lost by a crash: above W readers use raw points, and the
 * next move recomputes from the stored W.
 *
 * A sample below W (a backlog, a redelivered message, or another
 * connection's sample that came after W moved) changes an hour already
 * rolled up. Its delivery thread adds a late mark for that hour in the
 * sample's own write (ingest.c), so the fact survives a crash; the shard
 * recomputes the hour and takes the marks away in the recompute's batch, and
 * a start-up recomputes the hours still marked (iw_store_rollup_recover).
 * Recomputing per sample would cost a scan and a write each; instead each
 * series keeps one pending late hour, recomputed when a late sample of
 * another hour arrives, when the shard goes idle, or at the latest
 * LATE_FLUSH_MS later (a shard other devices keep busy may never be idle):
 * an ordered backlog costs one recompute per hour, or per second if longer.
 */
static void late_flush_one(struct iw_shard *sh, uint32_t id)
{
    struct iw_daemon *d = sh->d;
    int64_t h = d->late_hour[id];
    uint32_t marks = d->late_marks[id];
    if (h == 0)
        return;
    d->late_hour[id] = 0;
    d->late_marks[id] = 0;
    /* relaxed: this shard is the only writer of its series' wm. */
    int64_t w = atomic_load_explicit(&d->wm[id], memory_order_relaxed);
    rollup_warn(id, iw_store_rollup_late(d->store, id, h, w != 0 ? w : INT64_MAX, marks));
}

static void late_flush_all(struct iw_shard *sh)
{
    for (size_t i = 0; i < sh->n_late; i++)
        late_flush_one(sh, sh->late_ids[i]);
    sh->n_late = 0;
}

static void late_mark(struct iw_shard *sh, uint32_t id, int64_t hour, bool marked)
{
    struct iw_daemon *d = sh->d;
    if (d->late_hour[id] == hour) {
        d->late_marks[id] += marked;
        return;
    }
    if (d->late_hour[id] != 0) {
        late_flush_one(sh, id);                 /* still listed in late_ids: that is harmless */
    } else {
        uint32_t *ids = iw_grow(sh->late_ids, &sh->cap_late, sh->n_late, sizeof(*ids));
        d->late_hour[id] = hour;
        d->late_marks[id] = marked;
        if (ids == NULL) {                      /* cannot defer: recompute now */
            late_flush_one(sh, id);
            return;
        }
        sh->late_ids = ids;
        sh->late_ids[sh->n_late++] = id;
        return;
    }
    d->late_hour[id] = hour;
    d->late_marks[id] = marked;
}

/*
 * Move the watermark from w (0: none yet) to minute m. The new value is
 * published before the raw points are read, with a seq_cst fence between:
 * it pairs with the fence in ingest.c between a message's store write and its
 * reading of wm. Of two such fences one comes first, so either the delivery
 * thread sees the new wm and marks its sample late, or this read sees its
 * point (store buffering, C17 7.17.4). A point below m is thus always in the
 * rollups written here or in a late mark.
 */
static void rollup_advance(struct iw_shard *sh, uint32_t id, int64_t w, int64_t m)
{
    struct iw_daemon *d = sh->d;
    atomic_store_explicit(&d->wm[id], m, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    int rc = iw_store_rollup_range(d->store, id, w != 0 ? w : m - d->cfg->storage.retention_raw_ms,
                                   m, true);
    if (rc != IW_OK) {
        /* The stored W did not move: from w on readers keep using raw points. */
        atomic_store_explicit(&d->wm[id], w, memory_order_relaxed);
        rollup_warn(id, rc);
    }
}

static void rollup_sample(struct iw_shard *sh, uint32_t id, int64_t ts, bool marked)
{
    struct iw_daemon *d = sh->d;
    int64_t m = iw_floor_to(ts, IW_MS_PER_MIN);
    /* relaxed: this shard is the only writer of its series' wm. */
    int64_t w = atomic_load_explicit(&d->wm[id], memory_order_relaxed);

    if (marked || (w != 0 && m < w))
        late_mark(sh, id, iw_floor_to(m, IW_MS_PER_HOUR), marked);   /* a mark is always taken back */
    else if (w == 0 || iw_floor_to(m, IW_MS_PER_HOUR) != iw_floor_to(w, IW_MS_PER_HOUR))
        rollup_advance(sh, id, w, m);
}

/* ---- the worker ---- */

static void copy_level(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The levels of a series name; a device's entry (iw_series_is_device) gets metric "". */
static void split_name(const struct iw_series *s, struct iw_name_split *o)
{
    size_t device_end = iw_series_is_device(s) ? s->len : (size_t)s->metric_off - 1;
    copy_level(o->source, sizeof(o->source), s->name, (size_t)(s->site_off - 1));
    copy_level(o->site, sizeof(o->site), s->name + s->site_off,
               (size_t)(s->device_off - s->site_off - 1));
    copy_level(o->device, sizeof(o->device), s->name + s->device_off,
               device_end - s->device_off);
    copy_level(o->metric, sizeof(o->metric), s->name + s->metric_off,
               (size_t)(s->len - s->metric_off));
}

/*
 * Late samples are judged once nothing the store holds is still on its way to
 * the rules (iw_rules_defer_late): when the shard has had nothing to do for
 * its pop timeout (SHARD_IDLE_MS: a burst from one device comes faster than
 * that, so it is judged whole), or LATE_RULES_MAX_WAIT_MS after the oldest
 * waiting sample under a load that never lets the shard idle (then a
 * backlog still arriving is judged in parts: its late episode resolves at
 * the first clearing point stored so far). A message stored but not yet
 * pushed (the microseconds between the two in ingest.c) can still be missed.
 */
/* /metrics' islewatch_late_samples_total: what the shard's engine counted
 * since the last tick (a new engine, after a reload, counts from 0). */
static void late_count(struct iw_shard *sh)
{
    struct iw_rules_stats st;

    iw_rules_engine_stats(sh->rules, &st);
    if (st.out_of_order < sh->late_counted)
        sh->late_counted = 0;
    iw_stat_add(&iw_stats.late_samples, st.out_of_order - sh->late_counted);
    sh->late_counted = st.out_of_order;
}

#define SHARD_IDLE_MS 200
#define LATE_RULES_MAX_WAIT_MS 2000
static void late_rules_flush(struct iw_shard *sh, int64_t now, bool idle)
{
    int64_t since = sh->rules != NULL ? iw_rules_late_since(sh->rules) : INT64_MIN;

    if (since != INT64_MIN && (idle || now - since >= LATE_RULES_MAX_WAIT_MS)) {
        iw_rules_flush_late(sh->rules);
        held_flush(sh);
    }
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
        /* relaxed: only a hint to stop napping; apply_reload's exchange is
         * the acquire that pairs with iw_pipeline_reload's release. A reload
         * so waits one nap, not the whole timeout. */
        if (waited >= timeout_ms || atomic_load_explicit(&sh->pending_cfg, memory_order_relaxed) != NULL)
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
        bool alive = s != NULL && iw_series_is_device(s);   /* a message without samples */
        if (s == NULL)
            continue;
        if (!alive)
            rollup_sample(sh, s->id, items[i].ts, items[i].marked);
        split_name(s, &sh->sp[k]);
        sh->rs[k] = (struct iw_rsample){
            .source = sh->sp[k].source, .site = sh->sp[k].site, .device = sh->sp[k].device,
            .metric = sh->sp[k].metric, .ts = items[i].ts, .value = items[i].value,
            .flag = items[i].flag, .recv_ms = items[i].recv_ms, .is_event = items[i].is_event,
            .retained = items[i].retained, .series_id = s->id + 1, .alive = alive,
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
    int64_t next_tick = 0, next_late = 0;
    char tname[16];

    snprintf(tname, sizeof(tname), "iw-shard-%d", sh->index);
    pthread_setname_np(pthread_self(), tname);
    for (;;) {
        size_t n = 0;
        if (shard_pop_first(sh, &items[0], SHARD_IDLE_MS) == IW_OK) {
            n = 1;
            while (n < SHARD_BATCH && iw_mpmc_pop(&sh->q, &items[n]) == IW_OK)
                n++;
        } else {
            late_flush_all(sh);                  /* idle: finish deferred rollups */
            late_rules_flush(sh, iw_now_ms(), true);   /* and judge the late samples */
            if (atomic_load_explicit(&sh->d->stop, memory_order_acquire)) {
                if (sh->rules != NULL) {         /* those waiting for their upload's pause too */
                    iw_rules_finish_late(sh->rules);
                    held_flush(sh);
                }
                break;                           /* drained and told to stop */
            }
        }
        apply_reload(sh);
        /* acquire: pairs with iw_pipeline_finish_late's release (a request
         * number only; the work is this thread's own). */
        uint64_t fr = atomic_load_explicit(&sh->finish_req, memory_order_acquire);
        if (fr != atomic_load_explicit(&sh->finish_done, memory_order_relaxed)) {
            if (sh->rules != NULL) {
                iw_rules_finish_late(sh->rules);
                held_flush(sh);                  /* its alerts are submitted now */
            }
            /* release: the alerts were submitted before the main thread sees this. */
            atomic_store_explicit(&sh->finish_done, fr, memory_order_release);
        }
        for (size_t i = 0; i < n; i++)
            gather(sh, &items[i]);
        held_flush(sh);
        int64_t now = iw_now_ms();
        late_rules_flush(sh, now, false);
        if (now >= next_late) {                  /* busy: late rollups do not wait for idle */
            late_flush_all(sh);
            next_late = now + LATE_FLUSH_MS;
        }
        if (sh->rules != NULL && now >= next_tick) {
            iw_rules_set_link(sh->rules, iw_mqtt_any_connected(sh->d->mqtt), now);
            iw_rules_tick(sh->rules, now);
            held_flush(sh);
            late_count(sh);
            next_tick = now + 250;
        }
    }
    return NULL;
}

static void wm_load_cb(void *ctx, uint32_t id, int64_t w)
{
    struct iw_daemon *d = ctx;
    if (id < IW_STORE_DEFAULT_MAX_SERIES)
        atomic_store_explicit(&d->wm[id], w, memory_order_relaxed);   /* before any thread reads it */
}

/*
 * Before the first delivery: the watermarks the delivery threads compare
 * against, and the hours a crash may have left stale (late marks still set).
 */
static int rollups_recover(struct iw_daemon *d, struct iw_diag *diag)
{
    uint64_t hours = 0;
    int rc = iw_store_watermarks(d->store, wm_load_cb, d);
    if (rc == IW_OK)
        rc = iw_store_rollup_recover(d->store, &hours);
    if (rc != IW_OK) {
        iw_diag_set(diag, NULL, 0, 0, "cannot recompute the rollups of late samples in %s (%s): "
                    "check the disk and the database's permissions", d->cfg->storage.path,
                    iw_strerror(rc));
        return rc;
    }
    if (hours > 0)
        IW_LOG_INFO("rollup", "recomputed the rollups of %llu hour(s) that late samples changed "
                    "before the last stop", (unsigned long long)hours);
    return IW_OK;
}

static size_t shard_depth(const void *q) { return iw_mpmc_depth(q); }

int iw_pipeline_start(struct iw_daemon *d, struct iw_diag *diag)
{
    const struct iw_config *cfg = d->cfg;
    struct iw_rules_env env = {
        .emit = env_emit, .state_put = env_state_put, .state_del = env_state_del,
        .write_point = env_write_point, .read_points = env_read_points,
        .owns_device = env_owns_device, .is_silenced = env_is_silenced,
        .each_series = env_each_series,
    };

    d->n_shards = cfg->storage.shards;
    d->shards = calloc((size_t)d->n_shards, sizeof(*d->shards));
    /* Per-series arrays, touched only for the ids in use (calloc maps lazily). */
    d->wm = calloc(IW_STORE_DEFAULT_MAX_SERIES, sizeof(*d->wm));
    d->late_hour = calloc(IW_STORE_DEFAULT_MAX_SERIES, sizeof(*d->late_hour));
    d->late_marks = calloc(IW_STORE_DEFAULT_MAX_SERIES, sizeof(*d->late_marks));
    if (d->shards == NULL || d->wm == NULL || d->late_hour == NULL || d->late_marks == NULL)
        return IW_E_NOMEM;
    if (rollups_recover(d, diag) != IW_OK)
        return IW_E_STORE;
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
        iw_rules_defer_late(sh->rules, true);    /* judged by late_rules_flush */
        iw_rules_hold_late(sh->rules, true);     /* a backlog in parts is judged whole */
        held_flush(sh);
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

void iw_pipeline_finish_late(struct iw_daemon *d, int timeout_ms)
{
    int64_t end = iw_now_ms() + timeout_ms;
    bool done = false;

    if (d->shards == NULL || d->pub == NULL)
        return;
    /* release: pairs with the shard's acquire; the number is all it reads. */
    for (int i = 0; i < d->n_shards; i++)
        atomic_fetch_add_explicit(&d->shards[i].finish_req, 1, memory_order_release);
    while (!done && iw_now_ms() < end) {
        done = true;
        for (int i = 0; i < d->n_shards; i++)
            if (atomic_load_explicit(&d->shards[i].finish_done, memory_order_acquire)
                != atomic_load_explicit(&d->shards[i].finish_req, memory_order_relaxed))
                done = false;
        done = done && iw_alert_pub_settled(d->pub);
        if (!done) {
            struct timespec ts = { 0, 10 * 1000000L };
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
        held_flush(&d->shards[i]);          /* none: each step flushed its own */
        free(d->shards[i].held);
        iw_rules_engine_free(d->shards[i].rules);
        iw_mpmc_fini(&d->shards[i].q);
        free(d->shards[i].late_ids);
        for (int c = 0; c < IW_MAX_CONNECTIONS; c++)
            free(d->shards[i].pending[c]);
    }
    free(d->shards);
    d->shards = NULL;
    free((void *)d->wm);
    free(d->late_hour);
    free(d->late_marks);
    d->wm = NULL;
    d->late_hour = NULL;
    d->late_marks = NULL;
}
