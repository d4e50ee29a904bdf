#include "api/dialect.h"

#include <ctype.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/native/events.h"
#include "base/clock.h"
#include "http/json_in.h"

#define CHAT_WAIT_MS (10 * 60 * 1000) /* a non-streamed answer waits this long at most */

/* ---- errors ---- */

static json_t *openai_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
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

static json_t *model_object(const char *id, json_t *created) {
  return json_pack("{s:s,s:s,s:O,s:s}", "id", id, "object", "model", "created", created,
                   "owned_by", "promptq");
}

static pq_err openai_models(pq_req *req) {
  json_t *models;
  pq_err e = pq_api_live_models(req, &models);
  if (e != PQ_OK) return e;
  json_t *data = json_array();
  const char *name;
  json_t *created;
  json_object_foreach(models, name, created) json_array_append_new(data, model_object(name, created));
  json_decref(models);
  return pq_req_reply(req, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static pq_err model_not_found(pq_req *req, const char *model) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s}", "code", "model_not_found", "field", "model"),
                     "The model '%s' does not exist or no worker serves it now", model);
}

static pq_err openai_model(pq_req *req) {
  const char *id = pq_req_param(req, "model");
  json_t *models;
  pq_err e = pq_api_live_models(req, &models);
  if (e != PQ_OK) return e;
  json_t *created = json_object_get(models, id);
  e = created ? pq_req_reply(req, 200, model_object(id, created)) : model_not_found(req, id);
  json_decref(models);
  return e;
}

/* ---- chat completions ---- */

typedef struct {
  char id[64];          /* chatcmpl-<job id> */
  char model[160];
  int64_t created;      /* unix seconds */
  bool stream;
  bool include_usage;
  size_t sent;          /* bytes of content already streamed */
} chat_state;

/* OpenAI content may be a string or an array of parts; workers get text. */
static json_t *flatten_content(json_t *content) {
  if (!json_is_array(content)) return json_incref(content);
  json_t *text = json_string("");
  size_t i;
  json_t *part;
  json_array_foreach(content, i, part) {
    const char *t = json_string_value(json_object_get(part, "text"));
    if (!t) {
      json_decref(text);
      return json_incref(content); /* not text-only: let validation name the problem */
    }
    size_t len = json_string_length(text);
    char *joined = malloc(len + strlen(t) + 1);
    if (!joined) break;
    memcpy(joined, json_string_value(text), len);
    strcpy(joined + len, t);
    json_string_set(text, joined);
    free(joined);
  }
  return text;
}

/* Translates an OpenAI request into the native job body. */
static pq_err to_native(pq_req *req, json_t *body, json_t **out, bool *stream, bool *usage) {
  pq_err e;
  int64_t n = 1;
  *stream = false;
  if ((e = pq_json_bool(req, body, "stream", stream)) ||
      (e = pq_json_int(req, body, "n", false, 1, 1, &n)))
    return e;
  json_t *opts = json_object_get(body, "stream_options");
  if (opts && !json_is_null(opts)) {
    if (!json_is_object(opts))
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "stream_options"),
                         "'stream_options' must be an object");
    if ((e = pq_json_bool(req, opts, "include_usage", usage))) return e;
  }
  json_t *messages = json_object_get(body, "messages");
  if (!json_is_array(messages) || json_array_size(messages) == 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "messages"),
                       "'messages' must be a non-empty array");
  json_t *native_messages = json_array();
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    json_t *copy = json_object();
    json_object_set(copy, "role", json_object_get(m, "role"));
    json_object_set_new(copy, "content", flatten_content(json_object_get(m, "content")));
    if (json_object_get(m, "name")) json_object_set(copy, "name", json_object_get(m, "name"));
    json_array_append_new(native_messages, copy);
  }
  json_t *params = json_object();
  json_t *max = json_object_get(body, "max_completion_tokens");
  if (!max || json_is_null(max)) max = json_object_get(body, "max_tokens");
  if (max && !json_is_null(max)) json_object_set(params, "max_tokens", max);
  static const char *const passed[] = {"temperature", "top_p", "stop", "seed", NULL};
  for (int k = 0; passed[k]; k++) {
    json_t *v = json_object_get(body, passed[k]);
    if (v && !json_is_null(v)) json_object_set(params, passed[k], v);
  }
  *out = json_pack("{s:O,s:o,s:o}", "model", json_object_get(body, "model"), "messages",
                   native_messages, "params", params);
  return *out ? PQ_OK : PQ_ERR_NO_MEMORY;
}

/* OpenAI's usage; a priced job adds its cost in USD, as OpenRouter's answers do. */
static json_t *usage_json(const pq_job *job) {
  json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)job->prompt_tokens, "completion_tokens",
                        (json_int_t)job->completion_tokens, "total_tokens",
                        (json_int_t)(job->prompt_tokens + job->completion_tokens));
  if (u && job->cost_micros > 0) json_object_set_new(u, "cost", json_real(pq_micros_to_usd(job->cost_micros)));
  return u;
}

