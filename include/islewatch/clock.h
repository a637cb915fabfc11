/*
 * Time: every timestamp inside islewatch is int64 milliseconds since the
 * Unix epoch (UTC), the unit of SPEC §1's "ts" and of stored keys.
 */
#ifndef ISLEWATCH_CLOCK_H
#define ISLEWATCH_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include "islewatch/compiler.h"

#define IW_MS_PER_MIN  60000LL
#define IW_MS_PER_HOUR 3600000LL
#define IW_MS_PER_DAY  86400000LL

int64_t iw_now_ms(void);          /* wall clock */
int64_t iw_mono_ns(void);         /* monotonic, for intervals */

/*
 * Durations: "500ms", "30s", "10m", "4h", "7d", "1y" (365 d), also "0".
 * Returns IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_duration_parse(const char *s, int64_t *out_ms);

/*
 * RFC 3339 ("2026-11-29T10:00:00Z", "...T10:00:00.123+08:00", date-time with
 * a space instead of 'T' too). Returns IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_rfc3339_parse(const char *s, size_t len, int64_t *out_ms);

/*
 * A user's time argument: RFC 3339, epoch milliseconds, "now", or relative
 * to now_ms ("-1h", "-30m", "+5m"), within the years 0000..9999. Returns
 * IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_time_arg_parse(const char *s, int64_t now_ms, int64_t *out_ms);

/* "2026-11-29T10:00:00.000Z" into buf (at least 32 bytes). Returns buf. */
char *iw_rfc3339_format(int64_t ms, char *buf, size_t len);

/*
 * Fixed UTC offsets, for the natural days of SPEC §4 (`timezone:`): the
 * names of zones without daylight saving ("Asia/Shanghai", "UTC", ...) or an
 * offset ("+08:00", "+8", "UTC+0800", "-05:30"). Returns IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_tz_parse(const char *s, int *offset_min);
/* The i-th known zone name (for "did you mean" hints); NULL past the end. */
const char *iw_tz_name(size_t i);

/* Floor division for bucket starts (correct for negative times too). */
static inline int64_t iw_floor_to(int64_t t, int64_t step)
{
    int64_t q = t / step;
    if ((t % step) != 0 && t < 0)
        q--;
    return q * step;
}

#endif /* ISLEWATCH_CLOCK_H */
