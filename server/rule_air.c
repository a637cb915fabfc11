/* SPDX-License-Identifier: Apache-2.0 */
/*
 * air_quality: hourly means of a station's pollutants, the real-time (hourly)
 * or daily AQI of HJ 633-2012/2026 at the end of each period, and the level
 * alert (contract in islewatch/rules.h). Averaging and AQI arithmetic are
 * standards.h's; this file only collects the minutes, decides when an hour
 * or a day is closed, and keeps the last 24 hourly means for the moving
 * averages (2012 real-time report) and the daily report. A sample of an hour
 * already closed (or passed over) is judged on its own time by rule_late.c's
 * replay (the iw__air_* functions below). Engine thread only.
 *
 * Which pollutants a station measures: the ones its device has reported
 * (any sample, flagged ones too) by the end of the period, kept across
 * restarts, until one is missing from 24 hours of the station's data
 * (count_missing). HJ 633-2026 writes "/" for a pollutant a station does not
 * monitor and NA for a missing measurement; only the latter is missing data
 * (§5.3.1), so an hour with no valid PM2.5 from a station that has a PM2.5
 * analyser is missing data even when not one PM2.5 sample came in it. A day
 * needs the pollutants measured at any of its hours (day_measured). The air
 * report (report_air.c, measured_by_day) follows the same rule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/standards.h"
#include "rule_int.h"

#define NPOL IW_AQI_NPOLLUTANTS

struct hour_acc {                   /* one pollutant in the open hour */
    double  sum[60];                /* per minute (m-1 min, m] */
    int     n[60];
    int     count;
    int64_t first_ts;
    double  first_v;
};

struct air_x {
    int64_t cur_end;                /* end of the open hour; RT_NONE */
    bool    close_now;              /* a sample stamped at cur_end arrived: close at message end */
    unsigned at_end;                /* 1 << pollutant of the samples stamped at cur_end */
    int64_t last_recv;              /* receipt of the open hour's last sample */
    bool    only_end;               /* every sample of the open hour is stamped at its end */
    bool    hourly;                 /* the last closed hour was an hourly value: the device
                                     * reports hourly, a lone value at the end closes at once */
    bool    minutes;                /* the last closed hour held a sample before its end: a
                                     * minute station, whose lone sample at an hour's end is
                                     * that hour's last minute, not an hourly value */
    struct hour_acc acc[NPOL];
    int64_t last_closed;            /* end of the last closed hour; RT_NONE */
    struct iw_avg hours[NPOL][24];  /* ring of hourly means, slot = hour label % 24 */
    int64_t label[24];
    int64_t day_open;               /* daily: start of the day being filled; RT_NONE */
    int64_t last_day;               /* daily: start of the last closed day; RT_NONE */
    int64_t silent_until;           /* replayed history: periods ending <= this only fill the ring */
    unsigned measured;              /* 1 << pollutant: the device has reported it */
    unsigned declared;              /* 1 << pollutant: the inventory's pollutants: list */
    uint64_t inv_gen;               /* e->cfg_gen of that lookup; 0: none yet */
    unsigned day_measured;          /* daily: the pollutants measured at some hour of the open day */
    unsigned hour_seen;             /* 1 << pollutant: a sample (flagged too) in the open hour */
    int      missing[NPOL];         /* closed hours in a row with samples, none of it */
    /* the last evaluation, for the evidence */
    bool    has_res;
    struct iw_aqi_result res;
    struct iw_avg in_avg[IW_AQI_NITEMS];
    int64_t period_end;
};

static bool air_accepts(const struct rule_rt *rr, const struct iw_rsample *s)
{
    (void)rr;
    return !s->is_event && iw_aqi_pollutant_find(s->metric) >= 0;
}

static bool device_level(const struct rule_rt *rr)
{
    (void)rr;
    return false;
}

static void air_init(struct iw_rules_engine *e, struct inst *in)
{
    struct air_x *x = in->x;
    (void)e;
    x->cur_end = x->last_closed = x->day_open = x->last_day = x->silent_until = RT_NONE;
    for (int i = 0; i < 24; i++)
        x->label[i] = RT_NONE;
}

/*
 * A measured pollutant missing from 24 closed hours in a row in which the
 * station reported others is one it no longer measures: HJ 633's "/" (not
 * monitored), not NA. Otherwise an analyser taken away, or one stray
 * member, would leave every later period NA and the alert unable to clear,
 * for good. Hours in which the station reported nothing do not count (an
 * outage says nothing of its analysers); after a restart, the last 25 hours
 * of the store (prime) are counted again. It is measured again from its
 * next sample.
 */
enum { NOT_MEASURED_AFTER_HOURS = 24 };

