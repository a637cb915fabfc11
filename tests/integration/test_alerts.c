/*
 * Alerts through a real broker (SPEC §4, §5): a full firing -> resolved
 * episode with the retained state seen by late subscribers, restarts during
 * a firing and a pending alert, a broker restart without duplicate alerts,
 * absence of a silent camera and of a never-seen inventory camera, an
 * absence rule added later watching the cameras already known, a message
 * with only labels as a sign of life for absence, a message with only a flag
 * raising and resolving a flag alert, reloads
 * while an alert is firing, a resolve raised at start before the first
 * connect, a message the full outbox refused, per-metric instances sharing
 * one retained topic, an ack kept by the later messages of its episode,
 * the retained state of an episode that resolves while silenced, and a late
 * sample's episode published late in sample time.
 * Every alert payload received is checked
 * against config/alert.schema.json.
 */
#include <criterion/criterion.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "islewatch/topic.h"
#include "it.h"
#include "schema_check.h"

static cJSON *schema;

static void setup(void) { schema = load_schema(); }
static void teardown(void) { cJSON_Delete(schema); }

TestSuite(alerts, .init = setup, .fini = teardown, .timeout = 180);

static long long now_ms(void) { return (long long)time(NULL) * 1000; }

#define WATER_SRC "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
#define CAM_SRC "sources:\n  - {name: camera, topic: \"cameras/{site}/{device}/status\", qos: 1}\n"
/* A rules: item: cameras silent for 2 s raise a major absence alert. */
#define CAM_OFFLINE \
    "  - {name: cam-offline, kind: absence, select: \"camera/*/*\", after: 2s, severity: major}\n"

/* Next alert payload on c (skipping empty retained clears unless want_empty), parsed and
 * validated against the schema. */
static cJSON *next_alert(struct it_client *c, int timeout_ms, char *topic, size_t tlen)
{
    struct it_msg *m = it_next(c, timeout_ms);
    if (m == NULL)
        return NULL;
    if (topic != NULL)
        snprintf(topic, tlen, "%s", m->topic);
    cJSON *doc = cJSON_Parse(m->payload);
    cr_assert_not_null(doc, "alert payload is not JSON: %s", m->payload);
    const char *why = validate(schema, schema, doc, "alert");
    cr_assert_null(why, "%s in %s", why, m->payload);
    it_msg_free(m);
    return doc;
}

static const char *s(const cJSON *o, const char *k)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
    return v ? v : "";
}

static double n(const cJSON *o, const char *k) { return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k)); }

static void pub(struct it_client *c, const char *topic, long long ts, const char *member, double v)
{
    char p[256];
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"%s\":%g}", ts, member, v);
    cr_assert_eq(it_publish(c, topic, p, 1, false), 0);
}

/* The nh3 rule with a `repeat:` (a string literal such as "4s"). */
#define NH3_REPEAT_RULE(every) \
    "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5,\n" \
    "     severity: major, repeat: " every "}\n"

#define NH3_RULE \
    "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5,\n" \
    "     clear_below: 1.2, severity: major}\n"

/* broker_line: NULL, or a line for the daemon's broker section. */
/* A broker, and a daemon with the water source and the nh3 rule; broker_line
 * (NULL: none) is one more line of its broker: section. */
static void start_nh3(struct it_broker *b, struct it_daemon *d, const char *broker_line)
{
    cr_assert_eq(it_broker_start(b), 0);
    cr_assert_eq(it_daemon_start(d, b, WATER_SRC NH3_RULE), 0);
    if (broker_line != NULL)
        cr_assert_eq(it_daemon_set_broker(d, broker_line), 0);
}

static void episode_with_retained_state(const char *broker_line)
{
    struct it_broker b;
    struct it_daemon d;
    char topic[256];
    start_nh3(&b, &d, broker_line);
    struct it_client *sub = it_client_new(&b, "sub-all"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;

    pub(dev, "sensors/water/dongtan/w01", t, "nh3_n", 2.31);
    cJSON *a = next_alert(sub, 10000, topic, sizeof(topic));
    cr_assert_not_null(a, "no alert within 10 s");
    cr_assert_str_eq(topic, "alerts/major/nh3/dongtan/w01");
    cr_assert_str_eq(s(a, "status"), "firing");
    cr_assert_str_eq(s(a, "rule"), "nh3");
    cr_assert_str_eq(s(a, "site"), "dongtan");
    cr_assert_str_eq(s(a, "metric"), "nh3_n");
    cr_assert_eq(n(a, "value"), 2.31);
    cr_assert_eq(n(a, "threshold"), 1.5);
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    double seq1 = n(a, "seq");
    cJSON_Delete(a);

    /* A subscriber that connects now sees what is firing. */
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    cJSON *r = next_alert(late, 5000, topic, sizeof(topic));
    cr_assert_not_null(r, "no retained active state");
    cr_assert_str_eq(topic, "alerts/active/nh3/dongtan/w01");
    cr_assert_str_eq(s(r, "id"), id);
    cJSON_Delete(r);

    /* In the hysteresis band: nothing. Below clear_below: resolved, same id, next seq. */
    pub(dev, "sensors/water/dongtan/w01", t + 1000, "nh3_n", 1.3);
    pub(dev, "sensors/water/dongtan/w01", t + 2000, "nh3_n", 1.1);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id);
    cr_assert_eq(n(a, "seq"), seq1 + 1);
    cJSON_Delete(a);

    /* Retained state cleared: a new late subscriber sees nothing. */
    struct it_client *later = it_client_new(&b, "later");
    cr_assert_eq(it_subscribe(later, "alerts/active/#", 1), 0);
    struct it_msg *m = it_next(later, 1500);
    cr_assert_null(m, "retained state still there: %s", m ? m->payload : "");

    it_client_free(later);
    it_client_free(late);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, episode_with_retained_state_for_late_subscribers)
{
    episode_with_retained_state(NULL);
}

/* The same with the daemon on MQTT 5: its samples arrive and its alerts and
 * retained states go out as over 3.1.1. */
Test(alerts, over_mqtt5_an_episode_and_its_retained_state_go_out_as_over_311)
{
    episode_with_retained_state("protocol: \"5\"");
}

static void restart_during_firing(bool kill9)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;

    pub(dev, "sensors/water/hengsha/w02", t, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    double seq = n(a, "seq");
    cJSON_Delete(a);

    if (kill9)
        it_daemon_kill9(&d);
    else
        it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);

    /* QoS 1 is at-least-once: after kill -9 Paho may send the firing message
     * again if its PUBACK was not recorded. That is the same message (same
     * seq), not a new alert; anything with a higher seq would be a re-fire. */
    pub(dev, "sensors/water/hengsha/w02", t + 1000, "nh3_n", 2.2);
    while ((a = next_alert(sub, 2000, NULL, 0)) != NULL) {
        cr_assert_leq(n(a, "seq"), seq, "re-fired after restart: seq %g", n(a, "seq"));
        cJSON_Delete(a);
    }
    pub(dev, "sensors/water/hengsha/w02", t + 2000, "nh3_n", 0.5);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no resolve after restart");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id, "same episode across the restart");
    cr_assert_eq(n(a, "seq"), seq + 1, "seq continues across restarts");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, clean_restart_during_firing_neither_refires_nor_resolves) { restart_during_firing(false); }
Test(alerts, kill9_during_firing_neither_refires_nor_resolves) { restart_during_firing(true); }

