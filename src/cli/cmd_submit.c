/* promptq submit: submits a job and, with --wait, prints its answer. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
  pq_cli_client_opts client;
  char model[256];
  char system[8192];
  int priority;
  bool wait;
  bool stream;
  int64_t timeout_ms;
} submit_opts;

#define O(field) offsetof(submit_opts, field)
static const pq_opt submit_options[] = {
    PQ_CLI_CLIENT_OPTS(submit_opts),
    {"model", "PROMPTQ_MODEL", PQ_OPT_STR, O(model), sizeof(((submit_opts *)0)->model), "echo", 0, 0,
     "the model to run the job"},
    {"system", NULL, PQ_OPT_STR, O(system), sizeof(((submit_opts *)0)->system), NULL, 0, 0,
     "a system prompt"},
    {"priority", NULL, PQ_OPT_INT, O(priority), 0, "0", -1000, 1000, "higher runs first"},
    {"wait", NULL, PQ_OPT_BOOL, O(wait), 0, "false", 0, 0, "wait for the job and print its output"},
    {"stream", NULL, PQ_OPT_BOOL, O(stream), 0, "false", 0, 0,
     "print the output as it is generated (resumes if the connection drops)"},
    {"timeout", NULL, PQ_OPT_MS, O(timeout_ms), 0, "10m", 1000, 86400000, "with --wait: give up after"},
};
#undef O

static const char *output_text(json_t *job) {
  json_t *out = json_object_get(job, "output");
  return json_is_string(out) ? json_string_value(out) : NULL;
}

typedef struct {
  size_t printed;     /* bytes of output already shown */
  char last_id[64];
  int result;         /* -1 while running, then the exit code */
} stream_state;

static int on_stream_event(void *ctx, const char *event, const char *id, const char *data) {
  stream_state *st = ctx;
  snprintf(st->last_id, sizeof st->last_id, "%s", id);
  json_t *d = json_loads(data, 0, NULL);
  if (strcmp(event, "progress") == 0 && json_integer_value(json_object_get(d, "attempt")) > 1 &&
      st->printed) {
    fprintf(stderr, "\n[promptq: the worker stopped; retrying from the start]\n");
    st->printed = 0;
  } else if (strcmp(event, "chunk") == 0) {
    const char *text = json_string_value(json_object_get(d, "content"));
    if (text) {
      fputs(text, stdout);
      fflush(stdout);
      st->printed += strlen(text);
    }
  } else if (strcmp(event, "complete") == 0) {
    /* whatever the worker did not stream comes with the result */
    const char *out = output_text(d);
    if (out && strlen(out) > st->printed) fputs(out + st->printed, stdout);
    else if (!out && st->printed == 0) pq_cli_print_json(json_object_get(d, "output"));
    putchar('\n');
    st->result = 0;
  } else if (strcmp(event, "error") == 0) {
    fprintf(stderr, "%spromptq submit: the job ended %s: %s\n", st->printed ? "\n" : "",
            json_string_value(json_object_get(d, "status")) ?: "?",
            json_string_value(json_object_get(d, "message")) ?: json_string_value(json_object_get(d, "code")) ?: "");
    st->result = 1;
  }
  json_decref(d);
  return st->result >= 0;
}

static int stream_job(const pq_cli_client_opts *o, const char *id) {
  char path[160];
  snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
  stream_state st = {.result = -1};
  pq_cli_follow(o, path, on_stream_event, &st, st.last_id, &st.result);
  if (st.result < 0) fprintf(stderr, "\npromptq submit: lost the stream of job %s\n", id);
  return st.result < 0 ? 1 : st.result;
}

int pq_cmd_submit(int argc, char **argv) {
  submit_opts o;
  pq_args args;
  char err[512];
  size_t n = sizeof submit_options / sizeof submit_options[0];
  if (pq_opts_load(submit_options, n, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq submit: %s\n", err);
    return 2;
  }
  if (args.help || args.n_positional != 1) {
    pq_opts_usage(args.help ? stdout : stderr, "promptq submit [options] \"PROMPT\"",
                  "Submits a job; prints its id, or with --wait its output.", submit_options, n);
    return args.help ? 0 : 2;
  }
  json_t *body = json_pack("{s:s,s:s,s:i}", "model", o.model, "prompt", args.positional[0],
                           "priority", o.priority);
  if (o.system[0]) json_object_set_new(body, "system", json_string(o.system));
  json_t *resp = NULL;
  int rc = pq_cli_call(&o.client, "POST", "/v1/jobs", body, 30000, &resp);
  json_decref(body);
  if (rc != 0) return 1;
  const char *id = json_string_value(json_object_get(resp, "id"));
  if (o.stream) {
    rc = stream_job(&o.client, id);
    json_decref(resp);
    return rc;
  }
  if (!o.wait) {
    if (o.client.json) pq_cli_print_json(resp);
    else printf("%s\n", id);
    json_decref(resp);
    return 0;
  }
  char path[160];
  snprintf(path, sizeof path, "/v1/jobs/%s?wait=30", id);
  int64_t waited = 0;
  json_t *job = NULL;
  for (;;) {
    rc = pq_cli_call(&o.client, "GET", path, NULL, 45000, &job);
    if (rc != 0) break;
    const char *status = json_string_value(json_object_get(job, "status"));
    if (status && strcmp(status, "queued") != 0 && strcmp(status, "leased") != 0) break;
    json_decref(job);
    job = NULL;
    if ((waited += 30000) >= o.timeout_ms) {
      fprintf(stderr, "promptq submit: job %s is still running; see 'promptq jobs show %s'\n", id, id);
      rc = 1;
      break;
    }
  }
  if (job) {
    const char *status = json_string_value(json_object_get(job, "status"));
    if (o.client.json) pq_cli_print_json(job);
    else if (strcmp(status, "completed") == 0 && output_text(job)) printf("%s\n", output_text(job));
    else if (strcmp(status, "completed") == 0) pq_cli_print_json(json_object_get(job, "output"));
    else fprintf(stderr, "promptq submit: job %s ended %s: %s\n", id, status,
                 json_string_value(json_object_get(json_object_get(job, "error"), "message")) ?: "");
    rc = strcmp(status, "completed") == 0 ? 0 : 1;
  }
  json_decref(job);
  json_decref(resp);
  return rc;
}
