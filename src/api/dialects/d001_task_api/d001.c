/* The task API (shared/seeds/001): GET /health (the native one answers in its
 * shape), POST /api/task run synchronously through the queue, GET
 * /api/task/{id}, GET /api/tasks, GET /api/stats, GET
 * /api/report/{daily|weekly|monthly}, and its payments through Stripe (POST
 * /api/payment/subscription|micro, POST /api/webhook/stripe: stripe.c,
 * docs/payments.md). `provider` names a model live workers serve (default:
 * --default-model). Costs and income come from the ledger. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "api/dialect.h"
#include "api/dialects/d001_task_api/stripe.h"
#include "base/log.h"
#include "base/clock.h"
#include "base/ids.h"
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

static pq_err d001_stats(pq_req *req) {
  int64_t total = 0, completed = 0, tokens = 0;
  pq_err e = pq_coord_job_totals(req->coord, req->caller.admin ? NULL : pq_api_owner(req), &total, &completed, &tokens);
  if (e != PQ_OK) return e;
  size_t n_users = 1; /* a client sees itself: how many others there are is the operator's business */
  int64_t subscriptions = 0;
  if (req->caller.admin) {
    pq_user **users = NULL;
    if ((e = pq_coord_list_users(req->coord, &users, &n_users))) return e;
    for (size_t i = 0; i < n_users; i++) pq_user_free(users[i]);
    free(users);
    if ((e = pq_coord_subscriptions_active(req->coord, &subscriptions))) return e;
  }
  /* the operator's books for an admin; a client sees only what its own tasks cost */
  pq_financials f = {0};
  int64_t spent = 0;
  if (req->caller.admin && (e = pq_api_financials(req, 0, INT64_MAX, &f))) return e;
  if (req->caller.admin) spent = f.usage;
  else { /* the ledger's spending of one account, as its budgets count it */
    char account[PQ_ACCOUNT_LEN];
    int64_t open = 0;
    if ((e = pq_coord_spend(req->coord, pq_user_account(account, pq_api_owner(req)), 0, &spent, &open))) return e;
  }
  return pq_req_reply(req, 200,
                      json_pack("{s:{s:I,s:I,s:I,s:f},s:{s:I,s:I},s:{s:f,s:f,s:f}}", "tasks", "total",
                                (json_int_t)total, "completed", (json_int_t)completed, "total_tokens",
                                (json_int_t)tokens, "total_cost", pq_micros_to_usd(spent), "users", "total",
                                (json_int_t)n_users, "subscriptions", (json_int_t)subscriptions, "financials",
                                "total_income",
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

/* ---- payments (docs/payments.md): Stripe Checkout and its webhook ---- */

#define WEBHOOK_TOLERANCE_S 300

static pq_stripe_config stripe;

static int d001_environment(char *why, size_t why_size) {
  (void)why, (void)why_size;
  pq_stripe_config_load(&stripe);
  return 0;
}

/* Whom a payment credits: the caller, or (an admin paying for someone) the user named. */
static pq_err payer(pq_req *req, const char *named, char id[PQ_UUID_LEN + 1]) {
  snprintf(id, PQ_UUID_LEN + 1, "%s", req->caller.user_id);
  if (!named || !req->caller.admin) return PQ_OK;
  pq_user *u = NULL;
  pq_err e = pq_coord_find_user(req->coord, named, &u);
  if (e == PQ_ERR_NOT_FOUND) return pq_req_fail(req, e, NULL, "Unknown user_id '%s'", named);
  if (e != PQ_OK) return e;
  snprintf(id, PQ_UUID_LEN + 1, "%s", u->id);
  pq_user_free(u);
  return PQ_OK;
}

/* The client's Idempotency-Key makes its retry the same Checkout Session at
 * Stripe (hashed: any length fits Stripe's 255 characters). */
static void create_key(pq_req *req, const char *what, char *out, size_t size) {
  const char *given = pq_req_header(req, "Idempotency-Key");
  char fresh[PQ_UUID_LEN + 1], hex[2 * crypto_hash_sha256_BYTES + 1];
  if (!given) pq_uuid7(pq_now_ms(), fresh);
  unsigned char digest[crypto_hash_sha256_BYTES];
  const char *key = given ? given : fresh;
  crypto_hash_sha256(digest, (const unsigned char *)key, strlen(key));
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  snprintf(out, size, "promptq-%s-%s-%s", what, req->caller.user_id, hex);
}

static pq_err checkout(pq_req *req, char *form, const char *what) {
  char key[320], why[300];
  create_key(req, what, key, sizeof key);
  char *url = NULL;
  int rc = form ? pq_stripe_checkout(&stripe, form, key, &url, why, sizeof why) : -1;
  if (!form) snprintf(why, sizeof why, "out of memory");
  free(form);
  if (rc != 0) return pq_req_fail(req, PQ_ERR_INTERNAL, NULL, "Payment processing error: %s", why);
  pq_err e = pq_req_reply(req, 200, json_pack("{s:s}", "checkout_url", url));
  free(url);
  return e;
}

static pq_err d001_subscription(pq_req *req) {
  const char *email = NULL;
  pq_err e;
  if ((e = pq_json_string(req, req->body, "email", false, 320, &email))) return e;
  if (!email || !*email || !strchr(email, '@')) return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "Missing email");
  if (!*stripe.price_id)
    return pq_req_fail(req, PQ_ERR_INTERNAL, NULL, "Payment processing error: no subscription price (STRIPE_PRICE_ID)");
  char user[PQ_UUID_LEN + 1];
  if ((e = payer(req, NULL, user))) return e;
  char *form = NULL;
  bool ok = !pq_stripe_form_add(&form, "mode", "subscription") &&
            !pq_stripe_form_add(&form, "line_items[0][price]", stripe.price_id) &&
            !pq_stripe_form_add(&form, "line_items[0][quantity]", "1") &&
            !pq_stripe_form_add(&form, "customer_email", email) &&
            !pq_stripe_form_add(&form, "client_reference_id", user) &&
            !pq_stripe_form_add(&form, "metadata[user_id]", user) &&
            !pq_stripe_form_add(&form, "metadata[promptq]", "1") &&
            /* the subscription's own events and invoices then say whose it is, and that it is ours */
            !pq_stripe_form_add(&form, "subscription_data[metadata][user_id]", user) &&
            !pq_stripe_form_add(&form, "subscription_data[metadata][promptq]", "1");
  if (!ok) {
    free(form);
    form = NULL;
  }
  return checkout(req, form, "subscription");
}

static pq_err d001_micro(pq_req *req) {
  static const char *const fields[] = {"user_id", "description", NULL};
  const char *description = NULL;
  pq_err e;
  json_t *named = json_object_get(req->body, "user_id");
  char named_text[64] = "";
  if (json_is_integer(named)) snprintf(named_text, sizeof named_text, "%lld", (long long)json_integer_value(named));
  else if (json_is_string(named)) snprintf(named_text, sizeof named_text, "%s", json_string_value(named));
  else if (named && !json_is_null(named))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "user_id must be a number or a string");
  if ((e = pq_json_only(req, req->body, "the payment", fields)) ||
      (e = pq_json_string(req, req->body, "description", false, 500, &description)))
    return e;
  char user[PQ_UUID_LEN + 1];
  /* the document's user_id names the payer; only an admin may pay for another */
  if ((e = payer(req, req->caller.admin && *named_text ? named_text : NULL, user))) return e;
  char amount[32];
  snprintf(amount, sizeof amount, "%lld", (long long)stripe.micro_amount);
  char *form = NULL;
  bool ok = !pq_stripe_form_add(&form, "mode", "payment") &&
            !pq_stripe_form_add(&form, "line_items[0][price_data][currency]", stripe.currency) &&
            !pq_stripe_form_add(&form, "line_items[0][price_data][unit_amount]", amount) &&
            !pq_stripe_form_add(&form, "line_items[0][price_data][product_data][name]",
                                description && *description ? description : "AI Task Processing") &&
            !pq_stripe_form_add(&form, "line_items[0][quantity]", "1") &&
            !pq_stripe_form_add(&form, "client_reference_id", user) &&
            !pq_stripe_form_add(&form, "metadata[user_id]", user) &&
            !pq_stripe_form_add(&form, "metadata[promptq]", "1");
  if (!ok) {
    free(form);
    form = NULL;
  }
  return checkout(req, form, "micro");
}

