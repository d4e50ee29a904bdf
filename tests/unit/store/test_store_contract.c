/* The store contract: every backend in pq_store_backends must pass it, and
 * so must the fault-injecting wrapper while it is disarmed (it forwards).
 * PostgreSQL runs against the server scripts/with-postgres started (its URL
 * in PROMPTQ_TEST_POSTGRES), a new database per test; with a PostgreSQL
 * server installed and no URL given, the suite fails rather than skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "support/fixture.h"
#include "base/ids.h"
#include "store/store.h"

static const pq_store_ops *ops;
static const char *scheme; /* the backend under test, as a URL scheme */

typedef struct {
  char dir[64];
  char path[128];
  char url[300];
  char database[48]; /* PostgreSQL: this test's own database */
  pq_store *store;
  pq_conn *w;
} fixture;

static bool is_postgres(const char *s) { return strstr(s, "postgres") != NULL; }

/* Runs one statement on the test server's maintenance database. */
static int pg_admin(const char *sql) {
  PGconn *pg = PQconnectdb(getenv("PROMPTQ_TEST_POSTGRES"));
  PGresult *r = PQstatus(pg) == CONNECTION_OK ? PQexec(pg, sql) : NULL;
  int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(pg));
  PQclear(r);
  PQfinish(pg);
  return ok ? 0 : -1;
}

/* The URL of the store under test. */
static int store_url(fixture *f, char *url, size_t size) {
  if (!is_postgres(scheme)) {
    snprintf(url, size, "%s://%s", scheme, f->path);
    return 0;
  }
  const char *server = getenv("PROMPTQ_TEST_POSTGRES"); /* postgres://user@host:port/db */
  const char *slash = server ? strrchr(server, '/') : NULL;
  if (!slash) return -1;
  snprintf(url, size, "%s%.*s/%s", strncmp(scheme, "fault+", 6) == 0 ? "fault+" : "", (int)(slash - server), server,
           f->database);
  return 0;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/pqstore-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
  pq_store_config cfg = {.sync_full = true, .read_pool_size = 2};
  char url[400], why[200], sql[96];
  if (is_postgres(scheme)) {
    snprintf(f->database, sizeof f->database, "contract_%s", strrchr(f->dir, '-') + 1);
    for (char *p = f->database; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->database);
    if (pg_admin(sql) != 0) return -1;
  }
  if (store_url(f, url, sizeof url) != 0) return -1;
  if (pq_store_open(url, &cfg, &f->store, why, sizeof why) != PQ_OK) {
    fprintf(stderr, "cannot open %s: %s\n", url, why);
    return -1;
  }
  ops = f->store->ops;
  if (ops->migrate(f->store, NULL) != PQ_OK) return -1;
  f->w = ops->acquire(f->store, PQ_CONN_WRITE);
  *state = f;
  return f->w ? 0 : -1;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->w) ops->release(f->store, f->w);
  pq_store_close(f->store);
  if (f->database[0]) {
    char sql[96];
    snprintf(sql, sizeof sql, "DROP DATABASE %s", f->database);
    pg_admin(sql);
  }
  int rc = pq_test_remove_dir(f->dir);
  free(f);
  return rc;
}

static pq_job *make_job(const char *model, int priority, int64_t now) {
  pq_job *j = pq_job_new();
  pq_uuid7(now, j->id);
  j->model = strdup(model);
  j->input = strdup("{\"prompt\":\"hi\"}");
  j->priority = priority;
  j->state = PQ_JOB_QUEUED;
  j->max_attempts = 3;
  j->lease_timeout_ms = 1000;
  j->created_at = j->updated_at = now;
  return j;
}

static int64_t insert(fixture *f, const char *model, int priority, int64_t now) {
  pq_job *j = make_job(model, priority, now);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t n = j->number;
  pq_job_free(j);
  return n;
}

static void count_active(void *ctx, const char *model, pq_job_state s, int64_t n) {
  int64_t (*counts)[2] = ctx;
  int row = strcmp(model, "m") == 0 ? 0 : 1;
  if (s == PQ_JOB_QUEUED) counts[row][0] = n;
  if (s == PQ_JOB_LEASED) counts[row][1] = n;
}

static void migrations_are_idempotent(void **state) {
  fixture *f = *state;
  int applied = -1;
  int version = ops->schema_version(f->store);
  assert_true(version >= 1);
  assert_int_equal(ops->migrate(f->store, &applied), PQ_OK);
  assert_int_equal(applied, 0);
  assert_int_equal(ops->schema_version(f->store), version);
}

static void insert_then_read_back(void **state) {
  fixture *f = *state;
  pq_job *j = make_job("m", 4, 1000);
  j->expires_at = 99999;
  j->parent_id = strdup("01890000-0000-7000-8000-0000000000aa");
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
  assert_true(j->number > 0);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_conn *r = ops->acquire(f->store, PQ_CONN_READ);
  pq_job *by_id = NULL, *by_number = NULL;
  assert_int_equal(ops->job_get(r, j->id, 0, &by_id), PQ_OK);
  assert_int_equal(ops->job_get(r, NULL, j->number, &by_number), PQ_OK);
  assert_string_equal(by_id->id, by_number->id);
  assert_string_equal(by_id->model, "m");
  assert_string_equal(by_id->input, "{\"prompt\":\"hi\"}");
  assert_int_equal(by_id->priority, 4);
  assert_int_equal(by_id->state, PQ_JOB_QUEUED);
  assert_int_equal(by_id->expires_at, 99999);
  assert_null(by_id->lease_token);
  assert_string_equal(by_id->parent_id, "01890000-0000-7000-8000-0000000000aa");
  pq_job *none = NULL;
  assert_int_equal(ops->job_get(r, "00000000-0000-7000-8000-000000000000", 0, &none), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->job_get(r, NULL, 424242, &none), PQ_ERR_NOT_FOUND);
  ops->release(f->store, r);
  pq_job_free(by_id);
  pq_job_free(by_number);
  pq_job_free(j);
}

static void uncommitted_writes_are_invisible_to_readers(void **state) {
  fixture *f = *state;
  pq_job *j = make_job("m", 0, 1);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
  pq_conn *r = ops->acquire(f->store, PQ_CONN_READ);
  pq_job *seen = NULL;
  assert_int_equal(ops->job_get(r, j->id, 0, &seen), PQ_ERR_NOT_FOUND);
  ops->rollback(f->w);
  assert_int_equal(ops->job_get(r, j->id, 0, &seen), PQ_ERR_NOT_FOUND); /* rolled back */
  ops->release(f->store, r);
  pq_job_free(j);
}

static void update_is_compare_and_set(void **state) {
  fixture *f = *state;
  int64_t n = insert(f, "m", 0, 10);
  pq_job *j = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, n, &j), PQ_OK);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  j->state = PQ_JOB_LEASED;
  j->attempts = 1;
  j->lease_token = strdup("tok-1");
  j->worker_id = strdup("w");
  j->lease_expires_at = 5000;
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_LEASED, NULL), PQ_ERR_STALE); /* wrong state */
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_QUEUED, NULL), PQ_OK);
  j->state = PQ_JOB_COMPLETED;
  j->output = strdup("\"done\"");
  j->prompt_tokens = 3;
  j->completion_tokens = 5;
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_LEASED, "tok-2"), PQ_ERR_STALE); /* fencing */
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_LEASED, "tok-1"), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_job *back = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, n, &back), PQ_OK);
  assert_int_equal(back->state, PQ_JOB_COMPLETED);
  assert_string_equal(back->output, "\"done\"");
  assert_int_equal(back->completion_tokens, 5);
  assert_int_equal(back->attempts, 1);
  pq_job_free(back);
  pq_job_free(j);
}

static void idempotency_keys_are_unique(void **state) {
  fixture *f = *state;
  pq_job *a = make_job("m", 0, 1), *b = make_job("m", 0, 2);
  a->idempotency_key = strdup("k1");
  b->idempotency_key = strdup("k1");
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, a), PQ_OK);
  pq_job *found = NULL;
  assert_int_equal(ops->job_get_by_idempotency_key(f->w, "", "k1", &found), PQ_OK);
  assert_string_equal(found->id, a->id);
  assert_int_not_equal(ops->job_insert(f->w, b), PQ_OK);
  ops->rollback(f->w);
  pq_job *none = NULL;
  assert_int_equal(ops->job_get_by_idempotency_key(f->w, "", "k2", &none), PQ_ERR_NOT_FOUND);
  /* keys are per owner: another user may use the same one */
  pq_job *theirs = make_job("m", 0, 3);
  theirs->idempotency_key = strdup("k1");
  theirs->owner = strdup("someone-else");
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, theirs), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->job_get_by_idempotency_key(f->w, "someone-else", "k1", &none), PQ_OK);
  assert_string_equal(none->id, theirs->id);
  pq_job_free(none);
  pq_job_free(theirs);
  pq_job_free(found);
  pq_job_free(a);
  pq_job_free(b);
}

