/* Integration-test harness: see it.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <mosquitto.h>

#include "islewatch/err.h"
#include "islewatch/http_client.h"
#include "it.h"

long long it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int it_free_port(void)
{
    /* Bind port 0 on loopback and let the kernel choose. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    socklen_t l = sizeof(a);
    int port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

const char *it_bin(const char *name)
{
    static __thread char path[2][512];
    static __thread int k;
    const char *b = getenv("IW_BUILD_DIR");
    k ^= 1;
    snprintf(path[k], sizeof(path[k]), "%s/%s", b ? b : ".", name);
    return path[k];
}

static pid_t spawn(const char *log, char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        /* If the test process dies (a failed assertion ends it at once), its
         * broker and daemon die with it instead of lingering. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Signal, wait, and return the wait status (-1: nothing was running). */
static int end(pid_t *pid, int sig)
{
    int st = 0;
    if (*pid <= 0)
        return -1;
    kill(*pid, sig);
    for (int i = 0; i < 3000; i++) {            /* up to 30 s, then SIGKILL */
        if (waitpid(*pid, &st, WNOHANG) == *pid) {
            *pid = 0;
            return st;
        }
        nap_ms(10);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &st, 0);
    *pid = 0;
    return st;
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    if (dir[0] == '\0' || strncmp(dir, "/tmp/", 5) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "it: could not remove %s\n", dir);
}

/* ---- broker ---- */

static int broker_spawn(struct it_broker *b)
{
    char conf[300], log[300];
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", b->dir);
    snprintf(log, sizeof(log), "%s/mosquitto.log", b->dir);
    char *argv[] = { "mosquitto", "-c", conf, NULL };
    b->pid = spawn(log, argv);
    for (int i = 0; i < 1000; i++) {            /* 10 s */
        if (port_open(b->port))
            return 0;
        int st;
        if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
            fprintf(stderr, "it: mosquitto exited at start; see %s (is the mosquitto package "
                    "installed? deploy/install-deps.sh installs it)\n", log);
            b->pid = 0;
            return -1;
        }
        nap_ms(10);
    }
    fprintf(stderr, "it: mosquitto did not open port %d\n", b->port);
    return -1;
}

int it_broker_start(struct it_broker *b)
{
    char conf[300];
    FILE *f;

    memset(b, 0, sizeof(*b));
    snprintf(b->dir, sizeof(b->dir), "/tmp/iw-broker-XXXXXX");
    if (mkdtemp(b->dir) == NULL)
        return -1;
    b->port = it_free_port();
    /* mosquitto started as root drops to the "mosquitto" user unless told
     * "user root"; changing credentials would clear the parent-death signal
     * (PR_SET_PDEATHSIG) and leave the broker running after a test process
     * that died. The directory stays writable for any user all the same. */
    chmod(b->dir, 0777);
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", b->dir);
    f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "user root\nlistener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
               "persistence_location %s/\nautosave_interval 1\nmax_queued_messages 0\n"
               "max_inflight_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            b->port, b->dir);
    fclose(f);
    return broker_spawn(b);
}

int it_broker_start_tls(struct it_broker *b)
{
    char conf[300];
    FILE *f;

    if (it_broker_start(b) != 0)
        return -1;
    end(&b->pid, SIGTERM);
    b->tls_port = it_free_port();
    snprintf(b->ca_file, sizeof(b->ca_file), "%s/ca.crt", b->dir);
    /* A CA and a server certificate for 127.0.0.1, valid for a day. */
    if (it_run(NULL, "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=it-ca "
                     "-keyout ca.key -out ca.crt >/dev/null 2>&1 && "
                     "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key "
                     "-out server.csr >/dev/null 2>&1 && "
                     "printf 'subjectAltName=IP:127.0.0.1' > san.ext && "
                     "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
                     "-days 1 -extfile san.ext -out server.crt >/dev/null 2>&1 && "
                     "chmod 644 server.key ca.crt server.crt", b->dir) != 0) {
        fprintf(stderr, "it: openssl could not make test certificates in %s\n", b->dir);
        return -1;
    }
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", b->dir);
    f = fopen(conf, "a");
    if (f == NULL)
        return -1;
    fprintf(f, "listener %d 127.0.0.1\ncafile %s/ca.crt\ncertfile %s/server.crt\n"
               "keyfile %s/server.key\n", b->tls_port, b->dir, b->dir, b->dir);
    fclose(f);
    if (broker_spawn(b) != 0)
        return -1;
    for (int i = 0; i < 1000 && !port_open(b->tls_port); i++)
        nap_ms(10);
    return port_open(b->tls_port) ? 0 : -1;
}

