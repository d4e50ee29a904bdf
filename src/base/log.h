/* Logging to stderr, one line per event, safe from any thread. */
#ifndef PQ_BASE_LOG_H
#define PQ_BASE_LOG_H

typedef enum { PQ_LOG_DEBUG, PQ_LOG_INFO, PQ_LOG_WARN, PQ_LOG_ERROR } pq_log_level;

void pq_log_set_level(pq_log_level level);
int pq_log_enabled(pq_log_level level);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int pq_log_parse_level(const char *s);
void pq_log(pq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pq_debug(...) pq_log(PQ_LOG_DEBUG, __VA_ARGS__)
#define pq_info(...) pq_log(PQ_LOG_INFO, __VA_ARGS__)
#define pq_warn(...) pq_log(PQ_LOG_WARN, __VA_ARGS__)
#define pq_error(...) pq_log(PQ_LOG_ERROR, __VA_ARGS__)

#endif
