/* The asynchronous prompt queue (shared/seeds/000): POST /auth, POST /jobs,
 * GET /jobs/{job_id}, over the native jobs. Jobs run on the default model
 * (--default-model); ids are the jobs' integer numbers; a bad token is 403. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/json_in.h"

json_t *pq_dialect_plain_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  (void)req, (void)err, (void)details, (void)status;
  return json_pack("{s:s}", "error", message);
}

/* The job routes answer a missing or bad token 403 ("Invalid JWT Token"). */
json_t *pq_d000_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  if (err == PQ_ERR_UNAUTHORIZED) *status = 403;
  return pq_dialect_plain_error(req, err, message, details, status);
}

pq_err pq_d000_auth(pq_req *req) { return pq_api_token(req); } /* the same login, the same JWT */

static pq_err submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 201, json_pack("{s:I}", "job_id", (json_int_t)req->op.out.job->number));
}

pq_err pq_d000_submit(pq_req *req) {
  static const char *const fields[] = {"system", "prompt", NULL};
  const char *system = NULL, *prompt = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the job", fields)) ||
      (e = pq_json_string(req, req->body, "system", false, 0, &system)) ||
      (e = pq_json_string(req, req->body, "prompt", false, 0, &prompt)))
    return e;
  if ((!system || !*system) && (!prompt || !*prompt))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "'system' or 'prompt' must hold a prompt");
  json_t *native = json_pack("{s:s,s:s?,s:s?}", "model", pq_api_settings_of(req)->default_model, "system",
                             system && *system ? system : NULL, "prompt", prompt && *prompt ? prompt : NULL);
  e = pq_api_submit_for_caller(req, native, submitted);
  json_decref(native);
  return e;
}

pq_err pq_d000_get(pq_req *req) {
  const char *param = pq_req_param(req, "job_id");
  pq_job *job = NULL;
  pq_err e = pq_api_their_job_by_number(req, param, &job);
  if (e != PQ_OK) {
    return e == PQ_ERR_NOT_FOUND ? pq_req_fail(req, e, NULL, "job %s not found", param ? param : "") : e;
  }
  if (!pq_job_state_terminal(job->state)) {
    pq_job_free(job);
    return pq_req_reply(req, 202, json_pack("{s:s,s:n}", "status", "In progress", "response"));
  }
  json_t *body;
  if (job->state == PQ_JOB_COMPLETED) {
    char *text = pq_api_output_text(job);
    body = json_pack("{s:s,s:s}", "status", "Completed", "response", text ? text : "");
    free(text);
  } else { /* not in the document: a job that ended without an answer */
    body = json_pack("{s:s,s:n,s:s}", "status", "Failed", "response", "error",
                     job->error_message ? job->error_message : pq_api_end_code(job));
  }
  pq_job_free(job);
  return pq_req_reply(req, 200, body);
}
