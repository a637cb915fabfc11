/*
 * Compliance reports on small synthetic stores: water classes and 达标率, the
 * daily AQI's validity minimums, the 2026-03-01 breakpoint switch, flagged
 * samples, camera online rates, and the three output forms.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/report.h"
#include "islewatch/store.h"
#include "../../server/report_int.h"

static char dir[256];
static struct iw_store *st;
static struct iw_wbatch *wb;

static void rm_rf(const char *p)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    cr_assert_eq(system(cmd), 0);
}

static void setup(void)
{
    struct iw_diag diag = { 0 };
    snprintf(dir, sizeof(dir), "/tmp/iw-report-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct iw_store_opts o = { .path = dir, .max_series = 4096 };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    wb = iw_wbatch_new();
    cr_assert_not_null(wb);
}

static void teardown(void)
{
    iw_wbatch_free(wb);
    iw_store_close(st);
    rm_rf(dir);
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 60);

/* An RFC 3339 time in ms. */
static int64_t T(const char *s)
{
    int64_t ms;
    cr_assert_eq(iw_rfc3339_parse(s, strlen(s), &ms), IW_OK, "bad time %s", s);
    return ms;
}

static void put(const char *series, int64_t ts, double v, char flag)
{
    const struct iw_series *s;
    cr_assert_eq(iw_store_series_intern(st, series, strlen(series), &s), IW_OK);
    iw_wbatch_put_point(wb, s->id, ts, v, flag);
}

