/* The HTTP server: libmicrohttpd with a small pool of epoll threads.
 *
 * Requests that wait (for a commit, a job, a lease) are suspended, not
 * parked on a thread, so thousands can wait at once. The dispatcher does
 * routing (404/405), body limits (413), JSON parsing and the error envelope
 * once, for every route. */
#ifndef PQ_HTTP_SERVER_H
#define PQ_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/access.h"
#include "base/ids.h"
#include "engine/coord.h"
#include "http/router.h"

typedef struct pq_server pq_server;

typedef struct pq_server_config {
  const char *host;          /* IPv4 address to bind */
  int port;                  /* 0: any free port (see pq_server_port) */
  int threads;
  int connection_limit;
  int per_ip_limit;
  int idle_timeout_s;
  int64_t header_timeout_ms; /* a request's headers must be in by then (0: no deadline) */
  int64_t max_body;
  int64_t max_upload;        /* the body of a PQ_ROUTE_UPLOAD route (0: max_body) */
  int max_wait_s;            /* the longest a long-poll may wait */
  int64_t keepalive_ms;      /* a comment line on idle streams this often */
  pq_access *access;         /* who may call what; borrowed */
  const void *app;           /* the API's own settings, for handlers; borrowed */
  bool metrics_private;      /* routes flagged PQ_ROUTE_METRICS need an admin credential */
  /* Dialects whose client routes callers without credentials may use, each
   * as one non-admin user (rate limited per address): a document with no
   * authentication (001). */
  struct pq_anonymous_dialect {
    const char *route_prefix;  /* "d001." */
    char user_id[PQ_UUID_LEN + 1];
    const char *user_name;
  } anonymous[4];
  int n_anonymous;
  const pq_route *routes;    /* borrowed, must outlive the server */
  size_t n_routes;
} pq_server_config;

/* Starts listening. coord is borrowed. Free with pq_server_stop(). */
pq_err pq_server_start(const pq_server_config *cfg, pq_coord *coord, pq_server **out);
int pq_server_port(pq_server *s);
/* The HTTP metrics in Prometheus text (api_requests_total,
 * api_request_duration_seconds, sse_subscribers). Caller frees. */
char *pq_server_metrics_text(pq_server *s);

/* Requests parked right now (long-polls, and requests awaiting a commit). */
size_t pq_server_waiting(pq_server *s);
/* Graceful stop: no new connections, waiting requests answer now, requests
 * in flight finish; then the server is freed. The coordinator is left open. */
void pq_server_stop(pq_server *s);

#endif
