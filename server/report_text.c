/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report_text — the table and CSV forms of the three reports (HTML is
 * report_html.c). Tables are built cell by cell and printed with columns
 * sized to their widest cell, counting CJK characters as two columns so
 * that 达标率 lines up in a terminal. CSV has one header line and a "row"
 * column that says what each line is (day, device, site, total).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "report_int.h"

/* ---- aligned tables -------------------------------------------------------- */

#define TBL_MAXCOL 64

struct tbl {
    size_t ncol, nrow, cap;
    char **cell;                    /* nrow * ncol, owned */
    unsigned long long right;       /* bit per right-aligned column */
    bool nomem;
};

static void tbl_init(struct tbl *t, size_t ncol, unsigned long long right)
{
    memset(t, 0, sizeof(*t));
    t->ncol = ncol;
    t->right = right;
}

static void tbl_row(struct tbl *t, const char *const *cells)
{
    if (t->nomem)
        return;
    if (t->nrow == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 32;
        char **c = realloc(t->cell, nc * t->ncol * sizeof(*c));
        if (c == NULL) {
            t->nomem = true;
            return;
        }
        t->cell = c;
        t->cap = nc;
    }
    for (size_t i = 0; i < t->ncol; i++) {
        t->cell[t->nrow * t->ncol + i] = strdup(cells[i] ? cells[i] : "");
        if (t->cell[t->nrow * t->ncol + i] == NULL)
            t->nomem = true;
    }
    t->nrow++;
}

static void tbl_fini(struct tbl *t)
{
    for (size_t i = 0; i < t->nrow * t->ncol; i++)
        free(t->cell[i]);
    free(t->cell);
    memset(t, 0, sizeof(*t));
}

