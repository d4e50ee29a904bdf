#include "store/store.h"

#include <stdlib.h>
#include <string.h>

const pq_store_ops *const pq_store_backends[] = {&pq_store_sqlite_ops, NULL};

const pq_store_ops *pq_store_find(const char *name) {
  for (size_t i = 0; pq_store_backends[i]; i++)
    if (strcmp(pq_store_backends[i]->name, name) == 0) return pq_store_backends[i];
  return NULL;
}

void pq_job_events_free(pq_job_event *events, size_t n) {
  for (size_t i = 0; events && i < n; i++) {
    free(events[i].kind);
    free(events[i].data);
  }
  free(events);
}
