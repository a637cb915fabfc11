/*
 * Running islewatchd as an operator does (SPEC §2, §3): command-line options,
 * broker credentials and TLS files, and the one-line errors that tell what to
 * do when the daemon cannot start or cannot connect.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "integration/it.h"
#include "islewatch/err.h"
#include "islewatch/http_client.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/iw-ops-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    it_run(NULL, "rm -rf '%s'", dir);
}

/* Write dir/islewatch.yaml: `broker` is the whole broker: section. Returns its path. */
static const char *write_config(const char *broker)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/islewatch.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%sstorage:\n  path: %s/data\nhttp:\n  listen: \"off\"\nlog_level: info\n",
            broker, dir);
    fclose(f);
    return path;
}

/* A loopback port where nothing listens (the broker is down). */
static int dead_port(void)
{
    return it_free_port();
}


/* The token the harness wrote to d's http.token, without its newline. */
static void harness_token(const struct it_daemon *d, char *token, size_t cap)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/http.token", d->dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "the harness writes %s", path);
    cr_assert_not_null(fgets(token, (int)cap, f));
    fclose(f);
    token[strcspn(token, "\r\n")] = '\0';
}

Test(ops, the_log_level_option_wins_over_the_config_file, .init = setup, .fini = teardown)
{
    char broker[256], *out = NULL;

    snprintf(broker, sizeof(broker), "broker:\n  url: mqtt://127.0.0.1:%d\n"
             "  reconnect_min: 100ms\n  reconnect_max: 500ms\n", dead_port());
    const char *cfg = write_config(broker);
    /* The file says info; --log-level warn must keep the INFO lines out. */
    int st = it_run(&out, "timeout --preserve-status -s TERM 6 %s --log-level warn -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    cr_expect_eq(st, 0, "SIGTERM must end the daemon with 0: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, " WARN ") != NULL,
              "the failed connects are WARN lines and must show: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "is the broker running and reachable there? check "
                                          "broker.url") != NULL,
              "a broker that is down is named as the likely cause: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, " INFO ") == NULL,
              "--log-level warn must hide INFO lines although the file says info: %s",
              out ? out : "");
    free(out);
}

/*
 * A broker that takes user "ops" with password "right" only, and a config
 * whose broker.password_file (its path in pass, cap bytes) says "wrong".
 * Returns the config's path.
 */
/* Start b, then restart it with `lines` (mosquitto.conf lines, one %s for its
 * directory) added to its listener; make_files(b) first writes the files they name. */
/* Replace the stopped broker b's config with `lines` (a format: %s is its directory). */
static void broker_conf(struct it_broker *b, const char *lines)
{
    char conf[300];
    FILE *f;

    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", b->dir);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "user root\nlistener %d 127.0.0.1\n", b->port);
    fprintf(f, lines, b->dir);
    fputs("log_dest stderr\nlog_type error\n", f);
    fclose(f);
}

static void broker_with(struct it_broker *b, const char *lines, void (*make_files)(struct it_broker *))
{
    cr_assert_eq(it_broker_start(b), 0);
    it_broker_stop_keep(b);
    make_files(b);
    broker_conf(b, lines);
    cr_assert_eq(it_broker_restart(b), 0);
}

static void password_file(struct it_broker *b)
{
    cr_assert_eq(it_run(NULL, "mosquitto_passwd -c -b '%s/pw' ops right >/dev/null 2>&1", b->dir), 0);
}

static const char *password_broker(struct it_broker *b, char *pass, size_t cap)
{
    char broker[1024];
    FILE *f;

    /* No anonymous access: user ops, password right. */
    broker_with(b, "allow_anonymous false\npassword_file %s/pw\n", password_file);

    snprintf(pass, cap, "%s/broker.pass", dir);
    f = fopen(pass, "w");
    cr_assert_not_null(f);
    fputs("wrong\n", f);
    fclose(f);
    snprintf(broker, sizeof(broker), "broker:\n  url: mqtt://127.0.0.1:%d\n  username: ops\n"
             "  password_file: %s\n  reconnect_min: 100ms\n  reconnect_max: 500ms\n",
             b->port, pass);
    return write_config(broker);
}

