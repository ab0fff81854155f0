-- Allocations are stored one row per (conversion, model) with the channels, cents and weights as
-- parallel arrays, instead of one row per (conversion, model, channel).
--
-- Why: a recompute's first run of the 1 M-event bench day (`tally bench attribution`, 2 cores)
-- spent most of its 8.3 s writing 438 k per-channel rows; the same allocations are 174 k rows
-- this way, and each row's fixed cost (tuple header, primary-key entry, WAL record, RLS check)
-- was most of the price: in one psql session the 174 k array rows went in in 1.0 s against
-- 3.26 s for the per-channel rows. A recompute's diff reads and compares a conversion's split
-- under one model as a whole anyway (a model re-splits all of a journey's channels at once), and
-- every reader wants all channels of a split (the detail endpoint, the verified shares).
--
-- The per-channel shape stays readable as the view `attribution_allocations` (the columns it
-- had), for operators' and analysts' SQL; the application reads the table.
--
-- The database keeps the invariants the per-channel table had, and one more:
--   * the arrays are parallel, non-empty, without NULLs; cents >= 0; weights in [0, 1];
--   * channels are strictly ascending (so unique: one entry per channel, as the old primary key
--     said), and every channel exists in the taxonomy (statement trigger below);
--   * the conversion is a conversion event of the same tenant with this time and currency, and
--     (new) the split's cents add up to the conversion's revenue, as every model promises.

-- Byte order ("C"), the order the recompute sorts channel codes in whatever the database's
-- collation (codes are `[a-z0-9_]`, which a linguistic collation orders differently).
-- PL/pgSQL rather than SQL: a CHECK cannot inline a SQL function, and running its query per row
-- cost 1.3 s for the bench day's 174 k rows, this loop 0.1–0.2 s.
CREATE FUNCTION tally_strictly_ascending(a text[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF cardinality(a) < 2 THEN
        RETURN true;
    END IF;
    FOR i IN array_lower(a, 1) + 1 .. array_upper(a, 1) LOOP
        IF a[i - 1] >= a[i] COLLATE "C" THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;

CREATE TABLE attribution_splits (
    tenant_id      uuid NOT NULL,
    conversion_id  uuid NOT NULL,
    model          text NOT NULL CHECK (model IN ('first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay', 'markov', 'shapley')),
    model_version  text NOT NULL,
    channels       text[] NOT NULL,
    cents          bigint[] NOT NULL,
    weights        double precision[] NOT NULL,
    currency       char(3) NOT NULL,
    occurred_at    timestamptz NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversion_id, model, model_version),
    CHECK (cardinality(channels) >= 1 AND array_ndims(channels) = 1
           AND cardinality(cents) = cardinality(channels) AND array_ndims(cents) = 1
           AND cardinality(weights) = cardinality(channels) AND array_ndims(weights) = 1),
    CHECK (array_position(channels, NULL) IS NULL AND array_position(cents, NULL) IS NULL
           AND array_position(weights, NULL) IS NULL),
    CHECK (0 <= ALL (cents)),
    CHECK (0 <= ALL (weights) AND 1 >= ALL (weights)),
    CHECK (tally_strictly_ascending(channels))
);
ALTER TABLE attribution_splits ENABLE ROW LEVEL SECURITY;
ALTER TABLE attribution_splits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attribution_splits USING (tenant_id = tally_current_tenant());
GRANT SELECT, INSERT, DELETE ON attribution_splits TO tally_app;
GRANT SELECT ON attribution_splits TO tally_readonly;

-- The checks of 0130 over the statement's new rows, per distinct conversion and channel, plus
-- the sum: a conversion whose models' cents disagree with its revenue gives a second DISTINCT
-- row that finds no event.
CREATE FUNCTION tally_check_new_splits() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    FOR n IN SELECT DISTINCT tenant_id, conversion_id, occurred_at, currency,
                    (SELECT sum(c) FROM unnest(cents) c) AS total
             FROM new_rows LOOP
        PERFORM FROM attribution_events e
        WHERE e.tenant_id = n.tenant_id AND e.id = n.conversion_id AND e.kind = 'conversion'
          AND e.occurred_at = n.occurred_at AND e.currency = n.currency
          AND e.revenue_cents = n.total;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'split of % does not match a conversion event of tenant % (time, currency or revenue)',
                n.conversion_id, n.tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    FOR n IN SELECT DISTINCT unnest(channels) AS channel_code FROM new_rows LOOP
        PERFORM FROM channel_taxonomy t WHERE t.code = n.channel_code;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'allocation to unknown channel %', n.channel_code
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER attribution_splits_checked AFTER INSERT ON attribution_splits
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION tally_check_new_splits();

INSERT INTO attribution_splits (tenant_id, conversion_id, model, model_version, channels, cents,
                                weights, currency, occurred_at, computed_at)
SELECT tenant_id, conversion_id, model, model_version,
       array_agg(channel_code ORDER BY channel_code COLLATE "C"),
       array_agg(allocated_cents ORDER BY channel_code COLLATE "C"),
       array_agg(weight ORDER BY channel_code COLLATE "C"),
       currency, occurred_at, max(computed_at)
FROM attribution_allocations
GROUP BY tenant_id, conversion_id, model, model_version, currency, occurred_at;

DROP TABLE attribution_allocations;
DROP FUNCTION tally_check_new_allocations();

CREATE VIEW attribution_allocations WITH (security_invoker = true) AS
SELECT s.tenant_id, s.conversion_id, s.model, s.model_version, u.channel_code,
       u.allocated_cents, u.weight, s.currency, s.occurred_at, s.computed_at
FROM attribution_splits s
CROSS JOIN LATERAL unnest(s.channels, s.cents, s.weights) AS u(channel_code, allocated_cents, weight);
GRANT SELECT ON attribution_allocations TO tally_app, tally_readonly;
