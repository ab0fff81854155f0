-- Allocations are stored one row per conversion, with every model's split of it in arrays,
-- instead of one row per (conversion, model, channel).
--
-- Why: a recompute's first run of the 1 M-event bench day (`tally bench attribution`, 2 cores)
-- spent about half of its 8.3–8.9 s writing 438 k per-channel rows (tuple header, primary-key
-- entry, RLS check and WAL per row; the statement check of 0130). One row per (conversion, model)
-- with channel arrays was tried first and measured: 174 k rows took as long (2.9–4.0 s), because
-- each row still repeated the conversion's key, time, currency and channels eight times, and the
-- bytes written stayed the same. One row per conversion is 21.8 k rows for that day. Every reader
-- wants whole conversions anyway: the detail endpoint, the verified shares (split per
-- conversion and model), the recompute's diff (a new journey or a Markov/Shapley shift rewrites a
-- conversion's splits, not single cells).
--
-- Layout: `channels` are the channels any model credited and `models` the model codes, each in
-- byte order; `cents` and `weights` are models × channels matrices stored row-major as
-- one-dimensional arrays (cell [m][c] at m * cardinality(channels) + c, zero-based), because
-- PostgreSQL's multi-dimensional arrays have no driver support and no cheaper storage. A cell
-- with weight 0 is a channel the model did not credit (the models emit only channels with a
-- positive weight).
--
-- The per-channel shape stays readable as the view `attribution_allocations` (the columns it
-- had), for operators' and analysts' SQL; the application reads the table.
--
-- The database keeps the invariants the per-channel table had, and more:
--   * the arrays have the right lengths and no NULLs; cents >= 0; weights in [0, 1]; channels
--     and models strictly ascending (so each once), channels in the taxonomy;
--   * the conversion is a conversion event of the same tenant with this time and currency, and
--     (new) each model credits a channel and its cents add up to the conversion's revenue, as
--     every model promises, and an uncredited cell (weight 0) holds no cents.

-- Byte order ("C"), the order the recompute sorts channel codes in whatever the database's
-- collation (codes are `[a-z0-9_]`, which a linguistic collation orders differently).
-- PL/pgSQL rather than SQL: a CHECK cannot inline a SQL function, and running its query per row
-- cost 1.3 s for 174 k rows on the bench, this loop 0.1–0.2 s.
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
    model_version  text NOT NULL,
    models         text[] NOT NULL CHECK (
        models <@ ARRAY['first_touch', 'last_touch', 'last_non_direct', 'linear', 'position_based', 'time_decay', 'markov', 'shapley']),
    channels       text[] NOT NULL,
    cents          bigint[] NOT NULL,
    weights        double precision[] NOT NULL,
    currency       char(3) NOT NULL,
    occurred_at    timestamptz NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversion_id, model_version),
    CHECK (cardinality(models) >= 1 AND cardinality(channels) >= 1
           AND array_ndims(models) = 1 AND array_ndims(channels) = 1
           AND array_ndims(cents) = 1 AND array_ndims(weights) = 1
           AND array_lower(cents, 1) = 1 AND array_lower(weights, 1) = 1
           AND cardinality(cents) = cardinality(models) * cardinality(channels)
           AND cardinality(weights) = cardinality(cents)),
    CHECK (array_position(models, NULL) IS NULL AND array_position(channels, NULL) IS NULL
           AND array_position(cents, NULL) IS NULL AND array_position(weights, NULL) IS NULL),
    CHECK (0 <= ALL (cents)),
    CHECK (0 <= ALL (weights) AND 1 >= ALL (weights)),
    CHECK (tally_strictly_ascending(channels) AND tally_strictly_ascending(models))
);
ALTER TABLE attribution_splits ENABLE ROW LEVEL SECURITY;
ALTER TABLE attribution_splits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON attribution_splits USING (tenant_id = tally_current_tenant());
GRANT SELECT, INSERT, DELETE ON attribution_splits TO tally_app;
GRANT SELECT ON attribution_splits TO tally_readonly;

