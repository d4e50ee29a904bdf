#include "base/jschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_PREFIX "#/components/schemas/"
#define MAX_DEPTH 64 /* schemas are ours, but a $ref cycle must not recurse forever */

typedef struct {
  pq_jerr *why;
  const json_t *defs;
  const char *where;
  unsigned flags;
  int depth;
} checker;

/* ---- paths: "messages[0].role" ---- */

static void path_key(char *out, size_t size, const char *path, const char *key) {
  snprintf(out, size, "%s%s%s", path, *path ? "." : "", key);
}

static void path_index(char *out, size_t size, const char *path, size_t i) {
  snprintf(out, size, "%s[%zu]", path, i);
}

static pq_err fail(checker *k, const char *path, const char *what) {
  if (!*path) return pq_jerr_set(k->why, NULL, "%s %s", k->where, what);
  return pq_jerr_set(k->why, json_pack("{s:s}", "field", path), "'%s' %s", path, what);
}

/* ---- types ---- */

static bool is_type(const json_t *v, const char *type) {
  if (strcmp(type, "object") == 0) return json_is_object(v);
  if (strcmp(type, "array") == 0) return json_is_array(v);
  if (strcmp(type, "string") == 0) return json_is_string(v);
  if (strcmp(type, "integer") == 0) return json_is_integer(v);
  if (strcmp(type, "number") == 0) return json_is_number(v);
  if (strcmp(type, "boolean") == 0) return json_is_boolean(v);
  if (strcmp(type, "null") == 0) return json_is_null(v);
  return false;
}

static const char *type_words(const char *type) {
  if (strcmp(type, "object") == 0) return "an object";
  if (strcmp(type, "array") == 0) return "an array";
  if (strcmp(type, "string") == 0) return "a string";
  if (strcmp(type, "integer") == 0) return "an integer";
  if (strcmp(type, "number") == 0) return "a number";
  if (strcmp(type, "boolean") == 0) return "true or false";
  return "null";
}

static pq_err check_type(checker *k, const json_t *type, const json_t *v, const char *path) {
  if (json_is_string(type)) {
    if (is_type(v, json_string_value(type))) return PQ_OK;
    char what[64];
    snprintf(what, sizeof what, "must be %s", type_words(json_string_value(type)));
    return fail(k, path, what);
  }
  char what[200] = "must be ";
  size_t i;
  json_t *t;
  json_array_foreach(type, i, t) {
    if (json_is_string(t) && is_type(v, json_string_value(t))) return PQ_OK;
    if (i) strncat(what, " or ", sizeof what - strlen(what) - 1);
    if (json_is_string(t)) strncat(what, type_words(json_string_value(t)), sizeof what - strlen(what) - 1);
  }
  return fail(k, path, what);
}

static size_t utf8_chars(const char *s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < n; i++) chars += ((unsigned char)s[i] & 0xC0) != 0x80;
  return chars;
}

static const json_t *resolve(const checker *k, const json_t *ref) {
  const char *r = json_string_value(ref);
  if (!r || strncmp(r, REF_PREFIX, strlen(REF_PREFIX)) != 0 || !k->defs) return NULL;
  return json_object_get(k->defs, r + strlen(REF_PREFIX));
}

static pq_err check(checker *k, const json_t *schema, const json_t *v, const char *path);

/* ---- the keywords, one group at a time ---- */

static pq_err check_number(checker *k, const json_t *s, const json_t *v, const char *path) {
  if (!json_is_number(v)) return PQ_OK;
  double x = json_number_value(v);
  const json_t *min = json_object_get(s, "minimum"), *max = json_object_get(s, "maximum");
  const json_t *xmin = json_object_get(s, "exclusiveMinimum"), *xmax = json_object_get(s, "exclusiveMaximum");
  char what[128];
  if ((min && x < json_number_value(min)) || (max && x > json_number_value(max))) {
    if (min && max) snprintf(what, sizeof what, "must be between %.17g and %.17g", json_number_value(min), json_number_value(max));
    else if (min) snprintf(what, sizeof what, "must be at least %.17g", json_number_value(min));
    else snprintf(what, sizeof what, "must be at most %.17g", json_number_value(max));
    return fail(k, path, what);
  }
  if (xmin && x <= json_number_value(xmin)) {
    snprintf(what, sizeof what, "must be more than %.17g", json_number_value(xmin));
    return fail(k, path, what);
  }
  if (xmax && x >= json_number_value(xmax)) {
    snprintf(what, sizeof what, "must be less than %.17g", json_number_value(xmax));
    return fail(k, path, what);
  }
  return PQ_OK;
}

