#include "worker/backend.h"

#include <stdio.h>
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

void pq_backend_unsupported_kind(pq_backend_result *out, const char *backend, const char *kind) {
  out->failed = true;
  out->retryable = false; /* another worker with the same backend would fail it too */
  snprintf(out->error_code, sizeof out->error_code, "UNSUPPORTED_KIND");
  snprintf(out->error_message, sizeof out->error_message, "the %s backend does not run %s jobs", backend, kind);
}
