//! The attribution recompute job: one window of one tenant, all eight models, written in the
//! job's transaction (see `tally_store::recompute`). Deterministic end to end: the same events
//! give the same rows, however often and wherever the job runs.

use crate::queue::{BoxFuture, Handler};
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Connection;
use sqlx::PgConnection;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tally_attribution::{HalfLife, MarkovOrder, Model, ModelConfig, attribute, build_journeys};
use tally_store::TenantId;
use tally_store::attribution::{self, NewPath};
use tally_store::identity::{self, Fold, JourneyScope, Stitching};
use tally_store::jobs::ClaimedJob;
use tally_store::recompute::{
    self, AttributionSettings, NewSplit, RecomputeJob, RecomputePayload, WindowEvents, WindowResult,
};
use tally_store::reconciliation::{self, AllocationShare};
use tally_store::rollups::{self, Contribution};
use uuid::Uuid;

/// Test hook for the crash test: pause this long after writing, before committing, so a test can
/// SIGKILL the worker while its transaction is open.
pub const PAUSE_ENV: &str = "TALLY_TEST_RECOMPUTE_PAUSE_MS";

pub struct Recompute;

impl Handler for Recompute {
    fn run<'a>(
        &'a self,
        job: &'a ClaimedJob,
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(run(job, tx))
    }

    fn started<'a>(
        &'a self,
        job: &'a ClaimedJob,
        tx: &'a mut PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let recompute_id = payload(job)?.recompute_id;
            // In a savepoint: a fast pass that fails leaves the full run to do its work. Before
            // `mark_running`, whose row lock ingestion's scheduling waits for when it queues the
            // window's next job: held for the pass, it stalled ingestion (the fault suite's
            // load made no progress).
            {
                let started = Instant::now();
                let mut pass = tx.begin().await?;
                match fast_pass(&mut pass, job.tenant_id, recompute_id).await {
                    Ok(0) => {}
                    Ok(conversions) => {
                        pass.commit().await?;
                        tracing::info!(
                            conversions,
                            ms = started.elapsed().as_millis() as u64,
                            "fast pass: new conversions attributed under the journey-local models"
                        );
                    }
                    Err(error) => tracing::warn!(error = %format!("{error:#}"), "fast pass failed"),
                }
            }
            recompute::mark_running(tx, recompute_id).await?;
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
            recompute::mark_failed(tx, payload(job)?.recompute_id, error).await?;
            Ok(())
        })
    }
}

fn payload(job: &ClaimedJob) -> anyhow::Result<RecomputePayload> {
    serde_json::from_value(job.payload.clone()).context("reading the recompute job's payload")
}

