/* SPDX-License-Identifier: Apache-2.0 */
/*
 * islewatch tail: the live alert stream, one line per alert:
 *
 *   2026-11-29T10:04:00.000Z  major     firing    hot  dongtan/w01  nh3_n=2 mg/L  message
 *
 * From the broker (libmosquitto; the default), or with --url from the
 * daemon's Server-Sent Events stream (resuming with Last-Event-ID after a
 * disconnect). Colour only when stdout is a terminal and NO_COLOR is unset or
 * empty (no-color.org), unless --color or --no-color says otherwise.
 *
 * Retained current-state messages (alerts.active_topic) are not alerts of
 * their own: they are skipped, except that --active prints the ones the
 * broker holds when tail connects (what is firing now), marked "active".
 * Ctrl-C (or --count N lines) ends it with exit status 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#include "islewatch/cli.h"
#include "islewatch/config.h"
#include "islewatch/http_client.h"
#include "islewatch/json_print.h"
#include "islewatch/template.h"
#include "islewatch/topic.h"

#define DEFAULT_BROKER "mqtt://127.0.0.1:1883"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct tail {
    /* options */
    int min_sev;                /* -1: all */
    const char *rule;           /* glob, NULL: all */
    const char *broker;
    const char *url;
    char topic[512];            /* subscription filter for alerts */
    char active_filter[512];    /* filter matching alerts.active_topic */
    bool show_active, color, json;
    bool zh;                    /* message_zh where the rule has one */
    bool subscribe_active;      /* active_filter needs its own subscription */
    int sub_mid;                /* of the alert-topic SUBSCRIBE */
    int refused;                /* CONNACK code that ends tail (credentials, id): 0 none */
    bool sub_failed;            /* the SUBSCRIBE could not be sent: ends tail */
    bool up;                    /* a CONNACK accepted this connection (backoff restarts) */
    bool ever_up;               /* one ever did: a failure before ends tail (exit 3) */
    long count;                 /* 0: forever */
    /* from --config */
    const char *username;
    char *password;
    const char *ca_file, *cert_file, *key_file;
    /* state */
    long printed;
    bool subscribed_note;
    char last_id[32];           /* SSE resume point */
    /* The latest alert messages printed, by (seq, id): after a kill -9 the daemon may
     * publish its last message again (ARCHITECTURE.md, "Alerts across kill -9"), and
     * QoS 1 may deliver one twice; a line each would read as two alerts. */
    struct { double seq; char id[24]; } seen[256];
    unsigned n_seen;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch tail [--severity S] [--rule GLOB] [--count N] [--active]\n"
            "                      [--broker URL] [--topic FILTER] [--config FILE]\n"
            "                      [--url URL] [--color | --no-color] [--json] [--lang zh|en]\n"
            "Prints each alert as it is published, one line each:\n"
            "  time  severity  status  rule  site/device  metric=value  message\n\n"
            "  --severity S    only alerts of severity S or higher (info, warning, major, critical)\n"
            "  --rule GLOB     only alerts of matching rules (e.g. 'camera-*')\n"
            "  --broker URL    MQTT broker (default %s; mqtts:// for TLS)\n"
            "  --topic FILTER  alert topic filter (default from alerts.topic, else alerts/#)\n"
            "  --config FILE   take the broker, its credentials and the alert topics from\n"
            "                  islewatchd's config\n"
            "  --url URL       read the daemon's SSE stream (e.g. http://127.0.0.1:8080)\n"
            "                  instead of the broker\n"
            "  --active        first print what is firing now, marked \"active\"\n"
            "  --count N       exit after N lines\n"
            "  --json          print each alert's JSON instead of a line\n"
            "  --lang zh|en    the message in Chinese or English, where the rule gives both\n"
            "                  (default: zh when LC_ALL, LC_MESSAGES or LANG starts with zh)\n"
            "  --color, --no-color  colour always or never (default: on a terminal, unless\n"
            "                  NO_COLOR is set to a non-empty value)\n\n"
            "A lost connection is retried; a broker that refuses the credentials is not.\n"
            "Exit status: 0 stopped (Ctrl-C, --count), 2 usage error, 3 the broker or the\n"
            "daemon cannot be reached, or refused the connection.\n\n"
            "Example:\n  islewatch tail --severity major --config /etc/islewatch/islewatch.yaml\n",
            DEFAULT_BROKER);
}

