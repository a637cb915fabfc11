/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rule engine: construction, sample dispatch, restore and reload (contract in
 * islewatch/rules.h). A sample reaches its instances through a cache keyed by
 * its series (source, site, device, metric, event or not) that remembers
 * which instances it feeds, so the select globs are matched once per series,
 * not once per sample. Engine thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/topic.h"
#include "rule_int.h"

struct series_ent {
    char  *key;
    bool   is_event;
    size_t n;
    struct inst *inst[];
};

static const struct kind_ops *ops_of(enum iw_rule_kind k)
{
    switch (k) {
    case IW_RULE_THRESHOLD:     return &iw__threshold_ops;
    case IW_RULE_RATE:          return &iw__rate_ops;
    case IW_RULE_ABSENCE:       return &iw__absence_ops;
    case IW_RULE_FLAG:          return &iw__flag_ops;
    case IW_RULE_EVENT:         return &iw__event_ops;
    case IW_RULE_WATER_QUALITY: return &iw__water_ops;
    case IW_RULE_AIR_QUALITY:   return &iw__air_ops;
    }
    return NULL;
}

/* ==========================================================================
 * Compiled rules
 * ======================================================================== */

static void rules_fini(struct rule_rt *rules, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t l = 0; l < 4; l++)
            free(rules[i].sel[l]);
    free(rules);
}

static int rules_build(const struct iw_config *cfg, struct rule_rt **out)
{
    struct rule_rt *rules = calloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*rules));

    *out = NULL;
    if (rules == NULL)
        return IW_E_NOMEM;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        struct rule_rt *rr = &rules[i];
        const char *p = cfg->rules[i].select ? cfg->rules[i].select : "";
        size_t n = 0;

        rr->r = &cfg->rules[i];
        rr->ops = ops_of(rr->r->kind);
        while (n < 4) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            rr->sel[n] = strndup(p, len);
            if (rr->sel[n] == NULL) {
                rules_fini(rules, cfg->n_rules);
                return IW_E_NOMEM;
            }
            n++;
            if (slash == NULL)
                break;
            p = slash + 1;
            if (n == 4)
                n = 5;                  /* more than 4 levels */
        }
        rr->n_sel = (n == 3 || n == 4) && rr->ops != NULL ? n : 0;
        if (rr->n_sel == 0)
            IW_LOG_WARN("rules", "rule \"%s\": select \"%s\" is not <source>/<site>/<device>[/<metric>]; "
                        "the rule matches nothing", rr->r->name, rr->r->select ? rr->r->select : "");
    }
    *out = rules;
    return IW_OK;
}

bool iw__select_device(const struct rule_rt *rr, const char *source, const char *site,
                       const char *device)
{
    return rr->n_sel != 0 && iw_glob_match(rr->sel[0], source) && iw_glob_match(rr->sel[1], site)
           && iw_glob_match(rr->sel[2], device);
}

static struct rule_rt *rule_by_name(struct iw_rules_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_rules; i++)
        if (strcmp(e->rules[i].r->name, name) == 0)
            return &e->rules[i];
    return NULL;
}

/* ==========================================================================
 * Series cache
 * ======================================================================== */

static void series_clear(struct iw_rules_engine *e)
{
    for (size_t i = 0; i < e->series.cap; i++) {
        struct series_ent *se = e->series.slots[i].val;
        if (e->series.slots[i].key != NULL) {
            free(se->key);
            free(se);
        }
    }
    iw__smap_fini(&e->series);
    free(e->series_by_id);
    e->series_by_id = NULL;
    e->series_by_id_cap = 0;
}

