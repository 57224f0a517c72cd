/*
 * ferryd: the service's main program.
 *
 *   ferryd serve [--demo] [options]   HTTP API + console + workers
 *   ferryd migrate [options]          apply pending migrations and exit
 *   ferryd token create --tenant T --role R [--name N] | --platform
 *   ferryd rekey --new-key-file FILE [options]   re-seal stored credentials
 *   ferryd version | --version
 *
 * Configuration comes from flags, then environment (FERRY_*), then
 * defaults; flags win. Every setting is validated before anything starts and
 * a bad one stops start-up with one line on stderr naming the setting.
 * Without a database URL, ferryd runs its own PostgreSQL under the data
 * directory (server/pgembed.c). The main thread blocks SIGINT/SIGTERM before
 * starting any thread and waits for them with sigwait(); shutdown then runs
 * in order: HTTP stops accepting, workers release their leases, kubesim
 * (demo) stops, the pool closes, the embedded PostgreSQL stops. Under
 * systemd (Type=notify) `serve` sends READY=1 once the listener and the
 * workers run, STOPPING=1 when shutdown begins (server/sdnotify.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/oidc.h"
#include "db/migrate.h"
#include "db/pool.h"
#include "db/rekey.h"
#include "db/tokencache.h"
#include "server/app.h"
#include "server/chart/keypool.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/demo.h"
#include "server/http.h"
#include "server/install/chartcache.h"
#include "server/install/chartsource.h"
#include "server/install/render_guard.h"
#include "server/kube/client.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/pgembed.h"
#include "server/sdnotify.h"
#include "server/tlscreds.h"
#include "server/trustproxy.h"
#include "server/worker.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
/* Where `make install` puts the console and the programs (configure's
 * $(pkgdatadir)/web and $(bindir), passed by server/Makefile.inc). */
#ifndef FERRY_WEB_DIR
#define FERRY_WEB_DIR "/usr/local/share/ferry/web"
#endif
#ifndef FERRY_BINDIR
#define FERRY_BINDIR "/usr/local/bin"
#endif

/* Settings shared by the subcommands, before validation. */
struct settings {
	const char *database_url;
	const char *listen;
	const char *master_key;
	const char *master_key_file;
	const char *workers;
	const char *log_level;
	const char *data_dir;
	const char *web_root;
	const char *max_body;
	const char *node_id;
	const char *lease_seconds;
	const char *charts_dir;
	const char *new_key_file;   /* rekey */
	const char *tls_cert;
	const char *tls_key;
	const char *trusted_proxy;
	const char *oidc_issuer;
	int allow_insecure;
	int demo;
	int no_migrate;
	/* token create */
	const char *tenant;
	const char *role;
	const char *name;
	int platform;
};

static const char *envor(const char *flag, const char *env)
{
	if (flag)
		return flag;
	const char *v = getenv(env);
	return v && *v ? v : NULL;
}

static void die(const char *fmt, const char *a)
{
	fprintf(stderr, "ferryd: ");
	fprintf(stderr, fmt, a ? a : "");
	fputc('\n', stderr);
	exit(2);
}

static void usage_main(FILE *f)
{
	fprintf(f,
		"usage: ferryd <command> [options]\n"
		"\n"
		"commands:\n"
		"  serve          run the HTTP API, the web console and the job workers\n"
		"  migrate        apply pending database migrations and exit\n"
		"  token create   create an API token (bootstrap the first admin)\n"
		"  rekey          re-seal every stored credential under a new master key\n"
		"  version        print the version (also --version)\n"
		"\n"
		"Run `ferryd <command> --help` for the options of a command.\n");
}

static const char common_opts[] =
	"  --database-url URL      PostgreSQL URL (FERRY_DATABASE_URL); without one,\n"
	"                          an embedded PostgreSQL runs under the data directory\n"
	"  --data-dir DIR          embedded PostgreSQL, generated key (FERRY_DATA_DIR, ./var)\n"
	"  --log-level LEVEL       debug|info|warn|error (FERRY_LOG_LEVEL, info)\n";

