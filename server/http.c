/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server (SPEC §7) on libmicrohttpd: the listening socket, routing,
 * bearer-token authorisation of state changes, and the small endpoints
 * (/healthz, /readyz, /metrics, the dashboard). The /api/v1 endpoints are in
 * http_api.c.
 *
 * Threads: libmicrohttpd runs one internal thread that accepts and one
 * thread per connection (MHD_USE_THREAD_PER_CONNECTION), so a slow or
 * long-lived client (an SSE stream) blocks only its own thread. Handlers
 * read the daemon through islewatch/daemon.h, which is thread-safe. The
 * token is the only state here that changes after start (on reload); it is
 * guarded by h->lock.
 *
 * We create the listening socket ourselves and hand it to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET): that way a port already in use is reported
 * with errno and the address the user wrote, instead of a bare NULL daemon.
 *
 * Decisions where SPEC §7 is silent:
 * - HEAD is answered like GET (libmicrohttpd drops the body).
 * - Only a request that could change state needs the token: a POST or
 *   DELETE (PUT, PATCH) to a path that takes that method. Anything else
 *   changes nothing and gets the answer it would get with a token: 404 for
 *   an unknown path, 405 with Allow for a method the path does not take (a
 *   GET already tells anyone which endpoints exist).
 * - A token file that becomes unreadable on reload refuses every state
 *   change until fixed (fail closed), and says why in each 401.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "islewatch/daemon.h"
#include "islewatch/json_print.h"
#include "islewatch/log.h"
#include "islewatch/silences.h"
#include "islewatch/stats.h"
#include "islewatch/topic.h"
#include "http_int.h"


/* ======================================================================== */
/* Responses                                                                 */
/* ======================================================================== */

/* Queue resp with the headers every answer has; resp is released. */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, const char *ctype,
                             struct MHD_Response *resp)
{
    enum MHD_Result ret;

    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* An HTML report (GET /api/v1/report/KIND?format=html) is served on the
     * dashboard's origin and has no script: should a label ever slip through
     * its escaping, the browser still runs nothing. */
    if (strncmp(ctype, "text/html", 9) == 0)
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"islewatch\"");
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result iw__http_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                               char *body, size_t len)
{
    struct MHD_Response *resp;

    if (body == NULL) {
        static const char oom[] = "{\"error\":\"out of memory building the response; retry\"}";
        resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
                                               MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        ctype = "application/json";
    } else {
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    }
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    return queue(c, status, ctype, resp);
}

/* An answer counted in h->answer_bytes until libmicrohttpd is done with it. */
struct counted {
    struct iw_http *h;
    char *body;
    size_t len;
};

static void counted_free(void *cls)
{
    struct counted *k = cls;
    /* relaxed: a budget, read as a hint by the next request (iw__http_busy). */
    atomic_fetch_sub_explicit(&k->h->answer_bytes, k->len, memory_order_relaxed);
    free(k->body);
    free(k);
}

size_t iw__http_count(struct iw_http *h, const char *json)
{
    size_t len = json != NULL ? strlen(json) : 0;
    atomic_fetch_add_explicit(&h->answer_bytes, len, memory_order_relaxed);
    return len;
}

enum MHD_Result iw__http_json_counted(struct iw_http *h, struct MHD_Connection *c,
                                      unsigned status, char *json, size_t len)
{
    struct counted *k = json != NULL ? malloc(sizeof(*k)) : NULL;
    struct MHD_Response *resp;

    if (k == NULL) {
        atomic_fetch_sub_explicit(&h->answer_bytes, len, memory_order_relaxed);
        return iw__http_json(c, status, json);
    }
    *k = (struct counted){ h, json, len };
    resp = MHD_create_response_from_buffer_with_free_callback_cls(len, json, counted_free, k);
    if (resp == NULL) {
        counted_free(k);
        return MHD_NO;
    }
    return queue(c, status, "application/json; charset=utf-8", resp);
}

