/* /v1/jobs: submit, read (with long-poll), list, cancel; and the worker's
 * complete and fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "base/ids.h"
#include "engine/kind.h"
#include "http/json_in.h"

static pq_err job_id_param(pq_req *req, const char **out) {
  const char *id = pq_req_param(req, "id");
  if (!id || !pq_is_uuid(id))
    return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s?}", "id", id), "no job with id '%s'",
                       id ? id : "");
  *out = id;
  return PQ_OK;
}

/* The caller may see a job that is theirs; an admin, any. */
static bool may_see(const pq_req *req, const pq_job *job) {
  return req->caller.admin || strcmp(job->owner ? job->owner : "", req->caller.user_id) == 0;
}

const char *pq_api_owner(const pq_req *req) { return req->caller.user_id; }

/* Someone else's job does not exist, as far as this caller can tell. */
pq_err pq_api_no_such_job(pq_req *req, const char *id) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s?}", "id", id), "no job with id '%s'", id ? id : "");
}

/* A job read for the caller: hidden unless it is theirs. */
static pq_err only_theirs(const pq_req *req, pq_err e, pq_job **out) {
  if (e == PQ_OK && !may_see(req, *out)) {
    pq_job_free(*out);
    e = PQ_ERR_NOT_FOUND;
  }
  if (e != PQ_OK) *out = NULL;
  return e;
}

pq_err pq_api_their_job(pq_req *req, const char *id, pq_job **out) {
  *out = NULL;
  return only_theirs(req, id && pq_is_uuid(id) ? pq_coord_get_job(req->coord, id, 0, out) : PQ_ERR_NOT_FOUND,
                     out);
}

pq_err pq_api_their_job_by_number(pq_req *req, const char *number, pq_job **out) {
  char *end = NULL;
  long long n = number ? strtoll(number, &end, 10) : 0;
  *out = NULL;
  return only_theirs(req, number && *number && !*end && n > 0 ? pq_coord_get_job(req->coord, NULL, n, out)
                                                               : PQ_ERR_NOT_FOUND,
                     out);
}

static pq_err op_error(pq_req *req) {
  pq_err e = req->op.out.result;
  const char *id = pq_req_param(req, "id");
  switch (e) {
    case PQ_ERR_NOT_FOUND:
      return pq_req_fail(req, e, json_pack("{s:s?}", "id", id), "no job with id '%s'", id ? id : "");
    case PQ_ERR_INVALID_REQUEST:
      if (req->op.kind == PQ_OP_COMPLETE)
        return pq_req_fail(req, e, json_pack("{s:s}", "field", "worker_signature"),
                           "the worker signature does not verify with the key this worker registered");
      return e;
    case PQ_ERR_LEASE_MISMATCH:
      return pq_req_fail(req, e, json_pack("{s:s?}", "id", id),
                         "the lease on job '%s' is not held by this token (it expired, was "
                         "reassigned or the job has finished)", id ? id : "");
    default:
      return e;
  }
}

/* ---- submit ---- */

static pq_err submit_done(pq_req *req) {
  if (req->op.out.result != PQ_OK) return op_error(req);
  const pq_job *j = req->op.out.job;
  return pq_req_reply(req, 202,
                      json_pack("{s:s,s:I,s:s,s:o,s:b}", "id", j->id, "number", (json_int_t)j->number,
                                "status", pq_job_state_name(j->state), "created_at",
                                pq_api_time(j->created_at), "idempotent_replay",
                                req->op.out.replayed));
}

/* Every door's submit: a refusal for money says how much, in the caller's
 * dialect (its renderer shapes the message and details), then the door's own
 * continuation runs. */
