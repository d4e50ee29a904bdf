#include "auth/access.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/hash.h"
#include "base/clock.h"

#define STREAM_SLOTS 4096 /* credentials with streams open at once */

typedef struct {
  char key[64];
  int open;
} stream_count;

struct pq_access {
  pq_access_config cfg;
  pq_coord *coord;
  pq_limiter *limiter;
  pq_workpool *hashers;
  char decoy[PQ_PASSWORD_HASH_MAX];
  pthread_mutex_t mu;
  stream_count streams[STREAM_SLOTS]; /* open addressing by key */
};

static const char *const scope_names[] = {"client", "worker", "admin", "service"};
#define N_SCOPES (sizeof scope_names / sizeof scope_names[0])

const char *pq_scope_name(pq_scope s) { return (unsigned)s < N_SCOPES ? scope_names[s] : "client"; }

int pq_scope_parse(const char *s) {
  for (int i = 0; s && i < (int)N_SCOPES; i++)
    if (strcmp(s, scope_names[i]) == 0) return i;
  return -1;
}

pq_access *pq_access_new(const pq_access_config *cfg, pq_coord *coord) {
  pq_access *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->cfg = *cfg;
  a->coord = coord;
  pthread_mutex_init(&a->mu, NULL);
  a->limiter = pq_limiter_new();
  a->hashers = pq_workpool_new(cfg->hash_threads > 0 ? cfg->hash_threads : 2, 256);
  if (!cfg->open && pq_password_hash("promptq decoy", a->decoy) != PQ_OK) {
    pq_access_free(a);
    return NULL;
  }
  if (!a->limiter || !a->hashers) {
    pq_access_free(a);
    return NULL;
  }
  return a;
}

