/* Every route promptq serves: the native API's (below) and each dialect's
 * (its descriptor, in its own folder). The dispatcher does routing, body
 * limits, JSON parsing and errors; a route's role says who may call it, and
 * a dialect's routes name their own error shape. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/dialect.h"
#include "api/native/events.h"
#include "api/openapi.h"

extern const pq_dialect pq_dialect_openai, pq_dialect_000, pq_dialect_001, pq_dialect_002, pq_dialect_003;

/* Adding a dialect: a folder under api/dialects/ and one line here. */
const pq_dialect *const pq_dialects[] = {
    &pq_dialect_openai,
    &pq_dialect_000,
    &pq_dialect_001,
    &pq_dialect_002,
    &pq_dialect_003,
    NULL,
};

#define JSON PQ_ROUTE_JSON
#define BODY PQ_ROUTE_BODY
#define ROUTE(m, pattern_, handler_, flags_, role_, name_)                                 \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_, .role = role_, \
   .name = name_}

static const pq_route native_routes[] = {
    ROUTE("GET", "/health", pq_api_health, 0, PQ_ROLE_PUBLIC, "health"),
    ROUTE("GET", "/ready", pq_api_ready, 0, PQ_ROLE_PUBLIC, "ready"),
    ROUTE("GET", "/metrics", pq_api_metrics, PQ_ROUTE_METRICS, PQ_ROLE_PUBLIC, "metrics"),

    /* the API's description and the pages; under /api/ too, where document 003 shows them */
    ROUTE("GET", "/openapi.json", pq_api_openapi_json, 0, PQ_ROLE_PUBLIC, "docs.openapi"),
    ROUTE("GET", "/docs", pq_api_swagger_page, 0, PQ_ROLE_PUBLIC, "docs.swagger"),
    ROUTE("GET", "/redoc", pq_api_redoc_page, 0, PQ_ROLE_PUBLIC, "docs.redoc"),
    ROUTE("GET", "/assets/{name}", pq_api_asset, 0, PQ_ROLE_PUBLIC, "docs.assets"),
    ROUTE("GET", "/api/openapi.json", pq_api_openapi_json, 0, PQ_ROLE_PUBLIC, "docs.api.openapi"),
    ROUTE("GET", "/api/docs", pq_api_swagger_page, 0, PQ_ROLE_PUBLIC, "docs.api.swagger"),
    ROUTE("GET", "/api/redoc", pq_api_redoc_page, 0, PQ_ROLE_PUBLIC, "docs.api.redoc"),
    ROUTE("GET", "/api/assets/{name}", pq_api_asset, 0, PQ_ROLE_PUBLIC, "docs.api.assets"),
    ROUTE("GET", "/", pq_api_dashboard_page, 0, PQ_ROLE_PUBLIC, "dashboard.root"),
    ROUTE("GET", "/dashboard", pq_api_dashboard_page, 0, PQ_ROLE_PUBLIC, "dashboard.page"),

    /* identity */
    ROUTE("POST", "/v1/auth/token", pq_api_token, JSON | BODY | PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC, "auth.token"),
    ROUTE("POST", "/v1/keys", pq_api_keys_create, JSON, PQ_ROLE_CLIENT, "keys.create"),
    ROUTE("GET", "/v1/keys", pq_api_keys_list, 0, PQ_ROLE_CLIENT, "keys.list"),
    ROUTE("DELETE", "/v1/keys/{id}", pq_api_keys_revoke, 0, PQ_ROLE_CLIENT, "keys.revoke"),

    /* completion webhooks */
    ROUTE("POST", "/v1/webhooks", pq_api_webhooks_create, JSON | BODY, PQ_ROLE_CLIENT, "webhooks.create"),
    ROUTE("GET", "/v1/webhooks", pq_api_webhooks_list, 0, PQ_ROLE_CLIENT, "webhooks.list"),
    ROUTE("GET", "/v1/webhooks/{id}", pq_api_webhooks_get, 0, PQ_ROLE_CLIENT, "webhooks.get"),
    ROUTE("DELETE", "/v1/webhooks/{id}", pq_api_webhooks_delete, 0, PQ_ROLE_CLIENT, "webhooks.delete"),
    ROUTE("POST", "/v1/webhooks/{id}/rotate", pq_api_webhooks_rotate, JSON, PQ_ROLE_CLIENT, "webhooks.rotate"),
    ROUTE("GET", "/v1/webhook-secret", pq_api_webhooks_secret, 0, PQ_ROLE_CLIENT, "webhooks.secret"),
    ROUTE("POST", "/v1/webhook-secret/rotate", pq_api_webhooks_secret_rotate, JSON, PQ_ROLE_CLIENT,
          "webhooks.secret.rotate"),
    ROUTE("GET", "/v1/webhook-deliveries", pq_api_deliveries_list, 0, PQ_ROLE_CLIENT, "webhooks.deliveries.list"),
    ROUTE("GET", "/v1/webhook-deliveries/{id}", pq_api_deliveries_get, 0, PQ_ROLE_CLIENT, "webhooks.deliveries.get"),
    ROUTE("POST", "/v1/webhook-deliveries/{id}/redeliver", pq_api_deliveries_redeliver, JSON, PQ_ROLE_CLIENT,
          "webhooks.deliveries.redeliver"),

    /* clients */
    ROUTE("POST", "/v1/jobs", pq_api_job_submit, JSON | BODY, PQ_ROLE_CLIENT, "jobs.submit"),
    ROUTE("POST", "/v1/jobs/batch", pq_api_job_submit_many, JSON | BODY, PQ_ROLE_CLIENT, "jobs.submit_many"),
    ROUTE("GET", "/v1/jobs", pq_api_job_list, 0, PQ_ROLE_CLIENT, "jobs.list"),
    ROUTE("GET", "/v1/jobs/{id}", pq_api_job_get, 0, PQ_ROLE_CLIENT, "jobs.get"),
    ROUTE("POST", "/v1/jobs/{id}/cancel", pq_api_job_cancel, JSON, PQ_ROLE_CLIENT, "jobs.cancel"),
    ROUTE("POST", "/v1/jobs/{id}/retry", pq_api_job_retry, JSON, PQ_ROLE_ADMIN, "jobs.retry"),
    ROUTE("GET", "/v1/jobs/{id}/events", pq_api_job_events, 0, PQ_ROLE_CLIENT, "jobs.events"),
    ROUTE("GET", "/v1/dashboard/events", pq_api_dashboard_events, 0, PQ_ROLE_CLIENT, "dashboard.events"),
    ROUTE("GET", "/v1/jobs/{id}/receipt", pq_api_job_receipt, 0, PQ_ROLE_CLIENT, "jobs.receipt"),
    ROUTE("GET", "/v1/receipts/key", pq_api_receipt_key, 0, PQ_ROLE_PUBLIC, "receipts.key"),

    /* money */
    ROUTE("GET", "/v1/prices", pq_api_prices_list, 0, PQ_ROLE_CLIENT, "prices.list"),
    ROUTE("PUT", "/v1/prices/{model}", pq_api_price_set, JSON | BODY, PQ_ROLE_ADMIN, "prices.set"),
    ROUTE("GET", "/v1/credits", pq_api_credits, 0, PQ_ROLE_CLIENT, "credits.get"),
    ROUTE("POST", "/v1/credits/grant", pq_api_credit_grant, JSON | BODY, PQ_ROLE_ADMIN, "credits.grant"),
    ROUTE("GET", "/v1/ledger", pq_api_ledger, 0, PQ_ROLE_CLIENT, "ledger.list"),
    ROUTE("GET", "/v1/reports", pq_api_reports, 0, PQ_ROLE_ADMIN, "reports.get"),
    ROUTE("PUT", "/v1/budgets", pq_api_budget_set, JSON | BODY, PQ_ROLE_ADMIN, "budgets.set"),
    ROUTE("GET", "/v1/budgets", pq_api_budgets, 0, PQ_ROLE_CLIENT, "budgets.list"),

    /* workers */
    ROUTE("POST", "/v1/jobs/{id}/complete", pq_api_job_complete, JSON | BODY | PQ_ROUTE_RESULT, PQ_ROLE_WORKER,
          "jobs.complete"),
    ROUTE("POST", "/v1/jobs/{id}/fail", pq_api_job_fail, JSON | BODY | PQ_ROUTE_RESULT, PQ_ROLE_WORKER, "jobs.fail"),
    ROUTE("POST", "/v1/jobs/{id}/chunks", pq_api_job_chunks, JSON | BODY, PQ_ROLE_WORKER,
          "jobs.chunks"),
    ROUTE("POST", "/v1/workers", pq_api_worker_register, JSON | BODY, PQ_ROLE_WORKER,
          "workers.register"),
    ROUTE("GET", "/v1/workers/{id}", pq_api_worker_get, 0, PQ_ROLE_WORKER, "workers.get"),
    ROUTE("POST", "/v1/workers/{id}/heartbeat", pq_api_worker_heartbeat, JSON, PQ_ROLE_WORKER,
          "workers.heartbeat"),
    ROUTE("POST", "/v1/workers/{id}/results", pq_api_worker_results, JSON | BODY | PQ_ROUTE_RESULT, PQ_ROLE_WORKER,
          "workers.results"),
    ROUTE("POST", "/v1/workers/{id}/lease", pq_api_worker_lease, JSON, PQ_ROLE_WORKER,
          "workers.lease"),

};


