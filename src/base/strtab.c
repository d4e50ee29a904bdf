#include "base/strtab.h"

#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

int32_t pq_strtab_find(const pq_strtab *t, const char *s) {
  if (!t->n_slots) return -1;
  for (size_t i = pq_fnv1a_str(s) & (t->n_slots - 1);; i = (i + 1) & (t->n_slots - 1)) {
    if (!t->slots[i]) return -1;
    if (strcmp(t->names[t->slots[i] - 1], s) == 0) return t->slots[i] - 1;
  }
}

static void slot_in(pq_strtab *t, int32_t idx) {
  size_t i = pq_fnv1a_str(t->names[idx]) & (t->n_slots - 1);
  while (t->slots[i]) i = (i + 1) & (t->n_slots - 1);
  t->slots[i] = idx + 1;
}

int32_t pq_strtab_intern(pq_strtab *t, const char *s) {
  int32_t idx = pq_strtab_find(t, s);
  if (idx >= 0) return idx;
  if ((t->n + 1) * 2 > t->n_slots) {
    size_t n = t->n_slots ? t->n_slots * 2 : 16;
    int32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    free(t->slots);
    t->slots = slots;
    t->n_slots = n;
    for (size_t i = 0; i < t->n; i++) slot_in(t, (int32_t)i);
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 8;
    char **grown = realloc(t->names, cap * sizeof *grown);
    if (!grown) return -1;
    t->names = grown;
    t->cap = cap;
  }
  if (!(t->names[t->n] = strdup(s))) return -1;
  slot_in(t, (int32_t)t->n);
  return (int32_t)t->n++;
}

void pq_strtab_free(pq_strtab *t) {
  for (size_t i = 0; i < t->n; i++) free(t->names[i]);
  free(t->names);
  free(t->slots);
  *t = (pq_strtab){0};
}
