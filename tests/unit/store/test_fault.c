/* The fault-injecting store, and the engine's answer to a failing store:
 * the batch rolls back whole, every operation in it answers
 * PQ_ERR_STORE_FAILED, nothing is half-committed, and the engine goes on
 * once the store works again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "support/fixture.h"
#include "base/clock.h"
#include "base/ids.h"
#include "engine/coord.h"
#include "store/testing/fault.h"

typedef struct {
  char dir[64], url[200];
  pq_manual_clock clock;
  pq_coord *c;
  pq_store *store; /* the coordinator's fault store */
  char worker[PQ_UUID_LEN + 1];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/pqfault-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->url, sizeof f->url, "fault+sqlite://%s/f.db", f->dir);
  pq_manual_clock_init(&f->clock, pq_now_ms());
  pq_coord_config cfg = {.store_url = f->url, .clock = &f->clock.clock, .lease_timeout_ms = 1000};
  if (pq_coord_open(&cfg, &f->c) != PQ_OK) return -1;
  f->store = pq_coord_store(f->c);
  if (pq_test_register_worker(f->c, f->worker) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  pq_store_fault_release(f->store);
  pq_coord_close(f->c);
  int rc = pq_test_remove_dir(f->dir);
  free(f);
  return rc;
}

static pq_job *chat_job(void) {
  pq_job *j = pq_job_new();
  j->model = strdup("m");
  j->input = strdup("{\"prompt\":\"x\"}");
  return j;
}

static pq_err submit(fixture *f) {
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = chat_job()};
  pq_err e = pq_coord_call(f->c, &op);
  pq_op_release(&op);
  return e;
}

static int64_t count_jobs(fixture *f) {
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = -1;
  pq_job_filter all = {.state = -1, .limit = 100};
  assert_int_equal(pq_coord_list_jobs(f->c, &all, &jobs, &n, &total), PQ_OK);
  pq_job_free_array(jobs, n);
  return total;
}

static size_t lease(fixture *f, char id[PQ_UUID_LEN + 1], char token[64]) {
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = 8}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  size_t n = op.out.n_jobs;
  if (n && id) memcpy(id, op.out.jobs[0]->id, PQ_UUID_LEN + 1);
  if (n && token) snprintf(token, 64, "%s", op.out.jobs[0]->lease_token);
  pq_op_release(&op);
  return n;
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} done_count;

static void one_done(pq_op *op) {
  done_count *d = op->ud;
  pthread_mutex_lock(&d->mu);
  d->done++;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

/* A statement that fails: its operation answers STORE_FAILED and the store
 * is as it was. */
static void failed_statement_changes_nothing(void **state) {
  fixture *f = *state;
  pq_store_fault_arm(f->store, PQ_FAULT_STATEMENT, 1, PQ_FAULT_DISK_FULL, false);
  assert_int_equal(submit(f), PQ_ERR_STORE_FAILED);
  assert_int_equal(pq_store_fault_injected(f->store), 1);
  assert_int_equal(count_jobs(f), 0);
  assert_int_equal(submit(f), PQ_OK); /* disarmed after one */
  assert_int_equal(count_jobs(f), 1);
}

/* A commit that fails takes the whole batch with it: several operations
 * queued behind a busy writer run in one transaction, and every one of them
 * answers STORE_FAILED; none of their jobs exists, and the engine's index
 * holds none of them (a lease finds only what was committed). */
static void failed_commit_fails_the_whole_batch(void **state) {
  fixture *f = *state;
  assert_int_equal(submit(f), PQ_OK); /* one that stays */
  done_count d = {.done = 0};
  pthread_mutex_init(&d.mu, NULL);
  pthread_cond_init(&d.cv, NULL);
  pq_op first = {.kind = PQ_OP_SUBMIT, .in.submit.job = chat_job(), .done = one_done, .ud = &d};
  pq_op batch[3];
  pq_store_fault_hold(f->store);
  pq_coord_submit(f->c, &first);
  pq_store_fault_wait_held(f->store); /* the writer is inside first's transaction */
  for (int i = 0; i < 3; i++) {
    batch[i] = (pq_op){.kind = PQ_OP_SUBMIT, .in.submit.job = chat_job(), .done = one_done, .ud = &d};
    pq_coord_submit(f->c, &batch[i]); /* these queue up: the next batch */
  }
  pq_store_fault_arm(f->store, PQ_FAULT_COMMIT, 2, PQ_FAULT_IO_ERROR, false); /* first's commit passes, the batch's fails */
  pq_store_fault_release(f->store);
  pthread_mutex_lock(&d.mu);
  while (d.done < 4) pthread_cond_wait(&d.cv, &d.mu);
  pthread_mutex_unlock(&d.mu);
  assert_int_equal(first.out.result, PQ_OK);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(batch[i].out.result, PQ_ERR_STORE_FAILED);
    assert_null(batch[i].out.job); /* outputs released: nothing to show */
    pq_op_release(&batch[i]);
  }
  pq_op_release(&first);
  assert_int_equal(count_jobs(f), 2);
  assert_int_equal(lease(f, NULL, NULL), 2); /* exactly the committed two */
  assert_int_equal(lease(f, NULL, NULL), 0);
  assert_int_equal(submit(f), PQ_OK); /* and it goes on */
  assert_int_equal(lease(f, NULL, NULL), 1);
}

