/* The PostgreSQL backend's money: the same contract as SQLite's. The writer
 * reads a hold FOR UPDATE before settling it, so two coordinators never
 * settle one hold twice (the state compare-and-set would refuse the second
 * anyway). */
#include <stdlib.h>
#include <string.h>

#include "store/columns.h"
#include "store/postgres/internal.h"

static const char SQL_PRICE_PUT[] =
    "INSERT INTO prices (" PQ__PRICE_COLS ") VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (model) DO UPDATE SET "
    "input_per_mtok = excluded.input_per_mtok, output_per_mtok = excluded.output_per_mtok, "
    "cost_input_per_mtok = excluded.cost_input_per_mtok, cost_output_per_mtok = excluded.cost_output_per_mtok, "
    "updated_at = excluded.updated_at";
static const char SQL_PRICE_GET[] = "SELECT " PQ__PRICE_COLS " FROM prices WHERE model = $1";
static const char SQL_PRICE_LIST[] = "SELECT " PQ__PRICE_COLS " FROM prices ORDER BY model";
/* transaction-scoped, so it also holds through a transaction pooler */
static const char SQL_SUBJECT_LOCK[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))";
static const char SQL_ACCOUNT_GET[] = "SELECT balance, held FROM accounts WHERE id = $1";
static const char SQL_ACCOUNT_ADD[] = "INSERT INTO accounts (id, balance, held) VALUES ($1, $2, $3) "
                                      "ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance, "
                                      "held = accounts.held + excluded.held";
static const char SQL_TRANSFER_INSERT[] = "INSERT INTO transfers (" PQ__TRANSFER_COLS ") "
                                          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                                          "ON CONFLICT DO NOTHING RETURNING number";
static const char SQL_BUDGET_PUT[] = "INSERT INTO budgets (" PQ__BUDGET_COLS ") VALUES ($1, $2, $3, $4) "
                                     "ON CONFLICT (subject, period) DO UPDATE SET limit_micros = excluded.limit_micros, "
                                     "updated_at = excluded.updated_at";
static const char SQL_BUDGET_DELETE[] = "DELETE FROM budgets WHERE subject = $1 AND period = $2";
static const char SQL_BUDGET_LIST[] = "SELECT " PQ__BUDGET_COLS " FROM budgets WHERE $1::text IS NULL OR subject = $1 "
                                      "ORDER BY subject, period";
static const char SQL_SPEND_ACCOUNT[] =
    "SELECT (SELECT COALESCE(SUM(posted), 0) FROM transfers WHERE debit = $1 AND state = 'posted' AND "
    "settled_at >= $2 AND kind IN ('hold', 'charge')), "
    "(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit = $1 AND state = 'pending')";
static const char SQL_SPEND_KEY[] =
    "SELECT (SELECT COALESCE(SUM(posted), 0) FROM transfers WHERE key_id = $1 AND state = 'posted' AND "
    "settled_at >= $2 AND kind IN ('hold', 'charge')), "
    "(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE key_id = $1 AND state = 'pending')";
static const char SQL_TRANSFER_GET[] = "SELECT " PQ__TRANSFER_COLS " FROM transfers WHERE id = $1 FOR UPDATE";
static const char SQL_TRANSFER_SETTLE[] = "UPDATE transfers SET state = $2, posted = $3, settled_at = $4 "
                                          "WHERE id = $1 AND state = 'pending'";
static const char SQL_TRANSFER_LIST_ACCOUNT[] = "SELECT " PQ__TRANSFER_COLS " FROM transfers WHERE debit = $1 OR "
                                                "credit = $1 ORDER BY number DESC LIMIT $2 OFFSET $3";
static const char SQL_TRANSFER_COUNT_ACCOUNT[] = "SELECT COUNT(*) FROM transfers WHERE debit = $1 OR credit = $1";
static const char SQL_TRANSFER_LIST_ALL[] = "SELECT " PQ__TRANSFER_COLS " FROM transfers WHERE $1::text IS NULL "
                                            "ORDER BY number DESC LIMIT $2 OFFSET $3";
static const char SQL_TRANSFER_COUNT_ALL[] = "SELECT COUNT(*) FROM transfers WHERE $1::text IS NULL";
static const char SQL_TOTALS[] = "SELECT COALESCE(SUM(balance), 0), COALESCE(SUM(held), 0), "
                                 "(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE state = 'pending') FROM accounts";

