-- a worker belongs to the user whose credential registered it; only they
-- (or an admin) may heartbeat, lease or read as it
ALTER TABLE workers ADD COLUMN owner TEXT NOT NULL DEFAULT '';
