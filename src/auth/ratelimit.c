#include "auth/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "base/hash.h"

pq_rate_decision pq_gcra(const pq_rate_policy *p, int64_t *tat_us, int64_t now_us) {
  pq_rate_decision d = {.allowed = true, .remaining = 1};
  if (p->limit <= 0) return d;
  int64_t interval = p->window_s * 1000000 / p->limit; /* one request's worth of time */
  int64_t burst = p->burst > 0 ? p->burst : 1;
  int64_t capacity = interval * burst;
  int64_t tat = *tat_us > now_us ? *tat_us : now_us;
  int64_t next = tat + interval;
  if (next - now_us > capacity) { /* the burst is spent */
    int64_t wait = next - capacity - now_us;
    d.allowed = false;
    d.remaining = 0;
    d.retry_after_s = (wait + 999999) / 1000000;
    d.reset_s = (tat - now_us + 999999) / 1000000;
    return d;
  }
  *tat_us = next;
  d.remaining = (capacity - (next - now_us)) / interval;
  d.reset_s = (next - now_us + 999999) / 1000000;
  return d;
}

#define SHARDS 16
#define SWEEP_EVERY 4096

typedef struct entry {
  struct entry *next;
  int64_t tat;
  char key[];
} entry;

typedef struct {
  pthread_mutex_t mu;
  entry **buckets;
  size_t n_buckets, count, since_sweep;
} shard;

struct pq_limiter {
  shard shards[SHARDS];
};

static uint64_t hash_str(const char *s) { return pq_fnv1a_str(s); }

pq_limiter *pq_limiter_new(void) {
  pq_limiter *l = calloc(1, sizeof *l);
  for (int i = 0; l && i < SHARDS; i++) {
    pthread_mutex_init(&l->shards[i].mu, NULL);
    l->shards[i].n_buckets = 256;
    if (!(l->shards[i].buckets = calloc(256, sizeof(entry *)))) {
      pq_limiter_free(l);
      return NULL;
    }
  }
  return l;
}

void pq_limiter_free(pq_limiter *l) {
  if (!l) return;
  for (int i = 0; i < SHARDS; i++) {
    shard *s = &l->shards[i];
    for (size_t b = 0; s->buckets && b < s->n_buckets; b++)
      for (entry *e = s->buckets[b], *next; e; e = next) {
        next = e->next;
        free(e);
      }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
  }
  free(l);
}

/* Forgets keys whose state has fully recovered: they would start afresh anyway. */
static void sweep(shard *s, int64_t now) {
  for (size_t b = 0; b < s->n_buckets; b++) {
    entry **pp = &s->buckets[b];
    while (*pp) {
      if ((*pp)->tat <= now) {
        entry *gone = *pp;
        *pp = gone->next;
        free(gone);
        s->count--;
      } else {
        pp = &(*pp)->next;
      }
    }
  }
}

pq_rate_decision pq_limiter_check(pq_limiter *l, const pq_rate_policy *p, const char *key, int64_t now_us) {
  uint64_t h = hash_str(key);
  shard *s = &l->shards[h % SHARDS];
  pthread_mutex_lock(&s->mu);
  if (++s->since_sweep >= SWEEP_EVERY) {
    s->since_sweep = 0;
    sweep(s, now_us);
  }
  entry **slot = &s->buckets[(h / SHARDS) % s->n_buckets], *e = *slot;
  while (e && strcmp(e->key, key) != 0) e = e->next;
  int64_t fresh = 0, *tat = &fresh;
  if (e) tat = &e->tat;
  pq_rate_decision d = pq_gcra(p, tat, now_us);
  if (!e && fresh && (e = malloc(sizeof *e + strlen(key) + 1))) { /* remember only what was used */
    strcpy(e->key, key);
    e->tat = fresh;
    e->next = *slot;
    *slot = e;
    s->count++;
  }
  pthread_mutex_unlock(&s->mu);
  return d;
}
