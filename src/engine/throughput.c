/* An hour of throughput per model, in memory: jobs ended and tokens made per
 * 10-second bucket, for the dashboard's chart. The writer adds, after each
 * commit, the jobs that ended in it; anyone reads. Buckets are a ring
 * indexed by bucket number, so a bucket is cleared when time comes back
 * round to it, and nothing ever scans the store. Counts are of this
 * coordinator's writer since it started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

typedef struct {
  char model[PQ_THROUGHPUT_MODEL_LEN + 1];
  int64_t last_bucket; /* the newest bucket it counted in: a row idle for an hour is given back */
  uint32_t jobs[PQ_THROUGHPUT_BUCKETS];
  uint64_t tokens[PQ_THROUGHPUT_BUCKETS];
} row;

struct pq__throughput {
  pthread_mutex_t mu;
  bool started;
  int64_t newest; /* the newest bucket's number (ms / bucket); every row is cleared up to it */
  size_t n;                          /* rows with a model of their own */
  row rows[PQ_THROUGHPUT_MODELS - 1];
  row other;                         /* every other model, once rows run out */
  bool has_other;
};

/* A bucket's slot in the ring; bucket numbers are never negative (times are clamped at 0). */
static size_t slot(int64_t bucket) { return (size_t)(bucket % PQ_THROUGHPUT_BUCKETS); }

static int64_t bucket_of(int64_t ms) { return ms > 0 ? ms / PQ_THROUGHPUT_BUCKET_MS : 0; }

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

/* Moves the ring forward to bucket `now`, clearing what it passes; a clock
 * that stepped back leaves it where it is (its counts go to the newest). */
static void advance(pq__throughput *t, int64_t now) {
  if (!t->started) {
    t->started = true;
    t->newest = now;
    return;
  }
  if (now <= t->newest) return;
  int64_t from = now - t->newest > PQ_THROUGHPUT_BUCKETS ? now - PQ_THROUGHPUT_BUCKETS : t->newest;
  for (int64_t b = from + 1; b <= now; b++)
    for (size_t i = 0; i < t->n; i++) {
      t->rows[i].jobs[slot(b)] = 0;
      t->rows[i].tokens[slot(b)] = 0;
    }
  for (int64_t b = from + 1; b <= now; b++) t->other.jobs[slot(b)] = 0, t->other.tokens[slot(b)] = 0;
  t->newest = now;
}

#define OTHER "(other)"

/* The last row: every model without one of its own. */
static row *other_row(pq__throughput *t) {
  if (!t->has_other) {
    memset(&t->other, 0, sizeof t->other);
    snprintf(t->other.model, sizeof t->other.model, OTHER);
    t->has_other = true;
  }
  return &t->other;
}

/* The row that counts model: its own, a free one, one idle for an hour (its
 * ring is all zeros), or "(other)" once every row is taken. */
static row *row_for(pq__throughput *t, const char *model) {
  if (strcmp(model, OTHER) == 0 || strlen(model) > PQ_THROUGHPUT_MODEL_LEN) return other_row(t);
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->rows[i].model, model) == 0) return &t->rows[i];
  size_t take = t->n;
  for (size_t i = 0; i < t->n && take == t->n; i++)
    if (t->newest - t->rows[i].last_bucket >= PQ_THROUGHPUT_BUCKETS) take = i;
  if (take == t->n) {
    if (t->n == PQ_THROUGHPUT_MODELS - 1) return other_row(t);
    t->n++;
  }
  memset(&t->rows[take], 0, sizeof t->rows[take]);
  snprintf(t->rows[take].model, sizeof t->rows[take].model, "%s", model);
  return &t->rows[take];
}

void pq__throughput_add(pq__throughput *t, int64_t now_ms, const char *model, int64_t tokens) {
  if (!t) return;
  pthread_mutex_lock(&t->mu);
  advance(t, bucket_of(now_ms));
  row *r = row_for(t, model); /* a name too long for a row, like any past the rows there are: "(other)" */
  r->jobs[slot(t->newest)]++;
  r->tokens[slot(t->newest)] += tokens > 0 ? (uint64_t)tokens : 0;
  r->last_bucket = t->newest;
  pthread_mutex_unlock(&t->mu);
}

size_t pq_coord_throughput(pq_coord *c, int64_t *first_bucket_ms, pq_throughput_row *out, size_t max) {
  pq__throughput *t = c->throughput;
  int64_t now = bucket_of(pq_clock_wall(c->clock));
  size_t n = 0;
  if (t) {
    pthread_mutex_lock(&t->mu); /* copies only: the writer waits on this lock */
    advance(t, now);
    now = t->newest; /* a clock that stepped back reads the ring as it is */
    for (size_t i = 0; i <= t->n && n < max; i++) {
      const row *r = i < t->n ? &t->rows[i] : t->has_other ? &t->other : NULL;
      if (!r) break;
      snprintf(out[n].model, sizeof out[n].model, "%s", r->model);
      for (size_t k = 0; k < PQ_THROUGHPUT_BUCKETS; k++) { /* oldest first */
        size_t at = slot(now + 1 + (int64_t)k);
        out[n].jobs[k] = r->jobs[at];
        out[n].tokens[k] = r->tokens[at];
      }
      n++;
    }
    pthread_mutex_unlock(&t->mu);
  }
  *first_bucket_ms = (now - PQ_THROUGHPUT_BUCKETS + 1) * PQ_THROUGHPUT_BUCKET_MS;
  return n;
}
