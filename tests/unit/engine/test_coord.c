/* The coordinator engine, driven through its operations (no HTTP) on a
 * manual clock: time moves only when a test says so, and the reaper runs
 * when a test asks (PQ_OP_REAP), so nothing sleeps or races real time. The
 * whole group runs twice: with the engine's own index, and with every lease
 * picked by the store (the path several coordinators on one store take). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/fixture.h"
#include "base/clock.h"
#include "engine/coord.h"
#include "base/ids.h"

static bool pick_from_store; /* the group's mode */

typedef struct {
  char dir[64], path[128], url[160];
  pq_manual_clock clock;
  pq_coord_config cfg;
  pq_coord *c;
  char worker[PQ_UUID_LEN + 1];
} fixture;

static void open_coord(fixture *f) {
  assert_int_equal(pq_coord_open(&f->cfg, &f->c), PQ_OK);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/pqcoord-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/c.db", f->dir);
  snprintf(f->url, sizeof f->url, "sqlite://%s", f->path);
  pq_manual_clock_init(&f->clock, pq_now_ms());
  f->cfg = (pq_coord_config){.store_url = f->url, .store = {.sync_full = false}, .clock = &f->clock.clock,
                             .pick_from_store = pick_from_store,
                             .lease_timeout_ms = 60000, .max_attempts = 2,
                             .worker_timeout_ms = 60000, .retry_backoff_ms = 20,
                             .retry_backoff_max_ms = 40, .reap_interval_ms = 10};
  open_coord(f);
  if (pq_test_register_worker(f->c, f->worker) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  pq_coord_close(f->c);
  int rc = pq_test_remove_dir(f->dir);
  free(f);
  return rc;
}

static void submit(fixture *f, int priority, const char *key, const char *hash, char id[PQ_UUID_LEN + 1],
                   pq_err expect) {
  pq_job *j = pq_job_new();
  j->model = strdup("m");
  j->input = strdup("{\"prompt\":\"x\"}");
  j->priority = priority;
  if (key) j->idempotency_key = strdup(key);
  if (hash) j->request_hash = strdup(hash);
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = j};
  assert_int_equal(pq_coord_call(f->c, &op), expect);
  if (id && op.out.job) memcpy(id, op.out.job->id, PQ_UUID_LEN + 1);
  pq_op_release(&op);
}

/* Leases without waiting; returns how many, and the first one's id/token. */
static size_t lease(fixture *f, int max, char id[PQ_UUID_LEN + 1], char token[64]) {
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = max}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  size_t n = op.out.n_jobs;
  if (n && id) memcpy(id, op.out.jobs[0]->id, PQ_UUID_LEN + 1);
  if (n && token) snprintf(token, 64, "%s", op.out.jobs[0]->lease_token);
  pq_op_release(&op);
  return n;
}

static int64_t mono(fixture *f) { return pq_clock_mono(&f->clock.clock); }

/* Moves the clock on and runs the reaper now; returns what it settled. */
static int advance_and_reap(fixture *f, int64_t ms) {
  pq_manual_clock_advance(&f->clock, ms);
  pq_op op = {.kind = PQ_OP_REAP};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  int settled = op.out.reaped;
  pq_op_release(&op);
  return settled;
}

static pq_job_state state_of(fixture *f, const char *id) {
  pq_job *j = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &j), PQ_OK);
  pq_job_state s = j->state;
  pq_job_free(j);
  return s;
}

static void submit_lease_complete_with_fencing(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1], leased[PQ_UUID_LEN + 1], token[64];
  submit(f, 0, NULL, NULL, id, PQ_OK);
  assert_int_equal(state_of(f, id), PQ_JOB_QUEUED);
  assert_int_equal(lease(f, 4, leased, token), 1);
  assert_string_equal(leased, id);
  assert_int_equal(lease(f, 4, NULL, NULL), 0);
  pq_op bad = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = id, .token = "forged", .output = "1"}};
  assert_int_equal(pq_coord_call(f->c, &bad), PQ_ERR_LEASE_MISMATCH);
  assert_int_equal(state_of(f, id), PQ_JOB_LEASED);
  pq_op ok = {.kind = PQ_OP_COMPLETE,
              .in.complete = {.job_id = id, .token = token, .output = "\"hi\"", .completion_tokens = 1}};
  assert_int_equal(pq_coord_call(f->c, &ok), PQ_OK);
  assert_int_equal(ok.out.job->state, PQ_JOB_COMPLETED);
  pq_op_release(&ok);
  pq_op again = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = id, .token = token, .output = "2"}};
  assert_int_equal(pq_coord_call(f->c, &again), PQ_ERR_LEASE_MISMATCH); /* already done */
  pq_op_release(&again);
}

