/* The SQLite store backend: WAL, synchronous=FULL by default, BEGIN IMMEDIATE,
 * a busy timeout, prepared statements cached per connection, and a small
 * pool of read connections. The coordinator batches many operations into one
 * write transaction (group commit), so one fsync covers many jobs.
 *
 * This file: connections, transactions, migrations and the ops table. The
 * queries live by area: jobs.c, events.c, workers.c, identity.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/sqlite/internal.h"

typedef struct {
  pq_store base;
  char *path;
  bool sync_full;
  int busy_timeout_ms;
  int read_pool_size;
  pthread_mutex_t mu;
  pq_conn *free_readers;
  pq_conn *writer;
} sqlite_store;

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SYNC_FULL[] = "PRAGMA synchronous=FULL";
static const char SQL_SYNC_NORMAL[] = "PRAGMA synchronous=NORMAL";

/* ---- connections ---- */

pq_err pq__sq_fail(sqlite3 *db, const char *what) {
  int code = sqlite3_extended_errcode(db);
  pq_error("sqlite: %s: %s (%d)", what, sqlite3_errmsg(db), code);
  return (code & 0xff) == SQLITE_NOMEM ? PQ_ERR_NO_MEMORY : PQ_ERR_STORE_FAILED;
}

static pq_err exec_sql(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return PQ_OK;
  pq_error("sqlite: %s: %s", sql, msg ? msg : "?");
  sqlite3_free(msg);
  return PQ_ERR_STORE_FAILED;
}

static void conn_close(pq_conn *c) {
  if (!c) return;
  for (int i = 0; i < PQ__SQ_STMT_SLOTS; i++) sqlite3_finalize(c->cache[i].st);
  for (int i = 0; i < PQ__SQ_LIST_VARIANTS; i++) sqlite3_finalize(c->lists[i]);
  sqlite3_close(c->db);
  free(c);
}

static pq_conn *conn_open(sqlite_store *s, bool writer) {
  pq_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->writer = writer;
  c->sync_full = c->may_sync = s->sync_full;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(s->path, &c->db, flags, NULL) != SQLITE_OK) {
    pq_error("sqlite: cannot open %s: %s", s->path, c->db ? sqlite3_errmsg(c->db) : "no memory");
    conn_close(c);
    return NULL;
  }
  sqlite3_busy_timeout(c->db, s->busy_timeout_ms);
  char pragmas[256];
  snprintf(pragmas, sizeof pragmas,
           "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;%s",
           s->sync_full ? "FULL" : "NORMAL", writer ? "" : " PRAGMA query_only=ON;");
  if (exec_sql(c->db, pragmas) != PQ_OK) {
    conn_close(c);
    return NULL;
  }
  return c;
}

sqlite3_stmt *pq__sq_stmt(pq_conn *c, const char *sql) {
  /* open addressing on the text's address: every statement is a constant */
  size_t slot = (size_t)(((uintptr_t)sql >> 3) * 0x9E3779B97F4A7C15ull >> 57) % PQ__SQ_STMT_SLOTS;
  for (size_t probe = 0; probe < PQ__SQ_STMT_SLOTS; probe++, slot = (slot + 1) % PQ__SQ_STMT_SLOTS) {
    if (c->cache[slot].sql == sql) return c->cache[slot].st;
    if (c->cache[slot].sql) continue;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
      pq__sq_fail(c->db, sql);
      return NULL;
    }
    c->cache[slot].sql = sql;
    c->cache[slot].st = st;
    return st;
  }
  pq_error("sqlite: more than %d statements; raise PQ__SQ_STMT_SLOTS", PQ__SQ_STMT_SLOTS);
  return NULL;
}

static pq_conn *sq_acquire(pq_store *base, pq_conn_kind kind) {
  sqlite_store *s = (sqlite_store *)base;
  pq_conn *c = NULL;
  pthread_mutex_lock(&s->mu);
  if (kind == PQ_CONN_WRITE) {
    c = s->writer;
    s->writer = NULL;
  } else if ((c = s->free_readers)) {
    s->free_readers = c->next_free;
  }
  pthread_mutex_unlock(&s->mu);
  if (!c) c = conn_open(s, kind == PQ_CONN_WRITE); /* write: only when none was kept */
  return c;
}

