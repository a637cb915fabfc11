/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alert JSON (SPEC §5), topics, silences. The JSON is built with cJSON so that
 * escaping and number formatting are one library's business; the member order
 * follows SPEC §5's example. Stateless and thread-safe.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/alert.h"
#include "islewatch/clock.h"
#include "islewatch/json_print.h"
#include "islewatch/standards.h"
#include "islewatch/topic.h"

const char *iw_alert_status_name(enum iw_alert_status s)
{
    return s == IW_ALERT_RESOLVED ? "resolved" : "firing";
}

/* ---- metric units and display names ------------------------------------ */

const char *iw_metric_unit(const char *metric)
{
    int w = iw_water_param_find(metric), p = iw_aqi_pollutant_find(metric);
    const char *u = NULL;

    if (w >= 0)
        u = iw_water_param_info((enum iw_water_param)w)->unit;
    else if (p >= 0)
        u = iw_aqi_pollutant_info((enum iw_aqi_pollutant)p)->unit;
    return u != NULL && *u != '\0' ? u : NULL;     /* pH is dimensionless: null */
}

const char *iw_metric_display(const char *metric)
{
    int w = iw_water_param_find(metric), p = iw_aqi_pollutant_find(metric);

    if (w >= 0)
        return iw_water_param_info((enum iw_water_param)w)->label;
    if (p >= 0)
        return iw_aqi_pollutant_info((enum iw_aqi_pollutant)p)->name;
    return metric;
}

/* ---- to JSON -------------------------------------------------------------- */

static cJSON *json_time(int64_t ms)
{
    char buf[40];
    return cJSON_CreateString(iw_rfc3339_format(ms, buf, sizeof(buf)));
}

