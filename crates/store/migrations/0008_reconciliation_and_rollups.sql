-- Reconciliation of tracked against paid revenue, and the read-side rollups.

CREATE TABLE reconciliation_runs (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    matched         integer NOT NULL DEFAULT 0,
    amount_mismatch integer NOT NULL DEFAULT 0,
    tracked_not_paid integer NOT NULL DEFAULT 0,
    paid_not_tracked integer NOT NULL DEFAULT 0,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK (window_start < window_end)
);
ALTER TABLE reconciliation_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE reconciliation_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reconciliation_runs USING (tenant_id = tally_current_tenant());

CREATE TABLE reconciliation_items (
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    run_id           uuid NOT NULL,
    order_id         text NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('matched', 'amount_mismatch', 'tracked_not_paid', 'paid_not_tracked')),
    tracked_cents    bigint,
    verified_cents   bigint,
    currency         char(3),
    PRIMARY KEY (tenant_id, run_id, order_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES reconciliation_runs (tenant_id, id)
);
ALTER TABLE reconciliation_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE reconciliation_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reconciliation_items USING (tenant_id = tally_current_tenant());

-- Revenue per tenant, hour, model and channel, maintained as data arrives so that reads never
-- scan events. `claimed` is attributed tracked revenue; `verified` the ledger-backed share.
CREATE TABLE revenue_rollups (
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    bucket_hour      timestamptz NOT NULL CHECK (date_trunc('hour', bucket_hour) = bucket_hour),
    model            text NOT NULL,
    model_version    text NOT NULL,
    channel_code     text NOT NULL REFERENCES channel_taxonomy (code),
    currency         char(3) NOT NULL,
    conversions      double precision NOT NULL DEFAULT 0,
    claimed_cents    bigint NOT NULL DEFAULT 0,
    verified_cents   bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, bucket_hour, model, model_version, channel_code, currency)
);
ALTER TABLE revenue_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE revenue_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON revenue_rollups USING (tenant_id = tally_current_tenant());

GRANT SELECT, INSERT, UPDATE ON reconciliation_runs TO tally_app;
GRANT SELECT, INSERT, DELETE ON reconciliation_items TO tally_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON revenue_rollups TO tally_app;
GRANT SELECT ON reconciliation_runs, reconciliation_items, revenue_rollups TO tally_readonly;
