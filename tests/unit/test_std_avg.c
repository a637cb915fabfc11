/*
 * Averages and data validity (GB 3095-2026 Table 4, HJ 663-2013 as quoted in
 * shared/standards/README.md §3.3-3.4), and local-day arithmetic.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/standards.h"

#define MIN  IW_MS_PER_MIN
#define HOUR IW_MS_PER_HOUR
#define DAY  IW_MS_PER_DAY

static int64_t t(const char *rfc3339)
{
    int64_t ms = 0;
    cr_assert_eq(iw_rfc3339_parse(rfc3339, strlen(rfc3339), &ms), IW_OK, "%s", rfc3339);
    return ms;
}

/* ---- hourly mean from minute samples ------------------------------------------ */

/* n one-per-minute samples stamped at the ends of the hour's first n minutes. */
static size_t minute_samples(struct iw_avg_sample *s, int n, int64_t hour_end, double v)
{
    for (int m = 0; m < n; m++)
        s[m] = (struct iw_avg_sample){ hour_end - HOUR + (m + 1) * MIN, v, true };
    return (size_t)n;
}

Test(avg_hour, validity_44_vs_45_minutes)
{
    struct iw_avg_sample s[60];
    struct iw_avg a;
    int64_t h = t("2026-11-29T10:00:00Z");

    cr_assert_eq(iw_avg_hour(s, minute_samples(s, 44, h, 1.5), h, &a), IW_OK);
    cr_expect_eq(a.n, 44);
    cr_expect_not(a.valid);
    cr_expect_eq(a.value, 1.5, "the mean is still reported");

    cr_assert_eq(iw_avg_hour(s, minute_samples(s, 45, h, 1.5), h, &a), IW_OK);
    cr_expect_eq(a.n, 45);
    cr_expect(a.valid);

    cr_assert_eq(iw_avg_hour(s, minute_samples(s, 60, h, 1.5), h, &a), IW_OK);
    cr_expect_eq(a.n, 60);
    cr_expect(a.valid);
}

Test(avg_hour, window_is_open_at_the_start_and_closed_at_the_end)
{
    int64_t h = t("2026-11-29T10:00:00Z");
    struct iw_avg_sample s[] = {
        { h - HOUR, 100, true },        /* 09:00:00.000 belongs to the hour before */
        { h - HOUR + 1, 1, true },      /* 09:00:00.001: first minute */
        { h, 3, true },                 /* 10:00:00.000: last minute */
        { h + 1, 100, true },           /* the next hour */
    };
    struct iw_avg a;
    cr_assert_eq(iw_avg_hour(s, 4, h, &a), IW_OK);
    cr_expect_eq(a.n, 2);
    cr_expect_eq(a.value, 2);
}

Test(avg_hour, minutes_are_counted_once_and_invalid_samples_skipped)
{
    int64_t h = t("2026-11-29T10:00:00Z");
    struct iw_avg_sample s[200];
    size_t n = minute_samples(s, 44, h, 2.0);
    /* three more samples in minute 1: the minute still counts once, its mean is 2 */
    for (int i = 0; i < 3; i++)
        s[n++] = (struct iw_avg_sample){ h - HOUR + 10 * 1000 * (i + 1), 2.0, true };
    /* a flagged and a NaN sample in otherwise empty minutes do not make minutes */
    s[n++] = (struct iw_avg_sample){ h - 30 * 1000, 99, false };
    s[n++] = (struct iw_avg_sample){ h - 90 * 1000, NAN, true };
    struct iw_avg a;
    cr_assert_eq(iw_avg_hour(s, n, h, &a), IW_OK);
    cr_expect_eq(a.n, 44);
    cr_expect_not(a.valid);
    cr_expect_eq(a.value, 2.0);

    /* a chatty minute weighs as one minute: 45 minutes at 1, one of them also has 10 x 7 */
    n = minute_samples(s, 45, h, 1.0);
    for (int i = 0; i < 10; i++)
        s[n++] = (struct iw_avg_sample){ h - HOUR + 1000 * (i + 1), 7.0, true };
    cr_assert_eq(iw_avg_hour(s, n, h, &a), IW_OK);
    cr_expect_eq(a.n, 45);
    cr_expect(a.valid);
    /* minute 0 mean = (1 + 70) / 11; the others 1 */
    cr_expect_float_eq(a.value, (71.0 / 11 + 44) / 45, 1e-12);
}

