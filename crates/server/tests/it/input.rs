//! Input hardening: what PostgreSQL cannot store is refused at the door with a pointer, odd but
//! valid input is stored and read back, and no bad input reaches a 5xx.

use crate::common::{ADMIN_TOKEN, TestServer, assert_problem};
use crate::events::{purchase, touch};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn first_pointer(problem: &Value) -> &str {
    problem["errors"][0]["pointer"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn nul_in_any_body_is_refused_with_its_pointer() {
    let s = TestServer::start().await;
    let mut event = touch("nul-1");
    event["properties"] = json!({"note": "a\u{0}b"});
    let p = s
        .post("/v1/events", &event, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_problem(&p, 422, "validation_failed");
    assert_eq!(first_pointer(&p), "/properties/note");

    let mut event = touch("nul-2");
    event["properties"] = json!({"k\u{0}": 1});
    let p = s
        .post("/v1/events", &event, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(first_pointer(&p), "/properties");

    let mut bad = touch("nul-3");
    bad["session_id"] = json!("s\u{0}");
    let batch = json!({"events": [touch("ok-1"), bad]});
    let p = s
        .post("/v1/events/batch", &batch, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(first_pointer(&p), "/events/1/session_id");

    let p = s
        .post(
            "/v1/keys",
            &json!({"name": "ci\u{0}", "scopes": ["read"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(first_pointer(&p), "/name");
    let adjustment = json!({"amount_cents": 100, "currency": "USD", "reason": "x\u{0}"});
    let p = s
        .post(
            "/v1/ledger/adjustments",
            &adjustment,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(first_pointer(&p), "/reason");
    let rule = json!({"priority": 150, "utm_source": "p\u{0}", "channel_code": "affiliate"});
    let p = s
        .post("/v1/channel-rules", &rule, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(first_pointer(&p), "/utm_source");
    let endpoint = json!({"source": "woocommerce", "description": "\u{0}"});
    let p = s
        .post(
            "/v1/webhook-endpoints",
            &endpoint,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(first_pointer(&p), "/description");
    let p = s
        .call(
            Method::POST,
            "/v1/admin/tenants",
            Some(ADMIN_TOKEN),
            Some(&json!({"name": "Acme\u{0}"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(first_pointer(&p), "/name");

    // Nothing of it was stored, not even as a dead letter.
    let dead = s.get("/v1/dead-events", StatusCode::OK).await;
    assert_eq!(dead["items"], json!([]), "{dead}");
}

#[tokio::test]
async fn nul_in_a_query_or_path_is_a_400_naming_the_parameter() {
    let s = TestServer::start().await;
    let p = s.get("/v1/orders/%00", StatusCode::BAD_REQUEST).await;
    assert_problem(&p, 400, "invalid_path");
    assert_eq!(first_pointer(&p), "/order_id");
    for path in [
        "/v1/events?session_id=%00",
        "/v1/ledger?order_id=a%00",
        "/v1/dead-events?error_code=%00",
    ] {
        let p = s.get(path, StatusCode::BAD_REQUEST).await;
        assert_problem(&p, 400, "invalid_query");
        assert!(first_pointer(&p).starts_with('/'), "{path}: {p}");
    }
}

/// A NUL used to fail the whole group commit it joined; the valid events beside it must not
/// notice it.
#[tokio::test]
async fn a_nul_event_never_fails_concurrent_valid_events() {
    let s = TestServer::start().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (http, url, key) = (s.http.clone(), s.url("/v1/events"), s.key.clone());
        let mut event = touch(&format!("c-{i}"));
        if i % 2 == 0 {
            event["properties"] = json!({"note": "\u{0}"});
        }
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(key)
                .json(&event)
                .send()
                .await
                .unwrap();
            (i, resp.status())
        }));
    }
    for task in tasks {
        let (i, status) = task.await.unwrap();
        let expected = if i % 2 == 0 {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::CREATED
        };
        assert_eq!(status, expected, "event {i}");
    }
}

/// Doubles at the edges of their range are stored by jsonb as exact decimals and must read back
/// unchanged in every listing (they used to break `GET /v1/events` for good).
#[tokio::test]
async fn extreme_numbers_are_stored_and_read_back() {
    let s = TestServer::start().await;
    let properties = json!({
        "max": f64::MAX, "min": -f64::MAX, "tiny": 5e-324, "small": 2.2250738585072014e-308,
        "neg_zero": -0.0, "big_int": u64::MAX, "third": 1.0 / 3.0
    });
    let mut event = purchase("big-1", "1.00");
    event["properties"] = properties.clone();
    let created = s.post("/v1/events", &event, StatusCode::CREATED).await;
    let listed = s.get("/v1/events", StatusCode::OK).await;
    let by_id = s
        .get(
            &format!("/v1/events/{}", created["id"].as_str().unwrap()),
            StatusCode::OK,
        )
        .await;
    for stored in [&listed["items"][0]["properties"], &by_id["properties"]] {
        for (name, sent) in properties.as_object().unwrap() {
            assert_eq!(stored[name].as_f64(), sent.as_f64(), "{name}: {stored}");
        }
    }
    // The same numbers in a refused event: the dead-letter list, replay and discard read them.
    let mut invalid = touch("big-2");
    invalid["properties"] = properties;
    invalid["revenue"] = json!("1.00");
    let p = s
        .post("/v1/events", &invalid, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    let dead_id = p["dead_event_id"].as_str().unwrap().to_string();
    let dead = s.get("/v1/dead-events", StatusCode::OK).await;
    assert_eq!(
        dead["items"][0]["payload"]["properties"]["max"],
        json!(f64::MAX)
    );
    s.post("/v1/dead-events/replay", &json!({}), StatusCode::OK)
        .await;
    s.post(
        &format!("/v1/dead-events/{dead_id}/discard"),
        &json!({}),
        StatusCode::OK,
    )
    .await;
}

const MAX: i64 = tally_core::money::MAX_AMOUNT_MINOR;

/// Amounts are bounded at the door, so sums stay exact: two maximal adjustments net to twice
/// the maximum (release builds used to wrap i64::MAX + i64::MAX to -2).
#[tokio::test]
async fn adjustment_amounts_are_bounded_and_sum_exactly() {
    let s = TestServer::start().await;
    let adjust = |amount: i64| json!({"amount_cents": amount, "currency": "USD", "order_id": "big", "reason": "test"});
    for amount in [i64::MAX, i64::MIN, MAX + 1, -MAX - 1] {
        let p = s
            .post(
                "/v1/ledger/adjustments",
                &adjust(amount),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        assert_problem(&p, 422, "validation_failed");
    }
    s.post("/v1/ledger/adjustments", &adjust(MAX), StatusCode::CREATED)
        .await;
    s.post("/v1/ledger/adjustments", &adjust(MAX), StatusCode::CREATED)
        .await;
    let order = s.get("/v1/orders/big", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 2 * MAX}])
    );
}

/// A reversal is exactly the negation of what it reverses; another amount used to be posted
/// and to use up the original's only reversal.
#[tokio::test]
async fn a_reversal_must_be_the_exact_negation() {
    let s = TestServer::start().await;
    let original = s
        .post(
            "/v1/ledger/adjustments",
            &json!({"amount_cents": 2935, "currency": "USD", "order_id": "o-1", "reason": "test"}),
            StatusCode::CREATED,
        )
        .await;
    let id = original["id"].as_str().unwrap();
    for wrong in [100_000, 2935, -2934] {
        let body = json!({"reverses_id": id, "amount_cents": wrong, "reason": "undo"});
        s.post(
            "/v1/ledger/adjustments",
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let exact = json!({"reverses_id": id, "amount_cents": -2935, "reason": "undo"});
    let reversal = s
        .post("/v1/ledger/adjustments", &exact, StatusCode::CREATED)
        .await;
    assert_eq!(reversal["amount_cents"], -2935);
    let order = s.get("/v1/orders/o-1", StatusCode::OK).await;
    assert_eq!(
        order["net"],
        json!([{"currency": "USD", "amount_cents": 0}])
    );
}

/// Lengths are checked before the database, in characters as PostgreSQL's `length()` counts.
#[tokio::test]
async fn adjustment_lengths_count_characters() {
    let s = TestServer::start().await;
    let body = |order_id: String, reason: String| json!({"amount_cents": 1, "currency": "USD", "order_id": order_id, "reason": reason});
    let p = s
        .post(
            "/v1/ledger/adjustments",
            &body("o".repeat(256), "r".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&p, 422, "validation_failed");
    // 255 and 1000 characters of two bytes each fit the columns.
    s.post(
        "/v1/ledger/adjustments",
        &body("é".repeat(255), "ü".repeat(1000)),
        StatusCode::CREATED,
    )
    .await;
}

/// Revenue above the bound is refused with its pointer (two of "92233720368547758.07" used to
/// make the day's recompute fail for good).
#[tokio::test]
async fn event_revenue_is_bounded() {
    let s = TestServer::start().await;
    let p = s
        .post(
            "/v1/events",
            &purchase("huge", "92233720368547758.07"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(first_pointer(&p), "/revenue");
    assert_eq!(p["errors"][0]["code"], "out_of_range");
    s.post(
        "/v1/events",
        &purchase("max", "100000000000.00"),
        StatusCode::CREATED,
    )
    .await;
}

/// Timestamps PostgreSQL cannot hold are a 400 before any query runs.
#[tokio::test]
async fn timestamps_outside_postgresql_range_are_refused() {
    let s = TestServer::start().await;
    for path in [
        "/v1/events?from=-262143-01-01T00:00:00Z",
        "/v1/events?to=%2B262142-01-01T00:00:00Z",
        "/v1/ledger?from=-262143-01-01T00:00:00Z",
        "/v1/dead-events?to=%2B262142-01-01T00:00:00Z",
    ] {
        let p = s.get(path, StatusCode::BAD_REQUEST).await;
        assert_problem(&p, 400, "invalid_query");
    }
    let body = json!({"amount_cents": 1, "currency": "USD", "reason": "r",
        "occurred_at": "-262143-01-01T00:00:00Z"});
    s.post(
        "/v1/ledger/adjustments",
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

/// The scope is checked before the body is read: a key without `admin` gets 403 on an admin
/// route whatever its body holds (it used to get 422 for a bad body).
#[tokio::test]
async fn scope_is_checked_before_the_body() {
    let s = TestServer::start().await;
    let created = s
        .post(
            "/v1/keys",
            &json!({"name": "ingest", "scopes": ["ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let ingest_key = created["secret"].as_str().unwrap();
    for (path, body) in [
        ("/v1/keys", json!({"nonsense": true})),
        ("/v1/ledger/adjustments", json!({"amount_cents": "x"})),
        ("/v1/channel-rules", json!([])),
        ("/v1/webhook-endpoints", json!({"source": "nope"})),
        ("/v1/attribution/recompute", json!({})),
    ] {
        let p = s
            .call(
                Method::POST,
                path,
                Some(ingest_key),
                Some(&body),
                StatusCode::FORBIDDEN,
            )
            .await;
        assert_problem(&p, 403, "forbidden");
    }
}

/// A value outside a filter's closed set is a 400 that names the valid ones (`kind=purchases`
/// used to match nothing and answer an empty 200).
#[tokio::test]
async fn unknown_filter_values_are_a_400_listing_the_valid_ones() {
    let s = TestServer::start().await;
    for (path, valid) in [
        ("/v1/events?kind=purchases", "conversion"),
        ("/v1/events?type=Purchase", "page_view"),
        ("/v1/dead-events?status=closed", "discarded"),
        ("/v1/dead-events?source=shopfy", "woocommerce"),
        ("/v1/ledger?entry_type=refunds", "chargeback"),
        ("/v1/ledger?source=bank", "manual"),
    ] {
        let p = s.get(path, StatusCode::BAD_REQUEST).await;
        assert_problem(&p, 400, "invalid_query");
        assert!(p["detail"].as_str().unwrap().contains(valid), "{path}: {p}");
    }
    s.post("/v1/events", &purchase("p-1", "5.00"), StatusCode::CREATED)
        .await;
    let page = s
        .get("/v1/events?kind=conversion&type=purchase", StatusCode::OK)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

/// An international number inside free text is personal data like an e-mail address inside
/// text (it used to pass).
#[tokio::test]
async fn a_phone_number_inside_text_is_refused() {
    let s = TestServer::start().await;
    let mut event = touch("pii-1");
    event["properties"] = json!({"note": "call +1 415 555 0100"});
    let p = s
        .post("/v1/events", &event, StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_problem(&p, 422, "pii_detected");
    assert_eq!(first_pointer(&p), "/properties/note");
}

/// `GET /v1/events/{id}` takes the client's `event_id` as the conversion endpoint does.
#[tokio::test]
async fn an_event_is_found_by_the_clients_event_id() {
    let s = TestServer::start().await;
    let created = s
        .post("/v1/events", &touch("client-7"), StatusCode::CREATED)
        .await;
    let by_client_id = s.get("/v1/events/client-7", StatusCode::OK).await;
    assert_eq!(by_client_id["id"], created["id"]);
    let by_id = s
        .get(
            &format!("/v1/events/{}", created["id"].as_str().unwrap()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(by_id["event_id"], "client-7");
    s.get("/v1/events/nope", StatusCode::NOT_FOUND).await;
}

/// The OpenAPI document carries the release's version, the one `tally --version` prints (both
/// are the workspace's `CARGO_PKG_VERSION`).
#[tokio::test]
async fn openapi_version_is_the_release_version() {
    let s = TestServer::start().await;
    let doc = s
        .call(Method::GET, "/openapi.json", None, None, StatusCode::OK)
        .await;
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}

/// A request target over the limit is a 414 problem document, not a bare status.
#[tokio::test]
async fn a_too_long_uri_is_a_414_problem() {
    let s = TestServer::start().await;
    let path = format!("/v1/events?session_id={}", "s".repeat(20_000));
    let resp = s
        .http
        .get(s.url(&path))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p: Value = resp.json().await.unwrap();
    assert_problem(&p, 414, "uri_too_long");
}

/// Any JSON: NUL in values and names, numbers at the edges of f64 and i64/u64, deep nesting.
fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(f64::MAX)),
        Just(json!("\u{0}")),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Fuzz-style, bounded and deterministic: a valid event with one member replaced by arbitrary
/// JSON, sent alone and in a batch, and arbitrary text in every query parameter of every read
/// the OpenAPI document lists. Every answer must be a 2xx or a 4xx: never a 5xx, never a panic;
/// every accepted event reads back.
#[tokio::test]
async fn arbitrary_input_never_gets_a_5xx() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let s = TestServer::start().await;
    let members = vec![
        "event_id",
        "type",
        "occurred_at",
        "session_id",
        "anonymous_id",
        "user_id",
        "order_id",
        "revenue",
        "currency",
        "utm_source",
        "referrer",
        "gclid",
        "properties",
        "\u{0}",
    ];
    let cases = (prop::sample::select(members), any_json());
    let mut runner = TestRunner::deterministic();
    let ok = |status: StatusCode| status.is_success() || status.is_client_error();
    for i in 0..150 {
        let (name, value) = cases.new_tree(&mut runner).unwrap().current();
        let mut event = purchase(&format!("fuzz-{i}"), "1.00");
        event[name] = value;
        for (path, body) in [
            ("/v1/events", event.clone()),
            (
                "/v1/events/batch",
                json!({"events": [touch(&format!("t-{i}")), event]}),
            ),
        ] {
            let resp = s
                .http
                .post(s.url(path))
                .bearer_auth(&s.key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            assert!(ok(status), "{path}: {status} for {body}");
            // Nothing is stored that the read path cannot return.
            if status == StatusCode::CREATED {
                let created: Value = resp.json().await.unwrap();
                let id = created["id"].as_str().unwrap();
                let stored = s.get(&format!("/v1/events/{id}"), StatusCode::OK).await;
                assert_eq!(stored["id"], created["id"], "{body}");
            }
        }
    }
    // Every query parameter of every read the document lists (paths without parameters).
    let doc = s.get("/openapi.json", StatusCode::OK).await;
    let filters: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| !path.contains('{'))
        .flat_map(|(path, item)| {
            item["get"]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p["in"] == "query")
                .map(move |p| (path.clone(), p["name"].as_str().unwrap().to_string()))
        })
        .collect();
    assert!(filters.len() > 30, "{filters:?}");
    let queries = (prop::sample::select(filters), any::<String>());
    for _ in 0..300 {
        let ((path, name), value) = queries.new_tree(&mut runner).unwrap().current();
        let resp = s
            .http
            .get(s.url(&path))
            .query(&[(&name, &value)])
            .bearer_auth(&s.key)
            .send();
        let status = resp.await.unwrap().status();
        assert!(ok(status), "{path}?{name}={value:?}: {status}");
    }
}
