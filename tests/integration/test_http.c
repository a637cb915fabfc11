/*
 * The HTTP API of a real islewatchd (SPEC §7), with a real mosquitto: every
 * endpoint, the token on state changes, Prometheus text, series and query
 * after publishing samples, the SSE stream live and resumed with
 * Last-Event-ID, silences, ack, reload with a broken file, the dashboard,
 * and a port already in use.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "islewatch/http_client.h"
#include "islewatch/standards.h"
#include "islewatch/topic.h"
#include "it.h"

#define TOKEN "secret-token"
#define EXTRA                                                                           \
    "sources:\n"                                                                        \
    "  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"            \
    "rules:\n"                                                                          \
    "  - {name: hot, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5, "       \
    "severity: major}\n"

static struct it_broker broker;
static struct it_daemon daemon_;
static struct it_client *pub;
static bool started;
static char base[64];

static void stop_all(void)
{
    if (!started)
        return;
    it_client_free(pub);
    it_daemon_cleanup(&daemon_);
    it_broker_stop(&broker);
    started = false;
}

TestSuite(http, .fini = stop_all, .timeout = 60);

static void start(const char *extra)
{
    cr_assert_eq(it_broker_start(&broker), 0, "cannot start mosquitto");
    cr_assert_eq(it_daemon_start(&daemon_, &broker, extra), 0, "cannot start islewatchd");
    started = true;
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", daemon_.http_port);
    pub = it_client_new(&broker, "it-http-pub");
    cr_assert_not_null(pub);
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A request that must reach the daemon; returns the body (owned). */
static char *http(const char *method, const char *path, const char *token, const char *body,
                  int *status)
{
    struct iw_diag diag = {0};
    char *resp = NULL;
    size_t len = 0;
    cr_assert_eq(iw_http_request(base, method, path, token, body, &resp, &len, status, &diag),
                 IW_OK, "%s %s: %s", method, path, iw_diag_first(&diag));
    return resp;
}

static cJSON *get_json(const char *path)
{
    int status = 0;
    char *body = http("GET", path, NULL, NULL, &status);
    cr_assert_eq(status, 200, "GET %s: %d %s", path, status, body);
    cJSON *doc = cJSON_Parse(body);
    cr_assert_not_null(doc, "GET %s: not JSON: %.300s", path, body);
    free(body);
    return doc;
}

/* The whole response, head included, of a raw request (for headers). */
static char *raw(const char *request)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_.http_port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t n = 0, cap = 1 << 20;
    char *buf = calloc(1, cap);
    ssize_t r;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && buf != NULL);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
    while (n < cap - 1 && (r = recv(fd, buf + n, cap - 1 - n, 0)) > 0)
        n += (size_t)r;
    close(fd);
    return buf;
}

static const char *str(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? s : "";
}

static void publish(const char *topic, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void publish(const char *topic, const char *fmt, ...)
{
    char payload[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(payload, sizeof(payload), fmt, ap);
    va_end(ap);
    cr_assert_eq(it_publish(pub, topic, payload, 1, false), 0, "publish %s", payload);
}

/* Poll GET path until the array has at least n items (a deadline, not a fixed sleep). */
static cJSON *wait_array(const char *path, int n, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    for (;;) {
        cJSON *doc = get_json(path);
        if (cJSON_GetArraySize(doc) >= n)
            return doc;
        cr_assert(it_now_ms() < end, "GET %s: %d items after %d ms, want %d", path,
                  cJSON_GetArraySize(doc), timeout_ms, n);
        cJSON_Delete(doc);
        nap_ms(50);
    }
}

/* ======================================================================== */

Test(http, health_ready_and_prometheus_metrics)
{
    int status = 0;
    char *body, *resp;

    start(EXTRA);
    body = http("GET", "/healthz", NULL, NULL, &status);
    cr_expect_eq(status, 200);
    cr_expect_str_eq(body, "ok\n");
    free(body);
    body = http("GET", "/readyz", NULL, NULL, &status);
    cr_expect_eq(status, 200, "readyz: %s", body);
    free(body);

    resp = raw("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    cr_expect(strstr(resp, "HTTP/1.1 200") == resp, "%.100s", resp);
    cr_expect(strcasestr(resp, "\r\nContent-Type: text/plain; version=0.0.4") != NULL, "%.400s",
              resp);
    free(resp);

    body = http("GET", "/metrics", NULL, NULL, &status);
    cr_assert_eq(status, 200);
    /* Every sample line: name{labels} value, of a family declared by # TYPE before it. */
    char types[8192] = " ";
    int samples = 0;
    for (char *line = strtok(body, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[128], fam[140];
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[32];
            cr_assert_eq(sscanf(line + 7, "%127s %31s", name, type), 2, "%s", line);
            cr_expect(strstr("counter gauge histogram summary untyped", type) != NULL, "%s", line);
            snprintf(fam, sizeof(fam), "%s ", name);
            strncat(types, fam, sizeof(types) - strlen(types) - 1);
            continue;
        }
        cr_assert(line[0] != '#', "unknown comment line: %s", line);
        size_t nl = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
        cr_assert(nl > 0 && nl < sizeof(name) && !isdigit((unsigned char)line[0]), "bad name: %s",
                  line);
        memcpy(name, line, nl);
        name[nl] = '\0';
        const char *p = line + nl;
        if (*p == '{') {
            p = strchr(p, '}');
            cr_assert_not_null(p, "unclosed labels: %s", line);
            p++;
        }
        cr_assert_eq(*p, ' ', "no value: %s", line);
        char *end;
        (void)strtod(p + 1, &end);
        cr_expect(end != p + 1 && (*end == '\0' || *end == ' '), "bad value: %s", line);
        /* Histogram series carry a suffix on the family name. */
        static const char *const suffixes[] = { "_bucket", "_sum", "_count", "" };
        bool declared = false;
        for (size_t i = 0; i < 4 && !declared; i++) {
            size_t sl = strlen(suffixes[i]);
            if (nl > sl && strcmp(name + nl - sl, suffixes[i]) == 0) {
                snprintf(fam, sizeof(fam), " %.*s ", (int)(nl - sl), name);
                declared = strstr(types, fam) != NULL;
            }
        }
        cr_expect(declared, "%s has no # TYPE line before it", name);
        samples++;
    }
    cr_expect_gt(samples, 10);
    static const char *const spec[] = {
        "islewatch_messages_received_total", "islewatch_points_stored_total",
        "islewatch_messages_rejected_total", "islewatch_queue_depth",
        "islewatch_store_write_seconds", "islewatch_alerts_published_total",
        "islewatch_alerts_active", "islewatch_broker_connected",
        "islewatch_config_last_reload_successful",
    };
    for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), " %s ", spec[i]);
        cr_expect(strstr(types, want) != NULL, "SPEC §7 metric %s missing", spec[i]);
    }
    cr_expect(strstr(types, " islewatch_store_write_seconds ") != NULL);
    free(body);
}

/* The value of the sample line `sample` ("name" or "name{labels}") in GET /metrics; -1 if absent. */
static long long metric_now(const char *sample)
{
    int status = 0;
    char *body = http("GET", "/metrics", NULL, NULL, &status);
    size_t n = strlen(sample);
    long long v = -1;

    cr_assert_eq(status, 200, "GET /metrics: %d", status);
    for (const char *p = body; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
            v = (long long)strtod(p + n + 1, NULL);
            break;
        }
    }
    free(body);
    return v;
}

/* Poll /metrics until `sample` reaches `want` (a deadline, not a fixed sleep). */
static void wait_metric(const char *sample, long long want, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms, v;
    while ((v = metric_now(sample)) < want) {
        cr_assert(it_now_ms() < end, "%s is %lld after %d ms, want %lld", sample, v, timeout_ms,
                  want);
        nap_ms(50);
    }
}

#define DELAY_COUNT "islewatch_ingest_delay_seconds_count"
#define DELAY_LE10 "islewatch_ingest_delay_seconds_bucket{le=\"10\"}"
#define DELAY_INF "islewatch_ingest_delay_seconds_bucket{le=\"+Inf\"}"
#define DELAY_OLD "islewatch_ingest_delay_unobserved_total{reason=\"over_1h\"}"
#define DELAY_FUTURE "islewatch_ingest_delay_unobserved_total{reason=\"future\"}"
#define LAST_STORED "islewatch_last_stored_timestamp_seconds{source=\"water\"}"

/*
 * islewatch_ingest_delay_seconds: one observation per message stamped "now",
 * and islewatch_last_stored_timestamp_seconds moves to the time it was stored;
 * in a bucket of at most 10 s (a generous bound: this is not a timing test);
 * a day-old ts and a ts ahead of the clock are counted apart, not observed; a
 * message without a ts is neither. Each step waits for a counter to move, and
 * one connection's messages are handled in order, so a count that stays put
 * after a later message was counted is a message that was not observed.
 */
Test(http, ingest_delay_histogram_observes_fresh_timestamps_only)
{
    const char *topic = "sensors/water/dongtan/w01";

    start(EXTRA);
    long long c0 = metric_now(DELAY_COUNT), le0 = metric_now(DELAY_LE10);
    long long old0 = metric_now(DELAY_OLD), fut0 = metric_now(DELAY_FUTURE);
    cr_assert(c0 == 0 && le0 == 0 && old0 == 0 && fut0 == 0,
              "a fresh daemon: count %lld, le=10 %lld, over_1h %lld, future %lld", c0, le0, old0,
              fut0);

    cr_expect_eq(metric_now(LAST_STORED), 0, "nothing stored yet");

    long long before = wall_ms();
    publish(topic, "{\"ts\":%lld,\"ph\":7.1}", wall_ms());
    wait_metric(DELAY_COUNT, 1, 15000);
    long long after = wall_ms(), last = metric_now(LAST_STORED);
    cr_expect(last >= before / 1000 && last <= after / 1000, "last stored at %lld s, the message "
              "went out at %lld ms and was counted by %lld ms", last, before, after);
    cr_expect_eq(metric_now(DELAY_LE10), 1, "a message stamped now is durable within 10 s");
    cr_expect_eq(metric_now(DELAY_INF), 1);

    publish(topic, "{\"ts\":%lld,\"ph\":7.2}", wall_ms() - 86400000LL);
    wait_metric(DELAY_OLD, 1, 15000);
    cr_expect_eq(metric_now(DELAY_COUNT), 1, "a day-old ts is not observed");

    publish(topic, "{\"ts\":%lld,\"ph\":7.3}", wall_ms() + 60000);   /* within max_future_skew */
    wait_metric(DELAY_FUTURE, 1, 15000);
    cr_expect_eq(metric_now(DELAY_COUNT), 1, "a ts ahead of the clock is not observed");

    publish(topic, "{\"ph\":7.4}");
    publish(topic, "{\"ts\":%lld,\"ph\":7.5}", wall_ms());
    wait_metric(DELAY_COUNT, 2, 15000);
    wait_metric("islewatch_messages_stored_total{source=\"water\"}", 5, 15000);
    cr_expect_eq(metric_now(DELAY_COUNT), 2, "a message without ts is not observed");
    cr_expect_eq(metric_now(DELAY_INF), 2);
    cr_expect_eq(metric_now(DELAY_OLD), 1);
    cr_expect_eq(metric_now(DELAY_FUTURE), 1);
}

/*
 * SPEC §7 lists islewatch_alerts_published_total{rule,severity,status}: each
 * configured rule's series are there from the start, at 0, so that a fresh
 * daemon shows the metric and rate() sees the first alert; a rule a reload
 * adds gets them too.
 */
