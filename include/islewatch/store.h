/*
 * Storage on RocksDB (SPEC §2). One database, one column family, keys
 * prefixed by a kind byte so each kind is one contiguous, ordered range:
 *
 *   'D' name                       -> id (u32 BE)      series dictionary
 *   'd' id                         -> name             reverse dictionary
 *   'P' id(u32 BE) ts(u64 BE*)     -> value            raw point
 *   'M' id ts-of-minute            -> rollup           per-minute rollup
 *   'H' id ts-of-hour              -> rollup           per-hour rollup
 *   'W' id                         -> ts (i64)         minute rollups done below ts
 *   'm' key                        -> bytes            metadata: alerts, rule state, seq
 *
 * (*) timestamps are big-endian with the sign bit flipped, so byte order is
 * time order for negative times too. A value is an 8-byte double, followed
 * by one HJ 212 flag byte when the sample was flagged. Writing the same
 * (series, ts) again replaces it: redelivery is idempotent.
 *
 * Threads: any number of threads may write batches and read concurrently
 * (RocksDB's own locking). The series dictionary is read without locks; only
 * the creation of a new series takes a mutex (rare, off the per-message path
 * once a device has reported).
 */
#ifndef ISLEWATCH_STORE_H
#define ISLEWATCH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "islewatch/compiler.h"
#include "islewatch/err.h"

struct iw_store;                       /* opaque */
struct iw_wbatch;                      /* opaque write batch */

/* Series a store holds at most unless opts.max_series says otherwise; the
 * daemon's per-series arrays (pipeline.c) are sized by the same number. */
#define IW_STORE_DEFAULT_MAX_SERIES (1u << 20)

struct iw_store_opts {
    const char *path;                  /* borrowed */
    bool     read_only;                /* readers beside a running daemon */
    bool     sync_writes;              /* fsync the WAL on each write */
    uint32_t max_series;               /* 0: IW_STORE_DEFAULT_MAX_SERIES */
    int64_t  slow_write_ms;            /* test-only: sleep before each batch write */
};

/* A series as the dictionary knows it. Immutable once published. */
struct iw_series {
    uint32_t id;
    uint32_t hash;                     /* of the whole name */
    uint32_t device_hash;              /* of "source/site/device": the shard key */
    uint16_t len;                      /* strlen(name) */
    uint16_t site_off, device_off, metric_off;   /* offsets of the levels in name */
    char     name[];                   /* "water/dongtan/w01/nh3_n" */
};

/*
 * A device's own entry "<source>/<site>/<device>" (no metric level): the
 * ingest path makes one for a device whose message stored no sample (only
 * labels, or only a flag), and stores each such message under it as a point
 * (value 0, the message's flag), so that its shard can tell the absence and
 * flag rules and backtest can replay it. Series listings and queries leave
 * it out; iw_store_device_list lists these entries.
 */
static inline bool iw_series_is_device(const struct iw_series *s)
{
    /* metric_off == len first: a 4-level series (every sample) stops there. */
    return s->metric_off >= s->len && s->device_off < s->len
           && memchr(s->name + s->device_off, '/', (size_t)(s->len - s->device_off)) == NULL;
}

struct iw_point {
    int64_t ts;
    double  value;
    char    flag;                      /* 0 or an HJ 212 letter */
};

struct iw_rollup {
    int64_t  ts;                       /* bucket start */
    double   min, max, sum, last;
    uint64_t count;
    int64_t  last_ts;
};

enum iw_resolution { IW_RES_RAW = 0, IW_RES_1M = 1, IW_RES_1H = 2 };

IW_NODISCARD int iw_store_open(const struct iw_store_opts *opts, struct iw_store **out,
                               struct iw_diag *diag);
void iw_store_close(struct iw_store *st);

/* ---- series dictionary ---- */

uint32_t iw_hash(const char *s, size_t len);
/* iw_hash(a + b) == iw_hash_cont(iw_hash(a), b): hash a shared prefix once. */
uint32_t iw_hash_cont(uint32_t h, const char *s, size_t len);

/*
 * Id of the series `name` (len bytes), creating it when new (durably, before
 * it is returned). Lock-free for known series. IW_E_FULL past max_series.
 */
IW_NODISCARD int iw_store_series_intern(struct iw_store *st, const char *name, size_t len,
                                        const struct iw_series **out);
/* The same, with hash == iw_hash(name, len) already computed. */
IW_NODISCARD int iw_store_series_intern_h(struct iw_store *st, const char *name, size_t len,
                                          uint32_t hash, const struct iw_series **out);
/* Known series only: NULL when unknown. Lock-free. */
const struct iw_series *iw_store_series_find(struct iw_store *st, const char *name, size_t len);
const struct iw_series *iw_store_series_by_id(struct iw_store *st, uint32_t id);
uint32_t iw_store_series_count(struct iw_store *st);   /* ids are 0..count-1 */

struct iw_series_info {
    const struct iw_series *series;
    int64_t  first, last;
    uint64_t count;
};
/* Every series whose name matches glob (NULL: all; a 3-level device glob: every
 * metric of the device), in name order, with its raw range. */
IW_NODISCARD int iw_store_series_list(struct iw_store *st, const char *glob,
                                      int (*cb)(void *ctx, const struct iw_series_info *), void *ctx);
/* The same names without the raw range, including series whose raw points have all
 * expired (their minute and hour rollups outlive them): what a query reads. */
IW_NODISCARD int iw_store_series_match(struct iw_store *st, const char *glob,
                                       int (*cb)(void *ctx, const struct iw_series *), void *ctx);