Test(ops, a_broker_refusing_the_credentials_is_named_with_what_to_fix, .init = setup,
     .fini = teardown)
{
    struct it_broker b;
    char conf[300], *out = NULL;
    const char *cfg = password_broker(&b, conf, sizeof(conf));
    int st = it_run(&out, "timeout --preserve-status -s TERM 6 %s -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    it_broker_stop(&b);
    cr_expect_eq(st, 0, "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "not authorized") != NULL,
              "the broker's refusal must be said in words: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "broker.username and broker.password_file") != NULL,
              "the line must say what to check: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "wrong") == NULL, "the password is never logged: %s",
              out ? out : "");
    free(out);
}

/* The refusal says to check broker.password_file: once the operator has put
 * the right password there, the next attempt uses it. The daemon read the
 * file only at start and kept failing until restarted (a SIGHUP did not help
 * either: the file's path had not changed). */
Test(ops, a_password_fixed_in_its_file_is_used_at_the_next_attempt, .init = setup,
     .fini = teardown)
{
    struct it_broker b;
    char conf[300], *out = NULL;
    const char *cfg = password_broker(&b, conf, sizeof(conf));
    int st = it_run(&out, "%s -c '%s' >'%s/log' 2>&1 & p=$!; sleep 2; "
                    "printf 'right\\n' >'%s.new' && mv '%s.new' '%s'; sleep 3; kill -TERM $p; "
                    "wait $p; st=$?; cat '%s/log'; exit $st",
                    it_bin("islewatchd"), cfg, dir, conf, conf, conf, dir);
    it_broker_stop(&b);
    cr_expect_eq(st, 0, "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "not authorized") != NULL,
              "the wrong password is refused first: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "changed: connecting with its new password") != NULL,
              "the new password is said to be used: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "connection 0 up to") != NULL,
              "the right password in the file must connect without a restart: %s",
              out ? out : "");
    free(out);
}

Test(ops, a_missing_tls_file_stops_the_start_with_its_name, .init = setup, .fini = teardown)
{
    char broker[512], *out = NULL;

    snprintf(broker, sizeof(broker), "broker:\n  url: mqtts://127.0.0.1:%d\n"
             "  tls: { ca_file: %s/no-such-ca.pem }\n", dead_port(), dir);
    const char *cfg = write_config(broker);
    int st = it_run(&out, "timeout --preserve-status -s TERM 10 %s -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    cr_expect(st != 0, "a CA file that does not exist must stop the start: %s", out ? out : "");
    /* A config error now, at the value: FILE:LINE:COLUMN, as `check` says it. */
    char want[600];
    snprintf(want, sizeof(want), "%s:3:19: error: broker.tls.ca_file: %s/no-such-ca.pem cannot be "
             "read: No such file or directory", cfg, dir);
    cr_expect(out != NULL && strstr(out, want) != NULL,
              "the error names the place, the key, the file and why: %s", out ? out : "");
    free(out);
}

Test(ops, a_reload_names_every_setting_that_waits_for_a_restart, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    FILE *f;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, NULL), 0);
    char *started = NULL;               /* the file the daemon started with */
    cr_assert_eq(it_run(&started, "cat '%s'", d.cfg), 0);
    /* The same file with settings read only at start changed: the store's
     * sync_writes and queue_size, the MQTT client id and keep-alive. */
    f = fopen(d.cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "broker:\n  url: mqtt://127.0.0.1:%d\n  client_id: islewatchd-renamed-%d\n"
               "  keepalive: 20s\n  reconnect_min: 200ms\n  reconnect_max: 2s\n"
               "http:\n  listen: 127.0.0.1:%d\n  token_file: %s/http.token\nlog_level: info\n"
               "storage:\n  path: %s\n  sync_writes: true\n  queue_size: 1024\n",
            b.port, (int)getpid(), d.http_port, d.dir, d.data);
    fclose(f);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000), "the file is valid");
    char *line = NULL;
    int st = it_run(&line, "grep 'WARN' '%s' | grep 'next restart'", d.log);
    cr_expect_eq(st, 0, "no warning that some settings wait for a restart");
    static const char *const keys[] = { "storage.sync_writes", "storage.queue_size",
                                        "broker.client_id", "broker.keepalive" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_expect(line != NULL && strstr(line, keys[i]) != NULL,
                  "the warning does not name %s: %s", keys[i], line ? line : "");
    cr_expect(line != NULL && strstr(line, "storage.path") == NULL,
              "an unchanged key is named: %s", line ? line : "");
    free(line);
    /* The reconnect backoff is applied at once: the summary names it. */
    line = NULL;
    cr_assert_eq(it_run(&line, "grep -m1 'reloaded' '%s'", d.log), 0);
    cr_expect(strstr(line, "also changed: ") != NULL && strstr(line, "broker.reconnect") != NULL,
              "the reload does not say the backoff changed: %s", line);
    free(line);

    /* Back to the file it started with: nothing waits for a restart any more,
     * though the last file loaded differed. */
    f = fopen(d.cfg, "w");
    cr_assert_not_null(f);
    fputs(started, f);
    fclose(f);
    free(started);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 2, 10000), "the file is valid");
    line = NULL;
    cr_assert_eq(it_run(&line, "grep -c 'next restart' '%s'", d.log), 0);
    cr_expect(strcmp(line, "1\n") == 0, "the running settings wait for a restart: %s warnings",
              line);
    free(line);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

#define CHG_SOURCES "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
#define CHG_DEVICES "devices:\n  - {source: water, site: s, device: w1}\n"

/*
 * SPEC §3: an engineer edits rules and sends SIGHUP. The reload's one log
 * line says what it changed, by name, telling a changed condition (its firing
 * alerts resolve) from a changed message or severity (they stay), and says so
 * when the file changed nothing, e.g. the edit was saved to another file. It
 * used to say only "2 sources, 3 rules" either way.
 */