/* The reaper's store failure is the batch's: the lease is not half-settled
 * and the pass is not reported as done (it used to be swallowed). */
static void reaper_failure_is_not_hidden(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1];
  assert_int_equal(submit(f), PQ_OK);
  assert_int_equal(lease(f, id, NULL), 1);
  pq_manual_clock_advance(&f->clock, 1001); /* the lease lapsed */
  /* the pass: workers offline (1), spent challenges (2), due leases (3), then the lapsed job's update (4) */
  pq_store_fault_arm(f->store, PQ_FAULT_STATEMENT, 4, PQ_FAULT_IO_ERROR, false);
  pq_op reap = {.kind = PQ_OP_REAP};
  assert_int_equal(pq_coord_call(f->c, &reap), PQ_ERR_STORE_FAILED);
  pq_op_release(&reap);
  assert_int_equal(pq_store_fault_injected(f->store), 1);
  pq_job *j = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &j), PQ_OK);
  assert_int_equal(j->state, PQ_JOB_LEASED);
  assert_null(j->error_code);
  pq_job_free(j);
  pq_op again = {.kind = PQ_OP_REAP};
  assert_int_equal(pq_coord_call(f->c, &again), PQ_OK);
  assert_int_equal(again.out.reaped, 1);
  pq_op_release(&again);
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &j), PQ_OK);
  assert_int_equal(j->state, PQ_JOB_QUEUED);
  assert_string_equal(j->error_code, "LEASE_EXPIRED");
  pq_job_free(j);
}

/* Every kind of fault, on each statement of a job's life in turn (submit:
 * begin, insert; lease: begin, worker, job, update; complete: begin, job):
 * the operation hit answers STORE_FAILED, and the job is exactly where the
 * last successful operation left it. */
