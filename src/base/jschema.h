/* Checking a JSON value against a JSON Schema (2020-12, as OpenAPI 3.1 uses
 * it): the one description of a route's body that is both its documentation
 * (api/openapi.c) and its validation (the dispatcher, before the handler).
 *
 * Enforced: type, enum, const, properties, required, additionalProperties,
 * items, minItems, maxItems, uniqueItems, minLength, maxLength (in characters), minimum,
 * maximum, exclusiveMinimum, exclusiveMaximum, minProperties, maxProperties,
 * anyOf, oneOf, allOf, not and $ref to "#/components/schemas/NAME".
 * Annotations (description, examples, format, ...) are not checked;
 * pq_jschema_keywords_known() refuses any other keyword, so a schema cannot
 * promise a check this code does not make. "integer" means a JSON integer
 * without a fraction part or exponent (jansson's integer), as the handlers
 * read them.
 *
 * Errors are worded like base/jcheck.h's ("'messages[0].role' is
 * required"), with details {"field": path}. Schemas and values are borrowed. */
#ifndef PQ_BASE_JSCHEMA_H
#define PQ_BASE_JSCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#include "base/jcheck.h"

enum {
  /* An object's property given as null counts as not given (request bodies:
   * the handlers always read null as absent). */
  PQ_JSCHEMA_NULL_IS_ABSENT = 1u << 0,
};

/* PQ_OK, or PQ_ERR_INVALID_REQUEST with why set. defs: the object holding
 * the schemas that "$ref" names (may be NULL when none is used); where: how
 * the message names the value as a whole ("the body"). */
pq_err pq_jschema_check(pq_jerr *why, const json_t *schema, const json_t *defs, const json_t *value,
                        const char *where, unsigned flags);

/* True when every keyword in schema (and the schemas inside it) is one the
 * checker enforces or an annotation, and every $ref resolves in defs;
 * otherwise false with *bad naming the first offender (borrowed). */
bool pq_jschema_sound(const json_t *schema, const json_t *defs, const char **bad);

#endif
