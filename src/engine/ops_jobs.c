/* The jobs family: submit, lease, complete, fail, cancel and append, inside
 * the writer's transaction. Every change is a compare-and-set on the stored
 * row (pq_store_ops.job_update) through pq__transition, so a stale lease
 * token or a job that moved on changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "base/log.h"
#include "engine/internal.h"
#include "model/receipt.h"

#define LEASE_TOKEN_BYTES 16

pq_err pq__publish(pq__batch *b, const char *job_id) {
  /* what the relay acknowledged for the job goes into this transaction, and no more */
  pq_err fenced = b->c->relay ? pq__relay_fence(b->c->relay, job_id, b->c->wconn, b->c->ops, b->now) : PQ_OK;
  if (fenced != PQ_OK) return fenced;
  if (b->n_published == b->cap_published) {
    size_t cap = b->cap_published ? b->cap_published * 2 : 32;
    void *grown = realloc(b->published, cap * sizeof *b->published);
    if (!grown) return PQ_ERR_NO_MEMORY;
    b->published = grown;
    b->cap_published = cap;
  }
  memcpy(b->published[b->n_published++], job_id, PQ_UUID_LEN + 1);
  for (size_t i = 0; i < b->n_installs; i++) /* changed after its post: the relay must not know the old lease */
    if (strcmp(b->installs[i].id, job_id) == 0) b->installs[i].cancelled = true;
  return PQ_OK;
}

/* A post went through: the relay answers the job's next posts (after commit). */
static int relay_learns(pq__batch *b, const pq_job *job, int64_t last_seq) {
  if (!b->c->relay || job->parent_id) return 0; /* a council's child: the parent follows each post */
  if (b->n_installs == b->cap_installs) {
    size_t cap = b->cap_installs ? b->cap_installs * 2 : 8;
    void *grown = realloc(b->installs, cap * sizeof *b->installs);
    if (!grown) return -1;
    b->installs = grown;
    b->cap_installs = cap;
  }
  pq__relay_install_t *in = &b->installs[b->n_installs];
  *in = (pq__relay_install_t){.number = job->number, .attempt = job->attempts, .last_seq = last_seq,
                              .cancel_requested = job->cancel_requested};
  memcpy(in->id, job->id, sizeof in->id);
  if (!(in->token = strdup(job->lease_token))) return -1;
  b->n_installs++;
  return 0;
}

int pq__note_ready(pq__batch *b, const char *model) {
  if (b->c->sched) return 0; /* the index knows */
  for (size_t i = 0; i < b->n_ready_models; i++)
    if (strcmp(b->ready_models[i], model) == 0) return 0;
  char **grown = realloc(b->ready_models, (b->n_ready_models + 1) * sizeof *grown);
  if (!grown) return -1;
  b->ready_models = grown;
  if (!(b->ready_models[b->n_ready_models] = strdup(model))) return -1;
  b->n_ready_models++;
  return 0;
}

/* The chart's count waits for the commit (a rolled-back end never happened);
 * only models a live worker serves get their name on it, so nobody can put
 * names there by submitting to made-up models. Losing one to OOM loses a count. */
static void remember_ended(pq__batch *b, const pq_job *job) {
  if (b->n_ended == b->cap_ended) {
    size_t cap = b->cap_ended ? b->cap_ended * 2 : 16;
    struct pq__ended *grown = realloc(b->ended, cap * sizeof *grown);
    if (!grown) return;
    b->ended = grown;
    b->cap_ended = cap;
  }
  const char *model = pq_coord_model_served(b->c, job->model) ? job->model : "(other)";
  if (!(b->ended[b->n_ended].model = strdup(model))) return;
  b->ended[b->n_ended++].tokens = job->completion_tokens;
}

static void count_terminal(pq__batch *b, const pq_job *job) {
  pq_coord *c = b->c;
  remember_ended(b, job);
  switch (job->state) {
    case PQ_JOB_COMPLETED: PQ__STAT_ADD(c, completed, 1); break;
    case PQ_JOB_FAILED: PQ__STAT_ADD(c, failed, 1); break;
    case PQ_JOB_DEAD: PQ__STAT_ADD(c, dead, 1); break;
    case PQ_JOB_CANCELLED: PQ__STAT_ADD(c, cancelled, 1); break;
    case PQ_JOB_EXPIRED: PQ__STAT_ADD(c, expired, 1); break;
    default: break;
  }
}

