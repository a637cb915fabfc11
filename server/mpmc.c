/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mpmc — Vyukov bounded MPMC queue of fixed-size elements, plus the waiting
 * helpers used for backpressure (producers) and idling (consumers).
 *
 * DESIGN. Cell i of the array holds a sequence number and one element. For a
 * ticket pos (free-running, cell pos & mask) the sequence number says whose
 * turn it is:
 *     seq == pos                 empty, waiting for the producer with ticket pos
 *     seq == pos + 1             full, waiting for the consumer with ticket pos
 *     seq == pos + capacity      emptied again, waiting for ticket pos + capacity
 * A producer reads enqueue_pos, checks the cell, and claims the ticket with a
 * CAS; a consumer does the same on dequeue_pos. The winner then owns the cell
 * alone until it stores the next sequence number, so the element copy itself
 * needs no atomics. See mpmc.h for the contract and the memory-order map.
 *
 * Waiting: no mutex and no condition variable anywhere. A thread that has to
 * wait spins a little (the other side is usually microseconds away), then
 * yields, then sleeps with exponential backoff capped near 1 ms, so an idle
 * consumer or a throttled producer costs about a thousand wake-ups a second.
 *
 * This file is part of iw_lockfree, which depends on libc and pthreads only.
 */
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "islewatch/mpmc.h"

/* Bytes before the element in each cell: the sequence number. */
#define CELL_HDR        sizeof(_Atomic size_t)
#define CELL_ALIGN      _Alignof(_Atomic size_t)

/* Backoff schedule for the waiting helpers. */
#define SPIN_STEPS      64          /* cpu-relax rounds before yielding */
#define YIELD_STEPS     16          /* sched_yield rounds before sleeping */
#define SLEEP_MIN_NS    1000        /* first sleep: 1 us */
#define SLEEP_MAX_NS    1000000     /* sleeps double up to 1 ms */

/* ------------------------------------------------------------------------ */
/* Cells                                                                    */
/* ------------------------------------------------------------------------ */

static _Atomic size_t *cell_seq(const struct iw_mpmc *q, size_t pos)
{
    /* Cells start at a calloc'd address and stride is a multiple of the
     * counter's alignment, so this pointer is correctly aligned. */
    return (_Atomic size_t *)(void *)(q->cells + (pos & q->mask) * q->stride);
}

static unsigned char *cell_data(const struct iw_mpmc *q, size_t pos)
{
    return q->cells + (pos & q->mask) * q->stride + CELL_HDR;
}

/* Signed distance a - b between free-running counters (wrap-safe). */
static intptr_t seq_diff(size_t a, size_t b)
{
    return (intptr_t)(a - b);
}

