/* Stripe's API and webhook signatures for document 001 (stripe.h). */
#include "api/dialects/d001_task_api/stripe.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

#define CREATE_TIMEOUT_S 20

static void env_or(char *out, size_t size, const char *name, const char *dflt) {
  const char *v = getenv(name);
  snprintf(out, size, "%s", v && *v ? v : dflt);
}

void pq_stripe_config_load(pq_stripe_config *c) {
  memset(c, 0, sizeof *c);
  env_or(c->secret_key, sizeof c->secret_key, "STRIPE_SECRET_KEY", "");
  env_or(c->api_base, sizeof c->api_base, "STRIPE_API_BASE", "https://api.stripe.com");
  env_or(c->webhook_secret, sizeof c->webhook_secret, "STRIPE_WEBHOOK_SECRET", "");
  env_or(c->price_id, sizeof c->price_id, "STRIPE_PRICE_ID", "");
  env_or(c->success_url, sizeof c->success_url, "STRIPE_SUCCESS_URL", "http://localhost:5000/payment/success");
  env_or(c->cancel_url, sizeof c->cancel_url, "STRIPE_CANCEL_URL", "http://localhost:5000/payment/cancel");
  env_or(c->currency, sizeof c->currency, "STRIPE_CURRENCY", "usd");
  const char *amount = getenv("STRIPE_MICRO_AMOUNT"), *per = getenv("STRIPE_CREDITS_PER_UNIT");
  c->micro_amount = amount && atoll(amount) > 0 ? atoll(amount) : 100;
  c->credits_per_unit = per && atoll(per) > 0 ? atoll(per) : 1;
  size_t n = strlen(c->api_base);
  if (n && c->api_base[n - 1] == '/') c->api_base[n - 1] = '\0';
}

/* ---- webhook signatures ---- */

static int hex_value(char h) {
  return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

int pq_stripe_verify(const char *secret, const char *header, const char *body, size_t body_len, int64_t now_s,
                     int64_t tolerance_s, char *why, size_t why_size) {
  if (!secret || !*secret) return snprintf(why, why_size, "no webhook secret is configured"), -1;
  if (!header || !*header) return snprintf(why, why_size, "no Stripe-Signature header"), -1;
  /* t= once; v1= any number of times (a rotated secret signs with both); other schemes ignored */
  const char *t = NULL;
  size_t t_len = 0;
  const char *v1[16];
  size_t v1_len[16], n_v1 = 0;
  for (const char *p = header; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 2 && strncmp(p, "t=", 2) == 0) t = p + 2, t_len = len - 2;
    else if (len > 3 && strncmp(p, "v1=", 3) == 0 && n_v1 < 16) v1[n_v1] = p + 3, v1_len[n_v1++] = len - 3;
    p = end ? end + 1 : p + len;
  }
  if (!t || !n_v1 || t_len > 20) return snprintf(why, why_size, "the Stripe-Signature header has no t= or no v1="), -1;
  char stamp[24];
  memcpy(stamp, t, t_len);
  stamp[t_len] = '\0';
  char *stop;
  long long ts = strtoll(stamp, &stop, 10);
  if (*stop || ts <= 0) return snprintf(why, why_size, "the signature's timestamp is not a number"), -1;
  if (ts < now_s - tolerance_s || ts > now_s + tolerance_s)
    return snprintf(why, why_size, "the signature's timestamp is outside the %lld s tolerance", (long long)tolerance_s),
           -1;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)stamp, t_len);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
  crypto_auth_hmacsha256_final(&st, mac);
  bool ok = false;
  for (size_t i = 0; i < n_v1; i++) {
    unsigned char given[crypto_auth_hmacsha256_BYTES];
    if (v1_len[i] != 2 * sizeof given) continue;
    bool hex = true;
    for (size_t k = 0; k < sizeof given && hex; k++) {
      int hi = hex_value(v1[i][2 * k]), lo = hex_value(v1[i][2 * k + 1]);
      hex = hi >= 0 && lo >= 0;
      given[k] = (unsigned char)(hi << 4 | lo);
    }
    ok |= hex && sodium_memcmp(given, mac, sizeof mac) == 0; /* constant time; every v1 looked at */
  }
  sodium_memzero(mac, sizeof mac);
  if (!ok) return snprintf(why, why_size, "no v1 signature matches"), -1;
  return 0;
}

/* ---- the API ---- */

int pq_stripe_form_add(char **form, const char *key, const char *value) {
  char *v = curl_easy_escape(NULL, value ? value : "", 0);
  char *k = curl_easy_escape(NULL, key, 0);
  size_t old = *form ? strlen(*form) : 0;
  char *grown = v && k ? realloc(*form, old + strlen(k) + strlen(v) + 3) : NULL;
  if (grown) sprintf(grown + old, "%s%s=%s", old ? "&" : "", k, v);
  curl_free(v);
  curl_free(k);
  if (!grown) return -1;
  *form = grown;
  return 0;
}

static size_t collect(char *ptr, size_t size, size_t n, void *ud) {
  return pq_buf_add(ud, ptr, size * n) == 0 ? size * n : 0;
}

int pq_stripe_checkout(const pq_stripe_config *c, const char *form, const char *idempotency_key, char **url,
                       char *why, size_t why_size) {
  *url = NULL;
  if (!*c->secret_key) return snprintf(why, why_size, "payments are not configured (STRIPE_SECRET_KEY)"), -1;
  char *body = strdup(form);
  if (!body || pq_stripe_form_add(&body, "success_url", c->success_url) ||
      pq_stripe_form_add(&body, "cancel_url", c->cancel_url)) {
    free(body);
    return snprintf(why, why_size, "out of memory"), -1;
  }
  char endpoint[600], auth[300], idem[300];
  snprintf(endpoint, sizeof endpoint, "%s/v1/checkout/sessions", c->api_base);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->secret_key);
  snprintf(idem, sizeof idem, "Idempotency-Key: %s", idempotency_key);
  struct curl_slist *headers = curl_slist_append(NULL, auth);
  headers = curl_slist_append(headers, idem);
  headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
  pq_buf answer = {0};
  CURL *h = curl_easy_init();
  long status = 0;
  CURLcode rc = CURLE_FAILED_INIT;
  if (h && headers) {
    curl_easy_setopt(h, CURLOPT_URL, endpoint);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)CREATE_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  }
  json_t *j = answer.data ? json_loads(answer.data, 0, NULL) : NULL;
  int result = -1;
  if (rc != CURLE_OK) snprintf(why, why_size, "Stripe could not be reached: %s", curl_easy_strerror(rc));
  else if (status != 200) {
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    snprintf(why, why_size, "Stripe refused the checkout (%ld): %s", status, msg ? msg : "no message");
  } else if (!json_is_string(json_object_get(j, "url"))) snprintf(why, why_size, "Stripe's answer has no url");
  else if ((*url = strdup(json_string_value(json_object_get(j, "url"))))) result = 0;
  json_decref(j);
  pq_buf_free(&answer);
  curl_slist_free_all(headers);
  if (h) curl_easy_cleanup(h);
  free(body);
  return result;
}