/*
 * The pollutants the station monitors. An inventory entry that lists them
 * (`pollutants:`) says it outright: those are always measured, however long
 * an analyser is out, so its days stay NA rather than turning valid without
 * it. Others follow the guess above. Looked up once per config.
 */
static unsigned measured(const struct iw_rules_engine *e, const struct inst *in)
{
    struct air_x *x = in->x;

    if (x->inv_gen != e->cfg_gen) {
        const struct iw_device_cfg *d = iw__inventory(e->cfg, in->source, in->site, in->device);
        x->declared = d != NULL ? d->pollutants : 0;
        x->inv_gen = e->cfg_gen;
    }
    return x->measured | x->declared;
}

static void count_missing(const struct iw_rules_engine *e, struct inst *in)
{
    struct air_x *x = in->x;

    (void)measured(e, in);              /* x->declared for this config */
    if (x->hour_seen == 0)
        return;
    for (int pol = 0; pol < NPOL; pol++) {
        if (x->hour_seen & (1u << pol)) {
            x->missing[pol] = 0;
        } else if ((x->measured & ~x->declared & (1u << pol))
                   && ++x->missing[pol] >= NOT_MEASURED_AFTER_HOURS) {
            x->measured &= ~(1u << pol);
            x->missing[pol] = 0;
            IW_LOG_INFO("rules", "rule \"%s\": %s/%s/%s reported no %s in %d hours of data; "
                        "its AQI leaves it out (not monitored) until it reports it again",
                        in->rr->r->name, in->source, in->site, in->device,
                        iw_aqi_pollutant_info((enum iw_aqi_pollutant)pol)->metric,
                        NOT_MEASURED_AFTER_HOURS);
        }
    }
    x->hour_seen = 0;
}

static size_t slot(int64_t hour_end)
{
    int64_t h = hour_end / IW_MS_PER_HOUR % 24;
    return (size_t)(h < 0 ? h + 24 : h);
}

static struct iw_avg hour_value(const struct air_x *x, int pol, int64_t hour_end)
{
    size_t k = slot(hour_end);
    if (x->label[k] != hour_end)
        return (struct iw_avg){ NAN, 0, false };
    return x->hours[pol][k];
}

/* ==========================================================================
 * Evaluation of a closed period
 * ======================================================================== */

static void set_item(struct air_x *x, struct iw_aqi_input *in, enum iw_aqi_item item, struct iw_avg a)
{
    x->in_avg[item] = a;
    if (a.valid && isfinite(a.value)) {
        in->v[item] = a.value;
        in->present[item] = true;
    }
}

/*
 * SPEC §4 names the result series air/<site>/<device>/aqi, and a daily rule
 * writes there too, unless an hourly air rule covers the same device: both
 * label a value with the end of its period, so at midnight they would
 * replace each other's point. The daily one then goes to aqi_daily.
 */
static bool hourly_rule_covers(const struct iw_rules_engine *e, const struct inst *in)
{
    for (size_t i = 0; i < e->n_rules; i++) {
        const struct rule_rt *rr = &e->rules[i];
        if (rr->r->kind == IW_RULE_AIR_QUALITY
            && iw_rule_params_for(rr->r, in->site)->mode != IW_AQI_DAILY
            && iw__select_device(rr, in->source, in->site, in->device))
            return true;
    }
    return false;
}

