/*
 * Paho's persistence callbacks backed by the store (server/mqtt_persist.c),
 * called the way Paho 1.3 calls them for QoS 2 deliveries: put "r-<id>" on
 * arrival, remove "r5-<id>" and "r-<id>" after the callback. The remove of an
 * "r-" record is deferred into the next put's batch; these tests check that it
 * is never lost for good, never deletes a newer record, and that what a restart
 * reads back is right; that receipt keys live exactly as long as their
 * exchange; and the decoding of the MQTT 5 records iw_mqtt_replay reads.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <MQTTAsync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/store.h"
#include "../../server/mqtt_persist.h"

static char dir[256];
static struct iw_store *st;
static MQTTClient_persistence per;
static void *h;
/* Never connected: creating a client sets up Paho's heap tracking, as in the
 * daemon, so the MQTTAsync_free of what pget and pkeys return below frees it
 * only if it came from MQTTAsync_malloc (otherwise LeakSanitizer reports it). */
static MQTTAsync paho;

static void open_all(void)
{
    struct iw_diag diag = {0};
    struct iw_store_opts o = { .path = dir, .max_series = 64 };
    cr_assert_eq(iw_store_open(&o, &st, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_mqtt_persistence_init(&per, st);
    cr_assert_eq(per.popen(&h, "iw-test", "tcp://127.0.0.1:1", per.context), 0);
}

static void close_all(void)
{
    cr_assert_eq(per.pclose(h), 0);
    iw_store_close(st);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/iw-persist-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(MQTTAsync_create(&paho, "tcp://127.0.0.1:1", "iw-test-heap",
                                  MQTTCLIENT_PERSISTENCE_NONE, NULL), MQTTASYNC_SUCCESS);
    open_all();
}

static void teardown(void)
{
    close_all();
    MQTTAsync_destroy(&paho);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(persist, .init = setup, .fini = teardown, .timeout = 30);

static void put(const char *key, const char *a, const char *b)
{
    char *bufs[2] = { (char *)a, (char *)b };
    int lens[2] = { (int)strlen(a), (int)strlen(b) };
    cr_assert_eq(per.pput(h, (char *)key, 2, bufs, lens), 0, "put %s", key);
}

static bool has(const char *key) { return per.pcontainskey(h, (char *)key) == 0; }

static char *get(const char *key)
{
    char *buf = NULL;
    int len = 0;
    if (per.pget(h, (char *)key, &buf, &len) != 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    memcpy(s, buf, (size_t)len);
    s[len] = '\0';
    MQTTAsync_free(buf);                /* as Paho does */
    return s;
}

static int nkeys(void)
{
    char **keys = NULL;
    int n = 0;
    cr_assert_eq(per.pkeys(h, &keys, &n), 0);
    for (int i = 0; i < n; i++)
        MQTTAsync_free(keys[i]);       /* as Paho does */
    MQTTAsync_free(keys);
    return n;
}

Test(persist, qos2_cycle_leaves_nothing_once_removes_are_flushed)
{
    for (int id = 1; id <= 200; id++) {
        char k[16], k5[16];
        snprintf(k, sizeof(k), "r-%d", id);
        snprintf(k5, sizeof(k5), "r5-%d", id);
        put(k, "hdr", "payload");
        cr_assert_eq(per.premove(h, k5), 0, "an MQTT 5 key never written: nothing to do");
        cr_assert_eq(per.premove(h, k), 0);
    }
    cr_assert_eq(nkeys(), 0, "pkeys writes the deferred removes first");
    cr_assert_not(has("r-200"));
}

Test(persist, deferred_remove_never_deletes_a_newer_record_of_the_same_id)
{
    put("r-7", "old", "");
    cr_assert_eq(per.premove(h, "r-7"), 0);          /* deferred */
    put("r-7", "new", "er");                         /* same id reused by the broker */
    char *v = get("r-7");
    cr_assert_not_null(v, "the newer record must survive its predecessor's remove");
    cr_assert_str_eq(v, "newer");
    free(v);
}

Test(persist, records_survive_reopen_and_handled_ones_do_not)
{
    put("r-1", "one", "");
    put("r-2", "two", "");
    cr_assert_eq(per.premove(h, "r-1"), 0);          /* handled */
    put("r-3", "three", "");                         /* carries r-1's remove */
    put("s-9", "outgoing", "");                      /* other keys are written at once */
    close_all();
    open_all();
    cr_assert_not(has("r-1"));
    char *v = get("r-2");
    cr_assert_not_null(v);
    cr_assert_str_eq(v, "two");
    free(v);
    cr_assert(has("r-3"));
    cr_assert(has("s-9"));
    cr_assert_eq(nkeys(), 3);
    cr_assert_eq(per.pclear(h), 0);
    cr_assert_eq(nkeys(), 0);
}

Test(persist, a_remove_deferred_at_close_is_written_by_close)
{
    put("r-5", "x", "");
    cr_assert_eq(per.premove(h, "r-5"), 0);
    close_all();
    open_all();
    cr_assert_not(has("r-5"), "pclose flushes the deferred remove");
}

Test(persist, more_than_the_deferral_limit_all_get_removed)
{
    for (int id = 1; id <= 300; id++) {
        char k[16];
        snprintf(k, sizeof(k), "r-%d", id);
        put(k, "m", "");
    }
    for (int id = 1; id <= 300; id++) {              /* 300 removes with no put between */
        char k[16];
        snprintf(k, sizeof(k), "r-%d", id);
        cr_assert_eq(per.premove(h, k), 0);
    }
    cr_assert_eq(nkeys(), 0);
}

/* ---- receipt keys (the time given a QoS 2 message without ts, and over
 * MQTT 5 the mark of a handled message) ---- */

static void set_receipt(int id)
{
    char rk[IW_RECEIPT_KEY_MAX];
    cr_assert_eq(iw_mqtt_receipt_key("iw-test", id, rk, sizeof(rk)), 0);
    cr_assert_eq(iw_store_meta_put(st, rk, "12345678", 8), IW_OK);
}

static bool has_receipt(int id)
{
    char rk[IW_RECEIPT_KEY_MAX];
    void *v = NULL;
    size_t len;
    cr_assert_eq(iw_mqtt_receipt_key("iw-test", id, rk, sizeof(rk)), 0);
    bool found = iw_store_meta_get(st, rk, &v, &len) == IW_OK;
    free(v);
    return found;
}

/* A PUBLISH's fixed header as Paho's first buffer: QoS 2 (0x34), DUP (0x08). */
#define PUB_QOS2 "\x34\x05"
#define PUB_QOS2_DUP "\x3c\x05"

Test(persist, a_new_publish_on_an_id_drops_its_receipt_key_a_dup_resend_keeps_it)
{
    put("r5-4", PUB_QOS2, "rest");
    set_receipt(4);                                  /* handled on arrival (MQTT 5) */
    put("r5-4", PUB_QOS2_DUP, "rest");               /* the broker resends the same exchange */
    cr_assert(has_receipt(4), "a DUP resend is the message that was handled: keep its mark");
    put("r5-4", PUB_QOS2_DUP, "other");              /* DUP, but not this record's message */
    cr_assert_not(has_receipt(4), "another message with DUP set must not inherit the mark");
    set_receipt(4);
    put("r5-4", PUB_QOS2, "other");                  /* a new exchange on the id */
    cr_assert_not(has_receipt(4), "a new message on the id must not inherit the old mark");
    set_receipt(5);
    put("r-5", PUB_QOS2, "rest");
    cr_assert_not(has_receipt(5), "the same for MQTT 3.1.1 keys");
}

/* A broker that reuses an id at once can resend a new message with DUP set
 * after the old exchange's remove: it is a new message even if the bytes match. */
Test(persist, a_dup_after_its_ids_exchange_ended_is_a_new_message)
{
    put("r-8", PUB_QOS2, "same");
    set_receipt(8);
    cr_assert_eq(per.premove(h, "r-8"), 0);          /* deferred: the exchange is over */
    put("r-8", PUB_QOS2_DUP, "same");
    cr_assert_not(has_receipt(8));
}

Test(persist, the_end_of_an_exchange_drops_its_receipt_key)
{
    put("r5-6", PUB_QOS2, "rest");
    set_receipt(6);                                  /* written with the samples */
    cr_assert_eq(per.premove(h, "r5-6"), 0);         /* PUBREL: deferred */
    cr_assert_eq(per.premove(h, "r-6"), 0);
    cr_assert(has_receipt(6), "deferred with its record");
    put("r5-7", PUB_QOS2, "rest");                   /* the next put writes the removes */
    cr_assert_not(has("r5-6"));
    cr_assert_not(has_receipt(6), "a DUP of a later exchange on id 6 must not find it");
}

/* ---- decoding the PUBLISH Paho persisted, and finding the MQTT 5 ones ---- */

/* PUBLISH QoS 2, topic "a/b", id 0x0102, [properties], payload "hi". */
static const unsigned char pub5[] = { 0x34, 12, 0, 3, 'a', '/', 'b', 1, 2, 2, 0x01, 0x01, 'h', 'i' };
static const unsigned char pub3[] = { 0x35, 9, 0, 3, 'a', '/', 'b', 1, 2, 'h', 'i' };

Test(persist, an_mqtt5_publish_decodes_past_its_properties)
{
    struct iw_mqtt_publish p;
    cr_assert_eq(iw_mqtt_publish_decode(pub5, sizeof(pub5), true, &p), IW_OK);
    cr_expect_eq(p.msgid, 0x0102);
    cr_expect_eq(p.tlen, 3);
    cr_expect_eq(memcmp(p.topic, "a/b", 3), 0);
    cr_expect_eq(p.plen, 2);
    cr_expect_eq(memcmp(p.payload, "hi", 2), 0);
    cr_expect_not(p.retained);
}

Test(persist, an_mqtt311_publish_decodes_with_its_retain_flag)
{
    struct iw_mqtt_publish p;
    cr_assert_eq(iw_mqtt_publish_decode(pub3, sizeof(pub3), false, &p), IW_OK);
    cr_expect_eq(p.msgid, 0x0102);
    cr_expect_eq(p.plen, 2);
    cr_expect_eq(memcmp(p.payload, "hi", 2), 0);
    cr_expect(p.retained);
}

Test(persist, a_cut_short_or_foreign_packet_does_not_decode)
{
    struct iw_mqtt_publish p;
    unsigned char b[sizeof(pub5)];
    for (size_t n = 0; n < sizeof(pub5); n++)
        cr_expect_eq(iw_mqtt_publish_decode(pub5, n, true, &p), IW_E_INVAL, "cut at %zu", n);
    memcpy(b, pub5, sizeof(b));
    b[0] = 0x32;                                     /* QoS 1: never persisted on arrival */
    cr_expect_eq(iw_mqtt_publish_decode(b, sizeof(b), true, &p), IW_E_INVAL);
    memcpy(b, pub5, sizeof(b));
    b[9] = 9;                                        /* properties longer than the packet */
    cr_expect_eq(iw_mqtt_publish_decode(b, sizeof(b), true, &p), IW_E_INVAL);
    memcpy(b, pub5, sizeof(b));
    b[7] = b[8] = 0;                                 /* message id 0 */
    cr_expect_eq(iw_mqtt_publish_decode(b, sizeof(b), true, &p), IW_E_INVAL);
}

static int collect(void *ctx, const struct iw_mqtt_publish *p)
{
    int *ids = ctx;
    ids[ids[0]++ + 1] = p->msgid;
    return 0;
}

Test(persist, the_scan_finds_the_mqtt5_records_still_kept_and_skips_bad_ones)
{
    char *bufs[2] = { (char *)pub5, (char *)pub5 + 2 };
    int lens[2] = { 2, (int)sizeof(pub5) - 2 };
    int ids[8] = {0};
    cr_assert_eq(per.pput(h, "r5-258", 2, bufs, lens), 0);
    put("r5-9", "garbage", "");                      /* logged and skipped */
    put("r-11", PUB_QOS2, "rest");                   /* 3.1.1: Paho redelivers those itself */
    cr_assert_eq(iw_mqtt_received_v5_scan(st, "iw-test", collect, ids), IW_OK);
    cr_assert_eq(ids[0], 1);
    cr_expect_eq(ids[1], 258);
    cr_assert_eq(per.premove(h, "r5-258"), 0);
    put("r5-10", PUB_QOS2, "rest");                  /* flushes the remove */
    ids[0] = 0;
    cr_assert_eq(iw_mqtt_received_v5_scan(st, "iw-test", collect, ids), IW_OK);
    cr_expect_eq(ids[0], 0, "a released message is not replayed");
}

/*
 * A store that refuses writes (a full or read-only disk): Paho retries its
 * outgoing commands, each a new key, several times a second, and the broker
 * sends every unacknowledged QoS 2 message again. The complaint is
 * rate-limited like every other repeating condition, not one ERROR line per
 * attempt for as long as the disk stays full.
 */
Test(persist, a_store_that_refuses_writes_is_reported_rate_limited)
{
    struct iw_diag diag = {0};
    struct iw_store_opts o = { .path = dir, .max_series = 64, .read_only = true };
    struct iw_store *ro = NULL;
    MQTTClient_persistence rper;
    void *rh = NULL;
    char key[32], out[8192] = "";
    int lines = 0;

    cr_assert_eq(iw_store_open(&o, &ro, &diag), IW_OK, "%s", iw_diag_first(&diag));
    iw_mqtt_persistence_init(&rper, ro);
    cr_assert_eq(rper.popen(&rh, "iw-test-ro", "tcp://127.0.0.1:1", rper.context), 0);
    fflush(stderr);
    cr_redirect_stderr();
    for (int i = 1; i <= 50; i++) {
        char *bufs[1] = { (char *)"cmd" };
        int lens[1] = { 3 };
        snprintf(key, sizeof(key), "q-%d", i);
        cr_assert_neq(rper.pput(rh, key, 1, bufs, lens), 0, "a read-only store took %s", key);
    }
    for (int i = 1; i <= 50; i++) {              /* QoS 2 deliveries the broker sends again */
        char *bufs[2] = { (char *)PUB_QOS2, (char *)"rest" };
        int lens[2] = { 2, 4 };
        snprintf(key, sizeof(key), "r-%d", i);
        cr_assert_neq(rper.pput(rh, key, 2, bufs, lens), 0, "a read-only store took %s", key);
    }
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    cr_assert(lines >= 2 && lines <= 10, "%d lines for 100 failed writes:\n%s", lines, out);
    cr_assert(strstr(out, "cannot persist MQTT state") != NULL, "%s", out);
    cr_assert(strstr(out, "cannot persist the QoS 2 message") != NULL, "%s", out);
    rper.pclose(rh);
    iw_store_close(ro);
}