/* A child ended: its parent (when it still runs) takes the next step. */
static pq_err tell_parent(pq__batch *b, const pq_job *child) {
  pq_job *parent = NULL;
  pq_err result = b->c->ops->job_get(b->c->wconn, child->parent_id, 0, &parent);
  if (result == PQ_ERR_NOT_FOUND) return PQ_OK; /* nobody waits for it */
  if (result != PQ_OK) return result;
  const pq_job_kind *kind = pq_job_kind_of(parent);
  if ((!pq_job_state_terminal(parent->state) || kind->follows_children_after_end) && kind->on_child_terminal)
    result = kind->on_child_terminal(b, parent, child);
  pq_job_free(parent);
  return result;
}

pq_err pq__transition(pq__batch *b, pq_job *job, pq_job_state from, const char *token) {
  if (!pq_job_transition_allowed(from, job->state)) return PQ_ERR_INVALID_STATE;
  job->updated_at = b->now;
  int64_t operator_cost = 0;
  bool ending = pq_job_state_terminal(job->state);
  pq_err result = ending ? pq__ledger_price_end(b, job, &operator_cost) : PQ_OK;
  if (result == PQ_OK) result = b->c->ops->job_update(b->c->wconn, job, from, token);
  if (result == PQ_OK && ending && (result = pq__ledger_settle(b, job, operator_cost)) != PQ_OK && !pq__fatal(result))
    result = PQ_ERR_INTERNAL; /* its row is written, its money not: only the batch's rollback can undo it */
  if (result != PQ_OK) return result;
  pq__count_move(b->c, job->model, job->owner, (int)from, job->state);
  pq__running_move(b->c, job, (int)from, job->state);
  if (from == PQ_JOB_QUEUED && job->state != PQ_JOB_QUEUED) pq__route_left(b->c, job);
  if ((result = pq__publish(b, job->id)) != PQ_OK) return result;
  if (pq_job_state_terminal(job->state)) {
    count_terminal(b, job);
    const pq_job_kind *kind = pq_job_kind_of(job);
    if (kind->on_terminal) result = kind->on_terminal(b, job);
    if (result == PQ_OK) result = pq__webhooks_job_ended(b, job);
    if (result == PQ_OK && job->parent_id) result = tell_parent(b, job);
    if (result != PQ_OK) {
      /* half of it is written: only the whole batch's rollback can undo it */
      pq_error("engine: the %s kind's end hook failed for job %s (%s)", kind->name, job->id, pq_err_code(result));
      if (!pq__fatal(result)) result = PQ_ERR_INTERNAL;
    }
  }
  return result;
}

static int64_t backoff_ms(const pq_coord_config *cfg, int attempts) {
  int64_t d = cfg->retry_backoff_ms;
  for (int i = 1; i < attempts && d < cfg->retry_backoff_max_ms; i++) d *= 2;
  return d < cfg->retry_backoff_max_ms ? d : cfg->retry_backoff_max_ms;
}

/* A requeued job whose model failed it retryably goes to the operator's
 * fallback model (--model-fallback): its row and the gauges follow. */
static pq_err move_to_fallback(pq__batch *b, pq_job *job, const char *fallback) {
  char *from = job->model;
  if (!(job->model = strdup(fallback))) {
    job->model = from;
    return PQ_ERR_NO_MEMORY;
  }
  pq_err result = b->c->ops->job_set_model(b->c->wconn, job->number, job->model);
  if (result == PQ_OK) {
    pq_info("job %s: model '%s' failed it (%s), it moves to the fallback '%s'", job->id, from,
            job->error_code ? job->error_code : "retryable", fallback);
    pq__count_move(b->c, from, job->owner, PQ_JOB_QUEUED, PQ_JOB_CANCELLED); /* leaves from's queued count */
    pq__count_move(b->c, job->model, job->owner, -1, PQ_JOB_QUEUED);
  }
  free(from);
  return result;
}

