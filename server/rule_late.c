/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Late and out-of-order samples (SPEC §1): "rules evaluate on the sample's own
 * time", without disturbing what the live timeline already published.
 *
 * A threshold, rate, flag, event, water_quality or air_quality instance
 * evaluates its samples in time order (the live timeline; water_quality
 * judges a message at its end, air_quality closes an hour there, and so does
 * the replay with each time's points; air_quality's shadows also close the
 * hours that end by the live instance's, which it closed on a later sample or
 * its timer, and the live instance takes the truth's hourly means). A sample
 * older than what it evaluated does not drive it: the kind hands it to
 * iw__out_of_order(), which keeps it until the end of the message. Then,
 * per instance, two shadows (instances of the same rule, params and key with
 * their own state, freed before the message returns) replay the store around
 * the late samples, in time order:
 *
 *  - the truth: the stored points from `lookback` before the oldest late
 *    sample up to the live instance's evaluated time, with the late samples;
 *  - the reference: the same points without the late samples, i.e. what the
 *    live timeline (and earlier late evaluations) already decided.
 *
 * Both are primed quietly on the points before the oldest late sample. The
 * replay of one series stops early once both are past every late sample (and
 * every window holding one) in the same machine state: their futures are the
 * same, so a backlog of one-sample messages does not re-read the day. From
 * there on the truth's transitions are held; at the end an episode of the
 * truth is published only when it overlaps no episode of the reference nor
 * the episode the live instance is firing for: the late data caused it, and
 * nobody published it before. Its alerts carry late = the sample's own
 * lateness, or true for every alert of an episode that fired late (the
 * resolve of a backlog episode is as late as its firing, even when the live
 * sample that clears it is recent).
 *
 * At the live instance's evaluated time the truth may still be open:
 *  - firing, live firing: the same condition; nothing is published for it
 *    (the live episode keeps its id and started_at);
 *  - firing, live pending: the live instance takes the episode over (id,
 *    started_at, severity; the held firing is published) and resolves it live;
 *  - firing, live inactive: the live evaluation already decided that point,
 *    so the late episode is resolved there;
 *  - pending since before the live instance's pending start: the condition
 *    began earlier, so the live pending start moves back (nothing was
 *    published);
 *  - for a per-series threshold or rate (adopt_runs), also: pending since
 *    later, or inactive, while the live instance is pending: the late sample
 *    broke the for: run, which restarts (or ends); firing with another
 *    clear_for: run than the live instance's: the live one takes it. A
 *    published firing is never withdrawn.
 *
 * A late sample inside the episode the live instance is firing for publishes
 * nothing (the live alert already speaks for that time); a windowed threshold
 * still adds it to the live window. Shadows are never stored (they do not
 * survive a restart; the store still holds the late points, and the live
 * state record is unaffected), never scheduled (a late episode is not
 * repeated) and allocate only on the out-of-order path.
 *
 * Limits, by design: the truth sees what the store holds when the message ends
 * (or, deferred, at iw_rules_flush_late: the daemon waits until every message
 * stored has reached the rules, or the store would hold later ones the
 * reference wrongly counts as decided; or, held, when the upload pauses:
 * holds()), so a backlog spread over several judgements resolves a late
 * episode at the first clearing point stored so far (at worst the live
 * sample after the outage), and a later message of the backlog does not
 * publish that episode again; the state before the oldest
 * late sample is rebuilt from a lookback of stored points (lookback(),
 * replay_start()); the store cannot tell a new late sample from a redelivered
 * one, so a redelivered sample that alone made an episode is recognised by
 * the instance's latest episode (its id) and the late episodes it published
 * lately (late_memo, kept in its state record); a device-level
 * instance replays only the series it knows (seen since the engine started, or
 * flagged now). Engine thread only, like the rest of the engine.
 */
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/compiler.h"
#include "rule_int.h"

struct late_work {
    struct inst *live;
    struct late_work *next;
    struct iw_rsample *s;           /* the late samples: names the instance's, metrics owned */
    size_t n, cap;
    int64_t upto;                   /* the live instance's evaluated time */
    bool held;                      /* in e->late_held, until `due` (holds(), below) */
    struct late_work *hprev;        /* held: the one before it in e->late_held (O(1) unhold:
                                     * a district's backlogs are thousands at once) */
    int64_t due;
};

struct span {
    int64_t from, to;               /* started_at .. resolve time; INT64_MAX: still open */
};

struct shadow {
    bool ref;                       /* the reference: records its episodes, holds nothing */
    bool quiet;                     /* priming: the past decided these transitions */
    bool ep_late;                   /* the open episode fired late */
    bool lost;                      /* the reference lost an episode (memory): publish nothing */
    struct span *ep;                /* the reference's episodes */
    size_t n_ep, cap_ep;
    struct iw_alert **q;            /* the truth's held alerts, in order */
    size_t nq, capq;
};

/* A replayed point: a stored one, or one of the message's late samples. */
struct lpt {
    int64_t ts, recv;
    double v;
    const char *metric;
    size_t seq;
    char flag;
    bool late_sample;
};

/*
 * water_quality judges each message at its end, over the window before its
 * time, and air_quality closes an hour at a message's end: the replay hands
 * them the points of one time together and then ends that "message", in the
 * truth and in the reference alike.
 */
static bool judged_per_message(const struct inst *live)
{
    return live->rr->r->kind == IW_RULE_WATER_QUALITY || live->rr->r->kind == IW_RULE_AIR_QUALITY;
}

static bool is_air(const struct inst *live)
{
    return live->rr->r->kind == IW_RULE_AIR_QUALITY;
}

void iw__out_of_order(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s,
                      int64_t upto)
{
    struct late_work *w = in->late;
    struct iw_rsample *s_new;
    int64_t due;

    if (in->sx != NULL)
        return;
    e->st.out_of_order++;
    /* Inside the episode the live instance is firing for: its alert speaks for
     * that time (water_quality's and air_quality's replays still rewrite
     * the class and aqi points, and one inside a clear_for: run may break
     * the run: adopt_runs). */
    if (in->st == ST_FIRING && in->pending_since != RT_NONE && s->ts >= in->pending_since
        && !judged_per_message(in) && !(in->clear_since != RT_NONE && s->ts >= in->clear_since))
        return;
    if (w == NULL) {
        w = calloc(1, sizeof(*w));
        if (w == NULL)
            goto nomem;
        w->live = in;
        w->upto = upto;
        w->next = e->late;
        e->late = w;
        in->late = w;
    }
    s_new = iw_grow(w->s, &w->cap, w->n, sizeof(*w->s));
    if (s_new == NULL)
        goto nomem;
    w->s = s_new;
    /* Kept past the message (iw_rules_defer_late): the names must outlive
     * its buffers. The instance's own outlive the work (flushed first). */
    w->s[w->n] = *s;
    w->s[w->n].source = in->source;
    w->s[w->n].site = in->site;
    w->s[w->n].device = in->device;
    if ((w->s[w->n].metric = strdup(s->metric)) == NULL)
        goto nomem;
    w->n++;
    if (upto > w->upto)
        w->upto = upto;
    due = is_air(in) ? iw__air_late_due(in, s->recv_ms) : s->recv_ms + IW_UPLOAD_PAUSE_MS;
    if (due > w->due)
        w->due = due;
    if (!w->held && e->late_since == RT_NONE)
        e->late_since = s->recv_ms;
    return;
nomem:
    IW_LOG_ERROR("rules", "out of memory keeping a late sample of %s; it is not evaluated",
                 in->key);
}

/* ---- shadows ------------------------------------------------------------------ */

static void shadow_free(struct inst *sh)
{
    if (sh == NULL)
        return;
    if (sh->x != NULL && sh->rr->ops->fini != NULL)
        sh->rr->ops->fini(sh);
    free(sh->x);
    if (sh->sx != NULL) {
        for (size_t i = 0; i < sh->sx->nq; i++)
            iw_alert_free(sh->sx->q[i]);
        free(sh->sx->q);
        free(sh->sx->ep);
        free(sh->sx);
    }
    free(sh);
}

/* A copy of live's identity with fresh state; its names are live's (borrowed). */
static struct inst *shadow_new(struct iw_rules_engine *e, struct inst *live, bool ref)
{
    const struct kind_ops *ops = live->rr->ops;
    struct inst *sh = calloc(1, sizeof(*sh));

    if (sh == NULL)
        return NULL;
    sh->sx = calloc(1, sizeof(*sh->sx));
    sh->x = ops->x_size ? calloc(1, ops->x_size) : NULL;
    if (sh->sx == NULL || (ops->x_size && sh->x == NULL)) {
        free(sh->x);
        sh->x = NULL;
        shadow_free(sh);
        return NULL;
    }
    sh->rr = live->rr;
    sh->p = live->p;
    sh->key = live->key;
    sh->source = live->source;
    sh->site = live->site;
    sh->device = live->device;
    sh->metric = live->metric;
    sh->sev = live->p->severity;
    sh->heap_idx = SIZE_MAX;
    sh->pending_since = sh->clear_since = sh->last_ts = sh->next_repeat = RT_NONE;
    /* The replay brings the history (it covers the window and the rate's
     * previous sample): the kind must not read the store itself, which would
     * hand the reference the late samples it is meant to go without. */
    sh->primed = true;
    sh->sx->ref = ref;
    sh->sx->quiet = true;
    if (ops->init != NULL)
        ops->init(e, sh);
    return sh;
}

bool iw__shadow_skip(struct iw_rules_engine *e, struct inst *in, enum iw_alert_status status,
                     enum iw_alert_reason reason, int64_t ts)
{
    struct shadow *sx = in->sx;
    (void)e;
    (void)status;

    if (!sx->ref)
        return sx->quiet;
    if (reason == IW_ALERT_FIRE) {
        struct span *ep = iw_grow(sx->ep, &sx->cap_ep, sx->n_ep, sizeof(*sx->ep));
        if (ep == NULL) {
            sx->lost = true;    /* an incomplete reference could let a duplicate through */
            return true;
        }
        sx->ep = ep;
        sx->ep[sx->n_ep++] = (struct span){ in->pending_since, INT64_MAX };
    } else if (reason == IW_ALERT_RESOLVE && sx->n_ep > 0 && sx->ep[sx->n_ep - 1].to == INT64_MAX) {
        sx->ep[sx->n_ep - 1].to = ts;
    }
    return true;
}

bool iw__shadow_quiet(const struct inst *in)
{
    return in->sx->ref || in->sx->quiet;
}

void iw__shadow_hold(struct iw_rules_engine *e, struct inst *in, const struct iw_alert *a)
{
    struct shadow *sx = in->sx;
    struct iw_alert **q, *c = NULL;

    if (a->reason == IW_ALERT_FIRE)
        sx->ep_late = a->late;
    q = iw_grow(sx->q, &sx->capq, sx->nq, sizeof(*sx->q));
    if (q != NULL)
        sx->q = q;
    if (q == NULL || iw_alert_dup(a, &c) != IW_OK) {
        IW_LOG_ERROR("rules", "out of memory holding a late alert of %s; it is not published",
                     in->key);
        return;
    }
    c->late = a->late || sx->ep_late;
    if (a->reason == IW_ALERT_RESOLVE)
        sx->ep_late = false;
    sx->q[sx->nq++] = c;
    (void)e;
}

/* ---- replay ------------------------------------------------------------------- */

/* Time order, then series; among equal ones the order they came in. */
static int lpt_cmp(const void *pa, const void *pb)
{
    const struct lpt *a = pa, *b = pb;
    int c;

    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    c = strcmp(a->metric, b->metric);
    if (c != 0)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void feed(struct iw_rules_engine *e, struct inst *sh, const struct lpt *pt)
{
    struct iw_rsample rs = {
        .source = sh->source, .site = sh->site, .device = sh->device, .metric = pt->metric,
        .ts = pt->ts, .value = pt->v, .flag = pt->flag, .recv_ms = pt->recv,
    };
    sh->rr->ops->sample(e, sh, &rs);
}

/*
 * How far before the oldest late sample the replay starts, so that the state
 * there is rebuilt: twice what `for:`, `clear_for:` and the window span; at
 * least 3 hours when a state can outlast every parameter (a firing threshold
 * held in its hysteresis band, a flag that only normal data clears, an event
 * that only its stop or auto_resolve ends). A guess
 * either way: nothing before the replay is known. air_quality: the 24 hourly
 * means before the oldest late sample's hour, which the moving means, a day
 * and "not monitored" rest on, and the partial hour the replay starts in.
 */
#define AIR_LOOKBACK (26 * IW_MS_PER_HOUR)

static int64_t lookback(const struct inst *live)
{
    const struct iw_rule_params *p = live->p;
    int64_t win = live->rr->r->kind == IW_RULE_WATER_QUALITY ? iw__water_window(live) : p->window_ms;
    int64_t l = 2 * (p->for_ms + p->clear_for_ms + win + p->auto_resolve_ms);
    bool sticky = live->rr->r->kind == IW_RULE_FLAG || live->rr->r->kind == IW_RULE_EVENT
                  || (p->has_above && p->has_clear_below && p->clear_below != p->above)
                  || (p->has_below && p->has_clear_above && p->clear_above != p->below);

    if (is_air(live) && l < AIR_LOOKBACK)
        return AIR_LOOKBACK;
    return sticky && l < 3 * IW_MS_PER_HOUR ? 3 * IW_MS_PER_HOUR : l;
}

static int count_cb(void *ctx, int64_t ts, double v, char flag)
{
    size_t *n = ctx;
    (void)ts;
    (void)v;
    (void)flag;
    return ++*n >= 2;
}

/*
 * The start of a one-series replay: the lookback, widened (doubling, up to a
 * week) until it holds two stored points, whatever the data's interval: the
 * state before the oldest late sample rests at least on the last value (a
 * threshold) or the last pair (a rate). Dense data stay cheap: a late 1 Hz
 * sample of a plain threshold replays from a few seconds before it.
 */
static int64_t replay_start(struct iw_rules_engine *e, const struct inst *live, const char *metric,
                            int64_t from0)
{
    int64_t l = lookback(live);
    size_t n = 0;

    iw__read_points(e, live, metric, from0 - l, from0 - 1, count_cb, &n);
    while (n < 2 && l < 7 * IW_MS_PER_DAY) {
        l = l < IW_MS_PER_MIN ? IW_MS_PER_MIN : 2 * l;
        n = 0;
        iw__read_points(e, live, metric, from0 - l, from0 - 1, count_cb, &n);
    }
    return from0 - l;
}

/* The names of the series to replay, owned. */
struct names {
    char **v;
    size_t n, cap;
    bool oom;
};

static void names_add(void *ctx, const char *name, size_t len)
{
    struct names *nm = ctx;
    char **v;

    if (len == 0)
        return;             /* a flag the device gave with no sample: nothing stored */
    for (size_t i = 0; i < nm->n; i++)
        if (strlen(nm->v[i]) == len && memcmp(nm->v[i], name, len) == 0)
            return;
    v = iw_grow(nm->v, &nm->cap, nm->n, sizeof(*nm->v));
    if (v == NULL) {
        nm->oom = true;
        return;
    }
    nm->v = v;
    if ((nm->v[nm->n] = strndup(name, len)) == NULL)
        nm->oom = true;
    else
        nm->n++;
}

static void names_free(struct names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
}

/*
 * The series to replay: the instance's metric; for a device-level instance
 * (flag over a 3-level select) every series its condition may involve: the
 * late samples', those its state names (flagged now) and those the engine saw
 * feed it. A series the engine has not seen since it started and that is not
 * flagged now is not replayed (its past flags are unknown to the replay).
 */
static bool replay_metrics(struct iw_rules_engine *e, const struct late_work *w,
                           struct names *nm)
{
    const struct inst *live = w->live;
    const char *(*at)(const struct inst *, size_t) = live->rr->ops->metric_at;

    if (live->metric != NULL) {
        names_add(nm, live->metric, strlen(live->metric));
        return !nm->oom;
    }
    for (size_t i = 0; i < w->n; i++)
        names_add(nm, w->s[i].metric, strlen(w->s[i].metric));
    for (size_t i = 0; at != NULL && at(live, i) != NULL; i++)
        names_add(nm, at(live, i), strlen(at(live, i)));
    iw__inst_series(e, live, names_add, nm);
    return !nm->oom;
}

/* One replay: the late samples (sorted, one per series and time) merged into
 * the stored points, fed to the truth and the reference. */
struct replay {
    struct iw_rules_engine *e;
    struct inst *truth, *ref;
    struct lpt *late;
    size_t n_late, next;
    int64_t from0;                  /* the oldest late sample */
    int64_t settle;                 /* past this, no window holds a late sample */
    int64_t recv;                   /* receipt of the message */
    const char *metric;             /* the series being read */
    bool single;                    /* one series: the replay may end once converged */
    bool converged;
    bool groups;                    /* judged per message (judged_per_message) */
    bool fed_truth, fed_ref;        /* ... and the group of group_ts is open in them */
    int64_t group_ts;
};

/*
 * Once past every late sample and every window holding one, a truth and a
 * reference in the same machine state have the same future: nothing more can
 * differ, so a long catch-up (a backlog of one-sample messages) stops there.
 */
static bool same_state(const struct replay *r)
{
    const struct inst *t = r->truth, *f = r->ref;
    return t->st == f->st && t->sev == f->sev && t->pending_since == f->pending_since
           && t->clear_since == f->clear_since;
}

static bool converged(const struct replay *r, const struct lpt *pt)
{
    return r->single && !pt->late_sample && pt->ts > r->settle && same_state(r);
}

/* End the open group (a message of one time) in the shadows that have it.
 * Past settle, a window holds no late sample: both have the same future
 * once in the same state (for any number of series: the state is the
 * window's, which they then share). */
static bool end_group(struct replay *r)
{
    const struct kind_ops *ops = r->truth->rr->ops;

    if (r->fed_ref)
        ops->message_end(r->e, r->ref, NULL);
    if (r->fed_truth)
        ops->message_end(r->e, r->truth, NULL);
    r->fed_ref = r->fed_truth = false;
    r->converged = r->group_ts > r->settle && same_state(r);
    return r->converged;
}

/* Returns true when the replay may stop. */
static bool step(struct replay *r, const struct lpt *pt)
{
    if (r->groups && (r->fed_truth || r->fed_ref) && pt->ts != r->group_ts && end_group(r))
        return true;
    if (!pt->late_sample) {
        feed(r->e, r->ref, pt);
        r->fed_ref = true;
    }
    r->truth->sx->quiet = pt->ts < r->from0;
    feed(r->e, r->truth, pt);
    r->fed_truth = true;
    r->group_ts = pt->ts;
    if (r->groups)
        return false;
    r->converged = converged(r, pt);
    return r->converged;
}

/* A stored point: the late samples before it first; one at its time replaces it. */
static int stream_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct replay *r = ctx;
    struct lpt pt = { .ts = ts, .recv = r->recv, .v = v, .metric = r->metric, .flag = flag };

    while (r->next < r->n_late && r->late[r->next].ts < ts)
        if (step(r, &r->late[r->next++]))
            return 1;
    if (r->next < r->n_late && r->late[r->next].ts == ts)
        return step(r, &r->late[r->next++]);
    return step(r, &pt);
}

struct lpts {
    struct lpt *p;
    size_t n, cap;
    const char *metric;
    int64_t recv;
    bool oom;
};

static int collect_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct lpts *c = ctx;
    struct lpt *p = iw_grow(c->p, &c->cap, c->n, sizeof(*c->p));

    if (p == NULL) {
        c->oom = true;
        return 1;
    }
    c->p = p;
    c->p[c->n] = (struct lpt){ .ts = ts, .recv = c->recv, .v = v, .metric = c->metric,
                               .seq = c->n, .flag = flag };
    c->n++;
    return 0;
}

