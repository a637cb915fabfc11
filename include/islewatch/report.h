/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report — the compliance reports of `islewatch report` (SPEC §6), the
 * figures the district's annual government report is built from:
 *
 *   water    per device and natural day: the daily mean of every GB 3838
 *            parameter, its single-factor class and the day's class (2011
 *            evaluation method); per device and site: the class
 *            distribution of the days, 达标率 (the share of samples meeting
 *            the target, see iw_water_tally), 劣Ⅴ days and the parameters
 *            that most often decide.
 *   air      per device and site, per natural day: the daily AQI of HJ 633
 *            (2012 before 2026-03-01, 2026 from then, or one forced), its
 *            level and primary pollutants, from daily averages with the
 *            GB 3095 validity minimums; 优良天数比例 (days with AQI <= 100 /
 *            days with a valid AQI) and the days per level.
 *   cameras  在线率: the share of heartbeat intervals of [from, to) in which
 *            a camera sent at least one heartbeat with online = 1, per
 *            camera and per site; a camera whose first heartbeat came after
 *            `from` counts from the interval of that heartbeat (it was not
 *            installed before), one first heard after `to` not at all.
 *
 * Computation (iw_report_water/air/cameras) reads raw points from a store
 * and fills a result struct; output (iw_report_*_write) turns a result into
 * a table, CSV or one self-contained HTML file. The two halves meet only in
 * the structs below, so each is tested alone.
 *
 * Conventions shared by the three reports (repeated in `--help` and in the
 * HTML footnote):
 *   - Samples flagged by the instrument (an HJ 212 flag other than N) are
 *     left out of every average, class and rate, and counted.
 *   - Devices are the inventory's entries of the report's source plus every
 *     device with samples in the period. A declared device that never
 *     reported is listed with no data (cameras: offline throughout). A
 *     camera heard before the period and silent in it is listed too,
 *     offline throughout, declared or not: it is a camera that went dark.
 *   - water and air cover whole natural days in a fixed UTC offset: from the
 *     day holding `from` through the day holding `to` − 1 ms. A water sample
 *     belongs to the day [00:00, 24:00) that holds it; an air hourly value
 *     labelled H covers (H − 1 h, H] and the day is the hours ending
 *     01:00 .. 24:00 (HJ 663), so a sample at exactly 00:00 closes the
 *     previous day. Unless opts.tz_given, an air station's days are those
 *     of its own air_quality rule's zone, under the same dates.
 *   - cameras cover [from, to) exactly, cut into intervals from `from`; the
 *     last interval may be shorter and counts as one.
 *
 * Ownership: a report owns every string and array it points to; free it
 * with its iw_report_*_free (NULL-safe). Options are borrowed for the call.
 * Nothing here keeps global state; calls on different reports may run on
 * different threads.
 */
#ifndef ISLEWATCH_REPORT_H
#define ISLEWATCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "islewatch/compiler.h"
#include "islewatch/config.h"
#include "islewatch/err.h"
#include "islewatch/standards.h"

struct iw_store;

enum iw_report_kind { IW_REPORT_WATER = 0, IW_REPORT_AIR, IW_REPORT_CAMERAS };
enum iw_report_format { IW_REPORT_TABLE = 0, IW_REPORT_CSV, IW_REPORT_HTML };

/* opts.standard: choose per day (2012 before 2026-03-01 local, 2026 from it). */
#define IW_REPORT_STD_AUTO (-1)
/* Longest water/air period, in natural days (about ten years). */
#define IW_REPORT_MAX_DAYS 3700
/* Most camera intervals in one report (a year of 1 s intervals). */
#define IW_REPORT_MAX_INTERVALS 40000000LL
/* Default camera heartbeat interval (GB/T 28181 keepalive default). */
#define IW_REPORT_DEFAULT_INTERVAL_MS 60000

