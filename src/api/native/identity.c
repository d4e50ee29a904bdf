/* POST /v1/auth/token (a JWT for a user and password) and /v1/keys. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/access.h"
#include "base/clock.h"
#include "auth/workpool.h"
#include "http/json_in.h"

/* ---- login: the password check runs on the hasher pool, never here ---- */

typedef struct {
  pq_work work;
  pq_req *req;
  char user[128], password[1024];
  char hash[PQ_PASSWORD_HASH_MAX];
  const char *decoy;
  bool have_user;
  bool busy;
  bool ok;
} login_work;

static void login_run(pq_work *w) {
  login_work *l = (login_work *)w;
  /* an unknown user costs the same as a wrong password: no timing oracle */
  bool match = pq_password_verify(l->have_user ? l->hash : l->decoy, l->password);
  l->ok = l->have_user && match;
  sodium_memzero(l->password, sizeof l->password);
}

static void login_done(pq_work *w) { pq_req_wake(((login_work *)w)->req); }

static pq_err login_answer(pq_req *req) {
  login_work *l = req->state;
  if (l->busy) return pq_req_fail(req, PQ_ERR_RATE_LIMIT_EXCEEDED, NULL, "too many logins at once; retry shortly");
  if (!l->ok) return pq_req_fail(req, PQ_ERR_UNAUTHORIZED, NULL, "wrong user name or password");
  pq_user *u = NULL;
  pq_err e = pq_coord_get_user(req->coord, NULL, l->user, &u);
  if (e != PQ_OK || u->disabled) {
    pq_user_free(u);
    return e != PQ_OK && e != PQ_ERR_NOT_FOUND ? e : pq_req_fail(req, PQ_ERR_UNAUTHORIZED, NULL, "wrong user name or password");
  }
  const pq_jwt_config *jc = &pq_access_config_of(pq_req_access(req))->jwt;
  int64_t now = pq_now_ms() / 1000;
  char *token = NULL;
  e = pq_jwt_issue(jc, u->id, now, &token);
  pq_user_free(u);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200,
                   json_pack("{s:s,s:s,s:o,s:I}", "access_token", token, "token_type", "Bearer",
                             "expires_at", pq_api_time((now + jc->ttl_s) * 1000), "expires_in",
                             (json_int_t)jc->ttl_s));
  free(token);
  return e;
}

pq_err pq_api_token(pq_req *req) {
  static const char *const fields[] = {"user", "password", NULL};
  const char *user = NULL, *password = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the login", fields)) ||
      (e = pq_json_string(req, req->body, "user", true, 127, &user)) ||
      (e = pq_json_string(req, req->body, "password", true, 1023, &password)))
    return e;
  login_work *l = pq_req_alloc(req, sizeof *l);
  if (!l) return PQ_ERR_NO_MEMORY;
  l->req = req;
  l->decoy = pq_access_decoy_hash(pq_req_access(req));
  l->work.run = login_run;
  l->work.done = login_done;
  snprintf(l->user, sizeof l->user, "%s", user);
  snprintf(l->password, sizeof l->password, "%s", password);
  pq_user *u = NULL;
  if ((e = pq_coord_get_user(req->coord, NULL, user, &u)) == PQ_OK) {
    snprintf(l->hash, sizeof l->hash, "%s", u->password_hash);
    l->have_user = !u->disabled;
  } else if (e != PQ_ERR_NOT_FOUND) {
    return e;
  }
  pq_user_free(u);
  req->state = l;
  pq_req_park(req, login_answer);
  if (pq_workpool_submit(pq_access_hashers(pq_req_access(req)), &l->work) != PQ_OK) {
    l->busy = true; /* the hashers are saturated: ask the client to come back */
    pq_req_wake(req);
  }
  return PQ_OK;
}

/* ---- keys ---- */

static json_t *key_json(const pq_api_key *k, const char *user_name) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s?,s:o,s:o,s:o,s:b}", "id", k->id, "prefix", k->prefix, "scope",
                   k->scope, "name", k->name, "user", user_name, "created_at", pq_api_time(k->created_at),
                   "expires_at", pq_api_time(k->expires_at), "revoked_at", pq_api_time(k->revoked_at),
                   "active", !k->revoked_at && (!k->expires_at || k->expires_at > pq_now_ms()));
}

typedef struct {
  pq_api_key key;
  char secret[PQ_APIKEY_LEN + 1];
  char user_name[128];
} new_key;

static pq_err key_created(pq_req *req) {
  new_key *k = req->state;
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  json_t *body = key_json(&k->key, k->user_name);
  json_object_set_new(body, "key", json_string(k->secret)); /* shown this once */
  sodium_memzero(k->secret, sizeof k->secret);
  return pq_req_reply(req, 201, body);
}

