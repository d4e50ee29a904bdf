/* Chat completions and the legacy completions, as chat jobs: OpenAI's
 * parameters are carried to the worker (or refused by name when no worker
 * of the model honours them), and the answer, text or tool calls, streamed
 * or not, comes back in OpenAI's shape with the upstream's finish_reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai/internal.h"
#include "http/json_in.h"

/* ---- translation ---- */

pq_err pq__oa_only(pq_req *req, json_t *body, const char *const *a, const char *const *b) {
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    bool known = false;
    for (int i = 0; a && a[i] && !known; i++) known = strcmp(a[i], key) == 0;
    for (int i = 0; b && b[i] && !known; i++) known = strcmp(b[i], key) == 0;
    if (!known) return pq__oa_bad_param(req, key, "unknown_parameter", "Unrecognized request argument supplied: %s", key);
  }
  return PQ_OK;
}

static bool is_basic(const char *param) {
  for (int i = 0; pq_chat_basic_params[i]; i++)
    if (strcmp(pq_chat_basic_params[i], param) == 0) return true;
  return false;
}

/* Values that ask nothing of a backend. */
static bool asks_nothing(const char *param, json_t *v) {
  if (strcmp(param, "n") == 0) return json_integer_value(v) == 1;
  if (strcmp(param, "logprobs") == 0 || strcmp(param, "parallel_tool_calls") == 0) return !json_is_true(v);
  if (strcmp(param, "top_logprobs") == 0) return json_integer_value(v) == 0;
  if (strcmp(param, "response_format") == 0) {
    const char *type = json_string_value(json_object_get(v, "type"));
    return type && strcmp(type, "text") == 0;
  }
  return false;
}

pq_err pq__oa_chat_params(pq_req *req, json_t *body, const char *model, json_t **out) {
  json_t *params = json_object();
  *out = NULL;
  if (!params) return PQ_ERR_NO_MEMORY;
  json_t *max = json_object_get(body, "max_completion_tokens");
  if (!max || json_is_null(max)) max = json_object_get(body, "max_tokens");
  if (max && !json_is_null(max)) json_object_set(params, "max_tokens", max);
  for (int k = 0; pq_chat_params[k]; k++) {
    const char *name = pq_chat_params[k];
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v) || strcmp(name, "max_tokens") == 0) continue;
    json_object_set(params, name, v);
    if (is_basic(name) || asks_nothing(name, v) || pq_coord_model_honours(req->coord, model, name)) continue;
    json_decref(params);
    return pq__oa_bad_param(req, name, "unsupported_parameter",
                            "'%s' is not supported by the workers that serve '%s' now (their backend cannot honour it)",
                            name, model);
  }
  *out = params;
  return PQ_OK;
}

pq_err pq__oa_check_images(pq_req *req, json_t *messages, const char *model) {
  size_t i, k;
  json_t *m, *part;
  json_array_foreach(messages, i, m) {
    json_array_foreach(json_object_get(m, "content"), k, part) {
      const char *type = json_string_value(json_object_get(part, "type"));
      if (type && strcmp(type, "image_url") == 0 && !pq_coord_model_honours(req->coord, model, "image_url"))
        return pq__oa_bad_param(req, "messages", "unsupported_content",
                                "messages[%zu] has an image, and the workers that serve '%s' take only text", i, model);
    }
  }
  return PQ_OK;
}

/* Text-only content parts become one string, which every backend takes. */
static json_t *joined_text(json_t *content) {
  if (!json_is_array(content)) return json_incref(content);
  pq_buf text = {0};
  size_t i;
  json_t *part;
  json_array_foreach(content, i, part) {
    const char *t = json_string_value(json_object_get(part, "text"));
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!t || !type || strcmp(type, "text") != 0) {
      free(text.data);
      return json_incref(content); /* images travel as parts; the kind checks them */
    }
    if (pq_buf_add(&text, t, strlen(t))) break;
  }
  json_t *joined = json_string(text.data ? text.data : "");
  free(text.data);
  return joined;
}