Test(http, alerts_published_total_has_every_rule_at_zero_from_the_start)
{
    start(EXTRA "  - {name: wq, kind: water_quality, select: \"water/*/*\", target: III}\n");
    cr_expect_eq(metric_now("islewatch_alerts_published_total{rule=\"hot\",severity=\"major\","
                            "status=\"firing\"}"), 0);
    cr_expect_eq(metric_now("islewatch_alerts_published_total{rule=\"hot\",severity=\"major\","
                            "status=\"resolved\"}"), 0);
    cr_expect_eq(metric_now("islewatch_alerts_published_total{rule=\"wq\",severity=\"major\","
                            "status=\"firing\"}"), 0, "below target: major");
    cr_expect_eq(metric_now("islewatch_alerts_published_total{rule=\"wq\",severity=\"critical\","
                            "status=\"firing\"}"), 0, "worse than V: critical");

    FILE *f = fopen(daemon_.cfg, "a");
    cr_assert_not_null(f);
    fputs("  - {name: cold, kind: threshold, select: \"water/*/*/temp\", below: 1, "
          "severity: info}\n", f);
    fclose(f);
    int status = 0;
    char *body = http("POST", "/api/v1/reload", TOKEN, NULL, &status);
    cr_assert_eq(status, 200, "%s", body);
    free(body);
    cr_expect_eq(metric_now("islewatch_alerts_published_total{rule=\"cold\",severity=\"info\","
                            "status=\"firing\"}"), 0);

    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", wall_ms() - 5000);
    wait_metric("islewatch_alerts_published_total{rule=\"hot\",severity=\"major\","
                "status=\"firing\"}", 1, 10000);
}

/* The value of `sample` in a /metrics text; -1 if absent. */
static double metric_in(const char *text, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/*
 * A Prometheus histogram's +Inf bucket is its _count, in every scrape, also
 * while samples are being observed (clients and recording rules divide one
 * by the other).
 */
Test(http, histogram_count_is_its_inf_bucket_while_messages_flow)
{
    static const char *const fams[] = { "islewatch_store_write_seconds",
                                        "islewatch_ingest_delay_seconds",
                                        "islewatch_store_batch_points" };
    int mismatches = 0;

    start(EXTRA);
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 40; i++) {
            char payload[96];
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%d}", wall_ms(), i);
            cr_assert_eq(it_publish_async(pub, "sensors/water/dongtan/w01", payload, 0), 0);
        }
        for (int k = 0; k < 5; k++) {
            int status = 0;
            char *body = http("GET", "/metrics", NULL, NULL, &status);
            cr_assert_eq(status, 200);
            for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
                char inf[128], count[128];
                snprintf(inf, sizeof(inf), "%s_bucket{le=\"+Inf\"}", fams[f]);
                snprintf(count, sizeof(count), "%s_count", fams[f]);
                double a = metric_in(body, inf), b = metric_in(body, count);
                cr_assert(a >= 0 && b >= 0, "%s or %s missing", inf, count);
                if (a != b && mismatches++ < 5)
                    cr_expect_eq(a, b, "%s %g but %s %g in the same scrape", inf, a, count, b);
            }
            free(body);
        }
    }
    cr_assert_eq(it_flush(pub, 10000), 0);
    cr_expect_eq(mismatches, 0, "%d scrapes had a _count other than the +Inf bucket", mismatches);
}

/* SPEC §7 "write batch sizes": a histogram of the points in each message's write. */
Test(http, write_batch_sizes_are_a_histogram_of_points_per_write)
{
    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":7}", wall_ms() - 120000);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":7,\"do\":6,\"tp\":0.1}",
            wall_ms() - 60000);
    wait_metric("islewatch_messages_stored_total{source=\"water\"}", 2, 15000);
    cr_expect_eq(metric_now("islewatch_store_batch_points_bucket{le=\"1\"}"), 1);
    cr_expect_eq(metric_now("islewatch_store_batch_points_bucket{le=\"2\"}"), 1);
    cr_expect_eq(metric_now("islewatch_store_batch_points_bucket{le=\"4\"}"), 2);
    cr_expect_eq(metric_now("islewatch_store_batch_points_bucket{le=\"+Inf\"}"), 2);
    cr_expect_eq(metric_now("islewatch_store_batch_points_sum"), 4);
    cr_expect_eq(metric_now("islewatch_store_batch_points_count"), 2);
}

/* Poll GET path until it answers `want` (a deadline, not a fixed sleep); returns the body. */
static char *wait_status(const char *path, int want, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    for (;;) {
        int status = 0;
        char *body = http("GET", path, NULL, NULL, &status);
        if (status == want)
            return body;
        cr_assert(it_now_ms() < end, "GET %s still %d after %d ms: %s", path, status, timeout_ms,
                  body);
        free(body);
        nap_ms(50);
    }
}

Test(http, readyz_follows_the_broker_connection)
{
    char *body;

    start(EXTRA);
    it_client_free(pub);
    pub = NULL;
    it_broker_kill(&broker);
    body = wait_status("/readyz", 503, 15000);
    cr_expect(strstr(body, "broker is not connected") != NULL, "%s", body);
    cr_expect(strstr(body, ");") == NULL && body[strlen(body) - 2] == ')',
              "one sentence, no dangling ';': %s", body);
    free(body);
    body = http("GET", "/healthz", NULL, NULL, &(int){0});
    cr_expect_str_eq(body, "ok\n", "alive while not ready");
    free(body);
    cr_assert_eq(it_broker_restart(&broker), 0);
    free(wait_status("/readyz", 200, 15000));
}

/* Start the daemon with its store writes failing while the file `fail`
 * exists (ISLEWATCH_TEST_FAIL_WRITES_IF); fail_now creates it. */
static void start_with_failing_writes(char *fail, size_t cap)
{
    snprintf(fail, cap, "/tmp/iw-failwrites-%d", (int)getpid());
    unlink(fail);
    setenv("ISLEWATCH_TEST_FAIL_WRITES_IF", fail, 1);
    start(EXTRA);
    unsetenv("ISLEWATCH_TEST_FAIL_WRITES_IF");
}

static void fail_now(const char *fail)
{
    FILE *f = fopen(fail, "w");
    cr_assert_not_null(f);
    fclose(f);
}

/* A store that refuses writes (a full disk) makes the daemon not ready, with
 * what to check; the messages wait and are stored once writes work again. */
Test(http, readyz_says_when_store_writes_fail)
{
    char fail[256], path[128], *body;
    long long t = wall_ms() - 60000;

    start_with_failing_writes(fail, sizeof(fail));
    free(wait_status("/readyz", 200, 15000));
    fail_now(fail);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":0.5}", t);
    body = wait_status("/readyz", 503, 15000);
    cr_expect(strstr(body, "store writes are failing") != NULL, "%s", body);
    cr_expect(strstr(body, "storage.path") != NULL, "says what to check: %s", body);
    free(body);
    unlink(fail);
    free(wait_status("/readyz", 200, 15000));
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w01/nh3_n&from=%lld&to=%lld",
             t, t + 1);
    cJSON *doc = wait_array(path, 1, 10000);
    cJSON *pts = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points");
    cr_expect_eq(cJSON_GetArraySize(pts), 1, "the refused message is stored once writes work");
    cJSON_Delete(doc);
}

/*
 * A backlog that came while writes failed is stored as soon as they work
 * again, without waiting for newer traffic. The callback used to hand each
 * failed message back to Paho, which queued it and every later one, then
 * delivered one queued message per packet that arrived: the backlog lagged
 * behind by its length until as many new messages came (and each retry
 * counted as one more message received).
 */
Test(http, a_backlog_held_by_failing_writes_is_stored_when_they_work_again)
{
    char fail[256], path[160];
    long long t = wall_ms() - 60000;
    enum { N = 30 };

    start_with_failing_writes(fail, sizeof(fail));
    fail_now(fail);
    for (int i = 0; i < N; i++)
        publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":%d}", t + i * 1000, i);
    free(wait_status("/readyz", 503, 15000));
    usleep(1500 * 1000);                  /* a few retries of the first message */
    unlink(fail);
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w01/ph&from=%lld&to=%lld",
             t, t + N * 1000);
    cJSON *doc = wait_array(path, 1, 10000);
    cJSON *pts = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points");
    for (int i = 0; i < 100 && cJSON_GetArraySize(pts) < N; i++) {
        cJSON_Delete(doc);
        usleep(100 * 1000);
        doc = wait_array(path, 1, 10000);
        pts = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points");
    }
    cr_expect_eq(cJSON_GetArraySize(pts), N, "stored %d of the %d messages held back, with no "
                 "newer traffic", cJSON_GetArraySize(pts), N);
    cJSON_Delete(doc);
    cr_expect_eq(it_metric(&daemon_, "islewatch_messages_received_total{source=\"water\"}"), N,
                 "a retried write counts its message once");
}

/* A SIGTERM while a message waits for a failing store ends the daemon
 * cleanly (exit 0, within the harness's 30 s): the wait gives up. */
Test(http, a_stop_while_writes_fail_ends_cleanly)
{
    char fail[256];

    start_with_failing_writes(fail, sizeof(fail));
    fail_now(fail);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":7}", wall_ms() - 1000);
    free(wait_status("/readyz", 503, 15000));
    it_daemon_stop(&daemon_);             /* expects exit 0 */
    unlink(fail);
}

Test(http, series_and_query_after_publishing)
{
    long long hour = wall_ms() / 3600000 * 3600000;
    long long t1 = hour - 40 * 60000, t2 = hour - 20 * 60000, t3 = hour - 10 * 60000;
    char path[256];
    cJSON *doc, *s;

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":0.5,\"ph\":7.25}", t1);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":0.75}", t2);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":0.875,\"nh3_n_flag\":\"D\"}", t3);

    doc = wait_array("/api/v1/series?match=water/*/*/nh3_n", 1, 10000);
    for (long long end = it_now_ms() + 10000;
         cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "count")) < 3;) {
        cr_assert(it_now_ms() < end, "the 3 samples were not all stored");
        cJSON_Delete(doc);
        nap_ms(50);
        doc = get_json("/api/v1/series?match=water/*/*/nh3_n");
    }
    cr_assert_eq(cJSON_GetArraySize(doc), 1, "only nh3_n matches the glob");
    s = cJSON_GetArrayItem(doc, 0);
    cr_expect_str_eq(str(s, "series"), "water/dongtan/w01/nh3_n");
    cr_expect_eq((long long)cJSON_GetNumberValue(cJSON_GetObjectItem(s, "first")), t1);
    cr_expect_eq((long long)cJSON_GetNumberValue(cJSON_GetObjectItem(s, "last")), t3);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(s, "count")), 3);
    cJSON_Delete(doc);

    doc = get_json("/api/v1/series");
    cr_expect_eq(cJSON_GetArraySize(doc), 2, "nh3_n and ph");
    cJSON_Delete(doc);

    /* Raw points: [T,V] pairs (SPEC §6), the flagged one's flag beside them. */
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w01/nh3_n&from=%lld&to=%lld",
             t1, t3 + 1);
    doc = get_json(path);
    char *text = cJSON_PrintUnformatted(doc);
    char want[512];
    snprintf(want, sizeof(want), "[{\"series\":\"water/dongtan/w01/nh3_n\",\"points\":"
             "[[%lld,0.5],[%lld,0.75],[%lld,0.875]],\"flags\":[[%lld,\"D\"]]}]", t1, t2, t3, t3);
    cr_expect_str_eq(text, want);
    free(text);
    cJSON_Delete(doc);

    /* Aggregates per hour bucket: all three samples are in the hour before `hour`. */
    static const struct { const char *agg; const char *v; } aggs[] = {
        { "max", "0.875" }, { "min", "0.5" }, { "count", "3" }, { "sum", "2.125" },
        { "last", "0.875" },
    };
    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++) {
        snprintf(path, sizeof(path), "/api/v1/query?series=water/*/w01/nh3_n&from=-1d&to=now"
                 "&step=1h&agg=%s", aggs[i].agg);
        doc = get_json(path);
        text = cJSON_PrintUnformatted(doc);
        snprintf(want, sizeof(want), "[{\"series\":\"water/dongtan/w01/nh3_n\",\"points\":"
                 "[[%lld,%s]]}]", hour - 3600000, aggs[i].v);
        cr_expect_str_eq(text, want, "agg=%s", aggs[i].agg);
        free(text);
        cJSON_Delete(doc);
    }
    /* to alone: the hour before it, not a 400 about a from that was never given. */
    long long t0 = hour - 5 * 3600000;
    publish("sensors/water/dongtan/w02", "{\"ts\":%lld,\"nh3_n\":1.5}", t0);
    cJSON_Delete(wait_array("/api/v1/series?match=water/dongtan/w02/nh3_n", 1, 10000));
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w02/nh3_n&to=%lld",
             t0 + 30 * 60000);
    doc = get_json(path);
    text = cJSON_PrintUnformatted(doc);
    snprintf(want, sizeof(want), "[{\"series\":\"water/dongtan/w02/nh3_n\",\"points\":"
             "[[%lld,1.5]]}]", t0);
    cr_expect_str_eq(text, want, "to=T alone reads [T - 1h, T]");
    free(text);
    cJSON_Delete(doc);
    /* RFC 3339 times are accepted too. */
    doc = get_json("/api/v1/query?series=water/dongtan/w01/ph&from=2000-01-01T00:00:00Z&to=now");
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")), 1);
    cJSON_Delete(doc);
}

