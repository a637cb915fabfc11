/*
 * RocksDB storage: open/close, the series dictionary, batches, metadata.
 * Reading (points, aggregates), rollups and retention are in store_query.c.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <rocksdb/c.h>

#include "islewatch/clock.h"
#include "islewatch/log.h"
#include "islewatch/topic.h"
#include "store_int.h"
#include "valcodec.h"

uint32_t iw_hash(const char *s, size_t len)
{
    /* FNV-1a 32: short keys, good enough spread for linear probing. */
    return iw_hash_cont(2166136261u, s, len);
}

uint32_t iw_hash_cont(uint32_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- keys ---- */

void iw_key_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

uint32_t iw_key_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void iw_key_put_ts(unsigned char *p, int64_t ts)
{
    uint64_t u = (uint64_t)ts ^ (1ULL << 63);    /* flip the sign: byte order = time order */
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)u;
        u >>= 8;
    }
}

int64_t iw_key_get_ts(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)(u ^ (1ULL << 63));
}

void iw_key_series_ts(unsigned char k[IW_KEY_LEN], char kind, uint32_t id, int64_t ts)
{
    k[0] = (unsigned char)kind;
    iw_key_put_u32(k + 1, id);
    iw_key_put_ts(k + 5, ts);
}

/* ---- open / close ---- */

static int dict_publish(struct iw_store *st, uint32_t id, const char *name, size_t len);

static int dict_load(struct iw_store *st, struct iw_diag *diag)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ropts);
    unsigned char lo = 'd';
    uint32_t max_id = 0;
    bool any = false;

    for (rocksdb_iter_seek(it, (const char *)&lo, 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl != 5 || k[0] != 'd')
            break;
        uint32_t id = iw_key_get_u32((const unsigned char *)k + 1);
        if (id >= st->max_series || dict_publish(st, id, v, vl) != IW_OK) {
            iw_diag_set(diag, NULL, 0, 0, "series dictionary in %s: cannot load series id %u "
                        "(max_series %u too small?)", st->path, id, st->max_series);
            rocksdb_iter_destroy(it);
            return IW_E_STORE;
        }
        if (id >= max_id) {
            max_id = id;
            any = true;
        }
    }
    rocksdb_iter_destroy(it);
    atomic_store_explicit(&st->next_id, any ? max_id + 1 : 0, memory_order_release);
    return IW_OK;
}

/*
 * Live data arrives interleaved across series but in time order within each,
 * so each memtable insert lands right after the previous point of its series.
 * With an insert hint per 5-byte prefix (kind + series id) the skip list starts
 * its search there instead of at the head: 25-30 % less CPU per message on the
 * delivery thread (bench/RESULTS.md). Hints need single-writer memtable
 * inserts; RocksDB still batches concurrent writers. The option has no C
 * setter, hence the options string. Keys shorter than 5 bytes go in unhinted.
 */
static void memtable_hints(struct iw_store *st)
{
    rocksdb_options_t *o = rocksdb_options_create();
    char *err = NULL;

    rocksdb_get_options_from_string(st->opts,
        "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.5;"
        "allow_concurrent_memtable_write=false", o, &err);
    if (err != NULL) {
        IW_LOG_WARN("store", "memtable insert hints unavailable (%s); continuing without", err);
        rocksdb_free(err);
        rocksdb_options_destroy(o);
        return;
    }
    rocksdb_options_destroy(st->opts);
    st->opts = o;
}

/*
 * Store format 3 = compact values (valcodec.h) and sparse minute rollups: a
 * minute holding one raw point has no 'M' key (store_query.c). Format 2 (an
 * 'M' key for every rolled minute) is still read and written as it is: the
 * readers handle both. A database holding points but no format mark was
 * written by an earlier islewatch with 8-byte values, which this version
 * would misread: refuse it rather than show wrong numbers.
 */
#define IW_STORE_FORMAT "3"
#define IW_STORE_FORMAT_DENSE "2"

