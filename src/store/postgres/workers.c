/* The PostgreSQL backend's workers. */
#include <stdio.h>
#include <stdlib.h>

#include "store/columns.h"
#include "store/postgres/internal.h"

static const char SQL_INSERT[] = "INSERT INTO workers (id, name, models, capabilities, online, created_at, "
                                 "last_seen_at, public_key, owner) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8) "
                                 "ON CONFLICT DO NOTHING";
static const char SQL_GET[] = "SELECT " PQ__WORKER_COLS " FROM workers WHERE id = $1";
static const char SQL_CAPS[] = "UPDATE workers SET capabilities = $2 WHERE id = $1";
static const char SQL_TOUCH[] = "UPDATE workers SET last_seen_at = $2, online = 1 WHERE id = $1";
static const char SQL_OFFLINE[] = "UPDATE workers SET online = 0 WHERE online = 1 AND last_seen_at < $1 RETURNING id";
static const char SQL_COUNT[] = "SELECT COUNT(*) FROM workers WHERE online = 1";
static const char SQL_ONLINE[] = "SELECT " PQ__WORKER_COLS " FROM workers WHERE online = 1 ORDER BY created_at";

static pq_worker *row_to_worker(const PGresult *r, int row) {
  pq_worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  const char *id = pq__pg_col(r, row, 0);
  snprintf(w->id, sizeof w->id, "%s", id ? id : "");
  if (pq__pg_dup(r, row, 1, &w->name) || pq__pg_dup(r, row, 2, &w->models) || pq__pg_dup(r, row, 3, &w->capabilities) ||
      pq__pg_dup(r, row, 7, &w->public_key) || pq__pg_dup(r, row, 8, &w->owner)) {
    pq_worker_free(w);
    return NULL;
  }
  w->online = pq__pg_i64(r, row, 4) != 0;
  w->created_at = pq__pg_i64(r, row, 5);
  w->last_seen_at = pq__pg_i64(r, row, 6);
  return w;
}

pq_err pq__pg_worker_insert(pq_conn *c, const pq_worker *w) {
  pq__pgp p = {0};
  pq__pg_text(&p, w->id);
  pq__pg_text(&p, w->name);
  pq__pg_text(&p, w->models);
  pq__pg_text(&p, w->capabilities);
  pq__pg_int(&p, w->created_at);
  pq__pg_int(&p, w->last_seen_at);
  pq__pg_text(&p, w->public_key);
  pq__pg_text(&p, w->owner ? w->owner : "");
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_INSERT, &p, &err);
  if (r && pq__pg_changed(r) == 0) err = PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

pq_err pq__pg_worker_get(pq_conn *c, const char *id, pq_worker **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_GET, &p, &err);
  if (!r) return err;
  if (PQntuples(r) == 0) err = PQ_ERR_NOT_FOUND;
  else if (!(*out = row_to_worker(r, 0))) err = PQ_ERR_NO_MEMORY;
  PQclear(r);
  return err;
}

pq_err pq__pg_worker_list_online(pq_conn *c, pq_worker ***out, size_t *n) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_ONLINE, NULL, &err);
  if (!r) return err;
  int rows = PQntuples(r);
  pq_worker **list = rows ? calloc((size_t)rows, sizeof *list) : NULL;
  for (int i = 0; list && i < rows; i++)
    if (!(list[i] = row_to_worker(r, i))) {
      for (int k = 0; k < i; k++) pq_worker_free(list[k]);
      free(list);
      list = NULL;
    }
  PQclear(r);
  if (rows && !list) return PQ_ERR_NO_MEMORY;
  *out = list;
  *n = (size_t)rows;
  return PQ_OK;
}

pq_err pq__pg_worker_touch(pq_conn *c, const char *id, int64_t now) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_int(&p, now);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_TOUCH, &p, &err);
  if (!r) return err;
  err = pq__pg_changed(r) ? PQ_OK : PQ_ERR_NOT_FOUND;
  PQclear(r);
  return err;
}

pq_err pq__pg_worker_mark_offline(pq_conn *c, int64_t before, void (*fn)(void *ctx, const char *id), void *ctx) {
  pq__pgp p = {0};
  pq__pg_int(&p, before);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_OFFLINE, &p, &err);
  if (!r) return err;
  for (int i = 0; i < PQntuples(r); i++) fn(ctx, PQgetvalue(r, i, 0));
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_worker_count_online(pq_conn *c, int64_t *count) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_COUNT, NULL, &err);
  if (!r) return err;
  *count = pq__pg_i64(r, 0, 0);
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_worker_set_capabilities(pq_conn *c, const char *id, const char *capabilities) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_text(&p, capabilities ? capabilities : "{}");
  return pq__pg_changed_one(c, SQL_CAPS, &p);
}
