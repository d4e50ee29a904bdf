/* GET /v1/jobs/{id}/events (Server-Sent Events) and POST /v1/jobs/{id}/chunks. */
#include "api/native/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/clock.h"
#include "base/ids.h"
#include "http/json_in.h"

#define EVENTS_PER_READ 256
#define MAX_CHUNKS_PER_POST 1024

void pq_event_cursor_resume(pq_event_cursor *cur, const char *last_event_id) {
  int attempt;
  long long seq;
  char tail;
  if (!last_event_id ||
      sscanf(last_event_id, "%d.%lld%c", &attempt, &seq, &tail) != 2 || attempt < 0 || seq < 0)
    return;
  cur->started = true;
  cur->attempt = attempt;
  cur->seq = seq;
}

static int emit_id(pq_event_cursor *cur, pq_ev_emit_fn emit, void *ctx, pq_ev_kind kind,
                   int attempt, int64_t seq, const pq_job *job, const pq_job_event *ev) {
  char id[48];
  snprintf(id, sizeof id, "%d.%lld", attempt, (long long)seq);
  if (emit(ctx, kind, id, job, ev) != 0) return 1;
  cur->attempt = attempt;
  cur->seq = seq;
  return 0;
}

/* The full job, read once per call and only when an event shows it. */
typedef struct {
  pq_coord *coord;
  const pq_job *peek;
  pq_job *full;
} job_view;

static const pq_job *full_job(job_view *v) {
  if (!v->full && pq_coord_get_job(v->coord, v->peek->id, 0, &v->full) != PQ_OK) return NULL;
  return v->full;
}

/* A running attempt the relay holds in memory: its new entries without a store
 * read. Returns PQ_ERR_NOT_FOUND when the store must answer. */
static pq_err relayed_next(pq_coord *coord, pq_event_cursor *cur, pq_ev_emit_fn emit, void *ctx) {
  pq_job_event *events = NULL;
  size_t n = 0;
  pq_err result = pq_coord_relay_read(coord, cur->job_id, cur->attempt, cur->seq, EVENTS_PER_READ, &events, &n);
  if (result != PQ_OK) return result;
  pq_job running = {.state = PQ_JOB_LEASED, .attempts = cur->attempt}; /* what a chunk's emitter may look at */
  memcpy(running.id, cur->job_id, sizeof running.id);
  for (size_t i = 0; i < n; i++)
    if (emit_id(cur, emit, ctx, PQ_EV_CHUNK, events[i].attempt, events[i].seq, &running, &events[i])) break;
  pq_job_events_free(events, n);
  return PQ_OK;
}

pq_err pq_event_cursor_next(pq_coord *coord, pq_event_cursor *cur, pq_ev_emit_fn emit, void *ctx,
                            uint64_t *version) {
  *version = pq_hub_version(pq_coord_hub(coord), pq_coord_job_key(cur->job_id));
  if (cur->started && cur->attempt > 0 && !cur->done && relayed_next(coord, cur, emit, ctx) == PQ_OK)
    return PQ_OK;
  pq_job peek;
  pq_err result = pq_coord_peek_job(coord, cur->job_id, &peek);
  if (result != PQ_OK) return result;
  job_view view = {.coord = coord, .peek = &peek};
  const pq_job *job;
  if (!cur->started) {
    if (!(job = full_job(&view))) goto gone;
    if (emit(ctx, PQ_EV_QUEUED, "0.0", job, NULL) != 0) goto out;
    cur->started = true;
  }
  /* a newer attempt began: announce it, and its chunks start from 1 */
  int attempt = peek.attempts;
  if (attempt > cur->attempt && (peek.state != PQ_JOB_QUEUED || peek.leased_at)) {
    if (peek.state == PQ_JOB_QUEUED) attempt--; /* waiting out a retry: that attempt ended */
    if (attempt > cur->attempt) {
      if (!(job = full_job(&view))) goto gone;
      if (emit_id(cur, emit, ctx, PQ_EV_LEASED, attempt, 0, job, NULL)) goto out;
    }
  }
  for (bool more = attempt > 0; more;) {
    pq_job_event *events = NULL;
    size_t n = 0;
    if ((result = pq_coord_events(coord, peek.number, cur->attempt, cur->seq, EVENTS_PER_READ,
                                  &events, &n)) != PQ_OK)
      goto out;
    size_t i = 0;
    for (; i < n; i++)
      if (emit_id(cur, emit, ctx, PQ_EV_CHUNK, events[i].attempt, events[i].seq, &peek, &events[i]))
        break;
    more = i == n && n == EVENTS_PER_READ;
    pq_job_events_free(events, n);
    if (i < n) goto out;
  }
  /* still running: what the relay acknowledged and has not written yet follows from memory */
  if (!pq_job_state_terminal(peek.state) && attempt > 0 && cur->attempt == attempt) (void)relayed_next(coord, cur, emit, ctx);
  if (pq_job_state_terminal(peek.state) && !cur->done) {
    /* the final event's id follows the attempt's last chunk, so a client
     * whose Last-Event-ID is past every chunk has already seen it */
    bool seen = false;
    if (cur->seq > 0) {
      pq_job_event *at = NULL;
      size_t n = 0;
      if ((result = pq_coord_events(coord, peek.number, cur->attempt, cur->seq - 1, 1, &at, &n)))
        goto out;
      seen = n == 0;
      pq_job_events_free(at, n);
    }
    if (!seen && !(job = full_job(&view))) goto gone;
    if (seen || emit_id(cur, emit, ctx, PQ_EV_FINAL, cur->attempt, cur->seq + 1, job, NULL) == 0)
      cur->done = true;
  }
  goto out;
gone:
  result = PQ_ERR_STORE_FAILED;
out:
  pq_job_free(view.full);
  return result;
}

