/* SPDX-License-Identifier: Apache-2.0 */
/*
 * standards — the Chinese environmental standards islewatch evaluates, as
 * pure functions: no I/O, no allocation, no global state, safe from any
 * thread. Source of every number: shared/standards/README.md and
 * standards.yaml (confidence labels [P]/[S]/[U] are quoted where it matters).
 *
 *   water  GB 3838-2002 Table 1 class limits, single-factor evaluation with
 *          the item set of the 2011 evaluation method (环办〔2011〕22号).
 *   aqi    HJ 633-2012 and HJ 633-2026 sub-indices (IAQI), AQI, primary
 *          pollutant, levels, names and colours.
 *   avg    averaging and data-validity helpers (GB 3095 Table 4, HJ 663):
 *          hourly from minute samples, 24 h, O3 8 h and daily maxima, and
 *          local-day arithmetic with a fixed time-zone offset.
 *
 * The module does not read series, keep state or decide alerts: the rule
 * engine collects the values and calls these functions.
 *
 * Ownership: every pointer parameter is borrowed for the call; every
 * returned pointer (names, info structs) points to static constant data.
 */
#ifndef ISLEWATCH_STANDARDS_H
#define ISLEWATCH_STANDARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"
#include "islewatch/config.h"   /* enum iw_water_body, iw_aqi_standard, iw_aqi_mode */
#include "islewatch/err.h"

/* ========================================================================
 * Water: GB 3838-2002
 * ====================================================================== */

/* Parameters, in the order of SPEC §4's metric list. */
enum iw_water_param {
    IW_WATER_PH = 0,
    IW_WATER_DO,
    IW_WATER_CODMN,
    IW_WATER_COD,
    IW_WATER_BOD5,
    IW_WATER_NH3_N,
    IW_WATER_TP,
    IW_WATER_TN,
    IW_WATER_CU,
    IW_WATER_ZN,
    IW_WATER_FLUORIDE,
    IW_WATER_SE,
    IW_WATER_AS,
    IW_WATER_HG,
    IW_WATER_CD,
    IW_WATER_CR6,
    IW_WATER_PB,
    IW_WATER_CN,
    IW_WATER_PHENOL,
    IW_WATER_PETROLEUM,
    IW_WATER_LAS,
    IW_WATER_SULFIDE,
    IW_WATER_FECAL_COLIFORM,
    IW_WATER_TEMP,
    IW_WATER_NPARAM
};

/* Classes: 1..5 are Ⅰ..Ⅴ, 6 is 劣Ⅴ (worse than V). */
#define IW_WATER_CLASS_WORSE_THAN_V 6

/*
 * Values are compared with the limits after rounding to this many
 * significant digits, so that a mean of decimal inputs that lands one ulp
 * off a limit (1.0000000000000002 mg/L NH3-N) counts as the limit itself
 * (Class III), as the same mean computed by hand would. Six digits are far
 * finer than any instrument's resolution, so no real difference is lost;
 * a consequence is that 4.999999 mg/L DO (seven digits) counts as 5.
 */
#define IW_WATER_SIG_DIGITS 6

struct iw_water_param_info {
    const char *metric;     /* SPEC metric name: "nh3_n" */
    const char *label;      /* short display name: "NH3-N" */
    const char *name_zh;    /* "氨氮" */
    const char *name_en;    /* "ammonia nitrogen" */
    const char *unit;       /* "mg/L", "个/L" (fecal coliform), "" (pH), "℃" (temp) */
};

struct iw_water_class_info {
    int         cls;        /* 1..6 */
    const char *name;       /* "I" .. "V", "劣V" (ASCII numerals) */
    const char *name_zh;    /* "Ⅰ类" .. "Ⅴ类", "劣Ⅴ类" (U+2160 numerals) */
    const char *grade_zh;   /* 评价办法 Table 1: 优, 优, 良好, 轻度污染, 中度污染, 重度污染 */
    const char *grade_en;   /* Excellent, Excellent, Good, Lightly/Moderately/Heavily polluted
                             * (not in the standard; common usage) */
};

