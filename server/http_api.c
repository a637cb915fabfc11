/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /api/v1 endpoints (SPEC §6, §7). Reading endpoints answer with the very
 * documents `islewatch ... --format json` prints (islewatch/api_json.h):
 *
 *   GET /api/v1/series?match=GLOB
 *       [{"series":"water/dongtan/w01/nh3_n","first":T,"last":T,"count":N}]
 *   GET /api/v1/query?series=GLOB&from=T&to=T[&step=D&agg=avg|min|max|sum|count|last]
 *       [{"series":"...","points":[[T,V],...]}]; T epoch ms. Without step the
 *       raw points, and the flags (HJ 212) of flagged ones beside them,
 *       "flags":[[T,"D"],...]; with step, [bucket_start, aggregate]. to
 *       defaults to now, from to an hour before to; agg to avg.
 *   Both with &devices=1: the devices' own entries instead ("water/dongtan/w01",
 *       the messages that stored no sample, value 0 and their flag; raw only),
 *       which backtest replays to the absence and flag rules.
 *   GET /api/v1/alerts[?active=1&since=T&rule=R&limit=N]
 *   GET /api/v1/alerts/stream[?since=SEQ&silenced=1]   Server-Sent Events (below)
 *   GET /api/v1/devices           the device inventory (SPEC section 1):
 *       [{"source":"water","site":"dongtan","device":"w01","name":"东滩 1号站",
 *         "body":"river","target":"III","lat":31.5,"lon":121.9}]; name,
 *       target, lat and lon null when not declared (body: water only;
 *       "pollutants":["o3","pm25"] only when declared)
 *
 * State changes (the caller, http.c, has checked the token):
 *   POST /api/v1/alerts/ID/ack    body {"by":"...","comment":"..."} optional
 *   GET|POST /api/v1/silences, DELETE /api/v1/silences/ID
 *   POST /api/v1/reload           200 {"ok":true} | 400 {"ok":false,"errors":[...]}
 *
 * The SSE stream: each alert is "id: SEQ\ndata: JSON\n\n" (a message event). A
 * client that sends Last-Event-ID (browsers do on reconnect) or ?since=SEQ
 * first gets every alert with a greater seq from the store, then the live
 * feed; a new client starts at the current seq. With ?silenced=1 (the
 * dashboard), an alert recorded silenced from then on comes too, as an
 * "event: silenced" without an id (it has no seq of its own; not replayed
 * after a reconnect: the history has it). A ": keep-alive" comment goes
 * out after 15 s without an alert. The content reader blocks on the feed in
 * 250 ms slices, so it notices iw_http_stop() within that time, and a client
 * that hung up: libmicrohttpd cannot see that while the reader blocks, and a
 * stream of a closed tab would hold a thread, a connection and a stream slot
 * until the next keep-alive failed to go out.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "islewatch/api_json.h"
#include "islewatch/clock.h"
#include "islewatch/daemon.h"
#include "islewatch/json_print.h"
#include "islewatch/log.h"
#include "islewatch/silences.h"
#include "islewatch/standards.h"
#include "islewatch/store.h"
#include "http_int.h"

#define SSE_KEEPALIVE_NS (15LL * 1000000000LL)
#define SSE_WAIT_MS 250
#define SSE_REPLAY_CHUNK (512 * 1024)  /* bytes of history replayed per refill */
/* Points one /api/v1/query answer may hold (~25 MB of text at most, built
 * IW_HTTP_MAX_HEAVY at a time): a query must not take the memory the daemon
 * needs to ingest. */
#define QUERY_MAX_POINTS 1000000

static const char time_help[] = "RFC 3339 (2026-11-29T10:00:00Z), epoch milliseconds, \"now\" or "
                                "relative (-1h), within the years 0000..9999";

/* ======================================================================== */
/* Reading endpoints                                                         */
/* ======================================================================== */

static enum MHD_Result store_failed(struct MHD_Connection *c, int rc, const char *what)
{
    if (rc == IW_E_NOMEM)
        return iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s: out of memory", what);
    return iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s failed: %s (see the daemon's "
                          "log)", what, iw_strerror(rc));
}

