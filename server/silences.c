/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run-time silences (see islewatch/silences.h): one list behind a mutex,
 * mirrored to the store as "silence/<id>" JSON entries. The matching itself
 * is iw_alert_silence_matches(), the same function the config's silences go
 * through, so both kinds mean exactly the same thing.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "islewatch/alert.h"
#include "islewatch/clock.h"
#include "islewatch/json_print.h"
#include "islewatch/silences.h"
#include "islewatch/store.h"
#include "config_int.h"

struct rt_silence {
    char id[IW_SILENCE_ID_LEN + 1];
    struct iw_silence_cfg s;
    char *created_by;
    int64_t created_at;
};

static struct {
    pthread_mutex_t lock;
    struct rt_silence **v;
    size_t n, cap;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *const match_keys[] = { "rule", "site", "device", "source", "severity",
                                          "metric", NULL };
static const char *const request_keys[] = { "match", "from", "to", "duration", "reason",
                                            "created_by", NULL };

static void rt_free(struct rt_silence *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->s.n_match; i++) {
        free(r->s.match[i].key);
        free(r->s.match[i].value);
    }
    free(r->s.match);
    free(r->s.reason);
    free(r->created_by);
    free(r);
}

/* ======================================================================== */
/* JSON in                                                                   */
/* ======================================================================== */

static bool has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* A time member: RFC 3339, epoch ms (number or digits), "now", "+2h"/"-1h". */
static int parse_time(const cJSON *v, const char *name, int64_t now_ms, int64_t *out,
                      struct iw_diag *diag)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9.2e15) {
            iw_diag_set(diag, NULL, 0, 0, "\"%s\": %g is not a time in epoch milliseconds",
                        name, d);
            return IW_E_INVAL;
        }
        *out = (int64_t)d;
        return IW_OK;
    }
    if (cJSON_IsString(v) && iw_time_arg_parse(v->valuestring, now_ms, out) == IW_OK)
        return IW_OK;
    iw_diag_set(diag, NULL, 0, 0, "\"%s\": expected a time: RFC 3339 (2026-11-29T10:00:00Z), "
                "epoch milliseconds, \"now\" or relative (\"+2h\")%s%s%s", name,
                cJSON_IsString(v) ? ", got \"" : "", cJSON_IsString(v) ? v->valuestring : "",
                cJSON_IsString(v) ? "\"" : "");
    return IW_E_INVAL;
}

static int parse_match(const cJSON *m, struct iw_silence_cfg *s, struct iw_diag *diag)
{
    const cJSON *it;
    int n = cJSON_GetArraySize(m);

    if (!cJSON_IsObject(m) || n == 0) {
        iw_diag_set(diag, NULL, 0, 0, "\"match\": expected an object with at least one of rule, "
                    "site, device, source, severity, metric (values are globs, e.g. "
                    "{\"site\":\"dongtan\",\"rule\":\"camera-*\"}); an empty match would "
                    "silence everything");
        return IW_E_INVAL;
    }
    s->match = calloc((size_t)n, sizeof(*s->match));
    if (s->match == NULL)
        return IW_E_NOMEM;
    cJSON_ArrayForEach(it, m) {
        bool known = false;
        for (size_t i = 0; match_keys[i] != NULL; i++)
            known |= strcmp(it->string, match_keys[i]) == 0;
        if (!known) {
            iw_diag_set(diag, NULL, 0, 0, "\"match\": unknown key \"%s\"; use rule, site, "
                        "device, source, severity or metric", it->string);
            return IW_E_INVAL;
        }
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
            iw_diag_set(diag, NULL, 0, 0, "\"match.%s\": expected a non-empty string (a glob)",
                        it->string);
            return IW_E_INVAL;
        }
        /* As a silence of the config file is checked: one topic level, no '/',
         * '+' or '#' (no alert's site, rule, ... has them: it would match nothing). */
        char why[256];
        if (!iw__cfg_check_glob(it->valuestring, 1, 1, why, sizeof(why))) {
            iw_diag_set(diag, NULL, 0, 0, "\"match.%s\": %s", it->string, why);
            return IW_E_INVAL;
        }
        if (strcmp(it->string, "severity") == 0 && !has_glob(it->valuestring) &&
            iw_severity_parse(it->valuestring) < 0) {
            iw_diag_set(diag, NULL, 0, 0, "\"match.severity\": \"%s\" is not one of info, "
                        "warning, major, critical", it->valuestring);
            return IW_E_INVAL;
        }
        struct iw_kv *kv = &s->match[s->n_match++];
        kv->key = strdup(it->string);
        kv->value = strdup(it->valuestring);
        if (kv->key == NULL || kv->value == NULL)
            return IW_E_NOMEM;
    }
    return IW_OK;
}

