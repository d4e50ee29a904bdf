/* Private to the PostgreSQL backend (store/postgres/): the connection, the
 * parameter and row helpers every area file (jobs.c, events.c, workers.c,
 * identity.c) uses. Nothing outside this folder includes it. */
#ifndef PQ_STORE_POSTGRES_INTERNAL_H
#define PQ_STORE_POSTGRES_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>

#include "store/store.h"

#define PQ__PG_STMT_SLOTS 128 /* prepared statements per connection, keyed by their SQL's address */
#define PQ__PG_MAX_PARAMS 24

typedef struct pg_store pg_store;

struct pq_conn {
  PGconn *pg;
  pg_store *store;
  bool writer;
  bool in_txn;      /* between BEGIN and COMMIT/ROLLBACK: a lost connection fails every statement
                     * until the rollback, never reconnects into autocommit */
  bool leader;      /* holds the maintenance lock (session-level: lost with the session) */
  int64_t retry_at; /* after a lost connection: when to try again (mono ms) */
  struct {
    const char *sql;
    char name[16];
  } prepared[PQ__PG_STMT_SLOTS];
  pq_conn *next_free;
};

/* Text parameters for a statement ($1, $2, ...). */
typedef struct pq__pgp {
  const char *v[PQ__PG_MAX_PARAMS];
  char num[PQ__PG_MAX_PARAMS][24];
  int n;
} pq__pgp;

void pq__pg_text(pq__pgp *p, const char *v);   /* NULL: SQL NULL */
void pq__pg_int(pq__pgp *p, int64_t v);
void pq__pg_ms(pq__pgp *p, int64_t v);         /* 0: SQL NULL */

/* Runs sql (a string constant: prepared once per connection, keyed by its
 * address) with p. The result, or NULL with the error logged and *err set
 * (PQ_ERR_ALREADY_EXISTS on a unique violation, else PQ_ERR_STORE_FAILED). */
PGresult *pq__pg_run(pq_conn *c, const char *sql, const pq__pgp *p, pq_err *err);
/* The same for SQL built at run time (not prepared). */
PGresult *pq__pg_run_once(pq_conn *c, const char *sql, const pq__pgp *p, pq_err *err);

/* Reading a result row's column: text (NULL for SQL NULL), int64 (0 for NULL), a copy. */
const char *pq__pg_col(const PGresult *r, int row, int col);
int64_t pq__pg_i64(const PGresult *r, int row, int col);
int pq__pg_dup(const PGresult *r, int row, int col, char **out); /* -1 on OOM */
/* Every row of a statement made by make (freed with free_one on failure);
 * and the one row it should find (PQ_ERR_NOT_FOUND when none). */
pq_err pq__pg_rows(pq_conn *c, const char *sql, pq__pgp *p, void *(*make)(const PGresult *, int),
                   void (*free_one)(void *), void ***out, size_t *n);
pq_err pq__pg_one(pq_conn *c, const char *sql, pq__pgp *p, void *(*make)(const PGresult *, int),
                  void (*free_one)(void *), void **out);
/* Runs a statement that returns no rows; *changed (when not NULL) gets how many it changed. */
pq_err pq__pg_command(pq_conn *c, const char *sql, pq__pgp *p, int64_t *changed);
/* The same, for a statement that should change a row: PQ_ERR_NOT_FOUND when it changed none. */
pq_err pq__pg_changed_one(pq_conn *c, const char *sql, pq__pgp *p);
/* Rows a statement changed. */
int64_t pq__pg_changed(const PGresult *r);

extern const pq_store_ops pq_store_postgres_ops; /* the registry's entry */

/* The migrations, from migrations/NNNN_*.sql, embedded at build time. */
extern const char *const pq__postgres_migrations[];
extern const int pq__postgres_migrations_count;

/* jobs.c */
pq_err pq__pg_job_insert(pq_conn *c, pq_job *j);
pq_err pq__pg_job_get(pq_conn *c, const char *id, int64_t number, pq_job **out);
pq_err pq__pg_job_get_by_idem(pq_conn *c, const char *owner, const char *key, pq_job **out);
pq_err pq__pg_job_peek(pq_conn *c, const char *id, pq_job *out);
pq_err pq__pg_job_update(pq_conn *c, const pq_job *j, pq_job_state expect_state, const char *expect_token);
pq_err pq__pg_job_list(pq_conn *c, const pq_job_filter *f, pq_job ***out, size_t *n, int64_t *total);
pq_err pq__pg_job_scan_queued(pq_conn *c, pq_job_scan_fn fn, void *ctx);
pq_err pq__pg_job_scan_due(pq_conn *c, int64_t now, size_t limit, pq_job_scan_fn fn, void *ctx);
pq_err pq__pg_job_pick(pq_conn *c, const pq_pick *pick, size_t limit, int64_t *numbers, char (*owners)[PQ_UUID_LEN + 1],
                       size_t *n);