static void list_filters_and_pages(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 7; i++) insert(f, i % 2 ? "odd" : "even", 0, 100 + i);
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = 0;
  pq_job_filter all = {.state = -1, .limit = 3, .offset = 0};
  assert_int_equal(ops->job_list(f->w, &all, &jobs, &n, &total), PQ_OK);
  assert_int_equal(n, 3);
  assert_int_equal(total, 7);
  assert_true(jobs[0]->number > jobs[1]->number); /* newest first */
  pq_job_free_array(jobs, n);
  pq_job_filter even = {.state = PQ_JOB_QUEUED, .model = "even", .limit = 10, .offset = 1};
  assert_int_equal(ops->job_list(f->w, &even, &jobs, &n, &total), PQ_OK);
  assert_int_equal(total, 4);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++) assert_string_equal(jobs[i]->model, "even");
  pq_job_free_array(jobs, n);
  pq_job_filter done = {.state = PQ_JOB_COMPLETED, .limit = 10};
  assert_int_equal(ops->job_list(f->w, &done, &jobs, &n, &total), PQ_OK);
  assert_int_equal(n, 0);
  assert_int_equal(total, 0);
  pq_job_free_array(jobs, n);
  int64_t count = 0;
  assert_int_equal(ops->job_count(f->w, PQ_JOB_QUEUED, &count), PQ_OK);
  assert_int_equal(count, 7);
}

/* The order leases take queued jobs (the dashboard's "next up"): priority,
 * then age; and a look that counts nothing. */
static void list_in_lease_order_without_counting(void **state) {
  fixture *f = *state;
  int64_t old_low = insert(f, "m", 0, 100), urgent = insert(f, "m", 5, 101), old_urgent = insert(f, "m", 5, 99);
  insert(f, "other", 9, 50);
  (void)old_low;
  pq_job *backing_off = make_job("m", 9, 102); /* first by priority, but in its retry backoff until 5000 */
  backing_off->not_before = 5000;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, backing_off), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t backing_off_number = backing_off->number;
  pq_job_free(backing_off);
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = -1;
  pq_job_filter next = {.state = PQ_JOB_QUEUED, .model = "m", .limit = 2, .lease_order = true, .ready_by = 1000,
                        .no_total = true, .summary = true};
  assert_int_equal(ops->job_list(f->w, &next, &jobs, &n, &total), PQ_OK);
  assert_int_equal(n, 2);
  assert_int_equal(total, 0);
  assert_int_equal(jobs[0]->number, urgent < old_urgent ? urgent : old_urgent); /* the same priority: the first queued */
  assert_int_equal(jobs[1]->number, urgent < old_urgent ? old_urgent : urgent);
  pq_job_free_array(jobs, n);
  pq_job_filter newest = {.state = PQ_JOB_QUEUED, .model = "m", .limit = 1};
  assert_int_equal(ops->job_list(f->w, &newest, &jobs, &n, &total), PQ_OK);
  assert_int_equal(total, 4);
  assert_int_equal(jobs[0]->number, backing_off_number); /* inserted last */
  pq_job_free_array(jobs, n);
}

static int collect(void *ctx, pq_job *j) {
  int64_t *numbers = ctx;
  numbers[++numbers[0]] = j->number;
  return 0;
}

static void scans_find_queued_and_due(void **state) {
  fixture *f = *state;
  int64_t a = insert(f, "m", 0, 1), b = insert(f, "m", 0, 2), c = insert(f, "m", 0, 3);
  pq_job *jb = NULL, *jc = NULL;
  ops->job_get(f->w, NULL, b, &jb);
  ops->job_get(f->w, NULL, c, &jc);
  ops->begin(f->w, true);
  jb->state = PQ_JOB_LEASED; /* lease ends at 500 */
  jb->lease_token = strdup("t");
  jb->worker_id = strdup("w1");
  jb->lease_expires_at = 500;
  assert_int_equal(ops->job_update(f->w, jb, PQ_JOB_QUEUED, NULL), PQ_OK);
  jc->expires_at = 700; /* ttl ends at 700 */
  assert_int_equal(ops->job_update(f->w, jc, PQ_JOB_QUEUED, NULL), PQ_OK);
  ops->commit(f->w);
  int64_t seen[8] = {0};
  assert_int_equal(ops->job_scan_queued(f->w, collect, seen), PQ_OK);
  assert_int_equal(seen[0], 2);
  assert_int_equal(seen[1], a);
  assert_int_equal(seen[2], c);
  pq_job **mine = NULL;
  size_t n_mine = 0;
  assert_int_equal(ops->job_leased_by(f->w, "w1", &mine, &n_mine), PQ_OK);
  assert_int_equal(n_mine, 1);
  assert_int_equal(mine[0]->number, b);
  pq_job_free_array(mine, n_mine);
  assert_int_equal(ops->job_leased_by(f->w, "w2", &mine, &n_mine), PQ_OK);
  assert_int_equal(n_mine, 0);
  free(mine);
  int64_t due[8] = {0};
  assert_int_equal(ops->job_scan_due(f->w, 400, 10, collect, due), PQ_OK);
  assert_int_equal(due[0], 0);
  assert_int_equal(ops->job_scan_due(f->w, 800, 10, collect, due), PQ_OK);
  assert_int_equal(due[0], 2);
  /* heartbeats extend leases; a cancel request is reported; offline ends them */
  ops->begin(f->w, true);
  assert_int_equal(ops->job_extend_leases(f->w, "w1", 10000), PQ_OK);
  jb->cancel_requested = true;
  jb->lease_expires_at = 11000;
  assert_int_equal(ops->job_update(f->w, jb, PQ_JOB_LEASED, "t"), PQ_OK);
  ops->commit(f->w);
  char **ids = NULL;
  size_t n = 0;
  assert_int_equal(ops->job_cancel_requested(f->w, "w1", &ids, &n), PQ_OK);
  assert_int_equal(n, 1);
  assert_string_equal(ids[0], jb->id);
  free(ids[0]);
  free(ids);
  pq_job *back = NULL;
  ops->job_get(f->w, NULL, b, &back);
  assert_int_equal(back->lease_expires_at, 11000);
  pq_job_free(back);
  ops->begin(f->w, true);
  assert_int_equal(ops->job_end_leases(f->w, "w1", 900), PQ_OK);
  ops->commit(f->w);
  ops->job_get(f->w, NULL, b, &back);
  assert_int_equal(back->lease_expires_at, 900);
  pq_job_free(back);
  pq_job_free(jb);
  pq_job_free(jc);
}

static void event_log(void **state) {
  fixture *f = *state;
  int64_t n = insert(f, "m", 0, 1), seq = 0;
  assert_int_equal(ops->begin(f->w, false), PQ_OK);
  const char *chunks[] = {"\"Hel\"", "\"lo\"", "\" world\""};
  assert_int_equal(ops->event_append(f->w, n, 1, "chunk", chunks, 2, 0, 10, &seq), PQ_OK);
  assert_int_equal(seq, 2);
  assert_int_equal(ops->event_append(f->w, n, 1, "chunk", chunks + 2, 1, 0, 12, &seq), PQ_OK);
  assert_int_equal(seq, 3); /* continues after the last */
  const char *again[] = {"\"again\""};
  assert_int_equal(ops->event_append(f->w, n, 2, "chunk", again, 1, 0, 20, &seq), PQ_OK);
  assert_int_equal(seq, 1); /* numbered per attempt */
  /* numbered by the caller (the relay assigns them in memory), arriving out of order */
  const char *later[] = {"\"c\"", "\"d\""}, *earlier[] = {"\"a\"", "\"b\""};
  assert_int_equal(ops->event_append(f->w, n, 4, "chunk", later, 2, 3, 30, &seq), PQ_OK);
  assert_int_equal(seq, 4);
  assert_int_equal(ops->event_append(f->w, n, 4, "chunk", earlier, 2, 1, 31, &seq), PQ_OK);
  assert_int_equal(seq, 2);
  assert_int_equal(ops->event_append(f->w, n, 4, "chunk", again, 1, 0, 32, &seq), PQ_OK);
  assert_int_equal(seq, 5); /* after the last, wherever it came from */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_conn *r = ops->acquire(f->store, PQ_CONN_READ);
  pq_job_event *ev = NULL;
  size_t count = 0;
  assert_int_equal(ops->event_list(r, n, 1, 1, 100, &ev, &count), PQ_OK);
  assert_int_equal(count, 2);
  assert_int_equal(ev[0].seq, 2);
  assert_string_equal(ev[0].data, "\"lo\"");
  assert_string_equal(ev[1].kind, "chunk");
  assert_int_equal(ev[1].created_at, 12);
  pq_job *full = NULL, peek;
  assert_int_equal(ops->job_get(r, NULL, n, &full), PQ_OK);
  assert_int_equal(ops->job_peek(r, full->id, &peek), PQ_OK);
  assert_int_equal(peek.number, n);
  assert_int_equal(peek.state, PQ_JOB_QUEUED);
  assert_null(peek.input); /* only the state: no prompt, no output */
  pq_job_free(full);
  assert_int_equal(ops->job_peek(r, "00000000-0000-7000-8000-000000000000", &peek), PQ_ERR_NOT_FOUND);
  pq_job_events_free(ev, count);
  assert_int_equal(ops->event_list(r, n, 4, 0, 100, &ev, &count), PQ_OK);
  assert_int_equal(count, 5);
  for (size_t i = 0; i < count; i++) assert_int_equal(ev[i].seq, (int64_t)i + 1);
  assert_string_equal(ev[0].data, "\"a\"");
  assert_string_equal(ev[3].data, "\"d\"");
  pq_job_events_free(ev, count);
  assert_int_equal(ops->event_list(r, n, 1, 0, 1, &ev, &count), PQ_OK); /* limit */
  assert_int_equal(count, 1);
  pq_job_events_free(ev, count);
  assert_int_equal(ops->event_list(r, n, 3, 0, 10, &ev, &count), PQ_OK);
  assert_int_equal(count, 0);
  pq_job_events_free(ev, count);
  ops->release(f->store, r);
}

