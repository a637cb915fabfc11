/*
 * End to end through a real mosquitto: every QoS 1 sample published is stored
 * with its exact value and time, bad input between good messages loses
 * nothing good, and `islewatch series/query --db` read it back beside the
 * running daemon.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "islewatch/err.h"
#include "islewatch/http_client.h"
#include "it.h"

static long long base_ts(void)
{
    /* Recent enough for the raw retention (90 d), whole seconds. */
    return (long long)time(NULL) * 1000 - 3600 * 1000LL;
}

static cJSON *cli_json(const char *fmt_args)
{
    char *out = NULL;
    int st = it_run(&out, "%s %s", it_bin("islewatch"), fmt_args);
    cr_assert_eq(st, 0, "islewatch %s exited %d: %s", fmt_args, st, out ? out : "");
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %.300s", out ? out : "");
    free(out);
    return doc;
}

static long long total_points(const struct it_daemon *d, const char *glob)
{
    char args[600];
    snprintf(args, sizeof(args), "series '%s' --db %s --format json", glob, d->data);
    cJSON *doc = cli_json(args), *it;
    long long n = 0;
    cJSON_ArrayForEach(it, doc)
        n += (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "count"));
    cJSON_Delete(doc);
    return n;
}

static bool wait_points(const struct it_daemon *d, const char *glob, long long want, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms, n = -1;
    while (it_now_ms() < end) {
        n = total_points(d, glob);
        if (n >= want)
            return n == want;
        struct timespec ts = { 0, 200 * 1000000 };
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "only %lld of %lld points after %d ms\n", n, want, timeout_ms);
    return false;
}

/* The next message on the rejected topic, parsed; fails the test if none comes. */
static cJSON *next_rejection(struct it_client *rej, int timeout_ms)
{
    struct it_msg *m = it_next(rej, timeout_ms);
    cr_assert_not_null(m, "nothing republished on the rejected topic within %d ms", timeout_ms);
    cJSON *doc = cJSON_Parse(m->payload);
    cr_assert_not_null(doc, "republished rejection is not JSON: %s", m->payload);
    it_msg_free(m);
    return doc;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? s : "";
}

/* "a,b" for the republished "reasons" array, to compare in one go. */
static void joined_reasons(const cJSON *doc, char *out, size_t cap)
{
    const cJSON *it;
    size_t at = 0;
    out[0] = '\0';
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "reasons"))
        at += (size_t)snprintf(out + at, cap - at, "%s%s", at ? "," : "",
                               cJSON_GetStringValue(it) ? cJSON_GetStringValue(it) : "?");
}

/* value of message i, exactly representable as decimal text */
static double value_of(int i) { return (double)(i % 1000) / 8.0 + 0.25; }
static double do_of(int i) { return (double)i; }

/* Every point of water/<any>/<any>/<metric> in [t0, t0 + 100 s): 100 devices, 100 points each. */
static void check_series(const struct it_daemon *d, long long t0, const char *metric,
                         double (*expect)(int))
{
    char args[600];
    snprintf(args, sizeof(args), "query 'water/*/*/%s' --from %lld --to %lld --db %s --format json",
             metric, t0, t0 + 100 * 1000, d->data);
    cJSON *doc = cli_json(args), *s, *p;
    cr_assert_eq(cJSON_GetArraySize(doc), 100);
    int checked = 0;
    cJSON_ArrayForEach(s, doc) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(s, "series"));
        char want_metric[32];
        int dev = -1;
        cr_assert_eq(sscanf(name, "water/site%*d/d%d/%31s", &dev, want_metric), 2, "%s", name);
        cr_assert_str_eq(want_metric, metric);
        int k = 0;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points")) {
            int i = k * 100 + dev;
            long long ts = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
            double v = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
            cr_expect_eq(ts, t0 + (long long)k * 1000, "%s point %d time", name, k);
            cr_expect_eq(v, expect(i), "%s point %d value %.17g", name, k, v);
            k++;
            checked++;
        }
        cr_expect_eq(k, 100, "%s has %d points", name, k);
    }
    cr_assert_eq(checked, 10000);
    cJSON_Delete(doc);
}

