//! The dashboard at `/`: a small vanilla-JS app over the public JSON API, served by the binary.
//!
//! Why a script over the API rather than server templates: the issue's rule is "anything the
//! dashboard shows, an API call can show", and the cheapest way to keep that true is for the
//! dashboard to *be* an API client. Sorting, model switching and CSV download then need no
//! round trip, and live updates reuse the realtime endpoint's ETag. No Node toolchain and no CDN:
//! the three assets are embedded with `include_str!`, and charts are inline SVG drawn by the
//! script (a vendored chart library would be larger than the whole app for two line series).
//!
//! Safety: the page loads only same-origin script and style (a strict CSP, no inline script),
//! cannot be framed, sends referrers only to itself. Sign-in exchanges a key (POST body, never a URL) for an
//! HttpOnly SameSite=Strict session cookie ([`session`]); the API's `Caller` accepts that cookie,
//! and requires the session's CSRF token on anything but GET/HEAD.

pub mod session;

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, Request, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The pages and the session endpoints (HTML and cookies: not part of the OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/dashboard/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/dashboard/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/dashboard/sign-in", post(session::sign_in))
        .route("/dashboard/sign-out", post(session::sign_out))
        .route("/dashboard/session", get(session::current))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Assets change only with the binary; revalidating each load keeps an upgrade visible.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response, API included: JSON answers never need framing or
/// referrers either, and one layer cannot miss a page.
pub async fn security_headers(req: Request<axum::body::Body>, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on form
    // posts, and sign-in's origin check needs the real one (found by the browser test).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
