/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay: the rule engine driven in-process with a simulated wall clock.
 * Configs come from YAML strings (iw_config_load_string); alerts are checked
 * by time, rule, device and status.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/replay.h"
#include "islewatch/store.h"

#define T0 1767225600000LL          /* 2026-01-01T00:00:00Z */
#define SEC 1000LL
#define MIN (60 * SEC)

static struct iw_config *load(const char *yaml)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    int rc = iw_config_load_string("test.yaml", yaml, strlen(yaml), &cfg, &diag);
    cr_assert_eq(rc, IW_OK, "config: %s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
    return cfg;
}

static const char *NH3 =
    "rules:\n"
    "  - { name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5, for: 2m, severity: major }\n"
    "  - { name: cam, kind: absence, select: \"camera/*/*\", after: 90s }\n"
    "  - { name: cls, kind: water_quality, select: \"water/*/*\", window: 1h }\n"
    "devices:\n"
    "  - { source: camera, site: s1, device: c9 }\n";

static struct iw_replay *replay(const struct iw_config *cfg, const char *const *rules, size_t n,
                                bool no_inventory, struct iw_store *st)
{
    struct iw_replay_opts o = { .cfg = cfg, .store = st, .start_ms = T0, .rules = rules,
                                .n_rules = n, .no_inventory = no_inventory, .keep_inputs = st == NULL };
    struct iw_replay *r = NULL;
    cr_assert_eq(iw_replay_new(&o, &r), IW_OK);
    return r;
}

/* One sample of series at T0 + at, received then. */
static void feed(struct iw_replay *r, const char *series, int64_t at, double v, char flag)
{
    char buf[256];
    struct iw_rsample s = { 0 };
    cr_assert_eq(iw_replay_split(series, buf, sizeof(buf), &s), IW_OK, "%s", series);
    s.ts = s.recv_ms = T0 + at;
    s.value = v;
    s.flag = flag;
    iw_replay_feed(r, &s, 1);
}

struct want {
    int64_t at;
    const char *rule, *device;
    enum iw_alert_status status;
};

static void expect_alerts(struct iw_replay *r, const struct want *w, size_t n)
{
    size_t got = iw_replay_alert_count(r);
    for (size_t i = 0; i < got && i < n; i++) {
        const struct iw_alert *a = iw_replay_alert(r, i);
        cr_expect_eq(a->ts, T0 + w[i].at, "alert %zu (%s %s): ts +%lld ms, want +%lld ms", i, a->rule,
                     a->device, (long long)(a->ts - T0), (long long)w[i].at);
        cr_expect_str_eq(a->rule, w[i].rule, "alert %zu", i);
        cr_expect_str_eq(a->device, w[i].device, "alert %zu", i);
        cr_expect_eq(a->status, w[i].status, "alert %zu (%s at +%lld)", i, a->rule,
                     (long long)(a->ts - T0));
    }
    cr_assert_eq(got, n, "%zu alerts, want %zu", got, n);
}

TestSuite(replay, .timeout = 30);

Test(replay, threshold_fires_and_resolves_on_sample_time)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "nh3" };
    struct iw_replay *r = replay(cfg, only, 1, false, NULL);
    static const double v[] = { 1.0, 1.6, 1.7, 1.8, 1.0 };

    for (size_t i = 0; i < 5; i++)
        feed(r, "water/s1/w1/nh3_n", (int64_t)i * MIN, v[i], 0);
    static const struct want w[] = {
        { 3 * MIN, "nh3", "w1", IW_ALERT_FIRING },
        { 4 * MIN, "nh3", "w1", IW_ALERT_RESOLVED },
    };
    expect_alerts(r, w, 2);
    cr_expect_eq(iw_replay_rule_count(r), 1);
    cr_expect_str_eq(iw_replay_rule(r, 0)->name, "nh3");
    cr_expect_eq(iw_replay_status(r), IW_OK);
    iw_replay_free(r);
    iw_config_free(cfg);
}

