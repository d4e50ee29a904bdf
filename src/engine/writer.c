/* The writer: the operation queue, one transaction per batch (group commit),
 * leases that wait in the hub, the gauges, the index, open and close, and
 * the reads that go to the store's read pool. What each operation does is in
 * its family's file (ops_jobs.c, ops_workers.c, ops_identity.c, reaper.c). */
#include "engine/coord.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/ids.h"
#include "engine/internal.h"
#include "base/log.h"
#include "base/hash.h"

/* ---- the queue ---- */

static void finish(pq_op *op, pq_err result) {
  if (result != PQ_OK && op->out.result == PQ_OK) op->out.result = result;
  op->done(op);
}

static void enqueue(pq_coord *c, pq_op *op) {
  pthread_mutex_lock(&c->mu);
  if (c->stopped) {
    pthread_mutex_unlock(&c->mu);
    pq_op_release(op);
    op->out.result = PQ_ERR_SHUTTING_DOWN;
    op->done(op);
    return;
  }
  op->next = NULL;
  if (c->tail) c->tail->next = op;
  else c->head = op;
  c->tail = op;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void pq_coord_submit(pq_coord *c, pq_op *op) {
  memset(&op->out, 0, sizeof op->out);
  op->coord = c;
  op->last_try = false;
  op->want_wait = false;
  op->worker_models = NULL;
  op->n_worker_models = 0;
  op->touched_worker = false;
  enqueue(c, op);
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
} sync_call;

static void sync_done(pq_op *op) {
  sync_call *s = op->ud;
  pthread_mutex_lock(&s->mu);
  s->done = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

pq_err pq_coord_call(pq_coord *c, pq_op *op) {
  sync_call s = {.done = false};
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  op->done = sync_done;
  op->ud = &s;
  pq_coord_submit(c, op);
  pthread_mutex_lock(&s.mu);
  while (!s.done) pthread_cond_wait(&s.cv, &s.mu);
  pthread_mutex_unlock(&s.mu);
  pthread_cond_destroy(&s.cv);
  pthread_mutex_destroy(&s.mu);
  return op->out.result;
}

void pq_op_release(pq_op *op) {
  pq_user_free(op->out.user);
  pq_btc_payment_free(op->out.btc);
  pq_webhook_free(op->out.webhook);
  pq_delivery_free_array(op->out.deliveries, op->out.n_deliveries);
  if (op->kind == PQ_OP_SUBMIT) { /* a submit that never ran still owns its job and its steps */
    pq_job_free(op->in.submit.job);
    op->in.submit.job = NULL;
    pq_job_free_array(op->in.submit.steps, op->in.submit.n_steps);
    op->in.submit.steps = NULL;
    op->in.submit.n_steps = 0;
  }
  pq_job_free(op->out.job);
  pq_job_free_array(op->out.jobs, op->out.n_jobs);
  for (size_t i = 0; i < op->out.n_cancel; i++) free(op->out.cancel_ids[i]);
  free(op->out.cancel_ids);
  pq__lease_route_release(op);
  for (size_t i = 0; i < op->n_worker_models; i++) free(op->worker_models[i]);
  free(op->worker_models);
  op->worker_models = NULL;
  op->n_worker_models = 0;
  pq_err keep = op->out.result;
  memset(&op->out, 0, sizeof op->out);
  op->out.result = keep;
}

pq_err pq__op_run(pq__batch *b, pq_op *op) {
  switch (op->kind) {
    case PQ_OP_SUBMIT: return pq__run_submit(b, op);
    case PQ_OP_LEASE: return pq__run_lease(b, op);
    case PQ_OP_COMPLETE: return pq__run_complete(b, op);
    case PQ_OP_FAIL: return pq__run_fail(b, op);
    case PQ_OP_CANCEL: return pq__run_cancel(b, op);
    case PQ_OP_APPEND: return pq__run_append(b, op);
    case PQ_OP_RELEASE: return pq__run_release(b, op);
    case PQ_OP_REGISTER: return pq__run_register(b, op);
    case PQ_OP_HEARTBEAT: return pq__run_heartbeat(b, op);
    case PQ_OP_USER_ADD: return pq__run_user_add(b, op);
    case PQ_OP_USER_SET_DISABLED: return pq__run_user_set_disabled(b, op);
    case PQ_OP_KEY_ADD: return pq__run_key_add(b, op);
    case PQ_OP_KEY_REVOKE: return pq__run_key_revoke(b, op);
    case PQ_OP_KEYS_SYNC: return pq__run_keys_sync(b, op);
    case PQ_OP_CHALLENGE_ADD: return pq__run_challenge_add(b, op);
    case PQ_OP_CHALLENGE_TAKE: return pq__run_challenge_take(b, op);
    case PQ_OP_PRICE_SET: return pq__run_price_set(b, op);
    case PQ_OP_CREDIT_GRANT: return pq__run_credit_grant(b, op);
    case PQ_OP_BUDGET_SET: return pq__run_budget_set(b, op);
    case PQ_OP_PAYMENT: return pq__run_payment(b, op);
    case PQ_OP_BTC_CREATE: return pq__run_btc_create(b, op);
    case PQ_OP_BTC_OBSERVE: return pq__run_btc_observe(b, op);
    case PQ_OP_FILE_PUT: return pq__run_file_put(b, op);
    case PQ_OP_FILE_DELETE: return pq__run_file_delete(b, op);
    case PQ_OP_JOB_DELETE: return pq__run_job_delete(b, op);
    case PQ_OP_WEBHOOK_ADD: return pq__run_webhook_add(b, op);
    case PQ_OP_WEBHOOK_DELETE: return pq__run_webhook_delete(b, op);
    case PQ_OP_WEBHOOK_SECRET: return pq__run_webhook_secret(b, op);
    case PQ_OP_DELIVERY_CLAIM: return pq__run_delivery_claim(b, op);
    case PQ_OP_DELIVERY_RESULT: return pq__run_delivery_result(b, op);
    case PQ_OP_DELIVERY_REDELIVER: return pq__run_delivery_redeliver(b, op);
    case PQ_OP_REAP: {
      if (b->c->sched) pq_sched_promote(b->c->sched, b->now);
      b->all_ready = !b->c->sched;
      return pq__reap(b, &op->out.reaped);
    }
  }
  return PQ_ERR_INTERNAL;
}

static bool limits_running(const pq_coord *c);

/* ---- waiting leases ---- */

/* Hub thread: a waiting lease timed out (or the hub is shutting down). It
 * goes back to the writer for one last look. */
static void lease_wake(pq_waiter *w, pq_wake_reason why) {
  pq_op *op = w->data;
  op->last_try = why != PQ_WAKE_PUBLISHED; /* woken for work: it may park again if another got it */
  enqueue(op->coord, op);
}

/* Another coordinator made work of model ready ("*": any): its parked
 * leases that could take it go to the writer to look. */
typedef struct {
  const char *model;
} model_match;

static bool wants_model(const pq_waiter *w, const void *arg) {
  const model_match *m = arg;
  if (strcmp(m->model, "*") == 0) return true;
  size_t n;
  const char *const *models = pq__lease_models(w->data, &n);
  if (n == 0) return true;
  for (size_t i = 0; i < n; i++)
    if (strcmp(models[i], m->model) == 0) return true;
  return false;
}

static void wake_leases_for(pq_coord *c, const char *model) {
  model_match m = {.model = model};
  pq_waiter *w;
  while ((w = pq_hub_take(c->hub, PQ__KEY_LEASE, wants_model, &m))) {
    pq_op *op = w->data;
    op->last_try = false;
    enqueue(c, op);
  }
}

/* Could a parked lease get a job now? The index knows; without one, the
 * batch's newly ready models say (and a reaper pass may have readied any). */
typedef struct {
  const pq_coord *c;
  const pq__batch *b; /* NULL after the batch: only the index may answer */
} serve_check;

static bool lease_can_be_served(const pq_waiter *w, const void *arg) {
  const serve_check *sc = arg;
  const pq_op *op = w->data;
  size_t n;
  const char *const *models = pq__lease_models(op, &n);
  if (!sc->c->sched) {
    if (!sc->b || (sc->b->n_ready_models == 0 && !sc->b->all_ready)) return false;
    if (n == 0 || sc->b->all_ready) return true;
    for (size_t i = 0; i < n; i++)
      for (size_t k = 0; k < sc->b->n_ready_models; k++)
        if (strcmp(models[i], sc->b->ready_models[k]) == 0) return true;
    return false;
  }
  /* the index's lanes it may take from: classes added since it parked count too (writer thread) */
  if (pq__lease_route((pq_coord *)sc->c, (pq_op *)op) != PQ_OK) return true; /* let the lease itself find out */
  const char *const *keys = (const char *const *)op->route_keys;
  /* with running limits, ready jobs may all be of owners at their limit: only a pop would find one */
  if (limits_running(sc->c))
    return op->n_route_keys > 0 && pq_sched_can_pop(sc->c->sched, keys, op->n_route_keys, pq__may_run, (void *)sc->c);
  for (size_t i = 0; i < op->n_route_keys; i++)
    if (pq_sched_ready(sc->c->sched, keys[i]) > 0) return true;
  return false;
}

static bool any_ready(const pq__batch *b) {
  if (!b->c->sched) return b->n_ready_models > 0 || b->all_ready;
  if (limits_running(b->c)) return pq_sched_can_pop(b->c->sched, NULL, 0, pq__may_run, b->c);
  return pq_sched_ready(b->c->sched, NULL) > 0;
}

/* Serves parked leases from jobs that became ready in this transaction. */
static pq_err hand_off(pq__batch *b) {
  pq_coord *c = b->c;
  pq_waiter *w;
  serve_check sc = {.c = c, .b = b};
  while (any_ready(b) && (w = pq_hub_take(c->hub, PQ__KEY_LEASE, lease_can_be_served, &sc))) {
    pq_op *op = w->data;
    if (b->n_handed == b->cap_handed) {
      size_t cap = b->cap_handed ? b->cap_handed * 2 : 16;
      pq_op **grown = realloc(b->handed, cap * sizeof *grown);
      if (!grown) {
        enqueue(c, op); /* it will be served in the next batch */
        return PQ_ERR_NO_MEMORY;
      }
      b->handed = grown;
      b->cap_handed = cap;
    }
    b->handed[b->n_handed++] = op;
    op->want_wait = false;
    size_t before = b->n_ready_models;
    pq_err result = pq__op_run(b, op);
    op->out.result = result;
    if (pq__fatal(result)) return result;
    PQ__STAT_ADD(c, handoffs, 1);
    /* without an index a served model may be empty now: stop offering it
     * once a lease for it came back with nothing */
    if (!c->sched && op->out.n_jobs == 0) {
      size_t n;
      const char *const *models = pq__lease_models(op, &n);
      for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < b->n_ready_models; k++)
          if (strcmp(models[i], b->ready_models[k]) == 0) {
            free(b->ready_models[k]);
            b->ready_models[k--] = b->ready_models[--b->n_ready_models];
          }
      if (n == 0 || b->n_ready_models == before) {
        for (size_t k = 0; k < b->n_ready_models; k++) free(b->ready_models[k]);
        b->n_ready_models = 0;
      }
    }
  }
  return PQ_OK;
}

/* After commit: a lease that found nothing parks in the hub, unless a job it
 * could take arrived later in the same batch (then it runs again). */
static void park_lease(pq_coord *c, pq_op *op) {
  op->want_wait = false;
  op->waiter.wake = lease_wake;
  op->waiter.data = op;
  serve_check sc = {.c = c, .b = NULL};
  if (lease_can_be_served(&op->waiter, &sc)) {
    enqueue(c, op);
    return;
  }
  if (pq_hub_wait(c->hub, &op->waiter, PQ__KEY_LEASE, PQ_HUB_ANY_VERSION,
                  op->in.lease.deadline_ms) != PQ_OK) {
    op->last_try = true;
    enqueue(c, op);
  }
}

/* ---- gauges: queued and leased jobs per model ---- */

static pq__model_count *count_for(pq_coord *c, const char *model) {
  for (size_t i = 0; i < c->n_counts; i++)
    if (strcmp(c->counts[i].model, model) == 0) return &c->counts[i];
  if (c->n_counts == c->cap_counts) {
    size_t cap = c->cap_counts ? c->cap_counts * 2 : 8;
    pq__model_count *grown = realloc(c->counts, cap * sizeof *grown);
    if (!grown) return NULL;
    c->counts = grown;
    c->cap_counts = cap;
  }
  pq__model_count *m = &c->counts[c->n_counts];
  memset(m, 0, sizeof *m);
  if (!(m->model = strdup(model))) return NULL;
  c->n_counts++;
  return m;
}

static void free_owner_counts(pq__model_count *m) {
  pq_strtab_free(&m->owners);
  free(m->owner_queued);
  m->owner_queued = NULL;
  m->cap_owner_queued = 0;
}

/* Owner's queued count in m moves by delta (an owner stays in the table at
 * 0). OOM: uncounted until the next rebuild (a position is an estimate).
 * Under counts_mu; on the writer's path for every submit and lease, so the
 * owner is found by hash, not by a scan of the tenants. */
static void owner_count_add(pq__model_count *m, const char *owner, int64_t delta) {
  int32_t i = pq_strtab_intern(&m->owners, owner);
  if (i < 0) return;
  if ((size_t)i >= m->cap_owner_queued) {
    size_t cap = m->owners.cap;
    int64_t *grown = realloc(m->owner_queued, cap * sizeof *grown);
    if (!grown) return;
    memset(grown + m->cap_owner_queued, 0, (cap - m->cap_owner_queued) * sizeof *grown);
    m->owner_queued = grown;
    m->cap_owner_queued = cap;
  }
  if ((m->owner_queued[i] += delta) < 0) m->owner_queued[i] = 0;
}

void pq__count_move(pq_coord *c, const char *model, const char *owner, int from, pq_job_state to) {
  pthread_mutex_lock(&c->counts_mu);
  pq__model_count *m = count_for(c, model);
  if (m) {
    if (from == PQ_JOB_QUEUED) m->queued--;
    if (from == PQ_JOB_LEASED) m->leased--;
    if (to == PQ_JOB_QUEUED) m->queued++;
    if (to == PQ_JOB_LEASED) m->leased++;
    if (c->sched && (from == PQ_JOB_QUEUED) != (to == PQ_JOB_QUEUED))
      owner_count_add(m, owner ? owner : "", to == PQ_JOB_QUEUED ? 1 : -1);
    if (m->queued <= 0 && m->leased <= 0) { /* a model with no jobs leaves: the table holds live ones only */
      free(m->model);
      free_owner_counts(m);
      *m = c->counts[--c->n_counts];
    }
  }
  pthread_mutex_unlock(&c->counts_mu);
}

/* ---- leased jobs per owner, for --max-running-per-user (writer thread only) ---- */

/* The owner's count, made when first needed (make); NULL when it has none, or on OOM. */
static int64_t *running_of(pq_coord *c, const char *owner, bool make) {
  int32_t i = make ? pq_strtab_intern(&c->running_owners, owner) : pq_strtab_find(&c->running_owners, owner);
  if (i < 0) return NULL;
  if ((size_t)i >= c->cap_running) {
    size_t cap = c->running_owners.cap;
    int64_t *grown = realloc(c->running, cap * sizeof *grown);
    if (!grown) return NULL;
    memset(grown + c->cap_running, 0, (cap - c->cap_running) * sizeof *grown);
    c->running = grown;
    c->cap_running = cap;
  }
  return &c->running[i];
}

/* What counts against a user's running limit: jobs a worker holds. A batch
 * or council the coordinator runs itself is "leased" with no worker while
 * its steps run, and must not take the slot its own steps need; an open
 * server's jobs (owner "") have no user to limit. */
static bool counts_as_running(const pq_job *job) {
  return job->owner && *job->owner && !pq_job_kind_of(job)->on_submit;
}

/* Per model, an owner's count is kept under "owner<0x1f>model" in the same table. */
static int64_t *running_in(pq_coord *c, const char *owner, const char *model, size_t model_len, bool make) {
  char key[PQ_UUID_LEN + 1 + 512];
  if (strlen(owner) + 1 + model_len >= sizeof key) return NULL; /* a model name that long is not limited */
  int n = snprintf(key, sizeof key, "%s\x1f%.*s", owner, (int)model_len, model);
  return n > 0 ? running_of(c, key, make) : NULL;
}

static bool limits_running(const pq_coord *c) {
  return c->cfg.max_running_per_owner > 0 || c->cfg.max_running_per_owner_model > 0;
}

static void running_add(pq_coord *c, const pq_job *job, int delta) {
  int64_t *n; /* OOM: one lease uncounted until the next rebuild */
  if (c->cfg.max_running_per_owner > 0 && (n = running_of(c, job->owner, delta > 0))) *n += delta;
  if (c->cfg.max_running_per_owner_model > 0 &&
      (n = running_in(c, job->owner, job->model, strlen(job->model), delta > 0)))
    *n += delta;
}

void pq__running_move(pq_coord *c, const pq_job *job, int from, pq_job_state to) {
  if (!limits_running(c) || (from == PQ_JOB_LEASED) == (to == PQ_JOB_LEASED) || !counts_as_running(job)) return;
  running_add(c, job, to == PQ_JOB_LEASED ? 1 : -1);
}

bool pq__may_run(void *coord, const char *owner, const char *key) {
  pq_coord *c = coord;
  if (!*owner) return true;
  const int64_t *n;
  if (c->cfg.max_running_per_owner > 0 && (n = running_of(c, owner, false)) && *n >= c->cfg.max_running_per_owner)
    return false;
  size_t model_len = strcspn(key, "\x1f"); /* the lane's model, its requirement class aside */
  return c->cfg.max_running_per_owner_model <= 0 || !(n = running_in(c, owner, key, model_len, false)) ||
         *n < c->cfg.max_running_per_owner_model;
}

static int count_running(void *ctx, pq_job *j) {
  if (counts_as_running(j)) running_add(ctx, j, 1);
  return 0;
}

int64_t pq__queued_in(pq_coord *c, const char *model, const char *owner) {
  int64_t n = 0;
  pthread_mutex_lock(&c->counts_mu);
  for (size_t i = 0; i < c->n_counts; i++)
    if (strcmp(c->counts[i].model, model) == 0) {
      int32_t k = pq_strtab_find(&c->counts[i].owners, owner);
      if (k >= 0 && (size_t)k < c->counts[i].cap_owner_queued) n = c->counts[i].owner_queued[k];
      break;
    }
  pthread_mutex_unlock(&c->counts_mu);
  return n;
}

/* From the store: at start, and after a rollback undid what was counted. */
static pq_err rebuild_running(pq_coord *c) {
  if (!limits_running(c)) return PQ_OK;
  if (c->running) memset(c->running, 0, c->cap_running * sizeof *c->running);
  pq_job_filter leased = {.state = PQ_JOB_LEASED, .limit = INT32_MAX, .summary = true, .no_total = true};
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total;
  pq_err result = c->ops->job_list(c->wconn, &leased, &jobs, &n, &total);
  if (result != PQ_OK) pq_error("coordinator: cannot count running jobs (%s): no running limit until the next rebuild",
                                pq_err_code(result));
  for (size_t i = 0; result == PQ_OK && i < n; i++) count_running(c, jobs[i]);
  pq_job_free_array(jobs, n);
  return result;
}

/* Owners' turns: the weights the operator gave by user name (found here, as
 * the index knows owners by id), and the urgent priority. */
static pq_err apply_fairness(pq_coord *c) {
  if (c->cfg.admin_only) return PQ_OK;
  if (c->sched && c->cfg.urgent_priority > 0) pq_sched_set_urgent(c->sched, c->cfg.urgent_priority);
  if (!c->cfg.n_fair_weights) return PQ_OK;
  if (!(c->weights = calloc(c->cfg.n_fair_weights, sizeof *c->weights))) return PQ_ERR_NO_MEMORY;
  for (size_t i = 0; i < c->cfg.n_fair_weights; i++) {
    const struct pq_fair_weight *w = &c->cfg.fair_weights[i];
    pq_user *u = NULL;
    pq_err result = c->ops->user_get(c->wconn, NULL, w->user, &u);
    if (result == PQ_ERR_NOT_FOUND) pq_error("coordinator: --fair-weights names %s, who is no user", w->user);
    if (result != PQ_OK) return result == PQ_ERR_NOT_FOUND ? PQ_ERR_INVALID_REQUEST : result;
    bool ok = (!c->sched || pq_sched_set_weight(c->sched, u->id, w->weight) == 0) && (c->weights[i].owner = strdup(u->id));
    pq_user_free(u);
    if (!ok) return PQ_ERR_NO_MEMORY;
    c->weights[i].weight = w->weight;
    c->n_weights = i + 1;
  }
  return PQ_OK;
}

static void add_count(void *ctx, const char *model, pq_job_state s, int64_t n) {
  pq_coord *c = ctx;
  pq__model_count *m = count_for(c, model);
  if (m && s == PQ_JOB_QUEUED) m->queued = n;
  if (m && s == PQ_JOB_LEASED) m->leased = n;
}

static pq_err rebuild_counts(pq_coord *c) {
  if (c->cfg.admin_only) return PQ_OK;
  pthread_mutex_lock(&c->counts_mu);
  for (size_t i = 0; i < c->n_counts; i++) c->counts[i].queued = c->counts[i].leased = 0;
  pq_err result = c->ops->job_count_active(c->wconn, add_count, c);
  pthread_mutex_unlock(&c->counts_mu);
  return result;
}

void pq_coord_active_counts(pq_coord *c, void (*fn)(void *ctx, const char *model, int64_t queued,
                                                    int64_t leased), void *ctx) {
  pthread_mutex_lock(&c->counts_mu);
  for (size_t i = 0; i < c->n_counts; i++) fn(ctx, c->counts[i].model, c->counts[i].queued, c->counts[i].leased);
  pthread_mutex_unlock(&c->counts_mu);
}

/* ---- the index ---- */

typedef struct {
  pq_coord *c;
  pq_sched *sched;
  int64_t now;
  int failed;
} rebuild_ctx;

static int rebuild_one(void *ctx, pq_job *j) {
  rebuild_ctx *r = ctx;
  if (pq__sched_push_job(r->c, j, j->not_before, r->now) != 0) {
    r->failed = 1;
    return 1;
  }
  pq__model_count *m = count_for(r->c, j->model); /* under counts_mu: rebuild_index holds it */
  if (m) owner_count_add(m, j->owner ? j->owner : "", 1);
  return 0;
}

static pq_err rebuild_index(pq_coord *c) {
  if (!c->sched) return PQ_OK;
  pq_sched_clear(c->sched);
  pq__route_cleared(c);
  rebuild_ctx r = {.c = c, .sched = c->sched, .now = pq_clock_wall(c->clock)};
  pthread_mutex_lock(&c->counts_mu);
  for (size_t i = 0; i < c->n_counts; i++) free_owner_counts(&c->counts[i]);
  pq_err result = c->ops->job_scan_queued(c->wconn, rebuild_one, &r);
  pthread_mutex_unlock(&c->counts_mu);
  if (result == PQ_OK && r.failed) result = PQ_ERR_NO_MEMORY;
  return result;
}

/* ---- the writer ---- */

static void batch_free(pq__batch *b) {
  free(b->published);
  free(b->handed);
  for (size_t i = 0; i < b->n_ready_models; i++) free(b->ready_models[i]);
  free(b->ready_models);
  for (size_t i = 0; i < b->n_offline; i++) free(b->offline[i]);
  free(b->offline);
  for (size_t i = 0; i < b->n_installs; i++) free(b->installs[i].token);
  free(b->installs);
  for (size_t i = 0; i < b->n_ended; i++) free(b->ended[i].model);
  free(b->ended);
  for (size_t i = 0; i < b->n_charges; i++) free(b->charges[i].model);
  free(b->charges);
}

/* Must this operation be on stable storage before it is acknowledged? A lease
 * or heartbeat need not: lost in a power cut, the job is simply leased again
 * and the first worker's late result is refused (at-least-once, as for a
 * lapsed lease). Jobs, results and cancellations must. */
static bool needs_sync(const pq_op *op) {
  /* streamed output is progress: the result a worker completes with is
   * durable; a reaper pass is redone after a crash */
  return op->kind != PQ_OP_LEASE && op->kind != PQ_OP_HEARTBEAT && op->kind != PQ_OP_APPEND &&
         op->kind != PQ_OP_REAP && op->kind != PQ_OP_RELEASE;
}

/* ---- several coordinators on one store ----
 *
 * After each commit the writer tells the others, in one notification (or a
 * few when it is long), what changed, a line each: "j <job id>" (its state
 * or its event log: subscribers look), "m <model>" (work became ready;
 * "m *": any model's may have), "w <worker id>" (registered or back),
 * "o <worker id>" (offline). Their listener thread acts on the lines. */

#define NOTIFY_MAX 7800 /* PostgreSQL's payload limit is 8000 bytes */

static void notify_line(pq_coord *c, pq_buf *buf, char kind, const char *value) {
  if (buf->len && buf->len + strlen(value) + 4 > NOTIFY_MAX) {
    c->ops->notify(c->store, buf->data);
    buf->len = 0;
    buf->data[0] = '\0';
  }
  pq_buf_printf(buf, "%c %s\n", kind, value);
}

static void notify_others(pq_coord *c, const pq__batch *b, pq_op *batch) {
  pq_buf buf = {0};
  for (size_t i = 0; i < b->n_published; i++) notify_line(c, &buf, 'j', b->published[i]);
  for (size_t i = 0; i < b->n_ready_models; i++) notify_line(c, &buf, 'm', b->ready_models[i]);
  if (b->all_ready) notify_line(c, &buf, 'm', "*");
  for (size_t i = 0; i < b->n_offline; i++) notify_line(c, &buf, 'o', b->offline[i]);
  for (pq_op *op = batch; op; op = op->next)
    if (op->out.result == PQ_OK && op->kind == PQ_OP_REGISTER) notify_line(c, &buf, 'w', op->in.reg.worker->id);
    else if (op->out.result == PQ_OK && op->touched_worker)
      notify_line(c, &buf, 'w', op->kind == PQ_OP_LEASE ? op->in.lease.worker_id : op->in.heartbeat.worker_id);
  if (buf.len && c->ops->notify(c->store, buf.data) != PQ_OK)
    pq_warn("coordinator: the other coordinators were not told of a commit (they see it on their next look)");
  pq_buf_free(&buf);
}

/* The listener thread: another coordinator's lines. */
static void on_notify(void *ctx, const char *payload) {
  pq_coord *c = ctx;
  if (strcmp(payload, "*") == 0) { /* we were away: every parked lease looks again */
    pq__live_reload(c); /* and workers that registered elsewhere meanwhile are known */
    wake_leases_for(c, "*");
    return;
  }
  const char *p = payload;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char value[256];
    if (len > 2 && len - 2 < sizeof value) {
      memcpy(value, p + 2, len - 2);
      value[len - 2] = '\0';
      switch (p[0]) {
        case 'j':
          pq_hub_publish(c->hub, pq_coord_job_key(value), SIZE_MAX);
          pq_hub_publish(c->hub, pq_coord_any_job_key(), SIZE_MAX);
          break;
        case 'm': wake_leases_for(c, value); break;
        case 'o': pq__live_remove(c, value); break;
        case 'w': {
          pq_worker *w = NULL;
          if (pq_coord_get_worker(c, value, &w) == PQ_OK && w->online) pq__live_add(c, w);
          pq_worker_free(w);
          break;
        }
        default: break;
      }
    }
    p += len + (nl ? 1 : 0);
  }
}