/* ======================================================================== */
/* One line per alert                                                        */
/* ======================================================================== */

static const char *str(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? s : "";
}

static const char *sev_colour(const char *sev)
{
    switch (iw_severity_parse(sev)) {
    case IW_SEV_INFO:     return "\033[36m";
    case IW_SEV_WARNING:  return "\033[33m";
    case IW_SEV_MAJOR:    return "\033[1;91m";
    case IW_SEV_CRITICAL: return "\033[1;97;41m";
    default:              return "";
    }
}

/* True when alert a (seq and id) came before; else it is remembered. */
static bool already_seen(struct tail *t, const cJSON *a)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(a, "seq");
    const char *id = str(a, "id");
    unsigned n = t->n_seen < IW_ARRAY_LEN(t->seen) ? t->n_seen : (unsigned)IW_ARRAY_LEN(t->seen);

    if (!cJSON_IsNumber(seq) || id[0] == '\0')
        return false;
    for (unsigned i = 0; i < n; i++)
        if (t->seen[i].seq == seq->valuedouble && strcmp(t->seen[i].id, id) == 0)
            return true;
    unsigned slot = t->n_seen++ % (unsigned)IW_ARRAY_LEN(t->seen);
    t->seen[slot].seq = seq->valuedouble;
    snprintf(t->seen[slot].id, sizeof(t->seen[slot].id), "%s", id);
    return false;
}

/* Print one alert (JSON text) if it passes the filters and is no repeat of one
 * printed; true when printed. */
static bool print_alert(struct tail *t, const char *json, size_t len, bool active_state)
{
    cJSON *a = cJSON_ParseWithLength(json, len);
    const char *sev, *status, *rule, *reset = t->color ? "\033[0m" : "";
    const cJSON *v, *ack;
    char val[128] = "", num[32];
    bool shown = false;

    if (!cJSON_IsObject(a) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(a, "rule"))) {
        fprintf(stderr, "islewatch tail: skipped a message that is not an islewatch alert\n");
        cJSON_Delete(a);
        return false;
    }
    if (!active_state && already_seen(t, a))
        goto out;
    sev = str(a, "severity");
    status = active_state ? "active" : str(a, "status");
    rule = str(a, "rule");
    if ((t->min_sev >= 0 && iw_severity_parse(sev) < t->min_sev) ||
        (t->rule != NULL && !iw_glob_match(t->rule, rule)))
        goto out;
    shown = true;
    if (t->json) {
        printf("%.*s\n", (int)len, json);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(a, "value");
    if (cJSON_IsNumber(v))
        snprintf(val, sizeof(val), "%s%s%s%s%s", str(a, "metric"), *str(a, "metric") ? "=" : "",
                 iw_template_num(v->valuedouble, num, sizeof(num)), *str(a, "unit") ? " " : "",
                 str(a, "unit"));
    else
        snprintf(val, sizeof(val), "%s", str(a, "metric"));
    ack = cJSON_GetObjectItemCaseSensitive(a, "ack");
    printf("%s%s%s  %s%-8s%s  %s%-8s%s  %s%s%s  %s/%s  %s  %s%s",
           t->color ? "\033[2m" : "", str(a, "ts"), reset,
           t->color ? sev_colour(sev) : "", sev, reset,
           t->color ? (strcmp(status, "resolved") == 0 ? "\033[32m" : "\033[31m") : "",
           status, reset,
           t->color ? "\033[1m" : "", rule, reset,
           str(a, "site"), str(a, "device"), val,
           t->zh && *str(a, "message_zh") ? str(a, "message_zh") : str(a, "message"),
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "late")) ? "  (late)" : "");
    if (cJSON_IsObject(ack))
        printf("  (acked%s%s)", *str(ack, "by") ? " by " : "", str(ack, "by"));
    /* Only --url --active shows one (the daemon's list holds what a silence keeps off
     * the broker): say so, as `islewatch alerts` does, or it reads as paged. */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "silenced")))
        printf("  (silenced)");
    printf("  [%s]\n", str(a, "id"));
