/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report_water — daily GB 3838-2002 classes of every water station and the
 * 达标率 (share of samples meeting the target) per station and site
 * (contract in islewatch/report.h). Both are taken from raw samples, not
 * from the rule engine's class series, so the report does not depend on
 * which rules were configured when the data arrived.
 *
 * Memory: one day-by-parameter accumulator per device (about 100 KB for a
 * year), filled in one pass over each series' points in time order, and
 * the class of every sample of the device in the period (16 bytes each,
 * about 2 MB for 90 days of one sample a minute): the classes of one series
 * are merged by timestamp into those of the series read before it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"
#include "report_int.h"

struct acc {
    double   sum[IW_WATER_NPARAM];
    uint32_t n[IW_WATER_NPARAM];
    uint32_t flagged;
    uint32_t samples, samples_meeting;
};

/* A sample (one timestamp of a device) and the worst class of its deciding items so far. */
struct wsample {
    int64_t ts;
    int     cls;                    /* 1..6 */
};

struct wsamples {
    struct wsample *v;
    size_t n, cap;
};

struct reader {
    struct acc *days;
    size_t n_days;
    int64_t first_day;
    int tz;
    int param;
    enum iw_water_body body;
    bool decides;                   /* the parameter decides a sample's class */
    struct wsamples *cur;           /* the classes of this series' points */
    bool nomem;
};

static bool wsamples_push(struct wsamples *s, int64_t ts, int cls)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        struct wsample *v = realloc(s->v, nc * sizeof(*v));
        if (v == NULL)
            return false;
        s->v = v;
        s->cap = nc;
    }
    s->v[s->n++] = (struct wsample){ .ts = ts, .cls = cls };
    return true;
}

/*
 * Merge the classes of one series (add, in time order) into those of the
 * series before it (all, in time order) through tmp: one sample per
 * timestamp, the worse class where both have one. false when out of memory.
 */
static bool wsamples_merge(struct wsamples *all, const struct wsamples *add, struct wsamples *tmp)
{
    size_t i = 0, j = 0, need = all->n + add->n;

    if (add->n == 0)
        return true;
    if (tmp->cap < need) {
        struct wsample *v = realloc(tmp->v, need * sizeof(*v));
        if (v == NULL)
            return false;
        tmp->v = v;
        tmp->cap = need;
    }
    tmp->n = 0;
    while (i < all->n || j < add->n) {
        struct wsample x;
        if (j == add->n || (i < all->n && all->v[i].ts < add->v[j].ts)) {
            x = all->v[i++];
        } else if (i == all->n || add->v[j].ts < all->v[i].ts) {
            x = add->v[j++];
        } else {
            x = all->v[i++];
            if (add->v[j].cls > x.cls)
                x.cls = add->v[j].cls;
            j++;
        }
        tmp->v[tmp->n++] = x;
    }
    struct wsamples t = *all;
    *all = *tmp;
    *tmp = t;
    return true;
}

static int on_point(void *ctx, const struct iw_point *p)
{
    struct reader *r = ctx;
    int64_t day = iw_local_day_start(p->ts, r->tz);
    size_t k;

    if (day == INT64_MIN || day < r->first_day)
        return 0;
    k = (size_t)((day - r->first_day) / IW_MS_PER_DAY);
    if (k >= r->n_days)
        return 0;
    if (iw__rp_flagged(p->flag)) {
        r->days[k].flagged++;
        return 0;
    }
    if (!isfinite(p->value))
        return 0;
    r->days[k].sum[r->param] += p->value;
    r->days[k].n[r->param]++;
    if (r->decides) {
        int cls = iw_water_class((enum iw_water_param)r->param, r->body, p->value);
        if (cls >= 1 && cls <= IW_WATER_CLASS_WORSE_THAN_V && !wsamples_push(r->cur, p->ts, cls)) {
            r->nomem = true;
            return 1;
        }
    }
    return 0;
}

/*
 * The target and body a water_quality rule gives the device, as the rule
 * itself resolves them (rule_water.c): target by iw_water_target, body the
 * rule's (per-site override included) before the inventory's. The first
 * such rule that covers the device decides, so the report and the alerts
 * judge a sample alike.
 */
