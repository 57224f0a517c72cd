/*
 * release.c: write and read Helm v3 release records.
 *
 * The JSON keys follow Helm's struct field order so a record ferry writes
 * is indistinguishable in shape from one Helm writes. Records are
 * compressed with libdeflate (raw deflate) inside a gzip frame whose
 * header is what Go's compress/gzip emits; reading uses zlib.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/release.h"
#include "server/common/buf.h"

#include <ctype.h>
#include <libdeflate.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define MAX_RELEASE_JSON (64u << 20)

int release_name_valid(const char *n)
{
	if (!n || !*n || strlen(n) > 53)
		return 0;
	/* ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ */
	const char *label = n;
	for (const char *p = n;; p++) {
		if (*p == '.' || !*p) {
			size_t len = (size_t)(p - label);
			if (len == 0 || label[0] == '-' || label[len - 1] == '-')
				return 0;
			if (!*p)
				return 1;
			label = p + 1;
		} else if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-')) {
			return 0;
		}
	}
}

void release_now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09ldZ", base, ts.tv_nsec);
}

json_t *release_build(const struct release_info *in)
{
	char now[48];
	release_now_rfc3339(now, sizeof now);
	json_t *info = json_object();
	json_object_set_new(info, "first_deployed", json_string(in->first_deployed ? in->first_deployed : now));
	json_object_set_new(info, "last_deployed", json_string(in->last_deployed ? in->last_deployed : now));
	json_object_set_new(info, "deleted", json_string(""));
	json_object_set_new(info, "description", json_string(in->description ? in->description : ""));
	json_object_set_new(info, "status", json_string(in->status ? in->status : "unknown"));
	if (in->notes && *in->notes)
		json_object_set_new(info, "notes", json_string(in->notes));

	json_t *chart = json_object();
	json_object_set_new(chart, "metadata", in->chart_metadata ? json_deep_copy(in->chart_metadata)
								  : json_object());
	json_object_set_new(chart, "lock", json_null());
	json_object_set_new(chart, "templates", in->chart_templates ? json_deep_copy(in->chart_templates)
								    : json_array());
	json_object_set_new(chart, "values", in->chart_values ? json_deep_copy(in->chart_values)
							      : json_object());
	json_object_set_new(chart, "schema", json_null());
	json_object_set_new(chart, "files", in->chart_files ? json_deep_copy(in->chart_files)
							    : json_array());

	json_t *r = json_object();
	json_object_set_new(r, "name", json_string(in->name ? in->name : ""));
	json_object_set_new(r, "info", info);
	json_object_set_new(r, "chart", chart);
	if (in->config && json_object_size(in->config))
		json_object_set_new(r, "config", json_deep_copy(in->config));
	json_object_set_new(r, "manifest", json_string(in->manifest ? in->manifest : ""));
	if (in->hooks && json_array_size(in->hooks))
		json_object_set_new(r, "hooks", json_deep_copy(in->hooks));
	json_object_set_new(r, "version", json_integer(in->revision));
	json_object_set_new(r, "namespace", json_string(in->namespace_ ? in->namespace_ : ""));
	return r;
}

char *release_secret_name(const char *name, int revision)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "sh.helm.release.v1.%s.v%d", name, revision);
	return buf_steal(&b);
}

char *release_b64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

unsigned char *release_b64_decode(const char *text, size_t *outlen)
{
	*outlen = 0;
	if (!text)
		return NULL;
	/* Skip whitespace (wrapped input). */
	size_t n = strlen(text);
	char *clean = xmalloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)text[i]))
			clean[k++] = text[i];
	clean[k] = '\0';
	if (k % 4) {
		free(clean);
		return NULL;
	}
	unsigned char *out = xmalloc(k / 4 * 3 + 1);
	int got = k ? EVP_DecodeBlock(out, (unsigned char *)clean, (int)k) : 0;
	if (got < 0) {
		free(clean);
		free(out);
		return NULL;
	}
	size_t pad = 0;
	if (k && clean[k - 1] == '=')
		pad++;
	if (k > 1 && clean[k - 2] == '=')
		pad++;
	free(clean);
	*outlen = (size_t)got - pad;
	return out;
}

/* The gzip header Go's compress/gzip writes at BestCompression (no name,
 * no time, XFL 2 "slowest", OS 255 "unknown"), as Helm's records have. */
static const unsigned char go_gzip_header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255 };

