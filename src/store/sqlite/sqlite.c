/* The SQLite store backend: WAL, synchronous=FULL by default, BEGIN IMMEDIATE,
 * a busy timeout, prepared statements cached per connection, and a small
 * pool of read connections. The coordinator batches many operations into one
 * write transaction (group commit), so one fsync covers many jobs. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "store/store.h"

/* ---- schema migrations: append only; each runs once, in its own transaction ---- */

static const char *const migrations[] = {
    /* 1: jobs and workers */
    "CREATE TABLE jobs ("
    "  number INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  model TEXT NOT NULL,"
    "  input TEXT NOT NULL,"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts INTEGER NOT NULL,"
    "  lease_timeout_ms INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  not_before INTEGER NOT NULL DEFAULT 0,"
    "  expires_at INTEGER,"
    "  leased_at INTEGER,"
    "  finished_at INTEGER,"
    "  worker_id TEXT,"
    "  lease_token TEXT,"
    "  lease_expires_at INTEGER,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  output TEXT,"
    "  prompt_tokens INTEGER,"
    "  completion_tokens INTEGER,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  idempotency_key TEXT,"
    "  request_hash TEXT);"
    "CREATE INDEX jobs_state ON jobs(state, number);"
    "CREATE INDEX jobs_model ON jobs(model, number);"
    "CREATE INDEX jobs_lease_due ON jobs(lease_expires_at) WHERE state = 'leased';"
    "CREATE INDEX jobs_ttl_due ON jobs(expires_at)"
    "  WHERE state = 'queued' AND expires_at IS NOT NULL;"
    "CREATE INDEX jobs_worker ON jobs(worker_id) WHERE state = 'leased';"
    "CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key)"
    "  WHERE idempotency_key IS NOT NULL;"
    "CREATE TABLE workers ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  models TEXT NOT NULL,"
    "  capabilities TEXT NOT NULL,"
    "  online INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL,"
    "  last_seen_at INTEGER NOT NULL);"
    "CREATE INDEX workers_online ON workers(last_seen_at) WHERE online = 1;",
    /* 2: what workers stream while they generate */
    "CREATE TABLE job_events ("
    "  job_number INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (job_number, attempt, seq)) WITHOUT ROWID;",
    /* 3: users, API keys (hashes only), and who owns each job */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  admin INTEGER NOT NULL DEFAULT 0,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id),"
    "  prefix TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  scope TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  revoked_at INTEGER);"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "DROP INDEX jobs_idempotency;"
    "CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner, idempotency_key)"
    "  WHERE idempotency_key IS NOT NULL;"
    "CREATE INDEX jobs_owner ON jobs(owner, number);"
    "CREATE INDEX jobs_owner_queued ON jobs(owner) WHERE state = 'queued';",
    /* 4: workers may sign their results */
    "ALTER TABLE workers ADD COLUMN public_key TEXT;"
    "ALTER TABLE jobs ADD COLUMN worker_signature TEXT;",
};
#define N_MIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

#define JOB_COLS                                                                        \
  "number, id, model, input, priority, state, attempts, max_attempts, lease_timeout_ms, " \
  "created_at, updated_at, not_before, expires_at, leased_at, finished_at, worker_id, "   \
  "lease_token, lease_expires_at, cancel_requested, output, prompt_tokens, "              \
  "completion_tokens, error_code, error_message, idempotency_key, request_hash, owner, "    \
  "worker_signature"

#define KEY_COLS "id, user_id, prefix, hash, scope, name, created_at, expires_at, revoked_at"

typedef enum {
  S_BEGIN, S_COMMIT, S_ROLLBACK, S_SYNC_FULL, S_SYNC_NORMAL,
  S_JOB_INSERT, S_JOB_GET_ID, S_JOB_GET_NUMBER, S_JOB_GET_IDEM, S_JOB_UPDATE,
  S_JOB_SCAN_QUEUED, S_JOB_DUE_LEASES, S_JOB_DUE_TTL, S_JOB_EXTEND, S_JOB_CANCEL_REQ,
  S_JOB_END_LEASES, S_JOB_COUNT_STATE, S_JOB_COUNT_ALL,
  S_WORKER_INSERT, S_WORKER_GET, S_WORKER_TOUCH, S_WORKER_OFFLINE, S_WORKER_COUNT,
  S_WORKER_ONLINE,
  S_EVENT_NEXT, S_EVENT_INSERT, S_EVENT_LIST, S_JOB_PEEK, S_JOB_AHEAD,
  S_COUNT_OWNER_QUEUED, S_COUNT_ACTIVE, S_TOTALS_ALL, S_TOTALS_OWNER,
  S_USER_INSERT, S_USER_GET_ID, S_USER_GET_NAME, S_USER_LIST, S_USER_DISABLE,
  S_KEY_INSERT, S_KEY_GET_HASH, S_KEY_LIST_USER, S_KEY_LIST_ALL, S_KEY_REVOKE,
  S__COUNT
} stmt_id;