static void usage_serve(FILE *f)
{
	fprintf(f,
		"usage: ferryd serve [options]\n"
		"\n"
		"Serves the REST API (/v1), the console (/), /healthz, /readyz, /metrics,\n"
		"and runs the job workers. Applies pending migrations at start.\n"
		"\n"
		"options:\n%s"
		"  --listen ADDR:PORT      HTTP address (FERRY_LISTEN, 127.0.0.1:8080)\n"
		"  --master-key-file FILE  key file \"id:hex64[,id:hex64...]\" (FERRY_MASTER_KEY_FILE;\n"
		"                          or the key itself in FERRY_MASTER_KEY). With the embedded\n"
		"                          database a key is generated in the data directory.\n"
		"  --workers N             job worker threads, 0..256 (FERRY_WORKERS, 4)\n"
		"  --web-root DIR          static console files (FERRY_WEB_ROOT; installed:\n"
		"                          " FERRY_WEB_DIR ", in a build tree: ./web)\n"
		"  --max-body-bytes N      request body limit (FERRY_MAX_BODY_BYTES, 1048576)\n"
		"  --node-id NAME          lease owner name (FERRY_NODE_ID, host:pid)\n"
		"  --lease-seconds N       job lease length (FERRY_LEASE_SECONDS, 30)\n"
		"  --charts-dir DIR        local chart archives (FERRY_CHARTS_DIR)\n"
		"  --tls-cert FILE         serve HTTPS with this PEM certificate chain (FERRY_TLS_CERT);\n"
		"                          SIGHUP reloads it and the key\n"
		"  --tls-key FILE          its PEM private key (FERRY_TLS_KEY)\n"
		"  --trusted-proxy CIDRS   proxies whose X-Forwarded-For/-Proto are believed,\n"
		"                          comma-separated (FERRY_TRUSTED_PROXIES)\n"
		"  --oidc-issuer URL       OpenID Connect single sign-on (FERRY_OIDC_ISSUER; the\n"
		"                          other FERRY_OIDC_* settings in docs/AUTH.md)\n"
		"  --allow-insecure-kubeconfig  accept kubeconfigs with exec plugins or\n"
		"                          insecure-skip-tls-verify (FERRY_ALLOW_INSECURE_KUBECONFIG=1)\n"
		"  --no-migrate            refuse to start when migrations are pending\n"
		"  --demo                  create a demo tenant and tokens (printed once) and\n"
		"                          start a simulated cluster with kubesim if it is built\n",
		common_opts);
}

static void usage_migrate(FILE *f)
{
	fprintf(f, "usage: ferryd migrate [options]\n\nApplies pending migrations (each once, in order, under an advisory lock).\n\noptions:\n%s", common_opts);
}

static void usage_token(FILE *f)
{
	fprintf(f,
		"usage: ferryd token create (--tenant NAME --role ROLE | --platform) [--name NAME] [options]\n"
		"\n"
		"Creates an API token and prints it once. --platform makes a platform-wide\n"
		"admin token (it manages tenants). ROLE is admin, operator or viewer; the\n"
		"tenant is created if it does not exist.\n"
		"\n"
		"options:\n%s", common_opts);
}

static void usage_rekey(FILE *f)
{
	fprintf(f,
		"usage: ferryd rekey --new-key-file FILE [options]\n"
		"\n"
		"Re-seals every stored credential (the clusters' kubeconfig tokens and client\n"
		"keys) under the first key of FILE, in one transaction. The old key is the one\n"
		"ferryd runs with (FERRY_MASTER_KEY, FERRY_MASTER_KEY_FILE or --master-key-file;\n"
		"the data directory's master.key with the embedded database). If the old key\n"
		"does not open every credential, nothing is changed (exit status 1).\n"
		"Afterwards run every ferryd with the new key (docs/OPERATIONS.md).\n"
		"\n"
		"options:\n%s"
		"  --master-key-file FILE  the old key (FERRY_MASTER_KEY_FILE / FERRY_MASTER_KEY)\n"
		"  --new-key-file FILE     the new key \"id:hex64\" (a new id, or the old keyring's first\n"
		"                          key when the processes already seal with it)\n",
		common_opts);
}

/* Parse argv[start..] into s; unknown options are fatal. */
static void parse_flags(int argc, char **argv, int start, struct settings *s, void (*usage)(FILE *))
{
	for (int i = start; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		const char *eq = strchr(a, '=');
		char key[64];
		if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof(key)) {
			memcpy(key, a, (size_t)(eq - a));
			key[eq - a] = 0;
			val = eq + 1;
			a = key;
		}
#define TAKE(flag, field) \
		if (!strcmp(a, flag)) { \
			if (!val) { \
				if (i + 1 >= argc) die("%s needs a value", flag); \
				val = argv[++i]; \
			} \
			s->field = val; \
			continue; \
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		TAKE("--database-url", database_url)
		TAKE("--listen", listen)
		TAKE("--master-key-file", master_key_file)
		TAKE("--workers", workers)
		TAKE("--log-level", log_level)
		TAKE("--data-dir", data_dir)
		TAKE("--web-root", web_root)
		TAKE("--max-body-bytes", max_body)
		TAKE("--node-id", node_id)
		TAKE("--lease-seconds", lease_seconds)
		TAKE("--charts-dir", charts_dir)
		TAKE("--tls-cert", tls_cert)
		TAKE("--tls-key", tls_key)
		TAKE("--trusted-proxy", trusted_proxy)
		TAKE("--oidc-issuer", oidc_issuer)
		TAKE("--tenant", tenant)
		TAKE("--role", role)
		TAKE("--name", name)
		TAKE("--new-key-file", new_key_file)
#undef TAKE
		if (!strcmp(a, "--demo")) { s->demo = 1; continue; }
		if (!strcmp(a, "--no-migrate")) { s->no_migrate = 1; continue; }
		if (!strcmp(a, "--platform")) { s->platform = 1; continue; }
		if (!strcmp(a, "--allow-insecure-kubeconfig")) { s->allow_insecure = 1; continue; }
		fprintf(stderr, "ferryd: unknown option %s (see --help)\n", argv[i]);
		exit(2);
	}
}

