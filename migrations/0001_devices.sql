-- Device registry: profiles, budgets, the latest reported context and the hashed bearer token.
-- Never edit a migration after it lands; add a new file instead (the runner checks checksums).

CREATE TABLE devices (
    id                uuid PRIMARY KEY,
    name              text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decommissioned')),
    hardware_class    text NOT NULL CHECK (hardware_class ~ '^[a-z](-?[a-z0-9])*$'),
    gflops            double precision NOT NULL CHECK (gflops > 0),
    memory_mb         integer NOT NULL CHECK (memory_mb > 0),
    latency_budget_ms double precision NOT NULL CHECK (latency_budget_ms > 0),
    memory_budget_mb  double precision NOT NULL CHECK (memory_budget_mb > 0),
    energy_budget_mj  double precision CHECK (energy_budget_mj > 0),
    labels            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
    context           jsonb CHECK (context IS NULL OR jsonb_typeof(context) = 'object'),
    context_at        timestamptz,
    -- sha256 of the device token; kept after decommissioning so the agent routes can answer 404, not 401.
    token_sha256      bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    version           integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_seen_at      timestamptz,
    decommissioned_at timestamptz,
    CHECK ((status = 'decommissioned') = (decommissioned_at IS NOT NULL))
);

CREATE INDEX devices_labels_idx ON devices USING gin (labels jsonb_path_ops);
CREATE INDEX devices_status_id_idx ON devices (status, id);

-- Every context report, for metrics and for planning from history.
CREATE TABLE device_context_reports (
    device_id   uuid NOT NULL REFERENCES devices (id),
    reported_at timestamptz NOT NULL,
    context     jsonb NOT NULL,
    PRIMARY KEY (device_id, reported_at)
);

-- Answers of creating POSTs by Idempotency-Key, scoped to the caller, so a retry replays the first answer.
CREATE TABLE idempotency_keys (
    scope         text NOT NULL,
    key           text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_sha256 bytea NOT NULL,
    status        integer NOT NULL,
    response      bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
