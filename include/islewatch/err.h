/*
 * One error vocabulary for the whole project: functions return IW_OK (0) or a
 * negative enum iw_err. Where the caller must show the user more than a code
 * (a file position, RocksDB's text), the function fills a struct iw_diag.
 */
#ifndef ISLEWATCH_ERR_H
#define ISLEWATCH_ERR_H

#include <stddef.h>
#include "islewatch/compiler.h"

enum iw_err {
    IW_OK       =  0,
    IW_E_NOMEM  = -1,
    IW_E_INVAL  = -2,
    IW_E_IO     = -3,
    IW_E_FULL   = -4,   /* queue full: backpressure, not a bug */
    IW_E_CONFIG = -5,
    IW_E_STORE  = -6,
    IW_E_MQTT   = -7,
    IW_E_STATE  = -8,   /* called in the wrong lifecycle state */
    IW_E_EMPTY  = -9,   /* queue empty */
    IW_E_NOTFOUND = -10,
};

/* Never NULL; unknown codes give "unknown error". */
const char *iw_strerror(int rc);

/*
 * Diagnostics: a list of lines, each already formatted as the user sees it,
 * e.g. "islewatch.yaml:41:12: error: rule \"nh3n\": unknown key ...".
 * A zeroed struct is an empty list. Not thread-safe; one owner.
 */
struct iw_diag {
    char  **lines;
    size_t  n;
    size_t  cap;
};

/* Append "FILE:LINE:COL: error: MESSAGE" (file NULL: just the message). */
void iw_diag_add(struct iw_diag *d, const char *file, size_t line, size_t col,
                 const char *fmt, ...) IW_PRINTF(5, 6);
/* Replace the whole list with one message (for single-error APIs). */
void iw_diag_set(struct iw_diag *d, const char *file, size_t line, size_t col,
                 const char *fmt, ...) IW_PRINTF(5, 6);
/* First line or "" (never NULL). */
const char *iw_diag_first(const struct iw_diag *d);
void iw_diag_fini(struct iw_diag *d);

#endif /* ISLEWATCH_ERR_H */