Test(avg_hour, empty_and_bad_arguments)
{
    struct iw_avg a;
    cr_assert_eq(iw_avg_hour(NULL, 0, 0, &a), IW_OK);
    cr_expect_eq(a.n, 0);
    cr_expect(isnan(a.value));
    cr_expect_not(a.valid);
    cr_expect_eq(iw_avg_hour(NULL, 3, 0, &a), IW_E_INVAL);
    cr_expect_eq(iw_avg_hour(NULL, 0, 0, NULL), IW_E_INVAL);
    cr_expect_eq(iw_avg_hour(NULL, 0, INT64_MIN, &a), IW_E_INVAL);
}

/* ---- 24 h, 8 h ------------------------------------------------------------------ */

static void fill(struct iw_avg *h, int n, double v)
{
    for (int i = 0; i < n; i++)
        h[i] = (struct iw_avg){ .value = v, .n = 60, .valid = true };
}

Test(avg_24h, validity_19_vs_20_hours)
{
    struct iw_avg h[24], a;
    fill(h, 24, 40);
    for (int i = 0; i < 5; i++)
        h[i * 4].valid = false;         /* 19 valid */
    h[0].value = 1000;                  /* an invalid hour's value is not used */
    cr_assert_eq(iw_avg_24h(h, &a), IW_OK);
    cr_expect_eq(a.n, 19);
    cr_expect_not(a.valid);
    cr_expect_eq(a.value, 40);

    h[4].valid = true;                  /* 20 valid */
    h[4].value = 60;
    cr_assert_eq(iw_avg_24h(h, &a), IW_OK);
    cr_expect_eq(a.n, 20);
    cr_expect(a.valid);
    cr_expect_float_eq(a.value, (19 * 40 + 60) / 20.0, 1e-12);

    h[5].value = NAN;                   /* "valid" but not finite: counts as missing */
    cr_assert_eq(iw_avg_24h(h, &a), IW_OK);
    cr_expect_eq(a.n, 19);
    cr_expect_not(a.valid);
    cr_expect_eq(iw_avg_24h(NULL, &a), IW_E_INVAL);
    cr_expect_eq(iw_avg_24h(h, NULL), IW_E_INVAL);
}

Test(avg_8h, validity_5_vs_6_hours)
{
    struct iw_avg h[8], a;
    fill(h, 8, 100);
    h[0].valid = h[1].valid = h[2].valid = false;
    cr_assert_eq(iw_avg_8h(h, &a), IW_OK);
    cr_expect_eq(a.n, 5);
    cr_expect_not(a.valid);
    h[2].valid = true;
    h[2].value = 160;
    cr_assert_eq(iw_avg_8h(h, &a), IW_OK);
    cr_expect_eq(a.n, 6);
    cr_expect(a.valid);
    cr_expect_eq(a.value, 110);
    cr_expect_eq(iw_avg_8h(NULL, &a), IW_E_INVAL);
}

/* ---- O3 daily maxima ---------------------------------------------------------------- */

/* A day of hours at v with the given hours (0 = ending 01:00) invalid. */
static void day_with_gaps(struct iw_avg *h, double v, const int *gaps, int n)
{
    fill(h, 24, v);
    for (int i = 0; i < n; i++)
        h[gaps[i]].valid = false;
}

Test(avg_o3_max8h, all_windows_and_the_maximum)
{
    struct iw_avg h[24], a;
    int end = -2;
    fill(h, 24, 50);
    h[13].value = 50 + 8 * 30;          /* raises every window containing hour 13 by 30 */
    h[14].value = 50 + 8 * 10;          /* and those containing 14 by 10 */
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, IW_AVG_8H_PER_DAY);
    cr_expect(a.valid);
    cr_expect_float_eq(a.value, 90, 1e-12);
    cr_expect_eq(end, 14, "first window holding both hours ends at 15:00 (index 14)");
    cr_expect_eq(iw_avg_o3_max8h(h, NULL, &end), IW_E_INVAL);
    cr_expect_eq(iw_avg_o3_max8h(h, &a, NULL), IW_OK, "end_hour is optional");
}

