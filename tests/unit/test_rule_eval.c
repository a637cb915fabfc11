/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule engine state machines (threshold, rate, absence, flag, event), their
 * persistence across a restart and their behaviour across a reload, through
 * the public API with a fake environment (tests/unit/rules_fixture.h).
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>

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

TestSuite(rules, .init = setup, .fini = teardown, .timeout = 20);

static struct iw_rules_engine *engine(int64_t now)
{
    struct iw_rules_env e = fx_env_of(&env);
    struct iw_rules_engine *eng = NULL;
    cr_assert_eq(iw_rules_engine_new(&cfg.cfg, &e, now, &eng), IW_OK);
    return eng;
}

/* ==========================================================================
 * threshold: table of sample sequences and the transition each one causes
 * ======================================================================== */

struct step {
    int64_t t;          /* seconds after T0 */
    double  v;
    char    ex;         /* '-' nothing, 'F' fire, 'R' resolve */
};

struct thr_case {
    const char *name;
    double above, below, clear_below, clear_above;   /* NAN: not set */
    int64_t for_s, clear_for_s;
    enum iw_window_agg agg;
    int64_t over_s;
    struct step steps[12];
};

#define X NAN
static const struct thr_case thr_cases[] = {
    { "a value exactly at `above` does not breach", 10, X, X, X, 0, 0, IW_AGG_NONE, 0,
      { { 0, 10, '-' }, { 10, 10.0001, 'F' }, { 20, 10, 'R' } } },
    { "a value exactly at `below` does not breach", X, 5, X, X, 0, 0, IW_AGG_NONE, 0,
      { { 0, 5, '-' }, { 10, 4.9, 'F' }, { 20, 5, 'R' } } },
    { "`for` expiring exactly at a sample fires there", 10, X, X, X, 60, 0, IW_AGG_NONE, 0,
      { { 0, 11, '-' }, { 30, 11, '-' }, { 60, 11, 'F' }, { 70, 11, '-' } } },
    { "a dip restarts `for`", 10, X, X, X, 60, 0, IW_AGG_NONE, 0,
      { { 0, 11, '-' }, { 30, 9, '-' }, { 40, 11, '-' }, { 90, 11, '-' }, { 100, 11, 'F' } } },
    { "the hysteresis band keeps it firing; clear_below is inclusive", 10, X, 8, X, 0, 0, IW_AGG_NONE, 0,
      { { 0, 11, 'F' }, { 10, 9, '-' }, { 20, 8.5, '-' }, { 30, 8, 'R' }, { 40, 9, '-' },
        { 50, 10, '-' }, { 60, 10.5, 'F' } } },
    { "clear_above for a below rule", X, 5, X, 7, 0, 0, IW_AGG_NONE, 0,
      { { 0, 4, 'F' }, { 10, 6, '-' }, { 20, 7, 'R' } } },
    { "clear_for needs clearing continuously", 10, X, X, X, 0, 60, IW_AGG_NONE, 0,
      { { 0, 11, 'F' }, { 10, 9, '-' }, { 20, 11, '-' }, { 30, 9, '-' }, { 80, 9, '-' },
        { 90, 9, 'R' } } },
    { "flapping without `for` follows every crossing", 10, X, X, X, 0, 0, IW_AGG_NONE, 0,
      { { 0, 11, 'F' }, { 10, 9, 'R' }, { 20, 11, 'F' }, { 30, 9, 'R' } } },
    { "flapping shorter than `for` never fires", 10, X, X, X, 30, 0, IW_AGG_NONE, 0,
      { { 0, 11, '-' }, { 10, 9, '-' }, { 20, 11, '-' }, { 30, 9, '-' }, { 40, 11, '-' },
        { 50, 9, '-' } } },
    { "above and below together make a band", 10, 0, X, X, 0, 0, IW_AGG_NONE, 0,
      { { 0, 5, '-' }, { 10, -1, 'F' }, { 20, 5, 'R' }, { 30, 11, 'F' }, { 40, 10, 'R' } } },
    { "window avg over (ts - over, ts]", 10, X, X, X, 0, 0, IW_AGG_AVG, 180,
      { { 0, 8, '-' }, { 60, 8, '-' }, { 120, 14, '-' }, { 180, 9, 'F' }, { 240, 6, 'R' } } },
    { "window max forgets what left the window", 10, X, X, X, 0, 0, IW_AGG_MAX, 120,
      { { 0, 11, 'F' }, { 60, 5, '-' }, { 120, 5, 'R' } } },
    { "window min", X, 5, X, X, 0, 0, IW_AGG_MIN, 120,
      { { 0, 6, '-' }, { 60, 4, 'F' }, { 120, 6, '-' }, { 180, 6, 'R' } } },
};
#undef X

static void set_thr(struct iw_rule *r, const struct thr_case *c)
{
    struct iw_rule_params *p = &r->p;
    p->has_above = !isnan(c->above);
    p->above = c->above;
    p->has_below = !isnan(c->below);
    p->below = c->below;
    p->has_clear_below = !isnan(c->clear_below);
    p->clear_below = c->clear_below;
    p->has_clear_above = !isnan(c->clear_above);
    p->clear_above = c->clear_above;
    p->for_ms = c->for_s * SEC;
    p->clear_for_ms = c->clear_for_s * SEC;
    p->window_agg = c->agg;
    p->window_ms = c->over_s * SEC;
}

Test(rules, threshold_table)
{
    for (size_t k = 0; k < IW_ARRAY_LEN(thr_cases); k++) {
        const struct thr_case *c = &thr_cases[k];
        struct iw_rules_engine *e;
        const char *id = NULL;

        fx_cfg_init(&cfg);
        set_thr(fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/s1/w01/nh3_n"), c);
        e = engine(T0);
        for (size_t i = 0; i < IW_ARRAY_LEN(c->steps) && c->steps[i].ex; i++) {
            const struct step *st = &c->steps[i];
            size_t before = env.n_alerts;

            fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + st->t * SEC, st->v);
            if (st->ex == '-') {
                cr_assert_eq(env.n_alerts, before, "%s: step %zu (t=%llds v=%g) emitted %s", c->name,
                             i, (long long)st->t, st->v,
                             env.n_alerts > before ? iw_alert_status_name(fx_last(&env)->status) : "");
                continue;
            }
            cr_assert_eq(env.n_alerts, before + 1, "%s: step %zu (t=%llds v=%g) expected %c",
                         c->name, i, (long long)st->t, st->v, st->ex);
            const struct iw_alert *a = fx_last(&env);
            cr_assert_eq(a->status, st->ex == 'F' ? IW_ALERT_FIRING : IW_ALERT_RESOLVED, "%s: step %zu",
                         c->name, i);
            cr_assert_eq(a->ts, T0 + st->t * SEC, "%s: step %zu: alert ts", c->name, i);
            if (st->ex == 'F')
                id = a->id;
            else
                cr_assert_str_eq(a->id, id, "%s: resolve carries the firing id", c->name);
        }
        iw_rules_engine_free(e);
        fx_env_fini(&env);
    }
}

/* SPEC section 4 lists {class}, {aqi} and {level} among every rule's
 * placeholders: in a threshold rule they are empty, not left as text. */
Test(rules, the_standard_placeholders_are_empty_in_other_kinds)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 2.0;
    r->message = "{rule} {value} [{class}|{aqi}|{level}]";
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0, 2.5);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(fx_last(&env)->message, "t 2.5 [||]");
    iw_rules_engine_free(e);
}

Test(rules, firing_alert_carries_evidence_and_template)
{
    struct iw_rule *r = fx_rule(&cfg, "nh3n-high", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_kv *labels = fx_kv(&cfg, "team", "water-ops");
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    r->p.has_above = true;
    r->p.above = 2.0;
    r->p.for_ms = 2 * MINUTE;
    r->p.severity = IW_SEV_MAJOR;
    r->labels = labels;
    r->n_labels = 1;
    r->message_en = "{site}/{device} {metric_name} {value} {unit} > {threshold}";
    r->message_zh = "{site}/{device} 氨氮 {value}{unit} 超过 {threshold}";
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0, 2.5);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0 + 2 * MINUTE, 2.31);
    a = fx_last(&env);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(a->kind, IW_RULE_THRESHOLD);
    cr_assert_eq(a->severity, IW_SEV_MAJOR);
    cr_assert_eq(a->reason, IW_ALERT_FIRE);
    cr_assert_str_eq(a->metric, "nh3_n");
    cr_assert(a->has_value && a->value == 2.31);
    cr_assert(a->has_threshold && a->threshold == 2.0);
    cr_assert_str_eq(a->unit, "mg/L");
    cr_assert_eq(a->started_at, T0, "started_at is the first breaching sample");
    cr_assert_eq(a->ts, T0 + 2 * MINUTE);
    cr_assert_str_eq(a->message, "dongtan/w01 NH3-N 2.31 mg/L > 2");
    cr_assert_str_eq(a->message_zh, "dongtan/w01 氨氮 2.31mg/L 超过 2");
    cr_assert_str_eq(a->rule_hash, r->hash);
    cr_assert_eq(a->n_labels, 1);
    cr_assert_str_eq(a->labels[0].value, "water-ops");
    cr_assert_eq(strlen(a->id), 16);
    cr_assert_not_null(strstr(a->details, "\"above\":2"), "details: %s", a->details);
    cr_assert_not(a->late);
    cr_assert_not(a->silenced);
    iw_rules_engine_free(e);
}

/* Trace metals sit at 0.00005 mg/L and fecal coliform in the millions per
 * litre: a message shows them as an operator writes them, not as 5e-05. */
Test(rules, message_numbers_are_plain_decimals)
{
    struct iw_rule *hg = fx_rule(&cfg, "hg", IW_RULE_THRESHOLD, "water/*/*/hg");
    struct iw_rule *fc = fx_rule(&cfg, "fc", IW_RULE_THRESHOLD, "water/*/*/fecal_coliform");
    struct iw_rules_engine *e;

    hg->p.has_above = true;
    hg->p.above = 0.00005;
    fc->p.has_above = true;
    fc->p.above = 40000;
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w01", "hg", T0, 0.000081);
    fx_feed(e, "water", "dongtan", "w01", "fecal_coliform", T0, 2500000);
    cr_assert_eq(env.n_alerts, 2);
    cr_expect_str_eq(env.alerts[0]->message, "dongtan/w01 Hg 0.000081 mg/L above 0.00005");
    cr_expect_str_eq(env.alerts[1]->message, "dongtan/w01 Fecal coliform 2500000 个/L above 40000");
    iw_rules_engine_free(e);
}

Test(rules, default_message_describes_the_condition)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 2.0;
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0, 2.31);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0 + MINUTE, 1.5);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_str_eq(env.alerts[0]->message, "dongtan/w01 NH3-N 2.31 mg/L above 2");
    cr_assert_str_eq(env.alerts[1]->message, "dongtan/w01 NH3-N 1.5 mg/L, back within 2");
    iw_rules_engine_free(e);
}

/* A repeat while the value is back inside (hysteresis band, clear_for
 * running) must not claim it is still beyond the threshold. */
/*
 * Mercury limits are 0.00005 mg/L and fecal coliform counts run to millions
 * per litre: a message shows them as written, never as 5e-05 or 2.4e+06.
 */
Test(rules, message_numbers_have_no_exponent)
{
    struct iw_rule *hg = fx_rule(&cfg, "hg", IW_RULE_THRESHOLD, "water/*/*/hg");
    struct iw_rule *fc = fx_rule(&cfg, "fc", IW_RULE_THRESHOLD, "water/*/*/fecal_coliform");
    struct iw_rules_engine *e;

    hg->p.has_above = true;
    hg->p.above = 0.00005;
    fc->p.has_above = true;
    fc->p.above = 40000;
    fc->message_en = "{metric_name} {value} > {threshold}";
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w01", "hg", T0, 0.0000812345);
    fx_feed(e, "water", "dongtan", "w01", "fecal_coliform", T0, 2400000);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_str_eq(env.alerts[0]->message, "dongtan/w01 Hg 0.0000812345 mg/L above 0.00005");
    cr_assert_str_eq(env.alerts[1]->message, "Fecal coliform 2400000 > 40000");
    iw_rules_engine_free(e);
}

Test(rules, default_message_of_a_repeat_while_clearing_does_not_claim_the_breach)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rule *d = fx_rule(&cfg, "d", IW_RULE_THRESHOLD, "water/*/*/do");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 2.0;
    r->p.clear_for_ms = 10 * MINUTE;
    r->p.repeat_ms = 5 * MINUTE;
    d->p.has_below = true;
    d->p.below = 3;
    d->p.has_clear_above = true;
    d->p.clear_above = 4;
    d->p.repeat_ms = 5 * MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0, 2.31);
    fx_feed(e, "water", "dongtan", "w01", "do", T0, 2.5);
    fx_feed(e, "water", "dongtan", "w01", "nh3_n", T0 + MINUTE, 1.5);
    fx_feed(e, "water", "dongtan", "w01", "do", T0 + MINUTE, 3.5);
    iw_rules_tick(e, T0 + 5 * MINUTE);
    cr_assert_eq(env.n_alerts, 4);
    cr_assert_eq(env.alerts[2]->reason, IW_ALERT_REPEAT);
    cr_assert_eq(env.alerts[3]->reason, IW_ALERT_REPEAT);
    for (size_t i = 2; i < 4; i++) {
        const struct iw_alert *a = env.alerts[i];
        cr_assert_null(strstr(a->message, "mg/L above 2"), "%s", a->message);
        cr_assert_null(strstr(a->message, "mg/L below 3"), "%s", a->message);
    }
    const struct iw_alert *t = strcmp(env.alerts[2]->rule, "t") == 0 ? env.alerts[2]
                                                                      : env.alerts[3];
    const struct iw_alert *o = t == env.alerts[2] ? env.alerts[3] : env.alerts[2];
    cr_assert_str_eq(t->message, "dongtan/w01 NH3-N 1.5 mg/L, no longer above 2; resolves "
                     "after 10m at or below 2");
    cr_assert_str_eq(o->message, "dongtan/w01 DO 3.5 mg/L, no longer below 3; "
                     "resolves at or above 4");
    iw_rules_engine_free(e);
}

Test(rules, three_level_select_makes_one_instance_per_metric)
{
    struct iw_rule *r = fx_rule(&cfg, "any-high", IW_RULE_THRESHOLD, "air/*/*");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 100;
    e = engine(T0);
    fx_feed(e, "air", "s1", "a01", "pm25", T0, 150);
    fx_feed(e, "air", "s1", "a01", "pm10", T0, 150);
    fx_feed(e, "air", "s1", "a01", "pm25", T0 + MINUTE, 50);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_str_eq(env.alerts[0]->metric, "pm25");
    cr_assert_str_eq(env.alerts[1]->metric, "pm10");
    cr_assert_str_neq(env.alerts[0]->id, env.alerts[1]->id);
    cr_assert_eq(env.alerts[2]->status, IW_ALERT_RESOLVED);
    cr_assert_str_eq(env.alerts[2]->metric, "pm25");
    fx_feed(e, "water", "s1", "a01", "pm25", T0, 150);     /* another source: not selected */
    cr_assert_eq(env.n_alerts, 3);
    iw_rules_engine_free(e);
}

Test(rules, flagged_samples_do_not_feed_threshold)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;
    struct iw_rsample s = fx_sample("water", "s1", "w01", "nh3_n", T0, 50);

    r->p.has_above = true;
    r->p.above = 2;
    e = engine(T0);
    s.flag = 'D';
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 0);
    s.flag = 'N';
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 1, "'N' is the normal flag");
    iw_rules_engine_free(e);
}

Test(rules, out_of_order_sample_does_not_cancel_pending)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;
    struct iw_rules_stats st;

    r->p.has_above = true;
    r->p.above = 10;
    r->p.for_ms = MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 100 * SEC, 11);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 50 * SEC, 5);     /* older: ignored */
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 160 * SEC, 11);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->started_at, T0 + 100 * SEC);
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.out_of_order, 1);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * late and out-of-order samples: evaluated on their own time (SPEC §1)
 * ======================================================================== */

/* A sample of water/s1/w01/<metric> received at recv, stored and fed alone. */
static void feed_late(struct iw_rules_engine *e, const char *metric, int64_t ts, double v,
                      int64_t recv, char flag)
{
    struct iw_rsample s = fx_sample("water", "s1", "w01", metric, ts, v);
    s.recv_ms = recv;
    s.flag = flag;
    fx_feed_stored(e, &env, &s, 1);
}