static void flush(void)
{
    struct iw_diag diag = { 0 };
    cr_assert_eq(iw_store_write(st, wb, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_clear(wb);
}

/* Hourly values of one pollutant stamped at the hours' ends, `hours` hours from 01:00 local. */
static void put_hours(const char *series, const char *day_local_midnight, int hours, double v)
{
    int64_t day = T(day_local_midnight);
    for (int h = 1; h <= hours; h++)
        put(series, day + h * IW_MS_PER_HOUR, v, 0);
}

static struct iw_report_opts opts_for(const char *from, const char *to)
{
    struct iw_report_opts o;
    iw_report_opts_init(&o);
    o.from = T(from);
    o.to = T(to);
    o.tz_offset_min = 480;
    return o;
}

/* Output of a writer as a malloc'd string. */
static char *render(int (*fn)(const void *, enum iw_report_format, FILE *), const void *r,
                    enum iw_report_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(fn(r, fmt, f), IW_OK);
    fclose(f);
    return buf;
}

static int water_write(const void *r, enum iw_report_format f, FILE *o)
{
    return iw_report_water_write(r, f, o);
}

static int air_write(const void *r, enum iw_report_format f, FILE *o)
{
    return iw_report_air_write(r, f, o);
}

static int cameras_write(const void *r, enum iw_report_format f, FILE *o)
{
    return iw_report_cameras_write(r, f, o);
}

/* ==========================================================================
 * Options, days, time arguments
 * ======================================================================== */

Test(report, a_year_of_local_dates_is_365_days)
{
    struct iw_report_opts o;
    int64_t first;
    size_t n;
    char d[16];

    iw_report_opts_init(&o);
    cr_assert_eq(iw_report_time_parse("2026-01-01", 0, 480, &o.from), IW_OK);
    cr_assert_eq(iw_report_time_parse("2027-01-01", 0, 480, &o.to), IW_OK);
    cr_assert_eq(o.from, T("2026-01-01T00:00:00+08:00"));
    cr_assert_eq(iw_report_days(&o, &first, &n, NULL), IW_OK);
    cr_assert_eq(n, 365);
    cr_assert_eq(first, o.from);
    cr_assert_str_eq(iw_report_date(first + 364 * IW_MS_PER_DAY, 480, d, sizeof(d)), "2026-12-31");
    /* --to inside a day includes that day */
    o.to = T("2026-01-02T00:00:01+08:00");
    cr_assert_eq(iw_report_days(&o, &first, &n, NULL), IW_OK);
    cr_assert_eq(n, 2);
    o.to = o.from;
    cr_assert_eq(iw_report_days(&o, &first, &n, NULL), IW_E_INVAL, "empty period");
    o.to = o.from + (int64_t)(IW_REPORT_MAX_DAYS + 1) * IW_MS_PER_DAY;
    cr_assert_eq(iw_report_days(&o, &first, &n, NULL), IW_E_INVAL, "too long");
}

Test(report, time_zone_arguments)
{
    static const struct { const char *s; int rc, min; } cases[] = {
        { "+08:00", IW_OK, 480 }, { "+0800", IW_OK, 480 }, { "+8", IW_OK, 480 },
        { "-03:30", IW_OK, -210 }, { "UTC", IW_OK, 0 }, { "UTC+8", IW_OK, 480 },
        { "Asia/Shanghai", IW_OK, 480 }, { "Asia/Urumqi", IW_OK, 360 },
        { "Mars/Olympus", IW_E_INVAL, 0 }, { "+15:00", IW_E_INVAL, 0 }, { "8", IW_E_INVAL, 0 },
    };
    char buf[8];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int m = -1;
        cr_assert_eq(iw_report_tz_parse(cases[i].s, &m), cases[i].rc, "%s", cases[i].s);
        if (cases[i].rc == IW_OK)
            cr_assert_eq(m, cases[i].min, "%s -> %d", cases[i].s, m);
    }
    cr_assert_str_eq(iw_report_tz_format(-210, buf, sizeof(buf)), "-03:30");
}

Test(report, text_helpers)
{
    char buf[64];
    cr_assert_eq(iw__rp_display_width("达标率"), 6, "CJK is two columns wide");
    cr_assert_eq(iw__rp_display_width("劣V"), 3);
    cr_assert_eq(iw__rp_display_width("（）"), 4, "full-width brackets");
    cr_assert_str_eq(iw__rp_num(0.00005, 4, buf, sizeof(buf)), "0.00005", "no exponent");
    cr_assert_str_eq(iw__rp_num(0.8200000000000001, 6, buf, sizeof(buf)), "0.82");
    cr_assert_str_eq(iw__rp_num(NAN, 4, buf, sizeof(buf)), "");
    cr_assert_str_eq(iw__rp_pct(NAN, buf, sizeof(buf)), "n/a");
    cr_assert_str_eq(iw__rp_pct(2.0 / 3.0, buf, sizeof(buf)), "66.67%");
    cr_assert_str_eq(iw__rp_class_name(6), "劣V");
    cr_assert_str_eq(iw__rp_class_name(0), "-");
}

/* ==========================================================================
 * Water
 * ======================================================================== */

static const struct iw_device_cfg water_inv[] = {
    { .source = "water", .site = "dongtan", .device = "w01", .name = "东滩 1号站",
      .body = IW_BODY_RIVER, .target = 3 },
    { .source = "water", .site = "dongtan", .device = "w09", .name = "never reported",
      .body = IW_BODY_RIVER, .target = 3 },
    { .source = "water", .site = "xihu", .device = "l01", .body = IW_BODY_LAKE, .target = 2 },
};

/* Six days, one per class I .. 劣V, and a day with only water temperature. */
static void water_fixture(void)
{
    put("water/dongtan/w01/nh3_n", T("2026-05-01T08:00:00+08:00"), 0.1, 0);
    put("water/dongtan/w01/nh3_n", T("2026-05-01T23:59:00+08:00"), 0.1, 0);   /* same local day */
    put("water/dongtan/w01/do", T("2026-05-01T08:00:00+08:00"), 8.0, 'N');    /* N is normal */
    put("water/dongtan/w01/nh3_n", T("2026-05-02T08:00:00+08:00"), 0.4, 0);
    put("water/dongtan/w01/nh3_n", T("2026-05-02T12:00:00+08:00"), 0.6, 0);   /* mean 0.5: II */
    put("water/dongtan/w01/nh3_n", T("2026-05-03T08:00:00+08:00"), 1.0, 0);   /* III, inclusive */
    put("water/dongtan/w01/nh3_n", T("2026-05-04T08:00:00+08:00"), 1.2, 0);   /* IV */
    put("water/dongtan/w01/nh3_n", T("2026-05-05T08:00:00+08:00"), 2.5, 0);   /* 劣V */
    put("water/dongtan/w01/nh3_n", T("2026-05-06T08:00:00+08:00"), 0.1, 0);
    put("water/dongtan/w01/tp", T("2026-05-06T08:00:00+08:00"), 0.35, 0);     /* river TP: V */
    put("water/dongtan/w01/temp", T("2026-05-07T08:00:00+08:00"), 14.0, 0);   /* no class */
    /* the rule engine's derived series is not a parameter: ignored */
    put("water/dongtan/w01/class", T("2026-05-05T12:00:00+08:00"), 1, 0);
    flush();
}

Test(report, water_class_distribution_and_compliance_rate)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-06-01T00:00:00+08:00");
    struct iw_water_report *r;
    struct iw_diag diag = { 0 };

    water_fixture();
    o.devices = water_inv;
    o.n_devices = 3;
    o.site_glob = "dongtan";
    cr_assert_eq(iw_report_water(st, &o, &r, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(r->n_days, 31);
    cr_assert_eq(r->n_sites, 1, "xihu is filtered out by --site");
    cr_assert_eq(r->n_dev, 2);
    const struct iw_water_device *d = &r->dev[0];
    cr_assert_str_eq(d->device, "w01");
    cr_assert_str_eq(d->name, "东滩 1号站");
    cr_assert_eq(d->target, 3);
    cr_assert_eq(d->n_days, 7);
    static const int want_cls[] = { 1, 2, 3, 4, 6, 5, 0 };
    for (size_t k = 0; k < 7; k++)
        cr_expect_eq(d->days[k].cls, want_cls[k], "day %zu class %d", k, d->days[k].cls);
    cr_expect_float_eq(d->days[1].mean[IW_WATER_NH3_N], 0.5, 1e-12);
    cr_expect_eq(d->days[0].n[IW_WATER_NH3_N], 2, "23:59 local is still May 1");
    cr_expect(d->days[5].deciding[IW_WATER_TP] && !d->days[5].deciding[IW_WATER_NH3_N]);
    const struct iw_water_tally *t = &d->tally;
    cr_assert_eq(t->days, 7);
    cr_assert_eq(t->days_classed, 6);
    for (int c = 1; c <= 6; c++)
        cr_expect_eq(t->by_class[c], 1, "class %d", c);
    cr_assert_eq(t->days_meeting, 3);
    /* 达标率 counts samples: I, I (May 1), II, III (May 2), III, IV, 劣V, V; the
     * temperature-only sample of May 7 has no class */
    cr_assert_eq(t->samples, 8);
    cr_assert_eq(t->samples_meeting, 5);
    cr_assert_float_eq(t->rate, 5.0 / 8.0, 1e-12);
    cr_expect_eq(d->days[1].samples, 2);
    cr_expect_eq(d->days[1].samples_meeting, 2);
    cr_expect_eq(d->days[6].samples, 0);
    enum iw_water_param worst[3];
    cr_assert_eq(iw_water_tally_worst(t, worst, 3), 2);
    cr_expect_eq(worst[0], IW_WATER_NH3_N);
    cr_expect_eq(t->deciding[IW_WATER_NH3_N], 4);
    cr_expect_eq(worst[1], IW_WATER_TP);
    cr_expect_eq(t->over_target[IW_WATER_NH3_N], 2);
    /* the declared station that never reported */
    cr_assert_str_eq(r->dev[1].device, "w09");
    cr_assert(r->dev[1].declared);
    cr_assert_eq(r->dev[1].n_days, 0);
    cr_assert(isnan(r->dev[1].tally.rate));
    cr_assert_float_eq(r->sites[0].tally.rate, 5.0 / 8.0, 1e-12);
    iw_report_water_free(r);
}

Test(report, water_compliance_rate_is_the_share_of_samples)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");
    struct iw_water_report *r;
    struct iw_diag diag = { 0 };
    int64_t d1 = T("2026-05-01T08:00:00+08:00"), d2 = T("2026-05-02T08:00:00+08:00");
    const int64_t h = IW_MS_PER_HOUR;

    /* s/w1 (river, default target III): three samples of II and one of 劣V on one day;
     * the day's mean 1.125 is Class IV, so the day does not meet the target */
    put("water/s/w1/nh3_n", d1, 0.5, 0);
    put("water/s/w1/nh3_n", d1 + h, 0.5, 0);
    put("water/s/w1/nh3_n", d1 + 2 * h, 0.5, 0);
    put("water/s/w1/nh3_n", d1 + 3 * h, 3.0, 0);
    /* s/w2: a sample is every parameter at one time, classed by its worst deciding item */
    put("water/s/w2/nh3_n", d2, 0.5, 0);                    /* II */
    put("water/s/w2/tp", d2, 0.35, 0);                      /* river TP V: the sample is V */
    put("water/s/w2/nh3_n", d2 + h, 0.5, 0);
    put("water/s/w2/tp", d2 + h, 0.1, 0);                   /* II: meets */
    put("water/s/w2/temp", d2 + 2 * h, 20.0, 0);            /* nothing that decides: */
    put("water/s/w2/tn", d2 + 2 * h, 5.0, 0);               /* TN in a river, */
    put("water/s/w2/fecal_coliform", d2 + 2 * h, 50000, 0); /* fecal coliform: not counted */
    put("water/s/w2/nh3_n", d2 + 3 * h, 9.0, 'D');          /* flagged: left out, */
    put("water/s/w2/tp", d2 + 3 * h, 0.1, 0);               /* the sample is TP's II */
    put("water/s/w2/nh3_n", d2 + 4 * h, 9.0, 'D');          /* only flagged: not counted */
    /* xihu/l01 (lake, target II from the inventory): TN decides in a lake */
    put("water/xihu/l01/tn", d1, 0.4, 0);                   /* II: meets */
    put("water/xihu/l01/tn", d1 + h, 0.6, 0);               /* III */
    flush();
    o.devices = &water_inv[2];              /* xihu/l01 only */
    o.n_devices = 1;
    cr_assert_eq(iw_report_water(st, &o, &r, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(r->n_sites, 2);
    const struct iw_water_device *w1 = &r->dev[0], *w2 = &r->dev[1], *l01 = &r->dev[2];
    cr_assert_str_eq(w2->device, "w2");
    cr_assert_eq(w1->days[0].cls, 4);
    cr_assert_not(w1->days[0].meets);
    cr_assert_eq(w1->tally.days_meeting, 0);
    cr_assert_eq(w1->tally.samples, 4);
    cr_assert_eq(w1->tally.samples_meeting, 3);
    cr_assert_float_eq(w1->tally.rate, 0.75, 1e-12, "3 of 4 samples, not 0 of 1 day");
    cr_assert_eq(w2->days[0].samples, 3);
    cr_assert_eq(w2->days[0].samples_meeting, 2);
    cr_assert_float_eq(w2->tally.rate, 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(r->sites[0].tally.rate, 5.0 / 7.0, 1e-12, "the site adds up samples");
    cr_assert_eq(l01->tally.samples, 2);
    cr_assert_float_eq(l01->tally.rate, 0.5, 1e-12);
    cr_assert_eq(r->total.samples, 9);
    cr_assert_float_eq(r->total.rate, 6.0 / 9.0, 1e-12);
    char *csv = render(water_write, r, IW_REPORT_CSV);
    cr_assert_not_null(strstr(csv, ",days_meeting_target,samples,samples_meeting_target,"
                              "sample_compliance_rate,"), "%s", csv);
    cr_assert_not_null(strstr(csv, ",0,4,3,0.7500,NH3-N:1,0\n"), "w1's summary:\n%s", csv);
    char *tbl = render(water_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "达标率 (OF SAMPLES)"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "75.00%"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "share of samples meeting the target"), "%s", tbl);
    char *html = render(water_write, r, IW_REPORT_HTML);
    cr_assert_not_null(strstr(html, "达标率 Share of samples meeting target"), "%s", html);
    cr_assert_not_null(strstr(html, "75.00%"), "%s", html);
    cr_assert_not_null(strstr(html, "<td class=\"n\">3/4</td>"), "%s", html);
    free(csv);
    free(tbl);
    free(html);
    iw_report_water_free(r);
}

Test(report, water_lake_body_and_target_come_from_the_inventory)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");
    struct iw_water_report *r;

    put("water/xihu/l01/tp", T("2026-05-01T08:00:00+08:00"), 0.03, 0);
    put("water/river/r01/tp", T("2026-05-01T08:00:00+08:00"), 0.03, 0);   /* not declared */
    flush();
    o.devices = water_inv;
    o.n_devices = 3;
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_sites, 3);             /* dongtan (declared only), river, xihu */
    const struct iw_water_device *river = &r->dev[2], *lake = &r->dev[3];
    cr_assert_str_eq(river->site, "river");
    cr_assert_not(river->declared);
    cr_assert_eq(river->days[0].cls, 2, "river TP 0.03 is II");
    cr_assert_eq(river->target, 3, "default target III");
    cr_assert(river->days[0].meets);
    cr_assert_str_eq(lake->site, "xihu");
    cr_assert_eq(lake->days[0].cls, 3, "lake TP 0.03 is III");
    cr_assert_not(lake->days[0].meets, "target II");
    cr_assert_float_eq(r->total.rate, 0.5, 1e-12);
    iw_report_water_free(r);
}

/* The report judges a sample as the water_quality rule does: a per-site
 * override's target and the rule's body win over the inventory's (the
 * report used the inventory's or III for every device). */
Test(report, water_target_and_body_come_from_the_rule_first)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");
    struct iw_water_report *r;
    struct iw_rule_site sites[2] = { { .site = "river" }, { .site = "xihu" } };
    struct iw_rule rule = { .name = "wq", .kind = IW_RULE_WATER_QUALITY, .select = "water/*/*",
                            .sites = sites, .n_sites = 2 };

    sites[0].p.target = 1;                  /* river: Class I */
    sites[0].p.site_target = true;
    sites[1].p.has_body = true;             /* xihu: a lake, target III */
    sites[1].p.body = IW_BODY_LAKE;
    put("water/river/r01/tp", T("2026-05-01T08:00:00+08:00"), 0.03, 0);     /* II */
    put("water/xihu/l02/tp", T("2026-05-01T08:00:00+08:00"), 0.1, 0);       /* lake: IV */
    flush();
    o.rules = &rule;
    o.n_rules = 1;
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_dev, 2);
    const struct iw_water_device *river = &r->dev[0], *lake = &r->dev[1];
    cr_assert_str_eq(river->site, "river");
    cr_assert_eq(river->target, 1, "the site override's target");
    cr_assert_not(river->days[0].meets, "II does not meet I");
    cr_assert_str_eq(lake->site, "xihu");
    cr_assert_eq(lake->body, IW_BODY_LAKE, "the site override's body");
    cr_assert_eq(lake->days[0].cls, 4, "lake TP 0.1 is IV");
    cr_assert_not(lake->days[0].meets);
    cr_assert_float_eq(r->total.rate, 0.0, 1e-12);
    iw_report_water_free(r);
}