static void priority_order_survives_restart(void **state) {
  fixture *f = *state;
  char low[PQ_UUID_LEN + 1], high[PQ_UUID_LEN + 1], mid[PQ_UUID_LEN + 1], got[PQ_UUID_LEN + 1];
  submit(f, 1, NULL, NULL, low, PQ_OK);
  submit(f, 9, NULL, NULL, high, PQ_OK);
  submit(f, 5, NULL, NULL, mid, PQ_OK);
  pq_coord_close(f->c);
  open_coord(f); /* the index is rebuilt from the store */
  assert_int_equal(lease(f, 1, got, NULL), 1);
  assert_string_equal(got, high);
  assert_int_equal(lease(f, 1, got, NULL), 1);
  assert_string_equal(got, mid);
  assert_int_equal(lease(f, 1, got, NULL), 1);
  assert_string_equal(got, low);
}


/* Parking happens on the writer after its commit: wait for it to show. */
static void wait_parked(fixture *f, size_t n) {
  while (pq_hub_count(pq_coord_hub(f->c)) < n) sched_yield();
}

static void waiting_lease_gets_the_next_submit(void **state) {
  fixture *f = *state;
  pq_test_done d;
  pq_test_done_init(&d);
  pq_op op = {.kind = PQ_OP_LEASE,
              .in.lease = {.worker_id = f->worker, .max_jobs = 1, .deadline_ms = mono(f) + 10000},
              .done = pq_test_op_done, .ud = &d};
  pq_coord_submit(f->c, &op);
  wait_parked(f, 1); /* so the submit must hand the job over */
  char id[PQ_UUID_LEN + 1];
  submit(f, 0, NULL, NULL, id, PQ_OK);
  pq_test_wait_done(&d);
  assert_int_equal(op.out.result, PQ_OK);
  assert_int_equal(op.out.n_jobs, 1);
  assert_string_equal(op.out.jobs[0]->id, id);
  pq_coord_stats st;
  pq_coord_get_stats(f->c, &st);
  assert_true(st.handoffs >= 1);
  pq_op_release(&op);
}

static void waiting_lease_times_out_empty(void **state) {
  fixture *f = *state;
  pq_test_done d;
  pq_test_done_init(&d);
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = 1, .deadline_ms = mono(f) + 50},
              .done = pq_test_op_done, .ud = &d};
  pq_coord_submit(f->c, &op);
  wait_parked(f, 1);
  pq_manual_clock_advance(&f->clock, 49);
  assert_int_equal(pq_hub_expire(pq_coord_hub(f->c)), 0); /* not yet */
  assert_int_equal(d.done, 0);
  pq_manual_clock_advance(&f->clock, 1);
  assert_int_equal(pq_hub_expire(pq_coord_hub(f->c)), 1);
  pq_test_wait_done(&d);
  assert_int_equal(op.out.result, PQ_OK);
  assert_int_equal(op.out.n_jobs, 0);
  pq_op_release(&op);
}

static void idempotency(void **state) {
  fixture *f = *state;
  char a[PQ_UUID_LEN + 1], b[PQ_UUID_LEN + 1];
  submit(f, 0, "key", "h1", a, PQ_OK);
  submit(f, 0, "key", "h1", b, PQ_OK);
  assert_string_equal(a, b);
  submit(f, 0, "key", "h2", NULL, PQ_ERR_IDEMPOTENCY_MISMATCH);
  assert_int_equal(lease(f, 10, NULL, NULL), 1);
}