static struct iw_rule *nh3_rule(double above, int64_t for_ms)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    r->p.has_above = true;
    r->p.above = above;
    r->p.for_ms = for_ms;
    return r;
}

static void assert_alert(size_t i, enum iw_alert_status st, int64_t ts, int64_t started_at,
                         bool late)
{
    const struct iw_alert *a;
    cr_assert_lt(i, env.n_alerts, "alert %zu missing (%zu alerts)", i, env.n_alerts);
    a = env.alerts[i];
    cr_assert_eq(a->status, st, "alert %zu status", i);
    cr_assert_eq(a->ts, ts, "alert %zu ts %lld, expected %lld", i, (long long)a->ts,
                 (long long)ts);
    cr_assert_eq(a->started_at, started_at, "alert %zu started_at", i);
    cr_assert_eq(a->late, late, "alert %zu late", i);
}

Test(rules, late_sample_raises_and_resolves_on_its_own_time)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;
    struct iw_rules_stats st;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 5, t, 0);                          /* back after an outage */
    cr_assert_eq(env.n_alerts, 0);
    feed_late(e, "nh3_n", t - 2 * HOUR, 20, t + MINUTE, 0);     /* the buffered upload */
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, t - 2 * HOUR, t - 2 * HOUR, true);
    cr_assert_eq(env.alerts[0]->value, 20);
    assert_alert(1, IW_ALERT_RESOLVED, t, t - 2 * HOUR, true);   /* the stored sample at t */
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.out_of_order, 1);
    /* The live instance stayed inactive: the next breach is a new, live episode. */
    feed_late(e, "nh3_n", t + 2 * MINUTE, 5, t + 2 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    feed_late(e, "nh3_n", t + 3 * MINUTE, 11, t + 3 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 3);
    assert_alert(2, IW_ALERT_FIRING, t + 3 * MINUTE, t + 3 * MINUTE, false);
    cr_assert_str_neq(env.alerts[2]->id, env.alerts[0]->id);
    cr_assert_eq(env.n_state, 1, "only the live instance keeps a record");
    iw_rules_engine_free(e);
}

/* The late sample above, redelivered (QoS 1, a logger's retry): its episode
 * is not published again. The store cannot tell it from a new sample, and
 * the episode ended before the live instance's time (its id is not the live
 * one); the late episodes published lately are remembered. */
Test(rules, a_redelivered_late_sample_does_not_publish_its_episode_again)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 5, t, 0);
    feed_late(e, "nh3_n", t + 10 * MINUTE, 5, t + 10 * MINUTE, 0);
    feed_late(e, "nh3_n", t - 2 * HOUR, 20, t + 11 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    feed_late(e, "nh3_n", t - 2 * HOUR, 20, t + 12 * MINUTE, 0);  /* redelivered */
    cr_assert_eq(env.n_alerts, 2, "published again: %zu alerts", env.n_alerts);
    /* A late sample outside that episode is new. */
    feed_late(e, "nh3_n", t + 5 * MINUTE, 30, t + 13 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 4, "alerts: %zu", env.n_alerts);
    assert_alert(2, IW_ALERT_FIRING, t + 5 * MINUTE, t + 5 * MINUTE, false);
    assert_alert(3, IW_ALERT_RESOLVED, t + 10 * MINUTE, t + 5 * MINUTE, false);
    iw_rules_engine_free(e);
}

/* Ten single-sample late episodes, then all of them redelivered: none is
 * published twice (the memo holds more than a short backlog's episodes). */
Test(rules, a_redelivered_backlog_of_many_episodes_publishes_none_again)
{
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    for (int m = 0; m < 100; m++)
        if (m < 10 || m >= 60 || m % 5 != 0)
            feed_late(e, "nh3_n", T0 + m * MINUTE, 5, T0 + m * MINUTE, 0);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 10; k++)
            feed_late(e, "nh3_n", T0 + (10 + 5 * k) * MINUTE, 20,
                      T0 + (100 + 10 * pass) * MINUTE + k * SEC, 0);
    cr_assert_eq(env.n_alerts, 20, "alerts: %zu", env.n_alerts);
    iw_rules_engine_free(e);
}

/* The broker redelivers after a daemon restart (QoS 1, persistent session):
 * the late episode is remembered in the instance's state record. */
Test(rules, a_late_sample_redelivered_after_a_restart_publishes_nothing_again)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 5, t, 0);
    feed_late(e, "nh3_n", t - 2 * HOUR, 20, t + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.n_state, 1, "the inactive instance keeps its record for the memo");
    e = fx_restart(e, &env, &cfg.cfg, t + 2 * MINUTE);
    feed_late(e, "nh3_n", t - 2 * HOUR, 20, t + 3 * MINUTE, 0);     /* redelivered */
    cr_assert_eq(env.n_alerts, 2, "published again after the restart: %zu alerts", env.n_alerts);
    iw_rules_engine_free(e);
}

/* A backlog re-sent a record at a time holds two episodes: the second is
 * published too (each part is judged on what is stored by then, so the first
 * resolves at the next stored point, 60m: the documented limit). Remembering
 * the first as a span swallowed the second. */
Test(rules, a_backlog_sent_a_record_at_a_time_publishes_each_episode)
{
    static const struct { int m; double v; } back[] = { { 20, 20 }, { 21, 5 }, { 30, 20 }, { 31, 5 } };
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", T0, 5, T0, 0);
    feed_late(e, "nh3_n", T0 + 60 * MINUTE, 5, T0 + 60 * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + 70 * MINUTE, 5, T0 + 70 * MINUTE, 0);
    for (int i = 0; i < 4; i++)
        feed_late(e, "nh3_n", T0 + back[i].m * MINUTE, back[i].v, T0 + 72 * MINUTE + i * SEC, 0);
    cr_assert_eq(env.n_alerts, 4, "alerts: %zu", env.n_alerts);
    cr_expect_eq(env.alerts[0]->ts, T0 + 20 * MINUTE);
    cr_expect_eq(env.alerts[0]->reason, IW_ALERT_FIRE);
    cr_expect_eq(env.alerts[2]->ts, T0 + 30 * MINUTE, "the second episode");
    cr_expect_eq(env.alerts[2]->reason, IW_ALERT_FIRE);
    iw_rules_engine_free(e);
}

/* The backlog of a station after an outage, uploaded in one message. */
Test(rules, late_backlog_after_a_live_sample_fires_and_resolves_once)
{
    const int64_t t = T0 + 3 * HOUR, b = t - 2 * HOUR;
    struct iw_rsample s[60];
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 5, t, 0);
    for (int i = 0; i < 60; i++) {
        s[i] = fx_sample("water", "s1", "w01", "nh3_n", b + i * MINUTE,
                         i >= 10 && i < 40 ? 20 : 5);
        s[i].recv_ms = t + MINUTE;
    }
    fx_feed_stored(e, &env, s, 60);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, b + 20 * MINUTE, b + 10 * MINUTE, true);
    assert_alert(1, IW_ALERT_RESOLVED, b + 40 * MINUTE, b + 10 * MINUTE, true);
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    feed_late(e, "nh3_n", t + MINUTE, 5, t + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2, "the live instance is untouched");
    iw_rules_engine_free(e);
}

/* The same backlog, one sample per message: each message sees what is stored
 * so far, so the episode resolves at the live sample, and only once. */
Test(rules, late_backlog_in_many_messages_publishes_the_episode_once)
{
    const int64_t t = T0 + 3 * HOUR, b = t - 2 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 5, t, 0);
    for (int i = 0; i < 60; i++)
        feed_late(e, "nh3_n", b + i * MINUTE, i >= 10 && i < 40 ? 20 : 5, t + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, b + 20 * MINUTE, b + 10 * MINUTE, true);
    assert_alert(1, IW_ALERT_RESOLVED, t, b + 10 * MINUTE, true);
    iw_rules_engine_free(e);
}

/* The same backlog, one sample per message, as the daemon and `islewatch
 * test` judge it (iw_rules_hold_late): held until the upload pauses, then
 * judged whole, so the episode resolves where the data say, not at the live
 * sample after the outage. */
Test(rules, held_backlog_in_many_messages_is_judged_whole)
{
    const int64_t t = T0 + 3 * HOUR, b = t - 2 * HOUR, up = t + MINUTE;
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    iw_rules_hold_late(e, true);
    feed_late(e, "nh3_n", t, 5, t, 0);
    for (int i = 0; i < 60; i++)
        feed_late(e, "nh3_n", b + i * MINUTE, i >= 10 && i < 40 ? 20 : 5, up + i * SEC, 0);
    iw_rules_tick(e, up + 59 * SEC + 9 * SEC);
    cr_assert_eq(env.n_alerts, 0, "held while the upload goes on");
    iw_rules_tick(e, up + 59 * SEC + 10 * SEC);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    assert_alert(0, IW_ALERT_FIRING, b + 20 * MINUTE, b + 10 * MINUTE, true);
    assert_alert(1, IW_ALERT_RESOLVED, b + 40 * MINUTE, b + 10 * MINUTE, true);
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* Held late samples are judged before a live sample finishes a for: run
 * they break: the late value under the threshold restarts the run. */
Test(rules, held_late_samples_are_judged_before_a_live_run_fires)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    iw_rules_hold_late(e, true);
    feed_late(e, "nh3_n", t, 20, t, 0);
    feed_late(e, "nh3_n", t + 5 * MINUTE, 20, t + 5 * MINUTE, 0);
    feed_late(e, "nh3_n", t + 2 * MINUTE, 1, t + 10 * MINUTE - 5 * SEC, 0);     /* held */
    feed_late(e, "nh3_n", t + 10 * MINUTE, 20, t + 10 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 0, "the run restarted at +5 min: 5 of 10 minutes");
    feed_late(e, "nh3_n", t + 15 * MINUTE, 20, t + 15 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1);
    assert_alert(0, IW_ALERT_FIRING, t + 15 * MINUTE, t + 5 * MINUTE, false);
    iw_rules_engine_free(e);
}

/* A flag rule holds its late samples too. */
Test(rules, held_late_flags_wait_for_the_pause)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "f", IW_RULE_FLAG, "water/*/*");

    r->p.flags = 1u << ('D' - 'A');
    e = engine(T0);
    iw_rules_hold_late(e, true);
    feed_late(e, "nh3_n", t, 1, t, 'N');
    feed_late(e, "nh3_n", t - HOUR, 1, t + MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 0, "held");
    iw_rules_tick(e, t + MINUTE + 10 * SEC);
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    assert_alert(0, IW_ALERT_FIRING, t - HOUR, t - HOUR, true);
    assert_alert(1, IW_ALERT_RESOLVED, t, t - HOUR, true);
    iw_rules_engine_free(e);
}

Test(rules, late_sample_inside_a_live_firing_episode_publishes_nothing)
{
    struct iw_rules_engine *e;
    struct iw_rules_stats st;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", T0, 20, T0, 0);
    feed_late(e, "nh3_n", T0 + HOUR, 20, T0 + HOUR, 0);
    cr_assert_eq(env.n_alerts, 1);
    feed_late(e, "nh3_n", T0 + 30 * MINUTE, 25, T0 + HOUR, 0);     /* breaching */
    feed_late(e, "nh3_n", T0 + 20 * MINUTE, 1, T0 + HOUR, 0);      /* clearing */
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.out_of_order, 2);
    feed_late(e, "nh3_n", T0 + HOUR + MINUTE, 1, T0 + HOUR + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(1, IW_ALERT_RESOLVED, T0 + HOUR + MINUTE, T0, false);
    iw_rules_engine_free(e);
}

/* A late breach right before a live episode is that episode begun earlier. */
Test(rules, late_sample_continuing_into_a_live_episode_adds_no_second_firing)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 20, t, 0);
    cr_assert_eq(env.n_alerts, 1);
    feed_late(e, "nh3_n", t - 30 * MINUTE, 20, t + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_engine_free(e);
}

/* A late breach that completes `for:` of a live pending condition: the live
 * instance fires it (started when the late data says), and resolves it live. */
