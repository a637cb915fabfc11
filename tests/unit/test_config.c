/*
 * Config loader (SPEC §3, §4): the default config, valid fixtures with their
 * values (defaults, durations, per-site overrides), every invalid fixture
 * with its exact diagnostics (tests/data/config/invalid/X.yaml and X.expect),
 * loading from a string, the rule hash, and `islewatch check`.
 * Runs with tests/data as the working directory (CTest sets it).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "islewatch/clock.h"
#include "islewatch/config.h"
#include "islewatch/err.h"
#include "islewatch/standards.h"
#include "islewatch/template.h"

/* `islewatch check` lives in the CLI executable, not in islewatch_core: test it by inclusion. */
#include "../../server/cli/cmd_check.c"

#define S(n) ((int64_t)(n) * 1000)
#define M(n) ((int64_t)(n) * IW_MS_PER_MIN)
#define H(n) ((int64_t)(n) * IW_MS_PER_HOUR)
#define D(n) ((int64_t)(n) * IW_MS_PER_DAY)

/* When run by hand from elsewhere, find tests/data the way CTest would set it. */
static void to_data_dir(void)
{
    const char *src = getenv("IW_SOURCE_DIR");
    char path[4096];

    if (access("config/valid/minimal.yaml", R_OK) == 0 || src == NULL)
        return;
    snprintf(path, sizeof(path), "%s/tests/data", src);
    cr_assert_eq(chdir(path), 0, "cannot chdir to %s", path);
}

TestSuite(config, .init = to_data_dir);

static struct iw_config *load_ok(const char *file)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    int rc = iw_config_load(file, &cfg, &diag);

    cr_assert_eq(rc, IW_OK, "%s should load, got %s; first error: %s", file, iw_strerror(rc),
                 iw_diag_first(&diag));
    cr_assert_not_null(cfg);
    iw_diag_fini(&diag);
    return cfg;
}

static const struct iw_rule *rule_named(const struct iw_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_rules; i++)
        if (strcmp(cfg->rules[i].name, name) == 0)
            return &cfg->rules[i];
    cr_assert_fail("no rule named %s", name);
    return NULL;
}

static const struct iw_source_cfg *source_named(const struct iw_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_sources; i++)
        if (strcmp(cfg->sources[i].name, name) == 0)
            return &cfg->sources[i];
    cr_assert_fail("no source named %s", name);
    return NULL;
}

/* ======================================================================== */
/* The default config and the valid fixtures                                */
/* ======================================================================== */

Test(config, default_config_file_loads_with_the_quickstart_rules)
{
    struct iw_config *cfg = load_ok("../../config/islewatch.yaml");
    const struct iw_rule *r;

    cr_expect_str_eq(cfg->broker.url, "mqtt://127.0.0.1:1883");
    cr_expect_str_eq(cfg->storage.path, "./data");
    cr_expect_str_eq(cfg->http.listen, "127.0.0.1:8080");
    cr_expect_eq(cfg->ingest.max_payload, 65536);
    cr_expect_str_eq(cfg->ingest.rejected_topic, "islewatch/rejected/{source}");
    cr_assert_eq(cfg->n_sources, 4);
    cr_expect_str_eq(source_named(cfg, "water")->topic, "sensors/water/{site}/{device}");
    cr_expect_eq(source_named(cfg, "camera_event")->format, IW_FMT_EVENT);
    cr_expect_eq(source_named(cfg, "air")->qos, 1);

    r = rule_named(cfg, "nh3n-high");
    cr_expect_eq(r->kind, IW_RULE_THRESHOLD);
    cr_expect(r->p.has_above && r->p.above == 1.5 && !r->p.has_below);
    cr_expect_eq(r->p.for_ms, M(5));
    cr_expect(r->p.has_clear_below && r->p.clear_below == 1.2);
    cr_expect_str_eq(r->message_en, "{site}/{device} {summary}");
    r = rule_named(cfg, "do-low");
    cr_expect(r->p.has_below && r->p.below == 3 && r->p.clear_above == 3.5);
    r = rule_named(cfg, "water-class");
    cr_expect_eq(r->kind, IW_RULE_WATER_QUALITY);
    cr_expect_eq(r->p.target, 3);
    cr_expect_eq(r->p.window_ms, H(1));
    r = rule_named(cfg, "air-aqi");
    cr_expect_eq(r->p.standard, IW_AQI_HJ633_2026);
    cr_expect_eq(r->p.mode, IW_AQI_HOURLY);
    cr_expect_eq(r->p.min_level, 3);
    cr_expect_eq(r->p.clear_level, 3);
    cr_expect_eq(r->p.tz_offset_min, 480);
    r = rule_named(cfg, "camera-offline");
    cr_expect_eq(r->kind, IW_RULE_ABSENCE);
    cr_expect_eq(r->p.after_ms, S(90));
    r = rule_named(cfg, "camera-tamper");
    cr_expect_eq(r->p.auto_resolve_ms, M(10));
    cr_assert_eq(r->p.n_match, 1);
    cr_expect_str_eq(r->p.match[0].value, "tamper");
    r = rule_named(cfg, "camera-video-loss");
    cr_expect_str_eq(r->p.match[0].value, "video_loss");
    r = rule_named(cfg, "instrument-fault");
    cr_expect_eq(r->p.flags, (1u << ('D' - 'A')) | (1u << ('B' - 'A')));
    cr_expect_eq(r->p.for_ms, M(2));

    bool c09 = false;
    for (size_t i = 0; i < cfg->n_devices; i++)
        c09 |= strcmp(cfg->devices[i].device, "c09") == 0;
    cr_expect(c09, "the inventory declares camera c09, which never reports");
    cr_expect_eq(cfg->n_silences, 0);
    iw_config_free(cfg);
}

Test(config, empty_file_gets_every_documented_default)
{
    struct iw_config *cfg = load_ok("config/valid/minimal.yaml");

    cr_expect_str_eq(cfg->file, "config/valid/minimal.yaml");
    cr_expect_str_eq(cfg->log_level, "info");
    cr_expect_str_eq(cfg->broker.url, "mqtt://127.0.0.1:1883");
    cr_expect_str_eq(cfg->broker.client_id, "islewatchd");
    cr_expect_null(cfg->broker.username);
    cr_expect_null(cfg->broker.password_file);
    cr_expect_null(cfg->broker.tls_ca_file);
    cr_expect_null(cfg->broker.tls_cert_file);
    cr_expect_null(cfg->broker.tls_key_file);
    cr_expect_eq(cfg->broker.keepalive_ms, S(30));
    cr_expect_eq(cfg->broker.clean_session, false);
    cr_expect_eq(cfg->broker.connections, 1);
    cr_expect_str_eq(cfg->broker.share_group, "islewatch");
    cr_expect_eq(cfg->broker.reconnect_min_ms, S(1));
    cr_expect_eq(cfg->broker.reconnect_max_ms, S(60));
    cr_expect_eq(cfg->broker.protocol, IW_MQTT_311);
    cr_expect_str_eq(cfg->storage.path, "./data");
    cr_expect_eq(cfg->storage.retention_raw_ms, D(90));
    cr_expect_eq(cfg->storage.retention_1m_ms, D(365));
    cr_expect_eq(cfg->storage.retention_1h_ms, D(3650));
    cr_expect_eq(cfg->storage.shards, 2);
    cr_expect_eq(cfg->storage.queue_size, 65536);
    cr_expect_eq(cfg->storage.sync_writes, false);
    cr_expect_eq(cfg->storage.slow_write_ms, 0);
    cr_expect_eq(cfg->ingest.max_payload, 65536);
    cr_expect_eq(cfg->ingest.max_future_skew_ms, M(5));
    cr_expect_null(cfg->ingest.rejected_topic);
    cr_expect_str_eq(cfg->http.listen, "127.0.0.1:8080");
    cr_expect_null(cfg->http.token_file);
    cr_expect_str_eq(cfg->alerts.topic, "alerts/{severity}/{rule}/{site}/{device}");
    cr_expect_str_eq(cfg->alerts.active_topic, "alerts/active/{rule}/{site}/{device}");
    cr_expect_eq(cfg->alerts.qos, 1);
    cr_expect_eq(cfg->alerts.live_window_ms, M(15));
    cr_expect_eq(cfg->alerts.outbox_max, 100000);
    cr_expect_eq(cfg->n_rules, 0);
    cr_expect_eq(cfg->n_devices, 0);
    cr_expect_eq(cfg->n_silences, 0);

    /* SPEC §1's four sources, qos 1, json except camera_event. */
    static const char *const names[] = { "water", "air", "camera", "camera_event" };
    static const char *const topics[] = { "sensors/water/{site}/{device}", "sensors/air/{site}/{device}",
                                          "cameras/{site}/{device}/status",
                                          "cameras/{site}/{device}/event" };
    cr_assert_eq(cfg->n_sources, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_str_eq(cfg->sources[i].name, names[i]);
        cr_expect_str_eq(cfg->sources[i].topic, topics[i]);
        cr_expect_eq(cfg->sources[i].qos, 1);
        cr_expect_str_eq(cfg->sources[i].ts_field, "ts");
        cr_expect_eq(cfg->sources[i].format, i == 3 ? IW_FMT_EVENT : IW_FMT_JSON);
    }
    iw_config_free(cfg);
}

