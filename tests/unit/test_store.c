/* RocksDB store in a temporary directory: keys, dictionary, points, rollups, retention. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "islewatch/api_json.h"
#include "islewatch/clock.h"
#include "islewatch/store.h"
#include "../../server/store_int.h"

static char dir[256];
static struct iw_store *st;

static void rm_rf(const char *p)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    cr_assert_eq(system(cmd), 0);
}

static void setup(void)
{
    struct iw_diag diag = {0};
    snprintf(dir, sizeof(dir), "/tmp/iw-store-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct iw_store_opts o = { .path = dir, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
}

static void teardown(void)
{
    iw_store_close(st);
    rm_rf(dir);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

Test(store, key_byte_order_is_time_order)
{
    static const int64_t ts[] = { INT64_MIN, -86400000, -1, 0, 1, 1764417600000LL, INT64_MAX };
    unsigned char prev[IW_KEY_LEN], k[IW_KEY_LEN];
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        iw_key_series_ts(k, 'P', 7, ts[i]);
        cr_assert_eq(iw_key_get_ts(k + 5), ts[i], "round trip %lld", (long long)ts[i]);
        if (i > 0)
            cr_assert_lt(memcmp(prev, k, IW_KEY_LEN), 0, "order at %zu", i);
        memcpy(prev, k, IW_KEY_LEN);
    }
    /* A series' keys are contiguous: every key of id 7 sorts before id 8's first. */
    unsigned char k8[IW_KEY_LEN];
    iw_key_series_ts(k, 'P', 7, INT64_MAX);
    iw_key_series_ts(k8, 'P', 8, INT64_MIN);
    cr_assert_lt(memcmp(k, k8, IW_KEY_LEN), 0);
    iw_key_series_ts(k, 'P', 255, INT64_MAX);
    iw_key_series_ts(k8, 'P', 256, INT64_MIN);
    cr_assert_lt(memcmp(k, k8, IW_KEY_LEN), 0, "big-endian ids");
}

struct collect { struct iw_point p[256]; size_t n; };

static int collect_cb(void *ctx, const struct iw_point *p)
{
    struct collect *c = ctx;
    if (c->n < 256)
        c->p[c->n++] = *p;
    return 0;
}

Test(store, points_round_trip_and_overwrite_is_idempotent)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    cr_assert_eq(iw_store_series_intern(st, "water/dongtan/w01/nh3_n", 23, &s), IW_OK);
    cr_assert_str_eq(s->name + s->metric_off, "nh3_n");
    cr_assert_eq(strncmp(s->name + s->site_off, "dongtan/", 8), 0);

    struct iw_wbatch *b = iw_wbatch_new();
    iw_wbatch_put_point(b, s->id, 3000, 0.3, 0);
    iw_wbatch_put_point(b, s->id, 1000, 0.1, 0);
    iw_wbatch_put_point(b, s->id, 2000, 0.2, 'D');
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_clear(b);
    iw_wbatch_put_point(b, s->id, 2000, 0.25, 0);      /* same (series, ts): replaces */
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    struct collect c = {0};
    cr_assert_eq(iw_store_read_points(st, s->id, 0, 10000, collect_cb, &c), IW_OK);
    cr_assert_eq(c.n, 3);
    cr_assert_eq(c.p[0].ts, 1000);
    cr_assert_eq(c.p[1].value, 0.25);
    cr_assert_eq(c.p[1].flag, 0);
    cr_assert_eq(c.p[2].ts, 3000);
}

Test(store, dictionary_survives_reopen_and_read_only_sees_live_writes)
{
    const struct iw_series *a, *b2, *again;
    struct iw_diag diag = {0};
    cr_assert_eq(iw_store_series_intern(st, "air/dongtan/a01/pm25", 20, &a), IW_OK);
    cr_assert_eq(iw_store_series_intern(st, "air/dongtan/a01/pm10", 20, &b2), IW_OK);
    cr_assert_neq(a->id, b2->id);
    cr_assert_eq(iw_store_series_intern(st, "air/dongtan/a01/pm25", 20, &again), IW_OK);
    cr_assert_eq(again, a);
    struct iw_wbatch *b = iw_wbatch_new();
    iw_wbatch_put_point(b, a->id, 5, 35, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    /* A reader beside the running writer (the CLI's --db). */
    struct iw_store *ro;
    struct iw_store_opts o = { .path = dir, .read_only = true, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &ro, &diag), IW_OK, "%s", iw_diag_first(&diag));
    const struct iw_series *rs = iw_store_series_find(ro, "air/dongtan/a01/pm25", 20);
    cr_assert_not_null(rs);
    cr_assert_eq(rs->id, a->id);
    struct collect c = {0};
    cr_assert_eq(iw_store_read_points(ro, rs->id, 0, 10, collect_cb, &c), IW_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.p[0].value, 35.0);
    iw_store_close(ro);

    iw_store_close(st);
    o.read_only = false;
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK);
    cr_assert_eq(iw_store_series_count(st), 2);
    const struct iw_series *n3;
    cr_assert_eq(iw_store_series_intern(st, "air/dongtan/a01/o3", 18, &n3), IW_OK);
    cr_assert_eq(n3->id, 2, "ids continue after reopen");
}

struct aggs { struct iw_rollup r[64]; size_t n; };

static int agg_cb(void *ctx, const struct iw_rollup *r)
{
    struct aggs *a = ctx;
    if (a->n < 64)
        a->r[a->n++] = *r;
    return 0;
}

