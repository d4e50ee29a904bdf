/* OpenAI's Files and Batch APIs. A file is a row of the store (JSONL text,
 * the owner's only). A batch is a job of kind "batch" whose requests, one
 * per line of its input file, are queued with it as its steps: ordinary
 * low-priority jobs, each leased, retried, receipted and priced (at the
 * batch price) like any other, so a restart loses nothing. Its output and
 * error files are written from its requests, in OpenAI's JSONL, the first
 * time the batch is read after they have all ended (status "finalizing"
 * until then). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai/internal.h"
#include "base/clock.h"
#include "base/ids.h"
#include "base/utf8.h"
#include "http/json_in.h"
#include "http/multipart.h"

#define MAX_FILE_BYTES (200LL * 1024 * 1024)
#define MAX_LINES 50000
#define MAX_ERRORS 100          /* a file that does not validate: the first ones */
#define BATCH_PRIORITY (-100)   /* below interactive work */
#define WINDOW_S (24 * 3600)
#define CHILD_PAGE 500
#define PREFIX "batch_"

/* ---- files ---- */

static json_t *file_json(const pq_file *f) {
  return json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:n,s:n}", "id", f->id, "object", "file", "bytes", (json_int_t)f->bytes,
                   "created_at", (json_int_t)(f->created_at / 1000), "filename", f->filename, "purpose", f->purpose,
                   "status", "processed", "status_details", "expires_at");
}

static pq_err no_such_file(pq_req *req, const char *id, const char *param) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s}", "field", param, "code", "not_found"),
                     "No such File object: %s", id ? id : "");
}

/* The caller's file (an admin's: anyone's), else 404 naming param. */
static pq_err their_file(pq_req *req, const char *id, bool content, const char *param, pq_file **out) {
  *out = NULL;
  pq_err e = id ? pq_coord_file_get(req->coord, id, content, out) : PQ_ERR_NOT_FOUND;
  const char *owner = pq_api_owner(req);
  if (e == PQ_OK && owner && strcmp((*out)->owner, owner) != 0) e = PQ_ERR_NOT_FOUND;
  if (e == PQ_ERR_NOT_FOUND) {
    pq_file_free(*out);
    *out = NULL;
    return no_such_file(req, id, param);
  }
  return e;
}

/* Well-formed UTF-8 without NUL: what a store's text column holds. */
static bool utf8_text(const char *s, size_t n) {
  for (size_t i = 0, len; i < n; i += len)
    if (s[i] == '\0' || !(len = pq_utf8_sequence((const unsigned char *)s + i, n - i))) return false;
  return true;
}

/* Each line of a batch file, in turn (empty lines skipped): fn returns non-zero to stop. */
static int each_line(const char *text, size_t n, int (*fn)(void *ctx, const char *line, size_t len, size_t no),
                     void *ctx) {
  size_t no = 0;
  for (const char *p = text, *end = text + n; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
    no++;
    size_t trimmed = len && p[len - 1] == '\r' ? len - 1 : len;
    if (trimmed) {
      int rc = fn(ctx, p, trimmed, no);
      if (rc) return rc;
    }
    p += len + 1;
  }
  return 0;
}

typedef struct {
  size_t lines;
  size_t bad_line;
} jsonl_check;

static int check_line(void *ctx, const char *line, size_t len, size_t no) {
  jsonl_check *c = ctx;
  json_t *v = json_loadb(line, len, 0, NULL);
  bool ok = json_is_object(v);
  json_decref(v);
  if (!ok) {
    c->bad_line = no;
    return 1;
  }
  return ++c->lines > MAX_LINES;
}

static pq_err file_stored(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, file_json(req->op.in.file_put.file));
}

