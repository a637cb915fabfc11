/*
 * Faults (SPEC §2): kill -9 of the daemon mid-stream (QoS 2: nothing lost,
 * nothing twice; QoS 1: at most one message per connection per kill), the
 * broker stopped and restarted mid-stream, and a store slowed on purpose
 * (backpressure: memory stays bounded, nothing is lost).
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "it.h"

static long long recent_ts(void) { return (long long)time(NULL) * 1000 - 3600 * 1000LL; }

static long long count_points(const struct it_daemon *d, const char *glob)
{
    char *out = NULL;
    long long n = 0;
    if (it_run(&out, "%s series '%s' --db %s --format json", it_bin("islewatch"), glob, d->data) != 0) {
        free(out);
        return -1;
    }
    cJSON *doc = cJSON_Parse(out), *it;
    free(out);
    cJSON_ArrayForEach(it, doc)
        n += (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "count"));
    cJSON_Delete(doc);
    return n;
}

/* Wait until the count stops at or reaches want; returns the last count. */
static long long settle(const struct it_daemon *d, const char *glob, long long want, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms, n = -1, prev = -2;
    int stable = 0;
    while (it_now_ms() < end) {
        n = count_points(d, glob);
        if (n == want)
            return n;
        stable = n == prev ? stable + 1 : 0;
        if (n > want || (n >= 0 && stable >= 25))     /* 5 s without progress */
            return n;
        prev = n;
        struct timespec ts = { 0, 200 * 1000000 };
        nanosleep(&ts, NULL);
    }
    return n;
}

static void publish_retrying(struct it_client *c, const char *topic, const char *payload, int qos)
{
    for (int tries = 0; it_publish_async(c, topic, payload, qos) != 0; tries++) {
        cr_assert_lt(tries, 3000, "cannot publish for 30 s");
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

/*
 * `--agg count` of the series matching glob over [from, to] in `step`
 * buckets: the count of the bucket starting at `at`, or with at == ALL the
 * sum over every bucket. -1 if the query failed.
 */
#define ALL LLONG_MIN
static long long agg_count(const struct it_daemon *d, const char *glob, long long from,
                           long long to, const char *step, long long at)
{
    char *out = NULL;
    long long n = 0;
    cJSON *s, *p;
    if (it_run(&out, "%s query '%s' --from %lld --to %lld --step %s --agg count --db %s --format json",
               it_bin("islewatch"), glob, from, to, step, d->data) != 0) {
        free(out);
        return -1;
    }
    cJSON *doc = cJSON_Parse(out);
    free(out);
    cJSON_ArrayForEach(s, doc)
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points"))
            if (at == ALL || (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0)) == at)
                n += (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
    cJSON_Delete(doc);
    return n;
}

static void set_broker(struct it_daemon *d, const char *line)
{
    cr_assert_eq(it_daemon_set_broker(d, line), 0, "restart with broker %s", line);
}

/*
 * total messages from 20 devices, one round every step_ms, through `conns`
 * connections; `kills` kill -9s (at 30 % and 60 %), each restarted a tenth of
 * the stream later. Checks each stored value, and that the minute and hour
 * rollups count every stored point.
 */
static void stream_with_kill(int qos, int conns, int total, int kills, long long t0,
                             long long step_ms, const char *protocol, long long *stored)
{
    struct it_broker b;
    struct it_daemon d;
    char extra[256];

    snprintf(extra, sizeof(extra),
             "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: %d}\n", qos);
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, extra), 0);
    if (conns > 1) {
        char line[64];
        snprintf(line, sizeof(line), "connections: %d", conns);
        set_broker(&d, line);
    }
    if (protocol != NULL) {
        char line[64];
        snprintf(line, sizeof(line), "protocol: \"%s\"", protocol);
        set_broker(&d, line);
    }
    struct it_client *pub = it_client_new(&b, "it-fault-pub");
    cr_assert_not_null(pub);
    for (int i = 0; i < total; i++) {
        char topic[96], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/k/d%02d", i % 20);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%d}", t0 + (long long)(i / 20) * step_ms, i);
        publish_retrying(pub, topic, payload, qos);
        for (int k = 0; k < kills; k++) {
            int kill_at = total * (3 + 3 * k) / 10;
            if (i == kill_at) {
                cr_assert_eq(it_flush(pub, 60000), 0);
                it_daemon_kill9(&d);                  /* mid-stream: messages keep coming */
            }
            if (i == kill_at + total / 10)
                cr_assert_eq(it_daemon_restart(&d), 0, "daemon restarts after kill -9 %d", k + 1);
        }
    }
    cr_assert_eq(it_flush(pub, 120000), 0);
    *stored = settle(&d, "water/k/*/ph", total, 180000);

    /* Values: each stored point carries the value published for its (device, ts). */
    long long to = t0 + (long long)(total / 20 + 1) * step_ms;
    char *out = NULL;
    cr_assert_eq(it_run(&out, "%s query 'water/k/*/ph' --from %lld --to %lld --db %s --format json",
                        it_bin("islewatch"), t0, to, d.data), 0);
    cJSON *doc = cJSON_Parse(out), *s, *p;
    free(out);
    cJSON_ArrayForEach(s, doc) {
        int dev = -1;
        sscanf(cJSON_GetStringValue(cJSON_GetObjectItem(s, "series")), "water/k/d%d/ph", &dev);
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points")) {
            long long ts = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
            int v = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
            cr_expect_eq(v, (int)((ts - t0) / step_ms) * 20 + dev, "value at %lld of d%02d", ts, dev);
        }
    }
    cJSON_Delete(doc);
    /* Rollups: a stop (SIGTERM: the shards finish their deferred work)
     * leaves what the kills left, and readers use the rollups below each
     * series' watermark. */
    it_daemon_stop(&d);
    long long from = t0 - t0 % 3600000;
    long long in_minutes = agg_count(&d, "water/k/*/ph", from, to, "1m", ALL);
    long long in_hours = agg_count(&d, "water/k/*/ph", from, to + 3600000, "1h", ALL);
    cr_expect_eq(in_minutes, *stored, "minute rollups count %lld of %lld points", in_minutes, *stored);
    cr_expect_eq(in_hours, *stored, "hour rollups count %lld of %lld points", in_hours, *stored);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(faults, qos2_kill9_mid_stream_loses_nothing_stores_nothing_twice, .timeout = 600)
{
    long long stored;
    stream_with_kill(2, 1, 20000, 1, recent_ts(), 1000, NULL, &stored);
    /* One point per (series, ts): a duplicate cannot raise the count, so equality
     * means every message exactly once. */
    cr_assert_eq(stored, 20000, "stored %lld of 20000 QoS 2 messages", stored);
}