/* Remember se under the store's series id (slow path: once per series and reload). */
static void series_by_id_put(struct iw_rules_engine *e, uint32_t id, struct series_ent *se)
{
    if (id >= e->series_by_id_cap) {
        size_t cap = e->series_by_id_cap ? e->series_by_id_cap : 1024;
        while (cap <= id)
            cap *= 2;
        struct series_ent **v = realloc(e->series_by_id, cap * sizeof(*v));
        if (v == NULL)
            return;                             /* only the fast path is lost */
        memset(v + e->series_by_id_cap, 0, (cap - e->series_by_id_cap) * sizeof(*v));
        e->series_by_id = v;
        e->series_by_id_cap = cap;
    }
    e->series_by_id[id] = se;
}

/* The cache key; in buf when it fits (the common case: no allocation per sample). */
static char *series_key(const struct iw_rsample *s, char *buf, size_t len)
{
    size_t n = strlen(s->source) + strlen(s->site) + strlen(s->device) + strlen(s->metric) + 6;
    char *k = n <= len ? buf : malloc(n);
    if (k != NULL)
        snprintf(k, n, "%s\x1f%s\x1f%s\x1f%s\x1f%c", s->source, s->site, s->device, s->metric,
                 s->alive ? 'A' : s->is_event ? 'E' : 'S');
    return k;
}

static struct series_ent *series_get(struct iw_rules_engine *e, const struct iw_rsample *s)
{
    /* Fast path, per sample from the pipeline: the store's series id indexes
     * the cache directly (no key to format, no string hashed). */
    if (s->series_id != 0 && s->series_id - 1 < e->series_by_id_cap) {
        struct series_ent *hit = e->series_by_id[s->series_id - 1];
        if (hit != NULL && hit->is_event == s->is_event)
            return hit;
    }
    char buf[512];
    char *key = series_key(s, buf, sizeof(buf));
    struct series_ent *se;
    size_t n = 0;

    if (key == NULL)
        return NULL;
    se = iw__smap_get(&e->series, key);
    if (se != NULL) {
        if (key != buf)
            free(key);
        if (s->series_id != 0)
            series_by_id_put(e, s->series_id - 1, se);
        return se;
    }
    if (key == buf && (key = strdup(buf)) == NULL)     /* the cache keeps its own copy */
        return NULL;
    se = malloc(sizeof(*se) + e->n_rules * sizeof(se->inst[0]));
    if (se == NULL) {
        free(key);
        return NULL;
    }
    for (size_t i = 0; i < e->n_rules; i++) {
        struct rule_rt *rr = &e->rules[i];
        struct inst *in;

        if (!iw__select_device(rr, s->source, s->site, s->device)
            || (s->alive && ((rr->r->kind != IW_RULE_ABSENCE && rr->r->kind != IW_RULE_FLAG)
                             || rr->n_sel != 3))
            || (rr->n_sel == 4 && !iw_glob_match(rr->sel[3], s->metric))
            || !rr->ops->accepts(rr, s))
            continue;
        in = iw__inst_get(e, rr, s->source, s->site, s->device,
                          rr->ops->per_metric(rr) ? s->metric : NULL);
        if (in == NULL) {
            IW_LOG_ERROR("rules", "out of memory creating an instance of rule \"%s\"", rr->r->name);
            continue;
        }
        se->inst[n++] = in;
    }
    se->key = key;
    se->is_event = s->is_event;
    se->n = n;
    if (iw__smap_put(&e->series, key, se) != IW_OK) {
        free(key);
        free(se);
        return NULL;
    }
    if (s->series_id != 0)
        series_by_id_put(e, s->series_id - 1, se);
    return se;
}

void iw__inst_series(const struct iw_rules_engine *e, const struct inst *in,
                     void (*cb)(void *ctx, const char *metric, size_t len), void *ctx)
{
    for (size_t i = 0; i < e->series.cap; i++) {
        const struct series_ent *se = e->series.slots[i].val;
        const char *m, *end;

        if (e->series.slots[i].key == NULL)
            continue;
        for (size_t k = 0; k < se->n; k++) {
            if (se->inst[k] != in)
                continue;
            m = se->key;                /* source \x1f site \x1f device \x1f metric \x1f S|E|A */
            for (int sep = 0; sep < 3 && m != NULL; sep++) {
                m = strchr(m, '\x1f');
                if (m != NULL)
                    m++;
            }
            end = m != NULL ? strchr(m, '\x1f') : NULL;
            if (end != NULL)
                cb(ctx, m, (size_t)(end - m));
            break;
        }
    }
}

