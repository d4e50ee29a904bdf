/* libFuzzer: the SSE parser (client/sse.c), fed in pieces as a network would. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client/sse.h"

static int on_event(void *ctx, const char *event, const char *id, const char *data) {
  size_t *seen = ctx;
  *seen += strlen(event) + strlen(id) + strlen(data); /* every string is NUL-terminated and readable */
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pq_sse_parser p;
  size_t seen = 0;
  pq_sse_init(&p, on_event, &seen);
  size_t cut = size ? data[0] % 17 + 1 : 1; /* the first byte picks the piece size */
  for (size_t off = 0; off < size; off += cut)
    if (pq_sse_feed(&p, (const char *)data + off, off + cut <= size ? cut : size - off) != 0) break;
  pq_sse_free(&p);
  return 0;
}
