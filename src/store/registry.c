/* The store registry: which backend a URL names. Adding a backend is a
 * folder under store/ and one line in pq_store_backends. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/testing/fault.h"

extern const pq_store_ops pq_store_sqlite_ops;
extern const pq_store_ops pq_store_postgres_ops;

const pq_store_backend pq_store_backends[] = {
    {"sqlite", &pq_store_sqlite_ops},
    {"postgres", &pq_store_postgres_ops},
    {"postgresql", &pq_store_postgres_ops},
    {NULL, NULL},
};

#define FAULT_PREFIX "fault+"

pq_err pq_store_open(const char *url, const pq_store_config *cfg, pq_store **out, char *why, size_t why_size) {
  *out = NULL;
  if (!url || !*url) {
    snprintf(why, why_size, "no store URL given");
    return PQ_ERR_INVALID_REQUEST;
  }
  if (strncmp(url, FAULT_PREFIX, strlen(FAULT_PREFIX)) == 0)
    return pq_store_fault_open(url + strlen(FAULT_PREFIX), cfg, out, why, why_size);
  const char *sep = strstr(url, "://");
  if (!sep) {
    snprintf(why, why_size, "'%.64s' is not a store URL (expected SCHEME://..., e.g. sqlite:///var/lib/promptq.db)",
             url);
    return PQ_ERR_INVALID_REQUEST;
  }
  size_t scheme_len = (size_t)(sep - url);
  const pq_store_backend *b = pq_store_backends;
  while (b->scheme && !(strlen(b->scheme) == scheme_len && strncmp(b->scheme, url, scheme_len) == 0)) b++;
  if (!b->scheme) {
    char known[256] = "";
    for (const pq_store_backend *k = pq_store_backends; k->scheme; k++)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s://", k == pq_store_backends ? "" : ", ",
               k->scheme);
    snprintf(why, why_size, "no store backend for '%.*s://' in this build (it has %s)", (int)scheme_len, url, known);
    return PQ_ERR_INVALID_REQUEST;
  }
  const char *location = sep + 3; /* sqlite:///abs/path -> /abs/path; sqlite://rel/path -> rel/path */
  if (!*location) {
    snprintf(why, why_size, "'%.64s' names no database", url);
    return PQ_ERR_INVALID_REQUEST;
  }
  pq_store_config c = *cfg;
  c.path = location;
  pq_err result = b->ops->open(&c, out);
  if (result != PQ_OK) {
    char shown[1024];
    pq_store_url_redacted(url, shown, sizeof shown);
    snprintf(why, why_size, "cannot open the store %s", shown);
  }
  return result;
}

bool pq_store_single_coordinator(pq_store *s) {
  while (s->ops == &pq_store_fault_ops) s = pq_store_fault_inner(s);
  return s->ops->single_coordinator;
}

void pq_store_close(pq_store *s) {
  if (s) s->ops->close(s);
}

static const pq_store_backend *backend_of(const char *url) {
  if (strncmp(url, FAULT_PREFIX, strlen(FAULT_PREFIX)) == 0) url += strlen(FAULT_PREFIX);
  const char *sep = strstr(url, "://");
  if (!sep) return NULL;
  for (const pq_store_backend *b = pq_store_backends; b->scheme; b++)
    if (strlen(b->scheme) == (size_t)(sep - url) && strncmp(b->scheme, url, (size_t)(sep - url)) == 0) return b;
  return NULL;
}

bool pq_store_url_shared(const char *url) {
  const pq_store_backend *b = backend_of(url);
  return b && !b->ops->single_coordinator;
}

void pq_store_url_redacted(const char *url, char *out, size_t size) {
  snprintf(out, size, "%s", url);
  char *auth = strstr(out, "://"), *at = auth ? strchr(auth + 3, '@') : NULL;
  char *colon = at ? memchr(auth + 3, ':', (size_t)(at - (auth + 3))) : NULL;
  if (colon) memmove(colon + 4, at, strlen(at) + 1), memcpy(colon, ":***", 4);
}

int pq_store_url_for_data(const char *data, char *out, size_t size) {
  int n = snprintf(out, size, "sqlite://%s/promptq.db", data);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

void pq_job_events_free(pq_job_event *events, size_t n) {
  for (size_t i = 0; events && i < n; i++) {
    free(events[i].kind);
    free(events[i].data);
  }
  free(events);
}
