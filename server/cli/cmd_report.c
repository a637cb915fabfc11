/*
 * islewatch report water|air|cameras: the compliance reports (SPEC §6),
 * from a database directory (--db PATH, or the storage.path of --config
 * FILE) or through a running daemon (--url URL, the default), which renders
 * the same report on its open store (GET /api/v1/report/KIND,
 * server/http_report.c). The computation is islewatch/report.h's; this
 * file only turns arguments into a request or into report options and
 * writes the output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "islewatch/cli.h"
#include "islewatch/clock.h"
#include "islewatch/config.h"
#include "islewatch/http_client.h"
#include "islewatch/report.h"
#include "islewatch/store.h"
#include "cli_int.h"

#define DEFAULT_CONFIG "config/islewatch.yaml"

static const struct option opts[] = {
    { "db", required_argument, NULL, 'd' },
    { "url", required_argument, NULL, 'u' },
    { "config", required_argument, NULL, 'c' },
    { "from", required_argument, NULL, 'F' },
    { "to", required_argument, NULL, 'T' },
    { "site", required_argument, NULL, 's' },
    { "format", required_argument, NULL, 'f' },
    { "out", required_argument, NULL, 'o' },
    { "tz", required_argument, NULL, 'z' },
    { "standard", required_argument, NULL, 'S' },
    { "interval", required_argument, NULL, 'i' },
    { "source", required_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Definitions, word-wrapped for a terminal. */
static void notes(FILE *f, const char *title, const char *const *lines)
{
    const size_t width = 92;

    fprintf(f, "\n%s\n", title);
    for (; *lines; lines++) {
        const char *p = *lines;
        bool first = true;
        while (*p) {
            size_t n = strlen(p), cut = n;
            if (n > width) {
                cut = width;
                while (cut > 0 && p[cut] != ' ')
                    cut--;
                if (cut == 0)
                    cut = strcspn(p, " ");
            }
            fprintf(f, "%s%.*s\n", first ? "  - " : "    ", (int)cut, p);
            first = false;
            p += cut;
            while (*p == ' ')
                p++;
        }
    }
}

static void usage(FILE *f, bool full)
{
    fprintf(f,
            "Usage: islewatch report water|air|cameras --from T --to T\n"
            "                        [--url URL | --db PATH [--config FILE] | --config FILE]\n"
            "                        [--site GLOB] [--format table|csv|html] [--out FILE]\n"
            "                        [--tz ZONE] [--standard auto|HJ633-2026|HJ633-2012]\n"
            "                        [--interval D] [--source NAME]\n"
            "Compliance reports from the stored raw samples:\n"
            "  water    daily GB 3838 class per station, the period's class per station and\n"
            "           site (a site: its worst station), class distribution, 达标率 (share of\n"
            "           samples meeting the target)\n"
            "  air      daily AQI (HJ 633) per station and site, level, primary pollutant,\n"
            "           优良天数比例 (good-day ratio); every local day the period touches\n"
            "  cameras  在线率 (online rate) per camera and site\n\n"
            "  --from T, --to T  the period [from, to): RFC 3339, epoch ms, relative (-30d, now),\n"
            "                    or a local date (2026-01-01 = that day's midnight at --tz)\n"
            "  --url URL         the running daemon's HTTP API (default $ISLEWATCH_URL, else\n"
            "                    " IW_HTTP_DEFAULT_URL "):\n"
            "                    it computes the report on its database with its own config\n"
            "  --db PATH         read the database directory directly, read-only (works beside\n"
            "                    a running daemon)\n"
            "  --config FILE     with --db: rules and inventory (targets, body, names), timezone;\n"
            "                    default " DEFAULT_CONFIG " when it exists. Without --db:\n"
            "                    read FILE's storage.path directly\n"
            "  --site GLOB       only sites matching GLOB ('*' any run, '?' one character)\n"
            "  --format F        table (default), csv (one row per day, device, site; rates as\n"
            "                    fractions) or html (one self-contained printable file)\n"
            "  --out FILE        write to FILE instead of standard output\n"
            "  --tz ZONE         +08:00, UTC, Asia/Shanghai ...; default: the first air_quality\n"
            "                    rule's timezone, else +08:00; air stations then keep their\n"
            "                    own rule's timezone (a sites: override included)\n"
            "  --standard S      air: auto (default: HJ633-2012 before 2026-03-01, HJ633-2026\n"
            "                    from then), HJ633-2026 or HJ633-2012 for every day\n"
            "  --interval D      cameras: heartbeat interval (default 60s)\n"
            "  --source NAME     first level of the series (default water, air, camera)\n\n"
            "Exit status: 0 report written, 2 bad arguments or config, 3 store or output error,\n"
            "or the daemon cannot be reached.\n"
            "Example:\n"
            "  islewatch report air --from 2026-01-01 --to 2027-01-01 --format html "
            "--out air-2026.html\n"
            "  islewatch report water --from -30d --to now --db ./data --format csv\n");
    if (!full)
        return;
    notes(f, "Definitions (all reports):", iw_report_notes_common);
    notes(f, "water:", iw_report_notes_water);
    notes(f, "air:", iw_report_notes_air);
    notes(f, "cameras:", iw_report_notes_cameras);
}

