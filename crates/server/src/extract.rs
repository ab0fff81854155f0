//! Extractors whose rejections are problem documents rather than axum's plain-text ones, and
//! the one gate every client value passes before a handler sees it: nothing PostgreSQL cannot
//! store (U+0000, see [`tally_core::storable`]) gets through a body, a query or a path.

use crate::error::{ApiError, FieldError};
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tally_core::event::codes;
use tally_core::pointer::{self, Segment};

/// JSON body: wrong content type → 415, malformed → 400, a NUL anywhere or the wrong shape →
/// 422 with the member's pointer. Every body read this way is an object: serde would also fill
/// a struct from an array of its fields in order (`[null, null]` passed as a rotation), so
/// anything else is refused before it gets the chance.
///
/// The body is parsed into a [`Value`] first so that the NUL check sees every string and member
/// name, including those a typed body would ignore or reject later.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state).await?;
        refuse_nul(&value)?;
        if !value.is_object() {
            return Err(ApiError::unprocessable(
                "the body must be a JSON object",
                vec![FieldError {
                    pointer: String::new(),
                    code: codes::INVALID_TYPE.into(),
                    message: "must be an object".into(),
                }],
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| {
                let path: Vec<Segment<'_>> = e
                    .path()
                    .iter()
                    .filter_map(|segment| match segment {
                        serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                        serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key)),
                        _ => None,
                    })
                    .collect();
                let pointer = pointer::render("", &path);
                ApiError::unprocessable(
                    e.to_string(),
                    vec![FieldError {
                        pointer,
                        code: codes::INVALID_VALUE.into(),
                        message: e.inner().to_string(),
                    }],
                )
            })
    }
}

/// Refuses a parsed JSON document holding U+0000 (422, pointing at it).
pub fn refuse_nul(value: &Value) -> Result<(), ApiError> {
    let Some(nul) = tally_core::storable::find_nul(value, "") else {
        return Ok(());
    };
    let message = if nul.in_member_name {
        "a member name of this object contains U+0000, which cannot be stored"
    } else {
        "contains U+0000, which cannot be stored"
    };
    Err(ApiError::unprocessable(
        "the body contains U+0000 (\\u0000), which Tally cannot store; nothing was written",
        vec![FieldError {
            pointer: nul.pointer,
            code: codes::INVALID_FORMAT.into(),
            message: message.into(),
        }],
    ))
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                e.body_text(),
            ),
            JsonRejection::BytesRejection(e) => ApiError::new(
                e.status(),
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "bad_request"
                },
                e.body_text(),
            ),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters, percent-decoded; a segment decoding to U+0000 (`/v1/orders/%00`) → 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = params.iter().find(|(_, value)| value.contains('\0'))
        {
            return Err(nul_parameter("invalid_path", name));
        }
        let axum::extract::Path(value) = axum::extract::Path::from_request_parts(parts, state)
            .await
            .map_err(|rejection: PathRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    rejection.body_text(),
                )
            })?;
        Ok(Path(value))
    }
}

/// Query parameters; a name or value decoding to U+0000 (`?order_id=%00`) → 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        if let Ok(axum::extract::Query(pairs)) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            && let Some((name, _)) = pairs
                .iter()
                .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(nul_parameter("invalid_query", name));
        }
        let axum::extract::Query(value) = axum::extract::Query::try_from_uri(&parts.uri).map_err(
            |rejection: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    rejection.body_text(),
                )
            },
        )?;
        Ok(Query(value))
    }
}

/// URL-encoded form body (the dashboard's sign-in): wrong content type → 415, wrong shape → 422.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct Form<T>(pub T);

impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::InvalidFormContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the form as `application/x-www-form-urlencoded`",
            ),
            FormRejection::FailedToDeserializeForm(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                e.body_text(),
            ),
            other => ApiError::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

/// 400 for a query parameter outside its allowed values (an enum, a model name), pointing at it
/// and saying what is allowed: never an empty 200 for a filter that can match nothing.
pub fn invalid_query_value(name: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message.clone()).with_errors(vec![
        crate::error::FieldError {
            pointer: pointer::render("", &[Segment::Key(name)]),
            code: "invalid_value".into(),
            message,
        },
    ])
}

/// 400 for a query or path parameter holding U+0000, pointing at it by name (or at the whole
/// parameter list when the name itself holds the NUL).
fn nul_parameter(code: &'static str, name: &str) -> ApiError {
    let pointer = if name.contains('\0') {
        String::new()
    } else {
        pointer::render("", &[Segment::Key(name)])
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code,
        "a parameter contains U+0000 (%00), which Tally cannot store or look up",
    )
    .with_errors(vec![FieldError {
        pointer,
        code: codes::INVALID_FORMAT.into(),
        message: "contains U+0000".into(),
    }])
}
