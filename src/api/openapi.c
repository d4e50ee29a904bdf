/* The OpenAPI document, from the route table and the schema files beside the
 * handlers. Both halves are built once (pthread_once) and read after. */
#include "api/openapi.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/dialect.h"
#include "base/embedded.h"
#include "base/log.h"

extern const pq_embedded_file pq__api_schemas[];
extern const size_t pq__api_schemas_count;

static json_t *route_docs, *defs, *problems;

static void problem(const char *fmt, const char *a, const char *b) {
  char text[512];
  snprintf(text, sizeof text, fmt, a, b);
  pq_error("openapi: %s", text);
  json_array_append_new(problems, json_string(text));
}

/* Each file's routes and components, merged; an entry remembers its file's
 * error shape as "error_schema" unless it names its own. */
static void load_file(const pq_embedded_file *f) {
  json_error_t err;
  json_t *file = json_loadb(f->data, f->size, 0, &err);
  if (!json_is_object(file)) {
    problem("%s does not parse: %s", f->path, err.text);
    json_decref(file);
    return;
  }
  const char *error_schema = json_string_value(json_object_get(file, "error_schema"));
  const char *name;
  json_t *v;
  json_object_foreach(json_object_get(file, "components"), name, v) {
    if (json_object_get(defs, name)) problem("component %s is defined twice (again in %s)", name, f->path);
    else json_object_set(defs, name, v);
  }
  json_object_foreach(json_object_get(file, "routes"), name, v) {
    if (json_object_get(route_docs, name)) {
      problem("route %s is documented twice (again in %s)", name, f->path);
      continue;
    }
    if (!json_is_object(v)) {
      problem("route %s in %s is not an object", name, f->path);
      continue;
    }
    json_t *entry = json_copy(v);
    if (!json_object_get(entry, "error_schema"))
      json_object_set_new(entry, "error_schema", json_string(error_schema ? error_schema : "Error"));
    json_object_set_new(entry, "x-file", json_string(f->path));
    json_object_set_new(route_docs, name, entry);
  }
  json_decref(file);
}

static void load_all(void) {
  route_docs = json_object();
  defs = json_object();
  problems = json_array();
  for (size_t i = 0; i < pq__api_schemas_count; i++) load_file(&pq__api_schemas[i]);
}

static pthread_once_t loaded = PTHREAD_ONCE_INIT;

const json_t *pq_api_route_docs(void) {
  pthread_once(&loaded, load_all);
  return route_docs;
}

const json_t *pq_api_route_doc(const char *route_name) { return json_object_get(pq_api_route_docs(), route_name); }

const json_t *pq_api_schema_defs(void) {
  pthread_once(&loaded, load_all);
  return defs;
}

const json_t *pq_api_schema_problems(void) {
  pthread_once(&loaded, load_all);
  return problems;
}

/* ---- the document ---- */

static const char *role_word(pq_role r) {
  switch (r) {
    case PQ_ROLE_PUBLIC: return "public";
    case PQ_ROLE_CLIENT: return "client";
    case PQ_ROLE_WORKER: return "worker";
    default: return "admin";
  }
}

static json_t *ref(const char *name) {
  char text[160];
  snprintf(text, sizeof text, "#/components/schemas/%s", name);
  return json_pack("{s:s}", "$ref", text);
}

/* Route names group by their first word ("jobs.submit": jobs); a dialect's
 * by the dialect ("d001.task": d001, "openai.chat": openai). */
static json_t *tag_of(const pq_route *r) {
  const char *dot = strchr(r->name, '.');
  size_t n = dot ? (size_t)(dot - r->name) : strlen(r->name);
  return json_stringn(r->name, n);
}

static json_t *path_parameters(const char *pattern) {
  json_t *out = json_array();
  for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
    const char *end = strchr(p, '}');
    if (!end) break;
    json_array_append_new(out, json_pack("{s:s%,s:s,s:b,s:{s:s}}", "name", p + 1, (size_t)(end - p - 1), "in",
                                         "path", "required", 1, "schema", "type", "string"));
  }
  return out;
}

