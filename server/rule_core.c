/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule engine core: the instance table, the deadline heap, the common
 * inactive -> pending -> firing -> resolved machine, alert emission and the
 * stored state records. Kinds (rule_eval.c, rule_water.c, rule_air.c) decide
 * *whether* a condition holds; this file decides what that means for the
 * instance and what the outside world hears. Engine thread only.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/json_print.h"
#include "rule_int.h"

/* ==========================================================================
 * Hashing and the string map
 * ======================================================================== */

uint64_t iw__hash(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t key_hash(const char *key)
{
    return iw__hash(key, strlen(key), IW_FNV_SEED);
}

void *iw__smap_get(const struct smap *m, const char *key)
{
    uint64_t h;
    if (m->cap == 0)
        return NULL;
    h = key_hash(key);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const struct smap_slot *s = &m->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->h == h && strcmp(s->key, key) == 0)
            return s->val;
    }
}

static void smap_insert(struct smap_slot *slots, size_t cap, uint64_t h, const char *key, void *val)
{
    size_t i = h & (cap - 1);
    while (slots[i].key != NULL)
        i = (i + 1) & (cap - 1);
    slots[i] = (struct smap_slot){ h, key, val };
}

int iw__smap_put(struct smap *m, const char *key, void *val)
{
    /* Grow at 50 % load so probe runs stay short. */
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct smap_slot *s = calloc(cap, sizeof(*s));
        if (s == NULL)
            return IW_E_NOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key != NULL)
                smap_insert(s, cap, m->slots[i].h, m->slots[i].key, m->slots[i].val);
        free(m->slots);
        m->slots = s;
        m->cap = cap;
    }
    smap_insert(m->slots, m->cap, key_hash(key), key, val);
    m->n++;
    return IW_OK;
}

void iw__smap_fini(struct smap *m)
{
    free(m->slots);
    *m = (struct smap){ 0 };
}

/* ==========================================================================
 * Small helpers
 * ======================================================================== */

bool iw__flagged(char flag)
{
    return flag != 0 && flag != 'N';
}

bool iw__late_at(const struct iw_rules_engine *e, int64_t ts, int64_t recv_ms)
{
    return recv_ms - ts > e->cfg->alerts.live_window_ms;
}

bool iw__late(const struct iw_rules_engine *e, const struct iw_rsample *s)
{
    return iw__late_at(e, s->ts, s->recv_ms);
}

double iw__round_sig(double v, int digits)
{
    return iw_num_round_sig(v, digits);
}

char *iw__fmt_num(double v, char *buf, size_t len)
{
    return iw_template_num(v, buf, len);
}

char *iw__fmt_dur(int64_t ms, char *buf, size_t len)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        { IW_MS_PER_DAY, "d" }, { IW_MS_PER_HOUR, "h" }, { IW_MS_PER_MIN, "m" }, { 1000, "s" },
    };
    size_t o = 0;

    buf[0] = '\0';
    if (ms % 1000 != 0 || ms <= 0) {
        snprintf(buf, len, "%" PRId64 "ms", ms);
        return buf;
    }
    for (size_t i = 0; i < IW_ARRAY_LEN(units) && o < len; i++)
        if (ms >= units[i].ms) {
            int n = snprintf(buf + o, len - o, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
            o += n > 0 ? (size_t)n : 0;
            ms %= units[i].ms;
        }
    return buf;
}

cJSON *iw__json_time(int64_t ms)
{
    char buf[40];
    return cJSON_CreateString(iw_rfc3339_format(ms, buf, sizeof(buf)));
}

void iw__ev_var(struct evidence *ev, const char *name, const char *value)
{
    size_t n = strlen(value) + 1;
    if (ev->n_vars == IW_ARRAY_LEN(ev->vars) || ev->used + n > sizeof(ev->buf))
        return;
    memcpy(ev->buf + ev->used, value, n);
    ev->vars[ev->n_vars++] = (struct iw_tmpl_var){ name, ev->buf + ev->used };
    ev->used += n;
}

const struct iw_device_cfg *iw__inventory(const struct iw_config *cfg, const char *source,
                                          const char *site, const char *device)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const struct iw_device_cfg *d = &cfg->devices[i];
        if (strcmp(d->source, source) == 0 && strcmp(d->site, site) == 0
            && strcmp(d->device, device) == 0)
            return d;
    }
    return NULL;
}