pq_err pq__oa_files_create(pq_req *req) {
  pq_form_part parts[8];
  size_t n = 0;
  pq_err e = pq_req_form(req, parts, 8, &n);
  if (e != PQ_OK) return e;
  const pq_form_part *purpose = pq_form_find(parts, n, "purpose"), *file = pq_form_find(parts, n, "file");
  if (!purpose) return pq__oa_bad_param(req, "purpose", "invalid_request", "'purpose' is required");
  if (purpose->len != 5 || memcmp(purpose->data, "batch", 5) != 0)
    return pq__oa_bad_param(req, "purpose", "invalid_request", "'purpose' must be batch: files here feed batches");
  if (!file || !file->filename) return pq__oa_bad_param(req, "file", "invalid_request", "'file' (a file part) is required");
  if ((int64_t)file->len > MAX_FILE_BYTES)
    return pq_req_fail(req, PQ_ERR_PAYLOAD_TOO_LARGE, json_pack("{s:s,s:s}", "field", "file", "code", "file_too_large"),
                       "the file is %zu bytes; a batch file may hold at most %lld (200 MB)", file->len,
                       (long long)MAX_FILE_BYTES);
  if (!utf8_text(file->data, file->len))
    return pq__oa_bad_param(req, "file", "invalid_file_format", "a batch file must be UTF-8 text (JSONL)");
  jsonl_check c = {0};
  each_line(file->data, file->len, check_line, &c);
  if (c.bad_line)
    return pq__oa_bad_param(req, "file", "invalid_file_format",
                            "line %zu is not a JSON object: a batch file holds one request object per line", c.bad_line);
  if (c.lines > MAX_LINES)
    return pq__oa_bad_param(req, "file", "too_many_lines", "a batch file may hold at most %d requests", MAX_LINES);
  if (c.lines == 0) return pq__oa_bad_param(req, "file", "invalid_file_format", "the file holds no requests");
  char uuid[PQ_UUID_LEN + 1];
  pq_uuid7(pq_now_ms(), uuid);
  pq_file *f = pq_req_alloc(req, sizeof *f);
  char *id = pq_req_alloc(req, PQ_UUID_LEN + 8);
  if (!f || !id || !(f->content = pq_req_strndup(req, file->data, file->len))) return PQ_ERR_NO_MEMORY;
  snprintf(id, PQ_UUID_LEN + 8, "file-%s", uuid);
  f->id = id;
  f->owner = (char *)pq_api_owner(req);
  if (!f->owner) f->owner = "";
  f->purpose = "batch";
  f->filename = (char *)file->filename;
  f->bytes = (int64_t)file->len;
  req->op.kind = PQ_OP_FILE_PUT;
  req->op.in.file_put.file = f;
  pq_req_run_op(req, file_stored);
  return PQ_OK;
}

pq_err pq__oa_files_list(pq_req *req) {
  const char *purpose = pq_req_query(req, "purpose"), *after = pq_req_query(req, "after");
  const char *order = pq_req_query(req, "order"), *limit_text = pq_req_query(req, "limit");
  long limit = limit_text ? strtol(limit_text, NULL, 10) : 10000;
  if (limit < 1 || limit > 10000) return pq__oa_bad_param(req, "limit", "invalid_request", "'limit' must be from 1 to 10000");
  pq_file **files = NULL;
  size_t n = 0;
  pq_err e = pq_coord_file_list(req->coord, pq_api_owner(req), purpose, 10001, &files, &n);
  if (e != PQ_OK) return e;
  bool asc = order && strcmp(order, "asc") == 0, started = !after;
  json_t *data = json_array();
  for (size_t k = 0; k < n && (long)json_array_size(data) <= limit; k++) {
    pq_file *f = files[asc ? n - 1 - k : k];
    if (started) json_array_append_new(data, file_json(f));
    else started = strcmp(f->id, after) == 0;
  }
  pq_file_free_array(files, n);
  e = pq__oa_reply_page(req, data, limit);
  json_decref(data);
  return e;
}

pq_err pq__oa_files_get(pq_req *req) {
  pq_file *f = NULL;
  pq_err e = their_file(req, pq_req_param(req, "id"), false, "file_id", &f);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, file_json(f));
  pq_file_free(f);
  return e;
}

pq_err pq__oa_files_content(pq_req *req) {
  pq_file *f = NULL;
  pq_err e = their_file(req, pq_req_param(req, "id"), true, "file_id", &f);
  if (e != PQ_OK) return e;
  e = pq_req_reply_text(req, 200, "application/octet-stream", f->content);
  f->content = NULL; /* the reply's now */
  pq_file_free(f);
  return e;
}

