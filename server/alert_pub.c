/*
 * The alert publisher: one thread, so `seq` is assigned in publish order.
 * For each alert the shards emit it: assigns seq, records the alert in the
 * store (history "alert/<seq>", open episodes "active/<id>", and the seq
 * counter, in one batch), then publishes it with QoS alerts.qos on
 * alerts.topic and keeps the retained current state on active_topic (an empty
 * retained message on resolve, or, when another instance firing on the same
 * retained topic is left, that one's latest state: the default active_topic
 * has no {metric}, so the metrics of a device share it). Paho buffers
 * (persisted, bounded) what is published while the broker is away, also
 * before the first connect, and sends it in order on reconnect.
 *
 * When Paho refuses a message anyway (its buffer, alerts.outbox_max, is full),
 * nothing is lost: the record in the store is the outbox. The publisher
 * remembers the first seq not handed over ("unsent", persisted) and from then
 * on hands messages over only by re-reading "alert/<seq>" in seq order, on
 * every turn of its loop (at least every 200 ms), until it has caught up.
 * The same mark covers a kill -9 between the record and the hand-over: each
 * record carries "unsent" = its seq in its batch, taken away once Paho took
 * the message and its retained state, so a restart sends it then; the
 * retained clear of a silenced resolve, which has no seq, is kept as
 * "rclear/<id>" in the same way.
 *
 * The retained states follow alerts.active_topic: when a reload or a restart
 * changes it (the one in use is kept as "active_topic"), the old topics are
 * cleared and the firing states set on the new ones.
 *
 * An ack is recorded and republished as the episode's next message; the
 * episode's later messages carry it too (merged here from the episode's
 * latest state, which mirrors "active/<id>"), and its reminders (`repeat:`)
 * stop. No reminder follows the episode's last published message sooner
 * than `repeat`.
 *
 * Silenced alerts are recorded, not published, and take no seq (SPEC §5: seq
 * counts published messages): their "seq" is the seq of the last published
 * message (0 before the first) and their history key is
 * "alert/<that seq>.<silenced counter>", which sorts after that message and
 * before the next one, so history stays in order without gaps in seq. The
 * silenced counter ("silno") is persisted so keys never collide across
 * restarts. They are not in the live feed (SSE): that is a publication too.
 * An episode still firing when no silence matches it any more is published
 * then, as its next message (unsilence_due), so subscribers learn it fires.
 */
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "islewatch/alert.h"
#include "islewatch/clock.h"
#include "islewatch/daemon.h"
#include "islewatch/log.h"
#include "islewatch/silences.h"
#include "islewatch/stats.h"
#include "daemon_int.h"

enum pub_kind { PUB_ALERT = 0, PUB_ACK = 1 };

struct pub_item {
    enum pub_kind kind;
    struct iw_alert *a;                /* PUB_ALERT: owned copy */
    char outbox[32];                   /* PUB_ALERT: its "outbox/<n>" key, or "" */
    char id[17];                       /* PUB_ACK */
    char *by, *comment;
    pthread_mutex_t *done_lock;        /* PUB_ACK: the caller waits for the result */
    pthread_cond_t *done_cond;
    int *result;
};

/* One open episode: its latest recorded message (what "active/<id>" holds). */
struct active_row {
    char id[17];
    enum iw_severity sev;
    bool shown;                        /* a published message set its retained state */
    enum iw_severity shown_sev;        /* the severity of that state (an active_topic with
                                        * {severity} names it) */
    int64_t published_at;              /* wall ms of its latest published message in this
                                        * run, 0: none */
    struct iw_alert *last;             /* owned */
};

struct iw_alert_pub {
    struct iw_daemon *d;
    struct iw_mpmc q;                  /* of struct pub_item * */
    sem_t ready;                       /* posted after every push: the publisher sleeps on it */
    pthread_t thread;
    uint64_t seq;                      /* publisher thread only: last published seq */
    uint64_t silno;                    /* publisher thread only: silenced alerts recorded */
    uint64_t unsent;                   /* publisher thread only: first seq Paho has not
                                        * taken, 0: none */
    bool unsent_main_sent;             /* its alerts.topic message went, its retained
                                        * state did not */
    struct iw_complaint refused;
    /* Alerts submitted by the shards and handled by the publisher (handed
     * to the MQTT client, or kept for the next start): iw_alert_pub_settled. */
    _Atomic uint64_t submitted, handled;
    const char *active_tmpl;           /* publisher thread only: the alerts.active_topic the
                                        * retained states are on (its config is kept until
                                        * exit, or saved_tmpl) */
    char *saved_tmpl;                  /* the one stored by an earlier start, when the
                                        * config's differs (owned) */
    struct active_row *active;
    size_t n_active, cap_active;
    struct pub_item **leftover;        /* outbox entries of an earlier run, in key order:
                                        * published first */
    size_t n_leftover;
    /* Publisher thread only: the retained states read back at a connect. */
    bool retained_lost;                /* the broker had no session: set them again, once
                                        * the check says which (or all, without one) */
    uint64_t check_round;              /* the check waited for, and since when (mono ms) */
    int64_t check_since;
    uint64_t failed_round;             /* the check seen failed with connection 0 up, and */
    int64_t failed_since;              /* since when (mono ms) */
    struct iw_complaint check_slow;
};

/* ---- the live feed (SSE) ---- */

/*
 * Published alerts by seq, and silenced records (recorded, not published)
 * numbered in the order recorded since this start: a stream that asks for
 * them (?silenced=1, the dashboard) shows an operator what a reload of the
 * history would. The lock is the HTTP threads' and the publisher's, never the
 * per-message path's.
 */
#define FEED_CAP 4096
#define FEED_SIL_CAP 1024
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t seq[FEED_CAP];
    char *json[FEED_CAP];
    size_t len[FEED_CAP];
    uint64_t newest;
    uint64_t sil_no[FEED_SIL_CAP];
    char *sil_json[FEED_SIL_CAP];
    size_t sil_len[FEED_SIL_CAP];
    uint64_t sil_newest;
} feed = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void feed_add(bool silenced, uint64_t seq, const char *json, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return;
    memcpy(copy, json, len + 1);
    pthread_mutex_lock(&feed.lock);
    if (silenced) {
        size_t i = ++feed.sil_newest % FEED_SIL_CAP;
        free(feed.sil_json[i]);
        feed.sil_json[i] = copy;
        feed.sil_len[i] = len;
        feed.sil_no[i] = feed.sil_newest;
    } else {
        size_t i = seq % FEED_CAP;
        free(feed.json[i]);
        feed.json[i] = copy;
        feed.len[i] = len;
        feed.seq[i] = seq;
        feed.newest = seq;
    }
    pthread_cond_broadcast(&feed.cond);
    pthread_mutex_unlock(&feed.lock);
}

uint64_t iw_alert_feed_since(uint64_t after, void (*cb)(void *ctx, uint64_t seq, const char *json,
                             size_t len), void *ctx)
{
    uint64_t last = after;
    pthread_mutex_lock(&feed.lock);
    uint64_t lo = feed.newest > FEED_CAP ? feed.newest - FEED_CAP + 1 : 1;
    for (uint64_t s = after + 1 > lo ? after + 1 : lo; s <= feed.newest; s++) {
        size_t i = s % FEED_CAP;
        if (feed.seq[i] == s && feed.json[i] != NULL) {
            cb(ctx, s, feed.json[i], feed.len[i]);
            last = s;
        }
    }
    pthread_mutex_unlock(&feed.lock);
    return last;
}

uint64_t iw_alert_feed_silenced_since(uint64_t after, void (*cb)(void *ctx, const char *json,
                                      size_t len), void *ctx)
{
    pthread_mutex_lock(&feed.lock);
    /* Older ones than the window are gone: a slow stream skips them. */
    uint64_t lo = feed.sil_newest > FEED_SIL_CAP ? feed.sil_newest - FEED_SIL_CAP + 1 : 1;
    for (uint64_t s = after + 1 > lo ? after + 1 : lo; s <= feed.sil_newest; s++) {
        size_t i = s % FEED_SIL_CAP;
        if (feed.sil_no[i] == s && feed.sil_json[i] != NULL)
            cb(ctx, feed.sil_json[i], feed.sil_len[i]);
    }
    uint64_t last = feed.sil_newest > after ? feed.sil_newest : after;
    pthread_mutex_unlock(&feed.lock);
    return last;
}

