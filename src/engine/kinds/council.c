/* The council kind: one question, a council of models deliberating in rounds
 * until they agree, and a synthesis (docs/council.md).
 *
 * The council job is run by the coordinator (on_submit starts it); each
 * member answer, each agreement measurement (an embedding job) and each
 * synthesis attempt is a child job that ordinary workers lease. Every step
 * is taken in the transaction that ends a child (on_child_terminal): the
 * deliberation so far is the council's output while it runs, so nothing
 * lives only in memory and a restarted coordinator goes on where it was. */
#include "engine/kinds/council.h"

#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "engine/kind.h"
#include "model/similarity.h"

#define MAX_QUERY 100000
#define MAX_ROUNDS 10
#define MAX_SYNTHESIZERS 8
#define CHILD_ATTEMPTS 2

/* ---- the operator's settings ---- */

static char *members_store[PQ_COUNCIL_MAX_MEMBERS], *synth_store[MAX_SYNTHESIZERS], *embedding_store;
static pq_council_defaults settings = {
    .members = (const char *const *)members_store,
    .synthesizers = (const char *const *)synth_store,
    .member_timeout_ms = 120000,
    .max_tokens = 1024,
    .embedding_model = NULL,
    .context_tokens = 2000,
};

static int copy_list(char **dst, size_t cap, const char *const *src, size_t n, size_t *out_n) {
  for (size_t i = 0; i < cap; i++) {
    free(dst[i]);
    dst[i] = NULL;
  }
  *out_n = 0;
  for (size_t i = 0; i < n && i < cap; i++) {
    if (!(dst[i] = strdup(src[i]))) return -1;
    (*out_n)++;
  }
  return 0;
}

int pq_council_configure(const pq_council_defaults *d) {
  pq_council_defaults next = *d;
  next.members = (const char *const *)members_store;
  next.synthesizers = (const char *const *)synth_store;
  if (copy_list(members_store, PQ_COUNCIL_MAX_MEMBERS, d->members, d->n_members, &next.n_members) ||
      copy_list(synth_store, MAX_SYNTHESIZERS, d->synthesizers, d->n_synthesizers, &next.n_synthesizers))
    return -1;
  free(embedding_store);
  embedding_store = d->embedding_model && *d->embedding_model ? strdup(d->embedding_model) : NULL;
  next.embedding_model = embedding_store;
  if (next.member_timeout_ms <= 0) next.member_timeout_ms = settings.member_timeout_ms;
  if (next.max_tokens <= 0) next.max_tokens = settings.max_tokens;
  if (next.context_tokens < 0) next.context_tokens = 0;
  settings = next;
  return 0;
}

const pq_council_defaults *pq_council_settings(void) { return &settings; }

/* ---- validation: the stored input is complete, so a council never reads settings again ---- */

static bool listed(const char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0) return true;
  return false;
}

/* A list of distinct model names, each one of allowed (when any). */
static pq_err check_models(json_t *input, const char *key, size_t max, const char *const *allowed, size_t n_allowed,
                           pq_jerr *why) {
  json_t *v = json_object_get(input, key);
  if (!v || json_is_null(v)) {
    json_object_del(input, key);
    if (!n_allowed) return PQ_OK;
    json_t *list = json_array();
    for (size_t i = 0; i < n_allowed && i < max; i++) json_array_append_new(list, json_string(allowed[i]));
    json_object_set_new(input, key, list);
    return PQ_OK;
  }
  bool ok = json_is_array(v) && json_array_size(v) >= 1 && json_array_size(v) <= max;
  for (size_t i = 0; ok && i < json_array_size(v); i++) {
    json_t *m = json_array_get(v, i);
    ok = json_is_string(m) && json_string_length(m) > 0 && json_string_length(m) <= 128;
    for (size_t j = 0; ok && j < i; j++) ok = !json_equal(m, json_array_get(v, j));
  }
  if (!ok)
    return pq_jerr_set(why, json_pack("{s:s}", "field", key), "'%s' must be 1 to %zu distinct model names", key, max);
  for (size_t i = 0; n_allowed && i < json_array_size(v); i++) {
    const char *m = json_string_value(json_array_get(v, i));
    if (!listed(allowed, n_allowed, m)) {
      json_t *known = json_array();
      for (size_t k = 0; k < n_allowed; k++) json_array_append_new(known, json_string(allowed[k]));
      return pq_jerr_set(why, json_pack("{s:s,s:s,s:o}", "field", key, "model", m, "allowed", known),
                         "'%s' may only narrow the operator's list: '%s' is not on it", key, m);
    }
  }
  return PQ_OK;
}

static pq_err check_choice(json_t *input, const char *key, const char *const *choices, pq_jerr *why) {
  json_t *v = json_object_get(input, key);
  if (!v || json_is_null(v)) {
    json_object_set_new(input, key, json_string(choices[0]));
    return PQ_OK;
  }
  for (size_t i = 0; choices[i]; i++)
    if (json_is_string(v) && strcmp(json_string_value(v), choices[i]) == 0) return PQ_OK;
  json_t *allowed = json_array();
  for (size_t i = 0; choices[i]; i++) json_array_append_new(allowed, json_string(choices[i]));
  return pq_jerr_set(why, json_pack("{s:s,s:o}", "field", key, "allowed", allowed), "'%s' must be one of %s%s%s", key,
                     choices[0], choices[1] ? ", ..." : "", "");
}

/* An integer field: checked, or the default written in. */
static pq_err int_or_default(json_t *input, const char *key, int64_t min, int64_t max, int64_t dflt, pq_jerr *why,
                             int64_t *out) {
  *out = dflt;
  pq_err e = pq_jcheck_int(why, input, key, false, min, max, out);
  if (e == PQ_OK) json_object_set_new(input, key, json_integer(*out));
  return e;
}

