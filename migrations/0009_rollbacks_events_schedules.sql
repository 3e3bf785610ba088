-- Safe rollouts: rollback, campaign events, schedules (start_at and maintenance windows).
--
-- Campaign statuses gain `rolling_back` (a rollback is restoring configs) and `rolled_back` (final). The checks of
-- 0003 that list the statuses are replaced (their names were generated, so they are found by their definition).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'campaigns'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%canceled%'
    LOOP
        EXECUTE format('ALTER TABLE campaigns DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
    CHECK (status IN ('running', 'paused', 'completed', 'aborted', 'canceled', 'rolling_back', 'rolled_back'));
ALTER TABLE campaigns ADD CONSTRAINT campaigns_finished_status_check
    CHECK ((status IN ('completed', 'aborted', 'canceled', 'rolled_back')) = (finished_at IS NOT NULL));
-- Paused by its schedule (before `start_at`, or outside its maintenance window), not by an operator or a threshold:
-- the scheduler resumes it when the schedule opens.
ALTER TABLE campaigns ADD COLUMN held_by_schedule boolean NOT NULL DEFAULT false;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_held_paused_check CHECK (NOT held_by_schedule OR status = 'paused');

-- What a campaign changed, per device: the config version current when the device's job succeeded (before the
-- follow-up re-planned it), written in the transaction that finishes the follow-ups. A rollback restores that
-- version's decision as a new version (`restored_version`), in the transaction that marks the row, so a rollback
-- interrupted by a restart resumes where it stopped and never writes a device twice.
CREATE TABLE campaign_config_changes (
    campaign_id      uuid NOT NULL REFERENCES campaigns (id),
    device_id        uuid NOT NULL REFERENCES devices (id),
    -- NULL: the device had no config before the campaign (a rollback then leaves its config).
    replaced_version integer CHECK (replaced_version IS NULL OR replaced_version >= 1),
    changed_at       timestamptz NOT NULL,
    restored_version integer,
    -- Whether the rollback wrote `restored_version` (false: the device already ran the replaced config).
    restored_written boolean NOT NULL DEFAULT false,
    restored_at      timestamptz,
    PRIMARY KEY (campaign_id, device_id),
    CHECK (restored_at IS NOT NULL OR (restored_version IS NULL AND NOT restored_written))
);
CREATE INDEX campaign_config_changes_pending_idx ON campaign_config_changes (campaign_id, device_id) WHERE restored_at IS NULL;

-- What happened to a campaign, in order: state changes with their time and cause.
CREATE TABLE campaign_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id uuid NOT NULL REFERENCES campaigns (id),
    kind        text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 64),
    cause       text NOT NULL CHECK (char_length(cause) BETWEEN 1 AND 64),
    details     jsonb NOT NULL CHECK (jsonb_typeof(details) = 'object'),
    created_at  timestamptz NOT NULL
);
CREATE INDEX campaign_events_campaign_idx ON campaign_events (campaign_id, id);
