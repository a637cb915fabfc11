/* SPDX-License-Identifier: Apache-2.0 */
/*
 * silences — run-time silences created through the HTTP API (SPEC §4, §7).
 *
 * A silence is {id, match: {rule, site, device, source, severity, metric: glob},
 * from, to, reason, created_by, created_at}. Matching alerts are still recorded
 * but not published (the rule engine marks them silenced). Silences from the
 * config file (cfg->silences) are matched by the rule engine itself; this
 * module only lists them, read-only, next to the run-time ones.
 *
 * Persistence: each run-time silence is one metadata entry "silence/<id>" in
 * the store, holding the same JSON object the API returns (without the
 * "source" and "active" members). iw_silences_load() reads them back at start.
 * With a NULL store nothing is persisted (unit tests).
 *
 * State: one process-wide list behind a mutex. Every function is thread-safe:
 * HTTP threads create, delete and list; shard threads call
 * iw_silences_match() once per alert transition (not per message).
 */
#ifndef ISLEWATCH_SILENCES_H
#define ISLEWATCH_SILENCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"
#include "islewatch/config.h"
#include "islewatch/err.h"

struct iw_store;
struct iw_alert;

#define IW_SILENCE_ID_LEN 16            /* lower-case hex digits */
#define IW_SILENCES_MAX 1000            /* run-time silences kept at most */

/*
 * Replace the in-memory list with the silences stored under "silence/".
 * An entry that cannot be parsed is skipped and named in diag (the others
 * still load). Returns IW_OK, or IW_E_STORE when the scan itself failed.
 */
IW_NODISCARD int iw_silences_load(struct iw_store *st, struct iw_diag *diag);

/*
 * Create a silence from a JSON object (borrowed, len bytes):
 *   {"match": {"rule": "camera-*", "site": "dongtan"},      required, >= 1 key
 *    "from": T, "to": T | "duration": "2h",                   neither: open-ended
 *    "reason": "...", "created_by": "..."}                    optional
 * T is RFC 3339, epoch milliseconds (number or string), "now" or relative to
 * now_ms ("+2h"); from defaults to now_ms. `default_by` (borrowed, may be
 * NULL) is used when the body has no created_by. Any other key, or both
 * "to" and "duration", is IW_E_INVAL.
 * On IW_OK id_out (IW_SILENCE_ID_LEN + 1 bytes) holds the new id and the
 * silence is stored. IW_E_INVAL with one diag line saying which member is
 * wrong and what is expected; IW_E_FULL past IW_SILENCES_MAX; IW_E_STORE.
 */
IW_NODISCARD int iw_silences_create(struct iw_store *st, const char *json, size_t len,
                                    const char *default_by, int64_t now_ms,
                                    char id_out[IW_SILENCE_ID_LEN + 1], struct iw_diag *diag);

/* Delete the run-time silence `id`: IW_OK, IW_E_NOTFOUND, IW_E_STORE. */
IW_NODISCARD int iw_silences_delete(struct iw_store *st, const char *id);

/*
 * Every silence as a JSON array: the config's first (read-only, "id": null,
 * "source": "config"), then the run-time ones ("source": "api"), each with
 * "active": whether now_ms is inside [from, to). cfg may be NULL.
 * On IW_OK *out is OWNED by the caller (free()).
 */
IW_NODISCARD int iw_silences_list_json(const struct iw_config *cfg, int64_t now_ms, char **out);

/* Does a run-time silence match the alert at wall-clock now_ms? Thread-safe. */
bool iw_silences_match(const struct iw_alert *a, int64_t now_ms);

/* Forget every in-memory silence (the store is untouched). For shutdown and tests. */
void iw_silences_reset(void);

#endif /* ISLEWATCH_SILENCES_H */
