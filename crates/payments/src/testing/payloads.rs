//! Webhook bodies shaped like what each vendor really sends, shared by this crate's vendor-level
//! tests and the server's HTTP tests, so that both run the same payloads through the parsers (one
//! copy to correct when a vendor's format is better understood).
//!
//! Each body carries the fields Tally reads, fields it ignores, and the customer's personal data
//! that vendors include (e-mail, name, phone, address), which the server must never keep. Times
//! inside the bodies are fixed a little before [`now`], so parsing is deterministic.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

/// The payloads' clock, 2026-11-20T12:00:00Z: every time inside a body lies shortly before it,
/// and the vendor-level tests verify signatures at it.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

fn bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("a JSON value serialises")
}

/// A Shopify order (`orders/create`, `orders/paid`, ...).
pub fn shopify_order(id: u64, total: &str, currency: &str, financial_status: &str) -> Vec<u8> {
    bytes(json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "name": format!("#{}", id % 10_000),
        "email": "buyer@example.com",
        "created_at": "2026-11-20T06:58:01-05:00",
        "processed_at": "2026-11-20T06:58:00-05:00",
        "updated_at": "2026-11-20T06:58:03-05:00",
        "currency": currency,
        "presentment_currency": currency,
        "financial_status": financial_status,
        "subtotal_price": total,
        "total_tax": "0.00",
        "total_price": total,
        "customer": {"first_name": "Ada", "last_name": "Lovelace", "phone": "+44 20 7946 0958"},
        "billing_address": {"address1": "1 Main St", "city": "London"},
        "line_items": [{"id": 1, "title": "Widget", "quantity": 1, "price": total}],
    }))
}

/// A Shopify refund (`refunds/create`) of `order_id`; `transactions` are (kind, status, amount).
pub fn shopify_refund(
    id: u64,
    order_id: u64,
    currency: &str,
    transactions: &[(&str, &str, &str)],
) -> Vec<u8> {
    let transactions: Vec<Value> = transactions
        .iter()
        .enumerate()
        .map(|(i, (kind, status, amount))| {
            json!({
                "id": id * 10 + i as u64,
                "order_id": order_id,
                "kind": kind,
                "gateway": "shopify_payments",
                "status": status,
                "amount": amount,
                "currency": currency,
                "parent_id": 801_038_806,
            })
        })
        .collect();
    bytes(json!({
        "id": id,
        "order_id": order_id,
        "created_at": "2026-11-20T08:00:00-05:00",
        "processed_at": "2026-11-20T08:00:01-05:00",
        "note": "customer changed their mind",
        "restock": true,
        "refund_line_items": [],
        "transactions": transactions,
    }))
}

/// A Stripe event of type `kind` about `object`; `previous` is the `previous_attributes` Stripe
/// sends with events that change an object, `charge.refunded` among them.
pub fn stripe_event(id: &str, kind: &str, object: Value, previous: Option<Value>) -> Vec<u8> {
    let mut data = json!({ "object": object });
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    bytes(json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now().timestamp() - 2,
        "data": data,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": "req_123", "idempotency_key": null},
        "type": kind,
    }))
}

/// A succeeded PaymentIntent; the merchant's order id travels in `metadata.order_id`.
pub fn stripe_payment_intent(id: &str, amount: i64, currency: &str, order_id: &str) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount,
        "currency": currency,
        "latest_charge": format!("ch_{id}"),
        "metadata": {"order_id": order_id},
        "receipt_email": "buyer@example.com",
        "status": "succeeded",
        "created": now().timestamp() - 60,
    })
}

/// A captured charge of `payment_intent`, with `metadata.order_id` when `order_id` is given;
/// `refunds` are (id, amount), oldest first, listed newest first as Stripe does, with
/// `amount_refunded` their sum.
pub fn stripe_charge(
    id: &str,
    payment_intent: &str,
    amount: i64,
    currency: &str,
    order_id: Option<&str>,
    refunds: &[(&str, i64)],
) -> Value {
    let data: Vec<Value> = refunds
        .iter()
        .rev()
        .map(|(refund_id, refund_amount)| {
            json!({
                "id": refund_id,
                "object": "refund",
                "amount": refund_amount,
                "charge": id,
                "currency": currency,
                "payment_intent": payment_intent,
                "status": "succeeded",
                "created": now().timestamp() - 10,
            })
        })
        .collect();
    let metadata = match order_id {
        Some(order_id) => json!({ "order_id": order_id }),
        None => json!({}),
    };
    json!({
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunds.iter().map(|(_, a)| a).sum::<i64>(),
        "billing_details": {"email": "buyer@example.com", "name": "Ada Lovelace"},
        "captured": true,
        "currency": currency,
        "metadata": metadata,
        "paid": true,
        "payment_intent": payment_intent,
        "refunded": false,
        "refunds": {"object": "list", "data": data, "has_more": false, "total_count": refunds.len()},
        "status": "succeeded",
        "created": now().timestamp() - 60,
    })
}

