/* The SQLite backend's jobs: rows, compare-and-set updates, listings, the
 * scans the engine runs (index rebuild, due leases and ttls) and lease
 * selection. The indexes these rely on are in migrations/0005. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/columns.h"
#include "store/pick.h"
#include "store/sqlite/internal.h"

/* the same columns, the input and output left out (what a listing needs) */

static const char SQL_INSERT[] =
    "INSERT INTO jobs (id, model, input, priority, state, attempts, max_attempts, "
    "lease_timeout_ms, created_at, updated_at, not_before, expires_at, idempotency_key, "
    "request_hash, owner, kind, parent_id, held_micros, requirements, webhook_url, key_id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";
static const char SQL_GET_ID[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE id = ?1";
static const char SQL_GET_NUMBER[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE number = ?1";
static const char SQL_GET_IDEM[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE owner = ?2 AND idempotency_key = ?1";
static const char SQL_CHILDREN[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE parent_id = ?1 AND number > ?2 "
                                   "ORDER BY number LIMIT ?3";
static const char SQL_PEEK[] = "SELECT number, state, attempts, leased_at FROM jobs WHERE id = ?1";
static const char SQL_UPDATE[] =
    "UPDATE jobs SET state = ?1, attempts = ?2, updated_at = ?3, not_before = ?4, "
    "leased_at = ?5, finished_at = ?6, worker_id = ?7, lease_token = ?8, "
    "lease_expires_at = ?9, cancel_requested = ?10, output = ?11, prompt_tokens = ?12, "
    "completion_tokens = ?13, error_code = ?14, error_message = ?15, expires_at = ?16, "
    "worker_signature = ?20, cost_micros = ?21 "
    "WHERE number = ?17 AND state = ?18 AND (?19 IS NULL OR lease_token = ?19)";
/* its own statement: job_update leaves the model alone, so the indexes led by it are not touched */
static const char SQL_SET_MODEL[] = "UPDATE jobs SET model = ?2 WHERE number = ?1 AND state = 'queued'";
static const char SQL_SCAN_QUEUED[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'queued' ORDER BY number";
/* the state leads jobs_lease_due and jobs_ttl_due, so these stay O(due rows) */
static const char SQL_DUE_LEASES[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'leased' "
                                     "AND lease_expires_at <= ?1 ORDER BY lease_expires_at LIMIT ?2";
static const char SQL_DUE_TTL[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'queued' "
                                  "AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2";
/* jobs_queued: one model's queued jobs in lease order */
/* a job's requirements (model/route.h) against the worker's capabilities ?4 */
#define MEETS                                                                                                        \
  "(j.requirements IS NULL OR (COALESCE(json_extract(j.requirements, '$.min_context'), 0) <= "                      \
  "(CASE WHEN json_type(?4, '$.context_length') IN ('integer', 'real') THEN json_extract(?4, '$.context_length') " \
  "ELSE 0 END) AND NOT EXISTS (SELECT 1 FROM "                                 \
  "json_each(j.requirements, '$.labels') AS l WHERE json_extract(?4, '$.labels.\"' || l.key || '\"') IS NOT l.value)))"
/* jobs_queued: the model's queued jobs in lease order, from the urgent priority ?7 up */
static const char SQL_PICK_URGENT[] = "SELECT j.number, j.owner FROM jobs j WHERE j.state = 'queued' AND j.model = ?1 "
                                      "AND j.priority >= ?7 AND j.not_before <= ?2 AND " MEETS
                                      " ORDER BY j.priority DESC, j.number LIMIT ?3";
/* jobs_owner_lane walked one owner at a time (a loose index scan); those with a job this worker
 * may take now, ordered by their turns */
static const char SQL_PICK_OWNERS[] =
    "WITH RECURSIVE o(owner) AS (SELECT (SELECT owner FROM jobs WHERE state = 'queued' AND model = ?1 ORDER BY owner LIMIT 1) "
    "UNION ALL SELECT (SELECT j.owner FROM jobs j WHERE j.state = 'queued' AND j.model = ?1 AND j.owner > o.owner "
    "ORDER BY j.owner LIMIT 1) FROM o WHERE o.owner IS NOT NULL) "
    "SELECT o.owner FROM o LEFT JOIN owner_turns t ON t.model = ?1 AND t.owner = o.owner "
    "WHERE o.owner IS NOT NULL AND EXISTS (SELECT 1 FROM jobs j WHERE j.state = 'queued' AND j.model = ?1 AND "
    "j.owner = o.owner AND j.not_before <= ?2 AND " MEETS ") ORDER BY COALESCE(t.served, 0), o.owner LIMIT ?3";
static const char SQL_PICK_OWNER[] = "SELECT j.number FROM jobs j WHERE j.state = 'queued' AND j.model = ?1 AND "
                                     "j.owner = ?8 AND j.not_before <= ?2 AND " MEETS
                                     " ORDER BY j.priority DESC, j.number LIMIT ?3";
/* jobs_owner_leased: what workers hold of the owner's ?8, overall and of the model ?1 */
static const char SQL_PICK_RUNNING[] =
    "SELECT (SELECT COUNT(*) FROM jobs r WHERE r.state = 'leased' AND r.owner = ?8 AND r.worker_id IS NOT NULL), "
    "(SELECT COUNT(*) FROM jobs r WHERE r.state = 'leased' AND r.owner = ?8 AND r.model = ?1 AND r.worker_id IS NOT NULL)";
static const char SQL_TURN[] =
    "INSERT INTO owner_turns (model, owner, served, streak) VALUES (?1, ?2, CASE WHEN ?4 <= 1 THEN ?3 ELSE 0 END, "
    "CASE WHEN ?4 <= 1 THEN 0 ELSE 1 END) ON CONFLICT (model, owner) DO UPDATE SET "
    "served = CASE WHEN owner_turns.streak + 1 >= ?4 THEN MAX(owner_turns.served, ?3) ELSE owner_turns.served END, "
    "streak = CASE WHEN owner_turns.streak + 1 >= ?4 THEN 0 ELSE owner_turns.streak + 1 END";
static const char SQL_EXTEND[] =
    "UPDATE jobs SET lease_expires_at = CASE WHEN lease_expires_at > ?2 + lease_timeout_ms "
    "THEN lease_expires_at ELSE ?2 + lease_timeout_ms END WHERE worker_id = ?1 AND state = 'leased'";
static const char SQL_CANCEL_REQ[] = "SELECT id FROM jobs WHERE worker_id = ?1 AND state = 'leased' "
                                     "AND cancel_requested = 1";
static const char SQL_LEASED_BY[] = "SELECT " PQ__JOB_COLS " FROM jobs WHERE state = 'leased' AND worker_id = ?1 "
                                    "ORDER BY number";
static const char SQL_END_LEASES[] = "UPDATE jobs SET lease_expires_at = ?2 WHERE worker_id = ?1 AND state = 'leased'";
static const char SQL_COUNT_STATE[] = "SELECT COUNT(*) FROM jobs WHERE state = ?1";
static const char SQL_COUNT_ALL[] = "SELECT COUNT(*) FROM jobs";
/* walks only queued jobs of the model at the same or a higher priority, and stops at the cap */
static const char SQL_AHEAD[] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' AND model = ?2 "
                                "AND priority >= ?3 AND (priority > ?3 OR number < ?1) LIMIT ?4) AS ahead";
static const char SQL_AHEAD_OWNER[] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' AND model = ?2 "
                                      "AND priority >= ?3 AND (priority > ?3 OR number < ?1) AND owner = ?5 LIMIT ?4) AS ahead";
static const char SQL_TOTALS_ALL[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM jobs";
static const char SQL_TOTALS_OWNER[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM jobs WHERE owner = ?1";
static const char SQL_COUNT_ACTIVE[] = "SELECT model, state, COUNT(*) FROM jobs "
                                       "WHERE state IN ('queued', 'leased') GROUP BY model, state";
static const char SQL_COUNT_OWNER_QUEUED[] = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs "
                                             "WHERE owner = ?1 AND state = 'queued' LIMIT ?2) AS queued";

static pq_job *row_to_job(sqlite3_stmt *st) {
  pq_job *j = pq_job_new();
  if (!j) return NULL;
  int i = 0;
  j->number = sqlite3_column_int64(st, i++);
  const unsigned char *id = sqlite3_column_text(st, i++);
  snprintf(j->id, sizeof j->id, "%s", id ? (const char *)id : "");
  int bad = pq__sq_col_dup(st, i++, &j->model);
  bad |= pq__sq_col_dup(st, i++, &j->input);
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
  bad |= pq__sq_col_dup(st, i++, &j->worker_id);
  bad |= pq__sq_col_dup(st, i++, &j->lease_token);
  j->lease_expires_at = sqlite3_column_int64(st, i++);
  j->cancel_requested = sqlite3_column_int(st, i++) != 0;
  bad |= pq__sq_col_dup(st, i++, &j->output);
  j->prompt_tokens = sqlite3_column_int64(st, i++);
  j->completion_tokens = sqlite3_column_int64(st, i++);
  bad |= pq__sq_col_dup(st, i++, &j->error_code);
  bad |= pq__sq_col_dup(st, i++, &j->error_message);
  bad |= pq__sq_col_dup(st, i++, &j->idempotency_key);
  bad |= pq__sq_col_dup(st, i++, &j->request_hash);
  bad |= pq__sq_col_dup(st, i++, &j->owner);
  bad |= pq__sq_col_dup(st, i++, &j->worker_signature);
  bad |= pq__sq_col_dup(st, i++, &j->kind);
  bad |= pq__sq_col_dup(st, i++, &j->parent_id);
  j->held_micros = sqlite3_column_int64(st, i++);
  j->cost_micros = sqlite3_column_int64(st, i++);
  bad |= pq__sq_col_dup(st, i++, &j->requirements);
  bad |= pq__sq_col_dup(st, i++, &j->webhook_url);
  bad |= pq__sq_col_dup(st, i++, &j->key_id);
  if (bad || !j->model || !j->input || !j->kind) {
    pq_job_free(j);
    return NULL;
  }
  return j;
}

static void *make_job(sqlite3_stmt *st) { return row_to_job(st); }
static void free_job(void *j) { pq_job_free(j); }

static pq_err collect_jobs(pq_conn *c, sqlite3_stmt *st, pq_job ***out, size_t *n) {
  return pq__sq_collect_rows(c, st, make_job, free_job, (void ***)out, n);
}

pq_err pq__sq_job_insert(pq_conn *c, pq_job *j) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, j->id);
  pq__sq_bind_text(st, 2, j->model);
  pq__sq_bind_text(st, 3, j->input);
  sqlite3_bind_int(st, 4, j->priority);
  pq__sq_bind_text(st, 5, pq_job_state_name(j->state));
  sqlite3_bind_int(st, 6, j->attempts);
  sqlite3_bind_int(st, 7, j->max_attempts);
  sqlite3_bind_int64(st, 8, j->lease_timeout_ms);
  sqlite3_bind_int64(st, 9, j->created_at);
  sqlite3_bind_int64(st, 10, j->updated_at);
  sqlite3_bind_int64(st, 11, j->not_before);
  pq__sq_bind_ms(st, 12, j->expires_at);
  pq__sq_bind_text(st, 13, j->idempotency_key);
  pq__sq_bind_text(st, 14, j->request_hash);
  pq__sq_bind_text(st, 15, j->owner ? j->owner : "");
  pq__sq_bind_text(st, 16, j->kind ? j->kind : PQ_JOB_KIND_DEFAULT);
  pq__sq_bind_text(st, 17, j->parent_id);
  sqlite3_bind_int64(st, 18, j->held_micros);
  pq__sq_bind_text(st, 19, j->requirements);
  pq__sq_bind_text(st, 20, j->webhook_url);
  pq__sq_bind_text(st, 21, j->key_id);
  pq_err result = pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert job");
  if (result == PQ_OK) j->number = sqlite3_last_insert_rowid(c->db);
  return result;
}

pq_err pq__sq_job_get(pq_conn *c, const char *id, int64_t number, pq_job **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, id ? SQL_GET_ID : SQL_GET_NUMBER);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (id) pq__sq_bind_text(st, 1, id);
  else sqlite3_bind_int64(st, 1, number);
  return pq__sq_one_row(c, st, make_job, free_job, (void **)out);
}

pq_err pq__sq_job_get_by_idem(pq_conn *c, const char *owner, const char *key, pq_job **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_GET_IDEM);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, key);
  pq__sq_bind_text(st, 2, owner ? owner : "");
  return pq__sq_one_row(c, st, make_job, free_job, (void **)out);
}

pq_err pq__sq_job_peek(pq_conn *c, const char *id, pq_job *out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_PEEK);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id);
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
    result = rc == SQLITE_DONE ? PQ_ERR_NOT_FOUND : pq__sq_fail(c->db, "peek job");
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return result;
}

pq_err pq__sq_job_update(pq_conn *c, const pq_job *j, pq_job_state expect_state, const char *expect_token) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_UPDATE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, pq_job_state_name(j->state));
  sqlite3_bind_int(st, 2, j->attempts);
  sqlite3_bind_int64(st, 3, j->updated_at);
  sqlite3_bind_int64(st, 4, j->not_before);
  pq__sq_bind_ms(st, 5, j->leased_at);
  pq__sq_bind_ms(st, 6, j->finished_at);
  pq__sq_bind_text(st, 7, j->worker_id);
  pq__sq_bind_text(st, 8, j->lease_token);
  pq__sq_bind_ms(st, 9, j->lease_expires_at);
  sqlite3_bind_int(st, 10, j->cancel_requested);
  pq__sq_bind_text(st, 11, j->output);
  sqlite3_bind_int64(st, 12, j->prompt_tokens);
  sqlite3_bind_int64(st, 13, j->completion_tokens);
  pq__sq_bind_text(st, 14, j->error_code);
  pq__sq_bind_text(st, 15, j->error_message);
  pq__sq_bind_ms(st, 16, j->expires_at);
  sqlite3_bind_int64(st, 17, j->number);
  pq__sq_bind_text(st, 18, pq_job_state_name(expect_state));
  pq__sq_bind_text(st, 19, expect_token);
  pq__sq_bind_text(st, 20, j->worker_signature);
  sqlite3_bind_int64(st, 21, j->cost_micros);
  if (pq__sq_step_done(st) != SQLITE_DONE) return pq__sq_fail(c->db, "update job");
  return sqlite3_changes(c->db) == 1 ? PQ_OK : PQ_ERR_STALE;
}

