/* The route table and its matcher.
 *
 * A route is (method, pattern, handler, flags, role); patterns are literal
 * segments and {name} captures ("/v1/jobs/{id}/cancel"). Matching says 404
 * when no pattern fits the path and 405 (with the allowed methods) when a
 * pattern fits but not for this method. */
#ifndef PQ_HTTP_ROUTER_H
#define PQ_HTTP_ROUTER_H

#include <stddef.h>

#include "auth/role.h"
#include "base/error.h"

typedef struct pq_req pq_req;
typedef pq_err (*pq_handler_fn)(pq_req *req);

enum {
  PQ_ROUTE_JSON = 1u << 0,      /* a body, when present, must be a JSON object */
  PQ_ROUTE_BODY = 1u << 1,      /* the body is required */
  PQ_ROUTE_LOGIN = 1u << 2,     /* public, rate limited per address (logins) */
  PQ_ROUTE_JSON_TYPE = 1u << 3, /* Content-Type: application/json must be sent */
  PQ_ROUTE_USER_CLASS = 1u << 4, /* rate limited as a user route, not a client one */
  PQ_ROUTE_METRICS = 1u << 5,   /* public, unless the server makes metrics private (admins only) */
  PQ_ROUTE_RESULT = 1u << 6,    /* a worker's result: rate limited apart, so its chunks cannot starve it */
  PQ_ROUTE_UPLOAD = 1u << 7,    /* a file upload: its body may be as large as max_upload, not max_body */
};


/* Renders an error in a dialect's own shape: returns the body (new
 * reference) and may set *status. NULL on a route: the native envelope. */
typedef struct json_t json_t;
typedef json_t *(*pq_error_render_fn)(pq_req *req, pq_err err, const char *message,
                                      json_t *details, int *status);

typedef struct pq_route {
  const char *method;
  const char *pattern;
  pq_handler_fn handler;
  unsigned flags;
  pq_role role;
  const char *name; /* stable label for logs and metrics */
  pq_error_render_fn render_error;
  /* Its entry in the API's schema files (api/openapi.h: summary, request,
   * responses), set when the table is built; NULL: none. The dispatcher
   * checks a JSON body against doc's "request" schema before the handler;
   * schema_defs resolves its $refs. Borrowed, read-only, for the program's life. */
  const json_t *doc;
  const json_t *schema_defs;
} pq_route;

#define PQ_ROUTE_MAX_PARAMS 4

typedef struct pq_route_match {
  const pq_route *route;
  int n_params;
  struct {
    const char *name, *value; /* point into the pattern and the path */
    size_t name_len, value_len;
  } params[PQ_ROUTE_MAX_PARAMS];
  char allow[64]; /* for 405: "GET, POST" */
} pq_route_match;

/* PQ_OK with m->route set, PQ_ERR_NOT_FOUND or PQ_ERR_METHOD_NOT_ALLOWED.
 * A pattern ending in "/" and two stars is a catch-all (any method) for paths no other route
 * matches; for a 405 under it, m->route is the catch-all, so the error is
 * worded in its shape. */
pq_err pq_router_match(const pq_route *routes, size_t n, const char *method, const char *path,
                       pq_route_match *m);

#endif
