/*
 * chartsource.c: chart archives from uploads, Helm repositories and a
 * local directory, and the structural check every archive passes first.
 *
 * The check inflates the gzip stream in memory under a hard cap (so a
 * gzip bomb costs at most CHARTSOURCE_MAX_UNPACKED bytes and stops with a
 * clear message), then walks the tar headers: checksums, sizes, types
 * (regular files and directories only; pax 'x'/'g' and GNU 'L' long-name
 * headers are understood because Go's and GNU tar write them), and every
 * path relative, free of "." / ".." / empty components and backslashes,
 * under the one top-level directory. Chart.yaml is parsed with yamljson
 * and must name the chart after its directory, with a SemVer 2 version.
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
#include "server/common/yamljson.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ---- small checks ------------------------------------------------------- */

static int numeric_ident_ok(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return !(n > 1 && s[0] == '0');
}

/* Dot-separated identifiers of [0-9A-Za-z-]; numeric ones without leading
 * zeros when strict_numeric. */
static int idents_ok(const char *s, size_t n, int strict_numeric)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t len = i - start;
			if (len == 0)
				return 0;
			int all_digits = 1;
			for (size_t k = start; k < i; k++) {
				char c = s[k];
				int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
					 (c >= 'A' && c <= 'Z') || c == '-';
				if (!ok)
					return 0;
				if (c < '0' || c > '9')
					all_digits = 0;
			}
			if (strict_numeric && all_digits && len > 1 && s[start] == '0')
				return 0;
			start = i + 1;
		}
	}
	return 1;
}

int chartsource_semver_ok(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return 0;
	const char *p = s;
	for (int part = 0; part < 3; part++) {
		size_t len = strspn(p, "0123456789");
		if (!numeric_ident_ok(p, len))
			return 0;
		p += len;
		if (part < 2) {
			if (*p != '.')
				return 0;
			p++;
		}
	}
	if (*p == '-') {
		p++;
		size_t len = strcspn(p, "+");
		if (!idents_ok(p, len, 1))
			return 0;
		p += len;
	}
	if (*p == '+') {
		p++;
		if (!idents_ok(p, strlen(p), 0))
			return 0;
		p += strlen(p);
	}
	return *p == '\0';
}

int chartsource_name_ok(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (alnum)
			continue;
		if ((c == '-' || c == '_' || c == '.') && i > 0 && i < n - 1)
			continue;
		return 0;
	}
	return 1;
}

void chartsource_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	out[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return;
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* ---- gzip --------------------------------------------------------------- */

/* Inflate every gzip member of data into out (at most max bytes). */
static int gunzip(const unsigned char *data, size_t len, size_t max, struct buf *out,
		  char *err, size_t errlen)
{
	if (len < 18 || data[0] != 0x1f || data[1] != 0x8b) {
		snprintf(err, errlen, "not a gzip stream (a chart archive is a .tgz as made by helm package)");
		return -1;
	}
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		snprintf(err, errlen, "zlib initialisation failed");
		return -1;
	}
	int rc = -1;
	unsigned char chunk[65536];
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	for (;;) {
		zs.next_out = chunk;
		zs.avail_out = sizeof chunk;
		int z = inflate(&zs, Z_NO_FLUSH);
		size_t got = sizeof chunk - zs.avail_out;
		if (out->len + got > max) {
			snprintf(err, errlen, "archive unpacks to more than %zu bytes (refused: possible gzip bomb)",
				 max);
			goto out;
		}
		buf_append(out, chunk, got);
		if (z == Z_STREAM_END) {
			if (zs.avail_in == 0)
				break;
			/* Another member, or trailing garbage. */
			if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
				inflateReset(&zs);
				continue;
			}
			size_t k;
			for (k = 0; k < zs.avail_in && zs.next_in[k] == 0; k++)
				;
			if (k == zs.avail_in)
				break;   /* zero padding is harmless */
			snprintf(err, errlen, "%u bytes of trailing data after the gzip stream", zs.avail_in);
			goto out;
		}
		if (z == Z_OK)
			continue;
		if (z == Z_BUF_ERROR && zs.avail_in == 0) {
			snprintf(err, errlen, "truncated gzip stream");
			goto out;
		}
		snprintf(err, errlen, "corrupt gzip stream: %s", zs.msg ? zs.msg : "inflate error");
		goto out;
	}
	rc = 0;
out:
	inflateEnd(&zs);
	return rc;
}

/* ---- tar ---------------------------------------------------------------- */

/* Octal numeric field (NUL/space terminated); -1 when malformed or in
 * base-256 (only used for sizes beyond what we accept anyway). */
