/*
 * Alerts across kill -9 at the worst moments (SPEC §2, §4, §5): the daemon
 * kills itself at one crash window of an alert (the test-only hooks
 * ISLEWATCH_TEST_KILL_*_ALERT_*, server/daemon_int.h), is restarted, and a
 * subscriber of alerts/# (QoS 1) must have seen each episode fire and
 * resolve, with one id per episode and seqs that never skip; the retained
 * state and the active list (`islewatch alerts --active`) must show what
 * fires now. At least once is fine: a message may come twice with the same
 * id and seq, never not at all.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "it.h"

TestSuite(alert_crash, .timeout = 240);

#define CRASH_CFG \
    "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n" \
    "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 1.5,\n" \
    "     clear_below: 1.2, severity: major}\n"
#define DEV_TOPIC "sensors/water/dongtan/w01"
#define MAIN_TOPIC "alerts/major/nh3/dongtan/w01"
#define ACTIVE_TOPIC "alerts/active/nh3/dongtan/w01"

/* Every message the subscriber got, in order. */
struct seen {
    int n;
    struct {
        char topic[128];
        char status[16];             /* "" for an empty retained message */
        char id[20];
        double seq;
    } m[128];
};

struct crash {
    struct it_broker b;
    struct it_daemon d;
    struct it_client *sub, *dev;
    struct seen seen;
    long long t;                     /* sample time of the first sample */
};

static void add(struct seen *s, const struct it_msg *msg)
{
    cr_assert_lt(s->n, 128, "too many alert messages");
    snprintf(s->m[s->n].topic, sizeof(s->m[0].topic), "%s", msg->topic);
    s->m[s->n].status[0] = s->m[s->n].id[0] = '\0';
    s->m[s->n].seq = 0;
    cJSON *doc = msg->len > 0 ? cJSON_Parse(msg->payload) : NULL;
    if (doc != NULL) {
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "status"));
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "id"));
        snprintf(s->m[s->n].status, sizeof(s->m[0].status), "%s", st ? st : "?");
        snprintf(s->m[s->n].id, sizeof(s->m[0].id), "%s", id ? id : "?");
        s->m[s->n].seq = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "seq"));
        cJSON_Delete(doc);
    }
    s->n++;
}

/* Wait for a message on alerts.topic with this status (and id, unless NULL),
 * after the message at index from; its index, or -1 after timeout_ms. */
static int wait_main(struct crash *c, int from, const char *status, const char *id, int timeout_ms)
{
    long long until = it_now_ms() + timeout_ms;
    for (int i = from;; i++) {
        while (i >= c->seen.n) {
            long long left = until - it_now_ms();
            struct it_msg *m = left > 0 ? it_next(c->sub, (int)left) : NULL;
            if (m == NULL)
                return -1;
            add(&c->seen, m);
            it_msg_free(m);
        }
        if (strcmp(c->seen.m[i].topic, MAIN_TOPIC) == 0 && strcmp(c->seen.m[i].status, status) == 0
            && (id == NULL || strcmp(c->seen.m[i].id, id) == 0))
            return i;
    }
}

/* Take what comes until nothing did for idle_ms. */
static void drain(struct crash *c, int idle_ms)
{
    struct it_msg *m;
    while ((m = it_next(c->sub, idle_ms)) != NULL) {
        add(&c->seen, m);
        it_msg_free(m);
    }
}

static void start(struct crash *c, const char *hook, const char *at)
{
    memset(c, 0, sizeof(*c));
    cr_assert_eq(it_broker_start(&c->b), 0);
    c->sub = it_client_new(&c->b, "crash-sub");
    c->dev = it_client_new(&c->b, "crash-dev");
    cr_assert(c->sub != NULL && c->dev != NULL);
    cr_assert_eq(it_subscribe(c->sub, "alerts/#", 1), 0);
    setenv(hook, at, 1);
    int started = it_daemon_start(&c->d, &c->b, CRASH_CFG);
    unsetenv(hook);
    cr_assert_eq(started, 0);
    c->t = (long long)time(NULL) * 1000 - 60000;
}

static void sample(struct crash *c, long long dt, double v)
{
    char p[128];
    snprintf(p, sizeof(p), "{\"ts\":%lld,\"nh3_n\":%g}", c->t + dt, v);
    cr_assert_eq(it_publish(c->dev, DEV_TOPIC, p, 1, false), 0);
}

