/* The SQLite backend's files (OpenAI's Files API) and the removal of an
 * ended job with its event log. */
#include <stdlib.h>

#include "store/sqlite/internal.h"

#define FILE_COLS "id, owner, purpose, filename, bytes, created_at"

static const char SQL_FILE_INSERT[] = "INSERT INTO files (" FILE_COLS ", content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_FILE_GET[] = "SELECT " FILE_COLS ", NULL FROM files WHERE id = ?1";
static const char SQL_FILE_GET_CONTENT[] = "SELECT " FILE_COLS ", content FROM files WHERE id = ?1";
static const char SQL_FILE_LIST[] = "SELECT " FILE_COLS ", NULL FROM files WHERE (?1 IS NULL OR owner = ?1) AND "
                                    "(?2 IS NULL OR purpose = ?2) ORDER BY created_at DESC, id DESC LIMIT ?3";
static const char SQL_FILE_DELETE[] = "DELETE FROM files WHERE id = ?1";
static const char SQL_JOB_DELETE_EVENTS[] = "DELETE FROM job_events WHERE job_number = ?1";
/* what its webhooks were told holds its output: it goes with the job */
static const char SQL_JOB_DELETE_DELIVERIES[] =
    "DELETE FROM webhook_deliveries WHERE job_id = (SELECT id FROM jobs WHERE number = ?1)";
static const char SQL_JOB_DELETE[] = "DELETE FROM jobs WHERE number = ?1";

static void free_file(void *f) { pq_file_free(f); }

static void *make_file(sqlite3_stmt *st) {
  pq_file *f = calloc(1, sizeof *f);
  if (!f || pq__sq_col_dup(st, 0, &f->id) || pq__sq_col_dup(st, 1, &f->owner) || pq__sq_col_dup(st, 2, &f->purpose) ||
      pq__sq_col_dup(st, 3, &f->filename) || pq__sq_col_dup(st, 6, &f->content)) {
    pq_file_free(f);
    return NULL;
  }
  f->bytes = sqlite3_column_int64(st, 4);
  f->created_at = sqlite3_column_int64(st, 5);
  return f;
}

pq_err pq__sq_file_insert(pq_conn *c, const pq_file *f) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_FILE_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, f->id);
  pq__sq_bind_text(st, 2, f->owner ? f->owner : "");
  pq__sq_bind_text(st, 3, f->purpose);
  pq__sq_bind_text(st, 4, f->filename);
  sqlite3_bind_int64(st, 5, f->bytes);
  sqlite3_bind_int64(st, 6, f->created_at);
  sqlite3_bind_text64(st, 7, f->content ? f->content : "", (sqlite3_uint64)f->bytes, SQLITE_STATIC, SQLITE_UTF8);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert a file");
}

pq_err pq__sq_file_get(pq_conn *c, const char *id, bool with_content, pq_file **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, with_content ? SQL_FILE_GET_CONTENT : SQL_FILE_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_file, free_file, (void **)out);
}

pq_err pq__sq_file_list(pq_conn *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out,
                        size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_FILE_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, owner);
  pq__sq_bind_text(st, 2, purpose);
  sqlite3_bind_int64(st, 3, limit);
  return pq__sq_collect_rows(c, st, make_file, free_file, (void ***)out, n);
}

pq_err pq__sq_file_delete(pq_conn *c, const char *id) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_FILE_DELETE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_changed_one(c, st, "delete a file");
}

pq_err pq__sq_job_delete(pq_conn *c, int64_t number) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_JOB_DELETE_EVENTS);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, number);
  if (pq__sq_step_done(st) != SQLITE_DONE) return pq__sq_fail(c->db, "delete a job's events");
  if (!(st = pq__sq_stmt(c, SQL_JOB_DELETE_DELIVERIES))) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, number);
  if (pq__sq_step_done(st) != SQLITE_DONE) return pq__sq_fail(c->db, "delete a job's deliveries");
  if (!(st = pq__sq_stmt(c, SQL_JOB_DELETE))) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, number);
  return pq__sq_changed_one(c, st, "delete a job");
}
