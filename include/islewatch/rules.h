/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules — the rule engine of SPEC §4: one state machine per alert instance,
 * fed with samples (sample time) and ticks (wall clock), talking to the rest of
 * the daemon only through the callbacks of struct iw_rules_env. It knows
 * nothing of RocksDB or MQTT.
 *
 * THREADS. An engine is single-threaded: one engine per shard thread, and
 * every call on it (and every env callback it makes) happens on that thread.
 * The integrator routes all samples of one DEVICE (source, site, device) to
 * the same shard, so multi-parameter rules (water_quality, air_quality) and
 * absence see the whole device without locks. Every shard gets the whole
 * config; env.owns_device tells a shard which inventory devices and which
 * restored state records are its own.
 *
 * OWNERSHIP. cfg is BORROWED: it must stay valid until iw_rules_engine_free()
 * or until a later iw_rules_engine_reload() with another config returned
 * (the old one may be freed after that). Samples, keys and values passed in
 * are borrowed for the call. Alerts passed to env.emit are borrowed for the
 * call (iw_alert_dup() to keep one).
 *
 * INSTANCES. An instance is (rule, source, site, device[, metric]): the metric
 * level is part of it for threshold and rate (a 3-level select matches every
 * metric of the device: one instance per metric), for flag with a 4-level
 * select, and for event (metric = the event type); absence, water_quality,
 * air_quality and flag with a 3-level select have one instance per device.
 * (SPEC names the instance without the source; it is included so that two
 * sources with the same site and device names never share state.)
 *
 * SELECT. <source>/<site>/<device>[/<metric>], each level a glob
 * (iw_glob_match: '*' any run inside the level, '?' one character). A select
 * with another number of levels matches nothing.
 *
 * LIFECYCLE. inactive -> pending -> firing -> resolved (= inactive again).
 * emit() is called on firing (reason FIRE), on a severity change while
 * firing (ESCALATE: water below_target <-> worse_than_v, air level changes
 * while the level is still >= min_level), every `repeat` of wall clock while
 * firing (REPEAT), and on resolve (RESOLVE). Pending never emits.
 * `id` = 16 hex digits of FNV-1a 64 over (rule name, instance key,
 * started_at); `started_at` = the time the condition began (the first
 * breaching sample; for absence the last message, or the engine start for an
 * inventory device never seen).
 *
 * TIME. Conditions over samples use SAMPLE time: `for`, `clear_for`, rate,
 * windows. Wall-clock conditions (absence `after`, event `auto_resolve`,
 * air `close_after`, `repeat`) run on iw_rules_tick(now_ms) through a min-heap
 * of deadlines: a tick costs O(expired deadlines · log n), nothing per idle
 * instance, and a sample never touches the heap unless it brings a deadline
 * forward.
 *
 * SEMANTICS decided here (SPEC is silent):
 * - Flagged samples (flag not 0 and not 'N') feed only the flag kind and
 *   absence (a flagged message is still a message).
 * - threshold: `above: X` breaches when value > X, `below: X` when value < X
 *   (strict: a value exactly at the threshold does not breach). Clear (for an
 *   above rule) when value <= clear_below (default X), (for a below rule)
 *   value >= clear_above (default X): inclusive, so without hysteresis clear
 *   is exactly "not breaching". Both above and below may be set (a band).
 *   Pending starts at the first breaching sample; the alert fires at the
 *   first breaching sample with ts - pending_since >= for (for 0: at once);
 *   a non-breaching sample while pending cancels it. While firing, a sample
 *   that clears starts clear_for; it resolves at the first clearing sample
 *   with ts - clear_since >= clear_for; a sample in the hysteresis band (not
 *   clearing) restarts clear_for. With window {agg, over} the compared value
 *   is the aggregate (avg/min/max/last) of the unflagged samples in
 *   (ts - over, ts].
 * - rate: (v - v_prev) / (ts - ts_prev) * per between consecutive unflagged
 *   samples; fires when > rise or < -fall; resolves when back inside
 *   (inclusive bounds). `for` applies as for threshold (the loader takes no
 *   clear_for for rate: it resolves at the first rate back inside).
 * - Out-of-order samples: a sample older than the instance's last evaluated
 *   sample time never drives the instance's (live) state machine: later
 *   samples already decided the present. threshold, rate and flag evaluate
 *   it on its own time at the end of the message (server/rule_late.c): the
 *   stored points around it are replayed with and without the message's late
 *   samples, and an episode that only the late data make (overlapping no
 *   episode the live timeline had, nor the one it is firing for) is published,
 *   its firing and resolve alike, in sample time. Such an episode still open
 *   at the instance's last evaluated time resolves there when the instance is
 *   inactive, becomes the instance's own episode when it is pending (the late
 *   data met `for:`), and is not published when the instance is firing; a
 *   late sample inside the episode the instance is firing for publishes
 *   nothing. A late pending start only ever moves the instance's pending start
 *   back. The replay sees what is stored when the message ends (a backlog
 *   spread over several messages resolves at the first clearing point stored
 *   so far) and rebuilds the state before the oldest late sample from stored
 *   points: twice for + clear_for + window back (at least 3 h with hysteresis
 *   and for flag rules), widened until it holds two points; it is not
 *   persisted. A redelivered old sample that
 *   alone made the instance's latest episode does not publish it again. A
 *   windowed threshold also adds the sample to its live window when it falls
 *   inside it; water_quality adds it to its window; air_quality ignores a
 *   sample of an hour (or day) already closed; absence and event ignore it. A
 *   sample with the same time as the last one (redelivery) is evaluated
 *   again, which changes nothing when its value is the same.
 * - late: the alert is `late` when the sample that caused the transition is
 *   older than alerts.live_window at receipt (recv_ms - ts > live_window).
 *   In time order that is each alert's own sample: a recent sample that
 *   resolves an episode which fired late resolves it live. An episode that
 *   out-of-order samples make (rule_late.c) is late throughout, its resolve
 *   too. Wall-clock transitions are never late.
 * - absence: a device is known once any sample of it matching the select
 *   (first three levels; with a 4-level select that metric only) arrives,
 *   when it is in the inventory, or when the store holds a series of it
 *   matching the select (env.each_series: it reported before the rule took
 *   effect, e.g. a rule added by a reload or while the daemon was stopped).
 *   With a 3-level select, a message of the device that carries no sample
 *   (only labels: iw_rsample.alive) is a message from it too: it counts as
 *   such a sample here, and nowhere else.
 *   It fires when no such sample arrived for
 *   `after` of wall clock (receipt time); the alert ts is last_seen + after.
 *   It resolves on the next such sample, ts = its receipt time (the device is
 *   back now, even if its first message carries buffered data). A known
 *   device the rule has not seen report counts from when the rule took effect
 *   for it (the engine start, or the reload that added the rule or the
 *   inventory entry), not from its last stored sample: adding a rule never
 *   raises a burst of alerts at once. After a restart every
 *   known device gets a full `after` from the engine start before a new
 *   absence is raised (the broker's queue is still being drained); an
 *   absence already firing stays firing.
 * - flag: flag letters in the rule's `flags` count; 'N' or no flag (normal
 *   data) clears the metric; any other flag (M, C, T, ...) is ignored: it
 *   neither flags nor clears the metric, nor moves for/clear_for. The
 *   instance's condition is "some metric is flagged"; `for` in sample time
 *   as for threshold (the loader takes no clear_for for flag: normal data
 *   resolves at once). A device-level episode's alerts all name
 *   the metric it began on (details list the flags now).
 * - event: only event samples (is_event). `match:` keys type, site, device,
 *   source (globs; check refuses any other key). start (value != 0) fires at
 *   once; a start while firing extends auto_resolve; stop (value 0) with ts
 *   >= started_at resolves; auto_resolve (wall clock) resolves at
 *   receipt-of-last-start + auto_resolve.
 * - water_quality: per device, the unflagged samples of each GB 3838
 *   parameter in (t - window, t], t = the device's latest sample time; on
 *   every message the mean of each parameter present, its class, the overall
 *   class (standards.h, 2011 item set). Target: the rule's (site override
 *   included) when set, else the inventory device's, else III. Body: the
 *   rule's when set, else the inventory device's, else river. Fires when the
 *   class is worse than the target (severity worse_than_v for 劣V, else
 *   below_target); resolves when it meets the target. Writes
 *   <source>/<site>/<device>/class (1..6) at t (SPEC's water/<site>/<device>/
 *   class with the default source name; with several water_quality rules on
 *   one device each writes it, the last evaluation wins). The alert's metric is the
 *   deciding parameter with the worst class (ties: largest exceedance), value
 *   its mean, threshold its target-class limit.
 * - air_quality: per device, hourly means of each pollutant (standards.h
 *   iw_avg_hour: >= 45 minutes with data); an hour holding exactly one sample
 *   stamped exactly at its end (a device reporting hourly averages) takes
 *   that sample as its valid hourly value. An hour (and in daily mode a day)
 *   closes on a sample after its end, at the end of a message once every
 *   pollutant the device measures has a sample exactly at the end (part of
 *   the hour: an hourly reporter may send one message per pollutant), or on
 *   the tick once
 *   close_after of wall clock has passed since its end AND since the last
 *   sample of it was received (so a backlog being uploaded after an outage
 *   is not cut short). A sample of an hour already closed is ignored here
 *   (it is stored; reports recompute from storage).
 *   mode hourly: the real-time AQI of `standard` at each closed hour
 *   (2012: with 8 h O3 and 24 h moving PM); mode daily: the daily AQI of the
 *   natural day in tz_offset_min. A pollutant the device has never
 *   reported (any sample, flagged too; remembered across restarts) is one
 *   the station does not measure and is not missing data; a measured one
 *   without a valid average for the period is. An AQI from no valid
 *   average, or one HJ 633-2026 §5.3.1 reports as NA (missing data and
 *   AQI <= 100), neither raises nor clears. Writes
 *   <source>/<site>/<device>/aqi and .../aqi_level with ts = the end of
 *   the period (mode daily, when an hourly air rule covers the device too:
 *   aqi_daily and aqi_daily_level, so that the two never share a point at
 *   midnight). Fires at level >=
 *   min_level with severity sev_by_level[level], escalates as the level
 *   changes, resolves when level < clear_level (and < min_level). The
 *   alert's metric is "aqi",
 *   value the AQI, threshold the lowest AQI of min_level.
 * - Silences: an alert that cfg->silences (at wall-clock time: receipt time
 *   of the causing sample, or the tick time) or env.is_silenced matches is
 *   still emitted, with silenced = true.
 * - Message: the rule's template (plain, or en with zh in message_zh), else
 *   a default per kind (islewatch/template.h lists the variables).
 *
 * PERSISTENCE. Every change that must survive a restart calls
 * env.state_put(key, value) (a JSON object), and a return to inactive
 * env.state_del(key). The key is "<rule>/<source>/<site>/<device>[/<metric>]"
 * with '%' and '/' inside a component written %25 and %2F. Windows are not
 * persisted: after a restart (or for a new instance) they are refilled from
 * env.read_points at the instance's first sample. Absence instances write
 * their last_seen at most every after/2. What an alert shows must survive
 * too: threshold records carry the compared value and its time and (raw
 * threshold with `for:`) the run's last 32 samples; rate records the pair
 * of samples the rate came from; flag records the current flags. Pending or
 * firing threshold and rate records are rewritten at least every 10 minutes
 * of sample time; at restore they catch up with env.read_points up to the
 * engine's start (a windowed threshold refills its window then), which also
 * serves records written without these members. A value still unknown is
 * sent as null and no message names a number for it.
 */
