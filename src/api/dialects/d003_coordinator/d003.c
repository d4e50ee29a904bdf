/* The coordinator API (shared/seeds/003): client, miner and user routes over
 * the native jobs and workers. Miners are workers (one registry, one lease
 * protocol underneath). Users log in with a wallet: an Ed25519 public key
 * signs a one-time challenge; the session token is the user's JWT, sent as
 * X-Session-Token. Balances are zero until money exists. */
#include <pthread.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/dialect.h"
#include "api/dialects/d003_coordinator/exchange.h"
#include "auth/access.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/log.h"
#include "model/receipt.h"
#include "http/json_in.h"

#define STATIC_KEY_MIN 16   /* an API_KEYS key, in characters */
#define STATIC_KEYS_MAX 256
#define WALLET_PREFIX "wallet:"

static json_t *d003_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  (void)req, (void)status;
  const char *code = json_string_value(json_object_get(details, "code"));
  json_t *d = details ? json_deep_copy(details) : json_object();
  json_object_del(d, "code");
  return json_pack("{s:{s:s,s:s,s:o}}", "error", "code", code ? code : pq_err_code(err), "message", message,
                   "details", d);
}

static const pq_status_words words_003 = {"pending", "running", "completed", "failed"};
#define status_003(s) pq_status_word(&words_003, (s))

/* The document's Job model. */
static json_t *job_003(const pq_job *j) {
  json_t *params = json_loads(j->input, 0, NULL);
  if (!params) params = json_object();
  json_object_set_new(params, "model", json_string(j->model));
  return json_pack("{s:s,s:s,s:s,s:o,s:s,s:o,s:o}", "id", j->id, "client_id", j->owner ? j->owner : "",
                   "job_type", "llm_inference", "parameters", params, "status", status_003(j->state),
                   "created_at", pq_api_time(j->created_at), "updated_at", pq_api_time(j->updated_at));
}

static pq_err job_not_found(pq_req *req, const char *id) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s?}", "code", "JOB_NOT_FOUND", "job_id", id),
                     "no job %s", id ? id : "");
}

/* The caller's job, or an answer saying it does not exist. */
static pq_err their_job(pq_req *req, pq_job **out) {
  const char *id = pq_req_param(req, "job_id");
  pq_err e = pq_api_their_job(req, id, out);
  return e == PQ_ERR_NOT_FOUND ? job_not_found(req, id) : e;
}

/* ---- client ---- */

static pq_err client_submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 201, job_003(req->op.out.job));
}

static pq_err d003_client_submit(pq_req *req) {
  static const char *const fields[] = {"job_type", "parameters", NULL};
  static const char *const passed[] = {"system", "prompt", "messages", "embeddings", NULL};
  const char *type = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the job", fields)) ||
      (e = pq_json_string(req, req->body, "job_type", true, 64, &type)))
    return e;
  if (strcmp(type, "llm_inference") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "code", "INVALID_JOB_TYPE", "job_type", type),
                       "The specified job type is not supported");
  json_t *p = json_object_get(req->body, "parameters");
  if (!json_is_object(p))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "parameters"),
                       "'parameters' must be an object");
  const char *model = json_string_value(json_object_get(p, "model"));
  json_t *native = json_pack("{s:s,s:o}", "model", model ? model : pq_api_settings_of(req)->default_model,
                             "params", json_object());
  for (int i = 0; passed[i]; i++)
    if (json_object_get(p, passed[i])) json_object_set(native, passed[i], json_object_get(p, passed[i]));
  static const char *const params[] = {"max_tokens", "temperature", "top_p", "stop", "seed", NULL};
  for (int i = 0; params[i]; i++)
    if (json_object_get(p, params[i])) json_object_set(json_object_get(native, "params"), params[i], json_object_get(p, params[i]));
  e = pq_api_submit_for_caller(req, native, client_submitted);
  json_decref(native);
  return e;
}

static pq_err d003_client_status(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_job(req, &job);
  if (e != PQ_OK) return e;
  json_t *body = job_003(job);
  json_object_set_new(body, "progress", json_pack("{s:i,s:i}", "attempt", job->attempts, "max_attempts",
                                                  job->max_attempts));
  json_object_set_new(body, "result", pq_api_output_json(job));
  json_object_set_new(body, "error", job->error_code ? json_pack("{s:s,s:s?}", "code", job->error_code, "message",
                                                                  job->error_message)
                                                     : json_null());
  pq_job_free(job);
  return pq_req_reply(req, 200, body);
}