static const char *const fields[] = {"query", "sessionId", "members", "synthesizers", "quorum", "maxRounds",
                                     "agreementThreshold", "fallbackStrategy", "embeddingModel",
                                     "earlyTerminationEnabled", "negotiationMode", "memberTimeoutMs", "maxTokens",
                                     "maxTotalTokens", "streaming", NULL};

static bool blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return false;
  return true;
}

static pq_err council_validate(json_t *input, pq_jerr *why) {
  static const char *const fallbacks[] = {"meta-synthesis", "majority", "fail", NULL};
  static const char *const modes[] = {"parallel", "sequential", NULL};
  const char *query = NULL, *session = NULL, *embedding = NULL;
  int64_t n;
  bool flag;
  pq_err e;
  if ((e = pq_jcheck_only(why, input, "the council request", fields)) ||
      (e = pq_jcheck_string(why, input, "query", true, MAX_QUERY, &query)) ||
      (e = pq_jcheck_string(why, input, "sessionId", false, 256, &session)) ||
      (e = pq_jcheck_string(why, input, "embeddingModel", false, 128, &embedding)))
    return e;
  if (blank(query)) return pq_jerr_set(why, json_pack("{s:s}", "field", "query"), "'query' must not be empty");
  if (session && !*session)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "sessionId"), "'sessionId' must not be empty");
  if ((e = check_models(input, "members", PQ_COUNCIL_MAX_MEMBERS, settings.members, settings.n_members, why)))
    return e;
  json_t *members = json_object_get(input, "members");
  if (!members)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "members"),
                       "this server has no council members: the operator sets them (--council-members), or the "
                       "request names 'members'");
  size_t n_members = json_array_size(members);
  /* synthesizers come from the operator's list; without one, from its members */
  const char *const *synth_allowed = settings.n_synthesizers ? settings.synthesizers : settings.members;
  size_t n_synth_allowed = settings.n_synthesizers ? settings.n_synthesizers : settings.n_members;
  if ((e = check_models(input, "synthesizers", MAX_SYNTHESIZERS, synth_allowed,
                        settings.n_synthesizers ? n_synth_allowed : 0, why)))
    return e;
  json_t *synth = json_object_get(input, "synthesizers");
  for (size_t i = 0; synth && !settings.n_synthesizers && settings.n_members && i < json_array_size(synth); i++)
    if (!listed(settings.members, settings.n_members, json_string_value(json_array_get(synth, i))))
      return pq_jerr_set(why, json_pack("{s:s}", "field", "synthesizers"),
                         "'synthesizers' may only name the operator's council members here");
  if (!json_object_get(input, "synthesizers")) /* any member can write the answer */
    json_object_set_new(input, "synthesizers", json_deep_copy(members));
  /* the operator's quorum, else a majority of this council, is a floor: a request may only raise it */
  int64_t majority = (int64_t)n_members / 2 + 1;
  int64_t floor = settings.quorum > 0 ? settings.quorum : majority;
  if (floor > (int64_t)n_members)
    return pq_jerr_set(why, json_pack("{s:s,s:I}", "field", "members", "quorum", (json_int_t)floor),
                       "a council here needs a quorum of %lld, so at least %lld members", (long long)floor,
                       (long long)floor);
  if ((e = int_or_default(input, "quorum", floor, (int64_t)n_members, majority > floor ? majority : floor, why, &n)) ||
      (e = int_or_default(input, "maxRounds", 1, MAX_ROUNDS, 3, why, &n)) ||
      (e = int_or_default(input, "memberTimeoutMs", 1000, settings.member_timeout_ms, settings.member_timeout_ms, why,
                          &n)) ||
      (e = int_or_default(input, "maxTokens", 1, settings.max_tokens, settings.max_tokens, why, &n)))
    return e;
  if (settings.max_total_tokens > 0 || json_object_get(input, "maxTotalTokens")) {
    int64_t cap = settings.max_total_tokens > 0 ? settings.max_total_tokens : INT64_C(1000000000);
    if ((e = int_or_default(input, "maxTotalTokens", 1, cap, settings.max_total_tokens, why, &n))) return e;
    if (n == 0) json_object_del(input, "maxTotalTokens");
  }
  json_t *t = json_object_get(input, "agreementThreshold");
  if (!t || json_is_null(t)) json_object_set_new(input, "agreementThreshold", json_real(0.85));
  else if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 1)
    return pq_jerr_set(why, json_pack("{s:s}", "field", "agreementThreshold"),
                       "'agreementThreshold' must be a number from 0 to 1");
  if ((e = check_choice(input, "fallbackStrategy", fallbacks, why)) ||
      (e = check_choice(input, "negotiationMode", modes, why)))
    return e;
  flag = true;
  if ((e = pq_jcheck_bool(why, input, "earlyTerminationEnabled", &flag))) return e;
  json_object_set_new(input, "earlyTerminationEnabled", json_boolean(flag));
  flag = false;
  if ((e = pq_jcheck_bool(why, input, "streaming", &flag))) return e;
  json_object_del(input, "streaming"); /* every council streams; the flag only says the client will listen */
  if (!embedding && settings.embedding_model) json_object_set_new(input, "embeddingModel", json_string(settings.embedding_model));
  if (json_is_null(json_object_get(input, "sessionId"))) json_object_del(input, "sessionId");
  if (json_is_null(json_object_get(input, "embeddingModel"))) json_object_del(input, "embeddingModel");
  return PQ_OK;
}

/* ---- a running council ---- */

typedef struct council {
  pq_kind_ctx *ctx;
  pq_job *job;   /* the council (borrowed) */
  json_t *input; /* parsed */
  json_t *st;    /* the deliberation so far (the job's output while it runs) */
  json_t *members, *synthesizers;
  int quorum, max_rounds, max_tokens;
  double threshold;
  const char *fallback, *embedding_model;
  bool early, sequential;
  int64_t member_timeout_ms, max_total_tokens;
} council;

