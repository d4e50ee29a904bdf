/* promptq serve: the coordinator. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "api/api.h"
#include "api/dialect.h"
#include "auth/access.h"
#include "base/ids.h"
#include "model/receipt.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "engine/coord.h"
#include "engine/kinds/council.h"
#include "base/log.h"
#include "http/server.h"
#include "webhook/sender.h"

typedef struct {
  char listen[128];
  char data[1024];
  char store[1200];
  char log_level[16];
  char sync[16];
  int64_t lease_timeout_ms;
  int max_attempts;
  int64_t worker_timeout_ms;
  int64_t retry_backoff_ms, retry_backoff_max_ms;
  int64_t reap_interval_ms;
  int64_t max_body, max_upload;
  int64_t max_wait_ms;
  int64_t keepalive_ms;
  int threads;
  int connection_limit, per_ip_limit;
  int64_t idle_timeout_ms;
  int64_t header_timeout_ms;
  int batch_max;
  bool open;
  bool metrics_private;
  bool store_poll;
  char anonymous_dialect[64];
  char jwt_secret[512];
  int64_t jwt_ttl_ms;
  char jwt_issuer[128], jwt_audience[128];
  int rate_client, burst_client, rate_worker, burst_worker, rate_login, rate_user;
  int max_queued_per_user, max_streams_per_key, max_running_per_user, urgent_priority;
  int max_queued_per_user_model, max_running_per_user_model;
  char fair_weights[1024];
  char model_aliases[2048], model_fallbacks[1024];
  bool webhook_allow_private;
  int64_t webhook_timeout_ms, webhook_retry_base_ms, webhook_retry_for_ms, webhook_log_for_ms;
  int webhook_concurrency;
  char default_model[128];
  int64_t challenge_ttl_ms;
  char web_assets[1024];
  char council_members[2048], council_synthesizers[1024], council_embedding_model[128];
  int council_quorum, council_max_tokens, council_context_tokens, council_max_total_tokens;
  int hold_max_tokens, worker_share, batch_discount;
  char prices[1024];
  int64_t council_member_timeout_ms;
} serve_opts;

#define O(field) offsetof(serve_opts, field)
#define S(field) sizeof(((serve_opts *)0)->field)
static const pq_opt serve_options[] = {
    {"listen", "PROMPTQ_LISTEN", PQ_OPT_STR, O(listen), S(listen), "127.0.0.1:8080", 0, 0,
     "HOST:PORT to listen on (port 0: any free port)"},
    {"data", "PROMPTQ_DATA", PQ_OPT_STR, O(data), S(data), "./data", 0, 0,
     "data folder: the SQLite store, jwt.secret and receipt.key (both made on first start)"},
    {"store", "PROMPTQ_STORE", PQ_OPT_STR, O(store), S(store), NULL, 0, 0,
     "the store's URL: sqlite:///PATH.db (default: sqlite://DATA/promptq.db)"},
    {"log-level", "PROMPTQ_LOG_LEVEL", PQ_OPT_STR, O(log_level), S(log_level), "info", 0, 0,
     "debug, info (one line per request), warn or error"},
    {"sync", "PROMPTQ_SYNC", PQ_OPT_STR, O(sync), S(sync), "full", 0, 0,
     "full: every commit is fsynced (survives power loss); normal: survives a crash only"},
    {"lease-timeout", "PROMPTQ_LEASE_TIMEOUT", PQ_OPT_MS, O(lease_timeout_ms), 0, "60s", 100, 86400000,
     "how long a lease lasts without a heartbeat (jobs may set their own)"},
    {"max-attempts", "PROMPTQ_MAX_ATTEMPTS", PQ_OPT_INT, O(max_attempts), 0, "3", 1, 100,
     "attempts before a job is dead (jobs may set their own)"},
    {"worker-timeout", "PROMPTQ_WORKER_TIMEOUT", PQ_OPT_MS, O(worker_timeout_ms), 0, "30s", 100,
     86400000, "a worker silent this long is offline and its leases lapse"},
    {"retry-backoff", "PROMPTQ_RETRY_BACKOFF", PQ_OPT_MS, O(retry_backoff_ms), 0, "1s", 1, 3600000,
     "delay before the first retry; doubles per attempt"},
    {"retry-backoff-max", "PROMPTQ_RETRY_BACKOFF_MAX", PQ_OPT_MS, O(retry_backoff_max_ms), 0, "60s",
     1, 86400000, "longest delay between retries"},
    {"reap-interval", "PROMPTQ_REAP_INTERVAL", PQ_OPT_MS, O(reap_interval_ms), 0, "250ms", 10,
     60000, "how often lapsed leases, ended ttls and silent workers are looked for"},
    {"max-upload", "PROMPTQ_MAX_UPLOAD", PQ_OPT_SIZE, O(max_upload), 0, "201m", 1024, 4294967296LL,
     "the largest file upload (OpenAI's Files API: 200 MB a file, plus the form around it)"},
    {"max-body", "PROMPTQ_MAX_BODY", PQ_OPT_SIZE, O(max_body), 0, "1m", 1024, 1073741824,
     "largest request body accepted (413 beyond)"},
    {"max-wait", "PROMPTQ_MAX_WAIT", PQ_OPT_MS, O(max_wait_ms), 0, "60s", 1000, 3600000,
     "longest a long-poll (?wait=, wait_s) may wait"},
    {"keepalive", "PROMPTQ_KEEPALIVE", PQ_OPT_MS, O(keepalive_ms), 0, "15s", 100, 3600000,
     "an idle event stream gets a comment line this often (keeps proxies from closing it)"},
    {"threads", "PROMPTQ_THREADS", PQ_OPT_INT, O(threads), 0, "2", 1, 256,
     "HTTP threads (each serves many connections)"},
    {"connection-limit", "PROMPTQ_CONNECTION_LIMIT", PQ_OPT_INT, O(connection_limit), 0, "4096", 1,
     1000000, "open connections at most"},
    {"per-ip-limit", "PROMPTQ_PER_IP_LIMIT", PQ_OPT_INT, O(per_ip_limit), 0, "256", 1, 1000000,
     "open connections from one address at most (raise it behind a proxy, where every client is one address)"},
    {"idle-timeout", "PROMPTQ_IDLE_TIMEOUT", PQ_OPT_MS, O(idle_timeout_ms), 0, "30s", 1000,
     3600000, "an idle or stalled connection is closed after this"},
    {"header-timeout", "PROMPTQ_HEADER_TIMEOUT", PQ_OPT_MS, O(header_timeout_ms), 0, "10s", 0, 3600000,
     "a request's headers must arrive within this, however slowly they trickle (0: no deadline)"},
    {"batch-max", "PROMPTQ_BATCH_MAX", PQ_OPT_INT, O(batch_max), 0, "1024", 1, 100000,
     "operations committed together in one transaction at most"},
    {"open", "PROMPTQ_OPEN", PQ_OPT_BOOL, O(open), 0, "false", 0, 0,
     "no credentials needed: every caller is an admin (for a local demo only)"},
    {"store-poll", "PROMPTQ_STORE_POLL", PQ_OPT_BOOL, O(store_poll), 0, "false", 0, 0,
     "a shared store reached through a transaction pooler (PgBouncer in transaction mode: no LISTEN, no "
     "session state): other coordinators' work is looked for every --reap-interval"},
    {"anonymous-dialect", "PROMPTQ_ANONYMOUS_DIALECT", PQ_OPT_STR, O(anonymous_dialect), S(anonymous_dialect), NULL,
     0, 0, "dialects whose client routes work without credentials, as one non-admin user each (e.g. 001, whose "
           "document has none); comma-separated"},
    {"metrics-private", "PROMPTQ_METRICS_PRIVATE", PQ_OPT_BOOL, O(metrics_private), 0, "false", 0, 0,
     "GET /metrics needs an admin credential (a Prometheus scraper sends an admin key as Bearer)"},
    {"jwt-secret", "PROMPTQ_JWT_SECRET", PQ_OPT_STR, O(jwt_secret), S(jwt_secret), NULL, 0, 0,
     "HS256 signing secret, 32 bytes at least (default: DATA/jwt.secret, made on first start)"},
    {"jwt-ttl", "PROMPTQ_JWT_TTL", PQ_OPT_MS, O(jwt_ttl_ms), 0, "1h", 60000, 2592000000,
     "how long a token from /v1/auth/token lasts"},
    {"jwt-issuer", "PROMPTQ_JWT_ISSUER", PQ_OPT_STR, O(jwt_issuer), S(jwt_issuer), "promptq", 0, 0,
     "the iss of tokens issued and accepted"},
    {"jwt-audience", "PROMPTQ_JWT_AUDIENCE", PQ_OPT_STR, O(jwt_audience), S(jwt_audience), "promptq", 0, 0,
     "the aud of tokens issued and accepted"},
    {"rate-client", "PROMPTQ_RATE_CLIENT", PQ_OPT_INT, O(rate_client), 0, "100", 0, 10000000,
     "client requests per minute per key or user (0: unlimited)"},
    {"burst-client", "PROMPTQ_BURST_CLIENT", PQ_OPT_INT, O(burst_client), 0, "20", 1, 10000000,
     "client requests allowed at once"},
    {"rate-worker", "PROMPTQ_RATE_WORKER", PQ_OPT_INT, O(rate_worker), 0, "1000", 0, 10000000,
     "worker requests per minute per key"},
    {"burst-worker", "PROMPTQ_BURST_WORKER", PQ_OPT_INT, O(burst_worker), 0, "100", 1, 10000000,
     "worker requests allowed at once"},
    {"rate-user", "PROMPTQ_RATE_USER", PQ_OPT_INT, O(rate_user), 0, "60", 0, 10000000,
     "user-profile requests per minute (the coordinator API's user routes)"},
    {"rate-login", "PROMPTQ_RATE_LOGIN", PQ_OPT_INT, O(rate_login), 0, "10", 0, 10000000,
     "login attempts per minute per address"},
    {"max-queued-per-user", "PROMPTQ_MAX_QUEUED_PER_USER", PQ_OPT_INT, O(max_queued_per_user), 0,
     "10000", 0, 100000000, "a user's queued jobs at most (0: unlimited)"},
    {"max-running-per-user", "PROMPTQ_MAX_RUNNING_PER_USER", PQ_OPT_INT, O(max_running_per_user), 0, "0", 0,
     100000000, "a user's jobs held by workers at once at most; the rest wait while others' run (0: unlimited)"},
    {"max-queued-per-user-model", "PROMPTQ_MAX_QUEUED_PER_USER_MODEL", PQ_OPT_INT, O(max_queued_per_user_model), 0,
     "0", 0, 100000000, "a user's queued jobs of one model at most (0: unlimited)"},
    {"max-running-per-user-model", "PROMPTQ_MAX_RUNNING_PER_USER_MODEL", PQ_OPT_INT, O(max_running_per_user_model), 0,
     "0", 0, 100000000, "a user's jobs of one model held by workers at once at most (0: unlimited)"},
    {"fair-weights", "PROMPTQ_FAIR_WEIGHTS", PQ_OPT_STR, O(fair_weights), S(fair_weights), NULL, 0, 0,
     "NAME=W,...: users whose turns are W leases long, where every user with queued work takes turns (default 1)"},
    {"urgent-priority", "PROMPTQ_URGENT_PRIORITY", PQ_OPT_INT, O(urgent_priority), 0, "0", 0, 1000,
     "jobs of at least this priority go before every user's turn (0: none; priority orders one user's own jobs)"},
    {"model-alias", "PROMPTQ_MODEL_ALIAS", PQ_OPT_STR, O(model_aliases), S(model_aliases), NULL, 0, 0,
     "NAME=MODEL|MODEL,...: a public model name any worker of those models serves (it runs as the model it has)"},
    {"model-fallback", "PROMPTQ_MODEL_FALLBACK", PQ_OPT_STR, O(model_fallbacks), S(model_fallbacks), NULL, 0, 0,
     "MODEL=OTHER,...: a job whose model fails it with a retryable error is retried on OTHER"},
    {"webhook-allow-private", "PROMPTQ_WEBHOOK_ALLOW_PRIVATE", PQ_OPT_BOOL, O(webhook_allow_private), 0, "false", 0, 0,
     "webhooks may go to loopback, private and link-local addresses (refused by default: server-side request forgery)"},
    {"webhook-timeout", "PROMPTQ_WEBHOOK_TIMEOUT", PQ_OPT_MS, O(webhook_timeout_ms), 0, "10s", 100, 300000,
     "how long a webhook receiver may take to answer, connection included"},
    {"webhook-concurrency", "PROMPTQ_WEBHOOK_CONCURRENCY", PQ_OPT_INT, O(webhook_concurrency), 0, "16", 1, 1024,
     "webhook requests in flight at once: a quarter of them at most to one receiver (URL), half for one user (a slow "
     "receiver holds up only its own deliveries)"},
    {"webhook-retry-base", "PROMPTQ_WEBHOOK_RETRY_BASE", PQ_OPT_MS, O(webhook_retry_base_ms), 0, "5s", 1, 3600000,
     "the first webhook retry's delay; each next one waits 4 times longer (6 hours at most)"},
    {"webhook-log-for", "PROMPTQ_WEBHOOK_LOG_FOR", PQ_OPT_MS, O(webhook_log_for_ms), 0, "30d", 60000, 31536000000,
     "delivered, failed and cancelled webhook deliveries stay in the log this long"},
    {"webhook-retry-for", "PROMPTQ_WEBHOOK_RETRY_FOR", PQ_OPT_MS, O(webhook_retry_for_ms), 0, "24h", 1000, 2592000000,
     "a webhook delivery is retried until this long after its event, then given up"},
    {"default-model", "PROMPTQ_DEFAULT_MODEL", PQ_OPT_STR, O(default_model), S(default_model), "echo", 0, 0,
     "the model for jobs of APIs that name none (the prompt queue, the task API)"},
    {"web-assets", "PROMPTQ_WEB_ASSETS", PQ_OPT_STR, O(web_assets), S(web_assets), PQ_WEB_ASSETS_DIR, 0, 0,
     "where the pages' npm packages are (Swagger UI, ReDoc, uPlot: web/node_modules, made by scripts/bootstrap)"},
    {"challenge-ttl", "PROMPTQ_CHALLENGE_TTL", PQ_OPT_MS, O(challenge_ttl_ms), 0, "5m", 100, 3600000,
     "wallet login: how long a challenge may be signed and sent back"},
    {"max-streams-per-key", "PROMPTQ_MAX_STREAMS_PER_KEY", PQ_OPT_INT, O(max_streams_per_key), 0,
     "100", 0, 1000000, "open event streams per credential (0: unlimited)"},
    {"worker-share", "PROMPTQ_WORKER_SHARE", PQ_OPT_INT, O(worker_share), 0, "0", 0, 100,
     "percent of each completed job's cost its worker's owner earns"},
    {"batch-discount", "PROMPTQ_BATCH_DISCOUNT", PQ_OPT_INT, O(batch_discount), 0, "50", 0, 100,
     "percent off the price of each request of an OpenAI batch (OpenAI's own is 50)"},
    {"prices", "PROMPTQ_PRICES", PQ_OPT_STR, O(prices), S(prices), NULL, 0, 0,
     "a prices file applied at start: lines of MODEL INPUT OUTPUT [COST_INPUT COST_OUTPUT] (USD per million tokens)"},
    {"hold-max-tokens", "PROMPTQ_HOLD_MAX_TOKENS", PQ_OPT_INT, O(hold_max_tokens), 0, "4096", 1, 10000000,
     "a priced job without max_tokens holds credit for this many output tokens"},
    {"council-members", "PROMPTQ_COUNCIL_MEMBERS", PQ_OPT_STR, O(council_members), S(council_members), NULL, 0, 0,
     "the models on a council, comma-separated (requests may narrow the list; none: requests name their own)"},
    {"council-synthesizers", "PROMPTQ_COUNCIL_SYNTHESIZERS", PQ_OPT_STR, O(council_synthesizers),
     S(council_synthesizers), NULL, 0, 0, "who writes a council's answer, in fallback order (none: the members)"},
    {"council-quorum", "PROMPTQ_COUNCIL_QUORUM", PQ_OPT_INT, O(council_quorum), 0, "0", 0, 16,
     "answers a council round needs at least (0: a majority of its members)"},
    {"council-member-timeout", "PROMPTQ_COUNCIL_MEMBER_TIMEOUT", PQ_OPT_MS, O(council_member_timeout_ms), 0, "120s",
     1000, 86400000, "how long one member answer may take, queued or running"},
    {"council-max-tokens", "PROMPTQ_COUNCIL_MAX_TOKENS", PQ_OPT_INT, O(council_max_tokens), 0, "1024", 1, 1000000,
     "the most tokens one member answer may generate"},
    {"council-max-total-tokens", "PROMPTQ_COUNCIL_MAX_TOTAL_TOKENS", PQ_OPT_INT, O(council_max_total_tokens), 0, "0",
     0, 2000000000, "a council stops deliberating past this many tokens (0: no cap)"},
    {"council-embedding-model", "PROMPTQ_COUNCIL_EMBEDDING_MODEL", PQ_OPT_STR, O(council_embedding_model),
     S(council_embedding_model), NULL, 0, 0, "measures agreement when a request names no embeddingModel"},
    {"council-context-tokens", "PROMPTQ_COUNCIL_CONTEXT_TOKENS", PQ_OPT_INT, O(council_context_tokens), 0, "2000", 0,
     1000000, "a session's earlier questions and answers given to members, at most"},
};
#undef O
#undef S

/* --prices FILE: each line "MODEL INPUT OUTPUT [COST_INPUT COST_OUTPUT]" in
 * USD per million tokens ('#' starts a comment), set through the ledger's
 * typed operation before the server listens. A bad line stops the start. */
