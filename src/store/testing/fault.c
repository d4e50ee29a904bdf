/* The fault-injecting store: see fault.h. Every op is forwarded through one
 * macro, so a new op in the contract needs one line here. */
#include "store/testing/fault.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

typedef struct {
  pq_store base; /* ops = &pq_store_fault_ops */
  pq_store *inner;
  int countdown_statement, countdown_commit; /* 0: disarmed; 1: the next one fails */
  bool repeat_statement, repeat_commit;
  pq_fault_kind kind;
  int injected;
  long statements;
  pthread_mutex_t mu; /* the door: holding and who waits at it */
  pthread_cond_t cv;
  bool holding;
  int hold_countdown; /* statements to let through before holding (pq_store_fault_hold_at) */
  int waiting;
} fault_store;

/* A connection of the wrapper: the store and the real connection. */
typedef struct {
  fault_store *s;
  pq_conn *inner;
} fault_conn;

#define FC(c) ((fault_conn *)(void *)(c))
#define INNER_OPS(c) (FC(c)->s->inner->ops)

static const char *kind_name(pq_fault_kind k) {
  switch (k) {
    case PQ_FAULT_IO_ERROR: return "I/O error";
    case PQ_FAULT_DISK_FULL: return "disk full";
    case PQ_FAULT_BUSY: return "database busy";
  }
  return "?";
}

static void door(fault_store *s) {
  pthread_mutex_lock(&s->mu);
  if (s->hold_countdown > 0 && --s->hold_countdown == 0) s->holding = true;
  if (s->holding) {
    s->waiting++;
    pthread_cond_broadcast(&s->cv);
    while (s->holding) pthread_cond_wait(&s->cv, &s->mu);
    s->waiting--;
  }
  pthread_mutex_unlock(&s->mu);
}

/* Counts one statement (or commit); true when this one must fail. */
static bool should_fail(fault_store *s, pq_fault_target t) {
  door(s);
  int *countdown = t == PQ_FAULT_COMMIT ? &s->countdown_commit : &s->countdown_statement;
  bool repeat = t == PQ_FAULT_COMMIT ? s->repeat_commit : s->repeat_statement;
  if (t == PQ_FAULT_STATEMENT) __atomic_fetch_add(&s->statements, 1, __ATOMIC_RELAXED);
  int left = __atomic_load_n(countdown, __ATOMIC_ACQUIRE);
  if (left <= 0) return false;
  if (left > 1) {
    __atomic_fetch_sub(countdown, 1, __ATOMIC_ACQ_REL);
    return false;
  }
  if (!repeat) __atomic_store_n(countdown, 0, __ATOMIC_RELEASE);
  __atomic_fetch_add(&s->injected, 1, __ATOMIC_RELAXED);
  pq_warn("fault store: injected %s into a %s", kind_name(s->kind), t == PQ_FAULT_COMMIT ? "commit" : "statement");
  return true;
}

#define FAULT(c)                                                                     \
  do {                                                                               \
    if (should_fail(FC(c)->s, PQ_FAULT_STATEMENT)) return PQ_ERR_STORE_FAILED;       \
  } while (0)

/* forwards op(c, args...) after counting it as a statement */
#define FORWARD(op, params, args)                              \
  static pq_err f_##op params {                                \
    FAULT(c);                                                  \
    return INNER_OPS(c)->op args;                              \
  }

FORWARD(job_insert, (pq_conn *c, pq_job *job), (FC(c)->inner, job))
FORWARD(job_get, (pq_conn *c, const char *id, int64_t number, pq_job **out), (FC(c)->inner, id, number, out))
FORWARD(job_get_by_idempotency_key, (pq_conn *c, const char *owner, const char *key, pq_job **out),
        (FC(c)->inner, owner, key, out))
FORWARD(job_peek, (pq_conn *c, const char *id, pq_job *out), (FC(c)->inner, id, out))
FORWARD(job_update, (pq_conn *c, const pq_job *job, pq_job_state s, const char *token),
        (FC(c)->inner, job, s, token))
