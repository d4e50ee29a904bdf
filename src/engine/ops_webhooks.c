/* The webhooks family: subscriptions, the deliveries a job's end queues,
 * and the sender's claims and results, inside the writer's transaction.
 *
 * A delivery is queued in the same transaction that ends its job, so a
 * job that ended is a delivery stored, whatever crashes next. The sender
 * (webhook/sender.c) claims due deliveries (each claim holds one for a
 * while and counts an attempt: a sender killed mid-request leaves it to be
 * claimed again when the hold ends) and reports each attempt; the retry
 * policy lives here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/clock.h"
#include "base/ids.h"
#include "base/log.h"
#include "engine/internal.h"

#define MAX_SUBSCRIPTIONS 20          /* per owner */
#define OUTPUT_MAX (64 * 1024)        /* a larger output is left out of the body (the job has it) */
#define DEFAULT_RETRY_BASE_MS 5000
#define DEFAULT_RETRY_FOR_MS (24LL * 3600 * 1000)
#define MAX_RETRY_DELAY_MS (6LL * 3600 * 1000)

static const char *event_of(const pq_job *job) {
  if (job->kind && strcmp(job->kind, "batch") == 0) return "batch.finished";
  switch (job->state) {
    case PQ_JOB_COMPLETED: return "job.completed";
    case PQ_JOB_FAILED: return "job.failed";
    case PQ_JOB_DEAD: return "job.dead";
    case PQ_JOB_EXPIRED: return "job.expired";
    case PQ_JOB_CANCELLED: return "job.cancelled";
    default: return NULL;
  }
}

static json_t *time_json(int64_t ms) {
  char buf[40];
  return ms ? json_string(pq_format_time(ms, buf, sizeof buf)) : json_null();
}

/* The body: Standard Webhooks' {type, timestamp, data}, data the job as it ended. */
static char *payload_of(const pq_job *job, const char *event, int64_t now) {
  json_t *data = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:o,s:o,s:{s:I,s:I},s:I}", "id", job->id, "object", "job",
                           "kind", job->kind ? job->kind : PQ_JOB_KIND_DEFAULT, "model", job->model, "status",
                           pq_job_state_name(job->state), "attempts", job->attempts, "created_at",
                           time_json(job->created_at), "finished_at", time_json(job->finished_at), "usage",
                           "prompt_tokens", (json_int_t)job->prompt_tokens, "completion_tokens",
                           (json_int_t)job->completion_tokens, "cost_micros", (json_int_t)job->cost_micros);
  if (!data) return NULL;
  if (job->error_code)
    json_object_set_new(data, "error", json_pack("{s:s,s:s?}", "code", job->error_code, "message", job->error_message));
  if (job->output && strlen(job->output) <= OUTPUT_MAX) {
    json_t *output = json_loads(job->output, JSON_DECODE_ANY, NULL);
    json_object_set_new(data, "output", output ? output : json_string(job->output));
  } else if (job->output) {
    json_object_set_new(data, "output_omitted", json_true()); /* GET /v1/jobs/{id} has it */
  }
  json_t *body = json_pack("{s:s,s:o,s:o}", "type", event, "timestamp", time_json(now), "data", data);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  return text;
}

static pq_err queue_delivery(pq__batch *b, const char *webhook_id, const pq_job *job, const char *url,
                             const char *event, const char *payload) {
  char id[PQ_UUID_LEN + 5] = "msg_";
  pq_uuid7(b->now, id + 4);
  pq_delivery d = {.id = id, .webhook_id = (char *)webhook_id, .owner = job->owner ? job->owner : "",
                   .job_id = (char *)job->id, .url = (char *)url, .event_type = (char *)event,
                   .payload = (char *)payload, .state = PQ_DELIVERY_PENDING, .next_at = b->now,
                   .created_at = b->now, .updated_at = b->now, .retry_from = b->now};
  pq_err result = b->c->ops->delivery_insert(b->c->wconn, &d);
  if (result == PQ_OK) b->deliveries_queued = true;
  return result;
}