static int check_format(struct iw_store *st, struct iw_diag *diag)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = iw_store_meta_get(st, "store_format", &v, &vl);
    if (rc == IW_OK) {
        bool ok = vl == strlen(IW_STORE_FORMAT) && memcmp(v, IW_STORE_FORMAT, vl) == 0;
        if (!ok && vl == strlen(IW_STORE_FORMAT_DENSE) && memcmp(v, IW_STORE_FORMAT_DENSE, vl) == 0)
            ok = st->dense_minutes = true;
        if (!ok)
            iw_diag_set(diag, NULL, 0, 0, "the database at %s has store format '%.*s', this "
                        "islewatch reads formats %s and %s: use the islewatch version that wrote "
                        "it, or start with an empty storage.path", st->path,
                        (int)(vl > 16 ? 16 : vl), (const char *)v, IW_STORE_FORMAT_DENSE,
                        IW_STORE_FORMAT);
        free(v);
        return ok ? IW_OK : IW_E_STORE;
    }
    if (rc != IW_E_NOTFOUND) {
        iw_diag_set(diag, NULL, 0, 0, "cannot read the store format mark of %s (%s): check the "
                    "database's files and permissions", st->path, iw_strerror(rc));
        return rc;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ropts);
    rocksdb_iter_seek(it, "P", 1);
    size_t kl = 0;
    bool old_points = rocksdb_iter_valid(it) && rocksdb_iter_key(it, &kl)[0] == 'P';
    rocksdb_iter_destroy(it);
    if (old_points) {
        iw_diag_set(diag, NULL, 0, 0, "the database at %s was written by an earlier islewatch "
                    "(8-byte point values, no store_format mark), which this version cannot "
                    "read: move it aside and start with an empty storage.path", st->path);
        return IW_E_STORE;
    }
    if (st->read_only)
        return IW_OK;
    return iw_store_meta_put(st, "store_format", IW_STORE_FORMAT, strlen(IW_STORE_FORMAT));
}

/*
 * Create the missing parent directories of path (mkdir -p; RocksDB creates
 * only the last level). IW_OK, or IW_E_STORE with diag naming the directory
 * that could not be made.
 */
static int make_parents(const char *path, struct iw_diag *diag)
{
    char dirbuf[4096];
    size_t len = strlen(path);

    if (len >= sizeof(dirbuf))
        return IW_OK;                   /* RocksDB reports the path itself */
    memcpy(dirbuf, path, len + 1);
    for (char *p = strchr(dirbuf + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
        struct stat sb;
        int e = 0;
        *p = '\0';
        if (mkdir(dirbuf, 0755) != 0 && errno != EEXIST)
            e = errno;
        else if (stat(dirbuf, &sb) != 0)
            e = errno;
        else if (!S_ISDIR(sb.st_mode))
            e = ENOTDIR;
        if (e != 0) {
            iw_diag_set(diag, NULL, 0, 0, "cannot create the directory %s for the database at %s: "
                        "%s (make storage.path a directory the daemon's user can create or write)",
                        dirbuf, path, strerror(e));
            return IW_E_STORE;
        }
        *p = '/';
    }
    return IW_OK;
}

/*
 * True (with diag) when path is a directory that holds files but no RocksDB
 * database (no CURRENT): RocksDB would make one among them, and delete the
 * files whose names it uses (an "000002.sst" of someone else's). Files a
 * first start cut short leaves (LOCK, LOG, IDENTITY) are not foreign, nor a
 * file system's lost+found (storage.path at a mount point).
 */
#define IW_STORE_MIN_FREE (1ULL << 20)

/* Bytes free for us on path's file system (the directory itself or, not
 * made yet, the nearest one above it); UINT64_MAX when that cannot be told. */
static unsigned long long free_bytes(const char *path)
{
    struct statvfs v;
    char dir[4096];
    int rc;

    snprintf(dir, sizeof(dir), "%s", path);
    while ((rc = statvfs(dir, &v)) != 0 && errno == ENOENT) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
            break;
        *slash = '\0';
    }
    return rc != 0 ? ~0ULL : (unsigned long long)v.f_bavail * v.f_frsize;
}

/* True (with diag) when path's file system has less than 1 MiB left: RocksDB
 * (Debian's, built with its assertions on) aborts opening a database there. */
static bool disk_full(const char *path, struct iw_diag *diag)
{
    unsigned long long n = free_bytes(path);
    if (n >= IW_STORE_MIN_FREE)
        return false;
    iw_diag_set(diag, NULL, 0, 0, "cannot open the database at %s: its file system has %llu KiB "
                "left; free some space there, then start islewatchd again", path, n / 1024);
    return true;
}