struct args {
    const char *kind_s, *db, *url, *config, *out, *format_s;
    enum iw_report_kind kind;
    enum iw_report_format format;
    struct iw_report_args r;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    int c;

    memset(a, 0, sizeof(*a));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a->db = optarg; break;
        case 'u': a->url = optarg; break;
        case 'c': a->config = optarg; break;
        case 'F': a->r.from = optarg; break;
        case 'T': a->r.to = optarg; break;
        case 's': a->r.site = optarg; break;
        case 'o': a->out = optarg; break;
        case 'z': a->r.tz = optarg; break;
        case 'S': a->r.standard = optarg; break;
        case 'i': a->r.interval = optarg; break;
        case 'r': a->r.source = optarg; break;
        case 'f':
            if (iw_report_format_parse(optarg, &a->format) != IW_OK) {
                fprintf(stderr, "islewatch report: --format %s: use table, csv or html\n", optarg);
                return 2;
            }
            a->format_s = optarg;
            break;
        case 'h':
            usage(stdout, true);
            return 0;
        default:
            usage(stderr, false);
            return 2;
        }
    }
    if (optind < argc)
        a->kind_s = argv[optind++];
    if (a->kind_s == NULL) {
        fprintf(stderr, "islewatch report: say which report: water, air or cameras\n");
        usage(stderr, false);
        return 2;
    }
    if (iw_report_kind_parse(a->kind_s, &a->kind) != IW_OK) {
        fprintf(stderr, "islewatch report: there is no report \"%s\": use water, air or "
                "cameras\n", a->kind_s);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "islewatch report: unexpected argument \"%s\" after %s (options start "
                "with --, e.g. --site GLOB)\n", argv[optind], a->kind_s);
        return 2;
    }
    if (a->r.from == NULL || a->r.to == NULL) {
        fprintf(stderr, "islewatch report: --from and --to are required (e.g. --from 2026-01-01 "
                "--to 2027-01-01)\n");
        return 2;
    }
    if (a->url != NULL && (a->db != NULL || a->config != NULL)) {
        fprintf(stderr, "islewatch report: --url asks the daemon, which uses its own database "
                "and config; drop --url to read --db PATH (or --config FILE's storage.path) "
                "directly, or drop %s\n", a->db ? "--db" : "--config");
        return 2;
    }
    return -1;
}

/* Reading directly: the config, explicit (must load) or the default file (used when present). */
static int load_config(const struct args *a, struct iw_config **cfg)
{
    const char *file = a->config ? a->config : DEFAULT_CONFIG;
    struct iw_diag diag = { 0 };
    struct stat sb;

    *cfg = NULL;
    if (a->config == NULL && stat(file, &sb) != 0)
        return -1;                  /* no inventory: every device targets III, river */
    if (iw_config_load(file, cfg, &diag) != IW_OK) {
        for (size_t i = 0; i < diag.n; i++)
            fprintf(stderr, "%s\n", diag.lines[i]);
        if (diag.n == 0)
            fprintf(stderr, "islewatch report: cannot load %s\n", file);
        fprintf(stderr, "islewatch report: fix %s or pass another with --config FILE\n", file);
        iw_diag_fini(&diag);
        return 2;
    }
    iw_diag_fini(&diag);
    return -1;
}

/* Where the report goes: standard output or --out FILE. NULL after printing why. */
static FILE *open_out(const struct args *a)
{
    FILE *out = a->out ? fopen(a->out, "w") : stdout;
    if (out == NULL)
        fprintf(stderr, "islewatch report: cannot write %s: %s\n", a->out, strerror(errno));
    return out;
}

/* Close --out; on failure remove it, so no half-written report is left behind. */
static int close_out(const struct args *a, FILE *out, int rc)
{
    if (out == stdout)
        return rc;
    if (fclose(out) != 0 && rc == IW_OK) {
        fprintf(stderr, "islewatch report: writing %s failed: %s\n", a->out, strerror(errno));
        rc = 3;
    }
    if (rc != IW_OK)
        remove(a->out);
    else
        fprintf(stderr, "islewatch report: wrote %s\n", a->out);
    return rc;
}

