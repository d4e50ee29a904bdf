#include "client/client.h"
#include "client/sse.h"
#include "base/buf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pq_client {
  CURL *curl;
  char *base;
  char *auth_header;
  volatile sig_atomic_t *abort_flag;
  long retry_after_s; /* the last answer's Retry-After; 0 when none */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

pq_client *pq_client_new(const char *base_url, const char *api_key) {
  pthread_once(&global_once, global_init);
  pq_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  size_t len = strlen(base_url);
  while (len && base_url[len - 1] == '/') len--;
  c->base = strndup(base_url, len);
  c->curl = curl_easy_init();
  if (api_key && *api_key) {
    size_t n = strlen(api_key) + 32;
    if ((c->auth_header = malloc(n))) snprintf(c->auth_header, n, "Authorization: Bearer %s", api_key);
  }
  if (!c->base || !c->curl) {
    pq_client_free(c);
    return NULL;
  }
  return c;
}

void pq_client_free(pq_client *c) {
  if (!c) return;
  if (c->curl) curl_easy_cleanup(c->curl);
  free(c->base);
  free(c->auth_header);
  free(c);
}

void pq_client_set_abort(pq_client *c, volatile sig_atomic_t *flag) { c->abort_flag = flag; }

static size_t on_data(char *ptr, size_t size, size_t n, void *ud) {
  return pq_buf_add(ud, ptr, size * n) == 0 ? size * n : 0;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d) {
  (void)a, (void)b, (void)c2, (void)d;
  pq_client *c = ud;
  return c->abort_flag && *c->abort_flag ? 1 : 0;
}

pq_err pq_client_call(pq_client *c, const char *method, const char *path, json_t *body,
                      long timeout_ms, long *status, json_t **out) {
  pq_err result = PQ_OK;
  pq_buf resp = {0};
  char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
  size_t url_len = strlen(c->base) + strlen(path) + 1;
  char *url = malloc(url_len);
  struct curl_slist *headers = NULL;
  *out = NULL;
  *status = 0;
  c->retry_after_s = 0;
  if (!url || (body && !payload)) {
    result = PQ_ERR_NO_MEMORY;
    goto out;
  }
  snprintf(url, url_len, "%s%s", c->base, path);
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");
  if (c->auth_header) headers = curl_slist_append(headers, c->auth_header);
  CURL *h = c->curl;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
  if (payload) curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
  else if (strcmp(method, "POST") == 0) curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    result = PQ_ERR_UNAVAILABLE;
    goto out;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
    c->retry_after_s = retry_after > 3600 ? 3600 : (long)retry_after;
  if (resp.len) *out = json_loadb(resp.data, resp.len, 0, NULL);
out:
  curl_slist_free_all(headers);
  free(resp.data);
  free(payload);
  free(url);
  return result;
}

long pq_client_retry_after(const pq_client *c) { return c->retry_after_s; }

const char *pq_client_error_text(json_t *response, const char *fallback) {
  const char *msg = json_string_value(json_object_get(json_object_get(response, "error"), "message"));
  return msg ? msg : fallback;
}

/* ---- Server-Sent Events ---- */

static size_t on_sse_data(char *ptr, size_t size, size_t n, void *ud) {
  return pq_sse_feed(ud, ptr, size * n) == 0 ? size * n : 0; /* 0 ends the transfer */
}

pq_err pq_client_sse(pq_client *c, const char *path, const char *last_event_id, pq_sse_fn on_event,
                     void *ctx, long *status) {
  pq_sse_parser p;
  pq_sse_init(&p, on_event, ctx);
  size_t url_len = strlen(c->base) + strlen(path) + 1;
  char *url = malloc(url_len), resume[128];
  if (!url) return PQ_ERR_NO_MEMORY;
  snprintf(url, url_len, "%s%s", c->base, path);
  struct curl_slist *headers = curl_slist_append(NULL, "Accept: text/event-stream");
  if (last_event_id && *last_event_id) {
    snprintf(resume, sizeof resume, "Last-Event-ID: %s", last_event_id);
    headers = curl_slist_append(headers, resume);
  }
  if (c->auth_header) headers = curl_slist_append(headers, c->auth_header);
  CURL *h = c->curl;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sse_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &p);
  /* a stream idle for longer than a few keepalives is dead */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  CURLcode rc = curl_easy_perform(h);
  *status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(headers);
  free(url);
  int stopped = p.stopped;
  pq_sse_free(&p);
  return rc == CURLE_OK || stopped ? PQ_OK : PQ_ERR_UNAVAILABLE;
}
