/* The relay: the newest entries of each leased job's stream, in memory.
 *
 * On a store no other coordinator shares, a worker's chunk post is answered
 * here once its job is known, without a trip through the writer: the seq is
 * assigned in memory, subscribers are woken at once and read the new entries
 * from memory, and the entries reach the store through the writer in the
 * background (a commit of appends waits for no fsync). A job becomes known
 * when a post of its went through the writer (PQ_OP_APPEND), which installs
 * it after that commit.
 *
 * Why it stays right:
 * - The writer drops a job's entry after committing any change to the job
 *   (every id it publishes), before publishing: an entry present is the
 *   job's current lease and attempt, and the job has not ended. A change
 *   committed in the same batch as the install cancels the install.
 * - Pieces leave memory only once the writer has committed them, so a reader
 *   whose cursor is older than what memory holds finds the rest in the store.
 * - The writer runs operations in the order they came, so a worker's result,
 *   posted after its chunks were acknowledged, commits after them.
 * Lost on a crash: entries not yet written (progress; the result a worker
 * completes with is durable, as before). */
#include "engine/relay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/hub.h"
#include "engine/internal.h"

#define N_SLOTS 4096 /* hash chains; a coordinator holds a few thousand leases at most */
#define KEEP 64      /* written pieces kept for readers a little behind */

typedef struct piece {
  int64_t seq, at;
  char *data;
} piece;

typedef struct relay_job {
  struct relay_job *next;
  char id[PQ_UUID_LEN + 1];
  char *token;
  int64_t number;
  int attempt;
  int64_t last_seq;    /* the newest assigned */
  int64_t written_seq; /* the newest the writer has committed (pieces are written in any order,
                        * so this only says: everything up to it is written) */
  bool cancel_requested;
  piece *ring; /* oldest first from head, circular */
  size_t cap, head, len;
} relay_job;

struct pq__relay {
  pthread_mutex_t mu;
  relay_job *slots[N_SLOTS];
};

pq__relay *pq__relay_new(void) {
  pq__relay *r = calloc(1, sizeof *r);
  if (r) pthread_mutex_init(&r->mu, NULL);
  return r;
}

static void job_free(relay_job *j) {
  for (size_t i = 0; i < j->len; i++) free(j->ring[(j->head + i) % j->cap].data);
  free(j->ring);
  free(j->token);
  free(j);
}

