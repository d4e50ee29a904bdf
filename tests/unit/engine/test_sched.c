#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "engine/sched.h"

static int64_t pop_number(pq_sched *s, const char *model) {
  pq_sched_item it;
  const char *models[] = {model};
  if (!pq_sched_pop(s, model ? models : NULL, model ? 1 : 0, &it)) return -1;
  return it.number;
}

static void priority_then_oldest(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "m", 5, 0, 0, 0);
  pq_sched_push(s, "m", 3, 0, 0, 0);
  pq_sched_push(s, "m", 9, 7, 0, 0);
  pq_sched_push(s, "m", 4, -1, 0, 0);
  pq_sched_push(s, "m", 8, 7, 0, 0);
  int64_t expect[] = {8, 9, 3, 5, 4};
  for (size_t i = 0; i < 5; i++) assert_int_equal(pop_number(s, "m"), expect[i]);
  assert_int_equal(pop_number(s, "m"), -1);
  pq_sched_free(s);
}

static void models_are_separate(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "a", 1, 0, 0, 0);
  pq_sched_push(s, "b", 2, 5, 0, 0);
  assert_int_equal(pop_number(s, "c"), -1);
  assert_int_equal(pq_sched_ready(s, "a"), 1);
  assert_int_equal(pop_number(s, "a"), 1);
  assert_int_equal(pop_number(s, "a"), -1);
  assert_int_equal(pq_sched_ready(s, NULL), 1);
  assert_int_equal(pop_number(s, NULL), 2); /* any model */
  pq_sched_free(s);
}

static void best_across_several_models(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "a", 10, 0, 0, 0);
  pq_sched_push(s, "b", 11, 1, 0, 0);
  pq_sched_push(s, "c", 1, 9, 0, 0);
  const char *ab[] = {"a", "b"};
  pq_sched_item it;
  assert_int_equal(pq_sched_pop(s, ab, 2, &it), 1);
  assert_int_equal(it.number, 11);
  assert_string_equal(pq_sched_model_name(s, it.model), "b");
  assert_int_equal(pq_sched_pop(s, ab, 2, &it), 1);
  assert_int_equal(it.number, 10);
  assert_int_equal(pq_sched_pop(s, ab, 2, &it), 0);
  pq_sched_free(s);
}

static void delayed_jobs_wait_their_turn(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "m", 1, 0, 5000, 1000); /* not before t=5000 */
  pq_sched_push(s, "m", 2, 0, 3000, 1000);
  assert_int_equal(pop_number(s, "m"), -1);
  assert_int_equal(pq_sched_next_due(s), 3000);
  assert_int_equal(pq_sched_total(s), 2);
  assert_int_equal(pq_sched_promote(s, 2999), 0);
  assert_int_equal(pq_sched_promote(s, 3000), 1);
  assert_int_equal(pop_number(s, "m"), 2);
  assert_int_equal(pq_sched_promote(s, 10000), 1);
  assert_int_equal(pq_sched_next_due(s), INT64_MAX);
  assert_int_equal(pop_number(s, "m"), 1);
  pq_sched_free(s);
}

static void many_random_jobs_come_out_sorted(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  srand(7);
  for (int64_t n = 1; n <= 20000; n++) pq_sched_push(s, "m", n, rand() % 5, 0, 0);
  pq_sched_item prev = {0}, it;
  for (int i = 0; i < 20000; i++) {
    assert_int_equal(pq_sched_pop(s, NULL, 0, &it), 1);
    if (i > 0) assert_true(prev.priority > it.priority ||
                           (prev.priority == it.priority && prev.number < it.number));
    prev = it;
  }
  assert_int_equal(pq_sched_total(s), 0);
  pq_sched_clear(s);
  pq_sched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(priority_then_oldest),
      cmocka_unit_test(models_are_separate),
      cmocka_unit_test(best_across_several_models),
      cmocka_unit_test(delayed_jobs_wait_their_turn),
      cmocka_unit_test(many_random_jobs_come_out_sorted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
