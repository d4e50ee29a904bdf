/* pqbench: load and latency measurements against a running promptq (or the
 * bare ceiling server). Blocking keep-alive HTTP/1.1 connections, one thread
 * each: the simplest client that costs the server's CPU the least.
 *
 *   pqbench submit   URL CONNS SECONDS      submits/s and latency
 *   pqbench drain    URL JOBS SUBMITTERS WORKERS   end-to-end jobs/s (URL may be a comma
 *                                           list: threads spread over those coordinators;
 *                                           PQBENCH_LEASE_BATCH=N: workers lease N jobs per call;
 *                                           PQBENCH_BATCH=N: N per submit, lease and report;
 *                                           PQBENCH_QUEUED=1: queue all first, time the workers)
 *   pqbench dispatch URL SAMPLES [WORKER_URL] submit -> waiting worker latency (the worker on
 *                                           another coordinator when WORKER_URL is given)
 *   pqbench lease    URL SAMPLES            lease latency at the queue's current depth
 *   pqbench fill     DATA_DIR JOBS          put JOBS queued jobs straight into a store
 *                                           (of PQBENCH_OWNERS owners, 100 by default;
 *                                           PQBENCH_CLASSES=K, up to 16: jobs spread over K
 *                                           requirement classes and none, and the lease's
 *                                           worker meets them all)
 *   pqbench relay    URL PID STREAMS TOKENS_PER_S SECONDS   token relay: latency and CPU
 *   pqbench idle     URL PID SUBSCRIBERS   memory per idle event-stream subscriber
 *   pqbench council  URL COUNCILS          the coordinator's own time per council step (see cmd_council)
 * PQBENCH_KEY=<key> sends it as a Bearer credential; PQBENCH_MODEL=<model> submits that model. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/ids.h"
#include "store/store.h"

/* ---- a tiny blocking HTTP/1.1 client ---- */

typedef struct {
  struct sockaddr_in addr;
  int fd;
  char buf[1 << 21]; /* a lease of 1,000 jobs is about 600 KB */
  size_t len;
} conn;

static void conn_init(conn *c, const char *url) {
  const char *hostport = strstr(url, "://") ? strstr(url, "://") + 3 : url;
  char host[64];
  int port = 80;
  sscanf(hostport, "%63[^:]:%d", host, &port);
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->addr.sin_family = AF_INET;
  c->addr.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &c->addr.sin_addr);
}

static int conn_open(conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr) != 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  c->len = 0;
  return 0;
}

/* Returns the status (or -1), with *body pointing into c->buf (NUL-terminated). */
static int http(conn *c, const char *method, const char *path, const char *body, char **out) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (c->fd < 0 && conn_open(c) != 0) return -1;
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    const char *key = getenv("PQBENCH_KEY"); /* a secured server's credential */
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "", blen);
    if (n < 0 || (size_t)n >= sizeof head) return -1;
    /* one write for the head and the body (a large body: the rest after) */
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)(body ? body : ""), blen}};
    ssize_t sent = writev(c->fd, iov, 2);
    if (sent < n) goto retry;
    for (size_t off = (size_t)sent - (size_t)n; off < blen; off += (size_t)sent)
      if ((sent = write(c->fd, body + off, blen - off)) <= 0) goto retry;
    c->len = 0;
    char *hdr_end = NULL;
    while (!(hdr_end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
      ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
      if (r <= 0) goto retry;
      c->len += (size_t)r;
    }
    int status = atoi(c->buf + 9);
    size_t clen = 0;
    for (char *p = c->buf; p < hdr_end; p = strstr(p, "\r\n") + 2)
      if (strncasecmp(p, "Content-Length:", 15) == 0) clen = strtoul(p + 15, NULL, 10);
    size_t need = (size_t)(hdr_end + 4 - c->buf) + clen;
    if (need >= sizeof c->buf) {
      fprintf(stderr, "pqbench: a %zu-byte answer does not fit\n", need);
      return -1;
    }
    while (c->len < need) {
      ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
      if (r <= 0) goto retry;
      c->len += (size_t)r;
    }
    c->buf[need] = '\0';
    if (out) *out = hdr_end + 4;
    return status;
  retry:
    close(c->fd);
    c->fd = -1;
  }
  return -1;
}

/* ---- statistics ---- */

typedef struct {
  int64_t *us;
  size_t n, cap;
} samples;

