/* Compact value encoding (server/valcodec.c): exact round trips, sizes, bad input. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/valcodec.h"

static double round_trip(double v, size_t *len)
{
    unsigned char buf[IW_VAL_MAX];
    const unsigned char *p = buf;
    double out = 0;
    *len = iw_val_encode(v, buf);
    cr_assert_leq(*len, IW_VAL_MAX);
    cr_assert(iw_val_decode(&p, buf + *len, &out, NULL), "decode of %.17g failed", v);
    cr_assert_eq(p, buf + *len, "decode of %.17g stopped early", v);
    return out;
}

static void assert_same_bits(double a, double b)
{
    cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "%.17g came back as %.17g", a, b);
}

Test(valcodec, short_decimals_are_small_and_exact)
{
    static const char *texts[] = { "7.12", "0.035", "412", "-3.5", "0", "6.0", "0.001",
                                   "1000000", "12.345678", "-0.2", "99999.9", "0.000001" };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        double v = strtod(texts[i], NULL);
        size_t len;
        assert_same_bits(round_trip(v, &len), v);
        cr_assert_leq(len, 6, "%s took %zu bytes", texts[i], len);
    }
    size_t len;
    round_trip(7.12, &len);
    cr_assert_eq(len, 3, "7.12 is k=2, m=712: tag + 2-byte varint, got %zu", len);
}

Test(valcodec, awkward_values_round_trip_bit_for_bit)
{
    const double vals[] = { -0.0, DBL_MAX, -DBL_MAX, DBL_MIN, 5e-324, 1.0 / 3.0, M_PI,
                            9007199254740993.0, 9007199254740992.0, -9007199254740991.0,
                            1e300, 123456789.123456789, 0.1 + 0.2, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        size_t len;
        assert_same_bits(round_trip(vals[i], &len), vals[i]);
    }
    size_t len;
    double nan = round_trip(NAN, &len);
    cr_assert(isnan(nan));
    cr_assert_eq(len, 9, "NaN goes raw");
}

Test(valcodec, random_decimals_round_trip)
{
    srand(42);
    for (int i = 0; i < 200000; i++) {
        char text[40];
        int digits = rand() % 8;
        double x = (double)(rand() - RAND_MAX / 2) / (double)(rand() % 1000 + 1);
        snprintf(text, sizeof(text), "%.*f", digits, x);
        double v = strtod(text, NULL);
        size_t len;
        assert_same_bits(round_trip(v, &len), v);
        cr_assert_leq(len, 11);
    }
}

Test(valcodec, point_values_carry_the_flag)
{
    unsigned char buf[IW_POINT_VAL_MAX];
    double v;
    char flag;
    size_t n = iw_point_val_encode(7.5, 'D', buf);
    cr_assert(iw_point_val_decode(buf, n, &v, &flag));
    cr_assert_eq(v, 7.5);
    cr_assert_eq(flag, 'D');
    n = iw_point_val_encode(7.5, 0, buf);
    cr_assert(iw_point_val_decode(buf, n, &v, &flag));
    cr_assert_eq(flag, 0);
    n = iw_point_val_encode(M_E, 'I', buf);
    cr_assert_eq(n, 10);
    cr_assert(iw_point_val_decode(buf, n, &v, &flag));
    cr_assert_eq(v, M_E);
    cr_assert_eq(flag, 'I');
}

Test(valcodec, malformed_values_are_refused_not_misread)
{
    double v;
    char flag;
    const unsigned char empty[1] = { 0 };
    const unsigned char bad_tag[] = { 0x2a, 0x01 };
    const unsigned char k_too_big[] = { 0x0b, 0x01 };
    const unsigned char short_raw[] = { 0x0f, 1, 2, 3 };
    const unsigned char open_varint[] = { 0x02, 0x80, 0x80 };
    const unsigned char flag_missing[] = { 0x12, 0x05 };
    const unsigned char trailing[] = { 0x00, 0x05, 0x07 };
    unsigned char old_double[8];
    double seven = 7.12;
    memcpy(old_double, &seven, 8);

    cr_assert_not(iw_point_val_decode(empty, 0, &v, &flag));
    cr_assert_not(iw_point_val_decode(bad_tag, sizeof(bad_tag), &v, &flag));
    cr_assert_not(iw_point_val_decode(k_too_big, sizeof(k_too_big), &v, &flag));
    cr_assert_not(iw_point_val_decode(short_raw, sizeof(short_raw), &v, &flag));
    cr_assert_not(iw_point_val_decode(open_varint, sizeof(open_varint), &v, &flag));
    cr_assert_not(iw_point_val_decode(flag_missing, sizeof(flag_missing), &v, &flag));
    cr_assert_not(iw_point_val_decode(trailing, sizeof(trailing), &v, &flag));
    /* an 8-byte double of the old format: its first byte is no valid tag, or
     * the rest does not parse to exactly 8 bytes */
    cr_assert_not(iw_point_val_decode(old_double, 8, &v, &flag));
}
