//! The subcommands.

use crate::database::{self, DbArgs};
use crate::work;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use tally_server::{AppState, ServerConfig};
use tally_store::TenantId;
use tally_store::tenants::Scope;

#[derive(Debug, Parser)]
#[command(name = "tally", version, about = "Multi-tenant revenue attribution")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the job workers in one process.
    Serve(ServeArgs),
    /// Load a month of demo data ("Demo Shop") through the HTTP API and print a dashboard key.
    Demo(crate::demo::DemoArgs),
    /// Run the job workers alone (scale them apart from the API).
    Worker(work::WorkerArgs),
    /// Schedule an attribution recompute of a tenant's window.
    Recompute(work::RecomputeArgs),
    /// Schedule a reconciliation run of a tenant's window (tracked against paid, per order).
    Reconcile(work::ReconcileArgs),
    /// Dead-lettered jobs: list, replay.
    #[command(subcommand)]
    Jobs(work::JobsCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(work::BenchCommand),
    /// Apply the embedded migrations and exit.
    Migrate(DbOnly),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
}

#[derive(Debug, clap::Args)]
pub struct DbOnly {
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address the API listens on.
    #[arg(long, env = "TALLY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Operator token for /v1/admin/*; without it the admin API is disabled.
    #[arg(long, env = "TALLY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    #[command(flatten)]
    pub group_commit: GroupCommitArgs,
    #[command(flatten)]
    pub workers: work::WorkerOptions,
    /// On first start, load the demo month ("Demo Shop") in the background and print the
    /// dashboard URL and a read key when it is complete.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub demo_options: crate::demo::DemoOptions,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// ISO 4217 currency of conversions sent without one (default USD).
        #[arg(long)]
        currency: Option<String>,
        /// IANA time zone of the tenant's days, e.g. Europe/Berlin (default UTC).
        #[arg(long)]
        time_zone: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show a tenant's settings, or change them with --set (validated as PATCH /v1/settings is;
    /// a change of lookback, half-life, Markov order or time zone schedules the recomputes).
    Settings {
        #[arg(long)]
        tenant: TenantId,
        /// A setting to change, `name=value` (repeatable), e.g. `--set lookback_days=14
        /// --set time_zone=Europe/Berlin`. Values are read as JSON when they parse, else as text.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
        set: Vec<(String, serde_json::Value)>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List, create or revoke a tenant's API keys.
    Keys {
        tenant_id: TenantId,
        /// Create a key with these scopes (comma separated: ingest,read,admin).
        #[arg(long, value_delimiter = ',')]
        create: Vec<String>,
        /// Create a publishable key (pk_…, ingest only) for the tenant's web pages; they must
        /// be in its `allowed_origins` setting.
        #[arg(long)]
        create_publishable: bool,
        /// Revoke this key id.
        #[arg(long)]
        revoke: Option<tally_store::KeyId>,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(true);
            serve(args).await
        }
        Command::Demo(args) => {
            init_logging(false);
            crate::demo::command(args).await
        }
        Command::Worker(args) => {
            init_logging(true);
            work::worker(args, shutdown_signal()).await
        }
        Command::Recompute(args) => {
            init_logging(false);
            work::recompute(args).await
        }
        Command::Reconcile(args) => {
            init_logging(false);
            work::reconcile(args).await
        }
        Command::Jobs(cmd) => {
            init_logging(false);
            work::jobs(cmd).await
        }
        Command::Bench(cmd) => {
            init_logging(false);
            work::bench(cmd).await
        }
        Command::Migrate(args) => {
            init_logging(false);
            let opened = database::open(&args.db).await?;
            println!("migrations applied");
            opened.shutdown();
            Ok(())
        }
        Command::Tenant(cmd) => {
            init_logging(false);
            tenant(cmd).await
        }
    }
}

/// JSON lines for the long-running server (every line carries the request's correlation id
/// through its span); terse warnings on stderr for one-shot commands.
fn init_logging(server: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TALLY_LOG")
        .unwrap_or_else(|_| EnvFilter::new(if server { "info,sqlx=warn" } else { "warn" }));
    if server {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let opened = database::open(&args.db).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "Tally API listening");
    let state = AppState::new(
        opened.db.clone(),
        ServerConfig {
            admin_token: args.admin_token.clone(),
            group_commit_flushers: args.group_commit.flushers,
        },
    );
    let (stop_workers, workers) = args.workers.spawn(&opened.db);
    if args.demo {
        crate::demo::spawn_for_server(opened.db.clone(), listener.local_addr()?, args.demo_options);
    }
    tally_server::serve(listener, state, async move {
        shutdown_signal().await;
        let _ = stop_workers.send(true);
    })
    .await?;
    tracing::info!("API stopped");
    workers.await?;
    opened.shutdown();
    Ok(())
}

