/* The job kinds this build runs. Adding one: a file in this folder and one
 * line below. */
#include <string.h>

#include "engine/kind.h"

extern const pq_job_kind pq_kind_chat;
extern const pq_job_kind pq_kind_embedding;
extern const pq_job_kind pq_kind_completion;
extern const pq_job_kind pq_kind_response;
extern const pq_job_kind pq_kind_batch;
extern const pq_job_kind pq_kind_council;

#define MAX_KINDS 32

static const pq_job_kind *kinds[MAX_KINDS] = {
    &pq_kind_chat,
    &pq_kind_embedding,
    &pq_kind_completion,
    &pq_kind_response,
    &pq_kind_batch,
    &pq_kind_council,
};

const pq_job_kind *pq_job_kind_find(const char *name) {
  if (!name) name = PQ_JOB_KIND_DEFAULT;
  for (size_t i = 0; i < MAX_KINDS && kinds[i]; i++)
    if (strcmp(kinds[i]->name, name) == 0) return kinds[i];
  return NULL;
}

const pq_job_kind *pq_job_kind_of(const pq_job *job) {
  const pq_job_kind *k = pq_job_kind_find(job->kind);
  return k ? k : pq_job_kind_find(NULL);
}

int pq_job_kind_register(const pq_job_kind *kind) {
  if (pq_job_kind_find(kind->name)) return -1;
  for (size_t i = 0; i < MAX_KINDS; i++)
    if (!kinds[i]) {
      kinds[i] = kind;
      return 0;
    }
  return -1;
}

size_t pq_job_kind_names(const char **names, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < MAX_KINDS && kinds[i]; i++)
    if (n < max) names[n++] = kinds[i]->name;
  return n;
}
