/*
 * `islewatch report` and `islewatch backtest` through a running daemon
 * (--url, SPEC §6) against the same commands reading its database directly
 * (--db, beside the daemon): a real mosquitto and islewatchd, samples
 * published over MQTT plus a long series written into the store while the
 * daemon was stopped (so a backtest over --url needs several requests for
 * it), and the outputs compared byte for byte. Also: a daemon that is not
 * there, and arguments the daemon refuses.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "islewatch/clock.h"
#include "islewatch/http_client.h"
#include "islewatch/store.h"
#include "it.h"

#define EXTRA                                                                              \
    "sources:\n"                                                                           \
    "  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"               \
    "  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 1}\n"                   \
    "  - {name: camera, topic: \"cameras/{site}/{device}/status\", qos: 1}\n"             \
    "devices:\n"                                                                           \
    "  - { source: water, site: dongtan, device: w01, name: \"东滩 1号站\", target: III }\n" \
    "  - { source: water, site: hengsha, device: w01, target: II }\n"                      \
    "  - { source: camera, site: dongtan, device: c09 }\n"                                 \
    "rules:\n"                                                                             \
    "  - { name: ph-high, kind: threshold, select: \"water/*/*/ph\", above: 9, for: 2m,\n"  \
    "      clear_below: 8.5, severity: major }\n"                                          \
    "  - { name: nh3-avg, kind: threshold, select: \"water/lake/*/nh3_n\", above: 1.0,\n"   \
    "      window: { agg: avg, over: 1h }, severity: warning }\n"

#define BULK 10000                      /* points of water/lake/w3/ph, one a second */

static struct it_broker broker;
static struct it_daemon dmn;
static bool started;
static char base[64];
static int64_t day0;                    /* local (+08:00) midnight three days ago */
static int64_t now0;                    /* the minute the backtest data ends near */

static void stop_all(void)
{
    if (!started)
        return;
    it_daemon_cleanup(&dmn);
    it_broker_stop(&broker);
    started = false;
}

/* Sum of the point counts of the series matching glob, through the API. */
static long long stored(const char *glob)
{
    struct iw_diag diag = { 0 };
    char path[256], *body = NULL;
    size_t len = 0;
    int status = 0;
    long long n = 0;
    cJSON *doc, *it;

    snprintf(path, sizeof(path), "/api/v1/series?match=%s", glob);
    cr_assert_eq(iw_http_request(base, "GET", path, NULL, NULL, &body, &len, &status, &diag), IW_OK,
                 "%s", iw_diag_first(&diag));
    doc = cJSON_Parse(body);
    cJSON_ArrayForEach(it, doc)
        n += (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "count"));
    cJSON_Delete(doc);
    free(body);
    return n;
}