static int opt_string(const cJSON *o, const char *name, char **out, struct iw_diag *diag)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL || cJSON_IsNull(v))
        return IW_OK;
    if (!cJSON_IsString(v)) {
        iw_diag_set(diag, NULL, 0, 0, "\"%s\": expected a string", name);
        return IW_E_INVAL;
    }
    *out = strdup(v->valuestring);
    return *out ? IW_OK : IW_E_NOMEM;
}

/*
 * An API request names only keys we use, and not both ends of the same
 * thing: a misspelt "duraton" or a "to" that silently beats "duration"
 * would leave a silence other than the one the operator asked for.
 */
static int check_request_keys(const cJSON *o, struct iw_diag *diag)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, o) {
        bool known = false;
        for (size_t i = 0; request_keys[i] != NULL; i++)
            known |= strcmp(it->string, request_keys[i]) == 0;
        if (!known) {
            iw_diag_set(diag, NULL, 0, 0, "unknown key \"%s\"; a silence has match, from, to "
                        "or duration, reason and created_by", it->string);
            return IW_E_INVAL;
        }
    }
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "to");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(o, "duration");
    if (to != NULL && !cJSON_IsNull(to) && dur != NULL && !cJSON_IsNull(dur)) {
        iw_diag_set(diag, NULL, 0, 0, "\"to\" and \"duration\" both given: send either the end "
                    "time or the duration");
        return IW_E_INVAL;
    }
    return IW_OK;
}

/*
 * Fill r from an object. `stored`: an entry read back from the store, where
 * id, from and to are always present (null meaning unbounded); otherwise an
 * API request, where from defaults to now and to (or duration) to never.
 */