/* Credit in micros for an amount Stripe reports in the currency's smallest
 * unit (cents; the unit itself for zero-decimal currencies); 0 for another
 * currency than the one configured (a Payment Link, adaptive pricing...):
 * such a payment is recorded, not credited at a rate nobody set. */
static int64_t credit_for(const char *currency, int64_t amount) {
  static const char *const zero_decimal[] = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                                             "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf", NULL};
  if (!currency || strcasecmp(currency, stripe.currency) != 0 || amount <= 0) return 0;
  int64_t per_unit = 10000; /* micros per cent */
  for (int i = 0; zero_decimal[i]; i++)
    if (strcasecmp(currency, zero_decimal[i]) == 0) per_unit = 1000000;
  if (amount > PQ_MONEY_MAX_USD * 1000000 / per_unit / stripe.credits_per_unit) return 0;
  return amount * per_unit * stripe.credits_per_unit;
}

static bool marked(json_t *metadata) {
  const char *m = json_string_value(json_object_get(metadata, "promptq"));
  return m && strcmp(m, "1") == 0;
}

static const char *str_at(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

typedef struct {
  pq_subscription sub;
  char event_id[300], credit_id[300];
  bool ours;         /* an object promptq created (its metadata says so) */
  int64_t created;   /* the event's time, ms */
} webhook_args;

#define RETRY_UNPLACED_MS (24 * 3600 * 1000LL)

static pq_err webhook_done(pq_req *req) {
  webhook_args *a = req->state;
  pq_err e = req->op.out.result;
  if (e == PQ_ERR_NOT_FOUND) {
    /* ours, and its checkout not seen yet: Stripe delivers it again later. Anything else
     * nobody here can place (another integration's, a deleted user's) is left alone */
    if (a->ours && pq_now_ms() - a->created < RETRY_UNPLACED_MS)
      return pq_req_fail(req, PQ_ERR_UNAVAILABLE, NULL, "the event's customer is not known yet; deliver it again");
    pq_warn("stripe: event %s credits nobody known here; acknowledged, not applied", a->event_id);
  } else if (e != PQ_OK) {
    return e;
  }
  return pq_req_reply(req, 200, json_pack("{s:s}", "status", "success"));
}

static pq_err d001_webhook(pq_req *req) {
  char why[200];
  const char *signature = pq_req_header(req, "Stripe-Signature");
  if (pq_stripe_verify(stripe.webhook_secret, signature, req->raw_body ? req->raw_body : "", req->raw_len,
                       pq_now_ms() / 1000, WEBHOOK_TOLERANCE_S, why, sizeof why) != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "Invalid signature: %s", why);
  json_t *event = req->body, *obj = json_object_get(json_object_get(event, "data"), "object");
  const char *id = str_at(event, "id"), *type = str_at(event, "type");
  if (!id || !type || !json_is_object(obj))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "Invalid event: it needs an id, a type and data.object");
  webhook_args *a = pq_req_alloc(req, sizeof *a);
  if (!a) return PQ_ERR_NO_MEMORY;
  memset(a, 0, sizeof *a);
  req->state = a;
  snprintf(a->event_id, sizeof a->event_id, "stripe:%s", id);
  int64_t created = json_integer_value(json_object_get(event, "created")) * 1000;
  a->created = created;
  req->op.kind = PQ_OP_PAYMENT;
  req->op.in.payment.event_id = a->event_id;
  req->op.in.payment.type = type;
  json_t *meta = json_object_get(obj, "metadata");
  if (strcmp(type, "checkout.session.completed") == 0 || strcmp(type, "checkout.session.async_payment_succeeded") == 0) {
    /* a delayed payment method (a bank debit) completes unpaid, then succeeds: either pays once */
    const char *mode = str_at(obj, "mode"), *paid = str_at(obj, "payment_status");
    const char *user = str_at(obj, "client_reference_id");
    if (!user) user = str_at(meta, "user_id");
    a->ours = marked(meta);
    if (!a->ours) return pq_req_reply(req, 200, json_pack("{s:s}", "status", "success")); /* not a session of ours */
    req->op.in.payment.user_id = user;
    if (mode && strcmp(mode, "subscription") == 0 && str_at(obj, "subscription")) {
      /* its invoices credit each period: the checkout only says whose the subscription is */
      a->sub = (pq_subscription){.id = (char *)str_at(obj, "subscription"), .user_id = (char *)user,
                                 .customer = (char *)str_at(obj, "customer"), .status = "active", .event_at = created};
      req->op.in.payment.subscription = &a->sub;
    } else if (paid && strcmp(paid, "paid") == 0 && str_at(obj, "id")) {
      req->op.in.payment.credit = credit_for(str_at(obj, "currency"), json_integer_value(json_object_get(obj, "amount_total")));
      req->op.in.payment.kind = "micro_payment";
      snprintf(a->credit_id, sizeof a->credit_id, "stripe:%s", str_at(obj, "id"));
      req->op.in.payment.credit_id = a->credit_id;
    }
  } else if (strncmp(type, "customer.subscription.", 22) == 0) {
    if (!marked(meta)) return pq_req_reply(req, 200, json_pack("{s:s}", "status", "success")); /* not ours */
    bool deleted = strcmp(type, "customer.subscription.deleted") == 0;
    a->sub = (pq_subscription){.id = (char *)str_at(obj, "id"), .user_id = (char *)str_at(meta, "user_id"),
                               .customer = (char *)str_at(obj, "customer"),
                               .status = (char *)(deleted ? "canceled" : str_at(obj, "status")),
                               .current_period_end = json_integer_value(json_object_get(obj, "current_period_end")) * 1000,
                               .event_at = created};
    if (!a->sub.id || !a->sub.status)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "Invalid event: a subscription needs an id and a status");
    req->op.in.payment.subscription = &a->sub;
  } else if (strcmp(type, "invoice.paid") == 0) {
    /* each period's payment credits the subscription's user (older and newer API shapes) */
    const char *sub = str_at(obj, "subscription");
    json_t *details = json_object_get(obj, "subscription_details");
    json_t *parent = json_object_get(json_object_get(obj, "parent"), "subscription_details");
    if (!sub) sub = str_at(parent, "subscription");
    json_t *sub_meta = json_object_get(details, "metadata");
    if (!sub_meta) sub_meta = json_object_get(parent, "metadata");
    const char *user = str_at(sub_meta, "user_id");
    if (!sub || !str_at(obj, "id")) return pq_req_reply(req, 200, json_pack("{s:s}", "status", "success")); /* one-off */
    a->ours = marked(sub_meta);
    /* an invoice says nothing of the subscription's state (a final one may come after its end) */
    a->sub = (pq_subscription){.id = (char *)sub, .user_id = (char *)user, .customer = (char *)str_at(obj, "customer"),
                               .status = NULL, .event_at = created};
    req->op.in.payment.subscription = &a->sub;
    req->op.in.payment.user_id = user;
    req->op.in.payment.credit = credit_for(str_at(obj, "currency"), json_integer_value(json_object_get(obj, "amount_paid")));
    req->op.in.payment.kind = "subscription";
    snprintf(a->credit_id, sizeof a->credit_id, "stripe:%s", str_at(obj, "id"));
    req->op.in.payment.credit_id = a->credit_id;
  } else {
    return pq_req_reply(req, 200, json_pack("{s:s}", "status", "success")); /* acknowledged, ignored */
  }
  pq_req_run_op(req, webhook_done);
  return PQ_OK;
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
    {.method = "POST", .pattern = "/api/payment/subscription", .handler = d001_subscription,
     .flags = PQ_ROUTE_JSON | PQ_ROUTE_BODY, .role = PQ_ROLE_CLIENT, .name = "d001.payment.subscription",
     .render_error = pq_dialect_plain_error},
    {.method = "POST", .pattern = "/api/payment/micro", .handler = d001_micro, .flags = PQ_ROUTE_JSON | PQ_ROUTE_BODY,
     .role = PQ_ROLE_CLIENT, .name = "d001.payment.micro", .render_error = pq_dialect_plain_error},
    /* Stripe calls it: its signature is the credential */
    {.method = "POST", .pattern = "/api/webhook/stripe", .handler = d001_webhook, .flags = PQ_ROUTE_JSON | PQ_ROUTE_BODY,
     .role = PQ_ROLE_PUBLIC, .name = "d001.webhook.stripe", .render_error = pq_dialect_plain_error},
    /* the operator's books: an admin's */
    {.method = "GET", .pattern = "/api/report/{report_type}", .handler = d001_report, .role = PQ_ROLE_ADMIN,
     .name = "d001.report", .render_error = pq_dialect_plain_error},
};

/* its /health is the native one */
const pq_dialect pq_dialect_001 = {
    .name = "d001",
    .title = "the task API (shared/seeds/001), with its Stripe payments",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .apply_environment = d001_environment,
};
