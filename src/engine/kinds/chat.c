/* The chat kind (and the completion kind, below): a prompt, a system prompt or messages, with generation
 * parameters. A worker gets the input as stored; the output is the text. */
#include <stdio.h>
#include <string.h>

#include "engine/kind.h"

#define MAX_MESSAGES 1024

const char *const pq_chat_params[] = {"max_tokens", "temperature", "top_p", "stop", "seed", "n", "user",
                                      "tools", "tool_choice", "parallel_tool_calls", "response_format",
                                      "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty",
                                      "logit_bias", NULL};
/* user only names the end user, for the upstream's abuse checks: any backend may carry or ignore it */
const char *const pq_chat_basic_params[] = {"max_tokens", "temperature", "top_p", "stop", "user", NULL};

/* OpenAI's content parts: text, and images for upstreams that take them. */
static pq_err check_parts(json_t *parts, const char *where, pq_jerr *why) {
  if (json_array_size(parts) == 0)
    return pq_jerr_set(why, json_pack("{s:s}", "field", where), "'%s.content' must not be an empty list", where);
  size_t i;
  json_t *p;
  json_array_foreach(parts, i, p) {
    const char *type = json_string_value(json_object_get(p, "type"));
    bool ok = json_is_object(p) && type;
    if (ok && strcmp(type, "text") == 0) ok = json_is_string(json_object_get(p, "text"));
    else if (ok && strcmp(type, "image_url") == 0)
      ok = json_is_string(json_object_get(json_object_get(p, "image_url"), "url"));
    else ok = false;
    if (!ok)
      return pq_jerr_set(why, json_pack("{s:s}", "field", where),
                         "'%s.content[%zu]' must be {type: text, text} or {type: image_url, image_url: {url}}", where,
                         i);
  }
  return PQ_OK;
}

/* An assistant's tool calls: [{id, type: function, function: {name, arguments}}]. */
static pq_err check_tool_calls(json_t *calls, const char *where, pq_jerr *why) {
  bool ok = json_is_array(calls) && json_array_size(calls) > 0;
  size_t i;
  json_t *c;
  json_array_foreach(calls, i, c) {
    json_t *fn = json_object_get(c, "function");
    ok &= json_is_string(json_object_get(c, "id")) && json_is_string(json_object_get(fn, "name")) &&
          json_is_string(json_object_get(fn, "arguments"));
  }
  return ok ? PQ_OK
            : pq_jerr_set(why, json_pack("{s:s}", "field", where),
                          "'%s.tool_calls' must be a list of {id, type: function, function: {name, arguments}}", where);
}

static pq_err check_messages(json_t *messages, pq_jerr *why) {
  static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", NULL};
  static const char *const fields[] = {"role", "content", "name", "tool_call_id", "tool_calls", "refusal", NULL};
  if (!json_is_array(messages) || json_array_size(messages) == 0 || json_array_size(messages) > MAX_MESSAGES)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "messages"),
                       "'messages' must be a non-empty array of at most %d messages", MAX_MESSAGES);
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) {
    char where[48];
    snprintf(where, sizeof where, "messages[%zu]", i);
    if (!json_is_object(m)) return pq_jerr_set(why, json_pack("{s:s}", "field", where), "'%s' must be an object", where);
    pq_err e;
    const char *role = NULL, *name = NULL, *call_id = NULL;
    if ((e = pq_jcheck_only(why, m, where, fields)) || (e = pq_jcheck_string(why, m, "role", true, 32, &role)) ||
        (e = pq_jcheck_string(why, m, "name", false, 128, &name)) ||
        (e = pq_jcheck_string(why, m, "tool_call_id", false, 256, &call_id)))
      return e;
    bool known = false;
    for (int r = 0; roles[r]; r++) known |= strcmp(role, roles[r]) == 0;
    if (!known)
      return pq_jerr_set(why, json_pack("{s:s}", "field", where),
                         "'%s.role' must be system, developer, user, assistant or tool", where);
    json_t *content = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
    bool assistant = strcmp(role, "assistant") == 0;
    if (calls && !json_is_null(calls)) {
      if (!assistant)
        return pq_jerr_set(why, json_pack("{s:s}", "field", where), "only an assistant message has 'tool_calls'");
      if ((e = check_tool_calls(calls, where, why))) return e;
    }
    if (strcmp(role, "tool") == 0 && !call_id)
      return pq_jerr_set(why, json_pack("{s:s}", "field", where), "'%s.tool_call_id' is required for a tool message",
                         where);
    /* an assistant that called tools may say nothing */
    bool may_be_empty = assistant && ((calls && !json_is_null(calls)) || json_object_get(m, "refusal"));
    if (json_is_array(content)) {
      if ((e = check_parts(content, where, why))) return e;
    } else if (!json_is_string(content) && !(may_be_empty && (!content || json_is_null(content)))) {
      return pq_jerr_set(why, json_pack("{s:s}", "field", where), "'%s.content' is required (a string or a list of parts)",
                         where);
    }
  }
  return PQ_OK;
}

