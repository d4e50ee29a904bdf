/* Document 003's exchange: Bitcoin in, credit out (docs/payments.md).
 *
 * One receiving address (BITCOIN_ADDRESS) serves every payment, so each
 * pending request asks for an amount no other pending one asks for (a few
 * satoshis apart), and a transaction is matched by its amount. A watcher
 * thread reads the address's transactions from an Esplora-compatible API
 * (ESPLORA_URL), with backoff on failures, and hands each output it sees to
 * the engine (PQ_OP_BTC_OBSERVE), which credits a request once, when the
 * output has BTC_CONFIRMATIONS confirmations, and records late or unasked
 * amounts without crediting them. */
#include "api/dialects/d003_coordinator/exchange.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "http/json_in.h"

#define SATS_PER_BTC INT64_C(100000000)
#define MAX_OFFSET_SATS 999 /* how far apart concurrent requests' amounts may be pushed */
#define BACKOFF_MAX_MS (5 * 60 * 1000)

static struct {
  char address[128];
  char esplora[512];
  int64_t rate;             /* AITBC per BTC */
  int64_t poll_ms, ttl_ms, confirmations, max_pending;
} cfg;

static struct {
  pthread_t thread;
  bool running, stopping;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pq_coord *coord;
} watcher = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int64_t env_int(const char *name, int64_t dflt) {
  const char *v = getenv(name);
  return v && atoll(v) > 0 ? atoll(v) : dflt;
}

void pq_exchange_configure(void) {
  const char *address = getenv("BITCOIN_ADDRESS"), *esplora = getenv("ESPLORA_URL");
  snprintf(cfg.address, sizeof cfg.address, "%s", address ? address : "");
  snprintf(cfg.esplora, sizeof cfg.esplora, "%s", esplora ? esplora : "");
  size_t n = strlen(cfg.esplora);
  if (n && cfg.esplora[n - 1] == '/') cfg.esplora[n - 1] = '\0';
  cfg.rate = env_int("BTC_TO_AITBC_RATE", 100000);
  cfg.poll_ms = env_int("ESPLORA_POLL_MS", 30000);
  cfg.ttl_ms = env_int("BTC_PAYMENT_TTL_S", 3600) * 1000;
  cfg.confirmations = env_int("BTC_CONFIRMATIONS", 1);
  cfg.max_pending = env_int("BTC_MAX_PENDING", 10);
}

/* ---- the requests ---- */

static char *btc_text(int64_t sats, char *buf, size_t size) {
  snprintf(buf, size, "%lld.%08lld", (long long)(sats / SATS_PER_BTC), (long long)(sats % SATS_PER_BTC));
  return buf;
}

/* "0.001" BTC (at most 8 decimals) into satoshis; -1 when it is not one. */
static int parse_btc(const char *text, int64_t *sats) {
  int64_t whole = 0, frac = 0;
  int places = 0, digits = 0;
  const char *p = text;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    if (whole > 21000000) return -1;
    whole = whole * 10 + (*p - '0');
  }
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, places++) {
      if (places == 8) return -1;
      frac = frac * 10 + (*p - '0');
    }
  if (*p || !digits) return -1;
  for (int i = places; i < 8; i++) frac *= 10;
  *sats = whole * SATS_PER_BTC + frac;
  return 0;
}

static json_t *payment_json(const pq_btc_payment *p) {
  char btc[32], uri[256];
  int64_t now = pq_now_ms();
  const char *status = strcmp(p->status, "pending") == 0 && now >= p->expires_at && !p->txid ? "expired" : p->status;
  btc_text(p->amount_sats, btc, sizeof btc);
  snprintf(uri, sizeof uri, "bitcoin:%s?amount=%s&label=promptq%%20credit&message=payment%%20%s", p->address, btc, p->id);
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:f,s:I,s:s,s:s,s:I,s:s?,s:o,s:o,s:o}", "id", p->id, "user_id", p->user_id,
                   "address", p->address, "amount_btc", btc, "amount_sats", (json_int_t)p->amount_sats, "aitbc_amount",
                   pq_micros_to_usd(p->credit_micros), "rate", (json_int_t)cfg.rate, "uri", uri, "status", status,
                   "confirmations", (json_int_t)p->confirmations, "txid", p->txid, "created_at",
                   pq_api_time(p->created_at), "expires_at", pq_api_time(p->expires_at), "confirmed_at",
                   pq_api_time(p->confirmed_at));
}

static pq_err created(pq_req *req) {
  if (req->op.out.result == PQ_ERR_QUEUE_QUOTA_EXCEEDED)
    return pq_req_fail(req, PQ_ERR_QUEUE_QUOTA_EXCEEDED,
                       json_pack("{s:s,s:I}", "code", "TOO_MANY_PENDING", "max_pending", (json_int_t)cfg.max_pending),
                       "you have %lld payment requests waiting already; pay or let them expire first",
                       (long long)cfg.max_pending);
  if (req->op.out.result == PQ_ERR_UNAVAILABLE)
    return pq_req_fail(req, PQ_ERR_UNAVAILABLE, json_pack("{s:s}", "code", "EXCHANGE_BUSY"),
                       "too many payments of this amount are pending; try again shortly");
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 201, payment_json(req->op.out.btc));
}