static const char *const stmt_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [S_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [S_JOB_INSERT] =
        "INSERT INTO jobs (id, model, input, priority, state, attempts, max_attempts, "
        "lease_timeout_ms, created_at, updated_at, not_before, expires_at, idempotency_key, "
        "request_hash, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [S_JOB_GET_ID] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [S_JOB_GET_NUMBER] = "SELECT " JOB_COLS " FROM jobs WHERE number = ?1",
    [S_JOB_GET_IDEM] = "SELECT " JOB_COLS " FROM jobs WHERE owner = ?2 AND idempotency_key = ?1",
    [S_JOB_UPDATE] =
        "UPDATE jobs SET state = ?1, attempts = ?2, updated_at = ?3, not_before = ?4, "
        "leased_at = ?5, finished_at = ?6, worker_id = ?7, lease_token = ?8, "
        "lease_expires_at = ?9, cancel_requested = ?10, output = ?11, prompt_tokens = ?12, "
        "completion_tokens = ?13, error_code = ?14, error_message = ?15, expires_at = ?16, "
        "worker_signature = ?20 "
        "WHERE number = ?17 AND state = ?18 AND (?19 IS NULL OR lease_token = ?19)",
    [S_JOB_SCAN_QUEUED] = "SELECT " JOB_COLS " FROM jobs WHERE state = 'queued' ORDER BY number",
    /* INDEXED BY: the planner, without statistics, would walk jobs_state and
     * cost grows with the queue; these must stay O(due rows) */
    [S_JOB_DUE_LEASES] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_lease_due WHERE state = 'leased' "
                         "AND lease_expires_at <= ?1 ORDER BY lease_expires_at LIMIT ?2",
    [S_JOB_DUE_TTL] = "SELECT " JOB_COLS " FROM jobs INDEXED BY jobs_ttl_due WHERE state = 'queued' "
                      "AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
    [S_JOB_EXTEND] = "UPDATE jobs INDEXED BY jobs_worker SET lease_expires_at = MAX(lease_expires_at, ?2 + lease_timeout_ms) "
                     "WHERE worker_id = ?1 AND state = 'leased'",
    [S_JOB_CANCEL_REQ] = "SELECT id FROM jobs INDEXED BY jobs_worker WHERE worker_id = ?1 AND state = 'leased' "
                         "AND cancel_requested = 1",
    [S_JOB_END_LEASES] = "UPDATE jobs INDEXED BY jobs_worker SET lease_expires_at = ?2 "
                         "WHERE worker_id = ?1 AND state = 'leased'",
    [S_JOB_COUNT_STATE] = "SELECT COUNT(*) FROM jobs WHERE state = ?1",
    [S_JOB_COUNT_ALL] = "SELECT COUNT(*) FROM jobs",
    [S_WORKER_INSERT] = "INSERT INTO workers (id, name, models, capabilities, online, "
                        "created_at, last_seen_at, public_key) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7)",
    [S_WORKER_GET] = "SELECT id, name, models, capabilities, online, created_at, last_seen_at, "
                     "public_key FROM workers WHERE id = ?1",
    [S_WORKER_TOUCH] = "UPDATE workers SET last_seen_at = ?2, online = 1 WHERE id = ?1",
    [S_WORKER_OFFLINE] = "UPDATE workers SET online = 0 WHERE online = 1 AND last_seen_at < ?1 "
                         "RETURNING id",
    [S_WORKER_COUNT] = "SELECT COUNT(*) FROM workers WHERE online = 1",
    [S_WORKER_ONLINE] = "SELECT id, name, models, capabilities, online, created_at, last_seen_at, "
                        "public_key FROM workers WHERE online = 1 ORDER BY created_at",
    /* walks only queued jobs older than this one, and stops at the cap */
    [S_JOB_AHEAD] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_state "
                    "WHERE state = 'queued' AND number < ?1 AND model = ?2 AND priority >= ?3 LIMIT ?4)",
    [S_TOTALS_ALL] = "SELECT COUNT(*), COALESCE(SUM(state = 'completed'), 0), "
                     "COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM jobs",
    [S_TOTALS_OWNER] = "SELECT COUNT(*), COALESCE(SUM(state = 'completed'), 0), "
                       "COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM jobs WHERE owner = ?1",
    [S_COUNT_ACTIVE] = "SELECT model, state, COUNT(*) FROM jobs INDEXED BY jobs_state "
                       "WHERE state IN ('queued', 'leased') GROUP BY model, state",
    [S_COUNT_OWNER_QUEUED] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_owner_queued "
                             "WHERE owner = ?1 AND state = 'queued' LIMIT ?2)",
    [S_USER_INSERT] = "INSERT INTO users (id, name, password_hash, admin, disabled, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_USER_GET_ID] = "SELECT id, name, password_hash, admin, disabled, created_at FROM users WHERE id = ?1",
    [S_USER_GET_NAME] = "SELECT id, name, password_hash, admin, disabled, created_at FROM users WHERE name = ?1",
    [S_USER_LIST] = "SELECT id, name, password_hash, admin, disabled, created_at FROM users ORDER BY name",
    [S_USER_DISABLE] = "UPDATE users SET disabled = ?2 WHERE name = ?1",
    [S_KEY_INSERT] = "INSERT INTO api_keys (id, user_id, prefix, hash, scope, name, created_at, expires_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_KEY_GET_HASH] = "SELECT " KEY_COLS " FROM api_keys WHERE hash = ?1",
    [S_KEY_LIST_USER] = "SELECT " KEY_COLS " FROM api_keys WHERE user_id = ?1 ORDER BY created_at",
    [S_KEY_LIST_ALL] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at",
    [S_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?3 WHERE (id = ?1 OR prefix = ?1) "
                     "AND (?2 IS NULL OR user_id = ?2) AND revoked_at IS NULL",
    [S_JOB_PEEK] = "SELECT number, state, attempts, leased_at FROM jobs WHERE id = ?1",
    [S_EVENT_NEXT] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events "
                     "WHERE job_number = ?1 AND attempt = ?2",
    [S_EVENT_INSERT] = "INSERT INTO job_events (job_number, attempt, seq, kind, data, created_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_EVENT_LIST] = "SELECT attempt, seq, kind, data, created_at FROM job_events "
                     "WHERE job_number = ?1 AND attempt = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
};

#define LIST_VARIANTS 16 /* (state, model, owner) filters x (rows, count) */

struct pq_conn {
  sqlite3 *db;
  sqlite3_stmt *stmts[S__COUNT];
  sqlite3_stmt *lists[LIST_VARIANTS];
  pq_conn *next_free;
  bool writer;
  bool sync_full; /* the connection's current synchronous setting */
  bool may_sync;  /* the store is configured to fsync at all */
};

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

/* ---- connections ---- */

static pq_err fail(sqlite3 *db, const char *what) {
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
  for (int i = 0; i < S__COUNT; i++) sqlite3_finalize(c->stmts[i]);
  for (int i = 0; i < LIST_VARIANTS; i++) sqlite3_finalize(c->lists[i]);
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

static sqlite3_stmt *stmt(pq_conn *c, stmt_id id) {
  sqlite3_stmt *st = c->stmts[id];
  if (!st) {
    if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
        SQLITE_OK) {
      fail(c->db, stmt_sql[id]);
      return NULL;
    }
    c->stmts[id] = st;
  }
  return st;
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
    if (v >= N_MIGRATIONS) {
      exec_sql(c->db, "COMMIT");
      break;
    }
    char record[128];
    snprintf(record, sizeof record,
             "INSERT INTO schema_migrations VALUES (%d, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
             v + 1);
    if ((result = exec_sql(c->db, migrations[v])) || (result = exec_sql(c->db, record)) ||
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

static pq_err run_simple(pq_conn *c, stmt_id id) {
  sqlite3_stmt *st = stmt(c, id);
  if (!st) return PQ_ERR_STORE_FAILED;
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? PQ_OK : fail(c->db, stmt_sql[id]);
}

static pq_err sq_begin(pq_conn *c, bool durable) {
  bool full = durable && c->may_sync;
  if (full != c->sync_full) { /* a pragma, so only between transactions */
    pq_err result = run_simple(c, full ? S_SYNC_FULL : S_SYNC_NORMAL);
    if (result != PQ_OK) return result;
    c->sync_full = full;
  }
  return run_simple(c, S_BEGIN);
}
static pq_err sq_commit(pq_conn *c) { return run_simple(c, S_COMMIT); }
static void sq_rollback(pq_conn *c) {
  if (!sqlite3_get_autocommit(c->db)) run_simple(c, S_ROLLBACK);
}

/* ---- binding and reading rows ---- */

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, i);
}

static void bind_ms(sqlite3_stmt *st, int i, int64_t v) {
  if (v) sqlite3_bind_int64(st, i, v);
  else sqlite3_bind_null(st, i);
}

static int col_dup(sqlite3_stmt *st, int i, char **out) {
  const unsigned char *v = sqlite3_column_text(st, i);
  if (!v) {
    *out = NULL;
    return 0;
  }
  return (*out = strdup((const char *)v)) ? 0 : -1;
}

static pq_job *row_to_job(sqlite3_stmt *st) {
  pq_job *j = pq_job_new();
  if (!j) return NULL;
  int i = 0;
  j->number = sqlite3_column_int64(st, i++);
  const unsigned char *id = sqlite3_column_text(st, i++);
  snprintf(j->id, sizeof j->id, "%s", id ? (const char *)id : "");
  int bad = col_dup(st, i++, &j->model);
  bad |= col_dup(st, i++, &j->input);
  j->priority = sqlite3_column_int(st, i++);
  int state = pq_job_state_parse((const char *)sqlite3_column_text(st, i++));
  j->state = state < 0 ? PQ_JOB_FAILED : (pq_job_state)state;
  j->attempts = sqlite3_column_int(st, i++);
  j->max_attempts = sqlite3_column_int(st, i++);
  j->lease_timeout_ms = sqlite3_column_int64(st, i++);
  j->created_at = sqlite3_column_int64(st, i++);
  j->updated_at = sqlite3_column_int64(st, i++);
  j->not_before = sqlite3_column_int64(st, i++);
  j->expires_at = sqlite3_column_int64(st, i++);
  j->leased_at = sqlite3_column_int64(st, i++);
  j->finished_at = sqlite3_column_int64(st, i++);
  bad |= col_dup(st, i++, &j->worker_id);
  bad |= col_dup(st, i++, &j->lease_token);
  j->lease_expires_at = sqlite3_column_int64(st, i++);
  j->cancel_requested = sqlite3_column_int(st, i++) != 0;
  bad |= col_dup(st, i++, &j->output);
  j->prompt_tokens = sqlite3_column_int64(st, i++);
  j->completion_tokens = sqlite3_column_int64(st, i++);
  bad |= col_dup(st, i++, &j->error_code);
  bad |= col_dup(st, i++, &j->error_message);
  bad |= col_dup(st, i++, &j->idempotency_key);
  bad |= col_dup(st, i++, &j->request_hash);
  bad |= col_dup(st, i++, &j->owner);
  bad |= col_dup(st, i++, &j->worker_signature);
  if (bad || !j->model || !j->input) {
    pq_job_free(j);
    return NULL;
  }
  return j;
}

/* Runs a statement that returns no rows and makes it ready for reuse. */
static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

/* Steps a SELECT expected to return at most one job. */
static pq_err one_job(pq_conn *c, sqlite3_stmt *st, pq_job **out) {
  pq_err result = PQ_OK;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (!(*out = row_to_job(st))) result = PQ_ERR_NO_MEMORY;
  } else if (rc == SQLITE_DONE) {
    result = PQ_ERR_NOT_FOUND;
  } else {
    result = fail(c->db, sqlite3_sql(st));
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return result;
}

/* ---- jobs ---- */

static pq_err sq_job_insert(pq_conn *c, pq_job *j) {
  sqlite3_stmt *st = stmt(c, S_JOB_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, j->id);
  bind_text(st, 2, j->model);
  bind_text(st, 3, j->input);
  sqlite3_bind_int(st, 4, j->priority);
  bind_text(st, 5, pq_job_state_name(j->state));
  sqlite3_bind_int(st, 6, j->attempts);
  sqlite3_bind_int(st, 7, j->max_attempts);
  sqlite3_bind_int64(st, 8, j->lease_timeout_ms);
  sqlite3_bind_int64(st, 9, j->created_at);
  sqlite3_bind_int64(st, 10, j->updated_at);
  sqlite3_bind_int64(st, 11, j->not_before);
  bind_ms(st, 12, j->expires_at);
  bind_text(st, 13, j->idempotency_key);
  bind_text(st, 14, j->request_hash);
  bind_text(st, 15, j->owner ? j->owner : "");
  int rc = step_done(st);
  if (rc != SQLITE_DONE) return fail(c->db, "insert job");
  j->number = sqlite3_last_insert_rowid(c->db);
  return PQ_OK;
}

static pq_err sq_job_get(pq_conn *c, const char *id, int64_t number, pq_job **out) {
  sqlite3_stmt *st = stmt(c, id ? S_JOB_GET_ID : S_JOB_GET_NUMBER);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (id) bind_text(st, 1, id);
  else sqlite3_bind_int64(st, 1, number);
  return one_job(c, st, out);
}

static pq_err sq_job_get_by_idem(pq_conn *c, const char *owner, const char *key, pq_job **out) {
  sqlite3_stmt *st = stmt(c, S_JOB_GET_IDEM);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, key);
  bind_text(st, 2, owner ? owner : "");
  return one_job(c, st, out);
}

