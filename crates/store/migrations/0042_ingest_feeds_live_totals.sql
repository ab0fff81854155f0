-- Ingestion feeds the live totals: the conversions an ingest statement accepted become one
-- `live_deltas` row per (quarter hour, currency), inserted by the same statement (a data-modifying
-- CTE over the rows the INSERT returned), so a conversion is in the realtime totals the moment
-- its transaction commits. Only an INSERT of new rows: no row is shared between concurrent
-- ingest transactions. Otherwise unchanged from 0015.

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