static int parse_silence(const cJSON *o, bool stored, int64_t now_ms, struct rt_silence *r,
                         struct iw_diag *diag)
{
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "from");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "to");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(o, "duration");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(o, "created_at");
    int rc;

    if (!cJSON_IsObject(o)) {
        iw_diag_set(diag, NULL, 0, 0, "expected a JSON object such as {\"match\":{\"site\":"
                    "\"dongtan\"},\"duration\":\"2h\",\"reason\":\"maintenance\"}");
        return IW_E_INVAL;
    }
    if (!stored && (rc = check_request_keys(o, diag)) != IW_OK)
        return rc;
    if ((rc = parse_match(cJSON_GetObjectItemCaseSensitive(o, "match"), &r->s, diag)) != IW_OK)
        return rc;
    r->s.from_ms = stored ? INT64_MIN : now_ms;
    r->s.to_ms = INT64_MAX;
    if (from != NULL && !cJSON_IsNull(from) &&
        (rc = parse_time(from, "from", now_ms, &r->s.from_ms, diag)) != IW_OK)
        return rc;
    if (to != NULL && !cJSON_IsNull(to)) {
        if ((rc = parse_time(to, "to", now_ms, &r->s.to_ms, diag)) != IW_OK)
            return rc;
    } else if (!stored && dur != NULL && !cJSON_IsNull(dur)) {
        int64_t d;
        if (!cJSON_IsString(dur) || iw_duration_parse(dur->valuestring, &d) != IW_OK || d <= 0) {
            iw_diag_set(diag, NULL, 0, 0, "\"duration\": expected a positive duration such as "
                        "\"2h\" or \"30m\"");
            return IW_E_INVAL;
        }
        r->s.to_ms = r->s.from_ms + d;
    }
    /* Neither: open-ended, as a silence in the config may be; DELETE ends it. */
    if (!stored && r->s.to_ms <= r->s.from_ms) {
        iw_diag_set(diag, NULL, 0, 0, "\"to\" must be after \"from\"");
        return IW_E_INVAL;
    }
    if (!stored && r->s.to_ms <= now_ms) {
        iw_diag_set(diag, NULL, 0, 0, "\"to\" is in the past: the silence would never apply");
        return IW_E_INVAL;
    }
    if ((rc = opt_string(o, "reason", &r->s.reason, diag)) != IW_OK ||
        (rc = opt_string(o, "created_by", &r->created_by, diag)) != IW_OK)
        return rc;
    r->created_at = now_ms;
    if (stored) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (!cJSON_IsString(id) || strlen(id->valuestring) != IW_SILENCE_ID_LEN) {
            iw_diag_set(diag, NULL, 0, 0, "\"id\": missing or not %d hex digits",
                        IW_SILENCE_ID_LEN);
            return IW_E_INVAL;
        }
        memcpy(r->id, id->valuestring, IW_SILENCE_ID_LEN + 1);
        if (created != NULL && parse_time(created, "created_at", now_ms, &r->created_at,
                                          diag) != IW_OK)
            return IW_E_INVAL;
    }
    return IW_OK;
}

/* ======================================================================== */
/* JSON out                                                                  */
/* ======================================================================== */

static cJSON *time_or_null(int64_t ms)
{
    char buf[40];
    if (ms == INT64_MIN || ms == INT64_MAX)
        return cJSON_CreateNull();
    return cJSON_CreateString(iw_rfc3339_format(ms, buf, sizeof(buf)));
}

static cJSON *silence_obj(const char *id, const struct iw_silence_cfg *s, const char *by,
                          int64_t created_at, const char *origin, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject();
    if (o == NULL || m == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(m);
        return NULL;
    }
    cJSON_AddItemToObject(o, "id", id ? cJSON_CreateString(id) : cJSON_CreateNull());
    for (size_t i = 0; i < s->n_match; i++)
        cJSON_AddStringToObject(m, s->match[i].key, s->match[i].value);
    cJSON_AddItemToObject(o, "match", m);
    cJSON_AddItemToObject(o, "from", time_or_null(s->from_ms));
    cJSON_AddItemToObject(o, "to", time_or_null(s->to_ms));
    cJSON_AddItemToObject(o, "reason", s->reason ? cJSON_CreateString(s->reason)
                                                 : cJSON_CreateNull());
    if (origin == NULL || strcmp(origin, "config") != 0) {
        cJSON_AddItemToObject(o, "created_by", by ? cJSON_CreateString(by) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "created_at", time_or_null(created_at));
    }
    if (origin != NULL) {
        cJSON_AddStringToObject(o, "source", origin);
        cJSON_AddBoolToObject(o, "active", now_ms >= s->from_ms && now_ms < s->to_ms);
    }
    return o;
}

/* ======================================================================== */
/* The list                                                                  */
/* ======================================================================== */

/* Caller holds g.lock. */
static int list_push(struct rt_silence *r)
{
    if (g.n == g.cap) {
        size_t cap = g.cap ? g.cap * 2 : 16;
        struct rt_silence **nv = realloc(g.v, cap * sizeof(*nv));
        if (nv == NULL)
            return IW_E_NOMEM;
        g.v = nv;
        g.cap = cap;
    }
    g.v[g.n++] = r;
    return IW_OK;
}

/* Caller holds g.lock. */
static void list_clear(void)
{
    for (size_t i = 0; i < g.n; i++)
        rt_free(g.v[i]);
    g.n = 0;
}

