//! A tenant's payment webhook endpoints (scope `admin`): where each vendor posts, and what its
//! deliveries are verified with. Secrets appear only in the create and rotate answers.

use crate::auth::{Authorized, scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tally_payments::Source;
use tally_store::ledger::CurrencyTotal;
use tally_store::webhooks::{
    DEFAULT_ROTATION_GRACE, EndpointHealth, EndpointWithSecret, ListedEndpoint, NewEndpoint,
    WebhookEndpoint,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(rotate_endpoint))
        .routes(routes!(disable_endpoint))
}

/// An endpoint as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub struct EndpointView {
    pub endpoint_id: Uuid,
    pub source: String,
    /// Where the vendor must post: append it to Tally's public base URL.
    pub url_path: String,
    pub description: String,
    /// `active` or `disabled`.
    pub status: String,
    pub paypal_webhook_id: Option<String>,
    /// Whether a PayPal certificate is configured (otherwise it is fetched from PayPal).
    pub has_paypal_certificate: bool,
    /// Prepended to the order ids of this endpoint's postings.
    pub order_id_prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still verifies.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

impl From<WebhookEndpoint> for EndpointView {
    fn from(e: WebhookEndpoint) -> Self {
        Self {
            url_path: format!("/v1/webhooks/{}/{}", e.source, e.endpoint_id),
            endpoint_id: e.endpoint_id,
            source: e.source,
            description: e.description,
            status: e.status,
            paypal_webhook_id: e.paypal_webhook_id,
            has_paypal_certificate: e.has_paypal_certificate,
            order_id_prefix: e.order_id_prefix,
            created_at: e.created_at,
            rotated_at: e.rotated_at,
            previous_secret_expires_at: e.previous_secret_expires_at,
        }
    }
}

/// What has reached an endpoint: deliveries, what could not be read, and requests that failed
/// verification (a secret out of date after a rotation shows here first).
#[derive(Serialize, ToSchema)]
pub struct EndpointHealthView {
    /// When the last verified delivery was recorded.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Verified deliveries (a vendor's repeat of one delivery counts once).
    pub deliveries: i64,
    /// Verified deliveries Tally could not read or store, kept in `dead_events`.
    pub dead_lettered: i64,
    /// Requests whose signature did not verify.
    pub verification_failures: i64,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The last failure's code: `bad_signature`, `stale_timestamp`, `missing_header`, ...
    pub last_failure_reason: Option<String>,
    /// Net of the ledger postings this endpoint's deliveries carried, per currency.
    pub revenue_net: Vec<CurrencyTotal>,
}

impl From<EndpointHealth> for EndpointHealthView {
    fn from(h: EndpointHealth) -> Self {
        Self {
            last_delivery_at: h.last_delivery_at,
            deliveries: h.deliveries,
            dead_lettered: h.dead_lettered,
            verification_failures: h.verification_failures,
            last_failure_at: h.last_failure_at,
            last_failure_reason: h.last_failure_reason,
            revenue_net: h.revenue_net,
        }
    }
}

/// An endpoint as listed: its settings and its health.
#[derive(Serialize, ToSchema)]
pub struct ListedEndpointView {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    #[serde(flatten)]
    pub health: EndpointHealthView,
}

impl From<ListedEndpoint> for ListedEndpointView {
    fn from(e: ListedEndpoint) -> Self {
        Self {
            endpoint: e.endpoint.into(),
            health: e.health.into(),
        }
    }
}

/// An endpoint with its signing secret: paste it into the vendor now, it is not shown again.
#[derive(Serialize, ToSchema)]
pub struct EndpointSecretView {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// Absent for PayPal, which signs with its own certificate.
    pub secret: Option<String>,
}

impl From<EndpointWithSecret> for EndpointSecretView {
    fn from(e: EndpointWithSecret) -> Self {
        Self {
            endpoint: e.endpoint.into(),
            secret: e.secret,
        }
    }
}