static pq_err submitted(pq_req *req) {
  pq_err e = req->op.out.result;
  if (e == PQ_ERR_INSUFFICIENT_CREDITS || e == PQ_ERR_BUDGET_EXCEEDED) {
    char need[32], have[32];
    int64_t needed = req->op.out.money.needed, available = req->op.out.money.available;
    json_t *details = json_pack("{s:o,s:o}", "needed", pq_api_money_json(needed), "available",
                                pq_api_money_json(available));
    if (e == PQ_ERR_BUDGET_EXCEEDED) {
      json_object_set_new(details, "budget",
                          json_pack("{s:s,s:s,s:o}", "subject", req->op.out.money.subject, "period",
                                    req->op.out.money.period, "limit", pq_api_money_json(req->op.out.money.limit)));
      return pq_req_fail(req, e, details, "this job may cost up to %s USD; the %s budget of %s has %s USD left",
                         pq_micros_format(needed, need, sizeof need), req->op.out.money.period,
                         req->op.out.money.subject, pq_micros_format(available, have, sizeof have));
    }
    return pq_req_fail(req, e, details, "this job may cost up to %s USD; %s USD is available",
                       pq_micros_format(needed, need, sizeof need), pq_micros_format(available, have, sizeof have));
  }
  return req->then(req);
}

pq_err pq_api_submit_for_caller(pq_req *req, json_t *body, pq_handler_fn resume) {
  return pq_api_submit_with_steps(req, body, NULL, 0, resume);
}

pq_err pq_api_submit_with_steps(pq_req *req, json_t *body, pq_job **steps, size_t n_steps, pq_handler_fn resume) {
  pq_job *job = NULL;
  pq_err e = pq_api_parse_submit(req, body, &job);
  if (e == PQ_OK && !(job->owner = strdup(pq_api_owner(req)))) e = PQ_ERR_NO_MEMORY;
  if (e != PQ_OK) {
    pq_job_free(job);
    pq_job_free_array(steps, n_steps);
    return e;
  }
  req->op.kind = PQ_OP_SUBMIT;
  req->op.in.submit.job = job; /* the op owns it now, and its steps */
  req->op.in.submit.steps = steps;
  req->op.in.submit.n_steps = n_steps;
  req->op.in.submit.key_id = req->caller.key_id; /* its budget, when the key has one */
  req->then = resume;
  pq_req_run_op(req, submitted);
  return PQ_OK;
}

pq_err pq_api_job_submit(pq_req *req) { return pq_api_submit_for_caller(req, req->body, submit_done); }

/* ---- many jobs in one request, each acknowledged or refused on its own ---- */

#define MAX_JOBS_PER_REQUEST 1000

typedef struct {
  json_t *results; /* one entry per job, in order; refused ones filled at once */
  pq_op *ops;
  size_t *slot;    /* ops[i]'s entry in results */
  size_t n_ops;
} submit_many;

static json_t *refusal(pq_err e, const char *message, json_t *details) {
  return json_pack("{s:i,s:{s:s,s:s,s:o,s:b}}", "status", pq_err_http_status(e), "error", "code", pq_err_code(e),
                   "message", message ? message : pq_err_message(e), "details",
                   details ? json_incref(details) : json_object(), "retryable", pq_err_retryable(e));
}

static void free_many(pq_req *req) {
  submit_many *m = req->state;
  json_decref(m->results);
}

/* Room for n operations and their results, freed with the request. */
static submit_many *new_many(pq_req *req, size_t n) {
  submit_many *m = pq_req_alloc(req, sizeof *m);
  if (!m || !(m->ops = pq_req_alloc(req, n * sizeof *m->ops)) || !(m->slot = pq_req_alloc(req, n * sizeof *m->slot)) ||
      !(m->results = json_array()))
    return NULL;
  req->state = m;
  req->state_free = free_many;
  return m;
}

static pq_err many_submitted(pq_req *req) {
  submit_many *m = req->state;
  for (size_t i = 0; i < m->n_ops; i++) {
    pq_op *op = &m->ops[i];
    json_t *entry;
    if (op->out.result == PQ_OK)
      entry = json_pack("{s:i,s:o}", "status", op->out.replayed ? 200 : 202, "job", pq_api_job_json(op->out.job));
    else
      entry = refusal(op->out.result, NULL, NULL);
    json_array_set_new(m->results, m->slot[i], entry);
    pq_op_release(op);
  }
  return pq_req_reply(req, 200, json_pack("{s:O}", "results", m->results));
}