Test(config, full_fixture_values)
{
    struct iw_config *cfg = load_ok("config/valid/full.yaml");
    const struct iw_rule *r;

    cr_expect_str_eq(cfg->log_level, "debug");
    cr_expect_str_eq(cfg->broker.url, "mqtts://broker.example.test:8883");
    cr_expect_str_eq(cfg->broker.username, "ops");
    cr_expect_str_eq(cfg->broker.tls_key_file, "config/valid/secrets/c.key");
    cr_expect_eq(cfg->broker.keepalive_ms, S(45));
    cr_expect_eq(cfg->broker.clean_session, true);
    cr_expect_eq(cfg->broker.connections, 4);
    cr_expect_eq(cfg->broker.reconnect_min_ms, 500);
    cr_expect_eq(cfg->broker.reconnect_max_ms, M(2));
    cr_expect_eq(cfg->broker.protocol, IW_MQTT_5);
    cr_expect_eq(cfg->storage.retention_raw_ms, D(30));
    cr_expect_eq(cfg->storage.retention_1m_ms, D(180));
    cr_expect_eq(cfg->storage.retention_1h_ms, D(5 * 365));
    cr_expect_eq(cfg->storage.queue_size, 1024);
    cr_expect_eq(cfg->storage.slow_write_ms, 50);
    cr_expect_str_eq(cfg->http.listen, "[::1]:9090");
    cr_expect_eq(cfg->alerts.qos, 2);
    cr_expect_eq(cfg->alerts.outbox_max, 500);
    cr_expect_eq(cfg->ingest.max_payload, 1 << 20);
    cr_expect_eq(cfg->ingest.max_future_skew_ms, M(10));

    cr_assert_eq(cfg->n_sources, 2);
    cr_expect_str_eq(cfg->sources[0].ts_field, "time");
    cr_expect_eq(cfg->sources[0].qos, 2);
    cr_expect_eq(cfg->sources[0].line, 36);
    cr_expect_eq(cfg->sources[0].column, 5);
    cr_expect_eq(cfg->sources[1].format, IW_FMT_EVENT);
    cr_expect_eq(cfg->sources[1].qos, 0);

    cr_assert_eq(cfg->n_devices, 2);
    cr_expect_str_eq(cfg->devices[0].name, "东滩 1号站");
    cr_expect_eq(cfg->devices[0].body, IW_BODY_LAKE);
    cr_expect_eq(cfg->devices[0].target, 2);
    cr_expect(cfg->devices[0].has_pos && cfg->devices[0].lat == 31.5 && cfg->devices[0].lon == 121.9);
    cr_expect_not(cfg->devices[1].has_pos);
    cr_expect_eq(cfg->devices[1].target, 0);

    cr_assert_eq(cfg->n_silences, 2);
    int64_t from;
    cr_assert_eq(iw_rfc3339_parse("2026-12-01T00:00:00Z", 20, &from), IW_OK);
    cr_expect_eq(cfg->silences[0].from_ms, from);
    cr_expect_eq(cfg->silences[0].to_ms, from + H(10));
    cr_expect_str_eq(cfg->silences[0].reason, "maintenance");
    cr_assert_eq(cfg->silences[0].n_match, 2);
    cr_expect_str_eq(cfg->silences[0].match[1].key, "rule");
    cr_expect_str_eq(cfg->silences[0].match[1].value, "cam-*");
    cr_expect_eq(cfg->silences[1].from_ms, INT64_MIN);
    cr_expect_eq(cfg->silences[1].to_ms, INT64_MAX);

    r = rule_named(cfg, "nh3n");
    cr_expect_eq(r->p.severity, IW_SEV_MAJOR);
    cr_expect_eq(r->p.repeat_ms, H(1));
    cr_expect_eq(r->p.clear_for_ms, M(2));
    cr_expect_eq(r->p.window_agg, IW_AGG_AVG);
    cr_expect_eq(r->p.window_ms, H(1));
    cr_expect_str_eq(r->message, "{site}/{device} NH3-N {value} {unit} > {threshold} {{literal}");
    cr_assert_eq(r->n_labels, 2);
    cr_expect_str_eq(r->labels[1].key, "pager");
    cr_expect_str_eq(r->labels[1].value, "yes");
    cr_expect_eq(r->line, 51);
    cr_expect_eq(r->column, 5);
    r = rule_named(cfg, "do-low");
    cr_expect_eq(r->p.severity, IW_SEV_WARNING, "severity defaults to warning");
    cr_expect_eq(r->p.clear_above, 3, "clear_above defaults to the threshold");
    cr_expect_eq(r->p.for_ms, 0);
    cr_expect_eq(r->p.window_agg, IW_AGG_NONE);
    r = rule_named(cfg, "temp-jump");
    cr_expect(r->p.has_rise && r->p.rise == 2.5 && !r->p.has_fall);
    cr_expect_eq(r->p.per_ms, M(10));
    r = rule_named(cfg, "faults");
    cr_expect_eq(r->p.flags, (1u << ('D' - 'A')) | (1u << ('B' - 'A')) | (1u << ('T' - 'A')));
    r = rule_named(cfg, "cam-tamper");
    cr_assert_eq(r->p.n_match, 2);
    cr_expect_str_eq(r->p.match[1].key, "device");
    cr_expect_str_eq(r->p.match[1].value, "dock-*");
    cr_expect_null(r->message);
    cr_expect_str_eq(r->message_zh, "{site}/{device} 遮挡 {status}");
    cr_expect_str_eq(r->message_en, "{site}/{device}: {summary}");
    r = rule_named(cfg, "cam-disk");
    cr_expect_eq(r->kind, IW_RULE_EVENT);
    cr_expect_eq(r->p.n_match, 0, "the select names the event type");
    r = rule_named(cfg, "water-class");
    cr_expect_eq(r->p.target, 3, "\"Ⅲ\" is class III");
    cr_expect(r->p.has_body && r->p.body == IW_BODY_LAKE);
    cr_expect_eq(r->p.window_ms, H(1));
    cr_expect_eq(r->p.close_after_ms, M(10));
    cr_expect_eq(r->p.sev_below_target, IW_SEV_WARNING);
    cr_expect_eq(r->p.sev_worse_than_v, IW_SEV_CRITICAL);
    r = rule_named(cfg, "air-aqi");
    cr_expect_eq(r->p.standard, IW_AQI_HJ633_2012);
    cr_expect_eq(r->p.mode, IW_AQI_DAILY);
    cr_expect_eq(r->p.min_level, 4);
    cr_expect_eq(r->p.clear_level, 4);
    cr_expect_eq(r->p.tz_offset_min, 330);
    cr_expect_eq(r->p.close_after_ms, H(1));
    /* {4: major, 6: critical}: 5 takes 4's, 1..3 take the lowest named one. */
    static const enum iw_severity want[7] = { 0, IW_SEV_MAJOR, IW_SEV_MAJOR, IW_SEV_MAJOR,
                                              IW_SEV_MAJOR, IW_SEV_MAJOR, IW_SEV_CRITICAL };
    for (int l = 1; l <= 6; l++)
        cr_expect_eq(r->p.sev_by_level[l], want[l], "level %d", l);
    cr_expect_eq(r->p.severity, IW_SEV_MAJOR);
    for (size_t i = 0; i < cfg->n_rules; i++)
        cr_expect_eq(strspn(cfg->rules[i].hash, "0123456789abcdef"), 16, "hash %s",
                     cfg->rules[i].hash);
    iw_config_free(cfg);
}

