/* The API described: schema files kept next to their handlers (foo.c has
 * foo.api.json beside it, built into the binary by scripts/embed-files) and
 * the route table make one OpenAPI 3.1 document.
 *
 * A schema file is {"error_schema": NAME?, "components": {NAME: schema},
 * "routes": {ROUTE_NAME: entry}}, an entry {"summary", "description",
 * "parameters": {query name: {description, schema}}, "headers": {...},
 * "request": schema, "request_required", "request_content",
 * "responses": {status: {description, schema and/or content: the media
 * type(s) of answers that are not JSON}}, "errors":
 * {status: reason}}. Component names are global; errors use the file's
 * error_schema (default: the native envelope, "Error").
 *
 * Everything here is built once, on first use, and then only read: the
 * returned values are borrowed for the program's life. */
#ifndef PQ_API_OPENAPI_H
#define PQ_API_OPENAPI_H

#include <jansson.h>

#include "http/router.h"

/* The entry for a route name; NULL when no schema file has one. */
const json_t *pq_api_route_doc(const char *route_name);
/* Every component schema by name ($ref "#/components/schemas/NAME"). */
const json_t *pq_api_schema_defs(void);
/* Every route entry by name, as the files give them. */
const json_t *pq_api_route_docs(void);
/* What was wrong with the schema files (unparsable, a component defined
 * twice, a route documented twice): an array of messages, empty when none. */
const json_t *pq_api_schema_problems(void);

/* The OpenAPI document of routes (n of them): every route but catch-alls. */
json_t *pq_api_openapi_build(const pq_route *routes, size_t n);
/* The document of the routes promptq serves (pq_api_routes()). */
const json_t *pq_api_openapi(void);

#endif