/* The points of a one-series query as [t, v] pairs; returns how many (at most cap). */
static int query_points(const char *path, long long *t, double *v, int cap)
{
    cJSON *doc = get_json(path), *p;
    cr_assert_eq(cJSON_GetArraySize(doc), 1, "GET %s: one series", path);
    int n = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
        cr_assert_lt(n, cap, "GET %s: more than %d points", path, cap);
        t[n] = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
        v[n] = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
        n++;
    }
    cJSON_Delete(doc);
    return n;
}

/*
 * Minute and hour rollups made by the running pipeline: three hours of one
 * sample per minute (every 7th minute holds a second one), then a sample in
 * the next hour, so the shard rolls the three hours up. Step queries must give
 * exactly the raw fold: one-point minutes keep no rollup key of their own
 * (store format 3) and an hour is rolled once complete, so both are read
 * through the paths that replaced the dense keys.
 */
Test(http, step_queries_over_rolled_up_minutes_and_hours)
{
    const char *topic = "sensors/water/dongtan/w09";
    long long h0 = wall_ms() / 3600000 * 3600000 - 5 * 3600000LL;
    long long cnt[3] = {0}, t[200];
    double sum[3] = {0}, v[200];
    int n = 0;
    char path[256];

    start(EXTRA);
    for (int i = 0; i < 180; i++) {
        publish(topic, "{\"ts\":%lld,\"ph\":%d}", h0 + i * 60000LL + 5000, i);
        cnt[i / 60]++, sum[i / 60] += i, n++;
        if (i % 7 == 0) {
            publish(topic, "{\"ts\":%lld,\"ph\":%d}", h0 + i * 60000LL + 30000, 1000 + i);
            cnt[i / 60]++, sum[i / 60] += 1000 + i, n++;
        }
        if (i % 11 == 0) {                  /* out of order within its minute */
            publish(topic, "{\"ts\":%lld,\"ph\":%d}", h0 + i * 60000LL + 1000, 2000 + i);
            cnt[i / 60]++, sum[i / 60] += 2000 + i, n++;
        }
        if (i % 13 == 0) {                  /* delivered again: replaces, counts once */
            publish(topic, "{\"ts\":%lld,\"ph\":%d}", h0 + i * 60000LL + 5000, i);
            n++;
        }
    }
    publish(topic, "{\"ts\":%lld,\"ph\":0}", h0 + 3 * 3600000LL + 5 * 60000);
    n++;
    wait_metric("islewatch_messages_stored_total{source=\"water\"}", n, 30000);
    /* Let the shards finish rolling up: their queues stay empty for a while. */
    for (int quiet = 0; quiet < 5; nap_ms(100))
        quiet = metric_now("islewatch_queue_depth{queue=\"shard0\"}") == 0 &&
                metric_now("islewatch_queue_depth{queue=\"shard1\"}") == 0 ? quiet + 1 : 0;

    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w09/ph&from=%lld&to=%lld"
             "&step=1h&agg=count", h0, h0 + 3 * 3600000LL);
    cr_assert_eq(query_points(path, t, v, 200), 3);
    for (int h = 0; h < 3; h++) {
        cr_expect_eq(t[h], h0 + h * 3600000LL);
        cr_expect_eq((long long)v[h], cnt[h], "hour %d: count %g, want %lld", h, v[h], cnt[h]);
    }
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w09/ph&from=%lld&to=%lld"
             "&step=1h&agg=sum", h0, h0 + 3 * 3600000LL);
    cr_assert_eq(query_points(path, t, v, 200), 3);
    for (int h = 0; h < 3; h++)
        cr_expect_eq(v[h], sum[h], "hour %d: sum %g, want %g", h, v[h], sum[h]);

    /* Minute steps across an hour boundary: one- and two-point minutes alike,
     * in order, reordered or delivered twice. */
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w09/ph&from=%lld&to=%lld"
             "&step=1m&agg=max", h0 + 50 * 60000LL, h0 + 70 * 60000LL);
    cr_assert_eq(query_points(path, t, v, 200), 20);
    for (int k = 0; k < 20; k++) {
        int i = 50 + k;
        cr_expect_eq(t[k], h0 + i * 60000LL);
        cr_expect_eq(v[k], i % 11 == 0 ? 2000 + i : i % 7 == 0 ? 1000 + i : i, "minute %d: max %g",
                     i, v[k]);
    }
    /* A 10-minute step over the second hour folds minutes, whatever their keys. */
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w09/ph&from=%lld&to=%lld"
             "&step=10m&agg=count", h0 + 3600000LL, h0 + 2 * 3600000LL);
    cr_assert_eq(query_points(path, t, v, 200), 6);
    for (int k = 0; k < 6; k++) {
        long long want = 0;
        for (int i = 60 + 10 * k; i < 70 + 10 * k; i++)
            want += 1 + (i % 7 == 0) + (i % 11 == 0);
        cr_expect_eq((long long)v[k], want, "10 minutes from minute %d: count %g", 60 + 10 * k, v[k]);
    }
}

Test(http, bad_query_arguments_are_400_with_a_reason)
{
    static const struct { const char *path; const char *needle; } cases[] = {
        { "/api/v1/query", "series=GLOB is required" },
        { "/api/v1/query?series=*/*/*/*&from=yesterday", "from=\"yesterday\" is not a time" },
        { "/api/v1/query?series=*/*/*/*&from=now&to=-1h", "must not be after" },
        { "/api/v1/query?series=*/*/*/*&step=fast", "step=\"fast\" is not a positive duration" },
        { "/api/v1/query?series=*/*/*/*&agg=max", "needs step" },
        { "/api/v1/query?series=*/*/*/*&step=1m&agg=median", "is not one of avg" },
        { "/api/v1/query?series=*/*/*&devices=1&step=1m", "devices=1 gives raw points only" },
        { "/api/v1/series?devices=yes", "devices=\"yes\": use devices=1 or devices=0" },
        /* all the calendar: too many buckets (times beyond it: the test after this one) */
        { "/api/v1/query?series=*/*/*/*&from=-62167219200000&to=253402300799999&step=1d",
          "more than 1000000 buckets" },
        { "/api/v1/alerts?since=soon", "since=\"soon\" is not a time" },
        { "/api/v1/alerts?limit=-3", "is not a count" },
        { "/api/v1/alerts?active=maybe", "use active=1" },
        { "/api/v1/alerts/stream?since=abc", "is not an alert seq" },
        /* A misspelt parameter is not ignored: it would answer another question
         * (actve=1: the whole history, not the firing alerts). */
        { "/api/v1/alerts?actve=1", "unknown parameter \"actve\" for /api/v1/alerts (did you "
          "mean \"active\"?); it takes active, since, rule, limit" },
        { "/api/v1/query?series=*/*/*/*&form=-1d", "unknown parameter \"form\"" },
        { "/api/v1/series?serie=water/*/*/*", "unknown parameter \"serie\"" },
        { "/api/v1/alerts/stream?snice=3", "it takes since" },
        /* sit=: the report of every site, not of the one asked for */
        { "/api/v1/report/water?from=-1d&to=now&sit=dongtan", "unknown parameter \"sit\" for "
          "/api/v1/report/water (did you mean \"site\"?); it takes from, to, format, site, tz, "
          "standard, interval, source" },
        { "/api/v1/report/air?from=-1d&to=now&fromat=csv", "(did you mean \"format\"?)" },
        { "/api/v1/report/cameras?from=-1h&to=now&intervall=10s", "(did you mean \"interval\"?)" },
        /* Read cut short at the NUL, rule=%00x filtered nothing and a path
         * ".../ack%00evil" acked (audits). */
        { "/api/v1/alerts?rule=%00x", "hold a NUL byte (%00)" },
        { "/api/v1/query?series=water/%00/*/*", "hold a NUL byte (%00)" },
        { "/api/v1/alerts%00junk", "the request's path or parameters hold a NUL byte (%00)" },
        { "/healthz%00", "hold a NUL byte (%00)" },
    };
    start(EXTRA);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0;
        char *body = http("GET", cases[i].path, NULL, NULL, &status);
        cJSON *doc = cJSON_Parse(body);
        cr_expect_eq(status, 400, "%s -> %d", cases[i].path, status);
        cr_expect(strstr(str(doc, "error"), cases[i].needle) != NULL, "%s -> %s", cases[i].path,
                  body);
        cJSON_Delete(doc);
        free(body);
    }
}

/* A parameter that is no typo of one an endpoint takes is ignored, as HTTP
 * APIs do: a browser's cache buster, a client's format=json. */
Test(http, other_unknown_query_arguments_are_ignored)
{
    static const char *const paths[] = {
        "/api/v1/alerts?format=json&_=1764417600000",
        "/api/v1/series?format=json",
        "/api/v1/query?series=*/*/*/*&from=-1h&format=json&_=1",
        "/api/v1/report/water?from=-1d&to=now&_=1764417600000",
    };
    start(EXTRA);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int status = 0;
        char *body = http("GET", paths[i], NULL, NULL, &status);
        cr_expect_eq(status, 200, "%s -> %d %s", paths[i], status, body);
        free(body);
    }
}

/* Times at the ends of int64 (epoch ms no calendar can show): a 400, never a crash. */
Test(http, query_times_beyond_any_calendar_are_400_not_a_crash)
{
    static const char *const cases[] = {
        "from=-9223372036854775808&to=now&step=1y",
        "from=0&to=9223372036854775807&step=1y",
        "from=9223372036854775000&to=9223372036854775807&step=1h",
        "from=-9223372036854775808&to=-9223372036854775000&step=1h",
        "from=-9223372036854775808&to=9223372036854775807",
    };
    char path[256];

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":7.0}", wall_ms());
    cJSON_Delete(wait_array("/api/v1/series?match=water/dongtan/w01/ph", 1, 10000));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0;
        snprintf(path, sizeof(path), "/api/v1/query?series=water/*/*/ph&%s", cases[i]);
        char *body = http("GET", path, NULL, NULL, &status);
        cr_expect_eq(status, 400, "%s -> %d %s", path, status, body);
        cr_expect(strstr(body, "is not a time") != NULL, "%s -> %s", path, body);
        free(body);
    }
    int status = 0;
    char *body = http("GET", "/healthz", NULL, NULL, &status);
    cr_expect_eq(status, 200, "the daemon is still up");
    free(body);
}

/* A duration of many groups whose sum no int64 holds: a 400, never a crash. */
Test(http, durations_too_long_to_count_are_400_not_a_crash)
{
    static const struct { const char *args, *says; } cases[] = {
        { "from=-70000000y70000000y70000000y70000000y70000000y", "is not a time" },
        { "from=-1h&step=70000000y70000000y70000000y70000000y70000000y",
          "is not a positive duration" },
    };
    char path[256];

    start(EXTRA);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0;
        snprintf(path, sizeof(path), "/api/v1/query?series=water/*/*/ph&%s", cases[i].args);
        char *body = http("GET", path, NULL, NULL, &status);
        cr_expect_eq(status, 400, "%s -> %d %s", path, status, body);
        cr_expect(strstr(body, cases[i].says) != NULL, "%s -> %s", path, body);
        free(body);
    }
    int status = 0;
    char *body = http("GET", "/healthz", NULL, NULL, &status);
    cr_expect_eq(status, 200, "the daemon is still up");
    free(body);
}

