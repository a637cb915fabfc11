/* Topic pattern capture, label validity and globs. */
#include <criterion/criterion.h>
#include <string.h>

#include "islewatch/err.h"
#include "islewatch/topic.h"

static bool match(const char *pattern, const char *topic, char *site, char *dev)
{
    struct iw_topic_pattern p;
    struct iw_topic_match m;
    const char *why;
    cr_assert_eq(iw_topic_compile(pattern, &p, &why), IW_OK, "%s", pattern);
    bool ok = iw_topic_match(&p, topic, strlen(topic), &m);
    if (ok) {
        memcpy(site, m.site, m.site_len);
        site[m.site_len] = '\0';
        memcpy(dev, m.device, m.device_len);
        dev[m.device_len] = '\0';
    }
    iw_topic_pattern_fini(&p);
    return ok;
}

Test(topic, captures_site_and_device)
{
    char s[64], d[64];
    cr_assert(match("sensors/water/{site}/{device}", "sensors/water/dongtan/w01", s, d));
    cr_assert_str_eq(s, "dongtan");
    cr_assert_str_eq(d, "w01");
    cr_assert(match("cameras/{site}/{device}/status", "cameras/hengsha/c02/status", s, d));
    cr_assert_str_eq(d, "c02");
    cr_assert_not(match("cameras/{site}/{device}/status", "cameras/hengsha/c02/event", s, d));
    cr_assert_not(match("sensors/water/{site}/{device}", "sensors/water/dongtan", s, d));
    cr_assert_not(match("sensors/water/{site}/{device}", "sensors/water/dongtan/w01/x", s, d));
    cr_assert_not(match("sensors/water/{site}/{device}", "sensors/air/dongtan/w01", s, d));
}

Test(topic, filter_uses_plus)
{
    struct iw_topic_pattern p;
    const char *why;
    cr_assert_eq(iw_topic_compile("cameras/{site}/{device}/event", &p, &why), IW_OK);
    cr_assert_str_eq(p.filter, "cameras/+/+/event");
    iw_topic_pattern_fini(&p);
}

Test(topic, malformed_patterns)
{
    static const char *bad[] = { "sensors/{site}", "a/{site}x/{device}", "a/+/{site}/{device}",
                                 "a//{site}/{device}", "a/#/{site}/{device}", "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct iw_topic_pattern p;
        const char *why = NULL;
        cr_expect_eq(iw_topic_compile(bad[i], &p, &why), IW_E_INVAL, "%s", bad[i]);
        cr_expect_not_null(why, "%s has a reason", bad[i]);
    }
}

Test(topic, labels)
{
    cr_assert(iw_label_valid("dongtan", 7));
    cr_assert(iw_label_valid("\xe4\xb8\x9c\xe6\xbb\xa9", 6));
    cr_assert_not(iw_label_valid("", 0));
    cr_assert_not(iw_label_valid("a+b", 3));
    cr_assert_not(iw_label_valid("a#", 2));
    cr_assert_not(iw_label_valid("a/b", 3));
    cr_assert_not(iw_label_valid("\xc3\x28", 2));
    cr_assert_not(iw_label_valid("\xed\xa0\x80", 3), "a UTF-16 surrogate is not UTF-8");
    cr_assert_not(iw_label_valid("\xc0\xaf", 2), "overlong form");
    cr_assert_not(iw_label_valid("\xe4\xb8", 2), "truncated sequence");
    char lng[IW_LABEL_MAX + 2];
    memset(lng, 'a', sizeof(lng));
    cr_assert(iw_label_valid(lng, IW_LABEL_MAX), "%d bytes are allowed", IW_LABEL_MAX);
    cr_assert_not(iw_label_valid(lng, IW_LABEL_MAX + 1), "a longer name would be cut in alerts");
}

Test(topic, globs)
{
    cr_assert(iw_glob_match("water/*/*/nh3_n", "water/dongtan/w01/nh3_n"));
    cr_assert_not(iw_glob_match("water/*/*/nh3_n", "water/dongtan/w01/do"));
    cr_assert_not(iw_glob_match("water/*/*", "water/dongtan/w01/do"), "'*' is one level");
    cr_assert(iw_glob_match("water/**", "water/dongtan/w01/do"));
    cr_assert(iw_glob_match("camera-*", "camera-offline"));
    cr_assert(iw_glob_match("water/dong*/w0?/*", "water/dongtan/w01/ph"));
    cr_assert_not(iw_glob_match("water/*/w01/ph", "water/dongtan/w01"));
    cr_assert(iw_glob_match("*", "water"));
}

/* A '*' in the glob is a wildcard even where the name has a '*' of its own
 * (MQTT allows it in a topic level, so in a site or device name). */
Test(topic, a_star_in_the_glob_is_a_wildcard_facing_a_star_in_the_name)
{
    cr_expect(iw_glob_match("water/a*/*/ph", "water/a*b/w01/ph"));
    cr_expect(iw_glob_match("water/*b/*/ph", "water/a*b/w01/ph"));
    cr_expect(iw_glob_match("cam*", "cam*1"));
    cr_expect(iw_glob_match("a*b", "a*b"));
}

Test(topic, select_match_covers_series_and_devices)
{
    cr_expect(iw_select_match("water/*/*", "water", "s1", "w1", "nh3_n"), "3 levels: every metric");
    cr_expect(iw_select_match("water/*/*/nh3_n", "water", "s1", "w1", "nh3_n"));
    cr_expect_not(iw_select_match("water/*/*/nh3_n", "water", "s1", "w1", "ph"));
    cr_expect_not(iw_select_match("air/*/*", "water", "s1", "w1", "ph"));
    cr_expect_not(iw_select_match("water/s2/*", "water", "s1", "w1", NULL));
    cr_expect(iw_select_match("water/s*/*", "water", "s1", "w1", NULL), "the device");
    cr_expect(iw_select_match("water/*/*/ph", "water", "s1", "w1", NULL), "a metric of it");
    cr_expect_not(iw_select_match("water/*", "water", "s1", "w1", NULL), "2 levels: nothing");
    cr_expect_not(iw_select_match("water/*/*/*/*", "water", "s1", "w1", "ph"), "5 levels: nothing");
}
