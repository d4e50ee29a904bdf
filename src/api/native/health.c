#include "api/api.h"
#include "base/clock.h"
#include "http/server.h"

static int64_t started_ms;

__attribute__((constructor)) static void note_start(void) { started_ms = pq_mono_ms(); }

pq_err pq_api_health(pq_req *req) {
  return pq_req_reply(req, 200,
                      /* "healthy" and "timestamp": the task API's shape (seed 001) */
                      json_pack("{s:s,s:o,s:s,s:I,s:I}", "status", "healthy", "timestamp",
                                pq_api_time(pq_now_ms()), "version", PQ_VERSION,
                                "uptime_s", (json_int_t)((pq_mono_ms() - started_ms) / 1000),
                                "waiting_requests", (json_int_t)pq_server_waiting(req->server)));
}

const pq_api_settings *pq_api_settings_of(pq_req *req) {
  static const pq_api_settings defaults = {.default_model = "echo", .challenge_ttl_ms = 300000};
  const pq_api_settings *s = pq_req_app(req);
  return s ? s : &defaults;
}

pq_err pq_api_ready(pq_req *req) {
  if (pq_req_server_stopping(req))
    return pq_req_fail(req, PQ_ERR_SHUTTING_DOWN, NULL, "the server is shutting down");
  if (!pq_coord_ready(req->coord))
    return pq_req_fail(req, PQ_ERR_STORE_FAILED, NULL, "the job store is not answering");
  return pq_req_reply(req, 200, json_pack("{s:s}", "status", "ready"));
}
