/* Identifiers: UUIDv7 (time-ordered, RFC 9562) and random hex tokens.
 * Randomness comes from libsodium; call pq_ids_init() once at start. */
#ifndef PQ_BASE_IDS_H
#define PQ_BASE_IDS_H

#include <stddef.h>
#include <stdint.h>

#define PQ_UUID_LEN 36 /* without the terminating NUL */

int pq_ids_init(void); /* 0 on success */

/* Writes a UUIDv7 for time ms into out (PQ_UUID_LEN + 1 bytes). */
void pq_uuid7(int64_t ms, char out[PQ_UUID_LEN + 1]);

/* Writes 2*nbytes random hex characters and a NUL into out. */
void pq_random_hex(char *out, size_t nbytes);

/* True when s looks like a UUID (8-4-4-4-12 hex). */
int pq_is_uuid(const char *s);

#endif
