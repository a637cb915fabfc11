/*
 * HJ 633-2012 / HJ 633-2026 sub-indices and AQI, table-driven from
 * shared/standards/README.md §2 (the breakpoints below are typed from the
 * README, not taken from the implementation).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/standards.h"

#define Y12 IW_AQI_HJ633_2012
#define Y26 IW_AQI_HJ633_2026

static const int IAQI[8] = { 0, 50, 100, 150, 200, 300, 400, 500 };

/* One breakpoint column of README §2.1; tenths == 1 marks CO (mg/m³, 1 decimal in 2026). */
struct col {
    enum iw_aqi_standard std;
    enum iw_aqi_item item;
    int n;
    int bp[8];
    int co;
};

static const struct col cols[] = {
    { Y12, IW_AQI_SO2_24H,  8, { 0, 50, 150, 475, 800, 1600, 2100, 2620 }, 0 },
    { Y12, IW_AQI_SO2_1H,   5, { 0, 150, 500, 650, 800 }, 0 },
    { Y12, IW_AQI_NO2_24H,  8, { 0, 40, 80, 180, 280, 565, 750, 940 }, 0 },
    { Y12, IW_AQI_NO2_1H,   8, { 0, 100, 200, 700, 1200, 2340, 3090, 3840 }, 0 },
    { Y12, IW_AQI_PM10_24H, 8, { 0, 50, 150, 250, 350, 420, 500, 600 }, 0 },
    { Y12, IW_AQI_CO_24H,   8, { 0, 2, 4, 14, 24, 36, 48, 60 }, 1 },
    { Y12, IW_AQI_CO_1H,    8, { 0, 5, 10, 35, 60, 90, 120, 150 }, 1 },
    { Y12, IW_AQI_O3_1H,    8, { 0, 160, 200, 300, 400, 800, 1000, 1200 }, 0 },
    { Y12, IW_AQI_O3_8H,    6, { 0, 100, 160, 215, 265, 800 }, 0 },
    { Y12, IW_AQI_PM25_24H, 8, { 0, 35, 75, 115, 150, 250, 350, 500 }, 0 },

    { Y26, IW_AQI_SO2_24H,  8, { 0, 50, 150, 475, 800, 1600, 2100, 2620 }, 0 },
    { Y26, IW_AQI_SO2_1H,   5, { 0, 150, 500, 650, 800 }, 0 },
    { Y26, IW_AQI_NO2_24H,  8, { 0, 40, 80, 180, 280, 565, 750, 940 }, 0 },
    { Y26, IW_AQI_NO2_1H,   8, { 0, 100, 200, 700, 1200, 2340, 3090, 3840 }, 0 },
    { Y26, IW_AQI_PM10_24H, 8, { 0, 50, 120, 250, 350, 420, 500, 600 }, 0 },
    { Y26, IW_AQI_PM10_1H,  8, { 0, 50, 120, 250, 350, 420, 500, 600 }, 0 },
    { Y26, IW_AQI_CO_24H,   8, { 0, 2, 4, 14, 24, 36, 48, 60 }, 1 },
    { Y26, IW_AQI_CO_1H,    8, { 0, 5, 10, 35, 60, 90, 120, 150 }, 1 },
    { Y26, IW_AQI_O3_1H,    8, { 0, 160, 200, 300, 400, 800, 1000, 1200 }, 0 },
    { Y26, IW_AQI_O3_8H,    6, { 0, 100, 160, 215, 265, 800 }, 0 },
    { Y26, IW_AQI_PM25_24H, 8, { 0, 35, 60, 115, 150, 250, 350, 500 }, 0 },
    { Y26, IW_AQI_PM25_1H,  8, { 0, 35, 60, 115, 150, 250, 350, 500 }, 0 },
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static const char *iname(enum iw_aqi_item i)
{
    return iw_aqi_item_info(i)->name;
}

static const char *sname(enum iw_aqi_standard s)
{
    return iw_aqi_standard_name(s);
}

/* Concentration from decimal text, the way values arrive. */
static double dec(long units, long frac, int frac_digits)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s%ld.%0*ld", units < 0 || frac < 0 ? "-" : "", labs(units),
             frac_digits, labs(frac));
    return strtod(buf, NULL);
}

static int iaqi_or(enum iw_aqi_standard std, enum iw_aqi_item item, double c, int *rc)
{
    int v = -1;
    *rc = iw_aqi_iaqi(std, item, c, &v);
    return v;
}

/* Ceiling of a / b for a >= 0, b > 0. */
static long long ceil_div(long long a, long long b)
{
    return (a + b - 1) / b;
}

/* ---- every breakpoint, at, just above, just below -------------------- */

Test(aqi_breakpoints, exactly_at_each_breakpoint)
{
    for (size_t t = 0; t < NCOLS; t++) {
        const struct col *c = &cols[t];
        for (int k = 0; k < c->n; k++) {
            int rc, v = iaqi_or(c->std, c->item, c->bp[k], &rc);
            cr_expect_eq(rc, IW_OK, "%s %s at %d: rc %d", sname(c->std), iname(c->item),
                         c->bp[k], rc);
            cr_expect_eq(v, IAQI[k], "%s %s at %d: IAQI %d, want %d", sname(c->std),
                         iname(c->item), c->bp[k], v, IAQI[k]);
        }
    }
}

