//! `tally demo` and `tally serve --demo`: a month of a small shop ("Demo Shop") loaded through
//! the front door, so a new user sees a full dashboard without wiring up a shop first.
//!
//! The operator's part (the tenant, its settings, keys) goes through the database like
//! `tally tenant create`; everything a shop sends (tracking events, signed payment webhooks,
//! endpoint configuration) goes through the public HTTP API, so the demo exercises exactly what
//! a real shop does.
//!
//! Reruns change no data: the month's ids and times follow from the seed and the demo tenant's
//! creation hour, so every event and delivery comes back a duplicate. The keys are what changes:
//! Tally stores only a key's hash, so the dashboard key cannot be shown twice; each run prints a
//! fresh read key and revokes the demo's earlier ones, leaving exactly one that works.

mod load;
mod month;

use crate::database::{self, DbArgs};
use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tally_server::{AppState, ServerConfig};
use tally_store::tenants::Scope;
use tally_store::{Database, TenantId};

const TENANT_NAME: &str = "Demo Shop";
const TIME_ZONE: &str = "Europe/Berlin";
/// Key names that mark the demo's keys, to find and revoke them on a rerun.
const DASHBOARD_KEY: &str = "demo-dashboard";
const LOADER_KEY: &str = "demo-loader";
/// The demo shop's customers pay by card within minutes, so a day is grace enough; it also lets
/// a two-day demo show both `awaiting_payment` and `tracked_not_paid`.
const GRACE_HOURS: i32 = 24;
/// How long the workers may take to recompute and reconcile the month after it is sent.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Seed of the generated month; the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history, ending at the hour the demo tenant was created.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub days: u32,
    /// Visitors on an average weekday.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub scale: u32,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// A running Tally (`tally serve` on the same database) to send the month to; without it
    /// the demo starts the API and workers in this process for the load.
    #[arg(long)]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub options: DemoOptions,
    #[command(flatten)]
    pub db: DbArgs,
}

/// `tally demo`.
pub async fn command(args: DemoArgs) -> anyhow::Result<()> {
    let opened = database::open(&args.db).await?;
    let result = match &args.base_url {
        Some(base) => load(&opened.db, base, &args.options)
            .await
            .map(|s| (s, base.clone())),
        None => in_process(&opened.db, &args.options).await,
    };
    opened.shutdown();
    let (summary, base) = result?;
    let dashboard = match args.base_url {
        Some(_) => format!("{}/", base.trim_end_matches('/')),
        None => "http://127.0.0.1:8080/ (start it with `tally serve`)".into(),
    };
    summary.print(&dashboard);
    Ok(())
}

/// `tally serve --demo`: loads the month into the server that is starting, unless an earlier
/// start already completed it (the dashboard key exists then; `tally demo` prints a new one).
pub fn spawn_for_server(db: Database, listen: SocketAddr, options: DemoOptions) {
    tokio::spawn(async move {
        let dashboard = format!("http://{listen}/");
        match completed_before(&db).await {
            Ok(true) => {
                tracing::info!(%dashboard, "demo data already loaded; `tally demo` prints a new key");
                return;
            }
            Ok(false) => {}
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "demo: looking for the demo tenant");
                return;
            }
        }
        tracing::info!("loading the demo month in the background");
        match load(&db, &format!("http://{listen}"), &options).await {
            // On stderr, not in the JSON log: a key has no place in logs that get shipped.
            Ok(summary) => summary.print_to_stderr(&dashboard),
            Err(err) => tracing::error!(error = %format!("{err:#}"), "demo: loading failed"),
        }
    });
}

/// Starts the API (ephemeral loopback port) and workers here, loads, stops them.
async fn in_process(db: &Database, options: &DemoOptions) -> anyhow::Result<(Summary, String)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(db.clone(), ServerConfig::default());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tally_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let workers = crate::work::WorkerOptions {
        worker_concurrency: 2,
        lease_secs: 30,
        succeeded_job_retention_hours: 168,
    };
    let (stop_workers, worker_task) = workers.spawn(db);
    let result = load(db, &base, options).await;
    let _ = stop_workers.send(true);
    let _ = stop_server.send(());
    worker_task.await?;
    server.await??;
    Ok((result?, base))
}

async fn find_tenant(db: &Database) -> anyhow::Result<Option<(TenantId, DateTime<Utc>)>> {
    Ok(db
        .list_tenants()
        .await?
        .into_iter()
        .find(|t| t.name == TENANT_NAME)
        .map(|t| (t.tenant_id, t.created_at)))
}

async fn completed_before(db: &Database) -> anyhow::Result<bool> {
    let Some((tenant, _)) = find_tenant(db).await? else {
        return Ok(false);
    };
    Ok(db
        .list_api_keys(tenant)
        .await?
        .iter()
        .any(|k| k.name == DASHBOARD_KEY && k.revoked_at.is_none()))
}

