/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring_bench — throughput and latency of the lock-free queues.
 *
 * For each row, producers push ITEMS items in total into one queue and one
 * consumer drains it, all threads spinning (with a yield every 64 misses)
 * when the queue is full or empty:
 *   spsc  1 producer, pointers to messages from a pool (the pipeline's shape:
 *         the consumer reads memory the producer wrote);
 *   mpmc  1 or 2 producers, 40-byte elements copied in and out (a sample).
 * Capacities 64, 1024 and 65536.
 *
 * Throughput is items / wall time from the start signal to the last pop.
 * Latency is push-to-pop time of every 16th item (clock reads on every item
 * would cost more than the queue), including any time the producer spent
 * waiting for room. The producers never pause: when the consumer is the
 * slower side the queue runs full and latency is mostly queueing delay
 * (about capacity x the per-item time), the worst case the pipeline sees under
 * overload; when the producers are slower it stays near the hand-off cost.
 * Run on an idle machine: with more runnable threads than cores, a
 * descheduled thread shows up as a multi-millisecond maximum.
 *
 * Usage: ring_bench [-n ITEMS]      (default 2000000)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "islewatch/mpmc.h"
#include "islewatch/ring.h"

#define STAMP_EVERY   16
#define MAX_PRODUCERS 2
#define DEFAULT_ITEMS 2000000ULL

enum queue_kind { Q_SPSC, Q_MPMC };

struct row {
    enum queue_kind kind;
    unsigned producers;
    size_t capacity;
};

static const struct row rows[] = {
    { Q_SPSC, 1, 64 }, { Q_SPSC, 1, 1024 }, { Q_SPSC, 1, 65536 },
    { Q_MPMC, 1, 64 }, { Q_MPMC, 1, 1024 }, { Q_MPMC, 1, 65536 },
    { Q_MPMC, 2, 64 }, { Q_MPMC, 2, 1024 }, { Q_MPMC, 2, 65536 },
};

/* SPSC payload: the ring carries pointers to these. */
struct msg {
    int64_t  t_ns;        /* push time, or 0 when not sampled */
    uint64_t seq;
};

/* MPMC payload: 40 bytes, like a decoded sample. */
struct elem {
    int64_t  t_ns;
    uint32_t producer;
    uint32_t pad;
    uint64_t seq;
    uint64_t extra[2];
};

struct bench {
    const struct row *row;
    uint64_t items;                 /* total over all producers */
    struct iw_spsc ring;
    struct iw_mpmc q;
    struct msg *pool;               /* SPSC: 2 x capacity messages, reused */
    size_t pool_len;
    atomic_bool go;                 /* start signal, so thread creation is not timed */
    int64_t t_start, t_end;
    int64_t *lat;                   /* consumer-owned latency samples */
    size_t nlat, lat_cap;
};

