/* Helpers shared by the CLI's reading commands. */
#ifndef ISLEWATCH_CLI_INT_H
#define ISLEWATCH_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum cli_format { FMT_TABLE = 0, FMT_CSV, FMT_JSON };

/* --db / --url / --format, parsed by every reading command. */
struct cli_source {
    const char *db;             /* NULL: use url */
    const char *url;            /* default http://127.0.0.1:8080 */
    enum cli_format format;
    char url_buf[512];          /* the url --config gave (cli_config_url) */
};

/* Parse "table|csv|json"; -1 when unknown. */
int cli_format_parse(const char *s);

/*
 * Fetch a JSON document: from the store at src->db (build(st, ctx, &out)) or
 * from GET src->url + path. Returns the parsed document or NULL after
 * printing what failed and what to do; *exit_code is set for that case.
 */
struct iw_store;
cJSON *cli_fetch(const struct cli_source *src, const char *path,
                 int (*build)(struct iw_store *st, void *ctx, char **out), void *ctx,
                 int *exit_code);

/* Print a JSON document to stdout (compact, one line). */
void cli_print_json(cJSON *doc);

/* ms -> "2026-11-29T10:00:00.000Z" (static buffer per call site). */
const char *cli_time(int64_t ms, char *buf, size_t len);

/* Shortest text that reads back as the same double; no exponent from 1e-12 to 1e21. */
const char *cli_num(double v, char *buf, size_t len);

/* The flag of the point at t in a query series object's "flags" ([[T,"F"],...],
 * time order), or NULL. *cur walks the list: start it at NULL and ask for
 * the points in time order. */
const char *cli_point_flag(const cJSON *series, int64_t t, const cJSON **cur);

/* s, left-aligned in a table column `width` terminal columns wide (East Asian
 * wide characters count two, so Chinese site names line up), then a space. */
void cli_col(const char *s, size_t width);

/* A CSV field, quoted when it needs to be. */
void cli_csv_field(const char *s);

/* The daemon's URL when --url is not given: $ISLEWATCH_URL, else http://127.0.0.1:8080. */
const char *cli_default_url(void);

/* --db and --url both given to a reading command: says to give one; true then (exit 2). */
bool cli_db_and_url(const char *cmd, const char *db, bool url_given);

/*
 * --config FILE of a reading command: without --url or --db, ask the daemon
 * that FILE configures, at its http.listen (as ack and tail do). 0, or 2
 * after saying on stderr what is wrong with FILE and what to do.
 */
int cli_config_source(const char *cmd, const char *file, bool url_given, struct cli_source *src);

/* Percent-encode a query-string value; false (out cut short) when it does not fit. */
bool cli_urlenc(char *out, size_t cap, const char *s);

#endif