static void tbl_print(const struct tbl *t, FILE *out)
{
    size_t width[TBL_MAXCOL] = { 0 };

    if (t->nomem) {
        fprintf(out, "  (out of memory while formatting this table)\n");
        return;
    }
    for (size_t r = 0; r < t->nrow; r++)
        for (size_t c = 0; c < t->ncol; c++) {
            size_t w = iw__rp_display_width(t->cell[r * t->ncol + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrow; r++) {
        size_t last = t->ncol;
        while (last > 0 && t->cell[r * t->ncol + last - 1][0] == '\0')
            last--;                 /* no trailing blanks */
        fputs("  ", out);
        for (size_t c = 0; c < last; c++) {
            const char *s = t->cell[r * t->ncol + c];
            size_t pad = width[c] - iw__rp_display_width(s);
            bool right = (t->right >> c) & 1;
            if (right)
                fprintf(out, "%*s", (int)pad, "");
            fputs(s, out);
            if (!right && c + 1 < last)
                fprintf(out, "%*s", (int)pad, "");
            if (c + 1 < last)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
}

/* ---- CSV --------------------------------------------------------------------- */

static void csv_row(FILE *out, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = cells[i] ? cells[i] : "";
        if (i > 0)
            fputc(',', out);
        if (strpbrk(s, ",\"\r\n") == NULL) {
            fputs(s, out);
            continue;
        }
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    }
    fputc('\n', out);
}

/* Scratch text for one row: cell i is buf[i]. */
struct row {
    char buf[TBL_MAXCOL][256];
    const char *cell[TBL_MAXCOL];
    size_t n;
};

static void row_start(struct row *r)
{
    r->n = 0;
}

static char *row_next(struct row *r)
{
    char *b = r->buf[r->n];
    b[0] = '\0';
    r->cell[r->n++] = b;
    return b;
}

static void row_str(struct row *r, const char *s)
{
    snprintf(row_next(r), sizeof(r->buf[0]), "%s", s ? s : "");
}

static void row_uint(struct row *r, unsigned long long v)
{
    snprintf(row_next(r), sizeof(r->buf[0]), "%llu", v);
}

static void row_blank(struct row *r, size_t n)
{
    while (n-- > 0)
        row_str(r, "");
}

static void header(FILE *out, const char *title, int64_t first_day, size_t n_days, int tz)
{
    char a[16], b[16], z[8];
    fprintf(out, "%s\nPeriod %s .. %s (%zu day%s, UTC%s)\n", title,
            iw_report_date(first_day, tz, a, sizeof(a)),
            iw_report_date(iw__rp_last_day(first_day, n_days), tz, b, sizeof(b)), n_days,
            n_days == 1 ? "" : "s", iw_report_tz_format(tz, z, sizeof(z)));
}

/* The tag of a device the inventory does not declare (none without an inventory). */
static const char *not_declared(bool inventory, bool declared)
{
    return inventory && !declared ? " [not in the inventory]" : "";
}

/* " (days at UTC+00:00)" when the station's zone is not the report's. */
static const char *own_zone(const struct iw_air_report *rep, const struct iw_air_device *d,
                            char *buf, size_t len)
{
    char z[8];

    buf[0] = '\0';
    if (d->tz_offset_min != rep->tz_offset_min)
        snprintf(buf, len, " (its days at UTC%s, its air_quality rule's timezone)",
                 iw_report_tz_format(d->tz_offset_min, z, sizeof(z)));
    return buf;
}

/* The retention note under the title, when the period reaches back past it. */
static void retention_note(FILE *out, int64_t kept_from, int tz)
{
    char note[300];

    if (*iw__rp_retention_note(kept_from, tz, note, sizeof(note)) != '\0')
        fprintf(out, "Note: %s.\n", note);
}

/*
 * A report without any device: say so, and what to check, instead of an
 * empty table (the HTML writers say the same). Returns true when it did.
 */
static bool no_station(FILE *out, size_t n, const char *what)
{
    if (n > 0)
        return false;
    fprintf(out, "\nNo %s in the store or the inventory matches: check --site and --source, and "
            "that --db or --url is the database you mean.\n", what);
    return true;
}

static int finish(FILE *out)
{
    return fflush(out) != 0 || ferror(out) ? IW_E_IO : IW_OK;
}

/* ==========================================================================
 * Water
 * ======================================================================== */

static const char *const water_sum_head[] = {
    "SITE", "DEVICE", "TARGET", "CLASS", "DAYS", "I", "II", "III", "IV", "V", "劣V", "SAMPLES",
    "SAMPLES MEETING", "达标率 (OF SAMPLES)", "WORST PARAMETERS (days deciding)", "FLAGGED",
};

/* "3/4": a day's samples meeting the target and its samples with a class. */
static char *samples_met(const struct iw_water_day *d, char *buf, size_t len)
{
    snprintf(buf, len, "%lu/%lu", (unsigned long)d->samples_meeting, (unsigned long)d->samples);
    return buf;
}

static void water_sum_row(struct tbl *t, const char *site, const char *dev, const char *target,
                          const struct iw_water_tally *y)
{
    struct row r;
    char w[256];

    row_start(&r);
    row_str(&r, site);
    row_str(&r, dev);
    row_str(&r, target);
    row_str(&r, y->cls > 0 ? iw__rp_class_name(y->cls) : "");
    row_uint(&r, y->days);
    for (int c = 1; c <= 6; c++)
        row_uint(&r, y->by_class[c]);
    row_uint(&r, y->samples);
    row_uint(&r, y->samples_meeting);
    iw__rp_pct(y->rate, row_next(&r), sizeof(r.buf[0]));
    row_str(&r, iw__rp_water_worst(y, false, w, sizeof(w)));
    row_uint(&r, y->flagged);
    tbl_row(t, r.cell);
}

/* The target of a site: its devices' if they agree, else "mixed". */
static const char *site_target(const struct iw_water_report *rep, const struct iw_water_site *s)
{
    for (size_t i = s->first + 1; i < s->first + s->n; i++)
        if (rep->dev[i].target != rep->dev[s->first].target)
            return "mixed";
    return iw__rp_class_name(rep->dev[s->first].target);
}

static void water_table(const struct iw_water_report *rep, FILE *out)
{
    struct tbl t;
    struct row r;
    char note[200];

    header(out, "水质达标 Water quality report: GB 3838-2002 daily class, single-factor "
           "(2011 method)", rep->first_day, rep->n_days, rep->tz_offset_min);
    if (*iw__rp_water_cut_note(rep, note, sizeof(note)) != '\0')
        fprintf(out, "Note: %s.\n", note);
    retention_note(out, rep->kept_from, rep->tz_offset_min);
    if (no_station(out, rep->n_dev, "water station"))
        return;
    for (size_t i = 0; i < rep->n_dev; i++) {
        const struct iw_water_device *d = &rep->dev[i];
        int cols[IW_WATER_NPARAM], nc = 0;
        char txt[256];

        for (int p = 0; p < IW_WATER_NPARAM; p++)
            for (size_t k = 0; k < d->n_days; k++)
                if (d->days[k].n[p] > 0) {
                    cols[nc++] = p;
                    break;
                }
        fprintf(out, "\n%s/%s%s%s (%s, target %s)%s\n", d->site, d->device, d->name ? " " : "",
                d->name ? d->name : "", d->body == IW_BODY_LAKE ? "lake/reservoir" : "river",
                iw__rp_class_name(d->target), not_declared(rep->inventory, d->declared));
        if (d->n_days == 0) {
            fprintf(out, "  no data in the period\n");
            continue;
        }
        tbl_init(&t, (size_t)(5 + nc), ((1ULL << (nc + 1)) - 1) << 3);
        row_start(&r);
        row_str(&r, "DATE");
        row_str(&r, "CLASS");
        row_str(&r, "MEETS");
        row_str(&r, "SAMPLES MEETING");
        for (int c = 0; c < nc; c++)
            row_str(&r, iw_water_param_info((enum iw_water_param)cols[c])->label);
        row_str(&r, "DECIDING");
        tbl_row(&t, r.cell);
        for (size_t k = 0; k < d->n_days; k++) {
            const struct iw_water_day *day = &d->days[k];
            row_start(&r);
            iw_report_date(day->day, rep->tz_offset_min, row_next(&r), sizeof(r.buf[0]));
            row_str(&r, iw__rp_class_name(day->cls));
            row_str(&r, day->cls == 0 ? "-" : day->meets ? "yes" : "NO");
            row_str(&r, samples_met(day, txt, sizeof(txt)));
            for (int c = 0; c < nc; c++)
                iw__rp_num(day->n[cols[c]] ? day->mean[cols[c]] : NAN, 4, row_next(&r),
                           sizeof(r.buf[0]));
            row_str(&r, iw__rp_water_deciding(day, txt, sizeof(txt)));
            tbl_row(&t, r.cell);
        }
        tbl_print(&t, out);
        tbl_fini(&t);
    }
    fprintf(out, "\nSummary 汇总 (DAYS and I..劣V: days by daily class; 达标率 compliance rate = "
            "share of samples meeting the target = samples meeting / samples with a class)\n");
    tbl_init(&t, IW_ARRAY_LEN(water_sum_head), 0xBFF0ULL);
    tbl_row(&t, water_sum_head);
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_water_site *s = &rep->sites[k];
        for (size_t i = s->first; i < s->first + s->n; i++)
            water_sum_row(&t, s->site, rep->dev[i].device,
                          iw__rp_class_name(rep->dev[i].target), &rep->dev[i].tally);
        if (s->n > 1)
            water_sum_row(&t, s->site, "(site)", site_target(rep, s), &s->tally);
    }
    if (rep->n_sites > 1)
        water_sum_row(&t, "(all)", "", "", &rep->total);
    tbl_print(&t, out);
    tbl_fini(&t);
}

static void water_csv_summary(FILE *out, const char *kind, const char *site, const char *dev,
                              const char *name, const char *target,
                              const struct iw_water_tally *y, size_t n_params)
{
    struct row r;
    char w[256];

    row_start(&r);
    row_str(&r, kind);
    row_str(&r, site);
    row_str(&r, dev);
    row_str(&r, name);
    row_blank(&r, 1);               /* date */
    row_str(&r, target);
    if (y->cls > 0) {               /* the period's class (a device's, a site's) */
        row_uint(&r, (unsigned)y->cls);
        row_str(&r, iw__rp_class_name(y->cls));
        row_str(&r, y->meets ? "1" : "0");
    } else {
        row_blank(&r, 3);
    }
    row_blank(&r, n_params + 1);    /* params, deciding */
    row_uint(&r, y->days);
    row_uint(&r, y->days_classed);
    for (int c = 1; c <= 6; c++)
        row_uint(&r, y->by_class[c]);
    row_uint(&r, y->days_meeting);
    row_uint(&r, y->samples);
    row_uint(&r, y->samples_meeting);
    iw__rp_frac(y->rate, row_next(&r), sizeof(r.buf[0]));
    row_str(&r, iw__rp_water_worst(y, true, w, sizeof(w)));
    row_uint(&r, y->flagged);
    csv_row(out, r.cell, r.n);
}

static void water_csv(const struct iw_water_report *rep, FILE *out)
{
    static const char *const tail[] = {
        "deciding", "days", "days_classed", "days_I", "days_II", "days_III", "days_IV",
        "days_V", "days_worse_than_V", "days_meeting_target", "samples",
        "samples_meeting_target", "sample_compliance_rate", "worst_parameters",
        "flagged_samples",
    };
    int cols[IW_WATER_NPARAM];
    size_t nc = 0;
    struct row r;
    char txt[256];

    for (int p = 0; p < IW_WATER_NPARAM; p++)
        if (rep->param_seen[p])
            cols[nc++] = p;
    row_start(&r);
    for (const char *const *h = (const char *const[]){ "row", "site", "device", "name", "date",
                                                       "target", "class", "class_name",
                                                       "meets_target", NULL }; *h; h++)
        row_str(&r, *h);
    for (size_t c = 0; c < nc; c++)
        row_str(&r, iw_water_param_info((enum iw_water_param)cols[c])->metric);
    for (size_t i = 0; i < IW_ARRAY_LEN(tail); i++)
        row_str(&r, tail[i]);
    csv_row(out, r.cell, r.n);
    for (size_t i = 0; i < rep->n_dev; i++) {
        const struct iw_water_device *d = &rep->dev[i];
        for (size_t k = 0; k < d->n_days; k++) {
            const struct iw_water_day *day = &d->days[k];
            row_start(&r);
            row_str(&r, "day");
            row_str(&r, d->site);
            row_str(&r, d->device);
            row_str(&r, d->name);
            iw_report_date(day->day, rep->tz_offset_min, row_next(&r), sizeof(r.buf[0]));
            row_str(&r, iw__rp_class_name(d->target));
            if (day->cls > 0)
                row_uint(&r, (unsigned)day->cls);
            else
                row_blank(&r, 1);
            row_str(&r, day->cls > 0 ? iw__rp_class_name(day->cls) : "");
            row_str(&r, day->cls == 0 ? "" : day->meets ? "1" : "0");
            for (size_t c = 0; c < nc; c++)
                iw__rp_num(day->n[cols[c]] ? day->mean[cols[c]] : NAN, 6, row_next(&r),
                           sizeof(r.buf[0]));
            row_str(&r, iw__rp_water_deciding(day, txt, sizeof(txt)));
            row_blank(&r, 9);       /* days .. days_meeting_target */
            row_uint(&r, day->samples);
            row_uint(&r, day->samples_meeting);
            iw__rp_frac(iw__rp_ratio(day->samples_meeting, day->samples), row_next(&r),
                        sizeof(r.buf[0]));
            row_blank(&r, 1);       /* worst_parameters */
            row_uint(&r, day->n_flagged);
            csv_row(out, r.cell, r.n);
        }
    }
    for (size_t i = 0; i < rep->n_dev; i++)
        water_csv_summary(out, "device", rep->dev[i].site, rep->dev[i].device, rep->dev[i].name,
                          iw__rp_class_name(rep->dev[i].target), &rep->dev[i].tally, nc);
    for (size_t k = 0; k < rep->n_sites; k++)
        water_csv_summary(out, "site", rep->sites[k].site, "", "",
                          site_target(rep, &rep->sites[k]), &rep->sites[k].tally, nc);
    water_csv_summary(out, "total", "", "", "", "", &rep->total, nc);
}

int iw_report_water_write(const struct iw_water_report *r, enum iw_report_format fmt, FILE *out)
{
    if (r == NULL || out == NULL)
        return IW_E_INVAL;
    switch (fmt) {
    case IW_REPORT_TABLE: water_table(r, out); break;
    case IW_REPORT_CSV: water_csv(r, out); break;
    case IW_REPORT_HTML: return iw__rp_water_html(r, out);
    default: return IW_E_INVAL;
    }
    return finish(out);
}

/* ==========================================================================
 * Air
 * ======================================================================== */

static const enum iw_aqi_item air_items[] = {
    IW_AQI_SO2_24H, IW_AQI_NO2_24H, IW_AQI_CO_24H, IW_AQI_O3_8H, IW_AQI_O3_1H,
    IW_AQI_PM10_24H, IW_AQI_PM25_24H,
};

/* The O3 1 h maximum is an input of HJ 633-2012 only: show it when a 2012 day is listed. */
static bool show_item(const struct iw_air_report *rep, enum iw_aqi_item it)
{
    return it != IW_AQI_O3_1H || rep->std_used[IW_AQI_HJ633_2012];
}

/*
 * A daily value as text: "" when absent; in tables "12.3*" when below the
 * validity minimum, in CSV the bare number (the note column says why).
 */
static void item_text(const struct iw_avg *a, bool csv, char *buf, size_t len)
{
    char num[48];
    if (a->n == 0 && !a->valid) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, len, "%s%s", iw__rp_num(a->value, csv ? 6 : 4, num, sizeof(num)),
             a->valid || csv ? "" : "*");
}

static void air_day_cells(const struct iw_air_report *rep, const struct iw_air_day *d,
                          struct row *r, bool csv)
{
    const struct iw_aqi_level_info *lv = iw_aqi_level_info(d->level);
    char note[400];

    iw_report_date(d->day, rep->tz_offset_min, row_next(r), sizeof(r->buf[0]));
    row_str(r, csv ? iw_aqi_standard_name(d->std) : d->std == IW_AQI_HJ633_2012 ? "2012" : "2026");
    if (d->aqi < 0)
        row_str(r, csv ? "" : "-");
    else
        snprintf(row_next(r), sizeof(r->buf[0]), d->valid || csv ? "%d" : "(%d)", d->aqi);
    if (d->valid && lv != NULL) {
        row_uint(r, (unsigned)d->level);
        row_str(r, lv->category_zh);
        row_str(r, lv->category_en);
    } else {
        row_str(r, csv ? "" : "invalid");
        row_blank(r, 2);
    }
    iw__rp_primary(d->valid ? d->primary : 0, row_next(r), sizeof(r->buf[0]));
    if (csv) {
        row_str(r, d->valid ? "1" : "0");
        row_str(r, d->partial ? "1" : "0");
        row_str(r, iw__rp_air_note(d, note, sizeof(note)));
    }
    for (size_t i = 0; i < IW_ARRAY_LEN(air_items); i++)
        if (csv || show_item(rep, air_items[i]))
            item_text(&d->item[air_items[i]], csv, row_next(r), sizeof(r->buf[0]));
    if (!csv)
        row_str(r, iw__rp_air_note(d, note, sizeof(note)));
}

static void air_days_table(const struct iw_air_report *rep, const struct iw_air_day *days,
                           size_t n, FILE *out)
{
    struct tbl t;
    struct row r;
    size_t ni = 0;

    if (n == 0) {
        fprintf(out, "  no data in the period\n");
        return;
    }
    row_start(&r);
    for (const char *const *h = (const char *const[]){ "DATE", "STD", "AQI", "LEVEL", "类别",
                                                       "CATEGORY", "PRIMARY", NULL }; *h; h++)
        row_str(&r, *h);
    for (size_t i = 0; i < IW_ARRAY_LEN(air_items); i++)
        if (show_item(rep, air_items[i])) {
            row_str(&r, iw_aqi_item_info(air_items[i])->name);
            ni++;
        }
    row_str(&r, "NOTE");
    tbl_init(&t, r.n, 0x4ULL | 0x8ULL | (((1ULL << ni) - 1) << 7));
    tbl_row(&t, r.cell);
    for (size_t k = 0; k < n; k++) {
        row_start(&r);
        air_day_cells(rep, &days[k], &r, false);
        tbl_row(&t, r.cell);
    }
    tbl_print(&t, out);
    tbl_fini(&t);
}

static void air_sum_row(struct tbl *t, const char *site, const char *dev,
                        const struct iw_air_tally *y)
{
    struct row r;

    row_start(&r);
    row_str(&r, site);
    row_str(&r, dev);
    row_uint(&r, y->days);
    row_uint(&r, y->valid_days);
    row_uint(&r, y->invalid_days);
    row_uint(&r, y->nodata_days);
    row_uint(&r, y->good_days);
    iw__rp_pct(y->good_rate, row_next(&r), sizeof(r.buf[0]));
    for (int l = 1; l <= 6; l++)
        row_uint(&r, y->by_level[l]);
    if (y->max_aqi >= 0)
        row_uint(&r, (unsigned)y->max_aqi);
    else
        row_str(&r, "-");
    row_uint(&r, y->flagged);
    tbl_row(t, r.cell);
}

static void air_table(const struct iw_air_report *rep, FILE *out)
{
    static const char *const head[] = {
        "SITE", "DEVICE", "DAYS", "VALID", "INVALID", "NO DATA", "GOOD", "优良天数比例",
        "L1", "L2", "L3", "L4", "L5", "L6", "MAX AQI", "FLAGGED",
    };
    struct tbl t;
    char zone[80];

    header(out, "空气质量日报 Daily AQI report: HJ 633-2012 before 2026-03-01, HJ 633-2026 from "
           "then", rep->first_day, rep->n_days, rep->tz_offset_min);
    retention_note(out, rep->kept_from, rep->tz_offset_min);
    if (rep->standard != IW_REPORT_STD_AUTO)
        fprintf(out, "Standard forced: %s\n", iw_aqi_standard_name(rep->standard));
    fprintf(out, "Daily values: 24-h means (O3: daily max 8-h mean%s); * = below the validity "
            "minimum; (AQI) = not valid\n", rep->std_used[IW_AQI_HJ633_2012]
            ? "; 2012 also O3_1h, the daily max 1-h value" : "");
    if (no_station(out, rep->n_dev, "air station"))
        return;
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_air_site *s = &rep->sites[k];
        if (s->n == 1) {
            const struct iw_air_device *d = &rep->dev[s->first];
            fprintf(out, "\n%s (%s%s%s)%s%s\n", s->site, d->device, d->name ? " " : "",
                    d->name ? d->name : "", not_declared(rep->inventory, d->declared),
                    own_zone(rep, d, zone, sizeof(zone)));
            air_days_table(rep, d->days, d->n_days, out);
            continue;
        }
        fprintf(out, "\n%s (site: mean of the valid daily values of %zu devices)\n", s->site, s->n);
        air_days_table(rep, s->days, s->n_days, out);
        for (size_t i = s->first; i < s->first + s->n; i++) {
            const struct iw_air_device *d = &rep->dev[i];
            fprintf(out, "\n%s/%s%s%s%s%s\n", d->site, d->device, d->name ? " " : "",
                    d->name ? d->name : "", not_declared(rep->inventory, d->declared),
                    own_zone(rep, d, zone, sizeof(zone)));
            air_days_table(rep, d->days, d->n_days, out);
        }
    }
    fprintf(out, "\nSummary 汇总 (优良天数比例 good-day ratio = valid days with AQI <= 100 / valid "
            "days)\n");
    fprintf(out, "Levels: L1 优 Excellent, L2 良 Good, L3 轻度污染 Lightly, L4 中度污染 Moderately, "
            "L5 重度污染 Heavily, L6 严重污染 Severely polluted\n");
    tbl_init(&t, IW_ARRAY_LEN(head), 0xFFFCULL);
    tbl_row(&t, head);
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_air_site *s = &rep->sites[k];
        if (s->n > 1)
            for (size_t i = s->first; i < s->first + s->n; i++)
                air_sum_row(&t, s->site, rep->dev[i].device, &rep->dev[i].tally);
        air_sum_row(&t, s->site, s->n > 1 ? "(site)" : rep->dev[s->first].device, &s->tally);
    }
    if (rep->n_sites > 1)
        air_sum_row(&t, "(all)", "", &rep->total);
    tbl_print(&t, out);
    tbl_fini(&t);
}