/* Parameter index of a SPEC metric name ("nh3_n"), or -1 when unknown (also for NULL). */
int iw_water_param_find(const char *metric);

/* Names of a parameter; NULL when p is out of range. */
const struct iw_water_param_info *iw_water_param_info(enum iw_water_param p);

/* Names of a class 1..6; NULL otherwise. */
const struct iw_water_class_info *iw_water_class_info(int cls);

/*
 * The limit of class cls (1..5) for p in a body of water (TP differs for
 * lakes/reservoirs), as the decimal literal of the standard.
 * IW_OK; IW_E_NOTFOUND for pH (a 6-9 range, see IW_WATER_PH_MIN/MAX) and
 * water temperature (no class limit); IW_E_INVAL for a bad argument.
 */
#define IW_WATER_PH_MIN 6.0
#define IW_WATER_PH_MAX 9.0
IW_NODISCARD int iw_water_limit(enum iw_water_param p, enum iw_water_body body, int cls,
                                double *out);

/*
 * Class of one value (a mean) of p: 1..5, or 6 for 劣Ⅴ. Limits are
 * inclusive ("≤", DO "≥"); when classes share a limit the best one wins
 * (COD 15 -> I, cyanide 0.2 -> III, 0.21 -> 劣Ⅴ). pH inside [6, 9] is class
 * 1 (it never worsens the class), outside is 6. Values are rounded to
 * IW_WATER_SIG_DIGITS first. A negative concentration counts as below every
 * limit (class 1); a negative DO as 劣Ⅴ.
 * Returns the class, 0 for water temperature (no class), or IW_E_INVAL for a
 * bad parameter, body, or a value that is NaN or infinite.
 */
int iw_water_class(enum iw_water_param p, enum iw_water_body body, double value);

/*
 * Does p decide the section's class under the 2011 evaluation method?
 * True for the 21 evaluated items, plus TN in lakes/reservoirs; false for
 * water temperature, fecal coliform and TN in rivers (reported only).
 */
bool iw_water_param_decides(enum iw_water_param p, enum iw_water_body body);

/*
 * Exceedance multiple of value over the class-`target` limit (1..5):
 * (C − limit)/limit, for DO (limit − C)/limit (SPEC §4), 0 for pH and
 * temperature. C is rounded as in iw_water_class. Negative when C meets the
 * target. IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_water_exceedance(enum iw_water_param p, enum iw_water_body body,
                                     int target, double value, double *out);

struct iw_water_input {
    double value[IW_WATER_NPARAM];      /* the parameter's mean over the rule window */
    bool   present[IW_WATER_NPARAM];    /* false: the station does not report it */
};

struct iw_water_result {
    int    cls;                             /* worst deciding class 1..6; 0: no deciding item */
    int    param_class[IW_WATER_NPARAM];    /* class of every present item (0: absent, or temp) */
    bool   deciding[IW_WATER_NPARAM];       /* present and decides the class */
    double value[IW_WATER_NPARAM];          /* value as compared (rounded); 0 when absent */
    /* Deciding items worse than the target, in enum order, and their
     * exceedance multiples (indexed by parameter; 0 for the others). */
    enum iw_water_param worse[IW_WATER_NPARAM];
    size_t n_worse;
    double exceed[IW_WATER_NPARAM];
    size_t n_present;
    size_t n_deciding;
};

/*
 * Single-factor evaluation of the present parameters of `in` for a body of
 * water. target is 1..5, or 0 for none (then n_worse is 0). Every present
 * item gets its class; only deciding items (iw_water_param_decides) set
 * out->cls, and only they are listed in worse[]. A present item with a NaN
 * or infinite value makes the call fail: the caller must not pass it.
 * Returns IW_OK (also when nothing decides: cls 0) or IW_E_INVAL (out is
 * then zeroed).
 */