pq_err pq__pg_job_set_model(pq_conn *c, int64_t number, const char *model);
pq_err pq__pg_turn_charge(pq_conn *c, const char *model, const char *owner, int64_t tick, int weight);
pq_err pq__pg_job_extend_leases(pq_conn *c, const char *worker_id, int64_t now);
pq_err pq__pg_job_end_leases(pq_conn *c, const char *worker_id, int64_t now);
pq_err pq__pg_job_leased_by(pq_conn *c, const char *worker_id, pq_job ***out, size_t *n);
pq_err pq__pg_job_cancel_requested(pq_conn *c, const char *worker_id, char ***ids, size_t *n);
pq_err pq__pg_job_count(pq_conn *c, int state, int64_t *count);
pq_err pq__pg_job_ahead(pq_conn *c, const pq_job *job, bool same_owner, int64_t cap, int64_t *ahead);
pq_err pq__pg_job_totals(pq_conn *c, const char *owner, int64_t *total, int64_t *completed, int64_t *tokens);
pq_err pq__pg_job_count_active(pq_conn *c, void (*fn)(void *, const char *, pq_job_state, int64_t), void *ctx);
pq_err pq__pg_job_count_queued_by_owner(pq_conn *c, const char *owner, int64_t cap, int64_t *n);
pq_err pq__pg_job_delete(pq_conn *c, int64_t number);
pq_err pq__pg_job_children(pq_conn *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                           size_t *n);
pq_err pq__pg_file_insert(pq_conn *c, const pq_file *f);
pq_err pq__pg_file_get(pq_conn *c, const char *id, bool with_content, pq_file **out);
pq_err pq__pg_file_list(pq_conn *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out,
                        size_t *n);
pq_err pq__pg_file_delete(pq_conn *c, const char *id);
/* events.c, workers.c, identity.c */
pq_err pq__pg_event_append(pq_conn *c, int64_t job_number, int attempt, const char *kind, const char *const *data,
                           size_t n, int64_t first_seq, int64_t now, int64_t *seq);
pq_err pq__pg_event_list(pq_conn *c, int64_t job_number, int attempt, int64_t after, size_t limit,
                         pq_job_event **out, size_t *n);
pq_err pq__pg_worker_insert(pq_conn *c, const pq_worker *w);
pq_err pq__pg_worker_get(pq_conn *c, const char *id, pq_worker **out);
pq_err pq__pg_worker_touch(pq_conn *c, const char *id, int64_t now);
pq_err pq__pg_worker_mark_offline(pq_conn *c, int64_t before, void (*fn)(void *ctx, const char *id), void *ctx);
pq_err pq__pg_worker_count_online(pq_conn *c, int64_t *count);
pq_err pq__pg_worker_list_online(pq_conn *c, pq_worker ***out, size_t *n);
pq_err pq__pg_user_insert(pq_conn *c, const pq_user *u);
pq_err pq__pg_user_get(pq_conn *c, const char *id, const char *name, pq_user **out);
pq_err pq__pg_user_list(pq_conn *c, pq_user ***out, size_t *n);
pq_err pq__pg_user_set_disabled(pq_conn *c, const char *name, bool disabled);
pq_err pq__pg_key_insert(pq_conn *c, const pq_api_key *k);
pq_err pq__pg_key_get_by_hash(pq_conn *c, const char *hash, pq_api_key **out);
pq_err pq__pg_key_list(pq_conn *c, const char *user_id, pq_api_key ***out, size_t *n);
pq_err pq__pg_key_rebind(pq_conn *c, const char *hash, const char *user_id, const char *scope, const char *name);
pq_err pq__pg_challenge_insert(pq_conn *c, const char *challenge, const char *wallet, int64_t expires_at);
pq_err pq__pg_challenge_take(pq_conn *c, const char *challenge, const char *wallet, int64_t now);
pq_err pq__pg_challenge_sweep(pq_conn *c, int64_t now);

