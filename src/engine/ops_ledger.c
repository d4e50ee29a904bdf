/* The ledger family (model/money.h): prices and credit grants as operations
 * of their own; holds and charges inside the jobs family's operations, in
 * the transaction that queues or ends the job, so a job and its money never
 * disagree.
 *
 * At submit, a job of a priced model holds its worst case on its owner's
 * account (the input's length as prompt tokens, at about 3 bytes a token,
 * plus its max_tokens of output; a council, every member for every round
 * and its dearest synthesizer). When it completes, its real cost is posted
 * from the hold (and any excess charged on top); any other end voids the
 * hold. Every job with a priced model and usage also records the operator's
 * cost (operator -> upstream). Unpriced models cost nothing and hold nothing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ids.h"
#include "engine/internal.h"
#include "engine/kinds/council.h"

#define BYTES_PER_TOKEN 3 /* an estimate that errs high: holds are worst cases */
#define PROMPT_OVERHEAD_TOKENS 16
#define IMAGE_TOKENS 2000 /* a high-detail image, as OpenAI counts them, errs high */

static pq_err keyed_transfer(pq__batch *b, const char *id, const char *debit, const char *credit, int64_t amount,
                             const char *kind, const char *job_id, pq_transfer_state state, const char *key_id) {
  if (amount <= 0) return PQ_OK;
  pq_transfer t = {.id = (char *)id, .debit = (char *)debit, .credit = (char *)credit, .amount = amount,
                   .kind = (char *)kind, .job_id = (char *)job_id, .state = state, .created_at = b->now,
                   .key_id = (char *)key_id};
  return b->c->ops->transfer_insert(b->c->wconn, &t);
}

static pq_err transfer(pq__batch *b, const char *id, const char *debit, const char *credit, int64_t amount,
                       const char *kind, const char *job_id, pq_transfer_state state) {
  return keyed_transfer(b, id, debit, credit, amount, kind, job_id, state, NULL);
}

/* ---- prices and grants ---- */

pq_err pq__run_price_set(pq__batch *b, pq_op *op) {
  pq_price p = *op->in.price_set.price;
  p.updated_at = b->now;
  if (!p.model || !*p.model || p.input_per_mtok < 0 || p.output_per_mtok < 0 || p.cost_input_per_mtok < 0 ||
      p.cost_output_per_mtok < 0)
    return PQ_ERR_INVALID_REQUEST;
  return b->c->ops->price_put(b->c->wconn, &p);
}

pq_err pq__run_credit_grant(pq__batch *b, pq_op *op) {
  pq_user *u = NULL;
  pq_err result = b->c->ops->user_get(b->c->wconn, op->in.credit_grant.user_id, NULL, &u);
  pq_user_free(u);
  if (result != PQ_OK) return result;
  if (op->in.credit_grant.amount <= 0 || !op->in.credit_grant.id || !*op->in.credit_grant.id)
    return PQ_ERR_INVALID_REQUEST;
  char account[PQ_ACCOUNT_LEN], id[320];
  pq_user_account(account, op->in.credit_grant.user_id);
  const char *kind = op->in.credit_grant.kind ? op->in.credit_grant.kind : "grant";
  snprintf(id, sizeof id, "%s:%s", kind, op->in.credit_grant.id);
  result = transfer(b, id, "clearing", account, op->in.credit_grant.amount, kind, NULL, PQ_TRANSFER_POSTED);
  if (result != PQ_ERR_ALREADY_EXISTS) return result;
  /* the same id again: the same grant (a retry) is ALREADY_EXISTS; another is a mismatch */
  pq_transfer *seen = NULL;
  if ((result = b->c->ops->transfer_get(b->c->wconn, id, &seen)) != PQ_OK) return result;
  bool same = strcmp(seen->credit, account) == 0 && seen->amount == op->in.credit_grant.amount;
  pq_transfer_free(seen);
  return same ? PQ_ERR_ALREADY_EXISTS : PQ_ERR_IDEMPOTENCY_MISMATCH;
}

pq_err pq__run_budget_set(pq__batch *b, pq_op *op) {
  pq_budget budget = *op->in.budget_set.budget;
  budget.updated_at = b->now;
  if (!budget.subject || (strncmp(budget.subject, "user:", 5) != 0 && strncmp(budget.subject, "key:", 4) != 0) ||
      !budget.period || pq_budget_period_start(budget.period, b->now) < 0 || budget.limit_micros < 0)
    return PQ_ERR_INVALID_REQUEST;
  return b->c->ops->budget_put(b->c->wconn, &budget);
}

