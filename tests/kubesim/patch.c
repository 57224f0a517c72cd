/*
 * patch.c: the four PATCH flavours and managedFields.
 *
 * - JSON patch (RFC 6902) with JSON pointers (RFC 6901).
 * - JSON merge patch (RFC 7386): null deletes, objects merge, rest replaces.
 * - Strategic merge patch: like merge patch, but lists named in merge_key()
 *   merge by their key; $patch directives and $deleteFromPrimitiveList.
 * - Server-side apply: field sets in the FieldsV1 format ("f:name",
 *   "k:{\"name\":\"x\"}", "v:…", "."), per manager. Applying computes the
 *   applier's set, finds fields other managers own with different values
 *   (conflicts, unless force), removes fields the applier owned before but no
 *   longer applies (when nobody else owns them), then merges the config.
 */
#include "tests/kubesim/sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ JSON patch */

static int ptr_next(const char **p, char *tok, size_t toklen)
{
	if (**p != '/')
		return 0;
	(*p)++;
	size_t n = 0;
	while (**p && **p != '/') {
		char ch = **p;
		if (ch == '~') {
			(*p)++;
			ch = **p == '1' ? '/' : '~';
		}
		if (n + 1 < toklen)
			tok[n++] = ch;
		(*p)++;
	}
	tok[n] = 0;
	return 1;
}

static int parse_index(const char *tok, size_t max, size_t *out, int allow_end)
{
	if (allow_end && !strcmp(tok, "-")) {
		*out = max;
		return 1;
	}
	if (!tok[0])
		return 0;
	for (const char *p = tok; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	*out = (size_t)strtoul(tok, NULL, 10);
	return *out <= max;
}

/* Find the parent container of pointer; *last gets the last token. */
static json_t *ptr_parent(json_t *doc, const char *ptr, char *last, size_t lastlen)
{
	const char *p = ptr;
	json_t *cur = doc;
	char tok[512];
	last[0] = 0;
	if (!*p)
		return NULL;
	for (;;) {
		if (!ptr_next(&p, tok, sizeof(tok)))
			return NULL;
		if (!*p) {
			snprintf(last, lastlen, "%s", tok);
			return cur;
		}
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			size_t idx;
			if (!parse_index(tok, json_array_size(cur) - 1, &idx, 0) || !json_array_size(cur))
				return NULL;
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
		if (!cur)
			return NULL;
	}
}

static json_t *ptr_get(json_t *doc, const char *ptr)
{
	if (!*ptr)
		return doc;
	char last[512];
	json_t *parent = ptr_parent(doc, ptr, last, sizeof(last));
	if (json_is_object(parent))
		return json_object_get(parent, last);
	if (json_is_array(parent)) {
		size_t idx;
		if (json_array_size(parent) && parse_index(last, json_array_size(parent) - 1, &idx, 0))
			return json_array_get(parent, idx);
	}
	return NULL;
}

static int ptr_add(json_t *doc, const char *ptr, json_t *value, char *err, size_t errlen)
{
	char last[512];
	json_t *parent = ptr_parent(doc, ptr, last, sizeof(last));
	if (json_is_object(parent))
		return json_object_set(parent, last, value) == 0 ? 0 : -1;
	if (json_is_array(parent)) {
		size_t idx;
		if (!parse_index(last, json_array_size(parent), &idx, 1)) {
			snprintf(err, errlen, "add operation does not apply: doc is missing path: \"%s\": index out of bounds", ptr);
			return -1;
		}
		return json_array_insert(parent, idx, value) == 0 ? 0 : -1;
	}
	snprintf(err, errlen, "add operation does not apply: doc is missing path: \"%s\": missing value", ptr);
	return -1;
}

static int ptr_remove(json_t *doc, const char *ptr, const char *op, char *err, size_t errlen)
{
	char last[512];
	json_t *parent = ptr_parent(doc, ptr, last, sizeof(last));
	if (json_is_object(parent) && json_object_get(parent, last))
		return json_object_del(parent, last);
	if (json_is_array(parent)) {
		size_t idx;
		if (json_array_size(parent) && parse_index(last, json_array_size(parent) - 1, &idx, 0))
			return json_array_remove(parent, idx);
	}
	snprintf(err, errlen, "%s operation does not apply: doc is missing path: \"%s\": missing value", op, ptr);
	return -1;
}

json_t *patch_json(const json_t *doc_in, const json_t *ops, int *code, char *err, size_t errlen)
{
	json_t *doc = json_deep_copy(doc_in);
	size_t i;
	json_t *op;
	*code = 422;
	json_array_foreach(ops, i, op) {
		const char *name = jstr(op, "op"), *path = jstr(op, "path");
		json_t *value = json_object_get(op, "value");
		const char *from = jstr(op, "from");
		if (!name || !path) {
			*code = 400;
			snprintf(err, errlen, "invalid JSON patch operation %zu: missing op or path", i);
			goto fail;
		}
		if (!strcmp(name, "add")) {
			if (!value) {
				snprintf(err, errlen, "add operation: missing value");
				goto fail;
			}
			if (!path[0]) {
				json_decref(doc);
				doc = json_deep_copy(value);
				continue;
			}
			json_t *v = json_deep_copy(value);
			int rc = ptr_add(doc, path, v, err, errlen);
			json_decref(v);
			if (rc)
				goto fail;
		} else if (!strcmp(name, "remove")) {
			if (ptr_remove(doc, path, "remove", err, errlen))
				goto fail;
		} else if (!strcmp(name, "replace")) {
			if (!value) {
				snprintf(err, errlen, "replace operation: missing value");
				goto fail;
			}
			if (!path[0]) {
				json_decref(doc);
				doc = json_deep_copy(value);
				continue;
			}
			if (!ptr_get(doc, path)) {
				snprintf(err, errlen, "replace operation does not apply: doc is missing key: %s: missing value", path);
				goto fail;
			}
			char last[512];
			json_t *parent = ptr_parent(doc, path, last, sizeof(last));
			json_t *v = json_deep_copy(value);
			if (json_is_object(parent)) {
				json_object_set(parent, last, v);
			} else {
				size_t idx = 0;
				parse_index(last, json_array_size(parent) - 1, &idx, 0);
				json_array_set(parent, idx, v);
			}
			json_decref(v);
		} else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
			json_t *src = from ? ptr_get(doc, from) : NULL;
			if (!src) {
				snprintf(err, errlen, "%s operation does not apply: doc is missing from path: %s", name, from ? from : "");
				goto fail;
			}
			json_t *v = json_deep_copy(src);
			if (!strcmp(name, "move") && ptr_remove(doc, from, "move", err, errlen)) {
				json_decref(v);
				goto fail;
			}
			int rc = ptr_add(doc, path, v, err, errlen);
			json_decref(v);
			if (rc)
				goto fail;
		} else if (!strcmp(name, "test")) {
			json_t *cur = ptr_get(doc, path);
			if (!cur || !json_equal(cur, value)) {
				snprintf(err, errlen, "testing value %s failed: test failed", path);
				goto fail;
			}
		} else {
			*code = 400;
			snprintf(err, errlen, "Unexpected kind: %s", name);
			goto fail;
		}
	}
	return doc;
fail:
	json_decref(doc);
	return NULL;
}

