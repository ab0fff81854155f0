use crate::common::{eventually, fast_config, job_count, start, tenant};
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;
use std::time::Duration;
use tally_attribution::MODEL_VERSION;
use tally_store::TenantId;
use tally_store::recompute::{self, RecomputeJob};
use tally_store::testing::TestDb;
use tally_worker::Handlers;
use tally_worker::bench::{DayEvent, generate_day, insert_events};
use tally_worker::recompute::fast_pass;

fn day() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
        .unwrap()
        .to_utc()
}

async fn schedule(t: &TestDb, tenant: TenantId) -> RecomputeJob {
    t.db.schedule_recompute(
        tenant,
        day(),
        day() + TimeDelta::days(1),
        MODEL_VERSION,
        "corr-recompute",
    )
    .await
    .unwrap()
}

async fn wait_for_run(t: &TestDb, tenant: TenantId, job: &RecomputeJob, runs: i32) {
    eventually(Duration::from_secs(30), || async {
        let mut tx = t.db.tenant_tx(tenant).await.unwrap();
        let now = recompute::get_recompute(&mut tx, job.id).await.unwrap();
        now.run_count >= runs && now.status == "succeeded"
    })
    .await;
}

type AllocationSnapshot = Vec<(uuid::Uuid, String, String, i64, f64, String, DateTime<Utc>)>;
type RollupSnapshot = Vec<(DateTime<Utc>, String, String, f64, i64)>;

