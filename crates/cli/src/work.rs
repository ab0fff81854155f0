//! The commands around the job queue: workers, recompute, failed jobs, and the attribution bench.

use crate::database::{self, DbArgs};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Subcommand;
use std::time::{Duration, Instant};
use tally_store::recompute::{self, RecomputeJob};
use tally_store::{Database, TenantId};
use tally_worker::{Handlers, Worker, WorkerConfig};
use tokio::sync::watch;

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerOptions {
    /// Jobs this process runs at once.
    #[arg(long, env = "TALLY_WORKER_CONCURRENCY", default_value_t = 2)]
    pub worker_concurrency: usize,
    /// Seconds a claimed job stays leased without a heartbeat (a dead worker's job is retaken
    /// after it).
    #[arg(long, env = "TALLY_WORKER_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// Hours a succeeded job stays in the queue table, to inspect recent work, before the workers
    /// delete it (its result is kept elsewhere).
    #[arg(
        long,
        env = "TALLY_SUCCEEDED_JOB_RETENTION_HOURS",
        default_value_t = 168
    )]
    pub succeeded_job_retention_hours: u64,
}

impl WorkerOptions {
    fn config(&self) -> WorkerConfig {
        WorkerConfig {
            concurrency: self.worker_concurrency,
            lease: Duration::from_secs(self.lease_secs.max(1)),
            succeeded_retention: Duration::from_secs(
                self.succeeded_job_retention_hours.saturating_mul(3600),
            ),
            ..WorkerConfig::default()
        }
    }

    /// Starts the workers; they stop, finishing their jobs, when the returned sender says so
    /// (or is dropped).
    pub fn spawn(&self, db: &Database) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (stop, stopped) = watch::channel(false);
        let worker = Worker::new(db.clone(), self.config(), Handlers::standard());
        (stop, tokio::spawn(worker.run(stopped)))
    }
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub workers: WorkerOptions,
}

/// `tally worker`: workers only, until SIGINT/SIGTERM.
pub async fn worker(args: WorkerArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let opened = database::open(&args.db).await?;
    let (stop, workers) = args.workers.spawn(&opened.db);
    tracing::info!(
        concurrency = args.workers.worker_concurrency,
        "workers running"
    );
    shutdown.await;
    let _ = stop.send(true);
    workers.await?;
    opened.shutdown();
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct RecomputeArgs {
    #[arg(long)]
    pub tenant: TenantId,
    /// Window start, RFC 3339 (`2026-03-10T00:00:00Z`).
    #[arg(long)]
    pub from: DateTime<Utc>,
    /// Window end, exclusive.
    #[arg(long)]
    pub to: DateTime<Utc>,
    #[command(flatten)]
    pub db: DbArgs,
}

/// `tally recompute`: schedules the window; a worker (`serve` or `worker`) runs it.
pub async fn recompute(args: RecomputeArgs) -> anyhow::Result<()> {
    let opened = database::open(&args.db).await?;
    let job = schedule(&opened.db, args.tenant, args.from, args.to, "cli").await?;
    println!(
        "recompute {}  {} .. {}  {}  (runs so far: {})",
        job.id, job.window_start, job.window_end, job.status, job.run_count
    );
    opened.shutdown();
    Ok(())
}

async fn schedule(
    db: &Database,
    tenant: TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    correlation_id: &str,
) -> anyhow::Result<RecomputeJob> {
    anyhow::ensure!(db.tenant_exists(tenant).await?, "no tenant {tenant}");
    Ok(db
        .schedule_recompute(
            tenant,
            from,
            to,
            tally_attribution::MODEL_VERSION,
            correlation_id,
        )
        .await?)
}

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    #[arg(long)]
    pub tenant: TenantId,
    /// Window start, RFC 3339 (`2026-03-10T00:00:00Z`), on an hour of the tenant's time zone.
    #[arg(long)]
    pub from: DateTime<Utc>,
    /// Window end, exclusive.
    #[arg(long)]
    pub to: DateTime<Utc>,
    #[command(flatten)]
    pub db: DbArgs,
}

