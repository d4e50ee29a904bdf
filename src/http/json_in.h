/* Reading fields from a request's JSON body with clear errors: each getter
 * returns PQ_OK, or PQ_ERR_INVALID_REQUEST recorded on the request with a
 * message naming the field and details {"field": ...}. Strings are borrowed
 * from the body. */
#ifndef PQ_HTTP_JSON_IN_H
#define PQ_HTTP_JSON_IN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/jcheck.h"
#include "http/request.h"

/* Refuses keys of obj not in the NULL-terminated allowed list. */
pq_err pq_json_only(pq_req *req, json_t *obj, const char *where, const char *const *allowed);

/* Absent and not required: *out is left as it was. */
pq_err pq_json_string(pq_req *req, json_t *obj, const char *key, bool required, size_t max_len,
                      const char **out);
pq_err pq_json_int(pq_req *req, json_t *obj, const char *key, bool required, int64_t min,
                   int64_t max, int64_t *out);
pq_err pq_json_bool(pq_req *req, json_t *obj, const char *key, bool *out);

/* Records a base/jcheck.h error on the request (takes its details). */
pq_err pq_req_fail_jerr(pq_req *req, pq_err err, pq_jerr *why);

/* Parses a decimal query argument; absent leaves *out. */
pq_err pq_query_int(pq_req *req, const char *name, int64_t min, int64_t max, int64_t *out);

#endif