static pq_route *all_routes;
static const char **doc_names; /* each route's entry in the schema files: an alias shares its route's */
static size_t n_all_routes;

/* The alias of a dialect route under its prefix (strings made once, kept). */
static bool add_alias(const pq_dialect *d, const pq_route *r, pq_route *out) {
  size_t dn = strlen(d->name);
  char *pattern = malloc(strlen(d->alias_prefix) + strlen(r->pattern) + 1);
  char *name = malloc(strlen(r->name) + 5);
  if (!pattern || !name) {
    free(pattern);
    free(name);
    return false;
  }
  sprintf(pattern, "%s%s", d->alias_prefix, r->pattern);
  if (strncmp(r->name, d->name, dn) == 0) sprintf(name, "%.*s.api%s", (int)dn, r->name, r->name + dn);
  else sprintf(name, "%s.api", r->name);
  *out = *r;
  out->pattern = pattern;
  out->name = name;
  return true;
}

static void build_table(void) {
  size_t n = sizeof native_routes / sizeof native_routes[0];
  for (size_t d = 0; pq_dialects[d]; d++) n += pq_dialects[d]->n_routes * (pq_dialects[d]->alias_prefix ? 2 : 1);
  if (!(all_routes = calloc(n, sizeof *all_routes)) || !(doc_names = calloc(n, sizeof *doc_names))) return;
  memcpy(all_routes, native_routes, sizeof native_routes);
  n_all_routes = sizeof native_routes / sizeof native_routes[0];
  for (size_t d = 0; pq_dialects[d]; d++) {
    memcpy(all_routes + n_all_routes, pq_dialects[d]->routes, pq_dialects[d]->n_routes * sizeof *all_routes);
    n_all_routes += pq_dialects[d]->n_routes;
    for (size_t i = 0; pq_dialects[d]->alias_prefix && i < pq_dialects[d]->n_routes; i++)
      if (add_alias(pq_dialects[d], &pq_dialects[d]->routes[i], &all_routes[n_all_routes]))
        doc_names[n_all_routes++] = pq_dialects[d]->routes[i].name;
  }
  for (size_t i = 0; i < n_all_routes; i++) {
    all_routes[i].doc = pq_api_route_doc(doc_names[i] ? doc_names[i] : all_routes[i].name);
    all_routes[i].schema_defs = pq_api_schema_defs();
  }
}

const pq_route *pq_api_routes(size_t *n) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, build_table); /* built once, then only read */
  *n = n_all_routes;
  return all_routes;
}