/* After commit: the live set follows registrations, workers heard from
 * again, and workers found silent. */
static void update_live(pq_coord *c, pq__batch *b, pq_op *batch) {
  for (size_t i = 0; i < b->n_offline; i++) pq__live_remove(c, b->offline[i]);
  for (pq_op *op = batch; op; op = op->next) {
    if (op->out.result != PQ_OK) continue;
    if (op->kind == PQ_OP_REGISTER) pq__live_add(c, op->in.reg.worker);
    else if (op->kind == PQ_OP_HEARTBEAT && op->in.heartbeat.capabilities) { /* what it offers changed */
      pq_worker *w = NULL;
      if (c->ops->worker_get(c->wconn, op->in.heartbeat.worker_id, &w) == PQ_OK) pq__live_add(c, w);
      pq_worker_free(w);
      c->classes_gen++; /* its parked leases' lanes are made again */
    } else if (op->touched_worker && !pq__live_has(c, op->kind == PQ_OP_LEASE ? op->in.lease.worker_id
                                                                           : op->in.heartbeat.worker_id)) {
      pq_worker *w = NULL;
      const char *id = op->kind == PQ_OP_LEASE ? op->in.lease.worker_id : op->in.heartbeat.worker_id;
      if (c->ops->worker_get(c->wconn, id, &w) == PQ_OK) pq__live_add(c, w);
      pq_worker_free(w);
    }
  }
}

