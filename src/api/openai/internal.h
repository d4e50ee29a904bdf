/* What the files of the OpenAI door share (api/openai/ only): its error
 * shape, answers built from jobs, and the translation of OpenAI's chat
 * parameters into a native chat job. Every function answers or fails req
 * the way the door's routes do; nothing here owns memory beyond what it
 * returns. */
#ifndef PQ_API_OPENAI_INTERNAL_H
#define PQ_API_OPENAI_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "api/api.h"
#include "api/native/events.h"
#include "engine/kind.h"

#define PQ__OA_WAIT_MS (10 * 60 * 1000) /* a non-streamed answer waits this long at most */

/* OpenAI's error object {error: {message, type, param, code}} (the routes' render_error). */
json_t *pq__oa_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status);
/* 400 naming param, with OpenAI's code. */
pq_err pq__oa_bad_param(pq_req *req, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
pq_err pq__oa_model_not_found(pq_req *req, const char *model);
/* A job that ended without a result, as the client's error. */
pq_err pq__oa_job_failed(pq_req *req, const pq_job *job);
/* OpenAI's usage of a job (new reference); a priced job adds "cost" in USD. */
json_t *pq__oa_usage(const pq_job *job);
/* Answers OpenAI's list page {object: list, data, has_more, first_id,
 * last_id} of data (borrowed), which holds up to limit + 1 entries: one
 * more than limit says there are more. */
pq_err pq__oa_reply_page(pq_req *req, json_t *data, long limit);
/* One `data: {...}` line of a stream (takes obj). 0, or -1. */
int pq__oa_data_line(pq_event_stream *s, json_t *obj);

/* The generation parameters of body (OpenAI's names) as a native chat job's
 * params, for the parameters in accepted (a subset of pq_chat_params; nulls
 * are absent); max_completion_tokens is max_tokens. Refuses (400 naming it)
 * a parameter that no live worker of model honours. *out: new reference. */
pq_err pq__oa_chat_params(pq_req *req, json_t *body, const char *model, json_t **out);
/* Refuses, naming it, any key of body not in the NULL-terminated lists. */
pq_err pq__oa_only(pq_req *req, json_t *body, const char *const *a, const char *const *b);
/* Refuses image parts in messages when no live worker of model takes images. */
pq_err pq__oa_check_images(pq_req *req, json_t *messages, const char *model);
/* OpenAI's chat messages as the chat kind keeps them (text-only parts joined). New reference. */
json_t *pq__oa_messages(json_t *messages);
/* A completed chat job's choices, OpenAI-shaped: [{index, message: {role,
 * content, refusal, tool_calls?}, logprobs, finish_reason}]. New reference. */
json_t *pq__oa_choices(const pq_job *job);

/* For a batch's requests: one request body of an endpoint as a native job
 * body (*native, new reference), or an error recorded on req (the batch
 * clears it and records it against the line); and a completed job as that
 * endpoint's answer body (new reference). */
pq_err pq__oa_chat_native(pq_req *req, json_t *body, bool legacy, json_t **native);
json_t *pq__oa_chat_body(const pq_job *job, bool legacy);
pq_err pq__oa_embeddings_native(pq_req *req, json_t *body, json_t **native);
json_t *pq__oa_embeddings_body(const pq_job *job, const char *encoding_format);
pq_err pq__oa_response_native(pq_req *req, json_t *body, json_t **native);
json_t *pq__oa_response_body(const pq_job *job);

/* the routes' handlers */
pq_err pq__oa_chat(pq_req *req);
pq_err pq__oa_completions(pq_req *req);
pq_err pq__oa_embeddings(pq_req *req);
pq_err pq__oa_responses_create(pq_req *req);
pq_err pq__oa_responses_get(pq_req *req);
pq_err pq__oa_responses_delete(pq_req *req);
pq_err pq__oa_responses_cancel(pq_req *req);
pq_err pq__oa_responses_input_items(pq_req *req);
pq_err pq__oa_files_create(pq_req *req);
pq_err pq__oa_files_list(pq_req *req);
pq_err pq__oa_files_get(pq_req *req);
pq_err pq__oa_files_content(pq_req *req);
pq_err pq__oa_files_delete(pq_req *req);
pq_err pq__oa_batches_create(pq_req *req);
pq_err pq__oa_batches_list(pq_req *req);
pq_err pq__oa_batches_get(pq_req *req);
pq_err pq__oa_batches_cancel(pq_req *req);

#endif
