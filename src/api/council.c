/* What every door that submits a council shares: a session's earlier
 * questions and decisions (its owner's only), and a council's public
 * shapes: its result, its error and its transcript. */
#include "api/council.h"

#include <stdlib.h>
#include <string.h>

#include "engine/kinds/council.h"

#define SESSION_SCAN 200 /* the owner's newest councils looked at for a session's turns */
#define BYTES_PER_TOKEN 4

/* A council that cannot reach its quorum with the workers live now is refused
 * at once (503, retryable), not failed minutes later. */
static pq_err check_served(pq_req *req, json_t *input) {
  json_t *members = json_object_get(input, "members"), *served = json_array(), *m;
  int64_t quorum = json_integer_value(json_object_get(input, "quorum"));
  size_t i;
  json_array_foreach(members, i, m)
    if (pq_coord_model_served(req->coord, json_string_value(m))) json_array_append(served, m);
  if ((int64_t)json_array_size(served) >= quorum) {
    json_decref(served);
    return PQ_OK;
  }
  size_t n = json_array_size(served);
  return pq_req_fail(req, PQ_ERR_UNAVAILABLE,
                     json_pack("{s:O,s:o,s:I}", "members", members, "served", served, "quorum", (json_int_t)quorum),
                     "only %zu of the council's %zu members are served by a live worker now; its quorum is %lld", n,
                     json_array_size(members), (long long)quorum);
}

pq_err pq_api_council_prepare(pq_req *req, json_t *input) {
  pq_err e = check_served(req, input);
  if (e != PQ_OK) return e;
  const char *session = json_string_value(json_object_get(input, "sessionId"));
  int budget = pq_council_settings()->context_tokens * BYTES_PER_TOKEN;
  if (!session || budget <= 0) return PQ_OK;
  pq_job_filter f = {.state = PQ_JOB_COMPLETED, .model = PQ_COUNCIL_KIND, .owner = pq_api_owner(req),
                     .limit = SESSION_SCAN};
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = 0;
  e = pq_coord_list_jobs(req->coord, &f, &jobs, &n, &total);
  if (e != PQ_OK) return e;
  json_t *turns = json_array(); /* newest first, then turned around */
  for (size_t i = 0; i < n && budget > 0; i++) {
    json_t *in = json_loads(jobs[i]->input, 0, NULL), *out = jobs[i]->output ? json_loads(jobs[i]->output, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(in, "sessionId"));
    const char *q = json_string_value(json_object_get(in, "query"));
    const char *d = json_string_value(json_object_get(out, "decision"));
    if (s && q && d && strcmp(s, session) == 0) {
      int cost = (int)(strlen(q) + strlen(d));
      if (cost <= budget) json_array_insert_new(turns, 0, json_pack("{s:s,s:s}", "query", q, "decision", d));
      budget -= cost;
    }
    json_decref(in);
    json_decref(out);
  }
  pq_job_free_array(jobs, n);
  if (json_array_size(turns) > 0) json_object_set_new(input, "context", turns);
  else json_decref(turns);
  return PQ_OK;
}

bool pq_api_is_council(const pq_job *job) { return job->kind && strcmp(job->kind, PQ_COUNCIL_KIND) == 0; }

double pq_api_council_cost_usd(const pq_job *job) { return pq_micros_to_usd(job->cost_micros); }

json_t *pq_api_council_state(const pq_job *job) {
  json_t *st = job->output ? json_loads(job->output, 0, NULL) : NULL;
  return st ? st : json_object();
}

json_t *pq_api_council_transcript(const pq_job *job) {
  json_t *in = json_loads(job->input, 0, NULL), *st = pq_api_council_state(job);
  if (!in) in = json_object();
  const char *query = json_string_value(json_object_get(in, "query"));
  json_t *config = json_deep_copy(in);
  json_object_del(config, "query");
  json_object_del(config, "context");
  json_t *t = json_pack("{s:s,s:s?,s:o,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:O*,s:f,s:o,s:o}", "requestId", job->id,
                        "query", query, "config", config, "context", json_object_get(in, "context"), "rounds",
                        json_object_get(st, "rounds"), "synthesis", json_object_get(st, "synthesis"), "decision",
                        json_object_get(st, "decision"), "confidence", json_object_get(st, "confidence"),
                        "agreementLevel", json_object_get(st, "agreementLevel"), "degraded",
                        json_object_get(st, "degraded"), "fallback", json_object_get(st, "fallback"), "error",
                        json_object_get(st, "error"), "usage", json_object_get(st, "usage"), "cost",
                        pq_api_council_cost_usd(job), "createdAt", pq_api_time(job->created_at), "completedAt",
                        pq_api_time(job->finished_at));
  json_decref(in);
  json_decref(st);
  return t;
}
