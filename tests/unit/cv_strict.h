/*
 * cv_strict.h: strict equality of chart values, for the differential tests
 * of the value readers (test_yamlfast, test_chart, fuzz_yaml_fast): kinds,
 * Go types, float bits, NUL-terminated strings, map keys in order, and maps
 * that work as cv maps (sorted, no repeats). Header only; no state.
 */
#ifndef FERRY_TESTS_CV_STRICT_H
#define FERRY_TESTS_CV_STRICT_H

#include "server/chart/cv.h"

#include <stdio.h>
#include <string.h>

/* Strict equality of two values: kinds, Go types, float bits, strings, map
 * keys in order. 1 when equal; else 0 and a short path to the difference
 * in why (why may be NULL when whylen is 0). */
static int cv_strict_equal(cv a, cv b, char *why, size_t whylen)
{
	if (a.kind != b.kind || a.sub != b.sub) {
		snprintf(why, whylen, "kind %d/%d vs %d/%d", a.kind, a.sub, b.kind, b.sub);
		return 0;
	}
	switch (a.kind) {
	case CV_NIL:
		return 1;
	case CV_BOOL:
		if (a.u.b == b.u.b)
			return 1;
		snprintf(why, whylen, "bool %d vs %d", a.u.b, b.u.b);
		return 0;
	case CV_INT:
		if (a.u.i == b.u.i)
			return 1;
		snprintf(why, whylen, "int %lld vs %lld", (long long)a.u.i, (long long)b.u.i);
		return 0;
	case CV_FLOAT:
		if (!memcmp(&a.u.f, &b.u.f, sizeof(double)))
			return 1;
		snprintf(why, whylen, "float %.17g vs %.17g", a.u.f, b.u.f);
		return 0;
	case CV_STR:
		if (a.u.str.len == b.u.str.len && !memcmp(a.u.str.s, b.u.str.s, a.u.str.len) &&
		    a.u.str.s[a.u.str.len] == 0)
			return 1;
		snprintf(why, whylen, "string \"%.60s\" vs \"%.60s\"", a.u.str.s, b.u.str.s);
		return 0;
	case CV_LIST:
		if (a.u.list->n != b.u.list->n) {
			snprintf(why, whylen, "list of %zu vs %zu", a.u.list->n, b.u.list->n);
			return 0;
		}
		for (size_t i = 0; i < a.u.list->n; i++)
			if (!cv_strict_equal(a.u.list->items[i], b.u.list->items[i], why, whylen)) {
				if (whylen) {
					char t[300];
					snprintf(t, sizeof(t), "[%zu] %s", i, why);
					snprintf(why, whylen, "%s", t);
				}
				return 0;
			}
		return 1;
	case CV_MAP:
		if (a.u.map->n != b.u.map->n) {
			snprintf(why, whylen, "map of %zu vs %zu", a.u.map->n, b.u.map->n);
			return 0;
		}
		for (size_t i = 0; i < a.u.map->n; i++) {
			const struct cv_mapent *x = &a.u.map->ents[i], *y = &b.u.map->ents[i];
			if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) || x->key[x->klen] != 0) {
				snprintf(why, whylen, "key #%zu \"%.40s\" vs \"%.40s\"", i, x->key, y->key);
				return 0;
			}
			if (!cv_strict_equal(x->val, y->val, why, whylen)) {
				if (whylen) {
					char t[300];
					snprintf(t, sizeof(t), ".%.40s %s", x->key, why);
					snprintf(why, whylen, "%s", t);
				}
				return 0;
			}
		}
		/* the map must work as a cv map (sorted, no repeats) */
		for (size_t i = 1; i < a.u.map->n; i++) {
			const struct cv_mapent *x = &a.u.map->ents[i - 1], *y = &a.u.map->ents[i];
			size_t n = x->klen < y->klen ? x->klen : y->klen;
			int c = memcmp(x->key, y->key, n);
			if (c > 0 || (c == 0 && x->klen >= y->klen)) {
				snprintf(why, whylen, "keys out of order at #%zu", i);
				return 0;
			}
		}
		return 1;
	default:
		snprintf(why, whylen, "unexpected kind %d", a.kind);
		return 0;
	}
}

#endif
