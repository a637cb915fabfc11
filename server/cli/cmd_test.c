/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `islewatch test FILE TESTS.yaml` (SPEC §6): rule unit tests in the spirit
 * of `promtool test rules`. Each test feeds its samples through the rules of
 * FILE (one engine, src/replay.c, simulated wall clock) and compares the
 * alerts raised with the ones it expects: the lists must be equal. Both are
 * put in one canonical order (time, rule, site, device, status, severity)
 * and aligned by a longest common subsequence, so a mismatch prints as a
 * unified diff of one short line per alert.
 *
 * Exit status: 0 every test passed, 1 some failed, 2 usage error or a bad
 * FILE or TESTS.yaml (diagnostics FILE:LINE:COLUMN: error: ...), 3 out of
 * memory.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/cli.h"
#include "islewatch/clock.h"
#include "islewatch/config.h"
#include "islewatch/log.h"
#include "islewatch/replay.h"
#include "cli_int.h"
#include "test_spec.h"

#define CONTEXT 3                        /* unchanged lines around a change */
#define MAX_LCS_CELLS (32u << 20)        /* beyond this the diff is not aligned */

static void test_usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch test [--verbose] [--run TEXT] FILE TESTS.yaml\n"
            "\n"
            "Rule unit tests: feed the samples each test in TESTS.yaml lists through the\n"
            "rules of the config FILE and compare the alerts raised with the ones expected.\n"
            "The format of TESTS.yaml is documented in config/tests.example.yaml.\n"
            "\n"
            "  -v, --verbose       also name every test that passes, and show the rules' INFO log\n"
            "  -r, --run TEXT      run only the tests whose name contains TEXT\n"
            "\n"
            "A failing test prints a diff, one alert per line: '-' expected but not\n"
            "raised, '+' raised but not expected; times are offsets from the test's start,\n"
            "and a source an expectation leaves out shows as * (it is not compared).\n"
            "Exit status: 0 all passed, 1 a test failed, 2 usage error or an invalid\n"
            "FILE or TESTS.yaml (FILE:LINE:COLUMN: error: ...), 3 out of memory.\n"
            "\n"
            "Example:\n"
            "  $ islewatch test config/islewatch.yaml config/tests.example.yaml\n"
            "  12 tests, 12 passed\n");
}

/* ==========================================================================
 * Running one test
 * ======================================================================== */

struct feed_item {
    struct iw_rsample s;
    size_t order;
    char *buf;                  /* the split series name */
};

static int cmp_feed(const void *pa, const void *pb)
{
    const struct feed_item *a = pa, *b = pb;
    int c;

    if (a->s.recv_ms != b->s.recv_ms)
        return a->s.recv_ms < b->s.recv_ms ? -1 : 1;
    if (a->s.ts != b->s.ts)
        return a->s.ts < b->s.ts ? -1 : 1;
    if ((c = strcmp(a->s.source, b->s.source)) != 0 || (c = strcmp(a->s.site, b->s.site)) != 0
        || (c = strcmp(a->s.device, b->s.device)) != 0)
        return c;
    return (a->order > b->order) - (a->order < b->order);
}

/* A message of no sample (alive) is one by itself, as in the daemon. */
static bool same_message(const struct iw_rsample *a, const struct iw_rsample *b)
{
    return !a->alive && !b->alive && a->recv_ms == b->recv_ms && a->ts == b->ts
           && strcmp(a->source, b->source) == 0 && strcmp(a->site, b->site) == 0
           && strcmp(a->device, b->device) == 0;
}

/*
 * Feed the test's samples in order of receipt, a message being the samples of
 * one device with the same time; restart where asked; end at `until` (default:
 * the last receipt). Returns the end of the simulated clock, or INT64_MIN when
 * out of memory.
 */
