/* The OpenAI-compatible door: its route table, its error shape, models,
 * and what its other files share (internal.h). */
#include "api/dialect.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai/internal.h"
#include "http/json_in.h"

/* ---- errors ---- */

json_t *pq__oa_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  (void)req;
  const char *type = "invalid_request_error";
  if (*status == 401) type = "authentication_error";
  else if (*status == 403) type = "permission_error";
  else if (*status == 429) type = "rate_limit_error";
  else if (*status >= 500) type = "server_error";
  char code[64];
  const char *given = json_string_value(json_object_get(details, "code"));
  snprintf(code, sizeof code, "%s", given ? given : pq_err_code(err));
  for (char *p = code; *p; p++) *p = (char)tolower((unsigned char)*p);
  const char *param = json_string_value(json_object_get(details, "field"));
  int upstream = (int)json_integer_value(json_object_get(details, "upstream_status"));
  if (upstream == 404 || upstream == 409 || upstream == 413 || upstream == 415 || upstream == 422) *status = upstream;
  return json_pack("{s:{s:s,s:s,s:s?,s:s}}", "error", "message", message, "type", type, "param",
                   param, "code", code);
}

/* ---- models ---- */

/* A model some live worker serves (an alias's by one of its targets), and by how many workers and slots. */
typedef struct {
  json_t *live, *out; /* {id: created}; out: [model objects] or, for one model, the object */
  const char *only;
} models_ctx;

static void add_servable(void *ctx, const char *model, int64_t workers, int64_t slots) {
  models_ctx *m = ctx;
  if (workers == 0 || (m->only && strcmp(m->only, model) != 0)) return;
  json_t *created = json_object_get(m->live, model);
  json_t *obj = json_pack("{s:s,s:s,s:I,s:s,s:I,s:I}", "id", model, "object", "model", "created",
                          (json_int_t)(created ? json_integer_value(created) : pq_now_ms() / 1000), "owned_by",
                          "promptq", "workers", (json_int_t)workers, "slots", (json_int_t)slots);
  if (m->only) m->out = obj;
  else json_array_append_new(m->out, obj);
}

static pq_err openai_models(pq_req *req) {
  models_ctx m = {.out = json_array()};
  pq_err e = pq_api_live_models(req, &m.live);
  if (e != PQ_OK) {
    json_decref(m.out);
    return e;
  }
  pq_coord_servable(req->coord, add_servable, &m);
  json_decref(m.live);
  return pq_req_reply(req, 200, json_pack("{s:s,s:o}", "object", "list", "data", m.out));
}

pq_err pq__oa_model_not_found(pq_req *req, const char *model) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s}", "code", "model_not_found", "field", "model"),
                     "The model '%s' does not exist or no worker serves it now", model);
}

static pq_err openai_model(pq_req *req) {
  const char *id = pq_req_param(req, "model");
  models_ctx m = {.only = id};
  pq_err e = pq_api_live_models(req, &m.live);
  if (e != PQ_OK) return e;
  pq_coord_servable(req->coord, add_servable, &m);
  json_decref(m.live);
  return m.out ? pq_req_reply(req, 200, m.out) : pq__oa_model_not_found(req, id);
}

/* ---- shared by the door's files ---- */

pq_err pq__oa_bad_param(pq_req *req, const char *param, const char *code, const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "field", param, "code", code), "%s",
                     message);
}

/* OpenAI's usage; a priced job adds its cost in USD, as OpenRouter's answers do. */
json_t *pq__oa_usage(const pq_job *job) {
  json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)job->prompt_tokens, "completion_tokens",
                        (json_int_t)job->completion_tokens, "total_tokens",
                        (json_int_t)(job->prompt_tokens + job->completion_tokens));
  if (u && job->cost_micros > 0) json_object_set_new(u, "cost", json_real(pq_micros_to_usd(job->cost_micros)));
  return u;
}

/* A job that ended without a result, as an OpenAI error. A model server's
 * refusal of the request is the client's 4xx (not retryable), with the
 * upstream's own code when it gave one. */
pq_err pq__oa_job_failed(pq_req *req, const pq_job *job) {
  int upstream = 0;
  char ucode[65] = "";
  const char *at = job->error_message ? strstr(job->error_message, "(HTTP ") : NULL;
  if (job->error_code && strcmp(job->error_code, "UPSTREAM_REJECTED") == 0 && at &&
      sscanf(at, "(HTTP %d, %64[a-z_0-9]", &upstream, ucode) >= 1 && upstream >= 400 && upstream < 500)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST,
                       json_pack("{s:s,s:i}", "code", ucode[0] ? ucode : "upstream_rejected", "upstream_status",
                                 upstream),
                       "%s", job->error_message);
  return pq_req_fail(req, job->state == PQ_JOB_CANCELLED ? PQ_ERR_INVALID_STATE : PQ_ERR_INTERNAL,
                     json_pack("{s:s}", "code", job->error_code ? job->error_code : pq_api_end_code(job)),
                     "the job ended %s: %s", pq_job_state_name(job->state),
                     job->error_message ? job->error_message : "no result");
}