static int apply_prices(pq_coord *coord, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    pq_error("cannot read the prices file %s: %s", path, strerror(errno));
    return -1;
  }
  char line[1024];
  int n = 0, rc = 0;
  for (int lineno = 1; rc == 0 && fgets(line, sizeof line, f); lineno++) {
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char model[257], in[32], out[32], cin[32] = "0", cout[32] = "0", extra[2];
    int got = sscanf(line, "%256s %31s %31s %31s %31s %1s", model, in, out, cin, cout, extra);
    if (got <= 0) continue;
    pq_price p = {.model = model};
    if ((got != 3 && got != 5) || pq_micros_parse(in, &p.input_per_mtok) || pq_micros_parse(out, &p.output_per_mtok) ||
        pq_micros_parse(cin, &p.cost_input_per_mtok) || pq_micros_parse(cout, &p.cost_output_per_mtok)) {
      pq_error("%s:%d: a price is MODEL INPUT OUTPUT [COST_INPUT COST_OUTPUT], in USD per million tokens", path, lineno);
      rc = -1;
      break;
    }
    pq_op op = {.kind = PQ_OP_PRICE_SET, .in.price_set.price = &p};
    pq_err e = pq_coord_call(coord, &op);
    pq_op_release(&op);
    if (e != PQ_OK) {
      pq_error("%s:%d: cannot set the price of %s: %s", path, lineno, model, pq_err_message(e));
      rc = -1;
    }
    n++;
  }
  fclose(f);
  if (rc == 0) pq_info("prices: %d set from %s", n, path);
  return rc;
}