Test(alerts, restart_during_pending_continues_the_for_timer)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC
        "rules:\n  - {name: do-low, kind: threshold, select: \"water/*/*/do\", below: 3, for: 10m,\n"
        "     severity: major}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    long long t = now_ms() - 3600000;

    pub(dev, "sensors/water/x/w01", t, "do", 2.0);                   /* pending from t */
    pub(dev, "sensors/water/x/w01", t + 5 * 60000, "do", 2.1);
    cr_assert_null(it_next(sub, 1000), "fired before `for` elapsed");
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);
    pub(dev, "sensors/water/x/w01", t + 10 * 60000, "do", 2.2);      /* 10 min after t */
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "pending `for` did not survive the restart");
    cr_assert_str_eq(s(a, "status"), "firing");
    char started[40];
    snprintf(started, sizeof(started), "%s", s(a, "started_at"));
    time_t tt = (time_t)(t / 1000);
    struct tm tm;
    char want[40];
    gmtime_r(&tt, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    cr_assert_str_eq(started, want, "started_at is the first breaching sample");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

static void rfc3339(long long ms, char *out, size_t len)
{
    time_t tt = (time_t)(ms / 1000);
    struct tm tm;
    char sec[32];
    gmtime_r(&tt, &tm);
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03lldZ", sec, ms % 1000);
}

/* SPEC §1: a buffered sample uploaded after the live one is evaluated on its
 * own time; the episode it raises is late, and so is its resolve. */
/* The nh3 rule's daemon, a subscriber to alerts/major/#, and a device on
 * topic back after an outage: a normal live sample at *t (now - 1 s); *old
 * is two hours before it, in the device's buffer. */
static void back_after_an_outage(struct it_broker *b, struct it_daemon *d, struct it_client **sub,
                                 struct it_client **dev, const char *topic, long long *t,
                                 long long *old)
{
    start_nh3(b, d, NULL);
    *sub = it_client_new(b, "sub");
    *dev = it_client_new(b, "dev");
    cr_assert_eq(it_subscribe(*sub, "alerts/major/#", 1), 0);
    *t = now_ms() - 1000;
    *old = *t - 2 * 3600000LL;
    pub(*dev, topic, *t, "nh3_n", 1.0);
    cr_assert_null(it_next(*sub, 1000), "a normal live sample raised something");
}

/* A late sample of a threshold rule is judged once its upload pauses (10 s
 * after the last one came, rule_late.c's holds()): wait that and more. */
#define LATE_WAIT_MS 25000

/* Poll the daemon's /metrics until `sample` reaches want. */
static void wait_metric_at_least(const struct it_daemon *d, const char *sample, double want)
{
    long long end = it_now_ms() + 10000;
    while (it_metric(d, sample) < want && it_now_ms() < end) {
        struct timespec ts = { 0, 100 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_assert_geq(it_metric(d, sample), want, "%s never reached %g", sample, want);
}

Test(alerts, a_late_sample_raises_and_resolves_a_late_episode)
{
    struct it_broker b;
    struct it_daemon d;
    struct it_client *sub, *dev;
    char want[40];
    long long t, old;

    back_after_an_outage(&b, &d, &sub, &dev, "sensors/water/late/w01", &t, &old);
    pub(dev, "sensors/water/late/w01", old, "nh3_n", 2.31);        /* from the buffer */
    cJSON *a = next_alert(sub, LATE_WAIT_MS, NULL, 0);
    cr_assert_not_null(a, "the late sample raised nothing");
    cr_assert_str_eq(s(a, "status"), "firing");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")), "firing not late");
    rfc3339(old, want, sizeof(want));
    cr_assert_str_eq(s(a, "ts"), want);
    cr_assert_str_eq(s(a, "started_at"), want);
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "the late episode was not resolved");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")), "resolve not late");
    rfc3339(t, want, sizeof(want));
    cr_assert_str_eq(s(a, "ts"), want, "resolved by the stored live sample");
    cJSON_Delete(a);
    cr_assert_null(it_next(sub, 1000), "more than one late episode");
    wait_metric_at_least(&d, "islewatch_late_samples_total", 1);
    /* The history shows them as late too: the time column is the sample's,
     * not when they were published, and a reader must be able to tell. */
    char url[64], *out = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", d.http_port);
    cr_assert_eq(it_run(&out, "'%s' alerts --url %s", it_bin("islewatch"), url), 0);
    cr_expect_not_null(strstr(out, "[late] "), "alerts table: %s", out);
    free(out);
    cr_assert_eq(it_run(&out, "'%s' alerts --format csv --url %s", it_bin("islewatch"), url), 0);
    cr_expect_not_null(strstr(out, ",message,late,silenced,acked_at,acked_by\n"), "csv: %s", out);
    cr_expect_not_null(strstr(out, ",true,false,,\n"), "csv rows not late: %s", out);
    free(out);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * The retained state shows what fires now (SPEC §5). A backlog's episode on
 * an instance whose live episode is firing used to take the retained topic
 * for a moment (its firing set it, its resolve put the live one back): a
 * subscriber connecting then saw an episode of hours ago (audit).
 */
Test(alerts, a_late_episode_leaves_the_retained_state_of_a_live_one_alone)
{
    struct it_broker b;
    struct it_daemon d;
    char topic[256], live_id[32];

    start_nh3(&b, &d, NULL);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 1000, old = t - 2 * 3600000LL;
    pub(dev, "sensors/water/dongtan/w01", t, "nh3_n", 2.31);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "the live sample raised nothing");
    cr_assert_not(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")));
    snprintf(live_id, sizeof(live_id), "%s", s(a, "id"));
    cJSON_Delete(a);
    struct it_client *watch = it_client_new(&b, "watch");
    cr_assert_eq(it_subscribe(watch, "alerts/active/#", 1), 0);
    a = next_alert(watch, 5000, topic, sizeof(topic));
    cr_assert_not_null(a, "no retained state");
    cr_assert_str_eq(s(a, "id"), live_id);
    cJSON_Delete(a);

    pub(dev, "sensors/water/dongtan/w01", old, "nh3_n", 2.31);           /* the backlog */
    pub(dev, "sensors/water/dongtan/w01", old + 60000, "nh3_n", 1.0);
    for (int k = 0; k < 2; k++) {                                         /* firing, resolved */
        a = next_alert(sub, LATE_WAIT_MS, NULL, 0);
        cr_assert_not_null(a, "late message %d missing", k);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")));
        cr_assert_str_neq(s(a, "id"), live_id);
        cJSON_Delete(a);
    }
    struct it_msg *m;
    while ((m = it_next(watch, 2000)) != NULL) {
        cr_expect(m->payload[0] != '\0', "the live episode's state was cleared");
        cJSON *st = cJSON_Parse(m->payload);
        cr_expect_str_eq(s(st, "id"), live_id, "the retained state showed another episode: %s",
                         m->payload);
        cJSON_Delete(st);
        it_msg_free(m);
    }
    it_client_free(watch);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §1's buffered upload after an outage, sent in a burst after the live
 * data resumed: the store takes it faster than the rules, so each message's
 * late judgement used to see the ones after it already stored, took their
 * episode for one already decided, and nothing was ever published. The
 * rules now judge late samples once the queue is empty (iw_rules_defer_late).
 */
Test(alerts, a_backlog_burst_after_live_data_raises_its_late_episode_once)
{
    struct it_broker b;
    struct it_daemon d;
    struct it_client *sub, *dev;
    char p[128], want[40];
    long long t, old;

    back_after_an_outage(&b, &d, &sub, &dev, "sensors/water/burst/w01", &t, &old);
    for (int i = 0; i <= 40; i++) {                                  /* the buffer, at once */
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"nh3_n\":%g}", old + i * 60000LL, i < 40 ? 2.0 : 1.0);
        cr_assert_eq(it_publish_async(dev, "sensors/water/burst/w01", p, 1), 0);
    }
    cr_assert_eq(it_flush(dev, 30000), 0);
    cJSON *a = next_alert(sub, LATE_WAIT_MS, NULL, 0);
    cr_assert_not_null(a, "the backlog raised nothing");
    cr_assert_str_eq(s(a, "status"), "firing");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")));
    rfc3339(old, want, sizeof(want));
    cr_assert_str_eq(s(a, "started_at"), want);
    cJSON_Delete(a);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "the late episode was not resolved");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")));
    /* Judged whole (held until the upload pauses, so a pause of the burst
     * on a loaded machine does not cut it), the backlog's own 1.0 resolves it. */
    rfc3339(old + 40 * 60000LL, want, sizeof(want));
    cr_assert_str_eq(s(a, "ts"), want, "not resolved by the backlog's 1.0");
    cJSON_Delete(a);
    struct it_msg *m = it_next(sub, 1500);
    cr_assert_null(m, "more than one late episode: %s", m ? m->payload : "");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A stop while late samples wait for their upload's pause judges them before
 * the broker link goes down: the late alerts are published before the
 * daemon exits, not at its next start (re-audit: a SIGTERM in the pause left
 * them in the outbox).
 */
Test(alerts, a_stop_during_the_upload_pause_publishes_the_late_alerts_before_it_exits)
{
    struct it_broker b;
    struct it_daemon d;
    struct it_client *sub, *dev;
    long long t, old;

    back_after_an_outage(&b, &d, &sub, &dev, "sensors/water/stop/w01", &t, &old);
    pub(dev, "sensors/water/stop/w01", old, "nh3_n", 2.31);       /* held for 10 s */
    wait_metric_at_least(&d, "islewatch_late_samples_total", 1);
    it_daemon_stop(&d);                                          /* SIGTERM, exits */
    for (int k = 0; k < 2; k++) {
        cJSON *a = next_alert(sub, 5000, NULL, 0);
        cr_assert_not_null(a, "late alert %d was not published before the stop", k);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")));
        cr_assert_str_eq(s(a, "status"), k == 0 ? "firing" : "resolved");
        cJSON_Delete(a);
    }
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A data logger re-sends its buffer a record a second. Judged at each pause
 * of the daemon's queue, the first records' episode resolved at the next
 * point stored by then (the live sample after the outage) and a later
 * episode of the same backlog was published beside it. Held until the
 * upload pauses, the backlog is judged whole: one episode, in its own times.
 */
Test(alerts, a_backlog_sent_a_record_a_second_is_judged_whole)
{
    static const double v[] = { 1.0, 2.0, 2.0, 1.0, 2.0, 1.0 };
    static const struct { int i; const char *status; } want_at[] = {
        { 1, "firing" }, { 3, "resolved" }, { 4, "firing" }, { 5, "resolved" },
    };
    struct it_broker b;
    struct it_daemon d;
    struct it_client *sub, *dev;
    char p[128], want[40];
    long long t, old;

    back_after_an_outage(&b, &d, &sub, &dev, "sensors/water/slow/w01", &t, &old);
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"nh3_n\":%g}", old + i * 60000LL, v[i]);
        cr_assert_eq(it_publish_async(dev, "sensors/water/slow/w01", p, 1), 0);
        cr_assert_eq(it_flush(dev, 10000), 0);
        sleep(1);
    }
    for (int k = 0; k < 4; k++) {
        cJSON *a = next_alert(sub, LATE_WAIT_MS, NULL, 0);
        cr_assert_not_null(a, "alert %d of the backlog's two episodes missing", k);
        cr_assert_str_eq(s(a, "status"), want_at[k].status, "alert %d", k);
        rfc3339(old + want_at[k].i * 60000LL, want, sizeof(want));
        cr_assert_str_eq(s(a, "ts"), want, "alert %d (%s) not at the backlog's own time", k,
                         want_at[k].status);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "late")), "alert %d", k);
        cJSON_Delete(a);
    }
    struct it_msg *m = it_next(sub, 1500);
    cr_assert_null(m, "more alerts than the backlog's two episodes: %s", m ? m->payload : "");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, broker_restart_sends_no_duplicate_alerts)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    struct it_client *dev = it_client_new(&b, "dev"), *sub = it_client_new(&b, "sub");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;
    pub(dev, "sensors/water/a/w1", t, "nh3_n", 3.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    cJSON_Delete(a);
    it_client_free(sub);
    it_client_free(dev);

    it_broker_stop_keep(&b);
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "subscribed to", 2, 20000), "daemon resubscribed");
    sub = it_client_new(&b, "sub2");
    dev = it_client_new(&b, "dev2");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/a/w1", t + 1000, "nh3_n", 3.1);          /* unchanged condition */
    struct it_msg *m = it_next(sub, 2000);
    cr_assert_null(m, "alert storm after reconnect: %s", m ? m->payload : "");
    it_client_free(sub);
    it_client_free(dev);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, absence_of_a_silent_camera_and_of_a_never_seen_inventory_camera)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        CAM_SRC
        "devices:\n  - {source: camera, site: dongtan, device: c09}\n"
        "rules:\n  - {name: cam-offline, kind: absence, select: \"camera/*/*\", after: 3s,\n"
        "     severity: major}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    cr_assert_eq(it_publish(dev, "cameras/dongtan/c01/status", "{\"online\":true,\"fps\":25}", 1, false), 0);

    bool c01 = false, c09 = false;
    for (int i = 0; i < 4 && !(c01 && c09); i++) {
        char topic[256];
        cJSON *a = next_alert(sub, 15000, topic, sizeof(topic));
        if (a == NULL)
            break;
        if (strcmp(s(a, "status"), "firing") == 0 && strcmp(s(a, "rule"), "cam-offline") == 0) {
            c01 = c01 || strcmp(s(a, "device"), "c01") == 0;
            c09 = c09 || strcmp(s(a, "device"), "c09") == 0;
        }
        cJSON_Delete(a);
    }
    cr_assert(c01, "silent camera c01 raised no absence alert");
    cr_assert(c09, "never-seen inventory camera c09 raised no absence alert");

    /* The next heartbeat resolves it. */
    it_client_free(sub);
    sub = it_client_new(&b, "sub-b");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    cr_assert_eq(it_publish(dev, "cameras/dongtan/c01/status", "{\"online\":true}", 1, false), 0);
    cJSON *r = NULL;
    for (int i = 0; i < 4; i++) {
        r = next_alert(sub, 5000, NULL, 0);
        if (r == NULL || (strcmp(s(r, "device"), "c01") == 0 && strcmp(s(r, "status"), "resolved") == 0))
            break;
        cJSON_Delete(r);
        r = NULL;
    }
    cr_assert_not_null(r, "heartbeat did not resolve the absence");
    cJSON_Delete(r);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* `islewatch alerts --format json` against the running daemon, polled until it lists n alerts. */
