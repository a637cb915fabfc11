/*
 * `islewatch report` end to end: a store written through the storage API,
 * a config with the inventory, and the built CLI run through popen; the
 * ratios are read back from its CSV.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/store.h"
#include "it.h"

static char dir[256], db[300], cfg[300];

static int64_t T(const char *s)
{
    int64_t ms;
    cr_assert_eq(iw_rfc3339_parse(s, strlen(s), &ms), IW_OK, "bad time %s", s);
    return ms;
}

static void put(struct iw_store *st, struct iw_wbatch *b, const char *series, int64_t ts, double v)
{
    const struct iw_series *s;
    cr_assert_eq(iw_store_series_intern(st, series, strlen(series), &s), IW_OK);
    iw_wbatch_put_point(b, s->id, ts, v, 0);
}

/* Hourly values stamped at the hours' ends of one local day. */
static void hours(struct iw_store *st, struct iw_wbatch *b, const char *series, const char *day,
                  int n, double v)
{
    for (int h = 1; h <= n; h++)
        put(st, b, series, T(day) + h * IW_MS_PER_HOUR, v);
}

static void setup(void)
{
    struct iw_diag diag = { 0 };
    struct iw_store *st;
    struct iw_wbatch *b;
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/iw-report-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/data", dir);
    snprintf(cfg, sizeof(cfg), "%s/islewatch.yaml", dir);
    struct iw_store_opts o = { .path = db };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    b = iw_wbatch_new();

    /* water: dongtan/w01 (target III) II, III, IV, II -> 3/4; hengsha/w01 (target II) II, III -> 1/2 */
    static const double dongtan[] = { 0.4, 0.9, 1.4, 0.3 }, hengsha[] = { 0.5, 0.7 };
    for (int d = 0; d < 4; d++)
        put(st, b, "water/dongtan/w01/nh3_n", T("2026-05-01T10:00:00+08:00") + d * IW_MS_PER_DAY,
            dongtan[d]);
    for (int d = 0; d < 2; d++)
        put(st, b, "water/hengsha/w01/nh3_n", T("2026-05-01T10:00:00+08:00") + d * IW_MS_PER_DAY,
            hengsha[d]);
    /* wusong/w01 (default target III): samples II, II, II, 劣V on one day -> 3/4,
     * though the day's mean 1.125 is Class IV */
    static const double wusong[] = { 0.5, 0.5, 0.5, 3.0 };
    for (int i = 0; i < 4; i++)
        put(st, b, "water/wusong/w01/nh3_n", T("2026-05-02T08:00:00+08:00") + i * IW_MS_PER_HOUR,
            wusong[i]);
    /* air: 30 (good), 90 (AQI 128), 30 for 19 hours (invalid), 60 (AQI 100, good) -> 2/3 */
    hours(st, b, "air/dongtan/a01/pm25", "2026-05-01T00:00:00+08:00", 24, 30);
    hours(st, b, "air/dongtan/a01/pm25", "2026-05-02T00:00:00+08:00", 24, 90);
    hours(st, b, "air/dongtan/a01/pm25", "2026-05-03T00:00:00+08:00", 19, 30);
    hours(st, b, "air/dongtan/a01/pm25", "2026-05-04T00:00:00+08:00", 24, 60);
    /* cameras: c01 online for the first 30 of 60 minutes; c09 declared, never seen */
    for (int m = 0; m < 30; m++)
        put(st, b, "camera/dongtan/c01/online", T("2026-05-01T00:00:10Z") + m * IW_MS_PER_MIN, 1);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_free(b);
    iw_store_close(st);

    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "storage:\n  path: %s\n"
            "devices:\n"
            "  - { source: water, site: dongtan, device: w01, name: \"东滩 1号站\", target: III }\n"
            "  - { source: water, site: hengsha, device: w01, target: II }\n"
            "  - { source: air, site: dongtan, device: a01 }\n"
            "  - { source: camera, site: dongtan, device: c01 }\n"
            "  - { source: camera, site: dongtan, device: c09 }\n", db);
    fclose(f);
}

