/*
 * Parsers of the rule parameters whose shape is more than one scalar, or
 * depends on the rule's kind: severity (a name, or a mapping for the
 * standard kinds), window, flags, event match, AQI standard and time zone.
 * They write into the walk's base, which is the rule's own iw_rule_params or
 * a per-site copy, so the same code serves both (see config_rules.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "islewatch/clock.h"
#include "islewatch/err.h"
#include "islewatch/standards.h"

#define SEC(n) ((long long)(n) * 1000)
#define MIN(n) ((long long)(n) * IW_MS_PER_MIN)
#define DAY(n) ((long long)(n) * IW_MS_PER_DAY)

static const char *const sev_names[] = { "info", "warning", "major", "critical", NULL };
static const char *const agg_names[] = { "avg", "min", "max", "last", NULL };  /* IW_AGG_AVG.. */
static const char *const standard_names[] = { "HJ633-2026", "HJ633-2012", NULL };

/* "rule \"x\": key" for messages. */
static const char *where_key(const struct cfg_map *m, const struct cfg_key *k, char *buf, size_t len)
{
    return iw__cfg_key_where(m, k->name, buf, len);
}

#define PARAMS(m) ((struct iw_rule_params *)(m)->base)

static const struct cfg_key water_severity_keys[] = {
    { "below_target", CFG_ENUM, offsetof(struct iw_rule_params, sev_below_target),
      .names = sev_names, .def.i = IW_SEV_MAJOR, .doc = "class worse than target, V or better" },
    { "worse_than_v", CFG_ENUM, offsetof(struct iw_rule_params, sev_worse_than_v),
      .names = sev_names, .def.i = IW_SEV_CRITICAL, .doc = "class worse than V (劣V)" },
    { 0 }
};

/* Air quality: {level: severity}; a level not named takes the nearest named level below it. */
static int parse_air_severity(struct cfg_ctx *cx, struct iw_rule_params *p, yaml_node_t *v,
                              const char *where)
{
    int given[7] = { -1, -1, -1, -1, -1, -1, -1 };
    yaml_node_t *at[7] = { 0 };
    char lwhere[300];
    int last = -1, last_level = 0, rc = IW_OK;

    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = iw__cfg_node(cx, pr->key), *vn = iw__cfg_node(cx, pr->value);
        const char *key = iw__cfg_scalar(cx, kn, where, "a level 1..6");
        long long lvl;
        int sev;

        if (key == NULL)
            continue;
        if (!iw__cfg_parse_integer(key, &lvl) || lvl < 1 || lvl > 6) {
            iw__cfg_error(cx, kn, "%s: \"%s\" is not an AQI level (1..6)", where, key);
            rc = IW_E_CONFIG;
            continue;
        }
        if (at[lvl] != NULL) {
            iw__cfg_error(cx, kn, "%s: level %lld is given twice", where, lvl);
            rc = IW_E_CONFIG;
            continue;
        }
        snprintf(lwhere, sizeof(lwhere), "%s.%lld", where, lvl);
        if (iw__cfg_get_enum(cx, vn, lwhere, sev_names, "a severity", &sev) != IW_OK) {
            rc = IW_E_CONFIG;
            continue;
        }
        given[lvl] = sev;
        at[lvl] = vn;
    }
    if (rc != IW_OK)
        return rc;
    for (int l = 1; l <= 6; l++) {
        if (given[l] < 0)
            continue;
        if (given[l] < last) {
            iw__cfg_error(cx, at[l], "%s: level %d is %s, milder than level %d (%s); severity "
                          "must not decrease as the level rises", where, l, sev_names[given[l]],
                          last_level, sev_names[last]);
            return IW_E_CONFIG;
        }
        last = given[l];
        last_level = l;
    }
    if (last < 0) {
        iw__cfg_error(cx, v, "%s: name at least one level, e.g. {3: warning, 4: major, 5: critical}",
                      where);
        return IW_E_CONFIG;
    }
    for (int l = 1; l <= 6; l++) {
        int src = l;
        while (src > 1 && given[src] < 0)
            src--;
        while (given[src] < 0)          /* below the first named level: take that one */
            src++;
        p->sev_by_level[l] = (enum iw_severity)given[src];
    }
    return IW_OK;
}

int iw__cfg_rule_severity(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    struct iw_rule_params *p = PARAMS(m);
    char where[256];
    int sev;

    where_key(m, k, where, sizeof(where));
    if (v->type == YAML_MAPPING_NODE && cx->kind == IW_RULE_WATER_QUALITY) {
        struct cfg_map sub = { .keys = water_severity_keys, .base = p, .where = where,
                               .dotted = true };
        return iw__cfg_walk(cx, v, &sub);
    }
    if (v->type == YAML_MAPPING_NODE && cx->kind == IW_RULE_AIR_QUALITY)
        return parse_air_severity(cx, p, v, where);
    if (v->type == YAML_MAPPING_NODE && cx->kind < 0)
        return IW_OK;           /* shape depends on the kind, which is already reported */
    if (iw__cfg_get_enum(cx, v, where, sev_names, "a severity", &sev) != IW_OK)
        return IW_E_CONFIG;
    p->severity = (enum iw_severity)sev;
    p->sev_below_target = p->sev_worse_than_v = (enum iw_severity)sev;
    for (int l = 1; l <= 6; l++)
        p->sev_by_level[l] = (enum iw_severity)sev;
    return IW_OK;
}

