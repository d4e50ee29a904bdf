/* Private to the coordinator (coord.c: the writer and the queue;
 * coord_ops.c: what each operation does inside a transaction). */
#ifndef PQ_ENGINE_INTERNAL_H
#define PQ_ENGINE_INTERNAL_H

#include <pthread.h>

#include "engine/coord.h"
#include "engine/sched.h"

#define PQ__KEY_LEASE 0 /* hub key under which waiting leases park */

struct pq_coord {
  pq_coord_config cfg;
  pq_store *store;
  const pq_store_ops *ops;
  pq_hub *hub;
  pq_sched *sched; /* writer thread only */
  pq_conn *wconn;  /* writer thread only */
  pthread_t writer;
  bool writer_started;
  pthread_mutex_t mu; /* guards the queue and the flags below */
  pthread_cond_t cv;
  pq_op *head, *tail;
  bool closing, stopped;
  int64_t next_reap_ms; /* monotonic */
  pq_coord_stats stats; /* written by the writer, read with atomics */
  pthread_mutex_t counts_mu; /* queued/leased per model, for the gauges */
  struct pq__model_count *counts;
  size_t n_counts, cap_counts;
};

typedef struct pq__model_count {
  char *model;
  int64_t queued, leased;
} pq__model_count;

/* A job of model moved from one state to another (-1: from nowhere). */
void pq__count_move(pq_coord *c, const char *model, int from, pq_job_state to);

/* One transaction's worth of work, on the writer thread. */
typedef struct pq__batch {
  pq_coord *c;
  int64_t now; /* wall clock for everything this transaction writes */
  char (*published)[PQ_UUID_LEN + 1]; /* jobs that changed: published after commit */
  size_t n_published, cap_published;
  pq_op **handed; /* waiting leases served in this transaction */
  size_t n_handed, cap_handed;
  char **offline; /* workers found offline by the reaper */
  size_t n_offline;
} pq__batch;

#define PQ__STAT_ADD(c, field, n) __atomic_fetch_add(&(c)->stats.field, (n), __ATOMIC_RELAXED)

/* coord_ops.c */
pq_err pq__op_run(pq__batch *b, pq_op *op);
pq_err pq__reap(pq__batch *b);
/* The models a lease op asks for (given, or the worker's). */
const char *const *pq__lease_models(const pq_op *op, size_t *n);
int pq__publish(pq__batch *b, const char *job_id);

static inline bool pq__fatal(pq_err e) {
  return e == PQ_ERR_STORE_FAILED || e == PQ_ERR_NO_MEMORY || e == PQ_ERR_INTERNAL;
}

#endif
