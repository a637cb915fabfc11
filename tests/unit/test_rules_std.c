/* SPDX-License-Identifier: Apache-2.0 */
/*
 * water_quality and air_quality end to end through the engine: a day (or two)
 * of minute samples of a station, the class/AQI series written, the alert
 * sequence with exact transition times, validity gaps, close_after, restart
 * with windows refilled from history.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "islewatch/standards.h"
#include "unit/rules_fixture.h"

static struct fx_env env;
static struct fx_cfg cfg;

static void setup(void)
{
    memset(&env, 0, sizeof(env));
    fx_cfg_init(&cfg);
}

static void teardown(void)
{
    fx_env_fini(&env);
}

TestSuite(std, .init = setup, .fini = teardown, .timeout = 60);

static struct iw_rules_engine *engine(int64_t now)
{
    struct iw_rules_env e = fx_env_of(&env);
    struct iw_rules_engine *eng = NULL;
    cr_assert_eq(iw_rules_engine_new(&cfg.cfg, &e, now, &eng), IW_OK);
    return eng;
}

/* One message: every metric at ts, received at recv; kept as history for read_points. */
static void feed_msg_recv(struct iw_rules_engine *e, const char *src, const char *site,
                          const char *dev, const char *const *metrics, const double *values,
                          size_t n, int64_t ts, char flag, int64_t recv)
{
    struct iw_rsample s[32];
    char series[128];

    for (size_t i = 0; i < n; i++) {
        s[i] = fx_sample(src, site, dev, metrics[i], ts, values[i]);
        s[i].flag = flag;
        s[i].recv_ms = recv;
        snprintf(series, sizeof(series), "%s/%s/%s/%s", src, site, dev, metrics[i]);
        fx_history_add(&env, series, ts, values[i], flag);
    }
    iw_rules_on_samples(e, s, n);
}

/* Received as stamped: live. */
static void feed_msg(struct iw_rules_engine *e, const char *src, const char *site, const char *dev,
                     const char *const *metrics, const double *values, size_t n, int64_t ts,
                     char flag)
{
    feed_msg_recv(e, src, site, dev, metrics, values, n, ts, flag, ts);
}

static const struct fx_point *point_at(const char *series, int64_t ts)
{
    const struct fx_point *found = NULL;
    for (size_t i = 0; i < env.n_points; i++)
        if (strcmp(env.points[i].series, series) == 0 && env.points[i].ts == ts)
            found = &env.points[i];
    return found;
}

static size_t count_points(const char *series)
{
    size_t n = 0;
    for (size_t i = 0; i < env.n_points; i++)
        n += strcmp(env.points[i].series, series) == 0;
    return n;
}

/* ==========================================================================
 * water_quality
 * ======================================================================== */

static const char *const wmetrics[] = { "ph", "do", "codmn", "nh3_n", "tp", "temp" };

/* NH3-N 0.4 mg/L, 2.5 in (6 h, 12 h], 0.4 again: the 4 h mean crosses every class. */
static double nh3_at(int m)
{
    return m > 360 && m <= 720 ? 2.5 : 0.4;
}

static void feed_water_minute(struct iw_rules_engine *e, int m)
{
    double v[] = { 7.5, 6.5, 3.0, nh3_at(m), 0.1, 14.2 };
    feed_msg(e, "water", "dongtan", "w01", wmetrics, v, 6, T0 + m * MINUTE, 0);
}

static struct iw_rule *water_rule(void)
{
    struct iw_rule *r = fx_rule(&cfg, "water-class", IW_RULE_WATER_QUALITY, "water/*/*");
    r->p.target = 3;
    return r;
}

struct expect {
    int64_t ts;
    enum iw_alert_reason reason;
    enum iw_severity sev;
};

static void check_water_sequence(size_t first)
{
    static const struct expect ex[] = {
        { T0 + 6 * HOUR + 69 * MINUTE, IW_ALERT_FIRE, IW_SEV_MAJOR },        /* mean 1.00375: IV */
        { T0 + 6 * HOUR + 183 * MINUTE, IW_ALERT_ESCALATE, IW_SEV_CRITICAL }, /* > 2.0: 劣V */
        { T0 + 12 * HOUR + 58 * MINUTE, IW_ALERT_ESCALATE, IW_SEV_MAJOR },    /* back to V */
        { T0 + 12 * HOUR + 172 * MINUTE, IW_ALERT_RESOLVE, IW_SEV_MAJOR },    /* <= 1.0: III */
    };
    cr_assert_eq(env.n_alerts - first, IW_ARRAY_LEN(ex), "alerts: %zu", env.n_alerts - first);
    for (size_t i = 0; i < IW_ARRAY_LEN(ex); i++) {
        const struct iw_alert *a = env.alerts[first + i];
        cr_assert_eq(a->ts, ex[i].ts, "alert %zu at %+lld min off", i,
                     (long long)((a->ts - ex[i].ts) / MINUTE));
        cr_assert_eq(a->reason, ex[i].reason, "alert %zu reason", i);
        cr_assert_eq(a->severity, ex[i].sev, "alert %zu severity", i);
        cr_assert_str_eq(a->id, env.alerts[first]->id);
        cr_assert_eq(a->started_at, ex[0].ts);
    }
}

Test(std, water_day_of_minute_samples)
{
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    water_rule();
    e = engine(T0);
    for (int m = 1; m <= 1440; m++)
        feed_water_minute(e, m);
    check_water_sequence(0);

    a = env.alerts[0];
    cr_assert_eq(a->kind, IW_RULE_WATER_QUALITY);
    cr_assert_str_eq(a->metric, "nh3_n");
    cr_assert_str_eq(a->unit, "mg/L");
    cr_assert_float_eq(a->value, 240.9 / 240, 1e-12);
    cr_assert_eq(a->threshold, 1.0, "the class III limit of NH3-N");
    cr_assert_str_eq(a->message, "dongtan/w01 is Class IV (target III): NH3-N 1.00375 mg/L");
    cr_assert_not_null(strstr(a->details, "\"worse_than_target\":[{\"metric\":\"nh3_n\""), "%s", a->details);
    cr_assert_not_null(strstr(a->details, "\"multiple\":0.00375"), "%s", a->details);
    cr_assert_not_null(strstr(a->details, "\"do\":{\"mean\":6.5,\"n\":240,\"class\":\"II\""), "%s", a->details);
    cr_assert_not_null(strstr(a->details, "\"temp\":{"), "temperature is reported: %s", a->details);
    cr_assert_str_eq(env.alerts[1]->message, "dongtan/w01 is Class 劣V (target III): NH3-N 2.00125 mg/L");
    cr_assert_str_eq(env.alerts[3]->message, "dongtan/w01 is Class III (target III)");

    cr_assert_eq(count_points("water/dongtan/w01/class"), 1440, "one class point per message");
    cr_assert_eq(point_at("water/dongtan/w01/class", T0 + 5 * HOUR)->v, 2, "NH3-N 0.4 is II");
    cr_assert_eq(point_at("water/dongtan/w01/class", T0 + 6 * HOUR + 69 * MINUTE)->v, 4);
    cr_assert_eq(point_at("water/dongtan/w01/class", T0 + 12 * HOUR)->v, 6);
    cr_assert_eq(point_at("water/dongtan/w01/class", T0 + 24 * HOUR)->v, 2);
    iw_rules_engine_free(e);
}

Test(std, water_restart_refills_the_window_from_history)
{
    struct iw_rules_engine *e;

    water_rule();
    e = engine(T0);
    for (int m = 1; m <= 9 * 60; m++)
        feed_water_minute(e, m);
    cr_assert_eq(env.n_alerts, 1, "firing before the restart");
    e = fx_restart(e, &env, &cfg.cfg, T0 + 9 * HOUR + 30 * SEC);
    for (int m = 9 * 60 + 1; m <= 1440; m++)
        feed_water_minute(e, m);
    /* Same transitions as without the restart: the window came back whole. */
    cr_assert_eq(env.n_alerts, 4);
    check_water_sequence(0);
    iw_rules_engine_free(e);
}

Test(std, water_flagged_samples_are_left_out)
{
    struct iw_rules_engine *e;

    water_rule();
    e = engine(T0);
    for (int m = 1; m <= 600; m++) {
        double ok[] = { 7.5, 6.5, 0.4 }, bad[] = { 50 };
        static const char *const okm[] = { "ph", "do", "nh3_n" }, *const badm[] = { "nh3_n" };
        if (m % 10 == 0)
            feed_msg(e, "water", "s1", "w02", badm, bad, 1, T0 + m * MINUTE, 'D');
        else
            feed_msg(e, "water", "s1", "w02", okm, ok, 3, T0 + m * MINUTE, 0);
    }
    cr_assert_eq(env.n_alerts, 0, "a fault-flagged 50 mg/L never counts");
    cr_assert_eq(point_at("water/s1/w02/class", T0 + 599 * MINUTE)->v, 2);
    iw_rules_engine_free(e);
}

Test(std, water_target_and_body_from_the_inventory)
{
    struct iw_rules_engine *e;
    struct iw_device_cfg *d = fx_device(&cfg, "water", "lake1", "w03");
    static const char *const m[] = { "nh3_n", "tp", "tn" };
    double v[] = { 0.4, 0.04, 1.8 };

    d->target = 2;
    d->body = IW_BODY_LAKE;
    fx_rule(&cfg, "water-class", IW_RULE_WATER_QUALITY, "water/*/*");     /* target 0: inventory */
    fx_device(&cfg, "water", "river1", "w04")->target = 2;
    e = engine(T0);
    feed_msg(e, "water", "lake1", "w03", m, v, 3, T0, 0);
    feed_msg(e, "water", "river1", "w04", m, v, 3, T0, 0);
    cr_assert_eq(env.n_alerts, 1, "TP 0.04 is III in a lake, II in a river; TN 1.8 decides only in lakes");
    cr_assert_str_eq(fx_last(&env)->device, "w03");
    cr_assert_str_eq(fx_last(&env)->metric, "tn", "TN 1.8 is V in a lake, the worst");
    cr_assert_eq(fx_last(&env)->severity, IW_SEV_MAJOR);
    cr_assert_eq(point_at("water/river1/w04/class", T0)->v, 2);
    iw_rules_engine_free(e);
}

