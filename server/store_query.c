/*
 * Reading points and aggregates, maintaining rollups, enforcing retention.
 *
 * Rollups are derived data: a minute rollup is always recomputed from the
 * raw points of its minute (and an hour from its minutes) and written with
 * Put, so redelivered or late samples can never be counted twice. Each series
 * has a watermark W: every minute below W has its rollup. Readers use rollups
 * below W and raw points from W on, so a query's answer never depends on how
 * far the rollups have got.
 */
#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/log.h"
#include "islewatch/topic.h"
#include "store_int.h"
#include "valcodec.h"

/* Iterate one series' keys of one kind in [from, to). */
struct range_it {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    unsigned char hi[IW_KEY_LEN];
};

static void range_open(struct iw_store *st, struct range_it *r, char kind, uint32_t id,
                       int64_t from, int64_t to)
{
    unsigned char lo[IW_KEY_LEN];
    iw_key_series_ts(lo, kind, id, from);
    iw_key_series_ts(r->hi, kind, id, to);
    r->ro = rocksdb_readoptions_create();
    /* The upper bound lets RocksDB stop at the range's end instead of reading on. */
    rocksdb_readoptions_set_iterate_upper_bound(r->ro, (const char *)r->hi, IW_KEY_LEN);
    r->it = rocksdb_create_iterator(st->db, r->ro);
    rocksdb_iter_seek(r->it, (const char *)lo, IW_KEY_LEN);
}

static void range_close(struct range_it *r)
{
    rocksdb_iter_destroy(r->it);
    rocksdb_readoptions_destroy(r->ro);
}

static bool range_next(struct range_it *r, int64_t *ts, const char **v, size_t *vl)
{
    size_t kl;
    const char *k;

    if (!rocksdb_iter_valid(r->it))
        return false;
    k = rocksdb_iter_key(r->it, &kl);
    if (kl != IW_KEY_LEN)
        return false;
    *ts = iw_key_get_ts((const unsigned char *)k + 5);
    *v = rocksdb_iter_value(r->it, vl);
    return true;
}

/* False for a value this version cannot read (readers skip it). */
static bool decode_point(int64_t ts, const char *v, size_t vl, struct iw_point *p)
{
    p->ts = ts;
    return iw_point_val_decode(v, vl, &p->value, &p->flag);
}

int iw_store_read_points(struct iw_store *st, uint32_t id, int64_t from, int64_t to,
                         int (*cb)(void *ctx, const struct iw_point *), void *ctx)
{
    struct range_it r;
    int64_t ts;
    const char *v;
    size_t vl;

    if (from >= to)
        return IW_OK;
    range_open(st, &r, 'P', id, from, to);
    while (range_next(&r, &ts, &v, &vl)) {
        struct iw_point p;
        if (decode_point(ts, v, vl, &p) && cb(ctx, &p) != 0)
            break;
        rocksdb_iter_next(r.it);
    }
    range_close(&r);
    return IW_OK;
}

/* ---- rollup values ---- */

/*
 * A rollup's value (store format 2, compact values from valcodec.h):
 *   0x01 value, zigzag(last_ts - bucket)                 one sample: min = max = sum = last
 *   0x02 count, min, max, sum, last, zigzag(last_ts - bucket)
 * At one sample per minute every minute rollup is the one-sample form, a few
 * bytes instead of six doubles.
 */
#define ROLLUP_MAX (2 + 10 + 4 * IW_VAL_MAX + 10)

static uint64_t zigzag(int64_t x) { return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63); }
static int64_t unzigzag(uint64_t z) { return (int64_t)(z >> 1) ^ -(int64_t)(z & 1); }

static size_t rollup_encode(const struct iw_rollup *r, unsigned char out[ROLLUP_MAX])
{
    size_t n = 1;
    if (r->count == 1) {
        out[0] = 0x01;
        n += iw_val_encode(r->last, out + n);
    } else {
        out[0] = 0x02;
        n += iw_varint_put(r->count, out + n);
        n += iw_val_encode(r->min, out + n);
        n += iw_val_encode(r->max, out + n);
        n += iw_val_encode(r->sum, out + n);
        n += iw_val_encode(r->last, out + n);
    }
    n += iw_varint_put(zigzag(r->last_ts - r->ts), out + n);
    return n;
}

