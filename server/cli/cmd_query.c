/* islewatch series / query: read stored series (--db PATH, or the daemon's HTTP API). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/api_json.h"
#include "islewatch/cli.h"
#include "islewatch/clock.h"
#include "cli_int.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

static const struct option common_opts[] = {
    { "db", required_argument, NULL, 'd' },
    { "url", required_argument, NULL, 'u' },
    { "format", required_argument, NULL, 'f' },
    { "from", required_argument, NULL, 'F' },
    { "to", required_argument, NULL, 'T' },
    { "step", required_argument, NULL, 's' },
    { "agg", required_argument, NULL, 'a' },
    { "help", no_argument, NULL, 'h' },
    { "config", required_argument, NULL, 'c' },
    { NULL, 0, NULL, 0 },
};

static void series_usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch series [GLOB] [--db PATH | --url URL | --config FILE]\n"
            "                        [--format table|csv|json]\n"
            "List stored series with their first and last timestamp and point count.\n"
            "GLOB matches <source>/<site>/<device>/<metric>, '*' within one level.\n\n"
            "  --db PATH     read the database directory directly (works beside a running daemon)\n"
            "  --url URL     the daemon's HTTP API (default $ISLEWATCH_URL, else " DEFAULT_URL ")\n"
            "  --config FILE the daemon that islewatchd config FILE sets up (its http.listen)\n"
            "  --format F    table (default), csv or json\n\n"
            "Example:\n  islewatch series 'water/dongtan/*/*' --db ./data\n");
}

static void query_usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch query GLOB [--from T] [--to T] [--step D --agg A] [--db PATH | --url URL]\n"
            "                      [--config FILE] [--format table|csv|json]\n"
            "Points (or aggregates per step) of every series matching GLOB, from <= t <= to.\n"
            "T is RFC 3339 (2026-11-29T10:00:00Z), epoch milliseconds, or relative (-1h, now);\n"
            "default --to now, --from an hour before --to. D is a duration (1m, 1h, 1d);\n"
            "A is avg, min, max, sum, count or last (default avg). With --step, times are\n"
            "bucket starts.\n"
            "FLAG (raw points): an HJ 212 flag the instrument sent (M C D F T B S: left out of\n"
            "rules and compliance figures), or I on a computed AQI of a period with\n"
            "too little valid data (an indication, decides nothing). Without --db or --url,\n"
            "--config FILE asks the daemon that FILE configures (its http.listen).\n\n"
            "Example:\n  islewatch query 'water/*/w01/nh3_n' --from -24h --step 1h --agg max --db ./data\n");
}

struct args {
    struct cli_source src;
    const char *glob;
    int64_t from, to, step;
    int agg;
    bool agg_set;                       /* --agg given */
    bool from_set;                      /* --from given */
};