bool iw__http_busy(struct iw_http *h)
{
    return atomic_load_explicit(&h->answer_bytes, memory_order_relaxed) >= h->answer_budget;
}

enum MHD_Result iw__http_json(struct MHD_Connection *c, unsigned status, char *json)
{
    return iw__http_reply(c, status, "application/json; charset=utf-8", json,
                          json ? strlen(json) : 0);
}

enum MHD_Result iw__http_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* It may quote the request (or be cut inside a character): keep the answer UTF-8. */
    if (!iw_utf8_valid(msg, strlen(msg)))
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    if (o != NULL && cJSON_AddStringToObject(o, "error", msg) != NULL)
        text = iw_json_print(o);
    cJSON_Delete(o);
    return iw__http_json(c, status, text);
}

const char *iw__http_arg(struct MHD_Connection *c, const char *name)
{
    const char *v = NULL;

    /* libmicrohttpd gives a bare "?active" a NULL value, like an absent one. */
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      NULL) != MHD_YES)
        return NULL;
    return v != NULL ? v : "";
}

struct args_check {
    const char *const *names;
    const char *unknown;
    char hint[96];
};

/* A parameter the endpoint does not take is ignored (a browser's cache
 * buster "_", a client's "format=json"), unless it is a likely typo of one it
 * takes: "actve=1" ignored would answer something else than was asked. (A
 * NUL byte in one never gets here: unescape() below.) */
static enum MHD_Result arg_known(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct args_check *a = cls;
    (void)kind;
    (void)value;
    for (size_t i = 0; a->names[i] != NULL; i++)
        if (strcmp(key, a->names[i]) == 0)
            return MHD_YES;
    if (iw_did_you_mean(key, a->names, a->hint, sizeof(a->hint))[0] == '\0')
        return MHD_YES;
    a->unknown = key;
    return MHD_NO;                      /* stop at the first misspelt one */
}

bool iw__http_args_known(struct MHD_Connection *c, const char *path,
                         const char *const *names, enum MHD_Result *ret)
{
    struct args_check a = { names, NULL, "" };
    char list[256] = "";

    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, arg_known, &a);
    if (a.unknown == NULL)
        return true;
    for (size_t i = 0; names[i] != NULL; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 names[i]);
    *ret = iw__http_error(c, MHD_HTTP_BAD_REQUEST, "unknown parameter \"%.100s\" for %s%s; it "
                          "takes %s", a.unknown, path, a.hint, names[0] ? list : "none");
    return false;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  const char *text)
{
    return iw__http_reply(c, status, ctype, strdup(text), strlen(text));
}

/* ======================================================================== */
/* The token                                                                 */
/* ======================================================================== */

/* The token file's first line (iw_config_read_token); why names the key. */
static int read_token(const char *path, char **out, char *why, size_t wlen)
{
    char r[480];
    int rc = iw_config_read_token(path, out, r, sizeof(r));

    if (rc != IW_OK)
        snprintf(why, wlen, "http.token_file %s", r);
    return rc;
}

