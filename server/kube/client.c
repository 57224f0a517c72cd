/*
 * kube/client: libcurl easy handles configured for one API server.
 *
 * Secrets stay in memory: the CA, client certificate and key are handed to
 * curl as blobs (CURLOPT_CAINFO_BLOB, CURLOPT_SSLCERT_BLOB,
 * CURLOPT_SSLKEY_BLOB), never written to disk. A TLS server name that differs
 * from the URL's host is implemented by rewriting the URL's host to that
 * name and telling curl to connect to the original address (CURLOPT_CONNECT_TO),
 * so SNI and certificate verification use the name while the packets go
 * to the address. Error messages come from curl's error buffer, which
 * never includes the Authorization header.
 */
#include "server/kube/client.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "server/common/buf.h"
#include "server/kube/conncache.h"
#include "server/kube/memo.h"

struct kube_client {
	char *base;              /* URL prefix requests are appended to */
	char *ca_pem;
	char *cert_pem;
	char *key_pem;
	char *auth_header;       /* "Authorization: Bearer …" or NULL */
	char *connect_to;        /* "name:port:host:port" or NULL */
	long timeout_ms, connect_timeout_ms;
	int insecure;
	CURL *curl;
	struct conncache_entry *cached;  /* parsed TLS material, or NULL: blobs */
	struct kube_memo *memo;
	atomic_long requests;
	atomic_long connects;
	atomic_long outcomes[KUBE_OUT_N];   /* requests by class */
	atomic_int last_failure;            /* enum kube_outcome, -1 = none */
};

int kube_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void kube_global_cleanup(void)
{
	conncache_clear();
	curl_global_cleanup();
}

/* Whether libcurl runs on OpenSSL, so that its SSL_CTX can take the cached
 * OpenSSL objects. */
static int curl_uses_openssl(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	return v && v->ssl_version && !strncmp(v->ssl_version, "OpenSSL/", 8);
}

static void fp_field(EVP_MD_CTX *md, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)(n >> (8 * i));
	EVP_DigestUpdate(md, len, sizeof len);   /* length-prefixed: unambiguous */
	if (n)
		EVP_DigestUpdate(md, s, n);
}

