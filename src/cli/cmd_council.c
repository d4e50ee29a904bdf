/* promptq council: asks a council of models (the council job kind) and
 * prints its decision; --stream shows the deliberation as it happens
 * (progress on stderr, the synthesis on stdout as it is written). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
  pq_cli_client_opts client;
  char session[256], members[1024], fallback[32], mode[32];
  int rounds;
  char threshold[32];
  bool stream;
  int64_t timeout_ms;
} council_opts;

#define O(field) offsetof(council_opts, field)
#define S(field) sizeof(((council_opts *)0)->field)
static const pq_opt council_options[] = {
    PQ_CLI_CLIENT_OPTS(council_opts),
    {"session", NULL, PQ_OPT_STR, O(session), S(session), NULL, 0, 0,
     "a session id: the council sees this session's earlier questions and decisions"},
    {"members", NULL, PQ_OPT_STR, O(members), S(members), NULL, 0, 0,
     "narrow the council to these members (comma-separated)"},
    {"rounds", NULL, PQ_OPT_INT, O(rounds), 0, "0", 0, 10, "rounds at most (0: the server's default)"},
    {"threshold", NULL, PQ_OPT_STR, O(threshold), S(threshold), NULL, 0, 0, "agreement to stop at, 0 to 1"},
    {"fallback", NULL, PQ_OPT_STR, O(fallback), S(fallback), NULL, 0, 0,
     "without agreement: meta-synthesis, majority or fail"},
    {"mode", NULL, PQ_OPT_STR, O(mode), S(mode), NULL, 0, 0, "parallel or sequential negotiation"},
    {"stream", NULL, PQ_OPT_BOOL, O(stream), 0, "false", 0, 0, "show the deliberation as it happens"},
    {"timeout", NULL, PQ_OPT_MS, O(timeout_ms), 0, "30m", 1000, 86400000, "give up waiting after"},
};
#undef O
#undef S

typedef struct {
  char last_id[64];
  bool printed;
  int result; /* -1 while running */
} stream_state;

/* What a finished council says, on stderr: how sure it is and why. */
static void print_verdict(json_t *job) {
  json_t *out = json_object_get(job, "output");
  fprintf(stderr, "[council: confidence %s, agreement %.2f over %lld round(s)%s%s]\n",
          json_string_value(json_object_get(out, "confidence")) ?: "?",
          json_number_value(json_object_get(out, "agreementLevel")),
          (long long)json_integer_value(json_object_get(out, "roundsRun")),
          json_is_true(json_object_get(out, "degraded")) ? ", degraded: " : "",
          json_is_true(json_object_get(out, "degraded")) ? json_string_value(json_object_get(out, "fallback")) ?: "" : "");
}

static int on_event(void *ctx, const char *event, const char *id, const char *data) {
  stream_state *st = ctx;
  snprintf(st->last_id, sizeof st->last_id, "%s", id);
  json_t *d = json_loads(data, 0, NULL);
  if (strcmp(event, "progress") == 0 && json_object_get(d, "message")) {
    if (json_is_true(json_object_get(d, "restart")) && st->printed) {
      fputc('\n', stdout);
      st->printed = false;
    }
    fprintf(stderr, "[%s] %s\n", json_string_value(json_object_get(d, "status")) ?: "",
            json_string_value(json_object_get(d, "message")));
  } else if (strcmp(event, "chunk") == 0) {
    fputs(json_string_value(json_object_get(d, "content")) ?: "", stdout);
    fflush(stdout);
    st->printed = true;
  } else if (strcmp(event, "complete") == 0) {
    putchar('\n');
    fflush(stdout); /* the answer ends before the verdict on stderr */
    print_verdict(d);
    st->result = 0;
  } else if (strcmp(event, "error") == 0) {
    fprintf(stderr, "promptq council: the council ended %s: %s\n", json_string_value(json_object_get(d, "code")) ?: "",
            json_string_value(json_object_get(d, "message")) ?: "");
    st->result = 1;
  }
  json_decref(d);
  return st->result >= 0;
}

static int stream_council(const pq_cli_client_opts *o, const char *id) {
  char path[160];
  snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
  stream_state st = {.result = -1};
  pq_cli_follow(o, path, on_event, &st, st.last_id, &st.result);
  if (st.result < 0) fprintf(stderr, "\npromptq council: lost the stream of council %s\n", id);
  return st.result < 0 ? 1 : st.result;
}

static int wait_council(const council_opts *o, const char *id) {
  char path[160];
  snprintf(path, sizeof path, "/v1/jobs/%s?wait=30", id);
  json_t *job = NULL;
  for (int64_t waited = 0;; waited += 30000) {
    if (pq_cli_call(&o->client, "GET", path, NULL, 45000, &job) != 0) return 1;
    const char *status = json_string_value(json_object_get(job, "status"));
    if (status && strcmp(status, "leased") != 0 && strcmp(status, "queued") != 0) break;
    json_decref(job);
    job = NULL;
    if (waited >= o->timeout_ms) {
      fprintf(stderr, "promptq council: council %s is still deliberating; see 'promptq jobs show %s'\n", id, id);
      return 1;
    }
  }
  int rc = strcmp(json_string_value(json_object_get(job, "status")), "completed") == 0 ? 0 : 1;
  if (o->client.json) pq_cli_print_json(job);
  else if (rc == 0) {
    printf("%s\n", json_string_value(json_object_get(json_object_get(job, "output"), "decision")) ?: "");
    print_verdict(job);
  } else {
    json_t *err = json_object_get(job, "error");
    fprintf(stderr, "promptq council: the council ended %s: %s\n", json_string_value(json_object_get(err, "code")) ?: "",
            json_string_value(json_object_get(err, "message")) ?: "");
  }
  json_decref(job);
  return rc;
}

int pq_cmd_council(int argc, char **argv) {
  council_opts o;
  pq_args args;
  char err[512];
  size_t n = sizeof council_options / sizeof council_options[0];
  if (pq_opts_load(council_options, n, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq council: %s\n", err);
    return 2;
  }
  if (args.help || args.n_positional != 1) {
    pq_opts_usage(args.help ? stdout : stderr, "promptq council [options] \"QUESTION\"",
                  "Asks a council of models; prints its decision (--stream: as it deliberates).", council_options, n);
    return args.help ? 0 : 2;
  }
  json_t *input = json_pack("{s:s}", "query", args.positional[0]);
  if (o.session[0]) json_object_set_new(input, "sessionId", json_string(o.session));
  if (o.rounds) json_object_set_new(input, "maxRounds", json_integer(o.rounds));
  if (o.fallback[0]) json_object_set_new(input, "fallbackStrategy", json_string(o.fallback));
  if (o.mode[0]) json_object_set_new(input, "negotiationMode", json_string(o.mode));
  if (o.threshold[0]) json_object_set_new(input, "agreementThreshold", json_real(strtod(o.threshold, NULL)));
  if (o.members[0]) {
    json_t *list = json_array();
    for (char *save = NULL, *m = strtok_r(o.members, ", ", &save); m; m = strtok_r(NULL, ", ", &save))
      json_array_append_new(list, json_string(m));
    json_object_set_new(input, "members", list);
  }
  json_t *body = json_pack("{s:s,s:o}", "kind", "council", "input", input);
  json_t *resp = NULL;
  int rc = pq_cli_call(&o.client, "POST", "/v1/jobs", body, 30000, &resp);
  json_decref(body);
  if (rc != 0) return 1;
  const char *id = json_string_value(json_object_get(resp, "id"));
  rc = o.stream ? stream_council(&o.client, id) : wait_council(&o, id);
  json_decref(resp);
  return rc;
}
