-- Ingestion in one statement: the insert, the idempotency answers and the recompute schedule of
-- a group of events, as one function call.
--
-- Why a function: a group-committed write used to be seven round trips (BEGIN, the tenant
-- setting, INSERT, the window query, the advisory lock, the enqueue, COMMIT). Measured with
-- `tally bench ingest` on the 2-core machine, PostgreSQL spent most of each group's time
-- waiting for the next statement while the server's two threads were busy parsing requests, so
-- the group commit was bound by round trips, not by work. Called outside a transaction, this
-- function is one round trip and one implicit transaction; called inside one (a batch with dead
-- letters, a replay) it joins it.

-- The advisory lock key that orders ingestion (shared, until commit) against the start of a
-- recompute (exclusive, momentary: the worker's barrier).
CREATE FUNCTION tally_ingest_lock_key(tenant uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended(tenant::text || '/ingest', 0)
$$;

-- Schedules the tenant-day windows that events at `occurred` can change: each event's day
-- through the day of min(occurred + lookback, now), in the tenant's time zone (PostgreSQL does
-- the DST arithmetic, so a day may be 23 or 25 hours). An identity row per window, and a job
-- only for windows that have none pending, which during a burst is none: then nothing is
-- written or locked.
--
-- The caller must already hold the shared ingest lock, taken in an earlier statement of its
-- transaction: this statement's snapshot must be younger than the lock, so that a worker that
-- passed the barrier before the lock was granted is seen as having claimed its job, and a new
-- job is enqueued (see `ingest_barrier` in crates/store/src/recompute.rs).
CREATE FUNCTION tally_schedule_for_events(
    p_tenant uuid, p_occurred timestamptz[], p_model_version text, p_correlation_id text, p_kind text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_occurred), 0) = 0 THEN
        RETURN;
    END IF;
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
            FROM days, settings AS st),
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
    WHERE tenant_id = p_tenant AND id::text IN (SELECT dedupe_key FROM queued);
END
$$;

-- Writes a group of valid events for one tenant and answers, per distinct event_id, what is
-- stored under it: `accepted` rows were inserted by this call; the others already existed (or
-- were committed by a concurrent writer while this insert waited on the unique index), with the
-- stored payload hash so the caller can tell a duplicate from an idempotency conflict. The key is
-- claimed by the insert itself, in the same transaction as the write. Accepted events schedule
-- their recompute windows in the same transaction.
CREATE FUNCTION tally_ingest_events(
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
    PERFORM tally_schedule_for_events(
        p_tenant, inserted_times, p_model_version, p_job_correlation_id, p_recompute_kind);
END
$$;
