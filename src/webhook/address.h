/* Where a webhook may be sent: the guard against server-side request
 * forgery. A promptq coordinator usually sits inside a private network, so
 * a URL a user names must not reach loopback, link-local (cloud metadata at
 * 169.254.169.254), private, shared (100.64/10), multicast or reserved
 * addresses unless the operator allows them (--webhook-allow-private).
 *
 * The check runs twice: on the URL when it is named (a literal address, or
 * "localhost", is refused at once with a clear error), and on every address
 * the sender actually connects to (a name that resolves to a private
 * address, or starts to, is refused then: no DNS trick gets around it).
 * Stateless; thread-safe. */
#ifndef PQ_WEBHOOK_ADDRESS_H
#define PQ_WEBHOOK_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Is this address one a webhook must not reach (unless allowed)? */
bool pq_webhook_addr_blocked(const struct sockaddr *addr);
/* Checks a webhook URL: http or https, a host, at most 2048 characters, no
 * user:password, and (unless allow_private) no host that names a blocked
 * address itself. Returns 0, or -1 with the reason in err. */
int pq_webhook_url_check(const char *url, bool allow_private, char *err, size_t err_len);

#endif
