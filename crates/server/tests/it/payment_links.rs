//! Refunds and chargebacks that carry no order id land on their order through the payment they
//! name, whichever of the two arrives first; only postings that reach no order are orphans.

use crate::common::TestServer;
use crate::vendors::{hook, ledger, send};
use crate::webhooks::rows;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tally_payments::Source;
use tally_payments::testing::payloads::{
    paypal_event, paypal_refund, paypal_resource, stripe_charge, stripe_dispute, stripe_event,
    stripe_payment_intent,
};
use tally_store::TenantId;
use tally_store::ledger::order_postings;

fn posting<'a>(order: &'a Value, entry_type: &str) -> &'a Value {
    order["postings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["entry_type"] == entry_type)
        .unwrap_or_else(|| panic!("no {entry_type} in {order}"))
}

async fn orphans(s: &TestServer) -> Vec<Value> {
    let page = s.get("/v1/ledger?orphaned=true", StatusCode::OK).await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_dispute_without_order_metadata_lands_on_its_payment_s_order() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    let intent = stripe_payment_intent("pi_D", 4000, "usd", "o-D");
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_1", "payment_intent.succeeded", intent, None),
    )
    .await;
    let dispute = stripe_dispute("du_D", "ch_D", Some("pi_D"), 4000, "usd", None);
    let receipt = send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_2", "charge.dispute.created", dispute, None),
    )
    .await;
    assert_eq!(receipt["new_postings"], 1);

    let order = s.get("/v1/orders/o-D", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 0}])
    );
    let payment = posting(&order, "payment");
    let chargeback = posting(&order, "chargeback");
    assert_eq!(chargeback["reverses_id"], payment["id"]);
    assert_eq!(chargeback["payment_ref"], "pi_D");
    // In order, the posting itself is complete: the filter by order id finds it too.
    let page = s
        .get(
            "/v1/ledger?order_id=o-D&entry_type=chargeback",
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["items"][0]["reverses_id"], payment["id"]);
    assert!(orphans(&s).await.is_empty());
}

#[tokio::test]
async fn a_refund_before_its_payment_resolves_once_the_payment_lands() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    // The charge carries no order metadata (it lives on the payment intent).
    let refunded = stripe_charge("ch_R", "pi_R", 9000, "usd", None, &[("re_R", 3000)]);
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_r", "charge.refunded", refunded, None),
    )
    .await;
    s.get("/v1/orders/o-R", StatusCode::NOT_FOUND).await;
    let orphaned = orphans(&s).await;
    assert_eq!(orphaned.len(), 1);
    assert_eq!(orphaned[0]["external_id"], "re_R");

    let intent = stripe_payment_intent("pi_R", 9000, "usd", "o-R");
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_p", "payment_intent.succeeded", intent, None),
    )
    .await;
    let order = s.get("/v1/orders/o-R", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 6000}])
    );
    let payment = posting(&order, "payment");
    let refund = posting(&order, "refund");
    assert_eq!(refund["order_id"], "o-R");
    assert_eq!(refund["reverses_id"], payment["id"]);
    assert!(orphans(&s).await.is_empty());

    // The stored row is never edited (the ledger is append-only): the view resolves it.
    let resolved = rows(
        &s,
        "SELECT order_id, resolved_order_id, resolved_reverses_id = (SELECT id FROM revenue_ledger
                WHERE entry_type = 'payment') AS reverses_payment
         FROM revenue_ledger_resolved WHERE entry_type = 'refund'",
    )
    .await;
    assert_eq!(
        resolved,
        [json!({"order_id": null, "resolved_order_id": "o-R", "reverses_payment": true})]
    );

    // The store function the reconciliation reads, for several orders at once.
    let tenant: TenantId = s.tenant_id.parse().unwrap();
    let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
    let entries = order_postings(&mut tx, &["o-R".into(), "o-none".into()])
        .await
        .unwrap();
    let found: Vec<_> = entries
        .iter()
        .map(|e| (e.external_id.as_str(), e.order_id.as_deref()))
        .collect();
    assert_eq!(found, [("re_R", Some("o-R")), ("pi_R", Some("o-R"))]);
}

