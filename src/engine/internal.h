/* Private to the engine: writer.c (the queue, batches, parking, reads),
 * ops_jobs.c, ops_workers.c, ops_identity.c and reaper.c (what each
 * operation does inside a transaction), live.c (the live models) and the
 * kinds' hooks. */
#ifndef PQ_ENGINE_INTERNAL_H
#define PQ_ENGINE_INTERNAL_H

#include <pthread.h>

#include "engine/coord.h"
#include "base/strtab.h"
#include "engine/kind.h"
#include "engine/relay.h"
#include "engine/sched.h"
#include "model/route.h"

#define PQ__KEY_LEASE 0 /* hub key under which waiting leases park */

/* One online worker and the models it serves (live.c). */
typedef struct pq__live_worker {
  char id[PQ_UUID_LEN + 1];
  char owner[PQ_UUID_LEN + 1];
  char **models;
  size_t n_models;
  char **params; /* the request parameters its backend honours (capabilities.params) */
  size_t n_params;
  pq_capset offer; /* what it offers jobs' requirements (model/route.h) */
  char *caps;     /* its capabilities text (the store's pick reads the offer from it) */
  int64_t slots;  /* capabilities.max_concurrency or .slots; 1 when unsaid */
  int64_t created_at;
} pq__live_worker;

typedef struct pq__throughput pq__throughput; /* throughput.c */
pq__throughput *pq__throughput_new(void);
void pq__throughput_free(pq__throughput *t);
/* A job of model ended at now_ms (wall clock) having made tokens: the
 * writer calls it after the commit that ended it. */
void pq__throughput_add(pq__throughput *t, int64_t now_ms, const char *model, int64_t tokens);

typedef struct pq__model_count {
  char *model;
  int64_t queued, leased;
  /* queued per owner (indexed as in owners), kept with the fair index: queue positions follow its turns */
  pq_strtab owners;
  int64_t *owner_queued;
  size_t cap_owner_queued;
} pq__model_count;

struct pq_coord {
  pq_coord_config cfg;
  const pq_clock *clock;
  pq_store *store;
  const pq_store_ops *ops; /* store->ops */
  pq_hub *hub;
  pq_sched *sched; /* writer thread only; NULL: leases are picked by the store */
  pq__relay *relay; /* NULL when other coordinators may share the store */
  pq_conn *wconn;  /* writer thread only */
  pthread_t writer;
  bool writer_started;
  pthread_mutex_t mu; /* guards the queue and the flags below */
  pthread_cond_t cv;
  pq_op *head, *tail;
  bool closing, stopped;
  bool writes_failing; /* the last batch with operations could not commit (a full disk, ...) */
  int64_t next_reap_ms; /* the clock's mono */
  pq_coord_stats stats; /* written by the writer, read with atomics */
  pthread_mutex_t counts_mu; /* queued/leased per model, for the gauges */
  pq__model_count *counts;
  size_t n_counts, cap_counts;
  pq__throughput *throughput; /* NULL when it could not be had: the chart is empty */
  pq_strtab running_owners;  /* jobs workers hold per owner, indexed as running_owners (writer thread only) */
  int64_t *running;
  size_t cap_running;
  struct pq__weight { char *owner; int weight; } *weights; /* --fair-weights by owner id: set at start, then read-only */
  size_t n_weights;
  /* routing.c: the distinct requirements of queued jobs, each a lane class of the index (writer
   * thread only); classes_gen counts additions, so a parked lease knows its lanes are stale */
  struct pq__route_class { char *text; pq_capset req; int64_t refs; /* its queued jobs */ } *classes;
  size_t n_classes, cap_classes;
  uint64_t classes_gen;
  size_t pick_rotor; /* leases picked by the store: the model the next one looks at first (writer thread) */
  /* ops_webhooks.c: owners with subscriptions (a job's end looks for them only then; with
   * other coordinators sharing the store, always), and the sender's wake-up */
  pq_strtab webhook_owners;
  pthread_mutex_t webhook_mu;
  pthread_cond_t webhook_cv;
  uint64_t webhook_seq; /* under webhook_mu: bumped after a commit that queued deliveries */
  pthread_mutex_t live_mu; /* the live workers: written by the writer, read by anyone */
  pq__live_worker *live;
  size_t n_live, cap_live;
};

/* A job of model and owner moved from one state to another (-1: from nowhere). */
void pq__count_move(pq_coord *c, const char *model, const char *owner, int from, pq_job_state to);
/* A job moved from one state to another: its owner's count of jobs workers
 * hold (--max-running-per-user) follows. Writer thread only. */
void pq__running_move(pq_coord *c, const pq_job *job, int from, pq_job_state to);
/* May owner take one more job (its running limit)? For pq_sched_pop. */
bool pq__may_run(void *coord, const char *owner, const char *key);
/* An owner's --fair-weights weight (1 when none was given). */
int pq__weight_of(const pq_coord *c, const char *owner);
/* Owner's queued jobs of model, from the index's counts (0 without an index). */
int64_t pq__queued_in(pq_coord *c, const char *model, const char *owner);