Test(ops, a_reload_says_which_rules_sources_and_settings_it_changed, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, CHG_SOURCES
        "  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 1}\n"
        "rules:\n"
        "  - {name: keep, kind: threshold, select: \"water/*/*/ph\", above: 9, severity: major}\n"
        "  - {name: edit, kind: threshold, select: \"water/*/*/nh3_n\", above: 2, severity: major}\n"
        "  - {name: drop, kind: threshold, select: \"water/*/*/tp\", above: 1, severity: major}\n"
        "  - {name: word, kind: threshold, select: \"water/*/*/tn\", above: 2, severity: major}\n"
        CHG_DEVICES), 0);
    it_daemon_rewrite_from(&d, "sources:", "max_payload: 1KiB\n" CHG_SOURCES
        "  - {name: air, topic: \"sensors/air/{site}/{device}\", qos: 2}\n"
        "rules:\n"
        "  - {name: keep, kind: threshold, select: \"water/*/*/ph\", above: 9, severity: major}\n"
        "  - {name: edit, kind: threshold, select: \"water/*/*/nh3_n\", above: 3, severity: major}\n"
        "  - {name: fresh, kind: threshold, select: \"water/*/*/do\", below: 2, severity: major}\n"
        "  - {name: word, kind: threshold, select: \"water/*/*/tn\", above: 2, severity: critical,"
        " message: \"TN {value}\"}\n"
        CHG_DEVICES "  - {source: water, site: s, device: w2}\n");
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 20000), "the file is valid");
    char *line = NULL;
    cr_assert_eq(it_run(&line, "grep -m1 'reloaded' '%s'", d.log), 0);
    cr_expect(strstr(line, "INFO") != NULL, "no level: %s", line);
    cr_expect(strstr(line, "2 sources, 4 rules; rules added: fresh; rules changed: edit; "
                           "rules changed, alerts kept: word; "
                           "rules removed: drop; sources changed: air; devices: 1 added, "
                           "0 changed, 0 removed; also changed: max_payload\n") != NULL,
              "the reload does not say what it changed: %s", line);
    free(line);

    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 2, 20000));
    line = NULL;
    cr_assert_eq(it_run(&line, "grep 'reloaded' '%s' | tail -n 1", d.log), 0);
    cr_expect(strstr(line, "4 rules; no setting changed") != NULL,
              "a reload of the same file does not say it changed nothing: %s", line);
    free(line);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(ops, a_tls_broker_whose_certificate_names_another_host_is_refused, .init = setup,
     .fini = teardown, .timeout = 120)
{
    struct it_broker b;
    char broker[768], *out = NULL;

    cr_assert_eq(it_broker_start_tls(&b), 0, "mosquitto with a TLS listener");
    /* The broker's certificate is for 127.0.0.1 only, signed by the CA we trust;
     * "localhost" reaches the same listener under a name it does not carry. */
    snprintf(broker, sizeof(broker), "broker:\n  url: mqtts://localhost:%d\n"
             "  tls: { ca_file: %s }\n  reconnect_min: 100ms\n  reconnect_max: 500ms\n",
             b.tls_port, b.ca_file);
    const char *cfg = write_config(broker);
    int st = it_run(&out, "timeout --preserve-status -s TERM 6 %s -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    it_broker_stop(&b);
    cr_expect_eq(st, 0, "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "failed") != NULL, "no connect attempt: %s",
              out ? out : "");
    cr_expect(out != NULL && strstr(out, "up to ssl://") == NULL,
              "connected to a broker whose certificate is not for the host in broker.url: %s",
              out ? out : "");
    /* OpenSSL's reason, which Paho's "TCP/TLS connect failure" does not give. */
    cr_expect(out != NULL && strstr(out, "WARN  mqtt: TLS with ssl://localhost:") != NULL
                  && strstr(out, "the broker's certificate is refused: hostname mismatch (it is "
                                 "not issued for the host in broker.url)") != NULL,
              "the TLS failure's own reason is not logged: %s", out ? out : "");
    free(out);
}

Test(ops, tls_files_with_a_plain_url_are_said_to_be_unused, .init = setup, .fini = teardown)
{
    char broker[512], ca[128], *out = NULL;

    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    FILE *f = fopen(ca, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(broker, sizeof(broker), "broker:\n  url: mqtt://127.0.0.1:%d\n  tls: { ca_file: %s }\n"
             "  reconnect_min: 100ms\n  reconnect_max: 500ms\n", dead_port(), ca);
    const char *cfg = write_config(broker);
    int st = it_run(&out, "timeout --preserve-status -s TERM 4 %s -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    cr_expect_eq(st, 0, "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "WARN  mqtt: broker.tls is set but broker.url") != NULL &&
              strstr(out, "not encrypted") != NULL,
              "the operator must learn that the TLS files are not used: %s", out ? out : "");
    free(out);
}

/* JOURNAL_STREAM is inherited by whatever a service starts (a shell, tmux):
 * only a stderr that is that very stream gets journald's "<N>" prefixes. */
Test(ops, log_lines_keep_their_level_words_when_stderr_is_not_the_journal, .init = setup,
     .fini = teardown)
{
    char broker[256], *out = NULL;

    snprintf(broker, sizeof(broker), "broker:\n  url: mqtt://127.0.0.1:%d\n", dead_port());
    const char *cfg = write_config(broker);
    int st = it_run(&out, "JOURNAL_STREAM=8:12345 timeout --preserve-status -s TERM 3 %s -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    cr_expect_eq(st, 0, "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "INFO  daemon: islewatchd started") != NULL &&
              strstr(out, "<6>") == NULL,
              "a terminal or file gets timestamps and level words: %s", out ? out : "");
    free(out);
}

