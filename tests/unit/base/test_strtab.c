#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "base/strtab.h"

static void each_string_keeps_its_index_through_growth(void **state) {
  (void)state;
  pq_strtab t = {0};
  assert_int_equal(pq_strtab_find(&t, "a"), -1);
  char name[16];
  for (int i = 0; i < 5000; i++) {
    snprintf(name, sizeof name, "user-%d", i);
    assert_int_equal(pq_strtab_intern(&t, name), i);
  }
  for (int i = 0; i < 5000; i += 7) {
    snprintf(name, sizeof name, "user-%d", i);
    assert_int_equal(pq_strtab_find(&t, name), i);
    assert_int_equal(pq_strtab_intern(&t, name), i); /* again: the same index */
    assert_string_equal(t.names[i], name);
  }
  assert_int_equal(pq_strtab_intern(&t, ""), 5000);
  assert_int_equal(pq_strtab_find(&t, "user-5000"), -1);
  assert_int_equal(t.n, 5001);
  pq_strtab_free(&t);
  assert_int_equal(t.n, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(each_string_keeps_its_index_through_growth)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