/* A dropped job's last relayed pieces reached the store: its readers look there. */
static void relay_wrote(void *ctx, const char *job_id) {
  pq_coord *c = ctx;
  pq_hub_publish(c->hub, pq_coord_job_key(job_id), SIZE_MAX);
}

static void run_batch(pq_coord *c, pq_op *batch, bool reap) {
  pq__batch b = {.c = c, .now = pq_clock_wall(c->clock)};
  size_t n_ops = 0;
  bool durable = false;
  for (pq_op *op = batch; op && !durable; op = op->next) durable = needs_sync(op);
  pq_err result = c->ops->begin(c->wconn, durable);
  /* first what the relay acknowledged: it comes before anything posted after it */
  if (result == PQ_OK && c->relay) result = pq__relay_flush(c->relay, c->wconn, c->ops, b.now);
  if (result == PQ_OK) {
    if (c->sched) pq_sched_promote(c->sched, b.now);
    for (pq_op *op = batch; op; op = op->next, n_ops++) {
      op->out.result = pq__op_run(&b, op);
      if (pq__fatal(op->out.result)) {
        result = op->out.result;
        break;
      }
    }
    /* with several coordinators on one store, one of them (the leader) reaps */
    if (result == PQ_OK && reap) {
      bool leader = !c->ops->lead || c->ops->lead(c->wconn);
      if (leader) result = pq__reap(&b, NULL);
      /* without an index a retry's time may have come for any model; polling, another
       * coordinator's work may have come */
      b.all_ready = !c->sched && (leader || c->cfg.poll_only);
    }
    if (result == PQ_OK) result = hand_off(&b);
    if (result == PQ_OK) result = pq__turns_flush(&b);
    if (result == PQ_OK) result = c->ops->commit(c->wconn);
  }
  if (batch) __atomic_store_n(&c->writes_failing, result != PQ_OK, __ATOMIC_RELAXED);
  /* a shared store's beat is a round trip to its server: once one commits, it is back */
  else if (result == PQ_OK && !c->sched && !c->cfg.pick_from_store) __atomic_store_n(&c->writes_failing, false, __ATOMIC_RELAXED);
  if (c->relay) pq__relay_flushed(c->relay, result == PQ_OK, relay_wrote, c);
  if (result != PQ_OK) {
    pq_error("coordinator: transaction failed (%s); the batch is refused", pq_err_code(result));
    c->ops->rollback(c->wconn);
    for (pq_op *op = batch; op; op = op->next) {
      pq_op_release(op);
      op->out.result = PQ_ERR_STORE_FAILED;
      op->want_wait = false;
    }
    for (size_t i = 0; i < b.n_handed; i++) {
      pq_op_release(b.handed[i]);
      b.handed[i]->out.result = PQ_ERR_STORE_FAILED;
    }
    pq_err index = rebuild_index(c), counts = rebuild_counts(c), running = rebuild_running(c); /* each, whatever the others do */
    if (index != PQ_OK || counts != PQ_OK || running != PQ_OK) pq_error("coordinator: cannot rebuild the index");
  } else {
    if (n_ops) { /* reaper-only passes are not group commits */
      PQ__STAT_ADD(c, batches, 1);
      PQ__STAT_ADD(c, batched_ops, n_ops);
    }
    if (c->relay) { /* before publishing: a woken reader must not find the old lease in memory */
      for (size_t i = 0; i < b.n_published; i++) pq__relay_drop(c->relay, b.published[i]);
      for (size_t i = 0; i < b.n_installs; i++)
        if (!b.installs[i].cancelled) pq__relay_install(c->relay, &b.installs[i]);
    }
    for (size_t i = 0; i < b.n_published; i++)
      pq_hub_publish(c->hub, pq_coord_job_key(b.published[i]), SIZE_MAX);
    if (b.n_published) pq_hub_publish(c->hub, pq_coord_any_job_key(), SIZE_MAX);
    for (size_t i = 0; i < b.n_ended; i++) pq__throughput_add(c->throughput, b.now, b.ended[i].model, b.ended[i].tokens);
    update_live(c, &b, batch);
    if (b.deliveries_queued) pq__webhooks_wake(c);
    if (c->ops->notify && !c->cfg.poll_only) notify_others(c, &b, batch);
    if (c->cfg.poll_only && reap) pq__live_refresh(c); /* nobody tells us of other coordinators' workers */
  }
  pq_op *op = batch;
  while (op) {
    pq_op *next = op->next; /* done() may free op */
    if (op->want_wait) park_lease(c, op);
    else finish(op, PQ_OK);
    op = next;
  }
  for (size_t i = 0; i < b.n_handed; i++) {
    if (b.handed[i]->want_wait) park_lease(c, b.handed[i]);
    else finish(b.handed[i], PQ_OK);
  }
  batch_free(&b);
}

