/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TESTS.yaml, the `input:` of a test: compact series ("0.5 1.6x3 _ 0.9"),
 * series with their own start and interval, and single samples and events.
 * Every sample is checked here (series name, source, value, flag) so the
 * runner only sorts and feeds them.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/payload.h"
#include "test_spec_int.h"

/* ---- numbers -------------------------------------------------------------------- */

/* Length of a decimal number at s ([+-]digits[.digits][e[+-]digits]), 0 if none. */
static size_t num_len(const char *s, bool sign)
{
    size_t i = 0, digits = 0;

    if (sign && (s[i] == '+' || s[i] == '-'))
        i++;
    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return 0;
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (!isdigit((unsigned char)s[j]))
            return i;
        while (isdigit((unsigned char)s[j]))
            j++;
        i = j;
    }
    return i;
}

static double num_at(const char *s, size_t len)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 63 ? len : 63), s);
    return strtod(buf, NULL);
}

bool ts_parse_num(const char *s, double *out)
{
    size_t n = s != NULL ? num_len(s, true) : 0;
    if (n == 0 || s[n] != '\0')
        return false;
    *out = num_at(s, n);
    return true;
}

static bool add_sample(struct ts_cx *cx, struct ts_case *tc, size_t *cap, const struct ts_sample *s)
{
    struct ts_sample *p;

    if (tc->n_samples >= MAX_SAMPLES_PER_TEST)
        return false;
    p = iw_grow(tc->samples, cap, tc->n_samples, sizeof(*p));
    if (p == NULL) {
        cx->nomem = true;
        return false;
    }
    tc->samples = p;
    p[tc->n_samples] = *s;
    p[tc->n_samples].order = tc->n_samples;
    p[tc->n_samples].series = ts_dup(cx, s->series);
    tc->n_samples++;
    return true;
}

/* A problem with one token of a compact sequence: point at the token when the
 * scalar is on one line (plus the opening quote), else at the scalar. */
static void tok_err(struct ts_cx *cx, yaml_node_t *n, const char *series, const char *s,
                    const char *tok, size_t tl, const char *fmt, ...) IW_PRINTF(7, 8);
static void tok_err(struct ts_cx *cx, yaml_node_t *n, const char *series, const char *s,
                    const char *tok, size_t tl, const char *fmt, ...)
{
    char msg[512];
    size_t col = n->start_mark.column + 1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n->start_mark.line == n->end_mark.line) {
        bool quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE
                      || n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        col += (size_t)quoted + (size_t)(tok - s);
    }
    ts_err_at(cx, n->start_mark.line + 1, col, "series \"%s\": \"%.*s\": %s", series, (int)tl, tok, msg);
}

/*
 * A compact sequence, one token per interval:
 *   1.5    one value        _     no sample     1.5x3   three times
 *   1+0.5x4   four values 1, 1.5, 2, 2.5 (also 5-1x3)
 *   1.5:D  flagged D (1.5x3:D three flagged values)
 *   start / stop   events (event sources; 1 and 0 also work)
 */
