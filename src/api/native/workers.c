/* /v1/workers: register, read, heartbeat, lease (long-poll). */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "model/route.h"
#include "base/log.h"
#include "engine/kind.h"
#include "base/clock.h"
#include "base/ids.h"
#include "model/receipt.h"
#include "http/json_in.h"

#define MAX_LEASE_JOBS 1000 /* as many as one request may report back (POST /v1/workers/{id}/results) */
#define MAX_MODELS 64

pq_err pq_api_their_worker(pq_req *req, const char *worker_id) {
  char owner[PQ_UUID_LEN + 1];
  pq_err e = pq_coord_worker_owner(req->coord, worker_id, owner);
  if (e != PQ_OK || req->caller.admin) return e;
  return strcmp(owner, pq_api_owner(req)) == 0 ? PQ_OK : PQ_ERR_NOT_FOUND;
}

/* The {id} of a worker route: a worker of the caller's. */
static pq_err worker_id_param(pq_req *req, const char **out) {
  const char *id = pq_req_param(req, "id");
  pq_err e = id && pq_is_uuid(id) ? pq_api_their_worker(req, id) : PQ_ERR_NOT_FOUND;
  if (e == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s?}", "worker_id", id),
                       "no worker with id '%s'; register first", id ? id : "");
  if (e != PQ_OK) return e;
  *out = id;
  return PQ_OK;
}

static pq_err worker_op_error(pq_req *req) {
  pq_err e = req->op.out.result;
  if (e == PQ_ERR_NOT_FOUND) {
    const char *id = pq_req_param(req, "id");
    return pq_req_fail(req, e, json_pack("{s:s?}", "worker_id", id),
                       "no worker with id '%s'; register again", id ? id : "");
  }
  return e;
}

static json_t *worker_json(const pq_worker *w) {
  json_t *models = json_loads(w->models, 0, NULL), *caps = json_loads(w->capabilities, 0, NULL);
  return json_pack("{s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:s?}", "id", w->id, "name", w->name, "models",
                   models ? models : json_array(), "capabilities", caps ? caps : json_object(),
                   "status", w->online ? "online" : "offline", "created_at",
                   pq_api_time(w->created_at), "last_seen_at", pq_api_time(w->last_seen_at),
                   "public_key", w->public_key);
}

/* Checks a JSON array of model names. */
static pq_err check_models(pq_req *req, json_t *models) {
  bool ok = json_is_array(models) && json_array_size(models) <= MAX_MODELS;
  size_t i;
  json_t *m;
  json_array_foreach(models, i, m) ok &= json_is_string(m) && json_string_length(m) > 0 &&
                                         json_string_length(m) <= 128 &&
                                         strlen(json_string_value(m)) == json_string_length(m) &&
                                         pq_job_model_name_ok(json_string_value(m));
  return ok ? PQ_OK
            : pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "models"),
                          "'models' must be an array of up to %d model names (without control characters)",
                          MAX_MODELS);
}

/* The models live workers serve now: {id: created (earliest worker)}. */
static void add_model(void *ctx, const char *model, int64_t created_at) {
  json_object_set_new(ctx, model, json_integer(created_at / 1000));
}

pq_err pq_api_live_models(pq_req *req, json_t **out) {
  json_t *models = json_object();
  if (!models) return PQ_ERR_NO_MEMORY;
  pq_coord_live_models(req->coord, add_model, models); /* in memory: no store read */
  *out = models;
  return PQ_OK;
}

/* ---- register ---- */

static pq_err register_done(pq_req *req) {
  pq_worker *w = req->op.in.reg.worker;
  req->op.in.reg.worker = NULL;
  pq_err e = req->op.out.result;
  if (e == PQ_OK) {
    const pq_coord_config *cfg = pq_coord_config_of(req->coord);
    json_t *body = worker_json(w);
    int64_t beat = cfg->worker_timeout_ms / 3;
    json_object_set_new(body, "heartbeat_interval_ms", json_integer(beat > 100 ? beat : 100));
    json_object_set_new(body, "lease_timeout_s", json_integer(cfg->lease_timeout_ms / 1000));
    e = pq_req_reply(req, 201, body);
  }
  pq_worker_free(w);
  return e;
}

/* What a worker offers: an object; its routing fields (model/route.h) well formed. */
static pq_err check_capabilities(pq_req *req, json_t *caps) {
  if (!json_is_object(caps))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "capabilities"),
                       "'capabilities' must be an object");
  pq_capset offer;
  char why[256];
  if (pq_route_offer(caps, &offer, why, sizeof why) != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "capabilities"), "%s", why);
  pq_capset_free(&offer);
  return PQ_OK;
}

