/* Operations on files (OpenAI's Files API, a batch's input and output) and
 * the removal of an ended job (a deleted response). */
#include "engine/internal.h"

pq_err pq__run_file_put(pq__batch *b, pq_op *op) {
  pq_file *f = op->in.file_put.file;
  if (!f || !f->id || !f->purpose || !f->filename) return PQ_ERR_INVALID_REQUEST;
  f->created_at = b->now;
  return b->c->ops->file_insert(b->c->wconn, f);
}

pq_err pq__run_file_delete(pq__batch *b, pq_op *op) { return b->c->ops->file_delete(b->c->wconn, op->in.file_delete.id); }

pq_err pq__run_job_delete(pq__batch *b, pq_op *op) {
  pq_job *job = NULL;
  pq_err result = b->c->ops->job_get(b->c->wconn, op->in.job_delete.job_id, 0, &job);
  /* a running job cannot go, nor can a step of another (its batch's results are its steps) */
  if (result == PQ_OK && (!pq_job_state_terminal(job->state) || job->parent_id)) result = PQ_ERR_INVALID_STATE;
  if (result == PQ_OK) result = b->c->ops->job_delete(b->c->wconn, job->number);
  pq_job_free(job);
  return result;
}