static pq_err check_string(checker *k, const json_t *s, const json_t *v, const char *path) {
  if (!json_is_string(v)) return PQ_OK;
  size_t n = utf8_chars(json_string_value(v), json_string_length(v));
  const json_t *min = json_object_get(s, "minLength"), *max = json_object_get(s, "maxLength");
  char what[96];
  if (min && (json_int_t)n < json_integer_value(min)) {
    if (json_integer_value(min) == 1) return fail(k, path, "must not be empty");
    snprintf(what, sizeof what, "must be at least %lld characters", (long long)json_integer_value(min));
    return fail(k, path, what);
  }
  if (max && (json_int_t)n > json_integer_value(max)) {
    snprintf(what, sizeof what, "is too long (at most %lld characters)", (long long)json_integer_value(max));
    return fail(k, path, what);
  }
  return PQ_OK;
}

static pq_err check_array(checker *k, const json_t *s, const json_t *v, const char *path) {
  if (!json_is_array(v)) return PQ_OK;
  const json_t *min = json_object_get(s, "minItems"), *max = json_object_get(s, "maxItems");
  const json_t *items = json_object_get(s, "items");
  size_t n = json_array_size(v);
  char what[96];
  if (min && (json_int_t)n < json_integer_value(min)) {
    snprintf(what, sizeof what, "must have at least %lld item%s", (long long)json_integer_value(min),
             json_integer_value(min) == 1 ? "" : "s");
    return fail(k, path, what);
  }
  if (max && (json_int_t)n > json_integer_value(max)) {
    snprintf(what, sizeof what, "must have at most %lld items", (long long)json_integer_value(max));
    return fail(k, path, what);
  }
  if (json_is_true(json_object_get(s, "uniqueItems")))
    for (size_t i = 1; i < n; i++)
      for (size_t j = 0; j < i; j++)
        if (json_equal(json_array_get(v, i), json_array_get(v, j))) {
          char sub[256];
          path_index(sub, sizeof sub, path, i);
          return fail(k, sub, "repeats an earlier item");
        }
  if (!items) return PQ_OK;
  for (size_t i = 0; i < n; i++) {
    char sub[256];
    path_index(sub, sizeof sub, path, i);
    pq_err e = check(k, items, json_array_get(v, i), sub);
    if (e != PQ_OK) return e;
  }
  return PQ_OK;
}

static bool given(const checker *k, const json_t *member) {
  return member && !(json_is_null(member) && (k->flags & PQ_JSCHEMA_NULL_IS_ABSENT));
}

static pq_err check_object(checker *k, const json_t *s, const json_t *v, const char *path) {
  if (!json_is_object(v)) return PQ_OK;
  const json_t *props = json_object_get(s, "properties"), *extra = json_object_get(s, "additionalProperties");
  const json_t *required = json_object_get(s, "required");
  char sub[256], what[128];
  size_t i;
  json_t *name;
  json_array_foreach(required, i, name) {
    if (given(k, json_object_get(v, json_string_value(name)))) continue;
    path_key(sub, sizeof sub, path, json_string_value(name));
    return fail(k, sub, "is required");
  }
  const json_t *min = json_object_get(s, "minProperties"), *max = json_object_get(s, "maxProperties");
  if (min && (json_int_t)json_object_size(v) < json_integer_value(min)) {
    snprintf(what, sizeof what, "must have at least %lld field%s", (long long)json_integer_value(min),
             json_integer_value(min) == 1 ? "" : "s");
    return fail(k, path, what);
  }
  if (max && (json_int_t)json_object_size(v) > json_integer_value(max)) {
    snprintf(what, sizeof what, "must have at most %lld fields", (long long)json_integer_value(max));
    return fail(k, path, what);
  }
  const char *key;
  json_t *member;
  json_object_foreach((json_t *)v, key, member) {
    const json_t *ps = json_object_get(props, key);
    if (!given(k, member)) continue;
    path_key(sub, sizeof sub, path, key);
    if (!ps && json_is_false(extra)) {
      if (*path) snprintf(what, sizeof what, "unknown field '%s' in '%s'", key, path);
      else snprintf(what, sizeof what, "unknown field '%s' in %s", key, k->where);
      return pq_jerr_set(k->why, json_pack("{s:s}", "field", sub), "%s", what);
    }
    if (!ps && json_is_object(extra)) ps = extra;
    pq_err e = ps ? check(k, ps, member, sub) : PQ_OK;
    if (e != PQ_OK) return e;
  }
  return PQ_OK;
}

