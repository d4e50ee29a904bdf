/* Worker backends: what turns a job's input into an output. Each backend is
 * a const ops table (echo today; OpenAI-compatible servers next). A backend
 * instance is shared by the worker's slots, so run() must be thread-safe. */
#ifndef PQ_WORKER_BACKEND_H
#define PQ_WORKER_BACKEND_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/job.h"

typedef struct pq_backend_config {
  int64_t echo_delay_ms;   /* echo: pause per token, to make streaming visible */
  const char *base_url;    /* openai: "http://127.0.0.1:8000/v1" */
  const char *api_key;     /* openai: sent as a Bearer token; may be empty */
  const char *upstream_model; /* openai: the name upstream knows; empty = the job's model */
  int64_t timeout_ms;      /* openai: one upstream request at most */
} pq_backend_config;

typedef struct pq_backend_result {
  char *output;          /* malloc'd text; may be partial after a cancel */
  bool output_is_json;   /* output is a JSON document (embeddings), not text */
  int64_t prompt_tokens, completion_tokens;
  bool failed;
  bool retryable;        /* for failures: may another attempt succeed? */
  char error_code[64];
  char error_message[256];
} pq_backend_result;

/* Streams a piece of output as it is produced (the backend keeps building
 * out->output as well). ctx is the agent's. delta is NULL for plain text of
 * the first choice; otherwise it is the whole piece (borrowed), an object of
 * some of "content", "index" (a choice other than the first), "tool_calls"
 * (OpenAI's streamed tool-call fragments), "logprobs" and "refusal", and
 * text/len are its content, if any. */
typedef void (*pq_backend_emit_fn)(void *ctx, const char *text, size_t len, json_t *delta);

/* A chat answer that is more than text: model/job.h (PQ_CHAT_RESULT_KEY). */

typedef struct pq_backend_ops {
  const char *name;
  /* The request parameters beyond the basic ones (max_tokens, temperature,
   * top_p, stop) that this backend honours, NULL-terminated; workers
   * advertise them, and the coordinator refuses a job that asks for one no
   * worker of its model honours (rather than dropping it). */
  const char *const *params;
  /* *ctx is the backend's; NULL is a fine value. Returns 0 or -1. */
  int (*create)(const pq_backend_config *cfg, void **ctx);
  void (*destroy)(void *ctx);
  /* kind: the job's kind ("chat", "embedding"; a kind the backend does not
   * run fails the job, not retryable); input: its input object (borrowed).
   * *cancel turns non-zero when the client cancelled the job: stop and
   * return what there is. */
  void (*run)(void *ctx, const char *kind, const char *model, json_t *input, volatile sig_atomic_t *cancel,
              pq_backend_emit_fn emit, void *emit_ctx, pq_backend_result *out);
} pq_backend_ops;

extern const pq_backend_ops pq_backend_echo;
extern const pq_backend_ops pq_backend_openai;

const pq_backend_ops *pq_backend_find(const char *name);
/* Fails out for a job kind this backend does not run. */
void pq_backend_unsupported_kind(pq_backend_result *out, const char *backend, const char *kind);
void pq_backend_result_clear(pq_backend_result *r);

#endif
