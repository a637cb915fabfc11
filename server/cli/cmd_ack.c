/* SPDX-License-Identifier: Apache-2.0 */
/*
 * islewatch ack ID: acknowledge a firing alert through the daemon's HTTP API
 * (POST /api/v1/alerts/ID/ack). The ack changes state, so it needs the
 * daemon's token (http.token_file), found in this order: --token,
 * --token-file, $ISLEWATCH_TOKEN, the token_file of --config FILE,
 * /etc/islewatch/http.token. The URL: --url, http.listen of --config FILE,
 * $ISLEWATCH_URL, http://127.0.0.1:8080.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "islewatch/cli.h"
#include "islewatch/config.h"
#include "islewatch/http_client.h"
#include "islewatch/json_print.h"

#define DEFAULT_TOKEN_FILE "/etc/islewatch/http.token"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch ack ID [--by NAME] [--comment TEXT] [--url URL]\n"
            "                        [--token-file FILE | --token TOKEN] [--config FILE]\n"
            "Acknowledges the firing alert ID (its \"id\", 16 hex digits, as `islewatch alerts\n"
            "--active` and `islewatch tail` show it); the ack is recorded and republished.\n\n"
            "  --by NAME        who acknowledges (default $USER, else the login name)\n"
            "  --comment TEXT   a note kept with the ack\n"
            "  --url URL        the daemon (default: http.listen of --config, $ISLEWATCH_URL,\n"
            "                   else %s)\n"
            "  --token-file F   file whose first line is the daemon's token (http.token_file)\n"
            "  --token TOKEN    the token itself ($ISLEWATCH_TOKEN works too)\n"
            "  --config FILE    islewatchd's config: its http.listen and http.token_file\n\n"
            "Example:\n  islewatch ack 3f09a1c2b4d5e6f7 --by ops1 --comment \"crew on site\" "
            "--config /etc/islewatch/islewatch.yaml\n", IW_HTTP_DEFAULT_URL);
}

/* First line of path, trailing whitespace removed; NULL (errno set) when unreadable. */
static char *read_token(const char *path)
{
    char buf[4200];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return NULL;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    n = strlen(buf);
    while (n > 0 && strchr(" \t\r\n", buf[n - 1]) != NULL)
        buf[--n] = '\0';
    if (n == 0) {
        errno = ENODATA;
        return NULL;
    }
    return strdup(buf);
}

/*
 * Who acknowledges when --by is not given: $USER, else $LOGNAME, else the
 * name of the user running the command (cron, su and containers often set
 * neither). NULL only when none is known. The result is not owned.
 */
static const char *default_by(void)
{
    const char *by = getenv("USER");
    if (by == NULL || *by == '\0')
        by = getenv("LOGNAME");
    if (by == NULL || *by == '\0') {
        const struct passwd *pw = getpwuid(getuid());
        by = pw != NULL ? pw->pw_name : NULL;
    }
    return by != NULL && *by != '\0' ? by : NULL;
}

static char *json_body(const char *by, const char *comment)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o == NULL)
        return NULL;
    if (by != NULL)
        cJSON_AddStringToObject(o, "by", by);
    if (comment != NULL)
        cJSON_AddStringToObject(o, "comment", comment);
    s = iw_json_print(o);
    cJSON_Delete(o);
    return s;
}