static void users_keys_and_owners(void **state) {
  fixture *f = *state;
  pq_user ann = {.name = "ann", .password_hash = "$argon2id$x", .admin = true, .created_at = 1};
  pq_user bob = {.name = "bob", .password_hash = "$argon2id$y", .created_at = 2};
  pq_uuid7(1, ann.id);
  pq_uuid7(2, bob.id);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->user_insert(f->w, &ann), PQ_OK);
  assert_int_equal(ops->user_insert(f->w, &bob), PQ_OK);
  pq_user again = bob;
  pq_uuid7(3, again.id);
  assert_int_equal(ops->user_insert(f->w, &again), PQ_ERR_ALREADY_EXISTS);
  pq_api_key key = {.user_id = bob.id, .prefix = "pq_live_abcd", .hash = "h1", .scope = "worker",
                    .name = "gpu", .created_at = 5, .expires_at = 99};
  pq_uuid7(5, key.id);
  assert_int_equal(ops->key_insert(f->w, &key), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);

  pq_user *u = NULL;
  assert_int_equal(ops->user_get(f->w, NULL, "bob", &u), PQ_OK);
  assert_string_equal(u->id, bob.id);
  assert_false(u->admin);
  pq_user_free(u);
  assert_int_equal(ops->user_get(f->w, ann.id, NULL, &u), PQ_OK);
  assert_true(u->admin);
  pq_user_free(u);
  assert_int_equal(ops->user_get(f->w, NULL, "carol", &u), PQ_ERR_NOT_FOUND);
  pq_user **users;
  size_t n;
  assert_int_equal(ops->user_list(f->w, &users, &n), PQ_OK);
  assert_int_equal(n, 2);
  for (size_t i = 0; i < n; i++) pq_user_free(users[i]);
  free(users);

  pq_api_key *k = NULL;
  assert_int_equal(ops->key_get_by_hash(f->w, "h1", &k), PQ_OK);
  assert_string_equal(k->scope, "worker");
  assert_int_equal(k->expires_at, 99);
  assert_int_equal(k->revoked_at, 0);
  pq_api_key_free(k);
  pq_api_key **keys;
  assert_int_equal(ops->key_list(f->w, ann.id, &keys, &n), PQ_OK);
  assert_int_equal(n, 0);
  free(keys);
  assert_int_equal(ops->key_list(f->w, NULL, &keys, &n), PQ_OK);
  assert_int_equal(n, 1);
  pq_api_key_free(keys[0]);
  free(keys);

  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->key_revoke(f->w, "pq_live_abcd", ann.id, 50), PQ_ERR_NOT_FOUND); /* not hers */
  assert_int_equal(ops->key_revoke(f->w, "pq_live_abcd", bob.id, 50), PQ_OK);
  assert_int_equal(ops->key_revoke(f->w, key.id, NULL, 60), PQ_ERR_NOT_FOUND); /* already */
  assert_int_equal(ops->user_set_disabled(f->w, "bob", true), PQ_OK);
  assert_int_equal(ops->user_set_disabled(f->w, "carol", true), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->key_get_by_hash(f->w, "h1", &k), PQ_OK);
  assert_int_equal(k->revoked_at, 50);
  pq_api_key_free(k);
  assert_int_equal(ops->user_get(f->w, NULL, "bob", &u), PQ_OK);
  assert_true(u->disabled);
  pq_user_free(u);

  /* jobs belong to their owner */
  for (int i = 0; i < 3; i++) {
    pq_job *j = make_job("m", 0, 10 + i);
    j->owner = strdup(i < 2 ? bob.id : ann.id);
    assert_int_equal(ops->begin(f->w, true), PQ_OK);
    assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
    assert_int_equal(ops->commit(f->w), PQ_OK);
    pq_job_free(j);
  }
  pq_job **jobs;
  int64_t total;
  pq_job_filter mine = {.state = -1, .owner = bob.id, .limit = 10};
  assert_int_equal(ops->job_list(f->w, &mine, &jobs, &n, &total), PQ_OK);
  assert_int_equal(total, 2);
  assert_string_equal(jobs[0]->owner, bob.id);
  pq_job_free_array(jobs, n);
  int64_t queued;
  assert_int_equal(ops->job_count_queued_by_owner(f->w, bob.id, 100, &queued), PQ_OK);
  assert_int_equal(queued, 2);
  assert_int_equal(ops->job_count_queued_by_owner(f->w, bob.id, 1, &queued), PQ_OK);
  assert_int_equal(queued, 1); /* capped */
}

static void note_id(void *ctx, const char *id) { snprintf(ctx, PQ_UUID_LEN + 1, "%s", id); }

static void workers(void **state) {
  fixture *f = *state;
  pq_worker w = {.name = "gpu-1", .models = "[\"m\"]", .capabilities = "{}", .created_at = 10,
                 .last_seen_at = 10, .owner = "user-1"};
  pq_uuid7(10, w.id);
  ops->begin(f->w, true);
  assert_int_equal(ops->worker_insert(f->w, &w), PQ_OK);
  ops->commit(f->w);
  pq_worker *back = NULL;
  assert_int_equal(ops->worker_get(f->w, w.id, &back), PQ_OK);
  assert_string_equal(back->name, "gpu-1");
  assert_string_equal(back->models, "[\"m\"]");
  assert_string_equal(back->owner, "user-1");
  assert_true(back->online);
  pq_worker_free(back);
  ops->begin(f->w, true);
  assert_int_equal(ops->worker_touch(f->w, w.id, 50), PQ_OK);
  assert_int_equal(ops->worker_touch(f->w, "00000000-0000-7000-8000-000000000000", 50), PQ_ERR_NOT_FOUND);
  char gone[PQ_UUID_LEN + 1] = "";
  assert_int_equal(ops->worker_mark_offline(f->w, 40, note_id, gone), PQ_OK);
  assert_string_equal(gone, "");
  assert_int_equal(ops->worker_mark_offline(f->w, 60, note_id, gone), PQ_OK);
  assert_string_equal(gone, w.id);
  ops->commit(f->w);
  int64_t online = -1;
  assert_int_equal(ops->worker_count_online(f->w, &online), PQ_OK);
  assert_int_equal(online, 0);
}


/* The store's pick with the usual terms (no limits, nothing urgent). */
static size_t pick(fixture *f, const char *model, const char *offer, int64_t now, size_t limit, int64_t *numbers) {
  pq_pick p = {.model = model, .offer = offer, .now = now};
  char owners[16][PQ_UUID_LEN + 1];
  size_t n = 99;
  assert_true(limit <= 16);
  assert_int_equal(ops->job_pick(f->w, &p, limit, numbers, owners, &n), PQ_OK);
  return n;
}

/* Lease selection: one user's jobs by priority, then age; retries not yet
 * due are skipped; other models are not looked at. */
static void pick_in_lease_order(void **state) {
  fixture *f = *state;
  int64_t a1 = insert(f, "a", 0, 1), a2 = insert(f, "a", 5, 2), a3 = insert(f, "a", 0, 4);
  insert(f, "b", 9, 3);
  int64_t delayed = insert(f, "a", 9, 6);
  pq_job *d = NULL;
  ops->job_get(f->w, NULL, delayed, &d);
  d->not_before = 1000; /* a retry waiting out its backoff */
  ops->begin(f->w, true);
  assert_int_equal(ops->job_update(f->w, d, PQ_JOB_QUEUED, NULL), PQ_OK);
  ops->commit(f->w);
  pq_job_free(d);
  int64_t numbers[8];
  assert_int_equal(pick(f, "a", NULL, 500, 8, numbers), 3);
  assert_int_equal(numbers[0], a2);
  assert_int_equal(numbers[1], a1);
  assert_int_equal(numbers[2], a3);
  assert_int_equal(pick(f, "a", NULL, 500, 2, numbers), 2);
  assert_int_equal(pick(f, "a", NULL, 1000, 1, numbers), 1); /* its time came */
  assert_int_equal(numbers[0], delayed);
  assert_int_equal(pick(f, "zzz", NULL, 500, 8, numbers), 0);
}

static int64_t insert_for(fixture *f, const char *model, const char *owner, int priority, int64_t now) {
  pq_job *j = make_job(model, priority, now);
  j->owner = strdup(owner);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t n = j->number;
  pq_job_free(j);
  return n;
}

/* Fair turns kept in the store: users served longest ago first, one job
 * each per round, priority only within a user's own; weights lengthen a
 * turn; urgent jobs first; running limits pass a user over. */