Test(ingest, qos1_10000_messages_from_100_devices_all_stored_exactly, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = base_ts();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-pub");
    cr_assert_not_null(pub);
    for (int i = 0; i < 10000; i++) {
        int dev = i % 100;
        char topic[128], payload[256];
        snprintf(topic, sizeof(topic), "sensors/water/site%d/d%02d", dev / 10, dev);
        /* Every other round the metrics swap places: the delivery thread's
         * per-device series cache (ingest.c) must not store by position. */
        if ((i / 100) % 2 == 0)
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%.17g,\"do\":%d,\"note\":\"x\"}",
                     t0 + (long long)(i / 100) * 1000, value_of(i), i);
        else
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"do\":%d,\"note\":\"x\",\"ph\":%.17g}",
                     t0 + (long long)(i / 100) * 1000, i, value_of(i));
        cr_assert_eq(it_publish_async(pub, topic, payload, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0, "broker did not acknowledge every publish");
    cr_assert(wait_points(&d, "water/*/*/*", 20000, 120000), "every point stored, none twice");

    /* Exact values and timestamps, series by series. */
    check_series(&d, t0, "ph", value_of);
    check_series(&d, t0, "do", do_of);

    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(ingest, bad_input_between_good_messages_loses_nothing_good, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = base_ts();
    static const char *const bad[] = {
        "not json at all", "[1,2,3]", "{\"ph\":7.1", "{\"ts\":99999999999999,\"ph\":7}",
        "{\"ts\":1000,\"ph\":7}", "{\"ts\":\"yesterday\",\"ph\":7}", "{\"flag\":\"Q\",\"ph\":7}",
    };
    int n_bad = 0, n_partial = 0, good_members = 0;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "max_payload: 1KiB\nrejected_topic: \"islewatch/rejected/{source}\"\n"), 0);
    struct it_client *rej = it_client_new(&b, "it-rej");
    cr_assert_eq(it_subscribe(rej, "islewatch/rejected/#", 1), 0);
    struct it_client *pub = it_client_new(&b, "it-pub2");
    char big[2048];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';

    for (int i = 0; i < 20000; i++) {
        char topic[128], payload[256];
        int dev = i % 50;
        snprintf(topic, sizeof(topic), "sensors/water/mix/d%02d", dev);
        if (i % 10 == 5) {
            const char *p = (i / 10) % 8 == 7 ? big : bad[(i / 10) % 8 % 7];
            cr_assert_eq(it_publish_async(pub, topic, p, 1), 0);
            n_bad++;
            continue;
        }
        /* Every fifth good message carries a bad member beside good ones. */
        if (i % 5 == 0) {
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7.5,\"bad\":1e999,\"x/y\":2}",
                     t0 + (long long)i * 10);
            n_partial++;
        } else
            snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7.5}", t0 + (long long)i * 10);
        good_members++;
        cr_assert_eq(it_publish_async(pub, topic, payload, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
    cr_assert(wait_points(&d, "water/mix/*/ph", good_members, 120000));

    /* Every bad message was republished with its reason, and so was every
     * message that lost members (reasons in payload order), its ph stored. */
    int seen = 0, seen_partial = 0;
    struct it_msg *m;
    while (seen < n_bad + n_partial && (m = it_next(rej, 10000)) != NULL) {
        cJSON *doc = cJSON_Parse(m->payload);
        cr_assert_not_null(doc, "%s", m->payload);
        cr_expect(jstr(doc, "reason")[0] != '\0', "%s", m->payload);
        if (cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "samples_stored")) == 1) {
            char reasons[128];
            joined_reasons(doc, reasons, sizeof(reasons));
            cr_expect_str_eq(jstr(doc, "reason"), "non_finite", "%s", m->payload);
            cr_expect_str_eq(reasons, "non_finite,bad_label", "%s", m->payload);
            seen_partial++;
        }
        cJSON_Delete(doc);
        seen++;
        it_msg_free(m);
    }
    cr_expect_eq(seen, n_bad + n_partial, "rejected messages republished: %d of %d bad + %d "
                 "partial", seen, n_bad, n_partial);
    cr_expect_eq(seen_partial, n_partial, "partial messages republished: %d of %d", seen_partial,
                 n_partial);

    it_client_free(pub);
    it_client_free(rej);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

#define NON_FINITE "islewatch_messages_rejected_total{reason=\"non_finite\"}"
#define BAD_LABEL "islewatch_messages_rejected_total{reason=\"bad_label\"}"
#define STORED "islewatch_messages_stored_total{source=\"water\"}"

/*
 * Publish one message and take the rejection it must cause: republished with
 * `reason`, every reason in order (`reasons`), and how many of its samples
 * were stored. The daemon counts and stores before it republishes, so the
 * counters are final for this message once the rejection is here.
 */
static void expect_rejection(struct it_client *pub, struct it_client *rej, const char *topic,
                             const char *payload, const char *reason, const char *reasons,
                             int samples_stored)
{
    char got[128];

    cr_assert_eq(it_publish(pub, topic, payload, 1, false), 0);
    cJSON *doc = next_rejection(rej, 15000);
    joined_reasons(doc, got, sizeof(got));
    cr_expect_str_eq(jstr(doc, "payload"), payload, "the rejection is of this message");
    cr_expect_str_eq(jstr(doc, "topic"), topic);
    cr_expect_str_eq(jstr(doc, "source"), "water");
    cr_expect_str_eq(jstr(doc, "reason"), reason, "%s", payload);
    cr_expect_str_eq(got, reasons, "%s", payload);
    cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "samples_stored")), samples_stored,
                 "%s", payload);
    cJSON_Delete(doc);
}

/*
 * SPEC §1: a message that loses members is rejected too (counted, logged,
 * republished) while its good members are stored; SPEC §7: the rejected
 * counter counts messages, once per reason, and a message none of whose
 * samples was stored is not a stored message.
 */