static void wait_stored(const char *glob, long long want)
{
    long long deadline = it_now_ms() + 30000, n = 0;
    while (it_now_ms() < deadline && (n = stored(glob)) < want) {
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(n, want, "%s: %lld points stored, want %lld", glob, n, want);
}

static void publish(struct it_client *c, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void publish(struct it_client *c, const char *topic, const char *fmt, ...)
{
    char payload[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(payload, sizeof(payload), fmt, ap);
    va_end(ap);
    cr_assert_eq(it_publish_async(c, topic, payload, 1), 0, "%s %s", topic, payload);
}

/* The daemon, with a long series written into its store while it was stopped,
 * and the samples of the reports and the backtest published over MQTT. */
static void setup(void)
{
    struct iw_diag diag = { 0 };
    struct iw_store *st;
    struct iw_wbatch *b;
    const struct iw_series *s;
    int64_t now = iw_now_ms();

    day0 = (now + 8 * IW_MS_PER_HOUR) / IW_MS_PER_DAY * IW_MS_PER_DAY - 8 * IW_MS_PER_HOUR -
           3 * IW_MS_PER_DAY;
    now0 = (now - 40 * IW_MS_PER_MIN) / IW_MS_PER_MIN * IW_MS_PER_MIN;
    cr_assert_eq(it_broker_start(&broker), 0, "cannot start mosquitto");
    cr_assert_eq(it_daemon_start(&dmn, &broker, EXTRA), 0, "cannot start islewatchd");
    started = true;
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", dmn.http_port);

    it_daemon_stop(&dmn);
    struct iw_store_opts o = { .path = dmn.data };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    b = iw_wbatch_new();
    cr_assert_eq(iw_store_series_intern(st, "water/lake/w3/ph", 16, &s), IW_OK);
    for (int i = 0; i < BULK; i++)       /* pH 9.5 for 200 s in the middle: fires, resolves */
        iw_wbatch_put_point(b, s->id, now0 - 3 * IW_MS_PER_HOUR + i * 1000LL,
                            i >= 5000 && i < 5200 ? 9.5 : 7.0 + (i % 7) * 0.01, 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_free(b);
    iw_store_close(st);
    cr_assert_eq(it_daemon_restart(&dmn), 0, "cannot restart islewatchd");

    struct it_client *pub = it_client_new(&broker, "it-cliurl-pub");
    cr_assert_not_null(pub);
    static const double dongtan[] = { 0.4, 0.9, 1.4 }, hengsha[] = { 0.5, 0.7, 0.3 };
    for (int d = 0; d < 3; d++)
        for (int h = 0; h < 4; h++) {
            int64_t t = day0 + d * IW_MS_PER_DAY + (10 + h) * IW_MS_PER_HOUR;
            publish(pub, "sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":%g}", (long long)t,
                    dongtan[d]);
            publish(pub, "sensors/water/hengsha/w01", "{\"ts\":%lld,\"nh3_n\":%g,\"flag\":\"%s\"}",
                    (long long)t, hengsha[d], h == 3 ? "D" : "N");
        }
    for (int d = 0; d < 2; d++)
        for (int h = 1; h <= 24; h++)
            publish(pub, "sensors/air/dongtan/a01", "{\"ts\":%lld,\"pm25\":%d,\"o3\":%d}",
                    (long long)(day0 + d * IW_MS_PER_DAY + h * IW_MS_PER_HOUR), d ? 90 : 30, 60 + h);
    for (int m = 0; m < 30; m++)
        publish(pub, "cameras/dongtan/c01/status", "{\"ts\":%lld,\"online\":true}",
                (long long)(day0 + 10 * 1000 + m * IW_MS_PER_MIN));
    /* Backtest: w1 pH 9.5 at minutes 1..4 and 10..13; w2 NH3-N 1.5 then 0.8 from minute 10. */
    for (int i = 0; i < 20; i++) {
        double ph = (i >= 1 && i <= 4) || (i >= 10 && i <= 13) ? 9.5 : 7;
        publish(pub, "sensors/water/lake/w1", "{\"ts\":%lld,\"ph\":%g}",
                (long long)(now0 + i * IW_MS_PER_MIN), ph);
        publish(pub, "sensors/water/lake/w2", "{\"ts\":%lld,\"nh3_n\":%g}",
                (long long)(now0 + i * IW_MS_PER_MIN), i < 10 ? 1.5 : 0.8);
    }
    cr_assert_eq(it_flush(pub, 20000), 0);
    it_client_free(pub);
    wait_stored("water/*/*/nh3_n", 2 * 12 + 20);
    wait_stored("air/*/*/*", 2 * 48);
    wait_stored("camera/*/*/online", 30);
    wait_stored("water/lake/*/ph", 20 + BULK);
}

TestSuite(cli_url, .init = setup, .fini = stop_all, .timeout = 180);

/* Run the CLI; its stdout (owned) and exit status. */
static char *cli(int *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *cli(int *rc, const char *fmt, ...)
{
    char args[2048], *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    *rc = it_run(&out, "'%s' %s", it_bin("islewatch"), args);
    return out ? out : strdup("");
}

Test(cli_url, report_through_the_daemon_equals_the_database)
{
    static const char *const kinds[] = { "water", "air", "cameras" };
    static const char *const fmts[] = { "table", "csv" };
    long long from = day0, to = day0 + 3 * IW_MS_PER_DAY;

    for (size_t k = 0; k < 3; k++)
        for (size_t f = 0; f < 2; f++) {
            int rc_url, rc_db;
            char *via_url = cli(&rc_url, "report %s --url '%s' --from %lld --to %lld --format %s",
                                kinds[k], base, from, to, fmts[f]);
            char *via_db = cli(&rc_db, "report %s --db '%s' --config '%s' --from %lld --to %lld "
                               "--format %s", kinds[k], dmn.data, dmn.cfg, from, to, fmts[f]);
            cr_assert_eq(rc_url, 0, "%s %s --url: exit %d\n%s", kinds[k], fmts[f], rc_url, via_url);
            cr_assert_eq(rc_db, 0, "%s %s --db: exit %d\n%s", kinds[k], fmts[f], rc_db, via_db);
            cr_assert_not_null(strstr(via_url, "dongtan"), "%s", via_url);
            cr_assert_str_eq(via_url, via_db, "%s %s differs", kinds[k], fmts[f]);
            free(via_url);
            free(via_db);
        }
    /* The daemon's inventory applies: its name, its declared camera, its flagged samples. */
    int rc;
    char *out = cli(&rc, "report water --url '%s' --from %lld --to %lld --format csv", base, from, to);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(out, "东滩 1号站"), "%s", out);
    free(out);
    out = cli(&rc, "report cameras --url '%s' --from %lld --to %lld --format csv", base, from, to);
    cr_assert_not_null(strstr(out, "camera,dongtan,c09,"), "%s", out);
    free(out);
    /* HTML (its "generated" time differs between two runs) and --out. */
    out = cli(&rc, "report air --url '%s' --from %lld --to %lld --format html --out '%s/air.html' "
              "2>/dev/null && cat '%s/air.html'", base, from, to, dmn.dir, dmn.dir);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(out, "<!DOCTYPE html>"), "%s", out);
    cr_assert_not_null(strstr(out, "</html>"));
    free(out);
}

/* $ISLEWATCH_URL, which ack already honours, is the default --url of the
 * reading commands too: the daemon an operator lists alerts from is the one
 * they acknowledge them on. */
Test(cli_url, islewatch_url_is_the_default_of_the_reading_commands)
{
    char cmds[4][256];
    snprintf(cmds[0], sizeof(cmds[0]), "series --format json");
    snprintf(cmds[1], sizeof(cmds[1]), "alerts --format json");
    snprintf(cmds[2], sizeof(cmds[2]), "query 'water/*/*/nh3_n' --from %lld --to %lld --format json",
             (long long)day0, (long long)(day0 + 3 * IW_MS_PER_DAY));
    snprintf(cmds[3], sizeof(cmds[3]), "report water --from %lld --to %lld --format csv",
             (long long)day0, (long long)(day0 + 3 * IW_MS_PER_DAY));
    for (size_t i = 0; i < 4; i++) {
        int rc_url, rc_env;
        char *via_url = cli(&rc_url, "%s --url '%s'", cmds[i], base), *via_env = NULL;
        rc_env = it_run(&via_env, "ISLEWATCH_URL='%s' '%s' %s 2>&1", base, it_bin("islewatch"),
                        cmds[i]);
        cr_expect_eq(rc_url, 0, "%s: exit %d", cmds[i], rc_url);
        cr_expect_eq(rc_env, 0, "%s with ISLEWATCH_URL: exit %d\n%s", cmds[i], rc_env,
                     via_env ? via_env : "");
        cr_expect_str_eq(via_env ? via_env : "", via_url, "%s", cmds[i]);
        free(via_url);
        free(via_env);
    }
}

/* --config FILE, as ack and tail take it: the reading commands ask the daemon
 * that FILE configures, at its http.listen. */
Test(cli_url, the_reading_commands_take_the_daemon_from_its_config)
{
    char cmds[3][256];
    snprintf(cmds[0], sizeof(cmds[0]), "series --format json");
    snprintf(cmds[1], sizeof(cmds[1]), "alerts --format json");
    snprintf(cmds[2], sizeof(cmds[2]), "query 'water/*/*/nh3_n' --from %lld --to %lld --format json",
             (long long)day0, (long long)(day0 + 3 * IW_MS_PER_DAY));
    for (size_t i = 0; i < 3; i++) {
        int rc_url, rc_cfg;
        char *via_url = cli(&rc_url, "%s --url '%s'", cmds[i], base), *via_cfg = NULL;
        rc_cfg = it_run(&via_cfg, "env -u ISLEWATCH_URL '%s' %s --config '%s' 2>&1",
                        it_bin("islewatch"), cmds[i], dmn.cfg);
        cr_expect_eq(rc_url, 0, "%s: exit %d", cmds[i], rc_url);
        cr_expect_eq(rc_cfg, 0, "%s --config: exit %d\n%s", cmds[i], rc_cfg, via_cfg ? via_cfg : "");
        cr_expect_str_eq(via_cfg ? via_cfg : "", via_url, "%s", cmds[i]);
        free(via_url);
        free(via_cfg);
    }
}

Test(cli_url, report_errors_say_what_to_do)
{
    int rc;
    char *out;
    int dead = it_free_port();

    out = cli(&rc, "report water --url http://127.0.0.1:%d --from -1d --to now 2>&1", dead);
    cr_expect_eq(rc, 3, "unreachable daemon: exit %d", rc);
    cr_expect_not_null(strstr(out, "--db PATH"), "%s", out);
    cr_expect_not_null(strstr(out, "is islewatchd running"), "%s", out);
    free(out);
    /* Arguments only the daemon can judge (its time zone) come back as a 400: exit 2. */
    out = cli(&rc, "report air --url '%s' --from %lld --to %lld 2>&1", base,
              (long long)day0 + IW_MS_PER_DAY, (long long)day0);
    cr_expect_eq(rc, 2, "from after to: exit %d", rc);
    cr_expect_not_null(strstr(out, "from must be before to"), "%s", out);
    free(out);
    out = cli(&rc, "report air --url '%s' --tz Mars/Olympus --from -1d --to now 2>&1", base);
    cr_expect_eq(rc, 2);
    cr_expect_not_null(strstr(out, "Mars/Olympus"), "%s", out);
    free(out);
    out = cli(&rc, "report air --url '%s' --db '%s' --from -1d --to now 2>&1", base, dmn.data);
    cr_expect_eq(rc, 2, "--url with --db: exit %d", rc);
    free(out);
    out = cli(&rc, "report air --url '%s' --config '%s' --from -1d --to now 2>&1", base, dmn.cfg);
    cr_expect_eq(rc, 2, "--url with --config: exit %d", rc);
    cr_expect_not_null(strstr(out, "its own database and config"), "%s", out);
    free(out);
    /* An aggregate without a step is a usage error, as in the HTTP API, not raw points. */
    out = cli(&rc, "query 'water/*/*/*' --url '%s' --from -1d --agg max 2>&1", base);
    cr_expect_eq(rc, 2, "--agg without --step: exit %d", rc);
    cr_expect_not_null(strstr(out, "--agg needs --step"), "%s", out);
    free(out);
    /* A request the daemon refuses: its message, not its JSON. */
    out = cli(&rc, "query 'water/*/*/*' --url '%s' --from -30d --step 1s 2>&1", base);
    cr_expect_eq(rc, 2, "too many buckets: exit %d", rc);
    cr_expect_not_null(strstr(out, "answered 400: step=1000ms gives more than 1000000 buckets"), "%s", out);
    cr_expect_null(strstr(out, "{\"error\""), "%s", out);
    free(out);
}

Test(cli_url, backtest_through_the_daemon_equals_the_database)
{
    static const char *const fmts[] = { "table", "csv", "json" };
    long long from = now0 - 3 * IW_MS_PER_HOUR, to = now0 + 20 * IW_MS_PER_MIN;
    char *csv = NULL;

    for (size_t f = 0; f < 3; f++) {
        int rc_url, rc_db;
        char *via_url = cli(&rc_url, "backtest '%s' --url '%s' --from %lld --to %lld --format %s",
                            dmn.cfg, base, from, to, fmts[f]);
        char *via_db = cli(&rc_db, "backtest '%s' --db '%s' --from %lld --to %lld --format %s",
                           dmn.cfg, dmn.data, from, to, fmts[f]);
        cr_assert_eq(rc_url, 0, "%s --url: exit %d\n%s", fmts[f], rc_url, via_url);
        cr_assert_eq(rc_db, 0, "%s --db: exit %d\n%s", fmts[f], rc_db, via_db);
        cr_assert_str_eq(via_url, via_db, "%s differs", fmts[f]);
        if (f == 0)
            cr_assert_not_null(strstr(via_url, "Replayed 3 series, 10040 points"), "%s", via_url);
        if (f == 1)
            csv = strdup(via_url);
        free(via_url);
        free(via_db);
    }
    /* The long series, read a window at a time, fired and resolved once. */
    cr_assert_not_null(strstr(csv, "firing,major,ph-high,water,lake,w3,ph,"), "%s", csv);
    cr_assert_not_null(strstr(csv, "resolved,major,ph-high,water,lake,w3,ph,"), "%s", csv);
    free(csv);

    /* From minute 10 on, only 0.8 is in range: nh3-avg fires at --from only because its
     * window is primed with the 1.5s before --from, read through the daemon too. */
    int rc;
    csv = cli(&rc, "backtest '%s' --url '%s' --from %lld --to %lld --format csv --rule nh3-avg",
              dmn.cfg, base, (long long)(now0 + 10 * IW_MS_PER_MIN), to);
    cr_assert_eq(rc, 0, "%s", csv);
    char want[128];
    int64_t t10 = now0 + 10 * IW_MS_PER_MIN;
    char tb[40];
    snprintf(want, sizeof(want), "%s,firing,warning,nh3-avg,water,lake,w2,nh3_n,",
             iw_rfc3339_format(t10, tb, sizeof(tb)));
    cr_assert_not_null(strstr(csv, want), "want %s in\n%s", want, csv);
    free(csv);
}

Test(cli_url, backtest_errors_say_what_to_do)
{
    int rc;
    char *out;
    int dead = it_free_port();

    out = cli(&rc, "backtest '%s' --url http://127.0.0.1:%d --from -1h 2>&1", dmn.cfg, dead);
    cr_expect_eq(rc, 3, "unreachable daemon: exit %d", rc);
    cr_expect_not_null(strstr(out, "--db PATH"), "%s", out);
    free(out);
    out = cli(&rc, "backtest '%s' --url '%s' --db '%s' --from -1h 2>&1", dmn.cfg, base, dmn.data);
    cr_expect_eq(rc, 2, "--url with --db: exit %d", rc);
    cr_expect_not_null(strstr(out, "not both"), "%s", out);
    free(out);
}

/* `alerts --limit` takes a count: anything else is a usage error (exit 2), not "no limit". */
Test(cli_args, alerts_limit_must_be_a_count)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' alerts --limit abc --db /nonexistent-iw-db 2>&1", it_bin("islewatch"));
    cr_expect_eq(rc, 2, "--limit abc: exit %d: %s", rc, out ? out : "");
    cr_expect_not_null(out != NULL ? strstr(out, "--limit abc") : NULL, "%s", out ? out : "");
    free(out);
    rc = it_run(&out, "'%s' alerts --limit -3 --db /nonexistent-iw-db 2>&1", it_bin("islewatch"));
    cr_expect_eq(rc, 2, "--limit -3: exit %d", rc);
    free(out);
}

/* `--db` naming a directory that does not exist: every reading command says
 * so (exit 3) and leaves no directory (nor database) behind there. */
Test(cli_args, db_on_a_missing_directory_creates_nothing)
{
    static const char *const cmds[] = {
        "series", "query 'water/*/*/*'", "alerts", "report water --from -1d --to now",
        "report cameras --from -1d --to now", "backtest '%s/config/islewatch.yaml' --from -1h",
    };
    char parent[] = "/tmp/iw-cli-missing-XXXXXX", missing[64], cmd[512];
    struct stat sb;

    cr_assert_not_null(mkdtemp(parent));
    snprintf(missing, sizeof(missing), "%s/nope", parent);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char *out = NULL;
        snprintf(cmd, sizeof(cmd), cmds[i], getenv("IW_SOURCE_DIR") ? getenv("IW_SOURCE_DIR") : "../..");
        int rc = it_run(&out, "'%s' %s --db '%s' 2>&1", it_bin("islewatch"), cmd, missing);
        cr_expect_eq(rc, 3, "%s: exit %d: %s", cmd, rc, out ? out : "");
        cr_expect(out != NULL && strstr(out, missing) != NULL && strstr(out, "no such directory"),
                  "%s: the message names the path and says it is missing: %s", cmd, out ? out : "");
        cr_expect_neq(stat(missing, &sb), 0, "%s created %s", cmd, missing);
        rmdir(missing);
        free(out);
    }
    cr_assert_eq(rmdir(parent), 0);
}

