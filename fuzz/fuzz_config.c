/* libFuzzer: the config file parser (cli/options.c), through the one entry
 * point a user reaches: a config file given with --config. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/options.h"

typedef struct {
  char name[32];
  int count;
  int64_t ms, size;
  bool flag;
} opts;

static const pq_opt table[] = {
    {"name", NULL, PQ_OPT_STR, offsetof(opts, name), sizeof(((opts *)0)->name), "x", 0, 0, ""},
    {"count", NULL, PQ_OPT_INT, offsetof(opts, count), 0, "1", 0, 1000, ""},
    {"wait", NULL, PQ_OPT_MS, offsetof(opts, ms), 0, "1s", 0, 86400000, ""},
    {"max-body", NULL, PQ_OPT_SIZE, offsetof(opts, size), 0, "1m", 0, 1073741824, ""},
    {"flag", NULL, PQ_OPT_BOOL, offsetof(opts, flag), 0, "false", 0, 0, ""},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("config", 0);
  if (fd < 0) return 0;
  if (size && write(fd, data, size) != (ssize_t)size) {
    close(fd);
    return 0;
  }
  char path[64], flag[80];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  snprintf(flag, sizeof flag, "--config=%s", path);
  char *argv[] = {"fuzz", flag, NULL};
  opts o;
  pq_args args;
  char err[256];
  if (pq_opts_load(table, sizeof table / sizeof table[0], &o, 2, argv, &args, err, sizeof err) == 0 &&
      (o.count < 0 || o.count > 1000 || o.ms < 0 || o.size < 0))
    __builtin_trap(); /* a value outside its range was accepted */
  close(fd);
  return 0;
}
