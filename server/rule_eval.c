/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-series and per-device kinds: threshold, rate, absence, flag, event.
 * Each decides whether its condition holds for a sample (or a deadline) and
 * hands that to the common machine in rule_core.c; the semantics are written
 * down in islewatch/rules.h. Engine thread only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/topic.h"
#include "rule_int.h"

static bool yes(const struct rule_rt *rr) { (void)rr; return true; }
static bool no(const struct rule_rt *rr) { (void)rr; return false; }

static bool not_event(const struct rule_rt *rr, const struct iw_rsample *s)
{
    (void)rr;
    return !s->is_event;
}

static void add_num(cJSON *o, const char *name, bool has, double v)
{
    if (has && isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
}

static void value_text(const struct evidence *ev, double v, char *buf, size_t len)
{
    char num[32];
    snprintf(buf, len, "%s%s%s", iw__fmt_num(v, num, sizeof(num)), ev->unit ? " " : "",
             ev->unit ? ev->unit : "");
}

/* A pending or firing record whose evidence changes with every sample
 * (threshold, rate) is rewritten at least this often in sample time. */
#define RESAVE_MS (10 * IW_MS_PER_MIN)

/* ==========================================================================
 * threshold
 * ======================================================================== */

struct pt {
    int64_t ts;
    double v;
};

/*
 * What a threshold alert shows must survive a restart as well as the decision
 * does: the state record carries the compared value and its time ("cv", "ct")
 * and the `for:` samples ("fn", "ff", "fs"); restore then catches up from the
 * store (the window, and samples evaluated after the record was written). A
 * pending or firing record is rewritten at least every RESAVE_MS of sample
 * time, so that catch-up reads little.
 */
#define THR_FOR_KEEP 32                         /* `for:` evidence: the last 32 samples */

struct thr_x {
    struct pt *w;                   /* window, sorted by ts */
    size_t n, cap;
    double cur;                     /* the compared value of the last evaluation */
    int64_t cur_ts;                 /* its sample time; RT_NONE */
    bool   has_cur;                 /* false: unknown (e.g. an old record, nothing stored) */
    int64_t primed_to;              /* the window holds the stored points up to here; RT_NONE */
    int64_t saved_ts;               /* cur_ts when the record was last written; RT_NONE */
    struct pt fs[THR_FOR_KEEP];     /* raw `for:` run: ring of its last samples, frozen at fire */
    size_t  fs_n;                   /* samples in the run (all, not only those kept) */
    int64_t fs_from;                /* the run's first sample */
};

static void fs_push(struct thr_x *x, int64_t ts, double v)
{
    if (x->fs_n == 0)
        x->fs_from = ts;
    x->fs[x->fs_n % THR_FOR_KEEP] = (struct pt){ ts, v };
    x->fs_n++;
}

/* The i-th kept sample of the run, oldest first (i < min(fs_n, THR_FOR_KEEP)). */
static const struct pt *fs_at(const struct thr_x *x, size_t i)
{
    size_t first = x->fs_n > THR_FOR_KEEP ? x->fs_n % THR_FOR_KEEP : 0;
    return &x->fs[(first + i) % THR_FOR_KEEP];
}

static size_t fs_kept(const struct thr_x *x)
{
    return x->fs_n < THR_FOR_KEEP ? x->fs_n : THR_FOR_KEEP;
}

static bool win_insert(struct thr_x *x, int64_t ts, double v)
{
    size_t i = x->n;
    while (i > 0 && x->w[i - 1].ts > ts)
        i--;
    if (i > 0 && x->w[i - 1].ts == ts) {      /* redelivery: the store replaces, so do we */
        x->w[i - 1].v = v;
        return true;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        struct pt *w = realloc(x->w, cap * sizeof(*w));
        if (w == NULL)
            return false;
        x->w = w;
        x->cap = cap;
    }
    memmove(&x->w[i + 1], &x->w[i], (x->n - i) * sizeof(*x->w));
    x->w[i] = (struct pt){ ts, v };
    x->n++;
    return true;
}

/* Keep (end - over, end]. */
static void win_evict(struct thr_x *x, int64_t end, int64_t over)
{
    size_t k = 0;
    while (k < x->n && x->w[k].ts <= end - over)
        k++;
    if (k > 0) {
        memmove(x->w, x->w + k, (x->n - k) * sizeof(*x->w));
        x->n -= k;
    }
}

static double win_agg(const struct thr_x *x, enum iw_window_agg agg)
{
    double r = x->w[0].v, sum = 0;
    for (size_t i = 0; i < x->n; i++) {
        double v = x->w[i].v;
        sum += v;
        if ((agg == IW_AGG_MIN && v < r) || (agg == IW_AGG_MAX && v > r))
            r = v;
    }
    /* To 15 significant digits, as the samples were written: a window of
     * 0.1 x 5 and 0.5 x 5 averages 0.3, not 0.30000000000000004, and a
     * strict `above: 0.3` does not fire on it. */
    if (agg == IW_AGG_AVG)
        return iw__round_sig(sum / (double)x->n, 15);
    if (agg == IW_AGG_LAST)
        return x->w[x->n - 1].v;
    return r;
}

static int prime_window_cb(void *ctx, int64_t ts, double v, char flag)
{
    if (!iw__flagged(flag) && isfinite(v))
        win_insert(ctx, ts, v);
    return 0;
}

static bool breaches(const struct iw_rule_params *p, double v)
{
    return (p->has_above && v > p->above) || (p->has_below && v < p->below);
}

static bool clears(const struct iw_rule_params *p, double v)
{
    double cb = p->has_clear_below ? p->clear_below : p->above;
    double ca = p->has_clear_above ? p->clear_above : p->below;
    return !breaches(p, v) && (!p->has_above || v <= cb) && (!p->has_below || v >= ca);
}

static void thr_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct thr_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    bool windowed = p->window_agg != IW_AGG_NONE && p->window_ms > 0;
    double v = s->value;
    enum inst_state was;
    bool breach;

    if (iw__flagged(s->flag) || !isfinite(v))
        return;
    if (windowed && !in->primed) {
        int64_t from = s->ts - p->window_ms + 1;
        if (x->primed_to != RT_NONE && x->primed_to >= from)
            from = x->primed_to + 1;         /* restore read the store up to there */
        iw__read_points(e, in, in->metric, from, s->ts - 1, prime_window_cb, x);
    }
    in->primed = true;
    if (in->last_ts != RT_NONE && s->ts < in->last_ts) {
        /* The live window holds it for the samples to come; its own time is
         * evaluated at the end of the message (rule_late.c). */
        if (windowed && s->ts > in->last_ts - p->window_ms)
            win_insert(x, s->ts, v);
        iw__out_of_order(e, in, s, in->last_ts);
        return;
    }
    in->last_ts = s->ts;
    if (windowed) {
        if (!win_insert(x, s->ts, v)) {
            IW_LOG_ERROR("rules", "out of memory growing the window of %s", in->key);
            return;
        }
        win_evict(x, s->ts, p->window_ms);
        v = win_agg(x, p->window_agg);
    }
    x->cur = v;
    x->cur_ts = s->ts;
    x->has_cur = true;
    breach = breaches(p, v);
    if (!windowed && p->for_ms > 0 && breach && in->st != ST_FIRING) {
        if (in->st == ST_INACTIVE)
            x->fs_n = 0;                    /* a new run */
        fs_push(x, s->ts, v);
    }
    was = in->st;
    iw__drive(e, in, breach, clears(p, v), p->severity, s->ts, iw__late(e, s), s->recv_ms);
    if (in->st != was || x->saved_ts == RT_NONE) {
        x->saved_ts = s->ts;                /* a transition wrote the record (or removed it) */
    } else if (in->st != ST_INACTIVE && s->ts - x->saved_ts >= RESAVE_MS) {
        iw__save(e, in);
        x->saved_ts = s->ts;
    }
}

