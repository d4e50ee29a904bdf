/* The AI council API (shared/seeds/002): POST /api/v1/requests queues a
 * council job, GET /api/v1/requests/{requestId} polls it, .../stream follows
 * its deliberation as Server-Sent Events (progress, chunk, complete, error),
 * .../transcript shows every round, and GET /api/v1/requests lists the
 * caller's councils with the document's pagination. Errors come in the
 * document's envelope with its codes. The council itself is the engine's
 * council kind (engine/kinds/council.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/council.h"
#include "api/dialect.h"
#include "api/native/events.h"
#include "base/clock.h"
#include "base/ids.h"
#include "engine/kinds/council.h"
#include "http/json_in.h"

#define LIST_DEFAULT 20
#define LIST_MAX 100

/* ---- the document's errors ---- */

/* The document's code and retryable flag for an engine error. */
static const char *code_002(pq_err err, bool *retryable) {
  *retryable = pq_err_retryable(err);
  switch (err) {
    case PQ_ERR_INVALID_REQUEST:
    case PQ_ERR_INVALID_JSON:
    case PQ_ERR_PAYLOAD_TOO_LARGE:
    case PQ_ERR_UNSUPPORTED_MEDIA_TYPE:
    case PQ_ERR_METHOD_NOT_ALLOWED:
    case PQ_ERR_URI_TOO_LONG:
    case PQ_ERR_HEADERS_TOO_LARGE:
    case PQ_ERR_IDEMPOTENCY_MISMATCH: return "INVALID_REQUEST";
    case PQ_ERR_UNAUTHORIZED:
    case PQ_ERR_FORBIDDEN: return "UNAUTHORIZED";
    case PQ_ERR_NOT_FOUND: return "NOT_FOUND";
    case PQ_ERR_RATE_LIMIT_EXCEEDED:
    case PQ_ERR_QUEUE_QUOTA_EXCEEDED:
    case PQ_ERR_STREAM_QUOTA_EXCEEDED: return "RATE_LIMIT_EXCEEDED";
    case PQ_ERR_TIMEOUT: return "TIMEOUT";
    case PQ_ERR_NO_MEMORY:
    case PQ_ERR_STORE_FAILED:
    case PQ_ERR_SHUTTING_DOWN:
    case PQ_ERR_UNAVAILABLE: return "SERVICE_UNAVAILABLE";
    case PQ_ERR_INTERNAL:
    case PQ_ERR_STALE: *retryable = true; return "INTERNAL_ERROR";
    /* what the document's table does not name (402 credits and budgets, 409 state) keeps its own
     * code and retryability: an INTERNAL_ERROR would have clients retry what cannot succeed */
    default: return pq_err_code(err);
  }
}

static json_t *envelope(const char *code, const char *message, json_t *details, bool retryable, const char *request_id) {
  char ts[PQ_TIME_BUF];
  return json_pack("{s:{s:s,s:s,s:o,s:b},s:s,s:s}", "error", "code", code, "message", message, "details",
                   details ? details : json_object(), "retryable", retryable, "requestId", request_id, "timestamp",
                   pq_format_time(pq_now_ms(), ts, sizeof ts));
}

static json_t *d002_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  (void)status;
  bool retryable;
  const char *code = code_002(err, &retryable);
  const char *id = pq_req_param(req, "requestId");
  json_t *d = details ? json_deep_copy(details) : NULL;
  return envelope(code, message, d, retryable, id && pq_is_uuid(id) ? id : req->request_id);
}

/* How a council that did not complete ended, in the document's words. */
static json_t *council_error(const pq_job *job) {
  json_t *st = pq_api_council_state(job);
  json_t *err = json_object_get(st, "error");
  const char *code = job->error_code ? job->error_code : pq_api_end_code(job);
  bool retryable = strcmp(code, "ALL_PROVIDERS_FAILED") == 0 || strcmp(code, "MINIMUM_QUORUM_NOT_MET") == 0 ||
                   strcmp(code, "TIMEOUT") == 0 || strcmp(code, "SERVICE_UNAVAILABLE") == 0;
  json_t *details = json_object_get(err, "details");
  json_t *out = json_pack("{s:s,s:s,s:o,s:b}", "code", code, "message",
                          job->error_message ? job->error_message : "the council did not finish", "details",
                          details ? json_incref(details) : json_object(), "retryable", retryable);
  json_decref(st);
  return out;
}

/* ---- the document's Request ---- */

static const char *status_002(const pq_job *job) {
  if (!pq_job_state_terminal(job->state)) return "processing";
  return job->state == PQ_JOB_COMPLETED ? "completed" : "failed";
}

static int64_t latency_ms(const pq_job *job) {
  return job->finished_at ? job->finished_at - job->created_at : pq_now_ms() - job->created_at;
}

