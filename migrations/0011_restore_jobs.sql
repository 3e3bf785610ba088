-- Restore jobs: after a campaign's (or a release's) rollback, each device it changed gets one `restore` job in that
-- campaign, telling its agent to re-apply the restored config's model, combination and adapters (or none).
-- The kind check of 0003 gains `restore` (its name was generated, so it is found by its definition).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'jobs'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%profile%'
    LOOP
        EXECUTE format('ALTER TABLE jobs DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('adapt', 'apply', 'profile', 'restore'));

-- A device has one job per campaign, plus at most one restore job once the campaign is rolled back: the unique
-- (campaign_id, device_id) of 0003 becomes two partial unique indexes, so a rollback interrupted and finished again
-- (or run by two replicas) can never queue a second restore job for a device.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_campaign_id_device_id_key;
CREATE UNIQUE INDEX jobs_campaign_device_idx ON jobs (campaign_id, device_id) WHERE kind <> 'restore';
CREATE UNIQUE INDEX jobs_campaign_restore_idx ON jobs (campaign_id, device_id) WHERE kind = 'restore';