Test(ingest, member_rejections_are_republished_and_counted_once_per_message, .timeout = 180)
{
    struct it_broker b;
    struct it_daemon d;
    const char *topic = "sensors/water/rj/d01";
    long long t0 = base_ts();
    char p[256];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "rejected_topic: \"islewatch/rejected/{source}\"\n"), 0);
    struct it_client *rej = it_client_new(&b, "it-rej-members");
    cr_assert_eq(it_subscribe(rej, "islewatch/rejected/#", 1), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-members");
    cr_assert_not_null(pub);
    cr_assert_eq(it_metric(&d, NON_FINITE), 0);
    cr_assert_eq(it_metric(&d, STORED), 0);

    /* Nothing of it survives: republished, counted, not stored, logged as such. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":1e999}", t0);
    expect_rejection(pub, rej, topic, p, "non_finite", "non_finite", 0);
    cr_expect_eq(it_metric(&d, NON_FINITE), 1);
    cr_expect_eq(it_metric(&d, STORED), 0, "a message with no sample stored is not stored");
    cr_expect(it_daemon_wait_log(&d, "non_finite; no sample of it was stored", 1, 5000));
    cr_expect_neq(it_run(NULL, "grep -q 'kept the rest' '%s'", d.log), 0,
                  "the log does not claim the message kept anything");

    /* A good member beside a non-finite one: republished, and the good one stored. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7.25,\"do\":1e999}", t0 + 1000);
    expect_rejection(pub, rej, topic, p, "non_finite", "non_finite", 1);
    cr_expect_eq(it_metric(&d, NON_FINITE), 2);
    cr_expect_eq(it_metric(&d, STORED), 1);

    /* Label values with + or / are bad labels; the message's sample is kept. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7.5,\"lbl\":\"a+b\"}", t0 + 2000);
    expect_rejection(pub, rej, topic, p, "bad_label", "bad_label", 1);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7.75,\"site\":\"a/b\"}", t0 + 3000);
    expect_rejection(pub, rej, topic, p, "bad_label", "bad_label", 1);
    cr_expect_eq(it_metric(&d, BAD_LABEL), 2);
    cr_expect_eq(it_metric(&d, STORED), 3);

    /* Two non-finite members: one message, so the counter moves by one. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":1e999,\"do\":-1e999,\"tp\":1}", t0 + 4000);
    expect_rejection(pub, rej, topic, p, "non_finite", "non_finite", 1);
    cr_expect_eq(it_metric(&d, NON_FINITE), 3, "counted once for two non-finite members");
    cr_expect_eq(it_metric(&d, STORED), 4);

    /* Several reasons: the first met is "reason", all are listed, each counted once. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"x#\":5,\"ph\":NaN,\"y+\":6,\"tp\":2}", t0 + 5000);
    expect_rejection(pub, rej, topic, p, "bad_label", "bad_label,non_finite", 1);
    cr_expect_eq(it_metric(&d, BAD_LABEL), 3);
    cr_expect_eq(it_metric(&d, NON_FINITE), 4);
    cr_expect_eq(it_metric(&d, STORED), 5);

    /* A good message, valid labels included, is not republished: the next rejection is
     * the bad message published after it. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":8,\"note\":\"ok 1\",\"site\":\"rj\"}",
             t0 + 6000);
    cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":Infinity}", t0 + 7000);
    expect_rejection(pub, rej, topic, p, "non_finite", "non_finite", 0);
    cr_expect_eq(it_metric(&d, STORED), 6, "the good message is stored, the last one not");
    cr_expect_eq(it_metric(&d, NON_FINITE), 5);

    /* ph 7.25, 7.5, 7.75 and 8; tp 1 and 2; no do. */
    cr_expect(wait_points(&d, "water/rj/d01/ph", 4, 30000), "every good ph stored");
    cr_expect(wait_points(&d, "water/rj/d01/tp", 2, 30000));
    cr_expect_eq(total_points(&d, "water/rj/d01/do"), 0);

    it_client_free(pub);
    it_client_free(rej);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A full series dictionary is bad input, not a store failure: the member that
 * needs a new series is dropped (series_limit) and the rest of the message,
 * and every message after it, stored. It used to be retried for ever, which
 * blocked the connection.
 */
Test(ingest, a_full_series_dictionary_drops_the_new_member_and_ingestion_goes_on, .timeout = 180)
{
    struct it_broker b;
    struct it_daemon d;
    const char *topic = "sensors/water/full/d01";
    long long t0 = base_ts();
    char p[256];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "rules: []\n"
        "rejected_topic: \"islewatch/rejected/{source}\"\n"
        "storage:\n  path: @DATA@\n  test_max_series: 3\n"), 0);
    struct it_client *rej = it_client_new(&b, "it-rej-full");
    cr_assert_eq(it_subscribe(rej, "islewatch/rejected/#", 1), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-full");
    cr_assert_not_null(pub);

    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7,\"do\":6}", t0);
    cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);
    /* tp is the third series; nh3_n would be the fourth */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7.25,\"tp\":0.1,\"nh3_n\":0.5}", t0 + 1000);
    expect_rejection(pub, rej, topic, p, "series_limit", "series_limit", 2);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7.5}", t0 + 2000);
    cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);

    cr_expect(wait_points(&d, "water/full/d01/ph", 3, 30000), "every ph stored, the last too");
    cr_expect_eq(total_points(&d, "water/full/d01/tp"), 1);
    cr_expect_eq(total_points(&d, "water/full/d01/nh3_n"), 0);
    cr_expect_eq(it_metric(&d, "islewatch_messages_rejected_total{reason=\"series_limit\"}"), 1);
    cr_expect(it_daemon_wait_log(&d, "the series dictionary is full", 1, 5000));

    it_client_free(pub);
    it_client_free(rej);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(ingest, two_connections_share_one_subscription_and_store_everything_once, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = base_ts();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    /* The harness wrote broker: first; a second broker: key would be a duplicate,
     * so switch connections on in the file and restart. */
    char *out = NULL;
    cr_assert_eq(it_run(&out, "sed -i 's|^  reconnect_min: 100ms|  connections: 2\\n  reconnect_min: 100ms|' '%s'",
                        d.cfg), 0);
    free(out);
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_assert(it_daemon_wait_log(&d, "connection 1 subscribed", 1, 10000), "second connection up");
    struct it_client *pub = it_client_new(&b, "it-pub-shared");
    for (int i = 0; i < 5000; i++) {
        char topic[128], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/sh/d%02d", i % 50);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%d}", t0 + (long long)(i / 50) * 1000, i);
        cr_assert_eq(it_publish_async(pub, topic, payload, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
    cr_assert(wait_points(&d, "water/sh/*/ph", 5000, 120000), "every message stored exactly once");
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* n messages at `qos` on sensors/water/<site>/d<k> (ten devices), points t0 + k s. */
static void publish_batch(struct it_client *pub, const char *site, int n, long long t0, int qos)
{
    for (int i = 0; i < n; i++) {
        char topic[128], payload[128];
        snprintf(topic, sizeof(topic), "sensors/water/%s/d%02d", site, i % 10);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":%d}", t0 + (long long)(i / 10) * 1000, i);
        cr_assert_eq(it_publish_async(pub, topic, payload, qos), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
}

/*
 * broker.connections 1 -> 3 -> 2 across restarts, with messages sent while
 * the daemon is stopped. Each change gives the connections new client ids;
 * the old persistent sessions stayed on the broker, subscribed: the messages
 * sent during the restart waited there for ever, and after 3 -> 2 the
 * session "-2", still a member of the shared subscription, took a third of
 * the live messages away. Every message is stored once, at QoS 1 and 2.
 */
Test(ingest, a_changed_connection_count_strands_no_message, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    long long t0 = base_ts();

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 2}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-conns");
    publish_batch(pub, "one", 100, t0, 1);
    cr_assert(wait_points(&d, "water/one/*/ph", 100, 60000));

    it_daemon_stop(&d);
    publish_batch(pub, "down1", 200, t0, 2);            /* while stopped */
    cr_assert_eq(it_daemon_set_broker(&d, "connections: 3"), 0);
    cr_assert(it_daemon_wait_log(&d, "connection 2 subscribed", 1, 20000));
    cr_expect(it_daemon_wait_log(&d, "has no subscription left", 1, 30000),
              "the session of the single connection was not taken");
    publish_batch(pub, "three", 300, t0, 2);
    cr_expect(wait_points(&d, "water/down1/*/ph", 200, 60000),
              "messages sent while the daemon was stopped stayed in the old session");
    cr_assert(wait_points(&d, "water/three/*/ph", 300, 60000));

    it_daemon_stop(&d);
    publish_batch(pub, "down2", 300, t0, 1);
    cr_assert_eq(it_run(NULL, "sed -i 's|^  connections: 3|  connections: 2|' '%s'", d.cfg), 0);
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_expect(it_daemon_wait_log(&d, "has no subscription left", 2, 30000),
              "the session of connection 2 was not taken");
    publish_batch(pub, "two", 300, t0, 2);
    cr_expect(wait_points(&d, "water/down2/*/ph", 300, 60000),
              "messages sent while the daemon was stopped stayed in an old session");
    cr_expect(wait_points(&d, "water/two/*/ph", 300, 60000),
              "the old shared-subscription member took live messages away");
    cr_expect_eq(total_points(&d, "water/*/*/ph"), 1200);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(ingest, tls_broker_with_a_ca_file, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    char extra[1024];
    long long t0 = base_ts();

    cr_assert_eq(it_broker_start_tls(&b), 0, "mosquitto with a TLS listener");
    /* The harness points broker.url at the plain port; switch it to the TLS one. */
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    it_daemon_stop(&d);
    snprintf(extra, sizeof(extra),
             "sed -i -e 's|url: mqtt://127.0.0.1:%d|url: mqtts://127.0.0.1:%d\\n  tls: { ca_file: %s }|' '%s'",
             b.port, b.tls_port, b.ca_file, d.cfg);
    cr_assert_eq(it_run(NULL, "%s", extra), 0);
    cr_assert_eq(it_daemon_restart(&d), 0, "islewatchd connects over TLS");
    cr_assert(it_daemon_wait_log(&d, "up to ssl://127.0.0.1", 1, 1000), "the connection is TLS");
    struct it_client *pub = it_client_new(&b, "it-pub-tls");
    char payload[128];
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"ph\":7.25}", t0);
    cr_assert_eq(it_publish(pub, "sensors/water/tls/d01", payload, 1, false), 0);
    cr_assert(wait_points(&d, "water/tls/*/ph", 1, 30000), "the sample arrived over TLS");
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * The daemon's config tail after the harness's broker:, http: and storage:
 * sections. Every reload below changes the rule's threshold and the
 * subscriptions: RELOAD_W widens the water topic (its filter sensors/+/+/+
 * covers the old one), RELOAD_A narrows it back, RELOAD_C subscribes at
 * QoS 2 and adds an air source.
 */
#define RELOAD_RULE(above) \
    "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: " above ",\n" \
    "     severity: major}\n"
#define RELOAD_A "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n" \
    RELOAD_RULE("400")
#define RELOAD_W "sources:\n  - {name: water, topic: \"sensors/{net}/{site}/{device}\", qos: 1}\n" \
    RELOAD_RULE("500")
#define RELOAD_C "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 2}\n" \
    "  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 1}\n" RELOAD_RULE("400")

#define RL_DEVICES 6
#define RL_MESSAGES 3000
#define RL_RELOADS 5

static double rl_nh3(int i) { return (double)i * 0.25; }     /* exact in binary and in text */
static double rl_tp(int i) { return (double)i + 0.5; }

struct rl_stream {
    struct it_client *pub;
    long long t0;
    atomic_int published;
    atomic_int failed;                  /* index + 1 of a publish the client refused */
};

/* 3,000 messages at a steady ~2,000/s, so that every reload falls inside the stream. */
static void *rl_publish(void *arg)
{
    struct rl_stream *st = arg;
    for (int i = 0; i < RL_MESSAGES; i++) {
        char topic[128], payload[160];
        int dev = i % RL_DEVICES;
        snprintf(topic, sizeof(topic), "sensors/water/rl%d/w%d", dev % 2, dev);
        snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"nh3_n\":%.17g,\"tp\":%.17g}",
                 st->t0 + (long long)(i / RL_DEVICES) * 1000, rl_nh3(i), rl_tp(i));
        if (it_publish_async(st->pub, topic, payload, 1) != 0 && atomic_load(&st->failed) == 0)
            atomic_store(&st->failed, i + 1);
        atomic_store(&st->published, i + 1);
        if (i % 10 == 9) {
            struct timespec nap = { 0, 5 * 1000000 };
            nanosleep(&nap, NULL);
        }
    }
    return NULL;
}

/*
 * SPEC §3: a valid config reloaded with SIGHUP "takes effect without dropping
 * messages". 3,000 QoS 1 messages from 6 devices (the broker keeps every one
 * for the daemon: persistence on, no queue limit) while the daemon reloads 5
 * times, each time with another rule threshold and other subscriptions:
 * every sample is stored once with its own time and value, nothing is
 * rejected or logged as lost, and the daemon still stops cleanly. (While an
 * old and a new filter overlap, a message may come twice: the counters of
 * received messages may exceed 3,000, the points may not.)
 */
Test(ingest, sighup_reloads_during_a_stream_drop_no_message, .timeout = 300)
{
    static const char *const tails[RL_RELOADS] = { RELOAD_W, RELOAD_A, RELOAD_W, RELOAD_C,
                                                   RELOAD_W };
    struct it_broker b;
    struct it_daemon d;
    struct rl_stream st = { .t0 = base_ts() };
    pthread_t thr;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, RELOAD_A), 0);
    st.pub = it_client_new(&b, "it-pub-reload");
    cr_assert_not_null(st.pub);
    cr_assert_eq(pthread_create(&thr, NULL, rl_publish, &st), 0);
    /* A reload every 500 messages published; each one done before the next
     * SIGHUP, or signalfd would merge two into one reload. */
    for (int k = 0; k < RL_RELOADS; k++) {
        while (atomic_load(&st.published) < (k + 1) * 500) {
            struct timespec nap = { 0, 2 * 1000000 };
            nanosleep(&nap, NULL);
        }
        it_daemon_rewrite_from(&d, "sources:", tails[k]);
        it_daemon_signal(&d, SIGHUP);
        if (!it_daemon_wait_log(&d, "reloaded", k + 1, 20000)) {
            pthread_join(thr, NULL);
            cr_assert_fail("reload %d of %d not applied within 20 s", k + 1, RL_RELOADS);
        }
    }
    pthread_join(thr, NULL);
    cr_assert_eq(atomic_load(&st.failed), 0, "the test's client refused publish %d",
                 atomic_load(&st.failed) - 1);
    cr_assert_eq(it_flush(st.pub, 60000), 0, "broker did not acknowledge every publish");
    cr_assert(it_daemon_wait_log(&d, "subscribed to 2 source(s)", 1, 1000),
              "the reload that added the air source subscribed to it");
    cr_assert(it_daemon_wait_log(&d, "unsubscribed from 2 filter", 1, 1000),
              "the reload after the one that added air unsubscribed from air and the old water");
    cr_assert(wait_points(&d, "water/*/*/*", 2 * RL_MESSAGES, 120000),
              "every point of every message stored once across %d reloads", RL_RELOADS);

    /* Per series: 500 points, each at its own time with its own value. */
    char args[600];
    snprintf(args, sizeof(args), "query 'water/*/*/*' --from %lld --to %lld --db %s --format json",
             st.t0, st.t0 + (long long)(RL_MESSAGES / RL_DEVICES) * 1000, d.data);
    cJSON *doc = cli_json(args), *s, *p;
    cr_assert_eq(cJSON_GetArraySize(doc), 2 * RL_DEVICES);
    cJSON_ArrayForEach(s, doc) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(s, "series"));
        char metric[16];
        int site = -1, dev = -1, k = 0;
        cr_assert_eq(sscanf(name, "water/rl%d/w%d/%15s", &site, &dev, metric), 3, "%s", name);
        double (*expect)(int) = strcmp(metric, "tp") == 0 ? rl_tp : rl_nh3;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points")) {
            int i = k * RL_DEVICES + dev;
            long long ts = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
            double v = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
            cr_expect_eq(ts, st.t0 + (long long)k * 1000, "%s point %d time", name, k);
            cr_expect_eq(v, expect(i), "%s point %d value %.17g", name, k, v);
            k++;
        }
        cr_expect_eq(k, RL_MESSAGES / RL_DEVICES, "%s has %d points", name, k);
    }
    cJSON_Delete(doc);

    cr_expect_geq(it_metric(&d, "islewatch_messages_received_total{source=\"water\"}"),
                  RL_MESSAGES);
    cr_expect_geq(it_metric(&d, STORED), RL_MESSAGES);
    cr_expect_eq(it_metric(&d, "islewatch_config_last_reload_successful"), 1);
    char *out = NULL;
    /* "unsubscribed from 1 filter(s) the config dropped" is the reload doing its job. */
    it_run(&out, "grep -Ei 'drop|lost|reject|retried|no_source|error' '%s' | grep -v unsubscribed",
           d.log);
    cr_expect(out == NULL || out[0] == '\0', "the log reports a problem during the reloads:\n%s",
              out ? out : "");
    free(out);

    it_client_free(st.pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §7: messages received and stored "by source". A reload that reorders
 * or drops sources leaves each source's counters under its own name. */
Test(ingest, per_source_counters_keep_their_names_across_a_reload)
{
    struct it_broker b;
    struct it_daemon d;
    long long t = base_ts();
    char p[128];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 1}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-order");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7}", t + i * 1000);
        cr_assert_eq(it_publish(pub, "sensors/water/s/w1", p, 1, false), 0);
    }
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"pm25\":30}", t);
    cr_assert_eq(it_publish(pub, "sensors/air/s/a1", p, 1, false), 0);
    cr_assert(wait_points(&d, "*/*/*/*", 4, 20000));

    it_daemon_rewrite_from(&d, "sources:", "sources:\n  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 1}\n"
                     "  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 20000));
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"pm25\":31}", t + 1000);
    cr_assert_eq(it_publish(pub, "sensors/air/s/a1", p, 1, false), 0);
    cr_assert(wait_points(&d, "*/*/*/*", 5, 20000));

    cr_expect_eq(it_metric(&d, "islewatch_messages_received_total{source=\"water\"}"), 3);
    cr_expect_eq(it_metric(&d, "islewatch_messages_received_total{source=\"air\"}"), 2);
    cr_expect_eq(it_metric(&d, "islewatch_points_stored_total{source=\"water\"}"), 3);
    cr_expect_eq(it_metric(&d, "islewatch_points_stored_total{source=\"air\"}"), 2);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A retained message is delivered again with the retain flag at every
 * subscribe (each restart and reconnect). One without a timestamp would be
 * stored again each time at its new "time of receipt" (SPEC §1), a sample
 * the device never sent, and a retained camera heartbeat would hide an
 * absence. It is stored when it arrives live (retain flag clear) only.
 */
