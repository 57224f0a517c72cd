/* Unit tests of server/common/crypto: sealing, keyrings, tokens, base64. */
#include <stdlib.h>
#include <string.h>

#include "server/common/crypto.h"
#include "tests/unit/testlib.h"

#define K1 "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "k2:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void test_seal_roundtrip(void)
{
	char err[256];
	struct keyring *kr = keyring_parse(K1, err, sizeof(err));
	check(kr != NULL);
	if (!kr)
		return;
	check_str(keyring_current_id(kr), "k1");
	const char *secret = "{\"token\":\"very-secret-token\"}";
	char *sealed = crypto_seal(kr, secret, strlen(secret));
	check(sealed != NULL);
	check(strncmp(sealed, "v1:k1:", 6) == 0);
	check(strstr(sealed, "very-secret") == NULL);
	/* Two seals of the same text differ (random nonce). */
	char *again = crypto_seal(kr, secret, strlen(secret));
	check(strcmp(sealed, again) != 0);
	size_t len = 0;
	char *plain = crypto_open(kr, sealed, &len, err, sizeof(err));
	check_str(plain, secret);
	check(len == strlen(secret));
	free(plain);
	/* Empty plaintext works too. */
	char *e = crypto_seal(kr, "", 0);
	plain = crypto_open(kr, e, &len, err, sizeof(err));
	check_str(plain, "");
	check(len == 0);
	free(plain);
	free(e);
	free(sealed);
	free(again);
	keyring_free(kr);
}

static void test_tamper_and_wrong_key(void)
{
	char err[256];
	struct keyring *k1 = keyring_parse(K1, err, sizeof(err));
	struct keyring *k2 = keyring_parse(K2, err, sizeof(err));
	char *sealed = crypto_seal(k1, "hello", 5);
	/* Flip one character of the base64 payload. */
	char *bad = strdup(sealed);
	size_t n = strlen(bad);
	bad[n - 5] = bad[n - 5] == 'A' ? 'B' : 'A';
	char *plain = crypto_open(k1, bad, NULL, err, sizeof(err));
	check(plain == NULL);
	check(strstr(err, "authentication failed") != NULL);
	/* Unknown key id. */
	plain = crypto_open(k2, sealed, NULL, err, sizeof(err));
	check(plain == NULL);
	check(strstr(err, "\"k1\" is not in the keyring") != NULL);
	/* Relabelled key id (k1 payload claimed as k2) fails authentication. */
	struct keyring *both = keyring_parse(K2 "," K1, err, sizeof(err));
	char *relabel = malloc(n + 1);
	strcpy(relabel, "v1:k2:");
	strcat(relabel, sealed + 6);
	plain = crypto_open(both, relabel, NULL, err, sizeof(err));
	check(plain == NULL);
	/* Garbage. */
	check(crypto_open(k1, "nonsense", NULL, err, sizeof(err)) == NULL);
	check(crypto_open(k1, "v1:k1:!!!", NULL, err, sizeof(err)) == NULL);
	check(crypto_open(k1, "v1:k1:AAAA", NULL, err, sizeof(err)) == NULL);
	free(relabel);
	free(bad);
	free(sealed);
	keyring_free(k1);
	keyring_free(k2);
	keyring_free(both);
}

static void test_rotation(void)
{
	char err[256];
	struct keyring *old = keyring_parse(K1, err, sizeof(err));
	struct keyring *rotated = keyring_parse(K2 ",\n" K1 "\n", err, sizeof(err));
	check(rotated != NULL);
	if (!rotated || !old)
		return;
	check_str(keyring_current_id(rotated), "k2");
	char *sealed_old = crypto_seal(old, "abc", 3);
	char *plain = crypto_open(rotated, sealed_old, NULL, err, sizeof(err));
	check_str(plain, "abc");
	free(plain);
	char *sealed_new = crypto_seal(rotated, "abc", 3);
	check(strncmp(sealed_new, "v1:k2:", 6) == 0);
	check(crypto_open(old, sealed_new, NULL, err, sizeof(err)) == NULL);
	free(sealed_old);
	free(sealed_new);
	keyring_free(old);
	keyring_free(rotated);
}