Test(config, rule_kind_defaults)
{
    struct iw_config *cfg = load_ok("config/valid/overrides.yaml");
    const struct iw_rule *r = rule_named(cfg, "class");

    cr_expect_eq(r->p.target, 0, "no target: the inventory's, else III");
    cr_expect_not(r->p.has_body);
    cr_expect_eq(r->p.window_ms, H(4));
    cr_expect_eq(r->p.close_after_ms, M(5));
    cr_expect_eq(r->p.sev_below_target, IW_SEV_CRITICAL, "a scalar severity applies to both");
    cr_expect_eq(r->p.sev_worse_than_v, IW_SEV_CRITICAL);
    r = rule_named(cfg, "aqi");
    for (int l = 1; l <= 6; l++)
        cr_expect_eq(r->p.sev_by_level[l], IW_SEV_MAJOR, "a scalar severity applies to level %d", l);
    cr_expect_eq(r->p.standard, IW_AQI_HJ633_2026);
    cr_expect_eq(r->p.min_level, 3);
    cr_expect_eq(r->p.tz_offset_min, 480);
    iw_config_free(cfg);

    cfg = load_ok("config/valid/timezones.yaml");
    static const int offsets[] = { 480, 0, 480, -330, 540, 360, 480 };
    cr_assert_eq(cfg->n_rules, 7);
    for (size_t i = 0; i < 7; i++) {
        cr_expect_eq(cfg->rules[i].p.tz_offset_min, offsets[i], "%s", cfg->rules[i].name);
        cr_expect_eq(cfg->rules[i].p.severity, IW_SEV_WARNING,
                     "default level mapping gives min_level 3 a warning");
        cr_expect_eq(cfg->rules[i].p.sev_by_level[1], IW_SEV_INFO);
        cr_expect_eq(cfg->rules[i].p.sev_by_level[6], IW_SEV_CRITICAL);
    }
    iw_config_free(cfg);
}

Test(config, per_site_overrides)
{
    struct iw_config *cfg = load_ok("config/valid/overrides.yaml");
    const struct iw_rule *r = rule_named(cfg, "nh3n");
    const struct iw_rule_params *p;

    cr_assert_eq(r->n_sites, 2);
    cr_expect_eq(iw_rule_params_for(r, NULL), &r->p);
    cr_expect_eq(iw_rule_params_for(r, "wusong"), &r->p, "a site without override uses the rule's");
    cr_expect_eq(r->p.clear_below, 1.5);
    p = iw_rule_params_for(r, "dongtan");
    cr_expect_eq(p->above, 2.0);
    cr_expect_eq(p->clear_below, 2.0, "the default clear_below follows the overridden threshold");
    cr_expect_eq(p->for_ms, M(5), "inherited");
    p = iw_rule_params_for(r, "hengsha");
    cr_expect_eq(p->above, 1.5);
    cr_expect_eq(p->clear_below, 1.0);
    cr_expect_eq(p->for_ms, M(10));
    cr_expect_eq(p->severity, IW_SEV_CRITICAL);

    r = rule_named(cfg, "nh3n-hyst");
    p = iw_rule_params_for(r, "dongtan");
    cr_expect_eq(p->above, 2.0);
    cr_expect_eq(p->clear_below, 1.2, "an explicit clear_below is kept");

    r = rule_named(cfg, "class");
    p = iw_rule_params_for(r, "chongming");
    cr_expect_eq(p->target, 2);
    cr_expect(p->site_target, "the override names target: it beats the inventory's");
    cr_expect_not(r->p.site_target, "the rule's own target is only a default");
    cr_expect_not(iw_rule_params_for(rule_named(cfg, "nh3n"), "dongtan")->site_target);
    cr_expect(p->has_body && p->body == IW_BODY_LAKE);
    cr_expect_eq(p->sev_below_target, IW_SEV_WARNING);
    cr_expect_eq(p->sev_worse_than_v, IW_SEV_CRITICAL, "inherited from the scalar");

    r = rule_named(cfg, "aqi");
    p = iw_rule_params_for(r, "dongtan");
    cr_expect_eq(p->min_level, 4);
    cr_expect_eq(p->clear_level, 4, "the default clear_level follows the overridden min_level");
    cr_expect_eq(p->tz_offset_min, 0);
    cr_expect_eq(r->p.clear_level, 3);

    r = rule_named(cfg, "tamper");
    p = iw_rule_params_for(r, "hengsha");
    cr_assert_eq(p->n_match, 1);
    cr_expect_str_eq(p->match[0].value, "video_*");
    cr_expect_eq(p->auto_resolve_ms, M(5));
    cr_expect_str_eq(r->p.match[0].value, "tamper", "the rule's own match is untouched");
    iw_config_free(cfg);
}

Test(config, devices_file_is_merged_relative_to_the_config)
{
    struct iw_config *cfg = load_ok("config/valid/devices_file.yaml");
    static const int targets[] = { 3, 3, 2, 4, 5, 0 };

    cr_assert_eq(cfg->n_devices, 6);
    cr_expect_str_eq(cfg->devices[0].site, "dongtan");
    cr_expect_str_eq(cfg->devices[1].site, "chongming");
    cr_expect_str_eq(cfg->devices[5].source, "camera");
    for (size_t i = 0; i < 6; i++)
        cr_expect_eq(cfg->devices[i].target, targets[i], "device %zu", i);
    iw_config_free(cfg);
}

/* ======================================================================== */
/* Invalid fixtures: exact diagnostics                                      */
/* ======================================================================== */

/* An array, not a pointer: Criterion may run each case in a re-executed process. */
struct bad_cfg {
    char name[40];         /* config/invalid/<name>.yaml, expected lines in <name>.expect */
};

static const struct bad_cfg bad_cases[] = {
    { "syntax_error" }, { "syntax_tab" }, { "bad_utf8" }, { "unknown_top_key" },
    { "unknown_rule_key" }, { "unknown_section_keys" }, { "duplicate_key" }, { "wrong_types" },
    { "wrong_number" }, { "bad_duration" }, { "out_of_range" }, { "connections_zero" },
    { "bad_size" }, { "bad_severity" }, { "unknown_kind" }, { "missing_required" },
    { "duplicate_rule" }, { "duplicate_source" }, { "source_topic" }, { "empty_sources" },
    { "select_glob" }, { "template_fields" }, { "site_override" }, { "threshold_needs" },
    { "threshold_clear" }, { "kind_requirements" }, { "key_wrong_kind" }, { "rate_values" },
    { "flag_letters" }, { "event_match" }, { "water_quality_keys" }, { "air_quality_keys" },
    { "silences" }, { "devices" }, { "devices_file_bad" }, { "devices_file_missing" },
    { "misc_values" }, { "multi_error" }, { "too_many_sources" }, { "second_document" },
    { "control_chars" }, { "rejected_topic_loop" }, { "protocol_unknown" },
    { "alert_topic_loop" }, { "nul_in_value" }, { "long_name" }, { "label_null" },
};

