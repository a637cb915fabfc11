/* Clocks, durations and RFC 3339 parsing/formatting. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "islewatch/clock.h"
#include "islewatch/err.h"

int64_t iw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t iw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int iw_duration_parse(const char *s, int64_t *out_ms)
{
    const char *p = s;
    int64_t total = 0;

    if (s == NULL || *s == '\0')
        return IW_E_INVAL;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return IW_OK;
    }
    /* One or more "<int><unit>" groups, e.g. "1h30m". */
    while (*p) {
        char *end;
        int64_t unit;
        long long v;

        if (!isdigit((unsigned char)*p))
            return IW_E_INVAL;
        errno = 0;
        v = strtoll(p, &end, 10);
        if (errno != 0 || end == p)
            return IW_E_INVAL;
        p = end;
        if (strncmp(p, "ms", 2) == 0) { unit = 1; p += 2; }
        else if (*p == 's') { unit = 1000; p++; }
        else if (*p == 'm') { unit = IW_MS_PER_MIN; p++; }
        else if (*p == 'h') { unit = IW_MS_PER_HOUR; p++; }
        else if (*p == 'd') { unit = IW_MS_PER_DAY; p++; }
        else if (*p == 'w') { unit = 7 * IW_MS_PER_DAY; p++; }
        else if (*p == 'y') { unit = 365 * IW_MS_PER_DAY; p++; }
        else return IW_E_INVAL;
        /* The sum too stays far from overflow, for callers that add it to a time. */
        if (v > INT64_MAX / unit / 4 || total > INT64_MAX / 4 - v * unit)
            return IW_E_INVAL;
        total += v * unit;
    }
    *out_ms = total;
    return IW_OK;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int iw_rfc3339_parse(const char *s, size_t len, int64_t *out_ms)
{
    int Y, M, D, h, m, sec, frac_ms = 0, off = 0;
    size_t i = 19;
    struct tm tm = {0};

    if (len < 20)
        return IW_E_INVAL;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return IW_E_INVAL;
    if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || m > 59 || sec > 60)
        return IW_E_INVAL;                     /* no 2026-02-31: timegm would roll it over */
    if (i < len && s[i] == '.') {
        int scale = 100, nd = 0;
        i++;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (nd < 3)
                frac_ms += (s[i] - '0') * scale;
            scale /= 10;
            nd++;
            i++;
        }
        if (nd == 0)
            return IW_E_INVAL;
    }
    if (i >= len)
        return IW_E_INVAL;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (len - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return IW_E_INVAL;
        off = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return IW_E_INVAL;
    }
    if (i != len)
        return IW_E_INVAL;
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *out_ms = (int64_t)t * 1000 + frac_ms - (int64_t)off * IW_MS_PER_MIN;
    /* RFC 3339 5.7: second 60 is a leap second, which is inserted only at
     * 23:59:60 UTC (07:59:60+08:00); it is taken as the next second, as
     * POSIX time has no leap second. At any other minute it is no time. */
    if (sec == 60 && iw_floor_to(*out_ms - 1000, IW_MS_PER_DAY) + IW_MS_PER_DAY - 1000
                     != iw_floor_to(*out_ms - 1000, 1000))
        return IW_E_INVAL;
    return IW_OK;
}

/* Years 0000..9999, what RFC 3339 can write: epoch ms outside are no time a user
 * means, and arithmetic on them (range widths, bucket edges) would overflow. */
#define TIME_ARG_MIN_MS (-62167219200000LL)    /* 0000-01-01T00:00:00Z */
#define TIME_ARG_MAX_MS 253402300799999LL      /* 9999-12-31T23:59:59.999Z */

/* 10^10 ms: about 116 days; no one means 1969-09-07 by a number that short. */
#define NEG_EPOCH_MIN_MS 10000000000LL

