//! `POST /v1/segment` and `/v1/segment/batch` with payloads shaped as in Segment's published
//! spec (track, page, identify, batch; ISO and epoch times) and RudderStack's session id.

use crate::common::{TestServer, assert_problem};
use base64::Engine;
use chrono::{Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// As a Segment webhook destination sends it: the key as Basic user name, empty password.
fn basic(key: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    format!("Basic {token}")
}

async fn post(s: &TestServer, path: &str, body: &Value, expect: StatusCode) -> Value {
    let resp = s
        .http
        .post(s.url(path))
        .header("authorization", basic(&s.key))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, expect, "{path}: {body}");
    body
}

fn iso(minutes_ago: i64) -> String {
    (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Segment's "Order Completed" example (ecommerce spec v2), trimmed to one product.
fn order_completed(message_id: &str) -> Value {
    json!({
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "anonymousId": "507f191e810c19729de860ea",
        "userId": "97980cfea0067",
        "timestamp": iso(2),
        "sentAt": iso(1),
        "context": {
            "campaign": {"name": "black-friday", "source": "newsletter", "medium": "email",
                         "term": "shoes", "content": "hero"},
            "page": {"url": "https://shop.example/checkout/done", "referrer": "https://mail.example/"},
            "library": {"name": "analytics.js", "version": "2.11.1"},
            "userAgent": "Mozilla/5.0"
        },
        "properties": {
            "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
            "order_id": "50314b8e9bcf000000000000",
            "affiliation": "Google Store",
            "total": 27.50,
            "subtotal": 22.50,
            "revenue": 25.00,
            "shipping": 3,
            "tax": 2,
            "discount": 2.5,
            "coupon": "hasbros",
            "currency": "USD",
            "products": [{"product_id": "507f1f77bcf86cd799439011", "sku": "45790-32",
                          "name": "Monopoly: 3rd Edition", "price": 19, "quantity": 1,
                          "category": "Games"}]
        },
        "integrations": {"All": true}
    })
}

#[tokio::test]
async fn track_order_completed_becomes_a_conversion() {
    let s = TestServer::start().await;
    let call = order_completed("ajs-1");
    let result = post(&s, "/v1/segment", &call, StatusCode::CREATED).await;
    assert_eq!(result["status"], "accepted");
    let event = s.get("/v1/events/ajs-1", StatusCode::OK).await;
    assert_eq!(event["type"], "order_completed");
    assert_eq!(event["kind"], "conversion");
    assert_eq!(event["revenue_cents"], 2500, "revenue wins over total");
    assert_eq!(event["currency"], "USD");
    assert_eq!(event["order_id"], "50314b8e9bcf000000000000");
    assert_eq!(event["anonymous_id"], "507f191e810c19729de860ea");
    assert_eq!(event["user_id"], "97980cfea0067");
    assert_eq!(event["session_id"], "507f191e810c19729de860ea");
    assert_eq!(event["utm_campaign"], "black-friday");
    assert_eq!(event["utm_medium"], "email");
    assert_eq!(event["channel_code"], "email");
    assert_eq!(event["referrer_host"], "mail.example");
    assert_eq!(event["properties"]["coupon"], "hasbros");
    assert!(event["properties"].get("revenue").is_none(), "{event}");

    // A re-sent call is a duplicate by messageId; Bearer works as well as Basic.
    let resp = s
        .http
        .post(s.url("/v1/segment"))
        .bearer_auth(&s.key)
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // `total` stands in when there is no `revenue`.
    let mut only_total = order_completed("ajs-2");
    only_total["properties"]
        .as_object_mut()
        .unwrap()
        .remove("revenue");
    post(&s, "/v1/segment", &only_total, StatusCode::CREATED).await;
    let event = s.get("/v1/events/ajs-2", StatusCode::OK).await;
    assert_eq!(event["revenue_cents"], 2750);
}

#[tokio::test]
async fn page_calls_map_url_click_ids_and_epoch_times() {
    let s = TestServer::start().await;
    let at = Utc::now() - Duration::minutes(3);
    let page = json!({
        "type": "page",
        "name": "Home",
        "messageId": "page-1",
        "anonymousId": "anon-9",
        "originalTimestamp": at.timestamp_millis(),
        "context": {
            "sessionId": 1764412345,
            "page": {"url": "https://shop.example/?gclid=Cj0KCQiA&utm_source=google",
                     "referrer": "https://www.google.com/", "path": "/", "title": "Shop"}
        },
        "properties": {"path": "/", "title": "Shop", "url": "https://shop.example/?gclid=Cj0KCQiA"}
    });
    post(&s, "/v1/segment", &page, StatusCode::CREATED).await;
    let event = s.get("/v1/events/page-1", StatusCode::OK).await;
    assert_eq!(event["type"], "page_view");
    assert_eq!(event["click_ids"]["gclid"], "Cj0KCQiA", "{event}");
    assert_eq!(event["channel_code"], "paid_search_google");
    assert_eq!(
        event["session_id"], "1764412345",
        "RudderStack's context.sessionId"
    );
    let stored: chrono::DateTime<Utc> = event["occurred_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(stored.timestamp_millis(), at.timestamp_millis());
}

#[tokio::test]
async fn batches_map_each_call_and_dead_letter_what_cannot_be_mapped() {
    let s = TestServer::start().await;
    let epoch_seconds = (Utc::now() - Duration::minutes(5)).timestamp();
    let batch = json!({
        "batch": [
            {"type": "page", "messageId": "b-page", "anonymousId": "anon-1",
             "timestamp": epoch_seconds, "properties": {"path": "/pricing"}},
            {"type": "track", "event": "Subscription Started", "messageId": "b-sub",
             "anonymousId": "anon-1", "timestamp": iso(4),
             "properties": {"revenue": "9.99", "currency": "EUR", "order_id": 771}},
            {"type": "identify", "messageId": "b-identify", "anonymousId": "anon-1",
             "userId": "user-1", "traits": {"email": "peter@example.com", "plan": "pro"}},
            {"type": "track", "event": "Product Viewed", "messageId": "b-viewed",
             "anonymousId": "anon-1", "timestamp": iso(3)},
            {"type": "group", "messageId": "b-group", "groupId": "g-1", "anonymousId": "anon-1"}
        ],
        "context": {"campaign": {"source": "newsletter", "medium": "email", "name": "nov"}},
        "sentAt": iso(0)
    });
    let body = post(&s, "/v1/segment/batch", &batch, StatusCode::OK).await;
    let outcomes: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["accepted", "accepted", "linked", "rejected", "rejected"],
        "{body}"
    );
    assert_eq!(body["results"][2]["known"], false, "{body}");
    assert_eq!(body["linked"], 1, "{body}");
    assert_eq!(body["rejected"], 2, "{body}");
    assert_eq!(body["results"][3]["error_code"], "unmappable_segment_call");
    assert_eq!(body["results"][3]["errors"][0]["pointer"], "/event");
    assert_eq!(body["results"][4]["errors"][0]["pointer"], "/type");

    let page = s.get("/v1/events/b-page", StatusCode::OK).await;
    assert_eq!(page["utm_campaign"], "nov", "the batch's context applies");
    let occurred: chrono::DateTime<Utc> = page["occurred_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(occurred.timestamp(), epoch_seconds);
    let sub = s.get("/v1/events/b-sub", StatusCode::OK).await;
    assert_eq!(sub["type"], "subscription_started");
    assert_eq!(sub["revenue_cents"], 999);
    assert_eq!(sub["order_id"], "771");

    // Nothing is dropped: every refused call is a dead letter from `segment`, redacted.
    let dead = s
        .get("/v1/dead-events?source=segment&status=open", StatusCode::OK)
        .await;
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{dead}");
    // The identify call linked its ids instead (identity stitching).
    assert!(
        items.iter().all(|d| d["event_id"] != "b-identify"),
        "{dead}"
    );
}

#[tokio::test]
async fn invalid_calls_get_problems_with_their_dead_letter() {
    let s = TestServer::start().await;
    let identify =
        json!({"type": "identify", "messageId": "i-1", "anonymousId": "a", "userId": "u"});
    let body = post(&s, "/v1/segment", &identify, StatusCode::CREATED).await;
    assert_eq!(body["status"], "linked", "{body}");
    let again = post(&s, "/v1/segment", &identify, StatusCode::OK).await;
    assert_eq!(again["known"], true, "{again}");
    // Ids are checked as `POST /v1/identify` checks them: an e-mail address is refused.
    let pii = json!({"type": "identify", "anonymousId": "a", "userId": "peter@example.com"});
    let body = post(&s, "/v1/segment", &pii, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(body["dead_event_id"].is_string(), "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/userId", "{body}");

    let mut bad_currency = order_completed("bad-1");
    bad_currency["properties"]["currency"] = json!("XXX1");
    let body = post(
        &s,
        "/v1/segment",
        &bad_currency,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["pointer"], "/currency", "{body}");

    let body = post(
        &s,
        "/v1/segment/batch",
        &json!({"calls": []}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_problem(&body, 400, "bad_request");
}