static void pick_takes_turns(void **state) {
  fixture *f = *state;
  int64_t ann[3], bob, cy;
  for (int i = 0; i < 3; i++) ann[i] = insert_for(f, "m", "ann", i == 2 ? 7 : 0, 1 + i);
  bob = insert_for(f, "m", "bob", 0, 10);
  cy = insert_for(f, "m", "cy", 0, 11);
  int64_t numbers[8];
  char owners[8][PQ_UUID_LEN + 1];
  size_t n = 0;
  pq_pick p = {.model = "m", .now = 100};
  /* nobody served yet: by name; a round takes one of each, then the next round (each user gives
   * at most its share, 2 of 5 here: the pick comes back short, the caller asks again) */
  assert_int_equal(ops->job_pick(f->w, &p, 5, numbers, owners, &n), PQ_OK);
  assert_int_equal(n, 4);
  assert_int_equal(numbers[0], ann[2]); /* her best first: priority orders her own */
  assert_string_equal(owners[0], "ann");
  assert_int_equal(numbers[1], bob);
  assert_int_equal(numbers[2], cy);
  assert_int_equal(numbers[3], ann[0]);
  /* ann and then bob were served: cy (never served) comes first, then ann, then bob */
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->turn_charge(f->w, "m", "ann", 1000, 1), PQ_OK);
  assert_int_equal(ops->turn_charge(f->w, "m", "bob", 1001, 1), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->job_pick(f->w, &p, 3, numbers, owners, &n), PQ_OK);
  assert_int_equal(n, 3);
  assert_string_equal(owners[0], "cy");
  assert_string_equal(owners[1], "ann");
  assert_string_equal(owners[2], "bob");
  /* a weight of 2: the first of her two leases leaves her turn where it was */
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->turn_charge(f->w, "m", "cy", 1002, 1), PQ_OK);
  assert_int_equal(ops->turn_charge(f->w, "m", "ann", 1003, 2), PQ_OK); /* one of two */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->job_pick(f->w, &p, 1, numbers, owners, &n), PQ_OK);
  assert_string_equal(owners[0], "ann");
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->turn_charge(f->w, "m", "ann", 1004, 2), PQ_OK); /* two of two: her turn ends */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->job_pick(f->w, &p, 1, numbers, owners, &n), PQ_OK);
  assert_string_equal(owners[0], "bob");
  /* urgent: at or above the priority, before every turn */
  p.urgent = 5;
  assert_int_equal(ops->job_pick(f->w, &p, 2, numbers, owners, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_int_equal(numbers[0], ann[2]);
  assert_string_equal(owners[1], "bob"); /* then the turns, without taking ann[2] twice */
  p.urgent = 0;
  /* a running limit: ann holds one job of m (a worker's): at 1 she is passed over */
  pq_job *held = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, ann[0], &held), PQ_OK);
  held->state = PQ_JOB_LEASED;
  held->worker_id = strdup("w1");
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_update(f->w, held, PQ_JOB_QUEUED, NULL), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_job_free(held);
  p.max_running = 1;
  assert_int_equal(ops->job_pick(f->w, &p, 8, numbers, owners, &n), PQ_OK);
  for (size_t i = 0; i < n; i++) assert_string_not_equal(owners[i], "ann");
  assert_int_equal(n, 2);
  p.max_running = 0;
  p.max_running_model = 1;
  assert_int_equal(ops->job_pick(f->w, &p, 8, numbers, owners, &n), PQ_OK);
  assert_int_equal(n, 2);
  p.max_running_model = 2;
  assert_int_equal(ops->job_pick(f->w, &p, 8, numbers, owners, &n), PQ_OK);
  assert_int_equal(n, 4); /* bob, cy and ann's two left */
}

/* Users whose queued jobs this worker cannot take (requirements, a retry not yet due) do not
 * take up the users a pick looks at: more of them than one pick looks at, never served, and the
 * one user this worker can serve still gets its job. */
static void pick_passes_users_it_cannot_serve(void **state) {
  fixture *f = *state;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  for (int i = 0; i < 300; i++) {
    char owner[32];
    snprintf(owner, sizeof owner, "gpu-user-%03d", i);
    pq_job *j = make_job("m", 0, 1 + i);
    j->owner = strdup(owner);
    j->requirements = strdup("{\"labels\":{\"gpu\":\"h100\"}}");
    assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
    pq_job_free(j);
  }
  assert_int_equal(ops->turn_charge(f->w, "m", "zed", 5, 1), PQ_OK); /* served once: last in line */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t mine = insert_for(f, "m", "zed", 0, 1000), numbers[4];
  char owners[4][PQ_UUID_LEN + 1];
  size_t n = 0;
  pq_pick p = {.model = "m", .now = 2000};
  assert_int_equal(ops->job_pick(f->w, &p, 1, numbers, owners, &n), PQ_OK);
  assert_int_equal(n, 1);
  assert_int_equal(numbers[0], mine);
}

/* Lease selection by capability: a job's requirements (model/route.h)
 * against what the leasing worker offers; the fields routing and webhooks
 * add to a job are kept; a fallback's new model is written. */
static void pick_by_capability(void **state) {
  fixture *f = *state;
  int64_t plain = insert(f, "m", 0, 1);
  pq_job *j = make_job("m", 5, 2);
  j->requirements = strdup("{\"labels\":{\"gpu\":\"h100\",\"region\":\"eu\"},\"min_context\":32768}");
  j->webhook_url = strdup("https://example.com/hook");
  j->key_id = strdup("k1");
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, j), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t needy = j->number;
  pq_job_free(j);
  int64_t numbers[4];
  /* nothing offered, too short a context, a label missing or different: only the plain job */
  const char *short_of[] = {NULL, "{}", "{\"context_length\":8192,\"labels\":{\"gpu\":\"h100\",\"region\":\"eu\"}}",
                            "{\"context_length\":65536,\"labels\":{\"gpu\":\"h100\"}}",
                            "{\"context_length\":65536,\"labels\":{\"gpu\":\"a10\",\"region\":\"eu\"}}"};
  for (size_t i = 0; i < sizeof short_of / sizeof *short_of; i++) {
    assert_int_equal(pick(f, "m", short_of[i], 100, 4, numbers), 1);
    assert_int_equal(numbers[0], plain);
  }
  const char *enough = "{\"context_length\":32768,\"max_output_tokens\":4096,\"labels\":{\"gpu\":\"h100\","
                       "\"region\":\"eu\",\"zone\":\"b\"}}";
  assert_int_equal(pick(f, "m", enough, 100, 4, numbers), 2);
  assert_int_equal(numbers[0], needy); /* a higher priority: first */
  assert_int_equal(numbers[1], plain);
  pq_job *back = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, needy, &back), PQ_OK);
  assert_string_equal(back->webhook_url, "https://example.com/hook");
  assert_string_equal(back->key_id, "k1");
  assert_non_null(strstr(back->requirements, "h100"));
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_set_model(f->w, needy, "other"), PQ_OK);
  assert_int_equal(ops->job_set_model(f->w, 999999, "other"), PQ_ERR_STALE);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  free(back->model);
  back->model = strdup("m"); /* a whole-row update leaves the model alone */
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_update(f->w, back, PQ_JOB_QUEUED, NULL), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_job_free(back);
  assert_int_equal(ops->job_get(f->w, NULL, needy, &back), PQ_OK);
  assert_string_equal(back->model, "other");
  pq_job_free(back);
}

/* Webhooks: subscriptions, the one job-URL secret per owner, deliveries
 * due by time with their secret, updates, the log's filters, and a
 * deleted webhook's pending deliveries cancelled. */