/* Several series (a device-level instance), points in [from, to]: read them
 * all, merge in time order with the late samples up to `to` (all that are
 * left when last), and replay them. */
static bool replay_span(struct replay *r, const struct inst *live, char *const *metrics,
                        size_t n_met, int64_t from, int64_t to, bool last)
{
    struct lpts c = { .recv = r->recv };
    size_t n = 0;

    for (size_t m = 0; m < n_met && !c.oom; m++) {
        c.metric = metrics[m];
        iw__read_points(r->e, live, metrics[m], from, to, collect_cb, &c);
    }
    for (; r->next < r->n_late && (last || r->late[r->next].ts <= to) && !c.oom; r->next++) {
        struct lpt *p = iw_grow(c.p, &c.cap, c.n, sizeof(*c.p));
        if (p == NULL) {
            c.oom = true;
            break;
        }
        c.p = p;
        c.p[c.n] = r->late[r->next];
        c.p[c.n].seq = c.n;             /* after every stored point: it replaces them */
        c.n++;
    }
    if (c.oom) {
        free(c.p);
        return false;
    }
    iw_sort(c.p, c.n, sizeof(*c.p), lpt_cmp);
    for (size_t i = 0; i < c.n; i++)    /* one point per (series, ts): the last written */
        if (i + 1 == c.n || c.p[i].ts != c.p[i + 1].ts
            || strcmp(c.p[i].metric, c.p[i + 1].metric) != 0)
            c.p[n++] = c.p[i];
    for (size_t i = 0; i < n && !step(r, &c.p[i]); i++)
        ;
    free(c.p);
    return true;
}