/* Load the token for cfg; on failure the old token is dropped (fail closed). */
/* *changed (may be NULL): the token is not the one held before (or one came or went). */
static int load_token(struct iw_http *h, const struct iw_config *cfg, struct iw_diag *diag,
                      bool *changed)
{
    char why[512] = "", *tok = NULL;
    int rc = IW_OK;

    if (cfg->http.token_file == NULL || cfg->http.token_file[0] == '\0')
        snprintf(why, sizeof(why), "state changes are disabled: no http.token_file in the "
                 "config; set it to a file holding a token, then reload");
    else if ((rc = read_token(cfg->http.token_file, &tok, why, sizeof(why))) != IW_OK)
        iw_diag_set(diag, NULL, 0, 0, "%s", why);
    pthread_mutex_lock(&h->lock);
    if (changed != NULL)
        *changed = (h->token == NULL) != (tok == NULL)
                   || (tok != NULL && strcmp(h->token, tok) != 0);
    free(h->token);
    h->token = tok;
    snprintf(h->token_why, sizeof(h->token_why), "%s", why);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int iw_http_token_check(const struct iw_config *cfg, struct iw_diag *diag)
{
    char why[512] = "", *tok = NULL;
    int rc;

    if (cfg->http.token_file == NULL || cfg->http.token_file[0] == '\0')
        return IW_OK;
    rc = read_token(cfg->http.token_file, &tok, why, sizeof(why));
    if (rc != IW_OK)
        iw_diag_set(diag, NULL, 0, 0, "%s", why);
    free(tok);
    return rc;
}

/* Time depends on the expected token's length only, never on where `got` differs. */
static bool token_equal(const char *want, const char *got)
{
    size_t wl = strlen(want), gl = strlen(got);
    unsigned diff = wl != gl;

    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(gl ? got[i % gl] : 0);
    return diff == 0;
}

/* Queues a 401 and returns false when the request may not change state. */
static bool authorize(struct iw_http *h, struct MHD_Connection *c, enum MHD_Result *ret)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    char why[512];
    bool ok = false;

    pthread_mutex_lock(&h->lock);
    if (h->token == NULL)
        snprintf(why, sizeof(why), "%s", h->token_why);
    else if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        ok = token_equal(h->token, auth + 7 + strspn(auth + 7, " "));
    if (!ok && h->token != NULL)
        snprintf(why, sizeof(why), "%s token: send \"Authorization: Bearer TOKEN\" with the "
                 "first line of http.token_file as TOKEN", auth == NULL ? "missing" : "wrong");
    pthread_mutex_unlock(&h->lock);
    if (!ok)
        *ret = iw__http_error(c, MHD_HTTP_UNAUTHORIZED, "%s", why);
    return ok;
}

/* ======================================================================== */
/* Small endpoints                                                           */
/* ======================================================================== */

static enum MHD_Result readyz(struct iw_http *h, struct MHD_Connection *c)
{
    if (iw_daemon_ready(h->d))
        return reply_text(c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ready\n");
    /* relaxed: status flags, nothing is read through them. */
    bool db = atomic_load(&iw_stats.db_open), broker = atomic_load(&iw_stats.broker_connected);
    bool failing = atomic_load_explicit(&iw_stats.store_failing, memory_order_relaxed);
    bool refused = atomic_load_explicit(&iw_stats.broker_sub_refused, memory_order_relaxed);
    const char *why[4];
    int n = 0;
    if (!db)
        why[n++] = "the database is not open";
    if (!broker)
        why[n++] = "the broker is not connected (see the log for the connection error; "
                   "islewatchd keeps retrying)";
    else if (refused)
        why[n++] = "the broker refused the subscription to a source topic (see the log; allow it "
                   "in the broker's ACL; islewatchd keeps retrying)";
    if (failing && db)
        why[n++] = "store writes are failing (see the log; check the disk space and permissions "
                   "of storage.path); messages wait in the broker and are retried. If writes "
                   "still fail once space is freed, restart islewatchd (RocksDB keeps the error)";
    if (n == 0)
        why[n++] = "starting up";
    char text[800];
    size_t len = (size_t)snprintf(text, sizeof(text), "not ready: %s", why[0]);
    for (int i = 1; i < n && len < sizeof(text); i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "; %s", why[i]);
    if (len < sizeof(text) - 1)
        snprintf(text + len, sizeof(text) - len, "\n");
    return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", text);
}

static enum MHD_Result metrics(struct iw_http *h, struct MHD_Connection *c)
{
    char *text = iw_daemon_metrics(h->d);
    if (text == NULL)
        return iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "cannot render the metrics (out of memory); retry");
    return iw__http_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                          strlen(text));
}

