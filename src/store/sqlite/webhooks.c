/* The SQLite backend's completion webhooks: endpoints with their secrets,
 * and the deliveries the sender works through (model/webhook.h). */
#include <stdint.h>
#include <stdlib.h>

#include "store/columns.h"
#include "store/sqlite/internal.h"

static const char SQL_WH_INSERT[] = "INSERT INTO webhooks (" PQ__WEBHOOK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_WH_GET[] = "SELECT " PQ__WEBHOOK_COLS " FROM webhooks WHERE id = ?1";
static const char SQL_WH_JOB_SECRET[] = "SELECT " PQ__WEBHOOK_COLS " FROM webhooks WHERE owner = ?1 AND url IS NULL";
static const char SQL_WH_LIST[] = "SELECT " PQ__WEBHOOK_COLS " FROM webhooks WHERE (?1 IS NULL OR owner = ?1) "
                                  "ORDER BY created_at, id";
static const char SQL_WH_CANCEL[] = "UPDATE webhook_deliveries SET state = 'cancelled', updated_at = ?2 "
                                    "WHERE webhook_id = ?1 AND state = 'pending'";
static const char SQL_WH_DELETE[] = "DELETE FROM webhooks WHERE id = ?1";
static const char SQL_WH_SECRET[] = "UPDATE webhooks SET secret = ?2 WHERE id = ?1";
static const char SQL_DL_INSERT[] =
    "INSERT INTO webhook_deliveries (id, webhook_id, owner, job_id, url, event_type, payload, state, attempts, "
    "next_at, created_at, updated_at, last_status, last_error, retry_from) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
static const char SQL_DL_GET[] = "SELECT " PQ__DELIVERY_COLS ", w.secret FROM webhook_deliveries d "
                                 "LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?1";
/* webhook_deliveries_due: only pending rows, by time */
static const char SQL_DL_DUE[] = "SELECT " PQ__DELIVERY_COLS ", w.secret FROM webhook_deliveries d "
                                 "LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' "
                                 "AND d.next_at <= ?1 AND (?3 IS NULL OR d.owner NOT IN (SELECT value FROM json_each(?3))) "
                                 "AND (?4 IS NULL OR d.url NOT IN (SELECT value FROM json_each(?4))) "
                                 "ORDER BY d.next_at, d.id LIMIT ?2";
static const char SQL_DL_NEXT[] = "SELECT COALESCE(MIN(next_at), 9223372036854775807) FROM webhook_deliveries "
                                  "WHERE state = 'pending'";
static const char SQL_DL_UPDATE[] = "UPDATE webhook_deliveries SET state = ?2, attempts = ?3, next_at = ?4, "
                                    "updated_at = ?5, last_status = ?6, last_error = ?7, retry_from = ?8 WHERE id = ?1";
static const char SQL_DL_LIST[] = "SELECT " PQ__DELIVERY_COLS ", NULL FROM webhook_deliveries d "
                                  "WHERE (?1 IS NULL OR d.owner = ?1) AND (?2 IS NULL OR d.job_id = ?2) AND "
                                  "(?3 IS NULL OR d.state = ?3) ORDER BY d.created_at DESC, d.id DESC LIMIT ?4";

static const char SQL_DL_SWEEP[] = "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < ?1";

static void free_webhook(void *w) { pq_webhook_free(w); }
static void free_delivery(void *d) { pq_delivery_free(d); }

static void *make_webhook(sqlite3_stmt *st) {
  pq_webhook *w = calloc(1, sizeof *w);
  if (!w || pq__sq_col_dup(st, 0, &w->id) || pq__sq_col_dup(st, 1, &w->owner) || pq__sq_col_dup(st, 2, &w->key_id) ||
      pq__sq_col_dup(st, 3, &w->url) || pq__sq_col_dup(st, 4, &w->secret) || pq__sq_col_dup(st, 5, &w->events)) {
    pq_webhook_free(w);
    return NULL;
  }
  w->created_at = sqlite3_column_int64(st, 6);
  return w;
}

static void *make_delivery(sqlite3_stmt *st) {
  pq_delivery *d = calloc(1, sizeof *d);
  if (!d || pq__sq_col_dup(st, 0, &d->id) || pq__sq_col_dup(st, 1, &d->webhook_id) || pq__sq_col_dup(st, 2, &d->owner) ||
      pq__sq_col_dup(st, 3, &d->job_id) || pq__sq_col_dup(st, 4, &d->url) || pq__sq_col_dup(st, 5, &d->event_type) ||
      pq__sq_col_dup(st, 6, &d->payload) || pq__sq_col_dup(st, 13, &d->last_error) ||
      pq__sq_col_dup(st, 15, &d->secret)) {
    pq_delivery_free(d);
    return NULL;
  }
  int state = pq_delivery_state_parse((const char *)sqlite3_column_text(st, 7));
  d->state = state < 0 ? PQ_DELIVERY_FAILED : (pq_delivery_state)state;
  d->attempts = sqlite3_column_int(st, 8);
  d->next_at = sqlite3_column_int64(st, 9);
  d->created_at = sqlite3_column_int64(st, 10);
  d->updated_at = sqlite3_column_int64(st, 11);
  d->last_status = sqlite3_column_int(st, 12);
  d->retry_from = sqlite3_column_int64(st, 14);
  return d;
}