static void air_csv_day(const struct iw_air_report *rep, FILE *out, const char *kind,
                        const char *site, const char *dev, const char *name,
                        const struct iw_air_day *d)
{
    struct row r;

    row_start(&r);
    row_str(&r, kind);
    row_str(&r, site);
    row_str(&r, dev);
    row_str(&r, name);
    air_day_cells(rep, d, &r, true);
    row_blank(&r, 13);
    row_uint(&r, d->n_flagged);
    csv_row(out, r.cell, r.n);
}

static void air_csv_sum(FILE *out, const char *kind, const char *site, const char *dev,
                        const char *name, const struct iw_air_tally *y)
{
    struct row r;

    row_start(&r);
    row_str(&r, kind);
    row_str(&r, site);
    row_str(&r, dev);
    row_str(&r, name);
    row_blank(&r, 10 + IW_ARRAY_LEN(air_items));
    row_uint(&r, y->days);
    row_uint(&r, y->valid_days);
    row_uint(&r, y->invalid_days);
    row_uint(&r, y->nodata_days);
    row_uint(&r, y->good_days);
    iw__rp_frac(y->good_rate, row_next(&r), sizeof(r.buf[0]));
    for (int l = 1; l <= 6; l++)
        row_uint(&r, y->by_level[l]);
    if (y->max_aqi >= 0)
        row_uint(&r, (unsigned)y->max_aqi);
    else
        row_blank(&r, 1);
    row_uint(&r, y->flagged);
    csv_row(out, r.cell, r.n);
}

