/* The PostgreSQL backend: several coordinators share one database. This
 * file: connections (a writer and a read pool, reconnected with backoff
 * after PostgreSQL restarts), transactions, migrations, the helpers the area
 * files use, the notifications that carry one coordinator's changes to the
 * others (LISTEN/NOTIFY), the maintenance lock, and the ops table. The
 * queries live by area: jobs.c, events.c, workers.c, identity.c.
 *
 * A NOTIFY is sent once per group commit, after it and outside it, from a
 * connection of its own: never inside an enqueue's transaction, where
 * PostgreSQL takes a global lock at commit and serialises every writer. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/postgres/internal.h"

#define RECONNECT_BACKOFF_MS 500
#define MAINTENANCE_LOCK 727275 /* pg_try_advisory_lock key: the coordinator that runs the reaper */
#define MIGRATION_LOCK 727274
#define CHANNEL "promptq"

struct pg_store {
  pq_store base;
  char *url;
  int read_pool_size;
  bool pooled; /* behind a transaction pooler: unnamed statements, a lock per maintenance beat */
  pthread_mutex_t mu;
  pq_conn *free_readers;
  pq_conn *writer;
  /* notifications */
  pthread_mutex_t notify_mu;
  pq_conn *notifier;
  int notifier_pid;
  pthread_t listener;
  bool listening, stop;
  void (*on_notify)(void *ctx, const char *payload);
  void *notify_ctx;
};

/* ---- parameters and rows ---- */

void pq__pg_text(pq__pgp *p, const char *v) { p->v[p->n++] = v; }

void pq__pg_int(pq__pgp *p, int64_t v) {
  snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
  p->v[p->n] = p->num[p->n];
  p->n++;
}

void pq__pg_ms(pq__pgp *p, int64_t v) {
  if (v) pq__pg_int(p, v);
  else p->v[p->n++] = NULL;
}