IW_NODISCARD int iw_water_evaluate(const struct iw_water_input *in, enum iw_water_body body,
                                   int target, struct iw_water_result *out);

/* ========================================================================
 * AQI: HJ 633-2012 and HJ 633-2026
 * ====================================================================== */

enum iw_aqi_pollutant {
    IW_AQI_P_SO2 = 0,
    IW_AQI_P_NO2,
    IW_AQI_P_CO,
    IW_AQI_P_O3,
    IW_AQI_P_PM10,
    IW_AQI_P_PM25,
    IW_AQI_NPOLLUTANTS
};

/*
 * One concentration of one pollutant over one averaging time; it selects
 * the breakpoint column. What the value is (a 1 h mean, a 24 h moving mean,
 * a daily maximum) depends on the report:
 *
 *   2012 hourly: SO2_1H NO2_1H CO_1H O3_1H, O3_8H (8 h moving mean),
 *                PM10_24H PM25_24H (24 h moving means); PM10_1H/PM25_1H
 *                are published without a sub-index (ignored). SO2_24H
 *                (24 h moving mean) is needed only when SO2 1 h > 800.
 *   2026 hourly: the six 1 h means; PM 1 h on the 24 h breakpoints.
 *   2012 daily:  SO2 NO2 CO PM10 PM25 _24H (daily means), O3_1H (daily max
 *                1 h), O3_8H (daily max 8 h).
 *   2026 daily:  SO2 NO2 CO PM10 PM25 _24H, O3_8H (daily max 8 h).
 */
enum iw_aqi_item {
    IW_AQI_SO2_1H = 0,
    IW_AQI_SO2_24H,
    IW_AQI_NO2_1H,
    IW_AQI_NO2_24H,
    IW_AQI_CO_1H,
    IW_AQI_CO_24H,
    IW_AQI_O3_1H,
    IW_AQI_O3_8H,
    IW_AQI_PM10_1H,
    IW_AQI_PM10_24H,
    IW_AQI_PM25_1H,
    IW_AQI_PM25_24H,
    IW_AQI_NITEMS
};
#define IW_AQI_BIT(item) (1u << (unsigned)(item))

#define IW_AQI_MAX 500      /* sub-indices above the top breakpoint are clamped here [U] */

struct iw_aqi_pollutant_info {
    const char *metric;     /* SPEC metric: "so2" .. "pm25" */
    const char *name;       /* "SO2", "NO2", "CO", "O3", "PM10", "PM2.5" */
    const char *name_zh;    /* "二氧化硫" .. "颗粒物（粒径小于等于2.5μm）" */
    const char *unit;       /* "μg/m³"; CO "mg/m³" */
};

struct iw_aqi_item_info {
    enum iw_aqi_pollutant pollutant;
    int         hours;      /* averaging time: 1, 8 or 24 */
    const char *name;       /* "SO2_1h", "O3_8h", "PM2.5_24h" */
    const char *primary;    /* as a primary pollutant: "SO2", "O3_1h", "O3_8h", "PM2.5" */
};

struct iw_aqi_level_info {
    int         level;          /* 1..6 */
    int         aqi_min;        /* 0, 51, 101, 151, 201, 301 */
    int         aqi_max;        /* 50, 100, 150, 200, 300; -1 for level 6 (open) */
    const char *name_zh;        /* "一级" .. "六级" */
    const char *category_zh;    /* 优, 良, 轻度污染, 中度污染, 重度污染, 严重污染 */
    const char *category_en;    /* Excellent .. Severely polluted (common usage, [U]) */
    const char *color_zh;       /* 绿色 黄色 橙色 红色 紫色 褐红色 */
    const char *color_en;       /* green yellow orange red purple maroon */
    const char *hex;            /* "#00E400" .. "#7E0023" */
    unsigned char rgb[3];
};