/*
 * SPEC §1: the inventory's target "feeds" water_quality rules. A rule's own
 * target is its default for stations the inventory gives none (the default
 * config's rule says III, and an inventory target of II used to be ignored);
 * a sites: override that names a target is explicit and beats both.
 */
Test(std, inventory_target_beats_the_rules_default_but_not_a_site_override)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "water-class", IW_RULE_WATER_QUALITY, "water/*/*");
    static struct iw_rule_site site = { .site = "s9" };
    static const char *const m[] = { "nh3_n" };
    double v[] = { 0.8 };                           /* Class III */

    r->p.target = 3;
    site.p = r->p;
    site.p.target = 4;
    site.p.site_target = true;
    r->sites = &site;
    r->n_sites = 1;
    fx_device(&cfg, "water", "s1", "w01")->target = 2;   /* inventory: II */
    fx_device(&cfg, "water", "s9", "w01")->target = 2;   /* inventory II, site override IV */
    e = engine(T0);
    feed_msg(e, "water", "s1", "w01", m, v, 1, T0, 0);
    feed_msg(e, "water", "s2", "w01", m, v, 1, T0, 0);  /* not declared: the rule's III */
    feed_msg(e, "water", "s9", "w01", m, v, 1, T0, 0);
    cr_assert_eq(env.n_alerts, 1, "only s1/w01 misses its target");
    cr_assert_str_eq(fx_last(&env)->site, "s1");
    cr_assert_str_eq(fx_last(&env)->message, "s1/w01 is Class III (target II): NH3-N 0.8 mg/L");
    iw_rules_engine_free(e);
}

/*
 * SPEC §5's example: NH3-N 2.31 mg/L at a target III station is 劣V,
 * critical, with "threshold": 2.0, the class V limit the value is past (the
 * one that made it critical). It used to carry the target's limit, 1.0.
 * Below the target but V or better, the threshold stays the target's limit.
 */
Test(std, water_worse_than_v_threshold_is_the_class_v_limit)
{
    struct iw_rules_engine *e;
    static const char *const m[] = { "nh3_n" };
    double v2 = 2.31, v1 = 1.2;

    water_rule();
    e = engine(T0);
    feed_msg(e, "water", "dongtan", "w01", m, &v2, 1, T0, 0);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    cr_assert_str_eq(fx_last(&env)->metric, "nh3_n");
    cr_assert_eq(fx_last(&env)->value, 2.31);
    cr_assert_eq(fx_last(&env)->threshold, 2.0, "threshold %g", fx_last(&env)->threshold);
    cr_assert_str_eq(fx_last(&env)->message, "dongtan/w01 is Class 劣V (target III): NH3-N 2.31 mg/L");
    cr_assert_not_null(strstr(fx_last(&env)->details, "\"multiple\":1.31"), "%s",
                       fx_last(&env)->details);

    feed_msg(e, "water", "chongming", "w01", m, &v1, 1, T0, 0);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->severity, IW_SEV_MAJOR);
    cr_assert_eq(fx_last(&env)->threshold, 1.0, "class IV: the target's limit");
    iw_rules_engine_free(e);
}

/* pH has a 6-9 range: a 劣V alert for it names the end of the range its mean is past. */
Test(std, water_ph_out_of_range_threshold_is_the_range_end)
{
    struct iw_rules_engine *e;
    static const char *const m[] = { "ph" };
    double hi = 9.5, lo = 5.5;

    water_rule()->message = "{metric_name} {value} {threshold}";
    e = engine(T0);
    feed_msg(e, "water", "dongtan", "w01", m, &hi, 1, T0, 0);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(fx_last(&env)->metric, "ph");
    cr_assert(fx_last(&env)->has_threshold, "a pH alert has a threshold");
    cr_assert_eq(fx_last(&env)->threshold, 9.0, "threshold %g", fx_last(&env)->threshold);
    cr_assert_str_eq(fx_last(&env)->message, "pH 9.5 9");
    cr_assert_not_null(strstr(fx_last(&env)->details, "{\"metric\":\"ph\",\"mean\":9.5,\"limit\":9}"),
                       "%s", fx_last(&env)->details);

    feed_msg(e, "water", "chongming", "w01", m, &lo, 1, T0, 0);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert(fx_last(&env)->has_threshold);
    cr_assert_eq(fx_last(&env)->threshold, 6.0, "threshold %g", fx_last(&env)->threshold);
    cr_assert_str_eq(fx_last(&env)->message, "pH 5.5 6");
    iw_rules_engine_free(e);
}

/*
 * SPEC §1: "rules evaluate on the sample's own time". Late water samples,
 * older than the time the station was last judged, are judged at their own
 * time (a replay of the store, as the other kinds' are): the class points
 * there are written, and what they raise or resolve is published late.
 */
static const char *const dn[] = { "do", "nh3_n" };

static void feed_dn(struct iw_rules_engine *e, int64_t ts, double nh3, int64_t recv)
{
    double v[] = { 6.5, nh3 };
    feed_msg_recv(e, "water", "s1", "w01", dn, v, 2, ts, 0, recv);
}

static double class_at(int64_t ts)
{
    const struct fx_point *p = point_at("water/s1/w01/class", ts);
    cr_assert_not_null(p, "no class point at %+lld h", (long long)((ts - T0) / HOUR));
    return p->v;
}

/* A late message 19 hours back into a device-level replay whose later spans
 * hold no point: qsort was handed NULL (UBSan aborted the daemon; fuzzing
 * audit's reproduction). */
Test(std, water_a_late_sample_with_empty_replay_spans_is_judged)
{
    static const char *const pd[] = { "ph", "do" }, *const np[] = { "nh3_n", "ph" };
    static const double v[] = { 7, 7 }, late[] = { 5, 7 };
    struct iw_rules_engine *e;

    water_rule();
    e = engine(T0);
    feed_msg(e, "water", "rq", "d1", pd, v, 2, T0, 0);
    feed_msg(e, "water", "rq", "d1", pd, v, 2, T0 + 20 * HOUR, 0);
    feed_msg_recv(e, "water", "rq", "d1", np, late, 2, T0 + HOUR, 0, T0 + 20 * HOUR + MINUTE);
    cr_assert_eq(env.n_alerts, 2, "the late 劣V hour: %zu alerts", env.n_alerts);
    cr_expect_eq(env.alerts[0]->ts, T0 + HOUR);
    cr_expect(env.alerts[0]->late);
    iw_rules_engine_free(e);
}

Test(std, water_a_late_sample_older_than_the_window_is_judged_at_its_own_time)
{
    struct iw_rules_engine *e;

    water_rule();
    e = engine(T0);
    feed_dn(e, T0 + 5 * HOUR, 0.4, T0 + 5 * HOUR);
    cr_assert_eq(env.n_alerts, 0);
    feed_dn(e, T0 + HOUR, 3.0, T0 + 5 * HOUR + MINUTE);   /* 4 h older, out of the live window */
    cr_assert_eq(env.n_alerts, 2, "the late 劣V hour raised no late episode: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->reason, IW_ALERT_FIRE);
    cr_expect_eq(env.alerts[0]->ts, T0 + HOUR);
    cr_expect_eq(env.alerts[0]->severity, IW_SEV_CRITICAL);
    cr_expect(env.alerts[0]->late);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, T0 + 5 * HOUR, "resolved by the next judgement, 5h");
    cr_expect(env.alerts[1]->late);
    cr_expect_eq(class_at(T0 + HOUR), 6);
    cr_expect_eq(class_at(T0 + 5 * HOUR), 2);
    iw_rules_engine_free(e);
}

/* An outage's backlog uploaded after the live data resumed: the class series
 * of the outage and of the live hours whose window it reaches is rewritten,
 * the backlog's first message raises its late episode (to the first clearing
 * judgement stored then, the documented limit of rule_late.c), and the live
 * instance judges its latest time again with the backlog in its window. */
Test(std, water_a_backlog_after_newer_data_rewrites_the_class_series)
{
    struct iw_rules_engine *e;
    int64_t recv = T0 + 9 * HOUR + MINUTE;

    water_rule();
    e = engine(T0);
    for (int h = 1; h <= 9; h++)
        if (h < 4 || h > 7)
            feed_dn(e, T0 + h * HOUR, 0.4, T0 + h * HOUR);
    cr_assert_eq(env.n_alerts, 0);
    for (int h = 4; h <= 7; h++)
        feed_dn(e, T0 + h * HOUR, 3.0, recv);
    /* Means over (t-4h, t]: 4h 1.05 IV, 5h 1.7 V, 6h..8h 劣V, 9h 1.7 V. */
    static const double want[] = { 4, 5, 6, 6, 6, 5 };
    for (int h = 4; h <= 9; h++)
        cr_expect_eq(class_at(T0 + h * HOUR), want[h - 4], "class at %dh", h);
    cr_assert_eq(env.n_alerts, 3, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->reason, IW_ALERT_FIRE);
    cr_expect_eq(env.alerts[0]->ts, T0 + 4 * HOUR);
    cr_expect(env.alerts[0]->late);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, T0 + 8 * HOUR, "the live 8h judgement cleared it then");
    cr_expect(env.alerts[1]->late);
    cr_expect_eq(env.alerts[2]->reason, IW_ALERT_FIRE, "9h judged again with 6h and 7h");
    cr_expect_eq(env.alerts[2]->ts, T0 + 9 * HOUR);
    cr_expect_eq(env.alerts[2]->severity, IW_SEV_MAJOR);
    cr_expect(!env.alerts[2]->late);
    iw_rules_engine_free(e);
}

/* A late sample inside the episode the station is firing for: nothing late is
 * published for it, its class point is written, and the live judgement of the
 * latest time, with it in the window, moves the alert's severity. */