static void sq_release(pq_store *base, pq_conn *c) {
  sqlite_store *s = (sqlite_store *)base;
  if (!c) return;
  if (!sqlite3_get_autocommit(c->db)) exec_sql(c->db, "ROLLBACK"); /* never pool an open txn */
  pthread_mutex_lock(&s->mu);
  if (c->writer) {
    if (!s->writer) {
      s->writer = c;
      c = NULL;
    }
  } else {
    int pooled = 0;
    for (pq_conn *r = s->free_readers; r; r = r->next_free) pooled++;
    if (pooled < s->read_pool_size) {
      c->next_free = s->free_readers;
      s->free_readers = c;
      c = NULL;
    }
  }
  pthread_mutex_unlock(&s->mu);
  conn_close(c); /* beyond the pool's size */
}

/* ---- open, close, migrate ---- */

static int current_version(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int v = 0;
  if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

static pq_err record_migration(sqlite3 *db, int version) {
  char record[128];
  snprintf(record, sizeof record, "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)",
           version, (long long)pq_now_ms());
  return exec_sql(db, record);
}

static pq_err sq_migrate(pq_store *base, int *applied) {
  sqlite_store *s = (sqlite_store *)base;
  pq_err result = PQ_OK;
  int count = 0;
  pq_conn *c = sq_acquire(base, PQ_CONN_WRITE);
  if (!c) return PQ_ERR_STORE_FAILED;
  if ((result = exec_sql(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")))
    goto out;
  for (;;) {
    if ((result = exec_sql(c->db, "BEGIN IMMEDIATE"))) goto out;
    int v = current_version(c->db); /* re-read under the write lock: another process may migrate */
    if (v >= pq__sqlite_migrations_count) {
      exec_sql(c->db, "COMMIT");
      break;
    }
    if ((result = exec_sql(c->db, pq__sqlite_migrations[v])) || (result = record_migration(c->db, v + 1)) ||
        (result = exec_sql(c->db, "COMMIT"))) {
      exec_sql(c->db, "ROLLBACK");
      goto out;
    }
    pq_info("store: applied migration %d to %s", v + 1, s->path);
    count++;
  }
out:
  sq_release(base, c);
  if (applied) *applied = count;
  return result;
}

static int sq_schema_version(pq_store *base) {
  pq_conn *c = sq_acquire(base, PQ_CONN_READ);
  if (!c) return -1;
  int v = current_version(c->db);
  sq_release(base, c);
  return v;
}

static void sq_close(pq_store *base) {
  sqlite_store *s = (sqlite_store *)base;
  if (!s) return;
  while (s->free_readers) {
    pq_conn *c = s->free_readers;
    s->free_readers = c->next_free;
    conn_close(c);
  }
  conn_close(s->writer);
  pthread_mutex_destroy(&s->mu);
  free(s->path);
  free(s);
}

static pq_err sq_open(const pq_store_config *cfg, pq_store **out) {
  sqlite_store *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(cfg->path))) {
    free(s);
    return PQ_ERR_NO_MEMORY;
  }
  s->base.ops = &pq_store_sqlite_ops;
  s->sync_full = cfg->sync_full;
  s->busy_timeout_ms = cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000;
  s->read_pool_size = cfg->read_pool_size > 0 ? cfg->read_pool_size : 8;
  pthread_mutex_init(&s->mu, NULL);
  if (!(s->writer = conn_open(s, true))) {
    sq_close(&s->base);
    return PQ_ERR_STORE_FAILED;
  }
  *out = &s->base;
  return PQ_OK;
}

/* ---- transactions ---- */

static pq_err run_simple(pq_conn *c, const char *sql) {
  sqlite3_stmt *st = pq__sq_stmt(c, sql);
  if (!st) return PQ_ERR_STORE_FAILED;
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, sql);
}

static pq_err sq_begin(pq_conn *c, bool durable) {
  bool full = durable && c->may_sync;
  if (full != c->sync_full) { /* a pragma, so only between transactions */
    pq_err result = run_simple(c, full ? SQL_SYNC_FULL : SQL_SYNC_NORMAL);
    if (result != PQ_OK) return result;
    c->sync_full = full;
  }
  return run_simple(c, SQL_BEGIN);
}
static pq_err sq_commit(pq_conn *c) { return run_simple(c, SQL_COMMIT); }
static void sq_rollback(pq_conn *c) {
  if (!sqlite3_get_autocommit(c->db)) run_simple(c, SQL_ROLLBACK);
}

/* ---- helpers for the area files ---- */

void pq__sq_bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, i);
}

