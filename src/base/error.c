#include "base/error.h"

typedef struct {
  const char *code;
  const char *message;
  int status;
  bool retryable;
} pq__err_row;

static const pq__err_row err_rows[PQ_ERR__COUNT] = {
#define PQ__ERR_ROW(name, st, retry, msg) [PQ_ERR_##name] = {#name, msg, st, retry},
    PQ_ERROR_MAP(PQ__ERR_ROW)
#undef PQ__ERR_ROW
};

static const pq__err_row *row(pq_err e) {
  if ((int)e < 0 || e >= PQ_ERR__COUNT) return &err_rows[PQ_ERR_INTERNAL];
  return &err_rows[e];
}

const char *pq_err_code(pq_err e) { return row(e)->code; }
const char *pq_err_message(pq_err e) { return row(e)->message; }
int pq_err_http_status(pq_err e) { return row(e)->status; }
bool pq_err_retryable(pq_err e) { return row(e)->retryable; }
