/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals of the rule engine shared by rules.c (engine, dispatch, reload,
 * restore), rule_core.c (instance table, timers, the common state machine,
 * emission, persistence) and the kinds (rule_eval.c, rule_water.c,
 * rule_air.c). Everything here runs on the engine's one thread.
 */
#ifndef ISLEWATCH_RULE_INT_H
#define ISLEWATCH_RULE_INT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/log.h"
#include "islewatch/rules.h"
#include "islewatch/template.h"

#define RT_NONE INT64_MIN           /* an unset time */
#define RT_NO_DEADLINE INT64_MAX

/* ---- string map (open addressing; keys owned by the values) -------------- */
struct smap_slot {
    uint64_t    h;
    const char *key;                /* NULL: empty */
    void       *val;
};
struct smap {
    struct smap_slot *slots;
    size_t cap, n;                  /* cap: power of two or 0 */
};
uint64_t iw__hash(const void *p, size_t n, uint64_t h);
#define IW_FNV_SEED 0xcbf29ce484222325ULL
void *iw__smap_get(const struct smap *m, const char *key);
/* Insert (key must not be present). IW_OK or IW_E_NOMEM. */
int iw__smap_put(struct smap *m, const char *key, void *val);
void iw__smap_fini(struct smap *m);

/* ---- rules and instances ------------------------------------------------ */
struct kind_ops;
struct late_work;
struct late_memo;
struct shadow;

struct rule_rt {
    const struct iw_rule *r;        /* borrowed from the config */
    char  *sel[4];                  /* owned copies of the select levels */
    size_t n_sel;                   /* 3 or 4; 0: the select is unusable */
    const struct kind_ops *ops;
};

enum inst_state { ST_INACTIVE = 0, ST_PENDING = 1, ST_FIRING = 2 };

struct inst {
    struct rule_rt *rr;
    const struct iw_rule_params *p; /* the rule's params for this site */
    char *key;                      /* state key; owned (the map's key too) */
    char *source, *site, *device;   /* owned */
    char *metric;                   /* owned; NULL for device-level instances */
    enum inst_state st;
    enum iw_severity sev;
    char     id[17];
    int64_t  pending_since;         /* start of the condition (started_at) */
    int64_t  clear_since;           /* sample time the clear condition began */
    int64_t  last_ts;               /* last evaluated sample time */
    int64_t  next_repeat;           /* wall clock; RT_NONE */
    bool     primed;                /* windows refilled from history */
    bool     restored;              /* state came from a stored record */
    bool     dirty;                 /* in the engine's message-end list */
    bool     orphan;                /* its rule is gone (reload): to be freed */
    bool     was_firing;            /* an orphan: it was firing when its rule went */
    bool     stored;                /* a state record exists for it */
    struct inst *dirty_next;
    size_t   heap_idx;              /* SIZE_MAX: not in the heap */
    int64_t  heap_due;
    void    *x;                     /* kind data (ops->x_size bytes, zeroed) */
    struct late_work *late;         /* live: this message's out-of-order samples; NULL */
    struct shadow *sx;              /* a shadow (rule_late.c): its bookkeeping; NULL: live */
    struct late_memo *memo;         /* live: the late episodes it published lately; NULL */
};

/* What a kind tells the emitter about the current transition. */
struct evidence {
    enum iw_alert_status status;    /* of the message being built */
    const char *metric;
    bool   has_value, has_threshold;
    double value, threshold;
    const char *unit;
    cJSON *details;                 /* an object the kind fills */
    struct iw_tmpl_var vars[16];    /* kind-specific template variables */
    size_t n_vars;
    char   buf[768];                /* storage for their values */
    size_t used;
};
/* Add a template variable (value copied into ev->buf). */
void iw__ev_var(struct evidence *ev, const char *name, const char *value);