uint64_t iw_alert_feed_wait(uint64_t after, uint64_t after_silenced, int timeout_ms,
                            uint64_t *silenced)
{
    struct timespec dl;
    uint64_t n;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&feed.lock);
    while (feed.newest <= after && feed.sil_newest <= after_silenced)
        if (pthread_cond_timedwait(&feed.cond, &feed.lock, &dl) != 0)
            break;
    n = feed.newest;
    if (silenced != NULL)
        *silenced = feed.sil_newest;
    pthread_mutex_unlock(&feed.lock);
    return n;
}

static void feed_clear(void)
{
    pthread_mutex_lock(&feed.lock);
    for (size_t i = 0; i < FEED_CAP; i++) {
        free(feed.json[i]);
        feed.json[i] = NULL;
        feed.seq[i] = 0;
    }
    for (size_t i = 0; i < FEED_SIL_CAP; i++) {
        free(feed.sil_json[i]);
        feed.sil_json[i] = NULL;
        feed.sil_no[i] = 0;
    }
    feed.newest = 0;
    feed.sil_newest = 0;
    pthread_mutex_unlock(&feed.lock);
}

/* ---- history in the store ---- */

struct hist_ctx {
    int (*cb)(void *ctx, uint64_t seq, const char *json, size_t len);
    void *ctx;
    uint64_t after;
    bool silenced;
};

/* Keys: "alert/<seq, 20 digits>" for a published alert,
 * "alert/<seq, 20 digits>.<silno, 20 digits>" for a silenced one recorded
 * after the message seq was published. */
static int hist_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct hist_ctx *h = ctx;
    char num[64];
    char *end;
    if (klen <= 6 || klen - 6 >= sizeof(num))
        return 0;
    memcpy(num, key + 6, klen - 6);
    num[klen - 6] = '\0';
    uint64_t seq = strtoull(num, &end, 10);
    if (*end == '.') {
        /* Silenced: it came after message seq, so it is after after_seq when seq >= after_seq. */
        if (!h->silenced || seq < h->after)
            return 0;
    } else if (seq <= h->after) {
        return 0;
    }
    return h->cb(h->ctx, seq, val, vlen);
}

int iw_alert_history_scan(struct iw_store *st, uint64_t after_seq, bool silenced,
                          int (*cb)(void *ctx, uint64_t seq, const char *json, size_t len), void *ctx)
{
    struct hist_ctx h = { cb, ctx, after_seq, silenced };
    return iw_store_meta_scan(st, "alert/", hist_cb, &h);
}

struct act_ctx {
    int (*cb)(void *ctx, const char *json, size_t len);
    void *ctx;
};

static int act_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct act_ctx *a = ctx;
    (void)key;
    (void)klen;
    return a->cb(a->ctx, val, vlen);
}

int iw_alert_active_scan(struct iw_store *st, int (*cb)(void *ctx, const char *json, size_t len),
                         void *ctx)
{
    struct act_ctx a = { cb, ctx };
    return iw_store_meta_scan(st, "active/", act_cb, &a);
}

/* ---- the publisher thread ---- */

/* Test-only (daemon_int.h): SIGKILL at the Nth passage of a crash window. */
static void test_kill(const char *hook, int64_t *count, int64_t at)
{
    if (IW_LIKELY(at <= 0) || ++*count != at)
        return;
    IW_LOG_WARN("alerts", "%s: killing myself (SIGKILL) at %lld", hook, (long long)at);
    raise(SIGKILL);
}

static struct active_row *active_find(struct iw_alert_pub *p, const char *id)
{
    for (size_t i = 0; i < p->n_active; i++)
        if (strcmp(p->active[i].id, id) == 0)
            return &p->active[i];
    return NULL;
}

/* Track the recorded alert a: a firing one becomes its episode's latest
 * state (a copy), a resolved one ends its episode. */
static void active_update(struct iw_alert_pub *p, const struct iw_alert *a)
{
    struct active_row *row = active_find(p, a->id);
    struct iw_alert *copy = NULL;

    if (row != NULL) {
        atomic_fetch_sub_explicit(&iw_stats.alerts_active[row->sev], 1, memory_order_relaxed);
        if (a->status != IW_ALERT_FIRING) {
            iw_alert_free(row->last);
            *row = p->active[--p->n_active];
            return;
        }
    } else {
        if (a->status != IW_ALERT_FIRING)
            return;
        if (p->n_active == p->cap_active) {
            size_t cap = p->cap_active ? p->cap_active * 2 : 64;
            struct active_row *na = realloc(p->active, cap * sizeof(*na));
            if (na == NULL) {
                IW_LOG_ERROR("alerts", "out of memory: episode %s of rule %s is not tracked (its "
                             "ack and retained state may be lost)", a->id, a->rule);
                return;
            }
            p->active = na;
            p->cap_active = cap;
        }
        row = &p->active[p->n_active++];
        snprintf(row->id, sizeof(row->id), "%s", a->id);
        row->shown = false;
        row->shown_sev = a->severity;
        row->published_at = 0;
        row->last = NULL;
    }
    row->shown = row->shown || !a->silenced;
    if (!a->silenced) {
        row->shown_sev = a->severity;
        row->published_at = a->decided_at != 0 ? a->decided_at : iw_now_ms();
    }
    if (iw_alert_dup(a, &copy) != IW_OK)
        IW_LOG_ERROR("alerts", "out of memory: the latest state of episode %s of rule %s is not "
                     "kept (its ack may be lost)", a->id, a->rule);
    else {
        iw_alert_free(row->last);
        row->last = copy;
    }
    row->sev = a->severity;
    atomic_fetch_add_explicit(&iw_stats.alerts_active[row->sev], 1, memory_order_relaxed);
}

/*
 * Which of two firing episodes sharing a retained topic it shows: one a live
 * sample decided over a late one (a backlog's episode, "late": true, is not
 * what fires now), else the newest published. b may be NULL.
 */
static bool shown_over(const struct iw_alert *a, const struct iw_alert *b)
{
    if (b == NULL)
        return true;
    if (a->late != b->late)
        return !a->late;
    return a->seq > b->seq;
}

/*
 * The retained state of a topic that instance a no longer fires on: an
 * instance is (rule, site, device, metric) but active_topic need not have
 * {metric} (the default has not), so several firing instances can share
 * one retained topic. The latest published state of the one shown_over picks
 * among the others still firing there, or NULL when none is left.
 */
static const struct iw_alert *active_sibling(struct iw_alert_pub *p, const struct iw_alert *a,
                                             const char *topic)
{
    const struct iw_alert *best = NULL;
    char t[1024];

    for (size_t i = 0; i < p->n_active; i++) {
        const struct iw_alert *o = p->active[i].last;
        if (o == NULL || o->silenced || strcmp(o->id, a->id) == 0 || !shown_over(o, best))
            continue;
        if (iw_alert_topic(p->d->cfg->alerts.active_topic, o, t, sizeof(t)) == IW_OK
            && strcmp(t, topic) == 0)
            best = o;
    }
    return best;
}

/* Hand one message to Paho. IW_OK when it took it, or when it never can
 * (logged: retrying would block every later alert); IW_E_MQTT to retry. */
