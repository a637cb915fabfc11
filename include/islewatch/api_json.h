/*
 * The JSON answers of the reading API (SPEC §6, §7), built from the store.
 * One implementation serves `islewatch ... --db PATH --format json` and the
 * HTTP endpoints, so both print exactly the same document.
 */
#ifndef ISLEWATCH_API_JSON_H
#define ISLEWATCH_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"
#include "islewatch/err.h"

struct iw_store;

enum iw_agg { IW_Q_RAW = 0, IW_Q_AVG, IW_Q_MIN, IW_Q_MAX, IW_Q_SUM, IW_Q_COUNT, IW_Q_LAST };
/* "avg" ... "last" -> enum; -1 when unknown. */
int iw_agg_parse(const char *s);

/* [{"series":"...","first":T,"last":T,"count":N}, ...] for series matching glob (NULL: all). */
IW_NODISCARD int iw_api_series_json(struct iw_store *st, const char *glob, char **out);

/*
 * [{"series":"...","points":[[T,V],...]}, ...] for each series matching glob,
 * points with from <= T <= to (both ends inclusive). step 0: raw points, and
 * when some are flagged, "flags":[[T,"D"],...] beside "points" (in time
 * order; points stay [T,V] pairs as SPEC §6 gives them); step > 0: one
 * [bucket_start, agg] per non-empty bucket. Series with no point in the
 * range are left out. max_points > 0 bounds the points (raw or buckets) of
 * all series together, so that one query cannot take the daemon's memory:
 * IW_E_FULL past it. 0: no bound.
 */
IW_NODISCARD int iw_api_query_json(struct iw_store *st, const char *glob, int64_t from, int64_t to,
                                   int64_t step, enum iw_agg agg, size_t max_points, char **out);

/*
 * The same two for the devices' own entries ("water/dongtan/w01": the
 * messages that stored no sample, iw_series_is_device), which the two above
 * leave out: backtest replays them to the absence and flag rules. Raw points
 * only (value 0, the message's flag in "flags").
 */
IW_NODISCARD int iw_api_device_series_json(struct iw_store *st, const char *glob, char **out);
IW_NODISCARD int iw_api_device_points_json(struct iw_store *st, const char *glob, int64_t from,
                                           int64_t to, size_t max_points, char **out);

/*
 * Alert objects (SPEC §5) as an array, in seq order: active ones (the latest
 * message of each firing episode) or the history, with ts >= since (ms),
 * optionally only of rules matching the glob `rule` (NULL: all), at most
 * `limit` (0: no limit; the newest ones are kept).
 */
IW_NODISCARD int iw_api_alerts_json(struct iw_store *st, bool active, int64_t since,
                                    const char *rule, size_t limit, char **out);

#endif
