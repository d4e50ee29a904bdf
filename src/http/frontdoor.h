/* The front door: promptq's own listening socket, in front of libmicrohttpd.
 * It accepts each connection and looks (without reading) at its first
 * request's head; a head that is malformed, too long, or framed ambiguously
 * (RFC 9112) is answered here, in the error envelope, and the connection
 * closed; a sound one is handed to libmicrohttpd (MHD_add_connection),
 * which then owns the connection. libmicrohttpd 0.9.75 answers such heads
 * with HTML of its own (and, for a malformed Content-Length, sends its
 * status line and headers twice). Private to the HTTP layer.
 *
 * A connection that has not sent its head within header_ms is closed here. */
#ifndef PQ_HTTP_FRONTDOOR_H
#define PQ_HTTP_FRONTDOOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct MHD_Daemon;
typedef struct pq__frontdoor pq__frontdoor;

#define PQ__REQUEST_LINE_MAX 8192
#define PQ__HEAD_MAX 12288 /* below libmicrohttpd's per-connection pool, so it never refuses a head itself */

/* Judges a request head (the bytes up to and including the blank line, or
 * what has arrived when complete is false). PQ_OK: sound, or not complete
 * yet and not too long; otherwise the error, with a message in *why and the
 * header at fault (or NULL) in *header. Pure: the unit and fuzz tests use it. */
pq_err pq__head_check(const char *head, size_t len, int complete, const char **why, const char **header);

/* Listens on host:port (0: any free port) and hands connections to daemon,
 * started with MHD_USE_NO_LISTEN_SOCKET. NULL on failure (logged). */
pq__frontdoor *pq__frontdoor_start(const char *host, int port, struct MHD_Daemon *daemon, int64_t header_ms);
int pq__frontdoor_port(const pq__frontdoor *f);
/* Stops accepting and closes the connections not yet handed over. */
void pq__frontdoor_stop(pq__frontdoor *f);

#endif