/// A dispute (`charge.dispute.created`) of `charge`, whose metadata names the order only when
/// `order_id` is given (merchants rarely copy it there).
pub fn stripe_dispute(
    id: &str,
    charge: &str,
    payment_intent: Option<&str>,
    amount: i64,
    currency: &str,
    order_id: Option<&str>,
) -> Value {
    let metadata = match order_id {
        Some(order_id) => json!({ "order_id": order_id }),
        None => json!({}),
    };
    json!({
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "currency": currency,
        "evidence": {"customer_email_address": "buyer@example.com", "customer_name": "Ada Lovelace"},
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": metadata,
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": "needs_response",
        "created": now().timestamp() - 5,
    })
}

/// A PayPal webhook event of `event_type` about `resource` (see [`paypal_resource`]).
pub fn paypal_event(id: &str, event_type: &str, resource: Value) -> Vec<u8> {
    bytes(json!({
        "id": id,
        "event_version": "1.0",
        "create_time": "2026-11-20T11:59:57.000Z",
        "resource_type": if event_type.ends_with("REFUNDED") { "refund" } else { "capture" },
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": "Payment completed",
        "resource": resource,
        "links": [{"href": format!("https://api.paypal.com/v1/notifications/webhooks-events/{id}"), "rel": "self", "method": "GET"}],
    }))
}

/// A completed PayPal capture or refund of `value` (a decimal string, as PayPal sends money);
/// `custom_id` is the merchant's order reference, and without it the invoice id stands in.
pub fn paypal_resource(id: &str, value: &str, currency: &str, custom_id: Option<&str>) -> Value {
    json!({
        "id": id,
        "amount": {"currency_code": currency, "value": value},
        "final_capture": true,
        "seller_protection": {"status": "ELIGIBLE"},
        "status": "COMPLETED",
        "custom_id": custom_id,
        "invoice_id": "INV-2026-0042",
        "create_time": "2026-11-20T11:59:50Z",
        "update_time": "2026-11-20T11:59:55Z",
        "payer": {"email_address": "buyer@example.com"},
        "links": [],
    })
}

/// A completed PayPal refund of the capture `capture_id`, as `PAYMENT.CAPTURE.REFUNDED` carries
/// it: no merchant reference of its own, only the `up` link to its capture.
pub fn paypal_refund(id: &str, value: &str, currency: &str, capture_id: &str) -> Value {
    json!({
        "id": id,
        "amount": {"currency_code": currency, "value": value},
        "seller_payable_breakdown": {"gross_amount": {"currency_code": currency, "value": value}},
        "status": "COMPLETED",
        "create_time": "2026-11-20T11:59:50Z",
        "update_time": "2026-11-20T11:59:55Z",
        "links": [
            {"href": format!("https://api.paypal.com/v2/payments/refunds/{id}"), "rel": "self", "method": "GET"},
            {"href": format!("https://api.paypal.com/v2/payments/captures/{capture_id}"), "rel": "up", "method": "GET"},
        ],
    })
}

/// A WooCommerce order snapshot; `refunds` are (id, total) with WooCommerce's negative totals.
pub fn woo_order(
    id: u64,
    status: &str,
    total: &str,
    currency: &str,
    modified: &str,
    refunds: &[(u64, &str)],
) -> Vec<u8> {
    let refunds: Vec<Value> = refunds
        .iter()
        .map(|(refund_id, refund_total)| json!({"id": refund_id, "reason": "", "total": refund_total}))
        .collect();
    bytes(json!({
        "id": id,
        "parent_id": 0,
        "number": id.to_string(),
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "status": status,
        "currency": currency,
        "date_created": "2026-11-20T11:00:00",
        "date_created_gmt": "2026-11-20T10:00:00",
        "date_modified": modified,
        "date_modified_gmt": modified,
        "date_paid": "2026-11-20T11:00:05",
        "date_paid_gmt": "2026-11-20T10:00:05",
        "total": total,
        "total_tax": "0.00",
        "payment_method": "stripe",
        "billing": {"first_name": "Ada", "email": "buyer@example.com"},
        "line_items": [{"id": 315, "name": "Woo Single", "quantity": 1, "total": total}],
        "refunds": refunds,
    }))
}