Test(store, aggregates_equal_raw_whatever_the_rollup_progress)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    int64_t base = 1764417600000LL;                     /* an hour boundary */
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/do", 12, &s), IW_OK);
    struct iw_wbatch *b = iw_wbatch_new();
    /* 3 hours of one sample every 30 s: value = minute index. */
    for (int i = 0; i < 360; i++)
        iw_wbatch_put_point(b, s->id, base + i * 30000LL, (double)(i / 2), 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    struct aggs before = {0}, after = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 3 * IW_MS_PER_HOUR, IW_MS_PER_HOUR,
                                   agg_cb, &before), IW_OK);
    cr_assert_eq(before.n, 3);
    cr_assert_eq(before.r[0].count, 120);
    cr_assert_eq(before.r[1].min, 60.0);
    cr_assert_eq(before.r[1].max, 119.0);
    cr_assert_eq(before.r[2].last, 179.0);

    /* Roll up the first 2.5 hours; answers must not change. */
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + 150 * IW_MS_PER_MIN, true), IW_OK);
    cr_assert_eq(iw_store_rollup_watermark(st, s->id), base + 150 * IW_MS_PER_MIN);
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 3 * IW_MS_PER_HOUR, IW_MS_PER_HOUR,
                                   agg_cb, &after), IW_OK);
    cr_assert_eq(after.n, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(after.r[i].ts, before.r[i].ts);
        cr_expect_eq(after.r[i].count, before.r[i].count, "hour %zu", i);
        cr_expect_eq(after.r[i].sum, before.r[i].sum, "hour %zu", i);
        cr_expect_eq(after.r[i].min, before.r[i].min);
        cr_expect_eq(after.r[i].max, before.r[i].max);
        cr_expect_eq(after.r[i].last, before.r[i].last);
    }
    /* A late sample in a rolled-up minute, then recompute: counted once, even twice over. */
    b = iw_wbatch_new();
    iw_wbatch_put_point(b, s->id, base + 15000, 1000.0, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + IW_MS_PER_MIN, false), IW_OK);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + IW_MS_PER_MIN, false), IW_OK);
    struct aggs late = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + IW_MS_PER_HOUR, IW_MS_PER_HOUR,
                                   agg_cb, &late), IW_OK);
    cr_assert_eq(late.n, 1);
    cr_assert_eq(late.r[0].count, 121);
    cr_assert_eq(late.r[0].max, 1000.0);
    /* 10-minute steps, unaligned start. */
    struct aggs ten = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base + 5 * IW_MS_PER_MIN, base + 30 * IW_MS_PER_MIN,
                                   10 * IW_MS_PER_MIN, agg_cb, &ten), IW_OK);
    cr_assert_eq(ten.n, 3);
    cr_assert_eq(ten.r[0].ts, base);
    cr_assert_eq(ten.r[0].count, 10, "minutes 5..9: 10 samples");
    cr_assert_eq(ten.r[1].count, 20);
}

/* A query may ask for all of time (--from -9223372036854775808 --to 9223372036854775807):
 * the bucket and rollup edges computed from such bounds must not overflow. */
Test(store, aggregates_over_the_whole_int64_range)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    int64_t base = 1764417600000LL;
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &s), IW_OK);
    struct iw_wbatch *b = iw_wbatch_new();
    for (int i = 0; i < 60; i++)                          /* two hours, every 2 minutes */
        iw_wbatch_put_point(b, s->id, base + i * 2 * IW_MS_PER_MIN, 7.0, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + IW_MS_PER_HOUR, true), IW_OK);

    static const int64_t steps[] = { 7000, IW_MS_PER_MIN, IW_MS_PER_HOUR, IW_MS_PER_DAY };
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        struct aggs a = {0};
        cr_assert_eq(iw_store_read_agg(st, s->id, INT64_MIN, INT64_MAX, steps[k], agg_cb, &a),
                     IW_OK);
        uint64_t n = 0;
        for (size_t i = 0; i < a.n; i++)
            n += a.r[i].count;
        cr_expect_eq(n, 60, "step %lld: %llu points", (long long)steps[k], (unsigned long long)n);
    }
}

Test(store, retention_removes_old_points_only)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    int64_t now = 1764417600000LL;
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &s), IW_OK);
    struct iw_wbatch *b = iw_wbatch_new();
    iw_wbatch_put_point(b, s->id, now - 91 * IW_MS_PER_DAY, 7.0, 0);
    iw_wbatch_put_point(b, s->id, now - 89 * IW_MS_PER_DAY, 7.1, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    cr_assert_eq(iw_store_rollup_range(st, s->id, now - 92 * IW_MS_PER_DAY, now, true), IW_OK);
    cr_assert_eq(iw_store_retention(st, now, 90 * IW_MS_PER_DAY, 365 * IW_MS_PER_DAY,
                                    3650 * IW_MS_PER_DAY), IW_OK);
    struct collect c = {0};
    cr_assert_eq(iw_store_read_points(st, s->id, INT64_MIN, INT64_MAX, collect_cb, &c), IW_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.p[0].value, 7.1);
    /* The minute rollup of the expired point is kept (1y retention). */
    struct aggs a = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, now - 92 * IW_MS_PER_DAY, now, IW_MS_PER_DAY,
                                   agg_cb, &a), IW_OK);
    cr_assert_eq(a.n, 2);
}

Test(store, meta_put_get_scan_delete)
{
    void *v;
    size_t l;
    cr_assert_eq(iw_store_meta_put(st, "alert/0001", "one", 3), IW_OK);
    cr_assert_eq(iw_store_meta_put(st, "alert/0002", "two", 3), IW_OK);
    cr_assert_eq(iw_store_meta_put(st, "state/x", "s", 1), IW_OK);
    cr_assert_eq(iw_store_meta_get(st, "alert/0002", &v, &l), IW_OK);
    cr_assert_eq(l, 3);
    cr_assert_str_eq(v, "two");
    free(v);
    cr_assert_eq(iw_store_meta_delete(st, "alert/0002"), IW_OK);
    cr_assert_eq(iw_store_meta_get(st, "alert/0002", &v, &l), IW_E_NOTFOUND);
}