Test(std, water_a_late_sample_inside_a_firing_episode_moves_its_severity)
{
    struct iw_rules_engine *e;

    water_rule();
    e = engine(T0);
    feed_dn(e, T0, 2.1, T0);
    feed_dn(e, T0 + 3 * HOUR, 2.1, T0 + 3 * HOUR);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(env.alerts[0]->severity, IW_SEV_CRITICAL);
    feed_dn(e, T0 + 2 * HOUR, 0.1, T0 + 3 * HOUR + MINUTE);
    cr_expect_eq(class_at(T0 + 2 * HOUR), 4, "mean 1.1 at 2h");
    cr_expect_eq(class_at(T0 + 3 * HOUR), 4, "mean 1.43 at 3h");
    cr_assert_eq(env.n_alerts, 2);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_ESCALATE);
    cr_expect_eq(env.alerts[1]->severity, IW_SEV_MAJOR);
    cr_expect_eq(env.alerts[1]->ts, T0 + 3 * HOUR);
    cr_expect_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * air_quality
 * ======================================================================== */

static const char *const pols[] = { "so2", "no2", "co", "o3", "pm10", "pm25" };

static int64_t day0(void)
{
    int64_t t;
    cr_assert_eq(iw_rfc3339_parse("2026-06-01T00:00:00+08:00", 25, &t), IW_OK);
    return t;
}

static void feed_air_minute(struct iw_rules_engine *e, const char *dev, int64_t ts, double pm25)
{
    double v[] = { 5, 10, 0.3, 20, 20, pm25 };
    feed_msg(e, "air", "s1", dev, pols, v, 6, ts, 0);
}

/* PM2.5 by hour of the day: 30, 100 in hours 9-12, 160 in 13-14, 30; hour 15 half empty. */
static double pm25_hourly_day(int m, bool *skip)
{
    int h = (m - 1) / 60 + 1;                /* the hour label (end) of minute m */
    *skip = h == 15 && m > 870;
    return h >= 9 && h <= 12 ? 100 : h >= 13 && h <= 14 ? 160 : 30;
}

static struct iw_rule *air_rule(void)
{
    struct iw_rule *r = fx_rule(&cfg, "aqi", IW_RULE_AIR_QUALITY, "air/*/*");
    r->message = "{site}/{device} AQI {aqi} {level_zh} {primary_zh}";
    return r;
}

static void check_air_day(int64_t d0, size_t first)
{
    static const struct { int h; enum iw_alert_reason reason; enum iw_severity sev; double aqi; } ex[] = {
        { 9, IW_ALERT_FIRE, IW_SEV_WARNING, 137 },       /* PM2.5 100: IAQI 137, level 3 */
        { 13, IW_ALERT_ESCALATE, IW_SEV_CRITICAL, 210 },  /* PM2.5 160: 210, level 5 */
        { 16, IW_ALERT_RESOLVE, IW_SEV_CRITICAL, 43 },    /* hour 15 invalid: no decision */
    };
    cr_assert_eq(env.n_alerts - first, IW_ARRAY_LEN(ex));
    for (size_t i = 0; i < IW_ARRAY_LEN(ex); i++) {
        const struct iw_alert *a = env.alerts[first + i];
        cr_assert_eq(a->ts, d0 + ex[i].h * HOUR, "alert %zu at hour %lld", i,
                     (long long)((a->ts - d0) / HOUR));
        cr_assert_eq(a->reason, ex[i].reason, "alert %zu", i);
        cr_assert_eq(a->severity, ex[i].sev, "alert %zu", i);
        cr_assert_eq(a->value, ex[i].aqi, "alert %zu AQI %g", i, a->value);
    }
}

Test(std, air_hourly_day_of_minute_samples)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 1440; m++) {
        bool skip;
        double pm = pm25_hourly_day(m, &skip);
        if (!skip)
            feed_air_minute(e, "a01", d0 + m * MINUTE, pm);
    }
    check_air_day(d0, 0);
    a = env.alerts[0];
    cr_assert_str_eq(a->metric, "aqi");
    cr_assert_eq(a->threshold, 101, "the lowest AQI of min_level 3");
    cr_assert_null(a->unit);
    cr_assert_str_eq(a->message, "s1/a01 AQI 137 轻度污染 首要污染物 PM2.5");
    cr_assert_not_null(strstr(a->details, "\"PM2.5_1h\":137"), "%s", a->details);
    cr_assert_not_null(strstr(a->details, "\"primary\":[\"PM2.5\"]"), "%s", a->details);
    cr_assert_not_null(strstr(a->details, "\"colour\":\"#FF7E00\""), "%s", a->details);
    cr_assert_not_null(strstr(a->details, "\"period_start\":\"2026-06-01T00:00:00.000Z\""), "%s",
                       a->details);
    /* The resolve at AQI 43: no primary pollutant at AQI <= 50 (HJ 633), and
     * the message says so instead of ending in a dangling label. */
    a = fx_last(&env);
    cr_assert_eq(a->status, IW_ALERT_RESOLVED);
    cr_assert_str_eq(a->message, "s1/a01 AQI 43 优 无首要污染物");
    cr_assert_not_null(strstr(a->details, "\"primary\":[]"), "%s", a->details);

    cr_assert_eq(count_points("air/s1/a01/aqi"), 24, "every hour, the invalid one marked so");
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 1 * HOUR)->v, 43);
    cr_assert(point_at("air/s1/a01/aqi", d0 + 1 * HOUR)->valid);
    cr_assert_not(point_at("air/s1/a01/aqi", d0 + 15 * HOUR)->valid);
    cr_assert_eq(point_at("air/s1/a01/aqi_level", d0 + 13 * HOUR)->v, 5);
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 24 * HOUR)->v, 43, "closed by its 24:00 sample");
    iw_rules_engine_free(e);
}

/* The evidence's hourly averages read as computed by hand: sixty minutes
 * of CO at 0.3 mg/m3 average 0.3, not 0.3000000000000004. */
Test(std, air_evidence_averages_are_free_of_binary_noise)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 60; m++)
        feed_air_minute(e, "a01", d0 + m * MINUTE, 100);
    cr_assert_eq(env.n_alerts, 1);
    cr_expect_not_null(strstr(env.alerts[0]->details, "\"CO_1h\":{\"value\":0.3,"), "%s",
                       env.alerts[0]->details);
    iw_rules_engine_free(e);
}

Test(std, air_restart_mid_hour_refills_from_history)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 10 * 60 + 30; m++) {
        bool skip;
        double pm = pm25_hourly_day(m, &skip);
        feed_air_minute(e, "a01", d0 + m * MINUTE, pm);
    }
    cr_assert_eq(env.n_alerts, 1);
    e = fx_restart(e, &env, &cfg.cfg, d0 + 10 * HOUR + 31 * MINUTE);
    for (int m = 10 * 60 + 31; m <= 1440; m++) {
        bool skip;
        double pm = pm25_hourly_day(m, &skip);
        if (!skip)
            feed_air_minute(e, "a01", d0 + m * MINUTE, pm);
    }
    check_air_day(d0, 0);
    cr_assert(point_at("air/s1/a01/aqi", d0 + 11 * HOUR)->valid, "the hour in progress kept its first half");
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 11 * HOUR)->v, 137);
    iw_rules_engine_free(e);
}

/* SPEC §1: a backlog never pages as if it were live. Its last hour, closed
 * by close_after with no later sample, was published with late false. */
Test(std, air_backlog_hour_closed_by_close_after_is_late)
{
    int64_t d0 = day0(), up = d0 + 4 * 24 * HOUR;       /* uploaded 4 days later */
    struct iw_rules_engine *e;
    double v[] = { 5, 10, 0.3, 20, 20, 100 };

    air_rule();
    e = engine(up);
    for (int m = 1; m <= 50; m++) {
        struct iw_rsample s[6];
        char series[64];
        for (size_t i = 0; i < 6; i++) {
            s[i] = fx_sample("air", "s1", "a01", pols[i], d0 + m * MINUTE, v[i]);
            s[i].recv_ms = up + m * 10;
            snprintf(series, sizeof(series), "air/s1/a01/%s", pols[i]);
            fx_history_add(&env, series, s[i].ts, v[i], 0);
        }
        iw_rules_on_samples(e, s, 6);
    }
    iw_rules_tick(e, up + 500 + 5 * MINUTE);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->ts, d0 + HOUR);
    cr_assert(fx_last(&env)->late, "a backlog's hour closed on the wall clock went out live");
    iw_rules_engine_free(e);
}

Test(std, air_hour_closed_by_close_after_on_the_wall_clock)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 50; m++)
        feed_air_minute(e, "a01", d0 + m * MINUTE, 100);
    cr_assert_eq(iw_rules_next_deadline(e), d0 + HOUR + 5 * MINUTE);
    iw_rules_tick(e, d0 + HOUR + 5 * MINUTE - 1);
    cr_assert_null(point_at("air/s1/a01/aqi", d0 + HOUR));
    iw_rules_tick(e, d0 + HOUR + 5 * MINUTE);
    cr_assert_not_null(point_at("air/s1/a01/aqi", d0 + HOUR), "50 minutes make a valid hour");
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->ts, d0 + HOUR, "the period end, not the tick time");
    cr_assert_not(fx_last(&env)->late);

    /* A late sample of the closed hour is judged in it (SPEC §1): the hour's
     * point is rewritten, and the episode firing for it publishes nothing. */
    feed_air_minute(e, "a01", d0 + 55 * MINUTE, 500);
    iw_rules_tick(e, d0 + HOUR + 5 * MINUTE + 1);   /* its upload paused long ago */
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + HOUR)->v, 144, "PM2.5 (50 × 100 + 500) / 51: %g",
                 point_at("air/s1/a01/aqi", d0 + HOUR)->v);
    iw_rules_engine_free(e);
}

Test(std, air_hourly_values_reported_on_the_hour)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 3; h++)
        feed_air_minute(e, "a02", d0 + h * HOUR, h == 2 ? 100 : 30);
    cr_assert_eq(count_points("air/s1/a02/aqi"), 3, "each hourly value closes its hour at once");
    cr_assert_eq(point_at("air/s1/a02/aqi", d0 + 2 * HOUR)->v, 137);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.alerts[0]->ts, d0 + 2 * HOUR);
    cr_assert_eq(env.alerts[1]->status, IW_ALERT_RESOLVED);
    iw_rules_engine_free(e);
}

