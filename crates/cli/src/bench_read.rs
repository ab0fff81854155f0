//! `tally bench read`: the read side under load, on one machine, against one database.
//!
//! 1. Setup: a month of generated events for one large tenant and several smaller ones (bulk
//!    inserted, then recomputed and reconciled by real workers), ledger payments for 90 % of the
//!    large tenant's orders (through the ledger's insert trigger, like webhooks), and the live
//!    totals the ingest path would have built.
//! 2. Reads: realtime, channels (all models, the whole month), daily time series, the
//!    reconciliation status, the top conversion paths and the run containing the month, each from concurrent HTTP clients for a few seconds: requests/s,
//!    p50 and p99.
//! 3. Freshness: a conversion sent over HTTP until the realtime total shows it, and a ledger
//!    adjustment until the verified total does.
//! 4. Ingestion A/B in the same run: the ingest function with and without its live-totals
//!    insert, alternating, in group-commit-sized (20) and batch-sized (1000) statements.

use crate::work::WorkerOptions;
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tally_server::{AppState, ServerConfig};
use tally_store::{Database, TenantId};

pub struct Options {
    pub events: usize,
    pub tenants: usize,
    pub other_events: usize,
    pub days: u32,
    pub clients: usize,
    pub seconds: u64,
    pub ab_events: usize,
}

/// The benchmark month: fixed, so runs compare.
fn month_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")
        .expect("a valid instant")
        .to_utc()
}

