/* Who is calling, and may they: the server's access control.
 *
 * pq_access resolves a request's credentials (a JWT or an API key, as
 * `Authorization: Bearer`, `Authorization: ApiKey` or `X-Api-Key`) to an
 * identity, checks it against the route's role, and applies the rate limit
 * of the route's class. With `open`, every caller is an anonymous admin (the
 * demo's setting). It reads the store on every call, so a revoked key or a
 * disabled user is refused at once. */
#ifndef PQ_AUTH_ACCESS_H
#define PQ_AUTH_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "engine/coord.h"
#include "base/ids.h"
#include "auth/workpool.h"
#include "auth/role.h"

/* service: client and worker routes both (a deployment's API_KEYS), never admin */
typedef enum { PQ_SCOPE_CLIENT, PQ_SCOPE_WORKER, PQ_SCOPE_ADMIN, PQ_SCOPE_SERVICE } pq_scope;

typedef struct pq_identity {
  bool known;                       /* false: nobody yet (public routes) */
  char user_id[PQ_UUID_LEN + 1];    /* "" when the server is open */
  char user_name[128];
  bool admin;                       /* sees and may do everything */
  pq_scope scope;
  char key_id[PQ_UUID_LEN + 1];     /* "" for a JWT */
  char limit_key[64];               /* what rate limits count against */
} pq_identity;

typedef struct pq_access_config {
  bool open;
  pq_jwt_config jwt;
  pq_rate_policy client, worker, login, user;
  int max_streams_per_key;          /* 0: unlimited */
  int hash_threads;                 /* password checks at once */
} pq_access_config;

typedef struct pq_access pq_access;

/* The config's strings and secret are borrowed; coord too. */
pq_access *pq_access_new(const pq_access_config *cfg, pq_coord *coord);
void pq_access_free(pq_access *a);
const pq_access_config *pq_access_config_of(const pq_access *a);
pq_workpool *pq_access_hashers(pq_access *a);
/* A real argon2id hash of nothing, checked when the user does not exist. */
const char *pq_access_decoy_hash(const pq_access *a);

/* Resolves credentials. PQ_OK, or PQ_ERR_UNAUTHORIZED with the reason. */
pq_err pq_access_identify(pq_access *a, const char *authorization, const char *x_api_key,
                          const char *session_token, pq_identity *out, const char **why);

/* May this identity call a route of this role? (pure) */
bool pq_access_allows(const pq_identity *id, pq_role role);

/* The rate limit for a route's class, by identity (or address for logins). */
pq_rate_decision pq_access_limit(pq_access *a, const pq_rate_policy *p, const char *key);

/* Open event streams per credential. acquire: false when over the quota
 * (or, past 4,096 credentials streaming at once, when the table is full). */
bool pq_access_stream_acquire(pq_access *a, const char *key);
void pq_access_stream_release(pq_access *a, const char *key);

const char *pq_scope_name(pq_scope s);
int pq_scope_parse(const char *s); /* -1 when unknown */

#endif