Test(rules, late_sample_completing_a_live_pending_for_fires_once)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 20, t, 0);
    feed_late(e, "nh3_n", t + 5 * MINUTE, 20, t + 5 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 0);
    feed_late(e, "nh3_n", t - 10 * MINUTE, 20, t + 6 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1);
    assert_alert(0, IW_ALERT_FIRING, t, t - 10 * MINUTE, false);
    feed_late(e, "nh3_n", t + 7 * MINUTE, 20, t + 7 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1, "the live instance took the episode over");
    feed_late(e, "nh3_n", t + 8 * MINUTE, 1, t + 8 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(1, IW_ALERT_RESOLVED, t + 8 * MINUTE, t - 10 * MINUTE, false);
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* The episode a late sample hands to the live instance is the live
 * instance's own from then on: its record survives a restart. */
Test(rules, late_episode_taken_over_by_the_live_instance_survives_a_restart)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    feed_late(e, "nh3_n", t, 20, t, 0);
    feed_late(e, "nh3_n", t - 10 * MINUTE, 20, t + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(env.n_state, 1);
    cr_assert_not_null(strstr(env.vals[0], env.alerts[0]->id), "record: %s", env.vals[0]);
    e = fx_restart(e, &env, &cfg.cfg, t + 2 * MINUTE);
    feed_late(e, "nh3_n", t + 3 * MINUTE, 20, t + 3 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1, "restored firing: no re-fire");
    feed_late(e, "nh3_n", t + 4 * MINUTE, 1, t + 4 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(1, IW_ALERT_RESOLVED, t + 4 * MINUTE, t - 10 * MINUTE, false);
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* A device-level flag instance replays every series of the device it needs
 * (the late samples', those flagged now, those seen feeding it): ph was
 * flagged in the past, not now, and its episode must be seen by the replay. */
Test(rules, late_flag_on_a_device_level_instance_reads_each_series)
{
    const int64_t t = T0 + 3 * HOUR, b = t - 2 * HOUR;
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rsample s[4];
    struct iw_rules_engine *e;

    r->p.flags = (1u << ('D' - 'A')) | (1u << ('B' - 'A'));
    e = engine(T0);
    feed_late(e, "ph", b - MINUTE, 7, b - MINUTE, 'B');          /* before the outage */
    feed_late(e, "ph", b + 30 * MINUTE, 7, b + 30 * MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 2);
    feed_late(e, "nh3_n", t, 1, t, 'N');
    /* The backlog: nh3_n faulty from b to b+40m while ph was B until b+30m. */
    s[0] = fx_sample("water", "s1", "w01", "nh3_n", b + 10 * MINUTE, 1);
    s[1] = fx_sample("water", "s1", "w01", "nh3_n", b + 40 * MINUTE, 1);
    s[2] = fx_sample("water", "s1", "w01", "nh3_n", b + 50 * MINUTE, 1);
    s[3] = fx_sample("water", "s1", "w01", "nh3_n", b, 1);
    for (int i = 0; i < 4; i++) {
        s[i].recv_ms = t + MINUTE;
        s[i].flag = i == 2 ? 'N' : 'D';
    }
    fx_feed_stored(e, &env, s, 4);
    /* ph's B episode (b-1m .. b+30m) was live; nh3_n's D from b is the same
     * condition of the device until b+30m, and goes on alone until b+50m. */
    cr_assert_eq(env.n_alerts, 2, "overlaps the live episode: nothing new");
    feed_late(e, "ph", b + 45 * MINUTE, 7, t + 2 * MINUTE, 'B');     /* late too */
    cr_assert_eq(env.n_alerts, 2, "inside what the late data already made one condition");
    iw_rules_engine_free(e);
}

/* An episode the live timeline already published is not published again when
 * a redelivered or gap-filling sample of it arrives late. */
Test(rules, late_sample_inside_a_past_live_episode_publishes_nothing)
{
    struct iw_rules_engine *e;

    nh3_rule(10, 10 * MINUTE);
    e = engine(T0);
    for (int i = 0; i <= 20; i += 2)             /* breaching 0..20 min: fires at 10 */
        feed_late(e, "nh3_n", T0 + i * MINUTE, 20, T0 + i * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + 22 * MINUTE, 5, T0 + 22 * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + 3 * HOUR, 5, T0 + 3 * HOUR, 0);
    cr_assert_eq(env.n_alerts, 2);
    feed_late(e, "nh3_n", T0 + 5 * MINUTE, 20, T0 + 3 * HOUR, 0);      /* fills a gap */
    feed_late(e, "nh3_n", T0 + 6 * MINUTE, 20, T0 + 3 * HOUR, 0);      /* redelivered */
    cr_assert_eq(env.n_alerts, 2);
    iw_rules_engine_free(e);
}

/* A backlog of one-sample messages after a day of data must not replay the
 * whole day for each: once the late evaluation cannot differ from what the
 * live timeline decided, it stops reading. */
Test(rules, late_evaluation_stops_reading_once_it_agrees_with_the_past)
{
    const int64_t t = T0 + 24 * HOUR;
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    for (int64_t i = 0; i <= 24 * 60; i++)
        if (i < 60 || i > 120)                  /* an hour missing, 23 h ago */
            feed_late(e, "nh3_n", T0 + i * MINUTE, 5, T0 + i * MINUTE, 0);
    env.served = 0;
    feed_late(e, "nh3_n", T0 + 90 * MINUTE, 20, t, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, T0 + 90 * MINUTE, T0 + 90 * MINUTE, true);
    assert_alert(1, IW_ALERT_RESOLVED, T0 + 121 * MINUTE, T0 + 90 * MINUTE, true);
    cr_assert_lt(env.served, 200, "read %zu points for one late sample", env.served);
    iw_rules_engine_free(e);
}

/* SPEC §2, no alert storm after a reconnect: a QoS 1 message redelivered
 * after the ones behind it is older than what the instance evaluated; when it
 * alone made the last episode, that episode is not published again. */
Test(rules, redelivered_sample_does_not_republish_the_episode_it_made)
{
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    feed_late(e, "nh3_n", T0, 20, T0, 0);
    feed_late(e, "nh3_n", T0 + MINUTE, 5, T0 + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    feed_late(e, "nh3_n", T0, 20, T0 + MINUTE + SEC, 0);          /* redelivered */
    cr_assert_eq(env.n_alerts, 2);
    iw_rules_engine_free(e);
}

/* Dense data: a late sample of a plain threshold rests on the value before
 * it, so the replay starts a few points back, not hours. */
Test(rules, late_evaluation_of_dense_data_reads_a_few_points)
{
    struct iw_rules_engine *e;

    nh3_rule(10, 0);
    e = engine(T0);
    for (int64_t i = 0; i < 3 * 360; i++)       /* 3 h every 10 s, one missing */
        if (i != 540)
            feed_late(e, "nh3_n", T0 + i * 10 * SEC, 5, T0 + i * 10 * SEC, 0);
    env.served = 0;
    feed_late(e, "nh3_n", T0 + 5400 * SEC, 20, T0 + 3 * HOUR, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, T0 + 5400 * SEC, T0 + 5400 * SEC, true);
    assert_alert(1, IW_ALERT_RESOLVED, T0 + 5410 * SEC, T0 + 5400 * SEC, true);
    cr_assert_lt(env.served, 40, "read %zu points for one late sample", env.served);
    iw_rules_engine_free(e);
}

Test(rules, late_windowed_threshold_evaluates_its_own_window)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rules_engine *e;
    struct iw_rule *r = nh3_rule(10, 0);

    r->p.window_agg = IW_AGG_AVG;
    r->p.window_ms = 3 * MINUTE;
    e = engine(T0);
    feed_late(e, "nh3_n", t - 2 * HOUR, 8, t - 2 * HOUR, 0);      /* before the outage */
    feed_late(e, "nh3_n", t, 5, t, 0);
    feed_late(e, "nh3_n", t - 2 * HOUR + MINUTE, 14, t + MINUTE, 0);   /* avg 11 */
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, t - 2 * HOUR + MINUTE, t - 2 * HOUR + MINUTE, true);
    cr_assert_eq(env.alerts[0]->value, 11);
    assert_alert(1, IW_ALERT_RESOLVED, t, t - 2 * HOUR + MINUTE, true);
    iw_rules_engine_free(e);
}

Test(rules, late_hysteresis_and_clear_for_run_on_sample_time)
{
    const int64_t t = T0 + 3 * HOUR, b = t - 2 * HOUR;
    static const double v[8] = { 12, 9, 9, 7, 9, 7, 7, 7 };   /* clear_below 8 for 2 min */
    struct iw_rsample s[8];
    struct iw_rules_engine *e;
    struct iw_rule *r = nh3_rule(10, 0);

    r->p.has_clear_below = true;
    r->p.clear_below = 8;
    r->p.clear_for_ms = 2 * MINUTE;
    e = engine(T0);
    feed_late(e, "nh3_n", t, 5, t, 0);
    for (int i = 0; i < 8; i++) {
        s[i] = fx_sample("water", "s1", "w01", "nh3_n", b + i * MINUTE, v[i]);
        s[i].recv_ms = t + MINUTE;
    }
    fx_feed_stored(e, &env, s, 8);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, b, b, true);
    /* 9 is in the band; 7 at b+3m starts clear_for, 9 at b+4m stops it, 7 from b+5m */
    assert_alert(1, IW_ALERT_RESOLVED, b + 7 * MINUTE, b, true);
    iw_rules_engine_free(e);
}

/*
 * A backlog the store took before the rules reached it: judged message by
 * message, each saw the next ones stored and the episode was never
 * published. Deferred (iw_rules_defer_late), the whole backlog is judged at
 * the flush, once; work still deferred when the engine is freed is dropped.
 */
Test(rules, a_deferred_backlog_stored_ahead_of_the_rules_raises_its_episode_once)
{
    struct iw_rules_engine *e;
    const int64_t old = T0 - 2 * HOUR;

    nh3_rule(1.5, 0);
    e = engine(T0);
    iw_rules_defer_late(e, true);
    feed_late(e, "nh3_n", T0, 1.0, T0, 0);                  /* live, after an outage */
    for (int i = 0; i <= 10; i++)                           /* all stored first */
        fx_history_add(&env, "water/s1/w01/nh3_n", old + i * MINUTE, i < 10 ? 2.0 : 1.0, 0);
    for (int i = 0; i <= 10; i++) {
        struct iw_rsample s = fx_sample("water", "s1", "w01", "nh3_n", old + i * MINUTE,
                                        i < 10 ? 2.0 : 1.0);
        s.recv_ms = T0 + SEC;
        iw_rules_on_sample(e, &s);
    }
    cr_assert_eq(env.n_alerts, 0, "judged before the flush");
    cr_assert_eq(iw_rules_late_since(e), T0 + SEC);
    cr_assert(iw_rules_flush_late(e));
    cr_assert_eq(env.n_alerts, 2, "alerts: %zu", env.n_alerts);
    assert_alert(0, IW_ALERT_FIRING, old, old, true);
    assert_alert(1, IW_ALERT_RESOLVED, old + 10 * MINUTE, old, true);
    cr_assert_not(iw_rules_flush_late(e), "nothing left");
    cr_assert_eq(iw_rules_late_since(e), INT64_MIN);
    /* Deferred work at free is dropped without a leak (ASan). */
    feed_late(e, "nh3_n", old - HOUR, 2.0, T0 + 2 * SEC, 0);
    iw_rules_engine_free(e);
    cr_assert_eq(env.n_alerts, 2);
}

/* SPEC §1 and §4: for: and clear_for: run on sample time, so a late sample
 * that breaks a run the live instance is timing restarts it, as backtest
 * over the same stored data does: no firing 5 minutes after a run the data
 * show broken, no resolve before clear_for: of clear data. */
Test(rules, a_late_sample_that_breaks_a_for_run_restarts_it)
{
    struct iw_rules_engine *e;

    nh3_rule(1.5, 5 * MINUTE);
    e = engine(T0);
    feed_late(e, "nh3_n", T0, 1.6, T0, 0);
    feed_late(e, "nh3_n", T0 + 2 * MINUTE, 1.6, T0 + 2 * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + 4 * MINUTE, 1.6, T0 + 4 * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + MINUTE, 1.0, T0 + 4 * MINUTE + SEC, 0);   /* breaks the run */
    cr_assert_eq(env.n_alerts, 0);
    feed_late(e, "nh3_n", T0 + 5 * MINUTE, 1.6, T0 + 5 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 0, "fired on a run the stored 1.0 at 1m broke");
    feed_late(e, "nh3_n", T0 + 7 * MINUTE, 1.6, T0 + 7 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1);
    assert_alert(0, IW_ALERT_FIRING, T0 + 7 * MINUTE, T0 + 2 * MINUTE, false);
    /* A late 1.0 before every sample of the run changes nothing. */
    feed_late(e, "nh3_n", T0 - MINUTE, 1.0, T0 + 7 * MINUTE + SEC, 0);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_engine_free(e);
}

Test(rules, a_late_sample_that_breaks_a_clear_for_run_restarts_it)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = nh3_rule(1.5, 0);

    r->p.has_clear_below = true;
    r->p.clear_below = 1.2;
    r->p.clear_for_ms = 5 * MINUTE;
    e = engine(T0);
    feed_late(e, "nh3_n", T0, 1.6, T0, 0);
    cr_assert_eq(env.n_alerts, 1);
    for (int m = 6; m <= 10; m++)                   /* clear since 6m, 8m missing */
        if (m != 8)
            feed_late(e, "nh3_n", T0 + m * MINUTE, 1.0, T0 + m * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + 7 * MINUTE, 1.6, T0 + 10 * MINUTE + 30 * SEC, 0);
    feed_late(e, "nh3_n", T0 + 11 * MINUTE, 1.0, T0 + 11 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1, "resolved on a clear run the stored 1.6 at 7m broke");
    feed_late(e, "nh3_n", T0 + 12 * MINUTE, 1.0, T0 + 12 * MINUTE, 0);
    feed_late(e, "nh3_n", T0 + 13 * MINUTE, 1.0, T0 + 13 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 1, "clear since 9m: 5 minutes at 14m");
    feed_late(e, "nh3_n", T0 + 14 * MINUTE, 1.0, T0 + 14 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(1, IW_ALERT_RESOLVED, T0 + 14 * MINUTE, T0, false);
    iw_rules_engine_free(e);
}

Test(rules, late_flag_raises_and_resolves_on_its_own_time)
{
    const int64_t t = T0 + 3 * HOUR;
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;

    r->p.flags = 1u << ('D' - 'A');
    e = engine(T0);
    feed_late(e, "nh3_n", t, 1, t, 'N');
    feed_late(e, "nh3_n", t - 2 * HOUR, 1, t + MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, t - 2 * HOUR, t - 2 * HOUR, true);
    cr_assert_not_null(strstr(env.alerts[0]->details, "\"nh3_n\":\"D\""), "%s",
                       env.alerts[0]->details);
    assert_alert(1, IW_ALERT_RESOLVED, t, t - 2 * HOUR, true);
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    feed_late(e, "nh3_n", t + MINUTE, 1, t + MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 3, "the live instance stayed inactive");
    assert_alert(2, IW_ALERT_FIRING, t + MINUTE, t + MINUTE, false);
    iw_rules_engine_free(e);
}

Test(rules, late_rate_raises_and_resolves_on_its_own_time)
{
    const int64_t b = T0 + HOUR, t = b + 2 * HOUR;
    struct iw_rule *r = fx_rule(&cfg, "r", IW_RULE_RATE, "water/*/*/turbidity");
    struct iw_rules_engine *e;

    r->p.has_rise = true;
    r->p.rise = 5;                  /* per minute */
    e = engine(T0);
    feed_late(e, "turbidity", b, 0, b, 0);
    feed_late(e, "turbidity", t, 0, t, 0);
    cr_assert_eq(env.n_alerts, 0);
    feed_late(e, "turbidity", b + MINUTE, 10, t + MINUTE, 0);   /* +10 in a minute */
    cr_assert_eq(env.n_alerts, 2);
    assert_alert(0, IW_ALERT_FIRING, b + MINUTE, b + MINUTE, true);
    cr_assert_eq(env.alerts[0]->value, 10);
    assert_alert(1, IW_ALERT_RESOLVED, t, b + MINUTE, true);
    feed_late(e, "turbidity", t + MINUTE, 1, t + MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2, "the live rate is 0 -> 1: inside the bound");
    iw_rules_engine_free(e);
}

Test(rules, late_samples_mark_the_alert_late)
{
    static const struct { int64_t age; bool late; } cases[] = {
        { 0, false }, { 15 * MINUTE, false }, { 15 * MINUTE + 1, true }, { 6 * HOUR, true },
    };
    for (size_t k = 0; k < IW_ARRAY_LEN(cases); k++) {
        struct iw_rules_engine *e;
        struct iw_rsample s = fx_sample("water", "s1", "w01", "nh3_n", T0, 11);

        fx_cfg_init(&cfg);
        struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
        r->p.has_above = true;
        r->p.above = 10;
        e = engine(T0);
        s.recv_ms = T0 + cases[k].age;
        iw_rules_on_sample(e, &s);
        s.ts = T0 + MINUTE;
        s.recv_ms = T0 + MINUTE;        /* the resolve is live */
        s.value = 1;
        iw_rules_on_sample(e, &s);
        cr_assert_eq(env.n_alerts, 2);
        cr_assert_eq(env.alerts[0]->late, cases[k].late, "age %lld ms", (long long)cases[k].age);
        cr_assert_not(env.alerts[1]->late);
        iw_rules_engine_free(e);
        fx_env_fini(&env);
    }
}

Test(rules, repeat_while_firing_on_wall_clock)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 10;
    r->p.repeat_ms = 10 * MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(iw_rules_next_deadline(e), T0 + 10 * MINUTE);
    iw_rules_tick(e, T0 + 10 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->reason, IW_ALERT_REPEAT);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);
    iw_rules_tick(e, T0 + 20 * MINUTE);
    cr_assert_eq(env.n_alerts, 3);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 21 * MINUTE, 1);
    cr_assert_eq(env.n_alerts, 4);
    iw_rules_tick(e, T0 + 60 * MINUTE);
    cr_assert_eq(env.n_alerts, 4, "no repeat after resolve");
    iw_rules_engine_free(e);
}

/* `repeat:` is no part of the condition (a reload or restart that changes it
 * keeps the episode): the reminders follow the new one, counted from the
 * episode's last message, and stop when it is gone. */
Test(rules, a_changed_repeat_is_followed_across_a_reload_and_a_restart)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;
    struct fx_cfg next;

    r->p.has_above = true;
    r->p.above = 10;
    r->p.repeat_ms = 60 * MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    fx_cfg_copy(&next, &cfg);
    next.rules[0].p.repeat_ms = 10 * MINUTE;
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2, "no reminder 10 min after the firing under repeat: 10m");
    cr_assert_eq(fx_last(&env)->reason, IW_ALERT_REPEAT);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);

    cfg.rules[0].p.repeat_ms = 0;                   /* restart with the repeat removed */
    e = fx_restart(e, &env, &cfg.cfg, T0 + 11 * MINUTE);
    for (int64_t m = 12; m <= 120; m++)
        iw_rules_tick(e, T0 + m * MINUTE);
    cr_assert_eq(env.n_alerts, 2, "%zu reminder(s) after the repeat was removed",
                 env.n_alerts - 2);
    iw_rules_engine_free(e);
}

/* SPEC §2: no alert storm after a reconnect. Reminders of a condition that
 * did not change are not queued while no broker link is up (they would all
 * go out at once when it is back); they resume on their schedule after. */
