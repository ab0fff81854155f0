//! Ingestion through HTTP: idempotency, batches, dead letters, PII, rate limits, search.

use crate::common::{TestServer, assert_problem};
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tally_store::testing::begin_for_tenant;

pub fn touch(id: &str) -> Value {
    json!({
        "event_id": id,
        "type": "page_view",
        "occurred_at": "2026-11-01T10:00:00Z",
        "session_id": "s-1",
        "anonymous_id": "anon-1",
        "utm_source": "google",
        "utm_medium": "cpc",
    })
}

pub fn purchase(id: &str, revenue: &str) -> Value {
    json!({
        "event_id": id,
        "type": "purchase",
        "occurred_at": "2026-11-01T10:30:00Z",
        "session_id": "s-1",
        "anonymous_id": "anon-1",
        "order_id": format!("order-{id}"),
        "revenue": revenue,
        "currency": "USD",
    })
}

/// Runs `sql` as the owner acting for the test tenant.
pub async fn tenant_scalar(s: &TestServer, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(&s.t.cfg.owner_url).await.unwrap();
    let mut tx = begin_for_tenant(&mut conn, s.tenant_id.parse().unwrap()).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

#[tokio::test]
async fn single_event_is_idempotent_like_stripe() {
    let s = TestServer::start().await;
    let first = s
        .post("/v1/events", &touch("e-1"), StatusCode::CREATED)
        .await;
    assert_eq!(first["status"], "accepted");
    let again = s.post("/v1/events", &touch("e-1"), StatusCode::OK).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["id"], first["id"]);
    let mut changed = touch("e-1");
    changed["utm_source"] = json!("bing");
    let conflict = s.post("/v1/events", &changed, StatusCode::CONFLICT).await;
    assert_problem(&conflict, 409, "idempotency_conflict");
    assert_eq!(conflict["existing_id"], first["id"]);
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        1
    );

    // Without event_id the canonical payload's hash is the key: an exact re-send dedupes,
    // whatever the key order.
    let body = r#"{"type":"page_view","session_id":"s-9","occurred_at":"2026-01-01T10:00:00Z"}"#;
    let reordered =
        r#"{ "occurred_at":"2026-01-01T10:00:00Z", "session_id":"s-9", "type":"page_view" }"#;
    for (raw, status) in [(body, StatusCode::CREATED), (reordered, StatusCode::OK)] {
        let resp = s
            .http
            .post(s.url("/v1/events"))
            .bearer_auth(&s.key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
        let v: Value = resp.json().await.unwrap();
        assert!(v["event_id"].as_str().unwrap().starts_with("sha256:"));
    }
}

