/* Time. All times in promptq are integer milliseconds.
 *
 * pq_now_ms()/pq_mono_ms() read the machine's clocks. Code whose behaviour
 * depends on time passing (the engine's leases, retries, ttls and reaper;
 * the hub's deadlines; the rate limiter) reads a pq_clock instead, so tests
 * can drive time with a manual clock rather than sleep or race it. */
#ifndef PQ_BASE_CLOCK_H
#define PQ_BASE_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t pq_now_ms(void);        /* wall clock, ms since the Unix epoch */
int64_t pq_mono_ms(void);       /* monotonic, for durations and timers */
int64_t pq_mono_us(void);

/* A source of time: wall (epoch ms, written into records) and monotonic (for
 * deadlines). Borrowed by whoever reads it; must outlive them. */
typedef struct pq_clock pq_clock;
struct pq_clock {
  int64_t (*wall_ms)(const pq_clock *c);
  int64_t (*mono_ms)(const pq_clock *c);
  bool manual; /* moves only when told: sleepers re-check it, they cannot wait for it */
};

/* The machine's clocks. */
extern const pq_clock pq_clock_system;

/* A clock that stands still until pq_manual_clock_advance (thread-safe). */
typedef struct pq_manual_clock {
  pq_clock clock;
  int64_t wall, mono;
} pq_manual_clock;

void pq_manual_clock_init(pq_manual_clock *m, int64_t wall_ms);
void pq_manual_clock_advance(pq_manual_clock *m, int64_t ms);

static inline int64_t pq_clock_wall(const pq_clock *c) { return c ? c->wall_ms(c) : pq_now_ms(); }
static inline int64_t pq_clock_mono(const pq_clock *c) { return c ? c->mono_ms(c) : pq_mono_ms(); }
/* Microseconds, for rates: the machine's to the microsecond, a manual clock's in whole ms. */
static inline int64_t pq_clock_mono_us(const pq_clock *c) {
  return c && c->manual ? c->mono_ms(c) * 1000 : pq_mono_us();
}

/* The CLOCK_MONOTONIC instant at which a condition wait should give up to
 * reach clock time at_ms. A manual clock never gets there by waiting, so
 * its sleepers wake at least every max_ms to look again. */
struct timespec pq_clock_wait_until(const pq_clock *c, int64_t at_ms, int64_t max_ms);

/* Formats ms-since-epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-22T14:45:10.123Z") into buf (at least 32 bytes). Returns buf. */
char *pq_format_time(int64_t ms, char *buf, size_t size);
#define PQ_TIME_BUF 32

#endif
