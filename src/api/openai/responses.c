/* OpenAI's Responses API over response jobs: a response is a chat job (kind
 * "response") whose input keeps, beside the conversation a worker runs,
 * what this API shows (its own input items, instructions, the response it
 * continues, store, metadata, its tools as given). So a response is queued,
 * retried, priced and receipted like any job, survives a restart, and a
 * background one is simply not waited for. Ids are "resp_" + the job's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai/internal.h"
#include "http/json_in.h"

#define PREFIX "resp_"
#define MAX_ITEMS 2048

static const char *const create_fields[] = {
    "model", "input", "instructions", "previous_response_id", "store", "background", "stream", "tools",
    "tool_choice", "max_output_tokens", "temperature", "top_p", "parallel_tool_calls", "text", "user",
    "metadata", "truncation", "include", "top_logprobs", NULL};

static pq_err not_found(pq_req *req, const char *id) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s}", "code", "not_found", "field", "response_id"),
                     "Response with id '%s' not found.", id ? id : "");
}

/* ---- the request, as a chat ---- */

/* A content part of an input message, as the chat kind keeps it. */
static json_t *chat_part(json_t *part) {
  const char *type = json_string_value(json_object_get(part, "type"));
  if (!type) return NULL;
  if (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 || strcmp(type, "text") == 0) {
    json_t *text = json_object_get(part, "text");
    return json_is_string(text) ? json_pack("{s:s,s:O}", "type", "text", "text", text) : NULL;
  }
  if (strcmp(type, "input_image") == 0) {
    json_t *url = json_object_get(part, "image_url");
    if (!json_is_string(url)) return NULL;
    json_t *image = json_pack("{s:O}", "url", url);
    if (json_is_string(json_object_get(part, "detail"))) json_object_set(image, "detail", json_object_get(part, "detail"));
    return json_pack("{s:s,s:o}", "type", "image_url", "image_url", image);
  }
  return NULL;
}

static pq_err item_error(pq_req *req, size_t i, const char *what) {
  char param[32];
  snprintf(param, sizeof param, "input[%zu]", i);
  return pq__oa_bad_param(req, param, "invalid_request", "input[%zu]: %s", i, what);
}

/* The input items (a string, or messages, function calls and their outputs) as chat messages. */
static pq_err items_to_messages(pq_req *req, json_t *input, json_t *messages) {
  if (json_is_string(input)) {
    json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "user", "content", input));
    return PQ_OK;
  }
  if (!json_is_array(input) || json_array_size(input) == 0 || json_array_size(input) > MAX_ITEMS)
    return pq__oa_bad_param(req, "input", "invalid_request", "'input' must be a string or a list of 1 to %d items",
                            MAX_ITEMS);
  size_t i;
  json_t *item;
  json_t *calls = NULL; /* the assistant message the function calls in a row join */
  json_array_foreach(input, i, item) {
    if (!json_is_object(item)) return item_error(req, i, "an item must be an object");
    const char *type = json_string_value(json_object_get(item, "type"));
    const char *role = json_string_value(json_object_get(item, "role"));
    if (!type || strcmp(type, "message") == 0) {
      static const char *const roles[] = {"user", "assistant", "system", "developer", NULL};
      bool known = false;
      for (int r = 0; role && roles[r]; r++) known |= strcmp(role, roles[r]) == 0;
      if (!known) return item_error(req, i, "a message's role must be user, assistant, system or developer");
      json_t *content = json_object_get(item, "content"), *converted;
      if (json_is_string(content)) {
        converted = json_incref(content);
      } else if (json_is_array(content) && json_array_size(content)) {
        converted = json_array();
        size_t k;
        json_t *part;
        json_array_foreach(content, k, part) {
          json_t *p = chat_part(part);
          if (!p) {
            json_decref(converted);
            return item_error(req, i, "a content part must be input_text, output_text or input_image {image_url}");
          }
          json_array_append_new(converted, p);
        }
      } else {
        return item_error(req, i, "a message's content must be a string or a list of parts");
      }
      json_array_append_new(messages, json_pack("{s:s,s:o}", "role", role, "content", converted));
      calls = NULL;
    } else if (strcmp(type, "function_call") == 0) {
      json_t *call_id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
      json_t *args = json_object_get(item, "arguments");
      if (!json_is_string(call_id) || !json_is_string(name) || !json_is_string(args))
        return item_error(req, i, "a function_call needs call_id, name and arguments");
      if (!calls) {
        json_t *m = json_pack("{s:s,s:[]}", "role", "assistant", "tool_calls");
        json_array_append_new(messages, m);
        calls = json_object_get(m, "tool_calls");
      }
      json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:O}}", "id", call_id, "type", "function", "function",
                                             "name", name, "arguments", args));
    } else if (strcmp(type, "function_call_output") == 0) {
      json_t *call_id = json_object_get(item, "call_id"), *output = json_object_get(item, "output");
      if (!json_is_string(call_id) || !json_is_string(output))
        return item_error(req, i, "a function_call_output needs call_id and output (a string)");
      json_array_append_new(messages, json_pack("{s:s,s:O,s:O}", "role", "tool", "tool_call_id", call_id, "content", output));
      calls = NULL;
    } else {
      return pq__oa_bad_param(req, "input", "unsupported_parameter",
                              "input[%zu]: items of type '%s' are not supported (messages, function_call and "
                              "function_call_output are)",
                              i, type);
    }
  }
  return PQ_OK;
}

