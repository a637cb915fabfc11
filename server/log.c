/* One-line log records with a level; rate-limited complaints. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "islewatch/log.h"

int iw_log_threshold = IW_LOG_LEVEL_INFO;
static int log_journal;

void iw_log_set_level(enum iw_log_level lvl) { iw_log_threshold = (int)lvl; }
void iw_log_set_journal(int on) { log_journal = on; }

const char *iw_log_journal_prefix(enum iw_log_level lvl)
{
    static const char *const prefix[] = { "<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>" };
    return log_journal && (unsigned)lvl < 8 ? prefix[lvl] : "";
}

int iw_log_level_parse(const char *s)
{
    if (strcmp(s, "error") == 0) return IW_LOG_LEVEL_ERROR;
    if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0) return IW_LOG_LEVEL_WARN;
    if (strcmp(s, "info") == 0) return IW_LOG_LEVEL_INFO;
    if (strcmp(s, "debug") == 0) return IW_LOG_LEVEL_DEBUG;
    return -1;
}

static const char *level_word(enum iw_log_level lvl)
{
    switch (lvl) {
    case IW_LOG_LEVEL_ERROR: return "ERROR";
    case IW_LOG_LEVEL_WARN:  return "WARN";
    case IW_LOG_LEVEL_INFO:  return "INFO";
    default:                 return "DEBUG";
    }
}

static void log_vwrite(enum iw_log_level lvl, const char *mod, const char *fmt, va_list ap)
{
    char buf[2048];
    int n;

    if (log_journal) {
        n = snprintf(buf, sizeof(buf), "<%d>%s: ", (int)lvl, mod);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_word(lvl), mod);
    }
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = 0;
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    /* One record, one line: fold any newline a message carries. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "%s\n", buf);
}

void iw_log_write(enum iw_log_level lvl, const char *mod, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, mod, fmt, ap);
    va_end(ap);
}

/*
 * A token bucket kept as one atomic time (GCRA): tat_ns is when the bucket
 * would be full again. A line spends one interval of it; a line may go out
 * while tat_ns lies at most BURST - 1 intervals ahead of now. So a new
 * condition logs at once, a flood gets BURST lines and then one per
 * interval, and quiet refills the bucket: the limiter forgets old floods.
 */
#define COMPLAIN_INTERVAL_NS (60 * 1000000000LL)
#define COMPLAIN_BURST 5

bool iw_complaint_admit(struct iw_complaint *c, int64_t now, uint64_t *suppressed)
{
    /* relaxed: the limiter only needs each field to be atomic; the CAS makes
     * each line spend its own token when threads race. */
    int64_t tat = atomic_load_explicit(&c->tat_ns, memory_order_relaxed);
    for (;;) {
        int64_t from = tat > now ? tat : now;
        if (from - now > (COMPLAIN_BURST - 1) * COMPLAIN_INTERVAL_NS) {
            atomic_fetch_add_explicit(&c->suppressed, 1, memory_order_relaxed);
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&c->tat_ns, &tat, from + COMPLAIN_INTERVAL_NS,
                                                  memory_order_relaxed, memory_order_relaxed))
            break;
    }
    *suppressed = atomic_exchange_explicit(&c->suppressed, 0, memory_order_relaxed);
    return true;
}

void iw_complain(struct iw_complaint *c, enum iw_log_level lvl, const char *mod,
                 const char *fmt, ...)
{
    struct timespec ts;
    uint64_t suppressed;
    va_list ap;

    if ((int)lvl > iw_log_threshold)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (!iw_complaint_admit(c, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec, &suppressed))
        return;

    char msg[1536];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed > 0)
        iw_log_write(lvl, mod, "%s (%llu similar suppressed)", msg, (unsigned long long)suppressed);
    else
        iw_log_write(lvl, mod, "%s", msg);
}
