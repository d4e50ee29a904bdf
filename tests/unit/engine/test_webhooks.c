/* Completion webhooks in the engine, on a manual clock and without a
 * sender: a job's end stores its deliveries in the same transaction; claims
 * hold them and count attempts; retries wait 4 times longer each time and
 * give up after the retry window; a 4xx is final; redelivery; a delivery
 * whose webhook is deleted is cancelled, even while in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/internal.h"
#include "support/fixture.h"

#define BASE 100
#define WINDOW 100000

typedef struct {
  char dir[64], url[180], worker[PQ_UUID_LEN + 1];
  pq_manual_clock clock;
  pq_coord *coord;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.lease_timeout_ms = 60000, .worker_timeout_ms = 3600000, .webhook_retry_base_ms = BASE,
                         .webhook_retry_for_ms = WINDOW};
  if (!f || pq_test_open_engine(f->dir, f->url, "sqlite", &f->clock, &cfg, &f->coord) != 0) return -1;
  if (pq_test_register_worker(f->coord, f->worker) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_close_engine(f->coord, f->dir);
  free(f);
  return rc;
}

/* A job of owner "u" with a webhook URL, run to its end (completed, or failed for good). */
static void run_job(fixture *f, const char *url, bool fail, char id[PQ_UUID_LEN + 1]) {
  pq_job *job = pq_job_new();
  job->model = strdup("m");
  job->input = strdup("{\"prompt\":\"hi\"}");
  job->owner = strdup("u");
  job->webhook_url = url ? strdup(url) : NULL;
  pq_op submit = {.kind = PQ_OP_SUBMIT, .in.submit.job = job};
  assert_int_equal(pq_coord_call(f->coord, &submit), PQ_OK);
  memcpy(id, submit.out.job->id, PQ_UUID_LEN + 1);
  pq_op_release(&submit);
  pq_job *leased[1];
  assert_int_equal(pq_test_lease(f->coord, f->worker, leased, 1), 1);
  pq_op end = {.kind = fail ? PQ_OP_FAIL : PQ_OP_COMPLETE};
  if (fail) {
    end.in.fail.job_id = id;
    end.in.fail.token = leased[0]->lease_token;
    end.in.fail.code = "X";
    end.in.fail.message = "no";
  } else {
    end.in.complete.job_id = id;
    end.in.complete.token = leased[0]->lease_token;
    end.in.complete.output = "\"ok\"";
  }
  assert_int_equal(pq_coord_call(f->coord, &end), PQ_OK);
  pq_op_release(&end);
  pq_job_free(leased[0]);
}

static size_t claim(fixture *f, pq_delivery **first_copy) {
  pq_op op = {.kind = PQ_OP_DELIVERY_CLAIM, .in.delivery_claim = {.limit = 10, .hold_ms = 5000}};
  assert_int_equal(pq_coord_call(f->coord, &op), PQ_OK);
  size_t n = op.out.n_deliveries;
  if (first_copy && n) {
    *first_copy = op.out.deliveries[0];
    op.out.deliveries[0] = NULL;
  }
  pq_op_release(&op);
  return n;
}

static void result(fixture *f, const char *id, int status, const char *error, bool retryable) {
  pq_op op = {.kind = PQ_OP_DELIVERY_RESULT,
              .in.delivery_result = {.id = id, .status = status, .error = error, .retryable = retryable}};
  assert_int_equal(pq_coord_call(f->coord, &op), PQ_OK);
  pq_op_release(&op);
}

static pq_delivery *stored(fixture *f, const char *id) {
  pq_delivery *d = NULL;
  assert_int_equal(pq_coord_delivery_get(f->coord, id, &d), PQ_OK);
  return d;
}