out:
    fflush(stdout);
    cJSON_Delete(a);
    if (shown && t->count > 0 && ++t->printed >= t->count)
        stop_flag = 1;
    return shown;
}

/* ======================================================================== */
/* From the broker                                                           */
/* ======================================================================== */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct tail *t = obj;
    if (rc != 0) {
        /* "Server unavailable" (3) may pass; a refused protocol, client id,
         * password or authorisation is refused the same way at every retry. */
        if (rc != 3) {
            t->refused = rc;
            stop_flag = 1;
            return;
        }
        fprintf(stderr, "islewatch tail: the broker refused the connection: %s\n",
                mosquitto_connack_string(rc));
        return;
    }
    t->up = t->ever_up = true;
    if (mosquitto_subscribe(m, &t->sub_mid, t->topic, 1) != MOSQ_ERR_SUCCESS ||
        (t->subscribe_active &&
         mosquitto_subscribe(m, NULL, t->active_filter, 1) != MOSQ_ERR_SUCCESS)) {
        t->sub_failed = true;           /* the same at every reconnect: do not wait for ever */
        stop_flag = 1;
    }
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count,
                         const int *granted)
{
    struct tail *t = obj;
    (void)m;
    if (mid != t->sub_mid)
        return;
    if (qos_count < 1 || granted[0] > 2) {
        fprintf(stderr, "islewatch tail: the broker refused the subscription to %s (check its "
                "ACL for this user)\n", t->topic);
        stop_flag = 1;
        return;
    }
    /* Tests and scripts wait for this line: from here on no alert is missed. */
    if (!t->subscribed_note)
        fprintf(stderr, "islewatch tail: subscribed to %s on %s (Ctrl-C to stop)\n", t->topic,
                t->broker);
    t->subscribed_note = true;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct tail *t = obj;
    bool is_active = false;

    (void)m;
    if (mosquitto_topic_matches_sub(t->active_filter, msg->topic, &is_active) == MOSQ_ERR_SUCCESS &&
        is_active) {
        /* Current state, not an event: only the retained snapshot at start, on request. */
        if (t->show_active && msg->retain && msg->payloadlen > 0)
            (void)print_alert(t, msg->payload, (size_t)msg->payloadlen, true);
        return;
    }
    if (msg->payloadlen > 0)
        (void)print_alert(t, msg->payload, (size_t)msg->payloadlen, false);
}

struct broker_url {
    char host[256];
    int port;
    bool tls;
};

static bool parse_broker(const char *url, struct broker_url *b)
{
    const char *p = strstr(url, "://"), *colon;
    size_t n;

    memset(b, 0, sizeof(*b));
    if (p == NULL)
        return false;
    if (strncmp(url, "mqtts://", 8) == 0 || strncmp(url, "ssl://", 6) == 0)
        b->tls = true;
    else if (strncmp(url, "mqtt://", 7) != 0 && strncmp(url, "tcp://", 6) != 0)
        return false;
    p += 3;
    b->port = b->tls ? 8883 : 1883;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL || (size_t)(close - p - 1) >= sizeof(b->host))
            return false;
        memcpy(b->host, p + 1, (size_t)(close - p - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strchr(p, ':');
        n = colon ? (size_t)(colon - p) : strcspn(p, "/");
        if (n == 0 || n >= sizeof(b->host))
            return false;
        memcpy(b->host, p, n);
    }
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (port < 1 || port > 65535 || (*end != '\0' && *end != '/'))
            return false;
        b->port = (int)port;
    }
    return b->host[0] != '\0';
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Sleep up to ms, in short naps, until Ctrl-C. */
static void wait_or_stop(int ms)
{
    for (int waited = 0; waited < ms && !stop_flag; waited += 100)
        nap_ms(100);
}


