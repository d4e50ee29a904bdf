/* The relay: the newest entries of each leased job's stream, in memory.
 *
 * On a store no other coordinator shares, a worker's chunk post is answered
 * here once its job is known, without a trip through the writer: the seq is
 * assigned in memory, subscribers are woken at once and read the new entries
 * from memory, and the writer writes what is new at the start of its next
 * transaction, whatever that holds (at the latest on the reaper's beat, a
 * quarter of a second), without an fsync of their own and without a wake-up
 * per post. A job becomes known
 * when a post of its went through the writer (PQ_OP_APPEND), which installs
 * it after that commit.
 *
 * Why it stays right:
 * - Fence: when the writer, inside a transaction, is about to change a job
 *   or number its entries from the store (every id it publishes, and a post
 *   that comes through it), it fences the job here first: the relay refuses
 *   the job's posts from then on (they go through the writer, which decides
 *   from the store after this transaction), and whatever was acknowledged
 *   before is written in that same transaction. So no post is acknowledged
 *   for a lease a committed change has ended, every acknowledged entry is in
 *   the store with the change that ends its attempt (a reader seeing the
 *   end sees them too), and numbers from the store follow numbers from here.
 * - After commit the writer drops every job it published, before publishing:
 *   an entry present is the job's current lease and attempt. A change in the
 *   same batch as an install cancels the install. After a rollback a fenced
 *   job stays fenced (its posts go through the writer, which is slower, not
 *   wrong).
 * - Pieces leave memory only once the writer has committed them, so a reader
 *   whose cursor is older than what memory holds finds the rest in the store.
 * - Every transaction first writes what is pending, so a worker's result,
 *   posted after its chunks were acknowledged, commits with or after them.
 * - Posts are refused here (and go through the writer, which answers 503)
 *   while writes are failing, once a job holds MAX_PENDING unwritten pieces,
 *   and once the coordinator is closing (the writer's last transaction
 *   writes what is pending).
 * Given up: pending entries after MAX_FAILED_FLUSHES transactions in a row
 * rolled back with them pending (a store that refuses them must not refuse
 * every submit after them; one that fails for another reason loses progress,
 * not results). Lost on a crash: entries not yet written, up to the writer's next
 * transaction or reaper beat (--reap-interval, 250 ms by default): progress;
 * the result a worker completes with is durable, as before. */
#include "engine/relay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "engine/hub.h"
#include "engine/internal.h"

#define N_SLOTS 4096 /* hash chains; a coordinator holds a few thousand leases at most */
#define KEEP 64      /* written pieces kept for readers a little behind */
#define MAX_PENDING 4096 /* unwritten pieces per job before its posts wait for the writer again */
#define MAX_FAILED_FLUSHES 3

typedef struct piece {
  int64_t seq, at;
  char *data;
} piece;

typedef struct relay_job {
  struct relay_job *next;       /* hash chain */
  struct relay_job *dirty_next; /* on the dirty list: pieces not yet written */
  bool dirty;
  bool dropped; /* no longer in the table: freed once written */
  bool fenced;  /* the writer is changing the job: its posts go through the writer */
  char id[PQ_UUID_LEN + 1];
  char *token;
  int64_t number;
  int attempt;
  int64_t last_seq;    /* the newest assigned */
  int64_t written_seq; /* everything up to it is in the store */
  int64_t flushing_seq; /* the writer's transaction now writing up to it (writer thread only) */
  bool cancel_requested;
  piece *ring; /* oldest first from head, circular */
  size_t cap, head, len;
} relay_job;

struct pq__relay {
  pthread_mutex_t mu;
  relay_job *slots[N_SLOTS];
  relay_job *dirty; /* jobs with pieces to write, live or dropped */
  bool closed;      /* the coordinator is closing: no more posts here */
  int failed;       /* transactions in a row that rolled back with pieces pending */
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
      if (!j->dirty) job_free(j);
    }
  for (relay_job *j = r->dirty, *next; j; j = next) {
    next = j->dirty_next;
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
  if (j) {
    *at = j->next;
    j->dropped = true;
    if (j->dirty) j = NULL; /* its pending pieces are still to be written */
  }
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
  if (old) old->dropped = true;
  if (old && old->dirty) old = NULL;
  pthread_mutex_unlock(&r->mu);
  if (old) job_free(old);
}

/* Writes j's pieces not yet written nor being written, in the writer's
 * transaction on conn. Called and returns with r->mu held; lets it go for the
 * write (pending pieces are never freed by others: only written ones are, so
 * their texts may be borrowed). */
static pq_err write_pending(pq__relay *r, relay_job *j, pq_conn *conn, const pq_store_ops *ops, int64_t now) {
  int64_t done = j->flushing_seq > j->written_seq ? j->flushing_seq : j->written_seq;
  if (j->last_seq <= done) return PQ_OK;
  size_t n = (size_t)(j->last_seq - done), start = j->len - n;
  const char **texts = malloc(n * sizeof *texts);
  if (!texts) return PQ_ERR_NO_MEMORY;
  for (size_t i = 0; i < n; i++) texts[i] = j->ring[(j->head + start + i) % j->cap].data;
  int64_t number = j->number, seq = 0;
  int attempt = j->attempt;
  pthread_mutex_unlock(&r->mu);
  pq_err result = ops->event_append(conn, number, attempt, "chunk", texts, n, done + 1, now, &seq);
  free(texts);
  pthread_mutex_lock(&r->mu);
  if (result == PQ_OK) j->flushing_seq = seq;
  return result;
}

