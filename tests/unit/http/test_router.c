#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "api/api.h"
#include "http/router.h"

static pq_err h(pq_req *r) { (void)r; return PQ_OK; }

#define R(m, p, n) {.method = m, .pattern = p, .handler = h, .name = n}
static const pq_route routes[] = {
    R("GET", "/v1/jobs", "list"),
    R("POST", "/v1/jobs", "submit"),
    R("GET", "/v1/jobs/{id}", "get"),
    R("POST", "/v1/jobs/{id}/cancel", "cancel"),
    R("POST", "/v1/workers/{wid}/jobs/{jid}", "two"),
};
#define N (sizeof routes / sizeof routes[0])

static void literal_and_method(void **state) {
  (void)state;
  pq_route_match m;
  assert_int_equal(pq_router_match(routes, N, "GET", "/v1/jobs", &m), PQ_OK);
  assert_string_equal(m.route->name, "list");
  assert_int_equal(pq_router_match(routes, N, "POST", "/v1/jobs", &m), PQ_OK);
  assert_string_equal(m.route->name, "submit");
}

static void captures(void **state) {
  (void)state;
  pq_route_match m;
  assert_int_equal(pq_router_match(routes, N, "POST", "/v1/jobs/abc-1/cancel", &m), PQ_OK);
  assert_string_equal(m.route->name, "cancel");
  assert_int_equal(m.n_params, 1);
  assert_int_equal(m.params[0].value_len, 5);
  assert_memory_equal(m.params[0].value, "abc-1", 5);
  assert_int_equal(pq_router_match(routes, N, "POST", "/v1/workers/w1/jobs/j2", &m), PQ_OK);
  assert_int_equal(m.n_params, 2);
  assert_memory_equal(m.params[1].name, "jid", 3);
  assert_memory_equal(m.params[1].value, "j2", 2);
}

static void not_found_vs_not_allowed(void **state) {
  (void)state;
  pq_route_match m;
  assert_int_equal(pq_router_match(routes, N, "GET", "/v1/nothing", &m), PQ_ERR_NOT_FOUND);
  assert_int_equal(pq_router_match(routes, N, "GET", "/v1/jobs/", &m), PQ_ERR_NOT_FOUND); /* empty id */
  assert_int_equal(pq_router_match(routes, N, "GET", "/v1/jobs/a/b", &m), PQ_ERR_NOT_FOUND);
  assert_int_equal(pq_router_match(routes, N, "GET", "/v1", &m), PQ_ERR_NOT_FOUND);
  assert_int_equal(pq_router_match(routes, N, "DELETE", "/v1/jobs", &m), PQ_ERR_METHOD_NOT_ALLOWED);
  assert_string_equal(m.allow, "GET, POST");
  assert_int_equal(pq_router_match(routes, N, "GET", "/v1/jobs/x/cancel", &m), PQ_ERR_METHOD_NOT_ALLOWED);
  assert_string_equal(m.allow, "POST");
}

/* The real table: every route reachable, names unique, patterns well formed. */
static void api_table_is_consistent(void **state) {
  (void)state;
  size_t n_routes;
  const pq_route *routes = pq_api_routes(&n_routes);
  for (size_t i = 0; i < n_routes; i++) {
    const pq_route *r = &routes[i];
    assert_non_null(r->handler);
    assert_non_null(r->name);
    assert_true(r->pattern[0] == '/');
    for (size_t k = 0; k < i; k++) {
      assert_string_not_equal(r->name, routes[k].name);
      assert_false(strcmp(r->method, routes[k].method) == 0 &&
                   strcmp(r->pattern, routes[k].pattern) == 0);
    }
    char path[256];
    size_t o = 0;
    for (const char *p = r->pattern; *p && o < sizeof path - 2;) {
      if (*p == '{') {
        path[o++] = 'x';
        while (*p && *p != '}') p++;
        if (*p) p++;
      } else {
        path[o++] = *p++;
      }
    }
    path[o] = '\0';
    if (o >= 3 && strcmp(path + o - 3, "/**") == 0) strcpy(path + o - 2, "anything/else"); /* a catch-all */
    pq_route_match m;
    assert_int_equal(pq_router_match(routes, n_routes, r->method, path, &m), PQ_OK);
    assert_ptr_equal(m.route, r);
  }
}

/* A catch-all answers what no route does, and words a 405 under its prefix. */
static void catch_all(void **state) {
  (void)state;
  static const pq_route things[] = {
      {.method = "GET", .pattern = "/v1/things/{id}", .handler = h, .name = "things.get"},
      {.method = "*", .pattern = "/v1/things/**", .handler = h, .name = "things.rest"},
  };
  pq_route_match m;
  assert_int_equal(pq_router_match(things, 2, "GET", "/v1/things/7", &m), PQ_OK);
  assert_ptr_equal(m.route, &things[0]);
  assert_int_equal(pq_router_match(things, 2, "POST", "/v1/things/7/x", &m), PQ_OK);
  assert_ptr_equal(m.route, &things[1]);
  assert_int_equal(pq_router_match(things, 2, "GET", "/v1/things", &m), PQ_OK);
  assert_ptr_equal(m.route, &things[1]);
  assert_int_equal(pq_router_match(things, 2, "DELETE", "/v1/things/7", &m), PQ_ERR_METHOD_NOT_ALLOWED);
  assert_ptr_equal(m.route, &things[1]);
  assert_string_equal(m.allow, "GET");
  assert_int_equal(pq_router_match(things, 2, "GET", "/v1/thingsx", &m), PQ_ERR_NOT_FOUND);
  assert_null(m.route);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(literal_and_method),
      cmocka_unit_test(captures),
      cmocka_unit_test(not_found_vs_not_allowed),
      cmocka_unit_test(catch_all),
      cmocka_unit_test(api_table_is_consistent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
