/* The chat kind: a prompt, a system prompt or messages, with generation
 * parameters. A worker gets the input as stored; the output is the text. */
#include <stdio.h>
#include <string.h>

#include "engine/kind.h"

#define MAX_MESSAGES 1024

static pq_err check_messages(json_t *messages, pq_jerr *why) {
  static const char *const roles[] = {"system", "user", "assistant", "tool", NULL};
  static const char *const fields[] = {"role", "content", "name", "tool_call_id", NULL};
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
    const char *role = NULL, *content = NULL, *name = NULL;
    if ((e = pq_jcheck_only(why, m, where, fields)) || (e = pq_jcheck_string(why, m, "role", true, 32, &role)) ||
        (e = pq_jcheck_string(why, m, "content", true, 0, &content)) ||
        (e = pq_jcheck_string(why, m, "name", false, 128, &name)))
      return e;
    bool known = false;
    for (int r = 0; roles[r]; r++) known |= strcmp(role, roles[r]) == 0;
    if (!known)
      return pq_jerr_set(why, json_pack("{s:s}", "field", where), "'%s.role' must be system, user, assistant or tool",
                         where);
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

static pq_err check_params(json_t *params, pq_jerr *why) {
  static const char *const fields[] = {"max_tokens", "temperature", "top_p", "stop", "seed", NULL};
  if (!json_is_object(params)) return pq_jerr_set(why, json_pack("{s:s}", "field", "params"), "'params' must be an object");
  pq_err e;
  int64_t n;
  if ((e = pq_jcheck_only(why, params, "params", fields)) ||
      (e = pq_jcheck_int(why, params, "max_tokens", false, 1, 1000000, &n)) ||
      (e = pq_jcheck_int(why, params, "seed", false, INT64_MIN, INT64_MAX, &n)) ||
      (e = check_number(params, "temperature", 0, 2, why)) || (e = check_number(params, "top_p", 0, 1, why)))
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