static void evaluate(struct iw_rules_engine *e, struct inst *in, const struct iw_aqi_input *ai,
                     unsigned measured, int64_t end, bool late, int64_t wall)
{
    struct air_x *x = in->x;
    const struct iw_rule_params *p = in->p;
    bool daily = p->mode == IW_AQI_DAILY;
    struct iw_aqi_input m = *ai;
    int rc, level;

    m.not_measured = ((1u << NPOL) - 1) & ~measured;
    rc = iw_aqi_compute(p->standard, p->mode, &m, &x->res);

    bool apart = daily && hourly_rule_covers(e, in);
    /* HJ 633-2026 §5.3.1's NA (a measured pollutant missing, the others
     * <= 100), which the air report applies to HJ 633-2012 days too, and
     * this to its hours: the others' AQI is only a lower bound, too low to
     * tell anything. */
    bool na = rc == IW_OK && (x->res.aqi_na || (!x->res.complete && x->res.aqi <= 100));
    if (rc != IW_OK || na) {
        /* No valid average at all, or NA: the period is still
         * reported, as invalid (SPEC §4: marked invalid, flag I), and decides
         * nothing. Its value is the AQI all its averages give, invalid ones
         * included, an indication (an AQI of 0, or the AQI of the clean
         * pollutants alone, would read as 优 when the missing one is high);
         * 0 only when it has none at all. */
        struct iw_aqi_input ind = { .not_measured = m.not_measured };
        struct iw_aqi_result r;
        double aqi = 0, lvl = 0;
        for (int i = 0; i < IW_AQI_NITEMS; i++) {
            if (isfinite(x->in_avg[i].value)) {
                ind.v[i] = x->in_avg[i].value;
                ind.present[i] = true;
            }
        }
        if (iw_aqi_compute(p->standard, p->mode, &ind, &r) == IW_OK && r.aqi >= 0) {
            aqi = r.aqi;
            lvl = r.level;
        }
        if (rc == IW_OK) {
            /* NA: the period has a result (details, state); never below it. */
            x->has_res = true;
            x->period_end = end;
            if (x->res.aqi > aqi) {
                aqi = x->res.aqi;
                lvl = x->res.level;
            }
        }
        iw__write_point(e, in, apart ? "aqi_daily" : "aqi", end, aqi, false);
        iw__write_point(e, in, apart ? "aqi_daily_level" : "aqi_level", end, lvl, false);
        return;
    }
    x->has_res = true;
    x->period_end = end;
    iw__write_point(e, in, apart ? "aqi_daily" : "aqi", end, x->res.aqi, true);
    iw__write_point(e, in, apart ? "aqi_daily_level" : "aqi_level", end, x->res.level, true);
    level = x->res.level;
    /* A clear_level above min_level must not clear a level that still breaches. */
    bool breach = level >= p->min_level, clear = level < p->clear_level && level < p->min_level;
    if (!x->res.complete) {
        /* A measured pollutant's average is invalid (SPEC §4: not used to
         * raise or clear): it is missing, not low, so the others' AQI is a
         * lower bound. It may raise or escalate; it never clears, lowers the
         * severity, or cancels a pending or clearing timer. */
        if (!breach || (in->st == ST_FIRING && p->sev_by_level[level] < in->sev))
            return;
        clear = false;
    }
    iw__drive(e, in, breach, clear, p->sev_by_level[level], end, late, wall);
}

static void evaluate_hour(struct iw_rules_engine *e, struct inst *in, int64_t end, bool late,
                          int64_t wall)
{
    static const enum iw_aqi_item h1[NPOL] = { IW_AQI_SO2_1H, IW_AQI_NO2_1H, IW_AQI_CO_1H,
                                               IW_AQI_O3_1H, IW_AQI_PM10_1H, IW_AQI_PM25_1H };
    struct air_x *x = in->x;
    struct iw_aqi_input ai = { 0 };
    struct iw_avg h24[24], h8[8], a;

    for (int i = 0; i < IW_AQI_NITEMS; i++)
        x->in_avg[i] = (struct iw_avg){ NAN, 0, false };
    for (int pol = 0; pol < NPOL; pol++)
        set_item(x, &ai, h1[pol], hour_value(x, pol, end));
    if (in->p->standard == IW_AQI_HJ633_2012) {
        /* 2012 real-time: O3 8 h moving mean, PM (and SO2 for > 800) 24 h moving means. */
        for (int i = 0; i < 8; i++)
            h8[i] = hour_value(x, IW_AQI_P_O3, end - (7 - i) * IW_MS_PER_HOUR);
        if (iw_avg_8h(h8, &a) == IW_OK)
            set_item(x, &ai, IW_AQI_O3_8H, a);
        static const struct { int pol; enum iw_aqi_item item; } mov[] = {
            { IW_AQI_P_PM10, IW_AQI_PM10_24H }, { IW_AQI_P_PM25, IW_AQI_PM25_24H },
            { IW_AQI_P_SO2, IW_AQI_SO2_24H },
        };
        for (size_t m = 0; m < IW_ARRAY_LEN(mov); m++) {
            for (int i = 0; i < 24; i++)
                h24[i] = hour_value(x, mov[m].pol, end - (23 - i) * IW_MS_PER_HOUR);
            if (iw_avg_24h(h24, &a) == IW_OK)
                set_item(x, &ai, mov[m].item, a);
        }
    }
    evaluate(e, in, &ai, measured(e, in), end, late, wall);
}

