/* What a kind's hooks may do inside the writer's transaction (engine/kind.h):
 * a small, typed set of steps over the jobs family, so a kind that runs
 * child jobs (a council) changes the store the way every operation does. */
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "engine/internal.h"

#define TOKEN_BYTES 16

int64_t pq_kind_now(pq_kind_ctx *ctx) { return ctx->now; }

pq_err pq_kind_get(pq_kind_ctx *ctx, const char *id, pq_job **out) {
  return ctx->c->ops->job_get(ctx->c->wconn, id, 0, out);
}

pq_err pq_kind_start(pq_kind_ctx *ctx, pq_job *job, int64_t deadline) {
  char token[2 * TOKEN_BYTES + 1];
  pq_random_hex(token, TOKEN_BYTES);
  job->state = PQ_JOB_LEASED;
  job->attempts = 1;
  job->max_attempts = 1;
  job->leased_at = ctx->now;
  job->lease_expires_at = deadline;
  if (pq_set_str(&job->lease_token, token) || pq_set_str(&job->worker_id, NULL)) return PQ_ERR_NO_MEMORY;
  return pq__transition(ctx, job, PQ_JOB_QUEUED, NULL);
}

pq_err pq_kind_submit_child(pq_kind_ctx *ctx, const pq_job *parent, pq_job *child, char *child_id) {
  pq_err result = PQ_ERR_NO_MEMORY;
  if (pq_set_str(&child->parent_id, parent->id) || pq_set_str(&child->owner, parent->owner ? parent->owner : ""))
    goto out;
  child->id[0] = '\0';
  if ((result = pq__enqueue(ctx, child)) == PQ_OK) memcpy(child_id, child->id, PQ_UUID_LEN + 1);
out:
  pq_job_free(child);
  return result;
}

pq_err pq_kind_save(pq_kind_ctx *ctx, pq_job *job) {
  job->updated_at = ctx->now;
  pq_err result = ctx->c->ops->job_update(ctx->c->wconn, job, job->state, job->lease_token);
  if (result == PQ_OK) result = pq__publish(ctx, job->id);
  return result;
}

pq_err pq_kind_finish(pq_kind_ctx *ctx, pq_job *job, pq_job_state to) {
  pq_job_state from = job->state;
  char *token = job->lease_token ? strdup(job->lease_token) : NULL;
  if (job->lease_token && !token) return PQ_ERR_NO_MEMORY;
  job->state = to;
  job->finished_at = ctx->now;
  job->lease_expires_at = 0;
  pq_set_str(&job->lease_token, NULL);
  pq_err result = pq__transition(ctx, job, from, token);
  free(token);
  return result;
}

pq_err pq_kind_event(pq_kind_ctx *ctx, const pq_job *job, const char *kind, const char *data) {
  int64_t seq;
  const char *entries[1] = {data};
  pq_err result = ctx->c->relay ? pq__relay_fence(ctx->c->relay, job->id, ctx->c->wconn, ctx->c->ops, ctx->now) : PQ_OK;
  if (result == PQ_OK) /* numbered from the store: after anything the relay acknowledged */
    result = ctx->c->ops->event_append(ctx->c->wconn, job->number, job->attempts, kind, entries, 1, 0, ctx->now, &seq);
  if (result == PQ_OK) result = pq__publish(ctx, job->id);
  return result;
}

pq_err pq_kind_cancel(pq_kind_ctx *ctx, const char *job_id) {
  pq_op op = {.kind = PQ_OP_CANCEL, .in.cancel.job_id = job_id};
  pq_err result = pq__run_cancel(ctx, &op);
  pq_job_free(op.out.job);
  return result == PQ_ERR_INVALID_STATE || result == PQ_ERR_NOT_FOUND ? PQ_OK : result;
}

bool pq_kind_model_served(pq_kind_ctx *ctx, const char *model) { return pq_coord_model_served(ctx->c, model); }

int64_t pq_kind_batch_price(pq_kind_ctx *ctx, int64_t micros) {
  return (int64_t)((__int128)micros * (100 - ctx->c->cfg.batch_discount_percent) / 100);
}

pq_err pq_kind_children(pq_kind_ctx *ctx, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                        size_t *n) {
  return ctx->c->ops->job_children(ctx->c->wconn, parent_id, after, limit, out, n);
}
