#include "store/store.h"

#include <stdlib.h>

const pq_store_ops *const pq_store_backends[] = {&pq_store_sqlite_ops, NULL};

void pq_job_events_free(pq_job_event *events, size_t n) {
  for (size_t i = 0; events && i < n; i++) {
    free(events[i].kind);
    free(events[i].data);
  }
  free(events);
}