/*
 * Minute samples that start exactly on the hour: the first one, at 00:00, is
 * the only sample of the hour (23:00, 00:00], one minute of data, so that hour
 * is invalid (SPEC §4: < 45 minutes) and raises nothing. It used to be taken
 * for an hourly reporter's value (a lone sample at the hour's end) and fired
 * at 00:00 on one minute of PM2.5. A lone first value that no minute samples
 * follow is still an hourly value, closed by close_after.
 */
Test(std, air_minute_samples_from_the_hour_make_no_one_minute_hour)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 0; m <= 60; m++)
        feed_air_minute(e, "a08", d0 + m * MINUTE, 100);
    cr_assert_not_null(point_at("air/s1/a08/aqi", d0));
    cr_assert_not(point_at("air/s1/a08/aqi", d0)->valid, "one minute of data is not an hour");
    /* Its value is what that minute indicates (flagged invalid), not 0 (优). */
    cr_assert_eq(point_at("air/s1/a08/aqi", d0)->v, 137, "%g", point_at("air/s1/a08/aqi", d0)->v);
    cr_assert_eq(point_at("air/s1/a08/aqi_level", d0)->v, 3);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(env.alerts[0]->ts, d0 + HOUR, "the first valid hour is (00:00, 01:00]");

    feed_air_minute(e, "a09", d0 + 2 * HOUR, 100);      /* a new station's first hourly value */
    iw_rules_tick(e, d0 + 2 * HOUR + 5 * MINUTE);
    cr_assert(point_at("air/s1/a09/aqi", d0 + 2 * HOUR)->valid);
    cr_assert_eq(point_at("air/s1/a09/aqi", d0 + 2 * HOUR)->v, 137);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->ts, d0 + 2 * HOUR);
    iw_rules_engine_free(e);
}

/* feed_air_minute's message, received at recv (an upload, or a test, of past hours). */
static void feed_air_recv(struct iw_rules_engine *e, const char *dev, int64_t ts, int64_t recv,
                          double pm25)
{
    double v[] = { 5, 10, 0.3, 20, 20, pm25 };
    feed_msg_recv(e, "air", "s1", dev, pols, v, 6, ts, 0, recv);
}

/* Late air samples wait until their upload pauses (rule_late.c): 10 s after
 * the last, received at recv, the engine's tick judges them. */
static void upload_paused(struct iw_rules_engine *e, int64_t recv)
{
    iw_rules_tick(e, recv + 10 * 1000);
}

/* The AQI point of the station's device dev at ts, which must be there. */
static const struct fx_point *aqi_at(const char *dev, int64_t ts)
{
    char series[64];
    const struct fx_point *p;

    snprintf(series, sizeof(series), "air/s1/%s/aqi", dev);
    p = point_at(series, ts);
    cr_assert_not_null(p, "no %s point at %+lld h", series, (long long)((ts - day0()) / HOUR));
    return p;
}

/* The first `minutes` minutes of the day's first hour at pm25, live; then
 * close_after closes it short: invalid, no alert. */
static struct iw_rules_engine *hour_closed_short(const char *dev, int minutes, double pm25)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= minutes; m++)
        feed_air_minute(e, dev, d0 + m * MINUTE, pm25);
    iw_rules_tick(e, d0 + HOUR + 5 * MINUTE);
    cr_assert_not(aqi_at(dev, d0 + HOUR)->valid, "%d minutes are not an hour", minutes);
    cr_assert_eq(env.n_alerts, 0);
    return e;
}

/*
 * A minute station silent after 03:00 sends one reading stamped 04:00 and
 * nothing more: the hour (03:00, 04:00] holds one minute, invalid (SPEC §4:
 * < 45 minutes). It used to count as an hourly reporter's value, closed by
 * close_after, valid, and fired on PM2.5 200 (audit). The reading is the
 * hour's last minute, so it closes the hour at once. The same lone reading
 * completed a day of 19 valid hours in daily mode.
 */
Test(std, air_a_minute_station_back_for_one_reading_on_the_hour_has_one_minute)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 3 * 60; m++)
        feed_air_minute(e, "a24", d0 + m * MINUTE, 10);
    feed_air_minute(e, "a24", d0 + 4 * HOUR, 200);
    cr_assert_not_null(point_at("air/s1/a24/aqi", d0 + 4 * HOUR),
                       "the hour's last minute closes it (SPEC §4: a sample at its end)");
    iw_rules_tick(e, d0 + 4 * HOUR + 10 * MINUTE);
    cr_assert_not(aqi_at("a24", d0 + 4 * HOUR)->valid, "one minute is not an hour");
    cr_assert_eq(env.n_alerts, 0);
    iw_rules_engine_free(e);
}

/*
 * A live hour closed by close_after is live, even when close_after (20m) is
 * longer than alerts.live_window (15m): its alert used to be published with
 * "late": true, which marks a backlog after an outage (SPEC §1; audit). The
 * hour's data decide: its last sample came before the hour's end.
 */
Test(std, air_a_live_hour_closed_after_the_live_window_is_not_late)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.close_after_ms = 20 * MINUTE;
    e = engine(d0);
    for (int m = 1; m <= 59; m++)
        feed_air_minute(e, "a26", d0 + m * MINUTE, 80);     /* IAQI 107, level 3 */
    iw_rules_tick(e, d0 + HOUR + 20 * MINUTE);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(env.alerts[0]->ts, d0 + HOUR);
    cr_assert_not(env.alerts[0]->late, "live data, closed by close_after: not a backlog");
    iw_rules_engine_free(e);
}

Test(std, air_daily_a_lone_reading_at_midnight_does_not_complete_a_day_of_19_hours)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int m = 1; m <= 19 * 60; m++)
        feed_air_minute(e, "a25", d0 + m * MINUTE, 80);
    feed_air_minute(e, "a25", d0 + 24 * HOUR, 80);
    iw_rules_tick(e, d0 + 24 * HOUR + 10 * MINUTE);
    const struct fx_point *pt = point_at("air/s1/a25/aqi", d0 + 24 * HOUR);
    cr_assert_not_null(pt);
    cr_assert_not(pt->valid, "19 valid hours and one minute are not 20 hours");
    cr_assert_eq(env.n_alerts, 0);
    iw_rules_engine_free(e);
}

/*
 * SPEC §4: an hour closes when the device reports a sample at or after its
 * end, or close_after (5 min) after its end. A past hour's last sample waited
 * close_after after it arrived, too, so that an upload is not cut short: one
 * hourly value published for a past hour, a new station's first (which waits
 * in case minute samples follow it: the test above), or a past hour without
 * its end sample, closed 5 minutes after it came. It now waits 10 s for the
 * rest of an upload; a live hour still closes close_after after its end.
 */
Test(std, air_a_past_hour_closes_seconds_after_its_last_sample_came)
{
    int64_t d0 = day0(), got = d0 + 2 * HOUR + 10 * MINUTE;
    struct iw_rules_engine *e;

    air_rule();
    e = engine(got);
    feed_air_recv(e, "a10", d0 + 2 * HOUR, got, 100);
    iw_rules_tick(e, got + 9000);
    cr_assert_null(point_at("air/s1/a10/aqi", d0 + 2 * HOUR), "closed while an upload may go on");
    iw_rules_tick(e, got + 10000);
    cr_assert_not_null(point_at("air/s1/a10/aqi", d0 + 2 * HOUR), "still open 10 s after it came");
    cr_assert(point_at("air/s1/a10/aqi", d0 + 2 * HOUR)->valid);
    cr_assert_eq(point_at("air/s1/a10/aqi", d0 + 2 * HOUR)->v, 137);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->ts, d0 + 2 * HOUR);

    /* A minute backlog that starts on the hour: its next sample comes at once. */
    feed_air_recv(e, "a11", d0 + 2 * HOUR, got, 100);
    feed_air_recv(e, "a11", d0 + 2 * HOUR + MINUTE, got + 10, 100);
    cr_assert_not(point_at("air/s1/a11/aqi", d0 + 2 * HOUR)->valid, "one minute of data is not an hour");

    /* A past hour of minute samples without its end one: 10 s after the last. */
    for (int m = 1; m <= 50; m++)
        feed_air_recv(e, "a13", d0 + HOUR + m * MINUTE, got + m * 10, 100);
    iw_rules_tick(e, got + 500 + 9000);
    cr_assert_null(point_at("air/s1/a13/aqi", d0 + 2 * HOUR), "closed while an upload may go on");
    iw_rules_tick(e, got + 500 + 10000);
    cr_assert(point_at("air/s1/a13/aqi", d0 + 2 * HOUR)->valid, "50 minutes make an hour");

    /* Live: close_after after the hour's end. */
    int64_t live = d0 + 3 * HOUR + 5000;
    feed_air_recv(e, "a12", d0 + 3 * HOUR, live, 100);
    iw_rules_tick(e, live + 10000);
    cr_assert_null(point_at("air/s1/a12/aqi", d0 + 3 * HOUR), "a live first value did not wait");
    iw_rules_tick(e, d0 + 3 * HOUR + 5 * MINUTE);
    cr_assert(point_at("air/s1/a12/aqi", d0 + 3 * HOUR)->valid);
    iw_rules_engine_free(e);
}

/*
 * Late samples are judged on their own time (SPEC §1), as for the other
 * kinds (rule_late.c): an outage's backlog uploaded after the live data
 * resumed gets its hours' AQI points and raises its late episode once,
 * resolved by the first live hour that clears it. These hours used to be
 * dropped as out of order: no point, no alert.
 */