pq_err pq_api_worker_register(pq_req *req) {
  static const char *const fields[] = {"name", "models", "capabilities", "public_key", NULL};
  const char *name = NULL, *public_key = NULL;
  json_t *models = json_object_get(req->body, "models");
  json_t *caps = json_object_get(req->body, "capabilities");
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the worker", fields)) ||
      (e = pq_json_string(req, req->body, "name", true, 128, &name)) ||
      (e = pq_json_string(req, req->body, "public_key", false, 64, &public_key)))
    return e;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  if (public_key && pq_receipt_public_parse(public_key, pk) != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "public_key"),
                       "'public_key' must be an Ed25519 public key in base64");
  if (models && (e = check_models(req, models))) return e;
  if (caps && (e = check_capabilities(req, caps))) return e;
  pq_worker *w = calloc(1, sizeof *w);
  if (!w) return PQ_ERR_NO_MEMORY;
  w->name = strdup(name);
  w->models = models ? json_dumps(models, JSON_COMPACT) : strdup("[]");
  w->capabilities = caps ? json_dumps(caps, JSON_COMPACT) : strdup("{}");
  w->public_key = public_key ? strdup(public_key) : NULL;
  w->owner = strdup(pq_api_owner(req)); /* the worker id is bound to this user */
  if (!w->name || !w->models || !w->capabilities || (public_key && !w->public_key) || !w->owner) {
    pq_worker_free(w);
    return PQ_ERR_NO_MEMORY;
  }
  req->op.kind = PQ_OP_REGISTER;
  req->op.in.reg.worker = w; /* freed in register_done */
  pq_req_run_op(req, register_done);
  return PQ_OK;
}

pq_err pq_api_worker_get(pq_req *req) {
  const char *id = NULL;
  pq_worker *w = NULL;
  pq_err e;
  if ((e = worker_id_param(req, &id))) return e;
  if ((e = pq_coord_get_worker(req->coord, id, &w)) == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s}", "worker_id", id), "no worker with id '%s'", id);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, worker_json(w));
  pq_worker_free(w);
  return e;
}

/* ---- heartbeat ---- */

static pq_err heartbeat_done(pq_req *req) {
  if (req->op.out.result != PQ_OK) return worker_op_error(req);
  json_t *cancel = json_array();
  for (size_t i = 0; i < req->op.out.n_cancel; i++)
    json_array_append_new(cancel, json_string(req->op.out.cancel_ids[i]));
  return pq_req_reply(req, 200,
                      json_pack("{s:s,s:s,s:o,s:i,s:o}", "worker_id", req->op.in.heartbeat.worker_id,
                                "status", "online", "cancel", cancel, "released", req->op.out.abandoned,
                                "server_time", pq_api_time(pq_now_ms())));
}

/* An optional body {"jobs": [ids]}: the jobs the worker holds. Leases it
 * does not list (older than a heartbeat interval) are given back. */
static pq_err heartbeat_claims(pq_req *req) {
  static const char *const fields[] = {"jobs", "capabilities", NULL};
  json_t *body = req->body, *jobs = body ? json_object_get(body, "jobs") : NULL;
  json_t *caps = body ? json_object_get(body, "capabilities") : NULL;
  pq_err e;
  if (body && (e = pq_json_only(req, body, "the heartbeat", fields))) return e;
  if (caps && !json_is_null(caps)) { /* what it offers now (a label added, a context grown) */
    char *text = NULL;
    if ((e = check_capabilities(req, caps)) || !(text = json_dumps(caps, JSON_COMPACT))) return e ? e : PQ_ERR_NO_MEMORY;
    char *kept = pq_req_alloc(req, strlen(text) + 1);
    if (kept) memcpy(kept, text, strlen(text) + 1);
    free(text);
    if (!kept) return PQ_ERR_NO_MEMORY;
    req->op.in.heartbeat.capabilities = kept;
  }
  if (!jobs || json_is_null(jobs)) return PQ_OK;
  if (!json_is_array(jobs) || json_array_size(jobs) > 1024)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "jobs"),
                       "'jobs' must be an array of at most 1024 job ids");
  size_t n = json_array_size(jobs);
  const char **held = pq_req_alloc(req, (n ? n : 1) * sizeof *held);
  if (!held) return PQ_ERR_NO_MEMORY;
  for (size_t i = 0; i < n; i++)
    if (!(held[i] = json_string_value(json_array_get(jobs, i))))
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "jobs"),
                         "'jobs' must hold job ids (strings)");
  req->op.in.heartbeat.claims = true;
  req->op.in.heartbeat.held = held;
  req->op.in.heartbeat.n_held = n;
  return PQ_OK;
}

