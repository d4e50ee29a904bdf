#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/jschema.h"

static const char *const DEFS =
    "{\"Message\": {\"type\": \"object\", \"required\": [\"role\", \"content\"], \"additionalProperties\": false,"
    " \"properties\": {\"role\": {\"enum\": [\"user\", \"system\"]}, \"content\": {\"type\": \"string\", \"minLength\": 1}}}}";

static const char *const SUBMIT =
    "{\"type\": \"object\", \"required\": [\"model\"], \"additionalProperties\": false,"
    " \"properties\": {\"model\": {\"type\": \"string\", \"maxLength\": 4},"
    "  \"priority\": {\"type\": \"integer\", \"minimum\": -10, \"maximum\": 10},"
    "  \"temperature\": {\"type\": \"number\", \"exclusiveMinimum\": 0},"
    "  \"messages\": {\"type\": \"array\", \"minItems\": 1, \"items\": {\"$ref\": \"#/components/schemas/Message\"}},"
    "  \"input\": {\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"array\", \"items\": {\"type\": \"string\"}}]},"
    "  \"meta\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}}}}";

/* The message of checking text against SUBMIT ("" when it passes). */
static const char *verdict(const char *text, unsigned flags, char *field, size_t field_size) {
  static char message[256];
  json_t *schema = json_loads(SUBMIT, 0, NULL), *defs = json_loads(DEFS, 0, NULL), *v = json_loads(text, JSON_DECODE_ANY, NULL);
  assert_non_null(schema);
  assert_non_null(defs);
  assert_non_null(v);
  pq_jerr why = {0};
  pq_err e = pq_jschema_check(&why, schema, defs, v, "the body", flags);
  snprintf(message, sizeof message, "%s", e == PQ_OK ? "" : why.message);
  if (field) snprintf(field, field_size, "%s", why.details ? json_string_value(json_object_get(why.details, "field")) : "");
  assert_true(e == PQ_OK ? why.details == NULL : e == PQ_ERR_INVALID_REQUEST);
  pq_jerr_clear(&why);
  json_decref(schema), json_decref(defs), json_decref(v);
  return message;
}

static void good_bodies_pass(void **state) {
  (void)state;
  assert_string_equal(verdict("{\"model\": \"m\"}", 0, NULL, 0), "");
  assert_string_equal(verdict("{\"model\": \"m\", \"priority\": -10, \"temperature\": 0.5, \"input\": [\"a\"],"
                              " \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"meta\": {\"a\": \"b\"}}", 0, NULL, 0), "");
  assert_string_equal(verdict("{\"model\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", 0, NULL, 0), ""); /* 4 characters, 8 bytes */
}

static void each_rule_names_the_field(void **state) {
  (void)state;
  char field[64];
  assert_string_equal(verdict("{}", 0, field, sizeof field), "'model' is required");
  assert_string_equal(field, "model");
  assert_string_equal(verdict("{\"model\": 3}", 0, field, sizeof field), "'model' must be a string");
  assert_string_equal(verdict("{\"model\": \"abcde\"}", 0, NULL, 0), "'model' is too long (at most 4 characters)");
  assert_string_equal(verdict("{\"model\": \"m\", \"priority\": 11}", 0, NULL, 0), "'priority' must be between -10 and 10");
  assert_string_equal(verdict("{\"model\": \"m\", \"priority\": 1.5}", 0, NULL, 0), "'priority' must be an integer");
  assert_string_equal(verdict("{\"model\": \"m\", \"temperature\": 0}", 0, NULL, 0), "'temperature' must be more than 0");
  assert_string_equal(verdict("{\"model\": \"m\", \"messages\": []}", 0, NULL, 0), "'messages' must have at least 1 item");
  assert_string_equal(verdict("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"bot\", \"content\": \"x\"}]}",
                              0, field, sizeof field), "'messages[1].role' must be one of: \"user\", \"system\"");
  assert_string_equal(field, "messages[1].role");
  assert_string_equal(verdict("{\"model\": \"m\", \"messages\": [{\"role\": \"user\"}]}", 0, NULL, 0), "'messages[0].content' is required");
  assert_string_equal(verdict("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"\"}]}", 0, NULL, 0),
                      "'messages[0].content' must not be empty");
  assert_string_equal(verdict("{\"model\": \"m\", \"colour\": 1}", 0, field, sizeof field), "unknown field 'colour' in the body");
  assert_string_equal(field, "colour");
  assert_string_equal(verdict("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\", \"x\": 1}]}", 0, NULL, 0),
                      "unknown field 'x' in 'messages[0]'");
  assert_string_equal(verdict("{\"model\": \"m\", \"meta\": {\"a\": 1}}", 0, NULL, 0), "'meta.a' must be a string");
  assert_string_equal(verdict("{\"model\": \"m\", \"input\": 5}", 0, NULL, 0), "'input' must be a string");
  assert_string_equal(verdict("[1]", 0, NULL, 0), "the body must be an object");
}

