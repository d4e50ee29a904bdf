-- jobs and workers
CREATE TABLE jobs (
  number INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  model TEXT NOT NULL,
  input TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  lease_timeout_ms INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER,
  leased_at INTEGER,
  finished_at INTEGER,
  worker_id TEXT,
  lease_token TEXT,
  lease_expires_at INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  output TEXT,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  error_code TEXT,
  error_message TEXT,
  idempotency_key TEXT,
  request_hash TEXT);
CREATE INDEX jobs_state ON jobs(state, number);
CREATE INDEX jobs_model ON jobs(model, number);
CREATE INDEX jobs_lease_due ON jobs(lease_expires_at) WHERE state = 'leased';
CREATE INDEX jobs_ttl_due ON jobs(expires_at) WHERE state = 'queued' AND expires_at IS NOT NULL;
CREATE INDEX jobs_worker ON jobs(worker_id) WHERE state = 'leased';
CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  models TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  online INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL);
CREATE INDEX workers_online ON workers(last_seen_at) WHERE online = 1;