Test(std, air_a_backlog_after_newer_data_is_judged_at_its_own_time)
{
    int64_t d0 = day0(), up = d0 + 7 * HOUR + 10 * MINUTE;
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 7; h++)
        if (h < 4 || h > 5)
            feed_air_recv(e, "a30", d0 + h * HOUR, d0 + h * HOUR, 30);
    cr_assert_eq(env.n_alerts, 0);
    feed_air_recv(e, "a30", d0 + 4 * HOUR, up, 160);
    feed_air_recv(e, "a30", d0 + 5 * HOUR, up + 10, 160);
    iw_rules_tick(e, up + 9999);
    cr_assert_eq(env.n_alerts, 0, "judged before the upload paused");
    upload_paused(e, up + 10);
    for (int h = 4; h <= 5; h++) {
        cr_expect(aqi_at("a30", d0 + h * HOUR)->valid);
        cr_expect_eq(aqi_at("a30", d0 + h * HOUR)->v, 210);
    }
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->reason, IW_ALERT_FIRE);
    cr_expect_eq(env.alerts[0]->ts, d0 + 4 * HOUR);
    cr_expect_eq(env.alerts[0]->severity, IW_SEV_CRITICAL);
    cr_expect(env.alerts[0]->late);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, d0 + 6 * HOUR, "the live hour 6 cleared it");
    cr_expect(env.alerts[1]->late);
    cr_expect_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* A corrected value inside the episode firing live: no second episode; the
 * hour's point is rewritten and the episode's severity follows it. */
Test(std, air_a_late_correction_inside_a_firing_episode_moves_its_severity)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 3; h++)
        feed_air_recv(e, "a35", d0 + h * HOUR, d0 + h * HOUR, h == 1 ? 30 : 100);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(env.alerts[0]->severity, IW_SEV_WARNING);
    feed_air_recv(e, "a35", d0 + 3 * HOUR, d0 + 3 * HOUR + 20 * MINUTE, 160);   /* hour 3 again */
    upload_paused(e, d0 + 3 * HOUR + 20 * MINUTE);
    cr_expect_eq(aqi_at("a35", d0 + 3 * HOUR)->v, 210);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_ESCALATE);
    cr_expect_eq(env.alerts[1]->severity, IW_SEV_CRITICAL);
    cr_expect_eq(env.alerts[1]->ts, d0 + 3 * HOUR);
    cr_expect_eq(env.alerts[1]->value, 210, "the evidence is the corrected hour's");
    cr_expect_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    feed_air_recv(e, "a35", d0 + 4 * HOUR, d0 + 4 * HOUR, 30);
    cr_assert_eq(env.n_alerts, 3);
    cr_expect_eq(env.alerts[2]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[2]->ts, d0 + 4 * HOUR);
    iw_rules_engine_free(e);
}

/* After a restart, a backlog that comes before any live data is still late:
 * the restored state says which hours were closed. It used to become the
 * instance's timeline, with every hour up to the restored one silent. */
Test(std, air_a_backlog_first_after_a_restart_is_judged_late)
{
    int64_t d0 = day0(), up = d0 + 7 * HOUR + 10 * MINUTE;
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 7; h++)
        if (h < 4 || h > 5)
            feed_air_recv(e, "a36", d0 + h * HOUR, d0 + h * HOUR, 30);
    e = fx_restart(e, &env, &cfg.cfg, up - MINUTE);
    cr_assert_eq(env.n_alerts, 0);
    feed_air_recv(e, "a36", d0 + 4 * HOUR, up, 160);
    feed_air_recv(e, "a36", d0 + 5 * HOUR, up + 10, 160);
    upload_paused(e, up + 10);
    cr_expect_eq(aqi_at("a36", d0 + 4 * HOUR)->v, 210);
    cr_expect_eq(aqi_at("a36", d0 + 5 * HOUR)->v, 210);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->ts, d0 + 4 * HOUR);
    cr_expect(env.alerts[0]->late);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, d0 + 6 * HOUR);
    /* The live data go on from the restored hour. */
    feed_air_recv(e, "a36", d0 + 8 * HOUR, d0 + 8 * HOUR, 100);
    cr_assert_eq(env.n_alerts, 3);
    cr_expect_eq(env.alerts[2]->ts, d0 + 8 * HOUR);
    cr_expect_not(env.alerts[2]->late);
    iw_rules_engine_free(e);
}

/* A backlog re-sent a record at a time (a data logger, a second apart): it
 * is judged once the upload pauses, whole, so each bad hour is its own
 * episode, resolved by the backlog's own next hour. Judged message by
 * message, the first bad hour resolved only at the first live hour (the rest
 * of the outage was not stored yet) and the second fired inside it. */
Test(std, air_a_backlog_sent_a_record_at_a_time_is_judged_whole)
{
    int64_t d0 = day0(), up = d0 + 11 * HOUR + 10 * MINUTE;
    struct iw_rules_engine *e;
    static const double back[] = { 30, 160, 30, 30, 160, 30, 30, 30 };   /* hours 2..9 */
    static const struct { int h; enum iw_alert_reason reason; } want[] = {
        { 3, IW_ALERT_FIRE }, { 4, IW_ALERT_RESOLVE }, { 6, IW_ALERT_FIRE }, { 7, IW_ALERT_RESOLVE },
    };

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 11; h++)
        if (h == 1 || h >= 10)
            feed_air_recv(e, "a37", d0 + h * HOUR, d0 + h * HOUR, 30);
    for (int h = 2; h <= 9; h++)
        feed_air_recv(e, "a37", d0 + h * HOUR, up + (h - 2) * 1000, back[h - 2]);
    upload_paused(e, up + 7 * 1000);
    cr_assert_eq(env.n_alerts, 4, "alerts: %zu", env.n_alerts);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(env.alerts[i]->reason, want[i].reason, "alert %zu", i);
        cr_expect_eq(env.alerts[i]->ts, d0 + want[i].h * HOUR, "alert %zu at %+lld h", i,
                     (long long)((env.alerts[i]->ts - d0) / HOUR));
        cr_expect(env.alerts[i]->late, "alert %zu", i);
    }
    iw_rules_engine_free(e);
}

/* An hourly value of a backlog, redelivered ten minutes later: nothing new
 * (SPEC §2, the same point again). It published its episode a second time. */
Test(std, air_a_redelivered_late_hour_publishes_nothing_more)
{
    int64_t d0 = day0(), up = d0 + 4 * HOUR + 10 * MINUTE;
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 4; h++)
        if (h != 2)
            feed_air_recv(e, "a39", d0 + h * HOUR, d0 + h * HOUR, 30);
    feed_air_recv(e, "a39", d0 + 2 * HOUR, up, 160);
    upload_paused(e, up);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    feed_air_recv(e, "a39", d0 + 2 * HOUR, up + 10 * MINUTE, 160);
    upload_paused(e, up + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2, "published again: %zu alerts", env.n_alerts);
    iw_rules_engine_free(e);
}

/* The rest of an hour that close_after closed short (44 minutes, invalid),
 * re-sent a minute a second: judged on the whole hour (PM2.5 51.3, AQI 82,
 * level 2), not on its first 45 minutes (68.4, AQI 108, level 3), which
 * fired, and a firing is never withdrawn. */
Test(std, air_the_rest_of_an_hour_sent_a_minute_at_a_time_is_judged_whole)
{
    int64_t d0 = day0(), up = d0 + HOUR + 10 * MINUTE;
    struct iw_rules_engine *e = hour_closed_short("a38", 44, 70);

    for (int m = 45; m <= 60; m++)
        feed_air_recv(e, "a38", d0 + m * MINUTE, up + (m - 45) * 1000, 0);
    upload_paused(e, up + 15 * 1000);
    cr_assert(aqi_at("a38", d0 + HOUR)->valid);
    cr_assert_eq(aqi_at("a38", d0 + HOUR)->v, 82, "%g", aqi_at("a38", d0 + HOUR)->v);
    cr_assert_eq(env.n_alerts, 0, "fired on part of the hour: %g",
                 env.n_alerts ? env.alerts[0]->value : 0);
    iw_rules_engine_free(e);
}

/* Minutes that come after close_after closed their hour short (40 minutes,
 * invalid) complete it: the hour is valid and fires, and the live instance
 * takes that episode over, so that the next live hour resolves it. */
Test(std, air_minutes_after_close_after_complete_their_hour)
{
    int64_t d0 = day0(), up = d0 + HOUR + 6 * MINUTE;
    struct iw_rules_engine *e = hour_closed_short("a31", 40, 100);

    for (int m = 41; m <= 60; m++)
        feed_air_recv(e, "a31", d0 + m * MINUTE, up + m * 10, 100);
    upload_paused(e, up + 600);
    cr_assert(aqi_at("a31", d0 + HOUR)->valid, "60 minutes are");
    cr_assert_eq(aqi_at("a31", d0 + HOUR)->v, 137);
    cr_assert_eq(env.n_alerts, 1, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->reason, IW_ALERT_FIRE);
    cr_expect_eq(env.alerts[0]->ts, d0 + HOUR);
    for (int m = 61; m <= 120; m++)
        feed_air_minute(e, "a31", d0 + m * MINUTE, 30);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, d0 + 2 * HOUR);
    cr_expect_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* An hour the station skipped, filled late while the next one is open: it is
 * closed and judged, and the live instance carries its episode on. */
Test(std, air_a_late_hour_before_the_open_one_is_judged_and_taken_over)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 3; h++)
        feed_air_recv(e, "a32", d0 + h * HOUR, d0 + h * HOUR, 30);
    for (int m = 1; m <= 20; m++)           /* hour 5 open; hour 4 skipped */
        feed_air_minute(e, "a32", d0 + 4 * HOUR + m * MINUTE, 30);
    cr_assert_eq(env.n_alerts, 0);
    feed_air_recv(e, "a32", d0 + 4 * HOUR, d0 + 4 * HOUR + 21 * MINUTE, 160);
    upload_paused(e, d0 + 4 * HOUR + 21 * MINUTE);
    cr_expect_eq(aqi_at("a32", d0 + 4 * HOUR)->v, 210);
    cr_assert_eq(env.n_alerts, 1, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->ts, d0 + 4 * HOUR);
    cr_expect(env.alerts[0]->late);
    for (int m = 21; m <= 60; m++)
        feed_air_minute(e, "a32", d0 + 4 * HOUR + m * MINUTE, 30);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, d0 + 5 * HOUR);
    cr_expect_not(env.alerts[1]->late);
    cr_expect_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* HJ 633-2012's moving means: hours filled late change the AQI of the 23
 * hours after them too, which are written again, and the live instance's
 * next hours are computed with them. */
