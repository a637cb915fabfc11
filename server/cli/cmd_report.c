/*
 * islewatch report water|air|cameras: the compliance reports (SPEC §6) from
 * a database directory. The computation is islewatch/report.h's; this file
 * only turns arguments and the config into report options and picks the
 * output.
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
#include "islewatch/report.h"
#include "islewatch/store.h"

#define DEFAULT_CONFIG "config/islewatch.yaml"

static const struct option opts[] = {
    { "db", required_argument, NULL, 'd' },
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
            "Usage: islewatch report water|air|cameras --from T --to T [--db PATH] [--config FILE]\n"
            "                        [--site GLOB] [--format table|csv|html] [--out FILE]\n"
            "                        [--tz ZONE] [--standard auto|HJ633-2026|HJ633-2012]\n"
            "                        [--interval D] [--source NAME]\n"
            "Compliance reports from the stored raw samples:\n"
            "  water    daily GB 3838 class per station, class distribution, 达标率 (share of\n"
            "           samples meeting the target)\n"
            "  air      daily AQI (HJ 633) per station and site, level, primary pollutant,\n"
            "           优良天数比例 (good-day ratio)\n"
            "  cameras  在线率 (online rate) per camera and site\n\n"
            "  --from T, --to T  the period [from, to): RFC 3339, epoch ms, relative (-30d, now),\n"
            "                    or a local date (2026-01-01 = that day's midnight at --tz)\n"
            "  --db PATH         database directory, opened read-only (works beside a running\n"
            "                    daemon); default: storage.path of the config\n"
            "  --config FILE     inventory (targets, body, names) and timezone; default\n"
            "                    " DEFAULT_CONFIG " when it exists\n"
            "  --site GLOB       only sites matching GLOB ('*' any run, '?' one character)\n"
            "  --format F        table (default), csv (one row per day, device, site; rates as\n"
            "                    fractions) or html (one self-contained printable file)\n"
            "  --out FILE        write to FILE instead of standard output\n"
            "  --tz ZONE         +08:00, UTC, Asia/Shanghai ...; default: the first air_quality\n"
            "                    rule's timezone, else +08:00\n"
            "  --standard S      air: auto (default: HJ633-2012 before 2026-03-01, HJ633-2026\n"
            "                    from then), HJ633-2026 or HJ633-2012 for every day\n"
            "  --interval D      cameras: heartbeat interval (default 60s)\n"
            "  --source NAME     first level of the series (default water, air, camera)\n\n"
            "Exit status: 0 report written, 2 bad arguments or config, 3 store or output error.\n"
            "Example:\n"
            "  islewatch report air --from 2026-01-01 --to 2027-01-01 --db ./data --format html "
            "--out air-2026.html\n");
    if (!full)
        return;
    notes(f, "Definitions (all reports):", iw_report_notes_common);
    notes(f, "water:", iw_report_notes_water);
    notes(f, "air:", iw_report_notes_air);
    notes(f, "cameras:", iw_report_notes_cameras);
}

struct args {
    const char *kind, *db, *config, *from, *to, *site, *out, *tz, *standard, *interval, *source;
    enum iw_report_format format;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    int c;

    memset(a, 0, sizeof(*a));
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a->db = optarg; break;
        case 'c': a->config = optarg; break;
        case 'F': a->from = optarg; break;
        case 'T': a->to = optarg; break;
        case 's': a->site = optarg; break;
        case 'o': a->out = optarg; break;
        case 'z': a->tz = optarg; break;
        case 'S': a->standard = optarg; break;
        case 'i': a->interval = optarg; break;
        case 'r': a->source = optarg; break;
        case 'f':
            if (strcmp(optarg, "table") == 0) a->format = IW_REPORT_TABLE;
            else if (strcmp(optarg, "csv") == 0) a->format = IW_REPORT_CSV;
            else if (strcmp(optarg, "html") == 0) a->format = IW_REPORT_HTML;
            else {
                fprintf(stderr, "islewatch report: --format %s: use table, csv or html\n", optarg);
                return 2;
            }
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
        a->kind = argv[optind++];
    if (a->kind == NULL || optind < argc ||
        (strcmp(a->kind, "water") != 0 && strcmp(a->kind, "air") != 0 &&
         strcmp(a->kind, "cameras") != 0)) {
        fprintf(stderr, "islewatch report: say which report: water, air or cameras\n");
        usage(stderr, false);
        return 2;
    }
    if (a->from == NULL || a->to == NULL) {
        fprintf(stderr, "islewatch report: --from and --to are required (e.g. --from 2026-01-01 "
                "--to 2027-01-01)\n");
        return 2;
    }
    return -1;
}

/* The config: explicit (must load) or the default file (used when present). */
static int load_config(const struct args *a, struct iw_config **cfg)
{
    const char *file = a->config ? a->config : DEFAULT_CONFIG;
    struct iw_diag diag = { 0 };
    struct stat sb;

    *cfg = NULL;
    if (a->config == NULL && stat(file, &sb) != 0) {
        if (a->db == NULL) {
            fprintf(stderr, "islewatch report: no --db and no %s to take storage.path from: pass "
                    "--db PATH (the daemon's storage.path)\n", file);
            return 2;
        }
        return -1;                  /* no inventory: every device targets III, river */
    }
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

static int make_opts(const struct args *a, const struct iw_config *cfg, struct iw_report_opts *o)
{
    int64_t now = iw_now_ms();

    iw_report_opts_init(o);
    o->site_glob = a->site;
    o->source = a->source;
    if (cfg != NULL) {
        o->devices = cfg->devices;
        o->n_devices = cfg->n_devices;
        for (size_t i = 0; i < cfg->n_rules; i++)
            if (cfg->rules[i].kind == IW_RULE_AIR_QUALITY) {
                o->tz_offset_min = cfg->rules[i].p.tz_offset_min;
                break;
            }
    }
    if (a->tz && iw_report_tz_parse(a->tz, &o->tz_offset_min) != IW_OK) {
        fprintf(stderr, "islewatch report: --tz %s: use an offset like +08:00, UTC, or a zone "
                "like Asia/Shanghai\n", a->tz);
        return 2;
    }
    if (iw_report_time_parse(a->from, now, o->tz_offset_min, &o->from) != IW_OK ||
        iw_report_time_parse(a->to, now, o->tz_offset_min, &o->to) != IW_OK) {
        fprintf(stderr, "islewatch report: --from %s / --to %s: use RFC 3339 "
                "(2026-01-01T00:00:00+08:00), a date (2026-01-01), epoch ms, or -30d / now\n",
                a->from, a->to);
        return 2;
    }
    if (o->from >= o->to) {
        fprintf(stderr, "islewatch report: --from must be before --to\n");
        return 2;
    }
    if (a->standard && strcmp(a->standard, "auto") == 0)
        o->standard = IW_REPORT_STD_AUTO;
    else if (a->standard && strcmp(a->standard, "HJ633-2026") == 0)
        o->standard = IW_AQI_HJ633_2026;
    else if (a->standard && strcmp(a->standard, "HJ633-2012") == 0)
        o->standard = IW_AQI_HJ633_2012;
    else if (a->standard) {
        fprintf(stderr, "islewatch report: --standard %s: use auto, HJ633-2026 or HJ633-2012\n",
                a->standard);
        return 2;
    }
    if (a->interval && (iw_duration_parse(a->interval, &o->interval_ms) != IW_OK ||
                        o->interval_ms < 1000)) {
        fprintf(stderr, "islewatch report: --interval %s: use a duration of at least 1s "
                "(60s, 5m)\n", a->interval);
        return 2;
    }
    return -1;
}

static int run(const struct args *a, struct iw_store *st, const struct iw_report_opts *o, FILE *out,
               struct iw_diag *diag)
{
    int rc;

    if (strcmp(a->kind, "water") == 0) {
        struct iw_water_report *r = NULL;
        if ((rc = iw_report_water(st, o, &r, diag)) == IW_OK)
            rc = iw_report_water_write(r, a->format, out);
        iw_report_water_free(r);
    } else if (strcmp(a->kind, "air") == 0) {
        struct iw_air_report *r = NULL;
        if ((rc = iw_report_air(st, o, &r, diag)) == IW_OK)
            rc = iw_report_air_write(r, a->format, out);
        iw_report_air_free(r);
    } else {
        struct iw_camera_report *r = NULL;
        if ((rc = iw_report_cameras(st, o, &r, diag)) == IW_OK)
            rc = iw_report_cameras_write(r, a->format, out);
        iw_report_cameras_free(r);
    }
    return rc;
}

int iw_cmd_report(int argc, char **argv)
{
    struct args a;
    struct iw_config *cfg = NULL;
    struct iw_report_opts o;
    struct iw_store *st = NULL;
    struct iw_store_opts so = { .read_only = true };
    struct iw_diag diag = { 0 };
    FILE *out = stdout;
    int rc;

    if ((rc = parse_args(argc, argv, &a)) >= 0)
        return rc;
    if ((rc = load_config(&a, &cfg)) >= 0)
        return rc;
    if ((rc = make_opts(&a, cfg, &o)) >= 0)
        goto done;
    so.path = a.db ? a.db : cfg->storage.path;
    if (iw_store_open(&so, &st, &diag) != IW_OK) {
        fprintf(stderr, "islewatch report: cannot open the database %s: %s (check --db)\n",
                so.path, iw_diag_first(&diag));
        rc = 3;
        goto done;
    }
    if (a.out != NULL && (out = fopen(a.out, "w")) == NULL) {
        fprintf(stderr, "islewatch report: cannot write %s: %s\n", a.out, strerror(errno));
        rc = 3;
        goto done;
    }
    rc = run(&a, st, &o, out, &diag);
    if (rc != IW_OK) {
        fprintf(stderr, "islewatch report %s: %s\n", a.kind,
                diag.n > 0 ? iw_diag_first(&diag) : iw_strerror(rc));
        rc = rc == IW_E_INVAL ? 2 : 3;
    }
    if (out != stdout && fclose(out) != 0 && rc == IW_OK) {
        fprintf(stderr, "islewatch report: writing %s failed: %s\n", a.out, strerror(errno));
        rc = 3;
    }
    if (out != stdout && rc != IW_OK)
        remove(a.out);              /* no half-written report left behind */
    if (rc == IW_OK && a.out != NULL)
        fprintf(stderr, "islewatch report: wrote %s\n", a.out);

done:
    iw_store_close(st);
    iw_config_free(cfg);
    iw_diag_fini(&diag);
    return rc;
}
