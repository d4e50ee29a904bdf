#include "http/request.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "http/server_internal.h"
#include <microhttpd.h>
#include <poll.h>

struct pq__arena_chunk {
  pq__arena_chunk *next;
  size_t used, size;
  max_align_t data[];
};

void *pq_req_alloc(pq_req *req, size_t size) {
  size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
  pq__arena_chunk *c = req->arena;
  if (!c || c->size - c->used < size) {
    size_t cap = size > 4096 ? size : 4096;
    if (!(c = malloc(sizeof *c + cap))) return NULL;
    c->used = 0;
    c->size = cap;
    c->next = req->arena;
    req->arena = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

void pq__req_arena_free(pq_req *req) {
  while (req->arena) {
    pq__arena_chunk *next = req->arena->next;
    free(req->arena);
    req->arena = next;
  }
}

char *pq_req_strndup(pq_req *req, const char *s, size_t n) {
  char *p = pq_req_alloc(req, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

const char *pq_req_param(pq_req *req, const char *name) {
  size_t len = strlen(name);
  for (int i = 0; i < req->match.n_params; i++)
    if (req->match.params[i].name_len == len && memcmp(req->match.params[i].name, name, len) == 0)
      return pq_req_strndup(req, req->match.params[i].value, req->match.params[i].value_len);
  return NULL;
}

const char *pq_req_query(pq_req *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *pq_req_header(pq_req *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

bool pq_req_peer_gone(pq_req *req) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!info) return false;
  struct pollfd p = {.fd = info->connect_fd, .events = POLLRDHUP};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

pq_err pq_req_reply(pq_req *req, int status, json_t *body) {
  if (!req->reply_static) free(req->reply);
  req->reply_static = false;
  req->reply = NULL;
  req->reply_len = 0;
  req->status = status;
  if (body) {
    /* 15 significant digits: 0.2981 reads as 0.2981, not 0.29809999999999998 */
    req->reply = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (!req->reply) return PQ_ERR_NO_MEMORY;
    req->reply_len = strlen(req->reply);
  }
  return PQ_OK;
}

pq_err pq_req_reply_text(pq_req *req, int status, const char *content_type, char *text) {
  return pq_req_reply_bytes(req, status, content_type, text, text ? strlen(text) : 0);
}

pq_err pq_req_reply_static(pq_req *req, int status, const char *content_type, const char *data, size_t len) {
  pq_err e = pq_req_reply_bytes(req, status, content_type, (char *)data, len); /* never written through */
  req->reply_static = true;
  return e;
}

pq_err pq_req_reply_bytes(pq_req *req, int status, const char *content_type, char *data, size_t len) {
  if (!req->reply_static) free(req->reply);
  req->reply_static = false;
  req->reply = data;
  req->reply_len = data ? len : 0;
  req->reply_type = content_type;
  req->status = status;
  return data ? PQ_OK : PQ_ERR_NO_MEMORY;
}

/* Replaces every byte that is not part of well-formed UTF-8 with '?', in
 * place: a message that echoes a client's bytes (an id in a path) must still
 * be a JSON string. */
static void utf8_scrub(char *s) {
  unsigned char *p = (unsigned char *)s;
  size_t left = strlen(s);
  while (left) {
    size_t n = pq_utf8_sequence(p, left);
    if (!n) {
      *p = '?';
      n = 1;
    }
    p += n;
    left -= n;
  }
}

void pq_req_clear_error(pq_req *req) {
  req->error = PQ_OK;
  req->error_message = NULL; /* the request's memory: freed with it */
  json_decref(req->error_details);
  req->error_details = NULL;
}

pq_err pq_req_fail(pq_req *req, pq_err err, json_t *details, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  utf8_scrub(buf); /* a cut at the buffer's end or a client's bytes: still a JSON string */
  req->error = err;
  req->error_message = pq_req_strndup(req, buf, strlen(buf));
  json_decref(req->error_details);
  req->error_details = details;
  return err;
}

static void op_done(pq_op *op) { pq_req_wake(op->ud); }

static void one_of_ops_done(pq_op *op) {
  pq_req *req = op->ud;
  if (__atomic_sub_fetch(&req->pending_ops, 1, __ATOMIC_ACQ_REL) == 0) pq_req_wake(req);
}

void pq_req_run_ops(pq_req *req, pq_op *ops, size_t n, pq_handler_fn resume) {
  pq_req_park(req, resume); /* before submitting: the last done may come at once */
  __atomic_store_n(&req->pending_ops, (int)n, __ATOMIC_RELEASE);
  for (size_t i = 0; i < n; i++) {
    ops[i].done = one_of_ops_done;
    ops[i].ud = req;
    pq_coord_submit(req->coord, &ops[i]);
  }
}

void pq_req_run_op(pq_req *req, pq_handler_fn resume) {
  pq_req_park(req, resume); /* before submitting: done may come at once */
  req->op.done = op_done;
  req->op.ud = req;
  pq_coord_submit(req->coord, &req->op);
}


static void waiter_woken(pq_waiter *w, pq_wake_reason why) {
  (void)why;
  pq_req_wake(w->data);
}

pq_err pq_req_stream(pq_req *req, int status, const char *content_type, pq_stream_fn fill) {
  if (!req->stream_slot && req->caller.known) {
    if (!pq_access_stream_acquire(pq_req_access(req), req->caller.limit_key))
      return pq_req_fail(req, PQ_ERR_STREAM_QUOTA_EXCEEDED,
                         json_pack("{s:i}", "max_streams", pq_access_config_of(pq_req_access(req))->max_streams_per_key),
                         "this credential has too many open streams");
    req->stream_slot = true;
  }
  req->status = status;
  req->stream_type = content_type;
  req->stream_fn = fill;
  return PQ_OK;
}

void pq_req_stream_wait(pq_req *req, uint64_t key, uint64_t seen_version, int64_t deadline_ms) {
  MHD_suspend_connection(req->conn); /* first: the wake may come at once */
  req->waiter.wake = waiter_woken;
  req->waiter.data = req;
  if (pq_hub_wait(pq_coord_hub(req->coord), &req->waiter, key, seen_version, deadline_ms) != PQ_OK)
    pq_req_wake(req);
}

void pq_req_wait_job(pq_req *req, const char *job_id, uint64_t seen_version, pq_handler_fn resume) {
  pq_req_park(req, resume);
  req->waiter.wake = waiter_woken;
  req->waiter.data = req;
  if (pq_hub_wait(pq_coord_hub(req->coord), &req->waiter, pq_coord_job_key(job_id), seen_version,
                  req->deadline_ms) != PQ_OK)
    pq_req_wake(req); /* stale or stopping: look again now */
}
