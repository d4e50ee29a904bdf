-- a job may be a step of another (a council's member answers): the parent
-- learns of each child's end in the same transaction
ALTER TABLE jobs ADD COLUMN parent_id TEXT;