/* The display column (CJK characters are two wide) where needle starts in line. */
static size_t display_col(const char *line, const char *needle)
{
    const char *end = strstr(line, needle);
    size_t col = 0;
    cr_assert_not_null(end, "\"%s\" not in \"%s\"", needle, line);
    for (const unsigned char *p = (const unsigned char *)line; p < (const unsigned char *)end; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;                   /* a continuation byte */
        col += *p >= 0xE3 && *p <= 0xE9 ? 2 : 1;   /* U+3000..U+9FFF: CJK, two columns */
    }
    return col;
}

/* Series named in Chinese (sites and devices are often named so) line up in
 * the tables of `series` and `query` like any other. */
Test(cli_args, tables_align_series_named_in_chinese)
{
    char dir[] = "/tmp/iw-cli-cjk-XXXXXX", db[64];
    struct iw_diag diag = { 0 };
    struct iw_store *st;
    const struct iw_series *s;
    static const char *const names[] = { "water/dongtan/w01/ph", "water/东滩/水站1/ph" };
    int64_t t0 = 1764417600000LL;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/data", dir);
    struct iw_store_opts o = { .path = db };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    struct iw_wbatch *b = iw_wbatch_new();
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(iw_store_series_intern(st, names[i], strlen(names[i]), &s), IW_OK);
        iw_wbatch_put_point(b, s->id, t0, 7.5, 0);
    }
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_free(b);
    iw_store_close(st);

    static const char *const cmds[] = { "series", "query 'water/*/*/ph' --from 0 --to now" };
    for (size_t k = 0; k < 2; k++) {
        char *out = NULL;
        cr_assert_eq(it_run(&out, "'%s' %s --db '%s'", it_bin("islewatch"), cmds[k], db), 0);
        char *l1 = strstr(out, "\nwater/dongtan/"), *l2 = strstr(out, "\nwater/东滩/");
        cr_assert(l1 != NULL && l2 != NULL, "%s", out);
        *strchr(l1 + 1, '\n') = '\0';
        *strchr(l2 + 1, '\n') = '\0';
        cr_expect_eq(display_col(l1 + 1, "2025-11-29T12:00:00.000Z"),
                     display_col(l2 + 1, "2025-11-29T12:00:00.000Z"), "%s:\n%s\n%s", cmds[k],
                     l1 + 1, l2 + 1);
        free(out);
    }
    /* An empty answer says why on stderr (stdout keeps just the header), exit 0. */
    static const struct { const char *cmd, *says; } empty[] = {
        { "series 'air/*/*/*'", "islewatch series: no stored series matches \"air/*/*/*\"" },
        { "query 'water/*/*/ph' --from 0 --to 1000",
          "islewatch query: no points of \"water/*/*/ph\" from 1970-01-01T00:00:00.000Z to "
          "1970-01-01T00:00:01.000Z" },
        { "alerts --rule 'nope*' --active", "islewatch alerts: no firing alert of a rule "
          "matching \"nope*\"" },
        { "alerts --format json", "islewatch alerts: no alert recorded yet" },
    };
    for (size_t k = 0; k < sizeof(empty) / sizeof(empty[0]); k++) {
        char *out = NULL;
        cr_assert_eq(it_run(&out, "'%s' %s --db '%s' 2>&1 >/dev/null", it_bin("islewatch"),
                            empty[k].cmd, db), 0, "%s", empty[k].cmd);
        cr_expect(out != NULL && strncmp(out, empty[k].says, strlen(empty[k].says)) == 0,
                  "%s: %s", empty[k].cmd, out ? out : "");
        free(out);
    }
    it_run(NULL, "rm -rf '%s'", dir);
}

