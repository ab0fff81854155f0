//! Validating submitted events and writing a batch of them in one transaction.

use crate::error::{ApiError, FieldError};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tally_core::event::{self, ValidEvent, ValidationContext};
use tally_core::pii;
use tally_store::dead_events::{NewDeadEvent, insert_dead_events};
use tally_store::events::{NewEvent, WriteOutcome, ingest_events};
use tally_store::{Database, Fault, StoreError, TenantId};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tenant::TenantIngest;

/// A submitted event after validation: ready to write, or ready to dead-letter.
pub enum Checked {
    Valid(Box<ValidEvent>),
    Invalid(Box<NewDeadEvent>, Vec<FieldError>),
}

/// Validates one submitted event against the tenant's rules of today.
pub fn check(raw: &Value, tenant: &TenantIngest, correlation_id: &str) -> Checked {
    let ctx = ValidationContext {
        now: Utc::now(),
        default_currency: tenant.currency,
        resolver: &tenant.resolver,
    };
    match event::validate(raw, &ctx) {
        Ok(valid) => Checked::Valid(Box::new(valid)),
        Err(errors) => {
            let code = event::rejection_code(&errors);
            let errors: Vec<FieldError> = errors.into_iter().map(Into::into).collect();
            let mut payload = raw.clone();
            pii::redact(&mut payload);
            let event_id = payload
                .get("event_id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty() && id.chars().count() <= event::MAX_ID_CHARS)
                .map(str::to_string);
            let dead = NewDeadEvent {
                source: "api",
                error_code: code.to_string(),
                errors: serde_json::to_value(&errors).unwrap_or_default(),
                payload,
                event_id,
                correlation_id: correlation_id.to_string(),
            };
            Checked::Invalid(Box::new(dead), errors)
        }
    }
}

/// The result for one submitted event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EventResult {
    /// Stored now.
    Accepted { id: Uuid, event_id: String },
    /// Stored before with the same payload; nothing written.
    Duplicate { id: Uuid, event_id: String },
    /// `event_id` is taken by a different payload; nothing written.
    Conflict { id: Uuid, event_id: String },
    /// Invalid: kept in the dead-letter queue (redacted) for a later replay.
    Rejected {
        dead_event_id: Uuid,
        error_code: String,
        errors: Vec<FieldError>,
    },
    /// A Segment `identify` call: its anonymous id and user id are linked (`known`: the link
    /// existed already), like `POST /v1/identify`.
    Linked {
        anonymous_id: String,
        user_id: String,
        known: bool,
    },
    /// Valid as far as the checks go, but the database refused to store it (`error_code` says
    /// why, e.g. `unstorable_value`, `constraint_violation`); nothing was written for it, and
    /// sending it unchanged fails the same way. The batch's other events are unaffected.
    Refused {
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        error_code: &'static str,
        detail: String,
    },
}

impl EventResult {
    pub fn outcome(&self) -> &'static str {
        match self {
            EventResult::Accepted { .. } => "accepted",
            EventResult::Duplicate { .. } => "duplicate",
            EventResult::Conflict { .. } => "conflict",
            EventResult::Rejected { .. } => "rejected",
            EventResult::Refused { .. } => "refused",
            EventResult::Linked { .. } => "linked",
        }
    }
}

/// Writes a batch: the valid events, the dead letters and the recompute schedule in one
/// transaction, so a failure leaves nothing behind and a retry cannot duplicate anything. When
/// the database refuses something in it, [`commit`] isolates that item and the others are
/// written without it; the refused item's result says why. A fault that is not about the data
/// (the database is down) fails the whole request, which the client may retry as it is: what
/// was written before the fault is then answered `duplicate`.
pub async fn write(
    db: &Database,
    tenant: TenantId,
    checked: Vec<Checked>,
    correlation_id: &str,
) -> Result<Vec<EventResult>, ApiError> {
    let mut events = Vec::new();
    let mut dead = Vec::new();
    for c in &checked {
        match c {
            Checked::Valid(v) => events.push(NewEvent {
                event: (**v).clone(),
                correlation_id: correlation_id.to_string(),
                replayed_from: None,
            }),
            Checked::Invalid(d, _) => dead.push((**d).clone()),
        }
    }
    let committed = commit(db, tenant, &events, &dead, correlation_id).await;
    let results = merge(checked, committed)?;
    for r in &results {
        metrics::counter!("tally_events_total", "outcome" => r.outcome()).increment(1);
    }
    Ok(results)
}

/// One item's answer from [`commit`]; the error may be shared by every item of a failed
/// transaction.
pub type ItemResult<T> = Result<T, Arc<StoreError>>;

/// What [`commit`] did with each event and each dead letter, in the order given.
pub struct Committed {
    pub events: Vec<ItemResult<WriteOutcome>>,
    pub dead: Vec<ItemResult<Uuid>>,
}

/// How often a transaction that lost a race (deadlock, serialization failure) is run again
/// before its callers are told to retry.
const CONTENTION_RETRIES: u64 = 5;