/* The Responses API's function tools ({type, name, description, parameters, strict}) as chat tools. */
static pq_err chat_tools(pq_req *req, json_t *tools, json_t **out) {
  *out = NULL;
  if (!tools || json_is_null(tools)) return PQ_OK;
  if (!json_is_array(tools)) return pq__oa_bad_param(req, "tools", "invalid_request", "'tools' must be a list");
  if (json_array_size(tools) == 0) return PQ_OK;
  json_t *list = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!type || strcmp(type, "function") != 0) {
      json_decref(list);
      return pq__oa_bad_param(req, "tools", "unsupported_parameter",
                              "tools[%zu]: only function tools are supported here, not '%s'", i, type ? type : "?");
    }
    json_t *fn = json_object();
    static const char *const keys[] = {"name", "description", "parameters", "strict", NULL};
    for (int k = 0; keys[k]; k++)
      if (json_object_get(t, keys[k]) && !json_is_null(json_object_get(t, keys[k])))
        json_object_set(fn, keys[k], json_object_get(t, keys[k]));
    json_array_append_new(list, json_pack("{s:s,s:o}", "type", "function", "function", fn));
  }
  *out = list;
  return PQ_OK;
}

static json_t *chat_tool_choice(json_t *choice) {
  if (!json_is_object(choice)) return json_incref(choice);
  const char *name = json_string_value(json_object_get(choice, "name"));
  return name ? json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name) : json_incref(choice);
}

/* text.format as response_format. */
static pq_err chat_format(pq_req *req, json_t *text, json_t **out) {
  *out = NULL;
  json_t *format = json_object_get(text, "format");
  if (!text || json_is_null(text) || !format) return PQ_OK;
  const char *type = json_string_value(json_object_get(format, "type"));
  if (type && strcmp(type, "text") == 0) return PQ_OK;
  if (type && strcmp(type, "json_object") == 0) {
    *out = json_pack("{s:s}", "type", "json_object");
    return PQ_OK;
  }
  if (type && strcmp(type, "json_schema") == 0 && json_is_string(json_object_get(format, "name"))) {
    json_t *schema = json_object();
    static const char *const keys[] = {"name", "schema", "strict", "description", NULL};
    for (int k = 0; keys[k]; k++)
      if (json_object_get(format, keys[k])) json_object_set(schema, keys[k], json_object_get(format, keys[k]));
    *out = json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", schema);
    return PQ_OK;
  }
  return pq__oa_bad_param(req, "text", "invalid_request",
                          "'text.format' must be {type: text}, {type: json_object} or {type: json_schema, name, schema}");
}

/* A job's own output as the assistant's turn in the conversation that follows it. */
static json_t *assistant_turn(const pq_job *job) {
  json_t *choices = pq__oa_choices(job);
  json_t *m = json_object_get(json_array_get(choices, 0), "message");
  json_t *turn = json_pack("{s:s}", "role", "assistant");
  json_t *content = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
  if (json_is_string(content)) json_object_set(turn, "content", content);
  if (json_is_array(calls)) json_object_set(turn, "tool_calls", calls);
  if (!json_object_get(turn, "content") && !json_object_get(turn, "tool_calls"))
    json_object_set_new(turn, "content", json_string(""));
  json_decref(choices);
  return turn;
}