async fn run(job: &ClaimedJob, tx: &mut PgConnection) -> anyhow::Result<()> {
    let window = recompute::get_recompute(tx, payload(job)?.recompute_id).await?;
    recompute::lock_tenant(tx, job.tenant_id, &window.model_version).await?;
    // Events (and links) whose transactions saw this job still pending must be in what we read.
    let links_horizon = recompute::ingest_barrier(tx, job.tenant_id).await?;
    let Params {
        settings,
        lookback,
        models,
        span,
        scope,
    } = Params::read(tx, &window).await?;
    let stitching = Stitching {
        recompute_id: window.id,
        horizon: links_horizon,
        max_ids: settings.identity_max_component_ids,
    };
    let mut phases = Phases::start();
    let (events, fold) =
        recompute::load_window(tx, job.tenant_id, span, lookback, scope, stitching).await?;
    schedule_merged(tx, job, &settings, &fold, span).await?;
    phases.lap("load");
    // The models are CPU-bound for up to seconds; keep them off the async threads.
    let computed = tokio::task::spawn_blocking(move || compute(events, &models, lookback))
        .await
        .context("the attribution task panicked")??;
    let splits = computed.splits();
    phases.lap("compute");
    let rewritten = recompute::replace_window(
        tx,
        job.tenant_id,
        WindowResult {
            recompute: &window,
            span,
            splits: &splits,
            conversions: computed.events.conversions.len(),
        },
    )
    .await?;
    attribution::replace_paths(
        tx,
        job.tenant_id,
        &window.model_version,
        span,
        &computed.paths(),
    )
    .await?;
    phases.lap("write");
    // The window's verified shares and rollups follow its new splits in this transaction, from
    // the splits in hand rather than read back.
    let shares = splits.iter().flat_map(AllocationShare::of_split).collect();
    let run =
        reconciliation::start_inline_run(tx, job.tenant_id, span, &job.correlation_id).await?;
    crate::reconcile::reconcile_window(tx, job.tenant_id, run, span, Some(shares)).await?;
    phases.lap("reconcile");
    tracing::info!(
        conversions = splits.len(),
        rewritten,
        phases = %phases,
        "recompute written"
    );
    if let Some(ms) = std::env::var(PAUSE_ENV).ok().and_then(|v| v.parse().ok()) {
        tracing::warn!(ms, "{PAUSE_ENV} set: pausing before commit");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Ok(())
}

/// What a run and the fast pass derive from the tenant's settings for a window.
struct Params {
    settings: AttributionSettings,
    lookback: TimeDelta,
    models: Vec<ModelConfig>,
    /// The window as worked on (`rollups::job_span`).
    span: (DateTime<Utc>, DateTime<Utc>),
    scope: JourneyScope,
}

impl Params {
    async fn read(tx: &mut PgConnection, window: &RecomputeJob) -> anyhow::Result<Self> {
        let settings = recompute::attribution_settings(tx).await?;
        Ok(Params {
            lookback: TimeDelta::days(settings.lookback_days.into()),
            models: model_configs(&settings)?,
            span: rollups::job_span(tx, (window.window_start, window.window_end)).await?,
            scope: JourneyScope::new(settings.identity_cross_session),
            settings,
        })
    }
}

/// New conversions in a window at most this many are attributed by the fast pass before the
/// full run; more (a first run, a backfill) wait for the full run, which is cheaper per
/// conversion than a lookup per shopper.
const FAST_PASS_CAP: usize = 1000;

/// Attributes the window's conversions that have no split yet (accepted since its last run)
/// under the journey-local models, from their own journeys, and adds them to the rollups, so the
/// figures follow a sale within a second or so whatever the size of its day; Markov and Shapley,
/// which depend on every path of the window, follow with the full run (the channels answer says
/// so: `computed_at` and `recompute_pending` per model). On a 1 M-event day the full run takes
/// 3–6 s and, after a sale, rewrites every conversion's split, since one new path moves every
/// Markov and Shapley split. Runs in the attempt's first transaction, under the tenant's recompute lock;
/// the full run then replaces these splits and rebuilds the rollups from scratch. Returns how
/// many conversions it attributed.
pub async fn fast_pass(
    tx: &mut PgConnection,
    tenant: TenantId,
    recompute_id: Uuid,
) -> anyhow::Result<usize> {
    let window = recompute::get_recompute(tx, recompute_id).await?;
    // A window's first run writes its every split in one transaction, so nothing of a run shows
    // before it commits (the worker-kill test); and its conversions are all new, work the full
    // run does more cheaply per conversion.
    if window.run_count == 0 {
        return Ok(0);
    }
    recompute::lock_tenant(tx, tenant, &window.model_version).await?;
    let Params {
        settings,
        lookback,
        mut models,
        span,
        scope,
    } = Params::read(tx, &window).await?;
    models.retain(|m| m.model().is_journey_local());
    let unsplit = recompute::load_unsplit(
        tx,
        tenant,
        &window.model_version,
        span,
        lookback,
        scope,
        FAST_PASS_CAP,
    )
    .await?;
    let Some(events) = unsplit else {
        return Ok(0);
    };
    let computed = tokio::task::spawn_blocking(move || compute(events, &models, lookback))
        .await
        .context("the attribution task panicked")??;
    let splits = computed.splits();
    recompute::insert_new_splits(tx, tenant, &window.model_version, &splits).await?;
    let shares: Vec<AllocationShare> = splits.iter().flat_map(AllocationShare::of_split).collect();
    let contributions: Vec<Contribution> = shares.iter().map(|s| s.contribution(0)).collect();
    rollups::add_revenue(
        tx,
        tenant,
        &window.model_version,
        &settings.time_zone,
        &contributions,
    )
    .await?;
    Ok(splits.len())
}

/// Milliseconds per phase of a run, for the log line that tells an operator where a slow
/// recompute spent its time.
struct Phases {
    lap: Instant,
    laps: Vec<(&'static str, u128)>,
}

impl Phases {
    fn start() -> Self {
        Phases {
            lap: Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        self.laps.push((phase, self.lap.elapsed().as_millis()));
        self.lap = Instant::now();
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (phase, ms)) in self.laps.iter().enumerate() {
            write!(f, "{}{phase} {ms} ms", if i > 0 { ", " } else { "" })?;
        }
        Ok(())
    }
}

/// Schedules the other days whose journeys the window's fold changed: each holds a conversion of
/// a merged shopper, and its stored allocations change when its own run comes.
async fn schedule_merged(
    tx: &mut PgConnection,
    job: &ClaimedJob,
    settings: &AttributionSettings,
    fold: &Fold,
    running: (DateTime<Utc>, DateTime<Utc>),
) -> anyhow::Result<()> {
    if fold.refused > 0 {
        tracing::warn!(
            tenant = %job.tenant_id,
            refused = fold.refused,
            "identity links refused by the component cap"
        );
    }
    if settings.identity_cross_session {
        identity::schedule_merged(
            tx,
            job.tenant_id,
            &fold.merged,
            &settings.time_zone,
            running,
            &job.correlation_id,
        )
        .await?;
    }
    Ok(())
}

/// The eight models with the tenant's parameters.
pub fn model_configs(settings: &AttributionSettings) -> anyhow::Result<Vec<ModelConfig>> {
    let half_life = HalfLife::from_hours(settings.time_decay_half_life_hours)?;
    let order = MarkovOrder::new(u8::try_from(settings.markov_order)?)?;
    Ok(Model::ALL
        .into_iter()
        .map(|model| match model {
            Model::TimeDecay => ModelConfig::TimeDecay { half_life },
            Model::Markov => ModelConfig::Markov { order },
            other => other.into(),
        })
        .collect())
}

/// Model output detached from the `JourneySet` it borrowed from, so it can leave the blocking
/// task: channels and conversions by index.
struct Computed {
    events: WindowEvents,
    channels: Vec<String>,
    rows: Vec<Row>,
    /// Each conversion's path: its index and its channels, repeats in a row collapsed.
    paths: Vec<(u32, Vec<u16>)>,
}

struct Row {
    model: Model,
    conversion: u32,
    channel: u16,
    cents: i64,
    weight: f64,
}

fn compute(
    events: WindowEvents,
    models: &[ModelConfig],
    lookback: TimeDelta,
) -> anyhow::Result<Computed> {
    let journeys = build_journeys(&events.touches, &events.conversions, lookback)?;
    let channels = journeys.channels().to_vec();
    let conversion_index: HashMap<Uuid, u32> = events
        .conversions
        .iter()
        .enumerate()
        .map(|(i, c)| (c.event_id, i as u32))
        .collect();
    let channel_index = |code: &str| {
        channels
            .binary_search_by(|c| c.as_str().cmp(code))
            .expect("a journey's channel is one of the set's") as u16
    };
    let rows = attribute(models, &journeys)
        .into_iter()
        .map(|r| Row {
            model: r.model,
            conversion: conversion_index[&r.conversion_id],
            channel: channel_index(r.channel),
            cents: r.allocated_cents,
            weight: r.weight,
        })
        .collect();
    let paths = journeys
        .conversions()
        .map(|j| {
            let mut path: Vec<u16> = Vec::new();
            for channel in j.channel_codes().map(channel_index) {
                if path.last() != Some(&channel) {
                    path.push(channel);
                }
            }
            (conversion_index[&j.conversion_id], path)
        })
        .collect();
    Ok(Computed {
        events,
        channels,
        rows,
        paths,
    })
}

impl Computed {
    fn paths(&self) -> Vec<NewPath<'_>> {
        self.paths
            .iter()
            .map(|(conversion, path)| {
                let c = &self.events.conversions[*conversion as usize];
                NewPath {
                    conversion_id: c.event_id,
                    occurred_at: c.occurred_at,
                    currency: &self.events.currencies[*conversion as usize],
                    revenue_cents: c.revenue_cents,
                    path: path
                        .iter()
                        .map(|&ch| self.channels[ch as usize].as_str())
                        .collect(),
                }
            })
            .collect()
    }

    /// One split per conversion, every model's cells in it: the models in code order, the
    /// channels any of them credited in code order (channel indexes follow the sorted channel
    /// list), cells the model did not credit left at 0.
    fn splits(&self) -> Vec<NewSplit<'_>> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_unstable_by_key(|r| (r.conversion, r.model.code(), r.channel));
        rows.chunk_by(|a, b| a.conversion == b.conversion)
            .map(|rows| {
                let mut models: Vec<&'static str> = rows.iter().map(|r| r.model.code()).collect();
                models.dedup();
                let mut channels: Vec<u16> = rows.iter().map(|r| r.channel).collect();
                channels.sort_unstable();
                channels.dedup();
                let width = channels.len();
                let mut cents = vec![0; models.len() * width];
                let mut weights = vec![0.0; models.len() * width];
                let mut model = 0;
                for r in rows {
                    while models[model] != r.model.code() {
                        model += 1;
                    }
                    let channel = channels.partition_point(|&c| c < r.channel);
                    cents[model * width + channel] = r.cents;
                    weights[model * width + channel] = NewSplit::stored_weight(r.weight);
                }
                let conversion = &self.events.conversions[rows[0].conversion as usize];
                NewSplit {
                    conversion_id: conversion.event_id,
                    models,
                    channels: channels
                        .iter()
                        .map(|&c| self.channels[c as usize].as_str())
                        .collect(),
                    cents,
                    weights,
                    currency: &self.events.currencies[rows[0].conversion as usize],
                    occurred_at: conversion.occurred_at,
                }
            })
            .collect()
    }
}