static bool rollup_decode(int64_t ts, const char *v, size_t vl, struct iw_rollup *r)
{
    const unsigned char *p = (const unsigned char *)v, *end = p + vl;
    uint64_t dt;

    if (vl < 1)
        return false;
    r->ts = ts;
    if (*p == 0x01) {
        p++;
        if (!iw_val_decode(&p, end, &r->last, NULL))
            return false;
        r->min = r->max = r->sum = r->last;
        r->count = 1;
    } else if (*p == 0x02) {
        p++;
        if (!iw_varint_get(&p, end, &r->count) || !iw_val_decode(&p, end, &r->min, NULL) ||
            !iw_val_decode(&p, end, &r->max, NULL) || !iw_val_decode(&p, end, &r->sum, NULL) ||
            !iw_val_decode(&p, end, &r->last, NULL))
            return false;
    } else {
        return false;
    }
    if (!iw_varint_get(&p, end, &dt) || p != end)
        return false;
    r->last_ts = ts + unzigzag(dt);
    return true;
}

static void rollup_reset(struct iw_rollup *r, int64_t ts)
{
    r->ts = ts;
    r->min = DBL_MAX;
    r->max = -DBL_MAX;
    r->sum = 0;
    r->last = 0;
    r->count = 0;
    r->last_ts = INT64_MIN;
}

static void rollup_add_point(struct iw_rollup *r, int64_t ts, double v)
{
    if (v < r->min) r->min = v;
    if (v > r->max) r->max = v;
    r->sum += v;
    r->count++;
    if (ts >= r->last_ts) {
        r->last_ts = ts;
        r->last = v;
    }
}

static void rollup_merge(struct iw_rollup *r, const struct iw_rollup *o)
{
    if (o->count == 0)
        return;
    if (o->min < r->min) r->min = o->min;
    if (o->max > r->max) r->max = o->max;
    r->sum += o->sum;
    r->count += o->count;
    if (o->last_ts >= r->last_ts) {
        r->last_ts = o->last_ts;
        r->last = o->last;
    }
}

/*
 * Fold the raw points of the minute r is at into *out (reset to that minute)
 * and leave r at the next minute's first point; with del, also delete every
 * point folded into that batch. False when r has no point left. A minute
 * whose points are all unreadable comes back with count 0.
 */
static bool fold_minute(struct range_it *r, struct iw_rollup *out, struct iw_wbatch *del)
{
    int64_t ts, m;
    const char *v;
    size_t vl;

    if (!range_next(r, &ts, &v, &vl))
        return false;
    m = iw_floor_to(ts, IW_MS_PER_MIN);
    rollup_reset(out, m);
    do {
        struct iw_point p;
        if (decode_point(ts, v, vl, &p))
            rollup_add_point(out, p.ts, p.value);
        if (del != NULL) {
            size_t kl;
            const char *key = rocksdb_iter_key(r->it, &kl);
            iw_store_delete_raw(del, key, kl);
        }
        rocksdb_iter_next(r->it);
    } while (range_next(r, &ts, &v, &vl) && iw_floor_to(ts, IW_MS_PER_MIN) == m);
    return true;
}

/* ---- minute stream ---- */

/*
 * Store format 3 keeps no 'M' key for a minute that holds exactly one raw
 * point: its rollup is that point. At one sample per minute, the common case,
 * an 'M' key per minute would double the database (bench/RESULTS.md). Readers
 * of minute rollups therefore walk the 'M' keys and the raw points together:
 * a minute with an 'M' key is read from it and its raw points are skipped;
 * any other minute is folded from its raw points, the same fold
 * iw_store_rollup_range does. Format 2 databases have an 'M' key for every
 * rolled minute, and the same walk reads them. Retention writes the 'M' key of
 * a one-point minute before the point expires (iw_store_retention).
 */
struct minute_it {
    struct range_it m, p;
    uint32_t id;
};

static void minute_open(struct iw_store *st, struct minute_it *mi, uint32_t id, int64_t from,
                        int64_t to)
{
    mi->id = id;
    range_open(st, &mi->m, 'M', id, from, to);
    range_open(st, &mi->p, 'P', id, from, to);
}

static void minute_close(struct minute_it *mi)
{
    range_close(&mi->m);
    range_close(&mi->p);
}

