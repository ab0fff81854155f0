//! Connection pools per role, migrations, and the one way to touch tenant data.
//!
//! Tally connects as three roles (see `migrations/0001_roles_and_helpers.sql`): the owner runs
//! migrations only; `tally_app` does all tenant work under row-level security; `tally_operator`
//! sees cross-tenant metadata (tenant list, job queue). The role URLs are derived from the
//! owner's `DATABASE_URL` by swapping the user, so one URL configures everything.

use crate::changes::Changes;
use crate::error::{Fault, StoreError};
use crate::ids::TenantId;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, Postgres, Transaction};
use std::str::FromStr;
use std::time::{Duration, Instant};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub const APP_ROLE: &str = "tally_app";
pub const OPERATOR_ROLE: &str = "tally_operator";
pub const READONLY_ROLE: &str = "tally_readonly";

/// A tenant-scoped transaction: `app.current_tenant_id` is already set, transaction-locally.
/// Used like sqlx's transaction (it derefs to the connection); its [`TenantTx::commit`] also
/// moves the tenant's version in [`Changes`] when it wrote, which read caches key on.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
    changes: Changes,
}

impl TenantTx {
    /// Commits, and moves the tenant's version in [`Changes`] when the transaction wrote (it was
    /// given a transaction id), so that reads, which commit too, leave read caches alone. The
    /// question costs one round trip per transaction.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let wrote: bool = sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
            .fetch_one(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        if wrote {
            self.changes.changed(self.tenant);
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for TenantTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

#[derive(Debug, Clone)]
pub struct DbConfig {
    /// The owner's URL (`DATABASE_URL`); migrations run with it.
    pub owner_url: String,
    /// Password for the runtime roles when the server requires one (`TALLY_DB_ROLE_PASSWORD`);
    /// set on the roles at migration time.
    pub role_password: Option<String>,
    pub max_connections: u32,
    /// The keys webhook signing secrets are sealed with (none: stored as given).
    pub secrets: crate::secrets::SecretKeys,
}

#[derive(Clone)]
pub struct Database {
    pub(crate) app: PgPool,
    operator: PgPool,
    pub(crate) secrets: crate::secrets::SecretKeys,
    changes: Changes,
}

impl Database {
    /// Runs the embedded migrations as the owner and (re)sets the runtime roles' password.
    pub async fn migrate(cfg: &DbConfig) -> Result<(), StoreError> {
        let mut conn = PgConnection::connect(&cfg.owner_url).await?;
        MIGRATOR.run(&mut conn).await?;
        if let Some(pw) = &cfg.role_password {
            for role in [APP_ROLE, OPERATOR_ROLE, READONLY_ROLE] {
                // ALTER ROLE takes no bind parameters; the literal is quoted by PostgreSQL's
                // own quote_literal via format().
                let sql: String = sqlx::query_scalar(
                    "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                )
                .bind(role)
                .bind(pw)
                .fetch_one(&mut conn)
                .await?;
                conn.execute(sqlx::AssertSqlSafe(sql)).await?;
            }
        }
        conn.close().await?;
        Ok(())
    }

    pub async fn connect(cfg: &DbConfig) -> Result<Self, StoreError> {
        let app = pool_as(cfg, APP_ROLE, cfg.max_connections).await?;
        let operator = pool_as(cfg, OPERATOR_ROLE, 4).await?;
        Ok(Self {
            app,
            operator,
            secrets: cfg.secrets.clone(),
            changes: Changes::new(),
        })
    }

    /// The pool of the runtime role; prefer [`Database::tenant_tx`] for tenant data.
    pub fn app_pool(&self) -> &PgPool {
        &self.app
    }

    /// Cross-tenant metadata only (tenant list, job queue).
    pub fn operator_pool(&self) -> &PgPool {
        &self.operator
    }

    /// Opens a transaction acting for `tenant`. Setting the tenant is the first statement, and
    /// it is transaction-local, so a pooled connection never carries one tenant's identity
    /// into another's request.
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<TenantTx, StoreError> {
        let mut tx = self.app.begin().await?;
        set_tenant(&mut tx, tenant).await?;
        Ok(TenantTx {
            tx,
            tenant,
            changes: self.changes.clone(),
        })
    }

    /// What this process's commits tell about each tenant's data (see [`Changes`]).
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Checks that the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.app).await?;
        Ok(())
    }
}

pub async fn set_tenant(conn: &mut PgConnection, tenant: TenantId) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('app.current_tenant_id', $1, true)")
        .bind(tenant.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Connect options for `role` on the owner's server and database.
pub fn options_for_role(cfg: &DbConfig, role: &str) -> Result<PgConnectOptions, StoreError> {
    let mut opts = PgConnectOptions::from_str(&cfg.owner_url)?
        .username(role)
        .application_name("tally")
        .log_statements(tracing::log::LevelFilter::Trace);
    opts = match &cfg.role_password {
        Some(pw) => opts.password(pw),
        None => opts.password(""),
    };
    Ok(opts)
}

/// How long a request waits for a connection. While PostgreSQL is down every acquire runs into
/// this (sqlx keeps retrying a refused connect until then), so it bounds how long a request or
/// `/readyz` takes to answer 503; healthy waits for a pooled connection are milliseconds.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long start-up waits for the server to accept connections (it may still be starting).
const STARTUP_WAIT: Duration = Duration::from_secs(10);

async fn pool_as(cfg: &DbConfig, role: &str, max: u32) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options_for_role(cfg, role)?);
    let started = Instant::now();
    loop {
        match pool.acquire().await {
            Ok(_) => return Ok(pool),
            Err(err) => {
                let err = StoreError::from(err);
                if err.fault() != Fault::Unavailable || started.elapsed() > STARTUP_WAIT {
                    return Err(err);
                }
            }
        }
    }
}

/// Creates the owner role and database in a fresh managed cluster, as its superuser.
pub async fn bootstrap_managed(superuser_url: &str) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect(superuser_url).await?;
    let owner = crate::cluster::OWNER;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(owner)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {owner} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS"
        )))
        .await?;
    }
    let db = crate::cluster::DATABASE;
    let db_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&mut conn)
            .await?;
    if !db_exists {
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {db} OWNER {owner}"
        )))
        .await?;
    }
    conn.close().await?;
    Ok(())
}
pub use sqlx::Error as SqlxError;

/// The data directory of the server at `url` (`SHOW data_directory`, which needs a superuser
/// or `pg_read_all_settings`).
pub async fn data_directory(url: &str) -> Result<std::path::PathBuf, StoreError> {
    let mut conn = PgConnection::connect(url).await?;
    let dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(dir.into())
}

/// Whether a server answers at `url` (a short connect, nothing else).
pub async fn ping_url(url: &str) -> bool {
    match PgConnection::connect(url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(_) => false,
    }
}