/* The special rows above the last breakpoint of SO2 1 h and O3 8 h. */
static void expect_above_top(const struct col *c, double conc, const char *what)
{
    int rc, v = iaqi_or(c->std, c->item, conc, &rc);
    if (c->item == IW_AQI_SO2_1H || c->item == IW_AQI_O3_8H) {
        if (c->std == Y12) {
            cr_expect_eq(rc, IW_E_NOTFOUND, "%s %s %s top: 2012 defines no sub-index (rc %d)",
                         sname(c->std), iname(c->item), what, rc);
        } else {
            int want = c->item == IW_AQI_SO2_1H ? 200 : 300;
            cr_expect_eq(rc, IW_OK);
            cr_expect_eq(v, want, "%s %s %s top: %d, want %d", sname(c->std), iname(c->item),
                         what, v, want);
        }
        return;
    }
    cr_expect_eq(rc, IW_OK);
    cr_expect_eq(v, 500, "%s %s %s top: clamped to 500, got %d", sname(c->std), iname(c->item),
                 what, v);
}

Test(aqi_breakpoints, just_above_and_below_2012)
{
    /* 0.001 unit: far below one IAQI step on every segment (steepest: CO 24 h, 25/mg). */
    for (size_t t = 0; t < NCOLS; t++) {
        const struct col *c = &cols[t];
        if (c->std != Y12)
            continue;
        for (int k = 0; k < c->n; k++) {
            double above = dec(c->bp[k], 1, 3), below = dec(c->bp[k] - 1, 999, 3);
            int rc, v;
            if (k < c->n - 1) {
                v = iaqi_or(c->std, c->item, above, &rc);
                cr_expect_eq(v, IAQI[k] + 1, "2012 %s %.3f: %d, want %d", iname(c->item), above,
                             v, IAQI[k] + 1);
            } else {
                expect_above_top(c, above, "0.001 above");
            }
            if (k > 0) {
                v = iaqi_or(c->std, c->item, below, &rc);
                cr_expect_eq(v, IAQI[k], "2012 %s %.3f: %d, want %d", iname(c->item), below, v,
                             IAQI[k]);
            }
        }
    }
}

Test(aqi_breakpoints, just_above_and_below_2026)
{
    /* One rounding unit (1, CO 0.1), and 0.4 unit that rounds back to the breakpoint. */
    for (size_t t = 0; t < NCOLS; t++) {
        const struct col *c = &cols[t];
        if (c->std != Y26)
            continue;
        long step10 = c->co ? 1 : 10;           /* one unit, in tenths */
        for (int k = 0; k < c->n; k++) {
            long bp10 = c->bp[k] * 10L;
            double above = dec((bp10 + step10) / 10, (bp10 + step10) % 10, 1);
            double below = dec((bp10 - step10) / 10, (bp10 - step10) % 10, 1);
            double near_up = c->co ? dec(c->bp[k], 4, 2) : dec(c->bp[k], 4, 1);
            double near_dn = c->co ? dec(c->bp[k] - 1, 96, 2) : dec(c->bp[k] - 1, 6, 1);
            int rc, v;

            if (k < c->n - 1) {
                long long want = IAQI[k] + ceil_div((IAQI[k + 1] - IAQI[k]) * step10,
                                                    (c->bp[k + 1] - c->bp[k]) * 10LL);
                v = iaqi_or(c->std, c->item, above, &rc);
                cr_expect_eq(v, want, "2026 %s %g: %d, want %lld", iname(c->item), above, v, want);
            } else {
                expect_above_top(c, above, "one unit above");
            }
            v = iaqi_or(c->std, c->item, near_up, &rc);
            cr_expect_eq(v, IAQI[k], "2026 %s %g rounds to %d: %d, want %d", iname(c->item),
                         near_up, c->bp[k], v, IAQI[k]);
            if (k > 0) {
                /* ceil(I_k - slope * step) = I_k - floor(slope * step) */
                long long want = IAQI[k] - ((IAQI[k] - IAQI[k - 1]) * step10) /
                                               ((c->bp[k] - c->bp[k - 1]) * 10LL);
                v = iaqi_or(c->std, c->item, below, &rc);
                cr_expect_eq(v, want, "2026 %s %g: %d, want %lld", iname(c->item), below, v, want);
                v = iaqi_or(c->std, c->item, near_dn, &rc);
                cr_expect_eq(v, IAQI[k], "2026 %s %g rounds to %d: %d, want %d", iname(c->item),
                             near_dn, c->bp[k], v, IAQI[k]);
            }
        }
    }
}

/*
 * Every concentration from 0 to the top breakpoint in steps of 0.01 (CO
 * 0.001), from decimal text, against the exact rational ceiling: the
 * floating-point trap (CO 2.2 -> 56) would show up as a mismatch here.
 */
Test(aqi_breakpoints, exact_sweep_2012)
{
    for (size_t t = 0; t < NCOLS; t++) {
        const struct col *c = &cols[t];
        if (c->std != Y12)
            continue;
        int digits = c->co ? 3 : 2;
        long per_unit = c->co ? 1000 : 100;
        long top = c->bp[c->n - 1] * per_unit;
        int mismatches = 0;
        for (long x = 0; x <= top; x++) {
            int seg = 1;
            while (c->bp[seg] * per_unit < x)
                seg++;
            long long bl = c->bp[seg - 1] * per_unit, bh = c->bp[seg] * per_unit;
            long long want = IAQI[seg - 1] +
                             ceil_div((long long)(IAQI[seg] - IAQI[seg - 1]) * (x - bl), bh - bl);
            double conc = dec(x / per_unit, x % per_unit, digits);
            int rc, v = iaqi_or(c->std, c->item, conc, &rc);
            if (v != want && mismatches++ < 5)
                cr_expect_eq(v, want, "2012 %s %.*f: %d, want %lld", iname(c->item), digits,
                             conc, v, want);
        }
        cr_expect_eq(mismatches, 0, "2012 %s: %d mismatches", iname(c->item), mismatches);
    }
}