async fn snapshot(conn: &mut PgConnection) -> (AllocationSnapshot, RollupSnapshot) {
    let allocations = sqlx::query_as(
        "SELECT conversion_id, model, channel_code, allocated_cents, weight, currency::text, occurred_at
         FROM attribution_allocations ORDER BY conversion_id, model, channel_code",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let rollups = sqlx::query_as(
        "SELECT bucket_start, model, channel_code, conversions, claimed_cents FROM revenue_rollups
         WHERE grain = 'hour' ORDER BY bucket_start, model, channel_code",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (allocations, rollups)
}

#[tokio::test]
async fn recompute_is_idempotent_and_every_conversion_adds_up() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let events = generate_day(5_000, day(), 7);
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut tx, tenant, &events).await.unwrap();
    tx.commit().await.unwrap();
    let conversions = events.iter().filter(|e| e.revenue_cents.is_some()).count() as i64;
    assert!(conversions > 50);

    let worker = start(&t.db, fast_config(), Handlers::standard());
    let job = schedule(&t, tenant).await;
    wait_for_run(&t, tenant, &job, 1).await;
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    let first = snapshot(&mut tx).await;
    drop(tx);
    assert!(!first.0.is_empty() && !first.1.is_empty());

    // Scheduling the same window again reuses its identity and gives identical rows.
    let again = schedule(&t, tenant).await;
    assert_eq!(again.id, job.id);
    wait_for_run(&t, tenant, &job, 2).await;
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    assert_eq!(snapshot(&mut tx).await, first);

    // Every (conversion, model) adds up to the conversion's revenue, for all eight models.
    let (groups, wrong): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s <> r) FROM (
             SELECT a.conversion_id, a.model, sum(a.allocated_cents) AS s, max(e.revenue_cents) AS r
             FROM attribution_allocations a JOIN attribution_events e ON e.id = a.conversion_id
             GROUP BY 1, 2) g",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((groups, wrong), (conversions * 8, 0));
    // And the rollups carry each model's full revenue.
    let per_model: Vec<(String, i64)> = sqlx::query_as(
        "SELECT model, sum(claimed_cents)::bigint FROM revenue_rollups WHERE grain = 'hour'
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let revenue: i64 = events.iter().filter_map(|e| e.revenue_cents).sum();
    assert_eq!(per_model.len(), 8);
    assert!(
        per_model.iter().all(|(_, cents)| *cents == revenue),
        "{per_model:?}"
    );
    // The day rows (the window is one UTC day) hold the same totals as its hours.
    let days: Vec<(String, i64)> = sqlx::query_as(
        "SELECT model, sum(claimed_cents)::bigint FROM revenue_rollups WHERE grain = 'day'
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(days, per_model);
    let done = recompute::get_recompute(&mut tx, job.id).await.unwrap();
    assert_eq!(done.conversions, Some(conversions as i32));
    assert_eq!(done.last_correlation_id.as_deref(), Some("corr-recompute"));
    drop(tx);
    worker.stop().await;
}

#[tokio::test]
async fn a_window_must_start_before_it_ends() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let err =
        t.db.schedule_recompute(tenant, day(), day(), MODEL_VERSION, "c")
            .await
            .unwrap_err();
    assert!(matches!(err, tally_store::StoreError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn a_burst_of_events_schedules_a_handful_of_jobs() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let now = Utc::now();
    let live: Vec<DateTime<Utc>> = (0..10_000)
        .map(|i| now - TimeDelta::milliseconds(i))
        .collect();
    for _ in 0..3 {
        let mut tx = t.db.tenant_tx(tenant).await.unwrap();
        recompute::schedule_for_events(&mut tx, tenant, &live, "burst")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    // Live traffic: today, perhaps yesterday too when run just after midnight.
    let pending = job_count(&t.db, "pending").await;
    assert!((1..=2).contains(&pending), "{pending} jobs");

    // A backfilled touch three days ago can change the conversions of the days since.
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    recompute::schedule_for_events(&mut tx, tenant, &[now - TimeDelta::days(3)], "backfill")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let pending = job_count(&t.db, "pending").await;
    assert!((4..=5).contains(&pending), "{pending} jobs");
}

/// Per model: the claimed cents of the day's hour rows and of its day rows.
async fn claimed_per_model(conn: &mut PgConnection) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT model, sum(claimed_cents) FILTER (WHERE grain = 'hour')::bigint,
                sum(claimed_cents) FILTER (WHERE grain = 'day')::bigint
         FROM revenue_rollups GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

/// A sale accepted after its day's run is attributed under the journey-local models by the fast
/// pass, from its own journey, and added to the day's rollups once; Markov and Shapley follow with
/// the full run, which replaces the split and rebuilds the rollups as if the sale had always been
/// there.
#[tokio::test]
async fn the_fast_pass_attributes_a_new_sale_ahead_of_the_full_run() {
    let t = TestDb::new().await;
    let tenant = tenant(&t).await;
    let events = generate_day(2_000, day(), 11);
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut tx, tenant, &events).await.unwrap();
    tx.commit().await.unwrap();
    let worker = start(&t.db, fast_config(), Handlers::standard());
    let job = schedule(&t, tenant).await;
    wait_for_run(&t, tenant, &job, 1).await;
    worker.stop().await;
    let revenue: i64 = events.iter().filter_map(|e| e.revenue_cents).sum();

    // A shopper's paid-search click, then the sale, both after the day's run.
    let sale = DayEvent {
        id: uuid::Uuid::now_v7(),
        identity: "late-shopper".into(),
        occurred_at: day() + TimeDelta::hours(22),
        channel: "direct",
        revenue_cents: Some(4_321),
    };
    let click = DayEvent {
        id: uuid::Uuid::now_v7(),
        identity: "late-shopper".into(),
        occurred_at: day() + TimeDelta::hours(21),
        channel: "paid_search_google",
        revenue_cents: None,
    };
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    insert_events(&mut tx, tenant, &[click, sale.clone()])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    let attributed = fast_pass(&mut tx, tenant, job.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(attributed, 1);
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    let split: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT model, channel_code, allocated_cents FROM attribution_allocations
         WHERE conversion_id = $1 ORDER BY model",
    )
    .bind(sale.id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let local = [
        "first_touch",
        "last_non_direct",
        "last_touch",
        "linear",
        "position_based",
        "time_decay",
    ];
    assert_eq!(
        split,
        local
            .iter()
            .map(|m| (m.to_string(), "paid_search_google".to_string(), 4_321))
            .collect::<Vec<_>>()
    );
    let claimed = claimed_per_model(&mut tx).await;
    for (model, hours, days) in &claimed {
        let expected = revenue
            + if local.contains(&model.as_str()) {
                4_321
            } else {
                0
            };
        assert_eq!((*hours, *days), (expected, expected), "{model}");
    }
    drop(tx);

    // Nothing new: a second pass adds nothing.
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    assert_eq!(fast_pass(&mut tx, tenant, job.id).await.unwrap(), 0);
    tx.commit().await.unwrap();
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    assert_eq!(claimed_per_model(&mut tx).await, claimed);
    drop(tx);

    // The full run: all eight models, every model's rollups at the day's whole revenue, and the
    // rows a from-scratch rerun writes.
    let worker = start(&t.db, fast_config(), Handlers::standard());
    schedule(&t, tenant).await;
    wait_for_run(&t, tenant, &job, 2).await;
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    let models: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT model) FROM attribution_allocations WHERE conversion_id = $1",
    )
    .bind(sale.id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(models, 8);
    let total = revenue + 4_321;
    let claimed = claimed_per_model(&mut tx).await;
    assert_eq!(claimed.len(), 8);
    assert!(
        claimed.iter().all(|(_, h, d)| (*h, *d) == (total, total)),
        "{claimed:?}"
    );
    let settled = snapshot(&mut tx).await;
    drop(tx);
    schedule(&t, tenant).await;
    wait_for_run(&t, tenant, &job, 3).await;
    let mut tx = t.db.tenant_tx(tenant).await.unwrap();
    assert_eq!(snapshot(&mut tx).await, settled);
    drop(tx);
    worker.stop().await;
}
