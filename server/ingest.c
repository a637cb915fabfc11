/*
 * The per-message path, on a Paho delivery thread: match the topic to a
 * source, decode, write every sample to RocksDB (WAL) in one batch, hand the
 * samples to their shard, and only then return to Paho (SPEC §2: durable
 * before handled). No lock and no allocation once a device's series exist.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "islewatch/clock.h"
#include "islewatch/log.h"
#include "islewatch/stats.h"
#include "daemon_int.h"
#include "mqtt_persist.h"

static struct iw_complaint complaints[IW_REJ_COUNT];
static struct iw_complaint store_complaint;
static struct iw_complaint retained_complaint;

int iw_ingest_view_build(const struct iw_config *cfg, struct iw_ingest_view **out,
                         struct iw_diag *diag)
{
    struct iw_ingest_view *v = calloc(1, sizeof(*v));

    *out = NULL;
    if (v == NULL || (v->pat = calloc(cfg->n_sources ? cfg->n_sources : 1, sizeof(*v->pat))) == NULL
        || (v->slot = calloc(cfg->n_sources ? cfg->n_sources : 1, sizeof(*v->slot))) == NULL) {
        if (v != NULL)
            free(v->pat);
        free(v);
        return IW_E_NOMEM;
    }
    v->cfg = cfg;
    for (size_t i = 0; i < cfg->n_sources; i++) {
        const char *why;
        if (iw_topic_compile(cfg->sources[i].topic, &v->pat[i], &why) != IW_OK) {
            iw_diag_add(diag, cfg->file, cfg->sources[i].line, cfg->sources[i].column,
                        "source \"%s\": topic \"%s\": %s", cfg->sources[i].name,
                        cfg->sources[i].topic, why);
            v->n = i;
            iw_ingest_view_free(v);
            return IW_E_CONFIG;
        }
    }
    v->n = cfg->n_sources;
    for (size_t i = 0; i < cfg->n_sources; i++)   /* a refused config names no counters */
        v->slot[i] = iw_stats_source_slot(cfg->sources[i].name);
    *out = v;
    return IW_OK;
}

void iw_ingest_view_free(struct iw_ingest_view *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++)
        iw_topic_pattern_fini(&v->pat[i]);
    free(v->pat);
    free(v->slot);
    free(v);
}

static void reject(struct iw_conn_ingest *c, const struct iw_ingest_view *v, int src,
                   enum iw_reject why, const char *topic, size_t tlen,
                   const char *payload, size_t plen)
{
    uint8_t w = (uint8_t)why;

    iw_stat_add(&iw_stats.rejected[why], 1);
    iw_complain(&complaints[why], IW_LOG_LEVEL_WARN, "ingest",
                "rejected a message on topic \"%.*s\": %s (%zu bytes)", (int)(tlen > 200 ? 200 : tlen),
                topic, iw_reject_name(why), plen);
    iw_ingest_reject(c, v, src, &w, 1, 0, topic, tlen, payload, plen);
}

/*
 * A handled message some of whose members were dropped, by the decoder, because
 * the series name would not fit (long_names of them) or because they needed a
 * new series in a full dictionary (full_names). SPEC §1 treats
 * it as rejected too, so it is counted once per reason (the counter counts
 * messages, SPEC §7), logged per reason (rate-limited), and republished once
 * with every reason; its good samples, `kept` of them, are already durable.
 * Only messages with a bad member get here: the formatting and the publish
 * stay off the common path.
 */
