/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TESTS.yaml loading: what test_spec.c (the file, tests, expectations) and
 * test_spec_input.c (the input samples) share. CLI-internal.
 */
#ifndef ISLEWATCH_CLI_TEST_SPEC_INT_H
#define ISLEWATCH_CLI_TEST_SPEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "islewatch/compiler.h"
#include "test_spec.h"

#define MAX_SAMPLES_PER_TEST 5000000u    /* "1x99999999" is a typo, not a test */

struct ts_cx {
    const char *file;
    const struct iw_config *cfg;
    yaml_document_t *doc;
    struct iw_diag *diag;
    size_t n_err;
    bool nomem;
};

/* Record "FILE:LINE:COLUMN: error: MESSAGE" (1-based). */
void ts_err_at(struct ts_cx *cx, size_t line, size_t col, const char *fmt, ...) IW_PRINTF(4, 5);
#define TS_ERR(cx, n, ...) ts_err_at((cx), (n)->start_mark.line + 1, (n)->start_mark.column + 1, __VA_ARGS__)

yaml_node_t *ts_node(struct ts_cx *cx, int idx);
const char *ts_scalar(const yaml_node_t *n);          /* NULL unless a scalar */
char *ts_dup(struct ts_cx *cx, const char *s);        /* strdup; NULL sets cx->nomem */
/* Report the keys of mapping n not in allowed (NULL-terminated), with a hint. */
bool ts_check_keys(struct ts_cx *cx, yaml_node_t *n, const char *what, const char *const *allowed);
yaml_node_t *ts_get(struct ts_cx *cx, yaml_node_t *map, const char *key);
/* A scalar value of map, or NULL (reported when required, or when not a scalar). */
const char *ts_get_str(struct ts_cx *cx, yaml_node_t *map, const char *key, bool required,
                       const char *what);
/* An offset from start (0, 5m, 1h30m) or an RFC 3339 time; reported when neither. */
bool ts_parse_time(struct ts_cx *cx, yaml_node_t *n, const char *key, int64_t start, int64_t *out);
/* A <source>/<site>/<device>/<metric> name whose source cfg declares; sets *is_event. */
/* device: NULL when series must name a metric; else it may name a device
 * (3 levels), and *device says which it does. */
bool ts_check_series(struct ts_cx *cx, yaml_node_t *n, const char *series, bool *is_event,
                     bool *device);
/* A whole decimal number (no hex, inf or nan). */
bool ts_parse_num(const char *s, double *out);
/* The `input:` of a test (test_spec_input.c). */
void ts_parse_input(struct ts_cx *cx, yaml_node_t *n, struct ts_case *tc);

#endif