/// The demo tenant (created on the first run) with its settings, and a loader key.
async fn prepare(db: &Database) -> anyhow::Result<(TenantId, DateTime<Utc>, String)> {
    let (tenant, created_at) = match find_tenant(db).await? {
        Some(found) => found,
        None => {
            let (tenant, first_key) = db.create_tenant(TENANT_NAME).await?;
            db.revoke_api_key(tenant.tenant_id, first_key.info.key_id)
                .await?;
            (tenant.tenant_id, tenant.created_at)
        }
    };
    // No settings API yet: set them in the tenant's own transaction, under RLS.
    let mut tx = db.tenant_tx(tenant).await?;
    sqlx::query(
        "UPDATE tenant_settings SET currency = $1, time_zone = $2, reconciliation_grace_hours = $3
         WHERE currency <> $1 OR time_zone <> $2 OR reconciliation_grace_hours <> $3",
    )
    .bind(month::CURRENCY)
    .bind(TIME_ZONE)
    .bind(GRACE_HOURS)
    .execute(&mut *tx)
    .await
    .context("setting the demo tenant's currency and time zone")?;
    tx.commit().await?;
    let loader = db
        .create_api_key(
            tenant,
            LOADER_KEY,
            &[Scope::Ingest, Scope::Read, Scope::Admin],
        )
        .await?;
    Ok((tenant, created_at, loader.secret))
}

/// Loads the month into the Tally at `base` and issues the dashboard key.
async fn load(db: &Database, base: &str, options: &DemoOptions) -> anyhow::Result<Summary> {
    let (tenant, created_at, loader_key) = prepare(db).await?;
    let end = created_at
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour divides any instant");
    let plan = month::Plan {
        seed: options.seed,
        days: options.days,
        visitors_per_day: options.scale,
        end,
    };
    let month = tokio::task::spawn_blocking(move || month::generate(&plan)).await?;
    let api = load::Api::new(base, &loader_key)?;
    let total = (month.events.len() + month.delivery_count()) as u64;
    let progress = load::progress_bar(total);
    let started = Instant::now();
    progress.set_message("events");
    let events = load::send_events(&api, &month.events, &progress).await?;
    let dead_letters = load::send_invalid(&api, &month.invalid).await?;
    progress.set_message("webhooks");
    let deliveries = load::send_deliveries(&api, &month, &progress).await?;
    let sent_in = started.elapsed();
    progress.set_message("settling");
    let from = end - TimeDelta::days(options.days.into());
    // Automatic runs reconcile single days; the dashboard shows a range the newest run that
    // contains it, so one run of the month's whole local days serves every preset on the day
    // of loading (settling waits for it too).
    let (run_from, run_to) = local_days(db, tenant, from, end).await?;
    api.post(
        "/v1/reconciliation/runs",
        &serde_json::json!({"from": run_from.to_rfc3339(), "to": run_to.to_rfc3339()}),
    )
    .await?;
    load::settle(&api, from, end + TimeDelta::hours(1), SETTLE_TIMEOUT).await?;
    progress.finish_and_clear();
    let settled_in = started.elapsed();
    let key = issue_dashboard_key(db, tenant).await?;
    Ok(Summary {
        tenant,
        key,
        events: month.events.len(),
        counts: events,
        dead_letters,
        deliveries: month.delivery_count(),
        delivery_counts: deliveries,
        sent_in,
        settled_in,
    })
}

/// `[from, to]` widened to whole days of the demo's time zone: from the local midnight before
/// `from` to the one after `to`.
async fn local_days(
    db: &Database,
    tenant: TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let mut tx = db.tenant_tx(tenant).await?;
    let days = sqlx::query_as("SELECT date_trunc('day', $1, $3), tally_next_local_day($2, $3)")
        .bind(from)
        .bind(to)
        .bind(TIME_ZONE)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(days)
}

/// A new read key for the dashboard; every other demo key (earlier dashboard keys, this run's
/// loader) is revoked.
async fn issue_dashboard_key(db: &Database, tenant: TenantId) -> anyhow::Result<String> {
    for key in db.list_api_keys(tenant).await? {
        if key.revoked_at.is_none() && (key.name == DASHBOARD_KEY || key.name == LOADER_KEY) {
            db.revoke_api_key(tenant, key.key_id).await?;
        }
    }
    Ok(db
        .create_api_key(tenant, DASHBOARD_KEY, &[Scope::Read])
        .await?
        .secret)
}

struct Summary {
    tenant: TenantId,
    key: String,
    events: usize,
    counts: load::EventCounts,
    dead_letters: usize,
    deliveries: usize,
    delivery_counts: load::DeliveryCounts,
    sent_in: Duration,
    settled_in: Duration,
}

impl Summary {
    fn lines(&self, dashboard: &str) -> Vec<String> {
        let secs = self.sent_in.as_secs_f64();
        let rate = (self.events + self.deliveries) as f64 / secs.max(1e-9);
        vec![
            format!(
                "demo tenant  {}  {TENANT_NAME} ({}, {TIME_ZONE})",
                self.tenant,
                month::CURRENCY
            ),
            format!(
                "events       {} sent: {} accepted, {} duplicates, {} refused; {} invalid events in the dead-letter queue",
                self.events,
                self.counts.accepted,
                self.counts.duplicates,
                self.counts.rejected,
                self.dead_letters
            ),
            format!(
                "webhooks     {} sent: {} new, {} duplicates",
                self.deliveries, self.delivery_counts.new, self.delivery_counts.duplicates
            ),
            format!(
                "speed        sent in {secs:.1} s ({rate:.0} events/s); attribution and reconciliation settled after {:.1} s",
                self.settled_in.as_secs_f64()
            ),
            format!("dashboard    {dashboard}"),
            format!(
                "read key     {}  (a rerun revokes it and prints a new one)",
                self.key
            ),
        ]
    }

    fn print(&self, dashboard: &str) {
        for line in self.lines(dashboard) {
            println!("{line}");
        }
    }

    fn print_to_stderr(&self, dashboard: &str) {
        for line in self.lines(dashboard) {
            eprintln!("{line}");
        }
    }
}