Test(ingest, a_retained_message_without_ts_is_not_stored_again_at_each_restart, .timeout = 180)
{
    struct it_broker b;
    struct it_daemon d;
    long long t = base_ts();
    char p[128];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-retained");
    cr_assert_eq(it_publish(pub, "sensors/water/ret/w1", "{\"ph\":7}", 1, true), 0);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":8}", t);
    cr_assert_eq(it_publish(pub, "sensors/water/ret/w2", p, 1, true), 0);
    cr_assert(wait_points(&d, "water/ret/*/ph", 2, 20000));

    for (int i = 0; i < 2; i++) {
        it_daemon_stop(&d);
        cr_assert_eq(it_daemon_restart(&d), 0);
        /* The retained copies come right after the subscribe, before this one. */
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":%d}", t, i);
        cr_assert_eq(it_publish(pub, "sensors/water/mark/w1", p, 1, false), 0);
        cr_assert(wait_points(&d, "water/mark/w1/ph", 1, 20000));
    }
    cr_expect_eq(total_points(&d, "water/ret/w1/ph"), 1,
                 "a retained message without ts was stored again at a restart");
    cr_expect_eq(total_points(&d, "water/ret/w2/ph"), 1);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A republished rejection says "truncated": true whenever its "payload" is
 * not the whole message: past 4096 bytes, and also when escaping (six
 * characters for a control byte) leaves no room for all of it.
 */
