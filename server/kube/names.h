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
 * The checks of the two connection strings a tenant gives (API server URL,
 * TLS server name) are in server/common/endpoint.h.
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

/* Every object of a chart render's document list (chart_render_documents:
 * [{"source": "cilium/templates/x.yaml", "object": {...}}, ...]); the
 * message names the template file of the first bad object. 0 / -1. */
int kube_documents_names_valid(const json_t *docs, char *err, size_t errlen);

/* Percent-encode one path segment: unreserved characters and ':' '@' stay,
 * every other byte becomes %XX (malloc'd). */
char *kube_path_segment(const char *s);

#endif
