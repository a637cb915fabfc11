/* SPDX-License-Identifier: Apache-2.0 */
/*
 * water_quality: GB 3838-2002 single-factor class of a station over a sliding
 * window of sample time (contract in islewatch/rules.h). The window keeps the
 * unflagged samples of every parameter; each message re-evaluates the means
 * with standards.h and writes the class series. Engine thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/standards.h"
#include "rule_int.h"

#define WATER_DEFAULT_WINDOW (4 * IW_MS_PER_HOUR)

struct wpt {
    int64_t ts;
    double v;
};

struct wseries {
    struct wpt *w;                  /* sorted by ts */
    size_t n, cap;
};

struct water_x {
    struct wseries s[IW_WATER_NPARAM];
    int64_t t;                      /* the device's latest sample time; RT_NONE */
    bool    fresh;                  /* the message brought a sample at or after t */
    bool    late;                   /* of the message being evaluated */
    int64_t recv;
    /* the last evaluation, for the evidence */
    bool    has_res;
    struct iw_water_result res;
    double  mean[IW_WATER_NPARAM];
    size_t  count[IW_WATER_NPARAM];
    int     target;
    enum iw_water_body body;
    /* the device's inventory entry, looked up once per config */
    uint64_t inv_gen;               /* e->cfg_gen of the lookup; 0: none yet */
    const struct iw_device_cfg *inv;
};

static int64_t window_of(const struct inst *in)
{
    return in->p->window_ms > 0 ? in->p->window_ms : WATER_DEFAULT_WINDOW;
}

int64_t iw__water_window(const struct inst *in)
{
    return window_of(in);
}

static bool water_accepts(const struct rule_rt *rr, const struct iw_rsample *s)
{
    (void)rr;
    return !s->is_event && iw_water_param_find(s->metric) >= 0;
}

static bool device_level(const struct rule_rt *rr)
{
    (void)rr;
    return false;
}

static void water_init(struct iw_rules_engine *e, struct inst *in)
{
    (void)e;
    ((struct water_x *)in->x)->t = RT_NONE;
}

static bool ws_insert(struct wseries *s, int64_t ts, double v)
{
    size_t i = s->n;
    while (i > 0 && s->w[i - 1].ts > ts)
        i--;
    if (i > 0 && s->w[i - 1].ts == ts) {
        s->w[i - 1].v = v;
        return true;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        struct wpt *w = realloc(s->w, cap * sizeof(*w));
        if (w == NULL)
            return false;
        s->w = w;
        s->cap = cap;
    }
    memmove(&s->w[i + 1], &s->w[i], (s->n - i) * sizeof(*s->w));
    s->w[i] = (struct wpt){ ts, v };
    s->n++;
    return true;
}

static void ws_evict(struct wseries *s, int64_t oldest_excluded)
{
    size_t k = 0;
    while (k < s->n && s->w[k].ts <= oldest_excluded)
        k++;
    if (k > 0) {
        memmove(s->w, s->w + k, (s->n - k) * sizeof(*s->w));
        s->n -= k;
    }
}

struct prime_ctx {
    struct water_x *x;
    int param;
};

static int prime_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct prime_ctx *pc = ctx;
    if (!iw__flagged(flag) && isfinite(v) && ws_insert(&pc->x->s[pc->param], ts, v)
        && (pc->x->t == RT_NONE || ts > pc->x->t))
        pc->x->t = ts;
    return 0;
}

static void prime(struct iw_rules_engine *e, struct inst *in, int64_t ts)
{
    struct water_x *x = in->x;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        struct prime_ctx pc = { x, p };
        iw__read_points(e, in, iw_water_param_info((enum iw_water_param)p)->metric,
                        ts - window_of(in) + 1, ts - 1, prime_cb, &pc);
    }
}