static void add(samples *s, int64_t us) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 1024;
    s->us = realloc(s->us, s->cap * sizeof *s->us);
  }
  s->us[s->n++] = us;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(samples *s, double p) {
  if (!s->n) return 0;
  qsort(s->us, s->n, sizeof *s->us, cmp64);
  size_t i = (size_t)(p / 100.0 * (double)(s->n - 1));
  return (double)s->us[i] / 1000.0;
}

static void merge(samples *into, samples *from) {
  for (size_t i = 0; i < from->n; i++) add(into, from->us[i]);
  free(from->us);
}

/* ---- submit: CONNS connections submitting for SECONDS ---- */

static const char *g_url;
static atomic_int g_stop;
static atomic_long g_count, g_errors;

static const char *job_body = "{\"model\":\"echo\",\"prompt\":\"benchmark prompt of a few words\"}";
/* PQBENCH_MODEL: submits name that model instead (a priced one measures the ledger's holds) */
static char job_body_buf[256];
static void pick_model(void) {
  const char *model = getenv("PQBENCH_MODEL");
  if (!model) return;
  snprintf(job_body_buf, sizeof job_body_buf,
           "{\"model\":\"%s\",\"prompt\":\"benchmark prompt of a few words\",\"params\":{\"max_tokens\":64}}", model);
  job_body = job_body_buf;
}

typedef struct {
  pthread_t t;
  samples lat;
} submitter;

static void *submit_main(void *arg) {
  submitter *s = arg;
  conn *c = malloc(sizeof *c);
  conn_init(c, g_url);
  while (!atomic_load(&g_stop)) {
    int64_t t0 = pq_mono_us();
    int st = http(c, "POST", "/v1/jobs", job_body, NULL);
    if (st == 202) {
      add(&s->lat, pq_mono_us() - t0);
      atomic_fetch_add(&g_count, 1);
    } else {
      atomic_fetch_add(&g_errors, 1);
    }
  }
  if (c->fd >= 0) close(c->fd);
  free(c);
  return NULL;
}

static int cmd_submit(int conns, double seconds) {
  submitter *s = calloc((size_t)conns, sizeof *s);
  for (int i = 0; i < conns; i++) pthread_create(&s[i].t, NULL, submit_main, &s[i]);
  int64_t t0 = pq_mono_us();
  usleep((useconds_t)(seconds * 1e6));
  atomic_store(&g_stop, 1);
  samples all = {0};
  for (int i = 0; i < conns; i++) {
    pthread_join(s[i].t, NULL);
    merge(&all, &s[i].lat);
  }
  double el = (double)(pq_mono_us() - t0) / 1e6;
  printf("submit: %d connections, %.1f s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %ld\n",
         conns, el, (double)atomic_load(&g_count) / el, pct(&all, 50), pct(&all, 99),
         atomic_load(&g_errors));
  free(all.us);
  free(s);
  return 0;
}

/* ---- drain: submitters and workers at once ---- */

static atomic_long g_to_submit, g_completed;
static long g_total;

/* Thread n talks to the (n mod count)-th coordinator of the comma list g_url. */
static void conn_init_nth(conn *c, intptr_t n) {
  int count = 1;
  for (const char *p = g_url; *p; p++) count += *p == ',';
  const char *url = g_url;
  for (intptr_t i = n % count; i > 0; i--) url = strchr(url, ',') + 1;
  conn_init(c, url);
}

/* PQBENCH_BATCH=N: submitters send N jobs per POST /v1/jobs/batch, and workers lease N and
 * report their results in one POST /v1/workers/{id}/results (1: one job per request, as before). */
static int batch_size(void) {
  const char *v = getenv("PQBENCH_BATCH");
  return v && atoi(v) > 1 ? atoi(v) : 1;
}

static void submit_many(conn *c, int n) {
  size_t cap = (size_t)n * (strlen(job_body) + 2) + 32, len = 0;
  char *body = malloc(cap);
  len += (size_t)snprintf(body, cap, "{\"jobs\":[");
  for (int i = 0; i < n; i++) len += (size_t)snprintf(body + len, cap - len, "%s%s", i ? "," : "", job_body);
  snprintf(body + len, cap - len, "]}");
  char *reply;
  if (http(c, "POST", "/v1/jobs/batch", body, &reply) != 200) atomic_fetch_add(&g_errors, n);
  free(body);
}

