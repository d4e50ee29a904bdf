/* The front door: see frontdoor.h. One thread, one epoll: the listening
 * socket and the connections whose first head has not arrived yet (looked
 * at with MSG_PEEK, edge-triggered, so nothing is read that libmicrohttpd
 * must see). */
#include "http/frontdoor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/ids.h"
#include "base/log.h"

#define PENDING_MAX 4096 /* connections waiting for their head at once; more are closed */

/* ---- judging a head ---- */

static bool is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

static pq_err bad(const char **why, const char **header, const char *w, const char *h) {
  *why = w;
  *header = h;
  return PQ_ERR_INVALID_REQUEST;
}

/* The next line of [p, end): its length without the line end; *next past it. */
static const char *line_end(const char *p, const char *end) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  return nl ? nl : NULL;
}

static bool value_is(const char *v, size_t n, const char *word) {
  while (n && (*v == ' ' || *v == '\t')) v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  return n == strlen(word) && strncasecmp(v, word, n) == 0;
}

pq_err pq__head_check(const char *head, size_t len, int complete, const char **why, const char **header) {
  *why = NULL;
  *header = NULL;
  const char *end = head + len, *nl = line_end(head, end);
  size_t line_len = nl ? (size_t)(nl - head) : len;
  if (line_len > PQ__REQUEST_LINE_MAX) {
    *why = "the request line is longer than 8 KiB";
    return PQ_ERR_URI_TOO_LONG;
  }
  if (!complete) {
    if (len > PQ__HEAD_MAX) {
      *why = "the request headers are larger than 12 KiB";
      return PQ_ERR_HEADERS_TOO_LARGE;
    }
    return PQ_OK; /* wait for the rest */
  }
  if (len > PQ__HEAD_MAX) {
    *why = "the request headers are larger than 12 KiB";
    return PQ_ERR_HEADERS_TOO_LARGE;
  }
  /* request-line = method SP request-target SP HTTP-version */
  if (line_len && head[line_len - 1] == '\r') line_len--;
  const char *sp1 = memchr(head, ' ', line_len);
  const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', line_len - (size_t)(sp1 + 1 - head)) : NULL;
  if (!sp1 || !sp2 || sp1 == head || sp2 == sp1 + 1)
    return bad(why, header, "the request line must be METHOD TARGET HTTP/1.1", NULL);
  for (const char *p = head; p < sp1; p++)
    if (!is_tchar((unsigned char)*p)) return bad(why, header, "the method is not a token", NULL);
  for (const char *p = sp1 + 1; p < sp2; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f) return bad(why, header, "the request target holds a control character", NULL);
  size_t vlen = line_len - (size_t)(sp2 + 1 - head);
  if (!(vlen == 8 && (strncmp(sp2 + 1, "HTTP/1.1", 8) == 0 || strncmp(sp2 + 1, "HTTP/1.0", 8) == 0)))
    return bad(why, header, "only HTTP/1.1 and HTTP/1.0 are spoken here", NULL);
  /* field-line = field-name ":" OWS field-value OWS */
  int lengths = 0, codings = 0;
  const char *first_length = NULL;
  size_t first_length_n = 0;
  for (const char *p = nl + 1; p < end;) {
    const char *e = line_end(p, end);
    if (!e) break;
    size_t n = (size_t)(e - p);
    if (n && p[n - 1] == '\r') n--;
    if (n == 0) break; /* the blank line: the head ends */
    if (*p == ' ' || *p == '\t') return bad(why, header, "folded header lines (obs-fold) are not accepted", NULL);
    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p) return bad(why, header, "a header line has no name", NULL);
    for (const char *q = p; q < colon; q++)
      if (!is_tchar((unsigned char)*q)) return bad(why, header, "a header name holds a character it may not", NULL);
    const char *v = colon + 1;
    size_t vn = n - (size_t)(v - p);
    for (size_t i = 0; i < vn; i++)
      if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f)
        return bad(why, header, "a header value holds a control character", NULL);
    size_t name_n = (size_t)(colon - p);
    if (name_n == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
      while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
      while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) vn--;
      if (!vn || vn > 18 || strspn(v, "0123456789") < vn)
        return bad(why, header, "Content-Length must be a plain decimal number", "Content-Length");
      if (lengths++ && (vn != first_length_n || strncmp(v, first_length, vn) != 0))
        return bad(why, header, "the request carries Content-Length headers that differ", "Content-Length");
      first_length = v;
      first_length_n = vn;
    } else if (name_n == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
      if (codings++ || !value_is(v, vn, "chunked"))
        return bad(why, header, "the only transfer coding accepted is chunked", "Transfer-Encoding");
    }
    p = e + 1;
  }
  if (lengths && codings)
    return bad(why, header, "a request may carry Content-Length or Transfer-Encoding, not both", "Transfer-Encoding");
  return PQ_OK;
}

/* ---- the door ---- */

typedef struct pending {
  int fd;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int64_t deadline_ms;
  struct pending *prev, *next;
} pending;

struct pq__frontdoor {
  struct MHD_Daemon *daemon;
  int listen_fd, epoll_fd, wake_fd, port;
  int64_t header_ms;
  pthread_t thread;
  bool started;
  pending *head;
  size_t n_pending;
  bool stop;
};

static void drop(pq__frontdoor *f, pending *p, bool close_fd) {
  epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
  if (close_fd) close(p->fd);
  if (p->prev) p->prev->next = p->next;
  else f->head = p->next;
  if (p->next) p->next->prev = p->prev;
  f->n_pending--;
  free(p);
}

