/* The SQLite backend's users and API keys (keys only as their hashes). */
#include <stdio.h>
#include <stdlib.h>

#include "store/columns.h"
#include "store/sqlite/internal.h"

static const char SQL_USER_INSERT[] = "INSERT INTO users (" PQ__USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_USER_GET_ID[] = "SELECT " PQ__USER_COLS " FROM users WHERE id = ?1";
static const char SQL_USER_GET_NAME[] = "SELECT " PQ__USER_COLS " FROM users WHERE name = ?1";
static const char SQL_USER_LIST[] = "SELECT " PQ__USER_COLS " FROM users ORDER BY name";
static const char SQL_USER_DISABLE[] = "UPDATE users SET disabled = ?2 WHERE name = ?1";
static const char SQL_KEY_INSERT[] = "INSERT INTO api_keys (id, user_id, prefix, hash, scope, name, created_at, "
                                     "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_KEY_GET_HASH[] = "SELECT " PQ__KEY_COLS " FROM api_keys WHERE hash = ?1";
static const char SQL_KEY_LIST_USER[] = "SELECT " PQ__KEY_COLS " FROM api_keys WHERE user_id = ?1 ORDER BY created_at";
static const char SQL_KEY_LIST_ALL[] = "SELECT " PQ__KEY_COLS " FROM api_keys ORDER BY created_at";
static const char SQL_KEY_REBIND[] = "UPDATE api_keys SET user_id = ?2, scope = ?3, name = ?4, revoked_at = NULL "
                                     "WHERE hash = ?1";
static const char SQL_KEY_REVOKE[] = "UPDATE api_keys SET revoked_at = ?3 WHERE (id = ?1 OR prefix = ?1) "
                                     "AND (?2 IS NULL OR user_id = ?2) AND revoked_at IS NULL";

static void *make_user(sqlite3_stmt *st) {
  pq_user *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  const unsigned char *id = sqlite3_column_text(st, 0);
  snprintf(u->id, sizeof u->id, "%s", id ? (const char *)id : "");
  if (pq__sq_col_dup(st, 1, &u->name) || pq__sq_col_dup(st, 2, &u->password_hash)) {
    pq_user_free(u);
    return NULL;
  }
  u->admin = sqlite3_column_int(st, 3) != 0;
  u->disabled = sqlite3_column_int(st, 4) != 0;
  u->created_at = sqlite3_column_int64(st, 5);
  return u;
}

static void *make_key(sqlite3_stmt *st) {
  pq_api_key *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  const unsigned char *id = sqlite3_column_text(st, 0);
  snprintf(k->id, sizeof k->id, "%s", id ? (const char *)id : "");
  if (pq__sq_col_dup(st, 1, &k->user_id) || pq__sq_col_dup(st, 2, &k->prefix) || pq__sq_col_dup(st, 3, &k->hash) ||
      pq__sq_col_dup(st, 4, &k->scope) || pq__sq_col_dup(st, 5, &k->name)) {
    pq_api_key_free(k);
    return NULL;
  }
  k->created_at = sqlite3_column_int64(st, 6);
  k->expires_at = sqlite3_column_int64(st, 7);
  k->revoked_at = sqlite3_column_int64(st, 8);
  return k;
}

static void free_user(void *u) { pq_user_free(u); }
static void free_key(void *k) { pq_api_key_free(k); }

pq_err pq__sq_user_insert(pq_conn *c, const pq_user *u) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_USER_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, u->id);
  pq__sq_bind_text(st, 2, u->name);
  pq__sq_bind_text(st, 3, u->password_hash);
  sqlite3_bind_int(st, 4, u->admin);
  sqlite3_bind_int(st, 5, u->disabled);
  sqlite3_bind_int64(st, 6, u->created_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert user");
}

pq_err pq__sq_user_get(pq_conn *c, const char *id, const char *name, pq_user **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, id ? SQL_USER_GET_ID : SQL_USER_GET_NAME);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id ? id : name);
  return pq__sq_one_row(c, st, make_user, free_user, (void **)out);
}

pq_err pq__sq_user_list(pq_conn *c, pq_user ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_USER_LIST);
  if (!st) return PQ_ERR_STORE_FAILED;
  return pq__sq_collect_rows(c, st, make_user, free_user, (void ***)out, n);
}