static int send_one(struct iw_alert_pub *p, uint64_t seq, const char *topic, const char *payload,
                    size_t len, bool retained)
{
    int rc = iw_mqtt_publish(p->d->mqtt, topic, payload, len, p->d->cfg->alerts.qos, retained,
                             seq);
    if (rc == IW_OK)
        test_kill("ISLEWATCH_TEST_KILL_AFTER_ALERT_PUBLISHES", &p->d->test_alert_publishes,
                  p->d->test_kill_after_alert_publishes);
    if (rc == IW_E_INVAL) {
        IW_LOG_ERROR("alerts", "seq=%" PRIu64 ": the MQTT client cannot publish on \"%s\": %s; "
                     "check alerts.topic and alerts.active_topic", seq, topic,
                     iw_mqtt_publish_error(rc));
        return IW_OK;
    }
    if (rc != IW_OK)
        iw_complain(&p->refused, IW_LOG_LEVEL_WARN, "alerts", "seq=%" PRIu64 ": the MQTT client "
                    "refused the message on %s: %s; it stays in the store and goes out, in order, "
                    "as soon as the client takes messages again", seq, topic,
                    iw_mqtt_publish_error(rc));
    return rc;
}

/* A retained topic episode a no longer fires on (resolved, or moved: see
 * publish): a sibling's state, or cleared. */
static int send_left(struct iw_alert_pub *p, const struct iw_alert *a, const char *topic)
{
    const struct iw_alert *other = active_sibling(p, a, topic);
    char *ojson = NULL;
    size_t olen = 0;

    if (other != NULL && iw_alert_to_json(other, &ojson, &olen) == IW_OK) {
        int rc = send_one(p, a->seq, topic, ojson, olen, true);
        free(ojson);
        return rc;
    }
    return send_one(p, a->seq, topic, "", 0, true);
}

/*
 * Publish a recorded alert: its message on alerts.topic (unless skip_main: it
 * already went), then its retained state on active_topic. IW_OK when both
 * went; otherwise IW_E_MQTT and *main_sent says whether the first one did.
 */
static int send_record(struct iw_alert_pub *p, const struct iw_alert *a, const char *json,
                       size_t len, bool skip_main, bool *main_sent)
{
    const struct iw_config *cfg = p->d->cfg;
    char topic[1024];

    *main_sent = skip_main;
    if (!skip_main && iw_alert_topic(cfg->alerts.topic, a, topic, sizeof(topic)) == IW_OK) {
        if (send_one(p, a->seq, topic, json, len, false) != IW_OK)
            return IW_E_MQTT;
    }
    *main_sent = true;
    if (iw_alert_topic(cfg->alerts.active_topic, a, topic, sizeof(topic)) != IW_OK)
        return IW_OK;
    /* A late episode beside a live one on the topic: the topic keeps showing
     * the live one (shown_over), through the late firing and its resolve. */
    const struct iw_alert *other = active_sibling(p, a, topic);
    if (other != NULL && !shown_over(a, other))
        return IW_OK;
    if (a->status == IW_ALERT_FIRING)
        return send_one(p, a->seq, topic, json, len, true);
    return send_left(p, a, topic);
}

/* Episode a as its retained state last showed it: firing, at severity sev.
 * Its topic is the one a silenced resolve clears, which differs from the
 * resolve's own when active_topic names {status} or {severity}. */
static struct iw_alert shown_state(const struct iw_alert *a, enum iw_severity sev)
{
    struct iw_alert c = *a;             /* shallow: read only, for its topic and JSON */
    c.status = IW_ALERT_FIRING;
    c.severity = sev;
    return c;
}

static void unsent_save(struct iw_alert_pub *p)
{
    char buf[32];
    int rc;
    if (p->unsent == 0) {
        rc = iw_store_meta_delete(p->d->store, "unsent");
    } else {
        snprintf(buf, sizeof(buf), "%" PRIu64, p->unsent);
        rc = iw_store_meta_put(p->d->store, "unsent", buf, strlen(buf));
    }
    if (rc != IW_OK)
        IW_LOG_ERROR("alerts", "cannot record which alert messages are still to be sent (%s); "
                     "those not sent by the next stop will not be sent after it", iw_strerror(rc));
}

/* Paho refused (part of) message seq: from now on messages go out of the store. */
static void backlog_start(struct iw_alert_pub *p, uint64_t seq, bool main_sent)
{
    p->unsent = seq;
    p->unsent_main_sent = main_sent;
    unsent_save(p);
}

/* Hand the held messages to Paho in seq order, as far as it takes them. */
static void backlog_flush(struct iw_alert_pub *p)
{
    uint64_t from = p->unsent;

    while (p->unsent != 0 && p->unsent <= p->seq) {
        char key[64];
        void *val;
        size_t len;
        struct iw_alert *a = NULL;
        struct iw_diag diag = {0};
        bool main_sent = false;

        snprintf(key, sizeof(key), "alert/%020" PRIu64, p->unsent);
        if (iw_store_meta_get(p->d->store, key, &val, &len) != IW_OK) {
            IW_LOG_ERROR("alerts", "seq=%" PRIu64 " is not in the store any more; it cannot be "
                         "sent", p->unsent);
        } else if (iw_alert_from_json(val, len, &a, &diag) != IW_OK) {
            IW_LOG_ERROR("alerts", "seq=%" PRIu64 " in the store is unreadable (%s); it cannot be "
                         "sent", p->unsent, iw_diag_first(&diag));
            free(val);
        } else {
            int rc = send_record(p, a, val, len, p->unsent_main_sent, &main_sent);
            iw_alert_free(a);
            free(val);
            if (rc != IW_OK) {
                p->unsent_main_sent = main_sent;
                break;
            }
        }
        iw_diag_fini(&diag);
        p->unsent++;
        p->unsent_main_sent = false;
    }
    if (p->unsent > p->seq) {
        IW_LOG_INFO("alerts", "the MQTT client took the held messages (seq %" PRIu64 " to %" PRIu64
                    ")", from, p->seq);
        p->unsent = 0;
    }
    if (p->unsent != from)
        unsent_save(p);
}

/* Record and publish alert a; outbox: the "outbox/<n>" key it came in
 * under (the record's batch removes it), or NULL. */