static const char *str(json_t *obj, const char *key) { return json_string_value(json_object_get(obj, key)); }
static int64_t num(json_t *obj, const char *key) { return json_integer_value(json_object_get(obj, key)); }

static pq_err load(pq_kind_ctx *ctx, pq_job *job, council *c) {
  memset(c, 0, sizeof *c);
  c->ctx = ctx;
  c->job = job;
  if (!(c->input = json_loads(job->input, 0, NULL))) return PQ_ERR_INTERNAL;
  c->st = job->output ? json_loads(job->output, 0, NULL) : NULL;
  if (!c->st) c->st = json_pack("{s:s,s:i,s:[],s:{s:I,s:I}}", "phase", "distributing", "round", 0, "rounds", "usage",
                                "promptTokens", (json_int_t)0, "completionTokens", (json_int_t)0);
  if (!c->st) return PQ_ERR_NO_MEMORY;
  c->members = json_object_get(c->input, "members");
  c->synthesizers = json_object_get(c->input, "synthesizers");
  c->quorum = (int)num(c->input, "quorum");
  c->max_rounds = (int)num(c->input, "maxRounds");
  c->max_tokens = (int)num(c->input, "maxTokens");
  c->threshold = json_number_value(json_object_get(c->input, "agreementThreshold"));
  c->fallback = str(c->input, "fallbackStrategy");
  c->embedding_model = str(c->input, "embeddingModel");
  c->early = json_is_true(json_object_get(c->input, "earlyTerminationEnabled"));
  c->sequential = strcmp(str(c->input, "negotiationMode"), "sequential") == 0;
  c->member_timeout_ms = num(c->input, "memberTimeoutMs");
  c->max_total_tokens = num(c->input, "maxTotalTokens");
  return PQ_OK;
}

static void unload(council *c) {
  json_decref(c->input);
  json_decref(c->st);
}

static pq_err save(council *c) {
  char *text = json_dumps(c->st, JSON_COMPACT);
  if (!text) return PQ_ERR_NO_MEMORY;
  /* what its children cost so far: what a cancel charges (up to the hold) */
  c->job->cost_micros = num(json_object_get(c->st, "usage"), "costMicros");
  free(c->job->output);
  c->job->output = text;
  return pq_kind_save(c->ctx, c->job);
}

/* An event on the council's own log: what a stream reader sees. */
static pq_err event(council *c, const char *kind, json_t *data) {
  char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
  json_decref(data);
  if (!text) return PQ_OK; /* it could not be built (a model's bytes that are not UTF-8): the log goes without it */
  pq_err result = pq_kind_event(c->ctx, c->job, kind, text);
  free(text);
  return result;
}

static pq_err progress(council *c, const char *status, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static pq_err progress(council *c, const char *status, json_t *extra, const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  json_t *data = json_pack("{s:s,s:s}", "status", status, "message", message);
  if (data && extra) json_object_update(data, extra);
  json_decref(extra);
  return event(c, "progress", data);
}

static json_t *current_round(council *c) {
  json_t *rounds = json_object_get(c->st, "rounds");
  return json_array_get(rounds, json_array_size(rounds) - 1);
}

/* The SHA-256 of a child's stored output: what that child's own receipt
 * names as output_sha256, so the council's receipt (over its output, which
 * lists these) vouches for every answer it used. */
static json_t *output_hash(const pq_job *job) {
  unsigned char d[crypto_hash_sha256_BYTES];
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  const char *text = job->output ? job->output : "";
  crypto_hash_sha256(d, (const unsigned char *)text, strlen(text));
  sodium_bin2hex(hex, sizeof hex, d, sizeof d);
  return json_string(hex);
}

/* A child's output as text. */
static char *output_text(const pq_job *job) {
  char *text = pq_job_output_text(job->output);
  return text ? text : strdup("");
}

static pq_err add_usage(council *c, const pq_job *child) {
  json_t *usage = json_object_get(c->st, "usage");
  json_object_set_new(usage, "promptTokens", json_integer(num(usage, "promptTokens") + child->prompt_tokens));
  json_object_set_new(usage, "completionTokens",
                      json_integer(num(usage, "completionTokens") + child->completion_tokens));
  json_object_set_new(usage, "costMicros", json_integer(num(usage, "costMicros") + child->cost_micros));
  return PQ_OK;
}

static int64_t tokens_used(council *c) {
  json_t *usage = json_object_get(c->st, "usage");
  return num(usage, "promptTokens") + num(usage, "completionTokens");
}

static pq_err submit(council *c, const char *kind, const char *model, json_t *input, char *id) {
  pq_job *child = pq_job_new();
  char *text = input ? json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(input);
  if (!child || !text || !(child->kind = strdup(kind)) || !(child->model = strdup(model))) {
    free(text);
    pq_job_free(child);
    return PQ_ERR_NO_MEMORY;
  }
  child->input = text;
  child->priority = c->job->priority;
  child->max_attempts = CHILD_ATTEMPTS;
  child->lease_timeout_ms = c->member_timeout_ms;
  /* nobody ran it in time (room for its retry): that member failed */
  child->expires_at = pq_kind_now(c->ctx) + CHILD_ATTEMPTS * c->member_timeout_ms;
  return pq_kind_submit_child(c->ctx, c->job, child, id);
}

static pq_err submit_chat(council *c, const char *model, json_t *messages, char *id) {
  return submit(c, "chat", model, json_pack("{s:o,s:{s:i}}", "messages", messages, "params", "max_tokens", c->max_tokens),
                id);
}

/* ---- what members are asked ---- */

static json_t *message(const char *role, const char *content) {
  return json_pack("{s:s,s:s}", "role", role, "content", content);
}

static json_t *system_prompt(council *c, const char *role_text) {
  pq_buf b = {0};
  pq_buf_printf(&b, "%s", role_text);
  json_t *context = json_object_get(c->input, "context");
  if (json_array_size(context) > 0) {
    pq_buf_printf(&b, "\n\nEarlier in this conversation:");
    size_t i;
    json_t *turn;
    json_array_foreach(context, i, turn)
      pq_buf_printf(&b, "\n\nQuestion: %s\nThe council's answer: %s", str(turn, "query"), str(turn, "decision"));
  }
  json_t *m = message("system", b.data ? b.data : role_text);
  pq_buf_free(&b);
  return m;
}

/* The latest answer member gave before (or, in sequential mode, in) round r. */
static const char *latest_answer(council *c, size_t member, int round, bool this_round) {
  json_t *rounds = json_object_get(c->st, "rounds");
  for (size_t k = json_array_size(rounds); k-- > 0;) {
    json_t *r = json_array_get(rounds, k);
    int rn = (int)num(r, "round");
    if (rn > round || (rn == round && !this_round)) continue;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r, "answers"), i, a)
      if ((size_t)num(a, "member") == member && strcmp(str(a, "status"), "completed") == 0) return str(a, "text");
  }
  return NULL;
}