static void air_csv(const struct iw_air_report *rep, FILE *out)
{
    static const char *const head[] = {
        "row", "site", "device", "name", "date", "standard", "aqi", "level", "category_zh",
        "category_en", "primary", "valid", "partial", "note", "so2_24h", "no2_24h", "co_24h",
        "o3_8h", "o3_1h", "pm10_24h", "pm25_24h", "days", "valid_days", "invalid_days",
        "nodata_days", "good_days", "good_rate", "level_1", "level_2", "level_3", "level_4",
        "level_5", "level_6", "max_aqi", "flagged_samples",
    };

    csv_row(out, head, IW_ARRAY_LEN(head));
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_air_site *s = &rep->sites[k];
        const struct iw_air_device *d0 = &rep->dev[s->first];
        if (s->n == 1) {
            for (size_t i = 0; i < d0->n_days; i++)
                air_csv_day(rep, out, "day", s->site, d0->device, d0->name, &d0->days[i]);
            continue;
        }
        for (size_t i = 0; i < s->n_days; i++)
            air_csv_day(rep, out, "day", s->site, "", "", &s->days[i]);
        for (size_t j = s->first; j < s->first + s->n; j++)
            for (size_t i = 0; i < rep->dev[j].n_days; i++)
                air_csv_day(rep, out, "device_day", s->site, rep->dev[j].device, rep->dev[j].name,
                            &rep->dev[j].days[i]);
    }
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_air_site *s = &rep->sites[k];
        const struct iw_air_device *d0 = &rep->dev[s->first];
        air_csv_sum(out, "site", s->site, s->n == 1 ? d0->device : "", s->n == 1 ? d0->name : "",
                    &s->tally);
        for (size_t j = s->first; s->n > 1 && j < s->first + s->n; j++)
            air_csv_sum(out, "device", s->site, rep->dev[j].device, rep->dev[j].name,
                        &rep->dev[j].tally);
    }
    air_csv_sum(out, "total", "", "", "", &rep->total);
}