struct iw_report_opts {
    int64_t from, to;                       /* the period [from, to), UTC ms; from < to */
    const char *site_glob;                  /* sites to include (iw_glob_match); NULL: all */
    const char *source;                     /* first series level; NULL: "water", "air", "camera" */
    int tz_offset_min;                      /* local time = UTC + this; default +480 */
    bool tz_given;                          /* tz_offset_min was asked for (--tz): air
                                             * stations use it too; else each uses its
                                             * air_quality rule's timezone (iw_air_device) */
    const struct iw_device_cfg *devices;    /* inventory (targets, body, names); may be NULL */
    size_t n_devices;
    int default_target;                     /* 1..5 for devices without one; default 3 (III) */
    const struct iw_rule *rules;            /* the config's rules: a water_quality rule's
                                             * target/body (per site) win, as in the rules */
    size_t n_rules;
    int standard;                           /* IW_REPORT_STD_AUTO or enum iw_aqi_standard */
    int64_t interval_ms;                    /* cameras; default 60 s */
    int64_t generated_ms;                   /* shown in the HTML; default iw_now_ms() at init */
    int64_t raw_retention_ms;               /* storage.retention.raw; 0: not known */
};

/* Defaults as documented above; from/to are left 0 (the caller sets them). */
void iw_report_opts_init(struct iw_report_opts *o);

/*
 * The natural days of o's period: *first_day is the UTC ms of the local
 * midnight that starts the day holding o->from, *n_days counts through the
 * day holding o->to − 1 ms. IW_OK; IW_E_INVAL (diag says why) when
 * from >= to, the offset is out of range, or the period is longer than
 * IW_REPORT_MAX_DAYS.
 */
IW_NODISCARD int iw_report_days(const struct iw_report_opts *o, int64_t *first_day,
                                size_t *n_days, struct iw_diag *diag);

/*
 * The time before which raw samples are past storage.retention.raw (now −
 * the retention) when o's period starts before it: the reports read raw
 * samples, so they have no data there and say so. INT64_MIN when the period
 * is inside the retention or the retention is not known.
 */
int64_t iw_report_kept_from(const struct iw_report_opts *o);

/* "2026-03-01": the local date of ts at tz_offset_min into buf (>= 11 bytes). Returns buf. */
char *iw_report_date(int64_t ts, int tz_offset_min, char *buf, size_t len);

/* "+08:00" for 480, "-03:30" for -210 into buf (>= 7 bytes). Returns buf. */
char *iw_report_tz_format(int tz_offset_min, char *buf, size_t len);

/*
 * A time-zone argument: a UTC offset ("+08:00", "+0800", "+8", "-03:30",
 * "UTC+8"), "UTC"/"Z", or a zone without daylight saving time, the same
 * list the config's `timezone:` knows (Asia/Shanghai, Asia/Hong_Kong,
 * Asia/Urumqi +06:00, Asia/Tokyo, ...). IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_report_tz_parse(const char *s, int *tz_offset_min);

/*
 * A --from/--to argument: a bare local date "2026-01-01" is that day's local
 * midnight at tz_offset_min; anything else goes to iw_time_arg_parse (RFC
 * 3339, epoch ms, "now", "-30d"). IW_OK or IW_E_INVAL.
 */
IW_NODISCARD int iw_report_time_parse(const char *s, int64_t now_ms, int tz_offset_min,
                                      int64_t *out_ms);

/* ========================================================================
 * Water: GB 3838-2002 daily classes
 * ====================================================================== */

struct iw_water_day {
    int64_t  day;                           /* UTC ms of the local midnight */
    int      cls;                           /* 1..6 (6 = 劣Ⅴ); 0: no deciding parameter */
    bool     meets;                         /* 1 <= cls <= the device's target */
    double   mean[IW_WATER_NPARAM];         /* daily mean of the unflagged samples */
    uint32_t n[IW_WATER_NPARAM];            /* samples in the mean; 0: no data that day */
    uint8_t  param_class[IW_WATER_NPARAM];  /* 1..6; 0: absent or no class (temperature) */
    bool     deciding[IW_WATER_NPARAM];     /* decides under the 2011 method and is at cls */
    uint32_t n_flagged;                     /* flagged samples left out that day */
    uint32_t samples;                       /* samples of the day with a class */
    uint32_t samples_meeting;               /* of those, at or better than the target */
};

/*
 * 达标率 counts samples, not days. A sample is one message of the device:
 * its parameters at one timestamp. Its class is the single-factor class of
 * the unflagged items in it that decide under the 2011 method (temperature,
 * fecal coliform and TN in rivers do not); it meets the target when that
 * class is at or better than the device's target. A sample without such an
 * item is not counted. A site adds up its stations' samples.
 */
