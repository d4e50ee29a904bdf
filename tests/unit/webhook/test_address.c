/* Where a webhook may go (webhook/address.h): the addresses server-side
 * request forgery aims at are refused, literal or resolved. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "webhook/address.h"

static bool blocked(const char *text) {
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
  if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) return pq_webhook_addr_blocked((struct sockaddr *)&v4);
  assert_int_equal(inet_pton(AF_INET6, text, &v6.sin6_addr), 1);
  return pq_webhook_addr_blocked((struct sockaddr *)&v6);
}

static void private_addresses_are_blocked(void **state) {
  (void)state;
  const char *refused[] = {"127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                           "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1",
                           "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
                           "ff02::1", "2002:7f00:1::", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    if (!blocked(refused[i])) fail_msg("%s is not blocked", refused[i]);
  }
  const char *allowed[] = {"1.1.1.1", "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "198.20.0.1",
                           "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"};
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
    if (blocked(allowed[i])) fail_msg("%s is blocked", allowed[i]);
  }
}

static void urls_are_checked(void **state) {
  (void)state;
  char err[256];
  assert_int_equal(pq_webhook_url_check("https://hooks.example.com/x?y=1", false, err, sizeof err), 0);
  assert_int_equal(pq_webhook_url_check("http://127.0.0.1:9000/hook", false, err, sizeof err), -1);
  assert_non_null(strstr(err, "--webhook-allow-private"));
  assert_int_equal(pq_webhook_url_check("http://127.0.0.1:9000/hook", true, err, sizeof err), 0);
  assert_int_equal(pq_webhook_url_check("http://[::1]/", false, err, sizeof err), -1);
  assert_int_equal(pq_webhook_url_check("http://localhost/", false, err, sizeof err), -1);
  assert_int_equal(pq_webhook_url_check("http://169.254.169.254/latest/meta-data", false, err, sizeof err), -1);
  assert_int_equal(pq_webhook_url_check("ftp://example.com/", true, err, sizeof err), -1);
  assert_non_null(strstr(err, "http or https"));
  assert_int_equal(pq_webhook_url_check("file:///etc/passwd", true, err, sizeof err), -1);
  assert_int_equal(pq_webhook_url_check("https://user:pw@example.com/", true, err, sizeof err), -1);
  assert_int_equal(pq_webhook_url_check("not a url", true, err, sizeof err), -1);
  assert_int_equal(pq_webhook_url_check("", true, err, sizeof err), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(private_addresses_are_blocked),
      cmocka_unit_test(urls_are_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
