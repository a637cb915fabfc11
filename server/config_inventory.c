/*
 * The list sections of the config: `sources:` (topic patterns), the device
 * inventory (`devices:` and `devices_file:`) and `silences:`. Each entry is a
 * mapping checked against a key table; what a table cannot say (unique
 * names, references to other sections, keys that go together) is checked
 * here, and reported at the node that is wrong, naming the other one.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "islewatch/clock.h"
#include "islewatch/err.h"
#include "islewatch/standards.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"

/* ======================================================================== */
/* Shared                                                                    */
/* ======================================================================== */

/* "<what> \"<name>\"" when the entry has a usable name, else "<list>[i]". */
static void entry_where(struct cfg_ctx *cx, yaml_node_t *entry, const char *list,
                        const char *what, const char *name_key, size_t i, char *buf, size_t len)
{
    yaml_node_t *node;
    const char *name = iw__cfg_lookup(cx, entry, name_key, &node);

    if (name != NULL && name[0] != '\0' && !iw__cfg_is_null(node))    /* not "~" or "null" */
        iw__cfg_named(buf, len, what, name);
    else
        snprintf(buf, len, "%s[%zu]", list, i);
}

/* The sequence's items as an allocated array of n zeroed structs of size sz. */
static void *alloc_items(struct cfg_ctx *cx, yaml_node_t *seq, size_t sz, size_t *n)
{
    void *items;

    *n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (*n == 0)
        return NULL;
    items = calloc(*n, sz);
    if (items == NULL)
        cx->nomem = true;
    return items;
}

int iw__cfg_parse_target_key(struct cfg_ctx *cx, const struct cfg_map *m,
                             const struct cfg_key *k, yaml_node_t *v)
{
    char where[256];
    const char *s;
    int t;

    iw__cfg_key_where(m, k->name, where, sizeof(where));
    s = iw__cfg_scalar(cx, v, where, "a water class");
    if (s == NULL)
        return IW_E_CONFIG;
    t = iw__cfg_parse_target(s);
    if (t < 0) {
        iw__cfg_error(cx, v, "%s: \"%s\" is not a water class (I, II, III, IV or V; "
                      "also 1..5 or \u2160..\u2164)", where, s);
        return IW_E_CONFIG;
    }
    *(int *)((char *)m->base + k->off) = t;
    return IW_OK;
}

/* An inventory entry's `pollutants: [pm25, pm10, ...]`: the AQI pollutants its station monitors. */
static int parse_pollutants(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                            yaml_node_t *v)
{
    const char *names[IW_AQI_NPOLLUTANTS + 1] = { NULL };
    char where[256], hint[64];
    unsigned mask = 0;
    int rc = IW_OK;

    for (int p = 0; p < IW_AQI_NPOLLUTANTS; p++)
        names[p] = iw_aqi_pollutant_info((enum iw_aqi_pollutant)p)->metric;
    iw__cfg_key_where(m, k->name, where, sizeof(where));
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start) {
        iw__cfg_error(cx, v, "%s: expected a list of the AQI pollutants the station monitors, "
                      "e.g. [pm25, pm10, o3], got %s", where,
                      v->type == YAML_SEQUENCE_NODE ? "an empty list" : iw__cfg_type_name(v));
        return IW_E_CONFIG;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *f = iw__cfg_node(cx, *it);
        const char *s = iw__cfg_scalar(cx, f, where, "a pollutant");
        int p = s != NULL ? iw_aqi_pollutant_find(s) : -1;

        if (s == NULL) {
            rc = IW_E_CONFIG;
        } else if (p < 0) {
            iw__cfg_error(cx, f, "%s: \"%s\" is not an AQI pollutant (so2, no2, co, o3, pm10, "
                          "pm25)%s", where, s, iw_did_you_mean(s, names, hint, sizeof(hint)));
            rc = IW_E_CONFIG;
        } else {
            mask |= 1u << p;
        }
    }
    *(unsigned *)((char *)m->base + k->off) = mask;
    return rc;
}

/* ======================================================================== */
/* Sources                                                                   */
/* ======================================================================== */