/* The envelope, written at once (it fits any socket buffer), then closed. */
static void refuse(pq__frontdoor *f, pending *p, pq_err e, const char *why, const char *header) {
  char request_id[17], ts[PQ_TIME_BUF];
  pq_random_hex(request_id, 8);
  json_t *body = json_pack("{s:{s:s,s:s,s:o,s:b},s:s,s:s}", "error", "code", pq_err_code(e), "message", why,
                           "details", header ? json_pack("{s:s}", "header", header) : json_object(), "retryable", 0,
                           "request_id", request_id, "timestamp", pq_format_time(pq_now_ms(), ts, sizeof ts));
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  int status = pq_err_http_status(e);
  const char *reason = status == 414 ? "URI Too Long" : status == 431 ? "Request Header Fields Too Large" : "Bad Request";
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n",
                   status, reason, text ? strlen(text) : 0, request_id);
  if (send(p->fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && text)
    (void)!send(p->fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
  free(text);
  shutdown(p->fd, SHUT_WR);
  drop(f, p, true);
}

static void look(pq__frontdoor *f, pending *p, bool hung_up) {
  static __thread char buf[PQ__HEAD_MAX + 2];
  ssize_t got = recv(p->fd, buf, sizeof buf - 1, MSG_PEEK | MSG_DONTWAIT);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    drop(f, p, true); /* gone before a word */
    return;
  }
  if (got < 0) return;
  buf[got] = '\0';
  char *blank = strstr(buf, "\r\n\r\n");
  char *bare = strstr(buf, "\n\n");
  size_t head_len = (size_t)got;
  bool complete = false;
  if (blank && (!bare || blank <= bare)) head_len = (size_t)(blank - buf) + 4, complete = true;
  else if (bare) head_len = (size_t)(bare - buf) + 2, complete = true;
  const char *why, *header;
  pq_err e = pq__head_check(buf, head_len, complete, &why, &header);
  if (e != PQ_OK) {
    refuse(f, p, e, why, header);
    return;
  }
  if (!complete) {
    if (hung_up) drop(f, p, true); /* the client closed its side: no more of the head is coming */
    return;                        /* else the next edge brings more */
  }
  int fd = p->fd;
  struct sockaddr_storage addr = p->addr;
  socklen_t addr_len = p->addr_len;
  drop(f, p, false);
  if (MHD_add_connection(f->daemon, fd, (struct sockaddr *)&addr, addr_len) != MHD_YES)
    pq_warn("http: a connection could not be taken (connection limits)"); /* MHD closed it */
}

static void accept_all(pq__frontdoor *f) {
  for (;;) {
    pending *p = calloc(1, sizeof *p);
    if (!p) return;
    p->addr_len = sizeof p->addr;
    p->fd = accept4(f->listen_fd, (struct sockaddr *)&p->addr, &p->addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (p->fd < 0) {
      free(p);
      return;
    }
    if (f->n_pending >= PENDING_MAX) {
      close(p->fd);
      free(p);
      continue;
    }
    p->deadline_ms = pq_mono_ms() + f->header_ms;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
    if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
      close(p->fd);
      free(p);
      continue;
    }
    p->next = f->head;
    if (f->head) f->head->prev = p;
    f->head = p;
    f->n_pending++;
    look(f, p, false); /* it may have sent its head already */
  }
}

static void *door_main(void *arg) {
  pq__frontdoor *f = arg;
  struct epoll_event events[64];
  while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
    int n = epoll_wait(f->epoll_fd, events, 64, 250);
    for (int i = 0; i < n; i++) {
      void *tag = events[i].data.ptr;
      if (tag == &f->listen_fd) accept_all(f);
      else if (tag != &f->wake_fd) look(f, tag, events[i].events & (EPOLLRDHUP | EPOLLHUP));
    }
    int64_t now = pq_mono_ms();
    for (pending *p = f->head, *next; p; p = next) {
      next = p->next;
      if (now >= p->deadline_ms) drop(f, p, true); /* no head in time */
    }
  }
  return NULL;
}

pq__frontdoor *pq__frontdoor_start(const char *host, int port, struct MHD_Daemon *daemon, int64_t header_ms) {
  pq__frontdoor *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->daemon = daemon;
  f->header_ms = header_ms > 0 ? header_ms : 10000;
  f->listen_fd = f->epoll_fd = f->wake_fd = -1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1;
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 ||
      (f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
      setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(f->listen_fd, 1024) != 0) {
    pq_error("http: cannot listen on %s:%d: %s", host, port, strerror(errno));
    pq__frontdoor_stop(f);
    return NULL;
  }
  socklen_t len = sizeof addr;
  getsockname(f->listen_fd, (struct sockaddr *)&addr, &len);
  f->port = ntohs(addr.sin_port);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &f->listen_fd};
  struct epoll_event wake = {.events = EPOLLIN, .data.ptr = &f->wake_fd};
  if ((f->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
      epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->listen_fd, &ev) != 0 ||
      epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->wake_fd, &wake) != 0 ||
      pthread_create(&f->thread, NULL, door_main, f) != 0) {
    pq_error("http: cannot start the front door: %s", strerror(errno));
    pq__frontdoor_stop(f);
    return NULL;
  }
  f->started = true;
  return f;
}

int pq__frontdoor_port(const pq__frontdoor *f) { return f->port; }

void pq__frontdoor_stop(pq__frontdoor *f) {
  if (!f) return;
  if (f->started) {
    __atomic_store_n(&f->stop, true, __ATOMIC_RELEASE);
    uint64_t one = 1;
    (void)!write(f->wake_fd, &one, sizeof one);
    pthread_join(f->thread, NULL);
  }
  while (f->head) drop(f, f->head, true);
  if (f->listen_fd >= 0) close(f->listen_fd);
  if (f->epoll_fd >= 0) close(f->epoll_fd);
  if (f->wake_fd >= 0) close(f->wake_fd);
  free(f);
}