Test(rules, no_repeats_pile_up_while_the_broker_link_is_down)
{
    struct iw_rule *r = fx_rule(&cfg, "t", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 10;
    r->p.repeat_ms = 10 * MINUTE;
    e = engine(T0);
    iw_rules_set_link(e, true, T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_set_link(e, false, T0 + MINUTE);
    for (int64_t m = 2; m <= 60; m++)
        iw_rules_tick(e, T0 + m * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "%zu repeats queued while the broker was down", env.n_alerts - 1);
    iw_rules_set_link(e, true, T0 + 61 * MINUTE);
    iw_rules_tick(e, T0 + 61 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "a repeat went out as the link came back");
    iw_rules_tick(e, T0 + 70 * MINUTE);
    cr_assert_eq(env.n_alerts, 2, "the repeats resume on their schedule");
    cr_assert_eq(fx_last(&env)->reason, IW_ALERT_REPEAT);
    iw_rules_engine_free(e);
}

Test(rules, silence_marks_but_still_emits)
{
    struct iw_rule *r = fx_rule(&cfg, "camera-offline", IW_RULE_THRESHOLD, "camera/*/*/online");
    struct iw_silence_cfg *s = &cfg.silences[cfg.cfg.n_silences++];
    struct iw_rules_engine *e;

    r->p.has_below = true;
    r->p.below = 1;
    s->match = fx_kv(&cfg, "rule", "camera-*");
    fx_kv(&cfg, "site", "dongtan");
    s->n_match = 2;
    s->from_ms = T0;
    s->to_ms = T0 + HOUR;
    e = engine(T0);
    fx_feed(e, "camera", "dongtan", "c01", "online", T0 + MINUTE, 0);
    fx_feed(e, "camera", "xitan", "c01", "online", T0 + MINUTE, 0);
    fx_feed(e, "camera", "dongtan", "c02", "online", T0 + 2 * HOUR, 0);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert(env.alerts[0]->silenced, "matching site inside the window");
    cr_assert_not(env.alerts[1]->silenced, "other site");
    cr_assert_not(env.alerts[2]->silenced, "after the window");
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * rate
 * ======================================================================== */

/* An alert's value is what a person computes from the samples: TN 1.0 then
 * 1.03 a minute later rises 1.8 per hour, not 1.8000000000000014 (the
 * binary noise of the division). Decisions still use the exact rate. */
Test(rules, rate_value_is_free_of_binary_noise)
{
    struct iw_rule *r = fx_rule(&cfg, "r", IW_RULE_RATE, "water/*/*/tn");
    struct iw_rules_engine *e;

    r->p.has_rise = true;
    r->p.rise = 1;
    r->p.per_ms = 60 * MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "tn", T0, 1.0);
    fx_feed(e, "water", "s1", "w01", "tn", T0 + MINUTE, 1.03);
    cr_assert_eq(env.n_alerts, 1);
    cr_expect_eq(fx_last(&env)->value, 1.8, "value %.17g", fx_last(&env)->value);
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"rate\":1.8,"), "%s", fx_last(&env)->details);
    iw_rules_engine_free(e);
}

/* The same for a windowed average: 0.1 and 0.2 average to 0.15. */
Test(rules, window_average_value_is_free_of_binary_noise)
{
    struct iw_rule *r = fx_rule(&cfg, "w", IW_RULE_THRESHOLD, "water/*/*/tp");
    struct iw_rules_engine *e;

    r->p.has_above = true;
    r->p.above = 0.14;
    r->p.window_agg = IW_AGG_AVG;
    r->p.window_ms = 60 * MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "tp", T0, 0.1);
    fx_feed(e, "water", "s1", "w01", "tp", T0 + MINUTE, 0.2);
    cr_assert_eq(env.n_alerts, 1);
    cr_expect_eq(fx_last(&env)->value, 0.15, "value %.17g", fx_last(&env)->value);
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"value\":0.15,"), "%s", fx_last(&env)->details);
    iw_rules_engine_free(e);
}

/* `above` is strict, and a window average or a rate equal to the bound in
 * decimal is equal in the comparison too: two samples of 0.1, five of 0.5
 * and three of 0.1 average 0.3 (summed in binary, 0.30000000000000004); 0.7 to 0.9 in a
 * minute is a rise of 0.2 (in binary, 0.20000000000000007). Neither fires. */
Test(rules, a_window_average_or_rate_equal_to_its_bound_does_not_fire)
{
    struct iw_rule *r = fx_rule(&cfg, "w", IW_RULE_THRESHOLD, "water/*/*/tp");
    struct iw_rule *q = fx_rule(&cfg, "r", IW_RULE_RATE, "water/*/*/nh3_n");
    struct iw_rules_engine *e;
    static const double tp[] = { 0.1, 0.1, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5,
                                 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1 };

    r->p.has_above = true;
    r->p.above = 0.3;
    r->p.window_agg = IW_AGG_AVG;
    r->p.window_ms = 10 * MINUTE;
    q->p.has_rise = true;
    q->p.rise = 0.2;
    e = engine(T0);
    for (int i = 0; i < 20; i++)       /* the windows ending at 12-14 min */
        fx_feed(e, "water", "s1", "w01", "tp", T0 + i * MINUTE, tp[i]);
    cr_assert_eq(env.n_alerts, 0, "an average of 0.3 is not above 0.3: %s",
                 env.n_alerts ? fx_last(&env)->message : "");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 0.7);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + MINUTE, 0.9);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 1.1);
    cr_assert_eq(env.n_alerts, 0, "a rise of 0.2 a minute is not beyond 0.2: %s",
                 env.n_alerts ? fx_last(&env)->message : "");
    iw_rules_engine_free(e);
}

Test(rules, rate_rise_and_fall)
{
    struct iw_rule *r = fx_rule(&cfg, "r", IW_RULE_RATE, "water/*/*/turbidity");
    struct iw_rules_engine *e;
    static const struct step steps[] = {
        { 0, 0, '-' }, { 60, 3, '-' }, { 120, 10, 'F' }, { 180, 12, 'R' }, { 210, 5, 'F' },
        { 270, 5, 'R' },
    };

    r->p.has_rise = true;
    r->p.rise = 5;              /* per minute */
    r->p.has_fall = true;
    r->p.fall = 10;
    e = engine(T0);
    for (size_t i = 0; i < IW_ARRAY_LEN(steps); i++) {
        size_t before = env.n_alerts;
        fx_feed(e, "water", "s1", "w01", "turbidity", T0 + steps[i].t * SEC, steps[i].v);
        cr_assert_eq(env.n_alerts, before + (steps[i].ex != '-'), "step %zu", i);
    }
    cr_assert_eq(env.alerts[0]->value, 7, "rate per minute of 3 -> 10");
    cr_assert_eq(env.alerts[0]->threshold, 5);
    cr_assert_eq(env.alerts[2]->value, -14, "12 -> 5 in 30 s is -14 per minute");
    cr_assert_eq(env.alerts[2]->threshold, -10);
    iw_rules_engine_free(e);
}

/* SPEC §2: the same (series, ts) again replaces the value; a rate rule
 * follows the correction as the store does: the first sample's becomes the
 * base, the last one's is evaluated again in its place. */
Test(rules, rate_follows_a_value_corrected_at_the_same_time)
{
    struct iw_rule *r = fx_rule(&cfg, "r", IW_RULE_RATE, "water/*/*/ph");
    struct iw_rules_engine *e;

    r->p.has_rise = true;
    r->p.rise = 1;              /* per minute */
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "ph", T0, 7);
    fx_feed(e, "water", "s1", "w01", "ph", T0, 9);          /* corrected: 9 at T0 */
    fx_feed(e, "water", "s1", "w01", "ph", T0 + MINUTE, 9.5);
    cr_assert_eq(env.n_alerts, 0, "the rate came from the replaced 7: %s",
                 env.n_alerts ? fx_last(&env)->message : "");
    fx_feed(e, "water", "s1", "w01", "ph", T0 + MINUTE, 11);   /* 9 -> 11: fires */
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_assert_eq(fx_last(&env)->value, 2);
    fx_feed(e, "water", "s1", "w01", "ph", T0 + MINUTE, 9.4);  /* corrected back: resolves */
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, T0 + MINUTE);
    fx_feed(e, "water", "s1", "w01", "ph", T0 + MINUTE, 9.4);  /* a redelivery: nothing */
    fx_feed(e, "water", "s1", "w01", "ph", T0 + 2 * MINUTE, 9.6);
    cr_assert_eq(env.n_alerts, 2, "the base is 9.4: %s", fx_last(&env)->message);
    iw_rules_engine_free(e);
}

/* SPEC §4: an instance's messages describe one condition. A fall that
 * resolves because the value turned upwards keeps the fall limit as its
 * threshold (it was null: the rate's sign picked the rise limit, unset),
 * across a restart too. */
Test(rules, rate_resolve_names_the_limit_its_firing_crossed)
{
    struct iw_rule *r = fx_rule(&cfg, "drop", IW_RULE_RATE, "water/*/*/do");
    struct iw_rules_engine *e;

    r->p.has_fall = true;
    r->p.fall = 2;              /* per minute */
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "do", T0, 10);
    fx_feed(e, "water", "s1", "w01", "do", T0 + MINUTE, 7);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert(env.alerts[0]->has_threshold && env.alerts[0]->threshold == -2);
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);
    fx_feed(e, "water", "s1", "w01", "do", T0 + 2 * MINUTE, 8);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.alerts[1]->status, IW_ALERT_RESOLVED);
    cr_assert(env.alerts[1]->has_threshold, "the resolve lost its threshold");
    cr_assert_eq(env.alerts[1]->threshold, -2);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * absence
 * ======================================================================== */

Test(rules, absence_of_a_silent_device)
{
    struct iw_rule *r = fx_rule(&cfg, "cam-gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;
    struct iw_rsample s = fx_sample("camera", "s1", "c01", "online", T0, 1);

    r->p.after_ms = 3 * MINUTE;
    r->p.severity = IW_SEV_MAJOR;
    e = engine(T0);
    iw_rules_tick(e, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 0, "an unknown device is never absent");
    s.ts = s.recv_ms = T0 + HOUR;
    iw_rules_on_sample(e, &s);
    s.ts = s.recv_ms = T0 + HOUR + MINUTE;
    iw_rules_on_sample(e, &s);
    iw_rules_tick(e, T0 + HOUR + 4 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 0);
    iw_rules_tick(e, T0 + HOUR + 4 * MINUTE);
    cr_assert_eq(env.n_alerts, 1);
    const struct iw_alert *a = fx_last(&env);
    cr_assert_eq(a->kind, IW_RULE_ABSENCE);
    cr_assert_eq(a->ts, T0 + HOUR + 4 * MINUTE, "ts is last_seen + after");
    cr_assert_eq(a->started_at, T0 + HOUR + MINUTE, "started_at is the last message");
    cr_assert_null(a->metric);
    cr_assert_not(a->has_value);
    iw_rules_tick(e, T0 + 3 * HOUR);
    cr_assert_eq(env.n_alerts, 1, "fires once");
    s.ts = T0 + HOUR;                   /* buffered data: resolves at receipt, not late */
    s.recv_ms = T0 + 3 * HOUR + 5;
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, T0 + 3 * HOUR + 5);
    cr_assert_not(fx_last(&env)->late);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/*
 * A retained heartbeat comes again at every SUBSCRIBE (restart, reconnect,
 * reload): it is the device's old message, not the device reporting, so it
 * neither resolves a firing absence nor pushes the deadline of a known device.
 * It still makes an unknown device known.
 */
Test(rules, a_retained_copy_of_an_old_message_does_not_resolve_an_absence)
{
    struct iw_rule *r = fx_rule(&cfg, "cam-gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;
    struct iw_rsample s = fx_sample("camera", "s1", "c01", "online", T0, 1);

    r->p.after_ms = 3 * MINUTE;
    e = engine(T0);
    s.retained = true;                  /* the first sight of c01 is its retained copy */
    iw_rules_on_sample(e, &s);
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "a device known from its retained message can be absent");
    s.recv_ms = T0 + 10 * MINUTE;       /* the same message, sent again at a resubscribe */
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 1, "a retained copy resolved the absence: %s",
                 env.n_alerts > 1 ? fx_last(&env)->message : "");
    s.retained = false;                 /* the device itself reports */
    s.ts = s.recv_ms = T0 + 11 * MINUTE;
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    s.retained = true;                  /* a known device: its retained copy is no heartbeat */
    s.recv_ms = T0 + 13 * MINUTE;
    iw_rules_on_sample(e, &s);
    iw_rules_tick(e, T0 + 14 * MINUTE);
    cr_assert_eq(env.n_alerts, 3, "the retained copy pushed the deadline of a silent device");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    iw_rules_engine_free(e);
}

/* While the broker link is down no absence fires; once back, a full `after`. */
Test(rules, absence_waits_for_the_broker_link)
{
    struct iw_rule *r = fx_rule(&cfg, "cam-gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;
    struct iw_rsample s = fx_sample("camera", "s1", "c01", "online", T0, 1);

    r->p.after_ms = 3 * MINUTE;
    fx_device(&cfg, "camera", "s1", "c02");         /* never seen */
    e = engine(T0);
    iw_rules_on_sample(e, &s);
    iw_rules_set_link(e, false, T0 + MINUTE);
    iw_rules_tick(e, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 0, "absence fired while the link was down");
    cr_assert_eq(iw_rules_next_deadline(e), INT64_MAX, "nothing is due while down");
    iw_rules_set_link(e, true, T0 + HOUR);
    iw_rules_set_link(e, true, T0 + HOUR + MINUTE); /* no change: the grace stays */
    cr_assert_eq(iw_rules_next_deadline(e), T0 + HOUR + 3 * MINUTE);
    iw_rules_tick(e, T0 + HOUR + 3 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 0, "a full after from the link's return");
    iw_rules_tick(e, T0 + HOUR + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 2, "both devices, once the link is back and they stay silent");
    iw_rules_engine_free(e);
}

Test(rules, absence_of_a_never_seen_inventory_device)
{
    struct iw_rule *r = fx_rule(&cfg, "cam-gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;

    r->p.after_ms = 3 * MINUTE;
    fx_device(&cfg, "camera", "s1", "c01");
    fx_device(&cfg, "camera", "s1", "c02");
    fx_device(&cfg, "water", "s1", "w01");          /* not selected */
    env.owned_device = "c01";                       /* c02 belongs to another shard */
    e = engine(T0);
    cr_assert_eq(iw_rules_next_deadline(e), T0 + 3 * MINUTE);
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "exactly one shard raises it");
    cr_assert_str_eq(fx_last(&env)->device, "c01");
    cr_assert_eq(fx_last(&env)->started_at, T0, "counted from the engine start");
    cr_assert_not_null(strstr(fx_last(&env)->details, "\"last_seen\":null"));
    iw_rules_engine_free(e);
}

Test(rules, absence_with_a_metric_select_only_counts_that_metric)
{
    struct iw_rule *r = fx_rule(&cfg, "hb", IW_RULE_ABSENCE, "camera/*/*/online");
    struct iw_rules_engine *e;

    r->p.after_ms = MINUTE;
    e = engine(T0);
    fx_feed(e, "camera", "s1", "c01", "online", T0, 1);
    fx_feed(e, "camera", "s1", "c01", "fps", T0 + 50 * SEC, 25);
    iw_rules_tick(e, T0 + MINUTE);
    cr_assert_eq(env.n_alerts, 1);
    iw_rules_engine_free(e);
}

/*
 * A message that stored no sample (only labels) is a message from the device:
 * it resolves an absence and makes a device known, for 3-level selects only,
 * and no other rule sees it.
 */
Test(rules, a_message_without_samples_is_a_sign_of_life_for_absence_only)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rule *r4 = fx_rule(&cfg, "gone-online", IW_RULE_ABSENCE, "camera/*/*/*");
    struct iw_rule *t = fx_rule(&cfg, "anything-low", IW_RULE_THRESHOLD, "camera/*/*");
    struct iw_rsample alive = { .source = "camera", .site = "s1", .device = "c01", .metric = "",
                                .ts = T0, .recv_ms = T0, .alive = true };
    struct iw_rules_stats st;

    r->p.after_ms = r4->p.after_ms = 3 * MINUTE;
    t->p.below = 5;
    t->p.has_below = true;
    e = engine(T0);
    iw_rules_on_sample(e, &alive);
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.instances, 1, "only the 3-level absence rule takes it");
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "the device became known");
    cr_assert_str_eq(fx_last(&env)->rule, "gone");
    alive.ts = alive.recv_ms = T0 + 5 * MINUTE;
    iw_rules_on_sample(e, &alive);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED, "the next message resolves it");
    iw_rules_engine_free(e);
}

/*
 * A device that reported before an absence rule existed is known to it (the
 * store holds its series), from the moment the rule takes effect: its `after`
 * counts from then, so a new rule raises no burst of alerts for devices that
 * went quiet long ago, and an unchanged rule's devices keep their deadlines.
 */
