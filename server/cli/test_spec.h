/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TESTS.yaml of `islewatch test` as loaded (format documented in
 * config/tests.example.yaml). test_spec.c parses it with libyaml and checks
 * it against the rule file's config (series sources, rule names); cmd_test.c
 * runs it. Times are absolute epoch milliseconds once loaded.
 */
#ifndef ISLEWATCH_CLI_TEST_SPEC_H
#define ISLEWATCH_CLI_TEST_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/config.h"
#include "islewatch/err.h"

#define TS_DEFAULT_START 1767225600000LL     /* 2026-01-01T00:00:00Z */
#define TS_DEFAULT_INTERVAL 60000LL          /* 1m */

/* One input sample. */
struct ts_sample {
    char   *series;             /* <source>/<site>/<device>/<metric> */
    int64_t ts;                 /* sample time */
    int64_t recv;               /* arrival (the simulated wall clock); = ts unless `received:` */
    double  value;              /* events: 1 start, 0 stop */
    char    flag;               /* 0 or an HJ 212 letter */
    bool    is_event;
    bool    device;             /* series is <source>/<site>/<device>: a message of no
                                 * sample (only labels, or only flag) */
    size_t  order;              /* position in the file, the last sort key */
};

/* One expected alert. Optional fields: NULL / has_ / -1 mean "not compared". */
struct ts_expect {
    int64_t at;                 /* the alert's ts */
    char   *rule;
    int     status;             /* enum iw_alert_status */
    int     severity;           /* enum iw_severity */
    char   *source;             /* optional */
    char   *site, *device;
    char   *metric;             /* optional */
    bool    has_value;
    double  value;
    double  tol;                /* half a unit of the last decimal written; 1e-9 for an integer */
    int     late;               /* -1, 0 or 1 */
    int     silenced;           /* -1, 0 or 1 */
    char   *message;            /* substring of message or message_zh */
    char   *details;            /* substring of the details JSON */
    size_t  line, col;
};

/* One expected point of a derived series. */
struct ts_point {
    char   *series;
    int64_t at;
    bool    absent;             /* value `_`: there must be no point at `at` */
    double  value;
    double  tol;                /* as in ts_expect */
    int     valid;              /* -1 not compared, 0 invalid average, 1 valid */
    size_t  line, col;
};

struct ts_case {
    char   *name;
    size_t  line, col;
    int64_t start, interval;
    bool    has_until;
    int64_t until;
    char  **rules;              /* rule-name globs; NULL: every rule */
    size_t  n_rules;
    bool    inventory;          /* default true */
    int64_t *restarts;          /* simulated daemon restarts, ascending */
    size_t  n_restarts;
    struct ts_sample *samples;
    size_t  n_samples;
    struct ts_expect *expects;
    size_t  n_expects;
    struct ts_point *points;
    size_t  n_points;
};

struct ts_file {
    struct ts_case *cases;
    size_t n_cases;
};

/*
 * Load TESTS.yaml (`file`) against cfg. On IW_OK *out is owned by the caller
 * (ts_file_free). On IW_E_CONFIG diag holds every problem as
 * "FILE:LINE:COLUMN: error: MESSAGE"; IW_E_IO when it cannot be read;
 * IW_E_NOMEM.
 */
int ts_file_load(const char *file, const struct iw_config *cfg, struct ts_file **out,
                 struct iw_diag *diag);
void ts_file_free(struct ts_file *f);

/* "1h5m", "30s", "0s", "-2m", "1m0.5s"... for offsets in messages. */
const char *ts_fmt_offset(int64_t ms, char *buf, size_t len);

#endif /* ISLEWATCH_CLI_TEST_SPEC_H */
