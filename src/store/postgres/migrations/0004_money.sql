-- money (model/money.h): prices per model, the ledger's accounts and
-- transfers (double-entry; a hold is a pending transfer), and what each job
-- held and cost, in micro-units
CREATE TABLE prices (
  model TEXT PRIMARY KEY,
  input_per_mtok BIGINT NOT NULL,
  output_per_mtok BIGINT NOT NULL,
  cost_input_per_mtok BIGINT NOT NULL,
  cost_output_per_mtok BIGINT NOT NULL,
  updated_at BIGINT NOT NULL);
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  balance BIGINT NOT NULL DEFAULT 0,
  held BIGINT NOT NULL DEFAULT 0);
CREATE TABLE transfers (
  number BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  debit TEXT NOT NULL,
  credit TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0),
  kind TEXT NOT NULL,
  job_id TEXT,
  state TEXT NOT NULL,
  posted BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  settled_at BIGINT NOT NULL DEFAULT 0,
  key_id TEXT);
CREATE INDEX transfers_debit ON transfers(debit, number);
CREATE INDEX transfers_credit ON transfers(credit, number);
-- budgets: a user's (or a key's) spending since a day or month began, and its open holds
CREATE INDEX transfers_spend ON transfers(debit, state, settled_at);
CREATE INDEX transfers_key_spend ON transfers(key_id, state, settled_at) WHERE key_id IS NOT NULL;
-- spending limits per period: subject "user:<id>" or "key:<id>", period day or month
CREATE TABLE budgets (
  subject TEXT NOT NULL,
  period TEXT NOT NULL,
  limit_micros BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (subject, period));
-- the reports: what was posted in a period, by kind
CREATE INDEX transfers_posted ON transfers(state, settled_at) WHERE state = 'posted';
-- the reports: jobs that ended in a period
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL AND finished_at > 0;
ALTER TABLE jobs ADD COLUMN held_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0;
