/* Rate limits: GCRA (the generic cell rate algorithm), per key.
 *
 * A policy allows `limit` requests per `window_s` seconds on average, and up
 * to `burst` at once. pq_gcra() is pure (the caller passes the time), so the
 * arithmetic is tested with an injected clock; pq_limiter keeps one state
 * per key (an API key, a user, an address) and forgets idle ones. */
#ifndef PQ_AUTH_RATELIMIT_H
#define PQ_AUTH_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pq_rate_policy {
  int64_t limit;     /* requests per window; 0 = unlimited */
  int64_t window_s;
  int64_t burst;
} pq_rate_policy;

typedef struct pq_rate_decision {
  bool allowed;
  int64_t remaining;      /* requests that could be made right now */
  int64_t reset_s;        /* until the burst is whole again */
  int64_t retry_after_s;  /* when refused: until the next request is allowed */
} pq_rate_decision;

/* *tat_us is the key's state ("theoretical arrival time", 0 when new). */
pq_rate_decision pq_gcra(const pq_rate_policy *p, int64_t *tat_us, int64_t now_us);

typedef struct pq_limiter pq_limiter;
pq_limiter *pq_limiter_new(void);
void pq_limiter_free(pq_limiter *l);
/* Thread-safe. key is copied. */
pq_rate_decision pq_limiter_check(pq_limiter *l, const pq_rate_policy *p, const char *key, int64_t now_us);

#endif
