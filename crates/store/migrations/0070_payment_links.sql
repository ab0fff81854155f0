-- Refunds and chargebacks that name their payment but not its order (a Stripe dispute names its
-- charge, a PayPal refund links to its capture) still land on the order, whichever of the two
-- arrives first.
--
-- Every vendor posting records `payment_ref`, the provider's id of the payment it belongs to.
-- When a reversal arrives after its payment, the insert sets `reverses_id` and copies the
-- payment's order id. When it arrives first, the append-only row cannot be completed later, so the
-- link is derived instead: `revenue_ledger_resolved` finds the payment by `payment_ref` at read
-- time. A derived link cannot miss a payment committed concurrently with its refund, which a link
-- table written at insert time could.
ALTER TABLE revenue_ledger
    ADD COLUMN payment_ref text CHECK (length(payment_ref) BETWEEN 1 AND 255);
CREATE INDEX revenue_ledger_by_payment_ref ON revenue_ledger (tenant_id, source, payment_ref)
    WHERE payment_ref IS NOT NULL;
CREATE INDEX revenue_ledger_by_reverses ON revenue_ledger (tenant_id, reverses_id)
    WHERE reverses_id IS NOT NULL;
-- Orphan listings scan only postings without an order id of their own.
CREATE INDEX revenue_ledger_without_order ON revenue_ledger (tenant_id, occurred_at DESC, id DESC)
    WHERE order_id IS NULL;

-- The payment a refund or chargeback names by `payment_ref` (the first posted, should a vendor
-- ever repeat one), or no row. Runs as the caller, so row-level security applies.
CREATE FUNCTION revenue_ledger_payment(p_tenant uuid, p_source text, p_payment_ref text, p_entry_type text)
RETURNS TABLE (id uuid, order_id text)
LANGUAGE sql STABLE AS $$
    SELECT p.id, p.order_id FROM revenue_ledger p
    WHERE p_entry_type IN ('refund', 'chargeback')
      AND p.tenant_id = p_tenant AND p.source = p_source AND p.payment_ref = p_payment_ref
      AND p.entry_type = 'payment'
    ORDER BY p.posted_at, p.id
    LIMIT 1
$$;

-- Every posting with the order it belongs to and the posting it reverses, as if every delivery
-- had arrived in order: its own order id, else that of the posting it reverses (explicitly, or
-- through `payment_ref`), else, when that posting is itself a reversal that arrived before its
-- payment (a manual reversal of such a refund), that payment's.
CREATE VIEW revenue_ledger_resolved WITH (security_invoker = true) AS
SELECT l.*,
       coalesce(l.order_id, target.order_id, target_payment.order_id) AS resolved_order_id,
       target.id AS resolved_reverses_id
FROM revenue_ledger l
LEFT JOIN LATERAL revenue_ledger_payment(l.tenant_id, l.source, l.payment_ref, l.entry_type) payment
    ON l.reverses_id IS NULL
LEFT JOIN revenue_ledger target
    ON target.tenant_id = l.tenant_id AND target.id = coalesce(l.reverses_id, payment.id)
LEFT JOIN LATERAL revenue_ledger_payment(target.tenant_id, target.source, target.payment_ref,
                                         target.entry_type) target_payment
    ON target.order_id IS NULL;

-- Postings that belong to no order: no order id of their own and none to resolve to.
CREATE VIEW revenue_ledger_orphans WITH (security_invoker = true) AS
SELECT * FROM revenue_ledger_resolved
WHERE order_id IS NULL AND resolved_order_id IS NULL;

GRANT SELECT ON revenue_ledger_resolved, revenue_ledger_orphans TO tally_app, tally_readonly;