/* ------------------------------------------------------------ merge patch */

json_t *patch_merge(const json_t *doc, const json_t *patch)
{
	if (!json_is_object(patch))
		return json_deep_copy(patch);
	json_t *out = json_is_object(doc) ? json_deep_copy(doc) : json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(out, k);
			continue;
		}
		json_t *merged = patch_merge(json_object_get(out, k), v);
		json_object_set_new(out, k, merged);
	}
	return out;
}

/* ------------------------------------------------------------ strategic */

/* Merge key of a list field, or NULL for an atomic (replaced) list. */
static const char *merge_key(const char *field, const json_t *sample)
{
	if (!strcmp(field, "containers") || !strcmp(field, "initContainers") ||
	    !strcmp(field, "ephemeralContainers") || !strcmp(field, "volumes") ||
	    !strcmp(field, "env") || !strcmp(field, "imagePullSecrets") ||
	    !strcmp(field, "volumeDevices") || !strcmp(field, "resourceClaims"))
		return !strcmp(field, "volumeDevices") ? "devicePath" : "name";
	if (!strcmp(field, "volumeMounts"))
		return "mountPath";
	if (!strcmp(field, "hostAliases"))
		return "ip";
	if (!strcmp(field, "ports")) {
		if (json_is_object(sample) && json_object_get(sample, "containerPort"))
			return "containerPort";
		return "port";
	}
	if (!strcmp(field, "conditions"))
		return "type";
	return NULL;
}