/* The first connection failed (mosquitto_connect, or over TLS the handshake
 * in the first loop): say why and what to check. */
static void cannot_connect(const struct tail *t, const struct broker_url *b, int rc)
{
    fprintf(stderr, "islewatch tail: cannot connect to the broker %s: %s%s\n", t->broker,
            rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
            b->tls && rc != MOSQ_ERR_ERRNO
                ? " (check the broker's certificate against tls.ca_file, and tls.cert_file "
                  "and key_file if it asks for a client certificate)"
                : " (is it running? pass --broker URL, or --config FILE to use islewatchd's "
                  "broker)");
}

static int tail_broker(struct tail *t)
{
    struct broker_url b;
    struct mosquitto *m;
    char id[64];
    int rc, backoff = 500;

    if (!parse_broker(t->broker, &b)) {
        fprintf(stderr, "islewatch tail: --broker \"%s\" is not mqtt://HOST[:PORT] or "
                "mqtts://HOST[:PORT]\n", t->broker);
        return 2;
    }
    mosquitto_lib_init();
    snprintf(id, sizeof(id), "islewatch-tail-%ld", (long)getpid());
    m = mosquitto_new(id, true, t);
    if (m == NULL) {
        fprintf(stderr, "islewatch tail: cannot create an MQTT client (out of memory)\n");
        mosquitto_lib_cleanup();
        return 3;
    }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    if (t->username != NULL)
        (void)mosquitto_username_pw_set(m, t->username, t->password);
    if (b.tls && (rc = mosquitto_tls_set(m, t->ca_file, t->ca_file ? NULL : "/etc/ssl/certs",
                                         t->cert_file, t->key_file, NULL)) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "islewatch tail: TLS set-up for %s failed: %s (check tls.ca_file, "
                "cert_file and key_file)\n", t->broker, mosquitto_strerror(rc));
        rc = 2;
        goto out;
    }
    if ((rc = mosquitto_connect(m, b.host, b.port, 30)) != MOSQ_ERR_SUCCESS) {
        cannot_connect(t, &b, rc);
        rc = 3;
        goto out;
    }
    while (!stop_flag) {
        rc = mosquitto_loop(m, 250, 1);
        if (rc == MOSQ_ERR_SUCCESS || stop_flag) {
            if (t->up)
                backoff = 500;
            continue;
        }
        /* The first connection failed before its CONNACK: over TLS the
         * handshake happens here, and an unknown CA or a certificate the
         * broker refuses fails the same way at every retry. */
        if (!t->ever_up) {
            cannot_connect(t, &b, rc);
            rc = 3;
            goto out;
        }
        fprintf(stderr, "islewatch tail: connection to %s lost (%s); reconnecting\n", t->broker,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        t->subscribed_note = false;
        t->up = false;
        do {
            wait_or_stop(backoff);
            backoff = backoff < 16000 ? backoff * 2 : 30000;
        } while (!stop_flag && mosquitto_reconnect(m) != MOSQ_ERR_SUCCESS);
    }
    rc = 0;
    if (t->refused != 0) {
        fprintf(stderr, "islewatch tail: the broker %s refused the connection: %s (pass --config "
                "FILE to use islewatchd's broker.username and password_file, or check the "
                "broker's password file and ACL)\n", t->broker, mosquitto_connack_string(t->refused));
        rc = 3;
    } else if (t->sub_failed) {
        fprintf(stderr, "islewatch tail: cannot subscribe to %s%s%s (check the filter, or "
                "alerts.topic and alerts.active_topic in the config)\n", t->topic,
                t->subscribe_active ? " and " : "", t->subscribe_active ? t->active_filter : "");
        rc = 3;
    }
    mosquitto_disconnect(m);
out:
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return rc;
}

