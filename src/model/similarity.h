/* How alike a council's answers are: pairwise similarity matrices from
 * embeddings (cosine) or, when no embedding model is served, from the words
 * themselves (cosine of word counts: deterministic, no model needed), and
 * what a council reads from a matrix. Pure functions over caller memory. */
#ifndef PQ_MODEL_SIMILARITY_H
#define PQ_MODEL_SIMILARITY_H

#include <stddef.h>

/* Cosine similarity of two vectors of dim numbers, clamped to [0, 1]
 * (opposite directions count as unrelated); 0 when either is all zero. */
double pq_cosine(const double *a, const double *b, size_t dim);

/* matrix (n * n, row-major) gets the cosine of every pair of vectors; the
 * diagonal is 1. */
void pq_similarity_embeddings(const double *const *vectors, size_t n, size_t dim, double *matrix);

/* The same from the texts' words: lowercased runs of letters and digits
 * (bytes >= 0x80 count as letters, so UTF-8 words stay whole). 0 on success,
 * -1 when out of memory. */
int pq_similarity_lexical(const char *const *texts, size_t n, double *matrix);

/* The mean of the matrix above its diagonal; 1 for fewer than two answers. */
double pq_similarity_mean(const double *matrix, size_t n);

/* The answer nearest the others (the highest mean similarity to the rest:
 * the medoid, the answer closest to the centroid); ties go to the lower
 * index. 0 when n < 2. */
size_t pq_similarity_medoid(const double *matrix, size_t n);

#endif