/*
 * A time from the query string. A '+' typed in a URL arrives as a space, so
 * "...T10:00:00+08:00" reads "...T10:00:00 08:00"; no RFC 3339 time has a
 * space before its offset, so that space is taken for the '+' it was.
 */
static int time_value(const char *v, int64_t now, int64_t *out)
{
    char buf[64];
    size_t n = strlen(v);

    if (iw_time_arg_parse(v, now, out) == IW_OK)
        return IW_OK;
    if (n < 7 || n >= sizeof(buf) || v[n - 6] != ' ' || v[n - 3] != ':')
        return IW_E_INVAL;
    memcpy(buf, v, n + 1);
    buf[n - 6] = '+';
    return iw_time_arg_parse(buf, now, out);
}

static bool parse_time_arg(struct MHD_Connection *c, const char *name, const char *def,
                           int64_t now, int64_t *out, enum MHD_Result *ret)
{
    const char *v = iw__http_arg(c, name);
    if (v == NULL || v[0] == '\0')
        v = def;
    if (v == NULL)
        return true;                                /* absent, no default text: *out stays */
    if (time_value(v, now, out) == IW_OK)
        return true;
    *ret = iw__http_error(c, MHD_HTTP_BAD_REQUEST, "%s=\"%s\" is not a time; use %s", name, v,
                          time_help);
    return false;
}

/* The series glob: ?match= (series) or ?series= (query), either accepted on both;
 * an empty one is none. */
static const char *glob_arg(struct MHD_Connection *c)
{
    static const char *const names[] = { "match", "series", "glob" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = iw__http_arg(c, names[i]);
        if (v != NULL && v[0] != '\0')
            return v;
    }
    return NULL;
}

/* A yes/no parameter (1/true, 0/false; absent: no), e.g. ?devices=1. */
static bool flag_arg(struct MHD_Connection *c, const char *name, bool *out, enum MHD_Result *ret)
{
    const char *v = iw__http_arg(c, name);

    *out = v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
    if (v != NULL && !*out && strcmp(v, "0") != 0 && strcmp(v, "false") != 0) {
        *ret = iw__http_error(c, MHD_HTTP_BAD_REQUEST, "%s=\"%s\": use %s=1 or %s=0", name, v,
                              name, name);
        return false;
    }
    return true;
}

enum MHD_Result iw__api_series(struct iw_http *h, struct MHD_Connection *c)
{
    static const char *const known[] = { "match", "series", "glob", "devices", NULL };
    const char *glob = glob_arg(c);
    char *out = NULL;
    enum MHD_Result ret;
    bool devices;

    if (!iw__http_args_known(c, "/api/v1/series", known, &ret)
        || !flag_arg(c, "devices", &devices, &ret))
        return ret;
    glob = glob && glob[0] ? glob : NULL;
    int rc = devices ? iw_api_device_series_json(iw_daemon_store(h->d), glob, &out)
                     : iw_api_series_json(iw_daemon_store(h->d), glob, &out);

    if (rc != IW_OK)
        return store_failed(c, rc, "listing series");
    return iw__http_json(c, MHD_HTTP_OK, out);
}

enum MHD_Result iw__api_query(struct iw_http *h, struct MHD_Connection *c)
{
    const char *glob = glob_arg(c), *step_s = iw__http_arg(c, "step");
    const char *agg_s = iw__http_arg(c, "agg");
    int64_t now = iw_now_ms(), from, to, step = 0;
    enum MHD_Result ret;
    int agg = IW_Q_RAW, rc;
    char *out = NULL;
    static const char *const known[] = { "series", "match", "glob", "from", "to", "step", "agg",
                                         "devices", NULL };
    bool devices;

