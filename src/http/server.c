#include "http/server.h"
#include "http/deadline.h"
#include "http/frontdoor.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/jschema.h"
#include "base/log.h"
#include "http/json_in.h"
#include "http/request.h"
#include "http/server_internal.h"

/* Upper bounds, in seconds, of the latency histogram's buckets. */
static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,    10};
#define N_BUCKETS (sizeof latency_buckets / sizeof latency_buckets[0])
#define N_STATUSES 500 /* 100..599 */

typedef struct {
  uint64_t by_status[N_STATUSES];
  uint64_t buckets[N_BUCKETS + 1]; /* the last is +Inf */
  uint64_t sum_us, count;
} route_metrics;

struct pq_server {
  struct MHD_Daemon *daemon;
  route_metrics *metrics; /* one per route, and one for requests that matched none */
  uint64_t streams;       /* event streams open now */
  pq_coord *coord;
  pq_server_config cfg;
  pthread_mutex_t mu;
  pthread_cond_t idle_cv;
  size_t parked;   /* requests suspended, waiting to be woken */
  size_t active;   /* requests between arrival and completion */
  bool stopping;
  pq__watchdog *watchdog; /* the header deadline; NULL when off */
  pq__frontdoor *door;    /* the listening socket: first heads judged, then libmicrohttpd */
};

/* How long a stop waits for requests in flight before closing them anyway
 * (a client trickling a body must not hold the process hostage). */
#define STOP_GRACE_MS 10000

/* ---- parking ---- */

void pq_req_park(pq_req *req, pq_handler_fn resume) {
  pq_server *s = req->server;
  req->parked = true;
  req->resume = resume;
  pthread_mutex_lock(&s->mu);
  s->parked++;
  pthread_mutex_unlock(&s->mu);
  MHD_suspend_connection(req->conn);
}

void pq_req_wake(pq_req *req) { MHD_resume_connection(req->conn); }

static void unparked(pq_req *req) {
  pq_server *s = req->server;
  req->parked = false;
  pthread_mutex_lock(&s->mu);
  if (--s->parked == 0 && s->stopping) pthread_cond_broadcast(&s->idle_cv);
  pthread_mutex_unlock(&s->mu);
}

bool pq_req_server_stopping(pq_req *req) {
  pq_server *s = req->server;
  pthread_mutex_lock(&s->mu);
  bool stopping = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return stopping;
}

int pq_req_max_wait_s(pq_req *req) { return req->server->cfg.max_wait_s; }
pq_access *pq_req_access(pq_req *req) { return req->server->cfg.access; }
const void *pq_req_app(pq_req *req) { return req->server->cfg.app; }

int64_t pq_req_keepalive_ms(pq_req *req) {
  return req->server->cfg.keepalive_ms > 0 ? req->server->cfg.keepalive_ms : 15000;
}

/* ---- responses ---- */

static void build_error_body(pq_req *req) {
  pq_err e = req->error;
  const pq_route *route = req->match.route;
  if (route && route->render_error) { /* a dialect answers in its own shape */
    int status = pq_err_http_status(e);
    json_t *body = route->render_error(req, e, req->error_message ? req->error_message : pq_err_message(e),
                                       req->error_details, &status);
    pq_req_reply(req, status, body);
    return;
  }
  char ts[PQ_TIME_BUF];
  json_t *details = req->error_details ? req->error_details : json_object();
  req->error_details = NULL;
  json_t *body = json_pack("{s:{s:s,s:s,s:o,s:b},s:s,s:s}", "error", "code", pq_err_code(e),
                           "message", req->error_message ? req->error_message : pq_err_message(e),
                           "details", details, "retryable", pq_err_retryable(e), "request_id",
                           req->request_id, "timestamp", pq_format_time(pq_now_ms(), ts, sizeof ts));
  pq_req_reply(req, pq_err_http_status(e), body);
}

