/*
 * trustproxy: see trustproxy.h. Addresses are compared as 16-byte IPv6
 * values, IPv4 ones mapped (::ffff:a.b.c.d), so one prefix test serves
 * both families.
 */
#include "server/trustproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/common/buf.h"

struct cidr {
	unsigned char addr[16];
	int bits;   /* prefix length over the 16-byte (mapped) form */
};

struct trustproxy {
	struct cidr *v;
	int n;
};

/* Text address into its 16-byte mapped form; *v4 = 1 for IPv4. */
static int parse_addr(const char *s, unsigned char out[16], int *v4)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, 16);
		*v4 = 0;
		return 0;
	}
	return -1;
}

struct trustproxy *trustproxy_parse(const char *list, char *err, size_t errlen)
{
	struct trustproxy *tp = xcalloc(1, sizeof(*tp));
	if (!list)
		return tp;
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && *e != ',' && *e != ' ')
			e++;
		char item[64];
		size_t len = (size_t)(e - p);
		if (len >= sizeof(item)) {
			snprintf(err, errlen, "trusted proxy \"%.*s\" is not an address or CIDR", (int)(len > 60 ? 60 : len), p);
			goto fail;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		char *slash = strchr(item, '/');
		long bits = -1;
		if (slash) {
			*slash = '\0';
			char *end;
			bits = strtol(slash + 1, &end, 10);
			if (slash[1] == '\0' || *end || bits < 0) {
				snprintf(err, errlen, "trusted proxy \"%.*s\": bad prefix length", (int)len, p);
				goto fail;
			}
		}
		struct cidr c;
		int v4;
		if (parse_addr(item, c.addr, &v4) != 0) {
			snprintf(err, errlen, "trusted proxy \"%.*s\" is not an address or CIDR", (int)len, p);
			goto fail;
		}
		long max = v4 ? 32 : 128;
		if (bits > max) {
			snprintf(err, errlen, "trusted proxy \"%.*s\": prefix longer than %ld bits", (int)len, p, max);
			goto fail;
		}
		if (bits < 0)
			bits = max;
		c.bits = (int)(v4 ? bits + 96 : bits);
		tp->v = xrealloc(tp->v, sizeof(*tp->v) * (size_t)(tp->n + 1));
		tp->v[tp->n++] = c;
		p = e;
	}
	return tp;
fail:
	trustproxy_free(tp);
	return NULL;
}

void trustproxy_free(struct trustproxy *tp)
{
	if (!tp)
		return;
	free(tp->v);
	free(tp);
}

int trustproxy_count(const struct trustproxy *tp)
{
	return tp ? tp->n : 0;
}

static int contains16(const struct trustproxy *tp, const unsigned char a[16])
{
	if (!tp)
		return 0;
	for (int i = 0; i < tp->n; i++) {
		const struct cidr *c = &tp->v[i];
		int full = c->bits / 8, rest = c->bits % 8;
		if (memcmp(a, c->addr, (size_t)full) != 0)
			continue;
		if (rest) {
			unsigned char mask = (unsigned char)(0xff << (8 - rest));
			if ((a[full] & mask) != (c->addr[full] & mask))
				continue;
		}
		return 1;
	}
	return 0;
}

int trustproxy_contains_text(const struct trustproxy *tp, const char *ip)
{
	unsigned char a[16];
	int v4;
	return ip && parse_addr(ip, a, &v4) == 0 && contains16(tp, a);
}

/* The socket address as text (IPv4-mapped IPv6 shown as IPv4) and as its
 * 16-byte form. -1 for another family. */
static int sock_addr(const struct sockaddr *sa, char ip[46], unsigned char a[16])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &s4->sin_addr, 4);
		inet_ntop(AF_INET, &s4->sin_addr, ip, 46);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		memcpy(a, &s6->sin6_addr, 16);
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (!memcmp(a, mapped, 12))
			inet_ntop(AF_INET, a + 12, ip, 46);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, 46);
		return 0;
	}
	return -1;
}

int trustproxy_contains(const struct trustproxy *tp, const struct sockaddr *sa)
{
	char ip[46];
	unsigned char a[16];
	return sa && sock_addr(sa, ip, a) == 0 && contains16(tp, a);
}

/* Copy [s, e) trimmed of blanks into out (46 bytes); 0 if it fits. */
static int trimmed(const char *s, const char *e, char out[46])
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == s || (size_t)(e - s) >= 46)
		return -1;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	return 0;
}

void trustproxy_client(const struct trustproxy *tp, const struct sockaddr *peer,
		       const char *xff, const char *proto, int tls, char ip[46], int *secure)
{
	unsigned char a[16];
	ip[0] = '\0';
	*secure = tls;
	if (!peer || sock_addr(peer, ip, a) != 0 || !contains16(tp, a))
		return;
	if (proto && *proto) {
		/* Several proxies may each append theirs: the last one is ours. */
		const char *last = strrchr(proto, ',');
		last = last ? last + 1 : proto;
		while (*last == ' ')
			last++;
		*secure = tls || !strncasecmp(last, "https", 5);
	}
	if (!xff)
		return;
	/* Right to left: the first address not a trusted proxy is the client. */
	const char *end = xff + strlen(xff);
	char cand[46];
	while (end > xff) {
		const char *start = end;
		while (start > xff && start[-1] != ',')
			start--;
		unsigned char c16[16];
		int v4;
		if (trimmed(start, end, cand) != 0 || parse_addr(cand, c16, &v4) != 0)
			return;  /* garbage: keep what we had */
		snprintf(ip, 46, "%s", cand);
		if (!contains16(tp, c16))
			return;
		end = start > xff ? start - 1 : xff;
	}
}
