/* Completion webhooks: where a user (or one of its keys) is told that its
 * jobs ended, and each message sent there.
 *
 * A pq_webhook is an endpoint with its own signing secret. Its url is NULL
 * for the one row per owner that signs the messages sent to the URLs single
 * jobs name (webhook_url at submit). A pq_delivery is one message to one
 * URL, kept in the store until it is delivered or given up: the sender
 * (webhook/sender.c) retries it; its id is the Standard Webhooks webhook-id,
 * the same on every attempt.
 *
 * Both own every string they point to (pq_webhook_free, pq_delivery_free). */
#ifndef PQ_MODEL_WEBHOOK_H
#define PQ_MODEL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The events a subscription may ask for: a job that ended, named by its
 * state, and a batch (a job of kind "batch") that ended, whatever its state. */
#define PQ_WEBHOOK_EVENT_MAP(X)          \
  X(JOB_COMPLETED, "job.completed")      \
  X(JOB_FAILED, "job.failed")            \
  X(JOB_DEAD, "job.dead")                \
  X(JOB_EXPIRED, "job.expired")          \
  X(JOB_CANCELLED, "job.cancelled")      \
  X(BATCH_FINISHED, "batch.finished")

typedef struct pq_webhook {
  char *id;        /* "wh_<uuid>" */
  char *owner;     /* the user's id ("" on an open server) */
  char *key_id;    /* only jobs this key submitted; NULL: all the owner's */
  char *url;       /* NULL: the owner's secret for URLs jobs name */
  char *secret;    /* "whsec_" + base64 of 32 random bytes */
  char *events;    /* comma-separated event types, or "*" */
  int64_t created_at;
} pq_webhook;

#define PQ_DELIVERY_STATE_MAP(X) \
  X(PENDING, "pending")          \
  X(DELIVERED, "delivered")      \
  X(FAILED, "failed")            \
  X(CANCELLED, "cancelled")

typedef enum pq_delivery_state {
#define PQ__DELIVERY_ENUM(name, str) PQ_DELIVERY_##name,
  PQ_DELIVERY_STATE_MAP(PQ__DELIVERY_ENUM)
#undef PQ__DELIVERY_ENUM
} pq_delivery_state;

const char *pq_delivery_state_name(pq_delivery_state s);
int pq_delivery_state_parse(const char *name); /* -1 when unknown */

typedef struct pq_delivery {
  char *id;          /* "msg_<uuid>": the webhook-id header */
  char *webhook_id;  /* whose secret signs it */
  char *owner;
  char *job_id;      /* the job it tells of */
  char *url;
  char *event_type;  /* "job.completed", ... */
  char *payload;     /* the JSON body, exactly as signed */
  pq_delivery_state state;
  int attempts;
  int64_t next_at;   /* wall ms of the next attempt (pending) */
  int64_t created_at, updated_at;
  int last_status;   /* the receiver's last HTTP status; 0: none (no answer) */
  char *last_error;  /* why the last attempt failed; NULL after a success */
  int64_t retry_from; /* retries go on until the retry window after this (the event; a redelivery) */
  char *secret;      /* the webhook's secret: filled by the reads the sender uses (due, get) */
} pq_delivery;

void pq_webhook_free(pq_webhook *w);
void pq_webhook_free_array(pq_webhook **w, size_t n);
void pq_delivery_free(pq_delivery *d);
void pq_delivery_free_array(pq_delivery **d, size_t n);

/* A new secret: "whsec_" and the base64 of 32 random bytes. */
#define PQ_WEBHOOK_SECRET_LEN 50
void pq_webhook_secret_new(char out[PQ_WEBHOOK_SECRET_LEN + 1]);
/* The Standard Webhooks signature header's value, "v1,<base64 HMAC-SHA256>"
 * over "<id>.<timestamp>.<body>" keyed by the secret's bytes (the base64
 * after "whsec_"). Returns 0, or -1 for a secret that is not one. */
#define PQ_WEBHOOK_SIGNATURE_LEN 47
int pq_webhook_sign(const char *secret, const char *id, int64_t timestamp, const char *body, size_t body_len,
                    char out[PQ_WEBHOOK_SIGNATURE_LEN + 1]);

/* Does the subscription's event list (comma-separated, or "*") include event? */
bool pq_webhook_wants(const char *events, const char *event);

#endif
