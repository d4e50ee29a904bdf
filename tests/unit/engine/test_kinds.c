/* Job kinds: the registry, validation by kind, and the on-terminal hook
 * that transition() runs inside the job's own transaction. A toy kind is
 * registered here the way a new kind file would register itself. */
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
#include "base/ids.h"
#include "engine/coord.h"
#include "engine/kind.h"

/* ---- the toy kind: {"n": integer}; counts its endings; can be told to fail ---- */

static int endings;
static pq_job_state last_end;
static char last_id[PQ_UUID_LEN + 1];
static bool hook_fails;

static pq_err toy_validate(json_t *input, pq_jerr *why) {
  int64_t n = 0;
  return pq_jcheck_int(why, input, "n", true, 0, 10, &n);
}

static pq_err toy_on_terminal(pq_kind_ctx *ctx, const pq_job *job) {
  (void)ctx;
  if (hook_fails) return PQ_ERR_INVALID_STATE; /* any error: the batch must roll back */
  endings++;
  last_end = job->state;
  memcpy(last_id, job->id, sizeof last_id);
  return PQ_OK;
}

static json_t *toy_worker_input(const pq_job *job, const json_t *input) {
  (void)job;
  return json_pack("{s:O,s:b}", "n", json_object_get(input, "n"), "toy", 1);
}

static const pq_job_kind toy = {
    .name = "toy", .validate = toy_validate, .worker_input = toy_worker_input, .on_terminal = toy_on_terminal};

/* ---- fixture ---- */

typedef struct {
  char dir[64], url[180];
  pq_manual_clock clock;
  pq_coord *c;
  char worker[PQ_UUID_LEN + 1];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.max_attempts = 1};
  if (pq_test_open_engine(f->dir, f->url, "sqlite", &f->clock, &cfg, &f->c)) return -1;
  if (pq_test_register_worker(f->c, f->worker) != 0) return -1;
  endings = 0;
  hook_fails = false;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_close_engine(f->c, f->dir);
  free(f);
  return rc;
}

static void submit_toy(fixture *f, char id[PQ_UUID_LEN + 1]) {
  pq_job *j = pq_job_new();
  j->kind = strdup("toy");
  j->model = strdup("m");
  j->input = strdup("{\"n\":3}");
  pq_op op = {.kind = PQ_OP_SUBMIT, .in.submit.job = j};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  memcpy(id, op.out.job->id, PQ_UUID_LEN + 1);
  pq_op_release(&op);
}

static void lease_one(fixture *f, char token[64]) {
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = f->worker, .max_jobs = 1}};
  assert_int_equal(pq_coord_call(f->c, &op), PQ_OK);
  assert_int_equal(op.out.n_jobs, 1);
  assert_string_equal(op.out.jobs[0]->kind, "toy");
  snprintf(token, 64, "%s", op.out.jobs[0]->lease_token);
  pq_op_release(&op);
}

static pq_job_state state_of(fixture *f, const char *id) {
  pq_job *j = NULL;
  assert_int_equal(pq_coord_get_job(f->c, id, 0, &j), PQ_OK);
  pq_job_state s = j->state;
  pq_job_free(j);
  return s;
}

/* ---- tests ---- */

static void registry_finds_kinds(void **state) {
  (void)state;
  assert_string_equal(pq_job_kind_find(NULL)->name, "chat");
  assert_string_equal(pq_job_kind_find("embedding")->name, "embedding");
  assert_ptr_equal(pq_job_kind_find("toy"), &toy);
  assert_null(pq_job_kind_find("nonsense"));
  assert_int_equal(pq_job_kind_register(&toy), -1); /* one per name */
  pq_job j = {.kind = NULL};
  assert_string_equal(pq_job_kind_of(&j)->name, "chat");
}

