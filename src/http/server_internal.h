#ifndef PQ_HTTP_SERVER_INTERNAL_H
#define PQ_HTTP_SERVER_INTERNAL_H

#include "http/request.h"

void pq__req_arena_free(pq_req *req);

#endif