static enum MHD_Result dashboard(struct MHD_Connection *c)
{
    size_t len;
    const char *html = iw__dashboard_html(&len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)html, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* The page is self-contained: forbid every other origin, and every script but its own. */
    MHD_add_response_header(resp, "Content-Security-Policy", iw__dashboard_csp());
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ======================================================================== */
/* Routing                                                                   */
/* ======================================================================== */

static enum MHD_Result not_allowed(struct MHD_Connection *c, const char *url, const char *allow)
{
    cJSON *o = cJSON_CreateObject();
    char msg[512], *text = NULL;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    snprintf(msg, sizeof(msg), "%s accepts %s only", url, allow);
    if (o != NULL && cJSON_AddStringToObject(o, "error", msg) != NULL)
        text = iw_json_print(o);
    cJSON_Delete(o);
    if (text == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    /* The headers of every other JSON answer (iw__http_reply), and Allow. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* "/api/v1/alerts/<id>/ack" -> id in buf; false when url is not of that shape. */
static bool match_id(const char *url, const char *prefix, const char *suffix, char *buf,
                     size_t len)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), ul = strlen(url);
    if (ul <= pl + sl || strncmp(url, prefix, pl) != 0 || strcmp(url + ul - sl, suffix) != 0)
        return false;
    size_t n = ul - pl - sl;
    if (n >= len || memchr(url + pl, '/', n) != NULL)
        return false;
    memcpy(buf, url + pl, n);
    buf[n] = '\0';
    return true;
}

/* The methods `url` takes, as its Allow header says; NULL for no such endpoint. */
static const char *allowed_methods(const char *url)
{
    static const char *const reads[] = {
        "/", "/healthz", "/readyz", "/metrics", "/api/v1/series", "/api/v1/query",
        "/api/v1/alerts", "/api/v1/alerts/stream", "/api/v1/devices",
    };
    char id[128];

    for (size_t i = 0; i < IW_ARRAY_LEN(reads); i++)
        if (strcmp(url, reads[i]) == 0)
            return "GET, HEAD";
    if (strcmp(url, "/api/v1/silences") == 0)
        return "GET, HEAD, POST, DELETE";
    if (strcmp(url, "/api/v1/reload") == 0 || match_id(url, "/api/v1/alerts/", "/ack", id,
                                                       sizeof(id)))
        return "POST";
    if (match_id(url, "/api/v1/silences/", "", id, sizeof(id)))
        return "DELETE";
    if (strncmp(url, "/api/v1/report/", 15) == 0)
        return "GET, HEAD";
    return NULL;
}

/* True when `method` is one of the comma-separated `allow`. */
static bool method_in(const char *method, const char *allow)
{
    size_t n = strlen(method);

    for (const char *p = allow; *p != '\0'; p += strspn(p, ", ")) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, method, n) == 0)
            return true;
        p += len;
    }
    return false;
}