/*
 * An RFC 3339 offset typed as is in a URL: "+08:00" arrives as " 08:00" (a
 * '+' in a query string is a space). The time is still meant, and no RFC 3339
 * time has a space there.
 */
Test(http, an_unencoded_plus_in_a_time_offset_is_the_offset)
{
    long long t = (wall_ms() / 3600000 - 2) * 3600000;      /* a whole hour, 2 h ago */
    char path[256], from[32], to[32];
    time_t local = (time_t)(t / 1000 + 8 * 3600);           /* its wall clock at +08:00 */
    struct tm tm;
    cJSON *doc;

    gmtime_r(&local, &tm);
    strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:00+08:00", &tm);
    local -= 60;
    gmtime_r(&local, &tm);
    strftime(from, sizeof(from), "%Y-%m-%dT%H:%M:00+08:00", &tm);
    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":7.0}", t);
    cJSON_Delete(wait_array("/api/v1/series?match=water/dongtan/w01/ph", 1, 10000));
    snprintf(path, sizeof(path), "/api/v1/query?series=water/dongtan/w01/ph&from=%s&to=%s",
             from, to);
    doc = get_json(path);
    char *text = cJSON_PrintUnformatted(doc);
    char want[128];
    snprintf(want, sizeof(want), "[{\"series\":\"water/dongtan/w01/ph\",\"points\":"
             "[[%lld,7]]}]", t);
    cr_expect_str_eq(text, want, "GET %s", path);
    free(text);
    cJSON_Delete(doc);
    snprintf(path, sizeof(path), "/api/v1/alerts?since=%s", to);
    doc = get_json(path);
    cr_expect_eq(cJSON_GetArraySize(doc), 0);
    cJSON_Delete(doc);
    /* Still an error when it is not an offset. */
    int status = 0;
    char *body = http("GET", "/api/v1/query?series=*/*/*/*&from=2026-12-06T03:59:00+8", NULL,
                      NULL, &status);
    cr_expect_eq(status, 400, "%s", body);
    free(body);
}

/* An error that quotes bad input is still a UTF-8 JSON document. */
Test(http, errors_quoting_bytes_that_are_not_utf8_are_utf8_json)
{
    static const struct { const char *path; int status; } cases[] = {
        { "/api/v1/query?series=*/*/*/*&from=%FF%FE", 400 },
        { "/api/v1/alerts?since=%C3", 400 },
        { "/api/v1/alerts/stream?since=%E4%B8", 400 },
        { "/%FF", 404 },
    };
    start(EXTRA);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0;
        char *body = http("GET", cases[i].path, NULL, NULL, &status);
        cr_expect_eq(status, cases[i].status, "%s -> %d", cases[i].path, status);
        cr_expect(iw_utf8_valid(body, strlen(body)), "%s: the answer is not UTF-8", cases[i].path);
        cJSON *doc = cJSON_Parse(body);
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(doc, "error")), "%s -> %s", cases[i].path,
                  body);
        cJSON_Delete(doc);
        free(body);
    }
}

/*
 * The firing alerts come in seq order, like the history, and limit=N keeps
 * the N newest of them (as it does for the history), whatever their ids.
 */
Test(http, active_alerts_are_in_seq_order_and_limit_keeps_the_newest)
{
    long long t0 = wall_ms() - 5000;
    char topic[64];
    cJSON *doc, *a;

    start(EXTRA);
    for (int i = 0; i < 8; i++) {
        snprintf(topic, sizeof(topic), "sensors/water/site%d/w01", i);
        publish(topic, "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
        cJSON_Delete(wait_array("/api/v1/alerts", i + 1, 10000));   /* one at a time: seq i+1 */
    }
    doc = get_json("/api/v1/alerts?active=1");
    cr_assert_eq(cJSON_GetArraySize(doc), 8);
    int want = 1;
    cJSON_ArrayForEach(a, doc) {
        double seq = cJSON_GetNumberValue(cJSON_GetObjectItem(a, "seq"));
        cr_expect_eq((int)seq, want, "item %d has seq %g", want, seq);
        want++;
    }
    cJSON_Delete(doc);
    doc = get_json("/api/v1/alerts?active=1&limit=2");
    cr_assert_eq(cJSON_GetArraySize(doc), 2);
    for (int i = 0; i < 2; i++)
        cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, i),
                                                                   "seq")), 7 + i);
    cJSON_Delete(doc);
    /* A limit above the number firing keeps them all (it is a bound, not a count). */
    doc = get_json("/api/v1/alerts?active=1&limit=20");
    cr_expect_eq(cJSON_GetArraySize(doc), 8);
    cJSON_Delete(doc);
}

/* A report whose site glob selects no device is an empty report, not a crash. */
Test(http, a_report_of_no_device_is_answered)
{
    static const char *const kinds[] = { "water", "air", "cameras" };
    char path[160];

    start(EXTRA);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        int status = 0;
        snprintf(path, sizeof(path), "/api/v1/report/%s?from=-1d&to=now&format=csv&site=nowhere",
                 kinds[i]);
        char *body = http("GET", path, NULL, NULL, &status);
        cr_expect_eq(status, 200, "%s -> %d %s", path, status, body);
        free(body);
    }
}

/*
 * An HTML report is served on the dashboard's origin: a policy that runs no
 * script, so a label that slipped through the escaping could do nothing there.
 */
Test(http, an_html_report_runs_no_script)
{
    char *resp;

    start(EXTRA);
    resp = raw("GET /api/v1/report/water?from=-1d&to=now&format=html HTTP/1.1\r\nHost: x\r\n"
               "Connection: close\r\n\r\n");
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.100s", resp);
    cr_expect(strcasestr(resp, "\r\nContent-Type: text/html; charset=utf-8\r\n") != NULL, "%.400s",
              resp);
    cr_expect(strcasestr(resp, "\r\nContent-Security-Policy: default-src 'none'; "
                               "style-src 'unsafe-inline'\r\n") != NULL, "%.400s", resp);
    free(resp);
}

/*
 * An empty report argument (a form left blank: site=&tz=) is an absent one,
 * as everywhere else in the API: all sites, the default zone.
 */
Test(http, empty_report_arguments_are_absent_ones)
{
    static const char *const blanks[] = { "site=", "tz=", "standard=", "interval=", "source=",
                                          "site=&tz=&standard=&interval=&source=" };
    int status = 0;
    char path[256];

    start(EXTRA "devices:\n  - {source: water, site: dongtan, device: w01}\n");
    char *want = http("GET", "/api/v1/report/water?from=-1d&to=now&format=csv", NULL, NULL,
                      &status);
    cr_assert_eq(status, 200, "%s", want);
    cr_assert(strstr(want, "dongtan") != NULL, "%s", want);
    for (size_t i = 0; i < sizeof(blanks) / sizeof(blanks[0]); i++) {
        snprintf(path, sizeof(path), "/api/v1/report/water?from=-1d&to=now&format=csv&%s",
                 blanks[i]);
        char *body = http("GET", path, NULL, NULL, &status);
        cr_expect_eq(status, 200, "%s -> %d %s", path, status, body);
        cr_expect_str_eq(body, want, "%s", path);
        free(body);
    }
    free(want);
}

/* A very long unknown path still gets the whole 404: what exists, not just an echo. */
Test(http, a_very_long_unknown_path_still_lists_the_endpoints)
{
    char path[6000];
    int status = 0;

    path[0] = '/';
    memset(path + 1, 'a', sizeof(path) - 2);
    path[sizeof(path) - 1] = '\0';
    start(EXTRA);
    char *body = http("GET", path, NULL, NULL, &status);
    cr_expect_eq(status, 404);
    size_t n = strlen(body);
    cr_expect(strstr(body, "/api/v1/alerts/stream") != NULL && n < 1024, "%zu bytes: %.80s...%s",
              n, body, body + (n > 80 ? n - 80 : 0));
    free(body);
}

/* An empty or bare match= does not hide the series= beside it (a blank form field). */
Test(http, an_empty_match_does_not_hide_the_series_glob)
{
    cJSON *doc;

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"ph\":7.0,\"do\":6.0}", wall_ms());
    cJSON_Delete(wait_array("/api/v1/series", 2, 10000));
    static const char *const paths[] = {
        "/api/v1/query?match=&series=water/*/*/ph", "/api/v1/query?match&series=water/*/*/ph",
        "/api/v1/series?match=&series=water/*/*/ph", "/api/v1/series?match&series=water/*/*/ph",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        doc = get_json(paths[i]);
        cr_expect_eq(cJSON_GetArraySize(doc), 1, "GET %s: %d series", paths[i],
                     cJSON_GetArraySize(doc));
        cr_expect_str_eq(str(cJSON_GetArrayItem(doc, 0), "series"), "water/dongtan/w01/ph", "%s",
                         paths[i]);
        cJSON_Delete(doc);
    }
}

/* ?active with no value means active=1, as the CLI's --active flag does. */
Test(http, a_bare_active_flag_lists_only_firing_alerts)
{
    long long t0 = wall_ms() - 5000;
    cJSON *doc;

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);        /* fires */
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":1.0}", t0 + 1000); /* resolves */
    publish("sensors/water/xisha/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);          /* fires */
    cJSON_Delete(wait_array("/api/v1/alerts", 3, 10000));
    static const char *const paths[] = { "/api/v1/alerts?active", "/api/v1/alerts?active=",
                                         "/api/v1/alerts?active=1", "/api/v1/alerts?active=true" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        doc = get_json(paths[i]);
        cr_expect_eq(cJSON_GetArraySize(doc), 1, "GET %s: %d alerts, want the firing one",
                     paths[i], cJSON_GetArraySize(doc));
        cr_expect_str_eq(str(cJSON_GetArrayItem(doc, 0), "site"), "xisha", "GET %s", paths[i]);
        cJSON_Delete(doc);
    }
    doc = get_json("/api/v1/alerts?active=0");
    cr_expect_eq(cJSON_GetArraySize(doc), 3, "active=0 is the history");
    cJSON_Delete(doc);
}

Test(http, unknown_paths_and_wrong_methods)
{
    int status = 0;
    char *body, *resp;

    start(EXTRA);
    body = http("GET", "/api/v1/nothing", NULL, NULL, &status);
    cr_expect_eq(status, 404);
    cr_expect(strstr(body, "\"error\"") != NULL, "%s", body);
    free(body);
    resp = raw("POST /api/v1/series HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n"
               "Content-Length: 0\r\nConnection: close\r\n\r\n");
    cr_expect(strncmp(resp, "HTTP/1.1 405", 12) == 0, "%.100s", resp);
    cr_expect(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL, "%.300s", resp);
    /* its JSON error is labelled as every other one */
    cr_expect(strcasestr(resp, "\r\nContent-Type: application/json; charset=utf-8\r\n") != NULL,
              "%.300s", resp);
    cr_expect(strcasestr(resp, "\r\nX-Content-Type-Options: nosniff\r\n") != NULL, "%.300s", resp);
    free(resp);
}

/*
 * A method a path does not take is 405 with Allow, and an unknown path 404,
 * token or not: such a request changes nothing, so it is not refused as an
 * unauthorised change (401).
 */
