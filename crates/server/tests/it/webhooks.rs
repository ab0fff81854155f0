//! Payment webhooks end to end: verification on the raw bytes, the inbox, idempotent postings,
//! dead letters, endpoint management and tenant isolation.

use crate::common::{TestServer, assert_problem};
use crate::vendors::{Hook, deliver, hook, hook_for, ledger, ledger_for, send};
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tally_payments::Source;
use tally_payments::testing::payloads::{
    paypal_event, paypal_resource, shopify_order, shopify_refund, stripe_charge, stripe_event,
    stripe_payment_intent, woo_order,
};
use tally_payments::testing::{PayPalSigner, stripe_headers};
use tally_store::TenantId;

/// Rows of `sql` as JSON objects, read by the runtime role acting for the test tenant.
pub async fn rows(s: &TestServer, sql: &str) -> Vec<Value> {
    let tenant: TenantId = s.tenant_id.parse().unwrap();
    let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
    let wrapped = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t");
    let value: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(wrapped))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    value.as_array().unwrap().clone()
}

fn amounts(entries: &[Value]) -> Vec<(String, i64, String)> {
    let mut out: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["entry_type"].as_str().unwrap().to_string(),
                e["amount_cents"].as_i64().unwrap(),
                e["currency"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn shopify_payment_posts_and_only_a_redacted_payload_is_kept() {
    let s = TestServer::start().await;
    let shop = hook(&s, Source::Shopify).await;
    let body = shopify_order(820_982_911, "59.99", "USD", "paid");
    let mut headers = shop.sign("orders/paid", "evt-1", &body);
    headers.push(("X-Correlation-ID", "corr-shopify-1".into()));
    let receipt = deliver(&s, &shop.path, &headers, &body, StatusCode::OK).await;
    assert_eq!(receipt["status"], "posted");
    assert_eq!(receipt["new_postings"], 1);

    let entries = ledger(&s).await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["source"], "shopify");
    assert_eq!(e["entry_type"], "payment");
    assert_eq!(e["amount_cents"], 5999);
    assert_eq!(e["currency"], "USD");
    assert_eq!(e["order_id"], "820982911");
    assert_eq!(e["delivery_id"], receipt["delivery_id"]);
    assert_eq!(e["correlation_id"], "corr-shopify-1");

    let inbox = rows(
        &s,
        "SELECT status, topic, delivery_key, payload, correlation_id FROM webhook_deliveries",
    )
    .await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["correlation_id"], "corr-shopify-1");
    assert_eq!(inbox[0]["status"], "posted");
    assert_eq!(inbox[0]["delivery_key"], "evt-1");
    let payload = inbox[0]["payload"].to_string();
    assert!(payload.contains("59.99"), "{payload}");
    for pii in ["buyer@example.com", "Lovelace", "1 Main St", "7946"] {
        assert!(!payload.contains(pii), "{pii} kept: {payload}");
    }
}

