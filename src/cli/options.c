#include "cli/options.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int parse_int64(const char *s, int64_t *out, const char **rest) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || errno) return -1;
  *out = v;
  *rest = end;
  return 0;
}

int pq_parse_ms(const char *s, int64_t *out) {
  int64_t v;
  const char *unit;
  if (parse_int64(s, &v, &unit) != 0 || v < 0) return -1;
  int64_t mul;
  if (*unit == '\0' || strcmp(unit, "s") == 0) mul = 1000;
  else if (strcmp(unit, "ms") == 0) mul = 1;
  else if (strcmp(unit, "m") == 0) mul = 60000;
  else if (strcmp(unit, "h") == 0) mul = 3600000;
  else if (strcmp(unit, "d") == 0) mul = 86400000;
  else return -1;
  if (v > INT64_MAX / mul) return -1;
  *out = v * mul;
  return 0;
}

int pq_parse_size(const char *s, int64_t *out) {
  int64_t v;
  const char *unit;
  if (parse_int64(s, &v, &unit) != 0 || v < 0) return -1;
  int64_t mul;
  switch (tolower((unsigned char)*unit)) {
    case '\0': mul = 1; break;
    case 'k': mul = 1024; break;
    case 'm': mul = 1024 * 1024; break;
    case 'g': mul = 1024 * 1024 * 1024; break;
    default: return -1;
  }
  if (*unit && unit[1] && !(tolower((unsigned char)unit[1]) == 'b' && !unit[2])
      && !(tolower((unsigned char)unit[1]) == 'i' && tolower((unsigned char)unit[2]) == 'b'
           && !unit[3]))
    return -1;
  if (v > INT64_MAX / mul) return -1;
  *out = v * mul;
  return 0;
}

static int parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return *out = true, 0;
    if (strcasecmp(s, no[i]) == 0) return *out = false, 0;
  }
  return -1;
}

static int set_value(const pq_opt *o, void *target, const char *value, const char *from, char *err,
                     size_t err_size) {
  char *field = (char *)target + o->offset;
  int64_t v = 0;
  int bad = 0;
  switch (o->type) {
    case PQ_OPT_STR:
      if (strlen(value) >= o->size) {
        snprintf(err, err_size, "%s: value for '%s' is too long", from, o->name);
        return -1;
      }
      memcpy(field, value, strlen(value) + 1);
      return 0;
    case PQ_OPT_BOOL:
      if (parse_bool(value, (bool *)field) == 0) return 0;
      snprintf(err, err_size, "%s: '%s' expects true or false, not '%s'", from, o->name, value);
      return -1;
    case PQ_OPT_INT: {
      const char *rest;
      bad = parse_int64(value, &v, &rest) != 0 || *rest != '\0';
      break;
    }
    case PQ_OPT_MS: bad = pq_parse_ms(value, &v) != 0; break;
    case PQ_OPT_SIZE: bad = pq_parse_size(value, &v) != 0; break;
  }
  if (bad) {
    snprintf(err, err_size, "%s: '%s' is not a valid value for '%s'", from, value, o->name);
    return -1;
  }
  if (o->min != o->max && (v < o->min || v > o->max)) {
    snprintf(err, err_size, "%s: '%s' is out of range for '%s'", from, value, o->name);
    return -1;
  }
  if (o->type == PQ_OPT_INT) *(int *)field = (int)v;
  else *(int64_t *)field = v;
  return 0;
}

static const pq_opt *find_opt(const pq_opt *opts, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
  return NULL;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static int load_file(const pq_opt *opts, size_t n, void *target, const char *path, char *err,
                     size_t err_size) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, err_size, "cannot read config file %s: %s", path, strerror(errno));
    return -1;
  }
  char line[4096], from[1100];
  int lineno = 0, result = 0;
  while (result == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (*s == '\0' || *s == '#') continue;
    char *eq = strchr(s, '=');
    snprintf(from, sizeof from, "%s:%d", path, lineno);
    if (!eq) {
      snprintf(err, err_size, "%s: expected 'key = value'", from);
      result = -1;
      break;
    }
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
      value[vlen - 1] = '\0';
      value++;
    }
    const pq_opt *o = find_opt(opts, n, key, strlen(key));
    if (!o || strcmp(o->name, "config") == 0) {
      snprintf(err, err_size, "%s: unknown setting '%s'", from, key);
      result = -1;
      break;
    }
    result = set_value(o, target, value, from, err, err_size);
  }
  fclose(f);
  return result;
}

int pq_opts_load(const pq_opt *opts, size_t n, void *target, int argc, char **argv, pq_args *args,
                 char *err, size_t err_size) {
  memset(args, 0, sizeof *args);
  for (size_t i = 0; i < n; i++)
    if (set_value(&opts[i], target, opts[i].def ? opts[i].def : (opts[i].type == PQ_OPT_STR ? "" : "0"),
                  "default", err, err_size) != 0)
      return -1;

  /* the config file first, so that environment and flags override it */
  const char *config = getenv("PROMPTQ_CONFIG");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[i + 1];
    else if (strncmp(argv[i], "--config=", 9) == 0) config = argv[i] + 9;
  }
  if (config && *config && load_file(opts, n, target, config, err, err_size) != 0) return -1;

  for (size_t i = 0; i < n; i++) {
    const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
    if (v && set_value(&opts[i], target, v, opts[i].env, err, err_size) != 0) return -1;
  }

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      while (++i < argc && args->n_positional < 16) args->positional[args->n_positional++] = argv[i];
      break;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      args->help = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
      if (args->n_positional == 16) {
        snprintf(err, err_size, "too many arguments");
        return -1;
      }
      args->positional[args->n_positional++] = a;
      continue;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len == 6 && strncmp(name, "config", 6) == 0) {
      if (!eq) i++;
      continue;
    }
    const pq_opt *o = find_opt(opts, n, name, len);
    if (!o) {
      snprintf(err, err_size, "unknown option --%.*s (see --help)", (int)len, name);
      return -1;
    }
    const char *value;
    if (eq) value = eq + 1;
    else if (o->type == PQ_OPT_BOOL) value = "true";
    else if (i + 1 < argc) value = argv[++i];
    else {
      snprintf(err, err_size, "option --%s needs a value", o->name);
      return -1;
    }
    char from[80];
    snprintf(from, sizeof from, "--%s", o->name);
    if (set_value(o, target, value, from, err, err_size) != 0) return -1;
  }
  return 0;
}

void pq_opts_usage(FILE *out, const char *usage, const char *summary, const pq_opt *opts, size_t n) {
  fprintf(out, "usage: %s\n\n%s\n\noptions (flag / environment variable / default):\n", usage,
          summary);
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "  --%-22s %s\n", opts[i].name, opts[i].help);
    fprintf(out, "  %-24s %s%s%s\n", "", opts[i].env ? opts[i].env : "", opts[i].env ? ", " : "",
            opts[i].def && *opts[i].def ? opts[i].def : "(none)");
  }
  fprintf(out, "  --%-22s %s\n", "config FILE",
           "read 'option = value' lines from FILE first (PROMPTQ_CONFIG)");
  fprintf(out, "  --%-22s %s\n", "help", "show this help");
}
