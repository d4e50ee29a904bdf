#include "engine/sched.h"

#include "base/strtab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef bool (*before_fn)(const pq_sched_item *a, const pq_sched_item *b);

typedef struct {
  pq_sched_item *items;
  size_t len, cap;
} heap;

/* One owner's ready jobs for one model, and its place in the model's round. */
typedef struct {
  int32_t owner;
  heap ready;
  int32_t credit; /* leases left in its current turn (0: its next turn starts afresh) */
  int32_t next;   /* the next lane in the round (a circle), while it has work */
  bool in_round;
} lane;

typedef struct {
  const char *name;     /* the model table's copy */
  heap urgent;          /* jobs at or above the urgent priority, before every turn */
  lane *lanes;          /* one per owner that ever had work here */
  size_t n_lanes, cap_lanes;
  int32_t *lane_of;     /* owner index -> lane index (-1: none yet) */
  size_t n_lane_of;
  int32_t turn, last;   /* the lane whose turn it is and the one before it in the round (-1: nobody waits) */
  size_t ready;         /* ready jobs: urgent and in every lane */
} model_queue;

struct pq_sched {
  model_queue *models;  /* by index in model_names */
  size_t n_models, cap_models;
  pq_strtab model_names; /* lane keys -> indices: a model and each requirement class is one (engine/routing.c) */
  pq_strtab owners;     /* owner names -> indices: a restart pushes every queued job, of maybe thousands of tenants */
  int32_t *weights;     /* by owner index */
  uint64_t *served;     /* by owner index: when it last had a lease charged (a tick), for the choice between models */
  size_t cap_owners;
  uint64_t tick;
  int32_t urgent;
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

pq_sched *pq_sched_new(void) {
  pq_sched *s = calloc(1, sizeof(pq_sched));
  if (s) s->urgent = INT32_MAX;
  return s;
}

void pq_sched_clear(pq_sched *s) {
  for (size_t i = 0; i < s->n_models; i++) {
    model_queue *m = &s->models[i];
    m->urgent.len = 0;
    for (size_t k = 0; k < m->n_lanes; k++) {
      m->lanes[k].ready.len = 0;
      m->lanes[k].credit = 0;
      m->lanes[k].in_round = false;
    }
    m->turn = m->last = -1;
    m->ready = 0;
  }
  s->delayed.len = 0;
}

void pq_sched_free(pq_sched *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_models; i++) {
    model_queue *m = &s->models[i];
    free(m->urgent.items);
    for (size_t k = 0; k < m->n_lanes; k++) free(m->lanes[k].ready.items);
    free(m->lanes);
    free(m->lane_of);
  }
  free(s->models);
  pq_strtab_free(&s->model_names);
  pq_strtab_free(&s->owners);
  free(s->weights);
  free(s->served);
  free(s->delayed.items);
  free(s);
}

static int find_model(const pq_sched *s, const char *name) { return pq_strtab_find(&s->model_names, name); }

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
  if ((idx = pq_strtab_intern(&s->model_names, name)) < 0) return -1;
  model_queue *m = &s->models[s->n_models]; /* the table's next index is this one's */
  memset(m, 0, sizeof *m);
  m->turn = m->last = -1;
  m->name = s->model_names.names[idx];
  return (int)s->n_models++;
}

static int intern_owner(pq_sched *s, const char *name) {
  int32_t idx = pq_strtab_intern(&s->owners, name);
  if (idx < 0 || (size_t)idx < s->cap_owners) return idx;
  size_t cap = s->owners.cap; /* new owner past the arrays: grow them with the table */
  int32_t *weights = realloc(s->weights, cap * sizeof *weights);
  if (!weights) return -1;
  s->weights = weights;
  uint64_t *served = realloc(s->served, cap * sizeof *served);
  if (!served) return -1;
  s->served = served;
  for (size_t i = s->cap_owners; i < cap; i++) s->weights[i] = 1, s->served[i] = 0;
  s->cap_owners = cap;
  return idx;
}

