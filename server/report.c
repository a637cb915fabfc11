/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report — what the three compliance reports share: options, the natural
 * days of a period, local dates and time zones, and the list of devices a
 * report covers (store series plus the inventory). Contract in
 * islewatch/report.h; the reports themselves are report_water.c,
 * report_air.c and report_cameras.c, their output report_text.c and
 * report_html.c.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "islewatch/clock.h"
#include "islewatch/store.h"
#include "islewatch/topic.h"
#include "report_int.h"

void iw_report_opts_init(struct iw_report_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->tz_offset_min = 480;
    o->default_target = 3;
    o->standard = IW_REPORT_STD_AUTO;
    o->interval_ms = IW_REPORT_DEFAULT_INTERVAL_MS;
    o->generated_ms = iw_now_ms();
}

int64_t iw_report_kept_from(const struct iw_report_opts *o)
{
    if (o->raw_retention_ms <= 0 || o->generated_ms - o->raw_retention_ms <= o->from)
        return INT64_MIN;
    return o->generated_ms - o->raw_retention_ms;
}

int iw_report_days(const struct iw_report_opts *o, int64_t *first_day, size_t *n_days,
                   struct iw_diag *diag)
{
    int64_t first, last;

    if (o->from >= o->to) {
        iw_diag_set(diag, NULL, 0, 0, "the period is empty: --from must be before --to");
        return IW_E_INVAL;
    }
    first = iw_local_day_start(o->from, o->tz_offset_min);
    last = iw_local_day_start(o->to - 1, o->tz_offset_min);
    if (first == INT64_MIN || last == INT64_MIN) {
        iw_diag_set(diag, NULL, 0, 0, "time zone offset %d min or period out of range",
                    o->tz_offset_min);
        return IW_E_INVAL;
    }
    if ((last - first) / IW_MS_PER_DAY + 1 > IW_REPORT_MAX_DAYS) {
        iw_diag_set(diag, NULL, 0, 0, "the period spans %lld days; a report covers at most %d "
                    "(split it)", (long long)((last - first) / IW_MS_PER_DAY + 1),
                    IW_REPORT_MAX_DAYS);
        return IW_E_INVAL;
    }
    *first_day = first;
    *n_days = (size_t)((last - first) / IW_MS_PER_DAY + 1);
    return IW_OK;
}

