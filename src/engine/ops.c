/* What each operation does inside the writer's transaction. Every change is
 * a compare-and-set on the stored row (pq_store_ops.job_update), so a stale
 * lease token or a job that moved on changes nothing. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "base/ids.h"
#include "base/log.h"
#include "model/receipt.h"

#define LEASE_TOKEN_BYTES 16

int pq__publish(pq__batch *b, const char *job_id) {
  if (b->n_published == b->cap_published) {
    size_t cap = b->cap_published ? b->cap_published * 2 : 32;
    void *grown = realloc(b->published, cap * sizeof *b->published);
    if (!grown) return -1;
    b->published = grown;
    b->cap_published = cap;
  }
  memcpy(b->published[b->n_published++], job_id, PQ_UUID_LEN + 1);
  return 0;
}

/* Writes job (already changed in memory) if the row is still in from (and
 * holds token); the state machine is asked first. */
static pq_err transition(pq__batch *b, pq_job *job, pq_job_state from, const char *token) {
  if (!pq_job_transition_allowed(from, job->state)) return PQ_ERR_INVALID_STATE;
  job->updated_at = b->now;
  pq_err result = b->c->ops->job_update(b->c->wconn, job, from, token);
  if (result == PQ_OK) pq__count_move(b->c, job->model, (int)from, job->state);
  if (result == PQ_OK && pq__publish(b, job->id) != 0) result = PQ_ERR_NO_MEMORY;
  return result;
}

static void count_terminal(pq_coord *c, pq_job_state s) {
  switch (s) {
    case PQ_JOB_COMPLETED: PQ__STAT_ADD(c, completed, 1); break;
    case PQ_JOB_FAILED: PQ__STAT_ADD(c, failed, 1); break;
    case PQ_JOB_DEAD: PQ__STAT_ADD(c, dead, 1); break;
    case PQ_JOB_CANCELLED: PQ__STAT_ADD(c, cancelled, 1); break;
    case PQ_JOB_EXPIRED: PQ__STAT_ADD(c, expired, 1); break;
    default: break;
  }
}

static int64_t backoff_ms(const pq_coord_config *cfg, int attempts) {
  int64_t d = cfg->retry_backoff_ms;
  for (int i = 1; i < attempts && d < cfg->retry_backoff_max_ms; i++) d *= 2;
  return d < cfg->retry_backoff_max_ms ? d : cfg->retry_backoff_max_ms;
}

/* A leased job ends without a result: retried later, dead, failed or (when a
 * client asked) cancelled. */
static pq_err settle_failure(pq__batch *b, pq_job *job, const char *token, const char *code,
                             const char *message, bool retryable) {
  pq_coord *c = b->c;
  if (pq_set_str(&job->error_code, code) || pq_set_str(&job->error_message, message))
    return PQ_ERR_NO_MEMORY;
  bool requeue = false;
  if (job->cancel_requested) job->state = PQ_JOB_CANCELLED;
  else if (!retryable) job->state = PQ_JOB_FAILED;
  else if (job->attempts >= job->max_attempts) job->state = PQ_JOB_DEAD;
  else {
    job->state = PQ_JOB_QUEUED;
    job->not_before = b->now + backoff_ms(&c->cfg, job->attempts);
    requeue = true;
  }
  if (!requeue) job->finished_at = b->now;
  pq_set_str(&job->lease_token, NULL);
  job->lease_expires_at = 0;
  pq_err result = transition(b, job, PQ_JOB_LEASED, token);
  if (result != PQ_OK) return result;
  if (requeue) {
    if (pq_sched_push(c->sched, job->model, job->number, job->priority, job->not_before, b->now))
      return PQ_ERR_NO_MEMORY;
  } else {
    count_terminal(c, job->state);
  }
  return PQ_OK;
}

/* ---- submit ---- */