static long parse_long(const char *what, const char *v, long lo, long hi, long def)
{
	if (!v)
		return def;
	char *e = NULL;
	errno = 0;
	long n = strtol(v, &e, 10);
	if (errno || e == v || *e || n < lo || n > hi) {
		fprintf(stderr, "ferryd: %s must be a whole number from %ld to %ld (got \"%s\")\n", what, lo, hi, v);
		exit(2);
	}
	return n;
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The console's directory when none is configured:
 *  - a ferryd that runs from <root>FERRY_BINDIR (installed; <root> is empty,
 *    or the DESTDIR of `make install DESTDIR=<root>`, or wherever the
 *    installed tree was moved as a whole) uses <root>FERRY_WEB_DIR, where
 *    `make install` put the console, when it exists;
 *  - otherwise (a build directory) it uses ./web (a checkout), else
 *    <binary dir>/../web (a build directory inside the checkout), else
 *    FERRY_WEB_DIR. */
static char *default_web_root(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash = NULL;
	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
	}
	if (slash) {
		*slash = 0;   /* exe is now the binary's directory */
		size_t dl = strlen(exe), bl = strlen(FERRY_BINDIR);
		if (dl >= bl && !strcmp(exe + dl - bl, FERRY_BINDIR)) {
			struct buf b = BUF_INIT;
			buf_printf(&b, "%.*s%s", (int)(dl - bl), exe, FERRY_WEB_DIR);
			if (is_dir(buf_cstr(&b)))
				return buf_steal(&b);
			buf_free(&b);
		}
	}
	if (is_dir("web"))
		return realpath("web", NULL);
	if (slash) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s/../web", exe);
		char *r = realpath(buf_cstr(&b), NULL);
		buf_free(&b);
		if (r)
			return r;
	}
	return xstrdup(FERRY_WEB_DIR);
}

/* Fill app->cfg from settings + environment; exits on a bad value. Strings
 * not owned by argv/environ are leaked into `owned` for the caller to free. */