static pq_err file_deleted(pq_req *req) {
  const char *id = pq_req_param(req, "id");
  if (req->op.out.result == PQ_ERR_NOT_FOUND) return no_such_file(req, id, "file_id");
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "file", "deleted", 1));
}

pq_err pq__oa_files_delete(pq_req *req) {
  pq_file *f = NULL;
  const char *id = pq_req_param(req, "id");
  pq_err e = their_file(req, id, false, "file_id", &f);
  pq_file_free(f);
  if (e != PQ_OK) return e;
  req->op.kind = PQ_OP_FILE_DELETE;
  req->op.in.file_delete.id = id;
  pq_req_run_op(req, file_deleted);
  return PQ_OK;
}

/* ---- creating a batch ---- */

typedef struct {
  pq_req *req;
  const char *endpoint;
  json_t *errors, *custom_ids, *rejected, *seen;
  pq_job **steps;
  size_t n_steps, cap_steps;
  pq_err fatal;
} batch_build;

static void line_error(batch_build *b, size_t no, const char *code, const char *message) {
  if (json_array_size(b->errors) < MAX_ERRORS)
    json_array_append_new(b->errors, json_pack("{s:s,s:s,s:I,s:n}", "code", code, "message", message, "line",
                                               (json_int_t)no, "param"));
}

/* The error the request recorded, in OpenAI's shape, as one refused request. */
static void refuse(batch_build *b, const char *custom_id) {
  pq_req *req = b->req;
  int status = pq_err_http_status(req->error);
  json_t *err = pq__oa_error(req, req->error, req->error_message ? req->error_message : pq_err_message(req->error),
                             req->error_details, &status);
  json_array_append_new(b->rejected, json_pack("{s:s,s:i,s:o}", "custom_id", custom_id, "status_code", status, "body", err));
  pq_req_clear_error(req);
}

static pq_err native_of(pq_req *req, const char *endpoint, json_t *body, json_t **native) {
  if (strcmp(endpoint, "/v1/chat/completions") == 0) return pq__oa_chat_native(req, body, false, native);
  if (strcmp(endpoint, "/v1/completions") == 0) return pq__oa_chat_native(req, body, true, native);
  if (strcmp(endpoint, "/v1/embeddings") == 0) {
    const char *format = json_string_value(json_object_get(body, "encoding_format"));
    if (format && strcmp(format, "float") != 0) /* the output file holds the floats */
      return pq__oa_bad_param(req, "encoding_format", "unsupported_parameter",
                              "'encoding_format' %s is not supported in a batch (its output holds floats)", format);
    return pq__oa_embeddings_native(req, body, native);
  }
  return pq__oa_response_native(req, body, native);
}

static int take_line(void *ctx, const char *line, size_t len, size_t no) {
  batch_build *b = ctx;
  if (no > MAX_LINES * 2 || json_array_size(b->custom_ids) + json_array_size(b->rejected) >= MAX_LINES) {
    line_error(b, no, "too_many_lines", "a batch may hold at most 50000 requests");
    return 1;
  }
  json_t *v = json_loadb(line, len, 0, NULL);
  const char *custom_id = json_string_value(json_object_get(v, "custom_id"));
  const char *method = json_string_value(json_object_get(v, "method"));
  const char *url = json_string_value(json_object_get(v, "url"));
  json_t *body = json_object_get(v, "body");
  char message[160];
  if (!json_is_object(v)) line_error(b, no, "invalid_json_line", "the line is not a JSON object");
  else if (!custom_id || !*custom_id || strlen(custom_id) > 512)
    line_error(b, no, "missing_custom_id", "'custom_id' must be a string of 1 to 512 characters");
  else if (json_object_get(b->seen, custom_id)) {
    snprintf(message, sizeof message, "the custom_id '%.64s' is used by an earlier line", custom_id);
    line_error(b, no, "duplicate_custom_id", message);
  } else if (!method || strcmp(method, "POST") != 0)
    line_error(b, no, "invalid_method", "'method' must be POST");
  else if (!url || strcmp(url, b->endpoint) != 0) {
    snprintf(message, sizeof message, "'url' must be the batch's endpoint, %s", b->endpoint);
    line_error(b, no, "mismatched_endpoint", message);
  } else if (!json_is_object(body))
    line_error(b, no, "invalid_body", "'body' must be an object");
  if (json_array_size(b->errors) || !json_is_object(body) || !custom_id) { /* nothing is queued from a bad file */
    json_decref(v);
    return 0;
  }
  json_object_set_new(b->seen, custom_id, json_true());
  json_t *native = NULL;
  pq_job *job = NULL;
  pq_err e = native_of(b->req, b->endpoint, body, &native);
  if (e == PQ_OK) json_object_set_new(native, "priority", json_integer(BATCH_PRIORITY));
  if (e == PQ_OK) e = pq_api_parse_submit_keyed(b->req, native, NULL, &job); /* the batch's key is the batch's */
  json_decref(native);
  if (e == PQ_ERR_NO_MEMORY) {
    b->fatal = e;
    json_decref(v);
    return 1;
  }
  if (e != PQ_OK) {
    refuse(b, custom_id);
  } else {
    if (b->n_steps == b->cap_steps) {
      size_t cap = b->cap_steps ? b->cap_steps * 2 : 64;
      pq_job **grown = realloc(b->steps, cap * sizeof *grown);
      if (!grown) {
        pq_job_free(job);
        b->fatal = PQ_ERR_NO_MEMORY;
        json_decref(v);
        return 1;
      }
      b->steps = grown;
      b->cap_steps = cap;
    }
    b->steps[b->n_steps++] = job;
    json_array_append_new(b->custom_ids, json_string(custom_id));
  }
  json_decref(v);
  return 0;
}

