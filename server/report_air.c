/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report_air — the daily AQI of every air station (HJ 633-2012 before
 * 2026-03-01, HJ 633-2026 from then) and 优良天数比例 (good-day ratio) per
 * station and site (contract in islewatch/report.h).
 *
 * One pass over each pollutant series, in time order, folds the samples into
 * hourly values (minute means, as the rule engine does); the daily values
 * and the AQI are standards.h's (iw_avg_24h, iw_avg_o3_max8h, iw_aqi_compute),
 * so the report and the air_quality rules cannot disagree on arithmetic.
 *
 * Memory: 24 hourly values per pollutant and day per device (about 0.8 MB
 * for a year), freed once the device's days are computed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"
#include "report_int.h"

#define NPOL IW_AQI_NPOLLUTANTS

/* 2026-03-01T00:00:00Z: HJ 633-2026 and GB 3095-2026 take effect that (local) day. */
#define HJ633_2026_UTC_MS 1772323200000LL

/* The daily-average item of each pollutant other than O3. */
static const enum iw_aqi_item item_24h[NPOL] = {
    [IW_AQI_P_SO2] = IW_AQI_SO2_24H, [IW_AQI_P_NO2] = IW_AQI_NO2_24H,
    [IW_AQI_P_CO] = IW_AQI_CO_24H, [IW_AQI_P_O3] = IW_AQI_O3_8H,
    [IW_AQI_P_PM10] = IW_AQI_PM10_24H, [IW_AQI_P_PM25] = IW_AQI_PM25_24H,
};

enum iw_aqi_standard iw_report_air_standard(int standard, int64_t day, int tz_offset_min)
{
    if (standard == IW_AQI_HJ633_2012 || standard == IW_AQI_HJ633_2026)
        return (enum iw_aqi_standard)standard;
    return day < HJ633_2026_UTC_MS - (int64_t)tz_offset_min * IW_MS_PER_MIN ? IW_AQI_HJ633_2012
                                                                            : IW_AQI_HJ633_2026;
}

/* ---- hourly values from raw samples --------------------------------------- */

struct hour_acc {
    int64_t  end;                   /* label of the hour being filled; INT64_MIN: none */
    double   sum[60];               /* per minute (m − 1 min, m] */
    uint32_t n[60];
    uint32_t count;                 /* unflagged samples */
    int64_t  first_ts;
    double   first_v;
    bool     after_minutes;         /* the last hour with samples before it held minute samples */
};

/* Hours before the period whose samples tell which pollutants the station
 * measures when the period starts (see measured_by_day); a whole day. */
#define LEAD_HOURS 24

struct reader {
    struct iw_avg *hours;           /* this pollutant: n_days * 24, index 0 ends 01:00 of day 0 */
    uint8_t  *seen;                 /* LEAD_HOURS + n_days * 24 hours from first_day − LEAD_HOURS:
                                     * 1 << pollutant of any sample (flagged too) */
    int       pol;
    bool     *has_data;             /* per day, any sample of any pollutant */
    uint32_t *flagged;              /* per day */
    int64_t   first_day;
    size_t    n_days;
    int       tz;
    bool      any;                  /* a sample of this pollutant in the period */
    /* Every sample's hour, lead-in and flagged ones too: did the last hour with
     * samples hold one before its end (a minute station)? */
    int64_t   seen_end;
    bool      cur_minutes, prev_minutes;
    struct hour_acc acc;
};

/*
 * next_ts: the pollutant's next sample after this hour (INT64_MAX: none). An
 * instrument that reports hourly values stamps each at its hour's end; a
 * lone sample there is such a value unless a sample follows within the next
 * hour: minute data that starts exactly on the hour makes a first hour of
 * one minute, invalid (< 45 minutes), as the rule engine has it (rule_air.c).
 * So is one sample on the hour after an hour of minute samples (a minute
 * station back from a silence for one reading); the price, as there: a
 * station changed from minute to hourly values has its first one invalid.
 */