/* A receipt's id: a UUID derived from the job's, so it is the same each time. */
static void receipt_id(const char *job_id, char out[PQ_UUID_LEN + 1]) {
  unsigned char d[crypto_hash_sha256_BYTES];
  char hex[33];
  crypto_hash_sha256(d, (const unsigned char *)job_id, strlen(job_id));
  d[6] = (unsigned char)(0x80 | (d[6] & 0x0f)); /* version 8: derived */
  d[8] = (unsigned char)(0x80 | (d[8] & 0x3f));
  sodium_bin2hex(hex, sizeof hex, d, 16);
  snprintf(out, PQ_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static pq_err d003_client_receipts(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_job(req, &job);
  if (e != PQ_OK) return e;
  json_t *list = json_array();
  json_t *signed_receipt = pq_api_receipt_for(req, job);
  if (signed_receipt) { /* a completed job has one receipt */
    char id[PQ_UUID_LEN + 1];
    receipt_id(job->id, id);
    json_array_append_new(
        list, json_pack("{s:s,s:s,s:s?,s:o,s:s,s:O,s:o}", "id", id, "job_id", job->id, "miner_id", job->worker_id,
                        "result", pq_api_output_json(job),
                        "proof", json_string_value(json_object_get(json_object_get(signed_receipt, "signature"), "value")),
                        "signed", signed_receipt, "created_at", pq_api_time(job->finished_at)));
    json_decref(signed_receipt);
  }
  pq_job_free(job);
  return pq_req_reply(req, 200, list);
}

/* ---- miners: workers under another name ---- */

static json_t *miner_json(const pq_worker *w) {
  json_t *caps = json_loads(w->capabilities, 0, NULL);
  json_t *out = json_pack("{s:s,s:O?,s:O?,s:O,s:s,s:o}", "id", w->id, "address", json_object_get(caps, "address"),
                          "endpoint", json_object_get(caps, "endpoint"), "capabilities",
                          json_object_get(caps, "capabilities") ? json_object_get(caps, "capabilities") : json_array(),
                          "status", w->online ? "active" : "inactive", "last_heartbeat",
                          pq_api_time(w->last_seen_at));
  json_decref(caps);
  return out;
}

static pq_err miner_registered(pq_req *req) {
  pq_worker *w = req->op.in.reg.worker;
  req->op.in.reg.worker = NULL;
  pq_err e = req->op.out.result == PQ_OK ? pq_req_reply(req, 201, miner_json(w)) : req->op.out.result;
  pq_worker_free(w);
  return e;
}

static pq_err d003_miner_register(pq_req *req) {
  static const char *const fields[] = {"address", "endpoint", "capabilities", NULL};
  const char *address = NULL, *endpoint = NULL;
  json_t *caps = json_object_get(req->body, "capabilities");
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the miner", fields)) ||
      (e = pq_json_string(req, req->body, "address", false, 256, &address)) ||
      (e = pq_json_string(req, req->body, "endpoint", false, 512, &endpoint)))
    return e;
  if (caps && !json_is_array(caps))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "capabilities"),
                       "'capabilities' must be a list");
  json_t *models = json_array(); /* a capability names a model (or is {"model": ...}) */
  size_t i;
  json_t *c;
  json_array_foreach(caps, i, c) {
    const char *m = json_is_string(c) ? json_string_value(c) : json_string_value(json_object_get(c, "model"));
    if (m) json_array_append_new(models, json_string(m));
  }
  pq_worker *w = calloc(1, sizeof *w);
  json_t *stored = json_pack("{s:s?,s:s?,s:O}", "address", address, "endpoint", endpoint, "capabilities",
                             caps ? caps : json_array());
  if (w) {
    w->name = strdup(address ? address : "miner");
    w->models = json_dumps(models, JSON_COMPACT);
    w->capabilities = json_dumps(stored, JSON_COMPACT);
    w->owner = strdup(pq_api_owner(req)); /* the miner id is bound to this user */
  }
  json_decref(models);
  json_decref(stored);
  if (!w || !w->name || !w->models || !w->capabilities || !w->owner) {
    pq_worker_free(w);
    return PQ_ERR_NO_MEMORY;
  }
  req->op.kind = PQ_OP_REGISTER;
  req->op.in.reg.worker = w;
  pq_req_run_op(req, miner_registered);
  return PQ_OK;
}