static void complain(struct iw_rules_engine *e, const char *what, const char *key, int rc)
{
    e->st.state_errors++;
    iw_complain(&e->complaint, IW_LOG_LEVEL_WARN, "rules",
                "%s \"%s\" failed: %s (rule state may not survive a restart; check the store)",
                what, key, iw_strerror(rc));
}

/* ==========================================================================
 * Instances
 * ======================================================================== */

/* Escape '%' and '/' so that each component stays one level of the key. */
static size_t key_component(char *out, const char *s)
{
    size_t o = 0;
    for (; *s; s++) {
        if (*s == '%' || *s == '/') {
            if (out)
                sprintf(out + o, "%%%02X", (unsigned char)*s);
            o += 3;
        } else {
            if (out)
                out[o] = *s;
            o++;
        }
    }
    return o;
}

static char *make_key(const char *rule, const char *source, const char *site,
                      const char *device, const char *metric)
{
    const char *parts[5] = { rule, source, site, device, metric };
    size_t n = 0, o = 0;
    char *k;

    for (int i = 0; i < 5 && parts[i]; i++)
        n += key_component(NULL, parts[i]) + 1;
    k = malloc(n + 1);
    if (k == NULL)
        return NULL;
    for (int i = 0; i < 5 && parts[i]; i++) {
        if (i > 0)
            k[o++] = '/';
        o += key_component(k + o, parts[i]);
    }
    k[o] = '\0';
    return k;
}

void iw__inst_free(struct iw_rules_engine *e, struct inst *in)
{
    if (in == NULL)
        return;
    iw__late_run_held(e, in, 0, false);     /* nobody left to judge it for */
    iw__late_memo_free(in);
    if (in->heap_idx != SIZE_MAX)
        iw__heap_remove(e, in);
    if (in->x != NULL && in->rr->ops->fini != NULL)
        in->rr->ops->fini(in);
    free(in->x);
    free(in->key);
    free(in->source);
    free(in->site);
    free(in->device);
    free(in->metric);
    free(in);
}

struct inst *iw__inst_get(struct iw_rules_engine *e, struct rule_rt *rr, const char *source,
                          const char *site, const char *device, const char *metric)
{
    char *key = make_key(rr->r->name, source, site, device, metric);
    struct inst *in;

    if (key == NULL)
        return NULL;
    in = iw__smap_get(&e->insts, key);
    if (in != NULL) {
        free(key);
        return in;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        free(key);
        return NULL;
    }
    in->rr = rr;
    in->key = key;
    in->heap_idx = SIZE_MAX;
    in->pending_since = in->clear_since = in->last_ts = in->next_repeat = RT_NONE;
    in->p = iw_rule_params_for(rr->r, site);
    in->source = strdup(source);
    in->site = strdup(site);
    in->device = strdup(device);
    in->metric = metric ? strdup(metric) : NULL;
    in->x = rr->ops->x_size ? calloc(1, rr->ops->x_size) : NULL;
    if (in->source == NULL || in->site == NULL || in->device == NULL
        || (metric != NULL && in->metric == NULL) || (rr->ops->x_size && in->x == NULL)
        || iw__smap_put(&e->insts, in->key, in) != IW_OK) {
        free(in->x);
        in->x = NULL;
        iw__inst_free(e, in);
        return NULL;
    }
    if (rr->ops->init != NULL)
        rr->ops->init(e, in);
    e->st.instances++;
    return in;
}

/* ==========================================================================
 * Deadline heap (min-heap on heap_due; each instance at most once)
 * ======================================================================== */

static void heap_set(struct iw_rules_engine *e, size_t i, struct inst *in)
{
    e->heap[i] = in;
    in->heap_idx = i;
}

static void sift_up(struct iw_rules_engine *e, size_t i)
{
    struct inst *in = e->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (e->heap[parent]->heap_due <= in->heap_due)
            break;
        heap_set(e, i, e->heap[parent]);
        i = parent;
    }
    heap_set(e, i, in);
}

static void sift_down(struct iw_rules_engine *e, size_t i)
{
    struct inst *in = e->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->heap_n)
            break;
        if (c + 1 < e->heap_n && e->heap[c + 1]->heap_due < e->heap[c]->heap_due)
            c++;
        if (e->heap[c]->heap_due >= in->heap_due)
            break;
        heap_set(e, i, e->heap[c]);
        i = c;
    }
    heap_set(e, i, in);
}