Test(http, wrong_methods_are_405_with_allow_with_or_without_a_token)
{
    static const struct {
        const char *method, *path, *allow;   /* allow NULL: 404 */
    } cases[] = {
        { "POST", "/healthz", "GET, HEAD" },
        { "DELETE", "/metrics", "GET, HEAD" },
        { "PUT", "/", "GET, HEAD" },
        { "POST", "/api/v1/query", "GET, HEAD" },
        { "DELETE", "/api/v1/alerts", "GET, HEAD" },
        { "POST", "/api/v1/alerts/stream", "GET, HEAD" },
        { "PUT", "/api/v1/silences", "GET, HEAD, POST, DELETE" },
        { "PATCH", "/api/v1/silences", "GET, HEAD, POST, DELETE" },
        { "DELETE", "/api/v1/alerts/0123456789abcdef/ack", "POST" },
        { "PUT", "/api/v1/reload", "POST" },
        { "POST", "/api/v1/silences/0123456789abcdef", "DELETE" },
        { "POST", "/api/v1/nothing", NULL },
        { "DELETE", "/nothing", NULL },
    };
    start(EXTRA);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int with_token = 0; with_token < 2; with_token++) {
            char req[512], allow[64];
            snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n", cases[i].method, cases[i].path,
                     with_token ? "Authorization: Bearer " TOKEN "\r\n" : "");
            char *resp = raw(req);
            const char *want = cases[i].allow ? "HTTP/1.1 405" : "HTTP/1.1 404";
            cr_expect(strncmp(resp, want, 12) == 0, "%s %s %s token: %.200s", cases[i].method,
                      cases[i].path, with_token ? "with" : "without", resp);
            if (cases[i].allow != NULL) {
                snprintf(allow, sizeof(allow), "\r\nAllow: %s\r\n", cases[i].allow);
                cr_expect(strstr(resp, allow) != NULL, "%s %s: want Allow: %s in %.300s",
                          cases[i].method, cases[i].path, cases[i].allow, resp);
            }
            free(resp);
        }
    }
}

/* ---- authorisation ---- */

Test(http, state_changes_need_the_bearer_token)
{
    static const struct {
        const char *method, *path, *body;
        int ok_status;              /* with the right token */
    } cases[] = {
        { "POST", "/api/v1/reload", NULL, 200 },
        { "POST", "/api/v1/alerts/0123456789abcdef/ack", "{\"by\":\"x\"}", 404 },
        { "POST", "/api/v1/silences", "{\"match\":{\"site\":\"nowhere\"},\"duration\":\"1h\"}", 200 },
        { "DELETE", "/api/v1/silences/0123456789abcdef", NULL, 404 },
        /* 401 before any 400/404 decision on what these paths accept */
        { "DELETE", "/api/v1/silences?id=0123456789abcdef", NULL, 404 },
        { "DELETE", "/api/v1/silences", "{\"id\":\"0123456789abcdef\"}", 404 },
        { "DELETE", "/api/v1/silences", NULL, 400 },
    };
    start(EXTRA);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *tokens[] = { NULL, "wrong-token", "secret-tokenX", "secret-toke", TOKEN };
        for (size_t t = 0; t < 5; t++) {
            int status = 0;
            char *body = http(cases[i].method, cases[i].path, tokens[t], cases[i].body, &status);
            int want = t == 4 ? cases[i].ok_status : 401;
            cr_expect_eq(status, want, "%s %s with token %s: %d %s", cases[i].method,
                         cases[i].path, tokens[t] ? tokens[t] : "(none)", status, body);
            if (want == 401)
                cr_expect(strstr(body, "Authorization: Bearer") != NULL, "%s", body);
            free(body);
        }
    }
    /* The 401 carries the challenge header. */
    char *resp = raw("POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
    cr_expect(strncmp(resp, "HTTP/1.1 401", 12) == 0, "%.100s", resp);
    cr_expect(strcasestr(resp, "\r\nWWW-Authenticate: Bearer") != NULL, "%.400s", resp);
    free(resp);
    /* Reading needs no token. */
    int status = 0;
    char *body = http("GET", "/api/v1/silences", NULL, NULL, &status);
    cr_expect_eq(status, 200);
    free(body);
}

Test(http, no_token_file_refuses_every_state_change)
{
    int status = 0;
    char *body;

    start(EXTRA);
    /* Drop token_file from the config and reload (the reload itself is authorised). */
    char *cfg = NULL;
    cr_assert_eq(it_run(&cfg, "grep -v token_file '%s'", daemon_.cfg), 0);
    FILE *f = fopen(daemon_.cfg, "w");
    cr_assert_not_null(f);
    fputs(cfg, f);
    fclose(f);
    free(cfg);
    body = http("POST", "/api/v1/reload", TOKEN, NULL, &status);
    cr_assert_eq(status, 200, "%s", body);
    free(body);
    body = http("POST", "/api/v1/reload", TOKEN, NULL, &status);
    cr_expect_eq(status, 401, "%s", body);
    cr_expect(strstr(body, "http.token_file") != NULL, "%s", body);
    free(body);
}

/* ---- alerts, ack, SSE ---- */

struct sse_reader {
    pthread_t thread;
    char header[64];
    char path[64];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool hello, done;
    int rc;                     /* of iw_http_stream_lines */
    int want, n;
    int named;                  /* events with an "event:" other than message */
    unsigned long long ids[32];
    cJSON *alerts[32];
    char cur_id[32];
    char cur_data[8192];
    volatile sig_atomic_t stop;
};

static int sse_line(void *ctx, const char *line, size_t len)
{
    struct sse_reader *r = ctx;
    int stop = 0;
    pthread_mutex_lock(&r->lock);
    if (len == 0 && r->cur_data[0] != '\0') {
        if (r->n < 32) {
            r->ids[r->n] = strtoull(r->cur_id, NULL, 10);
            r->alerts[r->n] = cJSON_Parse(r->cur_data);
            r->n++;
        }
        r->cur_data[0] = r->cur_id[0] = '\0';
        stop = r->n >= r->want;
    } else if (len > 0 && line[0] == ':') {
        r->hello = true;
    } else if (len > 6 && strncmp(line, "data: ", 6) == 0) {
        snprintf(r->cur_data, sizeof(r->cur_data), "%.*s", (int)len - 6, line + 6);
    } else if (len > 4 && strncmp(line, "id: ", 4) == 0) {
        snprintf(r->cur_id, sizeof(r->cur_id), "%.*s", (int)len - 4, line + 4);
    } else if (len >= 6 && strncmp(line, "event:", 6) == 0
               && !(len == 14 && strncmp(line, "event: message", 14) == 0)) {
        r->named++;
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return stop;
}

static void *sse_thread(void *arg)
{
    struct sse_reader *r = arg;
    struct iw_diag diag = {0};
    int status = 0;
    int rc = iw_http_stream_lines(base, r->path, NULL, r->header[0] ? r->header : NULL, sse_line,
                                  r, &r->stop, 30000, &status, &diag);
    if (rc != IW_OK)
        fprintf(stderr, "sse: %s\n", iw_diag_first(&diag));
    iw_diag_fini(&diag);
    pthread_mutex_lock(&r->lock);
    r->rc = rc;
    r->done = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static struct sse_reader *sse_open(const char *path, const char *last_id, int want)
{
    struct sse_reader *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    snprintf(r->path, sizeof(r->path), "%s", path);
    if (last_id != NULL)
        snprintf(r->header, sizeof(r->header), "Last-Event-ID: %s", last_id);
    r->want = want;
    cr_assert_eq(pthread_create(&r->thread, NULL, sse_thread, r), 0);
    return r;
}

/* Wait until the reader has `n` events (n = 0: just the opening comment). */
static bool sse_wait(struct sse_reader *r, int n, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&r->lock);
    while (!(n == 0 ? r->hello : r->n >= n) && !r->done)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &dl) != 0)
            break;
    bool ok = n == 0 ? r->hello : r->n >= n;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static bool sse_wait_done(struct sse_reader *r, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&r->lock);
    while (!r->done)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &dl) != 0)
            break;
    bool done = r->done;
    pthread_mutex_unlock(&r->lock);
    return done;
}

static void sse_close(struct sse_reader *r)
{
    r->stop = 1;
    pthread_join(r->thread, NULL);
    for (int i = 0; i < r->n; i++)
        cJSON_Delete(r->alerts[i]);
    free(r);
}

static void expect_ids(struct sse_reader *r, const unsigned long long *want, int n,
                       const char *what)
{
    cr_assert(sse_wait(r, n, 10000), "%s: only %d of %d events", what, r->n, n);
    for (int i = 0; i < n; i++) {
        cr_expect_eq(r->ids[i], want[i], "%s: event %d has id %llu, want %llu", what, i,
                     r->ids[i], want[i]);
        cr_expect_eq((unsigned long long)cJSON_GetNumberValue(
                         cJSON_GetObjectItem(r->alerts[i], "seq")), r->ids[i],
                     "%s: id and seq differ", what);
    }
}

Test(http, sse_stream_live_then_resume_with_last_event_id)
{
    long long t0 = wall_ms() - 10000;
    struct sse_reader *live, *r;

    start(EXTRA);
    live = sse_open("/api/v1/alerts/stream", NULL, 3);
    cr_assert(sse_wait(live, 0, 10000), "the stream did not open");
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);         /* fires */
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":1.0}", t0 + 1000);  /* resolves */
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.5}", t0 + 2000);  /* fires */
    static const unsigned long long all[] = { 1, 2, 3 };
    expect_ids(live, all, 3, "live");
    cr_expect_str_eq(str(live->alerts[0], "status"), "firing");
    cr_expect_str_eq(str(live->alerts[0], "rule"), "hot");
    cr_expect_str_eq(str(live->alerts[0], "site"), "dongtan");
    cr_expect_str_eq(str(live->alerts[1], "status"), "resolved");
    cr_expect_str_eq(str(live->alerts[2], "status"), "firing");
    /* Plain "message" events: EventSource.onmessage and generic SSE clients get them. */
    cr_expect_eq(live->named, 0, "alerts went out as named events");
    sse_close(live);

    /* Resume after 1: exactly 2 and 3, from history. */
    r = sse_open("/api/v1/alerts/stream", "1", 2);
    static const unsigned long long after1[] = { 2, 3 };
    expect_ids(r, after1, 2, "Last-Event-ID: 1");
    sse_close(r);
    r = sse_open("/api/v1/alerts/stream?since=2", NULL, 1);
    static const unsigned long long after2[] = { 3 };
    expect_ids(r, after2, 1, "since=2");
    sse_close(r);
    r = sse_open("/api/v1/alerts/stream", "0", 3);
    expect_ids(r, all, 3, "Last-Event-ID: 0");
    sse_close(r);

    /* Resume at the newest: nothing is replayed, the next live alert comes next. */
    r = sse_open("/api/v1/alerts/stream", "3", 1);
    cr_assert(sse_wait(r, 0, 10000));
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":1.0}", t0 + 3000);  /* resolves */
    static const unsigned long long next[] = { 4 };
    expect_ids(r, next, 1, "Last-Event-ID: 3 then live");
    cr_expect_str_eq(str(r->alerts[0], "status"), "resolved");
    sse_close(r);

    /* And the history endpoint agrees. */
    cJSON *doc = get_json("/api/v1/alerts?rule=hot&limit=2");
    cr_assert_eq(cJSON_GetArraySize(doc), 2);
    cr_expect_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 1), "seq")),
                 4, "limit keeps the newest");
    cJSON_Delete(doc);
    doc = get_json("/api/v1/alerts?rule=h*");
    cr_expect_eq(cJSON_GetArraySize(doc), 4, "a glob selects rules too");
    cJSON_Delete(doc);
    doc = get_json("/api/v1/alerts?rule=ho");
    cr_expect_eq(cJSON_GetArraySize(doc), 0, "a rule name is matched whole");
    cJSON_Delete(doc);
}

Test(http, stream_ends_and_daemon_exits_cleanly_on_sigterm)
{
    struct sse_reader *r;

    start(EXTRA);
    r = sse_open("/api/v1/alerts/stream", NULL, 1);
    cr_assert(sse_wait(r, 0, 10000));
    it_daemon_stop(&daemon_);
    /* The daemon got through its whole shutdown by itself (the harness would SIGKILL a hang). */
    cr_expect(it_daemon_wait_log(&daemon_, "daemon: stopped", 1, 1000),
              "islewatchd did not finish its shutdown with an SSE client connected");
    cr_expect(sse_wait_done(r, 5000), "the stream stayed open after the daemon stopped");
    cr_expect_eq(r->rc, IW_OK, "the stream did not end with a proper end of response");
    sse_close(r);
}