int iw_cmd_ack(int argc, char **argv)
{
    static const struct option opts[] = {
        { "by", required_argument, NULL, 'b' }, { "comment", required_argument, NULL, 'm' },
        { "url", required_argument, NULL, 'u' }, { "token-file", required_argument, NULL, 'T' },
        { "token", required_argument, NULL, 't' }, { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    const char *by = default_by(), *comment = NULL, *url = NULL, *token_file = NULL;
    const char *cfg_file = NULL, *id;
    char *token = NULL, *body = NULL, *resp = NULL, urlbuf[300], path[300], msg[2048];
    struct iw_config *cfg = NULL;
    struct iw_diag diag = {0};
    size_t rlen = 0;
    int c, status = 0, rc = 3;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': by = optarg; break;
        case 'm': comment = optarg; break;
        case 'u': url = optarg; break;
        case 'T': token_file = optarg; break;
        case 't': free(token); token = strdup(optarg); break;
        case 'c': cfg_file = optarg; break;
        case 'h': usage(stdout); free(token); return 0;
        default: usage(stderr); free(token); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "islewatch ack: %s\n", optind >= argc ? "which alert? pass its ID"
                                                               : "only one ID, please");
        usage(stderr);
        free(token);
        return 2;
    }
    id = argv[optind];
    if (cfg_file != NULL && iw_config_load(cfg_file, &cfg, &diag) != IW_OK) {
        for (size_t i = 0; i < diag.n; i++)
            fprintf(stderr, "%s\n", diag.lines[i]);
        fprintf(stderr, "islewatch ack: cannot use %s (fix it, or pass --url and --token-file)\n",
                cfg_file);
        rc = 2;
        goto out;
    }

    if (url == NULL && cfg != NULL && cfg->http.listen != NULL && cfg->http.listen[0] != '\0' &&
        strcmp(cfg->http.listen, "off") != 0) {
        iw_http_listen_url(cfg->http.listen, urlbuf, sizeof(urlbuf));
        url = urlbuf;
    }
    if (url == NULL)
        url = getenv("ISLEWATCH_URL");
    if (url == NULL)
        url = IW_HTTP_DEFAULT_URL;

    if (token == NULL && token_file == NULL && getenv("ISLEWATCH_TOKEN") != NULL)
        token = strdup(getenv("ISLEWATCH_TOKEN"));
    if (token == NULL && token_file == NULL && cfg != NULL) {
        if (cfg->http.token_file == NULL) {
            fprintf(stderr, "islewatch ack: %s sets no http.token_file, so that daemon refuses "
                    "every change (401): set http.token_file there, reload or restart it, and "
                    "run this again\n", cfg_file);
            rc = 2;
            goto out;
        }
        token_file = cfg->http.token_file;
    }
    if (token == NULL && token_file != NULL && (token = read_token(token_file)) == NULL) {
        fprintf(stderr, "islewatch ack: cannot read the token from %s: %s (the file the daemon's "
                "http.token_file names; run as a user that may read it)\n", token_file,
                errno == ENODATA ? "its first line is empty" : strerror(errno));
        rc = 2;
        goto out;
    }
    if (token == NULL)
        token = read_token(DEFAULT_TOKEN_FILE);
    if (token == NULL) {
        fprintf(stderr, "islewatch ack: acknowledging needs the daemon's token: pass --token-file "
                "FILE (its http.token_file), --config FILE or set ISLEWATCH_TOKEN\n");
        rc = 2;
        goto out;
    }

    body = json_body(by, comment);
    snprintf(path, sizeof(path), "/api/v1/alerts/%s/ack", id);
    if (body == NULL || strpbrk(id, "/?# %") != NULL) {
        fprintf(stderr, "islewatch ack: \"%s\" is not an alert id (16 hex digits)\n", id);
        rc = 2;
        goto out;
    }
    if (iw_http_request(url, "POST", path, token, body, &resp, &rlen, &status, &diag) != IW_OK) {
        fprintf(stderr, "islewatch ack: %s\n", iw_diag_first(&diag));
        rc = 3;
        goto out;
    }
    switch (status) {
    case 200:
        printf("acknowledged %s%s%s\n", id, by ? " by " : "", by ? by : "");
        rc = 0;
        break;
    case 404:                      /* the daemon's hint names its API; name the command too */
        fprintf(stderr, "islewatch ack: %s\n  `islewatch alerts --active --url %s` lists the "
                "firing alerts and their ids\n", iw_http_error_text(resp, msg, sizeof(msg)), url);
        rc = 1;
        break;
    case 401:
        fprintf(stderr, "islewatch ack: %s refused the token: %s\n", url,
                iw_http_error_text(resp, msg, sizeof(msg)));
        rc = 2;
        break;
    default:
        fprintf(stderr, "islewatch ack: %s answered %d: %s\n", url, status,
                iw_http_error_text(resp, msg, sizeof(msg)));
        rc = status >= 400 && status < 500 ? 2 : 3;
        break;
    }
out:
    iw_diag_fini(&diag);
    iw_config_free(cfg);
    free(token);
    free(body);
    free(resp);
    return rc;
}