static json_t *meta_of(const pq_job *job, json_t **input) {
  *input = job->input ? json_loads(job->input, 0, NULL) : NULL;
  return json_object_get(*input, "response");
}

/* The caller's stored response, by its public id; NULL after answering 404. */
static pq_err their_response(pq_req *req, const char *public_id, pq_job **out) {
  *out = NULL;
  if (!public_id || strncmp(public_id, PREFIX, strlen(PREFIX)) != 0) return not_found(req, public_id);
  pq_job *job = NULL;
  pq_err e = pq_api_their_job(req, public_id + strlen(PREFIX), &job);
  if (e == PQ_ERR_NOT_FOUND) return not_found(req, public_id);
  if (e != PQ_OK) return e;
  json_t *input;
  json_t *meta = meta_of(job, &input);
  bool stored = job->kind && strcmp(job->kind, "response") == 0 && json_is_true(json_object_get(meta, "store"));
  json_decref(input);
  if (!stored) {
    pq_job_free(job);
    return not_found(req, public_id);
  }
  *out = job;
  return PQ_OK;
}

/* The conversation a response continues: its messages (less its own
 * instructions, which do not carry over) and its answer. */
static pq_err continue_from(pq_req *req, const char *previous, json_t *messages) {
  pq_job *prev = NULL;
  pq_err e = their_response(req, previous, &prev);
  if (e != PQ_OK) {
    if (req->error_details) json_object_set_new(req->error_details, "field", json_string("previous_response_id"));
    return e;
  }
  if (prev->state != PQ_JOB_COMPLETED) {
    e = pq__oa_bad_param(req, "previous_response_id", "invalid_request",
                         "Previous response '%s' has not completed (it is %s).", previous,
                         pq_job_state_name(prev->state));
    pq_job_free(prev);
    return e;
  }
  json_t *input;
  json_t *meta = meta_of(prev, &input);
  bool skip_first = json_is_string(json_object_get(meta, "instructions"));
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(input, "messages"), i, m) if (i > 0 || !skip_first) json_array_append(messages, m);
  json_array_append_new(messages, assistant_turn(prev));
  json_decref(input);
  pq_job_free(prev);
  return PQ_OK;
}

typedef struct {
  char id[64]; /* resp_<job id> */
  bool stream;
  int64_t seq;           /* the stream's sequence_number */
  bool message_open;     /* output_item.added sent for the message */
  size_t sent;           /* bytes of text streamed */
} resp_state;

static json_t *response_json(const pq_job *job);

static pq_err answer_done(pq_req *req, const pq_job *job, void *ctx) {
  resp_state *st = ctx;
  if (!job)
    return pq_req_fail(req, PQ_ERR_TIMEOUT, json_pack("{s:s}", "code", "timeout"),
                       "the response %s has not finished; it keeps running (GET /v1/responses/%s)", st->id, st->id);
  return pq_req_reply(req, 200, response_json(job));
}

/* ---- streaming, in the Responses API's typed events ---- */

static int event(pq_event_stream *s, resp_state *st, const char *type, json_t *data) {
  if (!data) return -1;
  json_object_set_new(data, "type", json_string(type));
  json_object_set_new(data, "sequence_number", json_integer(st->seq++));
  char *text = json_dumps(data, JSON_COMPACT);
  json_decref(data);
  if (!text) return -1;
  char head[96];
  int n = snprintf(head, sizeof head, "event: %s\ndata: ", type);
  int rc = pq_event_stream_append(s, head, (size_t)n) || pq_event_stream_append(s, text, strlen(text)) ||
           pq_event_stream_append(s, "\n\n", 2);
  free(text);
  return rc;
}

static json_t *text_part(const char *text) {
  return json_pack("{s:s,s:s,s:[]}", "type", "output_text", "text", text, "annotations");
}

static int open_message(pq_event_stream *s, resp_state *st, const char *msg_id) {
  if (st->message_open) return 0;
  st->message_open = true;
  return event(s, st, "response.output_item.added",
               json_pack("{s:i,s:{s:s,s:s,s:s,s:s,s:[]}}", "output_index", 0, "item", "id", msg_id, "type", "message",
                         "status", "in_progress", "role", "assistant", "content")) ||
         event(s, st, "response.content_part.added",
               json_pack("{s:s,s:i,s:i,s:o}", "item_id", msg_id, "output_index", 0, "content_index", 0, "part",
                         text_part("")));
}