pq_err pq_api_job_submit_many(pq_req *req) {
  static const char *const fields[] = {"jobs", NULL};
  json_t *jobs = json_object_get(req->body, "jobs");
  pq_err e = pq_json_only(req, req->body, "the jobs", fields);
  if (e != PQ_OK) return e;
  size_t n = json_is_array(jobs) ? json_array_size(jobs) : 0;
  if (n == 0 || n > MAX_JOBS_PER_REQUEST)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "jobs"),
                       "'jobs' must be an array of 1 to %d jobs", MAX_JOBS_PER_REQUEST);
  if (pq_req_header(req, "Idempotency-Key"))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "header", "Idempotency-Key"),
                       "give each job its own 'idempotency_key' instead of the header");
  submit_many *m = new_many(req, n);
  if (!m) return PQ_ERR_NO_MEMORY;
  const char *owner = pq_api_owner(req);
  for (size_t i = 0; i < n; i++) {
    json_t *body = json_array_get(jobs, i), *copy = json_is_object(body) ? json_copy(body) : NULL;
    const char *key = json_string_value(json_object_get(body, "idempotency_key"));
    pq_job *job = NULL;
    if (!copy) {
      json_array_append_new(m->results, refusal(PQ_ERR_INVALID_REQUEST, "a job must be an object", NULL));
      continue;
    }
    json_object_del(copy, "idempotency_key");
    if (json_object_get(body, "idempotency_key") && !key)
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "idempotency_key"),
                      "'idempotency_key' must be a string");
    else e = pq_api_parse_submit_keyed(req, copy, key, &job);
    json_decref(copy);
    if (e == PQ_OK && !(job->owner = strdup(owner ? owner : ""))) e = PQ_ERR_NO_MEMORY;
    if (e == PQ_ERR_NO_MEMORY) {
      pq_job_free(job);
      return e;
    }
    if (e != PQ_OK) { /* this one is refused; the others go on */
      json_array_append_new(m->results, refusal(e, req->error_message, req->error_details));
      pq_req_clear_error(req);
      continue;
    }
    json_array_append_new(m->results, json_null());
    m->slot[m->n_ops] = i;
    m->ops[m->n_ops++] = (pq_op){.kind = PQ_OP_SUBMIT, .in.submit = {.job = job, .key_id = req->caller.key_id}};
  }
  if (m->n_ops == 0) return many_submitted(req);
  pq_req_run_ops(req, m->ops, m->n_ops, many_submitted);
  return PQ_OK;
}

/* ---- read, with ?wait=N ---- */

static pq_err get_again(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  uint64_t version = pq_hub_version(pq_coord_hub(req->coord), pq_coord_job_key(id));
  pq_job *job = NULL;
  pq_err e = pq_api_their_job(req, id, &job);
  if (e == PQ_ERR_NOT_FOUND) return pq_api_no_such_job(req, id);
  if (e != PQ_OK) return e;
  bool waiting = !pq_job_state_terminal(job->state) && req->deadline_ms > pq_mono_ms() &&
                 !pq_req_server_stopping(req);
  if (waiting) {
    pq_job_free(job);
    pq_req_wait_job(req, id, version, get_again);
    return PQ_OK;
  }
  char why[256];
  if (job->state == PQ_JOB_QUEUED) { /* where it stands, and why it waits when nobody can run it */
    json_t *obj = pq_api_job_json(job);
    pq_api_add_position(req->coord, job, obj);
    if (pq_api_waiting_reason(req->coord, job, why, sizeof why))
      json_object_set_new(obj, "waiting_reason", json_string(why));
    e = pq_req_reply(req, 200, obj);
  } else {
    e = pq_api_reply_job(req, 200, job);
  }
  pq_job_free(job);
  return e;
}

pq_err pq_api_job_get(pq_req *req) {
  const char *id = NULL;
  int64_t wait_s = 0;
  pq_err e;
  if ((e = job_id_param(req, &id)) || (e = pq_query_int(req, "wait", 0, pq_req_max_wait_s(req), &wait_s)))
    return e;
  req->deadline_ms = wait_s ? pq_mono_ms() + wait_s * 1000 : 0;
  return get_again(req);
}

/* ---- list ---- */

/* A listing's answer stops growing here (a full job may be ~2 MiB): more
 * jobs than fit are left for the next page (has_more, next_offset). */
#define LISTING_MAX_BYTES (4 << 20)

