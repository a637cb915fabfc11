/* islewatch: the command-line tool. Dispatches to one function per command. */
#include <stdio.h>
#include <string.h>

#include "islewatch/cli.h"
#include "islewatch/config.h"
#include "islewatch/version.h"

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct cmd cmds[] = {
    { "check", iw_cmd_check, "validate a config file (FILE:LINE:COLUMN errors)" },
    { "series", iw_cmd_series, "list series with first/last timestamp and point count" },
    { "query", iw_cmd_query, "points or aggregates of series" },
    { "alerts", iw_cmd_alerts, "alert history or the active alerts" },
    { "tail", iw_cmd_tail, "live alert stream from the broker" },
    { "ack", iw_cmd_ack, "acknowledge a firing alert" },
    { "test", iw_cmd_test, "rule unit tests: samples in, expected alerts out" },
    { "backtest", iw_cmd_backtest, "run a rule file over stored history" },
    { "report", iw_cmd_report, "compliance reports: water, air, cameras" },
};

/* "unknown command" with a did-you-mean when one is close. */
static int unknown(const char *word)
{
    const char *names[sizeof(cmds) / sizeof(cmds[0]) + 1];
    char hint[96];

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        names[i] = cmds[i].name;
    names[sizeof(cmds) / sizeof(cmds[0])] = NULL;
    fprintf(stderr, "islewatch: unknown command \"%s\"%s\n\n", word,
            iw_did_you_mean(word, names, hint, sizeof(hint)));
    return 2;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: islewatch COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\n`islewatch COMMAND --help` shows a command's options and an example.\n"
               "Reading commands talk to a running daemon (--url URL; default $ISLEWATCH_URL,\n"
               "else http://127.0.0.1:8080) or read a database directory directly (--db PATH),\n"
               "also while the daemon has it open.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* `islewatch help COMMAND` is `islewatch COMMAND --help`. */
    if (strcmp(argv[1], "help") == 0 && argc >= 3) {
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            if (strcmp(argv[2], cmds[i].name) == 0) {
                static char help_opt[] = "--help";
                char prog[32];
                snprintf(prog, sizeof(prog), "islewatch %s", cmds[i].name);
                char *hv[] = { prog, help_opt, NULL };
                return cmds[i].fn(2, hv);
            }
        unknown(argv[2]);
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
        strcmp(argv[1], "version") == 0) {
        printf("islewatch %s\n", IW_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            /* getopt names the program argv[0] in its errors: "islewatch query: ..." */
            char prog[32];
            snprintf(prog, sizeof(prog), "islewatch %s", cmds[i].name);
            argv[1] = prog;
            return cmds[i].fn(argc - 1, argv + 1);
        }
    /* "islewatch --db PATH series": the options of a command go after it. */
    if (argv[1][0] == '-') {
        for (int a = argc - 1; a >= 2; a--)          /* the command is after the options */
            for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (strcmp(argv[a], cmds[i].name) == 0) {
                    fprintf(stderr, "islewatch: %s goes after the command: islewatch %s %s ...\n",
                            argv[1], cmds[i].name, argv[1]);
                    return 2;
                }
    }
    unknown(argv[1]);
    usage(stderr);
    return 2;
}
