/* The promptq command line: one function per subcommand. */
#ifndef PQ_CLI_CLI_H
#define PQ_CLI_CLI_H

#include <jansson.h>

#include "client/client.h"
#include "engine/coord.h"

int pq_cmd_serve(int argc, char **argv);
int pq_cmd_worker(int argc, char **argv);
int pq_cmd_submit(int argc, char **argv);
int pq_cmd_council(int argc, char **argv);
int pq_cmd_jobs(int argc, char **argv);
int pq_cmd_migrate(int argc, char **argv);
int pq_cmd_user(int argc, char **argv);
int pq_cmd_key(int argc, char **argv);
int pq_cmd_routes(int argc, char **argv);
int pq_cmd_receipt(int argc, char **argv);
int pq_cmd_credit(int argc, char **argv);
int pq_cmd_price(int argc, char **argv);
int pq_cmd_budget(int argc, char **argv);

/* Options shared by the commands that talk to a coordinator. */
typedef struct pq_cli_client_opts {
  char coordinator[512];
  char api_key[512];
  bool json;
} pq_cli_client_opts;

#define PQ_CLI_CLIENT_OPTS(type)                                                             \
  {"coordinator", "PROMPTQ_COORDINATOR", PQ_OPT_STR, offsetof(type, client.coordinator),    \
   sizeof(((type *)0)->client.coordinator), "http://127.0.0.1:8080", 0, 0,                   \
   "the coordinator's base URL"},                                                            \
  {"api-key", "PROMPTQ_API_KEY", PQ_OPT_STR, offsetof(type, client.api_key),                \
   sizeof(((type *)0)->client.api_key), NULL, 0, 0, "credential sent as a Bearer token"},   \
  {"json", NULL, PQ_OPT_BOOL, offsetof(type, client.json), 0, "false", 0, 0,                 \
   "print the coordinator's JSON answer as it is"}

/* Calls the coordinator; prints an error and returns non-zero unless the
 * status is 2xx. *out is the caller's. */
int pq_cli_call(const pq_cli_client_opts *o, const char *method, const char *path, json_t *body,
                long timeout_ms, json_t **out);
void pq_cli_print_json(json_t *v);

/* Follows a job's event stream at path, reconnecting (up to 10 times) from
 * last_id (a buffer on_event keeps up to date) while *result stays below 0
 * (on_event sets it when the stream ends its story). */
void pq_cli_follow(const pq_cli_client_opts *o, const char *path, pq_sse_fn on_event, void *ctx, const char *last_id,
                   const int *result);

/* Writes "<data>/promptq.db" into out; creates data when missing. 0 or -1. */
int pq_cli_data_path(const char *data, char *out, size_t size);
/* The store to open: store when given, else the data folder's SQLite file
 * (the folder is made). Prints why and returns -1 on failure. */
int pq_cli_store_url(const char *store, const char *data, char *out, size_t size);
/* An engine of the command line's own on that store (admin_only: no
 * reaper, no index), whose typed operations the store serialises with a
 * running server's. NULL after printing why. Close with pq_coord_close. */
pq_coord *pq_cli_engine_open(const char *store, const char *data);

#endif
