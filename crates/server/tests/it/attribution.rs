use crate::common::{TestServer, assert_problem, tenant, until, workers};
use reqwest::StatusCode;
use serde_json::json;
use tally_store::jobs::{self, NewJob};
use tally_worker::bench::{generate_day, insert_events};

const FROM: &str = "2026-03-10T00:00:00Z";
const TO: &str = "2026-03-11T00:00:00Z";

#[tokio::test]
async fn recompute_then_read_channels_and_a_conversion() {
    let s = TestServer::start().await;
    let day = chrono::DateTime::parse_from_rfc3339(FROM).unwrap().to_utc();
    let events = generate_day(2_000, day, 3);
    let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
    insert_events(&mut tx, tenant(&s), &events).await.unwrap();
    tx.commit().await.unwrap();
    let revenue: i64 = events.iter().filter_map(|e| e.revenue_cents).sum();
    let _stop = workers(&s);

    let job = s
        .post(
            "/v1/attribution/recompute",
            &json!({"from": FROM, "to": TO}),
            StatusCode::ACCEPTED,
        )
        .await;
    let path = format!("/v1/attribution/jobs/{}", job["id"].as_str().unwrap());
    let done = until(&s, &path, |j| j["status"] == "succeeded").await;
    assert_eq!(done["run_count"], 1);

    let report = s
        .get(
            &format!("/v1/attribution/channels?from={FROM}&to={TO}"),
            StatusCode::OK,
        )
        .await;
    let channels = report["channels"].as_array().unwrap();
    assert!(!channels.is_empty());
    for model in tally_attribution::Model::ALL {
        let total: i64 = channels
            .iter()
            .flat_map(|c| c["models"].as_array().unwrap())
            .filter(|m| m["model"] == model.code())
            .map(|m| m["revenue_cents"].as_i64().unwrap())
            .sum();
        assert_eq!(total, revenue, "{model}");
    }
    let linear = s
        .get(
            &format!("/v1/attribution/channels?from={FROM}&to={TO}&model=linear"),
            StatusCode::OK,
        )
        .await;
    assert!(linear["channels"].as_array().unwrap().iter().all(|c| {
        let models = c["models"].as_array().unwrap();
        models.len() == 1 && models[0]["model"] == "linear"
    }));

    let sale = events.iter().find(|e| e.revenue_cents.is_some()).unwrap();
    // The bench stores the row id as the client event id too, so this finds it either way.
    let detail = s
        .get(
            &format!("/v1/attribution/conversions/{}", sale.id),
            StatusCode::OK,
        )
        .await;
    assert!(!detail["journey"].as_array().unwrap().is_empty());
    let splits = detail["splits"].as_array().unwrap();
    assert_eq!(splits.len(), 8);
    for split in splits {
        let cents: i64 = split["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["allocated_cents"].as_i64().unwrap())
            .sum();
        assert_eq!(cents, sale.revenue_cents.unwrap(), "{split}");
    }
    s.get("/v1/attribution/conversions/nope", StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn bad_windows_and_models_are_refused() {
    let s = TestServer::start().await;
    let body = s
        .post(
            "/v1/attribution/recompute",
            &json!({"from": TO, "to": FROM}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&body, 422, "validation_failed");
    let body = s
        .get(
            &format!("/v1/attribution/channels?from={FROM}&to={TO}&model=Linear"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_problem(&body, 400, "invalid_query");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("first_touch, last_touch,") && detail.contains("shapley"),
        "{detail}"
    );
    s.get(
        &format!("/v1/attribution/jobs/{}", uuid::Uuid::now_v7()),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_failed_job_is_listed_and_replayed_once() {
    let s = TestServer::start().await;
    let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
    let job = NewJob {
        kind: "no-such-kind",
        dedupe_key: None,
        payload: json!({}),
        correlation_id: "corr-failed",
    };
    jobs::enqueue(&mut tx, tenant(&s), &job).await.unwrap();
    tx.commit().await.unwrap();
    let _stop = workers(&s);

    let failed = until(&s, "/v1/jobs/failed", |f| {
        f.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let failed = &failed[0];
    assert_eq!(failed["kind"], "no-such-kind");
    assert_eq!(failed["correlation_id"], "corr-failed");
    let replay = format!("/v1/jobs/failed/{}/replay", failed["id"].as_str().unwrap());
    let replayed = s.post(&replay, &json!({}), StatusCode::ACCEPTED).await;
    assert!(replayed["job_id"].is_string());
    let again = s.post(&replay, &json!({}), StatusCode::CONFLICT).await;
    assert_problem(&again, 409, "conflict");
}

#[tokio::test]
async fn top_paths_count_channel_sequences_like_the_drill_down() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    let ev = |body: serde_json::Value| {
        let s = &s;
        async move { s.post("/v1/events", &body, StatusCode::CREATED).await }
    };
    // Two journeys paid search → organic (the second with a repeated click, collapsed), one
    // without touches (direct), and one in JPY with the same path (never added to USD).
    for (n, cur, revenue) in [
        ("1", "USD", "10.00"),
        ("2", "USD", "5.50"),
        ("4", "JPY", "700"),
    ] {
        let sess = format!("s-{n}");
        ev(json!({"event_id": format!("c-{n}"), "type": "ad_click", "occurred_at": "2026-03-10T09:00:00Z", "session_id": sess, "gclid": format!("g-{n}")})).await;
        if n == "2" {
            ev(json!({"event_id": "c-2b", "type": "ad_click", "occurred_at": "2026-03-10T09:10:00Z", "session_id": sess, "gclid": "g-2b"})).await;
        }
        ev(json!({"event_id": format!("v-{n}"), "type": "page_view", "occurred_at": "2026-03-10T09:30:00Z", "session_id": sess, "referrer": "https://www.google.com/"})).await;
        ev(json!({"event_id": format!("p-{n}"), "type": "purchase", "occurred_at": "2026-03-10T10:00:00Z", "session_id": sess, "order_id": format!("o-{n}"), "revenue": revenue, "currency": cur})).await;
    }
    ev(json!({"event_id": "p-3", "type": "purchase", "occurred_at": "2026-03-10T11:00:00Z", "session_id": "s-3", "order_id": "o-3", "revenue": "3.00", "currency": "USD"})).await;
    // Paths are stored by the recompute with the allocations.
    crate::reconciliation::quiet(&s).await;

    let report = s
        .get(
            &format!("/v1/attribution/paths?from={FROM}&to={TO}"),
            StatusCode::OK,
        )
        .await;
    let paths = report["paths"].as_array().unwrap();
    let journey = s
        .get("/v1/attribution/conversions/p-2", StatusCode::OK)
        .await;
    let mut expected: Vec<String> = Vec::new();
    for step in journey["journey"].as_array().unwrap() {
        let code = step["channel_code"].as_str().unwrap().to_string();
        if expected.last() != Some(&code) {
            expected.push(code);
        }
    }
    assert_eq!(expected.len(), 2, "{journey}");
    assert_eq!(paths.len(), 3, "{report}");
    assert_eq!(paths[0]["path"], json!(expected));
    assert_eq!(paths[0]["currency"], "USD");
    assert_eq!(paths[0]["conversions"], 2);
    assert_eq!(paths[0]["revenue_cents"], 1550);
    let jpy = paths.iter().find(|p| p["currency"] == "JPY").unwrap();
    assert_eq!(jpy["path"], json!(expected));
    assert_eq!(jpy["revenue_cents"], 700);
    let direct = paths
        .iter()
        .find(|p| p["path"] == json!(["direct"]))
        .unwrap();
    assert_eq!(direct["revenue_cents"], 300);

    let one = s
        .get(
            &format!("/v1/attribution/paths?from={FROM}&to={TO}&limit=1"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(one["paths"].as_array().unwrap().len(), 1);
    let bad = s
        .get(
            &format!("/v1/attribution/paths?from={FROM}&to={TO}&limit=0"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&bad, 422, "validation_failed");
}
