#include "model/receipt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"

#define B64 sodium_base64_VARIANT_ORIGINAL

pq_err pq_receipt_key_load(const char *path, pq_receipt_key *key, char *err, size_t err_size) {
  char hex[2 * crypto_sign_SECRETKEYBYTES + 2];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, hex, sizeof hex - 1);
    close(fd);
    size_t bin_len = 0;
    if (n < 2 * crypto_sign_SECRETKEYBYTES ||
        sodium_hex2bin(key->secret, sizeof key->secret, hex, (size_t)n, "\n", &bin_len, NULL) != 0 ||
        bin_len != sizeof key->secret) {
      snprintf(err, err_size, "%s is not an Ed25519 secret key", path);
      return PQ_ERR_INVALID_REQUEST;
    }
    crypto_sign_ed25519_sk_to_pk(key->public_key, key->secret);
    sodium_memzero(hex, sizeof hex);
    return PQ_OK;
  }
  if (errno != ENOENT) {
    snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
    return PQ_ERR_STORE_FAILED;
  }
  crypto_sign_keypair(key->public_key, key->secret); /* first start */
  sodium_bin2hex(hex, sizeof hex, key->secret, sizeof key->secret);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  size_t len = strlen(hex);
  bool ok = fd >= 0 && write(fd, hex, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  sodium_memzero(hex, sizeof hex);
  if (!ok) {
    snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
    return PQ_ERR_STORE_FAILED;
  }
  return PQ_OK;
}

void pq_receipt_public_b64(const unsigned char public_key[crypto_sign_PUBLICKEYBYTES], char *out, size_t size) {
  sodium_bin2base64(out, size, public_key, crypto_sign_PUBLICKEYBYTES, B64);
}

int pq_receipt_public_parse(const char *b64, unsigned char out[crypto_sign_PUBLICKEYBYTES]) {
  size_t n = 0;
  return b64 && sodium_base642bin(out, crypto_sign_PUBLICKEYBYTES, b64, strlen(b64), NULL, &n, NULL, B64) == 0 &&
                 n == crypto_sign_PUBLICKEYBYTES
             ? 0
             : -1;
}

static void sha256_hex(const char *text, char out[65]) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, (const unsigned char *)(text ? text : ""), text ? strlen(text) : 0);
  sodium_bin2hex(out, 65, d, sizeof d);
}

static json_t *time_or_null(int64_t ms) {
  char buf[PQ_TIME_BUF];
  return ms ? json_string(pq_format_time(ms, buf, sizeof buf)) : json_null();
}

void pq_receipt_worker_message(const char *job_id, const char *input, const char *output, char *out, size_t size) {
  char in_hash[65], out_hash[65];
  sha256_hex(input, in_hash);
  sha256_hex(output, out_hash);
  snprintf(out, size, "promptq-receipt-v1:%s:%s:%s", job_id, in_hash, out_hash);
}

bool pq_receipt_worker_verify(const char *public_key_b64, const char *signature_b64, const char *job_id,
                              const char *input, const char *output) {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
  size_t n = 0;
  if (pq_receipt_public_parse(public_key_b64, pk) != 0 || !signature_b64 ||
      sodium_base642bin(sig, sizeof sig, signature_b64, strlen(signature_b64), NULL, &n, NULL, B64) != 0 ||
      n != sizeof sig)
    return false;
  char message[256];
  pq_receipt_worker_message(job_id, input, output, message, sizeof message);
  return crypto_sign_verify_detached(sig, (const unsigned char *)message, strlen(message), pk) == 0;
}

void pq_receipt_worker_sign(const pq_receipt_key *key, const char *job_id, const char *input, const char *output,
                            char *out, size_t size) {
  char message[256];
  unsigned char sig[crypto_sign_BYTES];
  pq_receipt_worker_message(job_id, input, output, message, sizeof message);
  crypto_sign_detached(sig, NULL, (const unsigned char *)message, strlen(message), key->secret);
  sodium_bin2base64(out, size, sig, sizeof sig, B64);
}

/* The bytes that are signed: the body, keys sorted, nothing optional. */
static char *canonical(json_t *body) { return json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS); }

