-- Per-endpoint order id prefix, and what the reconciliation status page shows of each endpoint.

-- Prepended to the order ids of the endpoint's postings, so that two shops of one tenant whose
-- order ids overlap (WooCommerce numbers orders per site) stay distinct orders. Fixed at creation:
-- changing it later would split one order's postings across two ids.
ALTER TABLE webhook_endpoints
    ADD COLUMN order_id_prefix text CHECK (order_id_prefix ~ '^[A-Za-z0-9._:-]{1,32}$');

-- Failed verifications, counted on the endpoint a request named (never its body): a wrong secret
-- after a rotation shows here before revenue goes missing.
ALTER TABLE webhook_endpoints
    ADD COLUMN verification_failures bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_failure_at timestamptz,
    ADD COLUMN last_failure_reason text CHECK (length(last_failure_reason) <= 200);

-- Per-endpoint delivery counts and revenue, read from these without touching the rows.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id)
    INCLUDE (id, status, received_at);
CREATE INDEX revenue_ledger_by_delivery ON revenue_ledger (tenant_id, delivery_id)
    INCLUDE (currency, amount_cents) WHERE delivery_id IS NOT NULL;