/* The owner's lane in model m, made when first needed. */
static lane *lane_for(model_queue *m, int32_t owner) {
  if ((size_t)owner >= m->n_lane_of) {
    size_t n = (size_t)owner + 8;
    int32_t *grown = realloc(m->lane_of, n * sizeof *grown);
    if (!grown) return NULL;
    for (size_t i = m->n_lane_of; i < n; i++) grown[i] = -1;
    m->lane_of = grown;
    m->n_lane_of = n;
  }
  if (m->lane_of[owner] >= 0) return &m->lanes[m->lane_of[owner]];
  if (m->n_lanes == m->cap_lanes) {
    size_t cap = m->cap_lanes ? m->cap_lanes * 2 : 4;
    lane *grown = realloc(m->lanes, cap * sizeof *grown);
    if (!grown) return NULL;
    m->lanes = grown;
    m->cap_lanes = cap;
  }
  lane *l = &m->lanes[m->n_lanes];
  memset(l, 0, sizeof *l);
  l->owner = owner;
  m->lane_of[owner] = (int32_t)m->n_lanes++;
  return l;
}

/* A lane that got work joins the end of the round: after everyone waiting. */
static void join_round(model_queue *m, int32_t idx) {
  lane *l = &m->lanes[idx];
  if (l->in_round) return;
  l->in_round = true;
  l->credit = 0;
  if (m->turn < 0) {
    l->next = idx;
    m->turn = m->last = idx;
    return;
  }
  l->next = m->turn;
  m->lanes[m->last].next = idx;
  m->last = idx;
}

/* The lane whose turn it is leaves the round (it has no work left). */
static void leave_round(model_queue *m) {
  int32_t idx = m->turn;
  lane *l = &m->lanes[idx];
  l->in_round = false;
  l->credit = 0;
  if (l->next == idx) {
    m->turn = m->last = -1;
    return;
  }
  m->lanes[m->last].next = l->next;
  m->turn = l->next;
}

static void next_turn(model_queue *m) {
  m->last = m->turn;
  m->turn = m->lanes[m->turn].next;
}

/* Puts a ready job where it waits: the urgent heap or its owner's lane. */
static int push_ready(pq_sched *s, pq_sched_item item) {
  model_queue *m = &s->models[item.model];
  if (item.priority >= s->urgent) {
    if (heap_push(&m->urgent, item, ready_before) != 0) return -1;
  } else {
    lane *l = lane_for(m, item.owner);
    if (!l || heap_push(&l->ready, item, ready_before) != 0) return -1;
    join_round(m, (int32_t)(l - m->lanes));
  }
  m->ready++;
  return 0;
}

int pq_sched_push(pq_sched *s, const char *model, const char *owner, int64_t number, int priority,
                  int64_t not_before, int64_t now) {
  int idx = intern_model(s, model), who = intern_owner(s, owner ? owner : "");
  if (idx < 0 || who < 0) return -1;
  pq_sched_item item = {.number = number, .priority = priority, .model = idx, .owner = who,
                        .not_before = not_before};
  if (not_before > now) return heap_push(&s->delayed, item, delay_before);
  return push_ready(s, item);
}

int pq_sched_set_weight(pq_sched *s, const char *owner, int weight) {
  int who = intern_owner(s, owner);
  if (who < 0) return -1;
  s->weights[who] = weight < 1 ? 1 : weight > 1000 ? 1000 : weight;
  return 0;
}

void pq_sched_set_urgent(pq_sched *s, int32_t priority) { s->urgent = priority; }

/* Model m's candidate: its urgent job, else the first job of the lane whose
 * turn it is, owners may() refuses passed over. *from: -2 urgent, else the
 * lane index. NULL when nothing may be taken. */
static const pq_sched_item *candidate(const pq_sched *s, const model_queue *m, pq_sched_may_fn may, void *ctx,
                                      int32_t *from) {
  if (m->urgent.len && (!may || may(ctx, s->owners.names[m->urgent.items[0].owner], m->name))) {
    *from = -2;
    return &m->urgent.items[0];
  }
  int32_t idx = m->turn;
  for (size_t steps = 0; idx >= 0 && steps < m->n_lanes; steps++, idx = m->lanes[idx].next) {
    const lane *l = &m->lanes[idx];
    if (!may || may(ctx, s->owners.names[l->owner], m->name)) {
      *from = idx;
      return &l->ready.items[0];
    }
  }
  return NULL;
}

/* Takes model m's candidate and moves the round on: a turn lasts the
 * owner's weight in leases, or until its lane runs dry. Owners passed over
 * keep their place (their turn comes again next round). */
/* Takes model m's candidate. Owners passed over (at their limit) wait for
 * the next round, their turn spent; the turn itself moves on only when the
 * lease is charged (pq_sched_charge), so a job that turned out stale costs
 * its owner nothing. */
