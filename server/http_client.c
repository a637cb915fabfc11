/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal blocking HTTP/1.1 client (see islewatch/http_client.h): one
 * connection per request, "Connection: close", a body framed by
 * Content-Length, chunked coding or end of connection. It exists so that the
 * CLI can talk to a daemon on loopback without pulling in libcurl; it is not
 * a general-purpose client (no TLS, no redirects, no proxies).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "islewatch/http_client.h"

#define CONNECT_TIMEOUT_MS 5000
#define REQUEST_IDLE_MS 60000
#define SLICE_MS 250
#define MAX_LINE 16384
#define MAX_ERROR_BODY 65536

struct url {
    char host[256];             /* without brackets */
    char port[8];
    char prefix[512];           /* path prefix without trailing '/', may be "" */
    char shown[800];            /* for messages: http://host:port */
};

static int parse_url(const char *base, struct url *u, struct iw_diag *diag)
{
    const char *p, *slash, *hend;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (base == NULL)
        base = IW_HTTP_DEFAULT_URL;
    if (base[0] == '\0') {             /* --url "" (an unset variable): not the default */
        iw_diag_set(diag, NULL, 0, 0, "the daemon's URL is empty; write it as "
                    "http://127.0.0.1:8080 (the daemon's http.listen)");
        return IW_E_INVAL;
    }
    if (strncasecmp(base, "https://", 8) == 0) {
        iw_diag_set(diag, NULL, 0, 0, "%s: https is not supported by islewatch's HTTP client; "
                    "islewatchd serves plain HTTP on loopback: use http://HOST:PORT (its "
                    "http.listen)", base);
        return IW_E_INVAL;
    }
    if (strncasecmp(base, "http://", 7) != 0) {
        iw_diag_set(diag, NULL, 0, 0, "%s is not an http:// URL; write it as "
                    "http://127.0.0.1:8080 (the daemon's http.listen)", base);
        return IW_E_INVAL;
    }
    p = base + 7;
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(slash - p));
        if (hend == NULL)
            goto bad;
        n = (size_t)(hend - p - 1);
        if (n == 0 || n >= sizeof(u->host))
            goto bad;
        memcpy(u->host, p + 1, n);
        p = hend + 1;
    } else {
        hend = memchr(p, ':', (size_t)(slash - p));
        if (hend == NULL)
            hend = slash;
        n = (size_t)(hend - p);
        if (n == 0 || n >= sizeof(u->host))
            goto bad;
        memcpy(u->host, p, n);
        p = hend;
    }
    if (*p == ':') {
        n = (size_t)(slash - p - 1);
        if (n == 0 || n >= sizeof(u->port) || strspn(p + 1, "0123456789") < n)
            goto bad;
        memcpy(u->port, p + 1, n);
    } else if (p == slash) {
        snprintf(u->port, sizeof(u->port), "80");
    } else {
        goto bad;
    }
    n = strlen(slash);
    while (n > 0 && slash[n - 1] == '/')
        n--;
    if (n >= sizeof(u->prefix))
        goto bad;
    memcpy(u->prefix, slash, n);
    snprintf(u->shown, sizeof(u->shown), "http://%s%s%s:%s", strchr(u->host, ':') ? "[" : "",
             u->host, strchr(u->host, ':') ? "]" : "", u->port);
    return IW_OK;
bad:
    iw_diag_set(diag, NULL, 0, 0, "\"%s\" is not a URL of the form http://HOST:PORT "
                "(e.g. http://127.0.0.1:8080)", base);
    return IW_E_INVAL;
}

/* ======================================================================== */
/* Connection                                                                */
/* ======================================================================== */

