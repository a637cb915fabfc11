/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the HTTP server: http.c (listener, routing, auth, responses),
 * http_api.c (the /api/v1 endpoints and the SSE stream) and dashboard.c.
 */
#ifndef ISLEWATCH_HTTP_INT_H
#define ISLEWATCH_HTTP_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "islewatch/compiler.h"
#include "islewatch/http.h"

#define IW_HTTP_MAX_BODY (64 * 1024)    /* request bodies: acks, silences */

/*
 * Connections libmicrohttpd serves at once (a thread each), and how many of
 * them may be alert streams (SSE: a dashboard tab, `islewatch tail --url`).
 * Streams stay open; the cap keeps them from taking every connection, so
 * /healthz, /readyz and /metrics still answer with IW_HTTP_MAX_STREAMS
 * streams open. Past it a new stream gets 503 with what to do.
 */
/* IW_HTTP_MAX_HEAVY: /api/v1/query answers built at the same time (each up
 * to QUERY_MAX_POINTS, ~25 MB of text); the others wait their turn. */
enum { IW_HTTP_MAX_CONNECTIONS = 512, IW_HTTP_MAX_STREAMS = 128, IW_HTTP_MAX_HEAVY = 2 };
/* Bytes of query answers held for clients still reading them, past which a
 * new query is 503 (slow readers each held a whole answer: 57 of them, 1.2 GB). */
#define IW_HTTP_ANSWER_BUDGET ((size_t)64 << 20)

struct iw_http {
    struct iw_daemon *d;
    struct MHD_Daemon *mhd;
    char listen[160];                   /* as configured, for messages */
    pthread_mutex_t lock;               /* guards token and token_why */
    char *token;                        /* NULL: state changes refused */
    char token_why[512];                /* why there is no token */
    _Atomic int stopping;               /* SSE readers end their streams */
    _Atomic int streams;                /* open SSE streams: the cap, and the log at stop */
    sem_t heavy;                        /* answers built at once (query): IW_HTTP_MAX_HEAVY */
    _Atomic size_t answer_bytes;        /* query answers built and not yet sent */
    size_t answer_budget;               /* IW_HTTP_ANSWER_BUDGET (http.test_answer_budget) */
};

/* One request's state between libmicrohttpd's calls (its con_cls). */
struct iw_http_req {
    char  *body;
    size_t len, cap;
    bool   too_big;
    bool   answered;                    /* a response is queued already */
};

/* ---- responses (http.c); each queues the response and returns MHD's verdict ---- */

/* body is TRANSFERRED (free()d by libmicrohttpd); NULL body -> 500. */
enum MHD_Result iw__http_reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                               char *body, size_t len);
/* A JSON document (TRANSFERRED); NULL -> 500 "out of memory". */
enum MHD_Result iw__http_json(struct MHD_Connection *c, unsigned status, char *json);
/* Count json (may be NULL: 0) against IW_HTTP_ANSWER_BUDGET: its length. */
size_t iw__http_count(struct iw_http *h, const char *json);
/* iw__http_json for an answer counted (len, from iw__http_count) until it is sent. */
enum MHD_Result iw__http_json_counted(struct iw_http *h, struct MHD_Connection *c,
                                      unsigned status, char *json, size_t len);
/* Are the answers being sent over IW_HTTP_ANSWER_BUDGET? */
bool iw__http_busy(struct iw_http *h);
/* {"error": "<formatted>"} */
enum MHD_Result iw__http_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    IW_PRINTF(3, 4);
/* A query argument, or NULL (already percent-decoded); "" for a bare "?name". */
const char *iw__http_arg(struct MHD_Connection *c, const char *name);
/* False, with *ret a 400 naming it, its likely meaning and what `path` takes,
 * when a query argument is not one of the NULL-terminated `names` but a likely
 * typo of one (a misspelt "actve=1" would otherwise answer something else than
 * was asked); other unknown arguments are ignored. */
bool iw__http_args_known(struct MHD_Connection *c, const char *path,
                         const char *const *names, enum MHD_Result *ret);

/* ---- endpoints (http_api.c) ---- */

enum MHD_Result iw__api_series(struct iw_http *h, struct MHD_Connection *c);
enum MHD_Result iw__api_query(struct iw_http *h, struct MHD_Connection *c);
enum MHD_Result iw__api_alerts(struct iw_http *h, struct MHD_Connection *c);
enum MHD_Result iw__api_devices(struct iw_http *h, struct MHD_Connection *c);
enum MHD_Result iw__api_stream(struct iw_http *h, struct MHD_Connection *c);
enum MHD_Result iw__api_ack(struct iw_http *h, struct MHD_Connection *c, const char *id,
                            const struct iw_http_req *r);
enum MHD_Result iw__api_silences_get(struct iw_http *h, struct MHD_Connection *c);
enum MHD_Result iw__api_silences_post(struct iw_http *h, struct MHD_Connection *c,
                                      const struct iw_http_req *r);
/* id from the path (/api/v1/silences/ID), or NULL: then from ?id=ID or a
 * JSON body {"id":"ID"}. */
enum MHD_Result iw__api_silences_delete(struct iw_http *h, struct MHD_Connection *c,
                                        const char *id, const struct iw_http_req *r);
enum MHD_Result iw__api_reload(struct iw_http *h, struct MHD_Connection *c);

/* ---- the compliance reports (http_report.c): GET /api/v1/report/<kind> ---- */
enum MHD_Result iw__api_report(struct iw_http *h, struct MHD_Connection *c, const char *kind);

/* ---- the dashboard page (dashboard.c): static, NUL-terminated ---- */
const char *iw__dashboard_html(size_t *len);
/* Its Content-Security-Policy: only its own inline script runs (by the
 * script's SHA-256), so markup that ever reached the page could run none. */
const char *iw__dashboard_csp(void);

#endif /* ISLEWATCH_HTTP_INT_H */