#ifndef ISLEWATCH_RULES_H
#define ISLEWATCH_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/alert.h"
#include "islewatch/compiler.h"
#include "islewatch/config.h"

/* One decoded sample, already stored durably. All pointers borrowed for the call. */
struct iw_rsample {
    const char *source, *site, *device;
    const char *metric;     /* for event sources: the event type */
    int64_t ts;             /* sample time, ms */
    double  value;          /* event sources: 1 = start, 0 = stop */
    char    flag;           /* 0 or 'N' = normal; else the HJ 212 flag letter */
    int64_t recv_ms;        /* wall clock at receipt */
    bool    is_event;
    bool    retained;       /* a retained copy the broker sent at a SUBSCRIBE (restart,
                             * reconnect, reload): an old message, not the device reporting */
    bool    alive;          /* no sample: a message of the device that stored none (only
                             * labels, or only a flag); metric "", value unused, flag the
                             * message's ('N' kept). Only absence and flag rules with a
                             * 3-level select take it (a sign of life; a device's flag) */
    uint32_t series_id;     /* the store's series id + 1, a cache key for the engine;
                             * 0 = none (the engine then looks the names up) */
};

/* Point callback of read_points: return 0 to continue, non-zero to stop. */
typedef int (*iw_rules_point_cb)(void *cbctx, int64_t ts, double value, char flag);

