/* promptq error codes: one enum, defined once.
 *
 * Each row of PQ_ERROR_MAP gives the name (which is also the machine code a
 * client sees, e.g. "RATE_LIMIT_EXCEEDED"), the HTTP status, whether the
 * client may retry, and the default human message. 0 is success. */
#ifndef PQ_BASE_ERROR_H
#define PQ_BASE_ERROR_H

#include <stdbool.h>

#define PQ_ERROR_MAP(X)                                                                    \
  X(OK,                     200, false, "ok")                                              \
  X(INVALID_REQUEST,        400, false, "the request is invalid")                          \
  X(INVALID_JSON,           400, false, "the request body is not valid JSON")              \
  X(UNAUTHORIZED,           401, false, "authentication is required")                      \
  X(FORBIDDEN,              403, false, "this credential may not do that")                 \
  X(NOT_FOUND,              404, false, "no such resource")                                \
  X(METHOD_NOT_ALLOWED,     405, false, "this method is not allowed on this resource")     \
  X(LEASE_MISMATCH,         409, false, "the lease token is stale or not this worker's")   \
  X(INVALID_STATE,          409, false, "the job is not in a state that allows this")      \
  X(ALREADY_EXISTS,         409, false, "it exists already")                               \
  X(PAYLOAD_TOO_LARGE,      413, false, "the request body is too large")                   \
  X(UNSUPPORTED_MEDIA_TYPE, 415, false, "the request body must be application/json")      \
  X(URI_TOO_LONG,           414, false, "the request line is too long")                    \
  X(HEADERS_TOO_LARGE,      431, false, "the request headers are too large")               \
  X(IDEMPOTENCY_MISMATCH,   422, false, "the idempotency key was used for another request") \
  X(INSUFFICIENT_CREDITS,   402, false, "the available credit does not cover this job")     \
  X(BUDGET_EXCEEDED,        402, false, "this job would pass a spending budget")           \
  X(RATE_LIMIT_EXCEEDED,    429, true,  "too many requests")                               \
  X(QUEUE_QUOTA_EXCEEDED,   429, true,  "too many of your jobs are queued")                \
  X(STREAM_QUOTA_EXCEEDED,  429, true,  "too many open streams for this credential")       \
  X(INTERNAL,               500, true,  "internal error")                                  \
  X(NO_MEMORY,              503, true,  "out of memory")                                   \
  X(STORE_FAILED,           503, true,  "the job store failed")                            \
  X(SHUTTING_DOWN,          503, true,  "the server is shutting down")                     \
  X(TIMEOUT,                504, true,  "the job did not finish in time")                  \
  X(STALE,                  500, true,  "state changed while waiting (internal)")          \
  X(UNAVAILABLE,            503, true,  "the coordinator could not be reached")

typedef enum pq_err {
#define PQ__ERR_ENUM(name, status, retry, msg) PQ_ERR_##name,
  PQ_ERROR_MAP(PQ__ERR_ENUM)
#undef PQ__ERR_ENUM
  PQ_ERR__COUNT
} pq_err;

#define PQ_OK PQ_ERR_OK

/* All return static strings; never NULL, also for out-of-range values. */
const char *pq_err_code(pq_err e);     /* "RATE_LIMIT_EXCEEDED" */
const char *pq_err_message(pq_err e);  /* "too many requests" */
int pq_err_http_status(pq_err e);      /* 429 */
bool pq_err_retryable(pq_err e);

#endif
