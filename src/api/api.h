/* The native /v1 API: handlers and the route table that names them. */
#ifndef PQ_API_API_H
#define PQ_API_API_H

#include <jansson.h>

#include "base/buf.h"
#include "model/job.h"
#include "http/request.h"
#include "http/router.h"

/* Settings for the handlers (pq_server_config.app). */
typedef struct pq_api_settings {
  const char *default_model; /* for dialects whose jobs name no model */
  int64_t challenge_ttl_ms;  /* wallet login: how long a challenge may be answered */
  const char *web_assets;    /* the npm packages the pages load (web/node_modules) */
  bool webhook_allow_private; /* webhook URLs may name loopback and private addresses */
} pq_api_settings;

const pq_api_settings *pq_api_settings_of(pq_req *req);

/* Every route, the native API's and each dialect's (api/routes.c); built
 * once, never freed. */
const pq_route *pq_api_routes(size_t *n);

/* health */
pq_err pq_api_health(pq_req *req);
pq_err pq_api_ready(pq_req *req);
pq_err pq_api_metrics(pq_req *req);

/* the API's description and the pages (api/native/docs.c) */
pq_err pq_api_openapi_json(pq_req *req);
pq_err pq_api_swagger_page(pq_req *req);
pq_err pq_api_redoc_page(pq_req *req);
pq_err pq_api_dashboard_page(pq_req *req);
pq_err pq_api_asset(pq_req *req);

/* jobs, for clients */
pq_err pq_api_job_submit(pq_req *req);
pq_err pq_api_job_submit_many(pq_req *req);
pq_err pq_api_job_get(pq_req *req);
pq_err pq_api_job_list(pq_req *req);
pq_err pq_api_job_cancel(pq_req *req);
pq_err pq_api_job_retry(pq_req *req);
/* the dashboard's live feed (api/native/dashboard.c) */
pq_err pq_api_dashboard_events(pq_req *req);

/* completion webhooks (api/native/webhooks.c) */
pq_err pq_api_webhooks_create(pq_req *req);
pq_err pq_api_webhooks_list(pq_req *req);
pq_err pq_api_webhooks_get(pq_req *req);
pq_err pq_api_webhooks_delete(pq_req *req);
pq_err pq_api_webhooks_secret(pq_req *req);
pq_err pq_api_webhooks_secret_rotate(pq_req *req);
pq_err pq_api_webhooks_rotate(pq_req *req);
pq_err pq_api_deliveries_list(pq_req *req);
pq_err pq_api_deliveries_get(pq_req *req);
pq_err pq_api_deliveries_redeliver(pq_req *req);

/* jobs, for workers */
pq_err pq_api_job_complete(pq_req *req);
pq_err pq_api_job_fail(pq_req *req);
/* A worker's result or failure, validated as the native API does for every
 * API that takes one, into req->op (borrowed strings; the caller runs it). */
pq_err pq_api_prepare_complete(pq_req *req, const char *job_id, const char *lease, json_t *output, json_t *usage,
                               const char *signature);
pq_err pq_api_prepare_fail(pq_req *req, const char *job_id, const char *lease, json_t *error, bool retryable);

/* identity */
pq_err pq_api_token(pq_req *req);
pq_err pq_api_keys_create(pq_req *req);
pq_err pq_api_keys_list(pq_req *req);
pq_err pq_api_keys_revoke(pq_req *req);
/* The owner new jobs get, and the filter for listings (NULL: all). */
const char *pq_api_owner(const pq_req *req);

/* Waits (parked) until job_id has ended, then calls answer with the job
 * (borrowed; NULL when wait_ms ran out or the server is stopping, and the
 * job keeps going) and ctx. For APIs that answer a job synchronously. The
 * helper keeps its own state in req->state: pass yours as ctx. */
typedef pq_err (*pq_job_answer_fn)(pq_req *req, const pq_job *job, void *ctx);
pq_err pq_api_answer_when_done(pq_req *req, const char *job_id, int64_t wait_ms, pq_job_answer_fn answer,
                               void *ctx);

/* money (api/native/money.c) */
/* {"micros": n, "usd": "0.000123"} (new reference) */
json_t *pq_api_money_json(int64_t micros);
pq_err pq_api_prices_list(pq_req *req);
pq_err pq_api_price_set(pq_req *req);
pq_err pq_api_credits(pq_req *req);
pq_err pq_api_credit_grant(pq_req *req);
pq_err pq_api_ledger(pq_req *req);
pq_err pq_api_budget_set(pq_req *req);
pq_err pq_api_budgets(pq_req *req);

/* reports (api/native/reports.c): the ledger's sums over [from, to), micros */
typedef struct pq_financials {
  int64_t subscription, micro_payment, other_payments; /* money in */
  int64_t usage;           /* credits spent on jobs */
  int64_t granted;         /* credits an operator gave */
  int64_t api_cost, worker_earnings; /* money out */
  int64_t income, expenses; /* the sums of the above */
} pq_financials;
pq_err pq_api_financials(pq_req *req, int64_t from, int64_t to, pq_financials *out);
pq_err pq_api_reports(pq_req *req);