static void webhooks_and_deliveries(void **state) {
  fixture *f = *state;
  pq_webhook sub = {.id = "wh_1", .owner = "u1", .url = "https://a.example/h", .secret = "whsec_AAAA",
                    .events = "job.completed", .created_at = 10};
  pq_webhook secret = {.id = "wh_2", .owner = "u1", .secret = "whsec_BBBB", .events = "*", .created_at = 11};
  pq_webhook again = {.id = "wh_3", .owner = "u1", .secret = "whsec_CCCC", .events = "*", .created_at = 12};
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->webhook_insert(f->w, &sub), PQ_OK);
  assert_int_equal(ops->webhook_insert(f->w, &secret), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->webhook_insert(f->w, &again), PQ_ERR_ALREADY_EXISTS); /* one job secret per owner */
  ops->rollback(f->w);
  pq_webhook *w = NULL;
  assert_int_equal(ops->webhook_job_secret(f->w, "u1", &w), PQ_OK);
  assert_string_equal(w->id, "wh_2");
  assert_null(w->url);
  pq_webhook_free(w);
  assert_int_equal(ops->webhook_job_secret(f->w, "u2", &w), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->webhook_set_secret(f->w, "wh_2", "whsec_DDDD"), PQ_OK); /* rotated */
  assert_int_equal(ops->webhook_set_secret(f->w, "wh_9", "whsec_DDDD"), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_webhook **list = NULL;
  size_t n = 0;
  assert_int_equal(ops->webhook_list(f->w, "u1", &list, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(list[0]->id, "wh_1");
  assert_string_equal(list[0]->events, "job.completed");
  pq_webhook_free_array(list, n);

  pq_delivery d1 = {.id = "msg_1", .webhook_id = "wh_1", .owner = "u1", .job_id = "j1", .url = "https://a.example/h",
                    .event_type = "job.completed", .payload = "{\"type\":\"job.completed\"}",
                    .state = PQ_DELIVERY_PENDING, .next_at = 100, .created_at = 100, .updated_at = 100};
  pq_delivery d2 = d1, d3 = d1;
  d2.id = "msg_2", d2.webhook_id = "wh_2", d2.job_id = "j2", d2.next_at = 50;
  d3.id = "msg_3", d3.next_at = 500;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->delivery_insert(f->w, &d1), PQ_OK);
  assert_int_equal(ops->delivery_insert(f->w, &d2), PQ_OK);
  assert_int_equal(ops->delivery_insert(f->w, &d3), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t next = 0;
  assert_int_equal(ops->delivery_next_at(f->w, &next), PQ_OK);
  assert_int_equal(next, 50);
  pq_delivery **due = NULL;
  assert_int_equal(ops->begin(f->w, false), PQ_OK);
  assert_int_equal(ops->delivery_due(f->w, 200, 10, "[\"u9\"]", "[\"https://b.example/h\"]", &due, &n), PQ_OK);
  assert_int_equal(n, 2); /* msg_3 is not due */
  assert_string_equal(due[0]->id, "msg_2"); /* soonest first */
  assert_string_equal(due[0]->secret, "whsec_DDDD"); /* the secret as it is now */
  assert_string_equal(due[1]->secret, "whsec_AAAA");
  pq_delivery **none = NULL;
  size_t n_none = 9;
  assert_int_equal(ops->delivery_due(f->w, 200, 10, "[\"u1\"]", NULL, &none, &n_none), PQ_OK); /* u1 skipped */
  assert_int_equal(n_none, 0);
  free(none);
  assert_int_equal(ops->delivery_due(f->w, 200, 10, NULL, "[\"https://a.example/h\"]", &none, &n_none), PQ_OK);
  assert_int_equal(n_none, 0); /* both to that URL */
  free(none);
  due[0]->state = PQ_DELIVERY_DELIVERED;
  due[0]->attempts = 1;
  due[0]->last_status = 204;
  due[0]->updated_at = 201;
  assert_int_equal(ops->delivery_update(f->w, due[0]), PQ_OK);
  due[1]->attempts = 2;
  due[1]->next_at = 900;
  due[1]->last_status = 503;
  due[1]->last_error = strdup("the receiver answered 503");
  assert_int_equal(ops->delivery_update(f->w, due[1]), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_delivery_free_array(due, n);
  pq_delivery *d = NULL;
  assert_int_equal(ops->delivery_get(f->w, "msg_1", &d), PQ_OK);
  assert_int_equal(d->attempts, 2);
  assert_int_equal(d->last_status, 503);
  assert_string_equal(d->last_error, "the receiver answered 503");
  assert_int_equal(d->next_at, 900);
  pq_delivery_free(d);
  assert_int_equal(ops->delivery_get(f->w, "msg_9", &d), PQ_ERR_NOT_FOUND);
  pq_delivery **log = NULL;
  assert_int_equal(ops->delivery_list(f->w, "u1", NULL, PQ_DELIVERY_DELIVERED, 10, &log, &n), PQ_OK);
  assert_int_equal(n, 1);
  assert_string_equal(log[0]->id, "msg_2");
  assert_null(log[0]->secret); /* a listing has none */
  pq_delivery_free_array(log, n);
  assert_int_equal(ops->delivery_list(f->w, NULL, "j1", -1, 10, &log, &n), PQ_OK);
  assert_int_equal(n, 2);
  pq_delivery_free_array(log, n);
  assert_int_equal(ops->delivery_list(f->w, "u2", NULL, -1, 10, &log, &n), PQ_OK);
  assert_int_equal(n, 0);
  pq_delivery_free_array(log, n);
  /* a deleted webhook: its pending deliveries are cancelled, delivered ones stay */
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->webhook_delete(f->w, "wh_1", 1000), PQ_OK);
  assert_int_equal(ops->webhook_delete(f->w, "wh_1", 1000), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->delivery_get(f->w, "msg_3", &d), PQ_OK);
  assert_int_equal(d->state, PQ_DELIVERY_CANCELLED);
  pq_delivery_free(d);
  assert_int_equal(ops->delivery_next_at(f->w, &next), PQ_OK);
  assert_int_equal(next, INT64_MAX);
  /* the log's retention: what ended before the time goes, the rest stays */
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->delivery_sweep(f->w, 500), PQ_OK); /* delivered at 201 */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->delivery_get(f->w, "msg_2", &d), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->delivery_get(f->w, "msg_3", &d), PQ_OK); /* cancelled at 1000 */
  pq_delivery_free(d);
}

/* Queue position, totals, the gauges' counts and the online workers. */
static void counts_and_totals(void **state) {
  fixture *f = *state;
  int64_t first = insert(f, "m", 0, 1);
  insert(f, "m", 0, 2);
  int64_t high = insert(f, "m", 3, 3), last = insert(f, "m", 0, 4);
  insert(f, "other", 0, 5);
  pq_job *j = NULL;
  int64_t ahead = -1;
  ops->job_get(f->w, NULL, last, &j);
  assert_int_equal(ops->job_ahead(f->w, j, false, 100, &ahead), PQ_OK);
  assert_int_equal(ahead, 3); /* both older ones and the higher-priority one */
  assert_int_equal(ops->job_ahead(f->w, j, false, 2, &ahead), PQ_OK);
  assert_int_equal(ahead, 2); /* capped */
  assert_int_equal(ops->job_ahead(f->w, j, true, 100, &ahead), PQ_OK);
  assert_int_equal(ahead, 3); /* all of the same (no) owner */
  pq_job_free(j);
  ops->job_get(f->w, NULL, high, &j);
  assert_int_equal(ops->job_ahead(f->w, j, false, 100, &ahead), PQ_OK);
  assert_int_equal(ahead, 0); /* nothing older has its priority */
  pq_job_free(j);
  /* one completes with usage, one is leased */
  ops->job_get(f->w, NULL, first, &j);
  j->state = PQ_JOB_LEASED;
  j->lease_token = strdup("t");
  ops->begin(f->w, true);
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_QUEUED, NULL), PQ_OK);
  j->state = PQ_JOB_COMPLETED;
  j->prompt_tokens = 3;
  j->completion_tokens = 4;
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_LEASED, "t"), PQ_OK);
  ops->commit(f->w);
  pq_job_free(j);
  ops->job_get(f->w, NULL, high, &j);
  j->state = PQ_JOB_LEASED;
  ops->begin(f->w, true);
  assert_int_equal(ops->job_update(f->w, j, PQ_JOB_QUEUED, NULL), PQ_OK);
  ops->commit(f->w);
  pq_job_free(j);
  int64_t total = 0, completed = 0, tokens = 0;
  assert_int_equal(ops->job_totals(f->w, NULL, &total, &completed, &tokens), PQ_OK);
  assert_int_equal(total, 5);
  assert_int_equal(completed, 1);
  assert_int_equal(tokens, 7);
  assert_int_equal(ops->job_totals(f->w, "nobody", &total, &completed, &tokens), PQ_OK);
  assert_int_equal(total, 0);
  int64_t counts[2][2] = {{0}}; /* [model m, other][queued, leased] */
  assert_int_equal(ops->job_count_active(f->w, count_active, counts), PQ_OK);
  assert_int_equal(counts[0][0], 2);
  assert_int_equal(counts[0][1], 1);
  assert_int_equal(counts[1][0], 1);
  assert_int_equal(counts[1][1], 0);
  /* online workers, oldest first */
  pq_worker w1 = {.name = "one", .models = "[\"m\"]", .capabilities = "{}", .created_at = 10, .last_seen_at = 10};
  pq_worker w2 = {.name = "two", .models = "[\"x\"]", .capabilities = "{}", .created_at = 20, .last_seen_at = 20};
  pq_uuid7(10, w1.id);
  pq_uuid7(20, w2.id);
  ops->begin(f->w, true);
  assert_int_equal(ops->worker_insert(f->w, &w2), PQ_OK);
  assert_int_equal(ops->worker_insert(f->w, &w1), PQ_OK);
  ops->commit(f->w);
  pq_worker **list = NULL;
  size_t n = 0;
  assert_int_equal(ops->worker_list_online(f->w, &list, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(list[0]->name, "one");
  assert_string_equal(list[1]->models, "[\"x\"]");
  for (size_t i = 0; i < n; i++) pq_worker_free(list[i]);
  free(list);
  /* an owner's own queue (the fair index's turns): ann's first job has none of hers before it */
  pq_job *mine = make_job("m", 0, 6);
  mine->owner = strdup("ann");
  ops->begin(f->w, true);
  assert_int_equal(ops->job_insert(f->w, mine), PQ_OK);
  ops->commit(f->w);
  assert_int_equal(ops->job_ahead(f->w, mine, true, 100, &ahead), PQ_OK);
  assert_int_equal(ahead, 0);
  assert_int_equal(ops->job_ahead(f->w, mine, false, 100, &ahead), PQ_OK);
  assert_int_equal(ahead, 2); /* the two of m still queued */
  /* a younger job of higher priority is leased first: it is ahead too */
  pq_job *younger = make_job("m", 9, 7);
  ops->begin(f->w, true);
  assert_int_equal(ops->job_insert(f->w, younger), PQ_OK);
  ops->commit(f->w);
  assert_int_equal(ops->job_ahead(f->w, mine, false, 100, &ahead), PQ_OK);
  assert_int_equal(ahead, 3);
  pq_job_free(younger);
  pq_job_free(mine);
}

/* A job's kind is stored, and defaults to chat. */
static void kinds_are_stored(void **state) {
  fixture *f = *state;
  pq_job *e = make_job("m", 0, 1);
  e->kind = strdup("embedding");
  ops->begin(f->w, true);
  assert_int_equal(ops->job_insert(f->w, e), PQ_OK);
  ops->commit(f->w);
  int64_t plain = insert(f, "m", 0, 2);
  pq_job *back = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, e->number, &back), PQ_OK);
  assert_string_equal(back->kind, "embedding");
  pq_job_free(back);
  assert_int_equal(ops->job_get(f->w, NULL, plain, &back), PQ_OK);
  assert_string_equal(back->kind, "chat");
  pq_job_free(back);
  pq_job_free(e);
}