/* Pollutant of a SPEC metric name ("pm25"), or -1 when unknown (also NULL). */
int iw_aqi_pollutant_find(const char *metric);
/* NULL when out of range. */
const struct iw_aqi_pollutant_info *iw_aqi_pollutant_info(enum iw_aqi_pollutant p);
const struct iw_aqi_item_info *iw_aqi_item_info(enum iw_aqi_item item);
const struct iw_aqi_level_info *iw_aqi_level_info(int level);
/* "HJ633-2026" / "HJ633-2012"; "?" when out of range. */
const char *iw_aqi_standard_name(enum iw_aqi_standard std);
/* A standard's name as people type it: "HJ633-2026", "HJ 633-2012", "hj633—2026" (spaces,
 * case and en/em dashes ignored). IW_E_INVAL when it names neither. */
int iw_aqi_standard_parse(const char *s, enum iw_aqi_standard *out);
/* That normalisation alone (upper case, no spaces, dashes as '-'), cut to fit
 * out[size]; returns its length. For a did-you-mean over the names. */
size_t iw_aqi_standard_norm(const char *s, char *out, size_t size);

/* Level 1..6 of an AQI value (0-50 -> 1, 51-100 -> 2, ..., >300 -> 6); IW_E_INVAL if aqi < 0. */
int iw_aqi_level(int aqi);

/*
 * Items that feed the AQI of a report (a mask of IW_AQI_BIT(item)), as
 * listed above the enum. For 2012 hourly it includes SO2_24H, the
 * replacement for an SO2 1 h value above 800; the caller should supply it.
 * 0 for a bad standard or mode.
 */
unsigned iw_aqi_inputs(enum iw_aqi_standard std, enum iw_aqi_mode mode);

/*
 * The concentration a sub-index is computed from: the value taken to
 * 1e-6 units (μg/m³, CO mg/m³), and for 2026 then rounded per GB/T 8170
 * (half to even) to an integer, CO to one decimal (HJ 633-2026 §4.2.2-3).
 * 2026: 35.5 -> 36, 34.5 -> 34, CO 2.25 -> 2.2, 2.35 -> 2.4.
 * A negative concentration (instrument zero drift) counts as 0.
 * IW_OK; IW_E_INVAL for a bad item/standard or a NaN or infinite
 * concentration.
 */
IW_NODISCARD int iw_aqi_round_conc(enum iw_aqi_standard std, enum iw_aqi_item item,
                                   double conc, double *out);

/*
 * Sub-index of one concentration, exact: the interpolation is done in
 * integers and rounded up (ceiling), so CO 24 h 2.2 mg/m³ gives 55, never
 * 56. Above the top breakpoint the sub-index is IW_AQI_MAX. Special rows:
 *   SO2 1 h > 800:  2026 -> 200;  2012 -> IW_E_NOTFOUND (report SO2 by its
 *                   24 h sub-index instead)
 *   O3 8 h > 800:   2026 -> 300;  2012 -> IW_E_NOTFOUND (report O3 by its
 *                   1 h sub-index instead)
 *   PM10_1H/PM25_1H: 2026 -> on the 24 h breakpoints; 2012 -> IW_E_NOTFOUND
 *                   (published without a sub-index)
 * A negative concentration counts as 0. Returns IW_OK with *iaqi in 0..500,
 * IW_E_NOTFOUND as above, IW_E_INVAL for a bad argument or a NaN or infinite
 * concentration.
 */
IW_NODISCARD int iw_aqi_iaqi(enum iw_aqi_standard std, enum iw_aqi_item item, double conc,
                             int *iaqi);

/*
 * not_measured: 1 << pollutant of each pollutant the station does not
 * monitor ("/" in the tables of HJ 633-2026, as opposed to NA for a missing
 * measurement). Its absent items are not missing data, so they neither make
 * the result incomplete nor its AQI NA. 0 (a zeroed input): the station
 * monitors every pollutant of the report.
 */
struct iw_aqi_input {
    double   v[IW_AQI_NITEMS];
    bool     present[IW_AQI_NITEMS];
    unsigned not_measured;
};