void pq_access_free(pq_access *a) {
  if (!a) return;
  pq_workpool_free(a->hashers);
  pq_limiter_free(a->limiter);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

const pq_access_config *pq_access_config_of(const pq_access *a) { return &a->cfg; }
pq_workpool *pq_access_hashers(pq_access *a) { return a->hashers; }
const char *pq_access_decoy_hash(const pq_access *a) { return a->decoy; }

/* The user behind a credential must exist and be enabled, now. */
static pq_err load_user(pq_access *a, const char *user_id, pq_identity *out, const char **why) {
  pq_user *u = NULL;
  pq_err e = pq_coord_get_user(a->coord, user_id, NULL, &u);
  if (e == PQ_ERR_NOT_FOUND || (e == PQ_OK && u->disabled)) {
    *why = "the user is unknown or disabled";
    pq_user_free(u);
    return PQ_ERR_UNAUTHORIZED;
  }
  if (e != PQ_OK) return e;
  snprintf(out->user_id, sizeof out->user_id, "%s", u->id);
  snprintf(out->user_name, sizeof out->user_name, "%s", u->name);
  out->admin = u->admin;
  pq_user_free(u);
  return PQ_OK;
}

static pq_err by_key(pq_access *a, const char *key, pq_identity *out, const char **why) {
  *why = "the API key is not valid";
  /* promptq's own keys carry a checksum: a typo is refused before any lookup.
   * Others (a deployment's API_KEYS) are looked up by their hash alone. */
  if (strncmp(key, PQ_APIKEY_PREFIX, 8) == 0 ? !pq_apikey_well_formed(key) : strlen(key) < 16 || strlen(key) > 256)
    return PQ_ERR_UNAUTHORIZED;
  char hash[65];
  pq_apikey_hash(key, hash);
  pq_api_key *k = NULL;
  pq_err e = pq_coord_get_key(a->coord, hash, &k);
  if (e == PQ_ERR_NOT_FOUND) return PQ_ERR_UNAUTHORIZED;
  if (e != PQ_OK) return e;
  int64_t now = pq_clock_wall(pq_coord_clock(a->coord));
  if (k->revoked_at) *why = "the API key has been revoked";
  else if (k->expires_at && k->expires_at <= now) *why = "the API key has expired";
  else if ((e = load_user(a, k->user_id, out, why)) == PQ_OK) {
    int scope = pq_scope_parse(k->scope);
    out->scope = scope < 0 ? PQ_SCOPE_CLIENT : (pq_scope)scope;
    out->admin = out->admin && out->scope == PQ_SCOPE_ADMIN; /* an admin's client key is a client */
    snprintf(out->key_id, sizeof out->key_id, "%s", k->id);
    snprintf(out->limit_key, sizeof out->limit_key, "key:%s", k->id);
    out->known = true;
    pq_api_key_free(k);
    return PQ_OK;
  }
  pq_api_key_free(k);
  return e == PQ_OK ? PQ_ERR_UNAUTHORIZED : e;
}

static pq_err by_jwt(pq_access *a, const char *token, pq_identity *out, const char **why) {
  char sub[PQ_UUID_LEN + 1];
  pq_err e = pq_jwt_verify(&a->cfg.jwt, token, pq_clock_wall(pq_coord_clock(a->coord)) / 1000, sub, sizeof sub, why);
  if (e != PQ_OK) return e;
  if ((e = load_user(a, sub, out, why)) != PQ_OK) return e;
  out->scope = out->admin ? PQ_SCOPE_ADMIN : PQ_SCOPE_CLIENT;
  snprintf(out->limit_key, sizeof out->limit_key, "user:%s", out->user_id);
  out->known = true;
  return PQ_OK;
}

pq_err pq_access_identify(pq_access *a, const char *authorization, const char *x_api_key,
                          const char *session_token, pq_identity *out, const char **why) {
  memset(out, 0, sizeof *out);
  if (a->cfg.open) { /* the demo: everyone is an anonymous admin */
    out->known = out->admin = true;
    out->scope = PQ_SCOPE_ADMIN;
    snprintf(out->user_name, sizeof out->user_name, "open");
    snprintf(out->limit_key, sizeof out->limit_key, "open");
    return PQ_OK;
  }
  if (authorization) {
    if (strncasecmp(authorization, "Bearer ", 7) == 0) {
      const char *cred = authorization + 7;
      /* a JWT is three dot-separated parts; anything else is a key (ours or a deployment's) */
      int dots = 0;
      for (const char *p = cred; *p; p++) dots += *p == '.';
      return dots == 2 && strncmp(cred, PQ_APIKEY_PREFIX, 8) != 0 ? by_jwt(a, cred, out, why)
                                                                  : by_key(a, cred, out, why);
    }
    if (strncasecmp(authorization, "ApiKey ", 7) == 0) return by_key(a, authorization + 7, out, why);
    *why = "use Authorization: Bearer <token or key>, Authorization: ApiKey <key> or X-Api-Key";
    return PQ_ERR_UNAUTHORIZED;
  }
  if (x_api_key) return by_key(a, x_api_key, out, why);
  if (session_token) return by_jwt(a, session_token, out, why); /* a session is a user's token */
  *why = "credentials are required";
  return PQ_ERR_UNAUTHORIZED;
}

bool pq_access_allows(const pq_identity *id, pq_role role) {
  switch (role) {
    case PQ_ROLE_PUBLIC: return true;
    case PQ_ROLE_CLIENT:
      return id->known && (id->scope == PQ_SCOPE_CLIENT || id->scope == PQ_SCOPE_ADMIN || id->scope == PQ_SCOPE_SERVICE);
    case PQ_ROLE_WORKER:
      return id->known && (id->scope == PQ_SCOPE_WORKER || id->scope == PQ_SCOPE_ADMIN || id->scope == PQ_SCOPE_SERVICE);
    case PQ_ROLE_ADMIN: return id->known && id->scope == PQ_SCOPE_ADMIN && id->admin;
  }
  return false;
}

pq_rate_decision pq_access_limit(pq_access *a, const pq_rate_policy *p, const char *key) {
  return pq_limiter_check(a->limiter, p, key, pq_clock_mono_us(pq_coord_clock(a->coord)));
}

/* Open addressing: "" ends a probe; a tombstone (a freed slot) does not, and
 * may be reused. A credential's slot is freed when its last stream ends, so
 * the table holds only credentials with streams open now. */
#define TOMBSTONE "\x01"

static stream_count *stream_slot(pq_access *a, const char *key, bool create) {
  uint64_t h = pq_fnv1a_str(key);
  stream_count *reusable = NULL;
  for (size_t i = 0; i < STREAM_SLOTS; i++) {
    stream_count *s = &a->streams[(h + i) % STREAM_SLOTS];
    if (strcmp(s->key, key) == 0) return s;
    if (strcmp(s->key, TOMBSTONE) == 0) {
      if (!reusable) reusable = s;
    } else if (s->key[0] == '\0') {
      if (!reusable) reusable = s;
      break;
    }
  }
  if (!create || !reusable) return NULL;
  snprintf(reusable->key, sizeof reusable->key, "%s", key);
  reusable->open = 0;
  return reusable;
}

bool pq_access_stream_acquire(pq_access *a, const char *key) {
  if (a->cfg.max_streams_per_key <= 0 || a->cfg.open) return true; /* the demo has no quotas */
  pthread_mutex_lock(&a->mu);
  stream_count *s = stream_slot(a, key, true);
  bool ok = s && s->open < a->cfg.max_streams_per_key;
  if (ok) s->open++;
  pthread_mutex_unlock(&a->mu);
  return ok;
}

void pq_access_stream_release(pq_access *a, const char *key) {
  if (a->cfg.max_streams_per_key <= 0 || a->cfg.open) return;
  pthread_mutex_lock(&a->mu);
  stream_count *s = stream_slot(a, key, false);
  if (s && s->open > 0 && --s->open == 0) snprintf(s->key, sizeof s->key, TOMBSTONE);
  pthread_mutex_unlock(&a->mu);
}