pq_err pq_api_keys_create(pq_req *req) {
  static const char *const fields[] = {"name", "scope", "expires_in_s", "user", NULL};
  const char *name = "api key", *scope = "client", *user = NULL;
  int64_t expires_in = 0;
  pq_err e;
  json_t *body = req->body ? req->body : NULL;
  if (body && ((e = pq_json_only(req, body, "the key", fields)) ||
               (e = pq_json_string(req, body, "name", false, 128, &name)) ||
               (e = pq_json_string(req, body, "scope", false, 16, &scope)) ||
               (e = pq_json_int(req, body, "expires_in_s", false, 60, 10LL * 365 * 86400, &expires_in)) ||
               (e = pq_json_string(req, body, "user", false, 127, &user))))
    return e;
  if (pq_scope_parse(scope) < 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "scope"),
                       "'scope' must be client, worker or admin");
  if (!req->caller.user_id[0])
    return pq_req_fail(req, PQ_ERR_FORBIDDEN, NULL, "an open server has no users; create keys with 'promptq key create'");
  /* a client may make client keys for itself; everything else takes an admin */
  if ((strcmp(scope, "client") != 0 || (user && strcmp(user, req->caller.user_name) != 0)) && !req->caller.admin)
    return pq_req_fail(req, PQ_ERR_FORBIDDEN, json_pack("{s:s}", "scope", scope),
                       "only an admin may create %s keys or keys for another user", scope);
  pq_user *owner = NULL;
  if ((e = pq_coord_get_user(req->coord, user ? NULL : req->caller.user_id, user, &owner)) == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s?}", "user", user), "no user '%s'", user ? user : "");
  if (e != PQ_OK) return e;
  if (strcmp(scope, "admin") == 0 && !owner->admin) {
    pq_user_free(owner);
    return pq_req_fail(req, PQ_ERR_FORBIDDEN, NULL, "admin keys are for admin users");
  }
  new_key *k = pq_req_alloc(req, sizeof *k);
  if (!k) {
    pq_user_free(owner);
    return PQ_ERR_NO_MEMORY;
  }
  char hash[65];
  pq_apikey_generate(k->secret);
  pq_apikey_hash(k->secret, hash);
  snprintf(k->user_name, sizeof k->user_name, "%s", owner->name);
  k->key.user_id = pq_req_strndup(req, owner->id, strlen(owner->id));
  k->key.prefix = pq_req_strndup(req, k->secret, PQ_APIKEY_SHOWN);
  k->key.hash = pq_req_strndup(req, hash, 64);
  k->key.scope = pq_req_strndup(req, scope, strlen(scope));
  k->key.name = pq_req_strndup(req, name, strlen(name));
  k->key.expires_at = expires_in ? pq_now_ms() + expires_in * 1000 : 0;
  pq_user_free(owner);
  req->state = k;
  req->op.kind = PQ_OP_KEY_ADD;
  req->op.in.key_add.key = &k->key;
  pq_req_run_op(req, key_created);
  return PQ_OK;
}

pq_err pq_api_keys_list(pq_req *req) {
  pq_api_key **keys = NULL;
  size_t n = 0;
  pq_err e = pq_coord_list_keys(req->coord, req->caller.admin ? NULL : req->caller.user_id, &keys, &n);
  if (e != PQ_OK) return e;
  json_t *data = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(data, key_json(keys[i], NULL));
    json_object_set_new(json_array_get(data, i), "user_id", json_string(keys[i]->user_id));
    pq_api_key_free(keys[i]);
  }
  free(keys);
  return pq_req_reply(req, 200, json_pack("{s:o}", "data", data));
}

typedef struct {
  const char *id, *user_id;
} revoke_args;

static pq_err key_revoked(pq_req *req) {
  revoke_args *r = req->state;
  if (req->op.out.result == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s}", "id", r->id), "no active key '%s'", r->id);
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, json_pack("{s:s,s:b}", "id", r->id, "revoked", 1));
}

pq_err pq_api_keys_revoke(pq_req *req) {
  revoke_args *r = pq_req_alloc(req, sizeof *r);
  if (!r) return PQ_ERR_NO_MEMORY;
  r->id = pq_req_param(req, "id");
  r->user_id = req->caller.admin ? NULL : req->caller.user_id; /* a client revokes its own */
  req->state = r;
  req->op.kind = PQ_OP_KEY_REVOKE;
  req->op.in.key_revoke.id_or_prefix = r->id;
  req->op.in.key_revoke.user_id = r->user_id;
  pq_req_run_op(req, key_revoked);
  return PQ_OK;
}
