/*
 * The standards end to end through a real broker (SPEC §4): a day of
 * per-minute air samples gives the hourly and daily AQI series and alerts
 * computed independently below; water samples crossing the target class give
 * the class series and alerts; `islewatch report` over that data gives the
 * right ratios.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "it.h"
#include "schema_check.h"

#define H 3600000LL
#define AIR_SRC "sources:\n  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 1}\n"
#define WATER_SRC "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
/* An hourly air_quality rule, level 3 and up, severity by level. */
#define AQI_HOURLY_RULE                                                                     \
    "rules:\n"                                                                              \
    "  - {name: aqi-hourly, kind: air_quality, select: \"air/*/*\", mode: hourly,\n"        \
    "     min_level: 3, severity: {3: warning, 4: major, 5: critical}}\n"

/* Local midnight (Asia/Shanghai, +08:00) three days ago, in ms. */
static long long day_start(void)
{
    long long now = (long long)time(NULL) * 1000;
    long long local = now + 8 * H;
    return (local / (24 * H)) * (24 * H) - 8 * H - 3 * 24 * H;
}

/* PM2.5 by hour (H-1h, H]: hours 0-5 at 35, 6-11 at 80, 12-23 at 20 (μg/m³). */
static double pm25_of_hour(int k) { return k < 6 ? 35 : k < 12 ? 80 : 20; }

static cJSON *query(const struct it_daemon *d, const char *series, long long from, long long to)
{
    char *out = NULL;
    cr_assert_eq(it_run(&out, "%s query '%s' --from %lld --to %lld --db %s --format json",
                        it_bin("islewatch"), series, from, to, d->data), 0);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "%s", out);
    free(out);
    return doc;
}

static int count_points(const struct it_daemon *d, const char *series, long long from, long long to)
{
    cJSON *doc = query(d, series, from, to);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points"));
    cJSON_Delete(doc);
    return n;
}