/* Under systemd, `journalctl -p err` must show why the daemon did not start. */
Test(ops, config_errors_reach_the_journal_as_errors, .init = setup, .fini = teardown)
{
    char path[128], *out = NULL;

    snprintf(path, sizeof(path), "%s/bad.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("broker:\n  keepalive: 10x\n", f);
    fclose(f);
    /* The output file plays the journal stream: JOURNAL_STREAM names it. */
    int st = it_run(&out, "cd '%s' && : > out && JOURNAL_STREAM=$(stat -c %%d:%%i out) "
                    "%s -c '%s' 2>>out; echo \"rc=$?\" >> out; cat out", dir,
                    it_bin("islewatchd"), path);
    cr_expect_eq(st, 0);
    char want[200];
    snprintf(want, sizeof(want), "<3>%s:2:14: error: broker.keepalive", path);
    cr_expect(out != NULL && strstr(out, want) != NULL, "no %s in: %s", want, out ? out : "");
    cr_expect(out != NULL && strstr(out, "<3>islewatchd: 1 configuration error; not starting") != NULL,
              "%s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "rc=1") != NULL, "%s", out ? out : "");
    free(out);
}

/* Wait for a message on c whose topic starts with prefix; NULL at the deadline. */
static struct it_msg *next_on(struct it_client *c, const char *prefix, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    while (it_now_ms() < end) {
        struct it_msg *m = it_next(c, (int)(end - it_now_ms()));
        if (m == NULL)
            return NULL;
        if (strncmp(m->topic, prefix, strlen(prefix)) == 0)
            return m;
        it_msg_free(m);
    }
    return NULL;
}

static void move_active_topic(bool restart)
{
    struct it_broker b;
    struct it_daemon d;
    char payload[128];

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b,
        "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n"
        "rules:\n  - {name: nh3, kind: threshold, select: \"water/*/*/nh3_n\", above: 2.0,\n"
        "     severity: major}\n"), 0);
    struct it_client *dev = it_client_new(&b, "ops-dev"), *sub = it_client_new(&b, "ops-sub");
    cr_assert_eq(it_subscribe(sub, "alerts/#", 1), 0);
    snprintf(payload, sizeof(payload), "{\"ts\":%lld,\"nh3_n\":2.5}", (long long)time(NULL) * 1000);
    cr_assert_eq(it_publish(dev, "sensors/water/r/w1", payload, 1, false), 0);
    struct it_msg *m = next_on(sub, "alerts/active/nh3/r/w1", 10000);
    cr_assert_not_null(m, "the firing state is retained on alerts/active/...");
    it_msg_free(m);

    cr_assert_eq(it_run(NULL, "printf 'alerts:\\n  active_topic: \"alerts/firing/{rule}/{site}/{device}\"\\n' >> '%s'",
                        d.cfg), 0);
    if (restart) {
        it_daemon_stop(&d);
        cr_assert_eq(it_daemon_restart(&d), 0);
    } else {
        it_daemon_signal(&d, SIGHUP);
        cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000));
    }
    m = next_on(sub, "alerts/firing/nh3/r/w1", 10000);
    cr_expect_not_null(m, "the firing alert's retained state is not on the new active_topic");
    cr_expect(m == NULL || m->len > 0, "an empty state on the new topic");
    it_msg_free(m);

    /* A subscriber that connects now must not be told nh3 fires on the old topic too. */
    struct it_client *late = it_client_new(&b, "ops-late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    m = it_next(late, 2000);
    cr_expect(m == NULL || m->len == 0, "a stale retained state stays on the old topic %s: %s",
              m ? m->topic : "", m ? m->payload : "");
    it_msg_free(m);
    it_client_free(late);
    it_client_free(dev);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(ops, a_reload_that_moves_active_topic_moves_the_retained_states, .timeout = 120)
{
    move_active_topic(false);
}

Test(ops, a_restart_that_moves_active_topic_moves_the_retained_states, .timeout = 120)
{
    move_active_topic(true);
}

/*
 * SPEC §3: a reload the start would refuse is refused, and the running config
 * stays. A token_file that cannot be read stops a start; on a reload it used
 * to count as a successful reload that left every state change refused (401).
 */
Test(ops, a_reload_with_an_unreadable_token_file_is_refused_and_the_token_stays, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    char base[64], token[256], *body = NULL;
    size_t len = 0;
    int status = 0;
    struct iw_diag diag = {0};
    FILE *f;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, NULL), 0);
    harness_token(&d, token, sizeof(token));
    cr_assert_eq(it_metric(&d, "islewatch_config_last_reload_successful"), 1);

    f = fopen(d.cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "broker:\n  url: mqtt://127.0.0.1:%d\n  reconnect_min: 100ms\n"
               "  reconnect_max: 1s\nhttp:\n  listen: 127.0.0.1:%d\n"
               "  token_file: %s/no-such.token\nstorage:\n  path: %s\n",
            b.port, d.http_port, d.dir, d.data);
    fclose(f);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "the running config stays", 1, 10000), "not refused");
    cr_expect(it_daemon_wait_log(&d, "no-such.token cannot be read", 1, 1000),
              "the refusal does not name the file");
    cr_expect_eq(it_metric(&d, "islewatch_config_last_reload_successful"), 0);

    /* The running token still opens state changes. */
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", d.http_port);
    cr_assert_eq(iw_http_request(base, "POST", "/api/v1/silences", token,
                                 "{\"match\":{\"site\":\"nowhere\"},\"duration\":\"1h\"}", &body,
                                 &len, &status, &diag), IW_OK, "%s", iw_diag_first(&diag));
    cr_expect(status == 200 || status == 201, "POST with the running token: %d %s", status,
              body ? body : "");
    free(body);
    iw_diag_fini(&diag);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* POST a silence with `token`; the HTTP status. */
