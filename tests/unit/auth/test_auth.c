#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "auth/access.h"
#include "auth/ratelimit.h"

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";
static const pq_jwt_config CFG = {.secret = SECRET, .secret_len = sizeof SECRET - 1,
                                  .issuer = "promptq", .audience = "promptq-api", .ttl_s = 3600,
                                  .leeway_s = 5};
#define NOW 1795000000

static pq_err verify(const pq_jwt_config *cfg, const char *token, const char **why) {
  char sub[64];
  return pq_jwt_verify(cfg, token, NOW, sub, sizeof sub, why);
}

static void jwt_round_trip(void **state) {
  (void)state;
  char *token = NULL, sub[64];
  const char *why;
  assert_int_equal(pq_jwt_issue(&CFG, "user-1", NOW, &token), PQ_OK);
  assert_int_equal(pq_jwt_verify(&CFG, token, NOW + 10, sub, sizeof sub, &why), PQ_OK);
  assert_string_equal(sub, "user-1");
  free(token);
}

static char *b64(const char *s) {
  size_t n = sodium_base64_encoded_len(strlen(s), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  char *out = malloc(n);
  sodium_bin2base64(out, n, (const unsigned char *)s, strlen(s), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

/* header.payload. with no signature */
static char *unsigned_token(const char *header, const char *payload) {
  char *h = b64(header), *p = b64(payload), *t = malloc(strlen(h) + strlen(p) + 3);
  sprintf(t, "%s.%s.", h, p);
  free(h);
  free(p);
  return t;
}


/* Claims at the edges of a long: exp + leeway and nbf - leeway used to
 * overflow (undefined; UBSan). A token valid for ever is fine; one from the
 * far past or future is refused, and nothing overflows. */
static char *signed_with(const char *claims) {
  jwt_t *j;
  jwt_new(&j);
  jwt_add_grants_json(j, claims);
  jwt_set_alg(j, JWT_ALG_HS256, SECRET, sizeof SECRET - 1);
  char *t = jwt_encode_str(j);
  jwt_free(j);
  return t;
}

static void jwt_extreme_times_do_not_overflow(void **state) {
  (void)state;
  const char *why;
  char claims[300];
  snprintf(claims, sizeof claims,
           "{\"iss\":\"promptq\",\"aud\":\"promptq-api\",\"sub\":\"u\",\"iat\":%d,\"nbf\":%d,"
           "\"exp\":9223372036854775807}", NOW, NOW);
  char *forever = signed_with(claims);
  assert_int_equal(verify(&CFG, forever, &why), PQ_OK);
  free(forever);
  snprintf(claims, sizeof claims,
           "{\"iss\":\"promptq\",\"aud\":\"promptq-api\",\"sub\":\"u\",\"iat\":%d,"
           "\"nbf\":-9223372036854775807,\"exp\":-9223372036854775807}", NOW);
  char *ancient = signed_with(claims);
  assert_int_equal(verify(&CFG, ancient, &why), PQ_ERR_UNAUTHORIZED);
  assert_string_equal(why, "the token has expired");
  free(ancient);
  snprintf(claims, sizeof claims,
           "{\"iss\":\"promptq\",\"aud\":\"promptq-api\",\"sub\":\"u\",\"iat\":%d,"
           "\"nbf\":9223372036854775807,\"exp\":9223372036854775807}", NOW);
  char *future = signed_with(claims);
  assert_int_equal(verify(&CFG, future, &why), PQ_ERR_UNAUTHORIZED);
  assert_string_equal(why, "the token is not valid yet (nbf)");
  free(future);
}

static void jwt_attacks_are_refused(void **state) {
  (void)state;
  const char *why;
  char claims[256];
  snprintf(claims, sizeof claims,
           "{\"iss\":\"promptq\",\"aud\":\"promptq-api\",\"sub\":\"admin\",\"iat\":%d,\"nbf\":%d,\"exp\":%d}",
           NOW, NOW, NOW + 600);
  /* alg none */
  char *none = unsigned_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims);
  assert_int_equal(verify(&CFG, none, &why), PQ_ERR_UNAUTHORIZED);
  free(none);
  char *none2 = unsigned_token("{\"alg\":\"None\"}", claims);
  assert_int_equal(verify(&CFG, none2, &why), PQ_ERR_UNAUTHORIZED);
  free(none2);
  /* another algorithm with the same secret */
  jwt_t *j;
  jwt_new(&j);
  jwt_add_grants_json(j, claims);
  jwt_set_alg(j, JWT_ALG_HS512, SECRET, sizeof SECRET - 1);
  char *hs512 = jwt_encode_str(j);
  jwt_free(j);
  assert_int_equal(verify(&CFG, hs512, &why), PQ_ERR_UNAUTHORIZED);
  free(hs512);
  /* a bad signature: signed with another secret, and a flipped character */
  pq_jwt_config other = CFG;
  other.secret = (const unsigned char *)"another-secret-that-is-long-enough!!";
  other.secret_len = 36;
  char *forged = NULL, *good = NULL;
  pq_jwt_issue(&other, "admin", NOW, &forged);
  assert_int_equal(verify(&CFG, forged, &why), PQ_ERR_UNAUTHORIZED);
  free(forged);
  pq_jwt_issue(&CFG, "admin", NOW, &good);
  good[strlen(good) - 2] = good[strlen(good) - 2] == 'A' ? 'B' : 'A';
  assert_int_equal(verify(&CFG, good, &why), PQ_ERR_UNAUTHORIZED);
  free(good);
  /* expired, and not valid yet */
  char *old = NULL, *future = NULL;
  pq_jwt_issue(&CFG, "admin", NOW - 4000, &old);
  assert_int_equal(verify(&CFG, old, &why), PQ_ERR_UNAUTHORIZED);
  assert_non_null(strstr(why, "expired"));
  free(old);
  pq_jwt_issue(&CFG, "admin", NOW + 600, &future);
  assert_int_equal(verify(&CFG, future, &why), PQ_ERR_UNAUTHORIZED);
  assert_non_null(strstr(why, "nbf"));
  free(future);
  /* wrong issuer, wrong audience */
  pq_jwt_config iss = CFG, aud = CFG;
  iss.issuer = "someone-else";
  aud.audience = "another-api";
  char *t1 = NULL, *t2 = NULL;
  pq_jwt_issue(&iss, "admin", NOW, &t1);
  pq_jwt_issue(&aud, "admin", NOW, &t2);
  assert_int_equal(verify(&CFG, t1, &why), PQ_ERR_UNAUTHORIZED);
  assert_non_null(strstr(why, "iss"));
  assert_int_equal(verify(&CFG, t2, &why), PQ_ERR_UNAUTHORIZED);
  assert_non_null(strstr(why, "aud"));
  free(t1);
  free(t2);
  /* garbage */
  const char *junk[] = {"", "abc", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9..", NULL};
  for (int i = 0; junk[i]; i++) assert_int_equal(verify(&CFG, junk[i], &why), PQ_ERR_UNAUTHORIZED);
}

static void api_keys(void **state) {
  (void)state;
  char a[PQ_APIKEY_LEN + 1], b[PQ_APIKEY_LEN + 1], ha[65], hb[65];
  pq_apikey_generate(a);
  pq_apikey_generate(b);
  assert_int_equal(strlen(a), PQ_APIKEY_LEN);
  assert_memory_equal(a, "pq_live_", 8);
  assert_string_not_equal(a, b);
  assert_true(pq_apikey_well_formed(a));
  for (size_t i = 8; i < PQ_APIKEY_LEN; i++) { /* any one changed character is caught */
    char c[PQ_APIKEY_LEN + 1];
    memcpy(c, a, sizeof c);
    c[i] = c[i] == 'x' ? 'y' : 'x';
    assert_false(pq_apikey_well_formed(c));
  }
  assert_false(pq_apikey_well_formed("pq_live_short"));
  assert_false(pq_apikey_well_formed(NULL));
  pq_apikey_hash(a, ha);
  pq_apikey_hash(b, hb);
  assert_int_equal(strlen(ha), 64);
  assert_string_not_equal(ha, hb);
  assert_null(strstr(ha, a + 8));
}

static void passwords(void **state) {
  (void)state;
  char hash[PQ_PASSWORD_HASH_MAX];
  assert_int_equal(pq_password_hash("correct horse", hash), PQ_OK);
  assert_memory_equal(hash, "$argon2id$v=19$m=19456,t=2,p=1$", 31);
  assert_true(pq_password_verify(hash, "correct horse"));
  assert_false(pq_password_verify(hash, "correct horsE"));
  assert_false(pq_password_verify("plain", "plain"));
}

/* ---- GCRA, with the clock in the test's hands ---- */

#define S 1000000LL

static void gcra_burst_then_rate(void **state) {
  (void)state;
  pq_rate_policy p = {.limit = 100, .window_s = 60, .burst = 20}; /* one every 600 ms */
  int64_t tat = 0, t = 1000 * S;
  for (int i = 0; i < 20; i++) {
    pq_rate_decision d = pq_gcra(&p, &tat, t);
    assert_true(d.allowed);
    assert_int_equal(d.remaining, 19 - i);
  }
  pq_rate_decision d = pq_gcra(&p, &tat, t);
  assert_false(d.allowed);
  assert_int_equal(d.remaining, 0);
  assert_int_equal(d.retry_after_s, 1); /* 600 ms, rounded up */
  assert_false(pq_gcra(&p, &tat, t + 599999).allowed);
  d = pq_gcra(&p, &tat, t + 600000);
  assert_true(d.allowed);
  assert_int_equal(d.remaining, 0);
  /* a long rest refills the whole burst, no more */
  d = pq_gcra(&p, &tat, t + 3600 * S);
  assert_true(d.allowed);
  assert_int_equal(d.remaining, 19);
  assert_int_equal(d.reset_s, 1);
}

static void gcra_sustained_rate_is_the_limit(void **state) {
  (void)state;
  pq_rate_policy p = {.limit = 10, .window_s = 1, .burst = 1};
  int64_t tat = 0, allowed = 0;
  for (int64_t t = 0; t < 10 * S; t += 10000) /* a request every 10 ms for 10 s */
    allowed += pq_gcra(&p, &tat, 5 * S + t).allowed;
  assert_int_equal(allowed, 100);
  pq_rate_policy off = {.limit = 0};
  assert_true(pq_gcra(&off, &tat, 0).allowed);
}

static void limiter_keeps_keys_apart(void **state) {
  (void)state;
  pq_limiter *l = pq_limiter_new();
  pq_rate_policy p = {.limit = 2, .window_s = 60, .burst = 2};
  assert_true(pq_limiter_check(l, &p, "a", 1 * S).allowed);
  assert_true(pq_limiter_check(l, &p, "a", 1 * S).allowed);
  assert_false(pq_limiter_check(l, &p, "a", 1 * S).allowed);
  assert_true(pq_limiter_check(l, &p, "b", 1 * S).allowed);
  assert_true(pq_limiter_check(l, &p, "a", 31 * S).allowed); /* 30 s later: one more */
  for (int i = 0; i < 10000; i++) { /* many one-off keys: swept once idle */
    char key[32];
    snprintf(key, sizeof key, "ip-%d", i);
    pq_limiter_check(l, &p, key, 100 * S + i);
  }
  pq_limiter_free(l);
}

static void stream_slots_are_given_back(void **state) {
  (void)state;
  pq_access_config cfg = {.max_streams_per_key = 1, .hash_threads = 1};
  pq_access *a = pq_access_new(&cfg, NULL);
  assert_non_null(a);
  for (int i = 0; i < 10000; i++) { /* many more credentials than slots, one after another */
    char key[32];
    snprintf(key, sizeof key, "key:%d", i);
    assert_true(pq_access_stream_acquire(a, key));
    pq_access_stream_release(a, key);
  }
  assert_true(pq_access_stream_acquire(a, "key:x"));
  assert_false(pq_access_stream_acquire(a, "key:x")); /* the quota of one holds */
  assert_true(pq_access_stream_acquire(a, "key:y"));
  pq_access_stream_release(a, "key:x");
  assert_true(pq_access_stream_acquire(a, "key:x"));
  pq_access_free(a);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(jwt_round_trip),       cmocka_unit_test(jwt_attacks_are_refused),
      cmocka_unit_test(jwt_extreme_times_do_not_overflow),
      cmocka_unit_test(api_keys),             cmocka_unit_test(passwords),
      cmocka_unit_test(gcra_burst_then_rate), cmocka_unit_test(gcra_sustained_rate_is_the_limit),
      cmocka_unit_test(limiter_keeps_keys_apart),
      cmocka_unit_test(stream_slots_are_given_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
