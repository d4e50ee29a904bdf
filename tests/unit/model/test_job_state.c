#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "model/job.h"

#define Q PQ_JOB_QUEUED
#define L PQ_JOB_LEASED

/* The whole matrix, written out: what may follow what. */
static const bool allowed[PQ_JOB__STATE_COUNT][PQ_JOB__STATE_COUNT] = {
    /*              queued leased completed failed cancelled dead expired */
    [PQ_JOB_QUEUED] = {0, 1, 0, 0, 1, 0, 1},
    [PQ_JOB_LEASED] = {1, 0, 1, 1, 1, 1, 0},
};

static void matrix(void **state) {
  (void)state;
  for (int from = 0; from < PQ_JOB__STATE_COUNT; from++)
    for (int to = 0; to < PQ_JOB__STATE_COUNT; to++)
      if (pq_job_transition_allowed((pq_job_state)from, (pq_job_state)to) != allowed[from][to])
        fail_msg("%s -> %s: expected %s", pq_job_state_name((pq_job_state)from),
                 pq_job_state_name((pq_job_state)to), allowed[from][to] ? "allowed" : "refused");
}

static void terminal_states_are_final(void **state) {
  (void)state;
  for (int s = 0; s < PQ_JOB__STATE_COUNT; s++) {
    bool terminal = s != Q && s != L;
    assert_int_equal(pq_job_state_terminal((pq_job_state)s), terminal);
    if (!terminal) continue;
    for (int to = 0; to < PQ_JOB__STATE_COUNT; to++)
      assert_false(pq_job_transition_allowed((pq_job_state)s, (pq_job_state)to));
  }
}

static void names_round_trip(void **state) {
  (void)state;
  for (int s = 0; s < PQ_JOB__STATE_COUNT; s++)
    assert_int_equal(pq_job_state_parse(pq_job_state_name((pq_job_state)s)), s);
  assert_int_equal(pq_job_state_parse("running"), -1);
  assert_int_equal(pq_job_state_parse(NULL), -1);
  assert_string_equal(pq_job_state_name((pq_job_state)99), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matrix),
      cmocka_unit_test(terminal_states_are_final),
      cmocka_unit_test(names_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
