/* See fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pq_test_remove_dir(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

int pq_test_register_worker(pq_coord *c, char id[PQ_UUID_LEN + 1]) {
  pq_worker w = {.name = "w", .models = "[\"m\"]", .capabilities = "{}"};
  pq_op op = {.kind = PQ_OP_REGISTER, .in.reg.worker = &w};
  if (pq_coord_call(c, &op) != PQ_OK) return -1;
  memcpy(id, w.id, PQ_UUID_LEN + 1);
  return 0;
}
