/* Completion webhooks' records (model/webhook.h). */
#include "model/webhook.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_PREFIX "whsec_"
#define SECRET_BYTES 32

static const char *const STATE_NAMES[] = {
#define PQ__DELIVERY_NAME(name, str) str,
    PQ_DELIVERY_STATE_MAP(PQ__DELIVERY_NAME)
#undef PQ__DELIVERY_NAME
};

const char *pq_delivery_state_name(pq_delivery_state s) {
  return (size_t)s < sizeof STATE_NAMES / sizeof *STATE_NAMES ? STATE_NAMES[s] : "unknown";
}

int pq_delivery_state_parse(const char *name) {
  for (size_t i = 0; name && i < sizeof STATE_NAMES / sizeof *STATE_NAMES; i++)
    if (strcmp(STATE_NAMES[i], name) == 0) return (int)i;
  return -1;
}

void pq_webhook_free(pq_webhook *w) {
  if (!w) return;
  free(w->id);
  free(w->owner);
  free(w->key_id);
  free(w->url);
  free(w->secret);
  free(w->events);
  free(w);
}

void pq_webhook_free_array(pq_webhook **w, size_t n) {
  if (!w) return;
  for (size_t i = 0; i < n; i++) pq_webhook_free(w[i]);
  free(w);
}

void pq_delivery_free(pq_delivery *d) {
  if (!d) return;
  free(d->id);
  free(d->webhook_id);
  free(d->owner);
  free(d->job_id);
  free(d->url);
  free(d->event_type);
  free(d->payload);
  free(d->last_error);
  free(d->secret);
  free(d);
}

void pq_delivery_free_array(pq_delivery **d, size_t n) {
  if (!d) return;
  for (size_t i = 0; i < n; i++) pq_delivery_free(d[i]);
  free(d);
}

bool pq_webhook_wants(const char *events, const char *event) {
  if (!events || !event) return false;
  if (strcmp(events, "*") == 0) return true;
  size_t len = strlen(event);
  for (const char *p = events; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && strncmp(p, event, n) == 0) return true;
    if (!end) break;
    p = end + 1;
  }
  return false;
}

void pq_webhook_secret_new(char out[PQ_WEBHOOK_SECRET_LEN + 1]) {
  unsigned char raw[SECRET_BYTES];
  randombytes_buf(raw, sizeof raw);
  memcpy(out, SECRET_PREFIX, sizeof SECRET_PREFIX - 1);
  sodium_bin2base64(out + sizeof SECRET_PREFIX - 1, PQ_WEBHOOK_SECRET_LEN + 1 - (sizeof SECRET_PREFIX - 1), raw,
                    sizeof raw, sodium_base64_VARIANT_ORIGINAL);
  sodium_memzero(raw, sizeof raw);
}

int pq_webhook_sign(const char *secret, const char *id, int64_t timestamp, const char *body, size_t body_len,
                    char out[PQ_WEBHOOK_SIGNATURE_LEN + 1]) {
  if (!secret || strncmp(secret, SECRET_PREFIX, sizeof SECRET_PREFIX - 1) != 0) return -1;
  const char *b64 = secret + sizeof SECRET_PREFIX - 1;
  unsigned char key[64];
  size_t key_len = 0;
  if (sodium_base642bin(key, sizeof key, b64, strlen(b64), NULL, &key_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      key_len == 0)
    return -1;
  char head[128];
  int n = snprintf(head, sizeof head, "%s.%lld.", id, (long long)timestamp);
  if (n < 0 || (size_t)n >= sizeof head) return -1;
  crypto_auth_hmacsha256_state st;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_init(&st, key, key_len);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)head, (unsigned long long)n);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, (unsigned long long)body_len);
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_memzero(key, sizeof key);
  memcpy(out, "v1,", 3);
  sodium_bin2base64(out + 3, PQ_WEBHOOK_SIGNATURE_LEN + 1 - 3, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
  return 0;
}