static void thr_init(struct iw_rules_engine *e, struct inst *in)
{
    struct thr_x *x = in->x;
    (void)e;
    x->cur_ts = x->primed_to = x->saved_ts = x->fs_from = RT_NONE;
}

static cJSON *json_pair(int64_t ts, double v)
{
    cJSON *pair = cJSON_CreateArray();
    cJSON_AddItemToArray(pair, iw__json_time(ts));
    cJSON_AddItemToArray(pair, cJSON_CreateNumber(v));
    return pair;
}

static void thr_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    static const char *const aggs[] = { "", "avg", "min", "max", "last" };
    const struct thr_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    bool use_above = p->has_above && (!p->has_below || !x->has_cur || x->cur >= p->below);
    /* A window average is shown as a person computes it (0.15, not
     * 0.15000000000000002); the decision used the exact value. */
    double cur = p->window_agg == IW_AGG_AVG ? iw__round_sig(x->cur, 10) : x->cur;
    char val[64] = "", thr[32], text[256], dur[32];
    (void)e;

    ev->has_value = x->has_cur;
    ev->value = cur;
    ev->has_threshold = p->has_above || p->has_below;
    ev->threshold = use_above ? p->above : p->below;
    if (x->has_cur)                 /* an unknown value is never shown as a number */
        value_text(ev, cur, val, sizeof(val));
    iw__fmt_num(ev->threshold, thr, sizeof(thr));
    add_num(ev->details, "value", x->has_cur, cur);
    if (x->has_cur && x->cur_ts != RT_NONE)
        cJSON_AddItemToObject(ev->details, "value_ts", iw__json_time(x->cur_ts));
    add_num(ev->details, "above", p->has_above, p->above);
    add_num(ev->details, "below", p->has_below, p->below);
    add_num(ev->details, "clear_below", p->has_clear_below, p->clear_below);
    add_num(ev->details, "clear_above", p->has_clear_above, p->clear_above);
    cJSON_AddNumberToObject(ev->details, "for_ms", (double)p->for_ms);
    cJSON_AddNumberToObject(ev->details, "clear_for_ms", (double)p->clear_for_ms);
    if (p->window_agg != IW_AGG_NONE && x->n > 0) {
        cJSON *w = cJSON_AddObjectToObject(ev->details, "window");
        cJSON *vals = cJSON_AddArrayToObject(w, "values");
        size_t first = x->n > 60 ? x->n - 60 : 0;  /* the most recent 60 suffice as evidence */
        cJSON_AddStringToObject(w, "agg", aggs[p->window_agg]);
        cJSON_AddNumberToObject(w, "over_ms", (double)p->window_ms);
        cJSON_AddNumberToObject(w, "n", (double)x->n);
        cJSON_AddItemToObject(w, "from", iw__json_time(x->w[0].ts));
        cJSON_AddItemToObject(w, "to", iw__json_time(x->w[x->n - 1].ts));
        for (size_t i = first; i < x->n; i++)
            cJSON_AddItemToArray(vals, json_pair(x->w[i].ts, x->w[i].v));
    }
    if (p->window_agg == IW_AGG_NONE && p->for_ms > 0 && x->fs_n > 0
        && ev->status == IW_ALERT_FIRING) {
        /* The samples that kept the condition true for `for:`, the last ones if many. */
        cJSON *f = cJSON_AddObjectToObject(ev->details, "for");
        cJSON *vals = cJSON_AddArrayToObject(f, "values");
        size_t kept = fs_kept(x);
        cJSON_AddNumberToObject(f, "n", (double)x->fs_n);
        cJSON_AddItemToObject(f, "from", iw__json_time(x->fs_from));
        cJSON_AddItemToObject(f, "to", iw__json_time(fs_at(x, kept - 1)->ts));
        for (size_t i = 0; i < kept; i++)
            cJSON_AddItemToArray(vals, json_pair(fs_at(x, i)->ts, fs_at(x, i)->v));
    }
    if (p->window_agg != IW_AGG_NONE && (x->n > 0 || x->has_cur))
        snprintf(text, sizeof(text), "%s %s of ", aggs[p->window_agg],
                 iw__fmt_dur(p->window_ms, dur, sizeof(dur)));
    else
        text[0] = '\0';
    if (ev->status == IW_ALERT_FIRING && x->has_cur && !breaches(p, x->cur)) {
        /* Still firing (a repeat) in the hysteresis band or during clear_for:
         * the value is inside again, so say what resolves it instead. */
        char clr[32], after[48] = "";
        iw__fmt_num(use_above ? (p->has_clear_below ? p->clear_below : p->above)
                              : (p->has_clear_above ? p->clear_above : p->below), clr, sizeof(clr));
        if (p->clear_for_ms > 0)
            snprintf(after, sizeof(after), " after %s",
                     iw__fmt_dur(p->clear_for_ms, dur, sizeof(dur)));
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "%s%s%s, no longer %s %s; resolves%s at or %s %s", iw_metric_display(in->metric),
                 val[0] ? " " : "", val, use_above ? "above" : "below", thr, after,
                 use_above ? "below" : "above", clr);
    } else if (ev->status == IW_ALERT_FIRING)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s%s %s %s",
                 iw_metric_display(in->metric), val[0] ? " " : "", val,
                 use_above ? "above" : "below", thr);
    else
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s%s, back within %s",
                 iw_metric_display(in->metric), val[0] ? " " : "", val, thr);
    iw__ev_var(ev, "summary", text);
}

