/* The PostgreSQL backend's users and API keys (hashes only). */
#include <stdio.h>
#include <stdlib.h>

#include "store/columns.h"
#include "store/postgres/internal.h"

/* a duplicate answers no row and leaves the transaction usable (as in SQLite) */
static const char SQL_USER_INSERT[] = "INSERT INTO users (" PQ__USER_COLS ") VALUES ($1, $2, $3, $4, $5, $6) "
                                      "ON CONFLICT DO NOTHING";
static const char SQL_USER_GET_ID[] = "SELECT " PQ__USER_COLS " FROM users WHERE id = $1";
static const char SQL_USER_GET_NAME[] = "SELECT " PQ__USER_COLS " FROM users WHERE name = $1";
static const char SQL_USER_LIST[] = "SELECT " PQ__USER_COLS " FROM users ORDER BY name";
static const char SQL_USER_DISABLE[] = "UPDATE users SET disabled = $2 WHERE name = $1";
static const char SQL_KEY_INSERT[] = "INSERT INTO api_keys (id, user_id, prefix, hash, scope, name, created_at, "
                                     "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
static const char SQL_KEY_GET_HASH[] = "SELECT " PQ__KEY_COLS " FROM api_keys WHERE hash = $1";
static const char SQL_KEY_LIST_USER[] = "SELECT " PQ__KEY_COLS " FROM api_keys WHERE user_id = $1 ORDER BY created_at";
static const char SQL_KEY_LIST_ALL[] = "SELECT " PQ__KEY_COLS " FROM api_keys ORDER BY created_at";
static const char SQL_KEY_REBIND[] = "UPDATE api_keys SET user_id = $2, scope = $3, name = $4, revoked_at = NULL "
                                     "WHERE hash = $1";
static const char SQL_KEY_REVOKE[] = "UPDATE api_keys SET revoked_at = $3 WHERE (id = $1 OR prefix = $1) "
                                     "AND ($2::text IS NULL OR user_id = $2) AND revoked_at IS NULL";

static void *make_user(const PGresult *r, int row) {
  pq_user *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  const char *id = pq__pg_col(r, row, 0);
  snprintf(u->id, sizeof u->id, "%s", id ? id : "");
  if (pq__pg_dup(r, row, 1, &u->name) || pq__pg_dup(r, row, 2, &u->password_hash)) {
    pq_user_free(u);
    return NULL;
  }
  u->admin = pq__pg_i64(r, row, 3) != 0;
  u->disabled = pq__pg_i64(r, row, 4) != 0;
  u->created_at = pq__pg_i64(r, row, 5);
  return u;
}

static void *make_key(const PGresult *r, int row) {
  pq_api_key *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  const char *id = pq__pg_col(r, row, 0);
  snprintf(k->id, sizeof k->id, "%s", id ? id : "");
  if (pq__pg_dup(r, row, 1, &k->user_id) || pq__pg_dup(r, row, 2, &k->prefix) || pq__pg_dup(r, row, 3, &k->hash) ||
      pq__pg_dup(r, row, 4, &k->scope) || pq__pg_dup(r, row, 5, &k->name)) {
    pq_api_key_free(k);
    return NULL;
  }
  k->created_at = pq__pg_i64(r, row, 6);
  k->expires_at = pq__pg_i64(r, row, 7);
  k->revoked_at = pq__pg_i64(r, row, 8);
  return k;
}

static void free_user(void *u) { pq_user_free(u); }
static void free_key(void *k) { pq_api_key_free(k); }

pq_err pq__pg_user_insert(pq_conn *c, const pq_user *u) {
  pq__pgp p = {0};
  pq__pg_text(&p, u->id);
  pq__pg_text(&p, u->name);
  pq__pg_text(&p, u->password_hash);
  pq__pg_int(&p, u->admin);
  pq__pg_int(&p, u->disabled);
  pq__pg_int(&p, u->created_at);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_USER_INSERT, &p, &err);
  if (r && pq__pg_changed(r) == 0) err = PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

pq_err pq__pg_user_get(pq_conn *c, const char *id, const char *name, pq_user **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, id ? id : name);
  return pq__pg_one(c, id ? SQL_USER_GET_ID : SQL_USER_GET_NAME, &p, make_user, free_user, (void **)out);
}