static int connect_one(const struct addrinfo *a, int *err)
{
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct pollfd p;
    socklen_t el = sizeof(*err);

    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    p = (struct pollfd){ fd, POLLOUT, 0 };
    if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1) {
        *err = ETIMEDOUT;
        close(fd);
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &el) != 0 || *err != 0) {
        if (*err == 0)
            *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static int open_conn(const struct url *u, int *fd_out, struct iw_diag *diag)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &ai), err = 0, fd = -1;

    if (gai != 0) {
        iw_diag_set(diag, NULL, 0, 0, "cannot resolve %s: %s; use an address such as "
                    "http://127.0.0.1:8080", u->shown, gai_strerror(gai));
        return IW_E_IO;
    }
    for (const struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next)
        fd = connect_one(a, &err);
    freeaddrinfo(ai);
    if (fd < 0) {
        iw_diag_set(diag, NULL, 0, 0, "cannot connect to %s: %s (is islewatchd running, and is "
                    "its http.listen %s%s%s:%s? pass --url otherwise)", u->shown, strerror(err),
                    strchr(u->host, ':') ? "[" : "", u->host, strchr(u->host, ':') ? "]" : "",
                    u->port);
        return IW_E_IO;
    }
    *fd_out = fd;
    return IW_OK;
}

static int send_all(int fd, const char *p, size_t n, const struct url *u, struct iw_diag *diag)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = { fd, POLLOUT, 0 };
            if (poll(&pf, 1, REQUEST_IDLE_MS) <= 0 && errno != EINTR) {
                iw_diag_set(diag, NULL, 0, 0, "sending to %s timed out", u->shown);
                return IW_E_IO;
            }
            continue;
        }
        if (w <= 0) {
            iw_diag_set(diag, NULL, 0, 0, "sending to %s failed: %s", u->shown, strerror(errno));
            return IW_E_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return IW_OK;
}

/* ======================================================================== */
/* Reading                                                                   */
/* ======================================================================== */

struct rd {
    int fd;
    char buf[16384];
    size_t pos, len;
    int idle_ms;                /* 0: forever */
    const volatile sig_atomic_t *stop;
    const struct url *u;
    struct iw_diag *diag;
    bool stopped;
    bool in_body;               /* the head has been read */
};

/* More bytes into r->buf: >0 read, 0 end of connection, <0 error (diag) or stop. */
static int rd_fill(struct rd *r)
{
    int64_t waited = 0;

    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    for (;;) {
        struct pollfd p = { r->fd, POLLIN, 0 };
        if (r->stop != NULL && *r->stop) {
            r->stopped = true;
            return -1;
        }
        int n = poll(&p, 1, SLICE_MS);
        if (n < 0 && errno != EINTR) {
            iw_diag_set(r->diag, NULL, 0, 0, "reading from %s: %s", r->u->shown,
                        strerror(errno));
            return -1;
        }
        if (n <= 0) {
            waited += SLICE_MS;
            if (r->idle_ms > 0 && waited >= r->idle_ms) {
                iw_diag_set(r->diag, NULL, 0, 0, "%s sent nothing for %d s; giving up",
                            r->u->shown, r->idle_ms / 1000);
                return -1;
            }
            continue;
        }
        ssize_t got = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got < 0) {
            iw_diag_set(r->diag, NULL, 0, 0, "reading from %s: %s", r->u->shown, strerror(errno));
            return -1;
        }
        r->len += (size_t)got;
        return (int)got;
    }
}

/* One line (CR LF or LF stripped) into out. 1: a line, 0: end before any byte, -1: error. */
static int rd_line(struct rd *r, char *out, size_t cap)
{
    for (;;) {
        char *start = r->buf + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        if (nl != NULL) {
            size_t n = (size_t)(nl - start);
            r->pos += n + 1;
            if (n > 0 && start[n - 1] == '\r')
                n--;
            if (n >= cap) {
                iw_diag_set(r->diag, NULL, 0, 0, "%s sent a header line longer than %zu bytes",
                            r->u->shown, cap - 1);
                return -1;
            }
            memcpy(out, start, n);
            out[n] = '\0';
            return 1;
        }
        if (r->len - r->pos >= sizeof(r->buf) - 1) {
            iw_diag_set(r->diag, NULL, 0, 0, "%s sent a header line longer than %zu bytes",
                        r->u->shown, sizeof(r->buf));
            return -1;
        }
        int g = rd_fill(r);
        if (g < 0)
            return -1;
        if (g == 0) {
            if (r->len > r->pos || r->in_body)
                iw_diag_set(r->diag, NULL, 0, 0, "%s closed the connection before the end of "
                            "the response", r->u->shown);
            else
                iw_diag_set(r->diag, NULL, 0, 0, "%s closed the connection without an answer",
                            r->u->shown);
            return r->len > r->pos ? -1 : 0;
        }
    }
}