static int parse(int argc, char **argv, struct args *a, bool query, void (*usage)(FILE *))
{
    int c;
    int64_t now = iw_now_ms();
    bool url_given = false;
    const char *cfg_file = NULL;

    memset(a, 0, sizeof(*a));
    a->src.url = cli_default_url();
    a->from = now - IW_MS_PER_HOUR;
    a->to = now;
    a->agg = IW_Q_AVG;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", common_opts, NULL)) != -1) {
        if (!query && (c == 'F' || c == 'T' || c == 's' || c == 'a')) {
            fprintf(stderr, "islewatch series: --%s is an option of query, not of series (series "
                    "lists every stored series with its first and last point)\n",
                    c == 'F' ? "from" : c == 'T' ? "to" : c == 's' ? "step" : "agg");
            usage(stderr);
            return 2;
        }
        switch (c) {
        case 'd': a->src.db = optarg; break;
        case 'u': a->src.url = optarg; url_given = true; break;
        case 'c': cfg_file = optarg; break;
        case 'f':
            if ((int)(a->src.format = (enum cli_format)cli_format_parse(optarg)) < 0) {
                fprintf(stderr, "islewatch: --format %s: use table, csv or json\n", optarg);
                return 2;
            }
            break;
        case 'F': case 'T': {
            int64_t *t = c == 'F' ? &a->from : &a->to;
            a->from_set |= c == 'F';
            if (iw_time_arg_parse(optarg, now, t) != 0) {
                fprintf(stderr, "islewatch: --%s %s: use RFC 3339 with its zone "
                        "(2026-11-29T10:00:00Z, 2026-11-29T18:00:00+08:00), epoch ms, or "
                        "relative (-1h, now)\n", c == 'F' ? "from" : "to", optarg);
                return 2;
            }
            break;
        }
        case 's':
            if (iw_duration_parse(optarg, &a->step) != 0 || a->step <= 0) {
                fprintf(stderr, "islewatch: --step %s: use a duration such as 1m, 1h, 1d\n", optarg);
                return 2;
            }
            break;
        case 'a':
            if ((a->agg = iw_agg_parse(optarg)) <= 0) {
                fprintf(stderr, "islewatch: --agg %s: use avg, min, max, sum, count or last\n", optarg);
                return 2;
            }
            a->agg_set = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (cli_db_and_url(query ? "query" : "series", a->src.db, url_given)
        || cli_config_source(query ? "query" : "series", cfg_file, url_given, &a->src) != 0)
        return 2;
    if (optind < argc)
        a->glob = argv[optind++];
    if (a->glob != NULL && a->glob[0] == '\0')
        a->glob = NULL;                 /* '' is no glob, through --url and --db alike */
    if (optind < argc || (query && a->glob == NULL)) {
        if (optind < argc)
            fprintf(stderr, "islewatch %s: unexpected argument \"%s\" (one GLOB; quote it: "
                    "'water/*/*/ph')\n", query ? "query" : "series", argv[optind]);
        else
            fprintf(stderr, "islewatch query: missing GLOB, the series to read (e.g. "
                    "'water/*/*/ph')\n");
        usage(stderr);
        return 2;
    }
    if (!a->from_set)
        a->from = a->to - IW_MS_PER_HOUR;   /* the hour before --to: --to -2h alone works */
    if (query && a->agg_set && a->step == 0) {
        fprintf(stderr, "islewatch: --agg needs --step (e.g. --step 1h --agg max): without a step "
                "query prints the raw points\n");
        return 2;
    }
    if (query && a->from > a->to) {
        char t1[40], t2[40];
        fprintf(stderr, "islewatch query: --from %s is after --to %s: swap them (-2h is before "
                "-1h)\n", cli_time(a->from, t1, sizeof(t1)), cli_time(a->to, t2, sizeof(t2)));
        return 2;
    }
    return -1;
}

/* ---- series ---- */

static int build_series(struct iw_store *st, void *ctx, char **out)
{
    const struct args *a = ctx;
    return iw_api_series_json(st, a->glob, out);
}

/* Through --url the glob travels in the request line, which has a bound. */
static int glob_too_long(const char *cmd, const char *glob)
{
    fprintf(stderr, "islewatch %s: GLOB is %zu bytes, too long for a request to the daemon; "
            "shorten it or read the database with --db PATH\n", cmd, strlen(glob));
    return 2;
}

int iw_cmd_series(int argc, char **argv)
{
    struct args a;
    char path[4096], g[3072];
    int rc = parse(argc, argv, &a, false, series_usage);
    if (rc >= 0)
        return rc;
    if (!cli_urlenc(g, sizeof(g), a.glob ? a.glob : "") && a.src.db == NULL)
        return glob_too_long("series", a.glob);
    snprintf(path, sizeof(path), "/api/v1/series%s%s", a.glob ? "?match=" : "", a.glob ? g : "");
    cJSON *doc = cli_fetch(&a.src, path, build_series, &a, &rc), *it;
    if (doc == NULL)
        return rc;
    if (a.src.format == FMT_JSON) {
        cli_print_json(doc);
    } else {
        char t1[40], t2[40];
        if (a.src.format == FMT_CSV)
            printf("series,first,last,count\n");
        else
            printf("%-44s %-24s %-24s %10s\n", "SERIES", "FIRST", "LAST", "COUNT");
        cJSON_ArrayForEach(it, doc) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(it, "series"));
            int64_t first = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "first"));
            int64_t last = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "last"));
            uint64_t count = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "count"));
            if (name == NULL)
                continue;
            if (a.src.format == FMT_CSV) {
                cli_csv_field(name);
                printf(",%" PRId64 ",%" PRId64 ",%" PRIu64 "\n", first, last, count);
            } else {
                cli_col(name, 44);
                printf("%-24s %-24s %10" PRIu64 "\n", cli_time(first, t1, sizeof(t1)),
                       cli_time(last, t2, sizeof(t2)), count);
            }
        }
        /* On stderr: the table or CSV on stdout stays what it is. */
        if (cJSON_GetArraySize(doc) == 0)
            fprintf(stderr, "islewatch series: no stored series%s%s%s\n", a.glob ? " matches \"" : "",
                    a.glob ? a.glob : "", a.glob ? "\" (source/site/device/metric, * within one level)"
                                                 : " yet");
    }
    cJSON_Delete(doc);
    return 0;
}

