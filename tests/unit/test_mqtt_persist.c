/*
 * Paho's persistence callbacks backed by the store (server/mqtt_persist.c),
 * called the way Paho 1.3 calls them for QoS 2 deliveries: put "r-<id>" on
 * arrival, remove "r5-<id>" and "r-<id>" after the callback. The remove of an
 * "r-" record is deferred into the next put's batch; these tests check that it
 * is never lost for good, never deletes a newer record, and that what a restart
 * reads back is right.
 */
#include <criterion/criterion.h>
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
