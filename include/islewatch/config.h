/*
 * The configuration file (SPEC §3) as loaded: one immutable struct per load.
 * iw_config_load() parses YAML with libyaml, checks every key against the
 * schema and fills this struct; any error is a "FILE:LINE:COLUMN: error: ..."
 * line in the diag list and the result is NULL. Reload builds a new struct
 * and swaps it; the old one is freed once no reader holds it.
 *
 * All strings are owned by the struct (freed by iw_config_free). Durations are
 * milliseconds. "has_x" flags tell an explicit value from an absent one.
 */
#ifndef ISLEWATCH_CONFIG_H
#define ISLEWATCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"
#include "islewatch/err.h"

enum iw_severity {
    IW_SEV_INFO = 0,
    IW_SEV_WARNING = 1,
    IW_SEV_MAJOR = 2,
    IW_SEV_CRITICAL = 3,
};
#define IW_SEV_COUNT 4
const char *iw_severity_name(enum iw_severity s);     /* "info" ... "critical" */
int iw_severity_parse(const char *s);                 /* -1 when unknown */

/* ---- broker ------------------------------------------------------------ */
struct iw_broker_cfg {
    char   *url;              /* "mqtt://127.0.0.1:1883" (default), mqtts://, tcp://, ssl:// */
    char   *client_id;        /* default "islewatchd" */
    char   *username;         /* NULL: none */
    char   *password_file;    /* NULL: none; first line is the password */
    char   *tls_ca_file;      /* tls: { ca_file, cert_file, key_file }; NULL when absent */
    char   *tls_cert_file;
    char   *tls_key_file;
    int64_t keepalive_ms;     /* default 30s */
    bool    clean_session;    /* default false */
    int     connections;      /* default 1, 1..64 */
    char   *share_group;      /* default "islewatch" */
    int64_t reconnect_min_ms; /* reconnect_min, default 1s */
    int64_t reconnect_max_ms; /* reconnect_max, default 60s */
    int     protocol;         /* enum iw_mqtt_protocol, default IW_MQTT_311 */
};

/* broker.protocol: the MQTT version islewatchd speaks to the broker. */
enum iw_mqtt_protocol { IW_MQTT_311 = 0, IW_MQTT_5 = 1 };

/* ---- storage ----------------------------------------------------------- */
struct iw_storage_cfg {
    char   *path;              /* default "./data" */
    int64_t retention_raw_ms;  /* retention.raw, default 90d */
    int64_t retention_1m_ms;   /* retention.1m, default 1y */
    int64_t retention_1h_ms;   /* retention.1h, default 10y */
    int     shards;            /* shards: worker threads, default 2, 1..64 */
    size_t  queue_size;        /* queue_size: slots per shard queue, power of two, default 65536 */
    bool    sync_writes;       /* sync_writes: fsync the WAL per batch, default false */
    int64_t slow_write_ms;     /* test_slow_write: test-only delay per write batch, default 0 */
    size_t  max_series;        /* test_max_series: test-only dictionary size; 0: the store's default */
};

/* ---- ingest limits (top level keys) ------------------------------------ */
struct iw_ingest_cfg {
    size_t  max_payload;        /* max_payload: bytes, default 65536; accepts "64KiB" */
    int64_t max_future_skew_ms; /* max_future_skew, default 5m */
    char   *rejected_topic;     /* rejected_topic, NULL: not republished */
};

/* ---- http -------------------------------------------------------------- */
struct iw_http_cfg {
    char *listen;               /* default "127.0.0.1:8080"; "" or "off" disables */
    char *token_file;           /* NULL: state changes always refused (401) */
    size_t answer_budget;       /* test_answer_budget: test-only; 0: IW_HTTP_ANSWER_BUDGET */
};

/* ---- sources ------------------------------------------------------------ */
enum iw_source_format { IW_FMT_JSON = 0, IW_FMT_EVENT = 1 };
#define IW_MAX_SOURCES 64                 /* one subscription each, in one SUBSCRIBE */

struct iw_source_cfg {
    char *name;                 /* "water" */
    char *topic;                /* "sensors/water/{site}/{device}" ({site},{device} required) */
    enum iw_source_format format;
    int   qos;                  /* 0, 1 or 2; default 1 */
    char *ts_field;             /* default "ts" */
    size_t line, column;        /* position of the entry, for later diagnostics */
};

/* ---- alerts -------------------------------------------------------------- */
struct iw_alerts_cfg {
    char   *topic;              /* default "alerts/{severity}/{rule}/{site}/{device}" */
    char   *active_topic;       /* default "alerts/active/{rule}/{site}/{device}" */
    int     qos;                /* default 1 */
    int64_t live_window_ms;     /* default 15m */
    size_t  outbox_max;         /* outbox_max: alerts kept while the broker is down, default 100000 */
};