void iw__heap_remove(struct iw_rules_engine *e, struct inst *in)
{
    size_t i = in->heap_idx;
    struct inst *last;

    if (i == SIZE_MAX)
        return;
    in->heap_idx = SIZE_MAX;
    last = e->heap[--e->heap_n];
    if (i == e->heap_n)
        return;
    heap_set(e, i, last);
    sift_down(e, i);
    sift_up(e, last->heap_idx);
}

static int64_t inst_deadline(const struct iw_rules_engine *e, const struct inst *in)
{
    int64_t d = in->rr->ops->deadline ? in->rr->ops->deadline(e, in) : RT_NO_DEADLINE;
    if (in->st == ST_FIRING && in->next_repeat != RT_NONE && in->next_repeat < d)
        d = in->next_repeat;
    if (iw__late_due(in) < d)           /* held late samples (rule_late.c) */
        d = iw__late_due(in);
    return d;
}

/*
 * Make sure the heap wakes the instance no later than its deadline. A later
 * deadline (absence after a new message) leaves the old entry: when it pops,
 * the instance is simply rescheduled, so a chatty device costs no heap work.
 */
void iw__sched(struct iw_rules_engine *e, struct inst *in)
{
    int64_t d;

    if (in->sx != NULL)
        return;                         /* a late episode is not repeated on the wall clock */
    d = inst_deadline(e, in);
    if (d == RT_NO_DEADLINE)
        return;
    if (in->heap_idx != SIZE_MAX) {
        if (d < in->heap_due) {
            in->heap_due = d;
            sift_up(e, in->heap_idx);
        }
        return;
    }
    if (e->heap_n == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        struct inst **h = realloc(e->heap, cap * sizeof(*h));
        if (h == NULL) {
            IW_LOG_ERROR("rules", "out of memory growing the timer heap; %s will not be woken",
                         in->key);
            return;
        }
        e->heap = h;
        e->heap_cap = cap;
    }
    in->heap_due = d;
    heap_set(e, e->heap_n++, in);
    sift_up(e, in->heap_idx);
}

/* ==========================================================================
 * Emission
 * ======================================================================== */

/*
 * (rule, instance, start, rule text): the rule's hash makes an episode that a
 * changed rule starts from the same moment (an absence carried over from the
 * device's last message) an episode of its own, with an id of its own.
 */
static void episode_id(const struct inst *in, char out[17])
{
    char when[24];
    uint64_t h = IW_FNV_SEED;

    snprintf(when, sizeof(when), "%" PRId64, in->pending_since);
    h = iw__hash(in->rr->r->name, strlen(in->rr->r->name) + 1, h);
    h = iw__hash(in->rr->r->hash, strlen(in->rr->r->hash) + 1, h);
    h = iw__hash(in->key, strlen(in->key) + 1, h);
    h = iw__hash(when, strlen(when), h);
    snprintf(out, 17, "%016" PRIx64, h);
}

static bool silenced(const struct iw_rules_engine *e, const struct iw_alert *a, int64_t wall)
{
    for (size_t i = 0; i < e->cfg->n_silences; i++)
        if (iw_alert_silence_matches(&e->cfg->silences[i], a, wall))
            return true;
    return e->env.is_silenced != NULL && e->env.is_silenced(e->env.ctx, a, wall);
}

static void emit(struct iw_rules_engine *e, struct inst *in, enum iw_alert_status status,
                 enum iw_alert_reason reason, int64_t ts, bool late, int64_t wall)
{
    const struct iw_rule *r = in->rr->r;
    struct evidence ev = { .status = status, .metric = in->metric };
    struct iw_tmpl_var vars[IW_ARRAY_LEN(ev.vars) + 15];
    char vbuf[32] = "", tbuf[32] = "", msg[1024], msg_zh[1024], ending[64];
    const char *tmpl;
    struct iw_alert a = { 0 };
    size_t n = 0;
    char *details;

