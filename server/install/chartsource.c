/*
 * chartsource.c: chart archives from uploads, Helm repositories and a
 * local directory; every archive passes chart_inspect()
 * (server/chart/inspect.h) first.
 *
 * Repositories are fetched with libcurl (http/https only, redirects
 * limited to http/https, a size cap per download, timeouts). The index is
 * Helm's index.yaml; a chart URL may be absolute or relative to the
 * repository. URLs in messages have any user:password@ removed.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/chartsource.h"
#include "db/charts.h"
#include "db/dbq.h"
#include "server/app.h"
#include "server/common/buf.h"
#include "server/common/crypto.h"
#include "server/common/yamljson.h"
#include "server/install/values.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- configuration ------------------------------------------------------ */

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

void chartsource_cfg_default(struct chartsource_cfg *cfg, const struct app *app)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->repo_url = env_nonempty("FERRY_CHART_REPO_URL");
	cfg->mirror_url = env_nonempty("FERRY_CHART_REPO_MIRROR");
	cfg->ca_file = env_nonempty("FERRY_CHART_REPO_CA_FILE");
	cfg->charts_dir = app && app->cfg.charts_dir && *app->cfg.charts_dir ? app->cfg.charts_dir : NULL;
	if (!cfg->charts_dir)
		cfg->charts_dir = env_nonempty("FERRY_CHARTS_DIR");
	if (!cfg->charts_dir)
		cfg->charts_dir = "../shared/charts";
	cfg->timeout_ms = 60000;
}

void chartsource_archive_clear(struct chartsource_archive *a)
{
	free(a->data);
	memset(a, 0, sizeof *a);
}

/* ---- HTTP --------------------------------------------------------------- */

/* url without user:password@ (for messages), into out. */
static void redact(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
	if (at && (!slash || at < slash))
		snprintf(out, outlen, "%.*s%s", (int)(scheme + 3 - url), url, at + 1);
	else
		snprintf(out, outlen, "%s", url);
}

struct sink {
	struct buf *b;
	size_t max;
	int over;
};

static size_t sink_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	if (s->b->len + n > s->max) {
		s->over = 1;
		return 0;
	}
	buf_append(s->b, p, n);
	return n;
}

/* GET url into out (at most max bytes). Returns the HTTP status, or -1
 * (transport failure; message in err). */
static long http_get(const char *url, const char *ca_file, long timeout_ms, size_t max,
		     struct buf *out, char *err, size_t errlen)
{
	char shown[512];
	redact(url, shown, sizeof shown);
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "libcurl initialisation failed");
		return -1;
	}
	char cerr[CURL_ERROR_SIZE] = "";
	struct sink s = { out, max, 0 };
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 60000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	if (ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	CURLcode rc = curl_easy_perform(c);
	long status = -1;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	} else if (s.over || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "%s: larger than %zu bytes", shown, max);
		status = -3;
	} else {
		snprintf(err, errlen, "%s: %s", shown, cerr[0] ? cerr : curl_easy_strerror(rc));
	}
	curl_easy_cleanup(c);
	return status;
}

char *chartsource_join_url(const char *repo_url, const char *ref)
{
	if (!repo_url || !ref || !*ref)
		return NULL;
	if (!strncmp(ref, "http://", 7) || !strncmp(ref, "https://", 8))
		return xstrdup(ref);
	if (strstr(ref, "://"))
		return NULL;   /* another scheme (oci://, file://): not ours */
	const char *scheme = strstr(repo_url, "://");
	if (!scheme)
		return NULL;
	struct buf b = BUF_INIT;
	if (ref[0] == '/') {
		const char *path = strchr(scheme + 3, '/');
		size_t hostlen = path ? (size_t)(path - repo_url) : strlen(repo_url);
		buf_append(&b, repo_url, hostlen);
		buf_puts(&b, ref);
	} else {
		/* Drop a query of the repository URL; ensure one slash. */
		size_t l = strcspn(repo_url, "?#");
		buf_append(&b, repo_url, l);
		if (!l || repo_url[l - 1] != '/')
			buf_putc(&b, '/');
		buf_puts(&b, ref);
	}
	return buf_steal(&b);
}

