-- Reconciliation runs and items, verified attribution, and the read side's summaries.
--
-- 0008 sketched reconciliation_runs / reconciliation_items and hour rollups; nothing ever wrote
-- the reconciliation tables, so they are replaced here rather than altered column by column.
--
-- The read side never scans raw events:
-- - revenue_rollups: per (grain hour|day in the tenant's time zone, model, channel, currency),
--   claimed cents (allocations of tracked revenue) and verified cents (the same shares applied
--   to each order's net verified amount). Rebuilt by recompute and reconciliation jobs for the
--   windows they own, in their transaction.
-- - unattributed_rollups: paid-not-tracked money, bucketed by the order's first posting.
-- - live_deltas / live_totals: tracked conversions and ledger postings within a second. Ingest
--   transactions only INSERT a delta row (no row that every ingest transaction updates, so
--   concurrent group commits never queue on a lock); workers fold deltas into totals every
--   second; readers add totals and the deltas not yet folded, in one statement and so one
--   snapshot, which makes a fold invisible to them.

DROP TABLE reconciliation_items;
DROP TABLE reconciliation_runs;
DROP TABLE revenue_rollups;

CREATE TABLE reconciliation_runs (
    tenant_id         uuid NOT NULL REFERENCES tenants (tenant_id),
    id                uuid NOT NULL,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    -- manual: API or CLI; automatic: after ledger postings or a recompute (conversions);
    -- nightly: the previous day, and the days whose grace period just ended.
    trigger           text NOT NULL CHECK (trigger IN ('manual', 'automatic', 'nightly')),
    status            text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    items             integer CHECK (items >= 0),
    -- Orders per status, every status present.
    counts            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    -- Per currency: claimed, verified, ghost, unclaimed, discrepancy_bps, orders.
    totals            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(totals) = 'array'),
    -- Postings in the window that name no order and reverse no known payment.
    orphaned_postings integer CHECK (orphaned_postings >= 0),
    -- SHA-256 of the items; a run whose items equal the previous run's of the same window
    -- stores none and points at that run instead (a rerun with nothing new changes nothing).
    fingerprint       bytea CHECK (length(fingerprint) = 32),
    same_items_as     uuid,
    error             text,
    correlation_id    text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 128),
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    PRIMARY KEY (tenant_id, id),
    CHECK (window_start < window_end),
    FOREIGN KEY (tenant_id, same_items_as) REFERENCES reconciliation_runs (tenant_id, id)
);
CREATE INDEX reconciliation_runs_newest ON reconciliation_runs (tenant_id, created_at DESC, id DESC);
CREATE INDEX reconciliation_runs_by_window ON reconciliation_runs
    (tenant_id, window_start, window_end, created_at DESC);
ALTER TABLE reconciliation_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE reconciliation_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reconciliation_runs USING (tenant_id = tally_current_tenant());

CREATE TABLE reconciliation_items (
    tenant_id              uuid NOT NULL REFERENCES tenants (tenant_id),
    run_id                 uuid NOT NULL,
    order_id               text NOT NULL CHECK (length(order_id) BETWEEN 1 AND 255),
    status                 text NOT NULL CHECK (status IN ('matched', 'amount_mismatch',
                               'currency_mismatch', 'awaiting_payment', 'tracked_not_paid',
                               'paid_not_tracked', 'refunded', 'partially_refunded')),
    conversion_id          uuid,
    tracked_at             timestamptz,
    tracked_cents          bigint,
    tracked_currency       char(3),
    duplicate_conversions  integer NOT NULL DEFAULT 0 CHECK (duplicate_conversions >= 0),
    verified_cents         bigint NOT NULL,
    verified_currency      char(3),
    paid_cents             bigint NOT NULL,
    reversed_cents         bigint NOT NULL,
    postings               integer NOT NULL CHECK (postings >= 0),
    difference_cents       bigint,
    first_posting_at       timestamptz,
    PRIMARY KEY (tenant_id, run_id, order_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES reconciliation_runs (tenant_id, id),
    CHECK ((conversion_id IS NULL) = (status = 'paid_not_tracked'))
);
CREATE INDEX reconciliation_items_by_status ON reconciliation_items (tenant_id, run_id, status, order_id);
ALTER TABLE reconciliation_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE reconciliation_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reconciliation_items USING (tenant_id = tally_current_tenant());

-- Each allocation's share of its order's verified net (first conversion of an order only).
-- Separate from attribution_allocations so that a posting rewrites only these small rows.
CREATE TABLE verified_allocations (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    conversion_id   uuid NOT NULL,
    model           text NOT NULL,
    model_version   text NOT NULL,
    channel_code    text NOT NULL,
    verified_cents  bigint NOT NULL,
    occurred_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, conversion_id, model, model_version, channel_code)
);
CREATE INDEX verified_allocations_by_time ON verified_allocations (tenant_id, model_version, occurred_at);
ALTER TABLE verified_allocations ENABLE ROW LEVEL SECURITY;
ALTER TABLE verified_allocations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON verified_allocations USING (tenant_id = tally_current_tenant());

