#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"

static volatile pq_log_level min_level = PQ_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void pq_log_set_level(pq_log_level level) { min_level = level; }
int pq_log_enabled(pq_log_level level) { return level >= min_level; }

int pq_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, names[i]) == 0) return i;
  return -1;
}

void pq_log(pq_log_level level, const char *fmt, ...) {
  if (level < min_level) return;
  char line[2048], ts[PQ_TIME_BUF];
  int n = snprintf(line, sizeof line, "%s %-5s ", pq_format_time(pq_now_ms(), ts, sizeof ts),
                   names[level]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  /* one write per line so lines from different threads never interleave */
  size_t len = strlen(line);
  line[len++] = '\n';
  fwrite(line, 1, len, stderr);
}