static pq_sched_item take(model_queue *m, int32_t from) {
  m->ready--;
  if (from == -2) return heap_pop(&m->urgent, ready_before);
  while (m->turn != from) {
    m->lanes[m->turn].credit = 0;
    next_turn(m);
  }
  lane *l = &m->lanes[from];
  pq_sched_item item = heap_pop(&l->ready, ready_before);
  if (l->ready.len == 0) leave_round(m); /* its turn ends with its work */
  return item;
}

void pq_sched_charge(pq_sched *s, const pq_sched_item *item) {
  if (item->model < 0 || (size_t)item->model >= s->n_models || item->owner < 0 || (size_t)item->owner >= s->owners.n)
    return;
  s->served[item->owner] = ++s->tick;
  model_queue *m = &s->models[item->model];
  if (item->priority >= s->urgent || (size_t)item->owner >= m->n_lane_of) return; /* urgent: before every turn */
  int32_t idx = m->lane_of[item->owner];
  if (idx < 0 || idx != m->turn) return; /* its work ran out with this job: its turn ended already */
  lane *l = &m->lanes[idx];
  if (l->credit <= 0) l->credit = s->weights[l->owner]; /* a turn starts with its first lease */
  if (--l->credit == 0) next_turn(m);
}

int pq_sched_pop(pq_sched *s, const char *const *models, size_t n, pq_sched_may_fn may, void *ctx,
                 pq_sched_item *out) {
  model_queue *best = NULL;
  const pq_sched_item *best_item = NULL;
  int32_t best_from = -1;
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
    if (m->ready == 0) continue;
    int32_t from;
    const pq_sched_item *it = candidate(s, m, may, ctx, &from);
    if (!it) continue;
    /* between models: urgent first; then the owner served longest ago (fair across models too);
     * then the better job */
    bool better = !best || (from == -2 && best_from != -2);
    if (best && (from == -2) == (best_from == -2)) {
      uint64_t mine = s->served[it->owner], theirs = s->served[best_item->owner];
      better = from != -2 && mine != theirs ? mine < theirs : ready_before(it, best_item);
    }
    if (better) {
      best = m;
      best_item = it;
      best_from = from;
    }
  }
  if (!best) return 0;
  *out = take(best, best_from);
  return 1;
}

bool pq_sched_can_pop(const pq_sched *s, const char *const *models, size_t n, pq_sched_may_fn may, void *ctx) {
  size_t count = n ? n : s->n_models;
  for (size_t i = 0; i < count; i++) {
    int idx = n ? find_model(s, models[i]) : (int)i;
    int32_t from;
    if (idx >= 0 && s->models[idx].ready && candidate(s, &s->models[idx], may, ctx, &from)) return true;
  }
  return false;
}

size_t pq_sched_promote(pq_sched *s, int64_t now) {
  size_t moved = 0;
  while (s->delayed.len > 0 && s->delayed.items[0].not_before <= now) {
    pq_sched_item item = heap_pop(&s->delayed, delay_before);
    /* a failed grow drops only the hint: the next rebuild from the store brings the job back */
    if (push_ready(s, item) == 0) moved++;
  }
  return moved;
}

int64_t pq_sched_next_due(const pq_sched *s) {
  return s->delayed.len ? s->delayed.items[0].not_before : INT64_MAX;
}

size_t pq_sched_ready(const pq_sched *s, const char *model) {
  if (!model) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_models; i++) n += s->models[i].ready;
    return n;
  }
  int idx = find_model(s, model);
  return idx < 0 ? 0 : s->models[idx].ready;
}

size_t pq_sched_total(const pq_sched *s) { return s->delayed.len + pq_sched_ready(s, NULL); }

size_t pq_sched_models(const pq_sched *s) { return s->n_models; }

void pq_sched_forget(pq_sched *s, const char *key) {
  int idx = find_model(s, key);
  if (idx < 0) return;
  model_queue *m = &s->models[idx];
  free(m->urgent.items);
  for (size_t k = 0; k < m->n_lanes; k++) free(m->lanes[k].ready.items);
  free(m->lanes);
  free(m->lane_of);
  const char *name = m->name;
  memset(m, 0, sizeof *m);
  m->name = name;
  m->turn = m->last = -1;
}

const char *pq_sched_model_name(const pq_sched *s, int32_t model) {
  return model >= 0 && (size_t)model < s->n_models ? s->models[model].name : NULL;
}

const char *pq_sched_owner_name(const pq_sched *s, int32_t owner) {
  return owner >= 0 && (size_t)owner < s->owners.n ? s->owners.names[owner] : NULL;
}