static json_t *member_messages(council *c, size_t member, int round) {
  json_t *msgs = json_pack("[o,o]",
                           system_prompt(c, "You are one member of a council of AI models that answers a user's "
                                            "question together. Answer accurately and concisely."),
                           message("user", str(c->input, "query")));
  if (round <= 1) return msgs;
  const char *own = latest_answer(c, member, round, false);
  if (own) json_array_append_new(msgs, message("assistant", own));
  pq_buf b = {0};
  pq_buf_printf(&b, "Round %d of %d. The other council members answered:", round, c->max_rounds);
  char label = 'A';
  for (size_t k = 0; k < json_array_size(c->members); k++) {
    if (k == member) continue;
    const char *other = latest_answer(c, k, round, c->sequential);
    if (other) pq_buf_printf(&b, "\n\nMember %c: %s", label++, other);
  }
  pq_buf_printf(&b, "\n\nConsidering their answers, give your revised answer to the original question. "
                  "Reply with the answer only.");
  json_array_append_new(msgs, message("user", b.data));
  pq_buf_free(&b);
  return msgs;
}

static json_t *synthesis_messages(council *c, bool consensus, double agreement) {
  pq_buf b = {0};
  pq_buf_printf(&b, "Question: %s\n\nThe council's answers (agreement %.2f):", str(c->input, "query"), agreement);
  size_t i;
  json_t *a;
  int k = 1;
  json_array_foreach(json_object_get(current_round(c), "answers"), i, a)
    if (strcmp(str(a, "status"), "completed") == 0) pq_buf_printf(&b, "\n\nAnswer %d: %s", k++, str(a, "text"));
  if (consensus)
    pq_buf_printf(&b, "\n\nThe members agree. Write the council's final answer: one answer that states what they "
                    "agree on.");
  else
    pq_buf_printf(&b, "\n\nThe members did not reach agreement (%.2f, below %.2f). Write the best answer you can from "
                    "theirs, and say briefly where they disagree.",
                agreement, c->threshold);
  json_t *msgs = json_pack("[o,o]",
                           system_prompt(c, "You write the final answer of a council of AI models from its members' "
                                            "answers."),
                           message("user", b.data));
  pq_buf_free(&b);
  return msgs;
}

/* ---- the steps ---- */

static pq_err start_round(council *c, int round);
static pq_err synthesize(council *c, bool consensus);

static pq_err fail(council *c, const char *code, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static pq_err fail(council *c, const char *code, json_t *details, const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  json_object_set_new(c->st, "error", json_pack("{s:s,s:s,s:o}", "code", code, "message", message, "details",
                                                details ? details : json_object()));
  json_object_set_new(c->st, "phase", json_string("failed"));
  char *text = json_dumps(c->st, JSON_COMPACT);
  if (!text || pq_set_str(&c->job->error_code, code) || pq_set_str(&c->job->error_message, message)) {
    free(text);
    return PQ_ERR_NO_MEMORY;
  }
  free(c->job->output);
  c->job->output = text;
  json_t *usage = json_object_get(c->st, "usage");
  c->job->prompt_tokens = num(usage, "promptTokens");
  c->job->completion_tokens = num(usage, "completionTokens");
  return pq_kind_finish(c->ctx, c->job, PQ_JOB_FAILED);
}

/* Confidence from the agreement, the quorum and the fallback (docs/council.md):
 * consensus is high, else medium from 0.5 agreement, else low; a member
 * missing, or no synthesizer able to write, costs one level. */
static const char *confidence(bool consensus, double agreement, size_t missing, bool no_synthesizer) {
  int level = consensus ? 2 : agreement >= 0.5 ? 1 : 0;
  if (missing > 0) level--;
  if (no_synthesizer) level--;
  return level >= 2 ? "high" : level == 1 ? "medium" : "low";
}

static pq_err complete(council *c, const char *decision, const char *synthesizer, const char *fallback) {
  json_t *cur = current_round(c);
  bool consensus = json_is_true(json_object_get(c->st, "consensus"));
  double agreement = json_number_value(json_object_get(cur, "agreement"));
  json_t *missing = json_array();
  size_t answered = 0;
  for (size_t k = 0; k < json_array_size(c->members); k++) {
    bool found = false;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(cur, "answers"), i, a)
      found |= (size_t)num(a, "member") == k && strcmp(str(a, "status"), "completed") == 0;
    if (found) answered++;
    else json_array_append(missing, json_array_get(c->members, k));
  }
  bool no_synth = synthesizer == NULL;
  const char *level = confidence(consensus, agreement, json_array_size(missing), no_synth);
  json_t *usage = json_object_get(c->st, "usage");
  json_t *result = json_pack(
      "{s:s,s:s,s:f,s:b,s:b,s:s?,s:s?,s:s?,s:O,s:O,s:i,s:I,s:o,s:O?,s:O,s:i}", "decision", decision, "confidence", level,
      "agreementLevel", agreement, "consensus", consensus, "degraded", !consensus || no_synth, "fallback", fallback,
      "similarity", str(cur, "similarity"), "synthesizer", synthesizer, "members", c->members, "rounds",
      json_object_get(c->st, "rounds"), "quorum", c->quorum, "answered", (json_int_t)answered, "missing", missing,
      "synthesis", json_object_get(c->st, "synthesis"), "usage", usage, "roundsRun",
      (int)json_array_size(json_object_get(c->st, "rounds")));
  char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;
  json_decref(result);
  if (!text) return PQ_ERR_NO_MEMORY;
  free(c->job->output);
  c->job->output = text;
  c->job->prompt_tokens = num(usage, "promptTokens");
  c->job->completion_tokens = num(usage, "completionTokens");
  c->job->cost_micros = num(usage, "costMicros"); /* the sum of its children's: what the ledger charges */
  return pq_kind_finish(c->ctx, c->job, PQ_JOB_COMPLETED);
}

