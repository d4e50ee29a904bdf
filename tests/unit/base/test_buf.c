#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"

/* A stream's pending bytes go out in pieces as the socket takes them; once
 * all are out the buffer starts over, keeping its memory. */
static void take_hands_out_pieces_then_empties(void **state) {
  (void)state;
  pq_buf b = {0};
  size_t off = 0;
  char out[4];
  assert_int_equal(pq_buf_add(&b, "abcdefg", 7), 0);
  assert_int_equal(pq_buf_take(&b, &off, out, 4), 4);
  assert_memory_equal(out, "abcd", 4);
  assert_int_equal(pq_buf_take(&b, &off, out, 4), 3);
  assert_memory_equal(out, "efg", 3);
  assert_int_equal(b.len, 0);
  assert_int_equal(off, 0);
  assert_int_equal(pq_buf_take(&b, &off, out, 4), 0);
  assert_int_equal(pq_buf_add(&b, "h", 1), 0);
  assert_int_equal(pq_buf_take(&b, &off, out, 4), 1);
  assert_int_equal(out[0], 'h');
  pq_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(take_hands_out_pieces_then_empties)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