ParameterizedTestParameters(config, rejects_invalid)
{
    return cr_make_param_array(struct bad_cfg, bad_cases, IW_ARRAY_LEN(bad_cases));
}

ParameterizedTest(const struct bad_cfg *c, config, rejects_invalid)
{
    char file[256], expect_path[256], line[2048];
    struct iw_config *cfg = (struct iw_config *)1;
    struct iw_diag diag = { 0 };
    size_t n = 0;
    FILE *f;

    to_data_dir();
    snprintf(file, sizeof(file), "config/invalid/%s.yaml", c->name);
    snprintf(expect_path, sizeof(expect_path), "config/invalid/%s.expect", c->name);
    cr_assert_eq(iw_config_load(file, &cfg, &diag), IW_E_CONFIG, "%s must be rejected", file);
    cr_assert_null(cfg);
    f = fopen(expect_path, "r");
    cr_assert_not_null(f, "missing %s", expect_path);
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        cr_assert_lt(n, diag.n, "%s: expected line %zu: %s\n(only %zu errors reported)", file,
                     n + 1, line, diag.n);
        cr_expect_str_eq(diag.lines[n], line, "%s line %zu", file, n + 1);
        n++;
    }
    fclose(f);
    cr_expect_gt(n, 0, "%s is empty", expect_path);
    cr_expect_eq(diag.n, n, "%s: %zu errors reported, %zu expected; first extra: %s", file,
                 diag.n, n, diag.n > n ? diag.lines[n] : "");
    iw_diag_fini(&diag);
}

Test(config, every_invalid_fixture_is_in_the_table)
{
    DIR *d = opendir("config/invalid");
    struct dirent *e;
    size_t count = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        bool listed = false;

        if (len < 5 || strcmp(e->d_name + len - 5, ".yaml") != 0 ||
            strstr(e->d_name, ".list.yaml") != NULL)
            continue;           /* *.list.yaml are devices files, not configs */
        for (size_t i = 0; i < IW_ARRAY_LEN(bad_cases); i++)
            listed |= strlen(bad_cases[i].name) == len - 5 &&
                      strncmp(bad_cases[i].name, e->d_name, len - 5) == 0;
        cr_expect(listed, "%s is not in bad_cases[]", e->d_name);
        count++;
    }
    closedir(d);
    cr_expect_eq(count, IW_ARRAY_LEN(bad_cases));
    cr_expect_geq(count, 25);
}

/* ======================================================================== */
/* Loading from a string; I/O errors                                        */
/* ======================================================================== */

static int load_str(const char *text, struct iw_config **cfg, struct iw_diag *diag)
{
    return iw_config_load_string("inline.yaml", text, strlen(text), cfg, diag);
}

Test(config, load_string_valid)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    const char *text = "broker: { url: \"tcp://127.0.0.1:1884\" }\n"
                       "max_payload: 65536\n"
                       "rules:\n"
                       "  - { name: ph, kind: threshold, select: \"water/*/*/ph\", below: 6 }\n";

    cr_assert_eq(load_str(text, &cfg, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_expect_eq(diag.n, 0);
    cr_expect_str_eq(cfg->file, "inline.yaml");
    cr_expect_str_eq(cfg->broker.url, "tcp://127.0.0.1:1884");
    cr_expect_eq(cfg->ingest.max_payload, 65536);
    cr_assert_eq(cfg->n_rules, 1);
    cr_expect_eq(cfg->rules[0].p.below, 6);
    cr_expect_eq(cfg->rules[0].line, 4);
    cr_expect_eq(cfg->rules[0].column, 5);
    iw_config_free(cfg);
}

Test(config, load_string_reports_every_error_with_the_given_name)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    const char *text = "alerts:\n  qos: 7\nrules:\n  - name: x\n    kind: absence\n"
                       "    select: camera/*/*\n    after: 10x\n";

    cr_assert_eq(load_str(text, &cfg, &diag), IW_E_CONFIG);
    cr_assert_null(cfg);
    cr_assert_eq(diag.n, 2);
    cr_expect_str_eq(diag.lines[0], "inline.yaml:2:8: error: alerts.qos: 7 is out of range (0..2)");
    cr_expect_str_eq(diag.lines[1], "inline.yaml:7:12: error: rule \"x\": after: \"10x\" is not a "
                     "duration (use e.g. 500ms, 30s, 10m, 4h, 7d, 1y)");
    iw_diag_fini(&diag);
}

/*
 * The files the daemon reads at start and reload are checked to be readable:
 * `check` used to pass a file whose start then failed on a missing
 * password_file or token_file, without a FILE:LINE:COLUMN line, and a reload
 * accepted a missing password_file until the next restart (audit).
 */
Test(config, files_the_daemon_reads_must_be_readable)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    const char *text = "broker:\n"
                       "  password_file: /nonexistent/broker.pass\n"
                       "  tls: { ca_file: /nonexistent/ca.pem }\n"
                       "http:\n"
                       "  token_file: /\n";

    cr_assert_eq(load_str(text, &cfg, &diag), IW_OK, "off by default: tail, ack and report "
                 "--config take settings from a file whose secrets they cannot read");
    iw_config_free(cfg);
    iw_config_check_files(true);                /* as islewatchd and `check` do */
    cr_assert_eq(load_str(text, &cfg, &diag), IW_E_CONFIG);
    cr_assert_eq(diag.n, 3);
    cr_expect_str_eq(diag.lines[0], "inline.yaml:2:18: error: broker.password_file: "
                     "/nonexistent/broker.pass cannot be read: No such file or directory (create "
                     "it, fix the path, or give islewatchd read access)");
    cr_expect_str_eq(diag.lines[1], "inline.yaml:3:19: error: broker.tls.ca_file: "
                     "/nonexistent/ca.pem cannot be read: No such file or directory (create it, "
                     "fix the path, or give islewatchd read access)");
    cr_expect_str_eq(diag.lines[2], "inline.yaml:5:15: error: http.token_file: / is a directory, "
                     "not a file");
    iw_diag_fini(&diag);

    /* A missing certificate is that one error, not also "give both or neither". */
    cr_assert_eq(load_str("broker:\n  tls: { cert_file: /nonexistent/c.pem, key_file: "
                          "/etc/passwd }\n", &cfg, &diag), IW_E_CONFIG);
    cr_expect_eq(diag.n, 1, "%s", diag.n > 1 ? diag.lines[1] : "");
    for (size_t i = 0; i < diag.n; i++)
        cr_expect(strstr(diag.lines[i], "go together") == NULL, "%s", diag.lines[i]);
    iw_diag_fini(&diag);

    /* An empty file name is no file: alone a key is one of a pair. */
    cr_assert_eq(load_str("broker:\n  tls: { cert_file: \"\", key_file: /etc/passwd }\n", &cfg,
                          &diag), IW_E_CONFIG);
    cr_expect(diag.n == 1 && strstr(diag.lines[0], "go together") != NULL, "%s",
              iw_diag_first(&diag));
    iw_diag_fini(&diag);
    cr_assert_eq(load_str("broker:\n  tls: { ca_file: \"\" }\n", &cfg, &diag), IW_OK, "%s",
                 iw_diag_first(&diag));
    cr_expect_null(cfg->broker.tls_ca_file, "an empty ca_file is the system's CAs");
    iw_config_free(cfg);

    cr_assert_eq(load_str("http:\n  token_file: \"\"\n", &cfg, &diag), IW_OK,
                 "empty: no token file, state changes disabled: %s", iw_diag_first(&diag));
    iw_config_free(cfg);

    /* A token file the daemon refuses: check refused it too (audit). */
    char tpath[] = "/tmp/iw-token-XXXXXX", text2[128];
    int fd = mkstemp(tpath);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "  \nsecret\n", 10), 10);
    close(fd);
    snprintf(text2, sizeof(text2), "http:\n  token_file: %s\n", tpath);
    cr_assert_eq(load_str(text2, &cfg, &diag), IW_E_CONFIG);
    cr_assert_eq(diag.n, 1);
    cr_expect(strncmp(diag.lines[0], "inline.yaml:2:15: error: http.token_file: ", 42) == 0
              && strstr(diag.lines[0], "has an empty first line; put the token") != NULL, "%s",
              diag.lines[0]);
    iw_diag_fini(&diag);
    /* Nor one cut at a NUL byte (re-audit: "a\0b" was the token "a"). */
    cr_assert_eq(truncate(tpath, 0), 0);
    fd = open(tpath, O_WRONLY);
    cr_assert_eq(write(fd, "a\0b\n", 4), 4);
    close(fd);
    cr_assert_eq(load_str(text2, &cfg, &diag), IW_E_CONFIG);
    cr_expect(diag.n == 1 && strstr(diag.lines[0], "holds a NUL byte in its first line") != NULL,
              "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
    unlink(tpath);
    iw_config_check_files(false);
}

