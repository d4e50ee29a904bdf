/* The PostgreSQL backend's event log. */
#include <stdlib.h>
#include <string.h>

#include "store/postgres/internal.h"

static const char SQL_NEXT[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_number = $1 AND attempt = $2";
static const char SQL_INSERT[] = "INSERT INTO job_events (job_number, attempt, seq, kind, data, created_at) "
                                 "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
static const char SQL_LIST[] = "SELECT attempt, seq, kind, data, created_at FROM job_events "
                               "WHERE job_number = $1 AND attempt = $2 AND seq > $3 ORDER BY seq LIMIT $4";

pq_err pq__pg_event_append(pq_conn *c, int64_t job_number, int attempt, const char *kind, const char *const *data,
                           size_t n, int64_t first_seq, int64_t now, int64_t *seq) {
  pq_err err;
  PGresult *r;
  int64_t first = first_seq;
  if (first <= 0) {
    pq__pgp p = {0};
    pq__pg_int(&p, job_number);
    pq__pg_int(&p, attempt);
    if (!(r = pq__pg_run(c, SQL_NEXT, &p, &err))) return err;
    first = pq__pg_i64(r, 0, 0);
    PQclear(r);
  }
  for (size_t i = 0; i < n; i++) {
    pq__pgp q = {0};
    pq__pg_int(&q, job_number);
    pq__pg_int(&q, attempt);
    pq__pg_int(&q, first + (int64_t)i);
    pq__pg_text(&q, kind);
    pq__pg_text(&q, data[i]);
    pq__pg_int(&q, now);
    if (!(r = pq__pg_run(c, SQL_INSERT, &q, &err))) return err;
    int64_t added = pq__pg_changed(r);
    PQclear(r);
    if (!added) return PQ_ERR_ALREADY_EXISTS; /* another coordinator wrote this seq a moment ago */
  }
  *seq = first + (int64_t)n - 1;
  return PQ_OK;
}

pq_err pq__pg_event_list(pq_conn *c, int64_t job_number, int attempt, int64_t after, size_t limit,
                         pq_job_event **out, size_t *n) {
  pq__pgp p = {0};
  pq__pg_int(&p, job_number);
  pq__pg_int(&p, attempt);
  pq__pg_int(&p, after);
  pq__pg_int(&p, (int64_t)limit);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_LIST, &p, &err);
  if (!r) return err;
  int rows = PQntuples(r);
  pq_job_event *events = rows ? calloc((size_t)rows, sizeof *events) : NULL;
  if (rows && !events) {
    PQclear(r);
    return PQ_ERR_NO_MEMORY;
  }
  for (int i = 0; i < rows; i++) {
    events[i].attempt = (int)pq__pg_i64(r, i, 0);
    events[i].seq = pq__pg_i64(r, i, 1);
    events[i].created_at = pq__pg_i64(r, i, 4);
    if (pq__pg_dup(r, i, 2, &events[i].kind) || pq__pg_dup(r, i, 3, &events[i].data) || !events[i].kind ||
        !events[i].data) {
      pq_job_events_free(events, (size_t)i + 1);
      PQclear(r);
      return PQ_ERR_NO_MEMORY;
    }
  }
  PQclear(r);
  *out = events;
  *n = (size_t)rows;
  return PQ_OK;
}