static void add_parameters(json_t *out, const json_t *given, const char *in) {
  const char *name;
  json_t *p;
  json_object_foreach((json_t *)given, name, p) {
    const json_t *schema = json_object_get(p, "schema");
    json_t *param = json_pack("{s:s,s:s,s:o}", "name", name, "in", in, "schema",
                              schema ? json_copy((json_t *)schema) : json_pack("{s:s}", "type", "string"));
    if (json_object_get(p, "description")) json_object_set(param, "description", json_object_get(p, "description"));
    if (json_is_true(json_object_get(p, "required"))) json_object_set_new(param, "required", json_true());
    json_array_append_new(out, param);
  }
}

static json_t *content(const char *type, const json_t *schema) {
  json_t *media = json_object();
  if (schema) json_object_set(media, "schema", (json_t *)schema);
  else if (strncmp(type, "text/", 5) == 0) json_object_set_new(media, "schema", json_pack("{s:s}", "type", "string"));
  return json_pack("{s:o}", type, media);
}

static json_t *responses(const pq_route *r, const json_t *doc) {
  json_t *out = json_object();
  const char *status, *error_schema = json_string_value(json_object_get(doc, "error_schema"));
  json_t *v;
  json_object_foreach(json_object_get(doc, "responses"), status, v) {
    const char *description = json_string_value(json_object_get(v, "description"));
    json_t *resp = json_pack("{s:s}", "description", description ? description : "");
    /* "content" names a non-JSON answer; with a "schema" too, the route answers either (?format=csv) */
    json_t *types = json_object_get(v, "content"); /* a media type, or several */
    json_t *media = json_object_get(v, "schema") ? content("application/json", json_object_get(v, "schema")) : json_object();
    if (json_is_string(types)) json_object_update_missing_new(media, content(json_string_value(types), NULL));
    size_t k;
    json_t *t;
    json_array_foreach(types, k, t) if (json_is_string(t)) json_object_update_missing_new(media, content(json_string_value(t), NULL));
    if (json_object_size(media)) json_object_set_new(resp, "content", media);
    else json_decref(media);
    json_object_set_new(out, status, resp);
  }
  json_object_foreach(json_object_get(doc, "errors"), status, v)
    json_object_set_new(out, status, json_pack("{s:O,s:o}", "description", v, "content",
                                               content("application/json", ref(error_schema))));
  if (!json_object_get(out, "4XX"))
    json_object_set_new(out, "4XX", json_pack("{s:s,s:o}", "description",
                                              r->role == PQ_ROLE_PUBLIC ? "The request is refused: invalid, too large or too many."
                                                                        : "The request is refused: invalid, unauthenticated, forbidden, too large or too many.",
                                              "content", content("application/json", ref(error_schema))));
  if (!json_object_get(out, "5XX"))
    json_object_set_new(out, "5XX", json_pack("{s:s,s:o}", "description",
                                              "The coordinator failed or is stopping; retryable errors say so.",
                                              "content", content("application/json", ref(error_schema))));
  return out;
}

static json_t *operation(const pq_route *r, const json_t *doc) {
  json_t *op = json_pack("{s:s,s:[o],s:s}", "operationId", r->name, "tags", tag_of(r), "x-promptq-role", role_word(r->role));
  json_object_set(op, "summary", json_object_get(doc, "summary"));
  if (json_object_get(doc, "description")) json_object_set(op, "description", json_object_get(doc, "description"));
  json_t *params = path_parameters(r->pattern);
  add_parameters(params, json_object_get(doc, "parameters"), "query");
  add_parameters(params, json_object_get(doc, "headers"), "header");
  if (json_array_size(params)) json_object_set(op, "parameters", params);
  json_decref(params);
  const json_t *request = json_object_get(doc, "request");
  if (request) {
    const char *type = json_string_value(json_object_get(doc, "request_content"));
    json_object_set_new(op, "requestBody",
                        json_pack("{s:b,s:o}", "required", json_is_true(json_object_get(doc, "request_required")),
                                  "content", content(type ? type : "application/json", request)));
  }
  if (r->role == PQ_ROLE_PUBLIC && !(r->flags & PQ_ROUTE_METRICS)) json_object_set_new(op, "security", json_array());
  json_object_set_new(op, "responses", responses(r, doc));
  return op;
}

