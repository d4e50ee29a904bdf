/* Routing by capability, aliases and fallbacks.
 *
 * The index (sched.h) keeps one lane set per key. A job without
 * requirements is keyed by its model; a job with requirements by its model,
 * a 0x1f byte and its canonical requirements text, a "class". A lease asks
 * for the keys its worker may take: each of its models (and each alias one
 * of them serves), with each class whose requirements the worker's offer
 * meets. So a lease looks at classes, never at the jobs queued in them;
 * classes are few (one per distinct requirement set with jobs in the index,
 * at most MAX_CLASSES; one whose jobs are all gone is reclaimed when room
 * is needed).
 *
 * Writer thread only, except pq_coord_unservable, pq_coord_servable and
 * pq_coord_served_as, which read the live set and the configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

#define MAX_CLASSES 1024
#define KEY_SEP '\x1f'

static struct pq__route_class *class_find(pq_coord *c, const char *text) {
  for (size_t i = 0; i < c->n_classes; i++)
    if (strcmp(c->classes[i].text, text) == 0) return &c->classes[i];
  return NULL;
}

/* The index's lanes of a class no queued job has: whatever they hold is stale, and their memory
 * (arrays sized by the number of users) goes. */
static void forget_lanes(pq_coord *c, const char *text) {
  size_t len = strlen(text);
  for (size_t i = 0; i < pq_sched_models(c->sched); i++) {
    const char *key = pq_sched_model_name(c->sched, (int32_t)i), *sep = strchr(key, KEY_SEP);
    if (sep && strlen(sep + 1) == len && memcmp(sep + 1, text, len) == 0) pq_sched_forget(c->sched, key);
  }
}

/* Classes without jobs in the index go (leases make their keys again). */
static void reclaim(pq_coord *c) {
  size_t kept = 0;
  for (size_t i = 0; i < c->n_classes; i++) {
    if (c->classes[i].refs > 0) {
      c->classes[kept++] = c->classes[i];
      continue;
    }
    forget_lanes(c, c->classes[i].text);
    free(c->classes[i].text);
    pq_capset_free(&c->classes[i].req);
  }
  if (kept != c->n_classes) c->classes_gen++;
  c->n_classes = kept;
}

static struct pq__route_class *class_add(pq_coord *c, const char *text) {
  struct pq__route_class *k = class_find(c, text);
  if (k) return k;
  if (c->n_classes == MAX_CLASSES) reclaim(c);
  if (c->n_classes == MAX_CLASSES) return NULL;
  if (c->n_classes == c->cap_classes) {
    size_t cap = c->cap_classes ? c->cap_classes * 2 : 8;
    void *grown = realloc(c->classes, cap * sizeof *c->classes);
    if (!grown) return NULL;
    c->classes = grown;
    c->cap_classes = cap;
  }
  k = &c->classes[c->n_classes];
  if (!(k->text = strdup(text))) return NULL;
  k->refs = 0;
  pq_route_require_text(text, &k->req);
  c->n_classes++;
  c->classes_gen++;
  return k;
}

pq_err pq__route_class_check(pq_coord *c, const char *requirements) {
  if (!requirements || !c->sched || class_find(c, requirements)) return PQ_OK;
  if (c->n_classes == MAX_CLASSES) reclaim(c);
  return c->n_classes < MAX_CLASSES ? PQ_OK : PQ_ERR_QUEUE_QUOTA_EXCEEDED;
}

void pq__route_left(pq_coord *c, const pq_job *job) {
  /* a kind the coordinator runs itself (a council, a batch) was never in the index */
  struct pq__route_class *k =
      c->sched && job->requirements && !pq_job_kind_of(job)->on_submit ? class_find(c, job->requirements) : NULL;
  if (k && k->refs > 0) k->refs--;
}

void pq__route_cleared(pq_coord *c) {
  for (size_t i = 0; i < c->n_classes; i++) c->classes[i].refs = 0;
}

static char *key_of(const char *model, const char *requirements) {
  size_t m = strlen(model), r = strlen(requirements);
  char *key = malloc(m + r + 2);
  if (!key) return NULL;
  memcpy(key, model, m);
  key[m] = KEY_SEP;
  memcpy(key + m + 1, requirements, r + 1);
  return key;
}