static void teardown(void)
{
    it_run(NULL, "rm -rf '%s'", dir);
}

TestSuite(report_cli, .init = setup, .fini = teardown, .timeout = 60);

/* The value of column `col` in the CSV line that starts with `prefix` ("" when absent). */
static const char *csv_get(const char *csv, const char *prefix, const char *col)
{
    static char val[256];
    const char *line = NULL, *p;
    int idx = -1, i = 0;
    size_t plen = strlen(prefix);

    /* the header's column index */
    for (p = csv; *p && *p != '\n'; i++) {
        const char *e = strpbrk(p, ",\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == strlen(col) && strncmp(p, col, n) == 0)
            idx = i;
        p += n + (e && *e == ',' ? 1 : 0);
    }
    cr_assert_geq(idx, 0, "no column %s", col);
    for (p = csv; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, plen) == 0) {
            line = p;
            break;
        }
    cr_assert_not_null(line, "no line %s in\n%s", prefix, csv);
    for (i = 0, p = line; i < idx; i++) {
        p = strpbrk(p, ",\n");
        cr_assert(p != NULL && *p == ',', "short line %s", prefix);
        p++;
    }
    size_t n = strcspn(p, ",\n");
    snprintf(val, sizeof(val), "%.*s", (int)n, p);
    return val;
}

Test(report_cli, water_compliance_rate_is_a_share_of_samples_per_site)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' report water --config '%s' --from 2026-05-01 --to 2026-05-05 "
                    "--format csv", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "sample_compliance_rate"), "0.7500");
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "days_IV"), "1");
    cr_assert_str_eq(csv_get(out, "site,hengsha,", "sample_compliance_rate"), "0.5000");
    cr_assert_str_eq(csv_get(out, "site,hengsha,", "target"), "II");
    cr_assert_str_eq(csv_get(out, "day,dongtan,w01,东滩 1号站,2026-05-03,", "class_name"), "IV");
    cr_assert_str_eq(csv_get(out, "site,wusong,", "sample_compliance_rate"), "0.7500");
    cr_assert_str_eq(csv_get(out, "site,wusong,", "samples"), "4");
    cr_assert_str_eq(csv_get(out, "site,wusong,", "samples_meeting_target"), "3");
    cr_assert_str_eq(csv_get(out, "site,wusong,", "days_IV"), "1");
    cr_assert_str_eq(csv_get(out, "site,wusong,", "days_meeting_target"), "0");
    cr_assert_str_eq(csv_get(out, "total,", "sample_compliance_rate"), "0.7000");
    free(out);
    rc = it_run(&out, "'%s' report water --config '%s' --from 2026-05-01 --to 2026-05-05 "
                "--site wusong", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_not_null(strstr(out, "达标率 (OF SAMPLES)"), "%s", out);
    cr_assert_not_null(strstr(out, "75.00%"), "%s", out);
    free(out);
}

Test(report_cli, air_good_day_ratio)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' report air --config '%s' --from 2026-05-01 --to 2026-05-05 "
                    "--format csv", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "good_rate"), "0.6667");
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "invalid_days"), "1");
    cr_assert_str_eq(csv_get(out, "day,dongtan,a01,,2026-05-02,", "aqi"), "128");
    cr_assert_str_eq(csv_get(out, "day,dongtan,a01,,2026-05-04,", "aqi"), "100");
    cr_assert_str_eq(csv_get(out, "day,dongtan,a01,,2026-05-03,", "valid"), "0");
    free(out);
    /* forcing the 2012 breakpoints: 90 -> 119, 60 -> 82; still 2 good days of 3 */
    rc = it_run(&out, "'%s' report air --db '%s' --from 2026-05-01T00:00:00+08:00 "
                "--to 2026-05-05T00:00:00+08:00 --standard HJ633-2012 --format csv",
                it_bin("islewatch"), db);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_str_eq(csv_get(out, "day,dongtan,a01,,2026-05-02,", "aqi"), "119");
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "good_rate"), "0.6667");
    free(out);
}

