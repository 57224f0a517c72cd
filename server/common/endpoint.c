/*
 * endpoint.c: the checks of a cluster's connection strings (see endpoint.h).
 */
#include "server/common/endpoint.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* The URL itself is never quoted back: it may carry credentials. */
int kube_server_url_valid(const char *url, char *err, size_t errlen)
{
	size_t n = url ? strlen(url) : 0;
	const char *why = NULL;
	if (n <= 8 || n > 2048 || strncmp(url, "https://", 8) != 0) {
		why = "must be an https:// URL of at most 2048 characters";
	} else {
		const char *host = url + 8;
		size_t hl = strcspn(host, "/?#");
		if (memchr(host, '@', hl))
			why = "must not contain user information (user:password@); give credentials in their own fields";
		else if (hl == 0 || host[0] == ':')
			why = "has no host";
		for (size_t i = 0; !why && i < n; i++) {
			unsigned char c = (unsigned char)url[i];
			if (c <= 0x20 || c >= 0x7f || c == '\\')
				why = "must not contain spaces, control characters, non-ASCII bytes or '\\'";
			else if (c == '#' || c == '?')
				why = "must not have a query or a fragment";
		}
	}
	if (!why)
		return 0;
	snprintf(err, errlen, "server URL %s", why);
	return -1;
}

int kube_tls_server_name_valid(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;
	unsigned char addr[16];
	char tmp[64];
	if (n > 0 && n < sizeof tmp) {
		memcpy(tmp, name, n + 1);
		if (inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1)
			return 0;
	}
	int ok = n > 0 && n <= 253;
	const char *p = name;
	while (ok) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		ok = l > 0 && l <= 63 && p[0] != '-' && p[l - 1] != '-';
		for (size_t i = 0; ok && i < l; i++)
			ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
			     (p[i] >= '0' && p[i] <= '9') || p[i] == '-';
		if (!dot)
			break;
		p = dot + 1;
	}
	if (!ok) {
		/* the name quoted back: printable ASCII only, cut at 64 */
		char q[68];
		size_t o = 0;
		for (const unsigned char *c = (const unsigned char *)name; c && *c && o < 64; c++)
			q[o++] = (*c >= 0x20 && *c < 0x7f && *c != '"') ? (char)*c : '?';
		q[o] = '\0';
		snprintf(err, errlen, "TLS server name \"%s%s\" is not valid: must be a DNS name or an IP address", q,
			 name && strlen(name) > 64 ? "..." : "");
		return -1;
	}
	return 0;
}