static void build_config(struct settings *s, struct app_config *cfg, struct buf *scratch, char **web_root_owned)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->database_url = envor(s->database_url, "FERRY_DATABASE_URL");
	cfg->listen = envor(s->listen, "FERRY_LISTEN");
	if (!cfg->listen)
		cfg->listen = "127.0.0.1:8080";
	const char *colon = strrchr(cfg->listen, ':');
	if (!colon || colon == cfg->listen)
		die("FERRY_LISTEN/--listen must be ADDRESS:PORT (got \"%s\")", cfg->listen);
	parse_long("the port of FERRY_LISTEN/--listen", colon + 1, 0, 65535, 0);
	cfg->workers = (int)parse_long("FERRY_WORKERS/--workers", envor(s->workers, "FERRY_WORKERS"), 0, 256, 4);
	const char *lvl = envor(s->log_level, "FERRY_LOG_LEVEL");
	cfg->log_level = lvl ? log_level_parse(lvl) : LOG_INFO;
	if (cfg->log_level < 0)
		die("FERRY_LOG_LEVEL/--log-level must be debug, info, warn or error (got \"%s\")", lvl);
	cfg->data_dir = envor(s->data_dir, "FERRY_DATA_DIR");
	if (!cfg->data_dir)
		cfg->data_dir = "var";
	cfg->web_root = envor(s->web_root, "FERRY_WEB_ROOT");
	if (!cfg->web_root)
		cfg->web_root = *web_root_owned = default_web_root();
	cfg->max_body_bytes = (size_t)parse_long("FERRY_MAX_BODY_BYTES/--max-body-bytes",
						 envor(s->max_body, "FERRY_MAX_BODY_BYTES"), 1024, 1L << 30, 1 << 20);
	cfg->max_json_depth = (int)parse_long("FERRY_MAX_JSON_DEPTH", getenv("FERRY_MAX_JSON_DEPTH"), 2, 1000, 32);
	const char *insecure = getenv("FERRY_ALLOW_INSECURE_KUBECONFIG");
	cfg->allow_insecure_kubeconfig = s->allow_insecure || (insecure && !strcmp(insecure, "1"));
	cfg->lease_seconds = (int)parse_long("FERRY_LEASE_SECONDS/--lease-seconds",
					     envor(s->lease_seconds, "FERRY_LEASE_SECONDS"), 1, 3600, 30);
	cfg->max_phase_attempts = (int)parse_long("FERRY_MAX_PHASE_ATTEMPTS", getenv("FERRY_MAX_PHASE_ATTEMPTS"), 1, 100, 5);
	cfg->retry_base_ms = parse_long("FERRY_RETRY_BASE_MS", getenv("FERRY_RETRY_BASE_MS"), 1, 3600000, 1000);
	cfg->render_max_ms = parse_long("FERRY_RENDER_MAX_MS", getenv("FERRY_RENDER_MAX_MS"), 100, 3600000, 0);
	cfg->render_max_memory = (size_t)parse_long("FERRY_RENDER_MAX_MEMORY_MB",
						    getenv("FERRY_RENDER_MAX_MEMORY_MB"), 16, 65536, 0) << 20;
	cfg->render_max_steps = parse_long("FERRY_RENDER_MAX_STEPS", getenv("FERRY_RENDER_MAX_STEPS"),
					   10000, 1L << 40, 0);
	cfg->render_max_output = (size_t)parse_long("FERRY_RENDER_MAX_OUTPUT_MB",
						    getenv("FERRY_RENDER_MAX_OUTPUT_MB"), 1, 4096, 0) << 20;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->render_concurrency = (int)parse_long("FERRY_RENDER_CONCURRENCY", getenv("FERRY_RENDER_CONCURRENCY"),
						  1, 1024, cpus > 0 ? cpus : 1);
	cfg->malloc_arenas = (int)parse_long("FERRY_MALLOC_ARENAS", getenv("FERRY_MALLOC_ARENAS"), 1, 1024,
					     cpus > 0 ? cpus : 1);
	cfg->worker_stack_kb = (int)parse_long("FERRY_WORKER_STACK_KB", getenv("FERRY_WORKER_STACK_KB"), 256,
					       1 << 20, 1024);
	cfg->chart_cache_size = (int)parse_long("FERRY_CHART_CACHE_SIZE", getenv("FERRY_CHART_CACHE_SIZE"), 0, 1000, 4);
	cfg->key_pool_2048 = (int)parse_long("FERRY_KEY_POOL_SIZE", getenv("FERRY_KEY_POOL_SIZE"), 0, 64, 8);
	cfg->key_pool_4096 = (int)parse_long("FERRY_KEY_POOL_SIZE_4096", getenv("FERRY_KEY_POOL_SIZE_4096"), 0, 64, 0);
	cfg->tenant_max_running_jobs = (int)parse_long("FERRY_TENANT_MAX_RUNNING_JOBS",
						       getenv("FERRY_TENANT_MAX_RUNNING_JOBS"), 0, 100000,
						       cfg->workers > 2 ? cfg->workers - 1 : 1);
	cfg->http_max_connections = (int)parse_long("FERRY_HTTP_MAX_CONNECTIONS",
						    getenv("FERRY_HTTP_MAX_CONNECTIONS"), 16, 60000, 2048);
	cfg->http_per_ip_connections = (int)parse_long("FERRY_HTTP_PER_IP_CONNECTIONS",
						       getenv("FERRY_HTTP_PER_IP_CONNECTIONS"), 1, 60000, 64);
	cfg->http_header_timeout_s = (int)parse_long("FERRY_HTTP_HEADER_TIMEOUT_S",
						     getenv("FERRY_HTTP_HEADER_TIMEOUT_S"), 1, 3600, 10);
	cfg->http_idle_timeout_s = (int)parse_long("FERRY_HTTP_IDLE_TIMEOUT_S",
						   getenv("FERRY_HTTP_IDLE_TIMEOUT_S"), 1, 3600, 60);
	cfg->http_threads = (int)parse_long("FERRY_HTTP_THREADS", getenv("FERRY_HTTP_THREADS"), 0, 1024, -1);
	cfg->tls_cert = envor(s->tls_cert, "FERRY_TLS_CERT");
	cfg->tls_key = envor(s->tls_key, "FERRY_TLS_KEY");
	if (!cfg->tls_cert != !cfg->tls_key)
		die("--tls-cert (FERRY_TLS_CERT) and --tls-key (FERRY_TLS_KEY) go together%s", "");
	cfg->trusted_proxies = envor(s->trusted_proxy, "FERRY_TRUSTED_PROXIES");
	if (cfg->trusted_proxies) {
		char why[160];
		struct trustproxy *tp = trustproxy_parse(cfg->trusted_proxies, why, sizeof(why));
		if (!tp)
			die("--trusted-proxy/FERRY_TRUSTED_PROXIES: %s", why);
		trustproxy_free(tp);
	}
	cfg->oidc_issuer = envor(s->oidc_issuer, "FERRY_OIDC_ISSUER");
	cfg->charts_dir = envor(s->charts_dir, "FERRY_CHARTS_DIR");
	cfg->node_id = envor(s->node_id, "FERRY_NODE_ID");
	if (!cfg->node_id) {
		char host[128] = "ferryd";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = 0;
		buf_printf(scratch, "%s:%ld", host, (long)getpid());
		cfg->node_id = buf_cstr(scratch);
	}
	log_set_level((enum log_level)cfg->log_level);
}