json_t *pq__oa_messages(json_t *messages) {
  if (!json_is_array(messages)) return json_incref(messages); /* the kind names the problem */
  json_t *out = json_array();
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    if (!json_is_object(m)) {
      json_array_append(out, m);
      continue;
    }
    json_t *copy = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
      if (json_is_null(v)) continue; /* the SDKs send content: null beside tool_calls */
      json_object_set_new(copy, key, strcmp(key, "content") == 0 ? joined_text(v) : json_incref(v));
    }
    json_array_append_new(out, copy);
  }
  return out;
}

static json_t *message_of(json_t *result) {
  json_t *content = json_object_get(result, "content");
  json_t *m = json_pack("{s:s,s:O,s:O}", "role", "assistant", "content", content ? content : json_null(), "refusal",
                        json_object_get(result, "refusal") ? json_object_get(result, "refusal") : json_null());
  json_t *calls = json_object_get(result, "tool_calls");
  if (json_is_array(calls) && json_array_size(calls)) json_object_set(m, "tool_calls", calls);
  return m;
}

json_t *pq__oa_choices(const pq_job *job) {
  json_t *out = pq_api_output_json(job), *choices = NULL;
  if (json_is_object(out) && json_object_get(out, PQ_CHAT_RESULT_KEY)) {
    json_t *listed = json_object_get(out, "choices");
    if (json_is_array(listed) && json_array_size(listed)) {
      choices = json_array();
      size_t i;
      json_t *c;
      json_array_foreach(listed, i, c) {
        json_t *m = json_object_get(c, "message");
        json_array_append_new(choices, json_pack("{s:I,s:o,s:O,s:O}", "index", (json_int_t)i, "message", message_of(m),
                                                 "logprobs", json_object_get(c, "logprobs") ? json_object_get(c, "logprobs") : json_null(),
                                                 "finish_reason", json_object_get(c, "finish_reason")));
      }
    } else {
      json_t *logprobs = json_object_get(out, "logprobs");
      choices = json_pack("[{s:i,s:o,s:O,s:O}]", "index", 0, "message", message_of(out), "logprobs",
                          logprobs ? logprobs : json_null(), "finish_reason", json_object_get(out, PQ_CHAT_RESULT_KEY));
    }
  } else {
    char *text = pq_api_output_text(job);
    choices = json_pack("[{s:i,s:{s:s,s:s,s:n},s:n,s:s}]", "index", 0, "message", "role", "assistant", "content",
                        text ? text : "", "refusal", "logprobs", "finish_reason", "stop");
    free(text);
  }
  json_decref(out);
  return choices;
}

/* ---- chat completions ---- */

typedef struct {
  char id[64];          /* chatcmpl-<job id>, or cmpl-<job id> */
  char model[160];
  int64_t created;      /* unix seconds */
  bool stream;
  bool include_usage;
  bool legacy;          /* /v1/completions: text_completion objects */
  const char *echo;     /* legacy echo: the prompt comes first (request memory) */
  size_t sent[PQ_CHAT_MAX_CHOICES];        /* bytes of content already streamed, per choice */
  bool tools_sent[PQ_CHAT_MAX_CHOICES];    /* tool-call deltas already streamed */
  size_t logprobs_sent[PQ_CHAT_MAX_CHOICES]; /* logprobs entries already streamed */
} chat_state;

static const char *const chat_fields[] = {"model", "messages", "stream", "stream_options", "max_completion_tokens",
                                          "store", NULL};

static pq_err stream_options(pq_req *req, json_t *body, bool *stream, bool *usage) {
  pq_err e;
  *stream = false;
  if ((e = pq_json_bool(req, body, "stream", stream))) return e;
  json_t *opts = json_object_get(body, "stream_options");
  if (opts && !json_is_null(opts)) {
    if (!json_is_object(opts))
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "stream_options"),
                         "'stream_options' must be an object");
    if ((e = pq_json_bool(req, opts, "include_usage", usage))) return e;
  }
  return PQ_OK;
}

