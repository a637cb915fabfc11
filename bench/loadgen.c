/* SPDX-License-Identifier: Apache-2.0 */
/*
 * iw_loadgen: MQTT publisher for islewatch's end-to-end benchmarks.
 *
 * Publishes --count messages with SPEC §1 topics and payloads for --devices
 * simulated devices over --connections libmosquitto clients, one publisher
 * thread each (plus libmosquitto's network thread per client). Devices are
 * dealt to connections round-robin (device d goes to connection d % C), and
 * each connection cycles through its devices, so every device gets
 * count / devices messages.
 *
 * Every (series, ts) is a distinct point: a device's n-th message carries
 * ts = base + n * ts_step, and the base is chosen so that the last ts is not
 * later than the start of the run (a daemon rejects timestamps far in the
 * future). With --ts-now instead, ts is the wall clock (CLOCK_REALTIME,
 * integer ms, SPEC §1) just before mosquitto_publish, so that the daemon's
 * islewatch_ingest_delay_seconds histogram reads publish -> durable; two
 * messages of one device in the same millisecond then share a point.
 *
 * Pacing (--rate R): message j overall is due at t0 + j / R on CLOCK_MONOTONIC,
 * absolute deadlines (no drift); connection i sends j = i, i + C, i + 2C, ...,
 * so C connections interleave instead of publishing in bursts of C. A message
 * that could not go out on time (flow control, a slow broker) goes out as soon
 * as it can and the schedule is not shifted (open loop); 'late_1ms' and
 * 'max_lag_ms' in the RESULT line say how far from even the run was.
 * With --tick-us T a message is due at the end of the T-long tick it falls in:
 * the publisher wakes once per tick and sends what came due, as many devices
 * reporting independently would arrive, and its own CPU (a wake-up per
 * message at tens of thousands per second) stops competing with the
 * subscriber it measures.
 *
 * Flow control: a publisher keeps at most --inflight messages that the
 * library has not yet reported done (on_publish: written for QoS 0, PUBACK for
 * QoS 1, PUBCOMP for QoS 2), so memory stays bounded whatever the rate, and
 * the run ends only when every message has been reported done.
 *
 * Latency: no extra member goes into the payload (the daemon would store it
 * as a metric). With --latency-log FILE, every k-th message's publish time is
 * written to FILE as "SERIES_PREFIX TS_MS PUBLISH_WALL_NS", for example
 * "water/s01/d000001 1764417600000 1764417660123456789"; a script joins it
 * with the time the point became visible.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

enum shape { SHAPE_WATER, SHAPE_AIR, SHAPE_CAMERA, SHAPE_MIXED };
static const char *const shape_names[] = { "water", "air", "camera", "mixed" };
static const char *const source_names[] = { "water", "air", "camera" };

struct lg_opts {
    const char *host;
    int port;
    double rate;              /* messages/s over all connections; 0 = as fast as possible */
    long long count;
    int qos;
    int devices;
    int sites;
    int connections;
    int inflight;
    enum shape shape;
    const char *prefix;
    const char *latency_log;
    long long latency_every;
    long long ts_step_ms;
    long long base_ts;        /* -1: derived from the clock */
    bool ts_now;              /* ts = wall clock at publish */
    long long tick_ns;        /* --tick-us: wake at most once per tick (0: per message) */
    const char *client_id;
    int drain_timeout_s;
};

struct device {
    enum shape shape;         /* water, air or camera, never mixed */
    char topic[160];
    char series[64];          /* "<source>/<site>/<device>" */
    long long seq;
};

struct lat_rec { int dev; long long ts_ms; int64_t wall_ns; };

struct conn {
    int idx;
    const struct lg_opts *o;
    struct device *devs;      /* all devices; this connection uses idx, idx + C, ... */
    int ndev;
    struct mosquitto *mosq;
    pthread_t thread;
    long long quota;          /* messages this connection sends */
    long long sent, failed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long long done;           /* on_publish count, under mu */
    int connack;              /* -1 until the CONNACK, under mu */
    bool lost;                /* disconnected during the run, under mu */
    struct lat_rec *lat;
    size_t nlat;
    int64_t last_done_ns;     /* under mu */
    long long late;           /* published > 1 ms after its deadline (--rate) */
    int64_t max_lag_ns;
    int err;
};