Test(replay, a_heartbeat_exactly_at_the_deadline_is_in_time)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "cam" };
    struct iw_replay *r = replay(cfg, only, 1, true, NULL);

    feed(r, "camera/s1/c1/online", 0, 1, 0);
    feed(r, "camera/s1/c1/online", 90 * SEC, 1, 0);     /* exactly last + after */
    cr_expect_eq(iw_replay_alert_count(r), 0, "a heartbeat at the deadline must be in time");
    feed(r, "camera/s1/c1/online", 181 * SEC, 1, 0);    /* one second late */
    static const struct want w[] = {
        { 180 * SEC, "cam", "c1", IW_ALERT_FIRING },    /* ts = last + after, not the tick time */
        { 181 * SEC, "cam", "c1", IW_ALERT_RESOLVED },
    };
    expect_alerts(r, w, 2);
    iw_replay_free(r);
    iw_config_free(cfg);
}

Test(replay, advance_runs_deadlines_up_to_and_including_now)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "cam" };
    struct iw_replay *r = replay(cfg, only, 1, true, NULL);

    feed(r, "camera/s1/c1/online", 0, 1, 0);
    iw_replay_advance(r, T0 + 90 * SEC - 1);
    cr_expect_eq(iw_replay_alert_count(r), 0);
    cr_expect_eq(iw_replay_now(r), T0 + 90 * SEC - 1);
    iw_replay_advance(r, T0 + 90 * SEC);
    static const struct want w[] = { { 90 * SEC, "cam", "c1", IW_ALERT_FIRING } };
    expect_alerts(r, w, 1);
    iw_replay_advance(r, T0);                           /* the clock never goes back */
    cr_expect_eq(iw_replay_now(r), T0 + 90 * SEC);
    iw_replay_free(r);
    iw_config_free(cfg);
}

/* One long advance runs each deadline at its own time, as the daemon's ticks
 * do: every `repeat` of an absence and of an event, counted from the one before. */
Test(replay, one_long_advance_runs_every_repeat_at_its_time)
{
    struct iw_config *cfg = load(
        "rules:\n"
        "  - { name: cam, kind: absence, select: \"camera/*/*\", after: 2m, repeat: 5m }\n"
        "  - { name: tamper, kind: event, select: \"camera_event/*/*\", match: { type: tamper },\n"
        "      repeat: 4m }\n");
    struct iw_replay *r = replay(cfg, NULL, 0, true, NULL);

    char buf[256];
    struct iw_rsample ev = { 0 };

    feed(r, "camera/s1/c1/online", 0, 1, 0);
    cr_assert_eq(iw_replay_split("camera_event/s1/c1/tamper", buf, sizeof(buf), &ev), IW_OK);
    ev.ts = ev.recv_ms = T0 + 1 * MIN;
    ev.value = 1;                                       /* start */
    ev.is_event = true;
    iw_replay_feed(r, &ev, 1);
    iw_replay_advance(r, T0 + 13 * MIN);
    static const struct want w[] = {
        { 1 * MIN, "tamper", "c1", IW_ALERT_FIRING },
        { 2 * MIN, "cam", "c1", IW_ALERT_FIRING },
        { 5 * MIN, "tamper", "c1", IW_ALERT_FIRING },
        { 7 * MIN, "cam", "c1", IW_ALERT_FIRING },
        { 9 * MIN, "tamper", "c1", IW_ALERT_FIRING },
        { 12 * MIN, "cam", "c1", IW_ALERT_FIRING },
        { 13 * MIN, "tamper", "c1", IW_ALERT_FIRING },
    };
    expect_alerts(r, w, IW_ARRAY_LEN(w));
    iw_replay_free(r);
    iw_config_free(cfg);
}

Test(replay, inventory_devices_count_from_the_start_unless_left_out)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "c*" };                      /* cam and cls */
    struct iw_replay *with = replay(cfg, only, 1, false, NULL);
    struct iw_replay *without = replay(cfg, only, 1, true, NULL);

    cr_expect_eq(iw_replay_rule_count(with), 2);
    iw_replay_advance(with, T0 + 10 * MIN);
    iw_replay_advance(without, T0 + 10 * MIN);
    static const struct want w[] = { { 90 * SEC, "cam", "c9", IW_ALERT_FIRING } };
    expect_alerts(with, w, 1);
    cr_expect_eq(iw_replay_alert_count(without), 0);
    iw_replay_free(with);
    iw_replay_free(without);
    iw_config_free(cfg);
}

struct pts {
    int64_t ts[8];
    double v[8];
    char f[8];
    size_t n;
};