const char *pq__pg_col(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t pq__pg_i64(const PGresult *r, int row, int col) {
  const char *v = pq__pg_col(r, row, col);
  return v ? strtoll(v, NULL, 10) : 0;
}

int pq__pg_dup(const PGresult *r, int row, int col, char **out) {
  const char *v = pq__pg_col(r, row, col);
  if (!v) {
    *out = NULL;
    return 0;
  }
  return (*out = strdup(v)) ? 0 : -1;
}

int64_t pq__pg_changed(const PGresult *r) {
  const char *n = PQcmdTuples((PGresult *)r);
  return n && *n ? strtoll(n, NULL, 10) : 0;
}

/* ---- connections ---- */

/* Keepalives on both ends: a coordinator whose host vanished is noticed by
 * the server (its maintenance lock freed) and a partitioned coordinator's
 * statements fail, within about half a minute, not the kernel's two hours.
 * Values in the URL win: libpq reads them after these. */
static PGconn *connect_to(const char *url) {
  const char *keys[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "options", "dbname", NULL};
  const char *values[] = {"3", "promptq", "1", "10", "5", "3", "30000",
                          "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3", url, NULL};
  PGconn *pg = PQconnectdbParams(keys, values, 1);
  if (pg && PQstatus(pg) == CONNECTION_OK) return pg;
  pq_error("postgres: cannot connect: %s", pg ? PQerrorMessage(pg) : "no memory");
  PQfinish(pg);
  return NULL;
}

static pq_conn *conn_open(pg_store *s, bool writer) {
  pq_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->store = s;
  c->writer = writer;
  if (!(c->pg = connect_to(s->url))) {
    free(c);
    return NULL;
  }
  return c;
}

static void conn_close(pq_conn *c) {
  if (!c) return;
  PQfinish(c->pg);
  free(c);
}

/* A connection that was lost is tried again, not more often than the backoff. */
static bool conn_ready(pq_conn *c) {
  if (PQstatus(c->pg) == CONNECTION_OK) return true;
  if (c->in_txn) return false; /* the transaction died with the session: only its rollback ends it */
  int64_t now = pq_mono_ms();
  if (now < c->retry_at) return false;
  PQreset(c->pg);
  memset(c->prepared, 0, sizeof c->prepared); /* a new session knows no statement */
  c->leader = false;                          /* nor holds the lock */
  if (PQstatus(c->pg) == CONNECTION_OK) {
    pq_info("postgres: reconnected");
    return true;
  }
  c->retry_at = now + RECONNECT_BACKOFF_MS;
  return false;
}

static pq_err result_error(pq_conn *c, PGresult *r, const char *sql) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (state && strcmp(state, "23505") == 0) return PQ_ERR_ALREADY_EXISTS; /* unique_violation */
  pq_error("postgres: %.80s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
  return PQ_ERR_STORE_FAILED;
}

static PGresult *finish(pq_conn *c, PGresult *r, const char *sql, pq_err *err) {
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  *err = result_error(c, r, sql);
  PQclear(r);
  return NULL;
}

PGresult *pq__pg_run(pq_conn *c, const char *sql, const pq__pgp *p, pq_err *err) {
  *err = PQ_OK;
  if (!conn_ready(c)) {
    *err = PQ_ERR_STORE_FAILED;
    return NULL;
  }
  size_t slot = (size_t)(((uintptr_t)sql >> 3) * 0x9E3779B97F4A7C15ull >> 57) % PQ__PG_STMT_SLOTS;
  size_t probe = 0;
  while (probe < PQ__PG_STMT_SLOTS && c->prepared[slot].sql && c->prepared[slot].sql != sql) {
    slot = (slot + 1) % PQ__PG_STMT_SLOTS;
    probe++;
  }
  if (probe == PQ__PG_STMT_SLOTS || c->store->pooled) return pq__pg_run_once(c, sql, p, err);
  if (!c->prepared[slot].sql) {
    snprintf(c->prepared[slot].name, sizeof c->prepared[slot].name, "s%zu", slot);
    PGresult *r = PQprepare(c->pg, c->prepared[slot].name, sql, 0, NULL);
    if (!finish(c, r, sql, err)) return NULL;
    PQclear(r);
    c->prepared[slot].sql = sql;
  }
  PGresult *r = PQexecPrepared(c->pg, c->prepared[slot].name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
  return finish(c, r, sql, err);
}

PGresult *pq__pg_run_once(pq_conn *c, const char *sql, const pq__pgp *p, pq_err *err) {
  *err = PQ_OK;
  if (!conn_ready(c)) {
    *err = PQ_ERR_STORE_FAILED;
    return NULL;
  }
  PGresult *r = PQexecParams(c->pg, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, 0);
  return finish(c, r, sql, err);
}

/* One or more statements without parameters (migrations, BEGIN, COMMIT). */
static pq_err exec_simple(pq_conn *c, const char *sql) {
  if (!conn_ready(c)) return PQ_ERR_STORE_FAILED;
  pq_err err = PQ_OK;
  PGresult *r = finish(c, PQexec(c->pg, sql), sql, &err);
  PQclear(r);
  return err;
}

static pq_conn *pg_acquire(pq_store *base, pq_conn_kind kind) {
  pg_store *s = (pg_store *)base;
  pq_conn *c = NULL;
  pthread_mutex_lock(&s->mu);
  if (kind == PQ_CONN_WRITE) {
    c = s->writer;
    s->writer = NULL;
  } else if ((c = s->free_readers)) {
    s->free_readers = c->next_free;
  }
  pthread_mutex_unlock(&s->mu);
  if (!c) c = conn_open(s, kind == PQ_CONN_WRITE);
  else if (!conn_ready(c)) { /* PostgreSQL is away: the caller answers STORE_FAILED */
    pthread_mutex_lock(&s->mu);
    if (kind == PQ_CONN_WRITE) s->writer = c;
    else {
      c->next_free = s->free_readers;
      s->free_readers = c;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
  }
  return c;
}

static void pg_release(pq_store *base, pq_conn *c) {
  pg_store *s = (pg_store *)base;
  if (!c) return;
  if (PQtransactionStatus(c->pg) != PQTRANS_IDLE && PQstatus(c->pg) == CONNECTION_OK) exec_simple(c, "ROLLBACK");
  c->in_txn = false;
  pthread_mutex_lock(&s->mu);
  if (c->writer) {
    if (!s->writer) {
      s->writer = c;
      c = NULL;
    }
  } else {
    int pooled = 0;
    for (pq_conn *r = s->free_readers; r; r = r->next_free) pooled++;
    if (pooled < s->read_pool_size) {
      c->next_free = s->free_readers;
      s->free_readers = c;
      c = NULL;
    }
  }
  pthread_mutex_unlock(&s->mu);
  conn_close(c);
}

/* ---- transactions ---- */

static pq_err pg_begin(pq_conn *c, bool durable) {
  c->in_txn = false;
  pq_err e = exec_simple(c, "BEGIN");
  c->in_txn = e == PQ_OK;
  /* a lease or a heartbeat need not wait for the WAL to reach the disk (see the engine) */
  if (e == PQ_OK && !durable) e = exec_simple(c, "SET LOCAL synchronous_commit = off");
  return e;
}

/* A COMMIT of a transaction that failed on the way answers "ROLLBACK", not
 * an error: only the command tag says nothing was written. */
static pq_err pg_commit(pq_conn *c) {
  pq_err err = PQ_ERR_STORE_FAILED;
  if (conn_ready(c)) {
    PGresult *r = PQexec(c->pg, "COMMIT");
    if (r && PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0) err = PQ_OK;
    else pq_error("postgres: the commit did not happen: %s", r && PQresultStatus(r) == PGRES_COMMAND_OK
                                                                ? "the transaction had failed"
                                                                : PQerrorMessage(c->pg));
    PQclear(r);
  }
  if (err == PQ_OK) c->in_txn = false;
  return err;
}

static void pg_rollback(pq_conn *c) {
  if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) exec_simple(c, "ROLLBACK");
  c->in_txn = false;
}

/* ---- migrations ---- */

static int current_version(pq_conn *c) {
  pq_err err;
  PGresult *r = pq__pg_run_once(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, &err);
  int v = r ? (int)pq__pg_i64(r, 0, 0) : -1;
  PQclear(r);
  return v;
}

static pq_err pg_migrate(pq_store *base, int *applied) {
  pg_store *s = (pg_store *)base;
  int count = 0;
  pq_conn *c = pg_acquire(base, PQ_CONN_WRITE);
  if (!c) return PQ_ERR_STORE_FAILED;
  pq_err result = PQ_OK;
  for (;;) {
    /* several coordinators may start at once: one migrates, under a lock, the others wait and see */
    if ((result = exec_simple(c, "BEGIN")) ||
        (result = exec_simple(c, "SELECT pg_advisory_xact_lock(" /* MIGRATION_LOCK */ "727274)")) ||
        (result = exec_simple(c, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                                 "applied_at BIGINT NOT NULL)")))
      break;
    int v = current_version(c);
    if (v < 0) {
      result = PQ_ERR_STORE_FAILED;
      break;
    }
    if (v >= pq__postgres_migrations_count) {
      result = exec_simple(c, "COMMIT");
      break;
    }
    char record[128];
    snprintf(record, sizeof record, "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)", v + 1,
             (long long)pq_now_ms());
    if ((result = exec_simple(c, pq__postgres_migrations[v])) || (result = exec_simple(c, record)) ||
        (result = exec_simple(c, "COMMIT")))
      break;
    pq_info("store: applied migration %d to PostgreSQL", v + 1);
    count++;
  }
  if (result != PQ_OK) pg_rollback(c);
  (void)s;
  pg_release(base, c);
  if (applied) *applied = count;
  return result;
}

static int pg_schema_version(pq_store *base) {
  pq_conn *c = pg_acquire(base, PQ_CONN_READ);
  if (!c) return -1;
  int v = current_version(c);
  pg_release(base, c);
  return v;
}

/* ---- several coordinators: notifications and the maintenance lock ---- */

static pq_err pg_notify(pq_store *base, const char *payload) {
  pg_store *s = (pg_store *)base;
  pthread_mutex_lock(&s->notify_mu);
  pq_err err = PQ_ERR_STORE_FAILED;
  if (!s->notifier && (s->notifier = conn_open(s, false))) s->notifier_pid = PQbackendPID(s->notifier->pg);
  if (s->notifier) {
    static const char sql[] = "SELECT pg_notify('" CHANNEL "', $1)";
    pq__pgp p = {0};
    pq__pg_text(&p, payload);
    PGresult *r = pq__pg_run(s->notifier, sql, &p, &err);
    PQclear(r);
    if (err == PQ_OK) s->notifier_pid = PQbackendPID(s->notifier->pg); /* after a reconnect too */
  }
  pthread_mutex_unlock(&s->notify_mu);
  return err;
}

static void *listen_main(void *arg) {
  pg_store *s = arg;
  PGconn *pg = NULL;
  while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
      PQfinish(pg);
      pg = connect_to(s->url);
      PGresult *r = pg ? PQexec(pg, "LISTEN " CHANNEL) : NULL;
      bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
      if (!ok) {
        PQfinish(pg);
        pg = NULL;
        struct pollfd none = {.fd = -1};
        poll(&none, 0, RECONNECT_BACKOFF_MS);
        continue;
      }
      s->on_notify(s->notify_ctx, "*"); /* while away, anything may have happened */
    }
    struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
    if (poll(&p, 1, 250) < 0 && errno != EINTR) continue;
    if (!PQconsumeInput(pg)) continue; /* lost: reconnect above */
    PGnotify *n;
    while ((n = PQnotifies(pg))) {
      pthread_mutex_lock(&s->notify_mu);
      bool own = n->be_pid == s->notifier_pid;
      pthread_mutex_unlock(&s->notify_mu);
      if (!own) s->on_notify(s->notify_ctx, n->extra);
      PQfreemem(n);
    }
  }
  PQfinish(pg);
  return NULL;
}