/* The statement for one combination of filters, prepared once per connection. */
static sqlite3_stmt *list_stmt(pq_conn *c, int filters, bool count, bool summary, bool lease_order) {
  int slot = filters | (count ? 8 : 0) | (summary && !count ? 16 : 0) | (lease_order && !count ? 32 : 0);
  if (c->lists[slot]) return c->lists[slot];
  char sql[1200];
  snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE 1 = 1%s%s%s%s",
           count ? "COUNT(*)" : summary ? PQ__JOB_SUMMARY_COLS : PQ__JOB_COLS,
           filters & 1 ? " AND state = ?1" : "", filters & 2 ? " AND model = ?2" : "",
           filters & 4 ? " AND owner = ?5" : "",
           count         ? ""
           : lease_order ? " AND not_before <= ?6 ORDER BY priority DESC, number LIMIT ?3 OFFSET ?4" /* the lease's order */
                         : " ORDER BY number DESC LIMIT ?3 OFFSET ?4");
  if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->lists[slot], NULL) != SQLITE_OK) {
    pq__sq_fail(c->db, sql);
    return NULL;
  }
  return c->lists[slot];
}

pq_err pq__sq_job_list(pq_conn *c, const pq_job_filter *f, pq_job ***out, size_t *n, int64_t *total) {
  int filters = (f->state >= 0 ? 1 : 0) | (f->model ? 2 : 0) | (f->owner ? 4 : 0);
  sqlite3_stmt *list = list_stmt(c, filters, false, f->summary, f->lease_order),
               *cnt = f->no_total ? NULL : list_stmt(c, filters, true, false, false);
  if (!list || (!cnt && !f->no_total)) return PQ_ERR_STORE_FAILED;
  *total = 0;
  const char *state = f->state >= 0 ? pq_job_state_name((pq_job_state)f->state) : NULL;
  for (int k = 0; k < (cnt ? 2 : 1); k++) {
    sqlite3_stmt *st = k ? cnt : list;
    if (state) pq__sq_bind_text(st, 1, state);
    if (f->model) pq__sq_bind_text(st, 2, f->model);
    if (f->owner) pq__sq_bind_text(st, 5, f->owner);
  }
  if (f->lease_order) sqlite3_bind_int64(list, 6, f->ready_by);
  sqlite3_bind_int64(list, 3, f->limit);
  sqlite3_bind_int64(list, 4, f->offset);
  pq_err result = collect_jobs(c, list, out, n);
  if (result == PQ_OK && cnt && (result = pq__sq_count_one(c, cnt, total)) != PQ_OK) {
    pq_job_free_array(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return result;
}

pq_err pq__sq_job_scan_queued(pq_conn *c, pq_job_scan_fn fn, void *ctx) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_SCAN_QUEUED);
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
  if (result == PQ_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) result = pq__sq_fail(c->db, "scan queued");
  sqlite3_reset(st);
  return result;
}

