/*
 * Compact encoding of stored values (store format 2).
 *
 * Sensor values arrive as short decimals (7.12, 0.035, 412): as 8-byte
 * doubles their mantissas look random and do not compress. A value that is
 * exactly m / 10^k for a small k is stored as k and m instead:
 *
 *   tag byte: bits 0-3 = k (0..9), or 15 for a raw 8-byte IEEE double that
 *             follows (little-endian); bit 4 = a flag byte follows the value
 *             (points only); other bits zero
 *   then      zigzag varint of m (k < 15) or the 8 raw bytes (k = 15)
 *
 * "Exactly" means decoding gives back the same double bit for bit: m / 10^k
 * with both operands exact is correctly rounded, i.e. the double nearest the
 * decimal, which is what strtod gave the decoder for the payload's text.
 */
#ifndef ISLEWATCH_VALCODEC_H
#define ISLEWATCH_VALCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IW_VAL_MAX 11              /* tag + 10-byte varint, or tag + 8 */
#define IW_POINT_VAL_MAX (IW_VAL_MAX + 1)
#define IW_VAL_TAG_FLAG 0x10u

/* Encode v at out (IW_VAL_MAX bytes of room); returns the bytes written. */
size_t iw_val_encode(double v, unsigned char *out);

/* Decode one value at *p (before end); advances *p. False on malformed input. */
bool iw_val_decode(const unsigned char **p, const unsigned char *end, double *v, unsigned *tag);

/* A raw point's value: the value, then the flag byte when flag != 0. */
size_t iw_point_val_encode(double v, char flag, unsigned char out[IW_POINT_VAL_MAX]);
bool iw_point_val_decode(const void *val, size_t len, double *v, char *flag);

/* Unsigned varints (LEB128), used by the rollup encoding too. */
size_t iw_varint_put(uint64_t x, unsigned char *out);
bool iw_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *x);

#endif