/*
 * The replay of several series, in spans of time: it usually converges soon
 * past settle, while the store may hold days after it (a backlog's first
 * message, uploaded after newer data), which one read of everything up to
 * upto would read and sort for every message of the backlog. The first span
 * ends an hour past settle; each next one is twice as long.
 */
static bool replay_many(struct replay *r, const struct inst *live, char *const *metrics,
                        size_t n_met, int64_t from, int64_t upto)
{
    int64_t len = IW_MS_PER_HOUR;
    int64_t to = r->settle < upto - len ? r->settle + len : upto;

    for (;;) {
        if (!replay_span(r, live, metrics, n_met, from, to, to >= upto))
            return false;
        if (r->converged || to >= upto)
            return true;
        from = to + 1;
        len *= 2;
        to = to < upto - len ? to + len : upto;
    }
}

/* Do [from, to) spans overlap? */
static bool overlaps(const struct span *a, const struct span *b)
{
    return a->from < b->to && b->from < a->to;
}

/*
 * The starts of the late episodes a live instance published lately (kept in
 * its state record, "lm", so that a redelivery after a restart is known
 * too; the record stays while there are any). The store cannot tell a redelivered sample from a new one:
 * without them a redelivered late sample that alone made an episode would
 * publish it again. A truth episode with one of these starts is that
 * episode. Only the start: a later part of a backlog judged apart (uploads
 * further apart than the deferral) may hold another episode inside the span
 * published for the first part, and that one is new.
 */
