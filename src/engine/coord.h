/* The coordinator engine: every change to the store goes through here.
 *
 * One writer thread owns the store's write connection and the scheduler
 * index. Callers hand it typed operations (pq_op), one family per area:
 * jobs (engine/ops_jobs.c), workers (ops_workers.c), identity
 * (ops_identity.c) and upkeep (reaper.c). There is no way to run arbitrary
 * code in its transaction. It runs whatever has queued up in one
 * transaction (group commit: one fsync for the whole batch), then publishes
 * to the waiter hub and calls each operation's done callback. A batch that
 * fails is rolled back whole: every operation in it answers
 * PQ_ERR_STORE_FAILED and nothing of it is half-committed.
 *
 * A lease that finds no job and may wait is parked in the hub; when a job for
 * one of its models becomes ready, the writer hands it over inside the same
 * transaction as the submit, so an idle worker gets a new job after a
 * single commit.
 *
 * Reads (pq_coord_get_job, pq_coord_list_jobs) use the store's read pool and
 * never wait for the writer. */
#ifndef PQ_ENGINE_COORD_H
#define PQ_ENGINE_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/error.h"
#include "engine/hub.h"
#include "model/job.h"
#include "model/webhook.h"
#include "store/store.h"

typedef struct pq_coord pq_coord;

typedef struct pq_coord_config {
  const char *store_url;        /* which store (store/registry.c), e.g. sqlite:///var/lib/promptq.db */
  pq_store_config store;        /* its settings (the URL gives the location) */
  const pq_clock *clock;        /* time for leases, retries, ttls, the reaper and the hub; NULL: the system's */
  bool pick_from_store;         /* select leases with the store's job_pick even when the store has one
                                 * coordinator (the shared-store path; tests); otherwise a memory index */
  bool admin_only;              /* the command line's writes: no reaper, no index, no gauges */
  bool poll_only;               /* a shared store without notifications (PgBouncer in transaction mode):
                                 * other coordinators' work is looked for on every reaper beat */
  int64_t lease_timeout_ms;     /* default for jobs that do not set their own */
  int max_attempts;             /* default for jobs that do not set their own */
  int64_t worker_timeout_ms;    /* no heartbeat for this long: offline, leases lapse */
  int64_t retry_backoff_ms;     /* first retry delay; doubles per attempt */
  int64_t retry_backoff_max_ms;
  int64_t reap_interval_ms;     /* how often leases, ttls and workers are checked */
  int batch_max;                /* operations per transaction at most */
  int64_t max_queued_per_owner; /* a user's queued jobs at most; 0 = no limit */
  int64_t max_running_per_owner; /* a user's leased jobs at most (others' jobs go first meanwhile); 0 = no limit */
  int64_t max_queued_per_owner_model;  /* the same, per model (kept by the single-coordinator index) */
  int64_t max_running_per_owner_model;
  const struct pq_fair_weight { const char *user; int weight; } *fair_weights; /* users (by name) whose turns
                                 * are weight leases long (engine/sched.h; 1 to 1000, default 1); borrowed */
  size_t n_fair_weights;
  int urgent_priority;          /* jobs of at least this priority (1..1000) go before every turn; 0 = none */
  int64_t hold_max_tokens;      /* a priced job without max_tokens holds this many output tokens */
  int worker_share_percent;     /* of each completed job's cost, paid from revenue to its worker's owner */
  int batch_discount_percent;   /* off the price of each step of a batch */
  const struct pq_receipt_key *receipt_key; /* signs receipts; borrowed, may be NULL */
  /* routing (engine/routing.c): a public model name served by workers of any of its targets,
   * and the model a job moves to when its model fails it with a retryable error; borrowed */
  const struct pq_model_alias { const char *name; const char *const *targets; size_t n_targets; } *aliases;
  size_t n_aliases;
  const struct pq_model_fallback { const char *model, *fallback; } *fallbacks;
  size_t n_fallbacks;
  /* completion webhooks (engine/ops_webhooks.c): the first retry's delay (4 times longer each
   * time, at most 6 hours) and for how long after the event a delivery is retried at all */
  int64_t webhook_retry_base_ms; /* 0: 5 s */
  int64_t webhook_retry_for_ms;  /* 0: a day */
  int64_t webhook_log_for_ms;    /* deliveries that ended are kept this long in the log (0: 30 days) */
} pq_coord_config;