-- 0130's check over the statement's new rows, one per conversion (the primary key), plus the
-- sums: every model credits some channel, its cents add up to the conversion's revenue, and its
-- uncredited cells are empty. The whole check costs 0.45–0.55 s for the bench day's 21.8 k rows
-- (2 cores; the insert itself 0.1 s): the sums loop over local copies of the arrays (indexing the
-- record's fields instead cost 0.5 s, a SQL subquery per row 0.6 s), and the event probes run as
-- one statement whose subquery `OFFSET 0` keeps a nested loop of primary-key probes.
CREATE FUNCTION tally_check_new_splits() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n record;
    cs bigint[];
    ws double precision[];
    width int;
    total bigint;
    model_sum bigint;
    credited boolean;
BEGIN
    FOR n IN SELECT conversion_id, models, channels, cents, weights FROM new_rows LOOP
        cs := n.cents;
        ws := n.weights;
        width := cardinality(n.channels);
        total := NULL;
        FOR m IN 0 .. cardinality(n.models) - 1 LOOP
            model_sum := 0;
            credited := false;
            FOR i IN m * width + 1 .. (m + 1) * width LOOP
                IF ws[i] > 0 THEN
                    credited := true;
                ELSIF cs[i] <> 0 THEN
                    RAISE EXCEPTION 'split of % gives cents to a channel that % did not credit',
                        n.conversion_id, n.models[m + 1]
                        USING ERRCODE = 'check_violation';
                END IF;
                model_sum := model_sum + cs[i];
            END LOOP;
            IF NOT credited OR model_sum <> coalesce(total, model_sum) THEN
                RAISE EXCEPTION 'split of % under % credits no channel or does not add up to the others',
                    n.conversion_id, n.models[m + 1]
                    USING ERRCODE = 'check_violation';
            END IF;
            total := model_sum;
        END LOOP;
    END LOOP;
    -- Every model's total is the first's now; the event must carry it as its revenue.
    SELECT r.conversion_id, r.tenant_id INTO n FROM new_rows r
    WHERE NOT EXISTS (
        SELECT FROM attribution_events e
        WHERE e.tenant_id = r.tenant_id AND e.id = r.conversion_id AND e.kind = 'conversion'
          AND e.occurred_at = r.occurred_at AND e.currency = r.currency
          AND e.revenue_cents = (SELECT sum(c) FROM unnest(r.cents[1 : cardinality(r.channels)]) c)
        OFFSET 0)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'split of % does not match a conversion event of tenant % (time, currency or revenue)',
            n.conversion_id, n.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
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

-- Existing allocations move over: per conversion, the union of its channels, and per model a
-- row of cells (0 where the model did not credit the channel).
INSERT INTO attribution_splits (tenant_id, conversion_id, model_version, models, channels, cents,
                                weights, currency, occurred_at, computed_at)
SELECT k.tenant_id, k.conversion_id, k.model_version, k.models, k.channels, cells.cents,
       cells.weights, k.currency, k.occurred_at, k.computed_at
FROM (SELECT tenant_id, conversion_id, model_version,
             array_agg(DISTINCT model COLLATE "C" ORDER BY model COLLATE "C") AS models,
             array_agg(DISTINCT channel_code COLLATE "C" ORDER BY channel_code COLLATE "C") AS channels,
             min(currency) AS currency, min(occurred_at) AS occurred_at,
             max(computed_at) AS computed_at
      FROM attribution_allocations
      GROUP BY tenant_id, conversion_id, model_version) k
CROSS JOIN LATERAL (
    SELECT array_agg(coalesce(a.allocated_cents, 0) ORDER BY m.i, c.j) AS cents,
           array_agg(coalesce(a.weight, 0) ORDER BY m.i, c.j) AS weights
    FROM unnest(k.models) WITH ORDINALITY AS m(code, i)
    CROSS JOIN unnest(k.channels) WITH ORDINALITY AS c(code, j)
    LEFT JOIN attribution_allocations a
      ON a.tenant_id = k.tenant_id AND a.conversion_id = k.conversion_id
     AND a.model_version = k.model_version AND a.model = m.code AND a.channel_code = c.code) cells;

DROP TABLE attribution_allocations;
DROP FUNCTION tally_check_new_allocations();

CREATE VIEW attribution_allocations WITH (security_invoker = true) AS
SELECT s.tenant_id, s.conversion_id, s.models[(i - 1) / cardinality(s.channels) + 1] AS model,
       s.model_version, s.channels[(i - 1) % cardinality(s.channels) + 1] AS channel_code,
       u.allocated_cents, u.weight, s.currency, s.occurred_at, s.computed_at
FROM attribution_splits s
CROSS JOIN LATERAL unnest(s.cents, s.weights) WITH ORDINALITY AS u(allocated_cents, weight, i)
WHERE u.weight > 0;
GRANT SELECT ON attribution_allocations TO tally_app, tally_readonly;
