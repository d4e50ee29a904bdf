/* Options for every command, from one table per command.
 *
 * Each option has a flag (--lease-timeout), an environment variable
 * (PROMPTQ_LEASE_TIMEOUT), a key in the optional config file
 * (lease-timeout = 60) and a default. Precedence, lowest first:
 * default, config file (--config / PROMPTQ_CONFIG), environment, flag.
 * Values are written into a caller's struct at each option's offset. */
#ifndef PQ_CLI_OPTIONS_H
#define PQ_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  PQ_OPT_STR,      /* char[size] */
  PQ_OPT_INT,      /* int */
  PQ_OPT_MS,       /* int64_t milliseconds; "30" = seconds, or 500ms, 2s, 5m, 1h, 30d */
  PQ_OPT_SIZE,     /* int64_t bytes; "1048576", 64k, 1m */
  PQ_OPT_BOOL,     /* bool; a bare --flag means true */
} pq_opt_type;

typedef struct pq_opt {
  const char *name;  /* flag and config-file key, without the dashes */
  const char *env;   /* environment variable, or NULL */
  pq_opt_type type;
  size_t offset;     /* where in the target struct */
  size_t size;       /* PQ_OPT_STR: buffer size */
  const char *def;   /* default, as text (NULL = empty / 0) */
  int64_t min, max;  /* for numbers (in ms/bytes for those types); min == max: no check */
  const char *help;
} pq_opt;

typedef struct pq_args {
  const char *positional[16]; /* borrowed from argv */
  int n_positional;
  int help;                   /* --help was given */
} pq_args;

/* Fills target from defaults, config file, environment and argv (argv[0] is
 * the command name and is skipped). Returns 0, or -1 with a message in err. */
int pq_opts_load(const pq_opt *opts, size_t n, void *target, int argc, char **argv, pq_args *args,
                 char *err, size_t err_size);

void pq_opts_usage(FILE *out, const char *usage, const char *summary, const pq_opt *opts, size_t n);

/* Parses one value of a type (exposed for tests). Returns 0 or -1. */
int pq_parse_ms(const char *s, int64_t *out);
int pq_parse_size(const char *s, int64_t *out);

#endif
