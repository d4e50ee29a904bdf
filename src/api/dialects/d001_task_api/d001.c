/* The task API (shared/seeds/001), its payments aside: GET /health (the
 * native one answers in its shape), POST /api/task run synchronously through
 * the queue, GET /api/task/{id}, GET /api/tasks, GET /api/stats and GET
 * /api/report/{daily|weekly|monthly}. `provider` names a model live workers
 * serve (default: --default-model). Costs come from the ledger (a model
 * without a price costs nothing); income from payments (none until the
 * payment routes exist). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
                                    (json_int_t)(job->prompt_tokens + job->completion_tokens), "cost",
                                    pq_micros_to_usd(job->cost_micros),
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
                             (json_int_t)(job->prompt_tokens + job->completion_tokens), "cost",
                             pq_micros_to_usd(job->cost_micros), "created_at", pq_api_time(job->created_at), "completed_at",
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

/* A user with a live subscription (issue 13 records them): none until payments exist. */
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
  /* the operator's books for an admin; a client sees only what its own tasks cost */
  pq_financials f = {0};
  int64_t spent = 0;
  if (req->caller.admin && (e = pq_api_financials(req, 0, INT64_MAX, &f))) return e;
  if (req->caller.admin) spent = f.usage;
  else {
    char account[PQ_UUID_LEN + 8];
    snprintf(account, sizeof account, "user:%s", pq_api_owner(req));
    spent = 0;
    pq_transfer **t = NULL;
    size_t n = 0;
    int64_t count = 0;
    if ((e = pq_coord_transfers(req->coord, account, 100000, 0, &t, &n, &count))) return e;
    for (size_t i = 0; i < n; i++)
      if (strcmp(t[i]->debit, account) == 0 && t[i]->state == PQ_TRANSFER_POSTED) spent += t[i]->posted;
    pq_transfer_free_array(t, n);
  }
  return pq_req_reply(req, 200,
                      json_pack("{s:{s:I,s:I,s:I,s:f},s:{s:I,s:i},s:{s:f,s:f,s:f}}", "tasks", "total",
                                (json_int_t)total, "completed", (json_int_t)completed, "total_tokens",
                                (json_int_t)tokens, "total_cost", pq_micros_to_usd(spent), "users", "total",
                                (json_int_t)n_users, "subscriptions", 0, "financials", "total_income",
                                pq_micros_to_usd(f.income), "total_expenses", pq_micros_to_usd(f.expenses), "profit",
                                pq_micros_to_usd(f.income - f.expenses)));
}

/* GET /api/report/{daily|weekly|monthly}: the current UTC day, the last seven
 * days (today included) or the current month, from the ledger. */
static pq_err d001_report(pq_req *req) {
  const char *type = pq_req_param(req, "report_type");
  int64_t now = pq_now_ms();
  time_t secs = (time_t)(now / 1000);
  struct tm day;
  gmtime_r(&secs, &day);
  day.tm_hour = day.tm_min = day.tm_sec = 0;
  if (type && strcmp(type, "weekly") == 0) day.tm_mday -= 6;
  else if (type && strcmp(type, "monthly") == 0) day.tm_mday = 1;
  else if (!type || strcmp(type, "daily") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s?}", "report_type", type),
                       "Invalid report type: use daily, weekly or monthly");
  int64_t from = (int64_t)timegm(&day) * 1000;
  gmtime_r(&(time_t){(time_t)(from / 1000)}, &day); /* normalised (a week may start last month) */
  char date[16];
  strftime(date, sizeof date, "%Y-%m-%d", &day);
  pq_financials f;
  pq_err e = pq_api_financials(req, from, now + 1, &f);
  if (e != PQ_OK) return e;
  return pq_req_reply(req, 200,
                      json_pack("{s:s,s:f,s:f,s:f,s:{s:{s:f,s:f},s:{s:f}}}", "date", date, "income",
                                pq_micros_to_usd(f.income), "expenses", pq_micros_to_usd(f.expenses), "profit",
                                pq_micros_to_usd(f.income - f.expenses), "breakdown", "income_breakdown",
                                "subscription", pq_micros_to_usd(f.subscription), "micro_payment",
                                pq_micros_to_usd(f.micro_payment), "expense_breakdown", "api_cost",
                                pq_micros_to_usd(f.api_cost)));
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
    /* the operator's books: an admin's */
    {.method = "GET", .pattern = "/api/report/{report_type}", .handler = d001_report, .role = PQ_ROLE_ADMIN,
     .name = "d001.report", .render_error = pq_dialect_plain_error},
};

/* its /health is the native one */
const pq_dialect pq_dialect_001 = {
    .name = "d001",
    .title = "the task API (shared/seeds/001), without its payment routes yet",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
};