static void close_day(struct iw_rules_engine *e, struct inst *in, int64_t day, bool late, int64_t wall)
{
    static const enum iw_aqi_item d24[NPOL] = { IW_AQI_SO2_24H, IW_AQI_NO2_24H, IW_AQI_CO_24H,
                                                IW_AQI_O3_8H, IW_AQI_PM10_24H, IW_AQI_PM25_24H };
    struct air_x *x = in->x;
    struct iw_aqi_input ai = { 0 };
    struct iw_avg h[24], a;
    int64_t end = day + IW_MS_PER_DAY;

    if (x->last_day != RT_NONE && day <= x->last_day)
        return;
    x->last_day = day;
    if (x->day_open == day)
        x->day_open = RT_NONE;
    /* A pollutant measured at any hour of the day is one the day needs: an
     * analyser out all day is missing (NA), though 24 hours without it make
     * it "not monitored" by the day's end (count_missing). */
    unsigned day_needs = measured(e, in) | x->day_measured;
    x->day_measured = 0;
    if (x->silent_until != RT_NONE && end <= x->silent_until)
        return;
    for (int i = 0; i < IW_AQI_NITEMS; i++)
        x->in_avg[i] = (struct iw_avg){ NAN, 0, false };
    for (int pol = 0; pol < NPOL; pol++) {
        for (int i = 0; i < 24; i++)
            h[i] = hour_value(x, pol, day + (i + 1) * IW_MS_PER_HOUR);
        if (pol == IW_AQI_P_O3) {
            if (iw_avg_o3_max8h(h, &a, NULL) == IW_OK)
                set_item(x, &ai, IW_AQI_O3_8H, a);
            if (in->p->standard == IW_AQI_HJ633_2012 && iw_avg_o3_max1h(h, &a, NULL) == IW_OK)
                set_item(x, &ai, IW_AQI_O3_1H, a);
        } else if (iw_avg_24h(h, &a) == IW_OK) {
            set_item(x, &ai, d24[pol], a);
        }
    }
    iw__save(e, in);
    evaluate(e, in, &ai, day_needs, end, late, wall);
}

/* ==========================================================================
 * Hours
 * ======================================================================== */

static struct iw_avg hour_mean(const struct hour_acc *acc, int64_t end, bool hourly)
{
    struct iw_avg_sample s[60];
    struct iw_avg a = { NAN, 0, false };
    size_t n = 0;

    /* A device that reports hourly averages stamps them at the hour's end. */
    if (hourly && acc->count == 1 && acc->first_ts == end)
        return (struct iw_avg){ acc->first_v, 1, true };
    for (int m = 0; m < 60; m++)
        if (acc->n[m] > 0)
            s[n++] = (struct iw_avg_sample){ end - IW_MS_PER_HOUR + (m + 1) * IW_MS_PER_MIN,
                                             acc->sum[m] / acc->n[m], true };
    if (iw_avg_hour(s, n, end, &a) != IW_OK)
        a = (struct iw_avg){ NAN, 0, false };
    return a;
}

/*
 * next_ts: the sample of a later hour that closes this one, RT_NONE when its
 * own last sample or close_after does. A lone sample at the hour's end is an
 * hourly value only in an hour whose every sample is stamped at its end, and
 * when the device reports hourly (x->hourly) or no sample follows it within
 * the hour after: minute samples that start exactly on the hour make a first
 * hour of one minute, invalid (SPEC §4: < 45 minutes), and so does a minute
 * station's pollutant with one valid minute, at the end. A station whose
 * last hour with data held minute samples (x->minutes) is a minute station:
 * one sample at this hour's end is one minute too, though nothing follows it
 * (one back from a silence for one reading). The price: a station changed
 * from minute to hourly values has its first hourly value invalid.
 */
static void close_hour(struct iw_rules_engine *e, struct inst *in, bool late, int64_t wall,
                       int64_t next_ts)
{
    struct air_x *x = in->x;
    int64_t end = x->cur_end;
    size_t k = slot(end);
    int64_t day;

    if (end == RT_NONE)
        return;
    bool hourly = x->only_end && !x->minutes
                  && (x->hourly || next_ts == RT_NONE || next_ts >= end + IW_MS_PER_HOUR);
    for (int pol = 0; pol < NPOL; pol++)
        x->hours[pol][k] = hour_mean(&x->acc[pol], end, hourly);
    x->day_measured |= x->measured;
    count_missing(e, in);
    x->hourly = hourly;
    x->minutes = !x->only_end;
    x->label[k] = end;
    memset(x->acc, 0, sizeof(x->acc));
    x->cur_end = RT_NONE;
    x->close_now = false;
    x->at_end = 0;
    x->last_closed = end;
    if (x->silent_until != RT_NONE && end <= x->silent_until)
        return;
    if (in->p->mode == IW_AQI_HOURLY) {
        iw__save(e, in);
        evaluate_hour(e, in, end, late, wall);
    } else if (iw_local_hour_index(end, in->p->tz_offset_min, &day) == 23) {
        close_day(e, in, day, late, wall);
    }
}

/* Is the hour ending at `end` closed (or passed over: before the open one)? */
static bool hour_closed(const struct air_x *x, int64_t end)
{
    return (x->last_closed != RT_NONE && end <= x->last_closed)
           || (x->cur_end != RT_NONE && end < x->cur_end);
}

/*
 * One sample (valid false: flagged, it only moves time on). False when its
 * hour is already closed (or passed over): the caller decides what becomes of
 * it. The station measures it all the same: later hours wait for it.
 */