static bool wait_points(const struct it_daemon *d, const char *series, long long from, long long to,
                        int want)
{
    long long end = it_now_ms() + 60000;
    while (it_now_ms() < end) {
        if (count_points(d, series, from, to) >= want)
            return true;
        struct timespec ts = { 0, 200 * 1000000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

Test(standards, a_day_of_minute_air_samples_gives_hourly_and_daily_aqi, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long d0 = day_start();
    cJSON *schema = load_schema();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        AIR_SRC
        "rules:\n"
        "  - {name: aqi-hourly, kind: air_quality, select: \"air/*/*\", standard: HJ633-2026,\n"
        "     mode: hourly, min_level: 3, severity: {3: warning, 4: major, 5: critical}}\n"
        "  - {name: aqi-daily, kind: air_quality, select: \"air/*/*\", standard: HJ633-2026,\n"
        "     mode: daily, min_level: 2, severity: info}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/+/+/dongtan/a01", 1), 0);

    for (int i = 1; i <= 1440; i++) {
        char p[256];
        int k = (i - 1) / 60;
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"pm25\":%g,\"pm10\":20,\"so2\":5,\"no2\":10,"
                 "\"co\":0.5,\"o3\":20}", d0 + (long long)i * 60000, pm25_of_hour(k));
        cr_assert_eq(it_publish_async(dev, "sensors/air/dongtan/a01", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 60000), 0);
    cr_assert(wait_points(&d, "air/dongtan/a01/aqi", d0, d0 + 24 * H, 24), "24 hourly AQI points");
    cr_assert(wait_points(&d, "air/dongtan/a01/aqi_daily", d0, d0 + 24 * H, 1), "one daily AQI point");

    /* Hourly (HJ 633-2026 real-time: 1-h values, PM on the 24-h breakpoints):
     * PM2.5 35 -> 50; 80 -> ceil(100 + 50/55*20) = 119; 20 -> ceil(20*50/35) = 29. */
    cJSON *doc = query(&d, "air/dongtan/a01/aqi", d0, d0 + 24 * H), *p;
    int k = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
        long long ts = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
        double v = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
        double want = k < 6 ? 50 : k < 12 ? 119 : 29;
        cr_expect_eq(ts, d0 + (long long)(k + 1) * H, "hour %d stamped at its end", k);
        cr_expect_eq(v, want, "hour %d: AQI %g, want %g", k, v, want);
        k++;
    }
    cr_assert_eq(k, 24);
    cJSON_Delete(doc);

    /* Daily: PM2.5 mean (6*35 + 6*80 + 12*20)/24 = 38.75 -> 39 (GB/T 8170) -> ceil(50 + 2*4) = 58;
     * NO2 10 -> 13, CO 0.5 -> 13, PM10 20, SO2 2, O3 8-h max 20 -> 10. AQI 58, level 2 (良). */
    doc = query(&d, "air/dongtan/a01/aqi_daily", d0, d0 + 24 * H);
    p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points"), 0);
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1)), 58.0);
    cr_assert_eq((long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0)), d0 + 24 * H);
    cJSON_Delete(doc);

    /* Alerts: hourly level 3 from the hour ending 07:00, resolved at 13:00; daily level 2. */
    bool fired = false, resolved = false, daily = false;
    struct it_msg *m;
    while ((m = it_next(sub, 3000)) != NULL) {
        if (m->len == 0) {                       /* a retained state cleared on resolve */
            it_msg_free(m);
            continue;
        }
        cJSON *a = cJSON_Parse(m->payload);
        cr_assert_null(validate(schema, schema, a, "alert"), "%s", m->payload);
        const char *rule = cJSON_GetStringValue(cJSON_GetObjectItem(a, "rule"));
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(a, "status"));
        const char *ts = cJSON_GetStringValue(cJSON_GetObjectItem(a, "ts"));
        long long t = 0;
        struct tm tm = {0};
        if (ts && strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm))
            t = (long long)timegm(&tm) * 1000;
        if (strcmp(rule, "aqi-hourly") == 0 && strcmp(st, "firing") == 0) {
            fired = true;
            cr_expect_eq(t, d0 + 7 * H, "fires at the close of the hour ending 07:00: %s", ts);
            cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "value")), 119.0);
            cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "severity")), "warning");
            cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")), "three days old: late");
        } else if (strcmp(rule, "aqi-hourly") == 0 && strcmp(st, "resolved") == 0) {
            resolved = true;
            cr_expect_eq(t, d0 + 13 * H, "resolves at the hour ending 13:00: %s", ts);
        } else if (strcmp(rule, "aqi-daily") == 0 && strcmp(st, "firing") == 0) {
            daily = true;
            cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "value")), 58.0);
        }
        cJSON_Delete(a);
        it_msg_free(m);
    }
    cr_expect(fired, "hourly AQI alert fired");
    cr_expect(resolved, "hourly AQI alert resolved");
    cr_expect(daily, "daily AQI alert fired at level 2");

    /* The report: one valid day, AQI 58 <= 100: 优良天数比例 1.0. */
    char *out = NULL;
    char from[40], to[40];
    snprintf(from, sizeof(from), "%lld", d0);
    snprintf(to, sizeof(to), "%lld", d0 + 24 * H);
    cr_assert_eq(it_run(&out, "%s report air --from %s --to %s --db %s --format csv", it_bin("islewatch"),
                        from, to, d.data), 0);
    cr_assert(strstr(out, "58") != NULL, "daily AQI 58 in the report: %s", out);
    cr_assert(strstr(out, "1.0000") != NULL, "good-day ratio 1.0000 in the report: %s", out);
    free(out);

    cJSON_Delete(schema);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * Hourly values, one message per hour stamped at the hour's end, for several
 * devices sharing one shard: each message closes an hour, so a shard that
 * handed a message's samples to the rules in two parts would close the hour
 * on the first part and lose the rest (an AQI computed without some
 * pollutants, marked invalid). Every hour must give the full AQI.
 */