/* The master keyring from FERRY_MASTER_KEY, the key file, or (embedded
 * database only) a key generated once in the data directory. */
static struct keyring *load_keys(const struct settings *s, const struct app_config *cfg, int generate)
{
	char err[256];
	const char *key = getenv("FERRY_MASTER_KEY");
	const char *file = envor(s->master_key_file, "FERRY_MASTER_KEY_FILE");
	struct buf path = BUF_INIT;
	if (key && *key) {
		struct keyring *kr = keyring_parse(key, err, sizeof(err));
		if (!kr)
			die("FERRY_MASTER_KEY: %s", err);
		return kr;
	}
	if (!file && generate) {
		buf_printf(&path, "%s/master.key", cfg->data_dir);
		file = buf_cstr(&path);
		if (access(file, F_OK) != 0) {
			mkdir(cfg->data_dir, 0711);  /* searchable: the postgres user needs to reach pg/ */
			unsigned char raw[32];
			if (random_bytes(raw, sizeof(raw)) != 0)
				die("cannot generate a master key%s", "");
			FILE *f = NULL;
			int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
			if (fd >= 0)
				f = fdopen(fd, "w");
			if (!f)
				die("cannot write the generated master key to %s", file);
			fprintf(f, "k1:");
			for (int i = 0; i < 32; i++)
				fprintf(f, "%02x", raw[i]);
			fprintf(f, "\n");
			fclose(f);
			memset(raw, 0, sizeof(raw));
			log_msg(LOG_INFO, "generated a master key in %s (keep it: stored credentials need it)", file);
		}
	}
	if (!file)
		die("no master key: set FERRY_MASTER_KEY or FERRY_MASTER_KEY_FILE (\"id:<64 hex digits>\", e.g. from `openssl rand -hex 32`)%s", "");
	FILE *f = fopen(file, "r");
	if (!f) {
		fprintf(stderr, "ferryd: cannot read the master key file %s: %s\n", file, strerror(errno));
		exit(2);
	}
	char text[4096];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	struct keyring *kr = keyring_parse(text, err, sizeof(err));
	memset(text, 0, sizeof(text));
	if (!kr) {
		fprintf(stderr, "ferryd: master key file %s: %s\n", file, err);
		exit(2);
	}
	buf_free(&path);
	return kr;
}

/* Open the database (embedded if no URL) and a pool; exits on failure. */
static struct db_pool *open_db(struct app_config *cfg, int pool_size, struct pgembed **pg, struct buf *pgdir)
{
	char err[512];
	*pg = NULL;
	if (!cfg->database_url) {
		buf_printf(pgdir, "%s/pg", cfg->data_dir);
		*pg = pgembed_start(buf_cstr(pgdir), err, sizeof(err));
		if (!*pg)
			die("%s", err);
		cfg->database_url = pgembed_url(*pg);
	}
	struct db_pool *pool = db_pool_new(cfg->database_url, pool_size, err, sizeof(err));
	if (!pool) {
		pgembed_stop(*pg);
		die("%s", err);
	}
	return pool;
}

static int run_migrations(struct db_pool *pool, int check_only)
{
	char err[1024];
	size_t n;
	const struct db_migration *list = db_migrations_builtin(&n);
	PGconn *c = db_acquire(pool, 10000);
	if (!c) {
		fprintf(stderr, "ferryd: no database connection for migrations\n");
		return -1;
	}
	int rc;
	if (check_only) {
		rc = db_migrate_is_current(c, list, n);
		if (rc != 1) {
			fprintf(stderr, "ferryd: the database schema is not current; run `ferryd migrate`\n");
			rc = -1;
		}
	} else {
		rc = db_migrate_apply(c, list, n, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "ferryd: %s\n", err);
		else if (rc > 0)
			log_msg(LOG_INFO, "applied %d migration%s", rc, rc == 1 ? "" : "s");
		else
			log_msg(LOG_INFO, "database schema is current (%zu migrations)", n);
	}
	db_release(pool, c);
	return rc < 0 ? -1 : 0;
}

/* 1 for a loopback listen address ("127.x.y.z:port", "[::1]:port",
 * "localhost:port"). */