/* Translates an OpenAI chat request into the native job body. */
static pq_err chat_to_native(pq_req *req, json_t *body, const char *model, json_t **out, chat_state *st) {
  pq_err e;
  *out = NULL;
  if ((e = pq__oa_only(req, body, chat_fields, pq_chat_params)) ||
      (e = stream_options(req, body, &st->stream, &st->include_usage)))
    return e;
  json_t *store = json_object_get(body, "store");
  if (store && !json_is_boolean(store) && !json_is_null(store))
    return pq__oa_bad_param(req, "store", "invalid_request", "'store' must be true or false");
  json_t *messages = json_object_get(body, "messages");
  if (!json_is_array(messages) || json_array_size(messages) == 0)
    return pq__oa_bad_param(req, "messages", "invalid_request", "'messages' must be a non-empty array");
  if ((e = pq__oa_check_images(req, messages, model))) return e;
  json_t *params;
  if ((e = pq__oa_chat_params(req, body, model, &params))) return e;
  *out = json_pack("{s:s,s:o,s:o}", "model", model, "messages", pq__oa_messages(messages), "params", params);
  return *out ? PQ_OK : PQ_ERR_NO_MEMORY;
}

/* The legacy shape of logprobs: parallel lists instead of one entry per token. */
static json_t *legacy_logprobs(json_t *chat) {
  json_t *entries = json_object_get(chat, "content");
  if (!json_is_array(entries)) return json_null();
  json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offsets = json_array();
  size_t i, k, offset = 0;
  json_t *t, *alt;
  json_array_foreach(entries, i, t) {
    const char *token = json_string_value(json_object_get(t, "token"));
    json_array_append_new(tokens, json_string(token ? token : ""));
    json_array_append(lps, json_object_get(t, "logprob"));
    json_t *top = json_object();
    json_array_foreach(json_object_get(t, "top_logprobs"), k, alt) {
      const char *alt_token = json_string_value(json_object_get(alt, "token"));
      if (alt_token) json_object_set(top, alt_token, json_object_get(alt, "logprob"));
    }
    json_array_append_new(tops, top);
    json_array_append_new(offsets, json_integer((json_int_t)offset));
    offset += token ? strlen(token) : 0;
  }
  return json_pack("{s:o,s:o,s:o,s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs", tops, "text_offset",
                   offsets);
}

static json_t *legacy_choices(chat_state *st, const pq_job *job) {
  json_t *choices = pq__oa_choices(job), *out = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(choices, i, c) {
    const char *text = json_string_value(json_object_get(json_object_get(c, "message"), "content"));
    char *joined = NULL;
    if (st->echo && asprintf(&joined, "%s%s", st->echo, text ? text : "") < 0) joined = NULL;
    json_array_append_new(out, json_pack("{s:s,s:I,s:o,s:O}", "text", joined ? joined : text ? text : "", "index",
                                         (json_int_t)i, "logprobs", legacy_logprobs(json_object_get(c, "logprobs")),
                                         "finish_reason",
                                         json_object_get(c, "finish_reason")));
    free(joined);
  }
  json_decref(choices);
  return out;
}

static json_t *answer_body(chat_state *st, const pq_job *job) {
  return json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", st->id, "object", st->legacy ? "text_completion" : "chat.completion",
                   "created", (json_int_t)st->created, "model", st->model, "choices",
                   st->legacy ? legacy_choices(st, job) : pq__oa_choices(job), "usage", pq__oa_usage(job));
}

static pq_err chat_answer(pq_req *req, const pq_job *job, void *ctx) {
  chat_state *st = ctx;
  const char *job_id = strchr(st->id, '-') + 1;
  if (!job)
    return pq_req_fail(req, PQ_ERR_TIMEOUT, json_pack("{s:s}", "code", "timeout"),
                       "the job %s has not finished; it keeps running (GET /v1/jobs/%s)", job_id, job_id);
  if (job->state != PQ_JOB_COMPLETED) return pq__oa_job_failed(req, job);
  return pq_req_reply(req, 200, answer_body(st, job));
}

json_t *pq__oa_chat_body(const pq_job *job, bool legacy) {
  chat_state st = {.legacy = legacy, .created = job->created_at / 1000};
  snprintf(st.id, sizeof st.id, "%s-%s", legacy ? "cmpl" : "chatcmpl", job->id);
  snprintf(st.model, sizeof st.model, "%s", job->model);
  return answer_body(&st, job);
}

/* ---- streaming, in OpenAI's chunk format ---- */

