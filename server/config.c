/*
 * Configuration loader (SPEC §3): reads the YAML file with libyaml's document
 * API, checks it against the schema tables below and in config_inventory.c /
 * config_rules.c, and builds one immutable struct iw_config.
 *
 * Every problem becomes one "FILE:LINE:COLUMN: error: MESSAGE" line (libyaml
 * marks are 0-based; both are reported 1-based). The loader never stops at the
 * first problem: it records it and goes on, and the lines are handed to the
 * caller sorted by position. A load either returns a complete config or
 * nothing: a partly valid file is never used.
 *
 * The tables are the schema: each row names a key, its type, the field it
 * fills, its bounds and default, and says what it does. config/islewatch.yaml
 * documents the same keys for users.
 *
 * Not thread-safe per load (one caller builds one struct); the finished struct
 * is read-only and may be shared by any number of threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"
#include "islewatch/clock.h"
#include "islewatch/err.h"
#include "islewatch/log.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"

#define MAX_FILE_SIZE (16u << 20)    /* a config larger than this is a mistake */

/* ======================================================================== */
/* Names                                                                     */
/* ======================================================================== */

static const char *const severity_names[] = { "info", "warning", "major", "critical", NULL };

const char *iw_severity_name(enum iw_severity s)
{
    return (unsigned)s < IW_SEV_COUNT ? severity_names[s] : "unknown";
}

int iw_severity_parse(const char *s)
{
    for (int i = 0; s != NULL && i < IW_SEV_COUNT; i++)
        if (strcmp(s, severity_names[i]) == 0)
            return i;
    return -1;
}

const char *iw_rule_kind_name(enum iw_rule_kind k)
{
    static const char *const names[] = { "threshold", "rate", "absence", "flag", "event",
                                         "water_quality", "air_quality" };
    return (unsigned)k < IW_ARRAY_LEN(names) ? names[k] : "unknown";
}

/* ======================================================================== */
/* Error collection                                                          */
/* ======================================================================== */

/*
 * Copy src to dst (of len bytes, len > 0) with control characters written as
 * C escapes (\n, \t, \x1b): a value quoted in a message may hold a newline
 * (a block scalar) or a terminal escape, and every error must stay one line.
 */
static void escape_controls(const char *src, char *dst, size_t len)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)src; *p != '\0'; p++) {
        char esc[8];
        size_t n;

        if (*p >= 0x20 && *p != 0x7f) {
            esc[0] = (char)*p;
            n = 1;
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
            n = 2;
        } else {
            n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
        }
        if (o + n >= len)
            break;
        memcpy(dst + o, esc, n);
        o += n;
    }
    dst[o] = '\0';
}

static void error_vadd(struct cfg_ctx *cx, size_t line, size_t col, const char *fmt, va_list ap)
{
    char raw[1024], msg[2048];
    char *text = NULL;

    vsnprintf(raw, sizeof(raw), fmt, ap);
    escape_controls(raw, msg, sizeof(msg));
    if (asprintf(&text, "%s:%zu:%zu: error: %s", cx->file, line, col, msg) < 0) {
        cx->nomem = true;
        return;
    }
    if (cx->n_errs == cx->cap_errs) {
        size_t cap = cx->cap_errs ? cx->cap_errs * 2 : 16;
        struct cfg_err *e = realloc(cx->errs, cap * sizeof(*e));
        if (e == NULL) {
            free(text);
            cx->nomem = true;
            return;
        }
        cx->errs = e;
        cx->cap_errs = cap;
    }
    cx->errs[cx->n_errs] = (struct cfg_err){ .file_idx = cx->file_idx, .line = line,
                                             .col = col, .seq = cx->n_errs, .text = text };
    cx->n_errs++;
}

void iw__cfg_error(struct cfg_ctx *cx, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vadd(cx, at->start_mark.line + 1, at->start_mark.column + 1, fmt, ap);
    va_end(ap);
}

void iw__cfg_error_at(struct cfg_ctx *cx, size_t line, size_t col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vadd(cx, line, col, fmt, ap);
    va_end(ap);
}

static int err_cmp(const void *a, const void *b)
{
    const struct cfg_err *x = a, *y = b;

    if (x->file_idx != y->file_idx)
        return x->file_idx < y->file_idx ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hand the errors over in file order; frees them. */
static void errors_flush(struct cfg_ctx *cx, struct iw_diag *diag)
{
    if (cx->n_errs > 1)
        iw_sort(cx->errs, cx->n_errs, sizeof(*cx->errs), err_cmp);
    for (size_t i = 0; i < cx->n_errs; i++) {
        iw_diag_add(diag, NULL, 0, 0, "%s", cx->errs[i].text);
        free(cx->errs[i].text);
    }
    free(cx->errs);
    cx->errs = NULL;
    cx->n_errs = cx->cap_errs = 0;
}

/* ======================================================================== */
/* Files and documents                                                       */
/* ======================================================================== */

/* Read a whole config (or devices_file) into *text. Otherwise why says what
 * failed and what to do (the caller adds the file's name). */
int iw__cfg_read_file(const char *path, char **text, size_t *len, char *why, size_t wlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *text = NULL;
    if (fd < 0) {
        snprintf(why, wlen, "cannot open: %s (check the path and its permissions)",
                 strerror(errno));
        return IW_E_IO;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, wlen, "cannot read: %s (check the path and its permissions)",
                 strerror(errno));
        close(fd);
        return IW_E_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, wlen, "cannot read: %s (give the path of a YAML file)",
                 S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        return IW_E_IO;
    }
    if ((unsigned long long)st.st_size > MAX_FILE_SIZE) {
        snprintf(why, wlen, "cannot read: larger than %u MiB; is this the right file?",
                 MAX_FILE_SIZE >> 20);
        close(fd);
        return IW_E_IO;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(why, wlen, "cannot read: out of memory");
        close(fd);
        return IW_E_NOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, wlen, "cannot read: %s (is something writing it? try again)",
                     n < 0 ? strerror(errno) : "the file shrank while it was read");
            free(buf);
            close(fd);
            return IW_E_IO;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return IW_OK;
}