/* The daemon killed itself with SIGKILL at its hook: start it again (no hook). */
static void killed_then_restart(struct crash *c)
{
    int st = 0;
    for (int i = 0; i < 6000 && waitpid(c->d.pid, &st, WNOHANG) != c->d.pid; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the daemon killed itself (status %d)", st);
    c->d.pid = 0;
    cr_assert_eq(it_daemon_restart(&c->d), 0);
}

/* What a subscriber connecting now finds retained on ACTIVE_TOPIC: the
 * status and id of the state, or "" when none is retained. */
static void retained_now(struct crash *c, char *status, char *id)
{
    struct it_client *late = it_client_new(&c->b, "crash-late");
    struct it_msg *m;
    cr_assert_not_null(late);
    cr_assert_eq(it_subscribe(late, ACTIVE_TOPIC, 1), 0);
    status[0] = id[0] = '\0';
    if ((m = it_next(late, 1500)) != NULL) {
        struct seen one = { 0 };
        add(&one, m);
        strcpy(status, one.m[0].status);
        strcpy(id, one.m[0].id);
        it_msg_free(m);
    }
    it_client_free(late);
}

/* How many episodes `islewatch alerts --active` lists. */
static int active_count(struct crash *c)
{
    char *out = NULL;
    cr_assert_eq(it_run(&out, "%s alerts --active --db %s --format json", it_bin("islewatch"),
                        c->d.data), 0);
    cJSON *doc = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(doc), "not a JSON array: %s", out);
    int n = cJSON_GetArraySize(doc);
    cJSON_Delete(doc);
    free(out);
    return n;
}

/* Every message on alerts.topic: one id per status change, seqs 1, 2, ...
 * each at least once and in order (a repeat has the seq of its first). */
static void check_seqs(const struct crash *c, int expected_last)
{
    double last = 0;
    for (int i = 0; i < c->seen.n; i++) {
        if (strcmp(c->seen.m[i].topic, MAIN_TOPIC) != 0)
            continue;
        double seq = c->seen.m[i].seq;
        cr_expect(seq == last || seq == last + 1, "message %d: seq %g after %g (skipped or out of "
                  "order)", i, seq, last);
        last = seq > last ? seq : last;
    }
    cr_expect_eq(last, expected_last, "last seq %g, expected %d", last, expected_last);
}

static void finish(struct crash *c)
{
    it_client_free(c->dev);
    it_client_free(c->sub);
    it_daemon_cleanup(&c->d);
    it_broker_stop(&c->b);
}

/* A firing episode that resolves after the restart, same id, seqs 1 and 2. */
static void resolve_after_restart(struct crash *c, const char *id)
{
    char st[16], rid[20];
    int r = wait_main(c, 0, "resolved", id, 15000);
    cr_assert_geq(r, 0, "no resolve of episode %s", id);
    drain(c, 1500);
    check_seqs(c, 2);
    retained_now(c, st, rid);
    cr_expect_str_eq(st, "", "retained state still %s (%s) after the resolve", st, rid);
    cr_expect_eq(active_count(c), 0, "a resolved episode is still listed as active");
}

/* A firing with the daemon killed at `hook`'s first passage, then the
 * restart: the firing must be published (`lost` says what it was). Its id
 * goes to id; the index of its message in c->seen is returned. */
static int fire_across_kill(struct crash *c, const char *hook, const char *lost, char id[20])
{
    start(c, hook, "1");
    sample(c, 0, 2.31);
    killed_then_restart(c);
    int f = wait_main(c, 0, "firing", NULL, 15000);
    cr_assert_geq(f, 0, "%s", lost);
    strcpy(id, c->seen.m[f].id);
    return f;
}

/* (a) Recorded, not yet given to Paho: it still goes out, with its seq. */
Test(alert_crash, a_firing_recorded_but_not_yet_published_is_published_after_restart)
{
    struct crash c;
    char st[16], rid[20], id[20];
    int f = fire_across_kill(&c, "ISLEWATCH_TEST_KILL_AFTER_ALERT_RECORDS",
                             "the firing recorded before the kill was never published", id);
    cr_expect_eq(c.seen.m[f].seq, 1);
    retained_now(&c, st, rid);
    cr_expect_str_eq(st, "firing", "no retained firing state");
    sample(&c, 2000, 0.5);
    resolve_after_restart(&c, id);
    finish(&c);
}

