/* The SQLite backend's money: prices, accounts and transfers (model/money.h).
 * A transfer and the balances it changes are written in the caller's
 * transaction; settling a hold is a compare-and-set on its state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/columns.h"
#include "store/sqlite/internal.h"

static const char SQL_PRICE_PUT[] = "INSERT OR REPLACE INTO prices (" PQ__PRICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_PRICE_GET[] = "SELECT " PQ__PRICE_COLS " FROM prices WHERE model = ?1";
static const char SQL_PRICE_LIST[] = "SELECT " PQ__PRICE_COLS " FROM prices ORDER BY model";
static const char SQL_ACCOUNT_GET[] = "SELECT balance, held FROM accounts WHERE id = ?1";
static const char SQL_ACCOUNT_ADD[] = "INSERT INTO accounts (id, balance, held) VALUES (?1, ?2, ?3) "
                                      "ON CONFLICT(id) DO UPDATE SET balance = balance + excluded.balance, "
                                      "held = held + excluded.held";
static const char SQL_TRANSFER_INSERT[] = "INSERT INTO transfers (" PQ__TRANSFER_COLS ") "
                                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
static const char SQL_BUDGET_PUT[] = "INSERT OR REPLACE INTO budgets (" PQ__BUDGET_COLS ") VALUES (?1, ?2, ?3, ?4)";
static const char SQL_BUDGET_DELETE[] = "DELETE FROM budgets WHERE subject = ?1 AND period = ?2";
static const char SQL_BUDGET_LIST[] = "SELECT " PQ__BUDGET_COLS " FROM budgets WHERE ?1 IS NULL OR subject = ?1 "
                                      "ORDER BY subject, period";
/* transfers_spend and transfers_key_spend: the posted range and the open holds */
static const char SQL_SPEND_ACCOUNT[] =
    "SELECT (SELECT COALESCE(SUM(posted), 0) FROM transfers WHERE debit = ?1 AND state = 'posted' AND "
    "settled_at >= ?2 AND kind IN ('hold', 'charge')), "
    "(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit = ?1 AND state = 'pending')";
static const char SQL_SPEND_KEY[] =
    "SELECT (SELECT COALESCE(SUM(posted), 0) FROM transfers WHERE key_id = ?1 AND state = 'posted' AND "
    "settled_at >= ?2 AND kind IN ('hold', 'charge')), "
    "(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE key_id = ?1 AND state = 'pending')";
static const char SQL_TRANSFER_GET[] = "SELECT " PQ__TRANSFER_COLS " FROM transfers WHERE id = ?1";
static const char SQL_TRANSFER_SETTLE[] = "UPDATE transfers SET state = ?2, posted = ?3, settled_at = ?4 "
                                          "WHERE id = ?1 AND state = 'pending'";
/* the two indexes (debit, number) and (credit, number), merged */
static const char SQL_TRANSFER_LIST_ACCOUNT[] = "SELECT " PQ__TRANSFER_COLS " FROM transfers WHERE number IN "
                                                "(SELECT number FROM transfers WHERE debit = ?1 UNION "
                                                "SELECT number FROM transfers WHERE credit = ?1) "
                                                "ORDER BY number DESC LIMIT ?2 OFFSET ?3";
static const char SQL_TRANSFER_COUNT_ACCOUNT[] = "SELECT COUNT(*) FROM (SELECT number FROM transfers WHERE debit = ?1 "
                                                 "UNION SELECT number FROM transfers WHERE credit = ?1)";
static const char SQL_TRANSFER_LIST_ALL[] = "SELECT " PQ__TRANSFER_COLS " FROM transfers ORDER BY number DESC "
                                            "LIMIT ?2 OFFSET ?3";
static const char SQL_TRANSFER_COUNT_ALL[] = "SELECT COUNT(*) FROM transfers";
static const char SQL_TOTALS[] = "SELECT COALESCE(SUM(balance), 0), COALESCE(SUM(held), 0), "
                                 "(SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE state = 'pending') FROM accounts";

