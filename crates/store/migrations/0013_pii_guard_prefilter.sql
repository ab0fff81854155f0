-- PII guard, layer 2, at a cost the ingestion path can carry.
--
-- Measured on the 2-core machine, per inserted row: the plpgsql trigger of 0012 cost ~24 µs,
-- more than the table's seven indexes together (~7 µs), because `PERFORM tally_assert_no_pii()`
-- runs a new SPI query per row and the SQL function inside it is parsed and planned again on
-- every call. Here the triggers gain a WHEN clause that PostgreSQL evaluates in C without
-- calling any function: one jsonpath pass that lists every key at every depth and matches it
-- against one regular expression built from `tally_pii_key_list()` (~5 µs per row). Only a
-- document that holds a listed key reaches the plpgsql function, which names the keys exactly
-- and raises as before.
--
-- The expression means the same as the normalisation of 0001 (lower-case ASCII, every
-- character other than a-z and 0-9 ignored): each listed key's characters in order, in either
-- case, with any run of other characters before, between and after them (flag "s": a newline
-- inside a key is such a character too, not a line break that stops the match). It is built once here
-- and stored in the trigger definitions as a constant; a migration that changes the key list
-- must recreate these triggers with `tally_pii_key_jsonpath()` again (the store tests check
-- that every listed key, decorated, is caught by the stored triggers).
CREATE FUNCTION tally_pii_key_jsonpath() RETURNS jsonpath
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT format(
        'strict $.** ? (@.type() == "object").keyvalue() ? (@.key like_regex %s flag "is")',
        to_json('^[^a-zA-Z0-9]*('
            || string_agg(array_to_string(regexp_split_to_array(k, ''), '[^a-zA-Z0-9]*'), '|')
            || ')[^a-zA-Z0-9]*$')
    )::jsonpath
    FROM unnest(tally_pii_key_list()) AS k
$$;

DO $$
DECLARE
    path text := quote_literal(tally_pii_key_jsonpath()::text);
BEGIN
    DROP TRIGGER attribution_events_no_pii ON attribution_events;
    EXECUTE format(
        'CREATE TRIGGER attribution_events_no_pii BEFORE INSERT ON attribution_events
            FOR EACH ROW WHEN (NEW.properties @? %s::jsonpath)
            EXECUTE FUNCTION attribution_events_refuse_pii()', path);
    DROP TRIGGER dead_events_no_pii ON dead_events;
    EXECUTE format(
        'CREATE TRIGGER dead_events_no_pii BEFORE INSERT OR UPDATE OF payload ON dead_events
            FOR EACH ROW WHEN (NEW.payload @? %s::jsonpath)
            EXECUTE FUNCTION dead_events_refuse_pii()', path);
    DROP TRIGGER webhook_deliveries_no_pii ON webhook_deliveries;
    EXECUTE format(
        'CREATE TRIGGER webhook_deliveries_no_pii BEFORE INSERT OR UPDATE OF payload ON webhook_deliveries
            FOR EACH ROW WHEN (NEW.payload @? %s::jsonpath)
            EXECUTE FUNCTION webhook_deliveries_refuse_pii()', path);
END
$$;
