/* The header deadline's watchdog: see deadline.h. */
#include "http/deadline.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

struct pq__conn_watch {
  int fd;
  int64_t deadline_ms; /* headers must be in by then; 0 while a request runs */
  bool cut;
  pq__conn_watch *prev, *next;
};

struct pq__watchdog {
  int64_t header_ms, idle_ms;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  bool stop;
  pq__conn_watch *head;
};

static void *watch_main(void *arg) {
  pq__watchdog *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    struct timespec ts = pq_clock_wait_until(NULL, pq_mono_ms() + 250, 250);
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    int64_t now = pq_mono_ms();
    for (pq__conn_watch *c = w->head; c; c = c->next) {
      int64_t due = __atomic_load_n(&c->deadline_ms, __ATOMIC_ACQUIRE);
      if (c->cut || !due || now < due) continue;
      /* under the lock: the connection cannot close (and its fd be reused) meanwhile */
      shutdown(c->fd, SHUT_RDWR);
      c->cut = true;
      pq_warn("http: a connection did not send its request headers in time; closed");
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

pq__watchdog *pq__watchdog_new(int64_t header_ms, int64_t idle_ms) {
  pq__watchdog *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->header_ms = header_ms;
  w->idle_ms = idle_ms;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, &attr);
  pthread_condattr_destroy(&attr);
  if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return NULL;
  }
  return w;
}

void pq__watchdog_free(pq__watchdog *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  while (w->head) {
    pq__conn_watch *c = w->head;
    w->head = c->next;
    free(c);
  }
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

pq__conn_watch *pq__watch_open(pq__watchdog *w, int fd) {
  pq__conn_watch *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fd = fd;
  c->deadline_ms = pq_mono_ms() + w->header_ms;
  pthread_mutex_lock(&w->mu);
  c->next = w->head;
  if (w->head) w->head->prev = c;
  w->head = c;
  pthread_mutex_unlock(&w->mu);
  return c;
}

void pq__watch_close(pq__watchdog *w, pq__conn_watch *c) {
  if (!c) return;
  pthread_mutex_lock(&w->mu);
  if (c->prev) c->prev->next = c->next;
  else w->head = c->next;
  if (c->next) c->next->prev = c->prev;
  pthread_mutex_unlock(&w->mu);
  free(c);
}

void pq__watch_headers_done(pq__conn_watch *c) {
  if (c) __atomic_store_n(&c->deadline_ms, 0, __ATOMIC_RELEASE);
}

void pq__watch_request_done(pq__watchdog *w, pq__conn_watch *c) {
  if (c) __atomic_store_n(&c->deadline_ms, pq_mono_ms() + w->idle_ms + w->header_ms, __ATOMIC_RELEASE);
}
