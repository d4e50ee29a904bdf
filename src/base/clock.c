#include "base/clock.h"

#include <stdio.h>

static int64_t ts_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pq_now_ms(void) { return ts_ms(CLOCK_REALTIME); }
int64_t pq_mono_ms(void) { return ts_ms(CLOCK_MONOTONIC); }

int64_t pq_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t system_wall(const pq_clock *c) {
  (void)c;
  return pq_now_ms();
}

static int64_t system_mono(const pq_clock *c) {
  (void)c;
  return pq_mono_ms();
}

const pq_clock pq_clock_system = {.wall_ms = system_wall, .mono_ms = system_mono, .manual = false};

static int64_t manual_wall(const pq_clock *c) {
  return __atomic_load_n(&((const pq_manual_clock *)c)->wall, __ATOMIC_ACQUIRE);
}

static int64_t manual_mono(const pq_clock *c) {
  return __atomic_load_n(&((const pq_manual_clock *)c)->mono, __ATOMIC_ACQUIRE);
}

void pq_manual_clock_init(pq_manual_clock *m, int64_t wall_ms) {
  m->clock = (pq_clock){.wall_ms = manual_wall, .mono_ms = manual_mono, .manual = true};
  m->wall = wall_ms;
  m->mono = 1000000; /* any start will do; deadlines are differences */
}

void pq_manual_clock_advance(pq_manual_clock *m, int64_t ms) {
  __atomic_fetch_add(&m->wall, ms, __ATOMIC_ACQ_REL);
  __atomic_fetch_add(&m->mono, ms, __ATOMIC_ACQ_REL);
}

struct timespec pq_clock_wait_until(const pq_clock *c, int64_t at_ms, int64_t max_ms) {
  int64_t wait = at_ms - pq_clock_mono(c);
  if (wait < 0) wait = 0;
  if (c && c->manual && wait > max_ms) wait = max_ms;
  /* "never" (INT64_MAX) must not overflow the real deadline; waking once an hour to look again costs
   * nothing */
  if (wait > 3600 * 1000) wait = 3600 * 1000;
  int64_t real = pq_mono_ms() + wait;
  return (struct timespec){.tv_sec = real / 1000, .tv_nsec = (real % 1000) * 1000000};
}

char *pq_format_time(int64_t ms, char *buf, size_t size) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  return buf;
}
