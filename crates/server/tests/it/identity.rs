//! Identity stitching (issue 13 §1) over HTTP: journeys follow the shopper across the ids its
//! events and identify calls link, within a cap, per tenant, and only per session when the
//! tenant says so.

use crate::common::{TestServer, assert_problem, tenant, until, workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tally_store::TenantId;
use tally_worker::{Handlers, Worker, WorkerConfig};
use tokio::sync::watch;

/// The channels `model` credited with some of the conversion's cents, in code order.
fn credited(detail: &Value, model: &str) -> Vec<String> {
    detail["splits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["model"] == model)
        .flat_map(|s| s["channels"].as_array().unwrap())
        .filter(|c| c["allocated_cents"].as_i64().unwrap() > 0)
        .map(|c| c["channel_code"].as_str().unwrap().to_string())
        .collect()
}

fn journey(detail: &Value) -> Vec<String> {
    detail["journey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["channel_code"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until the conversion's splits are computed and satisfy `done`.
async fn splits_until(s: &TestServer, event_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/attribution/conversions/{event_id}");
    until(s, &path, |d| {
        !d["splits"].as_array().unwrap().is_empty() && done(d)
    })
    .await
}

/// Waits until the tenant has no recompute pending or running, so that what is stored is what
/// the last run computed.
async fn settled(s: &TestServer) {
    let tenant = tenant(s);
    for _ in 0..600 {
        let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM attribution_recompute_jobs WHERE status IN ('pending', 'running')",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        if busy == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("recomputes did not settle");
}

async fn patch_settings(s: &TestServer, body: &Value, expect: StatusCode) -> Value {
    s.call(
        Method::PATCH,
        "/v1/settings",
        Some(&s.key),
        Some(body),
        expect,
    )
    .await
}

#[tokio::test]
async fn the_readme_example_credits_the_ad_click() {
    let s = TestServer::start().await;
    // Exactly the README's "Tracking events" example.
    s.post(
        "/v1/events",
        &json!({
            "event_id": "evt-1001", "type": "ad_click", "occurred_at": "2026-11-23T10:00:00Z",
            "session_id": "s-42", "anonymous_id": "a-7", "gclid": "Cj0KCQ",
            "utm_campaign": "black-friday"}),
        StatusCode::CREATED,
    )
    .await;
    s.post(
        "/v1/events/batch",
        &json!({"events": [
            {"event_id": "evt-1002", "type": "page_view", "occurred_at": "2026-11-23T10:01:00Z",
             "session_id": "s-42", "referrer": "https://www.google.com/"},
            {"event_id": "evt-1003", "type": "purchase", "occurred_at": "2026-11-23T10:05:00Z",
             "session_id": "s-42", "order_id": "1001", "revenue": "59.99", "currency": "EUR",
             "properties": {"items": 2}}]}),
        StatusCode::OK,
    )
    .await;
    let _workers = workers(&s);
    let detail = splits_until(&s, "evt-1003", |_| true).await;
    assert_eq!(
        journey(&detail),
        ["paid_search_google", "organic_search"],
        "{detail}"
    );
    assert_eq!(credited(&detail, "first_touch"), ["paid_search_google"]);
    assert_eq!(
        credited(&detail, "linear"),
        ["organic_search", "paid_search_google"]
    );
}

#[tokio::test]
async fn login_at_checkout_keeps_the_earlier_visits() {
    let s = TestServer::start().await;
    s.post(
        "/v1/events/batch",
        &json!({"events": [
            {"event_id": "v1", "type": "page_view", "occurred_at": "2026-11-20T09:00:00Z",
             "session_id": "s-1", "anonymous_id": "a-1", "utm_source": "newsletter",
             "utm_medium": "email"},
            {"event_id": "v2", "type": "ad_click", "occurred_at": "2026-11-21T09:00:00Z",
             "session_id": "s-2", "anonymous_id": "a-1", "gclid": "Cj0"},
            // Logged in at checkout: a new session, the user id and nothing else.
            {"event_id": "buy", "type": "purchase", "occurred_at": "2026-11-22T09:00:00Z",
             "session_id": "s-3", "user_id": "u-1", "order_id": "o-1", "revenue": "80.00",
             "currency": "USD"}]}),
        StatusCode::OK,
    )
    .await;
    let linked = s
        .post(
            "/v1/identify",
            &json!({"anonymous_id": "a-1", "user_id": "u-1",
                    "timestamp": "2026-11-22T08:59:00Z"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(linked["status"], "linked");
    let again = s
        .post(
            "/v1/identify",
            &json!({"anonymous_id": "a-1", "user_id": "u-1"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(again["status"], "known");
    let _workers = workers(&s);
    splits_until(&s, "buy", |d| credited(d, "first_touch") == ["email"]).await;
    settled(&s).await;
    let detail = splits_until(&s, "buy", |_| true).await;
    assert_eq!(
        journey(&detail),
        ["email", "paid_search_google"],
        "{detail}"
    );
    assert_eq!(credited(&detail, "first_touch"), ["email"]);
    assert_eq!(credited(&detail, "last_touch"), ["paid_search_google"]);
}

#[tokio::test]
async fn identify_checks_its_input_and_honours_idempotency_keys() {
    let s = TestServer::start().await;
    let body = s
        .post(
            "/v1/identify",
            &json!({"anonymous_id": "a-1", "user_id": "jane@example.com", "plan": "pro"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&body, 422, "validation_failed");
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/plan", "/user_id"], "{body}");
    let wrong_type = s
        .http
        .post(s.url("/v1/identify"))
        .bearer_auth(&s.key)
        .body("anonymous_id=a-1")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let send = |key: &'static str, body: Value| {
        s.http
            .post(s.url("/v1/identify"))
            .bearer_auth(&s.key)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send("k-1", json!({"anonymous_id": "a-2", "user_id": "u-2"}))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let replayed = send("k-1", json!({"anonymous_id": "a-2", "user_id": "u-2"}))
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let conflict = send("k-1", json!({"anonymous_id": "a-3", "user_id": "u-2"}))
        .await
        .unwrap();
    assert_eq!(conflict.status(), StatusCode::CONFLICT);

    // An ingest-only key may identify; it may not read the report.
    let ingest_only = s
        .post(
            "/v1/keys",
            &json!({"name": "site", "scopes": ["ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let secret = ingest_only["secret"].as_str().unwrap();
    s.call(
        Method::POST,
        "/v1/identify",
        Some(secret),
        Some(&json!({"anonymous_id": "a-4", "user_id": "u-4"})),
        StatusCode::CREATED,
    )
    .await;
    s.call(
        Method::GET,
        "/v1/identity/rejected-links",
        Some(secret),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bad_limit = s
        .get(
            "/v1/identity/rejected-links?limit=0",
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_problem(&bad_limit, 400, "invalid_query");
}

#[tokio::test]
async fn a_link_after_the_conversion_changes_its_journey_on_the_next_recompute_only() {
    link_after_the_conversion(
        "/v1/identify",
        json!({"anonymous_id": "a-9", "user_id": "u-9", "timestamp": "2026-11-22T10:00:00Z"}),
    )
    .await;
}

/// The same with the link carried by an event on a day of its own, which only that day's run
/// folds (the sale's day does not read it), and whose merge then schedules the sale's day.
#[tokio::test]
async fn a_link_that_a_later_event_carries_reaches_the_conversion_through_its_own_day() {
    link_after_the_conversion(
        "/v1/events",
        json!({"event_id": "later", "type": "page_view", "occurred_at": "2026-11-22T10:00:00Z",
               "session_id": "s-11", "anonymous_id": "a-9", "user_id": "u-9"}),
    )
    .await;
}

/// A click by `a-9` and a sale by `u-9` a day later, recomputed and settled with the worker
/// stopped; then `link` (a POST to `path` that links `a-9` and `u-9` on the day after the sale)
/// changes nothing until the recomputes run, which credit the click, and a rerun is bit-identical.
async fn link_after_the_conversion(path: &str, link: Value) {
    let s = TestServer::start().await;
    s.post(
        "/v1/events/batch",
        &json!({"events": [
            {"event_id": "click", "type": "ad_click", "occurred_at": "2026-11-20T10:00:00Z",
             "session_id": "s-9", "anonymous_id": "a-9", "gclid": "Cj0"},
            {"event_id": "sale", "type": "purchase", "occurred_at": "2026-11-21T10:00:00Z",
             "session_id": "s-10", "user_id": "u-9", "order_id": "o-9", "revenue": "30.00",
             "currency": "USD"}]}),
        StatusCode::OK,
    )
    .await;
    let (stop, rx) = watch::channel(false);
    let cfg = WorkerConfig {
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let running = tokio::spawn(Worker::new(s.t.db.clone(), cfg, Handlers::standard()).run(rx));
    splits_until(&s, "sale", |_| true).await;
    settled(&s).await;
    // Stopped for good (jobs under way finish first), so nothing recomputes until we say so.
    stop.send(true).unwrap();
    running.await.unwrap();
    let before = splits_until(&s, "sale", |_| true).await;
    assert_eq!(credited(&before, "linear"), ["direct"], "{before}");
    let allocations_before = allocations(&s, tenant(&s)).await;

    // The link arrives a day after the sale.
    s.post(path, &link, StatusCode::CREATED).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unchanged = splits_until(&s, "sale", |_| true).await;
    assert_eq!(credited(&unchanged, "linear"), ["direct"], "{unchanged}");
    assert_eq!(allocations(&s, tenant(&s)).await, allocations_before);

    // The link's day's recompute folds it and schedules the sale's day, whose run credits the click.
    let _workers = workers(&s);
    let after = splits_until(&s, "sale", |d| {
        credited(d, "linear") == ["paid_search_google"]
    })
    .await;
    assert_eq!(journey(&after), ["paid_search_google"]);
    settled(&s).await;

    // A rerun of the day gives the same rows, bit for bit.
    let stored = allocations(&s, tenant(&s)).await;
    let job = s
        .post(
            "/v1/attribution/recompute",
            &json!({"from": "2026-11-21T00:00:00Z", "to": "2026-11-22T00:00:00Z"}),
            StatusCode::ACCEPTED,
        )
        .await;
    let runs = job["run_count"].as_i64().unwrap();
    let path = format!("/v1/attribution/jobs/{}", job["id"].as_str().unwrap());
    until(&s, &path, |j| {
        j["status"] == "succeeded" && j["run_count"].as_i64().unwrap() > runs
    })
    .await;
    assert_eq!(allocations(&s, tenant(&s)).await, stored);
}

/// Every stored allocation of the tenant, in a fixed order, weights as bits.
async fn allocations(s: &TestServer, tenant: TenantId) -> Vec<(String, String, String, i64, i64)> {
    let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
    let rows: Vec<(String, String, String, i64, f64)> = sqlx::query_as(
        "SELECT e.event_id, a.model, a.channel_code, a.allocated_cents, a.weight
         FROM attribution_allocations a JOIN attribution_events e ON e.id = a.conversion_id
         ORDER BY 1, 2, 3",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(e, m, c, cents, w)| (e, m, c, cents, w.to_bits() as i64))
        .collect()
}

#[tokio::test]
async fn the_component_cap_refuses_links_and_reports_them() {
    let s = TestServer::start().await;
    let invalid = patch_settings(
        &s,
        &json!({"identity_max_component_ids": 1, "identity_cross_session": "no"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(invalid["errors"].as_array().unwrap().len(), 2, "{invalid}");
    let changed = patch_settings(
        &s,
        &json!({"identity_max_component_ids": 3}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["settings"]["identity_max_component_ids"], 3);

    // A shared kiosk: one user id logged in on every visitor's session.
    let events: Vec<Value> = (1..=4)
        .map(|i| {
            json!({"event_id": format!("k{i}"), "type": "page_view",
                   "occurred_at": format!("2026-11-20T1{i}:00:00Z"), "session_id": format!("s-{i}"),
                   "anonymous_id": format!("a-{i}"), "user_id": "kiosk"})
        })
        .collect();
    let sent = s
        .post(
            "/v1/events/batch",
            &json!({"events": events}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        sent["accepted"], 4,
        "every event is kept whatever its links: {sent}"
    );
    let _workers = workers(&s);
    let report = until(&s, "/v1/identity/rejected-links", |r| {
        r["links"].as_array().unwrap().len() == 6
    })
    .await;
    let first = &report["links"].as_array().unwrap()[0];
    assert_eq!(first["identity"], "u:kiosk", "{report}");
    assert_eq!(first["component_ids"], 3);
    assert_eq!(first["other_ids"], 1);
    assert_eq!(first["max_ids"], 3);
    let refused: Vec<&str> = report["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["other_identity"].as_str().unwrap())
        .collect();
    for id in ["a-2", "s-2", "a-3", "s-3", "a-4", "s-4"] {
        assert!(refused.iter().any(|r| r[2..] == *id), "{id}: {report}");
    }
    let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
    let biggest: i64 = sqlx::query_scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM identity_members GROUP BY component) c",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(biggest, 3);
}

#[tokio::test]
async fn tenants_with_the_same_ids_stay_apart() {
    let s = TestServer::start().await;
    let (other, other_key) = s.t.db.create_tenant("Other shop").await.unwrap();
    let other_key = other_key.secret;
    // Tenant A: the click links s-1 and a-7.
    s.post(
        "/v1/events",
        &json!({"event_id": "c", "type": "ad_click", "occurred_at": "2026-11-20T10:00:00Z",
                "session_id": "s-1", "anonymous_id": "a-7", "gclid": "Cj0"}),
        StatusCode::CREATED,
    )
    .await;
    // Tenant B: a sale by the same anonymous id, without any touch of its own.
    s.call(
        Method::POST,
        "/v1/events",
        Some(&other_key),
        Some(
            &json!({"event_id": "p", "type": "purchase", "occurred_at": "2026-11-20T11:00:00Z",
                     "session_id": "s-9", "anonymous_id": "a-7", "order_id": "o-1",
                     "revenue": "10.00", "currency": "USD"}),
        ),
        StatusCode::CREATED,
    )
    .await;
    let _workers = workers(&s);
    let path = "/v1/attribution/conversions/p";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let d = s
            .call(Method::GET, path, Some(&other_key), None, StatusCode::OK)
            .await;
        if !d["splits"].as_array().unwrap().is_empty() {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(credited(&detail, "linear"), ["direct"], "{detail}");
    assert!(journey(&detail).is_empty());
    s.get(path, StatusCode::NOT_FOUND).await;

    // The database keeps them apart too: each tenant sees its own shoppers (folded from its own
    // events' ids), none without a tenant, and no tenant can write another's.
    settled(&s).await;
    let a = tenant(&s);
    for (t, session) in [(a, "s:s-1"), (other.tenant_id, "s:s-9")] {
        let mut tx = s.t.db.tenant_tx(t).await.unwrap();
        let members: Vec<(String, String)> =
            sqlx::query_as("SELECT identity, component FROM identity_members ORDER BY identity")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        let expected = [("a:a-7", "a:a-7"), (session, "a:a-7")].map(|(i, c)| (i.into(), c.into()));
        assert_eq!(members, expected);
    }
    let mut app = s.t.db.app_pool().acquire().await.unwrap();
    let unscoped: i64 = sqlx::query_scalar("SELECT count(*) FROM identity_members")
        .fetch_one(&mut *app)
        .await
        .unwrap();
    assert_eq!(unscoped, 0);
    let mut tx = s.t.db.tenant_tx(other.tenant_id).await.unwrap();
    let forged = sqlx::query(
        "INSERT INTO identity_members (tenant_id, identity, component) VALUES ($1, 'a:x', 'a:x')",
    )
    .bind(a)
    .execute(&mut *tx)
    .await;
    assert!(forged.is_err(), "RLS must refuse a row of another tenant");
}

#[tokio::test]
async fn without_cross_session_stitching_journeys_stay_in_their_session() {
    let s = TestServer::start().await;
    let changed = patch_settings(
        &s,
        &json!({"identity_cross_session": false}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["settings"]["identity_cross_session"], false);
    s.post(
        "/v1/events/batch",
        &json!({"events": [
            {"event_id": "c", "type": "ad_click", "occurred_at": "2026-11-20T10:00:00Z",
             "session_id": "s-1", "anonymous_id": "a-1", "gclid": "Cj0"},
            {"event_id": "v", "type": "page_view", "occurred_at": "2026-11-20T11:00:00Z",
             "session_id": "s-2", "anonymous_id": "a-1", "referrer": "https://www.google.com/"},
            {"event_id": "p", "type": "purchase", "occurred_at": "2026-11-20T11:05:00Z",
             "session_id": "s-2", "anonymous_id": "a-1", "order_id": "o-1", "revenue": "10.00",
             "currency": "USD"}]}),
        StatusCode::OK,
    )
    .await;
    let _workers = workers(&s);
    let detail = splits_until(&s, "p", |_| true).await;
    assert_eq!(journey(&detail), ["organic_search"], "{detail}");
    assert_eq!(credited(&detail, "first_touch"), ["organic_search"]);
    let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
    let stamped: i64 =
        sqlx::query_scalar("SELECT count(*) FROM attribution_events WHERE links_seq IS NOT NULL")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM identity_members")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        (stamped, members),
        (0, 0),
        "events link nothing when stitching is off"
    );
}
