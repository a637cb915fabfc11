/*
 * GB 3838-2002 classes and the 2011 single-factor evaluation, table-driven
 * from shared/standards/README.md §1 (limits typed from the README).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "islewatch/standards.h"

#define RIVER IW_BODY_RIVER
#define LAKE  IW_BODY_LAKE

/* Table 1, "≤" items (DO is "≥"); rivers unless body says otherwise. */
struct lim_row {
    enum iw_water_param p;
    enum iw_water_body body;
    bool ge;
    double lim[5];
};

static const struct lim_row rows[] = {
    { IW_WATER_DO,             RIVER, true,  { 7.5, 6, 5, 3, 2 } },
    { IW_WATER_CODMN,          RIVER, false, { 2, 4, 6, 10, 15 } },
    { IW_WATER_COD,            RIVER, false, { 15, 15, 20, 30, 40 } },
    { IW_WATER_BOD5,           RIVER, false, { 3, 3, 4, 6, 10 } },
    { IW_WATER_NH3_N,          RIVER, false, { 0.15, 0.5, 1.0, 1.5, 2.0 } },
    { IW_WATER_TP,             RIVER, false, { 0.02, 0.1, 0.2, 0.3, 0.4 } },
    { IW_WATER_TP,             LAKE,  false, { 0.01, 0.025, 0.05, 0.1, 0.2 } },
    { IW_WATER_TN,             LAKE,  false, { 0.2, 0.5, 1.0, 1.5, 2.0 } },
    { IW_WATER_TN,             RIVER, false, { 0.2, 0.5, 1.0, 1.5, 2.0 } },
    { IW_WATER_CU,             RIVER, false, { 0.01, 1.0, 1.0, 1.0, 1.0 } },
    { IW_WATER_ZN,             RIVER, false, { 0.05, 1.0, 1.0, 2.0, 2.0 } },
    { IW_WATER_FLUORIDE,       RIVER, false, { 1.0, 1.0, 1.0, 1.5, 1.5 } },
    { IW_WATER_SE,             RIVER, false, { 0.01, 0.01, 0.01, 0.02, 0.02 } },
    { IW_WATER_AS,             RIVER, false, { 0.05, 0.05, 0.05, 0.1, 0.1 } },
    { IW_WATER_HG,             RIVER, false, { 0.00005, 0.00005, 0.0001, 0.001, 0.001 } },
    { IW_WATER_CD,             RIVER, false, { 0.001, 0.005, 0.005, 0.005, 0.01 } },
    { IW_WATER_CR6,            RIVER, false, { 0.01, 0.05, 0.05, 0.05, 0.1 } },
    { IW_WATER_PB,             RIVER, false, { 0.01, 0.01, 0.05, 0.05, 0.1 } },
    { IW_WATER_CN,             RIVER, false, { 0.005, 0.05, 0.2, 0.2, 0.2 } },
    { IW_WATER_PHENOL,         RIVER, false, { 0.002, 0.002, 0.005, 0.01, 0.1 } },
    { IW_WATER_PETROLEUM,      RIVER, false, { 0.05, 0.05, 0.05, 0.5, 1.0 } },
    { IW_WATER_LAS,            RIVER, false, { 0.2, 0.2, 0.2, 0.3, 0.3 } },
    { IW_WATER_SULFIDE,        RIVER, false, { 0.05, 0.1, 0.2, 0.5, 1.0 } },
    { IW_WATER_FECAL_COLIFORM, RIVER, false, { 200, 2000, 10000, 20000, 40000 } },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const char *pname(enum iw_water_param p)
{
    return iw_water_param_info(p)->metric;
}

/* Reference class for values not within rounding distance of a limit. */
static int ref_class(const struct lim_row *r, double v)
{
    for (int k = 0; k < 5; k++)
        if (r->ge ? v >= r->lim[k] : v <= r->lim[k])
            return k + 1;
    return 6;
}

/* ---- every limit: at, just above, just below ------------------------------ */

Test(water_limits, at_and_around_every_limit)
{
    for (size_t t = 0; t < NROWS; t++) {
        const struct lim_row *r = &rows[t];
        for (int k = 0; k < 5; k++) {
            double at = r->lim[k], up = at * 1.001, down = at * 0.999;
            /* at the limit: the first (best) class with that limit */
            int want_at = 1;
            while (r->lim[want_at - 1] != at)
                want_at++;
            cr_expect_eq(want_at, ref_class(r, at));
            int got = iw_water_class(r->p, r->body, at);
            cr_expect_eq(got, want_at, "%s %s at %g: class %d, want %d", pname(r->p),
                         r->body == LAKE ? "lake" : "river", at, got, want_at);
            got = iw_water_class(r->p, r->body, up);
            cr_expect_eq(got, ref_class(r, up), "%s %g: class %d, want %d", pname(r->p), up, got,
                         ref_class(r, up));
            got = iw_water_class(r->p, r->body, down);
            cr_expect_eq(got, ref_class(r, down), "%s %g: class %d, want %d", pname(r->p), down,
                         got, ref_class(r, down));
            /* and the limit is what iw_water_limit reports */
            double lim = -1;
            cr_expect_eq(iw_water_limit(r->p, r->body, k + 1, &lim), IW_OK);
            cr_expect_eq(lim, at, "%s class %d limit %g, want %g", pname(r->p), k + 1, lim, at);
        }
        /* past class V is 劣V (DO: below V) */
        double past = r->ge ? r->lim[4] * 0.999 : r->lim[4] * 1.001;
        cr_expect_eq(iw_water_class(r->p, r->body, past), 6, "%s %g", pname(r->p), past);
    }
}

/* Hand-checked values from the README and the brief. */
Test(water_limits, named_cases)
{
    static const struct {
        enum iw_water_param p;
        enum iw_water_body body;
        double v;
        int want;
    } cases[] = {
        { IW_WATER_DO, RIVER, 7.5, 1 },      { IW_WATER_DO, RIVER, 7.49, 2 },
        { IW_WATER_DO, RIVER, 9.0, 1 },      { IW_WATER_DO, RIVER, 6.0, 2 },
        { IW_WATER_DO, RIVER, 5.0, 3 },      { IW_WATER_DO, RIVER, 4.99, 4 },
        { IW_WATER_DO, RIVER, 3.0, 4 },      { IW_WATER_DO, RIVER, 2.0, 5 },
        { IW_WATER_DO, RIVER, 1.99, 6 },     { IW_WATER_DO, RIVER, -1, 6 },
        { IW_WATER_PH, RIVER, 5.99, 6 },     { IW_WATER_PH, RIVER, 6, 1 },
        { IW_WATER_PH, RIVER, 7.4, 1 },      { IW_WATER_PH, RIVER, 9, 1 },
        { IW_WATER_PH, LAKE, 9.01, 6 },      { IW_WATER_PH, RIVER, 0, 6 },
        { IW_WATER_CN, RIVER, 0.2, 3 },      { IW_WATER_CN, RIVER, 0.21, 6 },
        { IW_WATER_CN, RIVER, 0.05, 2 },     { IW_WATER_CN, RIVER, 0.051, 3 },
        { IW_WATER_COD, RIVER, 15, 1 },      { IW_WATER_COD, RIVER, 15.1, 3 },
        { IW_WATER_COD, RIVER, 40, 5 },      { IW_WATER_COD, RIVER, 40.1, 6 },
        { IW_WATER_NH3_N, RIVER, 1.0, 3 },   { IW_WATER_NH3_N, RIVER, 1.01, 4 },
        { IW_WATER_NH3_N, RIVER, 2.31, 6 },  { IW_WATER_NH3_N, RIVER, 0, 1 },
        { IW_WATER_NH3_N, RIVER, -0.02, 1 },
        { IW_WATER_TP, RIVER, 0.05, 2 },     { IW_WATER_TP, LAKE, 0.05, 3 },
        { IW_WATER_TP, RIVER, 0.2, 3 },      { IW_WATER_TP, LAKE, 0.2, 5 },
        { IW_WATER_TP, RIVER, 0.25, 4 },     { IW_WATER_TP, LAKE, 0.25, 6 },
        { IW_WATER_TP, LAKE, 0.01, 1 },      { IW_WATER_TP, RIVER, 0.01, 1 },
        { IW_WATER_TP, LAKE, 0.02, 2 },      { IW_WATER_TP, RIVER, 0.02, 1 },
        { IW_WATER_CU, RIVER, 0.011, 2 },    { IW_WATER_CU, RIVER, 1.0, 2 },
        { IW_WATER_CU, RIVER, 1.001, 6 },    { IW_WATER_HG, RIVER, 0.00005, 1 },
        { IW_WATER_HG, RIVER, 0.00006, 3 },  { IW_WATER_HG, RIVER, 0.0011, 6 },
        { IW_WATER_FECAL_COLIFORM, RIVER, 40000, 5 },
        { IW_WATER_FECAL_COLIFORM, RIVER, 40001, 6 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        int got = iw_water_class(cases[k].p, cases[k].body, cases[k].v);
        cr_expect_eq(got, cases[k].want, "%s %s %g: class %d, want %d", pname(cases[k].p),
                     cases[k].body == LAKE ? "lake" : "river", cases[k].v, got, cases[k].want);
    }
}

/* Means of decimal inputs that miss a limit by one ulp count as the limit. */
Test(water_limits, means_hit_the_limits_exactly)
{
    double tp = (0.1 + 0.2 + 0.3) / 3;              /* 0.20000000000000004 */
    cr_assert_neq(tp, 0.2, "premise: the mean is not 0.2 in binary");
    cr_expect_eq(iw_water_class(IW_WATER_TP, RIVER, tp), 3);
    cr_expect_eq(iw_water_class(IW_WATER_NH3_N, RIVER, 1.0000000000000002), 3);
    cr_expect_eq(iw_water_class(IW_WATER_DO, RIVER, 4.999999999999999), 3);
    static const double samples[] = { 0.04, 0.05, 0.06, 0.07, 0.03 };   /* TP, lake */
    double sum = 0;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        sum += samples[i];
    double mean = sum / 5;
    cr_expect_eq(iw_water_class(IW_WATER_TP, LAKE, mean), 3, "mean %.17g is 0.05: lake III",
                 mean);
    /* six significant digits: a difference in the sixth digit still counts */
    cr_expect_eq(iw_water_class(IW_WATER_NH3_N, RIVER, 1.00001), 4);
    cr_expect_eq(iw_water_class(IW_WATER_HG, RIVER, 0.00005000001), 1);   /* 7th digit */
    cr_expect_eq(iw_water_class(IW_WATER_HG, RIVER, 0.0000500001), 3);    /* 6th digit */
    cr_expect_eq(iw_water_class(IW_WATER_HG, RIVER, 0.0000501), 3);
}

Test(water_limits, temperature_and_bad_input)
{
    cr_expect_eq(iw_water_class(IW_WATER_TEMP, RIVER, 25), 0);
    cr_expect_eq(iw_water_class(IW_WATER_NH3_N, RIVER, NAN), IW_E_INVAL);
    cr_expect_eq(iw_water_class(IW_WATER_NH3_N, RIVER, INFINITY), IW_E_INVAL);
    cr_expect_eq(iw_water_class(IW_WATER_NPARAM, RIVER, 1), IW_E_INVAL);
    cr_expect_eq(iw_water_class((enum iw_water_param)-1, RIVER, 1), IW_E_INVAL);
    cr_expect_eq(iw_water_class(IW_WATER_TP, (enum iw_water_body)2, 1), IW_E_INVAL);
    double lim;
    cr_expect_eq(iw_water_limit(IW_WATER_PH, RIVER, 3, &lim), IW_E_NOTFOUND);
    cr_expect_eq(iw_water_limit(IW_WATER_TEMP, RIVER, 3, &lim), IW_E_NOTFOUND);
    cr_expect_eq(iw_water_limit(IW_WATER_TP, RIVER, 6, &lim), IW_E_INVAL);
    cr_expect_eq(iw_water_limit(IW_WATER_TP, RIVER, 0, &lim), IW_E_INVAL);
    cr_expect_eq(iw_water_limit(IW_WATER_TP, RIVER, 3, NULL), IW_E_INVAL);
}

/* ---- evaluation ------------------------------------------------------------ */

static struct iw_water_input input(void)
{
    struct iw_water_input in;
    memset(&in, 0, sizeof(in));
    return in;
}

static void put(struct iw_water_input *in, enum iw_water_param p, double v)
{
    in->value[p] = v;
    in->present[p] = true;
}

Test(water_eval, overall_is_the_worst_deciding_item)
{
    struct iw_water_input in = input();
    struct iw_water_result r;
    put(&in, IW_WATER_PH, 7.2);        /* 1 */
    put(&in, IW_WATER_DO, 6.5);        /* II */
    put(&in, IW_WATER_CODMN, 5);       /* III */
    put(&in, IW_WATER_NH3_N, 1.2);     /* IV */
    put(&in, IW_WATER_TP, 0.15);       /* river III */
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 3, &r), IW_OK);
    cr_expect_eq(r.cls, 4);
    cr_expect_eq(r.param_class[IW_WATER_PH], 1);
    cr_expect_eq(r.param_class[IW_WATER_DO], 2);
    cr_expect_eq(r.param_class[IW_WATER_CODMN], 3);
    cr_expect_eq(r.param_class[IW_WATER_NH3_N], 4);
    cr_expect_eq(r.param_class[IW_WATER_TP], 3);
    cr_expect_eq(r.param_class[IW_WATER_COD], 0, "absent");
    cr_expect_eq(r.n_present, 5);
    cr_expect_eq(r.n_deciding, 5);
    cr_expect_eq(r.n_worse, 1);
    cr_expect_eq(r.worse[0], IW_WATER_NH3_N);
    cr_expect_float_eq(r.exceed[IW_WATER_NH3_N], 0.2, 1e-12);

    /* the same TP in a lake is V (lake IV is 0.1, V is 0.2) */
    cr_assert_eq(iw_water_evaluate(&in, LAKE, 3, &r), IW_OK);
    cr_expect_eq(r.param_class[IW_WATER_TP], 5);
    cr_expect_eq(r.cls, 5);
    cr_expect_eq(r.n_worse, 2);
    cr_expect_float_eq(r.exceed[IW_WATER_TP], 2.0, 1e-12);   /* (0.15 − 0.05) / 0.05 */
}