/* RateLimit-Policy / RateLimit (IETF draft) and the common X-RateLimit-* set. */
static void add_rate_headers(struct MHD_Response *r, const pq_req *req) {
  const pq_rate_policy *p = req->rate_policy;
  if (p->limit <= 0) return; /* unlimited: no numbers to announce */
  char v[128];
  snprintf(v, sizeof v, "%lld;w=%lld;burst=%lld", (long long)p->limit, (long long)p->window_s,
           (long long)p->burst);
  MHD_add_response_header(r, "RateLimit-Policy", v);
  snprintf(v, sizeof v, "limit=%lld, remaining=%lld, reset=%lld", (long long)p->burst,
           (long long)req->rate.remaining, (long long)req->rate.reset_s);
  MHD_add_response_header(r, "RateLimit", v);
  snprintf(v, sizeof v, "%lld", (long long)p->limit);
  MHD_add_response_header(r, "X-RateLimit-Limit", v);
  snprintf(v, sizeof v, "%lld", (long long)req->rate.remaining);
  MHD_add_response_header(r, "X-RateLimit-Remaining", v);
  snprintf(v, sizeof v, "%lld", (long long)(pq_now_ms() / 1000 + req->rate.reset_s)); /* epoch seconds */
  MHD_add_response_header(r, "X-RateLimit-Reset", v);
  if (!req->rate.allowed) {
    snprintf(v, sizeof v, "%lld", (long long)req->rate.retry_after_s);
    MHD_add_response_header(r, "Retry-After", v);
  }
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  pq_req *req = cls;
  long n = req->stream_fn(req, buf, max);
  if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
  return n; /* 0: the fill suspended the connection until there is more */
}

static enum MHD_Result send_reply(pq_req *req) {
  if (req->error != PQ_OK) {
    req->stream_fn = NULL;
    build_error_body(req);
  }
  struct MHD_Response *r;
  if (req->stream_fn) {
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, req, NULL);
    if (r) {
      __atomic_fetch_add(&req->server->streams, 1, __ATOMIC_RELAXED);
      req->stream_counted = true;
      MHD_add_response_header(r, "Content-Type", req->stream_type);
      MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* proxies: do not hold it back */
    }
  } else if (req->reply) {
    r = MHD_create_response_from_buffer(req->reply_len, req->reply,
                                        req->reply_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (r) req->reply = NULL; /* MHD frees it (or it was never ours) */
  } else {
    r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (!r) return MHD_NO;
  if (req->reply_len)
    MHD_add_response_header(r, "Content-Type", req->reply_type ? req->reply_type : "application/json");
  MHD_add_response_header(r, "X-Request-Id", req->request_id);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if (req->rate_policy) add_rate_headers(r, req);
  if (req->error == PQ_ERR_UNAUTHORIZED) MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"promptq\"");
  if (req->error == PQ_ERR_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", req->allow);
  /* a quota of open streams frees up as they close: look again soon */
  if (req->error == PQ_ERR_STREAM_QUOTA_EXCEEDED || req->error == PQ_ERR_QUEUE_QUOTA_EXCEEDED)
    MHD_add_response_header(r, "Retry-After", "1");
  if (req->error == PQ_ERR_PAYLOAD_TOO_LARGE || req->bad_framing || pq_req_server_stopping(req))
    MHD_add_response_header(r, "Connection", "close");
  enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, r);
  MHD_destroy_response(r);
  req->answered = true;
  return ret;
}

/* ---- dispatch ---- */

static bool is_json_type(const char *ct) {
  if (!ct) return true; /* absent: taken as JSON */
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
  return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
         (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static pq_err parse_body(pq_req *req) {
  if (!is_json_type(pq_req_header(req, "Content-Type")))
    return pq_req_fail(req, PQ_ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                       "Content-Type must be application/json");
  json_error_t jerr;
  req->body = json_loadb(req->raw_body, req->raw_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!req->body)
    return pq_req_fail(req, PQ_ERR_INVALID_JSON,
                       json_pack("{s:i,s:i,s:s}", "line", jerr.line, "column", jerr.column,
                                 "reason", jerr.text),
                       "the request body is not valid JSON: %s", jerr.text);
  if (!json_is_object(req->body))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "the request body must be a JSON object");
  return PQ_OK;
}

static void client_address(pq_req *req, char *out, size_t size) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, size, "?");
  if (!info || !info->client_addr) return;
  const struct sockaddr *sa = info->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)size);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)size);
}

/* A caller with no credentials on a route of a dialect served anonymously
 * is that dialect's user, limited per address. */
