/* GET /v1/dashboard/events: the dashboard's live feed, Server-Sent Events
 * pushed by the coordinator. A "snapshot" event goes out when any job
 * changes (at most every SNAPSHOT_MIN_MS) and at least every
 * SNAPSHOT_MAX_MS: queues per model with their next job, workers and the
 * jobs they hold, the caller's latest jobs (filtered) and, for admins, the
 * totals since start; every THROUGHPUT_EVERY_MS also the hour of throughput
 * and the count of the caller's jobs (the parts that cost more to read).
 * What a caller sees is what the API would show it: admins see everything;
 * others their own jobs and workers, and the queues and throughput of models
 * some worker serves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/buf.h"
#include "base/clock.h"
#include "engine/hub.h"

#define SNAPSHOT_MIN_MS 500 /* a snapshot reads the store (a page of jobs and its count): at most twice a second */
#define SNAPSHOT_MAX_MS 1000
#define THROUGHPUT_EVERY_MS 5000
#define JOBS_SHOWN 50
#define GAP_KEY pq_coord_job_key("dashboard gap") /* never a job id: never published */

typedef struct {
  pq_buf pending;
  size_t off;
  int64_t last_ms, last_slow_ms;
  uint64_t version;  /* of the any-job key when the last snapshot was read */
  bool admin;
  char user_id[PQ_UUID_LEN + 1];
  pq_job_filter filter;
  int64_t n;
} feed;

typedef struct {
  json_t *out;
  pq_coord *coord;
  bool admin;
} queue_ctx;

static void add_queue(void *ctx, const char *model, int64_t queued, int64_t leased) {
  queue_ctx *q = ctx;
  if (!q->admin && !pq_coord_model_served(q->coord, model)) return; /* nobody can mint rows by naming models */
  json_array_append_new(q->out, json_pack("{s:s,s:I,s:I,s:b}", "model", model, "queued", (json_int_t)queued, "leased",
                                          (json_int_t)leased, "served", pq_coord_model_served(q->coord, model)));
}

/* Each queue's next job (the one a lease takes first: priority, then age,
 * past its retry backoff) and since when it waits: one indexed read per
 * model, the lease's own order. Someone else's is shown to admins only. */
#define QUEUES_LOOKED_AT 16

static void add_next_jobs(pq_req *req, const feed *f, json_t *queues) {
  size_t i;
  json_t *q;
  json_array_foreach(queues, i, q) {
    if (i >= QUEUES_LOOKED_AT || json_integer_value(json_object_get(q, "queued")) == 0) continue;
    pq_job_filter next_up = {.state = PQ_JOB_QUEUED, .model = json_string_value(json_object_get(q, "model")),
                             .limit = 1, .lease_order = true, .ready_by = pq_now_ms(), .no_total = true,
                             .summary = true};
    pq_job **next = NULL;
    size_t n = 0;
    int64_t total;
    if (pq_coord_list_jobs(req->coord, &next_up, &next, &n, &total) == PQ_OK && n == 1 &&
        (f->admin || (next[0]->owner && strcmp(next[0]->owner, f->user_id) == 0)))
      json_object_set_new(q, "next", json_pack("{s:s,s:i,s:o}", "id", next[0]->id, "priority", next[0]->priority,
                                               "queued_at", pq_api_time(next[0]->updated_at)));
    pq_job_free_array(next, n);
  }
}

/* The hour of throughput: models some worker serves (and "(other)") for
 * everyone; every row for admins. Built from a copy, outside the engine's lock. */
static json_t *throughput(pq_coord *coord, bool admin) {
  int64_t first;
  pq_throughput_row *rows = malloc(PQ_THROUGHPUT_MODELS * sizeof *rows); /* 70 KB: not on an HTTP thread's stack */
  size_t n = pq_coord_throughput(coord, &first, rows, rows ? PQ_THROUGHPUT_MODELS : 0);
  json_t *series = json_array();
  for (size_t i = 0; i < n; i++) {
    if (!admin && strcmp(rows[i].model, "(other)") != 0 && !pq_coord_model_served(coord, rows[i].model)) continue;
    json_t *j = json_array(), *t = json_array();
    for (size_t k = 0; k < PQ_THROUGHPUT_BUCKETS; k++) {
      json_array_append_new(j, json_integer(rows[i].jobs[k]));
      json_array_append_new(t, json_integer((json_int_t)rows[i].tokens[k]));
    }
    json_array_append_new(series, json_pack("{s:s,s:o,s:o}", "model", rows[i].model, "jobs", j, "tokens", t));
  }
  free(rows);
  return json_pack("{s:I,s:I,s:o}", "bucket_ms", (json_int_t)PQ_THROUGHPUT_BUCKET_MS, "first_bucket_ms",
                   (json_int_t)first, "series", series);
}

