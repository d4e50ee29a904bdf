#include "worker/backend.h"

#include <stdlib.h>
#include <string.h>

static const pq_backend_ops *const backends[] = {&pq_backend_echo, &pq_backend_openai, NULL};

const pq_backend_ops *pq_backend_find(const char *name) {
  for (size_t i = 0; backends[i]; i++)
    if (strcmp(backends[i]->name, name) == 0) return backends[i];
  return NULL;
}

void pq_backend_result_clear(pq_backend_result *r) {
  free(r->output);
  memset(r, 0, sizeof *r);
}
