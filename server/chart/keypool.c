/*
 * keypool.c: RSA keys generated ahead of time by a low-priority thread
 * (see the header).
 */
#define _GNU_SOURCE
#include "server/chart/keypool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

/* ---------------------------------------------------------------- generation */

/* A stop rule for prime generation: BN_GENCB calls it between steps; the
 * helper thread of a two-thread generation only sees `abandon`. */
struct genstop {
	int (*stop)(void *ctx);
	void *ctx;
	atomic_int *abandon;
};

static int gencb(int a, int b, BN_GENCB *cb)
{
	(void)a, (void)b;
	struct genstop *g = BN_GENCB_get_arg(cb);
	if (g->abandon && atomic_load(g->abandon))
		return 0;
	if (g->stop && g->stop(g->ctx)) {
		if (g->abandon)
			atomic_store(g->abandon, 1);
		return 0;
	}
	return 1;
}

static int gen_prime(BIGNUM *p, const BIGNUM *e, struct genstop *g)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p1 = BN_new(), *gcd = BN_new();
	BN_GENCB *cb = BN_GENCB_new();
	int ok = 0;
	if (cb)
		BN_GENCB_set(cb, gencb, g);
	for (int tries = 0; ctx && p1 && gcd && cb && tries < 100 && !ok; tries++) {
		if (!BN_generate_prime_ex2(p, 1024, 0, NULL, NULL, cb, ctx))
			break;
		ok = BN_sub(p1, p, BN_value_one()) && BN_gcd(gcd, p1, e, ctx) && BN_is_one(gcd);
	}
	BN_GENCB_free(cb);
	BN_free(p1);
	BN_free(gcd);
	BN_CTX_free(ctx);
	return ok;
}

struct primejob { BIGNUM *p; const BIGNUM *e; struct genstop g; int ok; };

static void *prime_thread(void *arg)
{
	struct primejob *j = arg;
	j->ok = gen_prime(j->p, j->e, &j->g);
	return NULL;
}

/*
 * RSA-2048. OpenSSL 3's default RSA keygen for e=65537 uses the
 * SP 800-56B method (auxiliary primes), several times slower than Go's
 * crypto/rsa that Helm uses. Like Go (and OpenSSL's own multi-prime path),
 * take two fresh 1024-bit primes from OpenSSL's prime generator (top two
 * bits set, so n has exactly 2048 bits), generated in parallel when
 * `threaded` (a render waits for it; the pool's thread does not bother),
 * and derive the key; OpenSSL imports and checks it. NULL when stop said so.
 */
