/* The API's description and the pages promptq serves: GET /openapi.json,
 * Swagger UI (/docs), ReDoc (/redoc), the dashboard (/, /dashboard) and the
 * files they load (/assets/NAME). Each is also served under /api/, where
 * document 003 shows them. Our own pages are built into the binary; the
 * viewers and the chart library come from npm (web/node_modules, installed
 * by scripts/bootstrap) and are read from --web-assets: nothing is fetched
 * from elsewhere at run time. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/openapi.h"
#include "base/embedded.h"
#include "base/log.h"

extern const pq_embedded_file pq__web_files[];
extern const size_t pq__web_files_count;

#define HTML "text/html; charset=utf-8"
#define JS "text/javascript; charset=utf-8"
#define CSS "text/css; charset=utf-8"

/* What /assets/NAME may name: our files (built in) and the npm packages'
 * (below --web-assets). Nothing else is reachable: no path from the URL
 * is ever joined to a folder. */
static const struct {
  const char *name, *type;
  const char *embedded; /* under web/ */
  const char *package;  /* under --web-assets */
} assets[] = {
    {"dashboard.js", JS, "dashboard/dashboard.js", NULL},
    {"dashboard.css", CSS, "dashboard/dashboard.css", NULL},
    {"swagger-init.js", JS, "docs/swagger-init.js", NULL},
    {"redoc-init.js", JS, "docs/redoc-init.js", NULL},
    {"swagger-ui.css", CSS, NULL, "swagger-ui-dist/swagger-ui.css"},
    {"swagger-ui-bundle.js", JS, NULL, "swagger-ui-dist/swagger-ui-bundle.js"},
    {"redoc.standalone.js", JS, NULL, "redoc/bundles/redoc.standalone.js"},
    {"uPlot.iife.min.js", JS, NULL, "uplot/dist/uPlot.iife.min.js"},
    {"uPlot.min.css", CSS, NULL, "uplot/dist/uPlot.min.css"},
};

static const pq_embedded_file *embedded(const char *path) {
  for (size_t i = 0; i < pq__web_files_count; i++)
    if (strcmp(pq__web_files[i].path, path) == 0) return &pq__web_files[i];
  return NULL;
}

static pq_err reply_embedded(pq_req *req, const char *path, const char *type) {
  const pq_embedded_file *f = embedded(path);
  if (!f) return pq_req_fail(req, PQ_ERR_INTERNAL, NULL, "%s is missing from this build", path);
  return pq_req_reply_static(req, 200, type, f->data, f->size);
}

/* The npm files, read once and kept (they are a few MB, the same for every
 * request, and the public routes are not rate limited): a file that could
 * not be read is tried again on the next request. */
typedef struct {
  char *data;
  size_t size;
} cached_file;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cached_file cache[sizeof assets / sizeof assets[0]]; /* by the asset's place in the table */

static char *read_whole(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    return NULL;
  }
  char *data = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (data && got < (size_t)st.st_size) {
    ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (data && got != (size_t)st.st_size) {
    free(data);
    return NULL;
  }
  *size = got;
  return data;
}

static pq_err reply_package_file(pq_req *req, size_t i, const char *relative, const char *type) {
  pthread_mutex_lock(&cache_mu);
  if (!cache[i].data) {
    const char *root = pq_api_settings_of(req)->web_assets;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root && *root ? root : ".", relative);
    if (!(cache[i].data = read_whole(path, &cache[i].size)))
      pq_warn("web assets: cannot read %s (run scripts/bootstrap, or point --web-assets at web/node_modules)", path);
  }
  const cached_file f = cache[i];
  pthread_mutex_unlock(&cache_mu);
  if (!f.data) /* the path stays in the log: callers need not learn the server's folders */
    return pq_req_fail(req, PQ_ERR_UNAVAILABLE, json_pack("{s:s}", "asset", relative),
                       "%s is not installed: run scripts/bootstrap (it installs web/node_modules from npm) "
                       "or point --web-assets at it", relative);
  return pq_req_reply_static(req, 200, type, f.data, f.size);
}

pq_err pq_api_asset(pq_req *req) {
  const char *name = pq_req_param(req, "name");
  for (size_t i = 0; name && i < sizeof assets / sizeof assets[0]; i++) {
    if (strcmp(assets[i].name, name) != 0) continue;
    if (assets[i].embedded) return reply_embedded(req, assets[i].embedded, assets[i].type);
    return reply_package_file(req, i, assets[i].package, assets[i].type);
  }
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, NULL, "no asset named %s", name ? name : "");
}

static char *openapi_text;

static void render_openapi(void) { openapi_text = json_dumps(pq_api_openapi(), JSON_COMPACT); }

pq_err pq_api_openapi_json(pq_req *req) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, render_openapi); /* the document never changes while the program runs */
  if (!openapi_text) return PQ_ERR_NO_MEMORY;
  return pq_req_reply_static(req, 200, "application/json", openapi_text, strlen(openapi_text));
}

pq_err pq_api_swagger_page(pq_req *req) { return reply_embedded(req, "docs/swagger.html", HTML); }
pq_err pq_api_redoc_page(pq_req *req) { return reply_embedded(req, "docs/redoc.html", HTML); }
pq_err pq_api_dashboard_page(pq_req *req) { return reply_embedded(req, "dashboard/index.html", HTML); }