static cJSON *history(const struct it_daemon *d, int n)
{
    long long end = it_now_ms() + 10000;
    for (;;) {
        char *out = NULL;
        int rc = it_run(&out, "'%s' alerts --url http://127.0.0.1:%d --format json",
                        it_bin("islewatch"), d->http_port);
        cJSON *doc = rc == 0 && out != NULL ? cJSON_Parse(out) : NULL;
        cr_assert(cJSON_IsArray(doc), "islewatch alerts: exit %d, %s", rc, out ? out : "");
        free(out);
        if (cJSON_GetArraySize(doc) >= n)
            return doc;
        cr_assert(it_now_ms() < end, "history has %d alerts after 10 s, want %d",
                  cJSON_GetArraySize(doc), n);
        cJSON_Delete(doc);
        struct timespec nap = { 0, 50 * 1000000L };
        nanosleep(&nap, NULL);
    }
}

/* How many times needle occurs in hay. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The published alert that must come next on sub: its seq. */
static double next_seq(struct it_client *sub, const char *site, const char *device, const char *status)
{
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no %s alert of %s/%s", status, site, device);
    cr_assert_str_eq(s(a, "site"), site, "a silenced alert was published?");
    cr_assert_str_eq(s(a, "device"), device);
    cr_assert_str_eq(s(a, "status"), status);
    cr_assert_null(cJSON_GetObjectItem(a, "silenced"));
    double seq = n(a, "seq");
    cJSON_Delete(a);
    return seq;
}

/* SPEC §5: seq increases by one for every message published, across restarts;
 * SPEC §4: a silenced alert is recorded, not published, so it takes no seq. */
Test(alerts, silenced_alerts_take_no_seq_and_are_still_in_the_history)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE
        "silences:\n  - {match: {site: dongtan}, reason: dredging}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;

    pub(dev, "sensors/water/xisha/w01", t, "nh3_n", 2.0);
    double s1 = next_seq(sub, "xisha", "w01", "firing");
    pub(dev, "sensors/water/dongtan/w01", t, "nh3_n", 2.0);          /* silenced */
    cJSON_Delete(history(&d, 2));
    /* Restart between two silenced alerts recorded after the same published seq. */
    it_client_free(sub);
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);
    sub = it_client_new(&b, "sub2");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/dongtan/w02", t, "nh3_n", 2.0);          /* silenced */
    cJSON_Delete(history(&d, 3));
    pub(dev, "sensors/water/xisha/w02", t, "nh3_n", 2.0);
    cr_assert_eq(next_seq(sub, "xisha", "w02", "firing"), s1 + 1, "a silenced alert used up a seq");
    pub(dev, "sensors/water/dongtan/w01", t + 1000, "nh3_n", 1.0);   /* silenced resolve */
    cJSON_Delete(history(&d, 5));
    pub(dev, "sensors/water/xisha/w01", t + 1000, "nh3_n", 1.0);
    cr_assert_eq(next_seq(sub, "xisha", "w01", "resolved"), s1 + 2, "a silenced alert used up a seq");

    /* All six are in the history, in order; the silenced ones carry the seq of
     * the message published before them and validate against the schema. */
    static const struct { const char *site, *device, *status; double dseq; bool silenced; } want[] = {
        { "xisha", "w01", "firing", 0, false },   { "dongtan", "w01", "firing", 0, true },
        { "dongtan", "w02", "firing", 0, true },  { "xisha", "w02", "firing", 1, false },
        { "dongtan", "w01", "resolved", 1, true }, { "xisha", "w01", "resolved", 2, false },
    };
    cJSON *h = history(&d, 6);
    cr_assert_eq(cJSON_GetArraySize(h), 6);
    char *out = NULL;
    cr_assert_eq(it_run(&out, "'%s' alerts --url http://127.0.0.1:%d", it_bin("islewatch"),
                        d.http_port), 0);
    cr_expect_eq(count_of(out, "[silenced] "), 3, "the table marks the silenced rows: %s", out);
    free(out);
    for (int i = 0; i < 6; i++) {
        cJSON *a = cJSON_GetArrayItem(h, i);
        const char *why = validate(schema, schema, a, "alert");
        cr_assert_null(why, "history item %d: %s", i, why);
        cr_expect_str_eq(s(a, "site"), want[i].site, "item %d", i);
        cr_expect_str_eq(s(a, "device"), want[i].device, "item %d", i);
        cr_expect_str_eq(s(a, "status"), want[i].status, "item %d", i);
        cr_expect_eq(n(a, "seq"), s1 + want[i].dseq, "item %d", i);
        cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItem(a, "silenced")), want[i].silenced, "item %d", i);
    }
    cJSON_Delete(h);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §5: the retained state shows what is firing now. An episode published
 * before a silence began resolves while silenced: the resolve is not
 * published, but its retained "firing" is cleared all the same. */
/* POST a run-time silence of site dongtan for 1 h; its JSON (with "id"). */
static cJSON *silence_dongtan(const struct it_daemon *d)
{
    char *out = NULL;
    cr_assert_eq(it_run(&out, "curl -fsS -X POST -H 'Authorization: Bearer secret-token' "
                        "-d '{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\"}' "
                        "http://127.0.0.1:%d/api/v1/silences", d->http_port), 0,
                 "POST /api/v1/silences: %s", out ? out : "");
    cJSON *sil = cJSON_Parse(out);
    cr_assert_not_null(sil, "POST /api/v1/silences answered %s", out);
    free(out);
    return sil;
}

/* DELETE the silence sil (silence_dongtan's answer), and free it. */
static void end_silence(const struct it_daemon *d, cJSON *sil)
{
    char *out = NULL;
    const char *sid = cJSON_GetStringValue(cJSON_GetObjectItem(sil, "id"));
    cr_assert_not_null(sid, "no silence id in the answer");
    cr_assert_eq(it_run(&out, "curl -fsS -X DELETE -H 'Authorization: Bearer secret-token' "
                        "http://127.0.0.1:%d/api/v1/silences/%s", d->http_port, sid), 0,
                 "DELETE /api/v1/silences/%s: %s", sid, out ? out : "");
    free(out);
    cJSON_Delete(sil);
}

/* An episode published, then silenced, then resolved under the silence:
 * the retained firing state on `retained` must be cleared. */
static void silenced_resolve_clears(const char *cfg, const char *retained)
{
    struct it_broker b;
    struct it_daemon d;
    char topic[256];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, cfg), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    long long t = now_ms() - 60000;

    pub(dev, "sensors/water/dongtan/w01", t, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, topic, sizeof(topic));
    cr_assert_not_null(a, "no alert within 10 s");
    cr_assert_str_eq(topic, "alerts/major/nh3/dongtan/w01");
    cJSON_Delete(a);
    a = next_alert(sub, 5000, topic, sizeof(topic));
    cr_assert_not_null(a, "no retained state");
    cr_assert_str_eq(topic, retained);
    cJSON_Delete(a);

    cJSON_Delete(silence_dongtan(&d));
    pub(dev, "sensors/water/dongtan/w01", t + 1000, "nh3_n", 1.0);    /* silenced resolve */
    cJSON *h = history(&d, 2);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(h, 1), "silenced")), true,
                 "the resolve was not silenced");
    cJSON_Delete(h);
    struct it_msg *m = it_next(sub, 5000);
    cr_assert_not_null(m, "the retained firing state was not cleared");
    cr_assert_str_eq(m->topic, retained, "published: %s", m->payload);
    cr_assert_eq(m->len, 0, "retained state after the silenced resolve: %s", m->payload);
    it_msg_free(m);
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    m = it_next(late, 1500);
    cr_assert_null(m, "retained state still there: %s", m ? m->payload : "");
    it_client_free(late);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, a_silenced_resolve_clears_the_retained_state_of_an_episode_published_before)
{
    silenced_resolve_clears(WATER_SRC NH3_RULE, "alerts/active/nh3/dongtan/w01");
}

/* With {status} in active_topic the clear went to the .../resolved/... topic
 * and the firing state stayed retained for good. */
Test(alerts, a_silenced_resolve_clears_the_firing_state_under_an_active_topic_with_status)
{
    silenced_resolve_clears(WATER_SRC "alerts:\n  active_topic: \"alerts/active/{status}/{rule}/{site}/{device}\"\n"
                            NH3_RULE, "alerts/active/firing/nh3/dongtan/w01");
}

/* The same across a restart: the episode's latest record was silenced (a
 * severity change under the silence), so the restarted daemon could not
 * tell its state had been published, and left it retained for good. */