#[tokio::test]
async fn bad_signatures_get_401_count_in_metrics_and_store_nothing() {
    let s = TestServer::start().await;
    for source in [Source::Shopify, Source::Stripe, Source::WooCommerce] {
        let h = hook(&s, source).await;
        let body = match source {
            Source::Shopify => shopify_order(1, "10.00", "USD", "paid"),
            Source::Stripe => stripe_event(
                "evt_1",
                "payment_intent.succeeded",
                stripe_payment_intent("pi_1", 1000, "usd", "o-1"),
                None,
            ),
            _ => woo_order(1, "processing", "10.00", "USD", "2026-11-20T10:00:05", &[]),
        };
        let topic = match source {
            Source::Shopify => "orders/paid",
            _ => "order.created",
        };
        // Tampered: signed over other bytes than those sent.
        let mut tampered = body.clone();
        let at = tampered.iter().position(|b| *b == b'1').unwrap();
        tampered[at] = b'9';
        let headers = h.sign(topic, "evt-x", &body);
        let problem = deliver(&s, &h.path, &headers, &tampered, StatusCode::UNAUTHORIZED).await;
        assert_problem(&problem, 401, "bad_signature");
        // Wrong secret.
        let headers = h.sign_with("whsec_not_the_endpoint_secret", topic, "evt-x", &body);
        let problem = deliver(&s, &h.path, &headers, &body, StatusCode::UNAUTHORIZED).await;
        assert_problem(&problem, 401, "bad_signature");
        // No signature at all.
        let problem = deliver(&s, &h.path, &vec![], &body, StatusCode::UNAUTHORIZED).await;
        assert_problem(&problem, 401, "missing_header");
    }
    assert!(ledger(&s).await.is_empty());
    assert!(
        rows(&s, "SELECT id FROM webhook_deliveries")
            .await
            .is_empty()
    );
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("tally_webhook_verification_failures_total")
                && l.contains("source=\"stripe\"")
                && l.contains("reason=\"bad_signature\"")
        })
        .unwrap_or_else(|| panic!("no failure counter in:\n{metrics}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 2.0, "{line}");
}

#[tokio::test]
async fn stale_stripe_timestamp_is_refused() {
    let s = TestServer::start().await;
    let h = hook(&s, Source::Stripe).await;
    let body = stripe_event(
        "evt_old",
        "payment_intent.succeeded",
        stripe_payment_intent("pi_1", 1000, "usd", "o-1"),
        None,
    );
    let secret = h.secret.as_deref().unwrap().as_bytes();
    let headers = stripe_headers(secret, Utc::now().timestamp() - 301, &body);
    let problem = deliver(&s, &h.path, &headers, &body, StatusCode::UNAUTHORIZED).await;
    assert_problem(&problem, 401, "stale_timestamp");
    // Inside the tolerance it is accepted.
    let headers = stripe_headers(secret, Utc::now().timestamp() - 200, &body);
    deliver(&s, &h.path, &headers, &body, StatusCode::OK).await;
}

#[tokio::test]
async fn rotated_secret_verifies_during_its_grace_period_only() {
    let s = TestServer::start().await;
    let h = hook(&s, Source::WooCommerce).await;
    let first = h.secret.clone().unwrap();
    let order = |n: u64| woo_order(n, "processing", "10.00", "USD", "2026-11-20T10:00:05", &[]);

    let rotated = s
        .post(
            &format!("/v1/webhook-endpoints/{}/rotate", h.id),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    let second = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let expires: chrono::DateTime<Utc> = rotated["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let grace = expires - Utc::now();
    assert!(grace > chrono::TimeDelta::minutes(59) && grace <= chrono::TimeDelta::hours(1));

    // Both the old and the new secret verify during the grace period.
    for (n, secret) in [(1, &first), (2, &second)] {
        let body = order(n);
        let headers = h.sign_with(secret, "order.created", "", &body);
        deliver(&s, &h.path, &headers, &body, StatusCode::OK).await;
    }

    // A rotation with no grace retires the previous secret at once.
    let rotated = s
        .post(
            &format!("/v1/webhook-endpoints/{}/rotate", h.id),
            &json!({"secret": "vendor-issued-secret-0123456789", "grace_period_seconds": 0}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(rotated["secret"], "vendor-issued-secret-0123456789");
    let body = order(3);
    for stale in [&first, &second] {
        let headers = h.sign_with(stale, "order.created", "", &body);
        let problem = deliver(&s, &h.path, &headers, &body, StatusCode::UNAUTHORIZED).await;
        assert_problem(&problem, 401, "bad_signature");
    }
    let headers = h.sign_with(
        "vendor-issued-secret-0123456789",
        "order.created",
        "",
        &body,
    );
    deliver(&s, &h.path, &headers, &body, StatusCode::OK).await;
    assert_eq!(ledger(&s).await.len(), 3);
}

#[tokio::test]
async fn a_repeated_delivery_changes_nothing() {
    let s = TestServer::start().await;
    let h = hook(&s, Source::Stripe).await;
    let body = stripe_event(
        "evt_dup",
        "payment_intent.succeeded",
        stripe_payment_intent("pi_dup", 2500, "usd", "o-dup"),
        None,
    );
    let first = send(&s, &h, "", "", &body).await;
    assert_eq!(first["status"], "posted");
    let before = ledger(&s).await;
    let again = send(&s, &h, "", "", &body).await;
    assert_eq!(again, json!({"status": "duplicate"}));
    assert_eq!(ledger(&s).await, before);
    assert_eq!(rows(&s, "SELECT id FROM webhook_deliveries").await.len(), 1);
}

#[tokio::test]
async fn two_deliveries_of_one_payment_post_it_once() {
    let s = TestServer::start().await;
    let h = hook(&s, Source::Stripe).await;
    let intent = stripe_event(
        "evt_pi",
        "payment_intent.succeeded",
        stripe_payment_intent("pi_9", 4200, "usd", "o-9"),
        None,
    );
    let charge = stripe_event(
        "evt_ch",
        "charge.succeeded",
        stripe_charge("ch_9", "pi_9", 4200, "usd", Some("o-9"), &[]),
        None,
    );
    assert_eq!(send(&s, &h, "", "", &intent).await["new_postings"], 1);
    let second = send(&s, &h, "", "", &charge).await;
    assert_eq!(second["status"], "posted");
    assert_eq!(second["new_postings"], 0);
    let entries = ledger(&s).await;
    assert_eq!(amounts(&entries), [("payment".into(), 4200, "USD".into())]);
    assert_eq!(entries[0]["external_id"], "pi_9");
    assert_eq!(rows(&s, "SELECT id FROM webhook_deliveries").await.len(), 2);
}

#[tokio::test]
async fn refunds_before_the_payment_and_partial_refunds_sum_to_the_total() {
    let s = TestServer::start().await;
    let h = hook(&s, Source::Stripe).await;
    let refunded = |event: &str, refunds: &[(&str, i64)]| {
        stripe_event(
            event,
            "charge.refunded",
            stripe_charge("ch_5", "pi_5", 10_000, "usd", Some("o-5"), refunds),
            None,
        )
    };
    // The refunds arrive first, the second event repeating the first refund (cumulative).
    send(&s, &h, "", "", &refunded("evt_r1", &[("re_1", 3000)])).await;
    let second = send(
        &s,
        &h,
        "",
        "",
        &refunded("evt_r2", &[("re_1", 3000), ("re_2", 7000)]),
    )
    .await;
    assert_eq!(second["new_postings"], 1);
    let order = s.get("/v1/orders/o-5", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": -10_000}])
    );

    let payment = stripe_event(
        "evt_p",
        "payment_intent.succeeded",
        stripe_payment_intent("pi_5", 10_000, "usd", "o-5"),
        None,
    );
    send(&s, &h, "", "", &payment).await;
    let order = s.get("/v1/orders/o-5", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 0}])
    );
    assert_eq!(
        amounts(order["postings"].as_array().unwrap()),
        [
            ("payment".into(), 10_000, "USD".into()),
            ("refund".into(), -7000, "USD".into()),
            ("refund".into(), -3000, "USD".into()),
        ]
    );

    // Shopify: two partial refunds of one order.
    let shop = hook(&s, Source::Shopify).await;
    send(
        &s,
        &shop,
        "orders/paid",
        "e1",
        &shopify_order(77, "30.00", "EUR", "paid"),
    )
    .await;
    send(
        &s,
        &shop,
        "refunds/create",
        "e2",
        &shopify_refund(701, 77, "EUR", &[("refund", "success", "10.50")]),
    )
    .await;
    send(
        &s,
        &shop,
        "refunds/create",
        "e3",
        &shopify_refund(702, 77, "EUR", &[("refund", "success", "19.50")]),
    )
    .await;
    let order = s.get("/v1/orders/77", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "EUR", "amount_cents": 0}])
    );
}