enum iw_aqi_use {
    IW_AQI_USE_ABSENT = 0,  /* not present in the input */
    IW_AQI_USE_USED,        /* its sub-index takes part in the AQI */
    IW_AQI_USE_IGNORED,     /* present but not an input of this report */
    IW_AQI_USE_REPLACED,    /* 2012, above 800: the pollutant's other average reports it */
    IW_AQI_USE_INVALID,     /* present but NaN or infinite: treated as missing */
};

struct iw_aqi_result {
    int      aqi;                       /* max sub-index of the used items; -1 when none */
    int      level;                     /* 1..6; 0 when aqi is -1 */
    int      iaqi[IW_AQI_NITEMS];       /* sub-index of each used item, -1 otherwise */
    double   conc[IW_AQI_NITEMS];       /* every present finite item, as evaluated
                                         * (iw_aqi_round_conc); 0 otherwise */
    enum iw_aqi_use use[IW_AQI_NITEMS];
    unsigned primary;                   /* IW_AQI_BIT mask: used items tied at the max; 0 if aqi <= 50 */
    unsigned nonattain;                 /* 2012 超标污染物: used items with IAQI > 100; 0 in 2026 */
    size_t   n_used;
    bool     complete;                  /* every input of the report of a pollutant the
                                         * station measures was evaluated */
    bool     aqi_na;                    /* 2026 §5.3.1: incomplete and aqi <= 100, publish AQI as NA */
};

/*
 * AQI of one report. Items of in that are not inputs of (std, mode) are
 * marked IGNORED; invalid values are marked INVALID and treated as missing.
 * An absent input is missing data unless its pollutant is in
 * in->not_measured (HJ 633-2026 §5.3.1 applies to missing data only).
 * Returns IW_OK; IW_E_EMPTY when no item could be used (aqi -1, level 0,
 * the rest of out filled); IW_E_INVAL for a bad argument (out zeroed when
 * non-NULL).
 */
IW_NODISCARD int iw_aqi_compute(enum iw_aqi_standard std, enum iw_aqi_mode mode,
                                const struct iw_aqi_input *in, struct iw_aqi_result *out);

/*
 * The primary pollutants of r as text, iw_aqi_item_info().primary joined by
 * ",": "PM2.5", "PM10,PM2.5", "O3_8h"; "" when there is none. Returns IW_OK,
 * or IW_E_FULL when buf (always NUL-terminated when len > 0) was too small,
 * IW_E_INVAL for NULL arguments.
 */
IW_NODISCARD int iw_aqi_primary_format(const struct iw_aqi_result *r, char *buf, size_t len);

/* ========================================================================
 * Averages and data validity (GB 3095 Table 4, HJ 663-2013)
 * ====================================================================== */

#define IW_AVG_MIN_MINUTES      45      /* 1 h mean: >= 45 minutes with data [P] */
#define IW_AVG_MIN_HOURS_24H    20      /* 24 h mean: >= 20 valid hours [P] */
#define IW_AVG_MIN_HOURS_8H     6       /* O3 8 h mean: >= 6 valid hours [P] */
#define IW_AVG_MIN_8H_PER_DAY   14      /* O3 daily max 8 h: >= 14 valid 8 h means [U] */
#define IW_AVG_O3_8H_LIMIT      160.0   /* GB 3095 class-2 O3 daily max 8 h, μg/m³ */
#define IW_AVG_8H_PER_DAY       17      /* 8 h windows ending 08:00 .. 24:00 */

/* A raw sample: valid false for a sample the device flagged (fault, comms). */
struct iw_avg_sample {
    int64_t ts_ms;
    double  value;
    bool    valid;
};

/*
 * An average: value is the mean (or maximum), n the number of units it was
 * computed from (minutes, hours or 8 h means), valid whether n meets the
 * validity minimum. value is NaN when n is 0. As an input (hourly values),
 * only value and valid are read; a valid hour with a NaN or infinite value
 * counts as invalid.
 *
 * All the functions below return IW_OK, or IW_E_INVAL for a NULL argument.
 */
