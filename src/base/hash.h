/* The one non-cryptographic hash (FNV-1a, 64 bits): for hash tables and
 * buckets, never for anything an attacker must not forge. */
#ifndef PQ_BASE_HASH_H
#define PQ_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PQ_FNV1A_INIT 1469598103934665603ull

/* Continues hash h over n bytes (start with PQ_FNV1A_INIT). */
static inline uint64_t pq_fnv1a_more(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static inline uint64_t pq_fnv1a(const void *data, size_t n) { return pq_fnv1a_more(PQ_FNV1A_INIT, data, n); }

static inline uint64_t pq_fnv1a_str(const char *s) {
  uint64_t h = PQ_FNV1A_INIT;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 1099511628211ull;
  }
  return h;
}

#endif