static void null_is_absent_only_when_asked(void **state) {
  (void)state;
  assert_string_equal(verdict("{\"model\": \"m\", \"priority\": null}", 0, NULL, 0), "'priority' must be an integer");
  assert_string_equal(verdict("{\"model\": \"m\", \"priority\": null, \"colour\": null}", PQ_JSCHEMA_NULL_IS_ABSENT, NULL, 0), "");
  assert_string_equal(verdict("{\"model\": null}", PQ_JSCHEMA_NULL_IS_ABSENT, NULL, 0), "'model' is required");
}

static void one_of_means_exactly_one(void **state) {
  (void)state;
  json_t *s = json_loads("{\"oneOf\": [{\"type\": \"integer\"}, {\"type\": \"number\", \"minimum\": 0}]}", 0, NULL);
  json_t *neg = json_integer(-1), *both = json_integer(1), *neither = json_real(-0.5);
  pq_jerr why = {0};
  assert_int_equal(pq_jschema_check(&why, s, NULL, neg, "x", 0), PQ_OK);
  assert_int_equal(pq_jschema_check(&why, s, NULL, both, "x", 0), PQ_ERR_INVALID_REQUEST);
  assert_string_equal(why.message, "x matches more than one of its allowed shapes");
  pq_jerr_clear(&why);
  assert_int_equal(pq_jschema_check(&why, s, NULL, neither, "x", 0), PQ_ERR_INVALID_REQUEST);
  pq_jerr_clear(&why);
  json_decref(s), json_decref(neg), json_decref(both), json_decref(neither);
}

static void soundness_refuses_unchecked_keywords_and_lost_refs(void **state) {
  (void)state;
  json_t *defs = json_loads(DEFS, 0, NULL), *submit = json_loads(SUBMIT, 0, NULL);
  const char *bad;
  assert_true(pq_jschema_sound(submit, defs, &bad));
  json_t *pattern = json_loads("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"^x\"}}}", 0, NULL);
  assert_false(pq_jschema_sound(pattern, defs, &bad));
  assert_string_equal(bad, "pattern");
  json_t *lost = json_loads("{\"items\": {\"$ref\": \"#/components/schemas/Nope\"}}", 0, NULL);
  assert_false(pq_jschema_sound(lost, defs, &bad));
  assert_string_equal(bad, "#/components/schemas/Nope");
  json_t *empty = json_loads("{\"anyOf\": []}", 0, NULL), *nameless = json_loads("{\"required\": [3]}", 0, NULL),
         *wordy = json_loads("{\"maxLength\": \"ten\"}", 0, NULL);
  assert_false(pq_jschema_sound(empty, defs, &bad));
  assert_string_equal(bad, "anyOf");
  assert_false(pq_jschema_sound(nameless, defs, &bad));
  assert_false(pq_jschema_sound(wordy, defs, &bad));
  assert_string_equal(bad, "maxLength");
  json_decref(empty), json_decref(nameless), json_decref(wordy);
  json_decref(defs), json_decref(submit), json_decref(pattern), json_decref(lost);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(good_bodies_pass),
      cmocka_unit_test(each_rule_names_the_field),
      cmocka_unit_test(null_is_absent_only_when_asked),
      cmocka_unit_test(one_of_means_exactly_one),
      cmocka_unit_test(soundness_refuses_unchecked_keywords_and_lost_refs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
