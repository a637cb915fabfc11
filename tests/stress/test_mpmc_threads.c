/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MPMC queue under real threads (label "stress").
 *
 * P producers each push N elements tagged (producer, seq) with a checksum
 * spread over the whole 40-byte element; C consumers pop until they receive a
 * stop element, which the main thread pushes (one per consumer) after every
 * producer has finished. Checked afterwards:
 *   - every (producer, seq) was received exactly once, across all consumers;
 *   - within each consumer, each producer's seqs strictly increase (FIFO per
 *     producer holds in whatever subset a single consumer observes);
 *   - no element was torn (every word matches its tag);
 *   - the queue is empty at the end.
 * Small capacities keep the full and empty paths busy; one case uses the
 * waiting helpers (push_wait / pop_wait) to exercise their backoff, and one
 * has a single consumer (the MPSC fan-in shape).
 *
 * Two harnesses, one set of cases and checks: Criterion in normal and ASan
 * builds, a plain main() under ThreadSanitizer, where Criterion 2.4 cannot
 * start (see tests/stress/test_ring_threads.c). The concurrency-only build
 * links iw_lockfree and Criterion only, so this file includes no islewatch
 * module besides mpmc.h.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/mpmc.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#define MAX_PRODUCERS 4
#define MAX_CONSUMERS 2
#define STOP_PRODUCER UINT32_MAX

struct mpmc_case {
    const char *name;
    unsigned producers;
    unsigned consumers;
    size_t capacity;
    uint32_t per_producer;
    bool use_wait_helpers;
};

/*
 * Millions of elements in total, while the whole file stays within ~20 s
 * under TSan on 2 cores.
 */
static struct mpmc_case mpmc_cases[] = {
    { "4x2 cap 64", 4, 2, 64, 500000, false },
    { "4x2 cap 1024", 4, 2, 1024, 500000, false },
    { "4x1 (MPSC) cap 64", 4, 1, 64, 500000, false },
    { "4x2 cap 2", 4, 2, 2, 100000, false },
    { "4x2 cap 64, wait helpers", 4, 2, 64, 200000, true },
};

/* 40 bytes, the size of a decoded sample; every word depends on the tag. */
struct tagged {
    uint32_t producer;
    uint32_t seq;
    uint64_t check;
    uint64_t word[3];
};

struct consumer {
    struct mpmc_run *run;
    unsigned char *seen;              /* [producer * per_producer + seq] counts */
    uint32_t next_min[MAX_PRODUCERS]; /* smallest seq still acceptable, per producer */
    size_t received;
    size_t order_errors;
    size_t torn;
    size_t bad_tag;
};

struct producer {
    struct mpmc_run *run;
    uint32_t id;
};