/* The next minute's rollup in time order; false after the last. */
static bool minute_next(struct minute_it *mi, struct iw_rollup *out)
{
    for (;;) {
        int64_t mts = INT64_MAX, pts = INT64_MAX;
        const char *mv = NULL, *pv = NULL;
        size_t mvl = 0, pvl = 0;
        bool has_m = range_next(&mi->m, &mts, &mv, &mvl);
        bool has_p = range_next(&mi->p, &pts, &pv, &pvl);
        int64_t pm = has_p ? iw_floor_to(pts, IW_MS_PER_MIN) : INT64_MAX;

        if (!has_m && !has_p)
            return false;
        if (has_m && mts <= pm) {
            bool ok = rollup_decode(mts, mv, mvl, out);
            rocksdb_iter_next(mi->m.it);
            if (!ok)
                continue;               /* unreadable: the minute's raw points answer instead */
            if (pm == mts) {            /* skip the raw points the 'M' key stands for */
                unsigned char k[IW_KEY_LEN];
                iw_key_series_ts(k, 'P', mi->id, mts + IW_MS_PER_MIN);
                rocksdb_iter_seek(mi->p.it, (const char *)k, IW_KEY_LEN);
            }
            return true;
        }
        if (fold_minute(&mi->p, out, NULL) && out->count > 0)
            return true;
    }
}

/* Write the batch once it holds 10,000 operations; 0 or the write's status. */
static int flush_big(struct iw_store *st, struct iw_wbatch *b)
{
    int rc = IW_OK;
    if (iw_wbatch_count(b) >= 10000) {
        rc = iw_store_write(st, b, NULL);
        iw_wbatch_clear(b);
    }
    return rc;
}

/* ---- watermark ---- */

int64_t iw_store_rollup_watermark(struct iw_store *st, uint32_t id)
{
    unsigned char k[5];
    size_t vl;
    char *err = NULL;
    int64_t w = INT64_MIN;

    k[0] = 'W';
    iw_key_put_u32(k + 1, id);
    char *v = rocksdb_get(st->db, st->ropts, (const char *)k, 5, &vl, &err);
    if (err != NULL) {
        rocksdb_free(err);
        return INT64_MIN;
    }
    if (v != NULL && vl == 8)
        memcpy(&w, v, 8);
    rocksdb_free(v);
    return w;
}

/* Recompute one hour's rollup from its minute rollups into the batch. */
static void rollup_hour(struct iw_store *st, struct iw_wbatch *b, uint32_t id, int64_t hour,
                        const struct iw_rollup *fresh, size_t n_fresh)
{
    struct minute_it mi;
    struct iw_rollup h, m;
    size_t fi = 0;
    unsigned char k[IW_KEY_LEN];
    unsigned char val[ROLLUP_MAX];

    /* The batch is not yet visible to reads: merge the minutes computed in
     * this call (fresh, sorted) over the stored ones, where fresh wins. */
    rollup_reset(&h, hour);
    minute_open(st, &mi, id, hour, hour + IW_MS_PER_HOUR);
    while (minute_next(&mi, &m)) {
        while (fi < n_fresh && fresh[fi].ts < m.ts) {
            if (fresh[fi].ts >= hour && fresh[fi].ts < hour + IW_MS_PER_HOUR)
                rollup_merge(&h, &fresh[fi]);
            fi++;
        }
        if (fi < n_fresh && fresh[fi].ts == m.ts) {
            rollup_merge(&h, &fresh[fi]);
            fi++;
        } else {
            rollup_merge(&h, &m);
        }
    }
    minute_close(&mi);
    for (; fi < n_fresh; fi++)
        if (fresh[fi].ts >= hour && fresh[fi].ts < hour + IW_MS_PER_HOUR)
            rollup_merge(&h, &fresh[fi]);
    if (h.count == 0)
        return;
    iw_key_series_ts(k, 'H', id, hour);
    iw_store_put_raw(b, k, sizeof(k), val, rollup_encode(&h, val));
}