static void thr_save(const struct inst *in, cJSON *o)
{
    const struct thr_x *x = in->x;
    cJSON *fs;

    if (x->has_cur) {
        cJSON_AddNumberToObject(o, "cv", x->cur);
        if (x->cur_ts != RT_NONE)
            cJSON_AddNumberToObject(o, "ct", (double)x->cur_ts);
    }
    if (x->fs_n == 0 || in->p->for_ms <= 0 || in->p->window_agg != IW_AGG_NONE)
        return;
    cJSON_AddNumberToObject(o, "fn", (double)x->fs_n);
    cJSON_AddNumberToObject(o, "ff", (double)x->fs_from);
    fs = cJSON_AddArrayToObject(o, "fs");
    for (size_t i = 0; i < fs_kept(x); i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)fs_at(x, i)->ts));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(fs_at(x, i)->v));
        cJSON_AddItemToArray(fs, pair);
    }
}

struct thr_catch_up {
    struct inst *in;
    int64_t after;                  /* points after this time are new */
};

/* Stored points after the record: what the engine evaluated since it was written. */
static int thr_catch_up_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct thr_catch_up *c = ctx;
    struct thr_x *x = c->in->x;
    const struct iw_rule_params *p = c->in->p;

    if (iw__flagged(flag) || !isfinite(v) || ts <= c->after)
        return 0;
    x->cur = v;
    x->cur_ts = ts;
    x->has_cur = true;
    if (c->in->st == ST_PENDING && p->for_ms > 0 && breaches(p, v))
        fs_push(x, ts, v);
    return 0;
}

static bool json_num(const cJSON *o, const char *name, double *out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return false;
    *out = j->valuedouble;
    return true;
}

/* A stored time: a number within what a double holds exactly. */
static bool json_ms(const cJSON *o, const char *name, int64_t *out)
{
    double d;
    if (!json_num(o, name, &d) || fabs(d) > 9.0e15)
        return false;
    *out = (int64_t)d;
    return true;
}

static void thr_load(struct iw_rules_engine *e, struct inst *in, const cJSON *o)
{
    struct thr_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    const cJSON *it, *fs = cJSON_GetObjectItemCaseSensitive(o, "fs");
    double fn = 0;
    int64_t base;

    x->has_cur = json_num(o, "cv", &x->cur);
    if (!x->has_cur || !json_ms(o, "ct", &x->cur_ts))
        x->cur_ts = RT_NONE;
    if (cJSON_IsArray(fs) && json_num(o, "fn", &fn) && fn >= 1 && fn < 1e15) {
        size_t n = (size_t)cJSON_GetArraySize(fs);
        size_t skipped = (size_t)fn > n ? (size_t)fn - n : 0;

        x->fs_n = skipped;                  /* the ring kept the last ones: count the rest */
        cJSON_ArrayForEach(it, fs) {
            const cJSON *t = cJSON_GetArrayItem(it, 0), *v = cJSON_GetArrayItem(it, 1);
            if (cJSON_IsNumber(t) && fabs(t->valuedouble) <= 9.0e15 && cJSON_IsNumber(v)
                && isfinite(v->valuedouble))
                fs_push(x, (int64_t)t->valuedouble, v->valuedouble);
        }
        if (x->fs_n == skipped)
            x->fs_n = 0;
        else if (!json_ms(o, "ff", &x->fs_from))
            x->fs_from = in->pending_since;
    }

    /* Catch up from the store: records older than this one carry no value, and
     * a firing instance is not rewritten for every sample. */
    base = x->cur_ts != RT_NONE ? x->cur_ts : in->last_ts;
    x->saved_ts = base;
    if (base == RT_NONE || base < -9000000000000000LL || base > e->start_ms)
        return;
    if (p->window_agg != IW_AGG_NONE && p->window_ms > 0) {
        iw__read_points(e, in, in->metric, base - p->window_ms + 1, e->start_ms, prime_window_cb, x);
        x->primed_to = e->start_ms;
        if (x->n > 0) {
            win_evict(x, x->w[x->n - 1].ts, p->window_ms);
            x->cur = win_agg(x, p->window_agg);
            x->cur_ts = x->w[x->n - 1].ts;
            x->has_cur = true;
        }
    } else {
        iw__read_points(e, in, in->metric, base, e->start_ms, thr_catch_up_cb,
                        &(struct thr_catch_up){ in, x->has_cur ? base : base - 1 });
    }
    /* The engine evaluated up to there: an older sample is out of order. */
    if (x->cur_ts != RT_NONE && (in->last_ts == RT_NONE || x->cur_ts > in->last_ts))
        in->last_ts = x->cur_ts;
}

static void thr_fini(struct inst *in)
{
    free(((struct thr_x *)in->x)->w);
}

const struct kind_ops iw__threshold_ops = {
    .x_size = sizeof(struct thr_x),
    .per_metric = yes,
    .accepts = not_event,
    .sample = thr_sample,
    .evidence = thr_evidence,
    .save = thr_save,
    .load = thr_load,
    .init = thr_init,
    .fini = thr_fini,
};

/* ==========================================================================
 * rate
 * ======================================================================== */

/*
 * The record carries the pair of samples the last rate came from ("rp"), so
 * that a repeat or resolve after a restart shows it; restore catches up from
 * the store as threshold does.
 */
struct rate_x {
    bool    has_prev, has_rate;
    int64_t prev_ts;                /* the last sample: the base of the next rate */
    double  prev_v;
    int64_t from_ts, cur_ts;        /* the pair the last rate was taken from */
    double  from_v, cur_v, rate;
    bool    bound_set, bound_rise;  /* the limit the last breach crossed: rise or fall */
    int64_t saved_ts;               /* cur_ts when the record was last written; RT_NONE */
};

static int prime_prev_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct rate_x *x = ctx;
    if (!iw__flagged(flag) && isfinite(v)) {
        x->has_prev = true;
        x->prev_ts = ts;
        x->prev_v = v;
    }
    return 0;
}

static int64_t rate_per(const struct iw_rule_params *p)
{
    return p->per_ms > 0 ? p->per_ms : IW_MS_PER_MIN;
}

/* The rate from the last sample to (ts, v); the pair becomes the evidence. */
static void rate_step(struct rate_x *x, const struct iw_rule_params *p, int64_t ts, double v)
{
    /* 15 significant digits, as for a window's average: 0.3 - 0.1 per
     * minute is a change of 0.2, not 0.19999999999999998. */
    x->rate = iw__round_sig((v - x->prev_v) / (double)(ts - x->prev_ts) * (double)rate_per(p), 15);
    x->has_rate = true;
    x->from_ts = x->prev_ts;
    x->from_v = x->prev_v;
    x->cur_ts = ts;
    x->cur_v = v;
}