/* ---- streaming to a client ---- */

int pq_event_stream_append(pq_event_stream *s, const char *text, size_t n) {
  return pq_buf_add(&s->pending, text, n);
}

/* How often a quiet stream looks whether its client is still there, so a
 * closed stream's slot (and its job, for the OpenAI door) is freed soon. */
#define LIVENESS_CHECK_MS 2000

static long stream_fill(pq_req *req, char *buf, size_t max) {
  pq_event_stream *s = req->state;
  for (;;) {
    size_t n = pq_buf_take(&s->pending, &s->off, buf, max);
    if (n) {
      s->last_write_ms = pq_mono_ms();
      return (long)n;
    }
    if (s->ended || s->cur.done || pq_req_server_stopping(req)) return -1;
    if (pq_req_peer_gone(req)) return -1; /* the client left: end now, and give its stream slot back */
    uint64_t version;
    if (pq_event_cursor_next(req->coord, &s->cur, s->emit, s, &version) != PQ_OK) return -1;
    if (s->pending.len > 0) continue;
    if (s->cur.done) return -1;
    int64_t keepalive = pq_req_keepalive_ms(req);
    if (pq_mono_ms() - s->last_write_ms >= keepalive) { /* keeps proxies from closing it */
      if (pq_event_stream_append(s, ": keepalive\n\n", 13) != 0) return -1;
      continue;
    }
    /* wake for the next keepalive, or sooner to look whether the client is still there */
    int64_t wake = s->last_write_ms + keepalive, look = pq_mono_ms() + LIVENESS_CHECK_MS;
    pq_req_stream_wait(req, pq_coord_job_key(s->cur.job_id), version, look < wake ? look : wake);
    return 0;
  }
}

typedef struct {
  pq_op op; /* first: done frees the struct */
  char job_id[PQ_UUID_LEN + 1];
} abandon_cancel;

static void abandon_done(pq_op *op) {
  pq_op_release(op);
  free(op);
}

static void stream_free(pq_req *req) {
  pq_event_stream *s = req->state;
  pq_buf_free(&s->pending);
  /* the client left before the end (not a server stop): nobody wants the rest */
  if (s->cancel_if_abandoned && !s->cur.done && !s->ended && !pq_req_server_stopping(req)) {
    abandon_cancel *c = calloc(1, sizeof *c);
    if (!c) return;
    memcpy(c->job_id, s->cur.job_id, sizeof c->job_id);
    c->op = (pq_op){.kind = PQ_OP_CANCEL, .in.cancel.job_id = c->job_id, .done = abandon_done};
    pq_coord_submit(s->coord, &c->op);
  }
}

