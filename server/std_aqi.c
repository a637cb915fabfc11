/* SPDX-License-Identifier: Apache-2.0 */
/*
 * std_aqi — air quality sub-indices and AQI after HJ 633-2012 and
 * HJ 633-2026 (both [P] in shared/standards/README.md §2).
 *
 * Exactness: the standard's ceiling ("全部进位取整数") turns any floating
 * error above an integer into a wrong sub-index (CO 24 h 2.2 mg/m³ gives
 * 55.000000000000014 in doubles, 56 after the ceiling; the answer is 55).
 * So a concentration is first taken to an integer number of 1e-6 units
 * (llround(c * 1e6): concentrations arrive as decimal text with a few
 * decimals, and the nearest micro-unit is the decimal the sender wrote), the
 * breakpoints are integers, and the interpolation is an integer ceiling
 * division. For HJ 633-2026 the micro-unit value is then rounded half to
 * even (GB/T 8170) to whole units, CO to 0.1 mg/m³, as §4.2.2-4.2.3 require;
 * doing that on the decimal integer rounds 2.45 to 2.4, where rounding the
 * binary double 2.4500000000000002 would give 2.5.
 *
 * Pure functions over constant tables; thread-safe.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "islewatch/standards.h"

#define SCALE       1000000LL           /* micro-units per unit */
#define CONC_CAP    1000000000.0        /* above every breakpoint; keeps llround in range */

/* Breakpoints of one column, in whole units (all of them are integers). */
struct bp_col {
    int n;
    int c[8];
};

static const int bp_iaqi[8] = { 0, 50, 100, 150, 200, 300, 400, 500 };

static const struct bp_col so2_24h = { 8, { 0, 50, 150, 475, 800, 1600, 2100, 2620 } };
static const struct bp_col so2_1h  = { 5, { 0, 150, 500, 650, 800 } };  /* > 800: special */
static const struct bp_col no2_24h = { 8, { 0, 40, 80, 180, 280, 565, 750, 940 } };
static const struct bp_col no2_1h  = { 8, { 0, 100, 200, 700, 1200, 2340, 3090, 3840 } };
static const struct bp_col co_24h  = { 8, { 0, 2, 4, 14, 24, 36, 48, 60 } };
static const struct bp_col co_1h   = { 8, { 0, 5, 10, 35, 60, 90, 120, 150 } };
static const struct bp_col o3_1h   = { 8, { 0, 160, 200, 300, 400, 800, 1000, 1200 } };
static const struct bp_col o3_8h   = { 6, { 0, 100, 160, 215, 265, 800 } };  /* > 800: special */
/* The only numeric difference between the versions: the IAQI-100 breakpoint of PM. */
static const struct bp_col pm10_24h_2012 = { 8, { 0, 50, 150, 250, 350, 420, 500, 600 } };
static const struct bp_col pm10_24h_2026 = { 8, { 0, 50, 120, 250, 350, 420, 500, 600 } };
static const struct bp_col pm25_24h_2012 = { 8, { 0, 35, 75, 115, 150, 250, 350, 500 } };
static const struct bp_col pm25_24h_2026 = { 8, { 0, 35, 60, 115, 150, 250, 350, 500 } };

#define SPECIAL_ABOVE 800       /* SO2 1 h and O3 8 h: the table stops here */

static const struct iw_aqi_pollutant_info pollutants[IW_AQI_NPOLLUTANTS] = {
    [IW_AQI_P_SO2]  = { "so2",  "SO2",   "二氧化硫", "μg/m³" },
    [IW_AQI_P_NO2]  = { "no2",  "NO2",   "二氧化氮", "μg/m³" },
    [IW_AQI_P_CO]   = { "co",   "CO",    "一氧化碳", "mg/m³" },
    [IW_AQI_P_O3]   = { "o3",   "O3",    "臭氧",     "μg/m³" },
    [IW_AQI_P_PM10] = { "pm10", "PM10",  "颗粒物（粒径小于等于10μm）", "μg/m³" },
    [IW_AQI_P_PM25] = { "pm25", "PM2.5", "颗粒物（粒径小于等于2.5μm）", "μg/m³" },
};