typedef enum {
  /* jobs (engine/ops_jobs.c) */
  PQ_OP_SUBMIT,
  PQ_OP_LEASE,
  PQ_OP_COMPLETE,
  PQ_OP_FAIL,
  PQ_OP_CANCEL,
  PQ_OP_APPEND, /* a worker streams output: entries for the job's event log */
  PQ_OP_RELEASE, /* a lease that never reached its worker goes back, attempt refunded */
  /* workers (engine/ops_workers.c) */
  PQ_OP_REGISTER,
  PQ_OP_HEARTBEAT,
  /* identity (engine/ops_identity.c) */
  PQ_OP_USER_ADD,
  PQ_OP_USER_SET_DISABLED,
  PQ_OP_KEY_ADD,
  PQ_OP_KEY_REVOKE,
  PQ_OP_KEYS_SYNC,   /* a deployment's static keys: one user each, the unlisted ones revoked */
  PQ_OP_CHALLENGE_ADD,  /* a wallet login challenge (one use, until expires_at) */
  PQ_OP_CHALLENGE_TAKE, /* spends it: PQ_ERR_NOT_FOUND when it is not live or not that wallet's */
  /* upkeep (engine/reaper.c): lapsed leases, ended ttls, silent workers, due retries, now */
  PQ_OP_REAP,
  /* money (engine/ops_ledger.c); holds and charges happen inside the jobs family's operations */
  PQ_OP_PRICE_SET,
  PQ_OP_CREDIT_GRANT, /* credit from the clearing account to a user, once per id */
  PQ_OP_BUDGET_SET,   /* a spending limit per day or month (limit 0 removes it) */
  PQ_OP_PAYMENT,      /* a payment provider's event, applied once: credit, a subscription's state */
  PQ_OP_BTC_CREATE,   /* a Bitcoin payment request whose amount no other pending one asks for */
  PQ_OP_BTC_OBSERVE,  /* an output seen paying the address: matched by amount, credited once when confirmed */
  /* files and removals (engine/ops_files.c) */
  PQ_OP_FILE_PUT,     /* a file (created_at is the operation's time); PQ_ERR_ALREADY_EXISTS for its id */
  PQ_OP_FILE_DELETE,
  PQ_OP_JOB_DELETE,   /* an ended job and its event log; PQ_ERR_INVALID_STATE while it runs */
  /* completion webhooks (engine/ops_webhooks.c) */
  PQ_OP_WEBHOOK_ADD,      /* a subscription (id, secret and time filled in) */
  PQ_OP_WEBHOOK_DELETE,   /* PQ_ERR_NOT_FOUND when absent or (owner given) not the owner's */
  PQ_OP_WEBHOOK_SECRET,   /* the owner's secret for URLs its jobs name: made on first use (rotate: anew) */
  PQ_OP_DELIVERY_CLAIM,   /* due deliveries for the sender, each held for hold_ms and counted as an attempt */
  PQ_OP_DELIVERY_RESULT,  /* how an attempt went: delivered, retried later, or given up */
  PQ_OP_DELIVERY_REDELIVER, /* a delivery goes out again now (same webhook-id) */
} pq_op_kind;

typedef struct pq_op pq_op;
typedef void (*pq_op_done_fn)(pq_op *op);

/* An operation. The caller owns the memory and keeps it, and every input it
 * points to, alive until done is called (exactly once, on the writer thread
 * or, when the coordinator is stopping, on the caller's). Outputs belong to
 * the op: release them with pq_op_release(). */
