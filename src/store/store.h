/* The store: where every job and worker lives durably.
 *
 * A backend is a const pq_store_ops table behind the opaque pq_store handle,
 * in its own folder (store/sqlite/), found by the scheme of a URL in the
 * registry (store/registry.c: pq_store_open). No backend type such as
 * sqlite3* appears outside its folder, and every backend passes the one
 * contract suite (tests/unit/store/test_store_contract.c).
 *
 * Connections: writes happen only on the one write connection, owned by the
 * coordinator's writer thread, between begin() and commit(). Reads take a
 * connection from the read pool with ops->acquire(store, PQ_CONN_READ) and
 * give it back with ops->release(); a read connection never sees uncommitted
 * data.
 *
 * Ownership: functions that return a pq_job/pq_worker hand it to the caller
 * (free with pq_job_free/pq_worker_free); arguments are borrowed. */
#ifndef PQ_STORE_STORE_H
#define PQ_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "model/job.h"
#include "model/money.h"
#include "model/webhook.h"

typedef struct pq_store pq_store;
typedef struct pq_conn pq_conn;

typedef enum { PQ_CONN_READ, PQ_CONN_WRITE } pq_conn_kind;

typedef struct pq_store_config {
  const char *path;      /* backend-specific location (SQLite: the database file); set by pq_store_open */
  bool sync_full;        /* fsync at every commit (durable against power loss) */
  int busy_timeout_ms;
  int read_pool_size;
  bool pooled;           /* a shared store reached through a transaction pooler (PgBouncer): no
                          * session state (named statements, session locks) outlives a transaction */
} pq_store_config;

/* A report's row: jobs that ended in a period, of one model, owner or day. */
typedef enum { PQ_REPORT_BY_MODEL, PQ_REPORT_BY_USER, PQ_REPORT_BY_DAY } pq_report_by;
typedef struct pq_report_row {
  const char *key;  /* the model, the owner's id, or "YYYY-MM-DD" */
  int64_t jobs, completed, prompt_tokens, completion_tokens, cost_micros;
} pq_report_row;

typedef struct pq_job_filter {
  int state;             /* -1 = any */
  const char *model;     /* NULL = any */
  const char *owner;     /* NULL = anyone's */
  int64_t limit, offset;
  bool summary;          /* rows without their input and output (input "", output NULL): listings */
  bool lease_order;      /* in the order leases take queued jobs (priority, then age), only those a
                            lease could take at ready_by (past their retry backoff); else newest first */
  int64_t ready_by;
  bool no_total;         /* *total is not counted (0): a look at the first rows only */
} pq_job_filter;

/* What a fair pick is asked for (job_pick). */
typedef struct pq_pick {
  const char *model;
  const char *offer;        /* the worker's capabilities (JSON text); NULL: nothing offered */
  int64_t now;
  int urgent;               /* jobs of at least this priority go before every turn; 0: none */
  int64_t max_running;      /* per owner, overall; 0: no limit */
  int64_t max_running_model; /* per owner, of this model; 0: no limit */
} pq_pick;

/* One entry of a job's event log: what a worker streamed (kind "chunk",
 * data: JSON text). Entries are numbered per attempt from 1. */
typedef struct pq_job_event {
  int attempt;
  int64_t seq;
  char *kind;
  char *data;
  int64_t created_at;
} pq_job_event;

void pq_job_events_free(pq_job_event *events, size_t n);

/* Called for each row of a scan; return non-zero to stop. The job is
 * borrowed (the callback may change it, not keep it). */
typedef int (*pq_job_scan_fn)(void *ctx, pq_job *job);

