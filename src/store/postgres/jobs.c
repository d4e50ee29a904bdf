/* The PostgreSQL backend's jobs: the same contract as SQLite's, with lease
 * selection that skips rows another coordinator has locked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/columns.h"
#include "store/pick.h"
#include "store/postgres/internal.h"

static const char SQL_CHILDREN[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE parent_id = $1 AND number > $2 "
                                   "ORDER BY number LIMIT $3";
static const char SQL_INSERT[] =
    "INSERT INTO jobs (id, model, input, priority, state, attempts, max_attempts, lease_timeout_ms, created_at, "
    "updated_at, not_before, expires_at, idempotency_key, request_hash, owner, kind, parent_id, held_micros, "
    "requirements, webhook_url, key_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) "
    /* a duplicate (an idempotency key another coordinator just used) answers no row, and
     * leaves the transaction usable, as a failed statement does in SQLite */
    "ON CONFLICT DO NOTHING RETURNING number";
static const char SQL_GET_ID[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE id = $1";
static const char SQL_GET_NUMBER[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE number = $1";
/* The writer reads a job it may change with its row locked until the commit:
 * the compare-and-set rewrites every column from this read, so another
 * coordinator's heartbeat or cancel in between must wait, not be undone. */
static const char SQL_LOCK_ID[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE id = $1 FOR UPDATE";
static const char SQL_LOCK_NUMBER[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE number = $1 FOR UPDATE";
static const char SQL_GET_IDEM[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE owner = $2 AND idempotency_key = $1";
static const char SQL_PEEK[] = "SELECT number, state, attempts, leased_at FROM jobs WHERE id = $1";
static const char SQL_UPDATE[] =
    "UPDATE jobs SET state = $1, attempts = $2, updated_at = $3, not_before = $4, leased_at = $5, finished_at = $6, "
    "worker_id = $7, lease_token = $8, lease_expires_at = $9, cancel_requested = $10, output = $11, "
    "prompt_tokens = $12, completion_tokens = $13, error_code = $14, error_message = $15, expires_at = $16, "
    "worker_signature = $20, cost_micros = $21 WHERE number = $17 AND state = $18 AND ($19::text IS NULL OR lease_token = $19)";
/* its own statement: job_update leaves the model alone, so the indexes led by it are not touched */
static const char SQL_SET_MODEL[] = "UPDATE jobs SET model = $2 WHERE number = $1 AND state = 'queued'";
static const char SQL_SCAN_QUEUED[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'queued' ORDER BY number";
static const char SQL_DUE_LEASES[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'leased' AND lease_expires_at <= $1 "
                                     "ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED";
static const char SQL_DUE_TTL[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'queued' AND expires_at <= $1 "
                                  "ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED";
/* rows another coordinator is leasing right now are skipped, not waited for */
/* a job's requirements (model/route.h) against the worker's capabilities $4 */
#define MEETS                                                                                                     \
  "(j.requirements IS NULL OR (COALESCE((j.requirements::jsonb->>'min_context')::bigint, 0) <= "                 \
  "(CASE WHEN jsonb_typeof($4::jsonb->'context_length') = 'number' THEN ($4::jsonb->>'context_length')::numeric " \
  "ELSE 0 END) AND COALESCE(j.requirements::jsonb->'labels', '{}'::jsonb) " \
  "<@ COALESCE($4::jsonb->'labels', '{}'::jsonb)))"
/* rows another coordinator is leasing right now are skipped, not waited for */
static const char SQL_PICK_URGENT[] = "SELECT j.number, j.owner FROM jobs j WHERE j.state = 'queued' AND j.model = $1 "
                                      "AND j.priority >= $5 AND j.not_before <= $2 AND " MEETS
                                      " ORDER BY j.priority DESC, j.number LIMIT $3 FOR UPDATE OF j SKIP LOCKED";
/* jobs_model_owner_queued walked one owner at a time (a loose index scan: its first column is not
 * the state, which a partial index's planner drops from the condition); those with a job this
 * worker may take now, ordered by their turns */
static const char SQL_PICK_OWNERS[] =
    "WITH RECURSIVE o(owner) AS (SELECT (SELECT owner FROM jobs WHERE state = 'queued' AND model = $1 ORDER BY owner LIMIT 1) "
    "UNION ALL SELECT (SELECT j.owner FROM jobs j WHERE j.state = 'queued' AND j.model = $1 AND j.owner > o.owner "
    "ORDER BY j.owner LIMIT 1) FROM o WHERE o.owner IS NOT NULL) "
    "SELECT o.owner FROM o LEFT JOIN owner_turns t ON t.model = $1 AND t.owner = o.owner "
    "WHERE o.owner IS NOT NULL AND EXISTS (SELECT 1 FROM jobs j WHERE j.state = 'queued' AND j.model = $1 AND "
    "j.owner = o.owner AND j.not_before <= $2 AND " MEETS ") ORDER BY COALESCE(t.served, 0), o.owner LIMIT $3";
static const char SQL_PICK_OWNER[] = "SELECT j.number FROM jobs j WHERE j.state = 'queued' AND j.model = $1 AND "
                                     "j.owner = $5 AND j.not_before <= $2 AND " MEETS
                                     " ORDER BY j.priority DESC, j.number LIMIT $3 FOR UPDATE OF j SKIP LOCKED";
/* the owner's running count is read under a lock of the owner's, held to the commit: two
 * coordinators cannot both see it below the limit. Tried, not waited for: a lock another holds
 * passes the owner over in this pick (no two coordinators can wait on each other) */
static const char SQL_PICK_LOCK[] = "SELECT pg_try_advisory_xact_lock(hashtext('promptq.running:' || $1))";
static const char SQL_PICK_RUNNING[] =
    "SELECT (SELECT COUNT(*) FROM jobs r WHERE r.state = 'leased' AND r.owner = $1 AND r.worker_id IS NOT NULL), "
    "(SELECT COUNT(*) FROM jobs r WHERE r.state = 'leased' AND r.owner = $1 AND r.model = $2 AND r.worker_id IS NOT NULL)";
static const char SQL_TURN[] =
    "INSERT INTO owner_turns (model, owner, served, streak) VALUES ($1, $2, CASE WHEN $4::int <= 1 THEN $3::bigint "
    "ELSE 0 END, CASE WHEN $4::int <= 1 THEN 0 ELSE 1 END) ON CONFLICT (model, owner) DO UPDATE SET "
    "served = CASE WHEN owner_turns.streak + 1 >= $4::int THEN GREATEST(owner_turns.served, $3::bigint) "
    "ELSE owner_turns.served END, "
    "streak = CASE WHEN owner_turns.streak + 1 >= $4::int THEN 0 ELSE owner_turns.streak + 1 END";
static const char SQL_EXTEND[] =
    "UPDATE jobs SET lease_expires_at = GREATEST(lease_expires_at, $2 + lease_timeout_ms) "
    "WHERE worker_id = $1 AND state = 'leased'";
static const char SQL_CANCEL_REQ[] = "SELECT id FROM jobs WHERE worker_id = $1 AND state = 'leased' AND cancel_requested = 1";
static const char SQL_LEASED_BY[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'leased' AND worker_id = $1 ORDER BY number";
static const char SQL_END_LEASES[] = "UPDATE jobs SET lease_expires_at = $2 WHERE worker_id = $1 AND state = 'leased'";
static const char SQL_COUNT_STATE[] = "SELECT COUNT(*) FROM jobs WHERE state = $1";
static const char SQL_COUNT_ALL[] = "SELECT COUNT(*) FROM jobs";
static const char SQL_AHEAD[] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' AND model = $2 "
                                "AND priority >= $3 AND (priority > $3 OR number < $1) LIMIT $4) AS ahead";
static const char SQL_AHEAD_OWNER[] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' AND model = $2 "
                                      "AND priority >= $3 AND (priority > $3 OR number < $1) AND owner = $5 LIMIT $4) AS ahead";
static const char SQL_TOTALS_ALL[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM jobs";
static const char SQL_TOTALS_OWNER[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM jobs WHERE owner = $1";
static const char SQL_COUNT_ACTIVE[] = "SELECT model, state, COUNT(*) FROM jobs WHERE state IN ('queued', 'leased') "
                                       "GROUP BY model, state";
static const char SQL_COUNT_OWNER_QUEUED[] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE owner = $1 "
                                             "AND state = 'queued' LIMIT $2) AS queued";

static pq_job *row_to_job(const PGresult *r, int row) {
  pq_job *j = pq_job_new();
  if (!j) return NULL;
  int i = 0;
  j->number = pq__pg_i64(r, row, i++);
  const char *id = pq__pg_col(r, row, i++);
  snprintf(j->id, sizeof j->id, "%s", id ? id : "");
  int bad = pq__pg_dup(r, row, i++, &j->model);
  bad |= pq__pg_dup(r, row, i++, &j->input);
  j->priority = (int)pq__pg_i64(r, row, i++);
  int state = pq_job_state_parse(pq__pg_col(r, row, i++));
  j->state = state < 0 ? PQ_JOB_FAILED : (pq_job_state)state;
  j->attempts = (int)pq__pg_i64(r, row, i++);
  j->max_attempts = (int)pq__pg_i64(r, row, i++);
  j->lease_timeout_ms = pq__pg_i64(r, row, i++);
  j->created_at = pq__pg_i64(r, row, i++);
  j->updated_at = pq__pg_i64(r, row, i++);
  j->not_before = pq__pg_i64(r, row, i++);
  j->expires_at = pq__pg_i64(r, row, i++);
  j->leased_at = pq__pg_i64(r, row, i++);
  j->finished_at = pq__pg_i64(r, row, i++);
  bad |= pq__pg_dup(r, row, i++, &j->worker_id);
  bad |= pq__pg_dup(r, row, i++, &j->lease_token);
  j->lease_expires_at = pq__pg_i64(r, row, i++);
  j->cancel_requested = pq__pg_i64(r, row, i++) != 0;
  bad |= pq__pg_dup(r, row, i++, &j->output);
  j->prompt_tokens = pq__pg_i64(r, row, i++);
  j->completion_tokens = pq__pg_i64(r, row, i++);
  bad |= pq__pg_dup(r, row, i++, &j->error_code);
  bad |= pq__pg_dup(r, row, i++, &j->error_message);
  bad |= pq__pg_dup(r, row, i++, &j->idempotency_key);
  bad |= pq__pg_dup(r, row, i++, &j->request_hash);
  bad |= pq__pg_dup(r, row, i++, &j->owner);
  bad |= pq__pg_dup(r, row, i++, &j->worker_signature);
  bad |= pq__pg_dup(r, row, i++, &j->kind);
  bad |= pq__pg_dup(r, row, i++, &j->parent_id);
  j->held_micros = pq__pg_i64(r, row, i++);
  j->cost_micros = pq__pg_i64(r, row, i++);
  bad |= pq__pg_dup(r, row, i++, &j->requirements);
  bad |= pq__pg_dup(r, row, i++, &j->webhook_url);
  bad |= pq__pg_dup(r, row, i++, &j->key_id);
  if (bad || !j->model || !j->input || !j->kind) {
    pq_job_free(j);
    return NULL;
  }
  return j;
}

static pq_err rows_to_jobs(PGresult *r, pq_job ***out, size_t *n) {
  int rows = PQntuples(r);
  pq_job **jobs = rows ? calloc((size_t)rows, sizeof *jobs) : NULL;
  pq_err result = rows && !jobs ? PQ_ERR_NO_MEMORY : PQ_OK;
  for (int i = 0; result == PQ_OK && i < rows; i++)
    if (!(jobs[i] = row_to_job(r, i))) {
      pq_job_free_array(jobs, (size_t)i);
      jobs = NULL;
      result = PQ_ERR_NO_MEMORY;
    }
  *out = result == PQ_OK ? jobs : NULL;
  *n = result == PQ_OK ? (size_t)rows : 0;
  return result;
}

static pq_err one_job(pq_conn *c, const char *sql, pq__pgp *p, pq_job **out) {
  pq_err err;
  PGresult *r = pq__pg_run(c, sql, p, &err);
  if (!r) return err;
  if (PQntuples(r) == 0) err = PQ_ERR_NOT_FOUND;
  else if (!(*out = row_to_job(r, 0))) err = PQ_ERR_NO_MEMORY;
  PQclear(r);
  return err;
}

static pq_err count_of(pq_conn *c, const char *sql, pq__pgp *p, int64_t *count) {
  pq_err err;
  PGresult *r = pq__pg_run(c, sql, p, &err);
  if (!r) return err;
  *count = pq__pg_i64(r, 0, 0);
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_job_insert(pq_conn *c, pq_job *j) {
  pq__pgp p = {0};
  pq__pg_text(&p, j->id);
  pq__pg_text(&p, j->model);
  pq__pg_text(&p, j->input);
  pq__pg_int(&p, j->priority);
  pq__pg_text(&p, pq_job_state_name(j->state));
  pq__pg_int(&p, j->attempts);
  pq__pg_int(&p, j->max_attempts);
  pq__pg_int(&p, j->lease_timeout_ms);
  pq__pg_int(&p, j->created_at);
  pq__pg_int(&p, j->updated_at);
  pq__pg_int(&p, j->not_before);
  pq__pg_ms(&p, j->expires_at);
  pq__pg_text(&p, j->idempotency_key);
  pq__pg_text(&p, j->request_hash);
  pq__pg_text(&p, j->owner ? j->owner : "");
  pq__pg_text(&p, j->kind ? j->kind : PQ_JOB_KIND_DEFAULT);
  pq__pg_text(&p, j->parent_id);
  pq__pg_int(&p, j->held_micros);
  pq__pg_text(&p, j->requirements);
  pq__pg_text(&p, j->webhook_url);
  pq__pg_text(&p, j->key_id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_INSERT, &p, &err);
  if (!r) return err;
  if (PQntuples(r) == 1) j->number = pq__pg_i64(r, 0, 0);
  else err = PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

pq_err pq__pg_job_get(pq_conn *c, const char *id, int64_t number, pq_job **out) {
  pq__pgp p = {0};
  if (id) pq__pg_text(&p, id);
  else pq__pg_int(&p, number);
  bool lock = c->writer && c->in_txn;
  return one_job(c, id ? (lock ? SQL_LOCK_ID : SQL_GET_ID) : (lock ? SQL_LOCK_NUMBER : SQL_GET_NUMBER), &p, out);
}

pq_err pq__pg_job_get_by_idem(pq_conn *c, const char *owner, const char *key, pq_job **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, key);
  pq__pg_text(&p, owner ? owner : "");
  return one_job(c, SQL_GET_IDEM, &p, out);
}

pq_err pq__pg_job_peek(pq_conn *c, const char *id, pq_job *out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_PEEK, &p, &err);
  if (!r) return err;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return PQ_ERR_NOT_FOUND;
  }
  memset(out, 0, sizeof *out);
  snprintf(out->id, sizeof out->id, "%s", id);
  out->number = pq__pg_i64(r, 0, 0);
  int state = pq_job_state_parse(pq__pg_col(r, 0, 1));
  out->state = state < 0 ? PQ_JOB_FAILED : (pq_job_state)state;
  out->attempts = (int)pq__pg_i64(r, 0, 2);
  out->leased_at = pq__pg_i64(r, 0, 3);
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_job_update(pq_conn *c, const pq_job *j, pq_job_state expect_state, const char *expect_token) {
  pq__pgp p = {0};
  pq__pg_text(&p, pq_job_state_name(j->state));
  pq__pg_int(&p, j->attempts);
  pq__pg_int(&p, j->updated_at);
  pq__pg_int(&p, j->not_before);
  pq__pg_ms(&p, j->leased_at);
  pq__pg_ms(&p, j->finished_at);
  pq__pg_text(&p, j->worker_id);
  pq__pg_text(&p, j->lease_token);
  pq__pg_ms(&p, j->lease_expires_at);
  pq__pg_int(&p, j->cancel_requested);
  pq__pg_text(&p, j->output);
  pq__pg_int(&p, j->prompt_tokens);
  pq__pg_int(&p, j->completion_tokens);
  pq__pg_text(&p, j->error_code);
  pq__pg_text(&p, j->error_message);
  pq__pg_ms(&p, j->expires_at);
  pq__pg_int(&p, j->number);
  pq__pg_text(&p, pq_job_state_name(expect_state));
  pq__pg_text(&p, expect_token);
  pq__pg_text(&p, j->worker_signature);
  pq__pg_int(&p, j->cost_micros);
  int64_t changed = 0;
  pq_err err = pq__pg_command(c, SQL_UPDATE, &p, &changed);
  if (err != PQ_OK) return err;
  return changed == 1 ? PQ_OK : PQ_ERR_STALE;
}

pq_err pq__pg_job_list(pq_conn *c, const pq_job_filter *f, pq_job ***out, size_t *n, int64_t *total) {
  char where[256] = "WHERE 1 = 1", sql[1400];
  pq__pgp p = {0};
  char num[8];
  if (f->state >= 0) {
    pq__pg_text(&p, pq_job_state_name((pq_job_state)f->state));
    snprintf(num, sizeof num, "$%d", p.n);
    strcat(where, " AND state = "), strcat(where, num);
  }
  if (f->model) {
    pq__pg_text(&p, f->model);
    snprintf(num, sizeof num, "$%d", p.n);
    strcat(where, " AND model = "), strcat(where, num);
  }
  if (f->owner) {
    pq__pg_text(&p, f->owner);
    snprintf(num, sizeof num, "$%d", p.n);
    strcat(where, " AND owner = "), strcat(where, num);
  }
  pq_err err;
  PGresult *r;
  *total = 0;
  if (!f->no_total) {
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM jobs %s", where);
    if (!(r = pq__pg_run_once(c, sql, &p, &err))) return err;
    *total = pq__pg_i64(r, 0, 0);
    PQclear(r);
  }
  if (f->lease_order) { /* what a lease could take now: past its retry backoff */
    pq__pg_int(&p, f->ready_by);
    snprintf(num, sizeof num, "$%d", p.n);
    strcat(where, " AND not_before <= "), strcat(where, num);
  }
  int base = p.n;
  pq__pg_int(&p, f->limit);
  pq__pg_int(&p, f->offset);
  snprintf(sql, sizeof sql, "SELECT %s FROM jobs %s ORDER BY %s LIMIT $%d OFFSET $%d",
           f->summary ? PQ__JOB_SUMMARY_COLS : PQ__JOB_COLS, where,
           f->lease_order ? "priority DESC, number" : "number DESC", base + 1, base + 2);
  if (!(r = pq__pg_run_once(c, sql, &p, &err))) return err;
  err = rows_to_jobs(r, out, n);
  PQclear(r);
  return err;
}

pq_err pq__pg_job_scan_queued(pq_conn *c, pq_job_scan_fn fn, void *ctx) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_SCAN_QUEUED, NULL, &err);
  if (!r) return err;
  for (int i = 0; i < PQntuples(r); i++) {
    pq_job *j = row_to_job(r, i);
    if (!j) {
      err = PQ_ERR_NO_MEMORY;
      break;
    }
    int stop = fn(ctx, j);
    pq_job_free(j);
    if (stop) break;
  }
  PQclear(r);
  return err;
}

pq_err pq__pg_job_scan_due(pq_conn *c, int64_t now, size_t limit, pq_job_scan_fn fn, void *ctx) {
  static const char *const which[] = {SQL_DUE_LEASES, SQL_DUE_TTL};
  for (size_t k = 0; k < 2; k++) {
    pq__pgp p = {0};
    pq__pg_int(&p, now);
    pq__pg_int(&p, (int64_t)limit);
    pq_err err;
    PGresult *r = pq__pg_run(c, which[k], &p, &err);
    if (!r) return err;
    pq_job **jobs;
    size_t n;
    err = rows_to_jobs(r, &jobs, &n);
    PQclear(r);
    if (err != PQ_OK) return err;
    bool stop = false;
    for (size_t i = 0; i < n && !stop; i++) stop = fn(ctx, jobs[i]) != 0;
    pq_job_free_array(jobs, n);
    if (stop) return PQ_OK;
  }
  return PQ_OK;
}

typedef struct {
  pq_conn *c;
  const pq_pick *p;
} pick_ctx;

/* Runs one of the pick statements; rows of (number[, owner]) into the arrays. */
static pq_err pick_rows(pick_ctx *x, const char *sql, pq__pgp *p, size_t max, int64_t *numbers, pq__owner_id *owners,
                        size_t *n) {
  pq_err err;
  PGresult *r = pq__pg_run(x->c, sql, p, &err);
  *n = 0;
  if (!r) return err;
  for (int i = 0; i < PQntuples(r) && *n < max; i++, (*n)++) {
    if (numbers) numbers[*n] = pq__pg_i64(r, i, 0);
    if (owners) snprintf(owners[*n], sizeof *owners, "%s", pq__pg_col(r, i, numbers ? 1 : 0) ?: "");
  }
  PQclear(r);
  return PQ_OK;
}

static void pick_terms(pq__pgp *p, const pick_ctx *x, size_t limit) { /* $1..$4 of the job queries */
  pq__pg_text(p, x->p->model);
  pq__pg_int(p, x->p->now);
  pq__pg_int(p, (int64_t)limit);
  pq__pg_text(p, x->p->offer);
}

static pq_err pick_urgent(void *ctx, size_t limit, int64_t *numbers, pq__owner_id *owners, size_t *n) {
  pick_ctx *x = ctx;
  pq__pgp p = {0};
  pick_terms(&p, x, limit);
  pq__pg_int(&p, x->p->urgent);
  return pick_rows(x, SQL_PICK_URGENT, &p, limit, numbers, owners, n);
}

static pq_err pick_owners(void *ctx, pq__owner_id *owners, size_t max, size_t *n) {
  pick_ctx *x = ctx;
  pq__pgp p = {0};
  pick_terms(&p, x, max);
  return pick_rows(x, SQL_PICK_OWNERS, &p, max, NULL, owners, n);
}

static pq_err pick_may_run(void *ctx, const char *owner, bool *may) {
  pick_ctx *x = ctx;
  if (!*owner) return *may = true, PQ_OK;
  pq__pgp lock = {0}, p = {0};
  pq__pg_text(&lock, owner);
  pq_err err;
  PGresult *locked = pq__pg_run(x->c, SQL_PICK_LOCK, &lock, &err);
  if (!locked) return err;
  bool mine = PQntuples(locked) == 1 && strcmp(PQgetvalue(locked, 0, 0), "t") == 0;
  PQclear(locked);
  if (!mine) return *may = false, PQ_OK; /* another coordinator is leasing for this owner right now */
  pq__pg_text(&p, owner);
  pq__pg_text(&p, x->p->model);
  PGresult *r = pq__pg_run(x->c, SQL_PICK_RUNNING, &p, &err);
  if (!r) return err;
  int64_t all = pq__pg_i64(r, 0, 0), of_model = pq__pg_i64(r, 0, 1);
  PQclear(r);
  *may = (x->p->max_running <= 0 || all < x->p->max_running) &&
         (x->p->max_running_model <= 0 || of_model < x->p->max_running_model);
  return PQ_OK;
}

static pq_err pick_of_owner(void *ctx, const char *owner, size_t limit, int64_t *numbers, size_t *n) {
  pick_ctx *x = ctx;
  pq__pgp p = {0};
  pick_terms(&p, x, limit);
  pq__pg_text(&p, owner);
  return pick_rows(x, SQL_PICK_OWNER, &p, limit, numbers, NULL, n);
}

static const pq__pick_queries PICK = {pick_urgent, pick_owners, pick_of_owner, pick_may_run};

pq_err pq__pg_job_pick(pq_conn *c, const pq_pick *pick, size_t limit, int64_t *numbers, pq__owner_id *owners,
                       size_t *n) {
  pick_ctx x = {.c = c, .p = pick};
  bool limited = pick->max_running > 0 || pick->max_running_model > 0;
  return pq__pick_fair(&PICK, &x, pick->urgent, limited, limit, numbers, owners, n);
}

pq_err pq__pg_turn_charge(pq_conn *c, const char *model, const char *owner, int64_t tick, int weight) {
  pq__pgp p = {0};
  pq__pg_text(&p, model);
  pq__pg_text(&p, owner ? owner : "");
  pq__pg_int(&p, tick);
  pq__pg_int(&p, weight);
  return pq__pg_command(c, SQL_TURN, &p, NULL);
}

static pq_err worker_jobs(pq_conn *c, const char *sql, const char *worker_id, int64_t t) {
  pq__pgp p = {0};
  pq__pg_text(&p, worker_id);
  pq__pg_int(&p, t);
  return pq__pg_command(c, sql, &p, NULL);
}

pq_err pq__pg_job_extend_leases(pq_conn *c, const char *worker_id, int64_t now) {
  return worker_jobs(c, SQL_EXTEND, worker_id, now);
}

pq_err pq__pg_job_end_leases(pq_conn *c, const char *worker_id, int64_t now) {
  return worker_jobs(c, SQL_END_LEASES, worker_id, now);
}

pq_err pq__pg_job_children(pq_conn *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                           size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, parent_id);
  pq__pg_int(&p, after);
  pq__pg_int(&p, limit);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_CHILDREN, &p, &err);
  if (!r) return err;
  err = rows_to_jobs(r, out, n);
  PQclear(r);
  return err;
}

pq_err pq__pg_job_leased_by(pq_conn *c, const char *worker_id, pq_job ***out, size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, worker_id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_LEASED_BY, &p, &err);
  if (!r) return err;
  err = rows_to_jobs(r, out, n);
  PQclear(r);
  return err;
}

pq_err pq__pg_job_cancel_requested(pq_conn *c, const char *worker_id, char ***ids, size_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, worker_id);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_CANCEL_REQ, &p, &err);
  if (!r) return err;
  int rows = PQntuples(r);
  char **list = rows ? calloc((size_t)rows, sizeof *list) : NULL;
  bool short_of_memory = rows && !list;
  for (int i = 0; list && i < rows; i++) short_of_memory |= !(list[i] = strdup(PQgetvalue(r, i, 0)));
  PQclear(r);
  if (short_of_memory) {
    for (int i = 0; list && i < rows; i++) free(list[i]);
    free(list);
    return PQ_ERR_NO_MEMORY;
  }
  *ids = list;
  *n = (size_t)rows;
  return PQ_OK;
}

pq_err pq__pg_job_count(pq_conn *c, int state, int64_t *count) {
  pq__pgp p = {0};
  if (state >= 0) pq__pg_text(&p, pq_job_state_name((pq_job_state)state));
  return count_of(c, state >= 0 ? SQL_COUNT_STATE : SQL_COUNT_ALL, &p, count);
}

pq_err pq__pg_job_ahead(pq_conn *c, const pq_job *job, bool same_owner, int64_t cap, int64_t *ahead) {
  pq__pgp p = {0};
  pq__pg_int(&p, job->number);
  pq__pg_text(&p, job->model);
  pq__pg_int(&p, job->priority);
  pq__pg_int(&p, cap);
  if (same_owner) pq__pg_text(&p, job->owner ? job->owner : "");
  return count_of(c, same_owner ? SQL_AHEAD_OWNER : SQL_AHEAD, &p, ahead);
}

pq_err pq__pg_job_count_queued_by_owner(pq_conn *c, const char *owner, int64_t cap, int64_t *n) {
  pq__pgp p = {0};
  pq__pg_text(&p, owner);
  pq__pg_int(&p, cap);
  return count_of(c, SQL_COUNT_OWNER_QUEUED, &p, n);
}

pq_err pq__pg_job_totals(pq_conn *c, const char *owner, int64_t *total, int64_t *completed, int64_t *tokens) {
  pq__pgp p = {0};
  if (owner) pq__pg_text(&p, owner);
  pq_err err;
  PGresult *r = pq__pg_run(c, owner ? SQL_TOTALS_OWNER : SQL_TOTALS_ALL, &p, &err);
  if (!r) return err;
  *total = pq__pg_i64(r, 0, 0);
  *completed = pq__pg_i64(r, 0, 1);
  *tokens = pq__pg_i64(r, 0, 2);
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_job_count_active(pq_conn *c, void (*fn)(void *, const char *, pq_job_state, int64_t), void *ctx) {
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_COUNT_ACTIVE, NULL, &err);
  if (!r) return err;
  for (int i = 0; i < PQntuples(r); i++) {
    int state = pq_job_state_parse(PQgetvalue(r, i, 1));
    if (state >= 0) fn(ctx, PQgetvalue(r, i, 0), (pq_job_state)state, pq__pg_i64(r, i, 2));
  }
  PQclear(r);
  return PQ_OK;
}

pq_err pq__pg_job_set_model(pq_conn *c, int64_t number, const char *model) {
  pq__pgp p = {0};
  pq__pg_int(&p, number);
  pq__pg_text(&p, model);
  pq_err err = pq__pg_changed_one(c, SQL_SET_MODEL, &p);
  return err == PQ_ERR_NOT_FOUND ? PQ_ERR_STALE : err;
}