static void test_keyring_errors(void)
{
	char err[256];
	check(keyring_parse("", err, sizeof(err)) == NULL);
	check(strstr(err, "empty") != NULL);
	check(keyring_parse("k1:abcd", err, sizeof(err)) == NULL);
	check(strstr(err, "64 hex digits") != NULL);
	check(keyring_parse("nocolon", err, sizeof(err)) == NULL);
	check(keyring_parse("k 1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", err, sizeof(err)) == NULL);
	check(keyring_parse(K1 "00", err, sizeof(err)) == NULL);
	check(keyring_parse(K1 "," K1, err, sizeof(err)) == NULL);
	check(strstr(err, "twice") != NULL);
	check(keyring_parse("k1:zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", err, sizeof(err)) == NULL);
}

static void test_tokens(void)
{
	char *a = token_generate(), *b = token_generate();
	check(a && b);
	check(strncmp(a, "fy_", 3) == 0);
	check(strlen(a) == 3 + 43);          /* 32 bytes in unpadded base64url */
	check(strcmp(a, b) != 0);
	check(strpbrk(a + 3, "+/=") == NULL);
	size_t len = 0;
	unsigned char *raw = base64_decode(a + 3, &len);
	check(raw != NULL && len == 32);
	free(raw);
	char h1[65], h2[65];
	token_hash(a, h1);
	token_hash(a, h2);
	check_str(h1, h2);
	check(strlen(h1) == 64);
	token_hash(b, h2);
	check(strcmp(h1, h2) != 0);
	free(a);
	free(b);
}

static void test_sha256_base64_vectors(void)
{
	char h[65];
	sha256_hex("abc", 3, h);
	check_str(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, h);
	check_str(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* RFC 4648 test vectors. */
	const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	for (int i = 0; i < 7; i++) {
		char *e = base64_encode(in[i], strlen(in[i]));
		check_str(e, out[i]);
		size_t len = 99;
		unsigned char *d = base64_decode(e, &len);
		check(d != NULL && len == strlen(in[i]) && !memcmp(d, in[i], len));
		free(d);
		free(e);
	}
	size_t len;
	unsigned char *d = base64_decode("Zm9vYg", &len);   /* unpadded */
	check(d && len == 4 && !memcmp(d, "foob", 4));
	free(d);
	d = base64_decode("-_8", &len);                     /* URL-safe */
	check(d && len == 2 && d[0] == 0xfb && d[1] == 0xff);
	free(d);
	check(base64_decode("Zm9v!", &len) == NULL);
	check(base64_decode("Z", &len) == NULL);
	unsigned char r1[16] = { 0 }, r2[16] = { 0 };
	check(random_bytes(r1, sizeof(r1)) == 0 && random_bytes(r2, sizeof(r2)) == 0);
	check(memcmp(r1, r2, sizeof(r1)) != 0);
}

/* keyring_id_conflict: an id may appear in both keyrings only for the
 * same key (ferryd rekey refuses anything else). */
static void test_id_conflict(void)
{
	char err[256];
	const char *a1 = "k1:1111111111111111111111111111111111111111111111111111111111111111";
	const char *b1 = "k1:2222222222222222222222222222222222222222222222222222222222222222";
	const char *k2 = "k2:3333333333333333333333333333333333333333333333333333333333333333";
	char both[256];
	snprintf(both, sizeof(both), "%s,%s", k2, a1);
	struct keyring *old = keyring_parse(both, err, sizeof(err));
	struct keyring *same = keyring_parse(k2, err, sizeof(err));
	struct keyring *other = keyring_parse(b1, err, sizeof(err));
	struct keyring *fresh = keyring_parse(a1, err, sizeof(err));
	check(old && same && other && fresh);
	check(keyring_id_conflict(same, old) == NULL);     /* k2 is k2 in both */
	check(keyring_id_conflict(fresh, old) == NULL);    /* k1 is k1 in both */
	check_str(keyring_id_conflict(other, old), "k1");  /* k1 names two keys */
	check_str(keyring_id_conflict(old, other), "k1");
	check(keyring_id_conflict(other, same) == NULL);   /* no shared id */
	keyring_free(old);
	keyring_free(same);
	keyring_free(other);
	keyring_free(fresh);
}

int main(void)
{
	test_run("crypto_seal_roundtrip", test_seal_roundtrip);
	test_run("crypto_tamper_and_wrong_key", test_tamper_and_wrong_key);
	test_run("crypto_rotation", test_rotation);
	test_run("crypto_keyring_errors", test_keyring_errors);
	test_run("crypto_tokens", test_tokens);
	test_run("crypto_sha256_base64_vectors", test_sha256_base64_vectors);
	test_run("crypto_keyring_id_conflict", test_id_conflict);
	return test_summary();
}