char *iw_report_date(int64_t ts, int tz_offset_min, char *buf, size_t len)
{
    time_t t = (time_t)(iw_floor_to(ts + (int64_t)tz_offset_min * IW_MS_PER_MIN, 1000) / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        snprintf(buf, len, "?");
    else
        snprintf(buf, len, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return buf;
}

char *iw_report_tz_format(int tz_offset_min, char *buf, size_t len)
{
    int a = tz_offset_min < 0 ? -tz_offset_min : tz_offset_min;
    snprintf(buf, len, "%c%02d:%02d", tz_offset_min < 0 ? '-' : '+', a / 60 % 100, a % 60);
    return buf;
}

/* Zones without daylight saving time; the same list as the config's timezone:. */
int iw_report_tz_parse(const char *s, int *tz_offset_min)
{
    return iw_tz_parse(s, tz_offset_min);
}

int iw_report_time_parse(const char *s, int64_t now_ms, int tz_offset_min, int64_t *out_ms)
{
    int64_t midnight;
    char buf[32];

    if (s == NULL || out_ms == NULL)
        return IW_E_INVAL;
    /* A bare date is a local midnight: "--from 2026-01-01 --to 2027-01-01" is the year. */
    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
        if (iw_rfc3339_parse(buf, strlen(buf), &midnight) != IW_OK)
            return IW_E_INVAL;
        *out_ms = midnight - (int64_t)tz_offset_min * IW_MS_PER_MIN;
        return IW_OK;
    }
    return iw_time_arg_parse(s, now_ms, out_ms) == IW_OK ? IW_OK : IW_E_INVAL;
}

double iw__rp_ratio(uint64_t a, uint64_t b)
{
    return b == 0 ? NAN : (double)a / (double)b;
}

/* ---- the devices of a report ---------------------------------------------- */

static int dev_cmp(const void *a, const void *b)
{
    const struct iw__rp_dev *x = a, *y = b;
    int c = strcmp(x->site, y->site);
    return c != 0 ? c : strcmp(x->device, y->device);
}

static int push_dev(struct iw__rp_devs *d, size_t *cap, const char *site, size_t site_len,
                    const char *device, size_t device_len)
{
    struct iw__rp_dev *v;

    if (d->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        v = realloc(d->v, nc * sizeof(*v));
        if (v == NULL)
            return IW_E_NOMEM;
        d->v = v;
        *cap = nc;
    }
    v = &d->v[d->n];
    memset(v, 0, sizeof(*v));
    v->site = strndup(site, site_len);
    v->device = strndup(device, device_len);
    d->n++;
    if (v->site == NULL || v->device == NULL)
        return IW_E_NOMEM;
    return IW_OK;
}

static int push_series(struct iw__rp_dev *v, uint32_t id, const char *metric)
{
    if (v->n_ser == v->cap_ser) {
        size_t nc = v->cap_ser ? v->cap_ser * 2 : 8;
        struct iw__rp_series *s = realloc(v->ser, nc * sizeof(*s));
        if (s == NULL)
            return IW_E_NOMEM;
        v->ser = s;
        v->cap_ser = nc;
    }
    v->ser[v->n_ser++] = (struct iw__rp_series){ id, metric };
    return IW_OK;
}

static bool site_wanted(const struct iw_report_opts *o, const char *site)
{
    return o->site_glob == NULL || iw_glob_match(o->site_glob, site);
}

/* Compare two length-delimited strings as strcmp would compare their copies. */
static int lcmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

static size_t site_len(const struct iw_series *s)
{
    return (size_t)(s->device_off - s->site_off - 1);
}

static size_t device_len(const struct iw_series *s)
{
    return (size_t)(s->metric_off - s->device_off - 1);
}

/* Order of the (site, device) of two series. */
static int series_dev_order(const struct iw_series *x, const struct iw_series *y)
{
    int c = lcmp(x->name + x->site_off, site_len(x), y->name + y->site_off, site_len(y));
    return c != 0 ? c : lcmp(x->name + x->device_off, device_len(x),
                             y->name + y->device_off, device_len(y));
}

static int series_cmp(const void *a, const void *b)
{
    const struct iw_series *x = *(const struct iw_series *const *)a;
    const struct iw_series *y = *(const struct iw_series *const *)b;
    int c = series_dev_order(x, y);
    return c != 0 ? c : (x->id > y->id) - (x->id < y->id);
}

/* The store's series <source>/<site>/<device>/<metric>, grouped into devices. */
static int collect_store(struct iw_store *st, const struct iw_report_opts *o, const char *source,
                         struct iw__rp_devs *d, size_t *cap)
{
    uint32_t n = iw_store_series_count(st), m = 0;
    const struct iw_series **v = malloc((n ? n : 1) * sizeof(*v));
    size_t src_len = strlen(source);
    int rc = IW_OK;

    if (v == NULL)
        return IW_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const struct iw_series *s = iw_store_series_by_id(st, i);
        char site[256];

        /* exactly four non-empty levels, the first one `source` */
        if (s == NULL || s->site_off != src_len + 1 || memcmp(s->name, source, src_len) != 0 ||
            s->device_off <= s->site_off + 1 || s->metric_off <= s->device_off + 1 ||
            s->metric_off >= s->len || strchr(s->name + s->metric_off, '/') != NULL ||
            site_len(s) >= sizeof(site))
            continue;
        memcpy(site, s->name + s->site_off, site_len(s));
        site[site_len(s)] = '\0';
        if (site_wanted(o, site))
            v[m++] = s;
    }
    iw_sort(v, m, sizeof(*v), series_cmp);
    for (uint32_t i = 0; i < m && rc == IW_OK; i++) {
        const struct iw_series *s = v[i];
        if ((i == 0 || series_dev_order(v[i - 1], s) != 0) &&
            (rc = push_dev(d, cap, s->name + s->site_off, site_len(s),
                           s->name + s->device_off, device_len(s))) != IW_OK)
            break;
        rc = push_series(&d->v[d->n - 1], s->id, s->name + s->metric_off);
    }
    free(v);
    return rc;
}