pq_err pq__sq_job_scan_due(pq_conn *c, int64_t now, size_t limit, pq_job_scan_fn fn, void *ctx) {
  /* rows are collected before the callbacks run, since they update the table */
  static const char *const which[] = {SQL_DUE_LEASES, SQL_DUE_TTL};
  for (size_t k = 0; k < 2; k++) {
    sqlite3_stmt *st = pq__sq_stmt(c, which[k]);
    if (!st) return PQ_ERR_STORE_FAILED;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    pq_job **jobs;
    size_t n;
    pq_err result = collect_jobs(c, st, &jobs, &n);
    if (result != PQ_OK) return result;
    bool stop = false;
    for (size_t i = 0; i < n && !stop; i++) stop = fn(ctx, jobs[i]) != 0;
    pq_job_free_array(jobs, n);
    if (stop) return PQ_OK; /* the callback asked: the next pass must not run */
  }
  return PQ_OK;
}

typedef struct {
  pq_conn *c;
  const pq_pick *p;
} pick_ctx;

/* Binds the pick's terms (?1..?7) and limit ?3 to one of the pick statements. */
static sqlite3_stmt *pick_stmt(pick_ctx *x, const char *sql, size_t limit) {
  sqlite3_stmt *st = pq__sq_stmt(x->c, sql);
  if (!st) return NULL;
  int n = sqlite3_bind_parameter_count(st);
  pq__sq_bind_text(st, 1, x->p->model);
  sqlite3_bind_int64(st, 2, x->p->now);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
  if (n >= 4) pq__sq_bind_text(st, 4, x->p->offer);
  if (n >= 5) sqlite3_bind_int64(st, 5, x->p->max_running);
  if (n >= 6) sqlite3_bind_int64(st, 6, x->p->max_running_model);
  if (n >= 7) sqlite3_bind_int(st, 7, x->p->urgent);
  return st;
}

