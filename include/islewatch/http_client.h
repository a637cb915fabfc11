/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_client — a minimal blocking HTTP/1.1 client for the CLI's `--url`
 * (SPEC §6): plain http:// over TCP to the daemon, which binds loopback by
 * default. https:// is NOT supported (the error says so). One request per
 * connection ("Connection: close"); bodies framed by Content-Length,
 * chunked transfer coding, or the end of the connection.
 *
 * Every function is thread-safe (no shared state) and returns an enum iw_err;
 * on failure diag holds one line saying what failed and what to do.
 */
#ifndef ISLEWATCH_HTTP_CLIENT_H
#define ISLEWATCH_HTTP_CLIENT_H

#include <signal.h>
#include <stddef.h>

#include "islewatch/compiler.h"
#include "islewatch/err.h"

#define IW_HTTP_DEFAULT_URL "http://127.0.0.1:8080"

/*
 * Send `method` `path_and_query` (e.g. "/api/v1/series?match=water") to
 * base_url ("http://127.0.0.1:8080", optionally with a path prefix, which is
 * prepended). token (may be NULL) goes out as "Authorization: Bearer TOKEN";
 * body (may be NULL) as application/json.
 * On IW_OK *status is the HTTP status (any: 404 is still IW_OK) and
 * *resp_body is OWNED by the caller (free()), NUL-terminated, *resp_len bytes.
 * Errors: IW_E_INVAL (bad or https URL), IW_E_IO (cannot connect, timeout,
 * connection lost; diag names the URL and asks whether islewatchd runs),
 * IW_E_NOMEM. Reads time out after 60 s without data.
 */
IW_NODISCARD int iw_http_request(const char *base_url, const char *method,
                                 const char *path_and_query, const char *token, const char *body,
                                 char **resp_body, size_t *resp_len, int *status,
                                 struct iw_diag *diag);

/*
 * The message of an islewatchd error answer: its {"error": "..."} member,
 * else the body itself ("" for NULL). Writes at most len bytes into buf and
 * returns buf.
 */
const char *iw_http_error_text(const char *body, char *buf, size_t len);

/*
 * GET a streaming response (Server-Sent Events) and call line_cb with each
 * line of the body (without the line break; borrowed for the call) until
 * line_cb returns non-zero, the server ends the response, *stop becomes
 * non-zero (checked at least every 250 ms; stop may be NULL) or no byte
 * arrives for idle_ms (0: wait forever). extra_header (may be NULL) is one
 * "Name: value" header line, e.g. "Last-Event-ID: 42".
 * A non-2xx status is not streamed: *status is set, the body goes to diag
 * and IW_E_IO is returned. Returns IW_OK when ended by line_cb, stop or the
 * server.
 */
IW_NODISCARD int iw_http_stream_lines(const char *base_url, const char *path_and_query,
                                      const char *token, const char *extra_header,
                                      int (*line_cb)(void *ctx, const char *line, size_t len),
                                      void *ctx, const volatile sig_atomic_t *stop, int idle_ms,
                                      int *status, struct iw_diag *diag);

/*
 * The daemon's URL for an http.listen value: "127.0.0.1:8080" ->
 * "http://127.0.0.1:8080", "0.0.0.0:8080" -> "http://127.0.0.1:8080",
 * "[::]:8080" -> "http://[::1]:8080". Writes at most len bytes (NUL included).
 */
void iw_http_listen_url(const char *listen, char *buf, size_t len);

/*
 * Percent-encode s for a query value (unreserved characters, '*' and '/'
 * stay as they are). Returns a malloc'd string (OWNED by the caller) or NULL.
 */
char *iw_http_query_escape(const char *s);

#endif /* ISLEWATCH_HTTP_CLIENT_H */
