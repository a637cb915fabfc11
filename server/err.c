/* Error strings and the diagnostic list. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/err.h"

const char *iw_strerror(int rc)
{
    switch (rc) {
    case IW_OK:          return "success";
    case IW_E_NOMEM:     return "out of memory";
    case IW_E_INVAL:     return "invalid argument";
    case IW_E_IO:        return "I/O error";
    case IW_E_FULL:      return "queue full";
    case IW_E_CONFIG:    return "configuration error";
    case IW_E_STORE:     return "storage error";
    case IW_E_MQTT:      return "MQTT error";
    case IW_E_STATE:     return "wrong state";
    case IW_E_EMPTY:     return "queue empty";
    case IW_E_NOTFOUND:  return "not found";
    default:             return "unknown error";
    }
}

static void diag_vadd(struct iw_diag *d, const char *file, size_t line, size_t col,
                      const char *fmt, va_list ap)
{
    char msg[1024];
    char *out = NULL;
    int n;

    if (d == NULL)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (file != NULL && line > 0)
        n = asprintf(&out, "%s:%zu:%zu: error: %s", file, line, col, msg);
    else if (file != NULL)
        n = asprintf(&out, "%s: error: %s", file, msg);
    else
        n = asprintf(&out, "%s", msg);
    if (n < 0)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        char **l = realloc(d->lines, cap * sizeof(*l));
        if (l == NULL) {
            free(out);
            return;
        }
        d->lines = l;
        d->cap = cap;
    }
    d->lines[d->n++] = out;
}

void iw_diag_add(struct iw_diag *d, const char *file, size_t line, size_t col,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, file, line, col, fmt, ap);
    va_end(ap);
}

void iw_diag_set(struct iw_diag *d, const char *file, size_t line, size_t col,
                 const char *fmt, ...)
{
    va_list ap;
    if (d == NULL)
        return;
    iw_diag_fini(d);
    va_start(ap, fmt);
    diag_vadd(d, file, line, col, fmt, ap);
    va_end(ap);
}

const char *iw_diag_first(const struct iw_diag *d)
{
    return (d != NULL && d->n > 0) ? d->lines[0] : "";
}

void iw_diag_fini(struct iw_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->lines[i]);
    free(d->lines);
    d->lines = NULL;
    d->n = d->cap = 0;
}