struct kind_ops {
    size_t x_size;
    /* Is the metric part of the instance identity for this rule? */
    bool (*per_metric)(const struct rule_rt *rr);
    /* Beyond the select: does this rule take this sample at all? */
    bool (*accepts)(const struct rule_rt *rr, const struct iw_rsample *s);
    void (*sample)(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s);
    /* Optional: once per message, after all its samples (water, air). */
    void (*message_end)(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *last);
    /* Optional: the kind's wall-clock deadline and its handler. */
    int64_t (*deadline)(const struct iw_rules_engine *e, const struct inst *in);
    void (*timer)(struct iw_rules_engine *e, struct inst *in, int64_t now);
    void (*evidence)(const struct iw_rules_engine *e, const struct inst *in, struct evidence *ev);
    /* Optional: extra state in the stored record. */
    void (*save)(const struct inst *in, cJSON *o);
    void (*load)(struct iw_rules_engine *e, struct inst *in, const cJSON *o);
    /* Optional: set up x of a new instance. */
    void (*init)(struct iw_rules_engine *e, struct inst *in);
    /* Optional: free what x points to (x itself is freed by the core). */
    void (*fini)(struct inst *in);
    /* Optional: keep the stored record while inactive (absence: known device;
     * event: the last event handled). */
    bool (*keep)(const struct inst *in);
    /* Optional, device-level instances: the i-th metric its state refers to
     * (flag: the metrics flagged now, restored from the record), NULL past the
     * last; late evaluation replays these series besides those of the late
     * samples and those the series cache knows feed the instance. */
    const char *(*metric_at)(const struct inst *in, size_t i);
};

extern const struct kind_ops iw__threshold_ops, iw__rate_ops, iw__absence_ops, iw__flag_ops,
    iw__event_ops, iw__water_ops, iw__air_ops;

struct iw_rules_engine {
    const struct iw_config *cfg;
    uint64_t cfg_gen;               /* +1 per reload: caches keyed on it, never on the address */
    const char *ending;             /* during a reload: why the rule's alerts resolve, or NULL */
    struct iw_rules_env env;
    int64_t start_ms;
    bool link_down;                 /* iw_rules_set_link: no device can reach us now */
    int64_t link_up_ms;             /* when the link last came back; RT_NONE: never went down */
    struct rule_rt *rules;
    size_t n_rules;
    struct smap insts;              /* state key -> struct inst */
    struct smap series;             /* series key -> struct series_ent */
    struct series_ent **series_by_id;   /* store series id -> the same entries (fast path) */
    size_t series_by_id_cap;
    struct inst **heap;
    size_t heap_n, heap_cap;
    struct inst *dirty;
    struct late_work *late;         /* instances with out-of-order samples in this message, or
                                     * since the last iw_rules_flush_late() (defer_late) */
    struct late_work *late_held;    /* air_quality's (and, hold_all, every per-sample
                                     * kind's), until their upload pauses */
    bool defer_late;
    bool hold_all;                  /* iw_rules_hold_late() */
    int64_t late_since;             /* receipt of the oldest deferred late sample; RT_NONE */
    bool in_message;                /* in iw_rules_on_samples' loop over a message's samples */
    struct iw_rules_stats st;
    struct iw_complaint complaint;
};

/* ---- late and out-of-order samples (rule_late.c) ------------------------- */
/*
 * s is older than what the live instance in evaluated (upto): keep it for
 * evaluation on its own time at the end of the message. Counts out_of_order.
 * Returns at once for a shadow (its replay is in time order by construction).
 */
void iw__out_of_order(struct iw_rules_engine *e, struct inst *in, const struct iw_rsample *s,
                      int64_t upto);
/* End of a message or a deferral: evaluate the kept samples in shadows,
 * publish, free them. IW_LATE_DUE holds air_quality's (hold_all: every
 * per-sample kind's too) until their upload pauses (the instance's timer
 * runs them); IW_LATE_ALL runs those too, IW_LATE_DROP
 * drops everything (the engine is going away). */