static void retries_back_off_and_give_up(void **state) {
  fixture *f = *state;
  char job[PQ_UUID_LEN + 1];
  run_job(f, "https://example.com/h", false, job);
  pq_delivery *d = NULL;
  assert_int_equal(claim(f, &d), 1); /* stored with the job's end, due at once */
  assert_string_equal(d->job_id, job);
  assert_string_equal(d->event_type, "job.completed");
  assert_int_equal(strncmp(d->secret, "whsec_", 6), 0);
  assert_int_equal(d->attempts, 1);
  assert_int_equal(claim(f, NULL), 0); /* held while in flight */
  int64_t delay = BASE;
  for (int attempt = 1; attempt < 20; attempt++) {
    result(f, d->id, 503, "the receiver answered 503", true);
    pq_delivery *now = stored(f, d->id);
    if (now->state == PQ_DELIVERY_FAILED) { /* the window ran out */
      assert_non_null(strstr(now->last_error, "gave up after"));
      assert_true(pq_clock_wall(&f->clock.clock) + delay > now->created_at + WINDOW);
      pq_delivery_free(now);
      break;
    }
    assert_int_equal(now->next_at, pq_clock_wall(&f->clock.clock) + delay);
    pq_delivery_free(now);
    pq_manual_clock_advance(&f->clock, delay - 1);
    assert_int_equal(claim(f, NULL), 0); /* not yet */
    pq_manual_clock_advance(&f->clock, 1);
    pq_delivery *again = NULL;
    assert_int_equal(claim(f, &again), 1);
    assert_string_equal(again->id, d->id); /* the same message */
    assert_int_equal(again->attempts, attempt + 1);
    pq_delivery_free(again);
    delay *= 4;
    assert_true(attempt < 19);
  }
  pq_delivery_free(d);
}

static void a_4xx_is_final_and_redelivery_sends_again(void **state) {
  fixture *f = *state;
  char job[PQ_UUID_LEN + 1];
  run_job(f, "https://example.com/h", true, job);
  pq_delivery *d = NULL;
  assert_int_equal(claim(f, &d), 1);
  assert_string_equal(d->event_type, "job.failed");
  result(f, d->id, 410, "the receiver answered 410", false);
  pq_delivery *now = stored(f, d->id);
  assert_int_equal(now->state, PQ_DELIVERY_FAILED);
  assert_int_equal(now->last_status, 410);
  pq_delivery_free(now);
  assert_int_equal(claim(f, NULL), 0);
  pq_op other = {.kind = PQ_OP_DELIVERY_REDELIVER, .in.delivery_redeliver = {.id = d->id, .owner = "v"}};
  assert_int_equal(pq_coord_call(f->coord, &other), PQ_ERR_NOT_FOUND); /* not v's */
  pq_op_release(&other);
  pq_op mine = {.kind = PQ_OP_DELIVERY_REDELIVER, .in.delivery_redeliver = {.id = d->id, .owner = "u"}};
  assert_int_equal(pq_coord_call(f->coord, &mine), PQ_OK);
  pq_op_release(&mine);
  assert_int_equal(claim(f, NULL), 1);
  result(f, d->id, 204, NULL, false);
  now = stored(f, d->id);
  assert_int_equal(now->state, PQ_DELIVERY_DELIVERED);
  assert_int_equal(now->attempts, 2);
  assert_null(now->last_error);
  pq_delivery_free(now);
  /* long after its retry window: a redelivery goes out all the same, and retries in a window of its own */
  pq_manual_clock_advance(&f->clock, 10 * WINDOW);
  mine = (pq_op){.kind = PQ_OP_DELIVERY_REDELIVER, .in.delivery_redeliver = {.id = d->id, .owner = "u"}};
  assert_int_equal(pq_coord_call(f->coord, &mine), PQ_OK);
  pq_op_release(&mine);
  assert_int_equal(claim(f, NULL), 1);
  result(f, d->id, 503, "down", true);
  now = stored(f, d->id);
  assert_int_equal(now->state, PQ_DELIVERY_PENDING);
  assert_int_equal(now->next_at, pq_clock_wall(&f->clock.clock) + BASE * 4 * 4); /* its fourth attempt's delay */
  pq_delivery_free(now);
  pq_delivery_free(d);
}

/* One owner's backlog cannot keep another's deliveries out of the claims: at most its cap is
 * in flight, and a claim made while it is at its cap reads past its backlog. */
