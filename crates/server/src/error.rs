//! Every failure as RFC 7807 `application/problem+json`:
//! `type, title, status, detail, instance, correlation_id, code` and, for invalid input,
//! `errors[]` with a JSON pointer per field. `code` is stable and meant for programs; `detail` is
//! for people.

use crate::context;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tally_store::{Fault, Refusal, StoreError};
use utoipa::ToSchema;

/// One invalid field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// RFC 6901 JSON pointer to the field (`/revenue`, `/properties/customer/email`).
    pub pointer: String,
    /// Stable machine code (`required`, `invalid_format`, `pii_detected`, ...).
    pub code: String,
    pub message: String,
}

impl From<tally_core::event::FieldError> for FieldError {
    fn from(e: tally_core::event::FieldError) -> Self {
        Self {
            pointer: e.pointer,
            code: e.code.to_string(),
            message: e.message,
        }
    }
}

/// The problem document as sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: String,
    pub correlation_id: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Problem-specific members (RFC 7807 §3.2), e.g. `dead_event_id`, `existing_id`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// Boxed so that `Result<T, ApiError>` stays one pointer wide on the happy path. Clone for
/// [`crate::answers::Answers`], whose waiters on one failed computation each get its error.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorParts>);

#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub headers: HeaderMap,
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: HeaderMap::new(),
            extensions: serde_json::Map::new(),
        }))
    }

    pub fn parts(&self) -> &ErrorParts {
        &self.0
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = detail.into();
        self
    }

    pub fn with_extension(mut self, key: &str, value: impl Serialize) -> Self {
        self.0.extensions.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or_default(),
        );
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
        .with_errors(errors)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; quote the correlation id when reporting it",
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl ApiError {
    /// The one mapping of store failures to answers. Connection-class faults and lost races
    /// (after the server's own retries) are 503 with `Retry-After`, since the same request can
    /// succeed later; data the database refused is a 4xx with the refusal's stable code, since
    /// retrying it would fail forever. Takes a reference because a failed group commit shares
    /// one error among its waiters.
    pub fn from_store(err: &StoreError) -> Self {
        match err {
            StoreError::NotFound => return ApiError::not_found("no such resource for this tenant"),
            StoreError::Conflict(detail) => {
                return ApiError::new(StatusCode::CONFLICT, "conflict", detail.clone());
            }
            StoreError::Invalid(detail) => return ApiError::unprocessable(detail, Vec::new()),
            _ => {}
        }
        match err.fault() {
            Fault::Unavailable | Fault::Contention => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable(
                    "the database is unavailable; nothing was written, retry shortly",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            Fault::Refused(refusal) => {
                tracing::info!(error = %err, "the database refused the data");
                let status = match refusal {
                    Refusal::Duplicate => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(
                    status,
                    refusal.code(),
                    format!(
                        "the database refused this data ({}); nothing was written, and sending it again will fail the same way",
                        database_message(err)
                    ),
                )
            }
            Fault::Other => {
                // The cause goes to the log with the correlation id, never to the client.
                tracing::error!(error = %err, "store error");
                ApiError::internal()
            }
        }
    }
}

/// PostgreSQL's primary message (never its DETAIL, which may quote other rows).
fn database_message(err: &StoreError) -> String {
    match err {
        StoreError::Database(sqlx::Error::Database(db)) => db.message().to_string(),
        other => other.to_string(),
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::from(err).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::from_store(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let parts = *self.0;
        let ctx = context::current();
        let problem = Problem {
            type_: format!("urn:tally:problem:{}", parts.code),
            title: parts
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: parts.status.as_u16(),
            detail: parts.detail,
            instance: ctx.path,
            correlation_id: ctx.correlation_id,
            code: parts.code.to_string(),
            errors: parts.errors,
            extensions: parts.extensions,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (parts.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response.headers_mut().extend(parts.headers);
        response
    }
}
