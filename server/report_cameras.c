/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report_cameras — 在线率 (online rate) of the Xueliang cameras: the share of
 * heartbeat intervals in which a camera said it was online (contract in
 * islewatch/report.h). Heartbeats arrive in time order, so an interval is
 * counted when the first online heartbeat in it arrives; nothing per
 * interval is stored.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/store.h"
#include "report_int.h"

struct reader {
    struct iw_camera *cam;
    int64_t from, interval;
    int64_t last_k;                 /* last interval counted online; -1: none */
};

static int on_point(void *ctx, const struct iw_point *p)
{
    struct reader *r = ctx;
    struct iw_camera *c = r->cam;
    int64_t k;

    if (iw__rp_flagged(p->flag)) {
        c->flagged++;
        return 0;
    }
    c->heartbeats++;
    if (c->first_seen == INT64_MIN)
        c->first_seen = p->ts;
    c->last_seen = p->ts;
    /* online: true is stored as 1; anything else (0, NaN) is an offline heartbeat */
    if (!(p->value == 1.0))
        return 0;
    k = (p->ts - r->from) / r->interval;
    if (k != r->last_k) {
        c->online++;
        r->last_k = k;
    }
    return 0;
}

static void site_add(struct iw_camera_site *s, const struct iw_camera *c)
{
    s->intervals += c->intervals;
    s->online += c->online;
    if (c->heartbeats == 0 && c->intervals > 0 && c->last_heard == INT64_MIN)
        s->never_seen++;
}

static int first_cb(void *ctx, const struct iw_point *p)
{
    *(int64_t *)ctx = p->ts;
    return 1;
}

static int last_cb(void *ctx, const struct iw_point *p)
{
    if (!iw__rp_flagged(p->flag))
        *(int64_t *)ctx = p->ts;
    return 0;
}

static void free_camera(struct iw_camera *c)
{
    free(c->site);
    free(c->device);
    free(c->name);
    memset(c, 0, sizeof(*c));
}

int iw_report_cameras(struct iw_store *st, const struct iw_report_opts *opts,
                      struct iw_camera_report **out, struct iw_diag *diag)
{
    struct iw__rp_devs devs = { 0 };
    struct iw_camera_report *r = NULL;
    size_t *first = NULL, *cnt = NULL;
    int rc = IW_OK;

