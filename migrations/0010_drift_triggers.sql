-- Drift reports and triggers: the fleet reacts to a shifted input stream without an operator.
--
-- Each device's latest drift report (what its agent's drift window measured against the baseline it took after
-- its last adaptation), with the state the coordinator judged from it and since when that state holds.
CREATE TABLE device_drift (
    device_id       uuid PRIMARY KEY REFERENCES devices (id),
    state           text NOT NULL CHECK (state IN ('ok', 'drifting')),
    state_since     timestamptz NOT NULL,
    report          jsonb NOT NULL,
    entropy_rise    double precision,
    confidence_drop double precision,
    reported_at     timestamptz NOT NULL,
    reports         bigint NOT NULL DEFAULT 1 CHECK (reports >= 1)
);
CREATE INDEX device_drift_state_idx ON device_drift (state);

-- A trigger watches the devices its selector matches; when enough of them drift beyond its threshold for its
-- for_s, it creates a domain and campaign over those devices, at most once per cooldown. Every replica evaluates
-- every trigger: the firing is claimed by a conditional UPDATE of last_fired_at in the transaction that writes the
-- domain, so one replica fires and the others see the cooldown.
CREATE TABLE triggers (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    spec            jsonb NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    version         integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    condition_since timestamptz,
    last_fired_at   timestamptz,
    fired_count     integer NOT NULL DEFAULT 0 CHECK (fired_count >= 0),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX triggers_enabled_idx ON triggers (id) WHERE enabled;

-- The domains triggers created (a domain's origin). No foreign key to triggers: a deleted trigger's domains keep it.
CREATE TABLE trigger_firings (
    domain_id   uuid PRIMARY KEY REFERENCES domains (id),
    trigger_id  uuid NOT NULL,
    campaign_id uuid NOT NULL REFERENCES campaigns (id),
    device_ids  jsonb NOT NULL CHECK (jsonb_typeof(device_ids) = 'array'),
    fired_at    timestamptz NOT NULL
);
CREATE INDEX trigger_firings_trigger_idx ON trigger_firings (trigger_id, fired_at DESC);
