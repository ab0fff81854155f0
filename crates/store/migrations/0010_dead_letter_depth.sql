-- The operator may count open dead letters across tenants for the `tally_dead_events_open`
-- gauge. Column-level grants keep it to (tenant_id, status): payloads and errors stay
-- tenant-only even for the operator.
GRANT SELECT (tenant_id, status) ON dead_events TO tally_operator;
CREATE POLICY operator_counts_depth ON dead_events FOR SELECT TO tally_operator USING (true);
