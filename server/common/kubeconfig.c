/*
 * kube/kubeconfig: kubeconfig YAML -> the connection facts ferry stores.
 *
 * The document becomes JSON (yamljson), then the three named lists
 * (clusters, users, contexts) are searched by name. Every value that may
 * come "inline or from a file" (CA, client certificate and key, token) goes
 * through one resolver: *-data is base64 and decoded, a path is read only
 * when the caller allowed files (the CLI), never for uploads. PEM values
 * must look like PEM; the real parse happens where they are used (the API
 * checks them with OpenSSL, the kube client with libcurl).
 */
#include "server/common/kubeconfig.h"
#include "server/common/endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/yamljson.h"

#define KUBECONFIG_MAX_FILE (1024 * 1024)

static void wipe_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

void kubeconfig_creds_free(struct kubeconfig_creds *c)
{
	if (!c)
		return;
	free(c->context);
	free(c->api_server);
	free(c->tls_server_name);
	free(c->ca_pem);
	wipe_free(c->token);
	free(c->client_cert_pem);
	wipe_free(c->client_key_pem);
	memset(c, 0, sizeof(*c));
}

/* The entry of list (array of {name, <member>: {...}}) called name. */
static json_t *find_named(json_t *root, const char *list, const char *member,
			  const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(root, list), i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));
		if (n && !strcmp(n, name)) {
			json_t *m = json_object_get(e, member);
			return json_is_object(m) ? m : NULL;
		}
	}
	return NULL;
}

static char *read_file(const char *base_dir, const char *path, char *err, size_t errlen)
{
	char full[4096];
	if (path[0] == '/')
		snprintf(full, sizeof(full), "%s", path);
	else
		snprintf(full, sizeof(full), "%s/%s", base_dir, path);
	char *text = read_file_limit(full, KUBECONFIG_MAX_FILE, NULL);
	if (!text) {
		if (errno == EFBIG)
			snprintf(err, errlen, "%s is larger than 1 MiB", full);
		else
			snprintf(err, errlen, "cannot read %s: %s", full, strerror(errno));
	}
	return text;
}

/*
 * Resolve an inline (<key>-data, base64) or file (<key>) value of obj.
 * Returns 1 with *out set, 0 when neither is present, -1 on error.
 */
static int resolve_value(json_t *obj, const char *data_key, const char *file_key,
			 const char *what, const struct kubeconfig_opts *opts, char **out,
			 char *err, size_t errlen)
{
	*out = NULL;
	json_t *data = json_object_get(obj, data_key);
	json_t *file = json_object_get(obj, file_key);
	if (data && !json_is_null(data)) {
		if (!json_is_string(data)) {
			snprintf(err, errlen, "%s: %s must be a base64 string", what, data_key);
			return -1;
		}
		size_t len = 0;
		unsigned char *bytes = base64_decode(json_string_value(data), &len);
		if (!bytes) {
			snprintf(err, errlen, "%s: %s is not valid base64", what, data_key);
			return -1;
		}
		if (memchr(bytes, '\0', len)) {
			free(bytes);
			snprintf(err, errlen, "%s: %s holds binary data, not PEM", what, data_key);
			return -1;
		}
		char *s = xmalloc(len + 1);
		memcpy(s, bytes, len);
		s[len] = '\0';
		memset(bytes, 0, len);
		free(bytes);
		*out = s;
		return 1;
	}
	if (file && !json_is_null(file)) {
		if (!json_is_string(file)) {
			snprintf(err, errlen, "%s: %s must be a path", what, file_key);
			return -1;
		}
		if (!opts->base_dir) {
			snprintf(err, errlen,
				 "%s: %s refers to a file (%s); an uploaded kubeconfig must embed it as %s",
				 what, file_key, json_string_value(file), data_key);
			return -1;
		}
		*out = read_file(opts->base_dir, json_string_value(file), err, errlen);
		return *out ? 1 : -1;
	}
	return 0;
}

static int looks_like_pem(const char *s, const char *kind)
{
	const char *b = strstr(s, "-----BEGIN ");
	if (!b)
		return 0;
	if (kind && !strstr(b, kind))
		return 0;
	return strstr(b, "-----END ") != NULL;
}

