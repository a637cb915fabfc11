/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report_html — the reports as ONE self-contained HTML file: inline CSS,
 * inline SVG charts, no script, font, image or link to fetch, so the file can
 * be mailed, archived and printed as it is. Colours are the standards':
 * the six AQI level colours of HJ 633 Appendix A for daily AQI bars; for the
 * water classes the blue/green/yellow/orange/red of the 2011 method's grades
 * (优 I-II, 良好 III, 轻度 IV, 中度 V, 重度 劣V; these map colours are common
 * practice, not in the standard [U]), two blues to tell I from II.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "islewatch/clock.h"
#include "report_int.h"

static const char *const water_colour[7] = {
    "#D0D0D0", "#7EC8F2", "#1F6FC5", "#2E9E44", "#F2C200", "#F07F00", "#D0202A",
};
#define NODATA_COLOUR "#EEEEEE"
#define INVALID_COLOUR "#B0B0B0"

/* ---- HTML helpers ----------------------------------------------------------- */

static void esc(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

static void head(FILE *out, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", out);
    esc(out, title);
    fputs("</title>\n<style>\n"
          /* Ⅰ..Ⅴ from a font that draws them: WenQuanYi Micro Hei, the CJK
           * fallback of many Linux desktops, has an empty Ⅴ (U+2164). */
          "@font-face{font-family:iw-roman;src:local(\"DejaVu Sans\"),local(\"Noto Sans CJK SC\"),"
          "local(\"Microsoft YaHei\"),local(\"PingFang SC\");unicode-range:U+2160-2188}\n"
          "body{font-family:iw-roman,\"Noto Sans CJK SC\",\"Source Han Sans SC\",\"PingFang SC\","
          "\"Microsoft YaHei\",sans-serif;margin:2em auto;max-width:1100px;color:#222;"
          "font-size:14px;line-height:1.4}\n"
          "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:2px solid #444;"
          "margin-top:2em}h3{font-size:1.05em;margin:1.2em 0 .3em}\n"
          ".meta{color:#444;margin-top:0}\n"
          "table{border-collapse:collapse;margin:.4em 0 1em;font-size:.92em}"
          "th,td{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}"
          "th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}"
          "tr.sum td{font-weight:bold;background:#fafafa}tr.inv td{color:#777}\n"
          ".sw{display:inline-block;width:.85em;height:.85em;border:1px solid #777;"
          "vertical-align:-1px;margin-right:3px}\n"
          ".legend span.item{margin-right:1em;white-space:nowrap}\n"
          "svg{display:block;margin:.3em 0 .8em;max-width:100%;height:auto}.chart{overflow-x:auto}"
          /* A phone: tables and charts scroll on their own, the page does not. */
          "@media (max-width:760px){body{margin:1em .6em}table{display:block;overflow-x:auto}"
          "svg{max-width:none}}\n"
          "svg text{font-size:10px;fill:#333}\n"
          ".foot{font-size:.85em;color:#333;border-top:1px solid #999;margin-top:2.5em}"
          ".foot li{margin:.2em 0}\n"
          "@media print{body{margin:0;max-width:none;font-size:9pt}"
          "h2{break-after:avoid}h3{break-after:avoid}section.site{break-before:page}"
          "tr{break-inside:avoid}thead{display:table-header-group}svg{break-inside:avoid}"
          "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n"
          "@page{size:A4;margin:12mm}\n"
          "</style>\n</head>\n<body>\n", out);
}

static void title_block(FILE *out, const char *title, const char *sub, int64_t from_day,
                        int64_t to_day, size_t n_days, int tz, int64_t generated,
                        int64_t kept_from)
{
    char a[16], b[16], z[8], g[32], note[300];

    fputs("<h1>", out);
    esc(out, title);
    fputs("</h1>\n<p class=\"meta\">", out);
    esc(out, sub);
    fprintf(out, "<br>统计时段 Period: %s – %s", iw_report_date(from_day, tz, a, sizeof(a)),
            iw_report_date(to_day, tz, b, sizeof(b)));
    if (n_days > 0)
        fprintf(out, " (%zu day%s)", n_days, n_days == 1 ? "" : "s");
    fprintf(out, ", UTC%s · 生成 Generated %s</p>\n", iw_report_tz_format(tz, z, sizeof(z)),
            iw__rp_local_time(generated, tz, g, sizeof(g)));
    if (*iw__rp_retention_note(kept_from, tz, note, sizeof(note)) != '\0') {
        fputs("<p class=\"meta\"><strong>注意 Note:</strong> ", out);
        esc(out, note);
        fputs(".</p>\n", out);
    }
}

static void footnote(FILE *out, const char *const *notes, const char *extra)
{
    fputs("<div class=\"foot\">\n<h3>说明 Definitions</h3>\n<ol>\n", out);
    for (const char *const *n = notes; *n; n++) {
        fputs("<li>", out);
        esc(out, *n);
        fputs("</li>\n", out);
    }
    for (const char *const *n = iw_report_notes_common; *n; n++) {
        fputs("<li>", out);
        esc(out, *n);
        fputs("</li>\n", out);
    }
    if (extra != NULL) {
        fputs("<li>", out);
        esc(out, extra);
        fputs("</li>\n", out);
    }
    fputs("</ol>\n<p>Generated by islewatch report. Sources of every number: shared/standards "
          "(GB 3838-2002, HJ 633-2012, HJ 633-2026, GB 3095-2012/2026, HJ 663-2013).</p>\n"
          "</div>\n</body>\n</html>\n", out);
}

static int finish(FILE *out)
{
    return fflush(out) != 0 || ferror(out) ? IW_E_IO : IW_OK;
}

static void td_num(FILE *out, unsigned long long v)
{
    fprintf(out, "<td class=\"n\">%llu</td>", v);
}

static void td_text(FILE *out, const char *s, bool num)
{
    fputs(num ? "<td class=\"n\">" : "<td>", out);
    esc(out, s);
    fputs("</td>", out);
}

static void swatch(FILE *out, const char *colour)
{
    fprintf(out, "<span class=\"sw\" style=\"background:%s\"></span>", colour);
}

/* Labels of the x axis of a per-day chart: month starts, or every 7th day in short periods. */
static bool day_tick(int64_t day, size_t k, size_t n_days, int tz, char *label, size_t len)
{
    char d[16];
    iw_report_date(day, tz, d, sizeof(d));
    if (n_days <= 62 ? k % 7 == 0 : strcmp(d + 8, "01") == 0) {
        snprintf(label, len, "%s", n_days <= 62 ? d + 5 : d);
        if (n_days > 62)
            label[7] = '\0';        /* "2026-03" */
        return true;
    }
    return false;
}

/* ==========================================================================
 * Water
 * ======================================================================== */

static void water_legend(FILE *out)
{
    fputs("<p class=\"legend\">", out);
    for (int c = 1; c <= 6; c++) {
        const struct iw_water_class_info *ci = iw_water_class_info(c);
        fputs("<span class=\"item\">", out);
        swatch(out, water_colour[c]);
        esc(out, ci->name_zh);
        fprintf(out, " %s</span>", ci->grade_zh);
    }
    fputs("<span class=\"item\">", out);
    swatch(out, NODATA_COLOUR);
    fputs("无数据 no data</span></p>\n", out);
}

/* One stacked bar per row: the class distribution, 100 % wide. */
static void water_dist_svg(FILE *out, const char *const *labels,
                           const struct iw_water_tally *const *t, size_t n)
{
    const int lw = 140, w = 760, bh = 18, gap = 6;
    int h = (int)n * (bh + gap) + 4;

    fprintf(out, "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"class distribution\">\n",
            lw + w + 10, h, lw + w + 10, h);
    for (size_t i = 0; i < n; i++) {
        double x = lw;
        int y = (int)i * (bh + gap) + 2;
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", lw - 6, y + bh - 5);
        esc(out, labels[i]);
        fputs("</text>\n", out);
        if (t[i]->days_classed == 0) {
            fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
                    "<text x=\"%d\" y=\"%d\">no classified day</text>\n", lw, y, w, bh,
                    NODATA_COLOUR, lw + 4, y + bh - 5);
            continue;
        }
        for (int c = 1; c <= 6; c++) {
            double seg = (double)w * (double)t[i]->by_class[c] / (double)t[i]->days_classed;
            if (t[i]->by_class[c] == 0)
                continue;
            fprintf(out, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\">"
                    "<title>%s: %zu days</title></rect>\n", x, y, seg, bh, water_colour[c],
                    iw_water_class_info(c)->name_zh, t[i]->by_class[c]);
            if (seg >= 24)
                fprintf(out, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\"%s>%zu</text>\n",
                        x + seg / 2, y + bh - 5, c == 2 || c == 3 || c == 6 ? " style=\"fill:#fff\""
                        : "", t[i]->by_class[c]);
            x += seg;
        }
    }
    fputs("</svg></div>\n", out);
}