/* A scan whose callback asks to stop runs no further pass (the reaper's
 * fatal errors must not be followed by more writes). */
static int stop_at_first(void *ctx, pq_job *job) {
  (void)job;
  (*(int *)ctx)++;
  return 1;
}

static void scan_stops_when_asked(void **state) {
  fixture *f = *state;
  int64_t b = insert(f, "m", 0, 1), c = insert(f, "m", 0, 2);
  pq_job *jb = NULL, *jc = NULL;
  ops->job_get(f->w, NULL, b, &jb);
  ops->job_get(f->w, NULL, c, &jc);
  jb->state = PQ_JOB_LEASED;
  jb->lease_expires_at = 10; /* a lapsed lease */
  jc->expires_at = 10;      /* and an ended ttl: two passes */
  ops->begin(f->w, true);
  assert_int_equal(ops->job_update(f->w, jb, PQ_JOB_QUEUED, NULL), PQ_OK);
  assert_int_equal(ops->job_update(f->w, jc, PQ_JOB_QUEUED, NULL), PQ_OK);
  ops->commit(f->w);
  int calls = 0;
  assert_int_equal(ops->job_scan_due(f->w, 100, 10, stop_at_first, &calls), PQ_OK);
  assert_int_equal(calls, 1);
  pq_job_free(jb);
  pq_job_free(jc);
}


/* Wallet login challenges: one use, the wallet's own, until they expire. */
static void challenges_are_spent_once(void **state) {
  fixture *f = *state;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->challenge_insert(f->w, "c1", "wallet-a", 1000), PQ_OK);
  assert_int_equal(ops->challenge_insert(f->w, "c2", "wallet-a", 500), PQ_OK);
  assert_int_equal(ops->challenge_insert(f->w, "c1", "wallet-b", 1000), PQ_ERR_ALREADY_EXISTS);
  assert_int_equal(ops->challenge_take(f->w, "c1", "wallet-b", 10), PQ_ERR_NOT_FOUND); /* not b's */
  assert_int_equal(ops->challenge_take(f->w, "c1", "wallet-a", 10), PQ_OK);
  assert_int_equal(ops->challenge_take(f->w, "c1", "wallet-a", 10), PQ_ERR_NOT_FOUND); /* once */
  assert_int_equal(ops->challenge_take(f->w, "c2", "wallet-a", 500), PQ_ERR_NOT_FOUND); /* expired */
  assert_int_equal(ops->challenge_insert(f->w, "c3", "wallet-a", 2000), PQ_OK);
  assert_int_equal(ops->challenge_sweep(f->w, 1500), PQ_OK);
  assert_int_equal(ops->challenge_take(f->w, "c3", "wallet-a", 1000), PQ_OK); /* the sweep kept the live one */
  assert_int_equal(ops->commit(f->w), PQ_OK);
}

static void prices_are_kept_per_model(void **state) {
  fixture *f = *state;
  pq_price a = {.model = "m", .input_per_mtok = 500000, .output_per_mtok = 1500000, .cost_input_per_mtok = 100000,
                .cost_output_per_mtok = 300000, .updated_at = 7};
  pq_price *got = NULL;
  assert_int_equal(ops->price_get(f->w, "m", &got), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->price_put(f->w, &a), PQ_OK);
  a.output_per_mtok = 2000000; /* set again: replaced, not added */
  assert_int_equal(ops->price_put(f->w, &a), PQ_OK);
  pq_price b = {.model = "a-first", .input_per_mtok = 1};
  assert_int_equal(ops->price_put(f->w, &b), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->price_get(f->w, "m", &got), PQ_OK);
  assert_int_equal(got->output_per_mtok, 2000000);
  assert_int_equal(got->cost_input_per_mtok, 100000);
  pq_price_free(got);
  pq_price **all = NULL;
  size_t n = 0;
  assert_int_equal(ops->price_list(f->w, &all, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(all[0]->model, "a-first");
  pq_price_free_array(all, n);
}

static void files_and_deleted_jobs(void **state) {
  fixture *f = *state;
  const char *jsonl = "{\"custom_id\": \"a\"}\n{\"custom_id\": \"\u00e9\"}\n";
  pq_file a = {.id = "file-a", .owner = "u1", .purpose = "batch", .filename = "in.jsonl", .bytes = (int64_t)strlen(jsonl),
               .created_at = 10, .content = (char *)jsonl};
  pq_file b = {.id = "file-b", .owner = "u2", .purpose = "batch_output", .filename = "out.jsonl", .bytes = 0,
               .created_at = 20, .content = ""};
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->file_insert(f->w, &a), PQ_OK);
  assert_int_equal(ops->file_insert(f->w, &b), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->file_insert(f->w, &a), PQ_ERR_ALREADY_EXISTS);
  ops->rollback(f->w);
  pq_file *got = NULL;
  assert_int_equal(ops->file_get(f->w, "file-a", false, &got), PQ_OK);
  assert_null(got->content); /* only when asked */
  assert_string_equal(got->filename, "in.jsonl");
  assert_int_equal(got->bytes, (int64_t)strlen(jsonl));
  pq_file_free(got);
  assert_int_equal(ops->file_get(f->w, "file-a", true, &got), PQ_OK);
  assert_string_equal(got->content, jsonl);
  pq_file_free(got);
  assert_int_equal(ops->file_get(f->w, "file-zzz", false, &got), PQ_ERR_NOT_FOUND);
  pq_file **list = NULL;
  size_t n = 0;
  assert_int_equal(ops->file_list(f->w, NULL, NULL, 10, &list, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_string_equal(list[0]->id, "file-b"); /* newest first */
  assert_null(list[0]->content);
  pq_file_free_array(list, n);
  assert_int_equal(ops->file_list(f->w, "u1", "batch", 10, &list, &n), PQ_OK);
  assert_int_equal(n, 1);
  pq_file_free_array(list, n);
  assert_int_equal(ops->file_list(f->w, "u1", "batch_output", 10, &list, &n), PQ_OK);
  assert_int_equal(n, 0);
  pq_file_free_array(list, n);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->file_delete(f->w, "file-a"), PQ_OK);
  assert_int_equal(ops->file_delete(f->w, "file-a"), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->file_get(f->w, "file-a", false, &got), PQ_ERR_NOT_FOUND);
  /* a job's steps, by parent, in order and in pages */
  pq_job *parent = NULL;
  int64_t parent_number = insert(f, "m", 0, 1);
  assert_int_equal(ops->job_get(f->w, NULL, parent_number, &parent), PQ_OK);
  int64_t kids[3];
  for (int i = 0; i < 3; i++) {
    pq_job *k = make_job("m", 0, 1);
    assert_int_equal(pq_set_str(&k->parent_id, parent->id), 0);
    assert_int_equal(ops->begin(f->w, true), PQ_OK);
    assert_int_equal(ops->job_insert(f->w, k), PQ_OK);
    assert_int_equal(ops->commit(f->w), PQ_OK);
    kids[i] = k->number;
    pq_job_free(k);
  }
  insert(f, "m", 0, 1); /* not a step */
  pq_job **steps = NULL;
  assert_int_equal(ops->job_children(f->w, parent->id, 0, 2, &steps, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_int_equal(steps[0]->number, kids[0]);
  assert_string_equal(steps[1]->parent_id, parent->id);
  int64_t last = steps[1]->number;
  pq_job_free_array(steps, n);
  assert_int_equal(ops->job_children(f->w, parent->id, last, 10, &steps, &n), PQ_OK);
  assert_int_equal(n, 1);
  assert_int_equal(steps[0]->number, kids[2]);
  pq_job_free_array(steps, n);
  pq_job_free(parent);
  /* a job and its event log go together */
  int64_t job = insert(f, "m", 0, 1), seq = 0;
  const char *chunks[] = {"\"x\""};
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->event_append(f->w, job, 1, "chunk", chunks, 1, 0, 10, &seq), PQ_OK);
  assert_int_equal(ops->job_delete(f->w, job), PQ_OK);
  assert_int_equal(ops->job_delete(f->w, job), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_job *gone = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, job, &gone), PQ_ERR_NOT_FOUND);
  pq_job_event *ev = NULL;
  size_t count = 0;
  assert_int_equal(ops->event_list(f->w, job, 1, 0, 10, &ev, &count), PQ_OK);
  assert_int_equal(count, 0);
  pq_job_events_free(ev, count);
}

static void assert_account(fixture *f, const char *id, int64_t balance, int64_t held) {
  pq_account a;
  assert_int_equal(ops->account_get(f->w, id, &a), PQ_OK);
  assert_int_equal(a.balance, balance);
  assert_int_equal(a.held, held);
}

/* Transfers move money exactly once, holds reserve it until they are posted
 * or voided once, and the ledger always sums to zero. */
static void the_ledger_balances(void **state) {
  fixture *f = *state;
  pq_transfer grant = {.id = "grant:1", .debit = "clearing", .credit = "user:u", .amount = 1000, .kind = "grant",
                       .state = PQ_TRANSFER_POSTED, .created_at = 1};
  pq_transfer hold = {.id = "hold:j", .debit = "user:u", .credit = "revenue", .amount = 300, .kind = "hold",
                      .job_id = "j", .state = PQ_TRANSFER_PENDING, .created_at = 2};
  pq_transfer hold2 = {.id = "hold:k", .debit = "user:u", .credit = "revenue", .amount = 200, .kind = "hold",
                       .job_id = "k", .state = PQ_TRANSFER_PENDING, .created_at = 3};
  assert_account(f, "user:u", 0, 0); /* never written: zeros */
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->transfer_insert(f->w, &grant), PQ_OK);
  assert_int_equal(ops->transfer_insert(f->w, &hold), PQ_OK);
  assert_int_equal(ops->transfer_insert(f->w, &hold2), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_account(f, "user:u", 1000, 500);
  assert_account(f, "clearing", -1000, 0);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->transfer_insert(f->w, &grant), PQ_ERR_ALREADY_EXISTS); /* once per id */
  ops->rollback(f->w);
  assert_account(f, "user:u", 1000, 500);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->transfer_settle(f->w, "hold:j", PQ_TRANSFER_POSTED, 120, 9), PQ_OK);
  assert_int_equal(ops->transfer_settle(f->w, "hold:j", PQ_TRANSFER_VOIDED, 0, 9), PQ_ERR_STALE);
  assert_int_equal(ops->transfer_settle(f->w, "hold:k", PQ_TRANSFER_VOIDED, 0, 9), PQ_OK);
  assert_int_equal(ops->transfer_settle(f->w, "hold:none", PQ_TRANSFER_VOIDED, 0, 9), PQ_ERR_NOT_FOUND);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_account(f, "user:u", 880, 0);
  assert_account(f, "revenue", 120, 0);
  int64_t balance = -1, held = -1, pending = -1;
  assert_int_equal(ops->ledger_totals(f->w, &balance, &held, &pending), PQ_OK);
  assert_int_equal(balance, 0);
  assert_int_equal(held, 0);
  assert_int_equal(pending, 0);
  pq_transfer *t = NULL;
  assert_int_equal(ops->transfer_get(f->w, "hold:j", &t), PQ_OK);
  assert_int_equal(t->state, PQ_TRANSFER_POSTED);
  assert_int_equal(t->posted, 120);
  assert_int_equal(t->settled_at, 9);
  assert_string_equal(t->job_id, "j");
  pq_transfer_free(t);
  pq_transfer **list = NULL;
  size_t n = 0;
  int64_t total = 0;
  assert_int_equal(ops->transfer_list(f->w, "user:u", 2, 0, &list, &n, &total), PQ_OK);
  assert_int_equal(total, 3);
  assert_int_equal(n, 2);
  assert_string_equal(list[0]->id, "hold:k"); /* newest first */
  assert_int_equal(list[0]->state, PQ_TRANSFER_VOIDED);
  pq_transfer_free_array(list, n);
  assert_int_equal(ops->transfer_list(f->w, "revenue", 10, 0, &list, &n, &total), PQ_OK);
  assert_int_equal(total, 2);
  pq_transfer_free_array(list, n);
  /* spending since a moment: posted holds and charges from then on, and the open holds */
  pq_transfer keyed = {.id = "hold:m", .debit = "user:u", .credit = "revenue", .amount = 50, .kind = "hold",
                       .state = PQ_TRANSFER_PENDING, .created_at = 20, .key_id = "k"};
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->transfer_insert(f->w, &keyed), PQ_OK);
  pq_budget budget = {.subject = "user:u", .period = "day", .limit_micros = 900, .updated_at = 1};
  assert_int_equal(ops->budget_put(f->w, &budget), PQ_OK);
  budget.limit_micros = 800; /* set again: replaced */
  assert_int_equal(ops->budget_put(f->w, &budget), PQ_OK);
  pq_budget month = {.subject = "key:k", .period = "month", .limit_micros = 70, .updated_at = 1};
  assert_int_equal(ops->budget_put(f->w, &month), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t spent = -1, open = -1;
  assert_int_equal(ops->spend(f->w, "user:u", 0, &spent, &open), PQ_OK);
  assert_int_equal(spent, 120);
  assert_int_equal(open, 50);
  assert_int_equal(ops->spend(f->w, "user:u", 10, &spent, &open), PQ_OK);
  assert_int_equal(spent, 0); /* posted at 9 */
  assert_int_equal(ops->spend(f->w, "key:k", 0, &spent, &open), PQ_OK);
  assert_int_equal(spent, 0);
  assert_int_equal(open, 50);
  pq_budget **budgets = NULL;
  size_t nb = 0;
  assert_int_equal(ops->budget_list(f->w, "user:u", &budgets, &nb), PQ_OK);
  assert_int_equal(nb, 1);
  assert_int_equal(budgets[0]->limit_micros, 800);
  pq_budget_free_array(budgets, nb);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  budget.limit_micros = 0; /* removed */
  assert_int_equal(ops->budget_put(f->w, &budget), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->budget_list(f->w, NULL, &budgets, &nb), PQ_OK);
  assert_int_equal(nb, 1);
  assert_string_equal(budgets[0]->subject, "key:k");
  pq_budget_free_array(budgets, nb);
  pq_transfer *seen = NULL;
  assert_int_equal(ops->transfer_get(f->w, "hold:m", &seen), PQ_OK);
  assert_string_equal(seen->key_id, "k");
  pq_transfer_free(seen);
  assert_int_equal(ops->transfer_list(f->w, NULL, 10, 3, &list, &n, &total), PQ_OK);
  assert_int_equal(total, 4);
  assert_int_equal(n, 1);
  assert_string_equal(list[0]->id, "grant:1");
  pq_transfer_free_array(list, n);
}

