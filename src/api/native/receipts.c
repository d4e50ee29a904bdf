/* GET /v1/jobs/{id}/receipt and GET /v1/receipts/key. */
#include <string.h>

#include "api/api.h"
#include "base/ids.h"
#include "model/receipt.h"

static const pq_receipt_key *signer(pq_req *req) { return pq_coord_config_of(req->coord)->receipt_key; }

json_t *pq_api_receipt_for(pq_req *req, const pq_job *job) {
  const pq_receipt_key *key = signer(req);
  if (!key) return NULL;
  pq_worker *w = NULL;
  if (job->worker_signature && job->worker_id) pq_coord_get_worker(req->coord, job->worker_id, &w);
  json_t *receipt = pq_receipt_issue(key, job, w ? w->public_key : NULL);
  pq_worker_free(w);
  return receipt;
}

pq_err pq_api_receipt_key(pq_req *req) {
  const pq_receipt_key *key = signer(req);
  if (!key) return pq_req_fail(req, PQ_ERR_NOT_FOUND, NULL, "this coordinator signs no receipts");
  char pk[64], id[17];
  pq_receipt_public_b64(key->public_key, pk, sizeof pk);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, key->public_key, sizeof key->public_key);
  sodium_bin2hex(id, sizeof id, digest, 8);
  return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:s}", "algorithm", "ed25519", "public_key", pk, "key_id", id));
}

pq_err pq_api_job_receipt(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_job *job = NULL;
  pq_err e = pq_api_their_job(req, id, &job);
  if (e == PQ_ERR_NOT_FOUND) return pq_api_no_such_job(req, id);
  if (e != PQ_OK) return e;
  if (job->state != PQ_JOB_COMPLETED) {
    e = pq_req_fail(req, PQ_ERR_INVALID_STATE, json_pack("{s:s}", "status", pq_job_state_name(job->state)),
                    "only a completed job has a receipt; this one is %s", pq_job_state_name(job->state));
    pq_job_free(job);
    return e;
  }
  json_t *receipt = pq_api_receipt_for(req, job);
  pq_job_free(job);
  if (!receipt) return pq_req_fail(req, PQ_ERR_NOT_FOUND, NULL, "this coordinator signs no receipts");
  return pq_req_reply(req, 200, receipt);
}