/* One strip per device: a cell per day of the period, coloured by the day's class. */
static void water_strip_svg(FILE *out, const struct iw_water_report *r,
                            const struct iw_water_site *s)
{
    const int lw = 140, w = 760, bh = 14, gap = 4;
    double cw = (double)w / (double)r->n_days;
    int h = (int)s->n * (bh + gap) + 16;
    char label[16];

    fprintf(out, "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"daily class\">\n",
            lw + w + 10, h, lw + w + 10, h);
    for (size_t i = 0; i < s->n; i++) {
        const struct iw_water_device *d = &r->dev[s->first + i];
        int y = (int)i * (bh + gap) + 2;
        size_t k = 0;
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", lw - 6, y + bh - 3);
        esc(out, d->device);
        fprintf(out, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
                lw, y, w, bh, NODATA_COLOUR);
        for (size_t day = 0; day < r->n_days && k < d->n_days; day++) {
            const struct iw_water_day *wd = &d->days[k];
            if (wd->day != r->first_day + (int64_t)day * IW_MS_PER_DAY)
                continue;
            k++;
            fprintf(out, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\">"
                    "<title>%s %s</title></rect>\n", lw + cw * (double)day, y, cw, bh,
                    water_colour[wd->cls], iw_report_date(wd->day, r->tz_offset_min, label,
                    sizeof(label)), iw__rp_class_name(wd->cls));
        }
    }
    for (size_t day = 0; day < r->n_days; day++)
        if (day_tick(r->first_day + (int64_t)day * IW_MS_PER_DAY, day, r->n_days,
                     r->tz_offset_min, label, sizeof(label)))
            fprintf(out, "<text x=\"%.2f\" y=\"%d\">%s</text>\n", lw + cw * (double)day, h - 3,
                    label);
    fputs("</svg></div>\n", out);
}