static void *writer_main(void *arg) {
  pq_coord *c = arg;
  bool relay_closed = false;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    int64_t now = pq_clock_mono(c->clock);
    /* delayed retries become ready on the reaper's beat or sooner */
    int64_t due_wall = c->sched ? pq_sched_next_due(c->sched) : INT64_MAX;
    int64_t wake_at = c->next_reap_ms;
    if (due_wall != INT64_MAX) {
      int64_t due_mono = now + (due_wall - pq_clock_wall(c->clock));
      if (due_mono < wake_at) wake_at = due_mono;
    }
    /* a manual clock beats only when told (PQ_OP_REAP) */
    bool reap = now >= c->next_reap_ms && !c->clock->manual;
    if (c->clock->manual) wake_at = INT64_MAX;
    if (!c->head && now < wake_at) {
      if (c->closing && c->relay && !relay_closed) {
        relay_closed = true; /* no post is acknowledged from here on; what was is written, once
                              * (a failing store must not hold the close) */
        pq__relay_close(c->relay);
        if (pq__relay_dirty(c->relay)) {
          pthread_mutex_unlock(&c->mu);
          run_batch(c, NULL, false);
          pthread_mutex_lock(&c->mu);
        }
        continue;
      }
      if (c->closing) break;
      struct timespec ts = pq_clock_wait_until(c->clock, wake_at, 1000);
      pthread_cond_timedwait(&c->cv, &c->mu, &ts);
      continue;
    }
    pq_op *batch = c->head, *last = batch;
    for (int n = 1; last && last->next && n < c->cfg.batch_max; n++) last = last->next;
    if (last) {
      c->head = last->next;
      if (!c->head) c->tail = NULL;
      last->next = NULL;
    }
    if (reap) c->next_reap_ms = now + c->cfg.reap_interval_ms;
    pthread_mutex_unlock(&c->mu);
    run_batch(c, batch, reap);
    pthread_mutex_lock(&c->mu);
  }
  c->stopped = true;
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