Test(ingest, a_republished_payload_cut_by_escaping_says_truncated, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    static char ctl[3001];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "rejected_topic: \"islewatch/rejected/{source}\"\n"), 0);
    struct it_client *rej = it_client_new(&b, "it-rej-escape");
    cr_assert_eq(it_subscribe(rej, "islewatch/rejected/#", 1), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-escape");
    memset(ctl, '\x01', sizeof(ctl) - 1);
    const char *cases[] = { "\x01\x01 not json", ctl };
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(it_publish(pub, "sensors/water/esc/w1", cases[i], 1, false), 0);
        cJSON *doc = next_rejection(rej, 20000);
        const char *payload = jstr(doc, "payload");
        bool whole = strcmp(payload, cases[i]) == 0;
        cr_expect_str_eq(jstr(doc, "reason"), "not_json");
        cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "payload_bytes")),
                     (double)strlen(cases[i]));
        cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItem(doc, "truncated")), !whole,
                     "case %zu: \"payload\" has %zu of %zu bytes, truncated says otherwise", i,
                     strlen(payload), strlen(cases[i]));
        cr_expect(i == 0 ? whole : !whole, "case %zu", i);
        cJSON_Delete(doc);
    }
    it_client_free(pub);
    it_client_free(rej);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* A source name may hold '"' and '\' (any label may): the republished
 * rejection is still JSON, with the name as it is. */
