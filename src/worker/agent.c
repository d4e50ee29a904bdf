#include "worker/agent.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"
#include "base/clock.h"
#include "base/ids.h"
#include "model/receipt.h"
#include "base/log.h"
#include "worker/backend.h"

typedef struct agent agent;

typedef struct {
  agent *a;
  pthread_t thread;
  char job_id[PQ_UUID_LEN + 1]; /* guarded by a->mu */
  volatile sig_atomic_t cancel;
} slot;

struct agent {
  const pq_agent_config *cfg;
  const pq_backend_ops *backend;
  void *backend_ctx;
  volatile sig_atomic_t *stop;
  pthread_mutex_t mu;
  char worker_id[PQ_UUID_LEN + 1];
  int64_t heartbeat_ms;
  json_t *models;
  slot *slots;
  /* Results go out together: a slot that finishes adds its result here and,
   * when no other slot is posting, posts every waiting result in one request
   * (group reporting, as the writer commits), then goes on with its next
   * job. Guarded by mu; the jobs here and in flight are still claimed in
   * heartbeats until the coordinator has taken them. */
  json_t *outbox, *posting;
  bool reporting;
  /* Jobs leased ahead (--prefetch), not started yet: the next free slot takes
   * the oldest before it leases. Guarded by mu; claimed in heartbeats. A stop
   * runs them (the worker holds them) and leases no more. */
  json_t *ready;
  int slots_running; /* guarded by mu */
  bool signs;
  pq_receipt_key key;
  char public_key[64];
};

static void sleep_ms(agent *a, int64_t ms) {
  /* in short steps, so a stop is noticed quickly */
  while (ms > 0 && !*a->stop) {
    int64_t step = ms < 50 ? ms : 50;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = step * 1000000};
    nanosleep(&ts, NULL);
    ms -= step;
  }
}

static int64_t next_backoff(int64_t d) { return d < 5000 ? d * 2 : 5000; }

/* What jobs' requirements are matched against: --context-length and --labels K=V,... (the
 * coordinator checks them and refuses a registration that is not well formed). */
static void add_routing(const pq_agent_config *cfg, json_t *caps) {
  if (cfg->context_length > 0) json_object_set_new(caps, "context_length", json_integer(cfg->context_length));
  if (!cfg->labels[0]) return;
  json_t *labels = json_object();
  char copy[sizeof cfg->labels];
  snprintf(copy, sizeof copy, "%s", cfg->labels);
  for (char *save = NULL, *item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
    char *eq = strchr(item, '=');
    if (eq) *eq = '\0';
    json_object_set_new(labels, item, json_string(eq ? eq + 1 : ""));
  }
  json_object_set_new(caps, "labels", labels);
}

/* Registers (again, when stale_id names the id that stopped working). */
static int ensure_registered(agent *a, pq_client *c, const char *stale_id) {
  pthread_mutex_lock(&a->mu);
  if (stale_id && strcmp(a->worker_id, stale_id) != 0) { /* another thread did it */
    pthread_mutex_unlock(&a->mu);
    return 0;
  }
  json_t *params = json_array();
  for (const char *const *p = a->backend->params; p && *p; p++) json_array_append_new(params, json_string(*p));
  json_t *body = json_pack("{s:s,s:O,s:{s:i,s:s,s:o}}", "name", a->cfg->name, "models", a->models,
                           "capabilities", "max_concurrency", a->cfg->concurrency, "backend",
                           a->backend->name, "params", params);
  if (a->signs) json_object_set_new(body, "public_key", json_string(a->public_key));
  add_routing(a->cfg, json_object_get(body, "capabilities"));
  int64_t delay = 100;
  int result = -1;
  while (!*a->stop) {
    long status;
    json_t *resp = NULL;
    pq_err e = pq_client_call(c, "POST", "/v1/workers", body, 10000,
                              &status, &resp);
    if (e == PQ_OK && status == 201) {
      snprintf(a->worker_id, sizeof a->worker_id, "%s",
               json_string_value(json_object_get(resp, "id")) ?: "");
      json_int_t beat = json_integer_value(json_object_get(resp, "heartbeat_interval_ms"));
      a->heartbeat_ms = beat > 0 ? beat : 10000;
      pq_info("worker: registered as %s (%s)", a->worker_id, a->cfg->name);
      json_decref(resp);
      result = 0;
      break;
    }
    if (e == PQ_OK && status >= 400 && status < 500) {
      pq_error("worker: registration refused (%ld): %s", status,
               pq_client_error_text(resp, "no reason given"));
      json_decref(resp);
      break;
    }
    pq_warn("worker: cannot reach %s, retrying in %lld ms", a->cfg->coordinator, (long long)delay);
    json_decref(resp);
    pthread_mutex_unlock(&a->mu);
    sleep_ms(a, delay);
    pthread_mutex_lock(&a->mu);
    delay = next_backoff(delay);
  }
  json_decref(body);
  pthread_mutex_unlock(&a->mu);
  return result;
}