void pq__sq_bind_ms(sqlite3_stmt *st, int i, int64_t v) {
  if (v) sqlite3_bind_int64(st, i, v);
  else sqlite3_bind_null(st, i);
}

int pq__sq_col_dup(sqlite3_stmt *st, int i, char **out) {
  const unsigned char *v = sqlite3_column_text(st, i);
  if (!v) {
    *out = NULL;
    return 0;
  }
  return (*out = strdup((const char *)v)) ? 0 : -1;
}

int pq__sq_step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

pq_err pq__sq_changed_one(pq_conn *c, sqlite3_stmt *st, const char *what) {
  if (pq__sq_step_done(st) != SQLITE_DONE) return pq__sq_fail(c->db, what);
  return sqlite3_changes(c->db) ? PQ_OK : PQ_ERR_NOT_FOUND;
}

pq_err pq__sq_count_one(pq_conn *c, sqlite3_stmt *st, int64_t *count) {
  int rc = sqlite3_step(st);
  *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_ROW ? PQ_OK : pq__sq_fail(c->db, sqlite3_sql(st));
}

pq_err pq__sq_collect_rows(pq_conn *c, sqlite3_stmt *st, void *(*make)(sqlite3_stmt *),
                           void (*free_one)(void *), void ***out, size_t *n) {
  pq_err result = PQ_OK;
  void **list = NULL;
  size_t len = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (len == cap) {
      cap = cap ? cap * 2 : 16;
      void **grown = realloc(list, cap * sizeof *grown);
      if (!grown) {
        result = PQ_ERR_NO_MEMORY;
        break;
      }
      list = grown;
    }
    if (!(list[len] = make(st))) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    len++;
  }
  if (result == PQ_OK && rc != SQLITE_DONE) result = pq__sq_fail(c->db, sqlite3_sql(st));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (result != PQ_OK) {
    for (size_t i = 0; i < len; i++) free_one(list[i]);
    free(list);
    list = NULL;
    len = 0;
  }
  *out = list;
  *n = len;
  return result;
}

pq_err pq__sq_one_row(pq_conn *c, sqlite3_stmt *st, void *(*make)(sqlite3_stmt *), void (*free_one)(void *),
                      void **out) {
  void **list;
  size_t n;
  pq_err result = pq__sq_collect_rows(c, st, make, free_one, &list, &n);
  if (result != PQ_OK) return result;
  if (n > 0) *out = list[0];
  for (size_t i = 1; i < n; i++) free_one(list[i]);
  free(list);
  return n > 0 ? PQ_OK : PQ_ERR_NOT_FOUND;
}

pq_err pq__sq_done_or_constraint(pq_conn *c, int rc, const char *what) {
  if (rc == SQLITE_DONE) return PQ_OK;
  if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT) return PQ_ERR_ALREADY_EXISTS;
  return pq__sq_fail(c->db, what);
}