/* The owner's secret for the URLs its jobs name, made on first use. */
static pq_err job_secret(pq__batch *b, const char *owner, pq_webhook **out) {
  pq_err result = b->c->ops->webhook_job_secret(b->c->wconn, owner, out);
  if (result != PQ_ERR_NOT_FOUND) return result;
  char id[PQ_UUID_LEN + 4] = "wh_", secret[PQ_WEBHOOK_SECRET_LEN + 1];
  pq_uuid7(b->now, id + 3);
  pq_webhook_secret_new(secret);
  pq_webhook w = {.id = id, .owner = (char *)owner, .secret = secret, .events = "*", .created_at = b->now};
  result = b->c->ops->webhook_insert(b->c->wconn, &w);
  if (result != PQ_OK && result != PQ_ERR_ALREADY_EXISTS) return result; /* exists: another coordinator's, just made */
  return b->c->ops->webhook_job_secret(b->c->wconn, owner, out);
}

pq_err pq__webhooks_job_ended(pq__batch *b, const pq_job *job) {
  pq_coord *c = b->c;
  if (job->parent_id) return PQ_OK; /* a step of a batch or council: its parent tells */
  const char *owner = job->owner ? job->owner : "";
  bool subscribed = !c->ops->single_coordinator || pq_strtab_find(&c->webhook_owners, owner) >= 0;
  const char *event = event_of(job);
  if ((!job->webhook_url && !subscribed) || !event) return PQ_OK;
  char *payload = payload_of(job, event, b->now);
  if (!payload) return PQ_ERR_NO_MEMORY;
  pq_err result = PQ_OK;
  if (job->webhook_url) {
    pq_webhook *secret = NULL;
    if ((result = job_secret(b, owner, &secret)) == PQ_OK)
      result = queue_delivery(b, secret->id, job, job->webhook_url, event, payload);
    pq_webhook_free(secret);
  }
  pq_webhook **subs = NULL;
  size_t n = 0;
  if (result == PQ_OK && subscribed) result = c->ops->webhook_list(c->wconn, owner, &subs, &n);
  for (size_t i = 0; result == PQ_OK && i < n; i++) {
    const pq_webhook *w = subs[i];
    if (!w->url || !pq_webhook_wants(w->events, event)) continue;
    if (w->key_id && (!job->key_id || strcmp(w->key_id, job->key_id) != 0)) continue;
    result = queue_delivery(b, w->id, job, w->url, event, payload);
  }
  pq_webhook_free_array(subs, n);
  free(payload);
  return result;
}

pq_err pq__webhooks_load(pq_coord *c) {
  pq_webhook **all = NULL;
  size_t n = 0;
  pq_err result = c->ops->webhook_list(c->wconn, NULL, &all, &n);
  for (size_t i = 0; result == PQ_OK && i < n; i++)
    if (all[i]->url && pq_strtab_intern(&c->webhook_owners, all[i]->owner) < 0) result = PQ_ERR_NO_MEMORY;
  pq_webhook_free_array(all, n);
  return result;
}

void pq__webhooks_wake(pq_coord *c) {
  pthread_mutex_lock(&c->webhook_mu);
  c->webhook_seq++;
  pthread_cond_broadcast(&c->webhook_cv);
  pthread_mutex_unlock(&c->webhook_mu);
}

/* ---- subscriptions ---- */

