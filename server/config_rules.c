/*
 * The `rules:` section (SPEC §4). One table, rule_keys, describes every key a
 * rule may have: which kinds it applies to and whether a per-site override
 * (`sites: {<site>: {...}}`) may change it. A rule is parsed in four steps:
 *
 *   1. its keys are walked against the table into a "raw" iw_rule_params
 *      (absent values stay unset: clear_below, clear_level, window...);
 *   2. the raw values are finished into r->p: defaults that depend on other
 *      keys are filled in (clear_below = above) and the kind's required keys
 *      and cross-key constraints are checked;
 *   3. each site override starts from a copy of the raw values, applies its
 *      keys and is finished the same way, so an override of `above` moves the
 *      default clear_below with it and evaluation never merges at run time;
 *   4. a valid rule gets its hash: FNV-1a 64 over a canonical form of its
 *      YAML node (keys sorted, scalars length-prefixed), which ignores
 *      comments, quoting, layout and key order but changes with any value.
 *
 * Message templates name fields as {field}; "{{" and "}}" are literal braces.
 * The fields (template_fields below) are documented in config/islewatch.yaml.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "islewatch/clock.h"
#include "islewatch/err.h"
#include "islewatch/topic.h"

#define KB(k)  (1u << (k))
#define K_THR  KB(IW_RULE_THRESHOLD)
#define K_RATE KB(IW_RULE_RATE)
#define K_ABS  KB(IW_RULE_ABSENCE)
#define K_FLAG KB(IW_RULE_FLAG)
#define K_EVT  KB(IW_RULE_EVENT)
#define K_WQ   KB(IW_RULE_WATER_QUALITY)
#define K_AQ   KB(IW_RULE_AIR_QUALITY)

#define SEC(n)  ((long long)(n) * 1000)
#define MIN(n)  ((long long)(n) * IW_MS_PER_MIN)
#define HOUR(n) ((long long)(n) * IW_MS_PER_HOUR)
#define DAY(n)  ((long long)(n) * IW_MS_PER_DAY)
#define YEAR(n) ((long long)(n) * 365 * IW_MS_PER_DAY)

static const char *const kind_names[] = { "threshold", "rate", "absence", "flag", "event",
                                          "water_quality", "air_quality", NULL };
static const char *const sev_names[] = { "info", "warning", "major", "critical", NULL };
static const char *const body_names[] = { "river", "lake", NULL };
static const char *const mode_names[] = { "hourly", "daily", NULL };

/* Select: how many levels each kind needs (<source>/<site>/<device>[/<metric>]). */
static const struct { size_t min, max; } select_levels[] = {
    [IW_RULE_THRESHOLD] = { 4, 4 }, [IW_RULE_RATE] = { 4, 4 }, [IW_RULE_ABSENCE] = { 3, 4 },
    [IW_RULE_FLAG] = { 3, 4 },      [IW_RULE_EVENT] = { 3, 4 },    /* 4th: the event type */
    [IW_RULE_WATER_QUALITY] = { 3, 3 }, [IW_RULE_AIR_QUALITY] = { 3, 3 },
};

/*
 * Fields a message template may name (kinds 0 = every kind). The same names
 * as the renderer's (islewatch/template.h); the standards' fields are only
 * filled by their own kind, so naming them elsewhere is an error.
 */
static const struct { const char *name; unsigned kinds; } template_fields[] = {
    { "rule", 0 }, { "severity", 0 }, { "status", 0 }, { "source", 0 }, { "site", 0 },
    { "device", 0 }, { "metric", 0 }, { "metric_name", 0 }, { "value", 0 },
    { "threshold", 0 }, { "unit", 0 }, { "summary", 0 },
    /* SPEC section 4 lists {class}, {aqi} and {level} among every rule's
     * fields: in another kind's rule they are empty. The other standards'
     * fields are their kind's only (an error elsewhere says where they are). */
    { "class", 0 }, { "class_zh", K_WQ }, { "target", K_WQ }, { "target_zh", K_WQ },
    { "aqi", 0 }, { "level", 0 }, { "level_zh", K_AQ }, { "level_en", K_AQ },
    { "colour", K_AQ }, { "primary", K_AQ }, { "primary_zh", K_AQ },
};

/* "rule \"x\": key" for messages. */
static const char *where_key(const struct cfg_map *m, const struct cfg_key *k, char *buf, size_t len)
{
    return iw__cfg_key_where(m, k->name, buf, len);
}

/* ======================================================================== */
/* Rule-level keys (write into cx->rule)                                     */
/* ======================================================================== */

static int parse_name(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                      yaml_node_t *v)
{
    char where[256], why[256];
    const char *s = iw__cfg_scalar(cx, v, where_key(m, k, where, sizeof(where)), "a string");

    if (s == NULL)
        return IW_E_CONFIG;
    if (!iw__cfg_check_label(s, why, sizeof(why))) {
        iw__cfg_error(cx, v, "%s: %s", where, why);
        return IW_E_CONFIG;
    }
    if (strlen(s) > 128) {
        iw__cfg_error(cx, v, "%s: longer than 128 bytes", where);
        return IW_E_CONFIG;
    }
    return iw__cfg_get_str(cx, v, where, &cx->rule->name);
}

