/*
 * Faults (SPEC §2): kill -9 of the daemon mid-stream (QoS 2: nothing lost,
 * nothing twice; QoS 1: at most one message per connection per kill), the
 * broker stopped and restarted mid-stream, and a store slowed on purpose
 * (backpressure: memory stays bounded, nothing is lost).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void stream_with_kill(int qos, int total, int kill_at, long long *stored)
{
    struct it_broker b;
    struct it_daemon d;
    char extra[256];
    long long t0 = recent_ts();

    snprintf(extra, sizeof(extra),
             "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: %d}\n", qos);
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, extra), 0);
    struct it_client *pub = it_client_new(&b, "it-fault-pub");
    cr_assert_not_null(pub);
    for (int i = 0; i < total; i++) {
        char topic[96], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/k/d%02d", i % 20);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%d}", t0 + (long long)(i / 20) * 1000, i);
        publish_retrying(pub, topic, payload, qos);
        if (i == kill_at) {
            cr_assert_eq(it_flush(pub, 60000), 0);
            it_daemon_kill9(&d);                      /* mid-stream: messages keep coming */
        }
        if (i == kill_at + total / 10)
            cr_assert_eq(it_daemon_restart(&d), 0, "daemon restarts after kill -9");
    }
    cr_assert_eq(it_flush(pub, 120000), 0);
    *stored = settle(&d, "water/k/*/ph", total, 180000);

    /* Values: each stored point carries the value published for its (device, ts). */
    char *out = NULL;
    cr_assert_eq(it_run(&out, "%s query 'water/k/*/ph' --from %lld --to %lld --db %s --format json",
                        it_bin("islewatch"), t0, t0 + (long long)total * 1000, d.data), 0);
    cJSON *doc = cJSON_Parse(out), *s, *p;
    free(out);
    cJSON_ArrayForEach(s, doc) {
        int dev = -1;
        sscanf(cJSON_GetStringValue(cJSON_GetObjectItem(s, "series")), "water/k/d%d/ph", &dev);
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points")) {
            long long ts = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
            int v = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
            cr_expect_eq(v, (int)((ts - t0) / 1000) * 20 + dev, "value at %lld of d%02d", ts, dev);
        }
    }
    cJSON_Delete(doc);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(faults, qos2_kill9_mid_stream_loses_nothing_stores_nothing_twice, .timeout = 600)
{
    long long stored;
    stream_with_kill(2, 20000, 6000, &stored);
    /* One point per (series, ts): a duplicate cannot raise the count, so equality
     * means every message exactly once. */
    cr_assert_eq(stored, 20000, "stored %lld of 20000 QoS 2 messages", stored);
}

Test(faults, qos1_kill9_loses_at_most_one_message_per_connection, .timeout = 600)
{
    long long stored;
    stream_with_kill(1, 10000, 3000, &stored);
    cr_assert_leq(stored, 10000);
    cr_assert_geq(stored, 10000 - 1, "stored %lld of 10000 QoS 1 messages (1 connection, 1 kill)",
                  stored);
}

Test(faults, broker_restart_mid_stream_loses_nothing, .timeout = 600)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = recent_ts();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-br-pub");
    for (int i = 0; i < 6000; i++) {
        char topic[96], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/br/d%02d", i % 10);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"do\":%d}", t0 + (long long)(i / 10) * 1000, i);
        publish_retrying(pub, topic, payload, 1);
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
    cr_assert(it_daemon_wait_log(&d, "session present", 1, 1000) ||
              it_daemon_wait_log(&d, "subscribed to", 2, 1000), "the daemon reconnected and resubscribed");
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
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
