/* An hour of throughput per model, in memory: jobs ended and tokens made per
 * 10-second bucket, for the dashboard's chart. The writer adds as jobs end;
 * anyone reads. Buckets are a ring indexed by bucket number, so a bucket is
 * cleared when time comes back round to it, and nothing ever scans the store.
 * Counts are of this coordinator's writer since it started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

struct pq__throughput {
  pthread_mutex_t mu;
  int64_t newest; /* the newest bucket's number (ms / bucket); every model's ring is cleared up to it */
  size_t n;
  struct {
    char model[64];
    uint32_t jobs[PQ_THROUGHPUT_BUCKETS];
    uint64_t tokens[PQ_THROUGHPUT_BUCKETS];
  } m[PQ_THROUGHPUT_MODELS];
};

pq__throughput *pq__throughput_new(void) {
  pq__throughput *t = calloc(1, sizeof *t);
  if (t) pthread_mutex_init(&t->mu, NULL);
  return t;
}

void pq__throughput_free(pq__throughput *t) {
  if (!t) return;
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* Moves the ring forward to bucket `now`, clearing what it passes. */
static void advance(pq__throughput *t, int64_t now) {
  if (now <= t->newest) return;
  int64_t from = now - t->newest > PQ_THROUGHPUT_BUCKETS ? now - PQ_THROUGHPUT_BUCKETS : t->newest;
  for (int64_t b = from + 1; b <= now; b++)
    for (size_t i = 0; i < t->n; i++) {
      t->m[i].jobs[b % PQ_THROUGHPUT_BUCKETS] = 0;
      t->m[i].tokens[b % PQ_THROUGHPUT_BUCKETS] = 0;
    }
  t->newest = now;
}

void pq__throughput_add(pq__throughput *t, int64_t now_ms, const char *model, int64_t tokens) {
  if (!t) return;
  int64_t bucket = now_ms / PQ_THROUGHPUT_BUCKET_MS;
  pthread_mutex_lock(&t->mu);
  advance(t, bucket);
  size_t i = 0;
  while (i < t->n && strcmp(t->m[i].model, model) != 0) i++;
  if (i == t->n && t->n < PQ_THROUGHPUT_MODELS - 1) { /* the last row counts every other model */
    memset(&t->m[i], 0, sizeof t->m[i]);
    snprintf(t->m[i].model, sizeof t->m[i].model, "%s", model);
    t->n++;
  } else if (i == t->n) {
    i = PQ_THROUGHPUT_MODELS - 1;
    if (t->n == i) {
      memset(&t->m[i], 0, sizeof t->m[i]);
      snprintf(t->m[i].model, sizeof t->m[i].model, "(other)");
      t->n++;
    }
  }
  if (bucket > t->newest - PQ_THROUGHPUT_BUCKETS) { /* a clock stepped back an hour counts nowhere */
    t->m[i].jobs[bucket % PQ_THROUGHPUT_BUCKETS]++;
    t->m[i].tokens[bucket % PQ_THROUGHPUT_BUCKETS] += tokens > 0 ? (uint64_t)tokens : 0;
  }
  pthread_mutex_unlock(&t->mu);
}

void pq_coord_throughput(pq_coord *c, int64_t *first_bucket_ms,
                         void (*fn)(void *ctx, const char *model, const uint32_t *jobs, const uint64_t *tokens),
                         void *ctx) {
  pq__throughput *t = c->throughput;
  int64_t now = pq_clock_wall(c->clock) / PQ_THROUGHPUT_BUCKET_MS;
  *first_bucket_ms = (now - PQ_THROUGHPUT_BUCKETS + 1) * PQ_THROUGHPUT_BUCKET_MS;
  if (!t) return;
  uint32_t jobs[PQ_THROUGHPUT_BUCKETS];
  uint64_t tokens[PQ_THROUGHPUT_BUCKETS];
  pthread_mutex_lock(&t->mu);
  advance(t, now);
  for (size_t i = 0; i < t->n; i++) {
    for (size_t k = 0; k < PQ_THROUGHPUT_BUCKETS; k++) { /* oldest first */
      size_t slot = (size_t)((now + 1 + (int64_t)k) % PQ_THROUGHPUT_BUCKETS);
      jobs[k] = t->m[i].jobs[slot];
      tokens[k] = t->m[i].tokens[slot];
    }
    fn(ctx, t->m[i].model, jobs, tokens);
  }
  pthread_mutex_unlock(&t->mu);
}