/* A missing or extra argument is named on the first line (then the usage), exit 2. */
Test(cli_args, missing_and_extra_arguments_say_which)
{
    static const struct { const char *args, *first_line; } cases[] = {
        { "query", "islewatch query: missing GLOB" },
        { "query --from -1h", "islewatch query: missing GLOB" },
        { "query ''", "islewatch query: missing GLOB" },
        { "query a b", "islewatch query: unexpected argument \"b\"" },
        { "series a b", "islewatch series: unexpected argument \"b\"" },
        /* a query option given to series: not a complaint about the valid time -1h */
        { "series --from -1h", "islewatch series: --from is an option of query, not of series" },
        { "series --step 1m", "islewatch series: --step is an option of query, not of series" },
        { "alerts extra", "islewatch alerts: unexpected argument \"extra\"" },
        /* two places to read from: say so, as report and backtest do */
        { "series --url http://127.0.0.1:1", "islewatch series: --db and --url both given" },
        { "query 'a/*/*/*' --url http://127.0.0.1:1", "islewatch query: --db and --url both given" },
        { "alerts --url http://127.0.0.1:1", "islewatch alerts: --db and --url both given" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' %s --db /nonexistent-iw-db 2>&1 >/dev/null", it_bin("islewatch"),
                        cases[i].args);
        cr_expect_eq(rc, 2, "%s: exit %d", cases[i].args, rc);
        cr_expect(out != NULL && strncmp(out, cases[i].first_line, strlen(cases[i].first_line)) == 0,
                  "%s: the first line should start \"%s\":\n%s", cases[i].args, cases[i].first_line,
                  out ? out : "");
        free(out);
    }
}

