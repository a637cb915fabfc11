/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Single-threaded semantics of the SPSC ring: capacity validation, empty,
 * full at exactly capacity, FIFO across many laps, free-running index wrap
 * past SIZE_MAX, depth, and tear-down. The threaded behaviour is in
 * tests/stress/test_ring_threads.c.
 */
#include <stdint.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "islewatch/ring.h"

/* Distinct non-NULL "items": the ring never dereferences them. */
static void *item(uintptr_t i)
{
    return (void *)(i + 1);
}

/* ---- capacity validation ---------------------------------------------- */

struct cap_case {
    size_t capacity;
    int    expect;
};

ParameterizedTestParameters(spsc_init, validates_capacity)
{
    static struct cap_case cases[] = {
        { 0, IW_E_INVAL },
        { 1, IW_E_INVAL },           /* power of two, but below the minimum */
        { 3, IW_E_INVAL },
        { 6, IW_E_INVAL },
        { 1000, IW_E_INVAL },
        { SIZE_MAX, IW_E_INVAL },
        { (SIZE_MAX >> 1) + 1, IW_E_INVAL },   /* power of two, far too big */
        { 2, IW_OK },
        { 8, IW_OK },
        { 1024, IW_OK },
        { 65536, IW_OK },
    };
    return cr_make_param_array(struct cap_case, cases, IW_ARRAY_LEN(cases));
}

ParameterizedTest(struct cap_case *c, spsc_init, validates_capacity)
{
    struct iw_spsc r;
    int rc = iw_spsc_init(&r, c->capacity);

    cr_assert_eq(rc, c->expect, "iw_spsc_init(capacity=%zu) = %d, want %d",
                 c->capacity, rc, c->expect);
    if (rc == IW_OK) {
        cr_expect_eq(iw_spsc_capacity(&r), c->capacity);
        cr_expect_eq(iw_spsc_depth(&r), 0);
        iw_spsc_fini(&r);
    }
}

Test(spsc_init, rejects_null_ring)
{
    cr_expect_eq(iw_spsc_init(NULL, 8), IW_E_INVAL);
}

/* ---- behaviour on an 8-slot ring ---------------------------------------- */

static struct iw_spsc ring;

static void setup(void)
{
    cr_assert_eq(iw_spsc_init(&ring, 8), IW_OK);
}

static void teardown(void)
{
    iw_spsc_fini(&ring);
}

TestSuite(spsc, .init = setup, .fini = teardown, .timeout = 10);

Test(spsc, new_ring_is_empty)
{
    cr_expect_null(iw_spsc_pop(&ring));
    cr_expect_null(iw_spsc_pop(&ring), "popping an empty ring twice stays empty");
    cr_expect_eq(iw_spsc_depth(&ring), 0);
    cr_expect_eq(iw_spsc_capacity(&ring), 8);
}

Test(spsc, holds_exactly_capacity_items)
{
    for (uintptr_t i = 0; i < 8; i++) {
        cr_assert(iw_spsc_push(&ring, item(i)), "push %zu of 8 must succeed", (size_t)i);
        cr_expect_eq(iw_spsc_depth(&ring), i + 1);
    }
    cr_expect_not(iw_spsc_push(&ring, item(8)), "9th push must report full");
    cr_expect_eq(iw_spsc_depth(&ring), 8);

    /* One pop frees exactly one slot. */
    cr_assert_eq(iw_spsc_pop(&ring), item(0));
    cr_expect(iw_spsc_push(&ring, item(8)));
    cr_expect_not(iw_spsc_push(&ring, item(9)));

    for (uintptr_t i = 1; i <= 8; i++)
        cr_assert_eq(iw_spsc_pop(&ring), item(i), "pop order broken at %zu", (size_t)i);
    cr_expect_null(iw_spsc_pop(&ring));
    cr_expect_eq(iw_spsc_depth(&ring), 0);
}

Test(spsc, rejects_null_item_without_consuming_a_slot)
{
    cr_expect_not(iw_spsc_push(&ring, NULL));
    cr_expect_eq(iw_spsc_depth(&ring), 0);
    for (uintptr_t i = 0; i < 8; i++)
        cr_assert(iw_spsc_push(&ring, item(i)), "push %zu after the NULL push", (size_t)i);
    cr_expect_not(iw_spsc_push(&ring, item(8)));
    cr_expect_eq(iw_spsc_pop(&ring), item(0), "no NULL entry may come out first");
}

Test(spsc, zeroed_ring_reads_as_empty)
{
    struct iw_spsc z = { 0 };

    cr_expect_null(iw_spsc_pop(&z));
    cr_expect_eq(iw_spsc_capacity(&z), 0);
    cr_expect_eq(iw_spsc_depth(&z), 0);
}

Test(spsc, fifo_order_survives_many_laps)
{
    uintptr_t next_in = 0, next_out = 0;

    /* Fill levels 1..8 so the boundary lands on every slot of the 8-slot ring. */
    for (int round = 0; round < 1000; round++) {
        size_t batch = (size_t)(round % 8) + 1;

        for (size_t i = 0; i < batch; i++)
            cr_assert(iw_spsc_push(&ring, item(next_in++)), "round %d push %zu", round, i);
        cr_assert_eq(iw_spsc_depth(&ring), batch);
        for (size_t i = 0; i < batch; i++)
            cr_assert_eq(iw_spsc_pop(&ring), item(next_out++), "round %d pop %zu", round, i);
        cr_assert_null(iw_spsc_pop(&ring));
    }
    cr_expect_eq(next_in, next_out);
    cr_expect_gt(next_in, 8 * 100, "the test must run many laps");
}

Test(spsc, indices_wrap_past_size_max)
{
    /*
     * White box: start both free-running indices just below SIZE_MAX (and the
     * cached copies with them) so that full/empty detection and slot indexing
     * are exercised across the unsigned wrap.
     */
    size_t start = SIZE_MAX - 3;

    atomic_store(&ring.head, start);
    atomic_store(&ring.tail, start);
    ring.head_cache = start;
    ring.tail_cache = start;

    for (int lap = 0; lap < 3; lap++) {
        for (uintptr_t i = 0; i < 8; i++)
            cr_assert(iw_spsc_push(&ring, item(i)), "lap %d push %zu", lap, (size_t)i);
        cr_assert_not(iw_spsc_push(&ring, item(99)), "lap %d: full must be detected", lap);
        cr_assert_eq(iw_spsc_depth(&ring), 8);
        for (uintptr_t i = 0; i < 8; i++)
            cr_assert_eq(iw_spsc_pop(&ring), item(i), "lap %d pop %zu", lap, (size_t)i);
        cr_assert_null(iw_spsc_pop(&ring), "lap %d: empty must be detected", lap);
    }
    cr_expect_lt(atomic_load(&ring.head), start, "the head index must have wrapped");
}

/* ---- tear-down ------------------------------------------------------------ */

Test(spsc_fini, is_idempotent_and_null_safe)
{
    struct iw_spsc r;

    cr_assert_eq(iw_spsc_init(&r, 4), IW_OK);
    cr_assert(iw_spsc_push(&r, item(1)));
    iw_spsc_fini(&r);
    cr_expect_null(r.slot);
    cr_expect_eq(iw_spsc_capacity(&r), 0);
    cr_expect_eq(iw_spsc_depth(&r), 0);
    iw_spsc_fini(&r);
    iw_spsc_fini(NULL);
}
