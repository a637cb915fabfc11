/*
 * Paho's persistence store (MQTTClient_persistence callbacks) kept in
 * islewatch's own RocksDB, under metadata keys "paho/<client id>/<key>".
 *
 * Why: with QoS 2, Paho persists every incoming PUBLISH on arrival and
 * removes it once the application has handled it (SPEC §2: nothing lost,
 * nothing twice across kill -9). Paho's default file store does that with a
 * file create, write, close and unlink per message, which measured ~8x the
 * CPU of the rest of the message path (bench/RESULTS.md). Here it is one WAL
 * append per message, in the database that must be consistent with the
 * samples anyway.
 *
 * Per QoS 2 message Paho 1.3 calls pput("r-<id>") when the PUBLISH arrives
 * (before it sends PUBREC), then, once on_message has stored the samples,
 * premove("r5-<id>") and premove("r-<id>") (it removes the MQTT 5 key of the
 * same id too, just in case). Over MQTT 5 (broker.protocol) the key is
 * "r5-<id>", Paho calls on_message right after PUBREC, and the removes come
 * with PUBREL. Written one by one that is three RocksDB writes beside the
 * sample write. Two things make it one:
 *
 *  - MQTT 5 keys ("r5-", "s5-", "c5-", ...) are never written by a 3.1.1
 *    client; a remove of one is skipped unless such a key was put or found
 *    at open (v5_keys).
 *  - The remove of "r-<id>" or "r5-<id>" is deferred: kept in `pend` and
 *    written in the same batch as the next such put, which comes with the next
 *    PUBLISH. Losing a deferred remove to kill -9 leaves the record of a
 *    message that is stored and whose exchange is complete: Paho restores it
 *    as "awaiting PUBREL", and the broker never sends that PUBREL (the exchange
 *    is complete) or reuses the id with a new PUBLISH, which replaces it.
 *    Nothing is lost or stored twice (a PUBREL resent because PUBCOMP did not
 *    get out redelivers a 3.1.1 message, which rewrites the same points: SPEC
 *    §2's idempotent redelivery, as before; iw_mqtt_replay skips an MQTT 5
 *    one by its receipt key). A deferred remove is always written before any
 *    later put of the same key (same batch, earlier), so it never deletes a
 *    newer message. At most PEND_MAX are deferred; reads and close flush.
 *
 * Receipt keys (iw_mqtt_receipt_key): a message without ts that was stored
 * under a time of receipt keeps that time for a redelivery of the same
 * exchange; over MQTT 5 every handled QoS 2 message leaves one, the mark
 * iw_mqtt_replay reads. So the key must live exactly as long as its exchange:
 * a put deletes the id's key in its batch (a new message on the id) unless
 * the PUBLISH is the broker resending this exchange's PUBLISH (DUP set and the
 * same bytes as the record: same_exchange), which may have been handled (over
 * MQTT 5 it is handled on arrival), and each deferred remove deletes it too
 * (the exchange is over).
 *
 * Threads: Paho calls these from its own threads. RocksDB is thread-safe.
 * `pend`, `vbuf` and `wb` are touched only for "r-" keys and by pkeys, pclear
 * and pclose; Paho (1.3, MQTTAsync) makes all of those calls with its global
 * mqttasync_mutex held (MQTTAsync_cycle reads the PUBLISH and PUBREL under
 * it; create, cleanSession and destroy hold it), and that mutex orders our
 * accesses. Commands ("c-" keys, persisted under Paho's command_mutex from the
 * publishing thread) never touch them.
 *
 * Memory handed to Paho (pget's buffer, pkeys' array and keys), which Paho
 * frees, comes from MQTTAsync_malloc. Debian's Paho is built with its heap
 * tracking: its free() of a block it did not allocate logs an error and
 * leaves the block, so a plain malloc here leaked ~400 bytes per alert
 * published (Paho reads each queued publish back with pget before sending).
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <MQTTAsync.h>

#include "islewatch/log.h"
#include "islewatch/store.h"
#include "mqtt_persist.h"

enum { PEND_MAX = 64, KEY_MAX = 512 };

struct handle {
    struct iw_store *st;
    char prefix[320];                 /* "paho/<client id>/" */
    size_t plen;
    char client_id[256];
    /* Set once an MQTT 5 key exists (put, or found at open); until then a
     * remove of one has nothing to delete. release in p_put and p_open pairs
     * with the acquire in p_remove, so a remove that follows a put on another
     * thread sees it. */
    atomic_bool v5_keys;
    /* Deferred removes of "r-" keys and the batch they go out in (see the top). */
    char pend[PEND_MAX][16];
    int n_pend;
    struct iw_wbatch *wb;
    char *vbuf;                       /* an "r-" value, its parts joined */
    size_t vcap;
};