#[tokio::test]
async fn zero_and_three_decimal_currencies_are_exact() {
    let s = TestServer::start().await;
    let shop = hook(&s, Source::Shopify).await;
    send(
        &s,
        &shop,
        "orders/paid",
        "jpy",
        &shopify_order(5, "1500", "JPY", "paid"),
    )
    .await;
    let stripe = hook(&s, Source::Stripe).await;
    let body = stripe_event(
        "evt_kwd",
        "payment_intent.succeeded",
        stripe_payment_intent("pi_kwd", 5120, "kwd", "o-kwd"),
        None,
    );
    send(&s, &stripe, "", "", &body).await;
    let paypal = hook(&s, Source::PayPal).await;
    let body = paypal_event(
        "WH-1",
        "PAYMENT.CAPTURE.COMPLETED",
        paypal_resource("CAP-1", "12.345", "KWD", Some("o-pp")),
    );
    send(&s, &paypal, "", "tx-1", &body).await;
    let woo = hook(&s, Source::WooCommerce).await;
    let body = woo_order(
        9,
        "completed",
        "980",
        "JPY",
        "2026-11-20T10:00:05",
        &[(91, "-80")],
    );
    send(&s, &woo, "order.updated", "", &body).await;

    assert_eq!(
        amounts(&ledger(&s).await),
        [
            ("payment".into(), 980, "JPY".into()),
            ("payment".into(), 1500, "JPY".into()),
            ("payment".into(), 5120, "KWD".into()),
            ("payment".into(), 12_345, "KWD".into()),
            ("refund".into(), -80, "JPY".into()),
        ]
    );
}

