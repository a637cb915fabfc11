/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `islewatch test` and `islewatch backtest`, run as the built binary
 * ($IW_BUILD_DIR/islewatch) from tests/data (ctest's working directory).
 * test: fixture rule and test files in tests/data/rules_test/, exit codes,
 * the diff of a failing test and the FILE:LINE:COLUMN errors of a bad one;
 * and the documented example config/tests.example.yaml against the default
 * config/islewatch.yaml. backtest: a store written here with iw_store_*,
 * then the command's table, csv and json output on it; and data recorded by
 * a real daemon (mosquitto on a loopback port), where the backtest must raise
 * the alerts the daemon raised.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/store.h"
#include "it.h"

#define FIX "rules_test/"

/* Run `islewatch ARGS 2>&1`; returns the exit status, *out the output. */
static int run_cli(char **out, const char *args)
{
    return it_run(out, "'%s' %s 2>&1", it_bin("islewatch"), args);
}

static void expect_contains(const char *out, const char *needle)
{
    cr_expect(out != NULL && strstr(out, needle) != NULL, "output lacks \"%s\":\n%s", needle,
              out ? out : "(none)");
}

/* `islewatch test rules.yaml FILE` refuses FILE with exactly the lines want, exit 2. */
static void expect_tests_file_errors(const char *file, const char *want)
{
    char *out = NULL;
    char args[256];
    snprintf(args, sizeof(args), "test " FIX "rules.yaml " FIX "%s", file);
    int rc = run_cli(&out, args);
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect_str_eq(out, want);
    free(out);
}

TestSuite(cli_test, .timeout = 60);

Test(cli_test, passing_tests_print_the_count_and_exit_0)
{
    char *out = NULL;
    int rc = run_cli(&out, "test " FIX "rules.yaml " FIX "pass.yaml");
    cr_expect_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_str_eq(out, "4 tests, 4 passed\n");
    free(out);
}

Test(cli_test, a_mismatch_prints_a_diff_and_exits_1)
{
    char *out = NULL;
    int rc = run_cli(&out, "test " FIX "rules.yaml " FIX "fail.yaml");
    static const char *want =
        "FAIL wrong time and a missed resolve (" FIX "fail.yaml:8:3)\n"
        "  --- expected\n"
        "  +++ got\n"
        "  @@ alerts 1.. @@\n"
        "    2m       firing   ph-high major water/lake/w1/ph value=9.5\n"
        "  - 3m       resolved ph-high major */lake/w1\n"
        "  + 4m       resolved ph-high major water/lake/w1/ph value=8 \"lake/w1 pH 8 above 9\"\n"
        "FAIL an alert nobody expected (" FIX "fail.yaml:16:3)\n"
        "  --- expected\n"
        "  +++ got\n"
        "  @@ alerts 1.. @@\n";
    cr_expect_eq(rc, 1, "exit %d", rc);
    cr_assert_not_null(out);
    cr_expect_eq(strncmp(out, want, strlen(want)), 0, "got:\n%s\nwant (prefix):\n%s", out, want);
    expect_contains(out, "  + 0s       firing   fault info water/lake/w2/ph ");
    expect_contains(out, "3 tests, 1 passed, 2 failed\n");
    cr_expect_null(strstr(out, "FAIL passes"), "the passing test is not listed");
    free(out);
}

Test(cli_test, verbose_names_passing_tests_and_run_selects)
{
    char *out = NULL;
    int rc = run_cli(&out, "test --verbose --run tamper " FIX "rules.yaml " FIX "pass.yaml");
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(out, "ok   tamper start, then auto_resolve\n1 test, 1 passed\n");
    free(out);
}

/* "Left out (or []): no alert at all": YAML's null (~, null) is left out too,
 * not "expect: a list". */
Test(cli_test, a_null_expect_means_no_alert)
{
    char *out = NULL;
    int rc = run_cli(&out, "test " FIX "rules.yaml " FIX "null_expect.yaml");
    cr_expect_eq(rc, 1, "exit %d:\n%s", rc, out);
    expect_contains(out, "FAIL ph-high fires, but expect says none (" FIX "null_expect.yaml:8:3)\n");
    expect_contains(out, "\n  + 2m       firing   ph-high major water/lake/w1/ph value=9.5");
    expect_contains(out, "2 tests, 1 passed, 1 failed\n");
    cr_expect_null(strstr(out, "error"), "%s", out);
    free(out);
}

/* The clock stops at until: one before the input's end would be run past
 * silently (the test then sees alerts from after it), so it is an error. */
Test(cli_test, an_until_before_the_last_sample_is_an_error)
{
    expect_tests_file_errors("until_early.yaml",
        FIX "until_early.yaml:4:10: error: until 2m is before the last sample or restart (at 4m): "
            "the clock cannot stop before the input ends; drop until, or the input after it\n"
        "islewatch test: " FIX "until_early.yaml has errors; no test was run\n");
}

Test(cli_test, errors_in_the_tests_file_are_file_line_column_and_exit_2)
{
    static const char *want =
        FIX "bad.yaml:2:3: error: test: unknown key \"inptu\" (did you mean \"input\"?)\n"
        FIX "bad.yaml:5:28: error: series \"water/lake/w1/ph\": \"9.5q\": unexpected \"q\" "
            "(write e.g. 1.6, 1.6x3, 1+0.1x5, 1.6:D, _x2, start)\n"
        FIX "bad.yaml:6:13: error: at: \"1x\" is neither an offset from the test's start "
            "(0, 30s, 5m, 1h30m) nor an RFC 3339 time (2026-01-01T08:00:00+08:00)\n"
        FIX "bad.yaml:8:23: error: expect: no rule \"ph-hgih\" in " FIX "rules.yaml "
            "(did you mean \"ph-high\"?)\n"
        "islewatch test: " FIX "bad.yaml has errors; no test was run\n";
    expect_tests_file_errors("bad.yaml", want);
}

/* 1e999 reads as infinity: the daemon rejects such a sample (SPEC §1), so a test may not feed it. */
Test(cli_test, non_finite_values_are_errors_in_the_tests_file)
{
    static const char *want =
        FIX "non_finite.yaml:4:28: error: series \"water/lake/w1/ph\": \"1e999\": not a finite "
            "number (the daemon rejects such a sample as non_finite)\n"
        FIX "non_finite.yaml:7:49: error: input sample: value \"-1e400\" is not a finite number "
            "(the daemon rejects such a sample as non_finite)\n"
        "islewatch test: " FIX "non_finite.yaml has errors; no test was run\n";
    expect_tests_file_errors("non_finite.yaml", want);
}

/* A device-level input ({at, series: <source>/<site>/<device>, flag}) is a
 * message with no sample: a value there is an error, and so is a series of
 * two levels, whose message names both forms. */
Test(cli_test, a_device_input_takes_no_value_and_a_series_needs_three_or_four_levels)
{
    static const char *want =
        FIX "device_input.yaml:4:46: error: input sample: water/lake/w1 names a device: a "
            "message with no sample has no value or state (name the metric, e.g. "
            "water/lake/w1/ph, for a sample)\n"
        FIX "device_input.yaml:5:24: error: series \"water/lake\": write "
            "<source>/<site>/<device>/<metric>, e.g. water/dongtan/w01/nh3_n (for an event "
            "source the metric is the event type); or <source>/<site>/<device> for a message "
            "with no sample, e.g. {at: 5m, series: water/dongtan/w01, flag: D}\n"
        "islewatch test: " FIX "device_input.yaml has errors; no test was run\n";
    expect_tests_file_errors("device_input.yaml", want);
}

/* A letter that is no HJ 212 flag: the daemon rejects such a message as
 * bad_flag (SPEC §1). A key given twice: the second would silently win, as a
 * config's duplicate would (which `check` reports). */
Test(cli_test, bad_flags_and_duplicate_keys_are_errors_in_the_tests_file)
{
    static const char *want =
        FIX "bad_flag_dup.yaml:5:28: error: series \"water/lake/w1/ph\": \"7:Q\": flag Q is not "
            "an HJ 212 flag (N M C D F T B S); the daemon rejects it as bad_flag\n"
        FIX "bad_flag_dup.yaml:8:58: error: input sample: flag \"Q\": one HJ 212 letter "
            "(N M C D F T B S)\n"
        FIX "bad_flag_dup.yaml:10:3: error: test: duplicate key \"name\" (first at line 9)\n"
        FIX "bad_flag_dup.yaml:12:52: error: input sample: duplicate key \"at\" (first at line 12)\n"
        "islewatch test: " FIX "bad_flag_dup.yaml has errors; no test was run\n";
    expect_tests_file_errors("bad_flag_dup.yaml", want);
}

Test(cli_test, an_invalid_rule_file_prints_its_diagnostics_and_exits_2)
{
    char *out = NULL;
    int rc = run_cli(&out, "test " FIX "bad_config.yaml " FIX "pass.yaml");
    cr_expect_eq(rc, 2, "exit %d", rc);
    expect_contains(out, FIX "bad_config.yaml:5:5: error: rule \"broken\": unknown key \"abvoe\"");
    free(out);
}

Test(cli_test, a_directory_for_the_tests_file_says_so)
{
    char *out = NULL;
    int rc = run_cli(&out, "test " FIX "rules.yaml " FIX);
    cr_expect_eq(rc, 2, "exit %d", rc);
    expect_contains(out, FIX ":1:1: error: cannot read: is a directory; name the tests file");
    cr_expect(strstr(out, "YAML: input error") == NULL, "%s", out);
    free(out);
}

/* A tests file that is not there is named as FILE:1:1, as a config that is
 * not there is, with what to check; exit 2 as for a bad config. */
Test(cli_test, a_missing_tests_file_is_an_error_at_its_first_line)
{
    char *out = NULL;
    int rc = run_cli(&out, "test " FIX "rules.yaml " FIX "no-such-TESTS.yaml");
    cr_expect_eq(rc, 2, "exit %d", rc);
    expect_contains(out, FIX "no-such-TESTS.yaml:1:1: error: cannot open: No such file or "
                         "directory (check the path and its permissions)");
    free(out);
}

Test(cli_test, usage_errors_exit_2_and_help_exits_0)
{
    char *out = NULL;
    cr_expect_eq(run_cli(&out, "test " FIX "rules.yaml"), 2, "one argument is not enough");
    free(out);
    out = NULL;
    cr_expect_eq(run_cli(&out, "test --bogus a b"), 2);
    free(out);
    out = NULL;
    cr_expect_eq(run_cli(&out, "test --help"), 0);
    expect_contains(out, "Example:");
    expect_contains(out, "islewatch test config/islewatch.yaml config/tests.example.yaml");
    free(out);
}

Test(cli_test, the_documented_example_passes_against_the_default_config)
{
    char *out = NULL, args[1024];
    const char *src = getenv("IW_SOURCE_DIR");

    snprintf(args, sizeof(args), "test '%s/config/islewatch.yaml' '%s/config/tests.example.yaml'",
             src ? src : "../..", src ? src : "../..");
    int rc = run_cli(&out, args);
    cr_expect_eq(rc, 0, "config/tests.example.yaml fails:\n%s", out);
    cr_expect(out != NULL && strstr(out, " passed\n") != NULL && strstr(out, "failed") == NULL, "%s", out);
    free(out);
}

/* ==========================================================================
 * backtest on a store written here
 * ======================================================================== */

#define T0 1767225600000LL              /* 2026-01-01T00:00:00Z */
#define MINUTE 60000LL

static char bt_dir[256], bt_cfg[320], bt_db[320];

static void put_series(struct iw_store *st, const char *name, const int64_t *at_min,
                       const double *v, size_t n)
{
    const struct iw_series *s = NULL;
    struct iw_wbatch *b = iw_wbatch_new();
    struct iw_diag diag = { 0 };

    cr_assert_eq(iw_store_series_intern(st, name, strlen(name), &s), IW_OK, "%s", name);
    for (size_t i = 0; i < n; i++)
        iw_wbatch_put_point(b, s->id, T0 + at_min[i] * MINUTE, v[i], 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_free(b);
}

/*
 * One hour of recorded data:
 *  - water/lake/w1/ph every minute 0..60: 7, but 9.5 at 10..19 and at 40..44
 *    -> ph-high fires at 12m and 42m, resolves at 20m and 45m;
 *  - camera/pier/c1/online every minute 0..30, then silent
 *    -> cam-offline fires at 32m and is still firing at the end;
 *  - camera_event/pier/c1/tamper start at 50m -> fires, auto_resolve at 55m;
 *  - water/lake/w1/class 150 at 5m: derived, never replayed, so "any-high"
 *    (above 100 on every water metric) stays quiet.
 */
static void bt_setup(void)
{
    struct iw_store *st = NULL;
    struct iw_diag diag = { 0 };
    int64_t at[61];
    double v[61];
    FILE *f;

    snprintf(bt_dir, sizeof(bt_dir), "/tmp/iw-backtest-XXXXXX");
    cr_assert_not_null(mkdtemp(bt_dir));
    snprintf(bt_db, sizeof(bt_db), "%s/data", bt_dir);
    snprintf(bt_cfg, sizeof(bt_cfg), "%s/rules.yaml", bt_dir);
    f = fopen(bt_cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "storage:\n  path: %s\n"
               "rules:\n"
               "  - { name: ph-high, kind: threshold, select: \"water/*/*/ph\", above: 9, for: 2m,\n"
               "      clear_below: 8.5, severity: major, message: \"{site}/{device} pH {value}, limit {threshold}\" }\n"
               "  - { name: cam-offline, kind: absence, select: \"camera/*/*\", after: 2m }\n"
               "  - { name: tamper, kind: event, select: \"camera_event/*/*\", match: { type: tamper },\n"
               "      auto_resolve: 5m, severity: critical }\n"
               "  - { name: any-high, kind: threshold, select: \"water/*/*/*\", above: 100 }\n", bt_db);
    fclose(f);

    struct iw_store_opts o = { .path = bt_db };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    for (int i = 0; i <= 60; i++) {
        at[i] = i;
        v[i] = (i >= 10 && i < 20) || (i >= 40 && i < 45) ? 9.5 : 7;
    }
    put_series(st, "water/lake/w1/ph", at, v, 61);
    for (int i = 0; i <= 30; i++)
        v[i] = 1;
    put_series(st, "camera/pier/c1/online", at, v, 31);
    put_series(st, "camera_event/pier/c1/tamper", (int64_t[]){ 50 }, (double[]){ 1 }, 1);
    put_series(st, "water/lake/w1/class", (int64_t[]){ 5 }, (double[]){ 150 }, 1);
    iw_store_close(st);
}

static void bt_teardown(void)
{
    it_run(NULL, "rm -rf '%s'", bt_dir);
}

TestSuite(cli_backtest, .init = bt_setup, .fini = bt_teardown, .timeout = 60);

/* The summary row of a rule in the table output. */
static bool summary_row(const char *out, const char *rule, unsigned long *fired, unsigned long *resolved,
                        char *firing, unsigned long *open)
{
    char name[64], pat[80];
    unsigned long esc;
    const char *p;

    snprintf(pat, sizeof(pat), "\n%s ", rule);
    p = out ? strstr(out, pat) : NULL;
    return p != NULL && sscanf(p + 1, "%63s %lu %lu %lu %31s %lu", name, fired, resolved, &esc, firing,
                               open) == 6;
}

Test(cli_backtest, the_table_sums_up_each_rule_and_lists_a_timeline)
{
    char *out = NULL, args[1024], firing[32];
    unsigned long fired, resolved, open;

    /* No --db: the store is the config's storage.path. */
    snprintf(args, sizeof(args), "backtest '%s' --from 2026-01-01T00:00:00Z --to 2026-01-01T01:00:00Z",
             bt_cfg);
    int rc = run_cli(&out, args);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    expect_contains(out, "Replayed 3 series, 93 points; 7 alert messages.");
    cr_assert(summary_row(out, "ph-high", &fired, &resolved, firing, &open), "%s", out);
    cr_expect_eq(fired, 2);
    cr_expect_eq(resolved, 2);
    cr_expect_str_eq(firing, "11m00s", "(20m - 12m) + (45m - 42m)");
    cr_expect_eq(open, 0);
    cr_assert(summary_row(out, "cam-offline", &fired, &resolved, firing, &open), "%s", out);
    cr_expect_eq(fired, 1);
    cr_expect_eq(resolved, 0);
    cr_expect_str_eq(firing, "28m00s", "from 32m to the end of the range");
    cr_expect_eq(open, 1);
    cr_assert(summary_row(out, "tamper", &fired, &resolved, firing, &open), "%s", out);
    cr_expect_eq(fired + resolved, 2);
    cr_expect_str_eq(firing, "5m00s");
    cr_assert(summary_row(out, "any-high", &fired, &resolved, firing, &open), "%s", out);
    cr_expect_eq(fired, 0, "derived series (class) are not replayed");
    expect_contains(out, "TIMELINE\n2026-01-01T00:12:00.000Z  firing   major    ph-high");
    expect_contains(out, "2026-01-01T00:32:00.000Z  firing   warning  cam-offline");
    expect_contains(out, "2026-01-01T00:55:00.000Z  resolved critical tamper");
    free(out);
}

/* The timeline marks what the daemon would have recorded silenced (and late),
 * as `islewatch alerts` does; the CSV has both as columns. */
Test(cli_backtest, the_timeline_marks_silenced_alerts)
{
    char *out = NULL, args[1024], cfg[400];

    snprintf(cfg, sizeof(cfg), "%s/silenced.yaml", bt_dir);
    cr_assert_eq(it_run(NULL, "cp '%s' '%s' && printf 'silences:\\n  - {match: {rule: tamper}, "
                        "reason: drill}\\n' >> '%s'", bt_cfg, cfg, cfg), 0);
    snprintf(args, sizeof(args), "backtest '%s' --db '%s' --from %lld --to %lld --rule tamper", cfg,
             bt_db, (long long)T0, (long long)(T0 + 60 * MINUTE));
    int rc = run_cli(&out, args);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    expect_contains(out, "  [silenced] ");
    free(out);
    snprintf(args + strlen(args), sizeof(args) - strlen(args), " --format csv");
    rc = run_cli(&out, args);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    expect_contains(out, ",false,true\n");
    free(out);
}

Test(cli_backtest, csv_is_the_timeline_and_rule_filters)
{
    char *out = NULL, args[1024];

    snprintf(args, sizeof(args), "backtest '%s' --db '%s' --from %lld --to %lld --format csv "
             "--rule 'ph-*'", bt_cfg, bt_db, (long long)T0, (long long)(T0 + 60 * MINUTE));
    int rc = run_cli(&out, args);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_str_eq(out,
                     "ts,status,severity,rule,source,site,device,metric,value,message,late,silenced\n"
                     "2026-01-01T00:12:00.000Z,firing,major,ph-high,water,lake,w1,ph,9.5,\"lake/w1 pH 9.5, limit 9\",false,false\n"
                     "2026-01-01T00:20:00.000Z,resolved,major,ph-high,water,lake,w1,ph,7,\"lake/w1 pH 7, limit 9\",false,false\n"
                     "2026-01-01T00:42:00.000Z,firing,major,ph-high,water,lake,w1,ph,9.5,\"lake/w1 pH 9.5, limit 9\",false,false\n"
                     "2026-01-01T00:45:00.000Z,resolved,major,ph-high,water,lake,w1,ph,7,\"lake/w1 pH 7, limit 9\",false,false\n");
    free(out);
}

/* A device the store knew before --from and that stays silent is absent from
 * --from + after on, as for a daemon whose rules took effect at --from; a
 * device first stored after --from is known only once it reports. */
Test(cli_backtest, a_device_silent_since_before_from_is_absent_from_the_start)
{
    char *out = NULL, args[1024];

    snprintf(args, sizeof(args), "backtest '%s' --db '%s' --from %lld --to %lld --format csv "
             "--rule cam-offline", bt_cfg, bt_db, (long long)(T0 + 40 * MINUTE),
             (long long)(T0 + 60 * MINUTE));
    int rc = run_cli(&out, args);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_expect_str_eq(out,
                     "ts,status,severity,rule,source,site,device,metric,value,message,late,silenced\n"
                     "2026-01-01T00:42:00.000Z,firing,warning,cam-offline,camera,pier,c1,,,"
                     "pier/c1 has not reported since islewatch started (2m ago or more),false,false\n");
    free(out);
    /* From before its first heartbeat: known once it reports, silent after 30m. */
    snprintf(args, sizeof(args), "backtest '%s' --db '%s' --from %lld --to %lld --format csv "
             "--rule cam-offline", bt_cfg, bt_db, (long long)(T0 - 10 * MINUTE),
             (long long)(T0 + 60 * MINUTE));
    rc = run_cli(&out, args);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    expect_contains(out, "\n2026-01-01T00:32:00.000Z,firing,warning,cam-offline,camera,pier,c1,");
    cr_expect_null(strstr(out, "T23:52:00"), "not known before it reported: %s", out);
    free(out);
}

Test(cli_backtest, json_is_an_array_of_alert_objects)
{
    char *out = NULL, args[1024];
    cJSON *doc, *a;

    snprintf(args, sizeof(args), "backtest '%s' --db '%s' --from 2026-01-01T00:00:00Z "
             "--to 2026-01-01T01:00:00Z --format json 2>/dev/null", bt_cfg, bt_db);
    cr_assert_eq(it_run(&out, "'%s' %s", it_bin("islewatch"), args), 0);
    doc = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(doc), "not a JSON array: %s", out);
    cr_expect_eq(cJSON_GetArraySize(doc), 7);
    a = cJSON_GetArrayItem(doc, 0);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule")), "ph-high");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "firing");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "ts")), "2026-01-01T00:12:00.000Z");
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "value")), 9.5);
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "seq")), 1);
    a = cJSON_GetArrayItem(doc, 6);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule")), "tamper");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "resolved");
    cJSON_Delete(doc);
    free(out);
}