static json_t *smp_obj(const json_t *doc, const json_t *patch, char *err, size_t errlen);

static int item_matches(const json_t *item, const char *key, const json_t *val)
{
	return json_is_object(item) && json_equal(json_object_get(item, key), val);
}

static json_t *smp_list(const char *field, const json_t *live, const json_t *patch,
			char *err, size_t errlen)
{
	const char *key = merge_key(field, json_array_get(patch, 0));
	if (!key)
		key = merge_key(field, json_array_get(live, 0));
	/* $patch: replace inside the list replaces it */
	size_t i;
	json_t *p;
	json_array_foreach(patch, i, p) {
		if (json_is_object(p) && jstr(p, "$patch") && !strcmp(jstr(p, "$patch"), "replace")) {
			json_t *out = json_array();
			size_t j;
			json_t *q;
			json_array_foreach(patch, j, q)
				if (!(json_is_object(q) && jstr(q, "$patch")))
					json_array_append(out, q);
			return out;
		}
	}
	if (!key || !json_is_array(live))
		return json_deep_copy(patch);
	json_t *out = json_deep_copy(live);
	json_array_foreach(patch, i, p) {
		if (!json_is_object(p))
			continue;
		json_t *kv = json_object_get(p, key);
		const char *directive = jstr(p, "$patch");
		size_t idx = (size_t)-1, j;
		json_t *q;
		json_array_foreach(out, j, q)
			if (kv && item_matches(q, key, kv)) {
				idx = j;
				break;
			}
		if (directive && !strcmp(directive, "delete")) {
			if (idx != (size_t)-1)
				json_array_remove(out, idx);
			continue;
		}
		if (idx == (size_t)-1) {
			json_t *clean = smp_obj(NULL, p, err, errlen);
			if (!clean) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, clean);
		} else {
			json_t *m = smp_obj(json_array_get(out, idx), p, err, errlen);
			if (!m) {
				json_decref(out);
				return NULL;
			}
			json_array_set_new(out, idx, m);
		}
	}
	return out;
}

static json_t *smp_obj(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
	const char *directive = jstr(patch, "$patch");
	if (directive && !strcmp(directive, "replace")) {
		json_t *out = json_deep_copy(patch);
		json_object_del(out, "$patch");
		return out;
	}
	json_t *out = json_is_object(doc) ? json_deep_copy(doc) : json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)patch, k, v) {
		if (!strcmp(k, "$patch") || !strcmp(k, "$retainKeys") || !strncmp(k, "$setElementOrder/", 17))
			continue;
		if (!strncmp(k, "$deleteFromPrimitiveList/", 25)) {
			const char *field = k + 25;
			json_t *list = json_object_get(out, field);
			if (json_is_array(list) && json_is_array(v)) {
				json_t *nl = json_array();
				size_t i;
				json_t *x;
				json_array_foreach(list, i, x) {
					int drop = 0;
					size_t j;
					json_t *y;
					json_array_foreach(v, j, y)
						if (json_equal(x, y))
							drop = 1;
					if (!drop)
						json_array_append(nl, x);
				}
				json_object_set_new(out, field, nl);
			}
			continue;
		}
		if (k[0] == '$') {
			snprintf(err, errlen, "unknown patch directive %s", k);
			json_decref(out);
			return NULL;
		}
		if (json_is_null(v)) {
			json_object_del(out, k);
			continue;
		}
		if (json_is_object(v)) {
			const char *d = jstr(v, "$patch");
			if (d && !strcmp(d, "delete")) {
				json_object_del(out, k);
				continue;
			}
			json_t *m = smp_obj(json_object_get(out, k), v, err, errlen);
			if (!m) {
				json_decref(out);
				return NULL;
			}
			json_object_set_new(out, k, m);
		} else if (json_is_array(v)) {
			json_t *m = smp_list(k, json_object_get(out, k), v, err, errlen);
			if (!m) {
				json_decref(out);
				return NULL;
			}
			json_object_set_new(out, k, m);
		} else {
			json_object_set(out, k, v);
		}
	}
	return out;
}

json_t *patch_strategic(const json_t *doc, const json_t *patch, char *err, size_t errlen)
{
	return smp_obj(doc, patch, err, errlen);
}