/* The completed answers of the current round: texts and their members. */
static size_t round_answers(council *c, const char **texts, size_t *members) {
  size_t n = 0, i;
  json_t *a;
  json_array_foreach(json_object_get(current_round(c), "answers"), i, a)
    if (strcmp(str(a, "status"), "completed") == 0) {
      texts[n] = str(a, "text");
      members[n++] = (size_t)num(a, "member");
    }
  return n;
}

static pq_err decide(council *c, const double *matrix, size_t n, const char *method) {
  json_t *cur = current_round(c);
  int r = (int)num(cur, "round");
  double agreement = pq_similarity_mean(matrix, n);
  json_t *rows = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *row = json_array();
    for (size_t j = 0; j < n; j++) json_array_append_new(row, json_real(round(matrix[i * n + j] * 10000) / 10000));
    json_array_append_new(rows, row);
  }
  agreement = round(agreement * 10000) / 10000;
  json_object_set_new(cur, "agreement", json_real(agreement));
  json_object_set_new(cur, "matrix", rows);
  json_object_set_new(cur, "similarity", json_string(method));
  pq_err result = progress(c, "deliberating", json_pack("{s:i,s:f,s:s}", "round", r, "agreement", agreement,
                                                        "similarity", method),
                           "Round %d of %d: agreement %.2f", r, c->max_rounds, agreement);
  if (result != PQ_OK) return result;
  bool agreed = agreement + 1e-9 >= c->threshold;
  bool over_budget = c->max_total_tokens > 0 && tokens_used(c) >= c->max_total_tokens;
  if (agreed && (c->early || r >= c->max_rounds)) return synthesize(c, true);
  if (r < c->max_rounds && !over_budget) return start_round(c, r + 1);
  if (agreed) return synthesize(c, true);
  if (over_budget) json_object_set_new(c->st, "stoppedBy", json_string("maxTotalTokens"));
  if (strcmp(c->fallback, "fail") == 0)
    return fail(c, "CONSENSUS_NOT_REACHED",
                json_pack("{s:f,s:f,s:i}", "agreementLevel", agreement, "agreementThreshold", c->threshold, "rounds", r),
                "the council did not agree (%.2f, below %.2f) after %d round%s", agreement, c->threshold, r,
                r == 1 ? "" : "s");
  if (strcmp(c->fallback, "majority") == 0) {
    const char *texts[PQ_COUNCIL_MAX_MEMBERS];
    size_t members[PQ_COUNCIL_MAX_MEMBERS];
    size_t k = round_answers(c, texts, members);
    size_t best = pq_similarity_medoid(matrix, k);
    json_object_set_new(c->st, "consensus", json_false());
    if ((result = event(c, "chunk", json_pack("{s:s}", "content", texts[best])))) return result;
    return complete(c, texts[best], NULL, "majority");
  }
  return synthesize(c, false);
}

/* Agreement of the current round: from embeddings when a worker serves the
 * embedding model, else from the words. */
static pq_err measure(council *c) {
  const char *texts[PQ_COUNCIL_MAX_MEMBERS];
  size_t members[PQ_COUNCIL_MAX_MEMBERS];
  size_t n = round_answers(c, texts, members);
  double matrix[PQ_COUNCIL_MAX_MEMBERS * PQ_COUNCIL_MAX_MEMBERS];
  if (n < 2) {
    matrix[0] = 1;
    return decide(c, matrix, n, "single-answer");
  }
  if (c->embedding_model && pq_kind_model_served(c->ctx, c->embedding_model)) {
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(list, json_string(texts[i]));
    char id[PQ_UUID_LEN + 1];
    pq_err result = submit(c, "embedding", c->embedding_model, json_pack("{s:o}", "embeddings", list), id);
    if (result != PQ_OK) return result;
    json_object_set_new(current_round(c), "measureJob", json_string(id));
    json_object_set_new(c->st, "phase", json_string("measuring"));
    return save(c);
  }
  if (pq_similarity_lexical(texts, n, matrix)) return PQ_ERR_NO_MEMORY;
  return decide(c, matrix, n, "lexical");
}

