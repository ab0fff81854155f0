-- Identity stitching (issue 13 §1): the ids an event carries together (session, anonymous,
-- user) or that `POST /v1/identify` names belong to one shopper, and a conversion's journey is
-- the touches of every id of its shopper.
--
-- Ingestion stays lean: it only appends the distinct id triples of the events it accepted to
-- `identity_links` (no graph work, no read of earlier links). The recompute job folds the links
-- that committed since its last fold into `identity_members` (union-find in Rust,
-- crates/attribution/src/identity.rs) before it reads its window, under the tenant's recompute
-- lock, so folds of one tenant never run at once.
--
-- Which links are new is decided by a high-water mark on `seq`, which is safe because every
-- writer of links holds the tenant's ingest lock shared while it draws from the sequence, and the
-- fold reads the sequence's `last_value` while it holds that lock exclusively (the recompute's
-- ingest barrier): every value drawn before that read belongs to a transaction that has ended,
-- and every value drawn later is larger. A mark on time or on the application's ids would skip
-- links whose transactions commit out of order.

ALTER TABLE tenant_settings
    -- Off: journeys stay inside one session and ingestion records no links from events
    -- (explicit `POST /v1/identify` links are still kept, unused until it is turned on).
    ADD COLUMN identity_cross_session boolean NOT NULL DEFAULT true,
    -- A link that would make a shopper of more ids than this is refused and reported: one
    -- kiosk or bot must not merge thousands of shoppers into one journey.
    ADD COLUMN identity_max_component_ids integer NOT NULL DEFAULT 100
        CHECK (identity_max_component_ids BETWEEN 2 AND 10000);

CREATE SEQUENCE identity_links_seq AS bigint;

-- One row per distinct (session, anonymous, user) triple ever seen together; at least two are
-- set. NULLS NOT DISTINCT so that the thousandth page view of a session adds no row.
CREATE TABLE identity_links (
    tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id),
    seq           bigint NOT NULL DEFAULT nextval('identity_links_seq'),
    session_id    text,
    anonymous_id  text,
    user_id       text,
    -- When the first event (or identify call) carrying the triple happened.
    occurred_at   timestamptz NOT NULL,
    source        text NOT NULL CHECK (source IN ('event', 'identify')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    CONSTRAINT identity_links_triple UNIQUE NULLS NOT DISTINCT
        (tenant_id, session_id, anonymous_id, user_id),
    CHECK ((session_id IS NOT NULL)::int + (anonymous_id IS NOT NULL)::int
           + (user_id IS NOT NULL)::int >= 2)
);
ALTER SEQUENCE identity_links_seq OWNED BY identity_links.seq;
ALTER TABLE identity_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_links USING (tenant_id = tally_current_tenant());
CREATE TRIGGER identity_links_append_only BEFORE UPDATE OR DELETE ON identity_links
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_mutation();
CREATE TRIGGER identity_links_no_truncate BEFORE TRUNCATE ON identity_links
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_mutation();
GRANT SELECT, INSERT ON identity_links TO tally_app;
GRANT SELECT ON identity_links TO tally_readonly;
-- USAGE for nextval; SELECT for the fold's read of last_value.
GRANT USAGE, SELECT ON SEQUENCE identity_links_seq TO tally_app;

-- The folded graph: each id that ever took part in an accepted link, and its component, named by
-- the component's smallest id (prefixed `s:`, `a:`, `u:` by kind), so the name does not depend on
-- the order links arrived in. Derived state, rewritten by the fold (like the rollups).
CREATE TABLE identity_members (
    tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id),
    identity    text NOT NULL,
    component   text NOT NULL,
    PRIMARY KEY (tenant_id, identity)
);
CREATE INDEX identity_members_by_component ON identity_members (tenant_id, component);
ALTER TABLE identity_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_members USING (tenant_id = tally_current_tenant());
GRANT SELECT, INSERT, UPDATE ON identity_members TO tally_app;
GRANT SELECT ON identity_members TO tally_readonly;

-- How far the tenant's links are folded.
CREATE TABLE identity_fold_marks (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    folded_through  bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id)
);
ALTER TABLE identity_fold_marks ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_fold_marks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_fold_marks USING (tenant_id = tally_current_tenant());
GRANT SELECT, INSERT, UPDATE ON identity_fold_marks TO tally_app;
GRANT SELECT ON identity_fold_marks TO tally_readonly;

-- Links the component cap refused: which two ids, how big each side was, and the cap then.
CREATE TABLE identity_rejected_links (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    link_seq        bigint NOT NULL,
    identity        text NOT NULL,
    other_identity  text NOT NULL,
    component_ids   integer NOT NULL,
    other_ids       integer NOT NULL,
    max_ids         integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, link_seq, identity, other_identity)
);
CREATE INDEX identity_rejected_links_by_time ON identity_rejected_links (tenant_id, rejected_at DESC);
ALTER TABLE identity_rejected_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_rejected_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity_rejected_links USING (tenant_id = tally_current_tenant());
CREATE TRIGGER identity_rejected_links_append_only BEFORE UPDATE OR DELETE ON identity_rejected_links
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_mutation();
CREATE TRIGGER identity_rejected_links_no_truncate BEFORE TRUNCATE ON identity_rejected_links
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_mutation();
GRANT SELECT, INSERT ON identity_rejected_links TO tally_app;
GRANT SELECT ON identity_rejected_links TO tally_readonly;

-- A merge schedules the days holding a conversion of the merged shopper: conversions by their
-- first id. Partial, so only conversions (a few percent of events) pay for it at ingestion.
CREATE INDEX attribution_events_conversions_by_identity ON attribution_events
    (tenant_id, (COALESCE(user_id, anonymous_id, session_id)), occurred_at)
    WHERE kind = 'conversion';

-- 0085's function with one more data-modifying CTE, `links`: the accepted events' distinct id
-- triples that carry two or more ids, for tenants that stitch across sessions. Inserted in
-- triple order, so that two group commits appending overlapping triples wait for each other in
-- one order rather than deadlock (their events are all inserted before any link: the GROUP BY
-- consumes `ins` whole first).
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
                  attribution_events.currency, attribution_events.received_at,
                  attribution_events.session_id, attribution_events.anonymous_id,
                  attribution_events.user_id),
    live AS (
        INSERT INTO live_deltas (tenant_id, stream, bucket_start, currency, events, cents, last_at)
        SELECT p_tenant, 'tracked', tally_quarter_hour(ins.occurred_at), ins.currency, count(*),
               sum(ins.revenue_cents), max(ins.received_at)
        FROM ins WHERE ins.kind = 'conversion'
          -- `tally bench read` measures this CTE's cost by switching it off for one arm of its
          -- A/B (a transaction-local setting no application path sets).
          AND current_setting('tally.bench_skip_live_totals', true) IS DISTINCT FROM 'on'
        GROUP BY 3, 4),
    links AS (
        INSERT INTO identity_links (tenant_id, session_id, anonymous_id, user_id, occurred_at, source)
        SELECT p_tenant, ins.session_id, ins.anonymous_id, ins.user_id, min(ins.occurred_at), 'event'
        FROM ins
        WHERE (ins.anonymous_id IS NOT NULL OR ins.user_id IS NOT NULL)
          AND EXISTS (SELECT FROM tenant_settings s
                      WHERE s.tenant_id = p_tenant AND s.identity_cross_session)
        GROUP BY 2, 3, 4
        ORDER BY 2, 3, 4
        ON CONFLICT ON CONSTRAINT identity_links_triple DO NOTHING)
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