Test(cli_backtest, no_progress_bar_when_stderr_is_not_a_terminal)
{
    char *err = NULL;

    cr_assert_eq(it_run(NULL, "'%s' backtest '%s' --from %lld --to %lld >/dev/null 2>'%s/err'",
                        it_bin("islewatch"), bt_cfg, (long long)T0, (long long)(T0 + 60 * MINUTE),
                        bt_dir), 0);
    cr_assert_eq(it_run(&err, "cat '%s/err'", bt_dir), 0);
    cr_expect_str_eq(err ? err : "", "", "stderr: %s", err);
    free(err);
}

Test(cli_backtest, bad_arguments_exit_2_and_a_missing_store_exits_3)
{
    char *out = NULL, args[1024];

    snprintf(args, sizeof(args), "backtest '%s' --from yesterday", bt_cfg);
    cr_expect_eq(run_cli(&out, args), 2);
    expect_contains(out, "--from yesterday");
    free(out);
    out = NULL;
    snprintf(args, sizeof(args), "backtest '%s'", bt_cfg);
    cr_expect_eq(run_cli(&out, args), 2, "--from is required");
    free(out);
    out = NULL;
    snprintf(args, sizeof(args), "backtest '%s' --from -1h --rule nosuchrule", bt_cfg);
    cr_expect_eq(run_cli(&out, args), 2);
    expect_contains(out, "no rule matching \"nosuchrule\"");
    free(out);
    out = NULL;
    snprintf(args, sizeof(args), "backtest '%s' --from -1h --db '%s/nothing-here'", bt_cfg, bt_dir);
    cr_expect_eq(run_cli(&out, args), 3);
    free(out);
    out = NULL;
    cr_expect_eq(run_cli(&out, "backtest --help"), 0);
    expect_contains(out, "Example:");
    free(out);
}