static void publish(struct iw_alert_pub *p, struct iw_alert *a, const char *outbox)
{
    struct iw_wbatch *b = iw_wbatch_new();
    struct iw_diag diag = {0};
    char key[64], akey[64], seqbuf[32];
    char *json = NULL;
    size_t len = 0;

    /* The engine knows nothing of acks: a later message of an acknowledged
     * episode (repeat, severity change, resolve) carries the ack recorded
     * in its "active/<id>" (SPEC §4, alert.schema.json: present once an
     * operator acknowledged the episode). */
    const struct active_row *row = active_find(p, a->id);
    if (!a->acked && row != NULL && row->last != NULL && row->last->acked) {
        a->acked = true;
        a->ack_ts = row->last->ack_ts;
        free((char *)a->ack_by);
        free((char *)a->ack_comment);
        a->ack_by = row->last->ack_by ? strdup(row->last->ack_by) : NULL;
        a->ack_comment = row->last->ack_comment ? strdup(row->last->ack_comment) : NULL;
    }

    /* A reminder (`repeat:`) only reminds. None once an operator has
     * acknowledged the episode: someone owns it. And none sooner than
     * `repeat` after the episode's last published message: the engine keeps
     * its own schedule, which does not see the message that goes out when a
     * silence ends (unsilence_due). The reminder's outbox entry goes. */
    if (a->reason == IW_ALERT_REPEAT && row != NULL
        && (a->acked || (!a->silenced && row->published_at != 0
                         && (a->decided_at != 0 ? a->decided_at : iw_now_ms())
                            - row->published_at < a->repeat_ms))) {
        if (outbox != NULL && outbox[0] != '\0' && iw_store_meta_delete(p->d->store, outbox) != IW_OK)
            IW_LOG_WARN("alerts", "cannot remove %s from the store; the reminder of episode %s is "
                        "looked at again at the next start (harmless)", outbox, a->id);
        IW_LOG_DEBUG("alerts", "reminder of %s %s/%s/%s id=%s held back: %s", a->rule, a->source,
                     a->site, a->device, a->id, a->acked ? "acknowledged" : "published within repeat");
        iw_wbatch_free(b);
        return;
    }

    /* An active_topic with {severity} (or {status}) moves an episode's
     * retained state when its severity changes: the topic of its previous
     * state is cleared (or given a sibling's state) once the new one is set,
     * or a late subscriber would see the episode twice, once at a severity
     * it no longer has. */
    char moved_from[1024] = "";
    if (!a->silenced && row != NULL && row->shown && row->last != NULL && !row->last->silenced) {
        char now_topic[1024];
        if (iw_alert_topic(p->d->cfg->alerts.active_topic, row->last, moved_from,
                           sizeof(moved_from)) != IW_OK
            || iw_alert_topic(p->d->cfg->alerts.active_topic, a, now_topic, sizeof(now_topic)) != IW_OK
            || strcmp(moved_from, now_topic) == 0)
            moved_from[0] = '\0';
    }

    /* Only a published message takes a seq; a silenced one shows the last. */
    a->seq = a->silenced ? p->seq : p->seq + 1;
    if (b == NULL || iw_alert_to_json(a, &json, &len) != IW_OK) {
        IW_LOG_ERROR("alerts", "cannot serialise alert %s of rule %s (out of memory?)", a->id, a->rule);
        iw_wbatch_free(b);
        return;
    }
    if (a->silenced) {
        p->silno++;
        snprintf(key, sizeof(key), "alert/%020" PRIu64 ".%020" PRIu64, a->seq, p->silno);
        snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, p->silno);
        iw_wbatch_put_meta(b, "silno", seqbuf, strlen(seqbuf));
    } else {
        p->seq = a->seq;
        snprintf(key, sizeof(key), "alert/%020" PRIu64, a->seq);
        snprintf(seqbuf, sizeof(seqbuf), "%" PRIu64, a->seq);
        iw_wbatch_put_meta(b, "seqno", seqbuf, strlen(seqbuf));
    }
    /* An episode published before a silence began has its firing state
     * retained on the broker: its silenced resolve still clears that, or a
     * late subscriber would see it firing for ever. The clear is no alert
     * message, so it takes no seq. */
    bool clear_shown = a->silenced && a->status != IW_ALERT_FIRING && row != NULL && row->shown;
    /* A kill -9 after this record and before Paho took the message (and its
     * retained state) would leave it recorded and never sent: it is marked
     * unsent in the same batch, and the mark goes once Paho took it all. A
     * restart in between sends it again from the record (same id and seq;
     * at least once, never lost). */
    bool mark_unsent = !a->silenced && p->unsent == 0;
    if (mark_unsent)
        iw_wbatch_put_meta(b, "unsent", seqbuf, strlen(seqbuf));
    /* The same for the retained clear of a silenced resolve, which has no
     * seq: "rclear/<id>" holds it until Paho took the clear (rclear_cb). */
    bool mark_clear = clear_shown && p->unsent == 0;
    char ckey[64], ctopic[1024] = "";
    snprintf(ckey, sizeof(ckey), "rclear/%s", a->id);
    if (mark_clear) {
        struct iw_alert shown = shown_state(a, row->shown_sev);
        char *sjson = NULL;
        size_t slen = 0;
        if (iw_alert_topic(p->d->cfg->alerts.active_topic, &shown, ctopic, sizeof(ctopic)) != IW_OK
            || iw_alert_to_json(&shown, &sjson, &slen) != IW_OK) {
            mark_clear = false;
            IW_LOG_WARN("alerts", "cannot form the retained topic of episode %s of rule %s; its "
                        "retained firing state is not cleared", a->id, a->rule);
        } else
            iw_wbatch_put_meta(b, ckey, sjson, slen);
        free(sjson);
    }
    snprintf(akey, sizeof(akey), "active/%s", a->id);
    if (outbox != NULL && outbox[0] != '\0')
        iw_wbatch_delete_meta(b, outbox);
    iw_wbatch_put_meta(b, key, json, len);
    if (a->status == IW_ALERT_FIRING)
        iw_wbatch_put_meta(b, akey, json, len);
    else
        iw_wbatch_delete_meta(b, akey);
    if (iw_store_write(p->d->store, b, &diag) != IW_OK) {
        IW_LOG_ERROR("alerts", "cannot record alert seq %" PRIu64 ": %s", a->seq, iw_diag_first(&diag));
        iw_diag_fini(&diag);
    }
    iw_wbatch_free(b);
    test_kill("ISLEWATCH_TEST_KILL_AFTER_ALERT_RECORDS", &p->d->test_alert_records,
              p->d->test_kill_after_alert_records);
    active_update(p, a);

    feed_add(a->silenced, a->seq, json, len);
    if (!a->silenced) {
        /* Behind on earlier messages: this one goes after them (backlog_flush). */
        if (p->unsent == 0) {
            bool main_sent = false;
            if (send_record(p, a, json, len, false, &main_sent) != IW_OK)
                backlog_start(p, a->seq, main_sent);
            else if (mark_unsent)
                unsent_save(p);         /* p->unsent is 0: takes the mark away */
            /* (Behind on earlier messages, or not taken now, the old topic
             * keeps its state until the next start's retained states: rare.) */
            if (moved_from[0] != '\0' && p->unsent == 0)
                (void)send_left(p, a, moved_from);
        }
        iw_stats_alert_published(a->rule, iw_severity_name(a->severity),
                                 iw_alert_status_name(a->status));
    } else if (mark_clear) {
        /* (Behind on earlier messages, the held firing would be sent after
         * this clear and set the state again: rare, left as it is.) */
        if (send_left(p, a, ctopic) == IW_OK
            && iw_store_meta_delete(p->d->store, ckey) != IW_OK)
            IW_LOG_WARN("alerts", "cannot remove %s from the store; its retained clear is sent "
                        "again at the next start (harmless)", ckey);
    }
    IW_LOG_INFO("alerts", "%s%s %s %s/%s/%s %sseq=%" PRIu64 " id=%s%s", a->silenced ? "silenced " : "",
                iw_alert_status_name(a->status), a->rule, a->source, a->site, a->device,
                a->silenced ? "after " : "", a->seq,
                a->id, a->late ? " (late)" : "");
    free(json);
}

/* The engine's test: a silence of the config or one created at run time. */
static bool silence_holds(const struct iw_config *cfg, const struct iw_alert *a, int64_t now_ms)
{
    for (size_t i = 0; i < cfg->n_silences; i++)
        if (iw_alert_silence_matches(&cfg->silences[i], a, now_ms))
            return true;
    return iw_silences_match(a, now_ms);
}

/*
 * An episode whose firing was silenced was recorded, not published: nothing
 * on alerts.topic, no retained state. Once no silence matches it and it still
 * fires, publish its latest state now (a new seq, the same id), or downstream
 * would never learn it fires until it resolves. Checked at most every 200 ms.
 */
static void unsilence_due(struct iw_alert_pub *p, int64_t *next_ms)
{
    int64_t now = iw_now_ms();

    if (now < *next_ms)
        return;
    *next_ms = now + 200;
    for (size_t i = 0; i < p->n_active; i++) {
        const struct iw_alert *last = p->active[i].last;
        struct iw_alert *a = NULL;
        if (last == NULL || !last->silenced || silence_holds(p->d->cfg, last, now))
            continue;
        if (iw_alert_dup(last, &a) != IW_OK) {
            IW_LOG_ERROR("alerts", "out of memory: episode %s of rule %s, no longer silenced, is "
                         "not published now (it is at its next change)", last->id, last->rule);
            continue;
        }
        a->silenced = false;
        a->decided_at = now;            /* goes out now: the next reminder waits `repeat` */
        publish(p, a, NULL);            /* still firing: its row stays at index i */
        iw_alert_free(a);
    }
}

/* One retained topic and the latest published state to keep there. */
struct retained_ent {
    char topic[1024];
    const struct iw_alert *a;
};

static int retained_cmp(const void *x, const void *y)
{
    const struct retained_ent *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    if (c != 0)
        return c;
    return shown_over(a->a, b->a) ? -1 : shown_over(b->a, a->a) ? 1 : 0;   /* shown first */
}