static void rate_init(struct iw_rules_engine *e, struct inst *in)
{
    struct rate_x *x = in->x;
    (void)e;
    x->saved_ts = RT_NONE;
}

static void rate_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct rate_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    int64_t per = rate_per(p);
    int64_t back = per * 10 > IW_MS_PER_HOUR ? per * 10 : IW_MS_PER_HOUR;
    enum inst_state was = in->st;
    bool breach;

    if (iw__flagged(s->flag) || !isfinite(s->value))
        return;
    if (!in->primed && !x->has_prev)
        iw__read_points(e, in, in->metric, s->ts - back, s->ts - 1, prime_prev_cb, x);
    in->primed = true;
    if (x->has_prev && s->ts == x->prev_ts && s->value != x->prev_v) {
        /* The last sample's time again: a corrected value, which replaces the
         * stored one (SPEC §2). It is evaluated in its place, from the sample
         * before it; a first sample only becomes the next rate's base. */
        if (!x->has_rate || x->cur_ts != s->ts) {
            x->prev_v = s->value;
            return;
        }
        x->prev_ts = x->from_ts;
        x->prev_v = x->from_v;
    } else if (x->has_prev && s->ts <= x->prev_ts) {
        if (s->ts < x->prev_ts)             /* evaluated on its own time (rule_late.c) */
            iw__out_of_order(e, in, s, x->prev_ts);
        return;
    }
    if (!x->has_prev) {
        x->has_prev = true;
        x->prev_ts = s->ts;
        x->prev_v = s->value;
        return;
    }
    rate_step(x, p, s->ts, s->value);
    in->last_ts = s->ts;
    breach = (p->has_rise && x->rate > p->rise) || (p->has_fall && x->rate < -p->fall);
    if (breach) {
        x->bound_set = true;
        x->bound_rise = p->has_rise && x->rate > p->rise;
    }
    iw__drive(e, in, breach, !breach, p->severity, s->ts, iw__late(e, s), s->recv_ms);
    x->prev_ts = s->ts;
    x->prev_v = s->value;
    if (in->st != was || x->saved_ts == RT_NONE) {
        x->saved_ts = s->ts;
    } else if (in->st != ST_INACTIVE && s->ts - x->saved_ts >= RESAVE_MS) {
        iw__save(e, in);
        x->saved_ts = s->ts;
    }
}

static void rate_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    const struct rate_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    int64_t per = rate_per(p);
    /* The limit of the episode's breach, so that its resolve names the same
     * threshold as its firing even when the rate has turned the other way. */
    bool rising = x->bound_set ? x->bound_rise : x->has_rate ? x->rate >= 0 : p->has_rise;
    /* Shown as a person computes it (1.8, not 1.8000000000000014); the
     * decision used the exact rate. */
    double rate = iw__round_sig(x->rate, 10);
    char val[64], lim[32], dur[32], text[256];
    cJSON *o;
    (void)e;

    ev->has_value = x->has_rate;
    ev->value = rate;
    ev->has_threshold = rising ? p->has_rise : p->has_fall;
    ev->threshold = rising ? p->rise : -p->fall;
    if (x->has_rate) {
        o = cJSON_AddObjectToObject(ev->details, "prev");
        cJSON_AddItemToObject(o, "ts", iw__json_time(x->from_ts));
        cJSON_AddNumberToObject(o, "value", x->from_v);
        o = cJSON_AddObjectToObject(ev->details, "cur");
        cJSON_AddItemToObject(o, "ts", iw__json_time(x->cur_ts));
        cJSON_AddNumberToObject(o, "value", x->cur_v);
    }
    add_num(ev->details, "rate", x->has_rate, rate);
    cJSON_AddNumberToObject(ev->details, "per_ms", (double)per);
    add_num(ev->details, "rise", p->has_rise, p->rise);
    add_num(ev->details, "fall", p->has_fall, p->fall);
    iw__fmt_num(rising ? p->rise : p->fall, lim, sizeof(lim));
    iw__fmt_dur(per, dur, sizeof(dur));
    if (x->has_rate)
        value_text(ev, fabs(rate), val, sizeof(val));
    if (!x->has_rate)               /* unknown (an old record, nothing stored): no number */
        snprintf(text, sizeof(text), ev->status == IW_ALERT_FIRING
                 ? "%s changes faster than the limit (%s per %s)"
                 : "%s changes within the limit (%s per %s) again",
                 iw_metric_display(in->metric), lim, dur);
    else if (ev->status == IW_ALERT_FIRING)
        snprintf(text, sizeof(text), "%s %s %s per %s (limit %s)", iw_metric_display(in->metric),
                 rising ? "rose" : "fell", val, dur, lim);
    else
        snprintf(text, sizeof(text), "%s changes %s per %s again, within the limit",
                 iw_metric_display(in->metric), val, dur);
    iw__ev_var(ev, "summary", text);
}

static void rate_save(const struct inst *in, cJSON *o)
{
    const struct rate_x *x = in->x;
    cJSON *rp;

    if (x->bound_set)
        cJSON_AddBoolToObject(o, "rb", x->bound_rise);
    if (!x->has_rate)
        return;
    rp = cJSON_AddArrayToObject(o, "rp");
    cJSON_AddItemToArray(rp, cJSON_CreateNumber((double)x->from_ts));
    cJSON_AddItemToArray(rp, cJSON_CreateNumber(x->from_v));
    cJSON_AddItemToArray(rp, cJSON_CreateNumber((double)x->cur_ts));
    cJSON_AddItemToArray(rp, cJSON_CreateNumber(x->cur_v));
}

struct rate_catch_up {
    struct rate_x *x;
    const struct iw_rule_params *p;
};

static int rate_catch_up_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct rate_catch_up *c = ctx;

    if (iw__flagged(flag) || !isfinite(v) || (c->x->has_prev && ts <= c->x->prev_ts))
        return 0;
    if (c->x->has_prev)
        rate_step(c->x, c->p, ts, v);
    c->x->has_prev = true;
    c->x->prev_ts = ts;
    c->x->prev_v = v;
    return 0;
}

