/* The openai backend: any OpenAI-compatible server (llama.cpp's server,
 * Ollama, vLLM, LM Studio, LiteLLM, OpenAI, Mistral). Chat jobs stream
 * (`stream: true` with usage), parsed as they arrive and passed on token by
 * token; embedding jobs go to /embeddings. Failures are sorted for the
 * coordinator: connection trouble, 429 and 5xx may succeed on another try;
 * other 4xx will not. A cancel aborts the upstream request and keeps what was
 * produced. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/sse.h"
#include "base/buf.h"
#include "worker/backend.h"

#define MAX_ERROR_BODY 65536

typedef struct {
  char base_url[512];
  char *auth_header;
  char upstream_model[256];
  long timeout_ms;
} oa_ctx;

#define MAX_CHOICES 16

/* One choice of the answer, as its deltas arrive. */
typedef struct {
  pq_buf content, refusal;
  json_t *tool_calls; /* [{id, type, function: {name, arguments}}], built from the deltas */
  pq_buf *args;       /* each call's arguments so far (joined once, at the end: fragments may be many) */
  size_t n_args;
  json_t *logprobs;   /* the tokens' logprobs ("content" entries) */
  char finish[32];
  bool seen;
} oa_choice;

typedef struct {
  CURL *h;
  pq_backend_result *out;
  pq_backend_emit_fn emit;
  void *emit_ctx;
  volatile sig_atomic_t *cancel;
  bool streaming;
  pq_sse_parser sse;
  pq_buf text;     /* the body (embeddings, errors) */
  oa_choice choices[MAX_CHOICES];
  int64_t deltas;
  bool done, finished, malformed, cancelled, usage_seen;
  char stream_error[256];
} oa_call;

static int oa_create(const pq_backend_config *cfg, void **ctx) {
  if (!cfg->base_url || !*cfg->base_url) return -1;
  oa_ctx *c = calloc(1, sizeof *c);
  if (!c) return -1;
  size_t n = strlen(cfg->base_url);
  while (n && cfg->base_url[n - 1] == '/') n--;
  snprintf(c->base_url, sizeof c->base_url, "%.*s", (int)n, cfg->base_url);
  if (cfg->api_key && *cfg->api_key) {
    size_t len = strlen(cfg->api_key) + 32;
    if ((c->auth_header = malloc(len))) snprintf(c->auth_header, len, "Authorization: Bearer %s", cfg->api_key);
  }
  snprintf(c->upstream_model, sizeof c->upstream_model, "%s", cfg->upstream_model ? cfg->upstream_model : "");
  c->timeout_ms = cfg->timeout_ms > 0 ? (long)cfg->timeout_ms : 600000L;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  *ctx = c;
  return 0;
}

static void oa_destroy(void *ctx) {
  oa_ctx *c = ctx;
  free(c->auth_header);
  free(c);
}

static int append_string(json_t *obj, const char *key, const char *more) {
  const char *had = json_string_value(json_object_get(obj, key));
  size_t a = had ? strlen(had) : 0, b = strlen(more);
  char *joined = malloc(a + b + 1);
  if (!joined) return -1;
  memcpy(joined, had ? had : "", a);
  memcpy(joined + a, more, b + 1);
  int rc = json_object_set_new(obj, key, json_string(joined));
  free(joined);
  return rc;
}

/* Folds streamed tool-call fragments ({index, id?, type?, function: {name?,
 * arguments?}}) into whole calls. */
static int fold_tool_calls(oa_choice *ch, json_t *deltas) {
  if (!ch->tool_calls && !(ch->tool_calls = json_array())) return -1;
  size_t i;
  json_t *d;
  json_array_foreach(deltas, i, d) {
    json_int_t at = json_is_integer(json_object_get(d, "index")) ? json_integer_value(json_object_get(d, "index"))
                                                                  : (json_int_t)i;
    if (at < 0 || at > 127) continue;
    while ((json_int_t)json_array_size(ch->tool_calls) <= at)
      json_array_append_new(ch->tool_calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", "", "type", "function",
                                                      "function", "name", "", "arguments", ""));
    json_t *call = json_array_get(ch->tool_calls, (size_t)at), *fn = json_object_get(call, "function");
    json_t *dfn = json_object_get(d, "function");
    const char *id = json_string_value(json_object_get(d, "id"));
    const char *name = json_string_value(json_object_get(dfn, "name"));
    const char *args = json_string_value(json_object_get(dfn, "arguments"));
    if (id && *id) json_object_set_new(call, "id", json_string(id));
    if (name && append_string(fn, "name", name)) return -1;
    if ((size_t)at >= ch->n_args) {
      pq_buf *grown = realloc(ch->args, ((size_t)at + 1) * sizeof *grown);
      if (!grown) return -1;
      memset(grown + ch->n_args, 0, ((size_t)at + 1 - ch->n_args) * sizeof *grown);
      ch->args = grown;
      ch->n_args = (size_t)at + 1;
    }
    if (args && pq_buf_add(&ch->args[at], args, strlen(args))) return -1;
  }
  return 0;
}