struct pq_op {
  pq_op_kind kind;
  union {
    /* job: the caller builds it (id, model, input, priority, ...); the op
     * takes ownership and hands it back in out.job (or frees it on replay). */
    /* steps: jobs queued as its steps (parent_id and owner set here) in the same
     * transaction, before its kind's on_submit; the op takes them too. */
    struct {
      pq_job *job;
      const char *key_id; /* the API key submitting it (per-key budgets); may be NULL */
      pq_job **steps;
      size_t n_steps;
    } submit;
    struct {
      const char *worker_id;
      const char *const *models; /* n == 0: the models the worker registered */
      size_t n_models;
      int max_jobs;
      int64_t deadline_ms;       /* pq_mono_ms(); 0 = do not wait */
    } lease;
    struct {
      const char *job_id, *token;
      const char *output;        /* JSON value text */
      int64_t prompt_tokens, completion_tokens;
      const char *worker_signature; /* base64, over pq_receipt_worker_message(); may be NULL */
    } complete;
    struct {
      const char *job_id, *token, *code, *message;
      bool retryable;
    } fail;
    struct { const char *job_id; } cancel;
    /* claims: held lists every job the worker holds; its leases not in it,
     * older than one heartbeat interval, are given back (LEASE_ABANDONED) */
    struct {
      const char *worker_id;
      bool claims;
      const char *const *held;
      size_t n_held;
      const char *capabilities; /* what the worker offers now (JSON object text, checked); NULL: unchanged */
    } heartbeat;
    struct { const char *job_id, *token; } release;
    struct { pq_worker *worker; } reg; /* borrowed; id and times are filled in */
    struct {
      const char *job_id, *token;
      const char *const *data; /* JSON texts, one event each */
      size_t n;
    } append;
    /* user: borrowed; id and created_at are filled in when empty. if_absent:
     * a user of that name already there is no error (out.user is it). */
    struct { pq_user *user; bool if_absent; } user_add;
    struct { const char *name; bool disabled; } user_set_disabled;
    /* key: borrowed; id and created_at filled in when empty. if_absent: a key
     * with the same hash already there is no error. */
    struct { pq_api_key *key; bool if_absent; } key_add;
    /* by id or prefix; user_id (when not NULL) must own it */
    struct { const char *id_or_prefix, *user_id; } key_revoke;
    /* keys: hex SHA-256 hashes, prefixes: what each key's listing shows; each
     * key becomes its own non-admin user "<name>:<hash's first 12>" with scope
     * (a key already stored is moved there and made active); keys named name
     * and not listed are revoked. One transaction. */
    struct {
      const char *name, *scope;
      const char *const *hashes, *const *prefixes;
      size_t n;
    } keys_sync;
    struct { const char *challenge, *wallet; int64_t expires_at; } challenge;
    struct { const pq_price *price; } price_set; /* borrowed; updated_at is the operation's time */
    /* id: idempotent (a second grant with it changes nothing and answers PQ_ERR_ALREADY_EXISTS) */
    struct { const char *user_id, *id, *kind; int64_t amount; } credit_grant;
    struct { const pq_budget *budget; } budget_set; /* borrowed; updated_at is the operation's time */
    /* event_id: the provider's, prefixed ("stripe:evt_..."): applied at most once (a repeat
     * is out.replayed). user_id NULL: the subscription's recorded user. credit (micros) goes
     * from clearing to the user as `kind`. PQ_ERR_NOT_FOUND, with nothing written, when the
     * credit's user is not known (yet: a later delivery may know it). */
    struct {
      const char *event_id, *type, *user_id, *kind;
      const char *credit_id; /* what was paid ("stripe:cs_..."): credited once; NULL: the event id */
      int64_t credit;
      const pq_subscription *subscription; /* its new state, or NULL */
    } payment;
    /* amount: base_sats, raised by up to max_offset satoshis until no pending request asks for it;
     * a user with max_pending live requests already gets PQ_ERR_QUEUE_QUOTA_EXCEEDED */
    struct {
      const char *user_id, *address;
      int64_t base_sats, credit_micros, ttl_ms, max_offset, max_pending;
    } btc_create;
    /* last_look: when the watcher last read the address without seeing it (wall ms; 0:
     * now): a payment first seen now may have been made any time after that */
    struct {
      const char *txid;
      int64_t vout, amount_sats, confirmations, min_confirmations, last_look;
    } btc_observe;
    struct { pq_file *file; } file_put; /* borrowed */
    struct { const char *id; } file_delete;
    struct { const char *job_id; } job_delete;
    struct { pq_webhook *webhook; } webhook_add; /* borrowed */
    struct { const char *id, *owner; } webhook_delete; /* owner NULL: anyone's (an admin) */
    /* id NULL: the owner's job secret; rotate: a new secret from now on (pending deliveries are signed with it) */
    struct { const char *owner, *id; bool rotate; } webhook_secret;
    /* per_owner, per_host: in flight at most for one owner, and to one receiving host (0: no
     * cap), counting the deliveries the sender holds now (busy_owners[i], busy_urls[i]), so a
     * slow receiver holds up only its own deliveries and one tenant cannot take every slot */
    struct {
      size_t limit;
      int64_t hold_ms;
      int per_owner, per_host;
      const char *const *busy_owners, *const *busy_urls;
      size_t n_busy;
    } delivery_claim;
    /* status: the receiver's HTTP status (0: none); error: why it failed (NULL when delivered);
     * retryable: a timeout, a refused connection, a 5xx, 408 or 429 */
    struct { const char *id, *error; int status; bool retryable; } delivery_result;
    struct { const char *id, *owner; } delivery_redeliver; /* owner NULL: anyone's */
  } in;
  struct {
    pq_err result;
    pq_job *job;        /* submit, complete, fail, cancel: the job afterwards */
    bool replayed;      /* submit: an Idempotency-Key repeat, nothing new */
    pq_job **jobs;      /* lease */
    size_t n_jobs;
    char **cancel_ids;  /* heartbeat: leased jobs a client asked to cancel */
    size_t n_cancel;
    int64_t last_seq;   /* append: the seq of the last entry written */
    bool cancel_requested; /* append: a client asked to cancel this job */
    pq_user *user;      /* user_add: the user as stored */
    int reaped;         /* reap: jobs and workers it settled */
    int abandoned;      /* heartbeat: leases given back because the worker no longer claims them */
    int revoked;        /* keys_sync: keys no longer listed */
    pq_webhook *webhook; /* webhook_secret: the owner's secret row */
    pq_delivery **deliveries; /* delivery_claim (with secrets); delivery_redeliver, delivery_result: the one */
    size_t n_deliveries;
    pq_btc_payment *btc; /* btc_create: the request; btc_observe: the one it paid (or NULL) */
    const char *btc_outcome; /* btc_observe: "credited", "seen" (too few confirmations), "late", "unmatched",
                              * or "known" (recorded before) */
    /* submit refused for money: what the job would hold and what was there
     * (for a budget: what is left of it, and which budget) */
    struct {
      int64_t needed, available, limit;
      char subject[64], period[8];
    } money;
  } out;
  pq_op_done_fn done;
  void *ud;             /* the caller's */
  /* private to the coordinator */
  pq_coord *coord;
  pq_waiter waiter;
  bool last_try;
  bool want_wait;
  char **worker_models; /* lease: the registered models, when none were given */
  size_t n_worker_models;
  char **route_models;  /* lease: its models and the aliases they serve (routing.c) */
  size_t n_route_models;
  char **route_keys;    /* lease: the index's lanes it may take from: models and requirement classes it meets */
  size_t n_route_keys;
  char *route_offer;    /* lease: what its worker offers (capabilities text), for the store's pick */
  uint64_t route_gen;   /* lease: the classes' generation route_keys were made in */
  bool touched_worker;  /* lease, heartbeat: the worker's liveness changed in the store */
  pq_op *next;
};