static void *make_price(const PGresult *r, int row) {
  pq_price *p = calloc(1, sizeof *p);
  if (!p || pq__pg_dup(r, row, 0, &p->model)) {
    pq_price_free(p);
    return NULL;
  }
  p->input_per_mtok = pq__pg_i64(r, row, 1);
  p->output_per_mtok = pq__pg_i64(r, row, 2);
  p->cost_input_per_mtok = pq__pg_i64(r, row, 3);
  p->cost_output_per_mtok = pq__pg_i64(r, row, 4);
  p->updated_at = pq__pg_i64(r, row, 5);
  return p;
}
static void free_price(void *p) { pq_price_free(p); }

static void *make_transfer(const PGresult *r, int row) {
  pq_transfer *t = calloc(1, sizeof *t);
  if (!t || pq__pg_dup(r, row, 0, &t->id) || pq__pg_dup(r, row, 1, &t->debit) || pq__pg_dup(r, row, 2, &t->credit) ||
      pq__pg_dup(r, row, 4, &t->kind) || pq__pg_dup(r, row, 5, &t->job_id)) {
    pq_transfer_free(t);
    return NULL;
  }
  const char *state = pq__pg_col(r, row, 6);
  t->amount = pq__pg_i64(r, row, 3);
  t->state = state && strcmp(state, "pending") == 0  ? PQ_TRANSFER_PENDING
             : state && strcmp(state, "voided") == 0 ? PQ_TRANSFER_VOIDED
                                                     : PQ_TRANSFER_POSTED;
  t->posted = pq__pg_i64(r, row, 7);
  t->created_at = pq__pg_i64(r, row, 8);
  t->settled_at = pq__pg_i64(r, row, 9);
  if (pq__pg_dup(r, row, 10, &t->key_id)) {
    pq_transfer_free(t);
    return NULL;
  }
  return t;
}
static void free_transfer(void *t) { pq_transfer_free(t); }

pq_err pq__pg_price_put(pq_conn *c, const pq_price *price) {
  pq__pgp p = {0};
  pq__pg_text(&p, price->model);
  pq__pg_int(&p, price->input_per_mtok);
  pq__pg_int(&p, price->output_per_mtok);
  pq__pg_int(&p, price->cost_input_per_mtok);
  pq__pg_int(&p, price->cost_output_per_mtok);
  pq__pg_int(&p, price->updated_at);
  return pq__pg_command(c, SQL_PRICE_PUT, &p, NULL);
}

pq_err pq__pg_price_get(pq_conn *c, const char *model, pq_price **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, model);
  return pq__pg_one(c, SQL_PRICE_GET, &p, make_price, free_price, (void **)out);
}

pq_err pq__pg_price_list(pq_conn *c, pq_price ***out, size_t *n) {
  return pq__pg_rows(c, SQL_PRICE_LIST, NULL, make_price, free_price, (void ***)out, n);
}

pq_err pq__pg_account_get(pq_conn *c, const char *id, pq_account *out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_ACCOUNT_GET, &p, &err);
  if (!r) return err;
  *out = (pq_account){0};
  if (PQntuples(r) == 1) {
    out->balance = pq__pg_i64(r, 0, 0);
    out->held = pq__pg_i64(r, 0, 1);
  }
  PQclear(r);
  return PQ_OK;
}

static pq_err account_add(pq_conn *c, const char *id, int64_t balance, int64_t held) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_int(&p, balance);
  pq__pg_int(&p, held);
  return pq__pg_command(c, SQL_ACCOUNT_ADD, &p, NULL);
}

static pq_err apply(pq_conn *c, const char *debit, const char *credit, int64_t moved, int64_t held) {
  pq_err result = PQ_OK;
  if (moved || held) result = account_add(c, debit, -moved, held);
  if (result == PQ_OK && moved) result = account_add(c, credit, moved, 0);
  return result;
}