/* ======================================================================== */
/* From the daemon (Server-Sent Events)                                      */
/* ======================================================================== */

struct sse_state {
    struct tail *t;
    char *data;
    size_t len, cap;
    char event[32], id[32];
    bool connected;
};

static int sse_line(void *ctx, const char *line, size_t len)
{
    struct sse_state *s = ctx;
    const char *v;
    size_t vl;

    if (len == 0) {                               /* end of an event */
        if (s->len > 0 && (s->event[0] == '\0' || strcmp(s->event, "alert") == 0))
            (void)print_alert(s->t, s->data, s->len, false);
        if (s->id[0] != '\0')
            snprintf(s->t->last_id, sizeof(s->t->last_id), "%s", s->id);
        s->len = 0;
        s->event[0] = s->id[0] = '\0';
        return stop_flag;
    }
    if (line[0] == ':') {
        if (!s->connected)
            fprintf(stderr, "islewatch tail: streaming alerts from %s (Ctrl-C to stop)\n",
                    s->t->url);
        s->connected = true;
        return stop_flag;
    }
    v = memchr(line, ':', len);
    vl = v ? len - (size_t)(v - line) - 1 : 0;
    if (v != NULL && vl > 0 && v[1] == ' ') {
        v++;
        vl--;
    }
    if (v != NULL && (size_t)(v - line) >= 4 && strncmp(line, "data:", 5) == 0) {
        if (s->len + vl + 2 > s->cap) {
            size_t cap = (s->len + vl + 2) * 2;
            char *nd = realloc(s->data, cap);
            if (nd == NULL)
                return 1;
            s->data = nd;
            s->cap = cap;
        }
        if (s->len > 0)
            s->data[s->len++] = '\n';
        memcpy(s->data + s->len, v + 1, vl);
        s->len += vl;
    } else if (v != NULL && strncmp(line, "event:", 6) == 0) {
        snprintf(s->event, sizeof(s->event), "%.*s", (int)vl, v + 1);
    } else if (v != NULL && strncmp(line, "id:", 3) == 0) {
        snprintf(s->id, sizeof(s->id), "%.*s", (int)vl, v + 1);
    }
    return stop_flag;
}

static int print_active_from_daemon(struct tail *t)
{
    struct iw_diag diag = {0};
    char *body = NULL;
    size_t len = 0;
    int status = 0;
    cJSON *arr, *a;

    int rc = iw_http_request(t->url, "GET", "/api/v1/alerts?active=1", NULL, NULL, &body, &len,
                             &status, &diag);
    if (rc != IW_OK || status != 200) {
        fprintf(stderr, "islewatch tail: %s\n", diag.n ? iw_diag_first(&diag) : body ? body : "");
        iw_diag_fini(&diag);
        free(body);
        return rc == IW_E_INVAL ? 2 : 3;        /* a bad --url is a usage error */
    }
    arr = cJSON_ParseWithLength(body, len);
    cJSON_ArrayForEach(a, arr) {
        char *one = iw_json_print(a);
        if (one != NULL && !stop_flag)
            (void)print_alert(t, one, strlen(one), true);
        free(one);
    }
    cJSON_Delete(arr);
    free(body);
    return 0;
}

