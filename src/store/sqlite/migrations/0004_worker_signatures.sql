-- workers may sign their results
ALTER TABLE workers ADD COLUMN public_key TEXT;
ALTER TABLE jobs ADD COLUMN worker_signature TEXT;
