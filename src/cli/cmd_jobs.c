/* promptq jobs ls | show ID | cancel ID */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
  pq_cli_client_opts client;
  char status[32];
  char model[256];
  int limit, offset;
} jobs_opts;

#define O(field) offsetof(jobs_opts, field)
static const pq_opt jobs_options[] = {
    PQ_CLI_CLIENT_OPTS(jobs_opts),
    {"status", NULL, PQ_OPT_STR, O(status), sizeof(((jobs_opts *)0)->status), NULL, 0, 0,
     "ls: only jobs in this state"},
    {"model", NULL, PQ_OPT_STR, O(model), sizeof(((jobs_opts *)0)->model), NULL, 0, 0,
     "ls: only jobs for this model"},
    {"limit", NULL, PQ_OPT_INT, O(limit), 0, "20", 1, 1000, "ls: how many"},
    {"offset", NULL, PQ_OPT_INT, O(offset), 0, "0", 0, 1000000000, "ls: skip this many"},
};
#undef O

static void print_row(json_t *j) {
  printf("%-36s %6lld  %-10s %-16s %s\n", json_string_value(json_object_get(j, "id")),
         (long long)json_integer_value(json_object_get(j, "number")),
         json_string_value(json_object_get(j, "status")), json_string_value(json_object_get(j, "model")),
         json_string_value(json_object_get(j, "created_at")));
}

int pq_cmd_jobs(int argc, char **argv) {
  jobs_opts o;
  pq_args args;
  char err[512], path[1024];
  size_t n = sizeof jobs_options / sizeof jobs_options[0];
  if (pq_opts_load(jobs_options, n, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq jobs: %s\n", err);
    return 2;
  }
  const char *verb = args.n_positional ? args.positional[0] : NULL;
  bool needs_id = verb && (strcmp(verb, "show") == 0 || strcmp(verb, "cancel") == 0);
  if (args.help || !verb || (needs_id ? args.n_positional != 2 : strcmp(verb, "ls") != 0)) {
    pq_opts_usage(args.help ? stdout : stderr, "promptq jobs ls [--status S] [--model M] | show ID | cancel ID",
                  "Lists, shows or cancels jobs.", jobs_options, n);
    return args.help ? 0 : 2;
  }
  json_t *resp = NULL;
  int rc;
  if (strcmp(verb, "ls") == 0) {
    int len = snprintf(path, sizeof path, "/v1/jobs?limit=%d&offset=%d", o.limit, o.offset);
    if (o.status[0]) len += snprintf(path + len, sizeof path - (size_t)len, "&status=%s", o.status);
    if (o.model[0]) snprintf(path + len, sizeof path - (size_t)len, "&model=%s", o.model);
    if ((rc = pq_cli_call(&o.client, "GET", path, NULL, 30000, &resp)) != 0) return rc;
    if (o.client.json) {
      pq_cli_print_json(resp);
    } else {
      size_t i;
      json_t *j;
      json_array_foreach(json_object_get(resp, "data"), i, j) print_row(j);
      json_t *p = json_object_get(resp, "pagination");
      printf("(%zu of %lld)\n", json_array_size(json_object_get(resp, "data")),
             (long long)json_integer_value(json_object_get(p, "total")));
    }
  } else {
    const char *id = args.positional[1];
    bool cancel = strcmp(verb, "cancel") == 0;
    snprintf(path, sizeof path, cancel ? "/v1/jobs/%s/cancel" : "/v1/jobs/%s", id);
    if ((rc = pq_cli_call(&o.client, cancel ? "POST" : "GET", path, NULL, 30000, &resp)) != 0) return rc;
    pq_cli_print_json(resp);
  }
  json_decref(resp);
  return 0;
}
