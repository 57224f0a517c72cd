/*
 * common/kubeconfig: import a cluster from a kubeconfig document (a pure
 * parser: the API handlers use it, so it lives with the common modules).
 *
 * kubeconfig_parse() reads the YAML (server/common/yamljson.h), picks a
 * context (the one asked for, else current-context, else the only one),
 * and resolves its cluster and user into what ferry stores: the API server
 * URL (https only), an optional TLS server name, the CA bundle (PEM) and one
 * credential: a bearer token or a client certificate + key (PEM).
 *
 * Refused, with a message naming the offending field:
 *  - exec credential plugins and auth-provider stanzas (ferry cannot run
 *    them); with opts->allow_insecure they are tolerated when the user also
 *    has a static credential, which is then used;
 *  - insecure-skip-tls-verify: true, unless opts->allow_insecure (then
 *    out->insecure = 1 and the CA is optional);
 *  - file references (certificate-authority, client-certificate,
 *    client-key, tokenFile) unless opts->base_dir is set: an uploaded
 *    kubeconfig must never make the server read its own files;
 *  - basic auth (username/password), missing server, no credential.
 *
 * Memory: out's strings are malloc'd; kubeconfig_creds_free() releases
 * them (and wipes the secrets). Thread-safe (no shared state).
 */
#ifndef FERRY_COMMON_KUBECONFIG_H
#define FERRY_COMMON_KUBECONFIG_H

#include <stddef.h>

struct kubeconfig_opts {
	int allow_insecure;      /* accept insecure-skip-tls-verify; tolerate exec */
	const char *base_dir;    /* NULL = refuse file references */
};

struct kubeconfig_creds {
	char *context;           /* name of the context used */
	char *api_server;
	char *tls_server_name;   /* or NULL */
	char *ca_pem;            /* or NULL */
	int insecure;            /* insecure-skip-tls-verify accepted */
	char *token;             /* bearer token, or NULL */
	char *client_cert_pem;   /* with client_key_pem, or NULL */
	char *client_key_pem;
};

/* 0 on success; -1 with a user-facing message in err. context may be NULL.
 * On failure out holds nothing to free. */
int kubeconfig_parse(const char *text, size_t len, const char *context,
		     const struct kubeconfig_opts *opts, struct kubeconfig_creds *out,
		     char *err, size_t errlen);
void kubeconfig_creds_free(struct kubeconfig_creds *c);

#endif
