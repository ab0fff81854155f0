//! The ledger API: filters and cursors, adjustments and reversals that never edit a posting, the
//! runtime role's lack of UPDATE/DELETE, and tenant isolation.

use crate::common::{TestServer, assert_problem};
use crate::vendors::{hook, ledger, send};
use crate::webhooks::rows;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tally_payments::Source;
use tally_payments::testing::payloads::{shopify_order, shopify_refund};
use tally_store::TenantId;

/// Posts one Shopify payment for order `id` and returns its ledger entry.
async fn paid_order(s: &TestServer, id: u64, total: &str) -> Value {
    let shop = hook(s, Source::Shopify).await;
    send(
        s,
        &shop,
        "orders/paid",
        &format!("e{id}"),
        &shopify_order(id, total, "USD", "paid"),
    )
    .await;
    let page = s
        .get(&format!("/v1/ledger?order_id={id}"), StatusCode::OK)
        .await;
    page["items"][0].clone()
}

#[tokio::test]
async fn a_reversal_is_a_new_row_and_leaves_the_original_untouched() {
    let s = TestServer::start().await;
    let original = paid_order(&s, 500, "80.00").await;
    let id = original["id"].as_str().unwrap();

    let reversal = s
        .post(
            "/v1/ledger/adjustments",
            &json!({"reverses_id": id, "reason": "test order, never shipped"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(reversal["source"], "manual");
    assert_eq!(reversal["entry_type"], "adjustment");
    assert_eq!(reversal["amount_cents"], -8000);
    assert_eq!(reversal["currency"], "USD");
    assert_eq!(reversal["order_id"], "500");
    assert_eq!(reversal["reverses_id"], id);
    assert_eq!(reversal["reason"], "test order, never shipped");
    assert!(reversal["correlation_id"].is_string());

    let entries = ledger(&s).await;
    assert_eq!(entries.len(), 2);
    let kept = entries.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(kept, &original, "the reversed posting changed");
    let order = s.get("/v1/orders/500", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 0}])
    );

    // Reversing twice would count the correction twice.
    let problem = s
        .post(
            "/v1/ledger/adjustments",
            &json!({"reverses_id": id, "reason": "again"}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_problem(&problem, 409, "conflict");
    assert_eq!(ledger(&s).await.len(), 2);
}

#[tokio::test]
async fn adjustments_need_a_reason_an_amount_and_a_posting_of_this_tenant() {
    let s = TestServer::start().await;
    let added = s
        .post(
            "/v1/ledger/adjustments",
            &json!({"amount_cents": 1234, "currency": "kwd", "order_id": "o-1",
                    "reason": "bank transfer outside the processors",
                    "occurred_at": "2026-11-01T00:00:00Z"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(added["currency"], "KWD");
    assert_eq!(added["occurred_at"], "2026-11-01T00:00:00Z");

    for (body, why) in [
        (
            json!({"amount_cents": 5, "currency": "USD", "reason": " "}),
            "reason",
        ),
        (json!({"currency": "USD", "reason": "r"}), "amount"),
        (
            json!({"amount_cents": 0, "currency": "USD", "reason": "r"}),
            "zero",
        ),
        (
            json!({"amount_cents": 5, "currency": "ZZZ", "reason": "r"}),
            "currency",
        ),
        (json!({"amount_cents": 5, "reason": "r"}), "no currency"),
        (
            json!({"reverses_id": uuid::Uuid::now_v7(), "reason": "r"}),
            "unknown posting",
        ),
    ] {
        let problem = s
            .post(
                "/v1/ledger/adjustments",
                &body,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert_eq!(problem["code"], "validation_failed", "{why}: {problem}");
    }

    // Another tenant's posting cannot be reversed from here.
    let (_, other) = s.t.db.create_tenant("Other shop").await.unwrap();
    let problem = s
        .call(
            Method::POST,
            "/v1/ledger/adjustments",
            Some(&other.secret),
            Some(&json!({"reverses_id": added["id"], "reason": "r"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&problem, 422, "validation_failed");

    // Reading needs `read`, adjusting needs `admin`.
    let reader = s
        .post(
            "/v1/keys",
            &json!({"scopes": ["read"]}),
            StatusCode::CREATED,
        )
        .await;
    let reader = reader["secret"].as_str().unwrap();
    s.call(
        Method::GET,
        "/v1/ledger",
        Some(reader),
        None,
        StatusCode::OK,
    )
    .await;
    s.call(
        Method::POST,
        "/v1/ledger/adjustments",
        Some(reader),
        Some(&json!({"amount_cents": 1, "currency": "USD", "reason": "r"})),
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn the_runtime_role_cannot_update_or_delete_postings() {
    let s = TestServer::start().await;
    let original = paid_order(&s, 600, "15.00").await;
    // The API has no route that would edit or delete a posting.
    let path = format!("/v1/ledger/{}", original["id"].as_str().unwrap());
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let resp = s
            .http
            .request(method, s.url(&path))
            .bearer_auth(&s.key)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    // And the role the API runs as is refused by the database itself.
    let tenant: TenantId = s.tenant_id.parse().unwrap();
    for sql in [
        "UPDATE revenue_ledger SET amount_cents = 1",
        "DELETE FROM revenue_ledger",
        "UPDATE webhook_deliveries SET status = 'ignored'",
    ] {
        let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
        let err = sqlx::query(sql).execute(&mut *tx).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    assert_eq!(ledger(&s).await, [original]);
}

async fn count(s: &TestServer, query: &str) -> usize {
    let page = s.get(&format!("/v1/ledger?{query}"), StatusCode::OK).await;
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn ledger_filters_and_cursor_pages_newest_first() {
    let s = TestServer::start().await;
    let shop = hook(&s, Source::Shopify).await;
    send(
        &s,
        &shop,
        "orders/paid",
        "p1",
        &shopify_order(1, "10.00", "USD", "paid"),
    )
    .await;
    send(
        &s,
        &shop,
        "refunds/create",
        "r1",
        &shopify_refund(11, 1, "USD", &[("refund", "success", "2.00")]),
    )
    .await;
    for day in 1..=5 {
        s.post(
            "/v1/ledger/adjustments",
            &json!({"amount_cents": day, "currency": "USD", "reason": "r", "order_id": "o-adj",
                    "occurred_at": format!("2026-10-0{day}T00:00:00Z")}),
            StatusCode::CREATED,
        )
        .await;
    }
    let all = ledger(&s).await;
    assert_eq!(all.len(), 7);
    let keys: Vec<(String, String)> = all
        .iter()
        .map(|e| {
            (
                e["occurred_at"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "not newest first");

    // Pages of two walk the same rows in the same order, each once.
    let mut walked = Vec::new();
    let mut path = "/v1/ledger?limit=2".to_string();
    loop {
        let page = s.get(&path, StatusCode::OK).await;
        walked.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/ledger?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, all);

    assert_eq!(count(&s, "source=shopify").await, 2);
    assert_eq!(count(&s, "entry_type=refund").await, 1);
    assert_eq!(count(&s, "order_id=o-adj").await, 5);
    let window = "from=2026-10-02T00:00:00Z&to=2026-10-04T00:00:00Z";
    assert_eq!(count(&s, window).await, 2);

    let problem = s
        .get(
            "/v1/ledger?cursor=bm90LWEtY3Vyc29y",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&problem, 422, "validation_failed");
    let problem = s
        .get("/v1/ledger?limit=0", StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_problem(&problem, 422, "validation_failed");
    let problem = s
        .get("/v1/ledger?colour=red", StatusCode::BAD_REQUEST)
        .await;
    assert_problem(&problem, 400, "invalid_query");
    assert_eq!(
        s.get("/v1/orders/nope", StatusCode::NOT_FOUND).await["code"],
        "not_found"
    );
    // The inbox kept one row per delivery, each with the request's correlation id.
    let inbox = rows(&s, "SELECT correlation_id FROM webhook_deliveries").await;
    assert_eq!(inbox.len(), 2);
    assert!(inbox.iter().all(|r| r["correlation_id"].is_string()));
}
