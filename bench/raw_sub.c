/* SPDX-License-Identifier: Apache-2.0 */
/*
 * iw_raw_sub: the benchmarks' reference subscriber.
 *
 * It does with each message the least any subscriber can do (count it, free
 * it) through the same client library and API islewatchd uses (Paho C,
 * MQTTAsync), so "islewatchd's rate / raw subscriber's rate" on the same
 * broker in the same run is the cost of islewatch's own work (SPEC §8).
 *
 * Paho's delivery thread runs the message callback; it only touches atomics.
 * The main thread polls them to decide when to stop (count reached, or no
 * message for --idle seconds) and prints the result.
 *
 * Publish -> receive latency: when a payload has a "ts": member with an integer
 * (iw_loadgen's payloads always do; with iw_loadgen --ts-now it is the wall
 * clock at publish, epoch ms), the callback observes CLOCK_REALTIME now - ts
 * into a histogram with islewatchd's bucket bounds (server/stats.c,
 * iw_stats_delay_bounds), skipping ts ahead of the clock or 1 h or more old as
 * the daemon does, so that its quantiles sit beside the daemon's
 * islewatch_ingest_delay_seconds: what the broker, the load generator and the
 * machine cost without islewatch. The search is a prefix check (iw_loadgen
 * writes ts first) or a memmem, and the clock is read only when "ts": was found.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE               /* memmem */
#endif
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

struct rs_opts {
    const char *host;
    int port;
    const char *topic;
    int qos;
    long long count;          /* 0 = until idle */
    double idle_s;
    const char *client_id;
    bool clean;
    bool trace_errors;        /* --paho-trace-errors */
};

/* Upper bounds in ms of the delay buckets, the last one +Inf: a copy of
 * iw_stats_delay_bounds (server/stats.c, seconds) so that both histograms cut
 * at the same points. Keep the two in step. */
#define RS_DELAY_BUCKETS 19
static const double rs_delay_bounds_ms[RS_DELAY_BUCKETS - 1] = {
    0.5, 1, 2, 3, 5, 7.5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
};
#define RS_DELAY_MAX_MS 3600000LL /* older than this: not observed (IW_STATS_DELAY_MAX_MS) */

static struct {
    atomic_llong count;
    atomic_llong dups;
    atomic_llong first_ns;    /* 0 until the first message */
    atomic_llong last_ns;
    atomic_int subscribed;    /* 1 subscribed, -1 failed */
    atomic_int lost;
    /* Delay histogram, written by the delivery thread, read by main at the end;
     * all relaxed: they are independent tallies, nothing is published through them. */
    atomic_llong delay_bucket[RS_DELAY_BUCKETS];
    atomic_llong delay_us_sum;
    atomic_llong delay_skipped;   /* ts ahead of the clock, or 1 h or more old */
    char why[256];            /* written before subscribed is set to -1 */
} g;

static volatile sig_atomic_t g_stop;

/* The callbacks' context: the client handle and the options. */
struct rs_ctx { MQTTAsync client; const struct rs_opts *o; };

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: iw_raw_sub [OPTIONS]\n"
        "Subscribes with Paho MQTTAsync, counts messages, and reports the rate and CPU cost.\n"
        "\n"
        "  --host HOST        broker host (default 127.0.0.1)\n"
        "  --port PORT        broker port (default 1883)\n"
        "  --topic FILTER     topic filter (default sensors/#)\n"
        "  --qos 0|1|2        subscription QoS (default 1)\n"
        "  --count N          stop after N messages (default 0: stop only when idle)\n"
        "  --idle SEC         stop after SEC seconds without a message (default 10)\n"
        "  --client-id ID     client id (default iw-raw-sub-<pid>)\n"
        "  --clean            clean session (the default)\n"
        "  --no-clean         persistent session (give a fixed --client-id)\n"
        "  --paho-trace-errors  set Paho's trace level to errors only, as islewatchd does\n"
        "                     (default: Paho's own level, the issue's reference subscriber)\n"
        "  --help             print this help\n"
        "\n"
        "Prints 'iw_raw_sub: ready' on stdout once subscribed: start publishers after it.\n"
        "At the end: the count, the time from the first to the last message, msgs/s, the\n"
        "CPU seconds this process used while subscribed (getrusage, all threads) and CPU\n"
        "microseconds per message, then a line 'RESULT key=value ...' for scripts.\n"
        "Payloads with a \"ts\": integer (epoch ms; iw_loadgen --ts-now stamps the publish time)\n"
        "also give the publish -> receive delay (wall clock at receipt - ts) in islewatchd's\n"
        "ingest-delay buckets: p50/p99 (bucket upper bounds, ms) and the mean, in the text\n"
        "and as lat_p50_ms, lat_p99_ms, lat_mean_ms, lat_n, lat_skipped in the RESULT line.\n"
        "Exit 0 when --count messages arrived (or, without --count, when idle), 1 otherwise.\n");
}