Test(alerts, a_silenced_resolve_after_a_restart_still_clears_the_retained_state)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC
        "rules:\n  - {name: wq, kind: water_quality, select: \"water/*/*\", target: III,\n"
        "     window: 1m, severity: {below_target: major, worse_than_v: critical}}\n"), 0);
    struct it_client *dev = it_client_new(&b, "dev");
    long long t = now_ms() - 600000;
    pub(dev, "sensors/water/dongtan/w01", t, "nh3_n", 1.2);               /* Class IV: major */
    cr_assert(it_daemon_wait_log(&d, "firing wq water/dongtan/w01", 1, 10000), "no firing");
    cJSON_Delete(silence_dongtan(&d));
    pub(dev, "sensors/water/dongtan/w01", t + 70000, "nh3_n", 2.5);       /* 劣V, silenced */
    cr_assert(it_daemon_wait_log(&d, "silenced firing wq water/dongtan/w01", 1, 10000),
              "no silenced severity change");
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);
    struct it_client *watch = it_client_new(&b, "watch");
    cr_assert_eq(it_subscribe(watch, "alerts/active/#", 1), 0);
    struct it_msg *m = it_next(watch, 5000);
    cr_assert_not_null(m, "no retained state before the resolve");
    cr_assert_gt(m->len, 0, "the retained state was cleared before the resolve");
    it_msg_free(m);
    pub(dev, "sensors/water/dongtan/w01", t + 140000, "nh3_n", 0.1);      /* silenced resolve */
    m = it_next(watch, 10000);
    cr_assert_not_null(m, "the retained firing state was not cleared");
    cr_assert_eq(m->len, 0, "retained state after the silenced resolve: %s", m->payload);
    it_msg_free(m);
    it_client_free(watch);
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    m = it_next(late, 1500);
    cr_assert_null(m, "retained state still there: %s %s", m ? m->topic : "", m ? m->payload : "");
    it_client_free(late);
    it_client_free(dev);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, an_episode_still_firing_when_its_silence_ends_is_published_then)
{
    struct it_broker b;
    struct it_daemon d;
    char topic[256];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);

    cJSON *sil = silence_dongtan(&d);
    pub(dev, "sensors/water/dongtan/w01", now_ms() - 60000, "nh3_n", 2.0);   /* silenced firing */
    cJSON *h = history(&d, 1);
    cJSON *first = cJSON_GetArrayItem(h, 0);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(first, "silenced")), true, "not silenced");
    char id[32];
    snprintf(id, sizeof(id), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(first, "id")));
    cJSON_Delete(h);
    struct it_msg *m = it_next(sub, 1000);
    cr_assert_null(m, "published while silenced: %s %s", m ? m->topic : "", m ? m->payload : "");

    end_silence(&d, sil);

    cJSON *a = next_alert(sub, 5000, topic, sizeof(topic));
    cr_assert_not_null(a, "the episode still firing was not published when its silence ended");
    cr_assert_str_eq(topic, "alerts/major/nh3/dongtan/w01");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "firing");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")), id, "not the same episode");
    cr_assert_null(cJSON_GetObjectItem(a, "silenced"));
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "seq")), 1, "the first published message");
    cJSON_Delete(a);
    a = next_alert(sub, 5000, topic, sizeof(topic));
    cr_assert_not_null(a, "no retained state");
    cr_assert_str_eq(topic, "alerts/active/nh3/dongtan/w01");
    cJSON_Delete(a);
    m = it_next(sub, 1000);
    cr_assert_null(m, "published twice: %s %s", m ? m->topic : "", m ? m->payload : "");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §4: again only after `repeat:`. The message that goes out when a
 * silence ends counts: the rule's own reminder schedule, which ran on during
 * the silence, does not follow it sooner than `repeat`. Here the silence ends
 * about 3 s into a 4 s schedule, so without the hold-back a reminder comes
 * about 1 s after the unsilenced message. */
Test(alerts, no_reminder_sooner_than_repeat_after_a_silence_ends)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_REPEAT_RULE("4s")), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    cJSON *sil = silence_dongtan(&d);
    pub(dev, "sensors/water/dongtan/w01", now_ms() - 60000, "nh3_n", 2.0);   /* silenced firing */
    cJSON_Delete(history(&d, 1));
    struct timespec pause = { 3, 0 };
    nanosleep(&pause, NULL);
    end_silence(&d, sil);

    cJSON *a = next_alert(sub, 5000, NULL, 0);
    cr_assert_not_null(a, "the episode still firing was not published when its silence ended");
    cJSON_Delete(a);
    /* It was recorded before it reached us: 3 s here are under 4 s there. */
    a = next_alert(sub, 3000, NULL, 0);
    cr_assert_null(a, "a reminder sooner than repeat: after the unsilenced message: %s",
                   a ? cJSON_PrintUnformatted(a) : "");
    a = next_alert(sub, 8000, NULL, 0);
    cr_assert_not_null(a, "no reminder at all after the silence ended");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a, "status")), "firing");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §4: a firing alert is published again every `repeat:`, not every
 * other time. The publisher's hold-back (above) measured from when the
 * previous reminder went out, a little after it was due on the rule's 250 ms
 * tick, so a reminder whose tick came sooner after its due time than the
 * previous one's was dropped: repeat: 3s gave reminders 3 s, then 6 s apart. */
Test(alerts, reminders_come_every_repeat)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_REPEAT_RULE("3s")), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/dongtan/w01", now_ms() - 60000, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no alert within 10 s");
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);

    /* Reminders due 3, 6, 9 and 12 s after the firing; 13 s leave the tick and
     * the publish their margin. Each is due `repeat` after the one before. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int reminders = 0;
    double prev_ts = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = 13000 - ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || (a = next_alert(sub, (int)left, NULL, 0)) == NULL)
            break;
        cr_assert_str_eq(s(a, "status"), "firing");
        cr_assert_str_eq(s(a, "id"), id, "a reminder of another episode");
        char ts[40];
        snprintf(ts, sizeof(ts), "%s", s(a, "ts"));
        struct tm tm = { 0 };
        int ms = 0;
        cr_assert_not_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm), "ts %s", ts);
        cr_assert_eq(sscanf(ts + 20, "%3d", &ms), 1, "ts %s", ts);
        double t = (double)timegm(&tm) * 1000 + ms;
        if (reminders > 0)
            cr_assert_eq(t - prev_ts, 3000, "reminder at %s: %.0f ms after the one before, not repeat: 3s",
                         ts, t - prev_ts);
        prev_ts = t;
        reminders++;
        cJSON_Delete(a);
    }
    cr_assert_geq(reminders, 4, "%d reminder(s) in 13 s with repeat: 3s (expected 4)", reminders);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §4: a restart keeps a firing alert's reminders on their schedule. The
 * publisher took each episode it reloaded at start as published then, so the
 * first reminder due within `repeat` of the restart was held back as "too soon"
 * and the next came a whole `repeat` late. */
Test(alerts, a_restart_keeps_the_reminder_schedule)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_REPEAT_RULE("4s")), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/dongtan/w01", now_ms(), "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no alert within 10 s");
    char id[32], fired[40], ts[40];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    snprintf(fired, sizeof(fired), "%s", s(a, "ts"));
    cJSON_Delete(a);
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);

    /* A reminder's ts is when it was due: the first one, `repeat` after the
     * firing was published (within a second of its sample's ts), not the second. */
    a = next_alert(sub, 15000, NULL, 0);
    cr_assert_not_null(a, "no reminder after the restart");
    cr_assert_str_eq(s(a, "id"), id);
    snprintf(ts, sizeof(ts), "%s", s(a, "ts"));
    struct tm t0 = { 0 }, t1 = { 0 };
    cr_assert_not_null(strptime(fired, "%Y-%m-%dT%H:%M:%S", &t0), "ts %s", fired);
    cr_assert_not_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &t1), "ts %s", ts);
    double gap = difftime(timegm(&t1), timegm(&t0));
    cr_expect(gap < 7, "the first reminder after the restart is due %s, %.0f s after the firing "
              "at %s: the one due 4 s after it was held back", ts, gap, fired);
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, reload_keeps_unchanged_rules_refuses_invalid_files_resolves_changed_rules)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    long long t = now_ms() - 60000;
    pub(dev, "sensors/water/r/w1", t, "nh3_n", 2.5);
    cJSON *a = next_alert(sub, 10000, NULL, 0);           /* firing on alerts/major */
    cr_assert_not_null(a);
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);
    a = next_alert(sub, 5000, NULL, 0);                   /* the retained copy on alerts/active */
    cr_assert_not_null(a);
    cJSON_Delete(a);

    /* An invalid file is refused and the running config stays; then a valid
     * one adds a rule and leaves nh3 as it was: no message about nh3. */
    it_daemon_rewrite_from(&d, "rules:", NH3_RULE "  - {name: tp, kind: threshold, select: \"water/*/*/tp\", above: 0.4, severity: minor_typo}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reload of", 1, 10000), "invalid file refused");
    cr_assert(it_daemon_wait_log(&d, "error: rule \"tp\"", 1, 1000), "the refusal names the error");
    char *bare = NULL;                  /* the same FILE:LINE:COLUMN: lines as at start (SPEC §3) */
    cr_assert_eq(it_run(&bare, "grep '^%s:[0-9]*:[0-9]*: error: rule \"tp\"' '%s'", d.cfg, d.log), 0,
                 "the refusal's lines do not start with %s:LINE:COLUMN:", d.cfg);
    free(bare);
    it_daemon_rewrite_from(&d, "rules:", NH3_RULE "  - {name: tp, kind: threshold, select: \"water/*/*/tp\", above: 0.4, severity: warning}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "valid file applied");
    struct it_msg *m = it_next(sub, 1500);
    cr_assert_null(m, "an unchanged rule's alert changed on reload: %s", m ? m->payload : "");
    pub(dev, "sensors/water/r/w1", t + 1000, "nh3_n", 2.6);
    m = it_next(sub, 1500);
    cr_assert_null(m, "re-fired after reload: %s", m ? m->payload : "");

    /* Change nh3's threshold: its alert resolves. */
    it_daemon_rewrite_from(&d, "rules:", "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 2.0,\n"
                      "     severity: major}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 2, 10000));
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "changed rule did not resolve its alert");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id);
    cr_assert_str_eq(s(a, "message"), "r/w1 resolved because the rule was changed",
                     "the value did not come back: the message must say why it resolved");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* nh3 with a per-site override for xisha; `xisha` is its YAML (e.g. "{above: 3}"). */
#define NH3_SITES_RULE(xisha) \
    "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5,\n" \
    "     severity: major, sites: {xisha: " xisha "}}\n"

/*
 * SPEC §3/§4: an alert instance is one (rule, site, device[, metric]); editing
 * one site's override changes nothing for the other sites, so a reload or a
 * restart must neither resolve nor re-raise their alerts. The edited site's
 * own alert resolves, as for any changed condition.
 */
static void another_sites_override_edited(bool restart)
{
    struct it_broker b;
    struct it_daemon d;
    char id[32], topic[256];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_SITES_RULE("{above: 3}")), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;

    pub(dev, "sensors/water/dongtan/w1", t, "nh3_n", 2.5);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "dongtan did not fire");
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);
    pub(dev, "sensors/water/xisha/w2", t, "nh3_n", 3.5);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "xisha did not fire");
    cr_assert_str_eq(s(a, "site"), "xisha");
    cJSON_Delete(a);

    it_daemon_rewrite_from(&d, "rules:", NH3_SITES_RULE("{above: 3.2}"));
    if (restart) {
        it_daemon_stop(&d);
        cr_assert_eq(it_daemon_restart(&d), 0);
    } else {
        it_daemon_signal(&d, SIGHUP);
        cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "valid file applied");
    }
    /* xisha's condition changed: its alert resolves; dongtan's stays as it was. */
    a = next_alert(sub, 10000, topic, sizeof(topic));
    cr_assert_not_null(a, "the edited site's alert did not resolve");
    cr_assert_str_eq(topic, "alerts/major/nh3/xisha/w2", "%s: %s", topic, s(a, "message"));
    cr_assert_str_eq(s(a, "status"), "resolved");
    cJSON_Delete(a);
    struct it_msg *m = it_next(sub, 2000);
    cr_assert_null(m, "an alert of a site whose override did not change: %s", m ? m->payload : "");
    pub(dev, "sensors/water/dongtan/w1", t + 1000, "nh3_n", 2.6);
    m = it_next(sub, 2000);
    cr_assert_null(m, "dongtan re-fired: %s", m ? m->payload : "");
    pub(dev, "sensors/water/dongtan/w1", t + 2000, "nh3_n", 1.0);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id, "not the episode from before the edit");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* Tuning `repeat:` is no change of the condition: a reload keeps the firing
 * alert (no resolve, no new episode) and its reminders follow the new repeat. */