static struct iw_avg hour_value(const struct hour_acc *a, int64_t next_ts)
{
    struct iw_avg_sample s[60];
    struct iw_avg v = { NAN, 0, false };
    size_t n = 0;

    if (a->count == 1 && a->first_ts == a->end && !a->after_minutes
        && next_ts >= a->end + IW_MS_PER_HOUR)
        return (struct iw_avg){ a->first_v, 1, true };
    for (int m = 0; m < 60; m++)
        if (a->n[m] > 0)
            s[n++] = (struct iw_avg_sample){ a->end - IW_MS_PER_HOUR + (m + 1) * IW_MS_PER_MIN,
                                             a->sum[m] / a->n[m], true };
    if (iw_avg_hour(s, n, a->end, &v) != IW_OK)
        v = (struct iw_avg){ NAN, 0, false };
    return v;
}

static void close_hour(struct reader *r, int64_t next_ts)
{
    struct hour_acc *a = &r->acc;

    if (a->end != INT64_MIN && a->count > 0) {
        size_t idx = (size_t)((a->end - r->first_day) / IW_MS_PER_HOUR - 1);
        r->hours[idx] = hour_value(a, next_ts);
    }
    memset(a, 0, sizeof(*a));
    a->end = INT64_MIN;
}

static int on_point(void *ctx, const struct iw_point *p)
{
    struct reader *r = ctx;
    struct hour_acc *a = &r->acc;
    int64_t end = iw_local_hour_end(p->ts, r->tz), idx;

    if (end == INT64_MIN)
        return 0;
    if (end != r->seen_end) {
        r->prev_minutes = r->cur_minutes;
        r->cur_minutes = false;
        r->seen_end = end;
    }
    r->cur_minutes |= p->ts != end;
    idx = (end - r->first_day) / IW_MS_PER_HOUR - 1 + LEAD_HOURS;
    if (idx >= 0 && (size_t)idx < LEAD_HOURS + r->n_days * 24)
        r->seen[idx] |= (uint8_t)(1u << r->pol);
    if (end <= r->first_day)
        return 0;
    idx = (end - r->first_day) / IW_MS_PER_HOUR - 1;
    if (idx < 0 || (size_t)idx >= r->n_days * 24)
        return 0;
    r->any = true;
    r->has_data[idx / 24] = true;
    if (iw__rp_flagged(p->flag)) {
        r->flagged[idx / 24]++;
        return 0;
    }
    if (!isfinite(p->value))
        return 0;
    if (end != a->end) {
        close_hour(r, p->ts);
        a->end = end;
        a->after_minutes = r->prev_minutes;
    }
    int m = (int)((p->ts - (end - IW_MS_PER_HOUR) - 1) / IW_MS_PER_MIN);
    a->sum[m] += p->value;
    a->n[m]++;
    if (a->count++ == 0) {
        a->first_ts = p->ts;
        a->first_v = p->value;
    }
    return 0;
}

/* Is there a stored sample (read stops there)? */
static int any_point(void *ctx, const struct iw_point *p)
{
    (void)p;
    *(bool *)ctx = true;
    return 1;
}

/*
 * Which pollutants each day needs, as the air_quality rules have it
 * (rule_air.c, count_missing and close_day): one is measured from its first
 * sample (flagged too), and no longer once 24 hours in a row in which the
 * station reported others have none of it (HJ 633's "/", not monitored,
 * rather than a missing value that leaves the day NA); hours without any
 * data do not count. A day needs those measured at any of its hours, so an
 * analyser out all day leaves it NA. The state at the period's start comes
 * from the LEAD_HOURS before it, with `prior` (a sample before those)
 * measured. The inventory's `pollutants:` (declared) are always measured.
 */