static void *drain_submitter(void *arg) {
  conn *c = malloc(sizeof *c);
  conn_init_nth(c, (intptr_t)arg);
  int batch = batch_size();
  if (batch > 1) {
    long left;
    while ((left = atomic_fetch_sub(&g_to_submit, batch)) > 0) submit_many(c, left < batch ? (int)left : batch);
  } else {
    while (atomic_fetch_sub(&g_to_submit, 1) > 0)
      if (http(c, "POST", "/v1/jobs", job_body, NULL) != 202) atomic_fetch_add(&g_errors, 1);
  }
  if (c->fd >= 0) close(c->fd);
  free(c);
  return NULL;
}

/* PQBENCH_CLASSES: how many requirement classes fill spreads jobs over (0..16). */
static long bench_classes(void) {
  long k = getenv("PQBENCH_CLASSES") ? atol(getenv("PQBENCH_CLASSES")) : 0;
  return k < 0 ? 0 : k > 16 ? 16 : k;
}

static int register_worker(conn *c, char id[64]) {
  char *body, req[1024];
  int at = snprintf(req, sizeof req, "{\"name\":\"bench\",\"models\":[\"echo\"],\"capabilities\":{\"labels\":{");
  for (long k = 0; k < bench_classes(); k++) at += snprintf(req + at, sizeof req - (size_t)at, "%s\"k%ld\":\"y\"", k ? "," : "", k);
  snprintf(req + at, sizeof req - (size_t)at, "}}}");
  if (http(c, "POST", "/v1/workers", req, &body) != 201) return -1;
  json_t *j = json_loads(body, 0, NULL);
  snprintf(id, 64, "%s", json_string_value(json_object_get(j, "id")));
  json_decref(j);
  return 0;
}

/* Leases up to max jobs (waiting up to wait_s) and completes each. */
static int lease_and_complete(conn *c, const char *wid, int max, int wait_s, samples *lease_lat) {
  char path[160], req[256], *body;
  snprintf(path, sizeof path, "/v1/workers/%s/lease", wid);
  snprintf(req, sizeof req, "{\"max_jobs\":%d,\"wait_s\":%d}", max, wait_s);
  int64_t t0 = pq_mono_us();
  if (http(c, "POST", path, req, &body) != 200) return -1;
  if (lease_lat) add(lease_lat, pq_mono_us() - t0);
  json_t *resp = json_loads(body, 0, NULL);
  size_t i, done = 0;
  json_t *job;
  if (max > 1 && batch_size() > 1) { /* every result in one request */
    json_t *results = json_array();
    json_array_foreach(json_object_get(resp, "jobs"), i, job)
      json_array_append_new(results, json_pack("{s:O,s:O,s:s,s:{s:i,s:i}}", "job", json_object_get(job, "id"), "lease",
                                               json_object_get(json_object_get(job, "lease"), "token"), "output", "ok",
                                               "usage", "prompt_tokens", 5, "completion_tokens", 1));
    size_t n = json_array_size(results);
    if (n) {
      char rpath[160];
      snprintf(rpath, sizeof rpath, "/v1/workers/%s/results", wid);
      json_t *req_body = json_pack("{s:o}", "results", results);
      char *text = json_dumps(req_body, JSON_COMPACT), *reply;
      json_decref(req_body);
      if (http(c, "POST", rpath, text, &reply) == 200) done = n;
      else atomic_fetch_add(&g_errors, (long)n);
      free(text);
    } else {
      json_decref(results);
    }
    json_decref(resp);
    return (int)done;
  }
  json_array_foreach(json_object_get(resp, "jobs"), i, job) {
    char cpath[160], creq[512];
    snprintf(cpath, sizeof cpath, "/v1/jobs/%s/complete", json_string_value(json_object_get(job, "id")));
    snprintf(creq, sizeof creq,
             "{\"lease\":\"%s\",\"output\":\"ok\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}",
             json_string_value(json_object_get(json_object_get(job, "lease"), "token")));
    if (http(c, "POST", cpath, creq, NULL) == 200) done++;
    else atomic_fetch_add(&g_errors, 1);
  }
  json_decref(resp);
  return (int)done;
}

