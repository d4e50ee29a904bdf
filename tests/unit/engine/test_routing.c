/* Routing in the engine, on both lease paths (the index, and the store's
 * pick): a job goes only to a worker that meets its requirements; an
 * alias's job runs as its worker's model; a requirement class whose jobs are
 * all gone is reclaimed, so distinct requirement sets never run out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/internal.h"
#include "support/fixture.h"

typedef struct {
  char dir[64], url[180], plain[PQ_UUID_LEN + 1], gpu[PQ_UUID_LEN + 1];
  pq_manual_clock clock;
  pq_coord *coord;
} fixture;

static const char *const targets[] = {"m"};
static const struct pq_model_alias alias = {.name = "public", .targets = targets, .n_targets = 1};

static void add_worker(pq_coord *c, const char *caps, char id[PQ_UUID_LEN + 1]) {
  pq_worker w = {.name = "w", .models = "[\"m\"]", .capabilities = (char *)caps};
  pq_op op = {.kind = PQ_OP_REGISTER, .in.reg.worker = &w};
  assert_int_equal(pq_coord_call(c, &op), PQ_OK);
  memcpy(id, w.id, PQ_UUID_LEN + 1);
}

static int open_with(void **state, bool from_store) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.lease_timeout_ms = 60000, .worker_timeout_ms = 3600000, .pick_from_store = from_store,
                         .aliases = &alias, .n_aliases = 1};
  if (!f || pq_test_open_engine(f->dir, f->url, "sqlite", &f->clock, &cfg, &f->coord) != 0) return -1;
  add_worker(f->coord, "{}", f->plain);
  add_worker(f->coord, "{\"context_length\":65536,\"labels\":{\"gpu\":\"h100\"}}", f->gpu);
  *state = f;
  return 0;
}
static int setup_index(void **state) { return open_with(state, false); }
static int setup_store(void **state) { return open_with(state, true); }

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_close_engine(f->coord, f->dir);
  free(f);
  return rc;
}

static pq_err submit(fixture *f, const char *model, const char *requirements, char id[PQ_UUID_LEN + 1]) {
  pq_job *job = pq_job_new();
  job->model = strdup(model);
  job->input = strdup("{\"prompt\":\"hi\"}");
  job->requirements = requirements ? strdup(requirements) : NULL;
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = job};
  pq_err result = pq_coord_call(f->coord, &op);
  if (result == PQ_OK && id) memcpy(id, op.out.job->id, PQ_UUID_LEN + 1);
  pq_op_release(&op);
  return result;
}

/* Leases one job for worker: its id (and model) or "" when none. */
static void lease(fixture *f, const char *worker, char id[PQ_UUID_LEN + 1], char model[32]) {
  pq_job *jobs[1];
  int n = pq_test_lease(f->coord, worker, jobs, 1);
  assert_true(n >= 0);
  id[0] = '\0';
  if (n == 1) {
    memcpy(id, jobs[0]->id, PQ_UUID_LEN + 1);
    if (model) snprintf(model, 32, "%s", jobs[0]->model);
    pq_job_free(jobs[0]);
  }
}

static void only_a_worker_that_meets_it(void **state) {
  fixture *f = *state;
  char needy[PQ_UUID_LEN + 1], plain[PQ_UUID_LEN + 1], got[PQ_UUID_LEN + 1];
  assert_int_equal(submit(f, "m", "{\"labels\":{\"gpu\":\"h100\"},\"min_context\":32768}", needy), PQ_OK);
  assert_int_equal(submit(f, "m", NULL, plain), PQ_OK);
  lease(f, f->plain, got, NULL);
  assert_string_equal(got, plain);
  lease(f, f->plain, got, NULL);
  assert_string_equal(got, ""); /* the other is not for it */
  lease(f, f->gpu, got, NULL);
  assert_string_equal(got, needy);
}

static void an_alias_runs_as_the_workers_model(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1], got[PQ_UUID_LEN + 1], model[32];
  assert_int_equal(submit(f, "public", NULL, id), PQ_OK);
  lease(f, f->plain, got, model);
  assert_string_equal(got, id);
  assert_string_equal(model, "m");
  pq_job *stored = NULL;
  assert_int_equal(pq_coord_get_job(f->coord, id, 0, &stored), PQ_OK);
  assert_string_equal(stored->model, "public"); /* its client's name stays */
  pq_job_free(stored);
}

static void classes_without_jobs_are_reclaimed(void **state) {
  fixture *f = *state;
  char id[PQ_UUID_LEN + 1], req[96];
  for (int i = 1; i <= 1100; i++) { /* more distinct requirement sets than the index holds at once */
    snprintf(req, sizeof req, "{\"min_context\":%d}", i);
    assert_int_equal(submit(f, "m", req, id), PQ_OK);
    pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = id};
    assert_int_equal(pq_coord_call(f->coord, &cancel), PQ_OK);
    pq_op_release(&cancel);
  }
  char got[PQ_UUID_LEN + 1];
  assert_int_equal(submit(f, "m", "{\"labels\":{\"gpu\":\"h100\"}}", id), PQ_OK);
  lease(f, f->gpu, got, NULL);
  assert_string_equal(got, id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(only_a_worker_that_meets_it, setup_index, teardown),
      cmocka_unit_test_setup_teardown(only_a_worker_that_meets_it, setup_store, teardown),
      cmocka_unit_test_setup_teardown(an_alias_runs_as_the_workers_model, setup_index, teardown),
      cmocka_unit_test_setup_teardown(an_alias_runs_as_the_workers_model, setup_store, teardown),
      cmocka_unit_test_setup_teardown(classes_without_jobs_are_reclaimed, setup_index, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
