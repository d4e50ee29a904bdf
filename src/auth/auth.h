/* Credentials: passwords (argon2id), API keys, JWTs. Pure functions, no I/O
 * except reading and writing the JWT secret file. */
#ifndef PQ_AUTH_AUTH_H
#define PQ_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* ---- passwords: argon2id, OWASP's parameters (m=19456 KiB, t=2, p=1) ---- */

#define PQ_PASSWORD_HASH_MAX 128
/* Slow on purpose (tens of ms, 19 MiB): the server runs them on its hasher pool. */
pq_err pq_password_hash(const char *password, char out[PQ_PASSWORD_HASH_MAX]);
bool pq_password_verify(const char *hash, const char *password);

/* ---- API keys: "pq_live_" + 43 base62 (256 random bits) + 6 base62 (CRC-32) ---- */

#define PQ_APIKEY_PREFIX "pq_live_"
#define PQ_APIKEY_LEN (8 + 43 + 6)
#define PQ_APIKEY_SHOWN 16 /* characters kept to recognise a key in a list */

void pq_apikey_generate(char out[PQ_APIKEY_LEN + 1]);
/* True when the key has the right shape and checksum (checked before any lookup). */
bool pq_apikey_well_formed(const char *key);
/* Hex SHA-256 of the key: what the store keeps. */
void pq_apikey_hash(const char *key, char out[65]);

/* ---- JWTs: HS256 only ---- */

#define PQ_JWT_SECRET_MIN 32

typedef struct pq_jwt_config {
  const unsigned char *secret;
  size_t secret_len;
  const char *issuer, *audience;
  int64_t ttl_s;
  int64_t leeway_s; /* clock skew tolerated on exp / nbf / iat */
} pq_jwt_config;

/* A token for sub, valid from now (seconds) for ttl_s. *out: free() it. */
pq_err pq_jwt_issue(const pq_jwt_config *cfg, const char *sub, int64_t now, char **out);
/* PQ_OK and the subject, or PQ_ERR_UNAUTHORIZED with the reason in why. */
pq_err pq_jwt_verify(const pq_jwt_config *cfg, const char *token, int64_t now, char *sub,
                     size_t sub_size, const char **why);

/* The secret: given (must be >= 32 bytes), or the data folder's jwt.secret,
 * created with 64 random bytes on first use. *out: free() it. */
pq_err pq_jwt_load_secret(const char *given, const char *data_dir, unsigned char **out, size_t *len,
                          char *err, size_t err_size);

#endif
