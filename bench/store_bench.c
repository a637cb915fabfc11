/*
 * RocksDB write throughput with islewatch's key layout, versus points per
 * batch and sync: what one delivery thread can make durable per second.
 * Keys interleave across series as live data does; one point per series per
 * minute; values are two-decimal readings on a random walk (pH-like), as a
 * payload's text gives them. Bytes per point after a full compaction, raw
 * points alone and with their minute and hour rollups.
 *
 *   build/release/bench/store_bench [points] [series]
 */
#include <stdio.h>
#include <stdlib.h>

#include "islewatch/clock.h"
#include "islewatch/store.h"

int main(int argc, char **argv)
{
    long points = argc > 1 ? strtol(argv[1], NULL, 10) : 400000;
    long nseries = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    static const int batches[] = { 1, 8, 64, 512 };

    printf("%8s %6s %14s %12s %16s\n", "batch", "sync", "points/s", "bytes/point",
           "with rollups");
    for (int sync = 0; sync <= 1; sync++) {
        for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
            char dir[] = "/tmp/iw-store-bench-XXXXXX";
            struct iw_store *st;
            struct iw_diag diag = {0};
            long n = sync ? points / 20 : points;       /* fsync is slow: fewer points */
            if (mkdtemp(dir) == NULL)
                return 1;
            struct iw_store_opts o = { .path = dir, .sync_writes = sync };
            if (iw_store_open(&o, &st, &diag) != IW_OK) {
                fprintf(stderr, "%s\n", iw_diag_first(&diag));
                return 1;
            }
            uint32_t *ids = malloc((size_t)nseries * sizeof(*ids));
            for (long s = 0; s < nseries; s++) {
                char name[64];
                const struct iw_series *se;
                int l = snprintf(name, sizeof(name), "water/site%ld/d%ld/ph", s / 10, s);
                if (iw_store_series_intern(st, name, (size_t)l, &se) != IW_OK)
                    return 1;
                ids[s] = se->id;
            }
            struct iw_wbatch *b = iw_wbatch_new();
            int *walk = calloc((size_t)nseries, sizeof(*walk));
            srand(7);
            int64_t t0 = iw_mono_ns();
            for (long i = 0; i < n; i++) {
                int *w = &walk[i % nseries];
                *w += rand() % 7 - 3;                       /* pH 6.00 .. 9.00 */
                if (*w < -100 || *w > 200) *w = 0;
                iw_wbatch_put_point(b, ids[i % nseries], 1764417600000LL + (i / nseries) * 60000,
                                    (double)(700 + *w) / 100.0, 0);
                if ((i + 1) % batches[k] == 0 || i + 1 == n) {
                    if (iw_store_write(st, b, &diag) != IW_OK)
                        return 1;
                    iw_wbatch_clear(b);
                }
            }
            int64_t t1 = iw_mono_ns();
            iw_store_compact(st);
            double bpp = (double)iw_store_disk_bytes(st) / (double)n;
            int64_t end = 1764417600000LL + (n / nseries + 1) * 60000;
            for (long s = 0; s < nseries; s++)
                if (iw_store_rollup_range(st, ids[s], 1764417600000LL, end, true) != IW_OK)
                    return 1;
            iw_store_compact(st);
            double bpp_all = (double)iw_store_disk_bytes(st) / (double)n;
            printf("%8d %6d %14.0f %12.2f %16.2f\n", batches[k], sync,
                   (double)n * 1e9 / (double)(t1 - t0), bpp, bpp_all);
            free(walk);
            iw_wbatch_free(b);
            free(ids);
            iw_store_close(st);
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
            if (system(cmd) != 0)
                return 1;
        }
    }
    return 0;
}