Test(store, compact_values_and_one_sample_rollups_read_back_exactly)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    int64_t base = 1764417600000LL;
    static const double vals[] = { 7.12, -0.035, 1.0 / 3.0, 412, -0.0, 1e300, 6.5 };
    const size_t nv = sizeof(vals) / sizeof(vals[0]);
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &s), IW_OK);
    struct iw_wbatch *b = iw_wbatch_new();
    for (size_t i = 0; i < nv; i++)   /* one sample per minute, 7 s into it */
        iw_wbatch_put_point(b, s->id, base + (int64_t)i * IW_MS_PER_MIN + 7000, vals[i],
                            i == 3 ? 'D' : 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    struct collect got = {0};
    cr_assert_eq(iw_store_read_points(st, s->id, base, base + IW_MS_PER_HOUR, collect_cb, &got),
               IW_OK);
    cr_assert_eq(got.n, nv);
    for (size_t i = 0; i < nv; i++) {
        cr_assert_eq(memcmp(&got.p[i].value, &vals[i], sizeof(double)), 0, "point %zu: %.17g",
                     i, got.p[i].value);
        cr_assert_eq(got.p[i].flag, i == 3 ? 'D' : 0);
    }
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + IW_MS_PER_HOUR, true), IW_OK);
    struct aggs mins = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + IW_MS_PER_HOUR, IW_MS_PER_MIN,
                                   agg_cb, &mins), IW_OK);
    cr_assert_eq(mins.n, nv);
    for (size_t i = 0; i < nv; i++) {
        cr_assert_eq(mins.r[i].count, 1);
        cr_assert_eq(memcmp(&mins.r[i].last, &vals[i], sizeof(double)), 0, "minute %zu", i);
        cr_assert_eq(mins.r[i].min, vals[i]);
        cr_assert_eq(mins.r[i].max, vals[i]);
        cr_assert_eq(mins.r[i].last_ts, base + (int64_t)i * IW_MS_PER_MIN + 7000);
    }
}

Test(store, refuses_a_database_of_the_old_value_format)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    unsigned char k[IW_KEY_LEN];
    double v = 7.12;
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &s), IW_OK);
    struct iw_wbatch *b = iw_wbatch_new();
    iw_key_series_ts(k, 'P', s->id, 1764417600000LL);
    iw_store_put_raw(b, k, sizeof(k), &v, sizeof(v));     /* as the first format wrote it */
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    cr_assert_eq(iw_store_meta_delete(st, "store_format"), IW_OK);
    iw_store_close(st);

    struct iw_store_opts o = { .path = dir, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_E_STORE);
    cr_assert_null(st);
    cr_assert_not_null(strstr(iw_diag_first(&diag), "earlier islewatch"), "%s",
                       iw_diag_first(&diag));
    cr_assert_not_null(strstr(iw_diag_first(&diag), dir));
    iw_diag_fini(&diag);
    o.read_only = true;
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_E_STORE);
    iw_diag_fini(&diag);
    /* teardown closes st: NULL is fine */
}

/* A directory of other files is not taken over: RocksDB would make a
 * database among them and delete those whose names it uses (an
 * "000002.sst"). One a first start cut short (LOCK, LOG) is opened. */
