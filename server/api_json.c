/* JSON answers of the reading API, from the store (see api_json.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "islewatch/api_json.h"
#include "islewatch/clock.h"
#include "islewatch/daemon.h"
#include "islewatch/json_print.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"

int iw_agg_parse(const char *s)
{
    static const char *const names[] = { "raw", "avg", "min", "max", "sum", "count", "last" };
    for (int i = 0; i < 7; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    if (strcmp(s, "mean") == 0)
        return IW_Q_AVG;
    return -1;
}

static int series_cb(void *ctx, const struct iw_series_info *si)
{
    cJSON *arr = ctx, *o = cJSON_CreateObject();
    if (o == NULL)
        return 1;
    cJSON_AddStringToObject(o, "series", si->series->name);
    cJSON_AddNumberToObject(o, "first", (double)si->first);
    cJSON_AddNumberToObject(o, "last", (double)si->last);
    cJSON_AddNumberToObject(o, "count", (double)si->count);
    cJSON_AddItemToArray(arr, o);
    return 0;
}

static int finish(cJSON *root, char **out)
{
    *out = iw_json_print(root);
    cJSON_Delete(root);
    return *out ? IW_OK : IW_E_NOMEM;
}

static int series_json(struct iw_store *st, const char *glob, bool devices, char **out)
{
    cJSON *arr = cJSON_CreateArray();
    *out = NULL;
    if (arr == NULL)
        return IW_E_NOMEM;
    int rc = devices ? iw_store_device_list(st, glob, series_cb, arr)
                     : iw_store_series_list(st, glob, series_cb, arr);
    if (rc != IW_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    return finish(arr, out);
}

int iw_api_series_json(struct iw_store *st, const char *glob, char **out)
{
    return series_json(st, glob, false, out);
}

int iw_api_device_series_json(struct iw_store *st, const char *glob, char **out)
{
    return series_json(st, glob, true, out);
}

/*
 * A query's answer is printed as its points are read, into the one text it
 * is sent as: as cJSON nodes, a point took three of them (~240 bytes) for
 * ~25 bytes of text, so a 1,000,000-point answer held ~250 MB while it was
 * built (audit: 32 concurrent queries took the daemon to 4.3 GB). The text
 * is what cJSON printed, byte for byte: numbers as iw_json_print writes them
 * (the shortest exact text from 15 digits up; -0 as 0), names escaped by
 * cJSON itself.
 */
struct text {
    char *p;
    size_t n, cap;
    bool oom;
};

static void text_put(struct text *t, const char *s, size_t len)
{
    if (!t->oom && !iw_append(&t->p, &t->n, &t->cap, s, len))
        t->oom = true;
}

/* One point, [T,V], after a comma unless *first: V null when not finite
 * (never stored, but be safe). */
static void text_point(struct text *t, bool *first, int64_t ts, double v)
{
    char buf[80], num[40];
    int n;

    if (!isfinite(v))
        snprintf(num, sizeof(num), "null");
    else if (v == 0)
        snprintf(num, sizeof(num), "0");
    else
        iw_num_shortest(v, num, sizeof(num));
    n = snprintf(buf, sizeof(buf), "%s[%lld,%s]", *first ? "" : ",", (long long)ts, num);
    *first = false;
    text_put(t, buf, (size_t)n);
}

struct q_ctx {
    struct text *out;                   /* the answer: "[T,V],..." of this series go on it */
    bool first;
    enum iw_agg agg;
    struct text flags;                  /* "[T,"F"],..." of the flagged points; empty: none */
    size_t *left;                       /* points the query may still add (all series) */
};

/* One more point, if the query's bound allows it (callbacks stop at false). */
static bool take_point(struct q_ctx *q)
{
    if (*q->left == 0 || q->out->oom || q->flags.oom)
        return false;
    (*q->left)--;
    return true;
}

static int raw_cb(void *ctx, const struct iw_point *p)
{
    struct q_ctx *q = ctx;
    if (!take_point(q))
        return 1;
    text_point(q->out, &q->first, p->ts, p->value);
    /* SPEC §6 gives points as [T,V]: a flag goes beside them, not into the pair. */
    if (p->flag) {
        char buf[48];
        int n = snprintf(buf, sizeof(buf), "%s[%lld,\"%c\"]", q->flags.n > 0 ? "," : "",
                         (long long)p->ts, p->flag);
        text_put(&q->flags, buf, (size_t)n);
    }
    return 0;
}

/* A sum or mean of decimal samples to the 15 significant digits they were
 * written in: 6.4, not the binary sum's 6.3999999999999995. */