enum iw_late_mode { IW_LATE_DROP, IW_LATE_DUE, IW_LATE_ALL };
void iw__late_finish(struct iw_rules_engine *e, enum iw_late_mode mode);
/* The held late work's due time of instance in; RT_NO_DEADLINE: none. */
int64_t iw__late_due(const struct inst *in);
/* What rule_late.c keeps for a live instance (its memo of published late
 * episodes): free it; is there any (its record must stay); save it to and
 * load it from the state record. */
void iw__late_memo_free(struct inst *in);
bool iw__late_memo_any(const struct inst *in);
void iw__late_memo_save(const struct inst *in, cJSON *o);
void iw__late_memo_load(struct inst *in, const cJSON *o);
/* Run (or, run false, drop) in's held late work; run: only when due by now. */
void iw__late_run_held(struct iw_rules_engine *e, struct inst *in, int64_t now, bool run);
/* A live sample is about to reach in: judge its held late work first if in
 * is timing a run that the sample may complete (for:, clear_for:). */
void iw__late_before_sample(struct iw_rules_engine *e, struct inst *in);
/* How long after a backlog's last sample arrived its upload may pause. */
#define IW_UPLOAD_PAUSE_MS 10000
/* emit() of a shadow: true when nothing is to be built (priming, reference). */
bool iw__shadow_skip(struct iw_rules_engine *e, struct inst *in, enum iw_alert_status status,
                     enum iw_alert_reason reason, int64_t ts);
/* A shadow that writes no point: the reference, or the truth while priming. */
bool iw__shadow_quiet(const struct inst *in);
/* emit() of a shadow: hold the built alert until the message's late work ends. */
void iw__shadow_hold(struct iw_rules_engine *e, struct inst *in, const struct iw_alert *a);

/* ---- core (rule_core.c) --------------------------------------------------- */
/* Does the rule's select cover the device (its first three levels)? rules.c. */
bool iw__select_device(const struct rule_rt *rr, const char *source, const char *site,
                       const char *device);
/* Find or create the instance of rule rr for these names (metric NULL: device-level). */
struct inst *iw__inst_get(struct iw_rules_engine *e, struct rule_rt *rr, const char *source,
                          const char *site, const char *device, const char *metric);
void iw__inst_free(struct iw_rules_engine *e, struct inst *in);

/* Is the sample older than alerts.live_window at receipt? */
bool iw__late(const struct iw_rules_engine *e, const struct iw_rsample *s);
/* The same for sample time ts received at recv_ms. */
bool iw__late_at(const struct iw_rules_engine *e, int64_t ts, int64_t recv_ms);
/* The window a water_quality instance averages over (its window:, else 4h). */
int64_t iw__water_window(const struct inst *in);
bool iw__flagged(char flag);

/* air_quality's late samples (rule_air.c, for rule_late.c). */
/* The end of the last hour the live instance closed or passed over. */
int64_t iw__air_judged_to(const struct inst *in);
/* Past this, no period the instance judges holds a sample at ts. */
int64_t iw__air_settle(const struct inst *in, int64_t ts);
/* A shadow starts with the pollutants the live instance knows the station measures. */
void iw__air_late_begin(struct inst *sh, const struct inst *live);
/* When air_quality's late samples, the last received at recv, are judged. */
int64_t iw__air_late_due(const struct inst *in, int64_t recv);
/* Close the shadow's periods that end by upto (the live instance closed them). */
void iw__air_late_end(struct iw_rules_engine *e, struct inst *sh, int64_t upto, int64_t recv);
/* The live instance takes the truth's hourly means (and a filled gap's close);
 * when the truth reached its last period (reached), its result there, and a
 * firing live episode the truth's severity. */
void iw__air_adopt(struct iw_rules_engine *e, struct inst *live, const struct inst *truth,
                   bool reached, int64_t recv);