Test(store, refuses_a_directory_of_other_files)
{
    struct iw_diag diag = {0};
    char other[300], path[400];
    struct iw_store *o2 = NULL;

    snprintf(other, sizeof(other), "%s/other", dir);
    cr_assert_eq(mkdir(other, 0700), 0);
    snprintf(path, sizeof(path), "%s/000002.sst", other);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("keep\n", f);
    fclose(f);
    struct iw_store_opts o = { .path = other, .max_series = 16 };
    cr_assert_eq(iw_store_open(&o, &o2, &diag), IW_E_STORE);
    cr_assert_null(o2);
    cr_expect(strstr(iw_diag_first(&diag), "holds other files (\"000002.sst\"") != NULL, "%s",
              iw_diag_first(&diag));
    cr_expect(strstr(iw_diag_first(&diag), "Set storage.path to a new or empty directory") != NULL,
              "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
    cr_expect_eq(access(path, F_OK), 0, "the other file was removed");
    cr_assert_eq(unlink(path), 0);

    /* A database that lost its CURRENT file is damaged, not foreign. */
    snprintf(path, sizeof(path), "%s/MANIFEST-000004", other);
    cr_assert_not_null(f = fopen(path, "w"));
    fclose(f);
    cr_assert_eq(iw_store_open(&o, &o2, &diag), IW_E_STORE);
    cr_expect(strstr(iw_diag_first(&diag), "without its CURRENT file, so it is damaged") != NULL,
              "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
    cr_assert_eq(unlink(path), 0);

    snprintf(path, sizeof(path), "%s/LOCK", other);
    cr_assert_not_null(f = fopen(path, "w"));
    fclose(f);
    cr_assert_eq(iw_store_open(&o, &o2, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_store_close(o2);
}

Test(store, prefix_hash_continues_to_the_full_name_hash)
{
    const char *name = "water/dongtan/w01/nh3_n";
    const struct iw_series *a, *b;
    for (size_t cut = 0; cut <= strlen(name); cut++)
        cr_assert_eq(iw_hash_cont(iw_hash(name, cut), name + cut, strlen(name) - cut),
                     iw_hash(name, strlen(name)), "cut at %zu", cut);
    cr_assert_eq(iw_store_series_intern_h(st, name, strlen(name), iw_hash(name, strlen(name)), &a),
                 IW_OK);
    cr_assert_eq(iw_store_series_intern(st, name, strlen(name), &b), IW_OK);
    cr_assert_eq(a, b);
}

/* ---- sparse minute rollups (store format 3) ---- */

static bool has_minute_key(uint32_t id, int64_t minute)
{
    unsigned char k[IW_KEY_LEN];
    char *err = NULL;
    size_t vl = 0;
    iw_key_series_ts(k, 'M', id, minute);
    char *v = rocksdb_get(st->db, st->ropts, (const char *)k, sizeof(k), &vl, &err);
    cr_assert_null(err, "%s", err);
    rocksdb_free(v);
    return v != NULL;
}

static void put_points(uint32_t id, const int64_t *ts, const double *v, size_t n)
{
    struct iw_diag diag = {0};
    struct iw_wbatch *b = iw_wbatch_new();
    for (size_t i = 0; i < n; i++)
        iw_wbatch_put_point(b, id, ts[i], v[i], 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
}

static void expect_rollup(const struct iw_rollup *r, int64_t ts, uint64_t count, double min,
                          double max, double sum, double last, int64_t last_ts)
{
    cr_expect_eq(r->ts, ts, "bucket %lld", (long long)r->ts);
    cr_expect_eq(r->count, count, "bucket %lld: count %llu", (long long)ts,
                 (unsigned long long)r->count);
    cr_expect_eq(r->min, min, "bucket %lld: min %g", (long long)ts, r->min);
    cr_expect_eq(r->max, max, "bucket %lld: max %g", (long long)ts, r->max);
    cr_expect_eq(r->sum, sum, "bucket %lld: sum %g", (long long)ts, r->sum);
    cr_expect_eq(r->last, last, "bucket %lld: last %g", (long long)ts, r->last);
    cr_expect_eq(r->last_ts, last_ts, "bucket %lld: last_ts", (long long)ts);
}

Test(store, one_point_minutes_keep_no_minute_key_and_read_from_their_point)
{
    const struct iw_series *s;
    int64_t base = 1764417600000LL, M = IW_MS_PER_MIN;
    /* minute 0: one point; 1: three; 2: one; 3: two; 5: one. */
    const int64_t ts[] = { base + 7000, base + M + 1000, base + M + 2000, base + M + 3000,
                           base + 2 * M + 59999, base + 3 * M, base + 3 * M + 30000,
                           base + 5 * M + 1 };
    const double v[] = { 7.1, 1, 5, 3, 8.25, -2, 4, 6.5 };
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &s), IW_OK);
    put_points(s->id, ts, v, IW_ARRAY_LEN(ts));

    struct aggs before = {0}, after = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 10 * M, M, agg_cb, &before), IW_OK);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + 10 * M, true), IW_OK);
    cr_expect_not(has_minute_key(s->id, base), "a one-point minute has no 'M' key");
    cr_expect(has_minute_key(s->id, base + M));
    cr_expect_not(has_minute_key(s->id, base + 2 * M));
    cr_expect(has_minute_key(s->id, base + 3 * M));
    cr_expect_not(has_minute_key(s->id, base + 5 * M));

    /* Minute steps read 'M' keys and lone points alike, and agree with the raw fold. */
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 10 * M, M, agg_cb, &after), IW_OK);
    cr_assert_eq(before.n, 5);
    cr_assert_eq(after.n, 5);
    expect_rollup(&after.r[0], base, 1, 7.1, 7.1, 7.1, 7.1, base + 7000);
    expect_rollup(&after.r[1], base + M, 3, 1, 5, 9, 3, base + M + 3000);
    expect_rollup(&after.r[2], base + 2 * M, 1, 8.25, 8.25, 8.25, 8.25, base + 2 * M + 59999);
    expect_rollup(&after.r[3], base + 3 * M, 2, -2, 4, 2, 4, base + 3 * M + 30000);
    expect_rollup(&after.r[4], base + 5 * M, 1, 6.5, 6.5, 6.5, 6.5, base + 5 * M + 1);
    for (size_t i = 0; i < 5; i++)
        expect_rollup(&after.r[i], before.r[i].ts, before.r[i].count, before.r[i].min,
                      before.r[i].max, before.r[i].sum, before.r[i].last, before.r[i].last_ts);

    /* The hour rollup counts the lone points too (read from 'H' once the hour is rolled). */
    struct aggs hour = {0};
    cr_assert_eq(iw_store_rollup_range(st, s->id, base + 10 * M, base + 61 * M, true), IW_OK);
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 60 * M, IW_MS_PER_HOUR, agg_cb, &hour),
                 IW_OK);
    cr_assert_eq(hour.n, 1);
    expect_rollup(&hour.r[0], base, 8, -2, 8.25, 32.85, 6.5, base + 5 * M + 1);

    /* A late second point in minute 0 gives it an 'M' key, counted once however often it is rolled. */
    const int64_t late_ts[] = { base + 1000 };
    const double late_v[] = { 9 };
    put_points(s->id, late_ts, late_v, 1);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + M, false), IW_OK);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + M, false), IW_OK);
    cr_expect(has_minute_key(s->id, base));
    struct aggs late = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 2 * M, M, agg_cb, &late), IW_OK);
    cr_assert_eq(late.n, 2);
    expect_rollup(&late.r[0], base, 2, 7.1, 9, 16.1, 7.1, base + 7000);
    struct aggs hour2 = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + 60 * M, IW_MS_PER_HOUR, agg_cb,
                                   &hour2), IW_OK);
    cr_assert_eq(hour2.r[0].count, 9);
}

