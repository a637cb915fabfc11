/*
 * The CLI's HTTP client against a scripted server on a loopback port: each
 * test starts a thread that accepts one connection, records the request and
 * answers with canned bytes (Content-Length, chunked, to-EOF, 100 Continue).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "islewatch/http_client.h"

struct server {
    int lfd, port;
    pthread_t thread;
    const char *answer;         /* sent after the whole request is read */
    char request[8192];         /* what the client sent */
};

/* Read the request head and, if Content-Length says so, its body. */
static void read_request(int fd, struct server *s)
{
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof(s->request) - 1 && (end = strstr(s->request, "\r\n\r\n")) == NULL) {
        ssize_t r = recv(fd, s->request + n, sizeof(s->request) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        s->request[n] = '\0';
    }
    if (end == NULL)
        return;
    const char *cl = strcasestr(s->request, "Content-Length:");
    size_t want = (size_t)(end + 4 - s->request) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
    while (n < want && n < sizeof(s->request) - 1) {
        ssize_t r = recv(fd, s->request + n, sizeof(s->request) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        s->request[n] = '\0';
    }
}

static void *serve_one(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    read_request(fd, s);
    /* Dribble the answer in small pieces: framing must not depend on recv boundaries. */
    for (size_t off = 0, len = strlen(s->answer); off < len; off += 7) {
        size_t piece = len - off < 7 ? len - off : 7;
        if (send(fd, s->answer + off, piece, MSG_NOSIGNAL) < 0)
            break;
    }
    close(fd);
    return NULL;
}

static void server_start(struct server *s, const char *answer)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t l = sizeof(a);
    memset(s, 0, sizeof(*s));
    s->answer = answer;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s->lfd >= 0);
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(s->lfd, 4), 0);
    cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&a, &l), 0);
    s->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_join(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

static void url_of(const struct server *s, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", s->port, suffix);
}

/* ---- framing ---- */

/* Arrays, not pointers: Criterion may run each case in a re-executed process. */
struct framing {
    char name[32];
    char answer[256];
    int status;
    char body[64];
};

ParameterizedTestParameters(http_client, framing)
{
    static struct framing cases[] = {
        { "content-length", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", 200,
          "hello world" },
        { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n",
          200, "hello world" },
        { "to-eof", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", 200,
          "until the end" },
        { "continue-first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                            "Content-Length: 2\r\n\r\nok", 201, "ok" },
        { "error-status", "HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\n"
                          "{\"error\":\"nope\"}\n", 404, "{\"error\":\"nope\"}\n" },
        { "empty-body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "" },
    };
    return cr_make_param_array(struct framing, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct framing *f, http_client, framing, .timeout = 10)
{
    struct server s;
    struct iw_diag diag = {0};
    char url[64], *body = NULL;
    size_t len = 0;
    int status = 0;

    server_start(&s, f->answer);
    url_of(&s, "", url, sizeof(url));
    cr_assert_eq(iw_http_request(url, "GET", "/x", NULL, NULL, &body, &len, &status, &diag), IW_OK,
                 "%s: %s", f->name, iw_diag_first(&diag));
    server_join(&s);
    cr_expect_eq(status, f->status, "%s: status %d", f->name, status);
    cr_expect_eq(len, strlen(f->body), "%s: length %zu", f->name, len);
    cr_expect_str_eq(body, f->body, "%s", f->name);
    free(body);
    iw_diag_fini(&diag);
}

Test(http_client, sends_method_prefix_token_and_body, .timeout = 10)
{
    struct server s;
    struct iw_diag diag = {0};
    char url[64], *body = NULL;
    size_t len = 0;
    int status = 0;

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    url_of(&s, "/islewatch/", url, sizeof(url));
    cr_assert_eq(iw_http_request(url, "POST", "/api/v1/alerts/abc/ack", "s3cret",
                                 "{\"by\":\"ops\"}", &body, &len, &status, &diag), IW_OK, "%s",
                 iw_diag_first(&diag));
    server_join(&s);
    cr_expect(strncmp(s.request, "POST /islewatch/api/v1/alerts/abc/ack HTTP/1.1\r\n", 48) == 0,
              "request line: %.60s", s.request);
    cr_expect(strstr(s.request, "\r\nAuthorization: Bearer s3cret\r\n") != NULL, "%s", s.request);
    cr_expect(strstr(s.request, "\r\nContent-Length: 12\r\n") != NULL, "%s", s.request);
    cr_expect(strstr(s.request, "\r\nContent-Type: application/json\r\n") != NULL);
    cr_expect(strstr(s.request, "\r\n\r\n{\"by\":\"ops\"}") != NULL, "%s", s.request);
    cr_expect(strstr(s.request, "\r\nHost: 127.0.0.1:") != NULL);
    free(body);
}

/* ---- errors ---- */

struct bad_url {
    char url[64];
    int rc;
    char needle[64];
};

ParameterizedTestParameters(http_client, rejects_bad_urls)
{
    static struct bad_url cases[] = {
        { "https://127.0.0.1:8443", IW_E_INVAL, "https is not supported" },
        { "ftp://127.0.0.1", IW_E_INVAL, "not an http:// URL" },
        { "http://", IW_E_INVAL, "is not a URL" },
        { "http://127.0.0.1:80x", IW_E_INVAL, "is not a URL" },
        { "http://[::1:8080", IW_E_INVAL, "is not a URL" },
    };
    return cr_make_param_array(struct bad_url, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_url *b, http_client, rejects_bad_urls)
{
    struct iw_diag diag = {0};
    char *body = NULL;
    size_t len;
    int status;

    cr_expect_eq(iw_http_request(b->url, "GET", "/", NULL, NULL, &body, &len, &status, &diag),
                 b->rc, "%s", b->url);
    cr_expect(strstr(iw_diag_first(&diag), b->needle) != NULL, "%s: %s", b->url,
              iw_diag_first(&diag));
    cr_expect_null(body);
    iw_diag_fini(&diag);
}

Test(http_client, refused_connection_says_what_to_check)
{
    struct server s;
    struct iw_diag diag = {0};
    char url[64], *body = NULL;
    size_t len;
    int status, port;

    /* A port that was just free: bind, note it, close. */
    server_start(&s, "");
    port = s.port;
    pthread_cancel(s.thread);
    server_join(&s);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    cr_expect_eq(iw_http_request(url, "GET", "/healthz", NULL, NULL, &body, &len, &status, &diag),
                 IW_E_IO);
    cr_expect(strstr(iw_diag_first(&diag), "is islewatchd running") != NULL, "%s",
              iw_diag_first(&diag));
    cr_expect(strstr(iw_diag_first(&diag), url) != NULL, "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
}

Test(http_client, truncated_body_is_an_error, .timeout = 10)
{
    struct server s;
    struct iw_diag diag = {0};
    char url[64], *body = NULL;
    size_t len;
    int status;

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    url_of(&s, "", url, sizeof(url));
    cr_expect_eq(iw_http_request(url, "GET", "/", NULL, NULL, &body, &len, &status, &diag),
                 IW_E_IO);
    server_join(&s);
    cr_expect(strstr(iw_diag_first(&diag), "before the end") != NULL, "%s", iw_diag_first(&diag));
    cr_expect_null(body);
    iw_diag_fini(&diag);
}

Test(http_client, path_with_space_is_refused)
{
    struct iw_diag diag = {0};
    char *body = NULL;
    size_t len;
    int status;
    cr_expect_eq(iw_http_request("http://127.0.0.1:1", "GET", "/a b", NULL, NULL, &body, &len,
                                 &status, &diag), IW_E_INVAL);
    iw_diag_fini(&diag);
}

/* ---- streaming ---- */

struct got {
    char lines[16][128];
    int n, stop_after;
};

static int collect(void *ctx, const char *line, size_t len)
{
    struct got *g = ctx;
    if (g->n < 16)
        snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%.*s", (int)len, line);
    return g->stop_after > 0 && g->n >= g->stop_after;
}

Test(http_client, stream_lines_across_chunks, .timeout = 10)
{
    struct server s;
    struct iw_diag diag = {0};
    struct got g = {0};
    char url[64];
    int status = 0;

    /* "id: 7" is split over two chunks; CR LF and LF endings both occur. */
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"
                     "4\r\nid: \r\n"
                     "d\r\n7\r\ndata: {}\n\n\r\n"
                     "7\r\n: ping\n\r\n"
                     "0\r\n\r\n");
    url_of(&s, "", url, sizeof(url));
    cr_assert_eq(iw_http_stream_lines(url, "/api/v1/alerts/stream", NULL, "Last-Event-ID: 6",
                                      collect, &g, NULL, 5000, &status, &diag), IW_OK, "%s",
                 iw_diag_first(&diag));
    server_join(&s);
    cr_expect_eq(status, 200);
    cr_assert_eq(g.n, 4, "got %d lines", g.n);
    cr_expect_str_eq(g.lines[0], "id: 7");
    cr_expect_str_eq(g.lines[1], "data: {}");
    cr_expect_str_eq(g.lines[2], "");
    cr_expect_str_eq(g.lines[3], ": ping");
    cr_expect(strstr(s.request, "\r\nLast-Event-ID: 6\r\n") != NULL, "%s", s.request);
}

Test(http_client, stream_stops_when_callback_says_so, .timeout = 10)
{
    struct server s;
    struct iw_diag diag = {0};
    struct got g = { .stop_after = 2 };
    char url[64];
    int status = 0;

    server_start(&s, "HTTP/1.1 200 OK\r\n\r\na\nb\nc\nd\n");
    url_of(&s, "", url, sizeof(url));
    cr_assert_eq(iw_http_stream_lines(url, "/s", NULL, NULL, collect, &g, NULL, 5000, &status,
                                      &diag), IW_OK);
    server_join(&s);
    cr_expect_eq(g.n, 2);
    cr_expect_str_eq(g.lines[1], "b");
}

Test(http_client, stream_error_status_carries_the_message, .timeout = 10)
{
    struct server s;
    struct iw_diag diag = {0};
    struct got g = {0};
    char url[64];
    int status = 0;

    server_start(&s, "HTTP/1.1 400 Bad Request\r\nContent-Length: 21\r\n\r\n"
                     "{\"error\":\"bad since\"}");
    url_of(&s, "", url, sizeof(url));
    cr_expect_eq(iw_http_stream_lines(url, "/s", NULL, NULL, collect, &g, NULL, 5000, &status,
                                      &diag), IW_E_IO);
    server_join(&s);
    cr_expect_eq(status, 400);
    cr_expect_eq(g.n, 0);
    cr_expect(strstr(iw_diag_first(&diag), "bad since") != NULL, "%s", iw_diag_first(&diag));
    iw_diag_fini(&diag);
}

/* ---- helpers ---- */

struct listen_case {
    char listen[32], url[64];
};

ParameterizedTestParameters(http_client, listen_url)
{
    static struct listen_case cases[] = {
        { "127.0.0.1:8080", "http://127.0.0.1:8080" },
        { "0.0.0.0:9000", "http://127.0.0.1:9000" },
        { "[::1]:8080", "http://[::1]:8080" },
        { "[::]:8080", "http://[::1]:8080" },
        { "localhost:81", "http://localhost:81" },
    };
    return cr_make_param_array(struct listen_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct listen_case *c, http_client, listen_url)
{
    char buf[128];
    iw_http_listen_url(c->listen, buf, sizeof(buf));
    cr_expect_str_eq(buf, c->url);
}

Test(http_client, query_escape_keeps_globs_and_encodes_the_rest)
{
    char *s = iw_http_query_escape("water/*/w 1/nh3_n&x=+08:00");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "water/*/w%201/nh3_n%26x%3D%2B08:00");
    free(s);
}