Test(avg_o3_max8h, windows_stay_inside_the_day)
{
    struct iw_avg h[24], a;
    int end;
    /* only the first 8 hours valid: just the window ending 08:00 */
    fill(h, 24, 70);
    for (int i = 8; i < 24; i++)
        h[i].valid = false;
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 3, "windows ending 08:00, 09:00 and 10:00 have >= 6 valid hours");
    cr_expect_eq(end, 7);
}

Test(avg_o3_max8h, validity_14_valid_means_or_over_the_limit)
{
    struct iw_avg h[24], a;
    int end;
    /* Three invalid hours a < b < c spoil the windows ending c .. a + 7. */
    static const int gaps14[] = { 9, 12, 14 };  /* windows ending 14..16 invalid: 14 valid */
    static const int gaps13[] = { 9, 11, 13 };  /* windows ending 13..16 invalid: 13 valid */

    day_with_gaps(h, 100, gaps14, 3);
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 14);
    cr_expect(a.valid);

    day_with_gaps(h, 100, gaps13, 3);
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 13);
    cr_expect_not(a.valid, "13 means, max 100 <= 160");

    day_with_gaps(h, 170, gaps13, 3);
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 13);
    cr_expect(a.valid, "13 means but the max already exceeds 160 [U]");

    day_with_gaps(h, 160, gaps13, 3);
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_not(a.valid, "160 is the limit, not above it");

    /*
     * Only hours 5..10 valid: the windows ending 10, 11 and 12 (n = 3) all hold
     * exactly these six hours, whose mean is 160 in decimal and
     * 160.00000000000003 in binary.
     */
    static const double six[] = { 159.9, 160.3, 160.1, 159.8, 159.7, 160.2 };
    fill(h, 24, 0);
    for (int i = 0; i < 24; i++)
        h[i].valid = i >= 5 && i <= 10;
    for (int i = 0; i < 6; i++)
        h[5 + i].value = six[i];
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 3);
    cr_expect_neq(a.value, 160.0, "premise: %.17g is not 160 in binary", a.value);
    cr_expect_float_eq(a.value, 160, 1e-9);
    cr_expect_not(a.valid, "max %.17g counts as 160", a.value);

    h[5].value += 6e-6;                 /* mean 160.000001 */
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect(a.valid, "max %.17g is above 160 at 1e-6", a.value);
}

Test(avg_o3_max8h, no_valid_window)
{
    struct iw_avg h[24], a;
    int end = 5;
    fill(h, 24, 100);
    for (int i = 0; i < 24; i += 2)
        h[i].valid = false;             /* every window has 4 valid hours */
    cr_assert_eq(iw_avg_o3_max8h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 0);
    cr_expect_not(a.valid);
    cr_expect(isnan(a.value));
    cr_expect_eq(end, -1);
}

Test(avg_o3_max1h, maximum_and_validity)
{
    struct iw_avg h[24], a;
    int end;
    fill(h, 24, 80);
    h[15].value = 210;
    h[16].value = 250;
    h[16].valid = false;                /* an invalid hour is not the maximum */
    for (int i = 0; i < 4; i++)
        h[i].valid = false;             /* 19 valid */
    cr_assert_eq(iw_avg_o3_max1h(h, &a, &end), IW_OK);
    cr_expect_eq(a.value, 210);
    cr_expect_eq(end, 15);
    cr_expect_eq(a.n, 19);
    cr_expect_not(a.valid);
    h[0].valid = true;
    cr_assert_eq(iw_avg_o3_max1h(h, &a, &end), IW_OK);
    cr_expect_eq(a.n, 20);
    cr_expect(a.valid);
}

/* ---- local time --------------------------------------------------------------------- */

