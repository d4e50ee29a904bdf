/* promptq migrate: applies pending schema migrations to a data folder. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "base/log.h"
#include "store/store.h"

typedef struct {
  char data[1024];
} migrate_opts;

static const pq_opt migrate_options[] = {
    {"data", "PROMPTQ_DATA", PQ_OPT_STR, offsetof(migrate_opts, data), sizeof(((migrate_opts *)0)->data),
     "./data", 0, 0, "data folder holding the store"},
};

int pq_cmd_migrate(int argc, char **argv) {
  migrate_opts o;
  pq_args args;
  char err[512], db[1200];
  if (pq_opts_load(migrate_options, 1, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq migrate: %s\n", err);
    return 2;
  }
  if (args.help) {
    pq_opts_usage(stdout, "promptq migrate [--data DIR]",
                  "Applies the store's pending schema migrations (serve also does this at start).",
                  migrate_options, 1);
    return 0;
  }
  if (pq_cli_data_path(o.data, db, sizeof db) != 0) return 1;
  pq_store_config cfg = {.path = db, .sync_full = true, .busy_timeout_ms = 10000, .read_pool_size = 1};
  const pq_store_ops *ops = &pq_store_sqlite_ops;
  pq_store *store = NULL;
  int applied = 0;
  pq_err e = ops->open(&cfg, &store);
  if (e == PQ_OK) e = ops->migrate(store, &applied);
  if (e == PQ_OK) printf("schema version %d (%d migration%s applied)\n", ops->schema_version(store),
                         applied, applied == 1 ? "" : "s");
  else fprintf(stderr, "promptq migrate: %s\n", pq_err_message(e));
  if (store) ops->close(store);
  return e == PQ_OK ? 0 : 1;
}