/* Would holding `worst` more pass one of subject's budgets? Spending is
 * what was posted since each period began plus every open hold: holds count
 * at once, so concurrent submits cannot overspend together. */
static pq_err within_budgets(pq__batch *b, pq_op *op, const char *subject, int64_t worst) {
  pq_budget **list = NULL;
  size_t n = 0;
  pq_err result = b->c->ops->budget_list(b->c->wconn, subject, &list, &n);
  for (size_t i = 0; result == PQ_OK && i < n; i++) {
    int64_t posted = 0, pending = 0, since = pq_budget_period_start(list[i]->period, b->now);
    if (since < 0) continue;
    if ((result = b->c->ops->spend(b->c->wconn, subject, since, &posted, &pending))) break;
    int64_t left = list[i]->limit_micros - posted - pending;
    if (left >= worst) continue;
    op->out.money.needed = worst;
    op->out.money.available = left > 0 ? left : 0;
    op->out.money.limit = list[i]->limit_micros;
    snprintf(op->out.money.subject, sizeof op->out.money.subject, "%s", subject);
    snprintf(op->out.money.period, sizeof op->out.money.period, "%s", list[i]->period);
    result = PQ_ERR_BUDGET_EXCEEDED;
  }
  pq_budget_free_array(list, n);
  return result;
}

/* ---- payments: a provider's event, applied once ---- */

pq_err pq__run_payment(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  const pq_subscription *sub = op->in.payment.subscription;
  pq_subscription *known = NULL;
  const char *user = op->in.payment.user_id && *op->in.payment.user_id ? op->in.payment.user_id : NULL;
  pq_err result = PQ_OK;
  /* whom it credits, found before anything is written: an event that cannot be placed yet
   * (its subscription's checkout not seen yet) is left for the provider's next delivery */
  if (!user && sub && (result = c->ops->subscription_get(c->wconn, sub->id, &known)) == PQ_OK && *known->user_id)
    user = known->user_id;
  if (result != PQ_OK && result != PQ_ERR_NOT_FOUND) goto out;
  result = PQ_OK;
  if (op->in.payment.credit > 0) {
    pq_user *u = NULL;
    if (!user || (result = c->ops->user_get(c->wconn, user, NULL, &u)) != PQ_OK) {
      if (!user) result = PQ_ERR_NOT_FOUND;
      goto out;
    }
    pq_user_free(u);
  }
  if ((result = c->ops->payment_event_record(c->wconn, op->in.payment.event_id, op->in.payment.type, b->now)) ==
      PQ_ERR_ALREADY_EXISTS) {
    op->out.replayed = true; /* delivered before (or at the same moment elsewhere): applied once */
    result = PQ_OK;
    goto out;
  }
  if (result == PQ_OK && sub) {
    pq_subscription next = *sub;
    if (!next.user_id || !*next.user_id) next.user_id = (char *)user;
    next.updated_at = b->now;
    result = c->ops->subscription_apply(c->wconn, &next);
  }
  if (result == PQ_OK && op->in.payment.credit > 0) {
    char account[PQ_ACCOUNT_LEN];
    pq_user_account(account, user);
    /* keyed on what was paid (a session, an invoice): two events about one payment credit it once */
    const char *id = op->in.payment.credit_id ? op->in.payment.credit_id : op->in.payment.event_id;
    result = transfer(b, id, "clearing", account, op->in.payment.credit, op->in.payment.kind, NULL, PQ_TRANSFER_POSTED);
    if (result == PQ_ERR_ALREADY_EXISTS) result = PQ_OK;
  }
out:
  pq_subscription_free(known);
  return result;
}

/* ---- Bitcoin: one address, payments told apart by their amounts ---- */

/* An expired request's amount stays its own this long, so a payment made
 * for it late can never be taken for a newer request's. */
#define BTC_AMOUNT_GRACE_MS (24 * 3600 * 1000LL)