/* The legacy completions' logprobs (parallel lists) as chat's, one entry per token. */
static json_t *chat_logprobs(json_t *legacy) {
  json_t *tokens = json_object_get(legacy, "tokens"), *lps = json_object_get(legacy, "token_logprobs");
  json_t *tops = json_object_get(legacy, "top_logprobs"), *out = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(tokens, i, t) {
    json_t *alts = json_array(), *top = json_array_get(tops, i), *lp = json_array_get(lps, i);
    const char *key;
    json_t *v;
    json_object_foreach(top, key, v) json_array_append_new(alts, json_pack("{s:s,s:O}", "token", key, "logprob", v));
    json_array_append_new(out, json_pack("{s:O,s:O,s:o}", "token", t, "logprob", lp ? lp : json_null(),
                                         "top_logprobs", alts));
  }
  return out;
}

static int take_parts(oa_call *call, json_int_t index, oa_choice *ch, const char *content, const char *refusal,
                      json_t *calls, json_t *logprobs, const char *finish);

/* One choice of one streamed chunk: kept, and passed on as it came. */
static int take_choice(oa_call *call, json_t *choice) {
  json_int_t index = json_integer_value(json_object_get(choice, "index"));
  if (index < 0 || index >= MAX_CHOICES) return 0;
  oa_choice *ch = &call->choices[index];
  ch->seen = true;
  json_t *delta = json_object_get(choice, "delta");
  const char *content = json_string_value(json_object_get(delta, "content"));
  if (!delta) content = json_string_value(json_object_get(choice, "text")); /* /completions */
  const char *refusal = json_string_value(json_object_get(delta, "refusal"));
  json_t *calls = json_object_get(delta, "tool_calls");
  const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
  json_t *logprobs = json_object_get(json_object_get(choice, "logprobs"), "content");
  json_t *converted = NULL;
  if (!logprobs && json_is_array(json_object_get(json_object_get(choice, "logprobs"), "tokens")))
    logprobs = converted = chat_logprobs(json_object_get(choice, "logprobs"));
  int rc = take_parts(call, index, ch, content, refusal, calls, logprobs, finish);
  json_decref(converted);
  return rc;
}

static int take_parts(oa_call *call, json_int_t index, oa_choice *ch, const char *content, const char *refusal,
                      json_t *calls, json_t *logprobs, const char *finish) {
  if (finish) snprintf(ch->finish, sizeof ch->finish, "%s", finish);
  if (content && *content && pq_buf_add(&ch->content, content, strlen(content))) return 1;
  if (refusal && *refusal && pq_buf_add(&ch->refusal, refusal, strlen(refusal))) return 1;
  if (json_is_array(calls) && fold_tool_calls(ch, calls)) return 1;
  if (json_is_array(logprobs) && json_array_size(logprobs)) {
    if (!ch->logprobs && !(ch->logprobs = json_array())) return 1;
    json_array_extend(ch->logprobs, logprobs);
  }
  bool has_calls = json_is_array(calls) && json_array_size(calls);
  bool has_logprobs = json_is_array(logprobs) && json_array_size(logprobs);
  bool has_content = content && *content;
  if (has_content) call->deltas++;
  if (!call->emit || (!has_content && !has_calls && !has_logprobs && !(refusal && *refusal))) return 0;
  if (index == 0 && !has_calls && !has_logprobs && !(refusal && *refusal)) { /* plain text */
    call->emit(call->emit_ctx, content, strlen(content), NULL);
    return 0;
  }
  json_t *piece = json_object();
  if (index) json_object_set_new(piece, "index", json_integer(index));
  if (has_content) json_object_set_new(piece, "content", json_string(content));
  if (refusal && *refusal) json_object_set_new(piece, "refusal", json_string(refusal));
  if (has_calls) json_object_set(piece, "tool_calls", calls);
  if (has_logprobs) json_object_set_new(piece, "logprobs", json_pack("{s:O}", "content", logprobs));
  call->emit(call->emit_ctx, has_content ? content : "", has_content ? strlen(content) : 0, piece);
  json_decref(piece);
  return 0;
}

