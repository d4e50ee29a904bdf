#include <sodium.h>
#include <string.h>

#include "auth/auth.h"

#define OPS 2
#define MEM (19456ull * 1024)

pq_err pq_password_hash(const char *password, char out[PQ_PASSWORD_HASH_MAX]) {
  _Static_assert(crypto_pwhash_STRBYTES <= PQ_PASSWORD_HASH_MAX, "hash buffer");
  if (crypto_pwhash_str_alg(out, password, strlen(password), OPS, MEM, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return PQ_ERR_NO_MEMORY;
  return PQ_OK;
}

bool pq_password_verify(const char *hash, const char *password) {
  return hash && strncmp(hash, "$argon2id$", 10) == 0 &&
         crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}