pq_err pq_exchange_create(pq_req *req) {
  static const char *const fields[] = {"amount", "currency", NULL};
  const char *currency = NULL;
  pq_err e;
  if (!*cfg.address)
    return pq_req_fail(req, PQ_ERR_UNAVAILABLE, json_pack("{s:s}", "code", "EXCHANGE_DISABLED"),
                       "the exchange is not configured (BITCOIN_ADDRESS)");
  if ((e = pq_json_only(req, req->body, "the payment", fields)) ||
      (e = pq_json_string(req, req->body, "currency", false, 8, &currency)))
    return e;
  json_t *amount = json_object_get(req->body, "amount");
  char text[48] = "";
  if (json_is_string(amount)) snprintf(text, sizeof text, "%s", json_string_value(amount));
  else if (json_is_integer(amount)) snprintf(text, sizeof text, "%lld", (long long)json_integer_value(amount));
  bool btc = currency && strcmp(currency, "BTC") == 0;
  if (json_is_real(amount)) snprintf(text, sizeof text, btc ? "%.8f" : "%.6f", json_real_value(amount));
  if (currency && !btc && strcmp(currency, "AITBC") != 0)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "code", "INVALID_CURRENCY", "field", "currency"),
                       "currency must be AITBC or BTC");
  int64_t sats = 0, credit = 0;
  if (btc) {
    if (parse_btc(text, &sats) || sats <= 0)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "code", "INVALID_AMOUNT", "field", "amount"),
                         "amount must be a BTC amount above 0 with at most 8 decimals");
    __int128 wide = (__int128)sats * cfg.rate * 1000000 / SATS_PER_BTC;
    credit = wide > (__int128)PQ_MONEY_MAX_USD * 1000000 ? -1 : (int64_t)wide; /* refused below */
  } else {
    if (pq_micros_parse(text, &credit) || credit <= 0)
      return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "code", "INVALID_AMOUNT", "field", "amount"),
                         "amount must be an AITBC amount above 0 with at most 6 decimals");
    /* what the credit costs in satoshis, rounded up: the exchange never gives credit away */
    sats = (int64_t)(((__int128)credit * SATS_PER_BTC + (__int128)cfg.rate * 1000000 - 1) / ((__int128)cfg.rate * 1000000));
  }
  if (sats > 21000000 * SATS_PER_BTC || credit <= 0 || credit > PQ_MONEY_MAX_USD * 1000000)
    return pq_req_fail(req, PQ_ERR_INVALID_REQUEST, json_pack("{s:s,s:s}", "code", "INVALID_AMOUNT", "field", "amount"),
                       "amount is out of range");
  req->op.kind = PQ_OP_BTC_CREATE;
  req->op.in.btc_create.user_id = req->caller.user_id;
  req->op.in.btc_create.address = cfg.address;
  req->op.in.btc_create.base_sats = sats;
  req->op.in.btc_create.credit_micros = credit;
  req->op.in.btc_create.ttl_ms = cfg.ttl_ms;
  req->op.in.btc_create.max_offset = MAX_OFFSET_SATS;
  req->op.in.btc_create.max_pending = cfg.max_pending;
  pq_req_run_op(req, created);
  return PQ_OK;
}

pq_err pq_exchange_status(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  pq_btc_payment *p = NULL;
  pq_err e = id && pq_is_uuid(id) ? pq_coord_btc_payment(req->coord, id, &p) : PQ_ERR_NOT_FOUND;
  if (e == PQ_OK && !req->caller.admin && strcmp(p->user_id, req->caller.user_id) != 0) e = PQ_ERR_NOT_FOUND;
  if (e == PQ_ERR_NOT_FOUND) {
    pq_btc_payment_free(p);
    return pq_req_fail(req, e, json_pack("{s:s}", "code", "PAYMENT_NOT_FOUND"), "no payment %s", id ? id : "");
  }
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, payment_json(p));
  pq_btc_payment_free(p);
  return e;
}

/* ---- the watcher ---- */

static size_t collect(char *ptr, size_t size, size_t n, void *ud) {
  return pq_buf_add(ud, ptr, size * n) == 0 ? size * n : 0;
}

/* A stopping server does not wait out a slow Esplora. */
static int still_wanted(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  (void)ud, (void)a, (void)b, (void)c, (void)d;
  return __atomic_load_n(&watcher.stopping, __ATOMIC_RELAXED) ? 1 : 0;
}

/* The Esplora URL as logs may show it: without credentials or a query (an API key). */
static const char *shown_url(char *out, size_t size) {
  const char *scheme = strstr(cfg.esplora, "://"), *host = scheme ? scheme + 3 : cfg.esplora;
  const char *at = strchr(host, '@'), *slash = strchr(host, '/');
  if (at && (!slash || at < slash)) host = at + 1;
  snprintf(out, size, "%.*s%s", scheme ? (int)(scheme + 3 - cfg.esplora) : 0, cfg.esplora, host);
  char *q = strchr(out, '?');
  if (q) *q = '\0';
  return out;
}

