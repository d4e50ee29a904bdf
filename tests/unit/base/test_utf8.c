#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/utf8.h"

#define SEQ(bytes) pq_utf8_sequence((const unsigned char *)(bytes), sizeof(bytes) - 1)

static void well_formed_sequences(void **state) {
  (void)state;
  assert_int_equal(SEQ("a"), 1);
  assert_int_equal(SEQ("\xc3\xa9"), 2);         /* é */
  assert_int_equal(SEQ("\xe2\x82\xac"), 3);     /* € */
  assert_int_equal(SEQ("\xf0\x9f\x98\x80"), 4); /* 😀 */
  assert_int_equal(SEQ("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
}

static void what_json_and_postgresql_refuse(void **state) {
  (void)state;
  assert_int_equal(SEQ("\xc0\xaf"), 0);         /* overlong '/' */
  assert_int_equal(SEQ("\xe0\x80\xaf"), 0);     /* overlong, three bytes */
  assert_int_equal(SEQ("\xed\xa0\x80"), 0);     /* a surrogate */
  assert_int_equal(SEQ("\xf4\x90\x80\x80"), 0); /* past U+10FFFF */
  assert_int_equal(SEQ("\xff"), 0);
  assert_int_equal(SEQ("\xc3"), 0);             /* cut short */
  assert_int_equal(SEQ("\xe2\x28\xa1"), 0);     /* a bad continuation */
  assert_int_equal(pq_utf8_sequence((const unsigned char *)"a", 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(well_formed_sequences),
      cmocka_unit_test(what_json_and_postgresql_refuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