/* Splits a comma-separated list of model names in place. */
static size_t split_models(char *list, const char **out, size_t max) {
  size_t n = 0;
  for (char *save = NULL, *m = strtok_r(list, ", ", &save); m && n < max; m = strtok_r(NULL, ", ", &save)) out[n++] = m;
  return n;
}

/* --fair-weights NAME=W,...: split in place (the names stay in o's text). */
#define MAX_FAIR_WEIGHTS 256
static struct pq_fair_weight fair_weights[MAX_FAIR_WEIGHTS];

/* The lists of NAME=VALUE items (--fair-weights, --model-alias, --model-fallback): item is split
 * in place at its '='; the value, or NULL when a side is empty or there is none. */
static char *split_pair(char *item) {
  char *eq = strchr(item, '=');
  if (!eq || eq == item || !eq[1]) return NULL;
  *eq = '\0';
  return eq + 1;
}

#define EACH_ITEM(text, item) \
  for (char *save_ = NULL, *item = strtok_r(text, ", ", &save_); item; item = strtok_r(NULL, ", ", &save_))

static int parse_fair_weights(char *text, size_t *n) {
  *n = 0;
  EACH_ITEM(text, item) {
    char *value = split_pair(item), *end = NULL;
    long weight = value ? strtol(value, &end, 10) : 0;
    if (!value || *end || weight < 1 || weight > 1000 || *n == MAX_FAIR_WEIGHTS) {
      fprintf(stderr, "promptq serve: --fair-weights wants NAME=W,... (W from 1 to 1000, %d names at most): '%s%s%s'\n",
              MAX_FAIR_WEIGHTS, item, value ? "=" : "", value ? value : "");
      return -1;
    }
    fair_weights[(*n)++] = (struct pq_fair_weight){.user = item, .weight = (int)weight};
  }
  return 0;
}

