/* The job's public JSON shape, and the validation of a submitted job. */
#include <sodium.h>
#include <string.h>

#include "api/api.h"
#include "api/council.h"
#include "engine/kinds/council.h"
#include "base/clock.h"
#include "engine/kind.h"
#include "http/json_in.h"
#include "model/route.h"
#include "webhook/address.h"

#define MAX_MODEL_LEN 128

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

char *pq_api_output_text(const pq_job *job) { return pq_job_output_text(job->output); }

/* Every field of the job's public shape but its input and output. */
static json_t *job_fields(const pq_job *j) {
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
  json_t *obj = json_pack("{s:s,s:I,s:s,s:s,s:s,s:i,s:i,s:i,s:I,s:o,s:o,s:o,s:o,s:o,s:s?,s:b,s:o,s:o,s:o}", "id", j->id,
                   "number", (json_int_t)j->number, "kind", j->kind ? j->kind : PQ_JOB_KIND_DEFAULT, "model",
                   j->model, "status", pq_job_state_name(j->state), "priority", j->priority, "attempts",
                   j->attempts, "max_attempts", j->max_attempts, "lease_timeout_s",
                   (json_int_t)(j->lease_timeout_ms / 1000), "created_at", pq_api_time(j->created_at),
                   "updated_at", pq_api_time(j->updated_at), "leased_at", pq_api_time(j->leased_at),
                   "completed_at", pq_api_time(j->finished_at), "expires_at", pq_api_time(j->expires_at),
                   "worker_id", j->worker_id, "cancel_requested", j->cancel_requested, "usage", usage, "error",
                   error, "latency_ms", latency);
  if (obj && j->parent_id) json_object_set_new(obj, "parent_id", json_string(j->parent_id)); /* a step of that job */
  if (obj && j->requirements) {
    json_t *r = json_loads(j->requirements, 0, NULL);
    if (r) json_object_set_new(obj, "requirements", r);
  }
  if (obj && j->webhook_url) json_object_set_new(obj, "webhook_url", json_string(j->webhook_url));
  if (obj) { /* what it cost its owner (once it ended) and what it holds meanwhile */
    json_object_set_new(obj, "cost", pq_api_money_json(j->cost_micros));
    if (j->held_micros && !pq_job_state_terminal(j->state))
      json_object_set_new(obj, "held", pq_api_money_json(j->held_micros));
  }
  return obj;
}

void pq_api_webhook_from_metadata(json_t *metadata, json_t *native) {
  json_t *url = json_object_get(metadata, "webhook_url");
  if (native && json_is_string(url)) json_object_set(native, "webhook_url", url);
}

bool pq_api_waiting_reason(pq_coord *coord, const pq_job *job, char *why, size_t len) {
  return job->state == PQ_JOB_QUEUED && !pq_job_kind_of(job)->on_submit &&
         pq_coord_unservable(coord, job->model, job->requirements, why, len);
}

json_t *pq_api_job_json(const pq_job *j) {
  json_t *obj = job_fields(j);
  if (obj) {
    json_object_set_new(obj, "input", parsed_or_string(j->input));
    json_object_set_new(obj, "output", parsed_or_string(j->output));
  }
  return obj;
}

int pq_api_job_text(const pq_job *j, pq_buf *out) {
  json_t *obj = job_fields(j);
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!text) return -1;
  size_t len = strlen(text); /* "{...}": the raw fields go in before the closing brace */
  int rc = pq_buf_add(out, text, len - 1);
  free(text);
  if (rc == 0) rc = pq_buf_printf(out, ",\"input\":%s,\"output\":%s}", j->input, j->output ? j->output : "null");
  return rc;
}

#define POSITION_CAP 1000

