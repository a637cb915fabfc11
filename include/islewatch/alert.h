/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alert — the alert object of SPEC §5: its C form, its JSON payload, its MQTT
 * topics and silence matching.
 *
 * The rule engine (islewatch/rules.h) fills a struct iw_alert whose strings are
 * BORROWED for the duration of its emit callback; whoever keeps an alert past
 * that call copies it with iw_alert_dup(). The JSON form is fixed by
 * config/alert.schema.json (JSON Schema draft 2020-12); iw_alert_to_json()
 * produces exactly that shape and iw_alert_from_json() reads it back (alert
 * history, `islewatch alerts`).
 *
 * Decisions where SPEC §5 is silent:
 * - "metric", "value", "threshold" and "unit" are null when the kind has none
 *   (absence has no metric; an event has a metric, the event type, but no
 *   value; a metric without a known unit has unit null).
 * - "message_zh" is present only when the rule's message has a zh form;
 *   "message" is then the en text.
 * - "silenced": true is present only on alerts a silence matched (recorded,
 *   not published). Those take no seq of their own (seq counts published
 *   messages): their "seq" is the seq of the last message published before
 *   them (0 before the first). "ack" is present only once an operator
 *   acknowledged.
 * - "ts" is the time of the transition: the sample time of the sample that
 *   caused it, or the wall-clock deadline for wall-clock transitions (absence,
 *   auto_resolve, repeat, an hour closed by close_after).
 * No function here keeps state; all are thread-safe.
 */
#ifndef ISLEWATCH_ALERT_H
#define ISLEWATCH_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"
#include "islewatch/config.h"
#include "islewatch/err.h"

enum iw_alert_status { IW_ALERT_FIRING = 0, IW_ALERT_RESOLVED = 1 };

/* Why this message exists. Not in the JSON (status tells firing/resolved);
 * useful to the publisher's counters and to `islewatch test`. */
enum iw_alert_reason {
    IW_ALERT_FIRE = 0,        /* pending -> firing: the first message of an episode */
    IW_ALERT_ESCALATE = 1,    /* severity changed while firing */
    IW_ALERT_REPEAT = 2,      /* still firing after `repeat:` */
    IW_ALERT_RESOLVE = 3,     /* firing -> resolved: the last message of an episode */
};

struct iw_alert {
    char     id[17];          /* 16 lower-case hex digits, stable for one episode */
    uint64_t seq;             /* 0 from the engine; the publisher assigns it */
    enum iw_alert_status status;
    enum iw_alert_reason reason;
    enum iw_rule_kind kind;
    enum iw_severity severity;
    const char *rule;         /* rule name */
    const char *source, *site, *device;
    const char *metric;       /* NULL -> JSON null */
    bool     has_value;
    double   value;           /* only when has_value (and finite) */
    bool     has_threshold;
    double   threshold;
    const char *unit;         /* NULL -> JSON null */
    int64_t  started_at;      /* ms: start of the condition (first breaching sample) */
    int64_t  ts;              /* ms: time of this transition */
    const char *message;      /* en or plain text; never NULL in emitted alerts */
    const char *message_zh;   /* NULL: omitted */
    bool     late;            /* caused by a sample older than alerts.live_window */
    bool     silenced;        /* a silence matched: record, do not publish */
    const char *rule_hash;    /* iw_rule.hash */
    const struct iw_kv *labels;
    size_t   n_labels;
    const char *details;      /* a JSON object's text; NULL -> {} */
    /* Acknowledgement (SPEC §4); the engine never sets it. */
    bool     acked;
    int64_t  ack_ts;
    const char *ack_by;       /* may be NULL */
    const char *ack_comment;  /* may be NULL */
    /* The rule's `repeat:` for this instance (0: none); not serialised. The
     * publisher holds back a reminder that would follow the episode's last
     * published message sooner than this. */
    int64_t  repeat_ms;
    /* Wall ms at which the engine decided this message (a reminder: the time
     * it was due on the rule's schedule), 0 when not known (re-read from the
     * store); not serialised. The publisher measures `repeat` with it, on the
     * engine's schedule rather than from when a message happened to go out. */
    int64_t  decided_at;
};

/*
 * The alert as one line of UTF-8 JSON (SPEC §5, config/alert.schema.json).
 * On IW_OK *out is OWNED by the caller (free()) and *out_len is its strlen.
 * IW_E_INVAL when a required string is NULL or details is not a JSON object;
 * IW_E_NOMEM.
 */
IW_NODISCARD int iw_alert_to_json(const struct iw_alert *a, char **out, size_t *out_len);

/*
 * Parse an alert JSON (as produced above). On IW_OK *out is OWNED by the
 * caller (iw_alert_free); every string of it is owned by it. IW_E_INVAL with
 * diag saying which member is missing or of the wrong type.
 */
IW_NODISCARD int iw_alert_from_json(const char *json, size_t len, struct iw_alert **out,
                                    struct iw_diag *diag);

/* Deep copy: *out OWNED by the caller (iw_alert_free). IW_OK or IW_E_NOMEM. */
IW_NODISCARD int iw_alert_dup(const struct iw_alert *a, struct iw_alert **out);
/* Frees an alert made by iw_alert_dup or iw_alert_from_json. Accepts NULL. */
void iw_alert_free(struct iw_alert *a);

/*
 * Expand a topic template (alerts.topic, alerts.active_topic) with
 * {severity} {rule} {site} {device} {source} {metric} {status} {kind}.
 * Each substituted value stays one topic level: '/', '+', '#' in it become
 * '_', an empty or absent value (metric of an absence alert) becomes '-'.
 * Returns IW_OK, IW_E_INVAL for an unknown {name} or an unclosed '{',
 * IW_E_FULL when buf (len bytes) is too small.
 */
IW_NODISCARD int iw_alert_topic(const char *tmpl, const struct iw_alert *a, char *buf, size_t len);

/*
 * Does the silence match the alert at wall-clock time now_ms? Every match key
 * (rule, site, device, source, severity, metric, kind, and any label name)
 * must glob-match (iw_glob_match) the alert's value; a key the alert does not have
 * matches as the empty string. from_ms <= now_ms < to_ms.
 */
bool iw_alert_silence_matches(const struct iw_silence_cfg *s, const struct iw_alert *a,
                              int64_t now_ms);

/* "firing" / "resolved". */
const char *iw_alert_status_name(enum iw_alert_status s);

/* Unit of a metric the standard kinds know ("mg/L", "μg/m³", "个/L"...), else NULL. */
const char *iw_metric_unit(const char *metric);
/* Display name of such a metric ("NH3-N", "PM2.5", "CODMn"), else the metric itself. */
const char *iw_metric_display(const char *metric);

#endif /* ISLEWATCH_ALERT_H */
