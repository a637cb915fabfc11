/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Single-threaded semantics of the MPMC queue: argument validation, empty,
 * full at exactly capacity, copy-in/copy-out of elements of several sizes,
 * FIFO across many laps, ticket wrap past SIZE_MAX, depth, the waiting
 * helpers' non-blocking paths, and tear-down. Threads are in
 * tests/stress/test_mpmc_threads.c.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "islewatch/mpmc.h"

/* A 40-byte element, the size of a decoded sample. */
struct elem40 {
    uint64_t series;
    int64_t  ts_ns;
    double   value;
    uint32_t flags;
    uint32_t seq;
    uint64_t spare;
};

static struct elem40 make_elem(uint32_t i)
{
    struct elem40 e = {
        .series = 0x1000u + i, .ts_ns = (int64_t)i * 1000, .value = i * 0.5,
        .flags = i ^ 0xa5a5a5a5u, .seq = i, .spare = ~(uint64_t)i,
    };
    return e;
}

static void expect_elem(const struct elem40 *got, uint32_t i)
{
    struct elem40 want = make_elem(i);

    cr_assert_eq(memcmp(got, &want, sizeof(want)), 0,
                 "element %u came out different (seq field %u)", i, got->seq);
}

/* ---- argument validation -------------------------------------------------- */

struct init_case {
    size_t capacity;
    size_t elem_size;
    int    expect;
};

ParameterizedTestParameters(mpmc_init, validates_arguments)
{
    static struct init_case cases[] = {
        { 0, 8, IW_E_INVAL },
        { 1, 8, IW_E_INVAL },
        { 3, 8, IW_E_INVAL },
        { 1000, 8, IW_E_INVAL },
        { 8, 0, IW_E_INVAL },                       /* zero-size elements */
        { 8, SIZE_MAX, IW_E_INVAL },                /* cell size overflows */
        { (SIZE_MAX >> 1) + 1, 8, IW_E_INVAL },     /* cells * size overflows */
        { (size_t)1 << 40, (size_t)1 << 30, IW_E_INVAL },
        { 2, 1, IW_OK },
        { 8, 40, IW_OK },
        { 1024, 40, IW_OK },
        { 64, 4096, IW_OK },
    };
    return cr_make_param_array(struct init_case, cases, IW_ARRAY_LEN(cases));
}

ParameterizedTest(struct init_case *c, mpmc_init, validates_arguments)
{
    struct iw_mpmc q;
    int rc = iw_mpmc_init(&q, c->capacity, c->elem_size);

    cr_assert_eq(rc, c->expect, "iw_mpmc_init(capacity=%zu, elem_size=%zu) = %d, want %d",
                 c->capacity, c->elem_size, rc, c->expect);
    if (rc == IW_OK) {
        cr_expect_eq(iw_mpmc_capacity(&q), c->capacity);
        cr_expect_eq(iw_mpmc_elem_size(&q), c->elem_size);
        cr_expect_eq(iw_mpmc_depth(&q), 0);
        iw_mpmc_fini(&q);
    }
}

Test(mpmc_init, rejects_null_queue)
{
    cr_expect_eq(iw_mpmc_init(NULL, 8, 8), IW_E_INVAL);
}

Test(mpmc_args, null_and_uninitialised_are_rejected)
{
    struct iw_mpmc zero = { 0 };
    struct iw_mpmc q;
    struct elem40 e = make_elem(1);

    cr_expect_eq(iw_mpmc_push(NULL, &e), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_pop(NULL, &e), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_push(&zero, &e), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_pop(&zero, &e), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_pop_wait(&zero, &e, 1000), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_capacity(&zero), 0);
    cr_expect_eq(iw_mpmc_depth(&zero), 0);
    iw_mpmc_push_wait(NULL, &e);          /* must return, not spin forever */
    iw_mpmc_push_wait(&zero, &e);

    cr_assert_eq(iw_mpmc_init(&q, 4, sizeof(e)), IW_OK);
    cr_expect_eq(iw_mpmc_push(&q, NULL), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_depth(&q), 0, "a rejected push must not take a cell");
    cr_assert_eq(iw_mpmc_push(&q, &e), IW_OK);
    cr_expect_eq(iw_mpmc_pop(&q, NULL), IW_E_INVAL);
    cr_expect_eq(iw_mpmc_depth(&q), 1, "a rejected pop must not consume");
    iw_mpmc_fini(&q);
}