static void parse_values(struct ts_cx *cx, yaml_node_t *n, const char *series, bool is_event,
                         int64_t at0, int64_t interval, struct ts_case *tc, size_t *cap)
{
    const char *s = ts_scalar(n), *p = s;
    int64_t slot = 0;

    for (;;) {
        const char *tok;
        size_t tl, i = 0, nl;
        double base = 0, step = 0;
        long long count = 1;
        bool missing = false;
        char flag = 0;

        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            return;
        tok = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        tl = (size_t)(p - tok);
        if (tok[0] == '_') {
            missing = true;
            i = 1;
        } else if (strncmp(tok, "start", 5) == 0 || strncmp(tok, "stop", 4) == 0) {
            if (!is_event) {
                tok_err(cx, n, series, s, tok, tl, "start and stop are for event sources "
                        "(format: event); write a number");
                return;
            }
            base = tok[2] == 'a';           /* stArt / stOp */
            i = base != 0 ? 5 : 4;
        } else if ((nl = num_len(tok, true)) > 0) {
            base = num_at(tok, nl);
            i = nl;
            if ((tok[i] == '+' || tok[i] == '-') && (nl = num_len(tok + i + 1, false)) > 0) {
                step = num_at(tok + i + 1, nl) * (tok[i] == '-' ? -1 : 1);
                i += 1 + nl;
            }
            if (is_event && base != 0 && base != 1) {
                tok_err(cx, n, series, s, tok, tl, "an event is start (1) or stop (0)");
                return;
            }
        } else {
            tok_err(cx, n, series, s, tok, tl, "not a value; write a number, _ (no sample), start "
                    "or stop, optionally xN (N times) and :F (an HJ 212 flag), e.g. 1.6x3:D");
            return;
        }
        while (i < tl) {
            if (tok[i] == 'x' && count == 1 && isdigit((unsigned char)tok[i + 1])) {
                char *end;
                count = strtoll(tok + i + 1, &end, 10);
                if (count < 1 || count > (long long)MAX_SAMPLES_PER_TEST) {
                    tok_err(cx, n, series, s, tok, tl, "the count after x must be 1..%u",
                            MAX_SAMPLES_PER_TEST);
                    return;
                }
                i = (size_t)(end - tok);
            } else if (tok[i] == ':' && flag == 0 && !missing && isupper((unsigned char)tok[i + 1])) {
                if (!iw_flag_valid(tok[i + 1])) {
                    tok_err(cx, n, series, s, tok, tl, "flag %c is not an HJ 212 flag (N M C D F "
                            "T B S); the daemon rejects it as bad_flag", tok[i + 1]);
                    return;
                }
                flag = tok[i + 1];
                i += 2;
            } else {
                tok_err(cx, n, series, s, tok, tl, "unexpected \"%.*s\" (write e.g. 1.6, 1.6x3, "
                        "1+0.1x5, 1.6:D, _x2, start)", (int)(tl - i), tok + i);
                return;
            }
        }
        if (step != 0 && count == 1) {
            tok_err(cx, n, series, s, tok, tl, "a step (A+B) needs a count: A+BxN gives N values");
            return;
        }
        for (long long k = 0; k < count; k++, slot++) {
            struct ts_sample smp = { .series = (char *)series, .value = base + step * (double)k,
                                     .flag = flag, .is_event = is_event };
            if (missing)
                continue;
            if (!isfinite(smp.value)) {
                tok_err(cx, n, series, s, tok, tl, "not a finite number (the daemon rejects such "
                        "a sample as non_finite)");
                return;
            }
            smp.ts = smp.recv = at0 + slot * interval;
            if (!add_sample(cx, tc, cap, &smp)) {
                if (!cx->nomem)
                    tok_err(cx, n, series, s, tok, tl, "more than %u samples in one test",
                            MAX_SAMPLES_PER_TEST);
                return;
            }
        }
    }
}

/* ---- input ------------------------------------------------------------------------ */

static const char *const explicit_keys[] = { "at", "series", "value", "state", "flag",
                                             "received", NULL };
static const char *const values_keys[] = { "series", "values", "at", "interval", NULL };

static void parse_explicit(struct ts_cx *cx, yaml_node_t *n, struct ts_case *tc, size_t *cap)
{
    const char *series = ts_get_str(cx, n, "series", true, "input sample");
    const char *vs = ts_get_str(cx, n, "value", false, "input sample");
    const char *st = ts_get_str(cx, n, "state", false, "input sample");
    const char *fl = ts_get_str(cx, n, "flag", false, "input sample");
    yaml_node_t *at = ts_get(cx, n, "at"), *rc = ts_get(cx, n, "received");
    struct ts_sample smp = { 0 };
    bool ok = ts_check_keys(cx, n, "input sample", explicit_keys);

    if (at == NULL) {
        TS_ERR(cx, n, "input sample: missing \"at\" (the sample time, e.g. at: 5m)");
        return;
    }
    if (series == NULL || !ok
        || !ts_check_series(cx, ts_get(cx, n, "series"), series, &smp.is_event, &smp.device)
        || !ts_parse_time(cx, at, "at", tc->start, &smp.ts))
        return;
    smp.recv = smp.ts;
    if (rc != NULL && !ts_parse_time(cx, rc, "received", tc->start, &smp.recv))
        return;
    if (smp.device && (vs != NULL || st != NULL)) {
        TS_ERR(cx, ts_get(cx, n, vs != NULL ? "value" : "state"), "input sample: %s names a "
            "device: a message with no sample has no value or state (name the metric, e.g. "
            "%s/ph, for a sample)", series, series);
        return;
    }
    if (!smp.device && (vs == NULL) == (st == NULL)) {
        TS_ERR(cx, n, "input sample: give exactly one of \"value\" (a number) and \"state\" "
            "(start|stop, for event sources)");
        return;
    }
    if (st != NULL) {
        if (!smp.is_event) {
            TS_ERR(cx, ts_get(cx, n, "state"), "input sample: \"state\" is for event sources "
                "(format: event); %s is not one", series);
            return;
        }
        if (strcmp(st, "start") != 0 && strcmp(st, "stop") != 0) {
            TS_ERR(cx, ts_get(cx, n, "state"), "input sample: state \"%s\": use start or stop", st);
            return;
        }
        smp.value = strcmp(st, "start") == 0;
    } else if (smp.device) {
        smp.is_event = false;           /* the daemon gives no event without its type */
    } else if (!ts_parse_num(vs, &smp.value)) {
        TS_ERR(cx, ts_get(cx, n, "value"), "input sample: value \"%s\" is not a number", vs);
        return;
    } else if (!isfinite(smp.value)) {
        TS_ERR(cx, ts_get(cx, n, "value"), "input sample: value \"%s\" is not a finite number "
               "(the daemon rejects such a sample as non_finite)", vs);
        return;
    }
    if (fl != NULL) {
        if (strlen(fl) != 1 || !iw_flag_valid(fl[0])) {
            TS_ERR(cx, ts_get(cx, n, "flag"), "input sample: flag \"%s\": one HJ 212 letter "
                "(N M C D F T B S)", fl);
            return;
        }
        smp.flag = fl[0];
    }
    smp.series = (char *)series;
    add_sample(cx, tc, cap, &smp);
}