static void stop_listening(pg_store *s) {
  if (!s->listening) return;
  __atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
  pthread_join(s->listener, NULL);
  s->listening = false;
}

static pq_err pg_listen(pq_store *base, void (*fn)(void *ctx, const char *payload), void *ctx) {
  pg_store *s = (pg_store *)base;
  if (!fn) { /* the listener's owner is going away: no callback after this returns */
    stop_listening(s);
    return PQ_OK;
  }
  s->on_notify = fn;
  s->notify_ctx = ctx;
  if (pthread_create(&s->listener, NULL, listen_main, s) != 0) return PQ_ERR_INTERNAL;
  s->listening = true;
  return PQ_OK;
}

/* The maintenance leader holds a session lock until its session ends. Behind
 * a transaction pooler a session is not ours to hold: the lock is taken for
 * each beat's transaction instead (at most one coordinator reaps at a time). */
static bool pg_lead(pq_conn *c) {
  if (c->leader && !c->store->pooled) return true;
  bool was = c->leader;
  pq_err err;
  PGresult *r = pq__pg_run(c, c->store->pooled ? "SELECT pg_try_advisory_xact_lock(727275)" /* MAINTENANCE_LOCK */
                                                : "SELECT pg_try_advisory_lock(727275)",
                           NULL, &err);
  c->leader = r && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  if (c->leader && !was) pq_info("postgres: this coordinator runs the maintenance now");
  return c->leader;
}