static pq_err sq_job_update(pq_conn *c, const pq_job *j, pq_job_state expect_state,
                            const char *expect_token) {
  sqlite3_stmt *st = stmt(c, S_JOB_UPDATE);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, pq_job_state_name(j->state));
  sqlite3_bind_int(st, 2, j->attempts);
  sqlite3_bind_int64(st, 3, j->updated_at);
  sqlite3_bind_int64(st, 4, j->not_before);
  bind_ms(st, 5, j->leased_at);
  bind_ms(st, 6, j->finished_at);
  bind_text(st, 7, j->worker_id);
  bind_text(st, 8, j->lease_token);
  bind_ms(st, 9, j->lease_expires_at);
  sqlite3_bind_int(st, 10, j->cancel_requested);
  bind_text(st, 11, j->output);
  sqlite3_bind_int64(st, 12, j->prompt_tokens);
  sqlite3_bind_int64(st, 13, j->completion_tokens);
  bind_text(st, 14, j->error_code);
  bind_text(st, 15, j->error_message);
  bind_ms(st, 16, j->expires_at);
  sqlite3_bind_int64(st, 17, j->number);
  bind_text(st, 18, pq_job_state_name(expect_state));
  bind_text(st, 19, expect_token);
  bind_text(st, 20, j->worker_signature);
  int rc = step_done(st);
  if (rc != SQLITE_DONE) return fail(c->db, "update job");
  return sqlite3_changes(c->db) == 1 ? PQ_OK : PQ_ERR_STALE;
}