static json_t *request_002(const pq_job *job) {
  json_t *r = json_pack("{s:s,s:s,s:o}", "requestId", job->id, "status", status_002(job), "createdAt",
                        pq_api_time(job->created_at));
  if (!pq_job_state_terminal(job->state)) return r;
  if (job->state == PQ_JOB_COMPLETED) {
    json_t *st = pq_api_council_state(job);
    json_object_set(r, "consensusDecision", json_object_get(st, "decision"));
    json_object_set(r, "confidence", json_object_get(st, "confidence"));
    json_object_set(r, "agreementLevel", json_object_get(st, "agreementLevel"));
    json_object_set(r, "degraded", json_object_get(st, "degraded"));
    json_object_set(r, "fallback", json_object_get(st, "fallback"));
    json_decref(st);
  } else {
    json_object_set_new(r, "error", council_error(job));
  }
  json_object_set_new(r, "cost", json_real(pq_api_council_cost_usd(job)));
  json_object_set_new(r, "latency", json_integer(latency_ms(job)));
  json_object_set_new(r, "completedAt", pq_api_time(job->finished_at));
  return r;
}

/* The caller's council by the path's requestId, or the document's 404. */
static pq_err their_council(pq_req *req, pq_job **out) {
  const char *id = pq_req_param(req, "requestId");
  pq_err e = pq_api_their_job(req, id, out);
  if (e == PQ_OK && !pq_api_is_council(*out)) {
    pq_job_free(*out);
    *out = NULL;
    e = PQ_ERR_NOT_FOUND;
  }
  if (e == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s?}", "requestId", id), "Request %s not found", id ? id : "");
  return e;
}

/* ---- POST /api/v1/requests ---- */

static pq_err submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  const pq_job *job = req->op.out.job; /* a replayed Idempotency-Key: the council as it is now */
  return pq_req_reply(req, 202, json_pack("{s:s,s:s,s:o}", "requestId", job->id, "status", status_002(job),
                                          "createdAt", pq_api_time(job->created_at)));
}

/* The document's body onto the council kind's input. */
static pq_err d002_submit(pq_req *req) {
  static const char *const fields[] = {"query", "sessionId", "streaming", "synthesisStrategy", "council", "webhookUrl",
                                       NULL};
  static const char *const strategy_fields[] = {"type", "config", NULL};
  static const char *const council_fields[] = {"members", "synthesizers", "quorum", "memberTimeoutMs", "maxTokens",
                                               "maxTotalTokens", NULL};
  static const char *const config_fields[] = {"maxRounds", "agreementThreshold", "fallbackStrategy", "embeddingModel",
                                              "earlyTerminationEnabled", "negotiationMode", NULL};
  const char *type = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the request", fields))) return e;
  json_t *input = json_object();
  json_t *v;
  if ((v = json_object_get(req->body, "query"))) json_object_set(input, "query", v);
  if ((v = json_object_get(req->body, "sessionId"))) json_object_set(input, "sessionId", v);
  if ((v = json_object_get(req->body, "streaming"))) json_object_set(input, "streaming", v);
  json_t *strategy = json_object_get(req->body, "synthesisStrategy"), *council = json_object_get(req->body, "council");
  if (strategy && !json_is_null(strategy)) {
    json_t *config = json_object_get(strategy, "config");
    if (!json_is_object(strategy) || (e = pq_json_only(req, strategy, "synthesisStrategy", strategy_fields)) ||
        (e = pq_json_string(req, strategy, "type", false, 64, &type)))
      goto bad_strategy;
    if (type && strcmp(type, "iterative-consensus") != 0) {
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST,
                      json_pack("{s:s,s:s,s:[s]}", "field", "synthesisStrategy.type", "type", type, "allowed",
                                "iterative-consensus"),
                      "synthesisStrategy.type must be 'iterative-consensus'");
      goto out;
    }
    if (config && !json_is_null(config)) {
      if (!json_is_object(config)) {
        e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "synthesisStrategy.config"),
                        "'synthesisStrategy.config' must be an object");
        goto out;
      }
      if ((e = pq_json_only(req, config, "synthesisStrategy.config", config_fields))) goto out;
      json_object_update(input, config);
    }
  }
  if (council && !json_is_null(council)) {
    if (!json_is_object(council)) {
      e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "council"), "'council' must be an object");
      goto out;
    }
    if ((e = pq_json_only(req, council, "council", council_fields))) goto out;
    json_object_update(input, council);
  }
  json_t *native = json_pack("{s:s,s:O}", "kind", PQ_COUNCIL_KIND, "input", input);
  json_t *hook = json_object_get(req->body, "webhookUrl"); /* the document's planned webhooks: promptq's */
  if (native && hook && !json_is_null(hook)) json_object_set(native, "webhook_url", hook);
  e = pq_api_submit_for_caller(req, native, submitted);
  json_decref(native);
  goto out;
bad_strategy:
  if (e == PQ_OK || !json_is_object(strategy))
    e = pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "synthesisStrategy"),
                    "'synthesisStrategy' must be an object");
out:
  json_decref(input);
  return e;
}

/* ---- GET /api/v1/requests/{requestId} and its transcript ---- */

static pq_err d002_get(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_council(req, &job);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, request_002(job));
  pq_job_free(job);
  return e;
}