/* ---- open and close ---- */

static void pg_close(pq_store *base) {
  pg_store *s = (pg_store *)base;
  if (!s) return;
  stop_listening(s);
  while (s->free_readers) {
    pq_conn *c = s->free_readers;
    s->free_readers = c->next_free;
    conn_close(c);
  }
  conn_close(s->writer);
  conn_close(s->notifier);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->notify_mu);
  free(s->url);
  free(s);
}

static pq_err pg_open(const pq_store_config *cfg, pq_store **out) {
  pg_store *s = calloc(1, sizeof *s);
  if (!s) return PQ_ERR_NO_MEMORY;
  /* the registry hands over what follows "scheme://": libpq wants the whole URI */
  size_t n = strlen(cfg->path) + 16;
  if (!(s->url = malloc(n))) {
    free(s);
    return PQ_ERR_NO_MEMORY;
  }
  snprintf(s->url, n, "postgresql://%s", cfg->path);
  s->base.ops = &pq_store_postgres_ops;
  s->read_pool_size = cfg->read_pool_size > 0 ? cfg->read_pool_size : 8;
  s->pooled = cfg->pooled;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->notify_mu, NULL);
  if (!(s->writer = conn_open(s, true))) {
    pg_close(&s->base);
    return PQ_ERR_STORE_FAILED;
  }
  *out = &s->base;
  return PQ_OK;
}