static json_t *esplora_get(const char *path) {
  char url[800];
  snprintf(url, sizeof url, "%s%s", cfg.esplora, path);
  pq_buf body = {0};
  CURL *h = curl_easy_init();
  long status = 0;
  json_t *out = NULL;
  if (h) {
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, still_wanted);
    if (curl_easy_perform(h) == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200 && body.data)
      out = json_loads(body.data, JSON_DECODE_ANY, NULL);
    curl_easy_cleanup(h);
  }
  pq_buf_free(&body);
  return out;
}

/* One look at the address: every output paying it goes to the engine, with
 * the time of the previous good look. 0, or -1 (try again later). */
static int64_t last_good_look;

static int look(pq_coord *coord) {
  int64_t started = pq_now_ms();
  char path[300];
  json_t *tip = esplora_get("/blocks/tip/height");
  snprintf(path, sizeof path, "/address/%s/txs", cfg.address);
  json_t *txs = tip ? esplora_get(path) : NULL;
  int rc = json_is_integer(tip) && json_is_array(txs) ? 0 : -1;
  size_t i, k;
  json_t *tx, *out;
  json_array_foreach(rc == 0 ? txs : NULL, i, tx) {
    const char *txid = json_string_value(json_object_get(tx, "txid"));
    json_t *status = json_object_get(tx, "status");
    int64_t height = json_integer_value(json_object_get(status, "block_height"));
    int64_t conf = json_is_true(json_object_get(status, "confirmed")) && height > 0
                       ? json_integer_value(tip) - height + 1
                       : 0;
    json_array_foreach(json_object_get(tx, "vout"), k, out) {
      const char *to = json_string_value(json_object_get(out, "scriptpubkey_address"));
      if (!txid || !to || strcmp(to, cfg.address) != 0) continue;
      pq_op op = {.kind = PQ_OP_BTC_OBSERVE,
                  .in.btc_observe = {.txid = txid, .vout = (int64_t)k,
                                     .amount_sats = json_integer_value(json_object_get(out, "value")),
                                     .confirmations = conf, .min_confirmations = cfg.confirmations,
                                     .last_look = last_good_look}};
      pq_err e = pq_coord_call(coord, &op);
      if (e == PQ_OK && op.out.btc_outcome && strcmp(op.out.btc_outcome, "known") != 0 &&
          strcmp(op.out.btc_outcome, "seen") != 0)
        pq_info("exchange: output %s:%zu (%lld sat): %s", txid, k, (long long)op.in.btc_observe.amount_sats,
                op.out.btc_outcome);
      if (e != PQ_OK) rc = -1;
      pq_op_release(&op);
    }
  }
  json_decref(tip);
  json_decref(txs);
  if (rc == 0) last_good_look = started;
  return rc;
}

static void *watch(void *arg) {
  (void)arg;
  int64_t wait_ms = 0, backoff = cfg.poll_ms;
  pthread_mutex_lock(&watcher.mu);
  while (!watcher.stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    while (!watcher.stopping && pthread_cond_timedwait(&watcher.cv, &watcher.mu, &until) == 0) {}
    if (watcher.stopping) break;
    pthread_mutex_unlock(&watcher.mu);
    int rc = look(watcher.coord);
    pthread_mutex_lock(&watcher.mu);
    if (rc == 0) backoff = wait_ms = cfg.poll_ms;
    else { /* Esplora unreachable or odd: look again, less and less often */
      wait_ms = backoff;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      char shown[1100];
      pq_warn("exchange: cannot read %s now; looking again in %lld ms", shown_url(shown, sizeof shown),
              (long long)wait_ms);
    }
  }
  pthread_mutex_unlock(&watcher.mu);
  return NULL;
}

pq_err pq_exchange_start(pq_coord *coord) {
  if (!*cfg.address || !*cfg.esplora) return PQ_OK; /* no watching without both */
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&watcher.cv, &attr);
  pthread_condattr_destroy(&attr);
  watcher.coord = coord;
  watcher.stopping = false;
  if (pthread_create(&watcher.thread, NULL, watch, NULL) != 0) return PQ_ERR_INTERNAL;
  watcher.running = true;
  char shown[1100];
  pq_info("exchange: watching %s through %s (%lld confirmation%s)", cfg.address, shown_url(shown, sizeof shown),
          (long long)cfg.confirmations, cfg.confirmations == 1 ? "" : "s");
  return PQ_OK;
}

void pq_exchange_stop(void) {
  if (!watcher.running) return;
  pthread_mutex_lock(&watcher.mu);
  __atomic_store_n(&watcher.stopping, true, __ATOMIC_RELAXED);
  pthread_cond_broadcast(&watcher.cv);
  pthread_mutex_unlock(&watcher.mu);
  pthread_join(watcher.thread, NULL);
  watcher.running = false;
}