/* Sort, and fold an inventory entry into the store's device of the same name. */
static int merge_duplicates(struct iw__rp_devs *d)
{
    size_t w = 0;

    if (d->n == 0)
        return IW_OK;                   /* d->v is NULL: qsort must not see it */
    iw_sort(d->v, d->n, sizeof(*d->v), dev_cmp);
    for (size_t r = 0; r < d->n; r++) {
        if (w > 0 && dev_cmp(&d->v[w - 1], &d->v[r]) == 0) {
            struct iw__rp_dev *dst = &d->v[w - 1], *src = &d->v[r];
            for (size_t k = 0; k < src->n_ser; k++)
                if (push_series(dst, src->ser[k].id, src->ser[k].metric) != IW_OK)
                    return IW_E_NOMEM;
            if (dst->inv == NULL)
                dst->inv = src->inv;
            free(src->site);
            free(src->device);
            free(src->ser);
            continue;
        }
        d->v[w++] = d->v[r];
    }
    d->n = w;
    return IW_OK;
}

int iw__rp_collect(struct iw_store *st, const struct iw_report_opts *o, const char *source,
                   struct iw__rp_devs *out)
{
    size_t cap = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = collect_store(st, o, source, out, &cap);
    for (size_t i = 0; rc == IW_OK && i < o->n_devices; i++) {
        const struct iw_device_cfg *inv = &o->devices[i];
        if (inv->source == NULL || inv->site == NULL || inv->device == NULL ||
            strcmp(inv->source, source) != 0 || !site_wanted(o, inv->site))
            continue;
        rc = push_dev(out, &cap, inv->site, strlen(inv->site), inv->device, strlen(inv->device));
        if (rc == IW_OK)
            out->v[out->n - 1].inv = inv;
    }
    if (rc == IW_OK)
        rc = merge_duplicates(out);
    if (rc != IW_OK)
        iw__rp_devs_fini(out);
    return rc;
}

bool iw__rp_has_inventory(const struct iw_report_opts *o, const char *source)
{
    for (size_t i = 0; i < o->n_devices; i++)
        if (o->devices[i].source != NULL && strcmp(o->devices[i].source, source) == 0)
            return true;
    return false;
}

void iw__rp_devs_fini(struct iw__rp_devs *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].site);
        free(d->v[i].device);
        free(d->v[i].ser);
    }
    free(d->v);
    memset(d, 0, sizeof(*d));
}

static const char *site_at(const void *arr, size_t stride, size_t i)
{
    const char *const *p = (const char *const *)(const void *)((const char *)arr + i * stride);
    return *p;
}

size_t iw__rp_site_runs(const void *arr, size_t n, size_t stride, size_t *first, size_t *cnt)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(site_at(arr, stride, first[k - 1]), site_at(arr, stride, i)) == 0) {
            cnt[k - 1]++;
            continue;
        }
        first[k] = i;
        cnt[k] = 1;
        k++;
    }
    return k;
}

/* ---- definitions, for --help and the HTML footnote --------------------------- */

const char *const iw_report_notes_common[] = {
    "Samples an instrument flagged (HJ 212 flag other than N) are left out of every average, "
    "class and rate (SPEC §1); the reports count them.",
    "Devices: the inventory's entries of the report's source plus every other device with "
    "samples in the period; a declared device that never reported is listed without data.",
    "Days are natural days at a fixed UTC offset (--tz; default the first air_quality rule's "
    "timezone, else +08:00 Asia/Shanghai), from the day holding --from through the day holding "
    "--to minus 1 ms. Without --tz an air station's days are those of its own air_quality "
    "rule's timezone (a sites: override included), as its daily AQI alerts have them.",
    NULL,
};