    if (!iw__http_args_known(c, "/api/v1/query", known, &ret)
        || !flag_arg(c, "devices", &devices, &ret))
        return ret;
    if (glob == NULL || glob[0] == '\0')
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "series=GLOB is required, e.g. "
                              "/api/v1/query?series=water/*/*/nh3_n&from=-1h");
    if (!parse_time_arg(c, "to", "now", now, &to, &ret))
        return ret;
    from = to - IW_MS_PER_HOUR;                     /* default: the hour before to */
    if (!parse_time_arg(c, "from", NULL, now, &from, &ret))
        return ret;
    if (from > to)          /* both ends are inclusive: from == to asks for one instant */
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "from (%" PRId64 ") must not be after to "
                              "(%" PRId64 ")", from, to);
    if (step_s != NULL && step_s[0] != '\0') {
        char *end;
        errno = 0;
        long long ms = strtoll(step_s, &end, 10);
        if (*end == '\0' && errno == 0)
            step = ms;                               /* plain milliseconds */
        else if (iw_duration_parse(step_s, &step) != IW_OK)
            step = -1;
        if (step <= 0)
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "step=\"%s\" is not a positive "
                                  "duration; use e.g. 30s, 5m, 1h, 1d", step_s);
        /* to >= from: the unsigned difference is exact, to - from may not fit int64 */
        if (((uint64_t)to - (uint64_t)from) / (uint64_t)step > 1000000)
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "step=%s gives more than 1000000 "
                                  "buckets over this range; use a larger step", step_s);
        agg = IW_Q_AVG;
    }
    if (agg_s != NULL && agg_s[0] != '\0') {
        agg = iw_agg_parse(agg_s);
        if (agg <= IW_Q_RAW)
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "agg=\"%s\" is not one of avg, min, "
                                  "max, sum, count, last", agg_s);
        if (step == 0)
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "agg=%s needs step=D (the bucket "
                                  "width, e.g. step=5m)", agg_s);
    }
    if (devices && step != 0)
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "devices=1 gives raw points only; "
                              "leave out step and agg");
    /* A few at a time, and not while slow readers hold too many answers
     * (checked in turn: a burst of queries all passed a check made before):
     * memory stays bounded however many clients ask at once. */
    while (sem_wait(&h->heavy) != 0)
        ;                                           /* EINTR */
    if (iw__http_busy(h)) {
        sem_post(&h->heavy);
        return iw__http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "query answers of over %zu KiB "
                              "are being sent to other clients; retry in a few seconds, or "
                              "narrow the query", h->answer_budget >> 10);
    }
    rc = devices ? iw_api_device_points_json(iw_daemon_store(h->d), glob, from, to,
                                             QUERY_MAX_POINTS, &out)
                 : iw_api_query_json(iw_daemon_store(h->d), glob, from, to, step,
                                     (enum iw_agg)agg, QUERY_MAX_POINTS, &out);
    size_t len = iw__http_count(h, out);            /* before the next one checks */
    sem_post(&h->heavy);
    if (rc == IW_E_FULL)
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "the query selects more than %d points; "
                              "narrow the glob or the range, use step=D (e.g. step=1h), or read "
                              "the database directly (islewatch query --db PATH)",
                              QUERY_MAX_POINTS);
    if (rc != IW_OK)
        return store_failed(c, rc, "the query");
    return iw__http_json_counted(h, c, MHD_HTTP_OK, out, len);
}

enum MHD_Result iw__api_alerts(struct iw_http *h, struct MHD_Connection *c)
{
    const char *active_s = iw__http_arg(c, "active"), *rule = iw__http_arg(c, "rule");
    const char *limit_s = iw__http_arg(c, "limit"), *since_s = iw__http_arg(c, "since");
    bool active = false;
    int64_t since = INT64_MIN;
    unsigned long long limit = 0;
    char *out = NULL;
    int rc;
    static const char *const known[] = { "active", "since", "rule", "limit", NULL };
    enum MHD_Result ret;