Test(standards, hourly_air_messages_reach_the_rules_whole, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long d0 = day_start();
    enum { DEVICES = 4, HOURS = 48 };

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        AIR_SRC
        "storage:\n  path: @DATA@\n  shards: 1\n"
        "rules:\n"
        "  - {name: aqi-hourly, kind: air_quality, select: \"air/*/*\", standard: HJ633-2026,\n"
        "     mode: hourly, min_level: 3, severity: warning}\n"), 0);
    struct it_client *dev = it_client_new(&b, "dev");
    for (int h = 1; h <= HOURS; h++)
        for (int k = 0; k < DEVICES; k++) {
            char topic[64], p[256];
            snprintf(topic, sizeof(topic), "sensors/air/whole/a%d", k);
            /* PM2.5 35 -> IAQI 50, the AQI; the others lower. */
            snprintf(p, sizeof(p), "{\"ts\":%lld,\"so2\":5,\"no2\":10,\"co\":0.5,\"o3\":20,"
                     "\"pm10\":20,\"pm25\":35}", d0 + (long long)h * H);
            cr_assert_eq(it_publish_async(dev, topic, p, 1), 0);
        }
    cr_assert_eq(it_flush(dev, 60000), 0);
    for (int k = 0; k < DEVICES; k++) {
        char series[64];
        snprintf(series, sizeof(series), "air/whole/a%d/aqi", k);
        cr_assert(wait_points(&d, series, d0, d0 + HOURS * H, HOURS), "%s: %d hourly AQI points",
                  series, HOURS);
        cJSON *doc = query(&d, series, d0, d0 + HOURS * H), *p;
        int n = 0;
        const cJSON *flags = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "flags");
        cr_expect_null(flags, "%s has flagged points: %s", series,
                       flags ? cJSON_PrintUnformatted(flags) : "");
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
            long long ts = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
            cr_expect_eq(cJSON_GetArraySize(p), 2, "%s at %lld", series, ts);
            cr_expect_eq(cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1)), 50.0, "%s at %lld", series, ts);
            n++;
        }
        cr_expect_eq(n, HOURS, "%s", series);
        cJSON_Delete(doc);
    }
    it_client_free(dev);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(standards, water_crossing_the_target_class_raises_and_resolves, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long d0 = day_start();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        WATER_SRC
        "devices:\n  - {source: water, site: dongtan, device: w01, body: lake, target: II}\n"
        "rules:\n  - {name: water-class, kind: water_quality, select: \"water/*/*\", window: 1h,\n"
        "     severity: {below_target: major, worse_than_v: critical}}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/+/water-class/#", 1), 0);

    /* Hour 0-1: Class I/II. Hour 1-2: TP 0.08 (lake: IV). Hour 3+: clean again. */
    for (int i = 0; i < 6 * 60; i += 5) {
        char p[256];
        double tp = (i >= 60 && i < 120) ? 0.08 : 0.02;
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7.5,\"do\":7.0,\"nh3_n\":0.3,\"tp\":%g}",
                 d0 + (long long)i * 60000, tp);
        cr_assert_eq(it_publish_async(dev, "sensors/water/dongtan/w01", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 60000), 0);

    struct it_msg *m = it_next(sub, 15000);
    cr_assert_not_null(m, "no water-class alert");
    cJSON *a = cJSON_Parse(m->payload);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "firing");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "severity")), "major");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "metric")), "tp");
    cr_expect(strstr(m->payload, "worse_than_target") != NULL, "details list the parameters: %s",
              m->payload);
    cJSON_Delete(a);
    it_msg_free(m);
    m = NULL;
    for (int i = 0; i < 3 && (m = it_next(sub, 15000)) != NULL; i++) {
        if (strstr(m->payload, "\"status\":\"resolved\"") != NULL)
            break;
        it_msg_free(m);
        m = NULL;
    }
    cr_assert_not_null(m, "water-class alert never resolved");
    it_msg_free(m);

    /* The class series: 1..6 per message; the worst is IV (4) with the lake TP limits. */
    cJSON *doc = query(&d, "water/dongtan/w01/class", d0, d0 + 6 * H), *p;
    double worst = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
        double v = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
        if (v > worst)
            worst = v;
    }
    cr_expect_eq(worst, 4.0, "worst class %g", worst);
    cJSON_Delete(doc);

    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §1: "rules evaluate on the sample's own time". A water station's
 * backlog uploaded after newer data: the 劣V hours raise a late episode in
 * sample time, and the class series holds their class, through the daemon.
 */
