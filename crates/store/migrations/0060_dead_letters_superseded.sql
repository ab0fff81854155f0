-- Dead letters superseded by a later acceptance (issue 12, section 3).
--
-- A dead letter is a refused event kept for a replay. When the same `event_id` is later
-- accepted (a fixed re-send, or a replay of another copy), the dead letter has nothing left to
-- do, but it stayed `open` forever, counted in `tally_dead_events_open` and picked up by bulk
-- replays (which then answered `duplicate`). Ingestion now closes it in the same transaction:
-- status `superseded`, `replayed_event_id` naming the event that superseded it.

ALTER TABLE dead_events DROP CONSTRAINT dead_events_status_check;
ALTER TABLE dead_events ADD CONSTRAINT dead_events_status_check
    CHECK (status IN ('open', 'replayed', 'discarded', 'superseded'));
ALTER TABLE dead_events DROP CONSTRAINT dead_events_check;
ALTER TABLE dead_events ADD CONSTRAINT dead_events_replayed_event_link
    CHECK ((status IN ('replayed', 'superseded')) = (replayed_event_id IS NOT NULL));

-- The lookup ingestion makes per write: open dead letters by key.
CREATE INDEX dead_events_open_by_event_id ON dead_events (tenant_id, event_id)
    WHERE status = 'open' AND event_id IS NOT NULL;

-- As in 0015, plus closing the open dead letters of the accepted keys.
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
                   p_tenant, inserted_times, p_model_version, p_recompute_kind)) THEN
        PERFORM tally_schedule_for_events(
            p_tenant, inserted_times, p_model_version, p_job_correlation_id, p_recompute_kind);
    END IF;
END
$$;
