/* Completion webhooks' records (model/webhook.h): the Standard Webhooks
 * signature, secrets, and subscriptions' event lists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "model/webhook.h"

/* The specification's own example (github.com/standard-webhooks/standard-webhooks). */
static void signs_as_the_specification_does(void **state) {
  (void)state;
  char sig[PQ_WEBHOOK_SIGNATURE_LEN + 1];
  const char *body = "{\"test\": 2432232314}";
  assert_int_equal(pq_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                   body, strlen(body), sig),
                   0);
  assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  assert_int_equal(pq_webhook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, body, strlen(body), sig), -1);
  assert_int_equal(pq_webhook_sign("whsec_***", "m", 1, body, strlen(body), sig), -1);
}

static void secrets_are_new_and_usable(void **state) {
  (void)state;
  char a[PQ_WEBHOOK_SECRET_LEN + 1], b[PQ_WEBHOOK_SECRET_LEN + 1], sig[PQ_WEBHOOK_SIGNATURE_LEN + 1];
  pq_webhook_secret_new(a);
  pq_webhook_secret_new(b);
  assert_int_equal(strlen(a), PQ_WEBHOOK_SECRET_LEN);
  assert_int_equal(strncmp(a, "whsec_", 6), 0);
  assert_string_not_equal(a, b);
  assert_int_equal(pq_webhook_sign(a, "msg_1", 1, "{}", 2, sig), 0);
}

static void event_lists(void **state) {
  (void)state;
  assert_true(pq_webhook_wants("*", "job.failed"));
  assert_true(pq_webhook_wants("job.completed,job.failed", "job.failed"));
  assert_false(pq_webhook_wants("job.completed,job.failed", "job.fail"));
  assert_false(pq_webhook_wants("job.completed", "job.completed.x"));
  assert_false(pq_webhook_wants("", "job.completed"));
  assert_int_equal(pq_delivery_state_parse("delivered"), PQ_DELIVERY_DELIVERED);
  assert_int_equal(pq_delivery_state_parse("sent"), -1);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(signs_as_the_specification_does),
      cmocka_unit_test(secrets_are_new_and_usable),
      cmocka_unit_test(event_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