bool iw_store_has_space(const struct iw_store *st)
{
    return free_bytes(st->path) >= IW_STORE_MIN_FREE;
}

static bool foreign_dir(const char *path, struct iw_diag *diag)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char first[256] = "";
    bool current = false, rocks = false;

    if (d == NULL)
        return false;                     /* none yet (RocksDB makes it) or unreadable (it says) */
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        rocks |= strncmp(n, "MANIFEST-", 9) == 0 || strncmp(n, "OPTIONS-", 8) == 0;
        if (strcmp(n, "CURRENT") == 0)
            current = true;
        else if (first[0] == '\0' && strcmp(n, ".") != 0 && strcmp(n, "..") != 0
                 && strcmp(n, "LOCK") != 0 && strcmp(n, "LOG") != 0
                 && strncmp(n, "LOG.old.", 8) != 0 && strcmp(n, "IDENTITY") != 0
                 && strcmp(n, "lost+found") != 0)
            snprintf(first, sizeof(first), "%s", n);
    }
    closedir(d);
    if (current || first[0] == '\0')
        return false;
    if (rocks) {
        iw_diag_set(diag, NULL, 0, 0, "cannot open the database at %s: it holds a RocksDB "
                    "database without its CURRENT file, so it is damaged: restore storage.path "
                    "from a backup, or move it aside to start with an empty one", path);
        return true;
    }
    iw_diag_set(diag, NULL, 0, 0, "cannot open the database at %s: the directory holds other "
                "files (\"%s\", ...) and no islewatch database; islewatchd does not write among "
                "them. Set storage.path to a new or empty directory", path, first);
    return true;
}

