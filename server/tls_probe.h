/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ISLEWATCH_TLS_PROBE_H
#define ISLEWATCH_TLS_PROBE_H

#include <stddef.h>

/*
 * One TLS handshake of its own to uri ("ssl://HOST:PORT"), with the CA file
 * (NULL: the system's), the client certificate and key (NULL: none), the
 * host name checked as Paho does, within timeout_ms. IW_OK when it succeeds;
 * otherwise why says, in OpenSSL's words, what failed and what to look at
 * (an unknown CA, an expired or misnamed certificate, a refused client
 * certificate, a key that is not the certificate's, no listener).
 * Blocks up to about twice timeout_ms.
 */
int iw_tls_probe(const char *uri, const char *ca_file, const char *cert_file, const char *key_file,
                 int timeout_ms, char *why, size_t cap);

#endif
