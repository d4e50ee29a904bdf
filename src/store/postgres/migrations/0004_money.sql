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
  settled_at BIGINT NOT NULL DEFAULT 0);
CREATE INDEX transfers_debit ON transfers(debit, number);
CREATE INDEX transfers_credit ON transfers(credit, number);
-- the reports: what was posted in a period, by kind
CREATE INDEX transfers_posted ON transfers(state, settled_at) WHERE state = 'posted';
-- the reports: jobs that ended in a period
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL AND finished_at > 0;
ALTER TABLE jobs ADD COLUMN held_micros BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0;
