-- Recomputes write every allocation of a window (438 k rows for the 1 M-event bench day), and the
-- write was most of the recompute. Measured on the 2-core bench machine, 480 k rows into
-- attribution_allocations: 14.1 s with the three per-row foreign keys, 4.3 s without them: each
-- row fired three RI triggers, one SPI query apiece.
--
-- 1. The per-row foreign keys become one statement-level check over the statement's new rows,
--    on the distinct conversions, channels and tenants only (≈ 22 k, 8 and 1 per bench day).
--    It checks more than the keys did: the conversion is a conversion event of the same tenant
--    and the allocation carries that event's time and currency, which the rollups rely on.
--    Nothing the keys guarded against deleting can be deleted: events are append-only (0004),
--    tally_app cannot delete taxonomy rows or tenants.
-- 2. verified_allocations goes: a job spreads each order's verified net over its allocations in
--    memory and folds the result straight into the hour rollups (crates/store/src/rollups.rs),
--    which were its only reader. Jobs work on windows cut at local hour boundaries
--    (tally_local_hour_cover), so no rollup bucket is shared with a neighbouring window.

ALTER TABLE attribution_allocations
    DROP CONSTRAINT attribution_allocations_channel_code_fkey,
    DROP CONSTRAINT attribution_allocations_tenant_id_conversion_id_fkey,
    DROP CONSTRAINT attribution_allocations_tenant_id_fkey;

CREATE FUNCTION tally_check_new_allocations() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    -- One primary-key probe per distinct conversion, in a loop rather than one anti-join: the
    -- planner knows nothing of a transition table and, right after a bulk load, little of
    -- attribution_events, and a join it got wrong cost 24 s for 100 k rows on the bench.
    FOR n IN SELECT DISTINCT tenant_id, conversion_id, occurred_at, currency FROM new_rows LOOP
        PERFORM FROM attribution_events e
        WHERE e.tenant_id = n.tenant_id AND e.id = n.conversion_id AND e.kind = 'conversion'
          AND e.occurred_at = n.occurred_at AND e.currency = n.currency;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'allocation of % does not match a conversion event of tenant %',
                n.conversion_id, n.tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    FOR n IN SELECT DISTINCT channel_code FROM new_rows LOOP
        PERFORM FROM channel_taxonomy t WHERE t.code = n.channel_code;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'allocation to unknown channel %', n.channel_code
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER attribution_allocations_checked AFTER INSERT ON attribution_allocations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION tally_check_new_allocations();

DROP TABLE verified_allocations;

-- The smallest window cut at the tenant's local hour boundaries (see tally_local_hour) that
-- covers [s, e).
CREATE FUNCTION tally_local_hour_cover(s timestamptz, e timestamptz, tz text,
                                       OUT cover_start timestamptz, OUT cover_end timestamptz)
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT tally_local_hour(s, tz),
           CASE WHEN tally_local_hour(e, tz) = e THEN e
                ELSE tally_local_hour(e, tz) + interval '1 hour' END
$$;
GRANT EXECUTE ON FUNCTION tally_local_hour_cover(timestamptz, timestamptz, text)
    TO tally_app, tally_readonly;