static int parse_agg(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                     yaml_node_t *v)
{
    char where[256];
    int agg;

    if (iw__cfg_get_enum(cx, v, where_key(m, k, where, sizeof(where)), agg_names,
                         "an aggregate", &agg) != IW_OK)
        return IW_E_CONFIG;
    PARAMS(m)->window_agg = (enum iw_window_agg)(agg + IW_AGG_AVG);
    return IW_OK;
}

static const struct cfg_key window_keys[] = {
    { "agg", CFG_CUSTOM, .parse = parse_agg, .flags = CFG_REQUIRED, .doc = "avg, min, max or last" },
    { "over", CFG_DURATION, offsetof(struct iw_rule_params, window_ms), .min = SEC(1),
      .max = DAY(31), .flags = CFG_REQUIRED, .doc = "window length" },
    { 0 }
};

/* threshold: {agg, over}; water_quality: the averaging duration. */
int iw__cfg_rule_window(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    struct iw_rule_params *p = PARAMS(m);
    char where[256];

    where_key(m, k, where, sizeof(where));
    if (cx->kind == IW_RULE_THRESHOLD || (cx->kind < 0 && v->type == YAML_MAPPING_NODE)) {
        struct cfg_map sub = { .keys = window_keys, .base = p, .where = where, .dotted = true };
        if (v->type != YAML_MAPPING_NODE) {
            iw__cfg_error(cx, v, "%s: expected {agg: avg|min|max|last, over: DURATION}, got %s",
                          where, iw__cfg_type_name(v));
            return IW_E_CONFIG;
        }
        return iw__cfg_walk(cx, v, &sub);
    }
    return iw__cfg_get_duration(cx, v, where, MIN(1), DAY(31), &p->window_ms);
}

int iw__cfg_rule_flags(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    struct iw_rule_params *p = PARAMS(m);
    char where[256];
    uint32_t flags = 0;
    int rc = IW_OK;

    where_key(m, k, where, sizeof(where));
    if (v->type != YAML_SEQUENCE_NODE || iw__cfg_is_null(v) ||
        v->data.sequence.items.top == v->data.sequence.items.start) {
        iw__cfg_error(cx, v, "%s: expected a list of flag letters, e.g. [D, B], got %s", where,
                      v->type == YAML_SEQUENCE_NODE ? "an empty list" : iw__cfg_type_name(v));
        return IW_E_CONFIG;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *f = iw__cfg_node(cx, *it);
        const char *s = iw__cfg_scalar(cx, f, where, "a flag letter");
        int c;

        if (s == NULL) {
            rc = IW_E_CONFIG;
            continue;
        }
        c = toupper((unsigned char)s[0]);
        if (s[0] != '\0' && s[1] == '\0' && c == 'N') {
            iw__cfg_error(cx, f, "%s: N (normal) cannot raise an alert; use M, C, D, F, T, B or S",
                          where);
            rc = IW_E_CONFIG;
        } else if (s[0] == '\0' || s[1] != '\0' || strchr("MCDFTBS", c) == NULL) {
            iw__cfg_error(cx, f, "%s: \"%s\" is not an HJ 212 flag (M maintenance, C calibration, "
                          "D fault, F stopped, T over range, B communication error, S manual entry)",
                          where, s);
            rc = IW_E_CONFIG;
        } else {
            flags |= 1u << (c - 'A');
        }
    }
    p->flags = flags;
    return rc;
}

static bool known_event_type(const char *s, const char *const *types)
{
    for (; *types != NULL; types++)
        if (strcmp(s, *types) == 0)
            return true;
    return false;
}

