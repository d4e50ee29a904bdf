#include "engine/hub.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"

#define HUB_BUCKETS 4096
#define WAKE_CHUNK 64

typedef struct {
  pq_waiter *head, *tail;
  uint64_t version;
} bucket;

struct pq_hub {
  pthread_mutex_t mu;
  pthread_cond_t timer_cv;
  pthread_t timer_thread;
  bucket buckets[HUB_BUCKETS];
  pq_waiter **timers; /* min-heap by deadline */
  size_t n_timers, cap_timers;
  size_t n_waiters;
  bool shut, stop_timer;
  const pq_clock *clock; /* borrowed */
};

static bucket *bucket_for(pq_hub *hub, uint64_t key) {
  return &hub->buckets[(key * 0x9E3779B97F4A7C15ull) >> 52];
}

/* ---- timer heap (hub->mu held) ---- */

static void timer_set(pq_hub *hub, size_t i, pq_waiter *w) {
  hub->timers[i] = w;
  w->timer_slot = i + 1;
}

static void timer_sift_up(pq_hub *hub, size_t i) {
  pq_waiter *w = hub->timers[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (hub->timers[parent]->deadline_ms <= w->deadline_ms) break;
    timer_set(hub, i, hub->timers[parent]);
    i = parent;
  }
  timer_set(hub, i, w);
}

static void timer_sift_down(pq_hub *hub, size_t i) {
  pq_waiter *w = hub->timers[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= hub->n_timers) break;
    if (child + 1 < hub->n_timers &&
        hub->timers[child + 1]->deadline_ms < hub->timers[child]->deadline_ms)
      child++;
    if (hub->timers[child]->deadline_ms >= w->deadline_ms) break;
    timer_set(hub, i, hub->timers[child]);
    i = child;
  }
  timer_set(hub, i, w);
}

static int timer_add(pq_hub *hub, pq_waiter *w) {
  if (hub->n_timers == hub->cap_timers) {
    size_t cap = hub->cap_timers ? hub->cap_timers * 2 : 64;
    pq_waiter **grown = realloc(hub->timers, cap * sizeof *grown);
    if (!grown) return -1;
    hub->timers = grown;
    hub->cap_timers = cap;
  }
  timer_set(hub, hub->n_timers++, w);
  timer_sift_up(hub, hub->n_timers - 1);
  return 0;
}

static void timer_remove(pq_hub *hub, pq_waiter *w) {
  if (!w->timer_slot) return;
  size_t i = w->timer_slot - 1;
  w->timer_slot = 0;
  pq_waiter *last = hub->timers[--hub->n_timers];
  if (i == hub->n_timers) return;
  timer_set(hub, i, last);
  timer_sift_down(hub, i);
  timer_sift_up(hub, last->timer_slot - 1);
}

/* ---- waiter lists (hub->mu held) ---- */

static void unlink_waiter(pq_hub *hub, pq_waiter *w) {
  bucket *b = bucket_for(hub, w->key);
  if (w->prev) w->prev->next = w->next; else b->head = w->next;
  if (w->next) w->next->prev = w->prev; else b->tail = w->prev;
  w->prev = w->next = NULL;
  timer_remove(hub, w);
  w->registered = false;
  hub->n_waiters--;
}

static void wake_all(pq_waiter **list, size_t n, pq_wake_reason why) {
  for (size_t i = 0; i < n; i++) list[i]->wake(list[i], why);
}

/* Takes up to WAKE_CHUNK waiters whose deadline has passed; hub->mu held. */
static size_t take_due(pq_hub *hub, pq_waiter **due) {
  int64_t now = pq_clock_mono(hub->clock);
  size_t n = 0;
  while (n < WAKE_CHUNK && hub->n_timers > 0 && hub->timers[0]->deadline_ms <= now) {
    pq_waiter *w = hub->timers[0];
    unlink_waiter(hub, w);
    due[n++] = w;
  }
  return n;
}

static void *timer_main(void *arg) {
  pq_hub *hub = arg;
  pq_waiter *due[WAKE_CHUNK];
  pthread_mutex_lock(&hub->mu);
  while (!hub->stop_timer) {
    if (hub->n_timers == 0 || hub->clock->manual) { /* a manual clock's deadlines pass in pq_hub_expire */
      pthread_cond_wait(&hub->timer_cv, &hub->mu);
      continue;
    }
    if (hub->timers[0]->deadline_ms > pq_clock_mono(hub->clock)) {
      struct timespec ts = pq_clock_wait_until(hub->clock, hub->timers[0]->deadline_ms, 1000);
      pthread_cond_timedwait(&hub->timer_cv, &hub->mu, &ts);
      continue;
    }
    size_t n = take_due(hub, due);
    pthread_mutex_unlock(&hub->mu);
    wake_all(due, n, PQ_WAKE_TIMEOUT);
    pthread_mutex_lock(&hub->mu);
  }
  pthread_mutex_unlock(&hub->mu);
  return NULL;
}

size_t pq_hub_expire(pq_hub *hub) {
  pq_waiter *due[WAKE_CHUNK];
  size_t total = 0, n;
  do {
    pthread_mutex_lock(&hub->mu);
    n = take_due(hub, due);
    pthread_mutex_unlock(&hub->mu);
    wake_all(due, n, PQ_WAKE_TIMEOUT);
    total += n;
  } while (n == WAKE_CHUNK);
  return total;
}

