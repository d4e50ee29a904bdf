/* Financial reports from the ledger and the jobs (docs/money.md):
 * GET /v1/reports (any range; by model, user or day; JSON or CSV) and the
 * sums document 001's report and stats show (pq_api_financials). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "base/buf.h"
#include "base/clock.h"
#include "http/json_in.h"

#define DAY_MS INT64_C(86400000)
#define DEFAULT_RANGE_MS (30 * DAY_MS)

/* ---- the ledger's sums over a period ---- */

static void add_kind(void *ctx, const char *kind, int64_t amount) {
  pq_financials *f = ctx;
  if (strcmp(kind, "subscription") == 0) f->subscription += amount;
  else if (strcmp(kind, "micro_payment") == 0) f->micro_payment += amount;
  else if (strcmp(kind, "payment") == 0) f->other_payments += amount;
  else if (strcmp(kind, "cost") == 0) f->api_cost += amount;
  else if (strcmp(kind, "hold") == 0 || strcmp(kind, "charge") == 0) f->usage += amount;
  else if (strcmp(kind, "grant") == 0) f->granted += amount;
  else if (strcmp(kind, "earning") == 0) f->worker_earnings += amount;
}

pq_err pq_api_financials(pq_req *req, int64_t from, int64_t to, pq_financials *out) {
  memset(out, 0, sizeof *out);
  pq_err e = pq_coord_ledger_sums(req->coord, from, to, add_kind, out);
  out->income = out->subscription + out->micro_payment + out->other_payments;
  out->expenses = out->api_cost + out->worker_earnings;
  return e;
}

/* ---- GET /v1/reports ---- */

/* "2026-12-01" (that day's start, UTC) or RFC 3339 ("2026-12-01T10:00:00Z"), or epoch ms. */
static int parse_when(const char *text, int64_t *ms) {
  struct tm tm = {0};
  int y, mo, d, h = 0, mi = 0, s = 0;
  char tail = 0;
  if (sscanf(text, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3 ||
      (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) == 6 && text[strlen(text) - 1] == 'Z')) {
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
  }
  char *end;
  long long v = strtoll(text, &end, 10);
  if (*text && !*end && v >= 0) {
    *ms = v;
    return 0;
  }
  return -1;
}

typedef struct {
  json_t *rows;
  pq_buf csv;
  bool as_csv;
  pq_report_row total;
  int failed;
} report_ctx;

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(pq_buf *b, const char *v) {
  if (!strpbrk(v, ",\"\r\n")) {
    pq_buf_printf(b, "%s", v);
    return;
  }
  pq_buf_add(b, "\"", 1);
  for (const char *p = v; *p; p++) pq_buf_add(b, p, 1), *p == '"' ? (void)pq_buf_add(b, "\"", 1) : (void)0;
  pq_buf_add(b, "\"", 1);
}

static void add_row(void *ctx, const pq_report_row *row) {
  report_ctx *r = ctx;
  r->total.jobs += row->jobs;
  r->total.completed += row->completed;
  r->total.prompt_tokens += row->prompt_tokens;
  r->total.completion_tokens += row->completion_tokens;
  r->total.cost_micros += row->cost_micros;
  if (r->as_csv) {
    char usd[32];
    csv_field(&r->csv, row->key);
    r->failed |= pq_buf_printf(&r->csv, ",%lld,%lld,%lld,%lld,%s\r\n", (long long)row->jobs, (long long)row->completed,
                               (long long)row->prompt_tokens, (long long)row->completion_tokens,
                               pq_micros_format(row->cost_micros, usd, sizeof usd));
    return;
  }
  json_array_append_new(r->rows, json_pack("{s:s,s:I,s:I,s:I,s:I,s:o}", "key", row->key, "jobs", (json_int_t)row->jobs,
                                           "completed", (json_int_t)row->completed, "prompt_tokens",
                                           (json_int_t)row->prompt_tokens, "completion_tokens",
                                           (json_int_t)row->completion_tokens, "cost",
                                           pq_api_money_json(row->cost_micros)));
}

pq_err pq_api_reports(pq_req *req) {
  int64_t to = pq_now_ms(), from = to - DEFAULT_RANGE_MS;
  const char *from_text = pq_req_query(req, "from"), *to_text = pq_req_query(req, "to");
  const char *by_text = pq_req_query(req, "by"), *format = pq_req_query(req, "format");
  if (from_text && parse_when(from_text, &from))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "from"),
                       "'from' must be a date (2026-12-01), an RFC 3339 time in UTC or epoch milliseconds");
  if (to_text && parse_when(to_text, &to))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "to"),
                       "'to' must be a date (2026-12-01), an RFC 3339 time in UTC or epoch milliseconds");
  if (to <= from)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "to"), "'to' must come after 'from'");
  pq_report_by by = PQ_REPORT_BY_MODEL;
  if (by_text && strcmp(by_text, "user") == 0) by = PQ_REPORT_BY_USER;
  else if (by_text && strcmp(by_text, "day") == 0) by = PQ_REPORT_BY_DAY;
  else if (by_text && strcmp(by_text, "model") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "by"), "'by' must be model, user or day");
  bool csv = format && strcmp(format, "csv") == 0;
  if (format && !csv && strcmp(format, "json") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "format"), "'format' must be json or csv");
  report_ctx r = {.rows = json_array(), .as_csv = csv};
  if (csv) pq_buf_printf(&r.csv, "%s,jobs,completed,prompt_tokens,completion_tokens,cost_usd\r\n",
                         by == PQ_REPORT_BY_MODEL ? "model" : by == PQ_REPORT_BY_USER ? "user_id" : "day");
  pq_financials fin;
  pq_err e = pq_coord_job_report(req->coord, from, to, by, add_row, &r);
  if (e == PQ_OK) e = pq_api_financials(req, from, to, &fin);
  if (e == PQ_OK && r.failed) e = PQ_ERR_NO_MEMORY;
  if (e != PQ_OK) {
    json_decref(r.rows);
    pq_buf_free(&r.csv);
    return e;
  }
  if (csv) {
    json_decref(r.rows);
    return pq_req_reply_text(req, 200, "text/csv; charset=utf-8", r.csv.data); /* it takes the text */
  }
  return pq_req_reply(
      req, 200,
      json_pack("{s:o,s:o,s:s,s:o,s:{s:I,s:I,s:I,s:I,s:o},s:{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}}", "from", pq_api_time(from),
                "to", pq_api_time(to), "by", by == PQ_REPORT_BY_MODEL ? "model" : by == PQ_REPORT_BY_USER ? "user" : "day",
                "rows", r.rows, "totals", "jobs", (json_int_t)r.total.jobs, "completed", (json_int_t)r.total.completed,
                "prompt_tokens", (json_int_t)r.total.prompt_tokens, "completion_tokens",
                (json_int_t)r.total.completion_tokens, "cost", pq_api_money_json(r.total.cost_micros), "ledger",
                "income", pq_api_money_json(fin.income), "subscription", pq_api_money_json(fin.subscription),
                "micro_payment", pq_api_money_json(fin.micro_payment), "usage", pq_api_money_json(fin.usage),
                "granted", pq_api_money_json(fin.granted), "api_cost", pq_api_money_json(fin.api_cost),
                "expenses", pq_api_money_json(fin.expenses), "profit", pq_api_money_json(fin.income - fin.expenses)));
}