int iw_report_air_write(const struct iw_air_report *r, enum iw_report_format fmt, FILE *out)
{
    if (r == NULL || out == NULL)
        return IW_E_INVAL;
    switch (fmt) {
    case IW_REPORT_TABLE: air_table(r, out); break;
    case IW_REPORT_CSV: air_csv(r, out); break;
    case IW_REPORT_HTML: return iw__rp_air_html(r, out);
    default: return IW_E_INVAL;
    }
    return finish(out);
}

/* ==========================================================================
 * Cameras
 * ======================================================================== */

static void cam_sum_row(struct tbl *t, const char *site, const char *dev, const char *name,
                        uint64_t intervals, uint64_t online, double rate, const char *hb,
                        const char *first, const char *last, const char *note)
{
    struct row r;

    row_start(&r);
    row_str(&r, site);
    row_str(&r, dev);
    row_str(&r, name);
    row_uint(&r, intervals);
    row_uint(&r, online);
    iw__rp_pct(rate, row_next(&r), sizeof(r.buf[0]));
    row_str(&r, hb);
    row_str(&r, first);
    row_str(&r, last);
    row_str(&r, note);
    tbl_row(t, r.cell);
}

static void cameras_table(const struct iw_camera_report *rep, FILE *out)
{
    static const char *const head[] = {
        "SITE", "DEVICE", "NAME", "INTERVALS", "ONLINE", "在线率", "HEARTBEATS", "FIRST SEEN",
        "LAST SEEN", "NOTE",
    };
    char a[32], b[32], z[8], hb[32], note[96];
    struct tbl t;

    fprintf(out, "在线率 Camera online rate: share of %lld-s heartbeat intervals with a heartbeat "
            "online = 1\nPeriod %s .. %s (UTC%s), %llu intervals per camera\n\n",
            (long long)(rep->interval_ms / 1000), iw__rp_local_time(rep->from, rep->tz_offset_min,
            a, sizeof(a)), iw__rp_local_time(rep->to, rep->tz_offset_min, b, sizeof(b)),
            iw_report_tz_format(rep->tz_offset_min, z, sizeof(z)),
            (unsigned long long)rep->n_intervals);
    retention_note(out, rep->kept_from, rep->tz_offset_min);
    if (no_station(out, rep->n_cams, "camera"))
        return;
    tbl_init(&t, IW_ARRAY_LEN(head), 0x78ULL);
    tbl_row(&t, head);
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_camera_site *s = &rep->sites[k];
        for (size_t i = s->first; i < s->first + s->n; i++) {
            const struct iw_camera *c = &rep->cams[i];
            snprintf(hb, sizeof(hb), "%llu", (unsigned long long)c->heartbeats);
            char since[64] = "";
            if (c->in_service != INT64_MIN) {
                char heard[40];
                snprintf(since, sizeof(since), "%s %s", c->intervals == 0 ? "first heard after "
                         "the period," : "counted from its first heartbeat,",
                         iw__rp_local_time(c->in_service, rep->tz_offset_min, heard, sizeof(heard)));
            } else if (c->heartbeats == 0 && c->last_heard != INT64_MIN) {
                char heard[40];
                snprintf(since, sizeof(since), "silent since %s",
                         iw__rp_local_time(c->last_heard, rep->tz_offset_min, heard, sizeof(heard)));
            }
            snprintf(note, sizeof(note), "%s%s%s",
                     since[0] ? since : c->heartbeats == 0 ? "never reported" : "",
                     (since[0] || c->heartbeats == 0) && !c->declared && rep->inventory ? "; " : "",
                     c->declared || !rep->inventory ? "" : "not in the inventory");
            cam_sum_row(&t, c->site, c->device, c->name, c->intervals, c->online, c->rate, hb,
                        iw__rp_local_time(c->first_seen, rep->tz_offset_min, a, sizeof(a)),
                        iw__rp_local_time(c->last_seen, rep->tz_offset_min, b, sizeof(b)), note);
        }
        snprintf(note, sizeof(note), "%zu camera%s, %zu never reported", s->n,
                 s->n == 1 ? "" : "s", s->never_seen);
        cam_sum_row(&t, s->site, "(site)", "", s->intervals, s->online, s->rate, "", "", "", note);
    }
    if (rep->n_sites > 1) {
        snprintf(note, sizeof(note), "%zu camera%s, %zu never reported", rep->total.n,
                 rep->total.n == 1 ? "" : "s", rep->total.never_seen);
        cam_sum_row(&t, "(all)", "", "", rep->total.intervals, rep->total.online, rep->total.rate,
                    "", "", "", note);
    }
    tbl_print(&t, out);
    tbl_fini(&t);
}