/* ------------------------------------------------------------ field sets */

/* List-map keys server-side apply uses (associative lists). */
static const char *ssa_list_key(const char *field, const json_t *sample)
{
	if (!strcmp(field, "tolerations") || !strcmp(field, "args") || !strcmp(field, "command"))
		return NULL;
	if (!strcmp(field, "ownerReferences"))
		return "uid";
	return merge_key(field, sample);
}

static char *key_elem(const char *key, const json_t *val)
{
	json_t *o = json_pack("{s:O}", key, (json_t *)val);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	struct buf b = BUF_INIT;
	buf_printf(&b, "k:%s", s);
	free(s);
	return buf_steal(&b);
}

/* The field set of a value (FieldsV1 as a JSON object). */
static json_t *fieldset_of(const json_t *v, int top)
{
	json_t *fs = json_object();
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		if (top && (!strcmp(k, "apiVersion") || !strcmp(k, "kind")))
			continue;
		if (top && !strcmp(k, "metadata")) {
			json_t *mfs = json_object();
			const char *mk;
			json_t *mv;
			json_object_foreach(x, mk, mv) {
				if (!strcmp(mk, "labels") || !strcmp(mk, "annotations") ||
				    !strcmp(mk, "finalizers") || !strcmp(mk, "ownerReferences")) {
					char fk[300];
					snprintf(fk, sizeof(fk), "f:%s", mk);
					json_t *sub;
					if (json_is_object(mv)) {
						sub = fieldset_of(mv, 0);
					} else if (json_is_array(mv) && !strcmp(mk, "ownerReferences")) {
						json_t *wrap = json_pack("{s:O}", "ownerReferences", mv);
						json_t *tmp = fieldset_of(wrap, 0);
						sub = json_incref(json_object_get(tmp, "f:ownerReferences"));
						json_decref(tmp);
						json_decref(wrap);
					} else if (json_is_array(mv)) {
						sub = json_object();
						size_t i;
						json_t *e;
						json_array_foreach(mv, i, e) {
							char *s = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
							char vk[600];
							snprintf(vk, sizeof(vk), "v:%s", s);
							json_object_set_new(sub, vk, json_object());
							free(s);
						}
					} else {
						sub = json_object();
					}
					json_object_set_new(mfs, fk, sub);
				}
			}
			if (json_object_size(mfs))
				json_object_set_new(fs, "f:metadata", mfs);
			else
				json_decref(mfs);
			continue;
		}
		char fk[600];
		snprintf(fk, sizeof(fk), "f:%s", k);
		if (json_is_object(x)) {
			json_object_set_new(fs, fk, fieldset_of(x, 0));
		} else if (json_is_array(x)) {
			const char *lk = ssa_list_key(k, json_array_get(x, 0));
			json_t *sub = json_object();
			if (lk) {
				size_t i;
				json_t *e;
				json_array_foreach(x, i, e) {
					json_t *kv = json_object_get(e, lk);
					if (!kv)
						continue;
					char *ke = key_elem(lk, kv);
					json_t *efs = fieldset_of(e, 0);
					json_object_set_new(efs, ".", json_object());
					json_object_set_new(sub, ke, efs);
					free(ke);
				}
			}
			json_object_set_new(fs, fk, sub);
		} else {
			json_object_set_new(fs, fk, json_object());
		}
	}
	return fs;
}

/* Leaves of a field set: arrays of path elements. */
static void fs_leaves(const json_t *fs, json_t *prefix, json_t *out)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)fs, k, v) {
		if (!strcmp(k, "."))
			continue;
		json_t *p = json_copy(prefix);
		json_array_append_new(p, json_string(k));
		size_t n = json_object_size(v);
		int only_dot = n == 1 && json_object_get(v, ".");
		if (n == 0 || only_dot)
			json_array_append(out, p);
		else
			fs_leaves(v, p, out);
		json_decref(p);
	}
}

static json_t *fs_lookup(const json_t *fs, const json_t *path)
{
	size_t i;
	json_t *e;
	const json_t *cur = fs;
	json_array_foreach(path, i, e) {
		cur = json_object_get(cur, json_string_value(e));
		if (!cur)
			return NULL;
	}
	return (json_t *)cur;
}