/// SIGINT or SIGTERM: stop accepting, finish in-flight requests, stop the managed PostgreSQL.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}

async fn tenant(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Create {
            name,
            currency,
            time_zone,
            json,
            db,
        } => {
            let mut initial = serde_json::Map::new();
            if let Some(currency) = currency {
                initial.insert("currency".into(), currency.into());
            }
            if let Some(time_zone) = time_zone {
                initial.insert("time_zone".into(), time_zone.into());
            }
            let opened = database::open(&db).await?;
            let (tenant, key, settings) = opened
                .db
                .create_tenant_with_settings(&name, &initial.into())
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"tenant": tenant, "api_key": key, "settings": settings})
                );
            } else {
                println!("tenant  {}  {}", tenant.tenant_id, tenant.name);
                println!(
                    "api key {}  (scopes: ingest, read, admin; shown once, store it now)",
                    key.secret
                );
                println!(
                    "settings: currency {}, time zone {}",
                    settings.currency, settings.time_zone
                );
            }
            opened.shutdown();
        }
        TenantCommand::Settings {
            tenant,
            set,
            json,
            db,
        } => {
            let opened = database::open(&db).await?;
            if set.is_empty() {
                let settings = opened.db.settings(tenant).await.map_err(|e| match e {
                    tally_store::StoreError::NotFound => anyhow::anyhow!("no tenant {tenant}"),
                    other => other.into(),
                })?;
                if json {
                    println!("{}", serde_json::to_string(&settings)?);
                } else {
                    print!("{settings}");
                }
            } else {
                anyhow::ensure!(opened.db.tenant_exists(tenant).await?, "no tenant {tenant}");
                let doc: serde_json::Map<String, serde_json::Value> = set.into_iter().collect();
                let change = opened
                    .db
                    .change_settings(tenant, &doc.into(), "cli")
                    .await?;
                if json {
                    println!("{}", serde_json::to_string(&change)?);
                } else {
                    print!("{}", change.settings);
                    println!("recompute windows scheduled: {}", change.recompute.windows);
                }
            }
            opened.shutdown();
        }
        TenantCommand::List { db } => {
            let opened = database::open(&db).await?;
            for t in opened.db.list_tenants().await? {
                println!(
                    "{}  {:<9} {}  {}",
                    t.tenant_id,
                    t.status,
                    t.created_at.to_rfc3339(),
                    t.name
                );
            }
            opened.shutdown();
        }
        TenantCommand::Keys {
            tenant_id,
            create,
            create_publishable,
            revoke,
            db,
        } => {
            let opened = database::open(&db).await?;
            anyhow::ensure!(
                opened.db.tenant_exists(tenant_id).await?,
                "no tenant {tenant_id}"
            );
            if !create.is_empty() {
                let scopes = create
                    .iter()
                    .map(|s| {
                        Scope::parse(s).with_context(|| {
                            format!("unknown scope {s:?}; use ingest, read, admin")
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let key = opened.db.create_api_key(tenant_id, "cli", &scopes).await?;
                println!("api key {}  (shown once, store it now)", key.secret);
            }
            if create_publishable {
                let key = opened
                    .db
                    .create_publishable_key(tenant_id, "cli", None)
                    .await?;
                println!(
                    "publishable key {}  (for web pages: ingest only, allowed origins only)",
                    key.secret
                );
            }
            if let Some(key) = revoke {
                opened.db.revoke_api_key(tenant_id, key).await?;
                println!("revoked {key}");
            }
            for k in opened.db.list_api_keys(tenant_id).await? {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}  {}…  {:<11}  {:<7}  {}",
                    k.key_id,
                    k.prefix,
                    k.kind.as_str(),
                    state,
                    scopes.join(",")
                );
            }
            opened.shutdown();
        }
    }
    Ok(())
}

/// `name=value` of `--set`: the value as JSON when it parses (`14`, `true`), otherwise as text
/// (`Europe/Berlin`, `EUR`), so numbers need no quoting and names no JSON quotes.
fn parse_assignment(raw: &str) -> Result<(String, serde_json::Value), String> {
    let (name, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {raw:?}"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    Ok((name.trim().to_string(), value))
}

/// The group-commit setting shared by `serve` and `bench ingest`, so the bench measures what
/// `serve` would run.
#[derive(Debug, clap::Args)]
pub struct GroupCommitArgs {
    /// Single-event group-commit transactions in flight at once.
    #[arg(long = "group-commit-flushers", env = "TALLY_GROUP_COMMIT_FLUSHERS", default_value_t = tally_server::GROUP_COMMIT_FLUSHERS)]
    pub flushers: usize,
}
