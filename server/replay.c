/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay: one rule engine driven over handed-in samples with a simulated
 * wall clock (contract in islewatch/replay.h). The in-memory series and state
 * tables are glibc binary trees (tsearch): a replay holds a few thousand
 * series at most, and the trees keep the code short and the order stable.
 */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/replay.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"

struct mseries {
    char *name;                     /* first member: the tree compares by name */
    struct iw_point *pts;           /* sorted by ts, one per ts */
    size_t n, cap;
};

struct mstate {
    char *key;                      /* first member, as above */
    void *val;
    size_t len;
};

struct iw_replay {
    struct iw_config view;          /* cfg with the rule filter and inventory option applied */
    struct iw_rule *rules;          /* the view's rules: shallow copies (strings borrowed) */
    struct iw_store *store;
    int (*read_history)(void *ctx, const char *series, int64_t from, int64_t to,
                        iw_rules_point_cb cb, void *cbctx);
    void *history_ctx;
    int (*each_series)(void *ctx, int (*cb)(void *cbctx, const char *source, const char *site,
                                            const char *device, const char *metric),
                       void *cbctx);
    void *series_ctx;
    bool keep_inputs, drop_derived;
    struct iw_rules_engine *eng;
    int64_t clock;                  /* latest time fed or advanced to */
    int64_t ticked;                 /* every deadline <= ticked has run */
    struct iw_alert **alerts;
    size_t n_alerts, cap_alerts;
    void *series;                   /* tsearch root of struct mseries */
    void *state;                    /* tsearch root of struct mstate */
    size_t n_state;
    int status;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void fail(struct iw_replay *r, int rc)
{
    if (r->status == IW_OK)
        r->status = rc;
}

/* ==========================================================================
 * Series in memory
 * ======================================================================== */

static struct mseries *mseries_find(const struct iw_replay *r, const char *name)
{
    void *const *n = tfind(&name, &r->series, by_name);
    return n ? *n : NULL;
}

static struct mseries *mseries_get(struct iw_replay *r, const char *name)
{
    struct mseries *m = mseries_find(r, name), **slot;

    if (m != NULL)
        return m;
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->name = strdup(name)) == NULL) {
        free(m);
        return NULL;
    }
    slot = tsearch(m, &r->series, by_name);
    if (slot == NULL) {
        free(m->name);
        free(m);
        return NULL;
    }
    return m;
}

/* Index of the first point with ts >= t. */
static size_t lower_bound(const struct mseries *m, int64_t t)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->pts[mid].ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Put a point, replacing one at the same ts (as the store does). */
static int mseries_put(struct iw_replay *r, const char *name, int64_t ts, double v, char flag)
{
    struct mseries *m = mseries_get(r, name);
    size_t i;

    if (m == NULL)
        return IW_E_NOMEM;
    i = m->n > 0 && m->pts[m->n - 1].ts < ts ? m->n : lower_bound(m, ts);
    if (i < m->n && m->pts[i].ts == ts) {
        m->pts[i] = (struct iw_point){ ts, v, flag };
        return IW_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct iw_point *p = realloc(m->pts, cap * sizeof(*p));
        if (p == NULL)
            return IW_E_NOMEM;
        m->pts = p;
        m->cap = cap;
    }
    memmove(&m->pts[i + 1], &m->pts[i], (m->n - i) * sizeof(*m->pts));
    m->pts[i] = (struct iw_point){ ts, v, flag };
    m->n++;
    return IW_OK;
}

static void mseries_free(void *p)
{
    struct mseries *m = p;
    free(m->name);
    free(m->pts);
    free(m);
}

/* ==========================================================================
 * The engine's environment
 * ======================================================================== */

static void env_emit(void *ctx, const struct iw_alert *a)
{
    struct iw_replay *r = ctx;

    if (r->n_alerts == r->cap_alerts) {
        size_t cap = r->cap_alerts ? r->cap_alerts * 2 : 64;
        struct iw_alert **p = realloc(r->alerts, cap * sizeof(*p));
        if (p == NULL) {
            fail(r, IW_E_NOMEM);
            return;
        }
        r->alerts = p;
        r->cap_alerts = cap;
    }
    if (iw_alert_dup(a, &r->alerts[r->n_alerts]) != IW_OK) {
        fail(r, IW_E_NOMEM);
        return;
    }
    r->n_alerts++;
}