pq_err pq__relay_flush(pq__relay *r, pq_conn *conn, const pq_store_ops *ops, int64_t now) {
  pq_err result = PQ_OK;
  pthread_mutex_lock(&r->mu);
  /* only the writer takes jobs off the dirty list, so the walk survives the unlocked writes */
  for (relay_job *j = r->dirty; j && result == PQ_OK; j = j->dirty_next) result = write_pending(r, j, conn, ops, now);
  pthread_mutex_unlock(&r->mu);
  return result;
}

pq_err pq__relay_fence(pq__relay *r, const char *id, pq_conn *conn, const pq_store_ops *ops, int64_t now) {
  pq_err result = PQ_OK;
  pthread_mutex_lock(&r->mu);
  relay_job *j = *find(r, id);
  if (j) {
    j->fenced = true; /* first: nothing more is acknowledged here */
    result = write_pending(r, j, conn, ops, now);
  }
  pthread_mutex_unlock(&r->mu);
  return result;
}

void pq__relay_close(pq__relay *r) {
  pthread_mutex_lock(&r->mu);
  r->closed = true;
  pthread_mutex_unlock(&r->mu);
}

bool pq__relay_dirty(pq__relay *r) {
  pthread_mutex_lock(&r->mu);
  bool dirty = r->dirty != NULL;
  pthread_mutex_unlock(&r->mu);
  return dirty;
}

void pq__relay_flushed(pq__relay *r, bool committed, void (*woken)(void *ctx, const char *id), void *ctx) {
  pthread_mutex_lock(&r->mu);
  r->failed = committed ? 0 : r->failed + (r->dirty != NULL);
  /* the same pieces failing again and again would fail every transaction after them: after a few,
   * they are given up (progress; the results are what count) */
  bool give_up = r->failed >= MAX_FAILED_FLUSHES;
  if (give_up) {
    pq_error("relay: %d transactions failed in a row while writing streamed output; what was pending is dropped",
             r->failed);
    r->failed = 0;
  }
  for (relay_job **at = &r->dirty, *j; (j = *at);) {
    if (committed && j->flushing_seq > j->written_seq) j->written_seq = j->flushing_seq;
    if (give_up) j->written_seq = j->last_seq;
    j->flushing_seq = 0;
    if (j->written_seq < j->last_seq) { /* more came meanwhile (or the write failed): next time */
      at = &j->dirty_next;
      continue;
    }
    *at = j->dirty_next;
    j->dirty = false;
    if (j->dropped) {
      /* its readers went to the store before these were there: they look again */
      if (committed && woken) woken(ctx, j->id);
      job_free(j);
    }
  }
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

pq_err pq_coord_relay_append(pq_coord *c, const char *job_id, const char *token, const char *const *data,
                             size_t n, int64_t *last_seq, bool *cancel_requested) {
  pq__relay *r = c->relay;
  /* a failing store: the writer answers (503), and memory does not grow behind it */
  if (!r || n == 0 || __atomic_load_n(&c->writes_failing, __ATOMIC_RELAXED)) return PQ_ERR_NOT_FOUND;
  int64_t at = pq_clock_wall(c->clock);
  pq_err result = PQ_ERR_NOT_FOUND;
  pthread_mutex_lock(&r->mu);
  relay_job *j = *find(r, job_id);
  /* unknown here, another lease's token, or being changed: the writer decides, from the store */
  if (r->closed || !j || j->fenced || strcmp(j->token, token) != 0 ||
      j->last_seq - j->written_seq + (int64_t)n > MAX_PENDING || make_room(j, n) != 0)
    goto out;
  size_t made = 0;
  for (; made < n; made++) {
    char *text = strdup(data[made]);
    if (!text) break;
    j->ring[(j->head + j->len + made) % j->cap] = (piece){.seq = j->last_seq + 1 + (int64_t)made, .at = at, .data = text};
  }
  if (made < n) { /* all or nothing: the writer takes the post instead */
    for (size_t i = 0; i < made; i++) free(j->ring[(j->head + j->len + i) % j->cap].data);
    goto out;
  }
  j->len += n;
  j->last_seq += (int64_t)n;
  *last_seq = j->last_seq;
  *cancel_requested = j->cancel_requested;
  if (!j->dirty) {
    j->dirty = true;
    j->dirty_next = r->dirty;
    r->dirty = j;
  }
  result = PQ_OK;
out:
  pthread_mutex_unlock(&r->mu);
  if (result == PQ_OK) pq_hub_publish(c->hub, pq_coord_job_key(job_id), SIZE_MAX); /* readers take it from memory */
  return result;
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
  /* not relayed, being changed (its change may be committed already: the store says), another
   * attempt, or older than memory holds: the store has it */
  if (!j || j->fenced || j->attempt != attempt || after + 1 < oldest) {
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
