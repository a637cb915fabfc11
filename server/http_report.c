/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /api/v1/report/{water|air|cameras}?from=T&to=T[&format=table|csv|html]
 *     [&site=GLOB&tz=ZONE&standard=S&interval=D&source=NAME]
 *
 * The compliance report (SPEC §6) computed on the daemon's open store with
 * the daemon's config (inventory, time zone), answered as the rendered text
 * (text/plain, text/csv or text/html): the bytes `islewatch report --db`
 * prints for the same arguments, which is what `islewatch report --url`
 * prints. Arguments are the CLI's options without the dashes, in the same
 * syntax (islewatch/report.h: iw_report_opts_parse). Reading only, so no
 * token. It runs on the request's libmicrohttpd thread.
 */
#include <stdio.h>
#include <stdlib.h>

#include "islewatch/clock.h"
#include "islewatch/daemon.h"
#include "islewatch/report.h"
#include "http_int.h"

/* An argument left empty (a blank form field) is an absent one, as elsewhere in the API. */
static const char *arg(struct MHD_Connection *c, const char *name)
{
    const char *v = iw__http_arg(c, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

enum MHD_Result iw__api_report(struct iw_http *h, struct MHD_Connection *c, const char *kind_s)
{
    static const char *const ctypes[] = { "text/plain; charset=utf-8", "text/csv; charset=utf-8",
                                          "text/html; charset=utf-8" };
    struct iw_report_args a = {
        .from = arg(c, "from"), .to = arg(c, "to"), .site = arg(c, "site"), .tz = arg(c, "tz"),
        .standard = arg(c, "standard"), .interval = arg(c, "interval"),
        .source = arg(c, "source"),
    };
    const char *fmt_s = iw__http_arg(c, "format");
    enum iw_report_kind kind;
    enum iw_report_format fmt = IW_REPORT_TABLE;
    struct iw_report_opts o;
    struct iw_diag diag = { 0 };
    enum MHD_Result ret;
    char *body = NULL;
    size_t len = 0;
    FILE *out;
    int rc;

    static const char *const known[] = { "from", "to", "format", "site", "tz", "standard",
                                         "interval", "source", NULL };
    char path[64];

    if (iw_report_kind_parse(kind_s, &kind) != IW_OK)
        return iw__http_error(c, MHD_HTTP_NOT_FOUND, "no report \"%s\": use /api/v1/report/water, "
                              "/api/v1/report/air or /api/v1/report/cameras", kind_s);
    /* A misspelt argument is not ignored: sit=dongtan would answer for every site. */
    snprintf(path, sizeof(path), "/api/v1/report/%s", kind_s);
    if (!iw__http_args_known(c, path, known, &ret))
        return ret;
    if (fmt_s != NULL && fmt_s[0] != '\0' && iw_report_format_parse(fmt_s, &fmt) != IW_OK)
        return iw__http_error(c, MHD_HTTP_BAD_REQUEST, "format=\"%s\": use table, csv or html",
                              fmt_s);
    if (iw_report_opts_parse(&a, iw_daemon_config(h->d), iw_now_ms(), &o, &diag) != IW_OK) {
        ret = iw__http_error(c, MHD_HTTP_BAD_REQUEST, "%s", iw_diag_first(&diag));
        iw_diag_fini(&diag);
        return ret;
    }
    if ((out = open_memstream(&body, &len)) == NULL)
        return iw__http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "the report: out of memory");
    rc = iw_report_run(iw_daemon_store(h->d), kind, &o, fmt, out, &diag);
    if (fclose(out) != 0 && rc == IW_OK)
        rc = IW_E_NOMEM;
    if (rc == IW_OK) {
        ret = iw__http_reply(c, MHD_HTTP_OK, ctypes[fmt], body, len);
    } else {
        free(body);
        ret = iw__http_error(c, rc == IW_E_INVAL ? MHD_HTTP_BAD_REQUEST
                                                 : MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "the %s report: %s", kind_s,
                             diag.n > 0 ? iw_diag_first(&diag) : iw_strerror(rc));
    }
    iw_diag_fini(&diag);
    return ret;
}