static int env_state_put(void *ctx, const char *key, const void *val, size_t len)
{
    struct iw_replay *r = ctx;
    struct mstate *s, **slot;
    void *copy = malloc(len ? len : 1);

    if (copy == NULL)
        return IW_E_NOMEM;
    memcpy(copy, val, len);
    slot = tfind(&key, &r->state, by_name);
    if (slot != NULL) {
        free((*slot)->val);
        (*slot)->val = copy;
        (*slot)->len = len;
        return IW_OK;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->key = strdup(key)) == NULL || tsearch(s, &r->state, by_name) == NULL) {
        if (s != NULL)
            free(s->key);
        free(s);
        free(copy);
        return IW_E_NOMEM;
    }
    s->val = copy;
    s->len = len;
    r->n_state++;
    return IW_OK;
}

static void mstate_free(void *p)
{
    struct mstate *s = p;
    free(s->key);
    free(s->val);
    free(s);
}

static int env_state_del(void *ctx, const char *key)
{
    struct iw_replay *r = ctx;
    struct mstate **slot = tfind(&key, &r->state, by_name), *s;

    if (slot == NULL)
        return IW_OK;
    s = *slot;
    tdelete(s, &r->state, by_name);
    mstate_free(s);
    r->n_state--;
    return IW_OK;
}

static int env_write_point(void *ctx, const char *series, int64_t ts, double value, bool valid)
{
    struct iw_replay *r = ctx;
    if (r->drop_derived)
        return IW_OK;
    return mseries_put(r, series, ts, value, valid ? 0 : 'I');
}

static int env_read_points(void *ctx, const char *series, int64_t from, int64_t to,
                           iw_rules_point_cb cb, void *cbctx)
{
    return iw_replay_read_points(ctx, series, from, to, cb, cbctx);
}

struct store_read {
    iw_rules_point_cb cb;
    void *cbctx;
};

static int store_point(void *ctx, const struct iw_point *p)
{
    struct store_read *sr = ctx;
    return sr->cb(sr->cbctx, p->ts, p->value, p->flag);
}

int iw_replay_read_points(struct iw_replay *r, const char *series, int64_t from, int64_t to,
                          iw_rules_point_cb cb, void *cbctx)
{
    const struct mseries *m = mseries_find(r, series);

    if (from > to)
        return IW_OK;
    if (m != NULL) {
        for (size_t i = lower_bound(m, from); i < m->n && m->pts[i].ts <= to; i++)
            if (cb(cbctx, m->pts[i].ts, m->pts[i].value, m->pts[i].flag) != 0)
                break;
        return IW_OK;
    }
    if (r->store != NULL) {
        const struct iw_series *s = iw_store_series_find(r->store, series, strlen(series));
        struct store_read sr = { cb, cbctx };
        if (s == NULL)
            return IW_OK;
        /* The store reads [from, to); the engine asks for [from, to]. */
        return iw_store_read_points(r->store, s->id, from, to == INT64_MAX ? to : to + 1,
                                    store_point, &sr);
    }
    if (r->read_history != NULL)
        return r->read_history(r->history_ctx, series, from, to, cb, cbctx);
    return IW_OK;
}

static int env_each_series(void *ctx, int (*cb)(void *cbctx, const char *source, const char *site,
                                                const char *device, const char *metric),
                           void *cbctx)
{
    struct iw_replay *r = ctx;
    return r->each_series(r->series_ctx, cb, cbctx);
}

/* ==========================================================================
 * Construction
 * ======================================================================== */

static bool rule_selected(const struct iw_replay_opts *o, const char *name)
{
    if (o->rules == NULL)
        return true;
    for (size_t i = 0; i < o->n_rules; i++)
        if (iw_glob_match(o->rules[i], name))
            return true;
    return false;
}

/*
 * The engine borrows a config; a filtered one is a shallow copy whose rule
 * array holds copies of the selected rules' structs (their strings and
 * site tables still belong to opts->cfg).
 */
static int build_view(struct iw_replay *r, const struct iw_replay_opts *o)
{
    const struct iw_config *cfg = o->cfg;
    size_t n = 0;

    r->view = *cfg;
    r->rules = calloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*r->rules));
    if (r->rules == NULL)
        return IW_E_NOMEM;
    for (size_t i = 0; i < cfg->n_rules; i++)
        if (rule_selected(o, cfg->rules[i].name))
            r->rules[n++] = cfg->rules[i];
    r->view.rules = r->rules;
    r->view.n_rules = n;
    if (o->no_inventory) {
        r->view.devices = NULL;
        r->view.n_devices = 0;
    }
    return IW_OK;
}

static int engine_start(struct iw_replay *r, int64_t start_ms)
{
    struct iw_rules_env env = {
        .ctx = r,
        .emit = env_emit,
        .state_put = env_state_put,
        .state_del = env_state_del,
        .write_point = env_write_point,
        .read_points = env_read_points,
        .each_series = r->each_series != NULL ? env_each_series : NULL,
    };
    int rc = iw_rules_engine_new(&r->view, &env, start_ms, &r->eng);
    if (rc == IW_OK)
        iw_rules_hold_late(r->eng, true);   /* as the daemon judges a backlog */
    return rc;
}

