#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "base/clock.h"
#include "engine/hub.h"

/* A waiter that records its wake-ups; tests block on the condition, never sleep. */
typedef struct {
  pq_waiter w;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int wakes;
  pq_wake_reason why;
} probe;

static void on_wake(pq_waiter *w, pq_wake_reason why) {
  probe *p = w->data;
  pthread_mutex_lock(&p->mu);
  p->wakes++;
  p->why = why;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void probe_init(probe *p) {
  *p = (probe){0};
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->w.wake = on_wake;
  p->w.data = p;
}

/* Waits (at most 5 s, so a broken hub fails rather than hangs) for a wake. */
static int await_wake(probe *p) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 5;
  pthread_mutex_lock(&p->mu);
  while (p->wakes == 0 && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0) {
  }
  int n = p->wakes;
  pthread_mutex_unlock(&p->mu);
  return n;
}

static void publish_wakes_matching_key_only(void **state) {
  (void)state;
  pq_hub *hub = pq_hub_new(NULL);
  probe a, b;
  probe_init(&a);
  probe_init(&b);
  assert_int_equal(pq_hub_wait(hub, &a.w, 42, PQ_HUB_ANY_VERSION, 0), PQ_OK);
  assert_int_equal(pq_hub_wait(hub, &b.w, 43, PQ_HUB_ANY_VERSION, 0), PQ_OK);
  assert_int_equal(pq_hub_count(hub), 2);
  assert_int_equal(pq_hub_publish(hub, 42, SIZE_MAX), 1);
  assert_int_equal(a.wakes, 1);
  assert_int_equal(a.why, PQ_WAKE_PUBLISHED);
  assert_int_equal(b.wakes, 0);
  assert_int_equal(pq_hub_publish(hub, 42, SIZE_MAX), 0); /* woken once only */
  assert_int_equal(a.wakes, 1);
  pq_hub_free(hub); /* b is woken by shutdown */
  assert_int_equal(b.wakes, 1);
  assert_int_equal(b.why, PQ_WAKE_SHUTDOWN);
}

static void publish_respects_max_and_order(void **state) {
  (void)state;
  pq_hub *hub = pq_hub_new(NULL);
  probe p[100];
  for (int i = 0; i < 100; i++) {
    probe_init(&p[i]);
    assert_int_equal(pq_hub_wait(hub, &p[i].w, 7, PQ_HUB_ANY_VERSION, 0), PQ_OK);
  }
  assert_int_equal(pq_hub_publish(hub, 7, 3), 3);
  for (int i = 0; i < 100; i++) assert_int_equal(p[i].wakes, i < 3 ? 1 : 0);
  assert_int_equal(pq_hub_publish(hub, 7, SIZE_MAX), 97); /* more than one chunk */
  for (int i = 0; i < 100; i++) assert_int_equal(p[i].wakes, 1);
  pq_hub_free(hub);
}

static void stale_version_is_refused(void **state) {
  (void)state;
  pq_hub *hub = pq_hub_new(NULL);
  probe a;
  probe_init(&a);
  uint64_t v = pq_hub_version(hub, 5);
  pq_hub_publish(hub, 5, SIZE_MAX); /* happens between the read and the wait */
  assert_int_equal(pq_hub_wait(hub, &a.w, 5, v, 0), PQ_ERR_STALE);
  assert_int_equal(pq_hub_wait(hub, &a.w, 5, pq_hub_version(hub, 5), 0), PQ_OK);
  assert_true(pq_hub_cancel(hub, &a.w));
  assert_false(pq_hub_cancel(hub, &a.w));
  assert_int_equal(a.wakes, 0);
  pq_hub_free(hub);
}

static void deadlines_fire_in_order(void **state) {
  (void)state;
  pq_hub *hub = pq_hub_new(NULL);
  probe soon, later, never;
  probe_init(&soon);
  probe_init(&later);
  probe_init(&never);
  int64_t now = pq_mono_ms();
  assert_int_equal(pq_hub_wait(hub, &later.w, 1, PQ_HUB_ANY_VERSION, now + 80), PQ_OK);
  assert_int_equal(pq_hub_wait(hub, &soon.w, 1, PQ_HUB_ANY_VERSION, now + 20), PQ_OK);
  assert_int_equal(pq_hub_wait(hub, &never.w, 2, PQ_HUB_ANY_VERSION, now + 600000), PQ_OK);
  assert_int_equal(await_wake(&soon), 1);
  assert_int_equal(soon.why, PQ_WAKE_TIMEOUT);
  assert_true(pq_mono_ms() >= now + 20);
  assert_int_equal(await_wake(&later), 1);
  assert_int_equal(later.why, PQ_WAKE_TIMEOUT);
  assert_true(pq_mono_ms() >= now + 80);
  assert_int_equal(never.wakes, 0);
  assert_true(pq_hub_cancel(hub, &never.w)); /* its timer goes with it */
  pq_hub_free(hub);
  assert_int_equal(never.wakes, 0);
}

static bool is_second(const pq_waiter *w, const void *arg) { return w->data == arg; }

static void take_removes_without_waking(void **state) {
  (void)state;
  pq_hub *hub = pq_hub_new(NULL);
  probe a, b;
  probe_init(&a);
  probe_init(&b);
  pq_hub_wait(hub, &a.w, 0, PQ_HUB_ANY_VERSION, pq_mono_ms() + 60000);
  pq_hub_wait(hub, &b.w, 0, PQ_HUB_ANY_VERSION, 0);
  assert_ptr_equal(pq_hub_take(hub, 0, is_second, &b), &b.w);
  assert_null(pq_hub_take(hub, 0, is_second, &b));
  assert_ptr_equal(pq_hub_take(hub, 0, NULL, NULL), &a.w);
  assert_int_equal(pq_hub_count(hub), 0);
  pq_hub_free(hub);
  assert_int_equal(a.wakes + b.wakes, 0);
}

static void waits_after_shutdown_are_refused(void **state) {
  (void)state;
  pq_hub *hub = pq_hub_new(NULL);
  probe a;
  probe_init(&a);
  pq_hub_shutdown(hub);
  assert_int_equal(pq_hub_wait(hub, &a.w, 1, PQ_HUB_ANY_VERSION, 0), PQ_ERR_SHUTTING_DOWN);
  pq_hub_free(hub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(publish_wakes_matching_key_only),
      cmocka_unit_test(publish_respects_max_and_order),
      cmocka_unit_test(stale_version_is_refused),
      cmocka_unit_test(deadlines_fire_in_order),
      cmocka_unit_test(take_removes_without_waking),
      cmocka_unit_test(waits_after_shutdown_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