int chartsource_from_repo(const char *repo_url, const char *ca_file, long timeout_ms,
			  const char *name, const char *version,
			  struct chartsource_archive *out, char *err, size_t errlen)
{
	struct buf idx = BUF_INIT, arc = BUF_INIT;
	json_t *index = NULL;
	char *index_url = NULL, *chart_url = NULL;
	char shown[512], herr[600];
	int rc = -1;
	redact(repo_url, shown, sizeof shown);
	index_url = chartsource_join_url(repo_url, "index.yaml");
	if (!index_url) {
		snprintf(err, errlen, "repository %s: not an http(s) URL", shown);
		goto out;
	}
	long st = http_get(index_url, ca_file, timeout_ms, CHARTSOURCE_MAX_INDEX, &idx, herr, sizeof herr);
	if (st < 0) {
		snprintf(err, errlen, "repository index %s", herr);
		rc = st == -3 ? -1 : -2;
		goto out;
	}
	if (st == 404) {
		snprintf(err, errlen, "repository %s: index.yaml not found (404)", shown);
		rc = 1;
		goto out;
	}
	if (st != 200) {
		snprintf(err, errlen, "repository %s: index.yaml answered HTTP %ld", shown, st);
		rc = (st == 429 || st >= 500) ? -2 : -1;
		goto out;
	}
	char yerr[256];
	index = yaml_to_json(idx.data ? idx.data : "", idx.len, yerr, sizeof yerr);
	if (!index || !json_is_object(index)) {
		snprintf(err, errlen, "repository %s: index.yaml is not a Helm repository index%s%s", shown,
			 index ? "" : ": ", index ? "" : yerr);
		goto out;
	}
	const json_t *list = json_object_get(json_object_get(index, "entries"), name);
	const json_t *entry = NULL;
	size_t i;
	const json_t *e;
	json_array_foreach(list, i, e) {
		const char *v = json_string_value(json_object_get(e, "version"));
		if (v && !strcmp(v, version)) {
			entry = e;
			break;
		}
	}
	if (!entry) {
		snprintf(err, errlen, "repository %s has no chart %s version %s", shown, name, version);
		rc = 1;
		goto out;
	}
	const char *ref = json_string_value(json_array_get(json_object_get(entry, "urls"), 0));
	chart_url = chartsource_join_url(repo_url, ref);
	if (!chart_url) {
		snprintf(err, errlen, "repository %s: chart %s %s has no usable http(s) URL", shown, name,
			 version);
		goto out;
	}
	st = http_get(chart_url, ca_file, timeout_ms, CHART_INSPECT_MAX_ARCHIVE, &arc, herr, sizeof herr);
	if (st < 0) {
		snprintf(err, errlen, "chart archive %s", herr);
		rc = st == -3 ? -1 : -2;
		goto out;
	}
	if (st != 200) {
		char cs[512];
		redact(chart_url, cs, sizeof cs);
		snprintf(err, errlen, "chart archive %s answered HTTP %ld", cs, st);
		rc = st == 404 ? 1 : (st == 429 || st >= 500) ? -2 : -1;
		goto out;
	}
	char sha[65];
	sha256_hex(arc.data, arc.len, sha);
	const char *digest = json_string_value(json_object_get(entry, "digest"));
	if (digest && !strncmp(digest, "sha256:", 7))
		digest += 7;
	if (digest && *digest && strcasecmp(digest, sha) != 0) {
		snprintf(err, errlen,
			 "repository %s: chart %s %s digest mismatch (index says %.64s, download is %s)",
			 shown, name, version, digest, sha);
		goto out;
	}
	char ierr[512];
	struct chart_inspect_info info;
	if (chart_inspect(arc.data, arc.len, &info, ierr, sizeof ierr) != 0) {
		snprintf(err, errlen, "repository %s: chart %s %s refused: %s", shown, name, version, ierr);
		goto out;
	}
	if (strcmp(info.name, name) != 0 || strcmp(info.version, version) != 0) {
		snprintf(err, errlen, "repository %s: the archive for %s %s holds %s %s", shown, name,
			 version, info.name, info.version);
		goto out;
	}
	out->len = arc.len;
	out->data = (unsigned char *)buf_steal(&arc);
	memcpy(out->sha256, sha, sizeof sha);
	char cs[400];
	redact(chart_url, cs, sizeof cs);
	snprintf(out->origin, sizeof out->origin, "repository %s", cs);
	out->info = info;
	rc = 0;
out:
	json_decref(index);
	buf_free(&idx);
	buf_free(&arc);
	free(index_url);
	free(chart_url);
	return rc;
}

/* ---- local directory ---------------------------------------------------- */