/* The rollups of [from, to) (see iw_store_rollup_range) into b. */
static int rollup_into(struct iw_store *st, struct iw_wbatch *b, uint32_t id, int64_t from,
                       int64_t to, bool advance)
{
    struct range_it r;
    struct iw_rollup cur, *mins = NULL;
    size_t n_mins = 0, cap = 0;

    from = iw_floor_to(from, IW_MS_PER_MIN);
    to = iw_floor_to(to, IW_MS_PER_MIN);
    if (from >= to && !advance)
        return IW_OK;

    range_open(st, &r, 'P', id, from, to);
    while (fold_minute(&r, &cur, NULL)) {
        if (cur.count == 0)
            continue;
        if (n_mins == cap) {
            cap = cap ? cap * 2 : 64;
            struct iw_rollup *nm = realloc(mins, cap * sizeof(*nm));
            if (nm == NULL) {
                range_close(&r);
                free(mins);
                return IW_E_NOMEM;
            }
            mins = nm;
        }
        mins[n_mins++] = cur;
    }
    range_close(&r);

    /* Minutes: Put each computed one that holds two points or more (format 3:
     * a one-point minute is read from its point, see minute_next). A minute's
     * count never goes down (raw points are deleted only by retention, a whole
     * minute at a time), so no stale 'M' key can remain; and range tombstones
     * here would slow every later read of the memtable. */
    for (size_t i = 0; i < n_mins; i++) {
        unsigned char k[IW_KEY_LEN];
        unsigned char val[ROLLUP_MAX];
        if (mins[i].count == 1 && !st->dense_minutes)
            continue;
        iw_key_series_ts(k, 'M', id, mins[i].ts);
        iw_store_put_raw(b, k, sizeof(k), val, rollup_encode(&mins[i], val));
    }
    /*
     * Hours touched, once complete. Readers take an hour's rollup only below
     * the watermark's hour (agg_segment), so the hour still open is left for
     * the call that moves the watermark past its end: the hours of this call's
     * minutes, and the hour the old watermark (from) was in, whose earlier
     * minutes were rolled by earlier calls. Recomputing the open hour at every
     * minute instead would read up to 60 minutes back each time. A late
     * minute (no advance) recomputes its hour at once.
     */
    int64_t last_hour = INT64_MIN, from_hour = iw_floor_to(from, IW_MS_PER_HOUR);
    bool from_hour_done = false;
    for (size_t i = 0; i < n_mins; i++) {
        int64_t h = iw_floor_to(mins[i].ts, IW_MS_PER_HOUR);
        if (h != last_hour && (!advance || h + IW_MS_PER_HOUR <= to)) {
            rollup_hour(st, b, id, h, mins, n_mins);
            from_hour_done |= h == from_hour;
        }
        last_hour = h;
    }
    if (advance && !from_hour_done && from_hour + IW_MS_PER_HOUR <= to)
        rollup_hour(st, b, id, from_hour, mins, n_mins);
    if (advance) {
        unsigned char k[5];
        k[0] = 'W';
        iw_key_put_u32(k + 1, id);
        iw_store_put_raw(b, k, 5, &to, 8);
    }
    free(mins);
    return IW_OK;
}

/* rollup_into, plus `marks` taken off the late mark of mark_hour, in one write. */
static int rollup_write(struct iw_store *st, uint32_t id, int64_t from, int64_t to, bool advance,
                        int64_t mark_hour, uint32_t marks)
{
    struct iw_wbatch *b = iw_wbatch_new();
    if (b == NULL)
        return IW_E_NOMEM;
    int rc = rollup_into(st, b, id, from, to, advance);
    if (marks > 0)
        iw_store_merge_late(b, id, mark_hour, -(int64_t)marks);
    if (rc == IW_OK && iw_wbatch_count(b) > 0)
        rc = iw_store_write(st, b, NULL);
    iw_wbatch_free(b);
    return rc;
}

int iw_store_rollup_range(struct iw_store *st, uint32_t id, int64_t from, int64_t to, bool advance)
{
    return rollup_write(st, id, from, to, advance, 0, 0);
}

int iw_store_rollup_late(struct iw_store *st, uint32_t id, int64_t hour, int64_t below,
                         uint32_t marks)
{
    int64_t to = hour + IW_MS_PER_HOUR;
    /* Above `below` (the watermark) readers use raw points: nothing to redo there. */
    return rollup_write(st, id, hour, below < to ? below : to, false, hour, marks);
}

static int64_t fixed64_le(const char *v, size_t vl)
{
    uint64_t u = 0;
    for (size_t i = 0; i < 8 && i < vl; i++)
        u |= (uint64_t)(unsigned char)v[i] << (8 * i);
    return vl == 8 ? (int64_t)u : 0;
}

