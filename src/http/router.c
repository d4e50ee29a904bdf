#include "http/router.h"

#include <stdbool.h>
#include <string.h>

/* Matches one pattern against path, filling the captures. */
static bool match_pattern(const char *pat, const char *path, pq_route_match *m) {
  m->n_params = 0;
  for (;;) {
    if (*pat != '/' || *path != '/') return *pat == '\0' && *path == '\0';
    pat++;
    path++;
    size_t plen = strcspn(pat, "/"), slen = strcspn(path, "/");
    if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
      if (slen == 0 || m->n_params == PQ_ROUTE_MAX_PARAMS) return false;
      m->params[m->n_params].name = pat + 1;
      m->params[m->n_params].name_len = plen - 2;
      m->params[m->n_params].value = path;
      m->params[m->n_params].value_len = slen;
      m->n_params++;
    } else if (plen != slen || strncmp(pat, path, plen) != 0) {
      return false;
    }
    pat += plen;
    path += slen;
  }
}

pq_err pq_router_match(const pq_route *routes, size_t n, const char *method, const char *path,
                       pq_route_match *m) {
  memset(m, 0, sizeof *m);
  bool path_known = false;
  size_t used = 0;
  pq_route_match scratch;
  for (size_t i = 0; i < n; i++) {
    if (!match_pattern(routes[i].pattern, path, &scratch)) continue;
    if (strcmp(routes[i].method, method) == 0) {
      *m = scratch;
      m->route = &routes[i];
      return PQ_OK;
    }
    path_known = true;
    size_t len = strlen(routes[i].method);
    if (!strstr(m->allow, routes[i].method) && used + len + 3 < sizeof m->allow) {
      if (used) {
        memcpy(m->allow + used, ", ", 2);
        used += 2;
      }
      memcpy(m->allow + used, routes[i].method, len + 1);
      used += len;
    }
  }
  return path_known ? PQ_ERR_METHOD_NOT_ALLOWED : PQ_ERR_NOT_FOUND;
}