/* Records larger than this (compressed) are compressed again at
 * libdeflate's level 9, smaller than zlib's best: a Secret holds 1 MiB, and
 * data.release is the base64 of this (4/3 of it), so level 6's output
 * (at most about 2% larger than level 9's) is used only well below that. */
#define RELEASE_RECOMPRESS_ABOVE (512u << 10)

/* One level-6 compressor kept for the next record (its tables are
 * several hundred KiB: a fresh one is faulted in on every use); a record
 * written while another thread holds it gets a compressor of its own. */
static struct libdeflate_compressor *kept6;
static pthread_mutex_t kept6_lock = PTHREAD_MUTEX_INITIALIZER;

/* Raw deflate of data at a libdeflate level into out (cap bytes); its
 * length, 0 when it did not fit or out of memory. */
static size_t deflate_raw(int level, const void *data, size_t len, unsigned char *out, size_t cap)
{
	int kept = level == 6 && pthread_mutex_trylock(&kept6_lock) == 0;
	struct libdeflate_compressor *c = kept && kept6 ? kept6 : libdeflate_alloc_compressor(level);
	size_t n = c ? libdeflate_deflate_compress(c, data, len, out, cap) : 0;
	if (kept) {
		kept6 = c;
		pthread_mutex_unlock(&kept6_lock);
	} else {
		libdeflate_free_compressor(c);
	}
	return n;
}

/*
 * Helm writes gzip at BestCompression (zlib level 9 in Go). libdeflate's
 * level 6 compresses as well as zlib's 6 in a quarter of zlib 9's time;
 * past RELEASE_RECOMPRESS_ABOVE its level 9 (smaller output than zlib's 9,
 * 1.6 times faster) keeps large records as small as before. Figures in
 * BENCHMARKS.md ("Fresh install: ferryd CPU").
 */
char *release_encode(const json_t *release)
{
	char *json = json_dumps(release, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!json)
		return NULL;
	size_t len = strlen(json);
	size_t cap = len + len / 8 + 1024;   /* beyond any deflate expansion */
	unsigned char *gz = xmalloc(sizeof go_gzip_header + cap + 8);
	unsigned char *body = gz + sizeof go_gzip_header;
	memcpy(gz, go_gzip_header, sizeof go_gzip_header);
	size_t n = deflate_raw(6, json, len, body, cap);
	if (n > RELEASE_RECOMPRESS_ABOVE)
		n = deflate_raw(9, json, len, body, cap);
	if (!n) {
		free(json);
		free(gz);
		return NULL;
	}
	/* trailer: CRC-32 and size mod 2^32, little-endian */
	uint32_t crc = libdeflate_crc32(0, json, len), size = (uint32_t)len;
	for (int i = 0; i < 4; i++) {
		body[n + i] = (unsigned char)(crc >> (8 * i));
		body[n + 4 + i] = (unsigned char)(size >> (8 * i));
	}
	free(json);
	char *out = release_b64_encode(gz, sizeof go_gzip_header + n + 8);
	free(gz);
	return out;
}

json_t *release_decode(const char *encoded, char *err, size_t errlen)
{
	size_t len;
	unsigned char *raw = release_b64_decode(encoded, &len);
	if (!raw) {
		snprintf(err, errlen, "release data is not valid base64");
		return NULL;
	}
	json_t *out = NULL;
	json_error_t je;
	if (len >= 3 && raw[0] == 0x1f && raw[1] == 0x8b && raw[2] == 0x08) {
		z_stream zs;
		memset(&zs, 0, sizeof zs);
		if (inflateInit2(&zs, 15 + 16) != Z_OK) {
			snprintf(err, errlen, "zlib init failed");
			free(raw);
			return NULL;
		}
		struct buf b = BUF_INIT;
		unsigned char chunk[16384];
		zs.next_in = raw;
		zs.avail_in = (uInt)len;
		int rc;
		do {
			zs.next_out = chunk;
			zs.avail_out = sizeof chunk;
			rc = inflate(&zs, Z_NO_FLUSH);
			if (rc != Z_OK && rc != Z_STREAM_END)
				break;
			buf_append(&b, chunk, sizeof chunk - zs.avail_out);
			if (b.len > MAX_RELEASE_JSON) {
				rc = Z_DATA_ERROR;
				break;
			}
		} while (rc != Z_STREAM_END && (zs.avail_in > 0 || zs.avail_out == 0));
		inflateEnd(&zs);
		if (rc != Z_STREAM_END) {
			snprintf(err, errlen, "release data: gzip stream is corrupt or truncated");
			buf_free(&b);
			free(raw);
			return NULL;
		}
		out = json_loadb(b.data ? b.data : "", b.len, 0, &je);
		buf_free(&b);
	} else {
		out = json_loadb((const char *)raw, len, 0, &je);
	}
	free(raw);
	if (!out)
		snprintf(err, errlen, "release data is not JSON: %s", je.text);
	else if (!json_is_object(out)) {
		snprintf(err, errlen, "release data is not a JSON object");
		json_decref(out);
		out = NULL;
	}
	return out;
}

