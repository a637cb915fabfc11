/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim_devices.c: islewatch-sim's device models (see simulator.c for the whole
 * picture). Water stations, air stations and cameras, each with its own random
 * stream; every quantity is an Ornstein-Uhlenbeck walk around a site baseline,
 * and episodes (sewage discharge, hypoxia, haze, instrument fault, camera
 * outage, camera events) move the walks' targets for a while.
 *
 * Main thread only. All times are nominal milliseconds since the start, so a
 * seed gives the same sequence whatever the machine's timing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

const char *const iw_sim_sites[N_SITES] = { "dongtan", "chongming", "hengsha" };

static const char *site_of(const struct actor *a) { return iw_sim_sites[a->site]; }

/* ================================================================== */
/* Random numbers: xoshiro256** seeded by splitmix64, one per device  */
/* ================================================================== */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in (0, 1): never 0, so log() below is safe. */
static double rng_unit(struct rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53; }

static double rng_range(struct rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }

static double rng_normal(struct rng *r)
{
    double u1 = rng_unit(r), u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double rng_exp(struct rng *r, double mean) { return -mean * log(rng_unit(r)); }

/* Did an event with this rate (per scenario hour) happen in dt scenario seconds? */
static bool rng_chance(struct rng *r, double per_hour, double dt_s)
{
    return rng_unit(r) < 1.0 - exp(-per_hour * dt_s / 3600.0);
}

/* ================================================================== */
/* Ornstein-Uhlenbeck walk: relaxes to its target with time constant  */
/* tau, stationary standard deviation sigma (exact discretisation).   */
/* ================================================================== */

static void walk_step(struct walk *w, double target, double dt_s, struct rng *r)
{
    double a = exp(-dt_s / w->tau_s);
    w->x = target + (w->x - target) * a + w->sigma * sqrt(1.0 - a * a) * rng_normal(r);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Bump centred on hour c of the local day, width w hours (wraps at midnight). */
static double day_bump(double hour, double c, double w)
{
    double d = fabs(hour - c);
    if (d > 12) d = 24 - d;
    return exp(-0.5 * (d / w) * (d / w));
}

/* ================================================================== */
/* Devices                                                            */
/* ================================================================== */

static const char *const water_names[W_N] = { "ph", "do", "codmn", "nh3_n", "tp", "tn", "temp", "turbidity" };
static const int water_decimals[W_N] = { 2, 2, 2, 3, 3, 2, 1, 1 };
static const double water_tau_min[W_N] = { 30, 20, 40, 15, 25, 40, 60, 10 };
/* Site baselines (mean, sigma): dongtan around Class III, chongming Class II,
 * hengsha close to the III/IV border. Order as the W_ enum. */
static const double water_base[N_SITES][W_N][2] = {
    { { 7.6, 0.12 }, { 6.0, 0.45 }, { 4.8, 0.45 }, { 0.75, 0.12 }, { 0.15, 0.025 }, { 1.3, 0.15 }, { 16.0, 0.6 }, { 25, 6 } },
    { { 7.5, 0.10 }, { 7.2, 0.40 }, { 3.4, 0.35 }, { 0.40, 0.08 }, { 0.08, 0.015 }, { 0.9, 0.10 }, { 15.5, 0.6 }, { 12, 3 } },
    { { 7.8, 0.12 }, { 5.6, 0.50 }, { 5.4, 0.50 }, { 0.85, 0.14 }, { 0.17, 0.025 }, { 1.6, 0.20 }, { 16.5, 0.6 }, { 35, 8 } },
};

static const char *const air_names[A_N] = { "pm25", "pm10", "so2", "no2", "co", "o3" };
static const double air_tau_min[A_N] = { 30, 60, 60, 20, 30, 30 };
static const double air_base[N_SITES][A_N][2] = {
    { { 28, 6 }, { 1.7, 0.12 }, { 7, 2 }, { 24, 6 }, { 0.6, 0.10 }, { 60, 12 } },
    { { 22, 5 }, { 1.6, 0.12 }, { 6, 2 }, { 18, 5 }, { 0.5, 0.08 }, { 65, 12 } },
    { { 35, 7 }, { 1.8, 0.12 }, { 9, 3 }, { 30, 7 }, { 0.7, 0.12 }, { 55, 12 } },
};

static const char *const event_names[EV_N] = { "motion", "video_loss", "tamper", "disk_fault" };
/* Per camera: starts per scenario hour, duration range in scenario seconds. */
static const double event_rate[EV_N] = { 3.0, 0.15, 0.05, 0.02 };
static const double event_dur[EV_N][2] = { { 10, 90 }, { 30, 240 }, { 20, 120 }, { 300, 1800 } };
#define CAM_OUTAGE_RATE 0.3       /* per camera per scenario hour */
#define WATER_SEWAGE_RATE 0.25    /* per station per scenario hour */
#define WATER_HYPOXIA_RATE 0.15
#define WATER_FAULT_RATE 0.03
#define AIR_HAZE_RATE 0.04

/* Scenario seconds -> wall milliseconds. */
static int64_t scen_to_ms(const struct sim *s, double scen_s)
{
    double ms = scen_s * 1000.0 / s->o.speed;
    return ms < 1 ? 1 : (int64_t)llround(ms);
}

/* Local hour of day (Asia/Shanghai, UTC+8) in scenario time. */
static double scen_hour(const struct sim *s, int64_t t_ms)
{
    double scen_epoch_h = ((double)s->wall_start_ms + (double)t_ms * s->o.speed) / 3600000.0;
    return fmod(scen_epoch_h + 8.0, 24.0);
}

/* Appends ,"name":value with the given decimals. */
static void put_num(char *buf, size_t cap, size_t *len, const char *name, double v, int decimals)
{
    int n;
    if (*len >= cap)
        return;
    n = snprintf(buf + *len, cap - *len, ",\"%s\":%.*f", name, decimals, v);
    if (n > 0)
        *len += (size_t)n;
}

/* ================================================================== */
/* Water stations                                                     */
/* ================================================================== */

/* Starts an episode. scripted: the quickstart's demo discharge, already under way,
 * with DO under the 3 mg/L of Class IV so that threshold rules see it at once. */
static void water_begin(struct sim *s, struct actor *a, enum episode ep, double dur_s, int64_t t,
                        bool scripted)
{
    struct water_state *w = &a->u.water;
    struct rng *r = &a->rng;

    w->ep = ep;
    w->ep_end_ms = t + scen_to_ms(s, dur_s);
    memcpy(w->ep_target, w->base, sizeof(w->ep_target));
    if (ep == EP_SEWAGE) {
        w->ep_target[W_NH3N] = rng_range(r, 2.3, 3.2);
        w->ep_target[W_TP] = rng_range(r, 0.30, 0.50);
        w->ep_target[W_CODMN] = rng_range(r, 7.5, 11.0);
        w->ep_target[W_DO] = rng_range(r, 2.0, 3.5);
        w->ep_target[W_TN] = w->base[W_TN] + rng_range(r, 1.5, 3.0);
        w->ep_target[W_TURB] = w->base[W_TURB] + rng_range(r, 15, 40);
        w->ep_target[W_PH] = w->base[W_PH] - 0.3;
        if (scripted) {
            w->ep_target[W_DO] = 2.4;
            for (int i = 0; i < W_N; i++)
                if (i != W_TEMP)
                    w->w[i].x = w->ep_target[i];
        }
        iw_sim_note("%s/%s: sewage discharge begins (NH3-N toward %.2f mg/L, DO toward %.1f mg/L)"
                    " for ~%.0f scenario min", site_of(a), a->device, w->ep_target[W_NH3N], w->ep_target[W_DO], dur_s / 60);
    } else {
        w->ep_target[W_DO] = rng_range(r, 1.0, 1.9);
        w->ep_target[W_CODMN] = w->base[W_CODMN] + 1.5;
        iw_sim_note("%s/%s: hypoxia begins (DO toward %.1f mg/L) for ~%.0f scenario min",
                    site_of(a), a->device, w->ep_target[W_DO], dur_s / 60);
    }
}

static bool water_step(struct sim *s, struct actor *a, int64_t t)
{
    struct water_state *w = &a->u.water;
    struct rng *r = &a->rng;
    double dt = (double)(t - a->last_ms) / 1000.0 * s->o.speed;
    double hour = scen_hour(s, t);
    char buf[512];
    size_t len;

    if (w->ep != EP_NONE && t >= w->ep_end_ms) {
        iw_sim_note("%s/%s: episode over, water recovering", site_of(a), a->device);
        w->ep = EP_NONE;
    }
    if (w->ep == EP_NONE && a->sched_ms >= 0 && t >= a->sched_ms) {
        water_begin(s, a, EP_SEWAGE, a->sched_dur_s, t, true);
        a->sched_ms = -1;
    } else if (w->ep == EP_NONE && rng_chance(r, WATER_SEWAGE_RATE, dt)) {
        water_begin(s, a, EP_SEWAGE, rng_range(r, 600, 2400), t, false);
    } else if (w->ep == EP_NONE && rng_chance(r, WATER_HYPOXIA_RATE * (hour < 7 ? 3 : 0.5), dt)) {
        water_begin(s, a, EP_HYPOXIA, rng_range(r, 900, 3600), t, false);
    }
    if (w->fault && t >= w->fault_end_ms) {
        w->fault = false;
        iw_sim_note("%s/%s: instrument fault cleared", site_of(a), a->device);
    } else if (!w->fault && rng_chance(r, WATER_FAULT_RATE, dt)) {
        double dur = rng_range(r, 300, 1800);
        w->fault = true;
        w->fault_end_ms = t + scen_to_ms(s, dur);
        iw_sim_note("%s/%s: instrument fault (flag D) for ~%.0f scenario min",
                    site_of(a), a->device, dur / 60);
    }

    for (int i = 0; i < W_N; i++) {
        double target = w->ep != EP_NONE ? w->ep_target[i] : w->base[i];
        /* Photosynthesis: warmer water, more oxygen and a higher pH in the afternoon. */
        if (i == W_TEMP) target += 1.2 * (day_bump(hour, 15, 4) - 0.4);
        if (i == W_DO) target += 0.6 * (day_bump(hour, 15, 4) - 0.4);
        if (i == W_PH) target += 0.1 * (day_bump(hour, 15, 4) - 0.4);
        walk_step(&w->w[i], target, dt, r);
    }
    if (!w->fault) {
        w->shown[W_PH] = clampd(w->w[W_PH].x, 5.5, 9.5);
        w->shown[W_DO] = clampd(w->w[W_DO].x, 0.2, 14);
        w->shown[W_TEMP] = clampd(w->w[W_TEMP].x, 0, 35);
        for (int i = 0; i < W_N; i++)
            if (i != W_PH && i != W_DO && i != W_TEMP)
                w->shown[i] = fmax(w->w[i].x, 0.2 * w->base[i]);
    }

    len = (size_t)snprintf(buf, sizeof(buf), "{\"ts\":%lld", (long long)(s->wall_start_ms + t));
    for (int i = 0; i < W_N; i++)
        put_num(buf, sizeof(buf), &len, water_names[i], w->shown[i], water_decimals[i]);
    if (w->fault && len < sizeof(buf))
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, ",\"flag\":\"D\"");
    if (len + 2 > sizeof(buf))
        return true;                      /* cannot happen with these fields */
    memcpy(buf + len, "}", 2);

    a->last_ms = t;
    a->due_ms = t + (int64_t)llround(s->o.interval_s * 1000);
    return iw_sim_publish(s, a->topic, buf);
}

/* ================================================================== */
/* Air stations                                                       */
/* ================================================================== */

static bool air_step(struct sim *s, struct actor *a, int64_t t)
{
    struct air_state *q = &a->u.air;
    struct rng *r = &a->rng;
    double dt = (double)(t - a->last_ms) / 1000.0 * s->o.speed;
    double hour = scen_hour(s, t);
    double target[A_N];
    double pm25, pm10;
    char buf[256];

    if (q->haze && t >= q->haze_end_ms) {
        q->haze = false;
        iw_sim_note("%s/%s: haze clearing", site_of(a), a->device);
    }
    if (!q->haze && ((a->sched_ms >= 0 && t >= a->sched_ms) || rng_chance(r, AIR_HAZE_RATE, dt))) {
        double dur = a->sched_ms >= 0 && t >= a->sched_ms ? a->sched_dur_s : rng_range(r, 3600, 10800);
        a->sched_ms = -1;
        q->haze = true;
        q->haze_end_ms = t + scen_to_ms(s, dur);
        q->haze_pm25 = rng_range(r, 130, 220);
        iw_sim_note("%s/%s: haze episode begins (PM2.5 toward %.0f ug/m3) for ~%.0f scenario min",
                    site_of(a), a->device, q->haze_pm25, dur / 60);
    }

    /* Traffic peaks in the morning and evening; ozone builds up in the afternoon sun. */
    double traffic = day_bump(hour, 8, 1.5) + day_bump(hour, 18.5, 2);
    memcpy(target, q->base, sizeof(target));
    target[A_PM25] *= 1.0 + 0.25 * traffic;
    target[A_NO2] *= 0.8 + 0.6 * traffic;
    target[A_CO] *= 0.9 + 0.3 * traffic;
    target[A_O3] = 0.4 * q->base[A_O3] + 1.5 * q->base[A_O3] * day_bump(hour, 15, 3);
    if (q->haze) {
        target[A_PM25] = q->haze_pm25;
        target[A_PM10R] = 1.4;
        target[A_NO2] += 25;
        target[A_CO] += 0.8;
        target[A_SO2] += 10;
        target[A_O3] *= 0.6;
    }
    for (int i = 0; i < A_N; i++)
        walk_step(&q->w[i], target[i], dt, r);

    pm25 = fmax(q->w[A_PM25].x, 3);
    pm10 = pm25 * fmax(q->w[A_PM10R].x, 1.05);
    snprintf(buf, sizeof(buf),
             "{\"ts\":%lld,\"%s\":%.0f,\"%s\":%.0f,\"%s\":%.0f,\"%s\":%.0f,\"%s\":%.1f,\"%s\":%.0f}",
             (long long)(s->wall_start_ms + t), air_names[A_PM25], pm25, air_names[A_PM10R], pm10,
             air_names[A_SO2], fmax(q->w[A_SO2].x, 2), air_names[A_NO2], fmax(q->w[A_NO2].x, 3),
             air_names[A_CO], fmax(q->w[A_CO].x, 0.1), air_names[A_O3], fmax(q->w[A_O3].x, 2));

    a->last_ms = t;
    a->due_ms = t + (int64_t)llround(s->o.interval_s * 1000);
    return iw_sim_publish(s, a->topic, buf);
}

/* ================================================================== */
/* Cameras                                                            */
/* ================================================================== */

static int64_t next_after(struct sim *s, struct rng *r, int64_t t, double per_hour)
{
    return t + scen_to_ms(s, rng_exp(r, 3600.0 / per_hour));
}

static bool cam_event(struct sim *s, struct actor *a, int64_t t, int e, const char *state)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "{\"ts\":%lld,\"type\":\"%s\",\"state\":\"%s\"}",
             (long long)(s->wall_start_ms + t), event_names[e], state);
    if (e != EV_MOTION)
        iw_sim_note("%s/%s: %s %s", site_of(a), a->device, event_names[e], state);
    return iw_sim_publish(s, a->event_topic, buf);
}