const struct iw_source_cfg *iw__cfg_find_source(const struct iw_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_sources; i++)
        if (cfg->sources[i].name != NULL && strcmp(cfg->sources[i].name, name) == 0)
            return &cfg->sources[i];
    return NULL;
}

void iw__cfg_hint_sources(const struct iw_config *cfg, const char *word, char *buf, size_t len)
{
    struct cfg_hint h;

    iw__cfg_hint_init(&h);
    for (size_t i = 0; i < cfg->n_sources; i++)
        if (cfg->sources[i].name != NULL)
            iw__cfg_hint_add(&h, word, cfg->sources[i].name);
    iw__cfg_hint_text(&h, buf, len);
}

static bool check_source_topic(const char *s, char *why, size_t len)
{
    struct iw_topic_pattern p;
    const char *reason = NULL;

    if (iw_topic_compile(s, &p, &reason) != IW_OK) {
        snprintf(why, len, "\"%s\": %s", s, reason);
        return false;
    }
    for (size_t i = 0; i < p.n_levels; i++) {
        for (size_t j = 0; j < i; j++) {
            if (p.capture[i] && p.capture[j] && strcmp(p.levels[i], p.levels[j]) == 0) {
                snprintf(why, len, "\"%s\": {%s} appears twice", s, p.levels[i]);
                iw_topic_pattern_fini(&p);
                return false;
            }
        }
    }
    iw_topic_pattern_fini(&p);
    return true;
}

static const char *const format_names[] = { "json", "event", NULL };

#define SO(f) offsetof(struct iw_source_cfg, f)
static const struct cfg_key source_keys[] = {
    { "name", CFG_STR, SO(name), .check = iw__cfg_check_label, .flags = CFG_REQUIRED,
      .doc = "first level of the series names: <source>/<site>/<device>/<metric>" },
    { "topic", CFG_STR, SO(topic), .check = check_source_topic, .flags = CFG_REQUIRED,
      .doc = "pattern with {site} and {device}; each {x} is one whole level" },
    { "format", CFG_ENUM, SO(format), .names = format_names, .def.i = IW_FMT_JSON,
      .doc = "json (samples) or event (type/state messages)" },
    { "qos", CFG_INT, SO(qos), .min = 0, .max = 2, .def.i = 1, .doc = "subscription QoS" },
    { "ts_field", CFG_STR, SO(ts_field), .def.s = "ts", .check = iw__cfg_check_label,
      .doc = "payload member holding the sample time" },
    { 0 }
};

static void check_source_unique(struct cfg_ctx *cx, size_t i, yaml_node_t *entry)
{
    struct iw_source_cfg *s = &cx->cfg->sources[i];
    yaml_node_t *name_node, *topic_node;
    struct iw_topic_pattern a, b;
    const char *why;

    (void)iw__cfg_lookup(cx, entry, "name", &name_node);
    (void)iw__cfg_lookup(cx, entry, "topic", &topic_node);
    for (size_t j = 0; j < i && s->name != NULL; j++) {
        if (cx->cfg->sources[j].name != NULL && strcmp(cx->cfg->sources[j].name, s->name) == 0) {
            iw__cfg_error(cx, name_node, "sources[%zu]: duplicate source name \"%s\" "
                          "(first defined at line %zu)", i, s->name, cx->cfg->sources[j].line);
            return;
        }
    }
    /* Two patterns with the same '+' form would both claim every message. */
    if (s->topic == NULL || iw_topic_compile(s->topic, &a, &why) != IW_OK)
        return;
    for (size_t j = 0; j < i; j++) {
        const struct iw_source_cfg *o = &cx->cfg->sources[j];
        if (o->topic == NULL || iw_topic_compile(o->topic, &b, &why) != IW_OK)
            continue;
        bool same = strcmp(a.filter, b.filter) == 0;
        iw_topic_pattern_fini(&b);
        if (same) {
            iw__cfg_error(cx, topic_node, "source \"%s\": topic \"%s\" matches the same topics as "
                          "source \"%s\" (line %zu)", s->name ? s->name : "?", s->topic,
                          o->name ? o->name : "?", o->line);
            break;
        }
    }
    iw_topic_pattern_fini(&a);
}