/* Epoch-ms bounds far outside any calendar: a clear usage error, not an overflow. */
Test(cli_backtest, times_beyond_the_calendar_exit_2)
{
    char *out = NULL, args[1024];

    snprintf(args, sizeof(args), "backtest '%s' --from -9223372036854775808 --to "
             "9223372036854775807 --db '%s'", bt_cfg, bt_db);
    cr_expect_eq(run_cli(&out, args), 2, "%s", out);
    expect_contains(out, "--from -9223372036854775808");
    free(out);
    out = NULL;
    snprintf(args, sizeof(args), "backtest '%s' --from 0 --to 9223372036854775807 --db '%s'",
             bt_cfg, bt_db);
    cr_expect_eq(run_cli(&out, args), 2, "%s", out);
    expect_contains(out, "--to 9223372036854775807");
    free(out);
}

/* ==========================================================================
 * backtest on data the daemon recorded: the same alerts as the daemon raised
 * ======================================================================== */

/* Sample-time rules only: absence runs on receipt time, which a backtest
 * cannot know (it takes the sample time). */
static const char *RECORD_RULES =
    "rules:\n"
    "  - { name: ph-high, kind: threshold, select: \"water/*/*/ph\", above: 9, for: 2m,\n"
    "      clear_below: 8.5, severity: major }\n"
    "  - { name: w2-class, kind: water_quality, select: \"water/*/w2\", target: III, window: 1h }\n"
    "  - { name: comm, kind: flag, select: \"water/*/w3\", flags: [B], for: 1m, severity: major }\n";