static char *trim_dup(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return xstrndup(s, n);
}

static int get_bool(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_string(v))
		return !strcmp(json_string_value(v), "true");
	return 0;
}

int kubeconfig_parse(const char *text, size_t len, const char *context,
		     const struct kubeconfig_opts *opts, struct kubeconfig_creds *out,
		     char *err, size_t errlen)
{
	struct kubeconfig_opts none = { 0, NULL };
	char yerr[256];
	int rc = -1;
	memset(out, 0, sizeof(*out));
	if (!opts)
		opts = &none;
	json_t *root = yaml_to_json(text, len, yerr, sizeof(yerr));
	if (!root) {
		snprintf(err, errlen, "kubeconfig is not valid YAML: %s", yerr);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "kubeconfig must be a YAML mapping (apiVersion: v1, kind: Config)");
		goto out;
	}
	const char *kind = json_string_value(json_object_get(root, "kind"));
	if (kind && strcmp(kind, "Config") != 0) {
		snprintf(err, errlen, "kubeconfig kind is \"%s\", expected Config", kind);
		goto out;
	}

	/* Choose the context. */
	const char *ctx_name = context && *context ? context : NULL;
	if (!ctx_name)
		ctx_name = json_string_value(json_object_get(root, "current-context"));
	if (!ctx_name || !*ctx_name) {
		json_t *ctxs = json_object_get(root, "contexts");
		if (json_array_size(ctxs) == 1)
			ctx_name = json_string_value(json_object_get(json_array_get(ctxs, 0), "name"));
	}
	if (!ctx_name || !*ctx_name) {
		struct buf names = BUF_INIT;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(root, "contexts"), i, e) {
			const char *n = json_string_value(json_object_get(e, "name"));
			buf_printf(&names, "%s%s", names.len ? ", " : "", n ? n : "?");
		}
		snprintf(err, errlen, "kubeconfig has no current-context; pick one with \"context\" (%s)",
			 names.len ? buf_cstr(&names) : "it has no contexts");
		buf_free(&names);
		goto out;
	}
	json_t *ctx = find_named(root, "contexts", "context", ctx_name);
	if (!ctx) {
		snprintf(err, errlen, "kubeconfig has no context named \"%s\"", ctx_name);
		goto out;
	}
	out->context = xstrdup(ctx_name);
	const char *cluster_name = json_string_value(json_object_get(ctx, "cluster"));
	const char *user_name = json_string_value(json_object_get(ctx, "user"));
	if (!cluster_name || !user_name) {
		snprintf(err, errlen, "context \"%s\" must name a cluster and a user", ctx_name);
		goto out;
	}
	json_t *cl = find_named(root, "clusters", "cluster", cluster_name);
	if (!cl) {
		snprintf(err, errlen, "context \"%s\" refers to cluster \"%s\", which is not in the kubeconfig",
			 ctx_name, cluster_name);
		goto out;
	}
	json_t *user = find_named(root, "users", "user", user_name);
	if (!user) {
		snprintf(err, errlen, "context \"%s\" refers to user \"%s\", which is not in the kubeconfig",
			 ctx_name, user_name);
		goto out;
	}

	/* Cluster. */
	const char *server = json_string_value(json_object_get(cl, "server"));
	if (!server || !*server) {
		snprintf(err, errlen, "cluster \"%s\" has no server URL", cluster_name);
		goto out;
	}
	if (strncmp(server, "https://", 8) != 0 || !server[8]) {
		snprintf(err, errlen, "cluster \"%s\": server must be an https:// URL (got \"%.100s\")",
			 cluster_name, server);
		goto out;
	}
	char why[256];
	if (kube_server_url_valid(server, why, sizeof why) < 0) {
		snprintf(err, errlen, "cluster \"%s\": %s", cluster_name, why);
		goto out;
	}
	out->api_server = xstrdup(server);
	if (json_object_get(cl, "proxy-url")) {
		snprintf(err, errlen, "cluster \"%s\": proxy-url is not supported", cluster_name);
		goto out;
	}
	const char *tsn = json_string_value(json_object_get(cl, "tls-server-name"));
	if (tsn && *tsn) {
		if (kube_tls_server_name_valid(tsn, why, sizeof why) < 0) {
			snprintf(err, errlen, "cluster \"%s\": tls-server-name: %s", cluster_name, why);
			goto out;
		}
		out->tls_server_name = xstrdup(tsn);
	}
	if (get_bool(cl, "insecure-skip-tls-verify")) {
		if (!opts->allow_insecure) {
			snprintf(err, errlen,
				 "cluster \"%s\" sets insecure-skip-tls-verify; this server does not accept "
				 "clusters without TLS verification (provide certificate-authority-data)",
				 cluster_name);
			goto out;
		}
		out->insecure = 1;
	}
	if (resolve_value(cl, "certificate-authority-data", "certificate-authority",
			  "cluster CA", opts, &out->ca_pem, err, errlen) < 0)
		goto out;
	if (out->ca_pem && !looks_like_pem(out->ca_pem, "CERTIFICATE")) {
		snprintf(err, errlen, "cluster \"%s\": certificate-authority-data is not a PEM certificate",
			 cluster_name);
		goto out;
	}

	/* User. */
	int has_plugin = json_object_get(user, "exec") || json_object_get(user, "auth-provider");
	if (json_object_get(user, "username") || json_object_get(user, "password")) {
		snprintf(err, errlen, "user \"%s\": basic authentication (username/password) is not supported",
			 user_name);
		goto out;
	}
	char *tok = NULL;
	json_t *token = json_object_get(user, "token");
	if (token && !json_is_null(token)) {
		if (!json_is_string(token) || !*json_string_value(token)) {
			snprintf(err, errlen, "user \"%s\": token must be a non-empty string", user_name);
			goto out;
		}
		tok = trim_dup(json_string_value(token));
	} else {
		json_t *tf = json_object_get(user, "tokenFile");
		if (tf && !json_is_null(tf)) {
			if (!opts->base_dir || !json_is_string(tf)) {
				snprintf(err, errlen,
					 "user \"%s\": tokenFile refers to a file; an uploaded kubeconfig must embed the token",
					 user_name);
				goto out;
			}
			char *raw = read_file(opts->base_dir, json_string_value(tf), err, errlen);
			if (!raw)
				goto out;
			tok = trim_dup(raw);
			wipe_free(raw);
		}
	}
	if (tok) {
		for (const char *p = tok; *p; p++)
			if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
				wipe_free(tok);
				snprintf(err, errlen, "user \"%s\": the token contains spaces or control characters",
					 user_name);
				goto out;
			}
		if (!*tok) {
			wipe_free(tok);
			tok = NULL;
		}
	}
	out->token = tok;
	if (resolve_value(user, "client-certificate-data", "client-certificate",
			  "client certificate", opts, &out->client_cert_pem, err, errlen) < 0)
		goto out;
	if (resolve_value(user, "client-key-data", "client-key", "client key", opts,
			  &out->client_key_pem, err, errlen) < 0)
		goto out;
	if (!!out->client_cert_pem != !!out->client_key_pem) {
		snprintf(err, errlen, "user \"%s\": a client certificate needs its key and vice versa",
			 user_name);
		goto out;
	}
	if (out->client_cert_pem && (!looks_like_pem(out->client_cert_pem, "CERTIFICATE") ||
				     !looks_like_pem(out->client_key_pem, "PRIVATE KEY"))) {
		snprintf(err, errlen, "user \"%s\": client-certificate-data / client-key-data are not PEM",
			 user_name);
		goto out;
	}
	if (out->token && out->client_cert_pem) {
		/* kubectl would send both; ferry keeps one credential: the
		 * certificate (it is the stronger one). */
		wipe_free(out->token);
		out->token = NULL;
	}
	int has_static = out->token || out->client_cert_pem;
	if (has_plugin && !opts->allow_insecure) {
		snprintf(err, errlen,
			 "user \"%s\" uses an %s credential plugin; ferry does not run plugins: "
			 "use a service-account token or a client certificate",
			 user_name, json_object_get(user, "exec") ? "exec" : "auth-provider");
		goto out;
	}
	if (!has_static) {
		snprintf(err, errlen, "user \"%s\" has no usable credential (token or client certificate)%s",
			 user_name, has_plugin ? "; credential plugins cannot be run by ferry" : "");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		kubeconfig_creds_free(out);
	return rc;
}