pq_err pq_api_job_list(pq_req *req) {
  pq_job_filter f = {.state = -1, .model = pq_req_query(req, "model"), .limit = 50, .offset = 0,
                     .owner = req->caller.admin ? NULL : pq_api_owner(req), .summary = true};
  int64_t full = 0;
  pq_err e;
  if ((e = pq_query_int(req, "limit", 1, 1000, &f.limit)) ||
      (e = pq_query_int(req, "offset", 0, INT64_MAX / 2, &f.offset)))
    return e;
  const char *full_arg = pq_req_query(req, "full");
  if (full_arg) {
    if (strcmp(full_arg, "1") == 0 || strcmp(full_arg, "true") == 0) full = 1;
    else if (strcmp(full_arg, "0") != 0 && strcmp(full_arg, "false") != 0)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "parameter", "full"),
                         "query parameter 'full' must be true or false");
  }
  const char *status = pq_req_query(req, "status");
  if (status && (f.state = pq_job_state_parse(status)) < 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "parameter", "status"),
                       "unknown status '%s' (queued, leased, completed, failed, cancelled, dead, "
                       "expired)", status);
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = 0;
  if ((e = pq_coord_list_jobs(req->coord, &f, &jobs, &n, &total))) return e;
  /* summaries (no input, no output) unless ?full=1; then each full job is
   * read and written one at a time, so the request holds one at most, and
   * the answer stops at LISTING_MAX_BYTES */
  pq_buf b = {0};
  int rc = pq_buf_add(&b, "{\"data\":[", 9);
  size_t written = 0;
  for (; rc == 0 && written < n && (written == 0 || b.len < LISTING_MAX_BYTES); written++) {
    if (written) rc = pq_buf_add(&b, ",", 1);
    if (rc != 0) break;
    if (!full) {
      rc = pq_api_job_summary_text(req->coord, jobs[written], &b);
      continue;
    }
    pq_job *whole = NULL;
    if ((e = pq_coord_get_job(req->coord, jobs[written]->id, 0, &whole)) != PQ_OK) break;
    rc = pq_api_job_text(whole, &b);
    pq_job_free(whole);
  }
  int64_t next = f.offset + (int64_t)written;
  if (rc == 0 && e == PQ_OK) {
    rc = pq_buf_printf(&b, "],\"pagination\":{\"limit\":%lld,\"offset\":%lld,\"total\":%lld,\"has_more\":%s",
                       (long long)f.limit, (long long)f.offset, (long long)total, next < total ? "true" : "false");
    if (rc == 0 && next < total) rc = pq_buf_printf(&b, ",\"next_offset\":%lld", (long long)next);
    if (rc == 0) rc = pq_buf_printf(&b, "},\"full\":%s}", full ? "true" : "false");
  }
  pq_job_free_array(jobs, n);
  if (e != PQ_OK) {
    pq_buf_free(&b);
    return e;
  }
  if (rc != 0) {
    pq_buf_free(&b);
    return PQ_ERR_NO_MEMORY;
  }
  return pq_req_reply_text(req, 200, NULL, b.data);
}

/* ---- cancel, complete, fail: one operation each, answered with the job ---- */

static pq_err job_done(pq_req *req) {
  if (req->op.out.result == PQ_ERR_INVALID_STATE) {
    const pq_job *j = req->op.out.job;
    return pq_req_fail(req, PQ_ERR_INVALID_STATE,
                       json_pack("{s:s}", "status", j ? pq_job_state_name(j->state) : "unknown"),
                       "the job is already %s", j ? pq_job_state_name(j->state) : "finished");
  }
  if (req->op.out.result != PQ_OK) return op_error(req);
  return pq_api_reply_job(req, 200, req->op.out.job);
}

pq_err pq_api_job_cancel(pq_req *req) {
  const char *id = NULL;
  pq_err e = job_id_param(req, &id);
  if (e != PQ_OK) return e;
  pq_job *job = NULL;
  if ((e = pq_api_their_job(req, id, &job)) == PQ_ERR_NOT_FOUND) return pq_api_no_such_job(req, id);
  pq_job_free(job);
  if (e != PQ_OK) return e;
  req->op.kind = PQ_OP_CANCEL;
  req->op.in.cancel.job_id = id;
  pq_req_run_op(req, job_done);
  return PQ_OK;
}

