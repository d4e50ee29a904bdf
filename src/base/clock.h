/* Time helpers. All times in promptq are integer milliseconds. */
#ifndef PQ_BASE_CLOCK_H
#define PQ_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t pq_now_ms(void);        /* wall clock, ms since the Unix epoch */
int64_t pq_mono_ms(void);       /* monotonic, for durations and timers */
int64_t pq_mono_us(void);

/* Formats ms-since-epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-22T14:45:10.123Z") into buf (at least 32 bytes). Returns buf. */
char *pq_format_time(int64_t ms, char *buf, size_t size);
#define PQ_TIME_BUF 32

#endif