static int time_arg(const char *s, int64_t now_ms, int64_t *out_ms)
{
    int64_t d;
    char *end;
    long long v;

    if (s == NULL || *s == '\0')
        return IW_E_INVAL;
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return IW_OK;
    }
    if ((s[0] == '-' || s[0] == '+') && iw_duration_parse(s + 1, &d) == IW_OK) {
        *out_ms = s[0] == '-' ? now_ms - d : now_ms + d;
        return IW_OK;
    }
    if ((strncmp(s, "now-", 4) == 0 || strncmp(s, "now+", 4) == 0)
        && iw_duration_parse(s + 4, &d) == IW_OK) {
        *out_ms = s[3] == '-' ? now_ms - d : now_ms + d;
        return IW_OK;
    }
    /* Epoch ms is digits, after an optional '-'. strtoll alone would also
     * take "+30" (a relative time without its unit, as "-30" below: 30 ms
     * after 1970) and leading blanks (" -30"). */
    bool epoch = isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]));
    errno = 0;
    v = epoch ? strtoll(s, &end, 10) : 0;
    if (epoch && errno == 0 && end != s && *end == '\0') {
        /* "-30" is a relative time without its unit, not 30 ms before 1970:
         * a negative epoch that close to 0 is refused (the caller's message
         * shows -30m); older times in epoch ms (-62167219200000) still read. */
        if (s[0] == '-' && v > -NEG_EPOCH_MIN_MS)
            return IW_E_INVAL;
        *out_ms = v;
        return IW_OK;
    }
    return iw_rfc3339_parse(s, strlen(s), out_ms);
}

int iw_time_arg_parse(const char *s, int64_t now_ms, int64_t *out_ms)
{
    int64_t t;

    if (time_arg(s, now_ms, &t) != IW_OK || t < TIME_ARG_MIN_MS || t > TIME_ARG_MAX_MS)
        return IW_E_INVAL;
    *out_ms = t;
    return IW_OK;
}

char *iw_rfc3339_format(int64_t ms, char *buf, size_t len)
{
    int64_t sec = iw_floor_to(ms, 1000) / 1000;
    time_t t = (time_t)sec;
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms - sec * 1000));
    return buf;
}

/* ---- time zones (fixed offsets) ---- */

static const struct { const char *name; int offset_min; } fixed_zones[] = {
    { "Asia/Shanghai", 480 }, { "Asia/Chongqing", 480 }, { "Asia/Harbin", 480 },
    { "PRC", 480 }, { "Asia/Hong_Kong", 480 }, { "Asia/Macau", 480 },
    { "Asia/Taipei", 480 }, { "Asia/Singapore", 480 }, { "Asia/Urumqi", 360 },
    { "Asia/Tokyo", 540 }, { "Asia/Seoul", 540 }, { "Asia/Kolkata", 330 },
    { "Asia/Bangkok", 420 }, { "Asia/Jakarta", 420 }, { "Asia/Dubai", 240 },
    { "UTC", 0 }, { "Etc/UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
};

int iw_tz_parse(const char *s, int *offset_min)
{
    int h = 0, m = 0, sign;
    const char *p = s;

    if (s == NULL || offset_min == NULL)
        return IW_E_INVAL;
    for (size_t i = 0; i < IW_ARRAY_LEN(fixed_zones); i++) {
        if (strcmp(s, fixed_zones[i].name) == 0) {
            *offset_min = fixed_zones[i].offset_min;
            return IW_OK;
        }
    }
    if (strncmp(p, "UTC", 3) == 0)
        p += 3;
    if (*p != '+' && *p != '-')
        return IW_E_INVAL;
    sign = *p++ == '-' ? -1 : 1;
    /* "+8", "+08", "+0800", "+08:00" */
    if (!isdigit((unsigned char)p[0]))
        return IW_E_INVAL;
    h = p[0] - '0';
    p++;
    if (isdigit((unsigned char)*p))
        h = h * 10 + (*p++ - '0');
    if (*p == ':')
        p++;
    if (*p != '\0') {
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2] != '\0')
            return IW_E_INVAL;
        m = (p[0] - '0') * 10 + (p[1] - '0');
    }
    if (m > 59 || h * 60 + m > 14 * 60)
        return IW_E_INVAL;
    *offset_min = sign * (h * 60 + m);
    return IW_OK;
}

const char *iw_tz_name(size_t i)
{
    return i < IW_ARRAY_LEN(fixed_zones) ? fixed_zones[i].name : NULL;
}