static void water_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct water_x *x = in->x;
    int p = iw_water_param_find(s->metric);

    if (p < 0 || iw__flagged(s->flag) || !isfinite(s->value))
        return;
    if (!in->primed)
        prime(e, in, s->ts);
    in->primed = true;
    /* Older than the time judged last: judged on its own time by a replay of
     * the store (rule_late.c), which also rewrites the class points it
     * changes. In the window, it changes the judgement at x->t too: the
     * message's end judges that time again (after the replay, whose open
     * episode the live instance has then taken over). */
    if (x->t != RT_NONE && s->ts < x->t) {
        iw__out_of_order(e, in, s, x->t);
        if (s->ts <= x->t - window_of(in))
            return;
    }
    if (!ws_insert(&x->s[p], s->ts, s->value)) {
        IW_LOG_ERROR("rules", "out of memory growing the water window of %s", in->key);
        return;
    }
    if (x->t == RT_NONE || s->ts > x->t)
        x->t = s->ts;
    x->fresh = true;
    x->late = iw__late_at(e, x->t, s->recv_ms);     /* the time judged, received now */
    x->recv = s->recv_ms;
}

/* Target as iw_water_target says; body: the rule's (site override included), else the inventory's. */
static void resolve_target(const struct iw_rules_engine *e, const struct inst *in, struct water_x *x)
{
    const struct iw_device_cfg *d;

    if (x->inv_gen != e->cfg_gen) {
        x->inv = iw__inventory(e->cfg, in->source, in->site, in->device);
        x->inv_gen = e->cfg_gen;
    }
    d = x->inv;
    x->target = iw_water_target(in->p, d);
    x->body = in->p->has_body ? in->p->body : d != NULL ? d->body : IW_BODY_RIVER;
}

static void water_message_end(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *last)
{
    struct water_x *x = in->x;
    struct iw_water_input win = { 0 };
    enum iw_severity sev;
    bool breach;
    (void)last;

    if (x->t == RT_NONE || !x->fresh)
        return;
    x->fresh = false;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        struct wseries *s = &x->s[p];
        double sum = 0;
        ws_evict(s, x->t - window_of(in));
        x->count[p] = s->n;
        if (s->n == 0)
            continue;
        for (size_t i = 0; i < s->n; i++)
            sum += s->w[i].v;
        x->mean[p] = sum / (double)s->n;
        win.value[p] = x->mean[p];
        win.present[p] = true;
    }
    resolve_target(e, in, x);
    if (iw_water_evaluate(&win, x->body, x->target, &x->res) != IW_OK || x->res.cls == 0)
        return;                         /* nothing that decides a class was reported */
    x->has_res = true;
    iw__write_point(e, in, "class", x->t, (double)x->res.cls, true);
    breach = x->res.cls > x->target;
    sev = x->res.cls == IW_WATER_CLASS_WORSE_THAN_V ? in->p->sev_worse_than_v : in->p->sev_below_target;
    iw__drive(e, in, breach, !breach, sev, x->t, x->late, x->recv);
}

/* The deciding parameter with the worst class; ties: the largest exceedance. */
static int worst_param(const struct water_x *x)
{
    int best = -1;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        if (!x->res.deciding[p])
            continue;
        if (best < 0 || x->res.param_class[p] > x->res.param_class[best]
            || (x->res.param_class[p] == x->res.param_class[best]
                && x->res.exceed[p] > x->res.exceed[best]))
            best = p;
    }
    return best;
}

