/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Why a TLS connect to the broker failed, in OpenSSL's own words. Paho says
 * only "TCP/TLS connect failure" (code -1) for an unknown CA, an expired or
 * misnamed broker certificate, a client certificate the broker refuses, a
 * key that does not match its certificate, or a broker that is down. The
 * main thread calls this after such a failure (rate-limited, mqtt_client.c)
 * and logs the reason: one handshake of its own with the same files and the
 * same checks as Paho's (the CA, the host name in broker.url), then a short
 * read, since under TLS 1.3 a broker refuses a client certificate only after
 * the handshake.
 */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "islewatch/err.h"
#include "tls_probe.h"

/* "ssl://HOST:PORT" or "ssl://[V6]:PORT" into host and port. */
static bool split_uri(const char *uri, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p = strstr(uri, "://"), *colon;
    p = p != NULL ? p + 3 : uri;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end == NULL || end[1] != ':')
            return false;
        snprintf(host, hcap, "%.*s", (int)(end - p - 1), p + 1);
        colon = end + 1;
    } else {
        if ((colon = strrchr(p, ':')) == NULL)
            return false;
        snprintf(host, hcap, "%.*s", (int)(colon - p), p);
    }
    snprintf(port, pcap, "%s", colon + 1);
    return host[0] != '\0' && port[0] != '\0';
}

/* A TCP connection within timeout_ms, blocking afterwards with that timeout
 * on reads and writes; -1 with why filled when there is none. */
static int dial(const char *host, const char *port, int timeout_ms, char *why, size_t cap)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res), fd = -1;
    if (rc != 0) {
        snprintf(why, cap, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
        if ((fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol)) < 0)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            snprintf(why, cap, "cannot connect to %s port %s: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* OpenSSL's first queued error, or `fallback`. */
static const char *ssl_reason(char *buf, size_t cap, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r != NULL ? r : fallback);
    ERR_clear_error();
    return buf;
}

int iw_tls_probe(const char *uri, const char *ca_file, const char *cert_file, const char *key_file,
                 int timeout_ms, char *why, size_t cap)
{
    char host[256], port[16], reason[256];
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1, rc = IW_E_MQTT;

    ERR_clear_error();
    if (!split_uri(uri, host, sizeof(host), port, sizeof(port))) {
        snprintf(why, cap, "broker.url %s has no host and port", uri);
        return IW_E_INVAL;
    }
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        snprintf(why, cap, "cannot set up TLS (out of memory?)");
        return IW_E_NOMEM;
    }
    if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(why, cap, "broker.tls.ca_file %s holds no usable CA certificate (%s)",
                 ca_file != NULL ? ca_file : "(system CAs)",
                 ssl_reason(reason, sizeof(reason), "not PEM?"));
        goto out;
    }
    if (cert_file != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(why, cap, "broker.tls.cert_file %s is not a usable certificate (%s)", cert_file,
                 ssl_reason(reason, sizeof(reason), "not PEM?"));
        goto out;
    }
    if (key_file != NULL && SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(reason, sizeof(reason), "not PEM, or protected by a passphrase?");
        if (strstr(reason, "mismatch") != NULL)
            snprintf(why, cap, "broker.tls.key_file %s is not the key of cert_file %s", key_file,
                     cert_file != NULL ? cert_file : "(none)");
        else
            snprintf(why, cap, "broker.tls.key_file %s is not a usable private key (%s)",
                     key_file, reason);
        goto out;
    }
    if (cert_file != NULL && key_file != NULL && SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(why, cap, "broker.tls.key_file %s is not the key of cert_file %s", key_file,
                 cert_file);
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((fd = dial(host, port, timeout_ms, why, cap)) < 0)
        goto out;
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1
        || SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
        snprintf(why, cap, "cannot set up TLS (out of memory?)");
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
            snprintf(why, cap, "the broker's certificate is refused: %s%s",
                     X509_verify_cert_error_string(v),
                     v == X509_V_ERR_HOSTNAME_MISMATCH ? " (it is not issued for the host in "
                     "broker.url)" : v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
                     || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
                     || v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                     ? " (broker.tls.ca_file is not the CA that signed it)" : "");
        else
            snprintf(why, cap, "the TLS handshake failed: %s",
                     ssl_reason(reason, sizeof(reason), "the broker closed the connection "
                                "(is it a TLS listener?)"));
        goto out;
    }
    /* TLS 1.3: a refused client certificate shows as the broker's alert on
     * the first read. A timeout means the broker took it and waits for a
     * CONNECT, as it should. */
    char b;
    struct timeval tv = { 0, 300 * 1000 };
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ERR_clear_error();
    int n = SSL_read(ssl, &b, 1);
    int err = n <= 0 ? SSL_get_error(ssl, n) : SSL_ERROR_NONE;
    if (n <= 0 && err == SSL_ERROR_SSL) {
        snprintf(why, cap, "the broker refused the client certificate: %s%s",
                 ssl_reason(reason, sizeof(reason), "no reason given"),
                 cert_file == NULL ? " (set broker.tls.cert_file and key_file)" : "");
        goto out;
    }
    snprintf(why, cap, "a TLS handshake of its own succeeds with these files");
    rc = IW_OK;
out:
    if (ssl != NULL)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}
