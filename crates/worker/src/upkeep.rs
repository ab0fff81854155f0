//! Periodic work every worker process does besides jobs: folding the realtime deltas into their
//! totals (about every second) and scheduling the nightly reconciliation runs (checked every few
//! minutes; each tenant's runs are scheduled once per local day). Several processes running these
//! at once is harmless: folding skips a tenant another process is folding, and the nightly
//! schedule is idempotent per day.

use std::time::Duration;
use tally_store::Database;
use tokio::sync::watch;

/// How often the realtime deltas are folded: readers add unfolded deltas, so this bounds how many
/// rows a read adds up, not how fresh it is.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// How often the nightly schedule is checked.
pub const NIGHTLY_INTERVAL: Duration = Duration::from_secs(300);

pub async fn fold_live(db: Database, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = db.fold_live_deltas().await {
            tracing::warn!(error = %e, "folding the realtime deltas failed; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

pub async fn nightly(db: Database, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = schedule_nightly(&db).await {
            tracing::warn!(error = %e, "scheduling the nightly reconciliations failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn schedule_nightly(db: &Database) -> anyhow::Result<()> {
    for tenant in db.list_tenants().await? {
        if tenant.status != "active" {
            continue;
        }
        let mut tx = db.tenant_tx(tenant.tenant_id).await?;
        let scheduled = tally_store::reconciliation::schedule_nightly(
            &mut tx,
            tenant.tenant_id,
            "nightly-reconciliation",
        )
        .await?;
        tx.commit().await?;
        if scheduled > 0 {
            tracing::info!(tenant_id = %tenant.tenant_id, scheduled, "nightly reconciliation scheduled");
        }
    }
    Ok(())
}