static pq_err measured(council *c, const pq_job *child) {
  const char *texts[PQ_COUNCIL_MAX_MEMBERS];
  size_t members[PQ_COUNCIL_MAX_MEMBERS];
  size_t n = round_answers(c, texts, members);
  double matrix[PQ_COUNCIL_MAX_MEMBERS * PQ_COUNCIL_MAX_MEMBERS];
  double *vectors[PQ_COUNCIL_MAX_MEMBERS] = {0};
  size_t dim = 0;
  bool ok = child->state == PQ_JOB_COMPLETED;
  json_t *out = ok && child->output ? json_loads(child->output, 0, NULL) : NULL;
  json_t *data = json_object_get(out, "data");
  ok = json_array_size(data) == n;
  for (size_t i = 0; ok && i < n; i++) {
    json_t *item = json_array_get(data, i);
    json_t *idx = json_object_get(item, "index");
    json_t *vec = json_object_get(item, "embedding");
    size_t at = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
    ok = at < n && !vectors[at] && json_is_array(vec) && json_array_size(vec) > 0 &&
         (dim == 0 || json_array_size(vec) == dim);
    if (!ok) break;
    dim = json_array_size(vec);
    if (!(vectors[at] = calloc(dim, sizeof(double)))) ok = false;
    for (size_t d = 0; ok && d < dim; d++) {
      json_t *x = json_array_get(vec, d);
      /* finite and of sane size, so no cosine overflows into NaN */
      ok = json_is_number(x) && isfinite(json_number_value(x)) && fabs(json_number_value(x)) < 1e100;
      if (ok) vectors[at][d] = json_number_value(x);
    }
  }
  json_decref(out);
  pq_err result;
  if (ok) {
    pq_similarity_embeddings((const double *const *)vectors, n, dim, matrix);
    result = decide(c, matrix, n, "embedding");
  } else { /* the embedding failed: the words still tell */
    json_object_set_new(current_round(c), "embeddingError",
                        json_string(child->error_code ? child->error_code : "UNREADABLE_EMBEDDINGS"));
    result = pq_similarity_lexical(texts, n, matrix) ? PQ_ERR_NO_MEMORY : decide(c, matrix, n, "lexical");
  }
  for (size_t i = 0; i < n; i++) free(vectors[i]);
  return result;
}

/* Asks member (an index into members) for its round-r answer. */
static pq_err ask(council *c, json_t *answer, int round) {
  size_t member = (size_t)num(answer, "member");
  char id[PQ_UUID_LEN + 1];
  pq_err result = submit_chat(c, json_string_value(json_array_get(c->members, member)), member_messages(c, member, round), id);
  if (result != PQ_OK) return result;
  json_object_set_new(answer, "job", json_string(id));
  json_object_set_new(answer, "status", json_string("pending"));
  return PQ_OK;
}

static pq_err start_round(council *c, int round) {
  json_t *previous = current_round(c);
  json_t *answers = json_array();
  for (size_t k = 0; k < json_array_size(c->members); k++) {
    bool alive = !previous;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(previous, "answers"), i, a)
      alive |= (size_t)num(a, "member") == k && strcmp(str(a, "status"), "completed") == 0;
    if (alive)
      json_array_append_new(answers, json_pack("{s:I,s:O,s:s}", "member", (json_int_t)k, "model",
                                               json_array_get(c->members, k), "status", "waiting"));
  }
  json_array_append_new(json_object_get(c->st, "rounds"), json_pack("{s:i,s:O}", "round", round, "answers", answers));
  json_decref(answers); /* the round holds it */
  json_object_set_new(c->st, "round", json_integer(round));
  json_object_set_new(c->st, "phase", json_string("deliberating"));
  pq_err result = progress(c, "deliberating", json_pack("{s:i}", "round", round), "Round %d of %d", round,
                           c->max_rounds);
  for (size_t i = 0; result == PQ_OK && i < json_array_size(answers); i++) {
    result = ask(c, json_array_get(answers, i), round);
    /* round 1's answers are independent; from round 2 in sequential mode the next member is
     * asked once this one answered, and sees its revision */
    if (c->sequential && round > 1) break;
  }
  return result == PQ_OK ? save(c) : result;
}

static pq_err finish_round(council *c) {
  const char *texts[PQ_COUNCIL_MAX_MEMBERS];
  size_t members[PQ_COUNCIL_MAX_MEMBERS];
  size_t n = round_answers(c, texts, members);
  size_t asked = json_array_size(json_object_get(current_round(c), "answers"));
  int r = (int)num(current_round(c), "round");
  if (n == 0)
    return fail(c, "ALL_PROVIDERS_FAILED", json_pack("{s:i,s:I}", "round", r, "asked", (json_int_t)asked),
                "every council member failed in round %d", r);
  if ((int)n < c->quorum)
    return fail(c, "MINIMUM_QUORUM_NOT_MET",
                json_pack("{s:i,s:I,s:i}", "round", r, "answered", (json_int_t)n, "quorum", c->quorum),
                "only %zu of %zu council members answered in round %d; the quorum is %d", n,
                json_array_size(c->members), r, c->quorum);
  return measure(c);
}