static const struct iw_aqi_item_info items[IW_AQI_NITEMS] = {
    [IW_AQI_SO2_1H]   = { IW_AQI_P_SO2,  1,  "SO2_1h",    "SO2" },
    [IW_AQI_SO2_24H]  = { IW_AQI_P_SO2,  24, "SO2_24h",   "SO2" },
    [IW_AQI_NO2_1H]   = { IW_AQI_P_NO2,  1,  "NO2_1h",    "NO2" },
    [IW_AQI_NO2_24H]  = { IW_AQI_P_NO2,  24, "NO2_24h",   "NO2" },
    [IW_AQI_CO_1H]    = { IW_AQI_P_CO,   1,  "CO_1h",     "CO" },
    [IW_AQI_CO_24H]   = { IW_AQI_P_CO,   24, "CO_24h",    "CO" },
    [IW_AQI_O3_1H]    = { IW_AQI_P_O3,   1,  "O3_1h",     "O3_1h" },
    [IW_AQI_O3_8H]    = { IW_AQI_P_O3,   8,  "O3_8h",     "O3_8h" },
    [IW_AQI_PM10_1H]  = { IW_AQI_P_PM10, 1,  "PM10_1h",   "PM10" },
    [IW_AQI_PM10_24H] = { IW_AQI_P_PM10, 24, "PM10_24h",  "PM10" },
    [IW_AQI_PM25_1H]  = { IW_AQI_P_PM25, 1,  "PM2.5_1h",  "PM2.5" },
    [IW_AQI_PM25_24H] = { IW_AQI_P_PM25, 24, "PM2.5_24h", "PM2.5" },
};

/* Appendix A Table A.1, identical in both versions. */
static const struct iw_aqi_level_info levels[6] = {
    { 1, 0,   50,  "一级", "优",       "Excellent",           "绿色",   "green",
      "#00E400", { 0, 228, 0 } },
    { 2, 51,  100, "二级", "良",       "Good",                "黄色",   "yellow",
      "#FFFF00", { 255, 255, 0 } },
    { 3, 101, 150, "三级", "轻度污染", "Lightly polluted",    "橙色",   "orange",
      "#FF7E00", { 255, 126, 0 } },
    { 4, 151, 200, "四级", "中度污染", "Moderately polluted", "红色",   "red",
      "#FF0000", { 255, 0, 0 } },
    { 5, 201, 300, "五级", "重度污染", "Heavily polluted",    "紫色",   "purple",
      "#99004C", { 153, 0, 76 } },
    { 6, 301, -1,  "六级", "严重污染", "Severely polluted",   "褐红色", "maroon",
      "#7E0023", { 126, 0, 35 } },
};

#define B(item) IW_AQI_BIT(IW_AQI_##item)

/* Inputs with a sub-index in each report (README §2.4), without fallbacks. */
static unsigned core_inputs(enum iw_aqi_standard std, enum iw_aqi_mode mode)
{
    bool y2012 = std == IW_AQI_HJ633_2012;

    if (std != IW_AQI_HJ633_2012 && std != IW_AQI_HJ633_2026)
        return 0;
    if (mode == IW_AQI_HOURLY)
        return y2012 ? B(SO2_1H) | B(NO2_1H) | B(CO_1H) | B(O3_1H) | B(O3_8H) | B(PM10_24H) |
                       B(PM25_24H)
                     : B(SO2_1H) | B(NO2_1H) | B(CO_1H) | B(O3_1H) | B(PM10_1H) | B(PM25_1H);
    if (mode == IW_AQI_DAILY)
        return B(SO2_24H) | B(NO2_24H) | B(CO_24H) | B(PM10_24H) | B(PM25_24H) | B(O3_8H) |
               (y2012 ? B(O3_1H) : 0u);
    return 0;
}

/* 2012 real-time: an SO2 1 h value above 800 is reported by the 24 h value. */
static unsigned fallback_inputs(enum iw_aqi_standard std, enum iw_aqi_mode mode)
{
    return (std == IW_AQI_HJ633_2012 && mode == IW_AQI_HOURLY) ? B(SO2_24H) : 0u;
}

