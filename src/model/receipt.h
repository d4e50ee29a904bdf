/* Signed receipts: proof of what a job was asked and answered.
 *
 * A receipt's body names the job, worker and model, the SHA-256 of the input
 * and of the output, the usage and the times; it is signed with the
 * coordinator's Ed25519 key over its canonical form (JSON, keys sorted, no
 * spaces). Receipts are derived from the stored job, so asking twice gives
 * the same bytes; anyone holding the public key can check one offline, and
 * changing any field breaks the signature.
 *
 *   {"receipt": {...}, "signature": {"algorithm": "ed25519", "public_key": B64, "value": B64}} */
#ifndef PQ_MODEL_RECEIPT_H
#define PQ_MODEL_RECEIPT_H

#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>

#include "base/error.h"
#include "model/job.h"

typedef struct pq_receipt_key {
  unsigned char secret[crypto_sign_SECRETKEYBYTES];
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
} pq_receipt_key;

/* An Ed25519 key kept in path (hex), made (0600) on first use: the
 * coordinator's DATA/receipt.key, or a worker's --signing-key. */
pq_err pq_receipt_key_load(const char *path, pq_receipt_key *key, char *err, size_t err_size);

/* What a worker signs for a job it completes:
 * "promptq-receipt-v1:<job id>:<input sha256>:<output sha256>". */
void pq_receipt_worker_message(const char *job_id, const char *input, const char *output, char *out, size_t size);
/* Checks a worker's base64 signature of that message with its base64 key. */
bool pq_receipt_worker_verify(const char *public_key_b64, const char *signature_b64, const char *job_id,
                              const char *input, const char *output);
/* Signs it: base64 into out (at least 96 bytes). */
void pq_receipt_worker_sign(const pq_receipt_key *key, const char *job_id, const char *input, const char *output,
                            char *out, size_t size);

/* The signed receipt of a completed job (new reference), or NULL.
 * worker_public_key (base64, may be NULL): the key the job's worker signed with. */
json_t *pq_receipt_issue(const pq_receipt_key *key, const pq_job *job, const char *worker_public_key);

/* PQ_OK when receipt is signed by public_key over exactly its fields (and,
 * when it carries one, the worker's signature holds too); otherwise
 * PQ_ERR_INVALID_REQUEST with the reason. */
pq_err pq_receipt_verify(json_t *receipt, const unsigned char public_key[crypto_sign_PUBLICKEYBYTES],
                         const char **why);

/* Base64 (standard, padded) of the public key, into out (at least 64 bytes). */
void pq_receipt_public_b64(const unsigned char public_key[crypto_sign_PUBLICKEYBYTES], char *out, size_t size);
/* Decodes a base64 public key. 0 or -1. */
int pq_receipt_public_parse(const char *b64, unsigned char out[crypto_sign_PUBLICKEYBYTES]);

#endif