/*
 * The broker lost its state (a connect found no session although
 * clean_session is false: restarted without persistence), and with it the
 * retained state of every firing episode (SPEC §5: a late subscriber sees
 * what fires now). Set it again: per active_topic the latest published
 * state of the episode shown_over picks, as retained messages only. Nothing goes on alerts.topic and no seq
 * is taken: no alert is re-sent (SPEC §2). A broker that kept the session
 * kept its retained messages, and gets nothing.
 */
static size_t retained_resend(struct iw_alert_pub *p)
{
    struct retained_ent *e = calloc(p->n_active ? p->n_active : 1, sizeof(*e));
    size_t n = 0, sent = 0;

    if (e == NULL) {
        IW_LOG_ERROR("alerts", "out of memory: the retained states of the firing alerts are not "
                     "set again (each is at its episode's next message)");
        return 0;
    }
    for (size_t i = 0; i < p->n_active; i++) {
        const struct iw_alert *a = p->active[i].last;
        if (a == NULL || a->silenced
            || iw_alert_topic(p->d->cfg->alerts.active_topic, a, e[n].topic, sizeof(e[n].topic)) != IW_OK)
            continue;
        e[n++].a = a;
    }
    iw_sort(e, n, sizeof(*e), retained_cmp);
    for (size_t i = 0; i < n; i++) {
        char *json = NULL;
        size_t len = 0;
        if (i > 0 && strcmp(e[i].topic, e[i - 1].topic) == 0)
            continue;                   /* one not shown on the same topic (shown_over) */
        if (iw_alert_to_json(e[i].a, &json, &len) != IW_OK)
            continue;
        if (send_one(p, e[i].a->seq, e[i].topic, json, len, true) == IW_OK)
            sent++;
        free(json);
    }
    free(e);
    return sent;
}

/*
 * A reload changed alerts.active_topic: the firing episodes' retained states
 * are on topics of the old template, where no resolve would ever clear them,
 * and a late subscriber would see them fire forever. Clear those and set the
 * states on the new topics (retained only: no alert message, no seq).
 */
static void retained_move(struct iw_alert_pub *p, const char *old_tmpl)
{
    char t[1024];

    for (size_t i = 0; i < p->n_active; i++) {
        const struct iw_alert *a = p->active[i].last;
        if (a != NULL && !a->silenced && iw_alert_topic(old_tmpl, a, t, sizeof(t)) == IW_OK)
            (void)send_one(p, a->seq, t, "", 0, true);
    }
    size_t sent = retained_resend(p);
    IW_LOG_INFO("alerts", "alerts.active_topic changed from \"%s\" to \"%s\": moved the retained "
                "state of %zu firing alert topic(s)", old_tmpl, p->d->cfg->alerts.active_topic, sent);
}

/*
 * The retained states read back at a connect (mqtt_client.c, struct
 * retained_check) against what they must be (SPEC §5: a late subscriber sees
 * what fires now, and only that). A topic no shown firing episode owns keeps
 * nothing: a state there that is an alert of one of our rules (a resolved
 * episode's, restored by the broker from an old backup) is cleared; one of
 * a rule we do not have may be another islewatchd's, and stays. A topic one owns shows its newest published state (of
 * the episode shown_over picks): set
 * again when missing or another. Retained only, no seq taken: no alert is
 * re-sent (SPEC §2). A topic whose newest state is silenced is left as it
 * is (what it shows is the state published before the silence). Reading
 * back can miss a state (a broker's queue limit): then it is set again,
 * never wrongly cleared, since only what is read is cleared.
 */
struct owned_topic {
    char topic[1024];
    const struct iw_alert *want;       /* its newest published state; NULL: silenced, leave */
    const struct active_row *rows[8];  /* the episodes shown on it (the first 8) */
    size_t n_rows;
    bool seen;
};

static int owned_cmp(const void *x, const void *y)
{
    return strcmp(((const struct owned_topic *)x)->topic, ((const struct owned_topic *)y)->topic);
}

/* The owned topics of the firing episodes, sorted by topic; *n of them. NULL: out of memory. */
static struct owned_topic *owned_topics(struct iw_alert_pub *p, size_t *n)
{
    struct owned_topic *o = calloc(p->n_active ? p->n_active : 1, sizeof(*o));
    size_t k = 0;

    *n = 0;
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < p->n_active; i++) {
        const struct active_row *row = &p->active[i];
        if (row->last == NULL || !row->shown)
            continue;
        struct iw_alert st = shown_state(row->last, row->shown_sev);
        if (iw_alert_topic(p->active_tmpl, &st, o[k].topic, sizeof(o[k].topic)) == IW_OK)
            o[k++].rows[0] = row;
    }
    iw_sort(o, k, sizeof(*o), owned_cmp);
    /* One entry per topic: rows and the newest published state merged. */
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        const struct active_row *row = o[i].rows[0];
        if (w == 0 || strcmp(o[w - 1].topic, o[i].topic) != 0) {
            if (w != i)
                o[w] = o[i];
            o[w].n_rows = 1;
            o[w].want = NULL;
            w++;
        } else if (o[w - 1].n_rows < IW_ARRAY_LEN(o[w - 1].rows)) {
            o[w - 1].rows[o[w - 1].n_rows++] = row;
        }
        const struct iw_alert *a = row->last;
        struct owned_topic *t = &o[w - 1];
        if (!a->silenced && shown_over(a, t->want))
            t->want = a;
    }
    *n = w;
    return o;
}

/* The retained state s shows the state topic t should: its newest published
 * one, or (a silenced episode's topic) one of its episodes'. */
static bool shows(const struct owned_topic *t, const char *id, uint64_t seq)
{
    if (t->want != NULL && strcmp(id, t->want->id) == 0 && seq == t->want->seq)
        return true;
    for (size_t i = 0; i < t->n_rows; i++)
        if (t->rows[i]->last->silenced && strcmp(id, t->rows[i]->id) == 0)
            return true;
    return false;
}

static int send_state(struct iw_alert_pub *p, const struct iw_alert *a, const char *topic)
{
    char *json = NULL;
    size_t len = 0;
    int rc = iw_alert_to_json(a, &json, &len);
    if (rc == IW_OK)
        rc = send_one(p, a->seq, topic, json, len, true);
    free(json);
    return rc;
}

/* A rule of the running config: its states are this daemon's to keep right.
 * Another islewatchd on the broker, with rules of other names, may share the
 * active topics: its states are left alone. */
static bool our_rule(const struct iw_config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_rules; i++)
        if (strcmp(cfg->rules[i].name, name) == 0)
            return true;
    return false;
}

static void retained_check(struct iw_alert_pub *p, const struct iw_retained_state *v, size_t n,
                           bool partial)
{
    size_t n_own, set = 0, cleared = 0;
    struct owned_topic *own = owned_topics(p, &n_own);

    if (own == NULL) {
        IW_LOG_ERROR("alerts", "out of memory: the retained alert states read back are not "
                     "checked");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct owned_topic key, *t;
        snprintf(key.topic, sizeof(key.topic), "%s", v[i].topic);
        t = bsearch(&key, own, n_own, sizeof(*own), owned_cmp);
        cJSON *doc = cJSON_ParseWithLength(v[i].payload, v[i].len);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "id"));
        const cJSON *seq = cJSON_GetObjectItem(doc, "seq");
        bool alert = id != NULL && cJSON_IsNumber(seq)
                     && cJSON_IsString(cJSON_GetObjectItem(doc, "status"))
                     && our_rule(p->d->cfg,
                                 cJSON_GetStringValue(cJSON_GetObjectItem(doc, "rule")));
        if (t != NULL) {
            t->seen = true;
            if (t->want != NULL && !(alert && shows(t, id, (uint64_t)cJSON_GetNumberValue(seq)))
                && send_state(p, t->want, t->topic) == IW_OK)
                set++;
        } else if (alert && send_one(p, 0, v[i].topic, "", 0, true) == IW_OK) {
            cleared++;                  /* not ours now: a stale alert state */
        }
        cJSON_Delete(doc);
    }
    for (size_t i = 0; i < n_own; i++)
        if (!own[i].seen && own[i].want != NULL && send_state(p, own[i].want, own[i].topic) == IW_OK)
            set++;
    free(own);
    if (set > 0 || cleared > 0)
        IW_LOG_INFO("alerts", "checked the retained alert states on the broker%s: set the retained "
                    "state of %zu firing alert topic(s) again and cleared %zu stale one(s)%s",
                    p->retained_lost ? " (it had no session for us: restarted without "
                                       "persistence, or broker.clean_session)" : "",
                    set, cleared, partial ? "; some states were not read (more than 100000, or "
                                            "out of memory): a later connect checks them" : "");
    else
        IW_LOG_DEBUG("alerts", "checked the retained alert states on the broker: %zu, all as "
                     "they should be", n);
}

