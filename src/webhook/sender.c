/* The webhook sender (webhook/sender.h). */
#include "webhook/sender.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "webhook/address.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CONCURRENCY 16
#define ANSWER_KEEP 4096          /* of a receiver's answer, for the delivery log's error */
#define CLAIM_SLACK_MS 30000      /* a claim outlives its request by this much */
#define IDLE_WAIT_MS 5000         /* with nothing due: look again at least this often */

typedef struct transfer {
  CURL *easy;
  struct curl_slist *headers;
  pq_delivery *delivery;
  char answer[ANSWER_KEEP + 1];
  size_t answer_len;
  char refused[INET6_ADDRSTRLEN + 8]; /* the blocked address it would have connected to */
  bool allow_private;
} transfer;

struct pq_webhook_sender {
  pq_coord *coord;
  pq_webhook_sender_config cfg;
  CURLM *multi;
  transfer **active; /* in flight: concurrency entries */
  pthread_t thread;
  bool started;
  int stop; /* atomic */
};

static size_t keep_answer(char *data, size_t size, size_t n, void *ctx) {
  transfer *t = ctx;
  size_t len = size * n, room = ANSWER_KEEP - t->answer_len;
  size_t take = len < room ? len : room;
  memcpy(t->answer + t->answer_len, data, take);
  t->answer_len += take;
  t->answer[t->answer_len] = '\0';
  return len; /* the rest is read and dropped: a receiver cannot make us hold more */
}

/* Every connection, whatever the name resolved to: no blocked address. */
static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *address) {
  transfer *t = ctx;
  (void)purpose;
  if (!t->allow_private && pq_webhook_addr_blocked(&address->addr)) {
    const void *raw = address->family == AF_INET ? (const void *)&((struct sockaddr_in *)&address->addr)->sin_addr
                                                 : (const void *)&((struct sockaddr_in6 *)&address->addr)->sin6_addr;
    if (!inet_ntop(address->family, raw, t->refused, sizeof t->refused)) snprintf(t->refused, sizeof t->refused, "?");
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype, address->protocol);
}

static void transfer_free(transfer *t) {
  if (!t) return;
  if (t->easy) curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  pq_delivery_free(t->delivery);
  free(t);
}

static transfer *transfer_new(pq_webhook_sender *s, pq_delivery *d) {
  transfer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->delivery = d;
  t->allow_private = s->cfg.allow_private;
  int64_t ts = pq_now_ms() / 1000;
  char signature[PQ_WEBHOOK_SIGNATURE_LEN + 1], line[256];
  if (pq_webhook_sign(d->secret, d->id, ts, d->payload, strlen(d->payload), signature) != 0 ||
      !(t->easy = curl_easy_init())) {
    t->delivery = NULL; /* the caller still owns it */
    transfer_free(t);
    return NULL;
  }
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  snprintf(line, sizeof line, "webhook-id: %s", d->id);
  h = h ? curl_slist_append(h, line) : NULL;
  snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts);
  h = h ? curl_slist_append(h, line) : NULL;
  snprintf(line, sizeof line, "webhook-signature: %s", signature);
  h = h ? curl_slist_append(h, line) : NULL;
  h = h ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
  t->headers = h;
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, d->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROXY, ""); /* no proxy from the environment: the address check is ours */
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->cfg.timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->cfg.timeout_ms < 5000 ? s->cfg.timeout_ms : 5000));
  curl_easy_setopt(e, CURLOPT_USERAGENT, "promptq-webhooks/1");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->payload);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(d->payload));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_answer);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  return h ? t : (t->delivery = NULL, transfer_free(t), NULL);
}

/* A receiver's words, made safe to keep and to log: printable ASCII only (its bytes are not
 * known to be UTF-8, and a newline would forge a log line), at most 200 characters. */
static void printable(const char *in, size_t len, char *out, size_t size) {
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < size && n < 200; i++) {
    unsigned char ch = (unsigned char)in[i];
    out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ch == '\n' || ch == '\r' || ch == '\t' ? ' ' : '?';
  }
  out[n] = '\0';
}