static json_t *chunk(const chat_state *st, int index, json_t *delta, json_t *logprobs, const char *finish) {
  json_t *choice;
  if (st->legacy) {
    const char *text = json_string_value(json_object_get(delta, "content"));
    choice = json_pack("{s:s,s:i,s:o,s:o}", "text", text ? text : "", "index", index, "logprobs",
                       legacy_logprobs(logprobs), "finish_reason", finish ? json_string(finish) : json_null());
    json_decref(delta);
  } else {
    choice = json_pack("{s:i,s:o,s:O,s:o}", "index", index, "delta", delta, "logprobs",
                       logprobs ? logprobs : json_null(), "finish_reason", finish ? json_string(finish) : json_null());
  }
  json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", st->id, "object",
                        st->legacy ? "text_completion" : "chat.completion.chunk", "created", (json_int_t)st->created,
                        "model", st->model, "choices", choice);
  if (c && st->include_usage) json_object_set_new(c, "usage", json_null());
  return c;
}

static int content_delta(pq_event_stream *s, chat_state *st, int index, const char *text, size_t len) {
  if (len == 0) return 0;
  st->sent[index] += len;
  return pq__oa_data_line(s, chunk(st, index, json_pack("{s:s%}", "content", text, len), NULL, NULL));
}

/* A streamed piece from the worker: text, or a delta with tool calls or logprobs. */
static int stream_piece(pq_event_stream *s, chat_state *st, const char *data) {
  json_t *d = json_loads(data, 0, NULL);
  json_int_t index = json_integer_value(json_object_get(d, "index"));
  int rc = 0;
  if (index < 0 || index >= PQ_CHAT_MAX_CHOICES) goto out;
  const char *text = json_string_value(json_object_get(d, "content"));
  json_t *calls = json_object_get(d, "tool_calls"), *logprobs = json_object_get(d, "logprobs");
  json_t *refusal = json_object_get(d, "refusal");
  if (!calls && !logprobs && !refusal) {
    rc = text ? content_delta(s, st, (int)index, text, strlen(text)) : 0;
    goto out;
  }
  json_t *delta = json_object();
  if (text) {
    json_object_set_new(delta, "content", json_string(text));
    st->sent[index] += strlen(text);
  }
  st->logprobs_sent[index] += json_array_size(json_object_get(logprobs, "content"));
  if (calls && !st->legacy) {
    json_object_set(delta, "tool_calls", calls);
    st->tools_sent[index] = true;
  }
  if (refusal) json_object_set(delta, "refusal", refusal);
  rc = pq__oa_data_line(s, chunk(st, (int)index, delta, logprobs, NULL));
out:
  json_decref(d);
  return rc;
}

/* What the worker's pieces did not carry (a quick job posts none), then each choice's end. */
static int stream_end(pq_event_stream *s, chat_state *st, const pq_job *job) {
  json_t *choices = pq__oa_choices(job);
  size_t i;
  json_t *c;
  int rc = 0;
  json_array_foreach(choices, i, c) {
    if (rc || i >= PQ_CHAT_MAX_CHOICES) break;
    json_t *m = json_object_get(c, "message");
    const char *text = json_string_value(json_object_get(m, "content"));
    size_t len = text ? strlen(text) : 0;
    json_t *entries = json_object_get(json_object_get(c, "logprobs"), "content");
    if (len > st->sent[i] || json_array_size(entries) > st->logprobs_sent[i]) { /* the rest, with its logprobs */
      json_t *rest = NULL;
      if (json_array_size(entries) > st->logprobs_sent[i]) {
        rest = json_pack("{s:[]}", "content");
        for (size_t k = st->logprobs_sent[i]; k < json_array_size(entries); k++)
          json_array_append(json_object_get(rest, "content"), json_array_get(entries, k));
      }
      size_t from = st->sent[i] < len ? st->sent[i] : len; /* a retry may have streamed more than it kept */
      rc = pq__oa_data_line(s, chunk(st, (int)i, json_pack("{s:s%}", "content", text ? text + from : "", len - from),
                                     rest, NULL));
      json_decref(rest);
      st->sent[i] = len;
    }
    json_t *calls = json_object_get(m, "tool_calls");
    if (!rc && json_is_array(calls) && !st->tools_sent[i] && !st->legacy) {
      json_t *indexed = json_deep_copy(calls);
      size_t k;
      json_t *call;
      json_array_foreach(indexed, k, call) json_object_set_new(call, "index", json_integer((json_int_t)k));
      rc = pq__oa_data_line(s, chunk(st, (int)i, json_pack("{s:o}", "tool_calls", indexed), NULL, NULL));
    }
    if (!rc)
      rc = pq__oa_data_line(s, chunk(st, (int)i, json_object(), NULL, json_string_value(json_object_get(c, "finish_reason"))));
  }
  json_decref(choices);
  return rc;
}

