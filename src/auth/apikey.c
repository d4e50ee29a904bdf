#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "auth/auth.h"

static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Writes n base62 digits of the big-endian number in bytes (consumed). */
static void base62(unsigned char *bytes, size_t len, char *out, size_t n) {
  for (size_t d = n; d-- > 0;) {
    unsigned rem = 0;
    for (size_t i = 0; i < len; i++) {
      unsigned cur = rem * 256 + bytes[i];
      bytes[i] = (unsigned char)(cur / 62);
      rem = cur % 62;
    }
    out[d] = digits[rem];
  }
}

static uint32_t crc32(const char *s, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= (unsigned char)s[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static void checksum(const char *body, size_t n, char out[6]) {
  uint32_t c = crc32(body, n);
  unsigned char b[4] = {(unsigned char)(c >> 24), (unsigned char)(c >> 16), (unsigned char)(c >> 8),
                        (unsigned char)c};
  base62(b, 4, out, 6);
}

void pq_apikey_generate(char out[PQ_APIKEY_LEN + 1]) {
  unsigned char random[32];
  randombytes_buf(random, sizeof random);
  memcpy(out, PQ_APIKEY_PREFIX, 8);
  base62(random, sizeof random, out + 8, 43);
  sodium_memzero(random, sizeof random);
  checksum(out + 8, 43, out + 51);
  out[PQ_APIKEY_LEN] = '\0';
}

bool pq_apikey_well_formed(const char *key) {
  if (!key || strlen(key) != PQ_APIKEY_LEN || strncmp(key, PQ_APIKEY_PREFIX, 8) != 0) return false;
  for (const char *p = key + 8; *p; p++)
    if (!strchr(digits, *p)) return false;
  char sum[6];
  checksum(key + 8, 43, sum);
  return memcmp(sum, key + 51, 6) == 0;
}

void pq_apikey_hash(const char *key, char out[65]) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, (const unsigned char *)key, strlen(key));
  sodium_bin2hex(out, 65, digest, sizeof digest);
}
