/* Every route the native API serves. The dispatcher does routing, body limits,
 * JSON parsing and errors; a route's role says who may call it. */
#include "api/api.h"
#include "api/events.h"

#define JSON PQ_ROUTE_JSON
#define BODY PQ_ROUTE_BODY

const pq_route pq_api_routes[] = {
    {"GET", "/health", pq_api_health, 0, PQ_ROLE_PUBLIC, "health"},
    {"GET", "/ready", pq_api_ready, 0, PQ_ROLE_PUBLIC, "ready"},

    {"POST", "/v1/jobs", pq_api_job_submit, JSON | BODY, PQ_ROLE_CLIENT, "jobs.submit"},
    {"GET", "/v1/jobs", pq_api_job_list, 0, PQ_ROLE_CLIENT, "jobs.list"},
    {"GET", "/v1/jobs/{id}", pq_api_job_get, 0, PQ_ROLE_CLIENT, "jobs.get"},
    {"POST", "/v1/jobs/{id}/cancel", pq_api_job_cancel, JSON, PQ_ROLE_CLIENT, "jobs.cancel"},
    {"GET", "/v1/jobs/{id}/events", pq_api_job_events, 0, PQ_ROLE_CLIENT, "jobs.events"},

    {"POST", "/v1/jobs/{id}/complete", pq_api_job_complete, JSON | BODY, PQ_ROLE_WORKER,
     "jobs.complete"},
    {"POST", "/v1/jobs/{id}/fail", pq_api_job_fail, JSON | BODY, PQ_ROLE_WORKER, "jobs.fail"},
    {"POST", "/v1/jobs/{id}/chunks", pq_api_job_chunks, JSON | BODY, PQ_ROLE_WORKER, "jobs.chunks"},

    {"POST", "/v1/workers", pq_api_worker_register, JSON | BODY, PQ_ROLE_WORKER,
     "workers.register"},
    {"GET", "/v1/workers/{id}", pq_api_worker_get, 0, PQ_ROLE_WORKER, "workers.get"},
    {"POST", "/v1/workers/{id}/heartbeat", pq_api_worker_heartbeat, JSON, PQ_ROLE_WORKER,
     "workers.heartbeat"},
    {"POST", "/v1/workers/{id}/lease", pq_api_worker_lease, JSON, PQ_ROLE_WORKER, "workers.lease"},
};

const size_t pq_api_n_routes = sizeof pq_api_routes / sizeof pq_api_routes[0];