/* A sink takes body bytes; non-zero stops the transfer. */
typedef int (*sink_fn)(void *ctx, const char *p, size_t n);

/* 1: the sink stopped, 0: all n bytes passed, -1: error. */
static int rd_exact(struct rd *r, uint64_t n, sink_fn sink, void *ctx)
{
    while (n > 0) {
        if (r->pos == r->len) {
            int g = rd_fill(r);
            if (g == 0)
                iw_diag_set(r->diag, NULL, 0, 0, "%s closed the connection before the end of "
                            "the response", r->u->shown);
            if (g <= 0)
                return -1;
        }
        size_t take = r->len - r->pos < n ? r->len - r->pos : (size_t)n;
        int stop = sink(ctx, r->buf + r->pos, take);
        r->pos += take;
        n -= take;
        if (stop)
            return 1;
    }
    return 0;
}

static int rd_to_eof(struct rd *r, sink_fn sink, void *ctx)
{
    for (;;) {
        if (r->pos < r->len) {
            size_t take = r->len - r->pos;
            int stop = sink(ctx, r->buf + r->pos, take);
            r->pos += take;
            if (stop)
                return 1;
        }
        int g = rd_fill(r);
        if (g <= 0)
            return g;
    }
}

static int rd_chunked(struct rd *r, sink_fn sink, void *ctx)
{
    char line[256];
    for (;;) {
        char *end;
        if (rd_line(r, line, sizeof(line)) != 1)
            return -1;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (end == line || errno != 0 || (*end != '\0' && *end != ';' && *end != ' ')) {
            iw_diag_set(r->diag, NULL, 0, 0, "%s sent a bad chunk size \"%s\"", r->u->shown, line);
            return -1;
        }
        if (size == 0) {
            do {                                    /* trailers, up to the empty line */
                if (rd_line(r, line, sizeof(line)) != 1)
                    return 0;
            } while (line[0] != '\0');
            return 0;
        }
        int rc = rd_exact(r, size, sink, ctx);
        if (rc != 0)
            return rc;
        if (rd_line(r, line, sizeof(line)) != 1 || line[0] != '\0') {
            iw_diag_set(r->diag, NULL, 0, 0, "%s sent a chunk without its CRLF", r->u->shown);
            return -1;
        }
    }
}

struct head {
    int status;
    bool chunked, has_len;
    uint64_t clen;
};

static int rd_head(struct rd *r, struct head *h)
{
    char line[MAX_LINE];
    int minor;

    for (;;) {
        memset(h, 0, sizeof(*h));
        if (rd_line(r, line, sizeof(line)) != 1)
            return -1;
        if (sscanf(line, "HTTP/1.%d %d", &minor, &h->status) != 2 || h->status < 100 ||
            h->status > 999) {
            iw_diag_set(r->diag, NULL, 0, 0, "%s did not answer in HTTP (\"%.60s\"); is the URL "
                        "islewatchd's http.listen?", r->u->shown, line);
            return -1;
        }
        for (;;) {
            if (rd_line(r, line, sizeof(line)) != 1)
                return -1;
            if (line[0] == '\0')
                break;
            if (strncasecmp(line, "Content-Length:", 15) == 0) {
                h->has_len = true;
                h->clen = strtoull(line + 15, NULL, 10);
            } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
                       strcasestr(line + 18, "chunked") != NULL) {
                h->chunked = true;
            }
        }
        if (h->status >= 200 || h->status == 101)
            return IW_OK;
        /* 1xx interim answers (100 Continue) are followed by the real one. */
    }
}

static int rd_body(struct rd *r, const struct head *h, const char *method, sink_fn sink, void *ctx)
{
    r->in_body = true;
    if (strcmp(method, "HEAD") == 0 || h->status == 204 || h->status == 304)
        return 0;
    if (h->chunked)
        return rd_chunked(r, sink, ctx);
    if (h->has_len)
        return rd_exact(r, h->clen, sink, ctx);
    return rd_to_eof(r, sink, ctx);
}