Test(standards, a_water_backlog_older_than_live_data_is_judged_at_its_own_time, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long d0 = day_start();
    char p[256];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        WATER_SRC
        "rules:\n  - {name: water-class, kind: water_quality, select: \"water/*/*\", window: 1h,\n"
        "     severity: {below_target: major, worse_than_v: critical}}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/+/water-class/#", 1), 0);

    /* Live: hours 0-1 and 4-5 clean (NH3-N 0.3, class II), every 5 minutes. */
    for (int i = 0; i < 6 * 60; i += 5) {
        if (i >= 60 && i < 4 * 60)
            continue;
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"do\":7.0,\"nh3_n\":0.3}", d0 + (long long)i * 60000);
        cr_assert_eq(it_publish_async(dev, "sensors/water/dongtan/w09", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 60000), 0);
    cr_assert(wait_points(&d, "water/dongtan/w09/class", d0, d0 + 6 * H, 24), "live class points");
    struct it_msg *m = it_next(sub, 2000);
    cr_assert_null(m, "a clean station raised %s", m ? m->payload : "");

    /* Then the backlog of hours 1-4, in a burst: NH3-N 2.5 (劣V), older than
     * what was judged (stored faster than the rules take it: judged whole). */
    for (int i = 60; i < 4 * 60; i += 5) {
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"do\":7.0,\"nh3_n\":2.5}", d0 + (long long)i * 60000);
        cr_assert_eq(it_publish_async(dev, "sensors/water/dongtan/w09", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 60000), 0);
    m = it_next(sub, 20000);
    cr_assert_not_null(m, "the backlog raised no late alert");
    cJSON *a = cJSON_Parse(m->payload);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "firing");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")), "%s", m->payload);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "metric")), "nh3_n");
    cJSON_Delete(a);
    it_msg_free(m);

    /* The class at 3h: the hour (2h, 3h] is all 2.5: 劣V (6). */
    long long end = it_now_ms() + 30000;
    double v = 0;
    while (it_now_ms() < end && v != 6) {
        cJSON *doc = query(&d, "water/dongtan/w09/class", d0 + 3 * H, d0 + 3 * H);
        cJSON *pt = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points"), 0);
        v = pt != NULL ? cJSON_GetNumberValue(cJSON_GetArrayItem(pt, 1)) : 0;
        cJSON_Delete(doc);
        if (v != 6) {
            struct timespec ts = { 0, 200 * 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    cr_expect_eq(v, 6, "the class at 3h is %g", v);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §1, air_quality: hourly values of an outage uploaded after the live
 * ones resumed are judged on their own hours: their AQI points are written
 * and the late episode is raised and resolved (at the first live hour that
 * clears it), both marked late. They used to be dropped as out of order.
 */
Test(standards, an_air_backlog_older_than_live_data_is_judged_at_its_own_hours, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long d0 = day_start();
    char p[256];
    cJSON *schema = load_schema();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        AIR_SRC AQI_HOURLY_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/critical/aqi-hourly/#", 1), 0);   /* not active/ */

    /* Live: hours 1-3 and 6-8, PM2.5 35 (AQI 50); hours 4-5 lost. */
    for (int h = 1; h <= 8; h++) {
        if (h == 4 || h == 5)
            continue;
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"so2\":5,\"no2\":10,\"co\":0.5,\"o3\":20,"
                 "\"pm10\":20,\"pm25\":35}", d0 + (long long)h * H);
        cr_assert_eq(it_publish_async(dev, "sensors/air/dongtan/a40", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 60000), 0);
    cr_assert(wait_points(&d, "air/dongtan/a40/aqi", d0, d0 + 8 * H, 6), "live AQI points");
    struct it_msg *m = it_next(sub, 2000);
    cr_assert_null(m, "a clean station raised %s", m ? m->payload : "");

    /* The backlog: PM2.5 160 (IAQI 210, level 5) in hours 4 and 5. */
    for (int h = 4; h <= 5; h++) {
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"so2\":5,\"no2\":10,\"co\":0.5,\"o3\":20,"
                 "\"pm10\":20,\"pm25\":160}", d0 + (long long)h * H);
        cr_assert_eq(it_publish_async(dev, "sensors/air/dongtan/a40", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 60000), 0);
    static const char *const want[] = { "firing", "resolved" };
    static const double aqi[] = { 210, 50 };   /* hour 4's, then the live hour 6's */
    for (int i = 0; i < 2; i++) {       /* judged once the upload paused (10 s) */
        m = it_next(sub, 40000);
        cr_assert_not_null(m, "the backlog raised no %s alert", want[i]);
        cJSON *a = cJSON_Parse(m->payload);
        cr_assert_null(validate(schema, schema, a, "alert"), "%s", m->payload);
        cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), want[i], "%s",
                         m->payload);
        cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")), "%s", m->payload);
        cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "value")), aqi[i], "%s",
                     m->payload);
        cJSON_Delete(a);
        it_msg_free(m);
    }
    m = it_next(sub, 2000);
    cr_expect_null(m, "more than one episode: %s", m ? m->payload : "");
    it_msg_free(m);
    cJSON *doc = query(&d, "air/dongtan/a40/aqi", d0 + 4 * H, d0 + 5 * H), *pt;
    int n = 0;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
        cr_expect_eq(cJSON_GetNumberValue(cJSON_GetArrayItem(pt, 1)), 210.0);
        n++;
    }
    cr_expect_eq(n, 2, "AQI points of the backlog's hours: %d", n);
    cJSON_Delete(doc);
    cJSON_Delete(schema);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §4: an hour closes when the device reports a sample at or after its
 * end. One message of hourly values stamped at the end of a past hour (the
 * first from this station, which might be a minute backlog's first sample)
 * closes it once the upload pauses for 10 s: its alert comes within seconds,
 * not close_after (5 min) after it arrived.
 */
Test(standards, one_hourly_air_value_for_a_past_hour_raises_its_alert_within_seconds,
     .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    long long hour = (long long)time(NULL) * 1000 / H * H - H;
    cJSON *schema = load_schema();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        AIR_SRC AQI_HOURLY_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/+/aqi-hourly/#", 1), 0);
    char p[256];
    /* PM2.5 80 on the 24-h breakpoints (2026 real-time): ceil(100 + 50/55*20) = 119, level 3. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"pm25\":80,\"pm10\":20,\"so2\":5,\"no2\":10,\"co\":0.5,"
             "\"o3\":20}", hour);
    cr_assert_eq(it_publish(dev, "sensors/air/dongtan/a01", p, 1, false), 0);
    struct it_msg *m = it_next(sub, 40000);
    cr_assert_not_null(m, "no alert within 40 s of the hour's one hourly value");
    cJSON *a = cJSON_Parse(m->payload);
    cr_assert_null(validate(schema, schema, a, "alert"), "%s", m->payload);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "firing");
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "value")), 119.0, "%s", m->payload);
    cr_assert_eq(count_points(&d, "air/dongtan/a01/aqi", hour, hour), 1, "the AQI point at the hour's end");
    cJSON_Delete(a);
    it_msg_free(m);
    cJSON_Delete(schema);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}