pq_err pq__run_webhook_add(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_webhook *w = op->in.webhook_add.webhook;
  pq_webhook **mine = NULL;
  size_t n = 0, subscriptions = 0;
  pq_err result = c->ops->webhook_list(c->wconn, w->owner, &mine, &n);
  for (size_t i = 0; i < n; i++) subscriptions += mine[i]->url != NULL;
  pq_webhook_free_array(mine, n);
  if (result != PQ_OK) return result;
  if (subscriptions >= MAX_SUBSCRIPTIONS) return PQ_ERR_QUEUE_QUOTA_EXCEEDED;
  char id[PQ_UUID_LEN + 4] = "wh_", secret[PQ_WEBHOOK_SECRET_LEN + 1];
  pq_uuid7(b->now, id + 3);
  pq_webhook_secret_new(secret);
  if (pq_set_str(&w->id, id) || pq_set_str(&w->secret, secret)) return PQ_ERR_NO_MEMORY;
  w->created_at = b->now;
  if ((result = c->ops->webhook_insert(c->wconn, w)) != PQ_OK) return result;
  /* kept even if the batch rolls back: one more look at the store, no harm */
  return pq_strtab_intern(&c->webhook_owners, w->owner ? w->owner : "") < 0 ? PQ_ERR_NO_MEMORY : PQ_OK;
}

pq_err pq__run_webhook_delete(pq__batch *b, pq_op *op) {
  pq_webhook *w = NULL;
  pq_err result = b->c->ops->webhook_get(b->c->wconn, op->in.webhook_delete.id, &w);
  if (result == PQ_OK && (!w->url || (op->in.webhook_delete.owner && strcmp(w->owner, op->in.webhook_delete.owner) != 0)))
    result = PQ_ERR_NOT_FOUND; /* the job secret is not a subscription; another's is not there for this caller */
  pq_webhook_free(w);
  return result == PQ_OK ? b->c->ops->webhook_delete(b->c->wconn, op->in.webhook_delete.id, b->now) : result;
}

pq_err pq__run_webhook_secret(pq__batch *b, pq_op *op) {
  const char *owner = op->in.webhook_secret.owner;
  pq_err result = op->in.webhook_secret.id ? b->c->ops->webhook_get(b->c->wconn, op->in.webhook_secret.id, &op->out.webhook)
                                           : job_secret(b, owner ? owner : "", &op->out.webhook);
  if (result == PQ_OK && op->in.webhook_secret.id && (!op->out.webhook->url || (owner && strcmp(op->out.webhook->owner, owner) != 0)))
    result = PQ_ERR_NOT_FOUND; /* the job secret has its own route; another's is not there for this caller */
  if (result != PQ_OK || !op->in.webhook_secret.rotate) return result;
  char secret[PQ_WEBHOOK_SECRET_LEN + 1];
  pq_webhook_secret_new(secret);
  if (pq_set_str(&op->out.webhook->secret, secret)) return PQ_ERR_NO_MEMORY;
  return b->c->ops->webhook_set_secret(b->c->wconn, op->out.webhook->id, secret);
}

/* ---- the sender's side ---- */

static int64_t retry_window(const pq_coord_config *cfg) {
  return cfg->webhook_retry_for_ms > 0 ? cfg->webhook_retry_for_ms : DEFAULT_RETRY_FOR_MS;
}

/* Would one more delivery of d's owner, or to d's URL (one receiver), pass a cap? Counting what
 * the sender holds and what this claim has taken (the first `taken` of due). */
static bool at_cap(const pq_op *op, pq_delivery **due, size_t taken, const pq_delivery *d) {
  int owner = 0, url = 0, per_owner = op->in.delivery_claim.per_owner, per_url = op->in.delivery_claim.per_host;
  for (size_t i = 0; i < op->in.delivery_claim.n_busy; i++) {
    owner += strcmp(op->in.delivery_claim.busy_owners[i], d->owner) == 0;
    url += strcmp(op->in.delivery_claim.busy_urls[i], d->url) == 0;
  }
  for (size_t i = 0; i < taken; i++) {
    owner += strcmp(due[i]->owner, d->owner) == 0;
    url += strcmp(due[i]->url, d->url) == 0;
  }
  return (per_owner > 0 && owner >= per_owner) || (per_url > 0 && url >= per_url);
}

/* The owners and URLs at their caps already, as JSON arrays for the store to skip (NULL: none),
 * so a capped one's backlog does not fill the rows a claim reads. */