/*
 * A connect of connection 0 reads the retained states back; act on the
 * result. Until it is there, a broker that lost its session (retained_lost)
 * waits for it: the check sets again only what is missing. When the check
 * fails or takes over 10 s (a broker ACL refusing its topics, or one that
 * sends the retained states after its SUBACK), every firing state is set
 * again as before there was a check. Unless connection 0 is down: then the
 * check failed because the broker went away, and the next connect's check
 * does what this one could not (sending now would only queue copies).
 */
static void retained_turn(struct iw_alert_pub *p)
{
    struct iw_retained_state *v;
    size_t n;
    bool partial;
    uint64_t round;
    int64_t now = iw_mono_ns() / 1000000;

    switch (iw_mqtt_retained_poll(p->d->mqtt, &round)) {
    case IW_RCHK_READING:
        if (round != p->check_round) {
            p->check_round = round;
            p->check_since = now;
        }
        if (now - p->check_since < 10000)
            return;
        const char *marker = "", *who = iw_mqtt_retained_who(p->d->mqtt, &marker);
        iw_complain(&p->check_slow, IW_LOG_LEVEL_WARN, "alerts", "the retained alert states on "
                    "the broker could not be read back within 10 s: the marker published on %s "
                    "did not come back to client id \"%s\"; check that the broker's ACL lets that "
                    "client subscribe to the topics of %s and to the marker topic and publish there (a broker "
                    "that sends retained messages after its SUBACK does the same); stale states "
                    "are not cleared until a later connect", marker, who, p->d->cfg->alerts.active_topic);
        (void)iw_mqtt_retained_finish(p->d->mqtt, &v, &n, &partial);
        /* A round that could not even start (its connection still busy with
         * the last one) stays pending under the same number: wait another
         * 10 s for it, not one turn (a fuzzing audit saw this WARN five times
         * in 200 ms). */
        p->check_since = now;
        break;
    case IW_RCHK_DONE:
        if (iw_mqtt_retained_finish(p->d->mqtt, &v, &n, &partial) == IW_OK) {
            retained_check(p, v, n, partial);
            iw_mqtt_retained_free(v, n);
            p->retained_lost = false;
            return;
        }
        break;                          /* read under an active_topic since replaced */
    case IW_RCHK_FAILED:
        /* Left failed while connection 0 is down: its next connect starts
         * another round. The broker closing both connections is seen on
         * each in either order, so a failure with connection 0 still up
         * waits 1 s for its loss (or its next round) before it counts. */
        if (!iw_mqtt_alerts_up(p->d->mqtt))
            return;
        if (round != p->failed_round) {
            p->failed_round = round;
            p->failed_since = now;
        }
        if (now - p->failed_since < 1000)
            return;
        (void)iw_mqtt_retained_finish(p->d->mqtt, &v, &n, &partial);
        break;
    case IW_RCHK_NONE:
        break;
    }
    if (!p->retained_lost)
        return;
    p->retained_lost = false;
    size_t sent = retained_resend(p);
    if (sent > 0)
        IW_LOG_INFO("alerts", "the broker had no session for us (restarted without persistence, "
                    "or broker.clean_session): set the retained state of %zu firing alert "
                    "topic(s) again", sent);
}

/* Remember the active_topic the retained states are on, so that a restart
 * with another one can move them too (meta "active_topic"). */
static void active_tmpl_save(struct iw_alert_pub *p)
{
    if (iw_store_meta_put(p->d->store, "active_topic", p->active_tmpl,
                          strlen(p->active_tmpl)) != IW_OK)
        IW_LOG_WARN("alerts", "cannot record alerts.active_topic in the store; a restart with "
                    "another one leaves the retained states on \"%s\"", p->active_tmpl);
}

static int do_ack(struct iw_alert_pub *p, struct pub_item *it)
{
    char akey[64];
    void *val;
    size_t len;
    struct iw_alert *a;
    struct iw_diag diag = {0};

    snprintf(akey, sizeof(akey), "active/%s", it->id);
    if (iw_store_meta_get(p->d->store, akey, &val, &len) != IW_OK)
        return IW_E_NOTFOUND;
    int rc = iw_alert_from_json(val, len, &a, &diag);
    free(val);
    iw_diag_fini(&diag);
    if (rc != IW_OK)
        return rc;
    a->acked = true;
    a->ack_ts = iw_now_ms();
    free((char *)a->ack_by);
    free((char *)a->ack_comment);
    a->ack_by = it->by ? strdup(it->by) : NULL;
    a->ack_comment = it->comment ? strdup(it->comment) : NULL;
    /* Silenced or not now, whatever it was when it fired: an ack under a
     * silence is recorded, not published (SPEC section 4), and goes out with
     * the episode when the silence ends (unsilence_due). */
    a->silenced = silence_holds(p->d->cfg, a, a->ack_ts);
    publish(p, a, NULL);
    iw_alert_free(a);
    return IW_OK;
}

/*
 * The retained clear of a silenced resolve that a stop (kill -9) came
 * between its record and Paho: send it now, from the recorded resolve
 * ("rclear/<id>" -> its JSON), and forget it once Paho took it.
 */
static int rclear_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct iw_alert_pub *p = ctx;
    struct iw_alert *a = NULL;
    struct iw_diag diag = {0};
    char k[64], topic[1024];

    snprintf(k, sizeof(k), "%.*s", (int)klen, key);
    if (iw_alert_from_json(val, vlen, &a, &diag) != IW_OK)
        IW_LOG_WARN("alerts", "%s in the store is unreadable (%s); the retained state of its "
                    "episode is not cleared", k, iw_diag_first(&diag));
    else {
        /* The episode's last shown state. Records written before
         * 2026-12-07 hold the resolve itself: taken as firing, it names
         * the same topic unless active_topic has {severity} and the
         * severity changed under the silence. */
        a->status = IW_ALERT_FIRING;
        if (iw_alert_topic(p->d->cfg->alerts.active_topic, a, topic, sizeof(topic)) != IW_OK)
            IW_LOG_WARN("alerts", "cannot form the retained topic of %s; its retained state is "
                        "not cleared", k);
        else if (send_left(p, a, topic) != IW_OK)
            k[0] = '\0';                /* Paho refused: kept for the next start */
    }
    if (k[0] != '\0' && iw_store_meta_delete(p->d->store, k) != IW_OK)
        IW_LOG_WARN("alerts", "cannot remove %s from the store; its retained clear is sent again "
                    "at the next start (harmless)", k);
    iw_alert_free(a);
    iw_diag_fini(&diag);
    return 0;
}

