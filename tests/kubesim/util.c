/*
 * util.c: small helpers for kubesim (time, randomness, base64, files, JSON
 * paths). Nothing here knows about Kubernetes.
 */
#include "tests/kubesim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rfc3339_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void random_hex(char *out, size_t nbytes)
{
	unsigned char raw[64];
	static const char hex[] = "0123456789abcdef";
	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	if (RAND_bytes(raw, (int)nbytes) != 1) {
		for (size_t i = 0; i < nbytes; i++)
			raw[i] = (unsigned char)rand();
	}
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * nbytes] = 0;
}

char *b64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[n] = 0;
	return out;
}

unsigned char *b64_decode(const char *s, size_t *outlen)
{
	size_t n = strlen(s);
	char *tmp = xmalloc(n + 4);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (ch == '\n' || ch == '\r')
			continue;
		tmp[j++] = ch;
	}
	while (j % 4)
		tmp[j++] = '=';
	tmp[j] = 0;
	unsigned char *out = xmalloc(j / 4 * 3 + 1);
	int r = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)j);
	if (r < 0) {
		free(tmp);
		free(out);
		return NULL;
	}
	size_t pad = 0;
	if (j >= 1 && tmp[j - 1] == '=')
		pad++;
	if (j >= 2 && tmp[j - 2] == '=')
		pad++;
	free(tmp);
	*outlen = (size_t)r - pad;
	out[*outlen] = 0;
	return out;
}

int write_file(const char *path, const char *data, size_t len, int mode)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int mkdir_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

uint64_t fnv1a(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

const char *jstr(const json_t *obj, const char *key)
{
	if (!json_is_object(obj))
		return NULL;
	return json_string_value(json_object_get(obj, key));
}

json_t *jpath(const json_t *obj, const char *dotted)
{
	char part[256];
	const char *p = dotted;
	json_t *cur = (json_t *)obj;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = 0;
		if (!json_is_object(cur))
			return NULL;
		cur = json_object_get(cur, part);
		p = dot ? dot + 1 : p + n;
	}
	return cur;
}

void jset_path(json_t *obj, const char *dotted, json_t *value)
{
	char part[256];
	const char *p = dotted;
	json_t *cur = obj;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part))
			n = sizeof(part) - 1;
		memcpy(part, p, n);
		part[n] = 0;
		if (!dot) {
			json_object_set_new(cur, part, value);
			return;
		}
		json_t *next = json_object_get(cur, part);
		if (!json_is_object(next)) {
			next = json_object();
			json_object_set_new(cur, part, next);
		}
		cur = next;
		p = dot + 1;
	}
}