    if (!iw__http_args_known(c, "/api/v1/alerts", known, &ret))
        return ret;
    if (active_s != NULL) {
        if (strcmp(active_s, "1") == 0 || strcmp(active_s, "true") == 0 || active_s[0] == '\0')
            active = true;
        else if (strcmp(active_s, "0") != 0 && strcmp(active_s, "false") != 0)
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "active=\"%s\": use active=1 or "
                                  "active=0", active_s);
    }
    if (since_s != NULL && since_s[0] != '\0' &&
        time_value(since_s, iw_now_ms(), &since) != IW_OK)
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "since=\"%s\" is not a time; use %s",
                              since_s, time_help);
    if (limit_s != NULL && limit_s[0] != '\0') {
        char *end;
        errno = 0;
        limit = strtoull(limit_s, &end, 10);
        if (*end != '\0' || errno != 0 || limit_s[0] == '-')
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "limit=\"%s\" is not a count; use "
                                  "e.g. limit=100 (0: no limit)", limit_s);
    }
    rc = iw_api_alerts_json(iw_daemon_store(h->d), active, since, rule && rule[0] ? rule : NULL,
                            (size_t)limit, &out);
    if (rc != IW_OK)
        return store_failed(c, rc, "reading alerts");
    return iw__http_json(c, MHD_HTTP_OK, out);
}

/* ======================================================================== */
/* Server-Sent Events                                                        */
/* ======================================================================== */

struct sse {
    struct iw_http *h;
    struct iw_store *st;
    int fd;                     /* the client's socket (-1: unknown), only peeked at */
    uint64_t last;              /* highest seq sent (or skipped as past) */
    bool silenced;              /* ?silenced=1: silenced records too, as "silenced" events */
    uint64_t last_silenced;     /* the feed's number of the last one sent (or skipped) */
    bool replay;                /* still reading history from the store */
    bool gap;                   /* the live feed no longer holds last + 1 */
    bool oom;
    char *buf;
    size_t len, off, cap;
    int64_t next_keepalive_ns;
};

static void sse_put(struct sse *s, const char *p, size_t n)
{
    if (!s->oom && !iw_append(&s->buf, &s->len, &s->cap, p, n))
        s->oom = true;
}

/* One event; a JSON text with line breaks becomes several data: lines. */
static void sse_event(struct sse *s, uint64_t seq, const char *json, size_t len)
{
    char head[64];
    /* No "event:" line: a plain message event, which EventSource.onmessage
     * and generic SSE clients receive without knowing an event name. */
    if (seq != 0) {
        int n = snprintf(head, sizeof(head), "id: %" PRIu64 "\n", seq);
        sse_put(s, head, (size_t)n);
    }
    while (len > 0) {
        const char *nl = memchr(json, '\n', len);
        size_t line = nl ? (size_t)(nl - json) : len;
        sse_put(s, "data: ", 6);
        sse_put(s, json, line);
        sse_put(s, "\n", 1);
        json += line + (nl != NULL);
        len -= line + (nl != NULL);
    }
    sse_put(s, "\n", 1);
    s->last = seq;
}

static int replay_cb(void *ctx, uint64_t seq, const char *json, size_t len)
{
    struct sse *s = ctx;
    if (seq <= s->last)
        return 0;
    sse_event(s, seq, json, len);
    return s->len >= SSE_REPLAY_CHUNK || s->oom;
}

static void live_cb(void *ctx, uint64_t seq, const char *json, size_t len)
{
    struct sse *s = ctx;
    if (seq <= s->last || s->gap)
        return;
    if (seq != s->last + 1) {
        /* Fell behind the in-memory window: the store has the missing ones. */
        s->gap = true;
        return;
    }
    sse_event(s, seq, json, len);
}

/* A silenced record: a named event without an id, so a client's
 * Last-Event-ID stays the last published seq (it shows the seq of the
 * published message before it). */
static void silenced_cb(void *ctx, const char *json, size_t len)
{
    struct sse *s = ctx;
    uint64_t last = s->last;
    sse_put(s, "event: silenced\n", 16);
    sse_event(s, 0, json, len);
    s->last = last;
}

/*
 * True when the client closed its side. An SSE client sends nothing after its
 * request, so end of file (or a reset) on the socket means it has gone. Peeked,
 * never read: libmicrohttpd owns the socket.
 */