static pq_err d002_transcript(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_council(req, &job);
  if (e != PQ_OK) return e;
  json_t *t = pq_api_council_transcript(job);
  json_object_set_new(t, "status", json_string(status_002(job)));
  json_object_set_new(t, "latency", json_integer(latency_ms(job)));
  if (pq_job_state_terminal(job->state) && job->state != PQ_JOB_COMPLETED)
    json_object_set_new(t, "error", council_error(job));
  json_t *receipt = job->state == PQ_JOB_COMPLETED ? pq_api_receipt_for(req, job) : NULL;
  if (receipt) json_object_set_new(t, "receipt", receipt);
  e = pq_req_reply(req, 200, t);
  pq_job_free(job);
  return e;
}

/* ---- GET /api/v1/requests ---- */

static pq_err d002_list(pq_req *req) {
  pq_job_filter f = {.state = -1, .model = PQ_COUNCIL_KIND, .limit = LIST_DEFAULT, .summary = true,
                     .owner = req->caller.admin ? NULL : pq_api_owner(req)};
  pq_err e;
  if ((e = pq_query_int(req, "limit", 1, LIST_MAX, &f.limit)) || (e = pq_query_int(req, "offset", 0, INT64_MAX / 2, &f.offset)))
    return e;
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = 0;
  if ((e = pq_coord_list_jobs(req->coord, &f, &jobs, &n, &total))) return e;
  json_t *data = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *row = json_pack("{s:s,s:s,s:o,s:o}", "requestId", jobs[i]->id, "status", status_002(jobs[i]), "createdAt",
                            pq_api_time(jobs[i]->created_at), "completedAt", pq_api_time(jobs[i]->finished_at));
    if (pq_job_state_terminal(jobs[i]->state)) json_object_set_new(row, "latency", json_integer(latency_ms(jobs[i])));
    json_array_append_new(data, row);
  }
  pq_job_free_array(jobs, n);
  return pq_req_reply(req, 200,
                      json_pack("{s:o,s:{s:I,s:I,s:I,s:b}}", "data", data, "pagination", "limit", (json_int_t)f.limit,
                                "offset", (json_int_t)f.offset, "total", (json_int_t)total, "hasMore",
                                f.offset + (int64_t)n < total));
}

/* ---- GET /api/v1/requests/{requestId}/stream ---- */

static int stream_emit(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job, const pq_job_event *ev) {
  pq_event_stream *s = ctx;
  switch (kind) {
    case PQ_EV_QUEUED:
    case PQ_EV_LEASED: return 0; /* the council's own progress events say it better */
    case PQ_EV_CHUNK: {
      json_t *data = json_loads(ev->data, 0, NULL);
      return pq_event_stream_sse(s, ev->kind && strcmp(ev->kind, "progress") == 0 ? "progress" : "chunk", id, data ? data : json_object());
    }
    case PQ_EV_FINAL:
      if (job->state == PQ_JOB_COMPLETED) {
        json_t *done = request_002(job);
        json_object_del(done, "createdAt");
        json_object_del(done, "completedAt");
        return pq_event_stream_sse(s, "complete", id, done);
      } else {
        char ts[PQ_TIME_BUF];
        return pq_event_stream_sse(s, "error", id,
                   json_pack("{s:o,s:s,s:s}", "error", council_error(job), "requestId", job->id, "timestamp",
                             pq_format_time(pq_now_ms(), ts, sizeof ts)));
      }
  }
  return 0;
}

static pq_err d002_stream(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_council(req, &job);
  if (e != PQ_OK) return e;
  char id[PQ_UUID_LEN + 1];
  snprintf(id, sizeof id, "%s", job->id);
  bool ended = pq_job_state_terminal(job->state), seen_all = false;
  pq_job_free(job);
  const char *last = pq_req_header(req, "Last-Event-ID");
  if (!last) last = pq_req_query(req, "lastEventId");
  if (!last) last = pq_req_query(req, "last_event_id");
  if (ended && (e = pq_event_stream_seen_all(req, id, last, &seen_all)) != PQ_OK) return e;
  if (seen_all) return pq_req_reply(req, 204, NULL); /* an EventSource that saw the end: stop */
  return pq_event_stream_start(req, id, last, "text/event-stream", stream_emit, NULL, NULL);
}

#define ROUTE(m, p, h, f, n) \
  {.method = m, .pattern = p, .handler = h, .flags = f, .role = PQ_ROLE_CLIENT, .name = n, .render_error = d002_error}

static const pq_route routes[] = {
    ROUTE("POST", "/api/v1/requests", d002_submit, PQ_ROUTE_JSON | PQ_ROUTE_BODY, "d002.submit"),
    ROUTE("GET", "/api/v1/requests", d002_list, 0, "d002.list"),
    ROUTE("GET", "/api/v1/requests/{requestId}", d002_get, 0, "d002.get"),
    ROUTE("GET", "/api/v1/requests/{requestId}/stream", d002_stream, 0, "d002.stream"),
    ROUTE("GET", "/api/v1/requests/{requestId}/transcript", d002_transcript, 0, "d002.transcript"),
};

const pq_dialect pq_dialect_002 = {
    .name = "d002",
    .title = "the AI council API (shared/seeds/002)",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
};