int it_broker_restart(struct it_broker *b)
{
    if (b->pid > 0)
        return 0;
    return broker_spawn(b);
}

void it_broker_kill(struct it_broker *b) { end(&b->pid, SIGKILL); }

void it_broker_stop_keep(struct it_broker *b) { end(&b->pid, SIGTERM); }

void it_broker_stop(struct it_broker *b)
{
    end(&b->pid, SIGTERM);
    rm_rf(b->dir);
}

/* ---- daemon ---- */

static bool file_contains(const char *path, const char *needle, int count)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int n = 0;
    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL && ++n >= count)
            break;
    fclose(f);
    return n >= count;
}

bool it_daemon_wait_log(const struct it_daemon *d, const char *needle, int count, int timeout_ms)
{
    long long end_ms = it_now_ms() + timeout_ms;
    for (;;) {                          /* looks at least once: timeout 0 is "already there?" */
        if (file_contains(d->log, needle, count))
            return true;
        if (it_now_ms() >= end_ms)
            return false;
        nap_ms(20);
    }
}

static int daemon_spawn(struct it_daemon *d)
{
    int before = 0;
    FILE *f = fopen(d->log, "r");
    char line[8192];
    if (f != NULL) {
        while (fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, "subscribed to") != NULL)
                before++;
        fclose(f);
    }
    char *argv[] = { (char *)it_bin("islewatchd"), "-c", d->cfg, NULL };
    d->pid = spawn(d->log, argv);
    if (!it_daemon_wait_log(d, "subscribed to", before + 1, 20000)) {
        fprintf(stderr, "it: islewatchd did not subscribe within 20 s; log %s:\n", d->log);
        it_run(NULL, "tail -20 '%s' >&2", d->log);
        return -1;
    }
    return 0;
}