static int listen_is_loopback(const char *listen)
{
	return !strncmp(listen, "127.", 4) || !strncmp(listen, "[::1]:", 6) ||
	       !strncmp(listen, "localhost:", 10);
}

static int cmd_serve(struct settings *s)
{
	struct app app;
	struct buf node = BUF_INIT, pgdir = BUF_INIT, url = BUF_INIT;
	char *web_root = NULL;
	char err[512];
	int rc = 1;
	memset(&app, 0, sizeof(app));
	build_config(s, &app.cfg, &node, &web_root);
	int embedded = app.cfg.database_url == NULL;
	app.keys = load_keys(s, &app.cfg, embedded);
	if (!is_dir(app.cfg.web_root))
		log_msg(LOG_WARN, "the console directory %s does not exist: / answers 404 "
			"(set --web-root or FERRY_WEB_ROOT)", app.cfg.web_root);
	app.oidc = oidc_from_env(app.cfg.oidc_issuer, err, sizeof(err));
	if (!app.oidc && err[0])
		die("%s", err);

	/* Block the stop signals in every thread; main waits for them. */
	sigset_t stopset;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGHUP);   /* reload the TLS certificate */
	pthread_sigmask(SIG_BLOCK, &stopset, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread starts: glibc's default of 8 arenas per core let
	 * 100 job threads keep about 120 MB of freed memory in 16 arenas
	 * (BENCHMARKS.md "Fleet campaign"; docs/ARCHITECTURE.md). */
	mallopt(M_ARENA_MAX, app.cfg.malloc_arenas);
	kube_global_init();

	struct pgembed *pg = NULL;
	struct http_server *http = NULL;
	struct worker_pool *workers = NULL;
	struct demo *demo = NULL;
	/* The API, SSE polls and the campaign advancer; the workers have a
	 * pool of their own (server/worker.c). */
	app.db = open_db(&app.cfg, 16, &pg, &pgdir);
	if (run_migrations(app.db, s->no_migrate) < 0)
		goto out;
	app.metrics = metrics_new();
	/* Chart renders: a cap on concurrent ones, parsed charts shared, and
	 * RSA keys made ahead of time at idle priority (docs/ARCHITECTURE.md). */
	app.render_slots = render_slots_new(app.cfg.render_concurrency);
	app.charts = chart_cache_new(app.cfg.chart_cache_size);
	app.chart_available = chartsource_available;
	if (app.cfg.workers > 0 && keypool_start(app.cfg.key_pool_2048, app.cfg.key_pool_4096) < 0)
		log_msg(LOG_WARN, "key pool thread not started: certificate keys are generated inline");
	/* Accepted API tokens, 5 s at most, emptied by every revocation
	 * (db/tokencache.h). */
	app.tokens = tokencache_new(db_pool_url(app.db), 1024, 5000);

	http = http_server_start(&app, err, sizeof(err));
	if (!http) {
		fprintf(stderr, "ferryd: %s\n"
			"ferryd: choose another address with --listen HOST:PORT or FERRY_LISTEN "
			"(port 0 = any free port); ./dev run passes its flags on: ./dev run --listen 127.0.0.1:8081\n",
			err);
		goto out;
	}
	const char *host = app.cfg.listen;
	const char *colon = strrchr(host, ':');
	buf_printf(&url, "%s://%.*s:%d/", http_server_tls(http) ? "https" : "http",
		   (int)(colon - host), host, http_server_port(http));
	if (http_server_tls(http)) {
		char what[320];
		tlscreds_describe(what, sizeof(what));
		log_msg(LOG_INFO, "TLS certificate: %s", what);
	} else if (!listen_is_loopback(host) && !app.cfg.trusted_proxies) {
		log_msg(LOG_WARN, "listening on %s with plain HTTP and no --trusted-proxy: bearer tokens "
			"and session cookies cross the network in clear; set --tls-cert/--tls-key "
			"(docs/AUTH.md)", host);
	}
	log_msg(LOG_INFO, "ferryd %s listening on %s (node %s, %d workers, console %s)", PACKAGE_VERSION,
		buf_cstr(&url), app.cfg.node_id, app.cfg.workers, app.cfg.web_root);
	if (s->demo) {
		demo = demo_setup(&app, buf_cstr(&url), err, sizeof(err));
		if (!demo) {
			fprintf(stderr, "ferryd: %s\n", err);
			goto out;
		}
	}
	workers = worker_pool_start(&app, err, sizeof(err));
	if (!workers) {
		fprintf(stderr, "ferryd: %s\n", err);
		goto out;
	}

	/* Ready: the listener accepts and the workers run (systemd Type=notify). */
	if (sd_notify_send("READY=1\nSTATUS=serving") < 0)
		log_msg(LOG_WARN, "cannot notify systemd (NOTIFY_SOCKET): %s", strerror(errno));

	int sig = 0;
	for (;;) {
		sigwait(&stopset, &sig);
		if (sig != SIGHUP)
			break;
		if (!http_server_tls(http)) {
			log_msg(LOG_INFO, "SIGHUP received: nothing to reload (no TLS)");
			continue;
		}
		if (http_server_reload_tls(http, err, sizeof(err)) != 0) {
			log_msg(LOG_ERROR, "SIGHUP: TLS reload failed, the previous certificate stays: %s", err);
			continue;
		}
		char what[320];
		tlscreds_describe(what, sizeof(what));
		log_msg(LOG_INFO, "SIGHUP: TLS certificate reloaded: %s", what);
	}
	log_msg(LOG_INFO, "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	sd_notify_send("STOPPING=1");
	rc = 0;
out:
	app.stopping = 1;
	if (http)
		http_server_stop(http);
	worker_pool_stop(workers);
	keypool_stop();
	chart_cache_free(app.charts);
	render_slots_free(app.render_slots);
	demo_stop(demo);
	tokencache_free(app.tokens);
	db_pool_free(app.db);
	pgembed_stop(pg);
	metrics_free(app.metrics);
	keyring_free(app.keys);
	oidc_free(app.oidc);
	kube_global_cleanup();
	buf_free(&node);
	buf_free(&pgdir);
	buf_free(&url);
	free(web_root);
	if (rc == 0)
		log_msg(LOG_INFO, "stopped");
	return rc;
}

static int cmd_migrate(struct settings *s)
{
	struct app_config cfg;
	struct buf node = BUF_INIT, pgdir = BUF_INIT;
	char *web_root = NULL;
	build_config(s, &cfg, &node, &web_root);
	struct pgembed *pg = NULL;
	struct db_pool *pool = open_db(&cfg, 1, &pg, &pgdir);
	int rc = run_migrations(pool, 0);
	db_pool_free(pool);
	pgembed_stop(pg);
	buf_free(&node);
	buf_free(&pgdir);
	free(web_root);
	return rc < 0 ? 1 : 0;
}

static int cmd_token_create(struct settings *s)
{
	if (s->platform && s->tenant)
		die("use either --platform or --tenant, not both%s", "");
	if (!s->platform && !s->tenant)
		die("token create needs --tenant NAME (or --platform for a platform-wide admin)%s", "");
	const char *role = s->role ? s->role : (s->platform ? "admin" : NULL);
	if (!role)
		die("token create needs --role admin|operator|viewer%s", "");
	if (strcmp(role, "admin") && strcmp(role, "operator") && strcmp(role, "viewer"))
		die("--role must be admin, operator or viewer (got \"%s\")", role);
	if (s->platform && strcmp(role, "admin"))
		die("a --platform token is an admin token (got --role %s)", role);

	struct app_config cfg;
	struct buf node = BUF_INIT, pgdir = BUF_INIT;
	char *web_root = NULL;
	build_config(s, &cfg, &node, &web_root);
	struct pgembed *pg = NULL;
	struct db_pool *pool = open_db(&cfg, 1, &pg, &pgdir);
	int rc = 1;
	char *tok = NULL;
	PGconn *c = NULL;
	if (run_migrations(pool, 0) < 0)
		goto out;
	c = db_acquire(pool, 10000);
	if (!c)
		goto out;
	char tenant_id[64] = "";
	if (s->tenant) {
		const char *p[1] = { s->tenant };
		PGresult *r = PQexecParams(c,
			"WITH i AS (INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id) "
			"SELECT id FROM i UNION ALL SELECT id FROM tenants WHERE name = $1 AND deleted_at IS NULL",
			1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
			fprintf(stderr, "ferryd: cannot create or find tenant \"%s\": %s", s->tenant,
				PQresultStatus(r) == PGRES_TUPLES_OK ? "it was deleted\n" : PQerrorMessage(c));
			PQclear(r);
			goto out;
		}
		snprintf(tenant_id, sizeof(tenant_id), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	tok = token_generate();
	char hash[65];
	token_hash(tok, hash);
	const char *name = s->name ? s->name : (s->platform ? "platform admin (bootstrap)" : "bootstrap");
	const char *p[4] = { tenant_id[0] ? tenant_id : NULL, name, role, hash };
	PGresult *r = PQexecParams(c,
		"INSERT INTO api_tokens (tenant_id, name, role, token_hash) VALUES ($1::uuid, $2, $3, $4) RETURNING id",
		4, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "ferryd: cannot create the token: %s", PQerrorMessage(c));
		PQclear(r);
		goto out;
	}
	fprintf(stderr, "ferryd: created %s token %s%s%s (shown once; store it now)\n", role,
		PQgetvalue(r, 0, 0), tenant_id[0] ? " for tenant " : " (platform-wide)",
		tenant_id[0] ? s->tenant : "");
	PQclear(r);
	printf("%s\n", tok);
	rc = 0;
out:
	if (c)
		db_release(pool, c);
	if (tok) {
		memset(tok, 0, strlen(tok));
		free(tok);
	}
	db_pool_free(pool);
	pgembed_stop(pg);
	buf_free(&node);
	buf_free(&pgdir);
	free(web_root);
	return rc;
}

/* A keyring from a file; exits (status 2) naming the file when it cannot
 * be read or parsed. */
static struct keyring *keyring_from_file(const char *what, const char *file)
{
	char err[256];
	char *text = read_file_limit(file, 64 * 1024, NULL);
	if (!text) {
		fprintf(stderr, "ferryd: cannot read %s %s: %s\n", what, file, strerror(errno));
		exit(2);
	}
	struct keyring *kr = keyring_parse(text, err, sizeof(err));
	memset(text, 0, strlen(text));
	free(text);
	if (!kr) {
		fprintf(stderr, "ferryd: %s %s: %s\n", what, file, err);
		exit(2);
	}
	return kr;
}

static int cmd_rekey(struct settings *s)
{
	if (!s->new_key_file)
		die("rekey needs --new-key-file FILE (the new key, \"id:<64 hex digits>\")%s", "");
	struct app_config cfg;
	struct buf node = BUF_INIT, pgdir = BUF_INIT, keypath = BUF_INIT;
	char *web_root = NULL;
	build_config(s, &cfg, &node, &web_root);
	/* With the embedded database the old key is the generated one; never
	 * generate a key here. */
	if (!cfg.database_url && !s->master_key_file && !getenv("FERRY_MASTER_KEY") &&
	    !getenv("FERRY_MASTER_KEY_FILE")) {
		buf_printf(&keypath, "%s/master.key", cfg.data_dir);
		s->master_key_file = buf_cstr(&keypath);
	}
	struct keyring *old = load_keys(s, &cfg, 0);
	struct keyring *fresh = keyring_from_file("the new key file", s->new_key_file);
	int rc = 1;
	const char *clash = keyring_id_conflict(fresh, old);
	if (clash) {
		fprintf(stderr, "ferryd: the new key file names \"%s\" a different key than the old one does; "
			"give the new key a new id (e.g. k2:...): an id must name one key\n", clash);
		keyring_free(old);
		keyring_free(fresh);
		exit(2);
	}
	struct pgembed *pg = NULL;
	struct db_pool *pool = open_db(&cfg, 1, &pg, &pgdir);
	PGconn *c = NULL;
	if (run_migrations(pool, 1) < 0)
		goto out;
	c = db_acquire(pool, 10000);
	if (!c) {
		fprintf(stderr, "ferryd: no database connection\n");
		goto out;
	}
	char err[1024];
	long n = 0;
	if (db_rekey(c, old, fresh, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "ferryd: rekey refused, nothing changed: %s\n", err);
		goto out;
	}
	fprintf(stderr, "ferryd: re-sealed %ld credential%s under key \"%s\" (was \"%s\"); now run every "
		"ferryd with the new key\n", n, n == 1 ? "" : "s", keyring_current_id(fresh),
		keyring_current_id(old));
	rc = 0;
out:
	if (c)
		db_release(pool, c);
	db_pool_free(pool);
	pgembed_stop(pg);
	keyring_free(old);
	keyring_free(fresh);
	buf_free(&node);
	buf_free(&pgdir);
	buf_free(&keypath);
	free(web_root);
	return rc;
}

int main(int argc, char **argv)
{
	struct settings s;
	memset(&s, 0, sizeof(s));
	if (argc < 2) {
		usage_main(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage_main(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			printf("usage: ferryd version\n\nPrints the version of ferryd.\n");
			return 0;
		}
		printf("ferryd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "serve")) {
		parse_flags(argc, argv, 2, &s, usage_serve);
		return cmd_serve(&s);
	}
	if (!strcmp(cmd, "migrate")) {
		parse_flags(argc, argv, 2, &s, usage_migrate);
		return cmd_migrate(&s);
	}
	if (!strcmp(cmd, "token")) {
		if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
			usage_token(argc < 3 ? stderr : stdout);
			return argc < 3 ? 2 : 0;
		}
		if (strcmp(argv[2], "create") != 0) {
			fprintf(stderr, "ferryd: unknown token command \"%s\" (only `token create`)\n", argv[2]);
			return 2;
		}
		parse_flags(argc, argv, 3, &s, usage_token);
		return cmd_token_create(&s);
	}
	if (!strcmp(cmd, "rekey")) {
		parse_flags(argc, argv, 2, &s, usage_rekey);
		return cmd_rekey(&s);
	}
	fprintf(stderr, "ferryd: unknown command \"%s\"\n", cmd);
	usage_main(stderr);
	return 2;
}