static void fs_remove(json_t *fs, const json_t *path)
{
	size_t n = json_array_size(path);
	if (!n)
		return;
	json_t *stack[64];
	json_t *cur = fs;
	for (size_t i = 0; i + 1 < n && i < 64; i++) {
		stack[i] = cur;
		cur = json_object_get(cur, json_string_value(json_array_get(path, i)));
		if (!cur)
			return;
	}
	json_object_del(cur, json_string_value(json_array_get(path, n - 1)));
	/* prune empty parents */
	for (size_t i = n - 1; i > 0; i--) {
		json_t *parent = stack[i - 1];
		const char *k = json_string_value(json_array_get(path, i - 1));
		json_t *child = json_object_get(parent, k);
		if (json_object_size(child) == 0 ||
		    (json_object_size(child) == 1 && json_object_get(child, ".")))
			json_object_del(parent, k);
		else
			break;
	}
}

/* Paths of associative-list items ("k:…" entries that hold a "."). */
static void fs_items(const json_t *fs, json_t *prefix, json_t *out)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)fs, k, v) {
		if (!strcmp(k, "."))
			continue;
		json_t *p = json_copy(prefix);
		json_array_append_new(p, json_string(k));
		if (!strncmp(k, "k:", 2) && json_object_get(v, "."))
			json_array_append(out, p);
		fs_items(v, p, out);
		json_decref(p);
	}
}

/* The value at a field path in an object (NULL if absent). */
static json_t *value_at(const json_t *obj, const json_t *path)
{
	size_t i;
	json_t *e;
	const json_t *cur = obj;
	json_array_foreach(path, i, e) {
		const char *pe = json_string_value(e);
		if (!cur)
			return NULL;
		if (!strncmp(pe, "f:", 2)) {
			cur = json_object_get(cur, pe + 2);
		} else if (!strncmp(pe, "k:", 2)) {
			json_t *kv = json_loads(pe + 2, 0, NULL);
			const char *kk = NULL;
			json_t *kval = NULL;
			json_object_foreach(kv, kk, kval)
				break;
			const json_t *found = NULL;
			size_t j;
			json_t *item;
			json_array_foreach((json_t *)cur, j, item)
				if (kk && json_equal(json_object_get(item, kk), kval)) {
					found = item;
					break;
				}
			json_decref(kv);
			cur = found;
		} else if (!strncmp(pe, "v:", 2)) {
			json_t *val = json_loads(pe + 2, JSON_DECODE_ANY, NULL);
			const json_t *found = NULL;
			size_t j;
			json_t *item;
			json_array_foreach((json_t *)cur, j, item)
				if (json_equal(item, val))
					found = item;
			json_decref(val);
			cur = found;
		} else {
			return NULL;
		}
	}
	return (json_t *)cur;
}

/* ".spec.template.spec.containers[name=\"x\"].image" */
static void path_string(const json_t *path, struct buf *b)
{
	size_t i;
	json_t *e;
	json_array_foreach(path, i, e) {
		const char *pe = json_string_value(e);
		if (!strncmp(pe, "f:", 2)) {
			buf_printf(b, ".%s", pe + 2);
		} else if (!strncmp(pe, "k:", 2)) {
			json_t *kv = json_loads(pe + 2, 0, NULL);
			const char *kk;
			json_t *kval;
			buf_putc(b, '[');
			int first = 1;
			json_object_foreach(kv, kk, kval) {
				char *s = json_dumps(kval, JSON_ENCODE_ANY | JSON_COMPACT);
				buf_printf(b, "%s%s=%s", first ? "" : ",", kk, s);
				free(s);
				first = 0;
			}
			buf_putc(b, ']');
			json_decref(kv);
		} else if (!strncmp(pe, "v:", 2)) {
			buf_printf(b, "[=%s]", pe + 2);
		}
	}
}

/* Remove the value at path from obj (in place). */
static void remove_at(json_t *obj, const json_t *path)
{
	size_t n = json_array_size(path);
	if (!n)
		return;
	json_t *prefix = json_array();
	for (size_t i = 0; i + 1 < n; i++)
		json_array_append(prefix, json_array_get(path, i));
	json_t *parent = n > 1 ? value_at(obj, prefix) : obj;
	json_decref(prefix);
	const char *last = json_string_value(json_array_get(path, n - 1));
	if (!parent)
		return;
	if (!strncmp(last, "f:", 2) && json_is_object(parent)) {
		json_object_del(parent, last + 2);
	} else if (json_is_array(parent)) {
		json_t *wrap = json_pack("[s]", last);
		json_t *item = value_at(parent, wrap);
		json_decref(wrap);
		for (size_t j = 0; j < json_array_size(parent); j++)
			if (json_array_get(parent, j) == item) {
				json_array_remove(parent, j);
				break;
			}
	}
}