static void key_of(const char *id, char *buf, size_t len) { snprintf(buf, len, "silence/%s", id); }

/*
 * Forget the silences that ended by now_ms, from the store too (one that
 * cannot be deleted there stays). Caller holds g.lock. Only when the list is
 * full: until then, ended silences stay listed ("active": false).
 */
static void drop_expired(struct iw_store *st, int64_t now_ms)
{
    char key[64];
    size_t kept = 0;

    for (size_t i = 0; i < g.n; i++) {
        struct rt_silence *r = g.v[i];
        if (r->s.to_ms <= now_ms) {
            key_of(r->id, key, sizeof(key));
            if (st == NULL || iw_store_meta_delete(st, key) == IW_OK) {
                rt_free(r);
                continue;
            }
        }
        g.v[kept++] = r;
    }
    g.n = kept;
}

struct load_ctx {
    struct iw_diag *diag;
    size_t loaded;
};

/* Called with g.lock held (from iw_silences_load). */
static int load_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct load_ctx *lc = ctx;
    struct iw_diag one = {0};
    struct rt_silence *r = calloc(1, sizeof(*r));
    cJSON *o = cJSON_ParseWithLength(val, vlen);
    int rc = r == NULL ? IW_E_NOMEM : parse_silence(o, true, iw_now_ms(), r, &one);

    if (rc == IW_OK)
        rc = list_push(r);
    if (rc != IW_OK) {
        iw_diag_add(lc->diag, NULL, 0, 0, "stored silence %.*s skipped: %s", (int)klen, key,
                    o == NULL ? "not JSON" : iw_diag_first(&one));
        rt_free(r);
    } else {
        lc->loaded++;
    }
    iw_diag_fini(&one);
    cJSON_Delete(o);
    return 0;
}

int iw_silences_load(struct iw_store *st, struct iw_diag *diag)
{
    struct load_ctx lc = { diag, 0 };
    int rc = IW_OK;

    pthread_mutex_lock(&g.lock);
    list_clear();
    if (st != NULL)
        rc = iw_store_meta_scan(st, "silence/", load_cb, &lc);
    pthread_mutex_unlock(&g.lock);
    if (rc != IW_OK)
        iw_diag_add(diag, NULL, 0, 0, "cannot read the stored silences: %s", iw_strerror(rc));
    return rc == IW_OK ? IW_OK : IW_E_STORE;
}

static int new_id(char *out)
{
    unsigned char rnd[IW_SILENCE_ID_LEN / 2];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return IW_E_IO;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    return IW_OK;
}

