#include "model/job.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
#define PQ__STATE_NAME(name, str) [PQ_JOB_##name] = str,
    PQ_JOB_STATE_MAP(PQ__STATE_NAME)
#undef PQ__STATE_NAME
};

const char *pq_job_state_name(pq_job_state s) {
  if ((int)s < 0 || s >= PQ_JOB__STATE_COUNT) return "unknown";
  return state_names[s];
}

int pq_job_state_parse(const char *name) {
  for (int i = 0; name && i < PQ_JOB__STATE_COUNT; i++)
    if (strcmp(name, state_names[i]) == 0) return i;
  return -1;
}

bool pq_job_state_terminal(pq_job_state s) { return s != PQ_JOB_QUEUED && s != PQ_JOB_LEASED; }

bool pq_job_transition_allowed(pq_job_state from, pq_job_state to) {
  switch (from) {
    case PQ_JOB_QUEUED:
      return to == PQ_JOB_LEASED || to == PQ_JOB_CANCELLED || to == PQ_JOB_EXPIRED;
    case PQ_JOB_LEASED:
      return to == PQ_JOB_QUEUED || to == PQ_JOB_COMPLETED || to == PQ_JOB_FAILED ||
             to == PQ_JOB_CANCELLED || to == PQ_JOB_DEAD;
    default:
      return false; /* terminal states are final */
  }
}

pq_job *pq_job_new(void) { return calloc(1, sizeof(pq_job)); }

void pq_job_free(pq_job *job) {
  if (!job) return;
  free(job->kind);
  free(job->parent_id);
  free(job->model);
  free(job->input);
  free(job->worker_id);
  free(job->lease_token);
  free(job->output);
  free(job->error_code);
  free(job->error_message);
  free(job->idempotency_key);
  free(job->request_hash);
  free(job->owner);
  free(job->worker_signature);
  free(job->requirements);
  free(job->webhook_url);
  free(job->key_id);
  free(job);
}

void pq_job_free_array(pq_job **jobs, size_t n) {
  if (!jobs) return;
  for (size_t i = 0; i < n; i++) pq_job_free(jobs[i]);
  free(jobs);
}

bool pq_job_model_name_ok(const char *name) {
  if (!name || !*name) return false;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

int pq_set_str(char **field, const char *value) {
  char *copy = NULL;
  if (value && !(copy = strdup(value))) return -1;
  free(*field);
  *field = copy;
  return 0;
}

void pq_worker_free(pq_worker *w) {
  if (!w) return;
  free(w->name);
  free(w->models);
  free(w->capabilities);
  free(w->public_key);
  free(w->owner);
  free(w);
}

void pq_user_free(pq_user *u) {
  if (!u) return;
  free(u->name);
  free(u->password_hash);
  free(u);
}

void pq_api_key_free(pq_api_key *k) {
  if (!k) return;
  free(k->user_id);
  free(k->prefix);
  free(k->hash);
  free(k->scope);
  free(k->name);
  free(k);
}

char *pq_job_output_text(const char *output) {
  if (!output) return NULL;
  json_t *v = json_loads(output, JSON_DECODE_ANY, NULL);
  const char *text = json_string_value(v);
  if (!text && json_is_object(v) && json_object_get(v, PQ_CHAT_RESULT_KEY)) { /* a chat result (worker/backend.h) */
    text = json_string_value(json_object_get(v, "content"));
    if (!text) text = "";
  }
  char *copy = text ? strdup(text) : json_is_null(v) ? NULL : v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)
                                                                : strdup(output);
  json_decref(v);
  return copy;
}

void pq_file_free(pq_file *f) {
  if (!f) return;
  free(f->id);
  free(f->owner);
  free(f->purpose);
  free(f->filename);
  free(f->content);
  free(f);
}

void pq_file_free_array(pq_file **files, size_t n) {
  for (size_t i = 0; i < n; i++) pq_file_free(files[i]);
  free(files);
}