void pq_api_add_position(pq_coord *coord, const pq_job *job, json_t *obj) {
  int64_t ahead = 0;
  if (!obj || job->state != PQ_JOB_QUEUED || pq_job_kind_of(job)->on_submit ||
      pq_coord_jobs_ahead(coord, job, POSITION_CAP, &ahead) != PQ_OK)
    return;
  json_object_set_new(obj, "position", json_integer(ahead + 1)); /* 1: next to run */
  if (ahead >= POSITION_CAP) json_object_set_new(obj, "more_ahead", json_true());
}

int pq_api_job_summary_text(pq_coord *coord, const pq_job *j, pq_buf *out) {
  json_t *obj = job_fields(j);
  if (coord) pq_api_add_position(coord, j, obj);
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  int rc = text ? pq_buf_add(out, text, strlen(text)) : -1;
  free(text);
  return rc;
}

pq_err pq_api_reply_job(pq_req *req, int status, const pq_job *j) {
  pq_buf b = {0};
  if (pq_api_job_text(j, &b) != 0) {
    pq_buf_free(&b);
    return PQ_ERR_NO_MEMORY;
  }
  return pq_req_reply_text(req, status, NULL, b.data);
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

/* The kind a body asks for: its "kind", else an embedding when it gives
 * texts to embed, else a chat. Decided once, here, and stored with the job. */
static pq_err pick_kind(pq_req *req, json_t *body, json_t *src, const pq_job_kind **out) {
  const char *name = NULL;
  pq_err e = pq_json_string(req, body, "kind", false, 64, &name);
  if (e != PQ_OK) return e;
  if (!name) {
    json_t *texts = json_object_get(src, "embeddings");
    name = texts && !json_is_null(texts) ? "embedding" : PQ_JOB_KIND_DEFAULT;
  }
  if (!(*out = pq_job_kind_find(name))) {
    const char *names[16];
    size_t n = pq_job_kind_names(names, 16);
    json_t *known = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(known, json_string(names[i]));
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:o}", "field", "kind", "kinds", known),
                       "no job kind '%s'", name);
  }
  return PQ_OK;
}

/* The input object from the body's input fields, checked by its kind. */
static pq_err build_input(pq_req *req, const pq_job_kind *kind, json_t *src, const char *const *fields, json_t **out) {
  json_t *input = json_object();
  if (!input) return PQ_ERR_NO_MEMORY;
  for (int i = 0; fields[i]; i++) {
    json_t *v = json_object_get(src, fields[i]);
    if (v) json_object_set(input, fields[i], v);
  }
  pq_jerr why = {0};
  pq_err e = kind->validate(input, &why);
  if (e != PQ_OK) {
    json_decref(input);
    return pq_req_fail_jerr(req, e, &why);
  }
  *out = input;
  return PQ_OK;
}

