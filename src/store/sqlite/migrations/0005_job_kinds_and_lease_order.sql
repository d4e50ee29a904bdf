-- every job has a kind (what its input means and what happens when it ends);
-- jobs from before were chats, or embeddings when their input held texts to embed
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat';
UPDATE jobs SET kind = 'embedding' WHERE json_extract(input, '$.embeddings') IS NOT NULL;
-- the state leads each partial index, so the planner picks it without hints
DROP INDEX jobs_lease_due;
CREATE INDEX jobs_lease_due ON jobs(state, lease_expires_at) WHERE state = 'leased';
DROP INDEX jobs_ttl_due;
CREATE INDEX jobs_ttl_due ON jobs(state, expires_at) WHERE state = 'queued' AND expires_at IS NOT NULL;
-- queued jobs in lease order, per model: lease selection and queue positions
CREATE INDEX jobs_queued ON jobs(state, model, priority DESC, number) WHERE state = 'queued';
-- a worker's leases (heartbeats, going offline): the state leads here too
DROP INDEX jobs_worker;
CREATE INDEX jobs_worker ON jobs(state, worker_id) WHERE state = 'leased';
-- a user's queued jobs (the queue quota, on every submit)
DROP INDEX jobs_owner_queued;
CREATE INDEX jobs_owner_queued ON jobs(state, owner) WHERE state = 'queued';
