/*
 * api/clusters: the cluster resource.
 *
 * A cluster is created either from explicit connection fields (api_server,
 * ca_bundle, tls_server_name, and a token or a client certificate + key) or
 * from an uploaded kubeconfig (server/common/kubeconfig.h picks the context and
 * refuses exec plugins, file references and insecure TLS unless allowed).
 * Either way the credential is sealed with AES-256-GCM under the current
 * master key (server/common/crypto.h) as a JSON object
 *   {"token": "..."} or {"client_cert": "<PEM>", "client_key": "<PEM>"}
 * before it reaches the database; it is never sent back, logged or put in
 * an error message. PEM inputs are parsed with OpenSSL up front so a typo
 * is a 400 now rather than a failed job later.
 *
 * PATCH is a JSON merge patch over name, profile, labels (null removes a
 * label), the connection fields and the credential; If-Match (the ETag of
 * GET) makes it conditional. DELETE is refused with 409 while a job is
 * queued or running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "api/api.h"
#include "db/clusters.h"
#include "db/dbq.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/endpoint.h"
#include "server/common/kubeconfig.h"

#define MAX_PEM_BYTES (256 * 1024)

static const char *const profiles[] = { "tke", "tke-coexist", "k3s", "generic", NULL };

/* Collected validation errors: [{field, message}]. */
struct verrs {
	json_t *list;
	char first[256];
};

static void verr(struct verrs *v, const char *field, const char *msg)
{
	if (!v->list)
		v->list = json_array();
	json_array_append_new(v->list, json_pack("{s:s,s:s}", "field", field, "message", msg));
	if (!v->first[0])
		snprintf(v->first, sizeof(v->first), "%s: %s", field, msg);
}

static int report_verrs(struct api_req *r, struct verrs *v)
{
	if (!v->list)
		return 0;
	size_t n = json_array_size(v->list);
	api_problem_errors(r, 400, "Invalid request", v->list, "%s%s", v->first,
			   n > 1 ? " (and more, see errors)" : "");
	v->list = NULL;
	return 1;
}

static int label_name_ok(const char *s, size_t n, int allow_empty)
{
	if (n == 0)
		return allow_empty;
	if (n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if ((c == '-' || c == '_' || c == '.') && i > 0 && i < n - 1)
			continue;
		return 0;
	}
	return 1;
}

/* Kubernetes label key: [prefix/]name. */
static int label_key_ok(const char *k)
{
	const char *slash = strchr(k, '/');
	if (slash) {
		size_t pl = (size_t)(slash - k);
		if (pl == 0 || pl > 253)
			return 0;
		for (size_t i = 0; i < pl; i++) {
			char c = k[i];
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
				return 0;
		}
		k = slash + 1;
	}
	return label_name_ok(k, strlen(k), 0);
}