pq_err pq__settle_failure(pq__batch *b, pq_job *job, const char *token, const char *code, const char *message,
                          bool retryable) {
  pq_coord *c = b->c;
  if (pq_set_str(&job->error_code, code) || pq_set_str(&job->error_message, message)) return PQ_ERR_NO_MEMORY;
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
  const char *fallback = requeue ? pq__fallback_of(c, job->model) : NULL;
  if (fallback) job->not_before = b->now; /* another model: no reason to wait */
  pq_err result = pq__transition(b, job, PQ_JOB_LEASED, token);
  if (result == PQ_OK && fallback) result = move_to_fallback(b, job, fallback);
  if (result == PQ_OK && requeue) result = pq__requeued(b, job);
  return result;
}

pq_err pq__requeued(pq__batch *b, const pq_job *job) {
  pq_coord *c = b->c;
  if (c->sched && pq__sched_push_job(c, job, job->not_before, b->now)) return PQ_ERR_NO_MEMORY;
  if (job->not_before <= b->now && pq__note_ready(b, job->model)) return PQ_ERR_NO_MEMORY;
  return PQ_OK;
}

/* ---- submit ---- */

/* A job with this key exists: the same request is a replay of it (the op
 * then owns that job and job is freed), another is a mismatch. NOT_FOUND:
 * the key is new. */
static pq_err replay_by_key(pq__batch *b, pq_op *op, pq_job *job) {
  pq_job *seen = NULL;
  pq_err result = b->c->ops->job_get_by_idempotency_key(b->c->wconn, job->owner, job->idempotency_key, &seen);
  if (result != PQ_OK) return result;
  bool same = seen->request_hash && job->request_hash && strcmp(seen->request_hash, job->request_hash) == 0;
  pq_job_free(job);
  if (!same) {
    pq_job_free(seen);
    return PQ_ERR_IDEMPOTENCY_MISMATCH;
  }
  op->out.job = seen;
  op->out.replayed = true;
  return PQ_OK;
}

/* Would the job and its steps (a batch's requests: any models) put its owner past
 * --max-queued-per-user-model on one of their models? */
static bool over_model_limit(pq_coord *c, const pq_job *job, pq_job *const *steps, size_t n_steps) {
  pq_strtab models = {0}; /* the models named, each counted once: a batch may hold 50,000 requests */
  int64_t *more = calloc(n_steps + 1, sizeof *more);
  bool over = !more;
  for (size_t k = 0; !over && k <= n_steps; k++) {
    int32_t i = pq_strtab_intern(&models, k == 0 ? job->model : steps[k - 1]->model);
    if (i < 0) over = true; /* out of memory: refused rather than let past its limit */
    else more[i]++;
  }
  for (size_t i = 0; !over && i < models.n; i++)
    over = pq__queued_in(c, models.names[i], job->owner) + more[i] > c->cfg.max_queued_per_owner_model;
  free(more);
  pq_strtab_free(&models);
  return over;
}

