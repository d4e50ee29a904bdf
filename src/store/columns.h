/* The column lists every store backend reads its rows in. Each backend's row
 * readers (row_to_job, ...) take columns by position, so the lists live in
 * one place: a column added here is added to every backend's reads at once.
 * For the backends' own files (store/<backend>/); nothing else includes it. */
#ifndef PQ_STORE_COLUMNS_H
#define PQ_STORE_COLUMNS_H

#define PQ__JOB_COLS                                                                    \
  "number, id, model, input, priority, state, attempts, max_attempts, lease_timeout_ms, " \
  "created_at, updated_at, not_before, expires_at, leased_at, finished_at, worker_id, "   \
  "lease_token, lease_expires_at, cancel_requested, output, prompt_tokens, "              \
  "completion_tokens, error_code, error_message, idempotency_key, request_hash, owner, "    \
  "worker_signature, kind, parent_id, held_micros, cost_micros, requirements, webhook_url, key_id"
/* the same positions without the (possibly large) input and output: listings */
#define PQ__JOB_SUMMARY_COLS                                                               \
  "number, id, model, '' AS input, priority, state, attempts, max_attempts, lease_timeout_ms, " \
  "created_at, updated_at, not_before, expires_at, leased_at, finished_at, worker_id, "    \
  "lease_token, lease_expires_at, cancel_requested, NULL AS output, prompt_tokens, "       \
  "completion_tokens, error_code, error_message, idempotency_key, request_hash, owner, "     \
  "worker_signature, kind, parent_id, held_micros, cost_micros, requirements, webhook_url, key_id"
#define PQ__WORKER_COLS "id, name, models, capabilities, online, created_at, last_seen_at, public_key, owner"
#define PQ__USER_COLS "id, name, password_hash, admin, disabled, created_at"
#define PQ__PRICE_COLS "model, input_per_mtok, output_per_mtok, cost_input_per_mtok, cost_output_per_mtok, updated_at"
#define PQ__TRANSFER_COLS "id, debit, credit, amount, kind, job_id, state, posted, created_at, settled_at, key_id"
#define PQ__BUDGET_COLS "subject, period, limit_micros, updated_at"
#define PQ__WEBHOOK_COLS "id, owner, key_id, url, secret, events, created_at"
#define PQ__DELIVERY_COLS                                                                  \
  "d.id, d.webhook_id, d.owner, d.job_id, d.url, d.event_type, d.payload, d.state, d.attempts, " \
  "d.next_at, d.created_at, d.updated_at, d.last_status, d.last_error, d.retry_from"
#define PQ__KEY_COLS "id, user_id, prefix, hash, scope, name, created_at, expires_at, revoked_at"

#endif