/* "paho/<client id>/<key>" into out (cap bytes); -1 when it does not fit. */
static int key_of(const struct handle *h, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    if (h->plen + kl >= cap)
        return -1;
    memcpy(out, h->prefix, h->plen);
    memcpy(out + h->plen, key, kl + 1);
    return 0;
}

/* "r-123" or "r5-123": a received QoS 2 PUBLISH (MQTT 3.1.1 or 5), the keys
 * whose remove is deferred. */
static bool is_received(const char *key)
{
    return key[0] == 'r' && (key[1] == '-' || (key[1] == '5' && key[2] == '-'));
}

/* The message id of a received key ("r5-123": 123). */
static int received_id(const char *key)
{
    return atoi(strchr(key, '-') + 1);
}

/* Paho's MQTT 5 keys are its 3.1.1 prefixes with a '5' before the dash: "r5-", "sc5-". */
static bool is_v5(const char *key)
{
    size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyz");
    return n > 0 && key[n] == '5' && key[n + 1] == '-';
}

/* Add the deferred removes to h->wb (which the caller then writes), each with
 * its id's receipt key: the exchange is over. */
static int pend_to_batch(struct handle *h)
{
    char k[KEY_MAX], rk[IW_RECEIPT_KEY_MAX];
    for (int i = 0; i < h->n_pend; i++) {
        if (key_of(h, h->pend[i], k, sizeof(k)) != 0 ||
            iw_mqtt_receipt_key(h->client_id, received_id(h->pend[i]), rk, sizeof(rk)) != 0)
            return MQTTCLIENT_PERSISTENCE_ERROR;
        iw_wbatch_delete_meta(h->wb, k);
        iw_wbatch_delete_meta(h->wb, rk);
    }
    return 0;
}

