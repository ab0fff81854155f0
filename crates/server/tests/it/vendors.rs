//! Payment vendors played over HTTP: webhook endpoints created through the API, payloads shaped
//! like each vendor's (customer PII included, as vendors send it), signed exactly as each vendor
//! signs by `tally_payments::testing`.

use crate::common::TestServer;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tally_payments::Source;
use tally_payments::testing::{
    PayPalSigner, TestHeaders, shopify_headers, stripe_headers, woocommerce_headers,
};

pub const PAYPAL_WEBHOOK_ID: &str = "1JE4291016473214C";

/// A webhook endpoint as a vendor sees it: where to post, what to sign with.
#[derive(Debug, Clone)]
pub struct Hook {
    pub source: Source,
    pub id: String,
    pub path: String,
    /// Absent for PayPal, which signs with [`PayPalSigner::shared`].
    pub secret: Option<String>,
}

impl Hook {
    /// Signs `body` as the vendor would with the endpoint's secret. `topic` and `id` travel in
    /// headers for the vendors that put them there (Shopify's event id, PayPal's transmission
    /// id), and are ignored otherwise.
    pub fn sign(&self, topic: &str, id: &str, body: &[u8]) -> TestHeaders {
        self.sign_with(self.secret.as_deref().unwrap_or_default(), topic, id, body)
    }

    pub fn sign_with(&self, secret: &str, topic: &str, id: &str, body: &[u8]) -> TestHeaders {
        let secret = secret.as_bytes();
        match self.source {
            Source::Shopify => shopify_headers(secret, topic, id, body),
            Source::Stripe => stripe_headers(secret, Utc::now().timestamp(), body),
            Source::PayPal => PayPalSigner::shared().headers(
                PAYPAL_WEBHOOK_ID,
                id,
                &Utc::now().to_rfc3339(),
                body,
            ),
            Source::WooCommerce => woocommerce_headers(secret, topic, body),
        }
    }
}

/// Creates an endpoint for `source` with the server's test key; PayPal's gets the test
/// certificate configured, so verification needs no network.
pub async fn hook(s: &TestServer, source: Source) -> Hook {
    hook_for(s, &s.key, source).await
}

pub async fn hook_for(s: &TestServer, key: &str, source: Source) -> Hook {
    let body = match source {
        Source::PayPal => json!({
            "source": "paypal",
            "paypal_webhook_id": PAYPAL_WEBHOOK_ID,
            "paypal_certificate_pem": PayPalSigner::shared().certificate_pem(),
        }),
        _ => json!({ "source": source.as_str(), "description": "test shop" }),
    };
    let created = s
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            Some(key),
            Some(&body),
            StatusCode::CREATED,
        )
        .await;
    Hook {
        source,
        id: created["endpoint_id"].as_str().unwrap().to_string(),
        path: created["url_path"].as_str().unwrap().to_string(),
        secret: created["secret"].as_str().map(str::to_string),
    }
}

