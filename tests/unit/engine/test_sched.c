#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/sched.h"

static int64_t pop_number(pq_sched *s, const char *model) {
  pq_sched_item it;
  const char *models[] = {model};
  if (!pq_sched_pop(s, model ? models : NULL, model ? 1 : 0, NULL, NULL, &it)) return -1;
  pq_sched_charge(s, &it);
  return it.number;
}

static void priority_then_oldest(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "m", "", 5, 0, 0, 0);
  pq_sched_push(s, "m", "", 3, 0, 0, 0);
  pq_sched_push(s, "m", "", 9, 7, 0, 0);
  pq_sched_push(s, "m", "", 4, -1, 0, 0);
  pq_sched_push(s, "m", "", 8, 7, 0, 0);
  int64_t expect[] = {8, 9, 3, 5, 4};
  for (size_t i = 0; i < 5; i++) assert_int_equal(pop_number(s, "m"), expect[i]);
  assert_int_equal(pop_number(s, "m"), -1);
  pq_sched_free(s);
}

static void models_are_separate(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "a", "", 1, 0, 0, 0);
  pq_sched_push(s, "b", "", 2, 5, 0, 0);
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
  pq_sched_push(s, "a", "", 10, 0, 0, 0);
  pq_sched_push(s, "b", "", 11, 1, 0, 0);
  pq_sched_push(s, "c", "", 1, 9, 0, 0);
  const char *ab[] = {"a", "b"};
  pq_sched_item it;
  assert_int_equal(pq_sched_pop(s, ab, 2, NULL, NULL, &it), 1);
  assert_int_equal(it.number, 11);
  assert_string_equal(pq_sched_model_name(s, it.model), "b");
  assert_int_equal(pq_sched_pop(s, ab, 2, NULL, NULL, &it), 1);
  assert_int_equal(it.number, 10);
  assert_int_equal(pq_sched_pop(s, ab, 2, NULL, NULL, &it), 0);
  pq_sched_free(s);
}

static void delayed_jobs_wait_their_turn(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "m", "", 1, 0, 5000, 1000); /* not before t=5000 */
  pq_sched_push(s, "m", "", 2, 0, 3000, 1000);
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
  for (int64_t n = 1; n <= 20000; n++) pq_sched_push(s, "m", "", n, rand() % 5, 0, 0);
  pq_sched_item prev = {0}, it;
  for (int i = 0; i < 20000; i++) {
    assert_int_equal(pq_sched_pop(s, NULL, 0, NULL, NULL, &it), 1);
    if (i > 0) assert_true(prev.priority > it.priority ||
                           (prev.priority == it.priority && prev.number < it.number));
    prev = it;
  }
  assert_int_equal(pq_sched_total(s), 0);
  pq_sched_clear(s);
  pq_sched_free(s);
}


/* ---- fairness between owners ---- */

static const char *pop_owner(pq_sched *s, const char *model, pq_sched_may_fn may, void *ctx) {
  const char *models[] = {model};
  pq_sched_item it;
  if (!pq_sched_pop(s, models, 1, may, ctx, &it)) return NULL;
  pq_sched_charge(s, &it);
  return pq_sched_owner_name(s, it.owner);
}

/* The promise: A holds 10,000 queued jobs, B submits one; B's is
 * leased within the next k leases, k the owners with queued work. */