static bool client_gone(int fd)
{
    char b;
    ssize_t n;

    if (fd < 0)
        return false;
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Refill s->buf; returns false when the stream must end. */
static bool sse_fill(struct sse *s)
{
    for (;;) {
        if (atomic_load(&s->h->stopping) || s->oom || client_gone(s->fd))
            return false;
        if (s->replay) {
            if (iw_alert_history_scan(s->st, s->last, false, replay_cb, s) != IW_OK)
                return false;
            if (s->len == 0)
                s->replay = false;
            else
                break;
            continue;
        }
        (void)iw_alert_feed_since(s->last, live_cb, s);
        if (s->silenced)
            s->last_silenced = iw_alert_feed_silenced_since(s->last_silenced, silenced_cb, s);
        if (s->gap) {
            s->gap = false;
            s->replay = true;
            s->len = 0;
            continue;
        }
        if (s->len > 0)
            break;
        if (iw_mono_ns() >= s->next_keepalive_ns) {
            sse_put(s, ": keep-alive\n\n", 14);
            break;
        }
        (void)iw_alert_feed_wait(s->last, s->silenced ? s->last_silenced : UINT64_MAX,
                                 SSE_WAIT_MS, NULL);
    }
    s->next_keepalive_ns = iw_mono_ns() + SSE_KEEPALIVE_NS;
    return !s->oom;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct sse *s = cls;
    size_t n;

    (void)pos;
    if (s->off >= s->len) {
        s->off = s->len = 0;
        if (!sse_fill(s))
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    atomic_fetch_sub(&s->h->streams, 1);
    free(s->buf);
    free(s);
}

/* The seq every alert so far has (0: none yet): where a new client starts. */
static uint64_t current_seq(struct iw_store *st)
{
    void *v = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    char num[32];

    if (iw_store_meta_get(st, "seqno", &v, &len) == IW_OK && len < sizeof(num)) {
        memcpy(num, v, len);
        num[len] = '\0';
        seq = strtoull(num, NULL, 10);
    }
    free(v);
    uint64_t fed = iw_alert_feed_wait(0, UINT64_MAX, 0, NULL);
    return fed > seq ? fed : seq;
}

enum MHD_Result iw__api_stream(struct iw_http *h, struct MHD_Connection *c)
{
    const char *from = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_LAST_EVENT_ID);
    struct MHD_Response *resp;
    enum MHD_Result ret;
    struct sse *s;
    char hello[128];
    static const char *const known[] = { "since", "silenced", NULL };

    if (!iw__http_args_known(c, "/api/v1/alerts/stream", known, &ret))
        return ret;
    bool silenced;
    if (!flag_arg(c, "silenced", &silenced, &ret))
        return ret;
    if (from == NULL || from[0] == '\0')
        from = iw__http_arg(c, "since");
    /* Taken here, given back by sse_free (or below when the stream does not
     * start). seq_cst: a plain counter, not on the per-message path. */
    if (atomic_fetch_add(&h->streams, 1) >= IW_HTTP_MAX_STREAMS) {
        atomic_fetch_sub(&h->streams, 1);
        return iw__http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "%d alert streams are open, the "
                              "most islewatchd serves at once: close a dashboard tab or an "
                              "'islewatch tail --url'; GET /api/v1/alerts answers without a "
                              "stream", IW_HTTP_MAX_STREAMS);
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        atomic_fetch_sub(&h->streams, 1);
        return MHD_NO;
    }
    s->h = h;
    s->st = iw_daemon_store(h->d);
    /* Silenced records from now on: those before are in the history. */
    s->silenced = silenced;
    (void)iw_alert_feed_wait(0, UINT64_MAX, 0, &s->last_silenced);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci != NULL ? ci->connect_fd : -1;
    if (from != NULL && from[0] != '\0') {
        char *end;
        errno = 0;
        s->last = strtoull(from, &end, 10);
        if (*end != '\0' || errno != 0 || from[0] == '-') {
            free(s);
            atomic_fetch_sub(&h->streams, 1);
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "Last-Event-ID / since=\"%s\" is not "
                                  "an alert seq (a non-negative integer)", from);
        }
        s->replay = true;
        /* An id from an older database would hide every new alert: restart from now. */
        uint64_t cur = current_seq(s->st);
        if (s->last > cur)
            s->last = cur;
    } else {
        s->last = current_seq(s->st);
    }
    /* Sent at once so the client knows it is subscribed (and from where). */
    int n = snprintf(hello, sizeof(hello), "retry: 2000\n: islewatch alerts after seq %" PRIu64
                     "\n\n", s->last);
    sse_put(s, hello, (size_t)n);
    s->next_keepalive_ns = iw_mono_ns() + SSE_KEEPALIVE_NS;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, s, sse_free);
    if (resp == NULL) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ======================================================================== */
