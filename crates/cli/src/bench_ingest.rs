//! `tally bench ingest`: the same generated events loaded three ways, on one machine, into one
//! database:
//! (a) `POST /v1/events/batch` over HTTP (1000 per batch, a few concurrent clients),
//! (b) `POST /v1/events` with 64 concurrent clients (group commit underneath),
//! (c) raw `COPY` of the already-normalised rows into a table with the same columns, indexes,
//!     constraints and PII trigger (`attribution_events` itself refuses `COPY FROM` under
//!     row-level security, so the copy goes to a structural twin).
//! Commits are durable throughout (`synchronous_commit` stays on).

use anyhow::Context;
use chrono::{Duration as TimeDelta, Utc};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_core::channel::{ChannelResolver, default_rules};
use tally_core::event::{ValidationContext, validate};
use tally_core::money::CurrencyCode;
use tally_server::{AppState, ServerConfig};
use tally_store::{Database, DbConfig};

pub struct Options {
    pub events: usize,
    pub batch_clients: usize,
    pub single_clients: usize,
}

pub async fn run(db: &Database, cfg: &DbConfig, opts: &Options) -> anyhow::Result<()> {
    let (tenant, key) = db.create_tenant("bench").await?;
    let mut tx = db.tenant_tx(tenant.tenant_id).await?;
    sqlx::query("UPDATE tenant_settings SET rate_limit_per_minute = 2000000000, rate_limit_burst = 2000000000")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(db.clone(), ServerConfig::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tally_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    println!(
        "tally bench ingest: {} events per method, durable commits",
        opts.events
    );
    let batch_rate = batch_over_http(&http, &base, &key.secret, opts).await?;
    let (single_rate, p50, p99) = single_over_http(&http, &base, &key.secret, opts).await?;
    let copy_rate = raw_copy(cfg, opts.events).await?;
    let _ = stop.send(());
    let _ = server.await;

    println!();
    println!("{:<34} {:>12} {:>10}", "method", "events/s", "vs COPY");
    println!(
        "{:<34} {:>12.0} {:>10}",
        "(c) raw COPY, same indexes", copy_rate, "1.00"
    );
    println!(
        "{:<34} {:>12.0} {:>10.2}",
        "(a) batch endpoint over HTTP",
        batch_rate,
        batch_rate / copy_rate
    );
    println!(
        "{:<34} {:>12.0} {:>10.2}",
        format!("(b) single endpoint, {} clients", opts.single_clients),
        single_rate,
        single_rate / copy_rate
    );
    println!("single-event latency: p50 {:.2} ms, p99 {:.2} ms", p50, p99);
    Ok(())
}

/// A realistic mix: mostly touches with utm tags or referrers, one purchase in ten.
fn event(prefix: &str, i: usize) -> Value {
    let at = (Utc::now() - TimeDelta::seconds((i % 86_400) as i64 + 60)).to_rfc3339();
    let session = format!("s-{}", i / 5);
    if i % 10 == 9 {
        return json!({
            "event_id": format!("{prefix}-{i}"), "type": "purchase", "occurred_at": at,
            "session_id": session, "anonymous_id": format!("a-{}", i / 20),
            "order_id": format!("o-{prefix}-{i}"), "revenue": format!("{}.{:02}", 10 + i % 90, i % 100),
            "currency": "USD", "properties": {"items": 2, "coupon": null}
        });
    }
    let (source, medium) = [
        ("google", "cpc"),
        ("facebook", "paid_social"),
        ("newsletter", "email"),
        ("", ""),
    ][i % 4];
    let mut e = json!({
        "event_id": format!("{prefix}-{i}"), "type": "page_view", "occurred_at": at,
        "session_id": session, "anonymous_id": format!("a-{}", i / 20),
        "properties": {"path": format!("/products/{}", i % 500), "title": "Product"}
    });
    if source.is_empty() {
        e["referrer"] = json!("https://www.bing.com/search?q=shoes");
    } else {
        e["utm_source"] = json!(source);
        e["utm_medium"] = json!(medium);
        e["utm_campaign"] = json!("autumn");
    }
    e
}

async fn batch_over_http(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    opts: &Options,
) -> anyhow::Result<f64> {
    let batches: Vec<Vec<Value>> = (0..opts.events)
        .map(|i| event("batch", i))
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(<[Value]>::to_vec)
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(batches));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.batch_clients {
        let (http, url, key, queue) = (
            http.clone(),
            format!("{base}/v1/events/batch"),
            key.to_string(),
            queue.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(batch) = queue.lock().await.pop() else {
                    return Ok::<_, anyhow::Error>(());
                };
                let resp = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&batch)
                    .send()
                    .await?;
                anyhow::ensure!(
                    resp.status().is_success(),
                    "batch failed: {}",
                    resp.status()
                );
                let body: Value = resp.json().await?;
                anyhow::ensure!(
                    body["accepted"] == batch.len(),
                    "not all accepted: {}",
                    body["rejected"]
                );
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(opts.events as f64 / started.elapsed().as_secs_f64())
}

async fn single_over_http(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    opts: &Options,
) -> anyhow::Result<(f64, f64, f64)> {
    let clients = opts.single_clients.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, key) = (http.clone(), format!("{base}/v1/events"), key.to_string());
        let mine: Vec<Value> = (c..opts.events)
            .step_by(clients)
            .map(|i| event("single", i))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            for e in mine {
                let t0 = Instant::now();
                let resp = http.post(&url).bearer_auth(&key).json(&e).send().await?;
                anyhow::ensure!(
                    resp.status().as_u16() == 201,
                    "single event failed: {}",
                    resp.status()
                );
                latencies.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = opts.events as f64 / started.elapsed().as_secs_f64();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    Ok((rate, pct(0.50), pct(0.99)))
}

async fn raw_copy(cfg: &DbConfig, events: usize) -> anyhow::Result<f64> {
    let resolver = ChannelResolver::new(&default_rules(), &[])?;
    let ctx = ValidationContext {
        now: Utc::now(),
        default_currency: CurrencyCode::parse("USD").ok(),
        resolver: &resolver,
    };
    let tenant = uuid::Uuid::now_v7();
    let mut csv = String::with_capacity(events * 400);
    for i in 0..events {
        let v = validate(&event("copy", i), &ctx)
            .map_err(|e| anyhow::anyhow!("generated event invalid: {e:?}"))?;
        let fields: [Option<String>; 24] = [
            Some(tenant.to_string()),
            Some(uuid::Uuid::now_v7().to_string()),
            Some(v.event_id.clone()),
            Some(format!("\\x{}", hex::encode(v.payload_sha256))),
            Some(v.kind.as_str().into()),
            Some(v.event_type.as_str().into()),
            Some(v.occurred_at.to_rfc3339()),
            Some(v.session_id.clone()),
            v.anonymous_id.clone(),
            v.user_id.clone(),
            v.order_id.clone(),
            v.revenue_cents.map(|c| c.to_string()),
            v.currency.map(|c| c.as_str().to_string()),
            Some(v.channel_code.into()),
            v.utm.source.clone(),
            v.utm.medium.clone(),
            v.utm.campaign.clone(),
            v.utm.term.clone(),
            v.utm.content.clone(),
            v.referrer_host.clone(),
            Some("{}".into()),
            Some(Value::Object(v.properties.clone()).to_string()),
            Some("bench".into()),
            None,
        ];
        let line: Vec<String> = fields
            .iter()
            .map(|f| match f {
                Some(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                None => String::new(),
            })
            .collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    let mut conn = PgConnection::connect(&cfg.owner_url).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_copy_events;
         CREATE TABLE bench_copy_events (LIKE attribution_events INCLUDING ALL);
         ALTER TABLE bench_copy_events ADD FOREIGN KEY (channel_code) REFERENCES channel_taxonomy (code);
         CREATE TRIGGER bench_no_pii BEFORE INSERT ON bench_copy_events FOR EACH ROW
             WHEN (NEW.properties <> '{}'::jsonb) EXECUTE FUNCTION attribution_events_refuse_pii();",
    )
    .execute(&mut conn)
    .await
    .context("creating the COPY twin table")?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY bench_copy_events (tenant_id, id, event_id, payload_sha256, kind, event_type, occurred_at,
                session_id, anonymous_id, user_id, order_id, revenue_cents, currency, channel_code,
                utm_source, utm_medium, utm_campaign, utm_term, utm_content, referrer_host, click_ids,
                properties, correlation_id, replayed_from) FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(csv.as_bytes()).await?;
    copy.finish().await?;
    let elapsed = started.elapsed();
    sqlx::raw_sql("DROP TABLE bench_copy_events")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(events as f64 / elapsed.as_secs_f64())
}