static int post_silence(const struct it_daemon *d, const char *token)
{
    char base[64], *body = NULL;
    size_t len = 0;
    int status = 0;
    struct iw_diag diag = {0};

    snprintf(base, sizeof(base), "http://127.0.0.1:%d", d->http_port);
    cr_assert_eq(iw_http_request(base, "POST", "/api/v1/silences", token,
                                 "{\"match\":{\"site\":\"nowhere\"},\"duration\":\"1h\"}", &body,
                                 &len, &status, &diag), IW_OK, "%s", iw_diag_first(&diag));
    free(body);
    iw_diag_fini(&diag);
    return status;
}

/*
 * SPEC §7: rotating the token is writing a new one into token_file and
 * reloading. The new token works at once and the old one no longer does;
 * the reload's summary (which compares the YAML) said "no setting changed",
 * so the log now says the token changed.
 */
Test(ops, a_reload_takes_a_rotated_token_and_says_so, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d;
    char path[600], old[256];
    FILE *f;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d, &b, NULL), 0);
    harness_token(&d, old, sizeof(old));
    snprintf(path, sizeof(path), "%s/http.token", d.dir);
    cr_assert(post_silence(&d, old) / 100 == 2);

    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "rotated-token-2\n");
    fclose(f);
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 1, 10000));
    cr_expect(it_daemon_wait_log(&d, "http.token changed: requests that change state need the "
                                 "new one", 1, 1000), "the log does not say the token changed");
    cr_expect_eq(post_silence(&d, old), 401, "the old token still works");
    cr_expect(post_silence(&d, "rotated-token-2") / 100 == 2, "the new token does not work");

    /* A reload that leaves it alone does not say it changed. */
    it_daemon_signal(&d, SIGHUP);
    cr_assert(it_daemon_wait_log(&d, "reloaded", 2, 10000));
    cr_expect_not(it_daemon_wait_log(&d, "http.token changed", 2, 500));
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * Two daemons with one broker.client_id (a copied config, a second instance
 * started by mistake): the broker closes the older connection each time the
 * other one connects, without a reason. The log says what to look for.
 */
Test(ops, a_connection_taken_over_by_the_same_client_id_names_the_id, .timeout = 60)
{
    struct it_broker b;
    struct it_daemon d1, d2;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d1, &b, NULL), 0);
    cr_assert_eq(it_daemon_start(&d2, &b, NULL), 0);    /* the harness's id: the same one */
    bool hint = it_daemon_wait_log(&d1, "another client may be connecting with the client id", 1,
                                   15000) ||
                it_daemon_wait_log(&d2, "another client may be connecting with the client id", 1,
                                   1000);
    it_daemon_cleanup(&d2);
    it_daemon_cleanup(&d1);
    it_broker_stop(&b);
    cr_assert(hint, "neither log says why the connection keeps dropping (see %s, %s)", d1.log,
              d2.log);
}

/* An ACL for anonymous clients: the device, alert and rejected topics only. */
static void acl_without_the_check(struct it_broker *b)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/acl", b->dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("topic readwrite sensors/#\ntopic readwrite cameras/#\ntopic readwrite alerts/#\n"
          "topic readwrite islewatch/rejected/#\n", f);
    fclose(f);
}

/* The retained-state check at connect (ARCHITECTURE.md) reads the active
 * alert topics on a connection of its own, "<client id>-check", and
 * publishes a marker on islewatch/retained-check/<client id>. A broker whose
 * ACL does not allow that is named with what to allow, and the daemon goes
 * on: its own connection is up and it ends cleanly. (mosquitto 2.0.11
 * grants a denied SUBSCRIBE and drops a denied PUBLISH: the marker never
 * comes, and the publisher gives up after 10 s.) */
Test(ops, a_broker_acl_refusing_the_retained_state_check_is_named_and_harmless, .init = setup,
     .fini = teardown)
{
    struct it_broker b;
    char broker[512], *out = NULL;

    broker_with(&b, "allow_anonymous true\nacl_file %s/acl\n", acl_without_the_check);
    snprintf(broker, sizeof(broker), "broker:\n  url: mqtt://127.0.0.1:%d\n"
             "  reconnect_min: 100ms\n  reconnect_max: 500ms\n", b.port);
    const char *cfg = write_config(broker);
    int st = it_run(&out, "timeout --preserve-status -s TERM 14 %s -c '%s' 2>&1",
                    it_bin("islewatchd"), cfg);
    it_broker_stop(&b);
    cr_expect_eq(st, 0, "SIGTERM must end the daemon with 0: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "connection 0 up to") != NULL,
              "the daemon's own connection is not affected: %s", out ? out : "");
    cr_expect(out != NULL && (strstr(out, "cannot read back the retained alert states") != NULL
                              || strstr(out, "could not be read back within 10 s") != NULL),
              "the refused check must be said: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, "client id \"islewatchd-check\"") != NULL
                  && strstr(out, "islewatch/retained-check/islewatchd") != NULL
                  && strstr(out, "ACL") != NULL,
              "the line must name the client id and the topic to allow: %s", out ? out : "");
    cr_expect(out != NULL && strstr(out, " ERROR ") == NULL, "no error: %s", out ? out : "");
    free(out);
}

