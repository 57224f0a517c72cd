/*
 * app: the process-wide context of ferryd, built once by main() from flags
 * and environment, then shared read-only by the HTTP server and the workers.
 *
 * Ownership: main() owns the struct app and everything it points to; threads
 * only read it (the pool and metrics are themselves thread-safe).
 */
#ifndef FERRY_APP_H
#define FERRY_APP_H

#include <stddef.h>

struct db_pool;
struct keyring;
struct metrics;
struct render_slots;
struct chart_cache;
struct oidc;
struct tokencache;
struct pg_conn;   /* libpq's PGconn */
struct json_t;    /* jansson's json_t */

struct app_config {
	const char *database_url;   /* FERRY_DATABASE_URL; NULL = embedded PostgreSQL */
	const char *listen;         /* FERRY_LISTEN, "127.0.0.1:8080" */
	const char *web_root;       /* directory of the static console */
	const char *data_dir;       /* FERRY_DATA_DIR: embedded PostgreSQL, key file */
	int workers;                /* FERRY_WORKERS */
	int log_level;              /* LOG_DEBUG..LOG_ERROR (see server/log.h) */
	size_t max_body_bytes;      /* FERRY_MAX_BODY_BYTES, default 1 MiB */
	int max_json_depth;         /* default 32 */
	int allow_insecure_kubeconfig;  /* accept insecure-skip-tls-verify / exec */
	int lease_seconds;          /* job lease length, default 30 */
	int max_phase_attempts;     /* retries of a failed phase, default 5 */
	const char *node_id;        /* this process's lease owner name */
	const char *charts_dir;     /* FERRY_CHARTS_DIR: local chart archives */
	long retry_base_ms;         /* first phase retry delay, default 1000 (doubles, with jitter) */
	/* Chart render budget (docs/SECURITY.md); 0 = the chart engine's default. */
	long render_max_ms;         /* FERRY_RENDER_MAX_MS */
	size_t render_max_memory;   /* FERRY_RENDER_MAX_MEMORY_MB, in bytes */
	long render_max_steps;      /* FERRY_RENDER_MAX_STEPS */
	size_t render_max_output;   /* FERRY_RENDER_MAX_OUTPUT_MB, in bytes */
	/* Chart renders (docs/ARCHITECTURE.md "Renders"). */
	int render_concurrency;     /* FERRY_RENDER_CONCURRENCY: renders at once in
				     * this process; default: online CPUs */
	int malloc_arenas;          /* FERRY_MALLOC_ARENAS: glibc malloc arenas
				     * (M_ARENA_MAX); default: online CPUs */
	int worker_stack_kb;        /* FERRY_WORKER_STACK_KB: a worker thread's
				     * stack; default 1024 (docs/ARCHITECTURE.md) */
	int chart_cache_size;       /* FERRY_CHART_CACHE_SIZE: parsed charts kept
				     * while unused; default 4, 0 = no cache */
	int key_pool_2048;          /* FERRY_KEY_POOL_SIZE: RSA-2048 keys made
				     * ahead of time; default 8, 0 = none */
	int key_pool_4096;          /* FERRY_KEY_POOL_SIZE_4096; default 0 */
	int tenant_max_running_jobs;  /* FERRY_TENANT_MAX_RUNNING_JOBS: running jobs
				       * (and so chart renders) of one tenant in this
				       * process; default max(1, workers - 1); 0 = no cap */
	/* Slow clients (docs/SECURITY.md); 0 = default. */
	int http_max_connections;     /* FERRY_HTTP_MAX_CONNECTIONS, 2048 */
	int http_per_ip_connections;  /* FERRY_HTTP_PER_IP_CONNECTIONS, 64 */
	int http_header_timeout_s;    /* FERRY_HTTP_HEADER_TIMEOUT_S, 10 */
	int http_idle_timeout_s;      /* FERRY_HTTP_IDLE_TIMEOUT_S, 60 */
	int http_threads;             /* FERRY_HTTP_THREADS: API handler threads
				       * (server/http.h); -1 = default (16), 0 = run
				       * handlers on the event threads */
	/* TLS and proxies (docs/AUTH.md). */
	const char *tls_cert;         /* --tls-cert / FERRY_TLS_CERT: PEM chain; NULL = plain HTTP */
	const char *tls_key;          /* --tls-key / FERRY_TLS_KEY: PEM key */
	const char *trusted_proxies;  /* --trusted-proxy / FERRY_TRUSTED_PROXIES: CIDR list */
	const char *oidc_issuer;      /* --oidc-issuer / FERRY_OIDC_ISSUER; NULL = no SSO */
};

struct app {
	struct app_config cfg;
	struct db_pool *db;
	struct keyring *keys;
	struct metrics *metrics;
	/* Shared by the workers' chart renders; NULL = no cap / no cache
	 * (server/install/render_guard.h, server/install/chartcache.h). */
	struct render_slots *render_slots;
	struct chart_cache *charts;
	struct oidc *oidc;          /* single sign-on (api/oidc.h); NULL = off */
	struct tokencache *tokens;  /* accepted API tokens (db/tokencache.h); NULL = none */
	/* Is the chart an install/upgrade with these params would use
	 * (params.chart_version, else the default) available to tenant_id?
	 * 0 yes, -1 no, -2 cannot tell now; the version into version, the
	 * reason into err. ferryd.c sets it to chartsource_available()
	 * (server/install/chartsource.h), so that handlers (api/campaigns.c)
	 * ask without reaching into server/install/. */
	int (*chart_available)(const struct app *app, struct pg_conn *conn, const char *tenant_id,
			       const struct json_t *params, char *version, size_t versionlen, char *err,
			       size_t errlen);
	volatile int stopping;      /* set by SIGTERM/SIGINT */
};

#endif
