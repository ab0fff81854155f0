-- Identity stitching costs ingestion (almost) nothing (issue 13: at most 5 %). Migration 0100 had
-- every ingest statement append its events' id triples to `identity_links`: an INSERT … ON
-- CONFLICT of a row per new (session, anonymous, user) combination, with two indexes, which cost
-- batch ingestion 8.6 % and single events 7.4 % (`tally bench ingest`, release, 2 cores).
--
-- The links an event carries are in the event row already, so ingestion now only stamps each
-- accepted event with one number per statement, `links_seq`, drawn from `identity_links_seq`
-- under the shared ingest lock (NULL when the tenant does not stitch across sessions: such events
-- never link, as before). The recompute of a window, which reads every event of its span anyway,
-- derives the triples of the events stamped after the window's own mark and up to its barrier's
-- horizon, and folds them (crates/store/src/identity.rs). The mark lives on the window's
-- recompute row (`links_folded_through`), because each window folds its own events; every
-- accepted event schedules the recompute of its own day, so each event's links are folded by that
-- run, and a merge schedules the days it changes as before. The horizon argument of 0100 carries
-- over unchanged: every number drawn before the barrier's read of the sequence belongs to a
-- transaction that has ended.
--
-- `identity_links` keeps the explicit links of `POST /v1/identify` (and the event links that 0100
-- wrote, folded by the tenant-wide mark as before).

ALTER TABLE attribution_events ADD COLUMN links_seq bigint;
COMMENT ON COLUMN attribution_events.links_seq IS
    'identity_links_seq value of the ingest statement that accepted the event (NULL: the tenant '
    'did not stitch across sessions then); the window''s recompute folds the ids the event links';

ALTER TABLE attribution_recompute_jobs
    ADD COLUMN links_folded_through bigint NOT NULL DEFAULT 0;

-- 0100's function without its `links` CTE, stamping `links_seq` instead.
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
