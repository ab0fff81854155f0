-- A faster exact PII guard. `strict $.** ? (@.type() == "object").keyvalue().key` lists every
-- key at every depth (objects inside arrays included) in one pass of the C jsonpath engine:
-- about 2.6 µs per typical properties document here, against ~10 µs for the text prefilter of
-- 0011 and far more for the recursive walk of 0001. Being exact, it needs no prefilter; the
-- key normalisation is unchanged (lower-case, every character outside a-z0-9 dropped).
CREATE OR REPLACE FUNCTION tally_pii_keys(doc jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT key ORDER BY key), '{}')
    FROM (
        SELECT k #>> '{}' AS key
        FROM jsonb_path_query(doc, 'strict $.** ? (@.type() == "object").keyvalue().key') AS k
    ) AS keys
    WHERE regexp_replace(lower(key), '[^a-z0-9]', '', 'g') = ANY (tally_pii_key_list())
$$;

CREATE OR REPLACE FUNCTION tally_assert_no_pii(doc jsonb, what text, constraint_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE found text[];
BEGIN
    found := tally_pii_keys(doc);
    IF cardinality(found) > 0 THEN
        RAISE EXCEPTION '% holds personal data keys: %', what, array_to_string(found, ', ')
            USING ERRCODE = 'check_violation', CONSTRAINT = constraint_name,
                  HINT = 'remove personal data (e-mail, phone, names, addresses, card numbers, IPs) before sending';
    END IF;
END
$$;

DROP FUNCTION tally_pii_key_pattern();
