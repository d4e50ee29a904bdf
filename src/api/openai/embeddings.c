/* Embeddings, as embedding jobs: texts or token ids, `dimensions` and
 * `user` carried to the worker, vectors as floats or base64. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai/internal.h"
#include "http/json_in.h"

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

json_t *pq__oa_embeddings_body(const pq_job *job, const char *format) {
  json_t *out = job->output ? json_loads(job->output, 0, NULL) : NULL;
  json_t *data = json_object_get(out, "data");
  if (!json_is_array(data)) {
    json_decref(out);
    return NULL;
  }
  if (format && strcmp(format, "base64") == 0) {
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
      json_t *encoded = as_base64(json_object_get(item, "embedding"));
      if (encoded) json_object_set_new(item, "embedding", encoded);
    }
  }
  json_t *body = json_pack("{s:s,s:O,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", job->model, "usage",
                           "prompt_tokens", (json_int_t)job->prompt_tokens, "total_tokens", (json_int_t)job->prompt_tokens);
  json_decref(out);
  return body;
}

static pq_err embeddings_answer(pq_req *req, const pq_job *job, void *ctx) {
  (void)ctx;
  if (!job) return pq_req_fail(req, PQ_ERR_TIMEOUT, json_pack("{s:s}", "code", "timeout"), "the job did not finish in time");
  if (job->state != PQ_JOB_COMPLETED) return pq__oa_job_failed(req, job);
  json_t *body = pq__oa_embeddings_body(job, json_string_value(json_object_get(req->body, "encoding_format")));
  if (!body)
    return pq_req_fail(req, PQ_ERR_INTERNAL, json_pack("{s:s}", "code", "bad_worker_output"),
                       "the worker did not answer with embeddings");
  return pq_req_reply(req, 200, body);
}

static pq_err embeddings_submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_api_answer_when_done(req, req->op.out.job->id, PQ__OA_WAIT_MS, embeddings_answer, NULL);
}

pq_err pq__oa_embeddings_native(pq_req *req, json_t *body, json_t **native) {
  static const char *const fields[] = {"model", "input", "encoding_format", "dimensions", "user", NULL};
  const char *model = NULL, *format = NULL;
  pq_err e;
  *native = NULL;
  if ((e = pq_json_string(req, body, "model", true, 128, &model)) || (e = pq__oa_only(req, body, fields, NULL)) ||
      (e = pq_json_string(req, body, "encoding_format", false, 16, &format)))
    return e;
  if (format && strcmp(format, "float") != 0 && strcmp(format, "base64") != 0)
    return pq__oa_bad_param(req, "encoding_format", "invalid_request", "'encoding_format' must be float or base64");
  json_t *input = json_object_get(body, "input");
  if (!input)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "input"), "'input' is required");
  if (!pq_coord_model_served(req->coord, model)) return pq__oa_model_not_found(req, model);
  json_t *params = json_object();
  static const char *const carried[] = {"dimensions", "user", NULL};
  for (int k = 0; carried[k]; k++) {
    json_t *v = json_object_get(body, carried[k]);
    if (!v || json_is_null(v)) continue;
    if (strcmp(carried[k], "dimensions") == 0 && !pq_coord_model_honours(req->coord, model, "dimensions")) {
      json_decref(params);
      return pq__oa_bad_param(req, "dimensions", "unsupported_parameter",
                              "'dimensions' is not supported by the workers that serve '%s' now", model);
    }
    json_object_set(params, carried[k], v);
  }
  /* the native job validates the texts and the parameters */
  *native = json_pack("{s:s,s:s,s:O,s:o}", "model", model, "kind", "embedding", "embeddings", input, "params", params);
  return *native ? PQ_OK : PQ_ERR_NO_MEMORY;
}

/* A refusal of the native job names OpenAI's field. */
static void name_the_input(pq_req *req) {
  const char *field = json_string_value(json_object_get(req->error_details, "field"));
  json_object_set_new(req->error_details, "field",
                      json_string(field && strcmp(field, "embeddings") != 0 && strcmp(field, "params") != 0 ? field
                                                                                                           : "input"));
}

pq_err pq__oa_embeddings(pq_req *req) {
  json_t *native = NULL;
  pq_err e = pq__oa_embeddings_native(req, req->body, &native);
  if (e != PQ_OK) return e;
  e = pq_api_submit_for_caller(req, native, embeddings_submitted);
  json_decref(native);
  if (e == PQ_ERR_INVALID_REQUEST && req->error_details) name_the_input(req);
  return e;
}
