-- Idempotency-Key for the POSTs that create something (issue 12, section 5).
--
-- One row per (tenant, route, key): the hash of the request that first used the key and the
-- response it got, so that a retry with the same key and body is answered with that response
-- and a different body with 409. Only successful responses are kept: a request that failed
-- (validation, conflict, outage) stored nothing and can be retried as it is. Rows never change,
-- so the runtime role may only read and insert them; unlike the money tables they carry no
-- append-only trigger, so that the owner can prune old keys (Stripe keeps them 24 h).

CREATE TABLE idempotency_keys (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    route           text NOT NULL CHECK (length(route) BETWEEN 1 AND 512),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_sha256  bytea NOT NULL CHECK (length(request_sha256) = 32),
    status          smallint NOT NULL CHECK (status BETWEEN 200 AND 299),
    content_type    text,
    response_body   bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, route, key)
);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys USING (tenant_id = tally_current_tenant());
GRANT SELECT, INSERT ON idempotency_keys TO tally_app;
GRANT SELECT ON idempotency_keys TO tally_readonly;