static pq_err check_number(json_t *params, const char *key, double min, double max, pq_jerr *why) {
  json_t *v = json_object_get(params, key);
  if (!v || json_is_null(v)) return PQ_OK;
  if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max)
    return pq_jerr_set(why, json_pack("{s:s}", "field", key), "'params.%s' must be a number between %g and %g", key,
                       min, max);
  return PQ_OK;
}

static pq_err check_type(json_t *params, const char *key, bool ok, const char *what, pq_jerr *why) {
  json_t *v = json_object_get(params, key);
  if (!v || json_is_null(v) || ok) return PQ_OK;
  return pq_jerr_set(why, json_pack("{s:s}", "field", key), "'params.%s' must be %s", key, what);
}

/* tools: [{type: function, function: {name, description?, parameters?, strict?}}] */
static bool tools_ok(json_t *tools) {
  if (!json_is_array(tools) || json_array_size(tools) == 0 || json_array_size(tools) > 128) return false;
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *type = json_string_value(json_object_get(t, "type"));
    json_t *fn = json_object_get(t, "function");
    if (!type || strcmp(type, "function") != 0 || !json_is_string(json_object_get(fn, "name"))) return false;
    json_t *schema = json_object_get(fn, "parameters");
    if (schema && !json_is_object(schema)) return false;
  }
  return true;
}

static bool tool_choice_ok(json_t *v) {
  const char *s = json_string_value(v);
  if (s) return strcmp(s, "none") == 0 || strcmp(s, "auto") == 0 || strcmp(s, "required") == 0;
  return json_is_object(v) && json_is_string(json_object_get(json_object_get(v, "function"), "name"));
}

static bool response_format_ok(json_t *v) {
  const char *type = json_string_value(json_object_get(v, "type"));
  if (!type) return false;
  if (strcmp(type, "text") == 0 || strcmp(type, "json_object") == 0) return true;
  json_t *schema = json_object_get(v, "json_schema");
  return strcmp(type, "json_schema") == 0 && json_is_string(json_object_get(schema, "name")) &&
         (!json_object_get(schema, "schema") || json_is_object(json_object_get(schema, "schema")));
}

static pq_err check_params(json_t *params, pq_jerr *why) {
  if (!json_is_object(params)) return pq_jerr_set(why, json_pack("{s:s}", "field", "params"), "'params' must be an object");
  pq_err e;
  int64_t n;
  if ((e = pq_jcheck_only(why, params, "params", pq_chat_params)) ||
      (e = pq_jcheck_int(why, params, "max_tokens", false, 1, 1000000, &n)) ||
      (e = pq_jcheck_int(why, params, "seed", false, INT64_MIN, INT64_MAX, &n)) ||
      (e = pq_jcheck_int(why, params, "n", false, 1, PQ_CHAT_MAX_CHOICES, &n)) ||
      (e = pq_jcheck_int(why, params, "top_logprobs", false, 0, 20, &n)) ||
      (e = check_number(params, "temperature", 0, 2, why)) || (e = check_number(params, "top_p", 0, 1, why)) ||
      (e = check_number(params, "presence_penalty", -2, 2, why)) ||
      (e = check_number(params, "frequency_penalty", -2, 2, why)) ||
      (e = check_type(params, "logprobs", json_is_boolean(json_object_get(params, "logprobs")), "true or false", why)) ||
      (e = check_type(params, "parallel_tool_calls", json_is_boolean(json_object_get(params, "parallel_tool_calls")),
                      "true or false", why)) ||
      (e = check_type(params, "user", json_is_string(json_object_get(params, "user")), "a string", why)) ||
      (e = check_type(params, "logit_bias", json_is_object(json_object_get(params, "logit_bias")), "an object", why)) ||
      (e = check_type(params, "tools", tools_ok(json_object_get(params, "tools")),
                      "a list of {type: function, function: {name, parameters}}", why)) ||
      (e = check_type(params, "tool_choice", tool_choice_ok(json_object_get(params, "tool_choice")),
                      "none, auto, required or {type: function, function: {name}}", why)) ||
      (e = check_type(params, "response_format", response_format_ok(json_object_get(params, "response_format")),
                      "{type: text}, {type: json_object} or {type: json_schema, json_schema: {name, schema}}", why)))
    return e;
  json_t *stop = json_object_get(params, "stop");
  if (!stop || json_is_null(stop) || json_is_string(stop)) return PQ_OK;
  bool ok = json_is_array(stop) && json_array_size(stop) <= 4;
  size_t i;
  json_t *s;
  json_array_foreach(stop, i, s) ok &= json_is_string(s);
  return ok ? PQ_OK
            : pq_jerr_set(why, json_pack("{s:s}", "field", "stop"),
                          "'params.stop' must be a string or an array of up to 4 strings");
}

