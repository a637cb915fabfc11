/* Compact value encoding: see valcodec.h. */
#include "valcodec.h"

#include <math.h>
#include <string.h>

static const double pow10_tab[10] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };

size_t iw_varint_put(uint64_t x, unsigned char *out)
{
    size_t n = 0;
    while (x >= 0x80) {
        out[n++] = (unsigned char)(x | 0x80);
        x >>= 7;
    }
    out[n++] = (unsigned char)x;
    return n;
}

bool iw_varint_get(const unsigned char **p, const unsigned char *end, uint64_t *x)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0) {
            *x = v;
            return true;
        }
    }
    return false;
}

size_t iw_val_encode(double v, unsigned char *out)
{
    /* 2^53: beyond it m would not be exact. -0.0 keeps its sign only raw. */
    if (isfinite(v) && fabs(v) < 9007199254740992.0 && !(v == 0 && signbit(v))) {
        for (unsigned k = 0; k < 10; k++) {
            double x = v * pow10_tab[k];
            if (fabs(x) >= 9007199254740992.0)
                break;
            int64_t m = (int64_t)llrint(x);
            if ((double)m / pow10_tab[k] == v) {
                uint64_t z = ((uint64_t)m << 1) ^ (uint64_t)(m >> 63);   /* zigzag */
                out[0] = (unsigned char)k;
                return 1 + iw_varint_put(z, out + 1);
            }
        }
    }
    out[0] = 15;
    memcpy(out + 1, &v, 8);
    return 9;
}

bool iw_val_decode(const unsigned char **p, const unsigned char *end, double *v, unsigned *tag)
{
    if (*p >= end)
        return false;
    unsigned t = *(*p)++;
    unsigned k = t & 0x0f;
    if (tag != NULL)
        *tag = t;
    if ((t & ~(0x0fu | IW_VAL_TAG_FLAG)) != 0)
        return false;
    if (k == 15) {
        if (end - *p < 8)
            return false;
        memcpy(v, *p, 8);
        *p += 8;
        return true;
    }
    if (k > 9)
        return false;
    uint64_t z;
    if (!iw_varint_get(p, end, &z))
        return false;
    int64_t m = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    *v = (double)m / pow10_tab[k];
    return true;
}

size_t iw_point_val_encode(double v, char flag, unsigned char out[IW_POINT_VAL_MAX])
{
    size_t n = iw_val_encode(v, out);
    if (flag) {
        out[0] |= IW_VAL_TAG_FLAG;
        out[n++] = (unsigned char)flag;
    }
    return n;
}

bool iw_point_val_decode(const void *val, size_t len, double *v, char *flag)
{
    const unsigned char *p = val, *end = p + len;
    unsigned tag;
    if (!iw_val_decode(&p, end, v, &tag))
        return false;
    *flag = 0;
    if (tag & IW_VAL_TAG_FLAG) {
        if (p >= end)
            return false;
        *flag = (char)*p++;
    }
    return p == end;
}
