/*
 * pgembed: run a private PostgreSQL for `ferryd serve` without a database URL.
 *
 * Everything goes through PostgreSQL's own tools (initdb, pg_ctl) run as
 * child processes; as root they run under the postgres user via
 * setgid/initgroups/setuid in the child. pg_ctl runs in a new session
 * (setsid) so that a Ctrl-C on ferryd's terminal reaches ferryd only, and
 * ferryd shuts the database down after its workers released their leases.
 */
#include "server/pgembed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "server/common/buf.h"
#include "server/log.h"

struct pgembed {
	char *dir;      /* absolute */
	char *bin;      /* directory of initdb, pg_ctl */
	char *url;
	int started;    /* we started it (so we stop it) */
	uid_t uid;      /* user the server runs as */
	gid_t gid;
	int drop;       /* run tools as uid/gid */
};

static int version_of(const char *name)
{
	char *e = NULL;
	long v = strtol(name, &e, 10);
	return e != name && *e == 0 ? (int)v : -1;
}

static char *find_bin(void)
{
	const char *env = getenv("FERRY_PG_BIN");
	if (env && *env)
		return xstrdup(env);
	DIR *d = opendir("/usr/lib/postgresql");
	if (!d)
		return NULL;
	int best = -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int v = version_of(e->d_name);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/pg_ctl", e->d_name);
		if (v > best && access(path, X_OK) == 0)
			best = v;
	}
	closedir(d);
	if (best < 0)
		return NULL;
	struct buf b = BUF_INIT;
	buf_printf(&b, "/usr/lib/postgresql/%d/bin", best);
	return buf_steal(&b);
}

/* Run argv (argv[0] a full path) as the server user, output appended to
 * logfile; returns the exit status (or -1). */
static int run_tool(const struct pgembed *pg, char *const argv[], const char *logfile)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setsid();
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			if (pg->drop && fchown(fd, pg->uid, pg->gid) != 0) {
				/* the log stays root's; harmless */
			}
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0) {
			dup2(devnull, 0);
			close(devnull);
		}
		if (pg->drop) {
			struct passwd *pw = getpwuid(pg->uid);
			if (setgid(pg->gid) != 0 || (pw && initgroups(pw->pw_name, pg->gid) != 0) ||
			    setuid(pg->uid) != 0) {
				perror("pgembed: dropping privileges");
				_exit(126);
			}
		}
		if (chdir(pg->dir) != 0) {
			/* stay where we are */
		}
		execv(argv[0], argv);
		perror("pgembed: exec");
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int ensure_postgres_user(struct pgembed *pg, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam("postgres");
	if (!pw) {
		char *const argv[] = { "/usr/sbin/useradd", "--system", "--no-create-home",
				       "--shell", "/usr/sbin/nologin", "postgres", NULL };
		struct pgembed tmp = *pg;
		tmp.drop = 0;
		char log[PATH_MAX];
		snprintf(log, sizeof(log), "%s/useradd.log", pg->dir);
		run_tool(&tmp, argv, log);
		pw = getpwnam("postgres");
	}
	if (!pw) {
		snprintf(err, errlen,
			 "embedded PostgreSQL: running as root needs a \"postgres\" system user and it could not be created");
		return -1;
	}
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	pg->drop = 1;
	return 0;
}

static int mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int ping(const char *url)
{
	PGconn *c = PQconnectdb(url);
	int ok = PQstatus(c) == CONNECTION_OK;
	PQfinish(c);
	return ok;
}