/* A rule's own target is its default: the inventory's target beats it, as
 * in the rule engine (iw_water_target). */
Test(report, water_inventory_target_beats_the_rules_default)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");
    struct iw_water_report *r;
    struct iw_rule rule = { .name = "wq", .kind = IW_RULE_WATER_QUALITY, .select = "water/*/*",
                            .p = { .target = 4 } };

    put("water/xihu/l01/tp", T("2026-05-01T08:00:00+08:00"), 0.03, 0);    /* lake: III */
    put("water/river/r01/tp", T("2026-05-01T08:00:00+08:00"), 0.15, 0);   /* river: III */
    flush();
    o.devices = water_inv;
    o.n_devices = 3;
    o.rules = &rule;
    o.n_rules = 1;
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    const struct iw_water_device *river = &r->dev[2], *lake = &r->dev[3];
    cr_assert_str_eq(lake->site, "xihu");
    cr_assert_eq(lake->target, 2, "the inventory's II, not the rule's IV");
    cr_assert_not(lake->days[0].meets);
    cr_assert_str_eq(river->site, "river");
    cr_assert_eq(river->target, 4, "not declared: the rule's IV");
    cr_assert(river->days[0].meets);
    iw_report_water_free(r);
}

/* The report covers the period [from, to), not the whole local days it
 * touches: a sample before from (same local day) is not counted. */
Test(report, water_counts_only_the_samples_of_the_period)
{
    struct iw_report_opts o = opts_for("2026-12-01T00:00:00Z", "2026-12-01T12:00:00Z");
    struct iw_water_report *r;

    put("water/edge/w01/nh3_n", T("2026-11-30T23:00:00Z"), 5.0, 0);    /* 劣V, before from */
    put("water/edge/w01/nh3_n", T("2026-12-01T01:00:00Z"), 0.1, 0);    /* I */
    put("water/edge/w01/nh3_n", T("2026-12-01T12:00:00Z"), 5.0, 0);    /* at to: after it */
    flush();
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_dev, 1);
    cr_assert_eq(r->dev[0].tally.samples, 1, "only the sample inside [from, to)");
    cr_assert_eq(r->dev[0].days[0].cls, 1);
    cr_assert_float_eq(r->total.rate, 1.0, 1e-12);
    iw_report_water_free(r);
}

/* SPEC §6: "water class per site". A device's class over the period is the
 * single-factor class of its period means; a site's, the worst of its
 * devices'. Both are in the CSV's class columns of the device and site rows. */
Test(report, water_class_per_device_and_site_over_the_period)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");
    struct iw_water_report *r;

    put("water/two/w1/nh3_n", T("2026-05-01T08:00:00+08:00"), 0.4, 0);    /* II */
    put("water/two/w1/nh3_n", T("2026-05-02T08:00:00+08:00"), 0.6, 0);    /* mean 0.5: II */
    put("water/two/w2/nh3_n", T("2026-05-01T08:00:00+08:00"), 1.2, 0);    /* IV */
    flush();
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_sites, 1);
    cr_assert_eq(r->dev[0].tally.cls, 2);
    cr_assert(r->dev[0].tally.meets);
    cr_assert_eq(r->dev[1].tally.cls, 4);
    cr_assert_not(r->dev[1].tally.meets);
    cr_assert_eq(r->sites[0].tally.cls, 4, "the site is as bad as its worst station");
    cr_assert_not(r->sites[0].tally.meets);

    char *buf = render(water_write, r, IW_REPORT_CSV);
    cr_assert_not_null(strstr(buf, "\nsite,two,,,,III,4,IV,0,"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\ndevice,two,w1,,,III,2,II,1,"), "%s", buf);
    free(buf);
    iw_report_water_free(r);
}

Test(report, water_flagged_samples_are_excluded)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");
    struct iw_water_report *r;

    put("water/s/w/nh3_n", T("2026-05-01T08:00:00+08:00"), 0.1, 0);
    put("water/s/w/nh3_n", T("2026-05-01T09:00:00+08:00"), 5.0, 'D');   /* instrument fault */
    put("water/s/w/nh3_n", T("2026-05-01T10:00:00+08:00"), 9.0, 'C');   /* calibration */
    put("water/s/w/nh3_n", T("2026-05-02T10:00:00+08:00"), 9.0, 'M');   /* a day of only flags */
    flush();
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_dev, 1);
    cr_assert_eq(r->dev[0].n_days, 1, "the flagged-only day has no mean");
    cr_assert_float_eq(r->dev[0].days[0].mean[IW_WATER_NH3_N], 0.1, 1e-12);
    cr_assert_eq(r->dev[0].days[0].cls, 1);
    cr_assert_eq(r->dev[0].days[0].n_flagged, 2);
    cr_assert_eq(r->dev[0].tally.flagged, 3);
    cr_assert_float_eq(r->dev[0].tally.rate, 1.0, 1e-12);
    iw_report_water_free(r);
}

