/* The batch kind inside the engine: requests queued with their batch in one
 * transaction, counted as they end, the batch completed by the last one,
 * expired by its window on a manual clock (what had not run is cancelled),
 * cancelled, priced at the batch price, and all-or-nothing on a fault store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/fixture.h"
#include "base/clock.h"
#include "engine/coord.h"
#include "engine/kind.h"
#include "model/money.h"
#include "store/testing/fault.h"

typedef struct {
  char dir[64], url[180];
  pq_manual_clock clock;
  pq_coord *c;
  char worker[PQ_UUID_LEN + 1];
  char batch[PQ_UUID_LEN + 1];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.max_attempts = 3, .retry_backoff_ms = 100, .retry_backoff_max_ms = 100,
                         .lease_timeout_ms = 60000, .worker_timeout_ms = 48LL * 3600000, .batch_discount_percent = 50};
  if (pq_test_open_engine(f->dir, f->url, "fault+sqlite", &f->clock, &cfg, &f->c) != 0) return -1;
  if (pq_test_register_worker(f->c, f->worker) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_close_engine(f->c, f->dir);
  free(f);
  return rc;
}

static pq_job *step(const char *text) {
  pq_job *j = pq_job_new();
  j->model = strdup("m");
  j->priority = -100;
  char input[128];
  snprintf(input, sizeof input, "{\"prompt\":\"%s\",\"params\":{\"max_tokens\":10}}", text);
  j->input = strdup(input);
  return j;
}

static pq_err submit_batch(fixture *f, size_t n, const char *owner) {
  json_t *input = json_pack("{s:s,s:s,s:s}", "input_file_id", "file-x", "endpoint", "/v1/chat/completions",
                            "completion_window", "24h");
  pq_jerr why = {0};
  assert_int_equal(pq_job_kind_find("batch")->validate(input, &why), PQ_OK);
  pq_job *job = pq_job_new();
  job->kind = strdup("batch");
  job->model = strdup("batch");
  job->owner = strdup(owner);
  job->input = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  pq_job **steps = calloc(n, sizeof *steps);
  for (size_t i = 0; i < n; i++) steps[i] = step("one two");
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit = {.job = job, .steps = steps, .n_steps = n}};
  pq_err e = pq_coord_call(f->c, &op);
  if (e == PQ_OK) {
    assert_int_equal(op.out.job->state, n ? PQ_JOB_LEASED : PQ_JOB_COMPLETED); /* run here, never queued */
    memcpy(f->batch, op.out.job->id, sizeof f->batch);
  }
  pq_op_release(&op);
  return e;
}

static pq_job *get(fixture *f, const char *id) {
  pq_job *job = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &job), PQ_OK);
  return job;
}

static void assert_counts(fixture *f, int total, int completed, int failed) {
  pq_job *b = get(f, f->batch);
  json_t *st = json_loads(b->output, 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(st, "total")), total);
  assert_int_equal(json_integer_value(json_object_get(st, "completed")), completed);
  assert_int_equal(json_integer_value(json_object_get(st, "failed")), failed);
  json_decref(st);
  pq_job_free(b);
}

static size_t lease(fixture *f, pq_job **out, size_t max) {
  int n = pq_test_lease(f->c, f->worker, out, max);
  assert_true(n >= 0);
  return (size_t)n;
}