/// The one write every ingestion path commits: the events, the dead letters and the recompute
/// schedule of what was accepted, all or nothing. Batches and group-committed single events
/// share it. Without dead letters it is a single statement in its own implicit transaction (one
/// round trip); with them, one explicit transaction.
///
/// One item must never fail the others (they may be other clients' requests): when the
/// database refuses the transaction for something in its data (a constraint, a trigger, a value
/// it cannot store), the items are written again in halves until the refused ones stand alone,
/// so `k` bad items among `n` cost about `2k·log2(n)` extra transactions and every other item
/// is written. Lost races are retried here ([`CONTENTION_RETRIES`]); any other fault fails the
/// items of the transaction it hit, and only those.
pub async fn commit(
    db: &Database,
    tenant: TenantId,
    events: &[NewEvent],
    dead: &[NewDeadEvent],
    correlation_id: &str,
) -> Committed {
    let n = events.len();
    let mut event_results: Vec<Option<ItemResult<WriteOutcome>>> = vec![None; n];
    let mut dead_results: Vec<Option<ItemResult<Uuid>>> = vec![None; dead.len()];
    // Items 0..n are the events, n.. the dead letters; each range is one transaction to try.
    let mut ranges: Vec<Range<usize>> = Vec::new();
    ranges.push(0..n + dead.len());
    while let Some(range) = ranges.pop() {
        let ev = range.start.min(n)..range.end.min(n);
        let dl = range.start.max(n) - n..range.end.max(n) - n;
        match commit_retrying(
            db,
            tenant,
            &events[ev.clone()],
            &dead[dl.clone()],
            correlation_id,
        )
        .await
        {
            Ok((written, ids)) => {
                fill(&mut event_results[ev], written.into_iter().map(Ok));
                fill(&mut dead_results[dl], ids.into_iter().map(Ok));
            }
            Err(err) if matches!(err.fault(), Fault::Refused(_)) && range.len() > 1 => {
                let mid = range.start + range.len() / 2;
                ranges.push(mid..range.end);
                ranges.push(range.start..mid);
            }
            Err(err) => {
                if !matches!(err.fault(), Fault::Refused(_)) {
                    tracing::error!(error = %err, items = range.len(), "ingestion transaction failed; nothing of it was written");
                }
                let err = Arc::new(err);
                fill(
                    &mut event_results[ev],
                    std::iter::repeat_with(|| Err(err.clone())),
                );
                fill(
                    &mut dead_results[dl],
                    std::iter::repeat_with(|| Err(err.clone())),
                );
            }
        }
    }
    Committed {
        events: event_results
            .into_iter()
            .map(|r| r.unwrap_or_else(missing))
            .collect(),
        dead: dead_results
            .into_iter()
            .map(|r| r.unwrap_or_else(missing))
            .collect(),
    }
}

/// Every item is answered by the loop above; this only keeps a logic error from panicking.
fn missing<T>() -> ItemResult<T> {
    Err(Arc::new(StoreError::Conflict(
        "the write returned no answer for an item".into(),
    )))
}

fn fill<T>(slots: &mut [Option<T>], values: impl Iterator<Item = T>) {
    for (slot, value) in slots.iter_mut().zip(values) {
        *slot = Some(value);
    }
}

/// [`commit_once`], run again after a lost race; the short random pause lets the racers part.
async fn commit_retrying(
    db: &Database,
    tenant: TenantId,
    events: &[NewEvent],
    dead: &[NewDeadEvent],
    correlation_id: &str,
) -> Result<(Vec<WriteOutcome>, Vec<Uuid>), StoreError> {
    let mut attempt = 0;
    loop {
        match commit_once(db, tenant, events, dead, correlation_id).await {
            Err(err) if err.fault() == Fault::Contention && attempt < CONTENTION_RETRIES => {
                attempt += 1;
                metrics::counter!("tally_ingest_contention_retries_total").increment(1);
                let pause = rand::random_range(1..=10 * attempt);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

async fn commit_once(
    db: &Database,
    tenant: TenantId,
    events: &[NewEvent],
    dead: &[NewDeadEvent],
    correlation_id: &str,
) -> Result<(Vec<WriteOutcome>, Vec<Uuid>), StoreError> {
    if dead.is_empty() {
        let written = db.ingest_events(tenant, events, correlation_id).await?;
        return Ok((written, Vec::new()));
    }
    let mut tx = db.tenant_tx(tenant).await?;
    let written = ingest_events(&mut tx, tenant, events, correlation_id).await?;
    let dead_ids = insert_dead_events(&mut tx, tenant, dead).await?;
    tx.commit().await?;
    Ok((written, dead_ids))
}

/// Pairs each submitted event with its answer. An item the database refused gets a `refused`
/// result; any other failure fails the request (503 or 500).
fn merge(checked: Vec<Checked>, committed: Committed) -> Result<Vec<EventResult>, ApiError> {
    let mut written = committed.events.into_iter();
    let mut dead_ids = committed.dead.into_iter();
    let refused = |err: &StoreError, event_id: Option<String>| match err.fault() {
        Fault::Refused(refusal) => Ok(EventResult::Refused {
            event_id,
            error_code: refusal.code(),
            detail: ApiError::from_store(err).parts().detail.clone(),
        }),
        _ => Err(ApiError::from_store(err)),
    };
    checked
        .into_iter()
        .filter_map(|c| match c {
            Checked::Valid(v) => written.next().map(|w| match w {
                Ok(w) => Ok(to_result(w, v.event_id)),
                Err(err) => refused(&err, Some(v.event_id)),
            }),
            Checked::Invalid(d, errors) => dead_ids.next().map(|id| match id {
                Ok(id) => Ok(EventResult::Rejected {
                    dead_event_id: id,
                    error_code: d.error_code,
                    errors,
                }),
                Err(err) => refused(&err, d.event_id),
            }),
        })
        .collect()
}

pub fn to_result(written: WriteOutcome, event_id: String) -> EventResult {
    match written {
        WriteOutcome::Accepted { id } => EventResult::Accepted { id, event_id },
        WriteOutcome::Duplicate { id } => EventResult::Duplicate { id, event_id },
        WriteOutcome::Conflict { id } => EventResult::Conflict { id, event_id },
    }
}
