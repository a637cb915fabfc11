/*
 * Run-time silences without a store: creation and its validation messages,
 * listing (config and run-time), matching, deletion. Persistence across a
 * restart is covered by tests/integration/test_http.c.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "islewatch/alert.h"
#include "islewatch/silences.h"

#define NOW 1800000000000LL

static void reset(void) { iw_silences_reset(); }

TestSuite(silences, .init = reset, .fini = reset);

static int create(const char *json, char *id, struct iw_diag *diag)
{
    return iw_silences_create(NULL, json, strlen(json), "tester", NOW, id, diag);
}

static struct iw_alert alert(const char *rule, const char *site, enum iw_severity sev)
{
    struct iw_alert a = { .rule = rule, .source = "water", .site = site, .device = "w01",
                          .metric = "nh3_n", .severity = sev, .message = "m", .rule_hash = "h" };
    return a;
}

Test(silences, created_silence_matches_inside_its_window)
{
    char id[IW_SILENCE_ID_LEN + 1];
    struct iw_diag diag = {0};
    struct iw_alert hit = alert("camera-offline", "dongtan", IW_SEV_MAJOR);
    struct iw_alert other_site = alert("camera-offline", "xisha", IW_SEV_MAJOR);
    struct iw_alert other_rule = alert("nh3n", "dongtan", IW_SEV_MAJOR);

    cr_assert_eq(create("{\"match\":{\"site\":\"dongtan\",\"rule\":\"camera-*\"},"
                        "\"duration\":\"2h\",\"reason\":\"maintenance\"}", id, &diag), IW_OK,
                 "%s", iw_diag_first(&diag));
    cr_expect_eq(strlen(id), IW_SILENCE_ID_LEN);
    cr_expect(iw_silences_match(&hit, NOW));
    cr_expect(iw_silences_match(&hit, NOW + 2 * 3600000LL - 1));
    cr_expect_not(iw_silences_match(&hit, NOW + 2 * 3600000LL), "to is exclusive");
    cr_expect_not(iw_silences_match(&hit, NOW - 1), "before from");
    cr_expect_not(iw_silences_match(&other_site, NOW));
    cr_expect_not(iw_silences_match(&other_rule, NOW));
}

/* Like a silence in the config, one created without "to" or "duration" has no end. */
Test(silences, without_an_end_a_silence_is_open_ended)
{
    char id[IW_SILENCE_ID_LEN + 1], *text = NULL;
    struct iw_diag diag = {0};
    struct iw_alert hit = alert("camera-offline", "dongtan", IW_SEV_MAJOR);

    cr_assert_eq(create("{\"match\":{\"site\":\"dongtan\"},\"reason\":\"dredging\"}", id,
                        &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_expect(iw_silences_match(&hit, NOW));
    cr_expect(iw_silences_match(&hit, NOW + 3650 * 86400000LL));
    cr_expect_not(iw_silences_match(&hit, NOW - 1), "before from");
    cr_assert_eq(iw_silences_list_json(NULL, NOW, &text), IW_OK);
    cJSON *arr = cJSON_Parse(text);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "to")), "%s", text);
    cJSON_Delete(arr);
    free(text);
}

Test(silences, explicit_from_and_to_accept_rfc3339_and_epoch_ms)
{
    char id[IW_SILENCE_ID_LEN + 1];
    struct iw_diag diag = {0};
    struct iw_alert a = alert("r", "s", IW_SEV_INFO);

    cr_assert_eq(create("{\"match\":{\"rule\":\"r\"},\"from\":1800000600000,"
                        "\"to\":\"2027-01-15T09:00:00Z\"}", id, &diag), IW_OK, "%s",
                 iw_diag_first(&diag));
    cr_expect_not(iw_silences_match(&a, NOW), "from is 10 min after now");
    cr_expect(iw_silences_match(&a, NOW + 600000));
}

/* Arrays, not pointers: Criterion may run each case in a re-executed process. */
struct bad_body {
    char json[128];
    char needle[64];
};