static void water_sum_tr(FILE *out, const char *site, const char *dev, const char *target,
                         const struct iw_water_tally *t, bool sum)
{
    char buf[256];

    fprintf(out, "<tr%s>", sum ? " class=\"sum\"" : "");
    td_text(out, site, false);
    td_text(out, dev, false);
    td_text(out, target, false);
    td_text(out, t->cls > 0 ? iw__rp_class_name(t->cls) : "", false);
    td_num(out, t->days);
    for (int c = 1; c <= 6; c++)
        td_num(out, t->by_class[c]);
    td_num(out, t->samples);
    td_num(out, t->samples_meeting);
    td_text(out, iw__rp_pct(t->rate, buf, sizeof(buf)), true);
    td_text(out, iw__rp_water_worst(t, false, buf, sizeof(buf)), false);
    td_num(out, t->flagged);
    fputs("</tr>\n", out);
}

static void water_sum_thead(FILE *out)
{
    fputs("<table>\n<thead><tr><th>站点 Site</th><th>设备 Device</th><th>目标 Target</th>"
          "<th>类别 Class</th><th>天数 Days</th><th>Ⅰ类</th><th>Ⅱ类</th><th>Ⅲ类</th><th>Ⅳ类</th><th>Ⅴ类</th>"
          "<th>劣Ⅴ类</th><th>样品数 Samples</th><th>达标样品 Samples meeting</th>"
          "<th>达标率 Share of samples meeting target</th>"
          "<th>主要定类指标 Worst parameters</th><th>Flagged</th></tr></thead>\n<tbody>\n", out);
}