int iw_store_rollup_recover(struct iw_store *st, uint64_t *hours)
{
    struct iw_wbatch *drop = iw_wbatch_new();
    rocksdb_iterator_t *it;
    int rc = IW_OK;

    *hours = 0;
    if (drop == NULL)
        return IW_E_NOMEM;
    if (st->read_only) {
        iw_wbatch_free(drop);
        return IW_E_STATE;
    }
    it = rocksdb_create_iterator(st->db, st->ropts);
    for (rocksdb_iter_seek(it, "R", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl == 0 || k[0] != 'R')
            break;
        if (kl == IW_KEY_LEN && fixed64_le(v, vl) > 0) {
            uint32_t id = iw_key_get_u32((const unsigned char *)k + 1);
            int64_t hour = iw_key_get_ts((const unsigned char *)k + 5);
            if (iw_store_rollup_range(st, id, hour, hour + IW_MS_PER_HOUR, false) != IW_OK) {
                rc = IW_E_STORE;              /* keep the mark: the next start tries again */
                continue;
            }
            (*hours)++;
        }
        iw_store_delete_raw(drop, k, kl);     /* nothing is in flight before the first delivery */
        if (rc == IW_OK && (rc = flush_big(st, drop)) != IW_OK)
            break;
    }
    rocksdb_iter_destroy(it);
    if (iw_wbatch_count(drop) > 0 && iw_store_write(st, drop, NULL) != IW_OK)
        rc = IW_E_STORE;
    iw_wbatch_free(drop);
    return rc;
}

int iw_store_watermarks(struct iw_store *st, void (*cb)(void *ctx, uint32_t id, int64_t wm),
                        void *ctx)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ropts);
    for (rocksdb_iter_seek(it, "W", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        int64_t w;
        if (kl == 0 || k[0] != 'W')
            break;
        if (kl != 5 || vl != 8)
            continue;
        memcpy(&w, v, 8);
        cb(ctx, iw_key_get_u32((const unsigned char *)k + 1), w);
    }
    rocksdb_iter_destroy(it);
    return IW_OK;
}

/* ---- aggregates ---- */

struct agg_ctx {
    int64_t step;
    struct iw_rollup bucket;
    int (*cb)(void *ctx, const struct iw_rollup *);
    void *ctx;
    bool stop;
};

static void agg_emit(struct agg_ctx *a)
{
    if (a->bucket.count > 0 && !a->stop)
        a->stop = a->cb(a->ctx, &a->bucket) != 0;
}

static void agg_add(struct agg_ctx *a, const struct iw_rollup *r)
{
    int64_t b = iw_floor_to(r->ts, a->step);
    if (b != a->bucket.ts) {
        agg_emit(a);
        rollup_reset(&a->bucket, b);
    }
    rollup_merge(&a->bucket, r);
}

static int agg_point_cb(void *ctx, const struct iw_point *p)
{
    struct agg_ctx *a = ctx;
    struct iw_rollup r;
    rollup_reset(&r, p->ts);
    rollup_add_point(&r, p->ts, p->value);
    agg_add(a, &r);
    return a->stop;
}

static void agg_minutes(struct iw_store *st, struct agg_ctx *a, uint32_t id, int64_t from,
                        int64_t to)
{
    struct minute_it mi;
    struct iw_rollup ru;

    minute_open(st, &mi, id, from, to);
    while (!a->stop && minute_next(&mi, &ru))
        agg_add(a, &ru);
    minute_close(&mi);
}

/*
 * Whole hours [from, to), from their rollups. An hour without one (no data,
 * or storage.retention's 1h shorter than its 1m or raw: the hour's rollup
 * expired, its minutes or points did not) is read from the finer data, so a
 * step of hours answers what a step of minutes does. A gap costs one seek.
 */
static void agg_hours(struct iw_store *st, struct agg_ctx *a, uint32_t id, int64_t from, int64_t to)
{
    struct range_it r;
    int64_t ts, next = from;
    const char *v;
    size_t vl;

    range_open(st, &r, 'H', id, from, to);
    while (!a->stop && range_next(&r, &ts, &v, &vl)) {
        struct iw_rollup ru;
        if (ts > next)
            agg_minutes(st, a, id, next, ts);
        if (!a->stop && rollup_decode(ts, v, vl, &ru))
            agg_add(a, &ru);
        next = ts + IW_MS_PER_HOUR;
        rocksdb_iter_next(r.it);
    }
    range_close(&r);
    if (!a->stop && next < to)
        agg_minutes(st, a, id, next, to);
}

static int64_t ceil_to(int64_t t, int64_t step)
{
    int64_t f = iw_floor_to(t, step);
    return f == t ? t : f + step;
}