int iw_replay_new(const struct iw_replay_opts *o, struct iw_replay **out)
{
    struct iw_replay *r;
    int rc;

    *out = NULL;
    if (o == NULL || o->cfg == NULL)
        return IW_E_INVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return IW_E_NOMEM;
    r->store = o->store;
    r->read_history = o->read_history;
    r->history_ctx = o->history_ctx;
    r->each_series = o->each_series;
    r->series_ctx = o->series_ctx;
    r->keep_inputs = o->keep_inputs;
    r->drop_derived = o->drop_derived;
    r->clock = o->start_ms;
    r->ticked = o->start_ms == INT64_MIN ? INT64_MIN : o->start_ms - 1;
    rc = build_view(r, o);
    if (rc == IW_OK)
        rc = engine_start(r, o->start_ms);
    if (rc != IW_OK) {
        iw_replay_free(r);
        return rc;
    }
    *out = r;
    return IW_OK;
}

void iw_replay_free(struct iw_replay *r)
{
    if (r == NULL)
        return;
    iw_rules_engine_free(r->eng);
    for (size_t i = 0; i < r->n_alerts; i++)
        iw_alert_free(r->alerts[i]);
    free(r->alerts);
    tdestroy(r->series, mseries_free);
    tdestroy(r->state, mstate_free);
    free(r->rules);
    free(r);
}

size_t iw_replay_rule_count(const struct iw_replay *r)
{
    return r->view.n_rules;
}

const struct iw_rule *iw_replay_rule(const struct iw_replay *r, size_t i)
{
    return i < r->view.n_rules ? &r->view.rules[i] : NULL;
}

/* ==========================================================================
 * Driving
 * ======================================================================== */

void iw_replay_advance(struct iw_replay *r, int64_t now_ms)
{
    int64_t due;

    /* One deadline at a time, each at its own time, as the daemon's ticks
     * run them: what a deadline schedules (the next `repeat`) counts from
     * it, not from wherever the clock jumps to. After a tick the engine has
     * nothing due up to it, so the loop moves forward. */
    while (now_ms > r->ticked && (due = iw_rules_next_deadline(r->eng)) <= now_ms) {
        if (due > r->ticked)
            r->ticked = due;
        iw_rules_tick(r->eng, r->ticked);
    }
    if (now_ms > r->ticked) {
        iw_rules_tick(r->eng, now_ms);
        r->ticked = now_ms;
    }
    if (now_ms > r->clock)
        r->clock = now_ms;
}

void iw_replay_finish(struct iw_replay *r)
{
    iw_rules_finish_late(r->eng);
}

void iw_replay_feed(struct iw_replay *r, const struct iw_rsample *s, size_t n)
{
    int64_t w;
    char name[1024];

    if (n == 0)
        return;
    w = s[0].recv_ms;
    /* Deadlines strictly before the receipt run first: a message at the
     * deadline itself is in time (see the header). */
    if (w != INT64_MIN)
        iw_replay_advance(r, w - 1);
    if (w > r->clock)
        r->clock = w;
    if (r->keep_inputs) {
        for (size_t i = 0; i < n; i++) {
            if (s[i].alive)
                continue;                   /* a message of no sample stores nothing */
            int len = snprintf(name, sizeof(name), "%s/%s/%s/%s", s[i].source, s[i].site,
                               s[i].device, s[i].metric);
            if (len < 0 || (size_t)len >= sizeof(name))
                continue;
            if (mseries_put(r, name, s[i].ts, s[i].value, s[i].flag) != IW_OK)
                fail(r, IW_E_NOMEM);
        }
    }
    iw_rules_on_samples(r->eng, s, n);
}

int64_t iw_replay_now(const struct iw_replay *r)
{
    return r->clock;
}

/* A copy of the state table: restoring may put and delete records. */
struct state_copy {
    struct mstate *recs;
    size_t n, cap;
    int rc;
};

static void copy_one(const void *node, VISIT which, void *ctx)
{
    struct state_copy *c = ctx;
    const struct mstate *s = *(const struct mstate *const *)node;
    struct mstate *d;

    /* twalk_r visits an inner node three times and a leaf once. */
    if ((which != postorder && which != leaf) || c->rc != IW_OK)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct mstate *p = realloc(c->recs, cap * sizeof(*p));
        if (p == NULL) {
            c->rc = IW_E_NOMEM;
            return;
        }
        c->recs = p;
        c->cap = cap;
    }
    d = &c->recs[c->n];
    d->key = strdup(s->key);
    d->val = malloc(s->len ? s->len : 1);
    d->len = s->len;
    if (d->key == NULL || d->val == NULL) {
        free(d->key);
        free(d->val);
        c->rc = IW_E_NOMEM;
        return;
    }
    memcpy(d->val, s->val, s->len);
    c->n++;
}