Test(water_eval, tn_decides_only_for_lakes)
{
    struct iw_water_input in = input();
    struct iw_water_result r;
    put(&in, IW_WATER_NH3_N, 0.4);     /* II */
    put(&in, IW_WATER_TN, 1.8);        /* V */
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 3, &r), IW_OK);
    cr_expect_eq(r.param_class[IW_WATER_TN], 5, "reported with its class");
    cr_expect_not(r.deciding[IW_WATER_TN]);
    cr_expect_eq(r.cls, 2);
    cr_expect_eq(r.n_worse, 0);
    cr_expect_eq(r.exceed[IW_WATER_TN], 0);

    cr_assert_eq(iw_water_evaluate(&in, LAKE, 3, &r), IW_OK);
    cr_expect(r.deciding[IW_WATER_TN]);
    cr_expect_eq(r.cls, 5);
    cr_expect_eq(r.n_worse, 1);
    cr_expect_eq(r.worse[0], IW_WATER_TN);
    cr_expect_float_eq(r.exceed[IW_WATER_TN], 0.8, 1e-12);

    cr_expect_not(iw_water_param_decides(IW_WATER_TN, RIVER));
    cr_expect(iw_water_param_decides(IW_WATER_TN, LAKE));
}

Test(water_eval, temperature_and_fecal_coliform_never_decide)
{
    struct iw_water_input in = input();
    struct iw_water_result r;
    put(&in, IW_WATER_TEMP, 31);
    put(&in, IW_WATER_FECAL_COLIFORM, 90000);   /* 劣V */
    for (int body = RIVER; body <= LAKE; body++) {
        cr_assert_eq(iw_water_evaluate(&in, (enum iw_water_body)body, 3, &r), IW_OK);
        cr_expect_eq(r.cls, 0, "nothing decides");
        cr_expect_eq(r.param_class[IW_WATER_FECAL_COLIFORM], 6);
        cr_expect_eq(r.param_class[IW_WATER_TEMP], 0);
        cr_expect_not(r.deciding[IW_WATER_FECAL_COLIFORM]);
        cr_expect_not(r.deciding[IW_WATER_TEMP]);
        cr_expect_eq(r.n_present, 2);
        cr_expect_eq(r.n_deciding, 0);
        cr_expect_eq(r.n_worse, 0);
    }
    put(&in, IW_WATER_COD, 16);                 /* III */
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 3, &r), IW_OK);
    cr_expect_eq(r.cls, 3);
}

