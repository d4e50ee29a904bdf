/* The PostgreSQL backend's files (OpenAI's Files API) and the removal of an
 * ended job with its event log. */
#include <stdlib.h>

#include "store/postgres/internal.h"

#define FILE_COLS "id, owner, purpose, filename, bytes, created_at"

static const char SQL_FILE_INSERT[] = "INSERT INTO files (" FILE_COLS ", content) VALUES ($1, $2, $3, $4, $5, $6, $7)";
static const char SQL_FILE_GET[] = "SELECT " FILE_COLS ", NULL FROM files WHERE id = $1";
static const char SQL_FILE_GET_CONTENT[] = "SELECT " FILE_COLS ", content FROM files WHERE id = $1";
static const char SQL_FILE_LIST[] = "SELECT " FILE_COLS ", NULL FROM files WHERE ($1::text IS NULL OR owner = $1) AND "
                                    "($2::text IS NULL OR purpose = $2) ORDER BY created_at DESC, id DESC LIMIT $3";
static const char SQL_FILE_DELETE[] = "DELETE FROM files WHERE id = $1";
static const char SQL_JOB_DELETE_EVENTS[] = "DELETE FROM job_events WHERE job_number = $1";
/* what its webhooks were told holds its output: it goes with the job */
static const char SQL_JOB_DELETE_DELIVERIES[] =
    "DELETE FROM webhook_deliveries WHERE job_id = (SELECT id FROM jobs WHERE number = $1)";
static const char SQL_JOB_DELETE[] = "DELETE FROM jobs WHERE number = $1";

static void free_file(void *f) { pq_file_free(f); }

static void *make_file(const PGresult *r, int row) {
  pq_file *f = calloc(1, sizeof *f);
  if (!f || pq__pg_dup(r, row, 0, &f->id) || pq__pg_dup(r, row, 1, &f->owner) || pq__pg_dup(r, row, 2, &f->purpose) ||
      pq__pg_dup(r, row, 3, &f->filename) || pq__pg_dup(r, row, 6, &f->content)) {
    pq_file_free(f);
    return NULL;
  }
  f->bytes = pq__pg_i64(r, row, 4);
  f->created_at = pq__pg_i64(r, row, 5);
  return f;
}

pq_err pq__pg_file_insert(pq_conn *c, const pq_file *f) {
  pq__pgp p = {0};
  pq__pg_text(&p, f->id);
  pq__pg_text(&p, f->owner ? f->owner : "");
  pq__pg_text(&p, f->purpose);
  pq__pg_text(&p, f->filename);
  pq__pg_int(&p, f->bytes);
  pq__pg_int(&p, f->created_at);
  pq__pg_text(&p, f->content ? f->content : "");
  return pq__pg_command(c, SQL_FILE_INSERT, &p, NULL);
}

pq_err pq__pg_file_get(pq_conn *c, const char *id, bool with_content, pq_file **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  return pq__pg_one(c, with_content ? SQL_FILE_GET_CONTENT : SQL_FILE_GET, &p, make_file, free_file, (void **)out);
}

pq_err pq__pg_file_list(pq_conn *c, const char *owner, const char *purpose, int64_t limit, pq_file ***out,
                        size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, owner);
  pq__pg_text(&p, purpose);
  pq__pg_int(&p, limit);
  return pq__pg_rows(c, SQL_FILE_LIST, &p, make_file, free_file, (void ***)out, n);
}

pq_err pq__pg_file_delete(pq_conn *c, const char *id) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  return pq__pg_changed_one(c, SQL_FILE_DELETE, &p);
}

pq_err pq__pg_job_delete(pq_conn *c, int64_t number) {
  pq__pgp p = {0};
  pq__pg_int(&p, number);
  int64_t changed = 0;
  pq_err err = pq__pg_command(c, SQL_JOB_DELETE_EVENTS, &p, NULL);
  if (err == PQ_OK) err = pq__pg_command(c, SQL_JOB_DELETE_DELIVERIES, &p, NULL);
  if (err == PQ_OK) err = pq__pg_command(c, SQL_JOB_DELETE, &p, &changed);
  return err == PQ_OK && changed == 0 ? PQ_ERR_NOT_FOUND : err;
}