static pq_err run_submit(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_job *job = op->in.submit.job;
  op->in.submit.job = NULL; /* the op owns it now */
  pq_err result;
  if (job->idempotency_key) {
    pq_job *seen = NULL;
    result = c->ops->job_get_by_idempotency_key(c->wconn, job->owner, job->idempotency_key, &seen);
    if (result == PQ_OK) {
      bool same = seen->request_hash && job->request_hash &&
                  strcmp(seen->request_hash, job->request_hash) == 0;
      pq_job_free(job);
      if (!same) {
        pq_job_free(seen);
        return PQ_ERR_IDEMPOTENCY_MISMATCH;
      }
      op->out.job = seen;
      op->out.replayed = true;
      return PQ_OK;
    }
    if (result != PQ_ERR_NOT_FOUND) {
      pq_job_free(job);
      return result;
    }
  }
  if (c->cfg.max_queued_per_owner > 0 && job->owner && *job->owner) {
    int64_t queued = 0;
    result = c->ops->job_count_queued_by_owner(c->wconn, job->owner, c->cfg.max_queued_per_owner, &queued);
    if (result == PQ_OK && queued >= c->cfg.max_queued_per_owner) result = PQ_ERR_QUEUE_QUOTA_EXCEEDED;
    if (result != PQ_OK) {
      pq_job_free(job);
      return result;
    }
  }
  job->state = PQ_JOB_QUEUED;
  job->created_at = job->updated_at = b->now;
  if (job->max_attempts <= 0) job->max_attempts = c->cfg.max_attempts;
  if (job->lease_timeout_ms <= 0) job->lease_timeout_ms = c->cfg.lease_timeout_ms;
  if (!job->id[0]) pq_uuid7(b->now, job->id);
  op->out.job = job;
  if ((result = c->ops->job_insert(c->wconn, job))) return result;
  pq__count_move(c, job->model, -1, PQ_JOB_QUEUED);
  if (pq_sched_push(c->sched, job->model, job->number, job->priority, 0, b->now) ||
      pq__publish(b, job->id))
    return PQ_ERR_NO_MEMORY;
  PQ__STAT_ADD(c, submitted, 1);
  return PQ_OK;
}

/* ---- lease ---- */

const char *const *pq__lease_models(const pq_op *op, size_t *n) {
  if (op->in.lease.n_models) {
    *n = op->in.lease.n_models;
    return op->in.lease.models;
  }
  *n = op->n_worker_models;
  return (const char *const *)op->worker_models;
}

static pq_err load_worker_models(pq__batch *b, pq_op *op) {
  pq_worker *w = NULL;
  pq_err result = b->c->ops->worker_get(b->c->wconn, op->in.lease.worker_id, &w);
  if (result != PQ_OK) return result;
  json_t *models = json_loads(w->models, 0, NULL);
  size_t n = json_is_array(models) ? json_array_size(models) : 0;
  if (n && !(op->worker_models = calloc(n, sizeof(char *)))) result = PQ_ERR_NO_MEMORY;
  for (size_t i = 0; result == PQ_OK && i < n; i++) {
    const char *m = json_string_value(json_array_get(models, i));
    if (!m) continue;
    if (!(op->worker_models[op->n_worker_models] = strdup(m))) result = PQ_ERR_NO_MEMORY;
    else op->n_worker_models++;
  }
  json_decref(models);
  pq_worker_free(w);
  return result;
}

static pq_err lease_one(pq__batch *b, pq_op *op, pq_job *job) {
  pq_coord *c = b->c;
  if (job->expires_at && job->expires_at <= b->now) { /* its ttl ran out while queued */
    job->state = PQ_JOB_EXPIRED;
    job->finished_at = b->now;
    pq_err result = transition(b, job, PQ_JOB_QUEUED, NULL);
    if (result == PQ_OK) count_terminal(c, PQ_JOB_EXPIRED);
    return result == PQ_OK ? PQ_ERR_STALE : result;
  }
  char token[2 * LEASE_TOKEN_BYTES + 1];
  pq_random_hex(token, LEASE_TOKEN_BYTES);
  job->state = PQ_JOB_LEASED;
  job->attempts++;
  job->leased_at = b->now;
  job->lease_expires_at = b->now + job->lease_timeout_ms;
  job->not_before = 0;
  job->cancel_requested = false;
  if (pq_set_str(&job->lease_token, token) || pq_set_str(&job->worker_id, op->in.lease.worker_id))
    return PQ_ERR_NO_MEMORY;
  return transition(b, job, PQ_JOB_QUEUED, NULL);
}

