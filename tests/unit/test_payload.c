/* SPEC §1 payload rules and rejection reasons. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/payload.h"

#define NOW 1764417600000LL

static struct iw_decoded d;

static int decode_opts(const char *p, bool event, int64_t max_age)
{
    struct iw_payload_opts o = { .ts_field = "ts", .event = event, .now_ms = NOW,
                                 .max_future_skew_ms = 300000, .max_age_ms = max_age };
    return iw_payload_decode(p, strlen(p), &o, &d);
}

static int decode(const char *p) { return decode_opts(p, false, 90LL * 86400000); }

static double value_of(const char *metric)
{
    for (size_t i = 0; i < d.n; i++)
        if (strcmp(d.s[i].metric, metric) == 0)
            return d.s[i].value;
    cr_assert_fail("metric %s not decoded", metric);
    return NAN;
}

static char flag_of(const char *metric)
{
    for (size_t i = 0; i < d.n; i++)
        if (strcmp(d.s[i].metric, metric) == 0)
            return d.s[i].flag;
    cr_assert_fail("metric %s not decoded", metric);
    return '?';
}

Test(payload, spec_water_example)
{
    cr_assert_eq(decode("{\"ts\":1764417600000,\"ph\":7.4,\"do\":6.2,\"codmn\":4.1,\"nh3_n\":0.82,"
                        "\"tp\":0.15,\"tn\":1.1,\"temp\":14.2,\"turbidity\":12}"), -1);
    cr_assert_eq(d.n, 8);
    cr_assert_eq(d.ts, 1764417600000LL);
    cr_assert_eq(value_of("nh3_n"), 0.82);
    cr_assert_eq(value_of("turbidity"), 12.0);
}

Test(payload, booleans_are_one_and_zero_strings_are_labels)
{
    cr_assert_eq(decode("{\"online\":true,\"disk_ok\":false,\"fps\":25,\"model\":\"DS-2CD\"}"), -1);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(value_of("online"), 1.0);
    cr_assert_eq(value_of("disk_ok"), 0.0);
    cr_assert_eq(d.ts, NOW, "absent ts is the time of receipt");
}

struct ts_case { const char *payload; long long want; };

/* Each payload decodes, with the ts it gives. */
static void expect_ts(const struct ts_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(decode(cases[i].payload), -1, "%s", cases[i].payload);
        cr_expect_eq(d.ts, cases[i].want, "%s: got %lld", cases[i].payload, (long long)d.ts);
    }
}

Test(payload, three_timestamp_forms)
{
    static const struct ts_case cases[] = {
        { "{\"ts\":1764417600123,\"x\":1}", 1764417600123LL },
        { "{\"ts\":1764417600.5,\"x\":1}", 1764417600500LL },
        { "{\"ts\":1764417600.0,\"x\":1}", 1764417600000LL },
        { "{\"ts\":1.7644176e9,\"x\":1}", 1764417600000LL },
        { "{\"ts\":\"2025-11-29T12:00:00Z\",\"x\":1}", 1764417600000LL },
        { "{\"ts\":\"2025-11-29T20:00:00.250+08:00\",\"x\":1}", 1764417600250LL },
    };
    expect_ts(cases, sizeof(cases) / sizeof(cases[0]));
}

struct rej_case { const char *payload; int reason; };

