//! Throwaway PostgreSQL for tests: one cluster per test binary (about a second to start), a
//! migrated template database, and a fresh database per test cloned from it (`CREATE DATABASE
//! ... TEMPLATE`, ~100 ms): real PostgreSQL, real roles and RLS, full isolation between tests.

use crate::TenantId;
use crate::cluster::{self, ClusterOptions, Durability, LocalCluster};
use crate::db::{Database, DbConfig, bootstrap_managed, set_tenant};
use crate::secrets::{SecretKey, SecretKeys};
use sqlx::{Connection, Executor, PgConnection, Postgres, Transaction};
use std::sync::OnceLock;
use uuid::Uuid;

struct Shared {
    cluster: LocalCluster,
    dir: tempfile::TempDir,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
/// `CREATE DATABASE ... TEMPLATE` fails when another copy of the template runs at the same time.
static CLONE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

extern "C" fn stop_shared_cluster() {
    if let Some(shared) = SHARED.get() {
        shared.cluster.stop();
        let _ = std::fs::remove_dir_all(shared.dir.path());
    }
}

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("tally-test-pg-")
            .tempdir()
            .expect("creating a temp dir for the test cluster");
        let cluster = LocalCluster::start(&ClusterOptions {
            data_dir: dir.path().to_path_buf(),
            port: None,
            durability: Durability::Throwaway,
            bindir: std::env::var_os("TALLY_PG_BINDIR").map(Into::into),
        })
        .expect("starting the throwaway PostgreSQL cluster");
        let superuser_url = cluster.url(cluster::SUPERUSER, "postgres");
        let owner_url = cluster.url(cluster::OWNER, cluster::DATABASE);
        // The template is prepared on a runtime of its own: each test has its own runtime, and a
        // connection must not outlive the runtime that opened it.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    bootstrap_managed(&superuser_url).await?;
                    Database::migrate(&DbConfig {
                        owner_url,
                        role_password: None,
                        max_connections: 1,
                        secrets: Default::default(),
                    })
                    .await
                })
        })
        .join()
        .expect("template thread")
        .expect("migrating the template database");
        // SAFETY: registering a plain extern "C" fn with atexit has no preconditions.
        unsafe { libc::atexit(stop_shared_cluster) };
        Shared { cluster, dir }
    })
}

/// The shared throwaway cluster (for tests that need the superuser or their own databases).
pub fn cluster() -> &'static LocalCluster {
    &shared().cluster
}

/// A fresh, migrated database of the shared cluster.
pub struct TestDb {
    pub db: Database,
    pub cfg: DbConfig,
    pub name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let cluster = cluster();
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        {
            let _guard = CLONE_LOCK.lock().await;
            let mut conn = PgConnection::connect(&cluster.url(cluster::SUPERUSER, "postgres"))
                .await
                .expect("connecting as superuser");
            conn.execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} TEMPLATE {} OWNER {}",
                cluster::DATABASE,
                cluster::OWNER
            )))
            .await
            .expect("cloning the template database");
            let _ = conn.close().await;
        }
        let cfg = DbConfig {
            owner_url: cluster.url(cluster::OWNER, &name),
            role_password: None,
            max_connections: 16,
            // Every test database seals webhook secrets, so every delivery test verifies
            // through sealed secrets.
            secrets: SecretKeys::new(
                Some(SecretKey::parse(&SecretKey::generate()).unwrap()),
                None,
            ),
        };
        let db = Database::connect(&cfg)
            .await
            .expect("connecting to the test database");
        Self { db, cfg, name }
    }

    /// URL of this database for `role` (e.g. the owner, or `tally_readonly`).
    pub fn url_as(&self, role: &str) -> String {
        cluster().url(role, &self.name)
    }
}

/// Begins a transaction on `conn` that acts for `tenant`: `app.current_tenant_id` set
/// transaction-locally by [`set_tenant`], as [`Database::tenant_tx`] does on the runtime pool.
/// For tests that act for a tenant on a connection of their own (the owner's, or a role's), so
/// they all set the tenant the way the application does.
pub async fn begin_for_tenant(conn: &mut PgConnection, tenant: Uuid) -> Transaction<'_, Postgres> {
    let mut tx = conn.begin().await.expect("beginning a transaction");
    set_tenant(&mut tx, TenantId(tenant))
        .await
        .expect("setting app.current_tenant_id");
    tx
}