int iw_replay_restart(struct iw_replay *r, int64_t now_ms)
{
    struct state_copy c = { NULL, 0, 0, IW_OK };
    struct iw_rules_engine *old = r->eng;
    int rc;

    iw_replay_advance(r, now_ms);
    twalk_r(r->state, copy_one, &c);
    rc = c.rc;
    if (rc == IW_OK) {
        rc = engine_start(r, now_ms);
        if (rc == IW_OK)
            iw_rules_engine_free(old);
        else
            r->eng = old;
    }
    for (size_t i = 0; i < c.n; i++) {
        if (rc == IW_OK && iw_rules_engine_restore(r->eng, c.recs[i].key, c.recs[i].val,
                                                   c.recs[i].len) == IW_E_NOMEM)
            rc = IW_E_NOMEM;
        free(c.recs[i].key);
        free(c.recs[i].val);
    }
    free(c.recs);
    return rc;
}

size_t iw_replay_alert_count(const struct iw_replay *r)
{
    return r->n_alerts;
}

const struct iw_alert *iw_replay_alert(const struct iw_replay *r, size_t i)
{
    return i < r->n_alerts ? r->alerts[i] : NULL;
}

size_t iw_replay_state_count(const struct iw_replay *r)
{
    return r->n_state;
}

int iw_replay_status(const struct iw_replay *r)
{
    return r->status;
}

void iw_replay_stats(const struct iw_replay *r, struct iw_rules_stats *out)
{
    iw_rules_engine_stats(r->eng, out);
}

/* ==========================================================================
 * Helpers for the commands
 * ======================================================================== */

/* Split series into exactly want (3 or 4) non-empty levels. */
static int split_levels(const char *series, char *buf, size_t len, struct iw_rsample *s,
                        size_t want)
{
    char *lv[4], *p;
    size_t n = 0;

    if (series == NULL || strlen(series) >= len)
        return IW_E_INVAL;
    strcpy(buf, series);
    for (p = buf; n < want; n++) {
        lv[n] = p;
        p = strchr(p, '/');
        if (p == NULL) {
            n++;
            break;
        }
        *p++ = '\0';
    }
    if (n != want || p != NULL)
        return IW_E_INVAL;
    for (size_t i = 0; i < want; i++)
        if (lv[i][0] == '\0')
            return IW_E_INVAL;
    s->source = lv[0];
    s->site = lv[1];
    s->device = lv[2];
    s->metric = want == 4 ? lv[3] : "";
    s->alive = want == 3;
    return IW_OK;
}

int iw_replay_split(const char *series, char *buf, size_t len, struct iw_rsample *s)
{
    return split_levels(series, buf, len, s, 4);
}

int iw_replay_split_device(const char *series, char *buf, size_t len, struct iw_rsample *s)
{
    return split_levels(series, buf, len, s, 3);
}

bool iw_replay_is_event_source(const struct iw_config *cfg, const char *source)
{
    for (size_t i = 0; i < cfg->n_sources; i++)
        if (strcmp(cfg->sources[i].name, source) == 0)
            return cfg->sources[i].format == IW_FMT_EVENT;
    return false;
}

bool iw_replay_is_derived_metric(const char *metric)
{
    static const char *const derived[] = { "class", "aqi", "aqi_level", "aqi_daily",
                                           "aqi_daily_level" };
    for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++)
        if (strcmp(metric, derived[i]) == 0)
            return true;
    return false;
}

static size_t levels(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '/';
    return n;
}

bool iw_replay_wants(const struct iw_replay *r, const char *series)
{
    char buf[1024];
    struct iw_rsample s;

    if (iw_replay_split(series, buf, sizeof(buf), &s) != IW_OK) {
        /* A device's own entry: its messages without samples, which only the
         * absence and flag rules of a device select take (rules.c). */
        if (iw_replay_split_device(series, buf, sizeof(buf), &s) != IW_OK)
            return false;
        for (size_t i = 0; i < r->view.n_rules; i++) {
            const struct iw_rule *rule = &r->view.rules[i];
            if ((rule->kind == IW_RULE_ABSENCE || rule->kind == IW_RULE_FLAG)
                && rule->select != NULL && levels(rule->select) == 3
                && iw_select_match(rule->select, s.source, s.site, s.device, NULL))
                return true;
        }
        return false;
    }
    if (iw_replay_is_derived_metric(s.metric))
        return false;
    for (size_t i = 0; i < r->view.n_rules; i++) {
        const char *sel = r->view.rules[i].select;
        if (sel != NULL && iw_select_match(sel, s.source, s.site, s.device, s.metric))
            return true;
    }
    return false;
}