static void measured_by_day(const uint8_t *seen, size_t n_days, unsigned prior,
                            unsigned declared, unsigned *by_day)
{
    unsigned measured = prior | declared, day = 0;
    int missing[NPOL] = { 0 };

    for (size_t h = 0; h < LEAD_HOURS + n_days * 24; h++) {
        if (seen[h] != 0) {
            measured |= seen[h];
            day |= measured;
            for (int p = 0; p < NPOL; p++) {
                if (seen[h] & (1u << p))
                    missing[p] = 0;
                else if ((measured & ~declared & (1u << p)) && ++missing[p] >= 24) {
                    measured &= ~(1u << p);
                    missing[p] = 0;
                }
            }
        }
        if (h % 24 == 23) {             /* LEAD_HOURS is a day: a day ends here */
            if (h >= LEAD_HOURS)
                by_day[(h - LEAD_HOURS) / 24] = day;
            day = 0;
        }
    }
}

/* ---- days ---------------------------------------------------------------- */

/*
 * The AQI of a day whose daily values are in d->item, for a station that
 * measured the pollutants in `measured`.
 */
static void eval_day(struct iw_air_day *d, unsigned measured)
{
    unsigned mask = iw_aqi_inputs(d->std, IW_AQI_DAILY);
    struct iw_aqi_input in, all;          /* the valid daily values; all of them */
    struct iw_aqi_result res;

    memset(&in, 0, sizeof(in));
    memset(&all, 0, sizeof(all));
    d->missing = 0;
    for (int it = 0; it < IW_AQI_NITEMS; it++) {
        const struct iw_aqi_item_info *info = iw_aqi_item_info((enum iw_aqi_item)it);
        if (!(mask & IW_AQI_BIT(it)) || info == NULL || !(measured & (1u << info->pollutant)))
            continue;
        if (isfinite(d->item[it].value)) {
            all.v[it] = d->item[it].value;
            all.present[it] = true;
        }
        if (d->item[it].valid && isfinite(d->item[it].value)) {
            in.v[it] = d->item[it].value;
            in.present[it] = true;
        } else {
            d->missing |= 1u << info->pollutant;
        }
    }
    d->aqi = -1;
    d->level = 0;
    d->primary = 0;
    for (int it = 0; it < IW_AQI_NITEMS; it++)
        d->iaqi[it] = -1;
    if (iw_aqi_compute(d->std, IW_AQI_DAILY, &in, &res) == IW_OK && res.aqi >= 0) {
        d->aqi = res.aqi;
        d->level = res.level;
        d->primary = res.primary;
        memcpy(d->iaqi, res.iaqi, sizeof(d->iaqi));
    }
    /* A missing pollutant can only raise the AQI: above 100 the day is decided. */
    d->valid = d->aqi >= 0 && (d->missing == 0 || d->aqi > 100);
    d->partial = d->valid && d->missing != 0;
    if (d->valid)
        return;
    /* Not valid: its (AQI) is what the day's data indicate, as the
     * air_quality rules store it (rule_air.c): the AQI of every daily value,
     * those below the validity minimum included; never below the valid ones'. */
    if (iw_aqi_compute(d->std, IW_AQI_DAILY, &all, &res) == IW_OK && res.aqi > d->aqi) {
        d->aqi = res.aqi;
        d->level = res.level;
    }
}

static void tally_day(struct iw_air_tally *t, const struct iw_air_day *d)
{
    t->days++;
    t->flagged += d->n_flagged;
    if (!d->valid) {
        t->invalid_days++;
        return;
    }
    t->valid_days++;
    if (d->aqi <= 100)
        t->good_days++;
    if (d->level >= 1 && d->level <= 6)
        t->by_level[d->level]++;
    if (d->aqi > t->max_aqi)
        t->max_aqi = d->aqi;
}

static void tally_finish(struct iw_air_tally *t, size_t n_days)
{
    t->nodata_days = n_days > t->days ? n_days - t->days : 0;
    t->good_rate = iw__rp_ratio(t->good_days, t->valid_days);
}

static void blank_items(struct iw_air_day *d)
{
    for (int it = 0; it < IW_AQI_NITEMS; it++) {
        d->item[it] = (struct iw_avg){ NAN, 0, false };
        d->iaqi[it] = -1;
    }
}