static void *pub_main(void *arg)
{
    struct iw_alert_pub *p = arg;
    struct pub_item *it;
    int64_t unsilence_next = 0;

    pthread_setname_np(pthread_self(), "iw-alert-pub");
    if (iw_store_meta_scan(p->d->store, "rclear/", rclear_cb, p) != IW_OK)
        IW_LOG_WARN("alerts", "could not read the retained clears left to send; the retained "
                    "state of an episode resolved while silenced may show it firing");
    /* Alerts the shards emitted before the last stop and that were not
     * recorded yet go first, before anything the shards emit now. */
    for (size_t i = 0; i < p->n_leftover; i++) {
        publish(p, p->leftover[i]->a, p->leftover[i]->outbox);
        iw_alert_free(p->leftover[i]->a);
        free(p->leftover[i]);
    }
    free(p->leftover);
    p->leftover = NULL;
    p->n_leftover = 0;
    for (;;) {
        if (p->unsent != 0)
            backlog_flush(p);
        if (strcmp(p->d->cfg->alerts.active_topic, p->active_tmpl) != 0) {
            retained_move(p, p->active_tmpl);
            p->active_tmpl = p->d->cfg->alerts.active_topic;
            active_tmpl_save(p);
            if (iw_mqtt_retained_watch(p->d->mqtt, p->active_tmpl) != IW_OK)
                IW_LOG_WARN("alerts", "cannot read back the retained states on \"%s\" at a "
                            "connect (out of memory, or too long)", p->active_tmpl);
        }
        /* acquire: pairs with connected()'s release (a flag only; it follows
         * the start of the connect's check, which retained_turn polls). */
        if (atomic_exchange_explicit(&p->d->retained_lost, false, memory_order_acquire))
            p->retained_lost = true;
        retained_turn(p);
        unsilence_due(p, &unsilence_next);
        if (iw_mpmc_pop(&p->q, &it) != IW_OK) {
            if (atomic_load_explicit(&p->d->stop, memory_order_acquire) >= 2)
                break;
            /* Alerts are rare: sleep on the semaphore rather than poll the
             * queue. Every push is followed by a post, so an item pushed after
             * the pop above found the queue empty wakes this wait; posts for
             * items already taken only cost a spare turn of the loop. */
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += 200 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            sem_clockwait(&p->ready, CLOCK_MONOTONIC, &until);
            continue;
        }
        if (it->kind == PUB_ALERT) {
            if (IW_UNLIKELY(p->d->test_kill_before_alert_records > 0)
                && p->d->test_alerts_taken + 1 == p->d->test_kill_before_alert_records) {
                struct timespec pause = { 1, 0 };   /* the emitting shard saves its state */
                nanosleep(&pause, NULL);
            }
            test_kill("ISLEWATCH_TEST_KILL_BEFORE_ALERT_RECORDS", &p->d->test_alerts_taken,
                      p->d->test_kill_before_alert_records);
            publish(p, it->a, it->outbox);
            iw_alert_free(it->a);
            /* release: pairs with the acquire of a shard's handoff hook (test-only). */
            atomic_fetch_add_explicit(&p->d->test_alerts_done, 1, memory_order_release);
            /* release: what publish() did happens before a settled() that sees it. */
            atomic_fetch_add_explicit(&p->handled, 1, memory_order_release);
        } else {
            int rc = do_ack(p, it);
            pthread_mutex_lock(it->done_lock);
            *it->result = rc;
            pthread_cond_signal(it->done_cond);
            pthread_mutex_unlock(it->done_lock);
        }
        free(it);
    }
    if (p->unsent != 0)
        IW_LOG_WARN("alerts", "stopping with alert messages from seq=%" PRIu64 " to %" PRIu64
                    " not taken by the MQTT client; they are sent after the next start",
                    p->unsent, p->seq);
    return NULL;
}

void iw_alert_pub_submit(struct iw_alert_pub *p, const struct iw_alert *a, const char *outbox)
{
    struct pub_item *it = calloc(1, sizeof(*it));
    if (it == NULL || iw_alert_dup(a, &it->a) != IW_OK) {
        IW_LOG_ERROR("alerts", "out of memory: alert of rule %s not published now%s", a->rule,
                     outbox != NULL ? " (it is at the next start)" : "");
        free(it);
        return;
    }
    it->kind = PUB_ALERT;
    snprintf(it->outbox, sizeof(it->outbox), "%s", outbox != NULL ? outbox : "");
    /* relaxed: a count only; the queue's own ordering hands the item over. */
    atomic_fetch_add_explicit(&p->submitted, 1, memory_order_relaxed);
    iw_mpmc_push_wait(&p->q, &it);
    sem_post(&p->ready);
}

int iw_daemon_ack(struct iw_daemon *d, const char *id, const char *by, const char *comment)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int result = 1;
    struct pub_item *it = calloc(1, sizeof(*it));

    if (it == NULL)
        return IW_E_NOMEM;
    if (strlen(id) != 16) {
        free(it);
        return IW_E_NOTFOUND;
    }
    it->kind = PUB_ACK;
    snprintf(it->id, sizeof(it->id), "%s", id);
    it->by = by ? strdup(by) : NULL;
    it->comment = comment ? strdup(comment) : NULL;
    it->done_lock = &lock;
    it->done_cond = &cond;
    it->result = &result;
    char *by_copy = it->by, *comment_copy = it->comment;
    iw_mpmc_push_wait(&d->pub->q, &it);
    sem_post(&d->pub->ready);
    pthread_mutex_lock(&lock);
    while (result == 1)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    free(by_copy);
    free(comment_copy);
    return result;
}

static int active_load_cb(void *ctx, const char *json, size_t len)
{
    struct iw_alert_pub *p = ctx;
    struct iw_alert *a;
    struct iw_diag diag = {0};
    if (iw_alert_from_json(json, len, &a, &diag) == IW_OK) {
        a->status = IW_ALERT_FIRING;
        active_update(p, a);
        /* Published in an earlier run, not now (published_at is "in this
         * run"): the engine restored its reminder schedule, and taking the
         * start as a publish would hold back a reminder due within `repeat`. */
        struct active_row *loaded = active_find(p, a->id);
        if (loaded != NULL)
            loaded->published_at = 0;
        /* A silenced latest state does not tell whether an earlier one was
         * published: taken as shown, so a silenced resolve still clears the
         * retained state. A clear of a topic that holds nothing only sends
         * an empty message; a missed one would show the episode firing for
         * good. */
        struct active_row *row = a->silenced ? active_find(p, a->id) : NULL;
        if (row != NULL)
            row->shown = true;
        iw_alert_free(a);
    }
    iw_diag_fini(&diag);
    return 0;
}

/* An outbox entry of an earlier run ("outbox/<n, 20 digits>" -> alert JSON). */
static int leftover_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct iw_alert_pub *p = ctx;
    struct pub_item *it, **grown;
    struct iw_diag diag = {0};
    uint64_t n;

    if (klen < 8 || klen - 7 > 20)
        return 0;
    char num[24];
    memcpy(num, key + 7, klen - 7);
    num[klen - 7] = '\0';
    n = strtoull(num, NULL, 10);
    if (n >= atomic_load_explicit(&p->d->outbox_next, memory_order_relaxed))
        atomic_store_explicit(&p->d->outbox_next, n + 1, memory_order_relaxed);
    it = calloc(1, sizeof(*it));
    grown = realloc(p->leftover, (p->n_leftover + 1) * sizeof(*grown));
    if (grown != NULL)
        p->leftover = grown;
    if (it == NULL || grown == NULL || iw_alert_from_json(val, vlen, &it->a, &diag) != IW_OK) {
        IW_LOG_ERROR("alerts", "%.*s: the alert emitted before the last stop cannot be read (%s); "
                     "it is not published", (int)klen, key,
                     it == NULL || grown == NULL ? "out of memory" : iw_diag_first(&diag));
        iw_diag_fini(&diag);
        free(it);
        return 0;
    }
    it->kind = PUB_ALERT;
    snprintf(it->outbox, sizeof(it->outbox), "%.*s", (int)klen, key);
    p->leftover[p->n_leftover++] = it;
    return 0;
}

static size_t queue_depth(const void *q) { return iw_mpmc_depth(q); }

static int found_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    *(bool *)ctx = true;
    return 1;
}

/* A silenced record ("alert/<seq>.<silno>") came after published message
 * seq: sent again, seq's retained state would undo the later one's. */
static bool silenced_after(struct iw_store *st, uint64_t seq)
{
    char prefix[64];
    bool found = false;
    snprintf(prefix, sizeof(prefix), "alert/%020" PRIu64 ".", seq);
    return iw_store_meta_scan(st, prefix, found_cb, &found) != IW_OK || found;
}