static int chat_emit(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job, const pq_job_event *ev) {
  (void)id;
  pq_event_stream *s = ctx;
  chat_state *st = s->format;
  if (kind == PQ_EV_CHUNK) return stream_piece(s, st, ev->data);
  if (kind != PQ_EV_FINAL) return 0; /* queued, running: nothing in this format */
  if (job->state != PQ_JOB_COMPLETED) {
    json_t *err = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message",
                            job->error_message ? job->error_message : "the job ended without a result",
                            "type", "server_error", "param", "code",
                            job->error_code ? job->error_code : pq_api_end_code(job));
    s->ended = true;
    return pq__oa_data_line(s, err);
  }
  int rc = stream_end(s, st, job);
  if (!rc && st->include_usage)
    rc = pq__oa_data_line(s, json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", st->id, "object",
                                       st->legacy ? "text_completion" : "chat.completion.chunk", "created",
                                       (json_int_t)st->created, "model", st->model, "choices", "usage",
                                       pq__oa_usage(job)));
  if (!rc) rc = pq_event_stream_append(s, "data: [DONE]\n\n", 14);
  return rc;
}

static pq_err chat_submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  chat_state *st = req->state; /* set before the submit */
  const pq_job *job = req->op.out.job;
  snprintf(st->id, sizeof st->id, "%s-%s", st->legacy ? "cmpl" : "chatcmpl", job->id);
  st->created = job->created_at / 1000;
  if (!st->stream) return pq_api_answer_when_done(req, job->id, PQ__OA_WAIT_MS, chat_answer, st);
  pq_event_stream *s;
  pq_err e = pq_event_stream_start(req, job->id, NULL, "text/event-stream", chat_emit, st, &s);
  if (e != PQ_OK) return e;
  s->cur.started = true; /* the queued event has no place in this format */
  s->cancel_if_abandoned = true; /* an SDK that aborts its stream frees the GPU */
  if (st->legacy) /* echo: the prompt first, apart from the answer's own bytes */
    return st->echo && pq__oa_data_line(s, chunk(st, 0, json_pack("{s:s}", "content", st->echo), NULL, NULL))
               ? PQ_ERR_NO_MEMORY : PQ_OK;
  /* the first chunk carries the role */
  return pq__oa_data_line(s, chunk(st, 0, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL, NULL))
             ? PQ_ERR_NO_MEMORY : PQ_OK;
}

static chat_state *new_state(pq_req *req, const char *model) {
  chat_state *st = pq_req_alloc(req, sizeof *st);
  if (!st) return NULL;
  memset(st, 0, sizeof *st);
  snprintf(st->model, sizeof st->model, "%s", model);
  return st;
}

static pq_err submit(pq_req *req, chat_state *st, json_t *native, const char *model) {
  if (!pq_coord_model_served(req->coord, model)) {
    json_decref(native);
    return pq__oa_model_not_found(req, model);
  }
  req->state = st;
  pq_err e = pq_api_submit_for_caller(req, native, chat_submitted);
  json_decref(native);
  return e;
}

static pq_err completion_to_native(pq_req *req, json_t *body, const char *model, chat_state *st, json_t **out);

/* A chat completion, or (legacy) a text completion: queued, then answered or streamed. */
static pq_err answer(pq_req *req, bool legacy) {
  const char *model = NULL;
  pq_err e = pq_json_string(req, req->body, "model", true, 128, &model);
  if (e != PQ_OK) return e;
  chat_state *st = new_state(req, model);
  if (!st) return PQ_ERR_NO_MEMORY;
  json_t *native = NULL;
  e = legacy ? completion_to_native(req, req->body, model, st, &native)
             : chat_to_native(req, req->body, model, &native, st);
  return e != PQ_OK ? e : submit(req, st, native, model);
}

pq_err pq__oa_chat(pq_req *req) { return answer(req, false); }