/*
 * 2026: every value from 0 to just past the top in steps of 0.1 (CO 0.01),
 * rounded half to even to whole units (CO 0.1) by the test, then the exact
 * rational ceiling on the rounded value.
 */
Test(aqi_breakpoints, exact_sweep_2026)
{
    for (size_t t = 0; t < NCOLS; t++) {
        const struct col *c = &cols[t];
        if (c->std != Y26)
            continue;
        long per_unit = c->co ? 100 : 10;      /* sweep resolution */
        long round_to = 10;                    /* one rounding unit in sweep steps */
        long per_bp = c->co ? 10 : 1;          /* rounding units per breakpoint unit */
        long top = c->bp[c->n - 1] * per_unit;
        int mismatches = 0;
        for (long x = 0; x <= top; x++) {
            long q = x / round_to, r = x % round_to;
            if (2 * r > round_to || (2 * r == round_to && (q & 1)))
                q++;                            /* q: rounded, in rounding units */
            int seg = 1;
            while (seg < c->n - 1 && c->bp[seg] * per_bp < q)
                seg++;
            long long want;
            if (q > c->bp[c->n - 1] * per_bp)
                want = -1;                      /* past the top: covered elsewhere */
            else {
                long long bl = c->bp[seg - 1] * per_bp, bh = c->bp[seg] * per_bp;
                want = IAQI[seg - 1] +
                       ceil_div((long long)(IAQI[seg] - IAQI[seg - 1]) * (q - bl), bh - bl);
            }
            if (want < 0)
                continue;
            double conc = dec(x / per_unit, x % per_unit, c->co ? 2 : 1);
            int rc, v = iaqi_or(c->std, c->item, conc, &rc);
            if (v != want && mismatches++ < 5)
                cr_expect_eq(v, want, "2026 %s %g: %d, want %lld", iname(c->item), conc, v, want);
        }
        cr_expect_eq(mismatches, 0, "2026 %s: %d mismatches", iname(c->item), mismatches);
    }
}

Test(aqi_breakpoints, co_2_2_is_55_not_56)
{
    int v = -1;
    cr_assert_eq(iw_aqi_iaqi(Y12, IW_AQI_CO_24H, 2.2, &v), IW_OK);
    cr_expect_eq(v, 55);
    cr_assert_eq(iw_aqi_iaqi(Y26, IW_AQI_CO_24H, 2.2, &v), IW_OK);
    cr_expect_eq(v, 55);
    /* PM2.5 2012 mean that is 35 in decimal but not in binary */
    double mean = (34.9 + 35.1) / 2;
    cr_assert_eq(iw_aqi_iaqi(Y12, IW_AQI_PM25_24H, mean, &v), IW_OK);
    cr_expect_eq(v, 50, "mean %.17g", mean);
}

Test(aqi_breakpoints, clamped_at_500_above_the_top)
{
    static const struct { enum iw_aqi_standard s; enum iw_aqi_item i; double c; } cases[] = {
        { Y12, IW_AQI_PM25_24H, 501 }, { Y26, IW_AQI_PM25_24H, 501 },
        { Y12, IW_AQI_PM25_24H, 1e6 }, { Y26, IW_AQI_PM10_1H, 99999 },
        { Y12, IW_AQI_NO2_1H, 3841 }, { Y26, IW_AQI_CO_1H, 150.1 },
        { Y12, IW_AQI_O3_1H, 1e300 }, { Y26, IW_AQI_SO2_24H, 2621 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int v = -1;
        cr_expect_eq(iw_aqi_iaqi(cases[k].s, cases[k].i, cases[k].c, &v), IW_OK);
        cr_expect_eq(v, 500, "%s %s %g: %d", sname(cases[k].s), iname(cases[k].i), cases[k].c, v);
    }
}

/* ---- over-800 rules ----------------------------------------------------- */

Test(aqi_over_800, single_item)
{
    int v = -1;
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_SO2_1H, 800, &v), IW_OK);
    cr_expect_eq(v, 200);
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_SO2_1H, 800.001, &v), IW_E_NOTFOUND);
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_SO2_1H, 5000, &v), IW_E_NOTFOUND);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_SO2_1H, 801, &v), IW_OK);
    cr_expect_eq(v, 200);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_SO2_1H, 5000, &v), IW_OK);
    cr_expect_eq(v, 200);
    /* 2026 rounds first: 800.4 is 800 (table row), 800.5 is 800 (half to even) */
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_SO2_1H, 800.5, &v), IW_OK);
    cr_expect_eq(v, 200);

    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_O3_8H, 800, &v), IW_OK);
    cr_expect_eq(v, 300);
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_O3_8H, 801, &v), IW_E_NOTFOUND);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_O3_8H, 801, &v), IW_OK);
    cr_expect_eq(v, 300);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_O3_8H, 1e9, &v), IW_OK);
    cr_expect_eq(v, 300);
    /* the other averages go on to 500 */
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_SO2_24H, 900, &v), IW_OK);
    cr_expect_eq(v, 213);   /* 200 + 100 * 100 / 800 = 212.5 */
}

