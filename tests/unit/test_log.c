/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rate limiter of repeated log lines (iw_complain, SPEC §1: rejected
 * input is "logged (rate-limited, with topic and reason)"), on an injected
 * monotonic clock through iw_complaint_admit.
 */
#include <criterion/criterion.h>

#include "islewatch/log.h"

#define SEC 1000000000LL
#define T0 (1000 * SEC)

static bool admit(struct iw_complaint *c, int64_t now, uint64_t *suppressed)
{
    *suppressed = 0;
    return iw_complaint_admit(c, now, suppressed);
}

/* A flood of bad messages is held back, with the count of what was held. */
Test(log, a_flood_is_held_back_and_counted)
{
    struct iw_complaint c = { 0 };
    uint64_t sup;
    int lines = 0;

    cr_assert(admit(&c, T0, &sup), "the first report goes out at once");
    cr_assert_eq(sup, 0);
    for (int i = 1; i < 1000; i++)              /* 1000 reports in one second */
        lines += admit(&c, T0 + i * (SEC / 1000), &sup);
    cr_assert_lt(lines, 10, "%d lines for a one-second flood", lines);
    int64_t t = T0 + SEC;
    while (!admit(&c, t, &sup))
        t += SEC;
    cr_assert_leq(t - T0, 60 * SEC, "the flood's next line waited %lld s", (long long)((t - T0) / SEC));
    cr_assert_geq(sup, 1000 - 1 - (uint64_t)lines, "the line counts the reports held back");
}

/*
 * The limiter recovers: after the floods of a bad day, a new bad message a
 * few minutes after the last one is logged, not held back for an hour.
 */
Test(log, the_limiter_recovers_after_a_quiet_spell)
{
    struct iw_complaint c = { 0 };
    uint64_t sup;
    int64_t t = T0;

    for (int burst = 0; burst < 30; burst++) {  /* a report every 5 s for a while */
        for (int i = 0; i < 500; i++, t += 5 * SEC)
            (void)admit(&c, t, &sup);
        t += 2 * 60 * SEC;                      /* then two minutes of quiet */
        cr_assert(admit(&c, t, &sup), "burst %d: a new report after 2 min of quiet was held back",
                  burst);
    }
}