static pq_err synthesize(council *c, bool consensus) {
  json_object_set_new(c->st, "consensus", json_boolean(consensus));
  json_object_set_new(c->st, "phase", json_string("synthesizing"));
  json_t *synthesis = json_object_get(c->st, "synthesis");
  if (!synthesis) {
    synthesis = json_pack("{s:[]}", "tried");
    json_object_set_new(c->st, "synthesis", synthesis);
  }
  json_t *tried = json_object_get(synthesis, "tried");
  double agreement = json_number_value(json_object_get(current_round(c), "agreement"));
  pq_err result;
  for (size_t k = json_array_size(tried); k < json_array_size(c->synthesizers); k = json_array_size(tried)) {
    const char *model = json_string_value(json_array_get(c->synthesizers, k));
    if (!pq_kind_model_served(c->ctx, model)) {
      json_array_append_new(tried, json_pack("{s:s,s:s}", "model", model, "error", "NOT_SERVED"));
      continue;
    }
    char id[PQ_UUID_LEN + 1];
    if ((result = submit_chat(c, model, synthesis_messages(c, consensus, agreement), id))) return result;
    json_object_set_new(synthesis, "job", json_string(id));
    json_object_set_new(c->st, "synthesisJob", json_string(id)); /* what the chunk relay looks for */
    json_object_set_new(synthesis, "model", json_string(model));
    json_object_set_new(synthesis, "attempt", json_integer(0));
    if ((result = progress(c, "synthesizing", json_pack("{s:s}", "model", model), "Synthesizing the %s answer with %s",
                           consensus ? "council's" : "disagreeing council's", model)))
      return result;
    return save(c);
  }
  /* nobody can write it: the answer nearest the others stands, and says it is degraded */
  const char *texts[PQ_COUNCIL_MAX_MEMBERS];
  size_t members[PQ_COUNCIL_MAX_MEMBERS];
  size_t n = round_answers(c, texts, members);
  double matrix[PQ_COUNCIL_MAX_MEMBERS * PQ_COUNCIL_MAX_MEMBERS];
  if (n >= 2 && pq_similarity_lexical(texts, n, matrix)) return PQ_ERR_NO_MEMORY;
  size_t best = n >= 2 ? pq_similarity_medoid(matrix, n) : 0;
  if ((result = progress(c, "synthesizing", NULL, "No synthesizer could write the answer: the answer nearest the "
                                                  "others stands")) ||
      (result = event(c, "chunk", json_pack("{s:s}", "content", texts[best]))))
    return result;
  return complete(c, texts[best], NULL, "nearest-answer");
}

/* ---- the hooks ---- */

static pq_err council_submit(pq_kind_ctx *ctx, pq_job *job, size_t n_steps) {
  (void)n_steps; /* a council starts its own */
  council c;
  pq_err result = load(ctx, job, &c);
  if (result != PQ_OK) goto out;
  /* a safety net over the members' own timeouts: every answer, measure and synthesis in turn */
  int64_t steps = (int64_t)c.max_rounds * ((c.sequential ? (int64_t)json_array_size(c.members) : 1) + 1) +
                  (int64_t)json_array_size(c.synthesizers) + 1;
  int64_t deadline = pq_kind_now(ctx) + steps * CHILD_ATTEMPTS * c.member_timeout_ms;
  if ((result = pq_kind_start(ctx, job, deadline)) ||
      (result = progress(&c, "distributing", json_pack("{s:O}", "members", c.members),
                         "Distributing to %zu council members", json_array_size(c.members))))
    goto out;
  result = start_round(&c, 1);
out:
  unload(&c);
  return result;
}

static json_t *answer_of(council *c, const char *job_id) {
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(current_round(c), "answers"), i, a) {
    const char *id = str(a, "job");
    if (id && strcmp(id, job_id) == 0) return a;
  }
  return NULL;
}

/* A completed child whose answer is only whitespace said nothing. */
static bool said_nothing(const pq_job *child) {
  char *text = child->state == PQ_JOB_COMPLETED ? output_text(child) : NULL;
  bool none = text && blank(text);
  free(text);
  return none;
}

static pq_err member_ended(council *c, json_t *answer, const pq_job *child) {
  bool empty = said_nothing(child);
  bool ok = child->state == PQ_JOB_COMPLETED && !empty;
  json_object_set_new(answer, "status", json_string(ok ? "completed" : "failed"));
  json_object_set_new(answer, "latencyMs", json_integer(child->finished_at - child->created_at));
  json_object_set_new(answer, "promptTokens", json_integer(child->prompt_tokens));
  json_object_set_new(answer, "completionTokens", json_integer(child->completion_tokens));
  if (ok) {
    char *text = output_text(child);
    if (!text) return PQ_ERR_NO_MEMORY;
    json_object_set_new(answer, "text", json_string(text));
    json_object_set_new(answer, "outputSha256", output_hash(child));
    free(text);
  } else {
    json_object_set_new(answer, "error",
                        empty ? json_pack("{s:s,s:s}", "code", "EMPTY_ANSWER", "message", "the member answered nothing")
                              : json_pack("{s:s,s:s?}", "code",
                                          child->error_code ? child->error_code : pq_job_state_name(child->state),
                                          "message", child->error_message));
  }
  json_t *answers = json_object_get(current_round(c), "answers");
  size_t done = 0, i;
  json_t *a, *next = NULL;
  json_array_foreach(answers, i, a) {
    const char *s = str(a, "status");
    if (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0) done++;
    else if (!next && strcmp(s, "waiting") == 0) next = a;
  }
  int r = (int)num(current_round(c), "round");
  pq_err result = progress(c, "deliberating",
                           json_pack("{s:i,s:I,s:b}", "round", r, "member", (json_int_t)num(answer, "member"), "answered", ok),
                           "Round %d: %zu of %zu members done", r, done, json_array_size(answers));
  if (result != PQ_OK) return result;
  if (next) return (result = ask(c, next, r)) == PQ_OK ? save(c) : result;
  if (done < json_array_size(answers)) return save(c);
  return finish_round(c);
}

