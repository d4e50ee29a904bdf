/* Document 003's exchange (exchange.c): Bitcoin payment requests and the
 * watcher that credits them. Private to the 003 dialect. */
#ifndef PQ_D003_EXCHANGE_H
#define PQ_D003_EXCHANGE_H

#include "api/api.h"

/* Reads BITCOIN_ADDRESS, BTC_TO_AITBC_RATE, ESPLORA_URL, ESPLORA_POLL_MS,
 * BTC_PAYMENT_TTL_S, BTC_CONFIRMATIONS and BTC_MAX_PENDING. */
void pq_exchange_configure(void);
/* Starts the watcher when an address and an Esplora URL are set; stops it. */
pq_err pq_exchange_start(pq_coord *coord);
void pq_exchange_stop(void);

pq_err pq_exchange_create(pq_req *req);
pq_err pq_exchange_status(pq_req *req);

#endif