/* ---- retry: an ended job that did not complete runs again, as a new job ---- */

static pq_err retried(pq_req *req) {
  if (req->op.out.result != PQ_OK) return op_error(req);
  json_t *body = pq_api_job_json(req->op.out.job);
  json_object_set_new(body, "retry_of", json_string(req->state));
  return pq_req_reply(req, 201, body);
}

/* Admins only (the route's role). The job keeps its history; the new one has
 * the same owner, model, kind, input, priority and limits, is charged to the
 * same owner, and answers with "retry_of". A council's step is its council's
 * to retry, so it is refused. */
pq_err pq_api_job_retry(pq_req *req) {
  const char *id = NULL;
  pq_err e = job_id_param(req, &id);
  if (e != PQ_OK) return e;
  pq_job *old = NULL;
  if ((e = pq_api_their_job(req, id, &old)) == PQ_ERR_NOT_FOUND) return pq_api_no_such_job(req, id);
  if (e != PQ_OK) return e;
  const pq_job_kind *kind = pq_job_kind_of(old);
  const char *state = pq_job_state_name(old->state);
  json_t *status = json_pack("{s:s}", "status", state);
  if (!pq_job_state_terminal(old->state) || old->state == PQ_JOB_COMPLETED)
    e = pq_req_fail(req, PQ_ERR_INVALID_STATE, status,
                    "only a job that ended without completing can be retried; this one is %s", state);
  else if (old->parent_id)
    e = pq_req_fail(req, PQ_ERR_INVALID_STATE, status, "a step is retried by the job it belongs to, not alone");
  else if (kind->steps_from_submit)
    e = pq_req_fail(req, PQ_ERR_INVALID_STATE, status, "a %s job's work came with its submit: submit it again",
                    kind->name);
  else
    json_decref(status);
  if (e != PQ_OK) {
    pq_job_free(old);
    return e;
  }
  pq_job *job = pq_job_new();
  if (!job || pq_set_str(&job->kind, old->kind) || pq_set_str(&job->model, old->model) ||
      pq_set_str(&job->input, old->input) || pq_set_str(&job->owner, old->owner ? old->owner : "") ||
      pq_set_str(&job->requirements, old->requirements) || pq_set_str(&job->webhook_url, old->webhook_url) ||
      pq_set_str(&job->key_id, old->key_id) || !(req->state = pq_req_strndup(req, old->id, strlen(old->id)))) {
    pq_job_free(job);
    pq_job_free(old);
    return PQ_ERR_NO_MEMORY;
  }
  job->priority = old->priority;
  job->max_attempts = old->max_attempts;
  job->lease_timeout_ms = old->lease_timeout_ms;
  pq_job_free(old);
  req->op.kind = PQ_OP_SUBMIT;
  req->op.in.submit.job = job; /* the op owns it now */
  req->then = retried;
  pq_req_run_op(req, submitted);
  return PQ_OK;
}

static pq_err prepare_complete(pq_req *req, pq_op *op, const char *job_id, const char *lease, json_t *output,
                               json_t *usage, const char *signature) {
  static const char *const usage_fields[] = {"prompt_tokens", "completion_tokens", "total_tokens", NULL};
  int64_t prompt = 0, completion = 0, total = 0;
  pq_err e;
  if (!output)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "output"),
                       "'output' is required");
  if (usage && !json_is_null(usage)) {
    if (!json_is_object(usage))
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "usage"),
                         "'usage' must be an object");
    if ((e = pq_json_only(req, usage, "usage", usage_fields)) ||
        (e = pq_json_int(req, usage, "prompt_tokens", false, 0, INT32_MAX, &prompt)) ||
        (e = pq_json_int(req, usage, "completion_tokens", false, 0, INT32_MAX, &completion)) ||
        (e = pq_json_int(req, usage, "total_tokens", false, 0, INT64_MAX, &total)))
      return e;
  }
  char *text = json_dumps(output, JSON_COMPACT | JSON_ENCODE_ANY);
  char *copy = text ? pq_req_strndup(req, text, strlen(text)) : NULL;
  free(text);
  if (!copy) return PQ_ERR_NO_MEMORY;
  op->kind = PQ_OP_COMPLETE;
  op->in.complete.job_id = job_id;
  op->in.complete.token = lease;
  op->in.complete.output = copy;
  op->in.complete.prompt_tokens = prompt;
  op->in.complete.completion_tokens = completion;
  op->in.complete.worker_signature = signature;
  return PQ_OK;
}

