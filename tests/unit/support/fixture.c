/* See fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pq_test_remove_dir(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

int pq_test_register_worker(pq_coord *c, char id[PQ_UUID_LEN + 1]) {
  pq_worker w = {.name = "w", .models = "[\"m\"]", .capabilities = "{}"};
  pq_op op = {.kind = PQ_OP_REGISTER, .in.reg.worker = &w};
  if (pq_coord_call(c, &op) != PQ_OK) return -1;
  memcpy(id, w.id, PQ_UUID_LEN + 1);
  return 0;
}

int pq_test_lease(pq_coord *c, const char *worker, pq_job **out, size_t max) {
  pq_op op = {.kind = PQ_OP_LEASE, .in.lease = {.worker_id = worker, .max_jobs = (int)max}};
  if (pq_coord_call(c, &op) != PQ_OK) {
    pq_op_release(&op);
    return -1;
  }
  size_t n = op.out.n_jobs;
  for (size_t i = 0; i < n; i++) out[i] = op.out.jobs[i];
  free(op.out.jobs);
  op.out.jobs = NULL;
  op.out.n_jobs = 0;
  pq_op_release(&op);
  return (int)n;
}

int pq_test_open_engine(char dir[64], char url[180], const char *scheme, pq_manual_clock *clock, pq_coord_config *cfg,
                        pq_coord **c) {
  snprintf(dir, 64, "/tmp/pqengine-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(url, 180, "%s://%s/e.db", scheme, dir);
  pq_manual_clock_init(clock, pq_now_ms());
  cfg->store_url = url;
  cfg->clock = &clock->clock;
  return pq_coord_open(cfg, c) == PQ_OK ? 0 : -1;
}

int pq_test_close_engine(pq_coord *c, const char *dir) {
  pq_coord_close(c);
  return pq_test_remove_dir(dir);
}

int pq_test_add_user(pq_coord *c, const char *name, char id[PQ_UUID_LEN + 1]) {
  pq_user u = {.name = (char *)name, .password_hash = "x"};
  pq_op op = {.kind = PQ_OP_USER_ADD, .in.user_add.user = &u};
  int rc = pq_coord_call(c, &op) == PQ_OK && op.out.user ? 0 : -1;
  if (rc == 0) memcpy(id, op.out.user->id, PQ_UUID_LEN + 1);
  pq_op_release(&op);
  return rc;
}

void pq_test_done_init(pq_test_done *d) {
  d->done = 0;
  pthread_mutex_init(&d->mu, NULL);
  pthread_cond_init(&d->cv, NULL);
}

void pq_test_op_done(pq_op *op) {
  pq_test_done *d = op->ud;
  pthread_mutex_lock(&d->mu);
  d->done = 1;
  pthread_cond_signal(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

void pq_test_wait_done(pq_test_done *d) {
  pthread_mutex_lock(&d->mu);
  while (!d->done) pthread_cond_wait(&d->cv, &d->mu);
  pthread_mutex_unlock(&d->mu);
}

void pq_test_done_destroy(pq_test_done *d) {
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
}
