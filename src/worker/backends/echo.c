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

/* Embeddings: 8 numbers per text from its hash, the same every time. */
static void echo_embed(const char *model, json_t *texts, pq_backend_result *out) {
  json_t *list = json_is_array(texts) ? json_incref(texts) : json_pack("[O]", texts);
  json_t *data = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(list, i, t) {
    const char *s = json_string_value(t);
    uint64_t h = pq_fnv1a_str(s ? s : "");
    json_t *vec = json_array();
    for (int k = 0; k < 8; k++, h = h * 6364136223846793005ull + 1442695040888963407ull)
      json_array_append_new(vec, json_real((double)(h >> 11) / (double)(1ull << 53) * 2.0 - 1.0));
    json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index", (json_int_t)i,
                                          "embedding", vec));
    out->prompt_tokens += count_words(s);
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
    echo_embed(model, json_object_get(input, "embeddings"), out);
    return;
  }
  if (strcmp(kind, "chat") != 0) {
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
    if (emit) emit(emit_ctx, text + pos, end - pos);
    pos = end;
    out->completion_tokens++;
  }
  out->output[pos] = '\0';
}

const pq_backend_ops pq_backend_echo = {
    .name = "echo",
    .create = echo_create,
    .destroy = echo_destroy,
    .run = echo_run,
};
