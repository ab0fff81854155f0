//! Reconciliation and the read side over HTTP: hand-built orders covering every item status,
//! verified attribution, reruns that change nothing, realtime totals with ETags, exact windows
//! (property-tested against the raw allocation rows), tenant-local days, series, export, and
//! tenant isolation of every new route.

use crate::common::{TestServer, assert_problem, tenant, until, workers};
use crate::vendors::{Hook, hook, send};
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tally_payments::Source;
use tally_payments::testing::payloads::{
    shopify_order, shopify_refund, stripe_event, stripe_payment_intent,
};

const DAY: &str = "2026-11-20";
const NEXT: &str = "2026-11-21";

async fn event(s: &TestServer, body: Value) -> Value {
    s.post("/v1/events", &body, StatusCode::CREATED).await
}

async fn purchase(s: &TestServer, id: &str, order: &str, at: &str, revenue: &str, currency: &str) {
    event(
        s,
        json!({"event_id": id, "type": "purchase", "occurred_at": at, "session_id": format!("s-{order}"),
               "order_id": order, "revenue": revenue, "currency": currency}),
    )
    .await;
}

async fn click(s: &TestServer, id: &str, order: &str, at: &str) {
    event(
        s,
        json!({"event_id": id, "type": "ad_click", "occurred_at": at, "session_id": format!("s-{order}"),
               "gclid": format!("g-{id}")}),
    )
    .await;
}

async fn shopify_paid(s: &TestServer, shop: &Hook, order: u64, total: &str) {
    let body = shopify_order(order, total, "USD", "paid");
    send(s, shop, "orders/paid", &format!("paid-{order}"), &body).await;
}

async fn shopify_refunded(s: &TestServer, shop: &Hook, order: u64, amount: &str) {
    let body = shopify_refund(order * 7, order, "USD", &[("refund", "success", amount)]);
    send(s, shop, "refunds/create", &format!("refund-{order}"), &body).await;
}

/// Runs a reconciliation of `[from, to)` on request and waits for it.
async fn reconcile(s: &TestServer, from: &str, to: &str) -> Value {
    let run = s
        .post(
            "/v1/reconciliation/runs",
            &json!({"from": from, "to": to}),
            StatusCode::ACCEPTED,
        )
        .await;
    let path = format!(
        "/v1/reconciliation/runs/{}?limit=500",
        run["id"].as_str().unwrap()
    );
    until(s, &path, |r| r["run"]["status"] == "succeeded").await
}