/* Reads rows of (number[, owner]) into the arrays; done: resets the statement. */
static pq_err pick_rows(pick_ctx *x, sqlite3_stmt *st, size_t max, int64_t *numbers, pq__owner_id *owners,
                        size_t *n) {
  int rc;
  *n = 0;
  while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *text = sqlite3_column_text(st, owners && numbers ? 1 : 0);
    if (numbers) numbers[*n] = sqlite3_column_int64(st, 0);
    if (owners) snprintf(owners[*n], sizeof *owners, "%s", text ? (const char *)text : "");
    (*n)++;
  }
  if (*n < max && rc != SQLITE_DONE) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return pq__sq_fail(x->c->db, "pick queued jobs");
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return PQ_OK;
}

static pq_err pick_urgent(void *ctx, size_t limit, int64_t *numbers, pq__owner_id *owners, size_t *n) {
  sqlite3_stmt *st = pick_stmt(ctx, SQL_PICK_URGENT, limit);
  return st ? pick_rows(ctx, st, limit, numbers, owners, n) : PQ_ERR_STORE_FAILED;
}

static pq_err pick_owners(void *ctx, pq__owner_id *owners, size_t max, size_t *n) {
  sqlite3_stmt *st = pick_stmt(ctx, SQL_PICK_OWNERS, max);
  return st ? pick_rows(ctx, st, max, NULL, owners, n) : PQ_ERR_STORE_FAILED;
}