pq_hub *pq_hub_new(const pq_clock *clock) {
  pq_hub *hub = calloc(1, sizeof *hub);
  if (!hub) return NULL;
  hub->clock = clock ? clock : &pq_clock_system;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_mutex_init(&hub->mu, NULL);
  pthread_cond_init(&hub->timer_cv, &attr);
  pthread_condattr_destroy(&attr);
  if (pthread_create(&hub->timer_thread, NULL, timer_main, hub) != 0) {
    pthread_cond_destroy(&hub->timer_cv);
    pthread_mutex_destroy(&hub->mu);
    free(hub);
    return NULL;
  }
  return hub;
}

void pq_hub_free(pq_hub *hub) {
  if (!hub) return;
  pq_hub_shutdown(hub);
  pthread_mutex_lock(&hub->mu);
  hub->stop_timer = true;
  pthread_cond_signal(&hub->timer_cv);
  pthread_mutex_unlock(&hub->mu);
  pthread_join(hub->timer_thread, NULL);
  pthread_cond_destroy(&hub->timer_cv);
  pthread_mutex_destroy(&hub->mu);
  free(hub->timers);
  free(hub);
}

uint64_t pq_hub_version(pq_hub *hub, uint64_t key) {
  pthread_mutex_lock(&hub->mu);
  uint64_t v = bucket_for(hub, key)->version;
  pthread_mutex_unlock(&hub->mu);
  return v;
}

pq_err pq_hub_wait(pq_hub *hub, pq_waiter *w, uint64_t key, uint64_t seen_version,
                   int64_t deadline_ms) {
  pq_err result = PQ_OK;
  pthread_mutex_lock(&hub->mu);
  bucket *b = bucket_for(hub, key);
  if (hub->shut) {
    result = PQ_ERR_SHUTTING_DOWN;
    goto out;
  }
  if (seen_version != PQ_HUB_ANY_VERSION && b->version != seen_version) {
    result = PQ_ERR_STALE;
    goto out;
  }
  w->key = key;
  w->deadline_ms = deadline_ms;
  w->timer_slot = 0;
  w->next = NULL;
  w->prev = b->tail;
  if (deadline_ms > 0) {
    if (timer_add(hub, w) != 0) {
      result = PQ_ERR_NO_MEMORY;
      goto out;
    }
    if (hub->timers[0] == w) pthread_cond_signal(&hub->timer_cv);
  }
  if (b->tail) b->tail->next = w; else b->head = w;
  b->tail = w;
  w->registered = true;
  hub->n_waiters++;
out:
  pthread_mutex_unlock(&hub->mu);
  return result;
}

size_t pq_hub_publish(pq_hub *hub, uint64_t key, size_t max) {
  pq_waiter *woken[WAKE_CHUNK];
  size_t total = 0;
  bool bumped = false;
  for (;;) {
    size_t n = 0;
    pthread_mutex_lock(&hub->mu);
    bucket *b = bucket_for(hub, key);
    if (!bumped) {
      b->version++;
      bumped = true;
    }
    pq_waiter *w = b->head;
    while (w && n < WAKE_CHUNK && total + n < max) {
      pq_waiter *next = w->next;
      if (w->key == key) {
        unlink_waiter(hub, w);
        woken[n++] = w;
      }
      w = next;
    }
    pthread_mutex_unlock(&hub->mu);
    wake_all(woken, n, PQ_WAKE_PUBLISHED);
    total += n;
    if (n < WAKE_CHUNK || total >= max) return total;
  }
}

pq_waiter *pq_hub_take(pq_hub *hub, uint64_t key, bool (*match)(const pq_waiter *, const void *),
                       const void *arg) {
  pthread_mutex_lock(&hub->mu);
  pq_waiter *w = bucket_for(hub, key)->head;
  for (; w; w = w->next) {
    if (w->key == key && (!match || match(w, arg))) {
      unlink_waiter(hub, w);
      break;
    }
  }
  pthread_mutex_unlock(&hub->mu);
  return w;
}

bool pq_hub_cancel(pq_hub *hub, pq_waiter *w) {
  pthread_mutex_lock(&hub->mu);
  bool was = w->registered;
  if (was) unlink_waiter(hub, w);
  pthread_mutex_unlock(&hub->mu);
  return was;
}

void pq_hub_shutdown(pq_hub *hub) {
  pq_waiter *woken[WAKE_CHUNK];
  for (;;) {
    size_t n = 0;
    pthread_mutex_lock(&hub->mu);
    hub->shut = true;
    for (size_t i = 0; i < HUB_BUCKETS && n < WAKE_CHUNK; i++) {
      while (hub->buckets[i].head && n < WAKE_CHUNK) {
        pq_waiter *w = hub->buckets[i].head;
        unlink_waiter(hub, w);
        woken[n++] = w;
      }
    }
    pthread_mutex_unlock(&hub->mu);
    if (n == 0) return;
    wake_all(woken, n, PQ_WAKE_SHUTDOWN);
  }
}

size_t pq_hub_count(pq_hub *hub) {
  pthread_mutex_lock(&hub->mu);
  size_t n = hub->n_waiters;
  pthread_mutex_unlock(&hub->mu);
  return n;
}
