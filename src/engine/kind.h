/* Job kinds: what a job's input means, what a worker is handed, and what
 * happens when a job of that kind ends.
 *
 * A kind is a const pq_job_kind in its own file under engine/kinds/ and one
 * line in the registry (engine/kinds/registry.c). The kind is a stored
 * column of the job, never guessed from its input.
 *
 * on_terminal runs on the writer thread from transition(), inside the
 * transaction that ends the job, once per job: this is where a parent job
 * (a council) learns that a child ended. An error it returns that is fatal
 * (pq__fatal) rolls the whole batch back. */
#ifndef PQ_ENGINE_KIND_H
#define PQ_ENGINE_KIND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/jcheck.h"
#include "model/job.h"

/* What the engine lets a kind do inside the transaction (engine/ops_kinds.c). */
typedef struct pq__batch pq_kind_ctx;

typedef struct pq_job_kind {
  const char *name;
  /* The input fields a submit may give (NULL: the common ones: system,
   * prompt, messages, params, embeddings). */
  const char *const *input_fields;
  /* The kind workers are told they run (NULL: this kind's name): a kind
   * that only adds what a door keeps beside a chat (a response's
   * conversation) runs on any worker that runs chats. */
  const char *worker_kind;
  /* The model of a job that names none (NULL: a submit must name one). */
  const char *default_model;
  /* Checks a submitted input (a JSON object of the fields the client gave)
   * and may normalise it in place (drop what this kind ignores, fill in
   * defaults); fills why and returns PQ_ERR_INVALID_REQUEST when this kind
   * cannot run it. */
  pq_err (*validate)(json_t *input, pq_jerr *why);
  /* The input a worker is handed (new reference), or NULL to hand it the
   * stored input unchanged. */
  json_t *(*worker_input)(const pq_job *job, const json_t *input);
  /* The job reached a terminal state (job->state) in this transaction. May be NULL. */
  pq_err (*on_terminal)(pq_kind_ctx *ctx, const pq_job *job);

  /* Jobs the coordinator runs itself, through child jobs that workers run
   * (a council). NULL for jobs workers run. on_submit is called once the job
   * is inserted, in the submit's transaction: it must take the job out of
   * the queue (pq_kind_start) and start its children. n_steps: children the
   * submit brought along, already queued (a batch's requests). Such a job's lease
   * has no worker; when it lapses the job fails with code TIMEOUT, and a
   * cancel ends it at once (on_terminal then stops its children). */
  pq_err (*on_submit)(pq_kind_ctx *ctx, pq_job *job, size_t n_steps);
  /* A child of a job of this kind (parent, locked for this transaction)
   * reached a terminal state. */
  pq_err (*on_child_terminal)(pq_kind_ctx *ctx, pq_job *parent, const pq_job *child);
  /* on_child_terminal is called after this job itself ended too (a
   * cancelled batch keeps counting the requests that were running). */
  bool follows_children_after_end;
  /* Its children come with its submit (a batch's requests), not from
   * on_submit: a copy of the job alone would have no work (no retry). */
  bool steps_from_submit;
  /* A child streamed output entries ({"content": ...} JSON texts). May be NULL. */
  pq_err (*on_child_output)(pq_kind_ctx *ctx, pq_job *parent, const pq_job *child, const char *const *data,
                            size_t n);
} pq_job_kind;

/* ---- what a kind's hooks may do, in the transaction they run in ---- */

/* The transaction's wall clock. */
int64_t pq_kind_now(pq_kind_ctx *ctx);
/* A job, read for change (locked until the commit where the store locks rows). */
pq_err pq_kind_get(pq_kind_ctx *ctx, const char *id, pq_job **out);
/* A job the coordinator runs starts: queued -> leased, with no worker, until
 * deadline (wall ms). */
pq_err pq_kind_start(pq_kind_ctx *ctx, pq_job *job, int64_t deadline);
/* Queues child (built by the caller: model, kind, input, limits) as a step of
 * parent: it gets parent's owner and a parent_id. Takes child; its id is
 * copied to child_id (PQ_UUID_LEN + 1). */
pq_err pq_kind_submit_child(pq_kind_ctx *ctx, const pq_job *parent, pq_job *child, char *child_id);
/* Writes the job's mutable fields (its output, tokens, ...) without changing
 * its state. */
pq_err pq_kind_save(pq_kind_ctx *ctx, pq_job *job);
/* Ends a job the coordinator runs (completed, failed, ...); on_terminal runs. */
pq_err pq_kind_finish(pq_kind_ctx *ctx, pq_job *job, pq_job_state to);
/* Appends one entry (kind: "progress", "chunk", ...; data: JSON text) to the
 * job's event log, under its current attempt. */
pq_err pq_kind_event(pq_kind_ctx *ctx, const pq_job *job, const char *kind, const char *data);
/* Cancels a job: a queued one ends now, a leased one is asked to stop. A job
 * that already ended is left alone. */
pq_err pq_kind_cancel(pq_kind_ctx *ctx, const char *job_id);
/* Charges parent's owner micros for what child delivered after parent ended
 * (its hold was settled then), once per child. */
pq_err pq_kind_charge(pq_kind_ctx *ctx, const pq_job *parent, const pq_job *child, int64_t micros);
/* micros less the operator's batch discount. */
int64_t pq_kind_batch_price(pq_kind_ctx *ctx, int64_t micros);
/* A job's steps by number after `after`, at most limit (pq_job_free_array). */
pq_err pq_kind_children(pq_kind_ctx *ctx, const char *parent_id, int64_t after, int64_t limit, pq_job ***out,
                        size_t *n);
/* Does some live worker serve this model now? */
bool pq_kind_model_served(pq_kind_ctx *ctx, const char *model);

/* The chat kind's generation parameters (input.params), OpenAI's names; the
 * basic ones every backend honours; a backend advertises which others it
 * honours (worker/backend.h). */
extern const char *const pq_chat_params[];
extern const char *const pq_chat_basic_params[];
#define PQ_CHAT_MAX_CHOICES 16
/* The endpoints whose requests a batch may hold (OpenAI's paths), NULL-terminated. */
extern const char *const pq_batch_endpoints[];

/* The kind called name, or NULL when none is registered. NULL name: the default. */
const pq_job_kind *pq_job_kind_find(const char *name);
/* The kind of a job (the default for a job that names none; never NULL for a stored job). */
const pq_job_kind *pq_job_kind_of(const pq_job *job);
/* Registers a kind beyond the built-in ones (tests; plugins later). Not
 * thread-safe: call before the coordinator opens. -1 when full or a kind of
 * that name exists. */
int pq_job_kind_register(const pq_job_kind *kind);
/* Each registered kind's name, in order (for errors and docs). */
size_t pq_job_kind_names(const char **names, size_t max);

#endif