/* Collects every job row of a prepared statement. */
static pq_err collect_jobs(pq_conn *c, sqlite3_stmt *st, pq_job ***out, size_t *n) {
  pq_err result = PQ_OK;
  pq_job **jobs = NULL;
  size_t len = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (len == cap) {
      cap = cap ? cap * 2 : 16;
      pq_job **grown = realloc(jobs, cap * sizeof *grown);
      if (!grown) {
        result = PQ_ERR_NO_MEMORY;
        goto out;
      }
      jobs = grown;
    }
    if (!(jobs[len] = row_to_job(st))) {
      result = PQ_ERR_NO_MEMORY;
      goto out;
    }
    len++;
  }
  if (rc != SQLITE_DONE) result = fail(c->db, sqlite3_sql(st));
out:
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (result != PQ_OK) {
    pq_job_free_array(jobs, len);
    jobs = NULL;
    len = 0;
  }
  *out = jobs;
  *n = len;
  return result;
}

static pq_err count_one(pq_conn *c, sqlite3_stmt *st, int64_t *count) {
  int rc = sqlite3_step(st);
  *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_ROW ? PQ_OK : fail(c->db, sqlite3_sql(st));
}

/* The statement for one combination of filters, prepared once per connection. */
static sqlite3_stmt *list_stmt(pq_conn *c, int filters, bool count) {
  int slot = filters | (count ? 8 : 0);
  if (c->lists[slot]) return c->lists[slot];
  char sql[1024];
  snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE 1%s%s%s%s", count ? "COUNT(*)" : JOB_COLS,
           filters & 1 ? " AND state = ?1" : "", filters & 2 ? " AND model = ?2" : "",
           filters & 4 ? " AND owner = ?5" : "", count ? "" : " ORDER BY number DESC LIMIT ?3 OFFSET ?4");
  if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->lists[slot], NULL) != SQLITE_OK) {
    fail(c->db, sql);
    return NULL;
  }
  return c->lists[slot];
}