pq_err pq__pg_transfer_insert(pq_conn *c, const pq_transfer *t) {
  pq__pgp p = {0};
  bool posted = t->state == PQ_TRANSFER_POSTED;
  pq__pg_text(&p, t->id);
  pq__pg_text(&p, t->debit);
  pq__pg_text(&p, t->credit);
  pq__pg_int(&p, t->amount);
  pq__pg_text(&p, t->kind);
  pq__pg_text(&p, t->job_id);
  pq__pg_text(&p, pq_transfer_state_name(t->state));
  pq__pg_int(&p, posted ? t->amount : 0);
  pq__pg_int(&p, t->created_at);
  pq__pg_int(&p, posted ? t->created_at : 0);
  pq__pg_text(&p, t->key_id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_TRANSFER_INSERT, &p, &err);
  if (!r) return err;
  err = PQntuples(r) == 1 ? PQ_OK : PQ_ERR_ALREADY_EXISTS; /* another coordinator's, with this id */
  PQclear(r);
  if (err != PQ_OK) return err;
  return t->state == PQ_TRANSFER_PENDING ? apply(c, t->debit, t->credit, 0, t->amount)
                                         : apply(c, t->debit, t->credit, t->amount, 0);
}

pq_err pq__pg_transfer_get(pq_conn *c, const char *id, pq_transfer **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  return pq__pg_one(c, SQL_TRANSFER_GET, &p, make_transfer, free_transfer, (void **)out);
}

pq_err pq__pg_transfer_settle(pq_conn *c, const char *id, pq_transfer_state to, int64_t posted, int64_t now) {
  pq_transfer *t = NULL;
  pq_err result = pq__pg_transfer_get(c, id, &t);
  if (result != PQ_OK) return result;
  if (t->state != PQ_TRANSFER_PENDING || posted < 0 || posted > t->amount || to == PQ_TRANSFER_PENDING) {
    result = t->state != PQ_TRANSFER_PENDING ? PQ_ERR_STALE : PQ_ERR_INTERNAL;
    pq_transfer_free(t);
    return result;
  }
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_text(&p, pq_transfer_state_name(to));
  pq__pg_int(&p, to == PQ_TRANSFER_POSTED ? posted : 0);
  pq__pg_int(&p, now);
  int64_t changed = 0;
  result = pq__pg_command(c, SQL_TRANSFER_SETTLE, &p, &changed);
  if (result == PQ_OK && changed != 1) result = PQ_ERR_STALE;
  if (result == PQ_OK) result = apply(c, t->debit, t->credit, to == PQ_TRANSFER_POSTED ? posted : 0, -t->amount);
  pq_transfer_free(t);
  return result;
}

pq_err pq__pg_transfer_list(pq_conn *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out,
                            size_t *n, int64_t *total) {
  pq__pgp p = {0};
  pq__pg_text(&p, account);
  pq_err err;
  PGresult *r = pq__pg_run(c, account ? SQL_TRANSFER_COUNT_ACCOUNT : SQL_TRANSFER_COUNT_ALL, &p, &err);
  if (!r) return err;
  *total = pq__pg_i64(r, 0, 0);
  PQclear(r);
  pq__pg_int(&p, limit);
  pq__pg_int(&p, offset);
  return pq__pg_rows(c, account ? SQL_TRANSFER_LIST_ACCOUNT : SQL_TRANSFER_LIST_ALL, &p, make_transfer, free_transfer,
                     (void ***)out, n);
}

pq_err pq__pg_ledger_totals(pq_conn *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_TOTALS, NULL, &err);
  if (!r) return err;
  *balance_sum = pq__pg_i64(r, 0, 0);
  *held_sum = pq__pg_i64(r, 0, 1);
  *pending_sum = pq__pg_i64(r, 0, 2);
  PQclear(r);
  return PQ_OK;
}

static const char SQL_LEDGER_SUMS[] = "SELECT kind, SUM(posted) FROM transfers WHERE state = 'posted' AND "
                                      "settled_at >= $1 AND settled_at < $2 GROUP BY kind ORDER BY kind";
#define REPORT_SQL(key)                                                                                         \
  "SELECT " key " AS k, COUNT(*), SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), SUM(prompt_tokens), " \
  "SUM(completion_tokens), SUM(cost_micros) FROM jobs WHERE finished_at >= $1 AND finished_at < $2 AND "       \
  "finished_at > 0 AND parent_id IS NULL GROUP BY k ORDER BY k"
static const char SQL_REPORT_MODEL[] = REPORT_SQL("model");
static const char SQL_REPORT_USER[] = REPORT_SQL("owner");
static const char SQL_REPORT_DAY[] =
    REPORT_SQL("to_char(to_timestamp(finished_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')");