/* An alert stream on a raw socket, once its opening comment is in; -1 when it does not open. */
static int stream_open(int i)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)daemon_.http_port) };
    struct timeval tv = { 10, 0 };  /* below the 15 s keep-alive, which would also notice */
    static const char req[] = "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, sizeof(req) - 1, 0) != (ssize_t)(sizeof(req) - 1)) {
        cr_log_error("stream %d: cannot connect or send", i);
        close(fd);
        return -1;
    }
    while (n < sizeof(buf) - 1 && (r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0) {
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "islewatch alerts after seq") != NULL)
            return fd;
    }
    cr_log_error("stream %d: no opening comment (%zu bytes: %.200s)", i, n, n ? buf : "");
    close(fd);
    return -1;
}

/*
 * Hang up our side of a stream (shutdown for writing: the daemon sees the same
 * end of file as for a closed browser tab) and read until the daemon ends the
 * response. False when it kept the stream after the client left.
 */
static bool stream_leave(int fd, int i)
{
    char buf[4096];
    ssize_t r;

    shutdown(fd, SHUT_WR);
    while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
        ;
    close(fd);
    if (r < 0)
        cr_log_error("stream %d: still open 10 s after the client hung up", i);
    return r == 0;
}

Test(http, a_client_that_leaves_the_stream_frees_its_connection)
{
    int status = 0;
    char *body;

    start(EXTRA);
    /* More than the daemon's 128 streams, 10 at a time: dashboards reloaded again and again. */
    for (int i = 0; i < 150; i += 10) {
        int fds[10];
        for (int k = 0; k < 10; k++)
            cr_assert((fds[k] = stream_open(i + k)) >= 0, "stream %d of 150 was not served",
                      i + k);
        for (int k = 0; k < 10; k++)
            cr_assert(stream_leave(fds[k], i + k), "stream %d of 150 was not ended", i + k);
    }
    body = http("GET", "/healthz", NULL, NULL, &status);
    cr_expect_eq(status, 200, "%s", body);
    free(body);
}

Test(http, ack_a_firing_alert)
{
    long long t0 = wall_ms() - 5000;
    int status = 0;
    char path[128], *body;
    cJSON *doc, *a;

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    doc = wait_array("/api/v1/alerts?active=1", 1, 10000);
    a = cJSON_GetArrayItem(doc, 0);
    cr_expect_str_eq(str(a, "status"), "firing");
    snprintf(path, sizeof(path), "/api/v1/alerts/%s/ack", str(a, "id"));
    cJSON_Delete(doc);

    body = http("POST", path, TOKEN, "{\"by\":\"ops1\",\"comment\":\"crew on site\"}", &status);
    cr_expect_eq(status, 200, "%s", body);
    cr_expect(strstr(body, "\"ok\":true") != NULL, "%s", body);
    free(body);
    doc = get_json("/api/v1/alerts?active=1");
    a = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "ack");
    cr_expect_str_eq(str(a, "by"), "ops1");
    cr_expect_str_eq(str(a, "comment"), "crew on site");
    cJSON_Delete(doc);

    body = http("POST", path, TOKEN, "[1]", &status);
    cr_expect_eq(status, 400, "a non-object body: %s", body);
    free(body);
    body = http("POST", "/api/v1/alerts/not-an-id/ack", TOKEN, NULL, &status);
    cr_expect_eq(status, 404, "%s", body);
    free(body);
}

/* An id in capitals names the same alert (hex is hex), and a misspelt body key
 * ("byy") is a 400 naming it, as for silences, not an ack recorded without its
 * name or comment. */
Test(http, ack_takes_an_id_in_capitals_and_refuses_a_misspelt_key_or_a_bad_name)
{
    long long t0 = wall_ms() - 5000;
    int status = 0;
    char path[128], up[17], *body;
    cJSON *doc, *a;

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    doc = wait_array("/api/v1/alerts?active=1", 1, 10000);
    a = cJSON_GetArrayItem(doc, 0);
    for (int i = 0; i <= 16; i++)
        up[i] = (char)toupper((unsigned char)str(a, "id")[i]);
    cJSON_Delete(doc);
    snprintf(path, sizeof(path), "/api/v1/alerts/%s/ack", up);

    /* A typo of by or comment is refused; a newline would break tail's one line
     * per alert, and a name of kilobytes every later message of the episode. */
    char longby[300];
    memset(longby, 'x', sizeof(longby) - 1);
    longby[sizeof(longby) - 1] = '\0';
    char *longbody = NULL;
    cr_assert(asprintf(&longbody, "{\"by\":\"%s\"}", longby) > 0);
    const struct { const char *body, *needle; } bad[] = {
        { "{\"byy\":\"ops1\"}", "byy\\\" (did you mean" },       /* the answer is JSON: \" */
        { "{\"by\":\"ops1\",\"coment\":\"x\"}", "(did you mean \\\"comment" },
        { "{\"by\":\"ops\\n1\"}", "must be one line of at most 128 bytes" },
        { "{\"comment\":\"a\\u0007b\"}", "must be one line of at most 1024 bytes" },
        { longbody, "at most 128 bytes" },
        /* Two objects: read as the first, the comment would be lost without a word. */
        { "{\"by\":\"ops1\"}{\"comment\":\"x\"}", "must be a JSON object" },
        { "{\"by\":\"ops1\"} and more", "must be a JSON object" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        body = http("POST", path, TOKEN, bad[i].body, &status);
        cr_expect_eq(status, 400, "%s -> %s", bad[i].body, body);
        cr_expect(strstr(body, bad[i].needle) != NULL, "%s -> %s", bad[i].body, body);
        free(body);
    }
    free(longbody);
    doc = get_json("/api/v1/alerts?active=1");
    cr_expect_null(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "ack"), "acked by a bad body");
    cJSON_Delete(doc);

    /* Another key is ignored, as HTTP APIs do. */
    body = http("POST", path, TOKEN, "{\"by\":\"ops1\",\"client\":\"dashboard\"}", &status);
    cr_expect_eq(status, 200, "%s", body);
    free(body);
    doc = get_json("/api/v1/alerts?active=1");
    a = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "ack");
    cr_expect_str_eq(str(a, "by"), "ops1");
    cJSON_Delete(doc);
}

/*
 * SPEC §5: alert payloads are UTF-8 JSON. An ack whose body is not UTF-8
 * would put its bytes into the republished alert: it is a 400, and nothing
 * is recorded or republished. The same holds for a silence's reason.
 */
Test(http, a_body_that_is_not_utf8_or_holds_a_nul_is_400_and_changes_nothing)
{
    long long t0 = wall_ms() - 5000;
    int status = 0;
    char path[128], *body;
    cJSON *doc;

    start(EXTRA);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    doc = wait_array("/api/v1/alerts?active=1", 1, 10000);
    snprintf(path, sizeof(path), "/api/v1/alerts/%s/ack", str(cJSON_GetArrayItem(doc, 0), "id"));
    cJSON_Delete(doc);

    body = http("POST", path, TOKEN, "{\"by\":\"ops\xff\xfe\",\"comment\":\"x\"}", &status);
    cr_expect_eq(status, 400, "%s", body);
    cr_expect(strstr(body, "UTF-8") != NULL, "%s", body);
    free(body);
    body = http("POST", "/api/v1/silences", TOKEN,
                "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\",\"reason\":\"\xc3\"}",
                &status);
    cr_expect_eq(status, 400, "%s", body);
    free(body);
    /* A NUL would cut the name short: "a" acked, not "a\u0000b" (audit). */
    body = http("POST", path, TOKEN, "{\"by\":\"a\\u0000b\"}", &status);
    cr_expect_eq(status, 400, "%s", body);
    cr_expect(strstr(body, "NUL") != NULL, "%s", body);
    free(body);
    body = http("POST", path, TOKEN, "{\"by\":\"a\\\\u0000b\"}", &status);  /* a backslash */
    cr_expect_eq(status, 200, "an escaped backslash before u0000 is text: %s", body);
    free(body);
    doc = get_json("/api/v1/alerts?active=1");
    cr_expect_str_eq(str(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "ack"), "by"),
                     "a\\u0000b");
    cJSON_Delete(doc);
    doc = get_json("/api/v1/alerts");
    cr_expect_eq(cJSON_GetArraySize(doc), 2, "only the good ack was recorded and republished");
    cJSON_Delete(doc);
    doc = get_json("/api/v1/silences");
    cr_expect_eq(cJSON_GetArraySize(doc), 0, "no silence was created");
    cJSON_Delete(doc);
}

/* ---- silences ---- */

Test(http, silences_are_created_listed_deleted_and_survive_restart)
{
    int status = 0;
    char *body, path[128], id[32];
    cJSON *doc;

    start(EXTRA "silences:\n  - {match: {site: xisha}, reason: typhoon}\n");
    body = http("POST", "/api/v1/silences", TOKEN,
                "{\"match\":{\"site\":\"dongtan\",\"rule\":\"hot\"},\"duration\":\"2h\","
                "\"reason\":\"maintenance\",\"created_by\":\"ops1\"}", &status);
    cr_assert_eq(status, 200, "%s", body);
    doc = cJSON_Parse(body);
    snprintf(id, sizeof(id), "%s", str(doc, "id"));
    cr_expect_eq(strlen(id), 16, "id: %s", body);
    cJSON_Delete(doc);
    free(body);

    body = http("POST", "/api/v1/silences", TOKEN, "{\"match\":{\"zone\":\"a\"},\"duration\":\"1h\"}",
                &status);
    cr_expect_eq(status, 400);
    cr_expect(strstr(body, "unknown key \\\"zone\\\"") != NULL, "%s", body);
    free(body);
    body = http("POST", "/api/v1/silences", TOKEN, NULL, &status);
    cr_expect_eq(status, 400, "an empty body");
    free(body);

    doc = get_json("/api/v1/silences");
    cr_assert_eq(cJSON_GetArraySize(doc), 2);
    cJSON *c = cJSON_GetArrayItem(doc, 0), *r = cJSON_GetArrayItem(doc, 1);
    cr_expect_str_eq(str(c, "source"), "config");
    cr_expect_str_eq(str(c, "reason"), "typhoon");
    cr_expect_str_eq(str(r, "source"), "api");
    cr_expect_str_eq(str(r, "id"), id);
    cr_expect_str_eq(str(r, "created_by"), "ops1");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(r, "active")));
    cr_expect_str_eq(str(cJSON_GetObjectItem(r, "match"), "rule"), "hot");
    cJSON_Delete(doc);

    /* Persisted: still there after a restart. */
    it_daemon_stop(&daemon_);
    cr_assert_eq(it_daemon_restart(&daemon_), 0);
    doc = get_json("/api/v1/silences");
    cr_assert_eq(cJSON_GetArraySize(doc), 2, "after restart");
    cr_expect_str_eq(str(cJSON_GetArrayItem(doc, 1), "id"), id);
    cJSON_Delete(doc);

    snprintf(path, sizeof(path), "/api/v1/silences/%s", id);
    body = http("DELETE", path, TOKEN, NULL, &status);
    cr_expect_eq(status, 200, "%s", body);
    free(body);
    body = http("DELETE", path, TOKEN, NULL, &status);
    cr_expect_eq(status, 404, "deleted twice: %s", body);
    free(body);
    it_daemon_stop(&daemon_);
    cr_assert_eq(it_daemon_restart(&daemon_), 0);
    doc = get_json("/api/v1/silences");
    cr_expect_eq(cJSON_GetArraySize(doc), 1, "the deletion is persisted too");
    cJSON_Delete(doc);
}

/* Create a run-time silence; its id in id (17 bytes). */
static void new_silence(char *id, size_t len)
{
    int status = 0;
    char *body = http("POST", "/api/v1/silences", TOKEN,
                      "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\"}", &status);
    cr_assert_eq(status, 200, "%s", body);
    cJSON *doc = cJSON_Parse(body);
    snprintf(id, len, "%s", str(doc, "id"));
    cr_assert_eq(strlen(id), 16, "%s", body);
    cJSON_Delete(doc);
    free(body);
}

static int n_silences(void)
{
    cJSON *doc = get_json("/api/v1/silences");
    int n = cJSON_GetArraySize(doc);
    cJSON_Delete(doc);
    return n;
}