/* One transaction's worth of work, on the writer thread. Kinds see it as
 * their pq_kind_ctx. */
struct pq__batch {
  pq_coord *c;
  int64_t now; /* wall clock for everything this transaction writes */
  char (*published)[PQ_UUID_LEN + 1]; /* jobs that changed: published after commit */
  size_t n_published, cap_published;
  pq_op **handed; /* waiting leases served in this transaction */
  size_t n_handed, cap_handed;
  char **offline; /* workers found offline by the reaper: leave the live set after commit */
  size_t n_offline;
  char **ready_models; /* models that got ready work (for leases picked by the store) */
  size_t n_ready_models;
  bool all_ready;       /* without an index, after a reaper pass: any model may have work due */
  pq__relay_install_t *installs; /* jobs the relay learns after commit */
  size_t n_installs, cap_installs;
  struct pq__ended { char *model; int64_t tokens; } *ended; /* jobs that ended: the chart counts them after commit */
  size_t n_ended, cap_ended;
  bool deliveries_queued; /* the sender is woken after commit */
  int turns; /* leases charged to owners' turns in the store (ops_jobs.c), ordering them within the transaction */
  /* those charges, written just before the commit in (model, owner) order: coordinators that lock
   * the same users' rows in one order cannot deadlock */
  struct pq__charge { char *model; char owner[PQ_UUID_LEN + 1]; int64_t tick; int weight; } *charges;
  size_t n_charges, cap_charges;
};
typedef struct pq__batch pq__batch;

#define PQ__STAT_ADD(c, field, n) __atomic_fetch_add(&(c)->stats.field, (n), __ATOMIC_RELAXED)

static inline bool pq__fatal(pq_err e) {
  return e == PQ_ERR_STORE_FAILED || e == PQ_ERR_NO_MEMORY || e == PQ_ERR_INTERNAL;
}

/* Runs op inside the batch's transaction (dispatches to its family). */
pq_err pq__op_run(pq__batch *b, pq_op *op);

/* ops_jobs.c */
/* The turns charged to owners in this transaction, written to the store (before its commit). */
pq_err pq__turns_flush(pq__batch *b);
pq_err pq__run_submit(pq__batch *b, pq_op *op);
pq_err pq__run_lease(pq__batch *b, pq_op *op);
pq_err pq__run_complete(pq__batch *b, pq_op *op);
pq_err pq__run_fail(pq__batch *b, pq_op *op);
pq_err pq__run_cancel(pq__batch *b, pq_op *op);
pq_err pq__run_append(pq__batch *b, pq_op *op);
pq_err pq__run_release(pq__batch *b, pq_op *op);
/* Writes job (already changed in memory) if the row is still in from (and
 * holds token): the one place a job changes state. The state machine is
 * asked first; a job that reached a terminal state has its kind's
 * on_terminal run here. */
pq_err pq__transition(pq__batch *b, pq_job *job, pq_job_state from, const char *token);
/* Inserts a new job (built by the caller) as queued and makes it leasable,
 * unless the coordinator runs its kind itself. */
pq_err pq__enqueue(pq__batch *b, pq_job *job);
/* A leased job ends without a result: retried later, dead, failed or (when
 * a client asked) cancelled. */
pq_err pq__settle_failure(pq__batch *b, pq_job *job, const char *token, const char *code, const char *message,
                          bool retryable);
/* The models a lease op asks for (given, or the worker's). */
const char *const *pq__lease_models(const pq_op *op, size_t *n);
/* Requeues a job (already changed in memory) in the index and readies its model. */
pq_err pq__requeued(pq__batch *b, const pq_job *job);
/* A queued job of model became ready now (submitted, or retried at once). */
int pq__note_ready(pq__batch *b, const char *model);
/* Job id changed in this transaction: subscribers are woken after commit
 * (and the relay stops answering for it now). */
pq_err pq__publish(pq__batch *b, const char *job_id);

/* ops_workers.c */
pq_err pq__run_register(pq__batch *b, pq_op *op);
pq_err pq__run_heartbeat(pq__batch *b, pq_op *op);

/* ops_identity.c */
pq_err pq__run_user_add(pq__batch *b, pq_op *op);
pq_err pq__run_user_set_disabled(pq__batch *b, pq_op *op);
pq_err pq__run_key_add(pq__batch *b, pq_op *op);
pq_err pq__run_key_revoke(pq__batch *b, pq_op *op);
pq_err pq__run_keys_sync(pq__batch *b, pq_op *op);
pq_err pq__run_challenge_add(pq__batch *b, pq_op *op);
pq_err pq__run_challenge_take(pq__batch *b, pq_op *op);