int iw__cfg_parse_sources(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    struct iw_config *cfg = cx->cfg;
    size_t n, i = 0;
    char where[160];

    (void)m;
    (void)k;
    if (!iw__cfg_expect(cx, v, YAML_SEQUENCE_NODE, "sources")) {
        cx->sources_bad = true;
        return IW_E_CONFIG;
    }
    cfg->sources = alloc_items(cx, v, sizeof(*cfg->sources), &n);
    if (n == 0 || n > IW_MAX_SOURCES)
        cx->sources_bad = true;
    if (n == 0) {
        iw__cfg_error(cx, v, "sources: is empty; list at least one source, or remove the key "
                      "to use the four default sources");
        return IW_E_CONFIG;
    }
    if (cfg->sources == NULL)
        return IW_E_NOMEM;
    if (n > IW_MAX_SOURCES) {
        /* The daemon would subscribe to the first ones only, and say nothing. */
        iw__cfg_error(cx, v, "sources: %zu sources, at most %d can be subscribed to; merge "
                      "some (a {x} level matches any value)", n, IW_MAX_SOURCES);
        return IW_E_CONFIG;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *e = iw__cfg_node(cx, *it);
        struct iw_source_cfg *s = &cfg->sources[i];
        struct cfg_map em = { .keys = source_keys, .base = s, .where = where };

        entry_where(cx, e, "sources", "source", "name", i, where, sizeof(where));
        iw__cfg_defaults(cx, source_keys, s);
        cfg->n_sources = i + 1;
        s->line = e->start_mark.line + 1;
        s->column = e->start_mark.column + 1;
        if (iw__cfg_walk(cx, e, &em) == IW_OK)
            check_source_unique(cx, i, e);
    }
    return IW_OK;
}