static pq_err sq_job_list(pq_conn *c, const pq_job_filter *f, pq_job ***out, size_t *n,
                          int64_t *total) {
  int filters = (f->state >= 0 ? 1 : 0) | (f->model ? 2 : 0) | (f->owner ? 4 : 0);
  sqlite3_stmt *list = list_stmt(c, filters, false), *cnt = list_stmt(c, filters, true);
  if (!list || !cnt) return PQ_ERR_STORE_FAILED;
  const char *state = f->state >= 0 ? pq_job_state_name((pq_job_state)f->state) : NULL;
  for (int k = 0; k < 2; k++) {
    sqlite3_stmt *st = k ? cnt : list;
    if (state) bind_text(st, 1, state);
    if (f->model) bind_text(st, 2, f->model);
    if (f->owner) bind_text(st, 5, f->owner);
  }
  sqlite3_bind_int64(list, 3, f->limit);
  sqlite3_bind_int64(list, 4, f->offset);
  pq_err result = collect_jobs(c, list, out, n);
  if (result == PQ_OK && (result = count_one(c, cnt, total)) != PQ_OK) {
    pq_job_free_array(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return result;
}

static pq_err sq_job_scan_queued(pq_conn *c, pq_job_scan_fn fn, void *ctx) {
  sqlite3_stmt *st = stmt(c, S_JOB_SCAN_QUEUED);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq_err result = PQ_OK;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pq_job *j = row_to_job(st);
    if (!j) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    int stop = fn(ctx, j);
    pq_job_free(j);
    if (stop) break;
  }
  if (result == PQ_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) result = fail(c->db, "scan queued");
  sqlite3_reset(st);
  return result;
}

static pq_err sq_job_scan_due(pq_conn *c, int64_t now, size_t limit, pq_job_scan_fn fn,
                              void *ctx) {
  /* rows are collected before the callbacks run, since they update the table */
  static const stmt_id which[] = {S_JOB_DUE_LEASES, S_JOB_DUE_TTL};
  for (size_t k = 0; k < 2; k++) {
    sqlite3_stmt *st = stmt(c, which[k]);
    if (!st) return PQ_ERR_STORE_FAILED;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    pq_job **jobs;
    size_t n;
    pq_err result = collect_jobs(c, st, &jobs, &n);
    if (result != PQ_OK) return result;
    for (size_t i = 0; i < n; i++)
      if (fn(ctx, jobs[i])) break;
    pq_job_free_array(jobs, n);
  }
  return PQ_OK;
}

static pq_err worker_id_update(pq_conn *c, stmt_id id, const char *worker_id, int64_t t) {
  sqlite3_stmt *st = stmt(c, id);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, worker_id);
  sqlite3_bind_int64(st, 2, t);
  int rc = step_done(st);
  return rc == SQLITE_DONE ? PQ_OK : fail(c->db, stmt_sql[id]);
}

static pq_err sq_job_extend_leases(pq_conn *c, const char *worker_id, int64_t now) {
  return worker_id_update(c, S_JOB_EXTEND, worker_id, now);
}

static pq_err sq_job_end_leases(pq_conn *c, const char *worker_id, int64_t now) {
  return worker_id_update(c, S_JOB_END_LEASES, worker_id, now);
}