static enum MHD_Result route(struct iw_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, const struct iw_http_req *r)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    char id[128];

    static const struct {
        const char *path;
        int which;
    } gets[] = {
        { "/", 0 }, { "/healthz", 1 }, { "/readyz", 2 }, { "/metrics", 3 },
        { "/api/v1/series", 4 }, { "/api/v1/query", 5 }, { "/api/v1/alerts", 6 },
        { "/api/v1/alerts/stream", 7 }, { "/api/v1/devices", 8 },
    };
    for (size_t i = 0; i < IW_ARRAY_LEN(gets); i++) {
        if (strcmp(url, gets[i].path) != 0)
            continue;
        if (!get)
            return not_allowed(c, url, "GET, HEAD");
        switch (gets[i].which) {
        case 0: return dashboard(c);
        case 1: return reply_text(c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n");
        case 2: return readyz(h, c);
        case 3: return metrics(h, c);
        case 4: return iw__api_series(h, c);
        case 5: return iw__api_query(h, c);
        case 6: return iw__api_alerts(h, c);
        case 8: return iw__api_devices(h, c);
        default: return iw__api_stream(h, c);
        }
    }
    if (strcmp(url, "/api/v1/silences") == 0) {
        if (get)
            return iw__api_silences_get(h, c);
        if (post)
            return iw__api_silences_post(h, c, r);
        if (del)
            return iw__api_silences_delete(h, c, NULL, r);
        return not_allowed(c, url, "GET, HEAD, POST, DELETE");
    }
    if (strcmp(url, "/api/v1/reload") == 0)
        return post ? iw__api_reload(h, c) : not_allowed(c, url, "POST");
    if (match_id(url, "/api/v1/alerts/", "/ack", id, sizeof(id)))
        return post ? iw__api_ack(h, c, id, r) : not_allowed(c, url, "POST");
    if (match_id(url, "/api/v1/silences/", "", id, sizeof(id)))
        return del ? iw__api_silences_delete(h, c, id, r) : not_allowed(c, url, "DELETE");
    if (strncmp(url, "/api/v1/report/", 15) == 0)
        return get ? iw__api_report(h, c, url + 15) : not_allowed(c, url, "GET, HEAD");
    /* At most 200 bytes of the path, so that what exists always fits in the message. */
    return iw__http_error(c, MHD_HTTP_NOT_FOUND, "no endpoint %.200s%s; the API has /healthz, "
                          "/readyz, /metrics, /api/v1/series, /api/v1/query, /api/v1/alerts, "
                          "/api/v1/alerts/stream, /api/v1/alerts/ID/ack, /api/v1/devices, "
                          "/api/v1/silences, /api/v1/reload, /api/v1/report/KIND", url,
                          strlen(url) > 200 ? "..." : "");
}

/*
 * Each connection holds a thread and one of IW_HTTP_MAX_CONNECTIONS places
 * until it closes. Waiting for a request's headers (a new connection, or a
 * kept-alive one between requests), it is closed after HEADER_WAIT_S
 * without a byte; once a request is there, after REQUEST_IDLE_S (an SSE
 * stream writes a keepalive every 15 s). A single 120 s let 512 connections
 * that never finished their headers shut every client out, /healthz
 * included, for two minutes (audit).
 */
#define HEADER_WAIT_S 10
#define REQUEST_IDLE_S 120

static void idle_timeout(struct MHD_Connection *c, unsigned seconds)
{
    (void)MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

/* A NUL byte, or a JSON escape of one: the parsed string would end there
 * (an ack "by":"a\u0000b" went out as "a", audit). */
static bool holds_nul(const char *b, size_t len)
{
    if (memchr(b, '\0', len) != NULL)
        return true;
    for (size_t i = 0; i + 1 < len; i++) {
        if (b[i] != '\\')
            continue;
        if (b[i + 1] == 'u' && i + 5 < len && memcmp(b + i + 2, "0000", 4) == 0)
            return true;
        i++;                            /* the escaped character: "\\u0000" is text */
    }
    return false;
}

/*
 * A %00 in the path or a parameter: libmicrohttpd hands the path on as a C
 * string, so "/api/v1/silences/ID%00junk" deleted silence ID and
 * ".../ack%00evil" acked (re-audit). The unescaper marks the request, with
 * a header name no client can send, and on_request refuses it.
 */
#define NUL_MARK "\x01iw-nul"

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    size_t n = MHD_http_unescape(s);
    (void)cls;
    if (memchr(s, '\0', n) != NULL)
        (void)MHD_set_connection_value(c, MHD_HEADER_KIND, NUL_MARK, "1");
    return n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct iw_http *h = cls;
    struct iw_http_req *r = *con_cls;
    enum MHD_Result ret = MHD_YES;

    (void)version;
    if (r == NULL) {
        /* First call: headers only. Refuse unauthorised writes before reading a
         * body; a method the path does not take changes nothing (route() says 404/405). */
        const char *allow = allowed_methods(url);
        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        *con_cls = r;
        idle_timeout(c, REQUEST_IDLE_S);
        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, NUL_MARK) != NULL) {
            r->answered = true;
            return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "the request's path or parameters "
                                  "hold a NUL byte (%%00); no name, id or time has one");
        }
        if ((strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0 ||
             strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) &&
            allow != NULL && method_in(method, allow) && !authorize(h, c, &ret))
            r->answered = true;
        return ret;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->answered || r->too_big)
            return MHD_YES;
        if (r->len + n > IW_HTTP_MAX_BODY) {
            r->too_big = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (nb == NULL)
                return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->answered)
        return MHD_YES;
    r->answered = true;
    if (r->too_big)
        return iw__http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %d bytes",
                              IW_HTTP_MAX_BODY);
    /* Bodies end up in alerts (an ack's by and comment) and silences: UTF-8 only (SPEC §5). */
    if (r->len > 0 && !iw_utf8_valid(r->body, r->len))
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "the request body is not valid UTF-8; "
                              "send JSON encoded as UTF-8");
    if (r->len > 0 && holds_nul(r->body, r->len))
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "the request body holds a NUL character "
                              "(\\u0000), which no name, comment or reason may hold");
    IW_LOG_DEBUG("http", "%s %s", method, url);
    return route(h, c, url, method, r);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        idle_timeout(c, HEADER_WAIT_S);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct iw_http_req *r = *con_cls;
    (void)cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        idle_timeout(c, HEADER_WAIT_S);       /* kept alive: the next request's headers */
    if (r != NULL) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\r\n")] = '\0';
    IW_LOG_WARN("http", "libmicrohttpd: %s", buf);
}