ParameterizedTestParameters(silences, rejects_bad_bodies)
{
    static struct bad_body cases[] = {
        { "not json", "not valid JSON" },
        /* cJSON alone reads the first value and ignores the rest. */
        { "{\"match\":{\"site\":\"a\"},\"duration\":\"1h\"} x", "not valid JSON" },
        { "{\"match\":{\"site\":\"a\"},\"duration\":\"1h\"}{\"reason\":\"r\"}", "not valid JSON" },
        { "[1,2]", "expected a JSON object" },
        { "{\"duration\":\"1h\"}", "\"match\": expected an object" },
        { "{\"match\":{},\"duration\":\"1h\"}", "an empty match would silence everything" },
        { "{\"match\":{\"sitex\":\"a\"},\"duration\":\"1h\"}", "unknown key \"sitex\"" },
        { "{\"match\":{\"site\":5},\"duration\":\"1h\"}", "\"match.site\": expected a non-empty" },
        { "{\"match\":{\"severity\":\"huge\"},\"duration\":\"1h\"}", "is not one of info" },
        { "{\"match\":{\"site\":\"a\"},\"duration\":\"soon\"}", "expected a positive duration" },
        { "{\"match\":{\"site\":\"a\"},\"duration\":\"0s\"}", "expected a positive duration" },
        { "{\"match\":{\"site\":\"a\"},\"to\":\"tomorrow\"}", "\"to\": expected a time" },
        { "{\"match\":{\"site\":\"a\"},\"from\":\"+2h\",\"to\":\"+1h\"}", "must be after" },
        { "{\"match\":{\"site\":\"a\"},\"from\":\"-2h\",\"to\":\"-1h\"}", "in the past" },
        { "{\"match\":{\"site\":\"a\"},\"duration\":\"1h\",\"reason\":7}", "\"reason\": expected" },
        /* A misspelt key would otherwise leave an open-ended silence. */
        { "{\"match\":{\"site\":\"a\"},\"duraton\":\"1h\"}", "unknown key \"duraton\"" },
        { "{\"match\":{\"site\":\"a\"},\"to\":\"+2h\",\"duration\":\"1h\"}", "either" },
        /* No alert's site or rule has '/', '+' or '#': a silence that matches nothing,
         * refused in the config file too. */
        { "{\"match\":{\"site\":\"a/b\"},\"duration\":\"1h\"}", "\"match.site\": \"a/b\" must be a single" },
        { "{\"match\":{\"rule\":\"camera-#\"},\"duration\":\"1h\"}", "not MQTT's '+' or '#'" },
        /* cJSON would cut the name at the NUL: a silence of another site. */
        { "{\"match\":{\"site\":\"a\\u0000b\"},\"duration\":\"1h\"}", "NUL character" },
    };
    return cr_make_param_array(struct bad_body, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_body *b, silences, rejects_bad_bodies)
{
    char id[IW_SILENCE_ID_LEN + 1] = "x";
    struct iw_diag diag = {0};
    char *list = NULL;

    cr_expect_eq(create(b->json, id, &diag), IW_E_INVAL, "%s", b->json);
    cr_expect(strstr(iw_diag_first(&diag), b->needle) != NULL, "%s -> %s", b->json,
              iw_diag_first(&diag));
    cr_expect_str_eq(id, "");
    cr_assert_eq(iw_silences_list_json(NULL, NOW, &list), IW_OK);
    cr_expect_str_eq(list, "[]", "nothing was added");
    free(list);
    iw_diag_fini(&diag);
}

Test(silences, list_shows_config_then_runtime_silences)
{
    char id[IW_SILENCE_ID_LEN + 1], *text = NULL;
    struct iw_diag diag = {0};
    struct iw_kv m = { "site", "xisha" };
    struct iw_silence_cfg cs = { .match = &m, .n_match = 1, .from_ms = INT64_MIN,
                                 .to_ms = INT64_MAX, .reason = "typhoon" };
    struct iw_config cfg = { .silences = &cs, .n_silences = 1 };

    cr_assert_eq(create("{\"match\":{\"device\":\"cam*\"},\"duration\":\"30m\","
                        "\"created_by\":\"ops1\"}", id, &diag), IW_OK);
    cr_assert_eq(iw_silences_list_json(&cfg, NOW, &text), IW_OK);
    cJSON *arr = cJSON_Parse(text);
    cr_assert_eq(cJSON_GetArraySize(arr), 2, "%s", text);

    cJSON *c = cJSON_GetArrayItem(arr, 0), *r = cJSON_GetArrayItem(arr, 1);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(c, "id")));
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(c, "source")), "config");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(c, "reason")), "typhoon");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(c, "to")), "unbounded is null");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(c, "active")));

    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "id")), id);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "source")), "api");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "created_by")), "ops1");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "match"),
                                                              "device")), "cam*");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "from")),
                     "2027-01-15T08:00:00.000Z");
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "to")),
                     "2027-01-15T08:30:00.000Z");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(r, "active")));
    cJSON_Delete(arr);
    free(text);
}