struct mpmc_run {
    struct iw_mpmc q;
    const struct mpmc_case *c;
    struct producer prods[MAX_PRODUCERS];
    struct consumer cons[MAX_CONSUMERS];
    /* Totals, computed by the main thread after every join. */
    int setup_rc;
    size_t received, order_errors, torn, bad_tag, missing, duplicated;
    bool leftover;
    size_t final_depth;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static struct tagged make_tagged(uint32_t producer, uint32_t seq)
{
    uint64_t h = mix(((uint64_t)producer << 32) | seq);
    struct tagged t = {
        .producer = producer, .seq = seq, .check = h,
        .word = { h ^ 1, h ^ 2, h ^ 3 },
    };
    return t;
}

static bool tagged_intact(const struct tagged *t)
{
    struct tagged want = make_tagged(t->producer, t->seq);
    return memcmp(t, &want, sizeof(want)) == 0;
}

/* Busy-wait politely: up to 6 threads share 2 cores. */
static void relax(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
}

static void *producer_main(void *arg)
{
    const struct producer *me = arg;
    struct mpmc_run *run = me->run;
    unsigned spins = 0;

    for (uint32_t seq = 0; seq < run->c->per_producer; seq++) {
        struct tagged t = make_tagged(me->id, seq);

        if (run->c->use_wait_helpers) {
            iw_mpmc_push_wait(&run->q, &t);
            continue;
        }
        while (iw_mpmc_push(&run->q, &t) == IW_E_FULL)
            relax(&spins);
    }
    return NULL;
}

static int pop_one(struct mpmc_run *run, struct tagged *t, unsigned *spins)
{
    int rc;

    if (run->c->use_wait_helpers) {
        /* 2 ms keeps the sleeping end of the backoff in play. */
        while ((rc = iw_mpmc_pop_wait(&run->q, t, 2000000)) == IW_E_EMPTY)
            continue;
        return rc;
    }
    while ((rc = iw_mpmc_pop(&run->q, t)) == IW_E_EMPTY)
        relax(spins);
    return rc;
}

static void *consumer_main(void *arg)
{
    struct consumer *me = arg;
    struct mpmc_run *run = me->run;
    uint32_t per = run->c->per_producer;
    unsigned spins = 0;
    struct tagged t;

    for (;;) {
        if (pop_one(run, &t, &spins) != IW_OK) {
            me->bad_tag++;              /* IW_E_INVAL: cannot happen with a valid queue */
            return NULL;
        }
        if (t.producer == STOP_PRODUCER)
            return NULL;
        if (!tagged_intact(&t)) {
            me->torn++;
            continue;
        }
        if (t.producer >= run->c->producers || t.seq >= per) {
            me->bad_tag++;
            continue;
        }
        if (t.seq < me->next_min[t.producer])
            me->order_errors++;
        me->next_min[t.producer] = t.seq + 1;
        if (me->seen[(size_t)t.producer * per + t.seq] < UINT8_MAX)
            me->seen[(size_t)t.producer * per + t.seq]++;
        me->received++;
    }
}

static void tally(struct mpmc_run *run, size_t total)
{
    const struct mpmc_case *c = run->c;

    for (unsigned i = 0; i < c->consumers; i++) {
        run->received += run->cons[i].received;
        run->order_errors += run->cons[i].order_errors;
        run->torn += run->cons[i].torn;
        run->bad_tag += run->cons[i].bad_tag;
    }
    for (size_t idx = 0; idx < total; idx++) {
        unsigned n = 0;

        for (unsigned i = 0; i < c->consumers; i++)
            n += run->cons[i].seen[idx];
        run->missing += n == 0;
        run->duplicated += n > 1;
    }
}

/* Run one case to completion; results land in *run. */
static void run_mpmc(const struct mpmc_case *c, struct mpmc_run *run)
{
    pthread_t prod[MAX_PRODUCERS], cons[MAX_CONSUMERS];
    size_t total = (size_t)c->producers * c->per_producer;
    struct tagged extra;

    memset(run, 0, sizeof(*run));
    run->c = c;
    if (c->producers > MAX_PRODUCERS || c->consumers > MAX_CONSUMERS) {
        run->setup_rc = IW_E_INVAL;
        return;
    }
    run->setup_rc = iw_mpmc_init(&run->q, c->capacity, sizeof(struct tagged));
    if (run->setup_rc != IW_OK)
        return;
    for (unsigned i = 0; i < c->consumers; i++) {
        run->cons[i].run = run;
        run->cons[i].seen = calloc(total, 1);
        if (run->cons[i].seen == NULL) {
            fprintf(stderr, "test_mpmc_threads: no memory for %zu flags\n", total);
            abort();
        }
    }

    /* A failed create would leave the others waiting for ever: abort. */
    for (unsigned i = 0; i < c->consumers; i++)
        if (pthread_create(&cons[i], NULL, consumer_main, &run->cons[i]) != 0)
            abort();
    for (unsigned i = 0; i < c->producers; i++) {
        run->prods[i] = (struct producer){ run, i };
        if (pthread_create(&prod[i], NULL, producer_main, &run->prods[i]) != 0)
            abort();
    }
    for (unsigned i = 0; i < c->producers; i++)
        pthread_join(prod[i], NULL);
    /* Every real element took its ticket before these, so FIFO puts them last. */
    for (unsigned i = 0; i < c->consumers; i++) {
        struct tagged stop = { .producer = STOP_PRODUCER };
        iw_mpmc_push_wait(&run->q, &stop);
    }
    for (unsigned i = 0; i < c->consumers; i++)
        pthread_join(cons[i], NULL);

    tally(run, total);
    run->leftover = iw_mpmc_pop(&run->q, &extra) != IW_E_EMPTY;
    run->final_depth = iw_mpmc_depth(&run->q);
    for (unsigned i = 0; i < c->consumers; i++)
        free(run->cons[i].seen);
    iw_mpmc_fini(&run->q);
}

/* True if every check passed; otherwise why[] says which failed. */
static bool mpmc_verdict(const struct mpmc_case *c, const struct mpmc_run *run,
                         char *why, size_t len)
{
    size_t total = (size_t)c->producers * c->per_producer;

    if (run->setup_rc != IW_OK)
        snprintf(why, len, "%s: set-up failed (%d)", c->name, run->setup_rc);
    else if (run->torn != 0 || run->bad_tag != 0)
        snprintf(why, len, "%s: %zu torn and %zu badly tagged elements",
                 c->name, run->torn, run->bad_tag);
    else if (run->missing != 0 || run->duplicated != 0 || run->received != total)
        snprintf(why, len, "%s: received %zu of %zu; %zu never arrived, %zu more than once",
                 c->name, run->received, total, run->missing, run->duplicated);
    else if (run->order_errors != 0)
        snprintf(why, len, "%s: %zu per-producer order breaks seen by a consumer",
                 c->name, run->order_errors);
    else if (run->leftover || run->final_depth != 0)
        snprintf(why, len, "%s: queue not empty at the end (depth %zu)",
                 c->name, run->final_depth);
    else
        return true;
    return false;
}

/* The run state is large and padded: keep it off the test thread's stack. */
static struct mpmc_run the_run;

#ifdef UNDER_TSAN

int main(void)
{
    int failures = 0;
    char why[256];

    for (size_t i = 0; i < IW_ARRAY_LEN(mpmc_cases); i++) {
        const struct mpmc_case *c = &mpmc_cases[i];

        run_mpmc(c, &the_run);
        if (mpmc_verdict(c, &the_run, why, sizeof(why))) {
            printf("ok   mpmc %s, %zu elements\n", c->name,
                   (size_t)c->producers * c->per_producer);
        } else {
            printf("FAIL %s\n", why);
            failures++;
        }
    }
    return failures == 0 ? 0 : 1;
}

#else

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

ParameterizedTestParameters(mpmc_threads, every_item_once_per_producer_fifo)
{
    return cr_make_param_array(struct mpmc_case, mpmc_cases, IW_ARRAY_LEN(mpmc_cases));
}

ParameterizedTest(struct mpmc_case *c, mpmc_threads, every_item_once_per_producer_fifo,
                  .timeout = 120)
{
    char why[256];

    run_mpmc(c, &the_run);
    cr_assert(mpmc_verdict(c, &the_run, why, sizeof(why)), "%s", why);
}

#endif