static pq_err chat_validate(json_t *input, pq_jerr *why) {
  const char *system = NULL, *prompt = NULL;
  pq_err e;
  if ((e = pq_jcheck_string(why, input, "system", false, 0, &system)) ||
      (e = pq_jcheck_string(why, input, "prompt", false, 0, &prompt)))
    return e;
  json_t *messages = json_object_get(input, "messages"), *params = json_object_get(input, "params");
  if (messages && !json_is_null(messages) && (e = check_messages(messages, why))) return e;
  if (params && !json_is_null(params) && (e = check_params(params, why))) return e;
  bool has_messages = json_is_array(messages);
  if (!has_messages && (!prompt || !*prompt) && (!system || !*system))
    return pq_jerr_set(why, json_pack("{s:[s,s,s]}", "fields", "prompt", "messages", "system"),
                       "a job needs a 'prompt', 'messages' or a 'system' prompt");
  /* nulls say nothing: keep the stored input canonical */
  if (messages && json_is_null(messages)) json_object_del(input, "messages");
  if (params && json_is_null(params)) json_object_del(input, "params");
  if (json_is_null(json_object_get(input, "system"))) json_object_del(input, "system");
  if (json_is_null(json_object_get(input, "prompt"))) json_object_del(input, "prompt");
  return PQ_OK;
}

const pq_job_kind pq_kind_chat = {
    .name = "chat",
    .validate = chat_validate,
};

/* The completion kind: a raw prompt to continue (OpenAI's legacy
 * completions), with the chat kind's parameters. The output is the text. */
static pq_err completion_validate(json_t *input, pq_jerr *why) {
  const char *prompt = NULL;
  pq_err e;
  static const char *const fields[] = {"prompt", "params", NULL};
  if ((e = pq_jcheck_only(why, input, "input", fields)) || (e = pq_jcheck_string(why, input, "prompt", true, 0, &prompt)))
    return e;
  json_t *params = json_object_get(input, "params");
  if (params && !json_is_null(params) && (e = check_params(params, why))) return e;
  if (params && json_is_null(params)) json_object_del(input, "params");
  return PQ_OK;
}

const pq_job_kind pq_kind_completion = {
    .name = "completion",
    .validate = completion_validate,
};

/* The response kind: a chat (messages, params) run by any chat worker, with
 * what OpenAI's Responses API keeps beside it ("response": its own input
 * items, instructions, the response it continues, store, metadata, its
 * tools as given), which workers ignore. */
static pq_err response_validate(json_t *input, pq_jerr *why) {
  static const char *const fields[] = {"messages", "params", "response", NULL};
  pq_err e;
  json_t *messages = json_object_get(input, "messages"), *params = json_object_get(input, "params");
  if ((e = pq_jcheck_only(why, input, "input", fields)) || (e = check_messages(messages, why))) return e;
  if (params && !json_is_null(params) && (e = check_params(params, why))) return e;
  if (params && json_is_null(params)) json_object_del(input, "params");
  if (!json_is_object(json_object_get(input, "response")))
    return pq_jerr_set(why, json_pack("{s:s}", "field", "response"), "'response' must be an object");
  return PQ_OK;
}

static const char *const response_fields[] = {"messages", "params", "response", NULL};

const pq_job_kind pq_kind_response = {
    .name = "response",
    .input_fields = response_fields,
    .worker_kind = "chat",
    .validate = response_validate,
};
