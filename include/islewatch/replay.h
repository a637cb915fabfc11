/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay — one rule engine (islewatch/rules.h) driven in-process over samples
 * that are handed to it, with a simulated wall clock, collecting the alerts
 * in memory. `islewatch test` feeds it samples written in a TESTS.yaml;
 * `islewatch backtest` feeds it stored history. Nothing here touches MQTT,
 * and a store, when given, is only read.
 *
 * THE ENVIRONMENT it gives the engine:
 * - emit: every alert is copied (iw_alert_dup) into a list, in emission order;
 * - state_put / state_del: a key-value table in memory (iw_replay_restart
 *   restores from it, as the daemon restores from RocksDB);
 * - write_point: derived series (water class, aqi) go to memory, an invalid
 *   average flagged 'I' as the daemon stores it (or nowhere: drop_derived);
 * - read_points: a series held in memory (derived, or a fed sample when
 *   keep_inputs is set) is read from there; any other from the store, when
 *   there is one, else through opts.read_history, when given. That is how a
 *   backtest primes a rule's window with the history just before --from.
 *
 * THE SIMULATED WALL CLOCK is the receipt time of the samples (recv_ms; a
 * backtest has only the sample time, so recv_ms = ts). Before a message
 * received at w, every deadline strictly before w runs (iw_rules_tick(w-1));
 * a deadline exactly at w runs after that message, so a heartbeat arriving
 * exactly when `after` runs out is still in time, and an event `start` at the
 * moment of its auto_resolve extends it. iw_replay_advance(now) runs every
 * deadline <= now (the end of a test or of a backtest range). The clock never
 * goes backwards: a message received "earlier" than the clock is simply fed.
 * A wall-clock transition's alert carries its deadline as ts (alert.h), so
 * the alert times do not depend on when the clock was advanced.
 *
 * THREADS: single-threaded, like the engine. OWNERSHIP: cfg and store are
 * BORROWED and must outlive the replay; alerts returned by iw_replay_alert()
 * are owned by the replay (valid until iw_replay_free()).
 */
#ifndef ISLEWATCH_REPLAY_H
#define ISLEWATCH_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/alert.h"
#include "islewatch/compiler.h"
#include "islewatch/config.h"
#include "islewatch/rules.h"

struct iw_store;
struct iw_replay;

struct iw_replay_opts {
    const struct iw_config *cfg;    /* BORROWED */
    struct iw_store *store;         /* BORROWED; NULL: no history but what is fed */
    int64_t start_ms;               /* the wall clock at engine start (absence counts from it) */
    const char *const *rules;       /* rule-name globs: only matching rules run; NULL: all */
    size_t n_rules;
    bool no_inventory;              /* run as if the config declared no devices */
    bool keep_inputs;               /* keep fed samples in memory for read_points (no store) */
    bool drop_derived;              /* keep no derived points (a long backtest needs none) */
    /*
     * Optional, used when store is NULL: where stored history is read from
     * instead (`islewatch backtest --url` reads it through the daemon's HTTP
     * API). Points of `series` with from <= ts <= to, in time order, as
     * iw_replay_read_points; returns IW_OK or an error. ctx is BORROWED.
     */
    int (*read_history)(void *ctx, const char *series, int64_t from, int64_t to,
                        iw_rules_point_cb cb, void *cbctx);
    void *history_ctx;
    /*
     * Optional: the series stored before start_ms, as iw_rules_env.each_series.
     * Their devices are known to absence rules from the start, as the daemon
     * knows the devices of its store when its rules take effect, so a device
     * silent from before start_ms is absent at start_ms + after. ctx is BORROWED.
     */
    int (*each_series)(void *ctx, int (*cb)(void *cbctx, const char *source, const char *site,
                                            const char *device, const char *metric),
                       void *cbctx);
    void *series_ctx;
};

/*
 * Build the replay and its engine. On IW_OK *out is OWNED by the caller
 * (iw_replay_free). IW_E_INVAL (no cfg), IW_E_NOMEM.
 */