static bool camera_step(struct sim *s, struct actor *a, int64_t t)
{
    struct camera_state *c = &a->u.cam;
    struct rng *r = &a->rng;
    bool go = true;

    if (!c->online && t >= c->outage_end_ms) {
        c->online = true;
        c->next_outage_ms = next_after(s, r, t, CAM_OUTAGE_RATE);
        iw_sim_note("%s/%s: back online", site_of(a), a->device);
    } else if (c->online && t >= c->next_outage_ms) {
        double dur = rng_range(r, 120, 480);
        c->online = false;
        c->outage_end_ms = t + scen_to_ms(s, dur);
        iw_sim_note("%s/%s: goes silent for ~%.0f scenario min", site_of(a), a->device, dur / 60);
    }
    /* A silent camera reports nothing; a stop that fell due meanwhile is sent when it is back. */
    /* One event per step: two events in the same millisecond would share a ts on the
     * event topic; the next one falls due 1 ms later (see the end of this function). */
    for (int e = 0; go && c->online && e < EV_N; e++) {
        struct cam_event *ev = &c->ev[e];
        if (ev->active && t >= ev->stop_ms) {
            ev->active = false;
            ev->next_start_ms = next_after(s, r, t, event_rate[e]);
            go = cam_event(s, a, t, e, "stop");
            break;
        } else if (!ev->active && t >= ev->next_start_ms) {
            ev->active = true;
            ev->stop_ms = t + scen_to_ms(s, rng_range(r, event_dur[e][0], event_dur[e][1]));
            go = cam_event(s, a, t, e, "start");
            break;
        }
    }
    if (go && t >= c->hb_due_ms) {
        c->hb_due_ms += (int64_t)llround(s->o.heartbeat_s * 1000);
        if (c->online) {
            char buf[192];
            bool lost = c->ev[EV_VIDEO_LOSS].active;
            int fps = lost ? 0 : rng_unit(r) < 0.05 ? 24 : 25;
            int kbps = lost ? 0 : (int)lround(2048 * (1 + 0.05 * rng_normal(r)));
            snprintf(buf, sizeof(buf),
                     "{\"ts\":%lld,\"online\":true,\"fps\":%d,\"bitrate_kbps\":%d,\"disk_ok\":%s}",
                     (long long)(s->wall_start_ms + t), fps, kbps,
                     c->ev[EV_DISK_FAULT].active ? "false" : "true");
            go = iw_sim_publish(s, a->topic, buf);
        }
    }

    a->due_ms = c->hb_due_ms;
    if (!c->online) {
        if (c->outage_end_ms < a->due_ms) a->due_ms = c->outage_end_ms;
    } else {
        if (c->next_outage_ms < a->due_ms) a->due_ms = c->next_outage_ms;
        for (int e = 0; e < EV_N; e++) {
            int64_t at = c->ev[e].active ? c->ev[e].stop_ms : c->ev[e].next_start_ms;
            if (at < a->due_ms) a->due_ms = at;
        }
    }
    if (a->due_ms <= t)                   /* an event left for the next millisecond */
        a->due_ms = t + 1;
    return go;
}