static pq_err run_lease(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_err result = c->ops->worker_touch(c->wconn, op->in.lease.worker_id, b->now);
  if (result != PQ_OK) return result;
  if (!op->in.lease.n_models && !op->worker_models && (result = load_worker_models(b, op)))
    return result;
  size_t n_models;
  const char *const *models = pq__lease_models(op, &n_models);
  int want = op->in.lease.max_jobs > 0 ? op->in.lease.max_jobs : 1;
  if (!op->out.jobs && !(op->out.jobs = calloc((size_t)want, sizeof(pq_job *))))
    return PQ_ERR_NO_MEMORY;
  pq_sched_item item;
  while ((int)op->out.n_jobs < want && pq_sched_pop(c->sched, models, n_models, &item)) {
    pq_job *job = NULL;
    result = c->ops->job_get(c->wconn, NULL, item.number, &job);
    if (result == PQ_ERR_NOT_FOUND) continue;
    if (result != PQ_OK) return result;
    if (job->state != PQ_JOB_QUEUED) { /* cancelled or expired since: drop the hint */
      pq_job_free(job);
      continue;
    }
    result = lease_one(b, op, job);
    if (result == PQ_OK) {
      op->out.jobs[op->out.n_jobs++] = job;
      continue;
    }
    pq_job_free(job);
    if (result != PQ_ERR_STALE) return result;
  }
  if (op->out.n_jobs == 0 && !op->last_try && op->in.lease.deadline_ms > 0) op->want_wait = true;
  return PQ_OK;
}

/* ---- complete, fail, cancel ---- */

/* The job a worker reports on, if its lease token still holds. */
static pq_err leased_job(pq__batch *b, const char *id, const char *token, pq_job **out) {
  pq_err result = b->c->ops->job_get(b->c->wconn, id, 0, out);
  if (result != PQ_OK) return result;
  if ((*out)->state != PQ_JOB_LEASED || !(*out)->lease_token || !token ||
      strcmp((*out)->lease_token, token) != 0) {
    pq_job_free(*out);
    *out = NULL;
    return PQ_ERR_LEASE_MISMATCH;
  }
  return PQ_OK;
}

/* A worker that signs must sign with the key it registered. */
static pq_err check_worker_signature(pq__batch *b, const pq_job *job, const char *signature, const char *output) {
  pq_worker *w = NULL;
  pq_err result = b->c->ops->worker_get(b->c->wconn, job->worker_id, &w);
  if (result == PQ_OK && !(w->public_key && pq_receipt_worker_verify(w->public_key, signature, job->id,
                                                                     job->input, output)))
    result = PQ_ERR_INVALID_REQUEST;
  pq_worker_free(w);
  return result == PQ_ERR_NOT_FOUND ? PQ_ERR_INVALID_REQUEST : result;
}

static pq_err run_complete(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = leased_job(b, op->in.complete.job_id, op->in.complete.token, &job);
  if (result != PQ_OK) return result;
  op->out.job = job;
  const char *sig = op->in.complete.worker_signature;
  if (sig && (result = check_worker_signature(b, job, sig, op->in.complete.output)) != PQ_OK) return result;
  if (pq_set_str(&job->worker_signature, sig)) return PQ_ERR_NO_MEMORY;
  /* a job whose client cancelled it keeps what the worker produced */
  job->state = job->cancel_requested ? PQ_JOB_CANCELLED : PQ_JOB_COMPLETED;
  job->finished_at = b->now;
  job->prompt_tokens = op->in.complete.prompt_tokens;
  job->completion_tokens = op->in.complete.completion_tokens;
  if (pq_set_str(&job->output, op->in.complete.output) || pq_set_str(&job->lease_token, NULL))
    return PQ_ERR_NO_MEMORY;
  job->lease_expires_at = 0;
  result = transition(b, job, PQ_JOB_LEASED, op->in.complete.token);
  if (result == PQ_ERR_STALE) return PQ_ERR_LEASE_MISMATCH;
  if (result == PQ_OK) count_terminal(b->c, job->state);
  return result;
}

static pq_err run_fail(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = leased_job(b, op->in.fail.job_id, op->in.fail.token, &job);
  if (result != PQ_OK) return result;
  op->out.job = job;
  result = settle_failure(b, job, op->in.fail.token, op->in.fail.code, op->in.fail.message,
                          op->in.fail.retryable);
  return result == PQ_ERR_STALE ? PQ_ERR_LEASE_MISMATCH : result;
}

static pq_err run_cancel(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = b->c->ops->job_get(b->c->wconn, op->in.cancel.job_id, 0, &job);
  if (result != PQ_OK) return result;
  op->out.job = job;
  pq_job_state from = job->state;
  if (from == PQ_JOB_QUEUED) {
    job->state = PQ_JOB_CANCELLED; /* its index entry is dropped when popped */
    job->finished_at = b->now;
    if ((result = transition(b, job, from, NULL)) == PQ_OK) count_terminal(b->c, job->state);
    return result;
  }
  if (from == PQ_JOB_LEASED) {
    if (job->cancel_requested) return PQ_OK;
    job->cancel_requested = true; /* the worker hears it on its next heartbeat */
    job->updated_at = b->now;
    result = b->c->ops->job_update(b->c->wconn, job, from, job->lease_token);
    if (result == PQ_OK && pq__publish(b, job->id)) result = PQ_ERR_NO_MEMORY;
    return result;
  }
  return PQ_ERR_INVALID_STATE;
}