pq_err pq__run_btc_create(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  pq_btc_payment *p = calloc(1, sizeof *p);
  char id[PQ_UUID_LEN + 1];
  pq_uuid7(b->now, id);
  if (!p || !(p->id = strdup(id)) || !(p->user_id = strdup(op->in.btc_create.user_id)) ||
      !(p->address = strdup(op->in.btc_create.address)) || !(p->status = strdup("pending"))) {
    pq_btc_payment_free(p);
    return PQ_ERR_NO_MEMORY;
  }
  p->credit_micros = op->in.btc_create.credit_micros;
  p->created_at = b->now;
  p->expires_at = b->now + op->in.btc_create.ttl_ms;
  /* coordinators sharing the store pick amounts one at a time */
  char subject[160];
  snprintf(subject, sizeof subject, "btc:%s", op->in.btc_create.address);
  pq_err result = c->ops->subject_lock(c->wconn, subject);
  int64_t mine = 0;
  /* nobody may hold every amount near a popular one */
  if (result == PQ_OK && op->in.btc_create.max_pending > 0 &&
      (result = c->ops->btc_pending_count(c->wconn, p->user_id, b->now, op->in.btc_create.max_pending, &mine)) == PQ_OK &&
      mine >= op->in.btc_create.max_pending)
    result = PQ_ERR_QUEUE_QUOTA_EXCEEDED;
  if (result != PQ_OK) {
    pq_btc_payment_free(p);
    return result;
  }
  result = PQ_ERR_UNAVAILABLE; /* every nearby amount is asked for already */
  for (int64_t k = 0; k <= op->in.btc_create.max_offset; k++) {
    pq_btc_payment *taken = NULL;
    result = c->ops->btc_payment_by_amount(c->wconn, op->in.btc_create.base_sats + k, b->now - BTC_AMOUNT_GRACE_MS,
                                           false, &taken);
    pq_btc_payment_free(taken);
    if (result == PQ_ERR_NOT_FOUND) {
      p->amount_sats = op->in.btc_create.base_sats + k;
      result = c->ops->btc_payment_insert(c->wconn, p);
      break;
    }
    if (result != PQ_OK) break;
    result = PQ_ERR_UNAVAILABLE;
  }
  if (result == PQ_OK) op->out.btc = p;
  else pq_btc_payment_free(p);
  return result;
}

pq_err pq__run_btc_observe(pq__batch *b, pq_op *op) {
  pq_coord *c = b->c;
  const char *txid = op->in.btc_observe.txid;
  int64_t vout = op->in.btc_observe.vout, sats = op->in.btc_observe.amount_sats;
  pq_btc_payment *p = NULL;
  pq_err result = c->ops->btc_payment_by_amount(c->wconn, sats, b->now, true, &p);
  if (result != PQ_OK && result != PQ_ERR_NOT_FOUND) return result;
  /* in time: seen (or a replacement of one seen) before it expired, or possibly made before: the
   * watcher's last look without it came before the expiry (it looks every poll, less often when
   * Esplora fails) */
  int64_t unseen_at = op->in.btc_observe.last_look ? op->in.btc_observe.last_look : b->now;
  bool in_time = p && (p->txid || unseen_at < p->expires_at);
  if (!p || !in_time) { /* recorded, never credited: an amount nobody asked for, or too late */
    op->out.btc_outcome = p ? "late" : "unmatched";
    result = c->ops->btc_output_record(c->wconn, txid, vout, sats, p ? p->id : NULL, op->out.btc_outcome, b->now);
    if (result == PQ_ERR_ALREADY_EXISTS) op->out.btc_outcome = "known", result = PQ_OK;
    pq_btc_payment_free(p);
    return result;
  }
  op->out.btc = p;
  if (pq_set_str(&p->txid, txid)) return PQ_ERR_NO_MEMORY;
  p->confirmations = op->in.btc_observe.confirmations;
  if (p->confirmations < op->in.btc_observe.min_confirmations) { /* seen, not yet deep enough */
    op->out.btc_outcome = "seen";
    return c->ops->btc_payment_update(c->wconn, p, "pending");
  }
  if ((result = c->ops->btc_output_record(c->wconn, txid, vout, sats, p->id, "credited", b->now)) ==
      PQ_ERR_ALREADY_EXISTS) {
    op->out.btc_outcome = "known";
    return PQ_OK;
  }
  if (result != PQ_OK) return result;
  if (pq_set_str(&p->status, "confirmed")) return PQ_ERR_NO_MEMORY;
  p->confirmed_at = b->now;
  if ((result = c->ops->btc_payment_update(c->wconn, p, "pending")) != PQ_OK) return result;
  char account[PQ_ACCOUNT_LEN], id[160];
  pq_user_account(account, p->user_id);
  snprintf(id, sizeof id, "btc:%s:%lld", txid, (long long)vout);
  op->out.btc_outcome = "credited";
  return transfer(b, id, "clearing", account, p->credit_micros, "payment", NULL, PQ_TRANSFER_POSTED);
}