struct iw_water_tally {
    size_t days;                            /* days with an unflagged sample */
    size_t days_classed;                    /* days with a class */
    size_t by_class[7];                     /* [1..6]: days in Ⅰ..Ⅴ, 劣Ⅴ; [0] unused */
    size_t days_meeting;                    /* days whose class meets the target */
    uint64_t samples;                       /* samples with a class */
    uint64_t samples_meeting;               /* samples meeting the target */
    double rate;                            /* 达标率 = samples_meeting / samples; NAN if 0 */
    /* Days on which the parameter set the day's class (Ⅱ or worse: at Ⅰ
     * nothing limits), and days on which it was worse than the target. */
    size_t deciding[IW_WATER_NPARAM];
    size_t over_target[IW_WATER_NPARAM];
    uint64_t flagged;                       /* flagged samples left out */
    /* The period's class (SPEC §6 "water class per site"): a device's from
     * the means over the period of its unflagged samples, single-factor as a
     * day's; a site's the worst of its devices'; 0: none (also for the total).
     * meets: that class meets the target (a site: every classed device's). */
    int cls;
    bool meets;
};

struct iw_water_device {
    char *site, *device;
    char *name;                             /* inventory display name, or NULL */
    bool  declared;                         /* in the inventory */
    int   target;                           /* 1..5 */
    enum iw_water_body body;
    struct iw_water_day *days;              /* days with data, in time order */
    size_t n_days;
    struct iw_water_tally tally;
};

struct iw_water_site {
    const char *site;                       /* points into the first device */
    size_t first, n;                        /* devices dev[first .. first + n) */
    struct iw_water_tally tally;            /* the devices' days added up (station-days) */
};

struct iw_water_report {
    int64_t from, to, first_day, generated_ms;
    int64_t kept_from;                      /* iw_report_kept_from */
    size_t  n_days;                         /* natural days in the period */
    int     tz_offset_min;
    bool    inventory;                      /* the inventory declares devices of the source */
    struct iw_water_device *dev;            /* sorted by site, then device */
    size_t n_dev;
    struct iw_water_site *sites;
    size_t n_sites;
    struct iw_water_tally total;            /* every device */
    bool   param_seen[IW_WATER_NPARAM];     /* a parameter with a daily mean somewhere */
};

/*
 * Compute the water report from the raw samples of <source>/<site>/<device>/
 * <metric> series whose metric is a GB 3838 parameter (iw_water_param_find);
 * other metrics (the rule engine's "class" series among them) are ignored.
 * Target and body come from the inventory entry, else opts->default_target
 * and river. On IW_OK *out is the caller's (iw_report_water_free). Errors:
 * IW_E_INVAL (bad options; diag), IW_E_STORE, IW_E_NOMEM.
 */
IW_NODISCARD int iw_report_water(struct iw_store *st, const struct iw_report_opts *opts,
                                 struct iw_water_report **out, struct iw_diag *diag);
void iw_report_water_free(struct iw_water_report *r);

/*
 * The parameters that most often decided the class in t (deciding days,
 * then over-target days, then enum order), those with a deciding day only,
 * at most max of them. Returns how many were written to out.
 */
size_t iw_water_tally_worst(const struct iw_water_tally *t, enum iw_water_param *out, size_t max);

/* ========================================================================
 * Air: HJ 633 daily AQI
 * ====================================================================== */

struct iw_air_day {
    int64_t day;                            /* UTC ms of the local midnight */
    enum iw_aqi_standard std;
    bool    valid;                          /* counts toward 优良天数比例 */
    bool    partial;                        /* valid although a measured pollutant is missing:
                                             * AQI > 100 on the others (HJ 633-2026 §5.3.1) */
    int     aqi;                            /* -1: none could be computed */
    int     level;                          /* 1..6; 0 when aqi is -1 */
    unsigned primary;                       /* IW_AQI_BIT mask of the primary items; 0 if aqi <= 50 */
    unsigned measured;                      /* 1 << pollutant: the station measured it that day
                                             * (see iw_report_air) */
    unsigned missing;                       /* 1 << pollutant: measured, no valid daily value */
    struct iw_avg item[IW_AQI_NITEMS];      /* the daily values (24H, O3_8H, 2012: O3_1H);
                                             * n = hours, 8 h means, or devices for a site */
    int     iaqi[IW_AQI_NITEMS];            /* -1 when not used */
    uint32_t n_flagged;                     /* flagged samples left out that day */
    uint32_t n_devices;                     /* a site's day: devices with data; 0 for a device */
};

