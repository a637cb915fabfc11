/* SPDX-License-Identifier: Apache-2.0 */
/*
 * std_avg — the averages the standards evaluate and their validity minimums
 * (GB 3095-2026 Table 4 [P]; HJ 663-2013 conventions, partly [U]).
 *
 * Periods follow one convention throughout: a period is labelled by its
 * end and covers (end − length, end]. That is the standards' hourly value
 * (HJ 663: "the hour ending at the on-the-hour time"), and applying the same
 * rule to minutes and days keeps a sample at exactly 10:00:00.000 in the
 * hour labelled 10:00 and the hour labelled 00:00 in the previous day.
 *
 * Pure functions over caller arrays; no allocation; thread-safe.
 */
#include <math.h>

#include "islewatch/clock.h"
#include "islewatch/standards.h"

#define MINUTES_PER_HOUR 60

static bool hour_usable(const struct iw_avg *h)
{
    return h->valid && isfinite(h->value);
}

/* Mean of the usable hours among n; valid with at least min_valid of them. */
static struct iw_avg mean_hours(const struct iw_avg *h, int n, int min_valid)
{
    struct iw_avg r = { .value = NAN, .n = 0, .valid = false };
    double sum = 0;

    for (int i = 0; i < n; i++) {
        if (!hour_usable(&h[i]))
            continue;
        sum += h[i].value;
        r.n++;
    }
    if (r.n > 0)
        r.value = sum / r.n;
    r.valid = r.n >= min_valid;
    return r;
}

int iw_avg_hour(const struct iw_avg_sample *s, size_t n, int64_t hour_end_ms,
                struct iw_avg *out)
{
    double sum[MINUTES_PER_HOUR] = { 0 };
    int count[MINUTES_PER_HOUR] = { 0 };

    if (out == NULL || (s == NULL && n > 0) || hour_end_ms < INT64_MIN + IW_MS_PER_HOUR)
        return IW_E_INVAL;
    int64_t start = hour_end_ms - IW_MS_PER_HOUR;

    for (size_t i = 0; i < n; i++) {
        if (!s[i].valid || !isfinite(s[i].value) || s[i].ts_ms <= start ||
            s[i].ts_ms > hour_end_ms)
            continue;
        /* Minute m covers (start + m min, start + (m+1) min]. */
        int m = (int)((s[i].ts_ms - start - 1) / IW_MS_PER_MIN);
        sum[m] += s[i].value;
        count[m]++;
    }

    double total = 0;
    *out = (struct iw_avg){ .value = NAN, .n = 0, .valid = false };
    for (int m = 0; m < MINUTES_PER_HOUR; m++) {
        if (count[m] == 0)
            continue;
        total += sum[m] / count[m];
        out->n++;
    }
    if (out->n > 0)
        out->value = total / out->n;
    out->valid = out->n >= IW_AVG_MIN_MINUTES;
    return IW_OK;
}

int iw_avg_24h(const struct iw_avg hours[24], struct iw_avg *out)
{
    if (hours == NULL || out == NULL)
        return IW_E_INVAL;
    *out = mean_hours(hours, 24, IW_AVG_MIN_HOURS_24H);
    return IW_OK;
}

int iw_avg_8h(const struct iw_avg hours[8], struct iw_avg *out)
{
    if (hours == NULL || out == NULL)
        return IW_E_INVAL;
    *out = mean_hours(hours, 8, IW_AVG_MIN_HOURS_8H);
    return IW_OK;
}

/*
 * max > IW_AVG_O3_8H_LIMIT at 1e-6 resolution, so that an 8 h mean of
 * decimal values that is 160 in decimal (160.00000000000003 in doubles) does
 * not count as exceeding.
 */
static bool exceeds_o3_limit(double max)
{
    if (max >= 1e9)
        return true;
    return llround(max * 1e6) > llround(IW_AVG_O3_8H_LIMIT * 1e6);
}

int iw_avg_o3_max8h(const struct iw_avg hours[24], struct iw_avg *out, int *end_hour)
{
    int best = -1;

    if (hours == NULL || out == NULL)
        return IW_E_INVAL;
    *out = (struct iw_avg){ .value = NAN, .n = 0, .valid = false };

    /* Windows ending 08:00 .. 24:00 are hours 0-7 .. 16-23: all inside the day. */
    for (int end = 7; end < 24; end++) {
        struct iw_avg w = mean_hours(hours + end - 7, 8, IW_AVG_MIN_HOURS_8H);

        if (!w.valid)
            continue;
        out->n++;
        if (best < 0 || w.value > out->value) {
            out->value = w.value;
            best = end;
        }
    }
    out->valid = out->n >= IW_AVG_MIN_8H_PER_DAY || (out->n > 0 && exceeds_o3_limit(out->value));
    if (end_hour != NULL)
        *end_hour = best;
    return IW_OK;
}

int iw_avg_o3_max1h(const struct iw_avg hours[24], struct iw_avg *out, int *end_hour)
{
    int best = -1;

    if (hours == NULL || out == NULL)
        return IW_E_INVAL;
    *out = (struct iw_avg){ .value = NAN, .n = 0, .valid = false };
    for (int h = 0; h < 24; h++) {
        if (!hour_usable(&hours[h]))
            continue;
        out->n++;
        if (best < 0 || hours[h].value > out->value) {
            out->value = hours[h].value;
            best = h;
        }
    }
    out->valid = out->n >= IW_AVG_MIN_HOURS_24H;
    if (end_hour != NULL)
        *end_hour = best;
    return IW_OK;
}

/* ---- local time ------------------------------------------------------- */

static bool offset_ok(int tz_offset_min)
{
    return tz_offset_min > -1440 && tz_offset_min < 1440;
}

/* ts shifted to local time; false when it would overflow. */
static bool to_local(int64_t ts_ms, int tz_offset_min, int64_t *local)
{
    return offset_ok(tz_offset_min) &&
           !__builtin_add_overflow(ts_ms, (int64_t)tz_offset_min * IW_MS_PER_MIN, local) &&
           *local > INT64_MIN + IW_MS_PER_DAY && *local < INT64_MAX - IW_MS_PER_DAY;
}

int64_t iw_local_day_start(int64_t ts_ms, int tz_offset_min)
{
    int64_t local;

    if (!to_local(ts_ms, tz_offset_min, &local))
        return INT64_MIN;
    return iw_floor_to(local, IW_MS_PER_DAY) - (int64_t)tz_offset_min * IW_MS_PER_MIN;
}

int64_t iw_local_hour_end(int64_t ts_ms, int tz_offset_min)
{
    int64_t local;

    if (!to_local(ts_ms, tz_offset_min, &local))
        return INT64_MIN;
    /* The hour (H − 1 h, H] holds local, so H is local rounded up to the hour. */
    return iw_floor_to(local - 1, IW_MS_PER_HOUR) + IW_MS_PER_HOUR -
           (int64_t)tz_offset_min * IW_MS_PER_MIN;
}

int iw_local_hour_index(int64_t hour_end_ms, int tz_offset_min, int64_t *day_start_ms)
{
    int64_t local;

    if (!to_local(hour_end_ms, tz_offset_min, &local) ||
        iw_floor_to(local, IW_MS_PER_HOUR) != local)
        return IW_E_INVAL;
    /* The day is (00:00, 24:00]: the hour labelled 00:00 closes the previous day. */
    int64_t day = iw_floor_to(local - 1, IW_MS_PER_DAY);
    if (day_start_ms != NULL)
        *day_start_ms = day - (int64_t)tz_offset_min * IW_MS_PER_MIN;
    return (int)((local - day) / IW_MS_PER_HOUR) - 1;
}