struct seen {
    char rule[32], status[16], device[16];
    long long ts;
};

static void seen_from_json(const char *json, struct seen *s)
{
    cJSON *o = cJSON_Parse(json);
    const char *t;

    cr_assert_not_null(o, "not JSON: %s", json);
    snprintf(s->rule, sizeof(s->rule), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "rule")));
    snprintf(s->status, sizeof(s->status), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")));
    snprintf(s->device, sizeof(s->device), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "device")));
    t = cJSON_GetStringValue(cJSON_GetObjectItem(o, "ts"));
    cr_assert_not_null(t);
    int64_t ms = 0;
    cr_assert_eq(iw_rfc3339_parse(t, strlen(t), &ms), IW_OK, "ts %s", t);
    s->ts = ms;
    cJSON_Delete(o);
}

static int cmp_seen(const void *a, const void *b)
{
    const struct seen *x = a, *y = b;
    int c;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if ((c = strcmp(x->rule, y->rule)) || (c = strcmp(x->device, y->device)))
        return c;
    return strcmp(x->status, y->status);
}

/* The alerts of `backtest ... --format json` (args: where the data are) into s. */
static size_t backtest_seen(const struct it_daemon *d, const char *where, long long from,
                            long long to, struct seen *s, size_t cap)
{
    char *out = NULL;
    size_t n = 0;

    cr_assert_eq(it_run(&out, "'%s' backtest '%s' %s --from %lld --to %lld --format json",
                        it_bin("islewatch"), d->cfg, where, from, to), 0, "%s", out);
    cJSON *doc = cJSON_Parse(out), *a;
    cr_assert(cJSON_IsArray(doc), "%s", out);
    cJSON_ArrayForEach(a, doc) {
        char *js = cJSON_PrintUnformatted(a);
        cr_assert_lt(n, cap);
        seen_from_json(js, &s[n++]);
        free(js);
    }
    cJSON_Delete(doc);
    free(out);
    qsort(s, n, sizeof(s[0]), cmp_seen);
    return n;
}