static void water_day_table(FILE *out, const struct iw_water_report *r,
                            const struct iw_water_device *d)
{
    int cols[IW_WATER_NPARAM], nc = 0;
    char buf[256];

    for (int p = 0; p < IW_WATER_NPARAM; p++)
        for (size_t k = 0; k < d->n_days; k++)
            if (d->days[k].n[p] > 0) {
                cols[nc++] = p;
                break;
            }
    fputs("<table>\n<thead><tr><th>日期 Date</th><th>类别 Class</th><th>达标 Meets</th>"
          "<th>达标样品 Samples meeting</th>", out);
    for (int c = 0; c < nc; c++) {
        const struct iw_water_param_info *pi = iw_water_param_info((enum iw_water_param)cols[c]);
        fputs("<th>", out);
        esc(out, pi->label);
        if (pi->unit[0] != '\0') {
            fputs("<br><small>", out);
            esc(out, pi->unit);
            fputs("</small>", out);
        }
        fputs("</th>", out);
    }
    fputs("<th>定类指标 Deciding</th></tr></thead>\n<tbody>\n", out);
    for (size_t k = 0; k < d->n_days; k++) {
        const struct iw_water_day *wd = &d->days[k];
        fputs("<tr>", out);
        td_text(out, iw_report_date(wd->day, r->tz_offset_min, buf, sizeof(buf)), false);
        fputs("<td>", out);
        swatch(out, water_colour[wd->cls]);
        esc(out, wd->cls ? iw_water_class_info(wd->cls)->name_zh : "-");
        fputs("</td>", out);
        td_text(out, wd->cls == 0 ? "-" : wd->meets ? "是 yes" : "否 no", false);
        snprintf(buf, sizeof(buf), "%lu/%lu", (unsigned long)wd->samples_meeting,
                 (unsigned long)wd->samples);
        td_text(out, buf, true);
        for (int c = 0; c < nc; c++)
            td_text(out, iw__rp_num(wd->n[cols[c]] ? wd->mean[cols[c]] : NAN, 4, buf,
                                    sizeof(buf)), true);
        td_text(out, iw__rp_water_deciding(wd, buf, sizeof(buf)), false);
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

int iw__rp_water_html(const struct iw_water_report *r, FILE *out)
{
    const char *labels[64];
    const struct iw_water_tally *tallies[64];
    char buf[300];
    size_t n;

    head(out, "水质达标报告 Water quality compliance report");
    title_block(out, "水质达标报告 Water quality compliance report",
                "GB 3838-2002 地表水环境质量标准, single-factor daily class (2011 evaluation method)",
                r->first_day, iw__rp_last_day(r->first_day, r->n_days), r->n_days,
                r->tz_offset_min, r->generated_ms, r->kept_from);
    if (*iw__rp_water_cut_note(r, buf, sizeof(buf)) != '\0') {
        fputs("<p class=\"meta\"><strong>注意 Note:</strong> ", out);
        esc(out, buf);
        fputs(".</p>\n", out);
    }
    fputs("<h2>汇总 Summary</h2>\n", out);
    water_sum_thead(out);
    for (size_t k = 0; k < r->n_sites; k++) {
        const struct iw_water_site *s = &r->sites[k];
        for (size_t i = s->first; i < s->first + s->n; i++)
            water_sum_tr(out, s->site, r->dev[i].device, iw__rp_class_name(r->dev[i].target),
                         &r->dev[i].tally, false);
        if (s->n > 1)
            water_sum_tr(out, s->site, "全站 site", "", &s->tally, true);
    }
    if (r->n_sites > 1)
        water_sum_tr(out, "全部 all", "", "", &r->total, true);
    fputs("</tbody></table>\n", out);
    if (r->n_sites == 0)
        fputs("<p>No water station in the store or the inventory matches.</p>\n", out);
    water_legend(out);
    /* The distribution of every site on one chart (in pages of 64 bars). */
    for (size_t k0 = 0; k0 < r->n_sites; k0 += IW_ARRAY_LEN(labels)) {
        n = 0;
        for (size_t k = k0; k < r->n_sites && n < IW_ARRAY_LEN(labels); k++) {
            labels[n] = r->sites[k].site;
            tallies[n++] = &r->sites[k].tally;
        }
        water_dist_svg(out, labels, tallies, n);
    }
    for (size_t k = 0; k < r->n_sites; k++) {
        const struct iw_water_site *s = &r->sites[k];
        fputs("<section class=\"site\">\n<h2>站点 Site ", out);
        esc(out, s->site);
        fputs("</h2>\n", out);
        n = 0;
        for (size_t i = s->first; i < s->first + s->n && n < IW_ARRAY_LEN(labels); i++) {
            labels[n] = r->dev[i].device;
            tallies[n++] = &r->dev[i].tally;
        }
        water_dist_svg(out, labels, tallies, n);
        water_strip_svg(out, r, s);
        for (size_t i = s->first; i < s->first + s->n; i++) {
            const struct iw_water_device *d = &r->dev[i];
            fputs("<h3>", out);
            esc(out, d->site);
            fputs("/", out);
            esc(out, d->device);
            if (d->name) {
                fputs(" ", out);
                esc(out, d->name);
            }
            snprintf(buf, sizeof(buf), " (%s, 目标 target %s)%s",
                     d->body == IW_BODY_LAKE ? "湖库 lake/reservoir" : "河流 river",
                     iw_water_class_info(d->target)->name_zh,
                     d->declared || !r->inventory ? "" : " [not in the inventory]");
            esc(out, buf);
            fputs("</h3>\n", out);
            if (d->n_days == 0)
                fputs("<p>无数据 No data in the period.</p>\n", out);
            else
                water_day_table(out, r, d);
        }
        fputs("</section>\n", out);
    }
    footnote(out, iw_report_notes_water, "Water class colours (blue, green, yellow, orange, "
             "red for the grades 优, 良好, 轻度, 中度, 重度污染) are common map practice, not part "
             "of GB 3838.");
    return finish(out);
}

/* ==========================================================================
 * Air
 * ======================================================================== */

static const enum iw_aqi_item html_items[] = {
    IW_AQI_SO2_24H, IW_AQI_NO2_24H, IW_AQI_CO_24H, IW_AQI_O3_8H, IW_AQI_O3_1H,
    IW_AQI_PM10_24H, IW_AQI_PM25_24H,
};

static void aqi_legend(FILE *out)
{
    fputs("<p class=\"legend\">", out);
    for (int l = 1; l <= 6; l++) {
        const struct iw_aqi_level_info *li = iw_aqi_level_info(l);
        fputs("<span class=\"item\">", out);
        swatch(out, li->hex);
        if (li->aqi_max >= 0)
            fprintf(out, "%d–%d ", li->aqi_min, li->aqi_max);
        else
            fprintf(out, "&gt;%d ", li->aqi_min - 1);
        esc(out, li->category_zh);
        fputs(" ", out);
        esc(out, li->category_en);
        fputs("</span>", out);
    }
    fputs("<span class=\"item\">", out);
    swatch(out, INVALID_COLOUR);
    fputs("无效 invalid day</span></p>\n", out);
}

/* Daily AQI bars in the level colours, one slot per day of the period. */
static void aqi_svg(FILE *out, const struct iw_air_report *r, const struct iw_air_day *days,
                    size_t n, int max_aqi)
{
    static const int grid[] = { 50, 100, 150, 200, 300, 400, 500 };
    const int lw = 36, w = 840, ph = 180, top = 8, bottom = 18;
    int ymax = max_aqi <= 200 ? 200 : max_aqi <= 300 ? 300 : 500;
    double cw = (double)w / (double)r->n_days;
    char label[16], prim[64];

    fprintf(out, "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"daily AQI\">\n", lw + w + 6,
            top + ph + bottom, lw + w + 6, top + ph + bottom);
    for (size_t g = 0; g < IW_ARRAY_LEN(grid) && grid[g] <= ymax; g++) {
        double y = top + ph - (double)ph * grid[g] / ymax;
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ccc\" "
                "stroke-width=\"%s\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                lw, y, lw + w, y, grid[g] == 100 ? "1.5" : "0.6", lw - 4, y + 3, grid[g]);
    }
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", lw,
            top + ph, lw + w, top + ph);
    for (size_t k = 0; k < n; k++) {
        const struct iw_air_day *d = &days[k];
        double x = lw + cw * (double)((d->day - r->first_day) / IW_MS_PER_DAY);
        iw_report_date(d->day, r->tz_offset_min, label, sizeof(label));
        if (!d->valid) {
            fprintf(out, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"4\" fill=\"%s\">"
                    "<title>%s invalid</title></rect>\n", x, top + ph - 4, cw, INVALID_COLOUR,
                    label);
            continue;
        }
        double bh = (double)ph * (d->aqi > ymax ? ymax : d->aqi) / ymax;
        fprintf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" "
                "stroke=\"#0003\" stroke-width=\"0.3\"><title>%s AQI %d %s %s</title></rect>\n",
                x, top + ph - bh, cw, bh, iw_aqi_level_info(d->level)->hex, label, d->aqi,
                iw_aqi_level_info(d->level)->category_zh, iw__rp_primary(d->primary, prim,
                sizeof(prim)));
    }
    for (size_t day = 0; day < r->n_days; day++)
        if (day_tick(r->first_day + (int64_t)day * IW_MS_PER_DAY, day, r->n_days,
                     r->tz_offset_min, label, sizeof(label)))
            fprintf(out, "<text x=\"%.2f\" y=\"%d\">%s</text>\n", lw + cw * (double)day,
                    top + ph + 13, label);
    fputs("</svg></div>\n", out);
}