Test(rules, absence_knows_the_devices_in_the_store_from_when_the_rule_takes_effect)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");

    r->p.after_ms = 3 * MINUTE;
    env.stored[env.n_stored++] = "camera/s1/c01/online";
    env.stored[env.n_stored++] = "camera/s1/c01/fps";
    env.stored[env.n_stored++] = "water/s1/w01/ph";          /* not selected */
    e = engine(T0);
    cr_assert_eq(iw_rules_next_deadline(e), T0 + 3 * MINUTE, "counted from the engine start");
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "the stored camera is absent, once");
    cr_assert_str_eq(fx_last(&env)->device, "c01");
    cr_assert_eq(fx_last(&env)->started_at, T0);
    fx_feed(e, "camera", "s1", "c01", "online", T0 + HOUR - MINUTE, 1);   /* resolves */
    cr_assert_eq(env.n_alerts, 2);

    /* A reload adds a rule: c01 is known to it from the reload; the unchanged
     * rule keeps c01's deadline (its last message + after). */
    fx_cfg_copy(&next, &cfg);
    struct iw_rule *r2 = fx_rule(&next, "gone-too", IW_RULE_ABSENCE, "camera/s1/*/online");
    r2->p.after_ms = 5 * MINUTE;
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + HOUR), IW_OK);
    iw_rules_tick(e, T0 + HOUR + 2 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 2);
    iw_rules_tick(e, T0 + HOUR + 2 * MINUTE);
    cr_assert_eq(env.n_alerts, 3, "the unchanged rule kept c01's deadline");
    cr_assert_str_eq(fx_last(&env)->rule, "gone");
    iw_rules_tick(e, T0 + HOUR + 5 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 3, "a new rule counts from when it took effect: %s",
                 fx_last(&env)->message);
    iw_rules_tick(e, T0 + HOUR + 5 * MINUTE);
    cr_assert_eq(env.n_alerts, 4, "the new rule watches the stored camera");
    cr_assert_str_eq(fx_last(&env)->rule, "gone-too");
    cr_assert_str_eq(fx_last(&env)->device, "c01");
    cr_assert_eq(fx_last(&env)->started_at, T0 + HOUR);
    cr_assert_not_null(strstr(fx_last(&env)->message, "since this rule took effect"),
                       "%s", fx_last(&env)->message);
    iw_rules_engine_free(e);
}

/* An inventory device added by a reload (with its rule or to an existing
 * rule) counts from the reload, not from the engine start. */
Test(rules, absence_of_an_inventory_device_added_by_reload_counts_from_the_reload)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;

    e = engine(T0);
    fx_cfg_copy(&next, &cfg);
    struct iw_rule *r = fx_rule(&next, "gone", IW_RULE_ABSENCE, "camera/*/*");
    r->p.after_ms = 3 * MINUTE;
    fx_device(&next, "camera", "s1", "c09");
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + HOUR), IW_OK);
    iw_rules_tick(e, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 0, "fired at once for a device the rule had just been told of");
    iw_rules_tick(e, T0 + HOUR + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->started_at, T0 + HOUR);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * event
 * ======================================================================== */

static void feed_event(struct iw_rules_engine *e, const char *dev, const char *type, int64_t ts,
                       int64_t recv, bool start)
{
    struct iw_rsample s = fx_sample("camera_event", "s1", dev, type, ts, start ? 1 : 0);
    s.is_event = true;
    s.recv_ms = recv;
    iw_rules_on_sample(e, &s);
}

/* SPEC §4's select is "<source>/<site>/<device>[/<metric>]": an event rule's
 * 4th level is the event type, a match of its own. */
Test(rules, an_event_select_of_four_levels_names_the_event_type)
{
    struct iw_rules_engine *e;

    fx_rule(&cfg, "disk", IW_RULE_EVENT, "camera_event/*/*/disk_*");
    e = engine(T0);
    feed_event(e, "c01", "motion", T0, T0, true);
    feed_event(e, "c01", "tamper", T0, T0, true);
    cr_assert_eq(env.n_alerts, 0, "another type raised the disk rule");
    feed_event(e, "c01", "disk_fault", T0 + MINUTE, T0 + MINUTE, true);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(fx_last(&env)->metric, "disk_fault");
    feed_event(e, "c01", "disk_fault", T0 + 2 * MINUTE, T0 + 2 * MINUTE, false);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_engine_free(e);
}

Test(rules, event_start_stop_and_auto_resolve)
{
    struct iw_rule *r = fx_rule(&cfg, "tamper", IW_RULE_EVENT, "camera_event/*/*");
    struct iw_rules_engine *e;

    r->p.match = fx_kv(&cfg, "type", "tamper");
    r->p.n_match = 1;
    r->p.auto_resolve_ms = 10 * MINUTE;
    r->p.severity = IW_SEV_CRITICAL;
    e = engine(T0);
    feed_event(e, "c01", "motion", T0, T0, true);
    cr_assert_eq(env.n_alerts, 0, "type does not match");
    feed_event(e, "c01", "tamper", T0, T0, true);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(fx_last(&env)->metric, "tamper");
    cr_assert_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    feed_event(e, "c01", "tamper", T0 + MINUTE, T0 + MINUTE, false);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_not_null(strstr(fx_last(&env)->details, "\"state\":\"stop\""));
    iw_rules_tick(e, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 2, "a stopped event has no auto_resolve");

    feed_event(e, "c02", "tamper", T0 + HOUR, T0 + HOUR, true);
    feed_event(e, "c02", "tamper", T0 + HOUR + 5 * MINUTE, T0 + HOUR + 5 * MINUTE, true);
    iw_rules_tick(e, T0 + HOUR + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 3, "a second start extends auto_resolve");
    iw_rules_tick(e, T0 + HOUR + 15 * MINUTE);
    cr_assert_eq(env.n_alerts, 4);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, T0 + HOUR + 15 * MINUTE);
    cr_assert_not_null(strstr(fx_last(&env)->details, "\"state\":\"auto_resolve\""));
    feed_event(e, "c02", "tamper", T0 + HOUR + 16 * MINUTE, T0 + HOUR + 16 * MINUTE, false);
    cr_assert_eq(env.n_alerts, 4, "a stop after auto_resolve changes nothing");
    iw_rules_engine_free(e);
}

/*
 * A backlog after an outage: a start 20 minutes old is judged on its own
 * time. Its auto_resolve ends at ts + auto_resolve, published late, a few
 * seconds of wall clock after it arrived (time for the rest of the backlog);
 * a stop in the backlog before that still resolves it; a later start of the
 * backlog ends the first episode at its auto_resolve and raises a new one.
 * A live start keeps its auto_resolve on the wall clock from its receipt.
 */
Test(rules, the_auto_resolve_of_a_late_event_runs_on_its_own_time)
{
    struct iw_rule *r = fx_rule(&cfg, "tamper", IW_RULE_EVENT, "camera_event/*/*");
    struct iw_rules_engine *e;
    int64_t now = T0 + HOUR, old = now - 20 * MINUTE;

    r->p.match = fx_kv(&cfg, "type", "tamper");
    r->p.n_match = 1;
    r->p.auto_resolve_ms = 30 * 1000;
    e = engine(now);
    feed_event(e, "c01", "tamper", old, now, true);
    cr_assert_eq(env.n_alerts, 1);
    cr_expect(fx_last(&env)->late);
    iw_rules_tick(e, now + 4000);
    cr_assert_eq(env.n_alerts, 1, "the backlog gets a few seconds to bring the stop");
    iw_rules_tick(e, now + 5000);
    cr_assert_eq(env.n_alerts, 2);
    cr_expect_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_expect_eq(fx_last(&env)->ts, old + 30 * 1000, "resolved at ts + auto_resolve");
    cr_expect(fx_last(&env)->late, "and published as late");
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"state\":\"auto_resolve\""));

    feed_event(e, "c02", "tamper", old, now, true);
    feed_event(e, "c02", "tamper", old + 10 * 1000, now + 10, false);
    cr_assert_eq(env.n_alerts, 4);
    cr_expect_eq(fx_last(&env)->ts, old + 10 * 1000, "a stop in the backlog resolves it");
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"state\":\"stop\""));
    iw_rules_tick(e, now + MINUTE);
    cr_assert_eq(env.n_alerts, 4, "and no auto_resolve follows");

    feed_event(e, "c03", "tamper", old, now, true);
    feed_event(e, "c03", "tamper", old + MINUTE, now + 10, true);
    cr_assert_eq(env.n_alerts, 7, "the first episode ended at its auto_resolve, a second began");
    cr_expect_eq(env.alerts[5]->status, IW_ALERT_RESOLVED);
    cr_expect_eq(env.alerts[5]->ts, old + 30 * 1000);
    cr_expect_eq(env.alerts[6]->status, IW_ALERT_FIRING);
    cr_expect_eq(env.alerts[6]->ts, old + MINUTE);

    iw_rules_tick(e, now + 10 + 5000);
    cr_assert_eq(env.n_alerts, 8);
    cr_expect_eq(fx_last(&env)->ts, old + MINUTE + 30 * 1000);

    feed_event(e, "c04", "tamper", now + MINUTE, now + MINUTE + 2000, true);
    iw_rules_tick(e, now + MINUTE + 31 * 1000);
    cr_assert_eq(env.n_alerts, 9, "a live start: auto_resolve from its receipt");
    iw_rules_tick(e, now + MINUTE + 32 * 1000);
    cr_assert_eq(env.n_alerts, 10);
    cr_expect_eq(fx_last(&env)->ts, now + MINUTE + 32 * 1000);
    cr_expect(!fx_last(&env)->late);
    iw_rules_engine_free(e);
}

static void feed_event_stored(struct iw_rules_engine *e, const char *dev, const char *type,
                              int64_t ts, int64_t recv, bool start)
{
    struct iw_rsample s = fx_sample("camera_event", "s1", dev, type, ts, start ? 1 : 0);
    s.is_event = true;
    s.recv_ms = recv;
    fx_feed_stored(e, &env, &s, 1);
}

/*
 * SPEC section 1: late and out-of-order samples are evaluated on their own
 * time. A start delivered after its stop (two buffered messages in the wrong
 * order) is an episode from the start to the stop, published late; a start
 * inside an episode already published, or redelivered, raises nothing more.
 */
Test(rules, an_event_start_delivered_after_its_stop_is_a_late_episode)
{
    struct iw_rule *r = fx_rule(&cfg, "tamper", IW_RULE_EVENT, "camera_event/*/*");
    struct iw_rules_engine *e;
    int64_t now = T0 + 2 * HOUR, t = now - 30 * MINUTE;

    r->p.match = fx_kv(&cfg, "type", "tamper");
    r->p.n_match = 1;
    e = engine(now);
    feed_event_stored(e, "c01", "tamper", t + 3 * MINUTE, now, false);
    cr_assert_eq(env.n_alerts, 0, "a stop alone");
    feed_event_stored(e, "c01", "tamper", t, now + 10, true);
    cr_assert_eq(env.n_alerts, 2, "the start before the stop raised %zu alerts", env.n_alerts);
    assert_alert(0, IW_ALERT_FIRING, t, t, true);
    assert_alert(1, IW_ALERT_RESOLVED, t + 3 * MINUTE, t, true);
    cr_assert_str_eq(env.alerts[1]->id, env.alerts[0]->id);
    cr_expect_not_null(strstr(env.alerts[1]->details, "\"state\":\"stop\""), "%s",
                       env.alerts[1]->details);

    /* A live episode, then a late start inside it: nothing new happened. */
    feed_event_stored(e, "c01", "tamper", now, now, true);
    cr_assert_eq(env.n_alerts, 3);
    feed_event_stored(e, "c01", "tamper", now + MINUTE, now + MINUTE, false);
    cr_assert_eq(env.n_alerts, 4);
    feed_event_stored(e, "c01", "tamper", now + 30 * 1000, now + 2 * MINUTE, true);
    cr_assert_eq(env.n_alerts, 4, "a start inside a published episode raised %zu more",
                 env.n_alerts - 4);
    iw_rules_engine_free(e);
}

/*
 * A camera that publishes its event messages retained: the broker sends the
 * last one again at every SUBSCRIBE (restart, reconnect). That copy is the
 * event already handled: it neither raises an auto-resolved episode again
 * (also after a restart) nor pushes auto_resolve. A retained start not seen
 * before (it began while the daemon was away) still raises.
 */
Test(rules, a_retained_copy_of_a_handled_start_raises_nothing_again)
{
    struct iw_rule *r = fx_rule(&cfg, "tamper", IW_RULE_EVENT, "camera_event/*/*");
    struct iw_rules_engine *e;
    struct iw_rsample s = fx_sample("camera_event", "s1", "c01", "tamper", T0, 1);

    r->p.match = fx_kv(&cfg, "type", "tamper");
    r->p.n_match = 1;
    r->p.auto_resolve_ms = 10 * MINUTE;
    e = engine(T0);
    s.is_event = true;
    s.retained = true;                  /* began while the daemon was away */
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 1, "an unseen retained start raises");
    s.recv_ms = T0 + 5 * MINUTE;        /* sent again at a reconnect */
    iw_rules_on_sample(e, &s);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2, "the retained copy pushed auto_resolve");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    s.recv_ms = T0 + HOUR;              /* and again at a reconnect */
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 2, "the retained copy raised the auto-resolved event again");
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    s.recv_ms = T0 + HOUR + 1;          /* and at a restart: the event handled is remembered */
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 2, "after a restart the retained copy raised the event again");
    s.retained = false;                 /* a new start from the camera */
    s.ts = s.recv_ms = T0 + 2 * HOUR;
    iw_rules_on_sample(e, &s);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * flag
 * ======================================================================== */

static void feed_flag(struct iw_rules_engine *e, const char *metric, int64_t ts, char flag)
{
    struct iw_rsample s = fx_sample("water", "s1", "w01", metric, ts, 1);
    s.flag = flag;
    iw_rules_on_sample(e, &s);
}

/* A device-level flag instance names the metric its episode began on in its
 * firing and in its resolve (which used to carry no metric), across a
 * restart too: a consumer pairs them by (rule, site, device, metric). */
Test(rules, device_level_flag_episode_keeps_its_metric)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;

    r->p.flags = 1u << ('D' - 'A');
    e = engine(T0);
    feed_flag(e, "ph", T0, 'D');
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(env.alerts[0]->metric, "ph");
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);
    feed_flag(e, "ph", T0 + MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(env.alerts[1]->status, IW_ALERT_RESOLVED);
    cr_assert_not_null(env.alerts[1]->metric, "the resolve lost its metric");
    cr_assert_str_eq(env.alerts[1]->metric, "ph");
    iw_rules_engine_free(e);
}

/* One message flagging several metrics: the alert lists them all (its
 * evidence), named after the first flagged; a message of normal data resolves. */
Test(rules, a_message_flagging_several_metrics_lists_them_all)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;
    struct iw_rsample m[3] = {
        fx_sample("water", "s1", "w01", "temp", T0, 14),
        fx_sample("water", "s1", "w01", "ph", T0, 7),
        fx_sample("water", "s1", "w01", "do", T0, 1),
    };

    r->p.flags = (1u << ('D' - 'A')) | (1u << ('B' - 'A'));
    e = engine(T0);
    m[1].flag = 'B';
    m[2].flag = 'B';
    iw_rules_on_samples(e, m, 3);
    cr_assert_eq(env.n_alerts, 1);
    cr_expect_str_eq(fx_last(&env)->metric, "ph");
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"ph\":\"B\""), "%s", fx_last(&env)->details);
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"do\":\"B\""), "%s", fx_last(&env)->details);
    cr_expect_not_null(strstr(fx_last(&env)->message, "and more"), "%s", fx_last(&env)->message);
    for (int i = 0; i < 3; i++) {
        m[i].ts = m[i].recv_ms = T0 + MINUTE;
        m[i].flag = 'N';
    }
    iw_rules_on_samples(e, m, 3);
    cr_assert_eq(env.n_alerts, 2);
    cr_expect_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_expect_str_eq(fx_last(&env)->metric, "ph", "the resolve keeps the episode's metric");
    iw_rules_engine_free(e);
}