static bool std_ok(enum iw_aqi_standard std)
{
    return std == IW_AQI_HJ633_2012 || std == IW_AQI_HJ633_2026;
}

static bool item_ok(enum iw_aqi_item item)
{
    return (int)item >= 0 && item < IW_AQI_NITEMS;
}

/* Breakpoint column of an item, NULL when the standard defines none. */
static const struct bp_col *column(enum iw_aqi_standard std, enum iw_aqi_item item)
{
    bool y2012 = std == IW_AQI_HJ633_2012;

    switch (item) {
    case IW_AQI_SO2_1H:   return &so2_1h;
    case IW_AQI_SO2_24H:  return &so2_24h;
    case IW_AQI_NO2_1H:   return &no2_1h;
    case IW_AQI_NO2_24H:  return &no2_24h;
    case IW_AQI_CO_1H:    return &co_1h;
    case IW_AQI_CO_24H:   return &co_24h;
    case IW_AQI_O3_1H:    return &o3_1h;
    case IW_AQI_O3_8H:    return &o3_8h;
    case IW_AQI_PM10_24H: return y2012 ? &pm10_24h_2012 : &pm10_24h_2026;
    case IW_AQI_PM25_24H: return y2012 ? &pm25_24h_2012 : &pm25_24h_2026;
    /* 2026 interpolates PM 1 h on the daily breakpoints; 2012 gives no sub-index. */
    case IW_AQI_PM10_1H:  return y2012 ? NULL : &pm10_24h_2026;
    case IW_AQI_PM25_1H:  return y2012 ? NULL : &pm25_24h_2026;
    case IW_AQI_NITEMS:   break;
    }
    return NULL;
}

/* GB/T 8170 (half to even) of a non-negative x to a multiple of unit. */
static int64_t round_half_even(int64_t x, int64_t unit)
{
    int64_t q = x / unit, r = x % unit;

    if (2 * r > unit || (2 * r == unit && (q & 1) != 0))
        q++;
    return q * unit;
}

/* The evaluated concentration in micro-units; arguments already checked. */
static int conc_micro(enum iw_aqi_standard std, enum iw_aqi_item item, double c, int64_t *out)
{
    if (!isfinite(c))
        return IW_E_INVAL;
    if (c < 0)
        c = 0;                  /* zero drift of the analyser */
    if (c > CONC_CAP)
        c = CONC_CAP;
    int64_t m = llround(c * (double)SCALE);

    if (std == IW_AQI_HJ633_2026)
        m = round_half_even(m, items[item].pollutant == IW_AQI_P_CO ? SCALE / 10 : SCALE);
    *out = m;
    return IW_OK;
}

/* Ceiling of the linear interpolation, in integers; c >= 0 in micro-units. */
static int iaqi_of(const struct bp_col *col, int64_t c)
{
    if (c > col->c[col->n - 1] * SCALE)
        return IW_AQI_MAX;
    for (int i = 1; i < col->n; i++) {
        int64_t bh = col->c[i] * SCALE;

        if (c <= bh) {
            int64_t bl = col->c[i - 1] * SCALE;
            int64_t num = (int64_t)(bp_iaqi[i] - bp_iaqi[i - 1]) * (c - bl);
            int64_t den = bh - bl;

            return bp_iaqi[i - 1] + (int)((num + den - 1) / den);
        }
    }
    return IW_AQI_MAX;          /* not reached: the loop ends at the top breakpoint */
}

int iw_aqi_pollutant_find(const char *metric)
{
    if (metric == NULL)
        return -1;
    for (int p = 0; p < IW_AQI_NPOLLUTANTS; p++)
        if (strcmp(pollutants[p].metric, metric) == 0)
            return p;
    return -1;
}

const struct iw_aqi_pollutant_info *iw_aqi_pollutant_info(enum iw_aqi_pollutant p)
{
    return ((int)p >= 0 && p < IW_AQI_NPOLLUTANTS) ? &pollutants[p] : NULL;
}

const struct iw_aqi_item_info *iw_aqi_item_info(enum iw_aqi_item item)
{
    return item_ok(item) ? &items[item] : NULL;
}

