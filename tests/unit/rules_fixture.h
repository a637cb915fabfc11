/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture for the rule engine: a hand-built config (no YAML, so these
 * tests do not depend on the loader) and a fake environment that records
 * every alert, keeps state records in a small key-value table, records
 * written points and serves read_points from a list of stored samples.
 * Header-only (static inline) so each Criterion executable gets its copy.
 */
#ifndef ISLEWATCH_TEST_RULES_FIXTURE_H
#define ISLEWATCH_TEST_RULES_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/alert.h"
#include "islewatch/clock.h"
#include "islewatch/rules.h"

#define FX_MAX 4096
#define T0 1780000000000LL          /* an arbitrary epoch base (2026-05-28) */
#define SEC 1000LL
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)

struct fx_point {
    char series[128];
    int64_t ts;
    double v;
    bool valid;
    char flag;
};

struct fx_env {
    struct iw_alert *alerts[FX_MAX];
    size_t n_alerts;
    char *keys[FX_MAX], *vals[FX_MAX];
    size_t n_state;
    size_t puts, dels;
    struct fx_point *points;        /* written by the engine */
    size_t n_points, cap_points;
    struct fx_point *history;       /* served by read_points */
    size_t n_history, cap_history;
    size_t served;                  /* points handed to read_points callbacks */
    const char *owned_device;       /* NULL: own everything */
    const char *stored[8];          /* series names served by each_series */
    size_t n_stored;
};

static inline void fx_emit(void *ctx, const struct iw_alert *a)
{
    struct fx_env *f = ctx;
    cr_assert_lt(f->n_alerts, FX_MAX);
    cr_assert_eq(iw_alert_dup(a, &f->alerts[f->n_alerts]), IW_OK);
    f->n_alerts++;
}

static inline int fx_state_find(struct fx_env *f, const char *key)
{
    for (size_t i = 0; i < f->n_state; i++)
        if (strcmp(f->keys[i], key) == 0)
            return (int)i;
    return -1;
}

static inline int fx_state_put(void *ctx, const char *key, const void *val, size_t len)
{
    struct fx_env *f = ctx;
    int i = fx_state_find(f, key);
    char *v = strndup(val, len);
    f->puts++;
    if (i >= 0) {
        free(f->vals[i]);
        f->vals[i] = v;
        return IW_OK;
    }
    cr_assert_lt(f->n_state, FX_MAX);
    f->keys[f->n_state] = strdup(key);
    f->vals[f->n_state++] = v;
    return IW_OK;
}

static inline int fx_state_del(void *ctx, const char *key)
{
    struct fx_env *f = ctx;
    int i = fx_state_find(f, key);
    f->dels++;
    if (i < 0)
        return IW_OK;
    free(f->keys[i]);
    free(f->vals[i]);
    f->keys[i] = f->keys[f->n_state - 1];
    f->vals[i] = f->vals[f->n_state - 1];
    f->n_state--;
    return IW_OK;
}

/* Room for n points, doubling: a day of minute samples is 10,000s of points,
 * and growing by one copied the array each time under ASan (quadratic). */
static inline struct fx_point *fx_grow(struct fx_point *p, size_t *cap, size_t n)
{
    if (n > *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        p = realloc(p, *cap * sizeof(*p));
        cr_assert_not_null(p);
    }
    return p;
}

static inline int fx_write_point(void *ctx, const char *series, int64_t ts, double v, bool valid)
{
    struct fx_env *f = ctx;
    f->points = fx_grow(f->points, &f->cap_points, f->n_points + 1);
    snprintf(f->points[f->n_points].series, sizeof(f->points[0].series), "%s", series);
    f->points[f->n_points].ts = ts;
    f->points[f->n_points].v = v;
    f->points[f->n_points].valid = valid;
    f->n_points++;
    return IW_OK;
}

/* Store a point as the real store does: in time order, one per (series, ts),
 * so that a late point lands before the newer ones and redelivery replaces. */
