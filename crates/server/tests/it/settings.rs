//! Tenant settings: merge-patch semantics, validation of every member, what a change does to
//! ingestion (currency, rate limit) and to attribution (the recomputes it schedules), tenancy.

use crate::common::{ADMIN_TOKEN, TestServer, assert_problem};
use crate::events::{purchase, tenant_scalar, touch};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tally_store::TenantId;
use tally_store::tenants::Scope;
use tally_worker::bench::{DayEvent, insert_events};
use uuid::Uuid;

async fn patch(s: &TestServer, body: &Value, expect: StatusCode) -> Value {
    s.call(
        Method::PATCH,
        "/v1/settings",
        Some(&s.key),
        Some(body),
        expect,
    )
    .await
}

fn pointers(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {problem}"))
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Writes conversions (and one touch) straight into the table, so that no ingestion scheduling
/// is in the way of what the settings change schedules.
async fn conversions_at(s: &TestServer, times: &[&str]) {
    let mut events: Vec<DayEvent> = times
        .iter()
        .enumerate()
        .map(|(i, t)| DayEvent {
            id: Uuid::now_v7(),
            identity: format!("u{i}"),
            occurred_at: at(t),
            channel: "direct",
            revenue_cents: Some(1000),
        })
        .collect();
    events.push(DayEvent {
        id: Uuid::now_v7(),
        identity: "u0".into(),
        occurred_at: at("2026-03-01T12:00:00Z"),
        channel: "email",
        revenue_cents: None,
    });
    let tenant: TenantId = s.tenant_id.parse().unwrap();
    let mut tx = s.t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut tx, tenant, &events).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn members_present_change_and_absent_ones_stay() {
    let s = TestServer::start().await;
    let defaults = s.get("/v1/settings", StatusCode::OK).await;
    assert_eq!(defaults["currency"], "USD");
    assert_eq!(defaults["time_zone"], "UTC");
    assert_eq!(defaults["lookback_days"], 30);
    assert_eq!(defaults["time_decay_half_life_hours"], 168.0);
    assert_eq!(defaults["markov_order"], 1);
    assert_eq!(defaults["default_model"], "last_non_direct");
    assert_eq!(defaults["rate_limit_per_minute"], 600000);
    assert_eq!(defaults["rate_limit_burst"], 20000);
    assert_eq!(defaults["reconciliation_grace_hours"], 72);

    let first = patch(
        &s,
        &json!({"currency": "eur", "default_model": "shapley", "reconciliation_grace_hours": 0}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["settings"]["currency"], "EUR");
    assert_eq!(first["settings"]["default_model"], "shapley");
    assert_eq!(first["settings"]["reconciliation_grace_hours"], 0);
    assert_eq!(first["settings"]["lookback_days"], 30);
    assert_eq!(first["recompute"]["windows"], 0, "{first}");

    // The merge-patch media type is accepted as well as plain JSON.
    let resp = s
        .http
        .patch(s.url("/v1/settings"))
        .bearer_auth(&s.key)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"markov_order": 2, "time_zone": "europe/berlin"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let now = s.get("/v1/settings", StatusCode::OK).await;
    assert_eq!(now["markov_order"], 2);
    assert_eq!(
        now["time_zone"], "Europe/Berlin",
        "stored as PostgreSQL spells it"
    );
    assert_eq!(now["currency"], "EUR", "kept from the first change");
    assert_eq!(now["default_model"], "shapley");
    assert_eq!(now["rate_limit_burst"], 20000);

    let empty = patch(&s, &json!({}), StatusCode::OK).await;
    assert_eq!(empty["settings"]["markov_order"], 2);

    let openapi = s.get("/openapi.json", StatusCode::OK).await;
    for path in ["/v1/settings", "/v1/admin/tenants/{tenant_id}/settings"] {
        assert!(openapi["paths"][path]["get"].is_object(), "{path}");
        assert!(openapi["paths"][path]["patch"].is_object(), "{path}");
    }
    assert!(openapi["components"]["schemas"]["SettingsPatch"].is_object());
}

#[tokio::test]
async fn every_invalid_member_is_a_422_with_its_pointer_and_nothing_changes() {
    let s = TestServer::start().await;
    let body = patch(
        &s,
        &json!({
            "currency": "EURO", "time_zone": "CET", "lookback_days": 0,
            "time_decay_half_life_hours": 1e300, "markov_order": 4, "default_model": "best",
            "rate_limit_per_minute": 99999999999999999999999u128 as f64, "rate_limit_burst": "10",
            "reconciliation_grace_hours": 8761, "colour": "blue"
        }),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_problem(&body, 422, "validation_failed");
    assert_eq!(
        pointers(&body),
        [
            ("/currency", "invalid_value"),
            ("/time_zone", "invalid_value"),
            ("/lookback_days", "out_of_range"),
            ("/time_decay_half_life_hours", "out_of_range"),
            ("/markov_order", "out_of_range"),
            ("/default_model", "invalid_value"),
            ("/rate_limit_per_minute", "out_of_range"),
            ("/rate_limit_burst", "invalid_type"),
            ("/reconciliation_grace_hours", "out_of_range"),
            ("/colour", "unknown_field"),
        ]
        .map(|(p, c)| (p.to_string(), c.to_string()))
    );

    // Refused one at a time, including what only PostgreSQL can tell and what PostgreSQL would
    // choke on (NUL bytes), each with its pointer.
    for (member, value, code) in [
        ("time_zone", json!("Europe/Atlantis"), "invalid_value"),
        // U+0000 is refused for every body by the JSON extractor, before the settings rules.
        ("time_zone", json!("Europe/Berlin\u{0}"), "invalid_format"),
        ("time_zone", json!("US/Eastern"), "invalid_value"),
        ("time_zone", json!("Etc/GMT+1"), "invalid_value"),
        ("time_zone", json!(["Europe/Berlin"]), "invalid_type"),
        ("currency", json!("EU\u{0}"), "invalid_format"),
        ("currency", json!("XAU"), "invalid_value"),
        ("currency", json!(978), "invalid_type"),
        ("lookback_days", json!(366), "out_of_range"),
        ("lookback_days", json!(7.5), "invalid_type"),
        ("lookback_days", json!("30"), "invalid_type"),
        ("lookback_days", json!(null), "required"),
        ("time_decay_half_life_hours", json!(0), "out_of_range"),
        ("time_decay_half_life_hours", json!(-5), "out_of_range"),
        ("markov_order", json!({}), "invalid_type"),
        ("default_model", json!("Linear"), "invalid_value"),
        ("rate_limit_per_minute", json!(0), "out_of_range"),
        ("rate_limit_burst", json!(i64::MIN), "out_of_range"),
        ("reconciliation_grace_hours", json!(-1), "out_of_range"),
        ("a/b", json!(1), "unknown_field"),
    ] {
        // With a valid member beside it, which must not be written either.
        let mut change = json!({"currency": "EUR"});
        change[member] = value.clone();
        let body = patch(&s, &change, StatusCode::UNPROCESSABLE_ENTITY).await;
        let pointer = format!("/{}", member.replace('/', "~1"));
        let found = pointers(&body);
        assert!(
            found.contains(&(pointer.clone(), code.to_string())),
            "{member}={value}: {body}"
        );
    }
    for body in [json!([]), json!("x"), json!(5)] {
        let problem = patch(&s, &body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            pointers(&problem),
            [(String::new(), "invalid_type".to_string())]
        );
    }
    let resp = s
        .http
        .patch(s.url("/v1/settings"))
        .bearer_auth(&s.key)
        .header("content-type", "application/json")
        .body(r#"{"lookback_days": 1e400}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "not a JSON number");

    let after = s.get("/v1/settings", StatusCode::OK).await;
    assert_eq!(after["currency"], "USD", "no refused change wrote anything");
    assert_eq!(after["lookback_days"], 30);
}

#[tokio::test]
async fn a_purchase_without_currency_takes_the_new_currency_at_once() {
    let s = TestServer::start().await;
    let mut sale = purchase("p1", "10.00");
    sale.as_object_mut().unwrap().remove("currency");
    // The first event caches the tenant's ingestion settings (currency USD).
    s.post("/v1/events", &sale, StatusCode::CREATED).await;
    patch(&s, &json!({"currency": "EUR"}), StatusCode::OK).await;
    sale["event_id"] = json!("p2");
    sale["order_id"] = json!("order-p2");
    s.post("/v1/events", &sale, StatusCode::CREATED).await;
    assert_eq!(
        tenant_scalar(
            &s,
            "SELECT count(*) FROM attribution_events WHERE event_id = 'p2' AND currency = 'EUR'"
        )
        .await,
        1
    );
    assert_eq!(
        tenant_scalar(
            &s,
            "SELECT count(*) FROM attribution_events WHERE event_id = 'p1' AND currency = 'USD'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_lower_rate_limit_applies_without_a_restart() {
    let s = TestServer::start().await;
    let batch = |from: usize| -> Value {
        (from..from + 7)
            .map(|i| touch(&format!("r{i}")))
            .collect::<Vec<_>>()
            .into()
    };
    // Under the default limit, and it caches the tenant's limiter.
    s.post("/v1/events/batch", &batch(0), StatusCode::OK).await;
    patch(
        &s,
        &json!({"rate_limit_per_minute": 60, "rate_limit_burst": 5}),
        StatusCode::OK,
    )
    .await;
    // The new burst (5) applies at once: a batch of 7 can never pass it.
    let refused = s
        .post("/v1/events/batch", &batch(7), StatusCode::PAYLOAD_TOO_LARGE)
        .await;
    assert_problem(&refused, 413, "batch_exceeds_burst");
}

#[tokio::test]
async fn an_attribution_change_schedules_every_conversion_day_once() {
    let s = TestServer::start().await;
    conversions_at(
        &s,
        &[
            "2026-03-10T08:00:00Z",
            "2026-03-10T23:30:00Z",
            "2026-03-12T00:30:00Z",
            "2026-03-20T12:00:00Z",
        ],
    )
    .await;
    let pending_jobs =
        "SELECT count(*) FROM jobs WHERE kind = 'attribution.recompute' AND status = 'pending'";
    assert_eq!(tenant_scalar(&s, pending_jobs).await, 0);

    let change = patch(&s, &json!({"lookback_days": 7}), StatusCode::OK).await;
    assert_eq!(change["recompute"]["windows"], 3, "{change}");
    assert_eq!(change["recompute"]["from"], "2026-03-10T00:00:00Z");
    assert_eq!(change["recompute"]["to"], "2026-03-21T00:00:00Z");
    assert_eq!(tenant_scalar(&s, pending_jobs).await, 3);
    assert_eq!(
        tenant_scalar(
            &s,
            "SELECT count(*) FROM attribution_recompute_jobs
             WHERE status = 'pending' AND window_end - window_start = interval '1 day'
               AND window_start IN ('2026-03-10T00:00Z', '2026-03-12T00:00Z', '2026-03-20T00:00Z')"
        )
        .await,
        3
    );

    // The same windows again: each still has its pending job, so none gets a second one.
    let again = patch(
        &s,
        &json!({"time_decay_half_life_hours": 24, "markov_order": 3}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["recompute"]["windows"], 3);
    assert_eq!(tenant_scalar(&s, pending_jobs).await, 3);

    // Values that alter nothing schedule nothing.
    for body in [
        json!({"lookback_days": 7}),
        json!({"currency": "EUR", "rate_limit_burst": 100, "default_model": "linear"}),
    ] {
        let same = patch(&s, &body, StatusCode::OK).await;
        assert_eq!(same["recompute"]["windows"], 0, "{body}");
    }
    assert_eq!(tenant_scalar(&s, pending_jobs).await, 3);
}

#[tokio::test]
async fn a_time_zone_change_schedules_the_days_of_the_new_zone() {
    let s = TestServer::start().await;
    // Two UTC days, one day in Auckland (UTC+13 in March): 12:30 and 13:30 on the 11th.
    conversions_at(&s, &["2026-03-10T23:30:00Z", "2026-03-11T00:30:00Z"]).await;
    let change = patch(
        &s,
        &json!({"time_zone": "Pacific/Auckland"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(change["settings"]["time_zone"], "Pacific/Auckland");
    assert_eq!(change["recompute"]["windows"], 1, "{change}");
    assert_eq!(change["recompute"]["from"], "2026-03-10T11:00:00Z");
    assert_eq!(change["recompute"]["to"], "2026-03-11T11:00:00Z");
    // Honolulu (UTC-10): the 10th, 13:30 and 14:30.
    let change = patch(
        &s,
        &json!({"time_zone": "Pacific/Honolulu"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(change["recompute"]["windows"], 1, "{change}");
    assert_eq!(change["recompute"]["from"], "2026-03-10T10:00:00Z");
}

#[tokio::test]
async fn tenants_see_only_their_own_settings_and_the_operator_sees_any() {
    let s = TestServer::start().await;
    let (other, other_key) = s.t.db.create_tenant("Other shop").await.unwrap();
    let other_path = format!("/v1/admin/tenants/{}/settings", other.tenant_id);

    patch(&s, &json!({"currency": "JPY"}), StatusCode::OK).await;
    let b = s
        .call(
            Method::GET,
            "/v1/settings",
            Some(&other_key.secret),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(b["currency"], "USD", "A's change stays A's");

    // A tenant key cannot use the operator's path, for another tenant or its own.
    for path in [
        &other_path,
        &format!("/v1/admin/tenants/{}/settings", s.tenant_id),
    ] {
        s.call(
            Method::GET,
            path,
            Some(&s.key),
            None,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        s.call(
            Method::PATCH,
            path,
            Some(&s.key),
            Some(&json!({"currency": "GBP"})),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }

    let changed = s
        .call(
            Method::PATCH,
            &other_path,
            Some(ADMIN_TOKEN),
            Some(&json!({"time_zone": "America/New_York", "lookback_days": 14})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(changed["settings"]["time_zone"], "America/New_York");
    let read = s
        .call(
            Method::GET,
            &other_path,
            Some(ADMIN_TOKEN),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(read["lookback_days"], 14);
    assert_eq!(read["currency"], "USD");
    let a = s.get("/v1/settings", StatusCode::OK).await;
    assert_eq!(
        a["time_zone"], "UTC",
        "the operator's change of B left A alone"
    );
    assert_eq!(a["currency"], "JPY");

    let invalid = s
        .call(
            Method::PATCH,
            &other_path,
            Some(ADMIN_TOKEN),
            Some(&json!({"markov_order": 9})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(
        pointers(&invalid),
        [("/markov_order".to_string(), "out_of_range".to_string())]
    );
    let nobody = format!("/v1/admin/tenants/{}/settings", Uuid::now_v7());
    s.call(
        Method::GET,
        &nobody,
        Some(ADMIN_TOKEN),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    s.call(
        Method::PATCH,
        &nobody,
        Some(ADMIN_TOKEN),
        Some(&json!({})),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn settings_need_the_admin_scope() {
    let s = TestServer::start().await;
    let tenant: TenantId = s.tenant_id.parse().unwrap();
    let reader =
        s.t.db
            .create_api_key(tenant, "reader", &[Scope::Read, Scope::Ingest])
            .await
            .unwrap();
    let body = s
        .call(
            Method::GET,
            "/v1/settings",
            Some(&reader.secret),
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_problem(&body, 403, "forbidden");
    s.call(
        Method::PATCH,
        "/v1/settings",
        Some(&reader.secret),
        Some(&json!({"currency": "EUR"})),
        StatusCode::FORBIDDEN,
    )
    .await;
    s.call(
        Method::PATCH,
        "/v1/settings",
        None,
        Some(&json!({"currency": "EUR"})),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        s.get("/v1/settings", StatusCode::OK).await["currency"],
        "USD"
    );
}