/* The daily values of one device's day from its hourly values. */
static void device_day_items(struct iw_air_day *d, struct iw_avg *const hours[NPOL],
                             size_t day_idx, unsigned measured)
{
    blank_items(d);
    for (int p = 0; p < NPOL; p++) {
        const struct iw_avg *h = hours[p] + day_idx * 24;
        struct iw_avg a;
        if (!(measured & (1u << p)))
            continue;
        if (p == IW_AQI_P_O3) {
            if (iw_avg_o3_max8h(h, &a, NULL) == IW_OK)
                d->item[IW_AQI_O3_8H] = a;
            if (iw_avg_o3_max1h(h, &a, NULL) == IW_OK)
                d->item[IW_AQI_O3_1H] = a;
        } else if (iw_avg_24h(h, &a) == IW_OK) {
            d->item[item_24h[p]] = a;
        }
    }
}

/*
 * The station's time zone: as the air_quality rules judge its days (SPEC §4:
 * "the natural day in the station's time zone (timezone:)"), the first such
 * rule that selects it, its per-site override included; --tz decides for all.
 */
static int device_tz(const struct iw_report_opts *o, const char *source, const char *site,
                     const char *device)
{
    if (o->tz_given)
        return o->tz_offset_min;
    for (size_t i = 0; i < o->n_rules; i++) {
        const struct iw_rule *r = &o->rules[i];
        if (r->kind == IW_RULE_AIR_QUALITY && r->select != NULL &&
            iw_select_match(r->select, source, site, device, NULL))
            return iw_rule_params_for(r, site)->tz_offset_min;
    }
    return o->tz_offset_min;
}

/*
 * label_first: the report's midnight of its first date. The device's days
 * are the same dates in its own zone (dev->tz_offset_min), from first_day
 * on; each day is labelled with the report's midnight of its date.
 */
static int device_days(struct iw_store *st, const struct iw__rp_dev *rd,
                       const struct iw_report_opts *o, int64_t label_first, size_t n_days,
                       struct iw_air_device *dev)
{
    struct iw_avg *hours[NPOL] = { 0 };
    bool *has_data = calloc(n_days, sizeof(*has_data));
    uint32_t *flagged = calloc(n_days, sizeof(*flagged));
    uint8_t *seen = calloc(LEAD_HOURS + n_days * 24, sizeof(*seen));
    unsigned *measured = calloc(n_days, sizeof(*measured)), prior = 0;
    int64_t first_day = label_first +
                        (int64_t)(o->tz_offset_min - dev->tz_offset_min) * IW_MS_PER_MIN;
    int64_t end = first_day + (int64_t)n_days * IW_MS_PER_DAY;
    int64_t lead = first_day - LEAD_HOURS * IW_MS_PER_HOUR;
    int rc = IW_OK;

    if (has_data == NULL || flagged == NULL || seen == NULL || measured == NULL)
        rc = IW_E_NOMEM;
    for (int p = 0; p < NPOL && rc == IW_OK; p++) {
        if ((hours[p] = malloc(n_days * 24 * sizeof(*hours[p]))) == NULL)
            rc = IW_E_NOMEM;
        for (size_t i = 0; rc == IW_OK && i < n_days * 24; i++)
            hours[p][i] = (struct iw_avg){ NAN, 0, false };
    }
    for (size_t i = 0; i < rd->n_ser && rc == IW_OK; i++) {
        int p = iw_aqi_pollutant_find(rd->ser[i].metric);
        struct reader r = { .hours = hours[p < 0 ? 0 : p], .seen = seen, .pol = p,
                            .has_data = has_data, .flagged = flagged, .first_day = first_day,
                            .n_days = n_days, .tz = dev->tz_offset_min,
                            .seen_end = INT64_MIN, .acc = { .end = INT64_MIN } };
        bool before = false;
        if (p < 0)
            continue;               /* not an AQI pollutant (e.g. the derived "aqi") */
        /* Hours are (H − 1 h, H]: the day's last sample may be stamped at its 24:00. */
        rc = iw_store_read_points(st, rd->ser[i].id, lead + 1, end + 1, on_point, &r);
        close_hour(&r, INT64_MAX);
        if (r.any)
            dev->measured |= 1u << p;
        if (rc == IW_OK
            && (rc = iw_store_read_points(st, rd->ser[i].id, INT64_MIN, lead, any_point,
                                          &before)) == IW_OK && before)
            prior |= 1u << p;
    }
    if (rc == IW_OK)
        measured_by_day(seen, n_days, prior, rd->inv != NULL ? rd->inv->pollutants : 0, measured);
    if (rc == IW_OK && (dev->days = calloc(n_days, sizeof(*dev->days))) == NULL)
        rc = IW_E_NOMEM;
    for (size_t k = 0; rc == IW_OK && k < n_days; k++) {
        struct iw_air_day *d = &dev->days[dev->n_days];
        if (!has_data[k])
            continue;
        d->day = label_first + (int64_t)k * IW_MS_PER_DAY;
        d->std = iw_report_air_standard(o->standard, d->day, o->tz_offset_min);
        d->n_flagged = flagged[k];
        d->measured = measured[k];
        device_day_items(d, hours, k, d->measured);
        eval_day(d, d->measured);
        tally_day(&dev->tally, d);
        dev->n_days++;
    }
    for (int p = 0; p < NPOL; p++)
        free(hours[p]);
    free(has_data);
    free(flagged);
    free(seen);
    free(measured);
    return rc;
}