static pq_err capped(const pq_op *op, char **owners, char **urls) {
  json_t *o = json_array(), *u = json_array();
  for (size_t i = 0; o && u && i < op->in.delivery_claim.n_busy; i++) {
    const char *owner = op->in.delivery_claim.busy_owners[i], *url = op->in.delivery_claim.busy_urls[i];
    int n_owner = 0, n_url = 0;
    for (size_t k = 0; k < op->in.delivery_claim.n_busy; k++) {
      n_owner += strcmp(op->in.delivery_claim.busy_owners[k], owner) == 0;
      n_url += strcmp(op->in.delivery_claim.busy_urls[k], url) == 0;
    }
    if (op->in.delivery_claim.per_owner > 0 && n_owner >= op->in.delivery_claim.per_owner)
      json_array_append_new(o, json_string(owner));
    if (op->in.delivery_claim.per_host > 0 && n_url >= op->in.delivery_claim.per_host)
      json_array_append_new(u, json_string(url));
  }
  *owners = o && json_array_size(o) ? json_dumps(o, JSON_COMPACT) : NULL;
  *urls = u && json_array_size(u) ? json_dumps(u, JSON_COMPACT) : NULL;
  bool failed = !o || !u || (json_array_size(o) && !*owners) || (json_array_size(u) && !*urls);
  json_decref(o);
  json_decref(u);
  return failed ? PQ_ERR_NO_MEMORY : PQ_OK;
}

pq_err pq__run_delivery_claim(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  size_t limit = op->in.delivery_claim.limit, looked = limit * 4 > 256 ? (limit > 256 ? limit : 256) : limit * 4;
  bool cap = op->in.delivery_claim.per_owner > 0 || op->in.delivery_claim.per_host > 0;
  pq_delivery **due = NULL;
  size_t n = 0, taken = 0;
  char *skip_owners = NULL, *skip_urls = NULL;
  pq_err result = capped(op, &skip_owners, &skip_urls);
  if (result == PQ_OK)
    result = c->ops->delivery_due(c->wconn, b->now, cap ? looked : limit, skip_owners, skip_urls, &due, &n);
  free(skip_owners);
  free(skip_urls);
  if (result != PQ_OK) return result;
  /* soonest first, but an owner or a URL at its cap is passed over: its deliveries wait, untouched */
  for (size_t i = 0; i < n && taken < limit; i++) {
    if (cap && at_cap(op, due, taken, due[i])) continue;
    pq_delivery *d = due[i];
    due[i] = due[taken];
    due[taken++] = d;
  }
  for (size_t i = taken; i < n; i++) pq_delivery_free(due[i]);
  /* what cannot go out any more ends here: its webhook is gone (no secret to sign with), or its
   * retries outlived the window (a sender that keeps dying mid-request) */
  size_t kept = 0, i = 0;
  for (; result == PQ_OK && i < taken; i++) {
    pq_delivery *d = due[i];
    bool gone = !d->secret, late = d->attempts > 0 && b->now > d->retry_from + retry_window(&c->cfg);
    d->updated_at = b->now;
    if (gone || late) {
      d->state = gone ? PQ_DELIVERY_CANCELLED : PQ_DELIVERY_FAILED;
      if (pq_set_str(&d->last_error, gone ? "its webhook was deleted" : "gave up: no answer within the retry window"))
        result = PQ_ERR_NO_MEMORY;
      if (result == PQ_OK) result = c->ops->delivery_update(c->wconn, d);
      pq_delivery_free(d);
      continue;
    }
    d->attempts++;
    d->next_at = b->now + op->in.delivery_claim.hold_ms; /* claimed again only if no result came by then */
    result = c->ops->delivery_update(c->wconn, d);
    due[kept++] = d;
  }
  for (; i < taken; i++) pq_delivery_free(due[i]); /* not looked at: a failure stopped the loop */
  if (result != PQ_OK) { /* the batch rolls back: nothing was claimed */
    for (size_t k = 0; k < kept; k++) pq_delivery_free(due[k]);
    kept = 0;
  }
  op->out.deliveries = due;
  op->out.n_deliveries = kept;
  return result;
}

