/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Alert objects: the JSON of an alert of every kind, as the engine emits it,
 * validates against config/alert.schema.json (checked by a small validator of
 * the schema keywords the file uses); JSON round trip; topics; templates.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <regex.h>

#include "islewatch/template.h"
#include "unit/rules_fixture.h"

#include "schema_check.h"


static void assert_valid(const cJSON *schema, const struct iw_alert *a)
{
    char *json = NULL, *again = NULL;
    size_t len = 0;
    struct iw_alert *back = NULL;
    struct iw_diag d = { 0 };
    cJSON *doc;
    const char *why;

    cr_assert_eq(iw_alert_to_json(a, &json, &len), IW_OK, "alert of rule %s", a->rule);
    cr_assert_eq(strlen(json), len);
    doc = cJSON_Parse(json);
    cr_assert_not_null(doc, "%s", json);
    why = validate(schema, schema, doc, "alert");
    cr_assert_null(why, "%s in %s", why, json);
    cJSON_Delete(doc);
    cr_assert_eq(iw_alert_from_json(json, len, &back, &d), IW_OK, "%s: %s", iw_diag_first(&d), json);
    cr_assert_eq(iw_alert_to_json(back, &again, NULL), IW_OK);
    cr_assert_str_eq(again, json, "JSON round trip");
    iw_alert_free(back);
    free(again);
    free(json);
}

/* ==========================================================================
 * One alert of every kind through the engine
 * ======================================================================== */

static void emit_every_kind(struct fx_env *env, struct fx_cfg *c)
{
    struct iw_rules_env ev = fx_env_of(env);
    struct iw_rules_engine *e = NULL;
    struct iw_rule *r;
    struct iw_rsample s;
    static const char *const pol[] = { "so2", "no2", "co", "o3", "pm10", "pm25" };
    static const double conc[] = { 10, 20, 0.5, 40, 60, 160 };

    fx_cfg_init(c);
    r = fx_rule(c, "nh3n-high", IW_RULE_THRESHOLD, "water/*/*/nh3_n");
    r->p.has_above = true;
    r->p.above = 2;
    r->labels = fx_kv(c, "team", "water");
    r->n_labels = 1;
    r->message_zh = "{site}/{device} 氨氮 {value}";
    r->message_en = "{site}/{device} NH3-N {value}";
    r = fx_rule(c, "turb-rise", IW_RULE_RATE, "water/*/*/turbidity");
    r->p.has_rise = true;
    r->p.rise = 1;
    r = fx_rule(c, "cam-gone", IW_RULE_ABSENCE, "camera/*/*");
    r->p.after_ms = MINUTE;
    r = fx_rule(c, "fault", IW_RULE_FLAG, "water/*/*");
    r->p.flags = 1u << ('D' - 'A');
    r = fx_rule(c, "tamper", IW_RULE_EVENT, "camera_event/*/*");
    r = fx_rule(c, "water-class", IW_RULE_WATER_QUALITY, "water/*/*");
    r = fx_rule(c, "aqi", IW_RULE_AIR_QUALITY, "air/*/*");
    r->message = "{site} AQI {aqi} {level_zh} {primary_zh}";
    fx_device(c, "camera", "s1", "c09");

    cr_assert_eq(iw_rules_engine_new(&c->cfg, &ev, T0, &e), IW_OK);
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0, 2.31);           /* threshold + water */
    fx_feed(e, "water", "s1", "w01", "turbidity", T0, 1);
    fx_feed(e, "water", "s1", "w01", "turbidity", T0 + MINUTE, 5);  /* rate */
    s = fx_sample("water", "s1", "w02", "ph", T0, 7);
    s.flag = 'D';
    iw_rules_on_sample(e, &s);                                     /* flag */
    s = fx_sample("camera_event", "s1", "c01", "tamper", T0, 1);
    s.is_event = true;
    iw_rules_on_sample(e, &s);                                     /* event */
    for (int m = 1; m <= 60; m++) {                                /* one hour of air */
        struct iw_rsample msg[6];
        for (int p = 0; p < 6; p++)
            msg[p] = fx_sample("air", "s1", "a01", pol[p], T0 / HOUR * HOUR + 16 * HOUR + m * MINUTE,
                               conc[p]);
        iw_rules_on_samples(e, msg, 6);
    }
    iw_rules_tick(e, T0 + 2 * MINUTE);                             /* absence of c09 */
    fx_feed(e, "water", "s1", "w01", "nh3_n", T0 + 2 * MINUTE, 0.1); /* resolves */
    iw_rules_engine_free(e);
}