/*
 * Three connections share the subscription, so one message can be stored
 * after another connection's later one moved its series' rollup watermark;
 * Paho redelivers persisted QoS 2 messages after each restart. One round per
 * minute: the stream crosses 16 hour boundaries.
 */
Test(faults, qos2_two_kill9s_three_connections_rollups_count_every_point, .timeout = 600)
{
    long long stored;
    stream_with_kill(2, 3, 20000, 2, (long long)time(NULL) * 1000 - 20 * 3600000LL, 60000, NULL,
                     &stored);
    cr_assert_eq(stored, 20000, "stored %lld of 20000 QoS 2 messages", stored);
}

/*
 * Six QoS 2 messages to one device over `protocol` ("3.1.1" or "5"); the
 * daemon kills itself (SIGKILL) at its third message write, before or after
 * it (kill_env: ISLEWATCH_TEST_KILL_BEFORE_WRITES or _AFTER_WRITES, test-only),
 * then restarts. Each message must be stored exactly once: with_ts false
 * means no ts, so a second handling would land on a new time of receipt.
 */
static void kill_at_third_write(const char *protocol, const char *kill_env, bool with_ts)
{
    struct it_broker b;
    struct it_daemon d;
    char line[64];
    int st = 0;
    long long t0 = recent_ts();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 2}\n"), 0);
    snprintf(line, sizeof(line), "protocol: \"%s\"", protocol);
    setenv(kill_env, "3", 1);
    set_broker(&d, line);                         /* restarts it with the kill armed */
    unsetenv(kill_env);
    struct it_client *pub = it_client_new(&b, "it-fault-third");
    cr_assert_not_null(pub);
    for (int i = 0; i < 6; i++) {
        char payload[96];
        if (with_ts)
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%d}", t0 + i * 1000LL, i);
        else
            snprintf(payload, sizeof(payload), "{\"ph\":%d}", i);
        publish_retrying(pub, "sensors/water/k/d01", payload, 2);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
    for (int i = 0; i < 6000 && waitpid(d.pid, &st, WNOHANG) != d.pid; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the daemon killed itself (status %d)", st);
    d.pid = 0;
    cr_assert_eq(it_daemon_restart(&d), 0);

    long long stored = settle(&d, "water/k/d01/ph", 6, 60000);
    cr_expect_eq(stored, 6, "stored %lld points for 6 messages", stored);
    char *out = NULL;
    cr_assert_eq(it_run(&out, "%s query 'water/k/d01/ph' --from 0 --to now --db %s --format json",
                        it_bin("islewatch"), d.data), 0);
    cJSON *doc = cJSON_Parse(out), *p;
    free(out);
    int seen[6] = {0};
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
        int v = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
        cr_assert(v >= 0 && v < 6, "value %d", v);
        seen[v]++;
    }
    cJSON_Delete(doc);
    for (int v = 0; v < 6; v++)
        cr_expect_eq(seen[v], 1, "message %d stored %d times", v, seen[v]);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A QoS 2 message without ts gets its time of receipt (SPEC §1). Killed
 * after its samples are written but before Paho is told, the daemon gets it
 * again at restart (the broker resends PUBREL): it must land on the same
 * point, not on a second one stamped with the new time of receipt (SPEC §2:
 * none twice).
 */