Test(alerts, reload_of_a_changed_repeat_keeps_the_alert_and_follows_it)
{
    struct it_broker b;
    struct it_daemon d;
    char id[32];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_REPEAT_RULE("1h")), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);

    pub(dev, "sensors/water/dongtan/w1", now_ms() - 60000, "nh3_n", 2.5);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no firing");
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);

    it_daemon_rewrite_from(&d, "rules:", NH3_REPEAT_RULE("2s"));
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "valid file applied");
    a = next_alert(sub, 15000, NULL, 0);
    cr_assert_not_null(a, "no reminder under the new repeat: 2s");
    cr_assert_str_eq(s(a, "status"), "firing", "%s", s(a, "message"));
    cr_assert_str_eq(s(a, "id"), id, "a new episode");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, reload_of_another_sites_override_keeps_this_sites_alert)
{
    another_sites_override_edited(false);
}

Test(alerts, restart_with_another_sites_override_edited_keeps_this_sites_alert)
{
    another_sites_override_edited(true);
}

/*
 * SPEC §3: a reload keeps the alerts of unchanged rules as they are. A camera
 * that publishes its heartbeat retained and then goes silent is absent; a
 * reload that adds an unrelated rule must not resolve that (the broker sends
 * retained messages again to every SUBSCRIBE, so the reload must not
 * subscribe again to topics it already has).
 */
Test(alerts, reload_does_not_replay_retained_device_messages_into_unchanged_rules)
{
    struct it_broker b;
    struct it_daemon d;
    char hb[128];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        CAM_SRC
        "rules:\n" CAM_OFFLINE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    snprintf(hb, sizeof(hb), "{\"ts\":%lld,\"online\":true}", now_ms());
    cr_assert_eq(it_publish(dev, "cameras/dongtan/c01/status", hb, 1, true), 0);
    cJSON *a = next_alert(sub, 15000, NULL, 0);
    cr_assert_not_null(a, "the silent camera raised no absence alert");
    cr_assert_str_eq(s(a, "status"), "firing");
    cJSON_Delete(a);

    it_daemon_rewrite_from(&d, "rules:", "rules:\n" CAM_OFFLINE
                      "  - {name: fps-low, kind: threshold, select: \"camera/*/*/fps\", below: 5}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "valid file applied");
    struct it_msg *m = it_next(sub, 3000);
    cr_assert_null(m, "the reload changed the unchanged absence alert: %s", m ? m->payload : "");
    cr_expect_eq(it_metric(&d, "islewatch_messages_received_total{source=\"camera\"}"), 1,
                 "the retained heartbeat was received again on reload");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §3: a reload keeps the state of an unchanged rule, pending included. A
 * `for:` condition that began before the reload and still holds after it
 * fires when `for` has passed since it began (sample time), and a windowed
 * rule keeps the samples of its window.
 */
#define NH3_FOR_RULE \
    "  - {name: nh3-for, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5, for: 2m,\n" \
    "     severity: major}\n"
#define TP_AVG_RULE \
    "  - {name: tp-avg, kind: threshold, select: \"water/*/*/tp\", above: 0.4,\n" \
    "     window: {agg: avg, over: 1h}, severity: major}\n"

Test(alerts, reload_keeps_pending_and_windowed_state_of_unchanged_rules)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC "rules:\n" NH3_FOR_RULE TP_AVG_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t0 = now_ms() - 30 * 60000;
    pub(dev, "sensors/water/r/w1", t0, "nh3_n", 2.0);          /* pending: for 2m from t0 */
    pub(dev, "sensors/water/r/w1", t0, "tp", 0.7);             /* window avg 0.7 > 0.4: firing */
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "tp-avg did not fire");
    cr_assert_str_eq(s(a, "rule"), "tp-avg");
    cJSON_Delete(a);
    pub(dev, "sensors/water/r/w1", t0 + 60000, "tp", 0.3);     /* avg 0.5: still firing */
    pub(dev, "sensors/water/r/w1", t0 + 60000, "nh3_n", 2.0);  /* pending, 1 min of 2 */
    struct it_msg *m = it_next(sub, 1500);
    cr_assert_null(m, "nothing changes yet: %s", m ? m->payload : "");

    it_daemon_rewrite_from(&d, "rules:", "rules:\n" NH3_FOR_RULE TP_AVG_RULE
                      "  - {name: ph, kind: threshold, select: \"water/*/*/ph\", below: 6}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "valid file applied");

    /* The window still holds 0.7 and 0.3: with 0.3 more the average is 0.433, still firing.
     * A window emptied by the reload would average 0.3 and resolve. */
    pub(dev, "sensors/water/r/w1", t0 + 120000, "tp", 0.3);
    m = it_next(sub, 2000);
    cr_assert_null(m, "the reload emptied tp-avg's window: %s", m ? m->payload : "");
    /* 2 min after the condition began: nh3-for fires. Pending lost on reload would wait 2 min more. */
    pub(dev, "sensors/water/r/w1", t0 + 120000, "nh3_n", 2.0);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "nh3-for lost its pending state on reload and did not fire");
    cr_expect_str_eq(s(a, "rule"), "nh3-for");
    cr_expect_str_eq(s(a, "status"), "firing");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* The next alert of `rule` for `device` with `status` on sub within timeout_ms, or false. */
static bool alert_seen(struct it_client *sub, const char *rule, const char *device,
                       const char *status, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    while (it_now_ms() < end) {
        cJSON *a = next_alert(sub, (int)(end - it_now_ms()), NULL, 0);
        if (a == NULL)
            return false;
        bool hit = strcmp(s(a, "status"), status) == 0 && strcmp(s(a, "rule"), rule) == 0
                   && strcmp(s(a, "device"), device) == 0;
        cJSON_Delete(a);
        if (hit)
            return true;
    }
    return false;
}

/*
 * SPEC §4: absence fires on "no message from a KNOWN device". A camera that
 * reported before its absence rule existed is known (the store holds its
 * series): an absence rule added by a reload, or to the file while the
 * daemon was stopped, watches it too.
 */
Test(alerts, an_absence_rule_added_later_watches_the_devices_already_known)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        CAM_SRC
        "rules:\n  - {name: fps-low, kind: threshold, select: \"camera/*/*/fps\", below: 5}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    cr_assert_eq(it_publish(dev, "cameras/dongtan/c01/status", "{\"online\":true,\"fps\":25}", 1, false), 0);
    wait_metric_at_least(&d, "islewatch_points_stored_total{source=\"camera\"}", 2);

    it_daemon_rewrite_from(&d, "rules:", "rules:\n  - {name: fps-low, kind: threshold, select: \"camera/*/*/fps\", below: 5}\n"
                      CAM_OFFLINE);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "valid file applied");
    cr_assert(alert_seen(sub, "cam-offline", "c01", "firing", 15000),
              "an absence rule added by a reload ignored camera c01, which reported before it");

    /* Added to the file while the daemon was stopped. */
    it_daemon_stop(&d);
    it_daemon_rewrite_from(&d, "rules:", "rules:\n  - {name: fps-low, kind: threshold, select: \"camera/*/*/fps\", below: 5}\n"
                      CAM_OFFLINE
                      "  - {name: cam-offline-2, kind: absence, select: \"camera/dongtan/*\", after: 2s,\n"
                      "     severity: major}\n");
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_assert(alert_seen(sub, "cam-offline-2", "c01", "firing", 15000),
              "an absence rule added while the daemon was stopped ignored camera c01");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §4: absence resolves on "the next message from it". A camera status
 * message that carries only labels ({"status":"ok"}) is a message from the
 * camera: it resolves the absence, and makes a camera that sends nothing
 * else known. Nothing is stored for it.
 */
Test(alerts, a_message_with_only_labels_is_a_sign_of_life_for_absence)
{
    struct it_broker b;
    struct it_daemon d;
    char hb[128];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        CAM_SRC
        "rules:\n" CAM_OFFLINE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    cr_assert_eq(it_publish(dev, "cameras/dongtan/c01/status", "{\"online\":true}", 1, false), 0);
    cr_assert(alert_seen(sub, "cam-offline", "c01", "firing", 15000), "c01 raised no absence alert");

    snprintf(hb, sizeof(hb), "{\"ts\":%lld,\"status\":\"ok\"}", now_ms());
    cr_assert_eq(it_publish(dev, "cameras/dongtan/c01/status", hb, 1, false), 0);
    cr_assert(alert_seen(sub, "cam-offline", "c01", "resolved", 5000),
              "a message with only labels did not resolve the absence");

    cr_assert_eq(it_publish(dev, "cameras/dongtan/c02/status", hb, 1, false), 0);
    cr_assert(alert_seen(sub, "cam-offline", "c02", "firing", 15000),
              "a camera that sends only labels never became known");
    cr_expect_eq(it_metric(&d, "islewatch_points_stored_total{source=\"camera\"}"), 1,
                 "a message with only labels stored points");
    char *out = NULL;
    cr_assert_eq(it_run(&out, "'%s' series --db '%s' --format json", it_bin("islewatch"), d.data), 0);
    cr_expect_null(strstr(out, "c02"), "a camera that sent only labels has a series: %s", out);
    free(out);
    cr_assert_eq(it_run(&out, "'%s' query 'camera/*/*' --from 0 --to now --db '%s' --format json",
                        it_bin("islewatch"), d.data), 0);
    cr_expect_null(strstr(out, "c02"), "a camera that sent only labels has a series: %s", out);
    free(out);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* A water message of no sample: only a message-level flag, or (flag NULL) only a label. */
static void pub_flag(struct it_client *c, long long ts, const char *flag)
{
    char p[128];
    if (flag != NULL)
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"flag\":\"%s\"}", ts, flag);
    else
        snprintf(p, sizeof(p), "{\"ts\":%lld,\"status\":\"ok\"}", ts);
    cr_assert_eq(it_publish(c, "sensors/water/dongtan/w01", p, 1, false), 0);
}

