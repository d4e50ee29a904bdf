/* /v1/webhooks: completion webhooks (docs/webhooks.md). A user subscribes
 * endpoints to its jobs' ends (or, from an API key, to that key's jobs'),
 * reads the secret that signs the URLs single jobs name, reads the delivery
 * log, and sends a delivery again. Everyone sees only their own; an admin
 * may read and redeliver anyone's by id. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/json_in.h"
#include "webhook/address.h"

#define EVENTS_MAX 512

static const char *const EVENT_NAMES[] = {
#define PQ__EVENT_NAME(name, str) str,
    PQ_WEBHOOK_EVENT_MAP(PQ__EVENT_NAME)
#undef PQ__EVENT_NAME
    NULL,
};

static json_t *events_json(const char *events) {
  json_t *list = json_array();
  for (size_t i = 0; EVENT_NAMES[i]; i++)
    if (pq_webhook_wants(events, EVENT_NAMES[i])) json_array_append_new(list, json_string(EVENT_NAMES[i]));
  return list;
}

static json_t *webhook_json(const pq_webhook *w, bool with_secret) {
  json_t *obj = json_pack("{s:s,s:s,s:s?,s:o,s:s?,s:o}", "id", w->id, "object", "webhook", "url", w->url, "events",
                          events_json(w->events), "key_id", w->key_id, "created_at", pq_api_time(w->created_at));
  if (obj && with_secret) json_object_set_new(obj, "secret", json_string(w->secret));
  return obj;
}

static bool theirs(const pq_req *req, const char *owner) {
  return req->caller.admin || strcmp(owner ? owner : "", req->caller.user_id) == 0;
}

/* ---- subscriptions ---- */

static pq_err webhook_made(pq_req *req) {
  pq_webhook *w = req->state;
  pq_err e = req->op.out.result;
  if (e == PQ_ERR_QUEUE_QUOTA_EXCEEDED)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "url"),
                       "you have 20 webhook subscriptions already: delete one first");
  return e == PQ_OK ? pq_req_reply(req, 201, webhook_json(w, true)) : e;
}

static void free_webhook_state(pq_req *req) { pq_webhook_free(req->state); }

pq_err pq_api_webhooks_create(pq_req *req) {
  static const char *const fields[] = {"url", "events", "key_only", NULL};
  const char *url = NULL;
  bool key_only = false;
  json_t *events = json_object_get(req->body, "events");
  char why[320], list[EVENTS_MAX] = "";
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the webhook", fields)) ||
      (e = pq_json_string(req, req->body, "url", true, 2048, &url)) ||
      (e = pq_json_bool(req, req->body, "key_only", &key_only)))
    return e;
  if (pq_webhook_url_check(url, pq_api_settings_of(req)->webhook_allow_private, why, sizeof why) != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "url"), "%s", why);
  if (key_only && !req->caller.key_id[0])
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "key_only"),
                       "'key_only' subscribes the API key you call with: call with one");
  size_t i;
  json_t *ev;
  json_array_foreach(events, i, ev) {
    const char *name = json_string_value(ev);
    bool known = false;
    for (size_t k = 0; name && EVENT_NAMES[k] && !known; k++) known = strcmp(EVENT_NAMES[k], name) == 0;
    if (!known)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "events"),
                         "'events' must list event types: job.completed, job.failed, job.dead, job.expired, "
                         "job.cancelled, batch.finished");
    if (!pq_webhook_wants(list, name) && strlen(list) + strlen(name) + 2 < sizeof list) {
      if (*list) strcat(list, ",");
      strcat(list, name);
    }
  }
  pq_webhook *w = calloc(1, sizeof *w);
  if (!w) return PQ_ERR_NO_MEMORY;
  req->state = w;
  req->state_free = free_webhook_state;
  if (!(w->owner = strdup(pq_api_owner(req))) || !(w->url = strdup(url)) ||
      !(w->events = strdup(*list ? list : "*")) || (key_only && !(w->key_id = strdup(req->caller.key_id))))
    return PQ_ERR_NO_MEMORY;
  req->op.kind = PQ_OP_WEBHOOK_ADD;
  req->op.in.webhook_add.webhook = w;
  pq_req_run_op(req, webhook_made);
  return PQ_OK;
}

pq_err pq_api_webhooks_list(pq_req *req) {
  pq_webhook **all = NULL;
  size_t n = 0;
  pq_err e = pq_coord_webhooks(req->coord, pq_api_owner(req), &all, &n);
  if (e != PQ_OK) return e;
  json_t *data = json_array();
  for (size_t i = 0; i < n; i++)
    if (all[i]->url) json_array_append_new(data, webhook_json(all[i], false)); /* the job secret has its own route */
  pq_webhook_free_array(all, n);
  return pq_req_reply(req, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static pq_err no_webhook(pq_req *req, const char *id) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s?}", "id", id), "no webhook with id '%s'", id ? id : "");
}

pq_err pq_api_webhooks_get(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_webhook *w = NULL;
  pq_err e = pq_coord_webhook_get(req->coord, id, &w);
  if (e == PQ_OK && (!w->url || !theirs(req, w->owner))) e = PQ_ERR_NOT_FOUND;
  if (e == PQ_OK) e = pq_req_reply(req, 200, webhook_json(w, true));
  else if (e == PQ_ERR_NOT_FOUND) e = no_webhook(req, id);
  pq_webhook_free(w);
  return e;
}