/* A job that ended without a result, as an OpenAI error. A model server's
 * refusal of the request is the client's 4xx (not retryable), with the
 * upstream's own code when it gave one. */
static pq_err job_failed(pq_req *req, const pq_job *job) {
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

static pq_err chat_answer(pq_req *req, const pq_job *job, void *ctx) {
  chat_state *st = ctx;
  const char *job_id = st->id + strlen("chatcmpl-");
  if (!job)
    return pq_req_fail(req, PQ_ERR_TIMEOUT, json_pack("{s:s}", "code", "timeout"),
                       "the job %s has not finished; it keeps running (GET /v1/jobs/%s)", job_id, job_id);
  if (job->state != PQ_JOB_COMPLETED) return job_failed(req, job);
  char *text = pq_api_output_text(job);
  pq_err e = pq_req_reply(req, 200,
                          json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s,s:n},s:n,s:s}],s:o}", "id", st->id,
                                    "object", "chat.completion", "created", (json_int_t)st->created, "model",
                                    st->model, "choices", "index", 0, "message", "role", "assistant",
                                    "content", text ? text : "", "refusal", "logprobs", "finish_reason",
                                    "stop", "usage", usage_json(job)));
  free(text);
  return e;
}

/* ---- streaming, in OpenAI's chunk format ---- */

static int data_line(pq_event_stream *s, json_t *obj) {
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!text) return -1;
  int rc = pq_event_stream_append(s, "data: ", 6) || pq_event_stream_append(s, text, strlen(text)) ||
           pq_event_stream_append(s, "\n\n", 2);
  free(text);
  return rc;
}

static json_t *chunk(const chat_state *st, json_t *delta, const char *finish) {
  json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:o}]}", "id", st->id, "object",
                        "chat.completion.chunk", "created", (json_int_t)st->created, "model",
                        st->model, "choices", "index", 0, "delta", delta, "logprobs",
                        "finish_reason", finish ? json_string(finish) : json_null());
  if (c && st->include_usage) json_object_set_new(c, "usage", json_null());
  return c;
}

static int content_delta(pq_event_stream *s, chat_state *st, const char *text, size_t len) {
  if (len == 0) return 0;
  st->sent += len;
  return data_line(s, chunk(st, json_pack("{s:s%}", "content", text, len), NULL));
}

static int openai_emit(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job,
                       const pq_job_event *ev) {
  (void)id;
  pq_event_stream *s = ctx;
  chat_state *st = s->format;
  if (kind == PQ_EV_CHUNK) {
    json_t *d = json_loads(ev->data, 0, NULL);
    const char *text = json_string_value(json_object_get(d, "content"));
    int rc = text ? content_delta(s, st, text, strlen(text)) : 0;
    json_decref(d);
    return rc;
  }
  if (kind != PQ_EV_FINAL) return 0; /* queued, running: nothing in this format */
  if (job->state != PQ_JOB_COMPLETED) {
    json_t *err = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message",
                            job->error_message ? job->error_message : "the job ended without a result",
                            "type", "server_error", "param", "code",
                            job->error_code ? job->error_code : pq_api_end_code(job));
    s->ended = true;
    return data_line(s, err);
  }
  char *text = pq_api_output_text(job);
  size_t len = text ? strlen(text) : 0;
  int rc = 0;
  if (len > st->sent) rc = content_delta(s, st, text + st->sent, len - st->sent); /* what was not streamed */
  free(text);
  if (!rc) rc = data_line(s, chunk(st, json_object(), "stop"));
  if (!rc && st->include_usage)
    rc = data_line(s, json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", st->id, "object",
                                "chat.completion.chunk", "created", (json_int_t)st->created, "model",
                                st->model, "choices", "usage", usage_json(job)));
  if (!rc) rc = pq_event_stream_append(s, "data: [DONE]\n\n", 14);
  return rc;
}

static pq_err chat_submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  chat_state *st = req->state; /* set before the submit */
  const pq_job *job = req->op.out.job;
  snprintf(st->id, sizeof st->id, "chatcmpl-%s", job->id);
  st->created = job->created_at / 1000;
  if (!st->stream) return pq_api_answer_when_done(req, job->id, CHAT_WAIT_MS, chat_answer, st);
  pq_event_stream *s;
  chat_state *format = st;
  pq_err e = pq_event_stream_start(req, job->id, NULL, "text/event-stream", openai_emit, format, &s);
  if (e != PQ_OK) return e;
  s->cur.started = true; /* the queued event has no place in this format */
  s->cancel_if_abandoned = true; /* an SDK that aborts its stream frees the GPU */
  /* the first chunk carries the role */
  return data_line(s, chunk(st, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL))
             ? PQ_ERR_NO_MEMORY : PQ_OK;
}