static cJSON *json_str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *json_num_or_null(bool has, double v)
{
    return has && isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* cJSON_Add* return NULL on allocation failure; count them once at the end. */
static void add(cJSON *o, const char *name, cJSON *item, bool *ok)
{
    if (item == NULL || !cJSON_AddItemToObject(o, name, item)) {
        cJSON_Delete(item);
        *ok = false;
    }
}

int iw_alert_to_json(const struct iw_alert *a, char **out, size_t *out_len)
{
    cJSON *o, *labels, *details;
    bool ok = true;
    char *text;

    *out = NULL;
    if (a->rule == NULL || a->source == NULL || a->site == NULL || a->device == NULL
        || a->rule_hash == NULL)
        return IW_E_INVAL;
    if (a->details != NULL) {
        details = cJSON_Parse(a->details);
        if (details == NULL || !cJSON_IsObject(details)) {
            cJSON_Delete(details);
            return IW_E_INVAL;
        }
    } else {
        details = cJSON_CreateObject();
    }
    o = cJSON_CreateObject();
    labels = cJSON_CreateObject();
    if (o == NULL || labels == NULL || details == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(labels);
        cJSON_Delete(details);
        return IW_E_NOMEM;
    }
    for (size_t i = 0; i < a->n_labels; i++)
        add(labels, a->labels[i].key, cJSON_CreateString(a->labels[i].value), &ok);

    add(o, "id", cJSON_CreateString(a->id), &ok);
    add(o, "seq", cJSON_CreateNumber((double)a->seq), &ok);
    add(o, "rule", cJSON_CreateString(a->rule), &ok);
    add(o, "kind", cJSON_CreateString(iw_rule_kind_name(a->kind)), &ok);
    add(o, "status", cJSON_CreateString(iw_alert_status_name(a->status)), &ok);
    add(o, "severity", cJSON_CreateString(iw_severity_name(a->severity)), &ok);
    add(o, "source", cJSON_CreateString(a->source), &ok);
    add(o, "site", cJSON_CreateString(a->site), &ok);
    add(o, "device", cJSON_CreateString(a->device), &ok);
    add(o, "metric", json_str_or_null(a->metric), &ok);
    add(o, "value", json_num_or_null(a->has_value, a->value), &ok);
    add(o, "threshold", json_num_or_null(a->has_threshold, a->threshold), &ok);
    add(o, "unit", json_str_or_null(a->unit), &ok);
    add(o, "started_at", json_time(a->started_at), &ok);
    add(o, "ts", json_time(a->ts), &ok);
    add(o, "message", cJSON_CreateString(a->message ? a->message : ""), &ok);
    if (a->message_zh != NULL)
        add(o, "message_zh", cJSON_CreateString(a->message_zh), &ok);
    add(o, "late", cJSON_CreateBool(a->late), &ok);
    if (a->silenced)
        add(o, "silenced", cJSON_CreateTrue(), &ok);
    add(o, "rule_hash", cJSON_CreateString(a->rule_hash), &ok);
    add(o, "labels", labels, &ok);
    add(o, "details", details, &ok);
    if (a->acked) {
        cJSON *ack = cJSON_CreateObject();
        if (ack != NULL) {
            add(ack, "ts", json_time(a->ack_ts), &ok);
            if (a->ack_by != NULL)
                add(ack, "by", cJSON_CreateString(a->ack_by), &ok);
            if (a->ack_comment != NULL)
                add(ack, "comment", cJSON_CreateString(a->ack_comment), &ok);
        }
        add(o, "ack", ack, &ok);
    }
    text = ok ? iw_json_print(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return IW_E_NOMEM;
    *out = text;
    if (out_len != NULL)
        *out_len = strlen(text);
    return IW_OK;
}

/* ---- copies ---------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *ok)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

void iw_alert_free(struct iw_alert *a)
{
    if (a == NULL)
        return;
    free((char *)a->rule);
    free((char *)a->source);
    free((char *)a->site);
    free((char *)a->device);
    free((char *)a->metric);
    free((char *)a->unit);
    free((char *)a->message);
    free((char *)a->message_zh);
    free((char *)a->rule_hash);
    free((char *)a->details);
    free((char *)a->ack_by);
    free((char *)a->ack_comment);
    if (a->labels != NULL) {
        struct iw_kv *l = (struct iw_kv *)a->labels;
        for (size_t i = 0; i < a->n_labels; i++) {
            free(l[i].key);
            free(l[i].value);
        }
        free(l);
    }
    free(a);
}

int iw_alert_dup(const struct iw_alert *a, struct iw_alert **out)
{
    struct iw_alert *d = calloc(1, sizeof(*d));
    struct iw_kv *labels = NULL;
    bool ok = true;

    *out = NULL;
    if (d == NULL)
        return IW_E_NOMEM;
    *d = *a;
    d->labels = NULL;
    d->n_labels = 0;
    d->rule = dup_or_null(a->rule, &ok);
    d->source = dup_or_null(a->source, &ok);
    d->site = dup_or_null(a->site, &ok);
    d->device = dup_or_null(a->device, &ok);
    d->metric = dup_or_null(a->metric, &ok);
    d->unit = dup_or_null(a->unit, &ok);
    d->message = dup_or_null(a->message, &ok);
    d->message_zh = dup_or_null(a->message_zh, &ok);
    d->rule_hash = dup_or_null(a->rule_hash, &ok);
    d->details = dup_or_null(a->details, &ok);
    d->ack_by = dup_or_null(a->ack_by, &ok);
    d->ack_comment = dup_or_null(a->ack_comment, &ok);
    if (a->n_labels > 0) {
        labels = calloc(a->n_labels, sizeof(*labels));
        if (labels == NULL) {
            ok = false;
        } else {
            d->labels = labels;
            d->n_labels = a->n_labels;
            for (size_t i = 0; i < a->n_labels; i++) {
                labels[i].key = dup_or_null(a->labels[i].key, &ok);
                labels[i].value = dup_or_null(a->labels[i].value, &ok);
            }
        }
    }
    if (!ok) {
        iw_alert_free(d);
        return IW_E_NOMEM;
    }
    *out = d;
    return IW_OK;
}

/* ---- from JSON ------------------------------------------------------------- */

static int enum_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

struct reader {
    const cJSON *o;
    struct iw_diag *diag;
    bool ok;
};

static const cJSON *member(struct reader *r, const char *name, bool required)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(r->o, name);
    if (m == NULL && required && r->ok) {
        iw_diag_set(r->diag, NULL, 0, 0, "alert JSON: required member \"%s\" is missing", name);
        r->ok = false;
    }
    return m;
}

static void type_error(struct reader *r, const char *name, const char *want)
{
    if (r->ok)
        iw_diag_set(r->diag, NULL, 0, 0, "alert JSON: member \"%s\" must be %s", name, want);
    r->ok = false;
}

/* Required string (nullable when null_ok). Returns an owned copy or NULL. */
static char *read_str(struct reader *r, const char *name, bool required, bool null_ok)
{
    const cJSON *m = member(r, name, required);
    char *s;
    if (m == NULL || (null_ok && cJSON_IsNull(m)))
        return NULL;
    if (!cJSON_IsString(m)) {
        type_error(r, name, null_ok ? "a string or null" : "a string");
        return NULL;
    }
    s = strdup(m->valuestring);
    if (s == NULL && r->ok) {
        iw_diag_set(r->diag, NULL, 0, 0, "alert JSON: out of memory");
        r->ok = false;
    }
    return s;
}

static bool read_num(struct reader *r, const char *name, double *v)
{
    const cJSON *m = member(r, name, true);
    if (m == NULL || cJSON_IsNull(m))
        return false;
    if (!cJSON_IsNumber(m)) {
        type_error(r, name, "a number or null");
        return false;
    }
    *v = m->valuedouble;
    return true;
}

static int64_t read_time(struct reader *r, const cJSON *o, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
    int64_t ms = 0;
    if (m == NULL) {
        if (r->ok)
            iw_diag_set(r->diag, NULL, 0, 0, "alert JSON: required member \"%s\" is missing", name);
        r->ok = false;
    } else if (!cJSON_IsString(m) || iw_rfc3339_parse(m->valuestring, strlen(m->valuestring), &ms) != IW_OK) {
        type_error(r, name, "an RFC 3339 time");
    }
    return ms;
}

static int read_enum(struct reader *r, const char *name, const char *const *names, int n)
{
    const cJSON *m = member(r, name, true);
    int i;
    if (m == NULL)
        return 0;
    i = cJSON_IsString(m) ? enum_index(m->valuestring, names, n) : -1;
    if (i < 0) {
        type_error(r, name, "one of the schema's enum values");
        return 0;
    }
    return i;
}

static void read_labels(struct reader *r, struct iw_alert *a)
{
    const cJSON *m = member(r, "labels", true), *it;
    struct iw_kv *kv;
    size_t n = 0;

    if (m == NULL)
        return;
    if (!cJSON_IsObject(m)) {
        type_error(r, "labels", "an object of strings");
        return;
    }
    cJSON_ArrayForEach(it, m) n++;
    if (n == 0)
        return;
    kv = calloc(n, sizeof(*kv));
    if (kv == NULL) {
        r->ok = false;
        return;
    }
    a->labels = kv;
    a->n_labels = n;
    n = 0;
    cJSON_ArrayForEach(it, m) {
        if (!cJSON_IsString(it)) {
            type_error(r, "labels", "an object of strings");
            return;
        }
        kv[n].key = strdup(it->string);
        kv[n].value = strdup(it->valuestring);
        if (kv[n].key == NULL || kv[n].value == NULL)
            r->ok = false;
        n++;
    }
}

int iw_alert_from_json(const char *json, size_t len, struct iw_alert **out, struct iw_diag *diag)
{
    static const char *const kinds[] = { "threshold", "rate", "absence", "flag", "event",
                                         "water_quality", "air_quality" };
    static const char *const sevs[] = { "info", "warning", "major", "critical" };
    static const char *const statuses[] = { "firing", "resolved" };
    struct reader r = { .diag = diag, .ok = true };
    struct iw_alert *a;
    const cJSON *m;
    cJSON *root;
    char *id;

    *out = NULL;
    root = cJSON_ParseWithLength(json, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        iw_diag_set(diag, NULL, 0, 0, "alert JSON: not a JSON object");
        cJSON_Delete(root);
        return IW_E_INVAL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        cJSON_Delete(root);
        return IW_E_NOMEM;
    }
    r.o = root;
    id = read_str(&r, "id", true, false);
    if (id != NULL) {
        if (strlen(id) != 16)
            type_error(&r, "id", "16 hex digits");
        else
            memcpy(a->id, id, 17);
        free(id);
    }
    m = member(&r, "seq", true);
    if (m != NULL && (!cJSON_IsNumber(m) || m->valuedouble < 0))
        type_error(&r, "seq", "a non-negative integer");
    else if (m != NULL)
        a->seq = (uint64_t)m->valuedouble;
    a->rule = read_str(&r, "rule", true, false);
    a->kind = (enum iw_rule_kind)read_enum(&r, "kind", kinds, 7);
    a->status = (enum iw_alert_status)read_enum(&r, "status", statuses, 2);
    a->reason = a->status == IW_ALERT_RESOLVED ? IW_ALERT_RESOLVE : IW_ALERT_FIRE;
    a->severity = (enum iw_severity)read_enum(&r, "severity", sevs, 4);
    a->source = read_str(&r, "source", true, false);
    a->site = read_str(&r, "site", true, false);
    a->device = read_str(&r, "device", true, false);
    a->metric = read_str(&r, "metric", true, true);
    a->has_value = read_num(&r, "value", &a->value);
    a->has_threshold = read_num(&r, "threshold", &a->threshold);
    a->unit = read_str(&r, "unit", true, true);
    a->started_at = read_time(&r, root, "started_at");
    a->ts = read_time(&r, root, "ts");
    a->message = read_str(&r, "message", true, false);
    a->message_zh = read_str(&r, "message_zh", false, false);
    m = member(&r, "late", true);
    if (m != NULL && !cJSON_IsBool(m))
        type_error(&r, "late", "a boolean");
    a->late = m != NULL && cJSON_IsTrue(m);
    m = member(&r, "silenced", false);
    a->silenced = m != NULL && cJSON_IsTrue(m);
    a->rule_hash = read_str(&r, "rule_hash", true, false);
    read_labels(&r, a);
    m = member(&r, "details", true);
    if (m != NULL && !cJSON_IsObject(m))
        type_error(&r, "details", "an object");
    /* iw_json_print changes number nodes for the print and restores them. */
    else if (m != NULL && (a->details = iw_json_print((cJSON *)m)) == NULL)
        r.ok = false;
    m = member(&r, "ack", false);
    if (m != NULL && cJSON_IsObject(m)) {
        a->acked = true;
        a->ack_ts = read_time(&r, m, "ts");
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(m, "by");
        const cJSON *cm = cJSON_GetObjectItemCaseSensitive(m, "comment");
        if (cJSON_IsString(by))
            a->ack_by = strdup(by->valuestring);
        if (cJSON_IsString(cm))
            a->ack_comment = strdup(cm->valuestring);
    }
    cJSON_Delete(root);
    if (!r.ok) {
        if (diag != NULL && diag->n == 0)
            iw_diag_set(diag, NULL, 0, 0, "alert JSON: out of memory");
        iw_alert_free(a);
        return IW_E_INVAL;
    }
    *out = a;
    return IW_OK;
}

/* ---- topics ---------------------------------------------------------------- */

static const char *topic_var(const struct iw_alert *a, const char *name, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
    if (IS("severity")) return iw_severity_name(a->severity);
    if (IS("rule"))     return a->rule;
    if (IS("site"))     return a->site;
    if (IS("device"))   return a->device;
    if (IS("source"))   return a->source;
    if (IS("metric"))   return a->metric ? a->metric : "";
    if (IS("status"))   return iw_alert_status_name(a->status);
    if (IS("kind"))     return iw_rule_kind_name(a->kind);
#undef IS
    return NULL;
}

int iw_alert_topic(const char *tmpl, const struct iw_alert *a, char *buf, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return IW_E_FULL;
    for (const char *p = tmpl; *p; p++) {
        if (*p != '{') {
            if (o + 1 >= len)
                return IW_E_FULL;
            buf[o++] = *p;
            continue;
        }
        const char *end = strchr(p, '}');
        if (end == NULL)
            return IW_E_INVAL;
        const char *v = topic_var(a, p + 1, (size_t)(end - p - 1));
        if (v == NULL)
            return IW_E_INVAL;
        if (*v == '\0')
            v = "-";
        for (; *v; v++) {
            if (o + 1 >= len)
                return IW_E_FULL;
            buf[o++] = (*v == '/' || *v == '+' || *v == '#') ? '_' : *v;
        }
        p = end;
    }
    buf[o] = '\0';
    return IW_OK;
}

/* ---- silences ---------------------------------------------------------------- */

static const char *silence_field(const struct iw_alert *a, const char *key)
{
    if (strcmp(key, "rule") == 0)     return a->rule;
    if (strcmp(key, "site") == 0)     return a->site;
    if (strcmp(key, "device") == 0)   return a->device;
    if (strcmp(key, "source") == 0)   return a->source;
    if (strcmp(key, "metric") == 0)   return a->metric;
    if (strcmp(key, "severity") == 0) return iw_severity_name(a->severity);
    if (strcmp(key, "kind") == 0)     return iw_rule_kind_name(a->kind);
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i].key, key) == 0)
            return a->labels[i].value;
    return NULL;
}

bool iw_alert_silence_matches(const struct iw_silence_cfg *s, const struct iw_alert *a,
                              int64_t now_ms)
{
    if (now_ms < s->from_ms || now_ms >= s->to_ms)
        return false;
    for (size_t i = 0; i < s->n_match; i++) {
        const char *v = silence_field(a, s->match[i].key);
        if (!iw_glob_match(s->match[i].value, v ? v : ""))
            return false;
    }
    return true;
}