pq_err pq__sq_webhook_insert(pq_conn *c, const pq_webhook *w) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_WH_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, w->id);
  pq__sq_bind_text(st, 2, w->owner ? w->owner : "");
  pq__sq_bind_text(st, 3, w->key_id);
  pq__sq_bind_text(st, 4, w->url);
  pq__sq_bind_text(st, 5, w->secret);
  pq__sq_bind_text(st, 6, w->events ? w->events : "*");
  sqlite3_bind_int64(st, 7, w->created_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert a webhook");
}

pq_err pq__sq_webhook_get(pq_conn *c, const char *id, pq_webhook **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_WH_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_webhook, free_webhook, (void **)out);
}

pq_err pq__sq_webhook_job_secret(pq_conn *c, const char *owner, pq_webhook **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_WH_JOB_SECRET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, owner ? owner : "");
  return pq__sq_one_row(c, st, make_webhook, free_webhook, (void **)out);
}

pq_err pq__sq_webhook_list(pq_conn *c, const char *owner, pq_webhook ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_WH_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, owner);
  return pq__sq_collect_rows(c, st, make_webhook, free_webhook, (void ***)out, n);
}

pq_err pq__sq_webhook_delete(pq_conn *c, const char *id, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_WH_CANCEL);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  sqlite3_bind_int64(st, 2, now);
  if (pq__sq_step_done(st) != SQLITE_DONE) return pq__sq_fail(c->db, "cancel a webhook's deliveries");
  if (!(st = pq__sq_stmt(c, SQL_WH_DELETE))) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_changed_one(c, st, "delete a webhook");
}

pq_err pq__sq_delivery_insert(pq_conn *c, const pq_delivery *d) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, d->id);
  pq__sq_bind_text(st, 2, d->webhook_id);
  pq__sq_bind_text(st, 3, d->owner ? d->owner : "");
  pq__sq_bind_text(st, 4, d->job_id);
  pq__sq_bind_text(st, 5, d->url);
  pq__sq_bind_text(st, 6, d->event_type);
  pq__sq_bind_text(st, 7, d->payload);
  pq__sq_bind_text(st, 8, pq_delivery_state_name(d->state));
  sqlite3_bind_int(st, 9, d->attempts);
  sqlite3_bind_int64(st, 10, d->next_at);
  sqlite3_bind_int64(st, 11, d->created_at);
  sqlite3_bind_int64(st, 12, d->updated_at);
  sqlite3_bind_int(st, 13, d->last_status);
  pq__sq_bind_text(st, 14, d->last_error);
  sqlite3_bind_int64(st, 15, d->retry_from ? d->retry_from : d->created_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert a delivery");
}

pq_err pq__sq_delivery_get(pq_conn *c, const char *id, pq_delivery **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_GET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  return pq__sq_one_row(c, st, make_delivery, free_delivery, (void **)out);
}

pq_err pq__sq_delivery_due(pq_conn *c, int64_t now, size_t limit, const char *skip_owners, const char *skip_urls,
                           pq_delivery ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_DUE);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
  pq__sq_bind_text(st, 3, skip_owners);
  pq__sq_bind_text(st, 4, skip_urls);
  return pq__sq_collect_rows(c, st, make_delivery, free_delivery, (void ***)out, n);
}

pq_err pq__sq_delivery_next_at(pq_conn *c, int64_t *at) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_NEXT);
  if (!st) return PQ_ERR_STORE_FAILED;
  return pq__sq_count_one(c, st, at);
}

pq_err pq__sq_delivery_update(pq_conn *c, const pq_delivery *d) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_UPDATE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, d->id);
  pq__sq_bind_text(st, 2, pq_delivery_state_name(d->state));
  sqlite3_bind_int(st, 3, d->attempts);
  sqlite3_bind_int64(st, 4, d->next_at);
  sqlite3_bind_int64(st, 5, d->updated_at);
  sqlite3_bind_int(st, 6, d->last_status);
  pq__sq_bind_text(st, 7, d->last_error);
  sqlite3_bind_int64(st, 8, d->retry_from);
  return pq__sq_changed_one(c, st, "update a delivery");
}

pq_err pq__sq_delivery_list(pq_conn *c, const char *owner, const char *job_id, int state, int64_t limit,
                            pq_delivery ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, owner);
  pq__sq_bind_text(st, 2, job_id);
  pq__sq_bind_text(st, 3, state < 0 ? NULL : pq_delivery_state_name((pq_delivery_state)state));
  sqlite3_bind_int64(st, 4, limit);
  return pq__sq_collect_rows(c, st, make_delivery, free_delivery, (void ***)out, n);
}

pq_err pq__sq_delivery_sweep(pq_conn *c, int64_t before) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_DL_SWEEP);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, before);
  return pq__sq_step_done(st) == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "sweep the delivery log");
}

pq_err pq__sq_webhook_set_secret(pq_conn *c, const char *id, const char *secret) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_WH_SECRET);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
  pq__sq_bind_text(st, 2, secret);
  return pq__sq_changed_one(c, st, "set a webhook's secret");
}
