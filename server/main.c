/* islewatchd: parse argv, run the daemon, map the result to an exit code. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "islewatch/daemon.h"
#include "islewatch/log.h"
#include "islewatch/version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatchd [-c FILE] [--log-level LEVEL]\n"
            "MQTT telemetry aggregation server: subscribes to the device topics of FILE,\n"
            "stores every sample in RocksDB, evaluates the rules and publishes alerts.\n\n"
            "  -c, --config FILE     configuration (default config/islewatch.yaml)\n"
            "      --log-level LVL   error, warn, info or debug (default: the config's log_level)\n"
            "  -h, --help            this help\n"
            "  -V, --version         version\n\n"
            "Signals: SIGHUP reloads FILE (an invalid file is refused and the running\n"
            "config stays); SIGTERM/SIGINT drain and stop.\n\n"
            "Exit status: 0 stopped by a signal, 1 invalid configuration (its\n"
            "FILE:LINE:COLUMN errors, a file it names that cannot be read among them),\n"
            "2 usage error, 3 could not start (the store is locked, damaged or\n"
            "unwritable, the HTTP port is taken; the log says which).\n\n"
            "Example:\n  islewatchd -c /etc/islewatch/islewatch.yaml\n"
            "  islewatch check /etc/islewatch/islewatch.yaml   # validate first\n");
}

/*
 * glibc gives threads their own malloc arenas (up to 8 per core) and keeps
 * what each one freed. islewatchd's threads (Paho's, the shards, RocksDB's
 * flush and compaction, the HTTP pool) then hold far more than they use: at
 * 100,000 series under a 2x overload burst, peak RSS was 117 MB with the
 * default and 92 MB with 2 arenas, at the same CPU per message
 * (bench/RESULTS.md). Called before any thread exists; MALLOC_ARENA_MAX in
 * the environment still wins.
 */
static void limit_malloc_arenas(void)
{
#if defined(__GLIBC__)
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, 2);
#endif
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *cfg = "config/islewatch.yaml";
    int log_level = -1;                  /* the config's log_level */
    int c;

    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg = optarg;
            break;
        case 'l': {
            log_level = iw_log_level_parse(optarg);
            if (log_level < 0) {
                fprintf(stderr, "islewatchd: --log-level %s: use error, warn, info or debug\n", optarg);
                return 2;
            }
            iw_log_set_level((enum iw_log_level)log_level);
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("islewatchd %s\n", IW_VERSION_STRING);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "islewatchd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    limit_malloc_arenas();
    int rc = iw_daemon_run(cfg, log_level);
    return rc == IW_OK ? 0 : rc == IW_E_CONFIG ? 1 : 3;
}