/* One `data:` line of the upstream stream. */
static int on_stream_event(void *ctx, const char *event, const char *id, const char *data) {
  (void)event, (void)id;
  oa_call *call = ctx;
  if (strcmp(data, "[DONE]") == 0) {
    call->done = true;
    return 0;
  }
  json_error_t jerr;
  json_t *chunk = json_loads(data, 0, &jerr);
  if (!json_is_object(chunk)) {
    call->malformed = true;
    snprintf(call->stream_error, sizeof call->stream_error, "unreadable chunk from upstream: %s", jerr.text);
    json_decref(chunk);
    return 1;
  }
  json_t *err = json_object_get(chunk, "error");
  if (err) { /* some servers report failures inside the stream */
    const char *msg = json_string_value(json_object_get(err, "message"));
    snprintf(call->stream_error, sizeof call->stream_error, "%s", msg ? msg : "upstream error");
    json_decref(chunk);
    return 1;
  }
  size_t i;
  json_t *choice;
  json_array_foreach(json_object_get(chunk, "choices"), i, choice) {
    if (take_choice(call, choice)) {
      json_decref(chunk);
      return 1;
    }
    if (json_string_value(json_object_get(choice, "finish_reason"))) call->finished = true;
  }
  json_t *usage = json_object_get(chunk, "usage");
  if (json_is_object(usage)) {
    call->usage_seen = true;
    call->out->prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    call->out->completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
  }
  json_decref(chunk);
  return 0;
}

static json_t *choice_message(oa_choice *ch) {
  json_t *m = json_pack("{s:s,s:s?}", "role", "assistant", "content", ch->content.data);
  if (!ch->content.data && !ch->tool_calls) json_object_set_new(m, "content", json_string(""));
  if (ch->tool_calls) json_object_set(m, "tool_calls", ch->tool_calls);
  if (ch->refusal.data) json_object_set_new(m, "refusal", json_string(ch->refusal.data));
  return m;
}

/* Each call's arguments, put together. */
static void join_arguments(oa_choice *ch) {
  for (size_t i = 0; i < ch->n_args && i < json_array_size(ch->tool_calls); i++) {
    json_t *fn = json_object_get(json_array_get(ch->tool_calls, i), "function");
    json_object_set_new(fn, "arguments", json_stringn(ch->args[i].data ? ch->args[i].data : "", ch->args[i].len));
  }
}

/* The answer: text when it is only text that stopped by itself; otherwise
 * the richer object worker/backend.h describes. */
static void chat_output(oa_call *call, pq_backend_result *out) {
  int n = 0;
  bool rich = false;
  for (int k = 0; k < MAX_CHOICES; k++) {
    oa_choice *ch = &call->choices[k];
    join_arguments(ch);
    if (ch->seen) n = k + 1;
    rich |= ch->tool_calls || ch->logprobs || ch->refusal.data || (ch->finish[0] && strcmp(ch->finish, "stop") != 0);
  }
  oa_choice *first = &call->choices[0];
  if (n <= 1 && !rich) {
    out->output = first->content.data ? first->content.data : strdup("");
    first->content.data = NULL;
    return;
  }
  json_t *result = json_pack("{s:s?,s:s}", "content", first->content.data, PQ_CHAT_RESULT_KEY,
                             first->finish[0] ? first->finish : "stop");
  if (!first->content.data && !first->tool_calls) json_object_set_new(result, "content", json_string(""));
  if (first->tool_calls) json_object_set(result, "tool_calls", first->tool_calls);
  if (first->logprobs) json_object_set_new(result, "logprobs", json_pack("{s:O}", "content", first->logprobs));
  if (first->refusal.data) json_object_set_new(result, "refusal", json_string(first->refusal.data));
  if (n > 1) {
    json_t *choices = json_array();
    for (int k = 0; k < n; k++) {
      oa_choice *ch = &call->choices[k];
      json_array_append_new(choices, json_pack("{s:i,s:o,s:s,s:o}", "index", k, "message", choice_message(ch),
                                               "finish_reason", ch->finish[0] ? ch->finish : "stop", "logprobs",
                                               ch->logprobs ? json_pack("{s:O}", "content", ch->logprobs)
                                                            : json_null()));
    }
    json_object_set_new(result, "choices", choices);
  }
  out->output = json_dumps(result, JSON_COMPACT);
  out->output_is_json = true;
  json_decref(result);
}