static pq_err miner_id(pq_req *req, const char **out) {
  const char *id = req->body ? json_string_value(json_object_get(req->body, "miner_id")) : NULL;
  if (!id) id = pq_req_query(req, "miner_id");
  if (!id || !pq_is_uuid(id))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "miner_id"),
                       "'miner_id' (from /v1/miner/register) is required");
  pq_err e = pq_api_their_worker(req, id); /* another credential's miner is unknown here */
  if (e == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s}", "code", "MINER_NOT_FOUND"), "unknown miner; register again");
  if (e != PQ_OK) return e;
  *out = id;
  return PQ_OK;
}

static pq_err miner_unknown(pq_req *req) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s}", "code", "MINER_NOT_FOUND"),
                     "unknown miner; register again");
}

static pq_err heartbeat_done(pq_req *req) {
  if (req->op.out.result == PQ_ERR_NOT_FOUND) return miner_unknown(req);
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  json_t *cancel = json_array();
  for (size_t i = 0; i < req->op.out.n_cancel; i++) json_array_append_new(cancel, json_string(req->op.out.cancel_ids[i]));
  return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:o}", "status", "ok", "miner_id",
                                          req->op.in.heartbeat.worker_id, "cancel", cancel));
}

static pq_err d003_miner_heartbeat(pq_req *req) {
  const char *id = NULL;
  pq_err e = miner_id(req, &id);
  if (e != PQ_OK) return e;
  req->op.kind = PQ_OP_HEARTBEAT;
  req->op.in.heartbeat.worker_id = id;
  pq_req_run_op(req, heartbeat_done);
  return PQ_OK;
}

static pq_err jobs_leased(pq_req *req) {
  if (req->op.out.result == PQ_ERR_NOT_FOUND) return miner_unknown(req);
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  if (pq_api_release_if_gone(req)) return pq_req_reply(req, 200, json_array());
  json_t *list = json_array();
  for (size_t i = 0; i < req->op.out.n_jobs; i++) {
    const pq_job *j = req->op.out.jobs[i];
    json_t *job = job_003(j);
    json_object_set_new(job, "lease_token", json_string(j->lease_token));
    json_object_set_new(job, "lease_expires_at", pq_api_time(j->lease_expires_at));
    json_array_append_new(list, job);
  }
  return pq_req_reply(req, 200, list);
}

static pq_err d003_miner_jobs(pq_req *req) {
  const char *id = NULL;
  int64_t max_jobs = 1, wait_s = 0;
  pq_err e;
  if ((e = miner_id(req, &id)) || (e = pq_query_int(req, "max_jobs", 1, 64, &max_jobs)) ||
      (e = pq_query_int(req, "wait_s", 0, pq_req_max_wait_s(req), &wait_s)))
    return e;
  req->op.kind = PQ_OP_LEASE;
  req->op.in.lease.worker_id = id;
  req->op.in.lease.max_jobs = (int)max_jobs;
  req->op.in.lease.deadline_ms = wait_s ? pq_mono_ms() + wait_s * 1000 : 0;
  pq_req_run_op(req, jobs_leased);
  return PQ_OK;
}

static pq_err result_done(pq_req *req) {
  if (req->op.out.result == PQ_ERR_NOT_FOUND) /* the body lives as long as the request */
    return job_not_found(req, json_string_value(json_object_get(req->body, "job_id")));
  if (req->op.out.result == PQ_ERR_LEASE_MISMATCH)
    return pq_req_fail(req, PQ_ERR_LEASE_MISMATCH, json_pack("{s:s}", "code", "LEASE_MISMATCH"),
                       "this job is not leased with that token (it lapsed, moved on or finished)");
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, job_003(req->op.out.job));
}

