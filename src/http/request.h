/* A request as handlers see it, and what they may do with it.
 *
 * Lifetime: the server creates a pq_req when a request arrives and frees it,
 * with everything allocated through pq_req_alloc(), its parsed body and any
 * pending response, in one place when the request ends (h2o's rule).
 * Strings returned by the accessors are borrowed for the request's life.
 *
 * A handler returns PQ_OK after pq_req_reply() or pq_req_park(), or an error
 * (set with pq_req_fail() to give a message and details), which the server
 * turns into the one error envelope. */
#ifndef PQ_HTTP_REQUEST_H
#define PQ_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/access.h"
#include "engine/coord.h"
#include "base/error.h"
#include "http/router.h"

typedef struct pq_server pq_server;

/* Fills buf (max bytes) with more of a streamed answer. Returns the number of
 * bytes written; 0 after pq_req_stream_wait() (called again once woken); or
 * -1 to end the stream. */
typedef long (*pq_stream_fn)(pq_req *req, char *buf, size_t max);
typedef struct pq__arena_chunk pq__arena_chunk;

struct pq_req {
  /* read-only for handlers */
  const char *method;
  const char *path;
  pq_route_match match;
  json_t *body;          /* parsed JSON body (NULL when none); borrowed */
  char request_id[24];
  pq_coord *coord;       /* borrowed */
  pq_server *server;     /* borrowed */
  pq_identity caller;    /* who is calling (caller.known on non-public routes) */
  /* scratch that outlives a park: one operation, one waiter */
  pq_op op;
  pq_waiter waiter;
  int64_t deadline_ms;   /* for waits: pq_mono_ms() */
  uint64_t seen_version;
  void *state;           /* the handler's own, from pq_req_alloc */
  void (*state_free)(pq_req *req); /* called when the request ends, if set */
  /* private to the server */
  struct MHD_Connection *conn;
  pq_stream_fn stream_fn;
  const char *stream_type;
  bool stream_slot;      /* holds one of the caller's stream slots */
  const pq_rate_policy *rate_policy; /* the limit applied to this request */
  pq_rate_decision rate;
  char *raw_body;
  size_t raw_len, raw_cap;
  bool too_large, parked;
  int64_t body_limit;    /* the most its body may hold: max_body, or max_upload for an upload route */
  bool bad_framing;      /* refused before its body: answered, then the connection closes */
  bool dispatched, answered; /* each happens at most once per request */
  pq_handler_fn resume;
  pq_handler_fn then;    /* an API helper's continuation after its own (api/native/jobs.c: after a submit) */
  int status;
  int pending_ops;       /* pq_req_run_ops: operations not done yet */
  char *reply;           /* serialized body (malloc'd; borrowed when reply_static) */
  bool reply_static;
  const char *reply_type; /* NULL: application/json */
  bool stream_counted;
  size_t reply_len;
  char allow[64];
  pq_err error;
  char *error_message;   /* arena */
  json_t *error_details;
  int64_t started_us;
  pq__arena_chunk *arena;
};

/* Per-request memory, freed when the request ends. NULL on OOM. */
void *pq_req_alloc(pq_req *req, size_t size);
char *pq_req_strndup(pq_req *req, const char *s, size_t n);

/* A {name} capture from the route, a query argument, a header; NULL when absent. */
const char *pq_req_param(pq_req *req, const char *name);
const char *pq_req_query(pq_req *req, const char *name);
const char *pq_req_header(pq_req *req, const char *name);

/* True when the client has closed its side of the connection (a long-poll
 * whose worker went away): an answer would go nowhere. */
bool pq_req_peer_gone(pq_req *req);

/* Sets the response; takes ownership of body (which may be NULL: no body). */
pq_err pq_req_reply(pq_req *req, int status, json_t *body);

/* Sets a non-JSON response; takes ownership of text (malloc'd). */
pq_err pq_req_reply_text(pq_req *req, int status, const char *content_type, char *text);
/* The same for len bytes of any kind (a file): takes data (malloc'd).
 * content_type is borrowed for the request's life (a literal). */
pq_err pq_req_reply_bytes(pq_req *req, int status, const char *content_type, char *data, size_t len);
/* The same for bytes that outlive every request (built into the binary, or
 * kept for the program's life): borrowed, never copied or freed. */
pq_err pq_req_reply_static(pq_req *req, int status, const char *content_type, const char *data, size_t len);

/* Records an error's message (printf-style) and details (taken; may be NULL)
 * and returns err, for `return pq_req_fail(...)`. */
/* Forgets a failure recorded with pq_req_fail (a handler that collects
 * errors, one per item, instead of answering the first). */
void pq_req_clear_error(pq_req *req);
pq_err pq_req_fail(pq_req *req, pq_err err, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Suspends the request: the handler returns PQ_OK, and once pq_req_wake()
 * is called (from any thread, once per park) resume runs on an HTTP thread. */
void pq_req_park(pq_req *req, pq_handler_fn resume);
void pq_req_wake(pq_req *req);

/* Parks the request on req->op in the coordinator; resume runs when done. */
void pq_req_run_op(pq_req *req, pq_handler_fn resume);
/* The same for n operations at once (the request's memory; each with its
 * own inputs): the writer may commit them together; resume runs once every
 * one is done, each with its own out.result. */
void pq_req_run_ops(pq_req *req, pq_op *ops, size_t n, pq_handler_fn resume);

/* Parks until the job changes (key: pq_coord_job_key), req->deadline_ms
 * passes or the server stops; resume runs then. seen_version is the hub
 * version read before the job was read. */
void pq_req_wait_job(pq_req *req, const char *job_id, uint64_t seen_version, pq_handler_fn resume);

/* Answers with a stream of content_type (borrowed, static): fill is called
 * whenever the client can take more, until it returns -1 or the client leaves. */
pq_err pq_req_stream(pq_req *req, int status, const char *content_type, pq_stream_fn fill);

/* From a fill callback: suspend until key is published (after seen_version),
 * deadline_ms passes or the server stops; then fill is called again. */
void pq_req_stream_wait(pq_req *req, uint64_t key, uint64_t seen_version, int64_t deadline_ms);

/* The settings the server was given for its handlers (pq_server_config.app). */
const void *pq_req_app(pq_req *req);

/* The server's access control (never NULL). */
pq_access *pq_req_access(pq_req *req);

/* True once the server is shutting down (waits should answer now). */
bool pq_req_server_stopping(pq_req *req);
/* The server's cap on long-poll waits, in seconds. */
int pq_req_max_wait_s(pq_req *req);
/* How often an idle stream sends a keepalive comment, in ms. */
int64_t pq_req_keepalive_ms(pq_req *req);

#endif
