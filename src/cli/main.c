/* promptq: one binary, several commands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "base/ids.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} commands[] = {
    {"serve", pq_cmd_serve, "run a coordinator"},
    {"worker", pq_cmd_worker, "run a worker that leases and runs jobs (echo, or any OpenAI-compatible server)"},
    {"submit", pq_cmd_submit, "submit a job (--wait for its answer, --stream for its tokens)"},
    {"council", pq_cmd_council, "ask a council of models (--stream to watch it deliberate)"},
    {"price", pq_cmd_price, "prices per model: set MODEL --input USD --output USD | ls"},
    {"credit", pq_cmd_credit, "a user's credit: grant USER USD | show USER"},
    {"budget", pq_cmd_budget, "spending limits: set USER|--key ID USD --period day|month | ls"},
    {"jobs", pq_cmd_jobs, "list, show or cancel jobs: jobs ls|show ID|cancel ID"},
    {"user", pq_cmd_user, "users: user add NAME [--admin] | ls | disable NAME | enable NAME"},
    {"key", pq_cmd_key, "API keys: key create --user NAME --scope worker | ls | revoke ID"},
    {"receipt", pq_cmd_receipt, "check a signed receipt: receipt verify FILE [--public-key B64]"},
    {"routes", pq_cmd_routes, "print the HTTP routes and who may call them (--json; --openapi: the OpenAPI document)"},
    {"migrate", pq_cmd_migrate, "apply the store's schema migrations"},
};

static void usage(FILE *out) {
  fprintf(out, "promptq %s: a durable queue for asynchronous AI jobs\n\nusage: promptq COMMAND [options]\n\n",
          PQ_VERSION);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(out, "  %-10s %s\n\n'promptq COMMAND --help' describes each command's options.\n", "version",
          "print the version");
}

int main(int argc, char **argv) {
  if (pq_ids_init() != 0) {
    fprintf(stderr, "promptq: cannot initialise libsodium\n");
    return 1;
  }
  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("promptq %s\n", PQ_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "promptq: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