static pq_err check_enum(checker *k, const json_t *s, const json_t *v, const char *path) {
  const json_t *c = json_object_get(s, "const"), *options = json_object_get(s, "enum");
  if (c && !json_equal((json_t *)c, (json_t *)v)) {
    char *text = json_dumps(c, JSON_ENCODE_ANY);
    char what[160];
    snprintf(what, sizeof what, "must be %s", text ? text : "a fixed value");
    free(text);
    return fail(k, path, what);
  }
  if (!options) return PQ_OK;
  size_t i;
  json_t *o;
  json_array_foreach(options, i, o) if (json_equal(o, (json_t *)v)) return PQ_OK;
  char what[256] = "must be one of: ";
  json_array_foreach(options, i, o) {
    char *text = json_dumps(o, JSON_ENCODE_ANY);
    if (i) strncat(what, ", ", sizeof what - strlen(what) - 1);
    if (text) strncat(what, text, sizeof what - strlen(what) - 1);
    free(text);
  }
  return fail(k, path, what);
}

/* Whether a branch is meant for v: its type (through one $ref) fits, or it names none. */
static bool type_fits(const checker *k, const json_t *branch, const json_t *v) {
  const json_t *r = json_object_get(branch, "$ref");
  if (r && resolve(k, r)) branch = resolve(k, r);
  const json_t *type = json_object_get(branch, "type");
  if (!type) return true;
  if (json_is_string(type)) return is_type(v, json_string_value(type));
  size_t i;
  json_t *t;
  json_array_foreach(type, i, t) if (json_is_string(t) && is_type(v, json_string_value(t))) return true;
  return false;
}

/* anyOf / oneOf: the value must match one (oneOf: exactly one); the error
 * is the first failing branch's whose type fits, since that is the shape
 * meant (else the first branch's). */
static pq_err check_choice(checker *k, const json_t *branches, const json_t *v, const char *path, bool exactly_one) {
  size_t i, matched = 0;
  json_t *b;
  pq_jerr first = {0};
  bool first_fits = false;
  json_array_foreach(branches, i, b) {
    pq_jerr mine = {0};
    checker sub = *k;
    sub.why = &mine;
    bool fits = type_fits(k, b, v);
    if (check(&sub, b, v, path) == PQ_OK) {
      matched++;
    } else if (!first.message[0] || (fits && !first_fits)) {
      pq_jerr_clear(&first);
      first = mine;
      first_fits = fits;
    } else {
      pq_jerr_clear(&mine);
    }
  }
  if (matched == 1 || (matched > 1 && !exactly_one)) {
    pq_jerr_clear(&first);
    return PQ_OK;
  }
  if (matched > 1) {
    pq_jerr_clear(&first);
    return fail(k, path, "matches more than one of its allowed shapes");
  }
  pq_jerr_clear(k->why);
  *k->why = first;
  return PQ_ERR_INVALID_REQUEST;
}

static pq_err check(checker *k, const json_t *s, const json_t *v, const char *path) {
  if (json_is_true(s)) return PQ_OK;
  if (json_is_false(s)) return fail(k, path, "is not allowed");
  if (++k->depth > MAX_DEPTH) {
    k->depth--;
    return fail(k, path, "is nested too deeply to check");
  }
  pq_err e = PQ_OK;
  const json_t *x;
  if ((x = json_object_get(s, "$ref"))) {
    const json_t *target = resolve(k, x);
    e = target ? check(k, target, v, path) : fail(k, path, "has a schema that names an unknown $ref");
  }
  if (e == PQ_OK && (x = json_object_get(s, "type"))) e = check_type(k, x, v, path);
  if (e == PQ_OK) e = check_enum(k, s, v, path);
  if (e == PQ_OK) e = check_number(k, s, v, path);
  if (e == PQ_OK) e = check_string(k, s, v, path);
  if (e == PQ_OK) e = check_array(k, s, v, path);
  if (e == PQ_OK) e = check_object(k, s, v, path);
  if (e == PQ_OK && (x = json_object_get(s, "anyOf"))) e = check_choice(k, x, v, path, false);
  if (e == PQ_OK && (x = json_object_get(s, "oneOf"))) e = check_choice(k, x, v, path, true);
  size_t i;
  json_t *b;
  json_array_foreach(json_object_get(s, "allOf"), i, b) if (e == PQ_OK) e = check(k, b, v, path);
  if (e == PQ_OK && (x = json_object_get(s, "not"))) {
    pq_jerr ignored = {0};
    checker sub = *k;
    sub.why = &ignored;
    if (check(&sub, x, v, path) == PQ_OK) e = fail(k, path, "has a shape that is not allowed here");
    pq_jerr_clear(&ignored);
  }
  k->depth--;
  return e;
}