/*
 * The common machine: `breach` and `clear` describe the current evaluation at
 * sample time ts; sev is the severity the condition asks for. wall is the
 * wall clock of the cause (receipt time or tick time).
 */
void iw__drive(struct iw_rules_engine *e, struct inst *in, bool breach, bool clear,
               enum iw_severity sev, int64_t ts, bool late, int64_t wall);
/* Direct transitions for kinds whose conditions are events (absence, event). */
void iw__fire(struct iw_rules_engine *e, struct inst *in, enum iw_severity sev,
              int64_t started_at, int64_t ts, bool late, int64_t wall);
void iw__resolve(struct iw_rules_engine *e, struct inst *in, int64_t ts, bool late, int64_t wall);
/* A firing instance's severity changes to sev: one message (a severity change). */
void iw__escalate(struct iw_rules_engine *e, struct inst *in, enum iw_severity sev, int64_t ts,
                  bool late, int64_t wall);

void iw__save(struct iw_rules_engine *e, struct inst *in);
void iw__sched(struct iw_rules_engine *e, struct inst *in);
void iw__heap_remove(struct iw_rules_engine *e, struct inst *in);
void iw__write_point(struct iw_rules_engine *e, const struct inst *in, const char *metric,
                     int64_t ts, double v, bool valid);
/* Read a series of the instance's device; cb as in iw_rules_env.read_points. */
void iw__read_points(struct iw_rules_engine *e, const struct inst *in, const char *metric,
                     int64_t from, int64_t to, iw_rules_point_cb cb, void *cbctx);
/* Parse the stored record fields common to all kinds into in. */
void iw__load_common(struct inst *in, const cJSON *o);
/* Emit a resolved alert for a record whose rule is gone (restore, reload). */
void iw__emit_orphan_resolve(struct iw_rules_engine *e, const cJSON *rec, const char *why,
                             int64_t now);
/* Every metric whose series feeds instance in, as far as the series cache
 * knows (series seen since the engine started or reloaded): cb gets the name
 * (not NUL-terminated) and its length. rules.c. */
void iw__inst_series(const struct iw_rules_engine *e, const struct inst *in,
                     void (*cb)(void *ctx, const char *metric, size_t len), void *ctx);
/* Is the device in the inventory (and its entry)? */
const struct iw_device_cfg *iw__inventory(const struct iw_config *cfg, const char *source,
                                          const char *site, const char *device);
/* Reload or restart with a changed event rule rr: an event of this type whose
 * last message (at event_ts) was a start, and whose episode the old rule
 * ended, fires a new episode of rr at now when rr still matches it. */
void iw__event_refire(struct iw_rules_engine *e, struct rule_rt *rr, const char *source,
                      const char *site, const char *device, const char *type, int64_t event_ts,
                      int64_t now);
/* Absence: a device the rule watches before any message of it reached the rule
 * (in the inventory; in_store: it has stored series). A device the rule has not
 * seen counts from now, when the rule took effect for it. Schedules it. */
void iw__absence_expect(struct iw_rules_engine *e, struct inst *in, bool in_store, int64_t now);
/* Reload: the inventory changed; drop a never-seen device no longer listed. */
void iw__absence_refresh(struct iw_rules_engine *e, struct inst *in, int64_t now);
/* "1m", "30s", "1h30m", "500ms" into buf; returns buf. */
char *iw__fmt_dur(int64_t ms, char *buf, size_t len);
/* v rounded to `digits` significant digits: a mean of decimal inputs shows as
 * 1.00375, not 1.0037499999999995 (evidence only; decisions use v itself). */
double iw__round_sig(double v, int digits);
/* Six significant digits without trailing zeros, and without an exponent
 * between 1e-9 and 1e15 (0.00005, 2500000); returns buf. */
char *iw__fmt_num(double v, char *buf, size_t len);
cJSON *iw__json_time(int64_t ms);

#endif /* ISLEWATCH_RULE_INT_H */