static long long tar_octal(const unsigned char *f, size_t n)
{
	if (f[0] & 0x80)
		return -1;
	long long v = 0;
	size_t i = 0;
	while (i < n && f[i] == ' ')
		i++;
	int digits = 0;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		v = v * 8 + (f[i] - '0');
		if (v > (1LL << 40))
			return -1;
		digits++;
	}
	for (; i < n; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	return digits ? v : 0;
}

static int tar_checksum_ok(const unsigned char *h)
{
	long long want = tar_octal(h + 148, 8);
	unsigned long sum = 0;
	long sum_signed = 0;
	for (int i = 0; i < 512; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
		sum += c;
		sum_signed += (signed char)c;
	}
	return want >= 0 && ((long long)sum == want || (long long)sum_signed == want);
}

static int all_zero(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* Check one entry path; the top-level directory goes to top (first
 * entry) or must equal it. Returns 0 or -1 with a reason. */
static int check_path(const char *path, int is_dir, char *top, size_t toplen, char *err,
		      size_t errlen)
{
	size_t n = strlen(path);
	if (n == 0) {
		snprintf(err, errlen, "an entry has an empty name");
		return -1;
	}
	if (n > 1024) {
		snprintf(err, errlen, "an entry name is longer than 1024 bytes");
		return -1;
	}
	if (path[0] == '/') {
		snprintf(err, errlen, "entry \"%.200s\" has an absolute path", path);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x20 || c == 0x7f || c == '\\') {
			snprintf(err, errlen, "entry \"%.200s\" has a control character or backslash in its name",
				 path);
			return -1;
		}
	}
	/* Components: non-empty, not "." or "..". A directory may end in "/". */
	size_t end = n;
	if (is_dir && end > 1 && path[end - 1] == '/')
		end--;
	size_t start = 0, comp = 0;
	for (size_t i = 0; i <= end; i++) {
		if (i < end && path[i] != '/')
			continue;
		size_t len = i - start;
		const char *c = path + start;
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			snprintf(err, errlen, "entry \"%.200s\" %s", path,
				 len == 2 ? "escapes the chart directory (\"..\")"
					  : "has an empty or \".\" path component");
			return -1;
		}
		if (comp == 0) {
			if (!top[0]) {
				if (len >= toplen) {
					snprintf(err, errlen, "top-level directory name too long");
					return -1;
				}
				memcpy(top, c, len);
				top[len] = '\0';
			} else if (strlen(top) != len || memcmp(top, c, len) != 0) {
				snprintf(err, errlen,
					 "entry \"%.200s\" is outside the chart directory \"%s\" (an archive holds exactly one chart)",
					 path, top);
				return -1;
			}
		}
		comp++;
		start = i + 1;
	}
	if (comp == 1 && !is_dir) {
		snprintf(err, errlen, "file \"%.200s\" is not inside a chart directory", path);
		return -1;
	}
	return 0;
}

/* Parse pax records "LEN key=value\n"; the path, if any, into *path. */
static int pax_path(const unsigned char *d, size_t n, char **path, char *err, size_t errlen)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i, len = 0;
		while (j < n && d[j] >= '0' && d[j] <= '9' && len < 1000000)
			len = len * 10 + (d[j++] - '0');
		if (j == i || j >= n || d[j] != ' ' || len <= j - i + 1 || i + len > n ||
		    d[i + len - 1] != '\n') {
			snprintf(err, errlen, "malformed pax extended header");
			return -1;
		}
		const char *kv = (const char *)d + j + 1;
		size_t kvlen = i + len - 1 - (j + 1);
		const char *eq = memchr(kv, '=', kvlen);
		if (!eq) {
			snprintf(err, errlen, "malformed pax record");
			return -1;
		}
		size_t klen = (size_t)(eq - kv);
		if (klen == 4 && !memcmp(kv, "path", 4)) {
			free(*path);
			*path = xstrndup(eq + 1, kvlen - klen - 1);
			if (strlen(*path) != kvlen - klen - 1) {
				snprintf(err, errlen, "pax path contains a NUL byte");
				return -1;
			}
		} else if (klen == 4 && !memcmp(kv, "size", 4)) {
			/* Only written for files beyond 8 GiB: far past our limits. */
			snprintf(err, errlen, "a pax size record announces a file too large for a chart");
			return -1;
		}
		i += len;
	}
	return 0;
}