pq_err pq_api_worker_heartbeat(pq_req *req) {
  const char *id = NULL;
  pq_err e = worker_id_param(req, &id);
  if (e != PQ_OK || (e = heartbeat_claims(req)) != PQ_OK) return e;
  req->op.kind = PQ_OP_HEARTBEAT;
  req->op.in.heartbeat.worker_id = id;
  pq_req_run_op(req, heartbeat_done);
  return PQ_OK;
}

/* ---- lease ---- */

typedef struct {
  pq_op op;
  char job_id[PQ_UUID_LEN + 1];
  char token[128];
} release;

static void release_done(pq_op *op) {
  pq_op_release(op);
  free(op); /* the op is the struct's first member */
}

bool pq_api_release_if_gone(pq_req *req) {
  if (req->op.out.n_jobs == 0 || !pq_req_peer_gone(req)) return false;
  for (size_t i = 0; i < req->op.out.n_jobs; i++) {
    const pq_job *j = req->op.out.jobs[i];
    release *r = calloc(1, sizeof *r);
    if (!r || !j->lease_token) { /* it lapses on its own instead */
      free(r);
      continue;
    }
    memcpy(r->job_id, j->id, sizeof r->job_id);
    snprintf(r->token, sizeof r->token, "%s", j->lease_token);
    r->op = (pq_op){.kind = PQ_OP_RELEASE, .in.release = {.job_id = r->job_id, .token = r->token},
                    .done = release_done};
    pq_coord_submit(req->coord, &r->op);
  }
  pq_info("lease for worker %s: the connection is gone, %zu job(s) go back", req->op.in.lease.worker_id,
          req->op.out.n_jobs);
  return true;
}

static pq_err lease_done(pq_req *req) {
  if (req->op.out.result != PQ_OK) return worker_op_error(req);
  if (pq_api_release_if_gone(req)) return pq_req_reply(req, 200, json_pack("{s:[]}", "jobs"));
  json_t *jobs = json_array();
  for (size_t i = 0; i < req->op.out.n_jobs; i++) {
    const pq_job *j = req->op.out.jobs[i];
    const pq_job_kind *kind = pq_job_kind_of(j);
    json_t *input = json_loads(j->input, 0, NULL);
    if (input && kind->worker_input) { /* what this kind hands a worker */
      json_t *handed = kind->worker_input(j, input);
      json_decref(input);
      input = handed;
    }
    json_array_append_new(
        jobs, json_pack("{s:s,s:I,s:s,s:s,s:o,s:i,s:i,s:i,s:{s:s,s:o}}", "id", j->id, "number",
                        (json_int_t)j->number, "kind", kind->worker_kind ? kind->worker_kind : kind->name, "model", j->model, "input",
                        input ? input : json_object(), "priority", j->priority, "attempt",
                        j->attempts, "max_attempts", j->max_attempts, "lease", "token",
                        j->lease_token, "expires_at", pq_api_time(j->lease_expires_at)));
  }
  return pq_req_reply(req, 200, json_pack("{s:o}", "jobs", jobs));
}

pq_err pq_api_worker_lease(pq_req *req) {
  static const char *const fields[] = {"models", "max_jobs", "wait_s", NULL};
  const char *id = NULL;
  int64_t max_jobs = 1, wait_s = 0;
  json_t *body = req->body ? req->body : NULL;
  json_t *models = body ? json_object_get(body, "models") : NULL;
  pq_err e;
  if ((e = worker_id_param(req, &id))) return e;
  if (body && ((e = pq_json_only(req, body, "the lease request", fields)) ||
               (e = pq_json_int(req, body, "max_jobs", false, 1, MAX_LEASE_JOBS, &max_jobs)) ||
               (e = pq_json_int(req, body, "wait_s", false, 0, pq_req_max_wait_s(req), &wait_s))))
    return e;
  if (models && !json_is_null(models)) {
    if ((e = check_models(req, models))) return e;
    size_t n = json_array_size(models);
    const char **names = pq_req_alloc(req, (n ? n : 1) * sizeof *names);
    if (!names) return PQ_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) names[i] = json_string_value(json_array_get(models, i));
    req->op.in.lease.models = names;
    req->op.in.lease.n_models = n;
  }
  req->op.kind = PQ_OP_LEASE;
  req->op.in.lease.worker_id = id;
  req->op.in.lease.max_jobs = (int)max_jobs;
  req->op.in.lease.deadline_ms = wait_s ? pq_mono_ms() + wait_s * 1000 : 0;
  pq_req_run_op(req, lease_done);
  return PQ_OK;
}
