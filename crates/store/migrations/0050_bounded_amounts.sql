-- Every amount is bounded at the door by tally_core::money::MAX_AMOUNT_MINOR (10^13 minor units)
-- so that no sum a tenant can reach overflows bigint; these checks are the database's second line
-- for the same bound. NOT VALID: the tables are append-only, so rows written before the bound
-- existed stay as they are, and only new rows are checked (without a scan of the old ones).
-- BETWEEN rather than abs(): abs() of the smallest bigint is itself out of range.
ALTER TABLE attribution_events
    ADD CONSTRAINT attribution_events_revenue_bounded
        CHECK (revenue_cents <= 10000000000000) NOT VALID;

ALTER TABLE revenue_ledger
    ADD CONSTRAINT revenue_ledger_amount_bounded
        CHECK (amount_cents BETWEEN -10000000000000 AND 10000000000000) NOT VALID;
