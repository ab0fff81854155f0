//! `tally bench ingest`: the same generated events loaded three ways, on one machine, into one
//! database:
//! (a) `POST /v1/events/batch` over HTTP (1000 per batch, a few concurrent clients),
//! (b) `POST /v1/events` with 64 concurrent clients (group commit underneath),
//! (c) raw `COPY` of the already-normalised rows into a table with the same columns, indexes,
//!     constraints and PII trigger (`attribution_events` itself refuses `COPY FROM` under
//!     row-level security, so the copy goes to a structural twin).
//! Commits are durable throughout (`synchronous_commit` stays on).

use crate::bench_cpu::CpuSample;
use anyhow::Context;
use bytes::Bytes;
use chrono::{Duration as TimeDelta, Utc};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_core::channel::{ChannelResolver, default_rules};
use tally_core::event::{ValidEvent, ValidationContext, validate};
use tally_core::money::CurrencyCode;
use tally_server::{AppState, ServerConfig};
use tally_store::events::NewEvent;
use tally_store::{Database, DbConfig, TenantId};

/// One way of loading the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// `POST /v1/events/batch` over HTTP.
    Batch,
    /// `POST /v1/events`, one event per request.
    Single,
    /// Raw `COPY` into a structural twin of the events table.
    Copy,
}

pub struct Options {
    pub events: usize,
    pub batch_clients: usize,
    pub single_clients: usize,
    pub methods: Vec<Method>,
    pub group_commit_flushers: usize,
}

pub async fn run(db: &Database, cfg: &DbConfig, opts: &Options) -> anyhow::Result<()> {
    // "bench" stitches across sessions (the default); "bench-sessions" is the other arm of the
    // identity stitching A/B ([`stitching_ab`]).
    let (tenant, key) = bench_tenant(db, "bench", true).await?;
    let (_, session_key) = bench_tenant(db, "bench-sessions", false).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = ServerConfig {
        group_commit_flushers: opts.group_commit_flushers,
        ..ServerConfig::default()
    };
    let state = AppState::new(db.clone(), config);
    let group_commit = state.group_commit.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tally_server::serve(listener, state, async {
        let _ = stopped.await;
    }));

    println!(
        "tally bench ingest: {} events per method, durable commits",
        opts.events
    );
    let wanted = |m| opts.methods.contains(&m);
    let batch = match wanted(Method::Batch) {
        true => Some(batch_over_http(addr, &key.secret, opts, "batch").await?),
        false => None,
    };
    let single = match wanted(Method::Single) {
        true => {
            let before = CpuSample::now();
            let measured = single_over_http(addr, &key.secret, opts, "single").await?;
            Some((measured, CpuSample::now().since(&before)))
        }
        false => None,
    };
    let (groups, events) = group_commit.totals();
    let mut stitching = Vec::new();
    for method in [Method::Batch, Method::Single] {
        if wanted(method) {
            let rates =
                stitching_ab(addr, (&key.secret, &session_key.secret), opts, method).await?;
            stitching.push((method, rates));
        }
    }
    let copy = match wanted(Method::Copy) {
        true => Some(raw_copy(cfg, tenant.tenant_id, opts.events).await?),
        false => None,
    };
    let _ = stop.send(());
    let _ = server.await;

    println!();
    println!("{:<34} {:>12} {:>10}", "method", "events/s", "vs COPY");
    let line = |label: String, rate: f64| {
        let ratio = copy.map_or("-".to_string(), |c| format!("{:.2}", rate / c));
        println!("{label:<34} {rate:>12.0} {ratio:>10}");
    };
    if let Some(rate) = copy {
        line("(c) raw COPY, same indexes".into(), rate);
    }
    if let Some(rate) = batch {
        line("(a) batch endpoint over HTTP".into(), rate);
    }
    if let Some(((rate, p50, p99), cpu)) = single {
        line(
            format!("(b) single endpoint, {} clients", opts.single_clients),
            rate,
        );
        println!("single-event latency: p50 {p50:.2} ms, p99 {p99:.2} ms");
        if groups > 0 {
            println!(
                "group commit: {groups} transactions, {:.1} events each on average",
                events as f64 / groups as f64
            );
        }
        let per_event = |seconds: f64| seconds * 1e6 / opts.events as f64;
        println!(
            "CPU per single event: tally (server and clients) {:.0} µs, PostgreSQL {:.0} µs",
            per_event(cpu.own),
            per_event(cpu.postgres)
        );
    }
    for (method, (on, off)) in stitching {
        println!(
            "identity stitching A/B, {method:?}, {} events per arm: on {on:.0}/s, off {off:.0}/s, \
             {:+.1} % time per event",
            opts.events,
            (off / on - 1.0) * 100.0
        );
    }
    Ok(())
}