/* ==========================================================================
 * Devices known before they report (absence)
 * ======================================================================== */

static bool owns(const struct iw_rules_engine *e, const char *source, const char *site,
                 const char *device)
{
    return e->env.owns_device == NULL || e->env.owns_device(e->env.ctx, source, site, device);
}

/* The absence instance of rule rr for a device it must watch before any
 * message of it reaches the rule (in the inventory, or in the store). */
static void expect_device(struct iw_rules_engine *e, struct rule_rt *rr, const char *source,
                          const char *site, const char *device, bool in_store, int64_t now)
{
    struct inst *in = iw__inst_get(e, rr, source, site, device, NULL);
    if (in == NULL) {
        IW_LOG_ERROR("rules", "out of memory creating the absence instance of %s/%s/%s",
                     source, site, device);
        return;
    }
    iw__absence_expect(e, in, in_store, now);
}

struct stored_walk {
    struct iw_rules_engine *e;
    int64_t now;
};

static int stored_series_cb(void *ctx, const char *source, const char *site, const char *device,
                            const char *metric)
{
    struct stored_walk *w = ctx;
    for (size_t i = 0; i < w->e->n_rules; i++) {
        struct rule_rt *rr = &w->e->rules[i];
        if (rr->r->kind != IW_RULE_ABSENCE || !iw__select_device(rr, source, site, device)
            || (rr->n_sel == 4 && (metric[0] == '\0' || !iw_glob_match(rr->sel[3], metric)))
            || !owns(w->e, source, site, device))
            continue;
        expect_device(w->e, rr, source, site, device, true, w->now);
    }
    return 0;
}

/*
 * The devices every absence rule knows before a message reaches it: the
 * inventory's, and those with stored series (they reported before the rule
 * took effect). Called when rules take effect (start, reload) at now.
 */
static void known_instances(struct iw_rules_engine *e, int64_t now)
{
    bool any = false;
    for (size_t i = 0; i < e->n_rules; i++) {
        struct rule_rt *rr = &e->rules[i];
        if (rr->r->kind != IW_RULE_ABSENCE)
            continue;
        any = true;
        for (size_t d = 0; d < e->cfg->n_devices; d++) {
            const struct iw_device_cfg *dev = &e->cfg->devices[d];
            if (iw__select_device(rr, dev->source, dev->site, dev->device)
                && owns(e, dev->source, dev->site, dev->device))
                expect_device(e, rr, dev->source, dev->site, dev->device, false, now);
        }
    }
    if (any && e->env.each_series != NULL
        && e->env.each_series(e->env.ctx, stored_series_cb, &(struct stored_walk){ e, now }) != IW_OK)
        IW_LOG_WARN("rules", "could not read the stored series: the absence rules watch only the "
                    "devices of the inventory and those that report from now on");
}

/* ==========================================================================
 * Lifecycle
 * ======================================================================== */

int iw_rules_engine_new(const struct iw_config *cfg, const struct iw_rules_env *env,
                        int64_t now_ms, struct iw_rules_engine **out)
{
    struct iw_rules_engine *e;
    int rc;

    *out = NULL;
    if (cfg == NULL || env == NULL || env->emit == NULL)
        return IW_E_INVAL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return IW_E_NOMEM;
    e->cfg = cfg;
    e->cfg_gen = 1;
    e->env = *env;
    e->start_ms = now_ms;
    e->link_up_ms = RT_NONE;
    e->late_since = RT_NONE;
    rc = rules_build(cfg, &e->rules);
    if (rc != IW_OK) {
        free(e);
        return rc;
    }
    e->n_rules = cfg->n_rules;
    known_instances(e, now_ms);
    *out = e;
    return IW_OK;
}