/* `check --skip-files` lints a config where its secrets are not. */
Test(config, check_skip_files_leaves_the_secrets_alone)
{
    char path[] = "/tmp/iw-check-XXXXXX";
    int fd = mkstemp(path);
    static const char text[] = "broker:\n  password_file: /nonexistent/broker.pass\n";

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    char *argv_files[] = { "check", path, NULL }, *argv_skip[] = { "check", "--skip-files", path,
                                                                   NULL };
    cr_redirect_stderr();
    cr_redirect_stdout();
    cr_expect_eq(iw_cmd_check(2, argv_files), 1, "the daemon would refuse it here");
    cr_expect_eq(iw_cmd_check(3, argv_skip), 0);
    unlink(path);
}

/* An air station's inventory entry may list the pollutants it monitors. */
Test(config, an_inventory_entry_lists_the_pollutants_its_station_monitors)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    const char *ok = "devices:\n"
                     "  - { source: air, site: s1, device: a01, pollutants: [pm25, pm10, o3] }\n"
                     "  - { source: air, site: s1, device: a02 }\n";
    const char *bad = "devices:\n"
                      "  - { source: air, site: s1, device: a01, pollutants: [pm2.5, co] }\n"
                      "  - { source: air, site: s1, device: a02, pollutants: [] }\n";

    cr_assert_eq(load_str(ok, &cfg, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(cfg->n_devices, 2);
    cr_expect_eq(cfg->devices[0].pollutants,
                 (1u << IW_AQI_P_PM25) | (1u << IW_AQI_P_PM10) | (1u << IW_AQI_P_O3));
    cr_expect_eq(cfg->devices[1].pollutants, 0, "not declared");
    iw_config_free(cfg);

    cr_assert_eq(load_str(bad, &cfg, &diag), IW_E_CONFIG);
    cr_assert_eq(diag.n, 2);
    cr_expect_str_eq(diag.lines[0], "inline.yaml:2:56: error: device \"s1/a01\": pollutants: "
                     "\"pm2.5\" is not an AQI pollutant (so2, no2, co, o3, pm10, pm25) "
                     "(did you mean \"pm25\"?)");
    cr_expect_str_eq(diag.lines[1], "inline.yaml:3:55: error: device \"s1/a02\": pollutants: "
                     "expected a list of the AQI pollutants the station monitors, e.g. "
                     "[pm25, pm10, o3], got an empty list");
    iw_diag_fini(&diag);
}

Test(config, top_level_must_be_a_mapping)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };

    cr_assert_eq(load_str("- a\n- b\n", &cfg, &diag), IW_E_CONFIG);
    cr_expect_str_eq(iw_diag_first(&diag),
                     "inline.yaml:1:1: error: the file: expected a mapping, got a sequence");
    iw_diag_fini(&diag);
}

Test(config, unreadable_files_are_io_errors)
{
    struct iw_config *cfg = (struct iw_config *)1;
    struct iw_diag diag = { 0 };

    cr_assert_eq(iw_config_load("config/no-such-file.yaml", &cfg, &diag), IW_E_IO);
    cr_expect_null(cfg);
    cr_expect_str_eq(iw_diag_first(&diag), "config/no-such-file.yaml:1:1: error: cannot open: No such "
                     "file or directory (check the path and its permissions)");
    iw_diag_fini(&diag);
    cr_assert_eq(iw_config_load("config", &cfg, &diag), IW_E_IO);
    cr_expect_str_eq(iw_diag_first(&diag), "config:1:1: error: cannot read: is a directory (give "
                     "the path of a YAML file)");
    iw_diag_fini(&diag);
}

/* A file over 16 MiB is not a config: the error says so, and does not send
 * the operator to check permissions that are fine. */
Test(config, a_file_over_16_mib_is_refused_as_the_wrong_file)
{
    char path[] = "/tmp/iw-big-config-XXXXXX";
    int fd = mkstemp(path);
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };

    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)(17u << 20)), 0);
    close(fd);
    cr_expect_eq(iw_config_load(path, &cfg, &diag), IW_E_IO);
    cr_expect_null(cfg);
    const char *e = iw_diag_first(&diag);
    cr_expect(e != NULL && strstr(e, ":1:1: error: cannot read: larger than 16 MiB; is this the "
                                     "right file?") != NULL, "%s", e ? e : "(none)");
    cr_expect(e != NULL && strstr(e, "permissions") == NULL, "%s", e ? e : "(none)");
    iw_diag_fini(&diag);
    unlink(path);
}

Test(config, free_accepts_null)
{
    iw_config_free(NULL);
    cr_expect_eq(iw_config_load_string("x", NULL, 0, NULL, NULL), IW_E_INVAL);
}

/* The fields the loader accepts are the renderer's (islewatch/template.h). */
Test(config, template_fields_agree_with_the_renderer)
{
    static const char *const texts[] = {
        "{rule} {severity} {status} {source} {site} {device} {metric} {metric_name} {value} "
        "{threshold} {unit} {summary} {class} {class_zh} {target} {target_zh} {{x}}",
        "{rule} {severity} {status} {source} {site} {device} {metric} {metric_name} {value} "
        "{threshold} {unit} {summary} {aqi} {level} {level_zh} {level_en} {colour} {primary} "
        "{primary_zh}",
    };
    static const char *const kinds[] = { "water_quality", "air_quality" };
    static const char *const selects[] = { "water/*/*", "air/*/*" };
    char text[1024];

    for (size_t i = 0; i < 2; i++) {
        struct iw_config *cfg = NULL;
        struct iw_diag diag = { 0 };
        const char *bad = NULL;

        snprintf(text, sizeof(text), "rules:\n  - name: r\n    kind: %s\n    select: \"%s\"\n"
                 "    message: \"%s\"\n", kinds[i], selects[i], texts[i]);
        cr_expect_eq(iw_config_load_string("t.yaml", text, strlen(text), &cfg, &diag), IW_OK,
                     "%s", iw_diag_first(&diag));
        cr_expect(iw_template_check(texts[i], &bad), "renderer rejects %s", bad ? bad : "?");
        iw_config_free(cfg);
        iw_diag_fini(&diag);
    }
}

/* SPEC section 4 lists {class}, {aqi} and {level} for every rule's message;
 * a standards field SPEC does not list (level_zh) stays its kind's only. */
