-- promptq on PostgreSQL: every table, as SQLite's migrations 1-6 left them
CREATE TABLE jobs (
  number BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL DEFAULT 'chat',
  model TEXT NOT NULL,
  input TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  lease_timeout_ms BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  not_before BIGINT NOT NULL DEFAULT 0,
  expires_at BIGINT,
  leased_at BIGINT,
  finished_at BIGINT,
  worker_id TEXT,
  lease_token TEXT,
  lease_expires_at BIGINT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  output TEXT,
  prompt_tokens BIGINT,
  completion_tokens BIGINT,
  error_code TEXT,
  error_message TEXT,
  idempotency_key TEXT,
  request_hash TEXT,
  owner TEXT NOT NULL DEFAULT '',
  worker_signature TEXT)
  -- autovacuum visits the hot queue table often: every job leaves dead tuples
  -- (state is indexed, so its updates are not HOT; see docs/architecture.md)
  WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX jobs_state ON jobs(state, number);
CREATE INDEX jobs_model ON jobs(model, number);
CREATE INDEX jobs_owner ON jobs(owner, number);
CREATE INDEX jobs_lease_due ON jobs(state, lease_expires_at) WHERE state = 'leased';
CREATE INDEX jobs_ttl_due ON jobs(state, expires_at) WHERE state = 'queued' AND expires_at IS NOT NULL;
CREATE INDEX jobs_queued ON jobs(state, model, priority DESC, number) WHERE state = 'queued';
CREATE INDEX jobs_worker ON jobs(state, worker_id) WHERE state = 'leased';
CREATE INDEX jobs_owner_queued ON jobs(state, owner) WHERE state = 'queued';
CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE job_events (
  job_number BIGINT NOT NULL,
  attempt INTEGER NOT NULL,
  seq BIGINT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (job_number, attempt, seq));
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  models TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  online INTEGER NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  public_key TEXT,
  owner TEXT NOT NULL DEFAULT '');
CREATE INDEX workers_online ON workers(online, last_seen_at) WHERE online = 1;
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT);
CREATE INDEX api_keys_user ON api_keys(user_id);