static pq_err openai_chat(pq_req *req) {
  const char *model = NULL;
  pq_err e = pq_json_string(req, req->body, "model", true, 128, &model);
  if (e != PQ_OK) return e;
  chat_state *st = pq_req_alloc(req, sizeof *st);
  if (!st) return PQ_ERR_NO_MEMORY;
  snprintf(st->model, sizeof st->model, "%s", model);
  json_t *native = NULL;
  if ((e = to_native(req, req->body, &native, &st->stream, &st->include_usage))) return e;
  if (!pq_coord_model_served(req->coord, model)) {
    json_decref(native);
    return model_not_found(req, model);
  }
  req->state = st;
  e = pq_api_submit_for_caller(req, native, chat_submitted);
  json_decref(native);
  return e;
}

/* ---- embeddings ---- */

/* encoding_format "base64": each vector as little-endian float32s, base64. */
static json_t *as_base64(json_t *vector) {
  size_t n = json_array_size(vector);
  unsigned char *bytes = malloc(n * 4 + 1);
  if (!bytes) return NULL;
  for (size_t i = 0; i < n; i++) {
    float f = (float)json_number_value(json_array_get(vector, i));
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int b = 0; b < 4; b++) bytes[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
  }
  size_t len = sodium_base64_ENCODED_LEN(n * 4, sodium_base64_VARIANT_ORIGINAL);
  char *text = malloc(len);
  json_t *out = NULL;
  if (text) {
    sodium_bin2base64(text, len, bytes, n * 4, sodium_base64_VARIANT_ORIGINAL);
    out = json_string(text);
  }
  free(text);
  free(bytes);
  return out;
}

static pq_err embeddings_answer(pq_req *req, const pq_job *job, void *ctx) {
  (void)ctx;
  if (!job) return pq_req_fail(req, PQ_ERR_TIMEOUT, json_pack("{s:s}", "code", "timeout"), "the job did not finish in time");
  if (job->state != PQ_JOB_COMPLETED) return job_failed(req, job);
  json_t *out = job->output ? json_loads(job->output, 0, NULL) : NULL;
  json_t *data = json_object_get(out, "data");
  if (!json_is_array(data)) {
    json_decref(out);
    return pq_req_fail(req, PQ_ERR_INTERNAL, json_pack("{s:s}", "code", "bad_worker_output"),
                       "the worker did not answer with embeddings");
  }
  const char *format = json_string_value(json_object_get(req->body, "encoding_format"));
  if (format && strcmp(format, "base64") == 0) {
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
      json_t *encoded = as_base64(json_object_get(item, "embedding"));
      if (encoded) json_object_set_new(item, "embedding", encoded);
    }
  }
  pq_err e = pq_req_reply(req, 200, json_pack("{s:s,s:O,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                                               job->model, "usage", "prompt_tokens", (json_int_t)job->prompt_tokens,
                                               "total_tokens", (json_int_t)job->prompt_tokens));
  json_decref(out);
  return e;
}

static pq_err embeddings_submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_api_answer_when_done(req, req->op.out.job->id, CHAT_WAIT_MS, embeddings_answer, NULL);
}

static pq_err openai_embeddings(pq_req *req) {
  const char *model = NULL;
  pq_err e = pq_json_string(req, req->body, "model", true, 128, &model);
  if (e != PQ_OK) return e;
  json_t *input = json_object_get(req->body, "input");
  if (!input)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "input"), "'input' is required");
  if (!pq_coord_model_served(req->coord, model)) return model_not_found(req, model);
  /* the native job validates the texts ("embeddings": a string or 1..2048 strings) */
  json_t *native = json_pack("{s:s,s:O}", "model", model, "embeddings", input);
  e = pq_api_submit_for_caller(req, native, embeddings_submitted);
  json_decref(native);
  if (e == PQ_ERR_INVALID_REQUEST && req->error_details) /* name the field as OpenAI does */
    json_object_set_new(req->error_details, "field", json_string("input"));
  return e;
}

#define OPENAI(m, pattern_, handler_, flags_, name_)                                                         \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_, .role = PQ_ROLE_CLIENT, .name = name_, \
   .render_error = openai_error}
static const pq_route routes[] = {
    OPENAI("POST", "/v1/chat/completions", openai_chat, PQ_ROUTE_JSON | PQ_ROUTE_BODY, "openai.chat"),
    OPENAI("POST", "/v1/embeddings", openai_embeddings, PQ_ROUTE_JSON | PQ_ROUTE_BODY, "openai.embeddings"),
    OPENAI("GET", "/v1/models", openai_models, 0, "openai.models"),
    OPENAI("GET", "/v1/models/{model}", openai_model, 0, "openai.model"),
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