/* A provider's event is recorded once; a subscription keeps the newest
 * event's state, whatever order the events came in. */
static void payment_events_and_subscriptions(void **state) {
  fixture *f = *state;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->payment_event_record(f->w, "stripe:evt_1", "invoice.paid", 5), PQ_OK);
  assert_int_equal(ops->payment_event_record(f->w, "stripe:evt_1", "invoice.paid", 6), PQ_ERR_ALREADY_EXISTS);
  pq_subscription newer = {.id = "sub_1", .user_id = "u", .customer = "cus_1", .status = "active",
                           .current_period_end = 900, .event_at = 20, .updated_at = 1};
  pq_subscription older = {.id = "sub_1", .status = "incomplete", .event_at = 10, .updated_at = 2};
  pq_subscription later = {.id = "sub_1", .status = "canceled", .event_at = 30, .updated_at = 3};
  pq_subscription other = {.id = "sub_2", .user_id = "v", .status = "active", .event_at = 1, .updated_at = 1};
  assert_int_equal(ops->subscription_apply(f->w, &newer), PQ_OK);
  assert_int_equal(ops->subscription_apply(f->w, &older), PQ_OK); /* late: changes nothing */
  assert_int_equal(ops->subscription_apply(f->w, &other), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_subscription *got = NULL;
  assert_int_equal(ops->subscription_get(f->w, "sub_1", &got), PQ_OK);
  assert_string_equal(got->status, "active");
  assert_string_equal(got->user_id, "u");
  assert_int_equal(got->current_period_end, 900);
  pq_subscription_free(got);
  int64_t n = 0;
  assert_int_equal(ops->subscription_count_active(f->w, &n), PQ_OK);
  assert_int_equal(n, 2);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->subscription_apply(f->w, &later), PQ_OK); /* newer: it wins, and keeps the user */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->subscription_get(f->w, "sub_1", &got), PQ_OK);
  assert_string_equal(got->status, "canceled");
  assert_string_equal(got->user_id, "u");
  assert_string_equal(got->customer, "cus_1");
  pq_subscription_free(got);
  assert_int_equal(ops->subscription_count_active(f->w, &n), PQ_OK);
  assert_int_equal(n, 1);
  assert_int_equal(ops->subscription_get(f->w, "sub_9", &got), PQ_ERR_NOT_FOUND);
}

/* Bitcoin requests are found by their amount while pending; an output seen
 * paying the address is recorded once. */