Test(payload, message_level_rejections)
{
    static const struct rej_case cases[] = {
        { "", IW_REJ_NOT_JSON },
        { "hello", IW_REJ_NOT_JSON },
        { "{\"ph\":7.4", IW_REJ_NOT_JSON },
        { "{\"ph\":7.4} x", IW_REJ_NOT_JSON },
        { "{\"ph\":07}", IW_REJ_NOT_JSON },
        { "{'ph':7}", IW_REJ_NOT_JSON },
        { "[1,2]", IW_REJ_NOT_OBJECT },
        { "42", IW_REJ_NOT_OBJECT },
        { "\"text\"", IW_REJ_NOT_OBJECT },
        { "{\"ts\":1764417900001,\"x\":1}", IW_REJ_TS_FUTURE },
        { "{\"ts\":1756000000000,\"x\":1}", IW_REJ_TS_TOO_OLD },
        { "{\"ts\":\"yesterday\",\"x\":1}", IW_REJ_BAD_TS },
        { "{\"ts\":true,\"x\":1}", IW_REJ_BAD_TS },
        { "{\"flag\":\"Q\",\"x\":1}", IW_REJ_BAD_FLAG },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(decode(cases[i].payload), cases[i].reason, "%s -> %d", cases[i].payload,
                     decode(cases[i].payload));
}

Test(payload, future_skew_boundary_is_inclusive)
{
    cr_assert_eq(decode("{\"ts\":1764417900000,\"x\":1}"), -1, "exactly 5 min ahead is accepted");
}

Test(payload, bad_members_are_dropped_good_ones_kept)
{
    cr_assert_eq(decode("{\"a\":1e999,\"b\":NaN,\"c\":-Infinity,\"d\":2.5,\"e/x\":1,"
                        "\"f\":{\"g\":1},\"h\":null,\"i#\":3,\"j\":[1,2]}"), -1);
    cr_assert_eq(d.n, 1);
    cr_assert_eq(value_of("d"), 2.5);
    cr_expect_eq(d.member_rejects[IW_REJ_NON_FINITE], 3);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 2);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_MEMBER], 3);
}

/* A member nested deeper than the old recursive skipper's 64 levels made the
 * whole message "not JSON" and lost its good members (fuzzing audit). */
Test(payload, a_deeply_nested_member_is_dropped_not_the_message)
{
    static const int depth[] = { 64, 65, 1000, 30000 };

    for (size_t k = 0; k < sizeof(depth) / sizeof(depth[0]); k++) {
        int n = depth[k];
        char *p = malloc((size_t)n * 8 + 64), *q = p;
        q += sprintf(q, "{\"ph\":7,\"x\":");
        for (int i = 0; i < n; i++)
            q += sprintf(q, i % 2 ? "{\"k\":" : "[1,");
        q += sprintf(q, "0");
        for (int i = n - 1; i >= 0; i--)
            *q++ = i % 2 ? '}' : ']';
        sprintf(q, ",\"do\":6}");
        cr_assert_eq(decode(p), -1, "depth %d", n);
        cr_assert_eq(d.n, 2, "depth %d", n);
        cr_expect_eq(value_of("do"), 6.0);
        cr_expect_eq(d.member_rejects[IW_REJ_BAD_MEMBER], 1, "depth %d", n);
        /* Deep and broken: not JSON. */
        q[-1] = q[-1] == '}' ? ']' : '}';
        cr_expect_eq(decode(p), IW_REJ_NOT_JSON, "mismatched close at depth %d", n);
        free(p);
    }
    cr_expect_eq(decode("{\"a\":[1,{\"b\":[true,null,\"s\"]},[]],\"v\":1}"), -1);
    cr_expect_eq(d.n, 1);
    cr_expect_eq(decode("{\"a\":[1,],\"v\":1}"), IW_REJ_NOT_JSON);
    cr_expect_eq(decode("{\"a\":{\"b\"},\"v\":1}"), IW_REJ_NOT_JSON);
    cr_expect_eq(decode("{\"a\":{\"b\":1,},\"v\":1}"), IW_REJ_NOT_JSON);
    cr_expect_eq(decode("{\"a\":[[[[1]]],\"v\":1}"), IW_REJ_NOT_JSON);
    cr_expect_eq(decode("[[[[[1]]]]]"), IW_REJ_NOT_OBJECT);
    cr_expect_eq(decode("[[[[[1]]]]"), IW_REJ_NOT_JSON);
}

Test(payload, invalid_utf8_label_is_dropped)
{
    cr_assert_eq(decode("{\"ok\":1,\"bad\xff\":2,\"loc\":\"\xc3\x28\"}"), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 2);
}

/* An escaped lone surrogate is valid JSON but not a character: the label or
 * member name holding it is dropped like raw invalid UTF-8, the rest kept. */
