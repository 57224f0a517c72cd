/*
 * inspect.c: the structural check of a chart archive (see inspect.h).
 *
 * The check inflates the gzip stream in memory under a hard cap (so a
 * gzip bomb costs at most CHART_INSPECT_MAX_UNPACKED bytes and stops with a
 * clear message), then walks the tar headers: checksums, sizes, types
 * (regular files and directories only; pax 'x'/'g' and GNU 'L' long-name
 * headers are understood because Go's and GNU tar write them), and every
 * path relative, free of "." / ".." / empty components and backslashes,
 * under the one top-level directory. Chart.yaml is parsed with yamljson
 * and must name the chart after its directory, with a SemVer 2 version.
 */
#include "server/chart/inspect.h"
#include "server/common/buf.h"
#include "server/common/yamljson.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int chart_semver_ok(const char *s)
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

int chart_name_ok(const char *s)
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
	/* Inflate straight into out: room for the size the trailer gives (the
	 * last member's size mod 2^32, exact for the usual one member), at
	 * most max + 1 so that passing the limit is seen; more when it was
	 * too small. */
	uint32_t isize = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
			 (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
	size_t guess = isize < max ? isize : max;
	if (guess / 1032 > len)   /* deflate expands at most 1032 times */
		guess = len * 1032;
	buf_reserve(out, guess + 1);
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	for (;;) {
		if (out->cap - out->len < 65536 + 1)
			buf_reserve(out, 65536 + 1);
		size_t room = out->cap - out->len - 1;   /* buf keeps a NUL after len */
		if (room > max + 1 - out->len)
			room = max + 1 - out->len;
		zs.next_out = (unsigned char *)out->data + out->len;
		zs.avail_out = (uInt)room;
		int z = inflate(&zs, Z_NO_FLUSH);
		out->len += room - zs.avail_out;
		out->data[out->len] = '\0';
		if (out->len > max) {
			snprintf(err, errlen, "archive unpacks to more than %zu bytes (refused: possible gzip bomb)",
				 max);
			goto out;
		}
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
			    struct chart_inspect_info *info, char *err, size_t errlen)
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
	if (!json_is_string(name) || !chart_name_ok(json_string_value(name))) {
		snprintf(err, errlen,
			 "%s/Chart.yaml: name must be 1-63 of lower-case letters, digits, '-', '_', '.'", top);
		goto out;
	}
	if (strcmp(json_string_value(name), top) != 0) {
		snprintf(err, errlen, "%s/Chart.yaml names the chart \"%s\" but its directory is \"%s\"",
			 top, json_string_value(name), top);
		goto out;
	}
	if (!json_is_string(ver) || !chart_semver_ok(json_string_value(ver))) {
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

static int inspect_archive(const void *data, size_t len, struct chart_inspect_info *info,
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
	if (len > CHART_INSPECT_MAX_ARCHIVE) {
		snprintf(err, errlen, "archive is larger than %u bytes", CHART_INSPECT_MAX_ARCHIVE);
		return -1;
	}
	if (gunzip(data, len, CHART_INSPECT_MAX_UNPACKED, &tar, err, errlen) != 0)
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
		if (++entries > CHART_INSPECT_MAX_ENTRIES) {
			snprintf(err, errlen, "more than %d entries", CHART_INSPECT_MAX_ENTRIES);
			goto out;
		}
		long long size = tar_octal(h + 124, 12);
		if (size < 0 || (unsigned long long)size > CHART_INSPECT_MAX_FILE) {
			snprintf(err, errlen, "an entry is larger than %u bytes or has a bad size field",
				 CHART_INSPECT_MAX_FILE);
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
				if ((size_t)size > CHART_INSPECT_MAX_CHART_YAML) {
					snprintf(err, errlen, "%s/Chart.yaml is larger than %u bytes", top,
						 CHART_INSPECT_MAX_CHART_YAML);
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

/* ---- memo of accepted archives ------------------------------------------ */

/* Every job resolves its chart twice (preflight, cilium phase) and each
 * resolution inspects the archive: inflating a Cilium chart is most of a
 * fresh install's CPU after the render (BENCHMARKS.md, "Fresh install:
 * ferryd CPU"). The check depends on the bytes alone, so an archive whose
 * SHA-256 was accepted before is accepted again with the same info.
 * Refused archives are not remembered (nothing to gain, and a hostile
 * upload could otherwise evict the entries). */
#define INSPECT_MEMO 8

static struct {
	unsigned char sha[32];
	struct chart_inspect_info info;
	int used;
} memo[INSPECT_MEMO];
static unsigned memo_next;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

int chart_inspect(const void *data, size_t len, struct chart_inspect_info *info,
		  char *err, size_t errlen)
{
	unsigned char sha[32];
	unsigned int shalen = 0;
	int hashed = data && len > 0 && len <= CHART_INSPECT_MAX_ARCHIVE &&
		     EVP_Digest(data, len, sha, &shalen, EVP_sha256(), NULL) == 1 && shalen == sizeof sha;
	if (hashed) {
		int hit = 0;
		pthread_mutex_lock(&memo_lock);
		for (int i = 0; i < INSPECT_MEMO && !hit; i++)
			if (memo[i].used && !memcmp(memo[i].sha, sha, sizeof sha)) {
				*info = memo[i].info;
				hit = 1;
			}
		pthread_mutex_unlock(&memo_lock);
		if (hit)
			return 0;
	}
	int rc = inspect_archive(data, len, info, err, errlen);
	if (rc == 0 && hashed) {
		pthread_mutex_lock(&memo_lock);
		unsigned i = memo_next++ % INSPECT_MEMO;
		memcpy(memo[i].sha, sha, sizeof sha);
		memo[i].info = *info;
		memo[i].used = 1;
		pthread_mutex_unlock(&memo_lock);
	}
	return rc;
}