/* ---- a job's worst case ---- */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* An operator's alias (--model-alias) without a price of its own costs what its dearest target
 * costs, field by field: whichever target runs it, nobody gets a priced model for free. */
static pq_err alias_price(pq__batch *b, const char *model, pq_price **out) {
  const struct pq_model_alias *al = pq__alias_of(b->c, model);
  pq_err result = PQ_OK;
  for (size_t t = 0; al && t < al->n_targets && result == PQ_OK; t++) {
    pq_price *p = NULL;
    result = b->c->ops->price_get(b->c->wconn, al->targets[t], &p);
    if (result == PQ_ERR_NOT_FOUND) result = PQ_OK;
    if (result != PQ_OK || !p) continue;
    if (!*out) {
      *out = p;
      continue;
    }
    (*out)->input_per_mtok = max64((*out)->input_per_mtok, p->input_per_mtok);
    (*out)->output_per_mtok = max64((*out)->output_per_mtok, p->output_per_mtok);
    (*out)->cost_input_per_mtok = max64((*out)->cost_input_per_mtok, p->cost_input_per_mtok);
    (*out)->cost_output_per_mtok = max64((*out)->cost_output_per_mtok, p->cost_output_per_mtok);
    pq_price_free(p);
  }
  if (result != PQ_OK) {
    pq_price_free(*out);
    *out = NULL;
  }
  return result;
}

static pq_err price_of(pq__batch *b, const char *model, pq_price **out) {
  pq_err result = b->c->ops->price_get(b->c->wconn, model, out);
  if (result != PQ_ERR_NOT_FOUND) return result;
  *out = NULL;
  return alias_price(b, model, out);
}

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }
static int64_t sat_mul(int64_t a, int64_t b) { return b && a > INT64_MAX / b ? INT64_MAX : a * b; }

/* What one model could charge for prompt + completion tokens (0 unpriced). */
static pq_err worst_for(pq__batch *b, const char *model, int64_t prompt, int64_t completion, int64_t *out) {
  pq_price *p = NULL;
  pq_err result = price_of(b, model, &p);
  *out = p ? pq_price_charge(p, prompt, completion) : 0;
  pq_price_free(p);
  return result;
}

/* A council: every member asked in every round (from round 2 its prompt
 * holds every other answer), and the dearest synthesizer once. */
static pq_err council_worst(pq__batch *b, json_t *input, int64_t base_prompt, int64_t *out) {
  json_t *members = json_object_get(input, "members"), *synth = json_object_get(input, "synthesizers"), *m;
  int64_t rounds = json_integer_value(json_object_get(input, "maxRounds"));
  int64_t answer = json_integer_value(json_object_get(input, "maxTokens"));
  int64_t n = (int64_t)json_array_size(members);
  /* the session's earlier turns may join every prompt */
  int64_t context = pq_council_settings()->context_tokens;
  int64_t prompt = sat_add(sat_add(base_prompt, context), sat_mul(n, answer));
  int64_t total = 0, one;
  size_t i;
  pq_err result = PQ_OK;
  json_array_foreach(members, i, m) {
    if ((result = worst_for(b, json_string_value(m), prompt, answer, &one))) return result;
    total = sat_add(total, sat_mul(one, rounds));
  }
  json_array_foreach(synth, i, m) { /* each may answer (an empty answer hands over to the next) */
    if ((result = worst_for(b, json_string_value(m), prompt, answer, &one))) return result;
    total = sat_add(total, one);
  }
  const char *embedding = json_string_value(json_object_get(input, "embeddingModel"));
  if (embedding) { /* each round's answers measured */
    if ((result = worst_for(b, embedding, sat_mul(n, answer), 0, &one))) return result;
    total = sat_add(total, sat_mul(one, rounds));
  }
  *out = total;
  return PQ_OK;
}