#[tokio::test]
async fn a_manual_reversal_of_an_early_refund_follows_it_to_the_order() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    let refunded = stripe_charge("ch_M", "pi_M", 5000, "eur", None, &[("re_M", 5000)]);
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_r", "charge.refunded", refunded, None),
    )
    .await;
    let refund_id = ledger(&s).await[0]["id"].clone();
    s.post(
        "/v1/ledger/adjustments",
        &json!({"reverses_id": refund_id, "reason": "refund was cancelled at the bank"}),
        StatusCode::CREATED,
    )
    .await;
    let intent = stripe_payment_intent("pi_M", 5000, "eur", "o-M");
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_p", "payment_intent.succeeded", intent, None),
    )
    .await;
    let order = s.get("/v1/orders/o-M", StatusCode::OK).await;
    assert_eq!(order["postings"].as_array().unwrap().len(), 3, "{order}");
    assert_eq!(
        order["net"],
        json!([{"currency": "EUR", "amount_cents": 5000}])
    );
    assert!(orphans(&s).await.is_empty());
}

#[tokio::test]
async fn a_paypal_refund_lands_on_the_order_of_the_capture_it_links_to() {
    let s = TestServer::start().await;
    let paypal = hook(&s, Source::PayPal).await;
    // Refund first, then its capture, then a refund of a capture Tally never saw.
    let refund = paypal_event(
        "WH-r",
        "PAYMENT.CAPTURE.REFUNDED",
        paypal_refund("REF-1", "4.00", "USD", "CAP-1"),
    );
    send(&s, &paypal, "", "tx-1", &refund).await;
    let capture = paypal_event(
        "WH-c",
        "PAYMENT.CAPTURE.COMPLETED",
        paypal_resource("CAP-1", "10.00", "USD", Some("o-P")),
    );
    send(&s, &paypal, "", "tx-2", &capture).await;
    let stray = paypal_event(
        "WH-s",
        "PAYMENT.CAPTURE.REFUNDED",
        paypal_refund("REF-2", "1.00", "USD", "CAP-X"),
    );
    send(&s, &paypal, "", "tx-3", &stray).await;

    let order = s.get("/v1/orders/o-P", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 600}])
    );
    assert_eq!(posting(&order, "refund")["payment_ref"], "CAP-1");
    let orphaned = orphans(&s).await;
    assert_eq!(orphaned.len(), 1);
    assert_eq!(orphaned[0]["external_id"], "REF-2");
    assert_eq!(orphaned[0]["payment_ref"], "CAP-X");
}

#[tokio::test]
async fn orphans_are_listed_per_tenant_and_filter_like_the_ledger() {
    let s = TestServer::start().await;
    let stripe = hook(&s, Source::Stripe).await;
    let intent = stripe_payment_intent("pi_O", 700, "usd", "o-O");
    let paid = stripe_event("evt_p", "payment_intent.succeeded", intent, None);
    send(&s, &stripe, "", "", &paid).await;
    let dispute = stripe_dispute("du_O", "ch_unknown", None, 700, "usd", None);
    send(
        &s,
        &stripe,
        "",
        "",
        &stripe_event("evt_o", "charge.dispute.created", dispute, None),
    )
    .await;
    s.post(
        "/v1/ledger/adjustments",
        &json!({"amount_cents": 100, "currency": "USD", "reason": "bank interest"}),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(orphans(&s).await.len(), 2);
    let page = s
        .get("/v1/ledger?orphaned=true&source=stripe", StatusCode::OK)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["external_id"], "du_O");
    let page = s.get("/v1/ledger?orphaned=false", StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);

    let (_, other) = s.t.db.create_tenant("Other shop").await.unwrap();
    let theirs = s
        .call(
            reqwest::Method::GET,
            "/v1/ledger?orphaned=true",
            Some(&other.secret),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(theirs["items"], json!([]));
}