/* State changes                                                             */
/* ======================================================================== */

static enum MHD_Result ok_json(struct MHD_Connection *c, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o != NULL) {
        cJSON_AddBoolToObject(o, "ok", 1);
        if (id != NULL)
            cJSON_AddStringToObject(o, "id", id);
        text = iw_json_print(o);
    }
    cJSON_Delete(o);
    return iw__http_json(c, MHD_HTTP_OK, text);
}

/* An alert id in lower case (ids are printed so; 3F09A1... names the same alert);
 * false when s is not 16 hex digits. */
static bool hex16_lower(const char *s, char out[17])
{
    if (strlen(s) != 16 || strspn(s, "0123456789abcdefABCDEF") != 16)
        return false;
    for (int i = 0; i <= 16; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return true;
}

#define ACK_BY_MAX 128
#define ACK_COMMENT_MAX 1024

/* s is NULL, or at most max bytes without a control character (a newline). */
static bool one_line(const char *s, int max)
{
    if (s == NULL)
        return true;
    size_t n = strlen(s);
    if (n > (size_t)max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

enum MHD_Result iw__api_ack(struct iw_http *h, struct MHD_Connection *c, const char *raw_id,
                            const struct iw_http_req *r)
{
    const char *by = NULL, *comment = NULL;
    char id[17];
    cJSON *o = NULL;
    const cJSON *m;
    int rc;

    if (!hex16_lower(raw_id, id))
        return iw__http_error(c, MHD_HTTP_NOT_FOUND, "no firing alert has id \"%s\" (an alert id "
                              "is 16 hex digits; GET /api/v1/alerts?active=1 lists them)", raw_id);
    if (r->len > 0) {
        o = iw_json_parse_whole(r->body, r->len);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object "
                                  "{\"by\":\"NAME\",\"comment\":\"TEXT\"} (both optional) or "
                                  "empty");
        }
        /* Another key is ignored unless it is a likely typo of one of these
         * ("byy": the ack would go out without the name that was meant). */
        static const char *const keys[] = { "by", "comment", NULL };
        char hint[64];
        cJSON_ArrayForEach(m, o) {
            if (strcmp(m->string, "by") != 0 && strcmp(m->string, "comment") != 0
                && iw_did_you_mean(m->string, keys, hint, sizeof(hint))[0] != '\0') {
                enum MHD_Result ret = iw__http_error(
                    c, MHD_HTTP_BAD_REQUEST, "unknown key \"%.100s\"%s; the body is "
                    "{\"by\":\"NAME\",\"comment\":\"TEXT\"} (both optional) or empty",
                    m->string, hint);
                cJSON_Delete(o);
                return ret;
            }
        }
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "by");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "comment");
        if ((b != NULL && !cJSON_IsString(b) && !cJSON_IsNull(b)) ||
            (k != NULL && !cJSON_IsString(k) && !cJSON_IsNull(k))) {
            cJSON_Delete(o);
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "\"by\" and \"comment\" must be "
                                  "strings");
        }
        by = cJSON_IsString(b) ? b->valuestring : NULL;
        comment = cJSON_IsString(k) ? k->valuestring : NULL;
        /* They go out in every later message of the episode and on tail's one
         * line per alert: one line, of a sensible length. */
        const char *bad = !one_line(by, ACK_BY_MAX) ? "by" : !one_line(comment, ACK_COMMENT_MAX)
                                                               ? "comment" : NULL;
        if (bad != NULL) {
            cJSON_Delete(o);
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "\"%s\" must be one line of at most "
                                  "%d bytes, without control characters", bad,
                                  bad[0] == 'b' ? ACK_BY_MAX : ACK_COMMENT_MAX);
        }
    }
    rc = iw_daemon_ack(h->d, id, by, comment);
    if (rc == IW_OK)
        IW_LOG_INFO("http", "alert %s acknowledged%s%s", id, by ? " by " : "", by ? by : "");
    cJSON_Delete(o);                 /* by and comment point into it */
    if (rc == IW_E_NOTFOUND)
        return iw__http_error(c, MHD_HTTP_NOT_FOUND, "no firing alert has id %s (it may have "
                              "resolved; GET /api/v1/alerts?active=1 lists the firing ones)", id);
    if (rc != IW_OK)
        return iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "acknowledging %s failed: %s",
                              id, iw_strerror(rc));
    return ok_json(c, id);
}

