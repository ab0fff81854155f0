//! The managed PostgreSQL: first start, restart with data kept, clean stop, missing binaries.

use sqlx::{Connection, PgConnection};
use tally_store::cluster::{self, ClusterError, ClusterOptions, Durability, LocalCluster};

fn opts(dir: &std::path::Path) -> ClusterOptions {
    ClusterOptions {
        data_dir: dir.to_path_buf(),
        port: None,
        durability: Durability::Full,
        bindir: None,
    }
}

#[tokio::test]
async fn starts_restarts_with_data_kept_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tally-data");
    let first = LocalCluster::start(&opts(&data)).unwrap();
    let url = first.url(cluster::SUPERUSER, "postgres");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    first.stop();
    // Stopped cleanly: the server removes its pid file on a clean shutdown.
    assert!(!data.join("pg/postmaster.pid").exists());
    drop(first);

    let second = LocalCluster::start(&opts(&data)).unwrap();
    let mut conn = PgConnection::connect(&second.url(cluster::SUPERUSER, "postgres"))
        .await
        .unwrap();
    let v: i32 = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, 42);
    conn.close().await.unwrap();
    second.stop();
    let log = std::fs::read_to_string(data.join("postgres.log")).unwrap();
    assert!(log.contains("database system is shut down"), "{log}");
}

#[test]
fn missing_binaries_give_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(&dir.path().join("d"));
    o.bindir = Some(dir.path().to_path_buf());
    let err = LocalCluster::start(&o).err().expect("no binaries there");
    assert!(matches!(err, ClusterError::BinariesNotFound));
    let msg = err.to_string();
    assert!(
        msg.contains("apt-get install postgresql") && msg.contains("DATABASE_URL"),
        "{msg}"
    );
}
