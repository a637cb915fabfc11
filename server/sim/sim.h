/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim.h: the parts of islewatch-sim shared by its two files:
 * simulator.c (options, MQTT, the main loop) and sim_devices.c (the device
 * models). Private to the simulator; nothing in islewatch_core uses it.
 *
 * Threads: everything here belongs to the main thread, except the atomics of
 * struct sim, which libmosquitto's callbacks update.
 */
#ifndef ISLEWATCH_SIM_H
#define ISLEWATCH_SIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define N_SITES 3
#define N_WATER_PER_SITE 2
#define N_CAMS_PER_SITE 4
#define N_ACTORS (N_SITES * (N_WATER_PER_SITE + 1 + N_CAMS_PER_SITE))

struct mosquitto;

struct sim_opts {
    const char *host;
    int port;
    double interval_s;   /* wall seconds between sensor samples */
    double heartbeat_s;  /* wall seconds between camera heartbeats */
    double speed;        /* scenario seconds per wall second */
    uint64_t seed;
    long long count;     /* 0 = run until a signal */
    int qos;
    bool verbose;
    bool calm;           /* no scripted demo episodes at start-up */
    const char *client_id;
    long long start_ts;  /* epoch ms of the first message; -1 = now */
};

struct rng { uint64_t s[4]; };

/* Ornstein-Uhlenbeck walk: relaxes to its target with time constant tau_s,
 * stationary standard deviation sigma. */
struct walk { double x, sigma, tau_s; };

enum { W_PH, W_DO, W_CODMN, W_NH3N, W_TP, W_TN, W_TEMP, W_TURB, W_N };
enum { A_PM25, A_PM10R, A_SO2, A_NO2, A_CO, A_O3, A_N };   /* A_PM10R: PM10/PM2.5 ratio */
enum { EV_MOTION, EV_VIDEO_LOSS, EV_TAMPER, EV_DISK_FAULT, EV_N };
enum episode { EP_NONE, EP_SEWAGE, EP_HYPOXIA, EP_HAZE };

enum actor_kind { ACT_WATER, ACT_AIR, ACT_CAMERA };

struct water_state {
    struct walk w[W_N];
    double base[W_N];
    enum episode ep;
    int64_t ep_end_ms;
    double ep_target[W_N];
    bool fault;
    int64_t fault_end_ms;
    double shown[W_N];            /* last values sent; a faulty instrument repeats them */
};

struct air_state {
    struct walk w[A_N];
    double base[A_N];
    bool haze;
    int64_t haze_end_ms;
    double haze_pm25;
};

struct cam_event { bool active; int64_t next_start_ms, stop_ms; };

struct camera_state {
    bool online;
    int64_t next_outage_ms, outage_end_ms, hb_due_ms;
    struct cam_event ev[EV_N];
};

struct actor {
    enum actor_kind kind;
    int site;
    char device[8];
    char topic[96];
    char event_topic[96];
    struct rng rng;
    int64_t due_ms;               /* next step, ms since the start (nominal) */
    int64_t last_ms;              /* previous sensor step */
    /* Scripted demo episode (sensors only): begins at sched_ms if >= 0. */
    int64_t sched_ms;
    double sched_dur_s;
    union {
        struct water_state water;
        struct air_state air;
        struct camera_state cam;
    } u;
};

struct sim {
    struct sim_opts o;
    struct mosquitto *mosq;
    struct actor actors[N_ACTORS];
    int64_t wall_start_ms;
    int64_t mono_start_ns;
    long long sent, failed;
    atomic_llong acked;
    atomic_int connack_rc;        /* -1 until the first CONNACK */
    int64_t last_fail_log_ns;
};

/* Sites by index: dongtan, chongming, hengsha. */
extern const char *const iw_sim_sites[N_SITES];

/*
 * Sets up the 21 devices from s->o (seed, interval, heartbeat, speed, calm)
 * and s->wall_start_ms: baselines, random streams, first due times, and the
 * scripted demo episodes unless s->o.calm.
 */
void iw_sim_actors_init(struct sim *s);

/*
 * Runs device a's step due at t (ms since the start, == a->due_ms): advances
 * its model, publishes what it reports (through iw_sim_publish) and sets
 * a->due_ms to its next step. Returns false when the run must end (--count).
 */
bool iw_sim_step(struct sim *s, struct actor *a, int64_t t);

/* Writes " site/device:what" for every device in an episode into buf (borrowed);
 * buf is "" when all are normal. */
void iw_sim_describe(const struct sim *s, char *buf, size_t cap);

/* Defined in simulator.c. */

/* Publishes payload (borrowed) on topic at the configured QoS and counts it.
 * Returns false when the run must end (--count reached). */
bool iw_sim_publish(struct sim *s, const char *topic, const char *payload);

/* One line on stderr, prefixed "islewatch-sim: ". */
void iw_sim_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* ISLEWATCH_SIM_H */