static void current_id(agent *a, char out[PQ_UUID_LEN + 1]) {
  pthread_mutex_lock(&a->mu);
  memcpy(out, a->worker_id, PQ_UUID_LEN + 1);
  pthread_mutex_unlock(&a->mu);
}

/* How long reporting one result may take at most, through rate limits,
 * coordinator restarts and outages, before the agent stops claiming the job
 * (the coordinator then gives it to another worker). */
#define REPORT_PATIENCE_MS (15 * 60 * 1000)

static void pause_ms(int64_t ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Posts body to path until the coordinator answers it for good: a 429 or 503
 * is waited out as its Retry-After says, a 5xx or an unreachable coordinator
 * with backoff. Returns true with the answer's status and body (*resp is the
 * caller's), or false after REPORT_PATIENCE_MS (logged, naming what). */
static bool post_until_answered(pq_client *c, const char *path, json_t *body, const char *what, long *status,
                                json_t **resp) {
  int64_t delay = 100, started = pq_mono_ms();
  for (int tries = 1;; tries++) {
    *resp = NULL;
    pq_err e = pq_client_call(c, "POST", path, body, 30000, status, resp);
    if (e == PQ_OK && *status < 500 && *status != 429 && *status != 408) return true;
    json_decref(*resp);
    *resp = NULL;
    int64_t wait = pq_client_retry_after(c) > 0 ? pq_client_retry_after(c) * 1000 : delay;
    if (tries == 1 || tries % 10 == 0)
      pq_warn("worker: %s not taken yet (%s), trying again in %lld ms", what,
              e != PQ_OK ? "coordinator unreachable" : *status == 429 ? "rate limited" : "server busy", (long long)wait);
    if (pq_mono_ms() - started + wait > REPORT_PATIENCE_MS) {
      pq_error("worker: gave up reporting %s after %d minutes; the jobs go to other workers", what,
               REPORT_PATIENCE_MS / 60000);
      return false;
    }
    pause_ms(wait);
    delay = next_backoff(delay);
  }
}

/* Posts a result until the coordinator takes it; only a refusal of the
 * result itself (another 4xx: the lease moved on) ends it otherwise. Even
 * when stopping: a result is never dropped while it may count. */
static void report(pq_client *c, const char *path, json_t *body) {
  long status;
  json_t *resp;
  if (!post_until_answered(c, path, body, path, &status, &resp)) return;
  if (status >= 400) pq_warn("worker: %s refused (%ld): %s", path, status, pq_client_error_text(resp, "no reason given"));
  json_decref(resp);
}

/* Posts results together (POST /v1/workers/{id}/results) as report() does
 * for one; each result's own refusal is logged. A coordinator that refuses
 * the request itself (one without the route, or not knowing this worker)
 * gets them one by one. */
static void report_many(agent *a, pq_client *c, json_t *batch) {
  char id[PQ_UUID_LEN + 1], path[128], what[64];
  current_id(a, id);
  snprintf(path, sizeof path, "/v1/workers/%s/results", id);
  snprintf(what, sizeof what, "%zu results", json_array_size(batch));
  json_t *results = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(batch, i, r) json_array_append(results, json_object_get(r, "entry"));
  json_t *body = json_pack("{s:o}", "results", results), *resp;
  long status;
  if (post_until_answered(c, path, body, what, &status, &resp)) {
    if (status == 200) {
      json_array_foreach(json_object_get(resp, "results"), i, r)
        if (json_integer_value(json_object_get(r, "status")) >= 400)
          pq_warn("worker: the result of job %s was refused (%lld): %s", json_string_value(json_object_get(r, "job")),
                  (long long)json_integer_value(json_object_get(r, "status")),
                  json_string_value(json_object_get(json_object_get(r, "error"), "message")));
    } else {
      json_array_foreach(batch, i, r) report(c, json_string_value(json_object_get(r, "path")), json_object_get(r, "body"));
    }
    json_decref(resp);
  }
  json_decref(body);
}

#define MAX_RESULTS_PER_POST 1000 /* POST /v1/workers/{id}/results takes this many at most */
#define MAX_RESULTS_BYTES (512 * 1024) /* and half the coordinator's default body limit (--max-body) */

/* Adds a result ({entry, path, body}; taken) to the outbox, and posts it
 * with every other waiting one unless another slot is posting already. */
static void deliver(agent *a, pq_client *c, json_t *result) {
  pthread_mutex_lock(&a->mu);
  json_array_append_new(a->outbox, result);
  if (a->reporting) {
    pthread_mutex_unlock(&a->mu);
    return;
  }
  a->reporting = true;
  while (json_array_size(a->outbox)) {
    /* at most what one request may carry, in number and in bytes (more is refused whole, and
     * would go one by one); at least one */
    json_t *all = a->outbox, *batch = json_array();
    a->outbox = json_array();
    size_t bytes = 0;
    for (size_t i = 0; i < json_array_size(all); i++) {
      json_t *r = json_array_get(all, i);
      size_t size = json_dumpb(json_object_get(r, "entry"), NULL, 0, JSON_COMPACT);
      bool fits = json_array_size(batch) == 0 ||
                  (json_array_size(batch) < MAX_RESULTS_PER_POST && bytes + size <= MAX_RESULTS_BYTES);
      fits = fits && json_array_size(a->outbox) == 0; /* in order: once one waits, the rest wait */
      json_array_append(fits ? batch : a->outbox, r);
      if (fits) bytes += size;
    }
    json_decref(all);
    a->posting = batch;
    pthread_mutex_unlock(&a->mu);
    report_many(a, c, batch);
    pthread_mutex_lock(&a->mu);
    a->posting = NULL;
    json_decref(batch);
  }
  a->reporting = false;
  pthread_mutex_unlock(&a->mu);
}

/* Streaming: tokens are batched and posted every STREAM_BATCH_MS. */
#define STREAM_BATCH_MS 50

typedef struct {
  slot *s;
  pq_client *c;
  const char *job_id, *token;
  json_t *pending; /* array of strings not yet posted */
  int64_t started_ms, last_post_ms;
  int64_t hold_until_ms; /* rate limited: chunks gather until then (the result carries them anyway) */
  bool posted;
} stream_ctx;

static void post_chunks(stream_ctx *st) {
  if (json_array_size(st->pending) == 0 || pq_mono_ms() < st->hold_until_ms) return;
  char path[128];
  snprintf(path, sizeof path, "/v1/jobs/%s/chunks", st->job_id);
  json_t *body = json_pack("{s:s,s:O}", "lease", st->token, "chunks", st->pending);
  long status;
  json_t *resp = NULL;
  /* progress only: a failed post is not retried, the result carries everything */
  pq_err e = body ? pq_client_call(st->c, "POST", path, body, 10000, &status, &resp) : PQ_ERR_NO_MEMORY;
  if (e == PQ_OK && status == 200 && json_is_true(json_object_get(resp, "cancel_requested"))) st->s->cancel = 1;
  json_decref(resp);
  json_decref(body);
  if (e == PQ_OK && status == 429) { /* keep them, and send them together once the limit allows */
    long after = pq_client_retry_after(st->c);
    st->hold_until_ms = pq_mono_ms() + (after > 0 ? after * 1000 : 1000);
    return;
  }
  if (e != PQ_OK || status >= 500) { /* not taken (the coordinator restarting): they go with the next post */
    st->hold_until_ms = pq_mono_ms() + STREAM_BATCH_MS;
    return;
  }
  json_array_clear(st->pending);
  st->posted = true;
  st->last_post_ms = pq_mono_ms();
}

static void on_emit(void *ctx, const char *text, size_t len, json_t *delta) {
  stream_ctx *st = ctx;
  json_array_append_new(st->pending, delta ? json_deep_copy(delta) : json_stringn(text, len));
  if (pq_mono_ms() - st->last_post_ms >= STREAM_BATCH_MS) post_chunks(st);
}

/* The slot holds job from here on (heartbeats claim it, cancels reach it).
 * The caller holds a->mu: a job leaves the lease answer or the prefetched
 * ones and becomes the slot's under one lock, so no heartbeat misses it. */
static void claim(slot *s, json_t *job) {
  const char *id = json_string_value(json_object_get(job, "id"));
  snprintf(s->job_id, sizeof s->job_id, "%s", id ? id : "");
  s->cancel = 0;
}

/* Runs a job its slot has claimed, reports it, and lets it go. */
static void run_job(agent *a, slot *s, pq_client *c, json_t *job) {
  const char *id = json_string_value(json_object_get(job, "id"));
  const char *model = json_string_value(json_object_get(job, "model"));
  const char *kind = json_string_value(json_object_get(job, "kind"));
  const char *token = json_string_value(json_object_get(json_object_get(job, "lease"), "token"));
  if (!id || !token) {
    pthread_mutex_lock(&a->mu);
    s->job_id[0] = '\0';
    pthread_mutex_unlock(&a->mu);
    return;
  }

  pq_backend_result r = {0};
  stream_ctx st = {.s = s, .c = c, .job_id = id, .token = token, .pending = json_array(),
                   .started_ms = pq_mono_ms()};
  st.last_post_ms = st.started_ms;
  a->backend->run(a->backend_ctx, kind ? kind : "chat", model ? model : "", json_object_get(job, "input"), &s->cancel,
                  on_emit, &st, &r);
  if (st.posted) post_chunks(&st); /* a streamed job's log ends complete; a quick one just completes */
  json_decref(st.pending);

  char path[128];
  json_t *body;
  if (r.failed) {
    snprintf(path, sizeof path, "/v1/jobs/%s/fail", id);
    body = json_pack("{s:s,s:{s:s,s:s},s:b}", "lease", token, "error", "code", r.error_code,
                     "message", r.error_message, "retryable", r.retryable);
  } else {
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", id);
    json_t *output = r.output_is_json && r.output ? json_loads(r.output, 0, NULL)
                                                  : json_string(r.output ? r.output : "");
    body = json_pack("{s:s,s:o,s:{s:I,s:I}}", "lease", token, "output", output ? output : json_null(),
                     "usage", "prompt_tokens", (json_int_t)r.prompt_tokens, "completion_tokens",
                     (json_int_t)r.completion_tokens);
    if (a->signs) { /* over exactly what the coordinator will store */
      char *input = json_dumps(json_object_get(job, "input"), JSON_COMPACT | JSON_SORT_KEYS);
      char *out_text = json_dumps(json_object_get(body, "output"), JSON_COMPACT | JSON_ENCODE_ANY);
      char sig[128];
      if (input && out_text) {
        pq_receipt_worker_sign(&a->key, id, input, out_text, sig, sizeof sig);
        json_object_set_new(body, "worker_signature", json_string(sig));
      }
      free(input);
      free(out_text);
    }
  }
  /* the same result as the results route takes it */
  json_t *entry = json_deep_copy(body);
  json_object_set_new(entry, "job", json_string(id));
  pq_info("worker: job %s %s%s", id, r.failed ? "failed" : "done", s->cancel ? " (cancelled)" : "");
  deliver(a, c, json_pack("{s:o,s:s,s:o}", "entry", entry, "path", path, "body", body));
  pq_backend_result_clear(&r);
  pthread_mutex_lock(&a->mu);
  s->job_id[0] = '\0';
  pthread_mutex_unlock(&a->mu);
}

static void *slot_main(void *arg) {
  slot *s = arg;
  agent *a = s->a;
  pq_client *c = pq_client_new(a->cfg->coordinator, a->cfg->api_key);
  if (!c) {
    pthread_mutex_lock(&a->mu);
    a->slots_running--;
    pthread_mutex_unlock(&a->mu);
    return NULL;
  }
  int64_t delay = 100;
  long wait_s = (long)(a->cfg->lease_wait_ms / 1000);
  /* A lease that waits asks for one job, so work that arrives while the slots wait spreads over
   * them; after a lease that found work (a backlog) a slot asks for 1 + prefetch without waiting,
   * and waits again once that finds none. */
  json_t *lease_one = json_pack("{s:i,s:i}", "max_jobs", 1, "wait_s", (int)wait_s);
  json_t *lease_many = json_pack("{s:i,s:i}", "max_jobs", 1 + a->cfg->prefetch, "wait_s", 0);
  bool backlog = false;
  for (;;) {
    pthread_mutex_lock(&a->mu);
    json_t *ahead = json_array_size(a->ready) ? json_incref(json_array_get(a->ready, 0)) : NULL;
    if (ahead) {
      json_array_remove(a->ready, 0);
      claim(s, ahead);
    }
    pthread_mutex_unlock(&a->mu);
    if (ahead) { /* leased ahead by another slot's call; run even when stopping: the worker holds it */
      run_job(a, s, c, ahead);
      json_decref(ahead);
      continue;
    }
    if (*a->stop) break;
    json_t *lease_body = backlog && a->cfg->prefetch > 0 ? lease_many : lease_one;
    char id[PQ_UUID_LEN + 1], path[128];
    current_id(a, id);
    snprintf(path, sizeof path, "/v1/workers/%s/lease", id);
    long status;
    json_t *resp = NULL;
    /* a stop ends a waiting lease at once; one that does not wait is read to its end, since the
     * jobs in its answer are leased to this worker already (dropping it would strand them) */
    pq_client_set_abort(c, lease_body == lease_one ? a->stop : NULL);
    pq_err e = pq_client_call(c, "POST", path, lease_body, wait_s * 1000 + 10000, &status, &resp);
    pq_client_set_abort(c, NULL);
    if (e != PQ_OK || status >= 500) {
      json_decref(resp);
      if (*a->stop) break;
      pq_warn("worker: lease failed (%s), retrying in %lld ms",
              e != PQ_OK ? "coordinator unreachable" : "server error", (long long)delay);
      sleep_ms(a, delay);
      delay = next_backoff(delay);
      continue;
    }
    delay = 100;
    if (status == 404) {
      json_decref(resp);
      ensure_registered(a, c, id);
      continue;
    }
    if (status == 429) { /* the worker's own limit: wait as long as the coordinator says */
      long after = pq_client_retry_after(c);
      json_decref(resp);
      sleep_ms(a, after > 0 ? after * 1000 : 1000);
      continue;
    }
    if (status != 200) {
      pq_error("worker: lease refused (%ld): %s", status, pq_client_error_text(resp, "?"));
      json_decref(resp);
      sleep_ms(a, 1000);
      continue;
    }
    json_t *jobs = json_object_get(resp, "jobs");
    backlog = json_array_size(jobs) > 0;
    pthread_mutex_lock(&a->mu); /* this slot runs the first; the rest wait for the next free slot */
    for (size_t i = 1; i < json_array_size(jobs); i++) json_array_append(a->ready, json_array_get(jobs, i));
    json_t *first = json_array_get(jobs, 0);
    if (first) claim(s, first);
    pthread_mutex_unlock(&a->mu);
    if (first) run_job(a, s, c, first);
    json_decref(resp);
  }
  json_decref(lease_one);
  json_decref(lease_many);
  pq_client_free(c);
  pthread_mutex_lock(&a->mu);
  a->slots_running--;
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static bool slots_ended(agent *a) {
  pthread_mutex_lock(&a->mu);
  bool ended = a->slots_running == 0;
  pthread_mutex_unlock(&a->mu);
  return ended;
}

/* Heartbeats until stopped and, after a stop, until the last slot has ended:
 * jobs still running or reporting stay this worker's (a silent worker is
 * marked offline and its leases end). */
static void heartbeat_loop(agent *a) {
  pq_client *c = pq_client_new(a->cfg->coordinator, a->cfg->api_key);
  if (!c) return;
  for (;;) {
    if (!*a->stop) sleep_ms(a, a->heartbeat_ms);
    if (*a->stop) /* the rest of the interval, looking whether the slots have ended */
      for (int64_t left = a->heartbeat_ms; left > 0 && !slots_ended(a); left -= 50) pause_ms(50);
    if (*a->stop && slots_ended(a)) break;
    char id[PQ_UUID_LEN + 1], path[128];
    current_id(a, id);
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", id);
    /* the jobs this worker holds: the coordinator gives back leases it no longer claims */
    json_t *held = json_array();
    pthread_mutex_lock(&a->mu);
    for (int k = 0; k < a->cfg->concurrency; k++)
      if (a->slots[k].job_id[0]) json_array_append_new(held, json_string(a->slots[k].job_id));
    size_t r_i;
    json_t *r_job;
    json_array_foreach(a->ready, r_i, r_job) json_array_append(held, json_object_get(r_job, "id"));
    json_t *waiting[] = {a->outbox, a->posting}; /* results the coordinator has not taken yet */
    for (int w = 0; w < 2; w++) {
      size_t i;
      json_t *r;
      json_array_foreach(waiting[w], i, r) json_array_append(held, json_object_get(json_object_get(r, "entry"), "job"));
    }
    pthread_mutex_unlock(&a->mu);
    json_t *body = json_pack("{s:o}", "jobs", held);
    long status;
    json_t *resp = NULL;
    pq_err sent = pq_client_call(c, "POST", path, body, 10000, &status, &resp);
    json_decref(body);
    if (sent != PQ_OK) {
      pq_warn("worker: heartbeat failed: coordinator unreachable");
    } else if (status == 404) {
      ensure_registered(a, c, id);
    } else if (status == 200) {
      size_t i;
      json_t *jid;
      pthread_mutex_lock(&a->mu);
      json_array_foreach(json_object_get(resp, "cancel"), i, jid) {
        for (int k = 0; k < a->cfg->concurrency; k++)
          if (json_string_value(jid) && strcmp(a->slots[k].job_id, json_string_value(jid)) == 0)
            a->slots[k].cancel = 1;
      }
      pthread_mutex_unlock(&a->mu);
    }
    json_decref(resp);
  }
  pq_client_free(c);
}

static json_t *parse_models(const char *list) {
  json_t *arr = json_array();
  char *copy = strdup(list), *save = NULL;
  for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    if (*tok) json_array_append_new(arr, json_string(tok));
  }
  free(copy);
  return arr;
}

int pq_agent_run(const pq_agent_config *cfg, volatile sig_atomic_t *stop) {
  agent a = {.cfg = cfg, .stop = stop};
  int result = 1;
  int started = 0;
  pthread_mutex_init(&a.mu, NULL);
  a.outbox = json_array();
  a.ready = json_array();
  if (!(a.backend = pq_backend_find(cfg->backend))) {
    pq_error("worker: unknown backend '%s' (available: echo, openai)", cfg->backend);
    goto out;
  }
  const char *key = cfg->api_key_env[0] ? getenv(cfg->api_key_env) : NULL;
  pq_backend_config bcfg = {.echo_delay_ms = cfg->echo_delay_ms,
                            .base_url = cfg->base_url,
                            .api_key = key,
                            .upstream_model = cfg->upstream_model,
                            .timeout_ms = cfg->request_timeout_ms};
  if (a.backend->create(&bcfg, &a.backend_ctx) != 0) {
    pq_error("worker: backend %s cannot start%s", a.backend->name,
             strcmp(a.backend->name, "openai") == 0 ? " (give --base-url)" : "");
    goto out;
  }
  if (cfg->signing_key[0]) {
    char why[300];
    if (pq_receipt_key_load(cfg->signing_key, &a.key, why, sizeof why) != PQ_OK) {
      pq_error("worker: %s", why);
      goto out;
    }
    pq_receipt_public_b64(a.key.public_key, a.public_key, sizeof a.public_key);
    a.signs = true;
  }
  a.models = parse_models(cfg->models);
  if (json_array_size(a.models) == 0) {
    pq_error("worker: give at least one --model");
    goto out;
  }
  pq_client *c = pq_client_new(cfg->coordinator, cfg->api_key);
  int registered = c ? ensure_registered(&a, c, NULL) : -1;
  pq_client_free(c);
  if (registered != 0) goto out;
  if (!(a.slots = calloc((size_t)cfg->concurrency, sizeof *a.slots))) goto out;
  for (; started < cfg->concurrency; started++) {
    a.slots[started].a = &a;
    pthread_mutex_lock(&a.mu);
    a.slots_running++;
    pthread_mutex_unlock(&a.mu);
    if (pthread_create(&a.slots[started].thread, NULL, slot_main, &a.slots[started]) != 0) {
      pthread_mutex_lock(&a.mu);
      a.slots_running--;
      pthread_mutex_unlock(&a.mu);
      break;
    }
  }
  pq_info("worker: serving %s with backend %s, %d slots", cfg->models, cfg->backend, started);
  heartbeat_loop(&a);
  result = 0;
out:
  for (int i = 0; i < started; i++) pthread_join(a.slots[i].thread, NULL);
  free(a.slots);
  json_decref(a.models);
  if (a.backend && a.backend_ctx) a.backend->destroy(a.backend_ctx);
  json_decref(a.outbox); /* empty: every slot delivered before it ended */
  json_decref(a.ready); /* empty: the slots ran what they had leased ahead before they ended */
  pthread_mutex_destroy(&a.mu);
  if (result == 0) pq_info("worker: stopped");
  return result;
}