/* A --url that is no http:// URL is a usage error (2), not an unreachable
 * daemon (3), and says how to write one. */
Test(cli_args, a_url_that_is_not_http_is_a_usage_error)
{
    static const char *const cmds[] = { "series", "alerts", "query 'a/*/*/*'", "tail" };
    for (size_t i = 0; i < 4; i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' %s --url notaurl 2>&1", it_bin("islewatch"), cmds[i]);
        cr_expect_eq(rc, 2, "%s: exit %d", cmds[i], rc);
        cr_expect(out != NULL && strstr(out, "notaurl is not an http:// URL") != NULL, "%s: %s",
                  cmds[i], out ? out : "");
        free(out);
        /* An empty one (an unset variable) is not the default daemon. */
        rc = it_run(&out, "'%s' %s --url '' 2>&1", it_bin("islewatch"), cmds[i]);
        cr_expect_eq(rc, 2, "%s --url '': exit %d", cmds[i], rc);
        cr_expect(out != NULL && strstr(out, "the daemon's URL is empty") != NULL, "%s: %s",
                  cmds[i], out ? out : "");
        free(out);
    }
}

/* A glob too long for the request line is refused with what to do, not cut
 * short (a cut glob matches other series, or none, without a word). */
Test(cli_args, a_glob_too_long_for_url_is_refused_not_cut)
{
    static const char *const cmds[] = { "query '%s' --from -1h", "series '%s'",
                                        "alerts --rule '%s'" };
    char glob[1301];
    memset(glob, '?', sizeof(glob) - 1);         /* each one is %3F in the URL */
    glob[sizeof(glob) - 1] = '\0';
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char args[2048], *out = NULL;
        snprintf(args, sizeof(args), cmds[i], glob);
        int rc = it_run(&out, "'%s' %s --url http://127.0.0.1:9 2>&1 >/dev/null",
                        it_bin("islewatch"), args);
        cr_expect_eq(rc, 2, "%.20s...: exit %d: %s", cmds[i], rc, out ? out : "");
        cr_expect(out != NULL && strstr(out, "too long for a request to the daemon") != NULL,
                  "%.20s...: %s", cmds[i], out ? out : "");
        free(out);
    }
}

/* A range that ends before it starts: exit 2, and the message shows both
 * times as understood (relative times and dates are easy to get backwards). */
Test(cli_args, a_reversed_range_shows_both_times)
{
    static const struct { const char *args, *needle; } cases[] = {
        { "query 'water/*/*/ph' --from 1764417600000 --to 1764414000000",
          "--from 2025-11-29T12:00:00.000Z is after --to 2025-11-29T11:00:00.000Z" },
        { "backtest '%s/config/islewatch.yaml' --from 1764417600000 --to 1764414000000",
          "--from 2025-11-29T12:00:00.000Z is after --to 2025-11-29T11:00:00.000Z" },
        { "report water --from 2025-11-29 --to 2025-11-29 --tz UTC",
          "from must be before to (from 2025-11-29T00:00:00.000Z, to 2025-11-29T00:00:00.000Z)" },
    };
    const char *src = getenv("IW_SOURCE_DIR") ? getenv("IW_SOURCE_DIR") : "../..";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char args[512], *out = NULL;
        snprintf(args, sizeof(args), cases[i].args, src);
        int rc = it_run(&out, "'%s' %s --db /nonexistent-iw-db 2>&1", it_bin("islewatch"), args);
        cr_expect_eq(rc, 2, "%s: exit %d", args, rc);
        cr_expect(out != NULL && strstr(out, cases[i].needle) != NULL, "%s: lacks \"%s\":\n%s",
                  args, cases[i].needle, out ? out : "");
        free(out);
    }
}

/* A device that stopped reporting longer ago than raw retention (90d) keeps its
 * minute and hour rollups (1y, 10y: SPEC §2, "for fast long-range queries"):
 * `query --step` still answers from them. */
/*
 * A database in a new directory dir (a mkdtemp template) holding series
 * `name` with n points, one a minute from t0 (values v, or 7 and 8 in turn
 * when v is NULL); db gets its path. Returns the store open, for what the
 * test does next (rollups, retention); the caller closes it.
 */