static void air_sum_thead(FILE *out)
{
    fputs("<table>\n<thead><tr><th>站点 Site</th><th>设备 Device</th><th>天数 Days</th>"
          "<th>有效 Valid</th><th>无效 Invalid</th><th>无数据 No data</th>"
          "<th>优良 Good (AQI ≤ 100)</th><th>优良天数比例 Good-day ratio</th>", out);
    for (int l = 1; l <= 6; l++) {
        fputs("<th>", out);
        swatch(out, iw_aqi_level_info(l)->hex);
        esc(out, iw_aqi_level_info(l)->category_zh);
        fputs("</th>", out);
    }
    fputs("<th>最大 Max AQI</th><th>Flagged</th></tr></thead>\n<tbody>\n", out);
}

static void air_sum_tr(FILE *out, const char *site, const char *dev, const struct iw_air_tally *t,
                       bool sum)
{
    char buf[32];

    fprintf(out, "<tr%s>", sum ? " class=\"sum\"" : "");
    td_text(out, site, false);
    td_text(out, dev, false);
    td_num(out, t->days);
    td_num(out, t->valid_days);
    td_num(out, t->invalid_days);
    td_num(out, t->nodata_days);
    td_num(out, t->good_days);
    td_text(out, iw__rp_pct(t->good_rate, buf, sizeof(buf)), true);
    for (int l = 1; l <= 6; l++)
        td_num(out, t->by_level[l]);
    if (t->max_aqi >= 0)
        td_num(out, (unsigned)t->max_aqi);
    else
        td_text(out, "-", true);
    td_num(out, t->flagged);
    fputs("</tr>\n", out);
}

