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
  char models[PQ_THROUGHPUT_MODELS + 1][64];
  uint32_t jobs[PQ_THROUGHPUT_MODELS + 1][PQ_THROUGHPUT_BUCKETS];
  uint64_t tokens[PQ_THROUGHPUT_MODELS + 1][PQ_THROUGHPUT_BUCKETS];
  size_t n;
} seen;

static void collect(void *ctx, const char *model, const uint32_t *jobs, const uint64_t *tokens) {
  seen *s = ctx;
  assert_true(s->n <= PQ_THROUGHPUT_MODELS);
  snprintf(s->models[s->n], sizeof s->models[s->n], "%s", model);
  memcpy(s->jobs[s->n], jobs, sizeof s->jobs[s->n]);
  memcpy(s->tokens[s->n], tokens, sizeof s->tokens[s->n]);
  s->n++;
}

static int64_t sum(const uint32_t *v) {
  int64_t total = 0;
  for (size_t i = 0; i < PQ_THROUGHPUT_BUCKETS; i++) total += v[i];
  return total;
}

static void ended_jobs_land_in_their_bucket_per_model(void **state) {
  fixture *f = *state;
  pq__throughput *t = f->coord->throughput;
  int64_t now = now_ms(f);
  pq__throughput_add(t, now, "llama", 10);
  pq__throughput_add(t, now, "llama", 5);
  pq__throughput_add(t, now - 25000, "llama", 7); /* two buckets and a half ago */
  pq__throughput_add(t, now, "qwen", 1);
  seen s = {0};
  int64_t first;
  pq_coord_throughput(f->coord, &first, collect, &s);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.models[0], "llama");
  size_t last = PQ_THROUGHPUT_BUCKETS - 1;
  assert_int_equal(s.jobs[0][last], 2);
  assert_int_equal(s.tokens[0][last], 15);
  assert_int_equal(s.jobs[0][last - 2] + s.jobs[0][last - 3], 1); /* 25 s ago: the bucket before last but one, or the one before */
  assert_int_equal(s.jobs[1][last], 1);
  assert_true(first <= now && now < first + PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS);
  assert_true(now - first >= (PQ_THROUGHPUT_BUCKETS - 1) * PQ_THROUGHPUT_BUCKET_MS);
}

static void an_hour_later_the_old_buckets_are_empty(void **state) {
  fixture *f = *state;
  pq__throughput *t = f->coord->throughput;
  pq__throughput_add(t, now_ms(f), "llama", 3);
  pq_manual_clock_advance(&f->clock, (int64_t)PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS / 2);
  seen s = {0};
  int64_t first;
  pq_coord_throughput(f->coord, &first, collect, &s);
  assert_int_equal(sum(s.jobs[0]), 1); /* half an hour later: still in the chart */
  pq_manual_clock_advance(&f->clock, (int64_t)PQ_THROUGHPUT_BUCKETS * PQ_THROUGHPUT_BUCKET_MS / 2);
  memset(&s, 0, sizeof s);
  pq_coord_throughput(f->coord, &first, collect, &s);
  assert_int_equal(sum(s.jobs[0]), 0); /* an hour later: gone */
  pq__throughput_add(t, now_ms(f), "llama", 1);
  memset(&s, 0, sizeof s);
  pq_coord_throughput(f->coord, &first, collect, &s);
  assert_int_equal(sum(s.jobs[0]), 1);
}

static void models_past_the_limit_count_as_other(void **state) {
  fixture *f = *state;
  pq__throughput *t = f->coord->throughput;
  int64_t now = now_ms(f);
  for (int i = 0; i < 40; i++) {
    char model[16];
    snprintf(model, sizeof model, "m%d", i);
    pq__throughput_add(t, now, model, 1);
  }
  seen s = {0};
  int64_t first;
  pq_coord_throughput(f->coord, &first, collect, &s);
  assert_int_equal(s.n, PQ_THROUGHPUT_MODELS);
  assert_string_equal(s.models[PQ_THROUGHPUT_MODELS - 1], "(other)");
  assert_int_equal(s.jobs[PQ_THROUGHPUT_MODELS - 1][PQ_THROUGHPUT_BUCKETS - 1], 40 - (PQ_THROUGHPUT_MODELS - 1));
}

/* The writer counts a job as it ends, with its tokens, under its model. */
static void the_writer_counts_ended_jobs(void **state) {
  fixture *f = *state;
  pq_job *j = pq_job_new();
  j->model = strdup("m");
  j->input = strdup("{\"prompt\":\"x\"}");
  pq_op submit = {.kind = PQ_OP_SUBMIT, .in.submit.job = j};
  assert_int_equal(pq_coord_call(f->coord, &submit), PQ_OK);
  pq_op_release(&submit);
  pq_job *leased = NULL;
  assert_int_equal(pq_test_lease(f->coord, f->worker, &leased, 1), 1);
  pq_op done = {.kind = PQ_OP_COMPLETE, .in.complete = {.job_id = leased->id, .token = leased->lease_token,
                                                         .output = "\"ok\"", .completion_tokens = 4}};
  assert_int_equal(pq_coord_call(f->coord, &done), PQ_OK);
  pq_op_release(&done);
  pq_job_free(leased);
  seen s = {0};
  int64_t first;
  pq_coord_throughput(f->coord, &first, collect, &s);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.models[0], "m");
  assert_int_equal(sum(s.jobs[0]), 1);
  assert_int_equal(s.tokens[0][PQ_THROUGHPUT_BUCKETS - 1], 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ended_jobs_land_in_their_bucket_per_model, setup, teardown),
      cmocka_unit_test_setup_teardown(an_hour_later_the_old_buckets_are_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(models_past_the_limit_count_as_other, setup, teardown),
      cmocka_unit_test_setup_teardown(the_writer_counts_ended_jobs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