/* ---- key/value pairs (labels, match) --------------------------------------- */
struct iw_kv {
    char *key;
    char *value;
};

/* ---- silences ------------------------------------------------------------ */
struct iw_silence_cfg {
    struct iw_kv *match;        /* keys: rule, site, device, source, severity, metric; values are globs */
    size_t        n_match;
    int64_t       from_ms;      /* INT64_MIN when absent */
    int64_t       to_ms;        /* INT64_MAX when absent */
    char         *reason;
};

/* ---- device inventory --------------------------------------------------- */
enum iw_water_body { IW_BODY_RIVER = 0, IW_BODY_LAKE = 1 };   /* lake: 湖、库 (lakes, reservoirs) */

struct iw_device_cfg {
    char  *source, *site, *device;
    char  *name;                /* display name, may be NULL */
    enum iw_water_body body;
    int    target;              /* 1..5 (I..V), 0: none */
    bool   has_pos;
    double lat, lon;
    unsigned pollutants;        /* 1 << iw_aqi_pollutant of the analysers an air station has
                                 * (HJ 633's "/" for the others); 0: not declared */
};

/* ---- rules ------------------------------------------------------------- */
enum iw_rule_kind {
    IW_RULE_THRESHOLD = 0,
    IW_RULE_RATE,
    IW_RULE_ABSENCE,
    IW_RULE_FLAG,
    IW_RULE_EVENT,
    IW_RULE_WATER_QUALITY,
    IW_RULE_AIR_QUALITY,
};
const char *iw_rule_kind_name(enum iw_rule_kind k);

enum iw_window_agg { IW_AGG_NONE = 0, IW_AGG_AVG, IW_AGG_MIN, IW_AGG_MAX, IW_AGG_LAST };
enum iw_aqi_standard { IW_AQI_HJ633_2026 = 0, IW_AQI_HJ633_2012 = 1 };
enum iw_aqi_mode { IW_AQI_HOURLY = 0, IW_AQI_DAILY = 1 };

/*
 * Everything a per-site override may change. The rule's own values are in
 * iw_rule.p; each entry of iw_rule.sites is a full copy with that site's
 * overrides applied, so evaluation never merges at run time.
 */
struct iw_rule_params {
    enum iw_severity severity;          /* scalar severity (default warning) */
    int64_t repeat_ms;                  /* 0: never repeat */
    /* threshold */
    bool    has_above, has_below;
    double  above, below;
    bool    has_clear_below, has_clear_above;
    double  clear_below, clear_above;   /* hysteresis; default = the threshold */
    int64_t for_ms, clear_for_ms;       /* also flag's for: */
    enum iw_window_agg window_agg;      /* IW_AGG_NONE: raw samples */
    int64_t window_ms;                  /* window.over (threshold), window (water_quality, default 4h) */
    /* rate */
    bool    has_rise, has_fall;
    double  rise, fall;                 /* positive magnitudes per per_ms */
    int64_t per_ms;                     /* default 1m */
    /* absence */
    int64_t after_ms;
    /* flag */
    uint32_t flags;                     /* bit ('A'..'Z' - 'A'); e.g. D and B */
    /* event */
    struct iw_kv *match;                /* e.g. {type: tamper}; values are globs */
    size_t  n_match;
    int64_t auto_resolve_ms;            /* 0: only a stop resolves */
    /* water_quality */
    int     target;                     /* 1..5; 0: none given (see iw_water_target) */
    bool    site_target;                /* a sites: override names target itself */
    enum iw_water_body body;            /* default river; inventory overrides */
    bool    has_body;
    enum iw_severity sev_below_target;  /* default major */
    enum iw_severity sev_worse_than_v;  /* default critical */
    /* air_quality */
    enum iw_aqi_standard standard;      /* default HJ633-2026 */
    enum iw_aqi_mode mode;              /* default hourly */
    int     min_level;                  /* 1..6, default 3 */
    int     clear_level;                /* default min_level */
    enum iw_severity sev_by_level[7];   /* index 1..6; default info,info,warning,major,critical,critical */
    int     tz_offset_min;              /* timezone: default Asia/Shanghai = +480 */
    int64_t close_after_ms;             /* default 5m */
};

struct iw_rule_site {
    char *site;
    struct iw_rule_params p;
    char  cond_hash[17];        /* the condition of this site's instances: the rule's
                                 * cond_hash_site and this override (severity and
                                 * repeat left out) */
};