/// Waits until no job is pending or running, so automatic runs have settled.
pub async fn quiet(s: &TestServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let busy: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')")
                .fetch_one(s.t.db.operator_pool())
                .await
                .unwrap();
        if busy == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{busy} jobs still busy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn statuses(run: &Value) -> BTreeMap<String, String> {
    run["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["order_id"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The hand-built day: one order per status (the awaiting one is today's), a duplicate
/// conversion, a refund delivered before its payment.
async fn build_day(s: &TestServer) {
    let shop = hook(s, Source::Shopify).await;
    let stripe = hook(s, Source::Stripe).await;
    click(s, "c-1001", "1001", "2026-11-20T09:00:00Z").await;
    purchase(s, "p-1001", "1001", "2026-11-20T10:00:00Z", "59.99", "USD").await;
    purchase(
        s,
        "p-1001-again",
        "1001",
        "2026-11-20T10:05:00Z",
        "59.99",
        "USD",
    )
    .await;
    shopify_paid(s, &shop, 1001, "59.99").await;

    purchase(s, "p-1002", "1002", "2026-11-20T11:00:00Z", "20.00", "USD").await;
    shopify_paid(s, &shop, 1002, "15.00").await;

    purchase(s, "p-1003", "1003", "2026-11-20T12:00:00Z", "30.00", "USD").await;
    let pi = stripe_payment_intent("pi_1003", 2800, "eur", "1003");
    send(
        s,
        &stripe,
        "",
        "evt_1003",
        &stripe_event("evt_1003", "payment_intent.succeeded", pi, None),
    )
    .await;

    purchase(s, "p-1004", "1004", "2026-11-20T13:00:00Z", "40.00", "USD").await;

    shopify_paid(s, &shop, 1005, "12.00").await;

    purchase(s, "p-1006", "1006", "2026-11-20T14:00:00Z", "50.00", "USD").await;
    shopify_paid(s, &shop, 1006, "50.00").await;
    shopify_refunded(s, &shop, 1006, "50.00").await;

    purchase(s, "p-1007", "1007", "2026-11-20T15:00:00Z", "50.00", "USD").await;
    shopify_refunded(s, &shop, 1007, "10.00").await;
    shopify_paid(s, &shop, 1007, "50.00").await;
}

#[tokio::test]
async fn every_item_status_from_hand_built_orders_and_a_rerun_changes_nothing() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    build_day(&s).await;
    let recent = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    purchase(&s, "p-1008", "1008", &recent.to_rfc3339(), "9.99", "USD").await;
    quiet(&s).await;

    let run = reconcile(&s, DAY, NEXT).await;
    let got = statuses(&run);
    let want: BTreeMap<String, String> = [
        ("1001", "matched"),
        ("1002", "amount_mismatch"),
        ("1003", "currency_mismatch"),
        ("1004", "tracked_not_paid"),
        ("1005", "paid_not_tracked"),
        ("1006", "refunded"),
        ("1007", "partially_refunded"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{run}");
    let items = run["items"].as_array().unwrap();
    let item = |o: &str| items.iter().find(|i| i["order_id"] == o).unwrap();
    assert_eq!(item("1001")["duplicate_conversions"], 1);
    assert_eq!(item("1002")["difference_cents"], -500);
    assert_eq!(item("1007")["verified_cents"], 4000);
    assert_eq!(item("1007")["reversed_cents"], 1000);
    assert_eq!(item("1003")["verified_currency"], "EUR");

    let r = &run["run"];
    for status in [
        "matched",
        "amount_mismatch",
        "currency_mismatch",
        "tracked_not_paid",
        "paid_not_tracked",
        "refunded",
        "partially_refunded",
        "awaiting_payment",
    ] {
        assert!(r["counts"][status].is_i64(), "{status} missing: {r}");
    }
    assert_eq!(r["counts"]["matched"], 1);
    assert_eq!(r["counts"]["awaiting_payment"], 0);
    let usd = r["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["currency"] == "USD")
        .unwrap();
    // Claimed: first conversions only. Verified: every USD net, untracked included.
    assert_eq!(
        usd["claimed_cents"],
        5999 + 2000 + 3000 + 4000 + 5000 + 5000
    );
    // 1006 nets to 0 (refunded in full).
    assert_eq!(usd["verified_cents"], 5999 + 1500 + 1200 + 4000);
    assert_eq!(usd["ghost_cents"], 500 + 3000 + 4000 + 5000 + 1000);
    assert_eq!(usd["unclaimed_cents"], 1200);
    let eur = r["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["currency"] == "EUR")
        .unwrap();
    assert_eq!(
        (
            eur["verified_cents"].as_i64(),
            eur["claimed_cents"].as_i64()
        ),
        (Some(2800), Some(0))
    );

    // Today's tracked order waits for its payment.
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let run_today = reconcile(&s, &today.to_string(), &tomorrow.to_string()).await;
    assert_eq!(statuses(&run_today)["1008"], "awaiting_payment");

    // A rerun with nothing new: same totals and items, and it says so.
    let again = reconcile(&s, DAY, NEXT).await;
    assert_eq!(again["run"]["totals"], r["totals"]);
    assert_eq!(again["run"]["counts"], r["counts"]);
    assert_eq!(statuses(&again), want);
    assert!(
        again["run"]["same_items_as"].is_string(),
        "{}",
        again["run"]
    );

    // Filtered by status, paged by order id.
    let path = format!(
        "/v1/reconciliation/runs/{}?status=matched",
        r["id"].as_str().unwrap()
    );
    let only = s.get(&path, StatusCode::OK).await;
    assert_eq!(statuses(&only).len(), 1);
    let bad = s
        .get(
            &format!(
                "/v1/reconciliation/runs/{}?status=paid",
                r["id"].as_str().unwrap()
            ),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_problem(&bad, 400, "invalid_query");
    let page = s
        .get(
            &format!(
                "/v1/reconciliation/runs/{}?limit=3",
                r["id"].as_str().unwrap()
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let next = s
        .get(
            &format!(
                "/v1/reconciliation/runs/{}?limit=500&cursor={}",
                r["id"].as_str().unwrap(),
                page["next_cursor"].as_str().unwrap()
            ),
            StatusCode::OK,
        )
        .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 4);
    assert_eq!(next["items"][0]["order_id"], "1004");

    // Runs are listed newest first, automatic ones (after postings and recomputes) included.
    let list = s
        .get("/v1/reconciliation/runs?limit=500", StatusCode::OK)
        .await;
    let triggers: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert!(
        triggers.contains(&"automatic") && triggers.contains(&"manual"),
        "{triggers:?}"
    );
    s.get(
        "/v1/reconciliation/runs?status=done",
        StatusCode::BAD_REQUEST,
    )
    .await;

    // The order shows both sides and where it stands.
    let order = s.get("/v1/orders/1004", StatusCode::OK).await;
    assert_eq!(order["status"], "tracked_not_paid");
    assert_eq!(order["conversions"].as_array().unwrap().len(), 1);
    assert!(order["postings"].as_array().unwrap().is_empty());
    let order = s.get("/v1/orders/1001", StatusCode::OK).await;
    assert_eq!(
        (
            order["status"].as_str(),
            order["conversions"].as_array().unwrap().len()
        ),
        (Some("matched"), 2)
    );
    assert!(order["last_run_id"].is_string(), "{order}");
    s.get("/v1/orders/9999", StatusCode::NOT_FOUND).await;

    // Verified attribution: every model spreads exactly the verified USD net of the tracked
    // orders; the unattributed line holds the untracked money.
    let report = s
        .get(
            &format!("/v1/attribution/channels?from={DAY}&to={NEXT}"),
            StatusCode::OK,
        )
        .await;
    let channels = report["channels"].as_array().unwrap();
    for model in tally_attribution::Model::ALL {
        let verified: i64 = channels
            .iter()
            .filter(|c| c["currency"] == "USD" && c["channel_code"] != "unattributed")
            .flat_map(|c| c["models"].as_array().unwrap())
            .filter(|m| m["model"] == model.code())
            .map(|m| m["verified_cents"].as_i64().unwrap())
            .sum();
        assert_eq!(verified, 5999 + 1500 + 4000, "{model}: {report}");
    }
    let unattributed = channels
        .iter()
        .find(|c| c["channel_code"] == "unattributed")
        .unwrap();
    assert_eq!(unattributed["models"].as_array().unwrap().len(), 8);
    assert!(
        unattributed["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["verified_cents"] == 1200)
    );
    // The ad click earned 1001 under last touch: its whole verified 59.99.
    let google = channels
        .iter()
        .find(|c| c["channel_code"] == "paid_search_google")
        .unwrap();
    let last = google["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "last_touch")
        .unwrap();
    assert_eq!(last["verified_cents"], 5999);
    assert_eq!(report["models"].as_array().unwrap().len(), 8);
    assert!(report["models"][0]["computed_at"].is_string());

    // The status page: one platform per endpoint, with its deliveries and money.
    let status = s
        .get(
            &format!("/api/reconciliation/status?from={DAY}&to={NEXT}"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(status["overall_status"], "partial", "{status}");
    // A run of a wider window holds the day's orders too; they are counted once.
    let day_orders: i64 = status["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    reconcile(&s, "2026-11-19", "2026-11-22").await;
    let wider = s
        .get(
            &format!("/api/reconciliation/status?from={DAY}&to={NEXT}"),
            StatusCode::OK,
        )
        .await;
    let counted: i64 = wider["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(counted, day_orders, "{wider}");
    let platforms = status["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    let shopify = platforms
        .iter()
        .find(|p| p["platform_name"] == "shopify")
        .unwrap();
    assert_eq!(shopify["connection_status"], "connected");
    assert_eq!(shopify["events_processed"], 7);
    assert_eq!(shopify["revenue_verified_cents"], 5999 + 1500 + 1200 + 4000);
    assert!(status["last_full_sync"].is_string());
    let v1 = s
        .get(
            &format!("/v1/reconciliation/status?from={DAY}&to={NEXT}"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(v1["overall_status"], "partial");
    s.get(
        "/v1/reconciliation/status?from=2026-11-20",
        StatusCode::BAD_REQUEST,
    )
    .await;
}

/// Identical reads share one stored answer until the tenant's data changes
/// (crates/server/src/answers.rs): a write through this process shows in the next read, one the
/// process cannot see (SQL on a connection of its own) within the half-second TTL.
#[tokio::test]
async fn stored_answers_follow_writes_at_once_and_unseen_writes_within_a_second() {
    let s = TestServer::start().await;
    let now = chrono::Utc::now();
    let cents = |v: &Value| v["total_revenue_cents"].as_i64().unwrap();
    purchase(&s, "ans-1", "4001", &now.to_rfc3339(), "10.00", "USD").await;
    let path = "/api/attribution/revenue/realtime";
    assert_eq!(cents(&s.get(path, StatusCode::OK).await), 1000);
    purchase(&s, "ans-2", "4002", &now.to_rfc3339(), "2.00", "USD").await;
    assert_eq!(cents(&s.get(path, StatusCode::OK).await), 1200);

    // Behind the process's back: a tracked delta written on a connection of its own.
    let mut conn = s.t.db.app_pool().acquire().await.unwrap();
    let mut tx = tally_store::testing::begin_for_tenant(&mut conn, tenant(&s).0).await;
    sqlx::query(
        "INSERT INTO live_deltas (tenant_id, stream, bucket_start, currency, events, cents, last_at)
         VALUES ($1, 'tracked', tally_quarter_hour($2), 'USD', 1, 300, now())",
    )
    .bind(tenant(&s))
    .bind(now)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let written = std::time::Instant::now();
    until(&s, path, |v| cents(v) == 1500).await;
    assert!(
        written.elapsed() < std::time::Duration::from_millis(1000),
        "an unseen write took {:?} to show",
        written.elapsed()
    );
}

#[tokio::test]
async fn realtime_totals_follow_conversions_and_postings_with_etags() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    let empty = s
        .get("/api/attribution/revenue/realtime", StatusCode::OK)
        .await;
    assert_eq!(empty["total_revenue"], 0.0);
    assert_eq!(empty["event_count"], 0);
    assert_eq!(empty["tenant_id"], s.tenant_id.as_str());
    assert!(empty["last_updated"].is_null());

    let now = chrono::Utc::now();
    purchase(&s, "rt-1", "2001", &now.to_rfc3339(), "12.34", "USD").await;
    purchase(&s, "rt-2", "2002", &now.to_rfc3339(), "1.00", "EUR").await;
    // Visible at once: the read adds unfolded deltas.
    let body = s
        .get("/api/attribution/revenue/realtime", StatusCode::OK)
        .await;
    assert_eq!(body["total_revenue_cents"], 1234, "{body}");
    assert_eq!(body["total_revenue"], 12.34);
    assert_eq!(body["event_count"], 1);
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["verified"], false);
    assert!(body["data_freshness_seconds"].as_f64().unwrap() < 5.0);
    let eur: Vec<&Value> = body["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["currency"] == "EUR")
        .collect();
    assert_eq!(eur[0]["claimed_cents"], 100);

    // A posting: the verified side moves, never mixed with EUR.
    let shop = hook(&s, Source::Shopify).await;
    let posted = shopify_order(2001, "12.34", "USD", "paid");
    send(&s, &shop, "orders/paid", "rt-paid", &posted).await;
    let resp = s
        .http
        .get(s.url("/v1/revenue/realtime"))
        .bearer_auth(&s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-cache")
    );
    // Unchanged → 304, also after the deltas were folded into the totals.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let resp = s
        .http
        .get(s.url("/api/attribution/revenue/realtime"))
        .bearer_auth(&s.key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let folded: i64 = sqlx::query_scalar("SELECT count(*) FROM live_deltas")
        .fetch_one(s.t.db.operator_pool())
        .await
        .unwrap();
    assert_eq!(folded, 0, "the worker folds deltas within about a second");
    // Changed → 200 with a new ETag.
    purchase(
        &s,
        "rt-3",
        "2003",
        &chrono::Utc::now().to_rfc3339(),
        "0.66",
        "USD",
    )
    .await;
    let resp = s
        .http
        .get(s.url("/api/attribution/revenue/realtime"))
        .bearer_auth(&s.key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["total_revenue_cents"], 1300);

    // The posting happened on the fixture's day (its `processed_at`): that window's verified
    // stream holds it.
    let day = tally_payments::testing::payloads::now().date_naive();
    let path = format!(
        "/v1/revenue/realtime?from={day}&to={}",
        day.succ_opt().unwrap()
    );
    let then = s.get(&path, StatusCode::OK).await;
    assert_eq!(then["verified_revenue_cents"], 1234, "{then}");
    s.get(
        "/v1/revenue/realtime?from=2026-11-20T00:05:00Z&to=2026-11-21",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    s.get(
        "/v1/revenue/realtime?from=2026-11-20",
        StatusCode::BAD_REQUEST,
    )
    .await;
    s.get(
        "/v1/revenue/realtime?currency=EURO",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn windows_are_exact_or_refused_and_match_a_brute_force_over_the_raw_rows() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    let day = chrono::DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
        .unwrap()
        .to_utc();
    let events = tally_worker::bench::generate_day(3_000, day, 11);
    let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
    tally_worker::bench::insert_events(&mut tx, tenant(&s), &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    s.post(
        "/v1/attribution/recompute",
        &json!({"from": "2026-03-10T00:00:00Z", "to": "2026-03-11T00:00:00Z"}),
        StatusCode::ACCEPTED,
    )
    .await;
    quiet(&s).await;

    // The example: 01:30–01:45 is not on an hour; refused with the granularity.
    let refused = s
        .get(
            "/v1/attribution/channels?from=2026-03-10T01:30:00Z&to=2026-03-10T01:45:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&refused, 422, "validation_failed");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("start of an hour"),
        "{refused}"
    );
    assert_eq!(refused["errors"][0]["pointer"], "/from");

    // Random hour-aligned windows (inside and across the day) against sums of the raw rows.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..25 {
        let a: i64 = rng.random_range(-3..27);
        let b: i64 = rng.random_range(a + 1..=30);
        let from = day + chrono::TimeDelta::hours(a);
        let to = day + chrono::TimeDelta::hours(b);
        let path = format!(
            "/v1/attribution/channels?from={}&to={}&model=linear",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let report = s.get(&path, StatusCode::OK).await;
        assert_eq!(
            report["window"]["from"],
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let mut api: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for c in report["channels"].as_array().unwrap() {
            if c["channel_code"] == "unattributed" {
                continue;
            }
            let m = &c["models"][0];
            api.insert(
                c["channel_code"].as_str().unwrap().into(),
                (
                    m["claimed_cents"].as_i64().unwrap(),
                    m["verified_cents"].as_i64().unwrap(),
                ),
            );
        }
        let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
        let raw: Vec<(String, i64)> = sqlx::query_as(
            "SELECT channel_code, sum(allocated_cents)::bigint FROM attribution_allocations
             WHERE model = 'linear' AND occurred_at >= $1 AND occurred_at < $2 GROUP BY 1",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let brute: BTreeMap<String, (i64, i64)> =
            raw.into_iter().map(|(c, v)| (c, (v, 0))).collect();
        assert_eq!(api, brute, "{path}");
    }

    // Plain dates are the tenant's midnights; an empty window is refused.
    let by_date = s
        .get(
            "/v1/attribution/channels?from=2026-03-10&to=2026-03-11",
            StatusCode::OK,
        )
        .await;
    assert_eq!(by_date["window"]["to"], "2026-03-11T00:00:00Z");
    s.get(
        "/v1/attribution/channels?from=2026-03-11&to=2026-03-10",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    s.get(
        "/v1/attribution/channels?from=yesterday&to=2026-03-10",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let bad = s
        .get(
            "/v1/attribution/channels?from=2026-03-10&to=2026-03-11&model=Linear",
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        bad["detail"].as_str().unwrap().contains("position_based"),
        "{bad}"
    );

    // The daily series over the same day equals the channel totals; empty buckets are present.
    let series = s
        .get(
            "/v1/revenue/timeseries?from=2026-03-09&to=2026-03-12&model=linear",
            StatusCode::OK,
        )
        .await;
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 3);
    assert_eq!(buckets[0]["claimed_cents"], 0);
    let total: i64 = events.iter().filter_map(|e| e.revenue_cents).sum();
    assert_eq!(buckets[1]["claimed_cents"], total);
    let hourly = s
        .get(
            "/v1/revenue/timeseries?from=2026-03-10&to=2026-03-11&interval=hour&model=linear",
            StatusCode::OK,
        )
        .await;
    assert_eq!(hourly["buckets"].as_array().unwrap().len(), 24);
    let hourly_sum: i64 = hourly["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["claimed_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(hourly_sum, total);
    s.get(
        "/v1/revenue/timeseries?from=2026-03-10T05:00:00Z&to=2026-03-11",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    s.get(
        "/v1/revenue/timeseries?from=2026-03-10&to=2026-03-11&interval=week",
        StatusCode::BAD_REQUEST,
    )
    .await;

    // The export: the same numbers, as CSV (by format or Accept) and JSON.
    let csv = s
        .http
        .get(s.url("/v1/export/revenue?from=2026-03-10&to=2026-03-11"))
        .bearer_auth(&s.key)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("date,channel,model,currency,conversions,claimed,verified")
    );
    let linear_cents: i64 = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[2] == "linear")
        .map(|f| tally_core::money::parse_minor_units(f[5], 2).unwrap())
        .sum();
    assert_eq!(linear_cents, total);
    let json_export = s
        .get(
            "/v1/export/revenue?format=json&from=2026-03-09&to=2026-03-12",
            StatusCode::OK,
        )
        .await;
    let rows = json_export["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r["model"] == "linear")
            .map(|r| r["claimed_cents"].as_i64().unwrap())
            .sum::<i64>(),
        total
    );
    s.get(
        "/v1/export/revenue?format=xml&from=2026-03-10&to=2026-03-11",
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn local_days_for_tenants_far_east_far_west_and_across_dst() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    for (zone, inside, outside) in [
        // UTC+13: the 20th starts at 11:00 UTC on the 19th.
        (
            "Pacific/Tongatapu",
            "2026-11-19T11:30:00Z",
            "2026-11-19T10:30:00Z",
        ),
        // UTC−10: the 20th ends at 10:00 UTC on the 21st.
        (
            "Pacific/Honolulu",
            "2026-11-21T09:30:00Z",
            "2026-11-21T10:30:00Z",
        ),
    ] {
        let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
        sqlx::query("UPDATE tenant_settings SET time_zone = $1")
            .bind(zone)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        purchase(
            &s,
            &format!("in-{zone}"),
            &format!("in-{zone}"),
            inside,
            "1.00",
            "USD",
        )
        .await;
        purchase(
            &s,
            &format!("out-{zone}"),
            &format!("out-{zone}"),
            outside,
            "2.00",
            "USD",
        )
        .await;
        quiet(&s).await;
        let series = s
            .get(
                "/v1/revenue/timeseries?from=2026-11-20&to=2026-11-21&model=last_touch",
                StatusCode::OK,
            )
            .await;
        assert_eq!(series["time_zone"], zone);
        assert_eq!(
            series["buckets"][0]["claimed_cents"], 100,
            "{zone}: {series}"
        );
        let run = reconcile(&s, "2026-11-20", "2026-11-21").await;
        let got = statuses(&run);
        assert!(
            got.contains_key(&format!("in-{zone}")) && !got.contains_key(&format!("out-{zone}")),
            "{zone}: {got:?}"
        );
    }
    // Berlin springs forward on 2026-03-29: a 23-hour day of 23 hour buckets.
    let mut tx = s.t.db.tenant_tx(tenant(&s)).await.unwrap();
    sqlx::query("UPDATE tenant_settings SET time_zone = 'Europe/Berlin'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    purchase(&s, "dst-1", "dst-1", "2026-03-28T23:30:00Z", "3.00", "USD").await; // 00:30 local on the 29th
    purchase(&s, "dst-2", "dst-2", "2026-03-29T21:30:00Z", "4.00", "USD").await; // 23:30 CEST on the 29th
    quiet(&s).await;
    let hours = s
        .get(
            "/v1/revenue/timeseries?from=2026-03-29&to=2026-03-30&interval=hour&model=last_touch",
            StatusCode::OK,
        )
        .await;
    let buckets = hours["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 23);
    assert_eq!(buckets[0]["claimed_cents"], 300);
    assert_eq!(buckets[22]["claimed_cents"], 400);
    let days = s
        .get(
            "/v1/revenue/timeseries?from=2026-03-29&to=2026-03-30&model=last_touch",
            StatusCode::OK,
        )
        .await;
    assert_eq!(days["buckets"][0]["claimed_cents"], 700);
    assert_eq!(days["window"]["from"], "2026-03-28T23:00:00Z");
}

#[tokio::test]
async fn another_tenant_sees_none_of_it() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    build_day(&s).await;
    quiet(&s).await;
    let run = reconcile(&s, DAY, NEXT).await;
    let (_, other) = s.t.db.create_tenant("Other shop").await.unwrap();
    let key = other.secret.as_str();
    let get = |path: String, expect| {
        let s = &s;
        async move { s.call(Method::GET, &path, Some(key), None, expect).await }
    };
    get(
        format!(
            "/v1/reconciliation/runs/{}",
            run["run"]["id"].as_str().unwrap()
        ),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        get("/v1/reconciliation/runs".into(), StatusCode::OK).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    get("/v1/orders/1001".into(), StatusCode::NOT_FOUND).await;
    let report = get(
        format!("/v1/attribution/channels?from={DAY}&to={NEXT}"),
        StatusCode::OK,
    )
    .await;
    assert!(
        report["channels"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let rt = get(
        format!("/api/attribution/revenue/realtime?from={DAY}&to={NEXT}"),
        StatusCode::OK,
    )
    .await;
    assert!(rt["currencies"].as_array().unwrap().is_empty(), "{rt}");
    let status = get("/api/reconciliation/status".into(), StatusCode::OK).await;
    assert!(status["platforms"].as_array().unwrap().is_empty());
    assert_eq!(status["overall_status"], "pending");
    let series = get(
        format!("/v1/revenue/timeseries?from={DAY}&to={NEXT}"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(series["buckets"][0]["claimed_cents"], 0);
    let export = get(
        format!("/v1/export/revenue?format=json&from={DAY}&to={NEXT}"),
        StatusCode::OK,
    )
    .await;
    assert!(export["rows"].as_array().unwrap().is_empty());
    // Scopes: reads need `read`, a run on request needs `admin`.
    let ingest = s
        .post(
            "/v1/keys",
            &json!({"name": "ingest", "scopes": ["ingest"]}),
            StatusCode::CREATED,
        )
        .await;
    let ingest = ingest["secret"].as_str().unwrap();
    s.call(
        Method::GET,
        "/api/reconciliation/status",
        Some(ingest),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    let read = s
        .post(
            "/v1/keys",
            &json!({"name": "read", "scopes": ["read"]}),
            StatusCode::CREATED,
        )
        .await;
    s.call(
        Method::POST,
        "/v1/reconciliation/runs",
        Some(read["secret"].as_str().unwrap()),
        Some(&json!({"from": DAY, "to": NEXT})),
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn runs_filter_by_a_window_containing_the_range() {
    let s = TestServer::start().await;
    let _stop = workers(&s);
    let day = reconcile(&s, DAY, NEXT).await;
    let wide = reconcile(&s, "2026-11-19", "2026-11-22").await;
    let next = reconcile(&s, NEXT, "2026-11-22").await;
    let id = |r: &Value| r["run"]["id"].as_str().unwrap().to_string();
    let ids = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };

    // A day: its own run and the wider one containing it, newest first; not the next day's.
    let of_day = s
        .get(
            &format!("/v1/reconciliation/runs?from={DAY}&to={NEXT}"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(ids(of_day), [id(&wide), id(&day)]);
    // The three days: only the run whose window contains them all.
    let of_three = s
        .get(
            "/v1/reconciliation/runs?from=2026-11-19&to=2026-11-22&status=succeeded",
            StatusCode::OK,
        )
        .await;
    assert_eq!(ids(of_three), [id(&wide)]);
    // Instants on an hour inside the next day: its run and the wide one; `limit=1` picks the
    // newest, which is what the dashboard shows for a range.
    let newest = s
        .get(
            "/v1/reconciliation/runs?from=2026-11-21T05:00:00Z&to=2026-11-21T06:00:00Z&status=succeeded&limit=1",
            StatusCode::OK,
        )
        .await;
    assert_eq!(ids(newest), [id(&next)]);
    // A range no run contains: an empty page, not an error.
    let none = s
        .get(
            "/v1/reconciliation/runs?from=2026-11-18&to=2026-11-20",
            StatusCode::OK,
        )
        .await;
    assert!(ids(none).is_empty());

    // Bad windows are problems, never a silently unfiltered list.
    let one_bound = s
        .get(
            &format!("/v1/reconciliation/runs?from={DAY}"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_problem(&one_bound, 400, "bad_request");
    let backwards = s
        .get(
            &format!("/v1/reconciliation/runs?from={NEXT}&to={DAY}"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_problem(&backwards, 422, "validation_failed");
    let unaligned = s
        .get(
            "/v1/reconciliation/runs?from=2026-11-20T10:30:00Z&to=2026-11-21T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(unaligned["errors"][0]["pointer"], "/from", "{unaligned}");
    let garbage = s
        .get(
            "/v1/reconciliation/runs?from=yesterday&to=today",
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(garbage["errors"][0]["code"], "invalid_format", "{garbage}");
}