Test(ingest, a_rejection_from_a_source_named_with_quotes_is_json, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: 'wa\"ter\\', topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "rejected_topic: \"islewatch/rejected/{source}\"\n"), 0);
    struct it_client *rej = it_client_new(&b, "it-rej-quote");
    cr_assert_eq(it_subscribe(rej, "islewatch/rejected/#", 1), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-quote");
    cr_assert_eq(it_publish(pub, "sensors/water/q/w1", "not json", 1, false), 0);
    cJSON *doc = next_rejection(rej, 20000);
    cr_expect_str_eq(jstr(doc, "source"), "wa\"ter\\");
    cr_expect_str_eq(jstr(doc, "reason"), "not_json");
    cJSON_Delete(doc);
    it_client_free(pub);
    it_client_free(rej);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * Messages without ts take their time of receipt. A backlog delivered at
 * reconnect (the persistent session of SPEC §2) arrives many per
 * millisecond: each message must still be a point of its own, not replace
 * the one received in the same millisecond.
 */
Test(ingest, a_backlog_without_ts_keeps_every_message, .timeout = 180)
{
    struct it_broker b;
    struct it_daemon d;
    enum { N = 300 };
    char p[128];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    it_daemon_stop(&d);
    struct it_client *pub = it_client_new(&b, "it-pub-backlog");
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof(p), "{\"v\":%d}", i);
        cr_assert_eq(it_publish_async(pub, "sensors/water/backlog/w1", p, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
    cr_assert_eq(it_daemon_restart(&d), 0);
    /* Published after the backlog: once it is stored, so is the backlog. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7}", base_ts());
    cr_assert_eq(it_publish(pub, "sensors/water/mark/w1", p, 1, false), 0);
    cr_assert(wait_points(&d, "water/mark/w1/ph", 1, 60000));
    cr_expect_eq(total_points(&d, "water/backlog/w1/v"), N,
                 "messages received in the same millisecond replaced each other");

    char args[600];
    /* --to +1h: a backlog's times may run a little ahead of the clock. */
    snprintf(args, sizeof(args), "query 'water/backlog/w1/v' --from -1h --to +1h --db %s "
             "--format json", d.data);
    cJSON *doc = cli_json(args), *pt;
    bool seen[N] = { false };
    cJSON_ArrayForEach(pt, cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points")) {
        int v = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(pt, 1));
        if (v >= 0 && v < N)
            seen[v] = true;
    }
    cJSON_Delete(doc);
    for (int i = 0; i < N; i++)
        cr_expect(seen[i], "message %d is not stored", i);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A backlog without ts gets a millisecond per message and runs ahead of the
 * clock: 20,000 messages delivered in a second or two are stamped over 20 s.
 * A restart must not start those stamps again from the clock: the next
 * messages of the device would land on points of the backlog and replace
 * them (audit: 3,000 of 15,000 lost; SPEC §2, a restart loses nothing).
 */
Test(ingest, a_restart_after_a_backlog_without_ts_replaces_none_of_it, .timeout = 300)
{
    struct it_broker b;
    struct it_daemon d;
    enum { N = 20000, M = 300 };
    char p[128];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    it_daemon_stop(&d);
    struct it_client *pub = it_client_new(&b, "it-pub-ahead");
    for (int i = 0; i < N; i++) {
        snprintf(p, sizeof(p), "{\"v\":%d}", i);
        cr_assert_eq(it_publish_async(pub, "sensors/water/ahead/w1", p, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 120000), 0);
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_assert(wait_points(&d, "water/ahead/w1/v", N, 120000));
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);
    for (int i = N; i < N + M; i++) {
        snprintf(p, sizeof(p), "{\"v\":%d}", i);
        cr_assert_eq(it_publish_async(pub, "sensors/water/ahead/w1", p, 1), 0);
    }
    cr_assert_eq(it_flush(pub, 60000), 0);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7}", base_ts());
    cr_assert_eq(it_publish(pub, "sensors/water/mark/w2", p, 1, false), 0);
    cr_assert(wait_points(&d, "water/mark/w2/ph", 1, 60000));
    cr_expect_eq(total_points(&d, "water/ahead/w1/v"), N + M,
                 "the messages after the restart replaced points of the backlog");
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

struct busy_stream {
    struct it_client *c;
    atomic_bool stop;
};

/* Live samples from another device every 20 ms, so its shard is never idle. */
static void *busy_stream_main(void *arg)
{
    struct busy_stream *bs = arg;
    char p[96];
    while (!atomic_load(&bs->stop)) {
        snprintf(p, sizeof(p), "{\"ts\":%lld000,\"ph\":7}", (long long)time(NULL));
        it_publish_async(bs->c, "sensors/water/busy/b1", p, 0);
        struct timespec ts = { 0, 20 * 1000000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static double hour_sum(const struct it_daemon *d, const char *series, long long hour)
{
    char args[600];
    double v = -1;
    snprintf(args, sizeof(args), "query '%s' --db %s --from %lld --to %lld --step 1h --agg sum "
             "--format json", series, d->data, hour, hour + 3599999);
    cJSON *doc = cli_json(args);
    cJSON *pts = cJSON_GetObjectItem(cJSON_GetArrayItem(doc, 0), "points");
    if (cJSON_GetArraySize(pts) == 1)
        v = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(pts, 0), 1));
    cJSON_Delete(doc);
    return v;
}

static bool wait_hour_sum(const struct it_daemon *d, const char *series, long long hour,
                          double want, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    double v = -1;
    while (it_now_ms() < end) {
        if ((v = hour_sum(d, series, hour)) == want)
            return true;
        struct timespec ts = { 0, 200 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_log_error("%s: hour sum %g, want %g", series, v, want);
    return false;
}

/*
 * A late sample (or a redelivered ts with a new value) in an hour already
 * rolled up must reach the hour's rollup while other devices keep streaming:
 * `query --step` answers as raw data would (SPEC §2), not only once the
 * daemon's shard happens to be idle.
 */
Test(ingest, a_late_overwrite_reaches_the_hour_rollup_while_other_devices_stream, .timeout = 180)
{
    struct it_broker b;
    struct it_daemon d;
    long long h0 = (long long)time(NULL) / 3600 * 3600000 - 3 * 3600000LL;
    const char *topic = "sensors/water/late/w1";
    char p[128];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "storage:\n  path: @DATA@\n  shards: 1\n"
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-late");
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":1}", h0 + i * 60000LL);
        cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);
    }
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":1}", h0 + 3600000LL);   /* rolls hour h0 up */
    cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);
    cr_assert(wait_hour_sum(&d, "water/late/w1/ph", h0, 2, 20000));

    struct busy_stream bs = { .c = it_client_new(&b, "it-pub-busy") };
    atomic_init(&bs.stop, false);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, busy_stream_main, &bs), 0);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":10}", h0 + 60000LL);    /* replaces 1 */
    cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":5}", h0 + 30 * 60000LL); /* late, new */
    cr_assert_eq(it_publish(pub, topic, p, 1, false), 0);
    bool ok = wait_hour_sum(&d, "water/late/w1/ph", h0, 16, 15000);
    atomic_store(&bs.stop, true);
    pthread_join(th, NULL);
    cr_expect(ok, "the hour's rollup missed the late samples while another device streamed");
    it_client_free(bs.c);
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §2: points past their resolution's retention disappear. A reload
 * that shortens storage.retention applies it then, not at the next hourly
 * pass.
 */