static bool feed(struct iw_rules_engine *e, struct inst *in, int pol, int64_t ts, double v,
                 bool valid, bool late, int64_t recv)
{
    struct air_x *x = in->x;
    int tz = in->p->tz_offset_min;
    int64_t end = iw_local_hour_end(ts, tz), day;
    struct hour_acc *acc;
    int m;

    if (end == INT64_MIN) {
        e->st.out_of_order++;           /* no hour holds it */
        return true;
    }
    if (hour_closed(x, end)) {
        x->measured |= 1u << pol;
        return false;
    }
    if (x->cur_end != RT_NONE && end > x->cur_end)
        close_hour(e, in, late, recv, ts);
    if (in->p->mode == IW_AQI_DAILY && iw_local_hour_index(end, tz, &day) >= 0) {
        if (x->day_open != RT_NONE && day > x->day_open)
            close_day(e, in, x->day_open, late, recv);
        if (x->last_day == RT_NONE || day > x->last_day)
            x->day_open = day;
    }
    if (x->cur_end != end)              /* the hour's first sample */
        x->only_end = true;
    if (ts != end)
        x->only_end = false;
    x->cur_end = end;
    x->last_recv = recv;
    x->measured |= 1u << pol;           /* after closing the periods before this sample */
    x->hour_seen |= 1u << pol;
    if (ts == end)
        x->at_end |= 1u << pol;         /* flagged too: the station reported the hour */
    if (!valid)
        return true;
    acc = &x->acc[pol];
    m = (int)((ts - (end - IW_MS_PER_HOUR) + IW_MS_PER_MIN - 1) / IW_MS_PER_MIN) - 1;
    if (m < 0 || m > 59)
        return true;
    acc->sum[m] += v;
    acc->n[m]++;
    if (acc->count++ == 0) {
        acc->first_ts = ts;
        acc->first_v = v;
    }
    /* Its last minute, or an hourly value; a lone first value waits for what
     * follows, unless the station reports minutes (x->minutes: its last one). */
    if (ts == end && (acc->count > 1 || x->hourly || x->minutes))
        x->close_now = true;
    return true;
}

/* ==========================================================================
 * Refill after a restart (or for a new instance) from stored history
 * ======================================================================== */

struct hist {
    int64_t ts;
    double v;
    int pol;
    bool valid;
};

struct hist_vec {
    struct hist *h;
    size_t n, cap;
    int pol;
};

static int hist_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct hist_vec *hv = ctx;
    if (hv->n == hv->cap) {
        size_t cap = hv->cap ? hv->cap * 2 : 256;
        struct hist *h = realloc(hv->h, cap * sizeof(*h));
        if (h == NULL)
            return 1;
        hv->h = h;
        hv->cap = cap;
    }
    hv->h[hv->n++] = (struct hist){ ts, v, hv->pol, !iw__flagged(flag) && isfinite(v) };
    return 0;
}