static void *make_price(sqlite3_stmt *st) {
  pq_price *p = calloc(1, sizeof *p);
  if (!p || pq__sq_col_dup(st, 0, &p->model)) {
    pq_price_free(p);
    return NULL;
  }
  p->input_per_mtok = sqlite3_column_int64(st, 1);
  p->output_per_mtok = sqlite3_column_int64(st, 2);
  p->cost_input_per_mtok = sqlite3_column_int64(st, 3);
  p->cost_output_per_mtok = sqlite3_column_int64(st, 4);
  p->updated_at = sqlite3_column_int64(st, 5);
  return p;
}
static void free_price(void *p) { pq_price_free(p); }

static pq_transfer_state parse_state(const unsigned char *s) {
  if (s && strcmp((const char *)s, "pending") == 0) return PQ_TRANSFER_PENDING;
  if (s && strcmp((const char *)s, "voided") == 0) return PQ_TRANSFER_VOIDED;
  return PQ_TRANSFER_POSTED;
}

static void *make_transfer(sqlite3_stmt *st) {
  pq_transfer *t = calloc(1, sizeof *t);
  if (!t || pq__sq_col_dup(st, 0, &t->id) || pq__sq_col_dup(st, 1, &t->debit) || pq__sq_col_dup(st, 2, &t->credit) ||
      pq__sq_col_dup(st, 4, &t->kind) || pq__sq_col_dup(st, 5, &t->job_id)) {
    pq_transfer_free(t);
    return NULL;
  }
  t->amount = sqlite3_column_int64(st, 3);
  t->state = parse_state(sqlite3_column_text(st, 6));
  t->posted = sqlite3_column_int64(st, 7);
  t->created_at = sqlite3_column_int64(st, 8);
  t->settled_at = sqlite3_column_int64(st, 9);
  if (pq__sq_col_dup(st, 10, &t->key_id)) {
    pq_transfer_free(t);
    return NULL;
  }
  return t;
}
static void free_transfer(void *t) { pq_transfer_free(t); }

pq_err pq__sq_price_put(pq_conn *c, const pq_price *p) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_PRICE_PUT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, p->model);
  sqlite3_bind_int64(st, 2, p->input_per_mtok);
  sqlite3_bind_int64(st, 3, p->output_per_mtok);
  sqlite3_bind_int64(st, 4, p->cost_input_per_mtok);
  sqlite3_bind_int64(st, 5, p->cost_output_per_mtok);
  sqlite3_bind_int64(st, 6, p->updated_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "set a price");
}

pq_err pq__sq_price_get(pq_conn *c, const char *model, pq_price **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_PRICE_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, model);
  return pq__sq_one_row(c, st, make_price, free_price, (void **)out);
}

pq_err pq__sq_price_list(pq_conn *c, pq_price ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_PRICE_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  return pq__sq_collect_rows(c, st, make_price, free_price, (void ***)out, n);
}

pq_err pq__sq_account_get(pq_conn *c, const char *id, pq_account *out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_ACCOUNT_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  *out = (pq_account){0};
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->balance = sqlite3_column_int64(st, 0);
    out->held = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "read an account");
}

static pq_err account_add(pq_conn *c, const char *id, int64_t balance, int64_t held) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_ACCOUNT_ADD);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  sqlite3_bind_int64(st, 2, balance);
  sqlite3_bind_int64(st, 3, held);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "change an account");
}

/* What a transfer does to its accounts: a posted one moves amount, a pending one reserves it. */
static pq_err apply(pq_conn *c, const char *debit, const char *credit, int64_t moved, int64_t held) {
  pq_err result = PQ_OK;
  if (moved || held) result = account_add(c, debit, -moved, held);
  if (result == PQ_OK && moved) result = account_add(c, credit, moved, 0);
  return result;
}