static void free_instances(struct iw_rules_engine *e)
{
    for (size_t i = 0; i < e->insts.cap; i++)
        if (e->insts.slots[i].key != NULL)
            iw__inst_free(e, e->insts.slots[i].val);
    iw__smap_fini(&e->insts);
}

void iw_rules_engine_free(struct iw_rules_engine *e)
{
    if (e == NULL)
        return;
    iw__late_finish(e, IW_LATE_DROP);   /* the owner flushed what it wanted judged */
    series_clear(e);
    free_instances(e);
    free(e->heap);
    rules_fini(e->rules, e->n_rules);
    free(e);
}

void iw_rules_engine_stats(const struct iw_rules_engine *e, struct iw_rules_stats *out)
{
    *out = e->st;
    out->instances = e->insts.n;
    out->timers = e->heap_n;
}

/* ==========================================================================
 * Samples
 * ======================================================================== */

void iw_rules_on_samples(struct iw_rules_engine *e, const struct iw_rsample *s, size_t n)
{
    struct inst *dirty = NULL;

    e->in_message = true;
    for (size_t i = 0; i < n; i++) {
        struct series_ent *se;

        e->st.samples++;
        if (s[i].source == NULL || s[i].site == NULL || s[i].device == NULL || s[i].metric == NULL)
            continue;
        se = series_get(e, &s[i]);
        if (se == NULL)
            continue;
        for (size_t k = 0; k < se->n; k++) {
            struct inst *in = se->inst[k];
            e->st.evaluations++;
            if (in->late != NULL)
                iw__late_before_sample(e, in);
            in->rr->ops->sample(e, in, &s[i]);
            if (in->rr->ops->message_end != NULL && !in->dirty) {
                in->dirty = true;
                in->dirty_next = dirty;
                dirty = in;
            }
        }
    }
    e->in_message = false;
    /* Late samples: the store holds the whole message now, so each is
     * evaluated on its own time with what came before and after it. */
    if (e->late != NULL && !e->defer_late)
        iw__late_finish(e, IW_LATE_DUE);
    while (dirty != NULL) {
        struct inst *in = dirty;
        dirty = in->dirty_next;
        in->dirty = false;
        in->dirty_next = NULL;
        in->rr->ops->message_end(e, in, &s[n - 1]);
    }
}

void iw_rules_on_sample(struct iw_rules_engine *e, const struct iw_rsample *s)
{
    iw_rules_on_samples(e, s, 1);
}

void iw_rules_defer_late(struct iw_rules_engine *e, bool on)
{
    e->defer_late = on;
    if (!on && e->late != NULL)
        iw__late_finish(e, IW_LATE_DUE);
}

void iw_rules_hold_late(struct iw_rules_engine *e, bool all)
{
    e->hold_all = all;
}

bool iw_rules_flush_late(struct iw_rules_engine *e)
{
    if (e->late == NULL)
        return false;
    iw__late_finish(e, IW_LATE_DUE);
    return true;
}

void iw_rules_finish_late(struct iw_rules_engine *e)
{
    iw__late_finish(e, IW_LATE_ALL);
}

int64_t iw_rules_late_since(const struct iw_rules_engine *e)
{
    return e->late != NULL ? e->late_since : INT64_MIN;
}

/* ==========================================================================
 * Restore
 * ======================================================================== */