pq_err pq__pg_ledger_sums(pq_conn *c, int64_t from, int64_t to, void (*fn)(void *ctx, const char *kind, int64_t amount),
                          void *ctx) {
  pq__pgp p = {0};
  pq__pg_int(&p, from);
  pq__pg_int(&p, to);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_LEDGER_SUMS, &p, &err);
  if (!r) return err;
  for (int i = 0; i < PQntuples(r); i++) fn(ctx, pq__pg_col(r, i, 0), pq__pg_i64(r, i, 1));
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_job_report(pq_conn *c, int64_t from, int64_t to, pq_report_by by,
                         void (*fn)(void *ctx, const pq_report_row *row), void *ctx) {
  pq__pgp p = {0};
  pq__pg_int(&p, from);
  pq__pg_int(&p, to);
  pq_err err;
  PGresult *r = pq__pg_run(c, by == PQ_REPORT_BY_MODEL ? SQL_REPORT_MODEL
                              : by == PQ_REPORT_BY_USER ? SQL_REPORT_USER
                                                        : SQL_REPORT_DAY,
                           &p, &err);
  if (!r) return err;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *key = pq__pg_col(r, i, 0);
    pq_report_row row = {.key = key ? key : "", .jobs = pq__pg_i64(r, i, 1), .completed = pq__pg_i64(r, i, 2),
                         .prompt_tokens = pq__pg_i64(r, i, 3), .completion_tokens = pq__pg_i64(r, i, 4),
                         .cost_micros = pq__pg_i64(r, i, 5)};
    fn(ctx, &row);
  }
  PQclear(r);
  return PQ_OK;
}

static void free_budget(void *b) {
  pq_budget *one = b;
  free(one->subject);
  free(one->period);
  free(one);
}

static void *make_budget(const PGresult *r, int row) {
  pq_budget *b = calloc(1, sizeof *b);
  if (!b || pq__pg_dup(r, row, 0, &b->subject) || pq__pg_dup(r, row, 1, &b->period)) {
    if (b) free_budget(b);
    return NULL;
  }
  b->limit_micros = pq__pg_i64(r, row, 2);
  b->updated_at = pq__pg_i64(r, row, 3);
  return b;
}

pq_err pq__pg_budget_put(pq_conn *c, const pq_budget *b) {
  pq__pgp p = {0};
  pq__pg_text(&p, b->subject);
  pq__pg_text(&p, b->period);
  if (b->limit_micros <= 0) return pq__pg_command(c, SQL_BUDGET_DELETE, &p, NULL);
  pq__pg_int(&p, b->limit_micros);
  pq__pg_int(&p, b->updated_at);
  return pq__pg_command(c, SQL_BUDGET_PUT, &p, NULL);
}

pq_err pq__pg_budget_list(pq_conn *c, const char *subject, pq_budget ***out, size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, subject);
  return pq__pg_rows(c, SQL_BUDGET_LIST, &p, make_budget, free_budget, (void ***)out, n);
}

pq_err pq__pg_spend(pq_conn *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending) {
  bool key = strncmp(subject, "key:", 4) == 0;
  pq__pgp p = {0};
  pq__pg_text(&p, key ? subject + 4 : subject);
  pq__pg_int(&p, since);
  pq_err err;
  PGresult *r = pq__pg_run(c, key ? SQL_SPEND_KEY : SQL_SPEND_ACCOUNT, &p, &err);
  if (!r) return err;
  *posted = pq__pg_i64(r, 0, 0);
  *pending = pq__pg_i64(r, 0, 1);
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_subject_lock(pq_conn *c, const char *subject) {
  pq__pgp p = {0};
  pq__pg_text(&p, subject);
  return pq__pg_command(c, SQL_SUBJECT_LOCK, &p, NULL);
}

/* ---- payments ---- */

static const char SQL_EVENT_RECORD[] = "INSERT INTO payment_events (id, type, received_at) VALUES ($1, $2, $3) "
                                       "ON CONFLICT DO NOTHING RETURNING id";
static const char SQL_SUB_APPLY[] =
    "INSERT INTO subscriptions (id, user_id, customer, status, current_period_end, event_at, updated_at) "
    "VALUES ($1, COALESCE($2, ''), $3, COALESCE($4, 'active'), $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
    "user_id = CASE WHEN excluded.user_id <> '' THEN excluded.user_id ELSE subscriptions.user_id END, "
    "customer = COALESCE(excluded.customer, subscriptions.customer), "
    "status = COALESCE($4::text, subscriptions.status), "
    "current_period_end = CASE WHEN excluded.current_period_end > 0 THEN excluded.current_period_end "
    "ELSE subscriptions.current_period_end END, event_at = excluded.event_at, updated_at = excluded.updated_at "
    "WHERE excluded.event_at >= subscriptions.event_at";
static const char SQL_SUB_GET[] = "SELECT id, user_id, customer, status, current_period_end, event_at, updated_at "
                                  "FROM subscriptions WHERE id = $1";
static const char SQL_SUB_COUNT[] = "SELECT COUNT(*) FROM subscriptions WHERE status IN ('active', 'trialing')";

pq_err pq__pg_payment_event_record(pq_conn *c, const char *id, const char *type, int64_t now) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_text(&p, type);
  pq__pg_int(&p, now);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_EVENT_RECORD, &p, &err);
  if (!r) return err;
  err = PQntuples(r) == 1 ? PQ_OK : PQ_ERR_ALREADY_EXISTS; /* delivered twice, maybe to two coordinators */
  PQclear(r);
  return err;
}

