/*
 * The generic half of the config loader: the table walker, typed scalar
 * getters with strict parsing, "did you mean" hints and the value checks the
 * sections share (labels, globs, message templates, time zones, classes).
 * Nothing here knows about a particular section; config.c and the section
 * files describe their keys in tables and call iw__cfg_walk().
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"
#include "islewatch/clock.h"
#include "islewatch/err.h"
#include "islewatch/topic.h"

/* ======================================================================== */
/* Nodes                                                                     */
/* ======================================================================== */

yaml_node_t *iw__cfg_node(struct cfg_ctx *cx, int id)
{
    return yaml_document_get_node(cx->doc, id);
}

bool iw__cfg_is_null(const yaml_node_t *n)
{
    const char *s;

    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = (const char *)n->data.scalar.value;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *iw__cfg_type_name(const yaml_node_t *n)
{
    if (n == NULL || iw__cfg_is_null(n))
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:  return "a mapping";
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_SCALAR_NODE:   return "a scalar";
    default:                 return "an empty node";
    }
}

const char *iw__cfg_scalar(struct cfg_ctx *cx, yaml_node_t *n, const char *where,
                           const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        iw__cfg_error(cx, n, "%s: expected %s, got %s", where, what, iw__cfg_type_name(n));
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

bool iw__cfg_expect(struct cfg_ctx *cx, yaml_node_t *n, yaml_node_type_t type,
                    const char *where)
{
    if (n->type == type && !iw__cfg_is_null(n))
        return true;
    iw__cfg_error(cx, n, "%s: expected %s, got %s", where,
                  type == YAML_MAPPING_NODE ? "a mapping" : "a sequence", iw__cfg_type_name(n));
    return false;
}

/*
 * YAML's merge key: `<<: *base` (or `<<: [*a, *b]`) in a mapping takes the
 * keys of the aliased mapping(s) that the mapping does not give itself, so
 * rules can share their common keys. libyaml leaves it to the application.
 * Only a plain "<<" is one; a quoted "<<" is an ordinary (unknown) key.
 */
bool iw__cfg_is_merge_key(const yaml_node_t *kn)
{
    return kn != NULL && kn->type == YAML_SCALAR_NODE
           && kn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
           && strcmp((const char *)kn->data.scalar.value, "<<") == 0;
}

static yaml_node_t *lookup_node(struct cfg_ctx *cx, yaml_node_t *map, const char *name, int depth,
                                int *left)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE || depth > CFG_MERGE_DEPTH || --*left < 0)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = iw__cfg_node(cx, p->key);
        if (k->type == YAML_SCALAR_NODE && !iw__cfg_is_merge_key(k)
            && strcmp((const char *)k->data.scalar.value, name) == 0)
            return iw__cfg_node(cx, p->value);
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *v = iw__cfg_node(cx, p->value), *hit = NULL;
        if (!iw__cfg_is_merge_key(iw__cfg_node(cx, p->key)))
            continue;
        if (v->type == YAML_MAPPING_NODE)
            hit = lookup_node(cx, v, name, depth + 1, left);
        for (yaml_node_item_t *it = v->type == YAML_SEQUENCE_NODE ? v->data.sequence.items.start
                                                                  : NULL;
             it != NULL && it < v->data.sequence.items.top && hit == NULL; it++)
            hit = lookup_node(cx, iw__cfg_node(cx, *it), name, depth + 1, left);
        if (hit != NULL)
            return hit;
    }
    return NULL;
}

const char *iw__cfg_lookup(struct cfg_ctx *cx, yaml_node_t *map, const char *name,
                           yaml_node_t **value)
{
    int left = CFG_MERGE_MAX + 1;           /* map itself, and what it merges */
    yaml_node_t *v = lookup_node(cx, map, name, 0, &left);

    if (value != NULL)
        *value = v;
    return v != NULL && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/*
 * For the mappings read pair by pair rather than by a table (labels, event
 * match): libyaml keeps both pairs of a duplicate key, and the second would
 * otherwise be kept silently too (a label given twice in one alert, a match
 * that no event can meet).
 */
yaml_node_t *iw__cfg_earlier_key(struct cfg_ctx *cx, yaml_node_t *map, const yaml_node_pair_t *p)
{
    yaml_node_t *k = iw__cfg_node(cx, p->key);

    if (k == NULL || k->type != YAML_SCALAR_NODE)
        return NULL;
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        yaml_node_t *e = iw__cfg_node(cx, q->key);
        if (e != NULL && e->type == YAML_SCALAR_NODE
            && strcmp((const char *)e->data.scalar.value, (const char *)k->data.scalar.value) == 0)
            return e;
    }
    return NULL;
}

