//! Signed deliveries never get a 5xx for their content, two shops of one tenant never collide,
//! and each endpoint reports its health.

use crate::common::TestServer;
use crate::vendors::{Hook, deliver, hook, ledger, send};
use crate::webhooks::rows;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tally_payments::Source;
use tally_payments::testing::payloads::{
    shopify_refund, stripe_dispute, stripe_event, stripe_payment_intent, woo_order,
};
use tally_store::TenantId;
use tally_store::webhooks::endpoint_health;

/// Delivers `body` signed by `hook`, expecting it dead-lettered (202); returns the dead letter.
async fn dead_lettered(s: &TestServer, hook: &Hook, topic: &str, body: &[u8]) -> Value {
    let headers = hook.sign(topic, "evt-dead", body);
    let receipt = deliver(s, &hook.path, &headers, body, StatusCode::ACCEPTED).await;
    assert_eq!(receipt["status"], "dead_lettered", "{receipt}");
    let dead = rows(
        s,
        &format!(
            "SELECT error_code, errors, payload FROM dead_events WHERE event_id = '{}'",
            receipt["delivery_id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(dead.len(), 1);
    // The vendor's retry of the same bytes is a duplicate, not a second dead letter.
    let again = deliver(s, &hook.path, &headers, body, StatusCode::OK).await;
    assert_eq!(again["status"], "duplicate");
    dead[0].clone()
}

#[tokio::test]
async fn a_woocommerce_nul_escape_is_dead_lettered_without_the_nul() {
    let s = TestServer::start().await;
    let woo = hook(&s, Source::WooCommerce).await;
    let mut body = woo_order(31, "processing", "10.00", "USD", "2026-11-20T10:00:05", &[]);
    // PHP's json_encode writes binary meta data as \u0000 escapes, in values and in names.
    let at = body.len() - 1;
    body.splice(
        at..at,
        *br#","meta_data":[{"key":"_bin\u0000","value":"a\u0000b"}]"#,
    );
    let dead = dead_lettered(&s, &woo, "order.updated", &body).await;
    assert_eq!(dead["error_code"], "nul_character");
    assert_eq!(
        dead["payload"]["meta_data"],
        json!([{"key": "_bin", "value": "ab"}])
    );
    assert_eq!(dead["payload"]["id"], 31);
    assert!(ledger(&s).await.is_empty());
}

#[tokio::test]
async fn a_stripe_order_id_longer_than_the_ledger_keeps_is_dead_lettered() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    // Stripe allows 500 characters in a metadata value.
    let intent = stripe_payment_intent("pi_L", 1000, "usd", &"7".repeat(500));
    let body = stripe_event("evt_L", "payment_intent.succeeded", intent, None);
    let dead = dead_lettered(&s, &stripe, "", &body).await;
    assert_eq!(dead["error_code"], "invalid_field");
    let message = dead["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("order_id: 500 characters"), "{message}");
    assert!(ledger(&s).await.is_empty());
}

#[tokio::test]
async fn an_amount_beyond_i64_is_dead_lettered_not_clamped() {
    let s = TestServer::start().await;
    let shop = hook(&s, Source::Shopify).await;
    let max = "92233720368547758.07";
    let body = shopify_refund(
        5,
        6,
        "USD",
        &[("refund", "success", max), ("refund", "success", max)],
    );
    let dead = dead_lettered(&s, &shop, "refunds/create", &body).await;
    assert_eq!(dead["error_code"], "invalid_amount");
    let stripe = hook(&s, Source::Stripe).await;
    let intent = stripe_payment_intent("pi_min", i64::MIN, "usd", "o");
    let body = stripe_event("evt_min", "payment_intent.succeeded", intent, None);
    assert_eq!(
        dead_lettered(&s, &stripe, "", &body).await["error_code"],
        "invalid_amount"
    );
    assert!(ledger(&s).await.is_empty());
}

#[tokio::test]
async fn whatever_the_database_refuses_is_dead_lettered_not_a_5xx() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    // Year −7537: a valid unix time, but before PostgreSQL's first timestamp (4713 BC).
    let mut dispute = stripe_dispute("du_T", "ch_T", None, 100, "usd", None);
    dispute["created"] = json!(-300_000_000_000_i64);
    let body = stripe_event("evt_T", "charge.dispute.created", dispute, None);
    let dead = dead_lettered(&s, &stripe, "", &body).await;
    assert_eq!(dead["error_code"], "unstorable");
    let message = dead["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("out of range"), "{message}");
    // Only the hash is kept, since the payload itself may be what was refused.
    assert_eq!(dead["payload"]["raw_sha256"].as_str().unwrap().len(), 64);
    assert!(ledger(&s).await.is_empty());
}

#[tokio::test]
async fn two_woocommerce_shops_of_one_tenant_keep_their_own_order_727() {
    let s = TestServer::start().await;
    let first = hook(&s, Source::WooCommerce).await;
    let created = s
        .post(
            "/v1/webhook-endpoints",
            &json!({"source": "woocommerce", "description": "second shop", "order_id_prefix": "shop2-"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(created["order_id_prefix"], "shop2-");
    let second = Hook {
        source: Source::WooCommerce,
        id: created["endpoint_id"].as_str().unwrap().to_string(),
        path: created["url_path"].as_str().unwrap().to_string(),
        secret: created["secret"].as_str().map(str::to_string),
    };
    // The same order id, modification time and status in both shops.
    let order = |total: &str| {
        woo_order(
            727,
            "completed",
            total,
            "USD",
            "2026-11-20T11:00:00",
            &[(728, "-1.00")],
        )
    };
    for (shop, total) in [(&first, "30.00"), (&second, "45.00")] {
        let receipt = send(&s, shop, "order.updated", "", &order(total)).await;
        assert_eq!(receipt["status"], "posted");
        assert_eq!(receipt["new_postings"], 2);
    }
    let net = |order: Value| order["net"].clone();
    assert_eq!(
        net(s.get("/v1/orders/727", StatusCode::OK).await),
        json!([{"currency": "USD", "amount_cents": 2900}])
    );
    assert_eq!(
        net(s.get("/v1/orders/shop2-727", StatusCode::OK).await),
        json!([{"currency": "USD", "amount_cents": 4400}])
    );
    // A repeat from either shop is still a duplicate.
    let again = send(&s, &second, "order.updated", "", &order("45.00")).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(ledger(&s).await.len(), 4);

    let problem = s
        .post(
            "/v1/webhook-endpoints",
            &json!({"source": "woocommerce", "order_id_prefix": "shop 3/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("order_id_prefix"),
        "{problem}"
    );
}

#[tokio::test]
async fn each_endpoint_reports_deliveries_dead_letters_failures_and_revenue() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    let quiet = hook(&s, Source::Shopify).await;
    let intent = stripe_payment_intent("pi_H", 2500, "usd", "o-H");
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_1", "payment_intent.succeeded", intent, None),
    )
    .await;
    let dispute = stripe_dispute("du_H", "ch_H", Some("pi_H"), 500, "usd", None);
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_2", "charge.dispute.created", dispute, None),
    )
    .await;
    let broken = stripe_event(
        "evt_3",
        "payment_intent.succeeded",
        json!({"id": "pi_x"}),
        None,
    );
    deliver(
        &s,
        &stripe.path,
        &stripe.sign("", "", &broken),
        &broken,
        StatusCode::ACCEPTED,
    )
    .await;
    let forged = stripe.sign_with("whsec_not_the_endpoint_secret", "", "", &broken);
    deliver(&s, &stripe.path, &forged, &broken, StatusCode::UNAUTHORIZED).await;
    deliver(&s, &stripe.path, &vec![], &broken, StatusCode::UNAUTHORIZED).await;

    let listed = s.get("/v1/webhook-endpoints", StatusCode::OK).await;
    let health = &listed[0];
    assert_eq!(health["endpoint_id"], stripe.id.as_str());
    assert_eq!(health["deliveries"], 3);
    assert_eq!(health["dead_lettered"], 1);
    assert_eq!(health["verification_failures"], 2);
    assert_eq!(health["last_failure_reason"], "missing_header");
    assert!(health["last_failure_at"].is_string());
    assert!(health["last_delivery_at"].is_string());
    assert_eq!(
        health["revenue_net"],
        json!([{"currency": "USD", "amount_cents": 2000}])
    );
    let idle = &listed[1];
    assert_eq!(idle["endpoint_id"], quiet.id.as_str());
    assert_eq!(
        (
            &idle["deliveries"],
            &idle["verification_failures"],
            &idle["revenue_net"]
        ),
        (&json!(0), &json!(0), &json!([]))
    );
    assert!(idle["last_delivery_at"].is_null());

    // The store function the reconciliation status page reads, in its own tenant transaction.
    let tenant: TenantId = s.tenant_id.parse().unwrap();
    let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
    let report = endpoint_health(&mut tx).await.unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(
        (report[0].source.as_str(), report[0].status.as_str()),
        ("stripe", "active")
    );
    assert_eq!(report[0].deliveries, 3);

    // Another tenant sees none of it.
    let (_, other) = s.t.db.create_tenant("Other shop").await.unwrap();
    let theirs = s
        .call(
            Method::GET,
            "/v1/webhook-endpoints",
            Some(&other.secret),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(theirs, json!([]));
}
