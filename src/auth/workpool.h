/* A few threads for blocking work that must not run on an HTTP thread
 * (password hashing). The pool's size caps how many run at once; beyond
 * max_queued, submissions are refused. */
#ifndef PQ_AUTH_WORKPOOL_H
#define PQ_AUTH_WORKPOOL_H

#include <stddef.h>

#include "base/error.h"

typedef struct pq_workpool pq_workpool;

typedef struct pq_work {
  void (*run)(struct pq_work *w);   /* on a pool thread */
  void (*done)(struct pq_work *w);  /* right after, same thread */
  struct pq_work *next;             /* private */
} pq_work;

pq_workpool *pq_workpool_new(int threads, size_t max_queued);
/* Finishes queued work, then stops the threads. */
void pq_workpool_free(pq_workpool *p);
/* PQ_OK, or PQ_ERR_RATE_LIMIT_EXCEEDED when the queue is full (w untouched). */
pq_err pq_workpool_submit(pq_workpool *p, pq_work *w);

#endif