static inline void fx_history_add(struct fx_env *f, const char *series, int64_t ts, double v, char flag)
{
    size_t i = f->n_history;
    struct fx_point *p;

    while (i > 0 && f->history[i - 1].ts > ts)
        i--;
    for (size_t k = i; k > 0 && f->history[k - 1].ts == ts; k--)
        if (strcmp(f->history[k - 1].series, series) == 0) {
            f->history[k - 1].v = v;
            f->history[k - 1].flag = flag;
            return;
        }
    f->history = fx_grow(f->history, &f->cap_history, f->n_history + 1);
    memmove(&f->history[i + 1], &f->history[i], (f->n_history - i) * sizeof(*f->history));
    p = &f->history[i];
    snprintf(p->series, sizeof(p->series), "%s", series);
    p->ts = ts;
    p->v = v;
    p->flag = flag;
    p->valid = true;
    f->n_history++;
}

static inline int fx_read_points(void *ctx, const char *series, int64_t from, int64_t to,
                                 iw_rules_point_cb cb, void *cbctx)
{
    struct fx_env *f = ctx;
    for (size_t i = 0; i < f->n_history; i++) {     /* kept in time order */
        const struct fx_point *p = &f->history[i];
        if (strcmp(p->series, series) != 0 || p->ts < from || p->ts > to)
            continue;
        f->served++;
        if (cb(cbctx, p->ts, p->v, p->flag) != 0)
            break;
    }
    return IW_OK;
}

static inline bool fx_owns(void *ctx, const char *source, const char *site, const char *device)
{
    struct fx_env *f = ctx;
    (void)source;
    (void)site;
    return f->owned_device == NULL || strcmp(f->owned_device, device) == 0;
}

static inline int fx_each_series(void *ctx, int (*cb)(void *cbctx, const char *source,
                                                      const char *site, const char *device,
                                                      const char *metric),
                                 void *cbctx)
{
    struct fx_env *f = ctx;
    for (size_t i = 0; i < f->n_stored; i++) {
        char lv[4][64];
        cr_assert_eq(sscanf(f->stored[i], "%63[^/]/%63[^/]/%63[^/]/%63s", lv[0], lv[1], lv[2], lv[3]), 4);
        if (cb(cbctx, lv[0], lv[1], lv[2], lv[3]) != 0)
            break;
    }
    return IW_OK;
}

static inline struct iw_rules_env fx_env_of(struct fx_env *f)
{
    return (struct iw_rules_env){
        .ctx = f, .emit = fx_emit, .state_put = fx_state_put, .state_del = fx_state_del,
        .write_point = fx_write_point, .read_points = fx_read_points, .owns_device = fx_owns,
        .each_series = fx_each_series,
    };
}

static inline void fx_env_fini(struct fx_env *f)
{
    for (size_t i = 0; i < f->n_alerts; i++)
        iw_alert_free(f->alerts[i]);
    for (size_t i = 0; i < f->n_state; i++) {
        free(f->keys[i]);
        free(f->vals[i]);
    }
    free(f->points);
    free(f->history);
    memset(f, 0, sizeof(*f));
}

static inline const struct iw_alert *fx_last(const struct fx_env *f)
{
    cr_assert_gt(f->n_alerts, 0, "no alert was emitted");
    return f->alerts[f->n_alerts - 1];
}

/* ---- config ---------------------------------------------------------------- */

struct fx_cfg {
    struct iw_config cfg;
    struct iw_rule rules[8];
    struct iw_device_cfg devices[8];
    struct iw_silence_cfg silences[4];
    struct iw_kv kv[16];
    size_t n_kv;
};

static inline void fx_cfg_init(struct fx_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->cfg.alerts.topic = "alerts/{severity}/{rule}/{site}/{device}";
    c->cfg.alerts.active_topic = "alerts/active/{rule}/{site}/{device}";
    c->cfg.alerts.qos = 1;
    c->cfg.alerts.live_window_ms = 15 * MINUTE;
    c->cfg.rules = c->rules;
    c->cfg.devices = c->devices;
    c->cfg.silences = c->silences;
}

/* A copy (for reload tests); match/label arrays still point into src. */
static inline void fx_cfg_copy(struct fx_cfg *dst, const struct fx_cfg *src)
{
    memcpy(dst, src, sizeof(*dst));
    dst->cfg.rules = dst->rules;
    dst->cfg.devices = dst->devices;
    dst->cfg.silences = dst->silences;
}