int iw__cfg_default_sources(struct cfg_ctx *cx)
{
    static const struct { const char *name, *topic; enum iw_source_format fmt; } defs[] = {
        { "water", "sensors/water/{site}/{device}", IW_FMT_JSON },
        { "air", "sensors/air/{site}/{device}", IW_FMT_JSON },
        { "camera", "cameras/{site}/{device}/status", IW_FMT_JSON },
        { "camera_event", "cameras/{site}/{device}/event", IW_FMT_EVENT },
    };
    struct iw_config *cfg = cx->cfg;

    cfg->sources = calloc(IW_ARRAY_LEN(defs), sizeof(*cfg->sources));
    if (cfg->sources == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    for (size_t i = 0; i < IW_ARRAY_LEN(defs); i++) {
        struct iw_source_cfg *s = &cfg->sources[i];
        iw__cfg_defaults(cx, source_keys, s);
        s->name = iw__cfg_strdup(cx, defs[i].name);
        s->topic = iw__cfg_strdup(cx, defs[i].topic);
        s->format = defs[i].fmt;
        cfg->n_sources = i + 1;
    }
    return cx->nomem ? IW_E_NOMEM : IW_OK;
}

/* ======================================================================== */
/* Device inventory                                                          */
/* ======================================================================== */

static const char *const body_names[] = { "river", "lake", NULL };

#define DV(f) offsetof(struct iw_device_cfg, f)
static const struct cfg_key device_keys[] = {
    { "source", CFG_STR, DV(source), .check = iw__cfg_check_label, .flags = CFG_REQUIRED,
      .doc = "name of the source the device reports on" },
    { "site", CFG_STR, DV(site), .check = iw__cfg_check_label, .flags = CFG_REQUIRED,
      .doc = "site label as in its topics" },
    { "device", CFG_STR, DV(device), .check = iw__cfg_check_label, .flags = CFG_REQUIRED,
      .doc = "device label as in its topics" },
    { "name", CFG_STR, DV(name), .doc = "display name" },
    { "body", CFG_ENUM, DV(body), .names = body_names, .def.i = IW_BODY_RIVER,
      .doc = "water body: river or lake (lakes and reservoirs); decides TP/TN limits" },
    { "target", CFG_CUSTOM, DV(target), .parse = iw__cfg_parse_target_key,
      .doc = "water class the station must meet: I..V" },
    { "lat", CFG_NUMBER, DV(lat), .has_off = DV(has_pos), .min = -90, .max = 90,
      .flags = CFG_HAS | CFG_BOUNDED, .doc = "latitude, degrees (with lon)" },
    { "lon", CFG_NUMBER, DV(lon), .has_off = DV(has_pos), .min = -180, .max = 180,
      .flags = CFG_HAS | CFG_BOUNDED, .doc = "longitude, degrees (with lat)" },
    { "pollutants", CFG_CUSTOM, DV(pollutants), .parse = parse_pollutants,
      .doc = "air station: the AQI pollutants it monitors (so2 no2 co o3 pm10 pm25)" },
    { 0 }
};

static uint32_t device_hash(const struct iw_device_cfg *d)
{
    uint32_t h = iw_hash(d->source, strlen(d->source) + 1);     /* each with its NUL */
    h = iw_hash_cont(h, d->site, strlen(d->site) + 1);
    return iw_hash_cont(h, d->device, strlen(d->device));
}

static bool same_device(const struct iw_device_cfg *a, const struct iw_device_cfg *b)
{
    return strcmp(a->source, b->source) == 0 && strcmp(a->site, b->site) == 0
           && strcmp(a->device, b->device) == 0;
}

/*
 * The entry declared before entry i with its (source, site, device), or
 * SIZE_MAX after adding i: a hash set of entry indexes (open addressing,
 * index + 1, 0 empty, at most half full), so that an inventory of tens of
 * thousands of cameras is checked in linear time, not by comparing each entry
 * with every one before it. Out of memory: SIZE_MAX (cx->nomem).
 */
static size_t device_declared(struct cfg_ctx *cx, size_t i)
{
    const struct iw_device_cfg *dv = cx->cfg->devices;

    if (2 * (cx->n_dev_set + 1) > cx->cap_dev_set) {
        size_t cap = cx->cap_dev_set ? cx->cap_dev_set * 2 : 256;
        size_t *t = calloc(cap, sizeof(*t));
        if (t == NULL) {
            cx->nomem = true;
            return SIZE_MAX;
        }
        for (size_t k = 0; k < cx->cap_dev_set; k++) {
            if (cx->dev_set[k] == 0)
                continue;
            size_t at = device_hash(&dv[cx->dev_set[k] - 1]) & (cap - 1);
            while (t[at] != 0)
                at = (at + 1) & (cap - 1);
            t[at] = cx->dev_set[k];
        }
        free(cx->dev_set);
        cx->dev_set = t;
        cx->cap_dev_set = cap;
    }
    size_t at = device_hash(&dv[i]) & (cx->cap_dev_set - 1);
    for (; cx->dev_set[at] != 0; at = (at + 1) & (cx->cap_dev_set - 1))
        if (same_device(&dv[cx->dev_set[at] - 1], &dv[i]))
            return cx->dev_set[at] - 1;
    cx->dev_set[at] = i + 1;
    cx->n_dev_set++;
    return SIZE_MAX;
}

/* walked: the entry's keys parsed; one that did not is only remembered by name. */
static void check_device(struct cfg_ctx *cx, size_t i, yaml_node_t *e, const char *where,
                         yaml_node_t **seen, bool walked)
{
    struct iw_config *cfg = cx->cfg;
    struct iw_device_cfg *d = &cfg->devices[i];
    int lat = iw__cfg_key_index(device_keys, "lat"), lon = iw__cfg_key_index(device_keys, "lon");
    char hint[96];

    if (walked && (seen[lat] == NULL) != (seen[lon] == NULL)) {
        iw__cfg_error(cx, seen[lat] ? seen[lat] : seen[lon],
                      "%s: lat and lon go together; give both or neither", where);
    }
    if (walked && d->source != NULL && !cx->sources_bad
        && iw__cfg_find_source(cfg, d->source) == NULL) {
        iw__cfg_hint_sources(cfg, d->source, hint, sizeof(hint));
        iw__cfg_error(cx, seen[iw__cfg_key_index(device_keys, "source")],
                      "%s: source: no source named \"%s\"%s", where, d->source, hint);
    }
    size_t j = d->source != NULL && d->site != NULL && d->device != NULL
                   ? device_declared(cx, i) : SIZE_MAX;
    if (j == SIZE_MAX || !walked)
        return;
    if (cx->dev_pos[j].file_idx == cx->file_idx)
        iw__cfg_error(cx, e, "%s: %s/%s/%s is declared twice (first at line %zu)", where,
                      d->source, d->site, d->device, cx->dev_pos[j].line);
    else
        iw__cfg_error(cx, e, "%s: %s/%s/%s is declared twice (first at %s:%zu)", where,
                      d->source, d->site, d->device, cx->dev_pos[j].file, cx->dev_pos[j].line);
}

/* Append the entries of sequence v (from `devices:` or the devices file). */
static int parse_device_list(struct cfg_ctx *cx, yaml_node_t *v, const char *list)
{
    struct iw_config *cfg = cx->cfg;
    size_t n, first = cfg->n_devices, i = 0;
    struct iw_device_cfg *grown;
    struct cfg_pos *pos;
    char where[160];

    if (!iw__cfg_expect(cx, v, YAML_SEQUENCE_NODE, list))
        return IW_E_CONFIG;
    n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return IW_OK;
    grown = realloc(cfg->devices, (first + n) * sizeof(*grown));
    if (grown == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    cfg->devices = grown;
    pos = realloc(cx->dev_pos, (first + n) * sizeof(*pos));
    if (pos == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    cx->dev_pos = pos;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *e = iw__cfg_node(cx, *it), *seen[CFG_MAX_KEYS];
        struct iw_device_cfg *d = &cfg->devices[first + i];
        struct cfg_map em = { .keys = device_keys, .base = d, .where = where, .seen = seen };
        const char *site = iw__cfg_lookup(cx, e, "site", NULL);
        const char *dev = iw__cfg_lookup(cx, e, "device", NULL);

        if (site != NULL && dev != NULL)
            snprintf(where, sizeof(where), "device \"%s/%s\"", site, dev);
        else
            snprintf(where, sizeof(where), "%s[%zu]", list, i);
        memset(d, 0, sizeof(*d));
        iw__cfg_defaults(cx, device_keys, d);
        cx->dev_pos[first + i] = (struct cfg_pos){ .file = cx->file, .file_idx = cx->file_idx,
                                                   .line = e->start_mark.line + 1 };
        cfg->n_devices = first + i + 1;
        bool walked = iw__cfg_walk(cx, e, &em) == IW_OK;
        check_device(cx, first + i, e, where, seen, walked);
    }
    return IW_OK;
}

int iw__cfg_parse_devices(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v)
{
    (void)m;
    (void)k;
    return parse_device_list(cx, v, "devices");
}

/*
 * The devices file is a second document: its errors carry its own name and
 * sort after the main file's. The context is switched to it and back.
 */
int iw__cfg_parse_devices_file(struct cfg_ctx *cx, const struct cfg_map *m,
                               const struct cfg_key *k, yaml_node_t *v)
{
    const char *rel = iw__cfg_scalar(cx, v, "devices_file", "a file name");
    yaml_document_t doc, *main_doc = cx->doc;
    const char *main_file = cx->file;
    char *path = NULL, *dir_copy, *text;
    char why[256];
    size_t len;
    int rc;

    (void)m;
    (void)k;
    if (rel == NULL)
        return IW_E_CONFIG;
    dir_copy = iw__cfg_strdup(cx, cx->cfg->file);
    if (dir_copy == NULL)
        return IW_E_NOMEM;
    if (rel[0] == '/' || strcmp(dirname(dir_copy), ".") == 0)
        rc = asprintf(&path, "%s", rel);
    else
        rc = asprintf(&path, "%s/%s", dir_copy, rel);
    free(dir_copy);
    if (rc < 0) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    rc = iw__cfg_read_file(path, &text, &len, why, sizeof(why));
    if (rc != IW_OK) {
        iw__cfg_error(cx, v, "devices_file: \"%s\": %s", path, why);
        free(path);
        return IW_E_CONFIG;
    }
    cx->file = path;
    cx->file_idx = 1;
    rc = iw__cfg_load_doc(cx, text, len, &doc);
    if (rc == IW_OK) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        cx->doc = &doc;
        if (root != NULL && !iw__cfg_is_null(root))
            rc = parse_device_list(cx, root, "devices");
        yaml_document_delete(&doc);
    }
    cx->doc = main_doc;
    cx->file = main_file;
    cx->file_idx = 0;
    free(text);
    free(path);
    return rc;
}

/* ======================================================================== */
/* Silences                                                                  */
/* ======================================================================== */

static const char *const silence_match_keys[] = { "rule", "site", "device", "source",
                                                  "severity", "metric", NULL };

static bool rule_exists(const struct iw_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_rules; i++)
        if (cfg->rules[i].name != NULL && strcmp(cfg->rules[i].name, name) == 0)
            return true;
    return false;
}

