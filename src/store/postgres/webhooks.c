/* The PostgreSQL backend's completion webhooks: the same contract as
 * SQLite's, with due deliveries claimed past rows another coordinator's
 * sender holds. */
#include <stdint.h>
#include <stdlib.h>

#include "store/columns.h"
#include "store/postgres/internal.h"

/* a second job secret for an owner (another coordinator's, a moment earlier) answers no row and
 * leaves the transaction usable, as a failed statement does in SQLite */
static const char SQL_WH_INSERT[] = "INSERT INTO webhooks (" PQ__WEBHOOK_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7) "
                                    "ON CONFLICT DO NOTHING RETURNING id";
static const char SQL_WH_GET[] = "SELECT " PQ__WEBHOOK_COLS " FROM webhooks WHERE id = $1";
static const char SQL_WH_JOB_SECRET[] = "SELECT " PQ__WEBHOOK_COLS " FROM webhooks WHERE owner = $1 AND url IS NULL";
static const char SQL_WH_LIST[] = "SELECT " PQ__WEBHOOK_COLS " FROM webhooks WHERE ($1::text IS NULL OR owner = $1) "
                                  "ORDER BY created_at, id";
static const char SQL_WH_CANCEL[] = "UPDATE webhook_deliveries SET state = 'cancelled', updated_at = $2 "
                                    "WHERE webhook_id = $1 AND state = 'pending'";
static const char SQL_WH_DELETE[] = "DELETE FROM webhooks WHERE id = $1";
static const char SQL_WH_SECRET[] = "UPDATE webhooks SET secret = $2 WHERE id = $1";
static const char SQL_DL_INSERT[] =
    "INSERT INTO webhook_deliveries (id, webhook_id, owner, job_id, url, event_type, payload, state, attempts, "
    "next_at, created_at, updated_at, last_status, last_error, retry_from) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
static const char SQL_DL_GET[] = "SELECT " PQ__DELIVERY_COLS ", w.secret FROM webhook_deliveries d "
                                 "LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1";
static const char SQL_DL_DUE[] = "SELECT " PQ__DELIVERY_COLS ", w.secret FROM webhook_deliveries d "
                                 "LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' "
                                 "AND d.next_at <= $1 AND ($3::text IS NULL OR d.owner <> ALL(ARRAY(SELECT jsonb_array_elements_text($3::jsonb)))) "
                                 "AND ($4::text IS NULL OR d.url <> ALL(ARRAY(SELECT jsonb_array_elements_text($4::jsonb)))) "
                                 "ORDER BY d.next_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED";
static const char SQL_DL_NEXT[] = "SELECT COALESCE(MIN(next_at), 9223372036854775807) FROM webhook_deliveries "
                                  "WHERE state = 'pending'";
static const char SQL_DL_UPDATE[] = "UPDATE webhook_deliveries SET state = $2, attempts = $3, next_at = $4, "
                                    "updated_at = $5, last_status = $6, last_error = $7, retry_from = $8 WHERE id = $1";
static const char SQL_DL_LIST[] = "SELECT " PQ__DELIVERY_COLS ", NULL FROM webhook_deliveries d "
                                  "WHERE ($1::text IS NULL OR d.owner = $1) AND ($2::text IS NULL OR d.job_id = $2) AND "
                                  "($3::text IS NULL OR d.state = $3) ORDER BY d.created_at DESC, d.id DESC LIMIT $4";

static const char SQL_DL_SWEEP[] = "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1";

static void free_webhook(void *w) { pq_webhook_free(w); }
static void free_delivery(void *d) { pq_delivery_free(d); }

static void *make_webhook(const PGresult *r, int row) {
  pq_webhook *w = calloc(1, sizeof *w);
  if (!w || pq__pg_dup(r, row, 0, &w->id) || pq__pg_dup(r, row, 1, &w->owner) || pq__pg_dup(r, row, 2, &w->key_id) ||
      pq__pg_dup(r, row, 3, &w->url) || pq__pg_dup(r, row, 4, &w->secret) || pq__pg_dup(r, row, 5, &w->events)) {
    pq_webhook_free(w);
    return NULL;
  }
  w->created_at = pq__pg_i64(r, row, 6);
  return w;
}

static void *make_delivery(const PGresult *r, int row) {
  pq_delivery *d = calloc(1, sizeof *d);
  if (!d || pq__pg_dup(r, row, 0, &d->id) || pq__pg_dup(r, row, 1, &d->webhook_id) || pq__pg_dup(r, row, 2, &d->owner) ||
      pq__pg_dup(r, row, 3, &d->job_id) || pq__pg_dup(r, row, 4, &d->url) || pq__pg_dup(r, row, 5, &d->event_type) ||
      pq__pg_dup(r, row, 6, &d->payload) || pq__pg_dup(r, row, 13, &d->last_error) ||
      pq__pg_dup(r, row, 15, &d->secret)) {
    pq_delivery_free(d);
    return NULL;
  }
  int state = pq_delivery_state_parse(pq__pg_col(r, row, 7));
  d->state = state < 0 ? PQ_DELIVERY_FAILED : (pq_delivery_state)state;
  d->attempts = (int)pq__pg_i64(r, row, 8);
  d->next_at = pq__pg_i64(r, row, 9);
  d->created_at = pq__pg_i64(r, row, 10);
  d->updated_at = pq__pg_i64(r, row, 11);
  d->last_status = (int)pq__pg_i64(r, row, 12);
  d->retry_from = pq__pg_i64(r, row, 14);
  return d;
}

