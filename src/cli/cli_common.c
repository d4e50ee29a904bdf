#include <stdlib.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "engine/coord.h"
#include "store/store.h"

int pq_cli_call(const pq_cli_client_opts *o, const char *method, const char *path, json_t *body,
                long timeout_ms, json_t **out) {
  *out = NULL;
  pq_client *c = pq_client_new(o->coordinator, o->api_key);
  if (!c) return 1;
  long status = 0;
  pq_err e = pq_client_call(c, method, path, body, timeout_ms, &status, out);
  pq_client_free(c);
  if (e != PQ_OK) {
    fprintf(stderr, "promptq: cannot reach the coordinator at %s\n", o->coordinator);
    return 1;
  }
  if (status < 200 || status > 299) {
    json_t *err = json_object_get(*out, "error");
    fprintf(stderr, "promptq: %ld %s: %s\n", status,
            json_string_value(json_object_get(err, "code")) ?: "ERROR",
            pq_client_error_text(*out, "no details"));
    json_decref(*out);
    *out = NULL;
    return 1;
  }
  return 0;
}

void pq_cli_print_json(json_t *v) {
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
  if (s) puts(s);
  free(s);
}

int pq_cli_store_url(const char *store, const char *data, char *out, size_t size) {
  if (store && *store) {
    if ((size_t)snprintf(out, size, "%s", store) >= size) {
      fprintf(stderr, "promptq: the store URL is too long\n");
      return -1;
    }
    return 0;
  }
  char db[1200];
  if (pq_cli_data_path(data, db, sizeof db) != 0) return -1;
  if (pq_store_url_for_data(data, out, size) != 0) {
    fprintf(stderr, "promptq: data folder path is too long\n");
    return -1;
  }
  return 0;
}

int pq_cli_data_path(const char *data, char *out, size_t size) {
  if (mkdir(data, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "promptq: cannot create data folder %s: %s\n", data, strerror(errno));
    return -1;
  }
  if ((size_t)snprintf(out, size, "%s/promptq.db", data) >= size) {
    fprintf(stderr, "promptq: data folder path is too long\n");
    return -1;
  }
  return 0;
}

pq_coord *pq_cli_engine_open(const char *store, const char *data) {
  char url[1300];
  umask(077); /* a store it makes is the operator's alone */
  if (pq_cli_store_url(store, data, url, sizeof url) != 0) return NULL;
  pq_coord_config cfg = {.store_url = url, .admin_only = true,
                         .store = {.sync_full = true, .busy_timeout_ms = 10000, .read_pool_size = 1}};
  pq_coord *c = NULL;
  if (pq_coord_open(&cfg, &c) != PQ_OK) {
    fprintf(stderr, "promptq: cannot open the store %s\n", url);
    return NULL;
  }
  return c;
}

void pq_cli_follow(const pq_cli_client_opts *o, const char *path, pq_sse_fn on_event, void *ctx, const char *last_id,
                   const int *result) {
  pq_client *c = pq_client_new(o->coordinator, o->api_key);
  for (int tries = 0; c && *result < 0 && tries < 10; tries++) {
    long status = 0;
    pq_client_sse(c, path, last_id, on_event, ctx, &status); /* a dropped stream resumes where it was */
    if (status >= 400) break;
  }
  pq_client_free(c);
}