pq_err pq__pg_subscription_apply(pq_conn *c, const pq_subscription *sub) {
  pq__pgp p = {0};
  pq__pg_text(&p, sub->id);
  pq__pg_text(&p, sub->user_id && *sub->user_id ? sub->user_id : NULL);
  pq__pg_text(&p, sub->customer);
  pq__pg_text(&p, sub->status);
  pq__pg_int(&p, sub->current_period_end);
  pq__pg_int(&p, sub->event_at);
  pq__pg_int(&p, sub->updated_at);
  return pq__pg_command(c, SQL_SUB_APPLY, &p, NULL);
}

static void *make_sub(const PGresult *r, int row) {
  pq_subscription *s = calloc(1, sizeof *s);
  if (!s || pq__pg_dup(r, row, 0, &s->id) || pq__pg_dup(r, row, 1, &s->user_id) || pq__pg_dup(r, row, 2, &s->customer) ||
      pq__pg_dup(r, row, 3, &s->status)) {
    pq_subscription_free(s);
    return NULL;
  }
  s->current_period_end = pq__pg_i64(r, row, 4);
  s->event_at = pq__pg_i64(r, row, 5);
  s->updated_at = pq__pg_i64(r, row, 6);
  return s;
}
static void free_sub(void *s) { pq_subscription_free(s); }

pq_err pq__pg_subscription_get(pq_conn *c, const char *id, pq_subscription **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  return pq__pg_one(c, SQL_SUB_GET, &p, make_sub, free_sub, (void **)out);
}

pq_err pq__pg_subscription_count_active(pq_conn *c, int64_t *n) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_SUB_COUNT, NULL, &err);
  if (!r) return err;
  *n = pq__pg_i64(r, 0, 0);
  PQclear(r);
  return PQ_OK;
}

/* ---- Bitcoin payments ---- */

#define BTC_COLS \
  "id, user_id, address, amount_sats, credit_micros, status, txid, confirmations, created_at, expires_at, confirmed_at"
static const char SQL_BTC_INSERT[] = "INSERT INTO btc_payments (" BTC_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                                     "$10, $11)";
static const char SQL_BTC_GET[] = "SELECT " BTC_COLS " FROM btc_payments WHERE id = $1";
/* pending and live: a payment seen for it, or not expired before live_after */
static const char SQL_BTC_BY_AMOUNT[] = "SELECT " BTC_COLS " FROM btc_payments WHERE status = 'pending' AND "
                                        "amount_sats = $1 AND ($3::int = 1 OR txid IS NOT NULL OR expires_at > $2) "
                                        "ORDER BY created_at DESC LIMIT 1 FOR UPDATE";
static const char SQL_BTC_UPDATE[] = "UPDATE btc_payments SET status = $2, txid = $3, confirmations = $4, "
                                     "confirmed_at = $5 WHERE id = $1 AND status = $6";
static const char SQL_BTC_OUTPUT[] = "INSERT INTO btc_outputs (txid, vout, amount_sats, payment_id, outcome, seen_at) "
                                     "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING txid";

