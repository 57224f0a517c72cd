/*
 * kube/names: the rules a Kubernetes API server applies to object names,
 * namespaces and API versions, checked by ferry before any of them reaches
 * a URL path, and the percent-encoding of one path segment.
 *
 * Per kind, as the API server validates metadata.name:
 *  - Namespace: DNS-1123 label (<= 63, [a-z0-9]([-a-z0-9]*[a-z0-9])?);
 *  - Service: DNS-1035 label (a label that starts with a letter);
 *  - Role, ClusterRole, RoleBinding, ClusterRoleBinding: a path segment
 *    name (anything but "", ".", "..", or a name with '/' or '%'; ferry
 *    also refuses '?', '#', spaces and control characters), <= 253;
 *  - every other kind (custom resources included): DNS-1123 subdomain
 *    (<= 253, dot-separated labels).
 * A namespace is a DNS-1123 label. An apiVersion is "version" or
 * "group/version" with a DNS-1123 subdomain group and a label version.
 *
 * It also holds the checks of the two connection strings a tenant gives
 * (API server URL, TLS server name), shared by the API and the kubeconfig
 * import.
 *
 * Pure functions, thread-safe. The check functions return 0 when valid and
 * -1 otherwise with a readable reason in err (which names the offending
 * value, quoted and cut, never anything else).
 */
#ifndef FERRY_KUBE_NAMES_H
#define FERRY_KUBE_NAMES_H

#include <jansson.h>
#include <stddef.h>

int kube_name_valid(const char *kind, const char *name, char *err, size_t errlen);
int kube_namespace_valid(const char *ns, char *err, size_t errlen);
int kube_api_version_valid(const char *api_version, char *err, size_t errlen);

/* One object of a rendered manifest: apiVersion, kind (letters and digits),
 * metadata.name and metadata.namespace when present and not empty (empty
 * or null = the release namespace, checked by the caller). */
int kube_object_names_valid(const json_t *obj, char *err, size_t errlen);

/* An API server URL ferry will store and connect to: "https://" + a host
 * (optionally :port) + an optional path, at most 2048 bytes; no userinfo
 * ('@' before the path: credentials belong in the credential fields, never
 * in a URL that is shown back), no query, no fragment, no spaces, no
 * control or non-ASCII bytes, no backslash. 0 / -1 with the reason. */
int kube_server_url_valid(const char *url, char *err, size_t errlen);

/* A TLS server name: a DNS name (letters, digits, '-', dot-separated labels
 * of 1-63, at most 253 in all) or an IPv4/IPv6 address. 0 / -1. */
int kube_tls_server_name_valid(const char *name, char *err, size_t errlen);

/* Every object of a chart render's document list (chart_render_documents:
 * [{"source": "cilium/templates/x.yaml", "object": {...}}, ...]); the
 * message names the template file of the first bad object. 0 / -1. */
int kube_documents_names_valid(const json_t *docs, char *err, size_t errlen);

/* Percent-encode one path segment: unreserved characters and ':' '@' stay,
 * every other byte becomes %XX (malloc'd). */
char *kube_path_segment(const char *s);

#endif
