/*
 * crypto: secrets at rest and API tokens.
 *
 * Stored credentials are sealed with AES-256-GCM under a master key that has
 * a key id, so keys can be rotated: the sealed form is a printable string
 * "v1:<key id>:<base64(12-byte nonce | ciphertext | 16-byte tag)>". A keyring
 * holds the current key (used to seal) and any number of older keys (used to
 * open).
 *
 * Tokens: 32 random bytes, shown to the user once as "fy_" + base64url; only
 * their SHA-256 (hex) is stored.
 *
 * Memory: returned strings are malloc'd and owned by the caller; the keyring
 * is owned by whoever created it. Thread-safe once built.
 */
#ifndef FERRY_CRYPTO_H
#define FERRY_CRYPTO_H

#include <stddef.h>

struct keyring;

/* A keyring from "id:hex64[,id:hex64…]" (the first key seals) or from the
 * contents of a key file holding the same text; NULL with a message in err. */
struct keyring *keyring_parse(const char *spec, char *err, size_t errlen);
void keyring_free(struct keyring *kr);
const char *keyring_current_id(const struct keyring *kr);
/* An id that names different keys in a and b (pointing into a), or NULL:
 * an id must name one key, or a sealed value would be opened with the
 * wrong one. */
const char *keyring_id_conflict(const struct keyring *a, const struct keyring *b);

/* Seal plaintext (len bytes); returns the printable sealed string. */
char *crypto_seal(const struct keyring *kr, const void *plain, size_t len);
/* Open a sealed string; returns the plaintext (NUL-terminated, length in
 * *len_out if non-NULL) or NULL with a message in err (unknown key id,
 * tampered data). */
char *crypto_open(const struct keyring *kr, const char *sealed, size_t *len_out,
		  char *err, size_t errlen);

/* A new API token (the secret shown once) and its storage hash. */
char *token_generate(void);
/* Lower-case hex SHA-256 of a token, 64 chars + NUL written into out[65]. */
void token_hash(const char *token, char out[65]);

/* Hex SHA-256 of arbitrary bytes into out[65]. */
void sha256_hex(const void *data, size_t len, char out[65]);
/* Fill buf with cryptographically random bytes; 0 on success. */
int random_bytes(void *buf, size_t len);
/* Base64 (standard alphabet, padded) of data; caller frees. */
char *base64_encode(const void *data, size_t len);
/* Base64url (RFC 4648 section 5) without padding, as JWTs and PKCE use it;
 * caller frees. */
char *base64url_encode(const void *data, size_t len);
/* Decode standard or URL-safe base64 (padding optional); NULL on bad input. */
unsigned char *base64_decode(const char *text, size_t *len_out);

#endif
