/* Money over HTTP (model/money.h): prices, a user's credit and ledger, and
 * an operator's grants. Amounts go out as both exact micros and 6-decimal
 * USD strings, and come in as USD decimals (a string such as "10.50", or a
 * number). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/ids.h"
#include "http/json_in.h"

#define LEDGER_PAGE 50
#define LEDGER_PAGE_MAX 500

json_t *pq_api_money_json(int64_t micros) {
  char usd[32];
  return json_pack("{s:I,s:s}", "micros", (json_int_t)micros, "usd", pq_micros_format(micros, usd, sizeof usd));
}

/* A USD amount in field key of obj (required when required): into *micros. */
static pq_err usd_field(pq_req *req, json_t *obj, const char *key, bool required, int64_t *micros) {
  json_t *v = json_object_get(obj, key);
  char text[64];
  if (!v || json_is_null(v)) {
    if (!required) return PQ_OK;
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", key), "'%s' is required", key);
  }
  if (json_is_string(v)) snprintf(text, sizeof text, "%s", json_string_value(v));
  else if (json_is_integer(v)) snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) snprintf(text, sizeof text, "%.6f", json_real_value(v));
  else text[0] = '\0';
  /* a number with more than 6 decimals is refused, not rounded (0.0000004 is not free) */
  bool exact = !json_is_real(v) || pq_micros_parse(text, micros) != 0 ||
               fabs((double)*micros / 1e6 - json_real_value(v)) < 1e-9 * (1 + fabs(json_real_value(v)));
  if (!exact || (json_is_string(v) && json_string_length(v) >= sizeof text) || pq_micros_parse(text, micros) != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", key),
                       "'%s' must be a USD amount from 0 to 1000000000 with at most 6 decimals, such as \"10.50\"",
                       key);
  return PQ_OK;
}

static json_t *price_json(const pq_price *p) {
  return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}", "model", p->model, "input_per_mtok", pq_api_money_json(p->input_per_mtok),
                   "output_per_mtok", pq_api_money_json(p->output_per_mtok), "cost_input_per_mtok",
                   pq_api_money_json(p->cost_input_per_mtok), "cost_output_per_mtok",
                   pq_api_money_json(p->cost_output_per_mtok), "updated_at", pq_api_time(p->updated_at));
}

/* ---- GET /v1/prices, PUT /v1/prices/{model} ---- */

pq_err pq_api_prices_list(pq_req *req) {
  pq_price **prices = NULL;
  size_t n = 0;
  pq_err e = pq_coord_prices(req->coord, &prices, &n);
  if (e != PQ_OK) return e;
  json_t *data = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(data, price_json(prices[i]));
  pq_price_free_array(prices, n);
  return pq_req_reply(req, 200, json_pack("{s:o}", "data", data));
}

static pq_err price_set(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, price_json(req->state));
}

pq_err pq_api_price_set(pq_req *req) {
  static const char *const fields[] = {"input", "output", "cost_input", "cost_output", NULL};
  const char *model = pq_req_param(req, "model");
  pq_price *p = pq_req_alloc(req, sizeof *p);
  if (!p) return PQ_ERR_NO_MEMORY;
  memset(p, 0, sizeof *p);
  pq_err e;
  if (!model || !*model || strlen(model) > 256)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "model"), "a price needs a model");
  if ((e = pq_json_only(req, req->body, "the price", fields)) ||
      (e = usd_field(req, req->body, "input", true, &p->input_per_mtok)) ||
      (e = usd_field(req, req->body, "output", true, &p->output_per_mtok)) ||
      (e = usd_field(req, req->body, "cost_input", false, &p->cost_input_per_mtok)) ||
      (e = usd_field(req, req->body, "cost_output", false, &p->cost_output_per_mtok)))
    return e;
  p->model = pq_req_strndup(req, model, strlen(model));
  p->updated_at = pq_now_ms();
  req->state = p;
  req->op.kind = PQ_OP_PRICE_SET;
  req->op.in.price_set.price = p;
  pq_req_run_op(req, price_set);
  return PQ_OK;
}

