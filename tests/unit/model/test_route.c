/* Routing by capability (model/route.h): offers and requirements read and
 * checked, canonical requirement texts, and what meets what. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "model/route.h"

static pq_capset offer_of(const char *json) {
  json_t *caps = json_loads(json, 0, NULL);
  pq_capset out;
  char err[256];
  assert_int_equal(pq_route_offer(caps, &out, err, sizeof err), 0);
  json_decref(caps);
  return out;
}

static char *require(const char *json, char *err, size_t len) {
  json_t *req = json_loads(json, 0, NULL);
  char *canonical = NULL;
  int rc = pq_route_require(req, &canonical, err, len);
  json_decref(req);
  return rc == 0 ? (canonical ? canonical : strdup("")) : NULL;
}

static void requirements_have_one_text(void **state) {
  (void)state;
  char err[256];
  char *a = require("{\"labels\":{\"region\":\"eu\",\"gpu\":\"h100\"},\"min_context\":32768}", err, sizeof err);
  char *b = require("{\"min_context\":32768,\"labels\":{\"gpu\":\"h100\",\"region\":\"eu\"}}", err, sizeof err);
  assert_non_null(a);
  assert_string_equal(a, b); /* the same requirements, however written: one lane class */
  assert_string_equal(a, "{\"labels\":{\"gpu\":\"h100\",\"region\":\"eu\"},\"min_context\":32768}");
  free(a);
  free(b);
  char *none = require("{}", err, sizeof err); /* nothing required: no class at all */
  assert_string_equal(none, "");
  free(none);
}

static void bad_requirements_say_why(void **state) {
  (void)state;
  char err[256];
  assert_null(require("{\"min_context\":0}", err, sizeof err));
  assert_non_null(strstr(err, "requirements.min_context"));
  assert_null(require("{\"min_context\":\"big\"}", err, sizeof err));
  assert_null(require("{\"gpu\":\"h100\"}", err, sizeof err));
  assert_non_null(strstr(err, "requirements.gpu"));
  assert_null(require("{\"labels\":{\"gpu\":1}}", err, sizeof err));
  assert_null(require("{\"labels\":{\"g u\":\"x\"}}", err, sizeof err));
  assert_null(require("{\"labels\":[\"gpu\"]}", err, sizeof err));
  assert_null(require("[1]", err, sizeof err));
  json_t *caps = json_loads("{\"labels\":{\"gpu\":\"h100\\\"}\"}}", 0, NULL);
  pq_capset out;
  assert_int_equal(pq_route_offer(caps, &out, err, sizeof err), -1); /* a quote would break the stores' JSON paths */
  assert_non_null(strstr(err, "capabilities.labels"));
  json_decref(caps);
}

static void an_offer_meets_or_says_what_is_missing(void **state) {
  (void)state;
  pq_capset offer = offer_of("{\"context_length\":65536,\"labels\":{\"zone\":\"b\",\"gpu\":\"h100\",\"region\":\"eu\"},"
                             "\"params\":[\"seed\"]}");
  pq_capset req, bare = {0};
  char why[160];
  pq_route_require_text("{\"labels\":{\"gpu\":\"h100\",\"region\":\"eu\"},\"min_context\":32768}", &req);
  assert_true(pq_route_meets(&offer, &req, why, sizeof why));
  assert_false(pq_route_meets(&bare, &req, why, sizeof why)); /* a worker that says nothing meets no context */
  assert_string_equal(why, "a context of 32768 tokens");
  pq_capset_free(&req);
  pq_route_require_text("{\"labels\":{\"gpu\":\"a10\"}}", &req);
  assert_false(pq_route_meets(&offer, &req, why, sizeof why));
  assert_string_equal(why, "label gpu=a10");
  pq_capset_free(&req);
  pq_route_require_text("{\"labels\":{\"aaa\":\"1\"}}", &req); /* sorts before every key it has */
  assert_false(pq_route_meets(&offer, &req, why, sizeof why));
  assert_string_equal(why, "label aaa=1");
  pq_capset_free(&req);
  pq_route_require_text(NULL, &req); /* none: anyone */
  assert_true(pq_route_meets(&bare, &req, why, sizeof why));
  pq_capset_free(&offer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(requirements_have_one_text),
      cmocka_unit_test(bad_requirements_say_why),
      cmocka_unit_test(an_offer_meets_or_says_what_is_missing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