pq_err pq__sq_transfer_insert(pq_conn *c, const pq_transfer *t) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_TRANSFER_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, t->id);
  pq__sq_bind_text(st, 2, t->debit);
  pq__sq_bind_text(st, 3, t->credit);
  sqlite3_bind_int64(st, 4, t->amount);
  pq__sq_bind_text(st, 5, t->kind);
  pq__sq_bind_text(st, 6, t->job_id);
  pq__sq_bind_text(st, 7, pq_transfer_state_name(t->state));
  sqlite3_bind_int64(st, 8, t->state == PQ_TRANSFER_POSTED ? t->amount : 0);
  sqlite3_bind_int64(st, 9, t->created_at);
  sqlite3_bind_int64(st, 10, t->state == PQ_TRANSFER_POSTED ? t->created_at : 0);
  pq__sq_bind_text(st, 11, t->key_id);
  pq_err result = pq__sq_done_or_constraint(c, pq__sq_step_done(st), "record a transfer");
  if (result != PQ_OK) return result;
  return t->state == PQ_TRANSFER_PENDING ? apply(c, t->debit, t->credit, 0, t->amount)
                                         : apply(c, t->debit, t->credit, t->amount, 0);
}

pq_err pq__sq_transfer_get(pq_conn *c, const char *id, pq_transfer **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_TRANSFER_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_transfer, free_transfer, (void **)out);
}

pq_err pq__sq_transfer_settle(pq_conn *c, const char *id, pq_transfer_state to, int64_t posted, int64_t now) {
  pq_transfer *t = NULL;
  pq_err result = pq__sq_transfer_get(c, id, &t);
  if (result != PQ_OK) return result;
  if (t->state != PQ_TRANSFER_PENDING || posted < 0 || posted > t->amount || to == PQ_TRANSFER_PENDING) {
    result = t->state != PQ_TRANSFER_PENDING ? PQ_ERR_STALE : PQ_ERR_INTERNAL;
    pq_transfer_free(t);
    return result;
  }
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_TRANSFER_SETTLE);
  if (!st) result = PQ_ERR_STORE_FAILED;
  else {
    pq__sq_bind_text(st, 1, id);
    pq__sq_bind_text(st, 2, pq_transfer_state_name(to));
    sqlite3_bind_int64(st, 3, to == PQ_TRANSFER_POSTED ? posted : 0);
    sqlite3_bind_int64(st, 4, now);
    result = pq__sq_done_or_constraint(c, pq__sq_step_done(st), "settle a hold");
    if (result == PQ_OK && sqlite3_changes(c->db) != 1) result = PQ_ERR_STALE;
  }
  if (result == PQ_OK) result = apply(c, t->debit, t->credit, to == PQ_TRANSFER_POSTED ? posted : 0, -t->amount);
  pq_transfer_free(t);
  return result;
}

pq_err pq__sq_transfer_list(pq_conn *c, const char *account, int64_t limit, int64_t offset, pq_transfer ***out,
                            size_t *n, int64_t *total) {
  sqlite3_stmt *count = pq__sq_stmt(c, account ? SQL_TRANSFER_COUNT_ACCOUNT : SQL_TRANSFER_COUNT_ALL);
  if (!count) return PQ_ERR_STORE_FAILED;
  if (account) pq__sq_bind_text(count, 1, account);
  pq_err result = pq__sq_count_one(c, count, total);
  if (result != PQ_OK) return result;
  sqlite3_stmt *st = pq__sq_stmt(c, account ? SQL_TRANSFER_LIST_ACCOUNT : SQL_TRANSFER_LIST_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (account) pq__sq_bind_text(st, 1, account);
  sqlite3_bind_int64(st, 2, limit);
  sqlite3_bind_int64(st, 3, offset);
  return pq__sq_collect_rows(c, st, make_transfer, free_transfer, (void ***)out, n);
}

pq_err pq__sq_ledger_totals(pq_conn *c, int64_t *balance_sum, int64_t *held_sum, int64_t *pending_sum) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_TOTALS);
  if (!st) return PQ_ERR_STORE_FAILED;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *balance_sum = sqlite3_column_int64(st, 0);
    *held_sum = sqlite3_column_int64(st, 1);
    *pending_sum = sqlite3_column_int64(st, 2);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? PQ_OK : pq__sq_fail(c->db, "sum the ledger");
}

static const char SQL_LEDGER_SUMS[] = "SELECT kind, SUM(posted) FROM transfers WHERE state = 'posted' AND "
                                      "settled_at >= ?1 AND settled_at < ?2 GROUP BY kind ORDER BY kind";