Test(payload, a_lone_surrogate_escape_drops_its_member_not_the_message)
{
    cr_assert_eq(decode("{\"model\":\"\\udc00\",\"v\":1}"), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 1);
    cr_assert_eq(decode("{\"model\":\"a\\ud800\",\"\\ud800x\":2,\"v\":1}"), -1);
    cr_assert_eq(d.n, 1);
    cr_expect(strcmp(d.s[0].metric, "v") == 0);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 2);
    /* A high surrogate followed by an escape that is not its pair: both read. */
    cr_assert_eq(decode("{\"m\":\"\\ud800\\u0041\",\"v\":1}"), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 1);
    /* A proper pair is one character and a good label. */
    cr_assert_eq(decode("{\"m\":\"\\ud83d\\ude00\",\"v\":1}"), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 0);
    cr_expect_eq(decode("{\"m\":\"\\ud800\\u12\",\"v\":1}"), IW_REJ_NOT_JSON,
                 "a short escape is still not JSON");
}

Test(payload, a_message_whose_only_sample_is_non_finite_keeps_nothing_and_says_why)
{
    cr_assert_eq(decode("{\"ph\":1e999}"), -1, "member-level: the message is not rejected whole");
    cr_expect_eq(d.n, 0);
    cr_expect_eq(d.member_rejects[IW_REJ_NON_FINITE], 1);
    cr_assert_eq(d.n_member_reasons, 1);
    cr_expect_eq(d.member_reasons[0], IW_REJ_NON_FINITE);
}

Test(payload, label_values_with_slash_plus_or_hash_are_bad_labels)
{
    static const char *const cases[] = {
        "{\"ph\":7,\"lbl\":\"a+b\"}", "{\"ph\":7,\"site\":\"a/b\"}",
        "{\"lbl\":\"#\",\"ph\":7}", "{\"ph\":7,\"lbl\":\"a\\/b\"}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(decode(cases[i]), -1, "%s", cases[i]);
        cr_expect_eq(d.n, 1, "%s: ph is kept", cases[i]);
        cr_expect_eq(value_of("ph"), 7.0);
        cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 1, "%s", cases[i]);
        cr_expect_eq(d.n_member_reasons, 1, "%s", cases[i]);
        cr_expect_eq(d.member_reasons[0], IW_REJ_BAD_LABEL, "%s", cases[i]);
    }
}

Test(payload, valid_label_values_are_accepted_as_before)
{
    /* Empty, spaces, non-ASCII and a site label that differs from the topic's. */
    cr_assert_eq(decode("{\"ph\":7,\"note\":\"\",\"name\":\"\xe4\xb8\x9c\xe6\xbb\xa9 1\","
                        "\"site\":\"elsewhere\",\"model\":\"DS-2CD_3.1 (a=b)\"}"), -1);
    cr_expect_eq(d.n, 1);
    cr_expect_eq(d.n_member_reasons, 0);
    for (int r = 0; r < IW_REJ_COUNT; r++)
        cr_expect_eq(d.member_rejects[r], 0, "reason %s", iw_reject_name((enum iw_reject)r));
}

Test(payload, member_reasons_are_each_listed_once_in_payload_order)
{
    cr_assert_eq(decode("{\"x#\":5,\"ph\":1e999,\"do\":-1e999,\"tp\":1,\"h\":null,"
                        "\"lbl\":\"a+b\",\"q\":NaN}"), -1);
    cr_expect_eq(d.n, 1);
    cr_expect_eq(value_of("tp"), 1.0);
    cr_expect_eq(d.member_rejects[IW_REJ_NON_FINITE], 3, "members are still counted one by one");
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], 2);
    cr_expect_eq(d.member_rejects[IW_REJ_BAD_MEMBER], 1);
    cr_assert_eq(d.n_member_reasons, 3);
    cr_expect_eq(d.member_reasons[0], IW_REJ_BAD_LABEL);
    cr_expect_eq(d.member_reasons[1], IW_REJ_NON_FINITE);
    cr_expect_eq(d.member_reasons[2], IW_REJ_BAD_MEMBER);

    /* The next decode starts afresh. */
    cr_assert_eq(decode("{\"ph\":7}"), -1);
    cr_expect_eq(d.n_member_reasons, 0);
}