/* A rule with the loader's defaults for every kind. */
static inline struct iw_rule *fx_rule(struct fx_cfg *c, const char *name, enum iw_rule_kind kind,
                                      const char *select)
{
    static const enum iw_severity lv[7] = { IW_SEV_INFO, IW_SEV_INFO, IW_SEV_INFO, IW_SEV_WARNING,
                                            IW_SEV_MAJOR, IW_SEV_CRITICAL, IW_SEV_CRITICAL };
    struct iw_rule *r = &c->rules[c->cfg.n_rules++];
    struct iw_rule_params *p = &r->p;

    memset(r, 0, sizeof(*r));
    r->name = (char *)name;
    r->kind = kind;
    r->select = (char *)select;
    snprintf(r->hash, sizeof(r->hash), "%016llx", (unsigned long long)(strlen(name) * 7919 + kind));
    memcpy(r->cond_hash, r->hash, sizeof(r->hash));
    p->severity = IW_SEV_WARNING;
    p->per_ms = MINUTE;
    p->window_ms = kind == IW_RULE_WATER_QUALITY ? 4 * HOUR : 0;
    p->sev_below_target = IW_SEV_MAJOR;
    p->sev_worse_than_v = IW_SEV_CRITICAL;
    p->min_level = 3;
    p->clear_level = 3;
    memcpy(p->sev_by_level, lv, sizeof(lv));
    p->tz_offset_min = 480;
    p->close_after_ms = 5 * MINUTE;
    return r;
}

static inline struct iw_kv *fx_kv(struct fx_cfg *c, const char *k, const char *v)
{
    struct iw_kv *kv = &c->kv[c->n_kv++];
    kv->key = (char *)k;
    kv->value = (char *)v;
    return kv;
}

static inline struct iw_device_cfg *fx_device(struct fx_cfg *c, const char *source, const char *site,
                                              const char *device)
{
    struct iw_device_cfg *d = &c->devices[c->cfg.n_devices++];
    memset(d, 0, sizeof(*d));
    d->source = (char *)source;
    d->site = (char *)site;
    d->device = (char *)device;
    return d;
}

/* ---- samples ------------------------------------------------------------- */

static inline struct iw_rsample fx_sample(const char *src, const char *site, const char *dev,
                                          const char *metric, int64_t ts, double v)
{
    return (struct iw_rsample){ .source = src, .site = site, .device = dev, .metric = metric,
                                .ts = ts, .value = v, .recv_ms = ts };
}

static inline void fx_feed(struct iw_rules_engine *e, const char *src, const char *site,
                           const char *dev, const char *metric, int64_t ts, double v)
{
    struct iw_rsample s = fx_sample(src, site, dev, metric, ts, v);
    iw_rules_on_sample(e, &s);
}

/* Store a message's samples (as the pipeline does before the rules run: the
 * store already holds a late sample when the engine sees it), then feed them. */
static inline void fx_feed_stored(struct iw_rules_engine *e, struct fx_env *f,
                                  const struct iw_rsample *s, size_t n)
{
    char series[128];
    for (size_t i = 0; i < n; i++) {
        snprintf(series, sizeof(series), "%s/%s/%s/%s", s[i].source, s[i].site, s[i].device,
                 s[i].metric);
        fx_history_add(f, series, s[i].ts, s[i].value, s[i].flag);
    }
    iw_rules_on_samples(e, s, n);
}

/* Save the engine's records, build a new engine on cfg and restore them all. */
static inline struct iw_rules_engine *fx_restart(struct iw_rules_engine *old, struct fx_env *f,
                                                 const struct iw_config *cfg, int64_t now)
{
    struct iw_rules_env env = fx_env_of(f);
    struct iw_rules_engine *e = NULL;
    size_t n = f->n_state;
    char **keys = calloc(n + 1, sizeof(char *)), **vals = calloc(n + 1, sizeof(char *));

    iw_rules_engine_free(old);
    cr_assert_eq(iw_rules_engine_new(cfg, &env, now, &e), IW_OK);
    for (size_t i = 0; i < n; i++) {        /* restore may delete records: iterate a copy */
        keys[i] = strdup(f->keys[i]);
        vals[i] = strdup(f->vals[i]);
    }
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(iw_rules_engine_restore(e, keys[i], vals[i], strlen(vals[i])), IW_OK,
                     "restore of %s: %s", keys[i], vals[i]);
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    return e;
}

#endif /* ISLEWATCH_TEST_RULES_FIXTURE_H */