static pq_err worst_case(pq__batch *b, const pq_job *job, int64_t *out) {
  int64_t prompt = (int64_t)strlen(job->input) / BYTES_PER_TOKEN + PROMPT_OVERHEAD_TOKENS;
  *out = 0;
  if (job->kind && strcmp(job->kind, PQ_COUNCIL_KIND) == 0) {
    json_t *input = json_loads(job->input, 0, NULL);
    pq_err result = council_worst(b, input, prompt, out);
    json_decref(input);
    return result;
  }
  /* the price first: a model without one (every model, on a server without money) costs one
   * lookup and no parsing of the input on the submit path */
  pq_price *p = NULL;
  pq_err result = price_of(b, job->model, &p);
  if (result != PQ_OK || !p) return result;
  int64_t completion = 0;
  if (!job->kind || strcmp(job->kind, "embedding") != 0) {
    json_t *input = json_loads(job->input, 0, NULL);
    json_t *params = json_object_get(input, "params");
    json_t *max = json_object_get(params, "max_tokens"), *n = json_object_get(params, "n");
    completion = json_is_integer(max) ? json_integer_value(max) : b->c->cfg.hold_max_tokens;
    if (json_is_integer(n) && json_integer_value(n) > 1) completion = sat_mul(completion, json_integer_value(n));
    json_decref(input);
    /* an image costs its upstream far more tokens than the bytes of its address */
    for (const char *at = job->input; (at = strstr(at, "\"image_url\":{")); at++)
      prompt = sat_add(prompt, IMAGE_TOKENS);
  }
  *out = pq_price_charge(p, prompt, completion);
  pq_price_free(p);
  return PQ_OK;
}

pq_err pq__ledger_hold(pq__batch *b, pq_op *op, pq_job *job) {
  if (job->parent_id || !job->owner || !*job->owner) return PQ_OK; /* a step of a job that holds; an open server */
  int64_t worst = 0;
  pq_err result = PQ_OK;
  if (op->in.submit.n_steps) { /* a batch: its requests, at the batch price */
    for (size_t i = 0; result == PQ_OK && i < op->in.submit.n_steps; i++) {
      int64_t one = 0;
      result = worst_case(b, op->in.submit.steps[i], &one);
      worst = sat_add(worst, one);
    }
    worst = pq_kind_batch_price(b, worst);
  } else {
    result = worst_case(b, job, &worst);
  }
  if (result != PQ_OK || worst == 0) return result;
  char account[PQ_ACCOUNT_LEN], id[PQ_UUID_LEN + 8];
  pq_user_account(account, job->owner);
  pq_account a;
  const char *key_id = op->in.submit.key_id && *op->in.submit.key_id ? op->in.submit.key_id : NULL;
  char key_subject[PQ_UUID_LEN + 8];
  snprintf(key_subject, sizeof key_subject, "key:%s", key_id ? key_id : "");
  /* other coordinators' holds on the same account wait for this one's commit, and then see it */
  if ((result = b->c->ops->subject_lock(b->c->wconn, account)) != PQ_OK ||
      (key_id && (result = b->c->ops->subject_lock(b->c->wconn, key_subject)) != PQ_OK) ||
      (result = b->c->ops->account_get(b->c->wconn, account, &a)) != PQ_OK)
    return result;
  if (a.balance - a.held < worst) {
    op->out.money.needed = worst;
    op->out.money.available = a.balance - a.held;
    return PQ_ERR_INSUFFICIENT_CREDITS;
  }
  if ((result = within_budgets(b, op, account, worst)) || (key_id && (result = within_budgets(b, op, key_subject, worst))))
    return result;
  if (!job->id[0]) pq_uuid7(b->now, job->id);
  snprintf(id, sizeof id, "hold:%s", job->id);
  if ((result = keyed_transfer(b, id, account, "revenue", worst, "hold", job->id, PQ_TRANSFER_PENDING, key_id)))
    return result;
  job->held_micros = worst;
  return PQ_OK;
}

/* ---- a job's end ---- */

