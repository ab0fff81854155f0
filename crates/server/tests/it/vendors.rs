//! Payment vendors played over HTTP: webhook endpoints created through the API, and deliveries
//! signed exactly as each vendor signs by `tally_payments::testing`. The bodies come from
//! `tally_payments::testing::payloads`, shaped like what each vendor really sends (customer PII
//! included) and shared with the vendor-level tests of `tally-payments`.

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