/* Segments [from,to) at resolution res: rollups where whole, finer data at the edges. */
static void agg_segment(struct iw_store *st, struct agg_ctx *a, uint32_t id, int64_t from,
                        int64_t to, enum iw_resolution res, int64_t wm)
{
    if (from >= to || a->stop)
        return;
    if (res == IW_RES_RAW) {
        if (iw_store_read_points(st, id, from, to, agg_point_cb, a) != IW_OK)
            a->stop = true;
        return;
    }
    int64_t unit = res == IW_RES_1H ? IW_MS_PER_HOUR : IW_MS_PER_MIN;
    int64_t lim = to < wm ? to : wm;
    enum iw_resolution finer = res == IW_RES_1H ? IW_RES_1M : IW_RES_RAW;
    int64_t lo = ceil_to(from, unit);
    int64_t hi = lim > from ? iw_floor_to(lim, unit) : lo;
    if (lo >= hi) {
        agg_segment(st, a, id, from, to, finer, wm);
        return;
    }
    agg_segment(st, a, id, from, lo, finer, wm);
    if (res == IW_RES_1H)
        agg_hours(st, a, id, lo, hi);
    else
        agg_minutes(st, a, id, lo, hi);
    agg_segment(st, a, id, hi, to, finer, wm);
}

/*
 * The first hour in [from, to) whose late mark is above zero, or INT64_MAX.
 * Its late samples are stored (the mark was in their write) but its rollups
 * are not yet redone (pipeline.c): readers take raw points from there on.
 */
static int64_t first_marked_hour(struct iw_store *st, uint32_t id, int64_t from, int64_t to)
{
    struct range_it r;
    int64_t ts, first = INT64_MAX;
    const char *v;
    size_t vl;

    range_open(st, &r, 'R', id, iw_floor_to(from, IW_MS_PER_HOUR), to);
    while (range_next(&r, &ts, &v, &vl)) {
        if (fixed64_le(v, vl) > 0) {
            first = ts;
            break;
        }
        rocksdb_iter_next(r.it);
    }
    range_close(&r);
    return first;
}

int iw_store_read_agg(struct iw_store *st, uint32_t id, int64_t from, int64_t to, int64_t step,
                      int (*cb)(void *ctx, const struct iw_rollup *), void *ctx)
{
    struct agg_ctx a = { .step = step, .cb = cb, .ctx = ctx };
    enum iw_resolution res = IW_RES_RAW;
    int64_t wm;

    if (step <= 0 || from >= to)
        return IW_E_INVAL;
    /* The segment edges round from and to to whole minutes and hours: keep
     * them an hour inside int64 so that cannot overflow (no point lives there). */
    if (from < INT64_MIN + IW_MS_PER_HOUR)
        from = INT64_MIN + IW_MS_PER_HOUR;
    if (to > INT64_MAX - IW_MS_PER_HOUR)
        to = INT64_MAX - IW_MS_PER_HOUR;
    rollup_reset(&a.bucket, INT64_MIN);
    wm = iw_store_rollup_watermark(st, id);
    if (wm > from) {                  /* a late hour's rollups are stale until redone */
        int64_t late = first_marked_hour(st, id, from, wm < to ? wm : to);
        if (late < wm)
            wm = late;
    }
    if (step % IW_MS_PER_HOUR == 0)
        res = IW_RES_1H;
    else if (step % IW_MS_PER_MIN == 0)
        res = IW_RES_1M;
    agg_segment(st, &a, id, from, to, res, wm);
    agg_emit(&a);
    return IW_OK;
}

/* ---- series listing ---- */

static int name_cmp(const void *x, const void *y)
{
    const struct iw_series *a = *(const struct iw_series *const *)x;
    const struct iw_series *b = *(const struct iw_series *const *)y;
    return strcmp(a->name, b->name);
}

static size_t levels(const char *glob)
{
    size_t n = 1;
    for (; *glob; glob++)
        n += *glob == '/';
    return n;
}

/* The series matching glob, sorted by name, into *out (malloc'd; *n of them);
 * devices: the devices' own entries instead (iw_series_is_device), by name. */