/* --model-alias NAME=MODEL|MODEL,... and --model-fallback MODEL=OTHER,...: split in place. */
#define MAX_ROUTES 64
#define MAX_TARGETS 16
static struct pq_model_alias aliases[MAX_ROUTES];
static const char *alias_targets[MAX_ROUTES][MAX_TARGETS];
static struct pq_model_fallback fallbacks[MAX_ROUTES];

static int parse_aliases(char *text, size_t *n) {
  *n = 0;
  EACH_ITEM(text, item) {
    char *value = split_pair(item);
    if (!value || *n == MAX_ROUTES) {
      fprintf(stderr, "promptq serve: --model-alias wants NAME=MODEL|MODEL,... (%d names at most): '%s'\n", MAX_ROUTES,
              item);
      return -1;
    }
    size_t k = 0;
    for (char *s2 = NULL, *t = strtok_r(value, "|", &s2); t && k < MAX_TARGETS; t = strtok_r(NULL, "|", &s2))
      alias_targets[*n][k++] = t;
    aliases[*n] = (struct pq_model_alias){.name = item, .targets = alias_targets[*n], .n_targets = k};
    (*n)++;
  }
  return 0;
}

static int parse_fallbacks(char *text, size_t *n) {
  *n = 0;
  EACH_ITEM(text, item) {
    char *value = split_pair(item); /* a model its own fallback would move its jobs in place */
    if (!value || strcmp(value, item) == 0 || *n == MAX_ROUTES) {
      fprintf(stderr, "promptq serve: --model-fallback wants MODEL=OTHER,... (%d at most): '%s%s%s'\n", MAX_ROUTES, item,
              value ? "=" : "", value ? value : "");
      return -1;
    }
    fallbacks[(*n)++] = (struct pq_model_fallback){.model = item, .fallback = value};
  }
  return 0;
}

