/* The identity family: users and API keys, for the API and the command
 * line alike (the command line's writes reach the store only this way). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static bool listed(const pq_op *op, const char *hash) {
  for (size_t i = 0; i < op->in.keys_sync.n; i++)
    if (strcmp(op->in.keys_sync.hashes[i], hash) == 0) return true;
  return false;
}

pq_err pq__run_keys_sync(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  const char *tag = op->in.keys_sync.name, *scope = op->in.keys_sync.scope;
  pq_err result = PQ_OK;
  for (size_t i = 0; result == PQ_OK && i < op->in.keys_sync.n; i++) {
    const char *hash = op->in.keys_sync.hashes[i];
    char user_name[160];
    snprintf(user_name, sizeof user_name, "%s:%.12s", tag, hash); /* never the key itself */
    pq_user *u = NULL;
    result = c->ops->user_get(c->wconn, NULL, user_name, &u);
    if (result == PQ_ERR_NOT_FOUND) {
      pq_user nu = {.name = user_name, .password_hash = "!key", .created_at = b->now}; /* no password login */
      pq_uuid7(b->now, nu.id);
      if ((result = c->ops->user_insert(c->wconn, &nu)) == PQ_OK) result = c->ops->user_get(c->wconn, nu.id, NULL, &u);
    }
    if (result != PQ_OK) break;
    result = c->ops->key_rebind(c->wconn, hash, u->id, scope, tag);
    if (result == PQ_ERR_NOT_FOUND) {
      pq_api_key k = {.user_id = u->id, .prefix = (char *)op->in.keys_sync.prefixes[i], .hash = (char *)hash,
                      .scope = (char *)scope, .name = (char *)tag, .created_at = b->now};
      pq_uuid7(b->now, k.id);
      result = c->ops->key_insert(c->wconn, &k);
    }
    pq_user_free(u);
  }
  pq_api_key **keys = NULL;
  size_t n = 0;
  if (result == PQ_OK) result = c->ops->key_list(c->wconn, NULL, &keys, &n);
  for (size_t i = 0; i < n; i++) {
    pq_api_key *k = keys[i];
    if (result == PQ_OK && !k->revoked_at && strcmp(k->name, tag) == 0 && !listed(op, k->hash)) {
      result = c->ops->key_revoke(c->wconn, k->id, NULL, b->now);
      if (result == PQ_OK) op->out.revoked++;
    }
    pq_api_key_free(k);
  }
  free(keys);
  return result;
}

pq_err pq__run_challenge_add(pq__batch *b, pq_op *op) {
  return b->c->ops->challenge_insert(b->c->wconn, op->in.challenge.challenge, op->in.challenge.wallet,
                                     op->in.challenge.expires_at);
}

pq_err pq__run_challenge_take(pq__batch *b, pq_op *op) {
  return b->c->ops->challenge_take(b->c->wconn, op->in.challenge.challenge, op->in.challenge.wallet, b->now);
}