static void reject_members(struct iw_conn_ingest *c, const struct iw_ingest_view *v, size_t src,
                           const char *topic, size_t tlen, const char *payload, size_t plen,
                           size_t kept, uint32_t long_names, uint32_t full_names)
{
    const struct iw_decoded *dec = &c->dec;
    uint8_t why[IW_REJ_COUNT];
    size_t n = dec->n_member_reasons;

    memcpy(why, dec->member_reasons, n);
    if (long_names > 0 && dec->member_rejects[IW_REJ_BAD_LABEL] == 0)
        why[n++] = IW_REJ_BAD_LABEL;
    if (full_names > 0)
        why[n++] = IW_REJ_SERIES_LIMIT;
    for (size_t i = 0; i < n; i++) {
        uint32_t dropped = dec->member_rejects[why[i]];
        if (why[i] == IW_REJ_BAD_LABEL)
            dropped += long_names;
        else if (why[i] == IW_REJ_SERIES_LIMIT)
            dropped = full_names;
        iw_stat_add(&iw_stats.rejected[why[i]], 1);
        if (kept > 0)
            iw_complain(&complaints[why[i]], IW_LOG_LEVEL_WARN, "ingest",
                        "dropped %u member(s) of a message on \"%.*s\": %s; stored its %zu "
                        "good sample(s)", dropped, (int)(tlen > 200 ? 200 : tlen), topic,
                        iw_reject_name((enum iw_reject)why[i]), kept);
        else
            iw_complain(&complaints[why[i]], IW_LOG_LEVEL_WARN, "ingest",
                        "dropped %u member(s) of a message on \"%.*s\": %s; no sample of it "
                        "was stored", dropped, (int)(tlen > 200 ? 200 : tlen), topic,
                        iw_reject_name((enum iw_reject)why[i]));
    }
    iw_ingest_reject(c, v, (int)src, why, n, kept, topic, tlen, payload, plen);
}

static size_t append(char *dst, size_t at, size_t cap, const char *s, size_t n)
{
    if (at + n + 1 > cap)
        return cap;                           /* caller checks for overflow */
    memcpy(dst + at, s, n);
    return at + n;
}

/*
 * The message's shard may have moved a watermark past one of its samples
 * after the check that built the batch, having read the raw points before
 * this write was in. The seq_cst fence after the write pairs with the one in
 * pipeline.c's rollup_advance, between its store of wm and its read: if that
 * read missed the point, this load sees the new wm (store buffering, C17
 * 7.17.4), and the sample gets its mark in a second write. A crash between
 * the two writes: at QoS 2 the message comes again (the callback did not
 * return) and is marked then; at QoS 0 and 1 that message may be lost anyway.
 */
static int mark_raced(struct iw_conn_ingest *c, size_t n_items, struct iw_diag *diag)
{
    size_t raced = 0;
    atomic_thread_fence(memory_order_seq_cst);
    for (size_t i = 0; i < n_items; i++) {
        struct iw_shard_item *it = &c->items[i];
        if (it->marked || !iw_below_wm(c->d, it->series_id, it->ts))
            continue;
        if (raced++ == 0)
            iw_wbatch_clear(c->wb);
        iw_wbatch_mark_late(c->wb, it->series_id, it->ts, 1);
        it->marked = 1;
    }
    return raced > 0 ? iw_store_write(c->d->store, c->wb, diag) : IW_OK;
}

/*
 * A message that stored no sample (only labels, or every member dropped) is
 * still a message from the device: a sign of life for the absence rules
 * (SPEC §4 "the next message from it"), and, when it carries a message-level
 * flag (`{"flag":"D"}` from an instrument that sends nothing else while it is
 * faulty; 'N' when it is back), news for the device-level flag rules. It is
 * stored as a point (value 0, the message's flag) under the device's own
 * dictionary entry "<source>/<site>/<device>" (c->name up to prefix, without
 * the last '/'), so that backtest sees it as the daemon did; series listings
 * and queries leave that entry out. The entry is made once per device (the
 * dictionary's creation lock, as for a new series), then found in the device
 * cache. NULL when it cannot be made (logged): the message then reaches no rule.
 */