static void cam_csv_row(FILE *out, const char *kind, const char *site, const char *dev,
                        const char *name, const char *declared, uint64_t intervals,
                        uint64_t online, double rate, const struct iw_camera *c, size_t cams,
                        size_t never)
{
    struct row r;

    row_start(&r);
    row_str(&r, kind);
    row_str(&r, site);
    row_str(&r, dev);
    row_str(&r, name);
    row_str(&r, declared);
    row_uint(&r, intervals);
    row_uint(&r, online);
    iw__rp_frac(rate, row_next(&r), sizeof(r.buf[0]));
    if (c != NULL) {
        row_uint(&r, c->heartbeats);
        row_uint(&r, c->flagged);
        for (int k = 0; k < 2; k++) {
            int64_t ts = k == 0 ? c->first_seen : c->last_seen;
            if (ts == INT64_MIN)
                row_blank(&r, 1);
            else
                iw_rfc3339_format(ts, row_next(&r), sizeof(r.buf[0]));
        }
        row_blank(&r, 2);
        /* What the table's note says: when a camera silent all period was
         * last heard, and from when one first heard inside it is counted. */
        for (int k = 0; k < 2; k++) {
            int64_t ts = k == 0 ? (c->heartbeats == 0 ? c->last_heard : INT64_MIN) : c->in_service;
            if (ts == INT64_MIN)
                row_blank(&r, 1);
            else
                iw_rfc3339_format(ts, row_next(&r), sizeof(r.buf[0]));
        }
    } else {
        row_blank(&r, 4);
        row_uint(&r, cams);
        row_uint(&r, never);
        row_blank(&r, 2);
    }
    csv_row(out, r.cell, r.n);
}