/* ---- behaviour on an 8-cell queue of 40-byte elements ----------------------- */

static struct iw_mpmc queue;

static void setup(void)
{
    cr_assert_eq(iw_mpmc_init(&queue, 8, sizeof(struct elem40)), IW_OK);
}

static void teardown(void)
{
    iw_mpmc_fini(&queue);
}

TestSuite(mpmc, .init = setup, .fini = teardown, .timeout = 10);

Test(mpmc, new_queue_is_empty_and_pop_leaves_out_untouched)
{
    struct elem40 out;

    memset(&out, 0x5c, sizeof(out));
    cr_expect_eq(iw_mpmc_pop(&queue, &out), IW_E_EMPTY);
    for (size_t i = 0; i < sizeof(out); i++)
        cr_assert_eq(((unsigned char *)&out)[i], 0x5c, "byte %zu of out was written", i);
    cr_expect_eq(iw_mpmc_depth(&queue), 0);
}

Test(mpmc, holds_exactly_capacity_elements)
{
    struct elem40 e, out;

    for (uint32_t i = 0; i < 8; i++) {
        e = make_elem(i);
        cr_assert_eq(iw_mpmc_push(&queue, &e), IW_OK, "push %u of 8", i);
        cr_expect_eq(iw_mpmc_depth(&queue), i + 1);
    }
    e = make_elem(8);
    cr_expect_eq(iw_mpmc_push(&queue, &e), IW_E_FULL, "9th push must report full");
    cr_expect_eq(iw_mpmc_depth(&queue), 8);

    cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_OK);
    expect_elem(&out, 0);
    cr_expect_eq(iw_mpmc_push(&queue, &e), IW_OK, "one pop frees one cell");
    e = make_elem(9);
    cr_expect_eq(iw_mpmc_push(&queue, &e), IW_E_FULL);

    for (uint32_t i = 1; i <= 8; i++) {
        cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_OK, "pop %u", i);
        expect_elem(&out, i);
    }
    cr_expect_eq(iw_mpmc_pop(&queue, &out), IW_E_EMPTY);
    cr_expect_eq(iw_mpmc_depth(&queue), 0);
}

Test(mpmc, push_copies_the_element)
{
    struct elem40 e = make_elem(7), out;

    cr_assert_eq(iw_mpmc_push(&queue, &e), IW_OK);
    memset(&e, 0xff, sizeof(e));             /* the caller's buffer is borrowed only */
    cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_OK);
    expect_elem(&out, 7);
}

Test(mpmc, fifo_order_survives_many_laps)
{
    uint32_t next_in = 0, next_out = 0;
    struct elem40 e, out;

    for (int round = 0; round < 1000; round++) {
        uint32_t batch = (uint32_t)(round % 8) + 1;

        for (uint32_t i = 0; i < batch; i++) {
            e = make_elem(next_in++);
            cr_assert_eq(iw_mpmc_push(&queue, &e), IW_OK, "round %d push %u", round, i);
        }
        cr_assert_eq(iw_mpmc_depth(&queue), batch);
        for (uint32_t i = 0; i < batch; i++) {
            cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_OK, "round %d pop %u", round, i);
            expect_elem(&out, next_out++);
        }
        cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_E_EMPTY);
    }
    cr_expect_eq(next_in, next_out);
}