static pq_err pick_of_owner(void *ctx, const char *owner, size_t limit, int64_t *numbers, size_t *n) {
  sqlite3_stmt *st = pick_stmt(ctx, SQL_PICK_OWNER, limit);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 8, owner);
  return pick_rows(ctx, st, limit, numbers, NULL, n);
}

static pq_err pick_may_run(void *ctx, const char *owner, bool *may) {
  pick_ctx *x = ctx;
  sqlite3_stmt *st = pick_stmt(x, SQL_PICK_RUNNING, 0);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 8, owner);
  pq_err result = PQ_OK;
  if (sqlite3_step(st) == SQLITE_ROW) {
    int64_t all = sqlite3_column_int64(st, 0), of_model = sqlite3_column_int64(st, 1);
    *may = !*owner || ((x->p->max_running <= 0 || all < x->p->max_running) &&
                       (x->p->max_running_model <= 0 || of_model < x->p->max_running_model));
  } else {
    result = pq__sq_fail(x->c->db, "count running jobs");
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return result;
}

static const pq__pick_queries PICK = {pick_urgent, pick_owners, pick_of_owner, pick_may_run};

pq_err pq__sq_job_pick(pq_conn *c, const pq_pick *pick, size_t limit, int64_t *numbers, pq__owner_id *owners,
                       size_t *n) {
  pick_ctx x = {.c = c, .p = pick};
  bool limited = pick->max_running > 0 || pick->max_running_model > 0;
  return pq__pick_fair(&PICK, &x, pick->urgent, limited, limit, numbers, owners, n);
}