static int one_of(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

/* Count certificates in a PEM bundle; -1 when it does not parse. */
static int pem_cert_count(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return -1;
	int n = 0;
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return n ? n : -1;
}

/* 1 when cert and key parse and belong together; 0 otherwise with why. */
static int pem_pair_ok(const char *cert_pem, const char *key_pem, const char **why)
{
	int ok = 0;
	BIO *cb = BIO_new_mem_buf(cert_pem, -1);
	BIO *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	if (!x)
		*why = "client_certificate is not a PEM certificate";
	else if (!k)
		*why = "client_key is not an unencrypted PEM private key";
	else if (X509_check_private_key(x, k) != 1)
		*why = "client_key does not match client_certificate";
	else
		ok = 1;
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	ERR_clear_error();
	return ok;
}

/* The connection + credential part of a create or patch, normalised. */
struct conn_in {
	char *api_server;
	int set_tls_server_name;
	char *tls_server_name;
	int set_ca_bundle;
	char *ca_bundle;
	char *token;
	char *cert;
	char *key;
	int insecure;           /* -1 unknown/keep */
	int has_cred;           /* token or cert given */
};

static void conn_in_free(struct conn_in *c)
{
	free(c->api_server);
	free(c->tls_server_name);
	free(c->ca_bundle);
	if (c->token) {
		memset(c->token, 0, strlen(c->token));
		free(c->token);
	}
	free(c->cert);
	if (c->key) {
		memset(c->key, 0, strlen(c->key));
		free(c->key);
	}
}

static const char *str_field(json_t *body, const char *name, struct verrs *v, int *present,
			     int nullable)
{
	json_t *x = json_object_get(body, name);
	*present = x != NULL;
	if (!x)
		return NULL;
	if (json_is_null(x)) {
		if (!nullable)
			verr(v, name, "must not be null");
		return NULL;
	}
	if (!json_is_string(x)) {
		verr(v, name, "must be a string");
		return NULL;
	}
	return json_string_value(x);
}

/*
 * Read the connection fields (or a kubeconfig) of body into c. For a create
 * (patch = 0) api_server and a credential are required.
 */
static void read_conn(struct api_req *r, json_t *body, int patch, struct conn_in *c,
		      struct verrs *v, char *kerr, size_t kerrlen)
{
	int has_kc, has_ctx, p;
	memset(c, 0, sizeof(*c));
	c->insecure = patch ? -1 : 0;
	const char *kc = str_field(body, "kubeconfig", v, &has_kc, 0);
	const char *ctxname = str_field(body, "context", v, &has_ctx, 0);
	static const char *const direct[] = { "api_server", "ca_bundle", "tls_server_name", "token",
					      "client_certificate", "client_key", NULL };
	if (has_kc) {
		for (size_t i = 0; direct[i]; i++)
			if (json_object_get(body, direct[i]))
				verr(v, direct[i], "give either kubeconfig or the connection fields, not both");
		if (!kc)
			return;
		struct kubeconfig_opts opts = { r->app->cfg.allow_insecure_kubeconfig, NULL };
		struct kubeconfig_creds kcred;
		if (kubeconfig_parse(kc, strlen(kc), ctxname, &opts, &kcred, kerr, kerrlen) != 0) {
			verr(v, "kubeconfig", kerr);
			return;
		}
		c->api_server = kcred.api_server;
		kcred.api_server = NULL;
		c->set_tls_server_name = 1;
		c->tls_server_name = kcred.tls_server_name;
		kcred.tls_server_name = NULL;
		c->set_ca_bundle = 1;
		c->ca_bundle = kcred.ca_pem;
		kcred.ca_pem = NULL;
		c->token = kcred.token;
		kcred.token = NULL;
		c->cert = kcred.client_cert_pem;
		kcred.client_cert_pem = NULL;
		c->key = kcred.client_key_pem;
		kcred.client_key_pem = NULL;
		c->insecure = kcred.insecure;
		kubeconfig_creds_free(&kcred);
	} else {
		if (has_ctx)
			verr(v, "context", "only meaningful with kubeconfig");
		const char *s = str_field(body, "api_server", v, &p, 0);
		if (s)
			c->api_server = xstrdup(s);
		else if (!p && !patch)
			verr(v, "api_server", "required (or give a kubeconfig)");
		s = str_field(body, "tls_server_name", v, &c->set_tls_server_name, 1);
		if (s)
			c->tls_server_name = xstrdup(s);
		s = str_field(body, "ca_bundle", v, &c->set_ca_bundle, 1);
		if (s)
			c->ca_bundle = xstrdup(s);
		s = str_field(body, "token", v, &p, 0);
		if (s)
			c->token = xstrdup(s);
		s = str_field(body, "client_certificate", v, &p, 0);
		if (s)
			c->cert = xstrdup(s);
		s = str_field(body, "client_key", v, &p, 0);
		if (s)
			c->key = xstrdup(s);
		if (c->set_ca_bundle || c->api_server)
			c->insecure = 0;
	}
	/* Validate what we have. */
	char why[256];
	if (c->api_server && kube_server_url_valid(c->api_server, why, sizeof why) < 0)
		verr(v, "api_server", why);
	if (c->tls_server_name && kube_tls_server_name_valid(c->tls_server_name, why, sizeof why) < 0)
		verr(v, "tls_server_name", why);
	if (c->ca_bundle) {
		if (strlen(c->ca_bundle) > MAX_PEM_BYTES || pem_cert_count(c->ca_bundle) < 0)
			verr(v, "ca_bundle", "must be one or more PEM certificates");
	}
	if (c->token) {
		size_t n = strlen(c->token);
		int bad = n == 0 || n > 8192;
		for (size_t i = 0; i < n && !bad; i++)
			if ((unsigned char)c->token[i] < 0x21 || (unsigned char)c->token[i] > 0x7e)
				bad = 1;
		if (bad)
			verr(v, "token", "must be 1-8192 printable characters without spaces");
	}
	if (c->token && (c->cert || c->key))
		verr(v, "token", "give either token or client_certificate+client_key, not both");
	if (!!c->cert != !!c->key) {
		verr(v, c->cert ? "client_key" : "client_certificate",
		     "client_certificate and client_key go together");
	} else if (c->cert) {
		const char *why = NULL;
		if (strlen(c->cert) > MAX_PEM_BYTES || strlen(c->key) > MAX_PEM_BYTES)
			verr(v, "client_certificate", "too large");
		else if (!pem_pair_ok(c->cert, c->key, &why))
			verr(v, "client_certificate", why);
	}
	c->has_cred = c->token || (c->cert && c->key);
	if (!patch && !c->has_cred && !has_kc)
		verr(v, "token", "a credential is required: token, or client_certificate and client_key");
}

/* Seal the credential of c; NULL on failure (answered). */
static char *seal_cred(struct api_req *r, const struct conn_in *c)
{
	json_t *o = c->token ? json_pack("{s:s}", "token", c->token)
			     : json_pack("{s:s,s:s}", "client_cert", c->cert, "client_key", c->key);
	char *plain = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	char *sealed = NULL;
	if (plain && r->app->keys)
		sealed = crypto_seal(r->app->keys, plain, strlen(plain));
	if (plain) {
		memset(plain, 0, strlen(plain));
		free(plain);
	}
	if (!sealed)
		api_problem(r, 500, "Internal error",
			    "credentials could not be encrypted (is a master key configured?)");
	return sealed;
}

/* Validate labels: object of string -> string (a patch may use null). */
static void check_labels(json_t *labels, int patch, struct verrs *v)
{
	if (!labels)
		return;
	if (!json_is_object(labels)) {
		verr(v, "labels", "must be an object of string values");
		return;
	}
	if (json_object_size(labels) > 64) {
		verr(v, "labels", "at most 64 labels");
		return;
	}
	const char *k;
	json_t *val;
	json_object_foreach(labels, k, val) {
		char field[96];
		snprintf(field, sizeof(field), "labels.%.80s", k);
		if (!label_key_ok(k)) {
			verr(v, field, "label keys are [prefix/]name, name 1-63 of [A-Za-z0-9-_.]");
			continue;
		}
		if (patch && json_is_null(val))
			continue;
		if (!json_is_string(val)) {
			verr(v, field, "label values must be strings");
			continue;
		}
		const char *s = json_string_value(val);
		if (!label_name_ok(s, strlen(s), 1))
			verr(v, field, "label values are 0-63 of [A-Za-z0-9-_.], alphanumeric at the ends");
	}
}

static void reply_cluster(struct api_req *r, int status, json_t *cluster, int version)
{
	char etag[32];
	snprintf(etag, sizeof(etag), "\"%d\"", version);
	api_set_header(r, "ETag", etag);
	snprintf(r->target, sizeof(r->target), "%s",
		 json_string_value(json_object_get(cluster, "id")));
	if (status == 201) {
		char loc[128];
		snprintf(loc, sizeof(loc), "/v1/clusters/%s", r->target);
		api_set_header(r, "Location", loc);
	}
	api_reply(r, status, cluster);
}

/* Answer a create or update from its db_status: 409 for a duplicate name,
 * 400 for a value the database refused, 500 for an error, else ok_status
 * with the cluster (stolen). */
static void reply_saved(struct api_req *r, int st, int ok_status, json_t *cluster, int version,
			const char *name, const char *err)
{
	if (st == DB_CONFLICT)
		api_problem(r, 409, "Conflict", "a cluster named \"%s\" already exists in this tenant",
			    name ? name : "");
	else if (st == DB_INVALID)
		api_problem(r, 400, "Invalid request", "a field was rejected by the database");
	else if (st != DB_OK)
		api_db_error(r, err);
	else
		reply_cluster(r, ok_status, cluster, version);
}

static const char *const cluster_fields[] = {
	"name", "profile", "labels", "api_server", "ca_bundle", "tls_server_name", "token",
	"client_certificate", "client_key", "kubeconfig", "context", NULL
};

void api_clusters_create(struct api_req *r)
{
	struct verrs v = { 0 };
	struct conn_in c;
	char kerr[512];
	char *sealed = NULL, *labels_text = NULL;
	memset(&c, 0, sizeof(c));
	json_t *body = api_body_object(r);
	if (!body)
		return;
	if (!api_check_fields(r, body, cluster_fields))
		goto out;
	int present;
	const char *name = str_field(body, "name", &v, &present, 0);
	if (!present)
		verr(&v, "name", "required");
	else if (name && !api_dns_label_ok(name))
		verr(&v, "name", "must be a DNS label: lower-case letters, digits, '-', 1-63 characters");
	const char *profile = str_field(body, "profile", &v, &present, 0);
	if (!present)
		verr(&v, "profile", "required: tke, tke-coexist, k3s or generic");
	else if (profile && !one_of(profile, profiles))
		verr(&v, "profile", "must be tke, tke-coexist, k3s or generic");
	json_t *labels = json_object_get(body, "labels");
	check_labels(labels, 0, &v);
	read_conn(r, body, 0, &c, &v, kerr, sizeof(kerr));
	if (report_verrs(r, &v))
		goto out;
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	sealed = seal_cred(r, &c);
	if (!sealed)
		goto out;
	labels_text = labels ? json_dumps(labels, JSON_COMPACT) : NULL;
	struct db_cluster_fields f = {
		.name = name, .profile = profile, .labels = labels_text,
		.api_server = c.api_server, .tls_server_name = c.tls_server_name,
		.ca_bundle = c.ca_bundle, .credentials = sealed,
		.credentials_key_id = keyring_current_id(r->app->keys),
		.auth_kind = c.token ? "token" : "client-certificate",
		.insecure = c.insecure > 0,
	};
	json_t *cluster = NULL;
	int version = 0;
	char err[256];
	int st = db_cluster_create(db, r->auth.tenant_id, &f, &cluster, &version, err, sizeof(err));
	reply_saved(r, st, 201, cluster, version, name, err);
out:
	free(sealed);
	free(labels_text);
	conn_in_free(&c);
	json_decref(v.list);
	json_decref(body);
}

int api_parse_selector(const char *sel, char **store, struct db_label_req *reqs, int *n,
			  char *why, size_t whylen)
{
	*n = 0;
	*store = xstrdup(sel);
	if (!**store)
		return 0; /* an empty selector matches everything */
	char *next = *store;
	while (next) {
		char *tok = next;
		char *comma = strchr(tok, ',');
		if (comma) {
			*comma = '\0';
			next = comma + 1;
		} else {
			next = NULL;
		}
		while (*tok == ' ')
			tok++;
		char *end = tok + strlen(tok);
		while (end > tok && end[-1] == ' ')
			*--end = '\0';
		if (!*tok) {
			snprintf(why, whylen, "empty requirement");
			return -1;
		}
		if (*n >= DB_MAX_LABEL_REQS) {
			snprintf(why, whylen, "at most %d requirements", DB_MAX_LABEL_REQS);
			return -1;
		}
		struct db_label_req *q = &reqs[(*n)++];
		q->value = NULL;
		char *op;
		if ((op = strstr(tok, "!="))) {
			*op = '\0';
			q->op = DB_LABEL_NE;
			q->value = op + 2;
		} else if ((op = strstr(tok, "=="))) {
			*op = '\0';
			q->op = DB_LABEL_EQ;
			q->value = op + 2;
		} else if ((op = strchr(tok, '='))) {
			*op = '\0';
			q->op = DB_LABEL_EQ;
			q->value = op + 1;
		} else if (tok[0] == '!') {
			q->op = DB_LABEL_NOT_EXISTS;
			tok++;
		} else {
			q->op = DB_LABEL_EXISTS;
		}
		char *ke = tok + strlen(tok);
		while (ke > tok && ke[-1] == ' ')
			*--ke = '\0';
		while (*tok == ' ')
			tok++;
		if (q->value)
			while (*q->value == ' ')
				q->value++;
		q->key = tok;
		if (!label_key_ok(q->key)) {
			snprintf(why, whylen, "\"%.64s\" is not a valid label key", q->key);
			return -1;
		}
		if (q->value && !label_name_ok(q->value, strlen(q->value), 1)) {
			snprintf(why, whylen, "\"%.64s\" is not a valid label value", q->value);
			return -1;
		}
	}
	return 0;
}

void api_clusters_list(struct api_req *r)
{
	int limit, n = 0;
	char *store = NULL;
	struct db_label_req reqs[DB_MAX_LABEL_REQS];
	memset(reqs, 0, sizeof(reqs));
	if (!api_limit(r, &limit))
		return;
	const char *sel = api_query(r, "selector");
	if (sel) {
		char why[160];
		if (api_parse_selector(sel, &store, reqs, &n, why, sizeof(why)) != 0) {
			api_problem(r, 400, "Bad request", "bad label selector: %s", why);
			goto out;
		}
	}
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	json_t *page = NULL;
	char err[256];
	int st = db_cluster_list(db, r->auth.tenant_id, reqs, n, limit, api_query(r, "cursor"),
				 &page, err, sizeof(err));
	api_reply_page(r, st, page, err);
out:
	free(store);
}

void api_clusters_get(struct api_req *r)
{
	PGconn *db = api_db(r);
	if (!db)
		return;
	/* PostgreSQL's JSON passed through: ferry adds nothing to a GET. */
	char *body = NULL;
	int version = 0;
	char err[256];
	int st = db_cluster_get_body(db, r->auth.tenant_id, r->params[0], &body, &version, err,
				     sizeof(err));
	if (st == DB_NOT_FOUND) {
		api_problem(r, 404, "Not found", "no cluster %s", r->params[0]);
	} else if (st != DB_OK) {
		api_db_error(r, err);
	} else {
		char etag[32];
		snprintf(etag, sizeof(etag), "\"%d\"", version);
		api_set_header(r, "ETag", etag);
		snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
		api_reply_body(r, 200, body);
	}
}

/* If-Match: "N", W/"N" or *; 0 = none/any, -1 = malformed (answered). */
static int if_match(struct api_req *r)
{
	const char *h = api_header(r, "If-Match");
	if (!h)
		return 0;
	while (*h == ' ')
		h++;
	if (!strcmp(h, "*"))
		return 0;
	if (!strncmp(h, "W/", 2))
		h += 2;
	char *end;
	long v = -1;
	if (h[0] == '"') {
		v = strtol(h + 1, &end, 10);
		if (end == h + 1 || *end != '"' || end[1] != '\0')
			v = -1;
	}
	if (v <= 0 || v > 2147483647L) {
		api_problem(r, 412, "Precondition failed",
			    "If-Match must be an ETag from GET /v1/clusters/{id}");
		return -1;
	}
	return (int)v;
}

void api_clusters_patch(struct api_req *r)
{
	struct verrs v = { 0 };
	struct conn_in c;
	char kerr[512];
	char *sealed = NULL, *labels_text = NULL;
	memset(&c, 0, sizeof(c));
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	int ifv = if_match(r);
	if (ifv < 0)
		return;
	json_t *body = api_body_object(r);
	if (!body)
		return;
	if (!api_check_fields(r, body, cluster_fields))
		goto out;
	int present;
	const char *name = str_field(body, "name", &v, &present, 0);
	if (name && !api_dns_label_ok(name))
		verr(&v, "name", "must be a DNS label: lower-case letters, digits, '-', 1-63 characters");
	const char *profile = str_field(body, "profile", &v, &present, 0);
	if (profile && !one_of(profile, profiles))
		verr(&v, "profile", "must be tke, tke-coexist, k3s or generic");
	json_t *labels = json_object_get(body, "labels");
	if (labels && json_is_null(labels))
		labels = NULL; /* merge patch: null labels = no change to the map itself */
	check_labels(labels, 1, &v);
	read_conn(r, body, 1, &c, &v, kerr, sizeof(kerr));
	if (report_verrs(r, &v))
		goto out;
	PGconn *db = api_db(r);
	if (!db)
		goto out;
	if (c.has_cred) {
		sealed = seal_cred(r, &c);
		if (!sealed)
			goto out;
	}
	labels_text = labels ? json_dumps(labels, JSON_COMPACT) : NULL;
	struct db_cluster_fields f = {
		.name = name, .profile = profile, .labels = labels_text,
		.api_server = c.api_server,
		.set_tls_server_name = c.set_tls_server_name, .tls_server_name = c.tls_server_name,
		.set_ca_bundle = c.set_ca_bundle, .ca_bundle = c.ca_bundle,
		.credentials = sealed,
		.credentials_key_id = sealed ? keyring_current_id(r->app->keys) : NULL,
		.auth_kind = !c.has_cred ? NULL : (c.token ? "token" : "client-certificate"),
		.insecure = c.insecure,
	};
	json_t *cluster = NULL;
	int version = 0;
	char err[256];
	int st = db_cluster_update(db, r->auth.tenant_id, r->params[0], &f, ifv, &cluster,
				   &version, err, sizeof(err));
	if (st == DB_NOT_FOUND)
		api_problem(r, 404, "Not found", "no cluster %s", r->params[0]);
	else if (st == DB_PRECONDITION)
		api_problem(r, 412, "Precondition failed",
			    "the cluster changed since that ETag; GET it again and retry");
	else
		reply_saved(r, st, 200, cluster, version, name, err);
out:
	free(sealed);
	free(labels_text);
	conn_in_free(&c);
	json_decref(v.list);
	json_decref(body);
}

void api_clusters_delete(struct api_req *r)
{
	snprintf(r->target, sizeof(r->target), "%s", r->params[0]);
	int ifv = if_match(r);
	if (ifv < 0)
		return;
	PGconn *db = api_db(r);
	if (!db)
		return;
	char active[37] = "";
	char err[256];
	int st = db_cluster_delete(db, r->auth.tenant_id, r->params[0], ifv, active, err,
				   sizeof(err));
	if (st == DB_NOT_FOUND) {
		api_problem(r, 404, "Not found", "no cluster %s", r->params[0]);
	} else if (st == DB_PRECONDITION) {
		api_problem(r, 412, "Precondition failed",
			    "the cluster changed since that ETag; GET it again and retry");
	} else if (st == DB_CONFLICT) {
		api_problem_errors(r, 409, "Conflict",
				   json_pack("[{s:s,s:s}]", "field", "active_job_id", "message", active),
				   "job %s is queued or running on this cluster; cancel it or wait for it to finish",
				   active);
	} else if (st != DB_OK) {
		api_db_error(r, err);
	} else {
		api_reply(r, 204, NULL);
	}
}