char *iw__cfg_strdup(struct cfg_ctx *cx, const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        cx->nomem = true;
    return d;
}

/* ======================================================================== */
/* Strict scalar parsing                                                     */
/* ======================================================================== */

/* strtod alone accepts hex, "inf", "nan" and leading blanks: none of them is a config number. */
bool iw__cfg_parse_number(const char *s, double *out)
{
    const char *p = s;
    char *end;
    bool digits = false;

    if (*p == '+' || *p == '-')
        p++;
    while (isdigit((unsigned char)*p)) { p++; digits = true; }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) { p++; digits = true; }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p != '\0')
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return *end == '\0' && errno == 0 && isfinite(*out);
}

bool iw__cfg_parse_integer(const char *s, long long *out)
{
    const char *p = s;
    char *end;

    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return *end == '\0' && errno == 0;
}

/* Bytes: a plain count, or with a unit; KiB/MiB/GiB are binary, KB/MB/GB decimal. */
bool iw__cfg_parse_size(const char *s, long long *out)
{
    static const struct { const char *unit; long long mult; } units[] = {
        { "", 1 }, { "B", 1 }, { "KiB", 1LL << 10 }, { "MiB", 1LL << 20 },
        { "GiB", 1LL << 30 }, { "KB", 1000 }, { "kB", 1000 }, { "MB", 1000000 },
        { "GB", 1000000000 },
    };
    char *end;
    long long v;

    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0)
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < IW_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mult)
                return false;
            *out = v * units[i].mult;
            return true;
        }
    }
    return false;
}

char *iw__cfg_fmt_duration(int64_t ms, char *buf, size_t len)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        { "y", 365 * IW_MS_PER_DAY }, { "d", IW_MS_PER_DAY }, { "h", IW_MS_PER_HOUR },
        { "m", IW_MS_PER_MIN }, { "s", 1000 }, { "ms", 1 },
    };
    size_t used = 0;

    if (ms <= 0) {
        snprintf(buf, len, "0");
        return buf;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < IW_ARRAY_LEN(units) && ms > 0; i++) {
        if (ms >= units[i].ms) {
            int n = snprintf(buf + used, len - used, "%lld%s",
                             (long long)(ms / units[i].ms), units[i].unit);
            if (n < 0 || (size_t)n >= len - used)
                break;
            used += (size_t)n;
            ms %= units[i].ms;
        }
    }
    return buf;
}

static void fmt_size(long long v, char *buf, size_t len)
{
    if (v >= (1LL << 20) && v % (1LL << 20) == 0)
        snprintf(buf, len, "%lldMiB", v >> 20);
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(buf, len, "%lldKiB", v >> 10);
    else
        snprintf(buf, len, "%lld", v);
}

/*
 * Water class: "III", "3", "Ⅲ" (U+2162) and the same with the "类" suffix
 * people write in Chinese documents.
 */
int iw__cfg_parse_target(const char *s)
{
    static const char *const roman[] = { "I", "II", "III", "IV", "V" };
    static const char *const numeral[] = { "\u2160", "\u2161", "\u2162", "\u2163", "\u2164" };
    char buf[32];
    size_t n = strlen(s);

    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n + 1);
    if (n > strlen("\u7c7b") && strcmp(buf + n - strlen("\u7c7b"), "\u7c7b") == 0)
        buf[n - strlen("\u7c7b")] = '\0';
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(buf, roman[i]) == 0 || strcmp(buf, numeral[i]) == 0 ||
            (buf[0] == '1' + i && buf[1] == '\0'))
            return i + 1;
    }
    return -1;
}

