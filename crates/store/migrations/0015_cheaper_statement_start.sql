-- Cheaper start-up for each ingestion statement.
--
-- A group commit of single events writes ~15 rows per statement, so what PostgreSQL pays once
-- per statement weighs as much as what it pays per row. Measured with pg_stat_statements
-- (track = all) during `tally bench ingest` on the 2-core machine: the INSERT of
-- `tally_ingest_events` took 1.5 ms for 15 rows and the recompute scheduling 0.5 ms, although
-- nothing was scheduled (every window already had a pending job).
--
-- 1. The PII prefilter of 0013 was a WHEN clause holding the jsonpath as a constant. PostgreSQL
--    deserialises trigger WHEN clauses from text at the start of every statement, and a
--    jsonpath constant is stored as one integer per byte: ~0.1 ms per statement for this one.
--    The same expression now sits in an IMMUTABLE plpgsql function whose plan each session
--    keeps, so the WHEN clause is a single function call. Measured on a twin of the events
--    table (pgbench, one statement of N rows): N = 1, 0.34 -> 0.20 ms; N = 15, 0.82 -> 0.75 ms;
--    N = 200, equal within noise. A change of `tally_pii_key_list()` must now recreate only
--    this function (CREATE OR REPLACE), not the three triggers.
-- 2. Ingestion first asks, read-only and in its own statement, whether any of the accepted
--    events' windows lacks a pending job. During a burst none does, and it skips the call of
--    `tally_schedule_for_events` (a nested plpgsql call, ~0.2 ms even when it wrote nothing)
--    and that function's three data-modifying statements (an INSERT, an INSERT and an UPDATE,
--    each with its own executor start-up). The question is one inlinable SQL function that
--    the scheduler asks too, so the rule that decides which windows need a job is written once.

DO $$
BEGIN
    EXECUTE format(
        'CREATE FUNCTION tally_pii_suspect(doc jsonb) RETURNS boolean
         LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS %L',
        format('BEGIN RETURN doc @? %L::jsonpath; END', tally_pii_key_jsonpath()::text));
END
$$;

COMMENT ON FUNCTION tally_pii_suspect(jsonb) IS
    'True when a key at any depth of doc may be a listed PII key (the prefilter of the PII '
    'triggers); the exact check in the trigger function decides. Built from '
    'tally_pii_key_jsonpath() when migration 0015 ran.';

DROP TRIGGER attribution_events_no_pii ON attribution_events;
CREATE TRIGGER attribution_events_no_pii BEFORE INSERT ON attribution_events
    FOR EACH ROW WHEN (tally_pii_suspect(NEW.properties))
    EXECUTE FUNCTION attribution_events_refuse_pii();

DROP TRIGGER dead_events_no_pii ON dead_events;
CREATE TRIGGER dead_events_no_pii BEFORE INSERT OR UPDATE OF payload ON dead_events
    FOR EACH ROW WHEN (tally_pii_suspect(NEW.payload))
    EXECUTE FUNCTION dead_events_refuse_pii();

DROP TRIGGER webhook_deliveries_no_pii ON webhook_deliveries;
CREATE TRIGGER webhook_deliveries_no_pii BEFORE INSERT OR UPDATE OF payload ON webhook_deliveries
    FOR EACH ROW WHEN (tally_pii_suspect(NEW.payload))
    EXECUTE FUNCTION webhook_deliveries_refuse_pii();

-- The tenant-day windows that events at `occurred` can change and that have no pending
-- recompute job: each event's day through the day of min(occurred + lookback, now), in the
-- tenant's time zone (PostgreSQL does the DST arithmetic, so a day may be 23 or 25 hours).
-- LANGUAGE sql and STABLE so that the planner inlines it into the calling statement.
CREATE FUNCTION tally_unscheduled_windows(
    p_tenant uuid, p_occurred timestamptz[], p_model_version text, p_kind text)
RETURNS TABLE (window_start timestamptz, window_end timestamptz)
LANGUAGE sql STABLE AS $$
    WITH settings AS (
            SELECT time_zone AS tz, make_interval(days => lookback_days) AS lookback
            FROM tenant_settings WHERE tenant_id = p_tenant),
         spans AS (
            SELECT DISTINCT (t AT TIME ZONE st.tz)::date AS first_day,
                   (GREATEST(t, LEAST(t + st.lookback, now())) AT TIME ZONE st.tz)::date AS last_day
            FROM unnest(p_occurred) AS t, settings AS st),
         days AS (
            SELECT DISTINCT d::date AS day
            FROM spans, generate_series(first_day, last_day, interval '1 day') AS d),
         w AS (
            SELECT day::timestamp AT TIME ZONE st.tz AS ws, (day + 1)::timestamp AT TIME ZONE st.tz AS we
            FROM days, settings AS st)
    SELECT w.ws, w.we FROM w
    WHERE NOT EXISTS (
        SELECT FROM attribution_recompute_jobs r
        JOIN jobs j ON j.tenant_id = r.tenant_id AND j.kind = p_kind AND j.status = 'pending'
                   AND j.dedupe_key = r.id::text
        WHERE r.tenant_id = p_tenant AND r.model_version = p_model_version
          AND r.window_start = w.ws AND r.window_end = w.we)
$$;

-- Same rules and the same barrier contract as in 0014: the caller must already hold the shared
-- ingest lock, taken in an earlier statement of its transaction, so that this statement's
-- snapshot is younger than the lock (see `ingest_barrier` in crates/store/src/recompute.rs). A
-- window whose pending job a worker claims after that snapshot is covered by the barrier: the
-- worker waits for this transaction's shared lock before it reads events. An identity row per
-- window, and a job only for windows that have none pending.
CREATE OR REPLACE FUNCTION tally_schedule_for_events(
    p_tenant uuid, p_occurred timestamptz[], p_model_version text, p_correlation_id text, p_kind text)