static bool anonymous_caller(pq_req *req, const pq_route *route, char *rate_key, size_t size) {
  const pq_server_config *cfg = &req->server->cfg;
  if (pq_req_header(req, "Authorization") || pq_req_header(req, "X-Api-Key") || pq_req_header(req, "X-Session-Token"))
    return false;
  for (int i = 0; i < cfg->n_anonymous; i++) {
    const struct pq_anonymous_dialect *d = &cfg->anonymous[i];
    if (strncmp(route->name, d->route_prefix, strlen(d->route_prefix)) != 0) continue;
    pq_identity *id = &req->caller;
    memset(id, 0, sizeof *id);
    id->known = true;
    id->scope = PQ_SCOPE_CLIENT;
    memcpy(id->user_id, d->user_id, sizeof id->user_id);
    snprintf(id->user_name, sizeof id->user_name, "%s", d->user_name);
    char addr[64];
    client_address(req, addr, sizeof addr);
    snprintf(id->limit_key, sizeof id->limit_key, "anon:%.46s", addr);
    snprintf(rate_key, size, "c:anon:%.8s:%.46s", d->route_prefix, addr);
    return true;
  }
  return false;
}

/* Who is calling, may they, and how often: once here for every route. */
static pq_err check_access(pq_req *req, const pq_route *route) {
  pq_access *a = req->server->cfg.access;
  const pq_access_config *ac = pq_access_config_of(a);
  char rate_key[80];
  pq_role role = route->role;
  if ((route->flags & PQ_ROUTE_METRICS) && req->server->cfg.metrics_private) role = PQ_ROLE_ADMIN;
  if (role == PQ_ROLE_PUBLIC) {
    if (!(route->flags & PQ_ROUTE_LOGIN) || ac->open) return PQ_OK;
    char addr[64];
    client_address(req, addr, sizeof addr);
    snprintf(rate_key, sizeof rate_key, "login:%s", addr);
    req->rate_policy = &ac->login;
  } else if (role == PQ_ROLE_CLIENT && !ac->open && anonymous_caller(req, route, rate_key, sizeof rate_key)) {
    req->rate_policy = &ac->client;
  } else {
    const char *why = NULL;
    pq_err e = pq_access_identify(a, pq_req_header(req, "Authorization"), pq_req_header(req, "X-Api-Key"),
                                  pq_req_header(req, "X-Session-Token"), &req->caller, &why);
    if (e == PQ_ERR_UNAUTHORIZED) return pq_req_fail(req, e, NULL, "%s", why);
    if (e != PQ_OK) return e;
    if (!pq_access_allows(&req->caller, role))
      return pq_req_fail(req, PQ_ERR_FORBIDDEN, json_pack("{s:s,s:s}", "scope", pq_scope_name(req->caller.scope),
                                                        "needs", role == PQ_ROLE_WORKER ? "worker" :
                                                                 role == PQ_ROLE_ADMIN ? "admin" : "client"),
                         "this credential may not call %s %s", req->method, route->pattern);
    if (ac->open) return PQ_OK; /* the demo is not rate limited */
    const char *cls = route->flags & PQ_ROUTE_RESULT ? "r"
                       : role == PQ_ROLE_WORKER    ? "w"
                       : route->flags & PQ_ROUTE_USER_CLASS ? "u"
                                                            : "c";
    req->rate_policy = role == PQ_ROLE_WORKER ? &ac->worker : route->flags & PQ_ROUTE_USER_CLASS ? &ac->user : &ac->client;
    /* per user as well as per key: minting keys does not multiply a budget */
    if (req->caller.user_id[0] && strncmp(req->caller.limit_key, "key:", 4) == 0) {
      snprintf(rate_key, sizeof rate_key, "%s:user:%s", cls, req->caller.user_id);
      req->rate = pq_access_limit(a, req->rate_policy, rate_key);
      if (!req->rate.allowed) goto limited;
    }
    snprintf(rate_key, sizeof rate_key, "%s:%s", cls, req->caller.limit_key);
  }
  req->rate = pq_access_limit(a, req->rate_policy, rate_key);
  if (req->rate.allowed) return PQ_OK;
limited:
  return pq_req_fail(req, PQ_ERR_RATE_LIMIT_EXCEEDED,
                     json_pack("{s:I}", "retry_after_s", (json_int_t)req->rate.retry_after_s),
                     "rate limit of %lld requests per %lld s exceeded; retry in %lld s",
                     (long long)req->rate_policy->limit, (long long)req->rate_policy->window_s,
                     (long long)req->rate.retry_after_s);
}