static void rule_target(const struct iw_report_opts *o, const char *source,
                        const struct iw_device_cfg *inv, struct iw_water_device *dev)
{
    for (size_t i = 0; i < o->n_rules; i++) {
        const struct iw_rule *r = &o->rules[i];
        if (r->kind != IW_RULE_WATER_QUALITY || r->select == NULL
            || !iw_select_match(r->select, source, dev->site, dev->device, NULL))
            continue;
        const struct iw_rule_params *p = iw_rule_params_for(r, dev->site);
        dev->target = iw_water_target(p, inv);
        if (p->has_body)
            dev->body = p->body;
        return;
    }
}

/* Count every sample in its day's accumulator: does its class meet the target? */
static void count_samples(const struct wsamples *s, struct acc *days, int64_t first_day,
                          size_t n_days, int tz, int target)
{
    for (size_t i = 0; i < s->n; i++) {
        int64_t day = iw_local_day_start(s->v[i].ts, tz);
        size_t k;
        if (day == INT64_MIN || day < first_day)
            continue;               /* cannot happen: on_point kept only days of the period */
        k = (size_t)((day - first_day) / IW_MS_PER_DAY);
        if (k >= n_days)
            continue;
        days[k].samples++;
        if (s->v[i].cls <= target)
            days[k].samples_meeting++;
    }
}

static void tally_day(struct iw_water_tally *t, const struct iw_water_day *d, int target,
                      enum iw_water_body body)
{
    t->days++;
    t->flagged += d->n_flagged;
    if (d->cls < 1 || d->cls > IW_WATER_CLASS_WORSE_THAN_V)
        return;
    t->days_classed++;
    t->by_class[d->cls]++;
    if (d->meets)
        t->days_meeting++;
    t->samples += d->samples;
    t->samples_meeting += d->samples_meeting;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        if (d->deciding[p] && d->cls >= 2)
            t->deciding[p]++;
        if (d->param_class[p] > target && iw_water_param_decides((enum iw_water_param)p, body))
            t->over_target[p]++;
    }
}

static void tally_add(struct iw_water_tally *dst, const struct iw_water_tally *src)
{
    dst->days += src->days;
    dst->days_classed += src->days_classed;
    for (int c = 0; c < 7; c++)
        dst->by_class[c] += src->by_class[c];
    dst->days_meeting += src->days_meeting;
    dst->samples += src->samples;
    dst->samples_meeting += src->samples_meeting;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        dst->deciding[p] += src->deciding[p];
        dst->over_target[p] += src->over_target[p];
    }
    dst->flagged += src->flagged;
}

static void tally_finish(struct iw_water_tally *t)
{
    t->rate = iw__rp_ratio(t->samples_meeting, t->samples);
}

/* Evaluate one day's means; false when the day has no unflagged sample. */
static bool eval_day(const struct acc *a, int64_t day, const struct iw_water_device *dev,
                     struct iw_water_day *out)
{
    struct iw_water_input in;
    struct iw_water_result res;
    bool any = false;

    memset(&in, 0, sizeof(in));
    memset(out, 0, sizeof(*out));
    out->day = day;
    out->n_flagged = a->flagged;
    out->samples = a->samples;
    out->samples_meeting = a->samples_meeting;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        if (a->n[p] == 0)
            continue;
        out->mean[p] = a->sum[p] / a->n[p];
        out->n[p] = a->n[p];
        if (isfinite(out->mean[p])) {
            in.value[p] = out->mean[p];
            in.present[p] = true;
            any = true;
        }
    }
    if (!any)
        return false;
    if (iw_water_evaluate(&in, dev->body, dev->target, &res) != IW_OK)
        return true;                /* cannot happen with finite means; keep the day unclassed */
    out->cls = res.cls;
    out->meets = res.cls >= 1 && res.cls <= dev->target;
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        out->param_class[p] = (uint8_t)(res.param_class[p] > 0 ? res.param_class[p] : 0);
        out->deciding[p] = res.deciding[p] && res.param_class[p] == res.cls;
    }
    return true;
}