    if (in->sx != NULL && iw__shadow_skip(e, in, status, reason, ts))
        return;
    ev.unit = iw_metric_unit(in->metric);
    ev.details = cJSON_CreateObject();
    in->rr->ops->evidence(e, in, &ev);
    if (ev.has_value)
        iw__fmt_num(ev.value, vbuf, sizeof(vbuf));
    if (ev.has_threshold)
        iw__fmt_num(ev.threshold, tbuf, sizeof(tbuf));
    vars[n++] = (struct iw_tmpl_var){ "rule", r->name };
    vars[n++] = (struct iw_tmpl_var){ "source", in->source };
    vars[n++] = (struct iw_tmpl_var){ "site", in->site };
    vars[n++] = (struct iw_tmpl_var){ "device", in->device };
    vars[n++] = (struct iw_tmpl_var){ "metric", ev.metric ? ev.metric : "" };
    vars[n++] = (struct iw_tmpl_var){ "metric_name", ev.metric ? iw_metric_display(ev.metric) : "" };
    vars[n++] = (struct iw_tmpl_var){ "value", vbuf };
    vars[n++] = (struct iw_tmpl_var){ "threshold", tbuf };
    vars[n++] = (struct iw_tmpl_var){ "unit", ev.unit ? ev.unit : "" };
    vars[n++] = (struct iw_tmpl_var){ "severity", iw_severity_name(in->sev) };
    vars[n++] = (struct iw_tmpl_var){ "status", iw_alert_status_name(status) };
    for (size_t i = 0; i < ev.n_vars; i++)
        vars[n++] = ev.vars[i];
    /* Every rule may name SPEC's {class}, {aqi} and {level}: empty where its
     * kind has none (the first of a name wins, so the kind's come first). */
    vars[n++] = (struct iw_tmpl_var){ "class", "" };
    vars[n++] = (struct iw_tmpl_var){ "aqi", "" };
    vars[n++] = (struct iw_tmpl_var){ "level", "" };
    /* A reload ends the episode, not the condition: the kind's summary
     * ("back within ...") would not be true. */
    if (e->ending != NULL) {
        snprintf(ending, sizeof(ending), "resolved because the rule was %s", e->ending);
        for (size_t i = 0; i < n; i++)
            if (strcmp(vars[i].name, "summary") == 0)
                vars[i].value = ending;
        if (ev.details != NULL)
            cJSON_AddStringToObject(ev.details, "reason", strcmp(e->ending, "removed") == 0
                                                          ? "rule removed" : "rule changed");
    }

    tmpl = r->message_en ? r->message_en : r->message ? r->message : "{site}/{device} {summary}";
    iw_template_render(tmpl, vars, n, msg, sizeof(msg));
    if (r->message_zh != NULL)
        iw_template_render(r->message_zh, vars, n, msg_zh, sizeof(msg_zh));
    details = ev.details ? iw_json_print(ev.details) : NULL;
    cJSON_Delete(ev.details);

    memcpy(a.id, in->id, sizeof(a.id));
    a.status = status;
    a.reason = reason;
    a.kind = r->kind;
    a.severity = in->sev;
    a.rule = r->name;
    a.source = in->source;
    a.site = in->site;
    a.device = in->device;
    a.metric = ev.metric;
    a.has_value = ev.has_value;
    a.value = ev.value;
    a.has_threshold = ev.has_threshold;
    a.threshold = ev.threshold;
    a.unit = ev.unit;
    a.started_at = in->pending_since;
    a.ts = ts;
    a.message = msg;
    a.message_zh = r->message_zh ? msg_zh : NULL;
    a.late = late;
    a.rule_hash = r->hash;
    a.labels = r->labels;
    a.n_labels = r->n_labels;
    a.details = details;          /* NULL (out of memory) is sent as {} */
    a.silenced = silenced(e, &a, wall);
    a.repeat_ms = in->p->repeat_ms;
    a.decided_at = reason == IW_ALERT_REPEAT ? ts : wall;   /* a reminder's ts is when it was due */
    if (in->sx != NULL) {
        iw__shadow_hold(e, in, &a);     /* published, or not, when the message ends */
    } else {
        e->st.emitted++;
        e->env.emit(e->env.ctx, &a);
    }
    free(details);
}

