/* The council's shared pieces for every door that serves one (native,
 * document 002, the command line's server side). api/council.c. */
#ifndef PQ_API_COUNCIL_H
#define PQ_API_COUNCIL_H

#include <jansson.h>
#include <stdbool.h>

#include "api/api.h"

/* Readies a validated council input for the queue: refuses it (503) when
 * fewer members than its quorum are served by a live worker, and adds
 * "context" (the session's earlier questions and decisions, oldest first,
 * within the operator's token budget) when it names a sessionId. Only the
 * caller's own councils count. */
pq_err pq_api_council_prepare(pq_req *req, json_t *input);
bool pq_api_is_council(const pq_job *job);
/* What the council cost its owner in USD (the sum of its children's costs; 0 unpriced). */
double pq_api_council_cost_usd(const pq_job *job);
/* The council's output parsed: the deliberation so far, or its result (new reference; {} when none). */
json_t *pq_api_council_state(const pq_job *job);
/* The whole deliberation: config, rounds with every answer and the
 * agreement matrices, the synthesis attempts, the decision (new reference). */
json_t *pq_api_council_transcript(const pq_job *job);

#endif