/* ---- open and close ---- */

static pq_err start(pq_coord *c) {
  pq_err result;
  int applied = 0;
  char why[300];
  if ((result = pq_store_open(c->cfg.store_url, &c->cfg.store, &c->store, why, sizeof why))) {
    pq_error("coordinator: %s", why);
    return result;
  }
  c->ops = c->store->ops;
  if ((result = c->ops->migrate(c->store, &applied))) return result;
  if (!(c->wconn = c->ops->acquire(c->store, PQ_CONN_WRITE))) return PQ_ERR_STORE_FAILED;
  bool index = pq_store_single_coordinator(c->store) && !c->cfg.pick_from_store && !c->cfg.admin_only;
  if ((index && !(c->sched = pq_sched_new())) || !(c->hub = pq_hub_new(c->clock))) return PQ_ERR_NO_MEMORY;
  /* the relay numbers entries in memory: only where no other coordinator writes them */
  if (pq_store_single_coordinator(c->store) && !c->cfg.admin_only && !(c->relay = pq__relay_new()))
    return PQ_ERR_NO_MEMORY;
  if (!c->sched && !c->cfg.admin_only && c->cfg.max_queued_per_owner_model > 0)
    pq_warn("coordinator: --max-queued-per-user-model is kept by the single-coordinator index: on a shared store "
            "only --max-queued-per-user holds");
  if ((result = apply_fairness(c)) || (result = rebuild_index(c)) || (result = rebuild_counts(c)) ||
      (result = rebuild_running(c)))
    return result;
  if (!c->cfg.admin_only && ((result = pq__live_load(c)) || (result = pq__webhooks_load(c)))) return result;
  if (!c->cfg.admin_only && !c->cfg.poll_only && c->ops->listen && (result = c->ops->listen(c->store, on_notify, c)))
    return result;
  if (c->sched) pq_info("coordinator: %zu queued jobs indexed", pq_sched_total(c->sched));
  c->next_reap_ms = c->cfg.admin_only ? INT64_MAX : pq_clock_mono(c->clock);
  if (pthread_create(&c->writer, NULL, writer_main, c) != 0) return PQ_ERR_INTERNAL;
  c->writer_started = true;
  return PQ_OK;
}