FORWARD(job_list, (pq_conn *c, const pq_job_filter *f, pq_job ***out, size_t *n, int64_t *total),
        (FC(c)->inner, f, out, n, total))
FORWARD(job_scan_queued, (pq_conn *c, pq_job_scan_fn fn, void *ctx), (FC(c)->inner, fn, ctx))
FORWARD(job_scan_due, (pq_conn *c, int64_t now, size_t limit, pq_job_scan_fn fn, void *ctx),
        (FC(c)->inner, now, limit, fn, ctx))
FORWARD(job_pick,
        (pq_conn *c, const pq_pick *pick, size_t limit, int64_t *numbers, char (*owners)[PQ_UUID_LEN + 1], size_t *n),
        (FC(c)->inner, pick, limit, numbers, owners, n))
FORWARD(job_set_model, (pq_conn *c, int64_t number, const char *model), (FC(c)->inner, number, model))
FORWARD(turn_charge, (pq_conn *c, const char *model, const char *owner, int64_t tick, int weight),
        (FC(c)->inner, model, owner, tick, weight))
FORWARD(job_extend_leases, (pq_conn *c, const char *worker_id, int64_t now), (FC(c)->inner, worker_id, now))
FORWARD(job_cancel_requested, (pq_conn *c, const char *worker_id, char ***ids, size_t *n),
        (FC(c)->inner, worker_id, ids, n))
FORWARD(job_end_leases, (pq_conn *c, const char *worker_id, int64_t now), (FC(c)->inner, worker_id, now))
FORWARD(job_leased_by, (pq_conn *c, const char *worker_id, pq_job ***out, size_t *n), (FC(c)->inner, worker_id, out, n))
FORWARD(job_count, (pq_conn *c, int state, int64_t *count), (FC(c)->inner, state, count))
FORWARD(job_ahead, (pq_conn *c, const pq_job *job, bool same_owner, int64_t cap, int64_t *ahead),
        (FC(c)->inner, job, same_owner, cap, ahead))
FORWARD(event_append,
        (pq_conn *c, int64_t job_number, int attempt, const char *kind, const char *const *data, size_t n,
         int64_t first_seq, int64_t now, int64_t *seq),
        (FC(c)->inner, job_number, attempt, kind, data, n, first_seq, now, seq))
FORWARD(event_list,
        (pq_conn *c, int64_t job_number, int attempt, int64_t after, size_t limit, pq_job_event **out, size_t *n),
        (FC(c)->inner, job_number, attempt, after, limit, out, n))
FORWARD(worker_insert, (pq_conn *c, const pq_worker *w), (FC(c)->inner, w))
FORWARD(worker_get, (pq_conn *c, const char *id, pq_worker **out), (FC(c)->inner, id, out))
FORWARD(worker_touch, (pq_conn *c, const char *id, int64_t now), (FC(c)->inner, id, now))
FORWARD(worker_mark_offline, (pq_conn *c, int64_t before, void (*fn)(void *, const char *), void *ctx),
        (FC(c)->inner, before, fn, ctx))
FORWARD(worker_count_online, (pq_conn *c, int64_t *count), (FC(c)->inner, count))
FORWARD(worker_list_online, (pq_conn *c, pq_worker ***out, size_t *n), (FC(c)->inner, out, n))
FORWARD(job_totals, (pq_conn *c, const char *owner, int64_t *total, int64_t *completed, int64_t *tokens),
        (FC(c)->inner, owner, total, completed, tokens))
FORWARD(job_count_active, (pq_conn *c, void (*fn)(void *, const char *, pq_job_state, int64_t), void *ctx),
        (FC(c)->inner, fn, ctx))
FORWARD(job_count_queued_by_owner, (pq_conn *c, const char *owner, int64_t cap, int64_t *n),
        (FC(c)->inner, owner, cap, n))