/// `tally reconcile`: schedules a reconciliation run of the window; a worker runs it.
pub async fn reconcile(args: ReconcileArgs) -> anyhow::Result<()> {
    let opened = database::open(&args.db).await?;
    anyhow::ensure!(
        opened.db.tenant_exists(args.tenant).await?,
        "no tenant {}",
        args.tenant
    );
    let run = opened
        .db
        .request_reconciliation(args.tenant, (args.from, args.to), "cli")
        .await?;
    println!(
        "reconciliation run {}  {} .. {}  {}",
        run.id, run.window_start, run.window_end, run.status
    );
    opened.shutdown();
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List dead-lettered jobs (every tenant's).
    Failed {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enqueue a dead-lettered job again, with fresh attempts.
    Replay {
        /// The failed job's id (from `tally jobs failed`).
        id: uuid::Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn jobs(cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Failed { db } => {
            let opened = database::open(&db).await?;
            for f in opened.db.list_failed_all().await? {
                let replayed = f.replayed_at.map_or("-".to_string(), |t| t.to_rfc3339());
                println!(
                    "{}  tenant {}  {}  attempts {}  failed {}  replayed {}  corr {}\n    {}",
                    f.id,
                    f.tenant_id,
                    f.kind,
                    f.attempts,
                    f.failed_at.to_rfc3339(),
                    replayed,
                    f.correlation_id,
                    f.error
                );
            }
            opened.shutdown();
        }
        JobsCommand::Replay { id, db } => {
            let opened = database::open(&db).await?;
            match opened.db.replay_failed(None, id, "cli-replay").await? {
                Some(job) => println!("replayed as job {job}"),
                None => println!("a pending job of the same identity will do its work"),
            }
            opened.shutdown();
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The eight models on generated journeys, then (unless --no-db) a recompute of a
    /// generated day of events through PostgreSQL.
    Attribution(BenchAttributionArgs),
    /// Event ingestion: the batch endpoint and the single-event endpoint over HTTP against raw
    /// COPY, same events, same machine.
    Ingest(BenchIngestArgs),
    /// The read side: a month for one large and several small tenants, then realtime,
    /// channels, time series, status, paths and runs under concurrent clients, freshness, and
    /// the ingest A/B of the live totals.
    Read(BenchReadArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchReadArgs {
    /// Events of the large tenant's month.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: usize,
    /// Other tenants.
    #[arg(long, default_value_t = 9)]
    pub tenants: usize,
    /// Events of each other tenant's month.
    #[arg(long, default_value_t = 1_000_000)]
    pub other_events: usize,
    /// Days in the month.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Concurrent read clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds each read is loaded.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Events per round of the ingest A/B.
    #[arg(long, default_value_t = 20_000)]
    pub ab_events: usize,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, clap::Args)]
pub struct BenchIngestArgs {
    /// Events loaded by each method.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Concurrent clients of the batch endpoint.
    #[arg(long, default_value_t = 4)]
    pub batch_clients: usize,
    /// Concurrent clients of the single-event endpoint.
    #[arg(long, default_value_t = 64)]
    pub single_clients: usize,
    /// Which methods to run (all three by default; ratios need `copy`).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [crate::bench_ingest::Method::Copy, crate::bench_ingest::Method::Batch, crate::bench_ingest::Method::Single])]
    pub methods: Vec<crate::bench_ingest::Method>,
    #[command(flatten)]
    pub group_commit: crate::commands::GroupCommitArgs,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, clap::Args)]
pub struct BenchAttributionArgs {
    /// Generated journeys for the in-memory models.
    #[arg(long, default_value_t = 1_000_000)]
    pub journeys: usize,
    /// Events of the generated day for the database recompute.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Skip the database part.
    #[arg(long)]
    pub no_db: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

pub async fn bench(cmd: BenchCommand) -> anyhow::Result<()> {
    let args = match cmd {
        BenchCommand::Attribution(args) => args,
        BenchCommand::Ingest(args) => {
            let opened = database::open(&args.db).await?;
            let options = crate::bench_ingest::Options {
                events: args.events,
                batch_clients: args.batch_clients,
                single_clients: args.single_clients,
                methods: args.methods,
                group_commit_flushers: args.group_commit.flushers,
            };
            let result = crate::bench_ingest::run(&opened.db, &opened.config, &options).await;
            opened.shutdown();
            return result;
        }
        BenchCommand::Read(args) => {
            let opened = database::open(&args.db).await?;
            let options = crate::bench_read::Options {
                events: args.events,
                tenants: args.tenants,
                other_events: args.other_events,
                days: args.days,
                clients: args.clients,
                seconds: args.seconds,
                ab_events: args.ab_events,
            };
            let result = crate::bench_read::run(&opened, &options).await;
            opened.shutdown();
            return result;
        }
    };
    println!("models, single-threaded, {} journeys:", args.journeys);
    let journeys = args.journeys;
    let lines =
        tokio::task::spawn_blocking(move || tally_attribution::bench::run(journeys)).await?;
    for l in lines {
        println!(
            "  {:<16} {:>10} journeys  {:>8.3} s  {:>12.0} journeys/s",
            l.model, l.journeys, l.seconds, l.journeys_per_sec
        );
    }
    if !args.no_db {
        bench_recompute(&args).await?;
    }
    Ok(())
}

/// Inserts a generated day into two new tenants, then times their recomputes by a real worker,
/// for identity stitching's A/B (issue 13: at most 20 %): one tenant with every event carrying
/// the user id (no links), one with the touches carrying only their session and a link per
/// converting shopper joining session and user, so the journeys are the same and only the
/// stitching differs. Both days are loaded before any run, and the runs alternate (first runs
/// A B, reruns A B B A), so that drift over the benchmark (tables growing, caches warming, other
/// load) weighs on both arms alike. The linked day's first run includes folding its links.
async fn bench_recompute(args: &BenchAttributionArgs) -> anyhow::Result<()> {
    let opened = database::open(&args.db).await?;
    let db = &opened.db;
    let day = DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")?.to_utc();
    let events = tally_worker::bench::generate_day(args.events, day, 42);
    let options = WorkerOptions {
        worker_concurrency: 1,
        lease_secs: 60,
        succeeded_job_retention_hours: 168,
    };
    let (stop, workers) = options.spawn(db);
    let arms = [
        load_arm(&opened, &events, false).await?,
        load_arm(&opened, &events, true).await?,
    ];
    let mut first = [0.0; 2];
    let mut rerun = [0.0; 2];
    let mut runs = [0; 2];
    let mut jobs = Vec::new();
    for (i, arm) in arms.iter().enumerate() {
        runs[i] += 1;
        let (took, job) = timed_run(db, arm, day, runs[i]).await?;
        first[i] = took;
        jobs.push(job);
    }
    for i in [0, 1, 1, 0] {
        runs[i] += 1;
        rerun[i] += timed_run(db, &arms[i], day, runs[i]).await?.0 / 2.0;
    }
    for (arm, job) in arms.iter().zip(&jobs) {
        let (local, full) = attributed_after_ingest(db, arm.tenant, day, job).await?;
        println!(
            "recompute {}: a new conversion ingested into the day: attributed under the journey-local models (fast pass committed) {local:.2} s after it was accepted, under all eight (the day's full run committed) {full:.2} s",
            arm.label
        );
    }
    let _ = stop.send(true);
    workers.await?;
    for (label, [plain, linked]) in [("first run", first), ("rerun (mean of 2)", rerun)] {
        println!(
            "recompute: {label}: identity stitching adds {:+.1} % ({linked:.2} s with links, {plain:.2} s without)",
            (linked / plain - 1.0) * 100.0,
        );
    }
    opened.shutdown();
    Ok(())
}

/// A tenant of [`bench_recompute`] with the day loaded.
struct Arm {
    tenant: TenantId,
    label: &'static str,
}

async fn load_arm(
    opened: &database::Opened,
    events: &[tally_worker::bench::DayEvent],
    linked: bool,
) -> anyhow::Result<Arm> {
    let db = &opened.db;
    let (name, label) = if linked {
        ("bench-linked", "with links")
    } else {
        ("bench", "without links")
    };
    let (tenant, _) = db.create_tenant(name).await?;
    let tenant = tenant.tenant_id;
    let conversions = events.iter().filter(|e| e.revenue_cents.is_some()).count();
    let started = Instant::now();
    let mut tx = db.tenant_tx(tenant).await?;
    if linked {
        tally_worker::bench::insert_linked_events(&mut tx, tenant, events).await?;
    } else {
        tally_worker::bench::insert_events(&mut tx, tenant, events).await?;
    }
    tx.commit().await?;
    opened.analyze_bulk_load().await?;
    println!(
        "recompute {label}: inserted {} events ({conversions} conversions) for tenant {tenant} in {:.2} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Arm { tenant, label })
}

/// Schedules the arm's day and waits for its run number `run`: seconds from schedule to commit.
async fn timed_run(
    db: &Database,
    arm: &Arm,
    day: DateTime<Utc>,
    run: i32,
) -> anyhow::Result<(f64, RecomputeJob)> {
    let started = Instant::now();
    let job = schedule(db, arm.tenant, day, day + TimeDelta::days(1), "bench").await?;
    let done = wait_for_run(db, arm.tenant, &job, run).await?;
    let took = started.elapsed().as_secs_f64();
    let mut tx = db.tenant_tx(arm.tenant).await?;
    let allocations = tally_store::attribution::allocation_count(&mut tx).await?;
    drop(tx);
    println!(
        "recompute {}: run {run}: day of {} conversions, {allocations} allocation rows, all 8 models, {took:.2} s from schedule to commit",
        arm.label,
        done.conversions.unwrap_or_default(),
    );
    Ok((took, done))
}

/// Seconds from a new conversion's acceptance by the ingest function (which schedules its day's
/// recompute, as the API's does) until its split under the journey-local models is committed
/// (the run's fast pass), and until the day's full run has committed all eight: how long the
/// attributed figures of a day this size lag behind a sale. `job` is the day's recompute.
async fn attributed_after_ingest(
    db: &Database,
    tenant: TenantId,
    day: DateTime<Utc>,
    job: &RecomputeJob,
) -> anyhow::Result<(f64, f64)> {
    let purchase = serde_json::json!({
        "event_id": "bench-fresh-sale", "type": "purchase",
        "occurred_at": (day + TimeDelta::hours(23)).to_rfc3339(), "session_id": "s-fresh",
        "order_id": "o-fresh", "revenue": "12.34", "currency": "USD"});
    let event = crate::bench_ingest::Validator::new()?.new_event(&purchase, "bench-fresh")?;
    let mut tx = db.tenant_tx(tenant).await?;
    let runs = recompute::get_recompute(&mut tx, job.id).await?.run_count;
    drop(tx);
    let started = Instant::now();
    let written = db.ingest_events(tenant, &[event], "bench-fresh").await?;
    let Some(tally_store::events::WriteOutcome::Accepted { id }) = written.first().copied() else {
        anyhow::bail!("the bench's purchase was not accepted: {written:?}");
    };
    let local = loop {
        let mut tx = db.tenant_tx(tenant).await?;
        let models = tally_store::attribution::split_models(&mut tx, id).await?;
        drop(tx);
        if !models.is_empty() {
            break started.elapsed().as_secs_f64();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let done = wait_for_run(db, tenant, job, runs + 1).await?;
    let full = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        done.conversions == job.conversions.map(|c| c + 1),
        "the run after the sale attributed {:?} conversions",
        done.conversions
    );
    Ok((local, full))
}

async fn wait_for_run(
    db: &Database,
    tenant: TenantId,
    job: &RecomputeJob,
    runs: i32,
) -> anyhow::Result<RecomputeJob> {
    loop {
        let mut tx = db.tenant_tx(tenant).await?;
        let now = recompute::get_recompute(&mut tx, job.id).await?;
        if now.run_count >= runs && now.status == "succeeded" {
            return Ok(now);
        }
        anyhow::ensure!(
            now.status != "failed",
            "recompute failed: {:?}",
            now.last_error
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