Test(local_time, day_start_shanghai)
{
    static const struct { const char *ts; const char *start; } cases[] = {
        { "2026-11-29T00:00:00+08:00", "2026-11-29T00:00:00+08:00" },
        { "2026-11-29T23:59:59.999+08:00", "2026-11-29T00:00:00+08:00" },
        { "2026-11-29T15:59:59.999Z", "2026-11-28T16:00:00Z" },
        { "2026-11-29T16:00:00Z", "2026-11-29T16:00:00Z" },
        { "2026-11-29T08:00:00Z", "2026-11-28T16:00:00Z" },
        { "1969-12-31T20:00:00Z", "1969-12-31T16:00:00Z" },   /* before the epoch */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        cr_expect_eq(iw_local_day_start(t(cases[k].ts), 480), t(cases[k].start), "%s",
                     cases[k].ts);
}

Test(local_time, day_start_other_offsets)
{
    cr_expect_eq(iw_local_day_start(t("2026-03-01T04:59:59Z"), -300), t("2026-02-28T05:00:00Z"));
    cr_expect_eq(iw_local_day_start(t("2026-03-01T05:00:00Z"), -300), t("2026-03-01T05:00:00Z"));
    cr_expect_eq(iw_local_day_start(t("2026-03-01T18:29:59Z"), 330), t("2026-02-28T18:30:00Z"));
    cr_expect_eq(iw_local_day_start(t("2026-03-01T12:00:00Z"), 0), t("2026-03-01T00:00:00Z"));
    cr_expect_eq(iw_local_day_start(INT64_MAX, 480), INT64_MIN);
    cr_expect_eq(iw_local_day_start(0, 1440), INT64_MIN);
}

Test(local_time, hour_end_label)
{
    cr_expect_eq(iw_local_hour_end(t("2026-11-29T10:00:00Z"), 480), t("2026-11-29T10:00:00Z"));
    cr_expect_eq(iw_local_hour_end(t("2026-11-29T10:00:00.001Z"), 480), t("2026-11-29T11:00:00Z"));
    cr_expect_eq(iw_local_hour_end(t("2026-11-29T09:00:00.001Z"), 480), t("2026-11-29T10:00:00Z"));
    /* half-hour offsets: local hours end at :30 UTC */
    cr_expect_eq(iw_local_hour_end(t("2026-11-29T10:00:00Z"), 330), t("2026-11-29T10:30:00Z"));
    cr_expect_eq(iw_local_hour_end(t("2026-11-29T10:30:00Z"), 330), t("2026-11-29T10:30:00Z"));
    cr_expect_eq(iw_local_hour_end(t("1969-12-31T23:59:59Z"), 0), 0);
}

Test(local_time, hour_index_midnight_closes_the_previous_day)
{
    int64_t day = 0;
    /* the hour labelled 00:00 local is hour 24 of the previous day */
    cr_expect_eq(iw_local_hour_index(t("2026-11-30T00:00:00+08:00"), 480, &day), 23);
    cr_expect_eq(day, t("2026-11-29T00:00:00+08:00"));
    cr_expect_eq(iw_local_hour_index(t("2026-11-29T01:00:00+08:00"), 480, &day), 0);
    cr_expect_eq(day, t("2026-11-29T00:00:00+08:00"));
    cr_expect_eq(iw_local_hour_index(t("2026-11-29T08:00:00+08:00"), 480, NULL), 7);
    cr_expect_eq(iw_local_hour_index(t("2026-11-29T16:00:00Z"), 480, &day), 23);
    cr_expect_eq(day, t("2026-11-28T16:00:00Z"));
    cr_expect_eq(iw_local_hour_index(t("2026-11-29T16:00:00Z"), 0, &day), 15);
    cr_expect_eq(day, t("2026-11-29T00:00:00Z"));

    cr_expect_eq(iw_local_hour_index(t("2026-11-29T10:30:00Z"), 480, &day), IW_E_INVAL);
    cr_expect_eq(iw_local_hour_index(t("2026-11-29T10:30:00Z"), 330, &day), 15);  /* 16:00 IST */
    cr_expect_eq(iw_local_hour_index(0, 1440, &day), IW_E_INVAL);
    cr_expect_eq(iw_local_hour_index(0, -1440, &day), IW_E_INVAL);

    /* every hour of a day maps back to that day in order */
    int64_t start = t("2026-11-29T00:00:00+08:00");
    for (int i = 0; i < 24; i++) {
        cr_expect_eq(iw_local_hour_index(start + (i + 1) * HOUR, 480, &day), i);
        cr_expect_eq(day, start);
    }
}