json_t *pq_receipt_issue(const pq_receipt_key *key, const pq_job *job, const char *worker_public_key) {
  if (job->state != PQ_JOB_COMPLETED) return NULL;
  char in_hash[65], out_hash[65], pk[64];
  sha256_hex(job->input, in_hash);
  sha256_hex(job->output, out_hash);
  json_t *body = json_pack("{s:i,s:s,s:s?,s:s,s:s,s:s,s:{s:I,s:I},s:o,s:o}", "version", 1, "job_id", job->id,
                           "worker_id", job->worker_id, "model", job->model, "input_sha256", in_hash,
                           "output_sha256", out_hash, "usage", "prompt_tokens", (json_int_t)job->prompt_tokens,
                           "completion_tokens", (json_int_t)job->completion_tokens, "started_at",
                           time_or_null(job->leased_at), "completed_at", time_or_null(job->finished_at));
  if (body && job->worker_signature && worker_public_key) { /* the worker's own word, under ours */
    json_object_set_new(body, "worker_signature", json_string(job->worker_signature));
    json_object_set_new(body, "worker_public_key", json_string(worker_public_key));
  }
  char *bytes = body ? canonical(body) : NULL;
  if (!bytes) {
    json_decref(body);
    return NULL;
  }
  unsigned char sig[crypto_sign_BYTES];
  char sig_b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, B64)];
  crypto_sign_detached(sig, NULL, (const unsigned char *)bytes, strlen(bytes), key->secret);
  free(bytes);
  sodium_bin2base64(sig_b64, sizeof sig_b64, sig, sizeof sig, B64);
  pq_receipt_public_b64(key->public_key, pk, sizeof pk);
  return json_pack("{s:o,s:{s:s,s:s,s:s}}", "receipt", body, "signature", "algorithm", "ed25519",
                   "public_key", pk, "value", sig_b64);
}

pq_err pq_receipt_verify(json_t *receipt, const unsigned char public_key[crypto_sign_PUBLICKEYBYTES],
                         const char **why) {
  json_t *body = json_object_get(receipt, "receipt"), *sig = json_object_get(receipt, "signature");
  const char *alg = json_string_value(json_object_get(sig, "algorithm"));
  const char *value = json_string_value(json_object_get(sig, "value"));
  unsigned char raw[crypto_sign_BYTES];
  size_t n = 0;
  if (!json_is_object(body) || !alg || !value) {
    *why = "not a receipt: it needs 'receipt' and 'signature'";
    return PQ_ERR_INVALID_REQUEST;
  }
  if (strcmp(alg, "ed25519") != 0) {
    *why = "the signature is not ed25519";
    return PQ_ERR_INVALID_REQUEST;
  }
  if (sodium_base642bin(raw, sizeof raw, value, strlen(value), NULL, &n, NULL, B64) != 0 || n != sizeof raw) {
    *why = "the signature is not valid base64 of 64 bytes";
    return PQ_ERR_INVALID_REQUEST;
  }
  char *bytes = canonical(body);
  int bad = !bytes || crypto_sign_verify_detached(raw, (const unsigned char *)bytes, strlen(bytes), public_key);
  free(bytes);
  if (bad) {
    *why = "the signature does not match: the receipt was changed, or signed by another key";
    return PQ_ERR_INVALID_REQUEST;
  }
  const char *wsig = json_string_value(json_object_get(body, "worker_signature"));
  if (wsig || json_object_get(body, "worker_public_key")) {
    char message[256], pkbuf[64];
    unsigned char wpk[crypto_sign_PUBLICKEYBYTES], raw_sig[crypto_sign_BYTES];
    size_t m = 0;
    snprintf(pkbuf, sizeof pkbuf, "%s", json_string_value(json_object_get(body, "worker_public_key")) ?: "");
    snprintf(message, sizeof message, "promptq-receipt-v1:%s:%s:%s",
             json_string_value(json_object_get(body, "job_id")) ?: "",
             json_string_value(json_object_get(body, "input_sha256")) ?: "",
             json_string_value(json_object_get(body, "output_sha256")) ?: "");
    if (pq_receipt_public_parse(pkbuf, wpk) != 0 || !wsig ||
        sodium_base642bin(raw_sig, sizeof raw_sig, wsig, strlen(wsig), NULL, &m, NULL, B64) != 0 ||
        m != sizeof raw_sig ||
        crypto_sign_verify_detached(raw_sig, (const unsigned char *)message, strlen(message), wpk) != 0) {
      *why = "the worker's signature does not match";
      return PQ_ERR_INVALID_REQUEST;
    }
  }
  return PQ_OK;
}
