/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TESTS.yaml of `islewatch test`: libyaml's document API, every key checked,
 * every problem one "FILE:LINE:COLUMN: error: MESSAGE" line (libyaml marks are
 * 0-based, reported 1-based). Loading goes on after a problem so one run shows
 * them all. The format is documented for users in config/tests.example.yaml.
 * This file: the shared helpers, the file, its tests and their expectations;
 * test_spec_input.c: the input samples.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "islewatch/clock.h"
#include "islewatch/replay.h"
#include "islewatch/topic.h"
#include "test_spec.h"
#include "test_spec_int.h"

void ts_err_at(struct ts_cx *cx, size_t line, size_t col, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    iw_diag_add(cx->diag, cx->file, line, col, "%s", msg);
    cx->n_err++;
}

yaml_node_t *ts_node(struct ts_cx *cx, int idx)
{
    return yaml_document_get_node(cx->doc, idx);
}

const char *ts_scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}


char *ts_dup(struct ts_cx *cx, const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        cx->nomem = true;
    return d;
}

/* ---- keys ------------------------------------------------------------------ */

/* Report keys of map n that are not in allowed (NULL-terminated). */
bool ts_check_keys(struct ts_cx *cx, yaml_node_t *n, const char *what, const char *const *allowed)
{
    size_t na = 0;
    bool ok = true;

    while (allowed[na] != NULL)
        na++;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ts_node(cx, p->key);
        const char *ks = ts_scalar(k);
        bool known = false;
        char h[96];

        for (size_t i = 0; ks != NULL && i < na; i++)
            known = known || strcmp(ks, allowed[i]) == 0;
        if (!known) {
            TS_ERR(cx, k, "%s: unknown key \"%s\"%s", what, ks ? ks : "?",
                ks ? iw_did_you_mean(ks, allowed, h, sizeof(h)) : "");
            ok = false;
            continue;
        }
        /* As in a config: a second `name:` would silently win over the first. */
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k0 = ts_node(cx, q->key);
            const char *k0s = ts_scalar(k0);
            if (k0s != NULL && strcmp(k0s, ks) == 0) {
                TS_ERR(cx, k, "%s: duplicate key \"%s\" (first at line %zu)", what, ks,
                       (size_t)k0->start_mark.line + 1);
                ok = false;
                break;
            }
        }
    }
    return ok;
}

yaml_node_t *ts_get(struct ts_cx *cx, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *ks = ts_scalar(ts_node(cx, p->key));
        if (ks != NULL && strcmp(ks, key) == 0)
            return ts_node(cx, p->value);
    }
    return NULL;
}