/* a council's children are in their parent's row: only jobs of their own count */
#define REPORT_SQL(key)                                                                                         \
  "SELECT " key " AS k, COUNT(*), SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), SUM(prompt_tokens), " \
  "SUM(completion_tokens), SUM(cost_micros) FROM jobs WHERE finished_at >= ?1 AND finished_at < ?2 AND "       \
  "finished_at > 0 AND parent_id IS NULL GROUP BY k ORDER BY k"
static const char SQL_REPORT_MODEL[] = REPORT_SQL("model");
static const char SQL_REPORT_USER[] = REPORT_SQL("owner");
static const char SQL_REPORT_DAY[] = REPORT_SQL("strftime('%Y-%m-%d', finished_at / 1000, 'unixepoch')");

pq_err pq__sq_ledger_sums(pq_conn *c, int64_t from, int64_t to, void (*fn)(void *ctx, const char *kind, int64_t amount),
                          void *ctx) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_LEDGER_SUMS);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, from);
  sqlite3_bind_int64(st, 2, to);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1));
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "sum the ledger by kind");
}

pq_err pq__sq_job_report(pq_conn *c, int64_t from, int64_t to, pq_report_by by,
                         void (*fn)(void *ctx, const pq_report_row *row), void *ctx) {
  sqlite3_stmt *st = pq__sq_stmt(c, by == PQ_REPORT_BY_MODEL ? SQL_REPORT_MODEL
                                    : by == PQ_REPORT_BY_USER ? SQL_REPORT_USER
                                                              : SQL_REPORT_DAY);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, from);
  sqlite3_bind_int64(st, 2, to);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *key = sqlite3_column_text(st, 0);
    pq_report_row row = {.key = key ? (const char *)key : "", .jobs = sqlite3_column_int64(st, 1),
                         .completed = sqlite3_column_int64(st, 2), .prompt_tokens = sqlite3_column_int64(st, 3),
                         .completion_tokens = sqlite3_column_int64(st, 4), .cost_micros = sqlite3_column_int64(st, 5)};
    fn(ctx, &row);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "report on jobs");
}

static void free_budget(void *b) {
  pq_budget *one = b;
  free(one->subject);
  free(one->period);
  free(one);
}

static void *make_budget(sqlite3_stmt *st) {
  pq_budget *b = calloc(1, sizeof *b);
  if (!b || pq__sq_col_dup(st, 0, &b->subject) || pq__sq_col_dup(st, 1, &b->period)) {
    if (b) free_budget(b);
    return NULL;
  }
  b->limit_micros = sqlite3_column_int64(st, 2);
  b->updated_at = sqlite3_column_int64(st, 3);
  return b;
}

pq_err pq__sq_budget_put(pq_conn *c, const pq_budget *b) {
  sqlite3_stmt *st = pq__sq_stmt(c, b->limit_micros > 0 ? SQL_BUDGET_PUT : SQL_BUDGET_DELETE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, b->subject);
  pq__sq_bind_text(st, 2, b->period);
  if (b->limit_micros > 0) {
    sqlite3_bind_int64(st, 3, b->limit_micros);
    sqlite3_bind_int64(st, 4, b->updated_at);
  }
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "set a budget");
}

pq_err pq__sq_budget_list(pq_conn *c, const char *subject, pq_budget ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BUDGET_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, subject);
  return pq__sq_collect_rows(c, st, make_budget, free_budget, (void ***)out, n);
}

pq_err pq__sq_spend(pq_conn *c, const char *subject, int64_t since, int64_t *posted, int64_t *pending) {
  bool key = strncmp(subject, "key:", 4) == 0;
  sqlite3_stmt *st = pq__sq_stmt(c, key ? SQL_SPEND_KEY : SQL_SPEND_ACCOUNT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, key ? subject + 4 : subject);
  sqlite3_bind_int64(st, 2, since);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *posted = sqlite3_column_int64(st, 0);
    *pending = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? PQ_OK : pq__sq_fail(c->db, "sum a budget's spending");
}

/* one writer, one transaction at a time: nothing else can spend meanwhile */
pq_err pq__sq_subject_lock(pq_conn *c, const char *subject) {
  (void)c, (void)subject;
  return PQ_OK;
}

/* ---- payments ---- */