/* Write the deferred removes now (before a read, a clear or close). */
static int pend_flush(struct handle *h)
{
    struct iw_diag diag = {0};

    if (h->n_pend == 0)
        return 0;
    iw_wbatch_clear(h->wb);
    if (pend_to_batch(h) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    if (iw_store_write(h->st, h->wb, &diag) != IW_OK) {
        IW_LOG_ERROR("mqtt", "cannot remove %d handled QoS 2 record(s) under %s: %s; they are "
                     "retried with the next write", h->n_pend, h->prefix, iw_diag_first(&diag));
        iw_diag_fini(&diag);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    h->n_pend = 0;
    return 0;
}

static int find_v5(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct handle *h = ctx;
    char k[64];
    (void)val;
    (void)vlen;
    if (klen - h->plen < sizeof(k)) {
        memcpy(k, key + h->plen, klen - h->plen);
        k[klen - h->plen] = '\0';
        if (is_v5(k)) {
            /* release: pairs with the acquire in p_remove. */
            atomic_store_explicit(&h->v5_keys, true, memory_order_release);
            return 1;
        }
    }
    return 0;
}

static void handle_free(struct handle *h)
{
    if (h == NULL)
        return;
    iw_wbatch_free(h->wb);
    free(h->vbuf);
    free(h);
}

static int p_open(void **handle, const char *client_id, const char *server_uri, void *context)
{
    struct handle *h = calloc(1, sizeof(*h));
    (void)server_uri;
    if (h == NULL || (h->wb = iw_wbatch_new()) == NULL) {
        IW_LOG_ERROR("mqtt", "cannot open the MQTT session store for %s: out of memory", client_id);
        handle_free(h);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    h->st = context;
    snprintf(h->prefix, sizeof(h->prefix), "paho/%s/", client_id);
    snprintf(h->client_id, sizeof(h->client_id), "%s", client_id);
    h->plen = strlen(h->prefix);
    atomic_init(&h->v5_keys, false);
    if (iw_store_meta_scan(h->st, h->prefix, find_v5, h) != IW_OK) {
        IW_LOG_ERROR("mqtt", "cannot read the MQTT session store under %s; check the database",
                     h->prefix);
        handle_free(h);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    *handle = h;
    return 0;
}

static int p_close(void *handle)
{
    struct handle *h = handle;
    int rc = pend_flush(h);         /* on failure: records of handled messages, harmless */
    handle_free(h);
    return rc;
}

/*
 * Whether the received PUBLISH just joined in h->vbuf (total bytes) for key
 * ("r-<id>", full key k) is the broker resending the one this id's record
 * already holds: DUP (0x08 in the fixed header) set, a record not released
 * (no remove of it pending) and the same bytes but for DUP. Its receipt key,
 * written if that message was handled (over MQTT 5 on arrival), must then
 * stay. A DUP alone is not enough: after a kill -9 that lost the deferred
 * remove of a finished exchange, a broker that reuses the id at once may
 * resend a *new* message with DUP set, which must not take the old one's
 * time. Only DUP puts (after a reconnect) pay the read.
 */
static bool same_exchange(struct handle *h, const char *key, const char *k, size_t total)
{
    void *v = NULL;
    size_t len = 0;
    bool same;

    if (total == 0 || (h->vbuf[0] & 0x08) == 0)
        return false;
    for (int i = 0; i < h->n_pend; i++)
        if (strcmp(h->pend[i], key) == 0)
            return false;
    if (iw_store_meta_get(h->st, k, &v, &len) != IW_OK)
        return false;
    same = len == total && ((((unsigned char *)v)[0] ^ (unsigned char)h->vbuf[0]) & ~0x08) == 0
           && memcmp((char *)v + 1, h->vbuf + 1, total - 1) == 0;
    free(v);
    return same;
}

static int p_put(void *handle, char *key, int bufcount, char *buffers[], int buflens[])
{
    struct handle *h = handle;
    struct iw_diag diag = {0};
    char k[KEY_MAX];
    size_t total = 0, at = 0;
    char *v;
    int rc;

    if (key_of(h, key, k, sizeof(k)) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    if (is_v5(key))       /* release: pairs with the acquire in p_remove */
        atomic_store_explicit(&h->v5_keys, true, memory_order_release);
    for (int i = 0; i < bufcount; i++)
        total += (size_t)buflens[i];

    if (!is_received(key)) {
        /* Commands and outgoing state: rare, from any thread. */
        v = malloc(total ? total : 1);
        if (v == NULL)
            return MQTTCLIENT_PERSISTENCE_ERROR;
        for (int i = 0; i < bufcount; i++) {
            memcpy(v + at, buffers[i], (size_t)buflens[i]);
            at += (size_t)buflens[i];
        }
        rc = iw_store_meta_put(h->st, k, v, total);
        free(v);
        if (rc != IW_OK) {
            /* Paho retries a refused command with a new key several times a
             * second for as long as the store refuses writes (a full disk). */
            static struct iw_complaint refused;
            iw_complain(&refused, IW_LOG_LEVEL_ERROR, "mqtt", "cannot persist MQTT state %s: %s "
                        "(check disk space and permissions of storage.path)", k, iw_strerror(rc));
            return MQTTCLIENT_PERSISTENCE_ERROR;
        }
        return 0;
    }

    /* A received QoS 2 PUBLISH: one write with the deferred removes, no allocation
     * once vbuf has grown to the largest packet. */
    if (total > h->vcap) {
        char *nb = realloc(h->vbuf, total);
        if (nb == NULL)
            return MQTTCLIENT_PERSISTENCE_ERROR;
        h->vbuf = nb;
        h->vcap = total;
    }
    for (int i = 0; i < bufcount; i++) {
        memcpy(h->vbuf + at, buffers[i], (size_t)buflens[i]);
        at += (size_t)buflens[i];
    }
    char rk[IW_RECEIPT_KEY_MAX];
    if (iw_mqtt_receipt_key(h->client_id, received_id(key), rk, sizeof(rk)) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    bool dup = same_exchange(h, key, k, total);
    iw_wbatch_clear(h->wb);
    if (pend_to_batch(h) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    if (!dup)
        iw_wbatch_delete_meta(h->wb, rk);                 /* a new message on this id */
    iw_wbatch_put_meta(h->wb, k, h->vbuf, total);         /* after the removes: it wins */
    /* A refused write comes back with every message the broker sends again,
     * for as long as the store refuses: rate-limited, as above. */
    static struct iw_complaint refused_q2;
    if (iw_wbatch_count(h->wb) != (size_t)h->n_pend * 2 + (dup ? 1 : 2)) {
        iw_complain(&refused_q2, IW_LOG_LEVEL_ERROR, "mqtt", "cannot persist the QoS 2 message "
                    "%s: out of memory; Paho will not acknowledge it", k);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    if (iw_store_write(h->st, h->wb, &diag) != IW_OK) {
        iw_complain(&refused_q2, IW_LOG_LEVEL_ERROR, "mqtt", "cannot persist the QoS 2 message "
                    "%s: %s; Paho will not acknowledge it (check disk space and permissions of "
                    "storage.path)", k, iw_diag_first(&diag));
        iw_diag_fini(&diag);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    h->n_pend = 0;
    return 0;
}

int iw_mqtt_receipt_key(const char *client_id, int msgid, char *out, size_t cap)
{
    int n = snprintf(out, cap, "paho-receipt/%s/%d", client_id, msgid);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* MQTT's variable byte integer at b[*at..n) (at most 4 bytes). */
static int varint(const unsigned char *b, size_t n, size_t *at, size_t *out)
{
    size_t v = 0;
    for (int i = 0; i < 4 && *at < n; i++) {
        unsigned char x = b[(*at)++];
        v |= (size_t)(x & 0x7F) << (7 * i);
        if ((x & 0x80) == 0) {
            *out = v;
            return IW_OK;
        }
    }
    return IW_E_INVAL;
}

int iw_mqtt_publish_decode(const unsigned char *b, size_t n, bool v5, struct iw_mqtt_publish *out)
{
    size_t at = 1, rem, tl, props;

    if (n < 1 || (b[0] >> 4) != 3 || ((b[0] >> 1) & 3) != 2 || varint(b, n, &at, &rem) != IW_OK
        || rem != n - at || n - at < 2)
        return IW_E_INVAL;
    tl = (size_t)b[at] << 8 | b[at + 1];
    at += 2;
    if (n - at < tl + 2)
        return IW_E_INVAL;
    out->topic = (const char *)b + at;
    out->tlen = tl;
    at += tl;
    out->msgid = b[at] << 8 | b[at + 1];
    at += 2;
    if (v5) {
        if (varint(b, n, &at, &props) != IW_OK || n - at < props)
            return IW_E_INVAL;
        at += props;
    }
    out->retained = (b[0] & 1) != 0;
    out->payload = (const char *)b + at;
    out->plen = n - at;
    return out->msgid > 0 ? IW_OK : IW_E_INVAL;
}

struct scan_v5 {
    int (*fn)(void *ctx, const struct iw_mqtt_publish *p);
    void *ctx;
};

static int scan_v5_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct scan_v5 *sv = ctx;
    struct iw_mqtt_publish p;
    if (iw_mqtt_publish_decode(val, vlen, true, &p) != IW_OK) {
        IW_LOG_WARN("mqtt", "the persisted QoS 2 message %.*s does not decode as an MQTT 5 "
                    "PUBLISH (%zu bytes); left to Paho", (int)klen, key, vlen);
        return 0;
    }
    return sv->fn(sv->ctx, &p);
}

int iw_mqtt_received_v5_scan(struct iw_store *st, const char *client_id,
                             int (*fn)(void *ctx, const struct iw_mqtt_publish *p), void *ctx)
{
    char prefix[320];
    struct scan_v5 sv = { fn, ctx };
    int n = snprintf(prefix, sizeof(prefix), "paho/%s/r5-", client_id);
    if (n < 0 || (size_t)n >= sizeof(prefix))
        return IW_E_INVAL;
    return iw_store_meta_scan(st, prefix, scan_v5_cb, &sv);
}

static int p_get(void *handle, char *key, char **buffer, int *buflen)
{
    struct handle *h = handle;
    char k[KEY_MAX];
    void *v;
    size_t len;

    if (is_received(key) && pend_flush(h) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    if (key_of(h, key, k, sizeof(k)) != 0 || iw_store_meta_get(h->st, k, &v, &len) != IW_OK)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    *buffer = MQTTAsync_malloc(len ? len : 1);      /* Paho frees it (see top) */
    if (*buffer == NULL) {
        free(v);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    memcpy(*buffer, v, len);
    free(v);
    *buflen = (int)len;
    return 0;
}

static int p_remove(void *handle, char *key)
{
    struct handle *h = handle;
    char k[KEY_MAX];

    /* acquire: pairs with the release in p_put / find_v5. */
    if (is_v5(key) && !atomic_load_explicit(&h->v5_keys, memory_order_acquire))
        return 0;                       /* never written: nothing to remove */
    if (is_received(key) && strlen(key) < sizeof(h->pend[0])) {
        if (h->n_pend == PEND_MAX && pend_flush(h) != 0)
            return MQTTCLIENT_PERSISTENCE_ERROR;
        memcpy(h->pend[h->n_pend++], key, strlen(key) + 1);
        return 0;
    }
    if (key_of(h, key, k, sizeof(k)) != 0 || iw_store_meta_delete(h->st, k) != IW_OK)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    return 0;
}

struct keys_ctx {
    const struct handle *h;
    char **keys;
    int n, cap;
    bool nomem;
};

static int keys_cb(void *ctx, const char *key, size_t klen, const void *val, size_t vlen)
{
    struct keys_ctx *kc = ctx;
    (void)val;
    (void)vlen;
    if (kc->n == kc->cap) {
        int cap = kc->cap ? kc->cap * 2 : 16;
        char **nk = realloc(kc->keys, (size_t)cap * sizeof(*nk));
        if (nk == NULL) {
            kc->nomem = true;
            return 1;
        }
        kc->keys = nk;
        kc->cap = cap;
    }
    size_t n = klen - kc->h->plen;
    kc->keys[kc->n] = MQTTAsync_malloc(n + 1);      /* Paho frees it (see top) */
    if (kc->keys[kc->n] == NULL) {
        kc->nomem = true;
        return 1;
    }
    memcpy(kc->keys[kc->n], key + kc->h->plen, n);
    kc->keys[kc->n][n] = '\0';
    kc->n++;
    return 0;
}

static int p_keys(void *handle, char ***keys, int *nkeys)
{
    struct handle *h = handle;
    struct keys_ctx kc = { .h = h };
    char **out = NULL;

    if (pend_flush(h) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    if (iw_store_meta_scan(h->st, h->prefix, keys_cb, &kc) == IW_OK && !kc.nomem &&
        (kc.n == 0 || (out = MQTTAsync_malloc((size_t)kc.n * sizeof(*out))) != NULL)) {
        if (kc.n > 0)
            memcpy(out, kc.keys, (size_t)kc.n * sizeof(*out));
        free(kc.keys);
        *keys = out;                    /* Paho frees the array and each key (see top) */
        *nkeys = kc.n;
        return 0;
    }
    for (int i = 0; i < kc.n; i++)
        MQTTAsync_free(kc.keys[i]);
    free(kc.keys);
    return MQTTCLIENT_PERSISTENCE_ERROR;
}

static int p_clear(void *handle)
{
    char **keys = NULL;
    int n = 0, rc = 0;
    if (p_keys(handle, &keys, &n) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    for (int i = 0; i < n; i++) {
        if (p_remove(handle, keys[i]) != 0)
            rc = MQTTCLIENT_PERSISTENCE_ERROR;
        MQTTAsync_free(keys[i]);
    }
    MQTTAsync_free(keys);
    if (pend_flush(handle) != 0)
        rc = MQTTCLIENT_PERSISTENCE_ERROR;
    return rc;
}

static int p_containskey(void *handle, char *key)
{
    struct handle *h = handle;
    char k[512];
    void *v;
    size_t len;
    if (is_received(key) && pend_flush(h) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    if (key_of(h, key, k, sizeof(k)) != 0 || iw_store_meta_get(h->st, k, &v, &len) != IW_OK)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    free(v);
    return 0;
}

void iw_mqtt_persistence_init(MQTTClient_persistence *p, struct iw_store *st)
{
    p->context = st;
    p->popen = p_open;
    p->pclose = p_close;
    p->pput = p_put;
    p->pget = p_get;
    p->premove = p_remove;
    p->pkeys = p_keys;
    p->pclear = p_clear;
    p->pcontainskey = p_containskey;
}
