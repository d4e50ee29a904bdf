/* Interned strings: each distinct string gets a dense index (0, 1, ...)
 * through a hash table, so callers keep per-string values in plain arrays
 * indexed by it. The table owns its copies; entries are never removed.
 * Not thread-safe: its owner serialises access. */
#ifndef PQ_BASE_STRTAB_H
#define PQ_BASE_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct pq_strtab {
  char **names;    /* by index */
  size_t n, cap;
  int32_t *slots;  /* open addressing: index + 1, 0 empty; n_slots a power of two, at most half full */
  size_t n_slots;
} pq_strtab;

/* The index of s, or -1 when it was never interned. */
int32_t pq_strtab_find(const pq_strtab *t, const char *s);
/* The index of s, interned now if new; -1 on OOM. */
int32_t pq_strtab_intern(pq_strtab *t, const char *s);
void pq_strtab_free(pq_strtab *t);

#endif
