/*
 * common/endpoint: the checks of the two connection strings a tenant gives
 * for a cluster: the API server URL and the TLS server name. Shared by the
 * API (api/clusters.c) and the kubeconfig import (common/kubeconfig.h); a
 * pure parser, so it lives here rather than beside the Kubernetes client.
 *
 * Pure functions, thread-safe. They return 0 when valid and -1 otherwise
 * with a readable reason in err (the URL is never quoted back: it may carry
 * credentials; the TLS name is, cut and made printable).
 */
#ifndef FERRY_COMMON_ENDPOINT_H
#define FERRY_COMMON_ENDPOINT_H

#include <stddef.h>

/* An API server URL ferry will store and connect to: "https://" + a host
 * (optionally :port) + an optional path, at most 2048 bytes; no userinfo
 * ('@' before the path: credentials belong in the credential fields, never
 * in a URL that is shown back), no query, no fragment, no spaces, no
 * control or non-ASCII bytes, no backslash. */
int kube_server_url_valid(const char *url, char *err, size_t errlen);

/* A TLS server name: a DNS name (letters, digits, '-', dot-separated labels
 * of 1-63, at most 253 in all) or an IPv4/IPv6 address. */
int kube_tls_server_name_valid(const char *name, char *err, size_t errlen);

#endif