static void retries_then_dead(void **state) {
  fixture *f = *state; /* max_attempts 2, backoff 20ms */
  char id[PQ_UUID_LEN + 1], token[64];
  submit(f, 0, NULL, NULL, id, PQ_OK);
  assert_int_equal(lease(f, 1, NULL, token), 1);
  pq_op fail1 = {.kind = PQ_OP_FAIL,
                 .in.fail = {.job_id = id, .token = token, .code = "BOOM", .message = "m", .retryable = true}};
  assert_int_equal(pq_coord_call(f->c, &fail1), PQ_OK);
  assert_int_equal(fail1.out.job->state, PQ_JOB_QUEUED);
  assert_true(fail1.out.job->not_before > 0);
  pq_op_release(&fail1);
  /* the backoff (20 ms) holds it back; a waiting lease receives it once due */
  assert_int_equal(lease(f, 1, NULL, NULL), 0);
  pq_test_done d;
  pq_test_done_init(&d);
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = 1, .deadline_ms = mono(f) + 5000},
              .done = pq_test_op_done, .ud = &d};
  pq_coord_submit(f->c, &op);
  wait_parked(f, 1);
  advance_and_reap(f, 19);
  assert_int_equal(d.done, 0);
  advance_and_reap(f, 1); /* due now: the reaper's pass hands it to the parked lease */
  pq_test_wait_done(&d);
  assert_int_equal(op.out.n_jobs, 1);
  assert_int_equal(op.out.jobs[0]->attempts, 2);
  snprintf(token, sizeof token, "%s", op.out.jobs[0]->lease_token);
  pq_op_release(&op);
  pq_op fail2 = {.kind = PQ_OP_FAIL,
                 .in.fail = {.job_id = id, .token = token, .code = "BOOM", .message = "m", .retryable = true}};
  assert_int_equal(pq_coord_call(f->c, &fail2), PQ_OK);
  assert_int_equal(fail2.out.job->state, PQ_JOB_DEAD);
  assert_string_equal(fail2.out.job->error_code, "BOOM");
  pq_op_release(&fail2);
}

static void lapsed_lease_is_requeued(void **state) {
  fixture *f = *state;
  pq_coord_close(f->c);
  f->cfg.lease_timeout_ms = 30;
  open_coord(f);
  char id[PQ_UUID_LEN + 1], token[64];
  submit(f, 0, NULL, NULL, id, PQ_OK);
  assert_int_equal(lease(f, 1, NULL, token), 1);
  assert_int_equal(advance_and_reap(f, 29), 0);
  assert_int_equal(state_of(f, id), PQ_JOB_LEASED);
  assert_int_equal(advance_and_reap(f, 1), 1);
  pq_job *j = NULL;
  pq_coord_get_job(f->c, id, 0, &j);
  assert_int_equal(j->state, PQ_JOB_QUEUED);
  assert_string_equal(j->error_code, "LEASE_EXPIRED");
  assert_int_equal(j->not_before, pq_clock_wall(&f->clock.clock) + 20); /* the first backoff */
  pq_job_free(j);
  /* the first worker's late result is refused */
  pq_op late = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = id, .token = token, .output = "1"}};
  assert_int_equal(pq_coord_call(f->c, &late), PQ_ERR_LEASE_MISMATCH);
  pq_op_release(&late);
}

/* Heartbeats push a worker's leases on; without them the lease lapses. */
static void heartbeats_extend_leases(void **state) {
  fixture *f = *state;
  pq_coord_close(f->c);
  f->cfg.lease_timeout_ms = 1000;
  open_coord(f);
  char id[PQ_UUID_LEN + 1];
  submit(f, 0, NULL, NULL, id, PQ_OK);
  assert_int_equal(lease(f, 1, NULL, NULL), 1);
  for (int beat = 0; beat < 5; beat++) { /* 5 x 800 ms: well past the first lease's end */
    pq_manual_clock_advance(&f->clock, 800);
    pq_op hb = {.kind = PQ_OP_HEARTBEAT, .in.heartbeat.worker_id = f->worker};
    assert_int_equal(pq_coord_call(f->c, &hb), PQ_OK);
    pq_op_release(&hb);
    assert_int_equal(advance_and_reap(f, 0), 0);
    assert_int_equal(state_of(f, id), PQ_JOB_LEASED);
  }
  assert_int_equal(advance_and_reap(f, 999), 0);
  assert_int_equal(advance_and_reap(f, 1), 1); /* the heartbeats stopped */
  assert_int_equal(state_of(f, id), PQ_JOB_QUEUED);
}

/* A queued job whose ttl ends expires, and is never leased. */
static void ttl_ends_while_queued(void **state) {
  fixture *f = *state;
  pq_job *j = pq_job_new();
  j->model = strdup("m");
  j->input = strdup("{\"prompt\":\"x\"}");
  j->expires_at = pq_clock_wall(&f->clock.clock) + 500;
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = j};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  char id[PQ_UUID_LEN + 1];
  memcpy(id, op.out.job->id, sizeof id);
  pq_op_release(&op);
  assert_int_equal(advance_and_reap(f, 499), 0);
  assert_int_equal(advance_and_reap(f, 1), 1);
  assert_int_equal(state_of(f, id), PQ_JOB_EXPIRED);
  assert_int_equal(lease(f, 1, NULL, NULL), 0);
}

/* A worker that stops heartbeating goes offline: its leases end at once,
 * and the models only it served are no longer served. */