Test(mpmc, tickets_wrap_past_size_max)
{
    /*
     * White box: move both tickets just below SIZE_MAX. Each cell must then
     * hold the sequence number of the ticket that will next use it; the
     * sequence number is the first word of the cell (see mpmc.c). This checks
     * that full/empty detection uses wrap-safe signed differences.
     */
    size_t start = SIZE_MAX - 5;
    struct elem40 e, out;

    for (size_t k = 0; k < 8; k++) {
        size_t pos = start + k;
        _Atomic size_t *seq = (_Atomic size_t *)(void *)
            (queue.cells + (pos & queue.mask) * queue.stride);
        atomic_store(seq, pos);
    }
    atomic_store(&queue.enqueue_pos, start);
    atomic_store(&queue.dequeue_pos, start);

    for (uint32_t lap = 0; lap < 3; lap++) {
        for (uint32_t i = 0; i < 8; i++) {
            e = make_elem(lap * 8 + i);
            cr_assert_eq(iw_mpmc_push(&queue, &e), IW_OK, "lap %u push %u", lap, i);
        }
        cr_assert_eq(iw_mpmc_push(&queue, &e), IW_E_FULL, "lap %u: full must be detected", lap);
        cr_assert_eq(iw_mpmc_depth(&queue), 8);
        for (uint32_t i = 0; i < 8; i++) {
            cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_OK, "lap %u pop %u", lap, i);
            expect_elem(&out, lap * 8 + i);
        }
        cr_assert_eq(iw_mpmc_pop(&queue, &out), IW_E_EMPTY, "lap %u: empty must be detected", lap);
    }
    cr_expect_lt(atomic_load(&queue.dequeue_pos), start, "the ticket must have wrapped");
}

Test(mpmc, wait_helpers_do_not_block_when_they_need_not)
{
    struct elem40 e = make_elem(3), out;

    iw_mpmc_push_wait(&queue, &e);             /* room available: returns at once */
    cr_expect_eq(iw_mpmc_depth(&queue), 1);
    cr_assert_eq(iw_mpmc_pop_wait(&queue, &out, 1000000000), IW_OK);
    expect_elem(&out, 3);

    /* Empty: a zero timeout is one attempt; a short one waits, then gives up. */
    cr_expect_eq(iw_mpmc_pop_wait(&queue, &out, 0), IW_E_EMPTY);
    cr_expect_eq(iw_mpmc_pop_wait(&queue, &out, -5), IW_E_EMPTY);
    cr_expect_eq(iw_mpmc_pop_wait(&queue, &out, 3000000), IW_E_EMPTY);
}

/* ---- element sizes: cells must not overlap, pop writes elem_size bytes ------ */

ParameterizedTestParameters(mpmc_sizes, cells_are_independent)
{
    static size_t sizes[] = { 1, 3, 7, 8, 9, 40, 63, 64, 65, 1000 };
    return cr_make_param_array(size_t, sizes, IW_ARRAY_LEN(sizes));
}

ParameterizedTest(size_t *size, mpmc_sizes, cells_are_independent)
{
    enum { CAP = 16, CANARY = 32 };
    size_t n = *size;
    unsigned char in[1000], out[1000 + CANARY];
    struct iw_mpmc q;

    cr_assert_eq(iw_mpmc_init(&q, CAP, n), IW_OK);
    for (int lap = 0; lap < 3; lap++) {
        for (unsigned k = 0; k < CAP; k++) {
            memset(in, (int)(k * 13 + (unsigned)lap + 1), n);
            cr_assert_eq(iw_mpmc_push(&q, in), IW_OK, "size %zu push %u", n, k);
        }
        for (unsigned k = 0; k < CAP; k++) {
            memset(out, 0xee, sizeof(out));
            cr_assert_eq(iw_mpmc_pop(&q, out), IW_OK, "size %zu pop %u", n, k);
            for (size_t b = 0; b < n; b++)
                cr_assert_eq(out[b], (unsigned char)(k * 13 + (unsigned)lap + 1),
                             "size %zu cell %u byte %zu corrupted", n, k, b);
            for (size_t b = n; b < n + CANARY; b++)
                cr_assert_eq(out[b], 0xee, "size %zu: pop wrote past elem_size at %zu", n, b);
        }
    }
    iw_mpmc_fini(&q);
}

/* ---- tear-down -------------------------------------------------------------- */

Test(mpmc_fini, is_idempotent_and_null_safe)
{
    struct iw_mpmc q;
    struct elem40 e = make_elem(1);

    cr_assert_eq(iw_mpmc_init(&q, 4, sizeof(e)), IW_OK);
    cr_assert_eq(iw_mpmc_push(&q, &e), IW_OK);
    iw_mpmc_fini(&q);
    cr_expect_null(q.cells);
    cr_expect_eq(iw_mpmc_capacity(&q), 0);
    cr_expect_eq(iw_mpmc_push(&q, &e), IW_E_INVAL, "a finished queue refuses pushes");
    iw_mpmc_fini(&q);
    iw_mpmc_fini(NULL);
}