/* What an attempt came to, for the writer. */
static void report(pq_webhook_sender *s, const transfer *t, CURLcode code) {
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  char error[512];
  const char *why = NULL;
  bool retryable = false;
  if (t->refused[0] && code != CURLE_OK) { /* a blocked address, and no other one answered */
    snprintf(error, sizeof error,
             "refused: %s is a loopback, private or link-local address (the operator may allow them with "
             "--webhook-allow-private)",
             t->refused);
    why = error;
  } else if (code != CURLE_OK) {
    snprintf(error, sizeof error, "%s", curl_easy_strerror(code));
    why = error;
    retryable = true; /* a timeout, a refused or reset connection, a name that did not resolve */
  } else if (status < 200 || status > 299) {
    char said[256];
    printable(t->answer, t->answer_len, said, sizeof said);
    snprintf(error, sizeof error, "the receiver answered %ld%s%s", status, *said ? ": " : "", said);
    why = error;
    retryable = status >= 500 || status == 408 || status == 429;
  }
  pq_op op = {.kind = PQ_OP_DELIVERY_RESULT};
  op.in.delivery_result.id = t->delivery->id;
  op.in.delivery_result.error = why;
  op.in.delivery_result.status = (int)status;
  op.in.delivery_result.retryable = retryable;
  pq_err result = pq_coord_call(s->coord, &op);
  if (result != PQ_OK) /* the claim runs out and it is sent again: at least once */
    pq_warn("webhooks: cannot record delivery %s (%s)", t->delivery->id, pq_err_code(result));
  else if (why)
    pq_info("webhooks: delivery %s to %s failed (%s)%s", t->delivery->id, t->delivery->url, why,
            retryable ? "; it will be retried" : "");
  pq_op_release(&op);
}

/* Claims up to room due deliveries and starts them. Returns how many started, or -1 when the
 * claim failed (the store is failing: the caller waits a while). */
static int claim(pq_webhook_sender *s, int room) {
  const char *owners[s->cfg.concurrency > 0 ? s->cfg.concurrency : 1], *urls[s->cfg.concurrency > 0 ? s->cfg.concurrency : 1];
  size_t n_busy = 0;
  for (int k = 0; k < s->cfg.concurrency; k++)
    if (s->active[k]) {
      owners[n_busy] = s->active[k]->delivery->owner;
      urls[n_busy++] = s->active[k]->delivery->url;
    }
  pq_op op = {.kind = PQ_OP_DELIVERY_CLAIM};
  op.in.delivery_claim.limit = (size_t)room;
  op.in.delivery_claim.hold_ms = s->cfg.timeout_ms + CLAIM_SLACK_MS;
  op.in.delivery_claim.per_owner = s->cfg.per_owner;
  op.in.delivery_claim.per_host = s->cfg.per_host;
  op.in.delivery_claim.busy_owners = owners;
  op.in.delivery_claim.busy_urls = urls;
  op.in.delivery_claim.n_busy = n_busy;
  int started = 0;
  pq_err result = pq_coord_call(s->coord, &op);
  if (result == PQ_OK) {
    for (size_t i = 0; i < op.out.n_deliveries; i++) {
      transfer *t = transfer_new(s, op.out.deliveries[i]);
      if (!t) {
        pq_warn("webhooks: cannot send delivery %s (a bad secret, or out of memory)", op.out.deliveries[i]->id);
        continue; /* its claim runs out and it is tried again */
      }
      op.out.deliveries[i] = NULL; /* the transfer owns it */
      for (int k = 0; k < s->cfg.concurrency; k++)
        if (!s->active[k]) {
          s->active[k] = t;
          break;
        }
      curl_multi_add_handle(s->multi, t->easy);
      started++;
    }
  }
  pq_op_release(&op);
  return result == PQ_OK ? started : -1;
}

static bool stopping(pq_webhook_sender *s) { return __atomic_load_n(&s->stop, __ATOMIC_RELAXED) != 0; }