static int device_days(struct iw_store *st, const struct iw__rp_dev *rd, int64_t first_day,
                       size_t n_days, int tz, int64_t from, int64_t to,
                       struct iw_water_device *dev, bool *seen)
{
    struct acc *acc = calloc(n_days, sizeof(*acc));
    struct wsamples all = { 0 }, cur = { 0 }, tmp = { 0 };
    struct reader r = { .days = acc, .n_days = n_days, .first_day = first_day, .tz = tz,
                        .body = dev->body, .cur = &cur };
    int64_t end = first_day + (int64_t)n_days * IW_MS_PER_DAY, first_day_read = first_day;
    int rc = IW_OK;

    if (acc == NULL)
        return IW_E_NOMEM;
    /* Only the samples of the period [from, to): its first and last days
     * may be partial, and a sample outside it is not the period's. */
    if (from > first_day)
        first_day_read = from;
    if (to < end)
        end = to;
    for (size_t i = 0; i < rd->n_ser && rc == IW_OK; i++) {
        r.param = iw_water_param_find(rd->ser[i].metric);
        if (r.param < 0)
            continue;               /* not a GB 3838 parameter (e.g. the derived "class") */
        r.decides = iw_water_param_decides((enum iw_water_param)r.param, dev->body);
        cur.n = 0;
        rc = iw_store_read_points(st, rd->ser[i].id, first_day_read, end, on_point, &r);
        if (r.nomem || (rc == IW_OK && !wsamples_merge(&all, &cur, &tmp)))
            rc = IW_E_NOMEM;        /* on_point stopped the read: the store says IW_OK */
    }
    if (rc == IW_OK)
        count_samples(&all, acc, first_day, n_days, tz, dev->target);
    free(all.v);
    free(cur.v);
    free(tmp.v);
    if (rc == IW_OK && (dev->days = calloc(n_days, sizeof(*dev->days))) == NULL)
        rc = IW_E_NOMEM;
    /* The period's class: the same evaluation over the period's means. */
    struct acc period = { 0 };
    struct iw_water_day pd;
    for (size_t d = 0; rc == IW_OK && d < n_days; d++)
        for (int p = 0; p < IW_WATER_NPARAM; p++) {
            period.sum[p] += acc[d].sum[p];
            period.n[p] += acc[d].n[p];
        }
    if (rc == IW_OK && eval_day(&period, from, dev, &pd)) {
        dev->tally.cls = pd.cls;
        dev->tally.meets = pd.meets;
    }
    for (size_t d = 0; rc == IW_OK && d < n_days; d++) {
        struct iw_water_day *out = &dev->days[dev->n_days];
        if (!eval_day(&acc[d], first_day + (int64_t)d * IW_MS_PER_DAY, dev, out)) {
            dev->tally.flagged += acc[d].flagged;   /* a day with only flagged samples */
            continue;
        }
        for (int p = 0; p < IW_WATER_NPARAM; p++)
            if (out->n[p] > 0)
                seen[p] = true;
        tally_day(&dev->tally, out, dev->target, dev->body);
        dev->n_days++;
    }
    free(acc);
    return rc;
}

static void free_device(struct iw_water_device *d)
{
    free(d->site);
    free(d->device);
    free(d->name);
    free(d->days);
    memset(d, 0, sizeof(*d));
}

int iw_report_water(struct iw_store *st, const struct iw_report_opts *opts,
                    struct iw_water_report **out, struct iw_diag *diag)
{
    struct iw__rp_devs devs = { 0 };
    struct iw_water_report *r = NULL;
    size_t *first = NULL, *cnt = NULL;
    int rc;