const struct iw_aqi_level_info *iw_aqi_level_info(int level)
{
    return (level >= 1 && level <= 6) ? &levels[level - 1] : NULL;
}

const char *iw_aqi_standard_name(enum iw_aqi_standard std)
{
    switch (std) {
    case IW_AQI_HJ633_2026: return "HJ633-2026";
    case IW_AQI_HJ633_2012: return "HJ633-2012";
    }
    return "?";
}

size_t iw_aqi_standard_norm(const char *s, char *out, size_t size)
{
    size_t n = 0;

    for (const char *c = s; *c != '\0' && n + 1 < size; c++) {
        if (*c == ' ')
            continue;
        if (strncmp(c, "\u2014", 3) == 0 || strncmp(c, "\u2013", 3) == 0) {
            out[n++] = '-';
            c += 2;
            continue;
        }
        out[n++] = (char)toupper((unsigned char)*c);
    }
    out[n] = '\0';
    return n;
}

int iw_aqi_standard_parse(const char *s, enum iw_aqi_standard *out)
{
    char norm[32];

    if (s == NULL || out == NULL || iw_aqi_standard_norm(s, norm, sizeof(norm)) + 1 >= sizeof(norm))
        return IW_E_INVAL;
    if (strcmp(norm, "HJ633-2026") == 0)
        *out = IW_AQI_HJ633_2026;
    else if (strcmp(norm, "HJ633-2012") == 0)
        *out = IW_AQI_HJ633_2012;
    else
        return IW_E_INVAL;
    return IW_OK;
}

int iw_aqi_level(int aqi)
{
    if (aqi < 0)
        return IW_E_INVAL;
    for (int l = 0; l < 5; l++)
        if (aqi <= levels[l].aqi_max)
            return l + 1;
    return 6;
}

unsigned iw_aqi_inputs(enum iw_aqi_standard std, enum iw_aqi_mode mode)
{
    return core_inputs(std, mode) | fallback_inputs(std, mode);
}

int iw_aqi_round_conc(enum iw_aqi_standard std, enum iw_aqi_item item, double conc, double *out)
{
    int64_t m;

    if (!std_ok(std) || !item_ok(item) || out == NULL)
        return IW_E_INVAL;
    int rc = conc_micro(std, item, conc, &m);
    if (rc != IW_OK)
        return rc;
    *out = (double)m / (double)SCALE;   /* one rounding: the double nearest the decimal */
    return IW_OK;
}

int iw_aqi_iaqi(enum iw_aqi_standard std, enum iw_aqi_item item, double conc, int *iaqi)
{
    int64_t c;

    if (!std_ok(std) || !item_ok(item) || iaqi == NULL)
        return IW_E_INVAL;
    int rc = conc_micro(std, item, conc, &c);
    if (rc != IW_OK)
        return rc;

    /* The table notes: 2012 hands the pollutant to its other average, 2026 fixes the value. */
    if (c > SPECIAL_ABOVE * SCALE && (item == IW_AQI_SO2_1H || item == IW_AQI_O3_8H)) {
        if (std == IW_AQI_HJ633_2012)
            return IW_E_NOTFOUND;
        *iaqi = item == IW_AQI_SO2_1H ? 200 : 300;
        return IW_OK;
    }
    const struct bp_col *col = column(std, item);
    if (col == NULL)
        return IW_E_NOTFOUND;
    *iaqi = iaqi_of(col, c);
    return IW_OK;
}

/* Evaluate one present item into out; it must be an input of the report. */
static void eval_item(enum iw_aqi_standard std, enum iw_aqi_item i, double v,
                      struct iw_aqi_result *out)
{
    int x;
    int rc = iw_aqi_iaqi(std, i, v, &x);

    if (rc == IW_E_INVAL) {
        out->use[i] = IW_AQI_USE_INVALID;
        return;
    }
    if (rc == IW_E_NOTFOUND) {
        out->use[i] = IW_AQI_USE_REPLACED;
        return;
    }
    out->use[i] = IW_AQI_USE_USED;
    out->iaqi[i] = x;
}