static pq_err sq_job_cancel_requested(pq_conn *c, const char *worker_id, char ***ids, size_t *n) {
  sqlite3_stmt *st = stmt(c, S_JOB_CANCEL_REQ);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq_err result = PQ_OK;
  char **list = NULL;
  size_t len = 0;
  bind_text(st, 1, worker_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    char **grown = realloc(list, (len + 1) * sizeof *grown);
    if (!grown || col_dup(st, 0, &grown[len]) != 0) {
      if (grown) list = grown;
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    list = grown;
    len++;
  }
  if (result == PQ_OK && rc != SQLITE_DONE) result = fail(c->db, "cancel requested");
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (result != PQ_OK) {
    for (size_t i = 0; i < len; i++) free(list[i]);
    free(list);
    list = NULL;
    len = 0;
  }
  *ids = list;
  *n = len;
  return result;
}

static pq_err sq_job_count(pq_conn *c, int state, int64_t *count) {
  sqlite3_stmt *st = stmt(c, state >= 0 ? S_JOB_COUNT_STATE : S_JOB_COUNT_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (state >= 0) bind_text(st, 1, pq_job_state_name((pq_job_state)state));
  return count_one(c, st, count);
}

/* ---- the event log ---- */

static pq_err sq_event_append(pq_conn *c, int64_t job_number, int attempt, const char *kind,
                              const char *const *data, size_t n, int64_t now, int64_t *seq) {
  sqlite3_stmt *next = stmt(c, S_EVENT_NEXT), *ins = stmt(c, S_EVENT_INSERT);
  if (!next || !ins) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(next, 1, job_number);
  sqlite3_bind_int(next, 2, attempt);
  int64_t first = 0;
  pq_err result = count_one(c, next, &first);
  for (size_t i = 0; result == PQ_OK && i < n; i++) {
    sqlite3_bind_int64(ins, 1, job_number);
    sqlite3_bind_int(ins, 2, attempt);
    sqlite3_bind_int64(ins, 3, first + (int64_t)i);
    bind_text(ins, 4, kind);
    bind_text(ins, 5, data[i]);
    sqlite3_bind_int64(ins, 6, now);
    if (step_done(ins) != SQLITE_DONE) result = fail(c->db, "append event");
  }
  if (result == PQ_OK) *seq = first + (int64_t)n - 1;
  return result;
}

static pq_err sq_job_ahead(pq_conn *c, const pq_job *job, int64_t cap, int64_t *ahead) {
  sqlite3_stmt *st = stmt(c, S_JOB_AHEAD);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, job->number);
  bind_text(st, 2, job->model);
  sqlite3_bind_int(st, 3, job->priority);
  sqlite3_bind_int64(st, 4, cap);
  return count_one(c, st, ahead);
}

static pq_err sq_job_peek(pq_conn *c, const char *id, pq_job *out) {
  sqlite3_stmt *st = stmt(c, S_JOB_PEEK);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, id);
  int rc = sqlite3_step(st);
  pq_err result = PQ_OK;
  if (rc == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    out->number = sqlite3_column_int64(st, 0);
    int state = pq_job_state_parse((const char *)sqlite3_column_text(st, 1));
    out->state = state < 0 ? PQ_JOB_FAILED : (pq_job_state)state;
    out->attempts = sqlite3_column_int(st, 2);
    out->leased_at = sqlite3_column_int64(st, 3);
  } else {
    result = rc == SQLITE_DONE ? PQ_ERR_NOT_FOUND : fail(c->db, "peek job");
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return result;
}

static pq_err sq_event_list(pq_conn *c, int64_t job_number, int attempt, int64_t after,
                            size_t limit, pq_job_event **out, size_t *n) {
  sqlite3_stmt *st = stmt(c, S_EVENT_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, job_number);
  sqlite3_bind_int(st, 2, attempt);
  sqlite3_bind_int64(st, 3, after);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
  pq_err result = PQ_OK;
  pq_job_event *events = NULL;
  size_t len = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pq_job_event *grown = realloc(events, (len + 1) * sizeof *grown);
    if (!grown) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    events = grown;
    pq_job_event *e = &events[len++];
    memset(e, 0, sizeof *e);
    e->attempt = sqlite3_column_int(st, 0);
    e->seq = sqlite3_column_int64(st, 1);
    e->created_at = sqlite3_column_int64(st, 4);
    if (col_dup(st, 2, &e->kind) || col_dup(st, 3, &e->data) || !e->kind || !e->data) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
  }
  if (result == PQ_OK && rc != SQLITE_DONE) result = fail(c->db, "list events");
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (result != PQ_OK) {
    pq_job_events_free(events, len);
    events = NULL;
    len = 0;
  }
  *out = events;
  *n = len;
  return result;
}

/* ---- users and API keys ---- */

static pq_err sq_count_queued_by_owner(pq_conn *c, const char *owner, int64_t cap, int64_t *n) {
  sqlite3_stmt *st = stmt(c, S_COUNT_OWNER_QUEUED);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, owner);
  sqlite3_bind_int64(st, 2, cap);
  return count_one(c, st, n);
}

static pq_err sq_job_totals(pq_conn *c, const char *owner, int64_t *total, int64_t *completed,
                            int64_t *tokens) {
  sqlite3_stmt *st = stmt(c, owner ? S_TOTALS_OWNER : S_TOTALS_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (owner) bind_text(st, 1, owner);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *total = sqlite3_column_int64(st, 0);
    *completed = sqlite3_column_int64(st, 1);
    *tokens = sqlite3_column_int64(st, 2);
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_ROW ? PQ_OK : fail(c->db, "job totals");
}

static pq_err sq_count_active(pq_conn *c, void (*fn)(void *, const char *, pq_job_state, int64_t),
                              void *ctx) {
  sqlite3_stmt *st = stmt(c, S_COUNT_ACTIVE);
  if (!st) return PQ_ERR_STORE_FAILED;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int state = pq_job_state_parse((const char *)sqlite3_column_text(st, 1));
    if (state >= 0)
      fn(ctx, (const char *)sqlite3_column_text(st, 0), (pq_job_state)state, sqlite3_column_int64(st, 2));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? PQ_OK : fail(c->db, "count active jobs");
}

static pq_err constraint_or_fail(pq_conn *c, int rc, const char *what) {
  if (rc == SQLITE_DONE) return PQ_OK;
  if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT) return PQ_ERR_ALREADY_EXISTS;
  return fail(c->db, what);
}

static pq_err sq_user_insert(pq_conn *c, const pq_user *u) {
  sqlite3_stmt *st = stmt(c, S_USER_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, u->id);
  bind_text(st, 2, u->name);
  bind_text(st, 3, u->password_hash);
  sqlite3_bind_int(st, 4, u->admin);
  sqlite3_bind_int(st, 5, u->disabled);
  sqlite3_bind_int64(st, 6, u->created_at);
  return constraint_or_fail(c, step_done(st), "insert user");
}