pq_err pq_api_prepare_complete(pq_req *req, const char *job_id, const char *lease, json_t *output, json_t *usage,
                                const char *signature) {
  return prepare_complete(req, &req->op, job_id, lease, output, usage, signature);
}

static pq_err prepare_fail(pq_req *req, pq_op *op, const char *job_id, const char *lease, json_t *error,
                           bool retryable) {
  static const char *const error_fields[] = {"code", "message", NULL};
  const char *code = NULL, *message = NULL;
  pq_err e;
  if (!json_is_object(error))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "error"),
                       "'error' must be an object {code, message}");
  if ((e = pq_json_only(req, error, "error", error_fields)) ||
      (e = pq_json_string(req, error, "code", true, 64, &code)) ||
      (e = pq_json_string(req, error, "message", false, 4096, &message)))
    return e;
  op->kind = PQ_OP_FAIL;
  op->in.fail.job_id = job_id;
  op->in.fail.token = lease;
  op->in.fail.code = code;
  op->in.fail.message = message;
  op->in.fail.retryable = retryable;
  return PQ_OK;
}

pq_err pq_api_prepare_fail(pq_req *req, const char *job_id, const char *lease, json_t *error, bool retryable) {
  return prepare_fail(req, &req->op, job_id, lease, error, retryable);
}

/* ---- many results in one request (a worker that leased several jobs) ---- */

static pq_err results_done(pq_req *req) {
  submit_many *m = req->state;
  for (size_t i = 0; i < m->n_ops; i++) {
    pq_op *op = &m->ops[i];
    const char *id = op->kind == PQ_OP_COMPLETE ? op->in.complete.job_id : op->in.fail.job_id;
    json_t *entry;
    if (op->out.result == PQ_OK)
      entry = json_pack("{s:s,s:i,s:s}", "job", id, "status", 200, "state", pq_job_state_name(op->out.job->state));
    else if (op->out.result == PQ_ERR_LEASE_MISMATCH || op->out.result == PQ_ERR_NOT_FOUND)
      entry = refusal(PQ_ERR_LEASE_MISMATCH, "the job is not leased with this token", NULL);
    else
      entry = refusal(op->out.result, NULL, NULL);
    if (entry && !json_object_get(entry, "job")) json_object_set_new(entry, "job", json_string(id));
    json_array_set_new(m->results, m->slot[i], entry);
    pq_op_release(op);
  }
  return pq_req_reply(req, 200, json_pack("{s:O}", "results", m->results));
}

pq_err pq_api_worker_results(pq_req *req) {
  static const char *const fields[] = {"results", NULL};
  static const char *const result_fields[] = {"job", "lease", "output", "usage", "worker_signature", "error",
                                              "retryable", NULL};
  const char *worker = pq_req_param(req, "id");
  json_t *results = json_object_get(req->body, "results");
  pq_err e = pq_json_only(req, req->body, "the results", fields);
  if (e != PQ_OK) return e;
  if ((e = pq_api_their_worker(req, worker)) == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s?}", "id", worker), "no worker with id '%s'", worker ? worker : "");
  if (e != PQ_OK) return e;
  size_t n = json_is_array(results) ? json_array_size(results) : 0;
  if (n == 0 || n > MAX_JOBS_PER_REQUEST)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "results"),
                       "'results' must be an array of 1 to %d results", MAX_JOBS_PER_REQUEST);
  submit_many *m = new_many(req, n);
  if (!m) return PQ_ERR_NO_MEMORY;
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(results, i);
    const char *job = NULL, *lease = NULL, *signature = NULL;
    bool retryable = false;
    pq_op *op = &m->ops[m->n_ops];
    *op = (pq_op){0};
    if (!json_is_object(r)) e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "a result must be an object");
    else if ((e = pq_json_only(req, r, "a result", result_fields)) || (e = pq_json_string(req, r, "job", true, 64, &job)) ||
             (e = pq_json_string(req, r, "lease", true, 256, &lease)) ||
             (e = pq_json_string(req, r, "worker_signature", false, 128, &signature)) ||
             (e = pq_json_bool(req, r, "retryable", &retryable))) {
    } else if (json_object_get(r, "error") && json_object_get(r, "output"))
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "error"),
                      "a result has an 'output' or an 'error', not both");
    else if (json_object_get(r, "error"))
      e = prepare_fail(req, op, job, lease, json_object_get(r, "error"), retryable);
    else
      e = prepare_complete(req, op, job, lease, json_object_get(r, "output"), json_object_get(r, "usage"), signature);
    if (e == PQ_ERR_NO_MEMORY) return e;
    if (e != PQ_OK) {
      json_t *entry = refusal(e, req->error_message, req->error_details);
      if (job) json_object_set_new(entry, "job", json_string(job));
      json_array_append_new(m->results, entry);
      pq_req_clear_error(req);
      continue;
    }
    json_array_append_new(m->results, json_null());
    m->slot[m->n_ops++] = i;
  }
  if (m->n_ops == 0) return results_done(req);
  pq_req_run_ops(req, m->ops, m->n_ops, results_done);
  return PQ_OK;
}

