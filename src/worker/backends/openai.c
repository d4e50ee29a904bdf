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

typedef struct {
  CURL *h;
  pq_backend_result *out;
  pq_backend_emit_fn emit;
  void *emit_ctx;
  volatile sig_atomic_t *cancel;
  bool streaming;
  pq_sse_parser sse;
  pq_buf text;     /* the answer so far (chat) or the body (embeddings, errors) */
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
  json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
  const char *content = json_string_value(json_object_get(json_object_get(choice, "delta"), "content"));
  if (content && *content) {
    size_t n = strlen(content);
    if (pq_buf_add(&call->text, content, n) != 0) {
      json_decref(chunk);
      return 1;
    }
    call->deltas++;
    if (call->emit) call->emit(call->emit_ctx, content, n);
  }
  if (json_string_value(json_object_get(choice, "finish_reason"))) call->finished = true;
  json_t *usage = json_object_get(chunk, "usage");
  if (json_is_object(usage)) {
    call->usage_seen = true;
    call->out->prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    call->out->completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
  }
  json_decref(chunk);
  return 0;
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
    char head[200];
    snprintf(head, sizeof head, "the model server refused the job (HTTP %ld%s%.64s): %%s", status, ucode ? ", " : "",
             ucode ? ucode : "");
    json_decref(err);
    fail(out, false, "UPSTREAM_REJECTED", head, upstream_message(call, msg, sizeof msg));
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
  if (strcmp(kind, "chat") != 0 && strcmp(kind, "embedding") != 0) {
    pq_backend_unsupported_kind(out, "openai", kind);
    return;
  }
  json_t *texts = json_object_get(input, "embeddings");
  if (strcmp(kind, "embedding") == 0) {
    json_t *body = json_pack("{s:s,s:O}", "model", upstream, "input", texts);
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
  json_t *body = json_pack("{s:s,s:o,s:b,s:{s:b}}", "model", upstream, "messages", chat_messages(input),
                           "stream", 1, "stream_options", "include_usage", 1);
  json_t *params = json_object_get(input, "params");
  const char *key;
  json_t *value;
  json_object_foreach(params, key, value) json_object_set(body, key, value);
  call.streaming = true;
  pq_sse_init(&call.sse, on_stream_event, &call);
  perform(c, &call, "/chat/completions", body);
  json_decref(body);
  pq_sse_free(&call.sse);
  if (!call.usage_seen) out->completion_tokens = call.deltas; /* the upstream did not count */
  out->output = call.text.data ? call.text.data : strdup("");
}

const pq_backend_ops pq_backend_openai = {
    .name = "openai",
    .create = oa_create,
    .destroy = oa_destroy,
    .run = oa_run,
};