/* A literal (glob-free) value must name something that exists: a typo would silence nothing. */
static void check_match_reference(struct cfg_ctx *cx, const char *where, const char *key,
                                  const char *val, yaml_node_t *at)
{
    static const char *const sev[] = { "info", "warning", "major", "critical", NULL };
    const struct iw_config *cfg = cx->cfg;
    struct cfg_hint h;
    char hint[96];

    if (iw__cfg_has_glob_chars(val))
        return;
    if (strcmp(key, "rule") == 0 && !rule_exists(cfg, val)) {
        iw__cfg_hint_init(&h);
        for (size_t i = 0; i < cfg->n_rules; i++)
            if (cfg->rules[i].name != NULL)
                iw__cfg_hint_add(&h, val, cfg->rules[i].name);
        iw__cfg_error(cx, at, "%s.rule: no rule named \"%s\"%s", where, val,
                      iw__cfg_hint_text(&h, hint, sizeof(hint)));
    } else if (strcmp(key, "source") == 0 && !cx->sources_bad
               && iw__cfg_find_source(cfg, val) == NULL) {
        iw__cfg_hint_sources(cfg, val, hint, sizeof(hint));
        iw__cfg_error(cx, at, "%s.source: no source named \"%s\"%s", where, val, hint);
    } else if (strcmp(key, "severity") == 0 && iw_severity_parse(val) < 0) {
        iw__cfg_error(cx, at, "%s.severity: \"%s\" is not one of info, warning, major, "
                      "critical%s", where, val, iw__cfg_hint_names(val, sev, hint, sizeof(hint)));
    }
}

