/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring — bounded single-producer/single-consumer ring of pointers (iw_spsc).
 *
 * Contract (the "_spsc" in the name): exactly one thread at a time calls
 * iw_spsc_push and exactly one thread at a time calls iw_spsc_pop. Any thread
 * may call iw_spsc_depth and iw_spsc_capacity. Items come out in the order
 * they went in. Push and pop never block, never allocate and never take a lock.
 *
 * Ownership: an item crossing the ring is TRANSFERRED. The producer gives it up
 * when iw_spsc_push returns true; the consumer owns it when iw_spsc_pop returns
 * it. The ring never dereferences items, so NULL is reserved for "empty".
 *
 * Layout: capacity is a power of two and all slots are usable. head and tail
 * are free-running counters (never masked, allowed to wrap past SIZE_MAX):
 * tail - head is the depth, exact under unsigned arithmetic even across the
 * wrap. The consumer writes head, the producer writes tail; each side also
 * keeps a private cached copy of the other side's counter and re-reads the
 * shared one only when the cache says "full" (producer) or "empty" (consumer).
 * So in steady state each side touches the other's cache line about once per
 * lap instead of once per item.
 *
 * Memory-order map (each pair is also named at the operation):
 *   R1 (producer stores tail, release)  pairs with A2 (consumer loads tail,
 *      acquire): the slot write is visible before the consumer reads it.
 *   R2 (consumer stores head, release)  pairs with A1 (producer loads head,
 *      acquire): the consumer's slot read is finished before the producer
 *      overwrites that slot on the next lap.
 *   R2 also pairs with A3 in iw_spsc_depth (see there).
 *
 * Cache lines: the struct separates its groups with whole-cache-line padding
 * rather than _Alignas, so the guarantee "no two groups share a line" holds
 * whatever the alignment of the containing allocation (malloc only promises
 * 16 bytes, and an over-aligned struct inside calloc'd memory is undefined
 * behaviour that UBSan reports).
 */
#ifndef ISLEWATCH_RING_H
#define ISLEWATCH_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "islewatch/compiler.h"
#include "islewatch/err.h"

struct iw_spsc {
    /* Read-only after iw_spsc_init: shared by both sides without traffic. */
    size_t mask;                    /* capacity - 1 */
    void **slot;                    /* owned; capacity entries */
    char pad0_[IW_CACHELINE];

    /* Consumer's line: written only by the consumer. */
    _Atomic size_t head;            /* next slot to read */
    size_t tail_cache;              /* consumer's last seen tail; <= tail */
    char pad1_[IW_CACHELINE];

    /* Producer's line: written only by the producer. */
    _Atomic size_t tail;            /* next slot to write */
    size_t head_cache;              /* producer's last seen head; <= head */
    char pad2_[IW_CACHELINE];
};

/*
 * Allocate the slots of an empty ring holding up to capacity_pow2 items.
 * r is borrowed (caller-provided storage, e.g. a member of a bigger struct).
 * Returns IW_OK; IW_E_INVAL if r is NULL or capacity_pow2 is not a power of
 * two >= 2 (or is too large to allocate); IW_E_NOMEM if malloc fails.
 * Call before any thread uses the ring; start the threads afterwards.
 */
IW_NODISCARD int iw_spsc_init(struct iw_spsc *r, size_t capacity_pow2);

/*
 * Free the slots. Items still in the ring are NOT freed (the ring does not know
 * what they are): drain with iw_spsc_pop first if they own memory. Both threads
 * must have stopped using the ring. Accepts NULL and a ring already finished.
 */
void iw_spsc_fini(struct iw_spsc *r);

/* Number of slots, fixed at init. Any thread. */
size_t iw_spsc_capacity(const struct iw_spsc *r);

/*
 * Items currently queued, for metrics. Any thread; the answer may be stale by
 * the time it returns but is always within [0, capacity].
 */
size_t iw_spsc_depth(const struct iw_spsc *r);

/*
 * Producer side only. Queue item (non-NULL) and return true, or return false
 * if the ring is full or item is NULL. On false the caller keeps ownership.
 */
static inline bool iw_spsc_push(struct iw_spsc *r, void *item)
{
    /* Relaxed: only this thread writes tail, so it reads its own last store. */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

    if (IW_UNLIKELY(item == NULL))
        return false;
    if (tail - r->head_cache > r->mask) {
        /*
         * A1: pairs with R2 in iw_spsc_pop. Acquire makes the consumer's read
         * of every slot below the new head happen before our overwrite of it.
         * A stale cache only under-estimates head (it only grows), so trusting
         * the cache when it says "room" is safe: that room was already
         * acquired by an earlier A1.
         */
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - r->head_cache > r->mask)       /* unsigned diff survives wrap */
            return false;
    }
    r->slot[tail & r->mask] = item;
    /* R1: publish the slot write above; pairs with A2 in iw_spsc_pop. */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

/*
 * Consumer side only. Return the oldest item (the caller now owns it), or NULL
 * if the ring is empty.
 */
static inline void *iw_spsc_pop(struct iw_spsc *r)
{
    /* Relaxed: only this thread writes head, so it reads its own last store. */
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    void *item;

    if (head == r->tail_cache) {
        /*
         * A2: pairs with R1 in iw_spsc_push. Acquire makes the producer's slot
         * writes below the new tail visible to our reads. A stale cache only
         * under-estimates tail, and the slots it admits were acquired by an
         * earlier A2.
         */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head == r->tail_cache)
            return NULL;
    }
    item = r->slot[head & r->mask];
    /* R2: our read of the slot is done, the producer may reuse it; pairs with A1. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return item;
}

#endif /* ISLEWATCH_RING_H */
