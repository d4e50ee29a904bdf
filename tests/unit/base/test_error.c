#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/error.h"

static void ok_is_zero(void **state) {
  (void)state;
  assert_int_equal(PQ_OK, 0);
  assert_string_equal(pq_err_code(PQ_OK), "OK");
  assert_int_equal(pq_err_http_status(PQ_OK), 200);
}

static void every_code_is_complete_and_unique(void **state) {
  (void)state;
  for (int i = 1; i < PQ_ERR__COUNT; i++) {
    const char *code = pq_err_code((pq_err)i);
    assert_non_null(code);
    assert_true(strlen(pq_err_message((pq_err)i)) > 0);
    int status = pq_err_http_status((pq_err)i);
    assert_true(status >= 400 && status <= 599);
    for (const char *p = code; *p; p++) assert_true((*p >= 'A' && *p <= 'Z') || *p == '_');
    for (int k = 0; k < i; k++) assert_string_not_equal(code, pq_err_code((pq_err)k));
  }
}

static void known_rows(void **state) {
  (void)state;
  assert_string_equal(pq_err_code(PQ_ERR_RATE_LIMIT_EXCEEDED), "RATE_LIMIT_EXCEEDED");
  assert_int_equal(pq_err_http_status(PQ_ERR_RATE_LIMIT_EXCEEDED), 429);
  assert_true(pq_err_retryable(PQ_ERR_RATE_LIMIT_EXCEEDED));
  assert_int_equal(pq_err_http_status(PQ_ERR_PAYLOAD_TOO_LARGE), 413);
  assert_int_equal(pq_err_http_status(PQ_ERR_LEASE_MISMATCH), 409);
  assert_int_equal(pq_err_http_status(PQ_ERR_IDEMPOTENCY_MISMATCH), 422);
  assert_int_equal(pq_err_http_status(PQ_ERR_METHOD_NOT_ALLOWED), 405);
  assert_false(pq_err_retryable(PQ_ERR_INVALID_REQUEST));
}

static void out_of_range_is_internal(void **state) {
  (void)state;
  assert_string_equal(pq_err_code((pq_err)9999), "INTERNAL");
  assert_string_equal(pq_err_code((pq_err)-1), "INTERNAL");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ok_is_zero),
      cmocka_unit_test(every_code_is_complete_and_unique),
      cmocka_unit_test(known_rows),
      cmocka_unit_test(out_of_range_is_internal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