static const struct iw_series *device_entry(struct iw_conn_ingest *c, struct iw_dev_cache_ent *dc,
                                            size_t prefix)
{
    size_t len = prefix - 1;
    const struct iw_series *se = dc->dev;

    if (se == NULL || se->len != len || memcmp(se->name, c->name, len) != 0) {
        int rc = iw_store_series_intern(c->d->store, c->name, len, &se);
        if (rc != IW_OK) {
            iw_complain(&store_complaint, IW_LOG_LEVEL_ERROR, "ingest",
                        "cannot create the dictionary entry of device %.*s: %s; its messages "
                        "without samples do not reach the absence and flag rules (check the "
                        "disk, or 'islewatch series' for a full dictionary)", (int)len, c->name,
                        iw_strerror(rc));
            return NULL;
        }
        dc->dev = se;
    }
    return se;
}

/* Hand a stored message without samples to its device's shard (device_entry). */
static void push_alive(struct iw_conn_ingest *c, const struct iw_series *se, bool retained,
                       int64_t ts, char flag, int64_t now)
{
    struct iw_shard_item it = {
        .series_id = se->id, .flag = flag, .conn = c->idx, .last = 1, .retained = retained,
        .ts = ts, .recv_ms = now,
    };
    struct iw_shard *sh = &c->d->shards[se->device_hash % (uint32_t)c->d->n_shards];
    if (iw_mpmc_push(&sh->q, &it) != IW_OK) {
        iw_stat_add(&iw_stats.backpressure_waits, 1);
        iw_mpmc_push_wait(&sh->q, &it);
    }
}

/*
 * The time given a message without ts: its time of receipt, `now`. A backlog
 * delivered at reconnect comes many per millisecond, and one point per
 * (series, ts) would keep only the last of each millisecond: each message of
 * a device gets a millisecond of its own, the next one free after the last
 * (devices that share a slot may push each other's times a little later).
 * relaxed: no other data is published through the slot.
 */
static int64_t receipt_ts(struct iw_daemon *d, uint32_t device_hash, int64_t now)
{
    _Atomic int64_t *last = &d->recv_ts[device_hash & (IW_RECV_TS_SLOTS - 1)];
    int64_t prev = atomic_load_explicit(last, memory_order_relaxed), ts;

    do {
        ts = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak_explicit(last, &prev, ts, memory_order_relaxed,
                                                    memory_order_relaxed));
    return ts;
}

/*
 * A QoS 2 message without ts delivered again after a kill -9 (Paho restores
 * it; the broker resends PUBREL) must land on the point it was stored at, not
 * on a new time of receipt (SPEC §2: none stored twice). Its time is kept
 * under a receipt key written with its samples (mqtt_persist.h); a new
 * PUBLISH on the id deletes it. true with *ts when the message had one.
 * Only messages without ts pay this read (and the store's copy of the value).
 */
static bool kept_receipt_ts(struct iw_conn_ingest *c, const char *key, int64_t *ts)
{
    void *v = NULL;
    size_t len = 0;
    bool found = false;

    if (iw_store_meta_get(c->d->store, key, &v, &len) == IW_OK && len == 8) {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = u << 8 | ((const unsigned char *)v)[i];
        *ts = (int64_t)u;
        found = true;
    }
    free(v);
    return found;
}

static void put_receipt_ts(struct iw_wbatch *wb, const char *key, int64_t ts)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)ts >> (56 - 8 * i));
    iw_wbatch_put_meta(wb, key, b, sizeof(b));
}

/*
 * The latest receipt time each connection stored, under "rx/<idx>", written
 * in the batch of the message that used it: so it is on disk exactly when
 * that message's points are, and one writer (the connection's thread) keeps
 * each key in step. The restart's stamps start after the greatest.
 */
#define RX_LAST_PREFIX "rx/"

static int rx_last_max(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    int64_t *max = ctx;
    uint64_t u = 0;
    (void)key;
    (void)klen;
    if (vlen != 8)
        return 0;                           /* not ours: leave it */
    for (int i = 0; i < 8; i++)
        u = u << 8 | ((const unsigned char *)val)[i];
    if ((int64_t)u > *max)
        *max = (int64_t)u;
    return 0;
}

