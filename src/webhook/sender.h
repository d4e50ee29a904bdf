/* The webhook sender: one thread that works through the coordinator's due
 * deliveries (engine/ops_webhooks.c) with libcurl's multi interface, so
 * that up to `concurrency` receivers are waited on at once, at most
 * `per_host` of them on one receiving host and `per_owner` for one owner: a
 * slow receiver holds up only its own deliveries, and one tenant cannot take
 * every slot.
 *
 * Each request carries the Standard Webhooks headers (webhook-id,
 * webhook-timestamp, webhook-signature), has a bounded time
 * (timeout_ms), follows no redirect, uses no proxy from the environment,
 * reads at most 4 KiB of the answer, and connects only to addresses
 * webhook/address.h allows (all, with allow_private). What happened goes
 * back to the writer as PQ_OP_DELIVERY_RESULT: the engine decides on
 * retries.
 *
 * The sender borrows the coordinator, which must outlive it. */
#ifndef PQ_WEBHOOK_SENDER_H
#define PQ_WEBHOOK_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/coord.h"

typedef struct pq_webhook_sender pq_webhook_sender;

typedef struct pq_webhook_sender_config {
  bool allow_private;  /* loopback, private and link-local receivers too */
  int64_t timeout_ms;  /* per request, connection included (0: 10 s) */
  int concurrency;     /* requests in flight at most (0: 16) */
  int per_owner;       /* of them, for one owner at most (0: half of concurrency, at least 1) */
  int per_host;        /* and to one receiver, one URL (0: a quarter of concurrency, at least 1) */
} pq_webhook_sender_config;

pq_err pq_webhook_sender_start(pq_coord *c, const pq_webhook_sender_config *cfg, pq_webhook_sender **out);
/* Stops taking deliveries, ends those in flight (they are claimed again later), joins. NULL is fine. */
void pq_webhook_sender_stop(pq_webhook_sender *s);

#endif
