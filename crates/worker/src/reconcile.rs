//! The reconciliation job: one window of one tenant, tracked against paid, order by order; the
//! verified share of every allocation; and the window's rollups, all in the job's transaction.
//!
//! A recompute calls [`reconcile_window`] on the window it has just written (so the rollups never
//! show new allocations with stale verified shares); postings, the nightly schedule and requests
//! run it as a job of its own ([`Reconcile`]). Both hold the tenant's recompute lock, so the two
//! never interleave their writes.

use crate::queue::{BoxFuture, Handler};
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use tally_attribution::MODEL_VERSION;
use tally_attribution::rounding::{largest_remainder, resplit};
use tally_core::reconcile::{Item, Status, classify, summarize};
use tally_store::TenantId;
use tally_store::jobs::ClaimedJob;
use tally_store::reconciliation::{self as runs, AllocationShare};
use tally_store::rollups::Contribution;
use tally_store::{recompute, rollups};
use uuid::Uuid;

pub struct Reconcile;

#[derive(Deserialize)]
struct Payload {
    run_id: Uuid,
}

fn payload(job: &ClaimedJob) -> anyhow::Result<Payload> {
    serde_json::from_value(job.payload.clone()).context("reading the reconciliation job's payload")
}

impl Handler for Reconcile {
    fn run<'a>(
        &'a self,
        job: &'a ClaimedJob,
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let run = runs::get_run(tx, payload(job)?.run_id).await?;
            recompute::lock_tenant(tx, job.tenant_id, MODEL_VERSION).await?;
            let span = rollups::job_span(tx, (run.window_start, run.window_end)).await?;
            reconcile_window(tx, job.tenant_id, run.id, span, None).await
        })
    }

    fn started<'a>(
        &'a self,
        job: &'a ClaimedJob,
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            runs::mark_running(tx, payload(job)?.run_id).await?;
            Ok(())
        })
    }

    fn gave_up<'a>(
        &'a self,
        job: &'a ClaimedJob,
        error: &'a str,
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            runs::mark_failed(tx, payload(job)?.run_id, error).await?;
            Ok(())
        })
    }
}

/// Reconciles `window` as run `run_id`, spreads each order's verified net over its conversion's
/// allocations and rebuilds the window's rollups from them. `allocations` are the window's
/// allocations when the caller has them in hand (a recompute that just wrote them), else they
/// are read. The caller holds the tenant's recompute lock.
pub async fn reconcile_window(
    tx: &mut PgConnection,
    tenant: TenantId,
    run_id: Uuid,
    window: (DateTime<Utc>, DateTime<Utc>),
    allocations: Option<Vec<AllocationShare>>,
) -> anyhow::Result<()> {
    let settings = runs::settings(tx).await?;
    let grace = TimeDelta::hours(settings.reconciliation_grace_hours.into());
    let loaded = runs::load_orders(tx, tenant, window.0, window.1).await?;
    let now = Utc::now();
    let items: Vec<Item> = loaded
        .orders
        .iter()
        .map(|o| classify(o, now, grace))
        .collect();
    let summary = summarize(&items);

    let mut shares = match allocations {
        Some(shares) => shares,
        None => runs::allocation_shares(tx, tenant, MODEL_VERSION, window).await?,
    };
    // The rounding's tie order, and the order `verified_shares` groups by.
    shares.sort_unstable_by(|a, b| {
        (a.conversion_id, &a.model, &a.channel_code).cmp(&(
            b.conversion_id,
            &b.model,
            &b.channel_code,
        ))
    });
    let verified = verified_shares(&items, &shares)?;
    let contributions: Vec<Contribution> = shares
        .iter()
        .zip(verified)
        .map(|(s, verified_cents)| s.contribution(verified_cents))
        .collect();
    rollups::rebuild_revenue(
        tx,
        tenant,
        MODEL_VERSION,
        window,
        &settings.time_zone,
        &contributions,
    )
    .await?;
    rollups::rebuild_unattributed(tx, tenant, window, &settings.time_zone, &items).await?;
    runs::finish_run(
        tx,
        tenant,
        run_id,
        window,
        &items,
        &summary,
        loaded.orphaned_postings,
    )
    .await?;
    Ok(())
}

