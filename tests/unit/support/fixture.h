/* What the unit tests' fixtures share: a scratch folder of their own and a
 * registered worker. For tests/unit only; the caller owns what it passes. */
#ifndef PQ_TEST_FIXTURE_H
#define PQ_TEST_FIXTURE_H

#include <pthread.h>

#include "base/ids.h"
#include "base/clock.h"
#include "engine/coord.h"

/* Removes a test's scratch folder and all in it: 0, or -1. */
int pq_test_remove_dir(const char *dir);
/* Registers a worker "w" serving model "m" on c; its id into id. 0, or -1. */
int pq_test_register_worker(pq_coord *c, char id[PQ_UUID_LEN + 1]);
/* A coordinator on a store of its own: makes the scratch folder dir (64
 * bytes) and the store URL url (180 bytes; scheme "sqlite" or
 * "fault+sqlite"), starts clock at now, and opens *c with cfg (its store_url
 * and clock are set here). 0, or -1. */
int pq_test_open_engine(char dir[64], char url[180], const char *scheme, pq_manual_clock *clock, pq_coord_config *cfg,
                        pq_coord **c);
/* Closes it and removes its folder: 0, or -1. */
int pq_test_close_engine(pq_coord *c, const char *dir);
/* Adds a user name (a password hash of "x"); its id into id. 0, or -1. */
int pq_test_add_user(pq_coord *c, const char *name, char id[PQ_UUID_LEN + 1]);
/* Leases up to max jobs for worker now (no waiting) into out (the caller
 * frees each job); how many. -1 when the lease fails. */
int pq_test_lease(pq_coord *c, const char *worker, pq_job **out, size_t max);

/* An operation submitted without waiting, and waiting for it later: init,
 * then .done = pq_test_op_done, .ud = &d on the op; done is set when it ended. */
typedef struct pq_test_done {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} pq_test_done;
void pq_test_done_init(pq_test_done *d);
void pq_test_op_done(pq_op *op);
void pq_test_wait_done(pq_test_done *d);
void pq_test_done_destroy(pq_test_done *d);

#endif
