/* The job's public JSON shape, and the validation of a submitted job. */
#include <sodium.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "http/json_in.h"

#define MAX_MODEL_LEN 128
#define MAX_MESSAGES 1024

json_t *pq_api_time(int64_t ms) {
  char buf[PQ_TIME_BUF];
  return ms ? json_string(pq_format_time(ms, buf, sizeof buf)) : json_null();
}

static json_t *parsed_or_string(const char *text) {
  if (!text) return json_null();
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  return v ? v : json_string(text);
}

json_t *pq_api_output_json(const pq_job *job) { return parsed_or_string(job->output); }

char *pq_api_output_text(const pq_job *job) {
  json_t *out = pq_api_output_json(job);
  char *text = json_is_null(out)     ? NULL
               : json_is_string(out) ? strdup(json_string_value(out))
                                     : json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(out);
  return text;
}

json_t *pq_api_job_json(const pq_job *j) {
  json_t *usage = json_null(), *error = json_null(), *latency = json_null();
  if (j->state == PQ_JOB_COMPLETED || j->prompt_tokens || j->completion_tokens)
    usage = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)j->prompt_tokens,
                      "completion_tokens", (json_int_t)j->completion_tokens, "total_tokens",
                      (json_int_t)(j->prompt_tokens + j->completion_tokens));
  if (j->error_code)
    error = json_pack("{s:s,s:s?}", "code", j->error_code, "message", j->error_message);
  if (j->finished_at) {
    int64_t queued = (j->leased_at ? j->leased_at : j->finished_at) - j->created_at;
    latency = json_pack("{s:I,s:I,s:I}", "queue", (json_int_t)queued, "run",
                        (json_int_t)(j->leased_at ? j->finished_at - j->leased_at : 0), "total",
                        (json_int_t)(j->finished_at - j->created_at));
  }
  return json_pack(
      "{s:s,s:I,s:s,s:s,s:i,s:o,s:i,s:i,s:I,s:o,s:o,s:o,s:o,s:o,s:s?,s:b,s:o,s:o,s:o,s:o}", "id",
      j->id, "number", (json_int_t)j->number, "model", j->model, "status",
      pq_job_state_name(j->state), "priority", j->priority, "input", parsed_or_string(j->input),
      "attempts", j->attempts, "max_attempts", j->max_attempts, "lease_timeout_s",
      (json_int_t)(j->lease_timeout_ms / 1000), "created_at", pq_api_time(j->created_at),
      "updated_at", pq_api_time(j->updated_at), "leased_at", pq_api_time(j->leased_at),
      "completed_at", pq_api_time(j->finished_at), "expires_at", pq_api_time(j->expires_at),
      "worker_id", j->worker_id, "cancel_requested", j->cancel_requested, "output",
      parsed_or_string(j->output), "usage", usage, "error", error, "latency_ms", latency);
}

const char *pq_api_end_code(const pq_job *job) {
  switch (job->state) {
    case PQ_JOB_CANCELLED: return "CANCELLED";
    case PQ_JOB_EXPIRED: return "EXPIRED";
    case PQ_JOB_DEAD: return "MAX_ATTEMPTS";
    default: return "FAILED";
  }
}

/* ---- submit validation ---- */

static pq_err check_messages(pq_req *req, json_t *messages) {
  static const char *const roles[] = {"system", "user", "assistant", "tool", NULL};
  static const char *const fields[] = {"role", "content", "name", "tool_call_id", NULL};
  if (!json_is_array(messages) || json_array_size(messages) == 0 ||
      json_array_size(messages) > MAX_MESSAGES)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "messages"),
                       "'messages' must be a non-empty array of at most %d messages", MAX_MESSAGES);
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    char where[48];
    snprintf(where, sizeof where, "messages[%zu]", i);
    if (!json_is_object(m))
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", where),
                         "'%s' must be an object", where);
    pq_err e;
    const char *role = NULL, *content = NULL, *name = NULL;
    if ((e = pq_json_only(req, m, where, fields)) || (e = pq_json_string(req, m, "role", true, 32, &role)) ||
        (e = pq_json_string(req, m, "content", true, 0, &content)) ||
        (e = pq_json_string(req, m, "name", false, 128, &name)))
      return e;
    bool known = false;
    for (int r = 0; roles[r]; r++) known |= strcmp(role, roles[r]) == 0;
    if (!known)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", where),
                         "'%s.role' must be system, user, assistant or tool", where);
  }
  return PQ_OK;
}

static pq_err check_number(pq_req *req, json_t *params, const char *key, double min, double max) {
  json_t *v = json_object_get(params, key);
  if (!v || json_is_null(v)) return PQ_OK;
  if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", key),
                       "'params.%s' must be a number between %g and %g", key, min, max);
  return PQ_OK;
}

static pq_err check_params(pq_req *req, json_t *params) {
  static const char *const fields[] = {"max_tokens", "temperature", "top_p", "stop", "seed", NULL};
  if (!json_is_object(params))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "params"),
                       "'params' must be an object");
  pq_err e;
  int64_t n;
  if ((e = pq_json_only(req, params, "params", fields)) ||
      (e = pq_json_int(req, params, "max_tokens", false, 1, 1000000, &n)) ||
      (e = pq_json_int(req, params, "seed", false, INT64_MIN, INT64_MAX, &n)) ||
      (e = check_number(req, params, "temperature", 0, 2)) ||
      (e = check_number(req, params, "top_p", 0, 1)))
    return e;
  json_t *stop = json_object_get(params, "stop");
  if (!stop || json_is_null(stop) || json_is_string(stop)) return PQ_OK;
  bool ok = json_is_array(stop) && json_array_size(stop) <= 4;
  size_t i;
  json_t *s;
  json_array_foreach(stop, i, s) ok &= json_is_string(s);
  return ok ? PQ_OK
            : pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "stop"),
                          "'params.stop' must be a string or an array of up to 4 strings");
}

