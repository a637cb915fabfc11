/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mpmc — bounded multi-producer/multi-consumer queue of fixed-size elements
 * (Dmitry Vyukov's design: one sequence number per cell, two ticket counters).
 *
 * Contract (the "_mpmc" in the name):
 *   - Any number of threads may push and any number may pop, concurrently.
 *   - FIFO per producer: elements pushed by one thread are dequeued in the
 *     order it pushed them, so every single consumer also sees them in that
 *     order. Elements from different producers interleave in ticket order.
 *   - Linearizable per cell: a push takes effect when its cell is published
 *     and a pop when it claims that cell; each cell passes from exactly one
 *     producer to exactly one consumer per lap.
 *   - IW_E_FULL / IW_E_EMPTY are snapshots and may be pessimistic: a producer
 *     that has claimed a cell but not yet published it makes consumers see
 *     "empty" at that cell, even if later cells are ready. If that producer is
 *     descheduled, pops wait for it; no thread ever blocks on a lock.
 *   - With one consumer thread this is the MPSC queue the pipeline uses for
 *     fan-in; nothing changes in the API.
 *
 * Elements are COPIED: push memcpy's elem_size bytes into the cell and pop
 * memcpy's them out, so the caller's buffers are borrowed for the call only.
 * If an element contains pointers, what they point to is transferred with it
 * (the producer gives it up on IW_OK, the consumer owns it after IW_OK).
 *
 * Memory-order map (each pair is also named at the operation in mpmc.c):
 *   R1 (push stores cell seq = pos + 1, release) pairs with A2 (pop loads cell
 *      seq, acquire): the element bytes are visible before the consumer copies.
 *   R2 (pop stores cell seq = pos + capacity, release) pairs with A1 (push
 *      loads cell seq, acquire): the consumer's copy-out is finished before the
 *      next lap's producer overwrites the cell.
 *   The ticket counters are only claimed with relaxed CAS: they order nothing,
 *   the cell sequence numbers carry all the data hand-offs.
 *
 * This module depends on libc and pthreads only (it is built alone for TSan).
 */
#ifndef ISLEWATCH_MPMC_H
#define ISLEWATCH_MPMC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"
#include "islewatch/err.h"

struct iw_mpmc {
    /* Read-only after iw_mpmc_init. */
    unsigned char *cells;           /* owned; capacity cells of `stride` bytes */
    size_t mask;                    /* capacity - 1 */
    size_t elem_size;               /* bytes copied per element */
    size_t stride;                  /* cell size: sequence number + element, aligned */
    /* Whole-line padding keeps each counter off its neighbours' lines whatever
     * the alignment of the containing allocation (see ring.h). */
    char pad0_[IW_CACHELINE];
    _Atomic size_t enqueue_pos;     /* producers' next ticket */
    char pad1_[IW_CACHELINE];
    _Atomic size_t dequeue_pos;     /* consumers' next ticket */
    char pad2_[IW_CACHELINE];
};

/*
 * Create an empty queue of capacity_pow2 cells of elem_size bytes each.
 * q is borrowed (caller-provided storage).
 * Returns IW_OK; IW_E_INVAL if q is NULL, capacity_pow2 is not a power of two
 * >= 2, elem_size is 0, or capacity * elem_size overflows; IW_E_NOMEM if
 * malloc fails. Call before any thread uses the queue.
 */
IW_NODISCARD int iw_mpmc_init(struct iw_mpmc *q, size_t capacity_pow2, size_t elem_size);

/*
 * Free the cells. Elements still queued are dropped (if they hold pointers,
 * drain first). No thread may be using the queue. Accepts NULL and a queue
 * already finished.
 */
void iw_mpmc_fini(struct iw_mpmc *q);

/*
 * Copy elem_size bytes from elem (borrowed) into the queue. Any thread.
 * Returns IW_OK, IW_E_FULL (nothing was copied; retry later or drop and count
 * it) or IW_E_INVAL (q or elem NULL, or q not initialised).
 */
IW_NODISCARD int iw_mpmc_push(struct iw_mpmc *q, const void *elem);

/*
 * Copy the oldest available element into out (borrowed, elem_size bytes).
 * Any thread. Returns IW_OK, IW_E_EMPTY (out untouched) or IW_E_INVAL.
 */
IW_NODISCARD int iw_mpmc_pop(struct iw_mpmc *q, void *out);

/*
 * Backpressure push: retry iw_mpmc_push until it succeeds, spinning briefly,
 * then yielding, then sleeping with exponential backoff capped near 1 ms.
 *
 * This is how overload reaches the MQTT broker: while the consumer is behind,
 * the producer (the MQTT client thread that runs the message-arrived callback)
 * sits here instead of taking new messages, so the client stops reading its
 * socket and the broker queues for us (SPEC: under overload the daemon stops
 * reading rather than buffering without limit or dropping). Memory stays
 * bounded by the queue capacity. No mutex, no condition variable.
 *
 * Any thread. Returns without pushing only if q or elem is invalid (the same
 * cases in which iw_mpmc_push returns IW_E_INVAL).
 */
void iw_mpmc_push_wait(struct iw_mpmc *q, const void *elem);

/*
 * Idle-friendly pop: like iw_mpmc_pop, but when the queue is empty keep
 * retrying with the same spin / yield / sleep backoff for up to timeout_ns
 * nanoseconds (monotonic clock). timeout_ns <= 0 means a single attempt.
 * Returns IW_OK, IW_E_EMPTY on timeout, or IW_E_INVAL.
 * A consumer that loops on this with a timeout of a few milliseconds can check
 * a stop flag between calls and costs almost no CPU while idle.
 */
IW_NODISCARD int iw_mpmc_pop_wait(struct iw_mpmc *q, void *out, int64_t timeout_ns);

/* Number of cells, fixed at init (0 if not initialised). Any thread. */
size_t iw_mpmc_capacity(const struct iw_mpmc *q);

/* Element size given at init (0 if not initialised). Any thread. */
size_t iw_mpmc_elem_size(const struct iw_mpmc *q);

/*
 * Approximate number of queued elements, for metrics: claimed pushes minus
 * claimed pops, clamped to [0, capacity]. Any thread.
 */
size_t iw_mpmc_depth(const struct iw_mpmc *q);

#endif /* ISLEWATCH_MPMC_H */