static pq_err dispatch(pq_req *req) {
  pq_server *s = req->server;
  if (pq_req_server_stopping(req))
    return pq_req_fail(req, PQ_ERR_SHUTTING_DOWN, NULL, "the server is shutting down; retry on another or later");
  pq_err e = pq_router_match(s->cfg.routes, s->cfg.n_routes, req->method, req->path, &req->match);
  if (e == PQ_ERR_METHOD_NOT_ALLOWED) {
    memcpy(req->allow, req->match.allow, sizeof req->allow);
    return pq_req_fail(req, e, json_pack("{s:s}", "allow", req->allow),
                       "%s is not allowed on %s", req->method, req->path);
  }
  if (e != PQ_OK) return pq_req_fail(req, e, NULL, "no route for %s %s", req->method, req->path);
  const pq_route *route = req->match.route;
  if ((e = check_access(req, route)) != PQ_OK) return e;
  if (req->too_large)
    return pq_req_fail(req, PQ_ERR_PAYLOAD_TOO_LARGE,
                       json_pack("{s:I,s:s}", "max_bytes", (json_int_t)req->body_limit, "code", "request_too_large"),
                       "the request body is larger than %lld bytes", (long long)req->body_limit);
  if ((route->flags & PQ_ROUTE_JSON_TYPE) && !pq_req_header(req, "Content-Type"))
    return pq_req_fail(req, PQ_ERR_UNSUPPORTED_MEDIA_TYPE, NULL, "Content-Type must be application/json");
  if ((route->flags & PQ_ROUTE_JSON) && req->raw_len > 0 && (e = parse_body(req)) != PQ_OK) return e;
  if ((route->flags & PQ_ROUTE_BODY) && !req->body)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "a JSON body is required");
  /* one schema documents the body (GET /openapi.json) and checks it, here, once */
  const json_t *schema = req->body && route->doc ? json_object_get(route->doc, "request") : NULL;
  if (schema) {
    pq_jerr why = {0};
    if (pq_jschema_check(&why, schema, route->schema_defs, req->body, "the body", PQ_JSCHEMA_NULL_IS_ABSENT) != PQ_OK)
      return pq_req_fail_jerr(req, PQ_ERR_INVALID_REQUEST, &why);
  }
  return route->handler(req);
}

static pq_req *req_new(pq_server *s, struct MHD_Connection *conn, const char *url,
                       const char *method) {
  pq_req *req = calloc(1, sizeof *req);
  if (!req) return NULL;
  req->started_us = pq_mono_us();
  req->server = s;
  pthread_mutex_lock(&s->mu);
  s->active++;
  pthread_mutex_unlock(&s->mu);
  req->coord = s->coord;
  req->conn = conn;
  req->method = pq_req_strndup(req, method, strlen(method));
  req->path = pq_req_strndup(req, url, strlen(url));
  const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  bool usable = given && *given && strlen(given) < sizeof req->request_id;
  for (const char *p = given; usable && *p; p++)
    usable = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
             *p == '-' || *p == '_';
  if (usable) snprintf(req->request_id, sizeof req->request_id, "%s", given);
  else pq_random_hex(req->request_id, 8);
  if (!req->method || !req->path) {
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_mutex_unlock(&s->mu);
    pq__req_arena_free(req);
    free(req);
    return NULL;
  }
  return req;
}

static pq__conn_watch *watch_of(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info ? info->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  pq_server *s = cls;
  if (!s->watchdog) return;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = info ? pq__watch_open(s->watchdog, info->connect_fd) : NULL;
  } else {
    pq__watch_close(s->watchdog, *socket_context);
    *socket_context = NULL;
  }
}