/*
 * Daily averages need the station's local day. Only zones without daylight
 * saving time can be a fixed offset, which is what the standards assume for
 * China; other zones must be written as an offset.
 */
bool iw__cfg_parse_tz(const char *s, int *offset_min)
{
    return iw_tz_parse(s, offset_min) == IW_OK;
}

/* ======================================================================== */
/* Did you mean                                                              */
/* ======================================================================== */

/* Optimal string alignment distance (a transposition counts one), case-blind. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    size_t d[MAXLEN + 1][MAXLEN + 1];

    if (la > MAXLEN || lb > MAXLEN)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

void iw__cfg_hint_init(struct cfg_hint *h)
{
    h->best = NULL;
    h->dist = SIZE_MAX;
}

void iw__cfg_hint_add(struct cfg_hint *h, const char *word, const char *candidate)
{
    size_t d = edit_distance(word, candidate), lw = strlen(word);
    /* Short words: one edit only, or "qos" would suggest "to". */
    size_t limit = lw <= 3 ? 1 : 2;

    /* An abbreviation is as near as a one-letter typo: "crit" for "critical",
     * "warn" (the log level) for "warning", "water" for "water_quality". */
    if (d > 1 && lw >= 3 && lw < strlen(candidate) && strncasecmp(candidate, word, lw) == 0)
        d = 1;

    /* ... and never more edits than half the candidate ("mean" is not a typo of "min"). */
    if (d <= limit && d * 2 <= strlen(candidate) && d < h->dist) {
        h->best = candidate;
        h->dist = d;
    }
}

const char *iw__cfg_hint_text(const struct cfg_hint *h, char *buf, size_t len)
{
    if (h->best == NULL)
        buf[0] = '\0';
    else
        snprintf(buf, len, " (did you mean \"%s\"?)", h->best);
    return buf;
}

const char *iw__cfg_tz_hint(const char *word, char *buf, size_t len)
{
    struct cfg_hint h;

    iw__cfg_hint_init(&h);
    for (size_t i = 0; iw_tz_name(i) != NULL; i++)
        iw__cfg_hint_add(&h, word, iw_tz_name(i));
    return iw__cfg_hint_text(&h, buf, len);
}

const char *iw_did_you_mean(const char *word, const char *const *names, char *buf, size_t len)
{
    return iw__cfg_hint_names(word, names, buf, len);
}

const char *iw__cfg_hint_names(const char *word, const char *const *names, char *buf, size_t len)
{
    struct cfg_hint h;

    iw__cfg_hint_init(&h);
    for (size_t i = 0; names[i] != NULL; i++)
        iw__cfg_hint_add(&h, word, names[i]);
    return iw__cfg_hint_text(&h, buf, len);
}

/* ======================================================================== */
/* Typed getters                                                             */
/* ======================================================================== */

int iw__cfg_get_str(struct cfg_ctx *cx, yaml_node_t *n, const char *where, char **out)
{
    const char *s = iw__cfg_scalar(cx, n, where, "a string");
    char *d;

    if (s == NULL)
        return IW_E_CONFIG;
    d = iw__cfg_strdup(cx, s);
    if (d == NULL)
        return IW_E_NOMEM;
    free(*out);
    *out = d;
    return IW_OK;
}

int iw__cfg_get_number(struct cfg_ctx *cx, yaml_node_t *n, const char *where, double *out)
{
    const char *s = iw__cfg_scalar(cx, n, where, "a number");

    if (s == NULL)
        return IW_E_CONFIG;
    if (!iw__cfg_parse_number(s, out)) {
        iw__cfg_error(cx, n, "%s: \"%s\" is not a number", where, s);
        return IW_E_CONFIG;
    }
    return IW_OK;
}

