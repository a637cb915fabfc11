/*
 * islewatchd's lifecycle: start-up in dependency order, the main loop
 * (signals, reconnects, retention, systemd watchdog, reloads), and shutdown
 * in reverse order so that nothing received is lost:
 *   late samples held for their upload's pause judged, their alerts handed
 *   to the MQTT client while it is connected (iw_pipeline_finish_late)
 *   -> disconnect (no new deliveries; the one in progress finishes)
 *   -> shards drain (rollups, rules) -> publisher drains (alerts go to Paho's
 *   persisted buffer if the broker is gone) -> clients freed -> store closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "islewatch/clock.h"
#include "islewatch/daemon.h"
#include "islewatch/http.h"
#include "islewatch/log.h"
#include "islewatch/silences.h"
#include "islewatch/stats.h"
#include "daemon_int.h"

/* Reload requests from HTTP threads, served by the main thread. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pipe[2];
    uint64_t requested, done;
    bool stopping;                  /* no more requests are served */
    int result;
    struct iw_diag diag;
} reload_req = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
                 .pipe = { -1, -1 } };

struct iw_store *iw_daemon_store(struct iw_daemon *d) { return d->store; }
const struct iw_config *iw_daemon_config(struct iw_daemon *d) { return d->cfg; }

bool iw_daemon_ready(struct iw_daemon *d)
{
    /* relaxed: a status flag (ingest.c), nothing is read through it. */
    return d->store != NULL && d->mqtt != NULL && iw_mqtt_connected(d->mqtt)
           && !atomic_load_explicit(&iw_stats.store_failing, memory_order_relaxed);
}

char *iw_daemon_metrics(struct iw_daemon *d)
{
    (void)d;
    return iw_stats_render();
}

/* --log-level wins over the file, so an operator can turn debug on without editing it. */
static void apply_log_level(const struct iw_daemon *d, const struct iw_config *cfg)
{
    int lvl = d->cli_log_level;
    if (lvl < 0 && cfg->log_level != NULL)
        lvl = iw_log_level_parse(cfg->log_level);
    if (lvl >= 0)
        iw_log_set_level((enum iw_log_level)lvl);
}

/*
 * systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is the
 * journal, and every process the service starts (a shell, tmux) inherits it:
 * only a stderr that is that very stream gets journald's "<N>" prefixes
 * (sd_journal_stream_fd(3)).
 */
static bool stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat sb;

    if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &sb) != 0)
        return false;
    return (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
}