typedef struct pq_coord_stats {
  uint64_t submitted, completed, failed, dead, cancelled, expired, lease_expiries;
  uint64_t batches, batched_ops, handoffs;
} pq_coord_stats;

/* Opens the store, applies migrations, rebuilds the index, starts the
 * writer. Free with pq_coord_close(). */
pq_err pq_coord_open(const pq_coord_config *cfg, pq_coord **out);
/* Wakes every waiter, drains queued operations, stops the writer, closes. */
void pq_coord_close(pq_coord *c);
/* First half of close: wake waiters (they answer at once) and refuse new
 * operations once the queue is drained. Safe to call twice. */
void pq_coord_shutdown(pq_coord *c);

/* Queues op; done(op) is called when it has committed or failed. */
void pq_coord_submit(pq_coord *c, pq_op *op);
/* Queues op and blocks until it is done; returns op->out.result. */
pq_err pq_coord_call(pq_coord *c, pq_op *op);
/* Frees the op's outputs (and a submit's job it still owns) and clears them;
 * out.result is kept. */
void pq_op_release(pq_op *op);

/* Runs one operation of the caller's on the writer and waits: the typed way
 * for the command line and tests to write (also while a server runs on the
 * same store: the store serialises the two writers). */

/* Reads: *out is the caller's (pq_job_free / pq_job_free_array). */
pq_err pq_coord_get_job(pq_coord *c, const char *id, int64_t number, pq_job **out);
/* How many queued jobs run before this one (at most cap). */
pq_err pq_coord_jobs_ahead(pq_coord *c, const pq_job *job, int64_t cap, int64_t *ahead);
/* The job's number, state, attempts and leased_at only (see job_peek). */
pq_err pq_coord_peek_job(pq_coord *c, const char *id, pq_job *out);
pq_err pq_coord_list_jobs(pq_coord *c, const pq_job_filter *f, pq_job ***out, size_t *n,
                          int64_t *total);