int iw__cfg_get_duration(struct cfg_ctx *cx, yaml_node_t *n, const char *where,
                         int64_t min, int64_t max, int64_t *out)
{
    const char *s = iw__cfg_scalar(cx, n, where, "a duration");
    char a[32], b[32], c[32];
    int64_t v;

    if (s == NULL)
        return IW_E_CONFIG;
    if (iw_duration_parse(s, &v) != IW_OK) {
        iw__cfg_error(cx, n, "%s: \"%s\" is not a duration (use e.g. 500ms, 30s, 10m, 4h, 7d, 1y)",
                      where, s);
        return IW_E_CONFIG;
    }
    if (v < min || v > max) {
        iw__cfg_error(cx, n, "%s: %s is out of range (%s..%s)", where,
                      iw__cfg_fmt_duration(v, a, sizeof(a)), iw__cfg_fmt_duration(min, b, sizeof(b)),
                      iw__cfg_fmt_duration(max, c, sizeof(c)));
        return IW_E_CONFIG;
    }
    *out = v;
    return IW_OK;
}

int iw__cfg_get_enum(struct cfg_ctx *cx, yaml_node_t *n, const char *where,
                     const char *const *names, const char *what, int *out)
{
    const char *s = iw__cfg_scalar(cx, n, where, what);
    char hint[96], list[160];
    size_t used = 0;

    if (s == NULL)
        return IW_E_CONFIG;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return IW_OK;
        }
    }
    list[0] = '\0';
    for (int i = 0; names[i] != NULL && used < sizeof(list); i++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0)
            used += (size_t)w;
    }
    iw__cfg_error(cx, n, "%s: \"%s\" is not one of %s%s", where, s, list,
                  iw__cfg_hint_names(s, names, hint, sizeof(hint)));
    return IW_E_CONFIG;
}

/* ======================================================================== */
/* The table walker                                                          */
/* ======================================================================== */

int iw__cfg_key_index(const struct cfg_key *keys, const char *name)
{
    for (int i = 0; keys[i].name != NULL; i++)
        if (strcmp(keys[i].name, name) == 0)
            return i;
    return -1;
}

const char *iw__cfg_key_where(const struct cfg_map *m, const char *key, char *buf, size_t len)
{
    if (m->where[0] == '\0')
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, m->dotted ? "%s.%s" : "%s: %s", m->where, key);
    return buf;
}

static bool key_allowed(const struct cfg_map *m, const struct cfg_key *k)
{
    if (m->kind_bit != 0 && k->kinds != 0 && (k->kinds & m->kind_bit) == 0)
        return false;
    return !m->site || (k->flags & CFG_SITE);
}

void iw__cfg_defaults(struct cfg_ctx *cx, const struct cfg_key *keys, void *base)
{
    for (const struct cfg_key *k = keys; k->name != NULL; k++) {
        char *dst = (char *)base + k->off;
        switch (k->type) {
        case CFG_SECTION:  iw__cfg_defaults(cx, k->sub, dst); break;
        case CFG_STR:      *(char **)dst = iw__cfg_strdup(cx, k->def.s); break;
        case CFG_BOOL:     *(bool *)dst = k->def.i != 0; break;
        case CFG_INT:
        case CFG_ENUM:     *(int *)dst = (int)k->def.i; break;
        case CFG_COUNT:
        case CFG_SIZE:     *(size_t *)dst = (size_t)k->def.i; break;
        case CFG_DURATION: *(int64_t *)dst = k->def.i; break;
        case CFG_NUMBER:
        case CFG_CUSTOM:   break;
        }
    }
}

static int parse_int_like(struct cfg_ctx *cx, const struct cfg_key *k, yaml_node_t *v,
                          const char *where, long long *out)
{
    const char *s = iw__cfg_scalar(cx, v, where, k->type == CFG_SIZE ? "a size" : "an integer");
    char a[32], b[32], c[32];
    long long x;

    if (s == NULL)
        return IW_E_CONFIG;
    if (k->type == CFG_SIZE ? !iw__cfg_parse_size(s, &x) : !iw__cfg_parse_integer(s, &x)) {
        if (k->type == CFG_SIZE)
            iw__cfg_error(cx, v, "%s: \"%s\" is not a size (use a byte count or e.g. 64KiB, 1MiB)",
                          where, s);
        else
            iw__cfg_error(cx, v, "%s: \"%s\" is not an integer", where, s);
        return IW_E_CONFIG;
    }
    if (x < k->min || x > k->max) {
        if (k->type == CFG_SIZE) {
            fmt_size(x, a, sizeof(a));
            fmt_size(k->min, b, sizeof(b));
            fmt_size(k->max, c, sizeof(c));
            iw__cfg_error(cx, v, "%s: %s is out of range (%s..%s)", where, a, b, c);
        } else {
            iw__cfg_error(cx, v, "%s: %lld is out of range (%lld..%lld)", where, x, k->min, k->max);
        }
        return IW_E_CONFIG;
    }
    if ((k->flags & CFG_POW2) && (x & (x - 1)) != 0) {
        long long p = 1;
        while (p < x)
            p <<= 1;
        iw__cfg_error(cx, v, "%s: %lld is not a power of two (try %lld)", where, x, p);
        return IW_E_CONFIG;
    }
    *out = x;
    return IW_OK;
}

