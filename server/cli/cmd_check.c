/*
 * `islewatch check FILE` (SPEC §3): validate a config without starting
 * anything. Every error is printed on stderr as one "FILE:LINE:COLUMN: error: ..."
 * line and nothing else, so a tool can count or parse them; a valid file
 * prints "FILE: OK (S sources, R rules, D devices)" on stdout.
 * Exit status: 0 valid, 1 invalid or unreadable (SPEC §3: 1 when not valid),
 * 2 usage error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "islewatch/cli.h"
#include "islewatch/config.h"
#include "islewatch/err.h"

static void check_usage(FILE *out)
{
    fprintf(out,
            "Usage: islewatch check [--skip-files] FILE\n"
            "\n"
            "Validate an islewatch configuration file without starting anything.\n"
            "Every problem is reported as FILE:LINE:COLUMN: error: MESSAGE on stderr.\n"
            "The files islewatchd reads (broker.password_file, broker.tls files,\n"
            "http.token_file) must be readable here, as islewatchd would refuse them.\n"
            "\n"
            "  --skip-files  do not look at those files (linting where the secrets are not)\n"
            "\n"
            "Exit status: 0 valid, 1 invalid or unreadable, 2 usage error.\n"
            "\n"
            "Example:\n"
            "  $ islewatch check config/islewatch.yaml\n"
            "  config/islewatch.yaml: OK (4 sources, 8 rules, 14 devices)\n"
            "  $ islewatch check bad.yaml\n"
            "  bad.yaml:41:12: error: rule \"nh3n\": unknown key \"abvoe\" (did you mean \"above\"?)\n");
}

int iw_cmd_check(int argc, char **argv)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    const char *file = NULL;
    bool files = true;
    size_t n_lines;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            check_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--skip-files") == 0) {
            files = false;
            continue;
        }
        if (strcmp(argv[i], "--") == 0 && i + 1 < argc && file == NULL) {
            file = argv[++i];
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "islewatch check: unknown option '%s' (try 'islewatch check --help')\n",
                    argv[i]);
            return 2;
        }
        if (file != NULL) {
            fprintf(stderr, "islewatch check: one FILE at a time, got '%s' and '%s'\n", file,
                    argv[i]);
            return 2;
        }
        file = argv[i];
    }
    if (file == NULL) {
        fprintf(stderr, "islewatch check: missing FILE (try 'islewatch check --help')\n");
        return 2;
    }

    iw_config_check_files(files);
    rc = iw_config_load(file, &cfg, &diag);
    iw_config_check_files(false);
    n_lines = diag.n;
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.lines[i]);
    iw_diag_fini(&diag);
    if (rc == IW_OK) {
        printf("%s: OK (%zu source%s, %zu rule%s, %zu device%s)\n", file,
               cfg->n_sources, cfg->n_sources == 1 ? "" : "s",
               cfg->n_rules, cfg->n_rules == 1 ? "" : "s",
               cfg->n_devices, cfg->n_devices == 1 ? "" : "s");
        iw_config_free(cfg);
        return 0;
    }
    if (n_lines == 0)
        fprintf(stderr, "%s: error: %s\n", file, iw_strerror(rc));
    return 1;
}