static struct iw_aqi_input input(void)
{
    struct iw_aqi_input in;
    memset(&in, 0, sizeof(in));
    return in;
}

static void put(struct iw_aqi_input *in, enum iw_aqi_item i, double v)
{
    in->v[i] = v;
    in->present[i] = true;
}

Test(aqi_over_800, so2_2012_hourly_reports_the_24h_subindex)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_SO2_1H, 900);
    put(&in, IW_AQI_SO2_24H, 100);     /* 50 + 50 * 50 / 100 = 75 */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_SO2_1H], IW_AQI_USE_REPLACED);
    cr_expect_eq(r.iaqi[IW_AQI_SO2_1H], -1);
    cr_expect_eq(r.use[IW_AQI_SO2_24H], IW_AQI_USE_USED);
    cr_expect_eq(r.iaqi[IW_AQI_SO2_24H], 75);
    cr_expect_eq(r.aqi, 75);
    cr_expect_eq(r.primary, IW_AQI_BIT(IW_AQI_SO2_24H));
    cr_expect_eq(r.conc[IW_AQI_SO2_1H], 900);

    /* below 800 the 24 h value is not an input of the real-time report */
    in.v[IW_AQI_SO2_1H] = 700;         /* 150 + 50 * 50 / 150 = 166.7 */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_SO2_24H], IW_AQI_USE_IGNORED);
    cr_expect_eq(r.iaqi[IW_AQI_SO2_1H], 167);
    cr_expect_eq(r.aqi, 167);

    /* without the 24 h value SO2 cannot be reported */
    in = input();
    put(&in, IW_AQI_SO2_1H, 900);
    cr_expect_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_E_EMPTY);
    cr_expect_eq(r.use[IW_AQI_SO2_1H], IW_AQI_USE_REPLACED);
    cr_expect_eq(r.aqi, -1);
    cr_expect_eq(r.level, 0);
    cr_expect_not(r.complete);
}

Test(aqi_over_800, so2_2026_hourly_counts_200)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_SO2_1H, 900);
    put(&in, IW_AQI_SO2_24H, 100);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_SO2_1H], IW_AQI_USE_USED);
    cr_expect_eq(r.iaqi[IW_AQI_SO2_1H], 200);
    cr_expect_eq(r.use[IW_AQI_SO2_24H], IW_AQI_USE_IGNORED);
    cr_expect_eq(r.aqi, 200);
    cr_expect_eq(r.level, 4);
}

Test(aqi_over_800, o3_8h_2012_reports_the_1h_subindex)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_O3_8H, 900);
    put(&in, IW_AQI_O3_1H, 500);       /* 200 + 100 * 100 / 400 = 225 */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_O3_8H], IW_AQI_USE_REPLACED);
    cr_expect_eq(r.iaqi[IW_AQI_O3_1H], 225);
    cr_expect_eq(r.aqi, 225);
    cr_expect_eq(r.primary, IW_AQI_BIT(IW_AQI_O3_1H));
    char buf[32];
    cr_assert_eq(iw_aqi_primary_format(&r, buf, sizeof(buf)), IW_OK);
    cr_expect_str_eq(buf, "O3_1h");

    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_O3_8H], IW_AQI_USE_REPLACED);
    cr_expect_eq(r.aqi, 225);
}

Test(aqi_over_800, o3_8h_2026_daily_counts_300)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_O3_8H, 900);
    put(&in, IW_AQI_O3_1H, 500);       /* not an input of the 2026 daily report */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.iaqi[IW_AQI_O3_8H], 300);
    cr_expect_eq(r.use[IW_AQI_O3_1H], IW_AQI_USE_IGNORED);
    cr_expect_eq(r.aqi, 300);
    cr_expect_eq(r.level, 5);
    char buf[32];
    cr_assert_eq(iw_aqi_primary_format(&r, buf, sizeof(buf)), IW_OK);
    cr_expect_str_eq(buf, "O3_8h");
}

/* ---- 2026 rounding (GB/T 8170, half to even) ------------------------------ */