Test(faults, qos2_message_without_ts_redelivered_after_kill9_is_stored_once, .timeout = 300)
{
    kill_at_third_write("3.1.1", "ISLEWATCH_TEST_KILL_AFTER_WRITES", false);
}

Test(faults, qos2_message_cut_short_by_kill9_is_stored_after_restart, .timeout = 300)
{
    kill_at_third_write("3.1.1", "ISLEWATCH_TEST_KILL_BEFORE_WRITES", true);
}

/*
 * broker.protocol "5": Paho sends PUBREC before it calls the daemon and never
 * delivers the message again after a restart; the daemon replays what Paho
 * persisted (iw_mqtt_replay). A message cut short is stored at restart ...
 */
Test(faults, mqtt5_qos2_message_cut_short_by_kill9_is_stored_after_restart, .timeout = 300)
{
    kill_at_third_write("5", "ISLEWATCH_TEST_KILL_BEFORE_WRITES", true);
}

/* ... and one handled just before the kill is not stored a second time. */
Test(faults, mqtt5_qos2_message_without_ts_handled_before_kill9_is_stored_once, .timeout = 300)
{
    kill_at_third_write("5", "ISLEWATCH_TEST_KILL_AFTER_WRITES", false);
}

Test(faults, mqtt5_qos2_kill9_mid_stream_loses_nothing_stores_nothing_twice, .timeout = 600)
{
    long long stored;
    stream_with_kill(2, 1, 20000, 1, recent_ts(), 1000, "5", &stored);
    cr_assert_eq(stored, 20000, "stored %lld of 20000 QoS 2 messages over MQTT 5", stored);
}

/* Each connection replays its own client id's records; one round per minute. */
Test(faults, mqtt5_qos2_two_kill9s_three_connections_rollups_count_every_point, .timeout = 600)
{
    long long stored;
    stream_with_kill(2, 3, 20000, 2, (long long)time(NULL) * 1000 - 20 * 3600000LL, 60000, "5",
                     &stored);
    cr_assert_eq(stored, 20000, "stored %lld of 20000 QoS 2 messages over MQTT 5", stored);
}

Test(faults, qos1_kill9_loses_at_most_one_message_per_connection, .timeout = 600)
{
    long long stored;
    stream_with_kill(1, 1, 10000, 1, recent_ts(), 1000, NULL, &stored);
    cr_assert_leq(stored, 10000);
    cr_assert_geq(stored, 10000 - 1, "stored %lld of 10000 QoS 1 messages (1 connection, 1 kill)",
                  stored);
}

struct busy {
    const struct it_broker *b;
    _Atomic int stop;
    long long t0;
};