/* The check of a connect that the broker cut short (it went away while the
 * check was reading) is done by the next connect's check. Before, the
 * publisher took the failure as "no check" and set every firing state again
 * into the closed connection, where Paho queued the copies: to a broker that
 * came back with its store they were repeats. */
Test(ops, a_check_cut_short_by_the_broker_going_away_is_done_at_the_next_connect, .init = setup,
     .fini = teardown)
{
    struct it_broker b;
    struct it_daemon d;
    char sample[128];

    /* The marker is refused: the first connect's check reads (for 10 s) when the broker goes. */
    broker_with(&b, "allow_anonymous true\nacl_file %s/acl\n", acl_without_the_check);
    cr_assert_eq(it_daemon_start(&d, &b,
                                 "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\","
                                 " qos: 1}\nrules:\n  - {name: nh3, kind: threshold, select: "
                                 "\"water/*/*/nh3_n\", above: 1.5, severity: major}\n"), 0);
    struct it_client *sub = it_client_new(&b, "sub"), *dev = it_client_new(&b, "dev");
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    snprintf(sample, sizeof(sample), "{\"ts\":%lld,\"nh3_n\":2.0}", (long long)time(NULL) * 1000 - 60000);
    cr_assert_eq(it_publish(dev, "sensors/water/x/w01", sample, 1, false), 0);
    struct it_msg *a = it_next(sub, 10000);
    cr_assert_not_null(a, "no firing alert (see %s)", d.log);
    it_msg_free(a);
    it_client_free(dev);
    it_client_free(sub);
    it_broker_stop_keep(&b);
    cr_assert(it_daemon_wait_log(&d, "cannot read back the retained alert states", 1, 5000),
              "the check was not cut short (see %s)", d.log);
    cr_assert_not(it_daemon_wait_log(&d, "set the retained state", 1, 1500),
                  "firing states set again into a closed connection (see %s)", d.log);

    /* Back without the ACL and without the retained state (no persistence). */
    broker_conf(&b, "allow_anonymous true\n");
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "checked the retained alert states on the broker", 1, 20000),
              "the next connect's check did not set the firing state (see %s)", d.log);
    cr_assert(it_daemon_wait_log(&d, "set the retained state of 1 firing", 1, 0), "see %s", d.log);
    struct it_client *late = it_client_new(&b, "late");
    cr_assert_eq(it_subscribe(late, "alerts/active/#", 1), 0);
    a = it_next(late, 10000);
    cr_assert(a != NULL && a->retained && strstr(a->payload, "\"status\":\"firing\"") != NULL,
              "a late subscriber sees nothing firing");
    it_msg_free(a);
    it_client_free(late);
    cr_assert_not(it_daemon_wait_log(&d, "set the retained state", 2, 500), "see %s", d.log);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/* ---- the broker refusing or ending the daemon's session ---- */

static const char water_only[] =
    "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\", qos: 1}\n";

