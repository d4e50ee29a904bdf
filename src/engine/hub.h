/* The waiter hub: the one place where requests wait for something to happen
 * (a job reaching a state, a job arriving for a worker).
 *
 * - Publishers call pq_hub_publish() after their change is committed.
 * - Every registration ends exactly once: woken by a publish, by its
 *   deadline (the hub's own timer thread), by shutdown, or removed by
 *   pq_hub_take()/pq_hub_cancel(). Woken waiters re-read the store.
 * - No lost wake-ups: read pq_hub_version() before reading the store and
 *   pass it to pq_hub_wait(); if anything was published for that key since,
 *   the wait is refused with PQ_ERR_STALE and the caller reads again.
 *
 * The wake callback runs on the publishing or timer thread, outside the hub's
 * lock; it must be short (resume a connection, queue an operation). The hub
 * never touches a waiter after calling its wake callback. */
#ifndef PQ_ENGINE_HUB_H
#define PQ_ENGINE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/error.h"

typedef enum { PQ_WAKE_PUBLISHED, PQ_WAKE_TIMEOUT, PQ_WAKE_SHUTDOWN } pq_wake_reason;

typedef struct pq_waiter pq_waiter;
typedef void (*pq_wake_fn)(pq_waiter *w, pq_wake_reason why);

/* Embedded in its owner's memory (borrowed by the hub while registered). */
struct pq_waiter {
  pq_wake_fn wake; /* set by the owner */
  void *data;      /* the owner's */
  /* private to the hub */
  uint64_t key;
  int64_t deadline_ms;
  pq_waiter *prev, *next;
  size_t timer_slot; /* 1-based position in the timer heap; 0 when none */
  bool registered;
};

typedef struct pq_hub pq_hub;

#define PQ_HUB_ANY_VERSION UINT64_MAX

/* Starts the timer thread; deadlines are read on clock (NULL: the system's;
 * borrowed). Returns NULL on failure; free with pq_hub_free. */
pq_hub *pq_hub_new(const pq_clock *clock);
/* Wakes what is left with PQ_WAKE_SHUTDOWN, stops the timer thread, frees. */
void pq_hub_free(pq_hub *hub);

uint64_t pq_hub_version(pq_hub *hub, uint64_t key);

/* Registers w under key until deadline_ms (the hub clock's mono; 0 = none).
 * Returns PQ_OK, PQ_ERR_STALE (something was published since seen_version)
 * or PQ_ERR_SHUTTING_DOWN. */
pq_err pq_hub_wait(pq_hub *hub, pq_waiter *w, uint64_t key, uint64_t seen_version,
                   int64_t deadline_ms);

/* Bumps key's version and wakes up to max waiters on it, oldest first.
 * Returns how many were woken. */
size_t pq_hub_publish(pq_hub *hub, uint64_t key, size_t max);

/* Removes, without waking, the oldest waiter on key for which match (when
 * given) is true. The caller then owns the waiter and its pending work. */
pq_waiter *pq_hub_take(pq_hub *hub, uint64_t key, bool (*match)(const pq_waiter *, const void *),
                       const void *arg);

/* Removes w without waking it. Returns false when w was not registered
 * (its wake callback has run or is running). */
bool pq_hub_cancel(pq_hub *hub, pq_waiter *w);

/* Wakes every waiter with PQ_WAKE_SHUTDOWN; later waits are refused. */
void pq_hub_shutdown(pq_hub *hub);

size_t pq_hub_count(pq_hub *hub);

/* Wakes, on the caller's thread, every waiter whose deadline has passed on
 * the hub's clock; returns how many. The timer thread does this by itself,
 * except on a manual clock: there the test that moves it calls this. */
size_t pq_hub_expire(pq_hub *hub);

#endif
