/* The embedding kind: texts to embed ({"embeddings": text or [texts], or
 * token ids; "params": {dimensions, user}}). A
 * worker gets the input as stored and answers an OpenAI embeddings list. */
#include "engine/kind.h"

#define MAX_TEXTS 2048

/* Token ids, as OpenAI takes them: a non-empty list of integers. */
static bool tokens_ok(json_t *v) {
  if (!json_is_array(v) || json_array_size(v) == 0) return false;
  size_t i;
  json_t *t;
  json_array_foreach(v, i, t) if (!json_is_integer(t) || json_integer_value(t) < 0) return false;
  return true;
}

/* A string, a list of strings, a list of token ids, or a list of such lists. */
static bool texts_ok(json_t *texts) {
  if (json_is_string(texts) || tokens_ok(texts)) return true;
  if (!json_is_array(texts) || json_array_size(texts) == 0 || json_array_size(texts) > MAX_TEXTS) return false;
  size_t i;
  json_t *t;
  json_array_foreach(texts, i, t) if (!json_is_string(t) && !tokens_ok(t)) return false;
  return true;
}

static pq_err embedding_validate(json_t *input, pq_jerr *why) {
  json_t *texts = json_object_get(input, "embeddings"), *params = json_object_get(input, "params");
  bool other = false;
  static const char *const not_with[] = {"prompt", "messages", "system", NULL};
  for (int k = 0; not_with[k]; k++) {
    json_t *v = json_object_get(input, not_with[k]);
    other |= v && !json_is_null(v);
  }
  if (!texts_ok(texts) || other)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "embeddings"),
                       "'embeddings' must be a string, token ids, or 1 to %d of them, without a prompt or messages",
                       MAX_TEXTS);
  json_t *keep_params = NULL;
  if (params && !json_is_null(params)) {
    static const char *const fields[] = {"dimensions", "user", NULL};
    int64_t dims;
    const char *user;
    pq_err e;
    if (!json_is_object(params))
      return pq_jerr_set(why, json_pack("{s:s}", "field", "params"), "'params' must be an object");
    if ((e = pq_jcheck_only(why, params, "params", fields)) ||
        (e = pq_jcheck_int(why, params, "dimensions", false, 1, 65536, &dims)) ||
        (e = pq_jcheck_string(why, params, "user", false, 256, &user)))
      return e;
    if (json_object_size(params)) keep_params = json_incref(params);
  }
  /* only the texts and what shapes the vectors are kept: generation parameters mean nothing here */
  json_t *keep = json_incref(texts);
  json_object_clear(input);
  json_object_set_new(input, "embeddings", keep);
  if (keep_params) json_object_set_new(input, "params", keep_params);
  return PQ_OK;
}

const pq_job_kind pq_kind_embedding = {
    .name = "embedding",
    .validate = embedding_validate,
};