/* money.c */
pq_err pq__pg_price_put(pq_conn *c, const pq_price *p);
pq_err pq__pg_price_get(pq_conn *c, const char *model, pq_price **out);
pq_err pq__pg_price_list(pq_conn *c, pq_price ***out, size_t *n);
pq_err pq__pg_account_get(pq_conn *c, const char *id, pq_account *out);
pq_err pq__pg_subject_lock(pq_conn *c, const char *subject);
pq_err pq__pg_transfer_insert(pq_conn *c, const pq_transfer *t);
pq_err pq__pg_transfer_settle(pq_conn *c, const char *id, pq_transfer_state to, int64_t posted, int64_t now);
pq_err pq__pg_transfer_get(pq_conn *c, const char *id, pq_transfer **out);
pq_err pq__pg_transfer_list(pq_conn *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out,
                            size_t *n, int64_t *total);
pq_err pq__pg_ledger_totals(pq_conn *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum);
pq_err pq__pg_btc_payment_insert(pq_conn *c, const pq_btc_payment *p);
pq_err pq__pg_btc_payment_get(pq_conn *c, const char *id, pq_btc_payment **out);
pq_err pq__pg_btc_payment_by_amount(pq_conn *c, int64_t amount_sats, int64_t now, bool include_expired,
                                    pq_btc_payment **out);
pq_err pq__pg_btc_payment_update(pq_conn *c, const pq_btc_payment *p, const char *expect_status);
pq_err pq__pg_btc_pending_count(pq_conn *c, const char *user_id, int64_t now, int64_t cap, int64_t *n);
pq_err pq__pg_btc_output_record(pq_conn *c, const char *txid, int64_t vout, int64_t amount_sats, const char *payment_id,
                                const char *outcome, int64_t now);
pq_err pq__pg_payment_event_record(pq_conn *c, const char *id, const char *type, int64_t now);
pq_err pq__pg_subscription_apply(pq_conn *c, const pq_subscription *sub);
pq_err pq__pg_subscription_get(pq_conn *c, const char *id, pq_subscription **out);
pq_err pq__pg_subscription_count_active(pq_conn *c, int64_t *n);
pq_err pq__pg_budget_put(pq_conn *c, const pq_budget *b);
pq_err pq__pg_budget_list(pq_conn *c, const char *subject, pq_budget ***out, size_t *n);
pq_err pq__pg_spend(pq_conn *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending);
pq_err pq__pg_ledger_sums(pq_conn *c, int64_t from, int64_t to, void (*fn)(void *ctx, const char *kind, int64_t amount),
                          void *ctx);
pq_err pq__pg_job_report(pq_conn *c, int64_t from, int64_t to, pq_report_by by,
                         void (*fn)(void *ctx, const pq_report_row *row), void *ctx);
pq_err pq__pg_key_revoke(pq_conn *c, const char *id_or_prefix, const char *user_id, int64_t now);


/* webhooks.c */
pq_err pq__pg_webhook_insert(pq_conn *c, const pq_webhook *w);
pq_err pq__pg_webhook_get(pq_conn *c, const char *id, pq_webhook **out);
pq_err pq__pg_webhook_job_secret(pq_conn *c, const char *owner, pq_webhook **out);
pq_err pq__pg_webhook_list(pq_conn *c, const char *owner, pq_webhook ***out, size_t *n);
pq_err pq__pg_webhook_delete(pq_conn *c, const char *id, int64_t now);
pq_err pq__pg_delivery_insert(pq_conn *c, const pq_delivery *d);
pq_err pq__pg_delivery_get(pq_conn *c, const char *id, pq_delivery **out);
pq_err pq__pg_delivery_due(pq_conn *c, int64_t now, size_t limit, const char *skip_owners, const char *skip_urls,
                         pq_delivery ***out, size_t *n);
pq_err pq__pg_delivery_next_at(pq_conn *c, int64_t *at);
pq_err pq__pg_delivery_update(pq_conn *c, const pq_delivery *d);
pq_err pq__pg_delivery_list(pq_conn *c, const char *owner, const char *job_id, int state, int64_t limit,
                            pq_delivery ***out, size_t *n);
pq_err pq__pg_webhook_set_secret(pq_conn *c, const char *id, const char *secret);
pq_err pq__pg_delivery_sweep(pq_conn *c, int64_t before);
pq_err pq__pg_worker_set_capabilities(pq_conn *c, const char *id, const char *capabilities);

#endif
