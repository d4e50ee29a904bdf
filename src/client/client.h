/* A small JSON-over-HTTP client (libcurl) for the worker and the CLI.
 * One pq_client per thread; it keeps its connection alive between calls. */
#ifndef PQ_CLIENT_CLIENT_H
#define PQ_CLIENT_CLIENT_H

#include <jansson.h>
#include <signal.h>

#include "client/sse.h"
#include "base/error.h"

typedef struct pq_client pq_client;

/* base_url: "http://127.0.0.1:8080" (copied). api_key may be NULL. */
pq_client *pq_client_new(const char *base_url, const char *api_key);
void pq_client_free(pq_client *c);

/* Calls abort_flag-watching transfers off when *flag becomes non-zero. */
void pq_client_set_abort(pq_client *c, volatile sig_atomic_t *flag);

/* Sends method path with body (borrowed; NULL for none) and waits up to
 * timeout_ms. PQ_OK when an HTTP answer came (whatever its status, in
 * *status; its JSON body, or NULL, in *out: the caller's to decref);
 * PQ_ERR_UNAVAILABLE when the coordinator could not be reached or the call
 * was aborted. */
pq_err pq_client_call(pq_client *c, const char *method, const char *path, json_t *body,
                      long timeout_ms, long *status, json_t **out);

/* Reads a Server-Sent Events stream at path until it ends, the connection
 * drops, or on_event returns non-zero. last_event_id (may be NULL) resumes.
 * on_event gets the event name ("message" when none), its id (or "") and
 * its data. PQ_OK when the stream ended or was stopped by on_event,
 * PQ_ERR_UNAVAILABLE when the connection failed or dropped, *status the HTTP
 * status. */
pq_err pq_client_sse(pq_client *c, const char *path, const char *last_event_id, pq_sse_fn on_event,
                     void *ctx, long *status);

/* The Retry-After of the last pq_client_call's answer, in seconds (at most
 * an hour); 0 when it had none. */
long pq_client_retry_after(const pq_client *c);

/* The message of an error envelope, or a fallback (borrowed). */
const char *pq_client_error_text(json_t *response, const char *fallback);

#endif
