//! `POST /v1/webhooks/{source}/{endpoint_id}`: payment vendors' deliveries into the ledger.
//!
//! The body is taken as raw bytes because signatures cover exactly what was sent; it is parsed
//! only after verification. An untrusted request is refused (401) and leaves nothing behind but
//! a metric and a count on the endpoint. A trusted one is always answered 2xx, even when Tally
//! cannot read or store it (it is then dead-lettered): the vendor retrying the same bytes would
//! not help, and vendors disable endpoints that keep failing (WooCommerce after five failures).

mod certs;

use crate::context;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tally_payments::{
    EndpointScope, Outcome, Posting, Source, Verified, VerifyError, VerifyingKeys, parse,
    paypal_cert_url, strip_nul, verify,
};
use tally_store::ledger::NewPosting;
use tally_store::webhooks::{DeliveryOutcome, EndpointKeys, NewDelivery, Recorded};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// What Tally did with a delivery.
#[derive(Serialize, ToSchema)]
pub struct DeliveryReceipt {
    /// `posted`, `ignored`, `dead_lettered`, `duplicate` (seen before, nothing changed) or
    /// `ping` (WooCommerce's unsigned creation ping).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<Uuid>,
    /// Ledger postings this delivery added (facts already posted by another delivery are not
    /// counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_postings: Option<usize>,
    /// Why nothing was posted, for ignored and dead-lettered deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DeliveryReceipt {
    fn bare(status: &str) -> Self {
        Self {
            status: status.into(),
            delivery_id: None,
            new_postings: None,
            detail: None,
        }
    }
}

/// The URL an endpoint was created with.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct DeliveryUrl {
    /// An unknown vendor is answered like an unknown endpoint (404).
    #[param(schema_with = super::endpoints::sources)]
    source: String,
    endpoint_id: Uuid,
}

