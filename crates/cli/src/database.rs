//! Which PostgreSQL a command talks to: `DATABASE_URL` when given, otherwise the managed cluster
//! under the data directory, started here unless another `tally` process already runs it (then
//! this process connects to it and leaves it running).

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use tally_store::cluster::{self, ClusterOptions, Durability, LocalCluster};
use tally_store::db::{bootstrap_managed, data_directory};
use tally_store::{Database, DbConfig};

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL of the schema owner; when absent Tally runs its own PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Password Tally sets on, and uses for, its runtime roles (only for servers that require
    /// passwords; the managed cluster trusts loopback).
    #[arg(long, env = "TALLY_DB_ROLE_PASSWORD", hide_env_values = true)]
    pub db_role_password: Option<String>,
    /// Where the managed PostgreSQL keeps its data (used without DATABASE_URL).
    #[arg(long, env = "TALLY_DATA_DIR", default_value = "./tally-data")]
    pub data_dir: PathBuf,
    /// Loopback port of the managed PostgreSQL.
    #[arg(long, env = "TALLY_PG_PORT", default_value_t = 54329)]
    pub pg_port: u16,
    /// Connections of the runtime pool.
    #[arg(long, env = "TALLY_DB_CONNECTIONS", default_value_t = 32)]
    pub db_connections: u32,
}

/// A migrated database, and the managed cluster when this process started it.
pub struct Opened {
    pub db: Database,
    pub config: DbConfig,
    pub cluster: Option<LocalCluster>,
}

impl Opened {
    /// Stops the managed cluster this process started (a no-op otherwise).
    pub fn shutdown(self) {
        drop(self.db);
        if let Some(cluster) = self.cluster {
            tracing::info!("stopping the managed PostgreSQL");
            cluster.stop();
        }
    }
}

pub async fn open(args: &DbArgs) -> anyhow::Result<Opened> {
    let (owner_url, cluster) = match &args.database_url {
        Some(url) => (url.clone(), None),
        None => managed(args).await?,
    };
    let config = DbConfig {
        owner_url,
        role_password: args.db_role_password.clone(),
        max_connections: args.db_connections,
    };
    Database::migrate(&config)
        .await
        .context("migrating the database")?;
    let db = Database::connect(&config)
        .await
        .context("connecting as the runtime roles")?;
    Ok(Opened {
        db,
        config,
        cluster,
    })
}

async fn managed(args: &DbArgs) -> anyhow::Result<(String, Option<LocalCluster>)> {
    let url = |user: &str, db: &str| {
        format!(
            "postgres://{user}@127.0.0.1:{}/{db}?sslmode=disable",
            args.pg_port
        )
    };
    let owner_url = url(cluster::OWNER, cluster::DATABASE);
    if sqlx_ping(&owner_url).await {
        // Whatever answers on the port is used only if it is this data directory's cluster:
        // `--data-dir /tmp/scratch` must never write into the live cluster of another one.
        let served = data_directory(&url(cluster::SUPERUSER, "postgres")).await;
        match served {
            Ok(dir) if cluster::serves_data_dir(&dir, &args.data_dir) => {
                tracing::info!(
                    port = args.pg_port,
                    "using the managed PostgreSQL another tally process runs"
                );
                return Ok((owner_url, None));
            }
            Ok(dir) => anyhow::bail!(
                "port {} is taken by the managed PostgreSQL of another data directory ({}), not of {}; give this data directory its own --pg-port (TALLY_PG_PORT)",
                args.pg_port,
                dir.display(),
                args.data_dir.display()
            ),
            Err(e) => anyhow::bail!(
                "port {} is taken by a PostgreSQL server that is not the managed cluster of {} ({e}); give this data directory its own --pg-port (TALLY_PG_PORT), or set DATABASE_URL to use that server",
                args.pg_port,
                args.data_dir.display()
            ),
        }
    }
    let opts = ClusterOptions {
        data_dir: args.data_dir.clone(),
        port: Some(args.pg_port),
        durability: Durability::Full,
        bindir: std::env::var_os("TALLY_PG_BINDIR").map(Into::into),
    };
    tracing::info!(data_dir = %args.data_dir.display(), port = args.pg_port, "starting the managed PostgreSQL");
    let started = tokio::task::spawn_blocking(move || LocalCluster::start(&opts)).await??;
    bootstrap_managed(&started.url(cluster::SUPERUSER, "postgres")).await?;
    Ok((owner_url, Some(started)))
}

async fn sqlx_ping(url: &str) -> bool {
    use tally_store::db::ping_url;
    ping_url(url).await
}
