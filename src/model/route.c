/* Routing by capability (model/route.h). */
#include "model/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pq_capset_free(pq_capset *r) {
  for (size_t i = 0; i < r->n_labels; i++) {
    free(r->keys[i]);
    free(r->values[i]);
  }
  memset(r, 0, sizeof *r);
}

/* A label's key or value: 1 to 64 of [A-Za-z0-9._/-] (safe in a JSON path and a log line). */
static bool label_text_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > PQ_ROUTE_LABEL_LEN) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
          *p == '_' || *p == '-' || *p == '/'))
      return false;
  return true;
}

static int positive(const json_t *obj, const char *field, const char *where, int64_t *out, char *err, size_t len) {
  json_t *v = json_object_get(obj, field);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000000) {
    snprintf(err, len, "'%s.%s' must be an integer from 1 to 100000000", where, field);
    return -1;
  }
  *out = json_integer_value(v);
  return 0;
}

/* labels: an object of label texts, read in key order */
static int read_labels(const json_t *obj, const char *where, pq_capset *out, char *err, size_t len) {
  json_t *labels = json_object_get(obj, "labels");
  if (!labels || json_is_null(labels)) return 0;
  if (!json_is_object(labels) || json_object_size(labels) > PQ_ROUTE_LABELS_MAX) {
    snprintf(err, len, "'%s.labels' must be an object of at most %d labels", where, PQ_ROUTE_LABELS_MAX);
    return -1;
  }
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)labels, key, value) {
    const char *text = json_string_value(value);
    if (!label_text_ok(key) || !label_text_ok(text)) {
      snprintf(err, len, "'%s.labels' keys and values must be 1 to %d characters of letters, digits, '.', '_', '-' or '/'",
               where, PQ_ROUTE_LABEL_LEN);
      return -1;
    }
    size_t at = out->n_labels;
    while (at > 0 && strcmp(out->keys[at - 1], key) > 0) at--;
    memmove(out->keys + at + 1, out->keys + at, (out->n_labels - at) * sizeof *out->keys);
    memmove(out->values + at + 1, out->values + at, (out->n_labels - at) * sizeof *out->values);
    out->keys[at] = strdup(key);
    out->values[at] = strdup(text);
    out->n_labels++;
    if (!out->keys[at] || !out->values[at]) {
      snprintf(err, len, "out of memory");
      return -1;
    }
  }
  return 0;
}

int pq_route_offer(const json_t *caps, pq_capset *out, char *err, size_t err_len) {
  memset(out, 0, sizeof *out);
  if (!caps) return 0;
  if (positive(caps, "context_length", "capabilities", &out->context, err, err_len) ||
      positive(caps, "max_output_tokens", "capabilities", &out->max_output_tokens, err, err_len) ||
      read_labels(caps, "capabilities", out, err, err_len)) {
    pq_capset_free(out);
    return -1;
  }
  return 0;
}

int pq_route_require(const json_t *req, char **canonical, char *err, size_t err_len) {
  *canonical = NULL;
  if (!req || json_is_null(req)) return 0;
  if (!json_is_object(req)) {
    snprintf(err, err_len, "'requirements' must be an object");
    return -1;
  }
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)req, key, value) {
    if (strcmp(key, "min_context") != 0 && strcmp(key, "labels") != 0) {
      snprintf(err, err_len, "'requirements.%.64s' is not a requirement (min_context, labels)", key);
      return -1;
    }
  }
  pq_capset r = {0};
  if (positive(req, "min_context", "requirements", &r.context, err, err_len) ||
      read_labels(req, "requirements", &r, err, err_len)) {
    pq_capset_free(&r);
    return -1;
  }
  if (r.context == 0 && r.n_labels == 0) return 0; /* requires nothing */
  json_t *out = json_object(), *labels = json_object();
  for (size_t i = 0; i < r.n_labels; i++) json_object_set_new(labels, r.keys[i], json_string(r.values[i]));
  if (r.n_labels) json_object_set(out, "labels", labels);
  if (r.context) json_object_set_new(out, "min_context", json_integer(r.context));
  json_decref(labels);
  *canonical = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(out);
  pq_capset_free(&r);
  if (!*canonical) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  return 0;
}

void pq_route_require_text(const char *text, pq_capset *out) {
  memset(out, 0, sizeof *out);
  json_t *req = text ? json_loads(text, 0, NULL) : NULL;
  char err[160];
  if (json_is_object(req) && (positive(req, "min_context", "requirements", &out->context, err, sizeof err) ||
                              read_labels(req, "requirements", out, err, sizeof err)))
    pq_capset_free(out);
  json_decref(req);
}

bool pq_route_meets(const pq_capset *offer, const pq_capset *req, char *why, size_t why_len) {
  if (req->context && offer->context < req->context) {
    if (why) snprintf(why, why_len, "a context of %lld tokens", (long long)req->context);
    return false;
  }
  for (size_t i = 0, k = 0; i < req->n_labels; i++) {
    while (k < offer->n_labels && strcmp(offer->keys[k], req->keys[i]) < 0) k++;
    if (k == offer->n_labels || strcmp(offer->keys[k], req->keys[i]) != 0 ||
        strcmp(offer->values[k], req->values[i]) != 0) {
      if (why) snprintf(why, why_len, "label %s=%s", req->keys[i], req->values[i]);
      return false;
    }
  }
  return true;
}
