/* SPDX-License-Identifier: Apache-2.0 */
/*
 * islewatch-sim: a device simulator for the quickstart and for demos.
 *
 * It plays the island district's devices against an MQTT broker with the
 * topics and payloads of SPEC §1: two water-quality stations (w01, w02), one
 * air station (a01) and four cameras (c01..c04) at each of the sites dongtan,
 * chongming and hengsha.
 *
 * Every measured quantity is an Ornstein-Uhlenbeck random walk around a site
 * baseline (plus a daily cycle where nature has one), so a condition persists
 * for minutes and then recovers. Episodes move a walk's target: a sewage
 * discharge drives NH3-N past the Class V limit (2.0 mg/L) and DO down, a
 * hypoxia night drives DO below 2 mg/L, a haze drives PM2.5 over 115 ug/m3.
 * Rarely an instrument reports a fault ("flag":"D") for a while. Cameras send
 * heartbeats, go silent for a few minutes now and then, and report events
 * (start, then stop later).
 *
 * Time: the scenario runs --speed times faster than the wall clock, but the
 * "ts" of every message is the wall-clock time at which it is due, so the
 * daemon accepts it as live data. Each device has its own random stream and
 * all times are nominal (not measured), so a --seed reproduces the same
 * message sequence.
 *
 * Threads: the main thread runs the scenario and publishes; libmosquitto's
 * network thread (mosquitto_loop_start) only bumps the atomic counters in the
 * callbacks. SIGINT and SIGTERM are handled by the main thread only.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "islewatch/version.h"

#include "sim.h"

#define PROGRESS_EVERY_NS (10LL * 1000000000LL)
#define MAX_SLEEP_NS (200LL * 1000000LL)
#define CONNECT_TIMEOUT_S 30
#define DRAIN_TIMEOUT_S 5
#define MAX_UNACKED 100000LL      /* messages libmosquitto may hold while the broker is away */

/* ================================================================== */
/* Options                                                            */
/* ================================================================== */

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: islewatch-sim [OPTIONS]\n"
        "Simulates islewatch's devices (water and air stations, cameras at the sites\n"
        "dongtan, chongming, hengsha) and publishes their telemetry to an MQTT broker.\n"
        "\n"
        "  --host HOST        broker host (default 127.0.0.1)\n"
        "  --port PORT        broker port (default 1883)\n"
        "  --interval SEC     wall seconds between sensor samples (default 5; 60 is realistic)\n"
        "  --heartbeat SEC    wall seconds between camera heartbeats (default 10)\n"
        "  --speed F          the scenario (drifts, episodes, outages, daily cycle) runs F times\n"
        "                     faster than the wall clock; ts stays wall-clock time (default 1)\n"
        "  --seed N           random seed (default: from the clock)\n"
        "  --start-ts MS      epoch milliseconds of the scenario's start, the first ts (default: now);\n"
        "                     the same --seed and --start-ts give byte-identical messages\n"
        "  --count N          stop after N messages (default 0: run until Ctrl-C)\n"
        "  --qos 0|1|2        publish QoS (default 1)\n"
        "  --client-id ID     MQTT client id (default islewatch-sim-<pid>)\n"
        "  --calm             no scripted episodes (by default a sewage discharge is under way at\n"
        "                     dongtan/w01 from the start, for 25 scenario minutes, and a haze at\n"
        "                     hengsha/a01, an outage of chongming/c03 and a tamper at hengsha/c01\n"
        "                     begin within two scenario minutes)\n"
        "  --verbose          print every message as 'TOPIC PAYLOAD' on stdout\n"
        "  --version          print the version and exit\n"
        "  --help             print this help and exit\n"
        "\n"
        "Progress (messages sent, episodes in progress) goes to stderr every 10 s.\n");
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
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