static int tail_sse(struct tail *t)
{
    struct sse_state s = { .t = t };
    int backoff = 500, rc = 0;
    bool ever = false;

    if (t->show_active && (rc = print_active_from_daemon(t)) != 0)
        return rc;
    while (!stop_flag) {
        struct iw_diag diag = {0};
        char hdr[64];
        int status = 0;

        snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", t->last_id);
        s.connected = false;
        rc = iw_http_stream_lines(t->url, "/api/v1/alerts/stream", NULL,
                                  t->last_id[0] ? hdr : NULL, sse_line, &s, &stop_flag, 45000,
                                  &status, &diag);
        ever |= s.connected;
        if (stop_flag)
            break;
        if (!ever) {
            fprintf(stderr, "islewatch tail: %s\n", rc != IW_OK ? iw_diag_first(&diag)
                    : "the daemon ended the stream at once");
            iw_diag_fini(&diag);
            free(s.data);
            return rc == IW_E_INVAL ? 2 : 3;    /* a bad --url is a usage error */
        }
        fprintf(stderr, "islewatch tail: stream from %s ended%s%s; reconnecting\n", t->url,
                rc != IW_OK ? ": " : "", rc != IW_OK ? iw_diag_first(&diag) : "");
        iw_diag_fini(&diag);
        backoff = s.connected ? 500 : (backoff < 16000 ? backoff * 2 : 30000);
        wait_or_stop(backoff);
    }
    free(s.data);
    return 0;
}

/* ======================================================================== */
/* Options                                                                   */
/* ======================================================================== */

/* "alerts/{severity}/{rule}/{site}/{device}" -> "alerts/+/+/+/+". */
static void filter_from_template(const char *tmpl, char *out, size_t len)
{
    size_t o = 0;
    while (*tmpl && o + 2 < len) {
        size_t n = strcspn(tmpl, "/");
        if (memchr(tmpl, '{', n) != NULL) {
            out[o++] = '+';
        } else {
            size_t take = n < len - o - 2 ? n : len - o - 2;
            memcpy(out + o, tmpl, take);
            o += take;
        }
        tmpl += n;
        if (*tmpl == '/') {
            out[o++] = '/';
            tmpl++;
        }
    }
    out[o] = '\0';
}

/* Does `filter` already deliver the messages of `other` (a filter)? */
static bool covers(const char *filter, const char *other)
{
    char sample[512];
    size_t o = 0;
    bool res = false;

    for (const char *p = other; *p && o + 2 < sizeof(sample); p++)
        sample[o++] = (*p == '+' || *p == '#') ? 'x' : *p;
    sample[o] = '\0';
    return mosquitto_topic_matches_sub(filter, sample, &res) == MOSQ_ERR_SUCCESS && res;
}

static char *read_first_line(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/* The first of LC_ALL, LC_MESSAGES, LANG that is set decides, as for gettext. */
static bool locale_is_zh(void)
{
    static const char *const vars[] = { "LC_ALL", "LC_MESSAGES", "LANG" };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && *v != '\0')
            return strncmp(v, "zh", 2) == 0;
    }
    return false;
}

