/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by server/report*.c only (and the CLI's tables: iw__rp_display_width):
 * the devices a report covers. */
#ifndef ISLEWATCH_REPORT_INT_H
#define ISLEWATCH_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/report.h"

struct iw__rp_series {
    uint32_t    id;
    const char *metric;             /* into the store's series name: valid while it is open */
};

struct iw__rp_dev {
    char *site, *device;            /* owned; a report may take them (set to NULL) */
    const struct iw_device_cfg *inv;/* the inventory entry, or NULL */
    struct iw__rp_series *ser;
    size_t n_ser, cap_ser;
};

struct iw__rp_devs {
    struct iw__rp_dev *v;           /* sorted by site, then device */
    size_t n;
};

/*
 * Every device of `source` whose site matches o->site_glob: those with a
 * series in the store and those declared in o->devices, each with its
 * series. IW_OK or IW_E_NOMEM.
 */
IW_NODISCARD int iw__rp_collect(struct iw_store *st, const struct iw_report_opts *o,
                                const char *source, struct iw__rp_devs *out);
void iw__rp_devs_fini(struct iw__rp_devs *d);

/* Does o's inventory declare any device of `source`? */
bool iw__rp_has_inventory(const struct iw_report_opts *o, const char *source);

/*
 * Runs of equal site in an array of n device structs of `stride` bytes,
 * sorted by site, whose first member is `char *site` (iw_water_device,
 * iw_air_device, iw_camera): first[k], cnt[k] for k < the return value.
 * first and cnt must hold n entries.
 */
size_t iw__rp_site_runs(const void *arr, size_t n, size_t stride, size_t *first, size_t *cnt);

/* ratio a / b, NAN when b is 0. */
double iw__rp_ratio(uint64_t a, uint64_t b);

/* ---- text shared by the table, CSV and HTML writers (report.c) ---- */

/* "I".."V", "劣V" (ASCII numerals), "-" for 0 or out of range. */
const char *iw__rp_class_name(int cls);
/* A number with up to `sig` significant digits (a whole number at or above 10^sig, all of
 * its digits), no exponent for ordinary values; "" for NaN. */
char *iw__rp_num(double v, int sig, char *buf, size_t len);
/* "93.55%" or "n/a" (NaN). */
char *iw__rp_pct(double rate, char *buf, size_t len);
/* A fraction 0..1 with 4 decimals for CSV, "" for NaN. */
char *iw__rp_frac(double rate, char *buf, size_t len);
/* Parameters at the day's class (Class II or worse), "NH3-N,TP"; "" when none. */
char *iw__rp_water_deciding(const struct iw_water_day *d, char *buf, size_t len);
/* Worst parameters of a tally: "NH3-N (12), TP (3)" (sep ", ") or "NH3-N:12;TP:3" (csv). */
char *iw__rp_water_worst(const struct iw_water_tally *t, bool csv, char *buf, size_t len);
/* Primary pollutants "PM2.5,O3_8h"; "" when none. */
char *iw__rp_primary(unsigned mask, char *buf, size_t len);
/* Why an air day is invalid or partial: "PM2.5 19 h < 20; O3 8 h: 10 windows < 14"; "". */
char *iw__rp_air_note(const struct iw_air_day *d, char *buf, size_t len);
/*
 * The water report's period when it cuts a day (it counts the samples of
 * [from, to) only): "samples of 2026-05-01 12:00:00 .. 2026-05-03 00:00:00
 * only: the first day is partial"; "" when it covers whole days.
 */
char *iw__rp_water_cut_note(const struct iw_water_report *r, char *buf, size_t len);
/* Why the days up to kept_from (iw_report_kept_from) lack data, and what to do; "" for INT64_MIN. */
char *iw__rp_retention_note(int64_t kept_from, int tz, char *buf, size_t len);
/* Local date and time "2026-03-01 08:00" of ts; "-" for INT64_MIN. */
char *iw__rp_local_time(int64_t ts, int tz, char *buf, size_t len);
/* Terminal columns of a UTF-8 string: East Asian wide characters count two. */
size_t iw__rp_display_width(const char *s);
/* The last day of the period (local date of the last day's start). */
int64_t iw__rp_last_day(int64_t first_day, size_t n_days);

/* The HTML writers (report_html.c). IW_OK or IW_E_IO. */
int iw__rp_water_html(const struct iw_water_report *r, FILE *out);
int iw__rp_air_html(const struct iw_air_report *r, FILE *out);
int iw__rp_cameras_html(const struct iw_camera_report *r, FILE *out);

/* An HJ 212 flag other than N: the sample is left out. */
static inline int iw__rp_flagged(char flag)
{
    return flag != 0 && flag != 'N';
}

#endif /* ISLEWATCH_REPORT_INT_H */