RETURNS void
LANGUAGE sql AS $$
    WITH w AS (
            SELECT window_start AS ws, window_end AS we
            FROM tally_unscheduled_windows(p_tenant, p_occurred, p_model_version, p_kind)),
         created AS (
            INSERT INTO attribution_recompute_jobs
                (tenant_id, id, window_start, window_end, model_version, status, last_correlation_id)
            SELECT p_tenant, gen_random_uuid(), ws, we, p_model_version, 'pending', p_correlation_id
            FROM w ORDER BY ws
            ON CONFLICT (tenant_id, window_start, window_end, model_version) DO NOTHING
            RETURNING attribution_recompute_jobs.id),
         ident AS (
            SELECT created.id FROM created
            UNION
            SELECT r.id FROM attribution_recompute_jobs r JOIN w
              ON r.window_start = w.ws AND r.window_end = w.we
            WHERE r.tenant_id = p_tenant AND r.model_version = p_model_version),
         idle AS (
            SELECT ident.id FROM ident
            WHERE NOT EXISTS (SELECT FROM jobs j WHERE j.tenant_id = p_tenant AND j.kind = p_kind
                              AND j.status = 'pending' AND j.dedupe_key = ident.id::text)),
         queued AS (
            INSERT INTO jobs (tenant_id, id, kind, dedupe_key, payload, correlation_id)
            SELECT p_tenant, gen_random_uuid(), p_kind, idle.id::text,
                   jsonb_build_object('recompute_id', idle.id), p_correlation_id
            FROM idle ORDER BY idle.id
            ON CONFLICT (tenant_id, kind, dedupe_key)
                WHERE status = 'pending' AND dedupe_key IS NOT NULL DO NOTHING
            RETURNING jobs.dedupe_key)
    UPDATE attribution_recompute_jobs
    SET status = 'pending', last_correlation_id = p_correlation_id, updated_at = now()
    WHERE tenant_id = p_tenant AND id::text IN (SELECT dedupe_key FROM queued)
$$;

-- As in 0014, except that the schedule is called only when a window lacks a pending job.
CREATE OR REPLACE FUNCTION tally_ingest_events(
    p_tenant uuid, p_id uuid[], p_event_id text[], p_payload_sha256 bytea[], p_kind text[],
    p_event_type text[], p_occurred_at timestamptz[], p_session_id text[], p_anonymous_id text[],
    p_user_id text[], p_order_id text[], p_revenue_cents bigint[], p_currency text[],
    p_channel_code text[], p_utm_source text[], p_utm_medium text[], p_utm_campaign text[],
    p_utm_term text[], p_utm_content text[], p_referrer_host text[], p_click_ids jsonb[],
    p_properties jsonb[], p_correlation_id text[], p_replayed_from uuid[],
    p_model_version text, p_job_correlation_id text, p_recompute_kind text)
RETURNS TABLE (event_id text, id uuid, payload_sha256 bytea, accepted boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    inserted_keys text[];
    inserted_ids uuid[];
    inserted_times timestamptz[];
BEGIN
    PERFORM set_config('app.current_tenant_id', p_tenant::text, true);
    PERFORM pg_advisory_xact_lock_shared(tally_ingest_lock_key(p_tenant));
    WITH ins AS (
        INSERT INTO attribution_events (
            tenant_id, id, event_id, payload_sha256, kind, event_type, occurred_at, session_id,
            anonymous_id, user_id, order_id, revenue_cents, currency, channel_code,
            utm_source, utm_medium, utm_campaign, utm_term, utm_content, referrer_host,
            click_ids, properties, correlation_id, replayed_from)
        SELECT p_tenant, * FROM unnest(
            p_id, p_event_id, p_payload_sha256, p_kind, p_event_type, p_occurred_at, p_session_id,
            p_anonymous_id, p_user_id, p_order_id, p_revenue_cents, p_currency, p_channel_code,
            p_utm_source, p_utm_medium, p_utm_campaign, p_utm_term, p_utm_content, p_referrer_host,
            p_click_ids, p_properties, p_correlation_id, p_replayed_from)
        ON CONFLICT (tenant_id, event_id) DO NOTHING
        RETURNING attribution_events.event_id, attribution_events.id, attribution_events.occurred_at)
    SELECT array_agg(ins.event_id), array_agg(ins.id), array_agg(ins.occurred_at)
    INTO inserted_keys, inserted_ids, inserted_times
    FROM ins;
    inserted_keys := coalesce(inserted_keys, '{}');

    RETURN QUERY
        SELECT k, i, NULL::bytea, true FROM unnest(inserted_keys, inserted_ids) AS a(k, i);
    -- A new statement, so a new snapshot: it sees rows that concurrent writers committed while
    -- the insert above waited for them.
    IF cardinality(inserted_keys) < cardinality(p_event_id) THEN
        RETURN QUERY
            SELECT e.event_id, e.id, e.payload_sha256, false
            FROM attribution_events e
            WHERE e.tenant_id = p_tenant AND e.event_id = ANY (p_event_id)
              AND NOT (e.event_id = ANY (inserted_keys));
    END IF;
    IF EXISTS (SELECT FROM tally_unscheduled_windows(
                   p_tenant, inserted_times, p_model_version, p_recompute_kind)) THEN
        PERFORM tally_schedule_for_events(
            p_tenant, inserted_times, p_model_version, p_job_correlation_id, p_recompute_kind);
    END IF;
END
$$;
