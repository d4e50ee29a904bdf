/* The council kind's operator settings (engine/kinds/council.c; the design
 * is in docs/council.md). A council is a job the coordinator runs itself:
 * each member's answer in each round is a child job that ordinary workers
 * lease, and every step (the next round, the agreement, the synthesis, the
 * end) is taken in the transaction that ends a child, so a council survives
 * any restart exactly where it was. */
#ifndef PQ_ENGINE_KINDS_COUNCIL_H
#define PQ_ENGINE_KINDS_COUNCIL_H

#include <stddef.h>
#include <stdint.h>

#define PQ_COUNCIL_KIND "council"
#define PQ_COUNCIL_MAX_MEMBERS 16

typedef struct pq_council_defaults {
  const char *const *members; /* the models that may sit on a council; none: a request names its own */
  size_t n_members;
  const char *const *synthesizers; /* who writes the answer, in fallback order; none: the members */
  size_t n_synthesizers;
  int quorum;                 /* answers a round needs at least; 0: a majority of the members */
  int64_t member_timeout_ms;  /* per answer: queued or running, and the most a request may ask */
  int max_tokens;             /* per answer */
  int64_t max_total_tokens;   /* the council's spending cap in tokens; 0: none */
  const char *embedding_model; /* when a request names none */
  int context_tokens;         /* a session's earlier questions and decisions, at most (about 4 bytes a token) */
} pq_council_defaults;

/* Sets the operator's settings (copied). Call before the coordinator opens;
 * 0, or -1 when out of memory. */
int pq_council_configure(const pq_council_defaults *d);
/* The settings in force (borrowed). */
const pq_council_defaults *pq_council_settings(void);

#endif
