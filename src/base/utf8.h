/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF): what a JSON string and a PostgreSQL TEXT column accept. */
#ifndef PQ_BASE_UTF8_H
#define PQ_BASE_UTF8_H

#include <stddef.h>

/* The length (1 to 4) of the well-formed sequence that starts p, of the n
 * bytes there; 0 when none does. */
size_t pq_utf8_sequence(const unsigned char *p, size_t n);

#endif