/* ---- whose credit: the caller's, or (an admin's question) anyone's ---- */

static pq_err subject_of(pq_req *req, char user_id[PQ_UUID_LEN + 1]) {
  const char *who = pq_req_query(req, "user");
  snprintf(user_id, PQ_UUID_LEN + 1, "%s", req->caller.user_id);
  if (!who || strcmp(who, req->caller.user_id) == 0 || strcmp(who, req->caller.user_name) == 0) return PQ_OK;
  pq_user *u = NULL;
  pq_err e = req->caller.admin ? pq_coord_find_user(req->coord, who, &u)
                               : PQ_ERR_NOT_FOUND; /* another's credit does not exist, to a client */
  if (e == PQ_ERR_NOT_FOUND)
    return pq_req_fail(req, e, json_pack("{s:s}", "user", who), "no user '%s'", who);
  if (e != PQ_OK) return e;
  snprintf(user_id, PQ_UUID_LEN + 1, "%s", u->id);
  pq_user_free(u);
  return PQ_OK;
}

/* ---- GET /v1/credits ---- */

pq_err pq_api_credits(pq_req *req) {
  char user_id[PQ_UUID_LEN + 1], account[PQ_ACCOUNT_LEN];
  pq_err e = subject_of(req, user_id);
  if (e != PQ_OK) return e;
  pq_user_account(account, user_id);
  pq_account a;
  if ((e = pq_coord_account(req->coord, account, &a)) != PQ_OK) return e;
  return pq_req_reply(req, 200,
                      json_pack("{s:s,s:o,s:o,s:o}", "user_id", user_id, "balance", pq_api_money_json(a.balance),
                                "held", pq_api_money_json(a.held), "available", pq_api_money_json(a.balance - a.held)));
}

/* ---- GET /v1/ledger ---- */

static json_t *transfer_json(const pq_transfer *t) {
  return json_pack("{s:s,s:s,s:s,s:o,s:s,s:s?,s:s,s:o,s:o,s:o}", "id", t->id, "debit", t->debit, "credit", t->credit,
                   "amount", pq_api_money_json(t->amount), "kind", t->kind, "job_id", t->job_id, "state",
                   pq_transfer_state_name(t->state), "posted", pq_api_money_json(t->posted), "created_at",
                   pq_api_time(t->created_at), "settled_at", pq_api_time(t->settled_at));
}

pq_err pq_api_ledger(pq_req *req) {
  int64_t limit = LEDGER_PAGE, offset = 0;
  pq_err e;
  if ((e = pq_query_int(req, "limit", 1, LEDGER_PAGE_MAX, &limit)) ||
      (e = pq_query_int(req, "offset", 0, INT64_MAX / 2, &offset)))
    return e;
  char user_id[PQ_UUID_LEN + 1], account[PQ_ACCOUNT_LEN];
  const char *named = pq_req_query(req, "account"); /* an admin's look at revenue, upstream, ... */
  if (named && !req->caller.admin)
    return pq_req_fail(req, PQ_ERR_FORBIDDEN, json_pack("{s:s}", "field", "account"),
                       "only an admin reads the ledger's other accounts");
  if (!named) {
    if ((e = subject_of(req, user_id)) != PQ_OK) return e;
    pq_user_account(account, user_id);
  }
  pq_transfer **t = NULL;
  size_t n = 0;
  int64_t total = 0;
  if ((e = pq_coord_transfers(req->coord, named ? (*named ? named : NULL) : account, limit, offset, &t, &n, &total)))
    return e;
  json_t *data = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(data, transfer_json(t[i]));
  pq_transfer_free_array(t, n);
  return pq_req_reply(req, 200,
                      json_pack("{s:o,s:{s:I,s:I,s:I,s:b}}", "data", data, "pagination", "limit", (json_int_t)limit,
                                "offset", (json_int_t)offset, "total", (json_int_t)total, "has_more",
                                offset + (int64_t)n < total));
}

