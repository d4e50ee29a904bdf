/* promptq routes: the HTTP routes and who may call them, from the route
 * table; --openapi: the OpenAPI document the server serves at /openapi.json. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/openapi.h"
#include "cli/cli.h"

static const char *role_name(pq_role r) {
  switch (r) {
    case PQ_ROLE_PUBLIC: return "public";
    case PQ_ROLE_CLIENT: return "client";
    case PQ_ROLE_WORKER: return "worker";
    case PQ_ROLE_ADMIN: return "admin";
  }
  return "?";
}

int pq_cmd_routes(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--openapi") == 0) {
    char *text = json_dumps(pq_api_openapi(), JSON_INDENT(2));
    if (!text) return 1;
    puts(text);
    free(text);
    return 0;
  }
  bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
  json_t *list = json_array();
  size_t n_routes;
  const pq_route *routes = pq_api_routes(&n_routes);
  for (size_t i = 0; i < n_routes; i++) {
    const pq_route *r = &routes[i];
    if (json)
      json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s}", "method", r->method, "pattern", r->pattern,
                                            "role", role_name(r->role), "name", r->name));
    else
      printf("%-7s %-32s %-7s %s\n", r->method, r->pattern, role_name(r->role), r->name);
  }
  if (json) pq_cli_print_json(list);
  json_decref(list);
  return 0;
}