Test(store, retention_keeps_the_minutes_of_expiring_points)
{
    const struct iw_series *rolled, *quiet;
    int64_t now = 1764417600000LL, M = IW_MS_PER_MIN, day = IW_MS_PER_DAY;
    int64_t old = iw_floor_to(now - 91 * day, M);
    /* minute 0: one point; 1: two; 2: one. Then one recent point. */
    const int64_t ts[] = { old + 1000, old + M + 1000, old + M + 2000, old + 2 * M + 5,
                           now - day };
    const double v[] = { 1.5, 2, 4, 8, 9 };
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &rolled), IW_OK);
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/do", 12, &quiet), IW_OK);
    put_points(rolled->id, ts, v, IW_ARRAY_LEN(ts));
    put_points(quiet->id, ts, v, 4);       /* never rolled up: the series went quiet */
    cr_assert_eq(iw_store_rollup_range(st, rolled->id, old - M, now - day, true), IW_OK);
    cr_assert_eq(iw_store_retention(st, now, 90 * day, 365 * day, 3650 * day), IW_OK);

    const struct iw_series *both[] = { rolled, quiet };
    for (size_t k = 0; k < 2; k++) {
        struct collect c = {0};
        cr_assert_eq(iw_store_read_points(st, both[k]->id, INT64_MIN, now - 30 * day, collect_cb,
                                          &c), IW_OK);
        cr_assert_eq(c.n, 0, "%s: raw points past 90 d are gone", both[k]->name);
        struct aggs a = {0};
        cr_assert_eq(iw_store_read_agg(st, both[k]->id, old, old + 10 * M, M, agg_cb, &a), IW_OK);
        cr_assert_eq(a.n, 3, "%s: every minute is kept (1 y)", both[k]->name);
        expect_rollup(&a.r[0], old, 1, 1.5, 1.5, 1.5, 1.5, old + 1000);
        expect_rollup(&a.r[1], old + M, 2, 2, 4, 6, 4, old + M + 2000);
        expect_rollup(&a.r[2], old + 2 * M, 1, 8, 8, 8, 8, old + 2 * M + 5);
    }
    /* A two-point minute below the watermark without its key (the shard left
     * it to the readers, pipeline.c) gets one before its points expire. */
    const struct iw_series *skipped;
    const int64_t ts2[] = { old + 5 * M + 1000, old + 5 * M + 2000 };
    const double v2[] = { 3, 5 };
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/cod", 13, &skipped), IW_OK);
    put_points(skipped->id, ts2, v2, 2);
    cr_assert_eq(iw_store_rollup_range(st, skipped->id, old + 6 * M, now - day, true), IW_OK);
    cr_expect_not(has_minute_key(skipped->id, old + 5 * M));
    cr_assert_eq(iw_store_retention(st, now, 90 * day, 365 * day, 3650 * day), IW_OK);
    cr_expect(has_minute_key(skipped->id, old + 5 * M));
    struct aggs sk = {0};
    cr_assert_eq(iw_store_read_agg(st, skipped->id, old, old + 10 * M, M, agg_cb, &sk), IW_OK);
    cr_assert_eq(sk.n, 1);
    expect_rollup(&sk.r[0], old + 5 * M, 2, 3, 5, 8, 5, old + 5 * M + 2000);

    /* And past the 1 y retention of minutes, those go too. */
    cr_assert_eq(iw_store_retention(st, now + 300 * day, 90 * day, 365 * day, 3650 * day), IW_OK);
    struct aggs gone = {0};
    cr_assert_eq(iw_store_read_agg(st, rolled->id, old, old + 10 * M, M, agg_cb, &gone), IW_OK);
    cr_assert_eq(gone.n, 0);
}

Test(store, a_format_2_database_keeps_a_key_for_every_minute)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    int64_t base = 1764417600000LL;
    cr_assert_eq(iw_store_meta_put(st, "store_format", "2", 1), IW_OK);
    iw_store_close(st);
    struct iw_store_opts o = { .path = dir, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(iw_store_series_intern(st, "water/x/y/ph", 12, &s), IW_OK);
    const int64_t ts[] = { base + 7000 };
    const double v[] = { 7.25 };
    put_points(s->id, ts, v, 1);
    cr_assert_eq(iw_store_rollup_range(st, s->id, base, base + IW_MS_PER_MIN, true), IW_OK);
    cr_expect(has_minute_key(s->id, base), "format 2: one-point minutes have their key");
    struct aggs a = {0};
    cr_assert_eq(iw_store_read_agg(st, s->id, base, base + IW_MS_PER_MIN, IW_MS_PER_MIN, agg_cb,
                                   &a), IW_OK);
    cr_assert_eq(a.n, 1);
    expect_rollup(&a.r[0], base, 1, 7.25, 7.25, 7.25, 7.25, base + 7000);

    /* An unknown format is refused with what to do. */
    cr_assert_eq(iw_store_meta_put(st, "store_format", "9", 1), IW_OK);
    iw_store_close(st);
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_E_STORE);
    cr_assert_not_null(strstr(iw_diag_first(&diag), "formats 2 and 3"), "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
}

static uint64_t hour_count(uint32_t id, int64_t hour)
{
    struct aggs a = {0};
    cr_assert_eq(iw_store_read_agg(st, id, hour, hour + IW_MS_PER_HOUR, IW_MS_PER_HOUR, agg_cb, &a),
                 IW_OK);
    return a.n == 1 ? a.r[0].count : 0;
}

static void put_late(uint32_t id, int64_t ts, bool mark)
{
    struct iw_diag diag = {0};
    struct iw_wbatch *b = iw_wbatch_new();
    iw_wbatch_put_point(b, id, ts, 1.0, 0);
    if (mark)
        iw_wbatch_mark_late(b, id, ts, 1);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
}

/*
 * Late marks: what a start-up recomputes is exactly the hours whose marks
 * the shard has not taken back (pipeline.c), and a recovery drops the marks.
 */
Test(store, late_marks_count_and_recovery_recomputes_only_what_is_still_marked)
{
    const struct iw_series *s;
    const int64_t h = 1764417600000LL;       /* an hour boundary */
    uint64_t hours = 99;

    cr_assert_eq(iw_store_series_intern(st, "water/k/late/ph", 15, &s), IW_OK);
    for (int i = 0; i < 60; i++)
        put_late(s->id, h + i * IW_MS_PER_MIN, false);
    cr_assert_eq(iw_store_rollup_range(st, s->id, h, h + IW_MS_PER_HOUR, true), IW_OK);
    cr_assert_eq(hour_count(s->id, h), 60);

    /* Two marked late samples; the shard handled one of them: still marked. */
    put_late(s->id, h + 30 * IW_MS_PER_MIN + 10000, true);
    put_late(s->id, h + 40 * IW_MS_PER_MIN + 10000, true);
    cr_assert_eq(iw_store_rollup_late(st, s->id, h, h + IW_MS_PER_HOUR, 1), IW_OK);
    cr_assert_eq(hour_count(s->id, h), 62, "the late recompute counts both points");
    put_late(s->id, h + 50 * IW_MS_PER_MIN + 10000, false);   /* unmarked: a crash lost it */
    /* The hour still holds a mark, so readers answer from its raw points. */
    cr_assert_eq(hour_count(s->id, h), 63);
    cr_assert_eq(iw_store_rollup_recover(st, &hours), IW_OK);
    cr_assert_eq(hours, 1, "the hour still holds one mark");
    cr_assert_eq(hour_count(s->id, h), 63, "recomputed at recovery (read from the rollup now)");

    /* Marks dropped: a second recovery does nothing. Balanced marks: nothing either. */
    cr_assert_eq(iw_store_rollup_recover(st, &hours), IW_OK);
    cr_assert_eq(hours, 0);
    put_late(s->id, h + 20 * IW_MS_PER_MIN + 10000, true);
    cr_assert_eq(iw_store_rollup_late(st, s->id, h, h + IW_MS_PER_HOUR, 1), IW_OK);
    cr_assert_eq(iw_store_rollup_recover(st, &hours), IW_OK);
    cr_assert_eq(hours, 0, "a mark taken back is not recomputed again");
    cr_assert_eq(hour_count(s->id, h), 64);
}