static int parse_silence_match(struct cfg_ctx *cx, const struct cfg_map *m,
                               const struct cfg_key *k, yaml_node_t *v)
{
    struct iw_silence_cfg *s = (struct iw_silence_cfg *)((char *)m->base + k->off);
    char where[256], kwhere[300], why[256], hint[96];
    size_t n;

    iw__cfg_key_where(m, k->name, where, sizeof(where));
    if (!iw__cfg_expect(cx, v, YAML_MAPPING_NODE, where))
        return IW_E_CONFIG;
    n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n == 0) {
        iw__cfg_error(cx, v, "%s: needs at least one of rule, site, device, source, severity, "
                      "metric (an empty match would silence everything)", where);
        return IW_E_CONFIG;
    }
    s->match = calloc(n, sizeof(*s->match));
    if (s->match == NULL) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = iw__cfg_node(cx, p->key), *vn = iw__cfg_node(cx, p->value);
        const char *key = iw__cfg_scalar(cx, kn, where, "a key");
        const char *val;
        bool known = false, dup = false;

        if (key == NULL)
            continue;
        for (size_t i = 0; silence_match_keys[i] != NULL; i++)
            known |= strcmp(key, silence_match_keys[i]) == 0;
        for (size_t i = 0; i < s->n_match; i++)
            dup |= strcmp(key, s->match[i].key) == 0;
        if (!known) {
            iw__cfg_error(cx, kn, "%s: unknown key \"%s\"%s", where, key,
                          iw__cfg_hint_names(key, silence_match_keys, hint, sizeof(hint)));
            continue;
        }
        if (dup) {
            iw__cfg_error(cx, kn, "%s: duplicate key \"%s\"", where, key);
            continue;
        }
        snprintf(kwhere, sizeof(kwhere), "%s.%s", where, key);
        val = iw__cfg_scalar(cx, vn, kwhere, "a name or glob");
        if (val == NULL)
            continue;
        if (!iw__cfg_check_glob(val, 1, 1, why, sizeof(why))) {
            iw__cfg_error(cx, vn, "%s: %s", kwhere, why);
            continue;
        }
        s->match[s->n_match].key = iw__cfg_strdup(cx, key);
        s->match[s->n_match].value = iw__cfg_strdup(cx, val);
        s->n_match++;
        check_match_reference(cx, where, key, val, vn);
    }
    return IW_OK;
}

