/*
 * selector.c: Kubernetes label selectors in their string form
 * (k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k; commas mean AND).
 * A parsed selector is a JSON array of {"key","op","values":[…]}.
 */
#include "tests/kubesim/sim.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int key_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.' || ch == '/';
}

json_t *labelsel_parse(const char *s, char *err, size_t errlen)
{
	json_t *out = json_array();
	const char *p = skip_ws(s ? s : "");
	while (*p) {
		int neg = 0;
		if (*p == '!') {
			neg = 1;
			p = skip_ws(p + 1);
		}
		const char *k = p;
		while (key_char(*p))
			p++;
		if (p == k) {
			snprintf(err, errlen, "unable to parse requirement: found '%c', expected: identifier", *p ? *p : ' ');
			goto fail;
		}
		json_t *key = json_stringn(k, (size_t)(p - k));
		p = skip_ws(p);
		const char *op = NULL;
		json_t *values = json_array();
		if (neg) {
			op = "!";
		} else if (*p == ',' || !*p) {
			op = "exists";
		} else if (p[0] == '=' && p[1] == '=') {
			op = "=";
			p += 2;
		} else if (p[0] == '!' && p[1] == '=') {
			op = "!=";
			p += 2;
		} else if (p[0] == '=') {
			op = "=";
			p += 1;
		} else if (!strncmp(p, "in", 2) && !key_char(p[2])) {
			op = "in";
			p += 2;
		} else if (!strncmp(p, "notin", 5) && !key_char(p[5])) {
			op = "notin";
			p += 5;
		} else {
			snprintf(err, errlen, "unable to parse requirement: found '%c', expected: in, notin, =, ==, !=, gt, lt", *p);
			json_decref(key);
			json_decref(values);
			goto fail;
		}
		p = skip_ws(p);
		if (!strcmp(op, "=") || !strcmp(op, "!=")) {
			const char *v = p;
			while (key_char(*p))
				p++;
			json_array_append_new(values, json_stringn(v, (size_t)(p - v)));
		} else if (!strcmp(op, "in") || !strcmp(op, "notin")) {
			if (*p != '(') {
				snprintf(err, errlen, "unable to parse requirement: found '%c', expected: '('", *p ? *p : ' ');
				json_decref(key);
				json_decref(values);
				goto fail;
			}
			p++;
			for (;;) {
				p = skip_ws(p);
				const char *v = p;
				while (key_char(*p))
					p++;
				if (p > v)
					json_array_append_new(values, json_stringn(v, (size_t)(p - v)));
				p = skip_ws(p);
				if (*p == ',') {
					p++;
					continue;
				}
				if (*p == ')') {
					p++;
					break;
				}
				snprintf(err, errlen, "unable to parse requirement: found '%c', expected: ',' or ')'", *p ? *p : ' ');
				json_decref(key);
				json_decref(values);
				goto fail;
			}
		}
		json_array_append_new(out, json_pack("{s:o, s:s, s:o}", "key", key, "op", op, "values", values));
		p = skip_ws(p);
		if (*p == ',') {
			p = skip_ws(p + 1);
			if (!*p) {
				snprintf(err, errlen, "unable to parse requirement: found '', expected: identifier");
				goto fail;
			}
		} else if (*p) {
			snprintf(err, errlen, "unable to parse requirement: found '%c', expected: ','", *p);
			goto fail;
		}
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

static int in_values(const json_t *values, const char *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(values, i, x)
		if (v && !strcmp(json_string_value(x), v))
			return 1;
	return 0;
}

int labelsel_match(const json_t *sel, const json_t *labels)
{
	size_t i;
	json_t *r;
	json_array_foreach(sel, i, r) {
		const char *key = jstr(r, "key"), *op = jstr(r, "op");
		const json_t *values = json_object_get(r, "values");
		const char *v = jstr(labels, key);
		if (!strcmp(op, "exists")) {
			if (!v)
				return 0;
		} else if (!strcmp(op, "!")) {
			if (v)
				return 0;
		} else if (!strcmp(op, "=") || !strcmp(op, "in")) {
			if (!in_values(values, v))
				return 0;
		} else if (!strcmp(op, "!=") || !strcmp(op, "notin")) {
			if (v && in_values(values, v))
				return 0;
		}
	}
	return 1;
}