/* ======================================================================== */
/* Requests                                                                  */
/* ======================================================================== */

struct buf {
    char *p;
    size_t len, cap, max;
    bool overflow;
};

static int buf_sink(void *ctx, const char *p, size_t n)
{
    struct buf *b = ctx;
    if (b->len + n + 1 > b->max) {
        b->overflow = true;
        return 1;
    }
    if (!iw_append(&b->p, &b->len, &b->cap, p, n)) {
        b->overflow = true;
        return 1;
    }
    return 0;
}

/* Connect, send the request and read the response head. On IW_OK *out owns the connection. */
static int start(const struct url *u, const char *method, const char *path, const char *token,
                 const char *extra_header, const char *body, int idle_ms,
                 const volatile sig_atomic_t *stop, struct head *h, struct rd **out,
                 struct iw_diag *diag)
{
    struct rd *r;
    char *req = NULL;
    size_t blen = body ? strlen(body) : 0;
    bool v6 = strchr(u->host, ':') != NULL;
    int rc, fd = -1;

    *out = NULL;
    if (path == NULL || path[0] != '/') {
        iw_diag_set(diag, NULL, 0, 0, "request path \"%s\" must start with '/'", path ? path : "");
        return IW_E_INVAL;
    }
    if (strpbrk(path, " \r\n") != NULL || (token && strpbrk(token, "\r\n")) ||
        (extra_header && strpbrk(extra_header, "\r\n"))) {
        iw_diag_set(diag, NULL, 0, 0, "request path, token or header contains a space or a line "
                    "break; percent-encode the query (iw_http_query_escape)");
        return IW_E_INVAL;
    }
    if (asprintf(&req, "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: islewatch\r\n"
                 "Accept: */*\r\nConnection: close\r\n%s%s%s%s%s",
                 method, u->prefix, path, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
                 token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
                 extra_header ? extra_header : "", extra_header ? "\r\n" : "") < 0)
        return IW_E_NOMEM;
    char tail[128];
    if (body != NULL)
        snprintf(tail, sizeof(tail), "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 blen);
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        snprintf(tail, sizeof(tail), "Content-Length: 0\r\n\r\n");
    else
        snprintf(tail, sizeof(tail), "\r\n");

    if ((rc = open_conn(u, &fd, diag)) != IW_OK) {
        free(req);
        return rc;
    }
    rc = send_all(fd, req, strlen(req), u, diag);
    if (rc == IW_OK)
        rc = send_all(fd, tail, strlen(tail), u, diag);
    if (rc == IW_OK && blen > 0)
        rc = send_all(fd, body, blen, u, diag);
    free(req);
    if (rc != IW_OK) {
        close(fd);
        return rc;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        close(fd);
        return IW_E_NOMEM;
    }
    *r = (struct rd){ .fd = fd, .idle_ms = idle_ms, .stop = stop, .u = u, .diag = diag };
    if (rd_head(r, h) != IW_OK) {
        rc = r->stopped ? IW_E_STATE : IW_E_IO;
        close(fd);
        free(r);
        return rc;
    }
    *out = r;
    return IW_OK;
}

static void finish(struct rd *r)
{
    if (r != NULL) {
        close(r->fd);
        free(r);
    }
}

int iw_http_request(const char *base_url, const char *method, const char *path_and_query,
                    const char *token, const char *body, char **resp_body, size_t *resp_len,
                    int *status, struct iw_diag *diag)
{
    struct url u;
    struct head h;
    struct rd *r = NULL;
    struct buf b = { .max = (size_t)1 << 31 };
    int rc;

    *resp_body = NULL;
    *resp_len = 0;
    *status = 0;
    if ((rc = parse_url(base_url, &u, diag)) != IW_OK)
        return rc;
    if ((rc = start(&u, method, path_and_query, token, NULL, body, REQUEST_IDLE_MS, NULL, &h, &r,
                    diag)) != IW_OK)
        return rc;
    rc = rd_body(r, &h, method, buf_sink, &b);
    finish(r);
    if (b.overflow) {
        iw_diag_set(diag, NULL, 0, 0, "the answer of %s%s is too large for memory; narrow the "
                    "query", u.shown, path_and_query);
        free(b.p);
        return IW_E_NOMEM;
    }
    if (rc < 0) {
        free(b.p);
        return IW_E_IO;
    }
    if (b.p == NULL && (b.p = calloc(1, 1)) == NULL)
        return IW_E_NOMEM;
    *resp_body = b.p;
    *resp_len = b.len;
    *status = h.status;
    return IW_OK;
}

/* ---- streaming ---- */

struct lines {
    int (*cb)(void *ctx, const char *line, size_t len);
    void *ctx;
    struct buf line;
};

static int lines_sink(void *ctx, const char *p, size_t n)
{
    struct lines *l = ctx;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (buf_sink(&l->line, p, take) != 0)
            return 1;                               /* a line over 16 MiB: give up */
        p += take;
        n -= take;
        if (nl == NULL)
            break;
        p++;
        n--;
        size_t len = l->line.len;
        if (len > 0 && l->line.p[len - 1] == '\r')
            len--;
        int stop = l->cb(l->ctx, l->line.p ? l->line.p : "", len);
        l->line.len = 0;
        if (stop)
            return 1;
    }
    return 0;
}