CREATE TABLE revenue_rollups (
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    model_version    text NOT NULL,
    grain            text NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket_start     timestamptz NOT NULL,
    -- The time zone the bucket was cut in; day rows of another zone (the tenant changed its
    -- zone, the recomputes that implies have not all run) are not used by readers.
    time_zone        text NOT NULL,
    model            text NOT NULL,
    channel_code     text NOT NULL REFERENCES channel_taxonomy (code),
    currency         char(3) NOT NULL,
    conversions      double precision NOT NULL DEFAULT 0,
    claimed_cents    bigint NOT NULL DEFAULT 0,
    verified_cents   bigint NOT NULL DEFAULT 0,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, model_version, grain, bucket_start, model, channel_code, currency)
);
ALTER TABLE revenue_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE revenue_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON revenue_rollups USING (tenant_id = tally_current_tenant());

CREATE TABLE unattributed_rollups (
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    grain            text NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket_start     timestamptz NOT NULL,
    time_zone        text NOT NULL,
    currency         char(3) NOT NULL,
    orders           integer NOT NULL DEFAULT 0,
    verified_cents   bigint NOT NULL DEFAULT 0,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, grain, bucket_start, currency)
);
ALTER TABLE unattributed_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE unattributed_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON unattributed_rollups USING (tenant_id = tally_current_tenant());