/// Receives a payment vendor's webhook; the URL is the one the endpoint was created with.
#[utoipa::path(post, path = "/v1/webhooks/{source}/{endpoint_id}", tag = "webhooks",
    params(DeliveryUrl),
    request_body(content = String, content_type = "application/json",
        description = "The vendor's payload, verified byte for byte against its signature headers"),
    responses(
        (status = 200, body = DeliveryReceipt, description = "posted, ignored, duplicate or ping"),
        (status = 202, body = DeliveryReceipt, description = "verified but unreadable: dead-lettered"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn receive(
    State(state): State<AppState>,
    Path(DeliveryUrl {
        source,
        endpoint_id,
    }): Path<DeliveryUrl>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DeliveryReceipt>), ApiError> {
    // One answer for every way of not matching, so the URL space reveals nothing.
    let not_found = || ApiError::not_found("no active webhook endpoint at this URL");
    let source: Source = source.parse().map_err(|_| not_found())?;
    let endpoint = state
        .db
        .find_webhook_endpoint(endpoint_id)
        .await?
        .filter(|e| e.active && e.source == source.as_str())
        .ok_or_else(not_found)?;

    let verified = match verify_delivery(source, &endpoint, &headers, &body, Utc::now()).await {
        Ok(verified) => verified,
        Err(err) => {
            metrics::counter!(
                "tally_webhook_verification_failures_total",
                "source" => source.as_str(),
                "reason" => err.code()
            )
            .increment(1);
            // The endpoint's health is a report: failing to count must not change the answer.
            if let Err(store_err) = state
                .db
                .record_verification_failure(endpoint.tenant_id, endpoint.endpoint_id, err.code())
                .await
            {
                tracing::warn!(error = %store_err, "could not count a verification failure");
            }
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                err.code(),
                err.to_string(),
            ));
        }
    };
    if let Verified::WooCommercePing { .. } = verified {
        return Ok((StatusCode::OK, Json(DeliveryReceipt::bare("ping"))));
    }

    let mut delivery = inbound(source, &endpoint, &headers, &body);
    let recorded = match state
        .db
        .record_delivery(endpoint.tenant_id, &delivery)
        .await
    {
        Err(err) if err.is_refused_data() => {
            // Whatever the checks before missed, a signed delivery is never answered 5xx for its
            // content (the vendor would retry it forever): keep the bytes' hash as a dead letter.
            let (delivery_key, topic, outcome) = dead_letter(
                &delivery.body_sha256,
                "unstorable",
                format!("the database refused it: {err}"),
            );
            delivery = NewDelivery {
                delivery_key,
                topic,
                outcome,
                payload: raw_payload(&delivery.body_sha256),
                ..delivery
            };
            state
                .db
                .record_delivery(endpoint.tenant_id, &delivery)
                .await?
        }
        recorded => recorded?,
    };
    let receipt = match recorded {
        Recorded::Duplicate => DeliveryReceipt::bare("duplicate"),
        Recorded::New {
            delivery_id,
            new_postings,
        } => DeliveryReceipt {
            status: delivery.outcome.status().into(),
            delivery_id: Some(delivery_id),
            new_postings: Some(new_postings),
            detail: delivery.outcome.detail(),
        },
    };
    metrics::counter!(
        "tally_webhook_deliveries_total",
        "source" => source.as_str(),
        "status" => receipt.status.clone()
    )
    .increment(1);
    let status = match (recorded, &delivery.outcome) {
        (Recorded::New { .. }, DeliveryOutcome::DeadLettered { .. }) => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((status, Json(receipt)))
}

/// Verifies with the endpoint's live secrets, or for PayPal its webhook id and certificate: the
/// one configured on the endpoint, else the one behind the (allow-listed) certificate URL.
async fn verify_delivery(
    source: Source,
    endpoint: &EndpointKeys,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    if source != Source::PayPal {
        let secrets = endpoint.live_secrets(now);
        return verify(source, headers, body, VerifyingKeys::Secrets(&secrets), now);
    }
    let certificate_pem = match &endpoint.paypal_certificate_pem {
        Some(pem) => pem.as_str().into(),
        None => certs::fetch(paypal_cert_url(headers)?).await?,
    };
    let keys = VerifyingKeys::PayPal {
        webhook_id: endpoint.paypal_webhook_id.as_deref().unwrap_or_default(),
        certificate_pem: &certificate_pem,
    };
    verify(source, headers, body, keys, now)
}

/// A verified delivery as the inbox keeps it: parsed into postings (scoped to its endpoint), or
/// the reason it moved no money, or dead-lettered. Only a redacted copy of the payload is kept
/// (vendors send customer names and addresses), without the NUL characters PostgreSQL cannot
/// store; a body that is not JSON is kept as its hash alone.
fn inbound(
    source: Source,
    endpoint: &EndpointKeys,
    headers: &HeaderMap,
    body: &[u8],
) -> NewDelivery {
    let body_sha256: [u8; 32] = Sha256::digest(body).into();
    let payload = match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            strip_nul(&mut value);
            tally_core::pii::redact(&mut value);
            value
        }
        Err(_) => raw_payload(&body_sha256),
    };
    let endpoint_id = endpoint.endpoint_id.to_string();
    let scope = EndpointScope {
        source,
        endpoint_id: &endpoint_id,
        order_id_prefix: endpoint.order_id_prefix.as_deref(),
    };
    let parsed = parse(source, headers, body).and_then(|delivery| delivery.for_endpoint(scope));
    let (delivery_key, topic, outcome) = match parsed {
        Ok(parsed) => {
            let outcome = match parsed.outcome {
                Outcome::Post(postings) => {
                    DeliveryOutcome::Posted(postings.iter().map(new_posting).collect())
                }
                Outcome::Ignored(why) => DeliveryOutcome::Ignored {
                    reason: format!("{}: {why}", why.code()),
                },
            };
            (parsed.delivery_key, parsed.topic, outcome)
        }
        Err(err) => dead_letter(&body_sha256, err.code(), err.to_string()),
    };
    NewDelivery {
        endpoint_id: endpoint.endpoint_id,
        source: source.as_str().to_string(),
        delivery_key,
        topic,
        payload,
        body_sha256,
        correlation_id: context::current().correlation_id,
        outcome,
    }
}

/// The delivery key, topic and outcome of a dead letter. Its own key is unreadable or
/// unstorable, so the bytes' hash stands in: a retry of the same bytes is a duplicate instead of
/// a second dead letter.
fn dead_letter(
    body_sha256: &[u8; 32],
    error_code: &str,
    message: String,
) -> (String, String, DeliveryOutcome) {
    (
        format!("unparsed:{}", hex::encode(body_sha256)),
        "unparsed".to_string(),
        DeliveryOutcome::DeadLettered {
            error_code: error_code.to_string(),
            message,
        },
    )
}

/// What is kept of a body that cannot be kept as JSON: its hash.
fn raw_payload(body_sha256: &[u8; 32]) -> Value {
    json!({ "raw_sha256": hex::encode(body_sha256) })
}

fn new_posting(p: &Posting) -> NewPosting {
    NewPosting {
        source: p.source.as_str().to_string(),
        external_id: p.external_id.clone(),
        entry_type: p.entry_type.as_str().to_string(),
        amount_cents: p.amount_minor,
        currency: p.currency.as_str().to_string(),
        order_id: p.order_id.clone(),
        payment_ref: p.payment_ref.clone(),
        occurred_at: p.occurred_at,
    }
}