#define LATE_MEMO 64

struct late_memo {
    int64_t start[LATE_MEMO];
    size_t n, next;                 /* next: the slot to reuse once full (the oldest) */
};

static bool memo_has(const struct inst *live, int64_t start)
{
    for (size_t i = 0; live->memo != NULL && i < live->memo->n; i++)
        if (live->memo->start[i] == start)
            return true;
    return false;
}

static void memo_add(struct inst *live, int64_t start)
{
    struct late_memo *m = live->memo;

    if (m == NULL && (m = live->memo = calloc(1, sizeof(*m))) == NULL)
        return;                     /* out of memory: a duplicate may go out */
    if (m->n < LATE_MEMO) {
        m->start[m->n++] = start;
        return;
    }
    m->start[m->next] = start;
    m->next = (m->next + 1) % LATE_MEMO;
}

void iw__late_memo_free(struct inst *in)
{
    free(in->memo);
    in->memo = NULL;
}

bool iw__late_memo_any(const struct inst *in)
{
    return in->memo != NULL && in->memo->n > 0;
}

void iw__late_memo_save(const struct inst *in, cJSON *o)
{
    const struct late_memo *m = in->memo;
    cJSON *a;

    if (m == NULL || m->n == 0 || (a = cJSON_AddArrayToObject(o, "lm")) == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)       /* oldest first: load adds them in order */
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)m->start[(m->next + i) % m->n]));
}