Test(aqi_rounding, half_to_even_2026)
{
    static const struct { enum iw_aqi_item i; const char *text; double want; } cases[] = {
        { IW_AQI_PM25_24H, "35.5", 36 }, { IW_AQI_PM25_24H, "34.5", 34 },
        { IW_AQI_PM25_24H, "36.5", 36 }, { IW_AQI_PM25_24H, "35.49", 35 },
        { IW_AQI_PM25_24H, "35.51", 36 }, { IW_AQI_PM25_24H, "0.5", 0 },
        { IW_AQI_PM25_24H, "1.5", 2 }, { IW_AQI_PM10_1H, "120.5", 120 },
        { IW_AQI_PM10_1H, "121.5", 122 }, { IW_AQI_SO2_1H, "800.5", 800 },
        { IW_AQI_CO_24H, "2.25", 2.2 }, { IW_AQI_CO_24H, "2.35", 2.4 },
        { IW_AQI_CO_24H, "2.45", 2.4 }, { IW_AQI_CO_24H, "2.55", 2.6 },
        { IW_AQI_CO_1H, "2.05", 2.0 }, { IW_AQI_CO_1H, "2.15", 2.2 },
        { IW_AQI_CO_1H, "0.05", 0.0 }, { IW_AQI_CO_1H, "2.249", 2.2 },
        { IW_AQI_NO2_24H, "-3", 0 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        double out = -1;
        cr_assert_eq(iw_aqi_round_conc(Y26, cases[k].i, strtod(cases[k].text, NULL), &out), IW_OK);
        cr_expect_eq(out, cases[k].want, "%s %s -> %.17g, want %g", iname(cases[k].i),
                     cases[k].text, out, cases[k].want);
    }
    /* 2012 keeps the value (to 1e-6) */
    double out = -1;
    cr_assert_eq(iw_aqi_round_conc(Y12, IW_AQI_PM25_24H, 35.5, &out), IW_OK);
    cr_expect_eq(out, 35.5);
    cr_assert_eq(iw_aqi_round_conc(Y12, IW_AQI_PM25_24H, (34.9 + 35.1) / 2, &out), IW_OK);
    cr_expect_eq(out, 35.0);
}

Test(aqi_rounding, rounding_changes_the_subindex)
{
    static const struct { enum iw_aqi_standard s; enum iw_aqi_item i; double c; int want; } cases[] = {
        { Y26, IW_AQI_PM25_24H, 35.5, 52 },    /* -> 36: 50 + 40 * 1 / 25 = 52 */
        { Y12, IW_AQI_PM25_24H, 35.5, 51 },    /* 50 + 50 * 0.5 / 40 = 50.6 */
        { Y26, IW_AQI_PM25_24H, 34.5, 49 },    /* -> 34: 50 * 34 / 35 = 48.6 */
        { Y12, IW_AQI_PM25_24H, 34.5, 50 },    /* 49.3 */
        { Y26, IW_AQI_CO_24H, 2.25, 55 },      /* -> 2.2 */
        { Y26, IW_AQI_CO_24H, 2.45, 60 },      /* -> 2.4 */
        { Y12, IW_AQI_CO_24H, 2.45, 62 },      /* 61.25 */
        { Y26, IW_AQI_PM10_24H, 50.4, 50 },
        { Y26, IW_AQI_PM10_24H, 121, 101 },    /* 100 + 50 * 1 / 130 */
        { Y12, IW_AQI_PM10_24H, 121, 86 },     /* 50 + 50 * 71 / 100 = 85.5 */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int v = -1;
        cr_assert_eq(iw_aqi_iaqi(cases[k].s, cases[k].i, cases[k].c, &v), IW_OK);
        cr_expect_eq(v, cases[k].want, "%s %s %g: %d, want %d", sname(cases[k].s),
                     iname(cases[k].i), cases[k].c, v, cases[k].want);
    }
}

/* ---- levels ------------------------------------------------------------ */

Test(aqi_levels, boundaries)
{
    static const int cases[][2] = {
        { 0, 1 }, { 1, 1 }, { 50, 1 }, { 51, 2 }, { 100, 2 }, { 101, 3 }, { 150, 3 },
        { 151, 4 }, { 200, 4 }, { 201, 5 }, { 300, 5 }, { 301, 6 }, { 500, 6 }, { 999, 6 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        cr_expect_eq(iw_aqi_level(cases[k][0]), cases[k][1], "AQI %d", cases[k][0]);
    cr_expect_eq(iw_aqi_level(-1), IW_E_INVAL);
}

Test(aqi_levels, names_and_colours)
{
    static const struct iw_aqi_level_info want[6] = {
        { 1, 0, 50, "一级", "优", "Excellent", "绿色", "green", "#00E400", { 0, 228, 0 } },
        { 2, 51, 100, "二级", "良", "Good", "黄色", "yellow", "#FFFF00", { 255, 255, 0 } },
        { 3, 101, 150, "三级", "轻度污染", "Lightly polluted", "橙色", "orange", "#FF7E00",
          { 255, 126, 0 } },
        { 4, 151, 200, "四级", "中度污染", "Moderately polluted", "红色", "red", "#FF0000",
          { 255, 0, 0 } },
        { 5, 201, 300, "五级", "重度污染", "Heavily polluted", "紫色", "purple", "#99004C",
          { 153, 0, 76 } },
        { 6, 301, -1, "六级", "严重污染", "Severely polluted", "褐红色", "maroon", "#7E0023",
          { 126, 0, 35 } },
    };
    for (int l = 1; l <= 6; l++) {
        const struct iw_aqi_level_info *g = iw_aqi_level_info(l), *w = &want[l - 1];
        cr_assert_not_null(g);
        cr_expect_eq(g->level, l);
        cr_expect_eq(g->aqi_min, w->aqi_min);
        cr_expect_eq(g->aqi_max, w->aqi_max);
        cr_expect_str_eq(g->name_zh, w->name_zh);
        cr_expect_str_eq(g->category_zh, w->category_zh);
        cr_expect_str_eq(g->category_en, w->category_en);
        cr_expect_str_eq(g->color_zh, w->color_zh);
        cr_expect_str_eq(g->color_en, w->color_en);
        cr_expect_str_eq(g->hex, w->hex);
        cr_expect_arr_eq(g->rgb, w->rgb, 3, "level %d rgb", l);
        /* the level of each range's ends is the level itself */
        cr_expect_eq(iw_aqi_level(w->aqi_min), l);
        if (w->aqi_max > 0)
            cr_expect_eq(iw_aqi_level(w->aqi_max), l);
    }
    cr_expect_null(iw_aqi_level_info(0));
    cr_expect_null(iw_aqi_level_info(7));
}

/* ---- AQI, primary pollutant, report inputs --------------------------------- */

Test(aqi_compute, exactly_50_has_no_primary)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_PM10_24H, 50);
    put(&in, IW_AQI_PM25_24H, 35);
    put(&in, IW_AQI_SO2_24H, 10);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 50);
    cr_expect_eq(r.level, 1);
    cr_expect_eq(r.primary, 0u);
    char buf[8] = "x";
    cr_assert_eq(iw_aqi_primary_format(&r, buf, sizeof(buf)), IW_OK);
    cr_expect_str_eq(buf, "");

    in.v[IW_AQI_PM25_24H] = 35.6;      /* 2026: -> 36 -> 52 */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 52);
    cr_expect_eq(r.level, 2);
    cr_expect_eq(r.primary, IW_AQI_BIT(IW_AQI_PM25_24H));
}