pub async fn run(opened: &crate::database::Opened, opts: &Options) -> anyhow::Result<()> {
    let db = &opened.db;
    println!(
        "tally bench read: {} events for one tenant + {} tenants × {} over {} days, {} clients",
        opts.events, opts.tenants, opts.other_events, opts.days, opts.clients
    );
    let started = Instant::now();
    let (main, key) = db.create_tenant("bench-read").await?;
    let main = main.tenant_id;
    let read_key = key.secret;
    let mut tenants = vec![(main, opts.events)];
    for i in 0..opts.tenants {
        let (t, _) = db.create_tenant(&format!("bench-read-{i}")).await?;
        tenants.push((t.tenant_id, opts.other_events));
    }
    let total: usize = tenants.iter().map(|t| t.1).sum();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} events {per_sec}")?
            .progress_chars("=> "),
    );
    bar.set_message("inserting");
    for (seed, &(tenant, events)) in tenants.iter().enumerate() {
        load_month(db, tenant, events, opts.days, seed as u64, &bar).await?;
    }
    bar.finish();
    opened.analyze_bulk_load().await?;
    println!(
        "setup: {total} events inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut tx = db.tenant_tx(main).await?;
    sqlx::query("UPDATE tenant_settings SET rate_limit_per_minute = 2000000000, rate_limit_burst = 2000000000")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let computed = Instant::now();
    let options = WorkerOptions {
        worker_concurrency: 2,
        lease_secs: 120,
        succeeded_job_retention_hours: 168,
    };
    let (stop, workers) = options.spawn(db);
    for &(tenant, _) in &tenants {
        let month = month_start();
        db.schedule_recompute(
            tenant,
            month,
            month + TimeDelta::days(opts.days.into()),
            tally_attribution::MODEL_VERSION,
            "bench-read",
        )
        .await?;
    }
    idle(db).await?;
    println!(
        "setup: recomputed and reconciled {} tenant-months in {:.1} s",
        tenants.len(),
        computed.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(db.clone(), ServerConfig::default());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tally_server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let from = month_start().format("%Y-%m-%d").to_string();
    let to = (month_start() + TimeDelta::days(opts.days.into()))
        .format("%Y-%m-%d")
        .to_string();
    let reads = [
        (
            "realtime (today)",
            "/api/attribution/revenue/realtime".to_string(),
        ),
        (
            "realtime (month)",
            format!("/api/attribution/revenue/realtime?from={from}&to={to}"),
        ),
        (
            "channels, 8 models, month",
            format!("/v1/attribution/channels?from={from}&to={to}"),
        ),
        (
            "timeseries, daily, month",
            format!("/v1/revenue/timeseries?from={from}&to={to}"),
        ),
        (
            "reconciliation status",
            format!("/api/reconciliation/status?from={from}&to={to}"),
        ),
        // The dashboard's Paths and Reconciliation pages.
        (
            "top paths, month",
            format!("/v1/attribution/paths?from={from}&to={to}"),
        ),
        (
            "run containing the month",
            format!("/v1/reconciliation/runs?status=succeeded&from={from}&to={to}&limit=1"),
        ),
    ];
    println!();
    // "first": one request alone, before the load, which computes the answer that the load's
    // requests then share (crates/server/src/answers.rs) until the tenant's data changes.
    println!(
        "{:<28} {:>9} {:>10} {:>9} {:>9}",
        "read", "first ms", "req/s", "p50 ms", "p99 ms"
    );
    for (label, path) in &reads {
        let first = first_answer(&base, &read_key, path).await?;
        let (rate, p50, p99) = load(&base, &read_key, path, opts.clients, opts.seconds).await?;
        println!("{label:<28} {first:>9.2} {rate:>10.0} {p50:>9.2} {p99:>9.2}");
    }

    println!();
    freshness(&base, &read_key).await?;

    let _ = stop_server.send(());
    let _ = server.await;
    let _ = stop.send(true);
    workers.await?;

    println!();
    ingest_ab(db, main, opts.ab_events).await?;
    Ok(())
}

/// A month of generated days for `tenant`, 90 % of its orders paid in the ledger, and the live
/// totals ingestion would have built (the bulk insert bypasses the ingest function).
async fn load_month(
    db: &Database,
    tenant: TenantId,
    events: usize,
    days: u32,
    seed: u64,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let per_day = events / days as usize;
    for d in 0..days {
        let day = month_start() + TimeDelta::days(d.into());
        let generated = tally_worker::bench::generate_day(per_day, day, seed * 1000 + u64::from(d));
        let mut tx = db.tenant_tx(tenant).await?;
        tally_worker::bench::insert_events(&mut tx, tenant, &generated).await?;
        sqlx::query(
            "INSERT INTO revenue_ledger (tenant_id, id, source, external_id, entry_type, amount_cents,
                 currency, order_id, occurred_at, correlation_id)
             SELECT tenant_id, gen_random_uuid(), 'stripe', 'pi_' || id, 'payment', revenue_cents,
                    currency, order_id, occurred_at + interval '2 minutes', 'bench-read'
             FROM attribution_events
             WHERE tenant_id = $1 AND kind = 'conversion' AND occurred_at >= $2 AND occurred_at < $3
               AND abs(hashtext(id::text)) % 10 <> 0",
        )
        .bind(tenant)
        .bind(day)
        .bind(day + TimeDelta::days(1))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO live_deltas (tenant_id, stream, bucket_start, currency, events, cents, last_at)
             SELECT tenant_id, 'tracked', tally_quarter_hour(occurred_at), currency, count(*),
                    sum(revenue_cents), max(received_at)
             FROM attribution_events
             WHERE tenant_id = $1 AND kind = 'conversion' AND occurred_at >= $2 AND occurred_at < $3
             GROUP BY 1, 3, 4",
        )
        .bind(tenant)
        .bind(day)
        .bind(day + TimeDelta::days(1))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        bar.inc(generated.len() as u64);
    }
    Ok(())
}