/// Whether an order's net is spread over its conversion's channels: the ledger has money in the
/// tracked currency (a currency mismatch's money is unattributed, never converted).
fn carries_verified(item: &Item) -> bool {
    item.conversion_id.is_some()
        && item.status != Status::CurrencyMismatch
        && item.verified_currency == item.tracked_currency
        && item.verified_cents != 0
}

/// Each allocation's share of its order's verified net, parallel to `shares` (sorted by
/// conversion, model and channel): the net split in the proportions of the conversion's
/// allocated cents under each model (largest remainder, so a model's shares add up to the net
/// exactly), or of the model's weights when the conversion's revenue was zero; 0 where the order
/// carries no verified money in its tracked currency.
fn verified_shares(items: &[Item], shares: &[AllocationShare]) -> anyhow::Result<Vec<i64>> {
    let net: std::collections::HashMap<Uuid, i64> = items
        .iter()
        .filter(|i| carries_verified(i))
        .filter_map(|i| Some((i.conversion_id?, i.verified_cents)))
        .collect();
    let mut out = Vec::with_capacity(shares.len());
    // Each run of one (conversion, model) is one split.
    for group in shares.chunk_by(|a, b| a.conversion_id == b.conversion_id && a.model == b.model) {
        let Some(&total) = net.get(&group[0].conversion_id) else {
            out.extend(std::iter::repeat_n(0, group.len()));
            continue;
        };
        let cents: Vec<i64> = group.iter().map(|s| s.allocated_cents).collect();
        let parts = match resplit(total, &cents) {
            Some(parts) => parts,
            None => {
                let weights: Vec<f64> = group.iter().map(|s| s.weight).collect();
                largest_remainder(total, &weights).context("splitting a verified net")?
            }
        };
        out.extend(parts);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(conv: u128, model: &str, channel: &str, cents: i64, weight: f64) -> AllocationShare {
        AllocationShare {
            conversion_id: Uuid::from_u128(conv),
            model: model.into(),
            channel_code: channel.into(),
            allocated_cents: cents,
            weight,
            currency: "EUR".into(),
            occurred_at: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        }
    }

    fn item(conv: u128, verified: i64) -> Item {
        Item {
            order_id: format!("o{conv}"),
            status: Status::PartiallyRefunded,
            conversion_id: Some(Uuid::from_u128(conv)),
            tracked_at: None,
            tracked_cents: Some(5999),
            tracked_currency: Some("EUR".into()),
            duplicate_conversions: 0,
            verified_cents: verified,
            verified_currency: Some("EUR".into()),
            paid_cents: 5999,
            reversed_cents: 5999 - verified,
            postings: 2,
            difference_cents: None,
            first_posting_at: None,
        }
    }

    #[test]
    fn each_model_spreads_the_net_like_its_claimed_split() {
        let shares = [
            share(1, "first_touch", "email", 5999, 1.0),
            share(1, "linear", "email", 3000, 0.5),
            share(1, "linear", "paid_search_google", 2999, 0.5),
            share(2, "linear", "direct", 0, 1.0),
            share(3, "linear", "direct", 700, 1.0),
        ];
        // Order 3 is unpaid: its allocation keeps 0 verified.
        let mut unpaid = item(3, 0);
        unpaid.status = Status::AwaitingPayment;
        let items = [item(1, 4000), item(2, 1234), unpaid];
        assert_eq!(
            verified_shares(&items, &shares).unwrap(),
            [
                4000, // first_touch, email
                2000, // linear, email
                2000, // linear, paid_search_google
                // Zero tracked revenue: the model's weights decide.
                1234, 0,
            ]
        );
    }

    #[test]
    fn only_money_in_the_tracked_currency_is_spread() {
        let mut mismatch = item(3, 6400);
        mismatch.status = Status::CurrencyMismatch;
        mismatch.verified_currency = Some("USD".into());
        assert!(!carries_verified(&mismatch));
        assert!(carries_verified(&item(1, 4000)));
        assert!(!carries_verified(&item(1, 0)));
    }
}
