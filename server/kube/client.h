/*
 * kube/client: a small Kubernetes API client over libcurl.
 *
 * One kube_client talks to one API server: base URL (which may carry a path
 * prefix), the CA bundle it must verify the server against (PEM held in
 * memory; without one the system CAs are used), an optional TLS server name
 * (when the certificate is issued for another name than the URL's host),
 * and one credential: a bearer token or a client certificate + key (PEM in
 * memory). TLS verification is on, except for a cluster explicitly imported
 * with insecure-skip-tls-verify (insecure_skip_tls_verify below; the server
 * accepts such imports only when configured to).
 *
 * kube_request() performs one HTTP exchange and returns 0 whenever an HTTP
 * response arrived (any status; the caller looks at resp->status), or -1
 * on a transport failure (DNS, connect, TLS, timeout) with a readable
 * message in resp->error that never contains credentials. Responses with a
 * JSON body are parsed into resp->body; resp->raw always holds the bytes.
 * Retry-After (seconds) is reported in resp->retry_after (-1 if absent).
 * Every attempted request increments the client's request counter, which
 * phases use to report API calls.
 *
 * Connections: a client keeps one curl handle, so its requests reuse one
 * keep-alive connection. With a cache_key (the cluster id), the client
 * also shares with every client of the same key and the same connection
 * settings (kube/conncache.h): the CA bundle, client certificate and key
 * are decoded once per cluster into OpenSSL objects that each new TLS
 * connection takes, and kube_client_free() leaves the curl handle with
 * its open connection and TLS sessions to the next client of the cluster.
 * Other settings for the same key (credentials or CA changed) replace the
 * cached ones at once. With a CA bundle, only that bundle is trusted (as
 * kubectl does); without one, the system CAs.
 *
 * Memory: the client copies everything it is given; kube_response_free()
 * releases what a response holds. Thread-safety: one client belongs to one
 * thread at a time (it reuses one curl handle and its connection); the
 * counters may be read from anywhere; the cache is process-wide and
 * locked. kube_global_init() must run once before any thread starts
 * (ferryd's main does it); kube_global_cleanup() frees the cache.
 */
#ifndef FERRY_KUBE_CLIENT_H
#define FERRY_KUBE_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct kube_client_config {
	const char *server;          /* https://host:port[/prefix] */
	const char *ca_pem;          /* NULL = system CAs */
	const char *tls_server_name; /* NULL = the URL's host */
	const char *token;           /* bearer token, or NULL */
	const char *client_cert_pem; /* client certificate (with client_key_pem) */
	const char *client_key_pem;
	long timeout_ms;             /* whole request; default 30000 */
	long connect_timeout_ms;     /* default 10000 */
	int insecure_skip_tls_verify; /* only for clusters explicitly imported so
				       * (server option allow_insecure_kubeconfig) */
	const char *cache_key;       /* share TLS material and idle connections
				      * with other clients of this key (the
				      * cluster id); NULL = nothing shared */
};

struct kube_response {
	long status;        /* HTTP status, 0 on transport failure */
	json_t *body;       /* the parsed JSON body once kube_response_json()
			     * parsed it (NULL before, and when it is not JSON) */
	int parsed;         /* kube_response_json() ran */
	char *raw;          /* raw body bytes, NUL-terminated (never NULL after a call) */
	size_t raw_len;
	long retry_after;   /* seconds from Retry-After, -1 if absent */
	char content_type[96];
	char error[400];    /* transport error, or "" */
};

struct kube_client;

int kube_global_init(void);
void kube_global_cleanup(void);

/* NULL with a message in err on a bad configuration (no server, https
 * missing, certificate without key). */
struct kube_client *kube_client_new(const struct kube_client_config *cfg,
				    char *err, size_t errlen);
void kube_client_free(struct kube_client *kc);

/* One request. path starts with '/' and is appended to the server URL (it
 * may carry a query string). body may be NULL; content_type defaults to
 * application/json when a body is given. */
int kube_request(struct kube_client *kc, const char *method, const char *path,
		 const char *content_type, const char *body, size_t body_len,
		 struct kube_response *resp);

int kube_get(struct kube_client *kc, const char *path, struct kube_response *resp);
int kube_delete(struct kube_client *kc, const char *path, struct kube_response *resp);
/* JSON body given as jansson (serialised compactly). */
int kube_post_json(struct kube_client *kc, const char *path, const json_t *body,
		   struct kube_response *resp);
int kube_put_json(struct kube_client *kc, const char *path, const json_t *body,
		  struct kube_response *resp);
/* PATCH with an explicit patch content type, e.g.
 * "application/merge-patch+json", "application/json-patch+json",
 * "application/strategic-merge-patch+json", "application/apply-patch+yaml". */
int kube_patch(struct kube_client *kc, const char *path, const char *content_type,
	       const char *body, size_t body_len, struct kube_response *resp);

/* The body as JSON, parsed on first use (most answers to writes are
 * never read: parsing them all was a tenth of an install's CPU); NULL when
 * the body is empty or not JSON. Owned by resp (kube_response_free). */
json_t *kube_response_json(struct kube_response *resp);
void kube_response_free(struct kube_response *resp);

/* A one-line description of a non-2xx response: the Status message when the
 * body is a kind: Status, else the first bytes of the body. Into buf. */
void kube_response_describe(const struct kube_response *resp, char *buf, size_t len);

/* Requests attempted through this client so far. */
long kube_client_requests(const struct kube_client *kc);
void kube_client_reset_requests(struct kube_client *kc);
/* New connections (TCP + TLS handshakes) this client opened so far; 0 for
 * a client whose every request reused a kept-alive connection. */
long kube_client_connects(const struct kube_client *kc);

/* The client's memo of objects (kube/memo.h): a client serves one job, so
 * this is what the job already read or wrote. Owned by the client. */
struct kube_memo;
struct kube_memo *kube_client_memo(struct kube_client *kc);

/* What the requests came to, by class (for the metrics of server/metrics.h):
 * a response below 300, 3xx, 4xx other than 429, 429, 5xx, a transport
 * failure other than a timeout (DNS, connect, TLS), a timeout. */
enum kube_outcome {
	KUBE_OUT_2XX, KUBE_OUT_3XX, KUBE_OUT_4XX, KUBE_OUT_429, KUBE_OUT_5XX,
	KUBE_OUT_TRANSPORT, KUBE_OUT_TIMEOUT, KUBE_OUT_N
};
/* Requests so far per class into out[]. */
void kube_client_outcomes(const struct kube_client *kc, long out[KUBE_OUT_N]);
/* The class of the last request that did not get a response below 400
 * (KUBE_OUT_4XX .. KUBE_OUT_TIMEOUT), or -1 when none failed so far. */
int kube_client_last_failure(const struct kube_client *kc);

#endif
