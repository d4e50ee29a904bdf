/* The echo backend: answers with the prompt (or the last user message), one
 * whitespace-separated token at a time. Deterministic, for demos and tests;
 * tokens are counted as words. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/backend.h"
#include "base/hash.h"

typedef struct {
  int64_t delay_ms;
} echo_ctx;

static int echo_create(const pq_backend_config *cfg, void **ctx) {
  echo_ctx *e = calloc(1, sizeof *e);
  if (!e) return -1;
  e->delay_ms = cfg->echo_delay_ms;
  *ctx = e;
  return 0;
}

static void echo_destroy(void *ctx) { free(ctx); }

static int64_t count_words(const char *s) {
  int64_t n = 0;
  bool in_word = false;
  for (; s && *s; s++) {
    bool space = isspace((unsigned char)*s);
    if (!space && !in_word) n++;
    in_word = !space;
  }
  return n;
}

static const char *text_to_echo(json_t *input, int64_t *prompt_tokens) {
  const char *text = json_string_value(json_object_get(input, "prompt"));
  *prompt_tokens = count_words(json_string_value(json_object_get(input, "system"))) + count_words(text);
  json_t *messages = json_object_get(input, "messages");
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    const char *content = json_string_value(json_object_get(m, "content"));
    *prompt_tokens += count_words(content);
    const char *role = json_string_value(json_object_get(m, "role"));
    if (role && strcmp(role, "user") == 0 && !json_object_get(input, "prompt")) text = content;
  }
  if (!text) text = json_string_value(json_object_get(input, "system"));
  return text ? text : "";
}

/* Embeddings: 8 numbers (or params.dimensions) per text from its hash, the
 * same every time. Token ids are hashed as their JSON text. */
static void echo_embed(const char *model, json_t *texts, json_t *params, pq_backend_result *out) {
  bool one_token_list = json_is_array(texts) && json_is_integer(json_array_get(texts, 0));
  json_t *list = json_is_array(texts) && !one_token_list ? json_incref(texts) : json_pack("[O]", texts);
  json_int_t dims = json_integer_value(json_object_get(params, "dimensions"));
  if (dims <= 0) dims = 8;
  json_t *data = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(list, i, t) {
    char *tokens = json_is_array(t) ? json_dumps(t, JSON_COMPACT) : NULL;
    const char *s = tokens ? tokens : json_string_value(t);
    uint64_t h = pq_fnv1a_str(s ? s : "");
    json_t *vec = json_array();
    for (json_int_t k = 0; k < dims; k++, h = h * 6364136223846793005ull + 1442695040888963407ull)
      json_array_append_new(vec, json_real((double)(h >> 11) / (double)(1ull << 53) * 2.0 - 1.0));
    json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index", (json_int_t)i,
                                          "embedding", vec));
    out->prompt_tokens += tokens ? (int64_t)json_array_size(t) : count_words(s);
    free(tokens);
  }
  json_t *result = json_pack("{s:s,s:o,s:s}", "object", "list", "data", data, "model", model);
  out->output = json_dumps(result, JSON_COMPACT);
  out->output_is_json = true;
  json_decref(result);
  json_decref(list);
}

static void echo_run(void *ctx, const char *kind, const char *model, json_t *input, volatile sig_atomic_t *cancel,
                     pq_backend_emit_fn emit, void *emit_ctx, pq_backend_result *out) {
  echo_ctx *e = ctx;
  if (strcmp(kind, "embedding") == 0) {
    echo_embed(model, json_object_get(input, "embeddings"), json_object_get(input, "params"), out);
    return;
  }
  if (strcmp(kind, "chat") != 0 && strcmp(kind, "completion") != 0) {
    pq_backend_unsupported_kind(out, "echo", kind);
    return;
  }
  const char *text = text_to_echo(input, &out->prompt_tokens);
  size_t len = strlen(text);
  if (!(out->output = malloc(len + 1))) {
    out->failed = true;
    out->retryable = true;
    snprintf(out->error_code, sizeof out->error_code, "OUT_OF_MEMORY");
    return;
  }
  /* emit token by token so a delay (and a cancel) act between tokens */
  size_t pos = 0;
  while (pos < len) {
    size_t end = pos;
    while (end < len && isspace((unsigned char)text[end])) end++;
    while (end < len && !isspace((unsigned char)text[end])) end++;
    if (*cancel) break;
    if (e->delay_ms > 0) {
      struct timespec ts = {.tv_sec = e->delay_ms / 1000, .tv_nsec = (e->delay_ms % 1000) * 1000000};
      nanosleep(&ts, NULL);
    }
    memcpy(out->output + pos, text + pos, end - pos);
    if (emit) emit(emit_ctx, text + pos, end - pos, NULL);
    pos = end;
    out->completion_tokens++;
  }
  out->output[pos] = '\0';
  json_int_t n = json_integer_value(json_object_get(json_object_get(input, "params"), "n"));
  if (n > 1) { /* n choices, all the same echo */
    json_t *choices = json_array();
    for (json_int_t k = 0; k < n; k++)
      json_array_append_new(choices, json_pack("{s:I,s:{s:s,s:s},s:s}", "index", (json_int_t)k, "message", "role",
                                               "assistant", "content", out->output, "finish_reason", "stop"));
    json_t *rich = json_pack("{s:s,s:s,s:o}", "content", out->output, PQ_CHAT_RESULT_KEY, "stop", "choices", choices);
    free(out->output);
    out->output = json_dumps(rich, JSON_COMPACT);
    out->output_is_json = true;
    out->completion_tokens *= n;
    json_decref(rich);
  }
}

/* seed and user change nothing in an echo, so they are honoured as given */
static const char *const echo_params[] = {"n", "seed", "user", "dimensions", NULL};

const pq_backend_ops pq_backend_echo = {
    .name = "echo",
    .params = echo_params,
    .create = echo_create,
    .destroy = echo_destroy,
    .run = echo_run,
};