enum MHD_Result iw__api_silences_get(struct iw_http *h, struct MHD_Connection *c)
{
    char *out = NULL;
    int rc = iw_silences_list_json(iw_daemon_config(h->d), iw_now_ms(), &out);
    if (rc != IW_OK)
        return store_failed(c, rc, "listing silences");
    return iw__http_json(c, MHD_HTTP_OK, out);
}

enum MHD_Result iw__api_silences_post(struct iw_http *h, struct MHD_Connection *c,
                                      const struct iw_http_req *r)
{
    char id[IW_SILENCE_ID_LEN + 1];
    struct iw_diag diag = {0};
    enum MHD_Result ret;
    int rc;

    if (r->len == 0)
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "send the silence as a JSON body, e.g. "
                              "{\"match\":{\"site\":\"dongtan\",\"rule\":\"camera-*\"},"
                              "\"duration\":\"2h\",\"reason\":\"maintenance\"}");
    rc = iw_silences_create(iw_daemon_store(h->d), r->body, r->len, "api", iw_now_ms(), id, &diag);
    if (rc == IW_OK) {
        IW_LOG_INFO("http", "silence %s created", id);
        ret = ok_json(c, id);
    } else if (rc == IW_E_INVAL || rc == IW_E_FULL) {
        ret = iw__http_error(c, rc == IW_E_FULL ? MHD_HTTP_CONFLICT : MHD_HTTP_BAD_REQUEST, "%s",
                             iw_diag_first(&diag));
    } else {
        ret = iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "creating the silence failed: %s",
                             diag.n ? iw_diag_first(&diag) : iw_strerror(rc));
    }
    iw_diag_fini(&diag);
    return ret;
}

#define SILENCE_ID_HOW "DELETE /api/v1/silences/ID, DELETE /api/v1/silences?id=ID or " \
                       "DELETE /api/v1/silences with the body {\"id\":\"ID\"}; " \
                       "GET /api/v1/silences lists the ids"

enum MHD_Result iw__api_silences_delete(struct iw_http *h, struct MHD_Connection *c,
                                        const char *id, const struct iw_http_req *r)
{
    const char *arg = iw__http_arg(c, "id"), *in_body = NULL;
    enum MHD_Result ret;
    cJSON *o = NULL;
    int rc;

    if (id == NULL && r->len > 0) {
        o = iw_json_parse_whole(r->body, r->len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (!cJSON_IsObject(o) || (v != NULL && !cJSON_IsString(v))) {
            cJSON_Delete(o);
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object "
                                  "{\"id\":\"ID\"} with the silence id as a string; "
                                  SILENCE_ID_HOW);
        }
        in_body = cJSON_GetStringValue(v);
    }
    if (arg != NULL && in_body != NULL && strcmp(arg, in_body) != 0) {
        ret = iw__http_error(c, MHD_HTTP_BAD_REQUEST, "two different silence ids, \"%s\" in "
                             "?id= and \"%s\" in the body: send one", arg, in_body);
        cJSON_Delete(o);
        return ret;
    }
    if (id == NULL)
        id = arg != NULL ? arg : in_body;
    if (id == NULL || id[0] == '\0') {
        cJSON_Delete(o);
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "which silence? Give its id: "
                              SILENCE_ID_HOW);
    }
    rc = iw_silences_delete(iw_daemon_store(h->d), id);
    if (rc == IW_E_NOTFOUND) {
        ret = iw__http_error(c, MHD_HTTP_NOT_FOUND, "no run-time silence has id \"%s\" "
                             "(GET /api/v1/silences lists them; silences from the config file "
                             "are removed by editing it and reloading)", id);
    } else if (rc != IW_OK) {
        ret = iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "deleting silence %s failed: %s",
                             id, iw_strerror(rc));
    } else {
        IW_LOG_INFO("http", "silence %s deleted", id);
        ret = ok_json(c, id);
    }
    cJSON_Delete(o);                 /* in_body, maybe id, point into it */
    return ret;
}