Test(aqi_compute, ties_are_all_primary)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    char buf[64];
    put(&in, IW_AQI_PM10_24H, 120);    /* 2026: 100 */
    put(&in, IW_AQI_PM25_24H, 60);     /* 2026: 100 */
    put(&in, IW_AQI_NO2_24H, 80);      /* 100 */
    put(&in, IW_AQI_CO_24H, 1);        /* 25 */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 100);
    cr_expect_eq(r.primary, IW_AQI_BIT(IW_AQI_NO2_24H) | IW_AQI_BIT(IW_AQI_PM10_24H) |
                                IW_AQI_BIT(IW_AQI_PM25_24H));
    cr_assert_eq(iw_aqi_primary_format(&r, buf, sizeof(buf)), IW_OK);
    cr_expect_str_eq(buf, "NO2,PM10,PM2.5");
    cr_expect_eq(r.nonattain, 0u);

    /* 2012: the same values give PM10 75 and PM2.5 75: only NO2 is primary */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.iaqi[IW_AQI_PM10_24H], 85);   /* 50 + 50 * 70 / 100 */
    cr_expect_eq(r.iaqi[IW_AQI_PM25_24H], 82);   /* 50 + 50 * 25 / 40 = 81.25 */
    cr_expect_eq(r.primary, IW_AQI_BIT(IW_AQI_NO2_24H));
    cr_assert_eq(iw_aqi_primary_format(&r, buf, sizeof(buf)), IW_OK);
    cr_expect_str_eq(buf, "NO2");

    /* a buffer too small is reported, still terminated */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    char tiny[6];
    cr_expect_eq(iw_aqi_primary_format(&r, tiny, sizeof(tiny)), IW_E_FULL);
    cr_expect_lt(strlen(tiny), sizeof(tiny));
}

Test(aqi_compute, o3_1h_and_8h_tie_in_2012_hourly)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    char buf[64];
    put(&in, IW_AQI_O3_1H, 200);       /* 100 */
    put(&in, IW_AQI_O3_8H, 160);       /* 100 */
    put(&in, IW_AQI_PM25_24H, 75);     /* 2012: 100 */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 100);
    cr_assert_eq(iw_aqi_primary_format(&r, buf, sizeof(buf)), IW_OK);
    cr_expect_str_eq(buf, "O3_1h,O3_8h,PM2.5");
}

Test(aqi_compute, nonattainment_2012_only)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_PM25_24H, 76);     /* 2012: 102 */
    put(&in, IW_AQI_PM10_24H, 150);    /* 2012: 100, not over */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.nonattain, IW_AQI_BIT(IW_AQI_PM25_24H));
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.nonattain, 0u);
}