pq_err pq__oa_reply_page(pq_req *req, json_t *data, long limit) {
  bool more = (long)json_array_size(data) > limit;
  if (more) json_array_remove(data, json_array_size(data) - 1);
  size_t got = json_array_size(data);
  json_t *first = got ? json_object_get(json_array_get(data, 0), "id") : NULL;
  json_t *last = got ? json_object_get(json_array_get(data, got - 1), "id") : NULL;
  return pq_req_reply(req, 200, json_pack("{s:s,s:O,s:b,s:O,s:O}", "object", "list", "data", data, "has_more", more,
                                          "first_id", first ? first : json_null(), "last_id",
                                          last ? last : json_null()));
}

int pq__oa_data_line(pq_event_stream *s, json_t *obj) {
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!text) return -1;
  int rc = pq_event_stream_append(s, "data: ", 6) || pq_event_stream_append(s, text, strlen(text)) ||
           pq_event_stream_append(s, "\n\n", 2);
  free(text);
  return rc;
}

/* Any other path under one of OpenAI's prefixes: its 404 in OpenAI's shape. */
static pq_err openai_no_route(pq_req *req) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s}", "code", "unknown_url"),
                     "Invalid URL (%s %s): promptq serves no such OpenAI endpoint", req->method, req->path);
}

#define OPENAI(m, pattern_, handler_, flags_, name_)                                                         \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_, .role = PQ_ROLE_CLIENT, .name = name_, \
   .render_error = pq__oa_error}
#define JSON_BODY (PQ_ROUTE_JSON | PQ_ROUTE_BODY)
#define ELSEWHERE(prefix) OPENAI("*", prefix "/**", openai_no_route, 0, "openai.unknown" prefix)
static const pq_route routes[] = {
    OPENAI("POST", "/v1/chat/completions", pq__oa_chat, JSON_BODY, "openai.chat"),
    OPENAI("POST", "/v1/completions", pq__oa_completions, JSON_BODY, "openai.completions"),
    OPENAI("POST", "/v1/embeddings", pq__oa_embeddings, JSON_BODY, "openai.embeddings"),
    OPENAI("GET", "/v1/models", openai_models, 0, "openai.models"),
    OPENAI("GET", "/v1/models/{model}", openai_model, 0, "openai.model"),
    OPENAI("POST", "/v1/responses", pq__oa_responses_create, JSON_BODY, "openai.responses.create"),
    OPENAI("GET", "/v1/responses/{id}", pq__oa_responses_get, 0, "openai.responses.get"),
    OPENAI("DELETE", "/v1/responses/{id}", pq__oa_responses_delete, 0, "openai.responses.delete"),
    OPENAI("POST", "/v1/responses/{id}/cancel", pq__oa_responses_cancel, 0, "openai.responses.cancel"),
    OPENAI("GET", "/v1/responses/{id}/input_items", pq__oa_responses_input_items, 0, "openai.responses.input_items"),
    OPENAI("POST", "/v1/files", pq__oa_files_create, PQ_ROUTE_UPLOAD, "openai.files.create"),
    OPENAI("GET", "/v1/files", pq__oa_files_list, 0, "openai.files.list"),
    OPENAI("GET", "/v1/files/{id}", pq__oa_files_get, 0, "openai.files.get"),
    OPENAI("GET", "/v1/files/{id}/content", pq__oa_files_content, 0, "openai.files.content"),
    OPENAI("DELETE", "/v1/files/{id}", pq__oa_files_delete, 0, "openai.files.delete"),
    OPENAI("POST", "/v1/batches", pq__oa_batches_create, JSON_BODY, "openai.batches.create"),
    OPENAI("GET", "/v1/batches", pq__oa_batches_list, 0, "openai.batches.list"),
    OPENAI("GET", "/v1/batches/{id}", pq__oa_batches_get, 0, "openai.batches.get"),
    OPENAI("POST", "/v1/batches/{id}/cancel", pq__oa_batches_cancel, 0, "openai.batches.cancel"),
    ELSEWHERE("/v1/chat"),
    ELSEWHERE("/v1/completions"),
    ELSEWHERE("/v1/embeddings"),
    ELSEWHERE("/v1/models"),
    ELSEWHERE("/v1/responses"),
    ELSEWHERE("/v1/files"),
    ELSEWHERE("/v1/batches"),
    ELSEWHERE("/v1/images"),
    ELSEWHERE("/v1/audio"),
    ELSEWHERE("/v1/moderations"),
    ELSEWHERE("/v1/fine_tuning"),
    ELSEWHERE("/v1/assistants"),
    ELSEWHERE("/v1/threads"),
    ELSEWHERE("/v1/vector_stores"),
    ELSEWHERE("/v1/uploads"),
    ELSEWHERE("/v1/conversations"),
    ELSEWHERE("/v1/realtime"),
};

/* The OpenAI-compatible front door: answered through the same queue as
 * every other job (priorities, limits, accounting), in OpenAI's wire format
 * and error shape ({"error": {"message", "type", "param", "code"}}). */
const pq_dialect pq_dialect_openai = {
    .name = "openai",
    .title = "the OpenAI-compatible door (the official SDKs unchanged)",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
};