static int collect(void *ctx, int64_t ts, double v, char f)
{
    struct pts *g = ctx;
    if (g->n < 8) {
        g->ts[g->n] = ts;
        g->v[g->n] = v;
        g->f[g->n] = f;
        g->n++;
    }
    return 0;
}

Test(replay, kept_inputs_and_derived_points_are_readable)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "cls" };
    struct iw_replay *r = replay(cfg, only, 1, true, NULL);
    struct pts got = { 0 };

    feed(r, "water/s1/w1/nh3_n", 0, 0.4, 0);
    feed(r, "water/s1/w1/nh3_n", MIN, 0.6, 'D');
    feed(r, "water/s1/w1/nh3_n", 2 * MIN, 3.0, 0);

    cr_assert_eq(iw_replay_read_points(r, "water/s1/w1/nh3_n", T0, T0 + 2 * MIN,
                                       collect, &got), IW_OK);
    cr_assert_eq(got.n, 3, "every fed sample is kept, flagged ones too");
    cr_expect_eq(got.ts[1], T0 + MIN);
    cr_expect_eq(got.f[1], 'D');
    got.n = 0;
    cr_assert_eq(iw_replay_read_points(r, "water/s1/w1/class", T0, T0 + 2 * MIN, collect, &got), IW_OK);
    cr_assert_geq(got.n, 2, "the water class is written at each message");
    cr_expect_eq(got.v[0], 2, "NH3-N 0.4 alone is class II");
    cr_expect_eq(got.v[got.n - 1], 5, "mean (0.4 + 3.0) / 2 = 1.7 (the flagged 0.6 left out) is class V; got %g",
                 got.v[got.n - 1]);
    got.n = 0;
    cr_assert_eq(iw_replay_read_points(r, "water/s1/w1/nh3_n", T0 + MIN, T0 + MIN, collect, &got), IW_OK);
    cr_expect_eq(got.n, 1, "from and to are both inclusive");
    iw_replay_free(r);
    iw_config_free(cfg);
}

Test(replay, drop_derived_keeps_no_derived_points)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "cls" };
    struct iw_replay_opts o = { .cfg = cfg, .start_ms = T0, .rules = only, .n_rules = 1,
                                .no_inventory = true, .drop_derived = true };
    struct iw_replay *r = NULL;
    struct pts got = { 0 };

    cr_assert_eq(iw_replay_new(&o, &r), IW_OK);
    feed(r, "water/s1/w1/nh3_n", 0, 3.0, 0);
    cr_assert_eq(iw_replay_read_points(r, "water/s1/w1/class", T0 - MIN, T0 + MIN, collect, &got), IW_OK);
    cr_expect_eq(got.n, 0);
    cr_expect_eq(iw_replay_alert_count(r), 1, "the rule still runs and fires (class V)");
    iw_replay_free(r);
    iw_config_free(cfg);
}

Test(replay, a_restart_keeps_a_firing_alert_without_refiring)
{
    struct iw_config *cfg = load(NH3);
    const char *only[] = { "nh3" };
    struct iw_replay *r = replay(cfg, only, 1, false, NULL);

    for (int i = 0; i < 4; i++)
        feed(r, "water/s1/w1/nh3_n", i * MIN, 2.0, 0);
    cr_assert_eq(iw_replay_alert_count(r), 1);
    cr_expect_gt(iw_replay_state_count(r), 0, "a firing instance has a state record");
    cr_assert_eq(iw_replay_restart(r, T0 + 5 * MIN), IW_OK);
    feed(r, "water/s1/w1/nh3_n", 6 * MIN, 2.0, 0);
    feed(r, "water/s1/w1/nh3_n", 7 * MIN, 1.0, 0);
    static const struct want w[] = {
        { 2 * MIN, "nh3", "w1", IW_ALERT_FIRING },
        { 7 * MIN, "nh3", "w1", IW_ALERT_RESOLVED },
    };
    expect_alerts(r, w, 2);
    cr_expect_str_eq(iw_replay_alert(r, 0)->id, iw_replay_alert(r, 1)->id, "one episode, one id");
    iw_replay_free(r);
    iw_config_free(cfg);
}