static pq_err complete(fixture *f, pq_job *job) {
  pq_op op = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = job->id, .token = job->lease_token, .output = "\"ok\"",
                                                      .prompt_tokens = 10, .completion_tokens = 10}};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static pq_err fail_job(fixture *f, pq_job *job) {
  pq_op op = {.kind = PQ_OP_FAIL, .in.fail = {.job_id = job->id, .token = job->lease_token, .code = "UPSTREAM_REJECTED",
                                              .message = "no", .retryable = false}};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static void requests_are_counted_and_the_last_completes_the_batch(void **state) {
  fixture *f = *state;
  assert_int_equal(submit_batch(f, 3, ""), PQ_OK);
  assert_counts(f, 3, 0, 0);
  pq_job *jobs[4];
  assert_int_equal(lease(f, jobs, 4), 3);
  assert_string_equal(jobs[0]->parent_id, f->batch);
  assert_int_equal(jobs[0]->priority, -100);
  assert_int_equal(complete(f, jobs[0]), PQ_OK);
  assert_int_equal(fail_job(f, jobs[1]), PQ_OK);
  assert_counts(f, 3, 1, 1);
  pq_job *b = get(f, f->batch);
  assert_int_equal(b->state, PQ_JOB_LEASED);
  pq_job_free(b);
  assert_int_equal(complete(f, jobs[2]), PQ_OK);
  assert_counts(f, 3, 2, 1);
  b = get(f, f->batch);
  assert_int_equal(b->state, PQ_JOB_COMPLETED);
  pq_job_free(b);
  pq_job **steps = NULL;
  size_t n = 0;
  assert_int_equal(pq_coord_job_children(f->c, f->batch, 0, 10, &steps, &n), PQ_OK);
  assert_int_equal(n, 3);
  assert_string_equal(steps[0]->id, jobs[0]->id); /* in the order they were given */
  pq_job_free_array(steps, n);
  for (int i = 0; i < 3; i++) pq_job_free(jobs[i]);
  /* an empty batch is done at once */
  assert_int_equal(submit_batch(f, 0, ""), PQ_OK);
}

static void a_batch_past_its_window_expires_and_what_did_not_run_is_cancelled(void **state) {
  fixture *f = *state;
  assert_int_equal(submit_batch(f, 3, ""), PQ_OK);
  pq_job *jobs[1];
  assert_int_equal(lease(f, jobs, 1), 1);
  assert_int_equal(complete(f, jobs[0]), PQ_OK);
  pq_job_free(jobs[0]);
  pq_manual_clock_advance(&f->clock, 24LL * 3600000 + 1);
  pq_op op = {.kind = PQ_OP_REAP};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
  pq_job *b = get(f, f->batch);
  assert_int_equal(b->state, PQ_JOB_FAILED);
  assert_string_equal(b->error_code, "TIMEOUT");
  pq_job_free(b);
  /* the two that never ran are cancelled, and still counted after the batch ended */
  assert_counts(f, 3, 1, 2);
  assert_int_equal(lease(f, jobs, 1), 0);
}

static void a_cancelled_batch_stops_its_requests_and_keeps_counting(void **state) {
  fixture *f = *state;
  assert_int_equal(submit_batch(f, 3, ""), PQ_OK);
  pq_job *jobs[1];
  assert_int_equal(lease(f, jobs, 1), 1);
  pq_op op = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = f->batch};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
  pq_job *b = get(f, f->batch);
  assert_int_equal(b->state, PQ_JOB_CANCELLED);
  pq_job_free(b);
  assert_counts(f, 3, 0, 2); /* the queued two ended now */
  pq_job *running = get(f, jobs[0]->id);
  assert_true(running->cancel_requested); /* the leased one is asked to stop */
  pq_job_free(running);
  assert_int_equal(complete(f, jobs[0]), PQ_OK); /* it delivered anyway */
  assert_counts(f, 3, 1, 2);
  pq_job_free(jobs[0]);
}

static void a_batch_holds_and_pays_the_batch_price(void **state) {
  fixture *f = *state;
  pq_price p = {.model = "m", .input_per_mtok = 1000000000, .output_per_mtok = 2000000000}; /* $1000, $2000 per M */
  pq_op op = {.kind = PQ_OP_PRICE_SET, .in.price_set.price = &p};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
  char user[PQ_UUID_LEN + 1];
  assert_int_equal(pq_test_add_user(f->c, "bob", user), 0);
  op = (pq_op){.kind = PQ_OP_CREDIT_GRANT, .in.credit_grant = {.user_id = user, .id = "g", .amount = 1000000000}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
  assert_int_equal(submit_batch(f, 2, user), PQ_OK);
  pq_job *b = get(f, f->batch);
  assert_true(b->held_micros > 0);
  int64_t held = b->held_micros;
  pq_job_free(b);
  pq_job *jobs[2];
  assert_int_equal(lease(f, jobs, 2), 2);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(complete(f, jobs[i]), PQ_OK);
    pq_job_free(jobs[i]);
  }
  b = get(f, f->batch);
  assert_int_equal(b->state, PQ_JOB_COMPLETED);
  /* each request: 10 in at $1000/M + 10 out at $2000/M = $0.03; two at half price */
  assert_int_equal(b->cost_micros, 30000);
  assert_true(b->cost_micros <= held);
  pq_job_free(b);
}