static bool is_pow2_at_least_2(size_t n)
{
    return n >= 2 && (n & (n - 1)) == 0;
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                               */
/* ------------------------------------------------------------------------ */

int iw_mpmc_init(struct iw_mpmc *q, size_t capacity_pow2, size_t elem_size)
{
    size_t stride, bytes;

    if (q == NULL || !is_pow2_at_least_2(capacity_pow2) || elem_size == 0)
        return IW_E_INVAL;
    if (elem_size > SIZE_MAX - CELL_HDR - CELL_ALIGN)
        return IW_E_INVAL;
    stride = (CELL_HDR + elem_size + CELL_ALIGN - 1) / CELL_ALIGN * CELL_ALIGN;
    /* stride >= 16, so a size that fits also keeps capacity far below the
     * point where free-running ticket differences would become ambiguous. */
    if (__builtin_mul_overflow(capacity_pow2, stride, &bytes))
        return IW_E_INVAL;

    memset(q, 0, sizeof(*q));
    q->cells = calloc(1, bytes);
    if (q->cells == NULL)
        return IW_E_NOMEM;
    q->mask = capacity_pow2 - 1;
    q->elem_size = elem_size;
    q->stride = stride;
    /* Cell i starts out waiting for producer ticket i. No other thread can see
     * q yet; creating the threads (or handing q over with a release store)
     * publishes these plain initialisations. */
    for (size_t i = 0; i < capacity_pow2; i++)
        atomic_init(cell_seq(q, i), i);
    atomic_init(&q->enqueue_pos, 0);
    atomic_init(&q->dequeue_pos, 0);
    return IW_OK;
}

void iw_mpmc_fini(struct iw_mpmc *q)
{
    if (q == NULL)
        return;
    free(q->cells);
    q->cells = NULL;
    q->mask = 0;
    q->elem_size = 0;
    q->stride = 0;
}

size_t iw_mpmc_capacity(const struct iw_mpmc *q)
{
    return q != NULL && q->cells != NULL ? q->mask + 1 : 0;
}

size_t iw_mpmc_elem_size(const struct iw_mpmc *q)
{
    return q != NULL && q->cells != NULL ? q->elem_size : 0;
}

size_t iw_mpmc_depth(const struct iw_mpmc *q)
{
    size_t deq, enq;
    intptr_t depth;

    if (q == NULL || q->cells == NULL)
        return 0;
    /* Relaxed: a metrics snapshot reads no cell, so it needs no ordering;
     * the two loads may be skewed, hence the clamp on both sides. */
    deq = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
    enq = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
    depth = seq_diff(enq, deq);
    if (depth < 0)
        return 0;
    return (size_t)depth > q->mask + 1 ? q->mask + 1 : (size_t)depth;
}

/* ------------------------------------------------------------------------ */
/* Push and pop                                                             */
/* ------------------------------------------------------------------------ */

int iw_mpmc_push(struct iw_mpmc *q, const void *elem)
{
    _Atomic size_t *seqp;
    size_t pos, seq;
    intptr_t dif;

    if (q == NULL || elem == NULL || q->cells == NULL)
        return IW_E_INVAL;
    /* Relaxed: only a guess at the next ticket; the cell check and the CAS
     * below validate it. */
    pos = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
    for (;;) {
        seqp = cell_seq(q, pos);
        /*
         * A1: pairs with R2 in iw_mpmc_pop (previous lap). Seeing seq == pos
         * means that consumer has finished copying the old element out, and
         * acquire orders its copy before our overwrite.
         */
        seq = atomic_load_explicit(seqp, memory_order_acquire);
        dif = seq_diff(seq, pos);
        if (dif == 0) {
            /*
             * Claim ticket pos. Relaxed is enough on success: the counter
             * only hands out tickets, the cell's seq (A1, R1) carries the
             * data. On failure pos is refreshed with the current value and
             * re-checked against its cell.
             */
            if (atomic_compare_exchange_weak_explicit(&q->enqueue_pos, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            /* The cell still holds the element of the previous lap. */
            return IW_E_FULL;
        } else {
            /* Another producer already took pos; catch up. Relaxed as above. */
            pos = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
        }
    }
    memcpy(cell_data(q, pos), elem, q->elem_size);
    /* R1: publish the element copied above; pairs with A2 in iw_mpmc_pop. */
    atomic_store_explicit(seqp, pos + 1, memory_order_release);
    return IW_OK;
}

int iw_mpmc_pop(struct iw_mpmc *q, void *out)
{
    _Atomic size_t *seqp;
    size_t pos, seq;
    intptr_t dif;

    if (q == NULL || out == NULL || q->cells == NULL)
        return IW_E_INVAL;
    /* Relaxed: only a guess at the next ticket, validated below. */
    pos = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
    for (;;) {
        seqp = cell_seq(q, pos);
        /*
         * A2: pairs with R1 in iw_mpmc_push. Seeing seq == pos + 1 means the
         * producer has published; acquire makes its element bytes visible to
         * the copy below.
         */
        seq = atomic_load_explicit(seqp, memory_order_acquire);
        dif = seq_diff(seq, pos + 1);
        if (dif == 0) {
            /* Claim ticket pos. Relaxed for the same reason as in push: the
             * cell's seq (A2, R2) carries the data, not this counter. */
            if (atomic_compare_exchange_weak_explicit(&q->dequeue_pos, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            /* Not yet published for this lap: empty, or a producer that has
             * claimed the cell is still copying into it. */
            return IW_E_EMPTY;
        } else {
            /* Another consumer already took pos; catch up. */
            pos = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
        }
    }
    memcpy(out, cell_data(q, pos), q->elem_size);
    /* R2: our copy-out is done; hand the cell to the producer of the next
     * lap (ticket pos + capacity). Pairs with A1 in iw_mpmc_push. */
    atomic_store_explicit(seqp, pos + q->mask + 1, memory_order_release);
    return IW_OK;
}

/* ------------------------------------------------------------------------ */
/* Waiting helpers                                                          */
/* ------------------------------------------------------------------------ */

struct backoff {
    unsigned step;
    int64_t  sleep_ns;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait one step of the schedule, never sleeping longer than max_sleep_ns. */
static void backoff_wait(struct backoff *b, int64_t max_sleep_ns)
{
    struct timespec ts;
    int64_t ns;

    if (b->step < SPIN_STEPS) {
        b->step++;
        cpu_relax();
        return;
    }
    if (b->step < SPIN_STEPS + YIELD_STEPS) {
        b->step++;
        sched_yield();
        return;
    }
    if (b->sleep_ns == 0)
        b->sleep_ns = SLEEP_MIN_NS;
    ns = b->sleep_ns < max_sleep_ns ? b->sleep_ns : max_sleep_ns;
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    /* An early wake-up (EINTR) only means an earlier retry. */
    nanosleep(&ts, NULL);
    b->sleep_ns = b->sleep_ns * 2 < SLEEP_MAX_NS ? b->sleep_ns * 2 : SLEEP_MAX_NS;
}

void iw_mpmc_push_wait(struct iw_mpmc *q, const void *elem)
{
    struct backoff b = { 0, 0 };

    while (iw_mpmc_push(q, elem) == IW_E_FULL)
        backoff_wait(&b, SLEEP_MAX_NS);
}

int iw_mpmc_pop_wait(struct iw_mpmc *q, void *out, int64_t timeout_ns)
{
    struct backoff b = { 0, 0 };
    int64_t now, deadline;
    int rc;

    rc = iw_mpmc_pop(q, out);
    if (rc != IW_E_EMPTY || timeout_ns <= 0)
        return rc;
    now = mono_ns();
    deadline = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    for (;;) {
        backoff_wait(&b, deadline - now);
        rc = iw_mpmc_pop(q, out);
        if (rc != IW_E_EMPTY)
            return rc;
        now = mono_ns();
        if (now >= deadline)
            return IW_E_EMPTY;
    }
}
