/* Similarity matrices for a council's answers (model/similarity.h). */
#include "model/similarity.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double pq_cosine(const double *a, const double *b, size_t dim) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < dim; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  if (na <= 0 || nb <= 0) return 0;
  double c = dot / (sqrt(na) * sqrt(nb));
  if (!isfinite(c)) return 0; /* overflowed: unrelated, rather than a NaN that poisons the mean */
  return c < 0 ? 0 : c > 1 ? 1 : c;
}

void pq_similarity_embeddings(const double *const *vectors, size_t n, size_t dim, double *matrix) {
  for (size_t i = 0; i < n; i++) {
    matrix[i * n + i] = 1;
    for (size_t j = i + 1; j < n; j++) matrix[i * n + j] = matrix[j * n + i] = pq_cosine(vectors[i], vectors[j], dim);
  }
}

/* ---- words ---- */

typedef struct {
  char **words; /* sorted, distinct */
  double *counts;
  size_t n;
} bag;

static int word_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

static int bag_of(const char *text, bag *out) {
  size_t cap = 16, n = 0;
  char **all = malloc(cap * sizeof *all);
  if (!all) return -1;
  for (const char *p = text; *p;) {
    while (*p && !is_word_byte((unsigned char)*p)) p++;
    const char *start = p;
    while (*p && is_word_byte((unsigned char)*p)) p++;
    if (p == start) continue;
    if (n == cap) {
      char **grown = realloc(all, (cap *= 2) * sizeof *all);
      if (!grown) goto oom;
      all = grown;
    }
    char *w = strndup(start, (size_t)(p - start));
    if (!w) goto oom;
    for (char *q = w; *q; q++) *q = (char)tolower((unsigned char)*q);
    all[n++] = w;
  }
  qsort(all, n, sizeof *all, word_cmp);
  out->words = all;
  out->counts = calloc(n ? n : 1, sizeof *out->counts);
  if (!out->counts) goto oom;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k > 0 && strcmp(all[k - 1], all[i]) == 0) {
      free(all[i]);
      out->counts[k - 1]++;
      continue;
    }
    all[k] = all[i];
    out->counts[k++] = 1;
  }
  out->n = k;
  return 0;
oom:
  for (size_t i = 0; i < n; i++) free(all[i]);
  free(all);
  out->words = NULL;
  return -1;
}

static void bag_free(bag *b) {
  for (size_t i = 0; b->words && i < b->n; i++) free(b->words[i]);
  free(b->words);
  free(b->counts);
}

static double bag_cosine(const bag *a, const bag *b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a->n; i++) na += a->counts[i] * a->counts[i];
  for (size_t j = 0; j < b->n; j++) nb += b->counts[j] * b->counts[j];
  for (size_t i = 0, j = 0; i < a->n && j < b->n;) {
    int c = strcmp(a->words[i], b->words[j]);
    if (c == 0) dot += a->counts[i++] * b->counts[j++];
    else if (c < 0) i++;
    else j++;
  }
  if (na <= 0 || nb <= 0) return 0;
  double c = dot / (sqrt(na) * sqrt(nb));
  return c > 1 ? 1 : c;
}

int pq_similarity_lexical(const char *const *texts, size_t n, double *matrix) {
  bag *bags = calloc(n ? n : 1, sizeof *bags);
  if (!bags) return -1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = bag_of(texts[i], &bags[i]);
  for (size_t i = 0; i < n && rc == 0; i++) {
    matrix[i * n + i] = 1;
    for (size_t j = i + 1; j < n; j++) matrix[i * n + j] = matrix[j * n + i] = bag_cosine(&bags[i], &bags[j]);
  }
  for (size_t i = 0; i < n; i++) bag_free(&bags[i]);
  free(bags);
  return rc;
}

double pq_similarity_mean(const double *matrix, size_t n) {
  if (n < 2) return 1;
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) sum += matrix[i * n + j];
  return sum / ((double)n * (double)(n - 1) / 2);
}

size_t pq_similarity_medoid(const double *matrix, size_t n) {
  size_t best = 0;
  double best_sum = -1;
  for (size_t i = 0; i < n && n >= 2; i++) {
    double sum = 0;
    for (size_t j = 0; j < n; j++)
      if (j != i) sum += matrix[i * n + j];
    if (sum > best_sum + 1e-12) {
      best_sum = sum;
      best = i;
    }
  }
  return best;
}