Test(report, water_outputs)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-06-01T00:00:00+08:00");
    struct iw_water_report *r;

    water_fixture();
    o.devices = water_inv;
    o.n_devices = 1;
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    char *csv = render(water_write, r, IW_REPORT_CSV);
    cr_assert(strncmp(csv, "row,site,device,name,date,target,class,class_name,meets_target,", 63)
              == 0, "%s", csv);
    cr_assert_not_null(strstr(csv, "\nday,dongtan,w01,东滩 1号站,2026-05-05,III,6,劣V,0,"), "%s", csv);
    cr_assert_not_null(strstr(csv, "\nsite,dongtan,,,,III,"), "%s", csv);
    cr_assert_not_null(strstr(csv, ",7,6,1,1,1,1,1,1,3,8,5,0.6250,NH3-N:4;TP:1,0\n"), "%s", csv);
    char *tbl = render(water_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "达标率"));
    cr_assert_not_null(strstr(tbl, "62.50%"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "NH3-N (4), TP (1)"), "%s", tbl);
    char *html = render(water_write, r, IW_REPORT_HTML);
    cr_assert_not_null(strstr(html, "<svg"));
    cr_assert_not_null(strstr(html, "@media print"));
    cr_assert_not_null(strstr(html, "劣Ⅴ类"));
    cr_assert_null(strstr(html, "<script"));
    cr_assert_null(strstr(html, "<link"));
    cr_assert_null(strstr(html, "src="));
    cr_assert_null(strstr(html, "url("));
    cr_assert(strstr(html, "</html>\n") != NULL);
    free(csv);
    free(tbl);
    free(html);
    iw_report_water_free(r);
}

/* Fecal coliform runs to tens of thousands per litre (Class V: 40000): the
 * table and the HTML print such a mean as a whole number, like the CSV, not
 * as "5e+04" or a rounded "1.234e+04". */
Test(report, water_large_means_are_whole_numbers_in_every_format)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");
    struct iw_water_report *r;
    char buf[64];

    put("water/dongtan/w01/fecal_coliform", T("2026-05-01T08:00:00+08:00"), 12345, 0);
    put("water/dongtan/w01/nh3_n", T("2026-05-01T08:00:00+08:00"), 0.5, 0);
    flush();
    cr_assert_eq(iw_report_water(st, &o, &r, NULL), IW_OK);
    char *tbl = render(water_write, r, IW_REPORT_TABLE);
    char *csv = render(water_write, r, IW_REPORT_CSV);
    char *html = render(water_write, r, IW_REPORT_HTML);
    cr_expect_not_null(strstr(tbl, " 12345 "), "%s", tbl);
    cr_expect_not_null(strstr(csv, ",12345,"), "%s", csv);
    cr_expect_not_null(strstr(html, ">12345<"), "%s", html);
    cr_expect_null(strstr(tbl, "e+0"), "%s", tbl);
    cr_expect_null(strstr(html, "e+0"), "%s", html);
    free(tbl);
    free(csv);
    free(html);
    iw_report_water_free(r);
    cr_expect_str_eq(iw__rp_num(50000, 4, buf, sizeof(buf)), "50000");
    cr_expect_str_eq(iw__rp_num(1234567.4, 6, buf, sizeof(buf)), "1234567");
    cr_expect_str_eq(iw__rp_num(-12345, 4, buf, sizeof(buf)), "-12345");
    cr_expect_str_eq(iw__rp_num(1234.56, 4, buf, sizeof(buf)), "1235", "below 10^sig: as before");
}

/* ==========================================================================
 * Air
 * ======================================================================== */

static struct iw_air_report *air(struct iw_report_opts *o)
{
    struct iw_air_report *r = NULL;
    struct iw_diag diag = { 0 };
    cr_assert_eq(iw_report_air(st, o, &r, &diag), IW_OK, "%s", iw_diag_first(&diag));
    return r;
}

Test(report, air_day_with_19_valid_hours_is_invalid)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-04T00:00:00+08:00");

    put_hours("air/a/a01/pm25", "2026-05-01T00:00:00+08:00", 20, 30);
    put_hours("air/a/a01/pm25", "2026-05-02T00:00:00+08:00", 19, 30);
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_device *d = &r->dev[0];
    cr_assert_eq(d->n_days, 2);
    cr_assert(d->days[0].valid);
    cr_assert_eq(d->days[0].item[IW_AQI_PM25_24H].n, 20);
    cr_assert_eq(d->days[0].aqi, 43, "2026 PM2.5 30 -> ceil(42.86)");
    cr_assert_eq(d->days[0].level, 1);
    cr_assert_eq(d->days[0].primary, 0, "no primary pollutant at AQI <= 50");
    cr_assert_not(d->days[1].valid, "19 hours < 20");
    cr_assert_eq(d->days[1].item[IW_AQI_PM25_24H].n, 19);
    cr_assert_eq(d->days[1].missing, 1u << IW_AQI_P_PM25);
    cr_assert_eq(r->sites[0].tally.valid_days, 1);
    cr_assert_eq(r->sites[0].tally.invalid_days, 1);
    cr_assert_eq(r->sites[0].tally.nodata_days, 1);
    cr_assert_float_eq(r->sites[0].tally.good_rate, 1.0, 1e-12);
    iw_report_air_free(r);
}

/*
 * An invalid day's (AQI) is what the day's data indicate, as the
 * air_quality rules store it (rule_air.c): the AQI of every daily value, the
 * one below the validity minimum included. It used to be the valid ones'
 * alone: SO2's 10 (优) beside PM2.5 at 100 for 19 hours.
 */
Test(report, an_invalid_air_day_shows_the_aqi_its_data_indicate)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");

    put_hours("air/a/a01/so2", "2026-05-01T00:00:00+08:00", 48, 10);
    put_hours("air/a/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 100);
    put_hours("air/a/a01/pm25", "2026-05-02T00:00:00+08:00", 19, 100);
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_device *d = &r->dev[0];
    cr_assert_eq(d->n_days, 2);
    cr_assert(d->days[0].valid);
    cr_assert_gt(d->days[0].aqi, 100, "PM2.5 100 is above 良");
    cr_assert_not(d->days[1].valid, "PM2.5 has 19 hours < 20");
    cr_assert_eq(d->days[1].aqi, d->days[0].aqi, "PM2.5's 19 hours indicate %d, not %d",
                 d->days[0].aqi, d->days[1].aqi);
    iw_report_air_free(r);
}

/* SPEC §4: a daily value covers the natural day in the station's time zone.
 * Without --tz each station's days are its air_quality rule's (a sites:
 * override included), as its daily AQI alerts have them, under the report's
 * dates; --tz puts every station on one zone. */
Test(report, an_air_station_keeps_its_rules_timezone_unless_tz_is_given)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");
    struct iw_rule_site sites[1] = { { .site = "u", .p = { .tz_offset_min = 0 } } };
    struct iw_rule rule = { .name = "aq", .kind = IW_RULE_AIR_QUALITY, .select = "air/*/*",
                            .p = { .tz_offset_min = 480 }, .sites = sites, .n_sites = 1 };

    put_hours("air/u/a01/pm25", "2026-05-01T00:00:00Z", 24, 30);        /* its UTC day */
    put_hours("air/e/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 30);   /* a +08:00 day */
    flush();
    o.rules = &rule;
    o.n_rules = 1;
    struct iw_air_report *r = air(&o);
    cr_assert_eq(r->n_dev, 2);
    const struct iw_air_device *e = &r->dev[0], *u = &r->dev[1];
    cr_assert_str_eq(u->site, "u");
    cr_assert_eq(u->tz_offset_min, 0, "the site override's timezone");
    cr_assert_eq(u->n_days, 1);
    cr_assert(u->days[0].valid, "24 hours of its own day");
    cr_assert_eq(u->days[0].item[IW_AQI_PM25_24H].n, 24);
    cr_assert_eq(u->days[0].aqi, 43);
    cr_assert_eq(u->days[0].day, T("2026-05-01T00:00:00+08:00"), "dated as the report's 05-01");
    cr_assert_eq(e->tz_offset_min, 480);
    cr_assert(e->days[0].valid);
    char *tbl = render(air_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "u (a01) (its days at UTC+00:00"), "%s", tbl);
    cr_assert_null(strstr(tbl, "e (a01) (its days"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "2026-05-01  2026   43"), "%s", tbl);
    free(tbl);
    iw_report_air_free(r);

    /* --tz +08:00: u's UTC day straddles two local days, 16 hours in 05-01. */
    o.tz_given = true;
    r = air(&o);
    u = &r->dev[1];
    cr_assert_eq(u->tz_offset_min, 480);
    cr_assert_not(u->days[0].valid);
    cr_assert_eq(u->days[0].item[IW_AQI_PM25_24H].n, 16);
    iw_report_air_free(r);
}

