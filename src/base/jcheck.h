/* Checking fields of a JSON object with clear errors, for any layer: each
 * check returns PQ_OK, or PQ_ERR_INVALID_REQUEST with a message naming the
 * field and details {"field": ...} in *why. Strings are borrowed from obj.
 * http/json_in.h records the same errors on a request. */
#ifndef PQ_BASE_JCHECK_H
#define PQ_BASE_JCHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

typedef struct pq_jerr {
  char message[256];
  json_t *details; /* owned; NULL when none. Take it or pq_jerr_clear it. */
} pq_jerr;

void pq_jerr_clear(pq_jerr *why);
/* Records an error (takes details) and returns PQ_ERR_INVALID_REQUEST. */
pq_err pq_jerr_set(pq_jerr *why, json_t *details, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Refuses keys of obj not in the NULL-terminated allowed list. */
pq_err pq_jcheck_only(pq_jerr *why, json_t *obj, const char *where, const char *const *allowed);
/* Absent and not required: *out is left as it was. */
pq_err pq_jcheck_string(pq_jerr *why, json_t *obj, const char *key, bool required, size_t max_len,
                        const char **out);
pq_err pq_jcheck_int(pq_jerr *why, json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                     int64_t *out);
pq_err pq_jcheck_bool(pq_jerr *why, json_t *obj, const char *key, bool *out);

#endif