static int64_t retry_delay(const pq_coord_config *cfg, int attempts) {
  int64_t d = cfg->webhook_retry_base_ms > 0 ? cfg->webhook_retry_base_ms : DEFAULT_RETRY_BASE_MS;
  for (int i = 1; i < attempts && d < MAX_RETRY_DELAY_MS; i++) d *= 4;
  return d < MAX_RETRY_DELAY_MS ? d : MAX_RETRY_DELAY_MS;
}

static pq_err one_delivery(pq__batch *b, pq_op *op, const char *id) {
  pq_delivery *d = NULL;
  pq_err result = b->c->ops->delivery_get(b->c->wconn, id, &d);
  if (result != PQ_OK) return result;
  free(d->secret); /* results and redeliveries hand back no secret */
  d->secret = NULL;
  if (!(op->out.deliveries = calloc(1, sizeof *op->out.deliveries))) {
    pq_delivery_free(d);
    return PQ_ERR_NO_MEMORY;
  }
  op->out.deliveries[0] = d;
  op->out.n_deliveries = 1;
  return PQ_OK;
}

pq_err pq__run_delivery_result(pq__batch *b, pq_op *op) {
  const pq_coord_config *cfg = &b->c->cfg;
  pq_err result = one_delivery(b, op, op->in.delivery_result.id);
  if (result != PQ_OK) return result;
  pq_delivery *d = op->out.deliveries[0];
  if (d->state != PQ_DELIVERY_PENDING) return PQ_OK; /* cancelled (its webhook deleted) while in flight */
  const char *error = op->in.delivery_result.error;
  d->last_status = op->in.delivery_result.status;
  d->updated_at = b->now;
  char gave_up[512];
  if (!error) {
    d->state = PQ_DELIVERY_DELIVERED;
  } else if (op->in.delivery_result.retryable) {
    int64_t delay = retry_delay(cfg, d->attempts);
    if (b->now + delay <= d->retry_from + retry_window(cfg)) {
      d->next_at = b->now + delay;
    } else {
      d->state = PQ_DELIVERY_FAILED;
      snprintf(gave_up, sizeof gave_up, "gave up after %d attempts: %s", d->attempts, error);
      error = gave_up;
    }
  } else {
    d->state = PQ_DELIVERY_FAILED;
  }
  if (pq_set_str(&d->last_error, error)) return PQ_ERR_NO_MEMORY;
  return b->c->ops->delivery_update(b->c->wconn, d);
}

pq_err pq__run_delivery_redeliver(pq__batch *b, pq_op *op) {
  pq_err result = one_delivery(b, op, op->in.delivery_redeliver.id);
  if (result != PQ_OK) return result;
  pq_delivery *d = op->out.deliveries[0];
  if (op->in.delivery_redeliver.owner && strcmp(d->owner, op->in.delivery_redeliver.owner) != 0)
    return PQ_ERR_NOT_FOUND;
  pq_webhook *w = NULL;
  if (d->state == PQ_DELIVERY_CANCELLED ||
      (result = b->c->ops->webhook_get(b->c->wconn, d->webhook_id, &w)) == PQ_ERR_NOT_FOUND)
    return PQ_ERR_INVALID_STATE; /* its webhook is gone: nothing could sign it */
  pq_webhook_free(w);
  if (result != PQ_OK) return result;
  /* one in flight now (pending, held by a claim) goes again when its claim ends, not twice at once */
  if (d->state != PQ_DELIVERY_PENDING || d->next_at <= b->now) d->next_at = b->now;
  d->state = PQ_DELIVERY_PENDING;
  d->updated_at = b->now;
  d->retry_from = b->now; /* a redelivery has a retry window of its own */
  if ((result = b->c->ops->delivery_update(b->c->wconn, d)) == PQ_OK) b->deliveries_queued = true;
  return result;
}