static bool parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, struct rs_opts *o)
{
    enum { O_HOST = 256, O_PORT, O_TOPIC, O_QOS, O_COUNT, O_IDLE, O_CLIENT, O_CLEAN, O_NOCLEAN, O_TRACE_ERR, O_HELP };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "topic", required_argument, NULL, O_TOPIC },
        { "qos", required_argument, NULL, O_QOS },
        { "count", required_argument, NULL, O_COUNT },
        { "idle", required_argument, NULL, O_IDLE },
        { "client-id", required_argument, NULL, O_CLIENT },
        { "clean", no_argument, NULL, O_CLEAN },
        { "no-clean", no_argument, NULL, O_NOCLEAN },
        { "paho-trace-errors", no_argument, NULL, O_TRACE_ERR },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    long long n;
    int idx = 0;
    char *end;
    int c;

    *o = (struct rs_opts){ .host = "127.0.0.1", .port = 1883, .topic = "sensors/#", .qos = 1,
                           .idle_s = 10, .clean = true };
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_HOST: o->host = optarg; break;
        case O_PORT:
            if (!parse_ll(optarg, 1, 65535, &n)) bad = "a port 1..65535";
            else o->port = (int)n;
            break;
        case O_TOPIC: o->topic = optarg; break;
        case O_QOS:
            if (!parse_ll(optarg, 0, 2, &n)) bad = "0, 1 or 2";
            else o->qos = (int)n;
            break;
        case O_COUNT:
            if (!parse_ll(optarg, 0, LLONG_MAX, &o->count)) bad = "a count >= 0";
            break;
        case O_IDLE:
            errno = 0;
            end = NULL;
            o->idle_s = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || errno != 0 || !(o->idle_s > 0 && o->idle_s <= 86400))
                bad = "seconds, more than 0";
            break;
        case O_CLIENT: o->client_id = optarg; break;
        case O_CLEAN: o->clean = true; break;
        case O_NOCLEAN: o->clean = false; break;
        case O_TRACE_ERR: o->trace_errors = true; break;
        case O_HELP: usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
        if (bad != NULL) {
            fprintf(stderr, "iw_raw_sub: bad value '%s' for --%s: expected %s\n", optarg,
                    longopts[idx].name, bad);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "iw_raw_sub: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* The payload's "ts": integer, if any; the payload is not NUL-terminated.
 * iw_loadgen puts ts first: that case skips the memmem. */
static bool payload_ts(const void *payload, int len, long long *ts)
{
    const char *p = NULL;
    char num[24];
    char *end;
    size_t n;

    if (len >= 6 && memcmp(payload, "{\"ts\":", 6) == 0)
        p = (const char *)payload + 1;
    else if (len >= 5)
        p = memmem(payload, (size_t)len, "\"ts\":", 5);
    if (p == NULL)
        return false;
    p += 5;
    n = (size_t)((const char *)payload + len - p);
    if (n > sizeof(num) - 1)
        n = sizeof(num) - 1;
    memcpy(num, p, n);
    num[n] = '\0';
    errno = 0;
    *ts = strtoll(num, &end, 10);
    return end != num && errno == 0;
}

/* now - ts into the delay histogram, in the daemon's manner (iw_stats_ingest_delay). */
static void observe_delay(long long ts_ms)
{
    struct timespec now;
    long long now_ms, ns;
    double d_ms;
    size_t b = 0;

    clock_gettime(CLOCK_REALTIME, &now);
    now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (ts_ms > now_ms || ts_ms <= now_ms - RS_DELAY_MAX_MS) {
        atomic_fetch_add_explicit(&g.delay_skipped, 1, memory_order_relaxed);
        return;
    }
    ns = ((long long)now.tv_sec - ts_ms / 1000) * 1000000000LL + now.tv_nsec - (ts_ms % 1000) * 1000000LL;
    d_ms = (double)ns / 1e6;
    while (b < RS_DELAY_BUCKETS - 1 && d_ms > rs_delay_bounds_ms[b])
        b++;
    atomic_fetch_add_explicit(&g.delay_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g.delay_us_sum, ns / 1000, memory_order_relaxed);
}

/* The upper bound (ms) of the bucket where the cumulative count reaches q of n, as e2e.sh reads the daemon's. */
static void delay_quantile(double q, long long n, char *out, size_t cap)
{
    long long cum = 0;
    for (size_t b = 0; b < RS_DELAY_BUCKETS; b++) {
        cum += atomic_load_explicit(&g.delay_bucket[b], memory_order_relaxed);
        if ((double)cum >= q * (double)n) {
            if (b < RS_DELAY_BUCKETS - 1)
                snprintf(out, cap, "%g", rs_delay_bounds_ms[b]);
            else
                snprintf(out, cap, "+Inf");
            return;
        }
    }
    snprintf(out, cap, "+Inf");
}

/* Paho delivery thread. Returning 1 tells Paho the message was handled. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    int64_t now = mono_ns();
    long long zero = 0, ts;
    (void)ctx;
    (void)topic_len;
    atomic_compare_exchange_strong(&g.first_ns, &zero, now);
    atomic_store_explicit(&g.last_ns, now, memory_order_relaxed);
    if (m->dup)
        atomic_fetch_add_explicit(&g.dups, 1, memory_order_relaxed);
    if (payload_ts(m->payload, m->payloadlen, &ts))
        observe_delay(ts);
    atomic_fetch_add_explicit(&g.count, 1, memory_order_release);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_lost(void *ctx, char *cause)
{
    (void)ctx;
    fprintf(stderr, "iw_raw_sub: connection lost: %s\n", cause != NULL ? cause : "(no reason given)");
    atomic_store(&g.lost, 1);
}

static void on_subscribed(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    /* Over MQTT 3.1.1 a refused filter comes back as granted QoS 0x80. */
    if (resp != NULL && resp->alt.qos == 0x80) {
        snprintf(g.why, sizeof(g.why), "the broker refused the subscription");
        atomic_store(&g.subscribed, -1);
        return;
    }
    atomic_store(&g.subscribed, 1);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    snprintf(g.why, sizeof(g.why), "subscribe failed: code %d %s", resp ? resp->code : 0,
             resp && resp->message ? resp->message : "");
    atomic_store(&g.subscribed, -1);
}