void pq__relay_free(pq__relay *r) {
  if (!r) return;
  for (size_t s = 0; s < N_SLOTS; s++)
    for (relay_job *j = r->slots[s], *next; j; j = next) {
      next = j->next;
      job_free(j);
    }
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static relay_job **find(pq__relay *r, const char *id) {
  relay_job **at = &r->slots[pq_coord_job_key(id) % N_SLOTS];
  while (*at && strcmp((*at)->id, id) != 0) at = &(*at)->next;
  return at;
}

void pq__relay_drop(pq__relay *r, const char *id) {
  pthread_mutex_lock(&r->mu);
  relay_job **at = find(r, id), *j = *at;
  if (j) *at = j->next;
  pthread_mutex_unlock(&r->mu);
  if (j) job_free(j);
}

void pq__relay_install(pq__relay *r, const pq__relay_install_t *in) {
  relay_job *j = calloc(1, sizeof *j);
  if (!j || !(j->token = strdup(in->token))) {
    free(j); /* not relayed: its posts keep going through the writer */
    return;
  }
  memcpy(j->id, in->id, sizeof j->id);
  j->number = in->number;
  j->attempt = in->attempt;
  j->last_seq = j->written_seq = in->last_seq;
  j->cancel_requested = in->cancel_requested;
  pthread_mutex_lock(&r->mu);
  relay_job **at = find(r, in->id), *old = *at;
  j->next = old ? old->next : NULL;
  *at = j;
  pthread_mutex_unlock(&r->mu);
  if (old) job_free(old);
}

void pq__relay_written(pq__relay *r, const char *id, int attempt, int64_t seq) {
  pthread_mutex_lock(&r->mu);
  relay_job *j = *find(r, id);
  if (j && j->attempt == attempt && seq > j->written_seq) j->written_seq = seq;
  pthread_mutex_unlock(&r->mu);
}

/* Room for n more pieces: written pieces beyond KEEP go, and the ring grows
 * while the writer has not caught up. */
static int make_room(relay_job *j, size_t n) {
  while (j->len > 0 && j->len + n > KEEP && j->ring[j->head].seq <= j->written_seq) {
    free(j->ring[j->head].data);
    j->head = (j->head + 1) % j->cap;
    j->len--;
  }
  if (j->len + n <= j->cap) return 0;
  size_t cap = j->cap ? j->cap : 16;
  while (cap < j->len + n) cap *= 2;
  piece *ring = malloc(cap * sizeof *ring);
  if (!ring) return -1;
  for (size_t i = 0; i < j->len; i++) ring[i] = j->ring[(j->head + i) % j->cap];
  free(j->ring);
  j->ring = ring;
  j->cap = cap;
  j->head = 0;
  return 0;
}

/* The background write of relayed entries: owns its copies. */
typedef struct {
  pq_op op; /* first: done frees the struct */
  pq__relay *relay;
  char job_id[PQ_UUID_LEN + 1];
  int attempt;
  int64_t last_seq;
  size_t n;
  char *data[];
} relayed_write;

static void written(pq_op *op) {
  relayed_write *w = (relayed_write *)op;
  /* a failed write is not retried: the entries were progress, and the result is what counts */
  pq__relay_written(w->relay, w->job_id, w->attempt, w->last_seq);
  for (size_t i = 0; i < w->n; i++) free(w->data[i]);
  pq_op_release(op);
  free(w);
}

pq_err pq_coord_relay_append(pq_coord *c, const char *job_id, const char *token, const char *const *data,
                             size_t n, int64_t *last_seq, bool *cancel_requested) {
  pq__relay *r = c->relay;
  if (!r || n == 0) return PQ_ERR_NOT_FOUND;
  /* two copies, made before the lock: the ring's (shown to readers) and the write's */
  relayed_write *w = calloc(1, sizeof *w + 2 * n * sizeof w->data[0]);
  if (!w) return PQ_ERR_NO_MEMORY;
  char **kept = w->data + n;
  for (size_t i = 0; i < n; i++)
    if (!(w->data[i] = strdup(data[i])) || !(kept[i] = strdup(data[i]))) goto refuse;
  int64_t at = pq_clock_wall(c->clock);
  pthread_mutex_lock(&r->mu);
  relay_job *j = *find(r, job_id);
  /* unknown here, or another lease's token: the writer decides, from the store */
  if (!j || strcmp(j->token, token) != 0 || make_room(j, n) != 0) {
    pthread_mutex_unlock(&r->mu);
    goto refuse;
  }
  int64_t first = j->last_seq + 1;
  for (size_t i = 0; i < n; i++)
    j->ring[(j->head + j->len++) % j->cap] = (piece){.seq = first + (int64_t)i, .at = at, .data = kept[i]};
  j->last_seq += (int64_t)n;
  *last_seq = j->last_seq;
  *cancel_requested = j->cancel_requested;
  w->op = (pq_op){.kind = PQ_OP_APPEND,
                  .in.append = {.job_id = w->job_id, .data = (const char *const *)w->data, .n = n,
                                .job_number = j->number, .attempt = j->attempt, .first_seq = first},
                  .done = written};
  w->attempt = j->attempt;
  pthread_mutex_unlock(&r->mu);
  w->relay = r;
  w->n = n;
  w->last_seq = *last_seq;
  memcpy(w->job_id, job_id, sizeof w->job_id);
  pq_hub_publish(c->hub, pq_coord_job_key(job_id), SIZE_MAX); /* subscribers read it from memory now */
  pq_coord_submit(c, &w->op);
  return PQ_OK;
refuse:
  for (size_t i = 0; i < 2 * n; i++) free(w->data[i]);
  free(w);
  return PQ_ERR_NOT_FOUND;
}

pq_err pq_coord_relay_read(pq_coord *c, const char *job_id, int attempt, int64_t after, size_t limit,
                           pq_job_event **out, size_t *n) {
  *out = NULL;
  *n = 0;
  pq__relay *r = c->relay;
  if (!r) return PQ_ERR_NOT_FOUND;
  pq_err result = PQ_OK;
  pthread_mutex_lock(&r->mu);
  relay_job *j = *find(r, job_id);
  int64_t oldest = j && j->len ? j->ring[j->head].seq : j ? j->last_seq + 1 : 0;
  /* not relayed, another attempt, or older than memory holds: the store has it */
  if (!j || j->attempt != attempt || after + 1 < oldest) {
    result = PQ_ERR_NOT_FOUND;
    goto out;
  }
  size_t from = (size_t)(after + 1 - oldest), count = j->len > from ? j->len - from : 0;
  if (count > limit) count = limit;
  if (count == 0) goto out;
  pq_job_event *events = calloc(count, sizeof *events);
  if (!events) {
    result = PQ_ERR_NO_MEMORY;
    goto out;
  }
  for (size_t i = 0; i < count; i++) {
    const piece *p = &j->ring[(j->head + from + i) % j->cap];
    events[i] = (pq_job_event){.attempt = attempt, .seq = p->seq, .created_at = p->at,
                               .kind = strdup("chunk"), .data = strdup(p->data)};
    if (!events[i].kind || !events[i].data) result = PQ_ERR_NO_MEMORY;
  }
  if (result != PQ_OK) {
    pq_job_events_free(events, count);
    goto out;
  }
  *out = events;
  *n = count;
out:
  pthread_mutex_unlock(&r->mu);
  return result;
}