static void air_day_table(FILE *out, const struct iw_air_report *r, const struct iw_air_day *days,
                          size_t n)
{
    char buf[400];

    fputs("<table>\n<thead><tr><th>日期 Date</th><th>标准 Std</th><th>AQI</th>"
          "<th>级别 Level</th><th>类别 Category</th><th>首要污染物 Primary</th>", out);
    for (size_t i = 0; i < IW_ARRAY_LEN(html_items); i++) {
        const struct iw_aqi_item_info *ii = iw_aqi_item_info(html_items[i]);
        if (html_items[i] == IW_AQI_O3_1H && !r->std_used[IW_AQI_HJ633_2012])
            continue;
        fputs("<th>", out);
        esc(out, ii->name);
        fputs("<br><small>", out);
        esc(out, iw_aqi_pollutant_info(ii->pollutant)->unit);
        fputs("</small></th>", out);
    }
    fputs("<th>说明 Note</th></tr></thead>\n<tbody>\n", out);
    for (size_t k = 0; k < n; k++) {
        const struct iw_air_day *d = &days[k];
        const struct iw_aqi_level_info *li = d->valid ? iw_aqi_level_info(d->level) : NULL;
        fprintf(out, "<tr%s>", d->valid ? "" : " class=\"inv\"");
        td_text(out, iw_report_date(d->day, r->tz_offset_min, buf, sizeof(buf)), false);
        td_text(out, d->std == IW_AQI_HJ633_2012 ? "2012" : "2026", false);
        if (li != NULL) {
            fputs("<td class=\"n\">", out);
            swatch(out, li->hex);
            fprintf(out, "%d</td>", d->aqi);
            fputs("<td>", out);
            esc(out, li->name_zh);
            fprintf(out, " (%d)</td><td>", li->level);
            esc(out, li->category_zh);
            fputs(" ", out);
            esc(out, li->category_en);
            fputs("</td>", out);
        } else {
            snprintf(buf, sizeof(buf), d->aqi >= 0 ? "(%d)" : "-", d->aqi);
            td_text(out, buf, true);
            td_text(out, "无效 invalid", false);
            td_text(out, "", false);
        }
        td_text(out, iw__rp_primary(d->valid ? d->primary : 0, buf, sizeof(buf)), false);
        for (size_t i = 0; i < IW_ARRAY_LEN(html_items); i++) {
            const struct iw_avg *a = &d->item[html_items[i]];
            char num[48];
            if (html_items[i] == IW_AQI_O3_1H && !r->std_used[IW_AQI_HJ633_2012])
                continue;
            if (a->n == 0 && !a->valid)
                buf[0] = '\0';
            else
                snprintf(buf, sizeof(buf), "%s%s", iw__rp_num(a->value, 4, num, sizeof(num)),
                         a->valid ? "" : "*");
            td_text(out, buf, true);
        }
        td_text(out, iw__rp_air_note(d, buf, sizeof(buf)), false);
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

static void air_days_block(FILE *out, const struct iw_air_report *r, const char *title,
                           const struct iw_air_day *days, size_t n, int max_aqi)
{
    fputs("<h3>", out);
    esc(out, title);
    fputs("</h3>\n", out);
    if (n == 0) {
        fputs("<p>无数据 No data in the period.</p>\n", out);
        return;
    }
    aqi_svg(out, r, days, n, max_aqi);
    air_day_table(out, r, days, n);
}

/* " (日界 days at UTC+00:00)" when the station's zone is not the report's. */
static const char *own_zone(const struct iw_air_report *r, const struct iw_air_device *d,
                            char *buf, size_t len)
{
    char z[8];

    buf[0] = '\0';
    if (d->tz_offset_min != r->tz_offset_min)
        snprintf(buf, len, " (日界 days at UTC%s)", iw_report_tz_format(d->tz_offset_min, z,
                 sizeof(z)));
    return buf;
}

int iw__rp_air_html(const struct iw_air_report *r, FILE *out)
{
    char title[300], zone[48];

    head(out, "环境空气质量日报统计 Daily AQI report");
    snprintf(title, sizeof(title), "HJ 633 环境空气质量指数: %s; daily values from GB 3095 "
             "validity minimums", r->standard == IW_REPORT_STD_AUTO ?
             "HJ 633-2012 before 2026-03-01, HJ 633-2026 from then" :
             iw_aqi_standard_name(r->standard));
    title_block(out, "环境空气质量日报统计 Daily AQI report", title, r->first_day,
                iw__rp_last_day(r->first_day, r->n_days), r->n_days, r->tz_offset_min,
                r->generated_ms, r->kept_from);
    fputs("<h2>汇总 Summary</h2>\n", out);
    air_sum_thead(out);
    for (size_t k = 0; k < r->n_sites; k++) {
        const struct iw_air_site *s = &r->sites[k];
        for (size_t i = s->first; s->n > 1 && i < s->first + s->n; i++)
            air_sum_tr(out, s->site, r->dev[i].device, &r->dev[i].tally, false);
        air_sum_tr(out, s->site, s->n > 1 ? "全站 site" : r->dev[s->first].device, &s->tally,
                   s->n > 1);
    }
    if (r->n_sites > 1)
        air_sum_tr(out, "全部 all", "", &r->total, true);
    fputs("</tbody></table>\n", out);
    if (r->n_sites == 0)
        fputs("<p>No air station in the store or the inventory matches.</p>\n", out);
    aqi_legend(out);
    for (size_t k = 0; k < r->n_sites; k++) {
        const struct iw_air_site *s = &r->sites[k];
        fputs("<section class=\"site\">\n<h2>站点 Site ", out);
        esc(out, s->site);
        fputs("</h2>\n", out);
        if (s->n == 1) {
            const struct iw_air_device *d = &r->dev[s->first];
            snprintf(title, sizeof(title), "%s/%s%s%s — 日 AQI daily AQI%s", d->site, d->device,
                     d->name ? " " : "", d->name ? d->name : "", own_zone(r, d, zone, sizeof(zone)));
            air_days_block(out, r, title, d->days, d->n_days, s->tally.max_aqi);
        } else {
            snprintf(title, sizeof(title), "%s — 全站 site (mean of %zu devices)", s->site, s->n);
            air_days_block(out, r, title, s->days, s->n_days, s->tally.max_aqi);
            for (size_t i = s->first; i < s->first + s->n; i++) {
                const struct iw_air_device *d = &r->dev[i];
                snprintf(title, sizeof(title), "%s/%s%s%s%s", d->site, d->device,
                         d->name ? " " : "", d->name ? d->name : "",
                         own_zone(r, d, zone, sizeof(zone)));
                air_days_block(out, r, title, d->days, d->n_days, d->tally.max_aqi);
            }
        }
        fputs("</section>\n", out);
    }
    footnote(out, iw_report_notes_air, "* marks a daily value below its validity minimum; "
             "(AQI) in brackets was computed on incomplete data and does not count.");
    return finish(out);
}

/* ==========================================================================
 * Cameras
 * ======================================================================== */

/* Reference line: the 雪亮工程 完好率 (working rate) target of e.g. Shaanxi, 98 %. */
#define CAMERA_REF_RATE 0.98

static void camera_svg(FILE *out, const struct iw_camera_report *r, const struct iw_camera_site *s)
{
    const int lw = 140, w = 700, bh = 14, gap = 5;
    int h = (int)s->n * (bh + gap) + 18;
    double xr = lw + w * CAMERA_REF_RATE;
    char pct[32];

    fprintf(out, "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"online rate\">\n", lw + w + 60, h,
            lw + w + 60, h);
    for (size_t i = 0; i < s->n; i++) {
        const struct iw_camera *c = &r->cams[s->first + i];
        int y = (int)i * (bh + gap) + 2;
        double rate = isnan(c->rate) ? 0 : c->rate;
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", lw - 6, y + bh - 3);
        esc(out, c->device);
        fprintf(out, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
                "<rect x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\">%s</text>\n", lw, y, w, bh, NODATA_COLOUR, lw, y,
                w * rate, bh, rate >= CAMERA_REF_RATE ? "#2E9E44" : "#F07F00", lw + w + 4,
                y + bh - 3, iw__rp_pct(c->rate, pct, sizeof(pct)));
    }
    fprintf(out, "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\" "
            "stroke-dasharray=\"3,2\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"end\">98%%</text>\n"
            "</svg></div>\n", xr, xr, h - 14, xr, h - 3);
}

static void cam_tr(FILE *out, const char *site, const char *dev, const char *name,
                   uint64_t intervals, uint64_t online, double rate, const char *extra[3],
                   bool sum)
{
    char buf[32];

    fprintf(out, "<tr%s>", sum ? " class=\"sum\"" : "");
    td_text(out, site, false);
    td_text(out, dev, false);
    td_text(out, name ? name : "", false);
    td_num(out, intervals);
    td_num(out, online);
    td_text(out, iw__rp_pct(rate, buf, sizeof(buf)), true);
    for (int i = 0; i < 3; i++)
        td_text(out, extra[i], i == 0);
    fputs("</tr>\n", out);
}

int iw__rp_cameras_html(const struct iw_camera_report *r, FILE *out)
{
    char sub[200], a[32], b[64], hb[32], note[96];

    head(out, "雪亮工程 摄像机在线率 Camera online rate");
    snprintf(sub, sizeof(sub), "在线率 = intervals with a heartbeat online = 1 / all intervals; "
             "interval %lld s, %llu per camera; from %s to %s", (long long)(r->interval_ms / 1000),
             (unsigned long long)r->n_intervals,
             iw__rp_local_time(r->from, r->tz_offset_min, a, sizeof(a)),
             iw__rp_local_time(r->to, r->tz_offset_min, b, sizeof(b)));
    title_block(out, "雪亮工程 摄像机在线率 Camera online rate", sub, r->from, r->to - 1, 0,
                r->tz_offset_min, r->generated_ms, r->kept_from);
    fputs("<h2>汇总 Summary</h2>\n<table>\n<thead><tr><th>站点 Site</th><th>设备 Camera</th>"
          "<th>名称 Name</th><th>区间 Intervals</th><th>在线区间 Online</th>"
          "<th>在线率 Online rate</th><th>心跳 Heartbeats</th><th>首次 First seen</th>"
          "<th>最后 Last seen</th></tr></thead>\n<tbody>\n", out);
    for (size_t k = 0; k < r->n_sites; k++) {
        const struct iw_camera_site *s = &r->sites[k];
        for (size_t i = s->first; i < s->first + s->n; i++) {
            const struct iw_camera *c = &r->cams[i];
            const char *extra[3] = { hb, a, b };
            snprintf(hb, sizeof(hb), "%llu", (unsigned long long)c->heartbeats);
            iw__rp_local_time(c->first_seen, r->tz_offset_min, a, sizeof(a));
            iw__rp_local_time(c->last_seen, r->tz_offset_min, b, sizeof(b));
            if (c->heartbeats == 0 && c->intervals == 0)
                snprintf(b, sizeof(b), "期后启用 later");
            else if (c->heartbeats == 0 && c->last_heard != INT64_MIN) {
                char t[40];
                snprintf(b, sizeof(b), "静默自 silent since %s",
                         iw__rp_local_time(c->last_heard, r->tz_offset_min, t, sizeof(t)));
            } else if (c->heartbeats == 0)
                snprintf(b, sizeof(b), "从未上报 never reported");
            cam_tr(out, c->site, c->device, c->name, c->intervals, c->online, c->rate, extra,
                   false);
        }
        snprintf(note, sizeof(note), "%zu camera%s, %zu never reported", s->n,
                 s->n == 1 ? "" : "s", s->never_seen);
        const char *extra[3] = { "", "", note };
        cam_tr(out, s->site, "全站 site", "", s->intervals, s->online, s->rate, extra, true);
    }
    if (r->n_sites > 1) {
        snprintf(note, sizeof(note), "%zu camera%s, %zu never reported", r->total.n,
                 r->total.n == 1 ? "" : "s", r->total.never_seen);
        const char *extra[3] = { "", "", note };
        cam_tr(out, "全部 all", "", "", r->total.intervals, r->total.online, r->total.rate,
               extra, true);
    }
    fputs("</tbody></table>\n", out);
    if (r->n_sites == 0)
        fputs("<p>No camera in the store or the inventory matches.</p>\n", out);
    for (size_t k = 0; k < r->n_sites; k++) {
        fputs("<h3>站点 Site ", out);
        esc(out, r->sites[k].site);
        fputs("</h3>\n", out);
        camera_svg(out, r, &r->sites[k]);
    }
    footnote(out, iw_report_notes_cameras, "The dashed line marks 98 %, the camera 完好率 "
             "(working rate) target some provinces set for key public areas under 雪亮工程 "
             "(e.g. Shaanxi); bars at or above it are green, below it orange.");
    return finish(out);
}
