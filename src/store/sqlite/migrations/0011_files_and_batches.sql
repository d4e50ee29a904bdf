-- files: what clients upload for OpenAI's Batch API (JSONL) and what a
-- batch writes back (its output and error files)
CREATE TABLE files (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  purpose TEXT NOT NULL,
  filename TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  content TEXT NOT NULL);
CREATE INDEX files_by_owner ON files (owner, created_at);
-- a batch's steps (and a council's), found by their parent
CREATE INDEX jobs_by_parent ON jobs (parent_id, number) WHERE parent_id IS NOT NULL;
