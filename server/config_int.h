/*
 * Private to server/config*.c: the loader's context, the declarative key
 * table and the helpers the section parsers share.
 *
 * How a load works: the YAML text becomes a libyaml document; every mapping
 * of the schema is described by a table of struct cfg_key rows (name, type,
 * offset of the field it fills, bounds, default, doc); iw__cfg_walk() checks
 * a mapping against its table and fills the struct. Every problem is recorded
 * with its position and the walk goes on, so one run reports every error.
 * The errors are sorted by file and position at the end, so the user reads
 * them in file order whatever order the checks ran in.
 */
#ifndef ISLEWATCH_CONFIG_INT_H
#define ISLEWATCH_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "islewatch/compiler.h"
#include "islewatch/config.h"

/* One recorded error; `text` is the finished "FILE:LINE:COL: error: ..." line. */
struct cfg_err {
    int    file_idx;            /* 0: the main file, 1: devices_file */
    size_t line, col, seq;
    char  *text;
};

struct cfg_ctx {
    struct iw_config *cfg;      /* being filled */
    yaml_document_t  *doc;      /* the document being walked */
    const char *file;           /* name of that document in diagnostics */
    int         file_idx;
    struct cfg_err *errs;
    size_t n_errs, cap_errs;
    bool   nomem;
    /* Where each device entry was declared, for "declared twice" messages. */
    struct cfg_pos { const char *file; int file_idx; size_t line; } *dev_pos;
    size_t n_dev_pos;
    size_t *dev_set, n_dev_set, cap_dev_set;   /* config_inventory.c: device_declared */
    /* `sources:` is there but unusable as a whole (not a list, empty, too
     * long): no name can be checked against it, so rules, devices and
     * silences do not each report "no source named" on top of its error. */
    bool sources_bad;
    /* While a rule is parsed (config_rules.c). */
    struct iw_rule *rule;
    int    kind;                /* enum iw_rule_kind, or -1 when unknown */
};

enum cfg_type {
    CFG_SECTION,   /* a nested mapping described by .sub (same base + .off) */
    CFG_STR,       /* char * (owned); .def.s; optional .check */
    CFG_BOOL,      /* bool; .def.i */
    CFG_INT,       /* int in [.min, .max]; .def.i */
    CFG_COUNT,     /* size_t in [.min, .max]; .def.i; CFG_POW2 for powers of two */
    CFG_SIZE,      /* size_t bytes: 65536 or "64KiB", "1MiB"; [.min, .max] */
    CFG_DURATION,  /* int64_t ms: "500ms", "30s", "10m"; [.min, .max] */
    CFG_NUMBER,    /* double, finite; [.min, .max] when CFG_BOUNDED, > 0 when CFG_POSITIVE */
    CFG_ENUM,      /* int (enum) = index of the value in .names */
    CFG_CUSTOM,    /* .parse does it */
};

/* cfg_key.flags */
#define CFG_REQUIRED  0x01u   /* missing key is an error */
#define CFG_SITE      0x02u   /* rules: may appear in a per-site override */
#define CFG_HAS       0x04u   /* sets the bool at .has_off when given */
#define CFG_BOUNDED   0x08u   /* CFG_NUMBER: check [.min, .max] */
#define CFG_POSITIVE  0x10u   /* CFG_NUMBER: must be > 0 */
#define CFG_POW2      0x20u   /* CFG_COUNT: must be a power of two */

struct cfg_map;
struct cfg_key;

/* Parse v into the field of k; report problems with iw__cfg_error. Returns IW_OK or IW_E_CONFIG. */
typedef int (*cfg_parse_fn)(struct cfg_ctx *cx, const struct cfg_map *m,
                            const struct cfg_key *k, yaml_node_t *v);
/* Extra check of a string value: false with the reason in why. */
typedef bool (*cfg_check_fn)(const char *s, char *why, size_t len);

struct cfg_key {
    const char    *name;
    enum cfg_type  type;
    size_t         off;         /* field offset from the walk's base */
    size_t         has_off;     /* CFG_HAS: offset of the bool "has_x" */
    long long      min, max;
    union { const char *s; long long i; } def;
    const char *const *names;   /* CFG_ENUM: NULL-terminated */
    const struct cfg_key *sub;  /* CFG_SECTION */
    cfg_parse_fn   parse;       /* CFG_CUSTOM */
    cfg_check_fn   check;       /* CFG_STR */
    unsigned       kinds;       /* rules: bit (1u << kind) per kind it applies to; 0: all */
    unsigned       flags;
    const char    *doc;         /* what the key does; the default config mirrors it */
};