int iw_silences_create(struct iw_store *st, const char *json, size_t len, const char *default_by,
                       int64_t now_ms, char id_out[IW_SILENCE_ID_LEN + 1], struct iw_diag *diag)
{
    cJSON *o = iw_json_parse_whole(json, len), *out = NULL;
    struct rt_silence *r = calloc(1, sizeof(*r));
    char key[64], *text = NULL;
    int rc;

    id_out[0] = '\0';
    if (r == NULL) {
        rc = IW_E_NOMEM;
        goto done;
    }
    if (o == NULL) {
        iw_diag_set(diag, NULL, 0, 0, "the body is not valid JSON; send an object such as "
                    "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"2h\",\"reason\":\"...\"}");
        rc = IW_E_INVAL;
        goto done;
    }
    /* cJSON ends a string at an escaped NUL: "a\u0000b" would silently
     * become a silence of "a". */
    if (memmem(json, len, "\\u0000", 6) != NULL) {
        iw_diag_set(diag, NULL, 0, 0, "the body has a NUL character (\\u0000) in a string; "
                    "names and reasons cannot hold one");
        rc = IW_E_INVAL;
        goto done;
    }
    if ((rc = parse_silence(o, false, now_ms, r, diag)) != IW_OK)
        goto done;
    if (r->created_by == NULL && default_by != NULL && (r->created_by = strdup(default_by)) == NULL) {
        rc = IW_E_NOMEM;
        goto done;
    }
    if ((rc = new_id(r->id)) != IW_OK) {
        iw_diag_set(diag, NULL, 0, 0, "cannot draw a random silence id");
        goto done;
    }
    out = silence_obj(r->id, &r->s, r->created_by, r->created_at, NULL, now_ms);
    if (out == NULL || (text = iw_json_print(out)) == NULL) {
        rc = IW_E_NOMEM;
        goto done;
    }
    pthread_mutex_lock(&g.lock);
    if (g.n >= IW_SILENCES_MAX)
        drop_expired(st, now_ms);
    if (g.n >= IW_SILENCES_MAX) {
        rc = IW_E_FULL;
        iw_diag_set(diag, NULL, 0, 0, "there are already %d run-time silences, none of them "
                    "ended; delete some (DELETE /api/v1/silences/ID) first", IW_SILENCES_MAX);
    } else {
        key_of(r->id, key, sizeof(key));
        /* Persist first: a silence the API confirmed must survive a restart. */
        rc = st != NULL ? iw_store_meta_put(st, key, text, strlen(text)) : IW_OK;
        if (rc != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "cannot store the silence: %s", iw_strerror(rc));
            rc = IW_E_STORE;
        } else if ((rc = list_push(r)) == IW_OK) {
            memcpy(id_out, r->id, sizeof(r->id));
            r = NULL;
        }
    }
    pthread_mutex_unlock(&g.lock);
done:
    rt_free(r);
    cJSON_Delete(o);
    cJSON_Delete(out);
    free(text);
    return rc;
}

int iw_silences_delete(struct iw_store *st, const char *id)
{
    char key[64];
    int rc = IW_E_NOTFOUND;

    pthread_mutex_lock(&g.lock);
    for (size_t i = 0; i < g.n; i++) {
        if (strcmp(g.v[i]->id, id) != 0)
            continue;
        key_of(id, key, sizeof(key));
        rc = st != NULL ? iw_store_meta_delete(st, key) : IW_OK;
        if (rc != IW_OK) {
            rc = IW_E_STORE;
            break;
        }
        rt_free(g.v[i]);
        memmove(&g.v[i], &g.v[i + 1], (g.n - i - 1) * sizeof(g.v[0]));
        g.n--;
        break;
    }
    pthread_mutex_unlock(&g.lock);
    return rc;
}

int iw_silences_list_json(const struct iw_config *cfg, int64_t now_ms, char **out)
{
    cJSON *arr = cJSON_CreateArray();
    bool ok = arr != NULL;

    *out = NULL;
    for (size_t i = 0; ok && cfg != NULL && i < cfg->n_silences; i++) {
        cJSON *o = silence_obj(NULL, &cfg->silences[i], NULL, 0, "config", now_ms);
        ok = o != NULL && cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_lock(&g.lock);
    for (size_t i = 0; ok && i < g.n; i++) {
        const struct rt_silence *r = g.v[i];
        cJSON *o = silence_obj(r->id, &r->s, r->created_by, r->created_at, "api", now_ms);
        ok = o != NULL && cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&g.lock);
    if (ok)
        *out = iw_json_print(arr);
    cJSON_Delete(arr);
    return *out != NULL ? IW_OK : IW_E_NOMEM;
}

bool iw_silences_match(const struct iw_alert *a, int64_t now_ms)
{
    bool hit = false;

    pthread_mutex_lock(&g.lock);
    for (size_t i = 0; !hit && i < g.n; i++)
        hit = iw_alert_silence_matches(&g.v[i]->s, a, now_ms);
    pthread_mutex_unlock(&g.lock);
    return hit;
}

void iw_silences_reset(void)
{
    pthread_mutex_lock(&g.lock);
    list_clear();
    free(g.v);
    g.v = NULL;
    g.cap = 0;
    pthread_mutex_unlock(&g.lock);
}
