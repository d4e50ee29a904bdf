/* The fair pick's order (store.h: job_pick), shared by the backends that
 * select leases in SQL: each runs its own three queries, this decides what
 * comes in which order. For the backends' own files; nothing else includes it. */
#ifndef PQ_STORE_PICK_H
#define PQ_STORE_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/ids.h"

#define PQ__PICK_OWNERS_MAX 256 /* users looked at per pick: those served longest ago */

typedef char pq__owner_id[PQ_UUID_LEN + 1];

typedef struct pq__pick_queries {
  /* jobs at or above the urgent priority, best first (not called when there is none) */
  pq_err (*urgent)(void *ctx, size_t limit, int64_t *numbers, pq__owner_id *owners, size_t *n);
  /* users with queued jobs of the model, not at a running limit, served longest ago first */
  pq_err (*owners)(void *ctx, pq__owner_id *owners, size_t max, size_t *n);
  /* one user's ready jobs the offer meets, best first */
  pq_err (*of_owner)(void *ctx, const char *owner, size_t limit, int64_t *numbers, size_t *n);
  /* may the user take one more job (its running limits)? Only asked when there are limits; a
   * store several writers share takes a lock on the user first, so two cannot both pass */
  pq_err (*may_run)(void *ctx, const char *owner, bool *may);
} pq__pick_queries;

/* limited: the pick has running limits (may_run is asked for each user it takes from). */
pq_err pq__pick_fair(const pq__pick_queries *q, void *ctx, int urgent, bool limited, size_t limit, int64_t *numbers,
                     pq__owner_id *owners, size_t *n);

#endif