/* Apply-merge: maps merge, associative lists merge by key, rest replaces. */
static json_t *apply_merge(const json_t *live, const json_t *cfg, const char *field)
{
	if (json_is_object(cfg)) {
		json_t *out = json_is_object(live) ? json_deep_copy(live) : json_object();
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)cfg, k, v) {
			json_t *m = apply_merge(json_object_get(out, k), v, k);
			json_object_set_new(out, k, m);
		}
		return out;
	}
	if (json_is_array(cfg) && field) {
		const char *lk = ssa_list_key(field, json_array_get(cfg, 0));
		if (lk && json_is_array(live)) {
			json_t *out = json_deep_copy(live);
			size_t i;
			json_t *e;
			json_array_foreach(cfg, i, e) {
				json_t *kv = json_object_get(e, lk);
				size_t j;
				json_t *q;
				int found = 0;
				json_array_foreach(out, j, q)
					if (kv && item_matches(q, lk, kv)) {
						json_array_set_new(out, j, apply_merge(q, e, NULL));
						found = 1;
						break;
					}
				if (!found)
					json_array_append_new(out, json_deep_copy(e));
			}
			return out;
		}
	}
	return json_deep_copy(cfg);
}

static void print_manager(const json_t *entry, struct buf *b)
{
	buf_printf(b, "\"%s\"", jstr(entry, "manager") ? jstr(entry, "manager") : "");
	if (jstr(entry, "subresource"))
		buf_printf(b, " with subresource \"%s\"", jstr(entry, "subresource"));
	if (jstr(entry, "operation") && !strcmp(jstr(entry, "operation"), "Update")) {
		if (jstr(entry, "time"))
			buf_printf(b, " using %s at %s", jstr(entry, "apiVersion") ? jstr(entry, "apiVersion") : "",
				   jstr(entry, "time"));
		else
			buf_printf(b, " using %s", jstr(entry, "apiVersion") ? jstr(entry, "apiVersion") : "");
	}
}