/* (a') Paho took the message on alerts.topic, not its retained state. */
Test(alert_crash, a_firing_whose_retained_state_was_not_yet_published_gets_it_after_restart)
{
    struct crash c;
    char st[16], rid[20], id[20];
    fire_across_kill(&c, "ISLEWATCH_TEST_KILL_AFTER_ALERT_PUBLISHES",
                     "the firing given to Paho before the kill was never published", id);
    drain(&c, 1500);
    retained_now(&c, st, rid);
    cr_expect_str_eq(st, "firing", "no retained firing state");
    cr_expect_str_eq(rid, id);
    sample(&c, 2000, 0.5);
    resolve_after_restart(&c, id);
    finish(&c);
}

/* (b) Published, the rule state not yet saved: the same condition goes on,
 * so the same episode goes on (no second firing, no ghost). */
Test(alert_crash, a_firing_published_before_its_rule_state_was_saved_does_not_fire_twice)
{
    struct crash c;
    char id[20];
    fire_across_kill(&c, "ISLEWATCH_TEST_KILL_AFTER_ALERT_HANDOFFS",
                     "the firing was never published", id);
    sample(&c, 1000, 2.2);                    /* still above: the same episode */
    drain(&c, 2000);
    for (int i = 0; i < c.seen.n; i++)
        cr_expect(strcmp(c.seen.m[i].status, "firing") != 0 || strcmp(c.seen.m[i].id, id) == 0,
                  "a second firing episode %s (seq %g) for a condition that never cleared",
                  c.seen.m[i].id, c.seen.m[i].seq);
    sample(&c, 2000, 0.5);
    resolve_after_restart(&c, id);
    finish(&c);
}

/* (c) Emitted and its rule state saved, not yet recorded: not lost. */
Test(alert_crash, a_firing_emitted_but_not_yet_recorded_is_published_after_restart)
{
    struct crash c;
    char st[16], rid[20], id[20];
    fire_across_kill(&c, "ISLEWATCH_TEST_KILL_BEFORE_ALERT_RECORDS",
                     "the firing emitted before the kill was never published", id);
    retained_now(&c, st, rid);
    cr_expect_str_eq(st, "firing", "no retained firing state");
    sample(&c, 2000, 0.5);
    resolve_after_restart(&c, id);
    finish(&c);
}

/* (d) A resolve published before its rule state was saved: the condition
 * coming back is a new episode, and it is published. */
Test(alert_crash, a_resolve_published_before_its_rule_state_was_saved_lets_the_next_episode_fire)
{
    struct crash c;
    char st[16], rid[20];
    start(&c, "ISLEWATCH_TEST_KILL_AFTER_ALERT_HANDOFFS", "2");
    sample(&c, 0, 2.31);
    int f = wait_main(&c, 0, "firing", NULL, 15000);
    cr_assert_geq(f, 0);
    char id[20];
    strcpy(id, c.seen.m[f].id);
    sample(&c, 1000, 0.5);
    killed_then_restart(&c);
    cr_assert_geq(wait_main(&c, 0, "resolved", id, 15000), 0, "the resolve was never published");
    sample(&c, 3000, 2.5);                    /* above again: a new episode */
    int g;
    for (g = -1; (g = wait_main(&c, g + 1, "firing", NULL, 15000)) >= 0;)
        if (strcmp(c.seen.m[g].id, id) != 0)
            break;
    cr_assert_geq(g, 0, "the condition came back after the restart and no new episode fired");
    drain(&c, 1500);
    check_seqs(&c, 3);
    retained_now(&c, st, rid);
    cr_expect_str_eq(st, "firing", "no retained firing state for the new episode");
    cr_expect_eq(active_count(&c), 1);
    finish(&c);
}

/* A firing, then its resolve with the daemon killed at `hook`'s second
 * passage: after the restart the resolve is published and the retained
 * state cleared. */
static void resolve_killed_at(const char *hook)
{
    struct crash c;
    start(&c, hook, "2");
    sample(&c, 0, 2.31);
    int f = wait_main(&c, 0, "firing", NULL, 15000);
    cr_assert_geq(f, 0);
    char id[20];
    strcpy(id, c.seen.m[f].id);
    sample(&c, 1000, 0.5);
    killed_then_restart(&c);
    resolve_after_restart(&c, id);
    finish(&c);
}

/* (d') A resolve emitted and its rule state saved, not yet recorded: the
 * retained state must not stay "firing" for a condition that cleared. */
Test(alert_crash, a_resolve_emitted_but_not_yet_recorded_is_published_after_restart)
{
    resolve_killed_at("ISLEWATCH_TEST_KILL_BEFORE_ALERT_RECORDS");
}