/* Keeps every shard busy (so it defers its late recomputes) until told to stop. */
static void *busy_main(void *arg)
{
    struct busy *bz = arg;
    struct it_client *c = it_client_new(bz->b, "it-busy-pub");
    for (int i = 0; c != NULL && !atomic_load(&bz->stop); i++) {
        char topic[96], payload[96];
        snprintf(topic, sizeof(topic), "sensors/water/busy/b%02d", i % 20);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7}", bz->t0 + (long long)i * 10);
        (void)it_publish_async(c, topic, payload, 0);
        struct timespec ts = { 0, 2 * 1000000 };
        nanosleep(&ts, NULL);
    }
    it_client_free(c);
    return NULL;
}

/*
 * A sample older than its series' rollup watermark (an hour already rolled
 * up), then a kill -9 before the shard recomputed that hour (it defers the
 * recompute while busy): the restart must still give rollups that count every
 * raw point.
 */
Test(faults, a_late_samples_rollup_correction_survives_kill9, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long h = ((long long)time(NULL) * 1000 - 3 * 3600000LL) / 3600000 * 3600000;
    char payload[96];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-late-pub");
    for (int i = 0; i < 60; i++) {            /* hour h, one sample a minute; two in minute 30 */
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7}", h + i * 60000LL);
        cr_assert_eq(it_publish(pub, "sensors/water/lt/late", payload, 1, false), 0);
    }
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7}", h + 30 * 60000LL + 10000);
    cr_assert_eq(it_publish(pub, "sensors/water/lt/late", payload, 1, false), 0);
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7}", h + 3600000);   /* rolls hour h up */
    cr_assert_eq(it_publish(pub, "sensors/water/lt/late", payload, 1, false), 0);
    cr_assert_eq(settle(&d, "water/lt/late/ph", 62, 60000), 62);
    long long before = agg_count(&d, "water/lt/late/ph", h, h + 3600000, "1h", h);
    cr_assert_eq(before, 61, "hour %lld counts %lld of 61 points before the late one", h, before);

    struct busy bz = { .b = &b, .t0 = h };
    pthread_t busy;
    cr_assert_eq(pthread_create(&busy, NULL, busy_main, &bz), 0);
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7}", h + 30 * 60000LL + 20000);
    cr_assert_eq(it_publish(pub, "sensors/water/lt/late", payload, 1, false), 0);
    cr_assert_eq(settle(&d, "water/lt/late/ph", 63, 60000), 63, "the late sample is stored");
    it_daemon_kill9(&d);
    atomic_store(&bz.stop, 1);
    pthread_join(busy, NULL);

    cr_assert_eq(it_daemon_restart(&d), 0);
    it_daemon_stop(&d);
    long long hour = agg_count(&d, "water/lt/late/ph", h, h + 3600000, "1h", h);
    long long minute = agg_count(&d, "water/lt/late/ph", h, h + 3600000, "1m", h + 30 * 60000LL);
    cr_expect_eq(hour, 62, "hour rollup counts %lld of 62 points", hour);
    cr_expect_eq(minute, 3, "minute 30 counts %lld of 3 points", minute);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* 6,000 messages at `qos`, the broker stopped and restarted after 2,000;
 * protocol NULL is the default (3.1.1). */
static void broker_restart_mid_stream(const char *protocol, int qos)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = recent_ts();
    char extra[128];

    snprintf(extra, sizeof(extra),
             "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: %d}\n", qos);
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, extra), 0);
    if (protocol != NULL) {
        char line[64];
        snprintf(line, sizeof(line), "protocol: \"%s\"", protocol);
        set_broker(&d, line);
    }
    struct it_client *pub = it_client_new(&b, "it-br-pub");
    for (int i = 0; i < 6000; i++) {
        char topic[96], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/br/d%02d", i % 10);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"do\":%d}", t0 + (long long)(i / 10) * 1000, i);
        publish_retrying(pub, topic, payload, qos);
        if (i == 2000) {
            cr_assert_eq(it_flush(pub, 60000), 0);
            /* SIGTERM: mosquitto writes its persistence file, as a service restart does. */
            it_broker_stop_keep(&b);
            cr_assert_eq(it_broker_restart(&b), 0);
        }
    }
    cr_assert_eq(it_flush(pub, 120000), 0);
    long long n = settle(&d, "water/br/*/do", 6000, 180000);
    cr_assert_eq(n, 6000, "stored %lld of 6000 across a broker restart", n);
    int before = protocol != NULL ? 1 : 0;           /* set_broker's restart logged one of each */
    cr_assert(it_daemon_wait_log(&d, "session present", 1 + before, 1000) ||
              it_daemon_wait_log(&d, "subscribed to", 2 + before, 1000),
              "the daemon reconnected and resubscribed");
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(faults, broker_restart_mid_stream_loses_nothing, .timeout = 600)
{
    broker_restart_mid_stream(NULL, 1);
}