pq_err pq_jschema_check(pq_jerr *why, const json_t *schema, const json_t *defs, const json_t *value,
                        const char *where, unsigned flags) {
  checker k = {.why = why, .defs = defs, .where = where ? where : "the value", .flags = flags};
  return check(&k, schema, value, "");
}

/* ---- soundness: every keyword known, every $ref resolved ---- */

static const char *const checked_keywords[] = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems",
    "maxItems", "uniqueItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minProperties", "maxProperties", "anyOf", "oneOf", "allOf", "not", "$ref", NULL};
static const char *const annotations[] = {
    "description", "title", "examples", "default", "format", "deprecated", "readOnly", "writeOnly",
    "$comment", "contentMediaType", "contentEncoding", NULL};

static bool listed(const char *const *list, const char *key) {
  for (size_t i = 0; list[i]; i++)
    if (strcmp(list[i], key) == 0) return true;
  return false;
}

static bool sound(const json_t *s, const json_t *defs, const char **bad, int depth) {
  if (json_is_boolean(s)) return true;
  if (!json_is_object(s) || depth > MAX_DEPTH) {
    *bad = "(a schema that is not an object)";
    return false;
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)s, key, v) {
    if (strncmp(key, "x-", 2) == 0 || listed(annotations, key)) continue;
    if (!listed(checked_keywords, key)) {
      *bad = key;
      return false;
    }
    if (strcmp(key, "$ref") == 0) {
      const char *r = json_string_value(v);
      if (!r || strncmp(r, REF_PREFIX, strlen(REF_PREFIX)) != 0 || !json_object_get(defs, r + strlen(REF_PREFIX))) {
        *bad = r ? r : "$ref";
        return false;
      }
    } else if (strcmp(key, "properties") == 0) {
      const char *name;
      json_t *p;
      json_object_foreach(v, name, p) if (!sound(p, defs, bad, depth + 1)) return false;
    } else if (strcmp(key, "items") == 0 || strcmp(key, "additionalProperties") == 0 || strcmp(key, "not") == 0) {
      if (!sound(v, defs, bad, depth + 1)) return false;
    } else if (strcmp(key, "anyOf") == 0 || strcmp(key, "oneOf") == 0 || strcmp(key, "allOf") == 0) {
      size_t i;
      json_t *b;
      if (!json_is_array(v) || json_array_size(v) == 0) { /* an empty choice admits nothing, and says nothing */
        *bad = key;
        return false;
      }
      json_array_foreach(v, i, b) if (!sound(b, defs, bad, depth + 1)) return false;
    } else if (strcmp(key, "required") == 0 || strcmp(key, "enum") == 0) {
      size_t i;
      json_t *name;
      if (!json_is_array(v)) {
        *bad = key;
        return false;
      }
      json_array_foreach(v, i, name) if (strcmp(key, "required") == 0 && !json_is_string(name)) {
        *bad = "required (a name that is not a string)";
        return false;
      }
    } else if (strcmp(key, "properties") != 0 && strcmp(key, "type") != 0 && strcmp(key, "const") != 0 &&
               !json_is_integer(v) && !json_is_number(v) && !json_is_boolean(v)) {
      *bad = key; /* the numeric and boolean keywords take numbers and booleans */
      return false;
    }
  }
  return true;
}

bool pq_jschema_sound(const json_t *schema, const json_t *defs, const char **bad) {
  *bad = NULL;
  return sound(schema, defs, bad, 0);
}