static pq_err run_append(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = leased_job(b, op->in.append.job_id, op->in.append.token, &job);
  if (result != PQ_OK) return result;
  result = b->c->ops->event_append(b->c->wconn, job->number, job->attempts, "chunk",
                                   op->in.append.data, op->in.append.n, b->now, &op->out.last_seq);
  op->out.cancel_requested = job->cancel_requested;
  if (result == PQ_OK && pq__publish(b, job->id)) result = PQ_ERR_NO_MEMORY;
  pq_job_free(job);
  return result;
}

/* ---- workers ---- */

static pq_err run_heartbeat(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  const char *id = op->in.heartbeat.worker_id;
  pq_err result = c->ops->worker_touch(c->wconn, id, b->now);
  if (result == PQ_OK) result = c->ops->job_extend_leases(c->wconn, id, b->now);
  if (result == PQ_OK)
    result = c->ops->job_cancel_requested(c->wconn, id, &op->out.cancel_ids, &op->out.n_cancel);
  return result;
}

static pq_err run_register(pq__batch *b, pq_op *op) {
  pq_worker *w = op->in.reg.worker;
  pq_uuid7(b->now, w->id);
  w->created_at = w->last_seen_at = b->now;
  w->online = true;
  return b->c->ops->worker_insert(b->c->wconn, w);
}

pq_err pq__op_run(pq__batch *b, pq_op *op) {
  switch (op->kind) {
    case PQ_OP_SUBMIT: return run_submit(b, op);
    case PQ_OP_LEASE: return run_lease(b, op);
    case PQ_OP_COMPLETE: return run_complete(b, op);
    case PQ_OP_FAIL: return run_fail(b, op);
    case PQ_OP_CANCEL: return run_cancel(b, op);
    case PQ_OP_HEARTBEAT: return run_heartbeat(b, op);
    case PQ_OP_REGISTER: return run_register(b, op);
    case PQ_OP_APPEND: return run_append(b, op);
    case PQ_OP_EXEC: return op->in.exec.fn(b->c->wconn, b->c->ops, op->in.exec.arg, b->now);
  }
  return PQ_ERR_INTERNAL;
}

/* ---- the reaper: lapsed leases, ended ttls, silent workers ---- */

static void note_offline(void *ctx, const char *id) {
  pq__batch *b = ctx;
  char **grown = realloc(b->offline, (b->n_offline + 1) * sizeof *grown);
  if (!grown) return; /* the worker is offline in the store; its leases lapse on their own */
  b->offline = grown;
  if ((b->offline[b->n_offline] = strdup(id))) b->n_offline++;
}

typedef struct {
  pq__batch *b;
  pq_err result;
} reap_ctx;

static int reap_one(void *ctx, pq_job *job) {
  reap_ctx *r = ctx;
  pq_err result;
  if (job->state == PQ_JOB_LEASED) {
    char *token = job->lease_token ? strdup(job->lease_token) : NULL;
    result = settle_failure(r->b, job, token, "LEASE_EXPIRED",
                            "the worker did not finish the job before its lease ended", true);
    free(token);
    if (result == PQ_OK) PQ__STAT_ADD(r->b->c, lease_expiries, 1);
  } else {
    job->state = PQ_JOB_EXPIRED;
    job->finished_at = r->b->now;
    result = transition(r->b, job, PQ_JOB_QUEUED, NULL);
    if (result == PQ_OK) count_terminal(r->b->c, PQ_JOB_EXPIRED);
  }
  if (result == PQ_ERR_STALE) result = PQ_OK;
  r->result = result;
  return pq__fatal(result);
}

pq_err pq__reap(pq__batch *b) {
  pq_coord *c = b->c;
  pq_err result = c->ops->worker_mark_offline(c->wconn, b->now - c->cfg.worker_timeout_ms,
                                              note_offline, b);
  for (size_t i = 0; result == PQ_OK && i < b->n_offline; i++) {
    pq_warn("worker %s missed its heartbeats: offline, its leases end now", b->offline[i]);
    result = c->ops->job_end_leases(c->wconn, b->offline[i], b->now);
  }
  if (result != PQ_OK) return result;
  reap_ctx r = {.b = b, .result = PQ_OK};
  result = c->ops->job_scan_due(c->wconn, b->now, 512, reap_one, &r);
  return result != PQ_OK ? result : r.result;
}