pq_err pq__sq_turn_charge(pq_conn *c, const char *model, const char *owner, int64_t tick, int weight) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_TURN);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, model);
  pq__sq_bind_text(st, 2, owner ? owner : "");
  sqlite3_bind_int64(st, 3, tick);
  sqlite3_bind_int(st, 4, weight);
  return pq__sq_step_done(st) == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "charge a turn");
}

static pq_err worker_jobs_update(pq_conn *c, const char *sql, const char *worker_id, int64_t t) {
  sqlite3_stmt *st = pq__sq_stmt(c, sql);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, worker_id);
  sqlite3_bind_int64(st, 2, t);
  return pq__sq_step_done(st) == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, sql);
}

pq_err pq__sq_job_extend_leases(pq_conn *c, const char *worker_id, int64_t now) {
  return worker_jobs_update(c, SQL_EXTEND, worker_id, now);
}

pq_err pq__sq_job_end_leases(pq_conn *c, const char *worker_id, int64_t now) {
  return worker_jobs_update(c, SQL_END_LEASES, worker_id, now);
}

pq_err pq__sq_job_children(pq_conn *c, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                           size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_CHILDREN);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, parent_id);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int64(st, 3, limit);
  return collect_jobs(c, st, out, n);
}

pq_err pq__sq_job_leased_by(pq_conn *c, const char *worker_id, pq_job ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_LEASED_BY);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, worker_id);
  return collect_jobs(c, st, out, n);
}