/// The payment vendors Tally verifies and parses.
pub fn sources() -> utoipa::openapi::schema::Object {
    tally_store::doc::one_of(tally_payments::Source::ALL.map(|s| s.as_str()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// `shopify`, `stripe`, `paypal` or `woocommerce`.
    #[schema(schema_with = sources)]
    pub source: String,
    #[serde(default)]
    pub description: String,
    /// The secret the vendor signs with when the vendor issues it (Stripe's `whsec_...`,
    /// Shopify's app client secret); omit it to have Tally generate one (WooCommerce).
    pub secret: Option<String>,
    /// PayPal only, required: the id of the webhook in the PayPal dashboard.
    pub paypal_webhook_id: Option<String>,
    /// PayPal only, optional: the PEM certificate PayPal signs with; absent, it is fetched from
    /// the `paypal.com` URL each delivery names.
    pub paypal_certificate_pem: Option<String>,
    /// Prepended to the order ids of this endpoint's postings (1–32 letters, digits, `.` `_` `:`
    /// `-`), for a tenant whose shops' order ids overlap (WooCommerce numbers orders per site);
    /// the shop's tracking must send the same prefixed ids. Fixed once the endpoint exists.
    pub order_id_prefix: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateEndpoint {
    /// The vendor's new secret; omit it to have Tally generate one.
    pub secret: Option<String>,
    /// How long the old secret keeps verifying (default 3600: Shopify signs with the old one
    /// for up to an hour); 0 retires it at once.
    pub grace_period_seconds: Option<u32>,
}

/// This tenant's webhook endpoints with their health (scope `admin`).
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Vec<ListedEndpointView>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")
    ))]
async fn list_endpoints(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
) -> Result<Json<Vec<ListedEndpointView>>, ApiError> {
    let endpoints = state.db.list_webhook_endpoints(caller.tenant_id).await?;
    Ok(Json(endpoints.into_iter().map(Into::into).collect()))
}

/// Creates an endpoint for one vendor (scope `admin`); the answer holds its secret, once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", security(("api_key" = ["admin"])),
    request_body = CreateEndpoint, responses(
        (status = 201, body = EndpointSecretView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Json(body): Json<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointSecretView>), ApiError> {
    let source: Source = body
        .source
        .parse()
        .map_err(|e: tally_payments::UnknownSource| {
            ApiError::unprocessable(
                "invalid source",
                vec![FieldError {
                    pointer: "/source".into(),
                    code: "invalid_value".into(),
                    message: e.to_string(),
                }],
            )
        })?;
    let created = state
        .db
        .create_webhook_endpoint(
            caller.tenant_id,
            NewEndpoint {
                source: source.as_str().to_string(),
                description: body.description,
                secret: body.secret,
                paypal_webhook_id: body.paypal_webhook_id,
                paypal_certificate_pem: body.paypal_certificate_pem,
                order_id_prefix: body.order_id_prefix,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Replaces an endpoint's secret (scope `admin`); the old one verifies for a grace period.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/rotate", tag = "webhooks",
    security(("api_key" = ["admin"])), params(("endpoint_id" = Uuid, Path)), request_body = RotateEndpoint,
    responses(
        (status = 200, body = EndpointSecretView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
async fn rotate_endpoint(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Path(endpoint_id): Path<Uuid>,
    Json(body): Json<RotateEndpoint>,
) -> Result<Json<EndpointSecretView>, ApiError> {
    let grace = body
        .grace_period_seconds
        .map_or(DEFAULT_ROTATION_GRACE, |s| TimeDelta::seconds(s.into()));
    let rotated = state
        .db
        .rotate_webhook_secret(caller.tenant_id, endpoint_id, body.secret, grace)
        .await?;
    Ok(Json(rotated.into()))
}

/// Stops an endpoint accepting deliveries (scope `admin`); its history stays.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/disable", tag = "webhooks",
    security(("api_key" = ["admin"])), params(("endpoint_id" = Uuid, Path)), responses(
        (status = 200, body = EndpointView),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn disable_endpoint(
    State(state): State<AppState>,
    caller: Authorized<scope::Admin>,
    Path(endpoint_id): Path<Uuid>,
) -> Result<Json<EndpointView>, ApiError> {
    let disabled = state
        .db
        .disable_webhook_endpoint(caller.tenant_id, endpoint_id)
        .await?;
    Ok(Json(disabled.into()))
}
