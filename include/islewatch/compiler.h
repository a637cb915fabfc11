/* Compiler helpers shared by every module. */
#ifndef ISLEWATCH_COMPILER_H
#define ISLEWATCH_COMPILER_H

#define IW_NODISCARD   __attribute__((warn_unused_result))
#define IW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define IW_UNUSED      __attribute__((unused))
#define IW_LIKELY(x)   __builtin_expect(!!(x), 1)
#define IW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define IW_CACHELINE   64
#define IW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Room for element n of an array p of *cap elements of `size` bytes, doubling
 * it (from 16) when full: the (maybe moved) array, or NULL with p untouched. */
static inline void *iw_grow(void *p, size_t *cap, size_t n, size_t size)
{
    size_t c;
    void *np;

    if (n < *cap)
        return p;
    c = *cap ? *cap * 2 : 16;
    np = realloc(p, c * size);
    if (np != NULL)
        *cap = c;
    return np;
}

/* Append n bytes to the text *p of *len bytes in *cap, doubling it (from 256)
 * when full and keeping it NUL-terminated: false, untouched, when out of memory. */
static inline bool iw_append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *np = realloc(*p, c);
        if (np == NULL)
            return false;
        *p = np;
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
    return true;
}

/* qsort, which must not be handed the NULL of an empty array (C17 7.22.5,
 * and UBSan says so): fewer than two elements are sorted already. */
static inline void iw_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

#endif /* ISLEWATCH_COMPILER_H */
