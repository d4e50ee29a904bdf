/* The header deadline: a connection must finish sending a request's headers
 * within a time limit, whatever it trickles meanwhile (libmicrohttpd's own
 * timeout is an idle timeout, which one byte a second defeats). Private to
 * the HTTP layer (server.c owns it).
 *
 * Each connection gets a watch when it opens (freed when it closes); the
 * watchdog thread shuts down the socket of one that is late, and
 * libmicrohttpd then closes it. A connection's first request has header_ms
 * from the connect; later ones on it have the idle timeout plus header_ms
 * from the previous request's end. */
#ifndef PQ_HTTP_DEADLINE_H
#define PQ_HTTP_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct pq__watchdog pq__watchdog;
typedef struct pq__conn_watch pq__conn_watch;

pq__watchdog *pq__watchdog_new(int64_t header_ms, int64_t idle_ms); /* NULL on failure */
void pq__watchdog_free(pq__watchdog *w);
/* A connection opened on fd: the watch to pass back below. */
pq__conn_watch *pq__watch_open(pq__watchdog *w, int fd);
void pq__watch_close(pq__watchdog *w, pq__conn_watch *c);
/* Its request's headers arrived / its request ended. */
void pq__watch_headers_done(pq__conn_watch *c);
void pq__watch_request_done(pq__watchdog *w, pq__conn_watch *c);

#endif