Test(config, every_rule_may_name_the_spec_placeholders)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    static const char ok[] = "rules:\n  - {name: t, kind: threshold, select: \"water/*/*/ph\", "
        "above: 9,\n     message: \"{rule} {site} {device} {metric} {value} {threshold} {unit} "
        "{class} {aqi} {level}\"}\n";
    static const char bad[] = "rules:\n  - {name: t, kind: threshold, select: \"water/*/*/ph\", "
        "above: 9,\n     message: \"{level_zh}\"}\n";

    cr_expect_eq(iw_config_load_string("t.yaml", ok, strlen(ok), &cfg, &diag), IW_OK, "%s",
                 iw_diag_first(&diag));
    iw_config_free(cfg);
    iw_diag_fini(&diag);
    cfg = NULL;
    cr_expect_eq(iw_config_load_string("t.yaml", bad, strlen(bad), &cfg, &diag), IW_E_CONFIG);
    cr_expect_str_eq(iw_diag_first(&diag), "t.yaml:3:15: error: rule \"t\": message: {level_zh} "
                     "is only available in air_quality rules");
    iw_config_free(cfg);
    iw_diag_fini(&diag);
}

/* check accepts exactly the http.listen values the daemon's listener takes:
 * "::1:21450" passed check and then stopped the daemon at start. */
Test(config, http_listen_is_checked_as_the_listener_reads_it)
{
    static const char *const bad[] = { "\"::1:21450\"", "\"[::1\"", "\" :1\"", "\"[::1]8080\"",
                                       "\"a b:80\"", "\":8080\"" };
    static const char *const good[] = { "\"[::1]:8080\"", "localhost:8080", "127.0.0.1:8080",
                                        "off", "\"\"" };
    char text[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + sizeof(good) / sizeof(good[0]); i++) {
        bool ok = i >= sizeof(bad) / sizeof(bad[0]);
        const char *v = ok ? good[i - sizeof(bad) / sizeof(bad[0])] : bad[i];
        struct iw_config *cfg = NULL;
        struct iw_diag diag = { 0 };
        snprintf(text, sizeof(text), "http:\n  listen: %s\n", v);
        cr_expect_eq(iw_config_load_string("t.yaml", text, strlen(text), &cfg, &diag),
                     ok ? IW_OK : IW_E_CONFIG, "listen: %s: %s", v, iw_diag_first(&diag));
        iw_config_free(cfg);
        iw_diag_fini(&diag);
    }
    /* The same for broker.url's host: no space, no lone bracket. */
    static const struct { const char *url; bool ok; } urls[] = {
        { "mqtt://[::1", false }, { "mqtt://a b:1", false }, { "mqtt://[::1]x", false },
        { "mqtt://[::1]:1883", true }, { "mqtt://localhost", true }, { "mqtts://b.example:8883", true },
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct iw_config *cfg = NULL;
        struct iw_diag diag = { 0 };
        snprintf(text, sizeof(text), "broker:\n  url: \"%s\"\n", urls[i].url);
        cr_expect_eq(iw_config_load_string("t.yaml", text, strlen(text), &cfg, &diag),
                     urls[i].ok ? IW_OK : IW_E_CONFIG, "url: %s: %s", urls[i].url,
                     iw_diag_first(&diag));
        iw_config_free(cfg);
        iw_diag_fini(&diag);
    }
}

/* libyaml takes time quadratic in the nesting of [ and {: a file nested
 * absurdly deep is refused before it is parsed (80,000 levels took 17 s),
 * at the bracket past 64. Brackets in quoted scalars and comments are text. */
Test(config, flow_collections_nested_too_deep_are_refused_at_once)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    size_t n = 200000;
    char *deep = malloc(2 * n + 16);

    cr_assert_not_null(deep);
    memcpy(deep, "rules: ", 7);
    memset(deep + 7, '[', n);
    memset(deep + 7 + n, ']', n);
    cr_expect_eq(iw_config_load_string("deep.yaml", deep, 7 + 2 * n, &cfg, &diag), IW_E_CONFIG);
    cr_expect_str_eq(iw_diag_first(&diag), "deep.yaml:1:72: error: syntax error: [ and { nested "
                     "more than 64 levels deep (a config needs a few; is this the right file?)");
    iw_diag_fini(&diag);
    free(deep);

    char text[1024], br[101];
    memset(br, '[', 100);
    br[100] = '\0';
    snprintf(text, sizeof(text), "# %s\nrules:\n  - {name: t, kind: threshold, select: "
             "\"water/*/*/ph\", above: 9,\n     message: \"%s it's\", labels: {a: '%s'}}\n",
             br, br, br);
    cr_expect_eq(iw_config_load_string("t.yaml", text, strlen(text), &cfg, &diag), IW_OK, "%s",
                 iw_diag_first(&diag));
    iw_config_free(cfg);
    iw_diag_fini(&diag);
}

/* ======================================================================== */
/* Rule hash                                                                */
/* ======================================================================== */

static void hash_of(const char *text, char out[17])
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };

    cr_assert_eq(load_str(text, &cfg, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(cfg->n_rules, 1);
    memcpy(out, cfg->rules[0].hash, 17);
    iw_config_free(cfg);
}

static void cond_hash_of(const char *text, char out[17])
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };

    cr_assert_eq(load_str(text, &cfg, &diag), IW_OK, "%s", iw_diag_first(&diag));
    memcpy(out, cfg->rules[0].cond_hash, 17);
    iw_config_free(cfg);
}

/* A reload keeps the alerts of a rule whose condition is unchanged: the
 * condition hash leaves out message, labels and severity (also a site's), and
 * nothing else. */
Test(config, the_condition_hash_leaves_out_message_labels_and_severity_only)
{
    static const char base[] = "rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                               "    above: 9\n";
    char a[17], b[17], c[17], h1[17], h2[17];

    cond_hash_of(base, a);
    cond_hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                 "    above: 9\n    message: \"pH {value}\"\n    labels: {team: a}\n", b);
    cond_hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                 "    above: 9.5\n    message: \"pH {value}\"\n", c);
    cr_expect_str_eq(a, b, "a message or labels changed the condition");
    cr_expect_str_neq(a, c, "a changed threshold kept the condition");
    /* Nor is the severity, the rule's or a site's; a site's threshold is. */
    static const char site[] = "rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                               "    above: 9\n    severity: major\n"
                               "    sites: { s1: { above: 8, severity: critical } }\n";
    char s1[17], s2[17], s3[17], s4[17];
    cond_hash_of(site, s1);
    cond_hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                 "    above: 9\n    severity: info\n"
                 "    sites: { s1: { above: 8, severity: warning } }\n", s2);
    cond_hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                 "    above: 9\n    severity: major\n"
                 "    sites: { s1: { above: 7, severity: critical } }\n", s3);
    cond_hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
                 "    above: 9\n    severity: major\n"
                 "    sites: { s2: { above: 8, severity: critical } }\n", s4);
    cr_expect_str_eq(s1, s2, "a severity, the rule's or a site's, changed the condition");
    cr_expect_str_neq(s1, s3, "a site's threshold kept the condition");
    cr_expect_str_neq(s1, s4, "another site kept the condition");
    /* cond_hash_v1, what older rule state records hold: the same with the
     * severity, so it equals cond_hash for a rule without one. */
    struct iw_config *v = NULL;
    struct iw_diag diag = { 0 };
    cr_assert_eq(load_str(base, &v, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_expect_str_eq(v->rules[0].cond_hash_v1, v->rules[0].cond_hash);
    iw_config_free(v);
    cr_assert_eq(load_str(site, &v, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_expect_str_neq(v->rules[0].cond_hash_v1, v->rules[0].cond_hash);
    iw_config_free(v);
    hash_of(base, h1);
    hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
            "    above: 9\n    message: \"pH {value}\"\n", h2);
    cr_expect_str_neq(h1, h2, "rule_hash still tells the versions apart");
}

/* The condition of a site's instances (iw_rule_cond_for): its own override
 * and the rule without `sites`; another site's override is not part of it. */
static void site_cond_of(const char *text, const char *site, char out[17])
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };

    cr_assert_eq(load_str(text, &cfg, &diag), IW_OK, "%s", iw_diag_first(&diag));
    memcpy(out, iw_rule_cond_for(&cfg->rules[0], site), 17);
    iw_config_free(cfg);
}