static void rate_load(struct iw_rules_engine *e, struct inst *in, const cJSON *o)
{
    struct rate_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(o, "rp");
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(o, "rb");
    double v[4];
    int64_t per = rate_per(p), from;
    int n = 0;

    if (cJSON_IsBool(rb)) {
        x->bound_set = true;
        x->bound_rise = cJSON_IsTrue(rb);
    }
    for (const cJSON *it = cJSON_IsArray(rp) ? rp->child : NULL; it != NULL && n < 4; it = it->next)
        if (cJSON_IsNumber(it) && isfinite(it->valuedouble))
            v[n++] = it->valuedouble;
    if (n == 4 && fabs(v[0]) <= 9.0e15 && fabs(v[2]) <= 9.0e15 && v[2] > v[0]) {
        x->has_prev = true;
        x->prev_ts = (int64_t)v[0];
        x->prev_v = v[1];
        rate_step(x, p, (int64_t)v[2], v[3]);
        x->prev_ts = x->cur_ts;
        x->prev_v = x->cur_v;
        from = x->cur_ts + 1;
    } else if (in->last_ts != RT_NONE && in->last_ts > -9000000000000000LL) {
        /* An older record: the pair is in the store, before and at the last sample. */
        from = in->last_ts - (per * 10 > IW_MS_PER_HOUR ? per * 10 : IW_MS_PER_HOUR);
    } else {
        return;
    }
    x->saved_ts = x->has_rate ? x->cur_ts : in->last_ts;
    /* Samples evaluated after the record was written: the last two give the rate. */
    iw__read_points(e, in, in->metric, from, e->start_ms, rate_catch_up_cb,
                    &(struct rate_catch_up){ x, p });
}

const struct kind_ops iw__rate_ops = {
    .x_size = sizeof(struct rate_x),
    .per_metric = yes,
    .accepts = not_event,
    .sample = rate_sample,
    .evidence = rate_evidence,
    .save = rate_save,
    .load = rate_load,
    .init = rate_init,
};

/* ==========================================================================
 * absence
 * ======================================================================== */

struct abs_x {
    bool    seen;                   /* a matching sample arrived (ever, persisted) */
    bool    inv;                    /* the device is in the inventory */
    bool    in_store;               /* the store holds a series of it (reported before) */
    int64_t since;                  /* not seen: when the rule took effect for it; RT_NONE */
    int64_t last_seen;              /* receipt time of the last matching sample */
    int64_t saved_seen;             /* last_seen as last stored */
};

static bool any_sample(const struct rule_rt *rr, const struct iw_rsample *s)
{
    (void)rr;
    (void)s;
    return true;
}

static void abs_init(struct iw_rules_engine *e, struct inst *in)
{
    struct abs_x *x = in->x;
    x->inv = iw__inventory(e->cfg, in->source, in->site, in->device) != NULL;
    x->last_seen = x->saved_seen = x->since = RT_NONE;
}

static int64_t abs_base(const struct iw_rules_engine *e, const struct abs_x *x)
{
    /* After a restart, or the broker link's return, a known device gets a
     * full `after` from then. */
    int64_t base = e->link_up_ms > e->start_ms ? e->link_up_ms : e->start_ms;
    int64_t from = x->seen ? x->last_seen : x->since;   /* a device not seen: from the rule */
    return from > base ? from : base;
}

/* When the silence of a device the rule has not seen report began. */
static int64_t abs_unseen_since(const struct iw_rules_engine *e, const struct abs_x *x)
{
    return x->since != RT_NONE ? x->since : e->start_ms;
}

static int64_t abs_deadline(const struct iw_rules_engine *e, const struct inst *in)
{
    const struct abs_x *x = in->x;
    if (in->st == ST_FIRING || (!x->seen && !x->inv && !x->in_store) || e->link_down)
        return RT_NO_DEADLINE;
    return abs_base(e, x) + in->p->after_ms;
}

static void abs_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct abs_x *x = in->x;
    bool first = !x->seen;

    /* A retained copy sent again at a SUBSCRIBE is the device's old message:
     * it makes an unknown device known, but it is no sign of life (a restart
     * or reload would otherwise resolve a silent camera's absence). */
    if (s->retained && (x->seen || in->st == ST_FIRING))
        return;
    if (x->last_seen == RT_NONE || s->recv_ms > x->last_seen)
        x->last_seen = s->recv_ms;
    x->seen = true;
    if (in->st == ST_FIRING) {
        iw__resolve(e, in, s->recv_ms, false, s->recv_ms);
        x->saved_seen = x->last_seen;
    } else if (first || x->last_seen - x->saved_seen >= in->p->after_ms / 2) {
        iw__save(e, in);
        x->saved_seen = x->last_seen;
    }
    iw__sched(e, in);
}

static void abs_timer(struct iw_rules_engine *e, struct inst *in, int64_t now)
{
    struct abs_x *x = in->x;
    int64_t due = abs_deadline(e, in);

    if (due == RT_NO_DEADLINE || due > now)
        return;
    iw__fire(e, in, in->p->severity, x->seen ? x->last_seen : abs_unseen_since(e, x), due, false,
             now);
}

static void abs_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    const struct abs_x *x = in->x;
    char dur[32], when[40], text[256];

    ev->metric = NULL;
    ev->unit = NULL;
    cJSON_AddItemToObject(ev->details, "last_seen",
                          x->seen ? iw__json_time(x->last_seen) : cJSON_CreateNull());
    cJSON_AddNumberToObject(ev->details, "after_ms", (double)in->p->after_ms);
    cJSON_AddBoolToObject(ev->details, "inventory", x->inv);
    iw__fmt_dur(in->p->after_ms, dur, sizeof(dur));
    if (ev->status == IW_ALERT_RESOLVED)
        snprintf(text, sizeof(text), "is reporting again");
    else if (x->seen)
        snprintf(text, sizeof(text), "silent for more than %s (last message %s)", dur,
                 iw_rfc3339_format(x->last_seen, when, sizeof(when)));
    else if (abs_unseen_since(e, x) > e->start_ms)
        snprintf(text, sizeof(text), "has not reported since this rule took effect (%s ago or more)",
                 dur);
    else
        snprintf(text, sizeof(text), "has not reported since islewatch started (%s ago or more)", dur);
    iw__ev_var(ev, "summary", text);
}

static void abs_save(const struct inst *in, cJSON *o)
{
    const struct abs_x *x = in->x;
    cJSON_AddBoolToObject(o, "seen", x->seen);
    if (x->last_seen != RT_NONE)
        cJSON_AddNumberToObject(o, "ls", (double)x->last_seen);
}

static void abs_load(struct iw_rules_engine *e, struct inst *in, const cJSON *o)
{
    struct abs_x *x = in->x;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "ls");
    (void)e;
    x->seen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "seen"));
    x->last_seen = x->saved_seen = cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
    if (x->last_seen == RT_NONE)
        x->seen = false;
}