static void cameras_csv(const struct iw_camera_report *rep, FILE *out)
{
    static const char *const head[] = {
        "row", "site", "device", "name", "declared", "intervals", "online_intervals",
        "online_rate", "heartbeats", "flagged_samples", "first_seen", "last_seen", "cameras",
        "never_reported", "silent_since", "counted_from",
    };

    csv_row(out, head, IW_ARRAY_LEN(head));
    for (size_t i = 0; i < rep->n_cams; i++) {
        const struct iw_camera *c = &rep->cams[i];
        cam_csv_row(out, "camera", c->site, c->device, c->name, c->declared ? "1" : "0",
                    c->intervals, c->online, c->rate, c, 0, 0);
    }
    for (size_t k = 0; k < rep->n_sites; k++) {
        const struct iw_camera_site *s = &rep->sites[k];
        cam_csv_row(out, "site", s->site, "", "", "", s->intervals, s->online, s->rate, NULL,
                    s->n, s->never_seen);
    }
    cam_csv_row(out, "total", "", "", "", "", rep->total.intervals, rep->total.online,
                rep->total.rate, NULL, rep->total.n, rep->total.never_seen);
}

int iw_report_cameras_write(const struct iw_camera_report *r, enum iw_report_format fmt,
                            FILE *out)
{
    if (r == NULL || out == NULL)
        return IW_E_INVAL;
    switch (fmt) {
    case IW_REPORT_TABLE: cameras_table(r, out); break;
    case IW_REPORT_CSV: cameras_csv(r, out); break;
    case IW_REPORT_HTML: return iw__rp_cameras_html(r, out);
    default: return IW_E_INVAL;
    }
    return finish(out);
}
