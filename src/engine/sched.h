/* The scheduler index: which queued job a worker gets next.
 *
 * Fair between owners. Per model, each owner with jobs ready has a lane: a
 * binary heap ordered by priority (higher first), then by job number (older
 * first). The lanes take turns (deficit round robin): an owner of weight w
 * gets up to w leases in a row, then the next owner with work has its turn,
 * and an owner whose first job arrives joins the end of the round. So one
 * owner's 100,000 queued jobs delay another's single job by at most one turn
 * of each owner with work, whatever the queue depth; priority orders only
 * the jobs of one owner. Jobs at or above the operator's urgent priority
 * (pq_sched_set_urgent; none by default) go before every turn, by priority.
 * Choosing a job costs O(log n) plus, when owners are at their running
 * limit, one step per owner passed over.
 *
 * Jobs waiting out a retry backoff sit in a separate heap ordered by their
 * not_before time until pq_sched_promote() moves them over.
 *
 * The index is a hint rebuilt from the store at start (turns start afresh):
 * the store stays the truth, and a popped job that is no longer queued there
 * is simply skipped (this is how cancelled jobs leave the index).
 *
 * Not thread-safe: the coordinator's writer thread owns it. */
#ifndef PQ_ENGINE_SCHED_H
#define PQ_ENGINE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pq_sched pq_sched;

typedef struct pq_sched_item {
  int64_t number;
  int32_t priority;
  int32_t model;  /* index into the model table */
  int32_t owner;  /* index into the owner table */
  int64_t not_before;
} pq_sched_item;

pq_sched *pq_sched_new(void);    /* NULL on OOM; free with pq_sched_free */
void pq_sched_free(pq_sched *s);
void pq_sched_clear(pq_sched *s);

/* Adds a job of owner ("" for an open server's); a not_before in the future
 * parks it in the delay heap. Returns 0, or -1 on OOM. model and owner are
 * copied. */
int pq_sched_push(pq_sched *s, const char *model, const char *owner, int64_t number, int priority,
                  int64_t not_before, int64_t now);

/* May this owner take one more job of this lane now (its running limits)? NULL: anyone may.
 * key: the lane's model as pushed (engine/routing.c: a model, or a model and a requirement class). */
typedef bool (*pq_sched_may_fn)(void *ctx, const char *owner, const char *key);

/* Takes the next ready job among the given models (all models when n == 0):
 * per model the urgent one first, else the one whose owner's turn it is
 * (owners may() refuses are passed over, their jobs kept); between models,
 * the owner served longest ago, then the better job (priority, then age).
 * Returns 1 and fills *out, or 0 when none is ready. Call pq_sched_charge
 * once the job is really leased: a job found stale costs its owner nothing. */
int pq_sched_pop(pq_sched *s, const char *const *models, size_t n, pq_sched_may_fn may, void *ctx,
                 pq_sched_item *out);
/* The popped item was leased: it counts against its owner's turn. */
void pq_sched_charge(pq_sched *s, const pq_sched_item *item);
/* Would pq_sched_pop find a job (a waiting lease need not wait)? */
bool pq_sched_can_pop(const pq_sched *s, const char *const *models, size_t n, pq_sched_may_fn may, void *ctx);

/* An owner's weight: its turns are that many leases long (1 by default, at
 * most 1000). Returns 0, or -1 on OOM. */
int pq_sched_set_weight(pq_sched *s, const char *owner, int weight);
/* Jobs of at least this priority go before every turn (INT32_MAX: none, the default). */
void pq_sched_set_urgent(pq_sched *s, int32_t priority);

/* Moves delayed jobs whose time has come into their lanes. Returns how many moved. */
size_t pq_sched_promote(pq_sched *s, int64_t now);

/* The earliest not_before among delayed jobs, or INT64_MAX when none. */
int64_t pq_sched_next_due(const pq_sched *s);

/* Ready jobs for one model (0 for an unknown model; NULL: all models), and
 * all jobs in the index, delayed ones included. */
size_t pq_sched_ready(const pq_sched *s, const char *model);
size_t pq_sched_total(const pq_sched *s);

/* Drops what a lane key's queue holds and the memory of its lanes, when the
 * caller knows every job in it is gone (a requirement class with no queued
 * job: engine/routing.c). The key's name stays, so it may come back; a
 * delayed entry of it that comes due later makes its lane again. */
void pq_sched_forget(pq_sched *s, const char *key);
/* How many models (lane keys) the index has named so far; indices run from 0. */
size_t pq_sched_models(const pq_sched *s);
/* The name of model or owner index i (borrowed), for items returned by pop. */
const char *pq_sched_model_name(const pq_sched *s, int32_t model);
const char *pq_sched_owner_name(const pq_sched *s, int32_t owner);

#endif
