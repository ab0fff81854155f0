-- Dashboard sessions: a read-scoped API key is exchanged once for a random session token held in
-- an HttpOnly cookie, so the key itself never lives in the browser. Only the token's SHA-256 is
-- stored (like API keys: a database leak yields no usable session).
CREATE TABLE dashboard_sessions (
    tenant_id      uuid NOT NULL REFERENCES tenants (tenant_id),
    session_id     uuid NOT NULL DEFAULT tally_uuid_v7(),
    key_id         uuid NOT NULL,
    token_sha256   bytea NOT NULL CHECK (length(token_sha256) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, session_id),
    UNIQUE (tenant_id, token_sha256),
    FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, key_id)
);
CREATE INDEX dashboard_sessions_by_token ON dashboard_sessions (token_sha256);
ALTER TABLE dashboard_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE dashboard_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dashboard_sessions USING (tenant_id = tally_current_tenant());
-- As with api_keys: before the tenant is known, a request sees exactly the session whose token it
-- holds (it sets app.session_sha256 to the token's hash).
CREATE POLICY lookup_by_token ON dashboard_sessions FOR SELECT
    USING (token_sha256 = decode(NULLIF(current_setting('app.session_sha256', true), ''), 'hex'));
-- Sign-out deletes the row; nothing ever updates one.
GRANT SELECT, INSERT, DELETE ON dashboard_sessions TO tally_app;
GRANT SELECT ON dashboard_sessions TO tally_readonly;
