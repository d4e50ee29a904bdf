/* Every route promptq serves. The dispatcher does routing, body limits, JSON
 * parsing and errors; a route's role says who may call it, and a dialect's
 * routes name their own error shape. */
#include "api/api.h"
#include "api/native/events.h"
#include "api/openai/openai.h"

#define JSON PQ_ROUTE_JSON
#define BODY PQ_ROUTE_BODY
#define ROUTE(m, pattern_, handler_, flags_, role_, name_)                                 \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_, .role = role_, \
   .name = name_}
#define DIALECT(m, pattern_, handler_, flags_, role_, name_, errors_)                      \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_, .role = role_, \
   .name = name_, .render_error = errors_}
#define OPENAI(m, pattern_, handler_, flags_, name_)                                       \
  {.method = m, .pattern = pattern_, .handler = handler_, .flags = flags_,                \
   .role = PQ_ROLE_CLIENT, .name = name_, .render_error = pq_openai_error}

const pq_route pq_api_routes[] = {
    ROUTE("GET", "/health", pq_api_health, 0, PQ_ROLE_PUBLIC, "health"),
    ROUTE("GET", "/ready", pq_api_ready, 0, PQ_ROLE_PUBLIC, "ready"),
    ROUTE("GET", "/metrics", pq_api_metrics, 0, PQ_ROLE_PUBLIC, "metrics"),

    /* identity */
    ROUTE("POST", "/v1/auth/token", pq_api_token, JSON | BODY | PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC, "auth.token"),
    ROUTE("POST", "/v1/keys", pq_api_keys_create, JSON, PQ_ROLE_CLIENT, "keys.create"),
    ROUTE("GET", "/v1/keys", pq_api_keys_list, 0, PQ_ROLE_CLIENT, "keys.list"),
    ROUTE("DELETE", "/v1/keys/{id}", pq_api_keys_revoke, 0, PQ_ROLE_CLIENT, "keys.revoke"),

    /* clients */
    ROUTE("POST", "/v1/jobs", pq_api_job_submit, JSON | BODY, PQ_ROLE_CLIENT, "jobs.submit"),
    ROUTE("GET", "/v1/jobs", pq_api_job_list, 0, PQ_ROLE_CLIENT, "jobs.list"),
    ROUTE("GET", "/v1/jobs/{id}", pq_api_job_get, 0, PQ_ROLE_CLIENT, "jobs.get"),
    ROUTE("POST", "/v1/jobs/{id}/cancel", pq_api_job_cancel, JSON, PQ_ROLE_CLIENT, "jobs.cancel"),
    ROUTE("GET", "/v1/jobs/{id}/events", pq_api_job_events, 0, PQ_ROLE_CLIENT, "jobs.events"),
    ROUTE("GET", "/v1/jobs/{id}/receipt", pq_api_job_receipt, 0, PQ_ROLE_CLIENT, "jobs.receipt"),
    ROUTE("GET", "/v1/receipts/key", pq_api_receipt_key, 0, PQ_ROLE_PUBLIC, "receipts.key"),

    /* workers */
    ROUTE("POST", "/v1/jobs/{id}/complete", pq_api_job_complete, JSON | BODY, PQ_ROLE_WORKER,
          "jobs.complete"),
    ROUTE("POST", "/v1/jobs/{id}/fail", pq_api_job_fail, JSON | BODY, PQ_ROLE_WORKER, "jobs.fail"),
    ROUTE("POST", "/v1/jobs/{id}/chunks", pq_api_job_chunks, JSON | BODY, PQ_ROLE_WORKER,
          "jobs.chunks"),
    ROUTE("POST", "/v1/workers", pq_api_worker_register, JSON | BODY, PQ_ROLE_WORKER,
          "workers.register"),
    ROUTE("GET", "/v1/workers/{id}", pq_api_worker_get, 0, PQ_ROLE_WORKER, "workers.get"),
    ROUTE("POST", "/v1/workers/{id}/heartbeat", pq_api_worker_heartbeat, JSON, PQ_ROLE_WORKER,
          "workers.heartbeat"),
    ROUTE("POST", "/v1/workers/{id}/lease", pq_api_worker_lease, JSON, PQ_ROLE_WORKER,
          "workers.lease"),

    /* the OpenAI-compatible front door, through the same queue */
    OPENAI("POST", "/v1/chat/completions", pq_openai_chat, JSON | BODY, "openai.chat"),
    OPENAI("POST", "/v1/embeddings", pq_openai_embeddings, JSON | BODY, "openai.embeddings"),
    OPENAI("GET", "/v1/models", pq_openai_models, 0, "openai.models"),
    OPENAI("GET", "/v1/models/{model}", pq_openai_model, 0, "openai.model"),

    /* seed 000: the asynchronous prompt queue */
    DIALECT("POST", "/auth", pq_d000_auth, JSON | BODY | PQ_ROUTE_JSON_TYPE | PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC,
            "d000.auth", pq_dialect_plain_error), /* a wrong password stays 401 */
    DIALECT("POST", "/jobs", pq_d000_submit, JSON | BODY | PQ_ROUTE_JSON_TYPE, PQ_ROLE_CLIENT, "d000.submit",
            pq_d000_error),
    DIALECT("GET", "/jobs/{job_id}", pq_d000_get, 0, PQ_ROLE_CLIENT, "d000.get", pq_d000_error),

    /* seed 001: the task API (without money); its /health is the native one */
    DIALECT("POST", "/api/task", pq_d001_task, JSON | BODY, PQ_ROLE_CLIENT, "d001.task", pq_dialect_plain_error),
    DIALECT("GET", "/api/task/{task_id}", pq_d001_get, 0, PQ_ROLE_CLIENT, "d001.get", pq_dialect_plain_error),
    DIALECT("GET", "/api/tasks", pq_d001_list, 0, PQ_ROLE_CLIENT, "d001.list", pq_dialect_plain_error),
    DIALECT("GET", "/api/stats", pq_d001_stats, 0, PQ_ROLE_CLIENT, "d001.stats", pq_dialect_plain_error),

    /* seed 003: the coordinator API; miners are workers */
    DIALECT("POST", "/v1/client/jobs", pq_d003_client_submit, JSON | BODY, PQ_ROLE_CLIENT, "d003.client.submit",
            pq_d003_error),
    DIALECT("GET", "/v1/client/jobs/{job_id}/status", pq_d003_client_status, 0, PQ_ROLE_CLIENT,
            "d003.client.status", pq_d003_error),
    DIALECT("GET", "/v1/client/jobs/{job_id}/receipts", pq_d003_client_receipts, 0, PQ_ROLE_CLIENT,
            "d003.client.receipts", pq_d003_error),
    DIALECT("POST", "/v1/miner/register", pq_d003_miner_register, JSON | BODY, PQ_ROLE_WORKER,
            "d003.miner.register", pq_d003_error),
    DIALECT("POST", "/v1/miner/heartbeat", pq_d003_miner_heartbeat, JSON | BODY, PQ_ROLE_WORKER,
            "d003.miner.heartbeat", pq_d003_error),
    DIALECT("GET", "/v1/miner/jobs", pq_d003_miner_jobs, 0, PQ_ROLE_WORKER, "d003.miner.jobs", pq_d003_error),
    DIALECT("POST", "/v1/miner/result", pq_d003_miner_result, JSON | BODY, PQ_ROLE_WORKER, "d003.miner.result",
            pq_d003_error),
    DIALECT("GET", "/v1/users/challenge", pq_d003_user_challenge, PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC,
            "d003.users.challenge", pq_d003_error),
    DIALECT("POST", "/v1/users/login", pq_d003_user_login, JSON | BODY | PQ_ROUTE_LOGIN, PQ_ROLE_PUBLIC,
            "d003.users.login", pq_d003_error),
    DIALECT("GET", "/v1/users/me", pq_d003_user_me, PQ_ROUTE_USER_CLASS, PQ_ROLE_CLIENT, "d003.users.me",
            pq_d003_error),
    DIALECT("GET", "/v1/users/{user_id}/balance", pq_d003_user_balance, PQ_ROUTE_USER_CLASS, PQ_ROLE_CLIENT,
            "d003.users.balance", pq_d003_error),
};

const size_t pq_api_n_routes = sizeof pq_api_routes / sizeof pq_api_routes[0];