/* SHA-256 over everything a connection depends on. 0 or -1. */
static int settings_fingerprint(const struct kube_client *kc, unsigned char fp[CONNCACHE_FP_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	if (ok) {
		fp_field(md, kc->base);
		fp_field(md, kc->connect_to);
		fp_field(md, kc->ca_pem);
		fp_field(md, kc->cert_pem);
		fp_field(md, kc->key_pem);
		fp_field(md, kc->insecure ? "insecure" : "verify");
		ok = EVP_DigestFinal_ex(md, fp, &len) == 1 && len == CONNCACHE_FP_LEN;
	}
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* CURLOPT_SSL_CTX_FUNCTION: the cached CA store, certificate and key. */
static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
	(void)curl;
	return conncache_install(arg, ssl_ctx) == 0 ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	volatile char *p = s;
	while (*p)
		*p++ = 0;
	free(s);
}

/* Split "https://host[:port][/path]" into parts; 0 on success. */
static int split_url(const char *url, char *host, size_t hostlen, int *port,
		     const char **rest)
{
	if (strncasecmp(url, "https://", 8) != 0)
		return -1;
	const char *h = url + 8;
	const char *end = h + strcspn(h, "/?#");
	const char *colon = NULL;
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));
		if (!rb)
			return -1;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
	}
	const char *hend = colon ? colon : end;
	if (hend == h || (size_t)(hend - h) >= hostlen)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = 0;
	*port = 443;
	if (colon) {
		char *e = NULL;
		long p = strtol(colon + 1, &e, 10);
		if (e != end || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	*rest = end;
	return 0;
}

struct kube_client *kube_client_new(const struct kube_client_config *cfg,
				    char *err, size_t errlen)
{
	char host[256];
	int port;
	const char *rest;
	if (!cfg->server || split_url(cfg->server, host, sizeof(host), &port, &rest) != 0) {
		snprintf(err, errlen, "API server URL must look like https://host[:port][/path]");
		return NULL;
	}
	if ((cfg->client_cert_pem && *cfg->client_cert_pem) != (cfg->client_key_pem && *cfg->client_key_pem)) {
		snprintf(err, errlen, "a client certificate needs its key (and a key its certificate)");
		return NULL;
	}
	struct kube_client *kc = xcalloc(1, sizeof(*kc));
	atomic_init(&kc->last_failure, -1);
	struct buf b = BUF_INIT;
	if (cfg->tls_server_name && *cfg->tls_server_name && strcmp(cfg->tls_server_name, host) != 0) {
		buf_printf(&b, "https://%s:%d%s", cfg->tls_server_name, port, rest);
		struct buf ct = BUF_INIT;
		buf_printf(&ct, "%s:%d:%s:%d", cfg->tls_server_name, port, host, port);
		kc->connect_to = buf_steal(&ct);
	} else {
		buf_puts(&b, cfg->server);
	}
	/* no trailing slash: paths start with '/' */
	while (b.len > 0 && b.data[b.len - 1] == '/')
		b.data[--b.len] = 0;
	kc->base = buf_steal(&b);
	if (cfg->ca_pem && *cfg->ca_pem)
		kc->ca_pem = xstrdup(cfg->ca_pem);
	if (cfg->client_cert_pem && *cfg->client_cert_pem) {
		kc->cert_pem = xstrdup(cfg->client_cert_pem);
		kc->key_pem = xstrdup(cfg->client_key_pem);
	}
	if (cfg->token && *cfg->token) {
		struct buf a = BUF_INIT;
		buf_printf(&a, "Authorization: Bearer %s", cfg->token);
		kc->auth_header = buf_steal(&a);
	}
	kc->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	kc->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
	kc->insecure = cfg->insecure_skip_tls_verify != 0;
	if (cfg->cache_key && *cfg->cache_key && (kc->ca_pem || kc->cert_pem) && curl_uses_openssl()) {
		unsigned char fp[CONNCACHE_FP_LEN];
		char cerr[160];
		void *idle = NULL;
		if (settings_fingerprint(kc, fp) == 0)
			kc->cached = conncache_acquire(cfg->cache_key, fp, kc->ca_pem, kc->cert_pem, kc->key_pem,
						       &idle, cerr, sizeof cerr);
		/* PEM that does not decode: left to curl, which reports it on
		 * the first request exactly as without the cache. */
		kc->curl = idle;
	}
	if (!kc->curl)
		kc->curl = curl_easy_init();
	kc->memo = kube_memo_new();
	if (!kc->curl) {
		snprintf(err, errlen, "cannot initialise libcurl");
		kube_client_free(kc);
		return NULL;
	}
	return kc;
}

void kube_client_free(struct kube_client *kc)
{
	if (!kc)
		return;
	if (kc->cached)
		conncache_release(kc->cached, kc->curl);   /* keeps the connection */
	else if (kc->curl)
		curl_easy_cleanup(kc->curl);
	kube_memo_free(kc->memo);
	free(kc->base);
	free(kc->ca_pem);
	wipe_free(kc->cert_pem);
	wipe_free(kc->key_pem);
	wipe_free(kc->auth_header);
	free(kc->connect_to);
	free(kc);
}

long kube_client_requests(const struct kube_client *kc)
{
	return atomic_load(&((struct kube_client *)kc)->requests);
}

void kube_client_reset_requests(struct kube_client *kc)
{
	atomic_store(&kc->requests, 0);
}

struct kube_memo *kube_client_memo(struct kube_client *kc)
{
	return kc->memo;
}

long kube_client_connects(const struct kube_client *kc)
{
	return atomic_load(&((struct kube_client *)kc)->connects);
}

void kube_client_outcomes(const struct kube_client *kc, long out[KUBE_OUT_N])
{
	struct kube_client *k = (struct kube_client *)kc;
	for (int i = 0; i < KUBE_OUT_N; i++)
		out[i] = atomic_load(&k->outcomes[i]);
}

int kube_client_last_failure(const struct kube_client *kc)
{
	return atomic_load(&((struct kube_client *)kc)->last_failure);
}

/* count one request's outcome (transport: rc of curl, else the status) */
static void count_outcome(struct kube_client *kc, int transport_failed, int timed_out, long status)
{
	int cls = transport_failed ? (timed_out ? KUBE_OUT_TIMEOUT : KUBE_OUT_TRANSPORT)
		: status < 300 ? KUBE_OUT_2XX : status < 400 ? KUBE_OUT_3XX
		: status == 429 ? KUBE_OUT_429 : status < 500 ? KUBE_OUT_4XX : KUBE_OUT_5XX;
	atomic_fetch_add(&kc->outcomes[cls], 1);
	if (cls >= KUBE_OUT_4XX)
		atomic_store(&kc->last_failure, cls);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	/* Refuse absurd bodies (256 MiB) rather than exhausting memory. */
	if (b->len + size * n > (size_t)256 << 20)
		return 0;
	buf_append(b, data, size * n);
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct kube_response *r = arg;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		char tmp[32];
		size_t l = len - 12 < sizeof(tmp) - 1 ? len - 12 : sizeof(tmp) - 1;
		memcpy(tmp, data + 12, l);
		tmp[l] = 0;
		char *e = NULL;
		long v = strtol(tmp, &e, 10);
		if (e != tmp && v >= 0)
			r->retry_after = v;
	} else if (len > 13 && !strncasecmp(data, "Content-Type:", 13)) {
		const char *v = data + 13;
		size_t l = len - 13;
		while (l > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			l--;
		}
		while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
			l--;
		if (l >= sizeof(r->content_type))
			l = sizeof(r->content_type) - 1;
		memcpy(r->content_type, v, l);
		r->content_type[l] = 0;
	}
	return len;
}