/* README §2.4: which items feed which report. */
Test(aqi_compute, report_inputs_per_version_and_mode)
{
    static const struct {
        enum iw_aqi_standard s;
        enum iw_aqi_mode m;
        unsigned used;
    } cases[] = {
        { Y12, IW_AQI_HOURLY,
          IW_AQI_BIT(IW_AQI_SO2_1H) | IW_AQI_BIT(IW_AQI_NO2_1H) | IW_AQI_BIT(IW_AQI_CO_1H) |
              IW_AQI_BIT(IW_AQI_O3_1H) | IW_AQI_BIT(IW_AQI_O3_8H) | IW_AQI_BIT(IW_AQI_PM10_24H) |
              IW_AQI_BIT(IW_AQI_PM25_24H) },
        { Y26, IW_AQI_HOURLY,
          IW_AQI_BIT(IW_AQI_SO2_1H) | IW_AQI_BIT(IW_AQI_NO2_1H) | IW_AQI_BIT(IW_AQI_CO_1H) |
              IW_AQI_BIT(IW_AQI_O3_1H) | IW_AQI_BIT(IW_AQI_PM10_1H) | IW_AQI_BIT(IW_AQI_PM25_1H) },
        { Y12, IW_AQI_DAILY,
          IW_AQI_BIT(IW_AQI_SO2_24H) | IW_AQI_BIT(IW_AQI_NO2_24H) | IW_AQI_BIT(IW_AQI_CO_24H) |
              IW_AQI_BIT(IW_AQI_PM10_24H) | IW_AQI_BIT(IW_AQI_PM25_24H) |
              IW_AQI_BIT(IW_AQI_O3_1H) | IW_AQI_BIT(IW_AQI_O3_8H) },
        { Y26, IW_AQI_DAILY,
          IW_AQI_BIT(IW_AQI_SO2_24H) | IW_AQI_BIT(IW_AQI_NO2_24H) | IW_AQI_BIT(IW_AQI_CO_24H) |
              IW_AQI_BIT(IW_AQI_PM10_24H) | IW_AQI_BIT(IW_AQI_PM25_24H) |
              IW_AQI_BIT(IW_AQI_O3_8H) },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct iw_aqi_input in = input();
        struct iw_aqi_result r;
        for (int i = 0; i < IW_AQI_NITEMS; i++)
            put(&in, (enum iw_aqi_item)i, 10);
        cr_assert_eq(iw_aqi_compute(cases[k].s, cases[k].m, &in, &r), IW_OK);
        unsigned used = 0;
        for (int i = 0; i < IW_AQI_NITEMS; i++) {
            if (r.use[i] == IW_AQI_USE_USED)
                used |= IW_AQI_BIT(i);
            else
                cr_expect_eq(r.use[i], IW_AQI_USE_IGNORED, "%s item %s", sname(cases[k].s),
                             iname((enum iw_aqi_item)i));
            cr_expect_eq(r.iaqi[i] >= 0, r.use[i] == IW_AQI_USE_USED);
        }
        cr_expect_eq(used, cases[k].used, "%s mode %d: used %#x, want %#x", sname(cases[k].s),
                     cases[k].m, used, cases[k].used);
        cr_expect(r.complete);
        cr_expect_not(r.aqi_na);
        unsigned want_inputs = cases[k].used;
        if (cases[k].s == Y12 && cases[k].m == IW_AQI_HOURLY)
            want_inputs |= IW_AQI_BIT(IW_AQI_SO2_24H);   /* the over-800 replacement */
        cr_expect_eq(iw_aqi_inputs(cases[k].s, cases[k].m), want_inputs);
    }
    cr_expect_eq(iw_aqi_inputs((enum iw_aqi_standard)7, IW_AQI_DAILY), 0u);
}

Test(aqi_compute, pm_1h_in_2012_has_no_subindex)
{
    int v;
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_PM25_1H, 50, &v), IW_E_NOTFOUND);
    cr_expect_eq(iw_aqi_iaqi(Y12, IW_AQI_PM10_1H, 50, &v), IW_E_NOTFOUND);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_PM25_1H, 60, &v), IW_OK);
    cr_expect_eq(v, 100);
}

Test(aqi_compute, missing_data_2026)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_PM25_1H, 40);      /* 50 + 50 * 5 / 25 = 60 */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 60);
    cr_expect_not(r.complete);
    cr_expect(r.aqi_na, "incomplete and <= 100: published as NA");

    in.v[IW_AQI_PM25_1H] = 116;        /* 150 + 50 * 1 / 35 -> 152 */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 152);
    cr_expect_not(r.aqi_na, "incomplete but > 100: published");

    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_E_EMPTY);
    cr_expect_eq(r.use[IW_AQI_PM25_1H], IW_AQI_USE_IGNORED);
}

#define PBIT(p) (1u << (unsigned)IW_AQI_P_##p)

/*
 * HJ 633-2026 tables: "/" for a pollutant the station does not monitor, NA
 * for a missing measurement. Only the latter makes an AQI <= 100 NA.
 */
Test(aqi_compute, pollutants_not_measured_are_not_missing_2026)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    put(&in, IW_AQI_PM25_1H, 30);      /* 50 * 30 / 35 = 42.9 -> 43 */
    put(&in, IW_AQI_PM10_1H, 20);      /* 20 */
    in.not_measured = PBIT(SO2) | PBIT(NO2) | PBIT(CO) | PBIT(O3);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 43);
    cr_expect_eq(r.level, 1);
    cr_expect(r.complete, "a PM-only station measured all it measures");
    cr_expect_not(r.aqi_na, "a pollutant not measured is '/', not missing");
    cr_expect_eq(r.use[IW_AQI_O3_1H], IW_AQI_USE_ABSENT);

    /* PM10 is measured but has no valid hour: missing data, §5.3.1 applies. */
    in.present[IW_AQI_PM10_1H] = false;
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 43);
    cr_expect_not(r.complete);
    cr_expect(r.aqi_na);

    /* ... and so is a measured pollutant whose value is present but invalid. */
    put(&in, IW_AQI_PM10_1H, NAN);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_PM10_1H], IW_AQI_USE_INVALID);
    cr_expect(r.aqi_na);

    /* Missing data above 100 is still published. */
    in.v[IW_AQI_PM25_1H] = 100;        /* 100 + 50 * 40 / 55 = 136.4 -> 137 */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.aqi, 137);
    cr_expect_not(r.aqi_na);

    /* A value is used even when the caller marked its pollutant not measured. */
    in = input();
    put(&in, IW_AQI_NO2_1H, 150);      /* 50 + 50 * 50 / 100 = 75 */
    in.not_measured = PBIT(SO2) | PBIT(NO2) | PBIT(CO) | PBIT(O3) | PBIT(PM10) | PBIT(PM25);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_NO2_1H], IW_AQI_USE_USED);
    cr_expect_eq(r.aqi, 75);
    cr_expect(r.complete);
    cr_expect_not(r.aqi_na);
}