#[tokio::test]
async fn batch_gives_one_result_per_event_in_order() {
    let s = TestServer::start().await;
    s.post("/v1/events", &touch("old"), StatusCode::CREATED)
        .await;
    let mut bad = touch("bad");
    bad["occurred_at"] = json!("yesterday");
    bad["revenue"] = json!("12.00");
    let batch = json!({"events": [
        touch("a"), purchase("b", "19.99"), bad, touch("old"), touch("a"),
        {"type": "purchase", "session_id": "s", "occurred_at": Utc::now().to_rfc3339()}
    ]});
    let r = s.post("/v1/events/batch", &batch, StatusCode::OK).await;
    let statuses: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "accepted",
            "rejected",
            "duplicate",
            "duplicate",
            "rejected"
        ]
    );
    assert_eq!(
        (
            r["accepted"].as_u64(),
            r["duplicates"].as_u64(),
            r["rejected"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    let pointers: Vec<&str> = r["results"][2]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/occurred_at") && pointers.contains(&"/revenue"),
        "{pointers:?}"
    );
    assert!(r["results"][5]["errors"].to_string().contains("/revenue"));
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        3
    );
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM dead_events WHERE status = 'open'").await,
        2
    );
    // Exact money: 19.99 USD is 1999 cents.
    assert_eq!(
        tenant_scalar(
            &s,
            "SELECT revenue_cents FROM attribution_events WHERE event_id = 'b'"
        )
        .await,
        1999
    );
    // Channel normalisation: google + cpc is paid search Google.
    let ev = s
        .get("/v1/events?channel=paid_search_google", StatusCode::OK)
        .await;
    assert_eq!(ev["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn what_is_not_a_batch_fails_whole() {
    let s = TestServer::start().await;
    let send = |body: String, ct: &'static str| {
        s.http
            .post(s.url("/v1/events/batch"))
            .bearer_auth(&s.key)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = send("{not json".into(), "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_problem(&r.json().await.unwrap(), 400, "malformed_json");
    // text/plain is JSON for beacons (see collect.rs); other types are not.
    let r = send("[]".into(), "text/csv").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = send(r#"{"event": []}"#.into(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let many: Vec<Value> = (0..1001).map(|i| touch(&format!("m{i}"))).collect();
    let r = send(serde_json::to_string(&many).unwrap(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_problem(&r.json().await.unwrap(), 413, "batch_too_large");
    let mut big = touch("big");
    big["properties"] = json!({"blob": "x".repeat(1024 * 1024)});
    let r = send(
        serde_json::to_string(&vec![big]).unwrap(),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        0
    );
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM dead_events").await,
        0
    );
    // An empty batch is a batch.
    let r = s.post("/v1/events/batch", &json!([]), StatusCode::OK).await;
    assert_eq!(r["accepted"], 0);
}

#[tokio::test]
async fn racing_duplicate_pairs_store_exactly_one_row_each() {
    let s = TestServer::start().await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        for _ in 0..2 {
            let http = s.http.clone();
            let url = s.url("/v1/events");
            let key = s.key.clone();
            let body = touch(&format!("race-{i}"));
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let v: Value = r.json().await.unwrap();
                (status, v["id"].as_str().unwrap().to_string())
            }));
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for pair in results.chunks(2) {
        let mut statuses = [pair[0].0, pair[1].0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CREATED],
            "one accepted, one duplicate"
        );
        assert_eq!(pair[0].1, pair[1].1, "both answered with the stored id");
    }
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        1000
    );
}