static void parse_sequence_item(struct ts_cx *cx, yaml_node_t *n, struct ts_case *tc, size_t *cap)
{
    const char *series = ts_get_str(cx, n, "series", true, "input series");
    yaml_node_t *vals = ts_get(cx, n, "values"), *at = ts_get(cx, n, "at"), *iv = ts_get(cx, n, "interval");
    int64_t at0 = tc->start, interval = tc->interval;
    bool is_event = false;

    if (!ts_check_keys(cx, n, "input series", values_keys) || series == NULL)
        return;
    if (!ts_check_series(cx, ts_get(cx, n, "series"), series, &is_event, NULL))
        return;
    if (at != NULL && !ts_parse_time(cx, at, "at", tc->start, &at0))
        return;
    if (iv != NULL && (ts_scalar(iv) == NULL || iw_duration_parse(ts_scalar(iv), &interval) != IW_OK
                       || interval <= 0)) {
        TS_ERR(cx, iv, "input series: interval: a duration above 0, e.g. 1m or 30s");
        return;
    }
    if (ts_scalar(vals) == NULL) {
        TS_ERR(cx, vals ? vals : n, "input series: \"values\" must be a string such as \"0.5 1.6x3 _ 0.9\"");
        return;
    }
    parse_values(cx, vals, series, is_event, at0, interval, tc, cap);
}

/* `SERIES: "values"` pairs of a mapping (all of input, or one list item). */
static void parse_pairs(struct ts_cx *cx, yaml_node_t *n, struct ts_case *tc, size_t *cap)
{
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ts_node(cx, p->key), *v = ts_node(cx, p->value);
        bool is_event = false;

        if (ts_scalar(k) == NULL || !ts_check_series(cx, k, ts_scalar(k), &is_event, NULL))
            continue;
        if (ts_scalar(v) == NULL) {
            TS_ERR(cx, v, "input: series \"%s\": values must be a string such as \"0.5 1.6x3 _ 0.9\"",
                ts_scalar(k));
            continue;
        }
        parse_values(cx, v, ts_scalar(k), is_event, tc->start, tc->interval, tc, cap);
    }
}

void ts_parse_input(struct ts_cx *cx, yaml_node_t *n, struct ts_case *tc)
{
    size_t cap = 0;

    if (n->type == YAML_MAPPING_NODE) {
        parse_pairs(cx, n, tc, &cap);
        return;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        TS_ERR(cx, n, "input: a list of series (\"water/dongtan/w01/nh3_n\": \"0.5 1.6x3\") and samples "
            "({at: 5m, series: ..., value: 1.2})");
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *m = ts_node(cx, *it);
        if (m->type != YAML_MAPPING_NODE) {
            TS_ERR(cx, m, "input: each item is \"SERIES\": \"VALUES\", {series, values, at?, interval?} "
                "or {at, series, value|state, flag?, received?}");
        } else if (ts_get(cx, m, "values") != NULL) {
            parse_sequence_item(cx, m, tc, &cap);
        } else if (ts_get(cx, m, "series") != NULL || ts_get(cx, m, "at") != NULL) {
            parse_explicit(cx, m, tc, &cap);
        } else {
            parse_pairs(cx, m, tc, &cap);
        }
    }
}
