/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring — set-up, tear-down and metrics for the SPSC ring. The hot path
 * (iw_spsc_push / iw_spsc_pop) is inline in include/islewatch/ring.h, together
 * with the memory-order map that this file's one atomic read refers to.
 *
 * This file is part of iw_lockfree, which depends on libc only: no logging
 * here. Callers turn a status code into a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/ring.h"

static bool is_pow2_at_least_2(size_t n)
{
    return n >= 2 && (n & (n - 1)) == 0;
}

int iw_spsc_init(struct iw_spsc *r, size_t capacity_pow2)
{
    void **slot;

    if (r == NULL || !is_pow2_at_least_2(capacity_pow2))
        return IW_E_INVAL;
    /*
     * Keep depth (tail - head, at most capacity) far from the wrap point so a
     * full ring can never look empty; calloc would refuse such sizes anyway.
     */
    if (capacity_pow2 > SIZE_MAX / 2 / sizeof(void *))
        return IW_E_INVAL;
    slot = calloc(capacity_pow2, sizeof(*slot));
    if (slot == NULL)
        return IW_E_NOMEM;

    memset(r, 0, sizeof(*r));
    r->mask = capacity_pow2 - 1;
    r->slot = slot;
    /* No other thread can see r yet: creating the threads publishes these. */
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return IW_OK;
}

void iw_spsc_fini(struct iw_spsc *r)
{
    if (r == NULL)
        return;
    free(r->slot);
    r->slot = NULL;
    r->mask = 0;
}

size_t iw_spsc_capacity(const struct iw_spsc *r)
{
    return r != NULL && r->slot != NULL ? r->mask + 1 : 0;
}

size_t iw_spsc_depth(const struct iw_spsc *r)
{
    size_t head, tail, depth;

    if (r == NULL || r->slot == NULL)        /* never initialised or finished */
        return 0;
    /*
     * A3: pairs with R2 in iw_spsc_pop. The consumer stored head = h only
     * after an acquire load of tail (A2) returned at least h; acquiring h
     * here orders that load before ours, so coherence gives tail >= h and
     * the difference cannot go negative.
     */
    head = atomic_load_explicit(&r->head, memory_order_acquire);
    /* Relaxed: any value at or after the one A3 ordered us behind will do. */
    tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    depth = tail - head;
    /*
     * Between the two loads the consumer may pop and the producer refill, so
     * the raw difference can exceed the capacity; clamp to the true bound.
     */
    return depth > r->mask + 1 ? r->mask + 1 : depth;
}
