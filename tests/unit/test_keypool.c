/*
 * test_keypool: the chart engine's RSA key pool (server/chart/keypool.h):
 * keys are valid and never handed out twice, the pool refills in the
 * background, an empty or stopped pool still gives keys (inline), stop is
 * clean (ASan checks the leaks), and the certificate functions use it.
 */
#define _POSIX_C_SOURCE 200809L
#include "server/chart/chart.h"
#include "server/chart/keypool.h"
#include "testlib.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Moduli of every key seen, to prove no key comes twice. */
static BIGNUM *seen[64];
static int nseen;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1 when k is a good RSA key of `bits` not seen before (then remembered). */
static int fresh_valid(EVP_PKEY *k, int bits)
{
	if (!k || EVP_PKEY_get_bits(k) != bits || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)
		return 0;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	int ok = c && EVP_PKEY_pairwise_check(c) == 1;
	EVP_PKEY_CTX_free(c);
	BIGNUM *n = NULL;
	if (!ok || !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n))
		return 0;
	for (int i = 0; i < nseen; i++)
		if (!BN_cmp(seen[i], n)) {
			BN_free(n);
			return 0;
		}
	if (nseen < 64)
		seen[nseen++] = n;
	else
		BN_free(n);
	return 1;
}

static int always_stop(void *ctx)
{
	(void)ctx;
	return 1;
}

/* Whether the machine has idle CPU for an idle-priority thread. */
static int machine_busy(void)
{
	double l = 0;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = 0;
		fclose(f);
	}
	return l > (double)sysconf(_SC_NPROCESSORS_ONLN);
}

static void t_inline(void)
{
	struct keypool_stats a, b;
	keypool_get_stats(&a);
	for (int i = 0; i < 2; i++) {
		EVP_PKEY *k = keypool_take_rsa(2048, NULL, NULL);
		check(fresh_valid(k, 2048));
		EVP_PKEY_free(k);
	}
	keypool_get_stats(&b);
	check(b.inline_made == a.inline_made + 2);
	check(b.taken == a.taken);
	check(b.ready2048 == 0);
	/* a stop rule that says stop: no key, no fallback */
	check(keypool_take_rsa(2048, always_stop, NULL) == NULL);
	check(keypool_take_rsa(4096, always_stop, NULL) == NULL);
}

/* Start a pool of three and wait for it to fill: 1 when it did. */
static int pool_filled(void)
{
	if (keypool_start(3, 0) != 0)
		return 0;
	struct keypool_stats st;
	double t0 = now_s();
	do {
		usleep(20000);
		keypool_get_stats(&st);
	} while (st.ready2048 < 3 && now_s() - t0 < 120);
	return st.ready2048 == 3;
}

static void t_pool(void)
{
	struct keypool_stats st;
	keypool_get_stats(&st);
	double t0;
	check(st.generated >= 3);
	long taken0 = st.taken;
	/* three keys from the pool, none seen before */
	for (int i = 0; i < 3; i++) {
		EVP_PKEY *k = keypool_take_rsa(2048, NULL, NULL);
		check(fresh_valid(k, 2048));
		EVP_PKEY_free(k);
	}
	keypool_get_stats(&st);
	check(st.taken == taken0 + 3);
	/* the pool is empty now (or refilling): a key still comes */
	EVP_PKEY *k = keypool_take_rsa(2048, NULL, NULL);
	check(fresh_valid(k, 2048));
	EVP_PKEY_free(k);
	/* and it refills to its bound, never beyond */
	t0 = now_s();
	do {
		usleep(20000);
		keypool_get_stats(&st);
	} while (st.ready2048 < 3 && now_s() - t0 < 120);
	check(st.ready2048 == 3 || machine_busy());
	usleep(200000);
	keypool_get_stats(&st);
	check(st.ready2048 <= 3);
	keypool_stop();
	keypool_get_stats(&st);
	check(st.ready2048 == 0);
}

/* Stopping while the thread generates (a 4096-bit key takes a while):
 * stop returns soon, frees everything; the pool can start again. */
static void t_stop(void)
{
	check(keypool_start(0, 2) == 0);
	usleep(50000);
	double t0 = now_s();
	keypool_stop();
	check(now_s() - t0 < 10);
	check(keypool_start(1, 0) == 0);
	keypool_stop();
	keypool_stop();   /* twice is harmless */
	struct keypool_stats st;
	keypool_get_stats(&st);
	check(st.ready2048 == 0 && st.ready4096 == 0);
}

/* The scratch key: one per process, the same every time, never a pool key. */
static void t_scratch(void)
{
	EVP_PKEY *a = keypool_scratch_rsa(2048), *b = keypool_scratch_rsa(2048);
	check(fresh_valid(a, 2048));
	check(a && b && EVP_PKEY_eq(a, b) == 1);
	EVP_PKEY *k = keypool_take_rsa(2048, NULL, NULL);
	check(fresh_valid(k, 2048));
	EVP_PKEY_free(k);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	keypool_stop();   /* frees the scratch key */
}

/* Certificate functions: fresh keys per call; a discarded-output render
 * signs with the scratch key. */
static void t_render(void)
{
	const char *names[] = { "Chart.yaml", "values.yaml" };
	const char *texts[] = { "apiVersion: v2\nname: k\nversion: 1.0.0\n", "{}\n" };
	char err[512] = "";
	struct chart *c = chart_load_files(names, texts, 2, err, sizeof err);
	check(c != NULL);
	if (!c)
		return;
	const char *tpl = "{{ $a := genCA \"a\" 3 }}{{ $b := genSelfSignedCert \"b\" nil nil 3 }}"
			  "{{ $c := genSignedCert \"c\" nil nil 3 $a }}"
			  "{{ $a.Key }}|{{ $b.Key }}|{{ $c.Key }}";
	for (int discard = 0; discard < 2; discard++) {
		struct chart_render_opts ro = { .release_name = "r", .namespace_ = "n", .output_discarded = discard };
		char *out = NULL;
		check(chart_render_template(c, tpl, NULL, &ro, &out, err, sizeof err) == 0);
		if (!out)
			continue;
		char *p1 = strchr(out, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
		check(p1 && p2 && strstr(out, "BEGIN RSA PRIVATE KEY"));
		if (p1 && p2) {
			size_t la = (size_t)(p1 - out), lb = (size_t)(p2 - p1 - 1);
			int same_ab = la == lb && !memcmp(out, p1 + 1, la);
			int same_bc = !strcmp(p2 + 1, "") ? 0 : (strlen(p2 + 1) == lb && !memcmp(p1 + 1, p2 + 1, lb));
			if (discard)
				check(same_ab && same_bc);
			else
				check(!same_ab && !same_bc);
		}
		free(out);
	}
	chart_free(c);
	keypool_stop();
}

int main(void)
{
	test_run("keypool_inline_keys_valid_distinct", t_inline);
	if (pool_filled() || !machine_busy()) {
		test_run("keypool_pool_fills_and_refills", t_pool);
	} else {
		keypool_stop();
		test_skip("keypool_pool_fills_and_refills",
			  "no idle CPU for the idle-priority refill thread (load above the core count)");
	}
	test_run("keypool_stop_while_generating", t_stop);
	test_run("keypool_scratch_key", t_scratch);
	test_run("keypool_certificate_functions", t_render);
	for (int i = 0; i < nseen; i++)
		BN_free(seen[i]);
	return test_summary();
}
