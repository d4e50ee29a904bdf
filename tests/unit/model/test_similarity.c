/* Similarity matrices for the council's agreement (model/similarity.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "model/similarity.h"

static void cosine_of_vectors(void **state) {
  (void)state;
  double a[] = {1, 0}, b[] = {0, 1}, c[] = {2, 0}, d[] = {-1, 0}, z[] = {0, 0};
  assert_float_equal(pq_cosine(a, b, 2), 0, 1e-12);
  assert_float_equal(pq_cosine(a, c, 2), 1, 1e-12);
  assert_float_equal(pq_cosine(a, d, 2), 0, 1e-12); /* opposite is unrelated, not below zero */
  assert_float_equal(pq_cosine(a, z, 2), 0, 1e-12);
  double e[] = {1, 1};
  assert_float_equal(pq_cosine(a, e, 2), 1 / sqrt(2), 1e-12);
}

static void lexical_similarity_counts_words_not_case_or_punctuation(void **state) {
  (void)state;
  const char *texts[] = {"Paris is the capital.", "the CAPITAL is Paris!", "Bananas grow on trees", ""};
  double m[16];
  assert_int_equal(pq_similarity_lexical(texts, 4, m), 0);
  assert_float_equal(m[0 * 4 + 1], 1, 1e-12);
  assert_float_equal(m[0 * 4 + 2], 0, 1e-12);
  assert_float_equal(m[0 * 4 + 3], 0, 1e-12);
  assert_float_equal(m[2 * 4 + 2], 1, 1e-12);
  assert_float_equal(m[1 * 4 + 0], m[0 * 4 + 1], 1e-12);
  const char *partial[] = {"a b c d", "a b x y"};
  assert_int_equal(pq_similarity_lexical(partial, 2, m), 0);
  assert_float_equal(m[1], 0.5, 1e-12); /* two words of four shared, once each */
  const char *utf8[] = {"Zürich liegt am See", "zürich LIEGT am see"};
  assert_int_equal(pq_similarity_lexical(utf8, 2, m), 0);
  assert_float_equal(m[1], 1, 1e-12); /* ASCII folds; the multi-byte letter is the same in both */
}

static void mean_and_medoid(void **state) {
  (void)state;
  double m[] = {1, 0.9, 0.1,  //
                0.9, 1, 0.2,  //
                0.1, 0.2, 1};
  assert_float_equal(pq_similarity_mean(m, 3), (0.9 + 0.1 + 0.2) / 3, 1e-12);
  assert_int_equal(pq_similarity_medoid(m, 3), 1); /* 1.1 against the others: nearest the centre */
  assert_float_equal(pq_similarity_mean(m, 1), 1, 1e-12);
  assert_int_equal(pq_similarity_medoid(m, 1), 0);
  double tie[] = {1, 0.5, 0.5, 1};
  assert_int_equal(pq_similarity_medoid(tie, 2), 0);
}

static void embedding_matrix_is_symmetric_with_a_unit_diagonal(void **state) {
  (void)state;
  double a[] = {1, 2, 3}, b[] = {3, 2, 1}, c[] = {1, 2, 3};
  const double *v[] = {a, b, c};
  double m[9];
  pq_similarity_embeddings(v, 3, 3, m);
  for (int i = 0; i < 3; i++) assert_float_equal(m[i * 3 + i], 1, 1e-12);
  assert_float_equal(m[0 * 3 + 2], 1, 1e-12);
  assert_float_equal(m[0 * 3 + 1], m[1 * 3 + 0], 1e-12);
  assert_float_equal(m[0 * 3 + 1], 10.0 / 14.0, 1e-12);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cosine_of_vectors),
      cmocka_unit_test(lexical_similarity_counts_words_not_case_or_punctuation),
      cmocka_unit_test(mean_and_medoid),
      cmocka_unit_test(embedding_matrix_is_symmetric_with_a_unit_diagonal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