static int parse_chart_yaml(const char *text, size_t len, const char *top,
			    struct chartsource_info *info, char *err, size_t errlen)
{
	char yerr[256];
	int rc = -1;
	json_t *y = yaml_to_json(text, len, yerr, sizeof yerr);
	if (!y) {
		snprintf(err, errlen, "%s/Chart.yaml is not valid YAML: %s", top, yerr);
		return -1;
	}
	if (!json_is_object(y)) {
		snprintf(err, errlen, "%s/Chart.yaml is not a mapping", top);
		goto out;
	}
	const json_t *api = json_object_get(y, "apiVersion");
	const json_t *name = json_object_get(y, "name");
	const json_t *ver = json_object_get(y, "version");
	const json_t *app = json_object_get(y, "appVersion");
	if (!json_is_string(api) || (strcmp(json_string_value(api), "v1") != 0 &&
				     strcmp(json_string_value(api), "v2") != 0)) {
		snprintf(err, errlen, "%s/Chart.yaml: apiVersion must be v1 or v2", top);
		goto out;
	}
	if (!json_is_string(name) || !chartsource_name_ok(json_string_value(name))) {
		snprintf(err, errlen,
			 "%s/Chart.yaml: name must be 1-63 of lower-case letters, digits, '-', '_', '.'", top);
		goto out;
	}
	if (strcmp(json_string_value(name), top) != 0) {
		snprintf(err, errlen, "%s/Chart.yaml names the chart \"%s\" but its directory is \"%s\"",
			 top, json_string_value(name), top);
		goto out;
	}
	if (!json_is_string(ver) || !chartsource_semver_ok(json_string_value(ver))) {
		snprintf(err, errlen, "%s/Chart.yaml: version must be a SemVer 2 string such as 1.18.3",
			 top);
		goto out;
	}
	snprintf(info->name, sizeof info->name, "%s", json_string_value(name));
	snprintf(info->version, sizeof info->version, "%s", json_string_value(ver));
	snprintf(info->api_version, sizeof info->api_version, "%s", json_string_value(api));
	info->app_version[0] = '\0';
	if (json_is_string(app)) {
		const char *a = json_string_value(app);
		if (strlen(a) >= sizeof info->app_version) {
			snprintf(err, errlen, "%s/Chart.yaml: appVersion is too long", top);
			goto out;
		}
		snprintf(info->app_version, sizeof info->app_version, "%s", a);
	} else if (json_is_number(app)) {
		snprintf(info->app_version, sizeof info->app_version, "%g", json_number_value(app));
	}
	rc = 0;
out:
	json_decref(y);
	return rc;
}