json_t *ssa_apply(const json_t *live, const json_t *applied, const char *manager, int force,
		  const char *apiversion, const char *now, json_t **conflicts, char *msg,
		  size_t msglen)
{
	json_t *mine = fieldset_of(applied, 1);
	json_t *my_leaves = json_array();
	json_t *empty = json_array();
	fs_leaves(mine, empty, my_leaves);
	json_t *mf = live ? json_deep_copy(jpath(live, "metadata.managedFields")) : NULL;
	if (!json_is_array(mf)) {
		json_decref(mf);
		mf = json_array();
	}
	/* conflicts with other managers */
	json_t *found = json_array();
	size_t i;
	json_t *entry;
	json_array_foreach(mf, i, entry) {
		const char *m = jstr(entry, "manager");
		if (m && !strcmp(m, manager) && jstr(entry, "operation") &&
		    !strcmp(jstr(entry, "operation"), "Apply"))
			continue;
		if (jstr(entry, "subresource"))
			continue;
		json_t *theirs = json_object_get(entry, "fieldsV1");
		size_t j;
		json_t *leaf;
		json_array_foreach(my_leaves, j, leaf) {
			if (!fs_lookup(theirs, leaf))
				continue;
			json_t *lv = value_at(live, leaf), *av = value_at(applied, leaf);
			if (lv && av && json_equal(lv, av))
				continue;
			if (!lv)
				continue;
			json_array_append_new(found, json_pack("{s:I, s:O}", "entry", (json_int_t)i, "path", leaf));
		}
	}
	if (json_array_size(found) && !force) {
		json_t *causes = json_array();
		struct buf b = BUF_INIT;
		size_t n = json_array_size(found);
		if (n == 1) {
			json_t *f = json_array_get(found, 0);
			buf_puts(&b, "Apply failed with 1 conflict: conflict with ");
			print_manager(json_array_get(mf, (size_t)json_integer_value(json_object_get(f, "entry"))), &b);
			buf_puts(&b, ": ");
			path_string(json_object_get(f, "path"), &b);
		} else {
			buf_printf(&b, "Apply failed with %zu conflicts: ", n);
			/* group by manager entry, in managedFields order */
			int first_group = 1;
			for (size_t e = 0; e < json_array_size(mf); e++) {
				size_t cnt = 0;
				json_array_foreach(found, i, entry)
					if ((size_t)json_integer_value(json_object_get(entry, "entry")) == e)
						cnt++;
				if (!cnt)
					continue;
				if (!first_group)
					buf_putc(&b, '\n');
				first_group = 0;
				buf_puts(&b, cnt == 1 ? "conflict with " : "conflicts with ");
				print_manager(json_array_get(mf, e), &b);
				buf_putc(&b, ':');
				json_array_foreach(found, i, entry) {
					if ((size_t)json_integer_value(json_object_get(entry, "entry")) != e)
						continue;
					buf_puts(&b, cnt == 1 ? " " : "\n- ");
					path_string(json_object_get(entry, "path"), &b);
				}
			}
		}
		json_array_foreach(found, i, entry) {
			struct buf mb = BUF_INIT, pb = BUF_INIT;
			buf_puts(&mb, "conflict with ");
			print_manager(json_array_get(mf, (size_t)json_integer_value(json_object_get(entry, "entry"))), &mb);
			path_string(json_object_get(entry, "path"), &pb);
			json_array_append_new(causes, json_pack("{s:s, s:s, s:s}", "reason", "FieldManagerConflict",
								"message", buf_cstr(&mb), "field", buf_cstr(&pb)));
			buf_free(&mb);
			buf_free(&pb);
		}
		snprintf(msg, msglen, "%s", buf_cstr(&b));
		buf_free(&b);
		*conflicts = causes;
		json_decref(found);
		json_decref(mine);
		json_decref(my_leaves);
		json_decref(empty);
		json_decref(mf);
		return NULL;
	}
	/* force: take the conflicting fields away from their owners */
	json_array_foreach(found, i, entry) {
		json_t *e = json_array_get(mf, (size_t)json_integer_value(json_object_get(entry, "entry")));
		fs_remove(json_object_get(e, "fieldsV1"), json_object_get(entry, "path"));
	}
	json_decref(found);
	/* the result: live minus fields we no longer apply, plus the config */
	json_t *result = live ? json_deep_copy(live) : json_object();
	json_t *prev = NULL;
	json_array_foreach(mf, i, entry)
		if (jstr(entry, "manager") && !strcmp(jstr(entry, "manager"), manager) &&
		    jstr(entry, "operation") && !strcmp(jstr(entry, "operation"), "Apply") &&
		    !jstr(entry, "subresource"))
			prev = json_object_get(entry, "fieldsV1");
	if (prev && live) {
		/* list items we applied before and no longer apply go as a whole */
		json_t *prev_items = json_array();
		fs_items(prev, empty, prev_items);
		size_t q;
		json_t *item;
		json_array_foreach(prev_items, q, item) {
			if (fs_lookup(mine, item))
				continue;
			int other = 0;
			json_array_foreach(mf, i, entry) {
				if (json_object_get(entry, "fieldsV1") == prev)
					continue;
				if (fs_lookup(json_object_get(entry, "fieldsV1"), item))
					other = 1;
			}
			if (!other)
				remove_at(result, item);
		}
		json_decref(prev_items);
		json_t *prev_leaves = json_array();
		fs_leaves(prev, empty, prev_leaves);
		size_t j;
		json_t *leaf;
		json_array_foreach(prev_leaves, j, leaf) {
			if (fs_lookup(mine, leaf))
				continue;
			int other = 0;
			json_array_foreach(mf, i, entry) {
				if (json_object_get(entry, "fieldsV1") == prev)
					continue;
				if (fs_lookup(json_object_get(entry, "fieldsV1"), leaf))
					other = 1;
			}
			if (!other)
				remove_at(result, leaf);
		}
		json_decref(prev_leaves);
	}
	json_t *merged = apply_merge(result, applied, NULL);
	json_decref(result);
	result = merged;
	/* new managedFields: drop our old Apply entry, add the new one */
	json_t *nmf = json_array();
	json_array_foreach(mf, i, entry) {
		if (json_object_get(entry, "fieldsV1") == prev && prev)
			continue;
		if (json_object_size(json_object_get(entry, "fieldsV1")) == 0)
			continue;
		json_array_append(nmf, entry);
	}
	json_array_append_new(nmf, json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "manager", manager,
		"operation", "Apply", "apiVersion", apiversion, "time", now, "fieldsType", "FieldsV1",
		"fieldsV1", mine));
	json_t *md = json_object_get(result, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(result, "metadata", md);
	}
	json_object_set_new(md, "managedFields", nmf);
	json_decref(mine);
	json_decref(my_leaves);
	json_decref(empty);
	json_decref(mf);
	return result;
}