static int parse_bool(struct cfg_ctx *cx, yaml_node_t *v, const char *where, bool *out)
{
    const char *s = iw__cfg_scalar(cx, v, where, "a boolean");

    if (s == NULL)
        return IW_E_CONFIG;
    if (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0) {
        *out = strcasecmp(s, "true") == 0;
        return IW_OK;
    }
    iw__cfg_error(cx, v, "%s: \"%s\" is not a boolean (use true or false)", where, s);
    return IW_E_CONFIG;
}

static int parse_number_row(struct cfg_ctx *cx, const struct cfg_key *k, yaml_node_t *v,
                            const char *where, double *out)
{
    double x;

    if (iw__cfg_get_number(cx, v, where, &x) != IW_OK)
        return IW_E_CONFIG;
    if ((k->flags & CFG_POSITIVE) && !(x > 0)) {
        iw__cfg_error(cx, v, "%s: must be greater than 0, got %g", where, x);
        return IW_E_CONFIG;
    }
    if ((k->flags & CFG_BOUNDED) && (x < (double)k->min || x > (double)k->max)) {
        iw__cfg_error(cx, v, "%s: %g is out of range (%lld..%lld)", where, x, k->min, k->max);
        return IW_E_CONFIG;
    }
    *out = x;
    return IW_OK;
}

static int parse_value(struct cfg_ctx *cx, const struct cfg_map *m, const struct cfg_key *k,
                       yaml_node_t *v)
{
    char where[256], why[256];
    char *dst = (char *)m->base + k->off;
    long long x;
    int rc = IW_OK, e;

    iw__cfg_key_where(m, k->name, where, sizeof(where));
    switch (k->type) {
    case CFG_SECTION: {
        struct cfg_map sub = { .keys = k->sub, .base = dst, .where = where, .dotted = true };
        return iw__cfg_walk(cx, v, &sub);
    }
    case CFG_CUSTOM:
        return k->parse(cx, m, k, v);
    case CFG_STR: {
        const char *s = iw__cfg_scalar(cx, v, where, "a string");
        if (s == NULL)
            return IW_E_CONFIG;
        if (k->check != NULL && !k->check(s, why, sizeof(why))) {
            iw__cfg_error(cx, v, "%s: %s", where, why);
            return IW_E_CONFIG;
        }
        rc = iw__cfg_get_str(cx, v, where, (char **)dst);
        break;
    }
    case CFG_BOOL:
        rc = parse_bool(cx, v, where, (bool *)dst);
        break;
    case CFG_INT:
    case CFG_COUNT:
    case CFG_SIZE:
        rc = parse_int_like(cx, k, v, where, &x);
        if (rc == IW_OK && k->type == CFG_INT)
            *(int *)dst = (int)x;
        else if (rc == IW_OK)
            *(size_t *)dst = (size_t)x;
        break;
    case CFG_DURATION:
        rc = iw__cfg_get_duration(cx, v, where, k->min, k->max, (int64_t *)dst);
        break;
    case CFG_NUMBER:
        rc = parse_number_row(cx, k, v, where, (double *)dst);
        break;
    case CFG_ENUM:
        rc = iw__cfg_get_enum(cx, v, where, k->names, "a name", &e);
        if (rc == IW_OK)
            *(int *)dst = e;
        break;
    }
    if (rc == IW_OK && (k->flags & CFG_HAS))
        *(bool *)((char *)m->base + k->has_off) = true;
    return rc;
}