/* A scalar value, or NULL after reporting what is wrong (required: missing is an error). */
const char *ts_get_str(struct ts_cx *cx, yaml_node_t *map, const char *key, bool required,
                           const char *what)
{
    yaml_node_t *v = ts_get(cx, map, key);
    if (v == NULL) {
        if (required)
            TS_ERR(cx, map, "%s: missing \"%s\"", what, key);
        return NULL;
    }
    if (ts_scalar(v) == NULL) {
        TS_ERR(cx, v, "%s: \"%s\" must be a single value, not a %s", what, key,
            v->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    return ts_scalar(v);
}

/* ---- values ------------------------------------------------------------------- */

/*
 * The tolerance a written value implies: "1.63" matches 1.625..1.635 (the
 * actual value rounded to the digits written), "2" only 2.
 */
static double tolerance(const char *s)
{
    const char *dot = strchr(s, '.');
    double tol = 0.5;
    size_t dec = 0;

    if (dot == NULL || strpbrk(s, "eE") != NULL)
        return 1e-9;
    while (isdigit((unsigned char)dot[1 + dec]))
        dec++;
    for (size_t i = 0; i < dec; i++)
        tol /= 10;
    return tol * (1 + 1e-9);
}

static bool parse_bool(const char *s, bool *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* An offset from start ("5m", "1h30m", "0") or an RFC 3339 time. */
bool ts_parse_time(struct ts_cx *cx, yaml_node_t *n, const char *key, int64_t start, int64_t *out)
{
    const char *s = ts_scalar(n);
    int64_t v;

    if (s != NULL && iw_duration_parse(s, &v) == IW_OK) {
        *out = start + v;
        return true;
    }
    if (s != NULL && iw_rfc3339_parse(s, strlen(s), &v) == IW_OK) {
        *out = v;
        return true;
    }
    TS_ERR(cx, n, "%s: \"%s\" is neither an offset from the test's start (0, 30s, 5m, 1h30m) nor an "
        "RFC 3339 time (2026-01-01T08:00:00+08:00)", key, s ? s : "(not a value)");
    return false;
}

/* A series name whose source the config knows; sets *is_event. */
bool ts_check_series(struct ts_cx *cx, yaml_node_t *n, const char *series, bool *is_event,
                     bool *device)
{
    char buf[1024], names[512] = "";
    struct iw_rsample s;

    if (device != NULL)
        *device = iw_replay_split_device(series, buf, sizeof(buf), &s) == IW_OK;
    if ((device == NULL || !*device) && iw_replay_split(series, buf, sizeof(buf), &s) != IW_OK) {
        TS_ERR(cx, n, "series \"%s\": write <source>/<site>/<device>/<metric>, "
            "e.g. water/dongtan/w01/nh3_n (for an event source the metric is the event type)%s",
            series, device != NULL ? "; or <source>/<site>/<device> for a message with no "
            "sample, e.g. {at: 5m, series: water/dongtan/w01, flag: D}" : "");
        return false;
    }
    for (size_t i = 0; i < cx->cfg->n_sources; i++) {
        if (strcmp(cx->cfg->sources[i].name, s.source) == 0) {
            *is_event = cx->cfg->sources[i].format == IW_FMT_EVENT;
            return true;
        }
        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                 cx->cfg->sources[i].name);
    }
    TS_ERR(cx, n, "series \"%s\": source \"%s\" is not declared in %s (sources: %s)", series, s.source,
        cx->cfg->file ? cx->cfg->file : "the rule file", names);
    return false;
}

/* ---- expect ------------------------------------------------------------------------ */

static const char *const expect_keys[] = { "at", "rule", "status", "severity", "source", "site",
                                           "device", "metric", "value", "late", "silenced",
                                           "message", "details", NULL };
static const char *const point_keys[] = { "series", "at", "value", "valid", NULL };

static bool rule_runs(const struct ts_case *tc, const char *name)
{
    if (tc->rules == NULL)
        return true;
    for (size_t i = 0; i < tc->n_rules; i++)
        if (iw_glob_match(tc->rules[i], name))
            return true;
    return false;
}

/* The rule must exist in the config and run in this test. */
static bool check_rule(struct ts_cx *cx, yaml_node_t *n, const struct ts_case *tc, const char *rule)
{
    const char *names[257];
    size_t nn = 0;
    char h[96];

    for (size_t i = 0; i < cx->cfg->n_rules; i++) {
        if (strcmp(cx->cfg->rules[i].name, rule) == 0) {
            if (rule_runs(tc, rule))
                return true;
            TS_ERR(cx, n, "expect: rule \"%s\" does not run in this test (it is not in the test's rules:)",
                rule);
            return false;
        }
        if (nn < 256)
            names[nn++] = cx->cfg->rules[i].name;
    }
    names[nn] = NULL;
    TS_ERR(cx, n, "expect: no rule \"%s\" in %s%s", rule, cx->cfg->file ? cx->cfg->file : "the rule file",
        iw_did_you_mean(rule, names, h, sizeof(h)));
    return false;
}

static bool opt_bool(struct ts_cx *cx, yaml_node_t *m, const char *key, int *out)
{
    const char *s = ts_get_str(cx, m, key, false, "expect");
    bool b;

    *out = -1;
    if (s == NULL)
        return ts_get(cx, m, key) == NULL;
    if (!parse_bool(s, &b)) {
        TS_ERR(cx, ts_get(cx, m, key), "expect: %s: write true or false, not \"%s\"", key, s);
        return false;
    }
    *out = b;
    return true;
}

static void parse_expect_one(struct ts_cx *cx, yaml_node_t *m, struct ts_case *tc)
{
    struct ts_expect e = { .late = -1, .silenced = -1, .line = m->start_mark.line + 1,
                           .col = m->start_mark.column + 1 };
    const char *rule, *status, *sev, *site, *device, *v;
    size_t err0 = cx->n_err;
    struct ts_expect *arr;

    if (!ts_check_keys(cx, m, "expect", expect_keys))
        return;
    rule = ts_get_str(cx, m, "rule", true, "expect");
    status = ts_get_str(cx, m, "status", true, "expect");
    sev = ts_get_str(cx, m, "severity", true, "expect");
    site = ts_get_str(cx, m, "site", true, "expect");
    device = ts_get_str(cx, m, "device", true, "expect");
    if (ts_get(cx, m, "at") == NULL)
        TS_ERR(cx, m, "expect: missing \"at\" (when the alert is emitted, e.g. at: 10m)");
    else
        ts_parse_time(cx, ts_get(cx, m, "at"), "at", tc->start, &e.at);
    if (rule != NULL)
        check_rule(cx, ts_get(cx, m, "rule"), tc, rule);
    if (status != NULL) {
        if (strcmp(status, "firing") == 0)
            e.status = IW_ALERT_FIRING;
        else if (strcmp(status, "resolved") == 0)
            e.status = IW_ALERT_RESOLVED;
        else
            TS_ERR(cx, ts_get(cx, m, "status"), "expect: status \"%s\": use firing or resolved", status);
    }
    if (sev != NULL && (e.severity = iw_severity_parse(sev)) < 0)
        TS_ERR(cx, ts_get(cx, m, "severity"), "expect: severity \"%s\": use info, warning, major or critical",
            sev);
    if ((v = ts_get_str(cx, m, "value", false, "expect")) != NULL) {
        e.has_value = ts_parse_num(v, &e.value);
        e.tol = tolerance(v);
        if (!e.has_value)
            TS_ERR(cx, ts_get(cx, m, "value"), "expect: value \"%s\" is not a number", v);
    }
    opt_bool(cx, m, "late", &e.late);
    opt_bool(cx, m, "silenced", &e.silenced);
    if (cx->n_err != err0 || rule == NULL || status == NULL || sev == NULL || site == NULL
        || device == NULL)
        return;
    e.rule = ts_dup(cx, rule);
    e.site = ts_dup(cx, site);
    e.device = ts_dup(cx, device);
    if ((v = ts_get_str(cx, m, "source", false, "expect")) != NULL)
        e.source = ts_dup(cx, v);
    if ((v = ts_get_str(cx, m, "metric", false, "expect")) != NULL)
        e.metric = ts_dup(cx, v);
    if ((v = ts_get_str(cx, m, "message", false, "expect")) != NULL)
        e.message = ts_dup(cx, v);
    if ((v = ts_get_str(cx, m, "details", false, "expect")) != NULL)
        e.details = ts_dup(cx, v);
    arr = realloc(tc->expects, (tc->n_expects + 1) * sizeof(*arr));
    if (arr == NULL) {
        cx->nomem = true;
        free(e.rule), free(e.site), free(e.device), free(e.source), free(e.metric);
        free(e.message), free(e.details);
        return;
    }
    tc->expects = arr;
    arr[tc->n_expects++] = e;
}

static void parse_point_one(struct ts_cx *cx, yaml_node_t *m, struct ts_case *tc)
{
    struct ts_point pt = { .valid = -1, .line = m->start_mark.line + 1, .col = m->start_mark.column + 1 };
    const char *series, *v, *valid;
    size_t err0 = cx->n_err;
    struct ts_point *arr;
    bool b, ev;

    if (!ts_check_keys(cx, m, "expect_series", point_keys))
        return;
    series = ts_get_str(cx, m, "series", true, "expect_series");
    v = ts_get_str(cx, m, "value", true, "expect_series");
    valid = ts_get_str(cx, m, "valid", false, "expect_series");
    if (ts_get(cx, m, "at") == NULL)
        TS_ERR(cx, m, "expect_series: missing \"at\" (the point's time, e.g. at: 1h)");
    else
        ts_parse_time(cx, ts_get(cx, m, "at"), "at", tc->start, &pt.at);
    if (series != NULL)
        ts_check_series(cx, ts_get(cx, m, "series"), series, &ev, NULL);
    if (v != NULL && strcmp(v, "_") == 0)
        pt.absent = true;
    else if (v != NULL && !ts_parse_num(v, &pt.value))
        TS_ERR(cx, ts_get(cx, m, "value"), "expect_series: value \"%s\": a number, or _ for no point", v);
    else if (v != NULL)
        pt.tol = tolerance(v);
    if (valid != NULL) {
        if (!parse_bool(valid, &b))
            TS_ERR(cx, ts_get(cx, m, "valid"), "expect_series: valid: write true or false");
        else
            pt.valid = b;
    }
    if (cx->n_err != err0 || series == NULL || v == NULL)
        return;
    pt.series = ts_dup(cx, series);
    arr = realloc(tc->points, (tc->n_points + 1) * sizeof(*arr));
    if (arr == NULL) {
        cx->nomem = true;
        free(pt.series);
        return;
    }
    tc->points = arr;
    arr[tc->n_points++] = pt;
}

/* An empty value or YAML's null (`expect:`, `expect: ~`): "left out". */
static bool is_null(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0;
    return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* A list of mappings, each handed to one(). */
static void parse_list(struct ts_cx *cx, yaml_node_t *n, const char *what, struct ts_case *tc,
                       void (*one)(struct ts_cx *, yaml_node_t *, struct ts_case *))
{
    if (n->type != YAML_SEQUENCE_NODE) {
        TS_ERR(cx, n, "%s: a list, e.g. - {at: 10m, ...}", what);
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *m = ts_node(cx, *it);
        if (m->type != YAML_MAPPING_NODE)
            TS_ERR(cx, m, "%s: each item is a mapping, e.g. {at: 10m, ...}", what);
        else
            one(cx, m, tc);
    }
}

/* ---- a test --------------------------------------------------------------------------- */

static const char *const case_keys[] = { "name", "start", "interval", "until", "rules", "inventory",
                                         "restarts", "input", "expect", "expect_series", NULL };

struct defaults {
    int64_t start, interval;
};

static void parse_strings(struct ts_cx *cx, yaml_node_t *n, const char *what, char ***out, size_t *nout)
{
    size_t k = 0;

    if (n->type != YAML_SEQUENCE_NODE) {
        TS_ERR(cx, n, "%s: a list, e.g. [nh3n-high, \"camera-*\"]", what);
        return;
    }
    *out = calloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1, sizeof(char *));
    if (*out == NULL) {
        cx->nomem = true;
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *s = ts_node(cx, *it);
        if (ts_scalar(s) == NULL)
            TS_ERR(cx, s, "%s: each item is a name or a glob", what);
        else
            (*out)[k++] = ts_dup(cx, ts_scalar(s));
    }
    *nout = k;
}

/*
 * until is where the clock stops after the last sample: one before a sample's
 * receipt (or a restart) would be run past without a word, so the alerts of
 * the samples after it would surprise the reader. Say so instead.
 */
static void check_until(struct ts_cx *cx, yaml_node_t *v, const struct ts_case *tc)
{
    int64_t last = INT64_MIN;
    char a[32], b[32];

    if (!tc->has_until)
        return;
    for (size_t i = 0; i < tc->n_samples; i++)
        if (tc->samples[i].recv > last)
            last = tc->samples[i].recv;
    for (size_t i = 0; i < tc->n_restarts; i++)
        if (tc->restarts[i] > last)
            last = tc->restarts[i];
    if (last > tc->until)
        TS_ERR(cx, v, "until %s is before the last sample or restart (at %s): the clock cannot stop "
            "before the input ends; drop until, or the input after it",
            ts_fmt_offset(tc->until - tc->start, a, sizeof(a)),
            ts_fmt_offset(last - tc->start, b, sizeof(b)));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void parse_case(struct ts_cx *cx, yaml_node_t *n, const struct defaults *d, struct ts_case *tc)
{
    const char *name, *s;
    yaml_node_t *v;
    bool b;

    tc->line = n->start_mark.line + 1;
    tc->col = n->start_mark.column + 1;
    tc->start = d->start;
    tc->interval = d->interval;
    tc->inventory = true;
    ts_check_keys(cx, n, "test", case_keys);
    name = ts_get_str(cx, n, "name", true, "test");
    tc->name = ts_dup(cx, name ? name : "?");
    if ((s = ts_get_str(cx, n, "start", false, "test")) != NULL
        && iw_rfc3339_parse(s, strlen(s), &tc->start) != IW_OK)
        TS_ERR(cx, ts_get(cx, n, "start"), "test: start \"%s\" is not an RFC 3339 time "
            "(e.g. 2026-01-01T00:00:00Z)", s);
    if ((s = ts_get_str(cx, n, "interval", false, "test")) != NULL
        && (iw_duration_parse(s, &tc->interval) != IW_OK || tc->interval <= 0))
        TS_ERR(cx, ts_get(cx, n, "interval"), "test: interval \"%s\": a duration above 0, e.g. 1m", s);
    if ((v = ts_get(cx, n, "until")) != NULL)
        tc->has_until = ts_parse_time(cx, v, "until", tc->start, &tc->until);
    if ((s = ts_get_str(cx, n, "inventory", false, "test")) != NULL) {
        if (parse_bool(s, &b))
            tc->inventory = b;
        else
            TS_ERR(cx, ts_get(cx, n, "inventory"), "test: inventory: write true or false");
    }
    if ((v = ts_get(cx, n, "rules")) != NULL) {
        parse_strings(cx, v, "rules", &tc->rules, &tc->n_rules);
        for (size_t i = 0; i < tc->n_rules; i++) {
            size_t hits = 0;
            for (size_t k = 0; k < cx->cfg->n_rules; k++)
                hits += iw_glob_match(tc->rules[i], cx->cfg->rules[k].name);
            if (hits == 0 && tc->rules[i] != NULL)
                TS_ERR(cx, ts_node(cx, v->data.sequence.items.start[i]), "rules: \"%s\" matches no rule "
                    "in %s", tc->rules[i], cx->cfg->file ? cx->cfg->file : "the rule file");
        }
    }
    if ((v = ts_get(cx, n, "restarts")) != NULL) {
        if (v->type != YAML_SEQUENCE_NODE) {
            TS_ERR(cx, v, "restarts: a list of times, e.g. [30m]");
        } else {
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            tc->restarts = calloc(cnt ? cnt : 1, sizeof(int64_t));
            if (tc->restarts == NULL)
                cx->nomem = true;
            for (size_t i = 0; tc->restarts != NULL && i < cnt; i++)
                if (ts_parse_time(cx, ts_node(cx, v->data.sequence.items.start[i]), "restarts", tc->start,
                               &tc->restarts[tc->n_restarts]))
                    tc->n_restarts++;
            if (tc->restarts != NULL)
                iw_sort(tc->restarts, tc->n_restarts, sizeof(int64_t), cmp_i64);
        }
    }
    if ((v = ts_get(cx, n, "input")) != NULL)
        ts_parse_input(cx, v, tc);
    check_until(cx, ts_get(cx, n, "until"), tc);
    if ((v = ts_get(cx, n, "expect")) != NULL && !is_null(v))
        parse_list(cx, v, "expect", tc, parse_expect_one);
    if ((v = ts_get(cx, n, "expect_series")) != NULL)
        parse_list(cx, v, "expect_series", tc, parse_point_one);
}

/* ---- the file ------------------------------------------------------------------------------ */

static void parse_tests(struct ts_cx *cx, yaml_node_t *list, const struct defaults *d, struct ts_file *f)
{
    size_t cnt;

    if (list->type != YAML_SEQUENCE_NODE) {
        TS_ERR(cx, list, "tests: a list of tests, each - name: ..., input: ..., expect: ...");
        return;
    }
    cnt = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    f->cases = calloc(cnt ? cnt : 1, sizeof(*f->cases));
    if (f->cases == NULL) {
        cx->nomem = true;
        return;
    }
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *m = ts_node(cx, list->data.sequence.items.start[i]);
        struct ts_case *tc = &f->cases[f->n_cases];

        if (m->type != YAML_MAPPING_NODE) {
            TS_ERR(cx, m, "tests: each test is a mapping with name, input and expect");
            continue;
        }
        /* Before the test's own problems, so the lines come out in file order. */
        for (size_t k = 0; k < f->n_cases && ts_scalar(ts_get(cx, m, "name")) != NULL; k++)
            if (strcmp(f->cases[k].name, ts_scalar(ts_get(cx, m, "name"))) == 0)
                TS_ERR(cx, m, "test \"%s\": the name is already used by the test at line %zu",
                    f->cases[k].name, f->cases[k].line);
        f->n_cases++;
        parse_case(cx, m, d, tc);
    }
}

static const char *const top_keys[] = { "tests", "start", "interval", NULL };

static void parse_root(struct ts_cx *cx, yaml_node_t *root, struct ts_file *f)
{
    struct defaults d = { TS_DEFAULT_START, TS_DEFAULT_INTERVAL };
    const char *s;

    if (root->type == YAML_SEQUENCE_NODE) {
        parse_tests(cx, root, &d, f);
        return;
    }
    if (root->type != YAML_MAPPING_NODE) {
        TS_ERR(cx, root, "expected a list of tests, or a mapping with tests: (and optional start:, "
            "interval: for all of them)");
        return;
    }
    ts_check_keys(cx, root, "top level", top_keys);
    if ((s = ts_get_str(cx, root, "start", false, "top level")) != NULL
        && iw_rfc3339_parse(s, strlen(s), &d.start) != IW_OK)
        TS_ERR(cx, ts_get(cx, root, "start"), "start \"%s\" is not an RFC 3339 time", s);
    if ((s = ts_get_str(cx, root, "interval", false, "top level")) != NULL
        && (iw_duration_parse(s, &d.interval) != IW_OK || d.interval <= 0))
        TS_ERR(cx, ts_get(cx, root, "interval"), "interval \"%s\": a duration above 0, e.g. 1m", s);
    if (ts_get(cx, root, "tests") == NULL)
        TS_ERR(cx, root, "missing \"tests\" (the list of tests)");
    else
        parse_tests(cx, ts_get(cx, root, "tests"), &d, f);
}

/* "FILE:LINE:COL: ..." lines of this file, in position order (keys are checked
 * before values, tests before their parts: the walk does not go in file order). */
static size_t diag_pos(const char *line, size_t flen, size_t *col)
{
    char *end;
    size_t l = strtoul(line + flen + 1, &end, 10);
    *col = *end == ':' ? strtoul(end + 1, NULL, 10) : 0;
    return l;
}

static const char *sort_file;

static int cmp_diag(const void *pa, const void *pb)
{
    size_t flen = strlen(sort_file), ca, cb;
    size_t la = diag_pos(*(char *const *)pa, flen, &ca), lb = diag_pos(*(char *const *)pb, flen, &cb);
    if (la != lb)
        return la < lb ? -1 : 1;
    return (ca > cb) - (ca < cb);
}

static void sort_diag(struct iw_diag *d, size_t from, const char *file)
{
    if (d->n < from + 2)
        return;
    for (size_t i = from; i < d->n; i++)
        if (strncmp(d->lines[i], file, strlen(file)) != 0 || d->lines[i][strlen(file)] != ':')
            return;                     /* not all ours: leave the order alone */
    sort_file = file;
    iw_sort(d->lines + from, d->n - from, sizeof(char *), cmp_diag);
}

int ts_file_load(const char *file, const struct iw_config *cfg, struct ts_file **out,
                 struct iw_diag *diag)
{
    struct ts_cx cx = { .file = file, .cfg = cfg, .diag = diag };
    yaml_parser_t parser;
    yaml_document_t doc;
    struct ts_file *f;
    yaml_node_t *root;
    FILE *in;
    size_t n0;
    int rc = IW_OK;

    *out = NULL;
    in = fopen(file, "rb");
    if (in == NULL) {
        /* FILE:1:1, as every other error about the file (and the config's own). */
        iw_diag_add(diag, file, 1, 1, "cannot open: %s (check the path and its permissions)",
                    strerror(errno));
        return IW_E_IO;
    }
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISDIR(st.st_mode)) {   /* libyaml: "input error" */
        iw_diag_add(diag, file, 1, 1, "cannot read: is a directory; name the tests file");
        fclose(in);
        return IW_E_IO;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL || !yaml_parser_initialize(&parser)) {
        fclose(in);
        free(f);
        return IW_E_NOMEM;
    }
    yaml_parser_set_input_file(&parser, in);
    if (!yaml_parser_load(&parser, &doc)) {
        ts_err_at(&cx, parser.problem_mark.line + 1, parser.problem_mark.column + 1, "YAML: %s%s%s",
               parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
               parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(in);
        free(f);
        return IW_E_CONFIG;
    }
    cx.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    n0 = diag->n;
    if (root == NULL)
        ts_err_at(&cx, 1, 1, "the file is empty; write a list of tests (see config/tests.example.yaml)");
    else
        parse_root(&cx, root, f);
    sort_diag(diag, n0, file);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(in);
    if (cx.nomem)
        rc = IW_E_NOMEM;
    else if (cx.n_err > 0)
        rc = IW_E_CONFIG;
    if (rc != IW_OK) {
        ts_file_free(f);
        return rc;
    }
    *out = f;
    return IW_OK;
}

void ts_file_free(struct ts_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_cases; i++) {
        struct ts_case *tc = &f->cases[i];
        free(tc->name);
        for (size_t k = 0; k < tc->n_rules; k++)
            free(tc->rules[k]);
        free(tc->rules);
        free(tc->restarts);
        for (size_t k = 0; k < tc->n_samples; k++)
            free(tc->samples[k].series);
        free(tc->samples);
        for (size_t k = 0; k < tc->n_expects; k++) {
            struct ts_expect *e = &tc->expects[k];
            free(e->rule), free(e->source), free(e->site), free(e->device), free(e->metric);
            free(e->message), free(e->details);
        }
        free(tc->expects);
        for (size_t k = 0; k < tc->n_points; k++)
            free(tc->points[k].series);
        free(tc->points);
    }
    free(f->cases);
    free(f);
}

const char *ts_fmt_offset(int64_t ms, char *buf, size_t len)
{
    static const struct { int64_t ms; const char *u; } units[] = {
        { IW_MS_PER_DAY, "d" }, { IW_MS_PER_HOUR, "h" }, { IW_MS_PER_MIN, "m" }, { 1000, "s" },
        { 1, "ms" },
    };
    size_t o = 0;
    uint64_t v;

    if (ms == 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    if (ms < 0)
        o += (size_t)snprintf(buf, len, "-");
    v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    buf[o] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && o < len; i++) {
        uint64_t q = v / (uint64_t)units[i].ms;
        if (q == 0)
            continue;
        o += (size_t)snprintf(buf + o, len - o, "%llu%s", (unsigned long long)q, units[i].u);
        v -= q * (uint64_t)units[i].ms;
    }
    return buf;
}
