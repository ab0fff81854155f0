-- Attribution results and the recompute pipeline.

CREATE TABLE attribution_allocations (
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    conversion_id    uuid NOT NULL,
    model            text NOT NULL CHECK (model IN ('first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay', 'markov', 'shapley')),
    model_version    text NOT NULL,
    channel_code     text NOT NULL REFERENCES channel_taxonomy (code),
    allocated_cents  bigint NOT NULL CHECK (allocated_cents >= 0),
    weight           double precision NOT NULL CHECK (weight >= 0 AND weight <= 1),
    currency         char(3) NOT NULL,
    occurred_at      timestamptz NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversion_id, model, model_version, channel_code),
    FOREIGN KEY (tenant_id, conversion_id) REFERENCES attribution_events (tenant_id, id)
);
CREATE INDEX attribution_allocations_by_time ON attribution_allocations (tenant_id, model_version, occurred_at);
ALTER TABLE attribution_allocations ENABLE ROW LEVEL SECURITY;
ALTER TABLE attribution_allocations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attribution_allocations USING (tenant_id = tally_current_tenant());

-- The identity of a recompute: one row per (tenant, window, model version), however many times
-- it is scheduled; the queue holds at most one pending job for it.
CREATE TABLE attribution_recompute_jobs (
    tenant_id            uuid NOT NULL REFERENCES tenants (tenant_id),
    id                   uuid NOT NULL,
    window_start         timestamptz NOT NULL,
    window_end           timestamptz NOT NULL,
    model_version        text NOT NULL,
    status               text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    run_count            integer NOT NULL DEFAULT 0 CHECK (run_count >= 0),
    last_correlation_id  text,
    last_error           text,
    conversions          integer,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, window_start, window_end, model_version),
    CHECK (window_start < window_end)
);
ALTER TABLE attribution_recompute_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE attribution_recompute_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attribution_recompute_jobs USING (tenant_id = tally_current_tenant());

GRANT SELECT, INSERT, DELETE ON attribution_allocations TO tally_app;
GRANT SELECT, INSERT, UPDATE ON attribution_recompute_jobs TO tally_app;
GRANT SELECT ON attribution_allocations, attribution_recompute_jobs TO tally_readonly;