int iw_alert_pub_start(struct iw_daemon *d, struct iw_alert_pub **out, struct iw_diag *diag)
{
    struct iw_alert_pub *p = calloc(1, sizeof(*p));
    void *v;
    size_t l;

    *out = NULL;
    if (p == NULL)
        return IW_E_NOMEM;
    p->d = d;
    p->active_tmpl = d->cfg->alerts.active_topic;
    if (iw_mpmc_init(&p->q, 4096, sizeof(struct pub_item *)) != IW_OK) {
        free(p);
        return IW_E_NOMEM;
    }
    sem_init(&p->ready, 0, 0);
    /* seq continues across restarts. */
    if (iw_store_meta_get(d->store, "seqno", &v, &l) == IW_OK) {
        p->seq = strtoull(v, NULL, 10);
        free(v);
    }
    if (iw_store_meta_get(d->store, "silno", &v, &l) == IW_OK) {
        p->silno = strtoull(v, NULL, 10);
        free(v);
    }
    /* Messages the MQTT client had not taken when the daemon last stopped. */
    if (iw_store_meta_get(d->store, "unsent", &v, &l) == IW_OK) {
        p->unsent = strtoull(v, NULL, 10);
        free(v);
        if (p->unsent > p->seq)
            p->unsent = 0;
        else
            IW_LOG_INFO("alerts", "alert messages from seq=%" PRIu64 " to %" PRIu64 " are still "
                        "to be sent; sending them first", p->unsent, p->seq);
    }
    /* Messages the broker refused at the last run (MQTT 5, reason >= 0x80:
     * its ACL, mqtt_client.c): sent again from the first of them, once. */
    if (iw_store_meta_get(d->store, "alert_refused", &v, &l) == IW_OK) {
        uint64_t refused = strtoull(v, NULL, 10);
        free(v);
        if (refused > 0 && refused <= p->seq && (p->unsent == 0 || refused < p->unsent)) {
            char num[24];
            p->unsent = refused;
            /* Kept as the unsent mark (unsent_save takes it away once Paho
             * took them), so a stop before they go still sends them. */
            snprintf(num, sizeof(num), "%" PRIu64, refused);
            if (iw_store_meta_put(d->store, "unsent", num, strlen(num)) != IW_OK)
                IW_LOG_WARN("alerts", "cannot record the unsent mark seq=%s", num);
            IW_LOG_INFO("alerts", "the broker refused alert messages from seq=%" PRIu64 " at the "
                        "last run; sending seq=%" PRIu64 " to %" PRIu64 " again", refused,
                        refused, p->seq);
        }
        if (iw_store_meta_delete(d->store, "alert_refused") != IW_OK)
            IW_LOG_WARN("alerts", "cannot remove alert_refused from the store; the refused "
                        "messages are sent again at the next start too (harmless: same id and seq)");
    }
    /* No "clean_stop" left by the last stop: it was a kill -9 or a crash,
     * which may have come while the MQTT client held the last message it had
     * taken without having sent it (seen in test_alert_crash: a resolve taken
     * by Paho just before the kill never reached the broker). That message
     * goes again, with the same id and seq: at least once, never lost.
     * Unless the broker acknowledged it ("alert_acked", written when its
     * PUBACK came: mqtt_client.c, on_delivered): then subscribers have it,
     * and a copy would only page them twice. */
    uint64_t acked = 0;
    if (iw_store_meta_get(d->store, "alert_acked", &v, &l) == IW_OK) {
        acked = strtoull(v, NULL, 10);
        free(v);
    }
    atomic_store_explicit(&iw_stats.alert_acked_seq, acked, memory_order_relaxed);
    if (iw_store_meta_get(d->store, "clean_stop", &v, &l) == IW_OK) {
        free(v);
    } else if (p->seq > 0 && p->unsent == 0 && acked >= p->seq) {
        IW_LOG_INFO("alerts", "the last stop was not clean; the broker had acknowledged the "
                    "last alert message (seq=%" PRIu64 "): nothing to send again", p->seq);
    } else if (p->seq > 0 && p->unsent == 0 && !silenced_after(d->store, p->seq)) {
        p->unsent = p->seq;
        IW_LOG_INFO("alerts", "the last stop was not clean: sending the last alert message "
                    "(seq=%" PRIu64 ") again", p->seq);
    }
    if (iw_store_meta_delete(d->store, "clean_stop") != IW_OK)
        IW_LOG_WARN("alerts", "cannot clear the clean-stop mark; a crash before the next stop "
                    "would not send the last alert message again");
    if (iw_alert_active_scan(d->store, active_load_cb, p) != IW_OK)
        IW_LOG_WARN("alerts", "could not read the active alerts");
    /* Before the shards start: their outbox keys continue after these. */
    atomic_store_explicit(&d->outbox_next, 1, memory_order_relaxed);
    if (iw_store_meta_scan(d->store, "outbox/", leftover_cb, p) != IW_OK)
        IW_LOG_WARN("alerts", "could not read the alerts emitted before the last stop; those not "
                    "published then are not now");
    if (p->n_leftover > 0)
        IW_LOG_INFO("alerts", "%zu alert(s) emitted before the last stop were not recorded; "
                    "publishing them first", p->n_leftover);
    /* The retained states are under the active_topic of the last start or
     * reload; when the config now has another one, pub_main moves them. */
    v = NULL;
    if (iw_store_meta_get(d->store, "active_topic", &v, &l) == IW_OK &&
        strcmp(v, p->active_tmpl) != 0) {
        p->active_tmpl = p->saved_tmpl = v;
    } else {
        free(v);
        active_tmpl_save(p);
    }
    /* Read back at every connect: the first one comes after this (the main loop's). */
    if (iw_mqtt_retained_watch(d->mqtt, d->cfg->alerts.active_topic) != IW_OK)
        IW_LOG_WARN("alerts", "cannot read back the retained states on \"%s\" at a connect "
                    "(out of memory, or too long)", d->cfg->alerts.active_topic);
    if (pthread_create(&p->thread, NULL, pub_main, p) != 0) {
        iw_diag_set(diag, NULL, 0, 0, "cannot start the alert publisher thread");
        for (size_t i = 0; i < p->n_leftover; i++) {
            iw_alert_free(p->leftover[i]->a);
            free(p->leftover[i]);
        }
        free(p->leftover);
        free(p->saved_tmpl);
        sem_destroy(&p->ready);
        iw_mpmc_fini(&p->q);
        free(p);
        return IW_E_NOMEM;
    }
    iw_stats_register_queue("alerts", queue_depth, &p->q);
    *out = p;
    return IW_OK;
}

bool iw_alert_pub_settled(const struct iw_alert_pub *p)
{
    /* handled first (acquire): a count read after it can only be as large,
     * so an alert submitted meanwhile is never taken as handled. */
    uint64_t h = atomic_load_explicit(&p->handled, memory_order_acquire);
    return h == atomic_load_explicit(&p->submitted, memory_order_relaxed);
}

void iw_alert_pub_stop(struct iw_alert_pub *p)
{
    if (p == NULL)
        return;
    /* The shards have stopped (stop == 1); 2 tells the publisher to exit once drained. */
    atomic_store_explicit(&p->d->stop, 2, memory_order_release);
    sem_post(&p->ready);
    pthread_join(p->thread, NULL);
    /* Everything went to the MQTT client, which keeps what it has not sent
     * in its persisted store: the next start need not send anything again. */
    if (iw_store_meta_put(p->d->store, "clean_stop", "1", 1) != IW_OK)
        IW_LOG_WARN("alerts", "cannot record the clean stop; the next start sends the last "
                    "alert message again");
    for (size_t i = 0; i < p->n_active; i++) {
        atomic_fetch_sub_explicit(&iw_stats.alerts_active[p->active[i].sev], 1, memory_order_relaxed);
        iw_alert_free(p->active[i].last);
    }
    free(p->active);
    free(p->saved_tmpl);
    sem_destroy(&p->ready);
    iw_mpmc_fini(&p->q);
    free(p);
    feed_clear();
}