Test(report_cli, camera_online_rate)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' report cameras --config '%s' --from 2026-05-01T00:00:00Z "
                    "--to 2026-05-01T01:00:00Z --format csv", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_str_eq(csv_get(out, "camera,dongtan,c01,", "online_rate"), "0.5000");
    cr_assert_str_eq(csv_get(out, "camera,dongtan,c09,", "online_rate"), "0.0000");
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "online_rate"), "0.2500");
    cr_assert_str_eq(csv_get(out, "site,dongtan,", "never_reported"), "1");
    free(out);
    rc = it_run(&out, "'%s' report cameras --config '%s' --from 2026-05-01T00:00:00Z "
                "--to 2026-05-01T01:00:00Z --interval 5m --format csv", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(csv_get(out, "camera,dongtan,c01,", "intervals"), "12");
    cr_assert_str_eq(csv_get(out, "camera,dongtan,c01,", "online_intervals"), "6");
    free(out);
}

Test(report_cli, html_file_is_self_contained)
{
    static const char *const kinds[] = { "water", "air", "cameras" };
    for (size_t i = 0; i < 3; i++) {
        char path[400], *out = NULL;
        snprintf(path, sizeof(path), "%s/%s.html", dir, kinds[i]);
        int rc = it_run(NULL, "'%s' report %s --config '%s' --from 2026-05-01 --to 2026-05-05 "
                        "--format html --out '%s' 2>/dev/null", it_bin("islewatch"), kinds[i],
                        cfg, path);
        cr_assert_eq(rc, 0, "%s", kinds[i]);
        cr_assert_eq(it_run(&out, "cat '%s'", path), 0);
        cr_assert_not_null(strstr(out, "<!DOCTYPE html>"));
        cr_assert_not_null(strstr(out, "</html>"));
        cr_assert_not_null(strstr(out, "<svg"), "%s has a chart", kinds[i]);
        cr_assert_not_null(strstr(out, "@media print"));
        cr_assert_null(strstr(out, "<script"));
        cr_assert_null(strstr(out, "<link"));
        cr_assert_null(strstr(out, "src="));
        cr_assert_null(strstr(out, "url("));
        free(out);
    }
}

Test(report_cli, table_and_errors)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' report water --db '%s' --from 2026-05-01 --to 2026-05-05 --tz UTC",
                    it_bin("islewatch"), db);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_not_null(strstr(out, "达标率"), "%s", out);
    cr_assert_not_null(strstr(out, "UTC+00:00"), "%s", out);
    free(out);
    rc = it_run(&out, "'%s' report --help", it_bin("islewatch"));
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(out, "优良天数比例"));
    free(out);
    cr_assert_eq(it_run(NULL, "'%s' report water --db '%s' --from 2026-05-01 2>/dev/null",
                        it_bin("islewatch"), db), 2, "missing --to");
    cr_assert_eq(it_run(NULL, "'%s' report noise --db '%s' --from 2026-05-01 --to 2026-05-02 "
                        "2>/dev/null", it_bin("islewatch"), db), 2, "unknown report");
    cr_assert_eq(it_run(NULL, "'%s' report air --db '%s' --from 2026-05-02 --to 2026-05-01 "
                        "2>/dev/null", it_bin("islewatch"), db), 2, "from after to");
    cr_assert_eq(it_run(NULL, "'%s' report air --db '%s/nope' --from 2026-05-01 --to 2026-05-02 "
                        "2>/dev/null", it_bin("islewatch"), dir), 3, "no database");
    cr_assert_eq(it_run(NULL, "'%s' report air --config '%s/nope.yaml' --from 2026-05-01 "
                        "--to 2026-05-02 2>/dev/null", it_bin("islewatch"), dir), 2, "no config");
}