int it_daemon_start(struct it_daemon *d, const struct it_broker *b, const char *extra)
{
    char tok[300];
    FILE *f;

    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/iw-daemon-XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    snprintf(d->cfg, sizeof(d->cfg), "%s/islewatch.yaml", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/islewatchd.log", d->dir);
    snprintf(d->data, sizeof(d->data), "%s/data", d->dir);
    snprintf(tok, sizeof(tok), "%s/http.token", d->dir);
    d->http_port = it_free_port();
    f = fopen(tok, "w");
    if (f == NULL)
        return -1;
    fputs("secret-token\n", f);
    fclose(f);
    f = fopen(d->cfg, "w");
    if (f == NULL)
        return -1;
    /* A test that needs storage options writes its own storage: section with
     * "@DATA@" where the data path goes. */
    const char *at = extra ? strstr(extra, "@DATA@") : NULL;
    fprintf(f, "broker:\n  url: mqtt://127.0.0.1:%d\n  client_id: islewatchd-it-%d\n"
               "  reconnect_min: 100ms\n  reconnect_max: 1s\n"
               "http:\n  listen: 127.0.0.1:%d\n  token_file: %s\n"
               "log_level: info\n",
            b->port, (int)getpid(), d->http_port, tok);
    if (at != NULL)
        fprintf(f, "%.*s%s%s\n", (int)(at - extra), extra, d->data, at + 6);
    else
        fprintf(f, "storage:\n  path: %s\n%s\n", d->data, extra ? extra : "");
    fclose(f);
    return daemon_spawn(d);
}

int it_daemon_restart(struct it_daemon *d)
{
    if (d->pid > 0)
        return 0;
    return daemon_spawn(d);
}

void it_daemon_rewrite_from(const struct it_daemon *d, const char *key, const char *tail)
{
    char *cfg = NULL, tmp[320];
    cr_assert_eq(it_run(&cfg, "cat '%s'", d->cfg), 0);
    char *at = strstr(cfg, key);
    cr_assert_not_null(at, "no %s in %s", key, d->cfg);
    *at = '\0';
    snprintf(tmp, sizeof(tmp), "%s.new", d->cfg);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s%s", cfg, tail);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, d->cfg), 0);
    free(cfg);
}

int it_daemon_set_broker(struct it_daemon *d, const char *line)
{
    char *out = NULL;
    /* it_daemon_start wrote the broker section first, ending in reconnect_min. */
    int rc = it_run(&out, "sed -i 's|^  reconnect_min: 100ms|  %s\\n  reconnect_min: 100ms|' '%s'",
                    line, d->cfg);
    free(out);
    if (rc != 0)
        return -1;
    it_daemon_stop(d);
    return it_daemon_restart(d);
}

/*
 * A SIGTERM'd daemon must exit 0. Under the sanitizer builds this is also
 * where a leak or a late memory error shows: LeakSanitizer reports at exit
 * and, with abort_on_error=1, the daemon then dies of SIGABRT.
 */
static void stop_cleanly(struct it_daemon *d)
{
    int st = end(&d->pid, SIGTERM);
    if (st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
        return;
    fprintf(stderr, "---- end of %s ----\n", d->log);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' >&2", d->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(cannot read it)\n");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "islewatchd did not exit 0 on SIGTERM (%s %d): the end of its log %s "
              "is printed above (a sanitizer report or the error that stopped it)",
              WIFEXITED(st) ? "exit status" : "signal",
              WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), d->log);
}

void it_daemon_stop(struct it_daemon *d) { stop_cleanly(d); }
void it_daemon_kill9(struct it_daemon *d) { end(&d->pid, SIGKILL); }

void it_daemon_signal(const struct it_daemon *d, int sig)
{
    if (d->pid > 0)
        kill(d->pid, sig);
}

void it_daemon_cleanup(struct it_daemon *d)
{
    stop_cleanly(d);
    rm_rf(d->dir);
}

/* ---- commands ---- */

int it_run(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    FILE *p;
    size_t n = 0, cap = 0;
    char *buf = NULL;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                break;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, p);
        if (r == 0)
            break;
        n += r;
    }
    if (buf != NULL)
        buf[n] = '\0';
    st = pclose(p);
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- MQTT clients ---- */

#define QCAP 65536

