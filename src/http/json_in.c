#include "http/json_in.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static pq_err bad_field(pq_req *req, const char *key, const char *what) {
  return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", key), "'%s' %s", key,
                     what);
}

pq_err pq_json_only(pq_req *req, json_t *obj, const char *where, const char *const *allowed) {
  const char *key;
  json_t *value;
  json_object_foreach(obj, key, value) {
    bool known = false;
    for (size_t i = 0; allowed[i] && !known; i++) known = strcmp(key, allowed[i]) == 0;
    if (!known)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "field", key),
                         "unknown field '%s' in %s", key, where);
  }
  return PQ_OK;
}

pq_err pq_json_string(pq_req *req, json_t *obj, const char *key, bool required, size_t max_len,
                      const char **out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return required ? bad_field(req, key, "is required") : PQ_OK;
  if (!json_is_string(v)) return bad_field(req, key, "must be a string");
  if (max_len && json_string_length(v) > max_len) return bad_field(req, key, "is too long");
  if (strlen(json_string_value(v)) != json_string_length(v))
    return bad_field(req, key, "must not contain NUL characters");
  *out = json_string_value(v);
  return PQ_OK;
}

pq_err pq_json_int(pq_req *req, json_t *obj, const char *key, bool required, int64_t min,
                   int64_t max, int64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return required ? bad_field(req, key, "is required") : PQ_OK;
  if (!json_is_integer(v)) return bad_field(req, key, "must be an integer");
  int64_t n = json_integer_value(v);
  if (n < min || n > max)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST,
                       json_pack("{s:s,s:I,s:I}", "field", key, "min", (json_int_t)min, "max",
                                 (json_int_t)max),
                       "'%s' must be between %lld and %lld", key, (long long)min, (long long)max);
  *out = n;
  return PQ_OK;
}

pq_err pq_json_bool(pq_req *req, json_t *obj, const char *key, bool *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return PQ_OK;
  if (!json_is_boolean(v)) return bad_field(req, key, "must be true or false");
  *out = json_is_true(v);
  return PQ_OK;
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
