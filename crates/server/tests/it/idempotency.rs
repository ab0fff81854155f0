//! `Idempotency-Key` on creating POSTs: same key and body → the first answer again; another
//! body → 409; a failed request stores nothing.

use crate::common::{TestServer, assert_problem};
use crate::events::tenant_scalar;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn adjustment(cents: i64) -> Value {
    json!({"amount_cents": cents, "currency": "EUR", "order_id": "1001", "reason": "paid by bank transfer"})
}

async fn post_with_key(s: &TestServer, path: &str, key: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .bearer_auth(&s.key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retried_adjustment_is_answered_once_and_posted_once() {
    let s = TestServer::start().await;
    let first = post_with_key(&s, "/v1/ledger/adjustments", "k-1", &adjustment(1500)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first: Value = first.json().await.unwrap();
    let again = post_with_key(&s, "/v1/ledger/adjustments", "k-1", &adjustment(1500)).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM revenue_ledger").await,
        1
    );

    // The same key with another body is a client bug, not a new request.
    let other = post_with_key(&s, "/v1/ledger/adjustments", "k-1", &adjustment(1600)).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_problem(&other.json().await.unwrap(), 409, "idempotency_conflict");

    // Concurrent retries with one key run the handler once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, key) = (
                s.http.clone(),
                s.url("/v1/ledger/adjustments"),
                s.key.clone(),
            );
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(key)
                    .header("Idempotency-Key", "k-2")
                    .json(&adjustment(700))
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.json::<Value>().await.unwrap()["id"].clone())
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one posting, one id: {ids:?}");
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM revenue_ledger").await,
        2
    );
}

#[tokio::test]
async fn a_failed_request_stores_nothing_under_its_key() {
    let s = TestServer::start().await;
    let invalid =
        json!({"amount_cents": 1500, "currency": "NOPE", "order_id": "1001", "reason": "x"});
    let r = post_with_key(&s, "/v1/ledger/adjustments", "k-3", &invalid).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Fixed and sent again with the same key: a new request, not a conflict or a replay.
    let r = post_with_key(&s, "/v1/ledger/adjustments", "k-3", &adjustment(1500)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(!r.headers().contains_key("idempotent-replayed"));
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM idempotency_keys").await,
        1
    );

    // Keys are per route and per tenant: the same key elsewhere is unrelated.
    let r = post_with_key(
        &s,
        "/v1/keys",
        "k-3",
        &json!({"name": "ci", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let r = post_with_key(
        &s,
        "/v1/keys",
        "k-3",
        &json!({"name": "ci", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(
        r.json::<Value>().await.unwrap()["key_id"],
        created["key_id"]
    );

    let bad = post_with_key(
        &s,
        "/v1/keys",
        &"x".repeat(256),
        &json!({"scopes": ["read"]}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_problem(&bad.json().await.unwrap(), 400, "bad_request");
}