/* own_key: the job's idempotency key is key (NULL: none), not the request's header (a job of a batch). */
static pq_err parse_submit(pq_req *req, json_t *body, bool own_key, const char *own, pq_job **out) {
  static const char *const job_fields[] = {"model", "kind", "input", "priority", "max_attempts", "ttl_s",
                                           "lease_timeout_s", "requirements", "webhook_url", NULL};
  static const char *const common_input[] = {"system", "prompt", "messages", "params", "embeddings", NULL};
  const char *model = NULL, *webhook_url = NULL;
  char *requirements = NULL, why[320];
  int64_t priority = 0, max_attempts = 0, ttl_s = 0, lease_s = 0;
  json_t *input = NULL;
  pq_job *job = NULL;
  const pq_job_kind *kind = NULL;
  pq_err e;
  json_t *nested = json_object_get(body, "input");
  if (nested && !json_is_object(nested)) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "input"), "'input' must be an object");
    goto out;
  }
  if ((e = pick_kind(req, body, nested ? nested : body, &kind))) goto out;
  const char *const *input_fields = kind->input_fields ? kind->input_fields : common_input;
  const char *fields[64];
  size_t n_fields = 0;
  for (size_t i = 0; job_fields[i]; i++) fields[n_fields++] = job_fields[i];
  for (size_t i = 0; input_fields[i] && n_fields < 63; i++) fields[n_fields++] = input_fields[i];
  fields[n_fields] = NULL;
  if (nested)
    for (int i = 0; input_fields[i]; i++)
      if (json_object_get(body, input_fields[i])) {
        e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", input_fields[i]),
                        "give '%s' inside 'input' or at the top level, not both", input_fields[i]);
        goto out;
      }
  if ((e = pq_json_only(req, body, "the job", fields)) ||
      (nested && (e = pq_json_only(req, nested, "input", input_fields))) ||
      (e = pq_json_string(req, body, "model", !kind->default_model, MAX_MODEL_LEN, &model)) ||
      (e = pq_json_int(req, body, "priority", false, -1000, 1000, &priority)) ||
      (e = pq_json_int(req, body, "max_attempts", false, 1, 100, &max_attempts)) ||
      (e = pq_json_int(req, body, "ttl_s", false, 1, 30 * 86400, &ttl_s)) ||
      (e = pq_json_int(req, body, "lease_timeout_s", false, 1, 86400, &lease_s)) ||
      (e = pq_json_string(req, body, "webhook_url", false, 2048, &webhook_url)))
    goto out;
  if (pq_route_require(json_object_get(body, "requirements"), &requirements, why, sizeof why) != 0) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "requirements"), "%s", why);
    goto out;
  }
  if (webhook_url && pq_webhook_url_check(webhook_url, pq_api_settings_of(req)->webhook_allow_private, why,
                                          sizeof why) != 0) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "webhook_url"), "%s", why);
    goto out;
  }
  if (!model) model = kind->default_model;
  else if (!kind->default_model && strcmp(model, PQ_COUNCIL_KIND) == 0) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "model"),
                    "'%s' names the council, not a model: submit kind '%s'", model, PQ_COUNCIL_KIND);
    goto out;
  }
  else if (kind->default_model && strcmp(model, kind->default_model) != 0) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "model"),
                    "a %s job runs here, not on a model: leave 'model' out", kind->name);
    goto out;
  }
  if (!*model) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "model"),
                    "'model' must not be empty");
    goto out;
  }
  if (!pq_job_model_name_ok(model)) {
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "model"),
                    "'model' must not hold control characters");
    goto out;
  }
  if ((e = build_input(req, kind, nested ? nested : body, input_fields, &input))) goto out;
  if (strcmp(kind->name, PQ_COUNCIL_KIND) == 0 && (e = pq_api_council_prepare(req, input))) goto out;
  if (!(job = pq_job_new()) || !(job->model = strdup(model)) || !(job->kind = strdup(kind->name)) ||
      !(job->input = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS))) {
    e = PQ_ERR_NO_MEMORY;
    goto out;
  }
  job->priority = (int)priority;
  job->max_attempts = (int)max_attempts;
  job->requirements = requirements;
  requirements = NULL;
  if (webhook_url && !(job->webhook_url = strdup(webhook_url))) {
    e = PQ_ERR_NO_MEMORY;
    goto out;
  }
  job->lease_timeout_ms = lease_s * 1000;
  if (ttl_s) job->expires_at = pq_now_ms() + ttl_s * 1000;

  const char *key = own_key ? own : pq_req_header(req, "Idempotency-Key");
  if (key) {
    if (!*key || strlen(key) > 255) {
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST,
                      own_key ? json_pack("{s:s}", "field", "idempotency_key")
                              : json_pack("{s:s}", "header", "Idempotency-Key"),
                      "the idempotency key must be 1 to 255 characters");
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
  free(requirements);
  pq_job_free(job);
  return e;
}

pq_err pq_api_parse_submit(pq_req *req, json_t *body, pq_job **out) { return parse_submit(req, body, false, NULL, out); }

pq_err pq_api_parse_submit_keyed(pq_req *req, json_t *body, const char *key, pq_job **out) {
  return parse_submit(req, body, true, key, out);
}