static const char SQL_EVENT_RECORD[] = "INSERT INTO payment_events (id, type, received_at) VALUES (?1, ?2, ?3)";
/* an older event never overwrites a newer one; a missing user or customer keeps the stored one */
static const char SQL_SUB_APPLY[] =
    "INSERT INTO subscriptions (id, user_id, customer, status, current_period_end, event_at, updated_at) "
    "VALUES (?1, COALESCE(?2, ''), ?3, COALESCE(?4, 'active'), ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
    "user_id = CASE WHEN excluded.user_id <> '' THEN excluded.user_id ELSE subscriptions.user_id END, "
    "customer = COALESCE(excluded.customer, subscriptions.customer), "
    "status = COALESCE(?4, subscriptions.status), "
    "current_period_end = CASE WHEN excluded.current_period_end > 0 THEN excluded.current_period_end "
    "ELSE subscriptions.current_period_end END, event_at = excluded.event_at, updated_at = excluded.updated_at "
    "WHERE excluded.event_at >= subscriptions.event_at";
static const char SQL_SUB_GET[] = "SELECT id, user_id, customer, status, current_period_end, event_at, updated_at "
                                  "FROM subscriptions WHERE id = ?1";
static const char SQL_SUB_COUNT[] = "SELECT COUNT(*) FROM subscriptions WHERE status IN ('active', 'trialing')";

pq_err pq__sq_payment_event_record(pq_conn *c, const char *id, const char *type, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_EVENT_RECORD);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  pq__sq_bind_text(st, 2, type);
  sqlite3_bind_int64(st, 3, now);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "record a payment event");
}

pq_err pq__sq_subscription_apply(pq_conn *c, const pq_subscription *sub) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_SUB_APPLY);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, sub->id);
  pq__sq_bind_text(st, 2, sub->user_id && *sub->user_id ? sub->user_id : NULL);
  pq__sq_bind_text(st, 3, sub->customer);
  pq__sq_bind_text(st, 4, sub->status);
  sqlite3_bind_int64(st, 5, sub->current_period_end);
  sqlite3_bind_int64(st, 6, sub->event_at);
  sqlite3_bind_int64(st, 7, sub->updated_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "record a subscription");
}

static void *make_sub(sqlite3_stmt *st) {
  pq_subscription *s = calloc(1, sizeof *s);
  if (!s || pq__sq_col_dup(st, 0, &s->id) || pq__sq_col_dup(st, 1, &s->user_id) || pq__sq_col_dup(st, 2, &s->customer) ||
      pq__sq_col_dup(st, 3, &s->status)) {
    pq_subscription_free(s);
    return NULL;
  }
  s->current_period_end = sqlite3_column_int64(st, 4);
  s->event_at = sqlite3_column_int64(st, 5);
  s->updated_at = sqlite3_column_int64(st, 6);
  return s;
}
static void free_sub(void *s) { pq_subscription_free(s); }

pq_err pq__sq_subscription_get(pq_conn *c, const char *id, pq_subscription **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_SUB_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_sub, free_sub, (void **)out);
}

pq_err pq__sq_subscription_count_active(pq_conn *c, int64_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_SUB_COUNT);
  if (!st) return PQ_ERR_STORE_FAILED;
  return pq__sq_count_one(c, st, n);
}

/* ---- Bitcoin payments ---- */

#define BTC_COLS \
  "id, user_id, address, amount_sats, credit_micros, status, txid, confirmations, created_at, expires_at, confirmed_at"
static const char SQL_BTC_INSERT[] = "INSERT INTO btc_payments (" BTC_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                     "?10, ?11)";
static const char SQL_BTC_GET[] = "SELECT " BTC_COLS " FROM btc_payments WHERE id = ?1";
/* pending and live: a payment seen for it, or not expired before live_after */
static const char SQL_BTC_BY_AMOUNT[] = "SELECT " BTC_COLS " FROM btc_payments WHERE status = 'pending' AND "
                                        "amount_sats = ?1 AND (?3 OR txid IS NOT NULL OR expires_at > ?2) "
                                        "ORDER BY created_at DESC LIMIT 1";
static const char SQL_BTC_UPDATE[] = "UPDATE btc_payments SET status = ?2, txid = ?3, confirmations = ?4, "
                                     "confirmed_at = ?5 WHERE id = ?1 AND status = ?6";