static pq_err synthesis_ended(council *c, const pq_job *child) {
  json_t *synthesis = json_object_get(c->st, "synthesis");
  const char *model = str(synthesis, "model");
  if (child->state == PQ_JOB_COMPLETED && !said_nothing(child)) {
    char *text = output_text(child);
    if (!text) return PQ_ERR_NO_MEMORY;
    /* a quick answer streamed nothing; a streamed one may end with a tail not yet sent; a
     * stream that is not the answer's beginning (a retry that streamed less) starts over */
    const char *relayed = str(synthesis, "relayed");
    size_t shown = relayed ? strlen(relayed) : 0;
    pq_err sent = PQ_OK;
    if (shown && strncmp(text, relayed, shown) != 0) {
      sent = progress(c, "synthesizing", json_pack("{s:b}", "restart", 1), "The synthesis restarted");
      shown = 0;
    }
    if (sent == PQ_OK && shown < strlen(text)) sent = event(c, "chunk", json_pack("{s:s}", "content", text + shown));
    if (sent != PQ_OK) {
      free(text);
      return sent;
    }
    json_object_set_new(synthesis, "outputSha256", output_hash(child));
    json_object_del(synthesis, "relayed"); /* the decision holds it */
    char *who = strdup(model);
    pq_err result = who ? complete(c, text, who, json_is_true(json_object_get(c->st, "consensus")) ? NULL : "meta-synthesis")
                        : PQ_ERR_NO_MEMORY;
    free(who);
    free(text);
    return result;
  }
  const char *why = child->state == PQ_JOB_COMPLETED ? "EMPTY_ANSWER"
                    : child->error_code                ? child->error_code
                                                       : pq_job_state_name(child->state);
  json_array_append_new(json_object_get(synthesis, "tried"), json_pack("{s:s,s:s}", "model", model, "error", why));
  json_object_del(synthesis, "job");
  pq_err result = progress(c, "synthesizing", json_pack("{s:s,s:b}", "model", model, "restart", 1),
                           "The synthesizer %s failed (%s); trying the next one", model, why);
  return result == PQ_OK ? synthesize(c, json_is_true(json_object_get(c->st, "consensus"))) : result;
}

static pq_err council_child_terminal(pq_kind_ctx *ctx, pq_job *parent, const pq_job *child) {
  council c;
  pq_err result = load(ctx, parent, &c);
  if (result != PQ_OK) goto out;
  add_usage(&c, child);
  json_t *answer = answer_of(&c, child->id);
  const char *measure_job = str(current_round(&c), "measureJob");
  const char *synthesis_job = str(json_object_get(c.st, "synthesis"), "job");
  if (answer && strcmp(str(answer, "status"), "pending") == 0) result = member_ended(&c, answer, child);
  else if (measure_job && strcmp(measure_job, child->id) == 0 && !json_object_get(current_round(&c), "agreement"))
    result = measured(&c, child);
  else if (synthesis_job && strcmp(synthesis_job, child->id) == 0) result = synthesis_ended(&c, child);
  else result = save(&c); /* a step no longer waited for: only its usage counts */
out:
  unload(&c);
  return result;
}

static pq_err council_child_output(pq_kind_ctx *ctx, pq_job *parent, const pq_job *child, const char *const *data,
                                   size_t n) {
  char mark[64];
  snprintf(mark, sizeof mark, "\"synthesisJob\":\"%s\"", child->id);
  if (!parent->output || !strstr(parent->output, mark)) return PQ_OK; /* a member's draft: its own log keeps it */
  council c;
  pq_err result = load(ctx, parent, &c);
  json_t *synthesis = json_object_get(c.st, "synthesis");
  const char *job = str(synthesis, "job");
  if (result != PQ_OK || !job || strcmp(job, child->id) != 0) goto out; /* members' drafts stay in their own logs */
  if (num(synthesis, "attempt") != child->attempts) { /* a retry writes the answer afresh */
    bool restart = num(synthesis, "attempt") != 0;
    json_object_set_new(synthesis, "attempt", json_integer(child->attempts));
    json_object_set_new(synthesis, "relayed", json_string(""));
    if (restart && (result = progress(&c, "synthesizing", json_pack("{s:b}", "restart", 1), "The synthesis restarted")))
      goto out;
  }
  /* what the stream has shown, so the end sends only what is missing */
  pq_buf relayed = {0};
  const char *before = str(synthesis, "relayed");
  if (pq_buf_printf(&relayed, "%s", before ? before : "")) result = PQ_ERR_NO_MEMORY;
  for (size_t i = 0; i < n && result == PQ_OK; i++) {
    json_t *entry = json_loads(data[i], 0, NULL);
    const char *content = json_string_value(json_object_get(entry, "content"));
    if (content && pq_buf_printf(&relayed, "%s", content)) result = PQ_ERR_NO_MEMORY;
    json_decref(entry);
    if (result == PQ_OK) result = pq_kind_event(ctx, parent, "chunk", data[i]);
  }
  json_object_set_new(synthesis, "relayed", json_string(relayed.data ? relayed.data : ""));
  pq_buf_free(&relayed);
  if (result == PQ_OK) result = save(&c);
out:
  unload(&c);
  return result;
}

/* A council that ended early (cancelled, failed, timed out) stops what it started. */
static pq_err council_terminal(pq_kind_ctx *ctx, const pq_job *job) {
  if (job->state == PQ_JOB_COMPLETED || !job->output) return PQ_OK;
  json_t *st = json_loads(job->output, 0, NULL);
  pq_err result = PQ_OK;
  size_t r, i;
  json_t *rnd, *a;
  json_array_foreach(json_object_get(st, "rounds"), r, rnd) {
    json_array_foreach(json_object_get(rnd, "answers"), i, a)
      if (result == PQ_OK && str(a, "job") && strcmp(str(a, "status"), "pending") == 0)
        result = pq_kind_cancel(ctx, str(a, "job"));
    if (result == PQ_OK && str(rnd, "measureJob")) result = pq_kind_cancel(ctx, str(rnd, "measureJob"));
  }
  const char *synthesis = str(json_object_get(st, "synthesis"), "job");
  if (result == PQ_OK && synthesis) result = pq_kind_cancel(ctx, synthesis);
  json_decref(st);
  return result;
}

const pq_job_kind pq_kind_council = {
    .name = PQ_COUNCIL_KIND,
    .input_fields = fields,
    .default_model = PQ_COUNCIL_KIND, /* a council is run here, never queued for a worker of a model */
    .validate = council_validate,
    .on_terminal = council_terminal,
    .on_submit = council_submit,
    .on_child_terminal = council_child_terminal,
    .on_child_output = council_child_output,
};