static int text_delta(pq_event_stream *s, resp_state *st, const char *msg_id, const char *text, size_t len) {
  if (len == 0) return 0;
  st->sent += len;
  return open_message(s, st, msg_id) ||
         event(s, st, "response.output_text.delta",
               json_pack("{s:s,s:i,s:i,s:s%,s:[]}", "item_id", msg_id, "output_index", 0, "content_index", 0, "delta",
                         text, len, "logprobs"));
}

static int resp_emit(void *ctx, pq_ev_kind kind, const char *id, const pq_job *job, const pq_job_event *ev) {
  (void)id;
  pq_event_stream *s = ctx;
  resp_state *st = s->format;
  char msg_id[80];
  snprintf(msg_id, sizeof msg_id, "msg_%s", st->id + strlen(PREFIX));
  if (kind == PQ_EV_LEASED) return 0;
  if (kind == PQ_EV_CHUNK) {
    json_t *d = json_loads(ev->data, 0, NULL);
    const char *text = json_string_value(json_object_get(d, "content"));
    int rc = !json_object_get(d, "index") && text ? text_delta(s, st, msg_id, text, strlen(text)) : 0;
    json_decref(d);
    return rc;
  }
  if (kind != PQ_EV_FINAL) return 0;
  json_t *resp = response_json(job), *output = json_object_get(resp, "output");
  int rc = 0;
  size_t i;
  json_t *item;
  json_array_foreach(output, i, item) {
    const char *type = json_string_value(json_object_get(item, "type"));
    if (rc) break;
    if (strcmp(type, "message") == 0) {
      const char *text = json_string_value(json_object_get(json_array_get(json_object_get(item, "content"), 0), "text"));
      size_t len = text ? strlen(text) : 0;
      if (len > st->sent) rc = text_delta(s, st, msg_id, text + st->sent, len - st->sent);
      if (!rc) rc = open_message(s, st, msg_id);
      if (!rc)
        rc = event(s, st, "response.output_text.done",
                   json_pack("{s:s,s:I,s:i,s:s,s:[]}", "item_id", msg_id, "output_index", (json_int_t)i, "content_index",
                             0, "text", text ? text : "", "logprobs")) ||
             event(s, st, "response.content_part.done",
                   json_pack("{s:s,s:I,s:i,s:o}", "item_id", msg_id, "output_index", (json_int_t)i, "content_index", 0,
                             "part", text_part(text ? text : ""))) ||
             event(s, st, "response.output_item.done", json_pack("{s:I,s:O}", "output_index", (json_int_t)i, "item", item));
    } else { /* a function call, whole */
      json_t *added = json_deep_copy(item);
      json_object_set_new(added, "arguments", json_string(""));
      json_object_set_new(added, "status", json_string("in_progress"));
      const char *item_id = json_string_value(json_object_get(item, "id"));
      rc = event(s, st, "response.output_item.added", json_pack("{s:I,s:o}", "output_index", (json_int_t)i, "item", added)) ||
           event(s, st, "response.function_call_arguments.delta",
                 json_pack("{s:s,s:I,s:O}", "item_id", item_id, "output_index", (json_int_t)i, "delta",
                           json_object_get(item, "arguments"))) ||
           event(s, st, "response.function_call_arguments.done",
                 json_pack("{s:s,s:I,s:O}", "item_id", item_id, "output_index", (json_int_t)i, "arguments",
                           json_object_get(item, "arguments"))) ||
           event(s, st, "response.output_item.done", json_pack("{s:I,s:O}", "output_index", (json_int_t)i, "item", item));
    }
  }
  const char *status = json_string_value(json_object_get(resp, "status"));
  const char *type = strcmp(status, "completed") == 0    ? "response.completed"
                     : strcmp(status, "incomplete") == 0 ? "response.incomplete"
                                                          : "response.failed";
  if (!rc) rc = event(s, st, type, json_pack("{s:O}", "response", resp));
  json_decref(resp);
  s->ended = true;
  return rc;
}