Test(alert, every_kind_validates_against_the_schema)
{
    struct fx_env env = { 0 };
    struct fx_cfg c;
    cJSON *schema = load_schema();
    bool seen[7] = { false };

    emit_every_kind(&env, &c);
    for (size_t i = 0; i < env.n_alerts; i++) {
        env.alerts[i]->seq = 1000 + i;
        assert_valid(schema, env.alerts[i]);
        seen[env.alerts[i]->kind] = true;
    }
    for (int k = 0; k < 7; k++)
        cr_assert(seen[k], "no alert of kind %s was emitted", iw_rule_kind_name((enum iw_rule_kind)k));
    cJSON_Delete(schema);
    fx_env_fini(&env);
}

Test(alert, optional_members_validate)
{
    struct fx_env env = { 0 };
    struct fx_cfg c;
    cJSON *schema = load_schema();
    struct iw_alert a;
    char *json;

    emit_every_kind(&env, &c);
    a = *env.alerts[0];
    cr_assert_not_null(a.message_zh, "the first alert has a zh message");
    a.silenced = true;
    a.acked = true;
    a.ack_ts = T0 + HOUR;
    a.ack_by = "ops";
    a.ack_comment = "looking";
    assert_valid(schema, &a);
    cr_assert_eq(iw_alert_to_json(&a, &json, NULL), IW_OK);
    cr_assert_not_null(strstr(json, "\"silenced\":true"));
    cr_assert_not_null(strstr(json, "\"ack\":{\"ts\":"));
    cr_assert_not_null(strstr(json, "\"message_zh\":\"s1/w01 氨氮 2.31\""), "%s", json);
    free(json);
    cJSON_Delete(schema);
    fx_env_fini(&env);
}

Test(alert, json_has_the_spec_shape)
{
    struct iw_kv labels[1] = { { "team", "water" } };
    struct iw_alert a = {
        .id = "b3f1c2d4e5f60718", .seq = 1042, .status = IW_ALERT_FIRING,
        .kind = IW_RULE_WATER_QUALITY, .severity = IW_SEV_CRITICAL, .rule = "water-class",
        .source = "water", .site = "dongtan", .device = "w01", .metric = "nh3_n",
        .has_value = true, .value = 2.31, .has_threshold = true, .threshold = 2.0, .unit = "mg/L",
        .message = "dongtan/w01 is Class 劣V (target III): NH3-N 2.31 mg/L",
        .rule_hash = "5d41402a", .labels = labels, .n_labels = 1, .details = "{\"class\":\"劣V\"}",
    };
    char *json;

    cr_assert_eq(iw_rfc3339_parse("2026-11-29T10:00:00Z", 20, &a.started_at), IW_OK);
    cr_assert_eq(iw_rfc3339_parse("2026-11-29T10:04:00Z", 20, &a.ts), IW_OK);
    cr_assert_eq(iw_alert_to_json(&a, &json, NULL), IW_OK);
    cr_assert_str_eq(json,
        "{\"id\":\"b3f1c2d4e5f60718\",\"seq\":1042,\"rule\":\"water-class\",\"kind\":\"water_quality\","
        "\"status\":\"firing\",\"severity\":\"critical\",\"source\":\"water\",\"site\":\"dongtan\","
        "\"device\":\"w01\",\"metric\":\"nh3_n\",\"value\":2.31,\"threshold\":2,\"unit\":\"mg/L\","
        "\"started_at\":\"2026-11-29T10:00:00.000Z\",\"ts\":\"2026-11-29T10:04:00.000Z\","
        "\"message\":\"dongtan/w01 is Class 劣V (target III): NH3-N 2.31 mg/L\",\"late\":false,"
        "\"rule_hash\":\"5d41402a\",\"labels\":{\"team\":\"water\"},\"details\":{\"class\":\"劣V\"}}");
    free(json);

    a.metric = NULL;
    a.has_value = a.has_threshold = false;
    a.unit = NULL;
    a.details = NULL;
    cr_assert_eq(iw_alert_to_json(&a, &json, NULL), IW_OK);
    cr_assert_not_null(strstr(json, "\"metric\":null,\"value\":null,\"threshold\":null,\"unit\":null"));
    cr_assert_not_null(strstr(json, "\"details\":{}"));
    free(json);
}