/* Prices m, adds a user with 1000 USD and returns its id in user. */
static void priced_user(fixture *f, char user[PQ_UUID_LEN + 1]) {
  pq_price p = {.model = "m", .input_per_mtok = 1000000000, .output_per_mtok = 2000000000};
  pq_op op = {.kind = PQ_OP_PRICE_SET, .in.price_set.price = &p};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
  assert_int_equal(pq_test_add_user(f->c, "carol", user), 0);
  op = (pq_op){.kind = PQ_OP_CREDIT_GRANT, .in.credit_grant = {.user_id = user, .id = "g", .amount = 1000000000}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
}

static void a_request_delivered_after_a_cancel_is_charged_once(void **state) {
  fixture *f = *state;
  char user[PQ_UUID_LEN + 1];
  priced_user(f, user);
  assert_int_equal(submit_batch(f, 2, user), PQ_OK);
  pq_job *jobs[2];
  assert_int_equal(lease(f, jobs, 2), 2);
  pq_op op = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = f->batch};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  pq_op_release(&op);
  char account[PQ_ACCOUNT_LEN];
  pq_user_account(account, user);
  pq_account before;
  assert_int_equal(pq_coord_account(f->c, account, &before), PQ_OK);
  assert_int_equal(before.held, 0); /* the batch's hold was settled when it ended */
  assert_int_equal(complete(f, jobs[0]), PQ_OK); /* it delivered all the same */
  assert_int_equal(fail_job(f, jobs[1]), PQ_OK);
  pq_account after;
  assert_int_equal(pq_coord_account(f->c, account, &after), PQ_OK);
  assert_int_equal(before.balance - after.balance, 15000); /* its cost at the batch price, once */
  assert_counts(f, 2, 1, 1);
  for (int i = 0; i < 2; i++) pq_job_free(jobs[i]);
}

static void a_failing_statement_queues_none_of_the_batch(void **state) {
  fixture *f = *state;
  pq_store *s = pq_coord_store(f->c);
  int failures = 0;
  for (int nth = 1;; nth++) {
    int before = pq_store_fault_injected(s);
    pq_store_fault_arm(s, PQ_FAULT_STATEMENT, nth, PQ_FAULT_IO_ERROR, false);
    pq_err e = submit_batch(f, 3, "");
    bool injected = pq_store_fault_injected(s) > before;
    pq_store_fault_disarm(s);
    if (!injected) {
      assert_int_equal(e, PQ_OK);
      break;
    }
    failures++;
    assert_int_equal(e, PQ_ERR_STORE_FAILED);
    pq_job_filter all = {.state = -1, .limit = 100};
    pq_job **jobs = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(pq_coord_list_jobs(f->c, &all, &jobs, &n, &total), PQ_OK);
    assert_int_equal(total, 0); /* all or nothing */
    pq_job_free_array(jobs, n);
  }
  assert_true(failures >= 4); /* the batch, its three requests, its start */
  pq_job *jobs[4];
  assert_int_equal(lease(f, jobs, 4), 3);
  for (int i = 0; i < 3; i++) pq_job_free(jobs[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(requests_are_counted_and_the_last_completes_the_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(a_batch_past_its_window_expires_and_what_did_not_run_is_cancelled, setup, teardown),
      cmocka_unit_test_setup_teardown(a_cancelled_batch_stops_its_requests_and_keeps_counting, setup, teardown),
      cmocka_unit_test_setup_teardown(a_batch_holds_and_pays_the_batch_price, setup, teardown),
      cmocka_unit_test_setup_teardown(a_request_delivered_after_a_cancel_is_charged_once, setup, teardown),
      cmocka_unit_test_setup_teardown(a_failing_statement_queues_none_of_the_batch, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