pq_err pq__run_submit(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_job *job = op->in.submit.job;
  op->in.submit.job = NULL; /* the op owns it now */
  pq_err result;
  if (job->idempotency_key && (result = replay_by_key(b, op, job)) != PQ_ERR_NOT_FOUND) {
    if (result != PQ_OK && result != PQ_ERR_IDEMPOTENCY_MISMATCH) pq_job_free(job);
    return result;
  }
  if (c->cfg.max_queued_per_owner > 0 && job->owner && *job->owner) {
    int64_t queued = 0;
    result = c->ops->job_count_queued_by_owner(c->wconn, job->owner, c->cfg.max_queued_per_owner, &queued);
    /* a batch's requests are queued jobs too */
    if (result == PQ_OK && queued + (int64_t)op->in.submit.n_steps >= c->cfg.max_queued_per_owner)
      result = PQ_ERR_QUEUE_QUOTA_EXCEEDED;
    if (result != PQ_OK) {
      pq_job_free(job);
      return result;
    }
  }
  if (op->in.submit.key_id && *op->in.submit.key_id && !job->key_id && pq_set_str(&job->key_id, op->in.submit.key_id)) {
    pq_job_free(job);
    return PQ_ERR_NO_MEMORY;
  }
  if (c->cfg.max_queued_per_owner_model > 0 && c->sched && job->owner && *job->owner &&
      over_model_limit(c, job, op->in.submit.steps, op->in.submit.n_steps)) {
    pq_job_free(job);
    return PQ_ERR_QUEUE_QUOTA_EXCEEDED;
  }
  if ((result = pq__route_class_check(c, job->requirements)) != PQ_OK ||
      (result = pq__ledger_hold(b, op, job)) != PQ_OK) {
    pq_job_free(job);
    return result;
  }
  op->out.job = job;
  result = pq__enqueue(b, job);
  if (result == PQ_ERR_ALREADY_EXISTS && job->idempotency_key) {
    /* another coordinator took the key between our look and our insert: its job is
     * committed now (the insert waited for it), so this is a replay after all, and the
     * hold taken for the job that will not be is released */
    op->out.job = NULL;
    if (job->held_micros > 0) {
      char hold[PQ_UUID_LEN + 8];
      snprintf(hold, sizeof hold, "hold:%s", job->id);
      if ((result = c->ops->transfer_settle(c->wconn, hold, PQ_TRANSFER_VOIDED, 0, b->now)) != PQ_OK) {
        pq_job_free(job);
        return pq__fatal(result) ? result : PQ_ERR_INTERNAL;
      }
    }
    result = replay_by_key(b, op, job);
    if (result == PQ_ERR_NOT_FOUND) result = PQ_ERR_ALREADY_EXISTS;
    if (result != PQ_OK && result != PQ_ERR_IDEMPOTENCY_MISMATCH) pq_job_free(job);
    return result;
  }
  if (result != PQ_OK) return result;
  /* its steps, queued with it (the op keeps them until its release, for the hold above) */
  for (size_t i = 0; result == PQ_OK && i < op->in.submit.n_steps; i++) {
    pq_job *step = op->in.submit.steps[i];
    if (pq_set_str(&step->parent_id, job->id) || pq_set_str(&step->owner, job->owner ? job->owner : ""))
      return PQ_ERR_NO_MEMORY;
    step->id[0] = '\0';
    result = pq__enqueue(b, step);
  }
  if (result != PQ_OK) return pq__fatal(result) ? result : PQ_ERR_INTERNAL; /* a half-queued batch must not commit */
  const pq_job_kind *kind = pq_job_kind_of(job);
  return kind->on_submit ? kind->on_submit(b, job, op->in.submit.n_steps) : PQ_OK;
}

pq_err pq__enqueue(pq__batch *b, pq_job *job) {
  pq_coord *c = b->c;
  job->state = PQ_JOB_QUEUED;
  job->created_at = job->updated_at = b->now;
  if (job->max_attempts <= 0) job->max_attempts = c->cfg.max_attempts;
  if (job->lease_timeout_ms <= 0) job->lease_timeout_ms = c->cfg.lease_timeout_ms;
  if (!job->id[0]) pq_uuid7(b->now, job->id);
  pq_err result = c->ops->job_insert(c->wconn, job);
  if (result != PQ_OK) return result;
  pq__count_move(c, job->model, job->owner, -1, PQ_JOB_QUEUED);
  pq_err published = pq__publish(b, job->id);
  if (published != PQ_OK) return published;
  PQ__STAT_ADD(c, submitted, 1);
  if (pq_job_kind_of(job)->on_submit) return PQ_OK; /* never queued for workers */
  if ((c->sched && pq__sched_push_job(c, job, 0, b->now)) ||
      pq__note_ready(b, job->model))
    return PQ_ERR_NO_MEMORY;
  return PQ_OK;
}

/* ---- lease ---- */

const char *const *pq__lease_models(const pq_op *op, size_t *n) {
  if (op->route_models) {
    *n = op->n_route_models;
    return (const char *const *)op->route_models;
  }
  if (op->in.lease.n_models) {
    *n = op->in.lease.n_models;
    return op->in.lease.models;
  }
  *n = op->n_worker_models;
  return (const char *const *)op->worker_models;
}