/* RFC 9112 6.3: a message with both Content-Length and Transfer-Encoding,
 * or with Content-Lengths that differ or are no plain number, must be
 * refused (and the connection closed): behind a proxy that reads it another
 * way, it smuggles a second request. libmicrohttpd refuses a malformed single
 * value itself; these it lets through. */
typedef struct {
  int lengths;
  const char *first;
  bool differ, malformed;
} framing;

static enum MHD_Result count_lengths(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  framing *f = cls;
  if (strcasecmp(key, "Content-Length") != 0) return MHD_YES;
  if (!value || !*value || strspn(value, "0123456789") != strlen(value)) f->malformed = true;
  if (f->lengths++ == 0) f->first = value;
  else if (!value || !f->first || strcmp(value, f->first) != 0) f->differ = true;
  return MHD_YES;
}

static pq_err check_framing(pq_req *req) {
  framing f = {0};
  MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_lengths, &f);
  const char *te = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Transfer-Encoding");
  if (f.lengths && te)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "header", "Transfer-Encoding"),
                       "a request may carry Content-Length or Transfer-Encoding, not both");
  if (f.differ || f.malformed)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "header", "Content-Length"),
                       f.differ ? "the request carries Content-Length headers that differ"
                                : "Content-Length must be a plain decimal number");
  if (te && strcasecmp(te, "chunked") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "header", "Transfer-Encoding"),
                       "the only transfer coding accepted is chunked");
  return PQ_OK;
}

/* Only a caller the route will accept may send it a large body: the check
 * runs again, whole, once the body is in. */
static bool may_upload(pq_req *req, const pq_route *route) {
  pq_access *a = req->server->cfg.access;
  if (pq_access_config_of(a)->open) return true;
  pq_identity caller;
  const char *why = NULL;
  return pq_access_identify(a, pq_req_header(req, "Authorization"), pq_req_header(req, "X-Api-Key"),
                            pq_req_header(req, "X-Session-Token"), &caller, &why) == PQ_OK &&
         pq_access_allows(&caller, route->role);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
  (void)version;
  pq_server *s = cls;
  pq_req *req = *con_cls;
  if (!req) {
    if (!(req = req_new(s, conn, url, method))) return MHD_NO;
    *con_cls = req;
    if (s->watchdog) pq__watch_headers_done(watch_of(conn)); /* its headers are all here */
    if (check_framing(req) != PQ_OK) { /* answered before the body is read, then closed */
      req->bad_framing = true;
      req->dispatched = true;
      return send_reply(req);
    }
    /* an upload route takes a larger body; which route it is shows in its method and path */
    pq_route_match m;
    req->body_limit = s->cfg.max_body;
    if (s->cfg.max_upload > s->cfg.max_body &&
        pq_router_match(s->cfg.routes, s->cfg.n_routes, req->method, req->path, &m) == PQ_OK &&
        (m.route->flags & PQ_ROUTE_UPLOAD) && may_upload(req, m.route))
      req->body_limit = s->cfg.max_upload;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > req->body_limit) {
      req->too_large = true; /* answer before reading the body, then close */
      req->dispatched = true;
      req->error = dispatch(req);
      return send_reply(req);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (req->too_large || req->bad_framing) return MHD_YES; /* answered already: the body is dropped */
    if ((int64_t)(req->raw_len + n) > req->body_limit) {
      req->too_large = true;
      free(req->raw_body);
      req->raw_body = NULL;
      req->raw_len = 0;
      return MHD_YES;
    }
    if (req->raw_len + n > req->raw_cap) {
      size_t cap = req->raw_cap ? req->raw_cap : 1024;
      while (cap < req->raw_len + n) cap *= 2;
      char *grown = realloc(req->raw_body, cap);
      if (!grown) return MHD_NO;
      req->raw_body = grown;
      req->raw_cap = cap;
    }
    memcpy(req->raw_body + req->raw_len, upload, n);
    req->raw_len += n;
    return MHD_YES;
  }
  /* libmicrohttpd may call again after the answer is queued (seen with
   * 0.9.75 when a resumed connection meets shutdown): never run a route twice */
  if (req->answered) return MHD_NO;
  pq_err result;
  if (req->parked) {
    unparked(req);
    pq_handler_fn resume = req->resume;
    req->resume = NULL;
    result = resume(req);
  } else if (!req->dispatched) {
    req->dispatched = true;
    result = dispatch(req);
  } else {
    return MHD_NO;
  }
  if (req->parked) return MHD_YES;
  if (result != PQ_OK) req->error = result;
  return send_reply(req);
}