pq_err pq_coord_get_worker(pq_coord *c, const char *id, pq_worker **out);
pq_err pq_coord_online_workers(pq_coord *c, pq_worker ***out, size_t *n);
/* Users and keys, read from the store (by id, or by name when id is NULL). */
pq_err pq_coord_get_user(pq_coord *c, const char *id, const char *name, pq_user **out);
/* A user named by its id (a UUID) or by its name, as people and documents give them. */
pq_err pq_coord_find_user(pq_coord *c, const char *id_or_name, pq_user **out);
/* A key's id from its id or the prefix a listing shows (owner's keys only when not NULL). */
pq_err pq_coord_find_key(pq_coord *c, const char *id_or_prefix, const char *owner, char id[PQ_UUID_LEN + 1]);
pq_err pq_coord_get_key(pq_coord *c, const char *hash, pq_api_key **out);
pq_err pq_coord_job_totals(pq_coord *c, const char *owner, int64_t *total, int64_t *completed,
                           int64_t *tokens);
pq_err pq_coord_list_users(pq_coord *c, pq_user ***out, size_t *n);
pq_err pq_coord_list_keys(pq_coord *c, const char *user_id, pq_api_key ***out, size_t *n);
/* Entries of one attempt of a job's event log after seq `after`. */
pq_err pq_coord_events(pq_coord *c, int64_t job_number, int attempt, int64_t after, size_t limit,
                       pq_job_event **out, size_t *n);
/* Money, read from the store: an account ("user:<id>", "revenue", ...),
 * its transfers newest first (account NULL: all), prices. */
pq_err pq_coord_account(pq_coord *c, const char *account, pq_account *out);
pq_err pq_coord_transfers(pq_coord *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out,
                          size_t *n, int64_t *total);
pq_err pq_coord_prices(pq_coord *c, pq_price ***out, size_t *n);
pq_err pq_coord_file_get(pq_coord *c, const char *id, bool with_content, pq_file **out);
pq_err pq_coord_file_list(pq_coord *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out,
                          size_t *n);
/* A job's steps by number after `after` (pq_job_free_array). */
pq_err pq_coord_job_children(pq_coord *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                             size_t *n);
pq_err pq_coord_budgets(pq_coord *c, const char *subject, pq_budget ***out, size_t *n);
pq_err pq_coord_subscriptions_active(pq_coord *c, int64_t *n);
pq_err pq_coord_btc_payment(pq_coord *c, const char *id, pq_btc_payment **out);
pq_err pq_coord_spend(pq_coord *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending);
pq_err pq_coord_ledger_totals(pq_coord *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum);
/* Reports: what was posted in [from, to) by kind; jobs that ended in it, grouped. */
pq_err pq_coord_ledger_sums(pq_coord *c, int64_t from, int64_t to,
                            void (*fn)(void *ctx, const char *kind, int64_t amount), void *ctx);
pq_err pq_coord_job_report(pq_coord *c, int64_t from, int64_t to, pq_report_by by,
                           void (*fn)(void *ctx, const pq_report_row *row), void *ctx);

/* Completion webhooks, read from the store (owner NULL: everyone's). */
pq_err pq_coord_webhooks(pq_coord *c, const char *owner, pq_webhook ***out, size_t *n);
pq_err pq_coord_webhook_get(pq_coord *c, const char *id, pq_webhook **out);
pq_err pq_coord_deliveries(pq_coord *c, const char *owner, const char *job_id, int state, int64_t limit,
                           pq_delivery ***out, size_t *n);
pq_err pq_coord_delivery_get(pq_coord *c, const char *id, pq_delivery **out);
/* The sender waits here until deliveries may be due: new ones committed
 * since it read pq_coord_webhook_seq() as seen, or until_ms (the clock's
 * mono) passes. Returns at once after shutdown. */
uint64_t pq_coord_webhook_seq(pq_coord *c);
void pq_coord_webhook_wait(pq_coord *c, uint64_t seen, int64_t until_ms);
/* When the soonest pending delivery is due (wall ms; INT64_MAX: none). */
pq_err pq_coord_delivery_next_at(pq_coord *c, int64_t *at);

/* Routing (routing.c): can some live worker take a job of this model with
 * these requirements (canonical text, NULL: none)? When none can, says why
 * in why ("no live worker serves model 'x'", "no live worker serving 'x'
 * offers label gpu=h100") and returns true. */
bool pq_coord_unservable(pq_coord *c, const char *model, const char *requirements, char *why, size_t why_len);
/* Live slots per model, aliases included: fn(model, workers, slots) (slots: the sum
 * of the workers' capabilities.max_concurrency or .slots, 1 each when unsaid). */