void iw_ingest_restore_receipts(struct iw_daemon *d)
{
    int64_t last = INT64_MIN;
    int rc = iw_store_meta_scan(d->store, RX_LAST_PREFIX, rx_last_max, &last);

    if (rc != IW_OK) {
        IW_LOG_WARN("ingest", "cannot read the last receipt times of the previous run: %s; "
                    "messages without ts are stamped from the clock, and may replace points "
                    "an earlier backlog stored ahead of it (check the disk)", iw_strerror(rc));
        return;
    }
    if (last == INT64_MIN)
        return;
    /* Before any connection exists: nothing reads the slots yet. */
    for (size_t i = 0; i < IW_RECV_TS_SLOTS; i++)
        atomic_store_explicit(&d->recv_ts[i], last, memory_order_relaxed);
    if (last > iw_now_ms())
        IW_LOG_INFO("ingest", "messages without ts are stamped after %lld ms ahead of the clock, "
                    "where the previous run's backlog left off", (long long)(last - iw_now_ms()));
}

/* Test-only kill points (daemon_int.h): SIGKILL when *n reaches at (0: off).
 * relaxed: a count of writes; the kill needs no other data. */
static inline void test_kill_at(const char *hook, const char *when, _Atomic int64_t *n,
                                int64_t at)
{
    if (IW_LIKELY(at <= 0)
        || atomic_fetch_add_explicit(n, 1, memory_order_relaxed) + 1 != at)
        return;
    IW_LOG_WARN("ingest", "%s: killing myself (SIGKILL) %s write %lld", hook, when, (long long)at);
    raise(SIGKILL);
}

/* Test-only (ISLEWATCH_TEST_FAIL_WRITES_IF, daemon_int.h): the write a full disk refuses. */
static int test_failed_write(struct iw_conn_ingest *c, struct iw_diag *diag)
{
    iw_diag_set(diag, NULL, 0, 0, "RocksDB write refused (ISLEWATCH_TEST_FAIL_WRITES_IF: %s "
                "exists)", c->d->test_fail_writes_if);
    return IW_E_STORE;
}

/*
 * Write the message's batch, then its late marks (mark_raced), until both
 * are in the WAL. A failing store (disk full, an I/O error) is retried here,
 * with a nap growing to 1 s, rather than by handing the message back to Paho:
 * Paho would queue it and every later one behind it, deliver one of them per
 * packet that arrives (so a backlog waits for traffic once the disk is back),
 * and keep the queue in its persistence, in the same failing store, so a stop
 * lost it. Blocking this callback stops Paho reading, and the broker queues
 * (SPEC §2). Only a stopping daemon gives the message back (it is the one a
 * stop can lose, as a kill -9 can). IW_OK once durable.
 */