struct it_client {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct it_msg *q[QCAP];
    size_t head, tail;
    int outstanding;            /* published, not yet acknowledged */
    bool connected;
    int last_mid_done;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct it_client *c = obj;
    (void)m;
    pthread_mutex_lock(&c->lock);
    c->connected = rc == 0;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct it_client *c = obj;
    struct it_msg *x = calloc(1, sizeof(*x));
    (void)m;
    x->topic = strdup(msg->topic);
    x->payload = malloc((size_t)msg->payloadlen + 1);
    if (msg->payloadlen > 0)                  /* an empty retained message has no payload */
        memcpy(x->payload, msg->payload, (size_t)msg->payloadlen);
    x->payload[msg->payloadlen] = '\0';
    x->len = msg->payloadlen;
    x->retained = msg->retain;
    pthread_mutex_lock(&c->lock);
    if (c->tail - c->head < QCAP)
        c->q[c->tail++ % QCAP] = x;
    else
        it_msg_free(x);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct it_client *c = obj;
    (void)m;
    pthread_mutex_lock(&c->lock);
    c->outstanding--;
    c->last_mid_done = mid;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static bool wait_cond(struct it_client *c, bool (*pred)(struct it_client *), int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    while (!pred(c))
        if (pthread_cond_timedwait(&c->cond, &c->lock, &dl) != 0)
            break;
    bool ok = pred(c);
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static bool is_connected(struct it_client *c) { return c->connected; }
static bool has_msg(struct it_client *c) { return c->head != c->tail; }
static bool all_acked(struct it_client *c) { return c->outstanding <= 0; }

struct it_client *it_client_new(const struct it_broker *b, const char *id)
{
    struct it_client *c = calloc(1, sizeof(*c));
    static int once;
    if (!once) {
        mosquitto_lib_init();
        once = 1;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->m = mosquitto_new(id, true, c);
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_message_callback_set(c->m, on_message);
    mosquitto_publish_callback_set(c->m, on_publish);
    mosquitto_max_inflight_messages_set(c->m, 1000);
    if (mosquitto_connect(c->m, "127.0.0.1", b->port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(c->m) != MOSQ_ERR_SUCCESS || !wait_cond(c, is_connected, 5000)) {
        fprintf(stderr, "it: client %s cannot connect to 127.0.0.1:%d\n", id, b->port);
        it_client_free(c);
        return NULL;
    }
    return c;
}

void it_client_free(struct it_client *c)
{
    if (c == NULL)
        return;
    mosquitto_disconnect(c->m);
    mosquitto_loop_stop(c->m, true);
    mosquitto_destroy(c->m);
    while (c->head != c->tail)
        it_msg_free(c->q[c->head++ % QCAP]);
    free(c);
}

int it_subscribe(struct it_client *c, const char *filter, int qos)
{
    int rc = mosquitto_subscribe(c->m, NULL, filter, qos);
    nap_ms(100);     /* SUBACK is not tracked; the broker applies SUBSCRIBE in order anyway */
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

struct it_msg *it_next(struct it_client *c, int timeout_ms)
{
    struct it_msg *m = NULL;
    if (!wait_cond(c, has_msg, timeout_ms))
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (c->head != c->tail)
        m = c->q[c->head++ % QCAP];
    pthread_mutex_unlock(&c->lock);
    return m;
}

void it_msg_free(struct it_msg *m)
{
    if (m == NULL)
        return;
    free(m->topic);
    free(m->payload);
    free(m);
}

int it_publish_async(struct it_client *c, const char *topic, const char *payload, int qos)
{
    pthread_mutex_lock(&c->lock);
    if (qos > 0)
        c->outstanding++;
    pthread_mutex_unlock(&c->lock);
    for (;;) {
        int rc = mosquitto_publish(c->m, NULL, topic, (int)strlen(payload), payload, qos, false);
        if (rc == MOSQ_ERR_SUCCESS)
            return 0;
        if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_OVERSIZE_PACKET) {
            nap_ms(1);
            continue;
        }
        pthread_mutex_lock(&c->lock);
        if (qos > 0)
            c->outstanding--;
        pthread_mutex_unlock(&c->lock);
        return -1;
    }
}

int it_flush(struct it_client *c, int timeout_ms)
{
    return wait_cond(c, all_acked, timeout_ms) ? 0 : -1;
}

int it_publish(struct it_client *c, const char *topic, const char *payload, int qos, bool retain)
{
    pthread_mutex_lock(&c->lock);
    if (qos > 0)
        c->outstanding++;
    pthread_mutex_unlock(&c->lock);
    if (mosquitto_publish(c->m, NULL, topic, (int)strlen(payload), payload, qos, retain) != MOSQ_ERR_SUCCESS)
        return -1;
    return qos > 0 ? it_flush(c, 10000) : 0;
}

double it_metric(const struct it_daemon *d, const char *sample)
{
    struct iw_diag diag = {0};
    char base[64], *body = NULL;
    size_t len = 0, n = strlen(sample);
    int status = 0;
    double v = -1;

    snprintf(base, sizeof(base), "http://127.0.0.1:%d", d->http_port);
    cr_assert_eq(iw_http_request(base, "GET", "/metrics", NULL, NULL, &body, &len, &status, &diag),
                 IW_OK, "GET /metrics: %s", iw_diag_first(&diag));
    cr_assert_eq(status, 200, "GET /metrics: %d", status);
    for (const char *p = body; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    free(body);
    iw_diag_fini(&diag);
    return v;
}