void iw__late_memo_load(struct inst *in, const cJSON *o)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "lm"), *j;

    cJSON_ArrayForEach(j, a)
        if (cJSON_IsNumber(j))
            memo_add(in, (int64_t)j->valuedouble);
}

/*
 * Publish the held alerts of the episodes the truth fired itself and nobody
 * else had: none overlapping an episode of the reference or live_span, and
 * none with the id of the live instance's latest episode (live_id: the same
 * start, so the same episode; this catches a redelivered sample that alone
 * made that episode, which the reference, going without it, cannot see).
 * Returns whether the truth's open episode (id open_id) was among them.
 */
static bool publish(struct iw_rules_engine *e, struct inst *live, struct shadow *t,
                    const struct shadow *ref, const struct span *live_span, const char *live_id,
                    const char *open_id)
{
    /* Starts published now, remembered at the end: the memo is the past's. */
    int64_t *add = malloc((t->nq ? t->nq : 1) * sizeof(*add));
    size_t n_add = 0;
    bool open = false;

    if (ref->lost) {
        free(add);
        IW_LOG_ERROR("rules", "out of memory evaluating late samples; their alerts are dropped");
        return false;
    }
    for (size_t i = 0; i < t->nq; i++) {
        const struct iw_alert *a = t->q[i];
        const struct iw_alert *fire = NULL;
        struct span sp;
        bool keep;

        for (size_t k = 0; k <= i && fire == NULL; k++)
            if (t->q[k]->reason == IW_ALERT_FIRE && strcmp(t->q[k]->id, a->id) == 0)
                fire = t->q[k];
        if (fire == NULL)
            continue;                   /* an episode the past fired: not the truth's own */
        sp = (struct span){ fire->started_at, INT64_MAX };
        for (size_t k = i; k < t->nq; k++)
            if (t->q[k]->reason == IW_ALERT_RESOLVE && strcmp(t->q[k]->id, a->id) == 0) {
                sp.to = t->q[k]->ts;
                break;
            }
        keep = (live_span == NULL || !overlaps(&sp, live_span)) && strcmp(a->id, live_id) != 0;
        for (size_t k = 0; keep && k < ref->n_ep; k++)
            keep = !overlaps(&sp, &ref->ep[k]);
        if (keep)
            keep = !memo_has(live, sp.from);
        if (!keep)
            continue;
        if (open_id != NULL && a == fire && sp.to == INT64_MAX && strcmp(a->id, open_id) == 0)
            open = true;                /* taken over: the live instance owns it from here */
        else if (a == fire && add != NULL)
            add[n_add++] = sp.from;
        e->st.emitted++;
        e->env.emit(e->env.ctx, a);
    }
    for (size_t i = 0; i < n_add; i++)
        memo_add(live, add[i]);
    if (n_add > 0)
        iw__save(e, live);              /* kept in its record: a restart remembers them */
    free(add);
    return open;
}

