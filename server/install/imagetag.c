/*
 * imagetag.c: split image references and order version tags.
 *
 * The parser is deliberately small: digits separated by dots, at most
 * three numeric parts, then "-pre" and "+build". Anything else (a tag
 * like "latest" or "stable-2024") is "not a version" and callers decide
 * what that means for them, instead of guessing an order.
 */
#include "server/install/imagetag.h"
#include "server/common/buf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int imagetag_split(const char *image, char **repo, char **tag)
{
	*repo = NULL;
	*tag = NULL;
	if (!image || !*image)
		return -1;
	size_t len = strlen(image);
	const char *at = strchr(image, '@');
	if (at)
		len = (size_t)(at - image);
	const char *slash = NULL;
	for (size_t i = 0; i < len; i++)
		if (image[i] == '/')
			slash = image + i;
	const char *colon = NULL;
	for (const char *p = slash ? slash : image; p < image + len; p++)
		if (*p == ':')
			colon = p;
	if (colon) {
		*repo = xstrndup(image, (size_t)(colon - image));
		*tag = xstrndup(colon + 1, (size_t)(image + len - colon - 1));
	} else {
		*repo = xstrndup(image, len);
	}
	return 0;
}

static int parse_num(const char **p, long *out)
{
	if (!isdigit((unsigned char)**p))
		return -1;
	long v = 0;
	while (isdigit((unsigned char)**p)) {
		if (v > 100000000L)
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

int imagetag_parse(const char *tag, struct imagetag_version *out)
{
	memset(out, 0, sizeof(*out));
	if (!tag)
		return -1;
	const char *p = tag;
	if (*p == 'v' || *p == 'V')
		p++;
	long *parts[3] = { &out->major, &out->minor, &out->patch };
	for (int i = 0; i < 3; i++) {
		if (parse_num(&p, parts[i]) < 0)
			return -1;
		if (*p != '.')
			break;
		if (i == 2)
			return -1;
		p++;
	}
	if (*p == '-') {
		p++;
		size_t n = strcspn(p, "+");
		if (n == 0 || n >= sizeof(out->pre))
			return -1;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '-')
				return -1;
		memcpy(out->pre, p, n);
		out->pre[n] = '\0';
		p += n;
	}
	if (*p == '+')
		return p[1] ? 0 : -1;
	return *p ? -1 : 0;
}

static int is_numeric(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Semver pre-release precedence, identifier by identifier. */
static int pre_cmp(const char *a, const char *b)
{
	for (;;) {
		size_t na = strcspn(a, "."), nb = strcspn(b, ".");
		int da = is_numeric(a, na), db = is_numeric(b, nb);
		int c;
		if (da && db) {
			c = na != nb ? (na < nb ? -1 : 1) : strncmp(a, b, na);
		} else if (da != db) {
			c = da ? -1 : 1;
		} else {
			size_t n = na < nb ? na : nb;
			c = strncmp(a, b, n);
			if (!c && na != nb)
				c = na < nb ? -1 : 1;
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += na;
		b += nb;
		if (!*a || !*b)
			return !*a && !*b ? 0 : (!*a ? -1 : 1);
		a++;
		b++;
	}
}

static int core_cmp(const struct imagetag_version *a, const struct imagetag_version *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return 0;
}

int imagetag_version_cmp(const struct imagetag_version *a,
			 const struct imagetag_version *b)
{
	int c = core_cmp(a, b);
	if (c)
		return c;
	if (!a->pre[0] || !b->pre[0])
		return !a->pre[0] && !b->pre[0] ? 0 : (!a->pre[0] ? 1 : -1);
	return pre_cmp(a->pre, b->pre);
}

int imagetag_compare(const char *a, const char *b, int *cmp)
{
	struct imagetag_version va, vb;
	if (imagetag_parse(a, &va) < 0 || imagetag_parse(b, &vb) < 0)
		return -1;
	*cmp = imagetag_version_cmp(&va, &vb);
	return 0;
}

int imagetag_compare_core(const char *a, const char *b, int *cmp)
{
	struct imagetag_version va, vb;
	if (imagetag_parse(a, &va) < 0 || imagetag_parse(b, &vb) < 0)
		return -1;
	*cmp = core_cmp(&va, &vb);
	return 0;
}