static int count_cb(void *ctx, const struct iw_series_info *info)
{
    (void)info;
    (*(int *)ctx)++;
    return 0;
}

/* `islewatch series water/dongtan/w01` (a device glob, as in a rule's select)
 * lists every metric of the device, not nothing. */
Test(store, a_device_glob_lists_every_metric_of_the_device)
{
    const char *names[] = { "water/dongtan/w01/ph", "water/dongtan/w01/do", "water/dongtan/w02/ph" };
    struct iw_diag diag = {0};
    struct iw_wbatch *b = iw_wbatch_new();
    for (size_t i = 0; i < 3; i++) {
        const struct iw_series *s;
        cr_assert_eq(iw_store_series_intern(st, names[i], strlen(names[i]), &s), IW_OK);
        iw_wbatch_put_point(b, s->id, 1000, 7.0, 0);
    }
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    int n = 0;
    cr_assert_eq(iw_store_series_list(st, "water/dongtan/w01", count_cb, &n), IW_OK);
    cr_assert_eq(n, 2, "device glob matched %d series", n);
    n = 0;
    cr_assert_eq(iw_store_series_list(st, "water/*/*", count_cb, &n), IW_OK);
    cr_assert_eq(n, 3);
    n = 0;
    cr_assert_eq(iw_store_series_list(st, "water/*", count_cb, &n), IW_OK);
    cr_assert_eq(n, 0, "a 2-level glob is not a device glob");
    n = 0;
    cr_assert_eq(iw_store_series_list(st, "water/dongtan/w01/ph", count_cb, &n), IW_OK);
    cr_assert_eq(n, 1);
}

/* The bound of a query's answer counts the points of every series together,
 * raw and buckets alike; exactly the bound is answered, one more is not. */
Test(store, a_query_answer_is_bounded_across_series)
{
    static const char *const names[] = { "water/s1/w01/ph", "water/s1/w02/ph" };
    struct iw_diag diag = {0};
    struct iw_wbatch *b = iw_wbatch_new();
    char *out = NULL;

    for (size_t k = 0; k < 2; k++) {
        const struct iw_series *s;
        cr_assert_eq(iw_store_series_intern(st, names[k], strlen(names[k]), &s), IW_OK);
        for (int i = 0; i < 3; i++)
            iw_wbatch_put_point(b, s->id, 1764417600000LL + i * 3600000LL, 7 + i, 0);
    }
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    const int64_t from = 1764417600000LL, to = from + 3 * 3600000LL;
    cr_assert_eq(iw_api_query_json(st, "water/*/*/ph", from, to, 0, IW_Q_RAW, 6, &out), IW_OK);
    cr_assert(strstr(out, "w02") != NULL, "%s", out);
    free(out);
    out = NULL;
    cr_assert_eq(iw_api_query_json(st, "water/*/*/ph", from, to, 0, IW_Q_RAW, 5, &out),
                 IW_E_FULL, "6 raw points over 2 series pass a bound of 5");
    cr_assert_null(out);
    cr_assert_eq(iw_api_query_json(st, "water/*/*/ph", from, to, 3600000, IW_Q_MAX, 5, &out),
                 IW_E_FULL, "6 hourly buckets pass a bound of 5");
    cr_assert_null(out);
    cr_assert_eq(iw_api_query_json(st, "water/*/*/ph", from, to, 0, IW_Q_RAW, 0, &out), IW_OK,
                 "0: no bound");
    free(out);
}

/* A step's sum and mean read as the decimal samples were written: 0.1, 0.2
 * and 0.4 sum to 0.7 and average 0.233333333333333 (15 digits), not the
 * binary 0.7000000000000001. */
Test(store, step_sums_and_means_have_no_binary_noise)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    struct iw_wbatch *b = iw_wbatch_new();
    static const double v[] = { 0.1, 0.2, 0.4 };
    char *out = NULL;
    const int64_t t0 = 1764417600000LL;

    cr_assert_eq(iw_store_series_intern(st, "water/s1/w01/tp", 15, &s), IW_OK);
    for (int i = 0; i < 3; i++)
        iw_wbatch_put_point(b, s->id, t0 + i * 60000LL, v[i], 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    cr_assert_eq(iw_api_query_json(st, "water/s1/w01/tp", t0, t0 + 3600000LL, 3600000, IW_Q_SUM,
                                   0, &out), IW_OK);
    cr_expect_str_eq(out, "[{\"series\":\"water/s1/w01/tp\",\"points\":[[1764417600000,0.7]]}]");
    free(out);
    cr_assert_eq(iw_api_query_json(st, "water/s1/w01/tp", t0, t0 + 3600000LL, 3600000, IW_Q_AVG,
                                   0, &out), IW_OK);
    cr_expect_str_eq(out, "[{\"series\":\"water/s1/w01/tp\",\"points\":[[1764417600000,"
                     "0.233333333333333]]}]");
    free(out);
}

/* A bucket of one sample, or of equal ones, has no noise to round: its mean
 * (and a lone sample's sum) is the sample to every digit, as the raw point
 * and min, max and last print it. It used to be cut to 15 digits. */
