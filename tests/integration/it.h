/*
 * Integration-test harness: a real mosquitto on a free loopback port, a real
 * islewatchd started from the build tree, libmosquitto clients, and the CLI.
 * Every process is started here and ended here, by PID. Waits are on events
 * with deadlines, never bare sleeps.
 */
#ifndef IW_IT_H
#define IW_IT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct it_broker {
    pid_t pid;
    int port;
    int tls_port;               /* 0 unless started with it_broker_start_tls */
    char ca_file[300];
    char dir[256];              /* conf, log and persistence */
};

/* Start mosquitto on 127.0.0.1:<free port> (persistence on). 0 or -1 (message on stderr). */
int it_broker_start(struct it_broker *b);
/*
 * Same with a second listener speaking TLS on b->tls_port, with a throwaway CA
 * and server certificate made by openssl in b->dir (ca.crt is b->ca_file).
 */
int it_broker_start_tls(struct it_broker *b);
/* Start again on the same port and directory (after it_broker_kill). */
int it_broker_restart(struct it_broker *b);
void it_broker_kill(struct it_broker *b);        /* SIGKILL, wait */
void it_broker_stop(struct it_broker *b);        /* SIGTERM, wait, remove dir */
void it_broker_stop_keep(struct it_broker *b);   /* SIGTERM, wait, keep dir (restartable) */

struct it_daemon {
    pid_t pid;
    char dir[256];              /* config, data, log */
    char cfg[300];
    char log[300];
    char data[300];
    int http_port;
};

/*
 * Write a config (broker url, storage in a new temp dir, http on a free
 * port, token file "secret-token") followed by `extra` YAML (sources, rules,
 * ...; NULL for none) and start islewatchd on it. Waits until the daemon says
 * it is connected. 0 or -1. A test that sets storage options writes its own
 * "storage:" section in `extra` with "path: @DATA@".
 */
int it_daemon_start(struct it_daemon *d, const struct it_broker *b, const char *extra);
/* Start again with the same directory and config. */
int it_daemon_restart(struct it_daemon *d);
/* Add `line` (e.g. "connections: 3") to the config's broker section, stop
 * the daemon (SIGTERM) and start it again with it. 0 when it started. */
int it_daemon_set_broker(struct it_daemon *d, const char *line);
/* Replace the daemon's config from the first `key` (e.g. "sources:", the
 * start of the test's extra YAML) on with `tail`, atomically: a reload never
 * reads half a file. Asserts on failure. */
void it_daemon_rewrite_from(const struct it_daemon *d, const char *key, const char *tail);
void it_daemon_stop(struct it_daemon *d);        /* SIGTERM, wait, expect exit 0 (keeps dir) */
void it_daemon_kill9(struct it_daemon *d);
void it_daemon_cleanup(struct it_daemon *d);     /* stop as above if running, remove dir */
/* Wait until the daemon's log contains `needle` (count-th occurrence); it looks at least
 * once, so timeout 0 asks whether it is there now. */
bool it_daemon_wait_log(const struct it_daemon *d, const char *needle, int count, int timeout_ms);
/* The value of the line `sample` ("name{labels}") of the daemon's GET /metrics; -1 if absent. */
double it_metric(const struct it_daemon *d, const char *sample);
/* Send a signal to the daemon. */
void it_daemon_signal(const struct it_daemon *d, int sig);

/* Run a shell command; returns its exit status; *out (malloc'd) gets stdout when out != NULL. */
int it_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Path of a built binary ("islewatch", "islewatchd"). */
const char *it_bin(const char *name);

/* ---- MQTT clients (libmosquitto) ---- */
struct it_client;
struct it_msg {
    char *topic;
    char *payload;              /* NUL-terminated copy */
    int len;
    bool retained;
};
struct it_client *it_client_new(const struct it_broker *b, const char *id);
void it_client_free(struct it_client *c);
int it_subscribe(struct it_client *c, const char *filter, int qos);
/* Next message within timeout_ms, or NULL. Free with it_msg_free. */
struct it_msg *it_next(struct it_client *c, int timeout_ms);
void it_msg_free(struct it_msg *m);
/* Publish and wait until the broker has it (PUBACK/PUBCOMP for QoS > 0). */
int it_publish(struct it_client *c, const char *topic, const char *payload, int qos, bool retain);
/* Publish without waiting for each acknowledgement; it_flush waits for all. */
int it_publish_async(struct it_client *c, const char *topic, const char *payload, int qos);
int it_flush(struct it_client *c, int timeout_ms);

int it_free_port(void);
long long it_now_ms(void);

#endif