static int parse_kind(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                      yaml_node_t *v)
{
    char where[256];
    int kind;

    if (iw__cfg_get_enum(cx, v, where_key(m, k, where, sizeof(where)), kind_names, "a rule kind",
                         &kind) != IW_OK)
        return IW_E_CONFIG;
    cx->rule->kind = (enum iw_rule_kind)kind;
    return IW_OK;
}

/*
 * A glob source level (e.g. "w*") must match a source too, and for an event
 * rule an event source: otherwise the rule matches nothing, which is always
 * a mistake (a misspelt prefix). Reports the error at v.
 */
static int check_source_glob(struct cfg_ctx *cx, yaml_node_t *v, const char *where,
                             const char *glob)
{
    const struct iw_config *cfg = cx->cfg;
    char names[256] = "";
    size_t matched = 0, events = 0, used = 0;

    for (size_t i = 0; i < cfg->n_sources; i++) {
        const struct iw_source_cfg *src = &cfg->sources[i];

        if (src->name == NULL)
            continue;
        if (used < sizeof(names))
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                     used ? ", " : "", src->name);
        if (!iw_glob_match(glob, src->name))
            continue;
        matched++;
        events += src->format == IW_FMT_EVENT;
    }
    if (matched == 0) {
        iw__cfg_error(cx, v, "%s: \"%s\" matches no source (sources: %s)", where, glob, names);
        return IW_E_CONFIG;
    }
    if (cx->kind == IW_RULE_EVENT && events == 0) {
        iw__cfg_error(cx, v, "%s: \"%s\" matches no event source (format: event); "
                      "an event rule needs one", where, glob);
        return IW_E_CONFIG;
    }
    return IW_OK;
}

static int parse_select(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                        yaml_node_t *v)
{
    char where[256], why[256], hint[96], first[128];
    const char *s = iw__cfg_scalar(cx, v, where_key(m, k, where, sizeof(where)), "a glob");
    size_t min = 3, max = 4, n;
    const struct iw_source_cfg *src;

    if (s == NULL)
        return IW_E_CONFIG;
    if (cx->kind >= 0) {
        min = select_levels[cx->kind].min;
        max = select_levels[cx->kind].max;
    }
    if (!iw__cfg_check_glob(s, min, max, why, sizeof(why))) {
        iw__cfg_error(cx, v, "%s: %s", where, why);
        return IW_E_CONFIG;
    }
    /* A literal source level must name a source; the wrong one would match nothing. */
    n = strcspn(s, "/");
    if (n < sizeof(first) && !cx->sources_bad) {
        memcpy(first, s, n);
        first[n] = '\0';
        if (!iw__cfg_has_glob_chars(first)) {
            src = iw__cfg_find_source(cx->cfg, first);
            if (src == NULL) {
                iw__cfg_hint_sources(cx->cfg, first, hint, sizeof(hint));
                iw__cfg_error(cx, v, "%s: no source named \"%s\"%s", where, first, hint);
                return IW_E_CONFIG;
            }
            if (cx->kind == IW_RULE_EVENT && src->format != IW_FMT_EVENT) {
                iw__cfg_error(cx, v, "%s: source \"%s\" is not an event source (format: event); "
                              "an event rule needs one", where, first);
                return IW_E_CONFIG;
            }
            if (cx->kind >= 0 && cx->kind != IW_RULE_EVENT && cx->kind != IW_RULE_ABSENCE &&
                src->format == IW_FMT_EVENT) {
                iw__cfg_error(cx, v, "%s: source \"%s\" carries events, not samples; "
                              "use kind: event", where, first);
                return IW_E_CONFIG;
            }
        } else if (check_source_glob(cx, v, where, first) != IW_OK) {
            return IW_E_CONFIG;
        }
    }
    return iw__cfg_get_str(cx, v, where, &cx->rule->select);
}

/* Fields of the current kind, NULL-terminated, into out (sized for all). */
static void kind_fields(int kind, const char **out)
{
    size_t n = 0;

    for (size_t i = 0; i < IW_ARRAY_LEN(template_fields); i++)
        if (template_fields[i].kinds == 0 || kind < 0 || (template_fields[i].kinds & KB(kind)))
            out[n++] = template_fields[i].name;
    out[n] = NULL;
}

static int check_message(struct cfg_ctx *cx, yaml_node_t *v, const char *where, const char *t)
{
    const char *fields[IW_ARRAY_LEN(template_fields) + 1];
    const char *bad;
    char why[256];

    kind_fields(cx->kind, fields);
    if (iw__cfg_check_template(t, fields, &bad, why, sizeof(why)))
        return IW_OK;
    /* A field of another kind: say where it is available rather than "unknown". */
    for (size_t i = 0; bad != NULL && i < IW_ARRAY_LEN(template_fields); i++) {
        size_t n = strlen(template_fields[i].name);
        if (strncmp(bad + 1, template_fields[i].name, n) == 0 && bad[n + 1] == '}') {
            unsigned b = template_fields[i].kinds;
            iw__cfg_error(cx, v, "%s: {%s} is only available in %s rules", where,
                          template_fields[i].name, kind_names[__builtin_ctz(b)]);
            return IW_E_CONFIG;
        }
    }
    iw__cfg_error(cx, v, "%s: %s", where, why);
    return IW_E_CONFIG;
}

