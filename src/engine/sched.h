/* The scheduler index: which queued job a worker gets next.
 *
 * Per model, a binary heap ordered by priority (higher first), then by job
 * number (older first), so choosing a job costs O(log n) whatever the queue
 * depth. Jobs waiting out a retry backoff sit in a separate heap ordered by
 * their not_before time until pq_sched_promote() moves them over.
 *
 * The index is a hint rebuilt from the store at start: the store stays the
 * truth, and a popped job that is no longer queued there is simply skipped
 * (this is how cancelled jobs leave the index).
 *
 * Not thread-safe: the coordinator's writer thread owns it. */
#ifndef PQ_ENGINE_SCHED_H
#define PQ_ENGINE_SCHED_H

#include <stddef.h>
#include <stdint.h>

typedef struct pq_sched pq_sched;

typedef struct pq_sched_item {
  int64_t number;
  int32_t priority;
  int32_t model;  /* index into the model table */
  int64_t not_before;
} pq_sched_item;

pq_sched *pq_sched_new(void);    /* NULL on OOM; free with pq_sched_free */
void pq_sched_free(pq_sched *s);
void pq_sched_clear(pq_sched *s);

/* Adds a job; a not_before in the future parks it in the delay heap.
 * Returns 0, or -1 on OOM. model is copied. */
int pq_sched_push(pq_sched *s, const char *model, int64_t number, int priority,
                  int64_t not_before, int64_t now);

/* Takes the best ready job among the given models (all models when n == 0).
 * Returns 1 and fills *out, or 0 when none is ready. */
int pq_sched_pop(pq_sched *s, const char *const *models, size_t n, pq_sched_item *out);

/* Moves delayed jobs whose time has come into their ready heaps.
 * Returns how many moved. */
size_t pq_sched_promote(pq_sched *s, int64_t now);

/* The earliest not_before among delayed jobs, or INT64_MAX when none. */
int64_t pq_sched_next_due(const pq_sched *s);

/* Ready jobs for one model (0 for an unknown model; NULL: all models), and
 * all jobs in the index, delayed ones included. */
size_t pq_sched_ready(const pq_sched *s, const char *model);
size_t pq_sched_total(const pq_sched *s);

/* The name of model index i (borrowed), for items returned by pop. */
const char *pq_sched_model_name(const pq_sched *s, int32_t model);

#endif