void iw__emit_orphan_resolve(struct iw_rules_engine *e, const cJSON *rec, const char *why,
                             int64_t now)
{
    static const char *const kinds[] = { "threshold", "rate", "absence", "flag", "event",
                                         "water_quality", "air_quality" };
    const cJSON *j, *lb = cJSON_GetObjectItemCaseSensitive(rec, "lb"), *it;
    const char *id, *kind;
    struct iw_alert a = { .status = IW_ALERT_RESOLVED, .reason = IW_ALERT_RESOLVE, .ts = now };
    struct iw_kv labels[32];
    char msg[512], details[256];

#define STR(name) (cJSON_IsString(j = cJSON_GetObjectItemCaseSensitive(rec, name)) ? j->valuestring : NULL)
#define NUM(name, def) (cJSON_IsNumber(j = cJSON_GetObjectItemCaseSensitive(rec, name)) ? j->valuedouble : (def))
    a.rule = STR("rule");
    a.source = STR("src");
    a.site = STR("site");
    a.device = STR("dev");
    a.metric = STR("met");
    a.rule_hash = STR("rh");
    id = STR("id");
    kind = STR("kind");
    if (a.rule == NULL || a.source == NULL || a.site == NULL || a.device == NULL
        || a.rule_hash == NULL || id == NULL || strlen(id) != 16)
        return;
    memcpy(a.id, id, sizeof(a.id));
    a.severity = (enum iw_severity)NUM("sev", 0);
    if (a.severity < IW_SEV_INFO || a.severity > IW_SEV_CRITICAL)
        a.severity = IW_SEV_WARNING;
    a.started_at = (int64_t)NUM("ps", (double)now);
    a.kind = IW_RULE_THRESHOLD;
    for (size_t i = 0; kind != NULL && i < IW_ARRAY_LEN(kinds); i++)
        if (strcmp(kinds[i], kind) == 0)
            a.kind = (enum iw_rule_kind)i;
#undef STR
#undef NUM
    snprintf(msg, sizeof(msg), "%s/%s %s: resolved because the rule was %s", a.site, a.device,
             a.rule, why);
    snprintf(details, sizeof(details), "{\"reason\":\"rule %s\"}", why);
    a.message = msg;
    a.details = details;
    a.unit = iw_metric_unit(a.metric);
    /* The labels its firing carried, so that whoever routes on them gets the resolve too. */
    if (!cJSON_IsObject(lb))
        lb = NULL;
    cJSON_ArrayForEach(it, lb)
        if (cJSON_IsString(it) && a.n_labels < IW_ARRAY_LEN(labels))
            labels[a.n_labels++] = (struct iw_kv){ it->string, it->valuestring };
    a.labels = labels;
    a.silenced = silenced(e, &a, now);
    e->st.emitted++;
    e->env.emit(e->env.ctx, &a);
}

/* ==========================================================================
 * Persistence
 * ======================================================================== */

static void put_time(cJSON *o, const char *name, int64_t v)
{
    if (v != RT_NONE)
        cJSON_AddNumberToObject(o, name, (double)v);
}

void iw__save(struct iw_rules_engine *e, struct inst *in)
{
    const struct kind_ops *ops = in->rr->ops;
    cJSON *o;
    char *text;
    int rc;

    if (in->sx != NULL)
        return;                         /* a shadow lives for one message: nothing to keep */
    if (in->st == ST_INACTIVE && !(ops->keep && ops->keep(in)) && !iw__late_memo_any(in)) {
        if (in->stored && e->env.state_del != NULL) {
            rc = e->env.state_del(e->env.ctx, in->key);
            if (rc != IW_OK)
                complain(e, "state_del", in->key, rc);
        }
        in->stored = false;
        return;
    }
    if (e->env.state_put == NULL)
        return;
    o = cJSON_CreateObject();
    if (o == NULL)
        goto nomem;
    cJSON_AddNumberToObject(o, "v", 1);
    cJSON_AddStringToObject(o, "rule", in->rr->r->name);
    cJSON_AddStringToObject(o, "rh", in->rr->r->hash);
    cJSON_AddStringToObject(o, "c2", in->rr->r->cond_hash);     /* "ch": cond_hash_v1 */
    cJSON_AddStringToObject(o, "c3", iw_rule_cond_for(in->rr->r, in->site));   /* at its site */
    cJSON_AddStringToObject(o, "kind", iw_rule_kind_name(in->rr->r->kind));
    cJSON_AddStringToObject(o, "src", in->source);
    cJSON_AddStringToObject(o, "site", in->site);
    cJSON_AddStringToObject(o, "dev", in->device);
    if (in->metric != NULL)
        cJSON_AddStringToObject(o, "met", in->metric);
    cJSON_AddNumberToObject(o, "st", in->st);
    cJSON_AddNumberToObject(o, "sev", in->sev);
    if (in->st == ST_FIRING)
        cJSON_AddStringToObject(o, "id", in->id);
    if (in->st == ST_FIRING && in->rr->r->n_labels > 0) {
        /* Its resolve may be emitted from this record alone (the rule gone). */
        cJSON *lb = cJSON_AddObjectToObject(o, "lb");
        for (size_t i = 0; i < in->rr->r->n_labels; i++)
            cJSON_AddStringToObject(lb, in->rr->r->labels[i].key, in->rr->r->labels[i].value);
    }
    put_time(o, "ps", in->pending_since);
    put_time(o, "cs", in->clear_since);
    put_time(o, "lt", in->last_ts);
    put_time(o, "nr", in->next_repeat);
    if (ops->save != NULL)
        ops->save(in, o);
    iw__late_memo_save(in, o);
    text = iw_json_print(o);
    cJSON_Delete(o);
    if (text == NULL)
        goto nomem;
    rc = e->env.state_put(e->env.ctx, in->key, text, strlen(text));
    free(text);
    if (rc != IW_OK) {
        complain(e, "state_put", in->key, rc);
        return;
    }
    in->stored = true;
    return;
nomem:
    complain(e, "state record of", in->key, IW_E_NOMEM);
}