/* ---- legacy completions ---- */

/* What the legacy completions take besides the chat parameters they share;
 * logprobs is an integer there (how many alternatives). */
static const char *const legacy_fields[] = {"model", "prompt", "stream", "stream_options", "echo", "suffix",
                                            "best_of", NULL};
static const char *const legacy_params[] = {"max_tokens", "temperature", "top_p", "stop", "seed", "n", "user",
                                            "logprobs", "presence_penalty", "frequency_penalty", "logit_bias", NULL};

/* The legacy request as a completion job; st gets its streaming and echo. */
static pq_err completion_to_native(pq_req *req, json_t *body, const char *model, chat_state *st, json_t **out) {
  pq_err e;
  *out = NULL;
  st->legacy = true;
  if ((e = pq__oa_only(req, body, legacy_fields, legacy_params)) ||
      (e = stream_options(req, body, &st->stream, &st->include_usage)))
    return e;
  json_t *prompt = json_object_get(body, "prompt");
  if (json_is_array(prompt) && json_array_size(prompt) == 1 && json_is_string(json_array_get(prompt, 0)))
    prompt = json_array_get(prompt, 0);
  if (!json_is_string(prompt))
    return pq__oa_bad_param(req, "prompt", "invalid_request",
                            "'prompt' must be one string (token ids and several prompts are not supported here)");
  json_t *suffix = json_object_get(body, "suffix"), *best_of = json_object_get(body, "best_of");
  if (suffix && !json_is_null(suffix))
    return pq__oa_bad_param(req, "suffix", "unsupported_parameter", "'suffix' (insertion) is not supported");
  if (best_of && !json_is_null(best_of) && json_integer_value(best_of) != 1)
    return pq__oa_bad_param(req, "best_of", "unsupported_parameter", "'best_of' other than 1 is not supported");
  bool echo = false;
  if ((e = pq_json_bool(req, body, "echo", &echo))) return e;
  if (echo) st->echo = json_string_value(prompt);
  /* the legacy logprobs is a count of alternatives: the chat job's top_logprobs */
  json_t *chat_body = json_deep_copy(body), *lp = json_object_get(body, "logprobs");
  json_object_del(chat_body, "logprobs");
  if (lp && !json_is_null(lp)) {
    if (!json_is_integer(lp) || json_integer_value(lp) < 0 || json_integer_value(lp) > 5) {
      json_decref(chat_body);
      return pq__oa_bad_param(req, "logprobs", "invalid_request", "'logprobs' must be an integer from 0 to 5");
    }
    json_object_set_new(chat_body, "logprobs", json_true());
    json_object_set(chat_body, "top_logprobs", lp);
  }
  /* OpenAI's legacy default is 16 tokens */
  if (!json_object_get(body, "max_tokens") || json_is_null(json_object_get(body, "max_tokens")))
    json_object_set_new(chat_body, "max_tokens", json_integer(16));
  json_t *params;
  e = pq__oa_chat_params(req, chat_body, model, &params);
  json_decref(chat_body);
  if (e) return e;
  *out = json_pack("{s:s,s:s,s:O,s:o}", "model", model, "kind", "completion", "prompt", prompt, "params", params);
  return *out ? PQ_OK : PQ_ERR_NO_MEMORY;
}

pq_err pq__oa_completions(pq_req *req) { return answer(req, true); }

/* ---- a batch's requests ---- */

pq_err pq__oa_chat_native(pq_req *req, json_t *body, bool legacy, json_t **native) {
  const char *model = NULL;
  chat_state st = {0};
  *native = NULL;
  pq_err e = pq_json_string(req, body, "model", true, 128, &model);
  if (e == PQ_OK)
    e = legacy ? completion_to_native(req, body, model, &st, native) : chat_to_native(req, body, model, native, &st);
  if (e == PQ_OK && (st.stream || st.echo))
    e = pq__oa_bad_param(req, st.stream ? "stream" : "echo", "unsupported_parameter",
                         "'%s' is not supported in a batch", st.stream ? "stream" : "echo");
  if (e == PQ_OK && !pq_coord_model_served(req->coord, model)) e = pq__oa_model_not_found(req, model);
  if (e != PQ_OK) {
    json_decref(*native);
    *native = NULL;
  }
  return e;
}