Test(rules, flag_for_and_back_to_normal)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;

    r->p.flags = (1u << ('D' - 'A')) | (1u << ('B' - 'A'));
    r->p.for_ms = MINUTE;
    e = engine(T0);
    feed_flag(e, "nh3_n", T0, 'M');
    feed_flag(e, "nh3_n", T0 + MINUTE, 'M');
    cr_assert_eq(env.n_alerts, 0, "M is not watched");
    feed_flag(e, "nh3_n", T0 + 2 * MINUTE, 'D');
    feed_flag(e, "ph", T0 + 2 * MINUTE, 'N');
    feed_flag(e, "nh3_n", T0 + 2 * MINUTE + 59 * SEC, 'D');
    cr_assert_eq(env.n_alerts, 0);
    feed_flag(e, "nh3_n", T0 + 3 * MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(fx_last(&env)->metric, "nh3_n");
    cr_assert_eq(fx_last(&env)->started_at, T0 + 2 * MINUTE);
    cr_assert_not_null(strstr(fx_last(&env)->details, "\"nh3_n\":\"D\""));
    feed_flag(e, "ph", T0 + 4 * MINUTE, 'B');
    feed_flag(e, "nh3_n", T0 + 4 * MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 1, "ph is still flagged B");
    feed_flag(e, "ph", T0 + 5 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_engine_free(e);
}

static void feed_device_flag(struct iw_rules_engine *e, int64_t ts, char flag)
{
    struct iw_rsample s = { .source = "water", .site = "s1", .device = "w01", .metric = "",
                            .ts = ts, .recv_ms = ts, .flag = flag, .alive = true };
    iw_rules_on_sample(e, &s);
}

/*
 * A message of a flag and no sample ({"flag":"D"}: an instrument that sends
 * nothing else while faulty) is the device reporting that flag: a device-level
 * flag instance raises on it, with no metric, across a restart; older news is
 * ignored; the device's 'N', alone, resolves. A per-metric rule does not take it.
 */
Test(rules, a_flag_in_a_message_without_samples_is_the_devices_flag)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rule *r4 = fx_rule(&cfg, "ph-fault", IW_RULE_FLAG, "water/*/*/ph");
    struct iw_rules_engine *e;

    r->p.flags = r4->p.flags = 1u << ('D' - 'A');
    e = engine(T0);
    feed_device_flag(e, T0 - 2 * MINUTE, 0);        /* only labels: says nothing of flags */
    feed_device_flag(e, T0 - MINUTE, 'M');          /* not watched */
    cr_assert_eq(env.n_alerts, 0);
    feed_device_flag(e, T0, 'D');
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_str_eq(fx_last(&env)->rule, "fault", "a per-metric rule took the device's flag");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_assert_null(fx_last(&env)->metric, "the device's flag names no metric");
    cr_expect_not_null(strstr(fx_last(&env)->details, "\"device_flag\":\"D\""), "%s",
                       fx_last(&env)->details);
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);
    feed_flag(e, "ph", T0 + MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 2, "ph-fault fires on ph's own flag");
    cr_assert_str_eq(fx_last(&env)->rule, "ph-fault");
    feed_device_flag(e, T0 + 30 * SEC, 'N');        /* older than ph's D: stale */
    cr_assert_eq(env.n_alerts, 2, "an older 'N' resolved a newer flag");
    feed_device_flag(e, T0 + 2 * MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 3, "the device's N resolves the device-level instance");
    cr_assert_str_eq(fx_last(&env)->rule, "fault");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_null(fx_last(&env)->metric, "the resolve keeps the episode's (no) metric");
    iw_rules_engine_free(e);
}

/* Normal data of any metric ends a flag the device gave alone; a late normal
 * sample, older than that flag, does not. */
Test(rules, normal_data_after_a_devices_flag_resolves_it_late_data_does_not)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;

    r->p.flags = 1u << ('B' - 'A');
    e = engine(T0);
    feed_flag(e, "ph", T0, 0);
    feed_device_flag(e, T0 + 5 * MINUTE, 'B');
    cr_assert_eq(env.n_alerts, 1);
    feed_flag(e, "ph", T0 + MINUTE, 0);             /* late, normal */
    cr_assert_eq(env.n_alerts, 1, "a late normal sample resolved a newer flag");
    feed_flag(e, "ph", T0 + 6 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, T0 + 6 * MINUTE);
    iw_rules_engine_free(e);
}

/* SPEC §4: a flag alert resolves when the device reports N again, not on
 * another flag the rule does not watch. The payload gives each sample its
 * flag (message-level "flag" or "<metric>_flag"), so a device-level instance
 * sees both kinds here as the per-sample flag. */
Test(rules, flag_resolves_only_on_normal_data_not_on_an_unwatched_flag)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;

    r->p.flags = (1u << ('D' - 'A')) | (1u << ('B' - 'A'));
    e = engine(T0);
    /* {"ph":7,"flag":"D"} */
    feed_flag(e, "ph", T0, 'D');
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    /* {"ph":7,"flag":"M"}, then C and T: still firing, no new alert */
    feed_flag(e, "ph", T0 + MINUTE, 'M');
    feed_flag(e, "ph", T0 + 2 * MINUTE, 'C');
    feed_flag(e, "ph", T0 + 3 * MINUTE, 'T');
    cr_assert_eq(env.n_alerts, 1, "an unwatched flag must not resolve the alert");
    /* the watched flag again: the same episode, not a re-fire */
    feed_flag(e, "ph", T0 + 4 * MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 1, "still the same firing episode");
    /* {"ph":7,"do":6,"ph_flag":"M","do_flag":"N"}: do was never flagged, ph stays D */
    feed_flag(e, "ph", T0 + 5 * MINUTE, 'M');
    feed_flag(e, "do", T0 + 5 * MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 1, "a per-metric unwatched flag must not resolve either");
    /* {"ph":7} (no flag: normal) resolves */
    feed_flag(e, "ph", T0 + 6 * MINUTE, 0);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->ts, T0 + 6 * MINUTE);
    iw_rules_engine_free(e);
}

Test(rules, flag_unwatched_flag_neither_restarts_nor_completes_for)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*/nh3_n");
    struct iw_rules_engine *e;

    r->p.flags = 1u << ('D' - 'A');
    r->p.for_ms = 10 * MINUTE;
    e = engine(T0);
    feed_flag(e, "nh3_n", T0, 'D');                         /* pending since T0 */
    feed_flag(e, "nh3_n", T0 + 5 * MINUTE, 'M');
    feed_flag(e, "nh3_n", T0 + 10 * MINUTE, 'M');
    cr_assert_eq(env.n_alerts, 0, "an unwatched flag does not complete for:");
    feed_flag(e, "nh3_n", T0 + 11 * MINUTE, 'D');
    cr_assert_eq(env.n_alerts, 1, "pending was not cancelled by M");
    cr_assert_eq(fx_last(&env)->started_at, T0);
    /* firing: M, then N resolves; then M alone raises nothing */
    feed_flag(e, "nh3_n", T0 + 12 * MINUTE, 'M');
    cr_assert_eq(env.n_alerts, 1);
    feed_flag(e, "nh3_n", T0 + 13 * MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    feed_flag(e, "nh3_n", T0 + 14 * MINUTE, 'M');
    feed_flag(e, "nh3_n", T0 + 30 * MINUTE, 'M');
    cr_assert_eq(env.n_alerts, 2);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * restart: save every record, build a new engine, restore, continue
 * ======================================================================== */

static struct iw_rule *thr_rule(const char *name, int64_t for_ms)
{
    struct iw_rule *r = fx_rule(&cfg, name, IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    r->p.has_above = true;
    r->p.above = 10;
    r->p.for_ms = for_ms;
    return r;
}

Test(rules, restore_continues_a_pending_for)
{
    struct iw_rules_engine *e;

    thr_rule("t", 2 * MINUTE);
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_state, 1, "pending is stored");
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + MINUTE, 11);
    cr_assert_eq(env.n_alerts, 0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 11);
    cr_assert_eq(env.n_alerts, 1, "for counted from before the restart");
    cr_assert_eq(fx_last(&env)->started_at, T0);
    iw_rules_engine_free(e);
}

Test(rules, restore_of_a_firing_instance_does_not_refire)
{
    struct iw_rules_engine *e;
    char id[17];

    thr_rule("t", 0);
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    memcpy(id, env.alerts[0]->id, sizeof(id));
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + MINUTE, 12);
    cr_assert_eq(env.n_alerts, 1, "no re-fire after restart");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 1);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_str_eq(fx_last(&env)->id, id, "same episode");
    cr_assert_eq(fx_last(&env)->started_at, T0);
    cr_assert_eq(env.n_state, 0, "resolved: record deleted");
    iw_rules_engine_free(e);
}

Test(rules, restore_keeps_absence_firing_and_gives_known_devices_grace)
{
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;

    r->p.after_ms = 3 * MINUTE;
    e = engine(T0);
    fx_feed(e, "camera", "s1", "c01", "online", T0, 1);
    fx_feed(e, "camera", "s1", "c02", "online", T0, 1);
    fx_feed(e, "camera", "s1", "c02", "online", T0 + 5 * MINUTE, 1);
    iw_rules_tick(e, T0 + 5 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "c01 is absent");
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    iw_rules_tick(e, T0 + HOUR + 3 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 1, "c01 still firing (no re-fire), c02 gets a full `after`");
    iw_rules_tick(e, T0 + HOUR + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_str_eq(fx_last(&env)->device, "c02");
    fx_feed(e, "camera", "s1", "c01", "online", T0 + HOUR + 4 * MINUTE, 1);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_str_eq(fx_last(&env)->device, "c01");
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

Test(rules, restore_of_a_changed_rule_resolves)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = thr_rule("t", 0);

    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    strcpy(r->hash, "00000000deadbeef");
    strcpy(r->cond_hash, "00000000deadbeef");
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);
    cr_assert_eq(fx_last(&env)->ts, T0 + HOUR);
    cr_assert_eq(env.n_state, 0);
    iw_rules_engine_free(e);
}

/* A restart with only the rule's message or labels changed keeps the episode
 * (its record's "ch", the condition hash, still matches). */
Test(rules, restore_of_a_rule_whose_message_alone_changed_keeps_the_episode)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = thr_rule("t", 0);

    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    strcpy(r->hash, "00000000deadbeef");            /* the text changed, not the condition */
    r->message = "{site}/{device} still high";
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 1, "a message edit resolved the episode at restart");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + HOUR, 1);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);
    cr_assert_str_eq(fx_last(&env)->message, "s1/w01 still high");
    iw_rules_engine_free(e);
}

/* A record written before severity left the condition hash holds "ch" (the
 * condition with the severity): matched against that, an upgrade keeps what
 * is firing; a record whose "ch" does not match is a changed rule. */
Test(rules, restore_of_an_older_record_compares_its_condition_hash_of_then)
{
    for (int changed = 0; changed < 2; changed++) {
        struct iw_rules_engine *e;
        struct iw_rule *r;

        fx_env_fini(&env);
        memset(&env, 0, sizeof(env));
        fx_cfg_init(&cfg);
        r = thr_rule("t", 0);
        e = engine(T0);
        fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
        cr_assert_eq(env.n_alerts, 1);
        cr_assert_eq(env.n_state, 1);
        /* Rewrite the record as an older version wrote it. */
        char *c2 = strstr(env.vals[0], "\"c2\":\"");
        cr_assert_not_null(c2, "%s", env.vals[0]);
        memcpy(c2, "\"ch\":\"1111111111111111", strlen("\"ch\":\"1111111111111111"));
        char *c3 = strstr(env.vals[0], "\"c3\":\"");     /* nor the condition at its site */
        cr_assert_not_null(c3, "%s", env.vals[0]);
        memcpy(c3, "\"x3\"", 4);
        strcpy(r->cond_hash_v1, changed ? "2222222222222222" : "1111111111111111");
        strcpy(r->cond_hash, "3333333333333333");   /* this version's hash is another */
        e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
        if (changed) {
            cr_expect_eq(env.n_alerts, 2, "a changed condition resolves");
            cr_expect_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
        } else {
            cr_expect_eq(env.n_alerts, 1, "the upgrade resolved a firing alert");
            fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + HOUR, 1);
            cr_expect_eq(env.n_alerts, 2);
            cr_expect_str_eq(fx_last(&env)->id, env.alerts[0]->id, "the same episode");
        }
        iw_rules_engine_free(e);
    }
}

/* The resolve a restart emits for a changed or removed rule carries the labels
 * its firing carried: a subscriber routing on them gets the resolve too. */
Test(rules, restore_resolve_of_a_changed_or_removed_rule_keeps_its_labels)
{
    static struct iw_kv lb[] = { { "team", "river" }, { "tier", "1" } };
    struct iw_rules_engine *e;
    struct iw_rule *r = thr_rule("changed", 0), *u = thr_rule("removed", 0);

    r->labels = u->labels = lb;
    r->n_labels = u->n_labels = 2;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 2);
    strcpy(r->hash, "00000000deadbeef");
    strcpy(r->cond_hash, "00000000deadbeef");
    r->labels = NULL;               /* the new version has none */
    r->n_labels = 0;
    cfg.cfg.n_rules = 1;            /* "removed" is gone */
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 4);
    for (size_t i = 2; i < 4; i++) {
        const struct iw_alert *a = env.alerts[i];
        cr_assert_eq(a->status, IW_ALERT_RESOLVED);
        cr_assert_eq(a->n_labels, 2, "%s: %zu labels", a->rule, a->n_labels);
        cr_assert_str_eq(a->labels[0].key, "team");
        cr_assert_str_eq(a->labels[0].value, "river");
        cr_assert_str_eq(a->labels[1].key, "tier");
        cr_assert_str_eq(a->labels[1].value, "1");
    }
    iw_rules_engine_free(e);
}

Test(rules, restore_skips_records_of_other_shards)
{
    struct iw_rules_engine *e;

    thr_rule("t", 0);
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    env.owned_device = "w02";
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    struct iw_rules_stats st;
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.restored, 0);
    cr_assert_eq(env.n_state, 1, "the owner will restore it");
    iw_rules_engine_free(e);
}

Test(rules, restore_rejects_garbage)
{
    struct iw_rules_engine *e;

    thr_rule("t", 0);
    e = engine(T0);
    cr_assert_eq(iw_rules_engine_restore(e, "k", "not json", 8), IW_E_INVAL);
    cr_assert_eq(iw_rules_engine_restore(e, "k", "{\"rule\":\"t\"}", 12), IW_E_INVAL);
    iw_rules_engine_free(e);
}

/* ---- what a threshold alert shows after a restart ------------------------- */

static struct iw_rule *codmn_rule(double above, int64_t repeat_ms)
{
    struct iw_rule *r = fx_rule(&cfg, "codmn-high", IW_RULE_THRESHOLD, "water/*/*/codmn");
    r->p.has_above = true;
    r->p.above = above;
    r->p.repeat_ms = repeat_ms;
    return r;
}

/* Feed a sample and put it in the fake store too, as the daemon does. */
static void feed_stored(struct iw_rules_engine *e, const char *metric, int64_t ts, double v)
{
    char series[128];
    snprintf(series, sizeof(series), "water/dongtan/w02/%s", metric);
    fx_history_add(&env, series, ts, v, 0);
    fx_feed(e, "water", "dongtan", "w02", metric, ts, v);
}

/* Rewrite every state record as an older islewatch wrote it (without these members). */
static void strip_records(const char *const *names, size_t n)
{
    for (size_t i = 0; i < env.n_state; i++) {
        cJSON *o = cJSON_Parse(env.vals[i]);
        cr_assert_not_null(o);
        for (size_t k = 0; k < n; k++)
            cJSON_DeleteItemFromObjectCaseSensitive(o, names[k]);
        free(env.vals[i]);
        env.vals[i] = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
}

static cJSON *details_of(const struct iw_alert *a)
{
    cJSON *d = cJSON_Parse(a->details);
    cr_assert_not_null(d, "details: %s", a->details);
    return d;
}

static double details_num(const cJSON *d, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(d, name);
    cr_assert(cJSON_IsNumber(j), "details member %s missing", name);
    return j->valuedouble;
}

Test(rules, repeat_after_restore_carries_the_current_value)
{
    struct iw_rules_engine *e;
    const struct iw_alert *a;
    cJSON *d;

    codmn_rule(10, 10 * MINUTE);
    e = engine(T0);
    feed_stored(e, "codmn", T0, 11);
    feed_stored(e, "codmn", T0 + MINUTE, 15);
    cr_assert_eq(env.n_alerts, 1);
    e = fx_restart(e, &env, &cfg.cfg, T0 + 2 * MINUTE);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert_eq(a->reason, IW_ALERT_REPEAT);
    cr_assert(a->has_value, "value is null after the restart");
    cr_assert_eq(a->value, 15, "the last value, not the one at fire: %g", a->value);
    cr_assert_str_eq(a->message, "dongtan/w02 CODMn 15 mg/L above 10");
    d = details_of(a);
    cr_assert_eq(details_num(d, "value"), 15, "details: %s", a->details);
    cr_assert_not_null(strstr(a->details, "\"value_ts\":\"2026-05-28T"), "details: %s", a->details);
    cJSON_Delete(d);
    iw_rules_engine_free(e);
}

Test(rules, repeat_after_restore_without_history_uses_the_recorded_value)
{
    struct iw_rules_engine *e;

    codmn_rule(10, 10 * MINUTE);
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0, 12.5);
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);        /* the store has nothing */
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert(fx_last(&env)->has_value);
    cr_assert_eq(fx_last(&env)->value, 12.5);
    cr_assert_str_eq(fx_last(&env)->message, "dongtan/w02 CODMn 12.5 mg/L above 10");
    iw_rules_engine_free(e);
}