struct pgembed *pgembed_start(const char *dir, char *err, size_t errlen)
{
	struct pgembed *pg = xcalloc(1, sizeof(*pg));
	char logfile[PATH_MAX + 64], data[PATH_MAX + 64], path[PATH_MAX + 128];
	PGconn *admin = NULL;
	if (mkdirs(dir, 0700) != 0) {
		snprintf(err, errlen, "embedded PostgreSQL: cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	char abs[PATH_MAX];
	if (!realpath(dir, abs)) {
		snprintf(err, errlen, "embedded PostgreSQL: %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (strlen(abs) > 80) {
		snprintf(err, errlen, "embedded PostgreSQL: the path %s is too long for a Unix socket; use a shorter FERRY_DATA_DIR", abs);
		goto fail;
	}
	pg->dir = xstrdup(abs);
	pg->bin = find_bin();
	if (!pg->bin) {
		snprintf(err, errlen, "embedded PostgreSQL: no server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql, or set FERRY_PG_BIN or FERRY_DATABASE_URL)");
		goto fail;
	}
	if (geteuid() == 0 && ensure_postgres_user(pg, err, errlen) != 0)
		goto fail;
	if (pg->drop && chown(pg->dir, pg->uid, pg->gid) != 0) {
		snprintf(err, errlen, "embedded PostgreSQL: cannot hand %s to the postgres user: %s", pg->dir, strerror(errno));
		goto fail;
	}
	chmod(pg->dir, 0700);
	if (pg->drop) {
		/* The postgres user must be able to reach dir: make its parent
		 * searchable (not readable) if it is not. */
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", pg->dir);
		char *slash = strrchr(parent, '/');
		struct stat st;
		if (slash && slash != parent) {
			*slash = 0;
			if (stat(parent, &st) == 0 && !(st.st_mode & S_IXOTH))
				chmod(parent, (st.st_mode & 07777) | S_IXOTH);
		}
		/* Every further ancestor must already be searchable. */
		while ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
			*slash = 0;
			if (stat(parent, &st) == 0 && !(st.st_mode & S_IXOTH) && st.st_uid != pg->uid) {
				snprintf(err, errlen,
					 "embedded PostgreSQL: the postgres user cannot reach %s because %s is not searchable (chmod o+x %s, or use another FERRY_DATA_DIR)",
					 pg->dir, parent, parent);
				goto fail;
			}
		}
	}
	snprintf(logfile, sizeof(logfile), "%s/postgres.log", pg->dir);
	snprintf(data, sizeof(data), "%s/data", pg->dir);

	struct buf u = BUF_INIT;
	buf_printf(&u, "postgresql:///ferry?host=%s&user=postgres", pg->dir);
	pg->url = buf_steal(&u);
	char admin_url[PATH_MAX + 64];
	snprintf(admin_url, sizeof(admin_url), "postgresql:///postgres?host=%s&user=postgres", pg->dir);

	snprintf(path, sizeof(path), "%s/PG_VERSION", data);
	if (access(path, F_OK) != 0) {
		log_msg(LOG_INFO, "embedded PostgreSQL: creating a database cluster in %s", data);
		char initdb[PATH_MAX];
		snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bin);
		char *const argv[] = { initdb, "-D", data, "-U", "postgres", "-A", "trust",
				       "-E", "UTF8", "--no-sync", NULL };
		if (run_tool(pg, argv, logfile) != 0) {
			snprintf(err, errlen, "embedded PostgreSQL: initdb failed; see %s", logfile);
			goto fail;
		}
	}

	if (ping(admin_url)) {
		log_msg(LOG_INFO, "embedded PostgreSQL: reusing the server already running on %s", pg->dir);
	} else {
		char pgctl[PATH_MAX], opts[PATH_MAX + 128];
		snprintf(pgctl, sizeof(pgctl), "%s/pg_ctl", pg->bin);
		snprintf(opts, sizeof(opts),
			 "-c listen_addresses='' -c unix_socket_directories='%s' -c max_connections=200",
			 pg->dir);
		char *const argv[] = { pgctl, "-D", data, "-l", logfile, "-w", "-t", "60", "-o", opts,
				       "start", NULL };
		if (run_tool(pg, argv, logfile) != 0) {
			snprintf(err, errlen, "embedded PostgreSQL: the server did not start; see %s", logfile);
			goto fail;
		}
		pg->started = 1;
		log_msg(LOG_INFO, "embedded PostgreSQL: started on unix socket %s", pg->dir);
	}

	admin = PQconnectdb(admin_url);
	if (PQstatus(admin) != CONNECTION_OK) {
		snprintf(err, errlen, "embedded PostgreSQL: cannot connect: %s", PQerrorMessage(admin));
		goto fail;
	}
	PGresult *r = PQexec(admin, "SELECT 1 FROM pg_database WHERE datname = 'ferry'");
	int exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	PQclear(r);
	if (!exists) {
		r = PQexec(admin, "CREATE DATABASE ferry");
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		/* A concurrent ferryd may have created it meanwhile. */
		if (!ok && !ping(pg->url)) {
			snprintf(err, errlen, "embedded PostgreSQL: cannot create the database: %s", PQerrorMessage(admin));
			goto fail;
		}
	}
	PQfinish(admin);
	return pg;
fail:
	if (admin)
		PQfinish(admin);
	pgembed_stop(pg);
	return NULL;
}

const char *pgembed_url(const struct pgembed *pg)
{
	return pg->url;
}

void pgembed_stop(struct pgembed *pg)
{
	if (!pg)
		return;
	if (pg->started) {
		char pgctl[PATH_MAX], data[PATH_MAX], logfile[PATH_MAX];
		snprintf(pgctl, sizeof(pgctl), "%s/pg_ctl", pg->bin);
		snprintf(data, sizeof(data), "%s/data", pg->dir);
		snprintf(logfile, sizeof(logfile), "%s/postgres.log", pg->dir);
		char *const argv[] = { pgctl, "-D", data, "-m", "fast", "-w", "stop", NULL };
		if (run_tool(pg, argv, logfile) != 0)
			log_msg(LOG_WARN, "embedded PostgreSQL: pg_ctl stop failed; see %s", logfile);
		else
			log_msg(LOG_INFO, "embedded PostgreSQL: stopped");
	}
	free(pg->dir);
	free(pg->bin);
	free(pg->url);
	free(pg);
}