static void unknown_key(struct cfg_ctx *cx, const struct cfg_map *m, yaml_node_t *kn,
                        const char *name)
{
    char hint[96];
    struct cfg_hint h;
    int idx = iw__cfg_key_index(m->keys, name);

    if (idx >= 0 && m->site && !(m->keys[idx].flags & CFG_SITE)) {
        iw__cfg_error(cx, kn, "%s: \"%s\" cannot be overridden per site", m->where, name);
        return;
    }
    if (idx >= 0) {
        iw__cfg_error(cx, kn, "%s: \"%s\" does not apply to %s rules", m->where, name,
                      m->kind_name);
        return;
    }
    iw__cfg_hint_init(&h);
    for (const struct cfg_key *k = m->keys; k->name != NULL; k++)
        if (key_allowed(m, k))
            iw__cfg_hint_add(&h, name, k->name);
    iw__cfg_hint_text(&h, hint, sizeof(hint));
    if (m->where[0] == '\0')
        iw__cfg_error(cx, kn, "unknown top-level key \"%s\"%s", name, hint);
    else
        iw__cfg_error(cx, kn, "%s: unknown key \"%s\"%s", m->where, name, hint);
}

static void merge_from(struct cfg_ctx *cx, yaml_node_t *src, const struct cfg_map *m,
                       yaml_node_t **seen, yaml_node_t **seen_key, int depth, int *left);

/* The `<<` keys of map, in order: each fills only the rows still empty. */
static void walk_merges(struct cfg_ctx *cx, yaml_node_t *map, const struct cfg_map *m,
                        yaml_node_t **seen, yaml_node_t **seen_key, int depth, int *left)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = iw__cfg_node(cx, p->key), *vn = iw__cfg_node(cx, p->value);
        bool ok = vn->type == YAML_MAPPING_NODE;

        if (!iw__cfg_is_merge_key(kn))
            continue;
        for (yaml_node_item_t *it = vn->type == YAML_SEQUENCE_NODE ? vn->data.sequence.items.start
                                                                   : NULL;
             it != NULL && it < vn->data.sequence.items.top; it++)
            ok = iw__cfg_node(cx, *it)->type == YAML_MAPPING_NODE;
        if (!ok || (vn->type == YAML_SEQUENCE_NODE
                    && vn->data.sequence.items.top == vn->data.sequence.items.start)) {
            iw__cfg_error(cx, vn, "%s%s\"<<\" (a YAML merge key) takes a mapping or a list of "
                          "mappings, e.g. <<: *defaults; got %s", m->where,
                          m->where[0] ? ": " : "", iw__cfg_type_name(vn));
            continue;
        }
        if (*left < 0)
            return;                         /* reported once, below */
        if (depth >= CFG_MERGE_DEPTH
            || (*left -= vn->type == YAML_MAPPING_NODE ? 1 : (int)(vn->data.sequence.items.top
                                                        - vn->data.sequence.items.start)) < 0) {
            *left = -1;
            iw__cfg_error(cx, kn, "%s%s\"<<\" merges more than %d mappings or nests them more "
                          "than %d deep (does an anchor merge itself?)", m->where,
                          m->where[0] ? ": " : "", CFG_MERGE_MAX, CFG_MERGE_DEPTH);
            return;
        }
        if (vn->type == YAML_MAPPING_NODE)
            merge_from(cx, vn, m, seen, seen_key, depth + 1, left);
        else        /* YAML: the earlier mapping of the list wins */
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 it < vn->data.sequence.items.top; it++)
                merge_from(cx, iw__cfg_node(cx, *it), m, seen, seen_key, depth + 1, left);
    }
}

