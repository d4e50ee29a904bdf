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
#include <stddef.h>

#include "base/error.h"
#include "base/jcheck.h"
#include "model/job.h"

/* What the engine lets a kind do inside the transaction (engine/ops_*.c). */
typedef struct pq__batch pq_kind_ctx;

typedef struct pq_job_kind {
  const char *name;
  /* Checks a submitted input (a JSON object of the fields the client gave)
   * and may normalise it in place (drop what this kind ignores); fills why
   * and returns PQ_ERR_INVALID_REQUEST when this kind cannot run it. */
  pq_err (*validate)(json_t *input, pq_jerr *why);
  /* The input a worker is handed (new reference), or NULL to hand it the
   * stored input unchanged. */
  json_t *(*worker_input)(const pq_job *job, const json_t *input);
  /* The job reached a terminal state (job->state) in this transaction. May be NULL. */
  pq_err (*on_terminal)(pq_kind_ctx *ctx, const pq_job *job);
} pq_job_kind;

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
