/* promptq worker: leases jobs from a coordinator and runs them. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "base/log.h"
#include "worker/agent.h"

typedef struct {
  pq_agent_config agent;
  char log_level[16];
} worker_opts;

#define O(field) offsetof(worker_opts, field)
#define S(field) sizeof(((worker_opts *)0)->field)
static const pq_opt worker_options[] = {
    {"coordinator", "PROMPTQ_COORDINATOR", PQ_OPT_STR, O(agent.coordinator), S(agent.coordinator),
     "http://127.0.0.1:8080", 0, 0, "the coordinator's base URL"},
    {"backend", "PROMPTQ_BACKEND", PQ_OPT_STR, O(agent.backend), S(agent.backend), "echo", 0, 0,
     "what runs the jobs: echo, or openai (any OpenAI-compatible server)"},
    {"base-url", "PROMPTQ_BASE_URL", PQ_OPT_STR, O(agent.base_url), S(agent.base_url), NULL, 0, 0,
     "openai: the model server, e.g. http://127.0.0.1:8000/v1 (llama.cpp, Ollama, vLLM, ...)"},
    {"api-key-env", "PROMPTQ_UPSTREAM_KEY_ENV", PQ_OPT_STR, O(agent.api_key_env), S(agent.api_key_env),
     "OPENAI_API_KEY", 0, 0, "openai: the environment variable holding the model server's key"},
    {"upstream-model", "PROMPTQ_UPSTREAM_MODEL", PQ_OPT_STR, O(agent.upstream_model),
     S(agent.upstream_model), NULL, 0, 0,
     "openai: the model name the server knows (default: the name clients use)"},
    {"request-timeout", "PROMPTQ_REQUEST_TIMEOUT", PQ_OPT_MS, O(agent.request_timeout_ms), 0, "10m",
     1000, 86400000, "openai: one upstream request at most"},
    {"model", "PROMPTQ_MODEL", PQ_OPT_STR, O(agent.models), S(agent.models), "echo", 0, 0,
     "model name(s) this worker serves, comma-separated"},
    {"concurrency", "PROMPTQ_CONCURRENCY", PQ_OPT_INT, O(agent.concurrency), 0, "1", 1, 1024,
     "jobs run at once"},
    {"name", "PROMPTQ_WORKER_NAME", PQ_OPT_STR, O(agent.name), S(agent.name), NULL, 0, 0,
     "name shown for this worker (default: the host name)"},
    {"api-key", "PROMPTQ_API_KEY", PQ_OPT_STR, O(agent.api_key), S(agent.api_key), NULL, 0, 0,
     "credential sent as a Bearer token"},
    {"echo-delay", "PROMPTQ_ECHO_DELAY", PQ_OPT_MS, O(agent.echo_delay_ms), 0, "0ms", 0, 60000,
     "echo backend: pause per token"},
    {"lease-wait", "PROMPTQ_LEASE_WAIT", PQ_OPT_MS, O(agent.lease_wait_ms), 0, "20s", 1000, 3600000,
     "how long one lease call waits for a job"},
    {"prefetch", "PROMPTQ_PREFETCH", PQ_OPT_INT, O(agent.prefetch), 0, "0", 0, 999,
     "jobs leased ahead, in the same lease call, for the next free slot (fewer calls for short jobs; "
     "they wait here while other workers may be idle)"},
    {"labels", "PROMPTQ_LABELS", PQ_OPT_STR, O(agent.labels), S(agent.labels), NULL, 0, 0,
     "KEY=VALUE,...: labels jobs may require (gpu=h100,region=eu; docs/routing.md)"},
    {"context-length", "PROMPTQ_CONTEXT_LENGTH", PQ_OPT_INT, O(agent.context_length), 0, "0", 0, 100000000,
     "the longest context the model takes, in tokens (jobs may require a minimum; 0: not said)"},
    {"signing-key", "PROMPTQ_SIGNING_KEY", PQ_OPT_STR, O(agent.signing_key), S(agent.signing_key), NULL, 0, 0,
     "sign results with the Ed25519 key in this file (made if missing): receipts carry the worker's signature"},
    {"log-level", "PROMPTQ_LOG_LEVEL", PQ_OPT_STR, O(log_level), S(log_level), "info", 0, 0,
     "debug, info, warn or error"},
};
#undef O
#undef S

static volatile sig_atomic_t stop_requested;
static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

int pq_cmd_worker(int argc, char **argv) {
  worker_opts o;
  pq_args args;
  char err[512];
  size_t n = sizeof worker_options / sizeof worker_options[0];
  if (pq_opts_load(worker_options, n, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq worker: %s\n", err);
    return 2;
  }
  if (args.help) {
    pq_opts_usage(stdout, "promptq worker [options]",
                  "Registers with a coordinator, leases jobs, runs them on a backend, reports results.",
                  worker_options, n);
    return 0;
  }
  int level = pq_log_parse_level(o.log_level);
  if (level < 0 || args.n_positional) {
    fprintf(stderr, "promptq worker: unexpected arguments (see --help)\n");
    return 2;
  }
  pq_log_set_level((pq_log_level)level);
  if (!o.agent.name[0]) gethostname(o.agent.name, sizeof o.agent.name - 1);
  struct sigaction sa = {.sa_handler = on_stop};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return pq_agent_run(&o.agent, &stop_requested);
}