static void *make_text(sqlite3_stmt *st) { return strdup((const char *)sqlite3_column_text(st, 0)); }

pq_err pq__sq_job_cancel_requested(pq_conn *c, const char *worker_id, char ***ids, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_CANCEL_REQ);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, worker_id);
  return pq__sq_collect_rows(c, st, make_text, free, (void ***)ids, n);
}

pq_err pq__sq_job_count(pq_conn *c, int state, int64_t *count) {
  sqlite3_stmt *st = pq__sq_stmt(c, state >= 0 ? SQL_COUNT_STATE : SQL_COUNT_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (state >= 0) pq__sq_bind_text(st, 1, pq_job_state_name((pq_job_state)state));
  return pq__sq_count_one(c, st, count);
}

pq_err pq__sq_job_ahead(pq_conn *c, const pq_job *job, bool same_owner, int64_t cap, int64_t *ahead) {
  sqlite3_stmt *st = pq__sq_stmt(c, same_owner ? SQL_AHEAD_OWNER : SQL_AHEAD);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (same_owner) pq__sq_bind_text(st, 5, job->owner ? job->owner : "");
  sqlite3_bind_int64(st, 1, job->number);
  pq__sq_bind_text(st, 2, job->model);
  sqlite3_bind_int(st, 3, job->priority);
  sqlite3_bind_int64(st, 4, cap);
  return pq__sq_count_one(c, st, ahead);
}

pq_err pq__sq_job_count_queued_by_owner(pq_conn *c, const char *owner, int64_t cap, int64_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_COUNT_OWNER_QUEUED);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, owner);
  sqlite3_bind_int64(st, 2, cap);
  return pq__sq_count_one(c, st, n);
}

pq_err pq__sq_job_totals(pq_conn *c, const char *owner, int64_t *total, int64_t *completed, int64_t *tokens) {
  sqlite3_stmt *st = pq__sq_stmt(c, owner ? SQL_TOTALS_OWNER : SQL_TOTALS_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (owner) pq__sq_bind_text(st, 1, owner);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *total = sqlite3_column_int64(st, 0);
    *completed = sqlite3_column_int64(st, 1);
    *tokens = sqlite3_column_int64(st, 2);
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_ROW ? PQ_OK : pq__sq_fail(c->db, "job totals");
}

pq_err pq__sq_job_count_active(pq_conn *c, void (*fn)(void *, const char *, pq_job_state, int64_t), void *ctx) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_COUNT_ACTIVE);
  if (!st) return PQ_ERR_STORE_FAILED;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int state = pq_job_state_parse((const char *)sqlite3_column_text(st, 1));
    if (state >= 0)
      fn(ctx, (const char *)sqlite3_column_text(st, 0), (pq_job_state)state, sqlite3_column_int64(st, 2));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "count active jobs");
}

pq_err pq__sq_job_set_model(pq_conn *c, int64_t number, const char *model) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_SET_MODEL);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, number);
  pq__sq_bind_text(st, 2, model);
  pq_err result = pq__sq_changed_one(c, st, "move a job to another model");
  return result == PQ_ERR_NOT_FOUND ? PQ_ERR_STALE : result;
}