/* A bad time names the argument that is wrong (not both), so the user knows which to fix. */
Test(report_cli, a_bad_time_names_the_bad_argument)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' report water --db '%s' --from 2026-13-01 --to 2026-05-02 2>&1",
                    it_bin("islewatch"), db);
    cr_assert_eq(rc, 2, "%s", out);
    cr_expect_not_null(strstr(out, "from 2026-13-01: "), "%s", out);
    cr_expect_null(strstr(out, "2026-05-02"), "the good --to is not blamed: %s", out);
    free(out);
    rc = it_run(&out, "'%s' report air --db '%s' --from 2026-05-01 --to 2026-05-32 2>&1",
                it_bin("islewatch"), db);
    cr_assert_eq(rc, 2, "%s", out);
    cr_expect_not_null(strstr(out, "to 2026-05-32: "), "%s", out);
    cr_expect_null(strstr(out, "from 2026-05-01"), "the good --from is not blamed: %s", out);
    free(out);
}

/* A --site that matches nothing: the table says so and what to check, as the HTML does. */
Test(report_cli, a_table_without_any_station_says_why)
{
    static const char *const kinds[] = { "water", "air", "cameras" };
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' report %s --config '%s' --from 2026-05-01 --to 2026-05-05 "
                        "--site nosuchsite", it_bin("islewatch"), kinds[i], cfg);
        cr_assert_eq(rc, 0, "%s: %s", kinds[i], out);
        cr_expect_not_null(strstr(out, "in the store or the inventory matches"), "%s:\n%s",
                           kinds[i], out);
        cr_expect_not_null(strstr(out, "--site"), "%s: says what to check:\n%s", kinds[i], out);
        free(out);
    }
}

/*
 * A period reaching back past storage.retention.raw (default 90d): the raw
 * samples the reports read are gone there, so a yearly report on the
 * default config would silently cover only its last 90 days. The table and
 * the HTML say so; a period inside the retention has no such note.
 */
Test(report_cli, a_period_older_than_the_raw_retention_is_flagged)
{
    static const char *const kinds[] = { "water", "air", "cameras" };
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' report %s --config '%s' --from -200d --to -199d",
                        it_bin("islewatch"), kinds[i], cfg);
        cr_assert_eq(rc, 0, "%s: %s", kinds[i], out);
        cr_expect_not_null(strstr(out, "storage.retention.raw"), "%s:\n%s", kinds[i], out);
        free(out);
        rc = it_run(&out, "'%s' report %s --config '%s' --from -200d --to -199d --format html",
                    it_bin("islewatch"), kinds[i], cfg);
        cr_assert_eq(rc, 0, "%s: %s", kinds[i], out);
        cr_expect_not_null(strstr(out, "storage.retention.raw"), "%s html", kinds[i]);
        free(out);
        rc = it_run(&out, "'%s' report %s --config '%s' --from -1d --to now", it_bin("islewatch"),
                    kinds[i], cfg);
        cr_assert_eq(rc, 0, "%s: %s", kinds[i], out);
        cr_expect_null(strstr(out, "storage.retention.raw"), "%s:\n%s", kinds[i], out);
        free(out);
    }
}

/*
 * The water report counts the samples of [from, to) only, so a --from or
 * --to inside a day makes that day's row a part of the day: the table and
 * the HTML say which part, not just the dates. Whole days get no such note.
 */
Test(report_cli, water_period_that_cuts_a_day_shows_its_times)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' report water --config '%s' --from 2026-05-01T12:00:00+08:00 "
                    "--to 2026-05-03", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect_not_null(strstr(out, "2026-05-01 12:00"), "%s", out);
    cr_expect_not_null(strstr(out, "partial"), "%s", out);
    free(out);
    rc = it_run(&out, "'%s' report water --config '%s' --from 2026-05-01T12:00:00+08:00 "
                "--to 2026-05-03 --format html", it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0);
    cr_expect_not_null(strstr(out, "2026-05-01 12:00"), "html");
    free(out);
    rc = it_run(&out, "'%s' report water --config '%s' --from 2026-05-01 --to 2026-05-03",
                it_bin("islewatch"), cfg);
    cr_assert_eq(rc, 0);
    cr_expect_null(strstr(out, "partial"), "%s", out);
    free(out);
}
