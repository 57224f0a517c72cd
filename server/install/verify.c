/*
 * verify.c: format pods the way `kubectl get pod` does.
 *
 * Only the columns the guide shows are produced; the status rules are the
 * subset of kubectl's printPod that matters for DaemonSet and Deployment
 * pods (no init-container progress, no readiness gates).
 */
#define _POSIX_C_SOURCE 200809L
#include "server/install/verify.h"
#include "server/common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void verify_human_duration(long long s, char *buf, size_t len)
{
	if (s < 0) {
		snprintf(buf, len, "<invalid>");
		return;
	}
	long long m = s / 60, h = s / 3600, d = h / 24;
	if (s < 120)
		snprintf(buf, len, "%llds", s);
	else if (m < 10)
		s % 60 ? snprintf(buf, len, "%lldm%llds", m, s % 60) : snprintf(buf, len, "%lldm", m);
	else if (m < 180)
		snprintf(buf, len, "%lldm", m);
	else if (h < 8)
		m % 60 ? snprintf(buf, len, "%lldh%lldm", h, m % 60) : snprintf(buf, len, "%lldh", h);
	else if (h < 48)
		snprintf(buf, len, "%lldh", h);
	else if (h < 24 * 8)
		h % 24 ? snprintf(buf, len, "%lldd%lldh", d, h % 24) : snprintf(buf, len, "%lldd", d);
	else if (h < 24 * 365 * 2)
		snprintf(buf, len, "%lldd", d);
	else if (h < 24 * 365 * 8)
		d % 365 ? snprintf(buf, len, "%lldy%lldd", d / 365, d % 365)
			: snprintf(buf, len, "%lldy", d / 365);
	else
		snprintf(buf, len, "%lldy", d / 365);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

time_t verify_parse_time(const char *s)
{
	int Y, M, D, h, m, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6)
		return (time_t)-1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return (time_t)-1;
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	long long t = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400LL + h * 3600 + m * 60 + sec;
	if (*p == 'Z' || *p == 'z')
		return (time_t)t;
	int oh, om;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
		long long off = oh * 3600 + om * 60;
		return (time_t)(*p == '+' ? t - off : t + off);
	}
	return (time_t)-1;
}

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *pod_status(const json_t *pod)
{
	const json_t *meta = json_object_get(pod, "metadata");
	const json_t *st = json_object_get(pod, "status");
	if (json_object_get(meta, "deletionTimestamp"))
		return xstrdup("Terminating");
	size_t i;
	const json_t *cs;
	json_array_foreach(json_object_get(st, "containerStatuses"), i, cs) {
		const json_t *state = json_object_get(cs, "state");
		const char *r = sget(json_object_get(state, "waiting"), "reason");
		if (!r)
			r = sget(json_object_get(state, "terminated"), "reason");
		if (r && *r)
			return xstrdup(r);
	}
	const char *reason = sget(st, "reason");
	if (reason && *reason)
		return xstrdup(reason);
	const char *phase = sget(st, "phase");
	return xstrdup(phase ? phase : "Unknown");
}

const char *const verify_pod_selectors[] = {
	"k8s-app in (cilium,cilium-envoy,hubble-relay,hubble-ui,clustermesh-apiserver)",
	"io.cilium/app=operator",
	NULL,
};

size_t verify_collect_pods(json_t *out, const json_t *pod_list)
{
	const json_t *items = json_is_array(pod_list) ? pod_list : json_object_get(pod_list, "items");
	size_t i, k, terminating = 0;
	const json_t *pod, *have;
	json_array_foreach(items, i, pod) {
		const json_t *meta = json_object_get(pod, "metadata");
		if (json_object_get(meta, "deletionTimestamp")) {
			terminating++;
			continue;
		}
		const char *name = sget(meta, "name");
		int dup = 0;
		json_array_foreach(out, k, have) {
			const char *hn = sget(json_object_get(have, "metadata"), "name");
			if (name && hn && !strcmp(name, hn))
				dup = 1;
		}
		if (!dup)
			json_array_append(out, (json_t *)pod);
	}
	return terminating;
}

long verify_running_count(const json_t *rows)
{
	long n = 0;
	size_t i;
	const json_t *r;
	json_array_foreach(rows, i, r) {
		const char *st = sget(r, "status");
		if (st && !strcmp(st, "Running"))
			n++;
	}
	return n;
}