static bool abs_keep(const struct inst *in)
{
    return ((const struct abs_x *)in->x)->seen;
}

void iw__absence_expect(struct iw_rules_engine *e, struct inst *in, bool in_store, int64_t now)
{
    struct abs_x *x = in->x;
    x->in_store = x->in_store || in_store;
    if (!x->seen && x->since == RT_NONE)
        x->since = now;
    iw__sched(e, in);
}

void iw__absence_refresh(struct iw_rules_engine *e, struct inst *in, int64_t now)
{
    struct abs_x *x = in->x;
    x->inv = iw__inventory(e->cfg, in->source, in->site, in->device) != NULL;
    if (x->seen || x->inv || x->in_store)
        return;
    iw__resolve(e, in, now, false, now);
    iw__save(e, in);
    iw__heap_remove(e, in);
}

const struct kind_ops iw__absence_ops = {
    .x_size = sizeof(struct abs_x),
    .per_metric = no,
    .accepts = any_sample,
    .sample = abs_sample,
    .deadline = abs_deadline,
    .timer = abs_timer,
    .evidence = abs_evidence,
    .save = abs_save,
    .load = abs_load,
    .init = abs_init,
    .keep = abs_keep,
};

/* ==========================================================================
 * flag
 * ======================================================================== */

struct flagged {
    char *metric;
    char  flag;
};

struct flag_x {
    struct flagged *f;              /* metrics currently flagged with a watched flag */
    size_t n, cap;
    char *ep_metric;                /* device-level: the metric the episode began on; owned */
    /* A live message's samples update the flags one by one; the machine is
     * driven once, at the message's end (flag_message_end), so an alert
     * lists every metric the message flagged, not the first one only. */
    bool pending, pending_changed, pending_ep;
    enum inst_state pending_was;
    int64_t pending_ts, pending_recv;
    bool pending_late;
};

static bool flag_per_metric(const struct rule_rt *rr)
{
    return rr->n_sel == 4;
}

static bool flag_watched(const struct iw_rule_params *p, char flag)
{
    return flag >= 'A' && flag <= 'Z' && flag != 'N' && (p->flags & (1u << (flag - 'A'))) != 0;
}

/* Set (flag 0: clear) the metric's watched flag; true if the set changed. */
static bool flag_set(struct flag_x *x, const char *metric, char flag)
{
    for (size_t i = 0; i < x->n; i++) {
        if (strcmp(x->f[i].metric, metric) != 0)
            continue;
        if (x->f[i].flag == flag)
            return false;
        if (flag != 0) {
            x->f[i].flag = flag;
        } else {
            free(x->f[i].metric);
            x->f[i] = x->f[--x->n];
        }
        return true;
    }
    if (flag == 0)
        return false;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4;
        struct flagged *f = realloc(x->f, cap * sizeof(*f));
        if (f == NULL)
            return false;
        x->f = f;
        x->cap = cap;
    }
    x->f[x->n].metric = strdup(metric);
    x->f[x->n].flag = flag;
    if (x->f[x->n].metric == NULL)
        return false;
    x->n++;
    return true;
}

/* Clear every metric's flag (a message-level 'N'); true if any was set. */
static bool flag_clear_all(struct flag_x *x)
{
    bool changed = x->n > 0;
    for (size_t i = 0; i < x->n; i++)
        free(x->f[i].metric);
    x->n = 0;
    return changed;
}

static void flag_ep_metric(struct flag_x *x, const char *metric)
{
    char *m = strdup(metric);
    if (m == NULL)
        return;                     /* out of memory: the alert shows a flagged metric */
    free(x->ep_metric);
    x->ep_metric = m;
}

static void flag_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct flag_x *x = in->x;
    enum inst_state was;
    bool changed;

    /* A message of a flag and no sample (alive, device-level instances only):
     * its flag is the device's, kept under the metric "". Without a flag it
     * says nothing of the data. Older than what the instance has seen, it is
     * stale news: a late sample is replayed from the store (below), and this
     * one stored nothing to replay. */
    if (s->alive && (s->flag == 0 || (in->last_ts != RT_NONE && s->ts < in->last_ts)))
        return;
    if (in->last_ts != RT_NONE && s->ts < in->last_ts) {
        iw__out_of_order(e, in, s, in->last_ts);   /* evaluated on its own time (rule_late.c) */
        return;
    }
    /* Only normal data ('N' or no flag) resolves (SPEC §4); a flag the rule does
     * not watch (M, C, T, ...) neither raises nor clears: the metric keeps the
     * watched flag it had, and the for:/clear_for: timers are left alone. */
    if (iw__flagged(s->flag) && !flag_watched(in->p, s->flag))
        return;
    in->last_ts = s->ts;
    if (s->alive && s->flag == 'N') {
        changed = flag_clear_all(x);        /* the device says all its data is normal */
    } else {
        changed = flag_set(x, s->metric, iw__flagged(s->flag) ? s->flag : 0);
        /* Normal data of any metric ends a flag the device gave without one. */
        if (!s->alive && !iw__flagged(s->flag) && in->metric == NULL)
            changed |= flag_set(x, "", 0);
    }
    /* A device-level instance names one metric for its whole episode (its
     * firing and its resolve alike): the first one flagged. */
    if (in->metric == NULL && in->st == ST_INACTIVE && x->n > 0 && !x->pending_ep) {
        flag_ep_metric(x, x->f[0].metric);
        x->pending_ep = e->in_message;  /* chosen for this message's episode */
    }
    if (e->in_message) {                /* driven at the message's end, once */
        if (!x->pending)
            x->pending_was = in->st;
        x->pending = true;
        x->pending_changed |= changed;
        x->pending_ts = s->ts;
        x->pending_late = iw__late(e, s);
        x->pending_recv = s->recv_ms;
        return;
    }
    was = in->st;
    iw__drive(e, in, x->n > 0, x->n == 0, in->p->severity, s->ts, iw__late(e, s), s->recv_ms);
    /* The record lists the flags (the evidence, and what resolves it after a
     * restart): rewrite it when they change and the machine did not. */
    if (changed && in->st != ST_INACTIVE && in->st == was)
        iw__save(e, in);
}

static void flag_message_end(struct iw_rules_engine *e, struct inst *in,
                             const struct iw_rsample *last)
{
    struct flag_x *x = in->x;
    (void)last;

    if (!x->pending)
        return;
    x->pending = x->pending_ep = false;
    iw__drive(e, in, x->n > 0, x->n == 0, in->p->severity, x->pending_ts, x->pending_late,
              x->pending_recv);
    if (x->pending_changed && in->st != ST_INACTIVE && in->st == x->pending_was)
        iw__save(e, in);
    x->pending_changed = false;
}