static void *sender_main(void *arg) {
  pq_webhook_sender *s = arg;
  int active = 0;
  int64_t next_due = 0; /* wall ms; 0: look now */
  uint64_t seen = 0;    /* deliveries queued up to here were looked for */
  while (!stopping(s)) {
    int64_t now = pq_now_ms();
    if (active < s->cfg.concurrency && now >= next_due) {
      seen = pq_coord_webhook_seq(s->coord); /* read first: one queued while we claim wakes the wait below */
      int started = claim(s, s->cfg.concurrency - active);
      if (started >= 0) active += started;
      if (started < 0 || pq_coord_delivery_next_at(s->coord, &next_due) != PQ_OK) next_due = now + 1000;
      /* owners at their cap leave due deliveries behind: look again when a slot frees (below) */
      if (started >= 0 && active > 0 && next_due <= now) next_due = now + IDLE_WAIT_MS;
    } else if (active > 0 && pq_coord_webhook_seq(s->coord) != seen) {
      next_due = 0; /* new deliveries while others are in flight: look now */
    }
    if (active == 0) {
      int64_t wait = next_due - pq_now_ms();
      if (wait > IDLE_WAIT_MS) wait = IDLE_WAIT_MS;
      if (wait > 0 && !stopping(s)) pq_coord_webhook_wait(s->coord, seen, pq_mono_ms() + wait);
      next_due = 0; /* woken: new deliveries may be due */
      continue;
    }
    int running = 0;
    curl_multi_perform(s->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      transfer *t = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
      CURLcode code = msg->data.result;
      curl_multi_remove_handle(s->multi, msg->easy_handle);
      report(s, t, code);
      for (int k = 0; k < s->cfg.concurrency; k++)
        if (s->active[k] == t) s->active[k] = NULL;
      transfer_free(t);
      active--;
      next_due = 0; /* its retry may be due soon: look again */
    }
    if (active > 0) curl_multi_poll(s->multi, NULL, 0, 100, NULL);
  }
  /* stopping: what is in flight is dropped; its claims run out and it goes again after a restart */
  for (int k = 0; k < s->cfg.concurrency; k++)
    if (s->active[k]) {
      curl_multi_remove_handle(s->multi, s->active[k]->easy);
      transfer_free(s->active[k]);
      s->active[k] = NULL;
    }
  return NULL;
}

pq_err pq_webhook_sender_start(pq_coord *c, const pq_webhook_sender_config *cfg, pq_webhook_sender **out) {
  pq_webhook_sender *s = calloc(1, sizeof *s);
  if (!s) return PQ_ERR_NO_MEMORY;
  s->coord = c;
  s->cfg = *cfg;
  if (s->cfg.timeout_ms <= 0) s->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
  if (s->cfg.concurrency <= 0) s->cfg.concurrency = DEFAULT_CONCURRENCY;
  if (s->cfg.per_owner <= 0) s->cfg.per_owner = s->cfg.concurrency / 2 > 1 ? s->cfg.concurrency / 2 : 1;
  if (s->cfg.per_host <= 0) s->cfg.per_host = s->cfg.concurrency / 4 > 1 ? s->cfg.concurrency / 4 : 1;
  if (!(s->multi = curl_multi_init()) || !(s->active = calloc((size_t)s->cfg.concurrency, sizeof *s->active))) {
    if (s->multi) curl_multi_cleanup(s->multi);
    free(s);
    return PQ_ERR_NO_MEMORY;
  }
  if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
    curl_multi_cleanup(s->multi);
    free(s->active);
    free(s);
    return PQ_ERR_INTERNAL;
  }
  s->started = true;
  *out = s;
  return PQ_OK;
}

void pq_webhook_sender_stop(pq_webhook_sender *s) {
  if (!s) return;
  __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
  curl_multi_wakeup(s->multi);
  if (s->started) pthread_join(s->thread, NULL);
  curl_multi_cleanup(s->multi);
  free(s->active);
  free(s);
}
