/* islewatch alerts: alert history or the active alerts. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/api_json.h"
#include "islewatch/cli.h"
#include "islewatch/clock.h"
#include "cli_int.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch alerts [--active] [--since T] [--rule R] [--limit N]\n"
            "                        [--db PATH | --url URL | --config FILE] [--format table|csv|json]\n"
            "Alert history in publish order (seq), or with --active the alerts firing now.\n"
            "T is RFC 3339, epoch milliseconds or relative (-24h); R a rule name or glob\n"
            "(camera-*). --config FILE asks the daemon that FILE configures (its http.listen).\n\n"
            "Example:\n  islewatch alerts --active --db ./data\n"
            "  islewatch alerts --since -24h --rule water-class --format csv\n");
}

struct aargs {
    struct cli_source src;
    bool active;
    int64_t since;
    const char *rule;
    long limit;
};

static int build(struct iw_store *st, void *ctx, char **out)
{
    const struct aargs *a = ctx;
    return iw_api_alerts_json(st, a->active, a->since, a->rule, (size_t)a->limit, out);
}

static const char *str(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
    return s ? s : "";
}

int iw_cmd_alerts(int argc, char **argv)
{
    static const struct option opts[] = {
        { "active", no_argument, NULL, 'A' }, { "since", required_argument, NULL, 's' },
        { "rule", required_argument, NULL, 'r' }, { "limit", required_argument, NULL, 'n' },
        { "db", required_argument, NULL, 'd' }, { "url", required_argument, NULL, 'u' },
        { "format", required_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
        { "config", required_argument, NULL, 'c' }, { NULL, 0, NULL, 0 },
    };
    const char *cfg_file = NULL;
    struct aargs a = { .src = { .url = cli_default_url() }, .since = INT64_MIN };
    char path[4096], rb[3072];
    int c, rc;
    bool url_given = false;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'A': a.active = true; break;
        case 's':
            if (iw_time_arg_parse(optarg, iw_now_ms(), &a.since) != 0) {
                fprintf(stderr, "islewatch: --since %s: use RFC 3339 with its zone "
                        "(2026-11-29T10:00:00Z, 2026-11-29T18:00:00+08:00), epoch ms, or "
                        "relative (-24h)\n", optarg);
                return 2;
            }
            break;
        case 'r': a.rule = optarg; break;
        case 'n': {
            char *end;
            errno = 0;
            a.limit = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || errno != 0 || a.limit < 0) {
                fprintf(stderr, "islewatch: --limit %s: use a count, e.g. --limit 100 (0: no "
                        "limit)\n", optarg);
                return 2;
            }
            break;
        }
        case 'd': a.src.db = optarg; break;
        case 'u': a.src.url = optarg; url_given = true; break;
        case 'c': cfg_file = optarg; break;
        case 'f':
            if ((int)(a.src.format = (enum cli_format)cli_format_parse(optarg)) < 0) {
                fprintf(stderr, "islewatch: --format %s: use table, csv or json\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (cli_db_and_url("alerts", a.src.db, url_given)
        || cli_config_source("alerts", cfg_file, url_given, &a.src) != 0)
        return 2;
    if (optind < argc) {
        fprintf(stderr, "islewatch alerts: unexpected argument \"%s\" (a rule goes after "
                "--rule)\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!cli_urlenc(rb, sizeof(rb), a.rule ? a.rule : "") && a.src.db == NULL) {
        fprintf(stderr, "islewatch alerts: --rule is %zu bytes, too long for a request to the "
                "daemon; shorten it or read the database with --db PATH\n", strlen(a.rule));
        return 2;
    }
    snprintf(path, sizeof(path), "/api/v1/alerts?active=%d&since=%" PRId64 "%s%s&limit=%ld",
             a.active ? 1 : 0, a.since == INT64_MIN ? 0 : a.since, a.rule ? "&rule=" : "",
             a.rule ? rb : "", a.limit);
    cJSON *doc = cli_fetch(&a.src, path, build, &a, &rc), *it;
    if (doc == NULL)
        return rc;
    if (cJSON_GetArraySize(doc) == 0) {
        /* stdout keeps its shape ([] or the header); stderr says why it is empty. */
        char since[40] = "";
        if (a.since != INT64_MIN)
            iw_rfc3339_format(a.since, since, sizeof(since));
        fprintf(stderr, "islewatch alerts: no %salert%s%s%s%s%s%s\n", a.active ? "firing " : "",
                a.rule ? " of a rule matching \"" : "", a.rule ? a.rule : "", a.rule ? "\"" : "",
                since[0] ? " since " : "", since, a.active || a.rule || since[0] ? ""
                : " recorded yet");
    }
    if (a.src.format == FMT_JSON) {
        cli_print_json(doc);
        cJSON_Delete(doc);
        return 0;
    }
    if (a.src.format == FMT_CSV)
        printf("seq,ts,severity,status,rule,site,device,metric,value,id,message,late,silenced,"
               "acked_at,acked_by\n");
    else
        printf("%-6s %-16s %-24s %-8s %-8s %-18s %-22s %-10s %s\n", "SEQ", "ID", "TIME",
               "SEVERITY", "STATUS", "RULE", "SITE/DEVICE", "VALUE", "MESSAGE");
    cJSON_ArrayForEach(it, doc) {
        const cJSON *v = cJSON_GetObjectItem(it, "value");
        char vb[40] = "";
        if (cJSON_IsNumber(v))
            cli_num(v->valuedouble, vb, sizeof(vb));
        uint64_t seq = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "seq"));
        /* Raised or resolved by an old sample (ts is the sample's time, not when it was
         * published); recorded, not published (a silence matched); acknowledged. */
        bool late = cJSON_IsTrue(cJSON_GetObjectItem(it, "late"));
        bool silenced = cJSON_IsTrue(cJSON_GetObjectItem(it, "silenced"));
        const cJSON *ack = cJSON_GetObjectItem(it, "ack");
        if (a.src.format == FMT_CSV) {
            printf("%" PRIu64 ",%s,%s,%s,", seq, str(it, "ts"), str(it, "severity"), str(it, "status"));
            cli_csv_field(str(it, "rule"));
            putchar(',');
            cli_csv_field(str(it, "site"));
            putchar(',');
            cli_csv_field(str(it, "device"));
            putchar(',');
            cli_csv_field(str(it, "metric"));
            printf(",%s,%s,", vb, str(it, "id"));
            cli_csv_field(str(it, "message"));
            printf(",%s,%s,%s,", late ? "true" : "false", silenced ? "true" : "false",
                   ack ? str(ack, "ts") : "");
            cli_csv_field(ack ? str(ack, "by") : "");
            putchar('\n');
        } else {
            char sd[256], note[160] = "";
            snprintf(sd, sizeof(sd), "%s/%s", str(it, "site"), str(it, "device"));
            if (late)
                snprintf(note, sizeof(note), "[late] ");
            if (silenced)
                snprintf(note + strlen(note), sizeof(note) - strlen(note), "[silenced] ");
            if (ack != NULL)
                snprintf(note + strlen(note), sizeof(note) - strlen(note), "[acked%s%s] ",
                         *str(ack, "by") ? " by " : "", str(ack, "by"));
            /* The id is what `islewatch ack ID` takes. */
            printf("%-6" PRIu64 " %-16s %-24s %-8s %-8s ", seq, str(it, "id"), str(it, "ts"),
                   str(it, "severity"), str(it, "status"));
            cli_col(str(it, "rule"), 18);
            cli_col(sd, 22);
            printf("%-10s %s%s\n", vb, note, str(it, "message"));
        }
    }
    cJSON_Delete(doc);
    return 0;
}
