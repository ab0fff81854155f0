//! Events and money are append-only: no grant for the runtime role, and a trigger for everyone.

use crate::fixtures::{as_role, owner, seed_tenant};
use sqlx::Executor;
use tally_store::testing::{TestDb, begin_for_tenant};
use uuid::Uuid;

const TABLES: [&str; 2] = ["attribution_events", "revenue_ledger"];

#[tokio::test]
async fn runtime_role_cannot_update_or_delete() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    seed_tenant(&mut owner(&t).await, a).await;
    let mut app = as_role(&t, "tally_app").await;
    for table in TABLES {
        for stmt in [
            format!("UPDATE {table} SET correlation_id = 'changed'"),
            format!("DELETE FROM {table}"),
        ] {
            let mut tx = begin_for_tenant(&mut app, a).await;
            let err = tx
                .execute(sqlx::AssertSqlSafe(stmt.clone()))
                .await
                .expect_err(&stmt);
            assert!(
                err.to_string().contains("permission denied"),
                "{stmt}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn guard_trigger_refuses_even_the_owner() {
    let t = TestDb::new().await;
    let a = Uuid::now_v7();
    let mut own = owner(&t).await;
    seed_tenant(&mut own, a).await;
    for table in TABLES {
        for stmt in [
            format!("UPDATE {table} SET correlation_id = 'changed'"),
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table} CASCADE"),
        ] {
            let mut tx = begin_for_tenant(&mut own, a).await;
            let err = tx
                .execute(sqlx::AssertSqlSafe(stmt.clone()))
                .await
                .expect_err(&stmt);
            let msg = err.to_string();
            assert!(
                msg.contains("append-only") && msg.contains("corrections are new rows"),
                "{stmt}: {msg}"
            );
        }
    }
}