static int match_sorted(struct iw_store *st, const char *glob, bool devices,
                        const struct iw_series ***out, uint32_t *n_out)
{
    uint32_t n = iw_store_series_count(st), m = 0;
    const struct iw_series **v = malloc((n ? n : 1) * sizeof(*v));
    char dev_glob[600] = "";

    if (v == NULL)
        return IW_E_NOMEM;
    /* A device glob (<source>/<site>/<device>) means every metric of the
     * device, as in a rule's select (SPEC §4). */
    if (!devices && glob != NULL && levels(glob) == 3 && strlen(glob) + 3 <= sizeof(dev_glob)) {
        strcpy(dev_glob, glob);
        strcat(dev_glob, "/*");
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct iw_series *s = iw_store_series_by_id(st, i);
        if (s != NULL && iw_series_is_device(s) == devices
            && (glob == NULL || iw_glob_match(glob, s->name)
                || (dev_glob[0] != '\0' && iw_glob_match(dev_glob, s->name))))
            v[m++] = s;
    }
    iw_sort(v, m, sizeof(*v), name_cmp);
    *out = v;
    *n_out = m;
    return IW_OK;
}

int iw_store_series_match(struct iw_store *st, const char *glob,
                          int (*cb)(void *ctx, const struct iw_series *), void *ctx)
{
    const struct iw_series **v;
    uint32_t m;
    int rc = match_sorted(st, glob, false, &v, &m);

    if (rc != IW_OK)
        return rc;
    for (uint32_t i = 0; i < m; i++)
        if (cb(ctx, v[i]) != 0)
            break;
    free(v);
    return IW_OK;
}

static int count_cb(void *ctx, const struct iw_rollup *r)
{
    *(uint64_t *)ctx += r->count;
    return 0;
}

/* A step of whole hours so long that [first, last] spans a bucket or two. */
#define COUNT_STEP (IW_MS_PER_HOUR * 24 * 366 * 100)

/*
 * A series' raw range: its first and last points by a seek each, its count
 * from the rollups where they are whole (iw_store_read_agg, as a query with
 * --agg count reads it; points at its edges and past the rollup watermark
 * from the raw keys). Reading every point instead cost seconds per listing
 * at 90 days of one-minute data, which the dashboard lists every 5 minutes.
 */
static bool series_range(struct iw_store *st, uint32_t id, struct iw_series_info *info)
{
    unsigned char last_key[IW_KEY_LEN];
    struct range_it r;
    const char *val, *k;
    size_t vl, kl;
    bool found = false;

    range_open(st, &r, 'P', id, INT64_MIN, INT64_MAX);
    if (range_next(&r, &info->first, &val, &vl)) {
        /* Below the upper bound: SeekForPrev needs a target inside the range. */
        iw_key_series_ts(last_key, 'P', id, INT64_MAX - 1);
        rocksdb_iter_seek_for_prev(r.it, (const char *)last_key, IW_KEY_LEN);
        k = rocksdb_iter_valid(r.it) ? rocksdb_iter_key(r.it, &kl) : NULL;
        found = k != NULL && kl == IW_KEY_LEN && memcmp(k, last_key, 5) == 0;
        if (found)
            info->last = iw_key_get_ts((const unsigned char *)k + 5);
    }
    range_close(&r);
    info->count = 0;
    if (found && iw_store_read_agg(st, id, info->first, info->last + 1, COUNT_STEP, count_cb,
                                   &info->count) != IW_OK)
        return false;
    return found;
}

static int list_ranges(struct iw_store *st, const char *glob, bool devices,
                       int (*cb)(void *ctx, const struct iw_series_info *), void *ctx)
{
    const struct iw_series **v;
    uint32_t m;
    int rc = match_sorted(st, glob, devices, &v, &m);

    if (rc != IW_OK)
        return rc;
    for (uint32_t i = 0; i < m; i++) {
        struct iw_series_info info = { .series = v[i] };
        if (!series_range(st, v[i]->id, &info))
            continue;                     /* all its points expired */
        if (cb(ctx, &info) != 0)
            break;
    }
    free(v);
    return IW_OK;
}

int iw_store_series_list(struct iw_store *st, const char *glob,
                         int (*cb)(void *ctx, const struct iw_series_info *), void *ctx)
{
    return list_ranges(st, glob, false, cb, ctx);
}

int iw_store_device_list(struct iw_store *st, const char *glob,
                         int (*cb)(void *ctx, const struct iw_series_info *), void *ctx)
{
    return list_ranges(st, glob, true, cb, ctx);
}

/* ---- retention ---- */