/// Posts a delivery's raw bytes with its headers; asserts the status, returns the body.
pub async fn deliver(
    s: &TestServer,
    path: &str,
    headers: &TestHeaders,
    body: &[u8],
    expect: StatusCode,
) -> Value {
    let mut req = s
        .http
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, expect, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Signs with the hook's secret and delivers, expecting 200; returns the receipt.
pub async fn send(s: &TestServer, hook: &Hook, topic: &str, id: &str, body: &[u8]) -> Value {
    let headers = hook.sign(topic, id, body);
    deliver(s, &hook.path, &headers, body, StatusCode::OK).await
}

/// Every posting of the test tenant's ledger, newest first.
pub async fn ledger(s: &TestServer) -> Vec<Value> {
    ledger_for(s, &s.key).await
}

pub async fn ledger_for(s: &TestServer, key: &str) -> Vec<Value> {
    let page = s
        .call(
            Method::GET,
            "/v1/ledger?limit=500",
            Some(key),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(page["next_cursor"].is_null(), "more than one page: {page}");
    page["items"].as_array().unwrap().clone()
}

fn bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

pub fn shopify_order(id: u64, total: &str, currency: &str, financial_status: &str) -> Vec<u8> {
    bytes(json!({
        "id": id,
        "name": format!("#{}", id % 10_000),
        "email": "buyer@example.com",
        "created_at": "2026-11-20T06:58:01-05:00",
        "processed_at": "2026-11-20T06:58:00-05:00",
        "currency": currency,
        "financial_status": financial_status,
        "total_price": total,
        "customer": {"first_name": "Ada", "last_name": "Lovelace", "phone": "+44 20 7946 0958"},
        "billing_address": {"address1": "1 Main St", "city": "London"},
        "line_items": [{"id": 1, "title": "Widget", "quantity": 1, "price": total}],
    }))
}

/// A Shopify refund returning `amount` through one successful refund transaction.
pub fn shopify_refund(id: u64, order_id: u64, amount: &str, currency: &str) -> Vec<u8> {
    bytes(json!({
        "id": id,
        "order_id": order_id,
        "created_at": "2026-11-20T08:00:00-05:00",
        "processed_at": "2026-11-20T08:00:01-05:00",
        "note": "customer changed their mind",
        "transactions": [{
            "id": id * 10, "order_id": order_id, "kind": "refund", "status": "success",
            "amount": amount, "currency": currency, "gateway": "shopify_payments",
        }],
    }))
}

pub fn stripe_event(id: &str, kind: &str, object: Value) -> Vec<u8> {
    bytes(json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": Utc::now().timestamp() - 2,
        "data": {"object": object},
        "livemode": false,
        "type": kind,
    }))
}

pub fn stripe_intent(id: &str, amount: i64, currency: &str, order_id: &str) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": currency,
        "metadata": {"order_id": order_id},
        "receipt_email": "buyer@example.com",
        "status": "succeeded",
    })
}

/// A captured charge of `intent`; `refunds` (id, amount) oldest first, listed newest first as
/// Stripe does, with the cumulative `amount_refunded`.
pub fn stripe_charge(
    id: &str,
    intent: &str,
    amount: i64,
    currency: &str,
    order_id: &str,
    refunds: &[(&str, i64)],
) -> Value {
    let data: Vec<Value> = refunds
        .iter()
        .rev()
        .map(|(refund_id, refund_amount)| {
            json!({
                "id": refund_id, "object": "refund", "amount": refund_amount, "charge": id,
                "currency": currency, "status": "succeeded",
                "created": Utc::now().timestamp() - 10,
            })
        })
        .collect();
    json!({
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunds.iter().map(|(_, a)| a).sum::<i64>(),
        "captured": true,
        "currency": currency,
        "metadata": {"order_id": order_id},
        "payment_intent": intent,
        "billing_details": {"email": "buyer@example.com", "name": "Ada Lovelace"},
        "refunds": {"object": "list", "data": data, "has_more": false},
        "status": "succeeded",
    })
}

pub fn paypal_event(
    id: &str,
    event_type: &str,
    resource_id: &str,
    value: &str,
    currency: &str,
    custom_id: &str,
) -> Vec<u8> {
    bytes(json!({
        "id": id,
        "event_version": "1.0",
        "create_time": "2026-11-20T11:59:57.000Z",
        "event_type": event_type,
        "resource": {
            "id": resource_id,
            "amount": {"currency_code": currency, "value": value},
            "status": "COMPLETED",
            "custom_id": custom_id,
            "create_time": "2026-11-20T11:59:50Z",
            "update_time": "2026-11-20T11:59:55Z",
            "payer": {"email_address": "buyer@example.com"},
        },
    }))
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
        .map(|(refund_id, total)| json!({"id": refund_id, "reason": "", "total": total}))
        .collect();
    bytes(json!({
        "id": id,
        "number": id.to_string(),
        "status": status,
        "currency": currency,
        "date_created_gmt": "2026-11-20T10:00:00",
        "date_paid_gmt": "2026-11-20T10:00:05",
        "date_modified": modified,
        "date_modified_gmt": modified,
        "total": total,
        "billing": {"first_name": "Ada", "email": "buyer@example.com"},
        "refunds": refunds,
    }))
}