typedef struct pq_store_ops {
  const char *name;
  /* true: one coordinator at a time owns the store (SQLite: one file, one
   * process holds the data folder's lock), so the engine may keep its own
   * index of queued work. false: several may share it, and every lease is
   * selected by job_pick. */
  bool single_coordinator;
  pq_err (*open)(const pq_store_config *cfg, pq_store **out);
  void (*close)(pq_store *s);
  /* Applies pending schema migrations; *applied gets how many ran. */
  pq_err (*migrate)(pq_store *s, int *applied);
  int (*schema_version)(pq_store *s);

  pq_conn *(*acquire)(pq_store *s, pq_conn_kind kind);
  void (*release)(pq_store *s, pq_conn *c);

  /* durable: this transaction's commit must reach stable storage before it
   * returns (when the store is configured to sync at all). A non-durable
   * commit survives a process crash, and the next durable commit covers it. */
  pq_err (*begin)(pq_conn *c, bool durable);
  pq_err (*commit)(pq_conn *c);
  void (*rollback)(pq_conn *c);

  /* Several coordinators (NULL on a store that has one): notify tells the
   * others what a commit changed (payload: lines, see engine/writer.c), sent
   * after the commit; listen starts delivering the others' payloads to fn on
   * a thread of the backend's until close or listen(s, NULL, NULL), which returns once no
   * callback runs any more ("*" after a reconnection: anything
   * may have changed); lead answers whether this coordinator runs the
   * maintenance (one at a time; another takes over when it dies). */
  pq_err (*notify)(pq_store *s, const char *payload);
  pq_err (*listen)(pq_store *s, void (*fn)(void *ctx, const char *payload), void *ctx);
  bool (*lead)(pq_conn *c);

  /* jobs */
  pq_err (*job_insert)(pq_conn *c, pq_job *job); /* sets job->number */
  /* By public id, or by number when id is NULL. PQ_ERR_NOT_FOUND when absent. */
  pq_err (*job_get)(pq_conn *c, const char *id, int64_t number, pq_job **out);
  pq_err (*job_get_by_idempotency_key)(pq_conn *c, const char *owner, const char *key, pq_job **out);
  /* Only number, state, attempts and leased_at (the rest zero): what a stream
   * reader needs on every wake-up, without the input and output. */
  pq_err (*job_peek)(pq_conn *c, const char *id, pq_job *out);
  /* Writes every mutable field of job if the stored row is still in
   * expect_state (and holds expect_token when not NULL): a compare-and-set.
   * PQ_ERR_STALE when the row moved on. */
  pq_err (*job_update)(pq_conn *c, const pq_job *job, pq_job_state expect_state,
                       const char *expect_token);
  /* A queued job moves to another model (an operator's fallback); PQ_ERR_STALE when it is not queued. */
  pq_err (*job_set_model)(pq_conn *c, int64_t number, const char *model);
  pq_err (*job_list)(pq_conn *c, const pq_job_filter *f, pq_job ***out, size_t *n,
                     int64_t *total);
  /* Queued jobs, oldest first (index rebuild). */
  pq_err (*job_scan_queued)(pq_conn *c, pq_job_scan_fn fn, void *ctx);
  /* Leased jobs whose lease ended by now, and queued jobs whose ttl ended. */
  pq_err (*job_scan_due)(pq_conn *c, int64_t now, size_t limit, pq_job_scan_fn fn, void *ctx);
  /* Lease selection where several coordinators share the store (the
   * single-coordinator index does the same in memory: engine/sched.h): up to
   * limit queued jobs of one model that may run by now (not_before <= now)
   * and whose requirements the worker's offer meets (model/route.h; offer:
   * its capabilities as JSON text, NULL: it offers nothing). Jobs at or above
   * the urgent priority first (by priority, then age); then users take turns,
   * the one served longest ago (turn_charge) first, one job each round, each
   * user's own by priority, then age. Users at a running limit (jobs workers
   * hold, overall or of this model; 0: none; an open server's "" has none)
   * are passed over. numbers and owners hold limit entries; *n gets how many:
   * each user gives at most its share (limit over users, rounded up), so a
   * pick may come back short while more is queued (ask again). Rows another
   * writer is leasing are skipped. */
  pq_err (*job_pick)(pq_conn *c, const pq_pick *pick, size_t limit, int64_t *numbers, char (*owners)[PQ_UUID_LEN + 1],
                     size_t *n);
  /* A job of model was leased for owner: its turn moves on. tick orders turns (later: served later);
   * weight: an owner's turn lasts that many leases. */
  pq_err (*turn_charge)(pq_conn *c, const char *model, const char *owner, int64_t tick, int weight);
  /* For a worker's heartbeat: push each of its leases to now plus that job's
   * lease timeout; list its leased job
   * ids that a client asked to cancel (caller frees the array and strings). */
  pq_err (*job_extend_leases)(pq_conn *c, const char *worker_id, int64_t now);
  pq_err (*job_cancel_requested)(pq_conn *c, const char *worker_id, char ***ids, size_t *n);
  /* A worker's leased jobs (caller frees them with pq_job_free_array). */
  pq_err (*job_leased_by)(pq_conn *c, const char *worker_id, pq_job ***out, size_t *n);
  /* A worker went offline: its leases end now. */
  pq_err (*job_end_leases)(pq_conn *c, const char *worker_id, int64_t now);
  pq_err (*job_count)(pq_conn *c, int state, int64_t *count);
  /* Queued jobs of the same model that run before this one (older, with the
   * same or a higher priority), counting at most cap. */
  /* Queued jobs of job's model that leases take before it (at most cap);
   * same_owner: only its owner's (the fair index's turns: engine/sched.h). */
  pq_err (*job_ahead)(pq_conn *c, const pq_job *job, bool same_owner, int64_t cap, int64_t *ahead);

  /* The steps of a job (its children), by number after `after`, at most limit. */
  pq_err (*job_children)(pq_conn *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out, size_t *n);
  /* Removes an ended job and its event log (a deleted response). */
  pq_err (*job_delete)(pq_conn *c, int64_t number);

  /* files (OpenAI's Files API; a batch's input and output): content is
   * read only when asked (with_content) */
  pq_err (*file_insert)(pq_conn *c, const pq_file *f); /* PQ_ERR_ALREADY_EXISTS */
  pq_err (*file_get)(pq_conn *c, const char *id, bool with_content, pq_file **out); /* PQ_ERR_NOT_FOUND */
  /* newest first, without content; owner and purpose NULL: any */
  pq_err (*file_list)(pq_conn *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out,
                      size_t *n);
  pq_err (*file_delete)(pq_conn *c, const char *id); /* PQ_ERR_NOT_FOUND */

  /* completion webhooks (model/webhook.h). An owner has at most one row
   * without a url (the secret for URLs its jobs name): a second insert is
   * PQ_ERR_ALREADY_EXISTS. Listings oldest first; delete cancels the
   * webhook's pending deliveries. */
  pq_err (*webhook_insert)(pq_conn *c, const pq_webhook *w);
  pq_err (*webhook_get)(pq_conn *c, const char *id, pq_webhook **out);           /* PQ_ERR_NOT_FOUND */
  pq_err (*webhook_job_secret)(pq_conn *c, const char *owner, pq_webhook **out); /* PQ_ERR_NOT_FOUND */
  pq_err (*webhook_list)(pq_conn *c, const char *owner, pq_webhook ***out, size_t *n); /* owner NULL: all */
  pq_err (*webhook_delete)(pq_conn *c, const char *id, int64_t now);             /* PQ_ERR_NOT_FOUND */
  pq_err (*webhook_set_secret)(pq_conn *c, const char *id, const char *secret);  /* PQ_ERR_NOT_FOUND */
  /* deliveries: get and due fill in the webhook's secret; due are pending ones
   * whose next_at has come (of owners and URLs not skipped), soonest first (on a shared store, rows another
   * writer holds are skipped); next_at: the soonest pending one's
   * (INT64_MAX: none); list: newest first, without secrets (owner, job_id
   * NULL and state -1: any) */
  pq_err (*delivery_insert)(pq_conn *c, const pq_delivery *d);
  pq_err (*delivery_get)(pq_conn *c, const char *id, pq_delivery **out);          /* PQ_ERR_NOT_FOUND */
  /* skip_owners, skip_urls: JSON arrays of strings (NULL: none) whose deliveries wait (their caps) */
  pq_err (*delivery_due)(pq_conn *c, int64_t now, size_t limit, const char *skip_owners, const char *skip_urls,
                         pq_delivery ***out, size_t *n);
  pq_err (*delivery_next_at)(pq_conn *c, int64_t *at);
  /* writes state, attempts, next_at, updated_at, last_status, last_error; PQ_ERR_NOT_FOUND */
  pq_err (*delivery_update)(pq_conn *c, const pq_delivery *d);
  pq_err (*delivery_list)(pq_conn *c, const char *owner, const char *job_id, int state, int64_t limit,
                          pq_delivery ***out, size_t *n);
  /* Removes deliveries that ended (delivered, failed, cancelled) before `before`: the log's retention. */
  pq_err (*delivery_sweep)(pq_conn *c, int64_t before);

  /* the event log: appends n entries numbered from first_seq (0: after the
   * last of (job, attempt)); *seq gets the last one's number */
  pq_err (*event_append)(pq_conn *c, int64_t job_number, int attempt, const char *kind,
                         const char *const *data, size_t n, int64_t first_seq, int64_t now, int64_t *seq);
  /* entries of one attempt with seq > after, in order, at most limit */
  pq_err (*event_list)(pq_conn *c, int64_t job_number, int attempt, int64_t after, size_t limit,
                       pq_job_event **out, size_t *n);

  /* workers */
  pq_err (*worker_insert)(pq_conn *c, const pq_worker *w);
  pq_err (*worker_get)(pq_conn *c, const char *id, pq_worker **out);
  pq_err (*worker_touch)(pq_conn *c, const char *id, int64_t now);
  /* replaces what a worker offers (a heartbeat's update); PQ_ERR_NOT_FOUND */
  pq_err (*worker_set_capabilities)(pq_conn *c, const char *id, const char *capabilities);
  /* Marks online workers unseen since before as offline; calls fn with each id. */
  pq_err (*worker_mark_offline)(pq_conn *c, int64_t before,
                                void (*fn)(void *ctx, const char *id), void *ctx);
  pq_err (*worker_count_online)(pq_conn *c, int64_t *count);
  /* Online workers (caller frees each with pq_worker_free, and the array). */
  pq_err (*worker_list_online)(pq_conn *c, pq_worker ***out, size_t *n);

  /* all jobs (owner NULL) or one owner's: how many, how many completed, tokens used */
  pq_err (*job_totals)(pq_conn *c, const char *owner, int64_t *total, int64_t *completed, int64_t *tokens);
  /* jobs queued and leased, per model (for the gauges; at start) */
  pq_err (*job_count_active)(pq_conn *c, void (*fn)(void *ctx, const char *model, pq_job_state s,
                                                    int64_t n), void *ctx);
  /* queued jobs of one owner, counting at most cap */
  pq_err (*job_count_queued_by_owner)(pq_conn *c, const char *owner, int64_t cap, int64_t *n);

  /* users and API keys */
  pq_err (*user_insert)(pq_conn *c, const pq_user *u);          /* PQ_ERR_ALREADY_EXISTS */
  pq_err (*user_get)(pq_conn *c, const char *id, const char *name, pq_user **out);
  pq_err (*user_list)(pq_conn *c, pq_user ***out, size_t *n);
  pq_err (*user_set_disabled)(pq_conn *c, const char *name, bool disabled);
  pq_err (*key_insert)(pq_conn *c, const pq_api_key *k);
  pq_err (*key_get_by_hash)(pq_conn *c, const char *hash, pq_api_key **out);
  /* user_id NULL: everyone's */
  pq_err (*key_list)(pq_conn *c, const char *user_id, pq_api_key ***out, size_t *n);
  /* The key with this hash now belongs to user_id with scope and name, and
   * is active again. PQ_ERR_NOT_FOUND when no key has that hash. */
  pq_err (*key_rebind)(pq_conn *c, const char *hash, const char *user_id, const char *scope, const char *name);
  /* wallet login challenges: one use each, until expires_at (wall ms). take
   * removes it when it is live and the wallet's (else PQ_ERR_NOT_FOUND);
   * sweep removes the expired. */
  pq_err (*challenge_insert)(pq_conn *c, const char *challenge, const char *wallet, int64_t expires_at);
  pq_err (*challenge_take)(pq_conn *c, const char *challenge, const char *wallet, int64_t now);
  pq_err (*challenge_sweep)(pq_conn *c, int64_t now);
  /* by id or prefix; user_id (when not NULL) must own it. PQ_ERR_NOT_FOUND */
  pq_err (*key_revoke)(pq_conn *c, const char *id_or_prefix, const char *user_id, int64_t now);

  /* money (model/money.h): prices by model, and the ledger */
  pq_err (*price_put)(pq_conn *c, const pq_price *p);  /* insert or replace */
  pq_err (*price_get)(pq_conn *c, const char *model, pq_price **out); /* PQ_ERR_NOT_FOUND */
  pq_err (*price_list)(pq_conn *c, pq_price ***out, size_t *n);
  /* Serialises, until the commit, every writer that spends from subject
   * ("user:<id>", "key:<id>"): several coordinators' holds cannot pass a
   * balance or a budget together. A store with one writer may do nothing. */
  pq_err (*subject_lock)(pq_conn *c, const char *subject);
  /* An account's balance and holds (an account never written: zeros). */
  pq_err (*account_get)(pq_conn *c, const char *id, pq_account *out);
  /* Records t and applies it: a posted transfer moves its amount from debit
   * to credit; a pending one adds it to debit's held. PQ_ERR_ALREADY_EXISTS
   * when a transfer with its id exists (nothing changes). */
  pq_err (*transfer_insert)(pq_conn *c, const pq_transfer *t);
  /* Ends a pending transfer, once: posted moves `posted` (0..amount) from
   * debit to credit, voided moves nothing; either releases its hold.
   * PQ_ERR_STALE when it is not pending, PQ_ERR_NOT_FOUND when absent. */
  pq_err (*transfer_settle)(pq_conn *c, const char *id, pq_transfer_state to, int64_t posted, int64_t now);
  pq_err (*transfer_get)(pq_conn *c, const char *id, pq_transfer **out);
  /* Newest first: the transfers touching account (NULL: all). */
  pq_err (*transfer_list)(pq_conn *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out,
                          size_t *n, int64_t *total);
  /* Sums over every account (the invariants: balance sums to zero; held is
   * what pending transfers reserve). */
  pq_err (*ledger_totals)(pq_conn *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum);
  /* Budgets: set (limit 0 removes it), list (subject NULL: all). */
  pq_err (*budget_put)(pq_conn *c, const pq_budget *b);
  pq_err (*budget_list)(pq_conn *c, const char *subject, pq_budget ***out, size_t *n);
  /* A subject's spending ("user:<id>": its account's; "key:<id>": its key's
   * jobs'): holds and charges posted since `since`, and its holds still open. */
  pq_err (*spend)(pq_conn *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending);
  /* Payments: a provider's event, recorded once (PQ_ERR_ALREADY_EXISTS the
   * second time); a subscription's state, unless an event newer than
   * sub->event_at set it already (a NULL user_id or customer keeps the
   * stored one); active subscriptions counted. */
  pq_err (*payment_event_record)(pq_conn *c, const char *id, const char *type, int64_t now);
  pq_err (*subscription_apply)(pq_conn *c, const pq_subscription *sub);
  pq_err (*subscription_get)(pq_conn *c, const char *id, pq_subscription **out);
  pq_err (*subscription_count_active)(pq_conn *c, int64_t *n);
  /* Bitcoin payments: a new one; one by id; the newest pending one asking
   * for exactly amount_sats that is live (a payment was seen for it, or it
   * did not expire before `now`: callers pass a time a grace period back) or,
   * with include_expired, any pending one (PQ_ERR_NOT_FOUND when none); a
   * changed one, if its status is still expect (PQ_ERR_STALE otherwise). An
   * output seen paying the address is recorded once (PQ_ERR_ALREADY_EXISTS
   * after). A subscription's NULL status keeps the stored one. */
  pq_err (*btc_payment_insert)(pq_conn *c, const pq_btc_payment *p);
  pq_err (*btc_payment_get)(pq_conn *c, const char *id, pq_btc_payment **out);
  pq_err (*btc_payment_by_amount)(pq_conn *c, int64_t amount_sats, int64_t now, bool include_expired,
                                  pq_btc_payment **out);
  pq_err (*btc_payment_update)(pq_conn *c, const pq_btc_payment *p, const char *expect_status);
  /* A user's pending requests that have not expired by now, counting at most cap. */
  pq_err (*btc_pending_count)(pq_conn *c, const char *user_id, int64_t now, int64_t cap, int64_t *n);
  pq_err (*btc_output_record)(pq_conn *c, const char *txid, int64_t vout, int64_t amount_sats, const char *payment_id,
                              const char *outcome, int64_t now);
  /* The amounts posted in [from, to) (wall ms, by when they were posted), one call per kind. */
  pq_err (*ledger_sums)(pq_conn *c, int64_t from, int64_t to, void (*fn)(void *ctx, const char *kind, int64_t amount),
                        void *ctx);
  /* Jobs that ended in [from, to), grouped by model, owner or UTC day
   * (group: "YYYY-MM-DD"); one call per group, in key order. */
  pq_err (*job_report)(pq_conn *c, int64_t from, int64_t to, pq_report_by by,
                       void (*fn)(void *ctx, const pq_report_row *row), void *ctx);
} pq_store_ops;