/* Publish one water sample and wait until the daemon counts `want` received. */
static bool received(const struct it_broker *b, const struct it_daemon *d, double want)
{
    struct it_client *dev = it_client_new(b, "it-ops-dev");
    char sample[96];
    cr_assert_not_null(dev);
    snprintf(sample, sizeof(sample), "{\"ts\":%lld,\"ph\":7.1}", (long long)time(NULL) * 1000);
    cr_assert_eq(it_publish(dev, "sensors/water/x/w01", sample, 1, false), 0);
    it_client_free(dev);
    for (int i = 0; i < 100; i++) {
        if (it_metric(d, "islewatch_messages_received_total{source=\"water\"}") >= want)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static int readyz(const struct it_daemon *d, char **body)
{
    char base[64];
    size_t len = 0;
    int status = 0;
    struct iw_diag diag = {0};
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", d->http_port);
    *body = NULL;
    if (iw_http_request(base, "GET", "/readyz", NULL, NULL, body, &len, &status, &diag) != IW_OK)
        status = -1;
    iw_diag_fini(&diag);
    return status;
}

/* A broker with mosquitto's dynamic-security plugin (mosquitto 2.0's
 * acl_file grants a denied SUBSCRIBE), administered by user admin: role "r"
 * may subscribe to and publish on everything, and anonymous clients have it
 * (dynsec_roles). */
static void dynsec_files(struct it_broker *b)
{
    cr_assert_eq(it_run(NULL, "mosquitto_ctrl dynsec init '%s/dynsec.json' admin adminpw "
                        ">/dev/null 2>&1", b->dir), 0);
}

static void dynsec(const struct it_broker *b, const char *command)
{
    cr_assert_eq(it_run(NULL, "mosquitto_ctrl -h 127.0.0.1 -p %d -u admin -P adminpw dynsec %s "
                        ">/dev/null 2>&1", b->port, command), 0, "dynsec %s", command);
}

/* Role "r", given to anonymous clients: subscribe to everything, publish on
 * the patterns of `publish` (NULL-terminated; NULL: everything). */
static void dynsec_roles(const struct it_broker *b, const char *const *publish)
{
    static const char *const all[] = { "#", NULL };
    char cmd[160];

    dynsec(b, "createRole r");
    dynsec(b, "addRoleACL r subscribePattern '#' allow");
    for (const char *const *p = publish != NULL ? publish : all; *p != NULL; p++) {
        snprintf(cmd, sizeof(cmd), "addRoleACL r publishClientSend '%s' allow", *p);
        dynsec(b, cmd);
    }
    dynsec(b, "createGroup anon");
    dynsec(b, "addGroupRole anon r");
    dynsec(b, "setAnonymousGroup anon");
}

static const char dynsec_broker[] =
    "allow_anonymous true\nper_listener_settings false\n"
    "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\n"
    "plugin_opt_config_file %s/dynsec.json\n";

/*
 * MQTT 5 lets the broker end a session with DISCONNECT (an administrator's
 * kick, a session taken over, a shutdown). Paho reports that apart from a
 * lost connection: the daemon used to keep the connection marked up, say
 * ready, and never connect again. Here the broker's administrator disables
 * the daemon's user for a moment.
 */
Test(ops, an_mqtt5_disconnect_from_the_broker_is_reconnected, .init = setup, .fini = teardown,
     .timeout = 90)
{
    struct it_broker b;
    struct it_daemon d;
    char creds[400], *body = NULL;
    FILE *f;

    broker_with(&b, dynsec_broker, dynsec_files);
    dynsec_roles(&b, NULL);
    dynsec(&b, "createClient islew -p islewpw");
    dynsec(&b, "addClientRole islew r");
    snprintf(creds, sizeof(creds), "%s/broker.pass", dir);
    cr_assert_not_null(f = fopen(creds, "w"));
    fputs("islewpw\n", f);
    fclose(f);
    cr_assert_eq(it_daemon_start(&d, &b, water_only), 0);
    snprintf(creds, sizeof(creds), "username: islew\\n  password_file: %s/broker.pass\\n"
             "  protocol: \"5\"", dir);
    cr_assert_eq(it_daemon_set_broker(&d, creds), 0);
    cr_assert(received(&b, &d, 1), "the daemon did not receive before the kick (see %s)", d.log);

    dynsec(&b, "disableClient islew");
    cr_assert(it_daemon_wait_log(&d, "the broker disconnected it (reason", 1, 10000),
              "the DISCONNECT is not said (see %s)", d.log);
    dynsec(&b, "enableClient islew");
    for (int i = 0; i < 150 && it_metric(&d, "islewatch_broker_reconnects_total") < 1; i++)
        usleep(100 * 1000);
    cr_expect_geq(it_metric(&d, "islewatch_broker_reconnects_total"), 1,
                  "the daemon did not connect again (see %s)", d.log);
    cr_expect(received(&b, &d, 2), "nothing received after the kick (see %s)", d.log);
    cr_expect_eq(readyz(&d, &body), 200, "%s", body ? body : "");
    free(body);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A SUBSCRIBE the broker refuses (its ACL): said with the topic and what to
 * allow, /readyz not ready, and asked for again with backoff, so the fix on
 * the broker takes effect without a restart. Under MQTT 3.1.1 the refusal
 * (granted QoS 0x80) used to pass for a subscription: ready, and nothing came.
 */
static void refused_then_granted(const char *protocol_line)
{
    struct it_broker b;
    struct it_daemon d;
    char *body = NULL;

    broker_with(&b, dynsec_broker, dynsec_files);
    dynsec_roles(&b, NULL);
    cr_assert_eq(it_daemon_start(&d, &b, water_only), 0);   /* it waits for a subscription */
    if (protocol_line != NULL)
        cr_assert_eq(it_daemon_set_broker(&d, protocol_line), 0);
    /* Denied from now on (the plugin keeps it in dynsec.json): a broker restart
     * makes the daemon SUBSCRIBE again. */
    dynsec(&b, "removeRoleACL r subscribePattern '#'");
    it_broker_stop_keep(&b);
    cr_assert_eq(it_broker_restart(&b), 0);
    cr_assert(it_daemon_wait_log(&d, "the broker refused the subscription to 1 source topic(s) "
                                 "(first: sensors/water/+/+", 1, 15000),
              "the refusal is not said with its topic (see %s)", d.log);
    cr_expect(it_daemon_wait_log(&d, "in the broker's ACL", 1, 0), "see %s", d.log);
    cr_expect_eq(readyz(&d, &body), 503, "ready while nothing can come: %s", body ? body : "");
    cr_expect(body != NULL && strstr(body, "refused the subscription") != NULL, "%s",
              body ? body : "");
    free(body);
    cr_expect_eq(it_metric(&d, "islewatch_broker_subscriptions_refused"), 1);

    dynsec(&b, "addRoleACL r subscribePattern '#' allow");
    cr_assert(it_daemon_wait_log(&d, "(the broker grants them now)", 1, 20000),
              "the subscription was not asked for again (see %s)", d.log);
    cr_expect(received(&b, &d, 1), "nothing received once granted (see %s)", d.log);
    cr_expect_eq(readyz(&d, &body), 200, "%s", body ? body : "");
    free(body);
    cr_expect_eq(it_metric(&d, "islewatch_broker_subscriptions_refused"), 0);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

Test(ops, a_refused_subscription_is_said_not_ready_and_retried, .init = setup, .fini = teardown,
     .timeout = 90)
{
    refused_then_granted(NULL);
}

Test(ops, a_refused_subscription_is_said_not_ready_and_retried_over_mqtt5, .init = setup,
     .fini = teardown, .timeout = 90)
{
    refused_then_granted("protocol: \"5\"");
}

/*
 * MQTT 5: a broker ACL that does not let the daemon publish on the alert
 * topics answers each alert with PUBACK reason 135 (Not authorized). That
 * was counted as acknowledged without a word; it is said with what to
 * allow, and counted.
 */
Test(ops, an_alert_the_broker_refuses_over_mqtt5_is_said, .init = setup, .fini = teardown,
     .timeout = 90)
{
    struct it_broker b;
    struct it_daemon d;
    char sample[96];

    broker_with(&b, dynsec_broker, dynsec_files);
    static const char *const no_alerts[] = { "sensors/#", "islewatch/#", NULL };
    dynsec_roles(&b, no_alerts);
    cr_assert_eq(it_daemon_start(&d, &b,
                                 "sources:\n  - {name: water, topic: \"sensors/water/{site}/{device}\","
                                 " qos: 1}\nrules:\n  - {name: nh3, kind: threshold, select: "
                                 "\"water/*/*/nh3_n\", above: 1.5, severity: major}\n"), 0);
    cr_assert_eq(it_daemon_set_broker(&d, "protocol: \"5\""), 0);
    struct it_client *dev = it_client_new(&b, "it-ops-dev");
    cr_assert_not_null(dev);
    snprintf(sample, sizeof(sample), "{\"ts\":%lld,\"nh3_n\":2.0}",
             (long long)time(NULL) * 1000 - 60000);
    cr_assert_eq(it_publish(dev, "sensors/water/x/w01", sample, 1, false), 0);
    it_client_free(dev);
    cr_assert(it_daemon_wait_log(&d, "the broker refused alert message seq=1 (reason 135", 1,
                                 15000), "the refusal is not said (see %s)", d.log);
    cr_expect(it_daemon_wait_log(&d, "to publish on alerts.topic and alerts.active_topic in the "
                                 "broker's ACL", 1, 0), "see %s", d.log);
    cr_expect_geq(it_metric(&d, "islewatch_alerts_refused_total"), 1);
    cr_expect_eq(it_metric(&d, "islewatch_alert_acked_seq"), 0, "a refused seq counts as "
                 "acknowledged");

    /* The ACL fixed, a restart sends the refused message again. */
    it_daemon_stop(&d);
    dynsec(&b, "addRoleACL r publishClientSend 'alerts/#' allow");
    struct it_client *sub = it_client_new(&b, "it-ops-sub");
    cr_assert_not_null(sub);
    cr_assert_eq(it_subscribe(sub, "alerts/major/#", 1), 0);
    cr_assert_eq(it_daemon_restart(&d), 0);
    struct it_msg *a = it_next(sub, 15000);
    cr_assert_not_null(a, "the refused alert was not sent again (see %s)", d.log);
    cr_expect(strstr(a->payload, "\"seq\":1,") != NULL && strstr(a->payload, "firing") != NULL,
              "%s", a->payload);
    it_msg_free(a);
    it_client_free(sub);
    it_daemon_cleanup(&d);
    it_broker_stop(&b);
}

/*
 * A copy of a database (a restore into a second instance with its own
 * client id) carries the first instance's session record. The copy used to
 * take that session as an old one of its own, and the two then took the id
 * from each other every second, the copy storing the other's messages. Now
 * a drain whose connection drops gives up until its next start.
 */
Test(ops, a_copied_database_does_not_fight_over_the_original_session, .init = setup,
     .fini = teardown, .timeout = 120)
{
    struct it_broker b;
    struct it_daemon d1, d2;

    cr_assert_eq(it_broker_start(&b), 0);
    cr_assert_eq(it_daemon_start(&d1, &b, water_only), 0);
    it_daemon_stop(&d1);
    cr_assert_eq(it_daemon_start(&d2, &b, water_only), 0);
    it_daemon_stop(&d2);
    cr_assert_eq(it_run(NULL, "rm -rf '%s' && cp -a '%s' '%s' && rm -f '%s/LOCK' && "
                        "sed -i 's/client_id: islewatchd-it-/client_id: copy-it-/' '%s'",
                        d2.data, d1.data, d2.data, d2.data, d2.cfg), 0);
    cr_assert_eq(it_daemon_restart(&d1), 0);
    cr_assert_eq(it_daemon_restart(&d2), 0);
    cr_assert(it_daemon_wait_log(&d2, "while its messages were being taken", 1, 15000),
              "the copy did not give the session up (see %s)", d2.log);
    sleep(2);                             /* the original is back (reconnect_min 100ms) */
    double before = it_metric(&d1, "islewatch_messages_received_total{source=\"water\"}");
    struct it_client *dev = it_client_new(&b, "it-ops-dev");
    cr_assert_not_null(dev);
    for (int i = 0; i < 20; i++) {
        char sample[96];
        snprintf(sample, sizeof(sample), "{\"ts\":%lld,\"ph\":7.%d}",
                 (long long)time(NULL) * 1000 - 1000 * i, i % 10);
        cr_assert_eq(it_publish(dev, "sensors/water/x/w01", sample, 1, false), 0);
    }
    it_client_free(dev);
    for (int i = 0; i < 100 && it_metric(&d1, "islewatch_messages_received_total{source=\"water\"}")
                                   < before + 20; i++)
        usleep(100 * 1000);
    cr_expect_eq(it_metric(&d1, "islewatch_messages_received_total{source=\"water\"}"),
                 before + 20, "the original lost messages to the copy (see %s, %s)", d1.log,
                 d2.log);
    it_daemon_cleanup(&d2);
    it_daemon_cleanup(&d1);
    it_broker_stop(&b);
}