/* Leaves whose values differ between two objects' field sets. */
void ssa_update_managed(const json_t *old, json_t *newobj, const char *manager,
			const char *operation, const char *apiversion, const char *subresource,
			const char *now)
{
	json_t *md = json_object_get(newobj, "metadata");
	json_t *nfs = fieldset_of(newobj, 1);
	json_t *empty = json_array();
	json_t *leaves = json_array();
	fs_leaves(nfs, empty, leaves);
	json_t *changed = json_object();
	size_t i;
	json_t *leaf;
	json_array_foreach(leaves, i, leaf) {
		if (subresource && strcmp(json_string_value(json_array_get(leaf, 0)), "f:status"))
			continue;
		if (!subresource && !strcmp(json_string_value(json_array_get(leaf, 0)), "f:status"))
			continue;
		json_t *ov = old ? value_at(old, leaf) : NULL;
		json_t *nv = value_at(newobj, leaf);
		if (ov && json_equal(ov, nv))
			continue;
		/* add the leaf path to changed */
		json_t *cur = changed;
		size_t j;
		json_t *e;
		json_array_foreach(leaf, j, e) {
			json_t *next = json_object_get(cur, json_string_value(e));
			if (!next) {
				next = json_object();
				json_object_set_new(cur, json_string_value(e), next);
			}
			cur = next;
		}
	}
	json_t *mf = json_deep_copy(json_object_get(md, "managedFields"));
	if (!json_is_array(mf)) {
		json_decref(mf);
		mf = json_array();
	}
	if (json_object_size(changed)) {
		json_t *cl = json_array();
		fs_leaves(changed, empty, cl);
		json_t *mine = NULL;
		json_t *entry;
		json_array_foreach(mf, i, entry) {
			const char *m = jstr(entry, "manager"), *op = jstr(entry, "operation");
			const char *sr = jstr(entry, "subresource");
			int same = m && !strcmp(m, manager) && op && !strcmp(op, operation) &&
				   ((!sr && !subresource) || (sr && subresource && !strcmp(sr, subresource)));
			if (same) {
				mine = entry;
				continue;
			}
			json_t *ofs = json_object_get(entry, "fieldsV1");
			size_t j;
			json_t *l;
			json_array_foreach(cl, j, l)
				if (fs_lookup(ofs, l))
					fs_remove(ofs, l);
		}
		if (!mine) {
			mine = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "manager", manager, "operation",
					 operation, "apiVersion", apiversion, "time", now, "fieldsType", "FieldsV1",
					 "fieldsV1");
			if (subresource)
				json_object_set_new(mine, "subresource", json_string(subresource));
			json_array_append_new(mf, mine);
		}
		json_object_set_new(mine, "time", json_string(now));
		json_t *mfs = json_object_get(mine, "fieldsV1");
		size_t j;
		json_t *l;
		json_array_foreach(cl, j, l) {
			json_t *cur = mfs;
			size_t k;
			json_t *e;
			json_array_foreach(l, k, e) {
				json_t *next = json_object_get(cur, json_string_value(e));
				if (!next) {
					next = json_object();
					json_object_set_new(cur, json_string_value(e), next);
				}
				cur = next;
			}
		}
		json_decref(cl);
	}
	/* drop entries left with no fields */
	for (size_t j = 0; j < json_array_size(mf); j++)
		if (json_object_size(json_object_get(json_array_get(mf, j), "fieldsV1")) == 0)
			json_array_remove(mf, j--);
	if (json_array_size(mf))
		json_object_set_new(md, "managedFields", mf);
	else {
		json_decref(mf);
		json_object_del(md, "managedFields");
	}
	json_decref(changed);
	json_decref(leaves);
	json_decref(empty);
	json_decref(nfs);
}
