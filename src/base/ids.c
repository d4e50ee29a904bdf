#include "base/ids.h"

#include <ctype.h>
#include <sodium.h>
#include <string.h>

int pq_ids_init(void) {
  /* libsodium's userspace ChaCha20 generator, seeded from the kernel: as
   * strong as the default, without a getrandom() call for every id and token */
  randombytes_set_implementation(&randombytes_internal_implementation);
  return sodium_init() < 0 ? -1 : 0;
}

static void to_hex(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void pq_uuid7(int64_t ms, char out[PQ_UUID_LEN + 1]) {
  unsigned char b[16];
  randombytes_buf(b + 6, 10);
  for (int i = 0; i < 6; i++) b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
  b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
  b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 */
  char hex[33];
  to_hex(b, 16, hex);
  memcpy(out, hex, 8);
  out[8] = '-';
  memcpy(out + 9, hex + 8, 4);
  out[13] = '-';
  memcpy(out + 14, hex + 12, 4);
  out[18] = '-';
  memcpy(out + 19, hex + 16, 4);
  out[23] = '-';
  memcpy(out + 24, hex + 20, 12);
  out[36] = '\0';
}

void pq_random_hex(char *out, size_t nbytes) {
  unsigned char buf[64];
  while (nbytes > 0) {
    size_t n = nbytes > sizeof buf ? sizeof buf : nbytes;
    randombytes_buf(buf, n);
    to_hex(buf, n, out);
    out += 2 * n;
    nbytes -= n;
  }
}

int pq_is_uuid(const char *s) {
  if (!s || strlen(s) != PQ_UUID_LEN) return 0;
  for (int i = 0; i < PQ_UUID_LEN; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
    } else if (!isxdigit((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}
