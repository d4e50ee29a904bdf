/* The SQLite backend's workers: registration, liveness, and who is online. */
#include <stdio.h>
#include <stdlib.h>

#include "store/columns.h"
#include "store/sqlite/internal.h"

static const char SQL_INSERT[] = "INSERT INTO workers (id, name, models, capabilities, online, "
                                 "created_at, last_seen_at, public_key, owner) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8)";
static const char SQL_GET[] = "SELECT " PQ__WORKER_COLS " FROM workers WHERE id = ?1";
static const char SQL_CAPS[] = "UPDATE workers SET capabilities = ?2 WHERE id = ?1";
static const char SQL_TOUCH[] = "UPDATE workers SET last_seen_at = ?2, online = 1 WHERE id = ?1";
static const char SQL_OFFLINE[] = "UPDATE workers SET online = 0 WHERE online = 1 AND last_seen_at < ?1 RETURNING id";
static const char SQL_COUNT[] = "SELECT COUNT(*) FROM workers WHERE online = 1";
static const char SQL_ONLINE[] = "SELECT " PQ__WORKER_COLS " FROM workers WHERE online = 1 ORDER BY created_at";

static pq_worker *row_to_worker(sqlite3_stmt *st) {
  pq_worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  const unsigned char *wid = sqlite3_column_text(st, 0);
  snprintf(w->id, sizeof w->id, "%s", wid ? (const char *)wid : "");
  if (pq__sq_col_dup(st, 1, &w->name) || pq__sq_col_dup(st, 2, &w->models) ||
      pq__sq_col_dup(st, 3, &w->capabilities) || pq__sq_col_dup(st, 7, &w->public_key) ||
      pq__sq_col_dup(st, 8, &w->owner)) {
    pq_worker_free(w);
    return NULL;
  }
  w->online = sqlite3_column_int(st, 4) != 0;
  w->created_at = sqlite3_column_int64(st, 5);
  w->last_seen_at = sqlite3_column_int64(st, 6);
  return w;
}

static void *make_worker(sqlite3_stmt *st) { return row_to_worker(st); }
static void free_worker(void *w) { pq_worker_free(w); }

pq_err pq__sq_worker_insert(pq_conn *c, const pq_worker *w) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, w->id);
  pq__sq_bind_text(st, 2, w->name);
  pq__sq_bind_text(st, 3, w->models);
  pq__sq_bind_text(st, 4, w->capabilities);
  sqlite3_bind_int64(st, 5, w->created_at);
  sqlite3_bind_int64(st, 6, w->last_seen_at);
  pq__sq_bind_text(st, 7, w->public_key);
  pq__sq_bind_text(st, 8, w->owner ? w->owner : "");
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert worker");
}

pq_err pq__sq_worker_get(pq_conn *c, const char *id, pq_worker **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_worker, free_worker, (void **)out);
}

pq_err pq__sq_worker_list_online(pq_conn *c, pq_worker ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_ONLINE);
  if (!st) return PQ_ERR_STORE_FAILED;
  return pq__sq_collect_rows(c, st, make_worker, free_worker, (void ***)out, n);
}

pq_err pq__sq_worker_touch(pq_conn *c, const char *id, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_TOUCH);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  sqlite3_bind_int64(st, 2, now);
  return pq__sq_changed_one(c, st, "touch worker");
}

pq_err pq__sq_worker_mark_offline(pq_conn *c, int64_t before, void (*fn)(void *ctx, const char *id), void *ctx) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_OFFLINE);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, before);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(ctx, (const char *)sqlite3_column_text(st, 0));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "mark workers offline");
}

pq_err pq__sq_worker_count_online(pq_conn *c, int64_t *count) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_COUNT);
  if (!st) return PQ_ERR_STORE_FAILED;
  return pq__sq_count_one(c, st, count);
}

pq_err pq__sq_worker_set_capabilities(pq_conn *c, const char *id, const char *capabilities) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_CAPS);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  pq__sq_bind_text(st, 2, capabilities ? capabilities : "{}");
  return pq__sq_changed_one(c, st, "set a worker's capabilities");
}