Test(report, air_hour_needs_45_minutes_of_minute_data)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");
    int64_t d1 = T("2026-05-01T00:00:00+08:00"), d2 = T("2026-05-02T00:00:00+08:00");

    /* Day 1: 20 hours of 45 minutes. Day 2: the same but one hour has only 44. */
    for (int h = 0; h < 20; h++)
        for (int m = 1; m <= 45; m++) {
            put("air/a/a01/pm25", d1 + h * IW_MS_PER_HOUR + m * IW_MS_PER_MIN - 30000, 30, 0);
            if (!(h == 5 && m == 45))
                put("air/a/a01/pm25", d2 + h * IW_MS_PER_HOUR + m * IW_MS_PER_MIN - 30000, 30, 0);
        }
    flush();
    struct iw_air_report *r = air(&o);
    cr_assert_eq(r->dev[0].n_days, 2);
    cr_assert(r->dev[0].days[0].valid);
    cr_assert_eq(r->dev[0].days[0].item[IW_AQI_PM25_24H].n, 20);
    cr_assert_not(r->dev[0].days[1].valid);
    cr_assert_eq(r->dev[0].days[1].item[IW_AQI_PM25_24H].n, 19);
    iw_report_air_free(r);
}

/*
 * Minute data that starts exactly on an hour puts one sample at the end of
 * the hour before: one minute of data, not an hourly value (SPEC §4: < 45
 * minutes is invalid), as the rule engine has it. Day 1: 19 full hours, then
 * minute data from 21:00 to 21:30; the sample at 21:00 must not make a 20th
 * valid hour. Day 2: hourly values, each stamped at its hour's end, still
 * count, but for the first: after minute data a lone sample on the hour is
 * one minute (a minute station back for one reading looks the same).
 */
Test(report, air_minute_data_from_the_hour_makes_no_one_minute_hour)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");
    int64_t d1 = T("2026-05-01T00:00:00+08:00");

    for (int h = 0; h < 19; h++)
        for (int m = 1; m <= 60; m++)
            put("air/a/a01/pm25", d1 + h * IW_MS_PER_HOUR + m * IW_MS_PER_MIN, 30, 0);
    for (int m = 0; m <= 30; m++)
        put("air/a/a01/pm25", d1 + 21 * IW_MS_PER_HOUR + m * IW_MS_PER_MIN, 30, 0);
    put_hours("air/a/a01/pm25", "2026-05-02T00:00:00+08:00", 21, 30);
    flush();
    struct iw_air_report *r = air(&o);
    cr_assert_eq(r->dev[0].n_days, 2);
    cr_expect_eq(r->dev[0].days[0].item[IW_AQI_PM25_24H].n, 19, "the one-minute hour is not valid");
    cr_expect_not(r->dev[0].days[0].valid);
    cr_expect_eq(r->dev[0].days[1].item[IW_AQI_PM25_24H].n, 20, "hourly values are, but the first");
    cr_expect(r->dev[0].days[1].valid);
    iw_report_air_free(r);
}

Test(report, air_aqi_exactly_100_is_good)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");

    put_hours("air/a/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 60);   /* 2026: IAQI 100 */
    put_hours("air/a/a01/pm25", "2026-05-02T00:00:00+08:00", 24, 61);   /* 101 */
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_day *d = r->dev[0].days;
    cr_assert_eq(d[0].aqi, 100);
    cr_assert_eq(d[0].level, 2);
    cr_assert_eq(d[1].aqi, 101);
    cr_assert_eq(d[1].level, 3);
    cr_assert_eq(d[1].primary, IW_AQI_BIT(IW_AQI_PM25_24H));
    cr_assert_eq(r->sites[0].tally.good_days, 1);
    cr_assert_eq(r->sites[0].tally.by_level[2], 1);
    cr_assert_eq(r->sites[0].tally.by_level[3], 1);
    cr_assert_float_eq(r->sites[0].tally.good_rate, 0.5, 1e-12);
    cr_assert_eq(r->sites[0].tally.max_aqi, 101);
    iw_report_air_free(r);
}

Test(report, air_breakpoints_switch_on_2026_03_01)
{
    struct iw_report_opts o = opts_for("2026-02-28T00:00:00+08:00", "2026-03-02T00:00:00+08:00");

    put_hours("air/a/a01/pm25", "2026-02-28T00:00:00+08:00", 24, 75);
    put_hours("air/a/a01/pm25", "2026-03-01T00:00:00+08:00", 24, 75);
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_day *d = r->dev[0].days;
    cr_assert_eq(r->dev[0].n_days, 2);
    cr_assert_eq(d[0].std, IW_AQI_HJ633_2012);
    cr_assert_eq(d[0].aqi, 100, "2012: PM2.5 75 is the IAQI-100 breakpoint");
    cr_assert_eq(d[1].std, IW_AQI_HJ633_2026);
    cr_assert_eq(d[1].aqi, 114, "2026: 100 + 50/55 * 15 = 113.6 -> 114");
    cr_assert_float_eq(r->sites[0].tally.good_rate, 0.5, 1e-12);
    cr_assert(r->std_used[IW_AQI_HJ633_2012] && r->std_used[IW_AQI_HJ633_2026]);
    iw_report_air_free(r);

    o.standard = IW_AQI_HJ633_2026;
    r = air(&o);
    cr_assert_eq(r->dev[0].days[0].std, IW_AQI_HJ633_2026);
    cr_assert_eq(r->dev[0].days[0].aqi, 114, "forced 2026");
    iw_report_air_free(r);
    /* the switch is the local midnight */
    cr_assert_eq(iw_report_air_standard(IW_REPORT_STD_AUTO, T("2026-03-01T00:00:00+08:00"), 480),
                 IW_AQI_HJ633_2026);
    cr_assert_eq(iw_report_air_standard(IW_REPORT_STD_AUTO, T("2026-02-28T00:00:00+08:00"), 480),
                 IW_AQI_HJ633_2012);
}

Test(report, air_flagged_samples_are_excluded)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");
    int64_t day = T("2026-05-01T00:00:00+08:00");

    put_hours("air/a/a01/pm25", "2026-05-01T00:00:00+08:00", 20, 30);
    for (int h = 21; h <= 24; h++)
        put("air/a/a01/pm25", day + h * IW_MS_PER_HOUR, 480, 'D');
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_day *d = &r->dev[0].days[0];
    cr_assert(d->valid);
    cr_assert_float_eq(d->item[IW_AQI_PM25_24H].value, 30, 1e-9);
    cr_assert_eq(d->aqi, 43);
    cr_assert_eq(d->n_flagged, 4);
    cr_assert_eq(r->sites[0].tally.flagged, 4);
    iw_report_air_free(r);
}

Test(report, air_missing_pollutant_invalidates_unless_above_100)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");

    put_hours("air/a/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 150);   /* IAQI 200 */
    put_hours("air/a/a01/co", "2026-05-01T00:00:00+08:00", 10, 0.5);
    put_hours("air/a/a01/pm25", "2026-05-02T00:00:00+08:00", 24, 30);
    put_hours("air/a/a01/co", "2026-05-02T00:00:00+08:00", 10, 0.5);
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_day *d = r->dev[0].days;
    cr_assert_eq(r->dev[0].measured, (1u << IW_AQI_P_PM25) | (1u << IW_AQI_P_CO));
    cr_assert(d[0].valid && d[0].partial);
    cr_assert_eq(d[0].aqi, 200);
    cr_assert_eq(d[0].missing, 1u << IW_AQI_P_CO);
    cr_assert_not(d[1].valid, "AQI 43 could be higher with CO");
    char note[400];
    cr_assert_str_eq(iw__rp_air_note(&d[0], note, sizeof(note)),
                     "valid at AQI > 100 without CO: 10 valid hours < 20");
    cr_assert_str_eq(iw__rp_air_note(&d[1], note, sizeof(note)), "CO: 10 valid hours < 20");
    cr_assert_eq(r->sites[0].tally.valid_days, 1);
    cr_assert_float_eq(r->sites[0].tally.good_rate, 0.0, 1e-12);
    iw_report_air_free(r);
}

/*
 * One stray O3 sample (or an analyser taken away) makes O3 measured: its own
 * day and the next are NA at AQI <= 100 (missing), but once the station has
 * reported 24 hours of data without it, O3 is not monitored, as in the
 * air_quality rules. Every later day used to stay NA, and the good-day ratio
 * of the year with them.
 */