static json_t *batch_json(const pq_job *job, bool files_ready);

static pq_err batch_created(pq_req *req) {
  if (req->op.out.result != PQ_OK) return req->op.out.result;
  return pq_req_reply(req, 200, batch_json(req->op.out.job, false));
}

pq_err pq__oa_batches_create(pq_req *req) {
  static const char *const fields[] = {"input_file_id", "endpoint", "completion_window", "metadata", NULL};
  json_t *body = req->body;
  const char *file_id = NULL, *endpoint = NULL, *window = NULL;
  pq_err e;
  if ((e = pq__oa_only(req, body, fields, NULL)) || (e = pq_json_string(req, body, "input_file_id", true, 128, &file_id)) ||
      (e = pq_json_string(req, body, "endpoint", true, 64, &endpoint)) ||
      (e = pq_json_string(req, body, "completion_window", true, 16, &window)))
    return e;
  bool known = false;
  for (int i = 0; pq_batch_endpoints[i]; i++) known |= strcmp(pq_batch_endpoints[i], endpoint) == 0;
  if (!known)
    return pq__oa_bad_param(req, "endpoint", "invalid_request",
                            "'endpoint' must be /v1/chat/completions, /v1/embeddings, /v1/responses or /v1/completions");
  if (strcmp(window, "24h") != 0)
    return pq__oa_bad_param(req, "completion_window", "invalid_request", "'completion_window' must be 24h");
  pq_file *file = NULL;
  if ((e = their_file(req, file_id, true, "input_file_id", &file))) return e;
  if (strcmp(file->purpose, "batch") != 0) {
    e = pq__oa_bad_param(req, "input_file_id", "invalid_request", "the file's purpose is %s, not batch", file->purpose);
    pq_file_free(file);
    return e;
  }
  batch_build b = {.req = req, .endpoint = endpoint, .errors = json_array(), .custom_ids = json_array(),
                   .rejected = json_array(), .seen = json_object()};
  each_line(file->content, (size_t)file->bytes, take_line, &b);
  pq_file_free(file);
  json_t *native = NULL;
  e = b.fatal;
  if (e == PQ_OK && json_array_size(b.errors)) { /* it fails as a whole, with the reasons */
    pq_job_free_array(b.steps, b.n_steps);
    b.steps = NULL;
    b.n_steps = 0;
    json_array_clear(b.custom_ids);
    json_array_clear(b.rejected);
  }
  if (e == PQ_OK) {
    native = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O}", "kind", "batch", "input_file_id", file_id, "endpoint", endpoint,
                       "completion_window", window, "errors", b.errors, "custom_ids", b.custom_ids, "rejected",
                       b.rejected);
    json_t *metadata = json_object_get(body, "metadata");
    if (native && metadata && !json_is_null(metadata)) json_object_set(native, "metadata", metadata);
    pq_api_webhook_from_metadata(metadata, native);
    if (!native) e = PQ_ERR_NO_MEMORY;
  }
  if (e == PQ_OK) {
    e = pq_api_submit_with_steps(req, native, b.steps, b.n_steps, batch_created);
    b.steps = NULL;
    b.n_steps = 0;
  }
  pq_job_free_array(b.steps, b.n_steps);
  json_decref(native);
  json_decref(b.errors);
  json_decref(b.custom_ids);
  json_decref(b.rejected);
  json_decref(b.seen);
  return e;
}