int iw_store_open(const struct iw_store_opts *opts, struct iw_store **out, struct iw_diag *diag)
{
    struct iw_store *st;
    char *err = NULL;

    *out = NULL;
    if (opts == NULL || opts->path == NULL)
        return IW_E_INVAL;
    /* A reader must not leave a directory where there was none (RocksDB
     * creates one for its info log even when opening read-only). */
    if (opts->read_only) {
        struct stat sb;
        int e = stat(opts->path, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? 0 : ENOTDIR;
        if (e != 0) {
            iw_diag_set(diag, NULL, 0, 0, "cannot open the database at %s: %s (is the path "
                        "right? it must be a storage.path the daemon has written)", opts->path,
                        e == ENOENT ? "no such directory" : strerror(e));
            return IW_E_STORE;
        }
    } else if (make_parents(opts->path, diag) != IW_OK || foreign_dir(opts->path, diag)
               || disk_full(opts->path, diag)) {
        return IW_E_STORE;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return IW_E_NOMEM;
    st->path = strdup(opts->path);
    st->read_only = opts->read_only;
    st->slow_write_ms = opts->slow_write_ms;
    st->max_series = opts->max_series ? opts->max_series : IW_STORE_DEFAULT_MAX_SERIES;
    st->slot_mask = 1;
    while (st->slot_mask < (size_t)st->max_series * 2)
        st->slot_mask <<= 1;
    st->slots = calloc(st->slot_mask, sizeof(*st->slots));
    st->by_id = calloc(st->max_series, sizeof(*st->by_id));
    st->slot_mask -= 1;
    pthread_mutex_init(&st->create_lock, NULL);
    if (st->path == NULL || st->slots == NULL || st->by_id == NULL) {
        iw_store_close(st);
        return IW_E_NOMEM;
    }

    st->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(st->opts, !st->read_only);
    rocksdb_options_increase_parallelism(st->opts, 2);
    rocksdb_options_set_compression(st->opts, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(st->opts, rocksdb_zstd_compression);
    rocksdb_options_set_keep_log_file_num(st->opts, 3);
    /* RocksDB's own LOG file: fatal errors only. Debian's RocksDB is built
     * with its assertions on, and on a full disk an append to LOG that
     * follows a failed one asserts: its free-space watcher logs an ERROR
     * every few seconds until space returns, which aborted islewatchd about
     * 45 s into a full disk (storage audit, 2026-12-08). Without those lines
     * it waits, and RocksDB resumes by itself once space is freed. */
    rocksdb_options_set_info_log_level(st->opts, 4 /* FATAL_LEVEL */);
    rocksdb_options_set_max_total_wal_size(st->opts, 256u << 20);
    rocksdb_options_set_write_buffer_size(st->opts, 16u << 20);   /* bounds RSS: see bench/RESULTS.md */
    /* Keys are series|ts, so every flushed L0 file spans every live series and
     * each L0->L1 compaction rewrites all of L1: waiting for 8 L0 files instead
     * of 4 halves that work. 60 s at 20,000 QoS 1 msg/s: compaction CPU 3.9 s
     * instead of 9 s, the daemon's CPU per message -15 %, p99 unchanged
     * (bench/RESULTS.md, "L0 compaction trigger"). */
    rocksdb_options_set_level0_file_num_compaction_trigger(st->opts, 8);
    st->bbo = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(st->bbo, 16 * 1024);
    rocksdb_options_set_block_based_table_factory(st->opts, st->bbo);

    memtable_hints(st);
    /* Late marks ('R' keys, iw_wbatch_mark_late) are counters: RocksDB's
     * built-in fixed64 add, so marking a sample's hour reads nothing. */
    rocksdb_options_set_uint64add_merge_operator(st->opts);
    if (st->read_only)
        st->db = rocksdb_open_for_read_only(st->opts, st->path, 0, &err);
    else
        st->db = rocksdb_open(st->opts, st->path, &err);
    if (err != NULL) {
        /* RocksDB names its LOCK file when another process (or this one) holds it. */
        const char *hint = st->read_only
            ? " (is the path right? it must be a storage.path the daemon has written)"
            : strstr(err, "/LOCK") != NULL
            ? " (another islewatchd is using it: stop that one, or give this one its own "
              "storage.path)"
            : strstr(err, "Corruption") != NULL || strstr(err, "No such file") != NULL
            ? " (the database is damaged: restore storage.path from a backup, or move it aside "
              "to start with an empty one)"
            : " (make storage.path a directory the daemon's user can create or write)";
        iw_diag_set(diag, NULL, 0, 0, "cannot open the database at %s: %s%s", st->path, err, hint);
        rocksdb_free(err);
        iw_store_close(st);
        return IW_E_STORE;
    }
    st->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(st->wopts, opts->sync_writes);
    st->ropts = rocksdb_readoptions_create();

    int rc = dict_load(st, diag);
    if (rc == IW_OK)
        rc = check_format(st, diag);
    if (rc != IW_OK) {
        iw_store_close(st);
        return rc;
    }
    *out = st;
    return IW_OK;
}

void iw_store_close(struct iw_store *st)
{
    if (st == NULL)
        return;
    if (st->db != NULL)
        rocksdb_close(st->db);
    if (st->wopts) rocksdb_writeoptions_destroy(st->wopts);
    if (st->ropts) rocksdb_readoptions_destroy(st->ropts);
    if (st->opts) rocksdb_options_destroy(st->opts);
    if (st->bbo) rocksdb_block_based_options_destroy(st->bbo);
    if (st->by_id != NULL) {
        for (uint32_t i = 0; i < st->max_series; i++)
            free(atomic_load_explicit(&st->by_id[i], memory_order_relaxed));
    }
    free(st->by_id);
    free(st->slots);
    pthread_mutex_destroy(&st->create_lock);
    free(st->path);
    free(st);
}

/* ---- series dictionary ---- */

static struct iw_series *series_make(uint32_t id, const char *name, size_t len)
{
    struct iw_series *s;
    const char *p1, *p2, *p3;

    if (len == 0 || len > 65535)
        return NULL;
    s = malloc(sizeof(*s) + len + 1);
    if (s == NULL)
        return NULL;
    s->id = id;
    s->len = (uint16_t)len;
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->hash = iw_hash(name, len);
    /* source/site/device/metric: the levels after the first three slashes */
    p1 = memchr(s->name, '/', len);
    p2 = p1 ? memchr(p1 + 1, '/', len - (size_t)(p1 + 1 - s->name)) : NULL;
    p3 = p2 ? memchr(p2 + 1, '/', len - (size_t)(p2 + 1 - s->name)) : NULL;
    s->site_off = p1 ? (uint16_t)(p1 + 1 - s->name) : (uint16_t)len;
    s->device_off = p2 ? (uint16_t)(p2 + 1 - s->name) : (uint16_t)len;
    s->metric_off = p3 ? (uint16_t)(p3 + 1 - s->name) : (uint16_t)len;
    s->device_hash = iw_hash(name, p3 ? (size_t)(p3 - s->name) : len);
    return s;
}

/*
 * Make a series visible to lock-free readers. Called with create_lock held
 * (or single-threaded during open), so slot claims never race each other.
 */
static int dict_publish(struct iw_store *st, uint32_t id, const char *name, size_t len)
{
    struct iw_series *s = series_make(id, name, len);
    size_t i;

    if (s == NULL)
        return IW_E_NOMEM;
    /* by_id first: a reader that finds s in the hash table may go on to look it up by id.
     * release pairs with the acquire load in iw_store_series_by_id. */
    atomic_store_explicit(&st->by_id[id], s, memory_order_release);
    for (i = s->hash & st->slot_mask;; i = (i + 1) & st->slot_mask) {
        if (atomic_load_explicit(&st->slots[i], memory_order_relaxed) == NULL)
            break;
    }
    /* release: the series' fields, written above, are visible to any reader whose
     * acquire load (series_find) sees this pointer. */
    atomic_store_explicit(&st->slots[i], s, memory_order_release);
    return IW_OK;
}

static const struct iw_series *series_find_h(struct iw_store *st, const char *name, size_t len,
                                             uint32_t h)
{
    for (size_t i = h & st->slot_mask;; i = (i + 1) & st->slot_mask) {
        /* acquire: pairs with the release store in dict_publish. */
        const struct iw_series *s = atomic_load_explicit(&st->slots[i], memory_order_acquire);
        if (s == NULL)
            return NULL;
        if (s->hash == h && s->len == len && memcmp(s->name, name, len) == 0)
            return s;
    }
}

const struct iw_series *iw_store_series_find(struct iw_store *st, const char *name, size_t len)
{
    return series_find_h(st, name, len, iw_hash(name, len));
}

const struct iw_series *iw_store_series_by_id(struct iw_store *st, uint32_t id)
{
    if (id >= st->max_series)
        return NULL;
    /* acquire: pairs with the release store in dict_publish. */
    return atomic_load_explicit(&st->by_id[id], memory_order_acquire);
}

uint32_t iw_store_series_count(struct iw_store *st)
{
    /* acquire: every id below the count has its by_id entry published (the
     * counter is advanced after dict_publish). */
    return atomic_load_explicit(&st->next_id, memory_order_acquire);
}

int iw_store_series_intern(struct iw_store *st, const char *name, size_t len,
                           const struct iw_series **out)
{
    return iw_store_series_intern_h(st, name, len, iw_hash(name, len), out);
}

int iw_store_series_intern_h(struct iw_store *st, const char *name, size_t len, uint32_t hash,
                             const struct iw_series **out)
{
    const struct iw_series *s = series_find_h(st, name, len, hash);
    int rc = IW_OK;

    if (IW_LIKELY(s != NULL)) {
        *out = s;
        return IW_OK;
    }
    if (st->read_only)
        return IW_E_STATE;
    /* Slow path, once per new series: serialise creators. */
    pthread_mutex_lock(&st->create_lock);
    s = series_find_h(st, name, len, hash);
    if (s == NULL) {
        uint32_t id = atomic_load_explicit(&st->next_id, memory_order_relaxed);
        char *err = NULL;
        unsigned char idk[5];
        rocksdb_writebatch_t *wb;
        char *dkey;

        if (id >= st->max_series) {
            rc = IW_E_FULL;
            goto out;
        }
        /* Durable before any point refers to it. */
        dkey = malloc(len + 1);
        if (dkey == NULL) {
            rc = IW_E_NOMEM;
            goto out;
        }
        dkey[0] = 'D';
        memcpy(dkey + 1, name, len);
        idk[0] = 'd';
        iw_key_put_u32(idk + 1, id);
        wb = rocksdb_writebatch_create();
        rocksdb_writebatch_put(wb, dkey, len + 1, (const char *)idk + 1, 4);
        rocksdb_writebatch_put(wb, (const char *)idk, 5, name, len);
        rocksdb_write(st->db, st->wopts, wb, &err);
        rocksdb_writebatch_destroy(wb);
        free(dkey);
        if (err != NULL) {
            IW_LOG_ERROR("store", "cannot record new series %.*s: %s", (int)len, name, err);
            rocksdb_free(err);
            rc = IW_E_STORE;
            goto out;
        }
        rc = dict_publish(st, id, name, len);
        if (rc == IW_OK) {
            /* release: pairs with the acquire in iw_store_series_count. */
            atomic_store_explicit(&st->next_id, id + 1, memory_order_release);
            s = iw_store_series_by_id(st, id);
        }
    }
out:
    pthread_mutex_unlock(&st->create_lock);
    *out = s;
    return rc;
}

/* ---- batches ---- */

struct iw_wbatch {
    rocksdb_writebatch_t *wb;
};

struct iw_wbatch *iw_wbatch_new(void)
{
    struct iw_wbatch *b = malloc(sizeof(*b));
    if (b == NULL)
        return NULL;
    b->wb = rocksdb_writebatch_create();
    return b;
}

void iw_wbatch_free(struct iw_wbatch *b)
{
    if (b == NULL)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void iw_wbatch_clear(struct iw_wbatch *b) { rocksdb_writebatch_clear(b->wb); }
size_t iw_wbatch_count(const struct iw_wbatch *b) { return (size_t)rocksdb_writebatch_count(b->wb); }

void iw_wbatch_put_point(struct iw_wbatch *b, uint32_t id, int64_t ts, double v, char flag)
{
    unsigned char k[IW_KEY_LEN];
    unsigned char val[IW_POINT_VAL_MAX];

    iw_key_series_ts(k, 'P', id, ts);
    rocksdb_writebatch_put(b->wb, (const char *)k, sizeof(k), (const char *)val,
                           iw_point_val_encode(v, flag, val));
}

/*
 * 'm' + key: in buf (META_KEY_BUF bytes) when it fits, so the per-message
 * callers (Paho's QoS 2 persistence) allocate nothing; malloc'd otherwise.
 * Release with meta_key_free(k, buf).
 */
#define META_KEY_BUF 256

static char *meta_key(const char *key, size_t *klen, char *buf)
{
    size_t l = strlen(key);
    char *k = l + 1 <= META_KEY_BUF ? buf : malloc(l + 1);
    if (k == NULL)
        return NULL;
    k[0] = 'm';
    memcpy(k + 1, key, l);
    *klen = l + 1;
    return k;
}

static void meta_key_free(char *k, const char *buf)
{
    if (k != buf)
        free(k);
}

void iw_wbatch_put_meta(struct iw_wbatch *b, const char *key, const void *val, size_t len)
{
    char buf[META_KEY_BUF];
    size_t kl;
    char *k = meta_key(key, &kl, buf);
    if (k == NULL)
        return;
    rocksdb_writebatch_put(b->wb, k, kl, val, len);
    meta_key_free(k, buf);
}

void iw_wbatch_delete_meta(struct iw_wbatch *b, const char *key)
{
    char buf[META_KEY_BUF];
    size_t kl;
    char *k = meta_key(key, &kl, buf);
    if (k == NULL)
        return;
    rocksdb_writebatch_delete(b->wb, k, kl);
    meta_key_free(k, buf);
}

void iw_wbatch_mark_late(struct iw_wbatch *b, uint32_t id, int64_t ts, uint32_t n)
{
    iw_store_merge_late(b, id, iw_floor_to(ts, IW_MS_PER_HOUR), (int64_t)n);
}

void iw_store_merge_late(struct iw_wbatch *b, uint32_t id, int64_t hour, int64_t n)
{
    unsigned char k[IW_KEY_LEN], v[8];
    uint64_t u = (uint64_t)n;                /* two's complement: adding -n takes n away */
    iw_key_series_ts(k, 'R', id, hour);
    for (int i = 0; i < 8; i++)              /* the operator reads fixed64 little-endian */
        v[i] = (unsigned char)(u >> (8 * i));
    rocksdb_writebatch_merge(b->wb, (const char *)k, sizeof(k), (const char *)v, sizeof(v));
}

void iw_store_put_raw(struct iw_wbatch *b, const void *k, size_t kl, const void *v, size_t vl)
{
    rocksdb_writebatch_put(b->wb, k, kl, v, vl);
}

void iw_store_delete_raw(struct iw_wbatch *b, const void *k, size_t kl)
{
    rocksdb_writebatch_delete(b->wb, k, kl);
}

int iw_store_write(struct iw_store *st, struct iw_wbatch *b, struct iw_diag *diag)
{
    char *err = NULL;

    if (st->read_only)
        return IW_E_STATE;
    if (IW_UNLIKELY(st->slow_write_ms > 0)) {
        struct timespec ts = { st->slow_write_ms / 1000, (st->slow_write_ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    rocksdb_write(st->db, st->wopts, b->wb, &err);
    if (err != NULL) {
        iw_diag_set(diag, NULL, 0, 0, "RocksDB write to %s failed: %s (check disk space and "
                    "permissions)", st->path, err);
        rocksdb_free(err);
        return IW_E_STORE;
    }
    return IW_OK;
}

/* ---- metadata ---- */

int iw_store_meta_put(struct iw_store *st, const char *key, const void *val, size_t len)
{
    struct iw_wbatch b = { rocksdb_writebatch_create() };
    iw_wbatch_put_meta(&b, key, val, len);
    int rc = iw_store_write(st, &b, NULL);
    rocksdb_writebatch_destroy(b.wb);
    return rc;
}

int iw_store_meta_delete(struct iw_store *st, const char *key)
{
    struct iw_wbatch b = { rocksdb_writebatch_create() };
    iw_wbatch_delete_meta(&b, key);
    int rc = iw_store_write(st, &b, NULL);
    rocksdb_writebatch_destroy(b.wb);
    return rc;
}

int iw_store_meta_get(struct iw_store *st, const char *key, void **val, size_t *len)
{
    char buf[META_KEY_BUF];
    size_t kl;
    char *err = NULL;
    char *k = meta_key(key, &kl, buf);
    char *v;

    *val = NULL;
    *len = 0;
    if (k == NULL)
        return IW_E_NOMEM;
    v = rocksdb_get(st->db, st->ropts, k, kl, len, &err);
    meta_key_free(k, buf);
    if (err != NULL) {
        IW_LOG_ERROR("store", "reading %s: %s", key, err);
        rocksdb_free(err);
        return IW_E_STORE;
    }
    if (v == NULL)
        return IW_E_NOTFOUND;
    *val = malloc(*len + 1);
    if (*val == NULL) {
        rocksdb_free(v);
        return IW_E_NOMEM;
    }
    memcpy(*val, v, *len);
    ((char *)*val)[*len] = '\0';          /* convenient for text values */
    rocksdb_free(v);
    return IW_OK;
}

int iw_store_meta_scan(struct iw_store *st, const char *prefix,
                       int (*cb)(void *ctx, const char *key, size_t klen,
                                 const void *val, size_t vlen), void *ctx)
{
    char buf[META_KEY_BUF];
    size_t pl;
    char *p = meta_key(prefix, &pl, buf);
    rocksdb_iterator_t *it;

    if (p == NULL)
        return IW_E_NOMEM;
    it = rocksdb_create_iterator(st->db, st->ropts);
    for (rocksdb_iter_seek(it, p, pl); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl < pl || memcmp(k, p, pl) != 0)
            break;
        if (cb(ctx, k + 1, kl - 1, v, vl) != 0)
            break;
    }
    rocksdb_iter_destroy(it);
    meta_key_free(p, buf);
    return IW_OK;
}

uint64_t iw_store_disk_bytes(struct iw_store *st)
{
    char *v = rocksdb_property_value(st->db, "rocksdb.live-sst-files-size");
    uint64_t n = v ? strtoull(v, NULL, 10) : 0;
    rocksdb_free(v);
    return n;
}

void iw_store_compact(struct iw_store *st)
{
    /* Force the bottommost level to be rewritten: a lone L0 file would
     * otherwise just be moved down, keeping its light (lz4) compression. */
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
    rocksdb_compact_range_opt(st->db, co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
}