/* Online workers the caller may see (admins: all; others: their own), each
 * with the jobs it holds (another user's are counted, not named, for
 * non-admins). */
static json_t *workers(pq_req *req, feed *f) {
  json_t *out = json_array();
  pq_worker **ws = NULL;
  size_t n = 0;
  if (pq_coord_online_workers(req->coord, &ws, &n) != PQ_OK) return out;
  bool any = false;
  for (size_t i = 0; i < n && !any; i++) any = f->admin || (ws[i]->owner && strcmp(ws[i]->owner, f->user_id) == 0);
  pq_job **held = NULL;
  size_t n_held = 0;
  int64_t total = 0;
  pq_job_filter leased = {.state = PQ_JOB_LEASED, .limit = 500, .summary = true, .no_total = true};
  if (!any || pq_coord_list_jobs(req->coord, &leased, &held, &n_held, &total) != PQ_OK) n_held = 0;
  for (size_t i = 0; i < n; i++) {
    pq_worker *w = ws[i];
    if (!f->admin && (!w->owner || strcmp(w->owner, f->user_id) != 0)) continue;
    json_t *models = json_loads(w->models ? w->models : "[]", 0, NULL);
    json_t *caps = json_loads(w->capabilities ? w->capabilities : "{}", 0, NULL);
    json_t *jobs = json_array();
    json_int_t busy = 0;
    for (size_t k = 0; k < n_held; k++) {
      if (!held[k]->worker_id || strcmp(held[k]->worker_id, w->id) != 0) continue;
      busy++;
      if (f->admin || (held[k]->owner && strcmp(held[k]->owner, f->user_id) == 0))
        json_array_append_new(jobs, json_pack("{s:s,s:s}", "id", held[k]->id, "model", held[k]->model));
    }
    json_t *slots = json_object_get(caps, "max_concurrency"); /* what promptq worker registers */
    if (!json_is_integer(slots)) slots = json_object_get(caps, "slots");
    json_array_append_new(out, json_pack("{s:s,s:s,s:o,s:O,s:I,s:o,s:o}", "id", w->id, "name", w->name ? w->name : "",
                                         "models", json_is_array(models) ? models : json_array(), "slots",
                                         json_is_integer(slots) ? slots : json_null(), "busy", busy,
                                         "last_heartbeat", pq_api_time(w->last_seen_at), "jobs", jobs));
    if (!json_is_array(models)) json_decref(models);
    json_decref(caps);
  }
  for (size_t i = 0; i < n; i++) pq_worker_free(ws[i]);
  free(ws);
  pq_job_free_array(held, n_held);
  return out;
}

/* The caller's latest jobs; their count only when asked (it is a scan of
 * every matching row: every THROUGHPUT_EVERY_MS, not every snapshot). */
static json_t *jobs(pq_req *req, feed *f, bool counted, int64_t *total) {
  json_t *out = json_array();
  pq_job **list = NULL;
  size_t n = 0;
  pq_job_filter filter = f->filter;
  filter.no_total = !counted;
  *total = 0;
  if (pq_coord_list_jobs(req->coord, &filter, &list, &n, total) != PQ_OK) return out;
  for (size_t i = 0; i < n; i++) json_array_append_new(out, pq_api_job_json(list[i]));
  pq_job_free_array(list, n);
  return out;
}

/* What the caller sees now. Every THROUGHPUT_EVERY_MS (and first) it also
 * carries the slow parts: the hour of throughput and jobs_total. Totals
 * since start are the coordinator's, for admins only. */
static json_t *snapshot(pq_req *req, feed *f, bool slow) {
  queue_ctx q = {.out = json_array(), .coord = req->coord, .admin = f->admin};
  pq_coord_active_counts(req->coord, add_queue, &q);
  add_next_jobs(req, f, q.out);
  int64_t total;
  json_t *job_list = jobs(req, f, slow, &total);
  json_t *s = json_pack("{s:o,s:{s:s,s:b},s:o,s:o,s:o}", "time", pq_api_time(pq_now_ms()), "me", "name",
                        req->caller.user_name, "admin", f->admin, "queues", q.out, "workers", workers(req, f),
                        "jobs", job_list);
  if (s && f->admin) {
    pq_coord_stats st;
    pq_coord_get_stats(req->coord, &st);
    json_object_set_new(s, "totals", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "submitted", (json_int_t)st.submitted,
                                               "completed", (json_int_t)st.completed, "failed", (json_int_t)st.failed,
                                               "dead", (json_int_t)st.dead, "cancelled", (json_int_t)st.cancelled,
                                               "expired", (json_int_t)st.expired));
  }
  if (s && slow) {
    json_object_set_new(s, "jobs_total", json_integer(total));
    json_object_set_new(s, "throughput", throughput(req->coord, f->admin));
  }
  return s;
}

