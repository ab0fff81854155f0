//! Which PostgreSQL a command talks to: `DATABASE_URL` when given, otherwise the managed cluster
//! under the data directory, started here unless another `tally` process already runs it (then
//! this process connects to it and leaves it running).

use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use tally_store::cluster::{self, ClusterOptions, Durability, LocalCluster};
use tally_store::db::{bootstrap_managed, data_directory};
use tally_store::secrets::{self, SecretKey, SecretKeys};
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
    /// The key webhook signing secrets are sealed with: 32 bytes in standard base64
    /// (`openssl rand -base64 32`). Without it, the managed cluster's key file is used
    /// (generated on first start); with DATABASE_URL and no key, secrets are stored unsealed.
    #[arg(long, env = "TALLY_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The key being replaced: secrets sealed with it are opened and sealed again with
    /// TALLY_SECRET_KEY at start-up, after which it is no longer needed.
    #[arg(long, env = "TALLY_SECRET_KEY_PREVIOUS", hide_env_values = true)]
    pub previous_secret_key: Option<String>,
}

/// A migrated database, and the managed cluster when this process started it.
pub struct Opened {
    pub db: Database,
    pub config: DbConfig,
    pub cluster: Option<LocalCluster>,
}

impl Opened {
    /// Refreshes the planner's statistics of the tables a benchmark bulk-loads, as the schema
    /// owner (only an owner may). A bulk load outside the ingest path is followed by `ANALYZE`,
    /// as after any restore: autovacuum gets to it only later, and the first recompute would be
    /// planned on the empty tables' statistics (a reconciliation of the bench month ran minutes
    /// instead of a second).
    pub async fn analyze_bulk_load(&self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.config.owner_url).await?;
        sqlx::raw_sql("ANALYZE attribution_events, revenue_ledger, live_deltas")
            .execute(&mut conn)
            .await
            .context("analyzing the loaded tables")?;
        Ok(())
    }

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
        secrets: secret_keys(args)?,
    };
    Database::migrate(&config)
        .await
        .context("migrating the database")?;
    let db = Database::connect(&config)
        .await
        .context("connecting as the runtime roles")?;
    if !config.secrets.sealing() {
        tracing::warn!(
            "no TALLY_SECRET_KEY: webhook signing secrets are stored unsealed in the database"
        );
    }
    let sealed = db
        .seal_webhook_secrets()
        .await
        .context("checking the sealed webhook secrets against TALLY_SECRET_KEY")?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed webhook secrets with the current key");
    }
    Ok(Opened {
        db,
        config,
        cluster,
    })
}

/// `TALLY_SECRET_KEY` (and the one it replaces); without it, the managed cluster's key file,
/// created with mode 0600 on first use so that only Tally's user can read it.
fn secret_keys(args: &DbArgs) -> anyhow::Result<SecretKeys> {
    let parse =
        |name: &str, text: &str| SecretKey::parse(text).map_err(|e| anyhow::anyhow!("{name}: {e}"));
    let previous = args
        .previous_secret_key
        .as_deref()
        .map(|k| parse("TALLY_SECRET_KEY_PREVIOUS", k))
        .transpose()?;
    let current = match (&args.secret_key, &args.database_url) {
        (Some(key), _) => Some(parse("TALLY_SECRET_KEY", key)?),
        (None, Some(_)) => None,
        (None, None) => {
            let path = args.data_dir.join(secrets::KEY_FILE);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&args.data_dir)
                        .with_context(|| format!("creating {}", args.data_dir.display()))?;
                    let key = SecretKey::generate();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .and_then(|mut f| f.write_all(key.as_bytes()))
                        .with_context(|| format!("writing {}", path.display()))?;
                    tracing::info!(path = %path.display(), "generated the key that seals webhook secrets");
                    key
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            Some(parse(&path.display().to_string(), &text)?)
        }
    };
    Ok(SecretKeys::new(current, previous))
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
