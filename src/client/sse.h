/* An incremental Server-Sent Events parser: feed it bytes as they arrive, it
 * calls back once per complete event. Used by the CLI's stream reader and by
 * the openai worker backend. */
#ifndef PQ_CLIENT_SSE_H
#define PQ_CLIENT_SSE_H

#include <stddef.h>

/* event: the name ("message" when none); id: "" when none; data: the data
 * lines joined with '\n'. All borrowed for the call. Non-zero stops. */
typedef int (*pq_sse_fn)(void *ctx, const char *event, const char *id, const char *data);

typedef struct pq_sse_parser {
  pq_sse_fn on_event;
  void *ctx;
  /* private */
  char *line, *data;
  size_t line_len, line_cap, data_len, data_cap;
  char event[64], id[64];
  int stopped;
} pq_sse_parser;

void pq_sse_init(pq_sse_parser *p, pq_sse_fn on_event, void *ctx);
/* Returns 0, or -1 when on_event asked to stop or memory ran out. */
int pq_sse_feed(pq_sse_parser *p, const char *bytes, size_t len);
void pq_sse_free(pq_sse_parser *p);

#endif
