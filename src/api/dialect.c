/* What dialects share: the plain error shape, the status words, and running
 * every dialect's environment mapping. */
#include "api/dialect.h"

#include <jansson.h>
#include <string.h>

json_t *pq_dialect_plain_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  (void)req, (void)err, (void)details, (void)status;
  return json_pack("{s:s}", "error", message);
}

const char *pq_status_word(const pq_status_words *w, pq_job_state s) {
  switch (s) {
    case PQ_JOB_QUEUED: return w->queued;
    case PQ_JOB_LEASED: return w->leased;
    case PQ_JOB_COMPLETED: return w->completed;
    default: return w->ended;
  }
}

int pq_status_parse(const pq_status_words *w, const char *word) {
  if (strcmp(word, w->queued) == 0) return PQ_JOB_QUEUED;
  if (strcmp(word, w->leased) == 0) return PQ_JOB_LEASED;
  if (strcmp(word, w->completed) == 0) return PQ_JOB_COMPLETED;
  if (strcmp(word, w->ended) == 0) return PQ_JOB_FAILED;
  return -1;
}

pq_err pq_dialects_start(pq_coord *coord, bool open) {
  pq_err e = PQ_OK;
  for (size_t i = 0; pq_dialects[i] && e == PQ_OK; i++)
    if (pq_dialects[i]->on_start) e = pq_dialects[i]->on_start(coord, open);
  return e;
}

void pq_dialects_stop(void) {
  for (size_t i = 0; pq_dialects[i]; i++)
    if (pq_dialects[i]->on_stop) pq_dialects[i]->on_stop();
}

int pq_dialects_apply_environment(char *why, size_t why_size) {
  for (size_t i = 0; pq_dialects[i]; i++)
    if (pq_dialects[i]->apply_environment && pq_dialects[i]->apply_environment(why, why_size) != 0) return -1;
  return 0;
}