pq_err pq_coord_open(const pq_coord_config *cfg, pq_coord **out) {
  pq_coord *c = calloc(1, sizeof *c);
  if (!c) return PQ_ERR_NO_MEMORY;
  c->cfg = *cfg;
  c->clock = cfg->clock ? cfg->clock : &pq_clock_system;
  if (c->cfg.batch_max <= 0) c->cfg.batch_max = 1024;
  if (c->cfg.reap_interval_ms <= 0) c->cfg.reap_interval_ms = 250;
  if (c->cfg.max_attempts <= 0) c->cfg.max_attempts = 3;
  if (c->cfg.hold_max_tokens <= 0) c->cfg.hold_max_tokens = 4096;
  if (c->cfg.lease_timeout_ms <= 0) c->cfg.lease_timeout_ms = 60000;
  if (c->cfg.worker_timeout_ms <= 0) c->cfg.worker_timeout_ms = 30000;
  if (c->cfg.retry_backoff_ms <= 0) c->cfg.retry_backoff_ms = 1000;
  if (c->cfg.retry_backoff_max_ms < c->cfg.retry_backoff_ms)
    c->cfg.retry_backoff_max_ms = c->cfg.retry_backoff_ms * 60;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->counts_mu, NULL);
  c->throughput = pq__throughput_new();
  pthread_mutex_init(&c->live_mu, NULL);
  pthread_mutex_init(&c->webhook_mu, NULL);
  pthread_cond_init(&c->webhook_cv, &attr);
  pthread_cond_init(&c->cv, &attr);
  pthread_condattr_destroy(&attr);
  pq_err result = start(c);
  if (result != PQ_OK) {
    pq_coord_close(c);
    return result;
  }
  *out = c;
  return PQ_OK;
}