/*
 * The daemon's alerts from its recorded store, --db and --url alike: device
 * w3's messages carry only a flag (an instrument that sends nothing else
 * while its link is down), which the daemon stores under the device's own
 * entry; backtest used to see nothing of them and missed the comm episode.
 */
Test(cli_backtest_recorded, reproduces_the_alerts_the_daemon_raised, .timeout = 120)
{
    enum { N = 20, WANT = 7 };
    struct it_broker b;
    struct it_daemon d;
    struct seen live[WANT + 4], replayed[WANT + 4], by_url[WANT + 4];
    size_t n_live = 0, n_rep, n_url;
    long long base = (iw_now_ms() - 40 * MINUTE) / MINUTE * MINUTE;   /* wall clock */
    char payload[256];

    cr_assert_eq(it_broker_start(&b), 0, "cannot start mosquitto");
    cr_assert_eq(it_daemon_start(&d, &b, RECORD_RULES), 0, "cannot start islewatchd");
    struct it_client *sub = it_client_new(&b, "it-bt-sub");
    struct it_client *pub = it_client_new(&b, "it-bt-pub");
    cr_assert(sub != NULL && pub != NULL);
    /* Both rules raise major alerts; the active/ topic (and its empty clears) stays out. */
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);

    /* w1: pH 9.5 at minutes 1..4 and 10..13 -> ph-high fires at 3 and 12, resolves at 5 and 14.
     * w2: NH3-N 0.4 then 1.8 from minute 10 -> the 1h mean passes class III (1.0) at 17. */
    for (int i = 0; i < N; i++) {
        double ph = (i >= 1 && i <= 4) || (i >= 10 && i <= 13) ? 9.5 : 7;
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%g}", base + i * MINUTE, ph);
        cr_assert_eq(it_publish(pub, "sensors/water/lake/w1", payload, 1, false), 0);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"nh3_n\":%g,\"do\":7}", base + i * MINUTE,
                 i < 10 ? 0.4 : 1.8);
        cr_assert_eq(it_publish(pub, "sensors/water/lake/w2", payload, 1, false), 0);
        /* w3: pH 7 at minute 0, then only "B" (link down) at 1..4, "N" at 5:
         * comm fires at 2 (B for 1m) and resolves at 5. */
        if (i == 0)
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7}", base);
        else if (i <= 5)
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"flag\":\"%s\"}",
                     base + i * MINUTE, i < 5 ? "B" : "N");
        if (i <= 5)
            cr_assert_eq(it_publish(pub, "sensors/water/lake/w3", payload, 1, false), 0);
    }
    while (n_live < WANT) {
        struct it_msg *m = it_next(sub, 20000);
        cr_assert_not_null(m, "the daemon raised %zu alerts, want %d", n_live, WANT);
        seen_from_json(m->payload, &live[n_live++]);
        it_msg_free(m);
    }
    it_client_free(sub);
    it_client_free(pub);
    char where[600];
    snprintf(where, sizeof(where), "--url http://127.0.0.1:%d", d.http_port);
    n_url = backtest_seen(&d, where, base, base + N * MINUTE, by_url, WANT + 4);
    it_daemon_stop(&d);                 /* the store is complete and closed */
    snprintf(where, sizeof(where), "--db '%s'", d.data);
    n_rep = backtest_seen(&d, where, base, base + N * MINUTE, replayed, WANT + 4);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);

    qsort(live, n_live, sizeof(live[0]), cmp_seen);
    cr_assert_eq(n_rep, n_live, "backtest --db %zu alerts, daemon %zu", n_rep, n_live);
    cr_assert_eq(n_url, n_live, "backtest --url %zu alerts, daemon %zu", n_url, n_live);
    for (size_t i = 0; i < n_live; i++) {
        cr_expect_eq(cmp_seen(&live[i], &replayed[i]), 0, "alert %zu: daemon %s %s %s %lld, backtest %s %s %s %lld",
                     i, live[i].rule, live[i].status, live[i].device, live[i].ts, replayed[i].rule,
                     replayed[i].status, replayed[i].device, replayed[i].ts);
        cr_expect_eq(cmp_seen(&live[i], &by_url[i]), 0, "alert %zu: daemon %s %s %s %lld, --url %s %s %s %lld",
                     i, live[i].rule, live[i].status, live[i].device, live[i].ts, by_url[i].rule,
                     by_url[i].status, by_url[i].device, by_url[i].ts);
    }
    static const struct { int min; const char *rule, *status; } want[WANT] = {
        { 2, "comm", "firing" }, { 3, "ph-high", "firing" }, { 5, "comm", "resolved" },
        { 5, "ph-high", "resolved" }, { 12, "ph-high", "firing" },
        { 14, "ph-high", "resolved" }, { 17, "w2-class", "firing" },
    };
    for (size_t i = 0; i < WANT; i++) {
        cr_expect_eq(live[i].ts, base + want[i].min * MINUTE, "alert %zu at +%lld min", i,
                     (live[i].ts - base) / MINUTE);
        cr_expect_str_eq(live[i].rule, want[i].rule, "alert %zu", i);
        cr_expect_str_eq(live[i].status, want[i].status, "alert %zu", i);
    }
}