FORWARD(job_delete, (pq_conn *c, int64_t number), (FC(c)->inner, number))
FORWARD(job_children, (pq_conn *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out, size_t *n),
        (FC(c)->inner, parent_id, after, limit, out, n))
FORWARD(file_insert, (pq_conn *c, const pq_file *f), (FC(c)->inner, f))
FORWARD(file_get, (pq_conn *c, const char *id, bool with_content, pq_file **out), (FC(c)->inner, id, with_content, out))
FORWARD(file_list, (pq_conn *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out, size_t *n),
        (FC(c)->inner, owner, purpose, limit, out, n))
FORWARD(file_delete, (pq_conn *c, const char *id), (FC(c)->inner, id))
FORWARD(worker_set_capabilities, (pq_conn *c, const char *id, const char *caps), (FC(c)->inner, id, caps))
FORWARD(webhook_insert, (pq_conn *c, const pq_webhook *w), (FC(c)->inner, w))
FORWARD(webhook_get, (pq_conn *c, const char *id, pq_webhook **out), (FC(c)->inner, id, out))
FORWARD(webhook_job_secret, (pq_conn *c, const char *owner, pq_webhook **out), (FC(c)->inner, owner, out))
FORWARD(webhook_list, (pq_conn *c, const char *owner, pq_webhook ***out, size_t *n), (FC(c)->inner, owner, out, n))
FORWARD(webhook_delete, (pq_conn *c, const char *id, int64_t now), (FC(c)->inner, id, now))
FORWARD(delivery_insert, (pq_conn *c, const pq_delivery *d), (FC(c)->inner, d))
FORWARD(delivery_get, (pq_conn *c, const char *id, pq_delivery **out), (FC(c)->inner, id, out))
FORWARD(delivery_due,
        (pq_conn *c, int64_t now, size_t limit, const char *skip_owners, const char *skip_urls, pq_delivery ***out,
         size_t *n),
        (FC(c)->inner, now, limit, skip_owners, skip_urls, out, n))
FORWARD(webhook_set_secret, (pq_conn *c, const char *id, const char *secret), (FC(c)->inner, id, secret))
FORWARD(delivery_sweep, (pq_conn *c, int64_t before), (FC(c)->inner, before))
FORWARD(delivery_next_at, (pq_conn *c, int64_t *at), (FC(c)->inner, at))
FORWARD(delivery_update, (pq_conn *c, const pq_delivery *d), (FC(c)->inner, d))
FORWARD(delivery_list,
        (pq_conn *c, const char *owner, const char *job_id, int state, int64_t limit, pq_delivery ***out, size_t *n),
        (FC(c)->inner, owner, job_id, state, limit, out, n))
FORWARD(user_insert, (pq_conn *c, const pq_user *u), (FC(c)->inner, u))
FORWARD(user_get, (pq_conn *c, const char *id, const char *name, pq_user **out), (FC(c)->inner, id, name, out))
FORWARD(user_list, (pq_conn *c, pq_user ***out, size_t *n), (FC(c)->inner, out, n))
FORWARD(user_set_disabled, (pq_conn *c, const char *name, bool disabled), (FC(c)->inner, name, disabled))
FORWARD(key_insert, (pq_conn *c, const pq_api_key *k), (FC(c)->inner, k))
FORWARD(key_get_by_hash, (pq_conn *c, const char *hash, pq_api_key **out), (FC(c)->inner, hash, out))
FORWARD(key_list, (pq_conn *c, const char *user_id, pq_api_key ***out, size_t *n), (FC(c)->inner, user_id, out, n))
FORWARD(key_rebind, (pq_conn *c, const char *hash, const char *user_id, const char *scope, const char *name),
        (FC(c)->inner, hash, user_id, scope, name))
FORWARD(challenge_insert, (pq_conn *c, const char *challenge, const char *wallet, int64_t expires_at),
        (FC(c)->inner, challenge, wallet, expires_at))