static const char *rec_str(const cJSON *o, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static void del_key(struct iw_rules_engine *e, const char *key)
{
    if (e->env.state_del != NULL && e->env.state_del(e->env.ctx, key) != IW_OK)
        e->st.state_errors++;
}

/*
 * A changed absence rule keeps watching the devices its old version knew
 * (rec: the old instance's record): only the past says that a device which
 * has gone silent exists, and forgetting it would lose its alert. The old
 * episode ended with the old rule; the new instance starts inactive from the
 * device's last message, so a device still silent fires a new episode.
 */
static void absence_adopt(struct iw_rules_engine *e, struct rule_rt *rr, const cJSON *rec,
                          const char *source, const char *site, const char *device)
{
    struct inst *in;

    if (rr == NULL || rr->r->kind != IW_RULE_ABSENCE || rr->n_sel == 0
        || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "seen"))
        || !iw__select_device(rr, source, site, device))
        return;
    in = iw__inst_get(e, rr, source, site, device, NULL);
    if (in == NULL) {
        IW_LOG_ERROR("rules", "out of memory carrying %s/%s/%s over to the changed rule \"%s\"; "
                     "its absence is raised again with its next message", source, site, device,
                     rr->r->name);
        return;
    }
    if (in->st != ST_INACTIVE)
        return;
    rr->ops->load(e, in, rec);
    iw__save(e, in);
    iw__sched(e, in);
}

/*
 * A changed event rule ends the episode of an event that has not stopped
 * (rec: the record of the old instance, which was firing); the new rule
 * raises it again, unless the old auto_resolve was due already.
 */
static void event_adopt(struct iw_rules_engine *e, struct rule_rt *rr, const cJSON *rec,
                        const char *source, const char *site, const char *device,
                        const char *type, int64_t now)
{
    const cJSON *ad = cJSON_GetObjectItemCaseSensitive(rec, "ad");
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(rec, "et");

    if (cJSON_IsNumber(ad) && (int64_t)ad->valuedouble <= now)
        return;
    iw__event_refire(e, rr, source, site, device, type,
                     cJSON_IsNumber(et) ? (int64_t)et->valuedouble : now, now);
}

int iw_rules_engine_restore(struct iw_rules_engine *e, const char *key, const void *val, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(val, len);
    const char *rule, *rh, *ch, *kind, *src, *site, *dev, *met;
    const cJSON *st;
    struct rule_rt *rr;
    struct inst *in;

    if (o == NULL)
        return IW_E_INVAL;
    rule = rec_str(o, "rule");
    rh = rec_str(o, "rh");
    kind = rec_str(o, "kind");
    src = rec_str(o, "src");
    site = rec_str(o, "site");
    dev = rec_str(o, "dev");
    met = rec_str(o, "met");
    if (!cJSON_IsObject(o) || rule == NULL || rh == NULL || kind == NULL || src == NULL
        || site == NULL || dev == NULL) {
        cJSON_Delete(o);
        return IW_E_INVAL;
    }
    if (!owns(e, src, site, dev)) {
        cJSON_Delete(o);
        return IW_OK;
    }
    rr = rule_by_name(e, rule);
    /* Changed is a changed condition: a record of a rule whose message,
     * labels or severity alone changed, or another site's override, keeps
     * its state ("c3", the condition at its site; older records have "c2",
     * the whole rule's, "ch", the condition with the severity, or only the
     * whole text's hash, so an upgrade does not resolve what is firing). */
    const char *c3 = rec_str(o, "c3"), *c2 = rec_str(o, "c2");
    ch = rec_str(o, "ch");
    if (rr == NULL
        || (c3 != NULL ? strcmp(iw_rule_cond_for(rr->r, site), c3)
            : c2 != NULL ? strcmp(rr->r->cond_hash, c2)
            : ch != NULL ? strcmp(rr->r->cond_hash_v1, ch) : strcmp(rr->r->hash, rh)) != 0
        || strcmp(iw_rule_kind_name(rr->r->kind), kind) != 0) {
        st = cJSON_GetObjectItemCaseSensitive(o, "st");
        if (cJSON_IsNumber(st) && st->valueint == ST_FIRING)
            iw__emit_orphan_resolve(e, o, rr == NULL ? "removed" : "changed", e->start_ms);
        del_key(e, key);
        if (strcmp(kind, "absence") == 0)
            absence_adopt(e, rr, o, src, site, dev);
        else if (strcmp(kind, "event") == 0 && met != NULL && cJSON_IsNumber(st)
                 && st->valueint == ST_FIRING)
            event_adopt(e, rr, o, src, site, dev, met, e->start_ms);
        cJSON_Delete(o);
        return IW_OK;
    }
    in = rr->n_sel ? iw__inst_get(e, rr, src, site, dev, met) : NULL;
    if (in == NULL) {
        cJSON_Delete(o);
        return rr->n_sel ? IW_E_NOMEM : IW_OK;
    }
    iw__load_common(in, o);
    if (rr->ops->load != NULL)
        rr->ops->load(e, in, o);
    /* The rule's `repeat:` may have changed since the record was written (it
     * is no part of the condition): none now, none; a shorter one, no later
     * than that from now. */
    if (in->st == ST_FIRING && in->p->repeat_ms <= 0)
        in->next_repeat = RT_NONE;
    else if (in->st == ST_FIRING
             && (in->next_repeat == RT_NONE || in->next_repeat > e->start_ms + in->p->repeat_ms))
        in->next_repeat = e->start_ms + in->p->repeat_ms;
    /* Only the severity changed while the daemon was down: re-grade the
     * firing alert now, as a reload does (one severity-change message, the
     * same episode), instead of leaving an absence or event at the old one
     * until it resolves. The standard kinds grade at their next evaluation. */
    if (in->st == ST_FIRING && rr->r->kind != IW_RULE_WATER_QUALITY
        && rr->r->kind != IW_RULE_AIR_QUALITY && in->p->severity != in->sev)
        iw__escalate(e, in, in->p->severity, e->start_ms, false, e->start_ms);
    in->restored = true;
    in->stored = true;
    e->st.restored++;
    if (strcmp(in->key, key) != 0) {        /* written by another key scheme: move it */
        del_key(e, key);
        iw__save(e, in);
    }
    iw__sched(e, in);
    cJSON_Delete(o);
    return IW_OK;
}

