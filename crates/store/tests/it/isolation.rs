//! Row-level security: a tenant sees, counts and writes only its own rows, in every tenant table.

use crate::fixtures::{as_role, owner, seed_tenant, tenant_tables};
use sqlx::Row;
use tally_store::testing::{TestDb, begin_for_tenant};
use uuid::Uuid;

#[tokio::test]
async fn every_tenant_table_forces_rls_and_puts_tenant_id_first_in_every_key() {
    let t = TestDb::new().await;
    let mut conn = owner(&t).await;
    let tables = tenant_tables(&mut conn).await;
    assert!(tables.len() >= 16, "{tables:?}");
    for table in &tables {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(
            enabled && forced,
            "{table}: RLS enabled={enabled} forced={forced}"
        );
        // Primary and unique keys start with tenant_id (ready for distribution by tenant).
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.conname::text, a.attname::text FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u')",
        )
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!keys.is_empty(), "{table} has no key");
        for (name, first) in keys {
            assert_eq!(
                first, "tenant_id",
                "{table}.{name} must start with tenant_id"
            );
        }
    }
}

#[tokio::test]
async fn runtime_role_sees_only_its_tenant_in_every_table() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    seed_tenant(&mut own, b).await;
    let tables = tenant_tables(&mut own).await;

    let mut app = as_role(&t, "tally_app").await;
    for table in &tables {
        let count_sql = format!("SELECT count(*) FROM {table}");
        let all_sql = format!("SELECT tenant_id FROM {table}");
        // Without the setting: nothing, and no error.
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone()))
            .fetch_one(&mut app)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} without a tenant");

        let mut tx = begin_for_tenant(&mut app, a).await;
        // SELECT * with no WHERE: only A's rows.
        let rows = sqlx::query(sqlx::AssertSqlSafe(all_sql))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{table} as tenant A");
        assert_eq!(
            rows[0].get::<Uuid, _>(0),
            a,
            "{table} leaked another tenant"
        );
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn runtime_role_cannot_write_rows_of_another_tenant() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    seed_tenant(&mut own, b).await;
    let tables = tenant_tables(&mut own).await;
    let mut app = as_role(&t, "tally_app").await;
    for table in &tables {
        // Take one of B's rows as the owner acting for B ...
        let mut tx = begin_for_tenant(&mut own, b).await;
        let row: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(x) FROM {table} x LIMIT 1"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        // ... and try to insert it while acting for A.
        let mut tx = begin_for_tenant(&mut app, a).await;
        let err = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} SELECT * FROM jsonb_populate_record(NULL::{table}, $1)"
        )))
        .bind(&row)
        .execute(&mut *tx)
        .await
        .expect_err(&format!("{table}: inserting B's row as A must fail"));
        let msg = err.to_string();
        assert!(
            msg.contains("row-level security") || msg.contains("permission denied"),
            "{table}: {msg}"
        );
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn readonly_role_is_also_filtered_and_cannot_write() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    let mut ro = as_role(&t, "tally_readonly").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM attribution_events")
        .fetch_one(&mut ro)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let err = sqlx::query("INSERT INTO tenants (tenant_id, name) VALUES ($1, 'x')")
        .bind(Uuid::now_v7())
        .execute(&mut ro)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn operator_counts_dead_letters_but_reads_no_tenant_data() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    seed_tenant(&mut own, b).await;
    let depth = t.db.dead_letter_depth().await.unwrap();
    assert_eq!(depth.len(), 2);
    let mut op = as_role(&t, "tally_operator").await;
    for sql in [
        "SELECT payload FROM dead_events",
        "SELECT * FROM attribution_events",
        "SELECT * FROM revenue_ledger",
        "SELECT secret_sha256 FROM api_keys",
    ] {
        let err = sqlx::query(sql).fetch_all(&mut op).await.expect_err(sql);
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
}

#[tokio::test]
async fn every_view_runs_as_its_invoker_and_shows_only_its_tenant() {
    let t = TestDb::new().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    seed_tenant(&mut own, b).await;
    // A view runs as its owner unless it says otherwise, and the owner's reads would skip the
    // tenant's row-level security.
    let views: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, coalesce('security_invoker=true' = ANY (c.reloptions), false)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'v' AND n.nspname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut own)
    .await
    .unwrap();
    let names: Vec<&str> = views.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"revenue_ledger_resolved"), "{names:?}");
    let mut app = as_role(&t, "tally_app").await;
    for (view, invoker) in &views {
        assert!(invoker, "{view} must be security_invoker");
        let mut tx = begin_for_tenant(&mut app, a).await;
        let tenants: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT tenant_id FROM {view}"
        )))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert!(
            tenants.iter().all(|t| *t == a),
            "{view} leaked another tenant"
        );
        tx.commit().await.unwrap();
    }
    // The seeded posting has no order id and no payment: it resolves to nothing, for A only.
    let mut tx = begin_for_tenant(&mut app, a).await;
    let orphans: i64 = sqlx::query_scalar("SELECT count(*) FROM revenue_ledger_orphans")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(orphans, 1);
}