/* ---- the batch object ---- */

static json_t *when(int64_t ms) { return ms ? json_integer(ms / 1000) : json_null(); }

static void file_ids(const pq_job *job, char out_id[64], char err_id[64]) {
  snprintf(out_id, 64, "file-%s-output", job->id);
  snprintf(err_id, 64, "file-%s-errors", job->id);
}

/* The requests' counts: the batch's own, and the refused ones as failed. */
static void counts(const pq_job *job, json_t *input, json_int_t *total, json_int_t *completed, json_int_t *failed,
                   bool *all_ended) {
  json_t *st = job->output ? json_loads(job->output, 0, NULL) : NULL;
  json_int_t rejected = (json_int_t)json_array_size(json_object_get(input, "rejected"));
  json_int_t steps = json_integer_value(json_object_get(st, "total"));
  *completed = json_integer_value(json_object_get(st, "completed"));
  *failed = json_integer_value(json_object_get(st, "failed")) + rejected;
  *total = steps + rejected;
  *all_ended = *completed + *failed >= *total;
  json_decref(st);
}

static json_t *batch_json(const pq_job *job, bool files_ready) {
  json_t *input = json_loads(job->input, 0, NULL);
  json_int_t total, completed, failed;
  bool all_ended;
  counts(job, input, &total, &completed, &failed, &all_ended);
  bool invalid = json_array_size(json_object_get(input, "errors")) > 0;
  const char *status;
  int64_t done = job->finished_at;
  json_t *ts = json_object();
  switch (job->state) {
    case PQ_JOB_QUEUED: status = "validating"; break;
    case PQ_JOB_LEASED: status = "in_progress"; break;
    case PQ_JOB_COMPLETED:
      status = files_ready ? "completed" : "finalizing";
      json_object_set_new(ts, "finalizing_at", when(done));
      if (files_ready) json_object_set_new(ts, "completed_at", when(done));
      break;
    case PQ_JOB_CANCELLED:
      status = files_ready ? "cancelled" : "cancelling";
      json_object_set_new(ts, "cancelling_at", when(done));
      if (files_ready) json_object_set_new(ts, "cancelled_at", when(done));
      break;
    default:
      if (invalid || !job->error_code || strcmp(job->error_code, "TIMEOUT") != 0) {
        status = "failed";
        json_object_set_new(ts, "failed_at", when(done));
      } else {
        status = "expired";
        json_object_set_new(ts, "expired_at", when(done));
      }
  }
  char out_id[64], err_id[64];
  file_ids(job, out_id, err_id);
  json_t *errors = invalid ? json_pack("{s:s,s:O}", "object", "list", "data", json_object_get(input, "errors")) : json_null();
  char id[64];
  snprintf(id, sizeof id, PREFIX "%s", job->id);
  json_t *b = json_pack("{s:s,s:s,s:O,s:o,s:O,s:s,s:s,s:n,s:n,s:I,s:o,s:I,s:{s:I,s:I,s:I},s:O}", "id", id, "object",
                        "batch", "endpoint", json_object_get(input, "endpoint"), "errors", errors, "input_file_id",
                        json_object_get(input, "input_file_id"), "completion_window", "24h", "status", status,
                        "output_file_id", "error_file_id", "created_at", (json_int_t)(job->created_at / 1000),
                        "in_progress_at", when(job->leased_at), "expires_at",
                        (json_int_t)(job->created_at / 1000 + WINDOW_S), "request_counts", "total", total, "completed",
                        completed, "failed", failed, "metadata",
                        json_object_get(input, "metadata") ? json_object_get(input, "metadata") : json_null());
  static const char *const stamps[] = {"finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
                                       "cancelled_at", NULL};
  for (int i = 0; stamps[i]; i++)
    json_object_set_new(b, stamps[i], json_object_get(ts, stamps[i]) ? json_incref(json_object_get(ts, stamps[i]))
                                                                     : json_null());
  if (files_ready) {
    json_object_set_new(b, "output_file_id", json_string(out_id));
    if (failed) json_object_set_new(b, "error_file_id", json_string(err_id));
  }
  json_decref(ts);
  json_decref(input);
  return b;
}