static void water_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    const struct water_x *x = in->x;
    const struct iw_water_class_info *ci, *ti = iw_water_class_info(x->target);
    cJSON *params, *worse;
    char text[384], val[64], num[32];
    int w = worst_param(x);
    (void)e;

    if (!x->has_res || ti == NULL)
        return;
    ci = iw_water_class_info(x->res.cls);
    if (w >= 0) {
        const struct iw_water_param_info *pi = iw_water_param_info((enum iw_water_param)w);
        ev->metric = pi->metric;
        ev->unit = pi->unit[0] ? pi->unit : NULL;
        ev->has_value = true;
        ev->value = iw__round_sig(x->mean[w], 10);
        /* The limit the value is past: class V's when 劣V (SPEC §5's example), else the target's. */
        ev->has_threshold = iw_water_limit((enum iw_water_param)w, x->body,
                                           x->res.cls == IW_WATER_CLASS_WORSE_THAN_V ? 5 : x->target,
                                           &ev->threshold) == IW_OK;
        /* pH has a range, not a limit: the end of 6-9 its mean is past. */
        if (w == IW_WATER_PH && x->res.param_class[w] == IW_WATER_CLASS_WORSE_THAN_V) {
            ev->has_threshold = true;
            ev->threshold = x->mean[w] > IW_WATER_PH_MAX ? IW_WATER_PH_MAX : IW_WATER_PH_MIN;
        }
    }
    cJSON_AddNumberToObject(ev->details, "window_ms", (double)window_of(in));
    cJSON_AddItemToObject(ev->details, "from", iw__json_time(x->t - window_of(in)));
    cJSON_AddItemToObject(ev->details, "to", iw__json_time(x->t));
    cJSON_AddStringToObject(ev->details, "body", x->body == IW_BODY_LAKE ? "lake" : "river");
    cJSON_AddStringToObject(ev->details, "target", ti->name);
    cJSON_AddStringToObject(ev->details, "class", ci->name);
    cJSON_AddStringToObject(ev->details, "class_zh", ci->name_zh);
    cJSON_AddNumberToObject(ev->details, "class_num", x->res.cls);
    params = cJSON_AddObjectToObject(ev->details, "parameters");
    worse = cJSON_AddArrayToObject(ev->details, "worse_than_target");
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        const struct iw_water_param_info *pi = iw_water_param_info((enum iw_water_param)p);
        const struct iw_water_class_info *pc = iw_water_class_info(x->res.param_class[p]);
        double limit;
        bool has_limit;
        cJSON *o;

        if (x->count[p] == 0)
            continue;
        has_limit = iw_water_limit((enum iw_water_param)p, x->body, x->target, &limit) == IW_OK;
        o = cJSON_AddObjectToObject(params, pi->metric);
        cJSON_AddNumberToObject(o, "mean", iw__round_sig(x->mean[p], 10));
        cJSON_AddNumberToObject(o, "n", (double)x->count[p]);
        if (pc != NULL)
            cJSON_AddStringToObject(o, "class", pc->name);
        cJSON_AddNumberToObject(o, "class_num", x->res.param_class[p]);
        cJSON_AddBoolToObject(o, "decides", x->res.deciding[p]);
        if (has_limit)
            cJSON_AddNumberToObject(o, "target_limit", limit);
    }
    for (size_t i = 0; i < x->res.n_worse; i++) {
        enum iw_water_param p = x->res.worse[i];
        double limit;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "metric", iw_water_param_info(p)->metric);
        cJSON_AddNumberToObject(o, "mean", iw__round_sig(x->mean[p], 10));
        if (iw_water_limit(p, x->body, x->target, &limit) == IW_OK)
            cJSON_AddNumberToObject(o, "limit", limit);
        else if (p == IW_WATER_PH)
            cJSON_AddNumberToObject(o, "limit", x->mean[p] > IW_WATER_PH_MAX ? IW_WATER_PH_MAX
                                                                             : IW_WATER_PH_MIN);
        if (p != IW_WATER_PH)           /* no exceedance multiple for pH */
            cJSON_AddNumberToObject(o, "multiple", iw__round_sig(x->res.exceed[p], IW_WATER_SIG_DIGITS));
        cJSON_AddItemToArray(worse, o);
    }
    iw__ev_var(ev, "class", ci->name);
    iw__ev_var(ev, "class_zh", ci->name_zh);
    iw__ev_var(ev, "target", ti->name);
    iw__ev_var(ev, "target_zh", ti->name_zh);
    if (w >= 0)
        snprintf(val, sizeof(val), ": %s %s%s%s", iw_metric_display(ev->metric),
                 iw__fmt_num(ev->value, num, sizeof(num)), ev->unit ? " " : "", ev->unit ? ev->unit : "");
    else
        val[0] = '\0';
    snprintf(text, sizeof(text), "is Class %s (target %s)%s", ci->name, ti->name,
             ev->status == IW_ALERT_FIRING ? val : "");
    iw__ev_var(ev, "summary", text);
}

static void water_fini(struct inst *in)
{
    struct water_x *x = in->x;
    for (int p = 0; p < IW_WATER_NPARAM; p++)
        free(x->s[p].w);
}

const struct kind_ops iw__water_ops = {
    .x_size = sizeof(struct water_x),
    .per_metric = device_level,
    .accepts = water_accepts,
    .sample = water_sample,
    .message_end = water_message_end,
    .evidence = water_evidence,
    .init = water_init,
    .fini = water_fini,
};