static int configure_council(serve_opts *o) {
  const char *members[PQ_COUNCIL_MAX_MEMBERS + 1], *synthesizers[9];
  pq_council_defaults d = {
      .members = members,
      .n_members = split_models(o->council_members, members, PQ_COUNCIL_MAX_MEMBERS + 1),
      .synthesizers = synthesizers,
      .n_synthesizers = split_models(o->council_synthesizers, synthesizers, 9),
      .quorum = o->council_quorum,
      .member_timeout_ms = o->council_member_timeout_ms,
      .max_tokens = o->council_max_tokens,
      .max_total_tokens = o->council_max_total_tokens,
      .embedding_model = o->council_embedding_model,
      .context_tokens = o->council_context_tokens,
  };
  if (d.n_members > PQ_COUNCIL_MAX_MEMBERS || d.n_synthesizers > 8) {
    pq_error("a council has at most %d members and 8 synthesizers", PQ_COUNCIL_MAX_MEMBERS);
    return -1;
  }
  if (d.quorum > 0 && d.n_members > 0 && (size_t)d.quorum > d.n_members) {
    pq_error("--council-quorum %d needs at least that many --council-members (%zu given)", d.quorum, d.n_members);
    return -1;
  }
  if (pq_council_configure(&d) != 0) {
    pq_error("out of memory");
    return -1;
  }
  return 0;
}

