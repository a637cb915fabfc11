/*
 * Logging: one line per record, "LEVEL module: message", to stderr (journald
 * picks the level up from the "<N>" prefix when IW_LOG_JOURNAL is set by the
 * daemon under systemd). The level is tested before any formatting.
 */
#ifndef ISLEWATCH_LOG_H
#define ISLEWATCH_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include "islewatch/compiler.h"

enum iw_log_level {
    IW_LOG_LEVEL_ERROR = 3,   /* syslog numbering, so journald prefixes are direct */
    IW_LOG_LEVEL_WARN  = 4,
    IW_LOG_LEVEL_INFO  = 6,
    IW_LOG_LEVEL_DEBUG = 7,
};

extern int iw_log_threshold;      /* records above it are skipped */

void iw_log_set_level(enum iw_log_level lvl);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int iw_log_level_parse(const char *s);
/* journald style "<N>" prefixes instead of "LEVEL" words. */
void iw_log_set_journal(int on);
/* The "<N>" prefix of a line written outside iw_log_write at level lvl: "" unless
 * iw_log_set_journal is on. */
const char *iw_log_journal_prefix(enum iw_log_level lvl);
void iw_log_write(enum iw_log_level lvl, const char *mod, const char *fmt, ...)
    IW_PRINTF(3, 4);

#define IW_LOG(lvl, mod, ...)                                   \
    do {                                                        \
        if ((int)(lvl) <= iw_log_threshold)                     \
            iw_log_write((lvl), (mod), __VA_ARGS__);            \
    } while (0)

#define IW_LOG_ERROR(mod, ...) IW_LOG(IW_LOG_LEVEL_ERROR, (mod), __VA_ARGS__)
#define IW_LOG_WARN(mod, ...)  IW_LOG(IW_LOG_LEVEL_WARN,  (mod), __VA_ARGS__)
#define IW_LOG_INFO(mod, ...)  IW_LOG(IW_LOG_LEVEL_INFO,  (mod), __VA_ARGS__)
#define IW_LOG_DEBUG(mod, ...) IW_LOG(IW_LOG_LEVEL_DEBUG, (mod), __VA_ARGS__)

/*
 * Rate limiter for repeating conditions (zero-initialised): a token bucket of
 * 5 lines refilled by one a minute. The first reports go out at once, a flood
 * then gets one line a minute with the count of the suppressed ones, and a
 * quiet spell refills the bucket, so a new report after a few quiet minutes
 * is logged however long the earlier floods were. Thread-safe (atomics
 * only): any thread may complain.
 */
struct iw_complaint {
    _Atomic int64_t tat_ns;         /* monotonic time at which the bucket is full again */
    _Atomic uint64_t suppressed;    /* reports held back since the last line */
};
void iw_complain(struct iw_complaint *c, enum iw_log_level lvl, const char *mod,
                 const char *fmt, ...) IW_PRINTF(4, 5);
/* The limiter's decision at monotonic time now_ns (iw_complain's clock; a seam
 * for tests): true when a line may go out, with *suppressed the reports held
 * back since the previous line. */
bool iw_complaint_admit(struct iw_complaint *c, int64_t now_ns, uint64_t *suppressed);

#endif /* ISLEWATCH_LOG_H */