struct iw_rules_env {
    void *ctx;              /* passed to every callback */
    /* Required. Every alert message, in order. The engine fills all but seq. */
    void (*emit)(void *ctx, const struct iw_alert *a);
    /* Optional (NULL: nothing survives a restart). Return IW_OK or an error;
     * an error is counted (stats.state_errors) and logged, evaluation goes on. */
    int (*state_put)(void *ctx, const char *key, const void *val, size_t len);
    int (*state_del)(void *ctx, const char *key);
    /* Optional. Derived series (class, aqi); valid false marks an invalid average. */
    int (*write_point)(void *ctx, const char *series, int64_t ts, double value, bool valid);
    /* Optional. Points of a stored series with from <= ts <= to, in time order. */
    int (*read_points)(void *ctx, const char *series, int64_t from, int64_t to,
                       iw_rules_point_cb cb, void *cbctx);
    /* Optional (NULL: this engine owns every device). */
    bool (*owns_device)(void *ctx, const char *source, const char *site, const char *device);
    /* Optional: silences created at run time (HTTP API); cfg->silences are checked too. */
    bool (*is_silenced)(void *ctx, const struct iw_alert *a, int64_t now_ms);
    /* Optional. Every series the store holds (its series dictionary), with the
     * four levels of its name; cb returns non-zero to stop. Called when rules
     * take effect (engine start, reload): the devices with stored series are
     * known to the absence rules (see SEMANTICS). */
    int (*each_series)(void *ctx, int (*cb)(void *cbctx, const char *source, const char *site,
                                            const char *device, const char *metric),
                       void *cbctx);
};