void pq_coord_shutdown(pq_coord *c) {
  if (c->hub) pq_hub_shutdown(c->hub); /* parked leases go back to the writer for a last try */
  pthread_mutex_lock(&c->mu);
  __atomic_store_n(&c->closing, true, __ATOMIC_RELAXED); /* the sender reads it without the lock */
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  pq__webhooks_wake(c); /* the sender sees closing */
}

void pq_coord_close(pq_coord *c) {
  if (!c) return;
  pq_coord_shutdown(c);
  if (c->writer_started) pthread_join(c->writer, NULL);
  if (c->store && c->ops->listen && !c->cfg.admin_only && !c->cfg.poll_only)
    c->ops->listen(c->store, NULL, NULL); /* before the hub goes */
  if (c->stats.batches)
    pq_info("coordinator: %llu operations in %llu transactions (%.1f per commit)",
            (unsigned long long)c->stats.batched_ops, (unsigned long long)c->stats.batches,
            (double)c->stats.batched_ops / (double)c->stats.batches);
  pq_hub_free(c->hub);
  pq_sched_free(c->sched);
  pq__relay_free(c->relay);
  if (c->wconn) c->ops->release(c->store, c->wconn);
  pq_store_close(c->store);
  pq__live_free(c);
  pthread_mutex_destroy(&c->live_mu);
  pthread_mutex_destroy(&c->webhook_mu);
  pthread_cond_destroy(&c->webhook_cv);
  pq_strtab_free(&c->webhook_owners);
  pq__route_free(c);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  for (size_t i = 0; i < c->n_counts; i++) {
    free(c->counts[i].model);
    free_owner_counts(&c->counts[i]);
  }
  free(c->counts);
  pthread_mutex_destroy(&c->counts_mu);
  pq__throughput_free(c->throughput);
  pq_strtab_free(&c->running_owners);
  free(c->running);
  for (size_t i = 0; i < c->n_weights; i++) free(c->weights[i].owner);
  free(c->weights);
  free(c);
}

/* ---- reads ---- */

/* One store read on a connection borrowed from the read pool. */
#define READ_ONCE(c, op, ...)                                         \
  pq_conn *conn_ = (c)->ops->acquire((c)->store, PQ_CONN_READ);       \
  if (!conn_) return PQ_ERR_STORE_FAILED;                             \
  pq_err result_ = (c)->ops->op(conn_, __VA_ARGS__);                  \
  (c)->ops->release((c)->store, conn_);                               \
  return result_

pq_err pq_coord_get_job(pq_coord *c, const char *id, int64_t number, pq_job **out) {
  READ_ONCE(c, job_get, id, number, out);
}

int pq__weight_of(const pq_coord *c, const char *owner) {
  for (size_t i = 0; i < c->n_weights; i++)
    if (strcmp(c->weights[i].owner, owner) == 0) return c->weights[i].weight;
  return 1;
}

static pq_err owners_jobs_ahead(pq_coord *c, const pq_job *job, int64_t cap, int64_t *ahead) {
  READ_ONCE(c, job_ahead, job, true, cap, ahead);
}

/* With the fair index, a job waits for its owner's jobs ahead of it and for
 * the turns of everyone else with work until its own turn comes: its
 * owner's r jobs ahead take r / w + 1 turns, and in each of them every other
 * owner V takes up to its weight w_V (an estimate: where the round stands
 * now is not counted). Without the index: the store's order. */
pq_err pq_coord_jobs_ahead(pq_coord *c, const pq_job *job, int64_t cap, int64_t *ahead) {
  if (!c->sched) {
    READ_ONCE(c, job_ahead, job, false, cap, ahead);
  }
  const char *owner = job->owner ? job->owner : "";
  int64_t mine = 0;
  pq_err result = owners_jobs_ahead(c, job, cap, &mine);
  if (result != PQ_OK) return result;
  int64_t turns = mine / pq__weight_of(c, owner) + 1, total = mine;
  pthread_mutex_lock(&c->counts_mu);
  for (size_t i = 0; i < c->n_counts && total < cap; i++) {
    const pq__model_count *m = &c->counts[i];
    if (strcmp(m->model, job->model) != 0) continue;
    for (size_t k = 0; k < m->owners.n && (size_t)k < m->cap_owner_queued && total < cap; k++) {
      if (!m->owner_queued[k] || strcmp(m->owners.names[k], owner) == 0) continue;
      int64_t share = turns * pq__weight_of(c, m->owners.names[k]);
      total += m->owner_queued[k] < share ? m->owner_queued[k] : share;
    }
  }
  pthread_mutex_unlock(&c->counts_mu);
  *ahead = total < cap ? total : cap;
  return PQ_OK;
}

pq_err pq_coord_peek_job(pq_coord *c, const char *id, pq_job *out) {
  READ_ONCE(c, job_peek, id, out);
}

pq_err pq_coord_list_jobs(pq_coord *c, const pq_job_filter *f, pq_job ***out, size_t *n,
                          int64_t *total) {
  READ_ONCE(c, job_list, f, out, n, total);
}

pq_err pq_coord_get_worker(pq_coord *c, const char *id, pq_worker **out) {
  READ_ONCE(c, worker_get, id, out);
}

pq_err pq_coord_online_workers(pq_coord *c, pq_worker ***out, size_t *n) {
  READ_ONCE(c, worker_list_online, out, n);
}

pq_err pq_coord_get_user(pq_coord *c, const char *id, const char *name, pq_user **out) {
  READ_ONCE(c, user_get, id, name, out);
}

pq_err pq_coord_find_user(pq_coord *c, const char *id_or_name, pq_user **out) {
  bool id = pq_is_uuid(id_or_name);
  return pq_coord_get_user(c, id ? id_or_name : NULL, id ? NULL : id_or_name, out);
}

pq_err pq_coord_find_key(pq_coord *c, const char *id_or_prefix, const char *owner, char id[PQ_UUID_LEN + 1]) {
  pq_api_key **keys = NULL;
  size_t n = 0;
  pq_err e = pq_coord_list_keys(c, owner, &keys, &n);
  if (e != PQ_OK) return e;
  e = PQ_ERR_NOT_FOUND;
  for (size_t i = 0; i < n; i++) {
    if (e == PQ_ERR_NOT_FOUND && (strcmp(keys[i]->id, id_or_prefix) == 0 || strcmp(keys[i]->prefix, id_or_prefix) == 0)) {
      snprintf(id, PQ_UUID_LEN + 1, "%s", keys[i]->id);
      e = PQ_OK;
    }
    pq_api_key_free(keys[i]);
  }
  free(keys);
  return e;
}