Test(rules, old_record_takes_the_value_from_the_store_or_claims_none)
{
    static const char *const added[] = { "cv", "ct", "fn", "ff", "fs" };
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    codmn_rule(10, 10 * MINUTE);
    e = engine(T0);
    feed_stored(e, "codmn", T0, 15);
    strip_records(added, IW_ARRAY_LEN(added));
    e = fx_restart(e, &env, &cfg.cfg, T0 + MINUTE);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert(a->has_value && a->value == 15, "read back from the store");
    cr_assert_str_eq(a->message, "dongtan/w02 CODMn 15 mg/L above 10");

    env.n_history = 0;                                  /* and now the store has lost it */
    strip_records(added, IW_ARRAY_LEN(added));
    e = fx_restart(e, &env, &cfg.cfg, T0 + 11 * MINUTE);
    iw_rules_tick(e, T0 + 20 * MINUTE);
    cr_assert_eq(env.n_alerts, 3);
    a = fx_last(&env);
    cr_assert_not(a->has_value, "unknown is null, not 0");
    cr_assert_str_eq(a->message, "dongtan/w02 CODMn above 10", "no number claimed");
    cr_assert_null(strstr(a->details, "\"value\""), "details: %s", a->details);
    iw_rules_engine_free(e);
}

Test(rules, windowed_repeat_after_restore_carries_the_window)
{
    struct iw_rule *r = codmn_rule(10, 10 * MINUTE);
    struct iw_rules_engine *e;
    const struct iw_alert *a;
    const cJSON *w;
    cJSON *d;

    r->p.window_agg = IW_AGG_AVG;
    r->p.window_ms = 5 * MINUTE;
    e = engine(T0);
    feed_stored(e, "codmn", T0, 12);
    feed_stored(e, "codmn", T0 + MINUTE, 14);
    feed_stored(e, "codmn", T0 + 2 * MINUTE, 16);
    cr_assert_eq(env.n_alerts, 1);
    e = fx_restart(e, &env, &cfg.cfg, T0 + 3 * MINUTE);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert(a->has_value && a->value == 14, "avg of 12, 14, 16: %g", a->value);
    cr_assert_str_eq(a->message, "dongtan/w02 avg 5m of CODMn 14 mg/L above 10");
    d = details_of(a);
    w = cJSON_GetObjectItemCaseSensitive(d, "window");
    cr_assert_eq(details_num(w, "n"), 3, "details: %s", a->details);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(w, "values")), 3);
    cJSON_Delete(d);
    /* the window goes on from the store: 12 leaves it, (14 + 16 + 6) / 3 = 12 */
    feed_stored(e, "codmn", T0 + 5 * MINUTE, 6);
    cr_assert_eq(env.n_alerts, 2, "still above");
    feed_stored(e, "codmn", T0 + 6 * MINUTE, 1);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_float_eq(fx_last(&env)->value, 23.0 / 3, 1e-9);
    iw_rules_engine_free(e);
}

Test(rules, windowed_restore_treats_older_samples_as_out_of_order_as_before)
{
    struct iw_rule *r = codmn_rule(10, 0);
    struct iw_rules_engine *e;
    struct iw_rules_stats st;

    r->p.window_agg = IW_AGG_AVG;
    r->p.window_ms = 5 * MINUTE;
    e = engine(T0);
    feed_stored(e, "codmn", T0, 12);
    feed_stored(e, "codmn", T0 + MINUTE, 14);
    feed_stored(e, "codmn", T0 + 2 * MINUTE, 16);
    cr_assert_eq(env.n_alerts, 1);
    e = fx_restart(e, &env, &cfg.cfg, T0 + 3 * MINUTE);
    feed_stored(e, "codmn", T0 + 90 * SEC, -10);       /* older than what was evaluated */
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.out_of_order, 1);
    cr_assert_eq(env.n_alerts, 1, "not evaluated, as without the restart");
    feed_stored(e, "codmn", T0 + 4 * MINUTE, 16);      /* (12 + 14 - 10 + 16 + 16) / 5 */
    cr_assert_eq(env.n_alerts, 2, "but it is in the window");
    cr_assert_float_eq(fx_last(&env)->value, 9.6, 1e-9);
    iw_rules_engine_free(e);
}

Test(rules, reload_after_restore_resolves_with_the_value)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    codmn_rule(10, 0)->message_en = "{site}/{device} {metric_name} {value} {unit} ({status})";
    e = engine(T0);
    feed_stored(e, "codmn", T0, 11);
    feed_stored(e, "codmn", T0 + MINUTE, 15);
    e = fx_restart(e, &env, &cfg.cfg, T0 + 2 * MINUTE);
    fx_cfg_copy(&next, &cfg);
    next.cfg.n_rules = 0;
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + 3 * MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert_eq(a->status, IW_ALERT_RESOLVED);
    cr_assert(a->has_value && a->value == 15);
    cr_assert_str_eq(a->message, "dongtan/w02 CODMn 15 mg/L (resolved)");
    iw_rules_engine_free(e);
}

Test(rules, firing_threshold_record_follows_the_value)
{
    struct iw_rules_engine *e;

    codmn_rule(10, 0);
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0, 11);
    size_t puts = env.puts;
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0 + 5 * MINUTE, 13);
    cr_assert_eq(env.puts, puts, "not every sample writes the record");
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0 + 10 * MINUTE, 14);
    cr_assert_eq(env.puts, puts + 1, "rewritten after 10 minutes of samples");
    cr_assert_not_null(strstr(env.vals[0], "\"cv\":14"), "record: %s", env.vals[0]);
    iw_rules_engine_free(e);
}

/* ---- a raw threshold with `for:` lists the samples that kept it true ------ */

static const cJSON *for_of(const cJSON *d, double n, int kept, int64_t from)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "for");
    char when[40];
    cr_assert(cJSON_IsObject(f), "no for: evidence");
    cr_assert_eq(details_num(f, "n"), n);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "values")), kept);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(f, "from")->valuestring,
                     iw_rfc3339_format(from, when, sizeof(when)));
    return cJSON_GetObjectItemCaseSensitive(f, "values");
}

static double pair_value(const cJSON *vals, int i)
{
    return cJSON_GetArrayItem(cJSON_GetArrayItem(vals, i), 1)->valuedouble;
}

Test(rules, for_threshold_lists_the_samples_of_the_run)
{
    struct iw_rules_engine *e;
    const cJSON *vals;
    cJSON *d;

    codmn_rule(10, 0)->p.for_ms = 2 * MINUTE;
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0 - 20 * SEC, 11);
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0 - 10 * SEC, 9);       /* the dip ends that run */
    for (int i = 0; i <= 12; i++)
        fx_feed(e, "water", "dongtan", "w02", "codmn", T0 + i * 10 * SEC, 11 + i);
    cr_assert_eq(env.n_alerts, 1);
    d = details_of(fx_last(&env));
    vals = for_of(d, 13, 13, T0);
    cr_assert_eq(pair_value(vals, 0), 11);
    cr_assert_eq(pair_value(vals, 12), 23, "the firing sample closes the list");
    cJSON_Delete(d);
    iw_rules_engine_free(e);
}

Test(rules, for_threshold_keeps_the_last_32_and_counts_all)
{
    struct iw_rules_engine *e;
    const cJSON *vals;
    cJSON *d;

    codmn_rule(10, 10 * MINUTE)->p.for_ms = 39 * SEC;
    e = engine(T0);
    for (int i = 0; i < 40; i++)
        fx_feed(e, "water", "dongtan", "w02", "codmn", T0 + i * SEC, 100 + i);
    cr_assert_eq(env.n_alerts, 1);
    d = details_of(fx_last(&env));
    vals = for_of(d, 40, 32, T0);
    cr_assert_eq(pair_value(vals, 0), 108);
    cr_assert_eq(pair_value(vals, 31), 139);
    cJSON_Delete(d);

    /* it is the evidence of the episode: kept across a restart, in the repeats */
    fx_feed(e, "water", "dongtan", "w02", "codmn", T0 + MINUTE, 50);
    e = fx_restart(e, &env, &cfg.cfg, T0 + 2 * MINUTE);
    iw_rules_tick(e, T0 + 39 * SEC + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->reason, IW_ALERT_REPEAT);
    d = details_of(fx_last(&env));
    vals = for_of(d, 40, 32, T0);
    cr_assert_eq(pair_value(vals, 0), 108);
    cr_assert_eq(pair_value(vals, 31), 139);
    cJSON_Delete(d);
    iw_rules_engine_free(e);
}

Test(rules, for_threshold_pending_across_a_restart_lists_the_whole_run)
{
    struct iw_rules_engine *e;
    const cJSON *vals;
    cJSON *d;

    codmn_rule(10, 0)->p.for_ms = 3 * MINUTE;
    e = engine(T0);
    feed_stored(e, "codmn", T0, 11);
    feed_stored(e, "codmn", T0 + MINUTE, 12);
    cr_assert_eq(env.n_state, 1, "pending is stored");
    e = fx_restart(e, &env, &cfg.cfg, T0 + 90 * SEC);
    feed_stored(e, "codmn", T0 + 2 * MINUTE, 13);
    feed_stored(e, "codmn", T0 + 3 * MINUTE, 14);
    cr_assert_eq(env.n_alerts, 1);
    cr_assert_eq(fx_last(&env)->started_at, T0);
    d = details_of(fx_last(&env));
    vals = for_of(d, 4, 4, T0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pair_value(vals, i), 11 + i);
    cJSON_Delete(d);
    iw_rules_engine_free(e);
}

/* ---- what a rate alert shows after a restart ------------------------------ */

static void assert_pair(const cJSON *d, const char *name, int64_t ts, double v)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(d, name);
    char when[40];
    cr_assert(cJSON_IsObject(o), "details.%s missing", name);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(o, "ts")->valuestring,
                     iw_rfc3339_format(ts, when, sizeof(when)), "details.%s.ts", name);
    cr_assert_eq(details_num(o, "value"), v, "details.%s.value", name);
}

static void rate_rule(void)
{
    struct iw_rule *r = fx_rule(&cfg, "nh3n-rise", IW_RULE_RATE, "water/*/*/nh3_n");
    r->p.has_rise = true;
    r->p.rise = 1;                      /* per minute */
    r->p.repeat_ms = 10 * MINUTE;
}

Test(rules, rate_repeat_after_restore_carries_the_last_rate_and_its_samples)
{
    struct iw_rules_engine *e;
    const struct iw_alert *a;
    cJSON *d;

    rate_rule();
    e = engine(T0);
    feed_stored(e, "nh3_n", T0, 10);
    feed_stored(e, "nh3_n", T0 + MINUTE, 13);          /* +3/min: fires */
    feed_stored(e, "nh3_n", T0 + 2 * MINUTE, 20);      /* +7/min: still firing */
    cr_assert_eq(env.n_alerts, 1);
    e = fx_restart(e, &env, &cfg.cfg, T0 + 3 * MINUTE);
    iw_rules_tick(e, T0 + 11 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert_eq(a->reason, IW_ALERT_REPEAT);
    cr_assert(a->has_value && a->value == 7, "value %g", a->value);
    cr_assert_str_eq(a->message, "dongtan/w02 NH3-N rose 7 mg/L per 1m (limit 1)");
    d = details_of(a);
    cr_assert_eq(details_num(d, "rate"), 7);
    assert_pair(d, "prev", T0 + MINUTE, 13);
    assert_pair(d, "cur", T0 + 2 * MINUTE, 20);
    cJSON_Delete(d);
    /* the next rate is taken from the last sample before the restart */
    feed_stored(e, "nh3_n", T0 + 12 * MINUTE, 20.5);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_float_eq(fx_last(&env)->value, 0.05, 1e-12);
    iw_rules_engine_free(e);
}

Test(rules, rate_repeat_shows_the_pair_the_rate_came_from)
{
    struct iw_rules_engine *e;
    cJSON *d;

    rate_rule();
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w02", "nh3_n", T0, 10);
    fx_feed(e, "water", "dongtan", "w02", "nh3_n", T0 + MINUTE, 13);
    iw_rules_tick(e, T0 + 11 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    d = details_of(fx_last(&env));
    assert_pair(d, "prev", T0, 10);
    assert_pair(d, "cur", T0 + MINUTE, 13);
    cJSON_Delete(d);
    iw_rules_engine_free(e);
}

Test(rules, firing_rate_record_follows_the_rate)
{
    struct iw_rules_engine *e;
    size_t puts;

    rate_rule();
    e = engine(T0);
    fx_feed(e, "water", "dongtan", "w02", "nh3_n", T0, 10);
    fx_feed(e, "water", "dongtan", "w02", "nh3_n", T0 + MINUTE, 13);
    puts = env.puts;
    for (int i = 2; i <= 10; i++)
        fx_feed(e, "water", "dongtan", "w02", "nh3_n", T0 + i * MINUTE, 10 + 3 * i);
    cr_assert_eq(env.puts, puts, "not every sample writes the record");
    fx_feed(e, "water", "dongtan", "w02", "nh3_n", T0 + 11 * MINUTE, 50);
    cr_assert_eq(env.puts, puts + 1, "rewritten after 10 minutes of samples");
    cr_assert_not_null(strstr(env.vals[0], "\"rp\":[1780000600000,40,1780000660000,50]"),
                       "record: %s", env.vals[0]);
    iw_rules_engine_free(e);
}

Test(rules, rate_old_record_takes_the_rate_from_the_store_or_claims_none)
{
    static const char *const added[] = { "rp" };
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    rate_rule();
    e = engine(T0);
    feed_stored(e, "nh3_n", T0, 10);
    feed_stored(e, "nh3_n", T0 + MINUTE, 13);
    strip_records(added, IW_ARRAY_LEN(added));
    e = fx_restart(e, &env, &cfg.cfg, T0 + 2 * MINUTE);
    iw_rules_tick(e, T0 + 11 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert(a->has_value && a->value == 3, "read back from the store");
    cr_assert_str_eq(a->message, "dongtan/w02 NH3-N rose 3 mg/L per 1m (limit 1)");

    env.n_history = 0;
    strip_records(added, IW_ARRAY_LEN(added));
    e = fx_restart(e, &env, &cfg.cfg, T0 + 12 * MINUTE);
    iw_rules_tick(e, T0 + 21 * MINUTE);
    cr_assert_eq(env.n_alerts, 3);
    a = fx_last(&env);
    cr_assert_not(a->has_value, "unknown is null, not 0");
    cr_assert_str_eq(a->message, "dongtan/w02 NH3-N changes faster than the limit (1 per 1m)");
    cr_assert_null(strstr(a->details, "\"rate\""), "details: %s", a->details);
    cr_assert_null(strstr(a->details, "1970"), "details: %s", a->details);
    iw_rules_engine_free(e);
}

Test(rules, flag_repeat_after_restore_lists_the_current_flags)
{
    struct iw_rule *r = fx_rule(&cfg, "fault", IW_RULE_FLAG, "water/*/*");
    struct iw_rules_engine *e;
    const struct iw_alert *a;

    r->p.flags = (1u << ('D' - 'A')) | (1u << ('B' - 'A'));
    r->p.repeat_ms = 10 * MINUTE;
    e = engine(T0);
    feed_flag(e, "nh3_n", T0, 'D');
    cr_assert_eq(env.n_alerts, 1);
    feed_flag(e, "ph", T0 + MINUTE, 'B');
    feed_flag(e, "nh3_n", T0 + 2 * MINUTE, 'N');
    e = fx_restart(e, &env, &cfg.cfg, T0 + 3 * MINUTE);
    iw_rules_tick(e, T0 + 10 * MINUTE);
    cr_assert_eq(env.n_alerts, 2);
    a = fx_last(&env);
    cr_assert_eq(a->reason, IW_ALERT_REPEAT);
    cr_assert_str_eq(a->metric, "nh3_n", "the metric the episode began on");
    cr_assert_str_eq(a->message, "s1/w01 reports flag B (communication error) on ph");
    cr_assert_not_null(strstr(a->details, "\"flags\":{\"ph\":\"B\"}"), "details: %s", a->details);
    feed_flag(e, "ph", T0 + 11 * MINUTE, 'N');
    cr_assert_eq(env.n_alerts, 3, "ph back to normal resolves: nh3_n was normal already");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * reload
 * ======================================================================== */

Test(rules, reload_with_unchanged_rule_keeps_state)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;

    thr_rule("t", 0);
    thr_rule("pending", 5 * MINUTE);
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    fx_cfg_copy(&next, &cfg);
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 1, "no spurious resolve");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 12);
    cr_assert_eq(env.n_alerts, 1, "no re-fire");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 5 * MINUTE, 12);
    cr_assert_eq(env.n_alerts, 2, "the pending `for` of the other rule went on");
    cr_assert_str_eq(fx_last(&env)->rule, "pending");
    cr_assert_eq(fx_last(&env)->started_at, T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 6 * MINUTE, 1);
    cr_assert_eq(env.n_alerts, 4);
    cr_assert_str_eq(env.alerts[2]->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* A reload that changes only a rule's message (or labels) keeps its alerts:
 * no resolve "because the rule was changed" while the value still breaches;
 * the episode's later messages carry the new text and rule_hash. */
Test(rules, reload_of_only_a_message_keeps_the_episode)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;

    thr_rule("t", 0);
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    fx_cfg_copy(&next, &cfg);
    next.rules[0].message = "{site}/{device} NH3-N {value}, the new text";
    strcpy(next.rules[0].hash, "0000000000000002");     /* the text changed, the condition not */
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 1, "resolved by a message edit: %s", fx_last(&env)->message);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 1);
    cr_assert_eq(env.n_alerts, 2);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id, "not the same episode");
    cr_assert_str_eq(fx_last(&env)->message, "s1/w01 NH3-N 1, the new text");
    cr_assert_str_eq(fx_last(&env)->rule_hash, "0000000000000002");
    iw_rules_engine_free(e);
}