int iw__cfg_rule_match(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    static const char *const match_keys[] = { "type", "site", "device", "source", NULL };
    static const char *const event_types[] = { "video_loss", "tamper", "motion", "disk_fault",
                                               NULL };
    struct iw_rule_params *p = PARAMS(m);
    char where[256], kwhere[320], why[256], hint[96];
    size_t n;

    where_key(m, k, where, sizeof(where));
    if (!iw__cfg_expect(cx, v, YAML_MAPPING_NODE, where))
        return IW_E_CONFIG;
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    iw__cfg_free_kv(p->match, p->n_match);   /* a site override replaces the rule's match */
    p->match = NULL;
    p->n_match = 0;
    if (n == 0) {
        iw__cfg_error(cx, v, "%s: needs at least one field, e.g. {type: tamper}", where);
        return IW_E_CONFIG;
    }
    p->match = calloc(n, sizeof(*p->match));
    if (p->match == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = iw__cfg_node(cx, pr->key), *vn = iw__cfg_node(cx, pr->value), *first;
        const char *key = iw__cfg_scalar(cx, kn, where, "a field name");
        const char *val;

        if (key == NULL)
            continue;
        if (strcmp(key, "state") == 0 || strcmp(key, "ts") == 0) {
            iw__cfg_error(cx, kn, "%s: \"%s\" cannot be matched (state: start raises the alert, "
                          "stop resolves it)", where, key);
            continue;
        }
        if (!iw__cfg_check_label(key, why, sizeof(why))) {
            iw__cfg_error(cx, kn, "%s: %s", where, why);
            continue;
        }
        /* The engine sees an event's type and where it came from; other
         * members of the message are not kept, so such a key never matches. */
        if (strcmp(key, "type") != 0 && strcmp(key, "site") != 0 && strcmp(key, "device") != 0
            && strcmp(key, "source") != 0) {
            iw__cfg_error(cx, kn, "%s: \"%s\" cannot be matched; use type, site, device or "
                          "source%s", where, key,
                          iw__cfg_hint_names(key, match_keys, hint, sizeof(hint)));
            continue;
        }
        /* Both would be required of one event: {type: tamper, type: video_loss} meets none. */
        if ((first = iw__cfg_earlier_key(cx, v, pr)) != NULL) {
            iw__cfg_error(cx, kn, "%s: duplicate key \"%s\" (first at line %zu); an event has one "
                          "value of each: give each value its own rule", where, key,
                          first->start_mark.line + 1);
            continue;
        }
        snprintf(kwhere, sizeof(kwhere), "%s.%s", where, key);
        val = iw__cfg_scalar(cx, vn, kwhere, "a value or glob");
        if (val == NULL)
            continue;
        if (!iw__cfg_check_glob(val, 1, 1, why, sizeof(why))) {
            iw__cfg_error(cx, vn, "%s: %s", kwhere, why);
            continue;
        }
        /* Devices may send types of their own, but one a letter or two from
         * SPEC §1's is a typo that would match nothing, without a word. */
        if (strcmp(key, "type") == 0 && !iw__cfg_has_glob_chars(val)
            && iw__cfg_hint_names(val, event_types, hint, sizeof(hint))[0] != '\0'
            && !known_event_type(val, event_types)) {
            iw__cfg_error(cx, vn, "%s: \"%s\" is not an event type the cameras send (%s)%s",
                          kwhere, val, "video_loss, tamper, motion, disk_fault", hint);
            continue;
        }
        p->match[p->n_match].key = iw__cfg_strdup(cx, key);
        p->match[p->n_match].value = iw__cfg_strdup(cx, val);
        p->n_match++;
    }
    return IW_OK;
}

int iw__cfg_rule_standard(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    char where[256], norm[64], hint[96];
    const char *s = iw__cfg_scalar(cx, v, where_key(m, k, where, sizeof(where)), "a standard");
    enum iw_aqi_standard std;

    if (s == NULL)
        return IW_E_CONFIG;
    /* "HJ 633-2026", "hj633—2026": spaces, case and dashes as people type them. */
    if (iw_aqi_standard_parse(s, &std) == IW_OK) {
        PARAMS(m)->standard = std;
        return IW_OK;
    }
    iw_aqi_standard_norm(s, norm, sizeof(norm));
    iw__cfg_error(cx, v, "%s: \"%s\" is not one of HJ633-2026, HJ633-2012%s", where, s,
                  iw__cfg_hint_names(norm, standard_names, hint, sizeof(hint)));
    return IW_E_CONFIG;
}

int iw__cfg_rule_timezone(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    char where[256], hint[96];
    const char *s = iw__cfg_scalar(cx, v, where_key(m, k, where, sizeof(where)), "a time zone");

    if (s == NULL)
        return IW_E_CONFIG;
    if (iw__cfg_parse_tz(s, &PARAMS(m)->tz_offset_min))
        return IW_OK;
    /* Not "unknown" to the world: Asia/Manila is real, just not in the list. */
    char zones[400] = "";
    for (size_t i = 0; iw_tz_name(i) != NULL; i++)
        snprintf(zones + strlen(zones), sizeof(zones) - strlen(zones), "%s%s", i ? ", " : "",
                 iw_tz_name(i));
    iw__cfg_error(cx, v, "%s: time zone \"%s\" is not one islewatch knows%s; use a UTC offset "
                  "such as \"+08:00\" (daily values need a fixed offset), or one of its zones "
                  "without daylight saving time: %s", where, s,
                  iw__cfg_tz_hint(s, hint, sizeof(hint)), zones);
    return IW_E_CONFIG;
}