Test(payload, escaped_names_and_unicode)
{
    cr_assert_eq(decode("{\"n\\u0068\\u0033_n\":1.5,\"\\u6c34\\u6e29\":14}"), -1);
    cr_assert_eq(value_of("nh3_n"), 1.5);
    cr_assert_eq(value_of("\xe6\xb0\xb4\xe6\xb8\xa9"), 14.0);
}

Test(payload, hj212_flags)
{
    cr_assert_eq(decode("{\"flag\":\"D\",\"ph\":7,\"do\":5,\"do_flag\":\"N\"}"), -1);
    cr_assert_eq(flag_of("ph"), 'D');
    cr_assert_eq(flag_of("do"), 0, "a per-metric N overrides the message flag");
    cr_assert_eq(decode("{\"nh3_n_flag\":\"C\",\"nh3_n\":0.5,\"tp\":0.1}"), -1);
    cr_assert_eq(flag_of("nh3_n"), 'C', "a flag member before its metric applies");
    cr_assert_eq(flag_of("tp"), 0);
    /* The message's own N is kept (a message of no sample may say it), its
     * samples carry 0 for it; a flag alone is a message without samples. */
    cr_assert_eq(decode("{\"flag\":\"N\",\"ph\":7}"), -1);
    cr_assert_eq(d.msg_flag, 'N');
    cr_assert_eq(flag_of("ph"), 0);
    cr_assert_eq(decode("{\"ts\":1764417600000,\"flag\":\"d\"}"), -1);
    cr_assert_eq(d.n, 0);
    cr_assert_eq(d.msg_flag, 'D');
    cr_assert_eq(decode("{\"tp_flag\":\"bad\",\"tp\":0.1,\"ph\":7}"), -1);
    cr_assert_eq(d.n, 1, "a metric with a malformed flag is dropped");
    cr_assert_eq(d.member_rejects[IW_REJ_BAD_FLAG], 1);
}

Test(payload, event_sources)
{
    cr_assert_eq(decode_opts("{\"ts\":1764417600000,\"type\":\"tamper\",\"state\":\"start\"}", true, 0), -1);
    cr_assert_eq(d.n, 1);
    cr_assert_str_eq(d.s[0].metric, "tamper");
    cr_assert_eq(d.s[0].value, 1.0);
    cr_assert_eq(decode_opts("{\"type\":\"video_loss\",\"state\":\"stop\"}", true, 0), -1);
    cr_assert_eq(d.s[0].value, 0.0);
    cr_expect_eq(decode_opts("{\"type\":\"tamper\"}", true, 0), IW_REJ_BAD_EVENT);
    cr_expect_eq(decode_opts("{\"type\":\"tamper\",\"state\":\"maybe\"}", true, 0), IW_REJ_BAD_EVENT);
    cr_expect_eq(decode_opts("{\"type\":\"a/b\",\"state\":\"start\"}", true, 0), IW_REJ_BAD_EVENT);
}

/* A flag is an HJ 212 letter (SPEC section 1). A number or boolean in its
 * place is a bad flag, as "Q" is: not a metric named "flag" or "ph_flag",
 * and never a flagged metric left unflagged. */
Test(payload, a_flag_that_is_not_a_letter_is_a_bad_flag)
{
    cr_expect_eq(decode("{\"flag\":7,\"do\":5}"), IW_REJ_BAD_FLAG);
    cr_expect_eq(decode("{\"flag\":true,\"do\":5}"), IW_REJ_BAD_FLAG);
    cr_assert_eq(decode("{\"ph\":5,\"ph_flag\":7,\"do\":6}"), -1);
    cr_assert_eq(d.n, 1, "ph with a numeric flag is dropped, do kept: %zu samples", d.n);
    cr_assert_str_eq(d.s[0].metric, "do");
    cr_assert_eq(d.member_rejects[IW_REJ_BAD_FLAG], 1);
    cr_assert_eq(decode("{\"ph_flag\":false,\"ph\":5}"), -1);
    cr_assert_eq(d.n, 0);
}

/* RFC 8259 section 8.1: a parser may ignore a UTF-8 byte order mark, and
 * some device firmware writes one. Only at the start. */
