#include "auth/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct pq_workpool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pq_work *head, *tail;
  size_t queued, max_queued;
  bool stop;
  int n_threads;
  pthread_t threads[];
};

static void *work_main(void *arg) {
  pq_workpool *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->head && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
    pq_work *w = p->head;
    if (!w) break;
    p->head = w->next;
    if (!p->head) p->tail = NULL;
    p->queued--;
    pthread_mutex_unlock(&p->mu);
    w->run(w);
    w->done(w);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

pq_workpool *pq_workpool_new(int threads, size_t max_queued) {
  pq_workpool *p = calloc(1, sizeof *p + (size_t)threads * sizeof(pthread_t));
  if (!p) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->max_queued = max_queued;
  for (; p->n_threads < threads; p->n_threads++)
    if (pthread_create(&p->threads[p->n_threads], NULL, work_main, p) != 0) break;
  if (p->n_threads == 0) {
    pq_workpool_free(p);
    return NULL;
  }
  return p;
}

void pq_workpool_free(pq_workpool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

pq_err pq_workpool_submit(pq_workpool *p, pq_work *w) {
  pthread_mutex_lock(&p->mu);
  if (p->queued >= p->max_queued || p->stop) {
    pthread_mutex_unlock(&p->mu);
    return PQ_ERR_RATE_LIMIT_EXCEEDED;
  }
  w->next = NULL;
  if (p->tail) p->tail->next = w;
  else p->head = w;
  p->tail = w;
  p->queued++;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return PQ_OK;
}