/*
 * SPEC §1: an instrument may flag a message as a whole ("flag"), and a faulty
 * one may send nothing else: `{"ts":..,"flag":"D"}` stores no sample, but it
 * is the device reporting flag D, and "it reports N again" ends the alert.
 * Before, such a message reached the absence rules only.
 */
Test(alerts, a_message_with_only_a_flag_raises_and_resolves_a_flag_alert)
{
    struct it_broker b;
    struct it_daemon d;
    char topic[256];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC
        "rules:\n  - {name: fault, kind: flag, select: \"water/*/*\", flags: [D, B], for: 1m,\n"
        "     severity: major, message: \"{site}/{device} {summary}\"}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 120000;

    /* M is not watched, and a message without a flag says nothing of one. */
    pub_flag(dev, t - 60000, "M");
    pub_flag(dev, t, "d");
    pub_flag(dev, t + 30000, NULL);
    pub_flag(dev, t + 59000, "D");
    struct it_msg *m = it_next(sub, 1500);
    cr_assert_null(m, "fired before for: 1m of flag D: %s", m ? m->payload : "");
    pub_flag(dev, t + 60000, "D");

    cJSON *a = next_alert(sub, 10000, topic, sizeof(topic));
    cr_assert_not_null(a, "a message with only flag D raised no flag alert");
    cr_assert_str_eq(topic, "alerts/major/fault/dongtan/w01");
    cr_assert_str_eq(s(a, "status"), "firing");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(a, "metric")), "the device's flag names no metric");
    cr_expect_str_eq(s(a, "message"), "dongtan/w01 reports flag D (instrument fault)");
    cr_expect_str_eq(s(cJSON_GetObjectItem(a, "details"), "device_flag"), "D");
    char id[64];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);

    /* The device reports N again, in a message of no sample too. */
    pub_flag(dev, t + 90000, "N");
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "flag N did not resolve the flag alert");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(a, "metric")));
    cJSON_Delete(a);

    /* Flag B alone, then normal data (no flag at all) ends it as well. */
    pub_flag(dev, t + 100000, "B");
    pub_flag(dev, t + 160000, "B");
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "flag B raised no alert");
    cr_assert_str_eq(s(a, "status"), "firing");
    cJSON_Delete(a);
    pub(dev, "sensors/water/dongtan/w01", t + 170000, "ph", 7.1);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "normal data did not resolve a device's flag B");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cJSON_Delete(a);
    cr_expect_eq(it_metric(&d, "islewatch_points_stored_total{source=\"water\"}"), 1,
                 "a message with only a flag stored points");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* An alert message raised while the broker is down: an operator's ack,
 * which goes through HTTP (absence no longer fires while the broker is away). */
static void ack_while_down(struct it_broker *b, struct it_daemon *d)
{
    struct it_client *sub = it_client_new(b, "sub"), *dev = it_client_new(b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/x/w01", now_ms() - 60000, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no firing alert");
    char *out = NULL;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' ack %s --by ops1 --config '%s'", it_bin("islewatch"),
             s(a, "id"), d->cfg);
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_broker_stop_keep(b);
    cr_assert(it_daemon_wait_log(d, "lost", 1, 15000), "the daemon saw the broker go");
    cr_assert_eq(it_run(&out, "%s", cmd), 0, "ack while the broker is down: %s", out ? out : "");
    free(out);
}

/* The late subscriber's retained state is the ack's message. */
static void expect_retained_ack(struct it_broker *b, struct it_daemon *d, const char *why)
{
    cr_assert_eq(it_broker_restart(b), 0);
    cr_assert(it_daemon_wait_log(d, "subscribed to", 2, 20000));
    struct it_client *late = it_client_new(b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    /* The state retained before the outage may come first, the held ack right after. */
    cJSON *a;
    while ((a = next_alert(late, 10000, NULL, 0)) != NULL && !cJSON_GetObjectItem(a, "ack")) {
        cr_assert_str_eq(s(a, "rule"), "nh3");
        cJSON_Delete(a);
    }
    cr_assert_not_null(a, "%s", why);
    cr_assert_str_eq(s(a, "rule"), "nh3");
    cr_assert_str_eq(s(a, "status"), "firing");
    cJSON_Delete(a);
    it_client_free(late);
}

Test(alerts, an_alert_raised_while_the_broker_is_down_goes_out_when_it_is_back)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    ack_while_down(&b, &d);
    expect_retained_ack(&b, &d, "the ack raised during the outage never reached the broker");
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §5: a late subscriber sees what is firing now, also after the
 * broker lost everything (restarted without its persistence file); SPEC §2:
 * no alert is re-sent for it, only the retained state is set again. A
 * broker that kept its state gets nothing. */
Test(alerts, retained_state_is_set_again_after_the_broker_lost_it)
{
    struct it_broker b;
    struct it_daemon d;
    char path[400];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/x/w01", now_ms() - 60000, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no firing alert");
    double seq = n(a, "seq");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);

    /* Restarted with its state: the retained message is still there. */
    it_broker_stop_keep(&b);
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "subscribed to", 2, 20000));
    cr_assert(it_daemon_wait_log(&d, "session present", 1, 5000));
    /* Restarted without it: the daemon sets it again. */
    it_broker_kill(&b);
    snprintf(path, sizeof(path), "%s/mosquitto.db", b.dir);
    cr_assert_eq(unlink(path), 0, "no broker persistence file at %s", path);
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "subscribed to", 3, 20000));
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    a = next_alert(late, 10000, NULL, 0);
    cr_assert_not_null(a, "a late subscriber sees nothing firing");
    cr_assert_str_eq(s(a, "status"), "firing");
    cr_assert_eq(n(a, "seq"), seq, "the retained state is the alert as published, no new seq");
    cJSON_Delete(a);
    it_client_free(late);
    cr_assert(it_daemon_wait_log(&d, "set the retained state of 1 firing", 1, 10000));
    cr_assert_not(it_daemon_wait_log(&d, "set the retained state", 2, 500),
                  "set again although the broker kept it");
    cJSON *h = history(&d, 1);
    cr_assert_eq(cJSON_GetArraySize(h), 1, "an alert was re-sent");
    cJSON_Delete(h);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* The same with broker.clean_session true: every connect finds no session,
 * so that cannot tell a broker that lost its retained messages. They were
 * never set again: a late subscriber saw nothing firing. */
Test(alerts, retained_state_is_set_again_after_the_broker_lost_it_with_clean_session)
{
    struct it_broker b;
    struct it_daemon d;
    char path[400];
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    cr_assert_eq(it_daemon_set_broker(&d, "clean_session: true"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/x/w01", now_ms() - 60000, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no firing alert");
    double seq = n(a, "seq");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);

    it_broker_kill(&b);
    snprintf(path, sizeof(path), "%s/mosquitto.db", b.dir);
    unlink(path);                       /* none yet, or one without our state */
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "subscribed to", 2, 20000));
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    a = next_alert(late, 10000, NULL, 0);
    cr_assert_not_null(a, "a late subscriber sees nothing firing");
    cr_assert_str_eq(s(a, "status"), "firing");
    cr_assert_eq(n(a, "seq"), seq, "the retained state is the alert as published, no new seq");
    cJSON_Delete(a);
    it_client_free(late);
    cJSON *h = history(&d, 1);
    cr_assert_eq(cJSON_GetArraySize(h), 1, "an alert was re-sent");
    cJSON_Delete(h);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* A water_quality episode that escalates (Class 劣V, critical) and comes back
 * (Class V, major), published under an active_topic of the test's choice.
 */
static void escalate_and_back(struct it_broker *b, struct it_daemon *d, const char *active_topic,
                              bool resolve)
{
    char cfg[1024];
    snprintf(cfg, sizeof(cfg), WATER_SRC "alerts:\n  active_topic: \"%s\"\n"
             "rules:\n  - {name: wq, kind: water_quality, select: \"water/*/*\", target: III,\n"
             "     window: 1m, severity: {below_target: major, worse_than_v: critical}}\n",
             active_topic);
    cr_assert_eq(it_broker_start(b), 0);
    cr_assert_eq(it_daemon_start(d, b, cfg), 0);
    struct it_client *sub = it_client_new(b, "sub"), *dev = it_client_new(b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/+/wq/#", 1), 0);
    long long t = now_ms() - 600000;
    const double v[] = { 1.2, 2.5, 1.7, 0.1 };
    const char *sev[] = { "major", "critical", "major", "major" };
    for (int i = 0; i < (resolve ? 4 : 3); i++) {
        pub(dev, "sensors/water/dongtan/w01", t + i * 70000LL, "nh3_n", v[i]);
        cJSON *a = next_alert(sub, 10000, NULL, 0);
        cr_assert_not_null(a, "no alert for sample %d", i);
        cr_assert_str_eq(s(a, "severity"), sev[i]);
        cJSON_Delete(a);
    }
    it_client_free(dev);
    it_client_free(sub);
}

/* SPEC §5: a late subscriber sees what is firing now. With {severity} in
 * active_topic the episode's retained state moved to the critical topic and
 * back, and the critical one stayed: the late subscriber saw the episode
 * twice, once at a severity it no longer had. */
Test(alerts, an_active_topic_with_severity_keeps_one_state_per_episode)
{
    struct it_broker b;
    struct it_daemon d;
    escalate_and_back(&b, &d, "alerts/active/{severity}/{rule}/{site}/{device}", false);
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    char topic[256];
    cJSON *a = next_alert(late, 5000, topic, sizeof(topic));
    cr_assert_not_null(a, "no retained state");
    cr_assert_str_eq(topic, "alerts/active/major/wq/dongtan/w01");
    cJSON_Delete(a);
    struct it_msg *m = it_next(late, 1500);
    cr_assert_null(m, "a second retained state for one episode: %s %s", m ? m->topic : "",
                   m ? m->payload : "");
    it_client_free(late);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* The same with {status}: the resolve went to the .../resolved/... topic and
 * the firing state stayed retained for good. */
Test(alerts, an_active_topic_with_status_is_cleared_on_resolve)
{
    struct it_broker b;
    struct it_daemon d;
    escalate_and_back(&b, &d, "alerts/active/{status}/{rule}/{site}/{device}", true);
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    struct it_msg *m = it_next(late, 1500);
    cr_assert_null(m, "a resolved episode still retained: %s %s", m ? m->topic : "",
                   m ? m->payload : "");
    it_client_free(late);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §2/§4: while the daemon's own link to the broker is down, no device
 * can reach it, so no absence alert fires (thousands of cameras would
 * otherwise "go dark" at once); once back, devices get a full `after`. */
Test(alerts, absence_does_not_fire_while_the_broker_is_down)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        CAM_SRC
        "rules:\n" CAM_OFFLINE), 0);
    struct it_client *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_publish(dev, "cameras/x/c01/status", "{\"online\":true}", 1, false), 0);
    it_client_free(dev);
    it_broker_stop_keep(&b);
    cr_assert_not(it_daemon_wait_log(&d, "firing cam-offline", 1, 5000),
                  "absence fired while the broker was down");
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "subscribed to", 2, 20000));
    /* The camera stays silent after the broker is back: then it is absent. */
    cr_assert(it_daemon_wait_log(&d, "firing cam-offline", 1, 15000),
              "no absence once the broker was back and the camera still silent");
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* The same change made while the daemon is stopped: the broker keeps the
 * persistent session's subscription to the old topic, and the daemon, which
 * knew only its new config, never dropped it: every message there was
 * delivered and rejected as no_source (logged, republished) for good. */