Test(std, air_hj633_2012_late_hours_rewrite_the_moving_means_after_them)
{
    int64_t d0 = day0(), up = d0 + 45 * HOUR + MINUTE;
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();
    double before;

    r->p.standard = IW_AQI_HJ633_2012;
    e = engine(d0);
    for (int h = 1; h <= 45; h++)
        if (h < 30 || h > 31)
            feed_air_recv(e, "a33", d0 + h * HOUR, d0 + h * HOUR, 35);
    before = aqi_at("a33", d0 + 40 * HOUR)->v;
    cr_assert_eq(env.n_alerts, 0);
    feed_air_recv(e, "a33", d0 + 30 * HOUR, up, 900);
    feed_air_recv(e, "a33", d0 + 31 * HOUR, up + 10, 900);
    upload_paused(e, up + 10);
    /* PM2.5 24 h at 31h..45h: (22 × 35 + 2 × 900) / 24 = 107.08: ceil(140.1) = 141, level 3. */
    for (int h = 31; h <= 45; h++)
        cr_expect_eq(aqi_at("a33", d0 + h * HOUR)->v, 141, "%dh: %g", h,
                     aqi_at("a33", d0 + h * HOUR)->v);
    cr_expect_lt(before, 141);
    cr_assert_eq(env.n_alerts, 1, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->reason, IW_ALERT_FIRE);
    cr_expect_eq(env.alerts[0]->ts, d0 + 31 * HOUR);
    cr_expect(env.alerts[0]->late);
    /* The live hour 46 has hours 30 and 31 in its moving mean: still level 3. */
    feed_air_recv(e, "a33", d0 + 46 * HOUR, d0 + 46 * HOUR, 35);
    cr_expect_eq(aqi_at("a33", d0 + 46 * HOUR)->v, 141);
    cr_expect_eq(env.n_alerts, 1, "the live hour resolved the episode it took over");
    iw_rules_engine_free(e);
}

/* Daily mode: hours of a closed day filled late make it judged again; the
 * live instance carries the late episode on to the next day's judgement. */
Test(std, air_daily_late_hours_judge_their_day_again)
{
    int64_t d0 = day0(), up = d0 + 27 * HOUR + MINUTE;
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int h = 1; h <= 27; h++)
        if (h < 10 || h > 13)
            feed_air_recv(e, "a34", d0 + h * HOUR, d0 + h * HOUR, 35);
    cr_assert_eq(aqi_at("a34", d0 + 24 * HOUR)->v, 50, "20 hours of 35");
    cr_assert_eq(env.n_alerts, 0);
    for (int h = 10; h <= 13; h++)
        feed_air_recv(e, "a34", d0 + h * HOUR, up + h, 300);
    upload_paused(e, up + 13);
    /* (20 × 35 + 4 × 300) / 24 = 79.2: ceil(100 + 50 × 19.2 / 55) = 118, level 3. */
    cr_assert_eq(aqi_at("a34", d0 + 24 * HOUR)->v, 118, "%g",
                 aqi_at("a34", d0 + 24 * HOUR)->v);
    cr_assert_eq(env.n_alerts, 1, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->ts, d0 + 24 * HOUR);
    cr_expect(env.alerts[0]->late);
    for (int h = 28; h <= 48; h++)
        feed_air_recv(e, "a34", d0 + h * HOUR, d0 + h * HOUR, 35);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_expect_eq(env.alerts[1]->ts, d0 + 48 * HOUR);
    cr_expect_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/*
 * A minute station whose PM2.5 analyser is flagged all hour but its last
 * minute: PM2.5 has one minute of data, an invalid hour (SPEC §4), though it
 * is a lone valid sample stamped at the hour's end. It used to count as an
 * hourly value and fire on one minute of PM2.5 200.
 */
Test(std, air_one_valid_minute_at_the_end_of_a_minute_hour_is_invalid)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 60; m++) {
        double v[] = { 5, 10, 0.3, 20, 20, 200 };
        struct iw_rsample s[6];
        for (size_t i = 0; i < 6; i++) {
            s[i] = fx_sample("air", "s1", "a10", pols[i], d0 + m * MINUTE, v[i]);
            s[i].flag = i == 5 && m < 60 ? 'D' : 0;
        }
        iw_rules_on_samples(e, s, 6);
    }
    cr_assert_not_null(point_at("air/s1/a10/aqi", d0 + HOUR), "closed by its 01:00 sample");
    cr_assert_not(point_at("air/s1/a10/aqi", d0 + HOUR)->valid, "PM2.5 missing, AQI <= 100: NA");
    cr_assert_eq(env.n_alerts, 0, "fired on one minute of PM2.5: %s",
                 env.n_alerts ? fx_last(&env)->message : "");
    iw_rules_engine_free(e);
}

Test(std, air_daily_mode_natural_days)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int m = 1; m <= 2 * 1440; m++)
        feed_air_minute(e, "a01", d0 + m * MINUTE, m <= 1440 ? 100 : 30);
    cr_assert_eq(count_points("air/s1/a01/aqi"), 2, "SPEC §4: the result series is .../aqi");
    cr_assert_eq(count_points("air/s1/a01/aqi_daily"), 0);
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 24 * HOUR)->v, 137);
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 48 * HOUR)->v, 43);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.alerts[0]->ts, d0 + 24 * HOUR);
    cr_assert_not_null(strstr(env.alerts[0]->details, "\"mode\":\"daily\""));
    cr_assert_not_null(strstr(env.alerts[0]->details, "\"PM2.5_24h\":137"), "%s", env.alerts[0]->details);
    cr_assert_eq(env.alerts[1]->status, IW_ALERT_RESOLVED);
    cr_assert_eq(env.alerts[1]->ts, d0 + 48 * HOUR);
    iw_rules_engine_free(e);
}

/* With an hourly rule on the same device, both would stamp a value at
 * midnight in one series: the daily AQI then goes to .../aqi_daily. */
Test(std, air_daily_beside_an_hourly_rule_writes_its_own_series)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *daily = air_rule();

    daily->p.mode = IW_AQI_DAILY;
    fx_rule(&cfg, "aqi-hourly", IW_RULE_AIR_QUALITY, "air/s1/*")->p.min_level = 6;
    e = engine(d0);
    for (int m = 1; m <= 1440; m++)
        feed_air_minute(e, "a01", d0 + m * MINUTE, 100);
    cr_assert_eq(count_points("air/s1/a01/aqi"), 24, "the hourly values");
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 24 * HOUR)->v, 137);
    cr_assert_eq(count_points("air/s1/a01/aqi_daily"), 1, "the daily value");
    cr_assert_eq(point_at("air/s1/a01/aqi_daily", d0 + 24 * HOUR)->v, 137);
    iw_rules_engine_free(e);
}

Test(std, air_hj633_2012_uses_24h_moving_pm)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.standard = IW_AQI_HJ633_2012;
    e = engine(d0);
    for (int m = 1; m <= 1440; m++)
        feed_air_minute(e, "a01", d0 + m * MINUTE, 100);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(env.alerts[0]->ts, d0 + 20 * HOUR, "the 24 h moving mean needs 20 valid hours");
    cr_assert_eq(env.alerts[0]->value, 132, "PM2.5 24 h 100 on the 2012 breakpoints");
    iw_rules_engine_free(e);
}

Test(std, air_day_closed_by_close_after)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int m = 1; m <= 1410; m++)         /* stops at 23:30 */
        feed_air_minute(e, "a01", d0 + m * MINUTE, 100);
    iw_rules_tick(e, d0 + 24 * HOUR + 5 * MINUTE - 1);
    cr_assert_eq(count_points("air/s1/a01/aqi"), 0);
    iw_rules_tick(e, d0 + 24 * HOUR + 5 * MINUTE);
    cr_assert_eq(count_points("air/s1/a01/aqi"), 1, "23 valid hours make a valid day");
    cr_assert_eq(point_at("air/s1/a01/aqi", d0 + 24 * HOUR)->v, 137);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_engine_free(e);
}

/* One hourly value of PM2.5 and PM10 (the station measures nothing else). */
static void feed_pm_hour(struct iw_rules_engine *e, const char *dev, int64_t end, double pm25)
{
    static const char *const m[] = { "pm10", "pm25" };
    double v[] = { 20, pm25 };
    feed_msg(e, "air", "s1", dev, m, v, 2, end, 0);
}

/* One hourly message (stamped at its hour's end) with a flag per pollutant. */
static void feed_hour_flagged(struct iw_rules_engine *e, int64_t end, double pm25, char pm_flag,
                              double o3)
{
    static const char *const m[] = { "pm10", "pm25", "o3" };
    const double v[] = { 20, pm25, o3 };
    struct iw_rsample s[3];
    char series[128];

    for (size_t i = 0; i < 3; i++) {
        s[i] = fx_sample("air", "s1", "a05", m[i], end, v[i]);
        s[i].flag = i == 1 ? pm_flag : 0;
        snprintf(series, sizeof(series), "air/s1/a05/%s", m[i]);
        fx_history_add(&env, series, end, v[i], s[i].flag);
    }
    iw_rules_on_samples(e, s, 3);
}

/*
 * SPEC §4: an average below the validity minimum "is not used to raise or
 * clear an alert". An hour whose PM2.5 is flagged leaves O3's AQI (120,
 * level 3, > 100 so not NA): a lower bound, which must not resolve the level
 * 4 alert that PM2.5 raised (it used to, and the next hour fired again).
 */
Test(std, air_incomplete_hour_neither_clears_nor_lowers)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.min_level = 4;
    r->p.clear_level = 4;
    e = engine(d0);
    feed_hour_flagged(e, d0 + 1 * HOUR, 140, 0, 240);      /* PM2.5 IAQI 186: level 4 */
    iw_rules_tick(e, d0 + 1 * HOUR + 5 * MINUTE);         /* a first lone value: close_after */
    cr_assert_eq(env.n_alerts, 1);
    feed_hour_flagged(e, d0 + 2 * HOUR, 140, 'D', 240);    /* O3 alone: 120, incomplete */
    cr_assert_eq(point_at("air/s1/a05/aqi", d0 + 2 * HOUR)->v, 120);
    cr_assert_eq(env.n_alerts, 1, "an incomplete hour resolved the alert: %s",
                 fx_last(&env)->message);
    feed_hour_flagged(e, d0 + 3 * HOUR, 140, 0, 240);
    cr_assert_eq(env.n_alerts, 1, "still the same episode");
    feed_hour_flagged(e, d0 + 4 * HOUR, 30, 0, 100);       /* complete and low: resolves */
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, d0 + 4 * HOUR);
    iw_rules_engine_free(e);
}

