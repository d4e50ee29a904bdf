/* The live models: which online worker serves which models, in memory.
 * Loaded from the store at start; the writer changes it after a commit
 * (a registration, a worker heard from again, one the reaper found
 * silent); anyone reads it under live_mu. A worker's models are parsed from
 * their JSON once, here. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

static void free_models(char **models, size_t n) {
  for (size_t i = 0; i < n; i++) free(models[i]);
  free(models);
}

/* The strings of a JSON array (anything else in it is skipped). */
static pq_err parse_list(json_t *list, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t len = json_is_array(list) ? json_array_size(list) : 0;
  pq_err result = PQ_OK;
  if (len && !(*out = calloc(len, sizeof(char *)))) result = PQ_ERR_NO_MEMORY;
  for (size_t i = 0; result == PQ_OK && i < len; i++) {
    const char *m = json_string_value(json_array_get(list, i));
    if (!m) continue;
    if (!((*out)[*n] = strdup(m))) result = PQ_ERR_NO_MEMORY;
    else (*n)++;
  }
  if (result != PQ_OK) {
    free_models(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return result;
}

static pq_err parse_models(const char *json, char ***out, size_t *n) {
  json_t *list = json_loads(json ? json : "[]", 0, NULL);
  pq_err result = parse_list(list, out, n);
  json_decref(list);
  return result;
}



/* A live entry's own memory. */
static void live_clear(pq__live_worker *lw) {
  free_models(lw->models, lw->n_models);
  free_models(lw->params, lw->n_params);
  pq_capset_free(&lw->offer);
  free(lw->caps);
  lw->models = lw->params = NULL;
  lw->n_models = lw->n_params = 0;
  lw->caps = NULL;
}

static int64_t slots_of(const json_t *caps) {
  json_t *slots = json_object_get(caps, "max_concurrency");
  if (!json_is_integer(slots)) slots = json_object_get(caps, "slots");
  return json_is_integer(slots) && json_integer_value(slots) > 0 ? json_integer_value(slots) : 1;
}

static pq__live_worker *find(pq_coord *c, const char *id) {
  for (size_t i = 0; i < c->n_live; i++)
    if (strcmp(c->live[i].id, id) == 0) return &c->live[i];
  return NULL;
}

void pq__live_add(pq_coord *c, const pq_worker *w) {
  char **models, **params;
  size_t n, n_params;
  if (parse_models(w->models, &models, &n) != PQ_OK) return; /* it serves leases from the store meanwhile */
  /* its capabilities read once: the params its backend honours, what it offers, its slots */
  json_t *capabilities = json_loads(w->capabilities ? w->capabilities : "{}", 0, NULL);
  if (parse_list(json_object_get(capabilities, "params"), &params, &n_params) != PQ_OK) {
    json_decref(capabilities);
    free_models(models, n);
    return;
  }
  pq_capset offer;
  char why[160];
  pq_route_offer(json_is_object(capabilities) ? capabilities : NULL, &offer, why, sizeof why); /* bad: offers nothing */
  int64_t slots = slots_of(capabilities);
  json_decref(capabilities);
  char *caps = strdup(w->capabilities ? w->capabilities : "{}");
  pthread_mutex_lock(&c->live_mu);
  pq__live_worker *lw = find(c, w->id);
  if (!lw && c->n_live == c->cap_live) {
    size_t cap = c->cap_live ? c->cap_live * 2 : 16;
    pq__live_worker *grown = realloc(c->live, cap * sizeof *grown);
    if (grown) {
      c->live = grown;
      c->cap_live = cap;
    }
  }
  if (!lw && c->n_live < c->cap_live) {
    lw = &c->live[c->n_live++];
    memset(lw, 0, sizeof *lw);
    memcpy(lw->id, w->id, sizeof lw->id);
  }
  if (lw) {
    live_clear(lw);
    lw->offer = offer;
    lw->caps = caps;
    lw->slots = slots;
    memset(&offer, 0, sizeof offer);
    caps = NULL;
    snprintf(lw->owner, sizeof lw->owner, "%s", w->owner ? w->owner : "");
    lw->models = models;
    lw->n_models = n;
    lw->params = params;
    lw->n_params = n_params;
    lw->created_at = w->created_at;
    models = params = NULL;
    n = n_params = 0;
  }
  pthread_mutex_unlock(&c->live_mu);
  free_models(models, n);
  free_models(params, n_params);
  pq_capset_free(&offer);
  free(caps);
}

void pq__live_remove(pq_coord *c, const char *worker_id) {
  pthread_mutex_lock(&c->live_mu);
  pq__live_worker *lw = find(c, worker_id);
  if (lw) {
    live_clear(lw);
    *lw = c->live[--c->n_live];
  }
  pthread_mutex_unlock(&c->live_mu);
}

bool pq__live_has(pq_coord *c, const char *worker_id) {
  pthread_mutex_lock(&c->live_mu);
  bool has = find(c, worker_id) != NULL;
  pthread_mutex_unlock(&c->live_mu);
  return has;
}

char *pq__live_caps_of(pq_coord *c, const char *worker_id) {
  pthread_mutex_lock(&c->live_mu);
  pq__live_worker *lw = find(c, worker_id);
  char *caps = lw && lw->caps ? strdup(lw->caps) : NULL;
  pthread_mutex_unlock(&c->live_mu);
  return caps;
}

void pq__live_offer_of(pq_coord *c, const char *worker_id, pq_capset *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&c->live_mu);
  pq__live_worker *lw = find(c, worker_id);
  if (lw) {
    out->context = lw->offer.context;
    out->max_output_tokens = lw->offer.max_output_tokens;
    for (size_t i = 0; i < lw->offer.n_labels; i++) {
      out->keys[i] = strdup(lw->offer.keys[i]);
      out->values[i] = strdup(lw->offer.values[i]);
      out->n_labels = i + 1;
      if (!out->keys[i] || !out->values[i]) { /* out of memory: it offers no labels */
        pq_capset_free(out);
        break;
      }
    }
  }
  pthread_mutex_unlock(&c->live_mu);
}

pq_err pq__live_models_of(pq_coord *c, const char *worker_id, char ***models, size_t *n) {
  pthread_mutex_lock(&c->live_mu);
  pq__live_worker *lw = find(c, worker_id);
  pq_err result = PQ_OK;
  *models = NULL;
  *n = 0;
  if (lw && lw->n_models) {
    if (!(*models = calloc(lw->n_models, sizeof(char *)))) result = PQ_ERR_NO_MEMORY;
    for (size_t i = 0; result == PQ_OK && i < lw->n_models; i++)
      if (!((*models)[(*n)++] = strdup(lw->models[i]))) result = PQ_ERR_NO_MEMORY;
  }
  pthread_mutex_unlock(&c->live_mu);
  if (result != PQ_OK) {
    free_models(*models, *n);
    *models = NULL;
    *n = 0;
    return result;
  }
  if (lw) return PQ_OK;
  /* not live here (it was offline, or another coordinator registered it): ask the store */
  pq_worker *w = NULL;
  if ((result = c->ops->worker_get(c->wconn, worker_id, &w)) != PQ_OK) return result;
  result = parse_models(w->models, models, n);
  pq_worker_free(w);
  return result;
}

pq_err pq__live_load(pq_coord *c) {
  pq_worker **workers = NULL;
  size_t n = 0;
  pq_err result = c->ops->worker_list_online(c->wconn, &workers, &n);
  for (size_t i = 0; i < n; i++) {
    if (result == PQ_OK) pq__live_add(c, workers[i]);
    pq_worker_free(workers[i]);
  }
  free(workers);
  return result;
}

/* The live set becomes exactly these workers (taken and freed). */
static void live_replace(pq_coord *c, pq_worker **workers, size_t n) {
  pthread_mutex_lock(&c->live_mu);
  for (size_t i = 0; i < c->n_live; i++) live_clear(&c->live[i]);
  c->n_live = 0;
  pthread_mutex_unlock(&c->live_mu);
  for (size_t i = 0; i < n; i++) {
    pq__live_add(c, workers[i]);
    pq_worker_free(workers[i]);
  }
  free(workers);
}

void pq__live_refresh(pq_coord *c) {
  pq_worker **workers = NULL;
  size_t n = 0;
  if (c->ops->worker_list_online(c->wconn, &workers, &n) == PQ_OK) live_replace(c, workers, n); /* else keep it */
}

void pq__live_reload(pq_coord *c) {
  pq_worker **workers = NULL;
  size_t n = 0;
  if (pq_coord_online_workers(c, &workers, &n) != PQ_OK) return;
  /* added, never removed: a worker this coordinator registered a moment ago may not be in
   * what it read; one that went away is told by its own notice or the reaper */
  for (size_t i = 0; i < n; i++) {
    pq__live_add(c, workers[i]);
    pq_worker_free(workers[i]);
  }
  free(workers);
}

void pq__live_free(pq_coord *c) {
  for (size_t i = 0; i < c->n_live; i++) live_clear(&c->live[i]);
  free(c->live);
  c->live = NULL;
  c->n_live = c->cap_live = 0;
}

pq_err pq_coord_worker_owner(pq_coord *c, const char *worker_id, char owner[PQ_UUID_LEN + 1]) {
  pthread_mutex_lock(&c->live_mu);
  pq__live_worker *lw = find(c, worker_id);
  if (lw) memcpy(owner, lw->owner, PQ_UUID_LEN + 1);
  pthread_mutex_unlock(&c->live_mu);
  if (lw) return PQ_OK;
  pq_worker *w = NULL; /* not live: ask the store */
  pq_err result = pq_coord_get_worker(c, worker_id, &w);
  if (result == PQ_OK) snprintf(owner, PQ_UUID_LEN + 1, "%s", w->owner ? w->owner : "");
  pq_worker_free(w);
  return result;
}

static bool served_directly(pq_coord *c, const char *model) {
  bool served = false;
  pthread_mutex_lock(&c->live_mu);
  for (size_t i = 0; i < c->n_live && !served; i++)
    for (size_t k = 0; k < c->live[i].n_models && !served; k++) served = strcmp(c->live[i].models[k], model) == 0;
  pthread_mutex_unlock(&c->live_mu);
  return served;
}

bool pq_coord_model_served(pq_coord *c, const char *model) {
  if (served_directly(c, model)) return true;
  const struct pq_model_alias *al = pq__alias_of(c, model); /* an operator's alias: served when a target is */
  for (size_t t = 0; al && t < al->n_targets; t++)
    if (served_directly(c, al->targets[t])) return true;
  return false;
}

bool pq_coord_model_honours(pq_coord *c, const char *model, const char *param) {
  bool honoured = false;
  pthread_mutex_lock(&c->live_mu);
  for (size_t i = 0; i < c->n_live && !honoured; i++) {
    bool serves = false;
    for (size_t k = 0; k < c->live[i].n_models && !serves; k++) serves = strcmp(c->live[i].models[k], model) == 0;
    for (size_t k = 0; serves && k < c->live[i].n_params && !honoured; k++)
      honoured = strcmp(c->live[i].params[k], param) == 0;
  }
  pthread_mutex_unlock(&c->live_mu);
  return honoured;
}

void pq_coord_live_models(pq_coord *c, void (*fn)(void *ctx, const char *model, int64_t created_at), void *ctx) {
  pthread_mutex_lock(&c->live_mu);
  for (size_t i = 0; i < c->n_live; i++)
    for (size_t k = 0; k < c->live[i].n_models; k++) {
      const char *m = c->live[i].models[k];
      /* once per model, with its oldest worker's time */
      bool first = true;
      int64_t oldest = c->live[i].created_at;
      for (size_t j = 0; j < c->n_live; j++)
        for (size_t l = 0; l < c->live[j].n_models; l++)
          if (strcmp(c->live[j].models[l], m) == 0) {
            if (j < i || (j == i && l < k)) first = false;
            if (c->live[j].created_at < oldest) oldest = c->live[j].created_at;
          }
      if (first) fn(ctx, m, oldest);
    }
  pthread_mutex_unlock(&c->live_mu);
}