Test(replay, windows_are_primed_from_the_store_history)
{
    static const char *yaml =
        "rules:\n"
        "  - { name: avg, kind: threshold, select: \"water/*/*/tp\", above: 0.5,\n"
        "      window: { agg: avg, over: 10m } }\n";
    struct iw_config *cfg = load(yaml);
    char dir[] = "/tmp/iw-replay-test-XXXXXX", cmd[64];
    struct iw_store *st = NULL;
    struct iw_diag diag = { 0 };
    struct iw_store_opts so = { .path = dir };
    const struct iw_series *s;
    struct iw_wbatch *b = iw_wbatch_new();

    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(iw_store_open(&so, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(iw_store_series_intern(st, "water/s1/w1/tp", 14, &s), IW_OK);
    for (int i = 1; i <= 5; i++)                        /* history before the start: 1.0 each */
        iw_wbatch_put_point(b, s->id, T0 - i * MIN, 1.0, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK);
    iw_wbatch_free(b);

    struct iw_replay *r = replay(cfg, NULL, 0, true, st);
    cr_expect(iw_replay_wants(r, "water/s1/w1/tp"));
    cr_expect_not(iw_replay_wants(r, "water/s1/w1/ph"), "the select names tp only");
    feed(r, "water/s1/w1/tp", 0, 0.1, 0);               /* avg (5 x 1.0 + 0.1) / 6 = 0.85 */
    static const struct want w[] = { { 0, "avg", "w1", IW_ALERT_FIRING } };
    expect_alerts(r, w, 1);
    cr_expect_eq(iw_replay_alert(r, 0)->value, (5 * 1.0 + 0.1) / 6);
    iw_replay_free(r);
    iw_store_close(st);
    iw_config_free(cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

struct split_case {
    const char *name;
    bool ok;
    const char *source, *site, *device, *metric;
};

Test(replay, split_takes_exactly_four_non_empty_levels)
{
    static const struct split_case c[] = {
        { "water/dongtan/w01/nh3_n", true, "water", "dongtan", "w01", "nh3_n" },
        { "camera_event/s/c/tamper", true, "camera_event", "s", "c", "tamper" },
        { "water/dongtan/w01", false, NULL, NULL, NULL, NULL },
        { "water/dongtan/w01/nh3_n/x", false, NULL, NULL, NULL, NULL },
        { "water//w01/nh3_n", false, NULL, NULL, NULL, NULL },
        { "water/dongtan/w01/", false, NULL, NULL, NULL, NULL },
        { "", false, NULL, NULL, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char buf[64];
        struct iw_rsample s = { 0 };
        int rc = iw_replay_split(c[i].name, buf, sizeof(buf), &s);
        cr_expect_eq(rc == IW_OK, c[i].ok, "\"%s\": rc %d", c[i].name, rc);
        if (rc != IW_OK || !c[i].ok)
            continue;
        cr_expect_str_eq(s.source, c[i].source);
        cr_expect_str_eq(s.site, c[i].site);
        cr_expect_str_eq(s.device, c[i].device);
        cr_expect_str_eq(s.metric, c[i].metric);
    }
    char tiny[8];
    struct iw_rsample s;
    cr_expect_eq(iw_replay_split("water/dongtan/w01/nh3_n", tiny, sizeof(tiny), &s), IW_E_INVAL,
                 "a name longer than the buffer");
}

Test(replay, wants_what_a_select_matches_but_no_derived_series)
{
    struct iw_config *cfg = load(NH3);
    struct iw_replay *r = replay(cfg, NULL, 0, false, NULL);
    static const struct { const char *series; bool want; } c[] = {
        { "water/s1/w1/nh3_n", true },          /* nh3 (4 levels) and cls (3 levels) */
        { "water/s1/w1/ph", true },             /* cls takes every metric of the device */
        { "water/s1/w1/class", false },         /* written by cls itself */
        { "camera/s1/c1/online", true },
        { "air/s1/a1/pm25", false },            /* no rule selects air */
        { "air/s1/a1/aqi", false },
        { "not-a-series", false },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        cr_expect_eq(iw_replay_wants(r, c[i].series), c[i].want, "%s", c[i].series);
    cr_expect(iw_replay_is_event_source(cfg, "camera_event"), "a default source with format: event");
    cr_expect_not(iw_replay_is_event_source(cfg, "water"));
    iw_replay_free(r);
    iw_config_free(cfg);
}