static struct iw_store *db_with_points(char *dir, char *db, size_t dblen, const char *name,
                                       int64_t t0, const double *v, int n, uint32_t *id)
{
    struct iw_diag diag = { 0 };
    struct iw_store *st;
    const struct iw_series *s;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, dblen, "%s/data", dir);
    struct iw_store_opts o = { .path = db };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    struct iw_wbatch *b = iw_wbatch_new();
    cr_assert_eq(iw_store_series_intern(st, name, strlen(name), &s), IW_OK);
    for (int i = 0; i < n; i++)
        iw_wbatch_put_point(b, s->id, t0 + i * IW_MS_PER_MIN, v ? v[i] : 7.0 + (i % 2), 0);
    cr_assert_eq(iw_store_write(st, b, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_wbatch_free(b);
    *id = s->id;
    return st;
}

/* islewatch query SERIES over [from, to] in format fmt, read from db. */
static int query_db(char **out, const char *series, int64_t from, int64_t to, const char *fmt,
                    const char *db)
{
    return it_run(out, "'%s' query '%s' --from %lld --to %lld --format %s --db '%s'",
                  it_bin("islewatch"), series, (long long)from, (long long)to, fmt, db);
}

Test(cli_args, query_steps_read_rollups_after_the_raw_points_expired)
{
    char dir[] = "/tmp/iw-cli-expired-XXXXXX", db[64];
    int64_t now = iw_now_ms();
    int64_t t0 = (now - 100 * IW_MS_PER_DAY) / IW_MS_PER_HOUR * IW_MS_PER_HOUR;
    uint32_t id;
    /* two hours, one sample a minute */
    struct iw_store *st = db_with_points(dir, db, sizeof(db), "water/old/w1/ph", t0, NULL, 120, &id);

    cr_assert_eq(iw_store_rollup_range(st, id, t0, t0 + 2 * IW_MS_PER_HOUR, true), IW_OK);
    cr_assert_eq(iw_store_retention(st, now, 90 * IW_MS_PER_DAY, 365 * IW_MS_PER_DAY,
                                    3650 * IW_MS_PER_DAY), IW_OK);
    iw_store_close(st);

    char *out = NULL;
    int rc = it_run(&out, "'%s' query 'water/old/w1/ph' --from %lld --to %lld --step 1h --agg count "
                    "--format json --db '%s'", it_bin("islewatch"), (long long)t0,
                    (long long)(t0 + 2 * IW_MS_PER_HOUR - 1), db);
    cr_expect_eq(rc, 0);
    char want[256];
    snprintf(want, sizeof(want), "[{\"series\":\"water/old/w1/ph\",\"points\":[[%lld,60],[%lld,60]]}]\n",
             (long long)t0, (long long)(t0 + IW_MS_PER_HOUR));
    cr_expect_str_eq(out ? out : "", want);
    free(out);
    it_run(NULL, "rm -rf '%s'", dir);
}

/* The other way round: storage.retention's 1h (and 1m) shorter than raw. The
 * hours' rollups expired, their points did not: a step of hours still counts
 * every point, as a step of minutes does. */
Test(cli_args, query_steps_read_points_after_the_hour_rollups_expired)
{
    char dir[] = "/tmp/iw-cli-hexpired-XXXXXX", db[64];
    int64_t now = iw_now_ms();
    int64_t t0 = iw_floor_to(now - 6 * IW_MS_PER_HOUR, 2 * IW_MS_PER_HOUR);   /* a 2h bucket */
    uint32_t id;
    /* two hours, one sample a minute */
    struct iw_store *st = db_with_points(dir, db, sizeof(db), "water/old/w1/ph", t0, NULL, 120, &id);

    cr_assert_eq(iw_store_rollup_range(st, id, t0, t0 + 2 * IW_MS_PER_HOUR, true), IW_OK);
    /* raw 90d, 1m 1h, 1h 1h: both rollups of those hours go, the points stay */
    cr_assert_eq(iw_store_retention(st, now, 90 * IW_MS_PER_DAY, IW_MS_PER_HOUR, IW_MS_PER_HOUR),
                 IW_OK);
    iw_store_close(st);

    static const char *const steps[] = { "1h", "2h", "1m" };
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL, want[256];
        int rc = it_run(&out, "'%s' query 'water/old/w1/ph' --from %lld --to %lld --step %s "
                        "--agg count --format json --db '%s'", it_bin("islewatch"), (long long)t0,
                        (long long)(t0 + 2 * IW_MS_PER_HOUR - 1), steps[i], db);
        cr_expect_eq(rc, 0);
        if (i == 0)
            snprintf(want, sizeof(want), "[[%lld,60],[%lld,60]]", (long long)t0,
                     (long long)(t0 + IW_MS_PER_HOUR));
        else if (i == 1)
            snprintf(want, sizeof(want), "[[%lld,120]]", (long long)t0);
        else
            snprintf(want, sizeof(want), "[%lld,1]", (long long)(t0 + 119 * IW_MS_PER_MIN));
        cr_expect(out != NULL && strstr(out, want) != NULL, "--step %s: want %s in %s", steps[i],
                  want, out ? out : "");
        free(out);
    }
    it_run(NULL, "rm -rf '%s'", dir);
}

/* A time without its zone is not RFC 3339; the message shows one that is, so
 * the user sees what is missing rather than being told a format by name. */
/* --to alone reads the hour before it (as --from -1h does before now), not
 * "--from is after --to" about a --from that was never given. */
Test(cli_args, query_to_alone_reads_the_hour_before_it)
{
    char dir[] = "/tmp/iw-cli-toalone-XXXXXX", db[64];
    int64_t t0 = iw_floor_to(iw_now_ms() - 5 * IW_MS_PER_HOUR, IW_MS_PER_HOUR);
    uint32_t id;
    /* two hours, one sample a minute; --to t0 + 90m reads t0 + 30m .. t0 + 90m */
    iw_store_close(db_with_points(dir, db, sizeof(db), "water/old/w1/ph", t0, NULL, 120, &id));

    char *out = NULL, want[256];
    int rc = it_run(&out, "'%s' query 'water/old/w1/ph' --to %lld --step 1h --agg count "
                    "--format json --db '%s' 2>&1", it_bin("islewatch"),
                    (long long)(t0 + 90 * IW_MS_PER_MIN), db);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, out ? out : "");
    snprintf(want, sizeof(want), "[{\"series\":\"water/old/w1/ph\",\"points\":[[%lld,30],[%lld,31]]}]\n",
             (long long)t0, (long long)(t0 + IW_MS_PER_HOUR));
    cr_expect_str_eq(out ? out : "", want);
    free(out);
    it_run(NULL, "rm -rf '%s'", dir);
}