const char *iw_http_error_text(const char *body, char *buf, size_t len)
{
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error"));
    snprintf(buf, len, "%s", e ? e : body ? body : "");
    cJSON_Delete(o);
    return buf;
}

static void error_from_body(const struct url *u, const char *path, int status, const char *body,
                            struct iw_diag *diag)
{
    char msg[1024];
    iw_diag_set(diag, NULL, 0, 0, "%s%s answered %d: %s", u->shown, path, status,
                iw_http_error_text(body, msg, sizeof(msg)));
}

int iw_http_stream_lines(const char *base_url, const char *path_and_query, const char *token,
                         const char *extra_header,
                         int (*line_cb)(void *ctx, const char *line, size_t len), void *ctx,
                         const volatile sig_atomic_t *stop, int idle_ms, int *status,
                         struct iw_diag *diag)
{
    struct url u;
    struct head h;
    struct rd *r = NULL;
    int rc;

    *status = 0;
    if ((rc = parse_url(base_url, &u, diag)) != IW_OK)
        return rc;
    rc = start(&u, "GET", path_and_query, token, extra_header, NULL, idle_ms, stop, &h, &r, diag);
    if (rc == IW_E_STATE)
        return IW_OK;                               /* stopped while waiting for the head */
    if (rc != IW_OK)
        return rc;
    *status = h.status;
    if (h.status < 200 || h.status > 299) {
        struct buf b = { .max = MAX_ERROR_BODY };
        (void)rd_body(r, &h, "GET", buf_sink, &b);
        error_from_body(&u, path_and_query, h.status, b.p, diag);
        free(b.p);
        finish(r);
        return IW_E_IO;
    }
    struct lines l = { line_cb, ctx, { .max = 16u << 20 } };
    rc = rd_body(r, &h, "GET", lines_sink, &l);
    bool stopped = r->stopped;
    finish(r);
    free(l.line.p);
    if (l.line.overflow) {
        iw_diag_set(diag, NULL, 0, 0, "%s%s sent a line longer than 16 MiB", u.shown,
                    path_and_query);
        return IW_E_IO;
    }
    return rc < 0 && !stopped ? IW_E_IO : IW_OK;
}

/* ======================================================================== */
/* Helpers                                                                   */
/* ======================================================================== */

void iw_http_listen_url(const char *listen, char *buf, size_t len)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    const char *port = colon ? colon + 1 : "8080";
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    char host[256];

    if (hl >= sizeof(host))
        hl = 0;
    if (hl > 0)
        memcpy(host, listen, hl);
    host[hl] = '\0';
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (strcmp(host, "[::]") == 0)
        snprintf(host, sizeof(host), "[::1]");
    snprintf(buf, len, "http://%s:%s", host, port);
}

char *iw_http_query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~*/:", *p) != NULL) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