Test(aqi_compute, not_measured_covers_every_average_of_the_pollutant)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;

    /* 2026 daily: no O3 analyser, so no O3 daily max 8 h either. */
    put(&in, IW_AQI_SO2_24H, 10);
    put(&in, IW_AQI_NO2_24H, 20);
    put(&in, IW_AQI_CO_24H, 0.5);
    put(&in, IW_AQI_PM10_24H, 40);
    put(&in, IW_AQI_PM25_24H, 20);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect(r.aqi_na, "O3 monitored by default: its 8 h value is missing");
    in.not_measured = PBIT(O3);
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect(r.complete);
    cr_expect_not(r.aqi_na);

    /* 2012 hourly: O3 feeds two inputs (1 h and 8 h moving), PM the 24 h moving means. */
    in = input();
    put(&in, IW_AQI_PM10_24H, 40);
    put(&in, IW_AQI_PM25_24H, 20);
    in.not_measured = PBIT(SO2) | PBIT(NO2) | PBIT(CO) | PBIT(O3);
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect(r.complete);
    in.not_measured = PBIT(SO2) | PBIT(NO2) | PBIT(CO);
    put(&in, IW_AQI_O3_1H, 100);       /* the 8 h moving mean is not valid yet */
    cr_assert_eq(iw_aqi_compute(Y12, IW_AQI_HOURLY, &in, &r), IW_OK);
    cr_expect_not(r.complete);
    cr_expect_not(r.aqi_na, "NA is HJ 633-2026's rule only");
}

Test(aqi_compute, bad_values_and_arguments)
{
    struct iw_aqi_input in = input();
    struct iw_aqi_result r;
    int v;
    put(&in, IW_AQI_PM25_24H, NAN);
    put(&in, IW_AQI_PM10_24H, -5);     /* zero drift counts as 0 */
    cr_assert_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_OK);
    cr_expect_eq(r.use[IW_AQI_PM25_24H], IW_AQI_USE_INVALID);
    cr_expect_eq(r.iaqi[IW_AQI_PM10_24H], 0);
    cr_expect_eq(r.aqi, 0);
    cr_expect_eq(r.level, 1);
    cr_expect_not(r.complete);

    in = input();
    put(&in, IW_AQI_CO_24H, INFINITY);
    cr_expect_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, &r), IW_E_EMPTY);
    cr_expect_eq(iw_aqi_compute(Y26, (enum iw_aqi_mode)9, &in, &r), IW_E_INVAL);
    cr_expect_eq(iw_aqi_compute((enum iw_aqi_standard)9, IW_AQI_DAILY, &in, &r), IW_E_INVAL);
    cr_expect_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, NULL, &r), IW_E_INVAL);
    cr_expect_eq(iw_aqi_compute(Y26, IW_AQI_DAILY, &in, NULL), IW_E_INVAL);

    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_CO_1H, NAN, &v), IW_E_INVAL);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_NITEMS, 1, &v), IW_E_INVAL);
    cr_expect_eq(iw_aqi_iaqi((enum iw_aqi_standard)-1, IW_AQI_CO_1H, 1, &v), IW_E_INVAL);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_CO_1H, 1, NULL), IW_E_INVAL);
    cr_expect_eq(iw_aqi_iaqi(Y26, IW_AQI_CO_1H, -1, &v), IW_OK);
    cr_expect_eq(v, 0);
    cr_expect_eq(iw_aqi_primary_format(NULL, (char[4]){ 0 }, 4), IW_E_INVAL);
}

/* ---- names --------------------------------------------------------------- */

Test(aqi_names, pollutants_and_items)
{
    static const char *metrics[] = { "so2", "no2", "co", "o3", "pm10", "pm25" };
    static const char *names[] = { "SO2", "NO2", "CO", "O3", "PM10", "PM2.5" };
    for (int p = 0; p < IW_AQI_NPOLLUTANTS; p++) {
        cr_expect_eq(iw_aqi_pollutant_find(metrics[p]), p, "%s", metrics[p]);
        cr_expect_str_eq(iw_aqi_pollutant_info((enum iw_aqi_pollutant)p)->name, names[p]);
        cr_expect_str_eq(iw_aqi_pollutant_info((enum iw_aqi_pollutant)p)->unit,
                         p == IW_AQI_P_CO ? "mg/m³" : "μg/m³");
    }
    cr_expect_eq(iw_aqi_pollutant_find("pm2.5"), -1);
    cr_expect_eq(iw_aqi_pollutant_find(NULL), -1);
    cr_expect_null(iw_aqi_pollutant_info(IW_AQI_NPOLLUTANTS));
    cr_expect_null(iw_aqi_item_info(IW_AQI_NITEMS));

    cr_expect_eq(iw_aqi_item_info(IW_AQI_O3_8H)->pollutant, IW_AQI_P_O3);
    cr_expect_eq(iw_aqi_item_info(IW_AQI_O3_8H)->hours, 8);
    cr_expect_str_eq(iw_aqi_item_info(IW_AQI_O3_8H)->primary, "O3_8h");
    cr_expect_eq(iw_aqi_item_info(IW_AQI_PM25_24H)->hours, 24);
    cr_expect_str_eq(iw_aqi_item_info(IW_AQI_PM25_24H)->name, "PM2.5_24h");
    cr_expect_str_eq(iw_aqi_item_info(IW_AQI_PM25_1H)->primary, "PM2.5");
    cr_expect_str_eq(iw_aqi_standard_name(Y26), "HJ633-2026");
    cr_expect_str_eq(iw_aqi_standard_name(Y12), "HJ633-2012");
}