void pq_coord_servable(pq_coord *c, void (*fn)(void *ctx, const char *model, int64_t workers, int64_t slots),
                       void *ctx);
/* The model name a job of model is run as by a worker serving models (an
 * alias's first target among them; model itself otherwise). Borrowed. */
const char *pq_coord_served_as(pq_coord *c, const char *model, const char *const *models, size_t n);

/* The relay (relay.c; a store no other coordinator shares): a chunk post for
 * a job whose earlier post went through the writer is answered from memory:
 * entries numbered, subscribers woken, the write queued behind. Returns
 * PQ_ERR_NOT_FOUND when the relay cannot answer (not relayed here, another
 * token): submit PQ_OP_APPEND instead, which decides from the store. */
pq_err pq_coord_relay_append(pq_coord *c, const char *job_id, const char *token, const char *const *data,
                             size_t n, int64_t *last_seq, bool *cancel_requested);
/* Entries of the attempt after seq `after` (at most limit; none when nothing is
 * newer), from memory. PQ_ERR_NOT_FOUND: the job is not relayed in this
 * attempt, has ended, or memory no longer holds the next one: read the store.
 * *out is the caller's (pq_job_events_free). */
pq_err pq_coord_relay_read(pq_coord *c, const char *job_id, int attempt, int64_t after, size_t limit,
                           pq_job_event **out, size_t *n);

/* Waiting for a job to change: the hub, and the key a job's changes are
 * published under. */
pq_hub *pq_coord_hub(pq_coord *c);
uint64_t pq_coord_job_key(const char *job_id);

void pq_coord_get_stats(pq_coord *c, pq_coord_stats *out);
/* Jobs ended and tokens made per model over the last hour, in buckets of
 * PQ_THROUGHPUT_BUCKET_MS (kept in memory by this coordinator's writer, since
 * it started; only models some live worker served when their jobs ended
 * get a row of their own, the rest count as "(other)"). Copies up to max rows
 * into out (the caller's; PQ_THROUGHPUT_MODELS is the most there are), each
 * with PQ_THROUGHPUT_BUCKETS counts, oldest first; the first bucket starts at
 * *first_bucket_ms, the last is the current one. Returns how many. */
#define PQ_THROUGHPUT_BUCKET_MS 10000
#define PQ_THROUGHPUT_BUCKETS 360
#define PQ_THROUGHPUT_MODELS 16
#define PQ_THROUGHPUT_MODEL_LEN 128
typedef struct pq_throughput_row {
  char model[PQ_THROUGHPUT_MODEL_LEN + 1];
  uint32_t jobs[PQ_THROUGHPUT_BUCKETS];
  uint64_t tokens[PQ_THROUGHPUT_BUCKETS];
} pq_throughput_row;
size_t pq_coord_throughput(pq_coord *c, int64_t *first_bucket_ms, pq_throughput_row *out, size_t max);
/* Published after any job changed (the dashboard's feed waits on it). */
uint64_t pq_coord_any_job_key(void);
/* Calls fn with each model's queued and leased counts (kept in memory). */
void pq_coord_active_counts(pq_coord *c, void (*fn)(void *ctx, const char *model, int64_t queued,
                                                    int64_t leased), void *ctx);
const pq_coord_config *pq_coord_config_of(pq_coord *c);
const pq_clock *pq_coord_clock(pq_coord *c);
/* The store (tests arm a fault store through it; borrowed). */
pq_store *pq_coord_store(pq_coord *c);

/* Live models: kept in memory from registrations, heartbeats and the
 * reaper, so asking costs no store read and no JSON parsing. */
bool pq_coord_model_served(pq_coord *c, const char *model);
/* Does some live worker serving model honour the request parameter param
 * (its backend's capabilities.params, worker/backend.h)? */
bool pq_coord_model_honours(pq_coord *c, const char *model, const char *param);
/* The user a worker belongs to ("" for an open server's), from memory for a
 * live worker, else from the store. PQ_ERR_NOT_FOUND when unknown. */
pq_err pq_coord_worker_owner(pq_coord *c, const char *worker_id, char owner[PQ_UUID_LEN + 1]);
/* Calls fn once per model some online worker serves, with the creation time
 * of the oldest such worker. */
void pq_coord_live_models(pq_coord *c, void (*fn)(void *ctx, const char *model, int64_t created_at), void *ctx);
/* True while the store answers a trivial read and the last batch of writes
 * committed (a full disk makes it false until a write succeeds again). */
bool pq_coord_ready(pq_coord *c);

#endif