/* The late samples as replay points, sorted, one per (series, ts): the last one. */
static struct lpt *late_points(const struct late_work *w, size_t *n_out)
{
    struct lpt *p = malloc(w->n * sizeof(*p));
    size_t n = 0;

    *n_out = 0;
    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < w->n; i++)
        p[i] = (struct lpt){ .ts = w->s[i].ts, .recv = w->s[i].recv_ms, .v = w->s[i].value,
                             .metric = w->s[i].metric, .seq = i, .flag = w->s[i].flag,
                             .late_sample = true };
    iw_sort(p, w->n, sizeof(*p), lpt_cmp);
    for (size_t i = 0; i < w->n; i++)
        if (i + 1 == w->n || p[i].ts != p[i + 1].ts || strcmp(p[i].metric, p[i + 1].metric) != 0)
            p[n++] = p[i];
    *n_out = n;
    return p;
}

/*
 * A late sample inside a run the live instance is timing (for: while
 * pending, clear_for: while firing) moves the run's start as it would have on
 * time: earlier (the condition began before), or later (it broke the run).
 * For a per-series threshold or rate the truth replays the whole series from
 * before any such run began (the lookback spans twice for: and clear_for:),
 * so its start is the one the stored data give. Nothing was published for a
 * run yet; the live instance takes the truth's start, or drops its pending
 * when the truth has none. Other kinds only move a pending start (a
 * device-level truth may not know every series).
 */
