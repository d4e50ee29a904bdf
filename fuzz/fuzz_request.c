/* libFuzzer: the whole request path of a real coordinator in this process:
 * libmicrohttpd's parsing, framing checks, routing, credentials (a static
 * key and JWTs), body limits, JSON, every route's validation, each dialect.
 * Each input is sent as the bytes of one connection; the answer must be an
 * HTTP response, and a JSON answer must parse. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/access.h"
#include "auth/auth.h"
#include "base/ids.h"
#include "base/log.h"
#include "engine/coord.h"
#include "http/server.h"

static pq_server *server;
static int port;

/* The key the seed corpus uses (X-Api-Key: fuzz-static-key-000001). */
#define FUZZ_KEY "fuzz-static-key-000001"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  pq_ids_init();
  pq_log_set_level(PQ_LOG_ERROR);
  static char dir[] = "/tmp/pqfuzz-XXXXXX", url[128];
  if (!mkdtemp(dir)) abort();
  snprintf(url, sizeof url, "sqlite://%s/promptq.db", dir);
  static pq_coord_config cc = {.store = {.sync_full = false}, .max_queued_per_owner = 1000};
  cc.store_url = url;
  pq_coord *coord = NULL;
  if (pq_coord_open(&cc, &coord) != PQ_OK) abort();
  char hash[65];
  pq_apikey_hash(FUZZ_KEY, hash);
  const char *hashes[] = {hash}, *prefixes[] = {"fuzz****"};
  pq_op keys = {.kind = PQ_OP_KEYS_SYNC,
                .in.keys_sync = {.name = "API_KEYS", .scope = "service", .hashes = hashes, .prefixes = prefixes, .n = 1}};
  if (pq_coord_call(coord, &keys) != PQ_OK) abort();
  pq_op_release(&keys);
  static const unsigned char secret[] = "fuzz-secret-fuzz-secret-fuzz-secret-0123";
  static pq_access_config ac = {
      .jwt = {.secret = secret, .secret_len = sizeof secret - 1, .issuer = "promptq", .audience = "promptq",
              .ttl_s = 3600, .leeway_s = 30},
      .client = {.limit = 0}, .worker = {.limit = 0}, .login = {.limit = 0}, .user = {.limit = 0},
      .max_streams_per_key = 4, .hash_threads = 1};
  pq_access *access = pq_access_new(&ac, coord);
  static pq_api_settings settings = {.default_model = "echo", .challenge_ttl_ms = 1000};
  static pq_server_config sc = {.host = "127.0.0.1", .threads = 2, .connection_limit = 64, .per_ip_limit = 64,
                                .idle_timeout_s = 1, .header_timeout_ms = 1000, .max_body = 65536,
                                .max_wait_s = 1, .keepalive_ms = 500};
  sc.access = access;
  sc.app = &settings;
  sc.routes = pq_api_routes(&sc.n_routes);
  if (!access || pq_server_start(&sc, coord, &server) != PQ_OK) abort();
  port = pq_server_port(server);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  /* an answer comes in milliseconds; an incomplete request gets none until
   * the server's idle timeout, which the fuzzer need not wait for */
  struct timeval tv = {.tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  /* closed with a reset: tens of thousands of runs must not leave as many
   * client ports in TIME_WAIT (the range runs out and connect fails) */
  struct linger reset = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    /* the machine's ports, spent by others, or libFuzzer's timer signal (SIGALRM) during the
     * connect: not the server's fault */
    if (errno == EADDRNOTAVAIL || errno == EINTR) {
      close(fd);
      return 0;
    }
    fprintf(stderr, "fuzz_request: connect: %s\n", strerror(errno));
    abort(); /* the server stopped accepting */
  }
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += (size_t)n;
  }
  shutdown(fd, SHUT_WR); /* the request is all there is: the server answers, then closes */
  static char reply[1 << 16];
  size_t got = 0;
  ssize_t n;
  while (got < sizeof reply - 1 && (n = recv(fd, reply + got, sizeof reply - 1 - got, 0)) > 0) got += (size_t)n;
  reply[got] = '\0';
  close(fd);
  if (got == 0) return 0; /* no answer (an incomplete request, left to the idle timeout): allowed */
  if (got < 12 || strncmp(reply, "HTTP/1.", 7) != 0) abort(); /* something that is no HTTP answer */
  const char *body = strstr(reply, "\r\n\r\n");
  const char *type = strstr(reply, "Content-Type: application/json");
  const char *length = strstr(reply, "Content-Length: ");
  if (body && type && type < body && length && length < body) {
    size_t len = strtoul(length + 16, NULL, 10);
    body += 4;
    if (len && strlen(body) >= len) {
      json_t *j = json_loadb(body, len, 0, NULL);
      if (!j) abort(); /* promptq's JSON answers always parse */
      json_decref(j);
    }
  }
  return 0;
}
