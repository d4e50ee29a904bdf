/* HS256 JWTs with libjwt. libjwt 1.10 decodes and checks the signature;
 * everything else is checked here: the algorithm is exactly HS256 (`none`
 * and the others are refused), and iss, aud, sub, iat, nbf, exp are present
 * and right. */
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"

pq_err pq_jwt_issue(const pq_jwt_config *cfg, const char *sub, int64_t now, char **out) {
  jwt_t *jwt = NULL;
  pq_err result = PQ_ERR_NO_MEMORY;
  if (jwt_new(&jwt) != 0) return result;
  if (jwt_set_alg(jwt, JWT_ALG_HS256, cfg->secret, (int)cfg->secret_len) == 0 &&
      jwt_add_grant(jwt, "iss", cfg->issuer) == 0 && jwt_add_grant(jwt, "aud", cfg->audience) == 0 &&
      jwt_add_grant(jwt, "sub", sub) == 0 && jwt_add_grant_int(jwt, "iat", (long)now) == 0 &&
      jwt_add_grant_int(jwt, "nbf", (long)now) == 0 &&
      jwt_add_grant_int(jwt, "exp", (long)(now + cfg->ttl_s)) == 0 && (*out = jwt_encode_str(jwt)))
    result = PQ_OK;
  jwt_free(jwt);
  return result;
}

static bool has_int(jwt_t *jwt, const char *grant, long *v) {
  errno = 0;
  *v = jwt_get_grant_int(jwt, grant);
  return errno == 0;
}

pq_err pq_jwt_verify(const pq_jwt_config *cfg, const char *token, int64_t now, char *sub,
                     size_t sub_size, const char **why) {
  jwt_t *jwt = NULL;
  *why = "the token is malformed or its signature is wrong";
  /* refuse before decoding anything that does not even claim HS256 */
  if (!token || strlen(token) > 8192 || jwt_decode(&jwt, token, cfg->secret, (int)cfg->secret_len) != 0)
    return PQ_ERR_UNAUTHORIZED;
  pq_err result = PQ_ERR_UNAUTHORIZED;
  const char *alg = jwt_get_header(jwt, "alg");
  long iat, nbf, exp;
  const char *s;
  if (jwt_get_alg(jwt) != JWT_ALG_HS256 || !alg || strcmp(alg, "HS256") != 0) {
    *why = "only HS256 tokens are accepted";
  } else if (!(s = jwt_get_grant(jwt, "iss")) || strcmp(s, cfg->issuer) != 0) {
    *why = "the token was not issued here (iss)";
  } else if (!(s = jwt_get_grant(jwt, "aud")) || strcmp(s, cfg->audience) != 0) {
    *why = "the token is not meant for this service (aud)";
  } else if (!has_int(jwt, "exp", &exp) || !has_int(jwt, "nbf", &nbf) || !has_int(jwt, "iat", &iat)) {
    *why = "the token lacks exp, nbf or iat";
  } else if (exp <= now - cfg->leeway_s) { /* the claims are the token's: only our side is added to */
    *why = "the token has expired";
  } else if (nbf > now + cfg->leeway_s || iat > now + cfg->leeway_s) {
    *why = "the token is not valid yet (nbf)";
  } else if (!(s = jwt_get_grant(jwt, "sub")) || !*s || strlen(s) >= sub_size) {
    *why = "the token names no subject";
  } else {
    memcpy(sub, s, strlen(s) + 1);
    result = PQ_OK;
  }
  jwt_free(jwt);
  return result;
}

pq_err pq_jwt_load_secret(const char *given, const char *data_dir, unsigned char **out, size_t *len,
                          char *err, size_t err_size) {
  if (given && *given) {
    if (strlen(given) < PQ_JWT_SECRET_MIN) {
      snprintf(err, err_size, "the JWT secret must be at least %d bytes", PQ_JWT_SECRET_MIN);
      return PQ_ERR_INVALID_REQUEST;
    }
    *len = strlen(given);
    return (*out = (unsigned char *)strdup(given)) ? PQ_OK : PQ_ERR_NO_MEMORY;
  }
  char path[1100];
  snprintf(path, sizeof path, "%s/jwt.secret", data_dir);
  unsigned char buf[256];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = 0;
  if (fd >= 0) {
    n = read(fd, buf, sizeof buf);
    close(fd);
  } else if (errno == ENOENT) { /* first start: make one, readable by us alone */
    unsigned char raw[64];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex((char *)buf, sizeof buf, raw, sizeof raw);
    n = 128;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
      snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
      if (fd >= 0) close(fd);
      return PQ_ERR_STORE_FAILED;
    }
    close(fd);
  } else {
    snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
    return PQ_ERR_STORE_FAILED;
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  if (n < PQ_JWT_SECRET_MIN) {
    snprintf(err, err_size, "%s holds fewer than %d bytes", path, PQ_JWT_SECRET_MIN);
    return PQ_ERR_INVALID_REQUEST;
  }
  if (!(*out = malloc((size_t)n))) return PQ_ERR_NO_MEMORY;
  memcpy(*out, buf, (size_t)n);
  *len = (size_t)n;
  return PQ_OK;
}
