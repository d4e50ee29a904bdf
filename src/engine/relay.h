/* The relay's engine-side half (relay.c): the writer installs and drops
 * jobs after its commits; the doors use pq_coord_relay_append/read
 * (coord.h). The relay owns every entry and piece it holds. */
#ifndef PQ_ENGINE_RELAY_H
#define PQ_ENGINE_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "model/job.h"
#include "store/store.h"

typedef struct pq__relay pq__relay;

/* A leased job a chunk post made known (recorded in the batch, installed after commit). */
typedef struct pq__relay_install_t {
  char id[PQ_UUID_LEN + 1];
  char *token; /* owned by the batch until installed (copied then) */
  int64_t number;
  int attempt;
  int64_t last_seq;
  bool cancel_requested;
  bool cancelled; /* the job changed again in the same batch: not installed */
} pq__relay_install_t;

pq__relay *pq__relay_new(void);
void pq__relay_free(pq__relay *r);
/* Writer thread, after commit: the job changed (before its change is published). */
void pq__relay_drop(pq__relay *r, const char *id);
void pq__relay_install(pq__relay *r, const pq__relay_install_t *in);
/* Writer thread, first thing in every transaction: writes the pieces not yet
 * in the store, on conn. */
pq_err pq__relay_flush(pq__relay *r, pq_conn *conn, const pq_store_ops *ops, int64_t now);
/* Writer thread, inside a transaction, before it changes job id or numbers
 * its entries from the store: the relay stops acknowledging the job's posts,
 * and what it acknowledged is written now, on conn. */
pq_err pq__relay_fence(pq__relay *r, const char *id, pq_conn *conn, const pq_store_ops *ops, int64_t now);
/* The coordinator is closing: posts go to the writer (which refuses them). */
void pq__relay_close(pq__relay *r);
/* Are pieces waiting to be written? */
bool pq__relay_dirty(pq__relay *r);
/* Writer thread, after that transaction (committed or rolled back): marks
 * them written, and calls woken with each dropped job whose last pieces
 * just reached the store. */
void pq__relay_flushed(pq__relay *r, bool committed, void (*woken)(void *ctx, const char *id), void *ctx);

#endif