IW_NODISCARD int iw_replay_new(const struct iw_replay_opts *o, struct iw_replay **out);
void iw_replay_free(struct iw_replay *r);     /* accepts NULL */

/* Rules that run (after the opts.rules filter), and each one's name. */
size_t iw_replay_rule_count(const struct iw_replay *r);
const struct iw_rule *iw_replay_rule(const struct iw_replay *r, size_t i);

/*
 * Feed one message: n samples of one device, all received at s[0].recv_ms.
 * Deadlines before that time run first (see above). With keep_inputs the
 * samples are kept in memory before the engine sees them (the daemon, too,
 * stores a sample before its rules evaluate it).
 */
void iw_replay_feed(struct iw_replay *r, const struct iw_rsample *s, size_t n);

/* Advance the clock to now_ms, running every deadline <= now_ms. */
void iw_replay_advance(struct iw_replay *r, int64_t now_ms);

/* The input is over: judge the late samples still waiting for their upload
 * to pause (air_quality), as the daemon would a few seconds later. */
void iw_replay_finish(struct iw_replay *r);

/* The clock: the latest time fed or advanced to (opts.start_ms at first). */
int64_t iw_replay_now(const struct iw_replay *r);

/*
 * Simulate a daemon restart at now_ms: advance to now_ms, then throw the
 * engine away and build a new one that starts at now_ms and restores every
 * state record held in memory. IW_OK or IW_E_NOMEM.
 */
IW_NODISCARD int iw_replay_restart(struct iw_replay *r, int64_t now_ms);

/* The collected alerts, in emission order. */
size_t iw_replay_alert_count(const struct iw_replay *r);
const struct iw_alert *iw_replay_alert(const struct iw_replay *r, size_t i);

/*
 * Points of a series with from <= ts <= to, in time order, as the rules see
 * them (memory first, then the store). cb returns non-zero to stop.
 * IW_OK, or the store's error.
 */
IW_NODISCARD int iw_replay_read_points(struct iw_replay *r, const char *series, int64_t from,
                                       int64_t to, iw_rules_point_cb cb, void *cbctx);

/* Number of state records held in memory. */
size_t iw_replay_state_count(const struct iw_replay *r);

/*
 * IW_OK, or the first error the replay met and could not report otherwise
 * (IW_E_NOMEM copying an alert or keeping a point): the results are then
 * incomplete and must not be trusted.
 */
int iw_replay_status(const struct iw_replay *r);

void iw_replay_stats(const struct iw_replay *r, struct iw_rules_stats *out);

/* ---- helpers shared by the commands ------------------------------------- */

/*
 * Split "<source>/<site>/<device>/<metric>" into s->source, site, device and
 * metric, which point into buf (len bytes; the name is copied there).
 * IW_E_INVAL unless there are exactly four non-empty levels.
 */
IW_NODISCARD int iw_replay_split(const char *series, char *buf, size_t len, struct iw_rsample *s);

/*
 * Split "<source>/<site>/<device>", a message of the device with no sample
 * (only labels, or only a flag): s->metric is "" and s->alive is set, as the
 * daemon hands such a message to the rules. IW_E_INVAL unless there are
 * exactly three non-empty levels.
 */
IW_NODISCARD int iw_replay_split_device(const char *series, char *buf, size_t len,
                                        struct iw_rsample *s);

/* Is `source` declared in cfg with format: event? */
bool iw_replay_is_event_source(const struct iw_config *cfg, const char *source);

/* Series the rules write themselves (water class, aqi...): metric names. */
bool iw_replay_is_derived_metric(const char *metric);

/*
 * Could a running rule read this stored series? Its select matches the
 * series' device (and its metric, for a 4-level select), and it is not a
 * derived series (the daemon never feeds those to its rules).
 */
bool iw_replay_wants(const struct iw_replay *r, const char *series);

#endif /* ISLEWATCH_REPLAY_H */
