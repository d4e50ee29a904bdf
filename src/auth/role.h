/* Who may call a route: a role each route names, checked by access control
 * (auth/access.h) and carried by the route table (http/router.h). */
#ifndef PQ_AUTH_ROLE_H
#define PQ_AUTH_ROLE_H

typedef enum { PQ_ROLE_PUBLIC, PQ_ROLE_CLIENT, PQ_ROLE_WORKER, PQ_ROLE_ADMIN } pq_role;

#endif