/* ---- POST /v1/credits/grant ---- */

typedef struct {
  char user_id[PQ_UUID_LEN + 1];
  char id[PQ_UUID_LEN + 1];
  const char *grant_id;
  int64_t amount;
} grant_args;

static pq_err granted(pq_req *req) {
  grant_args *g = req->state;
  if (req->op.out.result == PQ_ERR_IDEMPOTENCY_MISMATCH)
    return pq_req_fail(req, PQ_ERR_IDEMPOTENCY_MISMATCH, json_pack("{s:s}", "id", g->grant_id),
                       "grant '%s' was made before, for another user or amount", g->grant_id);
  bool again = req->op.out.result == PQ_ERR_ALREADY_EXISTS;
  if (req->op.out.result != PQ_OK && !again) return req->op.out.result;
  char account[PQ_ACCOUNT_LEN];
  pq_user_account(account, g->user_id);
  pq_account a;
  pq_err e = pq_coord_account(req->coord, account, &a);
  if (e != PQ_OK) return e;
  return pq_req_reply(req, again ? 200 : 201,
                      json_pack("{s:s,s:s,s:o,s:b,s:o}", "id", g->grant_id, "user_id", g->user_id, "amount",
                                pq_api_money_json(g->amount), "replayed", again, "balance",
                                pq_api_money_json(a.balance)));
}

pq_err pq_api_credit_grant(pq_req *req) {
  static const char *const fields[] = {"user", "amount", "id", NULL};
  grant_args *g = pq_req_alloc(req, sizeof *g);
  if (!g) return PQ_ERR_NO_MEMORY;
  memset(g, 0, sizeof *g);
  const char *user = NULL, *id = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the grant", fields)) ||
      (e = pq_json_string(req, req->body, "user", true, 128, &user)) ||
      (e = pq_json_string(req, req->body, "id", false, 128, &id)) ||
      (e = usd_field(req, req->body, "amount", true, &g->amount)))
    return e;
  if (g->amount <= 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "amount"), "'amount' must be above 0");
  pq_user *u = NULL;
  e = pq_coord_find_user(req->coord, user, &u);
  if (e == PQ_ERR_NOT_FOUND) return pq_req_fail(req, e, json_pack("{s:s}", "user", user), "no user '%s'", user);
  if (e != PQ_OK) return e;
  snprintf(g->user_id, sizeof g->user_id, "%s", u->id);
  pq_user_free(u);
  /* the same grant sent twice (a retry) is one grant: the body's id, the Idempotency-Key, or a new one */
  if (!id) id = pq_req_header(req, "Idempotency-Key");
  if (!id) {
    pq_uuid7(pq_now_ms(), g->id);
    id = g->id;
  }
  g->grant_id = pq_req_strndup(req, id, strlen(id));
  req->state = g;
  req->op.kind = PQ_OP_CREDIT_GRANT;
  req->op.in.credit_grant.user_id = g->user_id;
  req->op.in.credit_grant.id = g->grant_id;
  req->op.in.credit_grant.amount = g->amount;
  pq_req_run_op(req, granted);
  return PQ_OK;
}

/* ---- budgets: PUT /v1/budgets, GET /v1/budgets ---- */

static json_t *budget_json(pq_req *req, const pq_budget *b) {
  int64_t now = pq_now_ms(), since = pq_budget_period_start(b->period, now), posted = 0, pending = 0;
  if (pq_coord_spend(req->coord, b->subject, since, &posted, &pending) != PQ_OK) return NULL;
  int64_t left = b->limit_micros - posted - pending;
  return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "subject", b->subject, "period", b->period, "limit",
                   pq_api_money_json(b->limit_micros), "spent", pq_api_money_json(posted), "held",
                   pq_api_money_json(pending), "left", pq_api_money_json(left > 0 ? left : 0), "period_start",
                   pq_api_time(since));
}

typedef struct {
  pq_budget budget;
  char subject[PQ_ACCOUNT_LEN];
} budget_args;