Test(cli_args, a_time_without_zone_is_refused_with_an_example)
{
    static const char *const cases[] = {
        "query 'water/*/*/ph' --from 2026-11-29T10:00:00 --to now",
        "query 'water/*/*/ph' --from -1h --to 2026-11-29",
        "alerts --since 2026-11-29T10:00:00",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' %s --db /nonexistent-iw-db 2>&1", it_bin("islewatch"), cases[i]);
        cr_expect_eq(rc, 2, "%s: exit %d", cases[i], rc);
        cr_expect(out != NULL && strstr(out, "2026-11-29T10:00:00Z") != NULL &&
                  strstr(out, "+08:00") != NULL, "%s: no example of a valid time:\n%s", cases[i],
                  out ? out : "");
        free(out);
    }
}

/* `islewatch help query` is `islewatch query --help`; an option written before
 * the command is not taken for a command name but placed where it goes. */
Test(cli_args, help_command_and_options_before_the_command)
{
    char *out = NULL;
    int rc = it_run(&out, "'%s' help query", it_bin("islewatch"));
    cr_expect_eq(rc, 0, "exit %d", rc);
    cr_expect(out != NULL && strncmp(out, "Usage: islewatch query GLOB", 27) == 0, "%s", out);
    free(out);
    rc = it_run(&out, "'%s' help nosuch 2>&1", it_bin("islewatch"));
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect(out != NULL && strstr(out, "unknown command \"nosuch\"\n") != NULL, "%s", out);
    free(out);
    rc = it_run(&out, "'%s' qurey 2>&1", it_bin("islewatch"));
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect(out != NULL && strstr(out, "unknown command \"qurey\" (did you mean \"query\"?)")
              != NULL, "%s", out);
    free(out);
    rc = it_run(&out, "'%s' --db /nonexistent-iw-db series 2>&1", it_bin("islewatch"));
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect(out != NULL && strstr(out, "islewatch series --db") != NULL, "%s", out);
    free(out);
}

/* A report name the CLI does not know, or a word too many, is named in the
 * error, not answered with the list as if nothing had been given. */
Test(cli_args, report_names_the_word_it_does_not_know)
{
    static const struct { const char *args, *needle; } cases[] = {
        { "report soil --from -1d --to now", "\"soil\"" },
        { "report water extra --from -1d --to now", "\"extra\"" },
        { "report --from -1d --to now", "water, air or cameras" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' %s --db /nonexistent-iw-db 2>&1 | head -1",
                        it_bin("islewatch"), cases[i].args);
        cr_expect_eq(rc, 0);
        cr_expect(out != NULL && strstr(out, cases[i].needle) != NULL, "%s: lacks %s:\n%s",
                  cases[i].args, cases[i].needle, out ? out : "");
        free(out);
    }
}

/* Tables and CSV are read by people: a mercury reading of 0.00008 mg/L and
 * a coliform count of 2400000 per litre print as written, not as 8e-05 and
 * 2.4e+06, and still read back as the same number. */
Test(cli_args, query_prints_small_and_large_values_without_exponents)
{
    char dir[] = "/tmp/iw-cli-digits-XXXXXX", db[64];
    int64_t t0 = (iw_now_ms() - IW_MS_PER_DAY) / IW_MS_PER_MIN * IW_MS_PER_MIN;
    static const double v[] = { 0.00008, 0.0000123456789, 2400000, 1e16 };
    uint32_t id;

    iw_store_close(db_with_points(dir, db, sizeof(db), "water/s/w1/hg", t0, v, 4, &id));

    static const char *const fmts[] = { "table", "csv" };
    for (size_t f = 0; f < 2; f++) {
        char *out = NULL;
        int rc = query_db(&out, "water/s/w1/hg", t0, t0 + 3 * IW_MS_PER_MIN, fmts[f], db);
        cr_expect_eq(rc, 0);
        cr_expect(out != NULL && strstr(out, "0.00008") && strstr(out, "0.0000123456789") &&
                  strstr(out, "2400000") && strstr(out, "10000000000000000") &&
                  !strstr(out, "e-") && !strstr(out, "e+"),
                  "%s:\n%s", fmts[f], out ? out : "");
        free(out);
    }
    it_run(NULL, "rm -rf '%s'", dir);
}

/* A stored value reads back as itself in every format: cJSON's own printing
 * rounds 0.30000000000000004 to 0.3 and 9007199254740992 to 15 digits. */
Test(cli_args, query_values_read_back_exactly_in_every_format)
{
    char dir[] = "/tmp/iw-cli-exact-XXXXXX", db[64];
    int64_t t0 = (iw_now_ms() - IW_MS_PER_DAY) / IW_MS_PER_MIN * IW_MS_PER_MIN;
    static const double v[] = { 0.30000000000000004, 9007199254740992.0, -9007199254740990.0 };
    uint32_t id;

    iw_store_close(db_with_points(dir, db, sizeof(db), "water/s/w1/tp", t0, v, 3, &id));

    static const char *const fmts[] = { "json", "table", "csv" };
    for (size_t f = 0; f < 3; f++) {
        char *out = NULL;
        int rc = query_db(&out, "water/s/w1/tp", t0, t0 + 2 * IW_MS_PER_MIN, fmts[f], db);
        cr_expect_eq(rc, 0);
        if (f == 0) {                              /* JSON: any text that reads back */
            const double *want = v;
            cJSON *doc = out ? cJSON_Parse(out) : NULL;
            cJSON *pts = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points");
            cr_expect_eq(cJSON_GetArraySize(pts), 3, "%s", out ? out : "");
            for (int i = 0; i < 3 && i < cJSON_GetArraySize(pts); i++)
                cr_expect(cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(pts, i), 1))
                          == want[i], "point %d of %s", i, out);
            cJSON_Delete(doc);
        } else {                                   /* people read these: digits as stored */
            cr_expect(out != NULL && strstr(out, "0.30000000000000004") &&
                      strstr(out, "9007199254740992") && strstr(out, "-9007199254740990"),
                      "%s:\n%s", fmts[f], out ? out : "");
        }
        free(out);
    }
    it_run(NULL, "rm -rf '%s'", dir);
}