Test(silences, default_creator_is_used_when_the_body_has_none)
{
    char id[IW_SILENCE_ID_LEN + 1], *text = NULL;
    struct iw_diag diag = {0};
    cr_assert_eq(create("{\"match\":{\"site\":\"a\"},\"duration\":\"1h\"}", id, &diag), IW_OK);
    cr_assert_eq(iw_silences_list_json(NULL, NOW, &text), IW_OK);
    cr_expect(strstr(text, "\"created_by\":\"tester\"") != NULL, "%s", text);
    free(text);
}

Test(silences, delete_removes_exactly_one)
{
    char a[IW_SILENCE_ID_LEN + 1], b[IW_SILENCE_ID_LEN + 1], *text = NULL;
    struct iw_diag diag = {0};
    struct iw_alert x = alert("r", "a", IW_SEV_INFO);

    cr_assert_eq(create("{\"match\":{\"site\":\"a\"},\"duration\":\"1h\"}", a, &diag), IW_OK);
    cr_assert_eq(create("{\"match\":{\"site\":\"b\"},\"duration\":\"1h\"}", b, &diag), IW_OK);
    cr_expect_str_neq(a, b, "ids are unique");
    cr_expect(iw_silences_match(&x, NOW));
    cr_expect_eq(iw_silences_delete(NULL, a), IW_OK);
    cr_expect_eq(iw_silences_delete(NULL, a), IW_E_NOTFOUND, "already gone");
    cr_expect_not(iw_silences_match(&x, NOW));
    cr_assert_eq(iw_silences_list_json(NULL, NOW, &text), IW_OK);
    cr_expect(strstr(text, b) != NULL && strstr(text, a) == NULL, "%s", text);
    free(text);
}

Test(silences, severity_glob_matches_by_name)
{
    char id[IW_SILENCE_ID_LEN + 1];
    struct iw_diag diag = {0};
    struct iw_alert crit = alert("r", "a", IW_SEV_CRITICAL), info = alert("r", "a", IW_SEV_INFO);

    cr_assert_eq(create("{\"match\":{\"severity\":\"critical\"},\"duration\":\"1h\"}", id, &diag),
                 IW_OK);
    cr_expect(iw_silences_match(&crit, NOW));
    cr_expect_not(iw_silences_match(&info, NOW));
}

/*
 * Expired silences do not count against IW_SILENCES_MAX: a site silenced
 * for every maintenance window would otherwise be refused (409) after a
 * thousand of them, until someone deleted the old ones by hand. When the
 * list is full, the expired ones go; silences still running stay.
 */
Test(silences, expired_silences_make_room_for_new_ones)
{
    char id[IW_SILENCE_ID_LEN + 1], keep[IW_SILENCE_ID_LEN + 1];
    struct iw_diag diag = {0};
    struct iw_alert hit = alert("camera-offline", "dongtan", IW_SEV_MAJOR);
    const char *hour = "{\"match\":{\"site\":\"xisha\"},\"duration\":\"1h\"}";
    const char *day = "{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1d\"}";

    cr_assert_eq(create(day, keep, &diag), IW_OK, "%s", iw_diag_first(&diag));
    for (int i = 1; i < IW_SILENCES_MAX; i++)
        cr_assert_eq(create(hour, id, &diag), IW_OK, "silence %d: %s", i, iw_diag_first(&diag));
    cr_expect_eq(create(hour, id, &diag), IW_E_FULL, "all %d still running", IW_SILENCES_MAX);
    iw_diag_fini(&diag);

    /* Two hours later the one-hour ones are over. */
    int64_t later = NOW + 2 * 3600000LL;
    cr_expect_eq(iw_silences_create(NULL, hour, strlen(hour), "tester", later, id, &diag), IW_OK,
                 "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
    char *list = NULL;
    cr_assert_eq(iw_silences_list_json(NULL, later, &list), IW_OK);
    cJSON *doc = cJSON_Parse(list);
    cr_expect_eq(cJSON_GetArraySize(doc), 2, "the running day-long one and the new one");
    cr_expect(strstr(list, keep) != NULL, "the day-long silence stays");
    cJSON_Delete(doc);
    free(list);
    cr_expect(iw_silences_match(&hit, later));
}