/* ======================================================================== */
/* Listening                                                                 */
/* ======================================================================== */

static int open_listener(const char *listen_s, int *fd_out, bool *v6, struct iw_diag *diag)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char host[128], port[16];
    int fd = -1, one = 1, e, gai;

    if (!iw_listen_split(listen_s, host, sizeof(host), port, sizeof(port)) || atoi(port) < 1 ||
        atoi(port) > 65535) {
        iw_diag_set(diag, NULL, 0, 0, "http.listen \"%s\" is not HOST:PORT; write e.g. "
                    "127.0.0.1:8080 or [::1]:8080 (or \"off\" to disable HTTP)", listen_s);
        return IW_E_CONFIG;
    }
    if ((gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
        iw_diag_set(diag, NULL, 0, 0, "http.listen \"%s\": cannot resolve \"%s\": %s; use an "
                    "address such as 127.0.0.1", listen_s, host, gai_strerror(gai));
        return IW_E_CONFIG;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        e = errno;
        freeaddrinfo(ai);
        iw_diag_set(diag, NULL, 0, 0, "http.listen %s: cannot create a socket: %s", listen_s,
                    strerror(e));
        return IW_E_IO;
    }
    *v6 = ai->ai_family == AF_INET6;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (*v6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        e = errno;
        freeaddrinfo(ai);
        close(fd);
        if (e == EADDRINUSE)
            iw_diag_set(diag, NULL, 0, 0, "http.listen %s: port %s is already in use (another "
                        "islewatchd or another program; `ss -ltnp 'sport = :%s'` shows which); "
                        "stop it or set http.listen to a free port", listen_s, port, port);
        else if (e == EACCES)
            iw_diag_set(diag, NULL, 0, 0, "http.listen %s: binding port %s needs privileges; "
                        "use a port above 1023", listen_s, port);
        else if (e == EADDRNOTAVAIL)
            iw_diag_set(diag, NULL, 0, 0, "http.listen %s: address %s is not on this machine; "
                        "use 127.0.0.1 or one of its own addresses", listen_s, host);
        else
            iw_diag_set(diag, NULL, 0, 0, "http.listen %s: cannot listen: %s", listen_s,
                        strerror(e));
        return IW_E_IO;
    }
    freeaddrinfo(ai);
    *fd_out = fd;
    return IW_OK;
}

int iw_http_start(struct iw_daemon *d, const struct iw_config *cfg, struct iw_http **out,
                  struct iw_diag *diag)
{
    const char *listen_s = cfg->http.listen;
    struct iw_http *h;
    struct iw_diag sdiag = {0};
    bool v6 = false;
    int fd = -1, rc;