Test(store, a_step_over_one_sample_gives_the_sample_itself)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    struct iw_wbatch *b = iw_wbatch_new();
    const double x = 1.2345678901234567;
    const int64_t t0 = 1764417600000LL;
    char *out = NULL;

    cr_assert_eq(iw_store_series_intern(st, "water/s1/w01/cod", 16, &s), IW_OK);
    iw_wbatch_put_point(b, s->id, t0, x, 0);
    iw_wbatch_put_point(b, s->id, t0 + 3600000LL, x, 0);
    iw_wbatch_put_point(b, s->id, t0 + 3660000LL, x, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    static const struct { enum iw_agg agg; const char *want; } c[] = {
        { IW_Q_AVG, "[[1764417600000,1.2345678901234567],[1764421200000,1.2345678901234567]]" },
        { IW_Q_SUM, "[[1764417600000,1.2345678901234567],[1764421200000,2.46913578024691]]" },
    };
    for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        char want[256];
        cr_assert_eq(iw_api_query_json(st, "water/s1/w01/cod", t0, t0 + 7199999LL, 3600000,
                                       c[k].agg, 0, &out), IW_OK);
        snprintf(want, sizeof(want), "[{\"series\":\"water/s1/w01/cod\",\"points\":%s}]",
                 c[k].want);
        cr_expect_str_eq(out, want);
        free(out);
    }
}

/* A sum that cancels is known to the digits of its largest sample, not to
 * 15 digits of itself: temperatures 0.1, 0.2 and -0.3 in one minute sum and
 * average to 0 (not the binary 5.55e-17 and 1.85e-17), and 15000.12, 5.3 and
 * -15000.12 sum to 5.3. */
Test(store, step_sums_that_cancel_have_no_binary_noise)
{
    static const struct { double v[3]; const char *sum, *avg; } c[] = {
        { { 0.1, 0.2, -0.3 }, "0", "0" },
        { { 15000.12, 5.3, -15000.12 }, "5.3", "1.76666666666667" },
        { { -0.1, -0.2, 0.3 }, "0", "0" },
    };
    const int64_t t0 = 1764417600000LL;

    for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        const struct iw_series *s;
        struct iw_diag diag = {0};
        struct iw_wbatch *b = iw_wbatch_new();
        char name[32], want[128], *out = NULL;

        snprintf(name, sizeof(name), "water/s1/w0%zu/temp", k);
        cr_assert_eq(iw_store_series_intern(st, name, strlen(name), &s), IW_OK);
        for (int i = 0; i < 3; i++)
            iw_wbatch_put_point(b, s->id, t0 + i * 1000LL, c[k].v[i], 0);
        cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
        iw_wbatch_free(b);
        for (int avg = 0; avg < 2; avg++) {
            cr_assert_eq(iw_api_query_json(st, name, t0, t0 + 60000LL, 60000,
                                           avg ? IW_Q_AVG : IW_Q_SUM, 0, &out), IW_OK);
            snprintf(want, sizeof(want), "[{\"series\":\"%s\",\"points\":[[%lld,%s]]}]", name,
                     (long long)t0, avg ? c[k].avg : c[k].sum);
            cr_expect_str_eq(out, want);
            free(out);
            out = NULL;
        }
    }
}

/*
 * Between a late sample's write (marked, ingest.c) and the shard's recompute
 * of its hour (pipeline.c), a step query must already answer as the raw
 * points do (SPEC §2): a replaced value counted once with its new value, a
 * new late point counted.
 */
Test(store, a_marked_late_hour_reads_as_its_raw_points_before_its_recompute)
{
    const struct iw_series *s;
    struct iw_diag diag = {0};
    const int64_t h = 1764417600000LL;       /* an hour boundary */

    cr_assert_eq(iw_store_series_intern(st, "water/k/late2/ph", 16, &s), IW_OK);
    for (int i = 0; i < 3; i++)
        put_late(s->id, h + i * IW_MS_PER_MIN, false);
    put_late(s->id, h + IW_MS_PER_HOUR, false);
    cr_assert_eq(iw_store_rollup_range(st, s->id, h, h + IW_MS_PER_HOUR, true), IW_OK);
    cr_assert_eq(hour_count(s->id, h), 3);

    struct iw_wbatch *b = iw_wbatch_new();
    iw_wbatch_put_point(b, s->id, h + IW_MS_PER_MIN, 10.0, 0);       /* replaces 1.0 */
    iw_wbatch_mark_late(b, s->id, h + IW_MS_PER_MIN, 1);
    iw_wbatch_put_point(b, s->id, h + 30 * IW_MS_PER_MIN, 5.0, 0);   /* a new late point */
    iw_wbatch_mark_late(b, s->id, h + 30 * IW_MS_PER_MIN, 1);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    int64_t steps[] = { IW_MS_PER_HOUR, IW_MS_PER_MIN, 2 * IW_MS_PER_HOUR };
    for (size_t k = 0; k < 3; k++) {
        struct aggs a = {0};
        double sum = 0;
        uint64_t count = 0;
        cr_assert_eq(iw_store_read_agg(st, s->id, h, h + IW_MS_PER_HOUR, steps[k], agg_cb, &a),
                     IW_OK);
        for (size_t i = 0; i < a.n; i++)
            sum += a.r[i].sum, count += a.r[i].count;
        cr_expect_eq(count, 4, "step %lld: count %llu", (long long)steps[k],
                     (unsigned long long)count);
        cr_expect_eq(sum, 17.0, "step %lld: sum %g", (long long)steps[k], sum);
    }
}

/* A second writer on the same path is told it is one; a path that cannot be a
 * database directory is told what to fix, not that another daemon holds it. */