/* ---- the registry (store/registry.c) ---- */

/* A backend by URL scheme: "sqlite" for sqlite:///path/to/file.db. */
typedef struct pq_store_backend {
  const char *scheme;
  const pq_store_ops *ops;
} pq_store_backend;

/* The backends compiled in, ended by {NULL, NULL}. */
extern const pq_store_backend pq_store_backends[];

/* Opens the store a URL names (cfg supplies the rest; its path is ignored):
 * sqlite:///abs/path.db, sqlite://relative/path.db, or a wrapper such as
 * fault+sqlite:///... (store/testing/fault.h). An unknown scheme or a
 * malformed URL is PQ_ERR_INVALID_REQUEST with the reason in why. Close
 * with pq_store_close. */
pq_err pq_store_open(const char *url, const pq_store_config *cfg, pq_store **out, char *why, size_t why_size);
void pq_store_close(pq_store *s);
/* Does one coordinator own this store (its backend's single_coordinator,
 * through any wrapper)? */
bool pq_store_single_coordinator(pq_store *s);
/* May several coordinators share the store this URL names? (Its backend's
 * single_coordinator; false for an unknown scheme.) */
bool pq_store_url_shared(const char *url);
/* url with its password replaced by "***" (for logs and errors). */
void pq_store_url_redacted(const char *url, char *out, size_t size);
/* The URL of a data folder's own SQLite store (DATA/promptq.db). */
int pq_store_url_for_data(const char *data, char *out, size_t size);

/* Every handle starts with its ops table, so callers can reach it. */
struct pq_store {
  const pq_store_ops *ops;
};

#endif