int chartsource_inspect(const void *data, size_t len, struct chartsource_info *info,
			char *err, size_t errlen)
{
	struct buf tar = BUF_INIT;
	char top[128] = "";
	char *longname = NULL, *chart_yaml = NULL;
	size_t chart_yaml_len = 0;
	int rc = -1;
	memset(info, 0, sizeof *info);
	if (!data || len == 0) {
		snprintf(err, errlen, "empty archive");
		return -1;
	}
	if (len > CHARTSOURCE_MAX_ARCHIVE) {
		snprintf(err, errlen, "archive is larger than %u bytes", CHARTSOURCE_MAX_ARCHIVE);
		return -1;
	}
	if (gunzip(data, len, CHARTSOURCE_MAX_UNPACKED, &tar, err, errlen) != 0)
		goto out;
	const unsigned char *t = (const unsigned char *)tar.data;
	size_t n = tar.len, off = 0;
	long entries = 0;
	int ended = 0;
	if (n < 512) {
		snprintf(err, errlen, "not a tar archive (too short)");
		goto out;
	}
	while (off + 512 <= n) {
		const unsigned char *h = t + off;
		if (all_zero(h, 512)) {
			ended = 1;
			break;
		}
		if (!tar_checksum_ok(h)) {
			snprintf(err, errlen, entries ? "corrupt tar header (bad checksum) at offset %zu"
						      : "not a tar archive (bad header checksum at offset %zu)",
				 off);
			goto out;
		}
		if (++entries > CHARTSOURCE_MAX_ENTRIES) {
			snprintf(err, errlen, "more than %d entries", CHARTSOURCE_MAX_ENTRIES);
			goto out;
		}
		long long size = tar_octal(h + 124, 12);
		if (size < 0 || (unsigned long long)size > CHARTSOURCE_MAX_FILE) {
			snprintf(err, errlen, "an entry is larger than %u bytes or has a bad size field",
				 CHARTSOURCE_MAX_FILE);
			goto out;
		}
		size_t body = off + 512;
		size_t padded = ((size_t)size + 511) / 512 * 512;
		if (body + (size_t)size > n) {
			snprintf(err, errlen, "truncated tar archive");
			goto out;
		}
		char type = (char)h[156];
		if (type == 'x' || type == 'L') {
			char *p = NULL;
			if (type == 'x') {
				if (pax_path(t + body, (size_t)size, &p, err, errlen) != 0) {
					free(p);
					goto out;
				}
			} else {
				p = xstrndup((const char *)t + body, (size_t)size);
			}
			if (p) {
				free(longname);
				longname = p;
			}
			off = body + padded;
			continue;
		}
		if (type == 'g') {   /* global pax header: nothing we need */
			off = body + padded;
			continue;
		}
		/* The entry's name: long name, else ustar prefix + name. */
		char name[512];
		if (longname) {
			snprintf(name, sizeof name, "%s", longname);
			if (strlen(longname) >= sizeof name) {
				snprintf(err, errlen, "an entry name is longer than %zu bytes", sizeof name - 1);
				goto out;
			}
			free(longname);
			longname = NULL;
		} else {
			char nm[101], prefix[156];
			memcpy(nm, h, 100);
			nm[100] = '\0';
			prefix[0] = '\0';
			if (!memcmp(h + 257, "ustar", 5)) {
				memcpy(prefix, h + 345, 155);
				prefix[155] = '\0';
			}
			snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "/" : "", nm);
		}
		if (type == '1' || type == '2') {
			snprintf(err, errlen, "entry \"%.200s\" is a %s link (links are not allowed in a chart)",
				 name, type == '1' ? "hard" : "symbolic");
			goto out;
		}
		if (type != '0' && type != '\0' && type != '5' && type != '7') {
			snprintf(err, errlen, "entry \"%.200s\" has unsupported type '%c' (only files and directories)",
				 name, type >= 0x20 && type < 0x7f ? type : '?');
			goto out;
		}
		int is_dir = type == '5';
		if (check_path(name, is_dir, top, sizeof top, err, errlen) != 0)
			goto out;
		if (!is_dir) {
			info->files++;
			size_t tl = strlen(top);
			if (!strncmp(name, top, tl) && !strcmp(name + tl, "/Chart.yaml")) {
				if (chart_yaml) {
					snprintf(err, errlen, "%s/Chart.yaml appears twice", top);
					goto out;
				}
				if ((size_t)size > CHARTSOURCE_MAX_CHART_YAML) {
					snprintf(err, errlen, "%s/Chart.yaml is larger than %u bytes", top,
						 CHARTSOURCE_MAX_CHART_YAML);
					goto out;
				}
				chart_yaml = xstrndup((const char *)t + body, (size_t)size);
				chart_yaml_len = strlen(chart_yaml);
				if (chart_yaml_len != (size_t)size) {
					snprintf(err, errlen, "%s/Chart.yaml contains a NUL byte", top);
					goto out;
				}
			}
		}
		off = body + padded;
	}
	if (longname) {
		snprintf(err, errlen, "truncated tar archive (extended header without an entry)");
		goto out;
	}
	if (!ended && off != n) {
		snprintf(err, errlen, "truncated tar archive");
		goto out;
	}
	if (!top[0]) {
		snprintf(err, errlen, "the archive is empty");
		goto out;
	}
	if (!chart_yaml) {
		snprintf(err, errlen, "no %s/Chart.yaml in the archive (is this a Helm chart?)", top);
		goto out;
	}
	if (parse_chart_yaml(chart_yaml, chart_yaml_len, top, info, err, errlen) != 0)
		goto out;
	info->unpacked = (long long)tar.len;
	rc = 0;
out:
	free(longname);
	free(chart_yaml);
	buf_free(&tar);
	return rc;
}

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
	st = http_get(chart_url, ca_file, timeout_ms, CHARTSOURCE_MAX_ARCHIVE, &arc, herr, sizeof herr);
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
	chartsource_sha256_hex(arc.data, arc.len, sha);
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
	struct chartsource_info info;
	if (chartsource_inspect(arc.data, arc.len, &info, ierr, sizeof ierr) != 0) {
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
	data = read_file_limit(buf_cstr(&path), CHARTSOURCE_MAX_ARCHIVE, &len);
	if (!data) {
		if (errno == EFBIG) {
			snprintf(err, errlen, "%s: larger than %u bytes", buf_cstr(&path),
				 CHARTSOURCE_MAX_ARCHIVE);
		} else if (errno == EIO) {
			snprintf(err, errlen, "%s: read error", buf_cstr(&path));
		} else {
			snprintf(err, errlen, "%s: %s", buf_cstr(&path), strerror(errno));
			rc = 1;
		}
		goto out;
	}
	char ierr[512];
	if (chartsource_inspect(data, len, &out->info, ierr, sizeof ierr) != 0) {
		snprintf(err, errlen, "%s: %s", buf_cstr(&path), ierr);
		goto out;
	}
	if (strcmp(out->info.name, name) != 0 || strcmp(out->info.version, version) != 0) {
		snprintf(err, errlen, "%s holds chart %s %s", buf_cstr(&path), out->info.name,
			 out->info.version);
		goto out;
	}
	chartsource_sha256_hex(data, len, out->sha256);
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
	if (!chartsource_name_ok(name) || !chartsource_semver_ok(version)) {
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
			if (chartsource_inspect(out->data, out->len, &out->info, e, sizeof e) != 0) {
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
