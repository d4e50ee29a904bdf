/* The asynchronous prompt queue (shared/seeds/000): POST /auth, POST /jobs,
 * GET /jobs/{job_id}, over the native jobs. Jobs run on the default model
 * (--default-model); ids are the jobs' integer numbers; a bad token is 403. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "api/api.h"
#include "api/dialect.h"
#include "auth/auth.h"
#include "http/json_in.h"

/* The job routes answer a missing or bad token 403 ("Invalid JWT Token"). */
static json_t *d000_error(pq_req *req, pq_err err, const char *message, json_t *details, int *status) {
  if (err == PQ_ERR_UNAUTHORIZED) *status = 403;
  return pq_dialect_plain_error(req, err, message, details, status);
}

static pq_err d000_auth(pq_req *req) { return pq_api_token(req); } /* the same login, the same JWT */

static pq_err submitted(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 201, json_pack("{s:I}", "job_id", (json_int_t)req->op.out.job->number));
}

static pq_err d000_submit(pq_req *req) {
  static const char *const fields[] = {"system", "prompt", NULL};
  const char *system = NULL, *prompt = NULL;
  pq_err e;
  if ((e = pq_json_only(req, req->body, "the job", fields)) ||
      (e = pq_json_string(req, req->body, "system", false, 0, &system)) ||
      (e = pq_json_string(req, req->body, "prompt", false, 0, &prompt)))
    return e;
  if ((!system || !*system) && (!prompt || !*prompt))
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, NULL, "'system' or 'prompt' must hold a prompt");
  json_t *native = json_pack("{s:s,s:s?,s:s?}", "model", pq_api_settings_of(req)->default_model, "system",
                             system && *system ? system : NULL, "prompt", prompt && *prompt ? prompt : NULL);
  e = pq_api_submit_for_caller(req, native, submitted);
  json_decref(native);
  return e;
}

static pq_err d000_get(pq_req *req) {
  const char *param = pq_req_param(req, "job_id");
  pq_job *job = NULL;
  pq_err e = pq_api_their_job_by_number(req, param, &job);
  if (e != PQ_OK) {
    return e == PQ_ERR_NOT_FOUND ? pq_req_fail(req, e, NULL, "job %s not found", param ? param : "") : e;
  }
  if (!pq_job_state_terminal(job->state)) {
    pq_job_free(job);
    return pq_req_reply(req, 202, json_pack("{s:s,s:n}", "status", "In progress", "response"));
  }
  json_t *body;
  if (job->state == PQ_JOB_COMPLETED) {
    char *text = pq_api_output_text(job);
    body = json_pack("{s:s,s:s}", "status", "Completed", "response", text ? text : "");
    free(text);
  } else { /* not in the document: a job that ended without an answer */
    body = json_pack("{s:s,s:n,s:s}", "status", "Failed", "response", "error",
                     job->error_message ? job->error_message : pq_api_end_code(job));
  }
  pq_job_free(job);
  return pq_req_reply(req, 200, body);
}

/* A URL part, percent-encoded where a URL needs it. */
static void url_part(char *out, size_t size, const char *s) {
  size_t o = 0;
  for (; *s && o + 4 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c))
      out[o++] = (char)c;
    else o += (size_t)snprintf(out + o, size - o, "%%%02X", c);
  }
  out[o] = '\0';
}

/* DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, DB_SSLMODE: the document's
 * PostgreSQL, as the store URL (unless PROMPTQ_STORE names one). */
static int db_environment(char *why, size_t why_size) {
  const char *host = getenv("DB_HOST"), *port = getenv("DB_PORT"), *name = getenv("DB_NAME"),
             *user = getenv("DB_USER"), *password = getenv("DB_PASSWORD"), *ssl = getenv("DB_SSLMODE");
  if (!host && !port && !name && !user && !password && !ssl) return 0;
  if (getenv("PROMPTQ_STORE")) return 0;
  if (port && strspn(port, "0123456789") != strlen(port)) {
    snprintf(why, why_size, "DB_PORT must be a port number");
    return -1;
  }
  char u[256] = "", pw[256] = "", h[256] = "", db[256] = "", url[1400];
  url_part(u, sizeof u, user ? user : "postgres");
  if (password) url_part(pw, sizeof pw, password);
  snprintf(h, sizeof h, "%s", host ? host : "localhost");
  url_part(db, sizeof db, name ? name : "postgres");
  snprintf(url, sizeof url, "postgresql://%s%s%s@%s:%s/%s%s%s", u, password ? ":" : "", pw, h, port ? port : "5432", db,
           ssl ? "?sslmode=" : "", ssl ? ssl : "");
  setenv("PROMPTQ_STORE", url, 0);
  return 0;
}

/* Its variables: APP_PORT (every interface, as the document runs it),
 * JWT_SECRET, MAX_REQUESTSPERMINUTE and DB_* (db_environment). */
static int d000_environment(char *why, size_t why_size) {
  if (db_environment(why, why_size) != 0) return -1;
  const char *port = getenv("APP_PORT");
  if (port && !getenv("PROMPTQ_LISTEN")) {
    char listen[64];
    snprintf(listen, sizeof listen, "0.0.0.0:%s", port);
    setenv("PROMPTQ_LISTEN", listen, 0);
  }
  const char *secret = getenv("JWT_SECRET");
  if (secret && strlen(secret) < PQ_JWT_SECRET_MIN) {
    snprintf(why, why_size, "JWT_SECRET must be %d characters at least (it has %zu)", PQ_JWT_SECRET_MIN, strlen(secret));
    return -1;
  }
  if (secret) setenv("PROMPTQ_JWT_SECRET", secret, 0);
  if (getenv("MAX_REQUESTSPERMINUTE")) setenv("PROMPTQ_RATE_CLIENT", getenv("MAX_REQUESTSPERMINUTE"), 0);
  return 0;
}

#define JSON PQ_ROUTE_JSON
#define BODY PQ_ROUTE_BODY
static const pq_route routes[] = {
    /* a wrong password stays 401 at /auth */
    {.method = "POST", .pattern = "/auth", .handler = d000_auth, .flags = JSON | BODY | PQ_ROUTE_JSON_TYPE | PQ_ROUTE_LOGIN,
     .role = PQ_ROLE_PUBLIC, .name = "d000.auth", .render_error = pq_dialect_plain_error},
    {.method = "POST", .pattern = "/jobs", .handler = d000_submit, .flags = JSON | BODY | PQ_ROUTE_JSON_TYPE,
     .role = PQ_ROLE_CLIENT, .name = "d000.submit", .render_error = d000_error},
    {.method = "GET", .pattern = "/jobs/{job_id}", .handler = d000_get, .role = PQ_ROLE_CLIENT, .name = "d000.get",
     .render_error = d000_error},
};

const pq_dialect pq_dialect_000 = {
    .name = "d000",
    .title = "the asynchronous prompt queue (shared/seeds/000)",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .apply_environment = d000_environment,
};