static void record_metrics(pq_server *s, const pq_req *req) {
  size_t idx = req->match.route ? (size_t)(req->match.route - s->cfg.routes) : s->cfg.n_routes;
  route_metrics *m = &s->metrics[idx];
  int status = req->status >= 100 && req->status < 600 ? req->status : 500;
  uint64_t us = (uint64_t)(pq_mono_us() - req->started_us);
  size_t b = 0;
  while (b < N_BUCKETS && (double)us / 1e6 > latency_buckets[b]) b++;
  __atomic_fetch_add(&m->by_status[status - 100], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&m->buckets[b], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&m->sum_us, us, __ATOMIC_RELAXED);
  __atomic_fetch_add(&m->count, 1, __ATOMIC_RELAXED);
  if (req->stream_counted) __atomic_fetch_sub(&s->streams, 1, __ATOMIC_RELAXED);
}

char *pq_server_metrics_text(pq_server *s) {
  pq_buf t = {0};
  pq_buf_printf(&t, "# HELP api_requests_total HTTP requests answered, by route, method and status.\n"
          "# TYPE api_requests_total counter\n");
  for (size_t r = 0; r <= s->cfg.n_routes; r++) {
    const char *name = r < s->cfg.n_routes ? s->cfg.routes[r].name : "unmatched";
    const char *method = r < s->cfg.n_routes ? s->cfg.routes[r].method : "any";
    for (int st = 0; st < N_STATUSES; st++) {
      uint64_t n = __atomic_load_n(&s->metrics[r].by_status[st], __ATOMIC_RELAXED);
      if (n) pq_buf_printf(&t, "api_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n", name, method,
                 st + 100, (unsigned long long)n);
    }
  }
  pq_buf_printf(&t, "# HELP api_request_duration_seconds Time from a request's arrival to its answer.\n"
          "# TYPE api_request_duration_seconds histogram\n");
  for (size_t r = 0; r <= s->cfg.n_routes; r++) {
    route_metrics *m = &s->metrics[r];
    uint64_t count = __atomic_load_n(&m->count, __ATOMIC_RELAXED);
    if (!count) continue;
    const char *name = r < s->cfg.n_routes ? s->cfg.routes[r].name : "unmatched";
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= N_BUCKETS; b++) {
      cumulative += __atomic_load_n(&m->buckets[b], __ATOMIC_RELAXED);
      if (b < N_BUCKETS)
        pq_buf_printf(&t, "api_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", name,
            latency_buckets[b], (unsigned long long)cumulative);
      else
        pq_buf_printf(&t, "api_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name,
            (unsigned long long)cumulative);
    }
    pq_buf_printf(&t, "api_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
        (double)__atomic_load_n(&m->sum_us, __ATOMIC_RELAXED) / 1e6);
    pq_buf_printf(&t, "api_request_duration_seconds_count{route=\"%s\"} %llu\n", name, (unsigned long long)cumulative);
  }
  pq_buf_printf(&t, "# HELP sse_subscribers Event streams open now.\n# TYPE sse_subscribers gauge\nsse_subscribers %llu\n",
      (unsigned long long)__atomic_load_n(&s->streams, __ATOMIC_RELAXED));
  pq_buf_printf(&t, "# HELP waiting_requests Requests parked: long-polls and requests awaiting a commit.\n"
          "# TYPE waiting_requests gauge\nwaiting_requests %zu\n", pq_server_waiting(s));
  return t.data;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)cls;
  pq_req *req = *con_cls;
  if (!req) return;
  *con_cls = NULL;
  if (req->server->watchdog && why == MHD_REQUEST_TERMINATED_COMPLETED_OK)
    pq__watch_request_done(req->server->watchdog, watch_of(conn));
  /* a parked request whose client left is ended here without being resumed */
  if (req->parked) unparked(req);
  if (pq_log_enabled(PQ_LOG_INFO)) {
    double ms = (double)(pq_mono_us() - req->started_us) / 1000.0;
    pq_info("%s %s %d %.2fms id=%s%s", req->method, req->path, req->status, ms, req->request_id,
            why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
  }
  record_metrics(req->server, req);
  if (req->state_free) req->state_free(req);
  if (req->stream_slot) pq_access_stream_release(req->server->cfg.access, req->caller.limit_key);
  pq_op_release(&req->op);
  json_decref(req->body);
  json_decref(req->error_details);
  free(req->raw_body);
  if (!req->reply_static) free(req->reply);
  pq_server *s = req->server;
  pq__req_arena_free(req);
  free(req);
  pthread_mutex_lock(&s->mu);
  if (--s->active == 0 && s->stopping) pthread_cond_broadcast(&s->idle_cv);
  pthread_mutex_unlock(&s->mu);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  buf[strcspn(buf, "\n")] = '\0';
  pq_warn("http: %s", buf);
}