static EVP_PKEY *rsa_key_2048(int threaded, int (*stop)(void *), void *stop_ctx)
{
	EVP_PKEY *pkey = NULL;
	atomic_int abandon = 0;
	struct genstop gs = { stop, stop_ctx, &abandon };
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *e = BN_new(), *p = BN_secure_new(), *q = BN_secure_new(), *n = BN_new(), *d = BN_secure_new();
	BIGNUM *p1 = BN_secure_new(), *q1 = BN_secure_new(), *phi = BN_secure_new(), *dmp1 = BN_secure_new();
	BIGNUM *dmq1 = BN_secure_new(), *iqmp = BN_secure_new(), *diff = BN_new();
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	if (!ctx || !e || !p || !q || !n || !d || !p1 || !q1 || !phi || !dmp1 || !dmq1 || !iqmp || !diff)
		goto out;
	BN_set_word(e, 65537);
	for (int attempt = 0; attempt < 10; attempt++) {
		/* the helper only watches `abandon`: stop may not be thread-safe */
		struct primejob qj = { q, e, { NULL, NULL, &abandon }, 0 };
		pthread_t th;
		int helper = threaded && pthread_create(&th, NULL, prime_thread, &qj) == 0;
		int okp = gen_prime(p, e, &gs);
		if (!okp)
			atomic_store(&abandon, 1);
		if (helper)
			pthread_join(th, NULL);
		else if (okp)
			qj.ok = gen_prime(q, e, &gs);
		if (!okp || !qj.ok)
			goto out;
		/* |p - q| must not be small (FIPS 186-4: > 2^(nlen/2 - 100)) */
		if (!BN_sub(diff, p, q))
			goto out;
		BN_set_negative(diff, 0);
		if (BN_num_bits(diff) > 1024 - 100)
			break;
		if (attempt == 9)
			goto out;
	}
	if (BN_cmp(p, q) < 0)
		BN_swap(p, q);
	if (!BN_mul(n, p, q, ctx) || BN_num_bits(n) != 2048 || !BN_sub(p1, p, BN_value_one()) ||
	    !BN_sub(q1, q, BN_value_one()) || !BN_mul(phi, p1, q1, ctx) || !BN_mod_inverse(d, e, phi, ctx) ||
	    !BN_mod(dmp1, d, p1, ctx) || !BN_mod(dmq1, d, q1, ctx) || !BN_mod_inverse(iqmp, q, p, ctx))
		goto out;
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, iqmp) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!pctx || EVP_PKEY_fromdata_init(pctx) <= 0 || EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
		pkey = NULL;
		goto out;
	}
	/* consistency check of the assembled key */
	EVP_PKEY_CTX *cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int good = cctx && EVP_PKEY_pairwise_check(cctx) == 1;
	EVP_PKEY_CTX_free(cctx);
	if (!good) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	BN_free(n);
	BN_free(diff);
	BN_clear_free(p);
	BN_clear_free(q);
	BN_clear_free(d);
	BN_clear_free(p1);
	BN_clear_free(q1);
	BN_clear_free(phi);
	BN_clear_free(dmp1);
	BN_clear_free(dmq1);
	BN_clear_free(iqmp);
	BN_CTX_free(ctx);
	if (!pkey && !atomic_load(&abandon))
		pkey = EVP_RSA_gen(2048); /* fall back to OpenSSL's own generator */
	return pkey;
}

/* OpenSSL's key generation progress callback: 0 abandons the key. */
static int keygen_progress(EVP_PKEY_CTX *pc)
{
	struct genstop *g = EVP_PKEY_CTX_get_app_data(pc);
	return g->stop && g->stop(g->ctx) ? 0 : 1;
}

/* RSA keys of other sizes (4096: Go's rsa.GenerateKey for genPrivateKey),
 * interruptible between steps. */
static EVP_PKEY *rsa_key_other(int bits, int (*stop)(void *), void *stop_ctx)
{
	EVP_PKEY *key = NULL;
	struct genstop gs = { stop, stop_ctx, NULL };
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (pc && EVP_PKEY_keygen_init(pc) > 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(pc, bits) > 0) {
		EVP_PKEY_CTX_set_app_data(pc, &gs);
		EVP_PKEY_CTX_set_cb(pc, keygen_progress);
		if (EVP_PKEY_keygen(pc, &key) <= 0)
			key = NULL;
	}
	EVP_PKEY_CTX_free(pc);
	return key;
}

static EVP_PKEY *generate(int bits, int threaded, int (*stop)(void *), void *ctx)
{
	return bits == 2048 ? rsa_key_2048(threaded, stop, ctx) : rsa_key_other(bits, stop, ctx);
}

/* ---------------------------------------------------------------- the pool */

#define KEYPOOL_MAX 64   /* per size, whatever the configuration says */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct {
	EVP_PKEY *keys[2][KEYPOOL_MAX];   /* [0]: 2048, [1]: 4096 */
	int n[2], want[2];
	int running;                      /* the thread exists */
	atomic_int stopping;
	pthread_t th;
	long taken, inline_made, generated;
} P;

static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static EVP_PKEY *scratch[2];

static int slot_of(int bits)
{
	return bits == 2048 ? 0 : bits == 4096 ? 1 : -1;
}

static int pool_stopping(void *ctx)
{
	(void)ctx;
	return atomic_load(&P.stopping);
}