static void validation_is_the_kinds(void **state) {
  (void)state;
  pq_jerr why = {0};
  json_t *ok = json_pack("{s:i}", "n", 3), *bad = json_pack("{s:i}", "n", 11);
  assert_int_equal(toy.validate(ok, &why), PQ_OK);
  assert_int_equal(toy.validate(bad, &why), PQ_ERR_INVALID_REQUEST);
  assert_string_equal(why.message, "'n' must be between 0 and 10");
  pq_jerr_clear(&why);
  /* the built-in kinds: a chat needs something to say; an embedding keeps only its texts */
  const pq_job_kind *chat = pq_job_kind_find("chat"), *emb = pq_job_kind_find("embedding");
  json_t *empty = json_object(), *texts = json_pack("{s:[s,s],s:{}}", "embeddings", "a", "b", "params");
  assert_int_equal(chat->validate(empty, &why), PQ_ERR_INVALID_REQUEST);
  assert_non_null(strstr(why.message, "'prompt', 'messages'"));
  pq_jerr_clear(&why);
  assert_int_equal(emb->validate(texts, &why), PQ_OK);
  assert_null(json_object_get(texts, "params"));
  assert_int_equal(json_array_size(json_object_get(texts, "embeddings")), 2);
  json_decref(ok);
  json_decref(bad);
  json_decref(empty);
  json_decref(texts);
}

static void hook_runs_once_per_ending(void **state) {
  fixture *f = *state;
  char a[PQ_UUID_LEN + 1], b[PQ_UUID_LEN + 1], token[64];
  submit_toy(f, a);
  lease_one(f, token);
  assert_int_equal(endings, 0); /* leasing is no ending */
  pq_op done = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = a, .token = token, .output = "3"}};
  assert_int_equal(pq_coord_call(f->c, &done), PQ_OK);
  pq_op_release(&done);
  assert_int_equal(endings, 1);
  assert_int_equal(last_end, PQ_JOB_COMPLETED);
  assert_string_equal(last_id, a);
  submit_toy(f, b); /* cancelled while queued: an ending too */
  pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = b};
  assert_int_equal(pq_coord_call(f->c, &cancel), PQ_OK);
  pq_op_release(&cancel);
  assert_int_equal(endings, 2);
  assert_int_equal(last_end, PQ_JOB_CANCELLED);
  /* a lapsed lease with no attempts left ends it as dead, through the reaper */
  char c[PQ_UUID_LEN + 1];
  submit_toy(f, c);
  lease_one(f, token);
  pq_manual_clock_advance(&f->clock, 60001);
  pq_op reap = {.kind = PQ_OP_REAP};
  assert_int_equal(pq_coord_call(f->c, &reap), PQ_OK);
  pq_op_release(&reap);
  assert_int_equal(endings, 3);
  assert_int_equal(last_end, PQ_JOB_DEAD);
  assert_string_equal(last_id, c);
}

static void failing_hook_rolls_the_batch_back(void **state) {
  fixture *f = *state;
  char a[PQ_UUID_LEN + 1], token[64];
  submit_toy(f, a);
  lease_one(f, token);
  hook_fails = true;
  pq_op done = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = a, .token = token, .output = "3"}};
  assert_int_equal(pq_coord_call(f->c, &done), PQ_ERR_STORE_FAILED);
  pq_op_release(&done);
  assert_int_equal(state_of(f, a), PQ_JOB_LEASED); /* nothing of it was committed */
  hook_fails = false;
  pq_op again = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = a, .token = token, .output = "3"}};
  assert_int_equal(pq_coord_call(f->c, &again), PQ_OK); /* the same lease still holds */
  pq_op_release(&again);
  assert_int_equal(state_of(f, a), PQ_JOB_COMPLETED);
  assert_int_equal(endings, 1);
}

int main(void) {
  pq_ids_init();
  if (pq_job_kind_register(&toy) != 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(registry_finds_kinds),
      cmocka_unit_test(validation_is_the_kinds),
      cmocka_unit_test_setup_teardown(hook_runs_once_per_ending, setup, teardown),
      cmocka_unit_test_setup_teardown(failing_hook_rolls_the_batch_back, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
