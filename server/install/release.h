/*
 * release: Helm v3 release records, so that `helm list`, `helm get values`
 * and a later manual `helm upgrade` keep working on clusters ferry manages
 * (reference: helm-release.md §1, §2, §7).
 *
 * A release is the JSON Helm marshals (name, info, chart, config, manifest,
 * hooks, version, namespace). It is stored in the release namespace as a
 * Secret "sh.helm.release.v1.<name>.v<revision>", type helm.sh/release.v1,
 * labels name/owner=helm/status/version (+ createdAt on create, and
 * ferry.io/managed=true so preflight can tell ferry's releases from
 * hand-made ones), data.release = base64(gzip(json)) — which the API wire
 * base64-encodes once more. The gzip header is Go's (mtime 0, best
 * compression, OS unknown): the value starts "H4sIAAAAAAAC/".
 *
 * Memory: every returned json_t / string is new and owned by the caller.
 * Thread-safe.
 */
#ifndef FERRY_INSTALL_RELEASE_H
#define FERRY_INSTALL_RELEASE_H

#include <jansson.h>
#include <stddef.h>

#define RELEASE_SECRET_TYPE "helm.sh/release.v1"
#define RELEASE_MANAGED_LABEL "ferry.io/managed"

struct release_info {
	const char *name;            /* release name, e.g. "cilium" */
	const char *namespace_;
	int revision;                /* >= 1 */
	const char *status;          /* deployed, pending-install, superseded, ... */
	const char *description;     /* "Install complete" */
	const char *notes;           /* NOTES.txt output or NULL */
	const char *first_deployed;  /* RFC 3339; NULL = now */
	const char *last_deployed;   /* RFC 3339; NULL = now */
	const json_t *chart_metadata;/* {name, version, appVersion, apiVersion, ...} */
	const json_t *chart_templates; /* [{name, data(base64)}] or NULL = [] */
	const json_t *chart_files;   /* [{name, data}] or NULL = [] */
	const json_t *chart_values;  /* the chart's values.yaml as JSON, or NULL = {} */
	const json_t *config;        /* user-supplied values; omitted when empty */
	const char *manifest;        /* "---\n# Source: ...\n<doc>\n" per document */
	const json_t *hooks;         /* array or NULL (omitted) */
};

/* Helm's valid release name rule (DNS-1123 subdomain-ish, <= 53 chars). */
int release_name_valid(const char *name);

/* The release JSON. */
json_t *release_build(const struct release_info *info);

/* "sh.helm.release.v1.<name>.v<revision>" (malloc'd). */
char *release_secret_name(const char *name, int revision);

/* gzip (best) + base64 of the compact JSON: the value Helm keeps in
 * data.release before Kubernetes' own base64. NULL on failure. */
char *release_encode(const json_t *release);

/* The inverse: base64 text -> gunzip (or plain JSON when the gzip magic is
 * absent, as Helm's decoder allows) -> JSON. NULL with a message in err. */
json_t *release_decode(const char *encoded, char *err, size_t errlen);

/* The Secret object for a release. created_at_unix > 0 adds the createdAt
 * label (Create), modified_at_unix > 0 adds modifiedAt (Update). */
json_t *release_secret(const json_t *release, long long created_at_unix,
		       long long modified_at_unix);
/* The same Secret without its data, and the value of its data.release in
 * *wire (malloc'd; NULL with a NULL return). */
json_t *release_secret_head(const json_t *release, long long created_at_unix,
			    long long modified_at_unix, char **wire);
/* The Secret as JSON text: head (from release_secret_head) with
 * "data": {"release": wire} added last, wire (base64) copied as is, not
 * escaped character by character; the same object release_secret()
 * serialises to. malloc'd; NULL when head does not serialise. */
char *release_secret_text(const json_t *head, const char *wire);

/* Decode a Secret as read from the API (data.release base64 of the
 * encoded value). NULL with a message in err. */
json_t *release_from_secret(const json_t *secret, char *err, size_t errlen);

/* Among Secrets of one release (list or items array), the one with the
 * highest "version" label; borrowed, NULL when none. */
const json_t *release_latest_secret(const json_t *secrets);

/* Standard padded base64 helpers (malloc'd; decode returns NULL on bad
 * input and sets *outlen). */
char *release_b64_encode(const void *data, size_t len);
unsigned char *release_b64_decode(const char *text, size_t *outlen);

/* RFC 3339 with nanoseconds in UTC for now, into buf (>= 40 bytes). */
void release_now_rfc3339(char *buf, size_t len);

#endif
