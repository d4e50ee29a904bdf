/* libFuzzer: signed receipts (model/receipt.c). A job made of the fuzzer's
 * bytes gets a real receipt, which must verify; the same receipt with one
 * field changed (the fuzzer picks which, and to what) must not; and JSON the
 * fuzzer writes as a receipt never verifies. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/receipt.h"

static pq_receipt_key key;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (sodium_init() < 0) abort();
  crypto_sign_keypair(key.public_key, key.secret);
  return 0;
}

/* The next NUL-free piece of the input, up to a 0xff byte. */
static char *piece(const uint8_t **p, const uint8_t *end) {
  const uint8_t *start = *p;
  while (*p < end && **p != 0xff) (*p)++;
  size_t n = (size_t)(*p - start);
  if (*p < end) (*p)++;
  char *s = malloc(n + 1);
  for (size_t i = 0; s && i < n; i++) s[i] = start[i] ? (char)start[i] : ' ';
  if (s) s[n] = '\0';
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *raw = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  const char *why = NULL;
  if (raw && pq_receipt_verify(raw, key.public_key, &why) == PQ_OK) abort(); /* a forgery verified */
  json_decref(raw);
  if (size < 2) return 0;
  const uint8_t *p = data + 1, *end = data + size;
  pq_job job = {.state = PQ_JOB_COMPLETED, .number = data[0], .created_at = 1, .finished_at = 2, .leased_at = 1,
                .prompt_tokens = data[0], .completion_tokens = size};
  char *model = piece(&p, end), *input = piece(&p, end), *output = piece(&p, end), *worker = piece(&p, end);
  memcpy(job.id, "01a20000-0000-7000-8000-000000000000", sizeof job.id);
  job.model = model;
  job.input = input;
  job.output = output;
  job.worker_id = worker;
  json_t *receipt = model && input && output && worker ? pq_receipt_issue(&key, &job, NULL) : NULL;
  if (receipt) {
    if (pq_receipt_verify(receipt, key.public_key, &why) != PQ_OK) abort(); /* an honest receipt failed */
    /* change one field: the fuzzer picks which */
    size_t n = json_object_size(receipt), pick = data[0] % (n ? n : 1), i = 0;
    const char *name;
    json_t *value;
    json_object_foreach(receipt, name, value) {
      if (i++ != pick || strcmp(name, "signature") == 0) continue;
      json_t *changed = json_is_string(value) ? json_sprintf("%s~", json_string_value(value))
                                              : json_integer(json_integer_value(value) + 1);
      if (!json_is_string(value) && !json_is_integer(value)) {
        json_decref(changed);
        changed = json_string("changed");
      }
      json_object_set_new(receipt, name, changed);
      if (pq_receipt_verify(receipt, key.public_key, &why) == PQ_OK) abort(); /* a tampered receipt verified */
      break;
    }
    json_decref(receipt);
  }
  free(model);
  free(input);
  free(output);
  free(worker);
  return 0;
}