/* One walk of a mapping against a table. */
struct cfg_map {
    const struct cfg_key *keys; /* terminated by a row with name == NULL */
    void       *base;           /* struct the offsets point into */
    const char *where;          /* "broker", "rule \"nh3n\"", "" for the top level */
    bool        dotted;         /* messages name keys as where.key (else "where: key") */
    unsigned    kind_bit;       /* rules: 1u << kind; 0: no kind filter */
    const char *kind_name;      /* rules: for "does not apply to <kind> rules" */
    bool        site;           /* a per-site override: only CFG_SITE keys */
    yaml_node_t **seen;         /* optional out, one slot per row: its value node or NULL */
};

#define CFG_MAX_KEYS 48         /* rows per table; the walker's scratch space */

/* ---- errors ---------------------------------------------------------------- */
void iw__cfg_error(struct cfg_ctx *cx, const yaml_node_t *at, const char *fmt, ...)
    IW_PRINTF(3, 4);
void iw__cfg_error_at(struct cfg_ctx *cx, size_t line, size_t col, const char *fmt, ...)
    IW_PRINTF(4, 5);

/* ---- documents and files ------------------------------------------------------ */
/* Read a whole file; NUL-terminated. IW_E_IO with the reason (strerror) in why. */
int iw__cfg_read_file(const char *path, char **text, size_t *len, char *why, size_t wlen);
/* Parse text into doc; a syntax error is recorded (position from libyaml) and IW_E_CONFIG returned. */
int iw__cfg_load_doc(struct cfg_ctx *cx, const char *text, size_t len, yaml_document_t *doc);

/* ---- the table walker (config_value.c) ------------------------------------------ */
void iw__cfg_defaults(struct cfg_ctx *cx, const struct cfg_key *keys, void *base);
int  iw__cfg_walk(struct cfg_ctx *cx, yaml_node_t *map, const struct cfg_map *m);
/* "broker.url" or "rule \"x\": above" into buf. */
const char *iw__cfg_key_where(const struct cfg_map *m, const char *key, char *buf, size_t len);
/* `what "name"` into buf, a name over 48 bytes cut at a character and marked
 * with "…": the prefix of every error about that entry stays short. */
void iw__cfg_named(char *buf, size_t len, const char *what, const char *name);
int  iw__cfg_key_index(const struct cfg_key *keys, const char *name);

/* ---- nodes and typed values ---------------------------------------------------- */
yaml_node_t *iw__cfg_node(struct cfg_ctx *cx, int id);
bool iw__cfg_is_null(const yaml_node_t *n);
const char *iw__cfg_type_name(const yaml_node_t *n);   /* "a mapping", "a sequence", ... */
/* The scalar's text, or NULL after reporting "<where>: expected <what>, got ...". */
const char *iw__cfg_scalar(struct cfg_ctx *cx, yaml_node_t *n, const char *where,
                           const char *what);
/* Type check for a mapping / sequence; reports and returns false when wrong. */
bool iw__cfg_expect(struct cfg_ctx *cx, yaml_node_t *n, yaml_node_type_t type,
                    const char *where);
/* The key node before pair p in mapping map with the same name as p's, or NULL. */
yaml_node_t *iw__cfg_earlier_key(struct cfg_ctx *cx, yaml_node_t *map, const yaml_node_pair_t *p);
/* A plain "<<": YAML's merge key (`<<: *base`), which the walker and
 * iw__cfg_lookup follow. Merges can nest (a base that merges another) and,
 * through an anchor aliased inside itself, loop; lists of aliases of lists
 * would take exponential time. So a mapping follows them CFG_MERGE_DEPTH
 * deep and CFG_MERGE_MAX mappings at most. */
bool iw__cfg_is_merge_key(const yaml_node_t *kn);
#define CFG_MERGE_DEPTH 8
#define CFG_MERGE_MAX   64
/* Value of key `name` in mapping n (or in what its "<<" merges) when it is a scalar, else NULL; no errors. */
const char *iw__cfg_lookup(struct cfg_ctx *cx, yaml_node_t *map, const char *name,
                           yaml_node_t **value);