static double sig15(double v)
{
    return iw_num_round_sig(v, 15);
}

/* The decimal exponent of a (> 0) as %.15g writes it: 2 for 123.4. */
static int dec_exp(double a)
{
    char buf[40];
    snprintf(buf, sizeof(buf), "%.14e", a);
    const char *e = strchr(buf, 'e');
    return e != NULL ? atoi(e + 1) : 0;
}

/*
 * A bucket's sum to the 15 significant digits of its largest sample, not of
 * itself: a sum that cancels has no digits below those (0.1 + 0.2 - 0.3 is 0,
 * not the binary 5.55e-17; 15000.12 + 5.3 - 15000.12 is 5.3, not 5.29999999999927).
 */
static double bucket_sum(const struct iw_rollup *r)
{
    double big = fmax(fabs(r->min), fabs(r->max));
    if (!isfinite(r->sum) || !isfinite(big) || fabs(r->sum) >= big)
        return sig15(r->sum);         /* no cancellation (samples of one sign, among others) */
    int e_big = dec_exp(big), digits = 15 - (e_big - dec_exp(fabs(r->sum)));
    if (digits > 15)
        digits = 15;
    if (digits < 1) {                 /* below the last digit of the largest sample */
        double unit = pow(10.0, e_big - 14);
        return fabs(r->sum) < unit / 2 ? 0.0 : copysign(unit, r->sum);
    }
    return iw_num_round_sig(r->sum, digits);
}

static int agg_cb(void *ctx, const struct iw_rollup *r)
{
    struct q_ctx *q = ctx;
    double v;
    switch (q->agg) {
    case IW_Q_MIN:   v = r->min; break;
    case IW_Q_MAX:   v = r->max; break;
    /* One sample, or samples all equal, have no binary noise to round away:
     * their sum and mean are the sample itself, to every digit it has. */
    case IW_Q_SUM:   v = r->count == 1 ? r->sum : bucket_sum(r); break;
    case IW_Q_COUNT: v = (double)r->count; break;
    case IW_Q_LAST:  v = r->last; break;
    default:         v = r->min == r->max ? r->min : sig15(bucket_sum(r) / (double)r->count); break;
    }
    if (!take_point(q))
        return 1;
    text_point(q->out, &q->first, r->ts, v);
    return 0;
}

static int name_cb(void *ctx, const struct iw_series *s)
{
    cJSON *names = ctx;
    cJSON_AddItemToArray(names, cJSON_CreateNumber(s->id));
    return 0;
}

static int device_id_cb(void *ctx, const struct iw_series_info *si)
{
    return name_cb(ctx, si->series);
}

static int query_json(struct iw_store *st, const char *glob, bool devices, int64_t from,
                      int64_t to, int64_t step, enum iw_agg agg, size_t max_points, char **out)
{
    cJSON *ids = cJSON_CreateArray(), *id;
    size_t left = max_points > 0 ? max_points + 1 : SIZE_MAX;   /* one more: over the bound */
    struct text all = { 0 };
    bool any = false;
    int rc = IW_OK;

    *out = NULL;
    if (ids == NULL)
        return IW_E_NOMEM;
    /* The range is inclusive at both ends: --from T --to T gives the point at T. */
    if (to < INT64_MAX)
        to++;
    if (from >= to || step < 0 || (devices && step != 0)) {
        cJSON_Delete(ids);
        return IW_E_INVAL;
    }
    /* Not iw_store_series_list: a series whose raw points expired still has rollups. */
    rc = devices ? iw_store_device_list(st, glob, device_id_cb, ids)
                 : iw_store_series_match(st, glob, name_cb, ids);
    text_put(&all, "[", 1);
    cJSON_ArrayForEach(id, ids) {
        if (rc != IW_OK)
            break;
        const struct iw_series *s = iw_store_series_by_id(st, (uint32_t)id->valuedouble);
        struct q_ctx q = { .out = &all, .first = true, .agg = agg, .left = &left };
        cJSON *name = s != NULL ? cJSON_CreateString(s->name) : NULL;
        char *qname = name != NULL ? cJSON_PrintUnformatted(name) : NULL;
        size_t mark = all.n;                        /* a series without points leaves none */
        cJSON_Delete(name);
        if (s == NULL)
            continue;
        if (qname == NULL) {
            rc = IW_E_NOMEM;
            break;
        }
        text_put(&all, any ? ",{\"series\":" : "{\"series\":", any ? 11 : 10);
        text_put(&all, qname, strlen(qname));
        text_put(&all, ",\"points\":[", 11);
        free(qname);
        if (step > 0)
            rc = iw_store_read_agg(st, s->id, from, to, step, agg_cb, &q);
        else
            rc = iw_store_read_points(st, s->id, from, to, raw_cb, &q);
        if (q.first) {
            all.n = mark;                           /* no point: not listed */
        } else {
            text_put(&all, "]", 1);
            if (q.flags.n > 0) {
                text_put(&all, ",\"flags\":[", 10);
                text_put(&all, q.flags.p, q.flags.n);
                text_put(&all, "]", 1);
            }
            text_put(&all, "}", 1);
            any = true;
        }
        free(q.flags.p);
        if (rc == IW_OK && (all.oom || q.flags.oom))
            rc = IW_E_NOMEM;
        if (rc == IW_OK && left == 0)
            rc = IW_E_FULL;
    }
    cJSON_Delete(ids);
    text_put(&all, "]", 1);
    if (rc == IW_OK && all.oom)
        rc = IW_E_NOMEM;
    if (rc != IW_OK) {
        free(all.p);
        return rc;
    }
    *out = all.p;
    return IW_OK;
}