static int parse_message(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                         yaml_node_t *v)
{
    static const char *const langs[] = { "zh", "en", NULL };
    struct iw_rule *r = cx->rule;
    char where[256], lwhere[280], hint[96];

    where_key(m, k, where, sizeof(where));
    if (v->type == YAML_SCALAR_NODE) {
        if (check_message(cx, v, where, (const char *)v->data.scalar.value) != IW_OK)
            return IW_E_CONFIG;
        return iw__cfg_get_str(cx, v, where, &r->message);
    }
    if (v->type != YAML_MAPPING_NODE) {
        iw__cfg_error(cx, v, "%s: expected a string or {zh: ..., en: ...}, got %s", where,
                      iw__cfg_type_name(v));
        return IW_E_CONFIG;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = iw__cfg_node(cx, p->key), *vn = iw__cfg_node(cx, p->value);
        const char *lang = iw__cfg_scalar(cx, kn, where, "a language key");
        char **dst;

        if (lang == NULL)
            continue;
        if (strcmp(lang, "zh") != 0 && strcmp(lang, "en") != 0) {
            iw__cfg_error(cx, kn, "%s: unknown key \"%s\" (use zh and en)%s", where, lang,
                          iw__cfg_hint_names(lang, langs, hint, sizeof(hint)));
            continue;
        }
        dst = strcmp(lang, "zh") == 0 ? &r->message_zh : &r->message_en;
        snprintf(lwhere, sizeof(lwhere), "%s.%s", where, lang);
        if (*dst != NULL) {
            iw__cfg_error(cx, kn, "%s: duplicate key \"%s\"", where, lang);
            continue;
        }
        if (iw__cfg_scalar(cx, vn, lwhere, "a string") != NULL &&
            check_message(cx, vn, lwhere, (const char *)vn->data.scalar.value) == IW_OK)
            (void)iw__cfg_get_str(cx, vn, lwhere, dst);
    }
    return IW_OK;
}

static int parse_labels(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                        yaml_node_t *v)
{
    struct iw_rule *r = cx->rule;
    char where[256], lwhere[320];
    size_t n;

    where_key(m, k, where, sizeof(where));
    if (!iw__cfg_expect(cx, v, YAML_MAPPING_NODE, where))
        return IW_E_CONFIG;
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    r->labels = calloc(n ? n : 1, sizeof(*r->labels));
    if (r->labels == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = iw__cfg_node(cx, p->key), *vn = iw__cfg_node(cx, p->value), *first;
        const char *key = iw__cfg_scalar(cx, kn, where, "a label name");
        const char *val;

        if (key == NULL)
            continue;
        if (key[0] == '\0') {
            iw__cfg_error(cx, kn, "%s: a label name must not be empty", where);
            continue;
        }
        if ((first = iw__cfg_earlier_key(cx, v, p)) != NULL) {
            iw__cfg_error(cx, kn, "%s: duplicate key \"%s\" (first at line %zu)", where, key,
                          first->start_mark.line + 1);
            continue;
        }
        snprintf(lwhere, sizeof(lwhere), "%s.%s", where, key);
        if (iw__cfg_is_null(vn)) {      /* it would go out as the text "null" */
            iw__cfg_error(cx, vn, "%s: null is not a label value; give a string (\"\" for an "
                          "empty one) or leave the label out", lwhere);
            continue;
        }
        val = iw__cfg_scalar(cx, vn, lwhere, "a string");
        if (val == NULL)
            continue;
        r->labels[r->n_labels].key = iw__cfg_strdup(cx, key);
        r->labels[r->n_labels].value = iw__cfg_strdup(cx, val);
        r->n_labels++;
    }
    return IW_OK;
}

/* The per-site overrides are parsed after the rule's own keys are finished. */
static int defer_sites(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                       yaml_node_t *v)
{
    (void)cx; (void)m; (void)k; (void)v;
    return IW_OK;
}

/* ======================================================================== */
/* The table                                                                 */
/* ======================================================================== */