static void one_job_is_not_stuck_behind_a_backlog(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  for (int64_t n = 1; n <= 10000; n++) pq_sched_push(s, "m", "A", n, 0, 0, 0);
  assert_string_equal(pop_owner(s, "m", NULL, NULL), "A"); /* A is alone: its turn */
  pq_sched_push(s, "m", "B", 10001, 0, 0, 0);
  int k = 2, taken = 0;
  const char *who = NULL;
  while (taken < k && (who = pop_owner(s, "m", NULL, NULL)) && strcmp(who, "B") != 0) taken++;
  assert_string_equal(who, "B");
  assert_true(taken < k);
  /* and with three owners: each gets a turn in every round of three */
  pq_sched_push(s, "m", "C", 10002, 0, 0, 0);
  pq_sched_push(s, "m", "C", 10003, 0, 0, 0);
  pq_sched_push(s, "m", "B", 10004, 0, 0, 0);
  char seen[8] = "";
  for (int i = 0; i < 6; i++) strncat(seen, pop_owner(s, "m", NULL, NULL), 1);
  assert_string_equal(seen, "ACBACA"); /* C joined after B: B's next job waits its turn */
  assert_int_equal(pq_sched_ready(s, "m"), 10004 - 9);
  pq_sched_free(s);
}

/* Within one owner priority and age still decide; between owners, turns. */
static void priority_orders_an_owners_own_jobs(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "m", "A", 1, 0, 0, 0);
  pq_sched_push(s, "m", "A", 2, 9, 0, 0);
  pq_sched_push(s, "m", "B", 3, -5, 0, 0);
  pq_sched_push(s, "m", "B", 4, 0, 0, 0);
  assert_int_equal(pop_number(s, "m"), 2); /* A's turn: its urgent one first */
  assert_int_equal(pop_number(s, "m"), 4); /* B's turn: its best */
  assert_int_equal(pop_number(s, "m"), 1);
  assert_int_equal(pop_number(s, "m"), 3);
  assert_int_equal(pop_number(s, "m"), -1);
  pq_sched_free(s);
}

static void weights_lengthen_turns(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  assert_int_equal(pq_sched_set_weight(s, "A", 3), 0);
  for (int64_t n = 1; n <= 100; n++) {
    pq_sched_push(s, "m", "A", n, 0, 0, 0);
    pq_sched_push(s, "m", "B", 1000 + n, 0, 0, 0);
  }
  int a = 0;
  for (int i = 0; i < 40; i++) a += strcmp(pop_owner(s, "m", NULL, NULL), "A") == 0;
  assert_int_equal(a, 30); /* three of every four */
  pq_sched_free(s);
}

static void an_operators_urgent_priority_goes_before_every_turn(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_set_urgent(s, 100);
  for (int64_t n = 1; n <= 5; n++) pq_sched_push(s, "m", "A", n, 0, 0, 0);
  pq_sched_push(s, "m", "B", 6, 0, 0, 0);
  pq_sched_push(s, "m", "C", 7, 100, 0, 0);
  pq_sched_push(s, "m", "C", 8, 500, 0, 0);
  assert_int_equal(pop_number(s, "m"), 8);
  assert_int_equal(pop_number(s, "m"), 7);
  assert_int_equal(pop_number(s, "m"), 1);
  assert_int_equal(pop_number(s, "m"), 6);
  pq_sched_free(s);
}

static bool not_a(void *ctx, const char *owner, const char *key) {
  (void)key;
  (*(int *)ctx)++;
  return strcmp(owner, "A") != 0;
}

/* An owner at its running limit is passed over, its jobs kept for later. */
static void owners_at_their_limit_wait_and_keep_their_place(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  for (int64_t n = 1; n <= 3; n++) pq_sched_push(s, "m", "A", n, 0, 0, 0);
  pq_sched_push(s, "m", "B", 4, 0, 0, 0);
  int asked = 0;
  assert_string_equal(pop_owner(s, "m", not_a, &asked), "B");
  assert_true(asked >= 2);
  assert_null(pop_owner(s, "m", not_a, &asked)); /* only A's are left, and A may not */
  assert_int_equal(pq_sched_ready(s, "m"), 3);
  assert_string_equal(pop_owner(s, "m", NULL, NULL), "A");
  pq_sched_free(s);
}

/* Lease cost does not grow with the queue: a million queued jobs of 100
 * owners, popped and pushed, each pop a heap operation and a turn. */