const char *const iw_report_notes_water[] = {
    "Daily mean of each parameter over the unflagged samples of the day [00:00, 24:00).",
    "Class: GB 3838-2002 Table 1, single-factor, the worst class among the items of the 2011 "
    "evaluation method (环办〔2011〕22号); water temperature, fecal coliform and, in rivers, TN "
    "are reported but do not decide. Limits are inclusive. Lake/reservoir TP limits for "
    "body: lake.",
    "Target: as the config's water_quality rule sets it (its sites: override's, else the "
    "inventory's target of the device, else the rule's own), else III. 达标率 (compliance rate) = the "
    "share of samples meeting the target: samples whose class is at or better than the target / "
    "samples with a class. A sample is one message of a station (its parameters at one time); "
    "its class is the single-factor class of its unflagged deciding items, and a sample without "
    "one is not counted. A site adds up its stations' samples.",
    "劣Ⅴ类 (worse than V): worse than the Class V limit of any deciding item, or pH outside 6-9.",
    "Worst parameters: those most often at the day's class on days of Class II or worse "
    "(number of such days in brackets).",
    NULL,
};

const char *const iw_report_notes_air[] = {
    "Hourly value H covers (H-1h, H]: the mean of the minute means, valid with >= 45 minutes "
    "of data; a lone sample stamped exactly at H is an hourly reporter's value and is valid.",
    "Daily values (natural day = hours ending 01:00..24:00): 24 h means valid with >= 20 valid "
    "hours (GB 3095 Table 4); O3 daily maximum 8 h mean, windows ending 08:00..24:00 valid with "
    ">= 6 hours, the day's value valid with >= 14 windows or above 160 ug/m3 (HJ 663-2013 as "
    "recalled, unverified); "
    "HJ 633-2012 also uses the O3 daily maximum 1 h (>= 20 valid hours).",
    "AQI: HJ 633-2012 for days before 2026-03-01, HJ 633-2026 from then (or --standard); "
    "IAQI rounded up exactly; primary pollutant(s) only when AQI > 50.",
    "A day is valid when every pollutant the station measures at any of its hours has its "
    "valid daily value, or when the AQI of those present is already above 100 (HJ 633-2026 "
    "§5.3.1); other days are listed as invalid and left out of the ratio. A pollutant is "
    "measured from its first sample (flagged too) until 24 hours in a row of the station's "
    "data have none of it (hours with no data at all do not count): then it is not monitored "
    "(HJ 633's \"/\"), as in the air_quality rules. An inventory entry's pollutants: list "
    "says it outright: those are measured always, however long an analyser is out.",
    "优良天数比例 (good-day ratio) = valid days with AQI <= 100 / valid days. A site with several "
    "devices averages their valid daily values, as a city averages its stations.",
    NULL,
};

const char *const iw_report_notes_cameras[] = {
    "在线率 (online rate) = heartbeat intervals of [from, to) in which the camera sent at least "
    "one unflagged heartbeat with online = 1 (series camera/<site>/<device>/online) / all "
    "intervals; intervals start at --from and last --interval (default 60 s, the GB/T 28181 "
    "keepalive); a shorter last interval counts as one.",
    "A camera of the inventory that never sent a heartbeat is offline for the whole period, "
    "and so is any camera heard before the period and silent in it (listed with when it was "
    "last heard): a camera that went dark still counts against its site. "
    "A camera first heard inside the period counts from the interval of its first heartbeat "
    "(the oldest kept), one first heard after it not at all (n/a). "
    "A site's rate adds up its cameras' intervals.",
    NULL,
};

/* ---- text shared by the writers ------------------------------------------ */

const char *iw__rp_class_name(int cls)
{
    static const char *const names[] = { "-", "I", "II", "III", "IV", "V", "劣V" };
    return cls >= 1 && cls <= 6 ? names[cls] : names[0];
}