Test(payload, a_leading_byte_order_mark_is_ignored)
{
    cr_assert_eq(decode("\xEF\xBB\xBF{\"ph\":7}"), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_eq(decode("{\"ph\":7}\xEF\xBB\xBF"), IW_REJ_NOT_JSON);
}

Test(payload, every_reason_has_a_name)
{
    for (int r = 0; r < IW_REJ_COUNT; r++)
        cr_expect_neq(strcmp(iw_reject_name((enum iw_reject)r), "unknown"), 0, "reason %d", r);
}

Test(payload, rfc3339_ts_with_a_day_the_month_does_not_have_is_bad_ts)
{
    /* Not rolled over into the next month (2025-10-01) and stored there. */
    cr_assert_eq(decode("{\"ts\":\"2025-09-31T10:00:00Z\",\"x\":1}"), IW_REJ_BAD_TS);
    cr_assert_eq(decode("{\"ts\":\"2025-02-29T10:00:00Z\",\"x\":1}"), IW_REJ_BAD_TS);
    cr_assert_eq(decode("{\"ts\":\"2025-10-31T10:00:00Z\",\"x\":1}"), -1);
    cr_assert_eq(d.ts, 1761904800000LL);
    /* Second 60 only as a leap second (23:59:60 UTC), read as the next second. */
    cr_assert_eq(decode("{\"ts\":\"2025-10-31T10:00:60Z\",\"x\":1}"), IW_REJ_BAD_TS);
    cr_assert_eq(decode("{\"ts\":\"2025-11-28T23:59:60.5Z\",\"x\":1}"), -1);
    cr_assert_eq(d.ts, 1764374400500LL);
    cr_assert_eq(decode("{\"ts\":\"2025-11-29T07:59:60+08:00\",\"x\":1}"), -1);
    cr_assert_eq(d.ts, 1764374400000LL);
}

Test(payload, a_real_ts_too_large_for_seconds_is_milliseconds)
{
    /* SPEC §1: integer ms or seconds with a fraction. A real that is no
     * plausible count of seconds (past the year 5000) is ms written as a real. */
    cr_assert_eq(decode("{\"ts\":1.7644176e12,\"ph\":7}"), -1);
    cr_assert_eq(d.ts, 1764417600000LL);
    cr_assert_eq(decode("{\"ts\":1764417600000.0,\"ph\":7}"), -1);
    cr_assert_eq(d.ts, 1764417600000LL);
    cr_assert_eq(decode("{\"ts\":1764417600.25,\"ph\":7}"), -1);
    cr_assert_eq(d.ts, 1764417600250LL, "seconds with a fraction stay seconds");
}

/* Below the millisecond, every form cuts (as RFC 3339 times always did), so
 * one instant sent as a number or as a string is one key: redelivery in
 * another form replaces, not duplicates (SPEC section 2). */
Test(payload, a_fraction_of_a_millisecond_is_cut_in_every_ts_form)
{
    static const struct ts_case cases[] = {
        { "{\"ts\":1764417600.9999,\"x\":1}", 1764417600999LL },
        { "{\"ts\":\"2025-11-29T12:00:00.9999Z\",\"x\":1}", 1764417600999LL },
        { "{\"ts\":1764417600999.7,\"x\":1}", 1764417600999LL },
        { "{\"ts\":1764417600.123,\"x\":1}", 1764417600123LL },
        { "{\"ts\":1764417600.0015,\"x\":1}", 1764417600001LL },
    };
    expect_ts(cases, sizeof(cases) / sizeof(cases[0]));
}

Test(payload, other_strings_of_an_event_are_not_labels)
{
    /* SPEC §1: string members are labels, except in event sources. An event's
     * own text (a zone, a description) is not held to the label rules. */
    cr_assert_eq(decode_opts("{\"ts\":1764417600000,\"type\":\"motion\",\"state\":\"start\","
                             "\"zone\":\"gate/north #2\",\"note\":\"a+b\"}", true, 0), -1);
    cr_assert_eq(d.n, 1);
    cr_assert_str_eq(d.s[0].metric, "motion");
    cr_assert_eq(d.n_member_reasons, 0, "an event's text was rejected as a bad label");
    /* In a json source the same member is a bad label. */
    cr_assert_eq(decode("{\"ph\":7,\"zone\":\"gate/north\"}"), -1);
    cr_assert_eq(d.member_rejects[IW_REJ_BAD_LABEL], 1);
}

Test(payload, other_numbers_of_an_event_are_neither_samples_nor_events)
{
    /* SPEC section 1: an event source message is an event of its `type` and
     * `state`. A numeric member named like an event type ("tamper": 2) must
     * not start that event, in a motion stop least of all. */
    cr_assert_eq(decode_opts("{\"ts\":1764417600000,\"type\":\"motion\",\"state\":\"stop\","
                             "\"channel\":1,\"tamper\":2,\"confidence\":0.9,\"ok\":true,"
                             "\"meta\":{\"a\":[1]},\"x\":null,\"big\":1e999}", true, 0), -1);
    cr_assert_eq(d.n, 1, "%zu samples from one event message", d.n);
    cr_assert_str_eq(d.s[0].metric, "motion");
    cr_assert_eq(d.s[0].value, 0.0);
    cr_assert_eq(d.n_member_reasons, 0, "an event's own detail was rejected");
}

Test(payload, a_long_but_finite_number_is_a_sample_not_non_finite)
{
    /* Printed with many digits (a %.70f, a decimal library): still a finite
     * number, stored as the nearest double. */
    cr_assert_eq(decode("{\"pi\":3.1415926535897932384626433832795028841971693993751058209749445923"
                        "0781640628,\"tiny\":0.00000000000000000000000000000000000000000000000000000"
                        "000000001234,\"big\":123456789012345678901234567890123456789012345678901234"
                        "567890123456789}"), -1);
    cr_assert_eq(d.n_member_reasons, 0, "a finite number was rejected");
    cr_assert_eq(d.n, 3);
    cr_expect_eq(value_of("pi"), 3.141592653589793);
    cr_expect_eq(value_of("tiny"), 1.234e-62);
    cr_expect_eq(value_of("big"), 1.2345678901234568e68);
    /* Too large for a double whatever its length: non-finite. */
    char p[600] = "{\"x\":1";
    for (int i = 0; i < 400; i++)
        strcat(p, "0");
    strcat(p, ",\"ok\":1}");
    cr_assert_eq(decode(p), -1);
    cr_expect_eq(d.member_rejects[IW_REJ_NON_FINITE], 1);
    cr_expect_eq(value_of("ok"), 1.0);
}

/* A label longer than the decoder's name space: still checked as a label,
 * on its JSON text, and kept when good (SPEC §1 rejects a label only for
 * bad UTF-8 or a '/', '+', '#'). */
Test(payload, a_label_longer_than_the_name_space_is_checked_not_rejected)
{
    static char p[3 * IW_PAYLOAD_NAME_SPACE];
    static const struct { const char *tail; bool good; } cases[] = {
        { "", true },              { "\xe4\xb8\x9c\\u00e9\\n", true },
        { "\\\\u002f", true },     { "a/b", false },
        { "\\/", false },          { "\\u002F", false },
        { "\\u002b", false },      { "\\u0023", false },
        { "#", false },            { "\xff", false },
        /* Escaped surrogates: a pair is one character, a lone half none. */
        { "\\ud83d\\ude00", true }, { "\\ud800", false },
        { "\\udc00x", false },      { "\\ud83d\\u0041", false },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = (size_t)snprintf(p, sizeof(p), "{\"ph\":7,\"note\":\"");
        memset(p + n, 'x', 2 * IW_PAYLOAD_NAME_SPACE);
        n += 2 * IW_PAYLOAD_NAME_SPACE;
        snprintf(p + n, sizeof(p) - n, "%s\",\"do\":6}", cases[i].tail);
        cr_assert_eq(decode(p), -1, "tail %s", cases[i].tail);
        cr_expect_eq(d.n, 2, "tail %s: ph and do are kept", cases[i].tail);
        cr_expect_eq(d.member_rejects[IW_REJ_BAD_LABEL], cases[i].good ? 0 : 1,
                     "tail %s", cases[i].tail);
    }
}

/*
 * Numbers take a fast path when their digits fit in 2^53 and their power of
 * ten in 10^±22 (server/payload.c, scan_number); every value must still be
 * the double strtod gives, bit for bit, on either side of those limits.
 */
static size_t random_number(char *buf, unsigned *seed)
{
    size_t n = 0;
    int shape = rand_r(seed) % 8;

    if (rand_r(seed) % 2)
        buf[n++] = '-';
    int ilen = shape == 0 ? 1 : 1 + rand_r(seed) % (shape < 4 ? 6 : 22);
    if (shape == 0 || rand_r(seed) % 5 == 0) {
        buf[n++] = '0';
    } else {
        buf[n++] = (char)('1' + rand_r(seed) % 9);
        for (int i = 1; i < ilen; i++)
            buf[n++] = (char)('0' + rand_r(seed) % 10);
    }
    if (rand_r(seed) % 4 != 0) {
        int flen = 1 + rand_r(seed) % (shape < 6 ? 4 : 24);
        buf[n++] = '.';
        for (int i = 0; i < flen; i++)               /* zeros often: leading and trailing */
            buf[n++] = (char)('0' + (rand_r(seed) % 3 == 0 ? 0 : rand_r(seed) % 10));
    }
    if (rand_r(seed) % 4 == 0) {
        buf[n++] = rand_r(seed) % 2 ? 'e' : 'E';
        int r = rand_r(seed) % 3;
        if (r == 1)
            buf[n++] = '-';
        else if (r == 2)
            buf[n++] = '+';
        n += (size_t)sprintf(buf + n, "%d", rand_r(seed) % (rand_r(seed) % 4 == 0 ? 400 : 30));
    }
    buf[n] = '\0';
    return n;
}

Test(payload, every_number_decodes_to_the_double_strtod_gives)
{
    static const char *const edges[] = {
        "9007199254740992", "9007199254740993", "9007199254740991.5", "-0", "-0.0", "0e400",
        "1e22", "1e23", "9007199254740992e22", "9007199254740993e-22", "1e-22", "4.9e-324",
        "2.2250738585072014e-308", "1.7976931348623157e308", "0.1", "0.30000000000000004",
        "123456789012345678", "1234567890123456789", "12345678901234567890", "7.4", "0.82",
        "0.000000000000000000000000001", "100000000000000000000000", "1.5e-5", "3E+2",
    };
    char num[96], msg[160];
    unsigned seed = 20261206;

    for (size_t i = 0; i < 300000 + sizeof(edges) / sizeof(edges[0]); i++) {
        if (i < sizeof(edges) / sizeof(edges[0]))
            strcpy(num, edges[i]);
        else
            random_number(num, &seed);
        double want = strtod(num, NULL);
        snprintf(msg, sizeof(msg), "{\"ts\":1764417600000,\"x\":%s}", num);
        cr_assert_eq(decode(msg), -1, "%s", num);
        if (!isfinite(want)) {
            cr_assert_eq(d.n, 0, "%s is not finite: no sample", num);
            continue;
        }
        cr_assert_eq(d.n, 1, "%s", num);
        cr_assert(memcmp(&d.s[0].value, &want, sizeof(want)) == 0, "%s: %.17g, strtod %.17g",
                  num, d.s[0].value, want);
    }
}

Test(payload, integer_timestamps_are_exact_near_the_fast_path_limits)
{
    static const long long ts[] = { NOW, NOW - 1, NOW + 299999, NOW - 86400000LL * 89 };
    char msg[96];

    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        snprintf(msg, sizeof(msg), "{\"ts\":%lld,\"x\":1}", ts[i]);
        cr_assert_eq(decode(msg), -1, "%s", msg);
        cr_assert_eq(d.ts, ts[i], "%s gave %lld", msg, (long long)d.ts);
    }
    snprintf(msg, sizeof(msg), "{\"ts\":%lld.0,\"x\":1}", NOW);
    cr_assert_eq(decode(msg), -1);
    cr_assert_eq(d.ts, NOW, "a real in ms stays exact");
    cr_assert_eq(decode("{\"ts\":1764417600.123,\"x\":1}"), -1);
    cr_assert_eq(d.ts, NOW + 123, "seconds with a fraction");
}