static pq_err submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  resp_state *st = req->state;
  const pq_job *job = req->op.out.job;
  snprintf(st->id, sizeof st->id, PREFIX "%s", job->id);
  json_t *input;
  json_t *meta = meta_of(job, &input);
  bool background = json_is_true(json_object_get(meta, "background"));
  json_decref(input);
  if (!st->stream) {
    if (background) return pq_req_reply(req, 200, response_json(job));
    return pq_api_answer_when_done(req, job->id, PQ__OA_WAIT_MS, answer_done, st);
  }
  pq_event_stream *s;
  pq_err e = pq_event_stream_start(req, job->id, NULL, "text/event-stream", resp_emit, st, &s);
  if (e != PQ_OK) return e;
  s->cur.started = true;
  s->cancel_if_abandoned = !background; /* a background response outlives its stream */
  json_t *created = response_json(job);
  json_t *running = json_deep_copy(created);
  json_object_set_new(running, "status", json_string("in_progress"));
  return event(s, st, "response.created", json_pack("{s:o}", "response", created)) ||
                 event(s, st, "response.in_progress", json_pack("{s:o}", "response", running))
             ? PQ_ERR_NO_MEMORY
             : PQ_OK;
}

static pq_err check_fields(pq_req *req, json_t *body, bool *store, bool *background, bool *stream) {
  pq_err e;
  *store = true;
  *background = *stream = false;
  if ((e = pq__oa_only(req, body, create_fields, NULL)) || (e = pq_json_bool(req, body, "store", store)) ||
      (e = pq_json_bool(req, body, "background", background)) || (e = pq_json_bool(req, body, "stream", stream)))
    return e;
  if (*background && !*store)
    return pq__oa_bad_param(req, "background", "invalid_request", "a background response must be stored (store: true)");
  json_t *truncation = json_object_get(body, "truncation");
  if (truncation && !json_is_null(truncation) &&
      (!json_is_string(truncation) || strcmp(json_string_value(truncation), "disabled") != 0))
    return pq__oa_bad_param(req, "truncation", "unsupported_parameter", "only truncation 'disabled' is supported");
  json_t *include = json_object_get(body, "include");
  if (include && !json_is_null(include) && json_array_size(include) > 0)
    return pq__oa_bad_param(req, "include", "unsupported_parameter", "'include' asks for nothing this server returns");
  json_t *instructions = json_object_get(body, "instructions"), *metadata = json_object_get(body, "metadata");
  if (instructions && !json_is_null(instructions) && !json_is_string(instructions))
    return pq__oa_bad_param(req, "instructions", "invalid_request", "'instructions' must be a string");
  if (metadata && !json_is_null(metadata) && (!json_is_object(metadata) || json_object_size(metadata) > 16))
    return pq__oa_bad_param(req, "metadata", "invalid_request", "'metadata' must be an object of at most 16 keys");
  return PQ_OK;
}