/* ================================================================== */
/* Set-up                                                             */
/* ================================================================== */

void iw_sim_actors_init(struct sim *s)
{
    int64_t interval_ms = (int64_t)llround(s->o.interval_s * 1000);
    int64_t hb_ms = (int64_t)llround(s->o.heartbeat_s * 1000);
    int n_sensor = N_SITES * (N_WATER_PER_SITE + 1), i_sensor = 0, i_cam = 0;
    int k = 0;

    for (int site = 0; site < N_SITES; site++) {
        for (int d = 0; d < N_WATER_PER_SITE + 1 + N_CAMS_PER_SITE; d++, k++) {
            struct actor *a = &s->actors[k];
            char name[8];                 /* w01, w02, a01, c01..c04 */
            if (d < N_WATER_PER_SITE)
                snprintf(name, sizeof(name), "w%02d", d + 1);
            else if (d == N_WATER_PER_SITE)
                snprintf(name, sizeof(name), "a01");
            else
                snprintf(name, sizeof(name), "c%02d", d - N_WATER_PER_SITE);
            memcpy(a->device, name, sizeof(a->device));
            a->site = site;
            a->sched_ms = -1;
            rng_seed(&a->rng, s->o.seed, (uint64_t)k + 1);
            if (d < N_WATER_PER_SITE) {
                a->kind = ACT_WATER;
                snprintf(a->topic, sizeof(a->topic), "sensors/water/%s/%s", iw_sim_sites[site], name);
                for (int i = 0; i < W_N; i++) {
                    /* The second station of a site reads a little differently. */
                    double scale = d == 0 ? 1.0 : rng_range(&a->rng, 0.9, 1.1);
                    a->u.water.base[i] = water_base[site][i][0] * (i == W_PH ? 1.0 : scale);
                    a->u.water.w[i] = (struct walk){ .x = a->u.water.base[i],
                                                     .sigma = water_base[site][i][1],
                                                     .tau_s = water_tau_min[i] * 60 };
                    a->u.water.shown[i] = a->u.water.base[i];
                }
            } else if (d == N_WATER_PER_SITE) {
                a->kind = ACT_AIR;
                snprintf(a->topic, sizeof(a->topic), "sensors/air/%s/%s", iw_sim_sites[site], name);
                for (int i = 0; i < A_N; i++) {
                    a->u.air.base[i] = air_base[site][i][0];
                    a->u.air.w[i] = (struct walk){ .x = air_base[site][i][0],
                                                   .sigma = air_base[site][i][1],
                                                   .tau_s = air_tau_min[i] * 60 };
                }
            } else {
                struct camera_state *c = &a->u.cam;
                a->kind = ACT_CAMERA;
                snprintf(a->topic, sizeof(a->topic), "cameras/%s/%s/status", iw_sim_sites[site], name);
                snprintf(a->event_topic, sizeof(a->event_topic), "cameras/%s/%s/event", iw_sim_sites[site], name);
                c->online = true;
                c->next_outage_ms = next_after(s, &a->rng, 0, CAM_OUTAGE_RATE);
                for (int e = 0; e < EV_N; e++)
                    c->ev[e].next_start_ms = next_after(s, &a->rng, 0, event_rate[e]);
                /* Spread heartbeats over the period instead of sending them in bursts. */
                c->hb_due_ms = hb_ms * i_cam++ / (N_SITES * N_CAMS_PER_SITE);
                a->due_ms = c->hb_due_ms;
                continue;
            }
            a->due_ms = interval_ms * i_sensor++ / n_sensor;
            a->last_ms = a->due_ms - interval_ms;
        }
    }
    if (s->o.calm)
        return;
    /* Scripted demo: something to alert on within the first minutes. */
    for (k = 0; k < N_ACTORS; k++) {
        struct actor *a = &s->actors[k];
        const char *site = iw_sim_sites[a->site];
        if (strcmp(site, "dongtan") == 0 && strcmp(a->device, "w01") == 0) {
            a->sched_ms = 0;
            a->sched_dur_s = 1500;
        } else if (strcmp(site, "hengsha") == 0 && strcmp(a->device, "a01") == 0) {
            a->sched_ms = scen_to_ms(s, 30);
            a->sched_dur_s = 7200;
        } else if (strcmp(site, "chongming") == 0 && strcmp(a->device, "c03") == 0) {
            a->u.cam.next_outage_ms = scen_to_ms(s, 60);
        } else if (strcmp(site, "hengsha") == 0 && strcmp(a->device, "c01") == 0) {
            a->u.cam.ev[EV_TAMPER].next_start_ms = scen_to_ms(s, 90);
        }
    }
}

bool iw_sim_step(struct sim *s, struct actor *a, int64_t t)
{
    switch (a->kind) {
    case ACT_WATER: return water_step(s, a, t);
    case ACT_AIR: return air_step(s, a, t);
    case ACT_CAMERA: return camera_step(s, a, t);
    }
    return true;
}

void iw_sim_describe(const struct sim *s, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (int k = 0; k < N_ACTORS; k++) {
        const struct actor *a = &s->actors[k];
        const char *tag = NULL;
        if (a->kind == ACT_WATER && a->u.water.ep == EP_SEWAGE) tag = "sewage";
        else if (a->kind == ACT_WATER && a->u.water.ep == EP_HYPOXIA) tag = "hypoxia";
        else if (a->kind == ACT_WATER && a->u.water.fault) tag = "fault";
        else if (a->kind == ACT_AIR && a->u.air.haze) tag = "haze";
        else if (a->kind == ACT_CAMERA && !a->u.cam.online) tag = "silent";
        if (tag != NULL && len < cap) {
            int n = snprintf(buf + len, cap - len, " %s/%s:%s", site_of(a), a->device, tag);
            if (n > 0) len += (size_t)n;
        }
    }
}