#define P(f) offsetof(struct iw_rule_params, f)
#define SITE CFG_SITE
static const struct cfg_key rule_keys[] = {
    { "name", CFG_CUSTOM, .parse = parse_name, .flags = CFG_REQUIRED,
      .doc = "unique rule name (used in alert topics)" },
    { "kind", CFG_CUSTOM, .parse = parse_kind, .flags = CFG_REQUIRED,
      .doc = "threshold, rate, absence, flag, event, water_quality or air_quality" },
    { "select", CFG_CUSTOM, .parse = parse_select, .flags = CFG_REQUIRED,
      .doc = "glob over <source>/<site>/<device>[/<metric>]" },
    { "severity", CFG_CUSTOM, .parse = iw__cfg_rule_severity, .flags = SITE,
      .doc = "info, warning (default), major or critical; a mapping for the standard kinds" },
    { "message", CFG_CUSTOM, .parse = parse_message, .doc = "template, or {zh: ..., en: ...}" },
    { "labels", CFG_CUSTOM, .parse = parse_labels, .doc = "copied into every alert" },
    { "repeat", CFG_DURATION, P(repeat_ms), .min = 0, .max = YEAR(1), .flags = SITE,
      .doc = "publish a firing alert again after this; never by default" },
    { "above", CFG_NUMBER, P(above), .has_off = P(has_above), .kinds = K_THR,
      .flags = SITE | CFG_HAS, .doc = "fires when the value is above this" },
    { "below", CFG_NUMBER, P(below), .has_off = P(has_below), .kinds = K_THR,
      .flags = SITE | CFG_HAS, .doc = "fires when the value is below this" },
    { "clear_below", CFG_NUMBER, P(clear_below), .has_off = P(has_clear_below), .kinds = K_THR,
      .flags = SITE | CFG_HAS, .doc = "an above rule resolves below this (default: above)" },
    { "clear_above", CFG_NUMBER, P(clear_above), .has_off = P(has_clear_above), .kinds = K_THR,
      .flags = SITE | CFG_HAS, .doc = "a below rule resolves above this (default: below)" },
    { "for", CFG_DURATION, P(for_ms), .min = 0, .max = DAY(30), .kinds = K_THR | K_RATE | K_FLAG,
      .flags = SITE, .doc = "condition must hold this long (sample time); default 0" },
    { "clear_for", CFG_DURATION, P(clear_for_ms), .min = 0, .max = DAY(30), .kinds = K_THR,
      .flags = SITE, .doc = "clear condition must hold this long; default 0" },
    { "window", CFG_CUSTOM, .parse = iw__cfg_rule_window, .kinds = K_THR | K_WQ, .flags = SITE,
      .doc = "threshold: {agg, over}; water_quality: averaging window, default 4h" },
    { "rise", CFG_NUMBER, P(rise), .has_off = P(has_rise), .kinds = K_RATE,
      .flags = SITE | CFG_HAS | CFG_POSITIVE, .doc = "fires on an increase beyond this per `per`" },
    { "fall", CFG_NUMBER, P(fall), .has_off = P(has_fall), .kinds = K_RATE,
      .flags = SITE | CFG_HAS | CFG_POSITIVE, .doc = "fires on a decrease beyond this per `per`" },
    { "per", CFG_DURATION, P(per_ms), .min = SEC(1), .max = DAY(1), .def.i = MIN(1),
      .kinds = K_RATE, .flags = SITE, .doc = "time unit of rise/fall; default 1m" },
    { "after", CFG_DURATION, P(after_ms), .min = SEC(1), .max = DAY(30), .kinds = K_ABS,
      .flags = SITE, .doc = "no message for this long (wall clock)" },
    { "flags", CFG_CUSTOM, .parse = iw__cfg_rule_flags, .kinds = K_FLAG, .flags = SITE,
      .doc = "HJ 212 flags that alert: M C D F T B S" },
    { "match", CFG_CUSTOM, .parse = iw__cfg_rule_match, .kinds = K_EVT, .flags = SITE,
      .doc = "event fields to match (type, site, device, source), e.g. {type: tamper}; globs" },
    { "auto_resolve", CFG_DURATION, P(auto_resolve_ms), .min = 0, .max = DAY(30), .kinds = K_EVT,
      .flags = SITE, .doc = "resolve without a stop after this; only a stop by default" },
    { "target", CFG_CUSTOM, P(target), .parse = iw__cfg_parse_target_key, .kinds = K_WQ,
      .flags = SITE, .doc = "class to meet, I..V; default: the inventory's, else III" },
    { "body", CFG_ENUM, P(body), .has_off = P(has_body), .names = body_names,
      .def.i = IW_BODY_RIVER, .kinds = K_WQ, .flags = SITE | CFG_HAS,
      .doc = "river or lake; default: the inventory's, else river" },
    { "standard", CFG_CUSTOM, .parse = iw__cfg_rule_standard, .kinds = K_AQ, .flags = SITE,
      .doc = "HJ633-2026 (default) or HJ633-2012" },
    { "mode", CFG_ENUM, P(mode), .names = mode_names, .def.i = IW_AQI_HOURLY, .kinds = K_AQ,
      .flags = SITE, .doc = "hourly (real-time AQI) or daily" },
    { "min_level", CFG_INT, P(min_level), .min = 1, .max = 6, .def.i = 3, .kinds = K_AQ,
      .flags = SITE, .doc = "lowest AQI level that fires (1 excellent .. 6 severe); default 3" },
    { "clear_level", CFG_INT, P(clear_level), .min = 1, .max = 6, .def.i = 0, .kinds = K_AQ,
      .flags = SITE, .doc = "resolves below this level; default min_level" },
    { "timezone", CFG_CUSTOM, .parse = iw__cfg_rule_timezone, .kinds = K_AQ, .flags = SITE,
      .doc = "day boundaries of daily averages; default Asia/Shanghai" },
    { "close_after", CFG_DURATION, P(close_after_ms), .min = 0, .max = DAY(1), .def.i = MIN(5),
      .kinds = K_WQ | K_AQ, .flags = SITE, .doc = "close an hour/day this long after its end" },
    { "sites", CFG_CUSTOM, .parse = defer_sites, .doc = "per-site overrides {<site>: {...}}" },
    { 0 }
};

