#include "base/jcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pq_jerr_clear(pq_jerr *why) {
  json_decref(why->details);
  why->details = NULL;
  why->message[0] = '\0';
}

pq_err pq_jerr_set(pq_jerr *why, json_t *details, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why->message, sizeof why->message, fmt, ap);
  va_end(ap);
  json_decref(why->details);
  why->details = details;
  return PQ_ERR_INVALID_REQUEST;
}

static pq_err bad_field(pq_jerr *why, const char *key, const char *what) {
  return pq_jerr_set(why, json_pack("{s:s}", "field", key), "'%s' %s", key, what);
}

pq_err pq_jcheck_only(pq_jerr *why, json_t *obj, const char *where, const char *const *allowed) {
  const char *key;
  json_t *value;
  json_object_foreach(obj, key, value) {
    bool known = false;
    for (size_t i = 0; allowed[i] && !known; i++) known = strcmp(key, allowed[i]) == 0;
    if (!known) return pq_jerr_set(why, json_pack("{s:s}", "field", key), "unknown field '%s' in %s", key, where);
  }
  return PQ_OK;
}

pq_err pq_jcheck_string(pq_jerr *why, json_t *obj, const char *key, bool required, size_t max_len,
                        const char **out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return required ? bad_field(why, key, "is required") : PQ_OK;
  if (!json_is_string(v)) return bad_field(why, key, "must be a string");
  if (max_len && json_string_length(v) > max_len) return bad_field(why, key, "is too long");
  if (strlen(json_string_value(v)) != json_string_length(v))
    return bad_field(why, key, "must not contain NUL characters");
  *out = json_string_value(v);
  return PQ_OK;
}

pq_err pq_jcheck_int(pq_jerr *why, json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                     int64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return required ? bad_field(why, key, "is required") : PQ_OK;
  if (!json_is_integer(v)) return bad_field(why, key, "must be an integer");
  int64_t n = json_integer_value(v);
  if (n < min || n > max)
    return pq_jerr_set(why, json_pack("{s:s,s:I,s:I}", "field", key, "min", (json_int_t)min, "max", (json_int_t)max),
                       "'%s' must be between %lld and %lld", key, (long long)min, (long long)max);
  *out = n;
  return PQ_OK;
}

pq_err pq_jcheck_bool(pq_jerr *why, json_t *obj, const char *key, bool *out) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return PQ_OK;
  if (!json_is_boolean(v)) return bad_field(why, key, "must be true or false");
  *out = json_is_true(v);
  return PQ_OK;
}