static void *refill_thread(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "ferry-keypool");   /* for top, perf, bench/install_cpu.py */
	/* The lowest priority: only CPU time no one else wants. */
	struct sched_param sp = { 0 };
	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
		setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	pthread_mutex_lock(&mu);
	while (!atomic_load(&P.stopping)) {
		int s = P.n[0] < P.want[0] ? 0 : P.n[1] < P.want[1] ? 1 : -1;
		if (s < 0) {
			pthread_cond_wait(&cond, &mu);
			continue;
		}
		pthread_mutex_unlock(&mu);
		EVP_PKEY *k = generate(s ? 4096 : 2048, 0, pool_stopping, NULL);
		pthread_mutex_lock(&mu);
		if (!k) {
			if (atomic_load(&P.stopping))
				break;
			/* OpenSSL failed: do not spin on it */
			pthread_mutex_unlock(&mu);
			sleep(1);
			pthread_mutex_lock(&mu);
			continue;
		}
		P.generated++;
		if (P.n[s] < P.want[s])
			P.keys[s][P.n[s]++] = k;
		else
			EVP_PKEY_free(k);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static int clamp(int v)
{
	return v < 0 ? 0 : v > KEYPOOL_MAX ? KEYPOOL_MAX : v;
}

int keypool_start(int rsa2048, int rsa4096)
{
	pthread_mutex_lock(&mu);
	P.want[0] = clamp(rsa2048);
	P.want[1] = clamp(rsa4096);
	int rc = 0;
	if (!P.running && (P.want[0] || P.want[1])) {
		atomic_store(&P.stopping, 0);
		if (pthread_create(&P.th, NULL, refill_thread, NULL) == 0)
			P.running = 1;
		else
			rc = -1;
	}
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&mu);
	return rc;
}

void keypool_stop(void)
{
	pthread_mutex_lock(&mu);
	int running = P.running;
	atomic_store(&P.stopping, 1);
	P.want[0] = P.want[1] = 0;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&mu);
	if (running)
		pthread_join(P.th, NULL);
	pthread_mutex_lock(&mu);
	P.running = 0;
	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < P.n[s]; i++)
			EVP_PKEY_free(P.keys[s][i]);
		P.n[s] = 0;
	}
	pthread_mutex_unlock(&mu);
	pthread_mutex_lock(&scratch_mu);
	for (int s = 0; s < 2; s++) {
		EVP_PKEY_free(scratch[s]);
		scratch[s] = NULL;
	}
	pthread_mutex_unlock(&scratch_mu);
}

EVP_PKEY *keypool_take_rsa(int bits, int (*stop)(void *ctx), void *ctx)
{
	int s = slot_of(bits);
	EVP_PKEY *k = NULL;
	if (s >= 0) {
		pthread_mutex_lock(&mu);
		if (P.n[s] > 0) {
			/* the newest: the oldest have waited longest for nothing */
			k = P.keys[s][--P.n[s]];
			P.keys[s][P.n[s]] = NULL;
			P.taken++;
			pthread_cond_broadcast(&cond);   /* refill */
		}
		pthread_mutex_unlock(&mu);
		if (k)
			return k;
	}
	k = generate(bits, 1, stop, ctx);
	if (k) {
		pthread_mutex_lock(&mu);
		P.inline_made++;
		pthread_mutex_unlock(&mu);
	}
	return k;
}

EVP_PKEY *keypool_scratch_rsa(int bits)
{
	int s = slot_of(bits);
	if (s < 0)
		return generate(bits, 1, NULL, NULL);
	pthread_mutex_lock(&scratch_mu);
	if (!scratch[s])
		scratch[s] = generate(bits, 1, NULL, NULL);
	EVP_PKEY *k = scratch[s];
	if (k && !EVP_PKEY_up_ref(k))
		k = NULL;
	pthread_mutex_unlock(&scratch_mu);
	return k;
}

void keypool_get_stats(struct keypool_stats *out)
{
	pthread_mutex_lock(&mu);
	out->ready2048 = P.n[0];
	out->ready4096 = P.n[1];
	out->taken = P.taken;
	out->inline_made = P.inline_made;
	out->generated = P.generated;
	pthread_mutex_unlock(&mu);
}