FORWARD(challenge_take, (pq_conn *c, const char *challenge, const char *wallet, int64_t now),
        (FC(c)->inner, challenge, wallet, now))
FORWARD(challenge_sweep, (pq_conn *c, int64_t now), (FC(c)->inner, now))
FORWARD(price_put, (pq_conn *c, const pq_price *p), (FC(c)->inner, p))
FORWARD(price_get, (pq_conn *c, const char *model, pq_price **out), (FC(c)->inner, model, out))
FORWARD(price_list, (pq_conn *c, pq_price ***out, size_t *n), (FC(c)->inner, out, n))
FORWARD(account_get, (pq_conn *c, const char *id, pq_account *out), (FC(c)->inner, id, out))
FORWARD(subject_lock, (pq_conn *c, const char *subject), (FC(c)->inner, subject))
FORWARD(transfer_insert, (pq_conn *c, const pq_transfer *t), (FC(c)->inner, t))
FORWARD(transfer_settle, (pq_conn *c, const char *id, pq_transfer_state to, int64_t posted, int64_t now),
        (FC(c)->inner, id, to, posted, now))
FORWARD(transfer_get, (pq_conn *c, const char *id, pq_transfer **out), (FC(c)->inner, id, out))
FORWARD(transfer_list,
        (pq_conn *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out, size_t *n,
         int64_t *total),
        (FC(c)->inner, account, limit, offset, out, n, total))
FORWARD(ledger_totals, (pq_conn *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum),
        (FC(c)->inner, balance_sum, held_sum, pending_sum))
FORWARD(budget_put, (pq_conn *c, const pq_budget *b), (FC(c)->inner, b))
FORWARD(budget_list, (pq_conn *c, const char *subject, pq_budget ***out, size_t *n), (FC(c)->inner, subject, out, n))
FORWARD(spend, (pq_conn *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending),
        (FC(c)->inner, subject, since, posted, pending))
FORWARD(payment_event_record, (pq_conn *c, const char *id, const char *type, int64_t now), (FC(c)->inner, id, type, now))
FORWARD(subscription_apply, (pq_conn *c, const pq_subscription *sub), (FC(c)->inner, sub))
FORWARD(subscription_get, (pq_conn *c, const char *id, pq_subscription **out), (FC(c)->inner, id, out))
FORWARD(subscription_count_active, (pq_conn *c, int64_t *n), (FC(c)->inner, n))
FORWARD(btc_payment_insert, (pq_conn *c, const pq_btc_payment *p), (FC(c)->inner, p))
FORWARD(btc_payment_get, (pq_conn *c, const char *id, pq_btc_payment **out), (FC(c)->inner, id, out))
FORWARD(btc_payment_by_amount,
        (pq_conn *c, int64_t amount_sats, int64_t now, bool include_expired, pq_btc_payment **out),
        (FC(c)->inner, amount_sats, now, include_expired, out))
FORWARD(btc_payment_update, (pq_conn *c, const pq_btc_payment *p, const char *expect_status),
        (FC(c)->inner, p, expect_status))
FORWARD(btc_pending_count, (pq_conn *c, const char *user_id, int64_t now, int64_t cap, int64_t *n),
        (FC(c)->inner, user_id, now, cap, n))
FORWARD(btc_output_record,
        (pq_conn *c, const char *txid, int64_t vout, int64_t amount_sats, const char *payment_id, const char *outcome,
         int64_t now),
        (FC(c)->inner, txid, vout, amount_sats, payment_id, outcome, now))
FORWARD(ledger_sums,
        (pq_conn *c, int64_t from, int64_t to, void (*fn)(void *ctx, const char *kind, int64_t amount), void *ctx),
        (FC(c)->inner, from, to, fn, ctx))
FORWARD(job_report,
        (pq_conn *c, int64_t from, int64_t to, pq_report_by by, void (*fn)(void *ctx, const pq_report_row *row),
         void *ctx),
        (FC(c)->inner, from, to, by, fn, ctx))