static void silent_worker_goes_offline(void **state) {
  fixture *f = *state;
  pq_coord_close(f->c);
  f->cfg.worker_timeout_ms = 5000;
  open_coord(f);
  assert_true(pq_coord_model_served(f->c, "m")); /* loaded from the store at start */
  char id[PQ_UUID_LEN + 1];
  submit(f, 0, NULL, NULL, id, PQ_OK);
  assert_int_equal(lease(f, 1, NULL, NULL), 1);
  assert_int_equal(advance_and_reap(f, 4999), 0);
  assert_true(pq_coord_model_served(f->c, "m"));
  assert_true(advance_and_reap(f, 2) >= 2); /* the worker, and its lease */
  assert_false(pq_coord_model_served(f->c, "m"));
  assert_int_equal(state_of(f, id), PQ_JOB_QUEUED);
  /* heard from again, it serves again */
  pq_op hb = {.kind = PQ_OP_HEARTBEAT, .in.heartbeat.worker_id = f->worker};
  assert_int_equal(pq_coord_call(f->c, &hb), PQ_OK);
  pq_op_release(&hb);
  assert_true(pq_coord_model_served(f->c, "m"));
}

static void cancel_queued_and_leased(void **state) {
  fixture *f = *state;
  char a[PQ_UUID_LEN + 1], b[PQ_UUID_LEN + 1], token[64];
  submit(f, 0, NULL, NULL, a, PQ_OK);
  submit(f, 0, NULL, NULL, b, PQ_OK);
  pq_op c1 = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = a};
  assert_int_equal(pq_coord_call(f->c, &c1), PQ_OK);
  assert_int_equal(c1.out.job->state, PQ_JOB_CANCELLED);
  pq_op_release(&c1);
  char got[PQ_UUID_LEN + 1];
  assert_int_equal(lease(f, 5, got, token), 1); /* the cancelled one is skipped */
  assert_string_equal(got, b);
  pq_op c2 = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = b};
  assert_int_equal(pq_coord_call(f->c, &c2), PQ_OK);
  assert_int_equal(c2.out.job->state, PQ_JOB_LEASED);
  assert_true(c2.out.job->cancel_requested);
  pq_op_release(&c2);
  pq_op hb = {.kind = PQ_OP_HEARTBEAT, .in.heartbeat.worker_id = f->worker};
  assert_int_equal(pq_coord_call(f->c, &hb), PQ_OK);
  assert_int_equal(hb.out.n_cancel, 1);
  assert_string_equal(hb.out.cancel_ids[0], b);
  pq_op_release(&hb);
  pq_op fl = {.kind = PQ_OP_FAIL,
              .in.fail = {.job_id = b, .token = token, .code = "CANCELLED", .retryable = true}};
  assert_int_equal(pq_coord_call(f->c, &fl), PQ_OK);
  assert_int_equal(fl.out.job->state, PQ_JOB_CANCELLED);
  pq_op_release(&fl);
  pq_op c3 = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = a};
  assert_int_equal(pq_coord_call(f->c, &c3), PQ_ERR_INVALID_STATE);
  pq_op_release(&c3);
}

static void unknown_worker_and_job(void **state) {
  fixture *f = *state;
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = "00000000-0000-7000-8000-000000000000"}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_ERR_NOT_FOUND);
  pq_op_release(&op);
  pq_op c = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = "00000000-0000-7000-8000-000000000000"};
  assert_int_equal(pq_coord_call(f->c, &c), PQ_ERR_NOT_FOUND);
  pq_op_release(&c);
}

int main(void) {
  pq_ids_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(submit_lease_complete_with_fencing, setup, teardown),
      cmocka_unit_test_setup_teardown(priority_order_survives_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(waiting_lease_gets_the_next_submit, setup, teardown),
      cmocka_unit_test_setup_teardown(waiting_lease_times_out_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(idempotency, setup, teardown),
      cmocka_unit_test_setup_teardown(retries_then_dead, setup, teardown),
      cmocka_unit_test_setup_teardown(lapsed_lease_is_requeued, setup, teardown),
      cmocka_unit_test_setup_teardown(heartbeats_extend_leases, setup, teardown),
      cmocka_unit_test_setup_teardown(ttl_ends_while_queued, setup, teardown),
      cmocka_unit_test_setup_teardown(silent_worker_goes_offline, setup, teardown),
      cmocka_unit_test_setup_teardown(cancel_queued_and_leased, setup, teardown),
      cmocka_unit_test_setup_teardown(unknown_worker_and_job, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("engine: its own index", tests, NULL, NULL);
  pick_from_store = true;
  failed += cmocka_run_group_tests_name("engine: leases picked by the store", tests, NULL, NULL);
  return failed;
}
