#include "http/json_in.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

pq_err pq_req_fail_jerr(pq_req *req, pq_err err, pq_jerr *why) {
  json_t *details = why->details;
  why->details = NULL;
  return pq_req_fail(req, err, details, "%s", why->message);
}

/* each getter is its base/jcheck.h check, with the error put on the request */
#define ON_REQUEST(call)                                       \
  do {                                                         \
    pq_jerr why_ = {0};                                        \
    pq_err e_ = (call);                                        \
    return e_ == PQ_OK ? PQ_OK : pq_req_fail_jerr(req, e_, &why_); \
  } while (0)

pq_err pq_json_only(pq_req *req, json_t *obj, const char *where, const char *const *allowed) {
  ON_REQUEST(pq_jcheck_only(&why_, obj, where, allowed));
}

pq_err pq_json_string(pq_req *req, json_t *obj, const char *key, bool required, size_t max_len,
                      const char **out) {
  ON_REQUEST(pq_jcheck_string(&why_, obj, key, required, max_len, out));
}

pq_err pq_json_int(pq_req *req, json_t *obj, const char *key, bool required, int64_t min,
                   int64_t max, int64_t *out) {
  ON_REQUEST(pq_jcheck_int(&why_, obj, key, required, min, max, out));
}

pq_err pq_json_bool(pq_req *req, json_t *obj, const char *key, bool *out) {
  ON_REQUEST(pq_jcheck_bool(&why_, obj, key, out));
}

pq_err pq_query_int(pq_req *req, const char *name, int64_t min, int64_t max, int64_t *out) {
  const char *s = pq_req_query(req, name);
  if (!s) return PQ_OK;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < min || v > max)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST,
                       json_pack("{s:s,s:I,s:I}", "parameter", name, "min", (json_int_t)min, "max",
                                 (json_int_t)max),
                       "query parameter '%s' must be an integer between %lld and %lld", name,
                       (long long)min, (long long)max);
  *out = v;
  return PQ_OK;
}