/* The request as a native response job; *stream when it asks to be streamed. */
static pq_err response_native(pq_req *req, json_t *body, json_t **out, bool *stream) {
  const char *model = NULL, *previous = NULL;
  bool store, background;
  pq_err e;
  *out = NULL;
  if ((e = pq_json_string(req, body, "model", true, 128, &model)) ||
      (e = check_fields(req, body, &store, &background, stream)) ||
      (e = pq_json_string(req, body, "previous_response_id", false, 128, &previous)))
    return e;
  json_t *input = json_object_get(body, "input");
  if (!input) return pq__oa_bad_param(req, "input", "invalid_request", "'input' is required");
  json_t *messages = json_array(), *chat = json_object(), *tools = NULL, *format = NULL, *params = NULL;
  const char *instructions = json_string_value(json_object_get(body, "instructions"));
  if (instructions) json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "system", "content", instructions));
  if ((previous && (e = continue_from(req, previous, messages))) || (e = items_to_messages(req, input, messages)) ||
      (e = chat_tools(req, json_object_get(body, "tools"), &tools)) ||
      (e = chat_format(req, json_object_get(body, "text"), &format)) || (e = pq__oa_check_images(req, messages, model)))
    goto out;
  /* the chat parameters, by their chat names */
  if (tools) json_object_set(chat, "tools", tools);
  if (format) json_object_set(chat, "response_format", format);
  json_t *choice = json_object_get(body, "tool_choice");
  if (choice && !json_is_null(choice)) json_object_set_new(chat, "tool_choice", chat_tool_choice(choice));
  static const char *const same[] = {"temperature", "top_p", "parallel_tool_calls", "user", NULL};
  for (int k = 0; same[k]; k++)
    if (json_object_get(body, same[k])) json_object_set(chat, same[k], json_object_get(body, same[k]));
  if (json_object_get(body, "max_output_tokens"))
    json_object_set(chat, "max_tokens", json_object_get(body, "max_output_tokens"));
  json_t *top = json_object_get(body, "top_logprobs");
  if (top && !json_is_null(top)) {
    json_object_set_new(chat, "logprobs", json_true());
    json_object_set(chat, "top_logprobs", top);
  }
  if ((e = pq__oa_chat_params(req, chat, model, &params))) {
    const char *field = req->error_details ? json_string_value(json_object_get(req->error_details, "field")) : NULL;
    if (field && (strcmp(field, "max_tokens") == 0 || strcmp(field, "response_format") == 0))
      json_object_set_new(req->error_details, "field",
                          json_string(strcmp(field, "max_tokens") == 0 ? "max_output_tokens" : "text"));
    goto out;
  }
  if (!pq_coord_model_served(req->coord, model)) {
    e = pq__oa_model_not_found(req, model);
    goto out;
  }
  json_t *meta = json_pack("{s:O,s:b,s:b}", "items", input, "store", store, "background", background);
  static const char *const kept[] = {"instructions", "previous_response_id", "metadata", "tools", "tool_choice",
                                     "text", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls",
                                     "user", NULL};
  for (int k = 0; kept[k]; k++) {
    json_t *v = json_object_get(body, kept[k]);
    if (v && !json_is_null(v)) json_object_set(meta, kept[k], v);
  }
  *out = json_pack("{s:s,s:s,s:o,s:o,s:o}", "model", model, "kind", "response", "messages", pq__oa_messages(messages),
                   "params", params, "response", meta);
  params = NULL;
  if (!*out) e = PQ_ERR_NO_MEMORY;
out:
  json_decref(messages);
  json_decref(chat);
  json_decref(tools);
  json_decref(format);
  json_decref(params);
  return e;
}

pq_err pq__oa_responses_create(pq_req *req) {
  json_t *native = NULL;
  bool stream = false;
  pq_err e = response_native(req, req->body, &native, &stream);
  if (e != PQ_OK) return e;
  resp_state *st = pq_req_alloc(req, sizeof *st);
  if (!st) {
    json_decref(native);
    return PQ_ERR_NO_MEMORY;
  }
  memset(st, 0, sizeof *st);
  st->stream = stream;
  req->state = st;
  pq_api_webhook_from_metadata(json_object_get(req->body, "metadata"), native);
  e = pq_api_submit_for_caller(req, native, submitted);
  json_decref(native);
  return e;
}

pq_err pq__oa_response_native(pq_req *req, json_t *body, json_t **native) {
  bool stream = false;
  pq_err e = response_native(req, body, native, &stream);
  json_t *meta = json_object_get(*native, "response");
  if (e == PQ_OK && (stream || json_is_true(json_object_get(meta, "background")))) {
    json_decref(*native);
    *native = NULL;
    e = pq__oa_bad_param(req, stream ? "stream" : "background", "unsupported_parameter",
                         "'%s' is not supported in a batch", stream ? "stream" : "background");
  }
  return e;
}

json_t *pq__oa_response_body(const pq_job *job) { return response_json(job); }

/* ---- the response object ---- */

static const char *status_of(const pq_job *job, const char *finish) {
  switch (job->state) {
    case PQ_JOB_QUEUED: return "queued";
    case PQ_JOB_LEASED: return "in_progress";
    case PQ_JOB_COMPLETED: return finish && strcmp(finish, "length") == 0 ? "incomplete" : "completed";
    case PQ_JOB_CANCELLED: return "cancelled";
    default: return "failed";
  }
}

static json_t *or_null(json_t *v) { return v ? json_incref(v) : json_null(); }

/* v (a new reference), or the default (taken) when v is absent. */
static json_t *or_default(json_t *v, json_t *dflt) {
  if (!v) return dflt;
  json_decref(dflt);
  return json_incref(v);
}