Test(rules, reload_resolves_changed_and_removed_rules)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;

    thr_rule("changed", 0);
    thr_rule("removed", 0);
    thr_rule("kept", 0);
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_eq(env.n_state, 3);
    fx_cfg_copy(&next, &cfg);
    next.rules[0].p.above = 20;
    strcpy(next.rules[0].hash, "0000000000000001");
    strcpy(next.rules[0].cond_hash, "0000000000000001");
    next.rules[1] = next.rules[2];
    next.cfg.n_rules = 2;
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 5);
    for (size_t i = 3; i < 5; i++) {
        cr_assert_eq(env.alerts[i]->status, IW_ALERT_RESOLVED);
        cr_assert_eq(env.alerts[i]->ts, T0 + MINUTE);
        cr_assert_str_neq(env.alerts[i]->rule, "kept");
    }
    cr_assert_eq(env.n_state, 1, "only the kept rule's record remains");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 21);
    cr_assert_eq(env.n_alerts, 6, "the changed rule starts a new episode");
    cr_assert_str_eq(fx_last(&env)->rule, "changed");
    cr_assert_str_neq(fx_last(&env)->id, env.alerts[0]->id);
    iw_rules_engine_free(e);
}

/* A reload that changes only a rule's severity (cond_hash leaves it out) re-grades
 * its firing alerts at once, in the same episode, instead of resolving them. */
Test(rules, reload_of_a_severity_alone_regrades_the_firing_alert)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;
    struct iw_rule *r = thr_rule("sev", 0);

    r->p.severity = IW_SEV_WARNING;
    e = engine(T0);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 11);
    cr_assert_eq(env.n_alerts, 1);
    fx_cfg_copy(&next, &cfg);
    next.rules[0].p.severity = IW_SEV_CRITICAL;
    strcpy(next.rules[0].hash, "0000000000000001");        /* cond_hash as before */
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 2, "one message: the severity change");
    cr_expect_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_expect_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    cr_expect_eq(fx_last(&env)->reason, IW_ALERT_ESCALATE);
    cr_expect_str_eq(fx_last(&env)->id, env.alerts[0]->id, "the same episode");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 12);
    cr_assert_eq(env.n_alerts, 2, "still breaching at the new severity: nothing to send");
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 3 * MINUTE, 5);
    cr_assert_eq(env.n_alerts, 3);
    cr_expect_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_expect_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    iw_rules_engine_free(e);
}

/* The same across a restart: a firing alert whose rule's severity alone
 * changed while the daemon was down is re-graded at start (one message, the
 * same episode), not left at the old severity until it resolves. */
Test(rules, restart_with_a_severity_alone_changed_regrades_the_firing_alert)
{
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;

    r->p.after_ms = 3 * MINUTE;
    r->p.severity = IW_SEV_WARNING;
    e = engine(T0);
    fx_feed(e, "camera", "s1", "c01", "online", T0, 1);
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "c01 is absent");
    r->p.severity = IW_SEV_CRITICAL;
    strcpy(r->hash, "0000000000000001");                /* cond_hash as before */
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 2, "one message: the severity change");
    cr_expect_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_expect_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    cr_expect_eq(fx_last(&env)->reason, IW_ALERT_ESCALATE);
    cr_expect_str_eq(fx_last(&env)->id, env.alerts[0]->id, "the same episode");
    e = fx_restart(e, &env, &cfg.cfg, T0 + 2 * HOUR);
    cr_assert_eq(env.n_alerts, 2, "re-graded again at the next restart");
    fx_feed(e, "camera", "s1", "c01", "online", T0 + 2 * HOUR, 1);
    cr_assert_eq(env.n_alerts, 3);
    cr_expect_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_expect_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    iw_rules_engine_free(e);
}

/* A changed absence rule still watches the devices the old one knew: a camera
 * that stopped before the reload (or restart) is not forgotten. */
Test(rules, reload_of_a_changed_absence_rule_keeps_watching_silent_devices)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");

    r->p.after_ms = 3 * MINUTE;
    e = engine(T0);
    fx_feed(e, "camera", "s1", "c01", "online", T0, 1);
    fx_feed(e, "camera", "s1", "c02", "online", T0 + 2 * MINUTE, 1);
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "c01 is absent");
    fx_cfg_copy(&next, &cfg);
    next.rules[0].p.after_ms = 4 * MINUTE;
    strcpy(next.rules[0].hash, "0000000000000001");
    strcpy(next.rules[0].cond_hash, "0000000000000001");
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + 4 * MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 2, "the old rule's episode ends");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_tick(e, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 4, "both silent cameras are absent under the changed rule");
    for (size_t i = 2; i < 4; i++) {
        cr_assert_eq(env.alerts[i]->status, IW_ALERT_FIRING);
        cr_assert_str_neq(env.alerts[i]->id, env.alerts[0]->id,
                          "a new episode, under the changed rule, has an id of its own");
    }
    fx_feed(e, "camera", "s1", "c01", "online", T0 + 2 * HOUR, 1);
    cr_assert_eq(env.n_alerts, 5);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_engine_free(e);
}

Test(rules, restart_with_a_changed_absence_rule_keeps_watching_silent_devices)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");

    r->p.after_ms = 3 * MINUTE;
    e = engine(T0);
    fx_feed(e, "camera", "s1", "c01", "online", T0, 1);
    iw_rules_tick(e, T0 + 3 * MINUTE);
    cr_assert_eq(env.n_alerts, 1);
    r->p.after_ms = 4 * MINUTE;
    strcpy(r->hash, "0000000000000001");
    strcpy(r->cond_hash, "0000000000000001");
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 2, "the old rule's episode ends");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_tick(e, T0 + HOUR + 4 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 2, "a full `after` from the start, as for any known device");
    iw_rules_tick(e, T0 + HOUR + 4 * MINUTE);
    cr_assert_eq(env.n_alerts, 3, "the silent camera is absent under the changed rule");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_assert_str_eq(fx_last(&env)->device, "c01");
    cr_assert_str_neq(fx_last(&env)->id, env.alerts[0]->id, "a new episode has an id of its own");
    iw_rules_engine_free(e);
}

/* An event still going on when its rule changes is raised again by the new
 * rule (if it still matches), not left without an alert until its stop. */
Test(rules, reload_of_a_changed_event_rule_raises_an_ongoing_event_again)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "tamper", IW_RULE_EVENT, "camera_event/*/*");

    r->p.match = fx_kv(&cfg, "type", "*");
    r->p.n_match = 1;
    e = engine(T0);
    feed_event(e, "c01", "tamper", T0, T0, true);
    feed_event(e, "c01", "motion", T0, T0, true);
    feed_event(e, "c02", "tamper", T0, T0, true);
    feed_event(e, "c02", "tamper", T0 + MINUTE, T0 + MINUTE, false);
    cr_assert_eq(env.n_alerts, 4);
    fx_cfg_copy(&next, &cfg);
    next.rules[0].p.match = fx_kv(&next, "type", "tamper");
    next.rules[0].p.auto_resolve_ms = 10 * MINUTE;
    next.rules[0].p.severity = IW_SEV_CRITICAL;
    strcpy(next.rules[0].hash, "0000000000000001");
    strcpy(next.rules[0].cond_hash, "0000000000000001");
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + 2 * MINUTE), IW_OK);
    cr_assert_eq(env.n_alerts, 7, "two episodes end, the ongoing tamper fires again");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_assert_str_eq(fx_last(&env)->device, "c01");
    cr_assert_str_eq(fx_last(&env)->metric, "tamper");
    cr_assert_eq(fx_last(&env)->severity, IW_SEV_CRITICAL);
    cr_assert_eq(fx_last(&env)->ts, T0 + 2 * MINUTE);
    cr_assert_str_neq(fx_last(&env)->id, env.alerts[0]->id, "a new episode");
    iw_rules_tick(e, T0 + 12 * MINUTE);
    cr_assert_eq(env.n_alerts, 8, "the new rule's auto_resolve runs from the reload");
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    iw_rules_engine_free(e);
}

Test(rules, restart_with_a_changed_event_rule_raises_an_ongoing_event_again)
{
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "tamper", IW_RULE_EVENT, "camera_event/*/*");

    r->p.match = fx_kv(&cfg, "type", "tamper");
    r->p.n_match = 1;
    e = engine(T0);
    feed_event(e, "c01", "tamper", T0, T0, true);
    cr_assert_eq(env.n_alerts, 1);
    r->p.severity = IW_SEV_MAJOR;
    strcpy(r->hash, "0000000000000001");
    strcpy(r->cond_hash, "0000000000000001");
    e = fx_restart(e, &env, &cfg.cfg, T0 + HOUR);
    cr_assert_eq(env.n_alerts, 3, "the old episode ends, the ongoing tamper fires again");
    cr_assert_eq(env.alerts[1]->status, IW_ALERT_RESOLVED);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_FIRING);
    cr_assert_eq(fx_last(&env)->severity, IW_SEV_MAJOR);
    feed_event(e, "c01", "tamper", T0 + HOUR + MINUTE, T0 + HOUR + MINUTE, false);
    cr_assert_eq(env.n_alerts, 4);
    cr_assert_eq(fx_last(&env)->status, IW_ALERT_RESOLVED);
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[2]->id);
    iw_rules_engine_free(e);
}

Test(rules, reload_follows_inventory_changes)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");

    r->p.after_ms = 3 * MINUTE;
    fx_device(&cfg, "camera", "s1", "c01");
    e = engine(T0);
    fx_cfg_copy(&next, &cfg);
    next.cfg.n_devices = 0;
    fx_device(&next, "camera", "s1", "c02");
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + MINUTE), IW_OK);
    iw_rules_tick(e, T0 + 4 * MINUTE - 1);
    cr_assert_eq(env.n_alerts, 0, "a device added to the inventory counts from the reload");
    iw_rules_tick(e, T0 + 4 * MINUTE);
    cr_assert_eq(env.n_alerts, 1, "only the device still in the inventory is expected");
    cr_assert_str_eq(fx_last(&env)->device, "c02");
    iw_rules_engine_free(e);
}

Test(rules, new_rejects_missing_emit)
{
    struct iw_rules_env bad = { 0 };
    struct iw_rules_engine *e = (void *)1;
    cr_assert_eq(iw_rules_engine_new(&cfg.cfg, &bad, T0, &e), IW_E_INVAL);
    cr_assert_null(e);
}

Test(rules, deadlines_run_in_order_once_each)
{
    struct iw_rule *r = fx_rule(&cfg, "gone", IW_RULE_ABSENCE, "camera/*/*");
    struct iw_rules_engine *e;
    char dev[32];
    int64_t last = 0;
    struct iw_rules_stats st;

    r->p.after_ms = 10 * MINUTE;
    e = engine(T0);
    /* 300 cameras; camera i last reports at T0 + (i * 7919 % 300) s, so deadlines interleave. */
    for (int i = 0; i < 300; i++) {
        snprintf(dev, sizeof(dev), "c%03d", i);
        fx_feed(e, "camera", "s1", dev, "online", T0, 1);
        fx_feed(e, "camera", "s1", dev, "online", T0 + (i * 7919 % 300) * SEC, 1);
    }
    for (int64_t now = T0; now <= T0 + 20 * MINUTE; now += 7 * SEC) {
        iw_rules_tick(e, now);
        cr_assert_geq(iw_rules_next_deadline(e), now + 1);
    }
    cr_assert_eq(env.n_alerts, 300);
    for (size_t i = 0; i < env.n_alerts; i++) {
        cr_assert_geq(env.alerts[i]->ts, last, "alert %zu out of deadline order", i);
        last = env.alerts[i]->ts;
    }
    iw_rules_engine_stats(e, &st);
    cr_assert_eq(st.timers, 0, "firing absences wait for a message, not a timer");
    cr_assert_eq(iw_rules_next_deadline(e), INT64_MAX);
    iw_rules_engine_free(e);
}

/* ==========================================================================
 * the engine's cache by store series id (the pipeline's fast path)
 * ======================================================================== */

static void feed_id(struct iw_rules_engine *e, const char *dev, uint32_t id, int64_t ts, double v)
{
    struct iw_rsample s = fx_sample("water", "s1", dev, "nh3_n", ts, v);
    s.series_id = id;
    iw_rules_on_sample(e, &s);
}

Test(rules, series_id_cache_keeps_series_apart_and_follows_a_reload)
{
    struct fx_cfg next;
    struct iw_rules_engine *e;

    thr_rule("t", 0);
    e = engine(T0);
    feed_id(e, "w01", 1, T0, 11);
    feed_id(e, "w02", 2, T0, 11);
    cr_assert_eq(env.n_alerts, 2, "each series fires its own instance");
    cr_assert_str_eq(env.alerts[0]->device, "w01");
    cr_assert_str_eq(env.alerts[1]->device, "w02");
    feed_id(e, "w01", 1, T0 + MINUTE, 1);
    cr_assert_eq(env.n_alerts, 3);
    cr_assert_str_eq(fx_last(&env)->device, "w01", "id 1 resolves w01, not the last series seen");
    cr_assert_str_eq(fx_last(&env)->id, env.alerts[0]->id);

    /* After a reload the cached instances are gone: the new rule selects w02 only. */
    fx_cfg_init(&next);
    struct iw_rule *r = fx_rule(&next, "only_w02", IW_RULE_THRESHOLD, "water/*/w02/nh3_n");
    r->p.has_above = true;
    r->p.above = 10;
    cr_assert_eq(iw_rules_engine_reload(e, &next.cfg, T0 + 2 * MINUTE), IW_OK);
    size_t n = env.n_alerts;                /* the removed rule's w02 instance resolved */
    feed_id(e, "w01", 1, T0 + 3 * MINUTE, 20);
    cr_assert_eq(env.n_alerts, n, "w01 is no longer selected");
    feed_id(e, "w02", 2, T0 + 3 * MINUTE, 20);
    cr_assert_eq(env.n_alerts, n + 1);
    cr_assert_str_eq(fx_last(&env)->rule, "only_w02");
    cr_assert_str_eq(fx_last(&env)->device, "w02");
    iw_rules_engine_free(e);
}
