/* The worker agent: registers with a coordinator, heartbeats, leases jobs
 * (long-poll), runs them on a backend, and reports results, retrying its
 * calls with backoff. Stops cleanly: in-flight jobs finish and are reported. */
#ifndef PQ_WORKER_AGENT_H
#define PQ_WORKER_AGENT_H

#include <signal.h>
#include <stdint.h>

typedef struct pq_agent_config {
  char coordinator[512];
  char backend[32];
  char models[1024];     /* comma-separated */
  int concurrency;
  char name[128];
  char api_key[512];
  int64_t echo_delay_ms;
  int64_t lease_wait_ms; /* how long one lease call may wait for a job */
  int prefetch;          /* jobs leased ahead of the slots (0: each slot leases one when it is free) */
  char base_url[512];    /* openai: the model server */
  char api_key_env[128]; /* openai: the environment variable holding its key */
  char upstream_model[256];
  int64_t request_timeout_ms;
  char signing_key[1024]; /* a file with an Ed25519 key (made if missing): results are signed */
  char labels[1024];      /* "KEY=VALUE,...": what jobs' requirements are matched against (docs/routing.md) */
  int context_length;     /* the longest context the model takes, in tokens; 0: not said */
} pq_agent_config;

/* Runs until *stop becomes non-zero. Returns 0, or 1 when it could not start. */
int pq_agent_run(const pq_agent_config *cfg, volatile sig_atomic_t *stop);

#endif