/* (a) for a resolve: recorded, not yet given to Paho: the retained state is
 * still cleared. */
Test(alert_crash, a_resolve_recorded_but_not_yet_published_clears_the_retained_state_after_restart)
{
    resolve_killed_at("ISLEWATCH_TEST_KILL_AFTER_ALERT_RECORDS");
}

/* (d) for a silenced resolve of an episode published before the silence:
 * its retained clear (no message, no seq) was recorded, not yet given to
 * Paho. A late subscriber must not see the episode firing for ever. */
Test(alert_crash, a_silenced_resolve_recorded_but_not_yet_sent_still_clears_the_retained_state)
{
    struct crash c;
    char st[16], rid[20], *out = NULL;
    start(&c, "ISLEWATCH_TEST_KILL_AFTER_ALERT_RECORDS", "2");
    sample(&c, 0, 2.31);
    int f = wait_main(&c, 0, "firing", NULL, 15000);
    cr_assert_geq(f, 0);
    cr_assert_eq(it_run(&out, "curl -fsS -X POST -H 'Authorization: Bearer secret-token' "
                        "-d '{\"match\":{\"site\":\"dongtan\"},\"duration\":\"1h\"}' "
                        "http://127.0.0.1:%d/api/v1/silences", c.d.http_port), 0,
                 "POST /api/v1/silences: %s", out ? out : "");
    free(out);
    sample(&c, 1000, 0.5);                    /* a silenced resolve: record 2 */
    killed_then_restart(&c);
    drain(&c, 1500);
    retained_now(&c, st, rid);
    cr_expect_str_eq(st, "", "retained state still %s (%s) after the silenced resolve", st, rid);
    cr_expect_eq(active_count(&c), 0, "a resolved episode is still listed as active");
    finish(&c);
}

/* How many alerts.topic messages with this status and id were seen. */
static int count_main(const struct crash *c, const char *status, const char *id)
{
    int n = 0;
    for (int i = 0; i < c->seen.n; i++)
        n += strcmp(c->seen.m[i].topic, MAIN_TOPIC) == 0
             && strcmp(c->seen.m[i].status, status) == 0 && strcmp(c->seen.m[i].id, id) == 0;
    return n;
}

/*
 * The window that is left inside the MQTT client: a message it took just
 * before a kill -9 may never reach the broker (seen once in CI for a
 * resolve). After an unclean stop the daemon sends its last message again,
 * same id and seq (at least once: the hook tests above), unless the broker
 * had acknowledged it (islewatch_alert_acked_seq, kept in the store): then a
 * copy would only page subscribers twice. After a clean stop nothing goes
 * again either way.
 */
static void last_message_after_restart(bool kill9)
{
    struct crash c;
    start(&c, "ISLEWATCH_TEST_KILL_AFTER_WRITES", "0");
    sample(&c, 0, 2.31);
    int f = wait_main(&c, 0, "firing", NULL, 15000);
    cr_assert_geq(f, 0);
    char id[20];
    strcpy(id, c.seen.m[f].id);
    sample(&c, 1000, 0.5);
    cr_assert_geq(wait_main(&c, 0, "resolved", id, 15000), 0, "no resolve");
    double acked = 0;
    for (int i = 0; i < 300 && acked < 2; i++) {          /* its PUBACK, recorded */
        acked = it_metric(&c.d, "islewatch_alert_acked_seq");
        if (acked < 2)
            nanosleep(&(struct timespec){ 0, 50 * 1000000 }, NULL);
    }
    cr_assert_eq(acked, 2, "the broker's PUBACK of seq 2 was not recorded");
    if (kill9)
        it_daemon_kill9(&c.d);
    else
        it_daemon_stop(&c.d);
    cr_assert_eq(it_daemon_restart(&c.d), 0);
    drain(&c, 3000);
    int n = count_main(&c, "resolved", id);
    cr_expect_eq(n, 1, "the resolve came %d times", n);
    cr_expect_eq(it_metric(&c.d, "islewatch_alert_acked_seq"), 2, "kept across the restart");
    check_seqs(&c, 2);
    finish(&c);
}

Test(alert_crash, after_a_kill9_an_acknowledged_alert_message_does_not_go_again)
{
    last_message_after_restart(true);
}

Test(alert_crash, after_a_clean_stop_no_alert_message_goes_again)
{
    last_message_after_restart(false);
}
