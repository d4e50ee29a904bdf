#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/clock.h"

/* A deadline of "never" (INT64_MAX) once overflowed the real deadline under UBSan; it must come back as a
 * bounded, valid timespec. */
static void never_is_a_bounded_wait(void **state) {
  (void)state;
  int64_t before = pq_mono_ms();
  struct timespec ts = pq_clock_wait_until(&pq_clock_system, INT64_MAX, 1000);
  int64_t at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  assert_true(at >= before);
  assert_true(at <= before + 3600 * 1000 + 1000);
  assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
}

static void past_deadline_is_now(void **state) {
  (void)state;
  int64_t before = pq_mono_ms();
  struct timespec ts = pq_clock_wait_until(&pq_clock_system, INT64_MIN / 2, 1000);
  int64_t at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  assert_true(at >= before && at <= pq_mono_ms());
}

/* A manual clock's wait is capped by max_ms so tests that advance it are seen within that time. */
static void manual_clock_wait_is_capped(void **state) {
  (void)state;
  pq_manual_clock m;
  pq_manual_clock_init(&m, 1700000000000);
  int64_t before = pq_mono_ms();
  struct timespec ts = pq_clock_wait_until(&m.clock, pq_clock_mono(&m.clock) + 60000, 250);
  int64_t at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  assert_true(at >= before + 250 - 1 && at <= pq_mono_ms() + 250);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(never_is_a_bounded_wait),
      cmocka_unit_test(past_deadline_is_now),
      cmocka_unit_test(manual_clock_wait_is_capped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
