/* Files built into the binary by scripts/embed-files (the API's schema files,
 * the dashboard's pages): static, read-only, for the program's life. */
#ifndef PQ_BASE_EMBEDDED_H
#define PQ_BASE_EMBEDDED_H

#include <stddef.h>

typedef struct pq_embedded_file {
  const char *path; /* relative to the folder the build named */
  const char *data; /* NUL-terminated (size excludes the NUL) */
  size_t size;
} pq_embedded_file;

#endif