/// Waits until the job queue has nothing pending or running.
async fn idle(db: &Database) -> anyhow::Result<()> {
    loop {
        let busy: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')")
                .fetch_one(db.operator_pool())
                .await?;
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `clients` keep-alive clients GET `path` for `seconds`: (requests/s, p50 ms, p99 ms).
async fn load(
    base: &str,
    key: &str,
    path: &str,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let url = format!("{base}{path}");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            let key = key.to_string();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let resp = http.get(&url).bearer_auth(&key).send().await?;
                    let status = resp.status();
                    let body = resp.bytes().await?;
                    anyhow::ensure!(
                        status.is_success(),
                        "{url}: {status} {}",
                        String::from_utf8_lossy(&body)
                    );
                    latencies.push(t0.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, percentile(&mut all, 0.50), percentile(&mut all, 0.99)))
}

/// Milliseconds of one request with nothing else running.
async fn first_answer(base: &str, key: &str, path: &str) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

fn percentile(all: &mut [Duration], p: f64) -> f64 {
    all.sort();
    all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Accepted → visible: a conversion in the realtime total, a ledger adjustment in the verified
/// total, each 20 times; prints p50 and max.
async fn freshness(base: &str, key: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let realtime = |http: &reqwest::Client| {
        let req = http
            .get(format!("{base}/api/attribution/revenue/realtime"))
            .bearer_auth(key);
        async move {
            let v: Value = req.send().await?.error_for_status()?.json().await?;
            Ok::<_, anyhow::Error>(v)
        }
    };
    let mut tracked = Vec::new();
    let mut verified = Vec::new();
    for i in 0..20 {
        let before = realtime(&http).await?;
        let t0 = Instant::now();
        let order = format!("fresh-{}-{i}", Utc::now().timestamp_micros());
        http.post(format!("{base}/v1/events"))
            .bearer_auth(key)
            .json(&json!({"type": "purchase", "occurred_at": Utc::now().to_rfc3339(),
                          "session_id": order, "order_id": order, "revenue": "1.00", "currency": "USD"}))
            .send()
            .await?
            .error_for_status()
            .context("sending the conversion")?;
        let accepted = t0.elapsed();
        loop {
            let now = realtime(&http).await?;
            if now["event_count"].as_i64() > before["event_count"].as_i64() {
                break;
            }
        }
        tracked.push(t0.elapsed() - accepted);

        let t0 = Instant::now();
        http.post(format!("{base}/v1/ledger/adjustments"))
            .bearer_auth(key)
            .json(
                &json!({"amount_cents": 100, "currency": "USD", "order_id": order,
                          "reason": "bench freshness"}),
            )
            .send()
            .await?
            .error_for_status()
            .context("posting the adjustment")?;
        let accepted = t0.elapsed();
        loop {
            let now = realtime(&http).await?;
            if now["verified_revenue_cents"].as_i64() > before["verified_revenue_cents"].as_i64() {
                break;
            }
        }
        verified.push(t0.elapsed() - accepted);
    }
    for (label, mut all) in [
        ("conversion → realtime total", tracked),
        ("posting → verified total", verified),
    ] {
        let max = all.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3;
        println!(
            "freshness, {label}: p50 {:.1} ms, max {max:.1} ms (after the write was acknowledged)",
            percentile(&mut all, 0.5)
        );
    }
    Ok(())
}

/// The ingest function with and without its live-totals insert, alternating rounds on one
/// tenant: the only change the read side made to the write path.
async fn ingest_ab(db: &Database, tenant: TenantId, events: usize) -> anyhow::Result<()> {
    println!(
        "ingest A/B (the ingest function, with vs without the live-totals insert; alternating rounds):"
    );
    let validator = crate::bench_ingest::Validator::new()?;
    // The bench ingest's live events: one in ten a conversion.
    let event = |i: usize| validator.new_event(&crate::bench_ingest::event("ab", i), "bench-ab");
    let mut next = 0usize;
    for (label, size) in [
        ("group-commit statements of 20", 20usize),
        ("batch statements of 1000", 1000),
    ] {
        let mut with = Vec::new();
        let mut without = Vec::new();
        for round in 0..6 {
            let skip = round % 2 == 1;
            let batch = (next..next + events)
                .map(event)
                .collect::<anyhow::Result<Vec<_>>>()?;
            next += events;
            let t0 = Instant::now();
            for chunk in batch.chunks(size) {
                let mut tx = db.tenant_tx(tenant).await?;
                if skip {
                    sqlx::query("SELECT set_config('tally.bench_skip_live_totals', 'on', true)")
                        .execute(&mut *tx)
                        .await?;
                }
                tally_store::events::ingest_events(&mut tx, tenant, chunk, "bench-ab").await?;
                tx.commit().await?;
            }
            let rate = events as f64 / t0.elapsed().as_secs_f64();
            if skip {
                without.push(rate)
            } else {
                with.push(rate)
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "  {label:<32} with {:>8.0} ev/s, without {:>8.0} ev/s: {:+.1} % (rounds with {:?}, without {:?})",
            mean(&with),
            mean(&without),
            (mean(&with) / mean(&without) - 1.0) * 100.0,
            with.iter().map(|r| r.round() as i64).collect::<Vec<_>>(),
            without.iter().map(|r| r.round() as i64).collect::<Vec<_>>(),
        );
    }
    Ok(())
}