static int hist_cmp(const void *a, const void *b)
{
    const struct hist *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static void prime(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    struct air_x *x = in->x;
    int64_t end = iw_local_hour_end(s->ts, in->p->tz_offset_min);
    struct hist_vec hv = { 0 };

    int64_t lc = x->last_closed, to = s->ts - 1;
    bool behind;

    if (end == INT64_MIN)
        return;
    /* Periods ending before the current hour were evaluated before (restored: up
     * to the last closed one); replaying them only refills the ring. */
    x->silent_until = in->restored && lc != RT_NONE ? lc : end - IW_MS_PER_HOUR;
    if (!in->restored || lc == RT_NONE)
        x->last_day = RT_NONE;
    /* A first sample of an hour the restored state had closed (a backlog that
     * comes before the live data) is late: the history up to that hour
     * rebuilds the timeline, and the sample goes to rule_late.c. */
    behind = in->restored && lc != RT_NONE && end <= lc;
    if (behind) {
        end = lc;
        to = lc;
    }
    x->last_closed = RT_NONE;
    for (int pol = 0; pol < NPOL; pol++) {
        hv.pol = pol;
        iw__read_points(e, in, iw_aqi_pollutant_info((enum iw_aqi_pollutant)pol)->metric,
                        end - 25 * IW_MS_PER_HOUR + 1, to, hist_cb, &hv);
    }
    if (hv.n > 0)
        iw_sort(hv.h, hv.n, sizeof(*hv.h), hist_cmp);
    for (size_t i = 0; i < hv.n; i++)
        if (!feed(e, in, hv.h[i].pol, hv.h[i].ts, hv.h[i].v, hv.h[i].valid, iw__late(e, s),
                  s->recv_ms))
            e->st.out_of_order++;
    free(hv.h);
    if (behind) {
        if (x->cur_end != RT_NONE && x->cur_end <= lc)
            close_hour(e, in, false, s->recv_ms, RT_NONE);     /* silent: <= silent_until */
        x->last_closed = lc;
    }
}

/* ==========================================================================
 * Kind operations
 * ======================================================================== */

static void air_sample(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s)
{
    int pol = iw_aqi_pollutant_find(s->metric);

    if (pol < 0)
        return;
    if (!in->primed)
        prime(e, in, s);
    in->primed = true;
    /* A sample of a closed hour is judged on its own time by rule_late.c,
     * which replays the store with it (a shadow's replay is in time order). */
    if (!feed(e, in, pol, s->ts, s->value, !iw__flagged(s->flag) && isfinite(s->value),
              iw__late(e, s), s->recv_ms))
        iw__out_of_order(e, in, s, iw__air_judged_to(in));
}

static void air_message_end(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *last)
{
    struct air_x *x = in->x;
    /* A value stamped at the hour's end is its last: close the hour, once
     * every pollutant the station measures has one (an hourly reporter may
     * send a message per pollutant, all stamped at the end); otherwise the
     * next hour's sample or close_after closes it. */
    if (x->close_now && (measured(e, in) & ~x->at_end) == 0) {
        /* last is NULL in a late replay's shadows: the hour's own last sample. */
        int64_t recv = last != NULL ? last->recv_ms : x->last_recv;
        close_hour(e, in, last != NULL ? iw__late(e, last) : iw__late_at(e, x->cur_end, recv),
                   recv, RT_NONE);
    }
    iw__sched(e, in);
}

static int64_t later(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/*
 * When close_after closes a period (an hour, or a day) that ended at `end`:
 * SPEC §4 says close_after of wall-clock time after its end. A backlog being
 * uploaded is not cut short: it also waits IW_UPLOAD_PAUSE_MS after the
 * period's last sample arrived, for the rest of the upload. So a past hour
 * published without its end sample closes seconds after its last sample,
 * and so does a station's first value, alone at the end of a past hour:
 * minute samples of a backlog would come right behind it (a live one still
 * waits close_after after its end, as a minute station's next sample is a
 * minute away).
 */
static int64_t upload_pause(int64_t ca)
{
    return ca < IW_UPLOAD_PAUSE_MS ? ca : IW_UPLOAD_PAUSE_MS;
}

static int64_t close_at(int64_t end, int64_t last_recv, int64_t ca)
{
    return later(end + ca, last_recv + upload_pause(ca));
}

int64_t iw__air_late_due(const struct inst *in, int64_t recv)
{
    return recv + upload_pause(in->p->close_after_ms);
}

static int64_t air_deadline(const struct iw_rules_engine *e, const struct inst *in)
{
    const struct air_x *x = in->x;
    int64_t ca = in->p->close_after_ms, d = RT_NO_DEADLINE;
    (void)e;

    if (x->cur_end != RT_NONE)
        d = close_at(x->cur_end, x->last_recv, ca);
    if (in->p->mode == IW_AQI_DAILY && x->day_open != RT_NONE) {
        int64_t dd = close_at(x->day_open + IW_MS_PER_DAY, x->last_recv, ca);
        if (dd < d)
            d = dd;
    }
    return d;
}

static void air_timer(struct iw_rules_engine *e, struct inst *in, int64_t now)
{
    struct air_x *x = in->x;
    int64_t ca = in->p->close_after_ms;

    int64_t live = e->cfg->alerts.live_window_ms;

    /* The period's data decide lateness (SPEC §1), not when close_after ends
     * it: its last sample came more than live_window after the period's end
     * (a backlog's last hour, as late as the samples in it), or not (a live
     * hour, closed close_after after its end, which may exceed live_window). */
    if (x->cur_end != RT_NONE && close_at(x->cur_end, x->last_recv, ca) <= now)
        close_hour(e, in, x->last_recv - x->cur_end > live, now, RT_NONE);
    if (in->p->mode == IW_AQI_DAILY && x->day_open != RT_NONE
        && close_at(x->day_open + IW_MS_PER_DAY, x->last_recv, ca) <= now)
        close_day(e, in, x->day_open, x->last_recv - (x->day_open + IW_MS_PER_DAY) > live, now);
}

static void air_evidence(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev)
{
    const struct air_x *x = in->x;
    const struct iw_aqi_level_info *li, *min = iw_aqi_level_info(in->p->min_level);
    char prim[96], buf[128], text[384];
    cJSON *o, *iaqi, *conc, *avgs, *arr;
    int64_t len = in->p->mode == IW_AQI_DAILY ? IW_MS_PER_DAY : IW_MS_PER_HOUR;
    (void)e;

    ev->metric = "aqi";
    ev->unit = NULL;
    if (!x->has_res || (li = iw_aqi_level_info(x->res.level)) == NULL)
        return;
    ev->has_value = true;
    ev->value = x->res.aqi;
    ev->has_threshold = min != NULL;
    ev->threshold = min != NULL ? min->aqi_min : 0;
    if (iw_aqi_primary_format(&x->res, prim, sizeof(prim)) != IW_OK)
        prim[0] = '\0';
    cJSON_AddStringToObject(ev->details, "standard", iw_aqi_standard_name(in->p->standard));
    cJSON_AddStringToObject(ev->details, "mode", in->p->mode == IW_AQI_DAILY ? "daily" : "hourly");
    cJSON_AddItemToObject(ev->details, "period_start", iw__json_time(x->period_end - len));
    cJSON_AddItemToObject(ev->details, "period_end", iw__json_time(x->period_end));
    cJSON_AddNumberToObject(ev->details, "aqi", x->res.aqi);
    o = cJSON_AddObjectToObject(ev->details, "level");
    cJSON_AddNumberToObject(o, "num", li->level);
    cJSON_AddStringToObject(o, "name_zh", li->name_zh);
    cJSON_AddStringToObject(o, "zh", li->category_zh);
    cJSON_AddStringToObject(o, "en", li->category_en);
    cJSON_AddStringToObject(o, "colour", li->hex);
    cJSON_AddStringToObject(o, "colour_zh", li->color_zh);
    arr = cJSON_AddArrayToObject(ev->details, "primary");
    iaqi = cJSON_AddObjectToObject(ev->details, "iaqi");
    conc = cJSON_AddObjectToObject(ev->details, "concentrations");
    avgs = cJSON_AddObjectToObject(ev->details, "averages");
    for (int i = 0; i < IW_AQI_NITEMS; i++) {
        const struct iw_aqi_item_info *ii = iw_aqi_item_info((enum iw_aqi_item)i);
        if (x->res.primary & IW_AQI_BIT(i))
            cJSON_AddItemToArray(arr, cJSON_CreateString(ii->primary));
        if (x->res.use[i] == IW_AQI_USE_USED) {
            cJSON_AddNumberToObject(iaqi, ii->name, x->res.iaqi[i]);
            cJSON_AddNumberToObject(conc, ii->name, x->res.conc[i]);
        }
        if (x->in_avg[i].n > 0) {
            cJSON *a = cJSON_AddObjectToObject(avgs, ii->name);
            if (isfinite(x->in_avg[i].value))     /* 0.3, not 0.30000000000000038 */
                cJSON_AddNumberToObject(a, "value", iw__round_sig(x->in_avg[i].value, 10));
            cJSON_AddNumberToObject(a, "n", x->in_avg[i].n);
            cJSON_AddBoolToObject(a, "valid", x->in_avg[i].valid);
        }
    }
    cJSON_AddBoolToObject(ev->details, "complete", x->res.complete);
    snprintf(buf, sizeof(buf), "%d", x->res.aqi);
    iw__ev_var(ev, "aqi", buf);
    snprintf(buf, sizeof(buf), "%d", li->level);
    iw__ev_var(ev, "level", buf);
    iw__ev_var(ev, "level_zh", li->category_zh);
    iw__ev_var(ev, "level_en", li->category_en);
    iw__ev_var(ev, "colour", li->hex);
    /* AQI <= 50 has no primary pollutant (HJ 633): the templates say so, so
     * that "primary pollutant {primary}" does not end in nothing. */
    iw__ev_var(ev, "primary", prim[0] ? prim : "none");
    snprintf(buf, sizeof(buf), "%s%s", prim[0] ? "首要污染物 " : "无首要污染物", prim);
    iw__ev_var(ev, "primary_zh", buf);
    snprintf(text, sizeof(text), "%s AQI %d (level %d, %s)%s%s", in->p->mode == IW_AQI_DAILY ? "daily" : "hourly",
             x->res.aqi, li->level, li->category_en, prim[0] ? ", primary pollutant " : "", prim);
    iw__ev_var(ev, "summary", text);
}

/* ==========================================================================
 * Late samples (rule_late.c replays the store with them, in shadows)
 * ======================================================================== */

int64_t iw__air_judged_to(const struct inst *in)
{
    const struct air_x *x = in->x;
    /* Every hour before the open one was closed, or passed over (no data). */
    return x->cur_end != RT_NONE ? x->cur_end - IW_MS_PER_HOUR : x->last_closed;
}

int64_t iw__air_settle(const struct inst *in, int64_t ts)
{
    int64_t end = iw_local_hour_end(ts, in->p->tz_offset_min), day;

    if (end == INT64_MIN)
        return ts;
    if (in->p->mode == IW_AQI_DAILY && iw_local_hour_index(end, in->p->tz_offset_min, &day) >= 0)
        return day + IW_MS_PER_DAY;
    /* HJ 633-2012's moving means (O3 8 h, PM 24 h) hold an hour for 23 more. */
    return in->p->standard == IW_AQI_HJ633_2012 ? end + 23 * IW_MS_PER_HOUR : end;
}

void iw__air_late_begin(struct inst *sh, const struct inst *live)
{
    /* What the station measures rests on more than the replay's day of data
     * (kept across restarts); the replay's own samples add to it. */
    ((struct air_x *)sh->x)->measured = ((const struct air_x *)live->x)->measured;
}

void iw__air_late_end(struct iw_rules_engine *e, struct inst *sh, int64_t upto, int64_t recv)
{
    struct air_x *x = sh->x;

    /* The live instance closed these on the next hour's sample or its timer. */
    if (x->cur_end != RT_NONE && x->cur_end <= upto)
        close_hour(e, sh, iw__late_at(e, x->cur_end, recv), recv, RT_NONE);
    if (sh->p->mode == IW_AQI_DAILY && x->day_open != RT_NONE
        && x->day_open + IW_MS_PER_DAY <= upto)
        close_day(e, sh, x->day_open, iw__late_at(e, x->day_open + IW_MS_PER_DAY, recv), recv);
}

void iw__air_adopt(struct iw_rules_engine *e, struct inst *live, const struct inst *truth,
                   bool reached, int64_t recv)
{
    struct air_x *x = live->x;
    const struct air_x *t = truth->x;

    /* The truth's hourly means hold the late samples: later periods (the
     * moving means, the day) are computed from them. Its newer hours only;
     * the live ring holds the hours after the replay's end. */
    for (size_t k = 0; k < 24; k++) {
        if (t->label[k] == RT_NONE || (x->label[k] != RT_NONE && t->label[k] < x->label[k]))
            continue;
        x->label[k] = t->label[k];
        for (int pol = 0; pol < NPOL; pol++)
            x->hours[pol][k] = t->hours[pol][k];
    }
    /* An hour (or day) with no data that the late samples filled is closed now. */
    if (t->last_closed != RT_NONE && (x->last_closed == RT_NONE || t->last_closed > x->last_closed)
        && (x->cur_end == RT_NONE || t->last_closed < x->cur_end))
        x->last_closed = t->last_closed;
    if (t->last_day != RT_NONE && (x->last_day == RT_NONE || t->last_day > x->last_day)
        && (x->day_open == RT_NONE || t->last_day < x->day_open))
        x->last_day = t->last_day;
    /* The truth reached the live instance's last period: its judgement there
     * is the one that counts the late data. The live episode's messages show
     * it, and its severity follows it (a severity change at that period). */
    if (reached && t->has_res && (!x->has_res || t->period_end >= x->period_end)) {
        x->has_res = true;
        x->res = t->res;
        memcpy(x->in_avg, t->in_avg, sizeof(x->in_avg));
        x->period_end = t->period_end;
        if (live->st == ST_FIRING && truth->st == ST_FIRING && truth->sev != live->sev)
            iw__escalate(e, live, truth->sev, x->period_end, iw__late_at(e, x->period_end, recv),
                         recv);
    }
    iw__save(e, live);
}

static const char *air_metric_at(const struct inst *in, size_t i)
{
    (void)in;
    /* A late replay reads every pollutant: an hour's validity and AQI are the station's. */
    return i < NPOL ? iw_aqi_pollutant_info((enum iw_aqi_pollutant)i)->metric : NULL;
}

static void air_save(const struct inst *in, cJSON *o)
{
    const struct air_x *x = in->x;
    if (x->last_closed != RT_NONE)
        cJSON_AddNumberToObject(o, "lc", (double)x->last_closed);
    if (x->last_day != RT_NONE)
        cJSON_AddNumberToObject(o, "ld", (double)x->last_day);
    if (x->measured != 0)
        cJSON_AddNumberToObject(o, "pm", x->measured);
}

static void air_load(struct iw_rules_engine *e, struct inst *in, const cJSON *o)
{
    struct air_x *x = in->x;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "lc");
    (void)e;
    x->last_closed = cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
    j = cJSON_GetObjectItemCaseSensitive(o, "ld");
    x->last_day = cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
    j = cJSON_GetObjectItemCaseSensitive(o, "pm");
    if (cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble < (double)(1u << NPOL))
        x->measured = (unsigned)j->valuedouble;
}

static bool air_keep(const struct inst *in)
{
    return ((const struct air_x *)in->x)->last_closed != RT_NONE;
}

const struct kind_ops iw__air_ops = {
    .x_size = sizeof(struct air_x),
    .per_metric = device_level,
    .accepts = air_accepts,
    .sample = air_sample,
    .message_end = air_message_end,
    .deadline = air_deadline,
    .timer = air_timer,
    .evidence = air_evidence,
    .save = air_save,
    .load = air_load,
    .init = air_init,
    .keep = air_keep,
    .metric_at = air_metric_at,
};
