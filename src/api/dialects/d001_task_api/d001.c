/* The task API (shared/seeds/001), the part without money: GET /health (the
 * native one answers in its shape), POST /api/task run synchronously through
 * the queue, GET /api/task/{id}, GET /api/tasks, GET /api/stats. `provider`
 * names a model live workers serve (default: --default-model). Costs and
 * financials are zero until prices exist. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/dialect.h"
#include "http/json_in.h"

#define TASK_WAIT_MS (10 * 60 * 1000)

/* pending | processing | completed | failed, as the document names them */
static const pq_status_words task_words = {"pending", "processing", "completed", "failed"};
#define task_status(s) pq_status_word(&task_words, (s))

static pq_err task_answer(pq_req *req, const pq_job *job, void *ctx) {
  (void)ctx;
  if (!job) return pq_req_fail(req, PQ_ERR_TIMEOUT, NULL, "the task did not finish in time");
  if (job->state != PQ_JOB_COMPLETED)
    return pq_req_fail(req, PQ_ERR_INTERNAL, NULL, "the task failed: %s",
                       job->error_message ? job->error_message : pq_api_end_code(job));
  char *text = pq_api_output_text(job);
  pq_err e = pq_req_reply(req, 200,
                          json_pack("{s:I,s:s,s:I,s:f,s:s}", "task_id", (json_int_t)job->number, "response",
                                    text ? text : "", "tokens_used",
                                    (json_int_t)(job->prompt_tokens + job->completion_tokens), "cost", 0.0,
                                    "provider", job->model));
  free(text);
  return e;
}

static pq_err task_submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_api_answer_when_done(req, req->op.out.job->id, TASK_WAIT_MS, task_answer, NULL);
}

static pq_err d001_task(pq_req *req) {
  const char *prompt = NULL, *provider = NULL, *user_id = NULL;
  pq_err e;
  if ((e = pq_json_string(req, req->body, "prompt", false, 0, &prompt)) ||
      (e = pq_json_string(req, req->body, "provider", false, 128, &provider)) ||
      (e = pq_json_string(req, req->body, "user_id", false, 256, &user_id)))
    return e;
  if (!prompt || !*prompt) return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "Missing prompt");
  if (!provider || !*provider) provider = pq_api_settings_of(req)->default_model;
  if (!pq_coord_model_served(req->coord, provider))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "Unknown provider '%s': no worker serves it now",
                       provider);
  json_t *native = json_pack("{s:s,s:s}", "model", provider, "prompt", prompt);
  e = pq_api_submit_for_caller(req, native, task_submitted);
  json_decref(native);
  return e;
}

static pq_err d001_get(pq_req *req) {
  const char *param = pq_req_param(req, "task_id");
  pq_job *job = NULL;
  pq_err e = pq_api_their_job_by_number(req, param, &job);
  if (e != PQ_OK) {
    return e == PQ_ERR_NOT_FOUND ? pq_req_fail(req, e, NULL, "Task not found") : e;
  }
  json_t *input = json_loads(job->input, 0, NULL);
  char *text = pq_api_output_text(job);
  e = pq_req_reply(req, 200,
                   json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:I,s:f,s:o,s:o}", "id", (json_int_t)job->number, "status",
                             task_status(job->state), "provider", job->model, "input",
                             json_string_value(json_object_get(input, "prompt")), "output", text, "tokens_used",
                             (json_int_t)(job->prompt_tokens + job->completion_tokens), "cost", 0.0,
                             "created_at", pq_api_time(job->created_at), "completed_at",
                             pq_api_time(job->finished_at)));
  free(text);
  json_decref(input);
  pq_job_free(job);
  return e;
}

static pq_err d001_list(pq_req *req) {
  pq_job_filter f = {.state = -1, .limit = 50, .owner = req->caller.admin ? NULL : pq_api_owner(req), .summary = true};
  pq_err e = pq_query_int(req, "limit", 1, 1000, &f.limit);
  if (e != PQ_OK) return e;
  const char *status = pq_req_query(req, "status");
  if (status) {
    if ((f.state = pq_status_parse(&task_words, status)) < 0)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "status must be pending, processing, completed or failed");
  }
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t total = 0;
  if ((e = pq_coord_list_jobs(req->coord, &f, &jobs, &n, &total))) return e;
  json_t *tasks = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(tasks, json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)jobs[i]->number, "status",
                                           task_status(jobs[i]->state), "provider", jobs[i]->model, "created_at",
                                           pq_api_time(jobs[i]->created_at)));
  pq_job_free_array(jobs, n);
  return pq_req_reply(req, 200, json_pack("{s:o}", "tasks", tasks));
}

static pq_err d001_stats(pq_req *req) {
  int64_t total = 0, completed = 0, tokens = 0;
  pq_err e = pq_coord_job_totals(req->coord, req->caller.admin ? NULL : pq_api_owner(req), &total, &completed, &tokens);
  if (e != PQ_OK) return e;
  size_t n_users = 1; /* a client sees itself: how many others there are is the operator's business */
  if (req->caller.admin) {
    pq_user **users = NULL;
    if ((e = pq_coord_list_users(req->coord, &users, &n_users))) return e;
    for (size_t i = 0; i < n_users; i++) pq_user_free(users[i]);
    free(users);
  }
  return pq_req_reply(req, 200,
                      json_pack("{s:{s:I,s:I,s:I,s:f},s:{s:I,s:i},s:{s:f,s:f,s:f}}", "tasks", "total",
                                (json_int_t)total, "completed", (json_int_t)completed, "total_tokens",
                                (json_int_t)tokens, "total_cost", 0.0, "users", "total", (json_int_t)n_users,
                                "subscriptions", 0, "financials", "total_income", 0.0, "total_expenses", 0.0,
                                "profit", 0.0));
}

static const pq_route routes[] = {
    {.method = "POST", .pattern = "/api/task", .handler = d001_task, .flags = PQ_ROUTE_JSON | PQ_ROUTE_BODY,
     .role = PQ_ROLE_CLIENT, .name = "d001.task", .render_error = pq_dialect_plain_error},
    {.method = "GET", .pattern = "/api/task/{task_id}", .handler = d001_get, .role = PQ_ROLE_CLIENT, .name = "d001.get",
     .render_error = pq_dialect_plain_error},
    {.method = "GET", .pattern = "/api/tasks", .handler = d001_list, .role = PQ_ROLE_CLIENT, .name = "d001.list",
     .render_error = pq_dialect_plain_error},
    {.method = "GET", .pattern = "/api/stats", .handler = d001_stats, .role = PQ_ROLE_CLIENT, .name = "d001.stats",
     .render_error = pq_dialect_plain_error},
};

/* its /health is the native one */
const pq_dialect pq_dialect_001 = {
    .name = "d001",
    .title = "the task API (shared/seeds/001), without money yet",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
};