static void free_choices(oa_call *call) {
  for (int k = 0; k < MAX_CHOICES; k++) {
    free(call->choices[k].content.data);
    free(call->choices[k].refusal.data);
    json_decref(call->choices[k].tool_calls);
    for (size_t i = 0; i < call->choices[k].n_args; i++) free(call->choices[k].args[i].data);
    free(call->choices[k].args);
    json_decref(call->choices[k].logprobs);
  }
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud) {
  oa_call *call = ud;
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(call->h, CURLINFO_RESPONSE_CODE, &status);
  if (call->streaming && status == 200) return pq_sse_feed(&call->sse, ptr, len) == 0 ? len : 0;
  if (call->text.len + len > MAX_ERROR_BODY && status != 200) return len; /* keep the start */
  return pq_buf_add(&call->text, ptr, len) == 0 ? len : 0;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  (void)a, (void)b, (void)c, (void)d;
  oa_call *call = ud;
  if (*call->cancel) {
    call->cancelled = true;
    return 1; /* aborts the upstream request */
  }
  return 0;
}

static void fail(pq_backend_result *out, bool retryable, const char *code, const char *fmt, const char *detail) {
  out->failed = true;
  out->retryable = retryable;
  snprintf(out->error_code, sizeof out->error_code, "%s", code);
  snprintf(out->error_message, sizeof out->error_message, fmt, detail);
}

/* The upstream's own words for a failed request. */
static const char *upstream_message(oa_call *call, char *buf, size_t size) {
  json_t *body = call->text.data ? json_loads(call->text.data, 0, NULL) : NULL;
  const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
  if (!msg) msg = json_string_value(json_object_get(body, "error"));
  snprintf(buf, size, "%s", msg ? msg : call->text.data ? call->text.data : "no details");
  json_decref(body);
  return buf;
}

static void perform(oa_ctx *c, oa_call *call, const char *path, json_t *body) {
  char url[700], *payload = json_dumps(body, JSON_COMPACT), msg[300];
  snprintf(url, sizeof url, "%s%s", c->base_url, path);
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (call->streaming) headers = curl_slist_append(headers, "Accept: text/event-stream");
  if (c->auth_header) headers = curl_slist_append(headers, c->auth_header);
  CURL *h = call->h = curl_easy_init();
  if (!h || !payload) {
    fail(call->out, true, "OUT_OF_MEMORY", "%s", "cannot start the upstream request");
    goto out;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, call);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, call);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  pq_backend_result *out = call->out;
  if (call->cancelled) goto out; /* keeps what was produced; the job ends cancelled */
  if (call->malformed || call->stream_error[0]) {
    fail(out, true, "UPSTREAM_BAD_STREAM", "%s", call->stream_error);
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    fail(out, true, "UPSTREAM_TIMEOUT", "the model server did not answer within %s", "the request timeout");
  } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
    fail(out, true, "UPSTREAM_UNAVAILABLE", "cannot reach the model server: %s", curl_easy_strerror(rc));
  } else if (rc != CURLE_OK) {
    fail(out, true, "UPSTREAM_DISCONNECTED", "the model server dropped the connection: %s", curl_easy_strerror(rc));
  } else if (status == 429) {
    fail(out, true, "UPSTREAM_RATE_LIMITED", "the model server is rate limiting: %s", upstream_message(call, msg, sizeof msg));
  } else if (status >= 500) {
    fail(out, true, "UPSTREAM_ERROR", "the model server failed: %s", upstream_message(call, msg, sizeof msg));
  } else if (status != 200) {
    /* the client's request is at fault: say which status and code the model server gave, so the
     * OpenAI door answers that 4xx (an SDK retries a 5xx, and the job would run again) */
    json_t *err = call->text.data ? json_loads(call->text.data, 0, NULL) : NULL;
    const char *ucode = json_string_value(json_object_get(json_object_get(err, "error"), "code"));
    char said[sizeof out->error_message];
    snprintf(said, sizeof said, "the model server refused the job (HTTP %ld%s%.64s): %s", status, ucode ? ", " : "",
             ucode ? ucode : "", upstream_message(call, msg, sizeof msg)); /* the upstream's words are data */
    json_decref(err);
    fail(out, false, "UPSTREAM_REJECTED", "%s", said);
  } else if (call->streaming && !call->done && !call->finished) {
    fail(out, true, "UPSTREAM_DISCONNECTED", "%s", "the stream ended before the answer did");
  }