Test(config, a_sites_condition_leaves_out_the_other_sites_overrides)
{
#define PH(above, sites) "rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n" \
                         "    above: " above "\n    severity: major\n    sites: " sites "\n"
    static const char base[] = PH("9", "{ s1: { above: 8, severity: critical } }");
    char b1[17], b2[17], x[17];

    site_cond_of(base, "s1", b1);
    site_cond_of(base, "s2", b2);
    cr_expect_str_neq(b1, b2, "an override is part of its site's condition");
    site_cond_of(PH("9", "{ s1: { above: 7 } }"), "s2", x);
    cr_expect_str_eq(x, b2, "s1's override changed s2's condition");
    site_cond_of(PH("9", "{ s1: { above: 8 }, s3: { above: 5 } }"), "s2", x);
    cr_expect_str_eq(x, b2, "a new override for s3 changed s2's condition");
    site_cond_of(PH("9", "{ s1: { above: 8, severity: info } }"), "s1", x);
    cr_expect_str_eq(x, b1, "a site's severity changed its condition");
    site_cond_of(PH("9", "{ s1: { above: 7, severity: critical } }"), "s1", x);
    cr_expect_str_neq(x, b1, "a site's threshold kept its condition");
    site_cond_of(PH("9.5", "{ s1: { above: 8, severity: critical } }"), "s1", x);
    cr_expect_str_neq(x, b1, "the rule's threshold, which s1 inherits the rest of, kept s1's condition");
    site_cond_of(PH("9", "{ s1: { severity: critical } }"), "s1", x);
    cr_expect_str_eq(x, b2, "an override of the severity alone changed its site's condition");
    site_cond_of(PH("9", "{ s1: { above: 8, severity: critical, repeat: 1h } }"), "s1", x);
    cr_expect_str_eq(x, b1, "a site's repeat changed its condition");
    site_cond_of(PH("9\n    repeat: 2h", "{ s1: { above: 8, severity: critical } }"), "s2", x);
    cr_expect_str_eq(x, b2, "the rule's repeat changed the condition");
    site_cond_of(PH("9.5", "{ s1: { above: 8, severity: critical } }"), "s2", x);
    cr_expect_str_neq(x, b2, "the rule's threshold kept s2's condition");
#undef PH
}

Test(config, rule_hash_ignores_layout_and_changes_with_content)
{
    char a[17], b[17], c[17], d[17], e[17];

    hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
            "    above: 9\n    for: 5m\n", a);
    /* Comments, flow style, quoting, key order and another section: the same rule. */
    hash_of("# comment\nlog_level: debug\nrules:\n- {for: \"5m\",   above: '9', # why\n"
            "   kind: threshold, select: \"water/*/*/ph\", name: ph}\n", b);
    hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
            "    above: 9.5\n    for: 5m\n", c);
    hash_of("rules:\n  - name: ph\n    kind: threshold\n    select: water/*/*/ph\n"
            "    above: 9\n    for: 5m\n    sites: { dongtan: { above: 8 } }\n", d);
    hash_of("rules:\n  - name: ph2\n    kind: threshold\n    select: water/*/*/ph\n"
            "    above: 9\n    for: 5m\n", e);
    cr_expect_eq(strlen(a), 16);
    cr_expect_eq(strspn(a, "0123456789abcdef"), 16);
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, c, "a changed threshold changes the hash");
    cr_expect_str_neq(a, d, "a new site override changes the hash");
    cr_expect_str_neq(a, e, "a new name changes the hash");
}

/*
 * YAML merge keys: rules share their common keys with `<<: *base`, as in any
 * YAML config; libyaml leaves merging to the application. A rule's own key
 * wins over a merged one, the first mapping of `<<: [*a, *b]` over the later
 * ones, and the hash is that of the keys written out.
 */
