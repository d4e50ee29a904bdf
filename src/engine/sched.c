#include "engine/sched.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef bool (*before_fn)(const pq_sched_item *a, const pq_sched_item *b);

typedef struct {
  pq_sched_item *items;
  size_t len, cap;
} heap;

typedef struct {
  char *name;
  heap ready;
} model_queue;

struct pq_sched {
  model_queue *models;
  size_t n_models, cap_models;
  heap delayed;
};

static bool ready_before(const pq_sched_item *a, const pq_sched_item *b) {
  if (a->priority != b->priority) return a->priority > b->priority;
  return a->number < b->number;
}

static bool delay_before(const pq_sched_item *a, const pq_sched_item *b) {
  if (a->not_before != b->not_before) return a->not_before < b->not_before;
  return a->number < b->number;
}

static int heap_push(heap *h, pq_sched_item item, before_fn before) {
  if (h->len == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    pq_sched_item *grown = realloc(h->items, cap * sizeof *grown);
    if (!grown) return -1;
    h->items = grown;
    h->cap = cap;
  }
  size_t i = h->len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&item, &h->items[parent])) break;
    h->items[i] = h->items[parent];
    i = parent;
  }
  h->items[i] = item;
  return 0;
}

static pq_sched_item heap_pop(heap *h, before_fn before) {
  pq_sched_item top = h->items[0];
  pq_sched_item last = h->items[--h->len];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= h->len) break;
    if (child + 1 < h->len && before(&h->items[child + 1], &h->items[child])) child++;
    if (!before(&h->items[child], &last)) break;
    h->items[i] = h->items[child];
    i = child;
  }
  if (h->len > 0) h->items[i] = last;
  return top;
}

pq_sched *pq_sched_new(void) { return calloc(1, sizeof(pq_sched)); }

void pq_sched_clear(pq_sched *s) {
  for (size_t i = 0; i < s->n_models; i++) s->models[i].ready.len = 0;
  s->delayed.len = 0;
}

void pq_sched_free(pq_sched *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_models; i++) {
    free(s->models[i].name);
    free(s->models[i].ready.items);
  }
  free(s->models);
  free(s->delayed.items);
  free(s);
}

static int find_model(const pq_sched *s, const char *name) {
  for (size_t i = 0; i < s->n_models; i++)
    if (strcmp(s->models[i].name, name) == 0) return (int)i;
  return -1;
}

static int intern_model(pq_sched *s, const char *name) {
  int idx = find_model(s, name);
  if (idx >= 0) return idx;
  if (s->n_models == s->cap_models) {
    size_t cap = s->cap_models ? s->cap_models * 2 : 8;
    model_queue *grown = realloc(s->models, cap * sizeof *grown);
    if (!grown) return -1;
    s->models = grown;
    s->cap_models = cap;
  }
  model_queue *m = &s->models[s->n_models];
  memset(m, 0, sizeof *m);
  if (!(m->name = strdup(name))) return -1;
  return (int)s->n_models++;
}

int pq_sched_push(pq_sched *s, const char *model, int64_t number, int priority,
                  int64_t not_before, int64_t now) {
  int idx = intern_model(s, model);
  if (idx < 0) return -1;
  pq_sched_item item = {.number = number, .priority = priority, .model = idx,
                        .not_before = not_before};
  if (not_before > now) return heap_push(&s->delayed, item, delay_before);
  return heap_push(&s->models[idx].ready, item, ready_before);
}

int pq_sched_pop(pq_sched *s, const char *const *models, size_t n, pq_sched_item *out) {
  model_queue *best = NULL;
  size_t count = n ? n : s->n_models;
  for (size_t i = 0; i < count; i++) {
    model_queue *m;
    if (n) {
      int idx = find_model(s, models[i]);
      if (idx < 0) continue;
      m = &s->models[idx];
    } else {
      m = &s->models[i];
    }
    if (m->ready.len == 0) continue;
    if (!best || ready_before(&m->ready.items[0], &best->ready.items[0])) best = m;
  }
  if (!best) return 0;
  *out = heap_pop(&best->ready, ready_before);
  return 1;
}

size_t pq_sched_promote(pq_sched *s, int64_t now) {
  size_t moved = 0;
  while (s->delayed.len > 0 && s->delayed.items[0].not_before <= now) {
    pq_sched_item item = heap_pop(&s->delayed, delay_before);
    /* the heap had room for it a moment ago; a failed grow drops only the hint,
     * and the next rebuild from the store brings the job back */
    if (heap_push(&s->models[item.model].ready, item, ready_before) == 0) moved++;
  }
  return moved;
}

int64_t pq_sched_next_due(const pq_sched *s) {
  return s->delayed.len ? s->delayed.items[0].not_before : INT64_MAX;
}

size_t pq_sched_ready(const pq_sched *s, const char *model) {
  if (!model) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_models; i++) n += s->models[i].ready.len;
    return n;
  }
  int idx = find_model(s, model);
  return idx < 0 ? 0 : s->models[idx].ready.len;
}

size_t pq_sched_total(const pq_sched *s) {
  size_t total = s->delayed.len;
  for (size_t i = 0; i < s->n_models; i++) total += s->models[i].ready.len;
  return total;
}

const char *pq_sched_model_name(const pq_sched *s, int32_t model) {
  return model >= 0 && (size_t)model < s->n_models ? s->models[model].name : NULL;
}