static const char *flag_meaning(char f)
{
    switch (f) {
    case 'M': return "maintenance";
    case 'C': return "calibration";
    case 'D': return "instrument fault";
    case 'F': return "stopped";
    case 'T': return "over range";
    case 'B': return "communication error";
    case 'S': return "manual entry";
    default:  return "flagged";
    }
}

static void flag_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    const struct flag_x *x = in->x;
    cJSON *fl = cJSON_AddObjectToObject(ev->details, "flags");
    char watch[27] = "", text[256];
    size_t w = 0;
    (void)e;

    /* details.flags maps each flagged metric to its flag; a flag the device
     * gave in a message of no sample is details.device_flag. */
    for (size_t i = 0; i < x->n; i++) {
        cJSON *f = cJSON_CreateString((char[]){ x->f[i].flag, 0 });
        if (x->f[i].metric[0] != '\0')
            cJSON_AddItemToObject(fl, x->f[i].metric, f);
        else
            cJSON_AddItemToObject(ev->details, "device_flag", f);
    }
    for (char c = 'A'; c <= 'Z'; c++)
        if (flag_watched(in->p, c))
            watch[w++] = c;
    cJSON_AddStringToObject(ev->details, "watched", watch);
    cJSON_AddNumberToObject(ev->details, "for_ms", (double)in->p->for_ms);
    ev->metric = in->metric ? in->metric : x->ep_metric ? x->ep_metric
                                          : x->n > 0 ? x->f[0].metric : NULL;
    if (ev->metric != NULL && ev->metric[0] == '\0')
        ev->metric = NULL;              /* the device's own flag: no metric */
    ev->unit = NULL;
    if (ev->status == IW_ALERT_FIRING && x->n > 0)
        snprintf(text, sizeof(text), "reports flag %c (%s)%s%s%s", x->f[0].flag,
                 flag_meaning(x->f[0].flag), x->f[0].metric[0] != '\0' ? " on " : "",
                 x->f[0].metric, x->n > 1 ? " and more" : "");
    else
        snprintf(text, sizeof(text), "reports normal data again");
    iw__ev_var(ev, "summary", text);
}

static void flag_save(const struct inst *in, cJSON *o)
{
    const struct flag_x *x = in->x;
    cJSON *fl = cJSON_AddObjectToObject(o, "fl");
    for (size_t i = 0; i < x->n; i++)
        cJSON_AddItemToObject(fl, x->f[i].metric, cJSON_CreateString((char[]){ x->f[i].flag, 0 }));
    if (x->ep_metric != NULL)
        cJSON_AddStringToObject(o, "em", x->ep_metric);
}

static void flag_load(struct iw_rules_engine *e, struct inst *in, const cJSON *o)
{
    const cJSON *it, *fl = cJSON_GetObjectItemCaseSensitive(o, "fl");
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(o, "em");
    (void)e;
    cJSON_ArrayForEach(it, fl)
        if (cJSON_IsString(it) && it->valuestring[0] != '\0')
            flag_set(in->x, it->string, it->valuestring[0]);
    if (cJSON_IsString(em))             /* "": the device's own flag */
        flag_ep_metric(in->x, em->valuestring);
}

static const char *flag_metric_at(const struct inst *in, size_t i)
{
    const struct flag_x *x = in->x;
    return i < x->n ? x->f[i].metric : NULL;
}

static void flag_fini(struct inst *in)
{
    struct flag_x *x = in->x;
    for (size_t i = 0; i < x->n; i++)
        free(x->f[i].metric);
    free(x->f);
    free(x->ep_metric);
}

const struct kind_ops iw__flag_ops = {
    .x_size = sizeof(struct flag_x),
    .per_metric = flag_per_metric,
    .accepts = not_event,
    .sample = flag_sample,
    .message_end = flag_message_end,
    .evidence = flag_evidence,
    .save = flag_save,
    .load = flag_load,
    .fini = flag_fini,
    .metric_at = flag_metric_at,
};

/* ==========================================================================
 * event
 * ======================================================================== */

/*
 * auto_resolve of a live start runs on the wall clock from its receipt, so a
 * camera whose clock is a little off still gets its whole auto_resolve. A
 * late start (older than alerts.live_window: a backlog after an outage) is
 * judged on its own time, as rules are (SPEC section 1): it resolves at
 * ts + auto_resolve (auto_at), published late, once EVENT_LATE_GRACE of wall
 * clock has let the rest of the backlog (its stop, perhaps) arrive; a later
 * sample of the backlog at or after auto_at ends the episode there first.
 */
enum { EVENT_LATE_GRACE_MS = 5000 };

struct event_x {
    int64_t auto_due;               /* wall clock; RT_NONE */
    int64_t auto_at;                /* a late start's auto_resolve in sample time; RT_NONE */
    int64_t event_ts;               /* sample time of the last start/stop */
    enum { EV_START, EV_STOP, EV_AUTO } how;
};

static bool event_accepts(const struct rule_rt *rr, const struct iw_rsample *s)
{
    const struct iw_rule_params *p = iw_rule_params_for(rr->r, s->site);

    if (!s->is_event)
        return false;
    for (size_t i = 0; i < p->n_match; i++) {
        const char *k = p->match[i].key, *v;
        if (strcmp(k, "type") == 0)
            v = s->metric;
        else if (strcmp(k, "site") == 0)
            v = s->site;
        else if (strcmp(k, "device") == 0)
            v = s->device;
        else if (strcmp(k, "source") == 0)
            v = s->source;
        else
            return false;
        if (!iw_glob_match(p->match[i].value, v))
            return false;
    }
    return true;
}

static void event_init(struct iw_rules_engine *e, struct inst *in)
{
    struct event_x *x = in->x;
    (void)e;
    x->auto_due = x->auto_at = x->event_ts = RT_NONE;
}

/* Resolve by auto_resolve: at auto_at for a late start, else when it was due. */
static void event_auto_resolve(struct iw_rules_engine *e, struct inst *in, int64_t now)
{
    struct event_x *x = in->x;
    int64_t ts = x->auto_at != RT_NONE ? x->auto_at : x->auto_due;

    x->how = EV_AUTO;
    x->auto_due = x->auto_at = RT_NONE;
    iw__resolve(e, in, ts, now - ts > e->cfg->alerts.live_window_ms, now);
}

