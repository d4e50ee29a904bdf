#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/options.h"

typedef struct {
  char listen[64];
  int64_t lease_ms;
  int64_t body;
  int attempts;
  bool open;
} opts;

static const pq_opt table[] = {
    {"listen", "PQTEST_LISTEN", PQ_OPT_STR, offsetof(opts, listen), 64, "127.0.0.1:8080", 0, 0, "l"},
    {"lease-timeout", "PQTEST_LEASE", PQ_OPT_MS, offsetof(opts, lease_ms), 0, "60s", 100, 86400000, "t"},
    {"max-body", NULL, PQ_OPT_SIZE, offsetof(opts, body), 0, "1m", 0, 0, "b"},
    {"max-attempts", "PQTEST_ATTEMPTS", PQ_OPT_INT, offsetof(opts, attempts), 0, "3", 1, 100, "a"},
    {"open", NULL, PQ_OPT_BOOL, offsetof(opts, open), 0, "false", 0, 0, "o"},
};
#define N (sizeof table / sizeof table[0])

static void units(void **state) {
  (void)state;
  int64_t v;
  assert_int_equal(pq_parse_ms("30", &v), 0);
  assert_int_equal(v, 30000);
  assert_int_equal(pq_parse_ms("250ms", &v), 0);
  assert_int_equal(v, 250);
  assert_int_equal(pq_parse_ms("2m", &v), 0);
  assert_int_equal(v, 120000);
  assert_int_equal(pq_parse_ms("1h", &v), 0);
  assert_int_equal(v, 3600000);
  assert_int_equal(pq_parse_ms("30d", &v), 0);
  assert_int_equal(v, 2592000000LL);
  assert_int_equal(pq_parse_ms("5x", &v), -1);
  assert_int_equal(pq_parse_ms("-1", &v), -1);
  assert_int_equal(pq_parse_size("64k", &v), 0);
  assert_int_equal(v, 65536);
  assert_int_equal(pq_parse_size("1MiB", &v), 0);
  assert_int_equal(v, 1048576);
  assert_int_equal(pq_parse_size("1q", &v), -1);
}

static void precedence(void **state) {
  (void)state;
  char path[] = "/tmp/pqtest-config-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "# comment\nlisten = 0.0.0.0:1\nmax-attempts = 5\nlease-timeout = \"10s\"\n");
  fclose(f);
  setenv("PQTEST_ATTEMPTS", "7", 1);
  unsetenv("PQTEST_LEASE");
  char cfg_arg[64];
  snprintf(cfg_arg, sizeof cfg_arg, "--config=%s", path);
  char *argv[] = {"cmd", cfg_arg, "--max-body", "2k", "--open", "prompt", "--lease-timeout=500ms", NULL};
  opts o;
  pq_args args;
  char err[256];
  assert_int_equal(pq_opts_load(table, N, &o, 7, argv, &args, err, sizeof err), 0);
  assert_string_equal(o.listen, "0.0.0.0:1"); /* file over default */
  assert_int_equal(o.attempts, 7);            /* environment over file */
  assert_int_equal(o.lease_ms, 500);          /* flag over file */
  assert_int_equal(o.body, 2048);
  assert_true(o.open);
  assert_int_equal(args.n_positional, 1);
  assert_string_equal(args.positional[0], "prompt");
  unsetenv("PQTEST_ATTEMPTS");
  unlink(path);
}

static void errors_are_named(void **state) {
  (void)state;
  opts o;
  pq_args args;
  char err[256];
  char *bad_range[] = {"cmd", "--max-attempts", "1000", NULL};
  assert_int_equal(pq_opts_load(table, N, &o, 3, bad_range, &args, err, sizeof err), -1);
  assert_non_null(strstr(err, "max-attempts"));
  char *unknown[] = {"cmd", "--nope", NULL};
  assert_int_equal(pq_opts_load(table, N, &o, 2, unknown, &args, err, sizeof err), -1);
  assert_non_null(strstr(err, "--nope"));
  char *missing[] = {"cmd", "--listen", NULL};
  assert_int_equal(pq_opts_load(table, N, &o, 2, missing, &args, err, sizeof err), -1);
  setenv("PQTEST_LEASE", "soon", 1);
  char *plain[] = {"cmd", NULL};
  assert_int_equal(pq_opts_load(table, N, &o, 1, plain, &args, err, sizeof err), -1);
  assert_non_null(strstr(err, "PQTEST_LEASE"));
  unsetenv("PQTEST_LEASE");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(units),
      cmocka_unit_test(precedence),
      cmocka_unit_test(errors_are_named),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
