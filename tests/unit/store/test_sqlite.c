/* What only the SQLite backend promises beyond the contract: a store made
 * by an older promptq migrates forward with its jobs' kinds filled in, and
 * the hot queries use the indexes meant for them, without INDEXED BY. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "support/fixture.h"
#include "store/sqlite/internal.h"

typedef struct {
  char dir[64], path[128], url[160];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/pqsqlite-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/old.db", f->dir);
  snprintf(f->url, sizeof f->url, "sqlite://%s", f->path);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = pq_test_remove_dir(f->dir);
  free(f);
  return rc;
}

static void exec_ok(sqlite3 *db, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
  sqlite3_free(err);
  assert_int_equal(rc, SQLITE_OK);
}

static void older_store_migrates_forward(void **state) {
  fixture *f = *state;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  /* the schema promptq had at version 4, with a chat and an embedding job */
  exec_ok(db, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  for (int v = 0; v < 4; v++) {
    exec_ok(db, pq__sqlite_migrations[v]);
    char record[96];
    snprintf(record, sizeof record, "INSERT INTO schema_migrations VALUES (%d, 1)", v + 1);
    exec_ok(db, record);
  }
  exec_ok(db, "INSERT INTO jobs (id, model, input, state, max_attempts, lease_timeout_ms, created_at, updated_at) "
              "VALUES ('a', 'm', '{\"prompt\":\"hi\"}', 'queued', 3, 1000, 1, 1), "
              "('b', 'm', '{\"embeddings\":[\"x\"]}', 'queued', 3, 1000, 2, 2)");
  sqlite3_close(db);
  pq_store *s = NULL;
  pq_store_config cfg = {.sync_full = true};
  char why[200];
  assert_int_equal(pq_store_open(f->url, &cfg, &s, why, sizeof why), PQ_OK);
  int applied = 0;
  assert_int_equal(s->ops->migrate(s, &applied), PQ_OK);
  assert_int_equal(applied, pq__sqlite_migrations_count - 4);
  assert_int_equal(s->ops->schema_version(s), pq__sqlite_migrations_count);
  pq_conn *c = s->ops->acquire(s, PQ_CONN_READ);
  pq_job *a = NULL, *b = NULL;
  assert_int_equal(s->ops->job_get(c, "a", 0, &a), PQ_OK);
  assert_int_equal(s->ops->job_get(c, "b", 0, &b), PQ_OK);
  assert_string_equal(a->kind, "chat");
  assert_string_equal(b->kind, "embedding");
  pq_job_free(a);
  pq_job_free(b);
  s->ops->release(s, c);
  pq_store_close(s);
}

/* The plan SQLite makes for each hot query shape, on an empty store (no
 * statistics: the case where it used to pick the wrong index). */
static void hot_queries_use_their_indexes(void **state) {
  fixture *f = *state;
  pq_store *s = NULL;
  pq_store_config cfg = {.sync_full = false};
  char why[200];
  assert_int_equal(pq_store_open(f->url, &cfg, &s, why, sizeof why), PQ_OK);
  assert_int_equal(s->ops->migrate(s, NULL), PQ_OK);
  pq_store_close(s);
  static const struct {
    const char *sql, *index;
  } cases[] = {
      {"SELECT * FROM jobs WHERE state = 'leased' AND lease_expires_at <= 1 ORDER BY lease_expires_at LIMIT 9",
       "jobs_lease_due"},
      {"SELECT * FROM jobs WHERE state = 'queued' AND expires_at <= 1 ORDER BY expires_at LIMIT 9", "jobs_ttl_due"},
      {"SELECT number FROM jobs WHERE state = 'queued' AND model = 'm' AND not_before <= 1 "
       "ORDER BY priority DESC, number LIMIT 9",
       "jobs_queued"},
      {"SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state = 'queued' AND model = 'm' AND priority >= 0 "
       "AND number < 9 LIMIT 9) AS ahead",
       "jobs_queued"},
      {"UPDATE jobs SET lease_expires_at = 1 WHERE worker_id = 'w' AND state = 'leased'", "jobs_worker"},
      {"SELECT id FROM jobs WHERE worker_id = 'w' AND state = 'leased' AND cancel_requested = 1", "jobs_worker"},
      {"SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE owner = 'o' AND state = 'queued' LIMIT 9) AS queued",
       "jobs_owner_queued"},
      /* every reaper beat: the delivery log's sweep, and the sender's claims */
      {"DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < 1", "webhook_deliveries_ended"},
      {"SELECT d.id FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' "
       "AND d.next_at <= 1 ORDER BY d.next_at, d.id LIMIT 9",
       "webhook_deliveries_due"},
      /* the store's fair pick: one user's lane */
      {"SELECT j.number FROM jobs j WHERE j.state = 'queued' AND j.model = 'm' AND j.owner = 'o' AND j.not_before <= 1 "
       "ORDER BY j.priority DESC, j.number LIMIT 9",
       "jobs_owner_lane"},
  };
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char sql[600];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", cases[i].sql);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    bool uses = false;
    while (sqlite3_step(st) == SQLITE_ROW) uses |= strstr((const char *)sqlite3_column_text(st, 3), cases[i].index) != NULL;
    sqlite3_finalize(st);
    if (!uses) fprintf(stderr, "not on %s: %s\n", cases[i].index, cases[i].sql);
    assert_true(uses);
  }
  sqlite3_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(older_store_migrates_forward, setup, teardown),
      cmocka_unit_test_setup_teardown(hot_queries_use_their_indexes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
