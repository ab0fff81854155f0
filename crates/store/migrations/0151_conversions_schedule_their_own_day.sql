-- A conversion schedules the recompute of its own day only; a touch, as before, its day through
-- the day of min(touch + lookback, now).
--
-- Why: a conversion's journey is the touches before it, and a conversion is in no other
-- conversion's journey nor in any other window's non-converting paths (those are the window's
-- own touches: `tally_attribution::journey`), so it changes no other day's allocations; a merge
-- of shoppers it carries schedules the days it changes from the recompute that folds it
-- (crates/worker/src/recompute.rs). Scheduling the whole lookback after every conversion made a
-- backfilled order (or the bench's sale on a past day) queue up to 30 day recomputes ahead of,
-- and around, the one that attributes it: on the 1 M-event bench day the sale waited 8–10 s for
-- its figures.
--
-- `p_reach` is parallel to `p_occurred`: whether each event reaches forward (a touch); NULL
-- (callers that write events by other means, `recompute::schedule_for_events`) means every
-- event does, the old rule. The ingest function below is 0140's with the kinds passed on.

DROP FUNCTION tally_schedule_for_events(uuid, timestamptz[], text, text, text);
DROP FUNCTION tally_unscheduled_windows(uuid, timestamptz[], text, text);

CREATE FUNCTION tally_unscheduled_windows(
    p_tenant uuid, p_occurred timestamptz[], p_model_version text, p_kind text,
    p_reach boolean[] DEFAULT NULL)
RETURNS TABLE (window_start timestamptz, window_end timestamptz)
LANGUAGE sql STABLE AS $$
    WITH settings AS (
            SELECT time_zone AS tz, make_interval(days => lookback_days) AS lookback
            FROM tenant_settings WHERE tenant_id = p_tenant),
         spans AS (
            SELECT DISTINCT (t AT TIME ZONE st.tz)::date AS first_day,
                   (CASE WHEN r IS FALSE THEN t
                         ELSE GREATEST(t, LEAST(t + st.lookback, now())) END
                    AT TIME ZONE st.tz)::date AS last_day
            FROM unnest(p_occurred, p_reach) AS u(t, r), settings AS st),
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

CREATE FUNCTION tally_schedule_for_events(
    p_tenant uuid, p_occurred timestamptz[], p_model_version text, p_correlation_id text, p_kind text,
    p_reach boolean[] DEFAULT NULL)
RETURNS void
LANGUAGE sql AS $$
    WITH w AS (
            SELECT window_start AS ws, window_end AS we
            FROM tally_unscheduled_windows(p_tenant, p_occurred, p_model_version, p_kind, p_reach)),
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

-- 0140's, passing on which accepted events are touches.
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
    inserted_reach boolean[];
    v_links_seq bigint;
BEGIN
    PERFORM set_config('app.current_tenant_id', p_tenant::text, true);
    PERFORM pg_advisory_xact_lock_shared(tally_ingest_lock_key(p_tenant));
    -- Drawn under the lock (the fold's horizon relies on it), and only for tenants that stitch.
    SELECT nextval('identity_links_seq') INTO v_links_seq
    FROM tenant_settings s WHERE s.tenant_id = p_tenant AND s.identity_cross_session;
    WITH ins AS (
        INSERT INTO attribution_events (
            tenant_id, id, event_id, payload_sha256, kind, event_type, occurred_at, session_id,
            anonymous_id, user_id, order_id, revenue_cents, currency, channel_code,
            utm_source, utm_medium, utm_campaign, utm_term, utm_content, referrer_host,
            click_ids, properties, correlation_id, replayed_from, links_seq)
        SELECT p_tenant, u.*, v_links_seq FROM unnest(
            p_id, p_event_id, p_payload_sha256, p_kind, p_event_type, p_occurred_at, p_session_id,
            p_anonymous_id, p_user_id, p_order_id, p_revenue_cents, p_currency, p_channel_code,
            p_utm_source, p_utm_medium, p_utm_campaign, p_utm_term, p_utm_content, p_referrer_host,
            p_click_ids, p_properties, p_correlation_id, p_replayed_from) AS u
        ON CONFLICT (tenant_id, event_id) DO NOTHING
        RETURNING attribution_events.event_id, attribution_events.id, attribution_events.occurred_at,
                  attribution_events.kind, attribution_events.revenue_cents,
                  attribution_events.currency, attribution_events.received_at),
    live AS (
        INSERT INTO live_deltas (tenant_id, stream, bucket_start, currency, events, cents, last_at)
        SELECT p_tenant, 'tracked', tally_quarter_hour(ins.occurred_at), ins.currency, count(*),
               sum(ins.revenue_cents), max(ins.received_at)
        FROM ins WHERE ins.kind = 'conversion'
          -- `tally bench read` measures this CTE's cost by switching it off for one arm of its
          -- A/B (a transaction-local setting no application path sets).
          AND current_setting('tally.bench_skip_live_totals', true) IS DISTINCT FROM 'on'
        GROUP BY 3, 4)
    SELECT array_agg(ins.event_id), array_agg(ins.id), array_agg(ins.occurred_at),
           array_agg(ins.kind = 'touch')
    INTO inserted_keys, inserted_ids, inserted_times, inserted_reach
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
    -- Open dead letters of the keys just accepted are superseded by them (replays excepted:
    -- their caller marks them replayed). A read-only probe first, so that the common case
    -- (no open dead letter for these keys) pays no UPDATE start-up.
    IF EXISTS (SELECT FROM dead_events d
               WHERE d.tenant_id = p_tenant AND d.status = 'open' AND d.source = 'api'
                 AND d.event_id = ANY (inserted_keys)) THEN
        UPDATE dead_events d
        SET status = 'superseded', replayed_event_id = a.i, updated_at = now()
        FROM unnest(inserted_keys, inserted_ids) AS a(k, i)
        WHERE d.tenant_id = p_tenant AND d.status = 'open' AND d.source = 'api'
          AND d.event_id = a.k
          AND NOT (d.id = ANY (array_remove(p_replayed_from, NULL)));
    END IF;
    IF EXISTS (SELECT FROM tally_unscheduled_windows(
                   p_tenant, inserted_times, p_model_version, p_recompute_kind, inserted_reach)) THEN
        PERFORM tally_schedule_for_events(
            p_tenant, inserted_times, p_model_version, p_job_correlation_id, p_recompute_kind,
            inserted_reach);
    END IF;
END
$$;