static void *drain_worker(void *arg) {
  conn *c = malloc(sizeof *c);
  conn_init_nth(c, (intptr_t)arg);
  char wid[64];
  const char *batch = getenv("PQBENCH_LEASE_BATCH"); /* jobs per lease call; 1 by default */
  int max_jobs = batch && atoi(batch) > 0 ? atoi(batch) : batch_size();
  if (register_worker(c, wid) == 0)
    while (atomic_load(&g_completed) < g_total) {
      int n = lease_and_complete(c, wid, max_jobs, 1, NULL);
      if (n > 0) atomic_fetch_add(&g_completed, n);
      if (n < 0) { /* a refused lease: the run is void, not endless */
        atomic_fetch_add(&g_errors, 1);
        atomic_store(&g_completed, g_total);
      }
    }
  if (c->fd >= 0) close(c->fd);
  free(c);
  return NULL;
}

/* PQBENCH_QUEUED=1: the submitters queue every job first (untimed), then only the workers'
 * drain is timed, as the peers' benchmark drains a queue filled beforehand. */
static int cmd_drain(long jobs, int submitters, int workers) {
  g_total = jobs;
  atomic_store(&g_to_submit, jobs);
  bool queued_first = getenv("PQBENCH_QUEUED") && atoi(getenv("PQBENCH_QUEUED")) > 0;
  pthread_t *t = calloc((size_t)(submitters + workers), sizeof *t);
  if (queued_first) {
    for (int i = 0; i < submitters; i++) pthread_create(&t[workers + i], NULL, drain_submitter, (void *)(intptr_t)i);
    for (int i = 0; i < submitters; i++) pthread_join(t[workers + i], NULL);
  }
  int64_t t0 = pq_mono_us();
  for (int i = 0; i < workers; i++) pthread_create(&t[i], NULL, drain_worker, (void *)(intptr_t)i);
  if (!queued_first)
    for (int i = 0; i < submitters; i++)
      pthread_create(&t[workers + i], NULL, drain_submitter, (void *)(intptr_t)i);
  for (int i = 0; i < (queued_first ? workers : submitters + workers); i++) pthread_join(t[i], NULL);
  double el = (double)(pq_mono_us() - t0) / 1e6;
  if (queued_first)
    printf("drain: %ld queued jobs leased and completed over HTTP by %d workers (%d per lease and report) in "
           "%.2f s: %.0f jobs/s, errors %ld\n",
           jobs, workers, batch_size(), el, (double)jobs / el, atomic_load(&g_errors));
  else
    printf("drain: %ld jobs submitted, leased and completed over HTTP by %d submitters and %d "
           "workers in %.2f s: %.0f jobs/s (%.0f HTTP req/s), errors %ld\n",
           jobs, submitters, workers, el, (double)jobs / el, 3.0 * (double)jobs / el,
           atomic_load(&g_errors));
  free(t);
  return 0;
}

/* ---- dispatch: submit -> an idle, waiting worker holds the job ---- */

typedef struct {
  char wid[64];
  atomic_long got_at; /* mono us when the lease answer arrived */
  atomic_int parked_round;
} dispatch_state;

static dispatch_state g_ds;
static const char *g_worker_url; /* NULL: the worker on the same coordinator */

static void *dispatch_worker(void *arg) {
  (void)arg;
  conn *c = malloc(sizeof *c);
  conn_init(c, g_worker_url ? g_worker_url : g_url);
  char path[160], *body;
  snprintf(path, sizeof path, "/v1/workers/%s/lease", g_ds.wid);
  while (!atomic_load(&g_stop)) {
    int st = http(c, "POST", path, "{\"max_jobs\":1,\"wait_s\":5}", &body);
    int64_t now = pq_mono_us();
    if (st != 200) break;
    json_t *resp = json_loads(body, 0, NULL);
    json_t *job = json_array_get(json_object_get(resp, "jobs"), 0);
    if (job) {
      atomic_store(&g_ds.got_at, now);
      char cpath[160], creq[256];
      snprintf(cpath, sizeof cpath, "/v1/jobs/%s/complete", json_string_value(json_object_get(job, "id")));
      snprintf(creq, sizeof creq, "{\"lease\":\"%s\",\"output\":\"ok\"}",
               json_string_value(json_object_get(json_object_get(job, "lease"), "token")));
      http(c, "POST", cpath, creq, NULL);
    }
    json_decref(resp);
  }
  if (c->fd >= 0) close(c->fd);
  free(c);
  return NULL;
}