pq_err pq__pg_webhook_insert(pq_conn *c, const pq_webhook *w) {
  pq__pgp p = {0};
  pq__pg_text(&p, w->id);
  pq__pg_text(&p, w->owner ? w->owner : "");
  pq__pg_text(&p, w->key_id);
  pq__pg_text(&p, w->url);
  pq__pg_text(&p, w->secret);
  pq__pg_text(&p, w->events ? w->events : "*");
  pq__pg_int(&p, w->created_at);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_WH_INSERT, &p, &err);
  if (!r) return err;
  err = PQntuples(r) == 1 ? PQ_OK : PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

pq_err pq__pg_webhook_get(pq_conn *c, const char *id, pq_webhook **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  return pq__pg_one(c, SQL_WH_GET, &p, make_webhook, free_webhook, (void **)out);
}

pq_err pq__pg_webhook_job_secret(pq_conn *c, const char *owner, pq_webhook **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, owner ? owner : "");
  return pq__pg_one(c, SQL_WH_JOB_SECRET, &p, make_webhook, free_webhook, (void **)out);
}

pq_err pq__pg_webhook_list(pq_conn *c, const char *owner, pq_webhook ***out, size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, owner);
  return pq__pg_rows(c, SQL_WH_LIST, &p, make_webhook, free_webhook, (void ***)out, n);
}

pq_err pq__pg_webhook_delete(pq_conn *c, const char *id, int64_t now) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_int(&p, now);
  pq_err err = pq__pg_command(c, SQL_WH_CANCEL, &p, NULL);
  pq__pgp q = {0};
  pq__pg_text(&q, id);
  return err == PQ_OK ? pq__pg_changed_one(c, SQL_WH_DELETE, &q) : err;
}

pq_err pq__pg_delivery_insert(pq_conn *c, const pq_delivery *d) {
  pq__pgp p = {0};
  pq__pg_text(&p, d->id);
  pq__pg_text(&p, d->webhook_id);
  pq__pg_text(&p, d->owner ? d->owner : "");
  pq__pg_text(&p, d->job_id);
  pq__pg_text(&p, d->url);
  pq__pg_text(&p, d->event_type);
  pq__pg_text(&p, d->payload);
  pq__pg_text(&p, pq_delivery_state_name(d->state));
  pq__pg_int(&p, d->attempts);
  pq__pg_int(&p, d->next_at);
  pq__pg_int(&p, d->created_at);
  pq__pg_int(&p, d->updated_at);
  pq__pg_int(&p, d->last_status);
  pq__pg_text(&p, d->last_error);
  pq__pg_int(&p, d->retry_from ? d->retry_from : d->created_at);
  return pq__pg_command(c, SQL_DL_INSERT, &p, NULL);
}

pq_err pq__pg_delivery_get(pq_conn *c, const char *id, pq_delivery **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  return pq__pg_one(c, SQL_DL_GET, &p, make_delivery, free_delivery, (void **)out);
}

pq_err pq__pg_delivery_due(pq_conn *c, int64_t now, size_t limit, const char *skip_owners, const char *skip_urls,
                           pq_delivery ***out, size_t *n) {
  pq__pgp p = {0};
  pq__pg_int(&p, now);
  pq__pg_int(&p, (int64_t)limit);
  pq__pg_text(&p, skip_owners);
  pq__pg_text(&p, skip_urls);
  return pq__pg_rows(c, SQL_DL_DUE, &p, make_delivery, free_delivery, (void ***)out, n);
}

pq_err pq__pg_delivery_next_at(pq_conn *c, int64_t *at) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_DL_NEXT, NULL, &err);
  if (!r) return err;
  *at = pq__pg_i64(r, 0, 0);
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_delivery_update(pq_conn *c, const pq_delivery *d) {
  pq__pgp p = {0};
  pq__pg_text(&p, d->id);
  pq__pg_text(&p, pq_delivery_state_name(d->state));
  pq__pg_int(&p, d->attempts);
  pq__pg_int(&p, d->next_at);
  pq__pg_int(&p, d->updated_at);
  pq__pg_int(&p, d->last_status);
  pq__pg_text(&p, d->last_error);
  pq__pg_int(&p, d->retry_from);
  return pq__pg_changed_one(c, SQL_DL_UPDATE, &p);
}

pq_err pq__pg_delivery_list(pq_conn *c, const char *owner, const char *job_id, int state, int64_t limit,
                            pq_delivery ***out, size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, owner);
  pq__pg_text(&p, job_id);
  pq__pg_text(&p, state < 0 ? NULL : pq_delivery_state_name((pq_delivery_state)state));
  pq__pg_int(&p, limit);
  return pq__pg_rows(c, SQL_DL_LIST, &p, make_delivery, free_delivery, (void ***)out, n);
}

pq_err pq__pg_delivery_sweep(pq_conn *c, int64_t before) {
  pq__pgp p = {0};
  pq__pg_int(&p, before);
  return pq__pg_command(c, SQL_DL_SWEEP, &p, NULL);
}

pq_err pq__pg_webhook_set_secret(pq_conn *c, const char *id, const char *secret) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq__pg_text(&p, secret);
  return pq__pg_changed_one(c, SQL_WH_SECRET, &p);
}
