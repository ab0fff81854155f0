-- The job queue. Jobs are enqueued by tenant code in the same transaction as the write that
-- causes them (so a job exists exactly when its cause committed). Workers claim across tenants
-- as tally_operator with FOR UPDATE SKIP LOCKED, then do the work itself as tally_app inside the
-- job's tenant: the queue row names a tenant and a task, never tenant data.

CREATE TABLE jobs (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL,
    kind            text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    -- Jobs with the same dedupe key coalesce while pending (a burst of events makes one job).
    dedupe_key      text,
    payload         jsonb NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'succeeded')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_at          timestamptz NOT NULL DEFAULT now(),
    lease_token     uuid,
    lease_expires_at timestamptz,
    last_error      text,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((status = 'running') = (lease_token IS NOT NULL))
);
CREATE UNIQUE INDEX jobs_one_pending_per_key ON jobs (tenant_id, kind, dedupe_key)
    WHERE status = 'pending' AND dedupe_key IS NOT NULL;
CREATE INDEX jobs_ready ON jobs (run_at) WHERE status = 'pending';
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status = 'running';
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs USING (tenant_id = tally_current_tenant());
CREATE POLICY operator_runs_queue ON jobs TO tally_operator USING (true);

CREATE TABLE worker_failed_jobs (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL,
    job_id          uuid NOT NULL,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    attempts        integer NOT NULL,
    error           text NOT NULL,
    correlation_id  text NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE worker_failed_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE worker_failed_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON worker_failed_jobs USING (tenant_id = tally_current_tenant());
CREATE POLICY operator_runs_queue ON worker_failed_jobs TO tally_operator USING (true);

GRANT SELECT, INSERT, UPDATE ON jobs TO tally_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO tally_operator;
GRANT SELECT, INSERT ON worker_failed_jobs TO tally_app;
GRANT SELECT, INSERT, UPDATE ON worker_failed_jobs TO tally_operator;
GRANT SELECT ON tenants TO tally_operator;
