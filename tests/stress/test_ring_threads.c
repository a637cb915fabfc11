/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SPSC ring under real threads (label "stress").
 *
 * One producer pushes the integers 1..N as pointers, one consumer checks that
 * exactly 1..N come out, in order, and a third thread keeps reading
 * iw_spsc_depth, which must stay within [0, capacity]. Small capacities make
 * the full and empty paths (and the cached-index refreshes) run constantly.
 *
 * Two harnesses, one set of cases and checks:
 *   - normal and ASan builds: Criterion parameterised tests;
 *   - ThreadSanitizer builds: a plain main() that runs every case and exits
 *     non-zero on a failed check (TSan itself exits 66 on a race report).
 *     Criterion 2.4 cannot start under TSan: its runner maps a shared arena at
 *     random fixed addresses that TSan reserves ("Could not initialize
 *     inheritable arena", Criterion issue #274), with or without ASLR.
 * The concurrency-only build links iw_lockfree and Criterion only, so this
 * file includes no islewatch module besides ring.h.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "islewatch/ring.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/*
 * Item count per case: millions of full/empty transitions, while the whole
 * file stays within ~20 s under TSan on 2 cores.
 */
#define SPSC_ITEMS 3000000u

struct spsc_case {
    size_t capacity;
    size_t items;
};

static struct spsc_case spsc_cases[] = {
    { 2, SPSC_ITEMS / 3 },      /* nearly every push or pop meets full or empty */
    { 64, SPSC_ITEMS },
    { 1024, SPSC_ITEMS },
};

struct spsc_run {
    struct iw_spsc ring;
    size_t items;
    int setup_rc;               /* IW_OK, or why the run did not happen */
    /* Written by the consumer, read by the main thread after join. */
    size_t received;
    size_t out_of_order;
    uintptr_t first_bad_got, first_bad_want;
    /* Written by the observer, read after join. */
    size_t depth_samples;
    size_t depth_over_capacity;
    /* Read after join (the ring is still initialised then). */
    bool extra_item;
    size_t final_depth;
    atomic_bool consumer_done;
};

/* Busy-wait politely: 2 cores host 3 threads, so yield now and then. */
static void relax(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
}

static void *producer_main(void *arg)
{
    struct spsc_run *run = arg;
    unsigned spins = 0;

    for (uintptr_t i = 1; i <= run->items; i++) {
        while (!iw_spsc_push(&run->ring, (void *)i))
            relax(&spins);
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    struct spsc_run *run = arg;
    unsigned spins = 0;
    uintptr_t want = 1;

    while (run->received < run->items) {
        void *p = iw_spsc_pop(&run->ring);

        if (p == NULL) {
            relax(&spins);
            continue;
        }
        if ((uintptr_t)p != want && run->out_of_order++ == 0) {
            run->first_bad_got = (uintptr_t)p;
            run->first_bad_want = want;
        }
        want = (uintptr_t)p + 1;       /* resynchronise so one fault counts once */
        run->received++;
    }
    /* Release/acquire with the observer's loop test; the flag guards no data. */
    atomic_store_explicit(&run->consumer_done, true, memory_order_release);
    return NULL;
}

static void *observer_main(void *arg)
{
    struct spsc_run *run = arg;
    size_t cap = iw_spsc_capacity(&run->ring);

    while (!atomic_load_explicit(&run->consumer_done, memory_order_acquire)) {
        if (iw_spsc_depth(&run->ring) > cap)
            run->depth_over_capacity++;
        run->depth_samples++;
        sched_yield();
    }
    return NULL;
}

/* Run one case to completion; results land in *run. */
static void run_spsc(const struct spsc_case *c, struct spsc_run *run)
{
    pthread_t prod, cons, obs;

    *run = (struct spsc_run){ .items = c->items };
    atomic_init(&run->consumer_done, false);
    run->setup_rc = iw_spsc_init(&run->ring, c->capacity);
    if (run->setup_rc != IW_OK)
        return;
    if (pthread_create(&cons, NULL, consumer_main, run) != 0) {
        run->setup_rc = IW_E_STATE;
        iw_spsc_fini(&run->ring);
        return;
    }
    /* Should a later create fail, the consumer would wait for ever: abort. */
    if (pthread_create(&obs, NULL, observer_main, run) != 0 ||
        pthread_create(&prod, NULL, producer_main, run) != 0) {
        fprintf(stderr, "test_ring_threads: pthread_create failed\n");
        abort();
    }
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    pthread_join(obs, NULL);
    run->extra_item = iw_spsc_pop(&run->ring) != NULL;
    run->final_depth = iw_spsc_depth(&run->ring);
    iw_spsc_fini(&run->ring);
}

/* True if every check passed; otherwise why[] says which failed. */
static bool spsc_verdict(const struct spsc_case *c, const struct spsc_run *run,
                         char *why, size_t len)
{
    if (run->setup_rc != IW_OK)
        snprintf(why, len, "capacity %zu: set-up failed (%d)", c->capacity, run->setup_rc);
    else if (run->received != c->items)
        snprintf(why, len, "capacity %zu: received %zu of %zu items",
                 c->capacity, run->received, c->items);
    else if (run->out_of_order != 0)
        snprintf(why, len, "capacity %zu: %zu items out of order, first got %zu want %zu",
                 c->capacity, run->out_of_order, (size_t)run->first_bad_got,
                 (size_t)run->first_bad_want);
    else if (run->extra_item || run->final_depth != 0)
        snprintf(why, len, "capacity %zu: ring not empty after the last item (depth %zu)",
                 c->capacity, run->final_depth);
    else if (run->depth_over_capacity != 0)
        snprintf(why, len, "capacity %zu: depth exceeded capacity in %zu of %zu samples",
                 c->capacity, run->depth_over_capacity, run->depth_samples);
    else
        return true;
    return false;
}

/* The run state is large and padded: keep it off the test thread's stack. */
static struct spsc_run the_run;

#ifdef UNDER_TSAN

int main(void)
{
    int failures = 0;
    char why[256];

    for (size_t i = 0; i < IW_ARRAY_LEN(spsc_cases); i++) {
        const struct spsc_case *c = &spsc_cases[i];

        run_spsc(c, &the_run);
        if (spsc_verdict(c, &the_run, why, sizeof(why))) {
            printf("ok   spsc capacity %zu, %zu items\n", c->capacity, c->items);
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

ParameterizedTestParameters(spsc_threads, one_producer_one_consumer)
{
    return cr_make_param_array(struct spsc_case, spsc_cases, IW_ARRAY_LEN(spsc_cases));
}

ParameterizedTest(struct spsc_case *c, spsc_threads, one_producer_one_consumer,
                  .timeout = 120)
{
    char why[256];

    run_spsc(c, &the_run);
    cr_assert(spsc_verdict(c, &the_run, why, sizeof(why)), "%s", why);
}

#endif