static volatile sig_atomic_t g_stop;
static pthread_barrier_t g_start;
static int64_t g_t0_ns;

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(int64_t abs_ns)
{
    struct timespec ts = { .tv_sec = abs_ns / 1000000000LL, .tv_nsec = abs_ns % 1000000000LL };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !g_stop)
        ;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: iw_loadgen [OPTIONS]\n"
        "Publishes SPEC payloads to an MQTT broker as fast as asked and reports the rate.\n"
        "\n"
        "  --host HOST            broker host (default 127.0.0.1)\n"
        "  --port PORT            broker port (default 1883)\n"
        "  --count N              messages in all (default 100000)\n"
        "  --rate R               messages/s over all connections, 0 = as fast as possible (default 0)\n"
        "  --qos 0|1|2            publish QoS (default 1)\n"
        "  --devices N            simulated devices (default 100)\n"
        "  --sites N              sites the devices are spread over, s01..sNN (default 4)\n"
        "  --connections N        MQTT clients, one publisher thread each (default 1)\n"
        "  --inflight N           messages per connection not yet done (PUBACK/PUBCOMP) (default 20;\n"
        "                         with QoS 2 keep it <= the broker's max_inflight_messages, mosquitto's\n"
        "                         default 20, or mosquitto drops the connection)\n"
        "  --shape S              water | air | camera (heartbeats) | mixed (default water)\n"
        "  --topic-prefix P       prepended to every topic, e.g. 'bench/' (default none)\n"
        "  --ts-step MS           a device's successive ts differ by MS (default 1000)\n"
        "  --base-ts MS           ts of each device's first message (default: chosen so that\n"
        "                         the last ts is the start time of the run)\n"
        "  --ts-now               ts = wall-clock time at publish (epoch ms) instead of\n"
        "                         base + n * step: the daemon's islewatch_ingest_delay_seconds\n"
        "                         then measures publish -> durable (over-estimated by < 1 ms)\n"
        "  --latency-log FILE     write 'SERIES TS_MS PUBLISH_WALL_NS' for every k-th message\n"
        "  --latency-every K      k for --latency-log (default 100)\n"
        "  --client-id ID         client id prefix; '-<n>' is appended (default iw-loadgen-<pid>)\n"
        "  --drain-timeout S      give up when no acknowledgement came for S s (default 30)\n"
        "  --tick-us T            with --rate: wake every T us and publish what is due since,\n"
        "                         instead of sleeping before every message (default 0: per\n"
        "                         message; a wake-up per message costs the publisher more CPU\n"
        "                         than the subscriber under test on a small machine)\n"
        "  --help                 print this help\n"
        "\n"
        "Prints the count sent and acknowledged, the elapsed time and the achieved rate,\n"
        "then a line 'RESULT key=value ...' for scripts. Exit 0 when every message was\n"
        "acknowledged, 1 otherwise.\n");
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