static void print_diag(const struct iw_diag *diag)
{
    for (size_t i = 0; i < diag->n; i++)
        fprintf(stderr, "%s%s\n", iw_log_journal_prefix(IW_LOG_LEVEL_ERROR), diag->lines[i]);
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void add_key(char *list, size_t cap, bool changed, const char *key)
{
    size_t len = strlen(list);
    if (changed)
        snprintf(list + len, cap - len, "%s%s", len > 0 ? ", " : "", key);
}

/*
 * Settings read once at start: the store's options, the shards, the MQTT
 * clients and their connection options. A reload applies everything else and
 * names these, so the operator knows a restart is still needed. `o` is the
 * config the daemon started with, whose values are the ones running: a file
 * changed back to them needs no restart, however many reloads came between.
 * (http.listen is named by iw_http_reload.)
 */
static void warn_restart_only(const struct iw_config *o, const struct iw_config *n)
{
    const struct iw_broker_cfg *ob = &o->broker, *nb = &n->broker;
    const struct iw_storage_cfg *os = &o->storage, *ns = &n->storage;
    char keys[512] = "";

    add_key(keys, sizeof(keys), !same_str(os->path, ns->path), "storage.path");
    add_key(keys, sizeof(keys), os->shards != ns->shards, "storage.shards");
    add_key(keys, sizeof(keys), os->queue_size != ns->queue_size, "storage.queue_size");
    add_key(keys, sizeof(keys), os->sync_writes != ns->sync_writes, "storage.sync_writes");
    add_key(keys, sizeof(keys), os->slow_write_ms != ns->slow_write_ms, "storage.test_slow_write");
    add_key(keys, sizeof(keys), os->max_series != ns->max_series, "storage.test_max_series");
    add_key(keys, sizeof(keys), !same_str(ob->url, nb->url), "broker.url");
    add_key(keys, sizeof(keys), !same_str(ob->client_id, nb->client_id), "broker.client_id");
    add_key(keys, sizeof(keys), !same_str(ob->username, nb->username), "broker.username");
    add_key(keys, sizeof(keys), !same_str(ob->password_file, nb->password_file),
            "broker.password_file");
    add_key(keys, sizeof(keys), !same_str(ob->tls_ca_file, nb->tls_ca_file) ||
            !same_str(ob->tls_cert_file, nb->tls_cert_file) ||
            !same_str(ob->tls_key_file, nb->tls_key_file), "broker.tls");
    add_key(keys, sizeof(keys), ob->keepalive_ms != nb->keepalive_ms, "broker.keepalive");
    add_key(keys, sizeof(keys), ob->clean_session != nb->clean_session, "broker.clean_session");
    add_key(keys, sizeof(keys), ob->connections != nb->connections, "broker.connections");
    add_key(keys, sizeof(keys), ob->protocol != nb->protocol, "broker.protocol");
    add_key(keys, sizeof(keys), o->alerts.outbox_max != n->alerts.outbox_max, "alerts.outbox_max");
    if (keys[0] != '\0')
        IW_LOG_WARN("config", "%s changed: %s effect at the next restart (everything "
                    "else is applied now)", keys, strchr(keys, ',') ? "these take" : "this takes");
}

/* printf into out[*len..cap), moving *len; stops quietly once out is full. */
__attribute__((format(printf, 4, 5)))
static void append(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    if (*len >= cap)
        return;
    va_start(ap, fmt);
    int k = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = k < 0 ? cap : *len + (size_t)k;
}

/* Names, ", "-separated, into one of the summary's lists. */
static void add_name(char *list, size_t cap, const char *name)
{
    add_key(list, cap, true, name);
}

static const struct iw_source_cfg *source_named(const struct iw_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_sources; i++)
        if (strcmp(c->sources[i].name, name) == 0)
            return &c->sources[i];
    return NULL;
}

static const struct iw_rule *rule_named(const struct iw_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_rules; i++)
        if (strcmp(c->rules[i].name, name) == 0)
            return &c->rules[i];
    return NULL;
}

/* The same condition at every site (SPEC §3: such a rule's alerts keep their
 * state; only its message, labels, severity or repeat changed). */
static bool same_condition(const struct iw_rule *a, const struct iw_rule *b)
{
    if (a->kind != b->kind || strcmp(iw_rule_cond_for(a, NULL), iw_rule_cond_for(b, NULL)) != 0)
        return false;
    for (size_t i = 0; i < a->n_sites; i++)
        if (strcmp(iw_rule_cond_for(a, a->sites[i].site), iw_rule_cond_for(b, a->sites[i].site)))
            return false;
    for (size_t i = 0; i < b->n_sites; i++)
        if (strcmp(iw_rule_cond_for(a, b->sites[i].site), iw_rule_cond_for(b, b->sites[i].site)))
            return false;
    return true;
}

static const struct iw_device_cfg *device_in(const struct iw_config *c, const struct iw_device_cfg *d)
{
    for (size_t i = 0; i < c->n_devices; i++)
        if (strcmp(c->devices[i].source, d->source) == 0 && strcmp(c->devices[i].site, d->site) == 0
            && strcmp(c->devices[i].device, d->device) == 0)
            return &c->devices[i];
    return NULL;
}