struct iw_air_tally {
    size_t days;                            /* days with any sample (listed) */
    size_t valid_days;
    size_t good_days;                       /* valid and AQI <= 100 */
    size_t invalid_days;                    /* listed but not valid */
    size_t nodata_days;                     /* days of the period without any sample */
    size_t by_level[7];                     /* [1..6] valid days per level */
    double good_rate;                       /* 优良天数比例 = good_days / valid_days; NAN if 0 */
    int    max_aqi;                         /* -1 when no valid day */
    uint64_t flagged;
};

struct iw_air_device {
    char *site, *device, *name;
    bool  declared;
    int   tz_offset_min;                    /* the station's zone: the timezone of the first
                                             * air_quality rule selecting it (per-site
                                             * override included), unless opts.tz_given.
                                             * Its days are its own natural days; a day's
                                             * `day` is still the report's midnight of the
                                             * same date, so dates line up */
    unsigned measured;                      /* 1 << pollutant: any sample in the period */
    struct iw_air_day *days;                /* days with any sample, in time order */
    size_t n_days;
    struct iw_air_tally tally;
};

/*
 * A site is one station. With several devices its daily values are the mean
 * of the devices' valid daily values (as a city averages its stations) and
 * its AQI is computed from those; the devices are also reported alone.
 */
struct iw_air_site {
    const char *site;
    size_t first, n;
    unsigned measured;
    struct iw_air_day *days;
    size_t n_days;
    struct iw_air_tally tally;
};

struct iw_air_report {
    int64_t from, to, first_day, generated_ms;
    int64_t kept_from;                      /* iw_report_kept_from */
    size_t  n_days;
    int     tz_offset_min;
    int     standard;                       /* as requested: IW_REPORT_STD_AUTO or a standard */
    bool    std_used[2];                    /* which standards some listed day used */
    bool    inventory;                      /* the inventory declares devices of the source */
    struct iw_air_device *dev;
    size_t n_dev;
    struct iw_air_site *sites;
    size_t n_sites;
    struct iw_air_tally total;              /* the sites' tallies added up */
};

/*
 * Compute the air report from <source>/<site>/<device>/<pollutant> series
 * (so2 no2 co o3 pm10 pm25; other metrics ignored). Hourly values: the mean
 * of the minute means of (H − 1 h, H], valid with >= 45 minutes; a lone
 * sample stamped exactly at H is a device's hourly value and is valid (as in
 * the rule engine). Daily: 24 h means valid with >= 20 valid hours; O3 daily
 * max 8 h with >= 6 hours per window (iw_avg_o3_max8h); 2012 also O3 daily
 * max 1 h. A pollutant is measured from its first stored sample on (in the
 * period or before it, as the air_quality rules have it, so a day's
 * value does not depend on how far back the period reaches) until 24 hours
 * in a row of the station's data have none of it; one in the inventory
 * entry's `pollutants:` is measured always. A day is valid when every
 * pollutant measured at any of its hours has its valid daily value, or when
 * AQI > 100 already on the ones present.
 */
IW_NODISCARD int iw_report_air(struct iw_store *st, const struct iw_report_opts *opts,
                               struct iw_air_report **out, struct iw_diag *diag);
void iw_report_air_free(struct iw_air_report *r);

/* The standard of a day under opts->standard (auto: switch at 2026-03-01 local). */
enum iw_aqi_standard iw_report_air_standard(int standard, int64_t day, int tz_offset_min);

/* ========================================================================
 * Cameras: 在线率
 * ====================================================================== */

struct iw_camera {
    char *site, *device, *name;
    bool  declared;
    uint64_t intervals;                     /* intervals in the period */
    uint64_t online;                        /* intervals with a heartbeat online = 1 */
    uint64_t heartbeats;                    /* unflagged "online" samples in the period */
    uint64_t flagged;
    int64_t  first_seen, last_seen;         /* of those heartbeats; INT64_MIN when none */
    int64_t  in_service;                    /* its first heartbeat in the store when that is
                                             * after `from` (intervals count from its
                                             * interval; none when at or after `to`),
                                             * INT64_MIN otherwise */
    int64_t  last_heard;                    /* no heartbeat in the period: its last one
                                             * before `from` (silent since then), INT64_MIN
                                             * when it never sent one */
    double   rate;                          /* 在线率 = online / intervals; NAN when none */
};

