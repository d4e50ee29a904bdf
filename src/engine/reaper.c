/* The reaper: silent workers go offline (their leases end now), lapsed
 * leases are retried or settled, queued jobs whose ttl ended expire. It runs
 * on the writer's beat (reap_interval) and on demand (PQ_OP_REAP), inside a
 * transaction like any operation: a store failure rolls it back whole. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "engine/internal.h"

#define REAP_BATCH 512

static void note_offline(void *ctx, const char *id) {
  pq__batch *b = ctx;
  char **grown = realloc(b->offline, (b->n_offline + 1) * sizeof *grown);
  if (!grown) return; /* the worker is offline in the store; its leases lapse on their own */
  b->offline = grown;
  if ((b->offline[b->n_offline] = strdup(id))) b->n_offline++;
}

typedef struct {
  pq__batch *b;
  pq_err result; /* the first fatal error: it stops the scan and fails the batch */
  int settled;
} reap_ctx;

static int reap_fresh(reap_ctx *r, pq_job *job);

/* The scan's rows were read before any of them was settled, and settling one
 * may change another (a council's step, a cancel): each is read again, locked
 * where the store locks, and left alone unless it is still due as it was. */
static pq_err read_again(pq__batch *b, const pq_job *seen, pq_job **out) {
  pq_job *now = NULL;
  pq_err result = b->c->ops->job_get(b->c->wconn, NULL, seen->number, &now);
  if (result != PQ_OK) return result == PQ_ERR_NOT_FOUND ? PQ_ERR_STALE : result;
  bool same_token = (!seen->lease_token && !now->lease_token) ||
                    (seen->lease_token && now->lease_token && strcmp(seen->lease_token, now->lease_token) == 0);
  bool due = now->state == PQ_JOB_LEASED ? now->lease_expires_at <= b->now
                                         : now->state == PQ_JOB_QUEUED && now->expires_at && now->expires_at <= b->now;
  if (now->state != seen->state || !same_token || !due) {
    pq_job_free(now);
    return PQ_ERR_STALE;
  }
  *out = now;
  return PQ_OK;
}

static int reap_one(void *ctx, pq_job *seen) {
  reap_ctx *r = ctx;
  pq_job *job = NULL;
  pq_err result = read_again(r->b, seen, &job);
  if (result == PQ_ERR_STALE) return 0;
  if (result != PQ_OK) {
    r->result = result;
    return 1;
  }
  int stop = reap_fresh(r, job);
  pq_job_free(job);
  return stop;
}

static int reap_fresh(reap_ctx *r, pq_job *job) {
  pq_err result;
  if (job->state == PQ_JOB_LEASED) {
    char *token = job->lease_token ? strdup(job->lease_token) : NULL;
    if (job->lease_token && !token) {
      r->result = PQ_ERR_NO_MEMORY;
      return 1;
    }
    if (pq_job_kind_of(job)->on_submit) /* the coordinator runs it: its deadline passed */
      result = pq__settle_failure(r->b, job, token, "TIMEOUT", "the job did not finish before its deadline", false);
    else
      result = pq__settle_failure(r->b, job, token, "LEASE_EXPIRED",
                                  "the worker did not finish the job before its lease ended", true);
    free(token);
    if (result == PQ_OK) PQ__STAT_ADD(r->b->c, lease_expiries, 1);
  } else {
    job->state = PQ_JOB_EXPIRED;
    job->finished_at = r->b->now;
    result = pq__transition(r->b, job, PQ_JOB_QUEUED, NULL);
  }
  if (result == PQ_OK) r->settled++;
  if (result == PQ_OK || result == PQ_ERR_STALE) return 0; /* stale: someone settled it first */
  if (pq__fatal(result)) {
    r->result = result;
    return 1;
  }
  pq_warn("reaper: job %s could not be settled (%s); it is looked at again next time", job->id, pq_err_code(result));
  return 0;
}

pq_err pq__reap(pq__batch *b, int *settled) {
  pq_coord *c = b->c;
  pq_err result = c->ops->worker_mark_offline(c->wconn, b->now - c->cfg.worker_timeout_ms, note_offline, b);
  for (size_t i = 0; result == PQ_OK && i < b->n_offline; i++) {
    pq_warn("worker %s missed its heartbeats: offline, its leases end now", b->offline[i]);
    result = c->ops->job_end_leases(c->wconn, b->offline[i], b->now);
  }
  if (result == PQ_OK) result = c->ops->challenge_sweep(c->wconn, b->now); /* spent logins' leftovers */
  if (result == PQ_OK) /* the delivery log keeps what ended for a while */
    result = c->ops->delivery_sweep(c->wconn, b->now - (c->cfg.webhook_log_for_ms > 0 ? c->cfg.webhook_log_for_ms
                                                                                    : 30LL * 86400 * 1000));
  if (result != PQ_OK) return result;
  reap_ctx r = {.b = b, .result = PQ_OK};
  result = c->ops->job_scan_due(c->wconn, b->now, REAP_BATCH, reap_one, &r);
  if (settled) *settled = r.settled + (int)b->n_offline;
  return result != PQ_OK ? result : r.result;
}