static int append_snapshot(pq_req *req, feed *f) {
  int64_t now = pq_mono_ms();
  bool slow = f->last_slow_ms == 0 || now - f->last_slow_ms >= THROUGHPUT_EVERY_MS;
  json_t *s = snapshot(req, f, slow);
  char *text = s ? json_dumps(s, JSON_COMPACT) : NULL;
  json_decref(s);
  if (!text) return -1;
  char head[64];
  int n = snprintf(head, sizeof head, "id: %lld\nevent: snapshot\ndata: ", (long long)++f->n);
  int rc = pq_buf_add(&f->pending, head, (size_t)n) || pq_buf_add(&f->pending, text, strlen(text)) ||
           pq_buf_add(&f->pending, "\n\n", 2);
  free(text);
  f->last_ms = now;
  if (slow) f->last_slow_ms = now;
  return rc ? -1 : 0;
}

static long feed_fill(pq_req *req, char *buf, size_t max) {
  feed *f = req->state;
  for (;;) {
    size_t n = pq_buf_take(&f->pending, &f->off, buf, max);
    if (n) return (long)n;
    if (pq_req_server_stopping(req) || pq_req_peer_gone(req)) return -1;
    pq_hub *hub = pq_coord_hub(req->coord);
    uint64_t version = pq_hub_version(hub, pq_coord_any_job_key());
    int64_t now = pq_mono_ms();
    bool changed = version != f->version, due = now - f->last_ms >= SNAPSHOT_MAX_MS;
    if ((changed || due) && now - f->last_ms >= SNAPSHOT_MIN_MS) {
      f->version = version; /* read before the snapshot: a change during it sends another */
      if (append_snapshot(req, f) != 0) return -1;
      continue;
    }
    if (changed) /* too soon after the last: wait out the gap on a key nobody publishes */
      pq_req_stream_wait(req, GAP_KEY, pq_hub_version(hub, GAP_KEY), f->last_ms + SNAPSHOT_MIN_MS);
    else
      pq_req_stream_wait(req, pq_coord_any_job_key(), f->version, f->last_ms + SNAPSHOT_MAX_MS);
    return 0;
  }
}

static void feed_free(pq_req *req) {
  feed *f = req->state;
  pq_buf_free(&f->pending);
}

pq_err pq_api_dashboard_events(pq_req *req) {
  feed *f = pq_req_alloc(req, sizeof *f);
  if (!f) return PQ_ERR_NO_MEMORY;
  memset(f, 0, sizeof *f);
  f->admin = req->caller.admin;
  snprintf(f->user_id, sizeof f->user_id, "%s", req->caller.user_id);
  f->filter = (pq_job_filter){.state = -1, .limit = JOBS_SHOWN, .summary = true};
  const char *state = pq_req_query(req, "state"), *model = pq_req_query(req, "model"), *user = pq_req_query(req, "user");
  if (state && *state && (f->filter.state = pq_job_state_parse(state)) < 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "parameter", "state"),
                       "query parameter 'state' must be a job state (queued, leased, completed, failed, dead, cancelled, expired)");
  if (model && *model) f->filter.model = model;
  if (user && *user && !f->admin)
    return pq_req_fail(req, PQ_ERR_FORBIDDEN, json_pack("{s:s}", "parameter", "user"),
                       "only an admin may look at another user's jobs");
  if (user && *user) {
    pq_user *u = NULL;
    pq_err e = pq_coord_find_user(req->coord, user, &u);
    if (e == PQ_ERR_NOT_FOUND)
      return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s}", "parameter", "user"), "no user %s", user);
    if (e != PQ_OK) return e;
    char *id = pq_req_strndup(req, u->id, strlen(u->id));
    pq_user_free(u);
    if (!id) return PQ_ERR_NO_MEMORY;
    f->filter.owner = id;
  } else {
    f->filter.owner = f->admin ? NULL : pq_api_owner(req); /* an admin sees everyone's */
  }
  f->version = PQ_HUB_ANY_VERSION; /* the first snapshot goes at once */
  f->last_ms = pq_mono_ms() - SNAPSHOT_MAX_MS;
  req->state = f;
  req->state_free = feed_free;
  return pq_req_stream(req, 200, "text/event-stream", feed_fill);
}