static void params_init(struct cfg_ctx *cx, struct iw_rule_params *p)
{
    static const enum iw_severity by_level[7] = {
        IW_SEV_INFO, IW_SEV_INFO, IW_SEV_INFO, IW_SEV_WARNING, IW_SEV_MAJOR, IW_SEV_CRITICAL,
        IW_SEV_CRITICAL,
    };
    memset(p, 0, sizeof(*p));
    iw__cfg_defaults(cx, rule_keys, p);
    p->severity = IW_SEV_WARNING;
    p->sev_below_target = IW_SEV_MAJOR;
    p->sev_worse_than_v = IW_SEV_CRITICAL;
    memcpy(p->sev_by_level, by_level, sizeof(by_level));
    p->standard = IW_AQI_HJ633_2026;
    p->tz_offset_min = 480;
}

/* ======================================================================== */
/* Finishing: defaults that depend on other keys, and each kind's needs      */
/* ======================================================================== */

/* The node of key `name` in a walk's seen[] (or fallback when absent). */
static yaml_node_t *seen_node(yaml_node_t **seen, const char *name, yaml_node_t *fallback)
{
    int i = iw__cfg_key_index(rule_keys, name);
    return i >= 0 && seen[i] != NULL ? seen[i] : fallback;
}

/*
 * Fill in r->p (or a site's params) from the raw values. `site` is true for
 * an override: what the rule itself lacks was already reported there, so an
 * override only reports what it breaks itself.
 */
static void params_finish(struct cfg_ctx *cx, int kind, struct iw_rule_params *p,
                          yaml_node_t *at, yaml_node_t **seen, const char *where, bool site)
{
    switch (kind) {
    case IW_RULE_THRESHOLD:
        if (p->has_above && p->has_below) {
            iw__cfg_error(cx, seen_node(seen, site && !seen[iw__cfg_key_index(rule_keys, "above")]
                                              ? "below" : "above", at),
                          "%s: give either \"above\" or \"below\", not both", where);
            return;
        }
        if (!p->has_above && !p->has_below) {
            if (!site)
                iw__cfg_error(cx, at, "%s: a threshold rule needs \"above\" or \"below\"", where);
            return;
        }
        if (p->has_above && p->has_clear_above)
            iw__cfg_error(cx, seen_node(seen, "clear_above", at), "%s: clear_above goes with "
                          "\"below\"; an \"above\" rule resolves with clear_below", where);
        if (p->has_below && p->has_clear_below)
            iw__cfg_error(cx, seen_node(seen, "clear_below", at), "%s: clear_below goes with "
                          "\"above\"; a \"below\" rule resolves with clear_above", where);
        if (p->has_above && !p->has_clear_below)
            p->clear_below = p->above;
        if (p->has_below && !p->has_clear_above)
            p->clear_above = p->below;
        if (p->has_above && p->clear_below > p->above)
            iw__cfg_error(cx, seen_node(seen, "clear_below", at), "%s: clear_below (%g) must not "
                          "be above the threshold (above: %g)", where, p->clear_below, p->above);
        if (p->has_below && p->clear_above < p->below)
            iw__cfg_error(cx, seen_node(seen, "clear_above", at), "%s: clear_above (%g) must not "
                          "be below the threshold (below: %g)", where, p->clear_above, p->below);
        break;
    case IW_RULE_RATE:
        if (!p->has_rise && !p->has_fall && !site)
            iw__cfg_error(cx, at, "%s: a rate rule needs \"rise\" or \"fall\"", where);
        break;
    case IW_RULE_ABSENCE:
        if (p->after_ms == 0 && !site)
            iw__cfg_error(cx, at, "%s: an absence rule needs \"after\", e.g. after: 3m", where);
        break;
    case IW_RULE_FLAG:
        if (p->flags == 0 && !site)
            iw__cfg_error(cx, at, "%s: a flag rule needs \"flags\", e.g. flags: [D, B]", where);
        break;
    case IW_RULE_EVENT:
        /* The select's 4th level, when given, is the event type (SPEC §4's
         * [/<metric>]): it is a match of its own. */
        if (p->n_match == 0 && !site
            && (cx->rule->select == NULL || iw__cfg_levels(cx->rule->select) < 4))
            iw__cfg_error(cx, at, "%s: an event rule needs \"match\", e.g. match: {type: tamper}, "
                          "or the event type as the select's 4th level "
                          "(camera_event/*/*/tamper)", where);
        break;
    case IW_RULE_WATER_QUALITY:
        if (p->window_ms == 0)
            p->window_ms = 4 * IW_MS_PER_HOUR;
        if (p->sev_worse_than_v < p->sev_below_target)
            iw__cfg_error(cx, seen_node(seen, "severity", at), "%s: severity: worse_than_v (%s) "
                          "is milder than below_target (%s)", where,
                          sev_names[p->sev_worse_than_v], sev_names[p->sev_below_target]);
        p->severity = p->sev_below_target;
        break;
    case IW_RULE_AIR_QUALITY:
        if (p->clear_level == 0)
            p->clear_level = p->min_level;
        else if (p->clear_level > p->min_level)
            iw__cfg_error(cx, seen_node(seen, "clear_level", at), "%s: clear_level (%d) must not "
                          "be above min_level (%d)", where, p->clear_level, p->min_level);
        else if (p->clear_level == 1 && p->min_level > 1)
            iw__cfg_error(cx, seen_node(seen, "clear_level", at), "%s: clear_level 1 would never "
                          "resolve (no AQI is below level 1); use 2..%d, or leave it out to "
                          "resolve below min_level", where, p->min_level);
        p->severity = p->sev_by_level[p->min_level];
        break;
    default:
        break;
    }
}