int pq__sched_push_job(pq_coord *c, const pq_job *job, int64_t not_before, int64_t now) {
  if (!job->requirements) return pq_sched_push(c->sched, job->model, job->owner, job->number, job->priority, not_before, now);
  struct pq__route_class *k = class_add(c, job->requirements);
  char *key = k ? key_of(job->model, job->requirements) : NULL;
  int rc = key ? pq_sched_push(c->sched, key, job->owner, job->number, job->priority, not_before, now) : -1;
  if (rc == 0) k->refs++;
  free(key);
  return rc;
}

/* ---- a lease's models and lanes ---- */

static void free_list(char **list, size_t n) {
  for (size_t i = 0; i < n; i++) free(list[i]);
  free(list);
}

void pq__lease_route_release(pq_op *op) {
  free_list(op->route_models, op->n_route_models);
  free_list(op->route_keys, op->n_route_keys);
  free(op->route_offer);
  op->route_models = op->route_keys = NULL;
  op->n_route_models = op->n_route_keys = 0;
  op->route_offer = NULL;
  op->route_gen = 0;
}

typedef struct {
  char **items;
  size_t n, cap;
  bool failed;
} list;

static bool list_has(const list *l, const char *s) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i], s) == 0) return true;
  return false;
}

/* takes s (a malloc'd string; NULL: out of memory) */
static void list_take(list *l, char *s) {
  if (!s || l->failed) {
    l->failed = true;
    free(s);
    return;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    char **grown = realloc(l->items, cap * sizeof *grown);
    if (!grown) {
      l->failed = true;
      free(s);
      return;
    }
    l->items = grown;
    l->cap = cap;
  }
  l->items[l->n++] = s;
}

static bool serves_any(const char *const *models, size_t n, const struct pq_model_alias *a) {
  for (size_t t = 0; t < a->n_targets; t++)
    for (size_t i = 0; i < n; i++)
      if (strcmp(models[i], a->targets[t]) == 0) return true;
  return false;
}

pq_err pq__lease_route(pq_coord *c, pq_op *op) {
  if (op->route_models && op->route_gen == c->classes_gen + 1) return PQ_OK; /* still current */
  pq__lease_route_release(op);
  size_t n;
  const char *const *models = op->in.lease.n_models ? op->in.lease.models : (const char *const *)op->worker_models;
  n = op->in.lease.n_models ? op->in.lease.n_models : op->n_worker_models;
  list names = {0}, keys = {0};
  for (size_t i = 0; i < n; i++)
    if (!list_has(&names, models[i])) list_take(&names, strdup(models[i]));
  for (size_t a = 0; a < c->cfg.n_aliases; a++)
    if (serves_any(models, n, &c->cfg.aliases[a]) && !list_has(&names, c->cfg.aliases[a].name))
      list_take(&names, strdup(c->cfg.aliases[a].name));
  pq_capset offer;
  pq__live_offer_of(c, op->in.lease.worker_id, &offer);
  for (size_t i = 0; c->sched && i < names.n; i++) {
    list_take(&keys, strdup(names.items[i]));
    for (size_t k = 0; k < c->n_classes; k++)
      if (pq_route_meets(&offer, &c->classes[k].req, NULL, 0))
        list_take(&keys, key_of(names.items[i], c->classes[k].text));
  }
  /* a worker that named no models takes any: each model the index has, with the classes it meets */
  list any = {0}; /* the models the index has lanes of (a class's lane names its model first) */
  for (size_t i = 0; c->sched && n == 0 && i < pq_sched_models(c->sched); i++) {
    const char *key = pq_sched_model_name(c->sched, (int32_t)i);
    char *model = strndup(key, strcspn(key, "\x1f"));
    if (model && list_has(&any, model)) free(model);
    else list_take(&any, model);
  }
  for (size_t i = 0; i < any.n; i++) {
    list_take(&keys, strdup(any.items[i]));
    for (size_t k = 0; k < c->n_classes; k++)
      if (pq_route_meets(&offer, &c->classes[k].req, NULL, 0)) list_take(&keys, key_of(any.items[i], c->classes[k].text));
  }
  if (any.failed) keys.failed = true;
  free_list(any.items, any.n);
  pq_capset_free(&offer);
  if (!c->sched) op->route_offer = pq__live_caps_of(c, op->in.lease.worker_id);
  if (names.failed || keys.failed) {
    free_list(names.items, names.n);
    free_list(keys.items, keys.n);
    return PQ_ERR_NO_MEMORY;
  }
  op->route_models = names.items;
  op->n_route_models = names.n;
  op->route_keys = keys.items;
  op->n_route_keys = keys.n;
  op->route_gen = n ? c->classes_gen + 1 : 0; /* 0: made again each time (any model: new lanes count) */
  return PQ_OK;
}