struct iw_rules_engine;

struct iw_rules_stats {
    uint64_t samples;           /* samples received */
    uint64_t evaluations;       /* (sample, instance) evaluations */
    uint64_t out_of_order;      /* samples older than an instance's last evaluated one */
    uint64_t emitted;           /* alerts passed to emit */
    uint64_t state_errors;      /* state_put/state_del/write_point failures */
    uint64_t restored;          /* state records restored */
    uint64_t instances;         /* live instances */
    uint64_t timers;            /* deadlines in the heap */
};

/*
 * Build an engine for cfg (borrowed, see above) at wall-clock time now_ms
 * (the "engine start" of absence). env is copied. The absence instances of
 * owned devices in the inventory or in the store (env.each_series) are
 * created here. Then call
 * iw_rules_engine_restore() for every stored state record before the first
 * sample. On IW_OK *out is OWNED by the caller (iw_rules_engine_free).
 * IW_E_INVAL (env.emit NULL), IW_E_NOMEM.
 */
IW_NODISCARD int iw_rules_engine_new(const struct iw_config *cfg, const struct iw_rules_env *env,
                                     int64_t now_ms, struct iw_rules_engine **out);
void iw_rules_engine_free(struct iw_rules_engine *e);     /* accepts NULL */

/*
 * Restore one state record (key and value as given to state_put). A record
 * of a device this engine does not own is skipped (IW_OK): the integrator may
 * offer every record to every shard. A record of a rule that no longer exists
 * or whose hash changed is dropped (state_del); if it was firing, a resolved
 * alert is emitted for it. A changed rule of the same kind carries over what
 * only the past can tell: absence, a device it knew (it gets a full `after`
 * from the start); event, an event still going on (a start, no stop), which
 * fires a new episode of the changed rule when it still matches.
 * IW_E_INVAL for a record that does not parse
 * (skipped; the caller may log and delete it), IW_E_NOMEM.
 */