Test(report, air_a_stray_pollutant_stops_counting_after_a_day_without_it)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-06T00:00:00+08:00");

    for (int d = 1; d <= 5; d++) {
        char day[40];
        snprintf(day, sizeof(day), "2026-05-0%dT00:00:00+08:00", d);
        put_hours("air/stray/a01/pm25", day, 24, 35);     /* IAQI 50 */
    }
    put("air/stray/a01/o3", T("2026-05-01T12:00:00+08:00"), 80, 0);
    flush();
    struct iw_air_report *r = air(&o);
    const struct iw_air_day *d = r->dev[0].days;
    cr_assert_eq(r->dev[0].n_days, 5);
    cr_expect_not(d[0].valid, "05-01: one O3 sample, not a valid day of it");
    cr_expect_not(d[1].valid, "05-02: O3 measured at its start, missing");
    for (int k = 2; k < 5; k++)
        cr_expect(d[k].valid && d[k].aqi == 50, "05-0%d: O3 not monitored any more", k + 1);
    cr_expect_eq(r->dev[0].tally.good_days, 3);
    iw_report_air_free(r);
}

/*
 * A station whose inventory entry lists its pollutants monitors them all
 * along: its CO analyser out from 05-02 on leaves every later day NA at
 * AQI <= 100, where the undeclared station next to it (the rules' 24-hour
 * guess) has its days valid again from 05-03. The rules do the same
 * (std/air_daily_a_declared_analyser_out_for_days_leaves_every_day_na).
 */
Test(report, air_pollutants_the_inventory_lists_are_measured_all_along)
{
    static const struct iw_device_cfg inv[] = {
        { .source = "air", .site = "decl", .device = "a01",
          .pollutants = (1u << IW_AQI_P_PM25) | (1u << IW_AQI_P_CO) },
    };
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-05T00:00:00+08:00");

    for (int d = 1; d <= 4; d++) {
        char day[40];
        snprintf(day, sizeof(day), "2026-05-0%dT00:00:00+08:00", d);
        put_hours("air/decl/a01/pm25", day, 24, 35);    /* IAQI 50 */
        put_hours("air/guess/a01/pm25", day, 24, 35);
    }
    put_hours("air/decl/a01/co", "2026-05-01T00:00:00+08:00", 24, 0.5);
    put_hours("air/guess/a01/co", "2026-05-01T00:00:00+08:00", 24, 0.5);
    flush();
    o.devices = inv;
    o.n_devices = 1;
    struct iw_air_report *r = air(&o);
    cr_assert_eq(r->n_dev, 2);
    const struct iw_air_device *decl = &r->dev[0], *guess = &r->dev[1];
    cr_assert_str_eq(decl->site, "decl");
    cr_assert_eq(decl->n_days, 4);
    cr_assert_eq(guess->n_days, 4);
    cr_expect(decl->days[0].valid && guess->days[0].valid, "05-01 with CO");
    for (int k = 1; k < 4; k++) {
        cr_expect_not(decl->days[k].valid, "05-0%d: declared CO missing: NA", k + 1);
        cr_expect_eq(guess->days[k].valid, k >= 2, "05-0%d of the undeclared station", k + 1);
    }
    cr_expect_eq(decl->tally.good_days, 1);
    cr_expect_eq(guess->tally.good_days, 3);
    iw_report_air_free(r);
}

/*
 * A day's validity does not depend on the period asked for. A CO analyser
 * installed on 05-03: 05-01 (PM2.5 only, AQI 100) is a valid good day
 * whether the report ends before 05-03 or after it, as the air_quality rule
 * had it live. An outage (no CO on 05-02 between CO days) and an analyser
 * silent since 05-01 leave CO measured and missing on 05-02: not valid at
 * AQI <= 100 (HJ 633-2026 §5.3.1). After 24 hours of the station's data
 * without it, CO is not monitored (as the rules have it, rule_air.c): 05-03
 * of the silent one is valid without it.
 */
Test(report, air_day_validity_does_not_depend_on_the_period)
{
    struct iw_report_opts all = opts_for("2026-05-01T00:00:00+08:00", "2026-05-04T00:00:00+08:00");
    struct iw_report_opts first = opts_for("2026-05-01T00:00:00+08:00",
                                           "2026-05-02T00:00:00+08:00");

    for (int d = 1; d <= 3; d++) {
        char day[40];
        snprintf(day, sizeof(day), "2026-05-0%dT00:00:00+08:00", d);
        put_hours("air/new/a01/pm25", day, 24, 60);     /* IAQI 100 */
        put_hours("air/gone/a01/pm25", day, 24, 60);
        put_hours("air/gap/a01/pm25", day, 24, 60);
    }
    put_hours("air/new/a01/co", "2026-05-03T00:00:00+08:00", 24, 0.5);
    put_hours("air/gone/a01/co", "2026-05-01T00:00:00+08:00", 24, 0.5);
    put_hours("air/gap/a01/co", "2026-05-01T00:00:00+08:00", 24, 0.5);
    put_hours("air/gap/a01/co", "2026-05-03T00:00:00+08:00", 24, 0.5);
    flush();

    struct iw_air_report *r1 = air(&first), *r3 = air(&all);
    cr_assert_eq(r3->n_dev, 3);
    const struct iw_air_device *gap = &r3->dev[0], *gone = &r3->dev[1], *nw = &r3->dev[2];
    cr_assert_str_eq(nw->site, "new");
    cr_assert(r1->dev[2].days[0].valid, "05-01 alone: valid");
    cr_expect(nw->days[0].valid, "05-01 in 05-01..05-03: valid too (CO came on 05-03)");
    cr_expect_eq(nw->days[0].aqi, 100);
    cr_expect_eq(nw->tally.good_days, 3);
    cr_expect(gone->days[0].valid, "05-01 with CO");
    cr_expect_not(gone->days[1].valid, "CO silent since 05-01: missing on 05-02");
    cr_expect(gone->days[2].valid, "05-03: CO not monitored after 24 hours of data without it");
    cr_expect(gap->days[0].valid && gap->days[2].valid);
    cr_expect_not(gap->days[1].valid, "05-02: CO measured before and after, missing that day");
    cr_expect_eq(gap->days[1].missing, 1u << IW_AQI_P_CO);
    iw_report_air_free(r1);
    iw_report_air_free(r3);
}

/* A site's note reads like a device's: "<items>: why", also on a partial (AQI > 100) day. */
Test(report, air_site_note_names_the_missing_item_then_why)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");

    put_hours("air/b/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 150);   /* IAQI 200 */
    put_hours("air/b/a01/co", "2026-05-01T00:00:00+08:00", 10, 0.5);
    put_hours("air/b/a02/pm25", "2026-05-01T00:00:00+08:00", 24, 150);
    flush();
    struct iw_air_report *r = air(&o);
    cr_assert_eq(r->n_sites, 1);
    const struct iw_air_day *d = &r->sites[0].days[0];
    cr_assert(d->valid && d->partial);
    char note[400];
    cr_expect_str_eq(iw__rp_air_note(d, note, sizeof(note)),
                     "valid at AQI > 100 without CO: no device with a valid daily value");
    iw_report_air_free(r);
}

Test(report, air_o3_daily_max_8h_and_site_of_two_devices)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-02T00:00:00+08:00");

    put_hours("air/two/a01/o3", "2026-05-01T00:00:00+08:00", 24, 200);   /* 8h 200 -> 137 */
    put_hours("air/two/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 30);
    put_hours("air/two/a02/pm25", "2026-05-01T00:00:00+08:00", 24, 50);
    flush();
    struct iw_air_report *r = air(&o);
    cr_assert_eq(r->n_dev, 2);
    cr_assert_eq(r->n_sites, 1);
    const struct iw_air_day *a1 = &r->dev[0].days[0];
    cr_assert_eq(a1->aqi, 137);
    cr_assert_eq(a1->primary, IW_AQI_BIT(IW_AQI_O3_8H));
    cr_assert_eq(r->dev[1].days[0].aqi, 80, "2026 PM2.5 50: 50 + 50/25 * 15");
    const struct iw_air_site *s = &r->sites[0];
    cr_assert_eq(s->n_days, 1);
    cr_assert_float_eq(s->days[0].item[IW_AQI_PM25_24H].value, 40, 1e-9);
    cr_assert_eq(s->days[0].item[IW_AQI_PM25_24H].n, 2);
    cr_assert_eq(s->days[0].aqi, 137, "O3 from a01 decides the site");
    cr_assert(s->days[0].valid, "a02 measures no O3, a01 does: the site has both");
    iw_report_air_free(r);
}