static int from_dir(const char *dir, const char *name, const char *version,
		    struct chartsource_archive *out, char *err, size_t errlen)
{
	struct buf path = BUF_INIT;
	char *data = NULL;
	size_t len = 0;
	int rc = -1;
	buf_printf(&path, "%s/%s-%s.tgz", dir, name, version);
	data = read_file_limit(buf_cstr(&path), CHART_INSPECT_MAX_ARCHIVE, &len);
	if (!data) {
		if (errno == EFBIG) {
			snprintf(err, errlen, "%s: larger than %u bytes", buf_cstr(&path),
				 CHART_INSPECT_MAX_ARCHIVE);
		} else if (errno == EIO) {
			snprintf(err, errlen, "%s: read error", buf_cstr(&path));
		} else {
			snprintf(err, errlen, "%s: %s", buf_cstr(&path), strerror(errno));
			rc = 1;
		}
		goto out;
	}
	char ierr[512];
	if (chart_inspect(data, len, &out->info, ierr, sizeof ierr) != 0) {
		snprintf(err, errlen, "%s: %s", buf_cstr(&path), ierr);
		goto out;
	}
	if (strcmp(out->info.name, name) != 0 || strcmp(out->info.version, version) != 0) {
		snprintf(err, errlen, "%s holds chart %s %s", buf_cstr(&path), out->info.name,
			 out->info.version);
		goto out;
	}
	sha256_hex(data, len, out->sha256);
	snprintf(out->origin, sizeof out->origin, "file %s", buf_cstr(&path));
	out->len = len;
	out->data = (unsigned char *)data;
	data = NULL;
	rc = 0;
out:
	buf_free(&path);
	free(data);
	return rc;
}

/* ---- resolution --------------------------------------------------------- */

int chartsource_resolve(PGconn *conn, const char *tenant_id, const char *name,
			const char *version, const struct chartsource_cfg *cfg,
			struct chartsource_archive *out, char *err, size_t errlen)
{
	struct buf why = BUF_INIT;
	int transient = 0, definitive = 0, rc = -1;
	char e[1024];
	memset(out, 0, sizeof *out);
	if (!chart_name_ok(name) || !chart_semver_ok(version)) {
		snprintf(err, errlen, "chart \"%.64s\" version \"%.64s\": not a valid chart name and SemVer version",
			 name ? name : "", version ? version : "");
		return -1;
	}
	/* 1. The tenant's uploads. */
	if (conn && tenant_id && *tenant_id) {
		char id[37], sha[65];
		int st = db_chart_archive(conn, tenant_id, name, version, &out->data, &out->len, id, sha, e,
					  sizeof e);
		if (st == DB_OK) {
			if (chart_inspect(out->data, out->len, &out->info, e, sizeof e) != 0) {
				snprintf(err, errlen, "uploaded chart %s %s (%s) is unusable: %s", name, version, id, e);
				chartsource_archive_clear(out);
				goto out;
			}
			memcpy(out->sha256, sha, sizeof sha);
			snprintf(out->origin, sizeof out->origin, "upload %s", id);
			snprintf(out->owner_tenant, sizeof out->owner_tenant, "%s", tenant_id);
			rc = 0;
			goto out;
		}
		if (st != DB_NOT_FOUND) {
			snprintf(err, errlen, "reading uploaded charts: %s", e);
			rc = -2;
			goto out;
		}
		buf_printf(&why, "no upload of %s %s in this tenant", name, version);
	}
	/* 2. Repositories, mirror first. */
	const char *repos[2] = { cfg ? cfg->mirror_url : NULL, cfg ? cfg->repo_url : NULL };
	for (int i = 0; i < 2; i++) {
		if (!repos[i])
			continue;
		int st = chartsource_from_repo(repos[i], cfg->ca_file, cfg->timeout_ms, name, version, out, e,
					       sizeof e);
		if (st == 0) {
			rc = 0;
			goto out;
		}
		if (st == -2)
			transient = 1;
		else
			definitive = 1;   /* a repository answered: retrying will not help */
		buf_printf(&why, "%s%s%s", why.len ? "; " : "", i == 0 ? "mirror: " : "", e);
	}
	/* 3. The local directory. */
	const char *dir = cfg && cfg->charts_dir ? cfg->charts_dir : "../shared/charts";
	int st = from_dir(dir, name, version, out, e, sizeof e);
	if (st == 0) {
		rc = 0;
		goto out;
	}
	buf_printf(&why, "%s%s", why.len ? "; " : "", e);
	snprintf(err, errlen, "chart %s %s not found: %s", name, version, buf_cstr(&why));
	rc = transient && !definitive ? -2 : -1;
out:
	buf_free(&why);
	return rc;
}

int chartsource_available(const struct app *app, PGconn *conn, const char *tenant_id, const json_t *params,
			  char *version, size_t versionlen, char *err, size_t errlen)
{
	const char *v = install_chart_version(params);
	snprintf(version, versionlen, "%s", v);
	struct chartsource_cfg cfg;
	chartsource_cfg_default(&cfg, app);
	struct chartsource_archive a;
	int rc = chartsource_resolve(conn, tenant_id, "cilium", v, &cfg, &a, err, errlen);
	chartsource_archive_clear(&a);
	return rc;
}