Test(alerts, restart_with_a_changed_source_topic_drops_the_old_subscription)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    it_daemon_stop(&d);
    char *cfg = NULL;
    cr_assert_eq(it_run(&cfg, "sed -i 's|sensors/water/{site}/{device}|river/{site}/{device}/data|' '%s'", d.cfg), 0);
    free(cfg);
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_assert(it_daemon_wait_log(&d, "unsubscribed from 1 filter", 1, 10000),
              "the old topic's subscription was not dropped");
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;
    pub(dev, "sensors/water/dongtan/w09", t, "nh3_n", 2.0);
    pub(dev, "river/dongtan/w01/data", t, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no alert from the new topic");
    cr_assert_str_eq(s(a, "device"), "w01");
    cJSON_Delete(a);
    cr_assert_not(it_daemon_wait_log(&d, "no_source", 1, 500), "a message on the old topic arrived");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* broker.connections changed between two runs: the daemon connects under
 * new client ids, and the session of the old one stays on the broker,
 * subscribed, queueing every device message (those sent while the daemon was
 * stopped among them) for a client that never comes back. Nothing said so.
 * The daemon now takes that session's messages and ends its subscriptions
 * (ingest/a_changed_connection_count_strands_no_message), and says so. */
Test(alerts, a_session_left_behind_by_a_changed_client_id_is_named)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    cr_assert(it_daemon_wait_log(&d, "subscribed to", 1, 10000));
    cr_assert_eq(it_daemon_set_broker(&d, "connections: 2"), 0);
    cr_assert(it_daemon_wait_log(&d, "still holds the persistent session of client id", 1, 10000),
              "the session left behind was not named");
    cr_assert(it_daemon_wait_log(&d, "with 1 source topic(s)", 1, 1000));
    cr_assert(it_daemon_wait_log(&d, "has no subscription left", 1, 30000),
              "the session left behind was not taken");
    /* Said once (the log goes on across restarts): a second restart is quiet. */
    it_daemon_stop(&d);
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_assert(it_daemon_wait_log(&d, "connection 1 subscribed to", 2, 10000));
    cr_assert_not(it_daemon_wait_log(&d, "still holds the persistent session", 2, 500),
                  "named again at the next start");
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, reload_with_a_changed_source_topic_resubscribes)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    char *cfg = NULL;
    cr_assert_eq(it_run(&cfg, "sed -i 's|sensors/water/{site}/{device}|river/{site}/{device}/data|' '%s'", d.cfg), 0);
    free(cfg);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "unsubscribed from 1 filter", 1, 10000),
              "the old topic's subscription was dropped");
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;
    pub(dev, "river/dongtan/w01/data", t, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no alert from the new topic");
    cJSON_Delete(a);
    pub(dev, "sensors/water/dongtan/w09", t, "nh3_n", 2.0);
    struct it_msg *m = it_next(sub, 1500);
    cr_assert_null(m, "the old topic is still subscribed: %s", m ? m->payload : "");
    cr_assert_not(it_daemon_wait_log(&d, "no_source", 1, 200), "a message on the old topic arrived");
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §4/§5: a rule changed while the daemon was down resolves its firing
 * instances at start, before the first broker connection. That resolve is a
 * published message like any other: subscribers get it (next seq) and the
 * retained active state is cleared. */
Test(alerts, a_resolve_raised_at_start_before_the_first_connect_is_published)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_RULE), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    long long t = now_ms() - 60000;
    pub(dev, "sensors/water/r/w1", t, "nh3_n", 2.5);
    cJSON *a = next_alert(sub, 10000, NULL, 0);           /* firing on alerts/major */
    cr_assert_not_null(a);
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    double seq = n(a, "seq");
    cJSON_Delete(a);
    a = next_alert(sub, 5000, NULL, 0);                   /* the retained copy on alerts/active */
    cr_assert_not_null(a);
    cJSON_Delete(a);

    it_daemon_stop(&d);
    /* A changed condition (labels or message alone keep the episode). */
    it_daemon_rewrite_from(&d, "rules:", "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.6,\n"
                      "     clear_below: 1.2, severity: major, labels: {team: river}}\n");
    cr_assert_eq(it_daemon_restart(&d), 0);

    struct it_msg *m = it_next(sub, 10000);
    cr_assert_not_null(m, "the resolve raised at start never reached the broker");
    cr_assert_str_eq(m->topic, "alerts/major/nh3/r/w1");
    cJSON *r = cJSON_Parse(m->payload);
    cr_assert_not_null(r, "%s", m->payload);
    cr_assert_str_eq(s(r, "status"), "resolved");
    cr_assert_str_eq(s(r, "id"), id);
    cr_assert_eq(n(r, "seq"), seq + 1, "the resolve is the next message");
    cJSON_Delete(r);
    it_msg_free(m);
    m = it_next(sub, 5000);
    cr_assert_not_null(m, "the retained state was not cleared");
    cr_assert_str_eq(m->topic, "alerts/active/nh3/r/w1");
    cr_assert_eq(m->len, 0, "retained state after the resolve: %s", m->payload);
    it_msg_free(m);

    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    m = it_next(late, 1500);
    cr_assert_null(m, "retained state still there: %s", m ? m->payload : "");
    it_client_free(late);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* With outbox_max: 1 and the broker away, Paho refuses the second message of
 * an alert (its retained state). The publisher keeps it and sends it when the
 * broker is back, so a late subscriber still sees what is firing. */
Test(alerts, a_message_the_full_outbox_refused_goes_out_when_the_broker_is_back)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, "alerts:\n  outbox_max: 1\n" WATER_SRC NH3_RULE), 0);
    ack_while_down(&b, &d);
    cr_assert(it_daemon_wait_log(&d, "the MQTT client refused", 1, 5000), "the refusal is logged");
    expect_retained_ack(&b, &d, "the retained state refused by the full outbox was never sent");
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* SPEC §4: an instance is (rule, site, device, metric); the default retained
 * topic has no {metric}. Resolving one metric leaves the device's other
 * firing instance as the retained state; the last resolve clears it. */
Test(alerts, resolving_one_metric_keeps_the_other_firing_metric_as_retained_state)
{
    struct it_broker b;
    struct it_daemon d;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC
        "rules:\n  - {name: hi, kind: threshold, select: \"water/*/*/*\", above: 10, severity: major}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    long long t = now_ms() - 60000;
    char p[128], topic[256];
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"cod\":20,\"tp\":30}", t);
    cr_assert_eq(it_publish(dev, "sensors/water/s/w1", p, 1, false), 0);
    /* Each firing: the alert, then its retained state on the shared topic. */
    char last[16] = "";
    for (int i = 0; i < 4; i++) {
        cJSON *a = next_alert(sub, 10000, topic, sizeof(topic));
        cr_assert_not_null(a, "message %d of 4 missing", i + 1);
        cr_assert_str_eq(s(a, "status"), "firing");
        cr_assert_str_eq(topic, i % 2 ? "alerts/active/hi/s/w1" : "alerts/major/hi/s/w1");
        snprintf(last, sizeof(last), "%s", s(a, "metric"));
        cJSON_Delete(a);
    }
    char other[16];
    snprintf(other, sizeof(other), "%s", strcmp(last, "cod") == 0 ? "tp" : "cod");

    /* The metric shown resolves: the other one is still firing and is shown. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"%s\":1}", t + 1000, last);
    cr_assert_eq(it_publish(dev, "sensors/water/s/w1", p, 1, false), 0);
    cJSON *a = next_alert(sub, 10000, topic, sizeof(topic));
    cr_assert_not_null(a);
    cr_assert_str_eq(topic, "alerts/major/hi/s/w1");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "metric"), last);
    cJSON_Delete(a);
    struct it_msg *m = it_next(sub, 5000);
    cr_assert_not_null(m, "no retained state after the first resolve");
    cr_assert_str_eq(m->topic, "alerts/active/hi/s/w1");
    cr_assert_gt(m->len, 0, "the still-firing %s instance was hidden by the resolve of %s", other, last);
    it_msg_free(m);
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    cJSON *r = next_alert(late, 5000, NULL, 0);
    cr_assert_not_null(r, "no retained state for a late subscriber");
    cr_assert_str_eq(s(r, "status"), "firing");
    cr_assert_str_eq(s(r, "metric"), other);
    cJSON_Delete(r);
    it_client_free(late);

    /* The last one resolves: nothing retained any more. */
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"%s\":1}", t + 2000, other);
    cr_assert_eq(it_publish(dev, "sensors/water/s/w1", p, 1, false), 0);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "metric"), other);
    cJSON_Delete(a);
    m = it_next(sub, 5000);
    cr_assert_not_null(m, "no retained clear after the last resolve");
    cr_assert_str_eq(m->topic, "alerts/active/hi/s/w1");
    cr_assert_eq(m->len, 0, "retained state after the last resolve: %s", m->payload);
    it_msg_free(m);
    late = it_client_new(&b, "late2");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    m = it_next(late, 1500);
    cr_assert_null(m, "retained state still there: %s", m ? m->payload : "");
    it_client_free(late);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* `islewatch ack ID` without --by names who acknowledged: $USER, else the
 * login name of the user running it (cron, su, containers set no $USER). */
Test(alerts, an_ack_without_by_names_the_user_running_it)
{
    struct it_broker b;
    struct it_daemon d;
    char *out = NULL, url[64], id[32];
    const struct passwd *pw = getpwuid(getuid());
    cr_assert_not_null(pw);
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC
        "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5,\n"
        "     severity: major}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/r/w1", now_ms() - 60000, "nh3_n", 2.5);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);

    cr_assert_eq(it_run(&out, "env -u USER -u LOGNAME '%s' ack %s --config '%s'",
                        it_bin("islewatch"), id, d.cfg), 0, "ack failed: %s", out ? out : "");
    cr_expect_not_null(strstr(out, pw->pw_name), "ack said: %s", out);
    free(out);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", d.http_port);
    cr_assert_eq(it_run(&out, "'%s' alerts --active --format json --url %s", it_bin("islewatch"),
                        url), 0);
    cJSON *arr = cJSON_Parse(out);
    const cJSON *ack = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "ack");
    cr_assert(cJSON_IsObject(ack), "no ack: %s", out);
    cr_expect_str_eq(s(ack, "by"), pw->pw_name, "alerts --active: %s", out);
    cJSON_Delete(arr);
    free(out);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