/// A bar on stderr for one method's run, so a 200,000-event run shows that it is moving and
/// how long is left; indicatif hides it when stderr is not a terminal (CI logs stay clean) and
/// redraws at most a few times a second, so counting costs the measurement nothing visible.
fn progress(method: &str, events: usize) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(events as u64).with_prefix(method.to_string());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>6} [{bar:40}] {pos}/{len} events, {per_sec}, {eta} left",
        )?
        .progress_chars("=> "),
    );
    Ok(bar)
}

/// A realistic mix: mostly touches with utm tags or referrers, one purchase in ten, live (today).
pub(crate) fn event(prefix: &str, i: usize) -> Value {
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

/// Identity stitching's cost (issue 13: at most 5 % of ingestion): events/s of `method` for a
/// tenant that stitches across sessions (its events append identity links) and for one that
/// keeps journeys per session (none), `keys` in that order. Four rounds of half the events in
/// ABBA order (off, on, on, off), so that drift over the run (the tables growing, other load on
/// the machine) weighs on both arms alike.
async fn stitching_ab(
    addr: SocketAddr,
    (on, off): (&str, &str),
    opts: &Options,
    method: Method,
) -> anyhow::Result<(f64, f64)> {
    let round = Options {
        events: (opts.events / 2).max(1),
        methods: Vec::new(),
        ..*opts
    };
    let mut seconds = [0.0_f64; 2];
    for (i, stitched) in [false, true, true, false].into_iter().enumerate() {
        let key = if stitched { on } else { off };
        let label = format!("{method:?}-ab{i}").to_lowercase();
        let rate = match method {
            Method::Batch => batch_over_http(addr, key, &round, &label).await?,
            Method::Single | Method::Copy => single_over_http(addr, key, &round, &label).await?.0,
        };
        seconds[usize::from(stitched)] += round.events as f64 / rate;
    }
    let per_arm = 2.0 * round.events as f64;
    Ok((per_arm / seconds[1], per_arm / seconds[0]))
}

/// A tenant for the benchmark: no rate limit, stitching across sessions or not.
async fn bench_tenant(
    db: &Database,
    name: &str,
    cross_session: bool,
) -> anyhow::Result<(
    tally_store::tenants::Tenant,
    tally_store::tenants::NewApiKey,
)> {
    let (tenant, key) = db.create_tenant(name).await?;
    let mut tx = db.tenant_tx(tenant.tenant_id).await?;
    sqlx::query(
        "UPDATE tenant_settings SET rate_limit_per_minute = 2000000000,
             rate_limit_burst = 2000000000, identity_cross_session = $1",
    )
    .bind(cross_session)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((tenant, key))
}

async fn batch_over_http(
    addr: SocketAddr,
    key: &str,
    opts: &Options,
    label: &str,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let batches: Vec<Vec<Value>> = (0..opts.events)
        .map(|i| event(label, i))
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(<[Value]>::to_vec)
        .collect();
    let queue = Arc::new(tokio::sync::Mutex::new(batches));
    let bar = progress(label, opts.events)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.batch_clients {
        let (http, url, key, queue, bar) = (
            http.clone(),
            format!("{base}/v1/events/batch"),
            key.to_string(),
            queue.clone(),
            bar.clone(),
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
                bar.inc(batch.len() as u64);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = opts.events as f64 / started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(rate)
}

/// Each of the clients owns one keep-alive HTTP/1.1 connection and sends its events one at a
/// time, each request waiting for the previous answer. The clients speak hyper's connection API
/// directly rather than reqwest: the load generator shares the machine's two cores with the
/// server and PostgreSQL, and reqwest's pool, URL handling and per-request bookkeeping cost
/// about as much CPU as the server's own work per event, which would be measured as Tally's.
async fn single_over_http(
    addr: SocketAddr,
    key: &str,
    opts: &Options,
    label: &str,
) -> anyhow::Result<(f64, f64, f64)> {
    let clients = opts.single_clients.max(1);
    let auth = HeaderValue::from_str(&format!("Bearer {key}"))?;
    let mut tasks = Vec::new();
    let mut connections = Vec::new();
    for c in 0..clients {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        connections.push(tokio::spawn(conn));
        let bodies: Vec<Bytes> = (c..opts.events)
            .step_by(clients)
            .map(|i| Bytes::from(event(label, i).to_string()))
            .collect();
        tasks.push((sender, bodies));
    }
    let bar = progress(label, opts.events)?;
    let started = Instant::now();
    let running: Vec<_> = tasks
        .into_iter()
        .map(|(sender, bodies)| {
            tokio::spawn(single_client(sender, auth.clone(), bodies, bar.clone()))
        })
        .collect();
    let mut all: Vec<Duration> = Vec::new();
    for t in running {
        all.extend(t.await??);
    }
    let rate = opts.events as f64 / started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    for conn in connections {
        conn.abort();
    }
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    Ok((rate, pct(0.50), pct(0.99)))
}

async fn single_client(
    mut sender: SendRequest<Full<Bytes>>,
    auth: HeaderValue,
    bodies: Vec<Bytes>,
    bar: ProgressBar,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(bodies.len());
    for body in bodies {
        let request = Request::post("/v1/events")
            .header(HOST, "bench")
            .header(AUTHORIZATION, auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let t0 = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status.as_u16() == 201,
            "single event failed: {status} {}",
            String::from_utf8_lossy(&body)
        );
        latencies.push(t0.elapsed());
        bar.inc(1);
    }
    Ok(latencies)
}

/// Validates the benchmarks' generated events as the API validates a tenant's: the default
/// channel rules, USD by default, the clock now.
pub(crate) struct Validator(ChannelResolver);

impl Validator {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self(ChannelResolver::new(&default_rules(), &[])?))
    }

    pub(crate) fn event(&self, raw: &Value) -> anyhow::Result<ValidEvent> {
        let ctx = ValidationContext {
            now: Utc::now(),
            default_currency: CurrencyCode::parse("USD").ok(),
            resolver: &self.0,
        };
        validate(raw, &ctx).map_err(|e| anyhow::anyhow!("generated event invalid: {e:?}"))
    }

    /// [`Self::event`], ready for the ingest function.
    pub(crate) fn new_event(&self, raw: &Value, correlation_id: &str) -> anyhow::Result<NewEvent> {
        Ok(NewEvent {
            event: self.event(raw)?,
            correlation_id: correlation_id.into(),
            replayed_from: None,
        })
    }
}

async fn raw_copy(cfg: &DbConfig, tenant: TenantId, events: usize) -> anyhow::Result<f64> {
    let validator = Validator::new()?;
    let mut csv = String::with_capacity(events * 400);
    // The rows are built before the timed COPY; the bar shows that part, the COPY is one call.
    let bar = progress("copy", events)?;
    for i in 0..events {
        bar.inc(1);
        let v = validator.event(&event("copy", i))?;
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
    bar.finish_and_clear();
    let mut conn = PgConnection::connect(&cfg.owner_url).await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_copy_events;
         CREATE TABLE bench_copy_events (LIKE attribution_events INCLUDING ALL);
         ALTER TABLE bench_copy_events ADD FOREIGN KEY (channel_code) REFERENCES channel_taxonomy (code);
         ALTER TABLE bench_copy_events ADD FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id);
         CREATE TRIGGER bench_no_pii BEFORE INSERT ON bench_copy_events FOR EACH ROW
             WHEN (tally_pii_suspect(NEW.properties)) EXECUTE FUNCTION attribution_events_refuse_pii();",
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