#[tokio::test]
async fn unknown_topics_are_recorded_as_ignored() {
    let s = TestServer::start().await;
    let shop = hook(&s, Source::Shopify).await;
    let body = br#"{"id": 42, "email": "someone@example.com", "first_name": "Ada"}"#;
    let receipt = send(&s, &shop, "customers/create", "evt-c", body).await;
    assert_eq!(receipt["status"], "ignored");
    assert!(
        receipt["detail"]
            .as_str()
            .unwrap()
            .starts_with("unhandled_topic")
    );
    // An unpaid order is ignored too, with its own reason.
    let body = shopify_order(3, "5.00", "USD", "pending");
    let receipt = send(&s, &shop, "orders/create", "evt-u", &body).await;
    assert!(receipt["detail"].as_str().unwrap().starts_with("not_paid"));

    let inbox = rows(
        &s,
        "SELECT topic, status FROM webhook_deliveries ORDER BY topic",
    )
    .await;
    assert_eq!(
        inbox,
        [
            json!({"topic": "customers/create", "status": "ignored"}),
            json!({"topic": "orders/create", "status": "ignored"}),
        ]
    );
    assert!(ledger(&s).await.is_empty());
}

#[tokio::test]
async fn unreadable_signed_deliveries_are_dead_lettered_once() {
    let s = TestServer::start().await;
    let woo = hook(&s, Source::WooCommerce).await;
    let body = br#"{"id": 5, "status": "processing", "email": "a@b.example", "#;
    let headers = woo.sign("order.updated", "", body);
    let receipt = deliver(&s, &woo.path, &headers, body, StatusCode::ACCEPTED).await;
    assert_eq!(receipt["status"], "dead_lettered");
    assert!(
        receipt["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed_json")
    );
    // The vendor retrying the same bytes finds it already taken.
    let again = deliver(&s, &woo.path, &headers, body, StatusCode::OK).await;
    assert_eq!(again["status"], "duplicate");

    // JSON, but not the shape the topic promises.
    let stripe = hook(&s, Source::Stripe).await;
    let body = stripe_event(
        "evt_bad",
        "payment_intent.succeeded",
        json!({"id": "pi_x"}),
        None,
    );
    let headers = stripe.sign("", "", &body);
    deliver(&s, &stripe.path, &headers, &body, StatusCode::ACCEPTED).await;

    let dead = rows(
        &s,
        "SELECT source, error_code, payload, status FROM dead_events ORDER BY source DESC",
    )
    .await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0]["source"], "woocommerce");
    assert_eq!(dead[0]["error_code"], "malformed_json");
    assert_eq!(dead[0]["status"], "open");
    let raw = dead[0]["payload"]["raw_sha256"].as_str().unwrap();
    assert_eq!(raw.len(), 64);
    assert_eq!(dead[1]["source"], "stripe");
    assert_eq!(dead[1]["error_code"], "invalid_payload");
    assert_eq!(dead[1]["payload"]["id"], "evt_bad");
    assert!(ledger(&s).await.is_empty());
}