static const char SQL_BTC_OUTPUT[] = "INSERT INTO btc_outputs (txid, vout, amount_sats, payment_id, outcome, seen_at) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static void *make_btc(sqlite3_stmt *st) {
  pq_btc_payment *p = calloc(1, sizeof *p);
  if (!p || pq__sq_col_dup(st, 0, &p->id) || pq__sq_col_dup(st, 1, &p->user_id) || pq__sq_col_dup(st, 2, &p->address) ||
      pq__sq_col_dup(st, 5, &p->status) || pq__sq_col_dup(st, 6, &p->txid)) {
    pq_btc_payment_free(p);
    return NULL;
  }
  p->amount_sats = sqlite3_column_int64(st, 3);
  p->credit_micros = sqlite3_column_int64(st, 4);
  p->confirmations = sqlite3_column_int64(st, 7);
  p->created_at = sqlite3_column_int64(st, 8);
  p->expires_at = sqlite3_column_int64(st, 9);
  p->confirmed_at = sqlite3_column_int64(st, 10);
  return p;
}
static void free_btc(void *p) { pq_btc_payment_free(p); }

pq_err pq__sq_btc_payment_insert(pq_conn *c, const pq_btc_payment *p) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BTC_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, p->id);
  pq__sq_bind_text(st, 2, p->user_id);
  pq__sq_bind_text(st, 3, p->address);
  sqlite3_bind_int64(st, 4, p->amount_sats);
  sqlite3_bind_int64(st, 5, p->credit_micros);
  pq__sq_bind_text(st, 6, p->status);
  pq__sq_bind_text(st, 7, p->txid);
  sqlite3_bind_int64(st, 8, p->confirmations);
  sqlite3_bind_int64(st, 9, p->created_at);
  sqlite3_bind_int64(st, 10, p->expires_at);
  sqlite3_bind_int64(st, 11, p->confirmed_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "record a bitcoin payment");
}

pq_err pq__sq_btc_payment_get(pq_conn *c, const char *id, pq_btc_payment **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BTC_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_btc, free_btc, (void **)out);
}

pq_err pq__sq_btc_payment_by_amount(pq_conn *c, int64_t amount_sats, int64_t now, bool include_expired,
                                    pq_btc_payment **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BTC_BY_AMOUNT);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, amount_sats);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int(st, 3, include_expired);
  return pq__sq_one_row(c, st, make_btc, free_btc, (void **)out);
}

pq_err pq__sq_btc_payment_update(pq_conn *c, const pq_btc_payment *p, const char *expect_status) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BTC_UPDATE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, p->id);
  pq__sq_bind_text(st, 2, p->status);
  pq__sq_bind_text(st, 3, p->txid);
  sqlite3_bind_int64(st, 4, p->confirmations);
  sqlite3_bind_int64(st, 5, p->confirmed_at);
  pq__sq_bind_text(st, 6, expect_status);
  pq_err result = pq__sq_done_or_constraint(c, pq__sq_step_done(st), "update a bitcoin payment");
  return result == PQ_OK && sqlite3_changes(c->db) != 1 ? PQ_ERR_STALE : result;
}

pq_err pq__sq_btc_output_record(pq_conn *c, const char *txid, int64_t vout, int64_t amount_sats, const char *payment_id,
                                const char *outcome, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BTC_OUTPUT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, txid);
  sqlite3_bind_int64(st, 2, vout);
  sqlite3_bind_int64(st, 3, amount_sats);
  pq__sq_bind_text(st, 4, payment_id);
  pq__sq_bind_text(st, 5, outcome);
  sqlite3_bind_int64(st, 6, now);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "record a bitcoin output");
}

static const char SQL_BTC_PENDING_COUNT[] = "SELECT COUNT(*) FROM (SELECT 1 FROM btc_payments WHERE user_id = ?1 AND "
                                            "status = 'pending' AND expires_at > ?2 LIMIT ?3) AS mine";

pq_err pq__sq_btc_pending_count(pq_conn *c, const char *user_id, int64_t now, int64_t cap, int64_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_BTC_PENDING_COUNT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, user_id);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int64(st, 3, cap);
  return pq__sq_count_one(c, st, n);
}