/* ==========================================================================
 * backtest --url: requests only where the series have points
 * ======================================================================== */

/* Occurrences of needle in the file at path. */
static int count_in_file(const char *path, const char *needle)
{
    char *text = NULL;
    int n = 0;
    cr_assert_eq(it_run(&text, "cat '%s'", path), 0);
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

/*
 * A backtest over a year (--from -1y, as for "all history") of a series that
 * holds one hour must not walk the empty year in windows sized for that
 * hour: the daemon's debug log counts the query requests it got.
 */
Test(cli_backtest_recorded, url_mode_asks_only_where_the_series_has_points, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    struct iw_store *st = NULL;
    struct iw_diag diag = { 0 };
    const struct iw_series *s = NULL;
    long long base = (iw_now_ms() - 2 * IW_MS_PER_HOUR) / MINUTE * MINUTE;
    char *out = NULL;

    cr_assert_eq(it_broker_start(&b), 0, "cannot start mosquitto");
    cr_assert_eq(it_daemon_start(&d, &b, RECORD_RULES), 0, "cannot start islewatchd");
    it_daemon_stop(&d);
    struct iw_store_opts o = { .path = d.data };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    struct iw_wbatch *wb = iw_wbatch_new();
    cr_assert_eq(iw_store_series_intern(st, "water/lake/w1/ph", 16, &s), IW_OK);
    for (int i = 0; i <= 60; i++)
        iw_wbatch_put_point(wb, s->id, base + i * MINUTE, i >= 10 && i < 20 ? 9.5 : 7, 0);
    cr_assert_eq(iw_store_write(st, wb, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_free(wb);
    iw_store_close(st);
    cr_assert_eq(it_daemon_restart(&d), 0, "cannot restart islewatchd");
    /* Debug logging shows each HTTP request. */
    cr_assert_eq(it_run(NULL, "sed -i 's/^log_level: info/log_level: debug/' '%s'", d.cfg), 0);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 20000), "no reload");

    int rc = it_run(&out, "'%s' backtest '%s' --url http://127.0.0.1:%d --from -1y --format json",
                    it_bin("islewatch"), d.cfg, d.http_port);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(out != NULL && strstr(out, "\"ph-high\"") != NULL, "%s", out);
    int n = count_in_file(d.log, "GET /api/v1/query");
    cr_expect_leq(n, 10, "%d query requests for one hour of one series", n);
    free(out);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}
