#include "client/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pq_sse_init(pq_sse_parser *p, pq_sse_fn on_event, void *ctx) {
  memset(p, 0, sizeof *p);
  p->on_event = on_event;
  p->ctx = ctx;
}

void pq_sse_free(pq_sse_parser *p) {
  free(p->line);
  free(p->data);
  p->line = p->data = NULL;
}

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t cap2 = *cap ? *cap : 256;
  while (cap2 < need) cap2 *= 2;
  char *grown = realloc(*buf, cap2);
  if (!grown) return -1;
  *buf = grown;
  *cap = cap2;
  return 0;
}

/* One complete line (without its newline). */
static int handle_line(pq_sse_parser *p, char *line, size_t len) {
  if (len == 0) { /* a blank line dispatches the event */
    int stop = 0;
    if (p->data_len) {
      p->data[--p->data_len] = '\0'; /* drop the last '\n' */
      stop = p->on_event(p->ctx, p->event[0] ? p->event : "message", p->id, p->data);
    }
    p->data_len = 0;
    p->event[0] = '\0';
    return stop ? -1 : 0;
  }
  if (line[0] == ':') return 0; /* a comment: keepalives */
  char *value = memchr(line, ':', len);
  size_t vlen = 0;
  if (value) {
    *value++ = '\0';
    if (*value == ' ') value++;
    vlen = len - (size_t)(value - line);
  } else {
    value = line + len;
  }
  if (strcmp(line, "event") == 0) snprintf(p->event, sizeof p->event, "%.*s", (int)vlen, value);
  else if (strcmp(line, "id") == 0) snprintf(p->id, sizeof p->id, "%.*s", (int)vlen, value);
  else if (strcmp(line, "data") == 0) {
    if (grow(&p->data, &p->data_cap, p->data_len + vlen + 2)) return -1;
    memcpy(p->data + p->data_len, value, vlen);
    p->data_len += vlen;
    p->data[p->data_len++] = '\n';
    p->data[p->data_len] = '\0';
  }
  return 0;
}

int pq_sse_feed(pq_sse_parser *p, const char *bytes, size_t len) {
  if (p->stopped) return -1;
  for (size_t i = 0; i < len; i++) {
    if (bytes[i] != '\n') {
      if (grow(&p->line, &p->line_cap, p->line_len + 2)) return p->stopped = 1, -1;
      p->line[p->line_len++] = bytes[i];
      continue;
    }
    size_t n = p->line_len;
    if (n && p->line[n - 1] == '\r') n--;
    if (grow(&p->line, &p->line_cap, n + 1)) return p->stopped = 1, -1;
    p->line[n] = '\0';
    p->line_len = 0;
    if (handle_line(p, p->line, n)) return p->stopped = 1, -1;
  }
  return 0;
}