/*
 * Every input of the report was used, or replaced by an average that was, or
 * is absent because the station does not measure its pollutant (HJ 633-2026
 * tables: "/", not NA).
 */
static bool is_complete(const struct iw_aqi_result *out, unsigned core, unsigned not_measured)
{
    for (int i = 0; i < IW_AQI_NITEMS; i++) {
        if (!(core & IW_AQI_BIT(i)) || out->use[i] == IW_AQI_USE_USED)
            continue;
        if (out->use[i] == IW_AQI_USE_ABSENT && (not_measured & (1u << items[i].pollutant)))
            continue;
        if (out->use[i] == IW_AQI_USE_REPLACED) {
            enum iw_aqi_item by = i == IW_AQI_SO2_1H ? IW_AQI_SO2_24H : IW_AQI_O3_1H;
            if (out->use[by] == IW_AQI_USE_USED)
                continue;
        }
        return false;
    }
    return true;
}

int iw_aqi_compute(enum iw_aqi_standard std, enum iw_aqi_mode mode,
                   const struct iw_aqi_input *in, struct iw_aqi_result *out)
{
    if (out == NULL)
        return IW_E_INVAL;
    memset(out, 0, sizeof(*out));
    unsigned core = core_inputs(std, mode);
    if (in == NULL || core == 0)
        return IW_E_INVAL;
    unsigned fallback = fallback_inputs(std, mode);

    out->aqi = -1;
    for (int i = 0; i < IW_AQI_NITEMS; i++) {
        enum iw_aqi_item item = (enum iw_aqi_item)i;
        double c;

        out->iaqi[i] = -1;
        if (!in->present[i]) {
            out->use[i] = IW_AQI_USE_ABSENT;
            continue;
        }
        if (iw_aqi_round_conc(std, item, in->v[i], &c) == IW_OK)
            out->conc[i] = c;
        if (core & IW_AQI_BIT(i))
            eval_item(std, item, in->v[i], out);
        else
            out->use[i] = IW_AQI_USE_IGNORED;
    }
    /* Fallbacks are evaluated only when the item they stand in for was replaced. */
    if ((fallback & B(SO2_24H)) && in->present[IW_AQI_SO2_24H] &&
        out->use[IW_AQI_SO2_1H] == IW_AQI_USE_REPLACED)
        eval_item(std, IW_AQI_SO2_24H, in->v[IW_AQI_SO2_24H], out);

    for (int i = 0; i < IW_AQI_NITEMS; i++) {
        if (out->use[i] != IW_AQI_USE_USED)
            continue;
        out->n_used++;
        if (out->iaqi[i] > out->aqi)
            out->aqi = out->iaqi[i];
    }
    out->complete = is_complete(out, core, in->not_measured);
    out->aqi_na = std == IW_AQI_HJ633_2026 && !out->complete && out->aqi <= 100;
    if (out->n_used == 0)
        return IW_E_EMPTY;

    out->level = iw_aqi_level(out->aqi);
    for (int i = 0; i < IW_AQI_NITEMS; i++) {
        if (out->use[i] != IW_AQI_USE_USED)
            continue;
        /* 首要污染物 only above 50; ties are all primary (并列). */
        if (out->aqi > 50 && out->iaqi[i] == out->aqi)
            out->primary |= IW_AQI_BIT(i);
        if (std == IW_AQI_HJ633_2012 && out->iaqi[i] > 100)
            out->nonattain |= IW_AQI_BIT(i);
    }
    return IW_OK;
}

int iw_aqi_primary_format(const struct iw_aqi_result *r, char *buf, size_t len)
{
    size_t used = 0;
    int rc = IW_OK;

    if (r == NULL || buf == NULL || len == 0)
        return IW_E_INVAL;
    buf[0] = '\0';
    for (int i = 0; i < IW_AQI_NITEMS; i++) {
        if (!(r->primary & IW_AQI_BIT(i)))
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used > 0 ? "," : "", items[i].primary);
        if (w < 0 || (size_t)w >= len - used) {
            rc = IW_E_FULL;
            break;
        }
        used += (size_t)w;
    }
    return rc;
}
