-- money (model/money.h): prices per model, the ledger's accounts and
-- transfers (double-entry; a hold is a pending transfer), and what each job
-- held and cost, in micro-units
CREATE TABLE prices (
  model TEXT PRIMARY KEY,
  input_per_mtok INTEGER NOT NULL,
  output_per_mtok INTEGER NOT NULL,
  cost_input_per_mtok INTEGER NOT NULL,
  cost_output_per_mtok INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  balance INTEGER NOT NULL DEFAULT 0,
  held INTEGER NOT NULL DEFAULT 0);
CREATE TABLE transfers (
  number INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  debit TEXT NOT NULL,
  credit TEXT NOT NULL,
  amount INTEGER NOT NULL CHECK (amount > 0),
  kind TEXT NOT NULL,
  job_id TEXT,
  state TEXT NOT NULL,
  posted INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  settled_at INTEGER NOT NULL DEFAULT 0);
CREATE INDEX transfers_debit ON transfers(debit, number);
CREATE INDEX transfers_credit ON transfers(credit, number);
-- the reports: what was posted in a period, by kind
CREATE INDEX transfers_posted ON transfers(state, settled_at) WHERE state = 'posted';
-- the reports: jobs that ended in a period
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL AND finished_at > 0;
ALTER TABLE jobs ADD COLUMN held_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;
