/* Helpers shared by the CLI's reading commands. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/config.h"
#include "islewatch/err.h"
#include "islewatch/http_client.h"
#include "islewatch/json_print.h"
#include "islewatch/store.h"
#include "../report_int.h"
#include "cli_int.h"

int cli_format_parse(const char *s)
{
    if (strcmp(s, "table") == 0) return FMT_TABLE;
    if (strcmp(s, "csv") == 0) return FMT_CSV;
    if (strcmp(s, "json") == 0) return FMT_JSON;
    return -1;
}

cJSON *cli_fetch(const struct cli_source *src, const char *path,
                 int (*build)(struct iw_store *st, void *ctx, char **out), void *ctx,
                 int *exit_code)
{
    struct iw_diag diag = {0};
    char *text = NULL;
    cJSON *doc;

    *exit_code = 0;
    if (src->db != NULL) {
        struct iw_store *st;
        struct iw_store_opts o = { .path = src->db, .read_only = true };
        if (iw_store_open(&o, &st, &diag) != IW_OK) {
            fprintf(stderr, "islewatch: %s\n", iw_diag_first(&diag));
            iw_diag_fini(&diag);
            *exit_code = 3;
            return NULL;
        }
        int rc = build(st, ctx, &text);
        iw_store_close(st);
        if (rc != IW_OK) {
            fprintf(stderr, "islewatch: reading %s failed: %s\n", src->db, iw_strerror(rc));
            *exit_code = rc == IW_E_INVAL ? 2 : 3;
            return NULL;
        }
    } else {
        size_t len = 0;
        int status = 0;
        int rc = iw_http_request(src->url, "GET", path, NULL, NULL, &text, &len, &status, &diag);
        if (rc != IW_OK) {
            fprintf(stderr, "islewatch: %s; or read a database directly with --db PATH\n",
                    iw_diag_first(&diag));
            iw_diag_fini(&diag);
            *exit_code = rc == IW_E_INVAL ? 2 : 3;    /* a bad --url is a usage error */
            return NULL;
        }
        if (status != 200) {
            char msg[1024];
            fprintf(stderr, "islewatch: %s%s answered %d: %s\n", src->url, path, status,
                    iw_http_error_text(text, msg, sizeof(msg)));
            free(text);
            *exit_code = status >= 400 && status < 500 ? 2 : 3;
            return NULL;
        }
    }
    doc = cJSON_Parse(text ? text : "");
    free(text);
    if (doc == NULL) {
        fprintf(stderr, "islewatch: the answer was not JSON\n");
        *exit_code = 3;
    }
    return doc;
}

void cli_print_json(cJSON *doc)
{
    char *s = iw_json_print(doc);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

const char *cli_time(int64_t ms, char *buf, size_t len)
{
    return iw_rfc3339_format(ms, buf, len);
}

void cli_col(const char *s, size_t width)
{
    size_t w = iw__rp_display_width(s);
    fputs(s, stdout);
    for (; w < width; w++)
        fputc(' ', stdout);
    fputc(' ', stdout);
}

bool cli_db_and_url(const char *cmd, const char *db, bool url_given)
{
    if (db == NULL || !url_given)
        return false;
    fprintf(stderr, "islewatch %s: --db and --url both given; give one: --db PATH reads the "
            "database directly, --url URL asks the daemon\n", cmd);
    return true;
}

void cli_csv_field(const char *s)
{
    if (strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, stdout);
        return;
    }
    fputc('"', stdout);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', stdout);
        fputc(*s, stdout);
    }
    fputc('"', stdout);
}

bool cli_urlenc(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == '*') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return *s == '\0';
}

const char *cli_point_flag(const cJSON *series, int64_t t, const cJSON **cur)
{
    const cJSON *f = *cur ? *cur : cJSON_GetObjectItemCaseSensitive(series, "flags");

    f = *cur ? f : (cJSON_IsArray(f) ? f->child : NULL);
    while (f != NULL && (int64_t)cJSON_GetNumberValue(cJSON_GetArrayItem(f, 0)) < t)
        f = f->next;
    *cur = f;
    if (f == NULL || (int64_t)cJSON_GetNumberValue(cJSON_GetArrayItem(f, 0)) != t)
        return NULL;
    return cJSON_GetStringValue(cJSON_GetArrayItem(f, 1));
}

const char *cli_num(double v, char *buf, size_t len)
{
    double a = fabs(v);

    (void)iw_num_shortest(v, buf, len);
    /* People read these: an Hg limit is 0.00005, not 5e-05. Write the fewest
     * decimals that read back as v, for the range readings live in. */
    if (strchr(buf, 'e') != NULL && a >= 1e-12 && a < 1e21) {
        char plain[64];
        for (int dec = 0; dec <= 30; dec++) {
            snprintf(plain, sizeof(plain), "%.*f", dec, v);
            if (strtod(plain, NULL) == v) {
                if (strlen(plain) < len)
                    memcpy(buf, plain, strlen(plain) + 1);
                break;
            }
        }
    }
    return buf;
}

int cli_config_source(const char *cmd, const char *file, bool url_given, struct cli_source *src)
{
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    int rc = 0;

    if (file == NULL || url_given || src->db != NULL)
        return 0;
    if (iw_config_load(file, &cfg, &diag) != IW_OK) {
        for (size_t i = 0; i < diag.n; i++)
            fprintf(stderr, "%s\n", diag.lines[i]);
        fprintf(stderr, "islewatch %s: cannot use %s (fix it, or pass --url URL or --db PATH)\n",
                cmd, file);
        iw_diag_fini(&diag);
        return 2;
    }
    if (cfg->http.listen == NULL || cfg->http.listen[0] == '\0'
        || strcmp(cfg->http.listen, "off") == 0) {
        fprintf(stderr, "islewatch %s: %s turns islewatchd's HTTP API off (http.listen), so "
                "there is no daemon to ask; read its database with --db %s\n", cmd, file,
                cfg->storage.path);
        rc = 2;
    } else {
        iw_http_listen_url(cfg->http.listen, src->url_buf, sizeof(src->url_buf));
        src->url = src->url_buf;
    }
    iw_config_free(cfg);
    return rc;
}

const char *cli_default_url(void)
{
    const char *u = getenv("ISLEWATCH_URL");
    return u != NULL && *u != '\0' ? u : IW_HTTP_DEFAULT_URL;
}