/*
 * A site of several devices: each day's values are the means of the
 * devices' valid daily values, and the AQI is computed from those.
 */
static int site_days(struct iw_air_site *s, const struct iw_air_device *dev, size_t n_days)
{
    size_t *cur = calloc(s->n, sizeof(*cur));

    s->days = calloc(n_days ? n_days : 1, sizeof(*s->days));
    if (cur == NULL || s->days == NULL) {
        free(cur);
        return IW_E_NOMEM;
    }
    for (size_t i = 0; i < s->n; i++)
        s->measured |= dev[i].measured;
    for (;;) {
        int64_t day = INT64_MAX;
        double sum[IW_AQI_NITEMS] = { 0 };
        int cnt[IW_AQI_NITEMS] = { 0 };
        struct iw_air_day *d;

        for (size_t i = 0; i < s->n; i++)
            if (cur[i] < dev[i].n_days && dev[i].days[cur[i]].day < day)
                day = dev[i].days[cur[i]].day;
        if (day == INT64_MAX)
            break;
        d = &s->days[s->n_days++];
        memset(d, 0, sizeof(*d));
        d->day = day;
        for (size_t i = 0; i < s->n; i++) {
            const struct iw_air_day *dd;
            if (cur[i] >= dev[i].n_days || dev[i].days[cur[i]].day != day)
                continue;
            dd = &dev[i].days[cur[i]++];
            d->n_devices++;
            d->measured |= dd->measured;
            d->std = dd->std;
            d->n_flagged += dd->n_flagged;
            for (int it = 0; it < IW_AQI_NITEMS; it++)
                if (dd->item[it].valid && isfinite(dd->item[it].value)) {
                    sum[it] += dd->item[it].value;
                    cnt[it]++;
                }
        }
        blank_items(d);
        for (int it = 0; it < IW_AQI_NITEMS; it++)
            if (cnt[it] > 0)
                d->item[it] = (struct iw_avg){ sum[it] / cnt[it], cnt[it], true };
        eval_day(d, d->measured);
        tally_day(&s->tally, d);
    }
    free(cur);
    return IW_OK;
}

static void tally_add(struct iw_air_tally *dst, const struct iw_air_tally *src)
{
    dst->days += src->days;
    dst->valid_days += src->valid_days;
    dst->good_days += src->good_days;
    dst->invalid_days += src->invalid_days;
    dst->nodata_days += src->nodata_days;
    for (int l = 0; l < 7; l++)
        dst->by_level[l] += src->by_level[l];
    if (src->max_aqi > dst->max_aqi)
        dst->max_aqi = src->max_aqi;
    dst->flagged += src->flagged;
}

static void free_device(struct iw_air_device *d)
{
    free(d->site);
    free(d->device);
    free(d->name);
    free(d->days);
    memset(d, 0, sizeof(*d));
}

