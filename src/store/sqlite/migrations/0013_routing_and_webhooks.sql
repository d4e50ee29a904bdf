-- fair turns on a store several coordinators share (store.h: job_pick): when each
-- user last had a lease of a model, and how far into a weighted turn it is
CREATE TABLE owner_turns (
  model TEXT NOT NULL,
  owner TEXT NOT NULL,
  served INTEGER NOT NULL DEFAULT 0,
  streak INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (model, owner)
);

-- the store's fair pick (several coordinators): what workers hold of one user, for running limits
CREATE INDEX jobs_owner_leased ON jobs(owner, model) WHERE state = 'leased';

-- routing by capability: what a job requires of its worker (model/route.h,
-- canonical JSON; NULL: nothing); completion webhooks: the URL a job names,
-- and the API key that submitted it (key-scoped subscriptions)
ALTER TABLE jobs ADD COLUMN requirements TEXT;
ALTER TABLE jobs ADD COLUMN webhook_url TEXT;
ALTER TABLE jobs ADD COLUMN key_id TEXT;

-- endpoints and their secrets (url NULL: the owner's secret for URLs jobs name)
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  key_id TEXT,
  url TEXT,
  secret TEXT NOT NULL,
  events TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_owner ON webhooks(owner);
CREATE UNIQUE INDEX webhooks_job_secret ON webhooks(owner) WHERE url IS NULL;

-- each message to each URL, kept until delivered or given up
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  webhook_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  job_id TEXT,
  url TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_status INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  retry_from INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_owner ON webhook_deliveries(owner, created_at);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id);
-- the reaper's sweep of what ended (the log's retention)
CREATE INDEX webhook_deliveries_ended ON webhook_deliveries(updated_at) WHERE state <> 'pending';