static pq_err lease_one(pq__batch *b, pq_op *op, pq_job *job) {
  if (job->expires_at && job->expires_at <= b->now) { /* its ttl ran out while queued */
    job->state = PQ_JOB_EXPIRED;
    job->finished_at = b->now;
    pq_err result = pq__transition(b, job, PQ_JOB_QUEUED, NULL);
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
  return pq__transition(b, job, PQ_JOB_QUEUED, NULL);
}

/* Leases the job with this number if it is still queued. */
static pq_err try_lease(pq__batch *b, pq_op *op, int64_t number) {
  pq_job *job = NULL;
  pq_err result = b->c->ops->job_get(b->c->wconn, NULL, number, &job);
  if (result == PQ_ERR_NOT_FOUND) return PQ_ERR_STALE;
  if (result != PQ_OK) return result;
  if (job->state != PQ_JOB_QUEUED) { /* cancelled or expired since: drop the hint */
    pq_job_free(job);
    return PQ_ERR_STALE;
  }
  if ((result = lease_one(b, op, job)) == PQ_OK) op->out.jobs[op->out.n_jobs++] = job;
  else pq_job_free(job);
  return result;
}

static pq_err charge(pq__batch *b, const char *model, const char *owner) {
  if (b->n_charges == b->cap_charges) {
    size_t cap = b->cap_charges ? b->cap_charges * 2 : 16;
    void *grown = realloc(b->charges, cap * sizeof *b->charges);
    if (!grown) return PQ_ERR_NO_MEMORY;
    b->charges = grown;
    b->cap_charges = cap;
  }
  struct pq__charge *ch = &b->charges[b->n_charges];
  if (!(ch->model = strdup(model))) return PQ_ERR_NO_MEMORY;
  size_t len = strnlen(owner, PQ_UUID_LEN); /* a user id: a UUID (or "" on an open server) */
  memcpy(ch->owner, owner, len);
  ch->owner[len] = '\0';
  ch->tick = b->now * 1000 + (b->turns++ % 1000);
  ch->weight = pq__weight_of(b->c, owner);
  b->n_charges++;
  return PQ_OK;
}

static int charge_order(const void *x, const void *y) {
  const struct pq__charge *a = x, *b = y;
  int by_model = strcmp(a->model, b->model);
  if (by_model) return by_model;
  int by_owner = strcmp(a->owner, b->owner);
  return by_owner ? by_owner : (a->tick > b->tick) - (a->tick < b->tick);
}

pq_err pq__turns_flush(pq__batch *b) {
  if (!b->n_charges) return PQ_OK;
  qsort(b->charges, b->n_charges, sizeof *b->charges, charge_order);
  pq_err result = PQ_OK;
  for (size_t i = 0; result == PQ_OK && i < b->n_charges; i++)
    result = b->c->ops->turn_charge(b->c->wconn, b->charges[i].model, b->charges[i].owner, b->charges[i].tick,
                                    b->charges[i].weight);
  return result;
}

/* Where other coordinators share the store, it picks (job_pick: urgent jobs, then users' turns, kept
 * in the store for all of them); a job another took in the meantime fails its compare-and-set. Each
 * lease starts at the next of its models, so one with work cannot keep the others waiting. */
static pq_err lease_from_store(pq__batch *b, pq_op *op, const char *const *models, size_t n_models, int want) {
  pq_coord *c = b->c;
  int64_t numbers[64];
  char owners[64][PQ_UUID_LEN + 1];
  bool limited = c->cfg.max_running_per_owner > 0 || c->cfg.max_running_per_owner_model > 0;
  size_t start = n_models ? c->pick_rotor++ % n_models : 0;
  for (size_t k = 0; k < n_models && (int)op->out.n_jobs < want; k++) {
    pq_pick pick = {.model = models[(start + k) % n_models], .offer = op->route_offer, .now = b->now,
                    .urgent = c->cfg.urgent_priority, .max_running = c->cfg.max_running_per_owner,
                    .max_running_model = c->cfg.max_running_per_owner_model};
    size_t n = 1;
    while ((int)op->out.n_jobs < want && n > 0) {
      size_t ask = (size_t)want - op->out.n_jobs;
      if (ask > 64) ask = 64;
      if (limited) ask = 1; /* a limit is checked per pick: one job at a time, so none passes it */
      pq_err result = c->ops->job_pick(c->wconn, &pick, ask, numbers, owners, &n);
      for (size_t i = 0; result == PQ_OK && i < n; i++) {
        result = try_lease(b, op, numbers[i]);
        if (result == PQ_OK) /* the turn moves on; later leases in this transaction come later */
          result = charge(b, pick.model, owners[i]);
        else if (result == PQ_ERR_STALE) result = PQ_OK;
      }
      if (result != PQ_OK) return result;
    }
  }
  return PQ_OK;
}

pq_err pq__run_lease(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_err result = c->ops->worker_touch(c->wconn, op->in.lease.worker_id, b->now);
  if (result != PQ_OK) return result;
  op->touched_worker = true;
  if (!op->in.lease.n_models && !op->worker_models &&
      (result = pq__live_models_of(c, op->in.lease.worker_id, &op->worker_models, &op->n_worker_models)))
    return result;
  if ((result = pq__lease_route(c, op)) != PQ_OK) return result;
  size_t n_models;
  const char *const *models = pq__lease_models(op, &n_models);
  int want = op->in.lease.max_jobs > 0 ? op->in.lease.max_jobs : 1;
  if (!op->out.jobs && !(op->out.jobs = calloc((size_t)want, sizeof(pq_job *)))) return PQ_ERR_NO_MEMORY;
  if (c->sched) {
    pq_sched_item item;
    pq_sched_may_fn may = c->cfg.max_running_per_owner > 0 || c->cfg.max_running_per_owner_model > 0 ? pq__may_run : NULL;
    while ((int)op->out.n_jobs < want && op->n_route_keys > 0 && /* none: pop would take any lane */
           pq_sched_pop(c->sched, (const char *const *)op->route_keys, op->n_route_keys, may, c, &item)) {
      result = try_lease(b, op, item.number);
      if (result == PQ_OK) pq_sched_charge(c->sched, &item); /* a stale hint costs its owner no turn */
      else if (result != PQ_ERR_STALE) return result;
    }
  } else if ((result = lease_from_store(b, op, models, n_models, want)) != PQ_OK) {
    return result;
  }
  /* a job of an alias runs as the model its worker serves */
  const char *const *own = op->in.lease.n_models ? op->in.lease.models : (const char *const *)op->worker_models;
  size_t n_own = op->in.lease.n_models ? op->in.lease.n_models : op->n_worker_models;
  for (size_t i = 0; i < op->out.n_jobs; i++) {
    const char *as = pq_coord_served_as(c, op->out.jobs[i]->model, own, n_own);
    if (as != op->out.jobs[i]->model && pq_set_str(&op->out.jobs[i]->model, as)) return PQ_ERR_NO_MEMORY;
  }
  if (op->out.n_jobs == 0 && !op->last_try && op->in.lease.deadline_ms > 0) op->want_wait = true;
  return PQ_OK;
}

/* ---- complete, fail, cancel, append ---- */

/* The job a worker reports on, if its lease token still holds. */
static pq_err leased_job(pq__batch *b, const char *id, const char *token, pq_job **out) {
  pq_err result = b->c->ops->job_get(b->c->wconn, id, 0, out);
  if (result != PQ_OK) return result;
  if ((*out)->state != PQ_JOB_LEASED || !(*out)->lease_token || !token || strcmp((*out)->lease_token, token) != 0) {
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
  if (result == PQ_OK &&
      !(w->public_key && pq_receipt_worker_verify(w->public_key, signature, job->id, job->input, output)))
    result = PQ_ERR_INVALID_REQUEST;
  pq_worker_free(w);
  return result == PQ_ERR_NOT_FOUND ? PQ_ERR_INVALID_REQUEST : result;
}

pq_err pq__run_complete(pq__batch *b, pq_op *op) {
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
  /* an earlier attempt's error is history: a completed job shows none */
  if (!job->cancel_requested && (pq_set_str(&job->error_code, NULL) || pq_set_str(&job->error_message, NULL)))
    return PQ_ERR_NO_MEMORY;
  if (pq_set_str(&job->output, op->in.complete.output) || pq_set_str(&job->lease_token, NULL))
    return PQ_ERR_NO_MEMORY;
  job->lease_expires_at = 0;
  result = pq__transition(b, job, PQ_JOB_LEASED, op->in.complete.token);
  return result == PQ_ERR_STALE ? PQ_ERR_LEASE_MISMATCH : result;
}

pq_err pq__run_fail(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = leased_job(b, op->in.fail.job_id, op->in.fail.token, &job);
  if (result != PQ_OK) return result;
  op->out.job = job;
  result = pq__settle_failure(b, job, op->in.fail.token, op->in.fail.code, op->in.fail.message, op->in.fail.retryable);
  return result == PQ_ERR_STALE ? PQ_ERR_LEASE_MISMATCH : result;
}

pq_err pq__run_cancel(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = b->c->ops->job_get(b->c->wconn, op->in.cancel.job_id, 0, &job);
  if (result != PQ_OK) return result;
  op->out.job = job;
  pq_job_state from = job->state;
  if (from == PQ_JOB_QUEUED) {
    job->state = PQ_JOB_CANCELLED; /* its index entry is dropped when popped */
    job->finished_at = b->now;
    return pq__transition(b, job, from, NULL);
  }
  if (from == PQ_JOB_LEASED && pq_job_kind_of(job)->on_submit) { /* no worker to tell: it ends now */
    char *token = job->lease_token ? strdup(job->lease_token) : NULL;
    job->state = PQ_JOB_CANCELLED;
    job->finished_at = b->now;
    job->lease_expires_at = 0;
    pq_set_str(&job->lease_token, NULL);
    result = pq__transition(b, job, from, token);
    free(token);
    return result;
  }
  if (from == PQ_JOB_LEASED) {
    if (job->cancel_requested) return PQ_OK;
    job->cancel_requested = true; /* the worker hears it on its next heartbeat */
    job->updated_at = b->now;
    result = b->c->ops->job_update(b->c->wconn, job, from, job->lease_token);
    if (result == PQ_OK) result = pq__publish(b, job->id);
    return result;
  }
  return PQ_ERR_INVALID_STATE;
}

/* The answer carrying this lease could not reach its worker (the long-poll's
 * connection was gone): the job goes back at once, and the attempt it never
 * had is not counted. */
pq_err pq__run_release(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = leased_job(b, op->in.release.job_id, op->in.release.token, &job);
  if (result != PQ_OK) return result;
  op->out.job = job;
  job->state = PQ_JOB_QUEUED;
  if (job->attempts > 0) job->attempts--;
  job->not_before = 0;
  job->leased_at = 0;
  job->lease_expires_at = 0;
  if (pq_set_str(&job->lease_token, NULL) || pq_set_str(&job->worker_id, NULL)) return PQ_ERR_NO_MEMORY;
  result = pq__transition(b, job, PQ_JOB_LEASED, op->in.release.token);
  if (result == PQ_OK) result = pq__requeued(b, job);
  return result == PQ_ERR_STALE ? PQ_ERR_LEASE_MISMATCH : result;
}

pq_err pq__run_append(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  /* numbered from the store below: after what the relay acknowledged, which is written first */
  pq_err result = b->c->relay ? pq__relay_fence(b->c->relay, op->in.append.job_id, b->c->wconn, b->c->ops, b->now)
                              : PQ_OK;
  if (result == PQ_OK) result = leased_job(b, op->in.append.job_id, op->in.append.token, &job);
  if (result != PQ_OK) return result;
  result = b->c->ops->event_append(b->c->wconn, job->number, job->attempts, "chunk", op->in.append.data,
                                   op->in.append.n, 0, b->now, &op->out.last_seq);
  op->out.cancel_requested = job->cancel_requested;
  if (result == PQ_OK) result = pq__publish(b, job->id);
  if (result == PQ_OK && relay_learns(b, job, op->out.last_seq)) result = PQ_ERR_NO_MEMORY;
  if (result == PQ_OK && job->parent_id) { /* a council relays its synthesis as it is written */
    pq_job *parent = NULL;
    result = b->c->ops->job_get(b->c->wconn, job->parent_id, 0, &parent);
    const pq_job_kind *kind = result == PQ_OK ? pq_job_kind_of(parent) : NULL;
    if (kind && kind->on_child_output && !pq_job_state_terminal(parent->state))
      result = kind->on_child_output(b, parent, job, op->in.append.data, op->in.append.n);
    if (result == PQ_ERR_NOT_FOUND) result = PQ_OK;
    pq_job_free(parent);
  }
  pq_job_free(job);
  return result;
}