/* SPEC §7 lists DELETE /api/v1/silences: the id may be in the path, in ?id= or in a JSON body. */
Test(http, delete_silences_by_path_query_or_body)
{
    int status = 0;
    char *body, path[128], json[128], id[32];

    start(EXTRA);
    new_silence(id, sizeof(id));
    snprintf(path, sizeof(path), "/api/v1/silences?id=%s", id);
    body = http("DELETE", path, TOKEN, NULL, &status);
    cr_expect_eq(status, 200, "DELETE %s: %d %s", path, status, body);
    free(body);
    cr_expect_eq(n_silences(), 0, "deleted by ?id=");
    body = http("DELETE", path, TOKEN, NULL, &status);
    cr_expect_eq(status, 404, "deleted twice: %s", body);
    cr_expect(strstr(body, id) != NULL, "the 404 names the id: %s", body);
    free(body);

    new_silence(id, sizeof(id));
    snprintf(json, sizeof(json), "{\"id\":\"%s\"}", id);
    body = http("DELETE", "/api/v1/silences", TOKEN, json, &status);
    cr_expect_eq(status, 200, "DELETE with body %s: %d %s", json, status, body);
    free(body);
    cr_expect_eq(n_silences(), 0, "deleted by a JSON body");
    body = http("DELETE", "/api/v1/silences", TOKEN, json, &status);
    cr_expect_eq(status, 404, "deleted twice: %s", body);
    free(body);

    /* No id, a bad body, two different ids: 400 with what to send; nothing deleted. */
    new_silence(id, sizeof(id));
    static const struct { const char *path, *body, *says; } bad[] = {
        { "/api/v1/silences", NULL, "its id" },
        { "/api/v1/silences?id=", NULL, "its id" },
        { "/api/v1/silences", "{}", "its id" },
        { "/api/v1/silences", "not json", "JSON object" },
        { "/api/v1/silences", "{\"id\":42}", "JSON object" },
        { "/api/v1/silences", "{\"id\":\"0123456789abcdef\"},{\"id\":\"x\"}", "JSON object" },
        { "/api/v1/silences?id=0123456789abcdef", "{\"id\":\"fedcba9876543210\"}", "two different" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        body = http("DELETE", bad[i].path, TOKEN, bad[i].body, &status);
        cr_expect_eq(status, 400, "DELETE %s %s: %d %s", bad[i].path, bad[i].body ? bad[i].body : "",
                     status, body);
        cr_expect(strstr(body, bad[i].says) != NULL, "DELETE %s: %s", bad[i].path, body);
        free(body);
    }
    cr_expect_eq(n_silences(), 1);
    /* The same id twice is one id. */
    snprintf(path, sizeof(path), "/api/v1/silences?id=%s", id);
    snprintf(json, sizeof(json), "{\"id\":\"%s\"}", id);
    body = http("DELETE", path, TOKEN, json, &status);
    cr_expect_eq(status, 200, "%s", body);
    free(body);
    cr_expect_eq(n_silences(), 0);
}

Test(http, runtime_silence_records_but_does_not_publish)
{
    long long t0 = wall_ms() - 5000;
    struct it_client *sub;
    int status = 0;
    char *body;
    cJSON *doc;

    start(EXTRA);
    sub = it_client_new(&broker, "it-http-sub");
    cr_assert_not_null(sub);
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    body = http("POST", "/api/v1/silences", TOKEN,
                "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\"}", &status);
    cr_assert_eq(status, 200, "%s", body);
    free(body);

    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    doc = wait_array("/api/v1/alerts", 1, 10000);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "silenced")),
              "the dongtan alert is recorded as silenced");
    cJSON_Delete(doc);
    /* The next alert (not silenced) is published after it: anything of dongtan would come first. */
    publish("sensors/water/xisha/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    for (;;) {
        struct it_msg *m = it_next(sub, 10000);
        cr_assert_not_null(m, "the xisha alert was not published");
        bool xisha = strstr(m->payload, "\"site\":\"xisha\"") != NULL;
        cr_expect(strstr(m->payload, "\"site\":\"dongtan\"") == NULL, "silenced alert published "
                  "on %s", m->topic);
        it_msg_free(m);
        if (xisha)
            break;
    }
    it_client_free(sub);
}

/*
 * The dashboard's live stream asks for silenced alerts too (?silenced=1): an
 * operator sees live what a reload of the history shows. They come as named
 * "silenced" events without an id, so Last-Event-ID stays a published seq;
 * a stream that does not ask never sees them.
 */
Test(http, a_stream_that_asks_for_silenced_alerts_gets_them_as_named_events)
{
    long long t0 = wall_ms() - 5000;
    struct sse_reader *plain, *all;
    int status = 0;
    char *body;

    start(EXTRA);
    body = http("GET", "/api/v1/alerts/stream?silenced=maybe", NULL, NULL, &status);
    cr_expect_eq(status, 400, "%s", body);
    cr_expect(strstr(body, "silenced=1") != NULL, "%s", body);
    free(body);
    body = http("POST", "/api/v1/silences", TOKEN,
                "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\"}", &status);
    cr_assert_eq(status, 200, "%s", body);
    free(body);
    plain = sse_open("/api/v1/alerts/stream", NULL, 1);
    all = sse_open("/api/v1/alerts/stream?silenced=1", NULL, 2);
    cr_assert(sse_wait(plain, 0, 10000) && sse_wait(all, 0, 10000), "the streams did not open");

    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    cr_assert(sse_wait(all, 1, 10000), "the silenced alert did not reach ?silenced=1");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(all->alerts[0], "silenced")));
    cr_expect_str_eq(str(all->alerts[0], "site"), "dongtan");
    cr_expect_eq(all->ids[0], 0ULL, "a silenced event carries no id");
    cr_expect_eq(all->named, 1, "it is a named event");

    publish("sensors/water/xisha/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    cr_assert(sse_wait(all, 2, 10000), "the published alert did not follow");
    cr_expect_str_eq(str(all->alerts[1], "site"), "xisha");
    cr_expect_eq(all->ids[1], 1ULL);
    cr_assert(sse_wait(plain, 1, 10000), "the published alert did not reach the plain stream");
    cr_expect_str_eq(str(plain->alerts[0], "site"), "xisha", "the plain stream got a silenced alert");
    cr_expect_eq(plain->ids[0], 1ULL);
    cr_expect_eq(plain->named, 0);
    sse_close(plain);
    sse_close(all);
}

/* An ack under a silence is recorded, not published, even when the episode
 * was published before the silence began (SPEC section 4). */
Test(http, an_ack_under_a_silence_that_began_after_the_firing_is_not_published)
{
    long long t0 = wall_ms() - 5000;
    struct it_client *sub;
    struct it_msg *m;
    int status = 0;
    char path[128], *body;
    cJSON *doc, *a;

    start(EXTRA);
    sub = it_client_new(&broker, "it-http-ack-sub");
    cr_assert_not_null(sub);
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    publish("sensors/water/dongtan/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    doc = wait_array("/api/v1/alerts?active=1", 1, 10000);
    snprintf(path, sizeof(path), "/api/v1/alerts/%s/ack", str(cJSON_GetArrayItem(doc, 0), "id"));
    cJSON_Delete(doc);

    body = http("POST", "/api/v1/silences", TOKEN,
                "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\"}", &status);
    cr_assert_eq(status, 200, "%s", body);
    free(body);
    body = http("POST", path, TOKEN, "{\"by\":\"ops1\"}", &status);
    cr_expect_eq(status, 200, "%s", body);
    free(body);
    doc = wait_array("/api/v1/alerts", 2, 10000);
    a = cJSON_GetArrayItem(doc, 1);
    cr_expect_not_null(cJSON_GetObjectItem(a, "ack"), "the ack is recorded");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(a, "silenced")), "and marked silenced");
    cJSON_Delete(doc);
    /* A later alert elsewhere is published; the ack never was, before it. */
    publish("sensors/water/xisha/w01", "{\"ts\":%lld,\"nh3_n\":2.0}", t0);
    int dongtan = 0;
    for (;;) {
        m = it_next(sub, 10000);
        cr_assert_not_null(m, "the xisha alert was not published");
        bool xisha = strstr(m->payload, "\"site\":\"xisha\"") != NULL;
        cr_expect(strstr(m->payload, "\"ack\"") == NULL, "the ack was published on %s: %s",
                  m->topic, m->payload);
        dongtan += !xisha;
        it_msg_free(m);
        if (xisha)
            break;
    }
    cr_expect_eq(dongtan, 2, "the firing went out on alerts.topic and active_topic, once");
    it_client_free(sub);
}

/* Alert streams stay open; past their cap a new one is refused with 503 and
 * what to do, and the health, readiness and metrics endpoints still answer.
 * A stream that ends frees its place. */
Test(http, alert_streams_past_their_cap_get_503_and_health_still_answers, .timeout = 120)
{
    static int fds[128];
    int status = 0, fd = -1;
    char *body;

    start(EXTRA);
    for (int i = 0; i < 128; i++)
        cr_assert((fds[i] = stream_open(i)) >= 0, "stream %d of 128 was not served", i);
    body = http("GET", "/api/v1/alerts/stream", NULL, NULL, &status);
    cr_expect_eq(status, 503, "the 129th stream: %d %s", status, body);
    cr_expect(strstr(body, "alert streams are open") != NULL, "%s", body);
    free(body);
    static const char *const paths[] = { "/healthz", "/readyz", "/metrics" };
    for (int i = 0; i < 3; i++) {
        body = http("GET", paths[i], NULL, NULL, &status);
        cr_expect_eq(status, 200, "%s with 128 streams open: %d", paths[i], status);
        free(body);
    }
    cr_assert(stream_leave(fds[0], 0), "stream 0 was not ended");
    for (int i = 0; i < 50 && fd < 0; i++) {       /* its place is given back as it is freed */
        body = http("GET", "/healthz", NULL, NULL, &status);
        free(body);
        if ((fd = stream_open(128 + i)) < 0)
            nap_ms(100);
    }
    cr_expect_geq(fd, 0, "an ended stream did not free its place");
    if (fd >= 0)
        close(fd);
    for (int i = 1; i < 128; i++)
        close(fds[i]);
}

/* A connection that sends a byte and no more until it closes: 1, or 0 when
 * the server kept it open for the whole minute (its old 120 s timeout). */
static int closed_within_a_minute(int fd)
{
    struct timeval tv = { 60, 0 };
    char buf[4096];
    ssize_t r;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
        ;
    return r == 0;
}

/* Connections that never finish their headers each held a thread and one of
 * the 512 places for 120 s: 512 of them shut every client out (audit). A
 * connection waiting for a request's headers, new or kept alive, is closed
 * after 10 s without a byte. */
Test(http, connections_that_never_finish_their_headers_are_closed, .timeout = 150)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    static const char *const sent[] = {
        "",                                                     /* nothing at all */
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",                  /* no blank line */
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",              /* kept alive after */
    };
    int fds[3];

    start(EXTRA);
    a.sin_port = htons((uint16_t)daemon_.http_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(fds[i] >= 0);
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        cr_assert_eq(send(fds[i], sent[i], strlen(sent[i]), 0), (ssize_t)strlen(sent[i]));
    }
    for (int i = 0; i < 3; i++) {
        cr_expect(closed_within_a_minute(fds[i]), "connection %d (sent \"%s\") still open", i,
                  sent[i]);
        close(fds[i]);
    }
    int status = 0;
    char *body = http("GET", "/healthz", NULL, NULL, &status);
    cr_expect_eq(status, 200);
    free(body);
}

/*
 * Query answers are held until their client has read them: 57 slow readers
 * of a 27 MB answer held 1.2 GB (re-audit). Past a budget of bytes in
 * flight (64 MiB; 1 MiB here, http.test_answer_budget) a new query is 503
 * until the readers catch up.
 */