FORWARD(key_revoke, (pq_conn *c, const char *id_or_prefix, const char *user_id, int64_t now),
        (FC(c)->inner, id_or_prefix, user_id, now))
FORWARD(begin, (pq_conn *c, bool durable), (FC(c)->inner, durable))

static bool f_lead(pq_conn *c) { return !INNER_OPS(c)->lead || INNER_OPS(c)->lead(FC(c)->inner); }

static pq_err f_commit(pq_conn *c) {
  if (should_fail(FC(c)->s, PQ_FAULT_COMMIT)) {
    INNER_OPS(c)->rollback(FC(c)->inner); /* the write never reached the disk */
    return PQ_ERR_STORE_FAILED;
  }
  return INNER_OPS(c)->commit(FC(c)->inner);
}

static void f_rollback(pq_conn *c) { INNER_OPS(c)->rollback(FC(c)->inner); }

static pq_conn *f_acquire(pq_store *base, pq_conn_kind kind) {
  fault_store *s = (fault_store *)base;
  fault_conn *fc = calloc(1, sizeof *fc);
  if (!fc) return NULL;
  fc->s = s;
  if (!(fc->inner = s->inner->ops->acquire(s->inner, kind))) {
    free(fc);
    return NULL;
  }
  return (pq_conn *)(void *)fc;
}

static void f_release(pq_store *base, pq_conn *c) {
  fault_store *s = (fault_store *)base;
  if (!c) return;
  s->inner->ops->release(s->inner, FC(c)->inner);
  free(c);
}

static pq_err f_migrate(pq_store *base, int *applied) {
  fault_store *s = (fault_store *)base;
  return s->inner->ops->migrate(s->inner, applied);
}

static int f_schema_version(pq_store *base) {
  fault_store *s = (fault_store *)base;
  return s->inner->ops->schema_version(s->inner);
}

