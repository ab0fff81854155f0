//! Validating submitted events and writing a batch of them in one transaction.

use crate::error::FieldError;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use tally_core::event::{self, ValidEvent, ValidationContext};
use tally_core::pii;
use tally_store::dead_events::{NewDeadEvent, insert_dead_events};
use tally_store::events::{NewEvent, WriteOutcome, ingest_events};
use tally_store::{Database, StoreError, TenantId};
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
}

impl EventResult {
    pub fn outcome(&self) -> &'static str {
        match self {
            EventResult::Accepted { .. } => "accepted",
            EventResult::Duplicate { .. } => "duplicate",
            EventResult::Conflict { .. } => "conflict",
            EventResult::Rejected { .. } => "rejected",
        }
    }
}

/// Writes a batch: the valid events, the dead letters and the recompute schedule in one
/// transaction, so a failure leaves nothing behind and a retry cannot duplicate anything.
pub async fn write(
    db: &Database,
    tenant: TenantId,
    checked: Vec<Checked>,
    correlation_id: &str,
) -> Result<Vec<EventResult>, StoreError> {
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
    let (written, dead_ids) = commit(db, tenant, &events, &dead, correlation_id).await?;
    let results = merge(checked, written, dead_ids);
    for r in &results {
        metrics::counter!("tally_events_total", "outcome" => r.outcome()).increment(1);
    }
    Ok(results)
}

/// The one write every ingestion path commits: the events, the dead letters and the recompute
/// schedule of what was accepted, all or nothing. Batches and group-committed single events
/// share it. Without dead letters it is a single statement in its own implicit transaction (one
/// round trip); with them, one explicit transaction.
pub async fn commit(
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

fn merge(
    checked: Vec<Checked>,
    written: Vec<WriteOutcome>,
    dead_ids: Vec<Uuid>,
) -> Vec<EventResult> {
    let mut written = written.into_iter();
    let mut dead_ids = dead_ids.into_iter();
    checked
        .into_iter()
        .filter_map(|c| match c {
            Checked::Valid(v) => written.next().map(|w| to_result(w, v.event_id)),
            Checked::Invalid(d, errors) => dead_ids.next().map(|id| EventResult::Rejected {
                dead_event_id: id,
                error_code: d.error_code,
                errors,
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
