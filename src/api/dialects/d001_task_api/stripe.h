/* Stripe, as document 001's payments use it (docs/payments.md): Checkout
 * Sessions created over Stripe's API (form-encoded, with an Idempotency-Key on
 * every create) and webhook signatures checked as Stripe specifies. Private
 * to the 001 dialect; the settings come from its environment. */
#ifndef PQ_D001_STRIPE_H
#define PQ_D001_STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pq_stripe_config {
  char secret_key[256];     /* STRIPE_SECRET_KEY: never logged */
  char api_base[512];       /* STRIPE_API_BASE, default https://api.stripe.com */
  char webhook_secret[256]; /* STRIPE_WEBHOOK_SECRET (whsec_...): never logged */
  char price_id[128];       /* STRIPE_PRICE_ID: the subscription's price */
  char success_url[512], cancel_url[512];
  char currency[8];         /* STRIPE_CURRENCY, default usd */
  int64_t micro_amount;     /* STRIPE_MICRO_AMOUNT: a micro-payment, in the currency's cents */
  int64_t credits_per_unit; /* STRIPE_CREDITS_PER_UNIT: USD of credit per unit of currency paid (default 1) */
} pq_stripe_config;

/* Reads the STRIPE_* variables (defaults for the unset ones). */
void pq_stripe_config_load(pq_stripe_config *c);

/* Checks a Stripe-Signature header ("t=...,v1=...,v1=...") over the raw
 * body: HMAC-SHA256 with secret over "t.body", any v1 matching (constant
 * time), t within tolerance_s of now_s. 0, or -1 with the reason in why. */
int pq_stripe_verify(const char *secret, const char *header, const char *body, size_t body_len, int64_t now_s,
                     int64_t tolerance_s, char *why, size_t why_size);

/* Creates a Checkout Session: form is the url-encoded fields (without the
 * URLs, which come from c). *url gets the session's url (free it). 0, or -1
 * with Stripe's (or the connection's) words in why. Blocks up to 20 s. */
int pq_stripe_checkout(const pq_stripe_config *c, const char *form, const char *idempotency_key, char **url,
                       char *why, size_t why_size);

/* Appends "&key=value" (value url-encoded) to a form being built. */
int pq_stripe_form_add(char **form, const char *key, const char *value);

#endif