static bool same_device(const struct iw_device_cfg *a, const struct iw_device_cfg *b)
{
    return same_str(a->name, b->name) && a->body == b->body && a->target == b->target
           && a->has_pos == b->has_pos && (!a->has_pos || (a->lat == b->lat && a->lon == b->lon));
}

static bool same_silences(const struct iw_config *o, const struct iw_config *n)
{
    if (o->n_silences != n->n_silences)
        return false;
    for (size_t i = 0; i < o->n_silences; i++) {
        const struct iw_silence_cfg *a = &o->silences[i], *b = &n->silences[i];
        if (a->from_ms != b->from_ms || a->to_ms != b->to_ms || !same_str(a->reason, b->reason)
            || a->n_match != b->n_match)
            return false;
        for (size_t k = 0; k < a->n_match; k++)
            if (!same_str(a->match[k].key, b->match[k].key)
                || !same_str(a->match[k].value, b->match[k].value))
                return false;
    }
    return true;
}

/*
 * What a reload changed, for its one log line: the rules and sources added,
 * changed and removed by name, the inventory's devices, and the other keys
 * applied at once. The operator who sent SIGHUP reads here whether the edit
 * they meant took effect (a rule changed resolves its firing alerts).
 */
static void describe_changes(const struct iw_config *o, const struct iw_config *n, char *out,
                             size_t cap)
{
    char radd[256] = "", rchg[256] = "", rkept[256] = "", rdel[256] = "", sadd[256] = "", schg[256] = "",
         sdel[256] = "", other[256] = "";
    size_t dadd = 0, dchg = 0, ddel = 0;

    for (size_t i = 0; i < n->n_rules; i++) {
        const struct iw_rule *r = rule_named(o, n->rules[i].name);
        if (r == NULL)
            add_name(radd, sizeof(radd), n->rules[i].name);
        else if (strcmp(r->hash, n->rules[i].hash) != 0) {
            bool kept = same_condition(r, &n->rules[i]);
            add_name(kept ? rkept : rchg, kept ? sizeof(rkept) : sizeof(rchg), n->rules[i].name);
        }
    }
    for (size_t i = 0; i < o->n_rules; i++)
        if (rule_named(n, o->rules[i].name) == NULL)
            add_name(rdel, sizeof(rdel), o->rules[i].name);
    for (size_t i = 0; i < n->n_sources; i++) {
        const struct iw_source_cfg *a = source_named(o, n->sources[i].name), *b = &n->sources[i];
        if (a == NULL)
            add_name(sadd, sizeof(sadd), b->name);
        else if (strcmp(a->topic, b->topic) != 0 || a->format != b->format || a->qos != b->qos
                 || !same_str(a->ts_field, b->ts_field))
            add_name(schg, sizeof(schg), b->name);
    }
    for (size_t i = 0; i < o->n_sources; i++)
        if (source_named(n, o->sources[i].name) == NULL)
            add_name(sdel, sizeof(sdel), o->sources[i].name);
    for (size_t i = 0; i < n->n_devices; i++) {
        const struct iw_device_cfg *a = device_in(o, &n->devices[i]);
        dadd += a == NULL;
        dchg += a != NULL && !same_device(a, &n->devices[i]);
    }
    for (size_t i = 0; i < o->n_devices; i++)
        ddel += device_in(n, &o->devices[i]) == NULL;
    add_key(other, sizeof(other), !same_str(o->alerts.topic, n->alerts.topic)
            || !same_str(o->alerts.active_topic, n->alerts.active_topic)
            || o->alerts.qos != n->alerts.qos || o->alerts.live_window_ms != n->alerts.live_window_ms,
            "alerts");
    add_key(other, sizeof(other), !same_str(o->ingest.rejected_topic, n->ingest.rejected_topic),
            "rejected_topic");
    add_key(other, sizeof(other), o->ingest.max_payload != n->ingest.max_payload, "max_payload");
    add_key(other, sizeof(other), o->ingest.max_future_skew_ms != n->ingest.max_future_skew_ms,
            "max_future_skew");
    add_key(other, sizeof(other), o->storage.retention_raw_ms != n->storage.retention_raw_ms
            || o->storage.retention_1m_ms != n->storage.retention_1m_ms
            || o->storage.retention_1h_ms != n->storage.retention_1h_ms, "storage.retention");
    add_key(other, sizeof(other), !same_str(o->http.token_file, n->http.token_file),
            "http.token_file");
    add_key(other, sizeof(other), !same_silences(o, n), "silences");
    add_key(other, sizeof(other), !same_str(o->log_level, n->log_level), "log_level");
    add_key(other, sizeof(other), o->broker.reconnect_min_ms != n->broker.reconnect_min_ms
            || o->broker.reconnect_max_ms != n->broker.reconnect_max_ms, "broker.reconnect");
    add_key(other, sizeof(other), !same_str(o->broker.share_group, n->broker.share_group),
            "broker.share_group");

    size_t len = 0;
    out[0] = '\0';
    if (radd[0])
        append(out, cap, &len, "; rules added: %s", radd);
    if (rchg[0])
        append(out, cap, &len, "; rules changed: %s", rchg);
    if (rkept[0])
        append(out, cap, &len, "; rules changed, alerts kept: %s", rkept);
    if (rdel[0])
        append(out, cap, &len, "; rules removed: %s", rdel);
    if (sadd[0])
        append(out, cap, &len, "; sources added: %s", sadd);
    if (schg[0])
        append(out, cap, &len, "; sources changed: %s", schg);
    if (sdel[0])
        append(out, cap, &len, "; sources removed: %s", sdel);
    if (dadd + dchg + ddel > 0)
        append(out, cap, &len, "; devices: %zu added, %zu changed, %zu removed", dadd, dchg, ddel);
    if (other[0])
        append(out, cap, &len, "; also changed: %s", other);
    if (len == 0)
        append(out, cap, &len, "; no setting changed");
}