struct iw_avg {
    double value;
    int    n;
    bool   valid;
};

/*
 * Hourly mean of the hour (hour_end − 1 h, hour_end]. The hour is cut into
 * 60 minutes, each (m − 1 min, m] like the hour itself, so a sample stamped
 * exactly at hour_end is in the last minute. A minute counts when it holds at
 * least one valid, finite sample; the mean is the mean of the minutes' means
 * (a chatty minute weighs as much as a quiet one); valid with >= 45 minutes.
 * Samples outside the hour are skipped; order does not matter.
 * IW_OK or IW_E_INVAL (s NULL with n > 0, out NULL).
 */
IW_NODISCARD int iw_avg_hour(const struct iw_avg_sample *s, size_t n, int64_t hour_end_ms,
                             struct iw_avg *out);

/*
 * 24 h mean of 24 hourly values: the daily mean (hours ending 01:00 .. 24:00
 * local time) or the 24 h moving mean (the 24 hours ending at the current
 * hour, 2012 real-time PM). Mean of the valid hours; valid with >= 20.
 */
IW_NODISCARD int iw_avg_24h(const struct iw_avg hours[24], struct iw_avg *out);

/* O3 8 h moving mean at hour X: hours[0] is X−7 .. hours[7] is X; valid with >= 6. */
IW_NODISCARD int iw_avg_8h(const struct iw_avg hours[8], struct iw_avg *out);

/*
 * O3 daily maximum 8 h mean of a day's hours (hours[0] ends 01:00 ..
 * hours[23] ends 24:00): the maximum of the valid 8 h means ending 08:00 ..
 * 24:00 (17 windows, all inside the day). n is the number of valid 8 h
 * means. Valid with >= 14, or with fewer when the maximum already exceeds
 * IW_AVG_O3_8H_LIMIT (compared at 1e-6 μg/m³ resolution) — this rule is
 * from HJ 663-2013 as remembered, not read [U]. *end_hour (may be NULL)
 * receives the hour index 7..23 of the maximum window, -1 when none.
 */
IW_NODISCARD int iw_avg_o3_max8h(const struct iw_avg hours[24], struct iw_avg *out,
                                 int *end_hour);

/*
 * O3 daily maximum 1 h (HJ 633-2012 daily report): the largest valid hour.
 * The standards give no coverage rule for it; islewatch applies the daily
 * one (valid with >= 20 valid hours) [implementation choice].
 */
IW_NODISCARD int iw_avg_o3_max1h(const struct iw_avg hours[24], struct iw_avg *out,
                                 int *end_hour);

/*
 * Local time with a fixed offset in minutes east of UTC (+480 Asia/Shanghai),
 * valid for -1440 < tz_offset_min < 1440.
 *
 * iw_local_day_start: UTC ms of the local midnight that starts the calendar
 * day holding instant ts_ms ([00:00, 24:00) local).
 *
 * iw_local_hour_end: the end H of the local hour (H − 1 h, H] holding ts_ms,
 * the label of the hourly value the sample belongs to (a sample at 10:00:00.000
 * is in the hour labelled 10:00).
 *
 * Both return INT64_MIN when ts_ms is so far out that the arithmetic
 * would overflow.
 *
 * iw_local_hour_index: for an hourly value labelled by its end hour_end_ms,
 * the natural day it belongs to ((00:00, 24:00], so the hour labelled 00:00
 * is the previous day's 24:00) and its index 0..23 in that day (0 = hour
 * ending 01:00, 23 = hour ending 24:00). Returns the index, or IW_E_INVAL
 * when hour_end_ms is not on a local hour or the offset is out of range.
 * day_start_ms may be NULL.
 */
int64_t iw_local_day_start(int64_t ts_ms, int tz_offset_min);
int64_t iw_local_hour_end(int64_t ts_ms, int tz_offset_min);
int iw_local_hour_index(int64_t hour_end_ms, int tz_offset_min, int64_t *day_start_ms);

#endif /* ISLEWATCH_STANDARDS_H */