Test(report, air_outputs)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00+08:00", "2026-05-03T00:00:00+08:00");

    put_hours("air/a/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 60);
    put_hours("air/a/a01/pm25", "2026-05-02T00:00:00+08:00", 19, 61);
    flush();
    struct iw_air_report *r = air(&o);
    char *csv = render(air_write, r, IW_REPORT_CSV);
    cr_assert(strncmp(csv, "row,site,device,name,date,standard,aqi,level,", 45) == 0, "%s", csv);
    cr_assert_not_null(strstr(csv, "\nday,a,a01,,2026-05-01,HJ633-2026,100,2,良,Good,PM2.5,1,0,,"),
                       "%s", csv);
    /* Not valid: the AQI its data indicate (as the daemon stores it), valid 0. */
    cr_assert_not_null(strstr(csv, "\nday,a,a01,,2026-05-02,HJ633-2026,101,,,,,0,0,PM2.5: 19 valid "
                              "hours < 20,,,,,,,61,"), "%s", csv);
    cr_assert_not_null(strstr(csv, "\nsite,a,a01,,,,,,,,,,,,,,,,,,,2,1,1,0,1,1.0000,0,1,0,0,0,0,100,0\n"),
                       "%s", csv);
    char *tbl = render(air_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "优良天数比例"));
    cr_assert_not_null(strstr(tbl, "100.00%"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "(101)"), "the invalid day's AQI in parentheses: %s", tbl);
    char *html = render(air_write, r, IW_REPORT_HTML);
    cr_assert_not_null(strstr(html, "fill=\"#FFFF00\""), "AQI 100 bar in the level-2 colour");
    cr_assert_not_null(strstr(html, "#7E0023"), "the legend has all six level colours");
    cr_assert_not_null(strstr(html, "优良天数比例"));
    cr_assert_null(strstr(html, "<script"));
    cr_assert_null(strstr(html, "src="));
    free(csv);
    free(tbl);
    free(html);
    iw_report_air_free(r);
}

/* ==========================================================================
 * Cameras
 * ======================================================================== */

static const struct iw_device_cfg cam_inv[] = {
    { .source = "camera", .site = "dongtan", .device = "c01", .name = "码头" },
    { .source = "camera", .site = "dongtan", .device = "c09", .name = "未上线" },
};

Test(report, camera_online_rate_with_a_gap_and_a_never_seen_camera)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00Z", "2026-05-01T00:10:30Z");
    int64_t t0 = o.from;
    struct iw_camera_report *r;

    for (int s = 0; s < 630; s += 30) {
        int minute = s / 60;
        if (minute == 5)
            put("camera/dongtan/c01/online", t0 + s * 1000, 0, 0);       /* offline heartbeat */
        else if (minute == 6)
            put("camera/dongtan/c01/online", t0 + s * 1000, 1, 'B');     /* flagged */
        else
            put("camera/dongtan/c01/online", t0 + s * 1000, 1, 0);
    }
    put("camera/dongtan/c01/online", t0 - 1000, 1, 0);                   /* before the period */
    put("camera/dongtan/c01/fps", t0 + 5000, 25, 0);
    put("camera/old/c77/online", t0 - IW_MS_PER_DAY, 1, 0);              /* dark since then */
    flush();
    o.devices = cam_inv;
    o.n_devices = 2;
    cr_assert_eq(iw_report_cameras(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_intervals, 11, "ten minutes and a 30 s remainder");
    cr_assert_eq(r->n_cams, 3, "c77 went dark before the period: offline throughout");
    const struct iw_camera *c = &r->cams[0];
    cr_assert_str_eq(c->device, "c01");
    cr_assert_eq(c->online, 9, "minutes 0-4, 7-10");
    cr_assert_eq(c->flagged, 2);
    cr_assert_eq(c->heartbeats, 19);
    cr_assert_eq(c->first_seen, t0);
    cr_assert_float_eq(c->rate, 9.0 / 11.0, 1e-12);
    cr_assert_str_eq(r->cams[1].device, "c09");
    cr_assert_eq(r->cams[1].online, 0);
    cr_assert_eq(r->cams[1].intervals, 11);
    cr_assert_eq(r->cams[1].first_seen, INT64_MIN);
    cr_assert_eq(r->sites[0].never_seen, 1);
    cr_assert_float_eq(r->sites[0].rate, 9.0 / 22.0, 1e-12);
    cr_assert_str_eq(r->cams[2].device, "c77");
    cr_assert_eq(r->cams[2].last_heard, t0 - IW_MS_PER_DAY);
    cr_assert_float_eq(r->total.rate, 9.0 / 33.0, 1e-12);

    char *csv = render(cameras_write, r, IW_REPORT_CSV);
    cr_assert_not_null(strstr(csv, "\ncamera,dongtan,c01,码头,1,11,9,0.8182,19,2,"), "%s", csv);
    cr_assert_not_null(strstr(csv, "\ncamera,dongtan,c09,未上线,1,11,0,0.0000,0,0,,,,,,\n"), "%s", csv);
    cr_assert_not_null(strstr(csv, "\nsite,dongtan,,,,22,9,0.4091,,,,,2,1,,\n"), "%s", csv);
    char *tbl = render(cameras_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "在线率"));
    cr_assert_not_null(strstr(tbl, "never reported"));
    char *html = render(cameras_write, r, IW_REPORT_HTML);
    cr_assert_not_null(strstr(html, "<svg"));
    cr_assert_null(strstr(html, "<script"));
    /* At phone width (390 px, audit) the page scrolled sideways and the
     * charts shrank to unreadable labels: charts and tables scroll alone. */
    cr_assert_not_null(strstr(html, "<div class=\"chart\"><svg"), "%s", html);
    cr_assert_null(strstr(html, "</svg>\n"), "a chart outside its scroller");
    cr_assert_not_null(strstr(html, "@media (max-width:760px){"));
    /* Ⅴ from a font that draws it (WenQuanYi's is empty). */
    cr_assert_not_null(strstr(html, "unicode-range:U+2160-2188"));
    free(csv);
    free(tbl);
    free(html);
    iw_report_cameras_free(r);
}

/* A camera heard before the period and silent throughout it went dark: it
 * is offline for every interval, declared or not, and the table says since
 * when; leaving it out would report its site as fully online. */
Test(report, a_camera_that_went_dark_before_the_period_is_offline_throughout)
{
    static const struct iw_device_cfg inv[] = {
        { .source = "camera", .site = "s", .device = "decl" },
    };
    struct iw_report_opts o = opts_for("2026-05-01T01:00:00Z", "2026-05-01T01:10:00Z");
    struct iw_camera_report *r;

    for (int m = -60; m < 10; m++) {
        put("camera/s/live/online", o.from + m * 60000 + 30000, 1, 0);
        if (m < -30) {      /* both dark half an hour before the period */
            put("camera/s/dark/online", o.from + m * 60000 + 30000, 1, 0);
            put("camera/s/decl/online", o.from + m * 60000 + 30000, 1, 0);
        }
    }
    put("camera/s/dark/online", o.from - 10 * 60000, 1, 'D');   /* flagged: not a heartbeat */
    flush();
    o.devices = inv;
    o.n_devices = 1;
    cr_assert_eq(iw_report_cameras(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_cams, 3, "dark, decl, live");
    const struct iw_camera *dark = &r->cams[0], *decl = &r->cams[1], *live = &r->cams[2];
    cr_assert_str_eq(dark->device, "dark");
    cr_assert_eq(dark->intervals, 10);
    cr_assert_eq(dark->online, 0);
    cr_assert_eq(dark->last_heard, o.from - 31 * 60000 + 30000);
    cr_assert_str_eq(decl->device, "decl");
    cr_assert_eq(decl->last_heard, o.from - 31 * 60000 + 30000);
    cr_assert_eq(live->online, 10);
    cr_assert_eq(live->last_heard, INT64_MIN, "heard in the period");
    cr_assert_eq(r->sites[0].never_seen, 0, "all three reported once");
    cr_assert_float_eq(r->sites[0].rate, 10.0 / 30.0, 1e-12);
    char *tbl = render(cameras_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "silent since 2026-05-01 08:29:30"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "3 cameras, 0 never reported"), "%s", tbl);
    cr_assert_null(strstr(tbl, "dark  never"), "%s", tbl);
    char *html = render(cameras_write, r, IW_REPORT_HTML);
    cr_assert_not_null(strstr(html, "silent since 2026-05-01 08:29:30"));
    char *csv = render(cameras_write, r, IW_REPORT_CSV);
    cr_assert_not_null(strstr(csv, "\nsite,s,,,,30,10,0.3333,,,,,3,0,,\n"), "%s", csv);
    /* The CSV says what the table's note does (audit: it looked never heard). */
    cr_assert_not_null(strstr(csv, "\ncamera,s,dark,,0,10,0,0.0000,0,0,,,,,2026-05-01T00:29:30.000Z,\n"),
                       "%s", csv);
    free(tbl);
    free(html);
    free(csv);
    iw_report_cameras_free(r);
}