/* ops_files.c */
pq_err pq__run_file_put(pq__batch *b, pq_op *op);
pq_err pq__run_file_delete(pq__batch *b, pq_op *op);
pq_err pq__run_job_delete(pq__batch *b, pq_op *op);

/* ops_ledger.c */
pq_err pq__run_price_set(pq__batch *b, pq_op *op);
pq_err pq__run_credit_grant(pq__batch *b, pq_op *op);
pq_err pq__run_budget_set(pq__batch *b, pq_op *op);
pq_err pq__run_payment(pq__batch *b, pq_op *op);
pq_err pq__run_btc_create(pq__batch *b, pq_op *op);
pq_err pq__run_btc_observe(pq__batch *b, pq_op *op);
/* A new job of a priced model holds its worst case on its owner's account
 * (sets job->held_micros and, when empty, its id); PQ_ERR_INSUFFICIENT_CREDITS
 * with op->out.money filled when the available credit cannot cover it. */
pq_err pq__ledger_hold(pq__batch *b, pq_op *op, pq_job *job);
/* A job is about to be written in a terminal state: its cost to its owner
 * (job->cost_micros) and the operator's (*operator_cost). */
pq_err pq__ledger_price_end(pq__batch *b, pq_job *job, int64_t *operator_cost);
/* ... and once it is written: the hold posted or voided, the operator's cost recorded. */
pq_err pq__ledger_settle(pq__batch *b, const pq_job *job, int64_t operator_cost);

/* reaper.c: lapsed leases, ended ttls and silent workers, in b's transaction */
pq_err pq__reap(pq__batch *b, int *settled);

/* routing.c */
/* Adds a queued job to the index, in its lane class (its model, or its model and requirements). */
int pq__sched_push_job(pq_coord *c, const pq_job *job, int64_t not_before, int64_t now);
/* A lease's models with the aliases they serve, and the index lanes its worker may take from
 * (op->route_*), made again when classes were added since. */
pq_err pq__lease_route(pq_coord *c, pq_op *op);
/* A new requirement class may join the index: PQ_ERR_QUEUE_QUOTA_EXCEEDED when as many as the
 * index holds have jobs queued (classes without any are reclaimed first). */
pq_err pq__route_class_check(pq_coord *c, const char *requirements);
/* A queued job left the queue (leased, cancelled, expired): its class may be reclaimed once no
 * queued job has it (a stale index entry it leaves behind does not count). */
void pq__route_left(pq_coord *c, const pq_job *job);
/* The index was emptied (to be rebuilt): no class has jobs in it. */
void pq__route_cleared(pq_coord *c);
/* The operator's alias named model (--model-alias), or NULL. */
const struct pq_model_alias *pq__alias_of(const pq_coord *c, const char *model);
/* The model a retryable failure of model moves its job to, or NULL. */
const char *pq__fallback_of(const pq_coord *c, const char *model);
void pq__route_free(pq_coord *c);
void pq__lease_route_release(pq_op *op);

/* ops_webhooks.c */
pq_err pq__run_webhook_add(pq__batch *b, pq_op *op);
pq_err pq__run_webhook_delete(pq__batch *b, pq_op *op);
pq_err pq__run_webhook_secret(pq__batch *b, pq_op *op);
pq_err pq__run_delivery_claim(pq__batch *b, pq_op *op);
pq_err pq__run_delivery_result(pq__batch *b, pq_op *op);
pq_err pq__run_delivery_redeliver(pq__batch *b, pq_op *op);
/* A job reached a terminal state: deliveries for its webhook URL and its owner's subscriptions. */
pq_err pq__webhooks_job_ended(pq__batch *b, const pq_job *job);
pq_err pq__webhooks_load(pq_coord *c);
void pq__webhooks_wake(pq_coord *c);

/* live.c (the live set changes only after a commit, on the writer thread) */
pq_err pq__live_load(pq_coord *c);
/* The live set read again from the store (polling: nobody notifies us), on
 * the writer's connection; reload adds the store's online workers through
 * the read pool (any thread: after a lost or new listening connection, when
 * notifications may have been missed). */
void pq__live_refresh(pq_coord *c);
void pq__live_reload(pq_coord *c);
void pq__live_add(pq_coord *c, const pq_worker *w);
void pq__live_remove(pq_coord *c, const char *worker_id);
bool pq__live_has(pq_coord *c, const char *worker_id);
/* Copies the worker's capabilities text (NULL when not live: offers nothing). */
char *pq__live_caps_of(pq_coord *c, const char *worker_id);
/* Copies what the worker offers into *out (nothing when not live; pq_capset_free). */
void pq__live_offer_of(pq_coord *c, const char *worker_id, pq_capset *out);
/* Copies the worker's models into *models (caller frees each and the array). */
pq_err pq__live_models_of(pq_coord *c, const char *worker_id, char ***models, size_t *n);
void pq__live_free(pq_coord *c);

#endif