/* ---- its output and error files ---- */

typedef struct {
  pq_file out, err;
  bool has_errors;
} finishing;

static int add_line(pq_buf *to, json_t *line) {
  char *text = json_dumps(line, JSON_COMPACT);
  json_decref(line);
  int rc = !text || pq_buf_add(to, text, strlen(text)) || pq_buf_add(to, "\n", 1);
  free(text);
  return rc ? -1 : 0;
}

static json_t *body_of(const char *endpoint, const pq_job *child) {
  if (strcmp(endpoint, "/v1/chat/completions") == 0) return pq__oa_chat_body(child, false);
  if (strcmp(endpoint, "/v1/completions") == 0) return pq__oa_chat_body(child, true);
  if (strcmp(endpoint, "/v1/embeddings") == 0) return pq__oa_embeddings_body(child, NULL);
  return pq__oa_response_body(child);
}

#define MAX_OUTPUT_BYTES (512LL * 1024 * 1024) /* an output file a store row can hold */

/* One request's line: its answer, or its error (a request that never ran ends as its batch did). */
static pq_err request_line(pq_req *req, const pq_job *batch, const char *endpoint, const char *custom_id,
                           const pq_job *child, pq_buf *out, pq_buf *err) {
  char id[64];
  snprintf(id, sizeof id, "batch_req_%s", child->id);
  if (child->state == PQ_JOB_COMPLETED || (child->state == PQ_JOB_CANCELLED && child->output)) { /* delivered */
    if ((int64_t)(out->len + (child->output ? strlen(child->output) : 0)) > MAX_OUTPUT_BYTES)
      return add_line(err, json_pack("{s:s,s:s,s:n,s:{s:s,s:s}}", "id", id, "custom_id", custom_id, "response", "error",
                                     "code", "output_too_large", "message",
                                     "The batch's output file is full (512 MB); this answer is in its request's job."));
    json_t *body = body_of(endpoint, child);
    return add_line(out, json_pack("{s:s,s:s,s:{s:i,s:s,s:o},s:n}", "id", id, "custom_id", custom_id, "response",
                                   "status_code", 200, "request_id", child->id, "body", body ? body : json_object(),
                                   "error"));
  }
  if (child->state == PQ_JOB_CANCELLED && child->attempts == 0) { /* never ran */
    bool expired = batch->state == PQ_JOB_FAILED;
    return add_line(err, json_pack("{s:s,s:s,s:n,s:{s:s,s:s}}", "id", id, "custom_id", custom_id, "response", "error",
                                   "code", expired ? "batch_expired" : "batch_cancelled", "message",
                                   expired ? "This request could not be executed before the completion window expired."
                                           : "The batch was cancelled before this request ran."));
  }
  pq__oa_job_failed(req, child); /* its error, worded as the door words it */
  int status = pq_err_http_status(req->error);
  json_t *body = pq__oa_error(req, req->error, req->error_message ? req->error_message : "failed", req->error_details,
                              &status);
  pq_req_clear_error(req);
  return add_line(err, json_pack("{s:s,s:s,s:{s:i,s:s,s:o},s:n}", "id", id, "custom_id", custom_id, "response",
                                 "status_code", status, "request_id", child->id, "body", body, "error"));
}