Test(store, open_failures_say_what_to_fix)
{
    struct iw_diag diag = {0};
    struct iw_store *second = NULL;
    char path[300];

    struct iw_store_opts o = { .path = dir, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &second, &diag), IW_E_STORE);
    cr_assert_null(second);
    cr_expect_not_null(strstr(iw_diag_first(&diag), "another islewatchd is using it"), "%s",
                       iw_diag_first(&diag));
    iw_diag_fini(&diag);

    snprintf(path, sizeof(path), "%s/plain-file", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/plain-file/data", dir);
    o.path = path;
    cr_assert_eq(iw_store_open(&o, &second, &diag), IW_E_STORE);
    cr_assert_null(second);
    cr_expect_null(strstr(iw_diag_first(&diag), "another islewatchd"), "%s", iw_diag_first(&diag));
    cr_expect_not_null(strstr(iw_diag_first(&diag), "make storage.path a directory"), "%s",
                       iw_diag_first(&diag));
    iw_diag_fini(&diag);
}

/* The config says storage.path is "created when missing": its missing parent
 * directories too (mkdir -p); a parent that cannot be made is named. */
Test(store, open_creates_the_missing_parents_of_the_path)
{
    struct iw_diag diag = {0};
    struct iw_store *deep = NULL;
    char path[300];

    snprintf(path, sizeof(path), "%s/new/parents/data", dir);
    struct iw_store_opts o = { .path = path, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &deep, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_store_close(deep);
    iw_diag_fini(&diag);

    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/below/data", dir);
    cr_assert_eq(iw_store_open(&o, &deep, &diag), IW_E_STORE);
    cr_assert_null(deep);
    snprintf(path, sizeof(path), "%s/file", dir);
    cr_expect_not_null(strstr(iw_diag_first(&diag), path), "%s", iw_diag_first(&diag));
    cr_expect_not_null(strstr(iw_diag_first(&diag), "make storage.path a directory"), "%s",
                       iw_diag_first(&diag));
    iw_diag_fini(&diag);
}

/* What series lists for each: first, last and count as its raw points have them. */
struct listed { const struct iw_series *s[4]; struct iw_series_info info[4]; size_t n; };

static int listed_cb(void *ctx, const struct iw_series_info *i)
{
    struct listed *l = ctx;
    if (l->n < 4)
        l->info[l->n++] = *i;
    return 0;
}

static int count_points_cb(void *ctx, const struct iw_point *p)
{
    (void)p;
    ++*(uint64_t *)ctx;
    return 0;
}

/*
 * `series` takes a series' count from its rollups where they are whole, not
 * by reading every point: it must still count exactly the raw points, with
 * rewrites (one point per ts), a late point whose hour is marked and not yet
 * recomputed, points past the rollup watermark, and raw points expired while
 * their rollups stay.
 */
Test(store, series_listing_counts_the_raw_points_across_rollups_late_marks_and_expiry)
{
    const struct iw_series *a, *old;
    struct iw_diag diag = {0};
    const int64_t now = 1764417600000LL, M = IW_MS_PER_MIN, H = IW_MS_PER_HOUR;
    const int64_t day = IW_MS_PER_DAY, base = now - 2 * day;    /* hour boundaries */

    cr_assert_eq(iw_store_series_intern(st, "water/l/a/ph", 12, &a), IW_OK);
    cr_assert_eq(iw_store_series_intern(st, "water/l/old/ph", 14, &old), IW_OK);
    struct iw_wbatch *b = iw_wbatch_new();
    for (int i = 0; i < 360; i++)                         /* 3 h, a point every 30 s */
        iw_wbatch_put_point(b, a->id, base + 7000 + i * 30000LL, (double)i, 0);
    for (int i = 0; i < 240; i++)                         /* 91 days ago and 2 h after */
        iw_wbatch_put_point(b, old->id, now - 91 * day + 20 * M + i * 30000LL, 1.0, 0);
    for (int i = 0; i < 10; i++)                          /* and recent points */
        iw_wbatch_put_point(b, old->id, now - day + i * M, 1.0, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    cr_assert_eq(iw_store_rollup_range(st, a->id, base, base + 150 * M, true), IW_OK);
    cr_assert_eq(iw_store_rollup_range(st, old->id, now - 92 * day, now - day, true), IW_OK);

    b = iw_wbatch_new();
    iw_wbatch_put_point(b, a->id, base + 7000 + 30000, 99.0, 0);      /* a rewrite */
    iw_wbatch_put_point(b, a->id, base + H + 1, 5.0, 0);               /* a late new point */
    iw_wbatch_mark_late(b, a->id, base + H + 1, 1);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);
    /* raw 90 d: "old" loses the first 40 minutes of its old points, keeps their rollups */
    cr_assert_eq(iw_store_retention(st, now - 91 * day + 60 * M + 90 * day, 90 * day, 365 * day,
                                    3650 * day), IW_OK);

    struct listed l = {0};
    cr_assert_eq(iw_store_series_list(st, "water/l/*/ph", listed_cb, &l), IW_OK);
    cr_assert_eq(l.n, 2);
    for (size_t k = 0; k < l.n; k++) {
        uint64_t n = 0;
        struct collect first = {0};
        uint32_t id = l.info[k].series->id;
        cr_assert_eq(iw_store_read_points(st, id, INT64_MIN, INT64_MAX, count_points_cb, &n), IW_OK);
        cr_assert_eq(iw_store_read_points(st, id, INT64_MIN, INT64_MAX, collect_cb, &first), IW_OK);
        cr_expect_eq(l.info[k].count, n, "%s: listed %llu, %llu points", l.info[k].series->name,
                     (unsigned long long)l.info[k].count, (unsigned long long)n);
        cr_expect_eq(l.info[k].first, first.p[0].ts, "%s: first", l.info[k].series->name);
    }
    cr_expect_eq(l.info[0].series, a);
    cr_expect_eq(l.info[0].count, 361);
    cr_expect_eq(l.info[0].last, base + 7000 + 359 * 30000LL);
    cr_expect_eq(l.info[1].count, 240 - 80 + 10, "old: 40 expired minutes of 2 points each");
    cr_expect_eq(l.info[1].first, now - 91 * day + 60 * M);
    cr_expect_eq(l.info[1].last, now - day + 9 * M);
}