static int row_cmp(const void *a, const void *b)
{
	const json_t *ra = *(const json_t *const *)a, *rb = *(const json_t *const *)b;
	return strcmp(sget(ra, "name"), sget(rb, "name"));
}

json_t *verify_pod_rows(const json_t *pod_list, time_t now)
{
	const json_t *items = json_is_array(pod_list) ? pod_list : json_object_get(pod_list, "items");
	size_t n = json_array_size(items);
	json_t **rows = xcalloc(n ? n : 1, sizeof(*rows));
	size_t i;
	const json_t *pod;
	json_array_foreach(items, i, pod) {
		const json_t *meta = json_object_get(pod, "metadata");
		const json_t *spec = json_object_get(pod, "spec");
		const json_t *st = json_object_get(pod, "status");
		size_t total = json_array_size(json_object_get(spec, "containers"));
		size_t ready = 0;
		long long restarts = 0;
		size_t k;
		const json_t *cs;
		json_array_foreach(json_object_get(st, "containerStatuses"), k, cs) {
			if (json_is_true(json_object_get(cs, "ready")))
				ready++;
			restarts += json_integer_value(json_object_get(cs, "restartCount"));
		}
		if (!total)
			total = json_array_size(json_object_get(st, "containerStatuses"));
		char ready_s[32], age[32];
		snprintf(ready_s, sizeof ready_s, "%zu/%zu", ready, total);
		time_t created = verify_parse_time(sget(meta, "creationTimestamp"));
		if (created == (time_t)-1)
			snprintf(age, sizeof age, "<unknown>");
		else
			verify_human_duration((long long)(now - created), age, sizeof age);
		char *status = pod_status(pod);
		const char *name = sget(meta, "name");
		const char *node = sget(spec, "nodeName");
		rows[i] = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}",
				    "name", name ? name : "", "ready", ready_s, "status", status,
				    "restarts", (json_int_t)restarts, "age", age,
				    "node", node ? node : "");
		free(status);
	}
	qsort(rows, n, sizeof(*rows), row_cmp);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(out, rows[i]);
	free(rows);
	return out;
}

char *verify_table_text(const json_t *rows)
{
	static const char *const cols[] = { "NAME", "READY", "STATUS", "RESTARTS", "AGE" };
	static const char *const keys[] = { "name", "ready", "status", "restarts", "age" };
	size_t width[5];
	for (int c = 0; c < 5; c++)
		width[c] = strlen(cols[c]);
	size_t i;
	const json_t *r;
	char num[32];
	json_array_foreach(rows, i, r) {
		for (int c = 0; c < 5; c++) {
			const json_t *v = json_object_get(r, keys[c]);
			size_t l;
			if (json_is_integer(v))
				l = (size_t)snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
			else
				l = strlen(json_string_value(v) ? json_string_value(v) : "");
			if (l > width[c])
				width[c] = l;
		}
	}
	struct buf b = BUF_INIT;
	for (int c = 0; c < 5; c++) {
		if (c < 4)
			buf_printf(&b, "%-*s   ", (int)width[c], cols[c]);
		else
			buf_printf(&b, "%s\n", cols[c]);
	}
	json_array_foreach(rows, i, r) {
		for (int c = 0; c < 5; c++) {
			const json_t *v = json_object_get(r, keys[c]);
			const char *s;
			if (json_is_integer(v)) {
				snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
				s = num;
			} else {
				s = json_string_value(v) ? json_string_value(v) : "";
			}
			if (c < 4)
				buf_printf(&b, "%-*s   ", (int)width[c], s);
			else
				buf_printf(&b, "%s\n", s);
		}
	}
	return buf_steal(&b);
}

long verify_ready_count(const json_t *rows, long *total)
{
	long ok = 0;
	size_t i;
	const json_t *r;
	json_array_foreach(rows, i, r) {
		const char *ready = sget(r, "ready");
		const char *st = sget(r, "status");
		unsigned a = 0, b = 0;
		if (ready && sscanf(ready, "%u/%u", &a, &b) == 2 && a == b && b > 0 &&
		    st && !strcmp(st, "Running"))
			ok++;
	}
	if (total)
		*total = (long)json_array_size(rows);
	return ok;
}
