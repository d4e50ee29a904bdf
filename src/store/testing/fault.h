/* A store that fails on purpose, for tests: it wraps any backend (by URL,
 * "fault+sqlite:///path.db") and forwards every call, until it is armed to
 * fail the Nth statement or the Nth commit from now. A failed statement
 * changes nothing in the wrapped store (the real one is not called); a
 * failed commit rolls the real transaction back, as a disk that refuses the
 * write would. Either answers PQ_ERR_STORE_FAILED, which is what the engine
 * sees from a real I/O error, a full disk or a busy database.
 *
 * Owns nothing but its wrapper; the wrapped store is opened and closed
 * with it. Thread-safe: the counters are atomics. */
#ifndef PQ_STORE_TESTING_FAULT_H
#define PQ_STORE_TESTING_FAULT_H

#include "store/store.h"

typedef enum { PQ_FAULT_IO_ERROR, PQ_FAULT_DISK_FULL, PQ_FAULT_BUSY } pq_fault_kind;
typedef enum { PQ_FAULT_STATEMENT, PQ_FAULT_COMMIT } pq_fault_target;

extern const pq_store_ops pq_store_fault_ops;

/* Opens inner_url's store wrapped (pq_store_open does this for fault+...). */
pq_err pq_store_fault_open(const char *inner_url, const pq_store_config *cfg, pq_store **out, char *why,
                           size_t why_size);
/* The nth statement (or commit) from now fails (1: the next one); with
 * repeat, every one after it too, until disarmed. s must be a fault store. */
void pq_store_fault_arm(pq_store *s, pq_fault_target target, int nth, pq_fault_kind kind, bool repeat);
void pq_store_fault_disarm(pq_store *s);
/* Holding: the next statement (on any connection) waits at the door until
 * released, so a test can queue more work behind a busy writer and know it
 * is there. wait_held blocks until a statement is waiting. */
void pq_store_fault_hold(pq_store *s);
/* The same from the nth statement (or commit) from now (1: the next one), so
 * a test can stop a transaction in its middle. */
void pq_store_fault_hold_at(pq_store *s, int nth);
void pq_store_fault_wait_held(pq_store *s);
void pq_store_fault_release(pq_store *s);
/* The store it wraps. */
pq_store *pq_store_fault_inner(pq_store *s);
/* How many failures it has injected so far. */
int pq_store_fault_injected(pq_store *s);
/* Statements it has forwarded (a test counts a batch with it). */
long pq_store_fault_statements(pq_store *s);

#endif