/* Returns 0 to run, 1 to exit successfully (help, version), 2 on a usage error. */
static int parse_args(int argc, char **argv, struct sim_opts *o)
{
    enum { O_HOST = 256, O_PORT, O_INTERVAL, O_HEARTBEAT, O_SPEED, O_SEED, O_COUNT,
           O_QOS, O_CLIENT, O_START, O_CALM, O_VERBOSE, O_VERSION, O_HELP };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "interval", required_argument, NULL, O_INTERVAL },
        { "heartbeat", required_argument, NULL, O_HEARTBEAT },
        { "speed", required_argument, NULL, O_SPEED },
        { "seed", required_argument, NULL, O_SEED },
        { "count", required_argument, NULL, O_COUNT },
        { "qos", required_argument, NULL, O_QOS },
        { "client-id", required_argument, NULL, O_CLIENT },
        { "start-ts", required_argument, NULL, O_START },
        { "calm", no_argument, NULL, O_CALM },
        { "verbose", no_argument, NULL, O_VERBOSE },
        { "version", no_argument, NULL, O_VERSION },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    long long n;
    int c;

    *o = (struct sim_opts){ .host = "127.0.0.1", .port = 1883, .interval_s = 5,
                            .heartbeat_s = 10, .speed = 1, .qos = 1,
                            .start_ts = -1 };
    o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_HOST: o->host = optarg; break;
        case O_PORT:
            if (!parse_ll(optarg, 1, 65535, &n)) bad = "--port wants 1..65535";
            else o->port = (int)n;
            break;
        case O_INTERVAL:
            if (!parse_double(optarg, 0.001, 86400, &o->interval_s))
                bad = "--interval wants seconds between 0.001 and 86400";
            break;
        case O_HEARTBEAT:
            if (!parse_double(optarg, 0.001, 86400, &o->heartbeat_s))
                bad = "--heartbeat wants seconds between 0.001 and 86400";
            break;
        case O_SPEED:
            if (!parse_double(optarg, 0.001, 100000, &o->speed))
                bad = "--speed wants a factor between 0.001 and 100000";
            break;
        case O_SEED:
            if (!parse_ll(optarg, 0, LLONG_MAX, &n)) bad = "--seed wants a non-negative integer";
            else o->seed = (uint64_t)n;
            break;
        case O_COUNT:
            if (!parse_ll(optarg, 0, LLONG_MAX, &o->count)) bad = "--count wants a non-negative integer";
            break;
        case O_QOS:
            if (!parse_ll(optarg, 0, 2, &n)) bad = "--qos wants 0, 1 or 2";
            else o->qos = (int)n;
            break;
        case O_CLIENT: o->client_id = optarg; break;
        case O_START:
            /* Up to the year 9999: keeps every later ts far from overflow. */
            if (!parse_ll(optarg, 0, 253402300799999LL, &o->start_ts))
                bad = "--start-ts wants epoch milliseconds, e.g. 1764417600000";
            break;
        case O_CALM: o->calm = true; break;
        case O_VERBOSE: o->verbose = true; break;
        case O_VERSION: printf("islewatch-sim %s\n", IW_VERSION_STRING); return 1;
        case O_HELP: usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
        if (bad != NULL) {
            fprintf(stderr, "islewatch-sim: bad value '%s': %s (see --help)\n", optarg, bad);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "islewatch-sim: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) { (void)sig; g_stop++; }

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void iw_sim_note(const char *fmt, ...)
{
    va_list ap;
    fputs("islewatch-sim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ================================================================== */
/* Publishing                                                         */
/* ================================================================== */

/* Returns false when the run must end (count reached). */
bool iw_sim_publish(struct sim *s, const char *topic, const char *payload)
{
    int rc;

    if (s->o.count > 0 && s->sent >= s->o.count)
        return false;
    if (s->sent - atomic_load(&s->acked) >= MAX_UNACKED)
        rc = MOSQ_ERR_NOMEM;              /* the broker has been away too long: drop */
    else
        rc = mosquitto_publish(s->mosq, NULL, topic, (int)strlen(payload), payload, s->o.qos, false);
    /* With QoS > 0, libmosquitto keeps the message and sends it after the reconnect. */
    if (rc == MOSQ_ERR_NO_CONN && s->o.qos > 0)
        rc = MOSQ_ERR_SUCCESS;
    if (rc != MOSQ_ERR_SUCCESS) {
        int64_t now = mono_ns();
        s->failed++;
        if (now - s->last_fail_log_ns > 5000000000LL) {
            iw_sim_note("publish to %s failed: %s (%lld failed so far; the broker may be down, retrying)",
                        topic, mosquitto_strerror(rc), s->failed);
            s->last_fail_log_ns = now;
        }
        return true;
    }
    s->sent++;
    if (s->o.verbose) {
        printf("%s %s\n", topic, payload);
        fflush(stdout);
    }
    return !(s->o.count > 0 && s->sent >= s->o.count);
}

/* ================================================================== */
/* Connection and main loop                                           */
/* ================================================================== */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct sim *s = obj;
    (void)m;
    int before = atomic_exchange(&s->connack_rc, rc);
    if (rc != 0)
        iw_sim_note("broker refused the connection: %s", mosquitto_connack_string(rc));
    else if (before >= 0)                 /* not the first CONNACK */
        iw_sim_note("reconnected to the broker");
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    (void)obj;
    if (rc != 0)
        iw_sim_note("lost the broker connection (%s); reconnecting", mosquitto_strerror(rc));
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct sim *s = obj;
    (void)m;
    (void)mid;
    atomic_fetch_add(&s->acked, 1);
}

static void sleep_until(int64_t abs_ns)
{
    struct timespec ts = { .tv_sec = abs_ns / 1000000000LL, .tv_nsec = abs_ns % 1000000000LL };
    /* EINTR (a signal) returns early: the caller re-checks g_stop. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Connects and starts the network thread; waits for the CONNACK. */
static int sim_connect(struct sim *s)
{
    char id[64];
    sigset_t block, old;
    int rc;
    int64_t deadline = mono_ns() + CONNECT_TIMEOUT_S * 1000000000LL;

    if (s->o.client_id == NULL) {
        snprintf(id, sizeof(id), "islewatch-sim-%d", (int)getpid());
        s->o.client_id = id;
    }
    s->mosq = mosquitto_new(s->o.client_id, true, s);
    s->o.client_id = NULL;                /* id[] goes out of scope */
    if (s->mosq == NULL) {
        iw_sim_note("mosquitto_new failed: %s", strerror(errno));
        return -1;
    }
    mosquitto_connect_callback_set(s->mosq, on_connect);
    mosquitto_disconnect_callback_set(s->mosq, on_disconnect);
    mosquitto_publish_callback_set(s->mosq, on_publish);
    mosquitto_reconnect_delay_set(s->mosq, 1, 30, true);

    while ((rc = mosquitto_connect(s->mosq, s->o.host, s->o.port, 30)) != MOSQ_ERR_SUCCESS) {
        iw_sim_note("cannot connect to %s:%d: %s; is the broker running? retrying",
                    s->o.host, s->o.port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        sleep_until(mono_ns() + 2000000000LL);
        if (g_stop)
            return -1;
        if (mono_ns() > deadline) {
            iw_sim_note("giving up: no broker at %s:%d after %d s", s->o.host, s->o.port, CONNECT_TIMEOUT_S);
            return -1;
        }
    }
    /* The network thread must not take SIGINT/SIGTERM: the main thread's sleep has to see them. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = mosquitto_loop_start(s->mosq);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        iw_sim_note("mosquitto_loop_start failed: %s", mosquitto_strerror(rc));
        return -1;
    }
    while (atomic_load(&s->connack_rc) < 0 && !g_stop && mono_ns() < deadline)
        sleep_until(mono_ns() + 20000000LL);
    if (atomic_load(&s->connack_rc) != 0) {
        if (atomic_load(&s->connack_rc) < 0 && !g_stop)
            iw_sim_note("no CONNACK from %s:%d within %d s", s->o.host, s->o.port, CONNECT_TIMEOUT_S);
        return -1;
    }
    return 0;
}

static void progress(struct sim *s, double elapsed_s)
{
    char what[512];
    iw_sim_describe(s, what, sizeof(what));
    iw_sim_note("%.0fs: %lld sent, %lld acknowledged, %lld failed;%s", elapsed_s, s->sent,
                       (long long)atomic_load(&s->acked), s->failed, what[0] ? what : " all devices normal");
}

int main(int argc, char **argv)
{
    static struct sim s;                  /* large: keep it off the stack */
    struct sigaction sa = { .sa_handler = on_signal };
    int64_t next_progress;
    int rc = parse_args(argc, argv, &s.o);

    if (rc != 0)
        return rc == 1 ? 0 : 2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);        /* no SA_RESTART: the sleep must wake up */
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atomic_init(&s.connack_rc, -1);

    mosquitto_lib_init();
    if (sim_connect(&s) != 0) {
        if (s.mosq != NULL) {
            mosquitto_loop_stop(s.mosq, true);
            mosquitto_destroy(s.mosq);
        }
        mosquitto_lib_cleanup();
        return 1;
    }
    s.wall_start_ms = s.o.start_ts >= 0 ? s.o.start_ts : wall_ms();
    s.mono_start_ns = mono_ns();
    iw_sim_actors_init(&s);
    iw_sim_note("connected to %s:%d; seed %llu; %d devices; sensors every %gs, heartbeats every %gs,"
                " speed %gx, qos %d%s",
                s.o.host, s.o.port, (unsigned long long)s.o.seed, N_ACTORS, s.o.interval_s,
                s.o.heartbeat_s, s.o.speed, s.o.qos, s.o.calm ? ", calm" : "");

    next_progress = s.mono_start_ns + PROGRESS_EVERY_NS;
    for (bool go = true; go && !g_stop;) {
        struct actor *a = &s.actors[0];
        for (int k = 1; k < N_ACTORS; k++)      /* ties go to the lower index: deterministic */
            if (s.actors[k].due_ms < a->due_ms)
                a = &s.actors[k];
        int64_t due_ns = s.mono_start_ns + a->due_ms * 1000000LL;
        int64_t now = mono_ns();
        if (now >= next_progress) {
            progress(&s, (double)(now - s.mono_start_ns) / 1e9);
            next_progress += PROGRESS_EVERY_NS;
        }
        if (now < due_ns) {
            int64_t wake = due_ns < next_progress ? due_ns : next_progress;
            sleep_until(wake < now + MAX_SLEEP_NS ? wake : now + MAX_SLEEP_NS);
            continue;
        }
        go = iw_sim_step(&s, a, a->due_ms);
    }

    /* Let the broker acknowledge what was sent; a second Ctrl-C skips the wait. */
    int64_t deadline = mono_ns() + DRAIN_TIMEOUT_S * 1000000000LL;
    sig_atomic_t stops = g_stop;
    while (atomic_load(&s.acked) < s.sent && mono_ns() < deadline && g_stop == stops)
        sleep_until(mono_ns() + 10000000LL);
    if (atomic_load(&s.acked) < s.sent)
        iw_sim_note("%lld messages not acknowledged by the broker at exit",
                    s.sent - (long long)atomic_load(&s.acked));
    iw_sim_note("done: %lld messages sent, %lld acknowledged, %lld failed in %.1f s",
                s.sent, (long long)atomic_load(&s.acked), s.failed,
                (double)(mono_ns() - s.mono_start_ns) / 1e9);
    mosquitto_disconnect(s.mosq);
    mosquitto_loop_stop(s.mosq, false);
    mosquitto_destroy(s.mosq);
    mosquitto_lib_cleanup();
    return 0;
}