#[tokio::test]
async fn pii_at_depth_five_is_rejected_and_stored_nowhere() {
    let s = TestServer::start().await;
    let mut ev = touch("pii-1");
    ev["properties"] = json!({"a": {"b": {"c": {"d": {"e": {"customer_email": "ada@example.com"}}}}}, "sku": "A-1"});
    let p = s
        .post("/v1/events", &ev, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_problem(&p, 422, "pii_detected");
    let pointer = p["errors"][0]["pointer"].as_str().unwrap();
    assert!(pointer.starts_with("/properties/a/b/c/d/e"), "{pointer}");
    assert!(
        !p.to_string().contains("ada@example.com"),
        "the error repeats no PII"
    );
    // A phone value under an innocent key is caught too.
    let mut ev2 = touch("pii-2");
    ev2["properties"] = json!({"contact": "+44 20 7946 0958"});
    s.post("/v1/events", &ev2, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    // Nowhere in the database: dump every row of every table as text and search it.
    let mut conn = PgConnection::connect(&s.t.cfg.owner_url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut tx = begin_for_tenant(&mut conn, s.tenant_id.parse().unwrap()).await;
    for table in tables {
        let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} t WHERE t::text ILIKE '%ada@example.com%' OR t::text LIKE '%7946 0958%'"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(hits, 0, "PII found in {table}");
    }
    tx.commit().await.unwrap();
    // The dead letters exist, redacted.
    let dead = s
        .get("/v1/dead-events?error_code=pii_detected", StatusCode::OK)
        .await;
    assert_eq!(dead["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn dead_letters_replay_once_fixed_and_can_be_discarded() {
    let s = TestServer::start().await;
    let mut ev = touch("dl-1");
    ev["properties"] = json!({"email": "x@y.io", "plan": "pro"});
    let p = s
        .post("/v1/events", &ev, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let dead_id = p["dead_event_id"].as_str().unwrap().to_string();
    // Still-invalid letters stay open with a replay count.
    let mut broken = touch("dl-2");
    broken["occurred_at"] = json!("not a time");
    let p2 = s
        .post("/v1/events", &broken, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let broken_id = p2["dead_event_id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("/v1/dead-events/{broken_id}/replay"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(r["status"], "rejected");

    // The redacted copy (PII removed) is valid: replay stores it and links both ways.
    let r = s
        .post(
            &format!("/v1/dead-events/{dead_id}/replay"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(r["status"], "accepted");
    let event = s
        .get(
            &format!("/v1/events/{}", r["id"].as_str().unwrap()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(event["replayed_from"], dead_id.as_str());
    assert_eq!(event["properties"], json!({"plan": "pro"}));
    let again = s
        .post(
            &format!("/v1/dead-events/{dead_id}/replay"),
            &json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_problem(&again, 409, "not_open");

    let listed = s.get("/v1/dead-events?status=open", StatusCode::OK).await;
    assert_eq!(listed["items"][0]["replay_count"], 1);
    let d = s
        .post(
            &format!("/v1/dead-events/{broken_id}/discard"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(d["status"], "discarded");
    let bulk = s
        .post("/v1/dead-events/replay", &json!({}), StatusCode::OK)
        .await;
    assert_eq!(bulk["replayed"], 0, "nothing open is left");
}

#[tokio::test]
async fn bulk_replay_by_filter() {
    let s = TestServer::start().await;
    for i in 0..3 {
        let mut ev = touch(&format!("b-{i}"));
        ev["properties"] = json!({"phone": "555-123-4567"});
        s.post("/v1/events", &ev, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let r = s
        .post(
            "/v1/dead-events/replay",
            &json!({"error_code": "pii_detected"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(r["replayed"], 3);
    assert_eq!(
        tenant_scalar(
            &s,
            "SELECT count(*) FROM attribution_events WHERE replayed_from IS NOT NULL"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn rate_limit_counts_events_and_refuses_whole_batches() {
    let s = TestServer::start().await;
    let mut conn = PgConnection::connect(&s.t.cfg.owner_url).await.unwrap();
    let mut tx = begin_for_tenant(&mut conn, s.tenant_id.parse().unwrap()).await;
    sqlx::query("UPDATE tenant_settings SET rate_limit_per_minute = 60, rate_limit_burst = 10")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let seven: Vec<Value> = (0..7).map(|i| touch(&format!("r{i}"))).collect();
    let resp = s
        .http
        .post(s.url("/v1/events/batch"))
        .bearer_auth(&s.key)
        .json(&seven)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["ratelimit-limit"], "60");
    assert_eq!(resp.headers()["ratelimit-remaining"], "3");
    let five: Vec<Value> = (7..12).map(|i| touch(&format!("r{i}"))).collect();
    let resp = s
        .http
        .post(s.url("/v1/events/batch"))
        .bearer_auth(&s.key)
        .json(&five)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(resp.headers()["ratelimit-remaining"], "0");
    assert!(resp.headers().contains_key("ratelimit-reset"));
    assert_problem(&resp.json().await.unwrap(), 429, "rate_limited");
    assert_eq!(
        tenant_scalar(&s, "SELECT count(*) FROM attribution_events").await,
        7,
        "the refused batch wrote nothing"
    );
    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tally_rate_limited_events_total"));
}

/// Dead letters page like every listing: newest first by `(created_at, id)`, a cursor that
/// neither repeats nor skips rows that share a timestamp, and a half-open time range.
#[tokio::test]
async fn dead_letters_page_by_cursor_and_time_range() {
    let s = TestServer::start().await;
    let before = Utc::now() - Duration::seconds(1);
    let broken: Vec<Value> = (0..7)
        .map(|i| {
            let mut e = touch(&format!("d{i}"));
            e.as_object_mut().unwrap().remove("session_id");
            e
        })
        .collect();
    let batch = s
        .post("/v1/events/batch", &json!(broken), StatusCode::OK)
        .await;
    assert_eq!(batch["rejected"], 7, "{batch}");
    let after = Utc::now() + Duration::seconds(1);

    let mut seen: Vec<(String, String)> = Vec::new();
    let mut path = "/v1/dead-events?limit=3&status=open&source=api".to_string();
    let mut pages = 0;
    loop {
        let page = s.get(&path, StatusCode::OK).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["created_at"].as_str().unwrap().to_string(),
                item["id"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/dead-events?limit=3&status=open&source=api&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, no row twice");
    assert_eq!(seen.len(), 7);

    let count = |body: Value| body["items"].as_array().unwrap().len();
    let (before, after) = (
        before.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        after.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
    );
    let inside = s
        .get(
            &format!("/v1/dead-events?from={before}&to={after}"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(count(inside), 7);
    let later = s
        .get(&format!("/v1/dead-events?from={after}"), StatusCode::OK)
        .await;
    assert_eq!(count(later), 0);
    let earlier = s
        .get(&format!("/v1/dead-events?to={before}"), StatusCode::OK)
        .await;
    assert_eq!(count(earlier), 0);
    // `from` is inclusive and `to` exclusive, at a stamp rows really have.
    let stamp = |t: &str| t.parse::<chrono::DateTime<Utc>>().unwrap();
    let newest = seen[0].0.clone();
    let at_newest = seen
        .iter()
        .filter(|(t, _)| stamp(t) == stamp(&newest))
        .count();
    let newest = newest.replace('+', "%2B");
    let from_newest = s
        .get(&format!("/v1/dead-events?from={newest}"), StatusCode::OK)
        .await;
    assert_eq!(count(from_newest), at_newest);
    let to_newest = s
        .get(&format!("/v1/dead-events?to={newest}"), StatusCode::OK)
        .await;
    assert_eq!(count(to_newest), 7 - at_newest);
    let other_source = s.get("/v1/dead-events?source=stripe", StatusCode::OK).await;
    assert_eq!(count(other_source), 0);
}

#[tokio::test]
async fn search_filters_pages_and_never_crosses_tenants() {
    let s = TestServer::start().await;
    let events: Vec<Value> = (0..25)
        .map(|i| {
            let mut e = if i % 5 == 0 {
                purchase(&format!("p{i}"), "5.00")
            } else {
                touch(&format!("t{i}"))
            };
            e["occurred_at"] = json!((Utc::now() - Duration::minutes(100 - i)).to_rfc3339());
            e["session_id"] = json!(format!("s-{}", i % 2));
            e
        })
        .collect();
    s.post("/v1/events/batch", &json!(events), StatusCode::OK)
        .await;
    let mut seen = Vec::new();
    let mut path = "/v1/events?limit=10".to_string();
    loop {
        let page = s.get(&path, StatusCode::OK).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["occurred_at"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?limit=10&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    let conv = s.get("/v1/events?kind=conversion", StatusCode::OK).await;
    assert_eq!(conv["items"].as_array().unwrap().len(), 5);
    let sess = s
        .get("/v1/events?session_id=s-1&type=page_view", StatusCode::OK)
        .await;
    assert!(
        sess["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["session_id"] == "s-1")
    );
    let order = s.get("/v1/events?order_id=order-p10", StatusCode::OK).await;
    assert_eq!(order["items"].as_array().unwrap().len(), 1);
    let bad = s
        .get(
            "/v1/events?cursor=garbage",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&bad, 422, "validation_failed");

    // Another tenant sees none of it, even by id.
    let other = s
        .call(
            Method::POST,
            "/v1/admin/tenants",
            Some(crate::common::ADMIN_TOKEN),
            Some(&json!({"name": "B"})),
            StatusCode::CREATED,
        )
        .await;
    let b_key = other["api_key"]["secret"].as_str().unwrap();
    let b_list = s
        .call(Method::GET, "/v1/events", Some(b_key), None, StatusCode::OK)
        .await;
    assert_eq!(b_list["items"].as_array().unwrap().len(), 0);
    let id = conv["items"][0]["id"].as_str().unwrap();
    s.call(
        Method::GET,
        &format!("/v1/events/{id}"),
        Some(b_key),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn tenant_channel_rules_override_the_defaults() {
    let s = TestServer::start().await;
    let mut e = touch("c1");
    e["utm_source"] = json!("partnerx");
    e["utm_medium"] = json!("referral-program");
    s.post("/v1/events", &e, StatusCode::CREATED).await;
    let rule = s
        .post(
            "/v1/channel-rules",
            &json!({"priority": 150, "utm_source": "PartnerX", "channel_code": "affiliate"}),
            StatusCode::CREATED,
        )
        .await;
    let mut e2 = touch("c2");
    e2["utm_source"] = json!("partnerx");
    e2["utm_medium"] = json!("referral-program");
    s.post("/v1/events", &e2, StatusCode::CREATED).await;
    let aff = s.get("/v1/events?channel=affiliate", StatusCode::OK).await;
    assert_eq!(aff["items"].as_array().unwrap().len(), 1);
    assert_eq!(aff["items"][0]["event_id"], "c2");
    let bad = s
        .post(
            "/v1/channel-rules",
            &json!({"priority": 1, "utm_source": "x", "channel_code": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&bad, 422, "validation_failed");
    let id = rule["rule_id"].as_str().unwrap();
    s.call(
        Method::DELETE,
        &format!("/v1/channel-rules/{id}"),
        Some(&s.key.clone()),
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let mut click = touch("c3");
    click["gclid"] = json!("Cj0KCQ");
    click.as_object_mut().unwrap().remove("utm_source");
    click.as_object_mut().unwrap().remove("utm_medium");
    s.post("/v1/events", &click, StatusCode::CREATED).await;
    let g = s
        .get("/v1/events?channel=paid_search_google", StatusCode::OK)
        .await;
    assert_eq!(g["items"].as_array().unwrap().len(), 1);
    assert_eq!(g["items"][0]["event_id"], "c3");
}

#[tokio::test]
async fn replay_concerns_tracking_events_only() {
    let s = TestServer::start().await;
    // A payment delivery's dead letter is not a tracking event: it is replayed by its vendor.
    let mut conn = PgConnection::connect(&s.t.cfg.owner_url).await.unwrap();
    let mut tx = begin_for_tenant(&mut conn, s.tenant_id.parse().unwrap()).await;
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO dead_events (tenant_id, id, source, error_code, payload, correlation_id)
         VALUES ($1::uuid, tally_uuid_v7(), 'stripe', 'malformed_json', '{}', 'c') RETURNING id",
    )
    .bind(&s.tenant_id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let p = s
        .post(
            &format!("/v1/dead-events/{id}/replay"),
            &json!({}),
            StatusCode::CONFLICT,
        )
        .await;
    assert_problem(&p, 409, "not_replayable");
    let bulk = s
        .post("/v1/dead-events/replay", &json!({}), StatusCode::OK)
        .await;
    assert_eq!(bulk["replayed"], 0);
    assert_eq!(bulk["still_invalid"], 0);
}

/// A backfilled sale schedules the recompute of its own day only (migration 0151): no other
/// day's journeys contain it. A backfilled touch schedules its day and every day since, up to
/// the lookback, whose conversions it may join.
#[tokio::test]
async fn a_backfilled_sale_schedules_its_day_and_a_backfilled_touch_the_days_since() {
    let s = TestServer::start().await;
    let days_ago = |d: i64| (Utc::now() - Duration::days(d)).to_rfc3339();
    let windows = "SELECT count(*) FROM attribution_recompute_jobs WHERE status = 'pending'";
    let mut sale = purchase("old-sale", "12.00");
    sale["occurred_at"] = json!(days_ago(10));
    s.post("/v1/events", &sale, StatusCode::CREATED).await;
    assert_eq!(tenant_scalar(&s, windows).await, 1);

    let mut visit = touch("old-visit");
    visit["occurred_at"] = json!(days_ago(10));
    s.post("/v1/events", &visit, StatusCode::CREATED).await;
    // Ten days ago through today: 11 local days, 12 when the clock crosses midnight meanwhile.
    let pending = tenant_scalar(&s, windows).await;
    assert!((11..=12).contains(&pending), "{pending} windows");
}