    if (out == NULL)
        return IW_E_INVAL;
    *out = NULL;
    if (st == NULL || opts == NULL)
        return IW_E_INVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return IW_E_NOMEM;
    r->from = opts->from;
    r->to = opts->to;
    r->tz_offset_min = opts->tz_offset_min;
    r->generated_ms = opts->generated_ms;
    r->kept_from = iw_report_kept_from(opts);
    if ((rc = iw_report_days(opts, &r->first_day, &r->n_days, diag)) != IW_OK)
        goto fail;
    if ((rc = iw__rp_collect(st, opts, opts->source ? opts->source : "water", &devs)) != IW_OK)
        goto fail;
    r->inventory = iw__rp_has_inventory(opts, opts->source ? opts->source : "water");
    r->dev = calloc(devs.n ? devs.n : 1, sizeof(*r->dev));
    first = calloc(devs.n ? devs.n : 1, sizeof(*first));
    cnt = calloc(devs.n ? devs.n : 1, sizeof(*cnt));
    if (r->dev == NULL || first == NULL || cnt == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < devs.n; i++) {
        struct iw__rp_dev *rd = &devs.v[i];
        struct iw_water_device *dev = &r->dev[r->n_dev++];
        int t = rd->inv && rd->inv->target >= 1 && rd->inv->target <= 5 ? rd->inv->target
                                                                            : opts->default_target;

        dev->site = rd->site;
        dev->device = rd->device;
        rd->site = rd->device = NULL;       /* the report owns them now */
        dev->declared = rd->inv != NULL;
        if (rd->inv && rd->inv->name && (dev->name = strdup(rd->inv->name)) == NULL) {
            rc = IW_E_NOMEM;
            goto fail;
        }
        dev->target = t >= 1 && t <= 5 ? t : 3;
        dev->body = rd->inv ? rd->inv->body : IW_BODY_RIVER;
        rule_target(opts, opts->source ? opts->source : "water", rd->inv, dev);
        rc = device_days(st, rd, r->first_day, r->n_days, r->tz_offset_min, opts->from, opts->to,
                         dev, r->param_seen);
        if (rc != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "reading water/%s/%s: %s", dev->site, dev->device,
                        iw_strerror(rc));
            goto fail;
        }
        tally_finish(&dev->tally);
        if (!dev->declared && dev->n_days == 0 && dev->tally.flagged == 0) {
            free_device(dev);               /* only old data: not part of this period */
            r->n_dev--;
        }
    }
    r->n_sites = iw__rp_site_runs(r->dev, r->n_dev, sizeof(*r->dev), first, cnt);
    r->sites = calloc(r->n_sites ? r->n_sites : 1, sizeof(*r->sites));
    if (r->sites == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (size_t k = 0; k < r->n_sites; k++) {
        struct iw_water_site *s = &r->sites[k];
        s->first = first[k];
        s->n = cnt[k];
        s->site = r->dev[first[k]].site;
        s->tally.meets = true;
        for (size_t i = s->first; i < s->first + s->n; i++) {
            const struct iw_water_tally *dt = &r->dev[i].tally;
            tally_add(&s->tally, dt);
            if (dt->cls > s->tally.cls)
                s->tally.cls = dt->cls;         /* the site is as bad as its worst station */
            if (dt->cls > 0 && !dt->meets)
                s->tally.meets = false;
        }
        tally_finish(&s->tally);
        tally_add(&r->total, &s->tally);
    }
    tally_finish(&r->total);
    free(first);
    free(cnt);
    iw__rp_devs_fini(&devs);
    *out = r;
    return IW_OK;

fail:
    free(first);
    free(cnt);
    iw__rp_devs_fini(&devs);
    iw_report_water_free(r);
    return rc;
}

void iw_report_water_free(struct iw_water_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_dev; i++)
        free_device(&r->dev[i]);
    free(r->dev);
    free(r->sites);
    free(r);
}

size_t iw_water_tally_worst(const struct iw_water_tally *t, enum iw_water_param *out, size_t max)
{
    size_t n = 0;

    if (t == NULL || out == NULL)
        return 0;
    /* Insertion into a short ranked list: at most IW_WATER_NPARAM candidates. */
    enum iw_water_param rank[IW_WATER_NPARAM];
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        if (t->deciding[p] == 0)
            continue;
        size_t i = n++;
        while (i > 0 && (t->deciding[rank[i - 1]] < t->deciding[p] ||
                         (t->deciding[rank[i - 1]] == t->deciding[p] &&
                          t->over_target[rank[i - 1]] < t->over_target[p]))) {
            rank[i] = rank[i - 1];
            i--;
        }
        rank[i] = (enum iw_water_param)p;
    }
    if (n > max)
        n = max;
    memcpy(out, rank, n * sizeof(*out));
    return n;
}