static int cmd_dispatch(int n) {
  conn c;
  conn_init(&c, g_url);
  if (register_worker(&c, g_ds.wid) != 0) return 1;
  pthread_t t;
  pthread_create(&t, NULL, dispatch_worker, NULL);
  samples lat = {0};
  for (int i = 0; i < n; i++) {
    usleep(3000); /* let the worker finish the last job and park its next lease */
    atomic_store(&g_ds.got_at, 0);
    int64_t t0 = pq_mono_us();
    if (http(&c, "POST", "/v1/jobs", job_body, NULL) != 202) return 1;
    while (!atomic_load(&g_ds.got_at)) sched_yield();
    add(&lat, atomic_load(&g_ds.got_at) - t0);
  }
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  printf("dispatch: %d samples, submit sent -> waiting worker has the job: p50 %.3f ms, p90 %.3f "
         "ms, p99 %.3f ms, max %.3f ms\n",
         n, pct(&lat, 50), pct(&lat, 90), pct(&lat, 99), pct(&lat, 100));
  close(c.fd);
  return 0;
}

/* ---- lease: lease one + complete, against an already full queue ---- */

static int cmd_lease(int n) {
  conn c;
  conn_init(&c, g_url);
  char wid[64];
  if (register_worker(&c, wid) != 0) return 1;
  samples lat = {0};
  /* one submit per lease keeps the queue at its depth; only the lease is timed */
  for (int i = -200; i < n; i++) {
    if (http(&c, "POST", "/v1/jobs", job_body, NULL) != 202) return 1;
    if (lease_and_complete(&c, wid, 1, 0, i >= 0 ? &lat : NULL) != 1) return 1;
  }
  double sum = 0;
  for (size_t i = 0; i < lat.n; i++) sum += (double)lat.us[i];
  printf("lease: %d leases of one job: mean %.3f ms, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
         "max %.3f ms\n", n, sum / (double)lat.n / 1000.0, pct(&lat, 50), pct(&lat, 99),
         pct(&lat, 99.9), pct(&lat, 100));
  close(c.fd);
  return 0;
}

/* ---- fill: queued jobs straight into a store, for the depth test ---- */

static int cmd_fill(const char *dir, long n) {
  char path[1024], url[1100], why[300];
  snprintf(path, sizeof path, "%s/promptq.db", dir);
  snprintf(url, sizeof url, "sqlite://%s", path);
  pq_store_config cfg = {.sync_full = false};
  pq_store *s;
  if (pq_store_open(url, &cfg, &s, why, sizeof why) != PQ_OK) {
    fprintf(stderr, "fill: %s\n", why);
    return 1;
  }
  const pq_store_ops *ops = s->ops;
  if (ops->migrate(s, NULL) != PQ_OK) return 1;
  pq_conn *w = ops->acquire(s, PQ_CONN_WRITE);
  int64_t now = pq_now_ms();
  /* spread over owners (PQBENCH_OWNERS, 100 by default): the index's turns are part of what a lease costs */
  long owners = getenv("PQBENCH_OWNERS") ? atol(getenv("PQBENCH_OWNERS")) : 100;
  if (owners < 1) owners = 1;
  ops->begin(w, false);
  for (long i = 0; i < n; i++) {
    char owner[32];
    snprintf(owner, sizeof owner, "tenant-%ld", i % owners);
    char requirements[64];
    long k = bench_classes() ? i % (bench_classes() + 1) : 0; /* class k, or none at 0 */
    snprintf(requirements, sizeof requirements, "{\"labels\":{\"k%ld\":\"y\"}}", k - 1);
    pq_job j = {.model = "echo", .input = "{\"prompt\":\"depth\"}", .state = PQ_JOB_QUEUED,
                .priority = (int)(i % 3), .max_attempts = 3, .lease_timeout_ms = 60000,
                .created_at = now, .updated_at = now, .owner = owner, .requirements = k ? requirements : NULL};
    pq_uuid7(now, j.id);
    if (ops->job_insert(w, &j) != PQ_OK) return 1;
  }
  ops->commit(w);
  ops->release(s, w);
  pq_store_close(s);
  printf("fill: %ld queued jobs in %s\n", n, path);
  return 0;
}

/* ---- relay: workers post tokens, subscribers receive them ---- */