static int64_t run_case(const struct ts_case *tc, struct iw_replay *r)
{
    struct feed_item *it = calloc(tc->n_samples ? tc->n_samples : 1, sizeof(*it));
    struct iw_rsample *rs = calloc(tc->n_samples ? tc->n_samples : 1, sizeof(*rs));
    int64_t end = tc->start;
    size_t nr = 0;
    bool ok = it != NULL && rs != NULL;

    for (size_t i = 0; ok && i < tc->n_samples; i++) {
        const struct ts_sample *s = &tc->samples[i];
        size_t len = strlen(s->series) + 1;
        it[i].buf = malloc(len);
        if (it[i].buf == NULL
            || (s->device ? iw_replay_split_device(s->series, it[i].buf, len, &it[i].s)
                          : iw_replay_split(s->series, it[i].buf, len, &it[i].s)) != IW_OK) {
            ok = false;
            break;
        }
        it[i].s.ts = s->ts;
        it[i].s.recv_ms = s->recv;
        it[i].s.value = s->value;
        it[i].s.flag = s->flag;
        it[i].s.is_event = s->is_event;
        it[i].order = s->order;
    }
    if (ok) {
        iw_sort(it, tc->n_samples, sizeof(*it), cmp_feed);
        for (size_t i = 0; i < tc->n_samples; i++)
            rs[i] = it[i].s;
        for (size_t i = 0; i < tc->n_samples;) {
            size_t j = i + 1;
            while (j < tc->n_samples && same_message(&rs[i], &rs[j]))
                j++;
            while (ok && nr < tc->n_restarts && tc->restarts[nr] <= rs[i].recv_ms)
                ok = iw_replay_restart(r, tc->restarts[nr++]) == IW_OK;
            iw_replay_feed(r, &rs[i], j - i);
            if (rs[i].recv_ms > end)
                end = rs[i].recv_ms;
            i = j;
        }
        while (ok && nr < tc->n_restarts) {
            if (tc->restarts[nr] > end)
                end = tc->restarts[nr];
            ok = iw_replay_restart(r, tc->restarts[nr++]) == IW_OK;
        }
        if (tc->has_until && tc->until > end)
            end = tc->until;
        iw_replay_advance(r, end);
        iw_replay_finish(r);
    }
    for (size_t i = 0; it != NULL && i < tc->n_samples; i++)
        free(it[i].buf);
    free(it);
    free(rs);
    return ok && iw_replay_status(r) == IW_OK ? end : INT64_MIN;
}

/* ==========================================================================
 * Comparing
 * ======================================================================== */