/* Option errors found by getopt name the command as the user typed it. */
Test(cli_args, option_errors_name_the_command)
{
    static const struct { const char *args, *first_line; } cases[] = {
        { "query x --bogus", "islewatch query: unrecognized option '--bogus'" },
        { "alerts --since", "islewatch alerts: option '--since' requires an argument" },
        { "report water --from", "islewatch report: option '--from' requires an argument" },
        { "ack --nope x", "islewatch ack: unrecognized option '--nope'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' %s 2>&1 >/dev/null", it_bin("islewatch"), cases[i].args);
        cr_expect_eq(rc, 2, "%s: exit %d", cases[i].args, rc);
        cr_expect(out != NULL && strncmp(out, cases[i].first_line, strlen(cases[i].first_line)) == 0,
                  "%s: the first line should start \"%s\":\n%s", cases[i].args, cases[i].first_line,
                  out ? out : "");
        free(out);
    }
}

/* `alerts --active` lists the firing alerts in the order they were published
 * (seq), like the history, not in the order of their random ids. */
Test(cli_args, active_alerts_are_in_publish_order)
{
    char dir[] = "/tmp/iw-cli-active-XXXXXX", db[64];
    struct iw_diag diag = { 0 };
    struct iw_store *st;
    static const struct { const char *id; int seq; } rows[] = {
        { "0aaaaaaaaaaaaaaa", 3 }, { "5bbbbbbbbbbbbbbb", 1 }, { "fccccccccccccccc", 2 },
    };

    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/data", dir);
    struct iw_store_opts o = { .path = db };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    for (size_t i = 0; i < 3; i++) {
        char key[64], json[256];
        snprintf(key, sizeof(key), "active/%s", rows[i].id);
        snprintf(json, sizeof(json), "{\"id\":\"%s\",\"seq\":%d,\"rule\":\"r\",\"status\":\"firing\","
                 "\"ts\":\"2026-01-01T00:00:00.000Z\"}", rows[i].id, rows[i].seq);
        cr_assert_eq(iw_store_meta_put(st, key, json, strlen(json)), IW_OK);
    }
    iw_store_close(st);

    char *out = NULL;
    cr_assert_eq(it_run(&out, "'%s' alerts --active --format json --db '%s'", it_bin("islewatch"),
                        db), 0);
    cJSON *doc = cJSON_Parse(out), *a;
    int want = 1;
    cr_assert(cJSON_IsArray(doc) && cJSON_GetArraySize(doc) == 3, "%s", out);
    cJSON_ArrayForEach(a, doc)
        cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "seq")), want++, "%s", out);
    cJSON_Delete(doc);
    free(out);
    /* --limit keeps the newest, as for the history */
    cr_assert_eq(it_run(&out, "'%s' alerts --active --limit 2 --format csv --db '%s'",
                        it_bin("islewatch"), db), 0);
    cr_expect(out != NULL && strncmp(strchr(out, '\n') + 1, "2,", 2) == 0 &&
              strstr(out, "\n3,") != NULL && strstr(out, "\n1,") == NULL, "%s", out);
    free(out);
    it_run(NULL, "rm -rf '%s'", dir);
}

/* The alerts table shows each alert's id: `islewatch ack ID` needs it, and
 * ack's help and its "no firing alert" hint send the operator to
 * `islewatch alerts --active` to find it. */
Test(cli_args, alerts_table_shows_the_id_ack_takes)
{
    char dir[] = "/tmp/iw-cli-alertid-XXXXXX", db[64];
    struct iw_diag diag = { 0 };
    struct iw_store *st;
    static const char json[] = "{\"id\":\"3f09a1c2b4d5e6f7\",\"seq\":1,\"rule\":\"r\","
                               "\"status\":\"firing\",\"site\":\"s\",\"device\":\"d\","
                               "\"ts\":\"2026-01-01T00:00:00.000Z\"}";

    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/data", dir);
    struct iw_store_opts o = { .path = db };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(iw_store_meta_put(st, "active/3f09a1c2b4d5e6f7", json, strlen(json)), IW_OK);
    iw_store_close(st);

    char *out = NULL;
    cr_assert_eq(it_run(&out, "'%s' alerts --active --db '%s'", it_bin("islewatch"), db), 0);
    cr_expect(out != NULL && strstr(out, " ID ") != NULL, "no ID column: %s", out);
    cr_expect(out != NULL && strstr(out, "\n1      3f09a1c2b4d5e6f7 2026-01-01T00:00:00.000Z ") != NULL,
              "the row does not show the id: %s", out);
    free(out);
    it_run(NULL, "rm -rf '%s'", dir);
}

/* A fresh directory made from template dir (mkdtemp) with islewatch.yaml in it
 * holding text (a printf format whose %s is the directory); its path in cfg. */
static void temp_config(char *dir, char *cfg, size_t cap, const char *text)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cfg, cap, "%s/islewatch.yaml", dir);
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, text, dir);
    cr_assert_eq(fclose(f), 0);
}

/* A config whose daemon has no HTTP API: say so, and name its database. */
Test(cli_args, a_config_without_http_says_to_read_the_database)
{
    char dir[] = "/tmp/iw-cli-cfg-XXXXXX", cfg[64], *out = NULL;

    temp_config(dir, cfg, sizeof(cfg), "http:\n  listen: \"off\"\nstorage:\n  path: %s/data\n");
    int rc = it_run(&out, "'%s' alerts --config '%s' 2>&1", it_bin("islewatch"), cfg);
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect(out != NULL && strstr(out, "http.listen") != NULL && strstr(out, "--db") != NULL
              && strstr(out, "/data") != NULL, "%s", out ? out : "");
    free(out);
    it_run(NULL, "rm -rf '%s'", dir);
}

/* `ack --config FILE` whose http section names no token_file: the daemon
 * refuses every change (SPEC §7), and the message says what to set. */
Test(cli_args, ack_with_a_config_without_token_file_says_to_set_one)
{
    char dir[] = "/tmp/iw-cli-ack-XXXXXX", cfg[64], *out = NULL;

    temp_config(dir, cfg, sizeof(cfg), "http:\n  listen: 127.0.0.1:1\n# %s\n");
    int rc = it_run(&out, "env -u ISLEWATCH_TOKEN '%s' ack 0123456789abcdef --config '%s' 2>&1",
                    it_bin("islewatch"), cfg);
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect(out != NULL && strstr(out, cfg) != NULL && strstr(out, "sets no http.token_file"),
              "%s", out ? out : "");
    free(out);
    it_run(NULL, "rm -rf '%s'", dir);
}