out:
  if (h) curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  free(payload);
}

static json_t *chat_messages(json_t *input) {
  json_t *messages = json_object_get(input, "messages");
  if (messages) return json_deep_copy(messages);
  json_t *list = json_array();
  const char *system = json_string_value(json_object_get(input, "system"));
  const char *prompt = json_string_value(json_object_get(input, "prompt"));
  if (system && *system) json_array_append_new(list, json_pack("{s:s,s:s}", "role", "system", "content", system));
  if (prompt) json_array_append_new(list, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
  return list;
}

static void oa_run(void *ctx, const char *kind, const char *model, json_t *input, volatile sig_atomic_t *cancel,
                   pq_backend_emit_fn emit, void *emit_ctx, pq_backend_result *out) {
  oa_ctx *c = ctx;
  const char *upstream = c->upstream_model[0] ? c->upstream_model : model;
  oa_call call = {.out = out, .emit = emit, .emit_ctx = emit_ctx, .cancel = cancel};
  bool completion = strcmp(kind, "completion") == 0;
  if (strcmp(kind, "chat") != 0 && strcmp(kind, "embedding") != 0 && !completion) {
    pq_backend_unsupported_kind(out, "openai", kind);
    return;
  }
  json_t *texts = json_object_get(input, "embeddings");
  if (strcmp(kind, "embedding") == 0) {
    json_t *body = json_pack("{s:s,s:O}", "model", upstream, "input", texts);
    json_object_update(body, json_object_get(input, "params")); /* dimensions, user */
    perform(c, &call, "/embeddings", body);
    json_decref(body);
    if (!out->failed && !call.cancelled) {
      json_t *result = json_loads(call.text.data ? call.text.data : "", 0, NULL);
      if (!json_is_object(result) || !json_is_array(json_object_get(result, "data"))) {
        fail(out, true, "UPSTREAM_BAD_STREAM", "%s", "the embeddings answer is not an OpenAI list");
      } else {
        out->prompt_tokens = json_integer_value(json_object_get(json_object_get(result, "usage"), "prompt_tokens"));
        out->output = json_dumps(result, JSON_COMPACT);
        out->output_is_json = true;
      }
      json_decref(result);
    }
    free(call.text.data);
    return;
  }
  json_t *body = json_pack("{s:s,s:b,s:{s:b}}", "model", upstream, "stream", 1, "stream_options", "include_usage", 1);
  if (completion) json_object_set(body, "prompt", json_object_get(input, "prompt"));
  else json_object_set_new(body, "messages", chat_messages(input));
  json_object_update(body, json_object_get(input, "params"));
  if (completion && json_is_true(json_object_get(body, "logprobs"))) { /* the legacy API counts alternatives */
    json_t *top = json_object_get(body, "top_logprobs");
    json_object_set_new(body, "logprobs", json_integer(top ? json_integer_value(top) : 0));
    json_object_del(body, "top_logprobs");
  }
  call.streaming = true;
  pq_sse_init(&call.sse, on_stream_event, &call);
  perform(c, &call, completion ? "/completions" : "/chat/completions", body);
  json_decref(body);
  pq_sse_free(&call.sse);
  if (!call.usage_seen) out->completion_tokens = call.deltas; /* the upstream did not count */
  chat_output(&call, out);
  free_choices(&call);
  free(call.text.data);
}

/* An OpenAI-compatible server takes all of OpenAI's parameters; one that
 * does not answers 400, which the job's client then sees. */
static const char *const oa_params[] = {"seed", "n", "user", "tools", "tool_choice", "parallel_tool_calls",
                                        "response_format", "logprobs", "top_logprobs", "presence_penalty",
                                        "frequency_penalty", "logit_bias", "image_url", "dimensions", NULL};

const pq_backend_ops pq_backend_openai = {
    .name = "openai",
    .params = oa_params,
    .create = oa_create,
    .destroy = oa_destroy,
    .run = oa_run,
};