static int parse_time_key(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                          yaml_node_t *v)
{
    char where[256];
    const char *s;

    iw__cfg_key_where(m, k->name, where, sizeof(where));
    s = iw__cfg_scalar(cx, v, where, "a time");
    if (s == NULL)
        return IW_E_CONFIG;
    if (iw_rfc3339_parse(s, strlen(s), (int64_t *)((char *)m->base + k->off)) != IW_OK) {
        iw__cfg_error(cx, v, "%s: \"%s\" is not an RFC 3339 time (e.g. 2026-11-29T10:00:00+08:00)",
                      where, s);
        return IW_E_CONFIG;
    }
    return IW_OK;
}

#define SI(f) offsetof(struct iw_silence_cfg, f)
static const struct cfg_key silence_keys[] = {
    { "match", CFG_CUSTOM, 0, .parse = parse_silence_match, .flags = CFG_REQUIRED,
      .doc = "rule, site, device, source, severity, metric: a name or glob each" },
    { "from", CFG_CUSTOM, SI(from_ms), .parse = parse_time_key,
      .doc = "RFC 3339 start; always when absent" },
    { "to", CFG_CUSTOM, SI(to_ms), .parse = parse_time_key, .doc = "RFC 3339 end; open when absent" },
    { "reason", CFG_STR, SI(reason), .doc = "why (shown with silenced alerts)" },
    { 0 }
};

int iw__cfg_parse_silences(struct cfg_ctx *cx, const struct cfg_map *m,
                           const struct cfg_key *k, yaml_node_t *v)
{
    struct iw_config *cfg = cx->cfg;
    size_t n, i = 0;
    char where[64], a[40], b[40];

    (void)m;
    (void)k;
    if (!iw__cfg_expect(cx, v, YAML_SEQUENCE_NODE, "silences"))
        return IW_E_CONFIG;
    cfg->silences = alloc_items(cx, v, sizeof(*cfg->silences), &n);
    if (cfg->silences == NULL)
        return n == 0 ? IW_OK : IW_E_NOMEM;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *e = iw__cfg_node(cx, *it), *seen[CFG_MAX_KEYS];
        struct iw_silence_cfg *s = &cfg->silences[i];
        struct cfg_map em = { .keys = silence_keys, .base = s, .where = where, .dotted = true,
                              .seen = seen };

        snprintf(where, sizeof(where), "silences[%zu]", i);
        iw__cfg_defaults(cx, silence_keys, s);
        s->from_ms = INT64_MIN;
        s->to_ms = INT64_MAX;
        cfg->n_silences = i + 1;
        if (iw__cfg_walk(cx, e, &em) == IW_OK && s->from_ms >= s->to_ms)
            iw__cfg_error(cx, seen[iw__cfg_key_index(silence_keys, "to")],
                          "%s.to: %s is not after from (%s)", where,
                          iw_rfc3339_format(s->to_ms, a, sizeof(a)),
                          iw_rfc3339_format(s->from_ms, b, sizeof(b)));
    }
    return IW_OK;
}