pq_err pq_server_start(const pq_server_config *cfg, pq_coord *coord, pq_server **out) {
  pq_server *s = calloc(1, sizeof *s);
  if (!s) return PQ_ERR_NO_MEMORY;
  s->coord = coord;
  s->cfg = *cfg;
  if (!(s->metrics = calloc(cfg->n_routes + 1, sizeof *s->metrics))) {
    free(s);
    return PQ_ERR_NO_MEMORY;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->idle_cv, NULL);
  if (cfg->header_timeout_ms > 0 &&
      !(s->watchdog = pq__watchdog_new(cfg->header_timeout_ms, (int64_t)cfg->idle_timeout_s * 1000))) {
    pq_server_stop(s);
    return PQ_ERR_NO_MEMORY;
  }
  struct in_addr check;
  if (inet_pton(AF_INET, cfg->host, &check) != 1) {
    pq_error("http: '%s' is not an IPv4 address", cfg->host);
    pq_server_stop(s);
    return PQ_ERR_INVALID_REQUEST;
  }
  /* the front door (frontdoor.c) listens and hands libmicrohttpd each connection whose head is sound */
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                   MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET;
  s->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 0 ? cfg->threads : 2),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->connection_limit,
      /* per connection: headers and response buffers; half the default, since
       * thousands of streams may be open at once */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
      MHD_OPTION_STRICT_FOR_CLIENT, (int)1, /* RFC 9112 as written: no lenient parsing of what clients send */
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, s, MHD_OPTION_END);
  if (!s->daemon ||
      !(s->door = pq__frontdoor_start(cfg->host, cfg->port, s->daemon,
                                      cfg->header_timeout_ms > 0 ? cfg->header_timeout_ms : 3600000))) {
    if (!s->daemon) pq_error("http: cannot start the HTTP server");
    pq_server_stop(s);
    return PQ_ERR_UNAVAILABLE;
  }
  *out = s;
  return PQ_OK;
}

size_t pq_server_waiting(pq_server *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->parked;
  pthread_mutex_unlock(&s->mu);
  return n;
}

int pq_server_port(pq_server *s) { return s->door ? pq__frontdoor_port(s->door) : 0; }

void pq_server_stop(pq_server *s) {
  if (!s) return;
  pq__frontdoor_stop(s->door); /* no new connections */
  s->door = NULL;
  if (s->daemon) {
    /* Not MHD_quiesce_daemon: in 0.9.75 it races the worker threads over the
     * listen socket's epoll registration and can abort the process. New
     * requests are answered 503 (and the connection closed) instead. */
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    pq_coord_shutdown(s->coord); /* waiting requests are woken and answer */
    /* parked requests always finish (the hub and the writer answer them);
     * then give requests in flight time to send their answers */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_GRACE_MS / 1000;
    pthread_mutex_lock(&s->mu);
    while (s->parked > 0) pthread_cond_wait(&s->idle_cv, &s->mu);
    while (s->active > 0 && pthread_cond_timedwait(&s->idle_cv, &s->mu, &until) == 0) {
    }
    if (s->active > 0) pq_warn("http: closing %zu unfinished requests", s->active);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
  }
  pq__watchdog_free(s->watchdog);
  pthread_cond_destroy(&s->idle_cv);
  pthread_mutex_destroy(&s->mu);
  free(s->metrics);
  free(s);
}
