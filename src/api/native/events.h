/* Reading a job's progress as a sequence of events, for any stream format.
 *
 * A cursor walks: queued (id "0.0"), then per attempt A: leased ("A.0") and
 * the chunks the worker streamed ("A.1", "A.2", ...), then one final event
 * ("A.<last+1>"): completed, or how it ended otherwise. Ids order the stream,
 * so a client resuming with Last-Event-ID gets exactly what it missed. Only
 * the newest attempt's chunks are sent: a retry starts the output afresh. */
#ifndef PQ_API_NATIVE_EVENTS_H
#define PQ_API_NATIVE_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/job.h"
#include "http/request.h"
#include "store/store.h"

typedef enum { PQ_EV_QUEUED, PQ_EV_LEASED, PQ_EV_CHUNK, PQ_EV_FINAL } pq_ev_kind;

typedef struct pq_event_cursor {
  char job_id[PQ_UUID_LEN + 1];
  int attempt;       /* position: the last event sent */
  int64_t seq;
  bool started;      /* the queued event was sent */
  bool done;         /* the final event was sent */
} pq_event_cursor;

/* Called for each new event; event is NULL except for chunks. For chunks the
 * job holds only its number, state and attempts; for the others, all of it.
 * Returns 0, or non-zero to stop for now (the cursor stays before this event). */
typedef int (*pq_ev_emit_fn)(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job,
                             const pq_job_event *event);

/* Parses "A.S" into the cursor (anything else leaves it at the start). */
void pq_event_cursor_resume(pq_event_cursor *cur, const char *last_event_id);

/* Emits what is new since the cursor. *version gets the hub version read
 * before the store, for pq_req_stream_wait. */
pq_err pq_event_cursor_next(pq_coord *coord, pq_event_cursor *cur, pq_ev_emit_fn emit, void *ctx,
                            uint64_t *version);

/* A job's events streamed to a client in some format: emit (called with the
 * stream as ctx) appends text with pq_event_stream_append; waiting,
 * keepalives and the end of the stream are handled here. */
typedef struct pq_event_stream {
  pq_event_cursor cur;
  pq_ev_emit_fn emit;
  void *format;          /* the formatter's own state */
  pq_coord *coord;       /* borrowed */
  bool end_after_final;  /* close once the final event is written */
  bool ended;            /* the formatter has written its last word */
  bool cancel_if_abandoned; /* the job exists for this stream: a client that leaves cancels it */
  pq_buf pending;         /* formatted, not yet written */
  size_t off;             /* how much of it was written */
  int64_t last_write_ms;
} pq_event_stream;

int pq_event_stream_append(pq_event_stream *s, const char *text, size_t n);
/* Appends one Server-Sent Event ("id:", "event:", "data:" the JSON, taken). 0, or -1. */
int pq_event_stream_sse(pq_event_stream *s, const char *name, const char *id, json_t *data);
/* Answers req with the stream (content_type is static); s is allocated here. */
pq_err pq_event_stream_start(pq_req *req, const char *job_id, const char *last_event_id,
                             const char *content_type, pq_ev_emit_fn emit, void *format,
                             pq_event_stream **out);

/* For an ended job (job_id): has a client resuming after last_event_id seen
 * everything? An EventSource reconnecting after the final event is then
 * answered 204, which tells it to stop. */
pq_err pq_event_stream_seen_all(pq_req *req, const char *job_id, const char *last_event_id, bool *seen_all);

/* The events endpoint's route handler and the workers' chunk upload. */
pq_err pq_api_job_events(pq_req *req);
pq_err pq_api_job_chunks(pq_req *req);

#endif
