/*
 * names.c: Kubernetes name rules (see names.h).
 */
#include "server/kube/names.h"
#include "server/common/buf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static int lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A value quoted for an error message: printable ASCII only, cut at 64. */
static void quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < outlen; p++) {
		if (o >= 64) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (*p >= 0x20 && *p < 0x7f && *p != '"') ? (char)*p : '?';
	}
	out[o] = '\0';
}

static int fail(char *err, size_t errlen, const char *what, const char *value, const char *rule)
{
	char q[80];
	quote(value ? value : "", q, sizeof q);
	snprintf(err, errlen, "%s \"%s\" is not valid: %s", what, q, rule);
	return -1;
}

/* DNS-1123 label of at most max characters (letter_first: DNS-1035). */
static int is_label(const char *s, size_t len, int letter_first)
{
	if (len == 0 || len > 63)
		return 0;
	if (letter_first && !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	if (!lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

static int is_subdomain(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253)
		return 0;
	const char *p = s;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (!is_label(p, l, 0))
			return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

/* Kubernetes' path segment name rule, plus no characters that end or
 * change a URL path (?, #), no spaces and no control characters. */
static int is_segment_name(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253 || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == '%' || *p == '?' || *p == '#' ||
		    *p == '\\')
			return 0;
	return 1;
}

static int is_rbac(const char *kind)
{
	return kind && (!strcmp(kind, "Role") || !strcmp(kind, "ClusterRole") ||
			!strcmp(kind, "RoleBinding") || !strcmp(kind, "ClusterRoleBinding"));
}

int kube_name_valid(const char *kind, const char *name, char *err, size_t errlen)
{
	char what[96];
	snprintf(what, sizeof what, "%s name", kind && strlen(kind) < 64 ? kind : "object");
	if (!name)
		return fail(err, errlen, what, "", "missing");
	if (kind && !strcmp(kind, "Namespace")) {
		if (!is_label(name, strlen(name), 0))
			return fail(err, errlen, what, name,
				    "must be a DNS-1123 label (lower-case letters, digits, '-', at most 63)");
	} else if (kind && !strcmp(kind, "Service")) {
		if (!is_label(name, strlen(name), 1))
			return fail(err, errlen, what, name,
				    "must be a DNS-1035 label (starts with a letter; lower-case letters, digits, '-', at most 63)");
	} else if (is_rbac(kind)) {
		if (!is_segment_name(name))
			return fail(err, errlen, what, name,
				    "must not be '.' or '..' nor contain '/', '%', '?', '#', spaces or control characters (at most 253)");
	} else if (!is_subdomain(name)) {
		return fail(err, errlen, what, name,
			    "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)");
	}
	return 0;
}

int kube_namespace_valid(const char *ns, char *err, size_t errlen)
{
	if (!ns || !is_label(ns, strlen(ns), 0))
		return fail(err, errlen, "namespace", ns,
			    "must be a DNS-1123 label (lower-case letters, digits, '-', at most 63)");
	return 0;
}

int kube_api_version_valid(const char *api_version, char *err, size_t errlen)
{
	if (!api_version)
		return fail(err, errlen, "apiVersion", "", "missing");
	const char *slash = strchr(api_version, '/');
	const char *version = slash ? slash + 1 : api_version;
	int ok = is_label(version, strlen(version), 1);
	if (ok && slash) {
		char group[254];
		size_t gl = (size_t)(slash - api_version);
		ok = gl > 0 && gl < sizeof group;
		if (ok) {
			memcpy(group, api_version, gl);
			group[gl] = '\0';
			ok = is_subdomain(group);
		}
	}
	if (!ok)
		return fail(err, errlen, "apiVersion", api_version,
			    "must be VERSION or GROUP/VERSION (DNS-1123 group, label version)");
	return 0;
}

static int kind_valid(const char *kind)
{
	size_t len = kind ? strlen(kind) : 0;
	if (len == 0 || len > 63 || !(kind[0] >= 'A' && kind[0] <= 'Z'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((kind[i] >= 'A' && kind[i] <= 'Z') || (kind[i] >= 'a' && kind[i] <= 'z') ||
		      (kind[i] >= '0' && kind[i] <= '9')))
			return 0;
	return 1;
}

int kube_object_names_valid(const json_t *obj, char *err, size_t errlen)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	if (!kind_valid(kind))
		return fail(err, errlen, "kind", kind, "must be letters and digits, starting upper-case");
	if (kube_api_version_valid(json_string_value(json_object_get(obj, "apiVersion")), err, errlen) < 0)
		return -1;
	const json_t *meta = json_object_get(obj, "metadata");
	/* An empty or null namespace means the release's (as in the path
	 * builder); anything else must be a valid one. */
	const json_t *ns = json_object_get(meta, "namespace");
	if (ns && !json_is_null(ns) && !(json_is_string(ns) && !*json_string_value(ns)) &&
	    kube_namespace_valid(json_string_value(ns), err, errlen) < 0)
		return -1;
	return kube_name_valid(kind, json_string_value(json_object_get(meta, "name")), err, errlen);
}

int kube_documents_names_valid(const json_t *docs, char *err, size_t errlen)
{
	size_t i;
	const json_t *doc;
	json_array_foreach(docs, i, doc) {
		const json_t *o = json_object_get(doc, "object");
		char why[300];
		if (json_is_object(o) && kube_object_names_valid(o, why, sizeof why) < 0) {
			const char *src = json_string_value(json_object_get(doc, "source"));
			snprintf(err, errlen, "%.120s: %s", src ? src : "?", why);
			return -1;
		}
	}
	return 0;
}

char *kube_path_segment(const char *s)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == ':' || *p == '@')
			buf_putc(&b, (char)*p);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	return buf_steal(&b);
}