int iw__cfg_get_str(struct cfg_ctx *cx, yaml_node_t *n, const char *where, char **out);
int iw__cfg_get_number(struct cfg_ctx *cx, yaml_node_t *n, const char *where, double *out);
int iw__cfg_get_duration(struct cfg_ctx *cx, yaml_node_t *n, const char *where,
                         int64_t min, int64_t max, int64_t *out);
/* One of names (NULL-terminated), with a did-you-mean hint; what = "a severity". */
int iw__cfg_get_enum(struct cfg_ctx *cx, yaml_node_t *n, const char *where,
                     const char *const *names, const char *what, int *out);
char *iw__cfg_strdup(struct cfg_ctx *cx, const char *s);

/* ---- strict scalar parsing ------------------------------------------------------ */
bool iw__cfg_parse_number(const char *s, double *out);
bool iw__cfg_parse_integer(const char *s, long long *out);
bool iw__cfg_parse_size(const char *s, long long *out);
int  iw__cfg_parse_target(const char *s);              /* 1..5, or -1 */
bool iw__cfg_parse_tz(const char *s, int *offset_min);
const char *iw__cfg_tz_hint(const char *word, char *buf, size_t len);
char *iw__cfg_fmt_duration(int64_t ms, char *buf, size_t len);

/* ---- did you mean ------------------------------------------------------------ */
struct cfg_hint {
    const char *best;
    size_t      dist;
};
void iw__cfg_hint_init(struct cfg_hint *h);
void iw__cfg_hint_add(struct cfg_hint *h, const char *word, const char *candidate);
/* " (did you mean \"x\"?)" or "" */
const char *iw__cfg_hint_text(const struct cfg_hint *h, char *buf, size_t len);
const char *iw__cfg_hint_names(const char *word, const char *const *names, char *buf, size_t len);

/* ---- value checks shared by sections ------------------------------------------ */
bool iw__cfg_check_label(const char *s, char *why, size_t len);
/* The number of '/'-separated levels of s. */
size_t iw__cfg_levels(const char *s);
/* '/'-separated glob of min..max levels; '*' and '?' inside a level; no '+', '#', no empty level. */
bool iw__cfg_check_glob(const char *g, size_t min_levels, size_t max_levels,
                        char *why, size_t len);
/* "{name}" fields must be in fields (NULL-terminated); "{{" is a literal '{'. */
bool iw__cfg_check_template(const char *t, const char *const *fields, const char **bad,
                            char *why, size_t len);
bool iw__cfg_has_glob_chars(const char *s);

/* ---- sections (config_inventory.c, config_rules.c) -------------------------------- */
int iw__cfg_parse_sources(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_parse_devices(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_parse_devices_file(struct cfg_ctx *cx, const struct cfg_map *m,
                               const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_parse_silences(struct cfg_ctx *cx, const struct cfg_map *m,
                           const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_parse_rules(struct cfg_ctx *cx, const struct cfg_map *m,
                        const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_default_sources(struct cfg_ctx *cx);
/* Rule parameters of more than one shape (config_params.c); cx->kind decides the shape. */
int iw__cfg_rule_severity(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_rule_window(struct cfg_ctx *cx, const struct cfg_map *m,
                        const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_rule_flags(struct cfg_ctx *cx, const struct cfg_map *m,
                       const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_rule_match(struct cfg_ctx *cx, const struct cfg_map *m,
                       const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_rule_standard(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v);
int iw__cfg_rule_timezone(struct cfg_ctx *cx, const struct cfg_map *m,
                          const struct cfg_key *k, yaml_node_t *v);
/* CFG_CUSTOM parser of a water class ("III", "3", "Ⅲ") into the int at .off. */
int iw__cfg_parse_target_key(struct cfg_ctx *cx, const struct cfg_map *m,
                             const struct cfg_key *k, yaml_node_t *v);
/* Name lookups for cross-references; NULL when absent. */
const struct iw_source_cfg *iw__cfg_find_source(const struct iw_config *cfg, const char *name);
void iw__cfg_hint_sources(const struct iw_config *cfg, const char *word, char *buf, size_t len);

/* ---- freeing -------------------------------------------------------------------- */
void iw__cfg_free_kv(struct iw_kv *kv, size_t n);
void iw__cfg_free_rule(struct iw_rule *r);
int  iw__cfg_copy_kv(struct iw_kv **dst, size_t *n_dst, const struct iw_kv *src, size_t n);

#endif /* ISLEWATCH_CONFIG_INT_H */