const pq_store_ops pq_store_sqlite_ops = {
    .name = "sqlite",
    .single_coordinator = true,
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .acquire = sq_acquire,
    .release = sq_release,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .job_insert = pq__sq_job_insert,
    .job_get = pq__sq_job_get,
    .job_get_by_idempotency_key = pq__sq_job_get_by_idem,
    .job_peek = pq__sq_job_peek,
    .job_update = pq__sq_job_update,
    .job_list = pq__sq_job_list,
    .job_scan_queued = pq__sq_job_scan_queued,
    .job_scan_due = pq__sq_job_scan_due,
    .job_pick = pq__sq_job_pick,
    .turn_charge = pq__sq_turn_charge,
    .job_set_model = pq__sq_job_set_model,
    .job_extend_leases = pq__sq_job_extend_leases,
    .job_cancel_requested = pq__sq_job_cancel_requested,
    .job_end_leases = pq__sq_job_end_leases,
    .job_leased_by = pq__sq_job_leased_by,
    .job_count = pq__sq_job_count,
    .job_ahead = pq__sq_job_ahead,
    .event_append = pq__sq_event_append,
    .event_list = pq__sq_event_list,
    .worker_insert = pq__sq_worker_insert,
    .worker_get = pq__sq_worker_get,
    .worker_touch = pq__sq_worker_touch,
    .worker_mark_offline = pq__sq_worker_mark_offline,
    .worker_count_online = pq__sq_worker_count_online,
    .worker_list_online = pq__sq_worker_list_online,
    .job_count_queued_by_owner = pq__sq_job_count_queued_by_owner,
    .job_delete = pq__sq_job_delete,
    .job_children = pq__sq_job_children,
    .file_insert = pq__sq_file_insert,
    .file_get = pq__sq_file_get,
    .file_list = pq__sq_file_list,
    .file_delete = pq__sq_file_delete,
    .webhook_insert = pq__sq_webhook_insert,
    .webhook_get = pq__sq_webhook_get,
    .webhook_job_secret = pq__sq_webhook_job_secret,
    .webhook_list = pq__sq_webhook_list,
    .webhook_delete = pq__sq_webhook_delete,
    .webhook_set_secret = pq__sq_webhook_set_secret,
    .delivery_insert = pq__sq_delivery_insert,
    .delivery_get = pq__sq_delivery_get,
    .delivery_due = pq__sq_delivery_due,
    .delivery_next_at = pq__sq_delivery_next_at,
    .delivery_update = pq__sq_delivery_update,
    .delivery_list = pq__sq_delivery_list,
    .delivery_sweep = pq__sq_delivery_sweep,
    .worker_set_capabilities = pq__sq_worker_set_capabilities,
    .job_count_active = pq__sq_job_count_active,
    .job_totals = pq__sq_job_totals,
    .user_insert = pq__sq_user_insert,
    .user_get = pq__sq_user_get,
    .user_list = pq__sq_user_list,
    .user_set_disabled = pq__sq_user_set_disabled,
    .key_insert = pq__sq_key_insert,
    .key_get_by_hash = pq__sq_key_get_by_hash,
    .key_list = pq__sq_key_list,
    .key_rebind = pq__sq_key_rebind,
    .challenge_insert = pq__sq_challenge_insert,
    .challenge_take = pq__sq_challenge_take,
    .challenge_sweep = pq__sq_challenge_sweep,
    .price_put = pq__sq_price_put,
    .price_get = pq__sq_price_get,
    .price_list = pq__sq_price_list,
    .account_get = pq__sq_account_get,
    .subject_lock = pq__sq_subject_lock,
    .transfer_insert = pq__sq_transfer_insert,
    .transfer_settle = pq__sq_transfer_settle,
    .transfer_get = pq__sq_transfer_get,
    .transfer_list = pq__sq_transfer_list,
    .ledger_totals = pq__sq_ledger_totals,
    .btc_payment_insert = pq__sq_btc_payment_insert,
    .btc_payment_get = pq__sq_btc_payment_get,
    .btc_payment_by_amount = pq__sq_btc_payment_by_amount,
    .btc_payment_update = pq__sq_btc_payment_update,
    .btc_pending_count = pq__sq_btc_pending_count,
    .btc_output_record = pq__sq_btc_output_record,
    .payment_event_record = pq__sq_payment_event_record,
    .subscription_apply = pq__sq_subscription_apply,
    .subscription_get = pq__sq_subscription_get,
    .subscription_count_active = pq__sq_subscription_count_active,
    .budget_put = pq__sq_budget_put,
    .budget_list = pq__sq_budget_list,
    .spend = pq__sq_spend,
    .ledger_sums = pq__sq_ledger_sums,
    .job_report = pq__sq_job_report,
    .key_revoke = pq__sq_key_revoke,
};