pq_err pq__sq_user_set_disabled(pq_conn *c, const char *name, bool disabled) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_USER_DISABLE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, name);
  sqlite3_bind_int(st, 2, disabled);
  return pq__sq_changed_one(c, st, "disable user");
}

pq_err pq__sq_key_insert(pq_conn *c, const pq_api_key *k) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_KEY_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, k->id);
  pq__sq_bind_text(st, 2, k->user_id);
  pq__sq_bind_text(st, 3, k->prefix);
  pq__sq_bind_text(st, 4, k->hash);
  pq__sq_bind_text(st, 5, k->scope);
  pq__sq_bind_text(st, 6, k->name);
  sqlite3_bind_int64(st, 7, k->created_at);
  pq__sq_bind_ms(st, 8, k->expires_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert key");
}

pq_err pq__sq_key_get_by_hash(pq_conn *c, const char *hash, pq_api_key **out) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_KEY_GET_HASH);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, hash);
  return pq__sq_one_row(c, st, make_key, free_key, (void **)out);
}

pq_err pq__sq_key_list(pq_conn *c, const char *user_id, pq_api_key ***out, size_t *n) {
  sqlite3_stmt *st = pq__sq_stmt(c, user_id ? SQL_KEY_LIST_USER : SQL_KEY_LIST_ALL);
  if (!st) return PQ_ERR_STORE_FAILED;
  if (user_id) pq__sq_bind_text(st, 1, user_id);
  return pq__sq_collect_rows(c, st, make_key, free_key, (void ***)out, n);
}

pq_err pq__sq_key_rebind(pq_conn *c, const char *hash, const char *user_id, const char *scope, const char *name) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_KEY_REBIND);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, hash);
  pq__sq_bind_text(st, 2, user_id);
  pq__sq_bind_text(st, 3, scope);
  pq__sq_bind_text(st, 4, name);
  return pq__sq_changed_one(c, st, "rebind key");
}

pq_err pq__sq_key_revoke(pq_conn *c, const char *id_or_prefix, const char *user_id, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_KEY_REVOKE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, id_or_prefix);
  pq__sq_bind_text(st, 2, user_id);
  sqlite3_bind_int64(st, 3, now);
  return pq__sq_changed_one(c, st, "revoke key");
}

/* ---- wallet login challenges ---- */

static const char SQL_CHALLENGE_INSERT[] = "INSERT INTO login_challenges (challenge, wallet, expires_at) VALUES (?1, ?2, ?3)";
static const char SQL_CHALLENGE_TAKE[] = "DELETE FROM login_challenges WHERE challenge = ?1 AND wallet = ?2 AND expires_at > ?3";
static const char SQL_CHALLENGE_SWEEP[] = "DELETE FROM login_challenges WHERE expires_at <= ?1";

pq_err pq__sq_challenge_insert(pq_conn *c, const char *challenge, const char *wallet, int64_t expires_at) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_CHALLENGE_INSERT);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, challenge);
  pq__sq_bind_text(st, 2, wallet);
  sqlite3_bind_int64(st, 3, expires_at);
  return pq__sq_done_or_constraint(c, pq__sq_step_done(st), "insert challenge");
}

pq_err pq__sq_challenge_take(pq_conn *c, const char *challenge, const char *wallet, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_CHALLENGE_TAKE);
  if (!st) return PQ_ERR_STORE_FAILED;
  pq__sq_bind_text(st, 1, challenge);
  pq__sq_bind_text(st, 2, wallet);
  sqlite3_bind_int64(st, 3, now);
  return pq__sq_changed_one(c, st, "take challenge");
}

pq_err pq__sq_challenge_sweep(pq_conn *c, int64_t now) {
  sqlite3_stmt *st = pq__sq_stmt(c, SQL_CHALLENGE_SWEEP);
  if (!st) return PQ_ERR_STORE_FAILED;
  sqlite3_bind_int64(st, 1, now);
  return pq__sq_step_done(st) == SQLITE_DONE ? PQ_OK : pq__sq_fail(c->db, "sweep challenges");
}