static void on_connected(void *ctx, MQTTAsync_successData *resp)
{
    struct rs_ctx *cx = ctx;
    const struct rs_opts *o = cx->o;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc;
    (void)resp;
    ro.onSuccess = on_subscribed;
    ro.onFailure = on_subscribe_failed;
    ro.context = ctx;
    rc = MQTTAsync_subscribe(cx->client, o->topic, o->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(g.why, sizeof(g.why), "MQTTAsync_subscribe(%s) failed: %s", o->topic, MQTTAsync_strerror(rc));
        atomic_store(&g.subscribed, -1);
    }
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    snprintf(g.why, sizeof(g.why), "connect failed: code %d %s", resp ? resp->code : 0,
             resp && resp->message ? resp->message : "(is the broker running?)");
    atomic_store(&g.subscribed, -1);
}

int main(int argc, char **argv)
{
    struct rs_opts o;
    struct sigaction sa = { .sa_handler = on_signal };
    MQTTAsync client = NULL;
    struct rs_ctx cx;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    char uri[300], id[64];
    struct timespec tick = { 0, 5000000 };        /* 5 ms */
    double cpu0, cpu1;
    int64_t idle_ns, last_seen;
    long long n, seen = 0;
    int rc = parse_args(argc, argv, &o), status = 1;

    if (rc != 0)
        return rc == 1 ? 0 : 2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (o.client_id == NULL) {
        snprintf(id, sizeof(id), "iw-raw-sub-%d", (int)getpid());
        o.client_id = id;
    }
    snprintf(uri, sizeof(uri), "tcp://%s:%d", o.host, o.port);
    if (o.trace_errors)
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
    rc = MQTTAsync_create(&client, uri, o.client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "iw_raw_sub: MQTTAsync_create(%s): %s\n", uri, MQTTAsync_strerror(rc));
        return 1;
    }
    cx = (struct rs_ctx){ .client = client, .o = &o };
    MQTTAsync_setCallbacks(client, NULL, on_lost, on_message, NULL);
    co.keepAliveInterval = 30;
    co.cleansession = o.clean;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = on_connected;
    co.onFailure = on_connect_failed;
    co.context = &cx;
    rc = MQTTAsync_connect(client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "iw_raw_sub: MQTTAsync_connect(%s): %s\n", uri, MQTTAsync_strerror(rc));
        MQTTAsync_destroy(&client);
        return 1;
    }
    for (int64_t deadline = mono_ns() + 10000000000LL;
         atomic_load(&g.subscribed) == 0 && !g_stop && mono_ns() < deadline;)
        nanosleep(&tick, NULL);
    if (atomic_load(&g.subscribed) != 1) {
        fprintf(stderr, "iw_raw_sub: %s: %s\n", uri,
                atomic_load(&g.subscribed) < 0 ? g.why : "not subscribed within 10 s");
        goto out;
    }
    cpu0 = cpu_seconds();
    printf("iw_raw_sub: ready: subscribed to '%s' (qos %d) on %s\n", o.topic, o.qos, uri);
    fflush(stdout);

    /* Polling is fine here: the main thread is not what is being measured. */
    idle_ns = (int64_t)(o.idle_s * 1e9);
    last_seen = mono_ns();
    while (!g_stop && !atomic_load(&g.lost)) {
        n = atomic_load_explicit(&g.count, memory_order_acquire);
        if (o.count > 0 && n >= o.count)
            break;
        if (n != seen) {
            seen = n;
            last_seen = mono_ns();
        } else if (mono_ns() - last_seen >= idle_ns) {
            break;
        }
        nanosleep(&tick, NULL);
    }
    cpu1 = cpu_seconds();

    n = atomic_load(&g.count);
    {
        double elapsed = (double)(atomic_load(&g.last_ns) - atomic_load(&g.first_ns)) / 1e9;
        double rate = elapsed > 0 ? (double)n / elapsed : 0;
        double cpu = cpu1 - cpu0;
        double us_per = n > 0 ? cpu * 1e6 / (double)n : 0;
        printf("iw_raw_sub: received %lld message(s)%s in %.3f s (first to last): %.0f msg/s; "
               "CPU %.3f s, %.2f us/msg%s\n", n,
               o.count > 0 && n < o.count ? " (fewer than --count)" : "", elapsed, rate, cpu, us_per,
               atomic_load(&g.lost) ? "; the connection was lost" : "");
        long long lat_n = 0, skipped = atomic_load_explicit(&g.delay_skipped, memory_order_relaxed);
        char p50[16], p99[16];
        double mean = 0;
        for (size_t b = 0; b < RS_DELAY_BUCKETS; b++)
            lat_n += atomic_load_explicit(&g.delay_bucket[b], memory_order_relaxed);
        if (lat_n > 0) {
            mean = (double)atomic_load_explicit(&g.delay_us_sum, memory_order_relaxed) / 1e3 / (double)lat_n;
            delay_quantile(0.5, lat_n, p50, sizeof(p50));
            delay_quantile(0.99, lat_n, p99, sizeof(p99));
            printf("iw_raw_sub: publish -> receive (now - payload ts) over %lld message(s): p50 <= %s ms, "
                   "p99 <= %s ms, mean %.3f ms; %lld ts out of range\n", lat_n, p50, p99, mean, skipped);
        }
        printf("RESULT count=%lld elapsed_s=%.6f rate=%.1f cpu_s=%.6f cpu_us_per_msg=%.3f dup=%lld qos=%d",
               n, elapsed, rate, cpu, us_per, (long long)atomic_load(&g.dups), o.qos);
        if (lat_n > 0)
            printf(" lat_p50_ms=%s lat_p99_ms=%s lat_mean_ms=%.3f lat_n=%lld lat_skipped=%lld", p50, p99,
                   mean, lat_n, skipped);
        printf("\n");
    }
    status = (o.count == 0 || n >= o.count) && !atomic_load(&g.lost) ? 0 : 1;
out:
    if (MQTTAsync_isConnected(client)) {
        MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
        dc.timeout = 1000;
        MQTTAsync_disconnect(client, &dc);
        for (int i = 0; i < 200 && MQTTAsync_isConnected(client); i++)
            nanosleep(&tick, NULL);
    }
    MQTTAsync_destroy(&client);
    return status;
}