static pq_err d003_miner_result(pq_req *req) {
  static const char *const fields[] = {"miner_id", "job_id", "lease_token", "status", "result", "error",
                                       "usage", "retryable", NULL};
  const char *job_id = NULL, *token = NULL, *status = "completed";
  bool retryable = false;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the result", fields)) ||
      (e = pq_json_string(req, req->body, "job_id", true, 64, &job_id)) ||
      (e = pq_json_string(req, req->body, "lease_token", true, 256, &token)) ||
      (e = pq_json_string(req, req->body, "status", false, 16, &status)) ||
      (e = pq_json_bool(req, req->body, "retryable", &retryable)))
    return e;
  /* the native checks, in this document's words: a result and its usage, or an error */
  if (strcmp(status, "completed") == 0) {
    json_t *result = json_object_get(req->body, "result");
    if ((e = pq_api_prepare_complete(req, job_id, token, result ? result : json_null(),
                                     json_object_get(req->body, "usage"), NULL)))
      return e;
  } else if (strcmp(status, "failed") == 0) {
    json_t *err = json_object_get(req->body, "error"), *error;
    if (json_is_object(err)) {
      error = json_deep_copy(err);
      if (!json_object_get(error, "code")) json_object_set_new(error, "code", json_string("MINER_FAILED"));
    } else if (!err || json_is_null(err) || json_is_string(err)) {
      error = json_pack("{s:s,s:O?}", "code", "MINER_FAILED", "message", err && json_is_string(err) ? err : NULL);
    } else {
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "error"),
                         "'error' must be a message or an object {code, message}");
    }
    e = pq_api_prepare_fail(req, job_id, token, error, retryable);
    if (e == PQ_OK) { /* its strings outlive the object they were checked in */
      const char *code = req->op.in.fail.code, *message = req->op.in.fail.message;
      req->op.in.fail.code = pq_req_strndup(req, code, strlen(code));
      req->op.in.fail.message = message ? pq_req_strndup(req, message, strlen(message)) : NULL;
      if (!req->op.in.fail.code || (message && !req->op.in.fail.message)) e = PQ_ERR_NO_MEMORY;
    }
    json_decref(error);
    if (e) return e;
  } else {
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "status"),
                       "'status' must be completed or failed");
  }
  pq_req_run_op(req, result_done);
  return PQ_OK;
}

/* ---- users: wallet login ---- */

static int wallet_key(const char *b64, unsigned char out[crypto_sign_PUBLICKEYBYTES]) {
  return pq_receipt_public_parse(b64, out); /* the same encoding as the receipt key */
}

/* One-time challenges live in the store for --challenge-ttl (5 minutes), so
 * that a login may be answered through any coordinator and survives a
 * restart; the reaper sweeps the expired. Keyed by the wallet's canonical
 * base64. */
typedef struct {
  char challenge[65], wallet[64], given[129];
  int64_t expires_at;
} challenge_state;

static pq_err challenge_made(pq_req *req) {
  challenge_state *c = req->state;
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:o}", "challenge", c->challenge, "wallet", c->given, "expires_at",
                                          pq_api_time(c->expires_at)));
}

static pq_err d003_user_challenge(pq_req *req) {
  const char *wallet = pq_req_query(req, "wallet");
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  if (!wallet || strlen(wallet) > 128 || wallet_key(wallet, pk) != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "code", "INVALID_WALLET", "field", "wallet"),
                       "'wallet' must be an Ed25519 public key in base64");
  challenge_state *c = pq_req_alloc(req, sizeof *c);
  if (!c) return PQ_ERR_NO_MEMORY;
  pq_random_hex(c->challenge, 32);
  pq_receipt_public_b64(pk, c->wallet, sizeof c->wallet);
  snprintf(c->given, sizeof c->given, "%s", wallet);
  c->expires_at = pq_now_ms() + pq_api_settings_of(req)->challenge_ttl_ms;
  req->state = c;
  req->op.kind = PQ_OP_CHALLENGE_ADD;
  req->op.in.challenge.challenge = c->challenge;
  req->op.in.challenge.wallet = c->wallet;
  req->op.in.challenge.expires_at = c->expires_at;
  pq_req_run_op(req, challenge_made);
  return PQ_OK;
}

typedef struct {
  char name[128];
  pq_user user; /* the user to make when the wallet has none yet: no password login */
  char wallet[64]; /* canonical base64 */
  const char *challenge;
  bool signature_ok;
} wallet_user;

