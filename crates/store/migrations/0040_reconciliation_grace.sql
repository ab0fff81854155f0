-- How long a tracked order may wait for its payment before reconciliation calls it
-- `tracked_not_paid` (until then it is `awaiting_payment`): card payments settle in seconds, but
-- bank transfers, invoices and cash on delivery take days, so the default is three days.
ALTER TABLE tenant_settings
    ADD COLUMN reconciliation_grace_hours integer NOT NULL DEFAULT 72
        CHECK (reconciliation_grace_hours BETWEEN 0 AND 8760);