static void adopt_runs(struct iw_rules_engine *e, const struct replay *r, struct inst *live)
{
    const struct inst *t = r->truth;
    enum iw_rule_kind k = live->rr->r->kind;
    /* ... and only when the truth reached the live instance's last sample:
     * the store held what the live timeline saw. */
    bool per_series = live->metric != NULL && (k == IW_RULE_THRESHOLD || k == IW_RULE_RATE)
                      && t->last_ts == live->last_ts;

    if (live->st == ST_PENDING && t->st == ST_PENDING
        && (t->pending_since < live->pending_since
            || (per_series && t->pending_since > live->pending_since))) {
        live->pending_since = t->pending_since;
    } else if (!per_series) {
        return;
    } else if (live->st == ST_PENDING && t->st == ST_INACTIVE) {
        live->st = ST_INACTIVE;
        live->pending_since = RT_NONE;
    } else if (live->st == ST_FIRING && t->st == ST_FIRING && t->clear_since != live->clear_since) {
        live->clear_since = t->clear_since;
    } else {
        return;
    }
    iw__save(e, live);
}

static void late_run(struct iw_rules_engine *e, struct late_work *w)
{
    struct inst *live = w->live;
    const struct iw_rule_params *p = live->p;
    struct replay r = { .e = e, .from0 = INT64_MAX, .recv = INT64_MIN };
    struct names nm = { 0 };
    int64_t upto = w->upto;
    struct span live_span;
    bool ok = true, take_over;

    if (live->last_ts != RT_NONE && live->last_ts > upto)
        upto = live->last_ts;
    if (is_air(live))                   /* what it closed by now (the work may have waited) */
        upto = iw__air_judged_to(live);
    for (size_t i = 0; i < w->n; i++)
        if (w->s[i].recv_ms > r.recv)
            r.recv = w->s[i].recv_ms;
    r.late = late_points(w, &r.n_late);
    r.truth = shadow_new(e, live, false);
    r.ref = shadow_new(e, live, true);
    if (!replay_metrics(e, w, &nm) || r.late == NULL || r.truth == NULL || r.ref == NULL)
        goto nomem;
    r.from0 = r.late[0].ts;
    r.groups = judged_per_message(live);
    if (is_air(live)) {
        r.settle = iw__air_settle(live, r.late[r.n_late - 1].ts);
        iw__air_late_begin(r.truth, live);
        iw__air_late_begin(r.ref, live);
    } else {
        r.settle = r.late[r.n_late - 1].ts + (r.groups ? iw__water_window(live)
                                              : p->window_agg != IW_AGG_NONE ? p->window_ms : 0);
    }
    r.single = nm.n == 1;
    if (r.single) {
        r.metric = nm.v[0];
        iw__read_points(e, live, nm.v[0], replay_start(e, live, nm.v[0], r.from0), upto,
                        stream_cb, &r);
        for (; !r.converged && r.next < r.n_late; r.next++)    /* none stored after them */
            step(&r, &r.late[r.next]);
    } else {
        ok = replay_many(&r, live, nm.v, nm.n, r.from0 - lookback(live), upto);
    }
    if (!ok)
        goto nomem;
    if (r.groups && !r.converged && (r.fed_truth || r.fed_ref))
        end_group(&r);
    r.truth->sx->quiet = false;
    if (is_air(live) && !r.converged) {
        iw__air_late_end(e, r.ref, upto, r.recv);
        iw__air_late_end(e, r.truth, upto, r.recv);
    }
    if (is_air(live))
        iw__air_adopt(e, live, r.truth, !r.converged, r.recv);

    /* The truth at the live instance's evaluated time (see the top of the file).
     * Converged earlier, it has the reference's state: nothing of it is new. */
    live_span = (struct span){ live->pending_since, INT64_MAX };
    /* water_quality's live instance judges upto again at the message's end,
     * with the late samples in its window: the judgement the truth made
     * there. air_quality's next judgement is its next period's, from the
     * truth's hourly means (iw__air_adopt): the truth's is the latest one
     * that counts. So a firing truth is taken over like a pending one. */
    take_over = !r.converged && r.truth->st == ST_FIRING
                && (live->st == ST_PENDING || (r.groups && live->st == ST_INACTIVE));
    if (!r.converged && r.truth->st == ST_FIRING && live->st == ST_INACTIVE && !r.groups)
        iw__resolve(e, r.truth, upto, false, r.recv);   /* held: published if the firing is */
    if (!r.converged)
        adopt_runs(e, &r, live);
    if (publish(e, live, r.truth->sx, r.ref->sx, live->st == ST_FIRING ? &live_span : NULL, live->id,
                take_over ? r.truth->id : NULL)) {
        /* The live condition began earlier and met `for:` already: it is this episode. */
        live->st = ST_FIRING;
        live->sev = r.truth->sev;
        live->pending_since = r.truth->pending_since;
        live->clear_since = r.truth->clear_since;
        memcpy(live->id, r.truth->id, sizeof(live->id));
        live->next_repeat = p->repeat_ms > 0 ? r.recv + p->repeat_ms : RT_NONE;
        iw__save(e, live);
        iw__sched(e, live);
    }
    goto done;
nomem:
    IW_LOG_ERROR("rules", "out of memory evaluating late samples of %s; they are not evaluated",
                 live->key);
done:
    shadow_free(r.truth);
    shadow_free(r.ref);
    free(r.late);
    names_free(&nm);
}