pq_err pq__ledger_price_end(pq__batch *b, pq_job *job, int64_t *operator_cost) {
  *operator_cost = 0;
  /* a job the coordinator runs (a council, a batch) summed its children's costs itself (the
   * operator's were recorded as each ended); a council that failed or timed out gave no
   * decision: it costs nothing; a batch's delivered requests cost what they cost */
  if (pq_job_kind_of(job)->on_submit) {
    bool council = job->kind && strcmp(job->kind, PQ_COUNCIL_KIND) == 0;
    if (council && job->state != PQ_JOB_COMPLETED && job->state != PQ_JOB_CANCELLED) job->cost_micros = 0;
    if (job->cost_micros > job->held_micros) job->cost_micros = job->held_micros;
    return PQ_OK;
  }
  job->cost_micros = 0;
  if (job->prompt_tokens <= 0 && job->completion_tokens <= 0) return PQ_OK; /* no answer, no cost */
  pq_price *p = NULL;
  pq_err result = price_of(b, job->model, &p);
  if (p) {
    /* what it delivered (completed, or cancelled with its output kept) costs its owner, up to
     * what it held: a worker cannot charge more than the owner agreed to risk; a step of a
     * council is charged through its council */
    int64_t charge = pq_price_charge(p, job->prompt_tokens, job->completion_tokens);
    if (job->parent_id) job->cost_micros = charge;
    else job->cost_micros = charge < job->held_micros ? charge : job->held_micros;
    *operator_cost = pq_price_cost(p, job->prompt_tokens, job->completion_tokens); /* upstream was paid anyway */
  }
  pq_price_free(p);
  return result;
}

/* The worker's owner earns its share of what a completed job cost (a miner's
 * balance in document 003), out of revenue. An open server's workers belong
 * to nobody and earn nothing. */
static pq_err pay_worker(pq__batch *b, const pq_job *job) {
  int share = b->c->cfg.worker_share_percent;
  if (share <= 0 || job->cost_micros <= 0 || !job->worker_id) return PQ_OK; /* a council has no worker of its own */
  pq_worker *w = NULL;
  pq_err result = b->c->ops->worker_get(b->c->wconn, job->worker_id, &w);
  if (result == PQ_ERR_NOT_FOUND) return PQ_OK;
  if (result == PQ_OK && w->owner && *w->owner) {
    char account[PQ_ACCOUNT_LEN], id[PQ_UUID_LEN + 16];
    pq_user_account(account, w->owner);
    snprintf(id, sizeof id, "earning:%s", job->id);
    result = transfer(b, id, "revenue", account, (int64_t)((__int128)job->cost_micros * share / 100), "earning",
                      job->id, PQ_TRANSFER_POSTED);
  }
  pq_worker_free(w);
  return result;
}

pq_err pq__ledger_settle(pq__batch *b, const pq_job *job, int64_t operator_cost) {
  char id[PQ_UUID_LEN + 16];
  pq_err result = PQ_OK;
  if (job->held_micros > 0) { /* the owner first: its row, then the shared ones */
    snprintf(id, sizeof id, "hold:%s", job->id);
    result = job->cost_micros > 0
                 ? b->c->ops->transfer_settle(b->c->wconn, id, PQ_TRANSFER_POSTED, job->cost_micros, b->now)
                 : b->c->ops->transfer_settle(b->c->wconn, id, PQ_TRANSFER_VOIDED, 0, b->now);
    if (result == PQ_OK && job->cost_micros > 0) result = pay_worker(b, job);
  } else if (job->parent_id && job->state == PQ_JOB_COMPLETED && job->cost_micros > 0) {
    /* a council's member or synthesis: its worker did the work, whatever the council's fate */
    result = pay_worker(b, job);
  }
  if (result == PQ_OK && operator_cost > 0) {
    snprintf(id, sizeof id, "cost:%s", job->id);
    result = transfer(b, id, "operator", "upstream", operator_cost, "cost", job->id, PQ_TRANSFER_POSTED);
  }
  return result;
}

pq_err pq_kind_charge(pq_kind_ctx *ctx, const pq_job *parent, const pq_job *child, int64_t micros) {
  if (micros <= 0 || !parent->owner || !*parent->owner) return PQ_OK;
  char account[PQ_ACCOUNT_LEN], id[PQ_UUID_LEN + 16];
  pq_user_account(account, parent->owner);
  snprintf(id, sizeof id, "charge:%s", child->id);
  return transfer(ctx, id, account, "revenue", micros, "charge", child->id, PQ_TRANSFER_POSTED);
}