static pq_err write_files(pq_req *req, const pq_job *batch, finishing *f) {
  char *owner = pq_req_strndup(req, batch->owner ? batch->owner : "", strlen(batch->owner ? batch->owner : ""));
  if (!owner) return PQ_ERR_NO_MEMORY;
  json_t *input = json_loads(batch->input, 0, NULL);
  const char *endpoint = json_string_value(json_object_get(input, "endpoint"));
  json_t *ids = json_object_get(input, "custom_ids");
  pq_buf out = {0}, err = {0};
  pq_err e = PQ_OK;
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(input, "rejected"), i, r) {
    char id[80];
    snprintf(id, sizeof id, "batch_req_%s_refused_%zu", batch->id, i);
    if (add_line(&err, json_pack("{s:s,s:O,s:{s:O,s:n,s:O},s:n}", "id", id, "custom_id", json_object_get(r, "custom_id"),
                                 "response", "status_code", json_object_get(r, "status_code"), "request_id", "body",
                                 json_object_get(r, "body"), "error")))
      e = PQ_ERR_NO_MEMORY;
  }
  int64_t after = 0;
  size_t at = 0;
  while (e == PQ_OK) {
    pq_job **steps = NULL;
    size_t n = 0;
    if ((e = pq_coord_job_children(req->coord, batch->id, after, CHILD_PAGE, &steps, &n)) != PQ_OK) break;
    for (size_t k = 0; e == PQ_OK && k < n; k++, at++) {
      const char *custom_id = json_string_value(json_array_get(ids, at));
      e = request_line(req, batch, endpoint, custom_id ? custom_id : "", steps[k], &out, &err);
      after = steps[k]->number;
    }
    pq_job_free_array(steps, n);
    if (n < CHILD_PAGE) break;
  }
  json_decref(input);
  if (e == PQ_OK) {
    char out_id[64], err_id[64];
    file_ids(batch, out_id, err_id);
    f->out = (pq_file){.id = pq_req_strndup(req, out_id, strlen(out_id)), .owner = owner, .purpose = "batch_output",
                       .filename = "batch_output.jsonl", .bytes = (int64_t)out.len,
                       .content = pq_req_strndup(req, out.data ? out.data : "", out.len)};
    f->err = (pq_file){.id = pq_req_strndup(req, err_id, strlen(err_id)), .owner = owner, .purpose = "batch_output",
                       .filename = "batch_errors.jsonl", .bytes = (int64_t)err.len,
                       .content = pq_req_strndup(req, err.data ? err.data : "", err.len)};
    f->has_errors = err.len > 0;
    if (!f->out.id || !f->out.content || !f->err.id || !f->err.content) e = PQ_ERR_NO_MEMORY;
  }
  free(out.data);
  free(err.data);
  return e;
}

static pq_err their_batch(pq_req *req, const char *id, pq_job **out);

static pq_err show_written(pq_req *req) {
  if (req->op.out.result != PQ_OK && req->op.out.result != PQ_ERR_ALREADY_EXISTS) return req->op.out.result;
  pq_job *job = NULL;
  pq_err e = their_batch(req, pq_req_param(req, "id"), &job);
  if (e != PQ_OK) return e;
  e = pq_req_reply(req, 200, batch_json(job, true));
  pq_job_free(job);
  return e;
}

/* The error file is written; now the output, whose presence says both are. */
static pq_err errors_written(pq_req *req) {
  finishing *f = req->state;
  if (req->op.out.result != PQ_OK && req->op.out.result != PQ_ERR_ALREADY_EXISTS) return req->op.out.result;
  pq_op_release(&req->op);
  req->op = (pq_op){.kind = PQ_OP_FILE_PUT, .in.file_put.file = &f->out};
  pq_req_run_op(req, show_written);
  return PQ_OK;
}

static bool files_written(pq_req *req, const pq_job *batch) {
  char out_id[64], err_id[64];
  file_ids(batch, out_id, err_id);
  pq_file *f = NULL;
  bool there = pq_coord_file_get(req->coord, out_id, false, &f) == PQ_OK;
  pq_file_free(f);
  return there;
}