static void every_statement_of_a_job_can_fail(void **state) {
  fixture *f = *state;
  static const pq_fault_kind kinds[] = {PQ_FAULT_IO_ERROR, PQ_FAULT_DISK_FULL, PQ_FAULT_BUSY};
  for (int nth = 1; nth <= 8; nth++) {
    int64_t jobs_before = count_jobs(f);
    pq_store_fault_arm(f->store, PQ_FAULT_STATEMENT, nth, kinds[nth % 3], false);
    pq_op sub = {.kind = PQ_OP_SUBMIT, .in.submit.job = chat_job()};
    pq_err es = pq_coord_call(f->c, &sub), el = PQ_ERR_STALE, ec = PQ_ERR_STALE;
    char id[PQ_UUID_LEN + 1] = "";
    if (es == PQ_OK) memcpy(id, sub.out.job->id, sizeof id);
    pq_op_release(&sub);
    pq_op le = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = 1}};
    if (es == PQ_OK) el = pq_coord_call(f->c, &le);
    if (el == PQ_OK) {
      assert_int_equal(le.out.n_jobs, 1);
      pq_op done = {.kind = PQ_OP_COMPLETE,
                    .in.complete = {.job_id = id, .token = le.out.jobs[0]->lease_token, .output = "1"}};
      ec = pq_coord_call(f->c, &done);
      pq_op_release(&done);
    }
    pq_op_release(&le);
    pq_store_fault_disarm(f->store);
    assert_int_equal(pq_store_fault_injected(f->store), nth);
    /* exactly one operation failed, and only with STORE_FAILED */
    int failed = (es == PQ_ERR_STORE_FAILED) + (el == PQ_ERR_STORE_FAILED) + (ec == PQ_ERR_STORE_FAILED);
    assert_int_equal(failed, 1);
    assert_int_equal(count_jobs(f), jobs_before + (es == PQ_OK));
    if (es != PQ_OK) continue;
    pq_job *j = NULL;
    assert_int_equal(pq_coord_get_job(f->c, id, 0, &j), PQ_OK);
    assert_int_equal(j->state, el != PQ_OK ? PQ_JOB_QUEUED : PQ_JOB_LEASED);
    assert_int_equal(j->attempts, el == PQ_OK ? 1 : 0);
    pq_job_free(j);
    /* clear it for the next round */
    char lid[PQ_UUID_LEN + 1], ltoken[64];
    pq_manual_clock_advance(&f->clock, 1001);
    pq_op reap = {.kind = PQ_OP_REAP};
    assert_int_equal(pq_coord_call(f->c, &reap), PQ_OK);
    pq_op_release(&reap);
    pq_manual_clock_advance(&f->clock, 60000); /* past any retry backoff */
    pq_op promote = {.kind = PQ_OP_REAP};
    assert_int_equal(pq_coord_call(f->c, &promote), PQ_OK);
    pq_op_release(&promote);
    while (lease(f, lid, ltoken) > 0) {
      pq_op done = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = lid, .token = ltoken, .output = "1"}};
      assert_int_equal(pq_coord_call(f->c, &done), PQ_OK);
      pq_op_release(&done);
    }
  }
}

/* A store that cannot take writes (a full disk) is not ready, until a write
 * goes through again. */
static void failing_writes_make_it_unready(void **state) {
  fixture *f = *state;
  assert_true(pq_coord_ready(f->c));
  pq_store_fault_arm(f->store, PQ_FAULT_COMMIT, 1, PQ_FAULT_DISK_FULL, true);
  assert_int_equal(submit(f), PQ_ERR_STORE_FAILED);
  assert_false(pq_coord_ready(f->c)); /* reads still work; writes do not */
  assert_int_equal(submit(f), PQ_ERR_STORE_FAILED);
  assert_false(pq_coord_ready(f->c));
  pq_store_fault_disarm(f->store);
  assert_int_equal(submit(f), PQ_OK);
  assert_true(pq_coord_ready(f->c));
}

static void urls_are_checked(void **state) {
  (void)state;
  pq_store *s = NULL;
  pq_store_config cfg = {0};
  char why[300];
  assert_int_equal(pq_store_open("mysql://db/x", &cfg, &s, why, sizeof why), PQ_ERR_INVALID_REQUEST);
  assert_non_null(strstr(why, "no store backend for 'mysql://'"));
  assert_non_null(strstr(why, "sqlite://"));
  assert_int_equal(pq_store_open("/var/lib/x.db", &cfg, &s, why, sizeof why), PQ_ERR_INVALID_REQUEST);
  assert_non_null(strstr(why, "not a store URL"));
  assert_int_equal(pq_store_open("sqlite://", &cfg, &s, why, sizeof why), PQ_ERR_INVALID_REQUEST);
  assert_int_equal(pq_store_open("fault+nope://x", &cfg, &s, why, sizeof why), PQ_ERR_INVALID_REQUEST);
  assert_null(s);
}

int main(void) {
  pq_ids_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(urls_are_checked),
      cmocka_unit_test_setup_teardown(failed_statement_changes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(failed_commit_fails_the_whole_batch, setup, teardown),
      cmocka_unit_test_setup_teardown(reaper_failure_is_not_hidden, setup, teardown),
      cmocka_unit_test_setup_teardown(every_statement_of_a_job_can_fail, setup, teardown),
      cmocka_unit_test_setup_teardown(failing_writes_make_it_unready, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