static pq_user *row_to_user(sqlite3_stmt *st) {
  pq_user *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  const unsigned char *id = sqlite3_column_text(st, 0);
  snprintf(u->id, sizeof u->id, "%s", id ? (const char *)id : "");
  if (col_dup(st, 1, &u->name) || col_dup(st, 2, &u->password_hash)) {
    pq_user_free(u);
    return NULL;
  }
  u->admin = sqlite3_column_int(st, 3) != 0;
  u->disabled = sqlite3_column_int(st, 4) != 0;
  u->created_at = sqlite3_column_int64(st, 5);
  return u;
}

static pq_api_key *row_to_key(sqlite3_stmt *st) {
  pq_api_key *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  const unsigned char *id = sqlite3_column_text(st, 0);
  snprintf(k->id, sizeof k->id, "%s", id ? (const char *)id : "");
  if (col_dup(st, 1, &k->user_id) || col_dup(st, 2, &k->prefix) || col_dup(st, 3, &k->hash) ||
      col_dup(st, 4, &k->scope) || col_dup(st, 5, &k->name)) {
    pq_api_key_free(k);
    return NULL;
  }
  k->created_at = sqlite3_column_int64(st, 6);
  k->expires_at = sqlite3_column_int64(st, 7);
  k->revoked_at = sqlite3_column_int64(st, 8);
  return k;
}

/* Steps a statement into a list built by make(); free with free_one. */
static pq_err collect_rows(pq_conn *c, sqlite3_stmt *st, void *(*make)(sqlite3_stmt *),
                           void (*free_one)(void *), void ***out, size_t *n) {
  pq_err result = PQ_OK;
  void **list = NULL;
  size_t len = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    void **grown = realloc(list, (len + 1) * sizeof *grown);
    if (grown) list = grown;
    if (!grown || !(list[len] = make(st))) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    len++;
  }
  if (result == PQ_OK && rc != SQLITE_DONE) result = fail(c->db, sqlite3_sql(st));
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

/* The one row a statement should find (PQ_ERR_NOT_FOUND when none). */
static pq_err one_row(pq_conn *c, sqlite3_stmt *st, void *(*make)(sqlite3_stmt *), void (*free_one)(void *),
                      void **out) {
  void **list;
  size_t n;
  pq_err result = collect_rows(c, st, make, free_one, &list, &n);
  if (result != PQ_OK) return result;
  if (n > 0) *out = list[0];
  for (size_t i = 1; i < n; i++) free_one(list[i]);
  free(list);
  return n > 0 ? PQ_OK : PQ_ERR_NOT_FOUND;
}

static void *make_user(sqlite3_stmt *st) { return row_to_user(st); }
static void free_user(void *u) { pq_user_free(u); }
static void *make_key(sqlite3_stmt *st) { return row_to_key(st); }
static void free_key(void *k) { pq_api_key_free(k); }

static pq_err sq_user_get(pq_conn *c, const char *id, const char *name, pq_user **out) {
  sqlite3_stmt *st = stmt(c, id ? S_USER_GET_ID : S_USER_GET_NAME);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, id ? id : name);
  return one_row(c, st, make_user, free_user, (void **)out);
}

static pq_err sq_user_list(pq_conn *c, pq_user ***out, size_t *n) {
  sqlite3_stmt *st = stmt(c, S_USER_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  return collect_rows(c, st, make_user, free_user, (void ***)out, n);
}

static pq_err sq_user_set_disabled(pq_conn *c, const char *name, bool disabled) {
  sqlite3_stmt *st = stmt(c, S_USER_DISABLE);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, name);
  sqlite3_bind_int(st, 2, disabled);
  if (step_done(st) != SQLITE_DONE) return fail(c->db, "disable user");
  return sqlite3_changes(c->db) ? PQ_OK : PQ_ERR_NOT_FOUND;
}

static pq_err sq_key_insert(pq_conn *c, const pq_api_key *k) {
  sqlite3_stmt *st = stmt(c, S_KEY_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, k->id);
  bind_text(st, 2, k->user_id);
  bind_text(st, 3, k->prefix);
  bind_text(st, 4, k->hash);
  bind_text(st, 5, k->scope);
  bind_text(st, 6, k->name);
  sqlite3_bind_int64(st, 7, k->created_at);
  bind_ms(st, 8, k->expires_at);
  return constraint_or_fail(c, step_done(st), "insert key");
}

static pq_err sq_key_get_by_hash(pq_conn *c, const char *hash, pq_api_key **out) {
  sqlite3_stmt *st = stmt(c, S_KEY_GET_HASH);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, hash);
  return one_row(c, st, make_key, free_key, (void **)out);
}

static pq_err sq_key_list(pq_conn *c, const char *user_id, pq_api_key ***out, size_t *n) {
  sqlite3_stmt *st = stmt(c, user_id ? S_KEY_LIST_USER : S_KEY_LIST_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (user_id) bind_text(st, 1, user_id);
  return collect_rows(c, st, make_key, free_key, (void ***)out, n);
}

static pq_err sq_key_revoke(pq_conn *c, const char *id_or_prefix, const char *user_id, int64_t now) {
  sqlite3_stmt *st = stmt(c, S_KEY_REVOKE);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, id_or_prefix);
  bind_text(st, 2, user_id);
  sqlite3_bind_int64(st, 3, now);
  if (step_done(st) != SQLITE_DONE) return fail(c->db, "revoke key");
  return sqlite3_changes(c->db) ? PQ_OK : PQ_ERR_NOT_FOUND;
}