pq_err pq__pg_user_list(pq_conn *c, pq_user ***out, size_t *n) {
  return pq__pg_rows(c, SQL_USER_LIST, NULL, make_user, free_user, (void ***)out, n);
}

pq_err pq__pg_user_set_disabled(pq_conn *c, const char *name, bool disabled) {
  pq__pgp p = {0};
  pq__pg_text(&p, name);
  pq__pg_int(&p, disabled);
  return pq__pg_changed_one(c, SQL_USER_DISABLE, &p);
}

pq_err pq__pg_key_insert(pq_conn *c, const pq_api_key *k) {
  pq__pgp p = {0};
  pq__pg_text(&p, k->id);
  pq__pg_text(&p, k->user_id);
  pq__pg_text(&p, k->prefix);
  pq__pg_text(&p, k->hash);
  pq__pg_text(&p, k->scope);
  pq__pg_text(&p, k->name);
  pq__pg_int(&p, k->created_at);
  pq__pg_ms(&p, k->expires_at);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_KEY_INSERT, &p, &err);
  if (r && pq__pg_changed(r) == 0) err = PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

pq_err pq__pg_key_get_by_hash(pq_conn *c, const char *hash, pq_api_key **out) {
  pq__pgp p = {0};
  pq__pg_text(&p, hash);
  return pq__pg_one(c, SQL_KEY_GET_HASH, &p, make_key, free_key, (void **)out);
}

pq_err pq__pg_key_list(pq_conn *c, const char *user_id, pq_api_key ***out, size_t *n) {
  pq__pgp p = {0};
  if (user_id) pq__pg_text(&p, user_id);
  return pq__pg_rows(c, user_id ? SQL_KEY_LIST_USER : SQL_KEY_LIST_ALL, &p, make_key, free_key, (void ***)out, n);
}

pq_err pq__pg_key_rebind(pq_conn *c, const char *hash, const char *user_id, const char *scope, const char *name) {
  pq__pgp p = {0};
  pq__pg_text(&p, hash);
  pq__pg_text(&p, user_id);
  pq__pg_text(&p, scope);
  pq__pg_text(&p, name);
  return pq__pg_changed_one(c, SQL_KEY_REBIND, &p);
}

pq_err pq__pg_key_revoke(pq_conn *c, const char *id_or_prefix, const char *user_id, int64_t now) {
  pq__pgp p = {0};
  pq__pg_text(&p, id_or_prefix);
  pq__pg_text(&p, user_id);
  pq__pg_int(&p, now);
  return pq__pg_changed_one(c, SQL_KEY_REVOKE, &p);
}

/* ---- wallet login challenges ---- */

static const char SQL_CHALLENGE_INSERT[] = "INSERT INTO login_challenges (challenge, wallet, expires_at) VALUES ($1, $2, $3) "
                                           "ON CONFLICT DO NOTHING";
static const char SQL_CHALLENGE_TAKE[] = "DELETE FROM login_challenges WHERE challenge = $1 AND wallet = $2 AND expires_at > $3";
static const char SQL_CHALLENGE_SWEEP[] = "DELETE FROM login_challenges WHERE expires_at <= $1";

pq_err pq__pg_challenge_insert(pq_conn *c, const char *challenge, const char *wallet, int64_t expires_at) {
  pq__pgp p = {0};
  pq__pg_text(&p, challenge);
  pq__pg_text(&p, wallet);
  pq__pg_int(&p, expires_at);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_CHALLENGE_INSERT, &p, &err);
  if (r && pq__pg_changed(r) == 0) err = PQ_ERR_ALREADY_EXISTS;
  PQclear(r);
  return err;
}

pq_err pq__pg_challenge_take(pq_conn *c, const char *challenge, const char *wallet, int64_t now) {
  pq__pgp p = {0};
  pq__pg_text(&p, challenge);
  pq__pg_text(&p, wallet);
  pq__pg_int(&p, now);
  return pq__pg_changed_one(c, SQL_CHALLENGE_TAKE, &p);
}

pq_err pq__pg_challenge_sweep(pq_conn *c, int64_t now) {
  pq__pgp p = {0};
  pq__pg_int(&p, now);
  pq_err err;
  PGresult *r = pq__pg_run(c, SQL_CHALLENGE_SWEEP, &p, &err);
  PQclear(r);
  return err;
}