/* ======================================================================== */
/* Per-site overrides                                                        */
/* ======================================================================== */

static void parse_sites(struct cfg_ctx *cx, struct iw_rule *r, const struct iw_rule_params *raw,
                        yaml_node_t *v, const char *where, bool base_ok)
{
    char swhere[256], kwhere[300], why[256];
    size_t n;

    snprintf(kwhere, sizeof(kwhere), "%s: sites", where);
    if (!iw__cfg_expect(cx, v, YAML_MAPPING_NODE, kwhere))
        return;
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    r->sites = calloc(n ? n : 1, sizeof(*r->sites));
    if (r->sites == NULL) {
        cx->nomem = true;
        return;
    }
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = iw__cfg_node(cx, pr->key), *vn = iw__cfg_node(cx, pr->value);
        yaml_node_t *seen[CFG_MAX_KEYS];
        const char *site = iw__cfg_scalar(cx, kn, kwhere, "a site name");
        struct iw_rule_site *rs;
        bool dup = false;
        size_t before = cx->n_errs;

        if (site == NULL)
            continue;
        if (!iw__cfg_check_label(site, why, sizeof(why))) {
            iw__cfg_error(cx, kn, "%s: %s", kwhere, why);
            continue;
        }
        if (strpbrk(site, "*?[") != NULL) {   /* would silently apply to no site */
            iw__cfg_error(cx, kn, "%s: \"%s\" looks like a glob, but an override names one site "
                          "exactly; give each site its own entry", kwhere, site);
            continue;
        }
        for (size_t i = 0; i < r->n_sites; i++)
            dup |= strcmp(r->sites[i].site, site) == 0;
        if (dup) {
            iw__cfg_error(cx, kn, "%s: site \"%s\" is given twice", kwhere, site);
            continue;
        }
        rs = &r->sites[r->n_sites++];
        rs->site = iw__cfg_strdup(cx, site);
        rs->p = *raw;
        if (iw__cfg_copy_kv(&rs->p.match, &rs->p.n_match, raw->match, raw->n_match) != IW_OK)
            cx->nomem = true;
        snprintf(swhere, sizeof(swhere), "%s: site \"%s\"", where, site);
        struct cfg_map sm = { .keys = rule_keys, .base = &rs->p, .where = swhere,
                              .kind_bit = cx->kind >= 0 ? KB(cx->kind) : 0,
                              .kind_name = cx->kind >= 0 ? kind_names[cx->kind] : "",
                              .site = true, .seen = seen };
        (void)iw__cfg_walk(cx, vn, &sm);
        rs->p.site_target = seen[iw__cfg_key_index(rule_keys, "target")] != NULL;
        if (base_ok && cx->n_errs == before)
            params_finish(cx, cx->kind, &rs->p, vn, seen, swhere, true);
    }
}

/* ======================================================================== */
/* Rule hash                                                                 */
/* ======================================================================== */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static void fnv(uint64_t *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        *h ^= p[i];
        *h *= FNV_PRIME;
    }
}

static void fnv_str(uint64_t *h, char tag, const char *s, size_t len)
{
    uint64_t n = len;
    fnv(h, &tag, 1);
    fnv(h, &n, sizeof(n));      /* length prefix: "ab","c" never equals "a","bc" */
    fnv(h, s, len);
}

struct sorted_pair {
    const char *key;
    size_t key_len;
    yaml_node_t *value;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct sorted_pair *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/*
 * The pairs a mapping means: its own, then those its "<<" merges add (the
 * first to give a key wins), so `<<: *base` hashes as the keys written out
 * and a change to a key the rule overrides leaves its hash alone.
 * `merged`: the pairs come from a merge and may repeat one already there.
 */
static int effective_pairs(struct cfg_ctx *cx, yaml_node_t *n, struct sorted_pair **sp,
                           size_t *cnt, size_t *cap, bool merged, int depth, int *left)
{
    if (depth > CFG_MERGE_DEPTH || --*left < 0)
        return IW_OK;                       /* refused by the walker already */
    for (int pass = 0; pass < 2; pass++) {
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = iw__cfg_node(cx, p->key), *v = iw__cfg_node(cx, p->value);
            bool merge = iw__cfg_is_merge_key(k) && v->type != YAML_SCALAR_NODE;
            bool dup = false;

            if (merge != (pass == 1))
                continue;
            if (merge) {                    /* own keys first, then the merges in order */
                bool seq = v->type == YAML_SEQUENCE_NODE;
                for (yaml_node_item_t *it = seq ? v->data.sequence.items.start : NULL;
                     it != NULL && it < v->data.sequence.items.top; it++)
                    if (effective_pairs(cx, iw__cfg_node(cx, *it), sp, cnt, cap, true,
                                        depth + 1, left) != IW_OK)
                        return IW_E_NOMEM;
                if (!seq && effective_pairs(cx, v, sp, cnt, cap, true, depth + 1, left) != IW_OK)
                    return IW_E_NOMEM;
                continue;
            }
            for (size_t i = 0; merged && i < *cnt && !dup; i++)
                dup = (*sp)[i].key_len == k->data.scalar.length
                      && memcmp((*sp)[i].key, k->data.scalar.value, k->data.scalar.length) == 0;
            if (dup)
                continue;
            if (*cnt == *cap) {
                size_t ncap = *cap ? *cap * 2 : 16;
                struct sorted_pair *g = realloc(*sp, ncap * sizeof(*g));
                if (g == NULL)
                    return IW_E_NOMEM;
                *sp = g;
                *cap = ncap;
            }
            (*sp)[*cnt] = (struct sorted_pair){ .key = (const char *)k->data.scalar.value,
                                                .key_len = k->data.scalar.length, .value = v };
            (*cnt)++;
        }
        merged = true;                      /* the merges' keys never replace the own ones */
    }
    return IW_OK;
}