/*
 * Delete one series' raw points before `cut` (a minute boundary, so no minute
 * is split between two runs), keeping each minute's rollup where the 1m
 * retention still wants it (from m_cut on). A series whose watermark is below
 * the cut went quiet before its last minutes were rolled up: that is done
 * first (minutes, hours, watermark), so readers, which use rollups below the
 * watermark, keep seeing them. Then every expiring minute without an 'M' key
 * gets one folded from its points: a one-point minute (format 3 writes no key
 * for it) or one the shard left to the readers (pipeline.c). The batch is
 * written only between minutes, so a crash cannot leave a minute deleted
 * without its rollup.
 */
static int expire_points(struct iw_store *st, struct iw_wbatch *b, uint32_t id, int64_t cut,
                         int64_t m_cut)
{
    struct range_it r, mk;
    struct iw_rollup cur;
    int64_t ts = 0, wm = iw_store_rollup_watermark(st, id);
    const char *v = NULL;
    size_t vl = 0;
    int rc = IW_OK;

    range_open(st, &r, 'P', id, INT64_MIN, cut);
    if (wm < cut && range_next(&r, &ts, &v, &vl)) {
        rc = iw_store_rollup_range(st, id, wm == INT64_MIN || wm < ts ? ts : wm, cut, true);
        if (rc != IW_OK) {
            range_close(&r);
            return rc;
        }
    }
    /* The minute keys, opened after that rollup so that they include it. */
    range_open(st, &mk, 'M', id, INT64_MIN, cut);
    while (fold_minute(&r, &cur, b)) {
        int64_t mts = INT64_MIN;
        const char *mv;
        size_t mvl;
        while (cur.count > 0 && range_next(&mk, &mts, &mv, &mvl) && mts < cur.ts)
            rocksdb_iter_next(mk.it);
        if (cur.count > 0 && cur.ts >= m_cut && mts != cur.ts) {
            unsigned char k[IW_KEY_LEN];
            unsigned char val[ROLLUP_MAX];
            iw_key_series_ts(k, 'M', id, cur.ts);
            iw_store_put_raw(b, k, sizeof(k), val, rollup_encode(&cur, val));
        }
        if ((rc = flush_big(st, b)) != IW_OK)
            break;
    }
    range_close(&mk);
    range_close(&r);
    return rc;
}

int iw_store_retention(struct iw_store *st, int64_t now_ms, int64_t raw_ms, int64_t m_ms, int64_t h_ms)
{
    uint32_t n = iw_store_series_count(st);
    struct iw_wbatch *b = iw_wbatch_new();
    /* 'R': late marks of hours whose points are gone have nothing left to redo. */
    static const char kinds[4] = { 'P', 'M', 'H', 'R' };
    int64_t keep[4] = { raw_ms, m_ms, h_ms, raw_ms };
    int rc = IW_OK;

    if (b == NULL)
        return IW_E_NOMEM;
    /*
     * Per series and resolution, seek to its first key and delete keys while
     * they are older than the cutoff: only expired points are read, never the
     * data that stays (no full scan), and each point is deleted once. Point
     * deletes rather than one range tombstone: range tombstones cannot go
     * through the memtable's per-series insert hints (store.c), and every
     * later read would have to step over them.
     */
    for (uint32_t id = 0; id < n && rc == IW_OK; id++) {
        for (int k = 0; k < 4 && rc == IW_OK; k++) {
            struct range_it r;
            int64_t ts;
            const char *v;
            size_t vl;
            if (keep[k] <= 0)
                continue;
            if (kinds[k] == 'P') {
                rc = expire_points(st, b, id, iw_floor_to(now_ms - keep[k], IW_MS_PER_MIN),
                                   m_ms > 0 ? now_ms - m_ms : INT64_MIN);
                continue;
            }
            range_open(st, &r, kinds[k], id, INT64_MIN, now_ms - keep[k]);
            while (range_next(&r, &ts, &v, &vl)) {
                size_t kl;
                const char *key = rocksdb_iter_key(r.it, &kl);
                iw_store_delete_raw(b, key, kl);
                if ((rc = flush_big(st, b)) != IW_OK)
                    break;
                rocksdb_iter_next(r.it);
            }
            range_close(&r);
        }
    }
    if (rc == IW_OK && iw_wbatch_count(b) > 0)
        rc = iw_store_write(st, b, NULL);
    iw_wbatch_free(b);
    return rc;
}
