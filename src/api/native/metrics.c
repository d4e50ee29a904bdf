/* GET /metrics: Prometheus text. HTTP metrics come from the server; job and
 * worker gauges from the coordinator's memory (no scan of the queue). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "base/buf.h"
#include "http/server.h"

typedef struct {
  pq_buf *t;
  pq_coord *coord;
  int64_t leased, other_queued;
} gauges;

/* A label value as the exposition format wants it: backslash, double quote
 * and newline escaped, so no value can end its label or add a line. */
static void label_value(pq_buf *t, const char *v) {
  for (; *v; v++) {
    if (*v == '\\') pq_buf_add(t, "\\\\", 2);
    else if (*v == '"') pq_buf_add(t, "\\\"", 2);
    else if (*v == '\n') pq_buf_add(t, "\\n", 2);
    else pq_buf_add(t, v, 1);
  }
}

/* One series per model some worker serves; every other model's jobs are
 * counted together under model="(other)", so clients cannot mint series
 * (or read each other's model names) by submitting to made-up models. */
static void queued_line(void *ctx, const char *model, int64_t queued, int64_t leased) {
  gauges *g = ctx;
  g->leased += leased;
  if (!pq_coord_model_served(g->coord, model)) {
    g->other_queued += queued;
    return;
  }
  pq_buf_printf(g->t, "queued_jobs{model=\"");
  label_value(g->t, model);
  pq_buf_printf(g->t, "\"} %lld\n", (long long)queued);
}

static void count_worker(void *ctx, const char *model, int64_t created_at) {
  (void)model, (void)created_at;
  (*(size_t *)ctx)++;
}

static void counter(pq_buf *t, const char *name, const char *help, unsigned long long v) {
  pq_buf_printf(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

pq_err pq_api_metrics(pq_req *req) {
  pq_buf t = {0};
  char *http = pq_server_metrics_text(req->server);
  if (http) pq_buf_printf(&t, "%s", http);
  free(http);
  gauges g = {.t = &t, .coord = req->coord};
  pq_buf_printf(&t, "# HELP queued_jobs Jobs waiting for a worker, by model (models no worker serves: (other)).\n"
                    "# TYPE queued_jobs gauge\n");
  pq_coord_active_counts(req->coord, queued_line, &g);
  pq_buf_printf(&t, "queued_jobs{model=\"(other)\"} %lld\n", (long long)g.other_queued);
  size_t served = 0;
  pq_coord_live_models(req->coord, count_worker, &served);
  pq_buf_printf(&t, "# HELP served_models Models some online worker serves.\n# TYPE served_models gauge\n"
                    "served_models %zu\n", served);
  pq_buf_printf(&t, "# HELP active_jobs Jobs a worker holds now.\n# TYPE active_jobs gauge\nactive_jobs %lld\n",
      (long long)g.leased);
  pq_worker **workers = NULL;
  size_t n = 0;
  if (pq_coord_online_workers(req->coord, &workers, &n) == PQ_OK) {
    pq_buf_printf(&t, "# HELP workers_online Workers that heartbeat.\n# TYPE workers_online gauge\nworkers_online %zu\n", n);
    pq_buf_printf(&t, "# HELP registered_miners Workers that heartbeat (the coordinator API's name).\n"
            "# TYPE registered_miners gauge\nregistered_miners %zu\n", n);
    for (size_t i = 0; i < n; i++) pq_worker_free(workers[i]);
    free(workers);
  }
  pq_coord_stats st;
  pq_coord_get_stats(req->coord, &st);
  counter(&t, "jobs_submitted_total", "Jobs accepted since the coordinator started.", st.submitted);
  pq_buf_printf(&t, "# HELP jobs_finished_total Jobs that ended, by how.\n# TYPE jobs_finished_total counter\n"
          "jobs_finished_total{status=\"completed\"} %llu\njobs_finished_total{status=\"failed\"} %llu\n"
          "jobs_finished_total{status=\"dead\"} %llu\njobs_finished_total{status=\"cancelled\"} %llu\n"
          "jobs_finished_total{status=\"expired\"} %llu\n",
      (unsigned long long)st.completed, (unsigned long long)st.failed, (unsigned long long)st.dead,
      (unsigned long long)st.cancelled, (unsigned long long)st.expired);
  counter(&t, "lease_expiries_total", "Leases that lapsed before their worker finished.", st.lease_expiries);
  counter(&t, "store_commits_total", "Transactions committed by the writer (group commits).", st.batches);
  counter(&t, "store_committed_operations_total", "Operations those transactions carried.", st.batched_ops);
  return pq_req_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", t.data);
}