static json_t *user_json(const pq_user *u) {
  const char *wallet = strncmp(u->name, WALLET_PREFIX, strlen(WALLET_PREFIX)) == 0 ? u->name + strlen(WALLET_PREFIX) : NULL;
  return json_pack("{s:s,s:s,s:s?,s:s,s:o}", "id", u->id, "name", u->name, "wallet", wallet, "role",
                   u->admin ? "admin" : "client", "created_at", pq_api_time(u->created_at));
}

static pq_err logged_in(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  const pq_user *u = req->op.out.user; /* the wallet's user, made now or before */
  pq_err e;
  if (u->disabled) return pq_req_fail(req, PQ_ERR_UNAUTHORIZED, NULL, "this wallet's user is disabled");
  const pq_jwt_config *jc = &pq_access_config_of(pq_req_access(req))->jwt;
  int64_t now = pq_now_ms() / 1000;
  char *token = NULL;
  if ((e = pq_jwt_issue(jc, u->id, now, &token)) == PQ_OK)
    e = pq_req_reply(req, 200, json_pack("{s:s,s:s,s:o,s:o}", "session_token", token, "token_type", "session",
                                         "expires_at", pq_api_time((now + jc->ttl_s) * 1000), "user", user_json(u)));
  free(token);
  return e;
}

static pq_err challenge_taken(pq_req *req) {
  wallet_user *w = req->state;
  pq_err e = req->op.out.result;
  if (e != PQ_OK && e != PQ_ERR_NOT_FOUND) return e;
  if (e == PQ_ERR_NOT_FOUND || !w->signature_ok)
    return pq_req_fail(req, PQ_ERR_UNAUTHORIZED, json_pack("{s:s}", "code", "INVALID_SIGNATURE"),
                       "the signature, the challenge or the wallet is wrong, or the challenge was used or has expired");
  pq_op_release(&req->op);
  req->op = (pq_op){.kind = PQ_OP_USER_ADD, .in.user_add = {.user = &w->user, .if_absent = true}};
  pq_req_run_op(req, logged_in);
  return PQ_OK;
}

static pq_err d003_user_login(pq_req *req) {
  static const char *const fields[] = {"wallet", "challenge", "signature", NULL};
  const char *wallet = NULL, *challenge = NULL, *signature = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the login", fields)) ||
      (e = pq_json_string(req, req->body, "wallet", true, 128, &wallet)) ||
      (e = pq_json_string(req, req->body, "challenge", true, 64, &challenge)) ||
      (e = pq_json_string(req, req->body, "signature", true, 128, &signature)))
    return e;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
  size_t n = 0;
  bool ok = wallet_key(wallet, pk) == 0 &&
            sodium_base642bin(sig, sizeof sig, signature, strlen(signature), NULL, &n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) == 0 && n == sizeof sig &&
            crypto_sign_verify_detached(sig, (const unsigned char *)challenge, strlen(challenge), pk) == 0;
  wallet_user *w = pq_req_alloc(req, sizeof *w);
  if (!w) return PQ_ERR_NO_MEMORY;
  snprintf(w->name, sizeof w->name, WALLET_PREFIX "%s", wallet);
  w->user = (pq_user){.name = w->name, .password_hash = "!wallet"};
  w->signature_ok = ok;
  w->challenge = challenge;
  if (wallet_key(wallet, pk) == 0) pq_receipt_public_b64(pk, w->wallet, sizeof w->wallet);
  else snprintf(w->wallet, sizeof w->wallet, "-"); /* no wallet: no challenge will match */
  req->state = w;
  /* the challenge is spent whether or not the signature was right */
  req->op.kind = PQ_OP_CHALLENGE_TAKE;
  req->op.in.challenge.challenge = w->challenge;
  req->op.in.challenge.wallet = w->wallet;
  pq_req_run_op(req, challenge_taken);
  return PQ_OK;
}

static pq_err d003_user_me(pq_req *req) {
  if (!req->caller.user_id[0])
    return pq_req_fail(req, PQ_ERR_NOT_FOUND, NULL, "an open server has no users");
  pq_user *u = NULL;
  pq_err e = pq_coord_get_user(req->coord, req->caller.user_id, NULL, &u);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, user_json(u));
  pq_user_free(u);
  return e;
}

