/* libFuzzer: JWT verification (auth/jwt.c). The first byte picks how the
 * rest is used: as a token as it came (nothing unsigned may verify), or as
 * the claims of a token signed with the right secret, so every claim check
 * (iss, aud, sub, exp, nbf, iat at the edges of a long) runs on hostile
 * values. */
#include <jwt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

static const unsigned char SECRET[] = "fuzz-secret-fuzz-secret-fuzz-secret-0123";
static const pq_jwt_config CFG = {.secret = SECRET, .secret_len = sizeof SECRET - 1, .issuer = "promptq",
                                  .audience = "promptq", .ttl_s = 3600, .leeway_s = 30};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char *text = malloc(size);
  if (!text) return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  char sub[64];
  const char *why = NULL;
  int64_t now = 1795000000 + (int64_t)(data[0] >> 1) * 86400;
  if (data[0] & 1) { /* signed claims */
    jwt_t *j = NULL;
    char *token = NULL;
    if (jwt_new(&j) == 0 && jwt_add_grants_json(j, text) == 0 && jwt_set_alg(j, JWT_ALG_HS256, SECRET, sizeof SECRET - 1) == 0)
      token = jwt_encode_str(j);
    jwt_free(j);
    if (token && pq_jwt_verify(&CFG, token, now, sub, sizeof sub, &why) == PQ_OK && strlen(sub) >= sizeof sub) abort();
    free(token);
  } else if (pq_jwt_verify(&CFG, text, now, sub, sizeof sub, &why) == PQ_OK) {
    abort(); /* a token the fuzzer wrote without the secret verified */
  }
  free(text);
  return 0;
}