static json_t *lower(const char *method) {
  char m[16];
  size_t i = 0;
  for (; method[i] && i < sizeof m - 1; i++) m[i] = (char)(method[i] | 0x20);
  m[i] = '\0';
  return json_string(m);
}

static json_t *tags(void) {
  json_t *out = json_array();
  static const char *const native[][2] = {
      {"health", "Liveness and readiness."}, {"metrics", "Prometheus metrics."},
      {"auth", "Logging in: a JWT for a user name and password."}, {"keys", "API keys: create, list, revoke."},
      {"jobs", "Jobs: submit, read, wait, stream, cancel; workers complete, fail and stream them."},
      {"receipts", "Signed receipts of finished jobs."}, {"prices", "Prices per model."},
      {"credits", "Credit balances and grants."}, {"ledger", "The ledger: every movement of money."},
      {"reports", "Reports of usage and money."}, {"budgets", "Spending budgets."},
      {"workers", "Workers: register, heartbeat, lease jobs, post results."},
      {"dashboard", "The live dashboard's feed and actions."}, {"docs", "This document and its viewers."},
  };
  for (size_t i = 0; i < sizeof native / sizeof native[0]; i++)
    json_array_append_new(out, json_pack("{s:s,s:s}", "name", native[i][0], "description", native[i][1]));
  for (size_t d = 0; pq_dialects[d]; d++)
    json_array_append_new(out, json_pack("{s:s,s:s}", "name", pq_dialects[d]->name, "description", pq_dialects[d]->title));
  return out;
}

json_t *pq_api_openapi_build(const pq_route *routes, size_t n) {
  json_t *paths = json_object();
  for (size_t i = 0; i < n; i++) {
    const pq_route *r = &routes[i];
    if (strstr(r->pattern, "**") || !r->doc) continue; /* catch-alls answer what no route serves */
    json_t *item = json_object_get(paths, r->pattern);
    if (!item) json_object_set_new(paths, r->pattern, item = json_object());
    json_t *m = lower(r->method);
    json_object_set_new(item, json_string_value(m), operation(r, r->doc));
    json_decref(m);
  }
  json_t *doc = json_pack(
      "{s:s,s:{s:s,s:s,s:s},s:[{s:s,s:s}],s:o,s:o,s:{s:O,s:{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s,s:s}}},s:[{s:[]},{s:[]},{s:[]}]}",
      "openapi", "3.1.0",
      "info", "title", "promptq", "version", PQ_VERSION, "description",
      "promptq coordinates asynchronous AI work: clients submit jobs and get an id at once; workers lease them, "
      "stream tokens back and post results. Besides its own `/v1` API it speaks the OpenAI wire format and the "
      "dialects of four API documents, each a thin layer over the same core (see the tags).\n\n"
      "Errors: `/v1` routes answer in one envelope (`Error`); each dialect answers in its own shape.",
      "servers", "url", "/", "description", "this coordinator",
      "tags", tags(),
      "paths", paths,
      "components", "schemas", pq_api_schema_defs(), "securitySchemes",
      "bearer", "type", "http", "scheme", "bearer", "description", "A JWT from POST /v1/auth/token, or an API key (pq_...).",
      "apiKey", "type", "apiKey", "in", "header", "name", "X-Api-Key", "description", "An API key in its own header.",
      "sessionToken", "type", "apiKey", "in", "header", "name", "X-Session-Token", "description",
      "A wallet session (document 003's login).",
      "security", "bearer", "apiKey", "sessionToken");
  return doc;
}

static json_t *document;

static void build_document(void) {
  size_t n;
  const pq_route *routes = pq_api_routes(&n);
  document = pq_api_openapi_build(routes, n);
}

const json_t *pq_api_openapi(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, build_document);
  return document;
}