/* Apply a newly loaded config. Main thread only. */
static int reload(struct iw_daemon *d, struct iw_diag *diag)
{
    struct iw_config *ncfg = NULL, *old = d->cfg;
    struct iw_ingest_view *nview = NULL, *oview;
    char changes[1024];
    int rc;

    sd_notify(0, "RELOADING=1");
    iw_stat_add(&iw_stats.reloads_total, 1);
    rc = iw_config_load(d->cfg_path, &ncfg, diag);
    if (rc == IW_OK)
        rc = iw_ingest_view_build(ncfg, &nview, diag);
    /* A token file the start would refuse: keep the running token, not none. */
    if (rc == IW_OK && d->http != NULL && (rc = iw_http_token_check(ncfg, diag)) != IW_OK) {
        iw_ingest_view_free(nview);
        nview = NULL;
    }
    if (rc != IW_OK) {
        print_diag(diag);               /* bare FILE:LINE:COLUMN lines, as at start (SPEC §3) */
        IW_LOG_ERROR("config", "reload of %s refused (%zu error(s)); the running config stays",
                     d->cfg_path, diag->n);
        iw_config_free(ncfg);
        atomic_store_explicit(&iw_stats.reload_ok, 0, memory_order_relaxed);
        sd_notify(0, "READY=1");
        return IW_E_CONFIG;
    }
    warn_restart_only(d->boot_cfg, ncfg);
    describe_changes(old, ncfg, changes, sizeof(changes));
    apply_log_level(d, ncfg);

    /* Rules first (each shard switches on its own thread), then the ingest view. */
    iw_pipeline_reload(d, ncfg);
    struct iw_config **keep = realloc(d->old_cfgs, (d->n_old_cfgs + 1) * sizeof(*keep));
    if (keep != NULL) {
        keep[d->n_old_cfgs++] = old;
        d->old_cfgs = keep;
    }
    d->cfg = ncfg;
    oview = atomic_exchange(&d->view, nview);
    if (d->mqtt != NULL) {
        iw_mqtt_quiesce(d->mqtt);
        iw_mqtt_resubscribe(d->mqtt);
    }
    iw_ingest_view_free(oview);
    if (d->http != NULL)
        iw_http_reload(d->http, ncfg);
    iw_stats_alert_declare(ncfg);
    atomic_store_explicit(&iw_stats.reload_ok, 1, memory_order_relaxed);
    IW_LOG_INFO("config", "reloaded %s: %zu source%s, %zu rule%s%s", d->cfg_path, ncfg->n_sources,
                ncfg->n_sources == 1 ? "" : "s", ncfg->n_rules, ncfg->n_rules == 1 ? "" : "s",
                changes);
    sd_notify(0, "READY=1");
    return IW_OK;
}