/* ---- workers ---- */

static pq_err sq_worker_insert(pq_conn *c, const pq_worker *w) {
  sqlite3_stmt *st = stmt(c, S_WORKER_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  bind_text(st, 1, w->id);
  bind_text(st, 2, w->name);
  bind_text(st, 3, w->models);
  bind_text(st, 4, w->capabilities);
  sqlite3_bind_int64(st, 5, w->created_at);
  sqlite3_bind_int64(st, 6, w->last_seen_at);
  bind_text(st, 7, w->public_key);
  int rc = step_done(st);
  return rc == SQLITE_DONE ? PQ_OK : fail(c->db, "insert worker");
}

static pq_worker *row_to_worker(sqlite3_stmt *st) {
  pq_worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  const unsigned char *wid = sqlite3_column_text(st, 0);
  snprintf(w->id, sizeof w->id, "%s", wid ? (const char *)wid : "");
  if (col_dup(st, 1, &w->name) || col_dup(st, 2, &w->models) || col_dup(st, 3, &w->capabilities)) {
    pq_worker_free(w);
    return NULL;
  }
  w->online = sqlite3_column_int(st, 4) != 0;
  w->created_at = sqlite3_column_int64(st, 5);
  w->last_seen_at = sqlite3_column_int64(st, 6);
  if (col_dup(st, 7, &w->public_key)) {
    pq_worker_free(w);
    return NULL;
  }
  return w;
}

static pq_err sq_worker_list_online(pq_conn *c, pq_worker ***out, size_t *n) {
  sqlite3_stmt *st = stmt(c, S_WORKER_ONLINE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq_err result = PQ_OK;
  pq_worker **list = NULL;
  size_t len = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pq_worker **grown = realloc(list, (len + 1) * sizeof *grown);
    if (grown) list = grown;
    if (!grown || !(list[len] = row_to_worker(st))) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    len++;
  }
  if (result == PQ_OK && rc != SQLITE_DONE) result = fail(c->db, "list workers");
  sqlite3_reset(st);
  if (result != PQ_OK) {
    for (size_t i = 0; i < len; i++) pq_worker_free(list[i]);
    free(list);
    list = NULL;
    len = 0;
  }
  *out = list;
  *n = len;
  return result;
}

static pq_err sq_worker_get(pq_conn *c, const char *id, pq_worker **out) {
  sqlite3_stmt *st = stmt(c, S_WORKER_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq_err result = PQ_OK;
  bind_text(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (!(*out = row_to_worker(st))) result = PQ_ERR_NO_MEMORY;
  } else {
    result = rc == SQLITE_DONE ? PQ_ERR_NOT_FOUND : fail(c->db, "get worker");
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return result;
}

static pq_err sq_worker_touch(pq_conn *c, const char *id, int64_t now) {
  pq_err result = worker_id_update(c, S_WORKER_TOUCH, id, now);
  if (result == PQ_OK && sqlite3_changes(c->db) == 0) result = PQ_ERR_NOT_FOUND;
  return result;
}

static pq_err sq_worker_mark_offline(pq_conn *c, int64_t before,
                                     void (*fn)(void *ctx, const char *id), void *ctx) {
  sqlite3_stmt *st = stmt(c, S_WORKER_OFFLINE);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, before);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(ctx, (const char *)sqlite3_column_text(st, 0));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? PQ_OK : fail(c->db, "mark workers offline");
}

static pq_err sq_worker_count_online(pq_conn *c, int64_t *count) {
  sqlite3_stmt *st = stmt(c, S_WORKER_COUNT);
  if (!st) return PQ_ERR_STORE_FAILED;
  return count_one(c, st, count);
}

const pq_store_ops pq_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .acquire = sq_acquire,
    .release = sq_release,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .job_insert = sq_job_insert,
    .job_get = sq_job_get,
    .job_get_by_idempotency_key = sq_job_get_by_idem,
    .job_peek = sq_job_peek,
    .job_update = sq_job_update,
    .job_list = sq_job_list,
    .job_scan_queued = sq_job_scan_queued,
    .job_scan_due = sq_job_scan_due,
    .job_extend_leases = sq_job_extend_leases,
    .job_cancel_requested = sq_job_cancel_requested,
    .job_end_leases = sq_job_end_leases,
    .job_count = sq_job_count,
    .job_ahead = sq_job_ahead,
    .event_append = sq_event_append,
    .event_list = sq_event_list,
    .worker_insert = sq_worker_insert,
    .worker_get = sq_worker_get,
    .worker_touch = sq_worker_touch,
    .worker_mark_offline = sq_worker_mark_offline,
    .worker_count_online = sq_worker_count_online,
    .worker_list_online = sq_worker_list_online,
    .job_count_queued_by_owner = sq_count_queued_by_owner,
    .job_count_active = sq_count_active,
    .job_totals = sq_job_totals,
    .user_insert = sq_user_insert,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_set_disabled = sq_user_set_disabled,
    .key_insert = sq_key_insert,
    .key_get_by_hash = sq_key_get_by_hash,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
};
