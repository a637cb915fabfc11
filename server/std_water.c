/* SPDX-License-Identifier: Apache-2.0 */
/*
 * std_water — GB 3838-2002 Table 1 (basic items) and the single-factor
 * evaluation of the 2011 method 《地表水环境质量评价办法（试行）》.
 *
 * Limits are kept as the standard's decimal literals. A value is rounded to
 * IW_WATER_SIG_DIGITS significant digits, to the double nearest that decimal,
 * before it is compared; the limit literal is also the double nearest its
 * decimal, so "equal as decimals" is "equal as doubles" and the inclusive
 * limits hold exactly (see standards.h for why six digits).
 *
 * Pure functions over constant tables; thread-safe.
 */
#include <math.h>
#include <string.h>

#include "islewatch/standards.h"

enum cmp {
    CMP_LE,         /* class k when value <= limit[k] */
    CMP_GE,         /* DO: class k when value >= limit[k] */
    CMP_RANGE,      /* pH: inside [6, 9] or 劣V */
    CMP_NONE,       /* water temperature: no class */
};

enum decides {
    DECIDES_ALWAYS,     /* the 21 evaluated items of the 2011 method */
    DECIDES_LAKE,       /* TN: lakes and reservoirs only ("河流总氮除外") */
    DECIDES_NEVER,      /* fecal coliform, water temperature: reference only */
};

struct param_def {
    struct iw_water_param_info info;
    enum cmp     cmp;
    enum decides decides;
    double       lim[5];        /* classes I..V; rivers for TP */
};