#[tokio::test]
async fn paypal_verifies_with_the_configured_certificate() {
    let s = TestServer::start().await;
    let paypal = hook(&s, Source::PayPal).await;
    assert!(paypal.secret.is_none());
    let capture = paypal_event(
        "WH-cap",
        "PAYMENT.CAPTURE.COMPLETED",
        paypal_resource("CAP-7", "25.00", "USD", Some("o-7")),
    );
    let receipt = send(&s, &paypal, "", "tx-cap", &capture).await;
    assert_eq!(receipt["status"], "posted");
    let refund = paypal_event(
        "WH-ref",
        "PAYMENT.CAPTURE.REFUNDED",
        paypal_resource("REF-7", "5.00", "USD", Some("o-7")),
    );
    send(&s, &paypal, "", "tx-ref", &refund).await;
    let order = s.get("/v1/orders/o-7", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 2000}])
    );

    // Signed for another PayPal webhook subscription: not this endpoint's.
    let other =
        PayPalSigner::shared().headers("OTHER-WEBHOOK", "tx-3", "2026-11-20T12:00:00Z", &capture);
    let problem = deliver(&s, &paypal.path, &other, &capture, StatusCode::UNAUTHORIZED).await;
    assert_problem(&problem, 401, "bad_signature");
    // A certificate URL off paypal.com is refused before anything is fetched, when the
    // endpoint has no certificate configured.
    let fetching = s
        .post(
            "/v1/webhook-endpoints",
            &json!({"source": "paypal", "paypal_webhook_id": crate::vendors::PAYPAL_WEBHOOK_ID}),
            StatusCode::CREATED,
        )
        .await;
    let mut headers = paypal.sign("", "tx-4", &capture);
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case("PAYPAL-CERT-URL") {
            *value = "https://paypal.com.evil.example/cert.pem".into();
        }
    }
    let path = fetching["url_path"].as_str().unwrap();
    let problem = deliver(&s, path, &headers, &capture, StatusCode::UNAUTHORIZED).await;
    assert_problem(&problem, 401, "cert_url_not_allowed");
    // PayPal signs with its own key: there is no secret to rotate.
    let rotate = format!("/v1/webhook-endpoints/{}/rotate", paypal.id);
    let problem = s
        .post(&rotate, &json!({}), StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_problem(&problem, 422, "validation_failed");
}