char *iw__rp_num(double v, int sig, char *buf, size_t len)
{
    double a;

    /* A mean of decimal samples rounds as its decimal value does: 7.11 / 4 is
     * 1.77749999999999996 in binary, and %.4g wrote 1.777 for 1.7775 (the CSV,
     * 6 digits, said 1.7775). Four units in the last place more lift such a
     * value past the decimal tie without reaching another 15-digit value. */
    v *= 1 + 4 * DBL_EPSILON;
    a = fabs(v);
    if (!isfinite(v)) {
        snprintf(buf, len, "%s", "");
        return buf;
    }
    /* %g switches to exponents below 1e-4 (mercury limits are 5e-05 mg/L): avoid that. */
    if (a != 0 && a < 1e-4) {
        int dec = sig - 1 - (int)floor(log10(a));
        snprintf(buf, len, "%.*f", dec > 12 ? 12 : dec, v);
        /* trim trailing zeros of the fraction */
        char *e = buf + strlen(buf);
        while (e > buf && e[-1] == '0')
            *--e = '\0';
        if (e > buf && e[-1] == '.')
            e[-1] = '\0';
    } else if (a >= pow(10.0, sig) && a < 1e15) {
        /* %g would write 5e+04 (fecal coliform, per litre): the whole number instead. */
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%.*g", sig, v);
    }
    return buf;
}

char *iw__rp_pct(double rate, char *buf, size_t len)
{
    if (isnan(rate))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%.2f%%", rate * 100.0);
    return buf;
}

char *iw__rp_frac(double rate, char *buf, size_t len)
{
    if (isnan(rate))
        snprintf(buf, len, "%s", "");
    else
        snprintf(buf, len, "%.4f", rate);
    return buf;
}

/* Append "sep text" to buf of len, truncating safely. */
static void append(char *buf, size_t len, const char *sep, const char *text)
{
    size_t used = strlen(buf);
    if (used + 1 < len)
        snprintf(buf + used, len - used, "%s%s", used > 0 ? sep : "", text);
}

char *iw__rp_water_deciding(const struct iw_water_day *d, char *buf, size_t len)
{
    buf[0] = '\0';
    if (d->cls < 2)
        return buf;
    for (int p = 0; p < IW_WATER_NPARAM; p++)
        if (d->deciding[p])
            append(buf, len, ",", iw_water_param_info((enum iw_water_param)p)->label);
    return buf;
}

char *iw__rp_water_worst(const struct iw_water_tally *t, bool csv, char *buf, size_t len)
{
    enum iw_water_param w[IW_WATER_NPARAM];
    size_t n = iw_water_tally_worst(t, w, 3);
    char item[64];

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        snprintf(item, sizeof(item), csv ? "%s:%zu" : "%s (%zu)",
                 iw_water_param_info(w[i])->label, t->deciding[w[i]]);
        append(buf, len, csv ? ";" : ", ", item);
    }
    return buf;
}

char *iw__rp_primary(unsigned mask, char *buf, size_t len)
{
    struct iw_aqi_result r;

    memset(&r, 0, sizeof(r));
    r.primary = mask;
    if (iw_aqi_primary_format(&r, buf, len) != IW_OK && len > 0)
        buf[len - 1] = '\0';
    return buf;
}

/* A daily item the day's AQI needed but could not use. */
static bool missing_item(const struct iw_air_day *d, unsigned mask, int it)
{
    const struct iw_aqi_item_info *info = iw_aqi_item_info((enum iw_aqi_item)it);
    return (mask & IW_AQI_BIT(it)) && (d->missing & (1u << info->pollutant)) &&
           !d->item[it].valid;
}

static const char *item_label(int it)
{
    if (it == IW_AQI_O3_8H)
        return "O3 8h";
    if (it == IW_AQI_O3_1H)
        return "O3 1h max";
    return iw_aqi_pollutant_info(iw_aqi_item_info((enum iw_aqi_item)it)->pollutant)->name;
}

/* Items with the same shortfall share one clause ("SO2, NO2: 16 valid hours < 20"). */
static bool same_shortfall(const struct iw_air_day *d, int a, int b)
{
    return d->n_devices > 0 ||
           ((a == IW_AQI_O3_8H) == (b == IW_AQI_O3_8H) && d->item[a].n == d->item[b].n);
}

