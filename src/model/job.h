/* The job model and its state machine.
 *
 *   queued -> leased -> completed | failed | cancelled | dead
 *   queued -> cancelled | expired
 *   leased -> queued (retry after a failure or a lapsed lease)
 *
 * A pq_job owns every string it points to; free it with pq_job_free(). */
#ifndef PQ_MODEL_JOB_H
#define PQ_MODEL_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "base/ids.h"

#define PQ_JOB_STATE_MAP(X) \
  X(QUEUED, "queued")       \
  X(LEASED, "leased")       \
  X(COMPLETED, "completed") \
  X(FAILED, "failed")       \
  X(CANCELLED, "cancelled") \
  X(DEAD, "dead")           \
  X(EXPIRED, "expired")

typedef enum pq_job_state {
#define PQ__STATE_ENUM(name, str) PQ_JOB_##name,
  PQ_JOB_STATE_MAP(PQ__STATE_ENUM)
#undef PQ__STATE_ENUM
  PQ_JOB__STATE_COUNT
} pq_job_state;

const char *pq_job_state_name(pq_job_state s);
/* Returns the state for a name, or -1 when unknown. */
int pq_job_state_parse(const char *name);
bool pq_job_state_terminal(pq_job_state s);
/* The one place that says which transitions exist. */
bool pq_job_transition_allowed(pq_job_state from, pq_job_state to);

/* The kind of a job that names none (engine/kind.h has the registry). */
#define PQ_JOB_KIND_DEFAULT "chat"

typedef struct pq_job {
  int64_t number;              /* the integer id, assigned by the store */
  char id[PQ_UUID_LEN + 1];    /* the public id, a UUIDv7 */
  char *kind;                  /* "chat", "embedding", ...: what input means; NULL: the default */
  char *model;
  char *input;                 /* JSON object text: {system, prompt, messages, params} */
  int priority;                /* higher runs first */
  pq_job_state state;
  int attempts;
  int max_attempts;
  int64_t lease_timeout_ms;
  int64_t created_at, updated_at;
  int64_t not_before;          /* earliest lease time (retry backoff); 0 = now */
  int64_t expires_at;          /* ttl deadline while queued; 0 = never */
  int64_t leased_at, finished_at;
  char *worker_id;
  char *lease_token;
  int64_t lease_expires_at;
  bool cancel_requested;
  char *output;                /* JSON value text, NULL until completed */
  int64_t prompt_tokens, completion_tokens;
  char *error_code, *error_message;
  char *idempotency_key;
  char *request_hash;          /* hash of the submit body, for idempotency checks */
  char *owner;                 /* the submitting user's id; "" when the server runs --open */
  char *worker_signature;      /* base64 Ed25519 over pq_receipt_worker_message(); may be NULL */
  char *parent_id;             /* the job this one is a step of (a council's); NULL: none. Set at insert */
  int64_t held_micros;         /* what its owner's hold reserved at submit (0: no price, no hold) */
  int64_t cost_micros;         /* what it cost its owner, once it ended (model/money.h) */
  char *requirements;          /* what a worker must offer to lease it (model/route.h: canonical JSON); NULL: any */
  char *webhook_url;           /* told when it ends (model/webhook.h); NULL: only its owner's subscriptions */
  char *key_id;                /* the API key that submitted it (key-scoped subscriptions); NULL: none */
} pq_job;

pq_job *pq_job_new(void);      /* zeroed; NULL on OOM */
void pq_job_free(pq_job *job); /* NULL is fine */
void pq_job_free_array(pq_job **jobs, size_t n);

/* The output of a chat job that is more than text: an object with
 * "finish_reason" (the upstream's), "content" (the first choice's text or
 * null) and, when there are any, "tool_calls", "logprobs", "refusal" and
 * "choices" (every choice, OpenAI-shaped, when n > 1). A plain answer that
 * stopped by itself stays a JSON string. */
#define PQ_CHAT_RESULT_KEY "finish_reason"

/* A job's output (JSON text) as text: a string's value; the content of a
 * chat answer that is more than text (an object with "finish_reason":
 * tools, logprobs, n choices); any other JSON as itself. NULL for none.
 * malloc'd. */
char *pq_job_output_text(const char *output);
/* A model name anyone may give: no control characters (the scheduler's lane
 * keys join a model and a requirement class with one, engine/routing.c). */
bool pq_job_model_name_ok(const char *name);
/* Replaces *field with a copy of value (NULL clears). Returns 0, or -1 on OOM. */
int pq_set_str(char **field, const char *value);

/* A file a client uploaded (OpenAI's Files API) or a batch wrote: UTF-8
 * text (JSONL). Owns its strings. */
typedef struct pq_file {
  char *id;                    /* "file-<uuid>" */
  char *owner, *purpose, *filename;
  int64_t bytes, created_at;
  char *content;               /* NULL when read without it (listings) */
} pq_file;
void pq_file_free(pq_file *f); /* NULL is fine */
void pq_file_free_array(pq_file **files, size_t n);

typedef struct pq_worker {
  char id[PQ_UUID_LEN + 1];
  char *name;
  char *models;                /* JSON array text */
  char *capabilities;          /* JSON object text */
  char *public_key;            /* base64 Ed25519 the worker signs results with; may be NULL */
  char *owner;                 /* the user whose credential registered it; "" when the server runs --open */
  bool online;
  int64_t created_at, last_seen_at;
} pq_worker;

void pq_worker_free(pq_worker *w);

typedef struct pq_user {
  char id[PQ_UUID_LEN + 1];
  char *name;
  char *password_hash;         /* argon2id, libsodium's string form */
  bool admin;
  bool disabled;
  int64_t created_at;
} pq_user;

void pq_user_free(pq_user *u);

/* An API key as stored: never the key itself, only its SHA-256. */
typedef struct pq_api_key {
  char id[PQ_UUID_LEN + 1];
  char *user_id;
  char *prefix;                /* the first characters, to recognise it in a list */
  char *hash;                  /* hex SHA-256 of the whole key */
  char *scope;                 /* "client", "worker" or "admin" */
  char *name;
  int64_t created_at, expires_at, revoked_at; /* 0: never / not */
} pq_api_key;

void pq_api_key_free(pq_api_key *k);

#endif