static int parse_listen(const char *listen, char *host, size_t host_size, int *port) {
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || (size_t)(colon - listen) >= host_size) return -1;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535 || colon[1] == '\0') return -1;
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  *port = (int)p;
  return 0;
}

/* One coordinator per data folder: a second would keep its own index. */
static int lock_data(const char *data) {
  char path[1100];
  snprintf(path, sizeof path, "%s/promptq.lock", data);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) { /* a folder we cannot write to is not one in use */
    fprintf(stderr, "promptq: cannot write in the data folder %s (%s)\n", data, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr, "promptq: %s is in use by another promptq serve (%s)\n", data, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* What the data folder holds is the operator's alone: the store, the JWT
 * secret, the receipt key (made 0600 whatever an earlier version left). */
static void private_files(const char *data) {
  static const char *const names[] = {"promptq.db", "promptq.db-wal", "promptq.db-shm", "jwt.secret", "receipt.key"};
  char path[1200];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", data, names[i]);
    if (chmod(path, 0600) != 0 && errno != ENOENT) pq_warn("cannot make %s private: %s", path, strerror(errno));
  }
  chmod(data, 0700);
}

/* --anonymous-dialect 001,...: each named dialect's client routes take
 * callers without credentials as its own user ("anonymous:d001"). */
static int anonymous_dialects(pq_coord *coord, const char *list, pq_server_config *sc) {
  static char names[4][80], prefixes[4][72];
  char copy[64], *save = NULL;
  snprintf(copy, sizeof copy, "%s", list);
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    const pq_dialect *found = NULL;
    for (size_t i = 0; pq_dialects[i] && !found; i++) {
      const char *n = pq_dialects[i]->name;
      if (strcmp(n, tok) == 0 || (n[0] == 'd' && strcmp(n + 1, tok) == 0)) found = pq_dialects[i];
    }
    if (!found || sc->n_anonymous == 4) {
      pq_error("--anonymous-dialect: no dialect '%s' (000, 001, 003, openai)", tok);
      return -1;
    }
    int k = sc->n_anonymous;
    snprintf(names[k], sizeof names[k], "anonymous:%s", found->name);
    snprintf(prefixes[k], sizeof prefixes[k], "%s.", found->name);
    pq_user u = {.name = names[k], .password_hash = "!anonymous"}; /* no password login */
    pq_op op = {.kind = PQ_OP_USER_ADD, .in.user_add = {.user = &u, .if_absent = true}};
    pq_err e = pq_coord_call(coord, &op);
    if (e == PQ_OK) {
      memcpy(sc->anonymous[k].user_id, op.out.user->id, sizeof sc->anonymous[k].user_id);
      sc->anonymous[k].route_prefix = prefixes[k];
      sc->anonymous[k].user_name = names[k];
      sc->n_anonymous++;
      pq_warn("ANONYMOUS: %s's client routes need no credentials; callers share the user %s", found->name, names[k]);
    }
    pq_op_release(&op);
    if (e != PQ_OK) return -1;
  }
  return 0;
}