static void a_million_jobs_of_a_hundred_owners(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  char owner[16];
  for (int64_t n = 1; n <= 1000000; n++) {
    snprintf(owner, sizeof owner, "u%lld", (long long)(n % 100));
    assert_int_equal(pq_sched_push(s, "m", owner, n, (int)(n % 3), 0, 0), 0);
  }
  int counts[100] = {0};
  for (int i = 0; i < 10000; i++) {
    const char *who = pop_owner(s, "m", NULL, NULL);
    counts[atoi(who + 1)]++;
  }
  for (int i = 0; i < 100; i++) assert_int_equal(counts[i], 100); /* every owner got its share */
  assert_int_equal(pq_sched_total(s), 990000);
  pq_sched_free(s);
}

/* A worker of two models: one owner's backlog on one does not hold up
 * another owner's job on the other (between models, the owner served longest ago). */
static void fair_across_models(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  for (int64_t n = 1; n <= 1000; n++) pq_sched_push(s, "x", "A", n, 5, 0, 0);
  pq_sched_push(s, "y", "B", 1001, 0, 0, 0);
  const char *xy[] = {"x", "y"};
  pq_sched_item it;
  int pops = 0;
  do {
    assert_int_equal(pq_sched_pop(s, xy, 2, NULL, NULL, &it), 1);
    pq_sched_charge(s, &it);
    pops++;
  } while (strcmp(pq_sched_owner_name(s, it.owner), "B") != 0);
  assert_true(pops <= 2);
  pq_sched_free(s);
}

/* A popped job that turned out stale (cancelled in the store) is not
 * charged: its owner keeps its turn. */
static void a_stale_job_costs_no_turn(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  for (int64_t n = 1; n <= 3; n++) pq_sched_push(s, "m", "A", n, 0, 0, 0);
  pq_sched_push(s, "m", "B", 4, 0, 0, 0);
  pq_sched_item it;
  const char *m[] = {"m"};
  assert_int_equal(pq_sched_pop(s, m, 1, NULL, NULL, &it), 1); /* A's 1: stale, not charged */
  assert_int_equal(it.number, 1);
  assert_string_equal(pop_owner(s, "m", NULL, NULL), "A"); /* still A's turn */
  assert_string_equal(pop_owner(s, "m", NULL, NULL), "B");
  pq_sched_free(s);
}

static void can_pop_asks_the_running_limit(void **state) {
  (void)state;
  pq_sched *s = pq_sched_new();
  pq_sched_push(s, "m", "A", 1, 0, 0, 0);
  int asked = 0;
  const char *m[] = {"m"};
  assert_false(pq_sched_can_pop(s, m, 1, not_a, &asked));
  assert_true(pq_sched_can_pop(s, m, 1, NULL, NULL));
  pq_sched_push(s, "m", "B", 2, 0, 0, 0);
  assert_true(pq_sched_can_pop(s, NULL, 0, not_a, &asked));
  assert_int_equal(pq_sched_ready(s, "m"), 2); /* asking takes nothing */
  pq_sched_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(priority_then_oldest),
      cmocka_unit_test(models_are_separate),
      cmocka_unit_test(best_across_several_models),
      cmocka_unit_test(delayed_jobs_wait_their_turn),
      cmocka_unit_test(many_random_jobs_come_out_sorted),
      cmocka_unit_test(one_job_is_not_stuck_behind_a_backlog),
      cmocka_unit_test(priority_orders_an_owners_own_jobs),
      cmocka_unit_test(weights_lengthen_turns),
      cmocka_unit_test(an_operators_urgent_priority_goes_before_every_turn),
      cmocka_unit_test(owners_at_their_limit_wait_and_keep_their_place),
      cmocka_unit_test(a_million_jobs_of_a_hundred_owners),
      cmocka_unit_test(fair_across_models),
      cmocka_unit_test(a_stale_job_costs_no_turn),
      cmocka_unit_test(can_pop_asks_the_running_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
