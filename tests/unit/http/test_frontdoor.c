/* The front door's judgement of a request head (RFC 9112), case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/frontdoor.h"

static pq_err check(const char *head, int complete, const char **header) {
  const char *why = NULL;
  pq_err e = pq__head_check(head, strlen(head), complete, &why, header);
  if (e != PQ_OK) assert_non_null(why);
  return e;
}

static void sound_heads_pass(void **state) {
  (void)state;
  const char *h;
  assert_int_equal(check("GET /v1/jobs?limit=5 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 1, &h), PQ_OK);
  assert_int_equal(check("POST /v1/jobs HTTP/1.0\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 1, &h), PQ_OK);
  assert_int_equal(check("POST /x HTTP/1.1\r\nTransfer-Encoding:  Chunked \r\n\r\n", 1, &h), PQ_OK);
  assert_int_equal(check("GET / HTTP/1.1\nHost: x\n\n", 1, &h), PQ_OK);       /* bare LF lines */
  assert_int_equal(check("GET /v1/jobs HTTP/1.1\r\nHo", 0, &h), PQ_OK);       /* more to come */
}

static void framing_is_refused(void **state) {
  (void)state;
  const char *h;
  assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 1, &h),
                   PQ_ERR_INVALID_REQUEST);
  assert_string_equal(h, "Content-Length");
  assert_int_equal(check("POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 1, &h),
                   PQ_ERR_INVALID_REQUEST);
  assert_string_equal(h, "Transfer-Encoding");
  assert_int_equal(check("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 1, &h), PQ_ERR_INVALID_REQUEST);
  assert_int_equal(check("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 1, &h),
                   PQ_ERR_INVALID_REQUEST);
  static const char *const lengths[] = {"-5", "abc", "1e23", "", " ", "+3", "0x10", "1234567890123456789"};
  for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
    char head[128];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", lengths[i]);
    assert_int_equal(check(head, 1, &h), PQ_ERR_INVALID_REQUEST);
  }
}

static void malformed_heads_are_refused(void **state) {
  (void)state;
  const char *h;
  static const char *const bad[] = {
      "GET /v1/jobs\r\n\r\n",                         /* no version */
      "GET  /v1/jobs HTTP/1.1\r\n\r\n",               /* two spaces */
      "G@T / HTTP/1.1\r\n\r\n",                       /* method not a token */
      "GET /a\x01 HTTP/1.1\r\n\r\n",                  /* control in the target */
      "GET / HTTP/2\r\n\r\n",                         /* another version */
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",      /* no name */
      "GET / HTTP/1.1\r\n: empty\r\n\r\n",            /* empty name */
      "GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",  /* obs-fold */
      "GET / HTTP/1.1\r\nX B: 1\r\n\r\n",             /* space in a name */
      "GET / HTTP/1.1\r\nX-B: a\x01b\r\n\r\n",        /* control in a value */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(check(bad[i], 1, &h), PQ_ERR_INVALID_REQUEST);
}

static void sizes_are_bounded(void **state) {
  (void)state;
  const char *h;
  char *line = malloc(PQ__REQUEST_LINE_MAX + 64);
  memcpy(line, "GET /", 5);
  memset(line + 5, 'a', PQ__REQUEST_LINE_MAX);
  strcpy(line + 5 + PQ__REQUEST_LINE_MAX, " HTTP/1.1\r\n\r\n");
  assert_int_equal(check(line, 1, &h), PQ_ERR_URI_TOO_LONG);
  line[5 + PQ__REQUEST_LINE_MAX] = '\0';
  assert_int_equal(check(line, 0, &h), PQ_ERR_URI_TOO_LONG); /* known before the line ends */
  free(line);
  char *head = malloc(PQ__HEAD_MAX + 64);
  strcpy(head, "GET / HTTP/1.1\r\nX-Big: ");
  size_t n = strlen(head);
  memset(head + n, 'a', PQ__HEAD_MAX);
  head[n + PQ__HEAD_MAX] = '\0';
  assert_int_equal(check(head, 0, &h), PQ_ERR_HEADERS_TOO_LARGE);
  free(head);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sound_heads_pass),
      cmocka_unit_test(framing_is_refused),
      cmocka_unit_test(malformed_heads_are_refused),
      cmocka_unit_test(sizes_are_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