int iw_daemon_request_reload(struct iw_daemon *d, struct iw_diag *diag)
{
    (void)d;
    pthread_mutex_lock(&reload_req.lock);
    if (reload_req.stopping) {
        pthread_mutex_unlock(&reload_req.lock);
        iw_diag_add(diag, NULL, 0, 0, "the daemon is stopping; reload not done");
        return IW_E_STATE;
    }
    uint64_t ticket = ++reload_req.requested;
    if (write(reload_req.pipe[1], "r", 1) < 0)
        IW_LOG_WARN("config", "cannot wake the main thread for a reload: %s", strerror(errno));
    while (reload_req.done < ticket)
        pthread_cond_wait(&reload_req.cond, &reload_req.lock);
    int rc = reload_req.result;
    for (size_t i = 0; i < reload_req.diag.n; i++)
        iw_diag_add(diag, NULL, 0, 0, "%s", reload_req.diag.lines[i]);
    pthread_mutex_unlock(&reload_req.lock);
    return rc;
}

static void serve_reload_requests(struct iw_daemon *d)
{
    char buf[64];
    while (read(reload_req.pipe[0], buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&reload_req.lock);
    uint64_t upto = reload_req.requested;
    pthread_mutex_unlock(&reload_req.lock);
    if (upto == reload_req.done)
        return;
    struct iw_diag diag = {0};
    int rc = reload(d, &diag);
    pthread_mutex_lock(&reload_req.lock);
    iw_diag_fini(&reload_req.diag);
    reload_req.diag = diag;
    reload_req.result = rc;
    reload_req.done = upto;
    pthread_cond_broadcast(&reload_req.cond);
    pthread_mutex_unlock(&reload_req.lock);
}

/* At shutdown: answer reload requests the main loop will no longer serve. */
static void fail_pending_reloads(void)
{
    pthread_mutex_lock(&reload_req.lock);
    if (reload_req.done < reload_req.requested) {
        iw_diag_fini(&reload_req.diag);
        iw_diag_add(&reload_req.diag, NULL, 0, 0, "the daemon is stopping; reload not done");
        reload_req.result = IW_E_STATE;
        reload_req.done = reload_req.requested;
        pthread_cond_broadcast(&reload_req.cond);
    }
    reload_req.stopping = true;
    pthread_mutex_unlock(&reload_req.lock);
}

static int main_loop(struct iw_daemon *d, int sfd)
{
    uint64_t wd_usec = 0;
    int64_t next_wd = 0, next_retention = 0, kept[3] = { 0, 0, 0 };
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;

    for (;;) {
        struct pollfd p[2] = { { sfd, POLLIN, 0 }, { reload_req.pipe[0], POLLIN, 0 } };
        int n = poll(p, 2, 100);
        int64_t now = iw_now_ms();

        if (n > 0 && (p[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                    struct iw_diag diag = {0};
                    IW_LOG_INFO("config", "SIGHUP: reloading %s", d->cfg_path);
                    (void)reload(d, &diag);
                    iw_diag_fini(&diag);
                } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                    IW_LOG_INFO("daemon", "%s: draining and stopping",
                                si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                    return IW_OK;
                }
            }
        }
        if (n > 0 && (p[1].revents & POLLIN))
            serve_reload_requests(d);
        iw_mqtt_tick(d->mqtt, now);
        const struct iw_storage_cfg *s = &d->cfg->storage;
        if (now >= next_retention || s->retention_raw_ms != kept[0] ||
            s->retention_1m_ms != kept[1] || s->retention_1h_ms != kept[2]) {
            /* hourly, and at once when a reload changed the retention */
            if (iw_store_retention(d->store, now, s->retention_raw_ms, s->retention_1m_ms,
                                   s->retention_1h_ms) != IW_OK)
                IW_LOG_WARN("store", "retention pass failed; will retry in an hour");
            next_retention = now + IW_MS_PER_HOUR;
            kept[0] = s->retention_raw_ms;
            kept[1] = s->retention_1m_ms;
            kept[2] = s->retention_1h_ms;
        }
        if (watchdog && now >= next_wd) {
            sd_notify(0, "WATCHDOG=1");
            next_wd = now + (int64_t)(wd_usec / 2000);
        }
    }
}

/* Test-only kill hooks (daemon_int.h): read once at start; unset or not a number: off. */
static void test_env(const char *name, int64_t *out)
{
    const char *v = getenv(name);
    if (v != NULL)
        *out = strtoll(v, NULL, 10);
}

int iw_daemon_run(const char *path, int log_level)
{
    struct iw_daemon *d = calloc(1, sizeof(*d));
    struct iw_diag diag = {0};
    struct iw_config *cfg = NULL;
    struct iw_ingest_view *view = NULL;
    sigset_t mask;
    int sfd = -1, rc;

    if (d == NULL)
        return IW_E_NOMEM;
    if (stderr_is_journal())            /* before the config: its errors go there too */
        iw_log_set_journal(1);
    d->cfg_path = path;
    d->cli_log_level = log_level;
    d->start_ms = iw_now_ms();
    const char *kill_after = getenv("ISLEWATCH_TEST_KILL_AFTER_WRITES");
    if (kill_after != NULL)
        d->test_kill_after = strtoll(kill_after, NULL, 10);
    test_env("ISLEWATCH_TEST_KILL_BEFORE_WRITES", &d->test_kill_before);
    test_env("ISLEWATCH_TEST_KILL_AFTER_ALERT_RECORDS", &d->test_kill_after_alert_records);
    test_env("ISLEWATCH_TEST_KILL_AFTER_ALERT_PUBLISHES", &d->test_kill_after_alert_publishes);
    test_env("ISLEWATCH_TEST_KILL_BEFORE_ALERT_RECORDS", &d->test_kill_before_alert_records);
    test_env("ISLEWATCH_TEST_KILL_AFTER_ALERT_HANDOFFS", &d->test_kill_after_alert_handoffs);
    d->test_fail_writes_if = getenv("ISLEWATCH_TEST_FAIL_WRITES_IF");
    iw_config_check_files(true);        /* start and reloads: the files it will read */
    rc = iw_config_load(path, &cfg, &diag);
    if (rc == IW_OK)
        rc = iw_ingest_view_build(cfg, &view, &diag);
    if (rc != IW_OK) {
        print_diag(&diag);
        fprintf(stderr, "%sislewatchd: %zu configuration error%s; not starting\n",
                iw_log_journal_prefix(IW_LOG_LEVEL_ERROR), diag.n, diag.n == 1 ? "" : "s");
        iw_diag_fini(&diag);
        iw_config_free(cfg);
        free(d);
        return IW_E_CONFIG;
    }
    d->cfg = cfg;
    d->boot_cfg = cfg;
    atomic_store(&d->view, view);
    apply_log_level(d, cfg);

    /* Signals go to the main loop only: block them before any thread starts. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (pipe(reload_req.pipe) != 0 || sfd < 0) {
        IW_LOG_ERROR("daemon", "cannot set up signal handling: %s", strerror(errno));
        rc = IW_E_IO;
        goto out;
    }
    for (int i = 0; i < 2; i++)
        fcntl(reload_req.pipe[i], F_SETFL, fcntl(reload_req.pipe[i], F_GETFL) | O_NONBLOCK);

    struct iw_store_opts so = { .path = cfg->storage.path, .sync_writes = cfg->storage.sync_writes,
                                .slow_write_ms = cfg->storage.slow_write_ms,
                                .max_series = (uint32_t)cfg->storage.max_series };
    if ((rc = iw_store_open(&so, &d->store, &diag)) != IW_OK) {
        IW_LOG_ERROR("store", "%s", iw_diag_first(&diag));
        goto out;
    }
    atomic_store(&iw_stats.db_open, 1);
    iw_ingest_restore_receipts(d);      /* before the first message */
    /* Run-time silences before the first alert can be raised. */
    if (iw_silences_load(d->store, &diag) != IW_OK) {
        IW_LOG_WARN("silences", "%s; starting without the stored silences", iw_diag_first(&diag));
        iw_diag_fini(&diag);
    }
    if ((rc = iw_mqtt_start(d, &diag)) != IW_OK ||
        (rc = iw_alert_pub_start(d, &d->pub, &diag)) != IW_OK ||
        (rc = iw_pipeline_start(d, &diag)) != IW_OK) {
        IW_LOG_ERROR("daemon", "%s", iw_diag_first(&diag));
        goto out;
    }
    if ((rc = iw_mqtt_replay(d->mqtt)) != IW_OK)
        goto out;
    if ((rc = iw_http_start(d, cfg, &d->http, &diag)) != IW_OK) {
        IW_LOG_ERROR("http", "%s", iw_diag_first(&diag));
        goto out;
    }
    iw_stats_alert_declare(cfg);
    atomic_store(&iw_stats.reload_ok, 1);
    IW_LOG_INFO("daemon", "islewatchd started: config %s, %zu source%s, %zu rule%s, storage %s, "
                "broker %s, http %s", path, cfg->n_sources, cfg->n_sources == 1 ? "" : "s",
                cfg->n_rules, cfg->n_rules == 1 ? "" : "s", cfg->storage.path,
                cfg->broker.url, cfg->http.listen && *cfg->http.listen ? cfg->http.listen : "off");
    sd_notify(0, "READY=1");
    rc = main_loop(d, sfd);
    sd_notify(0, "STOPPING=1");
    /* Late samples held for their upload's pause are judged now, while the
     * broker link is up: their alerts go out before the stop, not after
     * the next start. */
    iw_pipeline_finish_late(d, 3000);

out:
    fail_pending_reloads();         /* an HTTP thread may be waiting on one */
    atomic_store(&d->stopping, true);
    iw_http_stop(d->http);
    iw_mqtt_stop(d->mqtt);
    iw_pipeline_stop(d);
    iw_alert_pub_stop(d->pub);
    iw_mqtt_free(d->mqtt);
    iw_store_close(d->store);
    atomic_store(&iw_stats.db_open, 0);
    iw_ingest_view_free(atomic_load(&d->view));
    iw_config_free(d->cfg);
    for (size_t i = 0; i < d->n_old_cfgs; i++)
        iw_config_free(d->old_cfgs[i]);
    free(d->old_cfgs);
    iw_diag_fini(&diag);
    if (sfd >= 0)
        close(sfd);
    for (int i = 0; i < 2; i++)
        if (reload_req.pipe[i] >= 0)
            close(reload_req.pipe[i]);
    free(d);
    IW_LOG_INFO("daemon", "stopped");
    return rc;
}