pq_err pq_coord_get_key(pq_coord *c, const char *hash, pq_api_key **out) {
  READ_ONCE(c, key_get_by_hash, hash, out);
}

pq_err pq_coord_job_totals(pq_coord *c, const char *owner, int64_t *total, int64_t *completed,
                           int64_t *tokens) {
  READ_ONCE(c, job_totals, owner, total, completed, tokens);
}

pq_err pq_coord_list_users(pq_coord *c, pq_user ***out, size_t *n) {
  READ_ONCE(c, user_list, out, n);
}

pq_err pq_coord_list_keys(pq_coord *c, const char *user_id, pq_api_key ***out, size_t *n) {
  READ_ONCE(c, key_list, user_id, out, n);
}

pq_err pq_coord_events(pq_coord *c, int64_t job_number, int attempt, int64_t after, size_t limit,
                       pq_job_event **out, size_t *n) {
  READ_ONCE(c, event_list, job_number, attempt, after, limit, out, n);
}

pq_err pq_coord_account(pq_coord *c, const char *account, pq_account *out) { READ_ONCE(c, account_get, account, out); }

pq_err pq_coord_transfers(pq_coord *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out,
                          size_t *n, int64_t *total) {
  READ_ONCE(c, transfer_list, account, limit, offset, out, n, total);
}

pq_err pq_coord_prices(pq_coord *c, pq_price ***out, size_t *n) { READ_ONCE(c, price_list, out, n); }

pq_err pq_coord_file_get(pq_coord *c, const char *id, bool with_content, pq_file **out) {
  READ_ONCE(c, file_get, id, with_content, out);
}

pq_err pq_coord_file_list(pq_coord *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out,
                          size_t *n) {
  READ_ONCE(c, file_list, owner, purpose, limit, out, n);
}

pq_err pq_coord_job_children(pq_coord *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                             size_t *n) {
  READ_ONCE(c, job_children, parent_id, after, limit, out, n);
}

pq_err pq_coord_subscriptions_active(pq_coord *c, int64_t *n) { READ_ONCE(c, subscription_count_active, n); }

pq_err pq_coord_btc_payment(pq_coord *c, const char *id, pq_btc_payment **out) { READ_ONCE(c, btc_payment_get, id, out); }

pq_err pq_coord_budgets(pq_coord *c, const char *subject, pq_budget ***out, size_t *n) {
  READ_ONCE(c, budget_list, subject, out, n);
}

pq_err pq_coord_spend(pq_coord *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending) {
  READ_ONCE(c, spend, subject, since, posted, pending);
}

pq_err pq_coord_ledger_totals(pq_coord *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum) {
  READ_ONCE(c, ledger_totals, balance_sum, held_sum, pending_sum);
}

pq_err pq_coord_ledger_sums(pq_coord *c, int64_t from, int64_t to,
                            void (*fn)(void *ctx, const char *kind, int64_t amount), void *ctx) {
  READ_ONCE(c, ledger_sums, from, to, fn, ctx);
}

pq_err pq_coord_job_report(pq_coord *c, int64_t from, int64_t to, pq_report_by by,
                           void (*fn)(void *ctx, const pq_report_row *row), void *ctx) {
  READ_ONCE(c, job_report, from, to, by, fn, ctx);
}

bool pq_coord_ready(pq_coord *c) {
  pq_conn *conn = c->ops->acquire(c->store, PQ_CONN_READ);
  if (!conn) return false;
  int64_t n;
  pq_err result = c->ops->worker_count_online(conn, &n);
  c->ops->release(c->store, conn);
  pthread_mutex_lock(&c->mu);
  bool running = !c->closing && !c->stopped;
  pthread_mutex_unlock(&c->mu);
  return result == PQ_OK && running && !__atomic_load_n(&c->writes_failing, __ATOMIC_RELAXED);
}

pq_err pq_coord_webhooks(pq_coord *c, const char *owner, pq_webhook ***out, size_t *n) {
  READ_ONCE(c, webhook_list, owner, out, n);
}
pq_err pq_coord_webhook_get(pq_coord *c, const char *id, pq_webhook **out) { READ_ONCE(c, webhook_get, id, out); }
pq_err pq_coord_deliveries(pq_coord *c, const char *owner, const char *job_id, int state, int64_t limit,
                           pq_delivery ***out, size_t *n) {
  READ_ONCE(c, delivery_list, owner, job_id, state, limit, out, n);
}
pq_err pq_coord_delivery_get(pq_coord *c, const char *id, pq_delivery **out) { READ_ONCE(c, delivery_get, id, out); }
pq_err pq_coord_delivery_next_at(pq_coord *c, int64_t *at) { READ_ONCE(c, delivery_next_at, at); }

uint64_t pq_coord_webhook_seq(pq_coord *c) {
  pthread_mutex_lock(&c->webhook_mu);
  uint64_t seq = c->webhook_seq;
  pthread_mutex_unlock(&c->webhook_mu);
  return seq;
}

void pq_coord_webhook_wait(pq_coord *c, uint64_t seen, int64_t until_ms) {
  pthread_mutex_lock(&c->webhook_mu);
  while (c->webhook_seq == seen && pq_clock_mono(c->clock) < until_ms && !__atomic_load_n(&c->closing, __ATOMIC_RELAXED)) {
    struct timespec ts = pq_clock_wait_until(c->clock, until_ms, 1000);
    pthread_cond_timedwait(&c->webhook_cv, &c->webhook_mu, &ts);
  }
  pthread_mutex_unlock(&c->webhook_mu);
}

pq_hub *pq_coord_hub(pq_coord *c) { return c->hub; }

uint64_t pq_coord_any_job_key(void) { return pq_coord_job_key("*"); } /* no job id is "*" */

uint64_t pq_coord_job_key(const char *job_id) {
  uint64_t h = pq_fnv1a_str(job_id);
  return h == PQ__KEY_LEASE ? 1 : h;
}

void pq_coord_get_stats(pq_coord *c, pq_coord_stats *out) {
#define LOAD(f) out->f = __atomic_load_n(&c->stats.f, __ATOMIC_RELAXED)
  LOAD(submitted); LOAD(completed); LOAD(failed); LOAD(dead); LOAD(cancelled); LOAD(expired);
  LOAD(lease_expiries); LOAD(batches); LOAD(batched_ops); LOAD(handoffs);
#undef LOAD
}

const pq_coord_config *pq_coord_config_of(pq_coord *c) { return &c->cfg; }
const pq_clock *pq_coord_clock(pq_coord *c) { return c->clock; }
pq_store *pq_coord_store(pq_coord *c) { return c->store; }
