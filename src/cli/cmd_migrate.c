/* promptq migrate: applies pending schema migrations to a store. */
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "base/log.h"
#include "store/store.h"

typedef struct {
  char data[1024];
  char store[1200];
} migrate_opts;

static const pq_opt migrate_options[] = {
    {"data", "PROMPTQ_DATA", PQ_OPT_STR, offsetof(migrate_opts, data), sizeof(((migrate_opts *)0)->data),
     "./data", 0, 0, "data folder holding the store"},
    {"store", "PROMPTQ_STORE", PQ_OPT_STR, offsetof(migrate_opts, store), sizeof(((migrate_opts *)0)->store), NULL,
     0, 0, "the store's URL (default: sqlite://DATA/promptq.db)"},
};
#define N_OPTS (sizeof migrate_options / sizeof migrate_options[0])

int pq_cmd_migrate(int argc, char **argv) {
  migrate_opts o;
  pq_args args;
  char err[512], url[1300], why[300];
  if (pq_opts_load(migrate_options, N_OPTS, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq migrate: %s\n", err);
    return 2;
  }
  if (args.help) {
    pq_opts_usage(stdout, "promptq migrate [--data DIR | --store URL]",
                  "Applies the store's pending schema migrations (serve also does this at start).",
                  migrate_options, N_OPTS);
    return 0;
  }
  umask(077); /* a store it makes is the operator's alone */
  if (pq_cli_store_url(o.store, o.data, url, sizeof url) != 0) return 1;
  pq_store_config cfg = {.sync_full = true, .busy_timeout_ms = 10000, .read_pool_size = 1};
  pq_store *store = NULL;
  int applied = 0;
  pq_err e = pq_store_open(url, &cfg, &store, why, sizeof why);
  if (e != PQ_OK) {
    fprintf(stderr, "promptq migrate: %s\n", why);
    return e == PQ_ERR_INVALID_REQUEST ? 2 : 1;
  }
  e = store->ops->migrate(store, &applied);
  if (e == PQ_OK) printf("schema version %d (%d migration%s applied)\n", store->ops->schema_version(store),
                         applied, applied == 1 ? "" : "s");
  else fprintf(stderr, "promptq migrate: %s\n", pq_err_message(e));
  pq_store_close(store);
  return e == PQ_OK ? 0 : 1;
}