static int store_durably(struct iw_conn_ingest *c, size_t n_items)
{
    struct iw_diag diag = {0};
    bool points = false;
    int64_t nap_ms = 100;

    for (;;) {
        int64_t t0 = iw_mono_ns();
        int rc;
        if (IW_UNLIKELY(c->d->test_fail_writes_if != NULL)
            && access(c->d->test_fail_writes_if, F_OK) == 0) {
            rc = test_failed_write(c, &diag);
        } else if (nap_ms > 100 && !iw_store_has_space(c->d->store)) {
            /* After a failure, not tried while the disk is full: Debian's
             * RocksDB, with its assertions on, aborts on writes that follow
             * a failed one there (seen after ~45 s of retries). */
            iw_diag_set(&diag, NULL, 0, 0, "the file system of storage.path has less than "
                        "1 MiB free");
            rc = IW_E_STORE;
        } else {
            rc = iw_store_write(c->d->store, c->wb, &diag);   /* the points, or then the marks */
        }
        if (rc == IW_OK && !points) {
            points = true;
            iw_stats_write((uint64_t)(iw_mono_ns() - t0), n_items > 0 ? n_items : 1);
            rc = mark_raced(c, n_items, &diag);            /* leaves its marks in c->wb */
        }
        if (rc == IW_OK)
            break;
        iw_complain(&store_complaint, IW_LOG_LEVEL_ERROR, "ingest", "%s; the message is "
                    "written again until it succeeds, and the broker keeps the next ones (a "
                    "write-ahead-log error, after a full disk say, lasts until islewatchd "
                    "restarts: free the space, then restart it)", iw_diag_first(&diag));
        iw_diag_fini(&diag);
        iw_stat_add(&iw_stats.store_errors, 1);
        /* relaxed: a status flag for /readyz, nothing is read through it. */
        atomic_store_explicit(&iw_stats.store_failing, 1, memory_order_relaxed);
        if (atomic_load(&c->d->stopping))
            return IW_E_STORE;
        struct timespec ts = { nap_ms / 1000, (nap_ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
        nap_ms = nap_ms < 1000 ? nap_ms * 2 : 1000;
    }
    /* Written to only when it changes: a load per message, no shared store. */
    if (IW_UNLIKELY(atomic_load_explicit(&iw_stats.store_failing, memory_order_relaxed)))
        atomic_store_explicit(&iw_stats.store_failing, 0, memory_order_relaxed);
    return IW_OK;
}

int iw_ingest_message(struct iw_conn_ingest *c, const char *topic, size_t tlen,
                      const char *payload, size_t plen, bool retained, int qos2_id)
{
    /* acquire: pairs with the release store of a new view on reload, so the
     * view's patterns and config are fully visible here. */
    const struct iw_ingest_view *v = atomic_load_explicit(&c->d->view, memory_order_acquire);
    const struct iw_config *cfg = v->cfg;
    struct iw_topic_match m;
    struct iw_payload_opts po;
    size_t src, n_items = 0, prefix;
    uint32_t long_names = 0, full_names = 0;
    int64_t now = iw_now_ms();
    int r;

    for (src = 0; src < v->n; src++)
        if (iw_topic_match(&v->pat[src], topic, tlen, &m))
            break;
    if (src == v->n) {
        reject(c, v, -1, IW_REJ_NO_SOURCE, topic, tlen, payload, plen);
        return 1;
    }
    iw_stat_add(&iw_stats.received[v->slot[src]], 1);
    if (plen > cfg->ingest.max_payload) {
        reject(c, v, (int)src, IW_REJ_TOO_LARGE, topic, tlen, payload, plen);
        return 1;
    }
    if (!iw_label_valid(m.site, m.site_len) || !iw_label_valid(m.device, m.device_len)) {
        reject(c, v, (int)src, IW_REJ_BAD_LABEL, topic, tlen, payload, plen);
        return 1;
    }
    po.ts_field = cfg->sources[src].ts_field;
    po.event = cfg->sources[src].format == IW_FMT_EVENT;
    po.now_ms = now;
    po.max_future_skew_ms = cfg->ingest.max_future_skew_ms;
    po.max_age_ms = cfg->storage.retention_raw_ms;
    r = iw_payload_decode(payload, plen, &po, &c->dec);
    if (r >= 0) {
        reject(c, v, (int)src, (enum iw_reject)r, topic, tlen, payload, plen);
        return 1;
    }
    /* A retained copy comes again at every subscribe (restart, reconnect): without
     * its own ts, "the time of receipt" would store it anew each time, a sample
     * the device never sent. Live, with the retain flag clear, it was stored. */
    if (retained && !c->dec.has_ts) {
        iw_complain(&retained_complaint, IW_LOG_LEVEL_INFO, "ingest",
                    "skipped the retained message on \"%.*s\": it has no \"%s\", so its time is "
                    "unknown (it was stored when it arrived live); add \"%s\" to store it on "
                    "subscribe too", (int)(tlen > 200 ? 200 : tlen), topic, po.ts_field,
                    po.ts_field);
        return 1;
    }

    /* "<source>/<site>/<device>/" then each metric. */
    const char *sname = cfg->sources[src].name;
    prefix = append(c->name, 0, sizeof(c->name), sname, strlen(sname));
    prefix = append(c->name, prefix, sizeof(c->name), "/", 1);
    prefix = append(c->name, prefix, sizeof(c->name), m.site, m.site_len);
    prefix = append(c->name, prefix, sizeof(c->name), "/", 1);
    prefix = append(c->name, prefix, sizeof(c->name), m.device, m.device_len);
    prefix = append(c->name, prefix, sizeof(c->name), "/", 1);
    if (prefix >= sizeof(c->name) - 1) {
        reject(c, v, (int)src, IW_REJ_BAD_LABEL, topic, tlen, payload, plen);
        return 1;
    }

    uint32_t prefix_hash = iw_hash(c->name, prefix);    /* once, not once per metric */
    struct iw_dev_cache_ent *dc = &c->dev_cache[prefix_hash & (IW_DEV_CACHE - 1)];
    if (dc->prefix_hash != prefix_hash) {
        dc->prefix_hash = prefix_hash;
        memset(dc->se, 0, sizeof(dc->se));
        dc->dev = NULL;
    }
    char rkey[IW_RECEIPT_KEY_MAX];
    bool keep_receipt = (!c->dec.has_ts || c->qos2_marks) && qos2_id > 0
                        && iw_mqtt_receipt_key(c->client_id, qos2_id, rkey, sizeof(rkey)) == 0;
    bool stamped = false;
    if (!c->dec.has_ts && !(keep_receipt && kept_receipt_ts(c, rkey, &c->dec.ts))) {
        c->dec.ts = receipt_ts(c->d, prefix_hash, c->dec.ts);
        stamped = c->dec.ts > c->rx_last;
    }
    iw_wbatch_clear(c->wb);
    if (keep_receipt)                     /* rewritten with the same time on a redelivery */
        put_receipt_ts(c->wb, rkey, c->dec.ts);
    if (stamped) {                        /* a restart stamps after it (RX_LAST_PREFIX) */
        char key[8];
        c->rx_last = c->dec.ts;
        snprintf(key, sizeof(key), RX_LAST_PREFIX "%u", (unsigned)c->idx);
        put_receipt_ts(c->wb, key, c->rx_last);
    }
    for (size_t i = 0; i < c->dec.n; i++) {
        const struct iw_psample *s = &c->dec.s[i];
        size_t mlen = strlen(s->metric);
        size_t len = append(c->name, prefix, sizeof(c->name), s->metric, mlen);
        uint32_t h = iw_hash_cont(prefix_hash, s->metric, mlen);
        const struct iw_series *se = i < IW_DEV_CACHE_METRICS ? dc->se[i] : NULL;
        int rc = IW_OK;

        if (len >= sizeof(c->name) - 1) {
            long_names++;                     /* counted with the decoder's drops, at the end */
            continue;
        }
        /* The cached series is used only if its whole name matches. */
        if (se == NULL || se->hash != h || se->len != len || memcmp(se->name, c->name, len) != 0) {
            rc = iw_store_series_intern_h(c->d->store, c->name, len, h, &se);
            if (rc == IW_OK && i < IW_DEV_CACHE_METRICS)
                dc->se[i] = se;
        }
        if (rc == IW_E_FULL) {
            /* Bad input, not a store failure: retrying would block the
             * connection for good. Drop the member, keep the rest (SPEC §1). */
            iw_complain(&store_complaint, IW_LOG_LEVEL_ERROR, "ingest",
                        "cannot create series %.*s: the series dictionary is full (%u "
                        "series); its sample is dropped. A device naming a new member in every "
                        "message fills it: find it with 'islewatch series'", (int)len, c->name,
                        iw_store_series_count(c->d->store));
            full_names++;
            continue;
        }
        if (rc != IW_OK) {
            iw_complain(&store_complaint, IW_LOG_LEVEL_ERROR, "ingest",
                        "cannot create series %.*s: %s; the message will be retried (check "
                        "the disk)", (int)len, c->name, iw_strerror(rc));
            iw_stat_add(&iw_stats.store_errors, 1);
            return 0;                         /* keep the message: Paho delivers it again */
        }
        iw_wbatch_put_point(c->wb, se->id, c->dec.ts, s->value, s->flag);
        bool late = iw_below_wm(c->d, se->id, c->dec.ts);
        if (late)                             /* in the point's own write (pipeline.c) */
            iw_wbatch_mark_late(c->wb, se->id, c->dec.ts, 1);
        c->items[n_items] = (struct iw_shard_item){
            .series_id = se->id, .flag = s->flag, .is_event = po.event, .conn = c->idx,
            .marked = late, .retained = retained, .ts = c->dec.ts, .value = s->value,
            .recv_ms = now,
        };
        c->series[n_items] = se;
        n_items++;
    }
    const struct iw_series *alive = n_items == 0 ? device_entry(c, dc, prefix) : NULL;
    if (alive != NULL)                    /* no sample: the message itself (device_entry) */
        iw_wbatch_put_point(c->wb, alive->id, c->dec.ts, 0, c->dec.msg_flag);
    if (n_items > 0 || alive != NULL) {
        test_kill_at("ISLEWATCH_TEST_KILL_BEFORE_WRITES", "before", &c->d->test_writes_before,
                     c->d->test_kill_before);
        if (store_durably(c, n_items) != IW_OK)
            return 0;                         /* stored again if it was (same value): idempotent */
        test_kill_at("ISLEWATCH_TEST_KILL_AFTER_WRITES", "after", &c->d->test_writes,
                     c->d->test_kill_after);
        /* Durable now: how late against the message's own ts (islewatch_ingest_delay_seconds). */
        if (c->dec.has_ts)
            iw_stats_ingest_delay(c->dec.ts);
    }
    /* Durable now. Hand the samples to their device's shard, the last one
     * marked so the shard sees the message whole; a full queue blocks this
     * thread, which stops Paho reading: that is the backpressure (SPEC §2). */
    if (n_items > 0)
        c->items[n_items - 1].last = 1;
    for (size_t i = 0; i < n_items; i++) {
        struct iw_shard *sh = &c->d->shards[c->series[i]->device_hash % (uint32_t)c->d->n_shards];
        if (iw_mpmc_push(&sh->q, &c->items[i]) != IW_OK) {
            iw_stat_add(&iw_stats.backpressure_waits, 1);
            iw_mpmc_push_wait(&sh->q, &c->items[i]);
        }
    }
    if (alive != NULL)
        push_alive(c, alive, retained, c->dec.ts, c->dec.msg_flag, now);
    /* A message none of whose samples survived (all dropped, or only labels)
     * stored nothing: it must not count as stored (SPEC §7). */
    if (n_items > 0) {
        iw_stat_add(&iw_stats.stored_points[v->slot[src]], n_items);
        iw_stat_add(&iw_stats.stored_messages[v->slot[src]], 1);
        /* relaxed: a gauge read by /metrics alone; no other data depends on it. */
        atomic_store_explicit(&iw_stats.last_stored_ms[v->slot[src]], now, memory_order_relaxed);
    }
    /* Last, after the store: a retried message (return 0 above) is not
     * counted twice, and the counters are final when the republish is seen. */
    if (c->dec.n_member_reasons > 0 || long_names > 0 || full_names > 0)
        reject_members(c, v, src, topic, tlen, payload, plen, n_items, long_names, full_names);
    return 1;
}
