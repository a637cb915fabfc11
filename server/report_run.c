/* SPDX-License-Identifier: Apache-2.0 */
/*
 * From the arguments of a report, as the user wrote them, to the written
 * report (islewatch/report.h). `islewatch report --db` runs it on a database
 * it opens; the daemon's GET /api/v1/report/KIND runs it on its open store
 * with its own config, for `islewatch report --url`. One path for both, so
 * the two print the same bytes for the same data. No state: any thread.
 */
#include <stdio.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/report.h"

int iw_report_kind_parse(const char *s, enum iw_report_kind *out)
{
    static const char *const names[] = { "water", "air", "cameras" };
    for (int i = 0; i < 3; i++)
        if (s != NULL && strcmp(s, names[i]) == 0) {
            *out = (enum iw_report_kind)i;
            return IW_OK;
        }
    return IW_E_INVAL;
}

int iw_report_format_parse(const char *s, enum iw_report_format *out)
{
    static const char *const names[] = { "table", "csv", "html" };
    for (int i = 0; i < 3; i++)
        if (s != NULL && strcmp(s, names[i]) == 0) {
            *out = (enum iw_report_format)i;
            return IW_OK;
        }
    return IW_E_INVAL;
}

/* The one time argument that is wrong, by name, and what to write instead. */
static void bad_time(struct iw_diag *diag, const char *name, const char *value)
{
    iw_diag_set(diag, NULL, 0, 0, "%s %s: use RFC 3339 (2026-01-01T00:00:00+08:00), a date "
                "(2026-01-01), epoch ms, or -30d / now", name, value);
}

int iw_report_opts_parse(const struct iw_report_args *a, const struct iw_config *cfg,
                         int64_t now_ms, struct iw_report_opts *o, struct iw_diag *diag)
{
    iw_report_opts_init(o);
    o->site_glob = a->site;
    o->source = a->source;
    if (cfg != NULL) {
        o->devices = cfg->devices;
        o->n_devices = cfg->n_devices;
        o->rules = cfg->rules;
        o->n_rules = cfg->n_rules;
        o->raw_retention_ms = cfg->storage.retention_raw_ms;
        for (size_t i = 0; i < cfg->n_rules; i++)
            if (cfg->rules[i].kind == IW_RULE_AIR_QUALITY) {
                o->tz_offset_min = cfg->rules[i].p.tz_offset_min;
                break;
            }
    }
    if (a->from == NULL || a->to == NULL) {
        iw_diag_set(diag, NULL, 0, 0, "from and to are required (e.g. from 2026-01-01 to "
                    "2027-01-01)");
        return IW_E_INVAL;
    }
    if (a->tz && iw_report_tz_parse(a->tz, &o->tz_offset_min) != IW_OK) {
        iw_diag_set(diag, NULL, 0, 0, "tz %s: use an offset like +08:00, UTC, or a zone like "
                    "Asia/Shanghai", a->tz);
        return IW_E_INVAL;
    }
    o->tz_given = a->tz != NULL;
    if (iw_report_time_parse(a->from, now_ms, o->tz_offset_min, &o->from) != IW_OK) {
        bad_time(diag, "from", a->from);
        return IW_E_INVAL;
    }
    if (iw_report_time_parse(a->to, now_ms, o->tz_offset_min, &o->to) != IW_OK) {
        bad_time(diag, "to", a->to);
        return IW_E_INVAL;
    }
    if (o->from >= o->to) {
        char t1[40], t2[40];
        iw_diag_set(diag, NULL, 0, 0, "from must be before to (from %s, to %s): the period is "
                    "[from, to), so one day is --from 2026-01-01 --to 2026-01-02",
                    iw_rfc3339_format(o->from, t1, sizeof(t1)),
                    iw_rfc3339_format(o->to, t2, sizeof(t2)));
        return IW_E_INVAL;
    }
    enum iw_aqi_standard std;
    if (a->standard && strcmp(a->standard, "auto") == 0)
        o->standard = IW_REPORT_STD_AUTO;
    else if (a->standard && iw_aqi_standard_parse(a->standard, &std) == IW_OK)
        o->standard = std;          /* as a rule's standard: "HJ 633-2012", "hj633-2012" */
    else if (a->standard) {
        iw_diag_set(diag, NULL, 0, 0, "standard %s: use auto, HJ633-2026 or HJ633-2012",
                    a->standard);
        return IW_E_INVAL;
    }
    if (a->interval && (iw_duration_parse(a->interval, &o->interval_ms) != IW_OK ||
                        o->interval_ms < 1000)) {
        iw_diag_set(diag, NULL, 0, 0, "interval %s: use a duration of at least 1s (60s, 5m)",
                    a->interval);
        return IW_E_INVAL;
    }
    return IW_OK;
}

int iw_report_run(struct iw_store *st, enum iw_report_kind kind, const struct iw_report_opts *o,
                  enum iw_report_format fmt, FILE *out, struct iw_diag *diag)
{
    int rc;

    if (kind == IW_REPORT_WATER) {
        struct iw_water_report *r = NULL;
        if ((rc = iw_report_water(st, o, &r, diag)) == IW_OK)
            rc = iw_report_water_write(r, fmt, out);
        iw_report_water_free(r);
    } else if (kind == IW_REPORT_AIR) {
        struct iw_air_report *r = NULL;
        if ((rc = iw_report_air(st, o, &r, diag)) == IW_OK)
            rc = iw_report_air_write(r, fmt, out);
        iw_report_air_free(r);
    } else {
        struct iw_camera_report *r = NULL;
        if ((rc = iw_report_cameras(st, o, &r, diag)) == IW_OK)
            rc = iw_report_cameras_write(r, fmt, out);
        iw_report_cameras_free(r);
    }
    return rc;
}