Test(config, merge_keys_share_a_rule_s_keys)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    char written[17];
    const char *text =
        "rules:\n"
        "  - &nh3 {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5,\n"
        "          for: 10m, labels: {team: water}}\n"
        "  - &high\n"
        "    <<: *nh3\n"
        "    name: nh3-high\n"
        "    above: 2.0\n"
        "    severity: critical\n"
        "    for: 1m\n"
        "  - <<: [*nh3, *high]\n"
        "    name: nh3-both\n";

    cr_assert_eq(load_str(text, &cfg, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_assert_eq(cfg->n_rules, 3);
    const struct iw_rule *high = rule_named(cfg, "nh3-high"), *both = rule_named(cfg, "nh3-both");
    cr_expect_eq(high->kind, IW_RULE_THRESHOLD);
    cr_expect_str_eq(high->select, "water/*/*/nh3_n");
    cr_expect_eq(high->p.above, 2.0, "its own key wins over the merged one");
    cr_expect_eq(high->p.for_ms, M(1));
    cr_expect_eq(high->p.severity, IW_SEV_CRITICAL);
    cr_assert_eq(high->n_labels, 1);
    cr_expect_str_eq(high->labels[0].value, "water");
    cr_expect_eq(both->p.above, 1.5, "the first mapping of the list wins");
    cr_expect_eq(both->p.for_ms, M(10));
    cr_expect_eq(both->p.severity, IW_SEV_CRITICAL, "a later mapping adds what the first lacks");
    hash_of("rules:\n  - {name: nh3-high, kind: threshold, select: \"water/*/*/nh3_n\", "
            "above: 2.0, for: 1m, labels: {team: water}, severity: critical}\n", written);
    cr_expect_str_eq(high->hash, written, "merged keys hash as the keys written out");
    iw_config_free(cfg);

    cr_assert_eq(load_str("rules:\n  - &a {name: a, kind: threshold, select: \"water/*/*/ph\", "
                          "above: 9}\n  - <<: *a\n    name: b\n    kind: absence\n"
                          "  - <<: 5\n    name: c\n    kind: absence\n    select: camera/*/*\n"
                          "    after: 3m\n", &cfg, &diag), IW_E_CONFIG);
    cr_assert_eq(diag.n, 2, "%s", iw_diag_first(&diag));
    cr_expect_str_eq(diag.lines[0], "inline.yaml:2:59: error: rule \"b\": \"above\" does not "
                     "apply to absence rules");
    cr_expect_str_eq(diag.lines[1], "inline.yaml:6:9: error: rule \"c\": \"<<\" (a YAML merge "
                     "key) takes a mapping or a list of mappings, e.g. <<: *defaults; got a scalar");
    iw_diag_fini(&diag);

    /* Lists of aliases of lists of aliases grow exponentially: refused, not followed. */
    char bomb[4096] = "rules:\n  - {name: m, kind: absence, select: camera/*/*, after: 3m,\n"
                      "     labels: &l0 {a: b}}\n";
    for (int i = 1; i <= 8; i++) {
        size_t n = strlen(bomb);
        snprintf(bomb + n, sizeof(bomb) - n, "  - &l%d\n    <<: [*l%d, *l%d, *l%d, *l%d]\n", i,
                 i - 1, i - 1, i - 1, i - 1);
    }
    cr_assert_eq(load_str(bomb, &cfg, &diag), IW_E_CONFIG);
    bool refused = false;
    for (size_t i = 0; i < diag.n; i++)
        refused |= strstr(diag.lines[i], "\"<<\" merges more than 64 mappings or nests them more "
                                         "than 8 deep") != NULL;
    cr_expect(refused, "first error: %s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
}

/*
 * SPEC §3: an error is at the line and column of the offending node. Through
 * an alias that is where the alias is, in the rule that is wrong, not where
 * the anchor was defined (libyaml's loader makes them one node).
 */
Test(config, an_error_through_an_alias_is_at_the_alias)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    const char *text =
        "rules:\n"
        "  - {name: a, kind: threshold, select: &ph \"water/*/*/ph\", above: 9,\n"
        "     labels: &team {team: water}}\n"
        "  - {name: b, kind: threshold, select: *ph, below: 6, labels: *team}\n"
        "  - {name: c, kind: threshold, select: *ph, below: *team}\n"
        "  - {name: d, kind: water_quality, select: *ph}\n";

    cr_assert_eq(load_str(text, &cfg, &diag), IW_E_CONFIG);
    cr_assert_eq(diag.n, 2, "%zu errors, first: %s", diag.n, iw_diag_first(&diag));
    cr_expect_str_eq(diag.lines[0], "inline.yaml:5:52: error: rule \"c\": below: expected a "
                     "number, got a mapping");
    cr_expect_str_eq(diag.lines[1], "inline.yaml:6:44: error: rule \"d\": select: "
                     "\"water/*/*/ph\" has 4 levels; expected 3 (<source>/<site>/<device>)");
    iw_diag_fini(&diag);
    cr_assert_eq(load_str("rules: *nothing\n", &cfg, &diag), IW_E_CONFIG);
    cr_expect_str_eq(iw_diag_first(&diag), "inline.yaml:1:8: error: syntax error: found undefined "
                     "alias \"*nothing\" (an alias needs its &anchor earlier in the file)");
    iw_diag_fini(&diag);
}

/* ======================================================================== */
/* Names                                                                    */
/* ======================================================================== */

Test(config, severity_and_kind_names)
{
    static const char *const sev[] = { "info", "warning", "major", "critical" };

    for (int i = 0; i < IW_SEV_COUNT; i++) {
        cr_expect_str_eq(iw_severity_name((enum iw_severity)i), sev[i]);
        cr_expect_eq(iw_severity_parse(sev[i]), i);
    }
    cr_expect_eq(iw_severity_parse("urgent"), -1);
    cr_expect_eq(iw_severity_parse(NULL), -1);
    cr_expect_str_eq(iw_severity_name((enum iw_severity)9), "unknown");
    cr_expect_str_eq(iw_rule_kind_name(IW_RULE_THRESHOLD), "threshold");
    cr_expect_str_eq(iw_rule_kind_name(IW_RULE_WATER_QUALITY), "water_quality");
    cr_expect_str_eq(iw_rule_kind_name(IW_RULE_AIR_QUALITY), "air_quality");
    cr_expect_str_eq(iw_rule_kind_name((enum iw_rule_kind)42), "unknown");
}

/* ======================================================================== */
/* islewatch check                                                          */
/* ======================================================================== */

static void redirect_all(void)
{
    to_data_dir();
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static int run_check(int argc, const char *a1, const char *a2)
{
    char *argv[] = { (char *)"check", (char *)a1, (char *)a2, NULL };
    int rc = iw_cmd_check(argc, argv);

    fflush(stdout);
    fflush(stderr);
    return rc;
}

Test(check_cmd, valid_file_prints_ok_summary, .init = redirect_all)
{
    cr_assert_eq(run_check(2, "config/valid/overrides.yaml", NULL), 0);
    cr_assert_stdout_eq_str("config/valid/overrides.yaml: OK (4 sources, 5 rules, 0 devices)\n");
    cr_assert_stderr_eq_str("");
}

Test(check_cmd, invalid_file_prints_every_error_one_line_each_and_nothing_else, .init = redirect_all)
{
    cr_assert_eq(run_check(2, "config/invalid/threshold_needs.yaml", NULL), 1);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str(
        "config/invalid/threshold_needs.yaml:2:5: error: rule \"none\": a threshold rule needs "
        "\"above\" or \"below\"\n"
        "config/invalid/threshold_needs.yaml:9:12: error: rule \"both\": give either \"above\" or "
        "\"below\", not both\n"
        "config/invalid/threshold_needs.yaml:16:25: error: rule \"site-flips\": site \"dongtan\": "
        "give either \"above\" or \"below\", not both\n");
}

Test(check_cmd, one_error_is_one_line, .init = redirect_all)
{
    cr_assert_eq(run_check(2, "config/invalid/unknown_rule_key.yaml", NULL), 1);
    cr_assert_stderr_eq_str(
        "config/invalid/unknown_rule_key.yaml:6:5: error: rule \"nh3n\": unknown key \"abvoe\" "
        "(did you mean \"above\"?)\n");
}

Test(check_cmd, unreadable_file_is_not_valid_exits_1, .init = redirect_all)
{
    cr_assert_eq(run_check(2, "config/missing.yaml", NULL), 1);
    cr_assert_stderr_eq_str("config/missing.yaml:1:1: error: cannot open: No such file or directory "
                            "(check the path and its permissions)\n");
}

Test(check_cmd, usage_errors_exit_2, .init = redirect_all)
{
    cr_expect_eq(run_check(1, NULL, NULL), 2);
    cr_expect_eq(run_check(3, "a.yaml", "b.yaml"), 2);
    cr_expect_eq(run_check(2, "--frobnicate", NULL), 2);
    cr_assert_stderr_eq_str(
        "islewatch check: missing FILE (try 'islewatch check --help')\n"
        "islewatch check: one FILE at a time, got 'a.yaml' and 'b.yaml'\n"
        "islewatch check: unknown option '--frobnicate' (try 'islewatch check --help')\n");
}

Test(check_cmd, help_shows_an_example, .init = redirect_all)
{
    FILE *out;
    char buf[4096];
    size_t n;

    cr_assert_eq(run_check(2, "--help", NULL), 0);
    out = cr_get_redirected_stdout();
    n = fread(buf, 1, sizeof(buf) - 1, out);
    buf[n] = '\0';
    cr_expect(strstr(buf, "Usage: islewatch check [--skip-files] FILE") != NULL, "%s", buf);
    cr_expect(strstr(buf, "Example:") != NULL, "%s", buf);
}

/* The CLI's and the API's times (SPEC §6): RFC 3339, epoch ms, or relative to
 * now, before or after it, written either way. */
Test(config, time_arguments_relative_to_now_go_both_ways)
{
    const int64_t now = 1764417600000LL;
    static const struct { const char *s; int64_t want; } ok[] = {
        { "now", 0 }, { "-1h", -3600000 }, { "+1h", 3600000 }, { "now-1h", -3600000 },
        { "now+1h", 3600000 }, { "now+30m", 1800000 },
    };
    int64_t t;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_expect_eq(iw_time_arg_parse(ok[i].s, now, &t), IW_OK, "%s", ok[i].s);
        cr_expect_eq(t, now + ok[i].want, "%s", ok[i].s);
    }
    cr_expect_eq(iw_time_arg_parse("now+", now, &t), IW_E_INVAL);
    cr_expect_eq(iw_time_arg_parse("now*1h", now, &t), IW_E_INVAL);
    cr_expect_eq(iw_time_arg_parse("2025-11-29T12:00:00Z", now, &t), IW_OK);
    cr_expect_eq(t, now);
    /* A relative time without its unit is refused, not read as ms before 1970
     * (which returned everything); epoch ms, early ones too, still read. */
    cr_expect_eq(iw_time_arg_parse("-30", now, &t), IW_E_INVAL);
    cr_expect_eq(iw_time_arg_parse("+30", now, &t), IW_E_INVAL, "+30: not 30 ms after 1970");
    cr_expect_eq(iw_time_arg_parse(" -30", now, &t), IW_E_INVAL);
    cr_expect_eq(iw_time_arg_parse(" 30", now, &t), IW_E_INVAL);
    cr_expect_eq(iw_time_arg_parse("-9999999999", now, &t), IW_E_INVAL);
    cr_expect_eq(iw_time_arg_parse("-62167219200000", now, &t), IW_OK);
    cr_expect_eq(t, -62167219200000LL);
    cr_expect_eq(iw_time_arg_parse("30", now, &t), IW_OK);
    cr_expect_eq(t, 30);
    cr_expect_eq(iw_time_arg_parse("-0", now, &t), IW_OK, "-0: zero duration before now");
    cr_expect_eq(t, now);
}
