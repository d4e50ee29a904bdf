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
/* Copies up to max bytes from *off on into out and moves *off on; once all
 * is taken the buffer is emptied (kept for reuse). Returns the count, 0 when
 * nothing is left: a stream's pending answer handed out piece by piece. */
size_t pq_buf_take(pq_buf *b, size_t *off, char *out, size_t max);

#endif
