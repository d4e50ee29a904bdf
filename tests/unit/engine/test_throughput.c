/* The hour of throughput the dashboard charts: buckets by time, models
 * apart, old buckets cleared as time comes round, and no more than
 * PQ_THROUGHPUT_MODELS rows however many models are named. */
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
  char dir[64], url[180], worker[PQ_UUID_LEN + 1];
  pq_manual_clock clock;
  pq_coord *coord;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  pq_coord_config cfg = {.lease_timeout_ms = 60000, .worker_timeout_ms = 3600000};
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

static int64_t now_ms(fixture *f) { return pq_clock_wall(&f->clock.clock); }

typedef struct {
  pq_throughput_row rows[PQ_THROUGHPUT_MODELS];
  size_t n;
  int64_t first;
} seen;

static void look(fixture *f, seen *s) { s->n = pq_coord_throughput(f->coord, &s->first, s->rows, PQ_THROUGHPUT_MODELS); }

static int64_t sum(const uint32_t *v) {
  int64_t total = 0;
  for (size_t i = 0; i < PQ_THROUGHPUT_BUCKETS; i++) total += v[i];
  return total;
}

#define LAST (PQ_THROUGHPUT_BUCKETS - 1)

static void ended_jobs_land_in_their_bucket_per_model(void **state) {
  fixture *f = *state;
  pq__throughput *t = f->coord->throughput;
  int64_t now = now_ms(f);
  pq__throughput_add(t, now, "llama", 10);
  pq__throughput_add(t, now, "llama", 5);
  pq__throughput_add(t, now - 25000, "llama", 7); /* a clock behind: counted in the newest bucket */
  pq__throughput_add(t, now, "qwen", 1);
  static seen s;
  look(f, &s);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.rows[0].model, "llama");
  assert_int_equal(s.rows[0].jobs[LAST], 3);
  assert_int_equal(s.rows[0].tokens[LAST], 22);
  assert_string_equal(s.rows[1].model, "qwen");
  assert_int_equal(s.rows[1].jobs[LAST], 1);
  assert_true(s.first <= now && now < s.first + PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS);
  assert_true(now - s.first >= LAST * PQ_THROUGHPUT_BUCKET_MS);
  /* ten seconds on: a new bucket; the old counts move one to the left */
  pq_manual_clock_advance(&f->clock, PQ_THROUGHPUT_BUCKET_MS);
  pq__throughput_add(t, now_ms(f), "llama", 1);
  look(f, &s);
  assert_int_equal(s.rows[0].jobs[LAST], 1);
  assert_int_equal(s.rows[0].jobs[LAST - 1], 3);
}

static void an_hour_later_the_old_buckets_are_empty(void **state) {
  fixture *f = *state;
  pq__throughput *t = f->coord->throughput;
  pq__throughput_add(t, now_ms(f), "llama", 3);
  pq_manual_clock_advance(&f->clock, (int64_t)PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS / 2);
  static seen s;
  look(f, &s);
  assert_int_equal(sum(s.rows[0].jobs), 1); /* half an hour later: still in the chart */
  pq_manual_clock_advance(&f->clock, (int64_t)PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS / 2);
  look(f, &s);
  assert_int_equal(sum(s.rows[0].jobs), 0); /* an hour later: gone */
  pq__throughput_add(t, now_ms(f), "llama", 1);
  look(f, &s);
  assert_int_equal(sum(s.rows[0].jobs), 1);
}

static void models_past_the_limit_count_as_other_and_idle_rows_are_given_back(void **state) {
  fixture *f = *state;
  pq__throughput *t = f->coord->throughput;
  int64_t now = now_ms(f);
  char long_name[PQ_THROUGHPUT_MODEL_LEN + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  for (int i = 0; i < 40; i++) {
    char model[16];
    snprintf(model, sizeof model, "m%d", i);
    pq__throughput_add(t, now, model, 1);
  }
  pq__throughput_add(t, now, long_name, 1); /* too long for a row of its own */
  static seen s;
  look(f, &s);
  assert_int_equal(s.n, PQ_THROUGHPUT_MODELS);
  assert_string_equal(s.rows[PQ_THROUGHPUT_MODELS - 1].model, "(other)");
  assert_int_equal(s.rows[PQ_THROUGHPUT_MODELS - 1].jobs[LAST], 40 - (PQ_THROUGHPUT_MODELS - 1) + 1);
  /* an hour without a job: their rows go to the next models named */
  pq_manual_clock_advance(&f->clock, (int64_t)PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS);
  pq__throughput_add(t, now_ms(f), "newcomer", 2);
  look(f, &s);
  assert_string_equal(s.rows[0].model, "newcomer");
  assert_int_equal(s.rows[0].jobs[LAST], 1);
}

/* The writer counts a job once its end commits, with its tokens, under its
 * model when a live worker serves it (else "(other)": nobody puts names on
 * the chart by submitting to made-up models). */
static void the_writer_counts_ended_jobs_after_commit(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 2; i++) {
    pq_job *j = pq_job_new();
    j->model = strdup(i ? "made-up" : "m");
    j->input = strdup("{\"prompt\":\"x\"}");
    pq_op submit = {.kind = PQ_OP_SUBMIT, .in.submit.job = j};
    assert_int_equal(pq_coord_call(f->coord, &submit), PQ_OK);
    if (i) {
      pq_op cancel = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = submit.out.job->id};
      assert_int_equal(pq_coord_call(f->coord, &cancel), PQ_OK);
      pq_op_release(&cancel);
    }
    pq_op_release(&submit);
  }
  pq_job *leased = NULL;
  assert_int_equal(pq_test_lease(f->coord, f->worker, &leased, 1), 1);
  pq_op done = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = leased->id, .token = leased->lease_token,
                                                         .output = "\"ok\"", .completion_tokens = 4}};
  assert_int_equal(pq_coord_call(f->coord, &done), PQ_OK);
  pq_op_release(&done);
  pq_job_free(leased);
  static seen s;
  look(f, &s);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.rows[0].model, "m");
  assert_int_equal(sum(s.rows[0].jobs), 1);
  assert_int_equal(s.rows[0].tokens[LAST], 4);
  assert_string_equal(s.rows[1].model, "(other)"); /* the cancelled made-up one */
  assert_int_equal(sum(s.rows[1].jobs), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ended_jobs_land_in_their_bucket_per_model, setup, teardown),
      cmocka_unit_test_setup_teardown(an_hour_later_the_old_buckets_are_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(models_past_the_limit_count_as_other_and_idle_rows_are_given_back, setup, teardown),
      cmocka_unit_test_setup_teardown(the_writer_counts_ended_jobs_after_commit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
