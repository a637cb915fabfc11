/*
 * What the daemon offers its HTTP front end and main(): lifecycle, the alert
 * feed (for Server-Sent Events), acknowledgements and run-time state.
 */
#ifndef ISLEWATCH_DAEMON_H
#define ISLEWATCH_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/config.h"
#include "islewatch/err.h"

struct iw_daemon;
struct iw_store;

/*
 * Run the daemon with the config file `path` until SIGTERM/SIGINT. Invalid
 * config: every error line goes to stderr and IW_E_CONFIG is returned.
 * log_level (an enum iw_log_level, from --log-level) wins over the file's
 * log_level, also across reloads; -1 takes the file's.
 */
IW_NODISCARD int iw_daemon_run(const char *path, int log_level);

/* ---- for the HTTP server (thread-safe) ---- */

struct iw_store *iw_daemon_store(struct iw_daemon *d);
const struct iw_config *iw_daemon_config(struct iw_daemon *d);   /* valid until the next reload */
bool iw_daemon_ready(struct iw_daemon *d);                        /* broker connected and DB open */
char *iw_daemon_metrics(struct iw_daemon *d);                     /* malloc'd Prometheus text */
/* Ask the main thread to reload the config; returns IW_OK when the new file was applied,
 * IW_E_CONFIG with the error lines in diag otherwise. Blocks until done. */
IW_NODISCARD int iw_daemon_request_reload(struct iw_daemon *d, struct iw_diag *diag);

/*
 * Acknowledge the firing alert `id`: records it, republishes the alert with
 * its "ack" member. IW_E_NOTFOUND when no firing alert has that id.
 */
IW_NODISCARD int iw_daemon_ack(struct iw_daemon *d, const char *id, const char *by,
                               const char *comment);

/*
 * The live alert feed: every alert the publisher published, as JSON, with its seq. Calls cb for each alert with seq > after_seq still in memory (the last
 * 4096), in seq order, and returns the highest seq seen (after_seq if none).
 * Older ones are in the store (iw_alert_history_scan).
 */
uint64_t iw_alert_feed_since(uint64_t after_seq, void (*cb)(void *ctx, uint64_t seq,
                             const char *json, size_t len), void *ctx);
/*
 * The silenced alerts recorded since this start (the last 1024; older ones
 * are skipped), numbered from 1 in the order recorded: calls cb for each one
 * numbered above after_silenced and returns the highest number (after_silenced
 * if none).
 */
uint64_t iw_alert_feed_silenced_since(uint64_t after_silenced, void (*cb)(void *ctx,
                                      const char *json, size_t len), void *ctx);
/*
 * Wait up to timeout_ms for an alert with seq > after_seq or a silenced one
 * numbered above after_silenced (UINT64_MAX: not waited for); returns the
 * newest seq and, when silenced is not NULL, puts the newest silenced number there.
 */
uint64_t iw_alert_feed_wait(uint64_t after_seq, uint64_t after_silenced, int timeout_ms,
                            uint64_t *silenced);

/* ---- alert history in the store (daemon or a read-only reader) ---- */

/* History in the order recorded, from the first alert after the published
 * message after_seq (0: all); cb returns non-zero to stop. With silenced, the
 * alerts a silence kept from publishing are included: they have no seq of
 * their own, cb gets the seq of the message published before them (0: none). */
IW_NODISCARD int iw_alert_history_scan(struct iw_store *st, uint64_t after_seq, bool silenced,
                                       int (*cb)(void *ctx, uint64_t seq, const char *json,
                                                 size_t len), void *ctx);
/* The firing alerts (the latest message of every open episode). */
IW_NODISCARD int iw_alert_active_scan(struct iw_store *st,
                                      int (*cb)(void *ctx, const char *json, size_t len),
                                      void *ctx);

#endif /* ISLEWATCH_DAEMON_H */