/* Builds the canonical input object {system, prompt, messages, params}. */
static pq_err build_input(pq_req *req, json_t *src, json_t **out) {
  const char *system = NULL, *prompt = NULL;
  pq_err e;
  if ((e = pq_json_string(req, src, "system", false, 0, &system)) ||
      (e = pq_json_string(req, src, "prompt", false, 0, &prompt)))
    return e;
  json_t *messages = json_object_get(src, "messages");
  json_t *params = json_object_get(src, "params");
  json_t *embeddings = json_object_get(src, "embeddings");
  if (embeddings && !json_is_null(embeddings)) { /* texts to embed instead of a prompt */
    bool ok = json_is_string(embeddings) ||
              (json_is_array(embeddings) && json_array_size(embeddings) > 0 && json_array_size(embeddings) <= 2048);
    size_t i;
    json_t *t;
    if (json_is_array(embeddings)) json_array_foreach(embeddings, i, t) ok &= json_is_string(t);
    if (!ok || prompt || messages || system)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "embeddings"),
                         "'embeddings' must be a string or 1 to 2048 strings, without a prompt or messages");
    *out = json_pack("{s:O}", "embeddings", embeddings);
    return *out ? PQ_OK : PQ_ERR_NO_MEMORY;
  }
  if (messages && !json_is_null(messages) && (e = check_messages(req, messages))) return e;
  if (params && !json_is_null(params) && (e = check_params(req, params))) return e;
  bool has_messages = messages && json_is_array(messages);
  if (!has_messages && (!prompt || !*prompt) && (!system || !*system))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:[s,s,s]}", "fields", "prompt", "messages", "system"),
                       "a job needs a 'prompt', 'messages' or a 'system' prompt");
  json_t *input = json_object();
  if (system) json_object_set_new(input, "system", json_string(system));
  if (prompt) json_object_set_new(input, "prompt", json_string(prompt));
  if (has_messages) json_object_set(input, "messages", messages);
  if (params && json_is_object(params)) json_object_set(input, "params", params);
  *out = input;
  return PQ_OK;
}

pq_err pq_api_parse_submit(pq_req *req, json_t *body, pq_job **out) {
  static const char *const fields[] = {"model", "system", "prompt", "messages", "params", "embeddings",
                                       "input", "priority", "max_attempts", "ttl_s", "lease_timeout_s", NULL};
  static const char *const input_fields[] = {"system", "prompt", "messages", "params", "embeddings", NULL};
  const char *model = NULL;
  int64_t priority = 0, max_attempts = 0, ttl_s = 0, lease_s = 0;
  json_t *input = NULL;
  pq_job *job = NULL;
  pq_err e;
  if ((e = pq_json_only(req, body, "the job", fields)) ||
      (e = pq_json_string(req, body, "model", true, MAX_MODEL_LEN, &model)) ||
      (e = pq_json_int(req, body, "priority", false, -1000, 1000, &priority)) ||
      (e = pq_json_int(req, body, "max_attempts", false, 1, 100, &max_attempts)) ||
      (e = pq_json_int(req, body, "ttl_s", false, 1, 30 * 86400, &ttl_s)) ||
      (e = pq_json_int(req, body, "lease_timeout_s", false, 1, 86400, &lease_s)))
    goto out;
  if (!*model) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "model"),
                    "'model' must not be empty");
    goto out;
  }
  json_t *nested = json_object_get(body, "input");
  if (nested) {
    if (!json_is_object(nested)) {
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "input"),
                      "'input' must be an object");
      goto out;
    }
    for (int i = 0; input_fields[i]; i++)
      if (json_object_get(body, input_fields[i])) {
        e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", input_fields[i]),
                        "give '%s' inside 'input' or at the top level, not both", input_fields[i]);
        goto out;
      }
    if ((e = pq_json_only(req, nested, "input", input_fields))) goto out;
  }
  if ((e = build_input(req, nested ? nested : body, &input))) goto out;
  if (!(job = pq_job_new()) || !(job->model = strdup(model)) ||
      !(job->input = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS))) {
    e = PQ_ERR_NO_MEMORY;
    goto out;
  }
  job->priority = (int)priority;
  job->max_attempts = (int)max_attempts;
  job->lease_timeout_ms = lease_s * 1000;
  if (ttl_s) job->expires_at = pq_now_ms() + ttl_s * 1000;

  const char *key = pq_req_header(req, "Idempotency-Key");
  if (key) {
    if (!*key || strlen(key) > 255) {
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "header", "Idempotency-Key"),
                      "the Idempotency-Key header must be 1 to 255 characters");
      goto out;
    }
    /* the same key with a different body is refused: hash the canonical body */
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    if (!text || !(job->idempotency_key = strdup(key))) {
      free(text);
      e = PQ_ERR_NO_MEMORY;
      goto out;
    }
    crypto_hash_sha256(digest, (const unsigned char *)text, strlen(text));
    free(text);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    if (!(job->request_hash = strdup(hex))) {
      e = PQ_ERR_NO_MEMORY;
      goto out;
    }
  }
  *out = job;
  job = NULL;
out:
  json_decref(input);
  pq_job_free(job);
  return e;
}