/* Answers with the batch (takes job), writing its files first when their time has come. */
static pq_err show_batch(pq_req *req, pq_job *job) {
  json_t *input = json_loads(job->input, 0, NULL);
  json_int_t total, completed, failed;
  bool all_ended;
  counts(job, input, &total, &completed, &failed, &all_ended);
  bool invalid = json_array_size(json_object_get(input, "errors")) > 0;
  json_decref(input);
  pq_err e;
  if (!pq_job_state_terminal(job->state) || invalid || !all_ended || files_written(req, job)) {
    e = pq_req_reply(req, 200, batch_json(job, pq_job_state_terminal(job->state) && !invalid && all_ended));
    pq_job_free(job);
    return e;
  }
  finishing *f = pq_req_alloc(req, sizeof *f);
  e = f ? write_files(req, job, f) : PQ_ERR_NO_MEMORY;
  pq_job_free(job);
  if (e != PQ_OK) return e;
  req->state = f;
  pq_op_release(&req->op); /* a cancel may have used it */
  req->op = (pq_op){.kind = PQ_OP_FILE_PUT, .in.file_put.file = f->has_errors ? &f->err : &f->out};
  pq_req_run_op(req, f->has_errors ? errors_written : show_written);
  return PQ_OK;
}

static pq_err no_such_batch(pq_req *req, const char *id) {
  return pq_req_fail(req, PQ_ERR_NOT_FOUND, json_pack("{s:s,s:s}", "field", "batch_id", "code", "not_found"),
                     "No batch found with id '%s'.", id ? id : "");
}

static pq_err their_batch(pq_req *req, const char *id, pq_job **out) {
  *out = NULL;
  if (!id || strncmp(id, PREFIX, strlen(PREFIX)) != 0) return no_such_batch(req, id);
  pq_err e = pq_api_their_job(req, id + strlen(PREFIX), out);
  if (e == PQ_OK && (!(*out)->kind || strcmp((*out)->kind, "batch") != 0)) e = PQ_ERR_NOT_FOUND;
  if (e == PQ_ERR_NOT_FOUND) {
    pq_job_free(*out);
    *out = NULL;
    return no_such_batch(req, id);
  }
  return e;
}

pq_err pq__oa_batches_get(pq_req *req) {
  pq_job *job = NULL;
  pq_err e = their_batch(req, pq_req_param(req, "id"), &job);
  return e != PQ_OK ? e : show_batch(req, job);
}

static pq_err batch_cancelled(pq_req *req) {
  if (req->op.out.result != PQ_OK && req->op.out.result != PQ_ERR_INVALID_STATE) return req->op.out.result;
  pq_job *job = NULL;
  pq_err e = their_batch(req, pq_req_param(req, "id"), &job);
  return e != PQ_OK ? e : show_batch(req, job);
}

pq_err pq__oa_batches_cancel(pq_req *req) {
  pq_job *job = NULL;
  const char *id = pq_req_param(req, "id");
  pq_err e = their_batch(req, id, &job);
  if (e != PQ_OK) return e;
  bool ended = pq_job_state_terminal(job->state);
  pq_job_free(job);
  if (ended) return batch_cancelled(req);
  req->op.kind = PQ_OP_CANCEL;
  req->op.in.cancel.job_id = id + strlen(PREFIX);
  pq_req_run_op(req, batch_cancelled);
  return PQ_OK;
}

pq_err pq__oa_batches_list(pq_req *req) {
  const char *after = pq_req_query(req, "after"), *limit_text = pq_req_query(req, "limit");
  long limit = limit_text ? strtol(limit_text, NULL, 10) : 20;
  if (limit < 1 || limit > 100) return pq__oa_bad_param(req, "limit", "invalid_request", "'limit' must be from 1 to 100");
  pq_job_filter filter = {.state = -1, .model = "batch", .owner = pq_api_owner(req), .limit = 1000};
  pq_job **jobs = NULL;
  size_t n = 0;
  int64_t all = 0;
  pq_err e = pq_coord_list_jobs(req->coord, &filter, &jobs, &n, &all);
  if (e != PQ_OK) return e;
  json_t *data = json_array();
  bool started = !after;
  for (size_t k = 0; k < n && (long)json_array_size(data) <= limit; k++) {
    if (!jobs[k]->kind || strcmp(jobs[k]->kind, "batch") != 0) continue;
    char id[64];
    snprintf(id, sizeof id, PREFIX "%s", jobs[k]->id);
    if (started) json_array_append_new(data, batch_json(jobs[k], files_written(req, jobs[k])));
    else started = strcmp(id, after) == 0;
  }
  pq_job_free_array(jobs, n);
  e = pq__oa_reply_page(req, data, limit);
  json_decref(data);
  return e;
}