    *out = NULL;
    if (listen_s == NULL || listen_s[0] == '\0' || strcmp(listen_s, "off") == 0)
        return IW_OK;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return IW_E_NOMEM;
    h->d = d;
    snprintf(h->listen, sizeof(h->listen), "%s", listen_s);
    pthread_mutex_init(&h->lock, NULL);
    sem_init(&h->heavy, 0, IW_HTTP_MAX_HEAVY);
    h->answer_budget = cfg->http.answer_budget ? cfg->http.answer_budget : IW_HTTP_ANSWER_BUDGET;
    if ((rc = load_token(h, cfg, diag, NULL)) != IW_OK)
        goto fail;

    /* Run-time silences live in the store; load them before anything can match. */
    if (iw_daemon_store(d) != NULL && iw_silences_load(iw_daemon_store(d), &sdiag) != IW_OK)
        IW_LOG_WARN("http", "run-time silences could not be loaded; only the config's apply");
    for (size_t i = 0; i < sdiag.n; i++)
        IW_LOG_WARN("http", "%s", sdiag.lines[i]);
    iw_diag_fini(&sdiag);

    if ((rc = open_listener(listen_s, &fd, &v6, diag)) != IW_OK)
        goto fail;
    h->mhd = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                  MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0),
                              0, NULL, NULL, on_request, h,
                              /* first, so that every message goes through it */
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                              MHD_OPTION_LISTEN_SOCKET, fd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                              MHD_OPTION_UNESCAPE_CALLBACK, unescape, h,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)IW_HTTP_MAX_CONNECTIONS,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)REQUEST_IDLE_S,
                              MHD_OPTION_END);
    if (h->mhd == NULL) {
        close(fd);
        iw_diag_set(diag, NULL, 0, 0, "http.listen %s: libmicrohttpd could not start (see the "
                    "warnings above)", listen_s);
        rc = IW_E_IO;
        goto fail;
    }
    IW_LOG_INFO("http", "listening on http://%s%s", listen_s,
                h->token ? "" : " (state changes disabled: no usable http.token_file)");
    *out = h;
    return IW_OK;

fail:
    free(h->token);
    pthread_mutex_destroy(&h->lock);
    sem_destroy(&h->heavy);
    free(h);
    return rc;
}

void iw_http_reload(struct iw_http *h, const struct iw_config *cfg)
{
    struct iw_diag diag = {0};
    bool changed = false;

    if (h == NULL)
        return;
    if (load_token(h, cfg, &diag, &changed) != IW_OK)
        IW_LOG_ERROR("http", "%s; until then every state change is refused (401)",
                     iw_diag_first(&diag));
    else if (changed && cfg->http.token_file != NULL && cfg->http.token_file[0] != '\0')
        /* A rotated token is no key of the YAML: the reload's summary cannot show it. */
        IW_LOG_INFO("http", "the token in %s changed: requests that change state need the new "
                    "one now", cfg->http.token_file);
    if (cfg->http.listen == NULL || strcmp(cfg->http.listen, h->listen) != 0)
        IW_LOG_WARN("http", "http.listen changed to \"%s\": it takes effect at the next restart "
                    "(still listening on %s)", cfg->http.listen ? cfg->http.listen : "",
                    h->listen);
    iw_diag_fini(&diag);
}

void iw_http_stop(struct iw_http *h)
{
    if (h == NULL)
        return;
    /* SSE readers poll this at least every 250 ms and end their streams. Give
     * them a moment to do so, so clients see a proper end of the response
     * rather than a reset (MHD_stop_daemon shuts every socket at once). */
    atomic_store(&h->stopping, 1);
    for (int i = 0; i < 75 && atomic_load(&h->streams) > 0; i++) {
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->mhd);
    free(h->token);
    pthread_mutex_destroy(&h->lock);
    sem_destroy(&h->heavy);
    free(h);
}