/* Every row of a statement made by make (freed with free_one on failure). */
pq_err pq__pg_rows(pq_conn *c, const char *sql, pq__pgp *p, void *(*make)(const PGresult *, int),
                   void (*free_one)(void *), void ***out, size_t *n) {
  pq_err err;
  PGresult *r = pq__pg_run(c, sql, p, &err);
  if (!r) return err;
  int count = PQntuples(r);
  void **list = count ? calloc((size_t)count, sizeof *list) : NULL;
  for (int i = 0; list && i < count; i++)
    if (!(list[i] = make(r, i))) {
      for (int k = 0; k < i; k++) free_one(list[k]);
      free(list);
      list = NULL;
    }
  PQclear(r);
  if (count && !list) return PQ_ERR_NO_MEMORY;
  *out = list;
  *n = (size_t)count;
  return PQ_OK;
}

pq_err pq__pg_one(pq_conn *c, const char *sql, pq__pgp *p, void *(*make)(const PGresult *, int),
                  void (*free_one)(void *), void **out) {
  void **list;
  size_t n;
  pq_err err = pq__pg_rows(c, sql, p, make, free_one, &list, &n);
  if (err != PQ_OK) return err;
  if (n) *out = list[0];
  for (size_t i = 1; i < n; i++) free_one(list[i]);
  free(list);
  return n ? PQ_OK : PQ_ERR_NOT_FOUND;
}

pq_err pq__pg_changed_one(pq_conn *c, const char *sql, pq__pgp *p) {
  int64_t changed = 0;
  pq_err err = pq__pg_command(c, sql, p, &changed);
  return err == PQ_OK && changed == 0 ? PQ_ERR_NOT_FOUND : err;
}

pq_err pq__pg_command(pq_conn *c, const char *sql, pq__pgp *p, int64_t *changed) {
  pq_err err;
  PGresult *r = pq__pg_run(c, sql, p, &err);
  if (!r) return err;
  if (changed) *changed = pq__pg_changed(r);
  PQclear(r);
  return PQ_OK;
}

