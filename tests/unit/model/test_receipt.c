#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/receipt.h"

static pq_job *completed_job(void) {
  pq_job *j = pq_job_new();
  strcpy(j->id, "01a20000-0000-7000-8000-000000000001");
  j->model = strdup("llama");
  j->input = strdup("{\"prompt\":\"hi\"}");
  j->output = strdup("\"hello\"");
  j->worker_id = strdup("01a20000-0000-7000-8000-0000000000aa");
  j->state = PQ_JOB_COMPLETED;
  j->prompt_tokens = 2;
  j->completion_tokens = 1;
  j->leased_at = 1795000000000;
  j->finished_at = 1795000000500;
  return j;
}

static void sign_verify_and_tamper(void **state) {
  (void)state;
  pq_receipt_key key, other;
  crypto_sign_keypair(key.public_key, key.secret);
  crypto_sign_keypair(other.public_key, other.secret);
  pq_job *job = completed_job();
  json_t *r = pq_receipt_issue(&key, job, NULL);
  assert_non_null(r);
  const char *why;
  assert_int_equal(pq_receipt_verify(r, key.public_key, &why), PQ_OK);
  assert_int_equal(pq_receipt_verify(r, other.public_key, &why), PQ_ERR_INVALID_REQUEST);
  json_t *again = pq_receipt_issue(&key, job, NULL); /* the same job, the same bytes */
  assert_true(json_equal(r, again));
  json_decref(again);
  /* change any one field of the body: the signature no longer holds */
  json_t *body = json_object_get(r, "receipt");
  const char *field;
  json_t *value;
  int checked = 0;
  json_object_foreach(body, field, value) {
    json_t *copy = json_deep_copy(r);
    json_t *b = json_object_get(copy, "receipt");
    if (json_is_string(value)) json_object_set_new(b, field, json_string("tampered"));
    else if (json_is_integer(value)) json_object_set_new(b, field, json_integer(json_integer_value(value) + 1));
    else json_object_set_new(b, field, json_pack("{s:I,s:I}", "prompt_tokens", (json_int_t)2,
                                                 "completion_tokens", (json_int_t)1000));
    assert_int_equal(pq_receipt_verify(copy, key.public_key, &why), PQ_ERR_INVALID_REQUEST);
    json_decref(copy);
    checked++;
  }
  assert_int_equal(checked, 9);
  json_t *extra = json_deep_copy(r);
  json_object_set_new(json_object_get(extra, "receipt"), "bonus", json_true());
  assert_int_equal(pq_receipt_verify(extra, key.public_key, &why), PQ_ERR_INVALID_REQUEST);
  json_decref(extra);
  json_decref(r);
  job->state = PQ_JOB_FAILED;
  assert_null(pq_receipt_issue(&key, job, NULL)); /* only completed jobs have receipts */
  pq_job_free(job);
}

static void worker_signature(void **state) {
  (void)state;
  pq_receipt_key coordinator, worker, stranger;
  crypto_sign_keypair(coordinator.public_key, coordinator.secret);
  crypto_sign_keypair(worker.public_key, worker.secret);
  crypto_sign_keypair(stranger.public_key, stranger.secret);
  char wpk[64], sig[128], forged[128];
  pq_receipt_public_b64(worker.public_key, wpk, sizeof wpk);
  pq_job *job = completed_job();
  pq_receipt_worker_sign(&worker, job->id, job->input, job->output, sig, sizeof sig);
  assert_true(pq_receipt_worker_verify(wpk, sig, job->id, job->input, job->output));
  assert_false(pq_receipt_worker_verify(wpk, sig, job->id, job->input, "\"other\""));
  pq_receipt_worker_sign(&stranger, job->id, job->input, job->output, forged, sizeof forged);
  assert_false(pq_receipt_worker_verify(wpk, forged, job->id, job->input, job->output));
  job->worker_signature = strdup(sig);
  json_t *r = pq_receipt_issue(&coordinator, job, wpk);
  const char *why;
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "receipt"), "worker_public_key")), wpk);
  assert_int_equal(pq_receipt_verify(r, coordinator.public_key, &why), PQ_OK);
  /* a worker signature that does not hold fails the receipt, even re-signed by the coordinator */
  free(job->worker_signature);
  job->worker_signature = strdup(forged);
  json_t *bad = pq_receipt_issue(&coordinator, job, wpk);
  assert_int_equal(pq_receipt_verify(bad, coordinator.public_key, &why), PQ_ERR_INVALID_REQUEST);
  assert_non_null(strstr(why, "worker"));
  json_decref(bad);
  json_decref(r);
  pq_job_free(job);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {cmocka_unit_test(sign_verify_and_tamper), cmocka_unit_test(worker_signature)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
