#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "client/sse.h"

typedef struct {
  char log[1024];
  int count, stop_after;
} sink;

static int collect(void *ctx, const char *event, const char *id, const char *data) {
  sink *s = ctx;
  size_t n = strlen(s->log);
  snprintf(s->log + n, sizeof s->log - n, "[%s|%s|%s]", event, id, data);
  return ++s->count == s->stop_after;
}

static const char stream[] =
    ": keepalive\r\n\r\n"
    "id: 1.0\nevent: progress\ndata: {\"a\":1}\n\n"
    "data: line one\ndata: line two\n\n"
    "event: chunk\r\nid: 1.1\r\ndata:no-space\r\n\r\n"
    "data: [DONE]\n\n";

static const char expected[] = "[progress|1.0|{\"a\":1}][message|1.0|line one\nline two]"
                               "[chunk|1.1|no-space][message|1.1|[DONE]]";

static void whole_and_split_at_every_byte(void **state) {
  (void)state;
  size_t len = sizeof stream - 1;
  for (size_t cut = 0; cut <= len; cut++) {
    sink s = {.stop_after = -1};
    pq_sse_parser p;
    pq_sse_init(&p, collect, &s);
    assert_int_equal(pq_sse_feed(&p, stream, cut), 0);
    assert_int_equal(pq_sse_feed(&p, stream + cut, len - cut), 0);
    assert_string_equal(s.log, expected);
    pq_sse_free(&p);
  }
}

static void one_byte_at_a_time_and_stop(void **state) {
  (void)state;
  sink s = {.stop_after = 2};
  pq_sse_parser p;
  pq_sse_init(&p, collect, &s);
  int rc = 0;
  for (size_t i = 0; i < sizeof stream - 1 && rc == 0; i++) rc = pq_sse_feed(&p, stream + i, 1);
  assert_int_equal(rc, -1);
  assert_int_equal(s.count, 2);
  assert_int_equal(pq_sse_feed(&p, "data: x\n\n", 9), -1); /* stays stopped */
  pq_sse_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(whole_and_split_at_every_byte),
      cmocka_unit_test(one_byte_at_a_time_and_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