pq_err pq_api_job_complete(pq_req *req) {
  static const char *const fields[] = {"lease", "output", "usage", "worker_signature", NULL};
  const char *id = NULL, *lease = NULL, *signature = NULL;
  json_t *body = req->body;
  pq_err e;
  if ((e = job_id_param(req, &id)) || (e = pq_json_only(req, body, "the result", fields)) ||
      (e = pq_json_string(req, body, "lease", true, 256, &lease)) ||
      (e = pq_json_string(req, body, "worker_signature", false, 128, &signature)) ||
      (e = pq_api_prepare_complete(req, id, lease, json_object_get(body, "output"), json_object_get(body, "usage"),
                                   signature)))
    return e;
  pq_req_run_op(req, job_done);
  return PQ_OK;
}

pq_err pq_api_job_fail(pq_req *req) {
  static const char *const fields[] = {"lease", "error", "retryable", NULL};
  const char *id = NULL, *lease = NULL;
  bool retryable = false;
  pq_err e;
  if ((e = job_id_param(req, &id)) || (e = pq_json_only(req, req->body, "the failure", fields)) ||
      (e = pq_json_string(req, req->body, "lease", true, 256, &lease)) ||
      (e = pq_json_bool(req, req->body, "retryable", &retryable)) ||
      (e = pq_api_prepare_fail(req, id, lease, json_object_get(req->body, "error"), retryable)))
    return e;
  pq_req_run_op(req, job_done);
  return PQ_OK;
}

/* ---- answering once a job has ended ---- */

typedef struct {
  char job_id[PQ_UUID_LEN + 1];
  pq_job_answer_fn answer;
  void *ctx;
} done_wait;

static pq_err done_again(pq_req *req) {
  done_wait *w = req->state;
  uint64_t version = pq_hub_version(pq_coord_hub(req->coord), pq_coord_job_key(w->job_id));
  pq_job *job = NULL;
  pq_err e = pq_coord_get_job(req->coord, w->job_id, 0, &job);
  if (e != PQ_OK) return e;
  if (!pq_job_state_terminal(job->state)) {
    pq_job_free(job);
    if (pq_mono_ms() >= req->deadline_ms || pq_req_server_stopping(req)) return w->answer(req, NULL, w->ctx);
    pq_req_wait_job(req, w->job_id, version, done_again);
    return PQ_OK;
  }
  e = w->answer(req, job, w->ctx);
  pq_job_free(job);
  return e;
}

pq_err pq_api_answer_when_done(pq_req *req, const char *job_id, int64_t wait_ms, pq_job_answer_fn answer,
                               void *ctx) {
  done_wait *w = pq_req_alloc(req, sizeof *w);
  if (!w) return PQ_ERR_NO_MEMORY;
  snprintf(w->job_id, sizeof w->job_id, "%s", job_id);
  w->answer = answer;
  w->ctx = ctx;
  req->state = w;
  req->deadline_ms = pq_mono_ms() + wait_ms;
  return done_again(req);
}
