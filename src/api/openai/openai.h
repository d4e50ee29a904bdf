/* The OpenAI-compatible front door: /v1/chat/completions and /v1/models,
 * answered through the same queue as every other job (so they get
 * priorities, limits and accounting), in OpenAI's wire format and error shape. */
#ifndef PQ_API_OPENAI_OPENAI_H
#define PQ_API_OPENAI_OPENAI_H

#include <jansson.h>

#include "http/request.h"

pq_err pq_openai_chat(pq_req *req);
pq_err pq_openai_models(pq_req *req);
pq_err pq_openai_embeddings(pq_req *req);
pq_err pq_openai_model(pq_req *req);

/* {"error": {"message", "type", "param", "code"}} */
json_t *pq_openai_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status);

#endif