struct producer_arg {
    struct bench *b;
    unsigned id;
    uint64_t count;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void relax(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
}

static void wait_for_go(struct bench *b)
{
    /* Acquire pairs with the release in run_row: the bench state set up
     * before the signal is visible to every thread. */
    while (!atomic_load_explicit(&b->go, memory_order_acquire))
        sched_yield();
}

/* ---- producers and consumers ------------------------------------------------ */

static void *spsc_producer(void *arg)
{
    struct producer_arg *pa = arg;
    struct bench *b = pa->b;
    unsigned spins = 0;

    wait_for_go(b);
    for (uint64_t i = 0; i < pa->count; i++) {
        /* Pool slot reuse is safe: this slot last carried item i - 2*cap.
         * Our push of item i - 1 succeeded, so the consumer had popped item
         * i - 1 - cap (ring.h A1/R2), and it pops in order, so it was done
         * reading item i - 2*cap before that. */
        struct msg *m = &b->pool[i % b->pool_len];

        m->seq = i;
        m->t_ns = i % STAMP_EVERY == 0 ? now_ns() : 0;
        while (!iw_spsc_push(&b->ring, m))
            relax(&spins);
    }
    return NULL;
}

static void record_latency(struct bench *b, int64_t t_push)
{
    if (t_push != 0 && b->nlat < b->lat_cap)
        b->lat[b->nlat++] = now_ns() - t_push;
}

static void *spsc_consumer(void *arg)
{
    struct bench *b = arg;
    unsigned spins = 0;

    wait_for_go(b);
    for (uint64_t got = 0; got < b->items; got++) {
        struct msg *m;

        while ((m = iw_spsc_pop(&b->ring)) == NULL)
            relax(&spins);
        record_latency(b, m->t_ns);
    }
    b->t_end = now_ns();
    return NULL;
}

static void *mpmc_producer(void *arg)
{
    struct producer_arg *pa = arg;
    struct bench *b = pa->b;
    unsigned spins = 0;
    struct elem e = { .producer = pa->id };

    wait_for_go(b);
    for (uint64_t i = 0; i < pa->count; i++) {
        e.seq = i;
        e.t_ns = i % STAMP_EVERY == 0 ? now_ns() : 0;
        while (iw_mpmc_push(&b->q, &e) == IW_E_FULL)
            relax(&spins);
    }
    return NULL;
}

static void *mpmc_consumer(void *arg)
{
    struct bench *b = arg;
    unsigned spins = 0;
    struct elem e;

    wait_for_go(b);
    for (uint64_t got = 0; got < b->items; got++) {
        while (iw_mpmc_pop(&b->q, &e) != IW_OK)
            relax(&spins);
        record_latency(b, e.t_ns);
    }
    b->t_end = now_ns();
    return NULL;
}

/* ---- one row ---------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t percentile(const int64_t *sorted, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static int setup_queue(struct bench *b)
{
    const struct row *r = b->row;
    int rc;

    if (r->kind == Q_MPMC)
        return iw_mpmc_init(&b->q, r->capacity, sizeof(struct elem));
    rc = iw_spsc_init(&b->ring, r->capacity);
    if (rc != IW_OK)
        return rc;
    b->pool_len = 2 * r->capacity;
    b->pool = calloc(b->pool_len, sizeof(*b->pool));
    if (b->pool == NULL) {
        iw_spsc_fini(&b->ring);
        return IW_E_NOMEM;
    }
    return IW_OK;
}

static void teardown_queue(struct bench *b)
{
    if (b->row->kind == Q_MPMC) {
        iw_mpmc_fini(&b->q);
    } else {
        iw_spsc_fini(&b->ring);
        free(b->pool);
    }
}

/* Run one row and print its line. Returns 0, or -1 after printing why not. */
static int run_row(struct bench *b)
{
    const struct row *r = b->row;
    struct producer_arg pa[MAX_PRODUCERS];
    pthread_t prod[MAX_PRODUCERS], cons;
    bool mpmc = r->kind == Q_MPMC;
    const char *name = mpmc ? "mpmc" : "spsc";
    double secs;

    if (setup_queue(b) != IW_OK) {
        fprintf(stderr, "ring_bench: cannot create %s queue of capacity %zu: out of memory\n",
                name, r->capacity);
        return -1;
    }
    b->lat_cap = (size_t)(b->items / STAMP_EVERY) + MAX_PRODUCERS;
    b->lat = malloc(b->lat_cap * sizeof(*b->lat));
    if (b->lat == NULL) {
        fprintf(stderr, "ring_bench: no memory for %zu latency samples; try a smaller -n\n",
                b->lat_cap);
        teardown_queue(b);
        return -1;
    }
    b->nlat = 0;
    atomic_init(&b->go, false);

    if (pthread_create(&cons, NULL, mpmc ? mpmc_consumer : spsc_consumer, b) != 0) {
        fprintf(stderr, "ring_bench: pthread_create failed\n");
        exit(1);
    }
    for (unsigned i = 0; i < r->producers; i++) {
        /* Split the items evenly; the first producer takes the remainder. */
        pa[i] = (struct producer_arg){ b, i, b->items / r->producers };
        if (i == 0)
            pa[i].count += b->items % r->producers;
        if (pthread_create(&prod[i], NULL, mpmc ? mpmc_producer : spsc_producer, &pa[i]) != 0) {
            fprintf(stderr, "ring_bench: pthread_create failed\n");
            exit(1);
        }
    }
    b->t_start = now_ns();
    /* Release: pairs with the acquire in wait_for_go. */
    atomic_store_explicit(&b->go, true, memory_order_release);
    for (unsigned i = 0; i < r->producers; i++)
        pthread_join(prod[i], NULL);
    pthread_join(cons, NULL);

    secs = (double)(b->t_end - b->t_start) / 1e9;
    qsort(b->lat, b->nlat, sizeof(*b->lat), cmp_i64);
    printf("%-5s %4u %8zu %12.2f %10lld %10lld %10lld %10lld\n",
           name, r->producers, r->capacity, (double)b->items / secs / 1e6,
           (long long)percentile(b->lat, b->nlat, 50.0),
           (long long)percentile(b->lat, b->nlat, 99.0),
           (long long)percentile(b->lat, b->nlat, 99.9),
           (long long)(b->nlat ? b->lat[b->nlat - 1] : 0));
    fflush(stdout);
    free(b->lat);
    teardown_queue(b);
    return 0;
}

/* ---- command line ----------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: ring_bench [-n ITEMS]\n"
               "  -n ITEMS  items moved per row, over all producers (default %llu)\n",
            (unsigned long long)DEFAULT_ITEMS);
}

static int parse_items(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || s[0] == '-' || v == 0 ||
        v > (1ULL << 40)) {
        fprintf(stderr, "ring_bench: -n expects an item count from 1 to 2^40, got '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;           /* large padded queues: not on the stack */
    uint64_t items = DEFAULT_ITEMS;
    int opt, failures = 0;

    while ((opt = getopt(argc, argv, "n:h")) != -1) {
        switch (opt) {
        case 'n':
            if (parse_items(optarg, &items) != 0)
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "ring_bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    printf("ring_bench: %llu items per row, %ld CPUs online; latency = push-to-pop of\n"
           "every %dth item with the queue kept full by the producers (queueing included)\n\n",
           (unsigned long long)items, sysconf(_SC_NPROCESSORS_ONLN), STAMP_EVERY);
    printf("%-5s %4s %8s %12s %10s %10s %10s %10s\n",
           "queue", "prod", "capacity", "Mitems/s", "p50 ns", "p99 ns", "p99.9 ns", "max ns");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(&b, 0, sizeof(b));
        b.row = &rows[i];
        b.items = items;
        if (run_row(&b) != 0)
            failures++;
    }
    return failures == 0 ? 0 : 1;
}