enum MHD_Result iw__api_reload(struct iw_http *h, struct MHD_Connection *c)
{
    struct iw_diag diag = {0};
    int rc = iw_daemon_request_reload(h->d, &diag);
    cJSON *o, *errs;
    char *text = NULL;

    if (rc == IW_OK) {
        iw_diag_fini(&diag);
        return ok_json(c, NULL);
    }
    o = cJSON_CreateObject();
    errs = cJSON_CreateArray();
    if (o != NULL && errs != NULL) {
        cJSON_AddBoolToObject(o, "ok", 0);
        for (size_t i = 0; i < diag.n; i++)
            cJSON_AddItemToArray(errs, cJSON_CreateString(diag.lines[i]));
        if (diag.n == 0)
            cJSON_AddItemToArray(errs, cJSON_CreateString(iw_strerror(rc)));
        cJSON_AddItemToObject(o, "errors", errs);
        errs = NULL;
        text = iw_json_print(o);
    }
    cJSON_Delete(o);
    cJSON_Delete(errs);
    iw_diag_fini(&diag);
    return iw__http_json(c, MHD_HTTP_BAD_REQUEST, text);
}

enum MHD_Result iw__api_devices(struct iw_http *h, struct MHD_Connection *c)
{
    static const char *const roman[] = { NULL, "I", "II", "III", "IV", "V" };
    const struct iw_config *cfg = iw_daemon_config(h->d);
    cJSON *arr = cJSON_CreateArray();
    char *text = NULL;
    bool ok = arr != NULL;

    for (size_t i = 0; ok && i < cfg->n_devices; i++) {
        const struct iw_device_cfg *dv = &cfg->devices[i];
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL && cJSON_AddItemToArray(arr, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        cJSON_AddStringToObject(o, "source", dv->source);
        cJSON_AddStringToObject(o, "site", dv->site);
        cJSON_AddStringToObject(o, "device", dv->device);
        if (dv->name != NULL)
            cJSON_AddStringToObject(o, "name", dv->name);
        else
            cJSON_AddNullToObject(o, "name");
        if (strcmp(dv->source, "water") == 0)
            cJSON_AddStringToObject(o, "body", dv->body == IW_BODY_LAKE ? "lake" : "river");
        if (dv->target >= 1 && dv->target <= 5)
            cJSON_AddStringToObject(o, "target", roman[dv->target]);
        else
            cJSON_AddNullToObject(o, "target");
        if (dv->has_pos) {
            cJSON_AddNumberToObject(o, "lat", dv->lat);
            cJSON_AddNumberToObject(o, "lon", dv->lon);
        } else {
            cJSON_AddNullToObject(o, "lat");
            cJSON_AddNullToObject(o, "lon");
        }
        if (dv->pollutants != 0) {
            cJSON *pl = cJSON_AddArrayToObject(o, "pollutants");
            for (int p = 0; pl != NULL && p < IW_AQI_NPOLLUTANTS; p++)
                if (dv->pollutants & (1u << p))
                    cJSON_AddItemToArray(pl, cJSON_CreateString(
                                             iw_aqi_pollutant_info((enum iw_aqi_pollutant)p)->metric));
        }
    }
    if (ok)
        text = iw_json_print(arr);
    cJSON_Delete(arr);
    if (text == NULL)
        return iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "listing the devices failed: out "
                              "of memory");
    return iw__http_json(c, MHD_HTTP_OK, text);
}