json_t *release_secret_head(const json_t *release, long long created_at, long long modified_at,
			    char **wire)
{
	*wire = NULL;
	const char *name = json_string_value(json_object_get(release, "name"));
	const char *ns = json_string_value(json_object_get(release, "namespace"));
	const char *status = json_string_value(json_object_get(json_object_get(release, "info"), "status"));
	int rev = (int)json_integer_value(json_object_get(release, "version"));
	char *enc = release_encode(release);
	if (!enc || !name) {
		free(enc);
		return NULL;
	}
	*wire = release_b64_encode(enc, strlen(enc));
	free(enc);
	char *sname = release_secret_name(name, rev);
	char ver[24];
	snprintf(ver, sizeof ver, "%d", rev);
	json_t *labels = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "owner", "helm",
				   "status", status ? status : "unknown", "version", ver,
				   RELEASE_MANAGED_LABEL, "true");
	char t[24];
	if (created_at > 0) {
		snprintf(t, sizeof t, "%lld", created_at);
		json_object_set_new(labels, "createdAt", json_string(t));
	}
	if (modified_at > 0) {
		snprintf(t, sizeof t, "%lld", modified_at);
		json_object_set_new(labels, "modifiedAt", json_string(t));
	}
	json_t *s = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:s}",
			      "apiVersion", "v1", "kind", "Secret",
			      "metadata", "name", sname, "namespace", ns ? ns : "default",
			      "labels", labels,
			      "type", RELEASE_SECRET_TYPE);
	free(sname);
	return s;
}

json_t *release_secret(const json_t *release, long long created_at, long long modified_at)
{
	char *wire;
	json_t *s = release_secret_head(release, created_at, modified_at, &wire);
	if (s)
		json_object_set_new(s, "data", json_pack("{s:s}", "release", wire));
	free(wire);
	return s;
}

char *release_secret_text(const json_t *head, const char *wire)
{
	char *h = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t hl = h ? strlen(h) : 0;
	if (hl < 3 || h[hl - 1] != '}') {
		free(h);
		return NULL;
	}
	/* base64 ([A-Za-z0-9+/=]) needs no JSON escaping: appended as is,
	 * where jansson would inspect it character by character (two records
	 * of 150-200 kB per install). */
	static const char pre[] = ",\"data\":{\"release\":\"";
	size_t wl = strlen(wire);
	struct buf b = BUF_INIT;
	buf_append(&b, h, hl - 1);
	buf_append(&b, pre, sizeof pre - 1);
	buf_append(&b, wire, wl);
	buf_puts(&b, "\"}}");
	free(h);
	return buf_steal(&b);
}

json_t *release_from_secret(const json_t *secret, char *err, size_t errlen)
{
	const char *wire = json_string_value(json_object_get(json_object_get(secret, "data"), "release"));
	if (!wire) {
		snprintf(err, errlen, "secret has no data.release");
		return NULL;
	}
	size_t len;
	unsigned char *inner = release_b64_decode(wire, &len);
	if (!inner) {
		snprintf(err, errlen, "secret data.release is not valid base64");
		return NULL;
	}
	char *text = xstrndup((const char *)inner, len);
	free(inner);
	json_t *r = release_decode(text, err, errlen);
	free(text);
	return r;
}

const json_t *release_latest_secret(const json_t *secrets)
{
	const json_t *items = json_is_array(secrets) ? secrets : json_object_get(secrets, "items");
	const json_t *best = NULL;
	long best_v = -1;
	size_t i;
	const json_t *s;
	json_array_foreach(items, i, s) {
		const char *v = json_string_value(json_object_get(
			json_object_get(json_object_get(s, "metadata"), "labels"), "version"));
		long n = v ? strtol(v, NULL, 10) : -1;
		if (n > best_v) {
			best_v = n;
			best = s;
		}
	}
	return best;
}