/* ---- query ---- */

static int build_query(struct iw_store *st, void *ctx, char **out)
{
    const struct args *a = ctx;
    return iw_api_query_json(st, a->glob, a->from, a->to, a->step, (enum iw_agg)a->agg, 0, out);
}

static const char *agg_name(int agg)
{
    static const char *const n[] = { "raw", "avg", "min", "max", "sum", "count", "last" };
    return agg >= 0 && agg < 7 ? n[agg] : "avg";
}

int iw_cmd_query(int argc, char **argv)
{
    struct args a;
    char path[4096], g[3072];
    int rc = parse(argc, argv, &a, true, query_usage);
    if (rc >= 0)
        return rc;
    if (!cli_urlenc(g, sizeof(g), a.glob) && a.src.db == NULL)
        return glob_too_long("query", a.glob);
    if (a.step > 0)
        snprintf(path, sizeof(path), "/api/v1/query?series=%s&from=%" PRId64 "&to=%" PRId64
                 "&step=%" PRId64 "ms&agg=%s", g, a.from, a.to, a.step, agg_name(a.agg));
    else
        snprintf(path, sizeof(path), "/api/v1/query?series=%s&from=%" PRId64 "&to=%" PRId64,
                 g, a.from, a.to);
    cJSON *doc = cli_fetch(&a.src, path, build_query, &a, &rc), *s, *p;
    if (doc == NULL)
        return rc;
    if (a.src.format == FMT_JSON) {
        cli_print_json(doc);
        cJSON_Delete(doc);
        return 0;
    }
    if (a.src.format == FMT_CSV)
        printf("series,ts,value,flag\n");
    else
        printf("%-44s %-24s %14s %s\n", "SERIES", a.step ? "BUCKET" : "TIME",
               a.step ? agg_name(a.agg) : "VALUE", "FLAG");
    size_t shown = 0;
    cJSON_ArrayForEach(s, doc) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(s, "series"));
        const cJSON *fcur = NULL;
        shown += (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(s, "points"));
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points")) {
            int64_t t = (int64_t)cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
            const cJSON *v = cJSON_GetArrayItem(p, 1);
            const char *flag = cli_point_flag(s, t, &fcur);
            char tb[40];
            if (name == NULL)
                continue;
            if (a.src.format == FMT_CSV) {
                char nb[40];
                cli_csv_field(name);
                printf(",%" PRId64 ",%s,%s\n", t, cli_num(cJSON_GetNumberValue(v), nb, sizeof(nb)),
                       flag ? flag : "");
            } else {
                char nb[40];
                cli_col(name, 44);
                printf("%-24s %14s %s\n", cli_time(t, tb, sizeof(tb)),
                       cli_num(cJSON_GetNumberValue(v), nb, sizeof(nb)), flag ? flag : "");
            }
        }
    }
    /* On stderr: the table or CSV on stdout stays what it is. */
    if (shown == 0) {
        char f[40], t[40];
        fprintf(stderr, "islewatch query: no points of \"%s\" from %s to %s (islewatch series "
                "lists the stored series with their first and last points)\n", a.glob,
                cli_time(a.from, f, sizeof(f)), cli_time(a.to, t, sizeof(t)));
    }
    cJSON_Delete(doc);
    return 0;
}