int kube_request(struct kube_client *kc, const char *method, const char *path,
		 const char *content_type, const char *body, size_t body_len,
		 struct kube_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	atomic_fetch_add(&kc->requests, 1);
	CURL *c = kc->curl;
	curl_easy_reset(c);
	struct buf url = BUF_INIT, out = BUF_INIT;
	struct curl_slist *hdrs = NULL, *connect_to = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	buf_printf(&url, "%s%s", kc->base, path && *path == '/' ? path : "/");
	if (path && *path != '/')
		buf_puts(&url, path);

	curl_easy_setopt(c, CURLOPT_URL, buf_cstr(&url));
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, kc->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, kc->insecure ? 0L : 2L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, kc->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kc->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry/0.1");
	if (kc->cached) {
		/* The cached OpenSSL objects go into each new connection's
		 * SSL_CTX; a reused connection needs nothing. With a CA bundle
		 * only that bundle is trusted (as kubectl does), so curl must
		 * not load its default CA file or directory either. */
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, kc->cached);
		if (conncache_has_ca(kc->cached)) {
			curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
			curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
		}
	} else if (kc->ca_pem) {
		struct curl_blob ca = { kc->ca_pem, strlen(kc->ca_pem), CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
	}
	if (kc->cert_pem && !kc->cached) {
		struct curl_blob cert = { kc->cert_pem, strlen(kc->cert_pem), CURL_BLOB_COPY };
		struct curl_blob key = { kc->key_pem, strlen(kc->key_pem), CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (kc->connect_to) {
		connect_to = curl_slist_append(NULL, kc->connect_to);
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (kc->auth_header)
		hdrs = curl_slist_append(hdrs, kc->auth_header);
	if (body) {
		char ct[160];
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
		hdrs = curl_slist_append(hdrs, ct);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

	CURLcode rc = curl_easy_perform(c);
	int result = 0;
	if (rc != CURLE_OK) {
		const char *what = *errbuf ? errbuf : curl_easy_strerror(rc);
		const char *kind = "network error";
		switch (rc) {
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
			kind = "TLS error";
			break;
		case CURLE_OPERATION_TIMEDOUT:
			kind = "timeout";
			break;
		default:
			break;
		}
		snprintf(resp->error, sizeof(resp->error), "%s: %s %.100s: %.250s", kind, method,
			 path ? path : "/", what);
		result = -1;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	}
	long nc = 0;
	if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK && nc > 0)
		atomic_fetch_add(&kc->connects, nc);
	count_outcome(kc, result < 0, rc == CURLE_OPERATION_TIMEDOUT, resp->status);
	resp->raw_len = out.len;
	resp->raw = buf_steal(&out);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(connect_to);
	buf_free(&url);
	return result;
}

int kube_get(struct kube_client *kc, const char *path, struct kube_response *resp)
{
	return kube_request(kc, "GET", path, NULL, NULL, 0, resp);
}

int kube_delete(struct kube_client *kc, const char *path, struct kube_response *resp)
{
	return kube_request(kc, "DELETE", path, NULL, NULL, 0, resp);
}

static int send_json(struct kube_client *kc, const char *method, const char *path,
		     const json_t *body, struct kube_response *resp)
{
	char *text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		memset(resp, 0, sizeof(*resp));
		resp->retry_after = -1;
		resp->raw = xstrdup("");
		snprintf(resp->error, sizeof(resp->error), "cannot serialise the request body");
		return -1;
	}
	int rc = kube_request(kc, method, path, "application/json", text, strlen(text), resp);
	free(text);
	return rc;
}

int kube_post_json(struct kube_client *kc, const char *path, const json_t *body,
		   struct kube_response *resp)
{
	return send_json(kc, "POST", path, body, resp);
}

int kube_put_json(struct kube_client *kc, const char *path, const json_t *body,
		  struct kube_response *resp)
{
	return send_json(kc, "PUT", path, body, resp);
}

int kube_patch(struct kube_client *kc, const char *path, const char *content_type,
	       const char *body, size_t body_len, struct kube_response *resp)
{
	return kube_request(kc, "PATCH", path, content_type, body, body_len, resp);
}

json_t *kube_response_json(struct kube_response *resp)
{
	if (!resp->parsed) {
		resp->parsed = 1;
		if (!resp->error[0] && resp->raw && resp->raw_len > 0 &&
		    (resp->raw[0] == '{' || resp->raw[0] == '[' || strstr(resp->content_type, "json")))
			resp->body = json_loadb(resp->raw, resp->raw_len, 0, NULL);
	}
	return resp->body;
}

void kube_response_free(struct kube_response *resp)
{
	if (!resp)
		return;
	json_decref(resp->body);
	free(resp->raw);
	resp->body = NULL;
	resp->parsed = 0;
	resp->raw = NULL;
}

void kube_response_describe(const struct kube_response *resp, char *buf, size_t len)
{
	if (resp->error[0]) {
		snprintf(buf, len, "%s", resp->error);
		return;
	}
	const char *msg = NULL, *reason = NULL;
	json_t *status = resp->parsed ? json_incref(resp->body)
		       : resp->raw && resp->raw_len ? json_loadb(resp->raw, resp->raw_len, 0, NULL) : NULL;
	if (json_is_object(status)) {
		msg = json_string_value(json_object_get(status, "message"));
		reason = json_string_value(json_object_get(status, "reason"));
	}
	if (msg)
		snprintf(buf, len, "HTTP %ld%s%s: %s", resp->status, reason ? " " : "",
			 reason ? reason : "", msg);
	else
		snprintf(buf, len, "HTTP %ld: %.120s", resp->status, resp->raw ? resp->raw : "");
	json_decref(status);
	/* one line */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}