IW_NODISCARD int iw_rules_engine_restore(struct iw_rules_engine *e, const char *key,
                                         const void *val, size_t len);

/*
 * Evaluate the samples of ONE message (all of the same source, site and
 * device): per-sample kinds per sample, water_quality and air_quality once
 * for the message. n may be 0.
 */
void iw_rules_on_samples(struct iw_rules_engine *e, const struct iw_rsample *s, size_t n);
void iw_rules_on_sample(struct iw_rules_engine *e, const struct iw_rsample *s);

/*
 * Late samples (older than what their instance evaluated) are judged at the
 * end of their message against the store, with and without them. With
 * deferral on, that judgement waits for iw_rules_flush_late(), which the
 * daemon calls once its queue is empty: a backlog the store took faster than
 * the rules is then judged whole. Judged per message, each of its messages
 * would be compared with a store already holding the ones after it, which
 * the rules have not seen, and its episode would never be published.
 * Deferred work is judged before a reload, dropped by iw_rules_engine_free().
 * air_quality's late samples wait, besides, until their upload pauses (a
 * few seconds after the last came): iw_rules_tick() judges them then; so do
 * every per-sample kind's with iw_rules_hold_late().
 */
void iw_rules_defer_late(struct iw_rules_engine *e, bool on);
/*
 * all: the per-sample kinds' late samples (threshold, rate, flag, event)
 * wait for their upload's pause too, so a backlog re-sent a record per
 * message is judged whole (off by default: then each message, or each
 * flush, is judged on what the store holds by then). A live sample that
 * may finish a for: or clear_for: run judges them first.
 */
void iw_rules_hold_late(struct iw_rules_engine *e, bool all);
/* Judge the deferred late samples now (air_quality's wait for their pause);
 * false when there were none. */
bool iw_rules_flush_late(struct iw_rules_engine *e);
/* Judge every late sample now, those waiting for their pause too: at a stop,
 * or the end of a replay, nothing more will come. */
void iw_rules_finish_late(struct iw_rules_engine *e);
/* Receipt time of the oldest deferred late sample; INT64_MIN when none. */
int64_t iw_rules_late_since(const struct iw_rules_engine *e);

/*
 * The daemon's link to its devices (the broker) went down (up = false) or
 * came back. While it is down no absence alert fires: the silence is the
 * daemon's, not the devices'. Once it is back every device gets a full
 * `after` from now_ms, as after a start, so a broker restart or a network
 * loss longer than `after` raises no absence storm (SPEC §2). An engine
 * starts with the link up (backtests and rule tests never call this).
 */
void iw_rules_set_link(struct iw_rules_engine *e, bool up, int64_t now_ms);

/* Run every wall-clock deadline <= now_ms, in deadline order. */
void iw_rules_tick(struct iw_rules_engine *e, int64_t now_ms);

/* The earliest pending deadline (when to tick next), INT64_MAX when none. */
int64_t iw_rules_next_deadline(const struct iw_rules_engine *e);

/*
 * Switch to newcfg at wall-clock time now_ms. Rules whose name, kind and hash
 * are unchanged keep every instance and its state (no re-fire, no resolve);
 * instances of removed or changed rules are resolved (a resolved alert for
 * each firing one, ts now_ms) and their state deleted; new rules start empty,
 * except that a changed absence or event rule carries over, as at restore,
 * the devices it knew and the events still going on (fired again at now_ms).
 * Inventory changes add or drop never-seen inventory absence instances; a
 * new absence rule knows the inventory's and the store's devices from now_ms.
 * The old config must stay valid until this returns. IW_OK or IW_E_NOMEM
 * (then the engine keeps running on the old config).
 */
IW_NODISCARD int iw_rules_engine_reload(struct iw_rules_engine *e, const struct iw_config *newcfg,
                                        int64_t now_ms);

void iw_rules_engine_stats(const struct iw_rules_engine *e, struct iw_rules_stats *out);

#endif /* ISLEWATCH_RULES_H */