/*
 * Called only on a validated rule, whose shape (and depth) the schema bounds.
 * skip: keys left out (NULL-terminated) of the mapping at skip_depth, or NULL.
 * From the top (skip_depth 0) they are left out of each per-site override
 * too (sites: {<site>: {...}}, depth 2): a site's severity is no more the
 * condition than the rule's own.
 */
static void hash_node(struct cfg_ctx *cx, uint64_t *h, yaml_node_t *n, int depth,
                      const char *const *skip, int skip_depth)
{
    if (depth > 8)
        return;
    if (depth > skip_depth)
        skip = NULL;                        /* below the level they name */
    if (n->type == YAML_SCALAR_NODE) {
        fnv_str(h, 's', (const char *)n->data.scalar.value, n->data.scalar.length);
    } else if (n->type == YAML_SEQUENCE_NODE) {
        fnv(h, "[", 1);
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            hash_node(cx, h, iw__cfg_node(cx, *it), depth + 1, skip, skip_depth);
        fnv(h, "]", 1);
    } else if (n->type == YAML_MAPPING_NODE) {
        struct sorted_pair *sp = NULL;
        size_t cnt = 0, cap = 0, i;
        int left = CFG_MERGE_MAX + 1;

        if (effective_pairs(cx, n, &sp, &cnt, &cap, false, 0, &left) != IW_OK) {
            free(sp);
            cx->nomem = true;
            return;
        }
        iw_sort(sp, cnt, sizeof(*sp), pair_cmp);
        fnv(h, "{", 1);
        for (i = 0; i < cnt; i++) {
            bool skipped = false;
            for (size_t j = 0; depth == skip_depth && skip != NULL && skip[j] != NULL; j++)
                skipped = skipped || (strlen(skip[j]) == sp[i].key_len
                                      && memcmp(skip[j], sp[i].key, sp[i].key_len) == 0);
            if (skipped)
                continue;
            fnv_str(h, 'k', sp[i].key, sp[i].key_len);
            bool sites = depth == 0 && skip_depth == 0 && sp[i].key_len == 5
                         && memcmp(sp[i].key, "sites", 5) == 0;
            if (depth < skip_depth)         /* on the way down to the level they name */
                hash_node(cx, h, sp[i].value, depth + 1, skip, skip_depth);
            else
                hash_node(cx, h, sp[i].value, depth + 1, sites ? skip : NULL, sites ? 2 : -1);
        }
        fnv(h, "}", 1);
        free(sp);
    }
}

/*
 * The condition of each site's instances (iw_rule_cond_for): the rule without
 * `sites` for a site without an override, and that and its own override for
 * one with. Editing xisha's override then changes xisha's condition only; a
 * reload or restart no longer resolves (and re-raises) dongtan's alerts.
 * `repeat:` is left out as `severity:` is: how often a firing alert is sent
 * again is no part of whether it fires (the engine follows a new repeat).
 * Called only on a validated rule, after parse_sites.
 */
static void site_cond_hashes(struct cfg_ctx *cx, struct iw_rule *r, yaml_node_t *rule,
                             yaml_node_t *sites)
{
    static const char *const not_cond[] = { "message", "labels", "severity", "repeat", "sites",
                                             NULL };
    static const char *const site_not_cond[] = { "severity", "repeat", NULL };
    uint64_t h = FNV_OFFSET;

    hash_node(cx, &h, rule, 0, not_cond, 0);
    snprintf(r->cond_hash_site, sizeof(r->cond_hash_site), "%016" PRIx64, h);
    if (sites == NULL || sites->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = sites->data.mapping.pairs.start; p < sites->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = iw__cfg_node(cx, p->key), *v = iw__cfg_node(cx, p->value);
        bool cond = false;          /* does it change more than the severity or repeat? */

        if (k->type != YAML_SCALAR_NODE || v->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *qk = iw__cfg_node(cx, q->key);
            cond = cond || qk->type != YAML_SCALAR_NODE
                   || (strcmp((const char *)qk->data.scalar.value, "severity") != 0
                       && strcmp((const char *)qk->data.scalar.value, "repeat") != 0);
        }
        for (size_t i = 0; i < r->n_sites; i++) {
            if (strcmp(r->sites[i].site, (const char *)k->data.scalar.value) != 0)
                continue;
            /* A severity (or repeat) alone: the site's condition is the
             * others' (adding or removing it re-grades its alerts, as a rule's
             * severity does). */
            if (!cond) {
                memcpy(r->sites[i].cond_hash, r->cond_hash_site, sizeof(r->cond_hash_site));
                continue;
            }
            h = FNV_OFFSET;
            fnv_str(&h, 'b', r->cond_hash_site, strlen(r->cond_hash_site));
            hash_node(cx, &h, v, 0, site_not_cond, 0);
            snprintf(r->sites[i].cond_hash, sizeof(r->sites[i].cond_hash), "%016" PRIx64, h);
        }
    }
}