/* The 21 evaluated items of the 2011 method decide in both bodies. */
Test(water_eval, evaluated_item_set)
{
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        bool never = p == IW_WATER_TEMP || p == IW_WATER_FECAL_COLIFORM;
        bool river = !never && p != IW_WATER_TN;
        cr_expect_eq(iw_water_param_decides((enum iw_water_param)p, RIVER), river, "%s",
                     pname((enum iw_water_param)p));
        cr_expect_eq(iw_water_param_decides((enum iw_water_param)p, LAKE), !never, "%s",
                     pname((enum iw_water_param)p));
    }
    int n = 0;
    for (int p = 0; p < IW_WATER_NPARAM; p++)
        n += iw_water_param_decides((enum iw_water_param)p, RIVER);
    cr_expect_eq(n, 21);
}

Test(water_eval, exceedance_multiples)
{
    struct iw_water_input in = input();
    struct iw_water_result r;
    put(&in, IW_WATER_NH3_N, 2.31);    /* 劣V: (2.31 − 1.0) / 1.0 = 1.31 */
    put(&in, IW_WATER_DO, 4);          /* IV: (5 − 4) / 5 = 0.2 */
    put(&in, IW_WATER_PH, 9.5);        /* 劣V, no multiple */
    put(&in, IW_WATER_CODMN, 6);       /* III: meets target */
    put(&in, IW_WATER_FECAL_COLIFORM, 50000);
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 3, &r), IW_OK);
    cr_expect_eq(r.cls, 6);
    cr_assert_eq(r.n_worse, 3);
    cr_expect_eq(r.worse[0], IW_WATER_PH);
    cr_expect_eq(r.worse[1], IW_WATER_DO);
    cr_expect_eq(r.worse[2], IW_WATER_NH3_N);
    cr_expect_float_eq(r.exceed[IW_WATER_NH3_N], 1.31, 1e-12);
    cr_expect_float_eq(r.exceed[IW_WATER_DO], 0.2, 1e-12);
    cr_expect_eq(r.exceed[IW_WATER_PH], 0);
    cr_expect_eq(r.exceed[IW_WATER_CODMN], 0);
    cr_expect_eq(r.exceed[IW_WATER_FECAL_COLIFORM], 0, "not deciding, not listed");

    /* target II: CODMn (III) is worse too */
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 2, &r), IW_OK);
    cr_expect_eq(r.n_worse, 4);
    cr_expect_float_eq(r.exceed[IW_WATER_CODMN], 0.5, 1e-12);   /* (6 − 4) / 4 */
    cr_expect_float_eq(r.exceed[IW_WATER_DO], 1.0 / 3, 1e-12);  /* (6 − 4) / 6 */

    /* no target: classes only */
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 0, &r), IW_OK);
    cr_expect_eq(r.cls, 6);
    cr_expect_eq(r.n_worse, 0);

    double x;
    cr_assert_eq(iw_water_exceedance(IW_WATER_FECAL_COLIFORM, RIVER, 3, 50000, &x), IW_OK);
    cr_expect_float_eq(x, 4.0, 1e-12);
    cr_assert_eq(iw_water_exceedance(IW_WATER_TP, LAKE, 3, 0.04, &x), IW_OK);
    cr_expect_float_eq(x, -0.2, 1e-12);
    cr_assert_eq(iw_water_exceedance(IW_WATER_PH, RIVER, 3, 10, &x), IW_OK);
    cr_expect_eq(x, 0);
    cr_expect_eq(iw_water_exceedance(IW_WATER_TP, LAKE, 0, 0.04, &x), IW_E_INVAL);
}