/* The keys of a merged mapping that the mapping merging it lacks; its own merges after. */
static void merge_from(struct cfg_ctx *cx, yaml_node_t *src, const struct cfg_map *m,
                       yaml_node_t **seen, yaml_node_t **seen_key, int depth, int *left)
{
    for (yaml_node_pair_t *p = src->data.mapping.pairs.start;
         p < src->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = iw__cfg_node(cx, p->key);
        const char *name;
        int idx;

        if (kn->type != YAML_SCALAR_NODE || iw__cfg_is_merge_key(kn))
            continue;           /* reported where the mapping is walked itself, if it is */
        name = (const char *)kn->data.scalar.value;
        idx = iw__cfg_key_index(m->keys, name);
        if (idx < 0 || !key_allowed(m, &m->keys[idx])) {
            unknown_key(cx, m, kn, name);
            continue;
        }
        if (seen_key[idx] == NULL) {
            seen_key[idx] = kn;
            seen[idx] = iw__cfg_node(cx, p->value);
        }
    }
    walk_merges(cx, src, m, seen, seen_key, depth, left);
}

/*
 * Two passes: first match every key of the mapping to a row (unknown keys,
 * keys that do not apply here and duplicates are reported), then parse the
 * rows in table order. Table order is dependency order: sources before the
 * devices and rules that name them, a rule's own keys before its per-site
 * overrides.
 */
int iw__cfg_walk(struct cfg_ctx *cx, yaml_node_t *map, const struct cfg_map *m)
{
    yaml_node_t *seen[CFG_MAX_KEYS] = { 0 };
    yaml_node_t *seen_key[CFG_MAX_KEYS] = { 0 };
    size_t before = cx->n_errs;
    int nkeys = 0;

    while (m->keys[nkeys].name != NULL)
        nkeys++;
    if (nkeys > CFG_MAX_KEYS)
        abort();                /* a table bigger than the scratch space is a build bug */
    if (m->seen != NULL)
        memset(m->seen, 0, sizeof(*m->seen) * (size_t)nkeys);
    if (!iw__cfg_expect(cx, map, YAML_MAPPING_NODE, m->where[0] ? m->where : "the file"))
        return IW_E_CONFIG;

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = iw__cfg_node(cx, p->key), *vn = iw__cfg_node(cx, p->value);
        const char *name;
        int idx;

        if (kn->type != YAML_SCALAR_NODE) {
            iw__cfg_error(cx, kn, "%s%skeys must be plain names, got %s", m->where,
                          m->where[0] ? ": " : "", iw__cfg_type_name(kn));
            continue;
        }
        if (iw__cfg_is_merge_key(kn))
            continue;                   /* after the mapping's own keys, below */
        name = (const char *)kn->data.scalar.value;
        idx = iw__cfg_key_index(m->keys, name);
        if (idx < 0 || !key_allowed(m, &m->keys[idx])) {
            unknown_key(cx, m, kn, name);
            continue;
        }
        if (seen_key[idx] != NULL) {
            iw__cfg_error(cx, kn, "%s%sduplicate key \"%s\" (first at line %zu)", m->where,
                          m->where[0] ? ": " : "", name, seen_key[idx]->start_mark.line + 1);
            continue;
        }
        seen_key[idx] = kn;
        seen[idx] = vn;
    }
    int merges_left = CFG_MERGE_MAX;
    walk_merges(cx, map, m, seen, seen_key, 0, &merges_left);

    for (int i = 0; i < nkeys; i++) {
        const struct cfg_key *k = &m->keys[i];
        char where[256];

        if (seen[i] == NULL || iw__cfg_is_null(seen[i])) {
            if (seen[i] != NULL && (k->flags & CFG_REQUIRED))
                iw__cfg_error(cx, seen[i], "%s: needs a value",
                              iw__cfg_key_where(m, k->name, where, sizeof(where)));
            else if (seen_key[i] == NULL && (k->flags & CFG_REQUIRED) && key_allowed(m, k))
                iw__cfg_error(cx, map, "%s%smissing key \"%s\"", m->where,
                              m->where[0] ? ": " : "", k->name);
            seen[i] = NULL;     /* a null value means "use the default" */
            continue;
        }
        (void)parse_value(cx, m, k, seen[i]);
    }
    if (m->seen != NULL)
        memcpy(m->seen, seen, sizeof(*m->seen) * (size_t)nkeys);
    return cx->n_errs == before && !cx->nomem ? IW_OK : IW_E_CONFIG;
}

/* ======================================================================== */
/* Value checks                                                              */
/* ======================================================================== */