Test(alert, bad_alerts_are_refused)
{
    struct iw_alert a = { .id = "0123456789abcdef", .rule = "r", .source = "s", .site = "x",
                          .device = "d", .rule_hash = "ab", .details = "[1]" };
    struct iw_alert *out = (void *)1;
    struct iw_diag d = { 0 };
    char *json = (void *)1;

    cr_assert_eq(iw_alert_to_json(&a, &json, NULL), IW_E_INVAL, "details must be an object");
    cr_assert_null(json);
    a.details = NULL;
    a.rule = NULL;
    cr_assert_eq(iw_alert_to_json(&a, &json, NULL), IW_E_INVAL);
    cr_assert_eq(iw_alert_from_json("[]", 2, &out, &d), IW_E_INVAL);
    cr_assert_null(out);
    cr_assert_eq(iw_alert_from_json("{\"id\":\"0123456789abcdef\"}", 25, &out, &d), IW_E_INVAL);
    cr_assert_not_null(strstr(iw_diag_first(&d), "required member"), "%s", iw_diag_first(&d));
    iw_diag_fini(&d);
}

/* ==========================================================================
 * Topics
 * ======================================================================== */

Test(alert, topics_expand_one_level_per_value)
{
    struct iw_alert a = { .severity = IW_SEV_MAJOR, .rule = "nh3/high+", .site = "dongtan",
                          .device = "w01", .source = "water", .status = IW_ALERT_FIRING };
    char buf[128];

    cr_assert_eq(iw_alert_topic("alerts/{severity}/{rule}/{site}/{device}", &a, buf, sizeof(buf)), IW_OK);
    cr_assert_str_eq(buf, "alerts/major/nh3_high_/dongtan/w01");
    cr_assert_eq(iw_alert_topic("a/{source}/{metric}/{status}", &a, buf, sizeof(buf)), IW_OK);
    cr_assert_str_eq(buf, "a/water/-/firing", "an absent metric is '-'");
    cr_assert_eq(iw_alert_topic("a/{nope}", &a, buf, sizeof(buf)), IW_E_INVAL);
    cr_assert_eq(iw_alert_topic("a/{site", &a, buf, sizeof(buf)), IW_E_INVAL);
    cr_assert_eq(iw_alert_topic("alerts/{severity}/{site}", &a, buf, 10), IW_E_FULL);
}

Test(alert, silence_match_keys_and_window)
{
    struct iw_kv labels[1] = { { "team", "cams" } };
    struct iw_kv m[2] = { { "rule", "camera-*" }, { "team", "cams" } };
    struct iw_silence_cfg s = { .match = m, .n_match = 2, .from_ms = 100, .to_ms = 200 };
    struct iw_alert a = { .rule = "camera-offline", .site = "x", .device = "d", .source = "camera",
                          .labels = labels, .n_labels = 1 };

    cr_assert(iw_alert_silence_matches(&s, &a, 100));
    cr_assert_not(iw_alert_silence_matches(&s, &a, 200), "to is exclusive");
    cr_assert_not(iw_alert_silence_matches(&s, &a, 99));
    a.rule = "water-class";
    cr_assert_not(iw_alert_silence_matches(&s, &a, 150));
    m[0] = (struct iw_kv){ "metric", "" };
    cr_assert(iw_alert_silence_matches(&s, &a, 150), "no metric matches the empty glob");
}

/* ==========================================================================
 * Templates and units
 * ======================================================================== */

Test(alert, templates_render)
{
    struct iw_tmpl_var v[] = { { "site", "dongtan" }, { "class", "劣V" }, { "value", NULL } };
    char buf[64], small[8];
    const char *bad = NULL;

    iw_template_render("{site} is {class} {{x}} {unknown} [{value}]", v, 3, buf, sizeof(buf));
    cr_assert_str_eq(buf, "dongtan is 劣V {x} {unknown} []");
    iw_template_render("{class}{class}{class}", v, 3, small, sizeof(small));
    cr_assert_str_eq(small, "劣V劣", "cut at a character boundary, not inside 劣");
    iw_template_render("ab劣", v, 3, small, 5);
    cr_assert_str_eq(small, "ab", "a literal multi-byte character is not cut either");
    cr_assert(iw_template_check("{site}/{device} {class_zh} {primary_zh} {{literal}}", NULL));
    cr_assert_not(iw_template_check("{site} {clas}", &bad));
    cr_assert_str_eq(bad, "{clas}");
}

Test(alert, units_and_display_names)
{
    cr_assert_str_eq(iw_metric_unit("nh3_n"), "mg/L");
    cr_assert_str_eq(iw_metric_unit("co"), "mg/m³");
    cr_assert_str_eq(iw_metric_unit("pm25"), "μg/m³");
    cr_assert_null(iw_metric_unit("ph"), "pH is dimensionless");
    cr_assert_null(iw_metric_unit("fps"));
    cr_assert_str_eq(iw_metric_display("nh3_n"), "NH3-N");
    cr_assert_str_eq(iw_metric_display("pm25"), "PM2.5");
    cr_assert_str_eq(iw_metric_display("fps"), "fps");
}
