/* A growable byte buffer, always NUL-terminated once anything was added. */
#ifndef PQ_BASE_BUF_H
#define PQ_BASE_BUF_H

#include <stddef.h>

typedef struct pq_buf {
  char *data; /* malloc'd; free with pq_buf_free, or take it */
  size_t len, cap;
} pq_buf;

/* Both return 0, or -1 on OOM (the buffer keeps what it had). */
int pq_buf_add(pq_buf *b, const char *bytes, size_t n);
int pq_buf_printf(pq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pq_buf_free(pq_buf *b);

#endif
