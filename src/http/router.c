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

/* A catch-all (a pattern ending in "/" and two stars) matches PREFIX and everything under it. */
static bool match_rest(const char *pat, const char *path) {
  size_t len = strlen(pat);
  if (len < 3 || strcmp(pat + len - 3, "/**") != 0) return false;
  len -= 3;
  return strncmp(pat, path, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

pq_err pq_router_match(const pq_route *routes, size_t n, const char *method, const char *path,
                       pq_route_match *m) {
  memset(m, 0, sizeof *m);
  bool path_known = false;
  size_t used = 0;
  pq_route_match scratch;
  const pq_route *rest = NULL;
  for (size_t i = 0; i < n; i++) {
    if (match_rest(routes[i].pattern, path)) {
      if (!rest) rest = &routes[i];
      continue;
    }
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
  /* a catch-all answers what no route does, and words the 405 of a path it covers */
  m->route = rest;
  if (path_known) return PQ_ERR_METHOD_NOT_ALLOWED;
  return rest ? PQ_OK : PQ_ERR_NOT_FOUND;
}