/* ======================================================================== */
/* The rules list                                                            */
/* ======================================================================== */

static void parse_rule(struct cfg_ctx *cx, yaml_node_t *e, size_t idx)
{
    struct iw_config *cfg = cx->cfg;
    struct iw_rule *r = &cfg->rules[idx];
    struct iw_rule_params raw;
    yaml_node_t *seen[CFG_MAX_KEYS], *name_node;
    const char *name = iw__cfg_lookup(cx, e, "name", &name_node);
    const char *kind = iw__cfg_lookup(cx, e, "kind", NULL);
    size_t before = cx->n_errs;
    char where[200];
    uint64_t h = FNV_OFFSET;
    bool base_ok;

    r->line = e->start_mark.line + 1;
    r->column = e->start_mark.column + 1;
    if (name != NULL && name[0] != '\0' && !iw__cfg_is_null(name_node))   /* not "~" */
        iw__cfg_named(where, sizeof(where), "rule", name);
    else
        snprintf(where, sizeof(where), "rules[%zu]", idx);
    cx->rule = r;
    cx->kind = -1;
    for (int i = 0; kind != NULL && kind_names[i] != NULL; i++)
        if (strcmp(kind, kind_names[i]) == 0)
            cx->kind = i;

    params_init(cx, &raw);
    struct cfg_map m = { .keys = rule_keys, .base = &raw, .where = where,
                         .kind_bit = cx->kind >= 0 ? KB(cx->kind) : 0,
                         .kind_name = cx->kind >= 0 ? kind_names[cx->kind] : "", .seen = seen };
    (void)iw__cfg_walk(cx, e, &m);
    /* r->p takes ownership of raw.match; raw stays the unfinished template for the sites. */
    r->p = raw;
    /* After a typo ("abvoe") "needs above" would only repeat it: finish clean rules only. */
    base_ok = cx->n_errs == before;
    if (base_ok)
        params_finish(cx, cx->kind, &r->p, e, seen, where, false);
    base_ok = base_ok && cx->n_errs == before;
    if (e->type == YAML_MAPPING_NODE && seen[iw__cfg_key_index(rule_keys, "sites")] != NULL)
        parse_sites(cx, r, &raw, seen[iw__cfg_key_index(rule_keys, "sites")], where, base_ok);
    /* Checked last: a rule that is wrong in itself is reported fully either way. */
    if (r->name != NULL) {
        for (size_t j = 0; j < idx; j++) {
            if (cfg->rules[j].name != NULL && strcmp(cfg->rules[j].name, r->name) == 0) {
                iw__cfg_error(cx, name_node, "rules[%zu]: duplicate rule name \"%s\" (first "
                              "defined at line %zu)", idx, r->name, cfg->rules[j].line);
                break;
            }
        }
    }
    if (cx->n_errs == before) {
        /* Not the condition: how an alert reads, and how severe it is (a
         * reload that changes only the severity re-grades firing alerts). */
        static const char *const presentation[] = { "message", "labels", "severity", NULL };
        static const char *const presentation_v1[] = { "message", "labels", NULL };
        hash_node(cx, &h, e, 0, NULL, -1);
        snprintf(r->hash, sizeof(r->hash), "%016" PRIx64, h);
        h = FNV_OFFSET;
        hash_node(cx, &h, e, 0, presentation, 0);
        snprintf(r->cond_hash, sizeof(r->cond_hash), "%016" PRIx64, h);
        h = FNV_OFFSET;
        hash_node(cx, &h, e, 0, presentation_v1, 0);
        snprintf(r->cond_hash_v1, sizeof(r->cond_hash_v1), "%016" PRIx64, h);
        site_cond_hashes(cx, r, e, seen[iw__cfg_key_index(rule_keys, "sites")]);
    }
    cx->rule = NULL;
    cx->kind = -1;
}

int iw__cfg_parse_rules(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                        yaml_node_t *v)
{
    struct iw_config *cfg = cx->cfg;
    size_t n, i = 0;

    (void)m;
    (void)k;
    if (!iw__cfg_expect(cx, v, YAML_SEQUENCE_NODE, "rules"))
        return IW_E_CONFIG;
    n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return IW_OK;
    cfg->rules = calloc(n, sizeof(*cfg->rules));
    if (cfg->rules == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        cfg->n_rules = i + 1;
        parse_rule(cx, iw__cfg_node(cx, *it), i);
    }
    return IW_OK;
}

void iw__cfg_free_rule(struct iw_rule *r)
{
    free(r->name);
    free(r->select);
    free(r->message);
    free(r->message_zh);
    free(r->message_en);
    iw__cfg_free_kv(r->labels, r->n_labels);
    iw__cfg_free_kv(r->p.match, r->p.n_match);
    for (size_t i = 0; i < r->n_sites; i++) {
        free(r->sites[i].site);
        iw__cfg_free_kv(r->sites[i].p.match, r->sites[i].p.n_match);
    }
    free(r->sites);
}
