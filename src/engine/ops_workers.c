/* The workers family: registration and heartbeats, inside the writer's
 * transaction. The live set (live.c) follows after the commit. */
#include "base/ids.h"
#include "engine/internal.h"

pq_err pq__run_register(pq__batch *b, pq_op *op) {
  pq_worker *w = op->in.reg.worker;
  pq_uuid7(b->now, w->id);
  w->created_at = w->last_seen_at = b->now;
  w->online = true;
  return b->c->ops->worker_insert(b->c->wconn, w);
}

pq_err pq__run_heartbeat(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  const char *id = op->in.heartbeat.worker_id;
  pq_err result = c->ops->worker_touch(c->wconn, id, b->now);
  if (result == PQ_OK) op->touched_worker = true;
  if (result == PQ_OK) result = c->ops->job_extend_leases(c->wconn, id, b->now);
  if (result == PQ_OK) result = c->ops->job_cancel_requested(c->wconn, id, &op->out.cancel_ids, &op->out.n_cancel);
  return result;
}