/* Over MQTT 5 the session is kept by its expiry interval, not clean_session. */
Test(faults, mqtt5_qos2_broker_restart_mid_stream_loses_nothing, .timeout = 600)
{
    broker_restart_mid_stream("5", 2);
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

Test(faults, slow_store_backpressure_bounded_memory_nothing_lost, .timeout = 600)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = recent_ts();

    cr_assert_eq(it_broker_start(&b), 0);
    /* 3 ms per write batch: the daemon can store ~300 msgs/s; we publish far faster. */
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "storage:\n  path: @DATA@\n  test_slow_write: 3ms\n  queue_size: 1024\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-slow-pub");
    long before = vm_hwm_kb(d.pid);
    for (int i = 0; i < 4000; i++) {
        char topic[96], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/slow/d%02d", i % 10);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"tp\":%d}", t0 + (long long)(i / 10) * 1000, i);
        publish_retrying(pub, topic, payload, 1);
    }
    cr_assert_eq(it_flush(pub, 120000), 0, "the broker took every message (it queues for the daemon)");
    long mid = vm_hwm_kb(d.pid);
    long long n = settle(&d, "water/slow/*/tp", 4000, 240000);
    long after = vm_hwm_kb(d.pid);
    cr_assert_eq(n, 4000, "stored %lld of 4000 through a slow store", n);
    /* The broker held the backlog, not the daemon: its peak memory grew by far
     * less than the backlog's size would need if buffered in-process
     * (generous for ASan's shadow memory and quarantine). */
    cr_expect_gt(before, 0);
    cr_expect_lt(after - before, 64 * 1024, "peak RSS grew %ld kB (before %ld, mid %ld, after %ld)",
                 after - before, before, mid, after);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A QoS 2 burst over broker.protocol "5" while the store is slow: 4,000
 * messages of 16 KB (64 MB), which the harness's broker (no in-flight limit
 * of its own) would all send at once. Over 3.1.1 Paho reads them all into
 * memory (PUBREC on arrival, the daemon called only at PUBREL: the daemon's
 * peak grew by 80 MB in a Release build); over 5 the daemon's callback runs
 * as each arrives and stops the reading, and Receive Maximum bounds what the
 * broker sends ahead. ASan's quarantine is made small for the daemon, or the
 * payload buffers Paho frees would count.
 */
Test(faults, mqtt5_qos2_burst_into_a_slow_store_keeps_memory_bounded, .timeout = 600)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = recent_ts();
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved = asan ? strdup(asan) : NULL, opts[1024];

    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=1", asan ? asan : "", asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 2}\n"
        "storage:\n  path: @DATA@\n  test_slow_write: 3ms\n  queue_size: 1024\n"), 0);
    set_broker(&d, "protocol: \"5\"");
    if (saved) {
        setenv("ASAN_OPTIONS", saved, 1);
        free(saved);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
    struct it_client *pub = it_client_new(&b, "it-burst-pub");
    cr_assert_not_null(pub);
    char *payload = malloc(16500), *pad = malloc(16001);
    memset(pad, 'x', 16000);
    pad[16000] = '\0';
    long before = vm_hwm_kb(d.pid);
    for (int i = 0; i < 4000; i++) {
        snprintf(payload, 16500, "{\"ts\":%lld,\"tp\":%d,\"pad\":\"%s\"}", t0 + i * 100LL, i, pad);
        publish_retrying(pub, "sensors/water/burst/d01", payload, 2);
    }
    cr_assert_eq(it_flush(pub, 120000), 0, "the broker took every message (it queues for the daemon)");
    long long n = settle(&d, "water/burst/d01/tp", 4000, 300000);
    long after = vm_hwm_kb(d.pid);
    cr_assert_eq(n, 4000, "stored %lld of 4000 through a slow store", n);
    cr_expect_gt(before, 0);
    cr_expect_lt(after - before, 48 * 1024, "peak RSS grew %ld kB (before %ld, after %ld) for a "
                 "64 MB burst", after - before, before, after);
    free(payload);
    free(pad);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}