static json_t *response_json(const pq_job *job) {
  json_t *input;
  json_t *meta = meta_of(job, &input);
  json_t *output = json_array(), *usage = json_null(), *error = json_null(), *incomplete = json_null();
  char finish_reason[32] = "";
  const char *finish = NULL;
  if (job->state == PQ_JOB_COMPLETED) {
    json_t *choices = pq__oa_choices(job), *choice = json_array_get(choices, 0);
    json_t *m = json_object_get(choice, "message");
    snprintf(finish_reason, sizeof finish_reason, "%s",
             json_string_value(json_object_get(choice, "finish_reason")) ? json_string_value(json_object_get(choice, "finish_reason")) : "");
    finish = finish_reason;
    const char *text = json_string_value(json_object_get(m, "content"));
    json_t *calls = json_object_get(m, "tool_calls");
    if ((text && *text) || !json_array_size(calls)) {
      char msg_id[80];
      snprintf(msg_id, sizeof msg_id, "msg_%s", job->id);
      json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:s,s:[o]}", "id", msg_id, "type", "message", "status",
                                              "completed", "role", "assistant", "content",
                                              text_part(text ? text : "")));
    }
    size_t k;
    json_t *call;
    json_array_foreach(calls, k, call) {
      char fc_id[96];
      snprintf(fc_id, sizeof fc_id, "fc_%s_%zu", job->id, k);
      json_t *fn = json_object_get(call, "function");
      json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:O,s:O,s:O}", "id", fc_id, "type", "function_call",
                                              "status", "completed", "call_id", json_object_get(call, "id"), "name",
                                              json_object_get(fn, "name"), "arguments",
                                              json_object_get(fn, "arguments")));
    }
    json_decref(choices);
    usage = json_pack("{s:I,s:{s:i},s:I,s:{s:i},s:I}", "input_tokens", (json_int_t)job->prompt_tokens,
                      "input_tokens_details", "cached_tokens", 0, "output_tokens", (json_int_t)job->completion_tokens,
                      "output_tokens_details", "reasoning_tokens", 0, "total_tokens",
                      (json_int_t)(job->prompt_tokens + job->completion_tokens));
    if (job->cost_micros > 0) json_object_set_new(usage, "cost", json_real(pq_micros_to_usd(job->cost_micros)));
    if (finish && strcmp(finish, "length") == 0) incomplete = json_pack("{s:s}", "reason", "max_output_tokens");
  } else if (pq_job_state_terminal(job->state) && job->state != PQ_JOB_CANCELLED) {
    error = json_pack("{s:s,s:s}", "code", "server_error", "message",
                      job->error_message ? job->error_message : "the response ended without an answer");
  }
  char id[64];
  snprintf(id, sizeof id, PREFIX "%s", job->id);
  json_t *r = json_pack(
      "{s:s,s:s,s:I,s:s,s:b,s:o,s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:o}", "id", id, "object",
      "response", "created_at", (json_int_t)(job->created_at / 1000), "status", status_of(job, finish), "background",
      json_is_true(json_object_get(meta, "background")), "error", error, "incomplete_details", incomplete,
      "instructions", or_null(json_object_get(meta, "instructions")), "max_output_tokens",
      or_null(json_object_get(meta, "max_output_tokens")), "model", job->model, "output", output,
      "parallel_tool_calls", or_default(json_object_get(meta, "parallel_tool_calls"), json_true()),
      "previous_response_id", or_null(json_object_get(meta, "previous_response_id")), "store",
      json_is_true(json_object_get(meta, "store")), "temperature",
      or_default(json_object_get(meta, "temperature"), json_integer(1)), "text",
      or_default(json_object_get(meta, "text"), json_pack("{s:{s:s}}", "format", "type", "text")), "tool_choice",
      or_default(json_object_get(meta, "tool_choice"), json_string("auto")), "tools",
      or_default(json_object_get(meta, "tools"), json_array()), "truncation", "disabled", "usage", usage, "user",
      or_null(json_object_get(meta, "user")), "metadata", or_default(json_object_get(meta, "metadata"), json_object()),
      "top_p", or_default(json_object_get(meta, "top_p"), json_integer(1)));
  json_decref(input);
  return r;
}

/* ---- retrieve, delete, cancel, input items ---- */

pq_err pq__oa_responses_get(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_response(req, pq_req_param(req, "id"), &job);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, response_json(job));
  pq_job_free(job);
  return e;
}

