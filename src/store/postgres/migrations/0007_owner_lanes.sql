-- one user's queued jobs of a model in lease order: a queue position under fair
-- turns counts only its owner's jobs ahead (engine/sched.h), without walking
-- every other user's backlog
CREATE INDEX jobs_owner_lane ON jobs(state, model, owner, priority DESC, number) WHERE state = 'queued';