static void *make_btc(const PGresult *r, int row) {
  pq_btc_payment *p = calloc(1, sizeof *p);
  if (!p || pq__pg_dup(r, row, 0, &p->id) || pq__pg_dup(r, row, 1, &p->user_id) || pq__pg_dup(r, row, 2, &p->address) ||
      pq__pg_dup(r, row, 5, &p->status) || pq__pg_dup(r, row, 6, &p->txid)) {
    pq_btc_payment_free(p);
    return NULL;
  }
  p->amount_sats = pq__pg_i64(r, row, 3);
  p->credit_micros = pq__pg_i64(r, row, 4);
  p->confirmations = pq__pg_i64(r, row, 7);
  p->created_at = pq__pg_i64(r, row, 8);
  p->expires_at = pq__pg_i64(r, row, 9);
  p->confirmed_at = pq__pg_i64(r, row, 10);
  return p;
}
static void free_btc(void *p) { pq_btc_payment_free(p); }

pq_err pq__pg_btc_payment_insert(pq_conn *c, const pq_btc_payment *p) {
  pq__pgp q = {0};
  pq__pg_text(&q, p->id);
  pq__pg_text(&q, p->user_id);
  pq__pg_text(&q, p->address);
  pq__pg_int(&q, p->amount_sats);
  pq__pg_int(&q, p->credit_micros);
  pq__pg_text(&q, p->status);
  pq__pg_text(&q, p->txid);
  pq__pg_int(&q, p->confirmations);
  pq__pg_int(&q, p->created_at);
  pq__pg_int(&q, p->expires_at);
  pq__pg_int(&q, p->confirmed_at);
  return pq__pg_command(c, SQL_BTC_INSERT, &q, NULL);
}

pq_err pq__pg_btc_payment_get(pq_conn *c, const char *id, pq_btc_payment **out) {
  pq__pgp q = {0};
  pq__pg_text(&q, id);
  return pq__pg_one(c, SQL_BTC_GET, &q, make_btc, free_btc, (void **)out);
}

pq_err pq__pg_btc_payment_by_amount(pq_conn *c, int64_t amount_sats, int64_t now, bool include_expired,
                                    pq_btc_payment **out) {
  pq__pgp q = {0};
  pq__pg_int(&q, amount_sats);
  pq__pg_int(&q, now);
  pq__pg_int(&q, include_expired);
  return pq__pg_one(c, SQL_BTC_BY_AMOUNT, &q, make_btc, free_btc, (void **)out);
}

pq_err pq__pg_btc_payment_update(pq_conn *c, const pq_btc_payment *p, const char *expect_status) {
  pq__pgp q = {0};
  pq__pg_text(&q, p->id);
  pq__pg_text(&q, p->status);
  pq__pg_text(&q, p->txid);
  pq__pg_int(&q, p->confirmations);
  pq__pg_int(&q, p->confirmed_at);
  pq__pg_text(&q, expect_status);
  int64_t changed = 0;
  pq_err result = pq__pg_command(c, SQL_BTC_UPDATE, &q, &changed);
  return result == PQ_OK && changed != 1 ? PQ_ERR_STALE : result;
}

pq_err pq__pg_btc_output_record(pq_conn *c, const char *txid, int64_t vout, int64_t amount_sats, const char *payment_id,
                                const char *outcome, int64_t now) {
  pq__pgp q = {0};
  pq__pg_text(&q, txid);
  pq__pg_int(&q, vout);
  pq__pg_int(&q, amount_sats);
  pq__pg_text(&q, payment_id);
  pq__pg_text(&q, outcome);
  pq__pg_int(&q, now);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_BTC_OUTPUT, &q, &err);
  if (!r) return err;
  err = PQntuples(r) == 1 ? PQ_OK : PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

static const char SQL_BTC_PENDING_COUNT[] = "SELECT COUNT(*) FROM (SELECT 1 FROM btc_payments WHERE user_id = $1 AND "
                                            "status = 'pending' AND expires_at > $2 LIMIT $3) AS mine";

pq_err pq__pg_btc_pending_count(pq_conn *c, const char *user_id, int64_t now, int64_t cap, int64_t *n) {
  pq__pgp q = {0};
  pq__pg_text(&q, user_id);
  pq__pg_int(&q, now);
  pq__pg_int(&q, cap);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_BTC_PENDING_COUNT, &q, &err);
  if (!r) return err;
  *n = pq__pg_i64(r, 0, 0);
  PQclear(r);
  return PQ_OK;
}