/* ---- --db PATH or --config FILE: the database, read directly ---- */

static int report_db(const struct args *a)
{
    struct iw_config *cfg = NULL;
    struct iw_report_opts o;
    struct iw_store *st = NULL;
    struct iw_store_opts so = { .read_only = true };
    struct iw_diag diag = { 0 };
    FILE *out = NULL;
    int rc;

    if ((rc = load_config(a, &cfg)) >= 0)
        return rc;
    if (iw_report_opts_parse(&a->r, cfg, iw_now_ms(), &o, &diag) != IW_OK) {
        fprintf(stderr, "islewatch report: %s\n", iw_diag_first(&diag));
        rc = 2;
        goto done;
    }
    so.path = a->db ? a->db : cfg->storage.path;
    if (iw_store_open(&so, &st, &diag) != IW_OK) {
        fprintf(stderr, "islewatch report: %s (check --db)\n", iw_diag_first(&diag));
        rc = 3;
        goto done;
    }
    if ((out = open_out(a)) == NULL) {
        rc = 3;
        goto done;
    }
    rc = iw_report_run(st, a->kind, &o, a->format, out, &diag);
    if (rc != IW_OK) {
        fprintf(stderr, "islewatch report %s: %s\n", a->kind_s,
                diag.n > 0 ? iw_diag_first(&diag) : iw_strerror(rc));
        rc = rc == IW_E_INVAL ? 2 : 3;
    }
    rc = close_out(a, out, rc);
done:
    iw_store_close(st);
    iw_config_free(cfg);
    iw_diag_fini(&diag);
    return rc;
}

/* ---- --url URL: the daemon renders it (GET /api/v1/report/KIND) ---- */

/* Append "&name=value" (percent-encoded) to path; false when it does not fit. */
static bool add_arg(char *path, size_t cap, const char *name, const char *value)
{
    char enc[1024];
    size_t used = strlen(path);

    if (value == NULL)
        return true;
    if (!cli_urlenc(enc, sizeof(enc), value))
        return false;
    return (size_t)snprintf(path + used, cap - used, "%s%s=%s", strchr(path, '?') ? "&" : "?",
                            name, enc) < cap - used;
}

static int report_url(const struct args *a)
{
    const char *url = a->url ? a->url : cli_default_url();
    char path[8192], *body = NULL, err[2048];
    struct iw_diag diag = { 0 };
    size_t len = 0;
    int status = 0, rc;
    FILE *out;

    snprintf(path, sizeof(path), "/api/v1/report/%s", a->kind_s);
    if (!add_arg(path, sizeof(path), "from", a->r.from) || !add_arg(path, sizeof(path), "to", a->r.to) ||
        !add_arg(path, sizeof(path), "format", a->format_s) ||
        !add_arg(path, sizeof(path), "site", a->r.site) || !add_arg(path, sizeof(path), "tz", a->r.tz) ||
        !add_arg(path, sizeof(path), "standard", a->r.standard) ||
        !add_arg(path, sizeof(path), "interval", a->r.interval) ||
        !add_arg(path, sizeof(path), "source", a->r.source)) {
        fprintf(stderr, "islewatch report: an argument is too long for a request to the daemon "
                "(at most 300 characters each)\n");
        return 2;
    }
    if (iw_http_request(url, "GET", path, NULL, NULL, &body, &len, &status, &diag) != IW_OK) {
        fprintf(stderr, "islewatch report: %s; or read a database directly with --db PATH\n",
                iw_diag_first(&diag));
        iw_diag_fini(&diag);
        return 3;
    }
    if (status != 200) {
        fprintf(stderr, "islewatch report: %s answered %d: %s\n", url, status,
                iw_http_error_text(body, err, sizeof(err)));
        if (status == 404)
            fprintf(stderr, "islewatch report: an islewatchd older than this CLI has no "
                    "/api/v1/report; read its database directly with --db PATH\n");
        free(body);
        return status >= 400 && status < 500 ? 2 : 3;
    }
    if ((out = open_out(a)) == NULL) {
        free(body);
        return 3;
    }
    rc = fwrite(body, 1, len, out) == len ? IW_OK : 3;
    if (rc != IW_OK)
        fprintf(stderr, "islewatch report: writing %s failed: %s\n",
                a->out ? a->out : "standard output", strerror(errno));
    free(body);
    return close_out(a, out, rc);
}

int iw_cmd_report(int argc, char **argv)
{
    struct args a;
    int rc;

    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;
    /* A database named (--db, or a config's storage.path) is read directly; else the daemon. */
    if (a.db != NULL || a.config != NULL)
        return report_db(&a);
    return report_url(&a);
}
