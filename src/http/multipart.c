#include "http/multipart.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static pq_err bad(pq_req *req, const char *why) {
  return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s}", "header", "Content-Type"),
                     "the body is not valid multipart/form-data: %s", why);
}

/* The value of a parameter (name=value or name="value") in a header's
 * parameters, as a copy in req's memory; NULL when absent. */
static const char *param(pq_req *req, const char *params, size_t len, const char *name) {
  size_t nlen = strlen(name);
  for (size_t i = 0; i + nlen + 1 <= len; i++) {
    if (i > 0 && params[i - 1] != ';' && params[i - 1] != ' ' && params[i - 1] != '\t') continue;
    if (strncasecmp(params + i, name, nlen) != 0 || params[i + nlen] != '=') continue;
    const char *v = params + i + nlen + 1, *end = params + len;
    if (v < end && *v == '"') {
      const char *close = memchr(v + 1, '"', (size_t)(end - v - 1));
      return close ? pq_req_strndup(req, v + 1, (size_t)(close - v - 1)) : NULL;
    }
    size_t vlen = 0;
    while (v + vlen < end && v[vlen] != ';' && v[vlen] != ' ' && v[vlen] != '\r') vlen++;
    return pq_req_strndup(req, v, vlen);
  }
  return NULL;
}

/* One part's headers, [p, end): its name, file name and type. */
static bool part_headers(pq_req *req, const char *p, const char *end, pq_form_part *part) {
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol) eol = end;
    size_t len = (size_t)(eol - p);
    const char *colon = memchr(p, ':', len);
    if (colon) {
      size_t klen = (size_t)(colon - p);
      const char *v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      if (klen == 19 && strncasecmp(p, "Content-Disposition", 19) == 0) {
        if ((size_t)(eol - v) < 9 || strncasecmp(v, "form-data", 9) != 0) return false;
        part->name = param(req, v, (size_t)(eol - v), "name");
        part->filename = param(req, v, (size_t)(eol - v), "filename");
      } else if (klen == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
        part->content_type = pq_req_strndup(req, v, (size_t)(eol - v));
      }
    }
    p = eol + 2;
  }
  return part->name != NULL;
}

pq_err pq_req_form(pq_req *req, pq_form_part *parts, size_t max, size_t *n) {
  *n = 0;
  const char *type = pq_req_header(req, "Content-Type");
  if (!type || strncasecmp(type, "multipart/form-data", 19) != 0)
    return pq_req_fail(req, PQ_ERR_UNSUPPORTED_MEDIA_TYPE, json_pack("{s:s}", "header", "Content-Type"),
                       "Content-Type must be multipart/form-data");
  const char *boundary = param(req, type, strlen(type), "boundary");
  if (!boundary || !*boundary || strlen(boundary) > 200) return bad(req, "no boundary in Content-Type");
  char delim[208];
  size_t dlen = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", boundary);
  const char *body = req->raw_body ? req->raw_body : "", *end = body + req->raw_len;
  /* the first delimiter may open the body, without the line break before it */
  const char *p = req->raw_len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0
                      ? body + dlen - 2
                      : memmem(body, req->raw_len, delim, dlen);
  if (!p) return bad(req, "no part starts");
  if (p != body + dlen - 2) p += dlen;
  for (;;) {
    if (end - p >= 2 && memcmp(p, "--", 2) == 0) return *n ? PQ_OK : bad(req, "no parts");
    if (end - p < 2 || memcmp(p, "\r\n", 2) != 0) return bad(req, "a delimiter is not followed by a line break");
    p += 2;
    const char *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!head_end) return bad(req, "a part's headers do not end");
    if (*n == max) return bad(req, "too many parts");
    pq_form_part *part = &parts[*n];
    memset(part, 0, sizeof *part);
    if (!part_headers(req, p, head_end, part)) return bad(req, "a part has no form-data name");
    const char *data = head_end + 4;
    const char *next = memmem(data, (size_t)(end - data), delim, dlen);
    if (!next) return bad(req, "the last part does not end with its boundary");
    part->data = data;
    part->len = (size_t)(next - data);
    (*n)++;
    p = next + dlen;
  }
}

const pq_form_part *pq_form_find(const pq_form_part *parts, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(parts[i].name, name) == 0) return &parts[i];
  return NULL;
}