/* A camera installed during the period was not down before it: it counts
 * from the interval of its first heartbeat. One first heard after the period
 * has no intervals in it (n/a), and is not "never reported". */
Test(report, a_camera_first_heard_inside_or_after_the_period_counts_from_then)
{
    static const struct iw_device_cfg inv[] = {
        { .source = "camera", .site = "s", .device = "new" },
        { .source = "camera", .site = "s", .device = "later" },
    };
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00Z", "2026-05-01T00:10:00Z");
    struct iw_camera_report *r;

    for (int m = 4; m < 10; m++)
        put("camera/s/new/online", o.from + m * 60000 + 30000, 1, 0);
    put("camera/s/later/online", o.to + 60000, 1, 0);
    flush();
    o.devices = inv;
    o.n_devices = 2;
    cr_assert_eq(iw_report_cameras(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->n_cams, 2);
    const struct iw_camera *later = &r->cams[0], *fresh = &r->cams[1];
    cr_assert_str_eq(fresh->device, "new");
    cr_assert_eq(fresh->intervals, 6, "from minute 4: %llu", (unsigned long long)fresh->intervals);
    cr_assert_eq(fresh->online, 6);
    cr_assert_float_eq(fresh->rate, 1.0, 1e-12);
    cr_assert_eq(fresh->in_service, o.from + 4 * 60000 + 30000);
    cr_assert_str_eq(later->device, "later");
    cr_assert_eq(later->intervals, 0);
    cr_assert(isnan(later->rate));
    cr_assert_eq(r->sites[0].never_seen, 0, "first heard after the period is not never");
    cr_assert_float_eq(r->total.rate, 1.0, 1e-12);
    char *tbl = render(cameras_write, r, IW_REPORT_TABLE);
    cr_assert_not_null(strstr(tbl, "counted from its first heartbeat,"), "%s", tbl);
    cr_assert_not_null(strstr(tbl, "first heard after the period,"), "%s", tbl);
    char *csv = render(cameras_write, r, IW_REPORT_CSV);
    cr_assert_not_null(strstr(csv, ",,2026-05-01T00:04:30.000Z\n"), "counted_from: %s", csv);
    free(csv);
    free(tbl);
    iw_report_cameras_free(r);
}

Test(report, camera_heartbeats_in_one_interval_count_once)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00Z", "2026-05-01T00:05:00Z");
    struct iw_camera_report *r;

    for (int s = 0; s < 60; s += 5)
        put("camera/x/c1/online", o.from + s * 1000, 1, 0);
    flush();
    o.interval_ms = 60000;
    cr_assert_eq(iw_report_cameras(st, &o, &r, NULL), IW_OK);
    cr_assert_eq(r->cams[0].online, 1);
    cr_assert_float_eq(r->cams[0].rate, 0.2, 1e-12);
    iw_report_cameras_free(r);
    o.interval_ms = 0;
    cr_assert_eq(iw_report_cameras(st, &o, &r, NULL), IW_E_INVAL);
    cr_assert_null(r);
    /* Too long a period for the interval: said in words that fit the CLI and HTTP alike. */
    struct iw_diag diag = { 0 };
    o.interval_ms = 1000;
    o.from = o.to - 100LL * 365 * IW_MS_PER_DAY;
    cr_assert_eq(iw_report_cameras(st, &o, &r, &diag), IW_E_INVAL);
    cr_assert_str_eq(iw_diag_first(&diag), "the period holds more than 40000000 heartbeat "
                     "intervals of 1 s: choose a shorter period or a longer interval (--interval, "
                     "or interval= over HTTP)");
    iw_diag_fini(&diag);
}

/* ==========================================================================
 * Nothing to report
 * ======================================================================== */

/* A store with no series of the report's source, and no inventory, gives an
 * empty report (not an error, and no undefined behaviour on the empty list). */
Test(report, a_store_without_the_source_gives_an_empty_report)
{
    struct iw_report_opts o = opts_for("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z");
    struct iw_water_report *w = NULL;
    struct iw_air_report *a = NULL;
    struct iw_camera_report *c = NULL;

    put("other/x/y/z", o.from + 1000, 1, 0);
    flush();
    cr_assert_eq(iw_report_water(st, &o, &w, NULL), IW_OK);
    cr_assert_eq(w->n_sites, 0);
    cr_assert_eq(iw_report_air(st, &o, &a, NULL), IW_OK);
    cr_assert_eq(a->n_sites, 0);
    cr_assert_eq(iw_report_cameras(st, &o, &c, NULL), IW_OK);
    cr_assert_eq(c->n_cams, 0);
    char *csv = render(air_write, a, IW_REPORT_CSV);
    free(csv);
    iw_report_water_free(w);
    iw_report_air_free(a);
    iw_report_cameras_free(c);
}

/* --standard takes a standard as a rule's standard: does ("HJ 633-2012", "hj633-2012"). */
Test(report, standard_option_is_read_as_the_config_reads_it)
{
    static const struct { const char *s; int want; } cases[] = {
        { "auto", IW_REPORT_STD_AUTO },      { "HJ633-2012", IW_AQI_HJ633_2012 },
        { "hj633-2012", IW_AQI_HJ633_2012 }, { "HJ 633-2026", IW_AQI_HJ633_2026 },
        { "HJ633\u20142026", IW_AQI_HJ633_2026 }, { "HJ633-2020", -99 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct iw_report_args a = { .from = "2026-05-01", .to = "2026-05-02",
                                    .standard = cases[i].s };
        struct iw_report_opts o;
        struct iw_diag diag = { 0 };
        int rc = iw_report_opts_parse(&a, NULL, 0, &o, &diag);
        if (cases[i].want == -99) {
            cr_expect_neq(rc, IW_OK, "%s", cases[i].s);
        } else {
            cr_expect_eq(rc, IW_OK, "%s: %s", cases[i].s, iw_diag_first(&diag));
            cr_expect_eq((int)o.standard, cases[i].want, "%s", cases[i].s);
        }
        iw_diag_fini(&diag);
    }
}

/* Table and HTML numbers round as the decimal mean does: 1.6, 2.0, 2.01 and
 * 1.5 average to 1.7775 exactly, printed 1.777 from its binary value (audit;
 * the CSV, to 6 digits, said 1.7775). */
Test(report, table_numbers_round_the_decimal_value)
{
    char buf[40];

    cr_expect_str_eq(iw__rp_num((1.6 + 2.0 + 2.01 + 1.5) / 4, 4, buf, sizeof(buf)), "1.778");
    cr_expect_str_eq(iw__rp_num(-7.11 / 4, 4, buf, sizeof(buf)), "-1.778");
    cr_expect_str_eq(iw__rp_num(1.77749, 4, buf, sizeof(buf)), "1.777");
    cr_expect_str_eq(iw__rp_num(0.1 + 0.2, 4, buf, sizeof(buf)), "0.3");
    cr_expect_str_eq(iw__rp_num(0.00005, 4, buf, sizeof(buf)), "0.00005");
    cr_expect_str_eq(iw__rp_num(50000, 4, buf, sizeof(buf)), "50000");
    cr_expect_str_eq(iw__rp_num(0, 4, buf, sizeof(buf)), "0");
    cr_expect_str_eq(iw__rp_num(NAN, 4, buf, sizeof(buf)), "");
}