static int strcmp0(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

static int cmp_got(const void *pa, const void *pb)
{
    const struct iw_alert *a = *(const struct iw_alert *const *)pa;
    const struct iw_alert *b = *(const struct iw_alert *const *)pb;
    int c;

    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if ((c = strcmp(a->rule, b->rule)) || (c = strcmp(a->site, b->site))
        || (c = strcmp(a->device, b->device)))
        return c;
    if (a->status != b->status)
        return a->status == IW_ALERT_FIRING ? -1 : 1;
    if (a->severity != b->severity)
        return (int)a->severity - (int)b->severity;
    if ((c = strcmp(a->source, b->source)))
        return c;
    /* Equal keys up to here are one instance at one time: the order does not show. */
    return strcmp0(a->metric, b->metric);
}

static int cmp_expect(const void *pa, const void *pb)
{
    const struct ts_expect *a = *(const struct ts_expect *const *)pa;
    const struct ts_expect *b = *(const struct ts_expect *const *)pb;
    int c;

    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    if ((c = strcmp(a->rule, b->rule)) || (c = strcmp(a->site, b->site))
        || (c = strcmp(a->device, b->device)))
        return c;
    if (a->status != b->status)
        return a->status == IW_ALERT_FIRING ? -1 : 1;
    if (a->severity != b->severity)
        return a->severity - b->severity;
    if ((c = strcmp0(a->source, b->source)) || (c = strcmp0(a->metric, b->metric)))
        return c;
    return (a->line > b->line) - (a->line < b->line);
}

static bool close_to(double want, double tol, double got)
{
    return fabs(got - want) <= tol || fabs(got - want) <= 1e-9 * fabs(want);
}

static bool matches(const struct ts_expect *e, const struct iw_alert *a)
{
    return e->at == a->ts && strcmp(e->rule, a->rule) == 0 && e->status == (int)a->status
           && e->severity == (int)a->severity && strcmp(e->site, a->site) == 0
           && strcmp(e->device, a->device) == 0
           && (e->source == NULL || strcmp(e->source, a->source) == 0)
           && (e->metric == NULL || (a->metric != NULL && strcmp(e->metric, a->metric) == 0))
           && (!e->has_value || (a->has_value && close_to(e->value, e->tol, a->value)))
           && (e->late < 0 || e->late == a->late)
           && (e->silenced < 0 || e->silenced == a->silenced)
           && (e->message == NULL || strstr(a->message ? a->message : "", e->message) != NULL
               || (a->message_zh != NULL && strstr(a->message_zh, e->message) != NULL))
           && (e->details == NULL || (a->details != NULL && strstr(a->details, e->details) != NULL));
}

/* ---- the canonical short forms --------------------------------------------- */

static void print_expect(char mark, const struct ts_expect *e, int64_t start)
{
    char at[48], num[40];

    printf("%c %-8s %-8s %s %s %s/%s/%s%s%s", mark, ts_fmt_offset(e->at - start, at, sizeof(at)),
           e->status == IW_ALERT_FIRING ? "firing" : "resolved", e->rule,
           iw_severity_name((enum iw_severity)e->severity), e->source ? e->source : "*", e->site,
           e->device, e->metric ? "/" : "", e->metric ? e->metric : "");
    if (e->has_value)
        printf(" value=%s", cli_num(e->value, num, sizeof(num)));
    if (e->late >= 0)
        printf(" late=%s", e->late ? "true" : "false");
    if (e->silenced >= 0)
        printf(" silenced=%s", e->silenced ? "true" : "false");
    if (e->message != NULL)
        printf(" message~\"%s\"", e->message);
    if (e->details != NULL)
        printf(" details~\"%s\"", e->details);
    putchar('\n');
}

static void print_got(char mark, const struct iw_alert *a, int64_t start, bool full)
{
    char at[48], num[40];

    printf("%c %-8s %-8s %s %s %s/%s/%s%s%s", mark, ts_fmt_offset(a->ts - start, at, sizeof(at)),
           iw_alert_status_name(a->status), a->rule, iw_severity_name(a->severity), a->source,
           a->site, a->device, a->metric ? "/" : "", a->metric ? a->metric : "");
    if (a->has_value)
        printf(" value=%s", cli_num(a->value, num, sizeof(num)));
    if (a->late)
        printf(" late=true");
    if (a->silenced)
        printf(" silenced=true");
    if (full && a->message != NULL)
        printf(" \"%s\"", a->message);
    putchar('\n');
}

/* ---- the diff --------------------------------------------------------------- */

enum op { OP_SAME, OP_DEL, OP_ADD };
struct edit {
    enum op op;
    size_t e, g;                /* indices into the sorted lists */
};

/* LCS alignment of expected (n) and got (m) under matches(); NULL when too large. */
static struct edit *align(const struct ts_expect *const *ex, size_t n, const struct iw_alert *const *got,
                          size_t m, size_t *n_out)
{
    uint32_t *dp;
    struct edit *ed;
    size_t w = m + 1, k = 0, i = 0, j = 0;

    if ((n + 1) * w > MAX_LCS_CELLS)
        return NULL;
    dp = calloc((n + 1) * w, sizeof(*dp));
    ed = calloc(n + m + 1, sizeof(*ed));
    if (dp == NULL || ed == NULL) {
        free(dp);
        free(ed);
        return NULL;
    }
    /* dp[i][j]: the LCS of ex[i..] and got[j..]. */
    for (size_t a = n + 1; a-- > 0;)
        for (size_t b = m + 1; b-- > 0;) {
            if (a == n || b == m)
                dp[a * w + b] = 0;
            else if (matches(ex[a], got[b]))
                dp[a * w + b] = dp[(a + 1) * w + b + 1] + 1;
            else
                dp[a * w + b] = dp[(a + 1) * w + b] > dp[a * w + b + 1] ? dp[(a + 1) * w + b]
                                                                         : dp[a * w + b + 1];
        }
    /* Where both a '-' and a '+' keep the alignment, the earlier alert goes
     * first, and at the same time the '-' (as diff(1) prints them). */
    while (i < n || j < m) {
        bool can_del = i < n && (j == m || dp[(i + 1) * w + j] >= dp[i * w + j + 1]);
        bool can_add = j < m && (i == n || dp[i * w + j + 1] >= dp[(i + 1) * w + j]);

        if (i < n && j < m && matches(ex[i], got[j]) && dp[i * w + j] == dp[(i + 1) * w + j + 1] + 1)
            ed[k++] = (struct edit){ OP_SAME, i++, j++ };
        else if (can_del && (!can_add || ex[i]->at <= got[j]->ts))
            ed[k++] = (struct edit){ OP_DEL, i++, j };
        else
            ed[k++] = (struct edit){ OP_ADD, i, j++ };
    }
    free(dp);
    *n_out = k;
    return ed;
}

/* Print the edits as hunks with CONTEXT unchanged lines around each change. */
static void print_diff(const struct edit *ed, size_t k, const struct ts_expect *const *ex,
                       const struct iw_alert *const *got, int64_t start)
{
    size_t last_printed = SIZE_MAX;

    for (size_t i = 0; i < k; i++) {
        bool near = false;
        for (size_t d = i >= CONTEXT ? i - CONTEXT : 0; d <= i + CONTEXT && d < k; d++)
            near = near || ed[d].op != OP_SAME;
        if (!near)
            continue;
        if (last_printed == SIZE_MAX || i != last_printed + 1)
            printf("  @@ alerts %zu.. @@\n", i + 1);
        last_printed = i;
        printf("  ");
        if (ed[i].op == OP_SAME)
            print_got(' ', got[ed[i].g], start, false);
        else if (ed[i].op == OP_DEL)
            print_expect('-', ex[ed[i].e], start);
        else
            print_got('+', got[ed[i].g], start, true);
    }
}

struct point_hit {
    bool found;
    double v;
    char flag;
};

static int point_cb(void *ctx, int64_t ts, double v, char flag)
{
    struct point_hit *h = ctx;
    (void)ts;
    h->found = true;
    h->v = v;
    h->flag = flag;
    return 1;
}

/* Check expect_series; print the mismatches; returns how many. */
static size_t check_points(const struct ts_case *tc, struct iw_replay *r, bool print)
{
    size_t bad = 0;
    char at[48], num[40];

    for (size_t i = 0; i < tc->n_points; i++) {
        const struct ts_point *p = &tc->points[i];
        struct point_hit h = { 0 };
        bool ok;

        if (iw_replay_read_points(r, p->series, p->at, p->at, point_cb, &h) != IW_OK)
            h.found = false;
        ok = p->absent ? !h.found
                       : h.found && close_to(p->value, p->tol, h.v)
                             && (p->valid < 0 || p->valid == (h.flag != 'I'));
        if (ok)
            continue;
        if (bad++ == 0 && print)
            printf("  @@ expect_series @@\n");
        if (!print)
            continue;
        ts_fmt_offset(p->at - tc->start, at, sizeof(at));
        if (p->absent)
            printf("  - %s at %s: no point\n", p->series, at);
        else
            printf("  - %s at %s = %s%s\n", p->series, at, cli_num(p->value, num, sizeof(num)),
                   p->valid == 0 ? " (invalid)" : "");
        if (h.found)
            printf("  + %s at %s = %s%s\n", p->series, at, cli_num(h.v, num, sizeof(num)),
                   h.flag == 'I' ? " (invalid)" : "");
        else
            printf("  + %s at %s: no point\n", p->series, at);
    }
    return bad;
}

/* Run and judge one test. 0 passed, 1 failed, 3 out of memory. */
static int judge(const struct iw_config *cfg, const char *tfile, const struct ts_case *tc, bool verbose)
{
    struct iw_replay_opts o = {
        .cfg = cfg, .start_ms = tc->start, .rules = (const char *const *)tc->rules,
        .n_rules = tc->n_rules, .no_inventory = !tc->inventory, .keep_inputs = true,
    };
    struct iw_replay *r = NULL;
    const struct iw_alert **got = NULL;
    const struct ts_expect **ex = NULL;
    struct edit *ed = NULL;
    size_t n_got, k = 0, changes = 0, bad_points;
    int64_t end, last_missing = INT64_MIN;
    char b1[48], b2[48];
    int rc = 3;

    if (iw_replay_new(&o, &r) != IW_OK)
        return 3;
    end = run_case(tc, r);
    if (end == INT64_MIN)
        goto out;
    n_got = iw_replay_alert_count(r);
    got = calloc(n_got ? n_got : 1, sizeof(*got));
    ex = calloc(tc->n_expects ? tc->n_expects : 1, sizeof(*ex));
    if (got == NULL || ex == NULL)
        goto out;
    for (size_t i = 0; i < n_got; i++)
        got[i] = iw_replay_alert(r, i);
    for (size_t i = 0; i < tc->n_expects; i++)
        ex[i] = &tc->expects[i];
    iw_sort(got, n_got, sizeof(*got), cmp_got);
    iw_sort(ex, tc->n_expects, sizeof(*ex), cmp_expect);
    ed = align(ex, tc->n_expects, got, n_got, &k);
    if (ed != NULL) {
        for (size_t i = 0; i < k; i++)
            if (ed[i].op != OP_SAME) {
                changes++;
                if (ed[i].op == OP_DEL && ex[ed[i].e]->at > last_missing)
                    last_missing = ex[ed[i].e]->at;
            }
    } else {
        changes = 1;               /* too large to align: print both lists */
    }
    bad_points = check_points(tc, r, false);
    rc = changes == 0 && bad_points == 0 ? 0 : 1;
    if (rc == 0) {
        if (verbose)
            printf("ok   %s\n", tc->name);
        goto out;
    }
    printf("FAIL %s (%s:%zu:%zu)\n", tc->name, tfile, tc->line, tc->col);
    printf("  --- expected\n  +++ got\n");
    if (changes > 0 && ed != NULL) {
        print_diff(ed, k, ex, got, tc->start);
    } else if (changes > 0) {
        printf("  @@ alerts: %zu expected, %zu raised (too many to align) @@\n", tc->n_expects, n_got);
        for (size_t i = 0; i < tc->n_expects; i++) {
            printf("  ");
            print_expect('-', ex[i], tc->start);
        }
        for (size_t i = 0; i < n_got; i++) {
            printf("  ");
            print_got('+', got[i], tc->start, true);
        }
    }
    check_points(tc, r, true);
    if (last_missing > end)
        printf("  (the simulated clock stopped at %s, before %s; set until: to run it further)\n",
               ts_fmt_offset(end - tc->start, b1, sizeof(b1)),
               ts_fmt_offset(last_missing - tc->start, b2, sizeof(b2)));
out:
    free(ed);
    free(got);
    free(ex);
    iw_replay_free(r);
    return rc;
}

/* ==========================================================================
 * The command
 * ======================================================================== */

static const struct option test_opts[] = {
    { "verbose", no_argument, NULL, 'v' },
    { "run", required_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

int iw_cmd_test(int argc, char **argv)
{
    struct iw_config *cfg = NULL;
    struct ts_file *tf = NULL;
    struct iw_diag diag = { 0 };
    const char *run = NULL;
    bool verbose = false;
    size_t passed = 0, failed = 0;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vr:h", test_opts, NULL)) != -1) {
        switch (c) {
        case 'v': verbose = true; break;
        case 'r': run = optarg; break;
        case 'h': test_usage(stdout); return 0;
        default:
            fprintf(stderr, "islewatch test: try 'islewatch test --help'\n");
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "islewatch test: expected FILE and TESTS.yaml (try 'islewatch test --help')\n");
        return 2;
    }
    /* The rules' INFO lines carry the wall clock, not the test's: only with -v. */
    iw_log_set_level(verbose ? IW_LOG_LEVEL_INFO : IW_LOG_LEVEL_WARN);
    rc = iw_config_load(argv[optind], &cfg, &diag);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.lines[i]);
    if (rc != IW_OK) {
        if (diag.n == 0)
            fprintf(stderr, "islewatch test: %s: %s\n", argv[optind], iw_strerror(rc));
        if (rc == IW_E_CONFIG)
            fprintf(stderr, "islewatch test: %s is not a valid config; fix it first "
                    "(islewatch check %s)\n", argv[optind], argv[optind]);
        iw_diag_fini(&diag);
        return 2;
    }
    iw_diag_fini(&diag);
    rc = ts_file_load(argv[optind + 1], cfg, &tf, &diag);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.lines[i]);
    iw_diag_fini(&diag);
    if (rc != IW_OK) {
        if (rc == IW_E_CONFIG)
            fprintf(stderr, "islewatch test: %s has errors; no test was run\n", argv[optind + 1]);
        else if (rc == IW_E_NOMEM)
            fprintf(stderr, "islewatch test: out of memory reading %s\n", argv[optind + 1]);
        iw_config_free(cfg);
        return rc == IW_E_NOMEM ? 3 : 2;
    }
    for (size_t i = 0; i < tf->n_cases; i++) {
        if (run != NULL && strstr(tf->cases[i].name, run) == NULL)
            continue;
        rc = judge(cfg, argv[optind + 1], &tf->cases[i], verbose);
        if (rc == 3) {
            fprintf(stderr, "islewatch test: out of memory running test \"%s\"\n", tf->cases[i].name);
            ts_file_free(tf);
            iw_config_free(cfg);
            return 3;
        }
        if (rc == 0)
            passed++;
        else
            failed++;
    }
    if (run != NULL && passed + failed == 0) {
        fprintf(stderr, "islewatch test: no test name in %s contains \"%s\"\n", argv[optind + 1], run);
        ts_file_free(tf);
        iw_config_free(cfg);
        return 2;
    }
    if (failed == 0)
        printf("%zu test%s, %zu passed\n", passed, passed == 1 ? "" : "s", passed);
    else
        printf("%zu test%s, %zu passed, %zu failed\n", passed + failed,
               passed + failed == 1 ? "" : "s", passed, failed);
    ts_file_free(tf);
    iw_config_free(cfg);
    return failed == 0 ? 0 : 1;
}