/* libyaml reports reader errors (bad UTF-8, NUL) by byte offset, not mark. */
static void offset_to_pos(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/*
 * libyaml's loader stops after the first document, so whatever follows a
 * "---" would be dropped without a word (and its syntax errors never seen).
 * A config is one document: a second one with content is an error at its
 * start, recorded here; the first document is still checked, so the caller
 * gets IW_OK and the recorded error fails the load. An empty trailing
 * document ("---" and nothing, or "...") is fine. Returns IW_E_CONFIG, with
 * parser->error set, when the rest is not valid YAML.
 */
static int check_single_document(struct cfg_ctx *cx, yaml_parser_t *parser)
{
    yaml_document_t next;
    yaml_node_t *root;

    if (!yaml_parser_load(parser, &next))
        return IW_E_CONFIG;
    root = yaml_document_get_root_node(&next);
    if (root != NULL && !iw__cfg_is_null(root))
        iw__cfg_error_at(cx, next.start_mark.line + 1, next.start_mark.column + 1,
                         "a second YAML document starts here; a config file is one document "
                         "(remove the \"---\" and merge the two)");
    yaml_document_delete(&next);
    return IW_OK;
}

/*
 * Where flow collections ([ and {) first nest deeper than max, outside quoted
 * scalars and comments: true and its position, else false. libyaml's scanner
 * takes time quadratic in that depth (80,000 levels, a 160 KB file: 17 s in
 * `check`, and as long a stall of a SIGHUP reload), so such a file is refused
 * before libyaml sees it. YAML's lexing is only approximated: a quote opens a
 * quoted scalar after a space, a flow indicator or a colon, so an apostrophe
 * inside a plain scalar ("it's") opens none.
 */
static bool nested_too_deep(const char *s, size_t len, int max, size_t *line, size_t *col)
{
    size_t ln = 1, lstart = 0;
    int depth = 0;
    char q = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\n') {
            ln++;
            lstart = i + 1;
        } else if (q != 0) {
            if (q == '"' && c == '\\')
                i++;
            else if (c == q && q == '\'' && i + 1 < len && s[i + 1] == '\'')
                i++;                                /* '' inside '...' */
            else if (c == q)
                q = 0;
        } else if (c == '#' && (i == lstart || s[i - 1] == ' ' || s[i - 1] == '\t')) {
            while (i + 1 < len && s[i + 1] != '\n')
                i++;
        } else if (c == '"' || c == '\'') {
            if (i == lstart || strchr(" \t[{,:", s[i - 1]) != NULL)
                q = c;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                *line = ln;
                *col = i - lstart + 1;
                return true;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

/* Array p of *cap elements of size elem, doubled (first: the size of a new
 * one): the new array, or NULL with p and *cap as they were. */
static void *grow(void *p, size_t *cap, size_t elem, size_t first)
{
    size_t nc = *cap ? *cap * 2 : first;
    void *g = realloc(p, nc * elem);
    if (g != NULL)
        *cap = nc;
    return g;
}

/*
 * Build the document from libyaml's events, as yaml_parser_load() does, with
 * one difference: an alias becomes a node of its own, at the alias's line and
 * column, with the anchored node's value (a scalar's text, a collection's
 * items, which stay shared). yaml_parser_load() makes an alias the anchored
 * node itself, so an error about `below: *limits` pointed at the line where
 * &limits was defined, in another rule. The copies are one level deep, so a
 * file of aliases of aliases grows linearly; past ALIAS_COPY_MAX copied items
 * in all, an alias is the anchored node again (the value is the same either
 * way, only an error's position differs). An anchor given twice takes the
 * later node, as YAML 1.2 says. Returns IW_OK, or IW_E_CONFIG with the problem
 * in parser->error (libyaml's) or recorded (an undefined alias).
 */
struct compose_open { int id, key; };

static int compose_document(struct cfg_ctx *cx, yaml_parser_t *parser, yaml_document_t *doc)
{
    enum { ALIAS_COPY_MAX = 1 << 20 };
    struct compose_open *stack = NULL;
    struct { char *name; int id; } *anchors = NULL;
    size_t depth = 0, cap = 0, n_anchors = 0, cap_anchors = 0, copied = 0;
    bool started = false, done = false;
    int rc = IW_OK;

    memset(doc, 0, sizeof(*doc));
    while (!done && rc == IW_OK) {
        yaml_event_t ev;
        int id = 0;
        const char *anchor = NULL;
        bool shared = false;            /* an alias that is the anchored node itself */

        if (!yaml_parser_parse(parser, &ev)) {
            rc = IW_E_CONFIG;               /* libyaml's problem, in parser->error */
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
            break;
        case YAML_STREAM_END_EVENT:     /* no document at all: an empty one */
        case YAML_DOCUMENT_START_EVENT:
            if (!yaml_document_initialize(doc, NULL, NULL, NULL,
                                          ev.type == YAML_STREAM_END_EVENT
                                          || ev.data.document_start.implicit, 1)) {
                rc = IW_E_NOMEM;
                break;
            }
            started = true;
            doc->start_mark = ev.start_mark;
            done = ev.type == YAML_STREAM_END_EVENT;
            break;
        case YAML_DOCUMENT_END_EVENT:
            doc->end_mark = ev.end_mark;
            done = true;
            break;
        case YAML_SCALAR_EVENT:
            id = yaml_document_add_scalar(doc, ev.data.scalar.tag, ev.data.scalar.value,
                                          (int)ev.data.scalar.length, ev.data.scalar.style);
            anchor = (const char *)ev.data.scalar.anchor;
            break;
        case YAML_SEQUENCE_START_EVENT:
            id = yaml_document_add_sequence(doc, ev.data.sequence_start.tag,
                                            ev.data.sequence_start.style);
            anchor = (const char *)ev.data.sequence_start.anchor;
            break;
        case YAML_MAPPING_START_EVENT:
            id = yaml_document_add_mapping(doc, ev.data.mapping_start.tag,
                                           ev.data.mapping_start.style);
            anchor = (const char *)ev.data.mapping_start.anchor;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            doc->nodes.start[stack[depth - 1].id - 1].end_mark = ev.end_mark;
            depth--;
            break;
        case YAML_ALIAS_EVENT: {
            int target = 0;
            for (size_t i = n_anchors; i-- > 0 && target == 0;)    /* the latest definition */
                if (strcmp(anchors[i].name, (const char *)ev.data.alias.anchor) == 0)
                    target = anchors[i].id;
            if (target == 0) {
                iw__cfg_error_at(cx, ev.start_mark.line + 1, ev.start_mark.column + 1,
                                 "syntax error: found undefined alias \"*%s\" (an alias needs "
                                 "its &anchor earlier in the file)", ev.data.alias.anchor);
                rc = IW_E_CONFIG;
                break;
            }
            yaml_node_t t = doc->nodes.start[target - 1];   /* a copy: adding moves the array */
            size_t items = t.type == YAML_SEQUENCE_NODE
                               ? (size_t)(t.data.sequence.items.top - t.data.sequence.items.start)
                           : t.type == YAML_MAPPING_NODE
                               ? (size_t)(t.data.mapping.pairs.top - t.data.mapping.pairs.start) : 1;
            if (copied + items > ALIAS_COPY_MAX) {
                id = target;
                shared = true;
                break;
            }
            copied += items;
            if (t.type == YAML_SCALAR_NODE)
                id = yaml_document_add_scalar(doc, t.tag, t.data.scalar.value,
                                              (int)t.data.scalar.length, t.data.scalar.style);
            else if (t.type == YAML_SEQUENCE_NODE)
                id = yaml_document_add_sequence(doc, t.tag, t.data.sequence.style);
            else
                id = yaml_document_add_mapping(doc, t.tag, t.data.mapping.style);
            for (size_t i = 0; id != 0 && i < items && t.type != YAML_SCALAR_NODE; i++) {
                /* re-read: the target's own item array may grow (an alias inside its anchor) */
                yaml_node_t *tn = &doc->nodes.start[target - 1];
                int ok = t.type == YAML_SEQUENCE_NODE
                    ? yaml_document_append_sequence_item(doc, id, tn->data.sequence.items.start[i])
                    : yaml_document_append_mapping_pair(doc, id, tn->data.mapping.pairs.start[i].key,
                                                        tn->data.mapping.pairs.start[i].value);
                if (!ok)
                    id = 0;
            }
            if (id == 0)
                rc = IW_E_NOMEM;
            break;
        }
        default:
            break;
        }
        if (rc == IW_OK && (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT
                            || ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_ALIAS_EVENT)) {
            if (id == 0) {
                rc = IW_E_NOMEM;
            } else {
                if (!shared) {
                    doc->nodes.start[id - 1].start_mark = ev.start_mark;
                    doc->nodes.start[id - 1].end_mark = ev.end_mark;
                }
                if (anchor != NULL) {
                    if (n_anchors == cap_anchors) {
                        void *g = grow(anchors, &cap_anchors, sizeof(*anchors), 16);
                        if (g == NULL)
                            rc = IW_E_NOMEM;
                        else
                            anchors = g;
                    }
                    if (rc == IW_OK && (anchors[n_anchors].name = strdup(anchor)) == NULL)
                        rc = IW_E_NOMEM;
                    if (rc == IW_OK)
                        anchors[n_anchors++].id = id;
                }
                if (rc == IW_OK && depth > 0) {      /* into the open collection */
                    struct compose_open *o = &stack[depth - 1];
                    yaml_node_t *pn = &doc->nodes.start[o->id - 1];
                    int ok = 1;
                    if (pn->type == YAML_SEQUENCE_NODE)
                        ok = yaml_document_append_sequence_item(doc, o->id, id);
                    else if (o->key == 0)
                        o->key = id;
                    else {
                        ok = yaml_document_append_mapping_pair(doc, o->id, o->key, id);
                        o->key = 0;
                    }
                    if (!ok)
                        rc = IW_E_NOMEM;
                }
                if (rc == IW_OK && (ev.type == YAML_SEQUENCE_START_EVENT
                                    || ev.type == YAML_MAPPING_START_EVENT)) {
                    if (depth == cap) {
                        void *g = grow(stack, &cap, sizeof(*stack), 64);
                        if (g == NULL)
                            rc = IW_E_NOMEM;
                        else
                            stack = g;
                    }
                    if (rc == IW_OK)
                        stack[depth++] = (struct compose_open){ .id = id, .key = 0 };
                }
            }
        }
        yaml_event_delete(&ev);
    }
    for (size_t i = 0; i < n_anchors; i++)
        free(anchors[i].name);
    free(anchors);
    free(stack);
    if (rc != IW_OK) {
        if (started)
            yaml_document_delete(doc);
        if (rc == IW_E_NOMEM)
            cx->nomem = true;
        return rc == IW_E_NOMEM ? IW_E_NOMEM : IW_E_CONFIG;
    }
    return IW_OK;
}

/*
 * A scalar holding a NUL character: libyaml refuses a raw one but decodes
 * "\0", "\x00" and "\u0000" in a double-quoted string. Every value is read as
 * a C string, so it would end there without a word ("nh3\0x" would name a
 * rule "nh3", "mqtt://\0..." be a URL without a host). Each is an error at
 * its node, and the file is not read further, as after a syntax error: the
 * cut value's own errors would only mislead. Returns how many there are.
 */
static size_t check_no_nul(struct cfg_ctx *cx, yaml_document_t *doc)
{
    size_t bad = 0;

    for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++) {
        if (n->type == YAML_SCALAR_NODE
            && strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
            iw__cfg_error_at(cx, n->start_mark.line + 1, n->start_mark.column + 1,
                             "a NUL character (\\0) in \"%s...\": no value can hold one; "
                             "remove it", (const char *)n->data.scalar.value);
            bad++;
        }
    }
    return bad;
}

int iw__cfg_load_doc(struct cfg_ctx *cx, const char *text, size_t len, yaml_document_t *doc)
{
    enum { MAX_FLOW_DEPTH = 64 };
    yaml_parser_t parser;
    size_t line, col;
    int rc;

    if (nested_too_deep(text, len, MAX_FLOW_DEPTH, &line, &col)) {
        iw__cfg_error_at(cx, line, col, "syntax error: [ and { nested more than %d levels deep "
                         "(a config needs a few; is this the right file?)", MAX_FLOW_DEPTH);
        return IW_E_CONFIG;
    }

    if (!yaml_parser_initialize(&parser)) {
        cx->nomem = true;
        return IW_E_NOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    rc = compose_document(cx, &parser, doc);
    if (rc == IW_E_NOMEM || (rc == IW_E_CONFIG && parser.error == YAML_NO_ERROR)) {
        yaml_parser_delete(&parser);          /* recorded by compose_document */
        return rc;
    }
    if (rc == IW_OK) {
        if (check_single_document(cx, &parser) == IW_OK) {
            yaml_parser_delete(&parser);
            if (check_no_nul(cx, doc) > 0) {
                yaml_document_delete(doc);
                return IW_E_CONFIG;
            }
            return IW_OK;
        }
        yaml_document_delete(doc);   /* the rest is not YAML: a syntax error, below */
    }
    if (parser.error == YAML_READER_ERROR) {
        offset_to_pos(text, len, parser.problem_offset, &line, &col);
        iw__cfg_error_at(cx, line, col, "syntax error: %s", parser.problem);
    } else if (parser.error == YAML_MEMORY_ERROR) {
        cx->nomem = true;
    } else if (parser.context != NULL) {
        iw__cfg_error_at(cx, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         "syntax error: %s (%s at line %zu, column %zu)", parser.problem,
                         parser.context, parser.context_mark.line + 1,
                         parser.context_mark.column + 1);
    } else {
        iw__cfg_error_at(cx, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         "syntax error: %s", parser.problem ? parser.problem : "invalid YAML");
    }
    yaml_parser_delete(&parser);
    return IW_E_CONFIG;
}

/* ======================================================================== */
/* Value checks of the sections                                              */
/* ======================================================================== */

static bool check_nonempty(const char *s, char *why, size_t len)
{
    if (s[0] != '\0')
        return true;
    snprintf(why, len, "must not be empty");
    return false;
}

static bool check_files;            /* iw_config_check_files; set before threads load */

void iw_config_check_files(bool on)
{
    check_files = on;
}

/*
 * A file the daemon reads at start and on reload (a secret, a certificate):
 * one it cannot open would stop the start or the reload after `check` had
 * passed the file (SPEC §3: the same lines). Read again at each use, so a
 * file that goes later is still reported there. Empty: the key is unset.
 */
static bool check_readable(const char *s, char *why, size_t len)
{
    struct stat st;
    int fd;

    if (!check_files || s[0] == '\0')
        return true;
    if ((fd = open(s, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
        snprintf(why, len, "%s cannot be read: %s (create it, fix the path, or give islewatchd "
                 "read access)", s, strerror(errno));
        return false;
    }
    bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir)
        snprintf(why, len, "%s is a directory, not a file", s);
    return !dir;
}

int iw_config_read_token(const char *path, char **out, char *why, size_t wlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n;
    ssize_t got;

    *out = NULL;
    if (f == NULL) {
        snprintf(why, wlen, "%s cannot be read: %s; create it with the token on its first line, "
                 "readable by islewatchd", path, strerror(errno));
        return IW_E_IO;
    }
    got = getline(&line, &cap, f);
    fclose(f);
    n = got > 0 ? (size_t)got : 0;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        n--;
    const char *bad = n == 0 ? "has an empty first line"
                      : n > IW_TOKEN_MAX ? "has a first line that is too long"
                      : memchr(line, '\0', n) != NULL ? "holds a NUL byte in its first line"
                      : NULL;
    if (bad != NULL) {
        free(line);
        snprintf(why, wlen, "%s %s; put the token (1 to %d characters) on its first line", path,
                 bad, IW_TOKEN_MAX);
        return IW_E_CONFIG;
    }
    line[n] = '\0';
    *out = line;
    return IW_OK;
}

/* A token file the daemon would refuse (audit: check passed an empty one). */
static bool check_token(const char *s, char *why, size_t len)
{
    char *tok;

    if (!check_readable(s, why, len))
        return false;
    if (!check_files || s[0] == '\0')
        return true;
    if (iw_config_read_token(s, &tok, why, len) != IW_OK)
        return false;
    free(tok);
    return true;
}

static bool check_port(const char *p, char *why, size_t len, const char *what)
{
    long long port;

    if (!iw__cfg_parse_integer(p, &port) || port < 1 || port > 65535) {
        snprintf(why, len, "\"%s\" is not a port number (1..65535) in %s", p, what);
        return false;
    }
    return true;
}

static bool check_broker_url(const char *s, char *why, size_t len)
{
    static const char *const schemes[] = { "mqtt://", "mqtts://", "tcp://", "ssl://" };
    const char *host = NULL, *colon;

    for (size_t i = 0; i < IW_ARRAY_LEN(schemes); i++)
        if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
            host = s + strlen(schemes[i]);
    if (host == NULL) {
        snprintf(why, len, "\"%s\" needs a scheme: mqtt://, mqtts://, tcp:// or ssl:// "
                 "(e.g. mqtt://127.0.0.1:1883)", s);
        return false;
    }
    colon = strrchr(host, ':');
    /* A name or IPv4 address, or an IPv6 one in brackets: no space, no lone bracket. */
    bool v6 = host[0] == '[';
    size_t hl = v6 ? strcspn(host, "]") : strcspn(host, ":");
    if (host[0] == '\0' || host[0] == ':' || strchr(host, '/') != NULL
        || (v6 && (host[hl] != ']' || (host[hl + 1] != '\0' && host[hl + 1] != ':')))
        || strspn(host + v6, v6 ? "0123456789abcdefABCDEF:." : "0123456789abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_") != hl - v6) {
        snprintf(why, len, "\"%s\" needs a host and an optional port, e.g. mqtt://127.0.0.1:1883 "
                 "or mqtt://[::1]:1883", s);
        return false;
    }
    /* "[::1]:1883": only a colon after the bracket starts the port. */
    if (colon != NULL && (strchr(host, ']') == NULL || strchr(host, ']') < colon))
        return check_port(colon + 1, why, len, s);
    return true;
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost:8080" -> host, port. */
bool iw_listen_split(const char *s, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon;
    size_t n;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        n = (size_t)(close - s - 1);
        if (n >= hlen)
            return false;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || strchr(s, ':') != colon)
            return false;
        n = (size_t)(colon - s);
        if (n >= hlen)
            return false;
        memcpy(host, s, n);
        host[n] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= plen ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return false;
    snprintf(port, plen, "%s", colon + 1);
    return true;
}


/* What the daemon's listener takes (iw_listen_split), so check and start agree. */
static bool check_listen(const char *s, char *why, size_t len)
{
    char host[128], port[16];

    if (s[0] == '\0' || strcmp(s, "off") == 0)
        return true;
    if (!iw_listen_split(s, host, sizeof(host), port, sizeof(port)) || host[0] == '\0'
        || strspn(host, s[0] == '[' ? "0123456789abcdefABCDEF:." : "0123456789abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-") != strlen(host)) {
        snprintf(why, len, "\"%s\" must be HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (or "
                 "\"off\")", s);
        return false;
    }
    return check_port(port, why, len, s);
}

static bool check_log_level(const char *s, char *why, size_t len)
{
    static const char *const names[] = { "error", "warn", "info", "debug", NULL };
    char hint[96];

    if (iw_log_level_parse(s) >= 0)
        return true;
    snprintf(why, len, "\"%s\" is not a log level (one of error, warn, info, debug)%s", s,
             iw__cfg_hint_names(s, names, hint, sizeof(hint)));
    return false;
}

static bool check_topic_template(const char *s, const char *const *fields, char *why, size_t len)
{
    const char *bad;

    if (s[0] == '\0' || strpbrk(s, "+#") != NULL) {
        snprintf(why, len, "\"%s\" is not a topic to publish on (no '+' or '#', not empty)", s);
        return false;
    }
    return iw__cfg_check_template(s, fields, &bad, why, len);
}

static bool check_alert_topic(const char *s, char *why, size_t len)
{
    static const char *const fields[] = { "severity", "rule", "kind", "status", "source",
                                          "site", "device", "metric", NULL };
    return check_topic_template(s, fields, why, len);
}

static bool check_rejected_topic(const char *s, char *why, size_t len)
{
    static const char *const fields[] = { "source", NULL };
    return check_topic_template(s, fields, why, len);
}

/* ======================================================================== */
/* Schema tables                                                             */
/* ======================================================================== */

#define SEC(n)   ((long long)(n) * 1000)
#define MIN(n)   ((long long)(n) * IW_MS_PER_MIN)
#define HOUR(n)  ((long long)(n) * IW_MS_PER_HOUR)
#define DAY(n)   ((long long)(n) * IW_MS_PER_DAY)
#define YEAR(n)  ((long long)(n) * 365 * IW_MS_PER_DAY)

#define BR(f) offsetof(struct iw_broker_cfg, f)
static const struct cfg_key tls_keys[] = {
    { "ca_file", CFG_STR, BR(tls_ca_file), .check = check_readable,
      .doc = "CA bundle that signs the broker's certificate" },
    { "cert_file", CFG_STR, BR(tls_cert_file), .check = check_readable,
      .doc = "client certificate (with key_file)" },
    { "key_file", CFG_STR, BR(tls_key_file), .check = check_readable,
      .doc = "client private key (with cert_file)" },
    { 0 }
};

static const char *const protocol_names[] = { "3.1.1", "5", NULL };

static const struct cfg_key broker_keys[] = {
    { "url", CFG_STR, BR(url), .def.s = "mqtt://127.0.0.1:1883", .check = check_broker_url,
      .doc = "broker address: mqtt://, tcp:// plain; mqtts://, ssl:// TLS" },
    { "client_id", CFG_STR, BR(client_id), .def.s = "islewatchd", .check = check_nonempty,
      .doc = "fixed MQTT client id, so the persistent session survives restarts" },
    { "username", CFG_STR, BR(username), .doc = "broker user name; none by default" },
    { "password_file", CFG_STR, BR(password_file), .check = check_readable,
      .doc = "file whose first line is the password" },
    { "tls", CFG_SECTION, 0, .sub = tls_keys, .doc = "TLS files: ca_file, cert_file, key_file" },
    { "keepalive", CFG_DURATION, BR(keepalive_ms), .min = SEC(1), .max = SEC(65535),
      .def.i = SEC(30), .doc = "MQTT keep-alive interval" },
    { "clean_session", CFG_BOOL, BR(clean_session), .def.i = 0,
      .doc = "false keeps the session (and messages queued while down) across restarts" },
    { "connections", CFG_INT, BR(connections), .min = 1, .max = 64, .def.i = 1,
      .doc = ">1 opens that many connections on a shared subscription" },
    { "share_group", CFG_STR, BR(share_group), .def.s = "islewatch", .check = iw__cfg_check_label,
      .doc = "group name of $share/<group>/... when connections > 1" },
    { "reconnect_min", CFG_DURATION, BR(reconnect_min_ms), .min = 10, .max = HOUR(1),
      .def.i = SEC(1), .doc = "first reconnect back-off" },
    { "reconnect_max", CFG_DURATION, BR(reconnect_max_ms), .min = 10, .max = DAY(1),
      .def.i = SEC(60), .doc = "longest reconnect back-off" },
    { "protocol", CFG_ENUM, BR(protocol), .names = protocol_names, .def.i = IW_MQTT_311,
      .doc = "MQTT version: \"3.1.1\" or \"5\" (5 bounds QoS 2 bursts in memory)" },
    { 0 }
};

#define ST(f) offsetof(struct iw_storage_cfg, f)
static const struct cfg_key retention_keys[] = {
    { "raw", CFG_DURATION, ST(retention_raw_ms), .min = HOUR(1), .max = YEAR(100),
      .def.i = DAY(90), .doc = "how long raw samples are kept" },
    { "1m", CFG_DURATION, ST(retention_1m_ms), .min = HOUR(1), .max = YEAR(100),
      .def.i = YEAR(1), .doc = "how long per-minute rollups are kept" },
    { "1h", CFG_DURATION, ST(retention_1h_ms), .min = HOUR(1), .max = YEAR(100),
      .def.i = YEAR(10), .doc = "how long per-hour rollups are kept" },
    { 0 }
};

static const struct cfg_key storage_keys[] = {
    { "path", CFG_STR, ST(path), .def.s = "./data", .check = check_nonempty,
      .doc = "RocksDB directory (created when missing, with its parents)" },
    { "retention", CFG_SECTION, 0, .sub = retention_keys, .doc = "per resolution: raw, 1m, 1h" },
    { "shards", CFG_INT, ST(shards), .min = 1, .max = 64, .def.i = 2,
      .doc = "worker threads for rollups and rules" },
    { "queue_size", CFG_COUNT, ST(queue_size), .min = 64, .max = 1 << 24, .def.i = 65536,
      .flags = CFG_POW2, .doc = "slots per shard queue (power of two)" },
    { "sync_writes", CFG_BOOL, ST(sync_writes), .def.i = 0,
      .doc = "fsync the write-ahead log for every batch" },
    { "test_slow_write", CFG_DURATION, ST(slow_write_ms), .min = 0, .max = MIN(1), .def.i = 0,
      .doc = "test only: delay added to every write batch" },
    { "test_max_series", CFG_COUNT, ST(max_series), .min = 0, .max = IW_STORE_DEFAULT_MAX_SERIES,
      .def.i = 0, .doc = "test only: a smaller series dictionary (0: the default size)" },
    { 0 }
};

#define HT(f) offsetof(struct iw_http_cfg, f)
static const struct cfg_key http_keys[] = {
    { "listen", CFG_STR, HT(listen), .def.s = "127.0.0.1:8080", .check = check_listen,
      .doc = "HOST:PORT of the HTTP API and dashboard; \"off\" disables" },
    { "token_file", CFG_STR, HT(token_file), .check = check_token,
      .doc = "file holding the bearer token state-changing requests need" },
    { "test_answer_budget", CFG_SIZE, HT(answer_budget), .min = 0, .max = 1LL << 40,
      .def.i = 0, .doc = "test only: bytes of query answers in flight before a query is 503" },
    { 0 }
};

#define AL(f) offsetof(struct iw_alerts_cfg, f)
static const struct cfg_key alerts_keys[] = {
    { "topic", CFG_STR, AL(topic), .def.s = "alerts/{severity}/{rule}/{site}/{device}",
      .check = check_alert_topic, .doc = "where every alert is published" },
    { "active_topic", CFG_STR, AL(active_topic), .def.s = "alerts/active/{rule}/{site}/{device}",
      .check = check_alert_topic, .doc = "retained current state of each firing alert; instances "
      "sharing a topic (metrics, without {metric}) show the latest until the last resolves" },
    { "qos", CFG_INT, AL(qos), .min = 0, .max = 2, .def.i = 1, .doc = "QoS of alert messages" },
    { "live_window", CFG_DURATION, AL(live_window_ms), .min = 0, .max = YEAR(1),
      .def.i = MIN(15), .doc = "alerts from samples older than this are marked late" },
    { "outbox_max", CFG_COUNT, AL(outbox_max), .min = 1, .max = 10000000, .def.i = 100000,
      .doc = "alerts kept while the broker is unreachable" },
    { 0 }
};

#define CF(f) offsetof(struct iw_config, f)
/* Parse order = row order: sources before devices and rules, rules before silences. */
static const struct cfg_key top_keys[] = {
    { "log_level", CFG_STR, CF(log_level), .def.s = "info", .check = check_log_level,
      .doc = "error, warn, info or debug" },
    { "broker", CFG_SECTION, CF(broker), .sub = broker_keys, .doc = "MQTT broker connection" },
    { "storage", CFG_SECTION, CF(storage), .sub = storage_keys, .doc = "RocksDB storage" },
    { "http", CFG_SECTION, CF(http), .sub = http_keys, .doc = "HTTP API and dashboard" },
    { "alerts", CFG_SECTION, CF(alerts), .sub = alerts_keys, .doc = "alert publishing" },
    { "rejected_topic", CFG_STR, CF(ingest.rejected_topic), .check = check_rejected_topic,
      .doc = "republish rejected messages here with the reason; none by default" },
    { "max_payload", CFG_SIZE, CF(ingest.max_payload), .min = 1, .max = 256LL << 20,
      .def.i = 65536, .doc = "larger messages are rejected" },
    { "max_future_skew", CFG_DURATION, CF(ingest.max_future_skew_ms), .min = 0, .max = DAY(7),
      .def.i = MIN(5), .doc = "samples further ahead of the clock are rejected" },
    { "sources", CFG_CUSTOM, .parse = iw__cfg_parse_sources,
      .doc = "topic patterns to subscribe to; SPEC §1's four when absent" },
    { "devices", CFG_CUSTOM, .parse = iw__cfg_parse_devices, .doc = "device inventory" },
    { "devices_file", CFG_CUSTOM, .parse = iw__cfg_parse_devices_file,
      .doc = "file with more inventory entries (relative to this file)" },
    { "rules", CFG_CUSTOM, .parse = iw__cfg_parse_rules, .doc = "alert rules (SPEC §4)" },
    { "silences", CFG_CUSTOM, .parse = iw__cfg_parse_silences,
      .doc = "alerts recorded but not published" },
    { 0 }
};

/* Checks that involve two keys of one section, reported at the second key. */
static void check_cross_keys(struct cfg_ctx *cx, yaml_node_t *root)
{
    struct iw_broker_cfg *b = &cx->cfg->broker;
    yaml_node_t *broker, *tls, *n;
    char a[32], c[32];

    (void)iw__cfg_lookup(cx, root, "broker", &broker);
    if (broker == NULL || broker->type != YAML_MAPPING_NODE)
        return;
    if (b->reconnect_min_ms > b->reconnect_max_ms) {
        (void)iw__cfg_lookup(cx, broker, "reconnect_max", &n);
        if (n == NULL)
            (void)iw__cfg_lookup(cx, broker, "reconnect_min", &n);
        iw__cfg_error(cx, n, "broker: reconnect_min (%s) is longer than reconnect_max (%s)",
                      iw__cfg_fmt_duration(b->reconnect_min_ms, a, sizeof(a)),
                      iw__cfg_fmt_duration(b->reconnect_max_ms, c, sizeof(c)));
    }
    (void)iw__cfg_lookup(cx, broker, "tls", &tls);
    /* An empty file name is no file (as for password_file): unset. */
    char **files[] = { &b->tls_ca_file, &b->tls_cert_file, &b->tls_key_file };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (*files[i] != NULL && (*files[i])[0] == '\0') {
            free(*files[i]);
            *files[i] = NULL;
        }
    /* By the keys written (an empty one is none), not the values kept: a
     * file that cannot be read has its own error and leaves no value. */
    yaml_node_t *cert = NULL, *key = NULL;
    if (tls != NULL && tls->type == YAML_MAPPING_NODE) {
        (void)iw__cfg_lookup(cx, tls, "cert_file", &cert);
        (void)iw__cfg_lookup(cx, tls, "key_file", &key);
    }
    if (cert != NULL && cert->type == YAML_SCALAR_NODE && cert->data.scalar.length == 0)
        cert = NULL;
    if (key != NULL && key->type == YAML_SCALAR_NODE && key->data.scalar.length == 0)
        key = NULL;
    if (tls != NULL && (cert == NULL) != (key == NULL))
        iw__cfg_error(cx, tls, "broker.tls: cert_file and key_file go together; give both or neither");
}

/*
 * A rejected_topic that a source's pattern matches brings every republished
 * rejection back as input, where it is rejected again (its "payload" holds
 * the bad text, '/' and all) and republished again, without end: one bad
 * message becomes thousands a second. Checked with the topic as republished
 * for each source, and for "unknown" (a topic that matched no source).
 */
static void check_rejected_topic_loop(struct cfg_ctx *cx, yaml_node_t *root)
{
    const struct iw_config *cfg = cx->cfg;
    const char *tmpl = cfg->ingest.rejected_topic;
    const char *brace = tmpl != NULL ? strstr(tmpl, "{source}") : NULL;
    yaml_node_t *at;

    if (tmpl == NULL)
        return;
    (void)iw__cfg_lookup(cx, root, "rejected_topic", &at);
    for (size_t i = 0; i <= cfg->n_sources; i++) {
        const char *sname = i < cfg->n_sources ? cfg->sources[i].name : "unknown";
        char topic[512];
        if (brace != NULL)        /* as mqtt_client.c expands it */
            snprintf(topic, sizeof(topic), "%.*s%s%s", (int)(brace - tmpl), tmpl, sname, brace + 8);
        else
            snprintf(topic, sizeof(topic), "%s", tmpl);
        for (size_t k = 0; k < cfg->n_sources; k++) {
            struct iw_topic_pattern pat;
            struct iw_topic_match m;
            const char *why;
            bool hit;
            if (iw_topic_compile(cfg->sources[k].topic, &pat, &why) != IW_OK)
                continue;                /* reported with the source */
            hit = iw_topic_match(&pat, topic, strlen(topic), &m);
            iw_topic_pattern_fini(&pat);
            if (hit) {
                iw__cfg_error(cx, at, "rejected_topic: \"%s\" is a topic of source \"%s\" (%s): "
                              "the daemon would take its own rejections as input and republish "
                              "them without end; use a topic no source matches, e.g. "
                              "\"islewatch/rejected/{source}\"", topic, cfg->sources[k].name,
                              cfg->sources[k].topic);
                return;
            }
        }
    }
}

/* Whether a template level with a {field} (len bytes at lv) can expand to
 * literal: a whole {severity} or {status} level takes only their names. */
static bool field_level_can_be(const char *lv, size_t len, const char *literal)
{
    static const char *const sev[] = { "info", "warning", "major", "critical", NULL };
    static const char *const status[] = { "firing", "resolved", NULL };
    const char *const *names = NULL;

    if (len == 10 && memcmp(lv, "{severity}", 10) == 0)
        names = sev;
    else if (len == 8 && memcmp(lv, "{status}", 8) == 0)
        names = status;
    if (names == NULL)
        return true;
    for (; *names != NULL; names++)
        if (strcmp(*names, literal) == 0)
            return true;
    return false;
}

/*
 * An alerts.topic or active_topic that a source's pattern can match brings
 * the daemon's own alerts back as device data: their numbers (seq, value,
 * threshold) stored as samples of a made-up device, and rules evaluated on
 * them. A level of the template with a {field} can be any value, so it
 * meets any level of the source; a literal level must be the source's.
 */
static void check_alert_topic_loop(struct cfg_ctx *cx, yaml_node_t *root)
{
    const struct iw_config *cfg = cx->cfg;
    const char *keys[] = { "topic", "active_topic" };
    const char *tmpls[] = { cfg->alerts.topic, cfg->alerts.active_topic };
    yaml_node_t *alerts = NULL, *sources = NULL, *at = NULL;

    (void)iw__cfg_lookup(cx, root, "alerts", &alerts);
    (void)iw__cfg_lookup(cx, root, "sources", &sources);
    for (size_t t = 0; t < IW_ARRAY_LEN(keys); t++) {
        const char *tmpl = tmpls[t];
        if (tmpl == NULL)
            continue;
        for (size_t k = 0; k < cfg->n_sources; k++) {
            struct iw_topic_pattern pat;
            const char *why, *lv = tmpl;
            size_t n_levels = 1;
            bool hit;
            for (const char *c = tmpl; *c != '\0'; c++)
                n_levels += *c == '/';
            if (iw_topic_compile(cfg->sources[k].topic, &pat, &why) != IW_OK)
                continue;                /* reported with the source */
            hit = n_levels == pat.n_levels;
            for (size_t i = 0; hit && i < pat.n_levels; i++) {
                const char *end = strchr(lv, '/');
                size_t len = end != NULL ? (size_t)(end - lv) : strlen(lv);
                hit = pat.capture[i] || (memchr(lv, '{', len) != NULL
                                         && field_level_can_be(lv, len, pat.levels[i]))
                      || (strlen(pat.levels[i]) == len && memcmp(pat.levels[i], lv, len) == 0);
                lv = end != NULL ? end + 1 : lv + len;
            }
            iw_topic_pattern_fini(&pat);
            if (hit) {
                /* At the key; left out (its default), at the source's topic. */
                at = NULL;
                if (alerts != NULL)
                    (void)iw__cfg_lookup(cx, alerts, keys[t], &at);
                if (at == NULL && sources != NULL && sources->type == YAML_SEQUENCE_NODE
                    && (size_t)(sources->data.sequence.items.top
                                - sources->data.sequence.items.start) > k) {
                    yaml_node_t *item = iw__cfg_node(cx, sources->data.sequence.items.start[k]);
                    if (item != NULL)
                        (void)iw__cfg_lookup(cx, item, "topic", &at);
                }
                const char *eg = t == 0 ? "alerts/{severity}/{rule}/{site}/{device}"
                                        : "alerts/active/{rule}/{site}/{device}";
                bool deflt = strcmp(tmpl, eg) == 0;
                iw__cfg_error(cx, at != NULL ? at : root, "alerts.%s: \"%s\" can be a topic "
                              "of source \"%s\" (%s): the daemon would take its own alerts as "
                              "device data; %s%s%s", keys[t], tmpl, cfg->sources[k].name,
                              cfg->sources[k].topic,
                              deflt ? "give the source another topic, or set alerts." : "use a "
                              "topic no source matches, e.g. \"", deflt ? keys[t] : eg,
                              deflt ? " to one no source matches" : "\"");
                break;
            }
        }
    }
}

/* ======================================================================== */
/* Freeing                                                                   */
/* ======================================================================== */

void iw__cfg_free_kv(struct iw_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

int iw__cfg_copy_kv(struct iw_kv **dst, size_t *n_dst, const struct iw_kv *src, size_t n)
{
    *dst = NULL;
    *n_dst = 0;
    if (n == 0)
        return IW_OK;
    *dst = calloc(n, sizeof(**dst));
    if (*dst == NULL)
        return IW_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        (*dst)[i].key = strdup(src[i].key);
        (*dst)[i].value = strdup(src[i].value);
        *n_dst = i + 1;
        if ((*dst)[i].key == NULL || (*dst)[i].value == NULL)
            return IW_E_NOMEM;
    }
    return IW_OK;
}

static void free_strings(const struct cfg_key *keys, void *base)
{
    for (const struct cfg_key *k = keys; k->name != NULL; k++) {
        if (k->type == CFG_STR)
            free(*(char **)((char *)base + k->off));
        else if (k->type == CFG_SECTION)
            free_strings(k->sub, (char *)base + k->off);
    }
}

void iw_config_free(struct iw_config *cfg)
{
    if (cfg == NULL)
        return;
    free_strings(top_keys, cfg);
    for (size_t i = 0; i < cfg->n_sources; i++) {
        free(cfg->sources[i].name);
        free(cfg->sources[i].topic);
        free(cfg->sources[i].ts_field);
    }
    free(cfg->sources);
    for (size_t i = 0; i < cfg->n_silences; i++) {
        iw__cfg_free_kv(cfg->silences[i].match, cfg->silences[i].n_match);
        free(cfg->silences[i].reason);
    }
    free(cfg->silences);
    for (size_t i = 0; i < cfg->n_devices; i++) {
        struct iw_device_cfg *d = &cfg->devices[i];
        free(d->source);
        free(d->site);
        free(d->device);
        free(d->name);
    }
    free(cfg->devices);
    for (size_t i = 0; i < cfg->n_rules; i++)
        iw__cfg_free_rule(&cfg->rules[i]);
    free(cfg->rules);
    free(cfg->file);
    free(cfg);
}

/* ======================================================================== */
/* Loading                                                                   */
/* ======================================================================== */

const struct iw_rule_params *iw_rule_params_for(const struct iw_rule *r, const char *site)
{
    for (size_t i = 0; site != NULL && i < r->n_sites; i++)
        if (strcmp(r->sites[i].site, site) == 0)
            return &r->sites[i].p;
    return &r->p;
}

const char *iw_rule_cond_for(const struct iw_rule *r, const char *site)
{
    if (r->cond_hash_site[0] == '\0')
        return r->cond_hash;
    for (size_t i = 0; site != NULL && i < r->n_sites; i++)
        if (strcmp(r->sites[i].site, site) == 0)
            return r->sites[i].cond_hash[0] != '\0' ? r->sites[i].cond_hash : r->cond_hash;
    return r->cond_hash_site;
}

int iw_water_target(const struct iw_rule_params *p, const struct iw_device_cfg *d)
{
    if (p->site_target && p->target >= 1 && p->target <= 5)
        return p->target;
    if (d != NULL && d->target >= 1 && d->target <= 5)
        return d->target;
    return p->target >= 1 && p->target <= 5 ? p->target : 3;
}

static int load_text(const char *name, const char *text, size_t len, struct iw_config **out,
                     struct iw_diag *diag)
{
    struct cfg_ctx cx = { .file = name, .kind = -1 };
    yaml_document_t doc;
    yaml_node_t *root, *sources;
    struct cfg_map top = { .keys = top_keys, .where = "" };
    int rc;

    *out = NULL;
    cx.cfg = calloc(1, sizeof(*cx.cfg));
    if (cx.cfg == NULL)
        return IW_E_NOMEM;
    top.base = cx.cfg;
    cx.cfg->file = iw__cfg_strdup(&cx, name);
    iw__cfg_defaults(&cx, top_keys, cx.cfg);

    rc = iw__cfg_load_doc(&cx, text, len, &doc);
    if (rc == IW_OK) {
        cx.doc = &doc;
        root = yaml_document_get_root_node(&doc);
        /* Without `sources:`, SPEC §1's four apply, and rules and devices refer to them. */
        (void)iw__cfg_lookup(&cx, root, "sources", &sources);
        if (iw__cfg_is_null(sources))
            (void)iw__cfg_default_sources(&cx);
        /* An empty file is a valid config: every default applies. */
        if (root != NULL && !iw__cfg_is_null(root)) {
            (void)iw__cfg_walk(&cx, root, &top);
            check_cross_keys(&cx, root);
            if (cx.n_errs == 0) {        /* sources and the topics are each valid */
                check_rejected_topic_loop(&cx, root);
                check_alert_topic_loop(&cx, root);
            }
        }
        yaml_document_delete(&doc);
    }

    if (cx.nomem) {
        rc = IW_E_NOMEM;
        iw_diag_add(diag, name, 0, 0, "out of memory while loading the configuration");
    } else {
        rc = cx.n_errs > 0 ? IW_E_CONFIG : IW_OK;
    }
    errors_flush(&cx, diag);
    free(cx.dev_pos);
    free(cx.dev_set);
    if (rc != IW_OK) {
        iw_config_free(cx.cfg);
        return rc;
    }
    *out = cx.cfg;
    return IW_OK;
}

int iw_config_load_string(const char *name, const char *text, size_t len,
                          struct iw_config **out, struct iw_diag *diag)
{
    if (out == NULL)
        return IW_E_INVAL;
    *out = NULL;
    if (name == NULL || text == NULL)
        return IW_E_INVAL;
    return load_text(name, text, len, out, diag);
}

int iw_config_load(const char *file, struct iw_config **out, struct iw_diag *diag)
{
    char why[256];
    char *text;
    size_t len;
    int rc;

    if (out == NULL)
        return IW_E_INVAL;
    *out = NULL;
    if (file == NULL)
        return IW_E_INVAL;
    rc = iw__cfg_read_file(file, &text, &len, why, sizeof(why));
    if (rc != IW_OK) {
        /* Line 1, column 1: SPEC §3 makes every error FILE:LINE:COLUMN, and
         * tools that parse the lines (editors, CI annotations) expect it. */
        iw_diag_add(diag, file, 1, 1, "%s", why);
        return rc == IW_E_NOMEM ? rc : IW_E_IO;
    }
    rc = load_text(file, text, len, out, diag);
    free(text);
    return rc;
}
