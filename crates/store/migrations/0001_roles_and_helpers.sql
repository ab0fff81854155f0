-- Roles, shared helper functions and the default privileges every later migration relies on.
--
-- Roles are cluster-wide, so they are created only when missing: a DATABASE_URL user without
-- CREATEROLE can still migrate when an operator created these roles beforehand.
--   tally_app       runtime login for tenant data. Not the owner, not superuser, no BYPASSRLS:
--                   every query it runs is filtered by row-level security.
--   tally_operator  cross-tenant metadata only (tenant list, the job queue); never reads events,
--                   money or keys of a tenant other than the one it sets.
--   tally_readonly  analysts' read-only login, still subject to RLS.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tally_app') THEN
        CREATE ROLE tally_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tally_operator') THEN
        CREATE ROLE tally_operator LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tally_readonly') THEN
        CREATE ROLE tally_readonly LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO tally_app, tally_operator, tally_readonly;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;

-- The tenant a transaction acts for. `NULLIF(.., '')` because after a transaction-local
-- set_config a pooled session keeps the setting as '' rather than unset; both mean "no tenant",
-- and a policy comparing with NULL matches no row (no error, no rows).
CREATE FUNCTION tally_current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NULLIF(current_setting('app.current_tenant_id', true), '')::uuid
$$;

-- UUID v7 (time-ordered) for rows created by SQL; the application generates its own v7 ids.
CREATE FUNCTION tally_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

-- Append-only guard, shared by the money and event tables: the runtime role has no UPDATE or
-- DELETE grant, and this trigger also stops the owner (and anyone granted more later).
CREATE FUNCTION tally_refuse_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is refused; corrections are new rows (a reversing or adjusting entry)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation', HINT = 'insert a correcting row instead';
END
$$;

CREATE FUNCTION tally_pii_key_list() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['email', 'emailaddress', 'phone', 'phonenumber', 'telephone', 'telephonenumber', 'tel', 'mobile', 'mobilenumber', 'mobilephone', 'cellphone', 'msisdn', 'firstname', 'lastname', 'fullname', 'middlename', 'surname', 'givenname', 'familyname', 'customername', 'address', 'streetaddress', 'street', 'addressline1', 'addressline2', 'homeaddress', 'billingaddress', 'shippingaddress', 'postaladdress', 'mailingaddress', 'ssn', 'socialsecuritynumber', 'nationalid', 'nationalinsurancenumber', 'passportnumber', 'driverslicense', 'driverslicensenumber', 'dateofbirth', 'birthdate', 'birthday', 'dob', 'ip', 'ipaddress', 'cardnumber', 'creditcard', 'creditcardnumber', 'ccnumber', 'pan', 'cvv', 'cvc', 'iban']::text[]
$$;

-- PII keys: a JSON key is personal data when, lower-cased with every character outside a-z0-9
-- removed, it is in this list. Kept identical to `tally_core::pii::PII_KEYS` (a test compares
-- them). The walk visits objects inside arrays too, at any depth.
CREATE FUNCTION tally_pii_keys(doc jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH RECURSIVE walk(v) AS (
        SELECT doc
        UNION ALL
        SELECT child.v
        FROM walk,
        LATERAL (
            SELECT value AS v FROM jsonb_each(CASE WHEN jsonb_typeof(walk.v) = 'object' THEN walk.v END)
            UNION ALL
            SELECT value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(walk.v) = 'array' THEN walk.v END)
        ) AS child
        WHERE jsonb_typeof(child.v) IN ('object', 'array')
    )
    SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
    FROM walk, LATERAL jsonb_object_keys(CASE WHEN jsonb_typeof(walk.v) = 'object' THEN walk.v END) AS k
    WHERE regexp_replace(lower(k), '[^a-z0-9]', '', 'g') = ANY (tally_pii_key_list())
$$;

-- Raises when a document holds PII keys. Each guarded table has its own trigger function that
-- passes its own column here, so no shared trigger reads a column some table lacks.
CREATE FUNCTION tally_assert_no_pii(doc jsonb, what text, constraint_name text) RETURNS void
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
