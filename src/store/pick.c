/* The fair pick's order (store/pick.h). */
#include "store/pick.h"

#include <stdlib.h>
#include <string.h>

static bool taken(const int64_t *numbers, size_t n, int64_t number) {
  for (size_t i = 0; i < n; i++)
    if (numbers[i] == number) return true;
  return false;
}

/* The running limits of owner, asked once per pick (cache: the owners asked, and the answers). */
static pq_err may(const pq__pick_queries *q, void *ctx, const char *owner, pq__owner_id *asked, bool *answers,
                  size_t *n_asked, bool *out) {
  for (size_t i = 0; i < *n_asked; i++)
    if (strcmp(asked[i], owner) == 0) return *out = answers[i], PQ_OK;
  pq_err result = q->may_run(ctx, owner, out);
  if (result == PQ_OK && *n_asked < PQ__PICK_OWNERS_MAX * 2) {
    memcpy(asked[*n_asked], owner, sizeof *asked);
    answers[(*n_asked)++] = *out;
  }
  return result;
}

pq_err pq__pick_fair(const pq__pick_queries *q, void *ctx, int urgent, bool limited, size_t limit, int64_t *numbers,
                     pq__owner_id *owners, size_t *n) {
  size_t got = 0, n_users = 0, n_asked = 0;
  *n = 0;
  /* the running limits' answers, per user, only when there are limits to ask about */
  pq__owner_id *users = calloc(PQ__PICK_OWNERS_MAX, sizeof *users),
               *asked = limited ? calloc(PQ__PICK_OWNERS_MAX * 2, sizeof *asked) : NULL;
  bool *answers = limited ? calloc(PQ__PICK_OWNERS_MAX * 2, sizeof *answers) : NULL;
  pq_err result = users && (!limited || (asked && answers)) ? PQ_OK : PQ_ERR_NO_MEMORY;
  if (result == PQ_OK && urgent > 0 && limit) {
    size_t found = 0;
    result = q->urgent(ctx, limit, numbers, owners, &found);
    for (size_t i = 0; result == PQ_OK && i < found; i++) { /* those whose users may run, in order */
      bool ok = true;
      if (limited) result = may(q, ctx, owners[i], asked, answers, &n_asked, &ok);
      if (result != PQ_OK || !ok) continue;
      numbers[got] = numbers[i];
      memmove(owners[got], owners[i], sizeof *owners);
      got++;
    }
  }
  if (result == PQ_OK && got < limit) result = q->owners(ctx, users, PQ__PICK_OWNERS_MAX, &n_users);
  if (result != PQ_OK || got == limit || n_users == 0) {
    free(users);
    free(asked);
    free(answers);
    *n = result == PQ_OK ? got : 0;
    return result;
  }
  /* each user's first jobs, in turn order, until there are enough to fill the rounds */
  size_t want = limit - got, quota = (want + n_users - 1) / n_users, fetched = 0;
  int64_t *theirs = calloc(n_users * quota, sizeof *theirs);
  size_t *counts = calloc(n_users, sizeof *counts);
  if (!theirs || !counts) result = PQ_ERR_NO_MEMORY;
  for (size_t u = 0; result == PQ_OK && u < n_users && fetched < want + quota; u++) {
    bool ok = true;
    if (limited) result = may(q, ctx, users[u], asked, answers, &n_asked, &ok);
    if (result == PQ_OK && ok) result = q->of_owner(ctx, users[u], quota, theirs + u * quota, &counts[u]);
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
  free(asked);
  free(answers);
  *n = result == PQ_OK ? got : 0;
  return result;
}