-- Quarter-hour buckets: every time zone in use is offset from UTC by a multiple of 15 minutes,
-- so any tenant's local hours and days are unions of these buckets.
CREATE FUNCTION tally_quarter_hour(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT date_bin('15 minutes', t, timestamptz '2000-01-01 00:00:00+00')
$$;

-- The local hour `t` falls in, as an instant. Aligned on the local midnight of t's day rather
-- than truncated in local time, so the repeated hour of a DST fall-back is two buckets.
CREATE FUNCTION tally_local_hour(t timestamptz, tz text) RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT date_bin('1 hour', t, date_trunc('day', t, tz))
$$;

-- The local midnight after `t` (local days last 23 to 25 hours).
CREATE FUNCTION tally_next_local_day(t timestamptz, tz text) RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT date_trunc('day', date_trunc('day', t, tz) + interval '26 hours', tz)
$$;

CREATE TABLE live_deltas (
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    -- tracked: accepted conversion events (revenue); ledger: postings (net money).
    stream        text NOT NULL CHECK (stream IN ('tracked', 'ledger')),
    bucket_start  timestamptz NOT NULL,
    currency      char(3) NOT NULL,
    events        bigint NOT NULL,
    cents         numeric NOT NULL,
    last_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX live_deltas_by_bucket ON live_deltas (tenant_id, bucket_start);
ALTER TABLE live_deltas ENABLE ROW LEVEL SECURITY;
ALTER TABLE live_deltas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON live_deltas USING (tenant_id = tally_current_tenant());
-- The folder finds the tenants that have deltas before it knows a tenant: the tenant id column
-- only, like the dead-letter depth gauge (0010).
CREATE POLICY operator_finds_tenants ON live_deltas FOR SELECT TO tally_operator USING (true);

CREATE TABLE live_totals (
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    stream        text NOT NULL CHECK (stream IN ('tracked', 'ledger')),
    bucket_start  timestamptz NOT NULL,
    currency      char(3) NOT NULL,
    events        bigint NOT NULL,
    -- numeric: a sum of bigints never overflows here; readers check the i64 range.
    cents         numeric NOT NULL,
    last_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, bucket_start, stream, currency)
);
ALTER TABLE live_totals ENABLE ROW LEVEL SECURITY;
ALTER TABLE live_totals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON live_totals USING (tenant_id = tally_current_tenant());

GRANT SELECT, INSERT, UPDATE ON reconciliation_runs TO tally_app;
GRANT SELECT, INSERT ON reconciliation_items TO tally_app;
GRANT SELECT, INSERT, DELETE ON verified_allocations TO tally_app;
GRANT SELECT, INSERT, DELETE ON revenue_rollups, unattributed_rollups TO tally_app;
GRANT SELECT, INSERT, DELETE ON live_deltas TO tally_app;
GRANT SELECT, INSERT, UPDATE ON live_totals TO tally_app;
GRANT SELECT (tenant_id) ON live_deltas TO tally_operator;
GRANT SELECT ON reconciliation_runs, reconciliation_items, verified_allocations, revenue_rollups,
    unattributed_rollups, live_totals TO tally_readonly;
GRANT EXECUTE ON FUNCTION tally_quarter_hour(timestamptz), tally_local_hour(timestamptz, text),
    tally_next_local_day(timestamptz, text) TO tally_app, tally_readonly;

-- Every posting reaches the live totals and schedules the reconciliation of the day its order
-- belongs to, whatever wrote it (webhooks, adjustments, a future importer): a statement trigger
-- with the statement's new rows, so a delivery of several postings costs one pass.
--
-- The order's day: its first tracked conversion's local day when tracking knows the order, else
-- the local day of its first posting (where paid-not-tracked money is reported). Postings
-- without an order id are reported as orphaned by the run of their own day.
CREATE FUNCTION tally_ledger_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tenant uuid := tally_current_tenant();
    tz text;
    days date[];
    correlation text;
BEGIN
    INSERT INTO live_deltas (tenant_id, stream, bucket_start, currency, events, cents, last_at)
    SELECT n.tenant_id, 'ledger', tally_quarter_hour(n.occurred_at), n.currency, count(*),
           sum(n.amount_cents), max(n.posted_at)
    FROM new_rows n GROUP BY n.tenant_id, 3, 4;

    SELECT time_zone INTO tz FROM tenant_settings WHERE tenant_id = tenant;
    SELECT max(correlation_id) INTO correlation FROM new_rows;
    SELECT array_agg(DISTINCT (f.first_at AT TIME ZONE tz)::date) INTO days
    FROM (
        SELECT coalesce(
                   (SELECT min(e.occurred_at) FROM attribution_events e
                    WHERE e.tenant_id = tenant AND e.order_id = o.order_id AND e.kind = 'conversion'),
                   (SELECT min(l.occurred_at) FROM revenue_ledger l
                    WHERE l.tenant_id = tenant AND l.order_id = o.order_id)) AS first_at
        FROM (SELECT DISTINCT order_id FROM new_rows WHERE order_id IS NOT NULL) o
        UNION ALL
        SELECT occurred_at FROM new_rows WHERE order_id IS NULL
    ) f;
    IF tz IS NOT NULL AND days IS NOT NULL THEN
        PERFORM tally_schedule_reconciliation(tenant, days, 'automatic', correlation);
    END IF;
    RETURN NULL;
END
$$;

-- Schedules a reconciliation run of each tenant-local day in `p_days`, unless one is pending
-- for that day already (coalesced, like recomputes: a burst of postings makes one run per day).
-- Returns the runs that will do the work, new or pending.
CREATE FUNCTION tally_schedule_reconciliation(
    p_tenant uuid, p_days date[], p_trigger text, p_correlation_id text)
RETURNS SETOF reconciliation_runs
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    SELECT time_zone INTO tz FROM tenant_settings WHERE tenant_id = p_tenant;
    RETURN QUERY SELECT * FROM tally_schedule_reconciliation_windows(
        p_tenant,
        ARRAY(SELECT d::timestamp AT TIME ZONE tz FROM unnest(p_days) d ORDER BY d),
        ARRAY(SELECT (d + 1)::timestamp AT TIME ZONE tz FROM unnest(p_days) d ORDER BY d),
        p_trigger, p_correlation_id);
END
$$;

-- The same for explicit windows. A window has at most one pending job (the queue's dedupe key
-- is the window); a new run row is created only when a job is queued.
CREATE FUNCTION tally_schedule_reconciliation_windows(
    p_tenant uuid, p_starts timestamptz[], p_ends timestamptz[], p_trigger text,
    p_correlation_id text)
RETURNS SETOF reconciliation_runs
LANGUAGE plpgsql AS $$
DECLARE
    ws timestamptz;
    we timestamptz;
    key text;
    run reconciliation_runs;
BEGIN
    -- Schedulers of one tenant take turns (until their transaction ends), so the look for a
    -- pending job and the insert of a new one cannot interleave with another scheduler's.
    -- Only webhook, adjustment and job transactions schedule; ingestion never waits on this.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant::text || '/reconciliation/schedule', 0));
    FOR ws, we IN SELECT DISTINCT s, e FROM unnest(p_starts, p_ends) AS w(s, e) ORDER BY s, e LOOP
        key := extract(epoch FROM ws)::bigint::text || '-' || extract(epoch FROM we)::bigint::text;
        SELECT r.* INTO run FROM jobs j
        JOIN reconciliation_runs r ON r.tenant_id = j.tenant_id AND r.id = (j.payload->>'run_id')::uuid
        WHERE j.tenant_id = p_tenant AND j.kind = 'reconciliation.run' AND j.status = 'pending'
          AND j.dedupe_key = key;
        IF NOT FOUND THEN
            INSERT INTO reconciliation_runs (tenant_id, id, window_start, window_end, trigger, status,
                                             correlation_id)
            VALUES (p_tenant, tally_uuid_v7(), ws, we, p_trigger, 'pending', p_correlation_id)
            RETURNING * INTO run;
            INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, correlation_id)
            VALUES (p_tenant, tally_uuid_v7(), 'reconciliation.run', key,
                    jsonb_build_object('run_id', run.id), p_correlation_id);
        END IF;
        RETURN NEXT run;
    END LOOP;
END
$$;

CREATE TRIGGER revenue_ledger_after_insert AFTER INSERT ON revenue_ledger
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_ledger_after_insert();

GRANT EXECUTE ON FUNCTION tally_schedule_reconciliation(uuid, date[], text, text),
    tally_schedule_reconciliation_windows(uuid, timestamptz[], timestamptz[], text, text)
    TO tally_app;