int iw_report_air(struct iw_store *st, const struct iw_report_opts *opts,
                  struct iw_air_report **out, struct iw_diag *diag)
{
    struct iw__rp_devs devs = { 0 };
    struct iw_air_report *r = NULL;
    size_t *first = NULL, *cnt = NULL;
    int rc;

    if (out == NULL)
        return IW_E_INVAL;
    *out = NULL;
    if (st == NULL || opts == NULL)
        return IW_E_INVAL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return IW_E_NOMEM;
    r->from = opts->from;
    r->to = opts->to;
    r->tz_offset_min = opts->tz_offset_min;
    r->standard = opts->standard;
    r->generated_ms = opts->generated_ms;
    r->kept_from = iw_report_kept_from(opts);
    r->total.max_aqi = -1;
    if ((rc = iw_report_days(opts, &r->first_day, &r->n_days, diag)) != IW_OK)
        goto fail;
    if ((rc = iw__rp_collect(st, opts, opts->source ? opts->source : "air", &devs)) != IW_OK)
        goto fail;
    r->inventory = iw__rp_has_inventory(opts, opts->source ? opts->source : "air");
    r->dev = calloc(devs.n ? devs.n : 1, sizeof(*r->dev));
    first = calloc(devs.n ? devs.n : 1, sizeof(*first));
    cnt = calloc(devs.n ? devs.n : 1, sizeof(*cnt));
    if (r->dev == NULL || first == NULL || cnt == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < devs.n; i++) {
        struct iw__rp_dev *rd = &devs.v[i];
        struct iw_air_device *dev = &r->dev[r->n_dev++];

        dev->site = rd->site;
        dev->device = rd->device;
        rd->site = rd->device = NULL;
        dev->declared = rd->inv != NULL;
        dev->tally.max_aqi = -1;
        dev->tz_offset_min = device_tz(opts, opts->source ? opts->source : "air", dev->site,
                                       dev->device);
        if (rd->inv && rd->inv->name && (dev->name = strdup(rd->inv->name)) == NULL) {
            rc = IW_E_NOMEM;
            goto fail;
        }
        if ((rc = device_days(st, rd, opts, r->first_day, r->n_days, dev)) != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "reading air/%s/%s: %s", dev->site, dev->device,
                        iw_strerror(rc));
            goto fail;
        }
        tally_finish(&dev->tally, r->n_days);
        if (!dev->declared && dev->measured == 0) {
            free_device(dev);               /* only old data: not part of this period */
            r->n_dev--;
        }
    }
    r->n_sites = iw__rp_site_runs(r->dev, r->n_dev, sizeof(*r->dev), first, cnt);
    if ((r->sites = calloc(r->n_sites ? r->n_sites : 1, sizeof(*r->sites))) == NULL) {
        rc = IW_E_NOMEM;
        goto fail;
    }
    for (size_t k = 0; k < r->n_sites; k++) {
        struct iw_air_site *s = &r->sites[k];
        s->first = first[k];
        s->n = cnt[k];
        s->site = r->dev[first[k]].site;
        s->tally.max_aqi = -1;
        if ((rc = site_days(s, r->dev + s->first, r->n_days)) != IW_OK)
            goto fail;
        tally_finish(&s->tally, r->n_days);
        tally_add(&r->total, &s->tally);
        for (size_t i = 0; i < s->n_days; i++)
            r->std_used[s->days[i].std] = true;
    }
    r->total.good_rate = iw__rp_ratio(r->total.good_days, r->total.valid_days);
    free(first);
    free(cnt);
    iw__rp_devs_fini(&devs);
    *out = r;
    return IW_OK;

fail:
    free(first);
    free(cnt);
    iw__rp_devs_fini(&devs);
    iw_report_air_free(r);
    return rc;
}

void iw_report_air_free(struct iw_air_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_dev; i++)
        free_device(&r->dev[i]);
    for (size_t k = 0; k < r->n_sites; k++)
        free(r->sites[k].days);
    free(r->dev);
    free(r->sites);
    free(r);
}
