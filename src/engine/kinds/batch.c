/* The batch kind: OpenAI's Batch API. A batch is a job the coordinator runs;
 * its requests are ordinary low-priority jobs (its steps), queued with it in
 * one transaction by the submit that creates it, each leased, retried,
 * receipted and priced like any other. The batch counts them as they end
 * (its output: {"total", "completed", "failed"}), sums their cost at the
 * batch price, and completes when the last one has ended. Its deadline is
 * its completion window: when it passes the batch fails with TIMEOUT
 * (expired) and its unfinished requests are cancelled, as they are when the
 * batch is cancelled. The output and error files are written by the API
 * that shows them, from the requests, once they have all ended. */
#include <stdlib.h>
#include <string.h>

#include "engine/kind.h"

#define WINDOW_MS (24 * 3600 * 1000LL) /* "24h", the only window OpenAI offers */
#define CHILD_PAGE 500

/* errors: why its file did not validate (the batch then fails); custom_ids: its
 * requests' ids, in the order of its steps; rejected: requests refused before
 * they were queued (each with its error), which count as failed */
static const char *const fields[] = {"input_file_id", "endpoint", "completion_window", "metadata", "errors",
                                     "custom_ids", "rejected", NULL};
const char *const pq_batch_endpoints[] = {"/v1/chat/completions", "/v1/embeddings", "/v1/responses",
                                          "/v1/completions", NULL};

static pq_err batch_validate(json_t *input, pq_jerr *why) {
  const char *file = NULL, *endpoint = NULL, *window = NULL;
  pq_err e;
  if ((e = pq_jcheck_string(why, input, "input_file_id", true, 128, &file)) ||
      (e = pq_jcheck_string(why, input, "endpoint", true, 64, &endpoint)) ||
      (e = pq_jcheck_string(why, input, "completion_window", true, 16, &window)))
    return e;
  bool known = false;
  for (int i = 0; pq_batch_endpoints[i]; i++) known |= strcmp(pq_batch_endpoints[i], endpoint) == 0;
  if (!known)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "endpoint"),
                       "'endpoint' must be /v1/chat/completions, /v1/embeddings, /v1/responses or /v1/completions");
  if (strcmp(window, "24h") != 0)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "completion_window"), "'completion_window' must be 24h");
  json_t *metadata = json_object_get(input, "metadata");
  if (metadata && !json_is_null(metadata)) {
    bool ok = json_is_object(metadata) && json_object_size(metadata) <= 16;
    const char *key;
    json_t *v;
    json_object_foreach(metadata, key, v) ok &= strlen(key) <= 64 && json_is_string(v) && json_string_length(v) <= 512;
    if (!ok)
      return pq_jerr_set(why, json_pack("{s:s}", "field", "metadata"),
                         "'metadata' must be at most 16 string values (keys up to 64, values up to 512 characters)");
  }
  static const char *const lists[] = {"errors", "custom_ids", "rejected", NULL};
  for (int i = 0; lists[i]; i++) {
    json_t *v = json_object_get(input, lists[i]);
    if (v && !json_is_array(v))
      return pq_jerr_set(why, json_pack("{s:s}", "field", lists[i]), "'%s' must be a list", lists[i]);
  }
  return PQ_OK;
}

static json_int_t count(const json_t *st, const char *key) { return json_integer_value(json_object_get(st, key)); }

static pq_err save_counts(pq_job *job, json_t *st) {
  char *text = json_dumps(st, JSON_COMPACT);
  if (!text) return PQ_ERR_NO_MEMORY;
  free(job->output);
  job->output = text;
  return PQ_OK;
}

static pq_err batch_submit(pq_kind_ctx *ctx, pq_job *job, size_t n_steps) {
  json_t *input = json_loads(job->input, 0, NULL);
  bool invalid = json_array_size(json_object_get(input, "errors")) > 0;
  json_decref(input);
  pq_err result = pq_kind_start(ctx, job, pq_kind_now(ctx) + WINDOW_MS);
  json_t *st = json_pack("{s:I,s:i,s:i}", "total", (json_int_t)n_steps, "completed", 0, "failed", 0);
  if (result == PQ_OK) result = st ? save_counts(job, st) : PQ_ERR_NO_MEMORY;
  json_decref(st);
  if (result != PQ_OK) return result;
  if (invalid) { /* its file did not validate: it fails as OpenAI's does, with the errors */
    if (pq_set_str(&job->error_code, "VALIDATION_FAILED") ||
        pq_set_str(&job->error_message, "the input file did not validate"))
      return PQ_ERR_NO_MEMORY;
    return pq_kind_finish(ctx, job, PQ_JOB_FAILED);
  }
  if (n_steps == 0) return pq_kind_finish(ctx, job, PQ_JOB_COMPLETED);
  return pq_kind_save(ctx, job);
}

static pq_err batch_child_terminal(pq_kind_ctx *ctx, pq_job *parent, const pq_job *child) {
  json_t *st = parent->output ? json_loads(parent->output, 0, NULL) : NULL;
  if (!json_is_object(st)) {
    json_decref(st);
    return PQ_OK; /* not a batch this build started */
  }
  /* a request asked to stop that delivered all the same has its answer */
  bool delivered = child->state == PQ_JOB_COMPLETED || (child->state == PQ_JOB_CANCELLED && child->output);
  const char *key = delivered ? "completed" : "failed";
  json_object_set_new(st, key, json_integer(count(st, key) + 1));
  bool running = !pq_job_state_terminal(parent->state);
  int64_t price = delivered ? pq_kind_batch_price(ctx, child->cost_micros) : 0;
  pq_err result = PQ_OK;
  if (running) parent->cost_micros += price;
  else result = pq_kind_charge(ctx, parent, child, price); /* delivered after a cancel: its hold is settled */
  if (result == PQ_OK) result = save_counts(parent, st);
  bool done = count(st, "completed") + count(st, "failed") >= count(st, "total");
  json_decref(st);
  if (result != PQ_OK) return result;
  if (running && done) return pq_kind_finish(ctx, parent, PQ_JOB_COMPLETED);
  return pq_kind_save(ctx, parent);
}

/* Cancelled or expired: what has not run will not, and what runs is asked to stop. */
static pq_err batch_terminal(pq_kind_ctx *ctx, const pq_job *job) {
  if (job->state == PQ_JOB_COMPLETED) return PQ_OK;
  int64_t after = 0;
  pq_err result = PQ_OK;
  for (;;) {
    pq_job **steps = NULL;
    size_t n = 0;
    if ((result = pq_kind_children(ctx, job->id, after, CHILD_PAGE, &steps, &n)) != PQ_OK) return result;
    for (size_t i = 0; result == PQ_OK && i < n; i++) {
      after = steps[i]->number;
      if (!pq_job_state_terminal(steps[i]->state)) result = pq_kind_cancel(ctx, steps[i]->id);
    }
    pq_job_free_array(steps, n);
    if (result != PQ_OK || n < CHILD_PAGE) return result;
  }
}

const pq_job_kind pq_kind_batch = {
    .name = "batch",
    .steps_from_submit = true,
    .input_fields = fields,
    .default_model = "batch", /* run here, never queued for a worker of a model */
    .validate = batch_validate,
    .on_submit = batch_submit,
    .on_terminal = batch_terminal,
    .on_child_terminal = batch_child_terminal,
    .follows_children_after_end = true,
};