static pq_err deleted(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  if (req->op.out.result == PQ_ERR_INVALID_STATE)
    return pq__oa_bad_param(req, "response_id", "invalid_request",
                            "Response '%s' is still in progress (cancel it first) or a request of a batch, which "
                            "its batch's output needs.",
                            id);
  if (req->op.out.result == PQ_ERR_NOT_FOUND) return not_found(req, id);
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "response.deleted", "deleted", 1));
}

pq_err pq__oa_responses_delete(pq_req *req) {
  pq_job *job = NULL;
  const char *id = pq_req_param(req, "id");
  pq_err e = their_response(req, id, &job);
  if (e != PQ_OK) return e;
  pq_job_free(job);
  req->op.kind = PQ_OP_JOB_DELETE;
  req->op.in.job_delete.job_id = id + strlen(PREFIX);
  pq_req_run_op(req, deleted);
  return PQ_OK;
}

static pq_err cancelled(pq_req *req) {
  if (req->op.out.result == PQ_ERR_NOT_FOUND) return not_found(req, pq_req_param(req, "id"));
  if (req->op.out.result != PQ_OK && req->op.out.result != PQ_ERR_INVALID_STATE) return req->op.out.result;
  pq_job *job = NULL;
  pq_err e = their_response(req, pq_req_param(req, "id"), &job); /* as it is now */
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, response_json(job));
  pq_job_free(job);
  return e;
}

pq_err pq__oa_responses_cancel(pq_req *req) {
  pq_job *job = NULL;
  const char *id = pq_req_param(req, "id");
  pq_err e = their_response(req, id, &job);
  if (e != PQ_OK) return e;
  json_t *input;
  json_t *meta = meta_of(job, &input); /* once: json_is_true evaluates its argument twice */
  bool background = json_is_true(json_object_get(meta, "background"));
  json_decref(input);
  bool ended = pq_job_state_terminal(job->state);
  pq_job_free(job);
  if (!background)
    return pq__oa_bad_param(req, "response_id", "invalid_request", "Only a background response can be cancelled.");
  if (ended) return cancelled(req);
  req->op.kind = PQ_OP_CANCEL;
  req->op.in.cancel.job_id = id + strlen(PREFIX);
  pq_req_run_op(req, cancelled);
  return PQ_OK;
}

/* The items a response was given, each with an id, newest first unless order=asc. */
pq_err pq__oa_responses_input_items(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_response(req, pq_req_param(req, "id"), &job);
  if (e != PQ_OK) return e;
  const char *order = pq_req_query(req, "order"), *after = pq_req_query(req, "after");
  const char *limit_text = pq_req_query(req, "limit");
  long limit = limit_text ? strtol(limit_text, NULL, 10) : 20;
  if (limit < 1 || limit > 100) {
    pq_job_free(job);
    return pq__oa_bad_param(req, "limit", "invalid_request", "'limit' must be from 1 to 100");
  }
  json_t *input;
  json_t *items = json_object_get(meta_of(job, &input), "items"), *all = json_array();
  if (json_is_string(items)) items = json_pack("[{s:s,s:s,s:[{s:s,s:O}]}]", "type", "message", "role", "user", "content",
                                               "type", "input_text", "text", items);
  else json_incref(items);
  size_t i;
  json_t *item;
  json_array_foreach(items, i, item) {
    json_t *copy = json_deep_copy(item);
    if (!json_object_get(copy, "type")) json_object_set_new(copy, "type", json_string("message"));
    if (!json_is_string(json_object_get(copy, "id"))) { /* the client's own ids are kept when they are strings */
      char item_id[96];
      snprintf(item_id, sizeof item_id, "item_%s_%zu", job->id, i);
      json_object_set_new(copy, "id", json_string(item_id));
    }
    json_array_append_new(all, copy);
  }
  json_decref(items);
  bool asc = order && strcmp(order, "asc") == 0;
  json_t *data = json_array();
  size_t n = json_array_size(all);
  bool started = !after;
  for (size_t k = 0; k < n && (long)json_array_size(data) <= limit; k++) {
    json_t *it = json_array_get(all, asc ? k : n - 1 - k);
    if (started) json_array_append(data, it);
    else started = strcmp(json_string_value(json_object_get(it, "id")), after) == 0;
  }
  e = pq__oa_reply_page(req, data, limit);
  json_decref(data);
  json_decref(all);
  json_decref(input);
  pq_job_free(job);
  return e;
}