int iw_api_query_json(struct iw_store *st, const char *glob, int64_t from, int64_t to,
                      int64_t step, enum iw_agg agg, size_t max_points, char **out)
{
    return query_json(st, glob, false, from, to, step, agg, max_points, out);
}

int iw_api_device_points_json(struct iw_store *st, const char *glob, int64_t from, int64_t to,
                              size_t max_points, char **out)
{
    return query_json(st, glob, true, from, to, 0, IW_Q_RAW, max_points, out);
}

struct alerts_ctx {
    cJSON *arr;
    int64_t since;
    const char *rule;
    size_t limit;
};

static int alert_item(struct alerts_ctx *a, const char *json, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (o == NULL)
        return 0;
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(o, "rule");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
    int64_t t = 0;
    if (cJSON_IsString(ts) && iw_rfc3339_parse(ts->valuestring, strlen(ts->valuestring), &t) != IW_OK)
        t = 0;
    bool rule_ok = a->rule == NULL
                   || (cJSON_IsString(rule) && iw_glob_match(a->rule, rule->valuestring));
    if (!rule_ok || t < a->since) {
        cJSON_Delete(o);
        return 0;
    }
    cJSON_AddItemToArray(a->arr, o);
    if (a->limit > 0 && (size_t)cJSON_GetArraySize(a->arr) > a->limit)
        cJSON_DeleteItemFromArray(a->arr, 0);            /* keep the newest */
    return 0;
}

static int hist_item(void *ctx, uint64_t seq, const char *json, size_t len)
{
    (void)seq;
    return alert_item(ctx, json, len);
}

static int active_item(void *ctx, const char *json, size_t len)
{
    return alert_item(ctx, json, len);
}

static double seq_of(const cJSON *o)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "seq"));
}

static int seq_cmp(const void *x, const void *y)
{
    double a = seq_of(*(cJSON *const *)x), b = seq_of(*(cJSON *const *)y);
    return (a > b) - (a < b);
}

/*
 * The firing alerts are stored by id: put them in seq order, as the history
 * is, then keep the newest `limit`. Silenced ones share the seq of the last
 * published alert; their order among equals does not matter.
 */
static int sort_by_seq(cJSON *arr, size_t limit)
{
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    cJSON **v = malloc((n ? n : 1) * sizeof(*v)), *it;

    if (v == NULL)
        return IW_E_NOMEM;
    while ((it = cJSON_DetachItemFromArray(arr, 0)) != NULL)
        v[i++] = it;
    iw_sort(v, n, sizeof(*v), seq_cmp);
    for (i = 0; i < n; i++) {
        /* n > limit first: n - limit is unsigned (a limit above n keeps all). */
        if (limit > 0 && n > limit && i < n - limit)
            cJSON_Delete(v[i]);
        else
            cJSON_AddItemToArray(arr, v[i]);
    }
    free(v);
    return IW_OK;
}

int iw_api_alerts_json(struct iw_store *st, bool active, int64_t since, const char *rule,
                       size_t limit, char **out)
{
    struct alerts_ctx a = { cJSON_CreateArray(), since, rule, active ? 0 : limit };
    int rc;

    *out = NULL;
    if (a.arr == NULL)
        return IW_E_NOMEM;
    rc = active ? iw_alert_active_scan(st, active_item, &a)
                : iw_alert_history_scan(st, 0, true, hist_item, &a);
    if (rc == IW_OK && active)
        rc = sort_by_seq(a.arr, limit);
    if (rc != IW_OK) {
        cJSON_Delete(a.arr);
        return rc;
    }
    return finish(a.arr, out);
}
