-- Job queue hardening (issue 10, items 10 and 11).
--
-- Attempt numbers only rise. `retry-failed` used to reset `attempt` to 0, so a worker whose old attempt 1 had
-- expired could heartbeat and report onto the new attempt 1. The retry budget now starts at `attempt_base`
-- (the attempt number when the budget was last granted): an attempt may run while attempt - attempt_base is at
-- most max_attempts, and `retry-failed` moves attempt_base up to the current attempt instead of resetting it.
ALTER TABLE jobs ADD COLUMN attempt_base integer NOT NULL DEFAULT 0 CHECK (attempt_base >= 0);

-- Replace the checks of 0003 that tied `attempt` to `max_attempts` directly (their names were generated, so
-- they are found by their definition).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'jobs'::regclass AND contype = 'c'
          AND (pg_get_constraintdef(oid) LIKE '%(attempt <= max_attempts)%'
               OR pg_get_constraintdef(oid) LIKE '%(attempt >= 1)%')
    LOOP
        EXECUTE format('ALTER TABLE jobs DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE jobs ADD CONSTRAINT jobs_attempt_budget_check
    CHECK (attempt >= attempt_base AND attempt - attempt_base <= max_attempts);
ALTER TABLE jobs ADD CONSTRAINT jobs_leased_attempt_check
    CHECK (state NOT IN ('leased', 'running') OR attempt > attempt_base);

-- What follows a succeeded result (folding its artifact into the domain adapter, re-planning) is an outbox:
-- the completing transaction sets `followup_pending`, and whoever finishes the follow-ups (the result request,
-- a replay of it, or the maintenance loop) clears it in the transaction that does them. A campaign counts a
-- succeeded job with pending follow-ups as still open, so no wave is released before its adapters are folded.
ALTER TABLE jobs ADD COLUMN followup_pending boolean NOT NULL DEFAULT false;
ALTER TABLE jobs ADD CONSTRAINT jobs_followup_state_check CHECK (NOT followup_pending OR state = 'succeeded');
CREATE INDEX jobs_followup_pending_idx ON jobs (finished_at, id) WHERE followup_pending;

-- Retries become ready when their backoff runs out; the maintenance loop wakes their devices then (NOTIFY) and
-- finds them by run_after alone.
CREATE INDEX jobs_queued_run_after_idx ON jobs (run_after) WHERE state = 'queued';