/* The devices' own entries (iw_series_is_device) whose names match glob (NULL: all),
 * in name order, with their raw range: the messages without samples. */
IW_NODISCARD int iw_store_device_list(struct iw_store *st, const char *glob,
                                      int (*cb)(void *ctx, const struct iw_series_info *), void *ctx);

/* ---- writing ---- */

struct iw_wbatch *iw_wbatch_new(void);
void iw_wbatch_free(struct iw_wbatch *b);
void iw_wbatch_clear(struct iw_wbatch *b);
size_t iw_wbatch_count(const struct iw_wbatch *b);
/* Whether the store's file system has at least 1 MiB free: a write that
 * failed for want of space is not tried again before (ingest.c). */
bool iw_store_has_space(const struct iw_store *st);

void iw_wbatch_put_point(struct iw_wbatch *b, uint32_t id, int64_t ts, double v, char flag);
void iw_wbatch_put_meta(struct iw_wbatch *b, const char *key, const void *val, size_t len);
void iw_wbatch_delete_meta(struct iw_wbatch *b, const char *key);
/* Write atomically, through the WAL. Returns IW_OK or IW_E_STORE (diag set). */
IW_NODISCARD int iw_store_write(struct iw_store *st, struct iw_wbatch *b, struct iw_diag *diag);

/* ---- reading ---- */

/* Raw points of one series with from <= ts < to, in time order. cb returns non-zero to stop. */
IW_NODISCARD int iw_store_read_points(struct iw_store *st, uint32_t id, int64_t from, int64_t to,
                                      int (*cb)(void *ctx, const struct iw_point *), void *ctx);

/*
 * Aggregates of one series over [from, to) in buckets of `step` ms aligned to
 * the epoch; uses hour and minute rollups where they cover whole buckets and
 * raw points elsewhere, so the result equals an aggregate of the raw points.
 * cb gets one rollup per non-empty bucket, in time order.
 */
IW_NODISCARD int iw_store_read_agg(struct iw_store *st, uint32_t id, int64_t from, int64_t to,
                                   int64_t step,
                                   int (*cb)(void *ctx, const struct iw_rollup *), void *ctx);

/* ---- rollups (called by the shard worker that owns the series) ---- */

/*
 * Recompute the minute rollups of every minute with points in [from, to),
 * the hour rollups of the hours they touch (once complete, see
 * store_query.c), and, when advance is true, move the series' watermark to
 * `to` (minute-aligned). Idempotent. Rollups are derived data: readers fold
 * raw points wherever a minute has no rollup key (store format 3 writes none
 * for a one-point minute).
 */
IW_NODISCARD int iw_store_rollup_range(struct iw_store *st, uint32_t id, int64_t from, int64_t to,
                                       bool advance);
/*
 * Late marks. A sample stored below its series' watermark changes an hour
 * whose rollups are already written. Its writer adds n to that hour's mark in
 * the sample's own batch; the shard recomputes the hour and takes away the
 * marks it handled, in the recompute's batch (iw_store_rollup_late). So a
 * mark above zero is an hour a crash may have left stale, and a start-up
 * recomputes it (iw_store_rollup_recover). Marks are RocksDB uint64add
 * merges: adding one reads nothing.
 */
void iw_wbatch_mark_late(struct iw_wbatch *b, uint32_t id, int64_t ts, uint32_t n);
/* Recompute the hour [hour, min(hour + 1 h, below)) and take `marks` off its mark. */
IW_NODISCARD int iw_store_rollup_late(struct iw_store *st, uint32_t id, int64_t hour, int64_t below,
                                      uint32_t marks);
/* Recompute every marked hour, then drop the marks; *hours gets how many were recomputed. */
IW_NODISCARD int iw_store_rollup_recover(struct iw_store *st, uint64_t *hours);
/* Every series' stored watermark, in id order. */
IW_NODISCARD int iw_store_watermarks(struct iw_store *st,
                                     void (*cb)(void *ctx, uint32_t id, int64_t wm), void *ctx);
/* The series' watermark: minute rollups are complete below it (INT64_MIN: none). */
int64_t iw_store_rollup_watermark(struct iw_store *st, uint32_t id);

/* ---- retention ---- */

/* Delete raw points older than now-raw_ms, minute rollups older than now-m_ms, hours likewise. */
IW_NODISCARD int iw_store_retention(struct iw_store *st, int64_t now_ms, int64_t raw_ms,
                                    int64_t m_ms, int64_t h_ms);

/* ---- metadata ---- */

IW_NODISCARD int iw_store_meta_put(struct iw_store *st, const char *key, const void *val, size_t len);
/* *val is malloc'd (free it); IW_E_NOTFOUND when absent. */
IW_NODISCARD int iw_store_meta_get(struct iw_store *st, const char *key, void **val, size_t *len);
IW_NODISCARD int iw_store_meta_delete(struct iw_store *st, const char *key);
/* Every key starting with prefix, in key order; cb returns non-zero to stop. */
IW_NODISCARD int iw_store_meta_scan(struct iw_store *st, const char *prefix,
                                    int (*cb)(void *ctx, const char *key, size_t klen,
                                              const void *val, size_t vlen), void *ctx);

/* RocksDB statistics text for diagnostics (malloc'd), and the live size in bytes. */
uint64_t iw_store_disk_bytes(struct iw_store *st);
void iw_store_compact(struct iw_store *st);

#endif /* ISLEWATCH_STORE_H */
