/* The fair pick's order (store/pick.h). */
#include "store/pick.h"

#include <stdlib.h>
#include <string.h>

static bool taken(const int64_t *numbers, size_t n, int64_t number) {
  for (size_t i = 0; i < n; i++)
    if (numbers[i] == number) return true;
  return false;
}

pq_err pq__pick_fair(const pq__pick_queries *q, void *ctx, int urgent, size_t limit, int64_t *numbers,
                     pq__owner_id *owners, size_t *n) {
  size_t got = 0, n_users = 0;
  *n = 0;
  pq_err result = urgent > 0 && limit ? q->urgent(ctx, limit, numbers, owners, &got) : PQ_OK;
  if (result != PQ_OK || got == limit) {
    *n = result == PQ_OK ? got : 0;
    return result;
  }
  pq__owner_id *users = calloc(PQ__PICK_OWNERS_MAX, sizeof *users);
  if (!users) return PQ_ERR_NO_MEMORY;
  if ((result = q->owners(ctx, users, PQ__PICK_OWNERS_MAX, &n_users)) != PQ_OK || n_users == 0) {
    free(users);
    *n = result == PQ_OK ? got : 0;
    return result;
  }
  /* each user's first jobs, in turn order, until there are enough to fill the rounds */
  size_t want = limit - got, quota = (want + n_users - 1) / n_users, fetched = 0;
  int64_t *theirs = calloc(n_users * quota, sizeof *theirs);
  size_t *counts = calloc(n_users, sizeof *counts);
  if (!theirs || !counts) result = PQ_ERR_NO_MEMORY;
  for (size_t u = 0; result == PQ_OK && u < n_users && fetched < want + quota; u++) {
    result = q->of_owner(ctx, users[u], quota, theirs + u * quota, &counts[u]);
    if (result == PQ_OK) fetched += counts[u];
  }
  /* round r takes each user's r-th job: one job per user per round */
  for (size_t r = 0; result == PQ_OK && r < quota && got < limit; r++)
    for (size_t u = 0; u < n_users && got < limit; u++) {
      if (r >= counts[u] || taken(numbers, got, theirs[u * quota + r])) continue; /* an urgent one, already in */
      numbers[got] = theirs[u * quota + r];
      memcpy(owners[got], users[u], sizeof *owners);
      got++;
    }
  free(theirs);
  free(counts);
  free(users);
  *n = result == PQ_OK ? got : 0;
  return result;
}