static void bitcoin_payments_by_amount(void **state) {
  fixture *f = *state;
  pq_btc_payment a = {.id = "01a20000-0000-7000-8000-0000000000b1", .user_id = "u", .address = "tb1q", .amount_sats = 500,
                      .credit_micros = 9, .status = "pending", .created_at = 10, .expires_at = 100};
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->btc_payment_insert(f->w, &a), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  pq_btc_payment *got = NULL;
  assert_int_equal(ops->btc_payment_by_amount(f->w, 500, 50, false, &got), PQ_OK);
  assert_string_equal(got->id, a.id);
  assert_null(got->txid);
  pq_btc_payment_free(got);
  assert_int_equal(ops->btc_payment_by_amount(f->w, 500, 150, false, &got), PQ_ERR_NOT_FOUND); /* expired */
  assert_int_equal(ops->btc_payment_by_amount(f->w, 500, 150, true, &got), PQ_OK);
  pq_btc_payment_free(got);
  assert_int_equal(ops->btc_payment_by_amount(f->w, 501, 50, true, &got), PQ_ERR_NOT_FOUND);
  int64_t mine = -1;
  assert_int_equal(ops->btc_pending_count(f->w, "u", 50, 10, &mine), PQ_OK);
  assert_int_equal(mine, 1);
  assert_int_equal(ops->btc_pending_count(f->w, "u", 150, 10, &mine), PQ_OK);
  assert_int_equal(mine, 0); /* expired by then */
  assert_int_equal(ops->btc_pending_count(f->w, "v", 50, 10, &mine), PQ_OK);
  assert_int_equal(mine, 0);
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  a.status = "confirmed";
  a.txid = "tx";
  a.confirmations = 3;
  assert_int_equal(ops->btc_payment_update(f->w, &a, "pending"), PQ_OK);
  assert_int_equal(ops->btc_payment_update(f->w, &a, "pending"), PQ_ERR_STALE); /* it moved on */
  assert_int_equal(ops->btc_output_record(f->w, "tx", 0, 500, a.id, "credited", 60), PQ_OK);
  assert_int_equal(ops->btc_output_record(f->w, "tx", 0, 500, a.id, "credited", 61), PQ_ERR_ALREADY_EXISTS);
  assert_int_equal(ops->btc_output_record(f->w, "tx", 1, 7, NULL, "unmatched", 61), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(ops->btc_payment_get(f->w, a.id, &got), PQ_OK);
  assert_string_equal(got->status, "confirmed");
  assert_string_equal(got->txid, "tx");
  assert_int_equal(got->confirmations, 3);
  pq_btc_payment_free(got);
  assert_int_equal(ops->btc_payment_by_amount(f->w, 500, 50, true, &got), PQ_ERR_NOT_FOUND); /* not pending now */
}

static void survives_reopen(void **state) {
  fixture *f = *state;
  pq_job *quick = make_job("m", 1, 4);
  assert_int_equal(ops->begin(f->w, false), PQ_OK); /* a lease-like, unsynced commit */
  assert_int_equal(ops->job_insert(f->w, quick), PQ_OK);
  assert_int_equal(ops->commit(f->w), PQ_OK);
  int64_t n = insert(f, "m", 2, 5); /* durable, and covers the one before */
  ops->release(f->store, f->w);
  f->w = NULL;
  pq_store_close(f->store);
  pq_store_config cfg = {.sync_full = true};
  char url[400], why[200];
  assert_int_equal(store_url(f, url, sizeof url), 0);
  assert_int_equal(pq_store_open(url, &cfg, &f->store, why, sizeof why), PQ_OK);
  assert_int_equal(ops->migrate(f->store, NULL), PQ_OK);
  f->w = ops->acquire(f->store, PQ_CONN_WRITE);
  pq_job *j = NULL;
  assert_int_equal(ops->job_get(f->w, NULL, n, &j), PQ_OK);
  assert_int_equal(j->priority, 2);
  pq_job_free(j);
  assert_int_equal(ops->job_get(f->w, quick->id, 0, &j), PQ_OK);
  pq_job_free(j);
  pq_job_free(quick);
}

/* PostgreSQL only: runs sql on this test's own database from a connection of
 * the test's own; answers 0, or -1 with the SQLSTATE in state. */
static int pg_test_db(fixture *f, const char *sql, char state[6]) {
  char url[300];
  const char *server = getenv("PROMPTQ_TEST_POSTGRES");
  snprintf(url, sizeof url, "%.*s/%s", (int)(strrchr(server, '/') - server), server, f->database);
  PGconn *pg = PQconnectdb(url);
  PGresult *r = PQstatus(pg) == CONNECTION_OK ? PQexec(pg, sql) : NULL;
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  snprintf(state, 6, "%s", code ? code : "");
  PQclear(r);
  PQfinish(pg);
  return ok ? 0 : -1;
}

/* A transaction whose session dies (a PostgreSQL restart, a proxy, an
 * administrator's pg_terminate_backend) must fail to the end: no statement
 * may run on a new session in autocommit, and its COMMIT is an error. */
static void a_transaction_that_lost_its_session_does_not_commit(void **state) {
  fixture *f = *state;
  if (!is_postgres(scheme)) skip();
  char code[6];
  pq_job *a = make_job("m", 1, 10), *b = make_job("m", 1, 11), *seen = NULL;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_insert(f->w, a), PQ_OK);
  assert_int_equal(pg_test_db(f, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                                 "current_database() AND pid <> pg_backend_pid()", code), 0);
  assert_int_not_equal(ops->job_insert(f->w, b), PQ_OK);
  assert_int_not_equal(ops->commit(f->w), PQ_OK);
  ops->rollback(f->w);
  assert_int_equal(ops->job_get(f->w, a->id, 0, &seen), PQ_ERR_NOT_FOUND); /* back, and nothing was written */
  assert_int_equal(ops->job_get(f->w, b->id, 0, &seen), PQ_ERR_NOT_FOUND);
  pq_job_free(a);
  pq_job_free(b);
}

/* The writer's read of a job it may change holds the row until its commit:
 * another coordinator's heartbeat or cancel waits rather than being undone
 * by the compare-and-set that rewrites the row from that read. */
static void the_writer_locks_the_jobs_it_reads(void **state) {
  fixture *f = *state;
  if (!is_postgres(scheme)) skip();
  int64_t n = insert(f, "m", 1, 10);
  char sql[160], code[6];
  snprintf(sql, sizeof sql, "SET lock_timeout = '200ms'; UPDATE jobs SET cancel_requested = 1 WHERE number = %lld",
           (long long)n);
  pq_job *j = NULL;
  assert_int_equal(ops->begin(f->w, true), PQ_OK);
  assert_int_equal(ops->job_get(f->w, NULL, n, &j), PQ_OK);
  assert_int_equal(pg_test_db(f, sql, code), -1);
  assert_string_equal(code, "55P03"); /* lock_not_available */
  assert_int_equal(ops->commit(f->w), PQ_OK);
  assert_int_equal(pg_test_db(f, sql, code), 0);
  pq_job_free(j);
  /* outside a transaction a read locks nothing */
  assert_int_equal(ops->job_get(f->w, NULL, n, &j), PQ_OK);
  assert_int_equal(pg_test_db(f, sql, code), 0);
  pq_job_free(j);
}

int main(void) {
  pq_ids_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(migrations_are_idempotent, setup, teardown),
      cmocka_unit_test_setup_teardown(insert_then_read_back, setup, teardown),
      cmocka_unit_test_setup_teardown(uncommitted_writes_are_invisible_to_readers, setup, teardown),
      cmocka_unit_test_setup_teardown(update_is_compare_and_set, setup, teardown),
      cmocka_unit_test_setup_teardown(idempotency_keys_are_unique, setup, teardown),
      cmocka_unit_test_setup_teardown(list_filters_and_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(list_in_lease_order_without_counting, setup, teardown),
      cmocka_unit_test_setup_teardown(scans_find_queued_and_due, setup, teardown),
      cmocka_unit_test_setup_teardown(event_log, setup, teardown),
      cmocka_unit_test_setup_teardown(users_keys_and_owners, setup, teardown),
      cmocka_unit_test_setup_teardown(workers, setup, teardown),
      cmocka_unit_test_setup_teardown(pick_in_lease_order, setup, teardown),
      cmocka_unit_test_setup_teardown(pick_takes_turns, setup, teardown),
      cmocka_unit_test_setup_teardown(pick_passes_users_it_cannot_serve, setup, teardown),
      cmocka_unit_test_setup_teardown(pick_by_capability, setup, teardown),
      cmocka_unit_test_setup_teardown(webhooks_and_deliveries, setup, teardown),
      cmocka_unit_test_setup_teardown(counts_and_totals, setup, teardown),
      cmocka_unit_test_setup_teardown(kinds_are_stored, setup, teardown),
      cmocka_unit_test_setup_teardown(scan_stops_when_asked, setup, teardown),
      cmocka_unit_test_setup_teardown(challenges_are_spent_once, setup, teardown),
      cmocka_unit_test_setup_teardown(prices_are_kept_per_model, setup, teardown),
      cmocka_unit_test_setup_teardown(files_and_deleted_jobs, setup, teardown),
      cmocka_unit_test_setup_teardown(the_ledger_balances, setup, teardown),
      cmocka_unit_test_setup_teardown(payment_events_and_subscriptions, setup, teardown),
      cmocka_unit_test_setup_teardown(bitcoin_payments_by_amount, setup, teardown),
      cmocka_unit_test_setup_teardown(survives_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(a_transaction_that_lost_its_session_does_not_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(the_writer_locks_the_jobs_it_reads, setup, teardown),
  };
  int failed = 0;
  for (size_t i = 0; pq_store_backends[i].scheme; i++) {
    if (i > 0 && pq_store_backends[i].ops == pq_store_backends[i - 1].ops) continue; /* an alias (postgresql://) */
    if (is_postgres(pq_store_backends[i].scheme) && !getenv("PROMPTQ_TEST_POSTGRES")) {
      if (system("ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1") == 0) {
        fprintf(stderr, "PostgreSQL is installed: run this suite under scripts/with-postgres\n");
        failed++;
      } else {
        fprintf(stderr, "store contract: postgres skipped (no PostgreSQL server installed)\n");
      }
      continue;
    }
    for (int wrapped = 0; wrapped < 2; wrapped++) {
      char name[128], wrapped_scheme[64];
      snprintf(wrapped_scheme, sizeof wrapped_scheme, "%s%s", wrapped ? "fault+" : "", pq_store_backends[i].scheme);
      scheme = wrapped_scheme;
      snprintf(name, sizeof name, "store contract: %s", scheme);
      failed += _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
    }
  }
  return failed;
}