/*
 * SPEC §4: a station reports the subset it measures. Pollutants it never
 * reported are "/" in HJ 633-2026, not missing data: its AQI <= 100 is
 * published and clears the alert.
 */
Test(std, air_subset_station_resolves_below_clear_level)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    feed_pm_hour(e, "a03", d0 + 1 * HOUR, 30);          /* 43 */
    iw_rules_tick(e, d0 + 1 * HOUR + 5 * MINUTE);       /* a first lone value: close_after */
    cr_assert(point_at("air/s1/a03/aqi", d0 + 1 * HOUR)->valid, "PM-only AQI 43 is valid");
    feed_pm_hour(e, "a03", d0 + 2 * HOUR, 100);         /* 137: level 3 fires */
    cr_assert_eq(env.n_alerts, 1);
    for (int h = 3; h <= 5; h++)
        feed_pm_hour(e, "a03", d0 + h * HOUR, 30);
    for (int h = 3; h <= 5; h++) {
        const struct fx_point *pt = point_at("air/s1/a03/aqi", d0 + h * HOUR);
        cr_assert_not_null(pt);
        cr_assert(pt->valid, "hour %d", h);
        cr_assert_eq(pt->v, 43, "hour %d", h);
    }
    cr_assert_eq(env.n_alerts, 2, "the first hour back at level 1 resolves");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, d0 + 3 * HOUR);
    cr_assert_not_null(strstr(fx_last(&env)->details, "\"complete\":true"), "%s",
                       fx_last(&env)->details);
    iw_rules_engine_free(e);
}

Test(std, air_subset_station_daily_resolves)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int h = 1; h <= 48; h++)
        feed_pm_hour(e, "a03", d0 + h * HOUR, h <= 24 ? 100 : 30);
    cr_assert_eq(point_at("air/s1/a03/aqi", d0 + 24 * HOUR)->v, 137);
    cr_assert(point_at("air/s1/a03/aqi", d0 + 48 * HOUR)->valid, "no O3 analyser: not NA");
    cr_assert_eq(point_at("air/s1/a03/aqi", d0 + 48 * HOUR)->v, 43);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.alerts[1]->status, IW_ALERT_RESOLVED);
    cr_assert_eq(env.alerts[1]->ts, d0 + 48 * HOUR);
    iw_rules_engine_free(e);
}

/* One message of a station with all six analysers; o3: 0 valid, 'D' flagged, '-' not sent. */
static void feed_air_minute_o3(struct iw_rules_engine *e, int64_t ts, double pm25, char o3)
{
    double v[] = { 5, 10, 0.3, 20, 20, pm25 };
    struct iw_rsample s[6];
    char series[64];
    size_t n = 0;

    for (size_t i = 0; i < 6; i++) {
        char flag = strcmp(pols[i], "o3") == 0 ? o3 : 0;
        if (flag == '-')
            continue;
        s[n] = fx_sample("air", "s1", "a05", pols[i], ts, v[i]);
        s[n++].flag = flag;
        snprintf(series, sizeof(series), "air/s1/a05/%s", pols[i]);
        fx_history_add(&env, series, ts, v[i], flag);
    }
    iw_rules_on_samples(e, s, n);
}

/*
 * A pollutant the station measures but without a valid hour is missing data
 * (HJ 633-2026 §5.3.1): AQI <= 100 is NA and decides nothing, whether its
 * hour had too few minutes, no sample at all, or only flagged ones.
 */
Test(std, air_measured_pollutant_without_valid_hour_is_na)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 300; m++) {
        int h = (m - 1) / 60 + 1;
        char o3 = h == 2 ? (m <= 90 ? 0 : '-') : h == 3 ? '-' : h == 4 ? 'D' : 0;
        feed_air_minute_o3(e, d0 + m * MINUTE, h == 1 ? 100 : 30, o3);
    }
    cr_assert_eq(point_at("air/s1/a05/aqi", d0 + 1 * HOUR)->v, 137);
    for (int h = 2; h <= 4; h++) {
        const struct fx_point *pt = point_at("air/s1/a05/aqi", d0 + h * HOUR);
        cr_assert_not_null(pt, "hour %d", h);
        cr_assert_eq(pt->v, 43, "hour %d", h);
        cr_assert_not(pt->valid, "hour %d: O3 measured, no valid hour: NA", h);
    }
    cr_assert(point_at("air/s1/a05/aqi", d0 + 5 * HOUR)->valid);
    cr_assert_eq(env.n_alerts, 2, "the NA hours do not clear");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, d0 + 5 * HOUR);
    iw_rules_engine_free(e);
}

/*
 * An NA hour's point (HJ 633-2026 §5.3.1) holds what all its data indicate:
 * PM2.5 at 200 for 44 minutes beside clean SO2 is not stored as SO2's AQI 4
 * (优), though it stays invalid and decides nothing.
 */
Test(std, air_na_hour_point_indicates_the_missing_pollutant)
{
    static const char *const m2[] = { "so2", "pm25" }, *const m1[] = { "so2" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int m = 1; m <= 120; m++) {
        double v[] = { 10, m <= 44 ? 200 : 10 };
        if (m <= 44 || m > 60)
            feed_msg(e, "air", "s1", "a10", m2, v, 2, d0 + m * MINUTE, 0);
        else
            feed_msg(e, "air", "s1", "a10", m1, v, 1, d0 + m * MINUTE, 0);
    }
    const struct fx_point *pt = point_at("air/s1/a10/aqi", d0 + HOUR);
    cr_assert_not_null(pt);
    cr_assert_not(pt->valid, "PM2.5 has 44 minutes: NA");
    cr_assert_eq(pt->v, 250, "the AQI its data indicate, not SO2's alone: %g", pt->v);
    cr_assert_eq(point_at("air/s1/a10/aqi_level", d0 + HOUR)->v, 5);
    cr_assert_eq(env.n_alerts, 0, "an NA hour raises nothing");
    cr_assert(point_at("air/s1/a10/aqi", d0 + 2 * HOUR)->valid);
    cr_assert_eq(point_at("air/s1/a10/aqi", d0 + 2 * HOUR)->v, 15);
    iw_rules_engine_free(e);
}

/*
 * HJ 633-2012 has no NA rule, but the air report treats its days as HJ
 * 633-2026 §5.3.1 does: a measured pollutant without a valid daily value and
 * the others <= 100 is not a valid AQI. A daily rule's series agrees: PM2.5
 * with 19 valid hours at 200 beside clean SO2 is stored invalid (not SO2's
 * AQI 4, 优), and it clears nothing.
 */
Test(std, air_hj633_2012_incomplete_day_is_invalid)
{
    static const char *const m2[] = { "so2", "pm25" }, *const m1[] = { "so2" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.standard = IW_AQI_HJ633_2012;
    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int h = 1; h <= 72; h++) {
        double v[] = { 10, h <= 24 ? 200 : h <= 48 ? 200 : 10 };
        if (h > 24 + 19 && h <= 48)
            feed_msg(e, "air", "s1", "a11", m1, v, 1, d0 + h * HOUR, 0);
        else
            feed_msg(e, "air", "s1", "a11", m2, v, 2, d0 + h * HOUR, 0);
    }
    cr_assert(point_at("air/s1/a11/aqi", d0 + 24 * HOUR)->valid);
    cr_assert_eq(point_at("air/s1/a11/aqi", d0 + 24 * HOUR)->v, 250);
    const struct fx_point *pt = point_at("air/s1/a11/aqi", d0 + 48 * HOUR);
    cr_assert_not_null(pt);
    cr_assert_not(pt->valid, "PM2.5 has 19 valid hours: not a valid AQI");
    cr_assert_eq(pt->v, 250, "what the day's data indicate: %g", pt->v);
    cr_assert(point_at("air/s1/a11/aqi", d0 + 72 * HOUR)->valid);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, d0 + 72 * HOUR, "resolved by day 3, not the incomplete day 2");
    iw_rules_engine_free(e);
}

/*
 * The same in the real-time report: an hour of HJ 633-2012 whose SO2 is
 * missing while the station measures it, with PM2.5's 24 h moving mean at
 * 30 (IAQI 43), is not a valid AQI of 43, 优: the missing one may be high.
 * It used to be stored valid.
 */
Test(std, air_hj633_2012_incomplete_hour_is_invalid)
{
    static const char *const m2[] = { "so2", "pm25" }, *const m1[] = { "pm25" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.standard = IW_AQI_HJ633_2012;
    e = engine(d0);
    for (int h = 1; h <= 26; h++) {
        double v[] = { 10, 30 }, v1[] = { 30 };
        if (h == 25)
            feed_msg(e, "air", "s1", "a12", m1, v1, 1, d0 + h * HOUR, 0);
        else
            feed_msg(e, "air", "s1", "a12", m2, v, 2, d0 + h * HOUR, 0);
    }
    const struct fx_point *pt = point_at("air/s1/a12/aqi", d0 + 24 * HOUR);
    cr_assert_not_null(pt);
    cr_assert(pt->valid, "SO2 and PM2.5 both there");
    cr_assert_eq(pt->v, 43);
    pt = point_at("air/s1/a12/aqi", d0 + 25 * HOUR);
    cr_assert_not_null(pt);
    cr_assert_not(pt->valid, "SO2 missing, the others <= 100: not a valid AQI");
    cr_assert_eq(pt->v, 43, "what the hour's data indicate: %g", pt->v);
    cr_assert_eq(env.n_alerts, 0);
    iw_rules_engine_free(e);
}

/* A pollutant reported once and then never again (a stray member, an
 * analyser taken away) is NA for 24 hours of the station's data, then "not
 * monitored": before, every later hour was NA and the alert never resolved. */
Test(std, air_a_pollutant_missing_from_a_day_of_data_is_no_longer_measured)
{
    static const char *const m2[] = { "pm25", "o3" }, *const m1[] = { "pm25" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 27; h++) {
        double v2[] = { 200, 80 }, v1[] = { 30 };
        if (h == 1)
            feed_msg(e, "air", "s1", "a20", m2, v2, 2, d0 + h * HOUR, 0);
        else
            feed_msg(e, "air", "s1", "a20", m1, v1, 1, d0 + h * HOUR, 0);
        if (h == 25)
            cr_assert_eq(env.n_alerts, 1, "resolved with O3 missing for %d hours", h - 2);
    }
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.alerts[0]->ts, d0 + HOUR);
    cr_assert_eq(env.alerts[1]->reason, IW_ALERT_RESOLVE);
    cr_assert_eq(env.alerts[1]->ts, d0 + 25 * HOUR, "hours 2..25: 24 hours without O3");
    cr_assert_not(point_at("air/s1/a20/aqi", d0 + 24 * HOUR)->valid, "O3 still measured: NA");
    cr_assert(point_at("air/s1/a20/aqi", d0 + 25 * HOUR)->valid);
    cr_assert_eq(point_at("air/s1/a20/aqi", d0 + 25 * HOUR)->v, 43);
    iw_rules_engine_free(e);
}

