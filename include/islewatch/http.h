/*
 * The HTTP API and dashboard (SPEC §7), on libmicrohttpd's own threads.
 * Handlers read the daemon through islewatch/daemon.h only.
 */
#ifndef ISLEWATCH_HTTP_H
#define ISLEWATCH_HTTP_H

#include "islewatch/config.h"
#include "islewatch/err.h"

struct iw_daemon;
struct iw_http;

/*
 * Listen on cfg->http.listen ("127.0.0.1:8080", "[::1]:8080"); NULL listen,
 * "" or "off": *out = NULL and IW_OK (no HTTP). The token is read from
 * cfg->http.token_file now (and again by iw_http_reload). On error diag says
 * what (port in use, bad address, unreadable token file) and what to do.
 */
IW_NODISCARD int iw_http_start(struct iw_daemon *d, const struct iw_config *cfg,
                               struct iw_http **out, struct iw_diag *diag);
/*
 * Before a reload: can cfg's http.token_file be read (IW_OK also when it sets
 * none)? Otherwise diag says why and the reload is refused, as an invalid file
 * is: the start would refuse it too.
 */
IW_NODISCARD int iw_http_token_check(const struct iw_config *cfg, struct iw_diag *diag);
/* Re-read the token file after a config reload. */
void iw_http_reload(struct iw_http *h, const struct iw_config *cfg);
void iw_http_stop(struct iw_http *h);   /* accepts NULL */

#endif /* ISLEWATCH_HTTP_H */
