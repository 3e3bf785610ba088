-- Elastic model packages: metadata and manifest here, the package bytes content-addressed by sha256
-- in model_blobs (in PostgreSQL, so stateless coordinator replicas all serve every package).

CREATE TABLE model_blobs (
    sha256     bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
    size_bytes bigint NOT NULL CHECK (size_bytes > 0),
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL,
    CHECK (octet_length(content) = size_bytes)
);

CREATE TABLE models (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    package_sha256    bytea NOT NULL UNIQUE REFERENCES model_blobs (sha256),
    size_bytes        bigint NOT NULL,
    manifest          jsonb NOT NULL,
    combination_count bigint NOT NULL CHECK (combination_count >= 1),
    created_at        timestamptz NOT NULL
);
CREATE INDEX models_created_idx ON models (created_at, id);

-- Per-device, per-variant latencies measured on the device by `profile` jobs (AdaptiveNet's on-device measurement).
CREATE TABLE device_variant_latencies (
    device_id   uuid NOT NULL REFERENCES devices (id),
    model_id    uuid NOT NULL REFERENCES models (id),
    latencies   jsonb NOT NULL,
    measured_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, model_id)
);

-- Every config a device was given; the newest version is the current one. Old ones are kept.
CREATE TABLE device_configs (
    device_id  uuid NOT NULL REFERENCES devices (id),
    version    integer NOT NULL CHECK (version >= 1),
    model_id   uuid REFERENCES models (id),
    decision   jsonb NOT NULL,
    trigger    text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, version)
);