struct iw_camera_site {
    const char *site;
    size_t first, n;
    size_t never_seen;                      /* cameras that never sent a heartbeat */
    uint64_t intervals, online;             /* summed over the site's cameras */
    double rate;                            /* online / intervals; NAN when 0 */
};

struct iw_camera_report {
    int64_t from, to, interval_ms, generated_ms;
    int64_t kept_from;                      /* iw_report_kept_from */
    int     tz_offset_min;
    uint64_t n_intervals;                   /* per camera */
    bool    inventory;                      /* the inventory declares devices of the source */
    struct iw_camera *cams;
    size_t n_cams;
    struct iw_camera_site *sites;
    size_t n_sites;
    struct iw_camera_site total;            /* site NULL */
};

/*
 * Compute the camera report from <source>/<site>/<device>/online series: an
 * interval [from + k·interval, from + (k+1)·interval) ∩ [from, to) is online
 * when an unflagged sample with value 1 (true) is in it.
 */
IW_NODISCARD int iw_report_cameras(struct iw_store *st, const struct iw_report_opts *opts,
                                   struct iw_camera_report **out, struct iw_diag *diag);
void iw_report_cameras_free(struct iw_camera_report *r);

/* ========================================================================
 * Output
 * ====================================================================== */

/*
 * Write a report to out: an aligned table, CSV (header line, one row per
 * device-day, device and site, the kind of row in column "row"; rates as
 * fractions 0..1), or one self-contained HTML file (inline CSS and SVG, no
 * external resources, printable). IW_OK, IW_E_IO when writing failed,
 * IW_E_INVAL for a NULL argument or an unknown format.
 */
IW_NODISCARD int iw_report_water_write(const struct iw_water_report *r,
                                       enum iw_report_format fmt, FILE *out);
IW_NODISCARD int iw_report_air_write(const struct iw_air_report *r,
                                     enum iw_report_format fmt, FILE *out);
IW_NODISCARD int iw_report_cameras_write(const struct iw_camera_report *r,
                                         enum iw_report_format fmt, FILE *out);

/* The definitions above as text lines (for --help and the HTML footnote). */
extern const char *const iw_report_notes_water[];
extern const char *const iw_report_notes_air[];
extern const char *const iw_report_notes_cameras[];
extern const char *const iw_report_notes_common[];

/* ========================================================================
 * From text arguments to a written report: what `islewatch report --db`
 * and the daemon's GET /api/v1/report/KIND share, so both print the same
 * bytes for the same data and arguments.
 * ====================================================================== */

/* The arguments as the user wrote them; NULL: not given (from and to are required). */
struct iw_report_args {
    const char *from, *to;                  /* iw_report_time_parse */
    const char *site;                       /* site glob */
    const char *tz;                         /* iw_report_tz_parse */
    const char *standard;                   /* auto, HJ633-2026, HJ633-2012 */
    const char *interval;                   /* cameras: a duration >= 1s */
    const char *source;                     /* first series level */
};

/* "water" | "air" | "cameras" -> *out; IW_E_INVAL otherwise. */
IW_NODISCARD int iw_report_kind_parse(const char *s, enum iw_report_kind *out);
/* "table" | "csv" | "html" -> *out; IW_E_INVAL otherwise. */
IW_NODISCARD int iw_report_format_parse(const char *s, enum iw_report_format *out);

/*
 * Fill *o from a. cfg (BORROWED, may be NULL; must outlive *o, whose devices
 * point into it) gives the inventory and the default time zone: the first
 * air_quality rule's timezone, else +08:00. Relative times count from now_ms.
 * IW_OK, or IW_E_INVAL with one line in diag naming the argument, its value
 * and what to write instead.
 */
IW_NODISCARD int iw_report_opts_parse(const struct iw_report_args *a, const struct iw_config *cfg,
                                      int64_t now_ms, struct iw_report_opts *o,
                                      struct iw_diag *diag);

/*
 * Compute the report `kind` from st and write it to out in fmt. IW_OK;
 * otherwise the error of the computation (diag says why) or IW_E_IO when
 * writing failed.
 */
IW_NODISCARD int iw_report_run(struct iw_store *st, enum iw_report_kind kind,
                               const struct iw_report_opts *o, enum iw_report_format fmt,
                               FILE *out, struct iw_diag *diag);

#endif /* ISLEWATCH_REPORT_H */