/* Daily mode: an analyser out for a whole day leaves that day NA (its
 * pollutant is measured at the day's start), though its 24 missing hours
 * make it "not monitored" by the day's end; the next day goes without it.
 * The day used to be judged with the state at its end: valid, AQI 50. */
Test(std, air_daily_an_analyser_out_all_day_leaves_the_day_na)
{
    static const char *const m2[] = { "pm25", "co" }, *const m1[] = { "pm25" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    e = engine(d0);
    for (int h = 1; h <= 72; h++) {
        double v2[] = { 35, 0.5 }, v1[] = { 35 };
        if (h <= 24)
            feed_msg(e, "air", "s1", "a21", m2, v2, 2, d0 + h * HOUR, 0);
        else
            feed_msg(e, "air", "s1", "a21", m1, v1, 1, d0 + h * HOUR, 0);
    }
    cr_assert(point_at("air/s1/a21/aqi", d0 + 24 * HOUR)->valid, "day 1 with CO");
    cr_assert_not(point_at("air/s1/a21/aqi", d0 + 48 * HOUR)->valid, "day 2: CO missing, NA");
    cr_assert(point_at("air/s1/a21/aqi", d0 + 72 * HOUR)->valid, "day 3: CO not monitored");
    cr_assert_eq(point_at("air/s1/a21/aqi", d0 + 72 * HOUR)->v, 50);
    iw_rules_engine_free(e);
}

/*
 * A station whose inventory entry lists its pollutants monitors those, how
 * long soever an analyser is out: the 24-hour guess above does not apply to
 * them, so O3 missing from day 2 on leaves every hour NA (AQI 43 <= 100) and
 * the alert unresolved, where the undeclared station of the test above
 * resolved at hour 25.
 */
Test(std, air_pollutants_the_inventory_lists_are_measured_however_long_they_are_out)
{
    static const char *const m2[] = { "pm25", "o3" }, *const m1[] = { "pm25" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    fx_device(&cfg, "air", "s1", "a22")->pollutants = (1u << IW_AQI_P_PM25) | (1u << IW_AQI_P_O3);
    e = engine(d0);
    for (int h = 1; h <= 50; h++) {
        double v2[] = { 200, 80 }, v1[] = { 30 };
        if (h == 1)
            feed_msg(e, "air", "s1", "a22", m2, v2, 2, d0 + h * HOUR, 0);
        else
            feed_msg(e, "air", "s1", "a22", m1, v1, 1, d0 + h * HOUR, 0);
    }
    cr_assert_eq(env.n_alerts, 1, "fired at hour 1, never resolved on NA hours");
    for (int h = 2; h <= 49; h++) {
        const struct fx_point *pt = point_at("air/s1/a22/aqi", d0 + h * HOUR);
        cr_assert_not_null(pt, "hour %d", h);
        cr_assert_not(pt->valid, "hour %d: O3 declared and missing, AQI 43: NA", h);
    }
    iw_rules_engine_free(e);
}

/* Daily mode: a declared CO analyser out for two days leaves both NA; the
 * undeclared station of air_daily_an_analyser_out_all_day_leaves_the_day_na
 * has its third day valid without CO. */
Test(std, air_daily_a_declared_analyser_out_for_days_leaves_every_day_na)
{
    static const char *const m2[] = { "pm25", "co" }, *const m1[] = { "pm25" };
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.mode = IW_AQI_DAILY;
    fx_device(&cfg, "air", "s1", "a23")->pollutants = (1u << IW_AQI_P_PM25) | (1u << IW_AQI_P_CO);
    e = engine(d0);
    for (int h = 1; h <= 72; h++) {
        double v2[] = { 35, 0.5 }, v1[] = { 35 };
        if (h <= 24)
            feed_msg(e, "air", "s1", "a23", m2, v2, 2, d0 + h * HOUR, 0);
        else
            feed_msg(e, "air", "s1", "a23", m1, v1, 1, d0 + h * HOUR, 0);
    }
    /* The last hour waits for its CO, which the station measures: close_after. */
    iw_rules_tick(e, d0 + 72 * HOUR + 5 * MINUTE);
    cr_assert_not_null(point_at("air/s1/a23/aqi", d0 + 72 * HOUR));
    cr_assert(point_at("air/s1/a23/aqi", d0 + 24 * HOUR)->valid, "day 1 with CO");
    cr_assert_not(point_at("air/s1/a23/aqi", d0 + 48 * HOUR)->valid, "day 2: CO missing, NA");
    cr_assert_not(point_at("air/s1/a23/aqi", d0 + 72 * HOUR)->valid, "day 3: still NA");
    iw_rules_engine_free(e);
}

/* What a station measures survives a restart longer ago than the history refill. */
Test(std, air_measured_pollutants_survive_restart)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 2; h++) {
        double v[] = { 5, 10, 0.3, 20, 20, 30 };
        feed_msg(e, "air", "s1", "a06", pols, v, 6, d0 + h * HOUR, 0);
    }
    cr_assert_eq(env.n_alerts, 0);
    e = fx_restart(e, &env, &cfg.cfg, d0 + 72 * HOUR);
    for (int h = 3 * 24 + 1; h <= 3 * 24 + 2; h++) {   /* O3 analyser down */
        static const char *const m5[] = { "so2", "no2", "co", "pm10", "pm25" };
        double v[] = { 5, 10, 0.3, 20, h == 3 * 24 + 1 ? 100 : 30 };
        feed_msg(e, "air", "s1", "a06", m5, v, 5, d0 + h * HOUR, 0);
    }
    cr_assert_eq(env.n_alerts, 1, "137 is published without O3");
    /* Without its O3 the last hour waits for close_after (O3 may still come). */
    cr_assert_null(point_at("air/s1/a06/aqi", d0 + (3 * 24 + 2) * HOUR));
    iw_rules_tick(e, d0 + (3 * 24 + 2) * HOUR + 5 * MINUTE);
    cr_assert_not(point_at("air/s1/a06/aqi", d0 + (3 * 24 + 2) * HOUR)->valid,
                  "43 without the O3 the station measures is NA");
    iw_rules_engine_free(e);
}

/* An hourly reporter may send one message per pollutant, each stamped at the
 * hour's end: the hour (H-1h, H] closes once every pollutant the station
 * measures has its value at H. It used to close on the first message and
 * drop the others as out of order, leaving an AQI of one pollutant. */
Test(std, air_hour_reported_one_pollutant_per_message_is_whole)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    static const double v[] = { 5, 10, 0.3, 20, 20, 30 };

    air_rule();
    e = engine(d0);
    for (int h = 1; h <= 2; h++)            /* the first hour tells which ones it measures */
        for (size_t i = 0; i < 6; i++)
            feed_msg(e, "air", "s1", "a07", &pols[i], &v[i], 1, d0 + h * HOUR, 0);
    for (size_t i = 0; i < 6; i++) {        /* hour 3: PM2.5 100 comes last */
        double x = i == 5 ? 100 : v[i];
        feed_msg(e, "air", "s1", "a07", &pols[i], &x, 1, d0 + 3 * HOUR, 0);
        if (i < 5)
            cr_assert_null(point_at("air/s1/a07/aqi", d0 + 3 * HOUR), "closed after %zu", i + 1);
    }
    cr_assert_eq(point_at("air/s1/a07/aqi", d0 + 3 * HOUR)->v, 137);
    cr_assert_eq(env.n_alerts, 1, "PM2.5 100 (IAQI 137) fires at the hour it belongs to");
    cr_assert_eq(env.alerts[0]->ts, d0 + 3 * HOUR);
    cr_assert_eq(point_at("air/s1/a07/aqi", d0 + 2 * HOUR)->v, 43);
    iw_rules_engine_free(e);
}

/* clear_level 2: level 2 is inside the hysteresis band, level 1 clears. */
Test(std, air_hysteresis_clear_level)
{
    int64_t d0 = day0();
    struct iw_rules_engine *e;
    struct iw_rule *r = air_rule();

    r->p.clear_level = 2;
    e = engine(d0);
    for (int h = 1; h <= 4; h++) {
        double v[] = { 5, 10, 0.3, 20, 20, h == 1 ? 100 : h == 2 ? 60 : h == 3 ? 40 : 10 };
        feed_msg(e, "air", "s1", "a03", pols, v, 6, d0 + h * HOUR, 0);
    }
    cr_assert_eq(point_at("air/s1/a03/aqi_level", d0 + 2 * HOUR)->v, 2);
    cr_assert_eq(point_at("air/s1/a03/aqi_level", d0 + 3 * HOUR)->v, 2);
    cr_assert_eq(env.n_alerts, 2, "level 2 kept it firing, level 1 resolved it");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, d0 + 4 * HOUR, "PM2.5 60 and 40 are level 2, 10 is level 1");
    iw_rules_engine_free(e);
}