    if (out == NULL)
        return IW_E_INVAL;
    *out = NULL;
    if (st == NULL || opts == NULL)
        return IW_E_INVAL;
    if (opts->from >= opts->to) {
        iw_diag_set(diag, NULL, 0, 0, "the period is empty: --from must be before --to");
        return IW_E_INVAL;
    }
    if (opts->interval_ms <= 0) {
        iw_diag_set(diag, NULL, 0, 0, "the heartbeat interval (--interval, or interval= over "
                    "HTTP) must be positive, e.g. 60s");
        return IW_E_INVAL;
    }
    if ((opts->to - opts->from) / opts->interval_ms >= IW_REPORT_MAX_INTERVALS) {
        iw_diag_set(diag, NULL, 0, 0, "the period holds more than %lld heartbeat intervals of "
                    "%lld s: choose a shorter period or a longer interval (--interval, or "
                    "interval= over HTTP)", (long long)IW_REPORT_MAX_INTERVALS,
                    (long long)(opts->interval_ms / 1000));
        return IW_E_INVAL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return IW_E_NOMEM;
    r->from = opts->from;
    r->to = opts->to;
    r->interval_ms = opts->interval_ms;
    r->tz_offset_min = opts->tz_offset_min;
    r->generated_ms = opts->generated_ms;
    r->kept_from = iw_report_kept_from(opts);
    r->n_intervals = (uint64_t)((opts->to - opts->from + opts->interval_ms - 1) / opts->interval_ms);
    if ((rc = iw__rp_collect(st, opts, opts->source ? opts->source : "camera", &devs)) != IW_OK)
        goto fail;
    r->inventory = iw__rp_has_inventory(opts, opts->source ? opts->source : "camera");
    r->cams = calloc(devs.n ? devs.n : 1, sizeof(*r->cams));
    first = calloc(devs.n ? devs.n : 1, sizeof(*first));
    cnt = calloc(devs.n ? devs.n : 1, sizeof(*cnt));
    if (r->cams == NULL || first == NULL || cnt == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < devs.n; i++) {
        struct iw__rp_dev *rd = &devs.v[i];
        struct iw_camera *c = &r->cams[r->n_cams++];
        struct reader rdr = { .cam = c, .from = opts->from, .interval = opts->interval_ms,
                              .last_k = -1 };

        c->site = rd->site;
        c->device = rd->device;
        rd->site = rd->device = NULL;
        c->declared = rd->inv != NULL;
        c->first_seen = c->last_seen = INT64_MIN;
        c->intervals = r->n_intervals;
        if (rd->inv && rd->inv->name && (c->name = strdup(rd->inv->name)) == NULL) {
            rc = IW_E_NOMEM;
            goto fail;
        }
        c->in_service = c->last_heard = INT64_MIN;
        for (size_t k = 0; k < rd->n_ser && rc == IW_OK; k++) {
            if (strcmp(rd->ser[k].metric, "online") != 0)
                continue;
            /* A camera first heard inside the period was installed then: its
             * intervals before that are no downtime. */
            int64_t heard = INT64_MIN;
            rc = iw_store_read_points(st, rd->ser[k].id, INT64_MIN, INT64_MAX, first_cb, &heard);
            if (rc == IW_OK && heard != INT64_MIN && heard > opts->from) {
                c->in_service = heard;
                c->intervals = heard >= opts->to ? 0
                               : r->n_intervals - (uint64_t)((heard - opts->from) / opts->interval_ms);
            }
            if (rc == IW_OK)
                rc = iw_store_read_points(st, rd->ser[k].id, opts->from, opts->to, on_point, &rdr);
            /* Heard before the period and not in it: a camera that went dark. It
             * is offline for the whole period, and when it was last heard is
             * what the operator needs (read only for such cameras). */
            if (rc == IW_OK && heard != INT64_MIN && heard < opts->from && c->heartbeats == 0)
                rc = iw_store_read_points(st, rd->ser[k].id, heard, opts->from, last_cb,
                                          &c->last_heard);
        }
        if (rc != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "reading camera/%s/%s/online: %s", c->site, c->device,
                        iw_strerror(rc));
            goto fail;
        }
        c->rate = iw__rp_ratio(c->online, c->intervals);
        /* Not declared and nothing in the period: a camera that went dark
         * before it (last_heard) is still one of the site's cameras, offline
         * throughout, or its silence would raise the site's rate; only one
         * with no unflagged heartbeat stored before `to` is left out. */
        if (!c->declared && c->heartbeats == 0 && c->flagged == 0 &&
            c->last_heard == INT64_MIN) {
            free_camera(c);
            r->n_cams--;
        }
    }
    r->n_sites = iw__rp_site_runs(r->cams, r->n_cams, sizeof(*r->cams), first, cnt);
    if ((r->sites = calloc(r->n_sites ? r->n_sites : 1, sizeof(*r->sites))) == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (size_t k = 0; k < r->n_sites; k++) {
        struct iw_camera_site *s = &r->sites[k];
        s->first = first[k];
        s->n = cnt[k];
        s->site = r->cams[first[k]].site;
        for (size_t i = s->first; i < s->first + s->n; i++) {
            site_add(s, &r->cams[i]);
            site_add(&r->total, &r->cams[i]);
        }
        s->rate = iw__rp_ratio(s->online, s->intervals);
        r->total.n += s->n;
    }
    r->total.rate = iw__rp_ratio(r->total.online, r->total.intervals);
    free(first);
    free(cnt);
    iw__rp_devs_fini(&devs);
    *out = r;
    return IW_OK;

fail:
    free(first);
    free(cnt);
    iw__rp_devs_fini(&devs);
    iw_report_cameras_free(r);
    return rc;
}

void iw_report_cameras_free(struct iw_camera_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_cams; i++)
        free_camera(&r->cams[i]);
    free(r->cams);
    free(r->sites);
    free(r);
}
