/* Prices and ledger records (model/money.h). */
#include "model/money.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pq_price_free(pq_price *p) {
  if (!p) return;
  free(p->model);
  free(p);
}

void pq_price_free_array(pq_price **p, size_t n) {
  for (size_t i = 0; i < n; i++) pq_price_free(p[i]);
  free(p);
}

int64_t pq_micros_for_tokens(int64_t tokens, int64_t per_mtok) {
  if (tokens <= 0 || per_mtok <= 0) return 0;
  __int128 total = (__int128)tokens * per_mtok;
  __int128 micros = (total + 999999) / 1000000;
  return micros > INT64_MAX ? INT64_MAX : (int64_t)micros;
}

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

int64_t pq_price_charge(const pq_price *p, int64_t prompt_tokens, int64_t completion_tokens) {
  return sat_add(pq_micros_for_tokens(prompt_tokens, p->input_per_mtok),
                 pq_micros_for_tokens(completion_tokens, p->output_per_mtok));
}

int64_t pq_price_cost(const pq_price *p, int64_t prompt_tokens, int64_t completion_tokens) {
  return sat_add(pq_micros_for_tokens(prompt_tokens, p->cost_input_per_mtok),
                 pq_micros_for_tokens(completion_tokens, p->cost_output_per_mtok));
}

double pq_micros_to_usd(int64_t micros) { return (double)micros / (double)PQ_MICROS_PER_USD; }

char *pq_micros_format(int64_t micros, char *buf, size_t size) {
  const char *sign = micros < 0 ? "-" : "";
  uint64_t m = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
  snprintf(buf, size, "%s%llu.%06llu", sign, (unsigned long long)(m / 1000000), (unsigned long long)(m % 1000000));
  return buf;
}

int pq_micros_parse(const char *text, int64_t *out) {
  const char *p = text;
  int64_t whole = 0, frac = 0;
  int digits = 0, places = 0;
  if (!p || !*p) return -1;
  for (; isdigit((unsigned char)*p); p++, digits++) {
    if (whole > (INT64_MAX / PQ_MICROS_PER_USD - 9) / 10) return -1;
    whole = whole * 10 + (*p - '0');
  }
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++, places++) {
      if (places == 6) return -1;
      frac = frac * 10 + (*p - '0');
    }
    if (places == 0) return -1;
  }
  if (*p || digits == 0 || whole > PQ_MONEY_MAX_USD) return -1;
  for (int i = places; i < 6; i++) frac *= 10;
  *out = whole * PQ_MICROS_PER_USD + frac;
  return *out > PQ_MONEY_MAX_USD * PQ_MICROS_PER_USD ? -1 : 0;
}

void pq_transfer_free(pq_transfer *t) {
  if (!t) return;
  free(t->id);
  free(t->debit);
  free(t->credit);
  free(t->kind);
  free(t->job_id);
  free(t->key_id);
  free(t);
}

void pq_transfer_free_array(pq_transfer **t, size_t n) {
  for (size_t i = 0; i < n; i++) pq_transfer_free(t[i]);
  free(t);
}

const char *pq_transfer_state_name(pq_transfer_state s) {
  return s == PQ_TRANSFER_PENDING ? "pending" : s == PQ_TRANSFER_VOIDED ? "voided" : "posted";
}

void pq_budget_free_array(pq_budget **b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(b[i]->subject);
    free(b[i]->period);
    free(b[i]);
  }
  free(b);
}

int64_t pq_budget_period_start(const char *period, int64_t now) {
  time_t secs = (time_t)(now / 1000);
  struct tm t;
  gmtime_r(&secs, &t);
  t.tm_hour = t.tm_min = t.tm_sec = 0;
  if (strcmp(period, "month") == 0) t.tm_mday = 1;
  else if (strcmp(period, "day") != 0) return -1;
  return (int64_t)timegm(&t) * 1000;
}

void pq_subscription_free(pq_subscription *s) {
  if (!s) return;
  free(s->id);
  free(s->user_id);
  free(s->customer);
  free(s->status);
  free(s);
}

void pq_btc_payment_free(pq_btc_payment *p) {
  if (!p) return;
  free(p->id);
  free(p->user_id);
  free(p->address);
  free(p->status);
  free(p->txid);
  free(p);
}

char *pq_user_account(char out[PQ_ACCOUNT_LEN], const char *user_id) {
  snprintf(out, PQ_ACCOUNT_LEN, "user:%s", user_id ? user_id : "");
  return out;
}