/* ==========================================================================
 * Reload
 * ======================================================================== */

/* The same condition at this site: a change of only its message or labels,
 * or of another site's override, keeps its alerts (their later messages
 * carry the new text, labels and rule_hash). */
static bool same_rule(const struct iw_rule *a, const struct iw_rule *b, const char *site)
{
    return strcmp(a->name, b->name) == 0 && a->kind == b->kind
           && strcmp(iw_rule_cond_for(a, site), iw_rule_cond_for(b, site)) == 0;
}

int iw_rules_engine_reload(struct iw_rules_engine *e, const struct iw_config *newcfg, int64_t now_ms)
{
    struct rule_rt *rules, *old_rules = e->rules;
    size_t old_n = e->n_rules;
    struct smap keep = { 0 };
    struct inst *adopt = NULL;          /* instances of changed absence and event rules */
    int rc;

    iw__late_finish(e, IW_LATE_ALL);    /* deferred and held work belong to the old rules */
    rc = rules_build(newcfg, &rules);
    if (rc != IW_OK)
        return rc;
    series_clear(e);

    /* Instances of unchanged rules move to the new rule; the others end. */
    for (size_t i = 0; i < e->insts.cap; i++) {
        struct inst *in = e->insts.slots[i].val;
        struct rule_rt *nr = NULL;

        if (e->insts.slots[i].key == NULL)
            continue;
        for (size_t k = 0; k < newcfg->n_rules && nr == NULL; k++)
            if (same_rule(in->rr->r, &newcfg->rules[k], in->site) && rules[k].n_sel != 0)
                nr = &rules[k];
        if (nr == NULL) {
            bool removed = true;
            for (size_t k = 0; k < newcfg->n_rules && removed; k++)
                removed = strcmp(newcfg->rules[k].name, in->rr->r->name) != 0;
            /* The value did not come back: the message says why it resolves. */
            e->ending = removed ? "removed" : "changed";
            in->was_firing = in->st == ST_FIRING;
            iw__resolve(e, in, now_ms, false, now_ms);
            e->ending = NULL;
            in->st = ST_INACTIVE;
            if (in->stored)
                del_key(e, in->key);
            in->orphan = true;
            continue;
        }
        int64_t old_repeat = in->p->repeat_ms;
        in->rr = nr;
        in->p = iw_rule_params_for(nr->r, in->site);
        /* `repeat:` is no part of the condition: a firing alert's reminders
         * follow the new one, counted from its last message. */
        if (in->st == ST_FIRING && in->p->repeat_ms != old_repeat) {
            in->next_repeat = in->p->repeat_ms <= 0 ? RT_NONE
                              : in->next_repeat != RT_NONE && old_repeat > 0
                              ? in->next_repeat - old_repeat + in->p->repeat_ms
                              : now_ms + in->p->repeat_ms;
            iw__save(e, in);
            iw__sched(e, in);
        }
        /* Only its severity changed (cond_hash leaves it out): a firing alert
         * of a kind with one severity is re-graded now, the same episode. The
         * standard kinds grade by class or level at their next evaluation. */
        if (in->st == ST_FIRING && nr->r->kind != IW_RULE_WATER_QUALITY
            && nr->r->kind != IW_RULE_AIR_QUALITY && in->p->severity != in->sev)
            iw__escalate(e, in, in->p->severity, now_ms, false, now_ms);
    }
    for (size_t i = 0; i < e->insts.cap; i++) {
        struct inst *in = e->insts.slots[i].val;
        if (e->insts.slots[i].key == NULL)
            continue;
        if (in->orphan && (in->rr->r->kind == IW_RULE_ABSENCE
                           || (in->rr->r->kind == IW_RULE_EVENT && in->was_firing))) {
            in->dirty_next = adopt;     /* carried over below, once the new rules are in */
            adopt = in;
        } else if (in->orphan || iw__smap_put(&keep, in->key, in) != IW_OK) {
            iw__inst_free(e, in);
        }
    }
    iw__smap_fini(&e->insts);
    e->insts = keep;
    e->cfg = newcfg;
    e->cfg_gen++;
    e->rules = rules;
    e->n_rules = newcfg->n_rules;
    while (adopt != NULL) {
        struct inst *in = adopt;
        cJSON *rec = cJSON_CreateObject();

        adopt = in->dirty_next;
        in->dirty_next = NULL;
        if (rec != NULL) {
            struct rule_rt *nr = rule_by_name(e, in->rr->r->name);
            in->rr->ops->save(in, rec);
            if (in->rr->r->kind == IW_RULE_ABSENCE)
                absence_adopt(e, nr, rec, in->source, in->site, in->device);
            else
                event_adopt(e, nr, rec, in->source, in->site, in->device, in->metric, now_ms);
        }
        cJSON_Delete(rec);
        iw__inst_free(e, in);
    }
    rules_fini(old_rules, old_n);
    known_instances(e, now_ms);

    /* Never-seen devices that left the inventory are no longer expected. */
    for (size_t i = 0; i < e->insts.cap; i++) {
        struct inst *in = e->insts.slots[i].val;
        if (e->insts.slots[i].key != NULL && in->rr->r->kind == IW_RULE_ABSENCE)
            iw__absence_refresh(e, in, now_ms);
    }
    return IW_OK;
}

void iw_rules_set_link(struct iw_rules_engine *e, bool up, int64_t now_ms)
{
    if (up == !e->link_down)
        return;
    e->link_down = !up;
    if (!up)
        return;             /* absence instances that pop meanwhile find no deadline */
    e->link_up_ms = now_ms;
    for (size_t i = 0; i < e->insts.cap; i++) {
        struct inst *in = e->insts.slots[i].val;
        if (e->insts.slots[i].key != NULL && in->rr->r->kind == IW_RULE_ABSENCE)
            iw__sched(e, in);
    }
}