Test(http, queries_past_the_answer_budget_wait_for_slow_readers, .timeout = 120)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    char p[4096], req[256], *body;
    int status = 0, fd, small = 4096;
    long long t0 = wall_ms() - 3600000LL;
    size_t o;

    start(EXTRA);
    /* 200,000 points (~5 MB of answer: more than the kernel's socket buffers). */
    for (int m = 0; m < 2000; m++) {
        o = (size_t)snprintf(p, sizeof(p), "{\"ts\":%lld", t0 + m * 1000LL);
        for (int k = 0; k < 100; k++)
            o += (size_t)snprintf(p + o, sizeof(p) - o, ",\"m%02d\":%d.%d", k, m, k);
        snprintf(p + o, sizeof(p) - o, "}");
        cr_assert_eq(it_publish_async(pub, "sensors/water/big/w01", p, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
    for (int i = 0; i < 300; i++) {
        body = http("GET", "/api/v1/series?series=water/big/w01/*", NULL, NULL, &status);
        bool all = strstr(body, "\"count\":2000}]") != NULL && strstr(body, "m99") != NULL;
        free(body);
        if (all)
            break;
        nap_ms(100);
    }
    it_daemon_stop(&daemon_);
    body = NULL;
    cr_assert_eq(it_run(&body, "sed -i 's|^  token_file: .*|&\\n  test_answer_budget: 1MiB|' '%s'",
                        daemon_.cfg), 0);
    free(body);
    cr_assert_eq(it_daemon_restart(&daemon_), 0);
    cr_assert(it_daemon_wait_log(&daemon_, "listening on http", 1, 20000));

    /* A reader that asks and then reads nothing. */
    a.sin_port = htons((uint16_t)daemon_.http_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    snprintf(req, sizeof(req), "GET /api/v1/query?series=water/big/w01/*&from=-2h HTTP/1.1\r\n"
             "Host: x\r\n\r\n");
    cr_assert_eq(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    status = 0;
    for (int i = 0; i < 200 && status != 503; i++) {      /* until its answer is built */
        body = http("GET", "/api/v1/query?series=water/big/w01/m00&from=-2h", NULL, NULL,
                    &status);
        if (status == 503)
            cr_expect(strstr(body, "retry in a few seconds") != NULL, "%s", body);
        free(body);
        if (status != 503)
            nap_ms(100);
    }
    cr_expect_eq(status, 503, "a query while 5 MB waited for a reader of a 1 MiB budget");
    body = http("GET", "/healthz", NULL, NULL, &status);
    cr_expect_eq(status, 200, "the rest of the API still answers");
    free(body);
    close(fd);                                            /* the reader gives up: freed */
    for (int i = 0; i < 100; i++) {
        body = http("GET", "/api/v1/query?series=water/big/w01/m00&from=-2h", NULL, NULL,
                    &status);
        free(body);
        if (status == 200)
            break;
        nap_ms(100);
    }
    cr_expect_eq(status, 200, "the budget was not given back");
}

/* ---- reload ---- */

Test(http, reload_with_a_broken_file_is_400_with_the_error_lines)
{
    int status = 0;
    char *body, *good = NULL, prefix[400];
    FILE *f;

    start(EXTRA);
    cr_assert_eq(it_run(&good, "cat '%s'", daemon_.cfg), 0);
    f = fopen(daemon_.cfg, "a");
    cr_assert_not_null(f);
    fputs("  - {name: bad, kind: threshold, select: \"water/*/*/ph\", abvoe: 9}\n", f);
    fclose(f);

    body = http("POST", "/api/v1/reload", TOKEN, NULL, &status);
    cr_expect_eq(status, 400, "%s", body);
    cJSON *doc = cJSON_Parse(body), *e;
    cr_assert_not_null(doc, "%s", body);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(doc, "ok")));
    cJSON *errs = cJSON_GetObjectItem(doc, "errors");
    cr_assert_gt(cJSON_GetArraySize(errs), 0, "%s", body);
    snprintf(prefix, sizeof(prefix), "%s:", daemon_.cfg);
    bool named = false;
    cJSON_ArrayForEach(e, errs) {
        const char *line = cJSON_GetStringValue(e);
        unsigned l, c;
        cr_expect(line != NULL && strncmp(line, prefix, strlen(prefix)) == 0 &&
                  sscanf(line + strlen(prefix), "%u:%u: error: ", &l, &c) == 2,
                  "not FILE:LINE:COLUMN: error: %s", line ? line : "(null)");
        named |= line != NULL && strstr(line, "abvoe") != NULL;
    }
    cr_expect(named, "no error names the bad key: %s", body);
    cJSON_Delete(doc);
    free(body);

    /* The running config stayed; a good file reloads. */
    f = fopen(daemon_.cfg, "w");
    cr_assert_not_null(f);
    fputs(good, f);
    fclose(f);
    free(good);
    body = http("POST", "/api/v1/reload", TOKEN, NULL, &status);
    cr_expect_eq(status, 200, "%s", body);
    cr_expect_str_eq(body, "{\"ok\":true}");
    free(body);
}

/* ---- device inventory ---- */

/* SPEC section 1: the inventory's lat/lon feed the dashboard, which reads them here. */
Test(http, devices_lists_the_inventory_with_names_and_positions)
{
    start(EXTRA "devices:\n"
          "  - {source: water, site: dongtan, device: w01, name: \"东滩 1号站\", body: river, "
          "target: III, lat: 31.5, lon: 121.9}\n"
          "  - {source: water, site: hengsha, device: w02, body: lake}\n"
          "  - {source: water, site: hengsha, device: a01, pollutants: [pm25, o3]}\n");
    cJSON *doc = get_json("/api/v1/devices");
    cr_assert(cJSON_IsArray(doc) && cJSON_GetArraySize(doc) == 3, "%s", cJSON_PrintUnformatted(doc));
    const cJSON *a = cJSON_GetArrayItem(doc, 0), *b = cJSON_GetArrayItem(doc, 1);
    const cJSON *c = cJSON_GetArrayItem(doc, 2);
    cr_expect_str_eq(str(a, "source"), "water");
    cr_expect_str_eq(str(a, "site"), "dongtan");
    cr_expect_str_eq(str(a, "device"), "w01");
    cr_expect_str_eq(str(a, "name"), "东滩 1号站");
    cr_expect_str_eq(str(a, "body"), "river");
    cr_expect_str_eq(str(a, "target"), "III");
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "lat")), 31.5);
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "lon")), 121.9);
    cr_expect_str_eq(str(b, "device"), "w02");
    cr_expect_str_eq(str(b, "body"), "lake");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(b, "name")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(b, "target")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(b, "lat")) && cJSON_IsNull(cJSON_GetObjectItem(b, "lon")));
    cr_expect_null(cJSON_GetObjectItem(b, "pollutants"), "not declared");
    char *pl = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "pollutants"));
    cr_expect_str_eq(pl, "[\"o3\",\"pm25\"]");
    free(pl);
    cJSON_Delete(doc);
}

/* ---- dashboard ---- */

Test(http, dashboard_is_one_self_contained_page)
{
    char *resp;

    start(EXTRA);
    resp = raw("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.100s", resp);
    cr_expect(strcasestr(resp, "\r\nContent-Type: text/html; charset=utf-8\r\n") != NULL);
    static const char *const must[] = {
        "<!doctype html>",
        /* the stream goes on from the newest alert of the seeded history: none lost between */
        "new EventSource('/api/v1/alerts/stream?silenced=1' + (last ? '&since=' + last : ''))",
        "/api/v1/alerts?active=1",
        /* silenced alerts reach the live stream too, as the history shows them */
        "es.addEventListener('silenced', onAlert)",
        /* an operator acknowledges from the page, with the token */
        "ackAlert(a.id)", "'Authorization': 'Bearer ' + token", "'/ack'",
        /* the feed is announced; Chinese messages are marked so */
        "aria-live=\"polite\"", "m.lang = 'zh'",
        "water/*/*/class", "air/*/*/aqi", "/api/v1/series", "#00E400", "#FFFF00", "#FF7E00",
        "#FF0000", "#99004C", "#7E0023", "劣Ⅴ类", "</html>",
        "if (a.silenced)", "(a.silenced ?",  /* silenced alerts are marked as such */
        /* SPEC section 1: lat/lon of the inventory feed the dashboard */
        "getJSON('/api/v1/devices')", "d.lat", "d.lon", "d.name",
        /* the chart's series list is read again, so a page opened before any data fills up */
        "setInterval(loadSeries,",
        /* the chart's name is also a glob (a label may hold '*'): it draws the series picked */
        "res.find(s => s.series === name)",
        /* no request for /favicon.ico, a 404 in the browser's console on every load */
        "<link rel=\"icon\" href=\"data:,\">",
        /* a water tile is timed by its class' last point, not by the start of its hour */
        "getJSON('/api/v1/series?match=' + encodeURIComponent('water/*/*/class'))",
        /* an acknowledged alert shows the ack's comment ("crew on site"), not only who */
        "(a.ack.comment ? ': ' + a.ack.comment : '')",
    };
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        cr_expect(strstr(resp, must[i]) != NULL, "the page lacks %s", must[i]);
    /* The AQI tiles name and colour each level as the standards' table does (and the alerts). */
    for (int level = 1; level <= 6; level++) {
        const struct iw_aqi_level_info *l = iw_aqi_level_info(level);
        char want[160];
        snprintf(want, sizeof(want), "'%s', '%s', '%s'", l->category_zh, l->category_en, l->hex);
        cr_expect(strstr(resp, want) != NULL, "the AQI tiles lack level %d as %s", level, want);
    }
    static const char *const never[] = {
        "src=\"http", "href=\"http", "<link rel=\"stylesheet", "<script src", "@import",
        "url(http",
    };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        cr_expect(strstr(resp, never[i]) == NULL, "the page loads an external resource: %s",
                  never[i]);
    free(resp);
}

/*
 * Only the page's own script runs: the policy names it by its SHA-256, not
 * 'unsafe-inline', so markup that ever reached the page (a site label, an ack
 * comment) could run nothing.
 */
Test(http, dashboard_runs_its_own_script_only)
{
    unsigned char md[EVP_MAX_MD_SIZE], b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    unsigned int n = 0;
    char want[160], *resp, *from, *to, *csp, *eol;

    start(EXTRA);
    resp = raw("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    cr_assert((csp = strcasestr(resp, "\r\nContent-Security-Policy: ")) != NULL, "%.400s", resp);
    cr_assert((eol = strstr(csp + 2, "\r\n")) != NULL);
    *eol = '\0';
    cr_assert((from = strstr(eol + 1, "<script>")) != NULL);
    cr_assert((to = strstr(from += 8, "</script>")) != NULL);
    cr_assert_eq(EVP_Digest(from, (size_t)(to - from), md, &n, EVP_sha256(), NULL), 1);
    EVP_EncodeBlock(b64, md, (int)n);
    snprintf(want, sizeof(want), "script-src 'sha256-%s';", (const char *)b64);
    cr_expect(strstr(csp, want) != NULL, "%s lacks %s", csp, want);
    cr_expect(strstr(csp, "script-src 'unsafe-inline'") == NULL, "%s", csp);
    cr_expect(strstr(csp, "frame-ancestors 'none'") != NULL, "%s", csp);
    free(resp);
}

/* ---- listening ---- */

Test(http, a_port_in_use_is_named_with_what_to_do)
{
    char cfg[400], data[400], *out = NULL;
    FILE *f;

    start(EXTRA);
    snprintf(cfg, sizeof(cfg), "%s/second.yaml", daemon_.dir);
    snprintf(data, sizeof(data), "%s/data2", daemon_.dir);
    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "broker:\n  url: mqtt://127.0.0.1:%d\n  client_id: islewatchd-second-%d\n"
               "storage:\n  path: %s\nhttp:\n  listen: 127.0.0.1:%d\n%s",
            broker.port, (int)getpid(), data, daemon_.http_port, EXTRA);
    fclose(f);
    int st = it_run(&out, "timeout 60 %s -c '%s' 2>&1", it_bin("islewatchd"), cfg);
    char want[64];
    snprintf(want, sizeof(want), "port %d is already in use", daemon_.http_port);
    cr_expect_neq(st, 0, "a second daemon on the same port must not run: %s", out);
    cr_expect(out != NULL && strstr(out, want) != NULL, "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "set http.listen to a free port") != NULL, "%s",
              out ? out : "");
    free(out);
}