static pq_err d003_user_balance(pq_req *req) {
  const char *id = pq_req_param(req, "user_id");
  if (!id || (!req->caller.admin && strcmp(id, req->caller.user_id) != 0))
    return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s?}", "code", "USER_NOT_FOUND", "user_id", id),
                       "no user %s", id ? id : "");
  pq_user *u = NULL;
  pq_err e = pq_coord_get_user(req->coord, id, NULL, &u);
  if (e == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s}", "code", "USER_NOT_FOUND"), "no user %s", id);
  pq_user_free(u);
  if (e != PQ_OK) return e;
  /* the ledger's balance (one credit a USD until the exchange sets a rate) */
  char account[PQ_ACCOUNT_LEN];
  pq_user_account(account, id);
  pq_account a;
  if ((e = pq_coord_account(req->coord, account, &a)) != PQ_OK) return e;
  return pq_req_reply(req, 200, json_pack("{s:s,s:f,s:s}", "user_id", id, "balance", pq_micros_to_usd(a.balance),
                                          "currency", "AITBC"));
}

/* Its variables: API_HOST and API_PORT (where to listen), SECRET_KEY (the
 * token secret), DATABASE_URL (postgresql://... is the store;
 * sqlite:///FOLDER/FILE.db: FOLDER becomes the data folder); API_KEYS is installed by serve. */
static int d003_environment(char *why, size_t why_size) {
  const char *host = getenv("API_HOST"), *port = getenv("API_PORT"), *url = getenv("DATABASE_URL");
  if ((host || port) && !getenv("PROMPTQ_LISTEN")) {
    char listen[300];
    snprintf(listen, sizeof listen, "%s:%s", host ? host : "127.0.0.1", port ? port : "8000");
    setenv("PROMPTQ_LISTEN", listen, 0);
  }
  const char *secret = getenv("SECRET_KEY");
  if (secret && strlen(secret) < PQ_JWT_SECRET_MIN) {
    snprintf(why, why_size, "SECRET_KEY must be %d characters at least (it has %zu)", PQ_JWT_SECRET_MIN, strlen(secret));
    return -1;
  }
  if (secret) setenv("PROMPTQ_JWT_SECRET", secret, 0);
  const char *keys = getenv("API_KEYS");
  if (keys) { /* each key long enough to be a secret: the document's own key1,key2 are not */
    char *copy = strdup(keys), *save = NULL;
    size_t count = 0;
    for (char *k = copy ? strtok_r(copy, ",", &save) : NULL; k; k = strtok_r(NULL, ",", &save)) {
      while (*k == ' ') k++;
      size_t len = strlen(k);
      while (len && k[len - 1] == ' ') len--;
      if (!len) continue;
      if (len < STATIC_KEY_MIN || len > 256 || ++count > STATIC_KEYS_MAX) {
        snprintf(why, why_size, count > STATIC_KEYS_MAX ? "API_KEYS holds more than %d keys"
                                                        : "API_KEYS: each key needs %d to 256 characters (key %zu has %zu)",
                 count > STATIC_KEYS_MAX ? STATIC_KEYS_MAX : STATIC_KEY_MIN, count + 1, len);
        free(copy);
        return -1;
      }
    }
    free(copy);
  }
  if (url && (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)) {
    setenv("PROMPTQ_STORE", url, 0); /* several coordinators on one PostgreSQL */
  } else if (url) {
    if (strncmp(url, "sqlite:///", 10) != 0) {
      snprintf(why, why_size,
               "DATABASE_URL=%.12s... selects a database this build does not have; use postgresql://... or "
               "sqlite:///FOLDER/FILE.db or unset it", url);
      return -1;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", url + 10);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    setenv("PROMPTQ_DATA", dir, 0);
  }
  pq_exchange_configure();
  return 0;
}

/* API_KEYS=key1,key2: keys the coordinator API's clients and miners already
 * hold. Each becomes its own identity (a user named after the key's hash,
 * scope service: client and miner routes, no admin), stored as a hash; a key
 * no longer listed is revoked at this start. */
static pq_err d003_start(pq_coord *coord, bool open) {
  const char *list = getenv("API_KEYS");
  pq_err started = pq_exchange_start(coord);
  if (started != PQ_OK || open) return started;
  const char *hashes[STATIC_KEYS_MAX], *prefixes[STATIC_KEYS_MAX];
  char hash_buf[STATIC_KEYS_MAX][65], prefix_buf[STATIC_KEYS_MAX][9];
  size_t n = 0;
  char *copy = list ? strdup(list) : NULL, *save = NULL;
  if (list && !copy) return PQ_ERR_NO_MEMORY;
  for (char *key = copy ? strtok_r(copy, ",", &save) : NULL; key && n < STATIC_KEYS_MAX;
       key = strtok_r(NULL, ",", &save)) {
    while (*key == ' ') key++;
    size_t len = strlen(key);
    while (len && key[len - 1] == ' ') key[--len] = '\0';
    if (!len) continue;
    pq_apikey_hash(key, hash_buf[n]);
    snprintf(prefix_buf[n], sizeof prefix_buf[n], "%.4s****", key);
    hashes[n] = hash_buf[n];
    prefixes[n] = prefix_buf[n];
    n++;
  }
  if (copy) sodium_memzero(copy, strlen(list));
  free(copy);
  pq_op op = {.kind = PQ_OP_KEYS_SYNC,
              .in.keys_sync = {.name = "API_KEYS", .scope = "service", .hashes = hashes, .prefixes = prefixes, .n = n}};
  pq_err e = pq_coord_call(coord, &op);
  if (e != PQ_OK) pq_error("cannot install API_KEYS: %s", pq_err_message(e));
  else if (n || op.out.revoked)
    pq_info("API_KEYS: %zu key(s) installed, each its own identity; %d no longer listed, revoked", n, op.out.revoked);
  pq_op_release(&op);
  return e;
}

#define JSON PQ_ROUTE_JSON
#define BODY PQ_ROUTE_BODY
#define ROUTE(m, pattern_, handler_, flags_, role_, name_)                                                  \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_, .role = role_, .name = name_, \
   .render_error = d003_error}