int iw_cmd_tail(int argc, char **argv)
{
    static const struct option opts[] = {
        { "severity", required_argument, NULL, 's' }, { "rule", required_argument, NULL, 'r' },
        { "broker", required_argument, NULL, 'b' }, { "topic", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'c' }, { "url", required_argument, NULL, 'u' },
        { "count", required_argument, NULL, 'n' }, { "active", no_argument, NULL, 'A' },
        { "color", no_argument, NULL, 'C' }, { "colour", no_argument, NULL, 'C' },
        { "no-color", no_argument, NULL, 'N' }, { "no-colour", no_argument, NULL, 'N' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
        { "lang", required_argument, NULL, 'L' }, { NULL, 0, NULL, 0 },
    };
    struct tail t = { .min_sev = -1, .zh = locale_is_zh() };
    struct iw_config *cfg = NULL;
    const char *cfg_file = NULL, *topic = NULL;
    int colour = -1, c, rc;
    struct sigaction sa;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if ((t.min_sev = iw_severity_parse(optarg)) < 0) {
                fprintf(stderr, "islewatch tail: --severity %s: use info, warning, major or "
                        "critical\n", optarg);
                return 2;
            }
            break;
        case 'r': t.rule = optarg; break;
        case 'b': t.broker = optarg; break;
        case 't': topic = optarg; break;
        case 'c': cfg_file = optarg; break;
        case 'u': t.url = optarg; break;
        case 'n': {
            char *end;
            t.count = strtol(optarg, &end, 10);
            if (*end != '\0' || t.count <= 0) {
                fprintf(stderr, "islewatch tail: --count %s: use a positive number\n", optarg);
                return 2;
            }
            break;
        }
        case 'A': t.show_active = true; break;
        case 'C': colour = 1; break;
        case 'N': colour = 0; break;
        case 'j': t.json = true; break;
        case 'L':
            if (strcmp(optarg, "zh") != 0 && strcmp(optarg, "en") != 0) {
                fprintf(stderr, "islewatch tail: --lang %s: use zh or en\n", optarg);
                return 2;
            }
            t.zh = optarg[0] == 'z';
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "islewatch tail: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    snprintf(t.topic, sizeof(t.topic), "alerts/#");
    snprintf(t.active_filter, sizeof(t.active_filter), "alerts/active/#");
    if (cfg_file != NULL) {
        struct iw_diag diag = {0};
        if (iw_config_load(cfg_file, &cfg, &diag) != IW_OK) {
            for (size_t i = 0; i < diag.n; i++)
                fprintf(stderr, "%s\n", diag.lines[i]);
            fprintf(stderr, "islewatch tail: cannot use %s (fix it, or pass --broker)\n",
                    cfg_file);
            iw_diag_fini(&diag);
            return 2;
        }
        if (t.broker == NULL)
            t.broker = cfg->broker.url;
        t.username = cfg->broker.username;
        if (cfg->broker.password_file != NULL &&
            (t.password = read_first_line(cfg->broker.password_file)) == NULL)
            fprintf(stderr, "islewatch tail: cannot read broker.password_file %s; connecting "
                    "without a password\n", cfg->broker.password_file);
        t.ca_file = cfg->broker.tls_ca_file;
        t.cert_file = cfg->broker.tls_cert_file;
        t.key_file = cfg->broker.tls_key_file;
        filter_from_template(cfg->alerts.topic, t.topic, sizeof(t.topic));
        filter_from_template(cfg->alerts.active_topic, t.active_filter, sizeof(t.active_filter));
    }
    if (t.broker == NULL)
        t.broker = DEFAULT_BROKER;
    if (topic != NULL && t.url != NULL) {
        fprintf(stderr, "islewatch tail: --topic is a broker filter; with --url the daemon's "
                "stream has every alert (filter with --severity and --rule)\n");
        return 2;
    }
    if (topic != NULL && (topic[0] == '\0' || strlen(topic) >= sizeof(t.topic)
                          || mosquitto_sub_topic_check(topic) != MOSQ_ERR_SUCCESS)) {
        fprintf(stderr, "islewatch tail: --topic \"%s\" is not an MQTT topic filter (# only as "
                "the last level, + and # only as whole levels; e.g. alerts/critical/#)\n", topic);
        return 2;
    }
    if (topic != NULL)
        snprintf(t.topic, sizeof(t.topic), "%s", topic);
    t.subscribe_active = t.show_active && !covers(t.topic, t.active_filter);
    /* no-color.org: NO_COLOR set to a non-empty value turns colour off; empty is unset. */
    const char *no_color = getenv("NO_COLOR");
    t.color = colour >= 0 ? colour == 1
                          : (isatty(STDOUT_FILENO) && (no_color == NULL || no_color[0] == '\0'));

    /* No SA_RESTART: Ctrl-C must interrupt a blocking wait at once. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    stop_flag = 0;

    rc = t.url != NULL ? tail_sse(&t) : tail_broker(&t);
    free(t.password);
    iw_config_free(cfg);
    return rc;
}