static pq_err budget_set(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  budget_args *a = req->state;
  if (a->budget.limit_micros == 0)
    return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:b}", "subject", a->subject, "period", a->budget.period,
                                            "removed", 1));
  json_t *out = budget_json(req, &a->budget);
  return out ? pq_req_reply(req, 200, out) : PQ_ERR_STORE_FAILED;
}

pq_err pq_api_budget_set(pq_req *req) {
  static const char *const fields[] = {"user", "key", "period", "limit", NULL};
  budget_args *a = pq_req_alloc(req, sizeof *a);
  if (!a) return PQ_ERR_NO_MEMORY;
  memset(a, 0, sizeof *a);
  const char *user = NULL, *key = NULL, *period = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the budget", fields)) ||
      (e = pq_json_string(req, req->body, "user", false, 128, &user)) ||
      (e = pq_json_string(req, req->body, "key", false, 128, &key)) ||
      (e = pq_json_string(req, req->body, "period", true, 8, &period)) ||
      (e = usd_field(req, req->body, "limit", true, &a->budget.limit_micros)))
    return e;
  if (!user == !key)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:[s,s]}", "fields", "user", "key"),
                       "a budget is for one 'user' or one 'key'");
  if (strcmp(period, "day") != 0 && strcmp(period, "month") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "period"), "'period' must be day or month");
  char id[PQ_UUID_LEN + 1];
  if (user) {
    pq_user *u = NULL;
    e = pq_coord_find_user(req->coord, user, &u);
    if (e == PQ_ERR_NOT_FOUND) return pq_req_fail(req, e, json_pack("{s:s}", "user", user), "no user '%s'", user);
    if (e != PQ_OK) return e;
    pq_user_account(a->subject, u->id);
    pq_user_free(u);
  } else {
    if ((e = pq_coord_find_key(req->coord, key, NULL, id)) == PQ_ERR_NOT_FOUND)
      return pq_req_fail(req, e, json_pack("{s:s}", "key", key), "no key '%s'", key);
    if (e != PQ_OK) return e;
    snprintf(a->subject, sizeof a->subject, "key:%s", id);
  }
  a->budget.subject = a->subject;
  a->budget.period = pq_req_strndup(req, period, strlen(period));
  req->state = a;
  req->op.kind = PQ_OP_BUDGET_SET;
  req->op.in.budget_set.budget = &a->budget;
  pq_req_run_op(req, budget_set);
  return PQ_OK;
}

/* The caller's budgets (its user's and its keys'), or with ?user= (an admin) someone's. */
pq_err pq_api_budgets(pq_req *req) {
  char user_id[PQ_UUID_LEN + 1], subject[PQ_ACCOUNT_LEN];
  pq_err e = subject_of(req, user_id);
  if (e != PQ_OK) return e;
  json_t *data = json_array();
  pq_user_account(subject, user_id);
  pq_budget **list = NULL;
  size_t n = 0;
  if ((e = pq_coord_budgets(req->coord, subject, &list, &n)) == PQ_OK) {
    for (size_t i = 0; i < n; i++) json_array_append_new(data, budget_json(req, list[i]));
    pq_budget_free_array(list, n);
  }
  pq_api_key **keys = NULL;
  size_t n_keys = 0;
  if (e == PQ_OK && (e = pq_coord_list_keys(req->coord, user_id, &keys, &n_keys)) == PQ_OK) {
    for (size_t k = 0; k < n_keys; k++) {
      snprintf(subject, sizeof subject, "key:%s", keys[k]->id);
      list = NULL;
      n = 0;
      if (e == PQ_OK && (e = pq_coord_budgets(req->coord, subject, &list, &n)) == PQ_OK)
        for (size_t i = 0; i < n; i++) json_array_append_new(data, budget_json(req, list[i]));
      pq_budget_free_array(list, n);
      pq_api_key_free(keys[k]);
    }
    free(keys);
  }
  if (e != PQ_OK) {
    json_decref(data);
    return e;
  }
  return pq_req_reply(req, 200, json_pack("{s:o}", "data", data));
}