static void expect_ack(const cJSON *a, const char *what)
{
    const cJSON *ack = cJSON_GetObjectItem(a, "ack");
    cr_assert(cJSON_IsObject(ack), "%s has no ack", what);
    cr_assert_str_eq(s(ack, "by"), "ops1", "%s", what);
    cr_assert_str_eq(s(ack, "comment"), "crew on site", "%s", what);
}

/* SPEC §4: the ack is recorded and republished; the schema: `ack` is present
 * once an operator acknowledged the episode. Later messages of the episode
 * (the resolve) keep it, and so does `alerts --active`; reminders stop. */
Test(alerts, an_ack_stays_on_the_later_messages_of_its_episode)
{
    struct it_broker b;
    struct it_daemon d;
    char *out = NULL;
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC NH3_REPEAT_RULE("2s")), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    long long t = now_ms() - 60000;
    pub(dev, "sensors/water/r/w1", t, "nh3_n", 2.5);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a);
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    cJSON_Delete(a);

    cr_assert_eq(it_run(&out, "'%s' ack %s --by ops1 --comment 'crew on site' --config '%s'",
                        it_bin("islewatch"), id, d.cfg), 0, "ack failed: %s", out ? out : "");
    free(out);
    out = NULL;
    /* Repeats published before the ack have none; the ack's own message has
     * it. An acknowledged episode is owned: no more reminders (three
     * `repeat:` intervals pass without one). */
    while ((a = next_alert(sub, 10000, NULL, 0)) != NULL && !cJSON_GetObjectItem(a, "ack"))
        cJSON_Delete(a);
    cr_assert_not_null(a, "the ack was not republished");
    expect_ack(a, "the ack's message");
    cJSON_Delete(a);
    a = next_alert(sub, 6000, NULL, 0);
    cr_assert_null(a, "a reminder after the ack: %s", a ? cJSON_PrintUnformatted(a) : "");
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", d.http_port);
    cr_assert_eq(it_run(&out, "'%s' alerts --active --format json --url %s", it_bin("islewatch"), url), 0);
    cJSON *arr = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 1, "alerts --active: %s", out);
    expect_ack(cJSON_GetArrayItem(arr, 0), "alerts --active after a repeat");
    cJSON_Delete(arr);
    free(out);
    /* The table and CSV show it too. */
    cr_assert_eq(it_run(&out, "'%s' alerts --active --url %s", it_bin("islewatch"), url), 0);
    cr_expect_not_null(strstr(out, "[acked by ops1] "), "alerts --active: %s", out);
    free(out);
    cr_assert_eq(it_run(&out, "'%s' alerts --active --format csv --url %s", it_bin("islewatch"),
                        url), 0);
    cr_expect_not_null(strstr(out, ",silenced,acked_at,acked_by\n"), "csv: %s", out);
    cr_expect_not_null(strstr(out, ",false,20"), "csv: %s", out);
    cr_expect_not_null(strstr(out, "Z,ops1\n"), "csv: %s", out);
    free(out);

    pub(dev, "sensors/water/r/w1", t + 1000, "nh3_n", 0.5);
    a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no resolve");
    cr_assert_str_eq(s(a, "status"), "resolved");
    cr_assert_str_eq(s(a, "id"), id);
    expect_ack(a, "the resolve");
    cJSON_Delete(a);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * SPEC §5: the retained states are what fires now, and only that. A broker
 * can hold others the daemon never sent as such: restored from an older
 * persistence file or a backup while the daemon was away, it shows an
 * episode since resolved as firing, and lacks one that fired since. Every
 * connect reads them back and corrects them: the stale alert state is
 * cleared, the missing one set again (as published: no new seq, no alert
 * re-sent). A retained message there that is no alert, or an alert of a
 * rule this daemon does not have (another islewatchd's), is left alone.
 */
static void retained_states_corrected_at_connect(const char *broker_line)
{
    struct it_broker b;
    struct it_daemon d;
    start_nh3(&b, &d, broker_line);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    pub(dev, "sensors/water/dongtan/w01", now_ms() - 60000, "nh3_n", 2.0);
    cJSON *a = next_alert(sub, 10000, NULL, 0);
    cr_assert_not_null(a, "no firing alert");
    double seq = n(a, "seq");
    char id[32];
    snprintf(id, sizeof(id), "%s", s(a, "id"));
    /* A resolved episode's state, as an old broker backup would hold it. */
    cJSON_ReplaceItemInObject(a, "id", cJSON_CreateString("0123456789abcdef"));
    cJSON_ReplaceItemInObject(a, "device", cJSON_CreateString("w09"));
    char *stale = cJSON_PrintUnformatted(a);
    /* Another islewatchd's, with a rule this one does not have: left alone. */
    cJSON_ReplaceItemInObject(a, "rule", cJSON_CreateString("elsewhere"));
    char *foreign = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);

    it_daemon_stop(&d);
    cr_assert_eq(it_publish(dev, "alerts/active/nh3/dongtan/w09", stale, 1, true), 0);
    cr_assert_eq(it_publish(dev, "alerts/active/nh3/dongtan/w01", "", 1, true), 0);
    cr_assert_eq(it_publish(dev, "alerts/active/notes/dongtan/readme", "not an alert", 1, true), 0);
    cr_assert_eq(it_publish(dev, "alerts/active/elsewhere/dongtan/w09", foreign, 1, true), 0);
    free(stale);
    free(foreign);
    cr_assert_eq(it_daemon_restart(&d), 0);
    cr_expect(it_daemon_wait_log(&d, "set the retained state of 1 firing alert topic(s) again "
                                 "and cleared 1 stale", 1, 20000),
              "the retained states were not checked at the connect");

    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    bool w01 = false, notes = false, other = false;
    for (struct it_msg *m; (m = it_next(late, 1500)) != NULL; it_msg_free(m)) {
        if (strcmp(m->topic, "alerts/active/nh3/dongtan/w01") == 0) {
            cJSON *r = cJSON_Parse(m->payload);
            cr_assert_not_null(r, "not JSON: %s", m->payload);
            cr_expect_str_eq(s(r, "id"), id);
            cr_expect_eq(n(r, "seq"), seq, "the retained state is the alert as published");
            cJSON_Delete(r);
            w01 = true;
        } else if (strcmp(m->topic, "alerts/active/notes/dongtan/readme") == 0) {
            notes = true;
        } else if (strcmp(m->topic, "alerts/active/elsewhere/dongtan/w09") == 0) {
            other = true;
        } else {
            cr_expect_fail("retained %s on %s: not firing", m->payload, m->topic);
        }
    }
    cr_expect(w01, "the firing state was not set again");
    cr_expect(notes, "a retained message that is no alert was cleared");
    cr_expect(other, "the state of a rule this daemon does not have was cleared");
    cJSON *h = history(&d, 1);
    cr_expect_eq(cJSON_GetArraySize(h), 1, "an alert was re-sent");
    cJSON_Delete(h);
    /* The check's subscription ended: live alerts are not read back as device data. */
    cr_expect_eq(it_metric(&d, "islewatch_messages_rejected_total{reason=\"no_source\"}"), 0);
    it_client_free(late);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(alerts, stale_and_missing_retained_states_are_corrected_at_connect)
{
    retained_states_corrected_at_connect(NULL);
}

Test(alerts, stale_and_missing_retained_states_are_corrected_at_connect_over_mqtt5)
{
    retained_states_corrected_at_connect("protocol: \"5\"");
}

/*
 * SPEC §1, §5: a site, device or metric name is carried whole into its
 * alert. The rule engine holds each level in IW_LABEL_MAX bytes: a longer
 * one was stored whole but cut in the alert, inside a character when the
 * name was not ASCII, which made the alert's topic invalid UTF-8 so that it
 * was never published. Names up to that length reach the alert whole; a
 * longer one is refused at ingest as a bad label, like a name with a '/'.
 */
Test(alerts, names_of_255_bytes_reach_the_alert_whole_and_longer_ones_are_refused)
{
    struct it_broker b;
    struct it_daemon d;
    char site[IW_LABEL_MAX + 4] = "", device[IW_LABEL_MAX + 1], metric[IW_LABEL_MAX + 1];
    char topic[1024], payload[512];

    for (int i = 0; i < IW_LABEL_MAX / 3; i++)
        strcat(site, "\xe4\xb8\x9c");                /* 东, 3 bytes: 255 in all */
    memset(device, 'd', IW_LABEL_MAX);
    device[IW_LABEL_MAX] = '\0';
    memset(metric, 'm', IW_LABEL_MAX);
    metric[IW_LABEL_MAX] = '\0';
    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, WATER_SRC
        "rules:\n  - {name: high, kind: threshold, select: \"water/*/*/*\", above: 1, "
        "severity: major}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);

    /* One character more on the site: refused, before the good message on the same connection. */
    snprintf(topic, sizeof(topic), "sensors/water/%s\xe4\xb8\x9c/%s", site, device);
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"nh3_n\":2}", now_ms() - 60000);
    cr_assert_eq(it_publish(dev, topic, payload, 1, false), 0);
    snprintf(topic, sizeof(topic), "sensors/water/%s/%s", site, device);
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"%s\":2}", now_ms() - 60000, metric);
    cr_assert_eq(it_publish(dev, topic, payload, 1, false), 0);

    char atopic[1024];
    cJSON *a = next_alert(sub, 10000, atopic, sizeof(atopic));
    cr_assert_not_null(a, "no alert for the names of %d bytes", IW_LABEL_MAX);
    cr_expect_str_eq(s(a, "site"), site);
    cr_expect_str_eq(s(a, "device"), device);
    cr_expect_str_eq(s(a, "metric"), metric);
    char want[1024];
    snprintf(want, sizeof(want), "alerts/major/high/%s/%s", site, device);
    cr_expect_str_eq(atopic, want);
    cJSON_Delete(a);
    cr_expect_eq(it_metric(&d, "islewatch_messages_rejected_total{reason=\"bad_label\"}"), 1,
                 "a site of %d bytes was not refused", IW_LABEL_MAX + 3);
    char *out = NULL;
    cr_assert_eq(it_run(&out, "'%s' series --db '%s' --format json", it_bin("islewatch"), d.data), 0);
    cr_expect_null(strstr(out, "nh3_n"), "the long site was stored: %.300s", out);
    free(out);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}