static const pq_route routes[] = {
    ROUTE("POST", "/v1/client/jobs", d003_client_submit, JSON | BODY, PQ_ROLE_CLIENT, "d003.client.submit"),
    ROUTE("GET", "/v1/client/jobs/{job_id}/status", d003_client_status, 0, PQ_ROLE_CLIENT, "d003.client.status"),
    ROUTE("GET", "/v1/client/jobs/{job_id}/receipts", d003_client_receipts, 0, PQ_ROLE_CLIENT,
          "d003.client.receipts"),
    ROUTE("POST", "/v1/miner/register", d003_miner_register, JSON | BODY, PQ_ROLE_WORKER, "d003.miner.register"),
    ROUTE("POST", "/v1/miner/heartbeat", d003_miner_heartbeat, JSON | BODY, PQ_ROLE_WORKER, "d003.miner.heartbeat"),
    ROUTE("GET", "/v1/miner/jobs", d003_miner_jobs, 0, PQ_ROLE_WORKER, "d003.miner.jobs"),
    ROUTE("POST", "/v1/miner/result", d003_miner_result, JSON | BODY | PQ_ROUTE_RESULT, PQ_ROLE_WORKER,
          "d003.miner.result"),
    ROUTE("GET", "/v1/users/challenge", d003_user_challenge, PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC, "d003.users.challenge"),
    ROUTE("POST", "/v1/users/login", d003_user_login, JSON | BODY | PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC,
          "d003.users.login"),
    ROUTE("GET", "/v1/users/me", d003_user_me, PQ_ROUTE_USER_CLASS, PQ_ROLE_CLIENT, "d003.users.me"),
    ROUTE("GET", "/v1/users/{user_id}/balance", d003_user_balance, PQ_ROUTE_USER_CLASS, PQ_ROLE_CLIENT,
          "d003.users.balance"),
    ROUTE("POST", "/v1/exchange/create-payment", pq_exchange_create, JSON | BODY | PQ_ROUTE_USER_CLASS, PQ_ROLE_CLIENT,
          "d003.exchange.create"),
    ROUTE("GET", "/v1/exchange/payment-status/{id}", pq_exchange_status, PQ_ROUTE_USER_CLASS, PQ_ROLE_CLIENT,
          "d003.exchange.status"),
};

const pq_dialect pq_dialect_003 = {
    .name = "d003",
    .title = "the coordinator API (shared/seeds/003): clients, miners, wallet login, the Bitcoin exchange",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .alias_prefix = "/api", /* its document's URLs, behind its proxy: /api/v1/client/jobs */
    .apply_environment = d003_environment,
    .on_start = d003_start,
    .on_stop = pq_exchange_stop,
};
