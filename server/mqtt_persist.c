/*
 * Paho's persistence store (MQTTClient_persistence callbacks) kept in
 * islewatch's own RocksDB, under metadata keys "paho/<client id>/<key>".
 *
 * Why: with QoS 2, Paho persists every incoming PUBLISH on arrival and
 * removes it once the application has handled it (SPEC §2: nothing lost,
 * nothing twice across kill -9). Paho's default file store does that with a
 * file create, write, close and unlink per message, which measured ~8x the
 * CPU of the rest of the message path (bench/RESULTS.md). Here a put is one
 * WAL append and a remove one tombstone, in the database that must be
 * consistent with the samples anyway.
 *
 * Threads: Paho calls these from its own threads; RocksDB is thread-safe and
 * the handle is read-only after open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <MQTTAsync.h>

#include "islewatch/log.h"
#include "islewatch/store.h"
#include "mqtt_persist.h"

struct handle {
    struct iw_store *st;
    char prefix[320];                 /* "paho/<client id>/" */
    size_t plen;
};

static int key_of(const struct handle *h, const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", h->prefix, key);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int p_open(void **handle, const char *client_id, const char *server_uri, void *context)
{
    struct handle *h = calloc(1, sizeof(*h));
    (void)server_uri;
    if (h == NULL)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    h->st = context;
    snprintf(h->prefix, sizeof(h->prefix), "paho/%s/", client_id);
    h->plen = strlen(h->prefix);
    *handle = h;
    return 0;
}

static int p_close(void *handle)
{
    free(handle);
    return 0;
}

static int p_put(void *handle, char *key, int bufcount, char *buffers[], int buflens[])
{
    struct handle *h = handle;
    char k[512];
    size_t total = 0, at = 0;

    if (key_of(h, key, k, sizeof(k)) != 0)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    for (int i = 0; i < bufcount; i++)
        total += (size_t)buflens[i];
    char *v = malloc(total ? total : 1);
    if (v == NULL)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    for (int i = 0; i < bufcount; i++) {
        memcpy(v + at, buffers[i], (size_t)buflens[i]);
        at += (size_t)buflens[i];
    }
    int rc = iw_store_meta_put(h->st, k, v, total);
    free(v);
    if (rc != IW_OK) {
        IW_LOG_ERROR("mqtt", "cannot persist MQTT state %s: %s", k, iw_strerror(rc));
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    return 0;
}

static int p_get(void *handle, char *key, char **buffer, int *buflen)
{
    struct handle *h = handle;
    char k[512];
    void *v;
    size_t len;

    if (key_of(h, key, k, sizeof(k)) != 0 || iw_store_meta_get(h->st, k, &v, &len) != IW_OK)
        return MQTTCLIENT_PERSISTENCE_ERROR;
    *buffer = v;                        /* malloc'd: Paho frees it */
    *buflen = (int)len;
    return 0;
}

static int p_remove(void *handle, char *key)
{
    struct handle *h = handle;
    char k[512];
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
    kc->keys[kc->n] = strndup(key + kc->h->plen, klen - kc->h->plen);
    if (kc->keys[kc->n] == NULL) {
        kc->nomem = true;
        return 1;
    }
    kc->n++;
    return 0;
}

static int p_keys(void *handle, char ***keys, int *nkeys)
{
    struct handle *h = handle;
    struct keys_ctx kc = { .h = h };

    if (iw_store_meta_scan(h->st, h->prefix, keys_cb, &kc) != IW_OK || kc.nomem) {
        for (int i = 0; i < kc.n; i++)
            free(kc.keys[i]);
        free(kc.keys);
        return MQTTCLIENT_PERSISTENCE_ERROR;
    }
    *keys = kc.keys;                    /* Paho frees the array and each key */
    *nkeys = kc.n;
    return 0;
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
        free(keys[i]);
    }
    free(keys);
    return rc;
}

static int p_containskey(void *handle, char *key)
{
    struct handle *h = handle;
    char k[512];
    void *v;
    size_t len;
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