static int64_t get_time(const cJSON *o, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(j) ? (int64_t)j->valuedouble : RT_NONE;
}

void iw__load_common(struct inst *in, const cJSON *o)
{
    const cJSON *j;
    int st = cJSON_IsNumber(j = cJSON_GetObjectItemCaseSensitive(o, "st")) ? j->valueint : 0;
    int sev = cJSON_IsNumber(j = cJSON_GetObjectItemCaseSensitive(o, "sev")) ? j->valueint : 0;

    in->st = st >= ST_INACTIVE && st <= ST_FIRING ? (enum inst_state)st : ST_INACTIVE;
    in->sev = sev >= 0 && sev < IW_SEV_COUNT ? (enum iw_severity)sev : in->p->severity;
    in->pending_since = get_time(o, "ps");
    in->clear_since = get_time(o, "cs");
    in->last_ts = get_time(o, "lt");
    in->next_repeat = get_time(o, "nr");
    j = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (cJSON_IsString(j) && strlen(j->valuestring) == 16)
        memcpy(in->id, j->valuestring, 17);
    else if (in->st == ST_FIRING)
        episode_id(in, in->id);
    if (in->st != ST_INACTIVE && in->pending_since == RT_NONE)
        in->st = ST_INACTIVE;        /* a record without its start is unusable */
    iw__late_memo_load(in, o);
}

void iw__write_point(struct iw_rules_engine *e, const struct inst *in, const char *metric,
                     int64_t ts, double v, bool valid)
{
    char series[512];
    int rc;

    if (e->env.write_point == NULL)
        return;
    /* A late replay (rule_late.c): the truth's judgements past its priming
     * replace the points the live timeline wrote without the late data; the
     * reference's are what is stored already. */
    if (in->sx != NULL && iw__shadow_quiet(in))
        return;
    snprintf(series, sizeof(series), "%s/%s/%s/%s", in->source, in->site, in->device, metric);
    rc = e->env.write_point(e->env.ctx, series, ts, v, valid);
    if (rc != IW_OK)
        complain(e, "write_point", series, rc);
}

void iw__read_points(struct iw_rules_engine *e, const struct inst *in, const char *metric,
                     int64_t from, int64_t to, iw_rules_point_cb cb, void *cbctx)
{
    char series[512];
    int rc;

    if (e->env.read_points == NULL || from > to)
        return;
    snprintf(series, sizeof(series), "%s/%s/%s/%s", in->source, in->site, in->device, metric);
    rc = e->env.read_points(e->env.ctx, series, from, to, cb, cbctx);
    if (rc < 0)
        complain(e, "read_points", series, rc);
}

/* ==========================================================================
 * The common machine
 * ======================================================================== */