void iw__cfg_named(char *buf, size_t len, const char *what, const char *name)
{
    size_t n = strlen(name);
    if (n <= 48) {
        snprintf(buf, len, "%s \"%s\"", what, name);
        return;
    }
    n = 48;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)   /* not inside a character */
        n--;
    snprintf(buf, len, "%s \"%.*s\u2026\"", what, (int)n, name);
}

bool iw__cfg_check_label(const char *s, char *why, size_t len)
{
    if (iw_label_valid(s, strlen(s)))
        return true;
    if (s[0] == '\0')
        snprintf(why, len, "must not be empty");
    else if (strlen(s) > IW_LABEL_MAX)
        snprintf(why, len, "a name of %zu bytes is too long (at most %d)", strlen(s), IW_LABEL_MAX);
    else
        snprintf(why, len, "\"%s\" is not a valid name (no '/', '+', '#' or control characters)", s);
    return false;
}

bool iw__cfg_has_glob_chars(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

size_t iw__cfg_levels(const char *s)
{
    size_t n = 1;
    for (; *s != '\0'; s++)
        n += *s == '/';
    return n;
}

bool iw__cfg_check_glob(const char *g, size_t min_levels, size_t max_levels,
                        char *why, size_t len)
{
    size_t levels = 1;
    const char *level = g;

    if (strpbrk(g, "+#") != NULL) {
        snprintf(why, len, "\"%s\": use '*' for a wildcard, not MQTT's '+' or '#'", g);
        return false;
    }
    for (const char *p = g;; p++) {
        if (*p == '/' || *p == '\0') {
            if (p == level) {
                snprintf(why, len, "\"%s\" has an empty level", g);
                return false;
            }
            if (p - level == 2 && level[0] == '*' && level[1] == '*') {
                snprintf(why, len, "\"%s\": '**' is not allowed here; use one '*' per level", g);
                return false;
            }
            if (*p == '\0')
                break;
            levels++;
            level = p + 1;
        }
    }
    if (levels < min_levels || levels > max_levels) {
        if (min_levels == max_levels && max_levels == 1)
            snprintf(why, len, "\"%s\" must be a single name or glob, without '/'", g);
        else if (min_levels == max_levels)
            snprintf(why, len, "\"%s\" has %zu level%s; expected %zu (%s)", g, levels,
                     levels == 1 ? "" : "s", min_levels,
                     min_levels == 3 ? "<source>/<site>/<device>"
                                     : "<source>/<site>/<device>/<metric>");
        else
            snprintf(why, len, "\"%s\" has %zu level%s; expected %zu or %zu "
                     "(<source>/<site>/<device>[/<metric>])", g, levels, levels == 1 ? "" : "s",
                     min_levels, max_levels);
        return false;
    }
    if (!iw_utf8_valid(g, strlen(g))) {
        snprintf(why, len, "is not valid UTF-8");
        return false;
    }
    return true;
}

bool iw__cfg_check_template(const char *t, const char *const *fields, const char **bad,
                            char *why, size_t len)
{
    *bad = NULL;
    for (const char *p = t; *p != '\0'; p++) {
        const char *end;
        char name[64];
        bool known = false;

        if (*p != '{')
            continue;
        if (p[1] == '{') {          /* "{{" is a literal brace */
            p++;
            continue;
        }
        end = strchr(p, '}');
        if (end == NULL) {
            snprintf(why, len, "unclosed '{' (write \"{{\" for a literal brace)");
            return false;
        }
        if ((size_t)(end - p - 1) >= sizeof(name) || end == p + 1) {
            snprintf(why, len, "\"%.*s\" is not a field name", (int)(end - p + 1), p);
            return false;
        }
        memcpy(name, p + 1, (size_t)(end - p - 1));
        name[end - p - 1] = '\0';
        for (size_t i = 0; fields[i] != NULL; i++)
            if (strcmp(fields[i], name) == 0)
                known = true;
        if (!known) {
            char hint[96];
            *bad = p;
            snprintf(why, len, "unknown field {%s}%s", name,
                     iw__cfg_hint_names(name, fields, hint, sizeof(hint)));
            return false;
        }
        p = end;
    }
    return true;
}