static pq_err webhook_deleted(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_err e = req->op.out.result;
  if (e == PQ_ERR_NOT_FOUND) return no_webhook(req, id);
  return e == PQ_OK ? pq_req_reply(req, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "webhook", "deleted", 1))
                    : e;
}

pq_err pq_api_webhooks_delete(pq_req *req) {
  req->op.kind = PQ_OP_WEBHOOK_DELETE;
  req->op.in.webhook_delete.id = pq_req_param(req, "id");
  req->op.in.webhook_delete.owner = req->caller.admin ? NULL : pq_api_owner(req);
  pq_req_run_op(req, webhook_deleted);
  return PQ_OK;
}

static pq_err secret_read(pq_req *req) {
  const pq_webhook *w = req->op.out.webhook;
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:s}", "object", "webhook_secret", "secret", w->secret, "usage",
                                          "signs the deliveries to the webhook_url your jobs name"));
}

pq_err pq_api_webhooks_secret(pq_req *req) {
  req->op.kind = PQ_OP_WEBHOOK_SECRET;
  req->op.in.webhook_secret.owner = pq_api_owner(req);
  pq_req_run_op(req, secret_read);
  return PQ_OK;
}

pq_err pq_api_webhooks_secret_rotate(pq_req *req) {
  req->op.kind = PQ_OP_WEBHOOK_SECRET;
  req->op.in.webhook_secret.owner = pq_api_owner(req);
  req->op.in.webhook_secret.rotate = true;
  pq_req_run_op(req, secret_read);
  return PQ_OK;
}

static pq_err rotated(pq_req *req) {
  if (req->op.out.result == PQ_ERR_NOT_FOUND) return no_webhook(req, pq_req_param(req, "id"));
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, webhook_json(req->op.out.webhook, true));
}

pq_err pq_api_webhooks_rotate(pq_req *req) {
  req->op.kind = PQ_OP_WEBHOOK_SECRET;
  req->op.in.webhook_secret.id = pq_req_param(req, "id");
  req->op.in.webhook_secret.owner = req->caller.admin ? NULL : pq_api_owner(req);
  req->op.in.webhook_secret.rotate = true;
  pq_req_run_op(req, rotated);
  return PQ_OK;
}

/* ---- the delivery log ---- */

static json_t *delivery_json(const pq_delivery *d) {
  json_t *payload = json_loads(d->payload, 0, NULL);
  return json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s,s:s,s:i,s:o,s:o,s:o,s:o,s:s?,s:o}", "id", d->id, "object",
                   "webhook_delivery", "webhook_id", d->webhook_id, "job_id", d->job_id, "url", d->url, "event_type",
                   d->event_type, "status", pq_delivery_state_name(d->state), "attempts", d->attempts, "next_attempt_at",
                   d->state == PQ_DELIVERY_PENDING ? pq_api_time(d->next_at) : json_null(), "created_at",
                   pq_api_time(d->created_at), "updated_at", pq_api_time(d->updated_at), "last_status",
                   d->last_status ? json_integer(d->last_status) : json_null(), "last_error", d->last_error,
                   "payload", payload ? payload : json_null());
}

pq_err pq_api_deliveries_list(pq_req *req) {
  int64_t limit = 50;
  int state = -1;
  const char *status = pq_req_query(req, "status"), *job_id = pq_req_query(req, "job_id");
  pq_err e = pq_query_int(req, "limit", 1, 1000, &limit);
  if (e != PQ_OK) return e;
  if (status && (state = pq_delivery_state_parse(status)) < 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "parameter", "status"),
                       "unknown status '%s' (pending, delivered, failed, cancelled)", status);
  pq_delivery **all = NULL;
  size_t n = 0;
  if ((e = pq_coord_deliveries(req->coord, pq_api_owner(req), job_id, state, limit, &all, &n)) != PQ_OK) return e;
  json_t *data = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(data, delivery_json(all[i]));
  pq_delivery_free_array(all, n);
  return pq_req_reply(req, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static pq_err no_delivery(pq_req *req, const char *id) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s?}", "id", id), "no delivery with id '%s'", id ? id : "");
}

pq_err pq_api_deliveries_get(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_delivery *d = NULL;
  pq_err e = pq_coord_delivery_get(req->coord, id, &d);
  if (e == PQ_OK && !theirs(req, d->owner)) e = PQ_ERR_NOT_FOUND;
  if (e == PQ_OK) e = pq_req_reply(req, 200, delivery_json(d));
  else if (e == PQ_ERR_NOT_FOUND) e = no_delivery(req, id);
  pq_delivery_free(d);
  return e;
}

static pq_err redelivered(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_err e = req->op.out.result;
  if (e == PQ_ERR_NOT_FOUND) return no_delivery(req, id);
  if (e == PQ_ERR_INVALID_STATE)
    return pq_req_fail(req, e, json_pack("{s:s}", "id", id), "delivery '%s' was cancelled: its webhook is deleted", id);
  if (e != PQ_OK) return e;
  return pq_req_reply(req, 202, delivery_json(req->op.out.deliveries[0]));
}

pq_err pq_api_deliveries_redeliver(pq_req *req) {
  req->op.kind = PQ_OP_DELIVERY_REDELIVER;
  req->op.in.delivery_redeliver.id = pq_req_param(req, "id");
  req->op.in.delivery_redeliver.owner = req->caller.admin ? NULL : pq_api_owner(req);
  pq_req_run_op(req, redelivered);
  return PQ_OK;
}
