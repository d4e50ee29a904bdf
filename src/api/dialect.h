/* A dialect: an API that speaks someone else's documented wire format over
 * the one core (the seed documents' APIs, the OpenAI door). Each lives in
 * its own folder and exports one descriptor; api/routes.c lists them. The
 * server and the command line learn everything about a dialect from it:
 * its routes, the shape of its errors, and its environment variables. */
#ifndef PQ_API_DIALECT_H
#define PQ_API_DIALECT_H

#include <stddef.h>

#include "engine/coord.h"
#include "http/router.h"
#include "model/job.h"

typedef struct pq_dialect {
  const char *name;     /* "000", "openai", ...: route names start with it */
  const char *title;    /* what it is, for people */
  const pq_route *routes;
  size_t n_routes;
  /* Its routes are served under this prefix too (the document's own URLs
   * behind its proxy: "/api"); NULL: none. The alias of route "d003.x" is
   * named "d003.api.x". */
  const char *alias_prefix;
  /* Maps the dialect's documented environment variables onto promptq's own
   * (PROMPTQ_*), which win when both are set; run before options are read.
   * Returns -1 and says why in why when a variable asks for what this build
   * cannot do. May be NULL. */
  int (*apply_environment)(char *why, size_t why_size);
  /* Runs once the engine is open, before the server listens (e.g. keys the
   * dialect's environment names); open: the server checks no credentials.
   * An error stops the server. May be NULL. */
  pq_err (*on_start)(pq_coord *coord, bool open);
  /* Stops what on_start started (a watcher thread), before the engine
   * closes. May be NULL. */
  void (*on_stop)(void);
} pq_dialect;

/* Every dialect this build serves, NULL-terminated (api/routes.c). */
extern const pq_dialect *const pq_dialects[];

/* Runs each dialect's apply_environment; -1 at the first refusal. */
int pq_dialects_apply_environment(char *why, size_t why_size);
/* Runs each dialect's on_start; the first error. */
pq_err pq_dialects_start(pq_coord *coord, bool open);
/* Runs each dialect's on_stop. */
void pq_dialects_stop(void);

/* ---- shared by dialects (api/dialect.c) ---- */

/* {"error": "message"}: the shape documents 000 and 001 use. */
json_t *pq_dialect_plain_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status);

/* How a document words the job states: queued, leased, completed, and one
 * word for every other end. */
typedef struct pq_status_words {
  const char *queued, *leased, *completed, *ended;
} pq_status_words;

const char *pq_status_word(const pq_status_words *w, pq_job_state s);
/* The state a word names (the `ended` word names failed), or -1. */
int pq_status_parse(const pq_status_words *w, const char *word);

#endif