char *iw__rp_air_note(const struct iw_air_day *d, char *buf, size_t len)
{
    unsigned mask = iw_aqi_inputs(d->std, IW_AQI_DAILY), done = 0;
    char body[400] = "", names[160], clause[240];

    buf[0] = '\0';
    if (d->missing == 0)
        return buf;
    for (int it = 0; it < IW_AQI_NITEMS; it++) {
        if (!missing_item(d, mask, it) || (done & IW_AQI_BIT(it)))
            continue;
        names[0] = '\0';
        for (int j = it; j < IW_AQI_NITEMS; j++) {
            if (!missing_item(d, mask, j) || (done & IW_AQI_BIT(j)) || !same_shortfall(d, it, j))
                continue;
            append(names, sizeof(names), ", ", item_label(j));
            done |= IW_AQI_BIT(j);
        }
        if (d->n_devices > 0)       /* a site's mean: the devices' own days say why */
            snprintf(clause, sizeof(clause), "%s: no device with a valid daily value", names);
        else if (it == IW_AQI_O3_8H)
            snprintf(clause, sizeof(clause), "%s: %d valid 8-h mean%s < %d", names,
                     d->item[it].n, d->item[it].n == 1 ? "" : "s", IW_AVG_MIN_8H_PER_DAY);
        else
            snprintf(clause, sizeof(clause), "%s: %d valid hour%s < %d", names, d->item[it].n,
                     d->item[it].n == 1 ? "" : "s", IW_AVG_MIN_HOURS_24H);
        append(body, sizeof(body), "; ", clause);
    }
    /* A partial day is valid: its AQI above 100 cannot fall with the missing values. */
    snprintf(buf, len, "%s%s", d->partial ? "valid at AQI > 100 without " : "", body);
    return buf;
}

char *iw__rp_water_cut_note(const struct iw_water_report *r, char *buf, size_t len)
{
    bool first = r->from != r->first_day;
    bool last = r->to != r->first_day + (int64_t)r->n_days * IW_MS_PER_DAY;
    char a[32], b[32];

    buf[0] = '\0';
    if (first || last)
        snprintf(buf, len, "samples of %s .. %s only: %s", iw__rp_local_time(r->from,
                 r->tz_offset_min, a, sizeof(a)), iw__rp_local_time(r->to, r->tz_offset_min, b,
                 sizeof(b)), r->n_days == 1 ? "the day is partial" : first && last ?
                 "the first and the last day are partial" : first ? "the first day is partial" :
                 "the last day is partial");
    return buf;
}

char *iw__rp_retention_note(int64_t kept_from, int tz, char *buf, size_t len)
{
    char d[40];                 /* "%04d-%02d-%02d" of any int fields */

    /* A date, not the time: the text stays the same all day (--url and --db agree). */
    buf[0] = '\0';
    if (kept_from != INT64_MIN)
        snprintf(buf, len, "the days up to %s are past storage.retention.raw: the raw samples "
                 "the report reads are gone there, in whole or in part; keep raw: 400d for "
                 "yearly reports", iw_report_date(kept_from, tz, d, sizeof(d)));
    return buf;
}

char *iw__rp_local_time(int64_t ts, int tz, char *buf, size_t len)
{
    time_t t;
    struct tm tm;

    if (ts == INT64_MIN) {
        snprintf(buf, len, "-");
        return buf;
    }
    t = (time_t)(iw_floor_to(ts + (int64_t)tz * IW_MS_PER_MIN, 1000) / 1000);
    if (gmtime_r(&t, &tm) == NULL)
        snprintf(buf, len, "?");
    else
        snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* Terminal columns of a UTF-8 string: East Asian wide characters count two. */
size_t iw__rp_display_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned cp;
        int len;
        if (*p < 0x80) { cp = *p; len = 1; }
        else if ((*p & 0xE0) == 0xC0) { cp = *p & 0x1F; len = 2; }
        else if ((*p & 0xF0) == 0xE0) { cp = *p & 0x0F; len = 3; }
        else { cp = *p & 0x07; len = 4; }
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) { len = i; break; }
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        p += len;
        w += (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
             (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
             (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
             (cp >= 0xFFE0 && cp <= 0xFFE6) ? 2 : 1;
    }
    return w;
}

int64_t iw__rp_last_day(int64_t first_day, size_t n_days)
{
    return first_day + (int64_t)(n_days ? n_days - 1 : 0) * IW_MS_PER_DAY;
}