static void f_close(pq_store *base) {
  fault_store *s = (fault_store *)base;
  if (!s) return;
  pq_store_close(s->inner);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static pq_err f_open(const pq_store_config *cfg, pq_store **out) {
  (void)cfg;
  (void)out;
  return PQ_ERR_INVALID_REQUEST; /* only through pq_store_fault_open: it needs the inner URL */
}

pq_err pq_store_fault_open(const char *inner_url, const pq_store_config *cfg, pq_store **out, char *why,
                           size_t why_size) {
  fault_store *s = calloc(1, sizeof *s);
  if (!s) return PQ_ERR_NO_MEMORY;
  pq_err result = pq_store_open(inner_url, cfg, &s->inner, why, why_size);
  if (result != PQ_OK) {
    free(s);
    return result;
  }
  s->base.ops = &pq_store_fault_ops;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  *out = &s->base;
  return PQ_OK;
}

void pq_store_fault_arm(pq_store *base, pq_fault_target target, int nth, pq_fault_kind kind, bool repeat) {
  fault_store *s = (fault_store *)base;
  s->kind = kind;
  if (target == PQ_FAULT_COMMIT) {
    s->repeat_commit = repeat;
    __atomic_store_n(&s->countdown_commit, nth, __ATOMIC_RELEASE);
  } else {
    s->repeat_statement = repeat;
    __atomic_store_n(&s->countdown_statement, nth, __ATOMIC_RELEASE);
  }
}

void pq_store_fault_disarm(pq_store *base) {
  fault_store *s = (fault_store *)base;
  __atomic_store_n(&s->countdown_statement, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&s->countdown_commit, 0, __ATOMIC_RELEASE);
}

void pq_store_fault_hold(pq_store *base) {
  fault_store *s = (fault_store *)base;
  pthread_mutex_lock(&s->mu);
  s->holding = true;
  pthread_mutex_unlock(&s->mu);
}

void pq_store_fault_hold_at(pq_store *base, int nth) {
  fault_store *s = (fault_store *)base;
  pthread_mutex_lock(&s->mu);
  s->hold_countdown = nth;
  pthread_mutex_unlock(&s->mu);
}

void pq_store_fault_wait_held(pq_store *base) {
  fault_store *s = (fault_store *)base;
  pthread_mutex_lock(&s->mu);
  while (s->waiting == 0) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

void pq_store_fault_release(pq_store *base) {
  fault_store *s = (fault_store *)base;
  pthread_mutex_lock(&s->mu);
  s->holding = false;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

pq_store *pq_store_fault_inner(pq_store *base) { return ((fault_store *)base)->inner; }

int pq_store_fault_injected(pq_store *base) {
  return __atomic_load_n(&((fault_store *)base)->injected, __ATOMIC_RELAXED);
}

long pq_store_fault_statements(pq_store *base) {
  return __atomic_load_n(&((fault_store *)base)->statements, __ATOMIC_RELAXED);
}

static pq_err f_notify(pq_store *base, const char *payload) {
  fault_store *s = (fault_store *)base;
  return s->inner->ops->notify ? s->inner->ops->notify(s->inner, payload) : PQ_OK;
}

static pq_err f_listen(pq_store *base, void (*fn)(void *ctx, const char *payload), void *ctx) {
  fault_store *s = (fault_store *)base;
  return s->inner->ops->listen ? s->inner->ops->listen(s->inner, fn, ctx) : PQ_OK;
}

#define OP(name) .name = f_##name
const pq_store_ops pq_store_fault_ops = {
    .name = "fault",
    .single_coordinator = true, /* not asked: pq_store_single_coordinator asks the wrapped store */
    .open = f_open,
    .close = f_close,
    .migrate = f_migrate,
    .schema_version = f_schema_version,
    .acquire = f_acquire,
    .release = f_release,
    OP(begin), OP(commit), OP(rollback), OP(notify), OP(listen), OP(lead),
    OP(job_insert), OP(job_get), OP(job_get_by_idempotency_key), OP(job_peek), OP(job_update), OP(job_list),
    OP(job_scan_queued), OP(job_scan_due), OP(job_pick), OP(turn_charge), OP(job_set_model), OP(job_extend_leases), OP(job_cancel_requested),
    OP(job_end_leases), OP(job_leased_by), OP(job_count), OP(job_ahead), OP(event_append), OP(event_list), OP(worker_insert),
    OP(worker_get), OP(worker_touch), OP(worker_mark_offline), OP(worker_count_online), OP(worker_list_online),
    OP(job_totals), OP(job_count_active), OP(job_count_queued_by_owner), OP(user_insert), OP(user_get),
    OP(user_list), OP(user_set_disabled), OP(key_insert), OP(key_get_by_hash), OP(key_list), OP(key_rebind), OP(key_revoke),
    OP(challenge_insert), OP(challenge_take), OP(challenge_sweep),
    OP(price_put), OP(price_get), OP(price_list), OP(account_get), OP(subject_lock), OP(transfer_insert), OP(transfer_settle),
    OP(transfer_get), OP(transfer_list), OP(ledger_totals), OP(ledger_sums), OP(job_report),
    OP(budget_put), OP(budget_list), OP(spend),
    OP(payment_event_record), OP(subscription_apply), OP(subscription_get), OP(subscription_count_active),
    OP(btc_payment_insert), OP(btc_payment_get), OP(btc_payment_by_amount), OP(btc_payment_update),
    OP(btc_output_record), OP(btc_pending_count), OP(job_delete), OP(job_children), OP(file_insert), OP(file_get), OP(file_list),
    OP(file_delete), OP(worker_set_capabilities), OP(webhook_insert), OP(webhook_get), OP(webhook_job_secret),
    OP(webhook_list), OP(webhook_delete), OP(delivery_insert), OP(delivery_get), OP(delivery_due), OP(delivery_next_at),
    OP(delivery_update), OP(delivery_list), OP(delivery_sweep), OP(webhook_set_secret),
};
#undef OP
