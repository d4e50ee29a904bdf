/* Routing by capability: what a worker offers and what a job requires.
 *
 * A worker says what it offers in its capabilities object (at register,
 * and again on any heartbeat): "context_length" and "max_output_tokens"
 * (positive integers) and "labels" (an object of short strings, such as
 * {"gpu": "h100", "region": "eu"}). A job may carry requirements:
 * "min_context" (a positive integer) and "labels" that must all be among
 * the worker's, with the same values. A worker that does not say its
 * context length meets no min_context.
 *
 * Requirements are kept in one canonical text (keys sorted, compact), so
 * equal requirements are equal strings: the scheduler gives each distinct
 * text of a model a lane of its own (engine/sched.h), and a lease looks only
 * at the lanes its worker meets, never at the jobs in them.
 *
 * The structs own their strings (pq_capset_free). */
#ifndef PQ_MODEL_ROUTE_H
#define PQ_MODEL_ROUTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PQ_ROUTE_LABELS_MAX 16
#define PQ_ROUTE_LABEL_LEN 64

/* A worker's offer or a job's requirement: context is context_length or
 * min_context (0: not said); labels are sorted by key. */
typedef struct pq_capset {
  int64_t context, max_output_tokens;
  char *keys[PQ_ROUTE_LABELS_MAX], *values[PQ_ROUTE_LABELS_MAX];
  size_t n_labels;
} pq_capset;

void pq_capset_free(pq_capset *r); /* its strings; the struct is the caller's */

/* Checks a worker's capabilities object (the fields above; others are
 * left alone) and reads them into *out. Returns 0, or -1 (*out offering nothing) with a message in err
 * naming the field ("capabilities.labels.gpu ..."). caps NULL: nothing offered. */
int pq_route_offer(const json_t *caps, pq_capset *out, char *err, size_t err_len);

/* Checks a job's requirements object and writes its canonical text into
 * *canonical (malloc'd; NULL when it requires nothing). Returns 0, or -1 with
 * a message in err. */
int pq_route_require(const json_t *req, char **canonical, char *err, size_t err_len);
/* Reads canonical (or any valid) requirements text; NULL or bad: none. */
void pq_route_require_text(const char *text, pq_capset *out);

/* Does the offer meet the requirement? When it does not and why is not
 * NULL, says what is missing ("label gpu=h100", "a context of 32768 tokens"). */
bool pq_route_meets(const pq_capset *offer, const pq_capset *req, char *why, size_t why_len);

#endif
