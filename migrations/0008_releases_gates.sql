-- Model releases (issue 15): models get a rising version per name and tags; publishing no longer moves devices.
--
-- `version` is assigned by the database: a BEFORE INSERT trigger takes the name's advisory lock (so two publishes
-- of one name serialise) and numbers the row one above the name's highest version. Rows stored before this
-- migration are numbered by their creation order within their name.
ALTER TABLE models ADD COLUMN version integer;
UPDATE models m SET version = v.n
FROM (SELECT id, row_number() OVER (PARTITION BY name ORDER BY created_at, id) AS n FROM models) v
WHERE v.id = m.id;
ALTER TABLE models ALTER COLUMN version SET NOT NULL;
ALTER TABLE models ADD CONSTRAINT models_version_check CHECK (version >= 1);
ALTER TABLE models ADD CONSTRAINT models_name_version_key UNIQUE (name, version);
-- Operator labels of a model version (`stable`, `experimental`): a JSON array of strings.
ALTER TABLE models ADD COLUMN tags jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(tags) = 'array');

CREATE FUNCTION models_assign_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.name, 8));
    SELECT COALESCE(max(version), 0) + 1 INTO NEW.version FROM models WHERE name = NEW.name;
    RETURN NEW;
END
$$;
CREATE TRIGGER models_assign_version BEFORE INSERT ON models FOR EACH ROW EXECUTE FUNCTION models_assign_version();

-- Which devices run a model (a delete is refused while any config names it; releases count their devices).
CREATE INDEX device_configs_model_idx ON device_configs (model_id);

-- A release moves the devices its selector matches to a model, in waves. It runs as a campaign of `profile` jobs
-- for that model (the agent downloads the package and measures it on the device); a device's config moves to the
-- model when its job succeeds. The campaign (and its domain, named after the release) holds status and waves.
CREATE TABLE releases (
    id          uuid PRIMARY KEY,
    campaign_id uuid NOT NULL UNIQUE REFERENCES campaigns (id),
    model_id    uuid NOT NULL REFERENCES models (id),
    spec        jsonb NOT NULL,
    start_at    timestamptz,
    created_at  timestamptz NOT NULL
);
CREATE INDEX releases_created_idx ON releases (created_at DESC, id DESC);

-- Quality gates: an `adapt` result that fails its campaign's gate ends in the terminal state `rejected`, with the
-- gate's verdict (its measurements and reasons) in `gate`. The checks of 0003 that list the states are replaced
-- (their names were generated, so they are found by their definition).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'jobs'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%timed_out%'
    LOOP
        EXECUTE format('ALTER TABLE jobs DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'leased', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'rejected'));
ALTER TABLE jobs ADD CONSTRAINT jobs_finished_state_check
    CHECK ((state IN ('succeeded', 'failed', 'timed_out', 'canceled', 'rejected')) = (finished_at IS NOT NULL));
ALTER TABLE jobs ADD COLUMN gate jsonb;