int pq_cmd_serve(int argc, char **argv) {
  serve_opts o;
  pq_args args;
  char err[512], host[64], url[1300], why_buf[300];
  int port, lock_fd = -1, result = 1;
  size_t n_opts = sizeof serve_options / sizeof serve_options[0];
  if (pq_dialects_apply_environment(err, sizeof err) != 0) { /* the dialects' own variables */
    fprintf(stderr, "promptq serve: %s\n", err);
    return 2;
  }
  if (pq_opts_load(serve_options, n_opts, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq serve: %s\n", err);
    return 2;
  }
  if (args.help) {
    pq_opts_usage(stdout, "promptq serve [options]", "Runs a coordinator: the HTTP API and the job store.",
                  serve_options, n_opts);
    return 0;
  }
  int level = pq_log_parse_level(o.log_level);
  bool sync_full = strcmp(o.sync, "full") == 0;
  if (level < 0 || (!sync_full && strcmp(o.sync, "normal") != 0) || args.n_positional ||
      parse_listen(o.listen, host, sizeof host, &port) != 0) {
    fprintf(stderr, "promptq serve: check --listen (HOST:PORT), --log-level and --sync (see --help)\n");
    return 2;
  }
  pq_log_set_level((pq_log_level)level);
  umask(077); /* every file serve makes (the store, its journal, keys) is the operator's alone */
  /* a burst above the limit would let more through at once than a minute allows */
  if (o.rate_client > 0 && o.burst_client > o.rate_client) o.burst_client = o.rate_client;
  if (o.rate_worker > 0 && o.burst_worker > o.rate_worker) o.burst_worker = o.rate_worker;
  char db[1200];
  if (pq_cli_data_path(o.data, db, sizeof db) != 0 || pq_cli_store_url(o.store, o.data, url, sizeof url) != 0 ||
      (!pq_store_url_shared(url) && (lock_fd = lock_data(o.data)) < 0)) /* one SQLite writer per folder */
    return 1;
  char shown[1300];
  pq_store_url_redacted(url, shown, sizeof shown);
  private_files(o.data);
  pq_coord *coord = NULL;
  pq_server *server = NULL;
  pq_access *access = NULL;
  pq_webhook_sender *sender = NULL;
  unsigned char *secret = NULL;
  size_t secret_len = 0;

  /* signals are taken by sigwait below, never by the other threads */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* before any thread: the payment routes and the exchange's watcher call out with libcurl */
  curl_global_init(CURL_GLOBAL_DEFAULT);

  size_t n_fair_weights = 0, n_aliases = 0, n_fallbacks = 0;
  if (parse_fair_weights(o.fair_weights, &n_fair_weights) != 0 || parse_aliases(o.model_aliases, &n_aliases) != 0 ||
      parse_fallbacks(o.model_fallbacks, &n_fallbacks) != 0)
    goto out;
  pq_coord_config cc = {
      .store_url = url,
      .store = {.sync_full = sync_full, .busy_timeout_ms = 5000, .read_pool_size = 8, .pooled = o.store_poll},
      .lease_timeout_ms = o.lease_timeout_ms,
      .max_attempts = o.max_attempts,
      .worker_timeout_ms = o.worker_timeout_ms,
      .retry_backoff_ms = o.retry_backoff_ms,
      .retry_backoff_max_ms = o.retry_backoff_max_ms,
      .reap_interval_ms = o.reap_interval_ms,
      .poll_only = o.store_poll,
      .batch_max = o.batch_max,
      .max_queued_per_owner = o.max_queued_per_user,
      .max_running_per_owner = o.max_running_per_user,
      .max_queued_per_owner_model = o.max_queued_per_user_model,
      .max_running_per_owner_model = o.max_running_per_user_model,
      .fair_weights = fair_weights,
      .n_fair_weights = n_fair_weights,
      .urgent_priority = o.urgent_priority,
      .hold_max_tokens = o.hold_max_tokens,
      .worker_share_percent = o.worker_share,
      .batch_discount_percent = o.batch_discount,
      .aliases = aliases,
      .n_aliases = n_aliases,
      .fallbacks = fallbacks,
      .n_fallbacks = n_fallbacks,
      .webhook_retry_base_ms = o.webhook_retry_base_ms,
      .webhook_retry_for_ms = o.webhook_retry_for_ms,
      .webhook_log_for_ms = o.webhook_log_for_ms,
  };
  static pq_receipt_key receipt_key;
  char key_path[1100];
  snprintf(key_path, sizeof key_path, "%s/receipt.key", o.data);
  if (pq_receipt_key_load(key_path, &receipt_key, why_buf, sizeof why_buf) != PQ_OK) {
    pq_error("%s", why_buf);
    goto out;
  }
  cc.receipt_key = &receipt_key;
  char why[300];
  if (!o.open && pq_jwt_load_secret(o.jwt_secret, o.data, &secret, &secret_len, why, sizeof why) != PQ_OK) {
    pq_error("%s", why);
    goto out;
  }
  pq_access_config ac = {
      .open = o.open,
      .jwt = {.secret = secret, .secret_len = secret_len, .issuer = o.jwt_issuer,
              .audience = o.jwt_audience, .ttl_s = o.jwt_ttl_ms / 1000, .leeway_s = 30},
      .client = {.limit = o.rate_client, .window_s = 60, .burst = o.burst_client},
      .worker = {.limit = o.rate_worker, .window_s = 60, .burst = o.burst_worker},
      .login = {.limit = o.rate_login, .window_s = 60, .burst = o.rate_login > 1 ? o.rate_login / 2 : 1},
      .user = {.limit = o.rate_user, .window_s = 60, .burst = 10},
      .max_streams_per_key = o.max_streams_per_key,
      .hash_threads = 2,
  };
  if (o.open)
    pq_warn("OPEN MODE: no credentials are checked and every caller is an admin. "
            "Never expose this server beyond this machine.");
  if (configure_council(&o) != 0) goto out;
  pq_err e = pq_coord_open(&cc, &coord);
  if (e != PQ_OK) {
    pq_error("cannot open the store %s: %s", shown, pq_err_message(e));
    goto out;
  }
  if (o.prices[0] && apply_prices(coord, o.prices) != 0) goto out;
  static pq_api_settings settings;
  settings.default_model = o.default_model;
  settings.challenge_ttl_ms = o.challenge_ttl_ms;
  settings.web_assets = o.web_assets;
  settings.webhook_allow_private = o.webhook_allow_private;
  pq_webhook_sender_config wc = {.allow_private = o.webhook_allow_private, .timeout_ms = o.webhook_timeout_ms,
                                 .concurrency = o.webhook_concurrency};
  if ((e = pq_webhook_sender_start(coord, &wc, &sender)) != PQ_OK) {
    pq_error("cannot start the webhook sender: %s", pq_err_message(e));
    goto out;
  }
  if (o.webhook_allow_private) pq_warn("webhooks may reach loopback, private and link-local addresses");
  pq_server_config sc = {
      .host = host,
      .port = port,
      .threads = o.threads,
      .connection_limit = o.connection_limit,
      .per_ip_limit = o.per_ip_limit,
      .idle_timeout_s = (int)(o.idle_timeout_ms / 1000),
      .header_timeout_ms = o.header_timeout_ms,
      .max_body = o.max_body,
      .max_upload = o.max_upload,
      .max_wait_s = (int)(o.max_wait_ms / 1000),
      .keepalive_ms = o.keepalive_ms,
      .metrics_private = o.metrics_private,
      .access = access,
      .app = &settings,
  };
  sc.routes = pq_api_routes(&sc.n_routes);
  if ((e = pq_dialects_start(coord, o.open)) != PQ_OK) goto out;
  if (o.anonymous_dialect[0] && !o.open && anonymous_dialects(coord, o.anonymous_dialect, &sc) != 0) goto out;
  if (!(access = pq_access_new(&ac, coord))) {
    pq_error("cannot set up access control");
    goto out;
  }
  sc.access = access;
  if ((e = pq_server_start(&sc, coord, &server)) != PQ_OK) goto out;
  pq_info("promptq %s listening on http://%s:%d (store %s, sync=%s)", PQ_VERSION, host,
          pq_server_port(server), shown, o.sync);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  pq_info("received %s: stopping (answering waiting requests, finishing those in flight)",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  result = 0;
out:
  pq_server_stop(server);
  pq_dialects_stop(); /* their watchers submit to the engine: they stop first */
  pq_access_free(access);
  if (coord) pq_coord_shutdown(coord); /* wakes the sender, which then stops */
  pq_webhook_sender_stop(sender);
  pq_coord_close(coord);
  if (secret) sodium_memzero(secret, secret_len);
  free(secret);
  if (lock_fd >= 0) close(lock_fd);
  curl_global_cleanup();
  if (result == 0) pq_info("stopped cleanly");
  return result;
}
