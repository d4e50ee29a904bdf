/* The embedding kind: texts to embed ({"embeddings": text or [texts]}). A
 * worker gets the input as stored and answers an OpenAI embeddings list. */
#include "engine/kind.h"

#define MAX_TEXTS 2048

static pq_err embedding_validate(json_t *input, pq_jerr *why) {
  json_t *texts = json_object_get(input, "embeddings");
  bool ok = json_is_string(texts) ||
            (json_is_array(texts) && json_array_size(texts) > 0 && json_array_size(texts) <= MAX_TEXTS);
  size_t i;
  json_t *t;
  if (json_is_array(texts)) json_array_foreach(texts, i, t) ok &= json_is_string(t);
  bool other = false;
  static const char *const not_with[] = {"prompt", "messages", "system", NULL};
  for (int k = 0; not_with[k]; k++) {
    json_t *v = json_object_get(input, not_with[k]);
    other |= v && !json_is_null(v);
  }
  if (!ok || other)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "embeddings"),
                       "'embeddings' must be a string or 1 to %d strings, without a prompt or messages", MAX_TEXTS);
  /* only the texts are kept: generation parameters mean nothing here */
  json_t *keep = json_incref(texts);
  json_object_clear(input);
  json_object_set_new(input, "embeddings", keep);
  return PQ_OK;
}

const pq_job_kind pq_kind_embedding = {
    .name = "embedding",
    .validate = embedding_validate,
};
