/* Internals shared by store.c and store_query.c. */
#ifndef ISLEWATCH_STORE_INT_H
#define ISLEWATCH_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <rocksdb/c.h>

#include "islewatch/store.h"

#define IW_KEY_LEN 13      /* kind(1) id(4) ts(8) */

struct iw_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *bbo;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    char *path;
    bool read_only;
    bool dense_minutes;               /* format 2: an 'M' key for one-point minutes too */
    int64_t slow_write_ms;
    /* Dictionary: open-addressing table read without locks; by_id indexed by id. */
    uint32_t max_series;
    size_t slot_mask;
    _Atomic(struct iw_series *) *slots;
    _Atomic(struct iw_series *) *by_id;
    _Atomic uint32_t next_id;
    pthread_mutex_t create_lock;      /* new series only */
};

void iw_key_put_u32(unsigned char *p, uint32_t v);
uint32_t iw_key_get_u32(const unsigned char *p);
void iw_key_put_ts(unsigned char *p, int64_t ts);
int64_t iw_key_get_ts(const unsigned char *p);
void iw_key_series_ts(unsigned char k[IW_KEY_LEN], char kind, uint32_t id, int64_t ts);
void iw_store_put_raw(struct iw_wbatch *b, const void *k, size_t kl, const void *v, size_t vl);
void iw_store_delete_raw(struct iw_wbatch *b, const void *k, size_t kl);
/* Add n (negative: take away) to the late mark of (id, hour): an 'R' key. */
void iw_store_merge_late(struct iw_wbatch *b, uint32_t id, int64_t hour, int64_t n);

#endif