void pq__route_free(pq_coord *c) {
  for (size_t i = 0; i < c->n_classes; i++) {
    free(c->classes[i].text);
    pq_capset_free(&c->classes[i].req);
  }
  free(c->classes);
  c->classes = NULL;
  c->n_classes = c->cap_classes = 0;
}

const struct pq_model_alias *pq__alias_of(const pq_coord *c, const char *model) {
  for (size_t a = 0; a < c->cfg.n_aliases; a++)
    if (strcmp(c->cfg.aliases[a].name, model) == 0) return &c->cfg.aliases[a];
  return NULL;
}

const char *pq__fallback_of(const pq_coord *c, const char *model) {
  for (size_t i = 0; i < c->cfg.n_fallbacks; i++)
    if (strcmp(c->cfg.fallbacks[i].model, model) == 0) return c->cfg.fallbacks[i].fallback;
  return NULL;
}

const char *pq_coord_served_as(pq_coord *c, const char *model, const char *const *models, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(models[i], model) == 0) return model;
  const struct pq_model_alias *al = pq__alias_of(c, model);
  for (size_t t = 0; al && t < al->n_targets; t++)
    for (size_t i = 0; i < n; i++)
      if (strcmp(models[i], al->targets[t]) == 0) return al->targets[t];
  return model;
}

/* ---- what the live workers can serve ---- */

/* Does this live worker serve model (itself, or as a target of the alias model)? */
static bool live_serves(const pq_coord *c, const pq__live_worker *lw, const char *model) {
  if (lw->n_models == 0) return true; /* a worker that named no models takes any */
  for (size_t k = 0; k < lw->n_models; k++)
    if (strcmp(lw->models[k], model) == 0) return true;
  const struct pq_model_alias *al = pq__alias_of(c, model);
  return al && serves_any((const char *const *)lw->models, lw->n_models, al);
}

bool pq_coord_unservable(pq_coord *c, const char *model, const char *requirements, char *why, size_t why_len) {
  pq_capset req;
  pq_route_require_text(requirements, &req);
  size_t serving = 0;
  bool met = false;
  char missing[160] = "";
  pthread_mutex_lock(&c->live_mu);
  for (size_t i = 0; i < c->n_live && !met; i++) {
    if (!live_serves(c, &c->live[i], model)) continue;
    serving++;
    met = pq_route_meets(&c->live[i].offer, &req, missing, sizeof missing);
  }
  pthread_mutex_unlock(&c->live_mu);
  pq_capset_free(&req);
  if (met) return false;
  if (serving == 0) snprintf(why, why_len, "no live worker serves model '%s'", model);
  else
    snprintf(why, why_len, "no live worker serving '%s' offers %s (%zu serve%s it)", model, missing, serving,
             serving == 1 ? "s" : "");
  return true;
}

void pq_coord_servable(pq_coord *c, void (*fn)(void *ctx, const char *model, int64_t workers, int64_t slots),
                       void *ctx) {
  list seen = {0};
  pthread_mutex_lock(&c->live_mu);
  for (size_t i = 0; i < c->n_live; i++)
    for (size_t k = 0; k < c->live[i].n_models; k++)
      if (!list_has(&seen, c->live[i].models[k])) list_take(&seen, strdup(c->live[i].models[k]));
  for (size_t a = 0; a < c->cfg.n_aliases; a++)
    if (!list_has(&seen, c->cfg.aliases[a].name)) list_take(&seen, strdup(c->cfg.aliases[a].name));
  for (size_t m = 0; !seen.failed && m < seen.n; m++) {
    int64_t workers = 0, slots = 0;
    for (size_t i = 0; i < c->n_live; i++)
      if (live_serves(c, &c->live[i], seen.items[m])) {
        workers++;
        slots += c->live[i].slots;
      }
    fn(ctx, seen.items[m], workers, slots);
  }
  pthread_mutex_unlock(&c->live_mu);
  free_list(seen.items, seen.n);
}
