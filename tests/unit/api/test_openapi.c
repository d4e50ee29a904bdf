/* The API's description: every route documented, every schema one the
 * dispatcher can enforce, and the document built from them whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "api/api.h"
#include "api/openapi.h"
#include "base/jschema.h"

static bool catch_all(const pq_route *r) { return strstr(r->pattern, "**") != NULL; }

static void the_schema_files_load_cleanly(void **state) {
  (void)state;
  const json_t *problems = pq_api_schema_problems();
  size_t i;
  json_t *p;
  json_array_foreach(problems, i, p) print_error("schema files: %s\n", json_string_value(p));
  assert_int_equal(json_array_size(problems), 0);
}

/* A route without an entry, a summary or a success answer fails here. */
static void every_route_is_documented(void **state) {
  (void)state;
  size_t n, missing = 0;
  const pq_route *routes = pq_api_routes(&n);
  for (size_t i = 0; i < n; i++) {
    const pq_route *r = &routes[i];
    if (catch_all(r)) continue;
    const json_t *doc = r->doc;
    bool success = false;
    const char *status;
    json_t *v;
    json_object_foreach(json_object_get(doc, "responses"), status, v) success |= status[0] == '2';
    if (doc && json_is_string(json_object_get(doc, "summary")) && success) continue;
    print_error("%s %s (%s) has no schema entry with a summary and a 2xx answer\n", r->method, r->pattern, r->name);
    missing++;
  }
  assert_int_equal(missing, 0);
}

/* An entry for a route that does not exist is a typo or a leftover. */
static void every_entry_names_a_route(void **state) {
  (void)state;
  size_t n, orphans = 0;
  const pq_route *routes = pq_api_routes(&n);
  const char *name;
  json_t *doc;
  json_object_foreach((json_t *)pq_api_route_docs(), name, doc) {
    bool used = false;
    for (size_t i = 0; i < n && !used; i++) used = routes[i].doc == doc;
    if (used) continue;
    print_error("%s (%s) documents no route\n", name, json_string_value(json_object_get(doc, "x-file")));
    orphans++;
  }
  assert_int_equal(orphans, 0);
}

static size_t unsound(const json_t *schema, const char *where) {
  const char *bad;
  if (!schema || pq_jschema_sound(schema, pq_api_schema_defs(), &bad)) return 0;
  print_error("%s: %s is not a keyword the dispatcher enforces (or a $ref that does not resolve)\n", where, bad);
  return 1;
}

/* Each keyword a schema uses is one the dispatcher checks, so the document
 * never promises a check that is not made. */
static void every_schema_is_enforceable(void **state) {
  (void)state;
  size_t bad = 0;
  const char *name, *key;
  json_t *v, *doc, *r;
  json_object_foreach((json_t *)pq_api_schema_defs(), name, v) bad += unsound(v, name);
  json_object_foreach((json_t *)pq_api_route_docs(), name, doc) {
    bad += unsound(json_object_get(doc, "request"), name);
    json_object_foreach(json_object_get(doc, "responses"), key, r) bad += unsound(json_object_get(r, "schema"), name);
    json_object_foreach(json_object_get(doc, "parameters"), key, r) bad += unsound(json_object_get(r, "schema"), name);
    const char *error_schema = json_string_value(json_object_get(doc, "error_schema"));
    if (!json_object_get(pq_api_schema_defs(), error_schema)) {
      print_error("%s: its error_schema %s is not a component\n", name, error_schema);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

static void the_document_has_every_operation_once(void **state) {
  (void)state;
  size_t n;
  const pq_route *routes = pq_api_routes(&n);
  const json_t *doc = pq_api_openapi();
  assert_non_null(doc);
  assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
  json_t *ids = json_object();
  for (size_t i = 0; i < n; i++) {
    if (catch_all(&routes[i])) continue;
    char method[16];
    size_t k = 0;
    for (; routes[i].method[k] && k < sizeof method - 1; k++) method[k] = (char)(routes[i].method[k] | 0x20);
    method[k] = '\0';
    json_t *op = json_object_get(json_object_get(json_object_get(doc, "paths"), routes[i].pattern), method);
    assert_non_null(op);
    const char *id = json_string_value(json_object_get(op, "operationId"));
    assert_string_equal(id, routes[i].name);
    assert_null(json_object_get(ids, id));
    json_object_set_new(ids, id, json_true());
    assert_non_null(json_object_get(json_object_get(op, "responses"), "4XX")); /* errors in the route's own shape */
  }
  json_decref(ids);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_schema_files_load_cleanly),
      cmocka_unit_test(every_route_is_documented),
      cmocka_unit_test(every_entry_names_a_route),
      cmocka_unit_test(every_schema_is_enforceable),
      cmocka_unit_test(the_document_has_every_operation_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
