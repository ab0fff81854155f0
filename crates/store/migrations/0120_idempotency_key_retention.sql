-- Idempotency keys are kept 24 hours (Stripe's retention), then pruned by the workers' upkeep
-- (issue 12). The runtime role still only reads and inserts them; the operator role, which
-- already prunes the job queue, may delete a key only once it is older than the retention:
-- the policies below make the database itself refuse an early deletion, and the operator sees
-- a key's identity and age, never the stored request hash or response.

GRANT SELECT (tenant_id, route, key, created_at) ON idempotency_keys TO tally_operator;
GRANT DELETE ON idempotency_keys TO tally_operator;

CREATE POLICY operator_sees_expired ON idempotency_keys FOR SELECT TO tally_operator
    USING (created_at < now() - interval '24 hours');
CREATE POLICY operator_prunes_expired ON idempotency_keys FOR DELETE TO tally_operator
    USING (created_at < now() - interval '24 hours');