static void a_capped_owner_does_not_starve_others(void **state) {
  fixture *f = *state;
  pq_webhook subs[] = {{.owner = "u", .url = "https://example.com/u", .events = "*"},
                       {.owner = "", .url = "https://example.com/open", .events = "*"}};
  pq_op add = {.kind = PQ_OP_WEBHOOK_ADD, .in.webhook_add.webhook = &subs[1]};
  assert_int_equal(pq_coord_call(f->coord, &add), PQ_OK);
  pq_op_release(&add);
  char job[PQ_UUID_LEN + 1];
  for (int i = 0; i < 40; i++) run_job(f, "https://example.com/u", false, job); /* u's backlog: 40 */
  pq_job *other = pq_job_new(); /* one of the open server's owner (""), told through its subscription */
  other->model = strdup("m");
  other->input = strdup("{}");
  other->owner = strdup("");
  pq_op submit = {.kind = PQ_OP_SUBMIT, .in.submit.job = other};
  assert_int_equal(pq_coord_call(f->coord, &submit), PQ_OK);
  char oid[PQ_UUID_LEN + 1];
  memcpy(oid, submit.out.job->id, sizeof oid);
  pq_op_release(&submit);
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = oid};
  assert_int_equal(pq_coord_call(f->coord, &cancel), PQ_OK);
  pq_op_release(&cancel);
  const char *busy_owners[4] = {"u", "u", "u", "u"}, *busy_urls[4] = {"https://example.com/u", "https://example.com/u",
                                                                      "https://example.com/u", "https://example.com/u"};
  pq_op op = {.kind = PQ_OP_DELIVERY_CLAIM,
              .in.delivery_claim = {.limit = 4, .hold_ms = 5000, .per_owner = 4, .per_host = 4,
                                    .busy_owners = busy_owners, .busy_urls = busy_urls, .n_busy = 4}};
  assert_int_equal(pq_coord_call(f->coord, &op), PQ_OK);
  assert_int_equal(op.out.n_deliveries, 1); /* u at its cap: the other owner's, from behind u's 40 */
  assert_string_equal(op.out.deliveries[0]->owner, "");
  pq_op_release(&op);
  free(subs[1].id);
  free(subs[1].secret);
}

static void subscriptions_by_event_and_a_deleted_one_in_flight(void **state) {
  fixture *f = *state;
  pq_webhook failures = {.owner = "u", .url = "https://example.com/f", .events = "job.failed"};
  pq_webhook all = {.owner = "u", .url = "https://example.com/all", .events = "*"};
  pq_webhook others = {.owner = "v", .url = "https://example.com/v", .events = "*"};
  pq_webhook *subs[] = {&failures, &all, &others};
  for (size_t i = 0; i < 3; i++) {
    pq_op add = {.kind = PQ_OP_WEBHOOK_ADD, .in.webhook_add.webhook = subs[i]};
    assert_int_equal(pq_coord_call(f->coord, &add), PQ_OK);
    pq_op_release(&add);
  }
  char job[PQ_UUID_LEN + 1];
  run_job(f, NULL, false, job); /* completed: only "all" */
  pq_delivery *d = NULL;
  assert_int_equal(claim(f, &d), 1);
  assert_string_equal(d->url, "https://example.com/all");
  assert_string_equal(d->secret, all.secret); /* the subscription's own secret */
  /* deleted while in flight: the attempt's result changes nothing */
  pq_op del = {.kind = PQ_OP_WEBHOOK_DELETE, .in.webhook_delete = {.id = all.id, .owner = "v"}};
  assert_int_equal(pq_coord_call(f->coord, &del), PQ_ERR_NOT_FOUND); /* v's is not this one */
  pq_op_release(&del);
  del = (pq_op){.kind = PQ_OP_WEBHOOK_DELETE, .in.webhook_delete = {.id = all.id, .owner = "u"}};
  assert_int_equal(pq_coord_call(f->coord, &del), PQ_OK);
  pq_op_release(&del);
  result(f, d->id, 503, "down", true);
  pq_delivery *now = stored(f, d->id);
  assert_int_equal(now->state, PQ_DELIVERY_CANCELLED);
  pq_delivery_free(now);
  pq_delivery_free(d);
  run_job(f, NULL, true, job); /* failed: only "failures" now */
  assert_int_equal(claim(f, &d), 1);
  assert_string_equal(d->url, "https://example.com/f");
  assert_int_equal(claim(f, NULL), 0);
  pq_delivery_free(d);
  for (size_t i = 0; i < 3; i++) {
    free(subs[i]->id);
    free(subs[i]->secret);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(retries_back_off_and_give_up, setup, teardown),
      cmocka_unit_test_setup_teardown(a_4xx_is_final_and_redelivery_sends_again, setup, teardown),
      cmocka_unit_test_setup_teardown(subscriptions_by_event_and_a_deleted_one_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(a_capped_owner_does_not_starve_others, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