struct iw_rule {
    char  *name;
    enum iw_rule_kind kind;
    char  *select;              /* glob over <source>/<site>/<device>[/<metric>]; '*' = one level */
    char  *message;             /* plain template or NULL */
    char  *message_zh;          /* {zh: ..., en: ...} form; NULL when absent */
    char  *message_en;
    struct iw_kv *labels;
    size_t n_labels;
    struct iw_rule_params p;
    struct iw_rule_site *sites;
    size_t n_sites;
    char   hash[17];            /* hex FNV-1a 64 of the rule's YAML text (canonical form), for rule_hash */
    char   cond_hash[17];       /* the same without `message`, `labels` and `severity`: a
                                 * reload that changes only those keeps the rule's alert state */
    char   cond_hash_v1[17];    /* without `message` and `labels` only: what rule state
                                 * records of earlier versions hold ("ch") */
    char   cond_hash_site[17];  /* cond_hash without `sites` and `repeat`: the condition
                                 * of the sites without an override; "" when not computed */
    size_t line, column;
};

/* ---- the whole file ------------------------------------------------------ */
struct iw_config {
    char *file;                 /* path it was loaded from */
    char *log_level;            /* log_level: error|warn|info|debug, default info */
    struct iw_broker_cfg  broker;
    struct iw_storage_cfg storage;
    struct iw_ingest_cfg  ingest;
    struct iw_http_cfg    http;
    struct iw_alerts_cfg  alerts;
    struct iw_source_cfg *sources;
    size_t n_sources;
    struct iw_silence_cfg *silences;
    size_t n_silences;
    struct iw_device_cfg *devices;   /* devices: and devices_file: merged */
    size_t n_devices;
    struct iw_rule *rules;
    size_t n_rules;
};

/*
 * " (did you mean \"x\"?)" when one of names (NULL-terminated) is a likely
 * typo of word (the config's rule: one edit for words of up to 3 letters, two
 * otherwise, never more than half the name; a transposition is one), else "".
 * Written into buf (len bytes), which is returned.
 */
const char *iw_did_you_mean(const char *word, const char *const *names, char *buf, size_t len);

/* http.listen "127.0.0.1:8080", "[::1]:8080", "localhost:8080" -> host
 * ("::1" without brackets), port digits. False when not of that shape. */
bool iw_listen_split(const char *s, char *host, size_t hlen, char *port, size_t plen);

/*
 * Load and validate FILE. On IW_OK *out is owned by the caller (iw_config_free).
 * On IW_E_CONFIG *out is NULL and diag holds every error, one line each,
 * "FILE:LINE:COLUMN: error: MESSAGE" with 1-based positions of the offending
 * node. IW_E_IO when the file cannot be read (diag says why and what to do).
 */
IW_NODISCARD int iw_config_load(const char *file, struct iw_config **out, struct iw_diag *diag);
/* Same, from a string; `name` is used as FILE in diagnostics. */
IW_NODISCARD int iw_config_load_string(const char *name, const char *text, size_t len,
                                       struct iw_config **out, struct iw_diag *diag);
void iw_config_free(struct iw_config *cfg);
/*
 * The bearer token in http.token_file: its first line without trailing
 * whitespace, 1 to IW_TOKEN_MAX bytes. On failure *out is NULL and why says
 * what is wrong with PATH and what to do (without the key's name): the
 * daemon and `islewatch check` refuse the same files.
 */
#define IW_TOKEN_MAX 4096
IW_NODISCARD int iw_config_read_token(const char *path, char **out, char *why, size_t wlen);
/*
 * Whether loading also checks that the files the daemon reads can be read
 * (broker.password_file, broker.tls.*_file, http.token_file): on in
 * islewatchd and `islewatch check`, off by default, so that the commands
 * that only take settings from a config (tail, ack, report --config) work
 * for a user who cannot read the daemon's secrets. Set it before any thread
 * loads a config.
 */
void iw_config_check_files(bool on);

/* Rule parameters for a site: the site override when there is one, else r->p. */
const struct iw_rule_params *iw_rule_params_for(const struct iw_rule *r, const char *site);
/*
 * The condition hash of rule r's instances at `site`: what a reload or a
 * restart compares to keep their alerts, so that an edit of one site's
 * override leaves the other sites' alerts alone. r->cond_hash when the
 * per-site hashes were not computed.
 */
const char *iw_rule_cond_for(const struct iw_rule *r, const char *site);

/*
 * The water class a device must meet under a water_quality rule's params p
 * (from iw_rule_params_for) and its inventory entry d (may be NULL): a
 * target the rule's sites: override names, else the inventory's, else the
 * rule's own, else III. The rule's own target is its default for stations
 * the inventory gives none; a per-site override is an explicit decision.
 */
int iw_water_target(const struct iw_rule_params *p, const struct iw_device_cfg *d);

#endif /* ISLEWATCH_CONFIG_H */
