/* The SQLite backend's event log: what workers stream, per job and attempt. */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/internal.h"

static const char SQL_NEXT[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_number = ?1 AND attempt = ?2";
static const char SQL_INSERT[] = "INSERT INTO job_events (job_number, attempt, seq, kind, data, created_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_LIST[] = "SELECT attempt, seq, kind, data, created_at FROM job_events "
                               "WHERE job_number = ?1 AND attempt = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4";

pq_err pq__sq_event_append(pq_conn *c, int64_t job_number, int attempt, const char *kind,
                           const char *const *data, size_t n, int64_t first_seq, int64_t now, int64_t *seq) {
  sqlite3_stmt *next = first_seq > 0 ? NULL : pq__sq_stmt(c, SQL_NEXT), *ins = pq__sq_stmt(c, SQL_INSERT);
  if ((first_seq <= 0 && !next) || !ins) return PQ_ERR_STORE_FAILED;
  int64_t first = first_seq;
  pq_err result = PQ_OK;
  if (next) {
    sqlite3_bind_int64(next, 1, job_number);
    sqlite3_bind_int(next, 2, attempt);
    result = pq__sq_count_one(c, next, &first);
  }
  for (size_t i = 0; result == PQ_OK && i < n; i++) {
    sqlite3_bind_int64(ins, 1, job_number);
    sqlite3_bind_int(ins, 2, attempt);
    sqlite3_bind_int64(ins, 3, first + (int64_t)i);
    pq__sq_bind_text(ins, 4, kind);
    pq__sq_bind_text(ins, 5, data[i]);
    sqlite3_bind_int64(ins, 6, now);
    if (pq__sq_step_done(ins) != SQLITE_DONE) result = pq__sq_fail(c->db, "append event");
  }
  if (result == PQ_OK) *seq = first + (int64_t)n - 1;
  return result;
}

pq_err pq__sq_event_list(pq_conn *c, int64_t job_number, int attempt, int64_t after, size_t limit,
                         pq_job_event **out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_LIST);
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
    if (pq__sq_col_dup(st, 2, &e->kind) || pq__sq_col_dup(st, 3, &e->data) || !e->kind || !e->data) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
  }
  if (result == PQ_OK && rc != SQLITE_DONE) result = pq__sq_fail(c->db, "list events");
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
