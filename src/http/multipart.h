/* multipart/form-data bodies (RFC 7578), as file uploads send them: the
 * parts of a request's body, found in place. The strings are the request's
 * memory; data points into its body (binary, not NUL-terminated). */
#ifndef PQ_HTTP_MULTIPART_H
#define PQ_HTTP_MULTIPART_H

#include <stddef.h>

#include "http/request.h"

typedef struct pq_form_part {
  const char *name;         /* the form field */
  const char *filename;     /* NULL when the part is not a file */
  const char *content_type; /* NULL when not given */
  const char *data;
  size_t len;
} pq_form_part;

/* The parts of req's body, at most max, in order; PQ_ERR_INVALID_REQUEST
 * (recorded on req, naming what is wrong) when the request is not
 * multipart/form-data or its body does not parse. */
pq_err pq_req_form(pq_req *req, pq_form_part *parts, size_t max, size_t *n);
/* The part named name, or NULL. */
const pq_form_part *pq_form_find(const pq_form_part *parts, size_t n, const char *name);

#endif
