-- Domain-shift events, their rollout campaigns, and the one jobs table (river / Oban style).

CREATE TABLE domains (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    description text NOT NULL DEFAULT '',
    model_id    uuid NOT NULL REFERENCES models (id),
    spec        jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX domains_created_idx ON domains (created_at, id);

CREATE TABLE campaigns (
    id            uuid PRIMARY KEY,
    domain_id     uuid NOT NULL UNIQUE REFERENCES domains (id),
    status        text NOT NULL CHECK (status IN ('running', 'paused', 'completed', 'aborted', 'canceled')),
    status_reason text,
    wave_count    integer NOT NULL CHECK (wave_count >= 1),
    released_wave integer NOT NULL DEFAULT 0 CHECK (released_wave >= 0 AND released_wave < wave_count),
    target_count  integer NOT NULL CHECK (target_count >= 1),
    -- Rollout limit on leases per minute across the campaign; NULL is unlimited.
    max_per_minute integer CHECK (max_per_minute IS NULL OR max_per_minute >= 1),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    CHECK ((status IN ('completed', 'aborted', 'canceled')) = (finished_at IS NOT NULL))
);

-- States: queued -> leased -> running -> succeeded | failed | timed_out | canceled.
-- A lease is (state, attempt, lease_expires_at): every change is guarded by all three, so a worker whose
-- lease expired cannot complete a job that another attempt now holds.
CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    campaign_id      uuid NOT NULL REFERENCES campaigns (id),
    device_id        uuid NOT NULL REFERENCES devices (id),
    kind             text NOT NULL CHECK (kind IN ('adapt', 'apply', 'profile')),
    wave             integer NOT NULL CHECK (wave >= 0),
    state            text NOT NULL CHECK (state IN ('queued', 'leased', 'running', 'succeeded', 'failed', 'timed_out', 'canceled')),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 25),
    -- The attempt must finish within timeout_s of its lease; heartbeats extend the lease by lease_s up to that.
    timeout_s        integer NOT NULL CHECK (timeout_s BETWEEN 1 AND 86400),
    lease_s          integer NOT NULL CHECK (lease_s BETWEEN 1 AND 86400),
    run_after        timestamptz NOT NULL,
    leased_at        timestamptz,
    lease_expires_at timestamptz,
    document         jsonb NOT NULL,
    progress         jsonb,
    result           jsonb,
    errors           jsonb NOT NULL DEFAULT '[]'::jsonb,
    artifact_sha256  bytea,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    UNIQUE (campaign_id, device_id),
    CHECK (attempt >= 0 AND attempt <= max_attempts),
    CHECK ((state IN ('leased', 'running')) = (lease_expires_at IS NOT NULL)),
    CHECK (state NOT IN ('leased', 'running') OR attempt >= 1),
    CHECK ((state IN ('succeeded', 'failed', 'timed_out', 'canceled')) = (finished_at IS NOT NULL)),
    CHECK (state <> 'succeeded' OR result IS NOT NULL)
);
-- Leasing reads (device_id, state = queued, run_after) in this order.
CREATE INDEX jobs_ready_idx ON jobs (device_id, run_after) WHERE state = 'queued';
-- A device runs one job at a time, enforced by the database, not only by the agent.
CREATE UNIQUE INDEX jobs_one_active_per_device_idx ON jobs (device_id) WHERE state IN ('leased', 'running');
CREATE INDEX jobs_expiry_idx ON jobs (lease_expires_at) WHERE state IN ('leased', 'running');
CREATE INDEX jobs_campaign_idx ON jobs (campaign_id, wave, state);

-- Adapter weights uploaded by a job attempt (safetensors), kept per attempt so a late upload cannot overwrite.
CREATE TABLE job_artifacts (
    job_id     uuid NOT NULL REFERENCES jobs (id),
    attempt    integer NOT NULL,
    sha256     bytea NOT NULL CHECK (octet_length(sha256) = 32),
    size_bytes bigint NOT NULL,
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt)
);

-- Adapters aggregated over the devices of one domain (sample-weighted average per block position).
CREATE TABLE domain_adapters (
    domain_id    uuid NOT NULL REFERENCES domains (id),
    version      integer NOT NULL CHECK (version >= 1),
    sha256       bytea NOT NULL,
    content      bytea NOT NULL,
    device_count integer NOT NULL,
    sample_count bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (domain_id, version)
);

-- Time series a device reports (job results, latency measurements, context-derived figures).
CREATE TABLE device_metrics (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   uuid NOT NULL REFERENCES devices (id),
    kind        text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 64),
    job_id      uuid REFERENCES jobs (id),
    "values"    jsonb NOT NULL CHECK (jsonb_typeof("values") = 'object'),
    recorded_at timestamptz NOT NULL
);
CREATE INDEX device_metrics_device_idx ON device_metrics (device_id, recorded_at);