const pq_store_ops pq_store_postgres_ops = {
    .name = "postgres",
    .single_coordinator = false,
    .open = pg_open,
    .close = pg_close,
    .migrate = pg_migrate,
    .schema_version = pg_schema_version,
    .acquire = pg_acquire,
    .release = pg_release,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .notify = pg_notify,
    .listen = pg_listen,
    .lead = pg_lead,
    .job_insert = pq__pg_job_insert,
    .job_get = pq__pg_job_get,
    .job_get_by_idempotency_key = pq__pg_job_get_by_idem,
    .job_peek = pq__pg_job_peek,
    .job_update = pq__pg_job_update,
    .job_list = pq__pg_job_list,
    .job_scan_queued = pq__pg_job_scan_queued,
    .job_scan_due = pq__pg_job_scan_due,
    .job_pick = pq__pg_job_pick,
    .turn_charge = pq__pg_turn_charge,
    .job_set_model = pq__pg_job_set_model,
    .job_extend_leases = pq__pg_job_extend_leases,
    .job_cancel_requested = pq__pg_job_cancel_requested,
    .job_leased_by = pq__pg_job_leased_by,
    .job_end_leases = pq__pg_job_end_leases,
    .job_count = pq__pg_job_count,
    .job_ahead = pq__pg_job_ahead,
    .event_append = pq__pg_event_append,
    .event_list = pq__pg_event_list,
    .worker_insert = pq__pg_worker_insert,
    .worker_get = pq__pg_worker_get,
    .worker_touch = pq__pg_worker_touch,
    .worker_mark_offline = pq__pg_worker_mark_offline,
    .worker_count_online = pq__pg_worker_count_online,
    .worker_list_online = pq__pg_worker_list_online,
    .job_count_queued_by_owner = pq__pg_job_count_queued_by_owner,
    .job_delete = pq__pg_job_delete,
    .job_children = pq__pg_job_children,
    .file_insert = pq__pg_file_insert,
    .file_get = pq__pg_file_get,
    .file_list = pq__pg_file_list,
    .file_delete = pq__pg_file_delete,
    .webhook_insert = pq__pg_webhook_insert,
    .webhook_get = pq__pg_webhook_get,
    .webhook_job_secret = pq__pg_webhook_job_secret,
    .webhook_list = pq__pg_webhook_list,
    .webhook_delete = pq__pg_webhook_delete,
    .webhook_set_secret = pq__pg_webhook_set_secret,
    .delivery_insert = pq__pg_delivery_insert,
    .delivery_get = pq__pg_delivery_get,
    .delivery_due = pq__pg_delivery_due,
    .delivery_next_at = pq__pg_delivery_next_at,
    .delivery_update = pq__pg_delivery_update,
    .delivery_list = pq__pg_delivery_list,
    .delivery_sweep = pq__pg_delivery_sweep,
    .worker_set_capabilities = pq__pg_worker_set_capabilities,
    .job_count_active = pq__pg_job_count_active,
    .job_totals = pq__pg_job_totals,
    .user_insert = pq__pg_user_insert,
    .user_get = pq__pg_user_get,
    .user_list = pq__pg_user_list,
    .user_set_disabled = pq__pg_user_set_disabled,
    .key_insert = pq__pg_key_insert,
    .key_get_by_hash = pq__pg_key_get_by_hash,
    .key_list = pq__pg_key_list,
    .key_rebind = pq__pg_key_rebind,
    .challenge_insert = pq__pg_challenge_insert,
    .challenge_take = pq__pg_challenge_take,
    .challenge_sweep = pq__pg_challenge_sweep,
    .price_put = pq__pg_price_put,
    .price_get = pq__pg_price_get,
    .price_list = pq__pg_price_list,
    .account_get = pq__pg_account_get,
    .subject_lock = pq__pg_subject_lock,
    .transfer_insert = pq__pg_transfer_insert,
    .transfer_settle = pq__pg_transfer_settle,
    .transfer_get = pq__pg_transfer_get,
    .transfer_list = pq__pg_transfer_list,
    .ledger_totals = pq__pg_ledger_totals,
    .btc_payment_insert = pq__pg_btc_payment_insert,
    .btc_payment_get = pq__pg_btc_payment_get,
    .btc_payment_by_amount = pq__pg_btc_payment_by_amount,
    .btc_payment_update = pq__pg_btc_payment_update,
    .btc_pending_count = pq__pg_btc_pending_count,
    .btc_output_record = pq__pg_btc_output_record,
    .payment_event_record = pq__pg_payment_event_record,
    .subscription_apply = pq__pg_subscription_apply,
    .subscription_get = pq__pg_subscription_get,
    .subscription_count_active = pq__pg_subscription_count_active,
    .budget_put = pq__pg_budget_put,
    .budget_list = pq__pg_budget_list,
    .spend = pq__pg_spend,
    .ledger_sums = pq__pg_ledger_sums,
    .job_report = pq__pg_job_report,
    .key_revoke = pq__pg_key_revoke,
};