void iw__fire(struct iw_rules_engine *e, struct inst *in, enum iw_severity sev,
              int64_t started_at, int64_t ts, bool late, int64_t wall)
{
    in->st = ST_FIRING;
    in->sev = sev;
    in->pending_since = started_at;
    in->clear_since = RT_NONE;
    episode_id(in, in->id);
    in->next_repeat = in->p->repeat_ms > 0 ? wall + in->p->repeat_ms : RT_NONE;
    emit(e, in, IW_ALERT_FIRING, IW_ALERT_FIRE, ts, late, wall);
    iw__save(e, in);
    iw__sched(e, in);
}

void iw__resolve(struct iw_rules_engine *e, struct inst *in, int64_t ts, bool late, int64_t wall)
{
    if (in->st != ST_FIRING)
        return;
    emit(e, in, IW_ALERT_RESOLVED, IW_ALERT_RESOLVE, ts, late, wall);
    in->st = ST_INACTIVE;
    in->pending_since = in->clear_since = in->next_repeat = RT_NONE;
    iw__save(e, in);
}

void iw__escalate(struct iw_rules_engine *e, struct inst *in, enum iw_severity sev, int64_t ts,
                  bool late, int64_t wall)
{
    in->sev = sev;
    emit(e, in, IW_ALERT_FIRING, IW_ALERT_ESCALATE, ts, late, wall);
    iw__save(e, in);
}

void iw__drive(struct iw_rules_engine *e, struct inst *in, bool breach, bool clear,
               enum iw_severity sev, int64_t ts, bool late, int64_t wall)
{
    switch (in->st) {
    case ST_INACTIVE:
        if (!breach)
            return;
        in->st = ST_PENDING;
        in->pending_since = ts;
        in->sev = sev;
        if (in->p->for_ms <= 0) {
            iw__fire(e, in, sev, ts, ts, late, wall);
            return;
        }
        iw__save(e, in);
        return;
    case ST_PENDING:
        if (!breach) {
            in->st = ST_INACTIVE;
            in->pending_since = RT_NONE;
            iw__save(e, in);
            return;
        }
        in->sev = sev;
        if (ts - in->pending_since >= in->p->for_ms)
            iw__fire(e, in, sev, in->pending_since, ts, late, wall);
        return;
    case ST_FIRING:
        if (breach && sev != in->sev)
            iw__escalate(e, in, sev, ts, late, wall);
        if (!clear) {
            if (in->clear_since != RT_NONE) {
                in->clear_since = RT_NONE;
                iw__save(e, in);
            }
            return;
        }
        if (in->clear_since == RT_NONE) {
            in->clear_since = ts;
            if (in->p->clear_for_ms > 0) {
                iw__save(e, in);
                return;
            }
        }
        if (ts - in->clear_since >= in->p->clear_for_ms)
            iw__resolve(e, in, ts, late, wall);
        return;
    }
}

/* A popped instance: repeats, then the kind's timer, then its next deadline. */
static void run_timer(struct iw_rules_engine *e, struct inst *in, int64_t now)
{
    if (in->st == ST_FIRING && in->next_repeat != RT_NONE && in->next_repeat <= now) {
        int64_t due = in->next_repeat;
        /* SPEC §2, no alert storm after a reconnect: a reminder due while no
         * broker link is up would wait in the outbox with the others and all
         * would go out at once when it is back. Skip it; the next one keeps
         * the schedule. */
        if (!e->link_down)
            emit(e, in, IW_ALERT_FIRING, IW_ALERT_REPEAT, due, false, now);
        in->next_repeat = due + in->p->repeat_ms;
        if (in->next_repeat <= now)          /* ticks stopped for a while: no burst */
            in->next_repeat = now + in->p->repeat_ms;
        iw__save(e, in);
    }
    iw__late_run_held(e, in, now, true);    /* held late samples whose upload paused */
    if (in->rr->ops->timer != NULL)
        in->rr->ops->timer(e, in, now);
    iw__sched(e, in);
}

void iw_rules_tick(struct iw_rules_engine *e, int64_t now_ms)
{
    while (e->heap_n > 0 && e->heap[0]->heap_due <= now_ms) {
        struct inst *in = e->heap[0];
        iw__heap_remove(e, in);
        run_timer(e, in, now_ms);
    }
}

int64_t iw_rules_next_deadline(const struct iw_rules_engine *e)
{
    return e->heap_n > 0 ? e->heap[0]->heap_due : INT64_MAX;
}