pq_err pq_event_stream_start(pq_req *req, const char *job_id, const char *last_event_id,
                             const char *content_type, pq_ev_emit_fn emit, void *format,
                             pq_event_stream **out) {
  pq_event_stream *s = pq_req_alloc(req, sizeof *s);
  if (!s) return PQ_ERR_NO_MEMORY;
  snprintf(s->cur.job_id, sizeof s->cur.job_id, "%s", job_id);
  pq_event_cursor_resume(&s->cur, last_event_id);
  s->emit = emit;
  s->format = format;
  s->coord = req->coord;
  s->last_write_ms = pq_mono_ms();
  req->state = s;
  req->state_free = stream_free;
  if (out) *out = s;
  return pq_req_stream(req, 200, content_type, stream_fill);
}

/* ---- the native format ---- */

int pq_event_stream_sse(pq_event_stream *s, const char *name, const char *id, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  json_decref(data);
  if (!text) return -1;
  char head[128];
  int n = snprintf(head, sizeof head, "id: %s\nevent: %s\ndata: ", id, name);
  int rc = pq_event_stream_append(s, head, (size_t)n) || pq_event_stream_append(s, text, strlen(text)) ||
           pq_event_stream_append(s, "\n\n", 2);
  free(text);
  return rc;
}

static int sse_emit(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job,
                    const pq_job_event *ev) {
  pq_event_stream *s = ctx;
  switch (kind) {
    case PQ_EV_QUEUED: {
      json_t *data = json_pack("{s:s,s:s}", "status", "queued", "id", job->id);
      char why[256];
      const pq_job *full = job->model ? job : NULL; /* a peek has no model: the position and the reason need it */
      pq_job *read = NULL;
      if (!full && pq_coord_get_job(s->coord, job->id, 0, &read) == PQ_OK) full = read;
      if (full) pq_api_add_position(s->coord, full, data);
      if (full && pq_api_waiting_reason(s->coord, full, why, sizeof why))
        json_object_set_new(data, "waiting_reason", json_string(why));
      pq_job_free(read);
      return pq_event_stream_sse(s, "progress", id, data);
    }
    case PQ_EV_LEASED:
      return pq_event_stream_sse(s, "progress", id,
                       json_pack("{s:s,s:i,s:s?}", "status", "running", "attempt", job->attempts,
                                 "worker_id", job->worker_id));
    case PQ_EV_CHUNK: { /* the entry is compact JSON written by us (one line): sent as it is */
      /* a worker's output is "chunk"; a job the coordinator runs also logs "progress" */
      char head[128];
      int n = snprintf(head, sizeof head, "id: %s\nevent: %s\ndata: ", id, ev->kind && *ev->kind ? ev->kind : "chunk");
      return pq_event_stream_append(s, head, (size_t)n) || pq_event_stream_append(s, ev->data, strlen(ev->data)) ||
             pq_event_stream_append(s, "\n\n", 2);
    }
    case PQ_EV_FINAL:
      if (job->state == PQ_JOB_COMPLETED) return pq_event_stream_sse(s, "complete", id, pq_api_job_json(job));
      return pq_event_stream_sse(s, "error", id,
                       json_pack("{s:s,s:s,s:s?,s:o}", "status", pq_job_state_name(job->state),
                                 "code", job->error_code ? job->error_code : pq_api_end_code(job),
                                 "message", job->error_message, "job", pq_api_job_json(job)));
  }
  return 0;
}

static int count_events(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job, const pq_job_event *ev) {
  (void)kind, (void)id, (void)job, (void)ev;
  (*(int *)ctx)++;
  return 0;
}

pq_err pq_event_stream_seen_all(pq_req *req, const char *job_id, const char *last_event_id, bool *seen_all) {
  *seen_all = false;
  if (!last_event_id) return PQ_OK;
  pq_event_cursor probe = {0};
  snprintf(probe.job_id, sizeof probe.job_id, "%s", job_id);
  pq_event_cursor_resume(&probe, last_event_id);
  int fresh = 0;
  uint64_t version;
  pq_err e = pq_event_cursor_next(req->coord, &probe, count_events, &fresh, &version);
  *seen_all = e == PQ_OK && fresh == 0;
  return e;
}