#[tokio::test]
async fn woocommerce_creation_ping_is_answered_unsigned() {
    let s = TestServer::start().await;
    let woo = hook(&s, Source::WooCommerce).await;
    let resp = s
        .http
        .post(s.url(&woo.path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("webhook_id=17")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let receipt: Value = resp.json().await.unwrap();
    assert_eq!(receipt, json!({"status": "ping"}));
    assert!(
        rows(&s, "SELECT id FROM webhook_deliveries")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_mismatched_and_disabled_endpoints_are_404() {
    let s = TestServer::start().await;
    let woo = hook(&s, Source::WooCommerce).await;
    let body = woo_order(1, "processing", "1.00", "USD", "2026-11-20T10:00:05", &[]);
    let headers = woo.sign("order.created", "", &body);
    let unknown = format!("/v1/webhooks/woocommerce/{}", uuid::Uuid::now_v7());
    let problem = deliver(&s, &unknown, &headers, &body, StatusCode::NOT_FOUND).await;
    assert_problem(&problem, 404, "not_found");
    let wrong_source = format!("/v1/webhooks/shopify/{}", woo.id);
    deliver(&s, &wrong_source, &headers, &body, StatusCode::NOT_FOUND).await;
    let not_a_source = format!("/v1/webhooks/square/{}", woo.id);
    deliver(&s, &not_a_source, &headers, &body, StatusCode::NOT_FOUND).await;

    let disabled = s
        .post(
            &format!("/v1/webhook-endpoints/{}/disable", woo.id),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(disabled["status"], "disabled");
    deliver(&s, &woo.path, &headers, &body, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn endpoints_never_show_secrets_after_creation_and_need_admin() {
    let s = TestServer::start().await;
    let created = s
        .post(
            "/v1/webhook-endpoints",
            &json!({"source": "stripe", "secret": "whsec_from_the_stripe_dashboard"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(created["secret"], "whsec_from_the_stripe_dashboard");
    let listed = s.get("/v1/webhook-endpoints", StatusCode::OK).await;
    let text = listed.to_string();
    assert!(!text.contains("whsec_"), "{text}");
    assert!(listed[0].get("secret").is_none());
    assert_eq!(listed[0]["url_path"], created["url_path"]);

    let problem = s
        .post(
            "/v1/webhook-endpoints",
            &json!({"source": "square"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(problem["errors"][0]["pointer"], "/source");
    s.post(
        "/v1/webhook-endpoints",
        &json!({"source": "paypal"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let reader = s
        .post(
            "/v1/keys",
            &json!({"scopes": ["read", "ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let reader = reader["secret"].as_str().unwrap();
    let problem = s
        .call(
            Method::GET,
            "/v1/webhook-endpoints",
            Some(reader),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_problem(&problem, 403, "forbidden");

    let doc = s.get("/openapi.json", StatusCode::OK).await;
    for path in [
        "/v1/webhooks/{source}/{endpoint_id}",
        "/v1/webhook-endpoints",
        "/v1/webhook-endpoints/{endpoint_id}/rotate",
        "/v1/webhook-endpoints/{endpoint_id}/disable",
        "/v1/ledger",
        "/v1/ledger/adjustments",
        "/v1/orders/{order_id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
}

#[tokio::test]
async fn another_tenant_sees_neither_endpoints_nor_ledger() {
    let s = TestServer::start().await;
    let shop: Hook = hook(&s, Source::Shopify).await;
    send(
        &s,
        &shop,
        "orders/paid",
        "e1",
        &shopify_order(11, "9.99", "USD", "paid"),
    )
    .await;

    let (_, other) = s.t.db.create_tenant("Other shop").await.unwrap();
    let other = other.secret;
    let listed = s
        .call(
            Method::GET,
            "/v1/webhook-endpoints",
            Some(&other),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed, json!([]));
    for action in ["rotate", "disable"] {
        s.call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{}/{action}", shop.id),
            Some(&other),
            Some(&json!({})),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert!(ledger_for(&s, &other).await.is_empty());
    s.call(
        Method::GET,
        "/v1/orders/11",
        Some(&other),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The other tenant's own endpoint posts into its own ledger only.
    let theirs = hook_for(&s, &other, Source::Shopify).await;
    send(
        &s,
        &theirs,
        "orders/paid",
        "e1",
        &shopify_order(11, "1.00", "USD", "paid"),
    )
    .await;
    assert_eq!(ledger_for(&s, &other).await.len(), 1);
    assert_eq!(ledger(&s).await[0]["amount_cents"], 999);
}

#[tokio::test]
async fn signing_secrets_are_sealed_at_rest_and_deliveries_still_verify() {
    let s = TestServer::start().await;
    let shop = hook(&s, Source::Shopify).await;
    let secret = shop.secret.clone().unwrap();
    let rotated = s
        .post(
            &format!("/v1/webhook-endpoints/{}/rotate", shop.id),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    // What a dump shows: sealed values, neither secret.
    let stored = rows(&s, "SELECT secret, previous_secret FROM webhook_endpoints").await;
    for column in ["secret", "previous_secret"] {
        let value = stored[0][column].as_str().unwrap();
        assert!(value.starts_with("tally-sealed:v1:"), "{column}: {value}");
        for plain in [&secret, &new_secret] {
            assert!(!value.contains(plain.as_str()), "{column} holds a secret");
        }
    }
    // Both still verify: the new one, and the old one during its grace period.
    for (n, key) in [&new_secret, &secret].into_iter().enumerate() {
        let body = shopify_order(700 + n as u64, "10.00", "USD", "paid");
        let headers = shop.sign_with(key, "orders/paid", &format!("evt-{n}"), &body);
        let receipt = deliver(&s, &shop.path, &headers, &body, StatusCode::OK).await;
        assert_eq!(receipt["status"], "posted");
    }
}
