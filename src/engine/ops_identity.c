/* The identity family: users and API keys, for the API and the command
 * line alike (the command line's writes reach the store only this way). */
#include "base/ids.h"
#include "engine/internal.h"

pq_err pq__run_user_add(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_user *u = op->in.user_add.user;
  pq_err result;
  if (op->in.user_add.if_absent) {
    result = c->ops->user_get(c->wconn, NULL, u->name, &op->out.user);
    if (result != PQ_ERR_NOT_FOUND) return result; /* there already (PQ_OK), or a failure */
  }
  if (!u->id[0]) pq_uuid7(b->now, u->id);
  if (!u->created_at) u->created_at = b->now;
  if ((result = c->ops->user_insert(c->wconn, u)) != PQ_OK) return result;
  return c->ops->user_get(c->wconn, u->id, NULL, &op->out.user);
}

pq_err pq__run_user_set_disabled(pq__batch *b, pq_op *op) {
  return b->c->ops->user_set_disabled(b->c->wconn, op->in.user_set_disabled.name, op->in.user_set_disabled.disabled);
}

pq_err pq__run_key_add(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_api_key *k = op->in.key_add.key;
  if (op->in.key_add.if_absent) {
    pq_api_key *found = NULL;
    pq_err result = c->ops->key_get_by_hash(c->wconn, k->hash, &found);
    pq_api_key_free(found);
    if (result != PQ_ERR_NOT_FOUND) return result;
  }
  if (!k->id[0]) pq_uuid7(b->now, k->id);
  if (!k->created_at) k->created_at = b->now;
  return c->ops->key_insert(c->wconn, k);
}

pq_err pq__run_key_revoke(pq__batch *b, pq_op *op) {
  return b->c->ops->key_revoke(b->c->wconn, op->in.key_revoke.id_or_prefix, op->in.key_revoke.user_id, b->now);
}