Test(ingest, a_reload_that_shortens_retention_drops_the_expired_points_at_once, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    long long now = (long long)time(NULL) * 1000;
    char p[128], tail[600];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "storage:\n  path: @DATA@\n  retention: {raw: 90d, 1m: 1y, 1h: 10y}\n"), 0);
    struct it_client *pub = it_client_new(&b, "it-pub-retention");
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":7}", now - 3 * 3600000LL);
    cr_assert_eq(it_publish(pub, "sensors/water/ret/w1", p, 1, false), 0);
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"ph\":8}", now);
    cr_assert_eq(it_publish(pub, "sensors/water/ret/w1", p, 1, false), 0);
    cr_assert(wait_points(&d, "water/ret/w1/ph", 2, 20000));

    snprintf(tail, sizeof(tail), "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", "
             "qos: 1}\nstorage:\n  path: %s\n  retention: {raw: 2h, 1m: 1y, 1h: 10y}\n", d.data);
    it_daemon_rewrite_from(&d, "sources:", tail);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 20000));
    long long end = it_now_ms() + 20000, n = -1;
    while (it_now_ms() < end && (n = total_points(&d, "water/ret/w1/ph")) != 1) {
        struct timespec ts = { 0, 200 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_expect_eq(n, 1, "the point 3 h old is still there after retention became 2 h");
    it_client_free(pub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}
