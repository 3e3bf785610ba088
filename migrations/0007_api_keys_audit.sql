-- API keys with roles, enrolment tokens, and the append-only audit log (issue 16, items 2 and 3).

-- Operator credentials: each key has a role; only the SHA-256 of the key is kept. Expiry is judged by the
-- database's clock (`now()`), which every replica shares.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    key_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(key_sha256) = 32),
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);

-- Tokens a device enrols itself with: bound to labels, an expiry and optionally a number of uses.
CREATE TABLE enrolment_tokens (
    id           uuid PRIMARY KEY,
    labels       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
    token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    expires_at   timestamptz NOT NULL,
    max_uses     integer CHECK (max_uses >= 1),
    uses         integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

-- Who did what: every mutating request and every refused credential. Rows are only ever inserted.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_kind     text NOT NULL CHECK (actor_kind IN ('admin_key', 'api_key', 'device', 'enrolment_token', 'anonymous')),
    actor_id       text,
    actor_name     text,
    method         text NOT NULL,
    route          text NOT NULL,
    resource_id    text,
    status         integer NOT NULL,
    request_id     text NOT NULL,
    client_address text
);
CREATE INDEX audit_log_at_idx ON audit_log (at, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id);

-- Append-only for every role, the owner and superusers included (privileges do not bind those; a trigger does).
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