static void event_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct event_x *x = in->x;
    int64_t ar = in->p->auto_resolve_ms;

    /* A start or stop older than the last one handled (a buffered upload, a
     * start delivered after its stop) is judged on its own time with the
     * stored events around it (rule_late.c): an episode nobody published
     * goes out late. */
    if (in->last_ts != RT_NONE && s->ts < in->last_ts) {
        iw__out_of_order(e, in, s, in->last_ts);
        return;
    }
    /* A retained copy the broker sends again at a SUBSCRIBE (restart,
     * reconnect) of the event last handled: raising it again, or pushing its
     * auto_resolve, would report an event that did not happen again. */
    if (s->retained && in->last_ts != RT_NONE && s->ts == in->last_ts)
        return;
    /* In a backlog, the episode of a late start ended at its auto_at if this
     * sample comes at or after it. */
    if (in->st == ST_FIRING && x->auto_at != RT_NONE && s->ts >= x->auto_at)
        event_auto_resolve(e, in, s->recv_ms);
    in->last_ts = s->ts;
    x->event_ts = s->ts;
    if (s->value != 0) {
        x->how = EV_START;
        x->auto_due = x->auto_at = RT_NONE;
        if (ar > 0 && !iw__late(e, s)) {
            x->auto_due = s->recv_ms + ar;
        } else if (ar > 0) {
            x->auto_at = s->ts + ar;
            x->auto_due = s->recv_ms + (ar < EVENT_LATE_GRACE_MS ? ar : EVENT_LATE_GRACE_MS);
            if (x->auto_due < x->auto_at)       /* auto_resolve not over yet */
                x->auto_due = x->auto_at;
        }
        if (in->st != ST_FIRING) {
            iw__fire(e, in, in->p->severity, s->ts, s->ts, iw__late(e, s), s->recv_ms);
        } else {
            iw__save(e, in);
            iw__sched(e, in);
        }
        return;
    }
    if (in->st == ST_FIRING && s->ts >= in->pending_since) {
        x->how = EV_STOP;
        x->auto_due = x->auto_at = RT_NONE;
        iw__resolve(e, in, s->ts, iw__late(e, s), s->recv_ms);
    }
}

void iw__event_refire(struct iw_rules_engine *e, struct rule_rt *rr, const char *source,
                      const char *site, const char *device, const char *type, int64_t event_ts,
                      int64_t now)
{
    struct iw_rsample s = { .source = source, .site = site, .device = device, .metric = type,
                            .ts = event_ts, .value = 1, .recv_ms = now, .is_event = true };
    struct event_x *x;
    struct inst *in;

    if (rr == NULL || rr->r->kind != IW_RULE_EVENT || !iw__select_device(rr, source, site, device)
        || !event_accepts(rr, &s))
        return;
    in = iw__inst_get(e, rr, source, site, device, type);
    if (in == NULL) {
        IW_LOG_ERROR("rules", "out of memory raising event %s of %s/%s/%s again under the changed "
                     "rule \"%s\"; it is raised with its next start", type, source, site, device,
                     rr->r->name);
        return;
    }
    if (in->st != ST_INACTIVE)
        return;
    x = in->x;
    x->how = EV_START;
    x->event_ts = event_ts;
    x->auto_due = in->p->auto_resolve_ms > 0 ? now + in->p->auto_resolve_ms : RT_NONE;
    x->auto_at = RT_NONE;
    if (in->last_ts == RT_NONE || event_ts > in->last_ts)
        in->last_ts = event_ts;
    /* The new rule's episode: it starts now, with an id of its own. */
    iw__fire(e, in, in->p->severity, now, now, false, now);
}

static int64_t event_deadline(const struct iw_rules_engine *e, const struct inst *in)
{
    const struct event_x *x = in->x;
    (void)e;
    return in->st == ST_FIRING && x->auto_due != RT_NONE ? x->auto_due : RT_NO_DEADLINE;
}

static void event_timer(struct iw_rules_engine *e, struct inst *in, int64_t now)
{
    struct event_x *x = in->x;
    int64_t due = x->auto_due;

    if (in->st != ST_FIRING || due == RT_NONE || due > now)
        return;
    event_auto_resolve(e, in, now);
}

static void event_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    static const char *const how[] = { "start", "stop", "auto_resolve" };
    const struct event_x *x = in->x;
    char dur[32], text[256];
    (void)e;

    ev->unit = NULL;
    cJSON_AddStringToObject(ev->details, "type", in->metric);
    cJSON_AddStringToObject(ev->details, "state", how[x->how]);
    if (x->event_ts != RT_NONE)
        cJSON_AddItemToObject(ev->details, "event_ts", iw__json_time(x->event_ts));
    if (in->p->auto_resolve_ms > 0)
        cJSON_AddNumberToObject(ev->details, "auto_resolve_ms", (double)in->p->auto_resolve_ms);
    if (x->how == EV_AUTO)
        snprintf(text, sizeof(text), "event %s resolved automatically after %s", in->metric,
                 iw__fmt_dur(in->p->auto_resolve_ms, dur, sizeof(dur)));
    else
        snprintf(text, sizeof(text), "event %s %s", in->metric,
                 x->how == EV_START ? "started" : "stopped");
    iw__ev_var(ev, "summary", text);
}

static void event_save(const struct inst *in, cJSON *o)
{
    const struct event_x *x = in->x;
    if (x->auto_due != RT_NONE)
        cJSON_AddNumberToObject(o, "ad", (double)x->auto_due);
    if (x->auto_at != RT_NONE)
        cJSON_AddNumberToObject(o, "aa", (double)x->auto_at);
    if (x->event_ts != RT_NONE)
        cJSON_AddNumberToObject(o, "et", (double)x->event_ts);
}

static void event_load(struct iw_rules_engine *e, struct inst *in, const cJSON *o)
{
    struct event_x *x = in->x;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "ad");
    (void)e;
    x->auto_due = cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
    j = cJSON_GetObjectItemCaseSensitive(o, "aa");            /* absent before 2026-12-06 */
    x->auto_at = cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
    j = cJSON_GetObjectItemCaseSensitive(o, "et");
    x->event_ts = cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
}

/* Remember the last event handled after it resolved, so that its retained
 * copy, sent again at the next start's SUBSCRIBE, is known (event_sample). */
static bool event_keep(const struct inst *in)
{
    return in->last_ts != RT_NONE;
}

const struct kind_ops iw__event_ops = {
    .x_size = sizeof(struct event_x),
    .per_metric = yes,
    .accepts = event_accepts,
    .sample = event_sample,
    .deadline = event_deadline,
    .timer = event_timer,
    .evidence = event_evidence,
    .save = event_save,
    .load = event_load,
    .keep = event_keep,
    .init = event_init,
};
