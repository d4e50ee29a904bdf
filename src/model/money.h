/* Money: prices per model and the ledger's records.
 *
 * Every amount is an integer count of micro-units (1 USD = 1,000,000
 * micros): no floating point touches a balance. Decimals appear only where a
 * document shows them (pq_micros_to_usd).
 *
 * The ledger is double-entry: a transfer moves `amount` from its debit
 * account to its credit account, so the sum over all accounts is always
 * zero. A pending transfer (a hold) reserves the amount on the debit account
 * (its `held`) until it is posted (the real amount moves) or voided, exactly
 * once. Accounts: "user:<id>" (a user's credit), "revenue", "upstream" (the
 * operator's cost of running models), "operator" (who pays that cost),
 * "clearing" (where granted and bought credit comes from). */
#ifndef PQ_MODEL_MONEY_H
#define PQ_MODEL_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PQ_MICROS_PER_USD INT64_C(1000000)
/* The largest amount (a grant, a price, a budget) accepted: a billion USD,
 * so that sums over any realistic ledger stay far from overflowing. */
#define PQ_MONEY_MAX_USD INT64_C(1000000000)

typedef struct pq_price {
  char *model;
  int64_t input_per_mtok, output_per_mtok;           /* what customers pay, micros per million tokens */
  int64_t cost_input_per_mtok, cost_output_per_mtok; /* what the operator pays */
  int64_t updated_at;
} pq_price;

void pq_price_free(pq_price *p);
void pq_price_free_array(pq_price **p, size_t n);

/* What tokens cost at a per-million price, rounded up to the micro (a
 * fraction of a micro is still charged: the operator never loses to
 * rounding). Saturates instead of overflowing. */
int64_t pq_micros_for_tokens(int64_t tokens, int64_t per_mtok);
/* A job's charge and the operator's cost from its usage. */
int64_t pq_price_charge(const pq_price *p, int64_t prompt_tokens, int64_t completion_tokens);
int64_t pq_price_cost(const pq_price *p, int64_t prompt_tokens, int64_t completion_tokens);
/* micros as USD (for documents that show decimals; never for arithmetic). */
double pq_micros_to_usd(int64_t micros);
/* "12.345678" (6 decimals, exact) into buf (at least 32 bytes). */
char *pq_micros_format(int64_t micros, char *buf, size_t size);
/* Parses a decimal USD amount ("10", "0.25", "1.000001") into micros: 0, or
 * -1 when it is not a plain non-negative decimal with at most 6 places, or
 * is above PQ_MONEY_MAX_USD. */
int pq_micros_parse(const char *text, int64_t *out);

typedef enum { PQ_TRANSFER_POSTED, PQ_TRANSFER_PENDING, PQ_TRANSFER_VOIDED } pq_transfer_state;

typedef struct pq_transfer {
  char *id;          /* idempotent: a second transfer with this id is refused */
  char *debit, *credit;
  int64_t amount;    /* > 0; a pending one reserves it, a posted one moved it */
  char *kind;        /* "grant", "hold", "charge", "cost", ... */
  char *job_id;      /* the job it pays for; NULL when none */
  pq_transfer_state state;
  int64_t posted;    /* a hold that was posted: the amount that moved (<= amount) */
  int64_t created_at, settled_at;
  char *key_id;      /* the API key whose job it pays for (per-key budgets); NULL when none */
} pq_transfer;

void pq_transfer_free(pq_transfer *t);
void pq_transfer_free_array(pq_transfer **t, size_t n);
const char *pq_transfer_state_name(pq_transfer_state s);

/* A spending limit: subject "user:<id>" or "key:<id>", period "day" or
 * "month" (UTC, calendar), checked at submit against what was spent since
 * the period began plus every open hold. */
typedef struct pq_budget {
  char *subject, *period;
  int64_t limit_micros;
  int64_t updated_at;
} pq_budget;

void pq_budget_free_array(pq_budget **b, size_t n);
/* When the period holding `now` began (wall ms, UTC); -1 for an unknown period. */
int64_t pq_budget_period_start(const char *period, int64_t now);

/* A subscription as its provider's events describe it (Stripe's ids). */
typedef struct pq_subscription {
  char *id, *user_id, *customer, *status; /* status: Stripe's words (active, past_due, canceled, ...) */
  int64_t current_period_end;             /* wall ms; 0: unknown */
  int64_t event_at;                       /* when the event that set it was created (wall ms) */
  int64_t updated_at;
} pq_subscription;

void pq_subscription_free(pq_subscription *s);

/* A Bitcoin payment request (document 003's exchange): pay amount_sats to
 * address before expires_at and credit_micros reach the user. */
typedef struct pq_btc_payment {
  char *id, *user_id, *address;
  int64_t amount_sats, credit_micros;
  char *status;        /* pending, confirmed (expired is pending past expires_at) */
  char *txid;          /* the transaction seen paying it; NULL until then */
  int64_t confirmations;
  int64_t created_at, expires_at, confirmed_at;
} pq_btc_payment;

void pq_btc_payment_free(pq_btc_payment *p);

/* A user's account in the ledger ("user:<id>"), into out. */
#define PQ_ACCOUNT_LEN 64
char *pq_user_account(char out[PQ_ACCOUNT_LEN], const char *user_id);

typedef struct pq_account {
  int64_t balance;   /* credit-positive: what a user may spend is balance - held */
  int64_t held;
} pq_account;

#endif