static int parse_args(int argc, char **argv, struct lg_opts *o)
{
    enum { O_HOST = 256, O_PORT, O_COUNT, O_RATE, O_QOS, O_DEVICES, O_SITES, O_CONNS,
           O_INFLIGHT, O_SHAPE, O_PREFIX, O_TS_STEP, O_BASE_TS, O_TS_NOW, O_LATLOG,
           O_LATEVERY, O_CLIENT, O_DRAIN, O_TICK, O_HELP };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "count", required_argument, NULL, O_COUNT },
        { "rate", required_argument, NULL, O_RATE },
        { "qos", required_argument, NULL, O_QOS },
        { "devices", required_argument, NULL, O_DEVICES },
        { "sites", required_argument, NULL, O_SITES },
        { "connections", required_argument, NULL, O_CONNS },
        { "inflight", required_argument, NULL, O_INFLIGHT },
        { "shape", required_argument, NULL, O_SHAPE },
        { "topic-prefix", required_argument, NULL, O_PREFIX },
        { "ts-step", required_argument, NULL, O_TS_STEP },
        { "base-ts", required_argument, NULL, O_BASE_TS },
        { "ts-now", no_argument, NULL, O_TS_NOW },
        { "latency-log", required_argument, NULL, O_LATLOG },
        { "latency-every", required_argument, NULL, O_LATEVERY },
        { "client-id", required_argument, NULL, O_CLIENT },
        { "drain-timeout", required_argument, NULL, O_DRAIN },
        { "tick-us", required_argument, NULL, O_TICK },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    long long n;
    int idx = 0;
    int c;

    *o = (struct lg_opts){ .host = "127.0.0.1", .port = 1883, .count = 100000, .qos = 1,
                           .devices = 100, .sites = 4, .connections = 1, .inflight = 20,
                           .shape = SHAPE_WATER, .prefix = "", .latency_every = 100,
                           .ts_step_ms = 1000, .base_ts = -1, .drain_timeout_s = 30 };
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        const char *bad = NULL;
        char *end = NULL;
        switch (c) {
        case O_HOST: o->host = optarg; break;
        case O_PORT:
            if (!parse_ll(optarg, 1, 65535, &n)) bad = "a port 1..65535";
            else o->port = (int)n;
            break;
        case O_COUNT:
            if (!parse_ll(optarg, 1, LLONG_MAX / 2, &o->count)) bad = "a positive count";
            break;
        case O_RATE:
            errno = 0;
            o->rate = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || errno != 0 || !(o->rate >= 0 && o->rate <= 1e9))
                bad = "messages per second, 0 for as fast as possible";
            break;
        case O_QOS:
            if (!parse_ll(optarg, 0, 2, &n)) bad = "0, 1 or 2";
            else o->qos = (int)n;
            break;
        case O_DEVICES:
            if (!parse_ll(optarg, 1, 1000000, &n)) bad = "1..1000000 devices";
            else o->devices = (int)n;
            break;
        case O_SITES:
            if (!parse_ll(optarg, 1, 99, &n)) bad = "1..99 sites";
            else o->sites = (int)n;
            break;
        case O_CONNS:
            if (!parse_ll(optarg, 1, 1000, &n)) bad = "1..1000 connections";
            else o->connections = (int)n;
            break;
        case O_INFLIGHT:
            if (!parse_ll(optarg, 1, 65535, &n)) bad = "1..65535 messages";
            else o->inflight = (int)n;
            break;
        case O_SHAPE:
            o->shape = SHAPE_MIXED + 1;
            for (int i = 0; i <= SHAPE_MIXED; i++)
                if (strcmp(optarg, shape_names[i]) == 0)
                    o->shape = (enum shape)i;
            if (o->shape > SHAPE_MIXED) bad = "water, air, camera or mixed";
            break;
        case O_PREFIX: o->prefix = optarg; break;
        case O_TS_STEP:
            if (!parse_ll(optarg, 1, 86400000, &o->ts_step_ms)) bad = "1..86400000 ms";
            break;
        case O_BASE_TS:
            if (!parse_ll(optarg, 0, 253402300799999LL, &o->base_ts)) bad = "epoch milliseconds";
            break;
        case O_TS_NOW: o->ts_now = true; break;
        case O_LATLOG: o->latency_log = optarg; break;
        case O_LATEVERY:
            if (!parse_ll(optarg, 1, LLONG_MAX, &o->latency_every)) bad = "a positive k";
            break;
        case O_CLIENT: o->client_id = optarg; break;
        case O_DRAIN:
            if (!parse_ll(optarg, 1, 86400, &n)) bad = "1..86400 seconds";
            else o->drain_timeout_s = (int)n;
            break;
        case O_TICK:
            if (!parse_ll(optarg, 0, 1000000, &n)) bad = "0..1000000 microseconds";
            else o->tick_ns = n * 1000;
            break;
        case O_HELP: usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
        if (bad != NULL) {
            fprintf(stderr, "iw_loadgen: bad value '%s' for --%s: expected %s\n", optarg,
                    longopts[idx].name, bad);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "iw_loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (o->ts_now && o->base_ts >= 0) {
        fprintf(stderr, "iw_loadgen: --ts-now and --base-ts both set the ts; give one of them\n");
        return 2;
    }
    if (o->connections > o->devices) {
        fprintf(stderr, "iw_loadgen: --connections %d is more than --devices %d; each connection needs a device\n",
                o->connections, o->devices);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Payloads                                                           */
/* ------------------------------------------------------------------ */

/* Cheap deterministic variation in [0, 1) from (device, seq). */
static double vary(uint64_t dev, uint64_t seq, unsigned salt)
{
    uint64_t x = dev * 0x9e3779b97f4a7c15ULL ^ (seq + salt) * 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 31;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 29;
    return (double)(x >> 11) * 0x1.0p-53;
}

/* Values stay inside the normal ranges: the benchmark measures ingest, not an alert storm. */
static int format_payload(char *buf, size_t cap, const struct device *d, uint64_t dev, long long ts)
{
    uint64_t q = (uint64_t)d->seq;
    int pm25 = 10 + (int)(50 * vary(dev, q, 1));
    switch (d->shape) {
    case SHAPE_WATER:
        return snprintf(buf, cap,
                        "{\"ts\":%lld,\"ph\":%.2f,\"do\":%.2f,\"codmn\":%.2f,\"nh3_n\":%.3f,"
                        "\"tp\":%.3f,\"tn\":%.2f,\"temp\":%.1f,\"turbidity\":%.1f}",
                        ts, 7.0 + vary(dev, q, 1), 5.5 + 2 * vary(dev, q, 2), 3 + 2 * vary(dev, q, 3),
                        0.2 + 0.6 * vary(dev, q, 4), 0.05 + 0.1 * vary(dev, q, 5),
                        0.6 + 0.6 * vary(dev, q, 6), 12 + 6 * vary(dev, q, 7), 5 + 30 * vary(dev, q, 8));
    case SHAPE_AIR:
        return snprintf(buf, cap,
                        "{\"ts\":%lld,\"pm25\":%d,\"pm10\":%d,\"so2\":%d,\"no2\":%d,\"co\":%.1f,\"o3\":%d}",
                        ts, pm25, pm25 + 10 + (int)(50 * vary(dev, q, 2)),
                        3 + (int)(10 * vary(dev, q, 3)), 10 + (int)(40 * vary(dev, q, 4)),
                        0.3 + 0.6 * vary(dev, q, 5), 30 + (int)(90 * vary(dev, q, 6)));
    default:
        return snprintf(buf, cap,
                        "{\"ts\":%lld,\"online\":true,\"fps\":25,\"bitrate_kbps\":%d,\"disk_ok\":true}",
                        ts, 1900 + (int)(300 * vary(dev, q, 1)));
    }
}

static int devices_init(const struct lg_opts *o, struct device **out)
{
    struct device *devs = calloc((size_t)o->devices, sizeof(*devs));
    if (devs == NULL) {
        fprintf(stderr, "iw_loadgen: out of memory for %d devices\n", o->devices);
        return -1;
    }
    for (int i = 0; i < o->devices; i++) {
        struct device *d = &devs[i];
        char site[16], dev[16];
        d->shape = o->shape == SHAPE_MIXED ? (enum shape)(i % 3) : o->shape;
        snprintf(site, sizeof(site), "s%02d", i % o->sites + 1);
        snprintf(dev, sizeof(dev), "d%06d", i + 1);
        snprintf(d->series, sizeof(d->series), "%s/%s/%s", source_names[d->shape], site, dev);
        if (d->shape == SHAPE_CAMERA)
            snprintf(d->topic, sizeof(d->topic), "%scameras/%s/%s/status", o->prefix, site, dev);
        else
            snprintf(d->topic, sizeof(d->topic), "%ssensors/%s/%s/%s", o->prefix,
                     source_names[d->shape], site, dev);
    }
    *out = devs;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct conn *c = obj;
    (void)m;
    pthread_mutex_lock(&c->mu);
    c->connack = rc;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    struct conn *c = obj;
    bool first;
    (void)m;
    if (rc == 0)
        return;
    pthread_mutex_lock(&c->mu);
    first = !c->lost;
    c->lost = true;
    pthread_mutex_unlock(&c->mu);
    if (first)
        fprintf(stderr, "iw_loadgen: connection %d lost (%s); libmosquitto reconnects%s\n", c->idx,
                mosquitto_strerror(rc),
                c->o->qos == 2 ? " (with QoS 2, is --inflight above the broker's max_inflight_messages?)" : "");
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct conn *c = obj;
    (void)m;
    (void)mid;
    pthread_mutex_lock(&c->mu);
    c->done++;
    c->last_done_ns = now_ns(CLOCK_MONOTONIC);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Waits on c->cv for at most 100 ms. Caller holds c->mu. */
static void wait_a_little(struct conn *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* No acknowledgement for --drain-timeout while some are due. Caller holds c->mu. */
static bool stalled(const struct conn *c)
{
    return c->done < c->sent &&
           now_ns(CLOCK_MONOTONIC) - c->last_done_ns >= (int64_t)c->o->drain_timeout_s * 1000000000LL;
}

static int conn_open(struct conn *c)
{
    const struct lg_opts *o = c->o;
    char id[128];
    int rc;

    if (o->client_id != NULL)
        snprintf(id, sizeof(id), "%s-%d", o->client_id, c->idx);
    else
        snprintf(id, sizeof(id), "iw-loadgen-%d-%d", (int)getpid(), c->idx);
    c->mosq = mosquitto_new(id, true, c);
    if (c->mosq == NULL) {
        fprintf(stderr, "iw_loadgen: mosquitto_new(%s) failed: %s\n", id, strerror(errno));
        return -1;
    }
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_callback_set(c->mosq, on_publish);
    /* The library's own window matches ours, so it never queues beyond the broker's view. */
    mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, o->inflight);
    rc = mosquitto_connect(c->mosq, o->host, o->port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "iw_loadgen: connection %d: cannot connect to %s:%d: %s\n", c->idx, o->host,
                o->port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    rc = mosquitto_loop_start(c->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "iw_loadgen: mosquitto_loop_start: %s\n", mosquitto_strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < 100 && c->connack < 0 && !g_stop; i++)     /* 10 s */
        wait_a_little(c);
    rc = c->connack;
    pthread_mutex_unlock(&c->mu);
    if (rc != 0) {
        fprintf(stderr, "iw_loadgen: connection %d: %s\n", c->idx,
                rc < 0 ? "no CONNACK within 10 s" : mosquitto_connack_string(rc));
        return -1;
    }
    return 0;
}

static void *publisher(void *arg)
{
    struct conn *c = arg;
    const struct lg_opts *o = c->o;
    long long dev_k = 0;
    char payload[512];

    if (o->rate > 0)
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);   /* 1 ns: the default 50 us would bunch sends */
    pthread_barrier_wait(&g_start);
    if (c->err)
        return NULL;
    pthread_mutex_lock(&c->mu);
    c->last_done_ns = now_ns(CLOCK_MONOTONIC);
    pthread_mutex_unlock(&c->mu);
    for (long long k = 0; k < c->quota && !g_stop; k++) {
        int dev = c->idx + (int)(dev_k++ % c->ndev) * o->connections;
        struct device *d = &c->devs[dev];
        int64_t due = 0, wall;
        long long ts;
        bool stuck;
        int len, rc;

        if (o->rate > 0) {
            /* Overall message number k * C + idx: the connections interleave. */
            due = g_t0_ns + (int64_t)((double)(k * o->connections + c->idx) * 1e9 / o->rate);
            /* With a tick, a message due inside the tick that is running goes
             * out at its end with the others due there: one wake-up for all. */
            if (o->tick_ns > 0)
                due = g_t0_ns + (due - g_t0_ns + o->tick_ns - 1) / o->tick_ns * o->tick_ns;
            if (due > now_ns(CLOCK_MONOTONIC))
                sleep_until_ns(due);
        }
        pthread_mutex_lock(&c->mu);
        while (c->sent - c->done >= o->inflight && !g_stop && !stalled(c))
            wait_a_little(c);
        stuck = stalled(c);
        pthread_mutex_unlock(&c->mu);
        if (stuck) {
            fprintf(stderr, "iw_loadgen: connection %d: no acknowledgement for %d s; giving up after %lld messages\n",
                    c->idx, o->drain_timeout_s, c->sent);
            break;
        }
        if (o->rate > 0) {
            int64_t lag = now_ns(CLOCK_MONOTONIC) - due;
            c->late += lag > 1000000;
            if (lag > c->max_lag_ns)
                c->max_lag_ns = lag;
        }
        /* The ts is taken last, after pacing and flow control: with --ts-now it is the publish time. */
        wall = now_ns(CLOCK_REALTIME);
        ts = o->ts_now ? wall / 1000000 : o->base_ts + d->seq * o->ts_step_ms;
        len = format_payload(payload, sizeof(payload), d, (uint64_t)dev, ts);
        if (c->lat != NULL && k % o->latency_every == 0)
            c->lat[c->nlat++] = (struct lat_rec){ dev, ts, wall };
        rc = mosquitto_publish(c->mosq, NULL, d->topic, len, payload, o->qos, false);
        /* With QoS > 0 a NO_CONN message is queued and goes out after the reconnect. */
        if (rc != MOSQ_ERR_SUCCESS && !(rc == MOSQ_ERR_NO_CONN && o->qos > 0)) {
            if (c->failed++ == 0)
                fprintf(stderr, "iw_loadgen: connection %d: publish to %s failed: %s\n", c->idx,
                        d->topic, mosquitto_strerror(rc));
            continue;
        }
        d->seq++;
        c->sent++;
    }
    return NULL;
}

/* Waits until every sent message is done or nothing has been acknowledged for the timeout. */
static void drain(struct conn *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->done < c->sent && !g_stop && !stalled(c))
        wait_a_little(c);
    pthread_mutex_unlock(&c->mu);
}

static int write_latency_log(const struct lg_opts *o, const struct conn *conns, const struct device *devs)
{
    FILE *f = fopen(o->latency_log, "w");
    if (f == NULL) {
        fprintf(stderr, "iw_loadgen: cannot write the latency log %s: %s\n", o->latency_log, strerror(errno));
        return -1;
    }
    for (int i = 0; i < o->connections; i++)
        for (size_t j = 0; j < conns[i].nlat; j++)
            fprintf(f, "%s %lld %" PRId64 "\n", devs[conns[i].lat[j].dev].series,
                    conns[i].lat[j].ts_ms, conns[i].lat[j].wall_ns);
    if (fclose(f) != 0) {
        fprintf(stderr, "iw_loadgen: writing %s failed: %s\n", o->latency_log, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct lg_opts o;
    struct device *devs = NULL;
    struct conn *conns = NULL;
    struct sigaction sa = { .sa_handler = on_signal };
    long long sent = 0, done = 0, failed = 0, lost = 0, late = 0;
    int64_t max_lag = 0;
    int64_t t_pub_end, t_end;
    int rc = parse_args(argc, argv, &o), status = 1;

    if (rc != 0)
        return rc == 1 ? 0 : 2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (o.base_ts < 0) {
        long long per_dev = (o.count + o.devices - 1) / o.devices;
        o.base_ts = now_ns(CLOCK_REALTIME) / 1000000 - (per_dev - 1) * o.ts_step_ms;
    }
    if (devices_init(&o, &devs) != 0)
        return 1;
    conns = calloc((size_t)o.connections, sizeof(*conns));
    if (conns == NULL) {
        fprintf(stderr, "iw_loadgen: out of memory for %d connections\n", o.connections);
        free(devs);
        return 1;
    }
    mosquitto_lib_init();
    pthread_barrier_init(&g_start, NULL, (unsigned)o.connections + 1);
    for (int i = 0; i < o.connections; i++) {
        struct conn *c = &conns[i];
        c->idx = i;
        c->o = &o;
        c->devs = devs;
        c->ndev = (o.devices - i + o.connections - 1) / o.connections;
        /* Every device gets count / devices messages, the first count % devices one more;
         * the connection's round-robin over its devices hands them out in that order. */
        for (int d = i; d < o.devices; d += o.connections)
            c->quota += o.count / o.devices + (d < o.count % o.devices);
        c->connack = -1;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        if (o.latency_log != NULL) {
            c->lat = calloc((size_t)(c->quota / o.latency_every + 1), sizeof(*c->lat));
            if (c->lat == NULL) {
                fprintf(stderr, "iw_loadgen: out of memory for the latency log\n");
                c->err = 1;
            }
        }
        if (!c->err && conn_open(c) != 0)
            c->err = 1;
        pthread_create(&c->thread, NULL, publisher, c);
    }
    for (int i = 0; i < o.connections; i++)
        if (conns[i].err)
            g_stop = 1;
    fprintf(stderr, "iw_loadgen: %lld %s messages, %d devices over %d connection(s), qos %d, rate %s%.0f/s\n",
            o.count, shape_names[o.shape], o.devices, o.connections, o.qos,
            o.rate > 0 ? "" : "max ", o.rate);
    g_t0_ns = now_ns(CLOCK_MONOTONIC);
    pthread_barrier_wait(&g_start);
    for (int i = 0; i < o.connections; i++)
        pthread_join(conns[i].thread, NULL);
    t_pub_end = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < o.connections; i++)
        if (conns[i].mosq != NULL && !conns[i].err)
            drain(&conns[i]);
    t_end = now_ns(CLOCK_MONOTONIC);

    for (int i = 0; i < o.connections; i++) {
        struct conn *c = &conns[i];
        sent += c->sent;
        failed += c->failed;
        late += c->late;
        if (c->max_lag_ns > max_lag)
            max_lag = c->max_lag_ns;
        pthread_mutex_lock(&c->mu);
        done += c->done;
        lost += c->lost;
        pthread_mutex_unlock(&c->mu);
        if (c->mosq != NULL) {
            mosquitto_disconnect(c->mosq);
            mosquitto_loop_stop(c->mosq, false);
            mosquitto_destroy(c->mosq);
        }
    }
    double elapsed = (double)(t_end - g_t0_ns) / 1e9, pub = (double)(t_pub_end - g_t0_ns) / 1e9;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    printf("iw_loadgen: sent %lld, acknowledged %lld, failed %lld of %lld in %.3f s "
           "(publishing took %.3f s): %.0f msg/s%s\n",
           sent, done, failed, o.count, elapsed, pub, rate,
           lost ? "; a connection was lost during the run" : "");
    /* CPU this process used (all threads), so bench/e2e.sh can tell how much
     * of the machine the load generator itself takes. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("RESULT sent=%lld acked=%lld failed=%lld elapsed_s=%.6f publish_s=%.6f rate=%.1f qos=%d "
           "connections=%d devices=%d shape=%s lost_connections=%lld late_1ms=%lld max_lag_ms=%.3f "
           "ts=%s cpu_s=%.6f\n",
           sent, done, failed, elapsed, pub, rate, o.qos, o.connections, o.devices,
           shape_names[o.shape], lost, late, (double)max_lag / 1e6, o.ts_now ? "now" : "step", cpu_s);
    status = (done == o.count && sent == o.count) ? 0 : 1;
    if (o.latency_log != NULL && write_latency_log(&o, conns, devs) != 0)
        status = 1;
    for (int i = 0; i < o.connections; i++) {
        pthread_mutex_destroy(&conns[i].mu);
        pthread_cond_destroy(&conns[i].cv);
        free(conns[i].lat);
    }
    pthread_barrier_destroy(&g_start);
    free(conns);
    free(devs);
    mosquitto_lib_cleanup();
    return status;
}
