/* Where a webhook may be sent (webhook/address.h). */
#include "webhook/address.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 2048

static bool v4_blocked(uint32_t a) { /* host order */
  return (a >> 24) == 0 ||              /* 0.0.0.0/8 "this network" */
         (a >> 24) == 10 ||             /* private */
         (a >> 24) == 127 ||            /* loopback */
         (a >> 22) == (100u << 2 | 1) || /* 100.64.0.0/10 shared (carrier NAT) */
         (a >> 16) == (169u << 8 | 254) || /* link-local, cloud metadata */
         (a >> 20) == (172u << 4 | 1) || /* 172.16.0.0/12 private */
         (a >> 16) == (192u << 8 | 168) || /* private */
         (a >> 8) == (192u << 16 | 0 << 8 | 0) || /* 192.0.0.0/24 protocol assignments */
         (a >> 17) == (198u << 7 | 9) || /* 198.18.0.0/15 benchmarking */
         (a >> 28) >= 14;               /* 224/4 multicast, 240/4 reserved, broadcast */
}

bool pq_webhook_addr_blocked(const struct sockaddr *addr) {
  if (addr->sa_family == AF_INET) return v4_blocked(ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr));
  if (addr->sa_family != AF_INET6) return true; /* nothing else is an internet address */
  const uint8_t *b = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
  static const uint8_t zeros[16];
  if (memcmp(b, zeros, 15) == 0 && (b[15] == 0 || b[15] == 1)) return true; /* :: and ::1 */
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(b, mapped, 12) == 0 || memcmp(b, zeros, 12) == 0) /* IPv4-mapped and -compatible */
    return v4_blocked((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
  if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) /* 64:ff9b::/96 NAT64 of an IPv4 address */
    return v4_blocked((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
  if (b[0] == 0x20 && b[1] == 0x02) /* 2002::/16 6to4: the IPv4 address it tunnels to */
    return v4_blocked((uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 | (uint32_t)b[4] << 8 | b[5]);
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) return true; /* 2001::/32 Teredo: a tunnel to anywhere */
  return (b[0] & 0xfe) == 0xfc ||               /* fc00::/7 unique local */
         (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
         (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 site-local (old) */
         b[0] == 0xff ||                           /* multicast */
         (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8); /* documentation */
}

/* A host that is an address itself (or localhost): blocked? */
static bool literal_blocked(const char *host) {
  if (strcasecmp(host, "localhost") == 0 || (strlen(host) > 10 && strcasecmp(host + strlen(host) - 10, ".localhost") == 0))
    return true;
  char bare[64];
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof bare) { /* curl keeps IPv6 brackets */
    memcpy(bare, host + 1, n - 2);
    bare[n - 2] = '\0';
    host = bare;
  }
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
  if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) return pq_webhook_addr_blocked((struct sockaddr *)&v4);
  if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) return pq_webhook_addr_blocked((struct sockaddr *)&v6);
  return false; /* a name: the sender checks where it resolves */
}

int pq_webhook_url_check(const char *url, bool allow_private, char *err, size_t err_len) {
  if (!url || !*url || strlen(url) > URL_MAX) {
    snprintf(err, err_len, "a webhook URL must be 1 to %d characters", URL_MAX);
    return -1;
  }
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *user = NULL;
  int result = -1;
  if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    snprintf(err, err_len, "'%.200s' is not an absolute URL", url);
  } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
    snprintf(err, err_len, "a webhook URL must be http or https, not %s", scheme);
  } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
    snprintf(err, err_len, "a webhook URL must not carry a user name or password");
  } else if (!allow_private && literal_blocked(host)) {
    snprintf(err, err_len,
             "a webhook to %s is refused: it is a loopback, private or link-local address (the operator may allow "
             "them with --webhook-allow-private)",
             host);
  } else {
    result = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_url_cleanup(u);
  return result;
}
