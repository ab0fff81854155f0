-- The revenue ledger: append-only postings of verified money. A tenant's verified revenue is the
-- sum of its postings; a correction is a new posting (an adjustment, optionally reversing one).

CREATE TABLE revenue_ledger (
    tenant_id       uuid NOT NULL REFERENCES tenants (tenant_id),
    id              uuid NOT NULL,
    source          text NOT NULL CHECK (source IN ('shopify', 'stripe', 'paypal', 'woocommerce', 'manual')),
    -- The provider's id of the financial fact (payment intent, capture, refund, dispute); with
    -- source and entry_type it makes a posting idempotent across different deliveries.
    external_id     text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
    entry_type      text NOT NULL CHECK (entry_type IN ('payment', 'refund', 'chargeback', 'adjustment')),
    amount_cents    bigint NOT NULL,
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    order_id        text CHECK (length(order_id) <= 255),
    occurred_at     timestamptz NOT NULL,
    posted_at       timestamptz NOT NULL DEFAULT now(),
    delivery_id     uuid,
    reverses_id     uuid,
    reason          text CHECK (length(reason) <= 1000),
    correlation_id  text NOT NULL CHECK (length(correlation_id) BETWEEN 1 AND 128),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source, external_id, entry_type),
    FOREIGN KEY (tenant_id, reverses_id) REFERENCES revenue_ledger (tenant_id, id),
    -- Signs follow the money: payments add, refunds and chargebacks subtract.
    CHECK (entry_type <> 'payment' OR amount_cents >= 0),
    CHECK (entry_type NOT IN ('refund', 'chargeback') OR amount_cents <= 0),
    -- A manual correction always says why.
    CHECK (entry_type <> 'adjustment' OR (source = 'manual' AND reason IS NOT NULL))
);
CREATE INDEX revenue_ledger_by_order ON revenue_ledger (tenant_id, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX revenue_ledger_by_time ON revenue_ledger (tenant_id, occurred_at DESC, id DESC);
ALTER TABLE revenue_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE revenue_ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON revenue_ledger USING (tenant_id = tally_current_tenant());
CREATE TRIGGER revenue_ledger_append_only BEFORE UPDATE OR DELETE ON revenue_ledger
    FOR EACH ROW EXECUTE FUNCTION tally_refuse_mutation();
CREATE TRIGGER revenue_ledger_no_truncate BEFORE TRUNCATE ON revenue_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION tally_refuse_mutation();

GRANT SELECT, INSERT ON revenue_ledger TO tally_app;
GRANT SELECT ON revenue_ledger, webhook_deliveries TO tally_readonly;
