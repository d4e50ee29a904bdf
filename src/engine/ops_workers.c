/* The workers family: registration and heartbeats, inside the writer's
 * transaction. The live set (live.c) follows after the commit. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "base/log.h"
#include "engine/internal.h"

pq_err pq__run_register(pq__batch *b, pq_op *op) {
  pq_worker *w = op->in.reg.worker;
  pq_uuid7(b->now, w->id);
  w->created_at = w->last_seen_at = b->now;
  w->online = true;
  return b->c->ops->worker_insert(b->c->wconn, w);
}

static bool claimed(const pq_op *op, const char *job_id) {
  for (size_t i = 0; i < op->in.heartbeat.n_held; i++)
    if (op->in.heartbeat.held[i] && strcmp(op->in.heartbeat.held[i], job_id) == 0) return true;
  return false;
}

/* Leases the worker no longer claims go back. A lease younger than one
 * heartbeat interval may still be on its way to the worker: it is left. */
static pq_err give_back_unclaimed(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  int64_t interval = c->cfg.worker_timeout_ms / 3 > 100 ? c->cfg.worker_timeout_ms / 3 : 100;
  pq_job **jobs = NULL;
  size_t n = 0;
  pq_err result = c->ops->job_leased_by(c->wconn, op->in.heartbeat.worker_id, &jobs, &n);
  for (size_t i = 0; result == PQ_OK && i < n; i++) {
    pq_job *j = jobs[i];
    if (claimed(op, j->id) || j->leased_at > b->now - interval) continue;
    char *token = j->lease_token ? strdup(j->lease_token) : NULL;
    if (j->lease_token && !token) {
      result = PQ_ERR_NO_MEMORY;
      break;
    }
    pq_warn("worker %s no longer holds job %s: it goes back", op->in.heartbeat.worker_id, j->id);
    result = pq__settle_failure(b, j, token, "LEASE_ABANDONED", "the worker no longer holds this job", true);
    free(token);
    if (result == PQ_OK) op->out.abandoned++;
    if (result == PQ_ERR_STALE) result = PQ_OK;
  }
  pq_job_free_array(jobs, n);
  return result;
}

/* A heartbeat's capabilities update what the worker registered, field by field: a label set
 * given replaces its labels, and what is not named (its params, its slots) stays. */
static pq_err update_capabilities(pq__batch *b, const char *id, const char *update) {
  pq_worker *w = NULL;
  pq_err result = b->c->ops->worker_get(b->c->wconn, id, &w);
  if (result != PQ_OK) return result;
  json_t *caps = json_loads(w->capabilities ? w->capabilities : "{}", 0, NULL), *changes = json_loads(update, 0, NULL);
  if (!json_is_object(caps)) {
    json_decref(caps);
    caps = json_object();
  }
  char *merged = NULL;
  if (caps && json_is_object(changes) && json_object_update(caps, changes) == 0) merged = json_dumps(caps, JSON_COMPACT);
  if (merged && strlen(merged) > 16384) result = PQ_ERR_INVALID_REQUEST; /* what merging keys never bounded */
  else result = merged ? b->c->ops->worker_set_capabilities(b->c->wconn, id, merged) : PQ_ERR_NO_MEMORY;
  free(merged);
  json_decref(caps);
  json_decref(changes);
  pq_worker_free(w);
  return result;
}

pq_err pq__run_heartbeat(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  const char *id = op->in.heartbeat.worker_id;
  pq_err result = c->ops->worker_touch(c->wconn, id, b->now);
  if (result == PQ_OK) op->touched_worker = true;
  if (result == PQ_OK && op->in.heartbeat.capabilities) result = update_capabilities(b, id, op->in.heartbeat.capabilities);
  if (result == PQ_OK) result = c->ops->job_extend_leases(c->wconn, id, b->now);
  if (result == PQ_OK && op->in.heartbeat.claims) result = give_back_unclaimed(b, op);
  if (result == PQ_OK) result = c->ops->job_cancel_requested(c->wconn, id, &op->out.cancel_ids, &op->out.n_cancel);
  return result;
}