static void late_work_free(struct late_work *w)
{
    for (size_t i = 0; i < w->n; i++)
        free((char *)w->s[i].metric);
    free(w->s);
    free(w);
}

/*
 * air_quality holds its late samples until the upload pauses (`due`: the
 * pause an hour's close waits for, after the last one came; the instance's
 * timer runs it, iw__late_run_held): a backlog re-sent a record at a time
 * is then judged whole, not an hour on its first 45 minutes (a firing that
 * the rest of the hour would not have raised, and that is never withdrawn)
 * nor an episode on the part of the outage stored so far.
 *
 * With hold_all (the daemon, `islewatch test`, backtest), so do the
 * per-sample kinds (threshold, rate, flag, event), IW_UPLOAD_PAUSE_MS after
 * the last late sample came: judged at each message, or each pause of the
 * daemon's queue, the first part of such a backlog resolves its episode at
 * the next stored point (at worst the live sample after the outage) and a
 * later part's episode is published beside it. water_quality is still
 * judged at each message: its live instance judges the latest window at the
 * message's end, late samples in it included, and must do so after the
 * replay has taken over the episode they began.
 *
 * Held work must not let a live run finish before the late samples that
 * may break it are judged (a for: run a late sample below the threshold
 * interrupts, which adopt_runs restarts): iw__late_before_sample() judges it
 * when a live sample reaches an instance that is timing a run.
 */
static bool holds(const struct iw_rules_engine *e, const struct late_work *w)
{
    enum iw_rule_kind k = w->live->rr->r->kind;
    return is_air(w->live) || (e->hold_all && k != IW_RULE_WATER_QUALITY);
}

static void unhold(struct iw_rules_engine *e, struct late_work *w)
{
    if (w->hprev != NULL)
        w->hprev->next = w->next;
    else
        e->late_held = w->next;
    if (w->next != NULL)
        w->next->hprev = w->hprev;
    w->next = w->hprev = NULL;
}

static void run_one(struct iw_rules_engine *e, struct late_work *w, bool run)
{
    w->live->late = NULL;
    if (run)
        late_run(e, w);
    late_work_free(w);
}

void iw__late_finish(struct iw_rules_engine *e, enum iw_late_mode mode)
{
    if (mode != IW_LATE_DUE) {          /* held work goes too */
        while (e->late_held != NULL) {
            struct late_work *w = e->late_held;
            unhold(e, w);
            w->held = false;
            w->next = e->late;
            e->late = w;
        }
    }
    while (e->late != NULL) {
        struct late_work *w = e->late;
        e->late = w->next;
        if (mode == IW_LATE_DUE && holds(e, w)) {
            w->held = true;
            w->hprev = NULL;
            w->next = e->late_held;
            if (e->late_held != NULL)
                e->late_held->hprev = w;
            e->late_held = w;
            iw__sched(e, w->live);
            continue;
        }
        run_one(e, w, mode != IW_LATE_DROP);
    }
    e->late_since = RT_NONE;
}

int64_t iw__late_due(const struct inst *in)
{
    return in->late != NULL && in->late->held ? in->late->due : RT_NO_DEADLINE;
}

void iw__late_run_held(struct iw_rules_engine *e, struct inst *in, int64_t now, bool run)
{
    struct late_work *w = in->late;

    if (w == NULL || !w->held || (run && w->due > now))
        return;
    unhold(e, w);
    run_one(e, w, run);
}

void iw__late_before_sample(struct iw_rules_engine *e, struct inst *in)
{
    struct late_work *w = in->late;
    bool in_message = e->in_message;

    if (w == NULL || !w->held || is_air(in)
        || !(in->st == ST_PENDING || (in->st == ST_FIRING && in->clear_since != RT_NONE)))
        return;
    unhold(e, w);
    /* Between two messages, as a timer would run it: the store holds this
     * message too, but the replay stops at what the instance evaluated. */
    e->in_message = false;
    run_one(e, w, true);
    e->in_message = in_message;
}