Test(water_eval, bad_input)
{
    struct iw_water_input in = input();
    struct iw_water_result r;
    put(&in, IW_WATER_NH3_N, NAN);
    cr_expect_eq(iw_water_evaluate(&in, RIVER, 3, &r), IW_E_INVAL);
    cr_expect_eq(r.cls, 0);
    cr_expect_eq(r.n_present, 0);
    in = input();
    cr_expect_eq(iw_water_evaluate(&in, RIVER, 6, &r), IW_E_INVAL);
    cr_expect_eq(iw_water_evaluate(&in, RIVER, -1, &r), IW_E_INVAL);
    cr_expect_eq(iw_water_evaluate(&in, (enum iw_water_body)5, 3, &r), IW_E_INVAL);
    cr_expect_eq(iw_water_evaluate(NULL, RIVER, 3, &r), IW_E_INVAL);
    cr_expect_eq(iw_water_evaluate(&in, RIVER, 3, NULL), IW_E_INVAL);
    cr_assert_eq(iw_water_evaluate(&in, RIVER, 3, &r), IW_OK, "empty input is fine");
    cr_expect_eq(r.cls, 0);
}

/* ---- names ------------------------------------------------------------------ */

Test(water_names, metrics)
{
    static const char *metrics[IW_WATER_NPARAM] = {
        "ph", "do", "codmn", "cod", "bod5", "nh3_n", "tp", "tn", "cu", "zn", "fluoride", "se",
        "as", "hg", "cd", "cr6", "pb", "cn", "phenol", "petroleum", "las", "sulfide",
        "fecal_coliform", "temp",
    };
    for (int p = 0; p < IW_WATER_NPARAM; p++) {
        cr_expect_eq(iw_water_param_find(metrics[p]), p, "%s", metrics[p]);
        const struct iw_water_param_info *i = iw_water_param_info((enum iw_water_param)p);
        cr_assert_not_null(i);
        cr_expect_str_eq(i->metric, metrics[p]);
        cr_expect_gt(strlen(i->name_zh), 0);
        cr_expect_gt(strlen(i->name_en), 0);
        cr_expect_gt(strlen(i->label), 0);
    }
    cr_expect_eq(iw_water_param_find("NH3_N"), -1);
    cr_expect_eq(iw_water_param_find("nh3n"), -1);
    cr_expect_eq(iw_water_param_find(""), -1);
    cr_expect_eq(iw_water_param_find(NULL), -1);
    cr_expect_null(iw_water_param_info(IW_WATER_NPARAM));

    cr_expect_str_eq(iw_water_param_info(IW_WATER_NH3_N)->name_zh, "氨氮");
    cr_expect_str_eq(iw_water_param_info(IW_WATER_NH3_N)->label, "NH3-N");
    cr_expect_str_eq(iw_water_param_info(IW_WATER_NH3_N)->unit, "mg/L");
    cr_expect_str_eq(iw_water_param_info(IW_WATER_DO)->name_zh, "溶解氧");
    cr_expect_str_eq(iw_water_param_info(IW_WATER_FECAL_COLIFORM)->unit, "个/L");
    cr_expect_str_eq(iw_water_param_info(IW_WATER_PH)->unit, "");
}

Test(water_names, classes)
{
    static const char *ascii[] = { "I", "II", "III", "IV", "V", "劣V" };
    static const char *zh[] = { "Ⅰ类", "Ⅱ类", "Ⅲ类", "Ⅳ类", "Ⅴ类", "劣Ⅴ类" };
    static const char *grade[] = { "优", "优", "良好", "轻度污染", "中度污染", "重度污染" };
    for (int c = 1; c <= 6; c++) {
        const struct iw_water_class_info *i = iw_water_class_info(c);
        cr_assert_not_null(i);
        cr_expect_eq(i->cls, c);
        cr_expect_str_eq(i->name, ascii[c - 1]);
        cr_expect_str_eq(i->name_zh, zh[c - 1]);
        cr_expect_str_eq(i->grade_zh, grade[c - 1]);
        cr_expect_gt(strlen(i->grade_en), 0);
    }
    cr_expect_null(iw_water_class_info(0));
    cr_expect_null(iw_water_class_info(7));
}