pq_err pq_api_job_events(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_job *job = NULL;
  pq_err e = pq_api_their_job(req, id, &job);
  pq_job_state job_state = job ? job->state : PQ_JOB_QUEUED;
  pq_job_free(job);
  if (e == PQ_ERR_NOT_FOUND) return pq_api_no_such_job(req, id);
  if (e != PQ_OK) return e;
  const char *last = pq_req_header(req, "Last-Event-ID");
  if (!last) last = pq_req_query(req, "last_event_id");
  bool seen_all = false;
  if (pq_job_state_terminal(job_state) && (e = pq_event_stream_seen_all(req, id, last, &seen_all)) != PQ_OK) return e;
  if (seen_all) return pq_req_reply(req, 204, NULL);
  return pq_event_stream_start(req, id, last, "text/event-stream", sse_emit, NULL, NULL);
}

/* ---- POST /v1/jobs/{id}/chunks: a worker streams output ---- */

static pq_err chunks_done(pq_req *req) {
  if (req->op.out.result == PQ_ERR_LEASE_MISMATCH || req->op.out.result == PQ_ERR_NOT_FOUND) {
    const char *id = pq_req_param(req, "id");
    return pq_req_fail(req, req->op.out.result, json_pack("{s:s?}", "id", id),
                       "job '%s' is not leased with this token", id ? id : "");
  }
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200,
                      json_pack("{s:I,s:b}", "seq", (json_int_t)req->op.out.last_seq,
                                "cancel_requested", req->op.out.cancel_requested));
}

/* A streamed piece: text, or a delta of a richer answer (worker/backend.h). */
static bool chunk_ok(json_t *c) {
  if (json_is_string(c)) return true;
  if (!json_is_object(c) || json_object_size(c) == 0) return false;
  const char *key;
  json_t *v;
  json_object_foreach(c, key, v) {
    bool ok = (strcmp(key, "content") == 0 && (json_is_string(v) || json_is_null(v))) ||
              (strcmp(key, "refusal") == 0 && (json_is_string(v) || json_is_null(v))) ||
              (strcmp(key, "index") == 0 && json_is_integer(v) && json_integer_value(v) >= 0 &&
               json_integer_value(v) < 128) ||
              (strcmp(key, "tool_calls") == 0 && json_is_array(v)) ||
              (strcmp(key, "logprobs") == 0 && (json_is_object(v) || json_is_null(v)));
    if (!ok) return false;
  }
  return true;
}

pq_err pq_api_job_chunks(pq_req *req) {
  static const char *const fields[] = {"lease", "chunks", NULL};
  const char *id = pq_req_param(req, "id"), *lease = NULL;
  json_t *chunks = json_object_get(req->body, "chunks");
  pq_err e;
  if (!id || !pq_is_uuid(id))
    return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s?}", "id", id), "no job with id '%s'",
                       id ? id : "");
  if ((e = pq_json_only(req, req->body, "the chunks", fields)) ||
      (e = pq_json_string(req, req->body, "lease", true, 256, &lease)))
    return e;
  size_t n = json_is_array(chunks) ? json_array_size(chunks) : 0;
  bool ok = n > 0 && n <= MAX_CHUNKS_PER_POST;
  for (size_t i = 0; ok && i < n; i++) ok = chunk_ok(json_array_get(chunks, i));
  if (!ok)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", "chunks"),
                       "'chunks' must be an array of 1 to %d strings or deltas (objects of content, index, "
                       "tool_calls, logprobs, refusal)",
                       MAX_CHUNKS_PER_POST);
  const char **data = pq_req_alloc(req, n * sizeof *data);
  if (!data) return PQ_ERR_NO_MEMORY;
  for (size_t i = 0; i < n; i++) {
    json_t *given = json_array_get(chunks, i);
    json_t *obj = json_is_object(given) ? json_incref(given) : json_pack("{s:O}", "content", given);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text || !(data[i] = pq_req_strndup(req, text, strlen(text)))) {
      free(text);
      return PQ_ERR_NO_MEMORY;
    }
    free(text);
  }
  int64_t last_seq;
  bool cancel_requested;
  if (pq_coord_relay_append(req->coord, id, lease, data, n, &last_seq, &cancel_requested) == PQ_OK)
    return pq_req_reply(req, 200, json_pack("{s:I,s:b}", "seq", (json_int_t)last_seq, "cancel_requested",
                                            cancel_requested));
  req->op.kind = PQ_OP_APPEND; /* the job's first post here, or a lease to check in the store */
  req->op.in.append.job_id = id;
  req->op.in.append.token = lease;
  req->op.in.append.data = data;
  req->op.in.append.n = n;
  pq_req_run_op(req, chunks_done);
  return PQ_OK;
}
