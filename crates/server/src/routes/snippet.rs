//! `GET /tally.js` and `GET /tally/{version}.js`: the collector for web pages
//! (`crates/server/assets/tally.js`), embedded in the binary so a page loads it first-party
//! from the same Tally that receives its events.
//!
//! `/tally.js` is what the README's install line uses: cached briefly (5 minutes) and
//! revalidated by `ETag`, so pages pick up a new release within minutes. Its `ETag` is the
//! version, and `/tally/{version}.js` serves that exact file as immutable for a year, for
//! pages that pin a version (and subresource integrity); a version that is not this build's
//! is 404.

use crate::error::{ApiError, Problem};
use crate::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

const SOURCE: &str = include_str!("../../assets/tally.js");

/// The first 16 hex digits of the file's SHA-256: changes exactly when the file does.
static VERSION: LazyLock<String> =
    LazyLock::new(|| hex::encode(&Sha256::digest(SOURCE.as_bytes())[..8]));

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(latest))
        .routes(routes!(pinned))
}

fn etag() -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", *VERSION)).expect("hex is a valid header value")
}

fn script(headers: &HeaderMap, cache_control: &'static str) -> Response {
    let etag = etag();
    let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|tags| {
        tags.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == etag.as_bytes() || t.trim_ascii() == b"*")
    });
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
        (header::ETAG, etag),
        // A page that isolates itself (COEP) may still load the collector from Tally's origin.
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        SOURCE,
    )
        .into_response()
}

/// The collector for web pages (see the README's "Collecting from web pages"); short cache,
/// `ETag` = version.
#[utoipa::path(get, path = "/tally.js", tag = "browser", responses(
    (status = 200, description = "the script", content_type = "text/javascript", body = String),
    (status = 304, description = "unchanged since the `If-None-Match` version")
))]
async fn latest(headers: HeaderMap) -> Response {
    script(&headers, "public, max-age=300")
}

/// One version of the collector, cacheable forever; `file` is `{version}.js` with the version
/// from `/tally.js`'s `ETag`.
#[utoipa::path(get, path = "/tally/{file}", tag = "browser",
    params(("file" = String, Path, description = "`{version}.js`", pattern = "^[0-9a-f]{16}\\.js$")),
    responses(
        (status = 200, description = "the script", content_type = "text/javascript", body = String),
        (status = 304, description = "unchanged since the `If-None-Match` version"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    ))]
async fn pinned(headers: HeaderMap, Path(file): Path<String>) -> Result<Response, ApiError> {
    if file.strip_suffix(".js") != Some(VERSION.as_str()) {
        return Err(ApiError::not_found(format!(
            "this Tally serves tally.js version {0} only: /tally/{0}.js",
            *VERSION
        )));
    }
    Ok(script(&headers, "public, max-age=31536000, immutable"))
}
