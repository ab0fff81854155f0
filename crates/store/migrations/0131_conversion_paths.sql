-- Each conversion's channel path as its latest recompute saw it (stitched journey, lookback,
-- repeats in a row collapsed), so "top conversion paths" is a grouped range scan of one row per
-- conversion instead of rebuilding every journey from events at request time (21 s for a month
-- of a 1 M-event tenant on the 2-core bench machine), and always agrees with the journeys the
-- models credited. Written by the recompute job with the allocations, in its transaction.
CREATE TABLE conversion_paths (
    tenant_id      uuid NOT NULL REFERENCES tenants (tenant_id),
    model_version  text NOT NULL,
    conversion_id  uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    currency       char(3) NOT NULL,
    revenue_cents  bigint NOT NULL,
    path           text[] NOT NULL CHECK (cardinality(path) >= 1),
    PRIMARY KEY (tenant_id, model_version, conversion_id)
);
CREATE INDEX conversion_paths_by_time ON conversion_paths (tenant_id, model_version, occurred_at);
ALTER TABLE conversion_paths ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversion_paths FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversion_paths USING (tenant_id = tally_current_tenant());
GRANT SELECT, INSERT, DELETE ON conversion_paths TO tally_app;
GRANT SELECT ON conversion_paths TO tally_readonly;