static const struct param_def params[IW_WATER_NPARAM] = {
    [IW_WATER_PH] = { { "ph", "pH", "pH值", "pH", "" },
        CMP_RANGE, DECIDES_ALWAYS, { 0 } },
    [IW_WATER_DO] = { { "do", "DO", "溶解氧", "dissolved oxygen", "mg/L" },
        CMP_GE, DECIDES_ALWAYS, { 7.5, 6, 5, 3, 2 } },
    [IW_WATER_CODMN] = { { "codmn", "CODMn", "高锰酸盐指数", "permanganate index", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 2, 4, 6, 10, 15 } },
    [IW_WATER_COD] = { { "cod", "COD", "化学需氧量", "chemical oxygen demand", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 15, 15, 20, 30, 40 } },
    [IW_WATER_BOD5] = { { "bod5", "BOD5", "五日生化需氧量", "five-day biochemical oxygen demand",
                          "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 3, 3, 4, 6, 10 } },
    [IW_WATER_NH3_N] = { { "nh3_n", "NH3-N", "氨氮", "ammonia nitrogen", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.15, 0.5, 1.0, 1.5, 2.0 } },
    [IW_WATER_TP] = { { "tp", "TP", "总磷", "total phosphorus", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.02, 0.1, 0.2, 0.3, 0.4 } },
    [IW_WATER_TN] = { { "tn", "TN", "总氮", "total nitrogen", "mg/L" },
        CMP_LE, DECIDES_LAKE, { 0.2, 0.5, 1.0, 1.5, 2.0 } },
    [IW_WATER_CU] = { { "cu", "Cu", "铜", "copper", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.01, 1.0, 1.0, 1.0, 1.0 } },
    [IW_WATER_ZN] = { { "zn", "Zn", "锌", "zinc", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.05, 1.0, 1.0, 2.0, 2.0 } },
    [IW_WATER_FLUORIDE] = { { "fluoride", "F", "氟化物", "fluoride", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 1.0, 1.0, 1.0, 1.5, 1.5 } },
    [IW_WATER_SE] = { { "se", "Se", "硒", "selenium", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.01, 0.01, 0.01, 0.02, 0.02 } },
    [IW_WATER_AS] = { { "as", "As", "砷", "arsenic", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.05, 0.05, 0.05, 0.1, 0.1 } },
    [IW_WATER_HG] = { { "hg", "Hg", "汞", "mercury", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.00005, 0.00005, 0.0001, 0.001, 0.001 } },
    [IW_WATER_CD] = { { "cd", "Cd", "镉", "cadmium", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.001, 0.005, 0.005, 0.005, 0.01 } },
    [IW_WATER_CR6] = { { "cr6", "Cr(VI)", "铬(六价)", "hexavalent chromium", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.01, 0.05, 0.05, 0.05, 0.1 } },
    [IW_WATER_PB] = { { "pb", "Pb", "铅", "lead", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.01, 0.01, 0.05, 0.05, 0.1 } },
    [IW_WATER_CN] = { { "cn", "CN", "氰化物", "cyanide", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.005, 0.05, 0.2, 0.2, 0.2 } },
    [IW_WATER_PHENOL] = { { "phenol", "Phenol", "挥发酚", "volatile phenol", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.002, 0.002, 0.005, 0.01, 0.1 } },
    [IW_WATER_PETROLEUM] = { { "petroleum", "Petroleum", "石油类", "petroleum", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.05, 0.05, 0.05, 0.5, 1.0 } },
    [IW_WATER_LAS] = { { "las", "LAS", "阴离子表面活性剂", "anionic surfactant", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.2, 0.2, 0.2, 0.3, 0.3 } },
    [IW_WATER_SULFIDE] = { { "sulfide", "Sulfide", "硫化物", "sulfide", "mg/L" },
        CMP_LE, DECIDES_ALWAYS, { 0.05, 0.1, 0.2, 0.5, 1.0 } },
    [IW_WATER_FECAL_COLIFORM] = { { "fecal_coliform", "Fecal coliform", "粪大肠菌群",
                                    "fecal coliform", "个/L" },
        CMP_LE, DECIDES_NEVER, { 200, 2000, 10000, 20000, 40000 } },
    [IW_WATER_TEMP] = { { "temp", "Temp", "水温", "water temperature", "℃" },
        CMP_NONE, DECIDES_NEVER, { 0 } },
};

/* 湖、库: only TP has separate limits in Table 1. */
static const double tp_lake[5] = { 0.01, 0.025, 0.05, 0.1, 0.2 };

static const struct iw_water_class_info classes[6] = {
    { 1, "I",   "Ⅰ类",   "优",       "Excellent" },
    { 2, "II",  "Ⅱ类",   "优",       "Excellent" },
    { 3, "III", "Ⅲ类",   "良好",     "Good" },
    { 4, "IV",  "Ⅳ类",   "轻度污染", "Lightly polluted" },
    { 5, "V",   "Ⅴ类",   "中度污染", "Moderately polluted" },
    { 6, "劣V", "劣Ⅴ类", "重度污染", "Heavily polluted" },
};

/* Exact powers of ten (every one up to 1e22 is a double). */
static const double pow10_exact[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static bool param_ok(enum iw_water_param p)
{
    return (int)p >= 0 && p < IW_WATER_NPARAM;
}

static bool body_ok(enum iw_water_body body)
{
    return body == IW_BODY_RIVER || body == IW_BODY_LAKE;
}

/*
 * v to IW_WATER_SIG_DIGITS significant digits, as the double nearest that
 * decimal: the integer k = round(v * 10^d) is exact, and k / 10^d (or
 * k * 10^-d) is one correctly rounded IEEE operation on exact operands.
 * A floor(log10) that is off by one near a power of ten only changes the
 * digit count by one, which is harmless.
 */
static double round_sig(double v)
{
    if (v == 0.0)
        return 0.0;
    int e = (int)floor(log10(fabs(v)));
    int places = IW_WATER_SIG_DIGITS - 1 - e;

    if (places >= 0) {
        if (places > 22)
            return v;           /* below 1e-17: far under every limit */
        return (double)llround(v * pow10_exact[places]) / pow10_exact[places];
    }
    if (-places > 22)
        return v;               /* above 1e27: far over every limit */
    return (double)llround(v / pow10_exact[-places]) * pow10_exact[-places];
}

static const double *limits_of(enum iw_water_param p, enum iw_water_body body)
{
    if (p == IW_WATER_TP && body == IW_BODY_LAKE)
        return tp_lake;
    return params[p].lim;
}

/* Class of an already rounded, finite value; arguments already checked. */
static int class_of(enum iw_water_param p, enum iw_water_body body, double v)
{
    const double *lim = limits_of(p, body);

    switch (params[p].cmp) {
    case CMP_RANGE:
        return (v >= IW_WATER_PH_MIN && v <= IW_WATER_PH_MAX) ? 1 : IW_WATER_CLASS_WORSE_THAN_V;
    case CMP_NONE:
        return 0;
    case CMP_GE:
        for (int k = 0; k < 5; k++)
            if (v >= lim[k])
                return k + 1;
        return IW_WATER_CLASS_WORSE_THAN_V;
    case CMP_LE:
        /* The first class whose limit is met: shared limits give the better class. */
        for (int k = 0; k < 5; k++)
            if (v <= lim[k])
                return k + 1;
        return IW_WATER_CLASS_WORSE_THAN_V;
    }
    return IW_E_INVAL;
}

/* Exceedance of an already rounded value; arguments already checked. */
static double exceed_of(enum iw_water_param p, enum iw_water_body body, int target, double v)
{
    double lim = limits_of(p, body)[target - 1];

    switch (params[p].cmp) {
    case CMP_LE:
        return (v - lim) / lim;
    case CMP_GE:
        return (lim - v) / lim;
    case CMP_RANGE:
    case CMP_NONE:
        break;
    }
    return 0.0;
}

int iw_water_param_find(const char *metric)
{
    if (metric == NULL)
        return -1;
    for (int p = 0; p < IW_WATER_NPARAM; p++)
        if (strcmp(params[p].info.metric, metric) == 0)
            return p;
    return -1;
}

const struct iw_water_param_info *iw_water_param_info(enum iw_water_param p)
{
    return param_ok(p) ? &params[p].info : NULL;
}

const struct iw_water_class_info *iw_water_class_info(int cls)
{
    if (cls < 1 || cls > IW_WATER_CLASS_WORSE_THAN_V)
        return NULL;
    return &classes[cls - 1];
}

int iw_water_limit(enum iw_water_param p, enum iw_water_body body, int cls, double *out)
{
    if (!param_ok(p) || !body_ok(body) || cls < 1 || cls > 5 || out == NULL)
        return IW_E_INVAL;
    if (params[p].cmp == CMP_RANGE || params[p].cmp == CMP_NONE)
        return IW_E_NOTFOUND;
    *out = limits_of(p, body)[cls - 1];
    return IW_OK;
}

int iw_water_class(enum iw_water_param p, enum iw_water_body body, double value)
{
    if (!param_ok(p) || !body_ok(body) || !isfinite(value))
        return IW_E_INVAL;
    return class_of(p, body, round_sig(value));
}

bool iw_water_param_decides(enum iw_water_param p, enum iw_water_body body)
{
    if (!param_ok(p))
        return false;
    switch (params[p].decides) {
    case DECIDES_ALWAYS:
        return true;
    case DECIDES_LAKE:
        return body == IW_BODY_LAKE;
    case DECIDES_NEVER:
        break;
    }
    return false;
}

int iw_water_exceedance(enum iw_water_param p, enum iw_water_body body, int target,
                        double value, double *out)
{
    if (!param_ok(p) || !body_ok(body) || target < 1 || target > 5 || !isfinite(value) ||
        out == NULL)
        return IW_E_INVAL;
    *out = exceed_of(p, body, target, round_sig(value));
    return IW_OK;
}

int iw_water_evaluate(const struct iw_water_input *in, enum iw_water_body body, int target,
                      struct iw_water_result *out)
{
    if (out == NULL)
        return IW_E_INVAL;
    memset(out, 0, sizeof(*out));
    if (in == NULL || !body_ok(body) || target < 0 || target > 5)
        return IW_E_INVAL;

    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        if (!in->present[p])
            continue;
        if (!isfinite(in->value[p])) {
            memset(out, 0, sizeof(*out));
            return IW_E_INVAL;
        }
        double v = round_sig(in->value[p]);
        int cls = class_of((enum iw_water_param)p, body, v);

        out->value[p] = v;
        out->param_class[p] = cls;
        out->n_present++;
        if (!iw_water_param_decides((enum iw_water_param)p, body))
            continue;
        out->deciding[p] = true;
        out->n_deciding++;
        if (cls > out->cls)
            out->cls = cls;
        if (target > 0 && cls > target) {
            out->worse[out->n_worse++] = (enum iw_water_param)p;
            out->exceed[p] = exceed_of((enum iw_water_param)p, body, target, v);
        }
    }
    return IW_OK;
}