/* receipts */
/* The signed receipt of a completed job (with its worker's signature when it
 * gave one), or NULL when this coordinator signs none. New reference. */
json_t *pq_api_receipt_for(pq_req *req, const pq_job *job);
pq_err pq_api_job_receipt(pq_req *req);
pq_err pq_api_receipt_key(pq_req *req);

/* workers */
/* The caller's worker (an admin's: any), else PQ_ERR_NOT_FOUND, not answered:
 * a worker id is bound to the user whose credential registered it. */
pq_err pq_api_their_worker(pq_req *req, const char *worker_id);
/* A lease's answer whose long-poll connection is gone goes nowhere: its
 * jobs are given back at once (attempt refunded) and true is returned. */
bool pq_api_release_if_gone(pq_req *req);
/* The models live workers serve now, as {model: created (unix s)} (new reference). */
pq_err pq_api_live_models(pq_req *req, json_t **out);
pq_err pq_api_worker_register(pq_req *req);
pq_err pq_api_worker_get(pq_req *req);
pq_err pq_api_worker_heartbeat(pq_req *req);
pq_err pq_api_worker_lease(pq_req *req);
/* Many results (completes and fails) of one worker in one request, each acknowledged on its own. */
pq_err pq_api_worker_results(pq_req *req);

/* job_json.c: the job's public shape (new reference; NULL on OOM) */
json_t *pq_api_job_json(const pq_job *job);
/* The same shape as JSON text appended to out, with the input and output
 * copied in as stored (JSON text the API wrote): nothing is parsed, which
 * is what listings and lookups answer with. 0, or -1 on OOM. */
int pq_api_job_text(const pq_job *job, pq_buf *out);
/* The shape without input and output (a listing's row). */
/* coord: a queued job's position in the real lease order (pq_api_add_position); NULL: none */
int pq_api_job_summary_text(pq_coord *coord, const pq_job *job, pq_buf *out);
/* A queued job's place in the order leases take jobs (1: next; fair turns counted): "position",
 * and "more_ahead" past 1,000. Nothing for other jobs. */
void pq_api_add_position(pq_coord *coord, const pq_job *job, json_t *obj);
/* Answers with one job (pq_api_job_text). */
pq_err pq_api_reply_job(pq_req *req, int status, const pq_job *job);
json_t *pq_api_time(int64_t ms); /* RFC 3339 string, or null for 0 */
/* A job's output as JSON (new reference; null when none), and as text for
 * APIs that answer text: a JSON string as it is, anything else as compact
 * JSON; NULL when none. free() it. */
json_t *pq_api_output_json(const pq_job *job);
char *pq_api_output_text(const pq_job *job);
/* A machine code for how a job ended without a result ("CANCELLED", ...). */
const char *pq_api_end_code(const pq_job *job);
/* Validates a submit body and builds a job (the caller owns it). */
pq_err pq_api_parse_submit(pq_req *req, json_t *body, pq_job **out);
/* The OpenAI door's way to name a job's webhook: metadata.webhook_url (a
 * string) becomes the native body's webhook_url, checked as any other. */
void pq_api_webhook_from_metadata(json_t *metadata, json_t *native);
/* A queued job no live worker can serve (its model, its requirements): why, for its status and events. */
bool pq_api_waiting_reason(pq_coord *coord, const pq_job *job, char *why, size_t len);
/* The same for one job of many in a request: its idempotency key is key
 * (NULL: none), never the request's Idempotency-Key header. */
pq_err pq_api_parse_submit_keyed(pq_req *req, json_t *body, const char *key, pq_job **out);
/* Validates a native job body (borrowed), makes the caller its owner and
 * queues it; resume runs once it is committed (the job in req->op.out.job). */
pq_err pq_api_submit_for_caller(pq_req *req, json_t *body, pq_handler_fn resume);
/* The same, with steps (built with pq_api_parse_submit) queued as its
 * children in its transaction; takes steps (an array of n_steps) in every case. */
pq_err pq_api_submit_with_steps(pq_req *req, json_t *body, pq_job **steps, size_t n_steps, pq_handler_fn resume);
/* The caller's job (an admin's: anyone's) by public id, or by integer number
 * as dialects show ids. PQ_ERR_NOT_FOUND, not answered (each API words it),
 * for a malformed id, a missing job or someone else's. *out: pq_job_free. */
pq_err pq_api_their_job(pq_req *req, const char *id, pq_job **out);
pq_err pq_api_their_job_by_number(pq_req *req, const char *number, pq_job **out);
/* The native API's answer for that: 404 "no job with id ...". */
pq_err pq_api_no_such_job(pq_req *req, const char *id);

#endif