static double proc_cpu_s(int pid) { /* utime + stime of a process */
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  long kb = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

typedef struct {
  pthread_t t;
  char job[64], token[80];
  samples lat;
  long received;
} relay_stream;

static int g_tokens_per_s;
static double g_seconds;
static atomic_long g_relayed;

static void *relay_subscriber(void *arg) {
  relay_stream *r = arg;
  conn *c = malloc(sizeof *c);
  conn_init(c, g_url);
  if (conn_open(c) != 0) return NULL;
  char req[256];
  int n = snprintf(req, sizeof req, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: b\r\n\r\n", r->job);
  if (write(c->fd, req, (size_t)n) != n) return NULL;
  char buf[16384], line[512];
  size_t ll = 0;
  ssize_t got;
  while (!atomic_load(&g_stop) && (got = read(c->fd, buf, sizeof buf)) > 0) {
    int64_t now = pq_mono_us();
    for (ssize_t i = 0; i < got; i++) {
      if (buf[i] != '\n') {
        if (ll < sizeof line - 1) line[ll++] = buf[i];
        continue;
      }
      line[ll] = '\0';
      ll = 0;
      const char *p = strstr(line, "\"content\":\"");
      if (strncmp(line, "data: ", 6) == 0 && p) { /* each token carries its post time */
        add(&r->lat, now - atoll(p + 11));
        r->received++;
        atomic_fetch_add(&g_relayed, 1);
      }
    }
  }
  close(c->fd);
  free(c);
  return NULL;
}

static void *relay_feeder(void *arg) {
  relay_stream *r = arg;
  conn *c = malloc(sizeof *c);
  conn_init(c, g_url);
  char path[128], body[1024];
  snprintf(path, sizeof path, "/v1/jobs/%s/chunks", r->job);
  /* like the worker agent: what was generated in the last 50 ms, in one post */
  double per_batch = g_tokens_per_s * 0.05, owed = 0;
  /* workers are not in step with each other: start somewhere in the period */
  int64_t next = pq_mono_us() + (int64_t)(((uintptr_t)r * 2654435761u) % 50000);
  usleep((useconds_t)(next - pq_mono_us() > 0 ? next - pq_mono_us() : 0));
  while (!atomic_load(&g_stop)) {
    owed += per_batch;
    int k = (int)owed;
    owed -= k;
    if (k > 0) {
      int64_t t = pq_mono_us();
      int len = snprintf(body, sizeof body, "{\"lease\":\"%s\",\"chunks\":[", r->token);
      for (int i = 0; i < k; i++)
        len += snprintf(body + len, sizeof body - (size_t)len, "%s\"%lld\"", i ? "," : "", (long long)t);
      snprintf(body + len, sizeof body - (size_t)len, "]}");
      if (http(c, "POST", path, body, NULL) != 200) atomic_fetch_add(&g_errors, 1);
    }
    next += 50000;
    int64_t sleep_us = next - pq_mono_us();
    if (sleep_us > 0) usleep((useconds_t)sleep_us);
  }
  if (c->fd >= 0) close(c->fd);
  free(c);
  return NULL;
}

static int cmd_relay(int pid, int streams, int tokens_per_s, double seconds) {
  g_tokens_per_s = tokens_per_s;
  g_seconds = seconds;
  conn c;
  conn_init(&c, g_url);
  char wid[64], *body;
  if (register_worker(&c, wid) != 0) return 1;
  relay_stream *r = calloc((size_t)streams, sizeof *r);
  for (int i = 0; i < streams; i++) {
    if (http(&c, "POST", "/v1/jobs", job_body, &body) != 202) return 1;
    json_t *j = json_loads(body, 0, NULL);
    snprintf(r[i].job, sizeof r[i].job, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
  }
  char lpath[160];
  snprintf(lpath, sizeof lpath, "/v1/workers/%s/lease", wid);
  for (int i = 0; i < streams;) { /* lease them all; match tokens by job id */
    if (http(&c, "POST", lpath, "{\"max_jobs\":64}", &body) != 200) return 1;
    json_t *resp = json_loads(body, 0, NULL);
    size_t k;
    json_t *job;
    json_array_foreach(json_object_get(resp, "jobs"), k, job) {
      const char *id = json_string_value(json_object_get(job, "id"));
      for (int s = 0; s < streams; s++)
        if (strcmp(r[s].job, id) == 0)
          snprintf(r[s].token, sizeof r[s].token, "%s",
                   json_string_value(json_object_get(json_object_get(job, "lease"), "token")));
      i++;
    }
    json_decref(resp);
  }
  for (int i = 0; i < streams; i++) pthread_create(&r[i].t, NULL, relay_subscriber, &r[i]);
  usleep(500000); /* subscribers connected and parked */
  pthread_t *feeders = calloc((size_t)streams, sizeof *feeders);
  double cpu0 = proc_cpu_s(pid);
  long relayed0 = atomic_load(&g_relayed);
  for (int i = 0; i < streams; i++) pthread_create(&feeders[i], NULL, relay_feeder, &r[i]);
  usleep((useconds_t)(seconds * 1e6));
  atomic_store(&g_stop, 1);
  for (int i = 0; i < streams; i++) pthread_join(feeders[i], NULL);
  double cpu = proc_cpu_s(pid) - cpu0;
  long relayed = atomic_load(&g_relayed) - relayed0;
  /* subscribers are blocked in read: end their jobs so their streams close */
  for (int i = 0; i < streams; i++) {
    char cpath[160], creq[256];
    snprintf(cpath, sizeof cpath, "/v1/jobs/%s/complete", r[i].job);
    snprintf(creq, sizeof creq, "{\"lease\":\"%s\",\"output\":\"x\"}", r[i].token);
    http(&c, "POST", cpath, creq, NULL);
  }
  samples all = {0};
  for (int i = 0; i < streams; i++) {
    pthread_join(r[i].t, NULL);
    merge(&all, &r[i].lat);
  }
  printf("relay: %d streams x %d tokens/s for %.0f s: %ld tokens relayed (%.0f/s); post -> "
         "subscriber p50 %.2f ms, p99 %.2f ms; coordinator CPU %.1f ms per 1,000 tokens "
         "(%.0f%% of one core); errors %ld\n",
         streams, tokens_per_s, seconds, relayed, (double)relayed / seconds, pct(&all, 50),
         pct(&all, 99), cpu * 1000.0 / ((double)relayed / 1000.0), cpu / seconds * 100.0,
         atomic_load(&g_errors));
  free(all.us);
  free(r);
  free(feeders);
  close(c.fd);
  return 0;
}

/* ---- idle: memory per parked subscriber ---- */

static int cmd_idle(int pid, int n) {
  conn c;
  conn_init(&c, g_url);
  char *body;
  if (http(&c, "POST", "/v1/jobs", "{\"model\":\"nobody-serves-this\",\"prompt\":\"x\"}", &body) != 202)
    return 1;
  json_t *j = json_loads(body, 0, NULL);
  char req[256];
  int len = snprintf(req, sizeof req, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: b\r\n\r\n",
                     json_string_value(json_object_get(j, "id")));
  json_decref(j);
  long before = proc_rss_kb(pid);
  int *fds = calloc((size_t)n, sizeof *fds);
  char buf[4096];
  for (int i = 0; i < n; i++) {
    conn s;
    conn_init(&s, g_url);
    if (conn_open(&s) != 0 || write(s.fd, req, (size_t)len) != len) return 1;
    fds[i] = s.fd;
  }
  for (int i = 0; i < n; i++) /* each has its first event: it is parked */
    if (read(fds[i], buf, sizeof buf) <= 0) return 1;
  usleep(200000);
  long after = proc_rss_kb(pid);
  printf("idle: %d parked event-stream subscribers: coordinator RSS %ld -> %ld KiB, %.1f KiB each\n",
         n, before, after, (double)(after - before) / n);
  for (int i = 0; i < n; i++) close(fds[i]);
  free(fds);
  return 0;
}

/* ---- council: the coordinator's own time per council step ----
 * Against a coordinator started with --council-members a,b,c
 * --council-synthesizers s: this process is the worker and answers at
 * once, so what is left is the coordinator's time. Each council runs 3
 * rounds (early termination off) and a synthesis. The complete that ends a
 * round carries the step (agreement, the next round's three jobs) in its
 * transaction; it is compared with an ordinary job's complete. */

static int complete_timed(conn *c, json_t *job, samples *lat) {
  char cpath[160], creq[512];
  snprintf(cpath, sizeof cpath, "/v1/jobs/%s/complete", json_string_value(json_object_get(job, "id")));
  snprintf(creq, sizeof creq,
           "{\"lease\":\"%s\",\"output\":\"the same answer from every member\","
           "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}",
           json_string_value(json_object_get(json_object_get(job, "lease"), "token")));
  int64_t t0 = pq_mono_us();
  int status = http(c, "POST", cpath, creq, NULL);
  add(lat, pq_mono_us() - t0);
  return status == 200 ? 0 : -1;
}

static json_t *lease_some(conn *c, const char *wid) {
  char path[160], *body;
  snprintf(path, sizeof path, "/v1/workers/%s/lease", wid);
  if (http(c, "POST", path, "{\"max_jobs\":8,\"wait_s\":5}", &body) != 200) return NULL;
  return json_loads(body, 0, NULL);
}

static int cmd_council(int n) {
  conn *c = malloc(sizeof *c);
  conn_init(c, g_url);
  char *body, wid[64];
  if (http(c, "POST", "/v1/workers", "{\"name\":\"bench\",\"models\":[\"a\",\"b\",\"c\",\"s\",\"echo\"]}",
           &body) != 201)
    return 1;
  json_t *w = json_loads(body, 0, NULL);
  snprintf(wid, sizeof wid, "%s", json_string_value(json_object_get(w, "id")));
  json_decref(w);
  samples plain = {0}, member = {0}, step = {0}, last = {0}, wall = {0};
  for (int i = 0; i < n; i++) { /* the baseline: an ordinary job's complete */
    if (http(c, "POST", "/v1/jobs", job_body, NULL) != 202) return 1;
    json_t *resp = lease_some(c, wid);
    json_t *job = json_array_get(json_object_get(resp, "jobs"), 0);
    if (!job || complete_timed(c, job, &plain)) return 1;
    json_decref(resp);
  }
  const char *req = "{\"query\":\"a benchmark question\",\"synthesisStrategy\":{\"config\":{\"maxRounds\":3,"
                    "\"earlyTerminationEnabled\":false,\"agreementThreshold\":0.5}}}";
  for (int i = 0; i < n; i++) {
    int64_t t0 = pq_mono_us();
    if (http(c, "POST", "/api/v1/requests", req, NULL) != 202) return 1;
    for (bool done = false; !done;) {
      json_t *resp = lease_some(c, wid);
      json_t *jobs = json_object_get(resp, "jobs");
      size_t k, count = json_array_size(jobs);
      json_t *job;
      if (!resp) return 1;
      json_array_foreach(jobs, k, job) {
        bool synthesis = strcmp(json_string_value(json_object_get(job, "model")), "s") == 0;
        if (complete_timed(c, job, synthesis ? &last : k + 1 == count ? &step : &member)) return 1;
        done |= synthesis;
      }
      json_decref(resp);
    }
    add(&wall, pq_mono_us() - t0);
  }
  printf("council: %d councils of 3 members x 3 rounds + a synthesis, members answering at once\n", n);
  printf("  an ordinary job's complete        p50 %.2f ms  p99 %.2f ms\n", pct(&plain, 50), pct(&plain, 99));
  printf("  a member's complete (recorded)    p50 %.2f ms  p99 %.2f ms\n", pct(&member, 50), pct(&member, 99));
  printf("  the complete that ends a round    p50 %.2f ms  p99 %.2f ms  (agreement + next round)\n", pct(&step, 50),
         pct(&step, 99));
  printf("  the synthesis's complete          p50 %.2f ms  p99 %.2f ms  (the council ends)\n", pct(&last, 50),
         pct(&last, 99));
  printf("  a whole council, wall             p50 %.2f ms  p99 %.2f ms  (%.2f ms per step of 4)\n", pct(&wall, 50),
         pct(&wall, 99), pct(&wall, 50) / 4);
  return 0;
}

int main(int argc, char **argv) {
  pq_ids_init();
  pick_model();
  if (argc >= 5 && strcmp(argv[1], "submit") == 0) return g_url = argv[2], cmd_submit(atoi(argv[3]), atof(argv[4]));
  if (argc >= 6 && strcmp(argv[1], "drain") == 0)
    return g_url = argv[2], cmd_drain(atol(argv[3]), atoi(argv[4]), atoi(argv[5]));
  if (argc >= 4 && strcmp(argv[1], "dispatch") == 0)
    return g_url = argv[2], g_worker_url = argc >= 5 ? argv[4] : NULL, cmd_dispatch(atoi(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "lease") == 0) return g_url = argv[2], cmd_lease(atoi(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "fill") == 0) return cmd_fill(argv[2], atol(argv[3]));
  if (argc >= 7 && strcmp(argv[1], "relay") == 0)
    return g_url = argv[2], cmd_relay(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]));
  if (argc >= 4 && strcmp(argv[1], "council") == 0) return g_url = argv[2], cmd_council(atoi(argv[3]));
  if (argc >= 5 && strcmp(argv[1], "idle") == 0) return g_url = argv[2], cmd_idle(atoi(argv[3]), atoi(argv[4]));
  fprintf(stderr, "usage: see the comment at the top of bench/pqbench.c\n");
  return 2;
}
