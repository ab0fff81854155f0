//! Requests from web pages: which page may use which key, and the CORS answers that let a
//! tenant's own pages send events.
//!
//! A browser names the page's origin in `Origin` on every cross-origin request (and on
//! same-origin POSTs), and a page cannot forge it. So:
//! - a secret key arriving from another origin than Tally's own is refused: it has leaked into
//!   a page, where every visitor can read it;
//! - a publishable key is accepted only with an `Origin` in the tenant's `allowed_origins`
//!   setting (a copied key used from a server or another site is refused);
//! - CORS grants go to exactly those origins, on the collection routes only.
//!
//! The CORS answer depends on the tenant's settings, which a request names only through its
//! key, so it is computed here per request rather than by `tower-http`'s static `CorsLayer`.
//! A preflight carries none of the request's headers, so a page names its publishable key in
//! the URL (`?key=pk_...`) when its request needs one (a JSON `Content-Type` or an
//! `Authorization` header); `text/plain` bodies with `?key=` need no preflight at all.

use crate::auth::{self, owner_of};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tally_store::TenantId;
use tally_store::tenants::{KeyKind, KeyOwner};

/// The routes that collect events and so answer CORS. The identity route joins this list.
pub const CORS_PATHS: &[&str] = &[
    "/v1/events",
    "/v1/events/batch",
    "/v1/segment",
    "/v1/segment/batch",
    "/v1/identify",
];

/// Chromium caps a preflight's cache at 2 hours, Firefox at 24: more would be ignored.
const MAX_AGE_SECS: u32 = 7200;
const ALLOWED_METHODS: &str = "POST, OPTIONS";
const ALLOWED_HEADERS: &str = "content-type, authorization, x-api-key, idempotency-key";
/// What a page's script may read from an answer: its budget and what to quote in a report.
const EXPOSED_HEADERS: &str =
    "ratelimit-limit, ratelimit-remaining, ratelimit-reset, retry-after, x-correlation-id";

/// The page origin of a request from another origin than Tally's own: its `Origin`, unless
/// that names the host the request was sent to, or the browser says the page is Tally's own
/// (`Sec-Fetch-Site: same-origin`, which still holds behind a proxy that rewrites `Host`).
fn foreign_origin<'a>(headers: &'a HeaderMap, uri: &Uri) -> Option<&'a str> {
    let origin = headers.get(header::ORIGIN)?;
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site == "same-origin")
    {
        return None;
    }
    // An origin that is not even text is foreign: "" matches no allowed origin.
    let origin = origin.to_str().unwrap_or("");
    let authority = origin.split_once("://").map(|(_, authority)| authority);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    if authority.is_some() && authority == host {
        None
    } else {
        Some(origin)
    }
}

async fn origin_allowed(
    state: &AppState,
    tenant: TenantId,
    origin: &str,
) -> Result<bool, ApiError> {
    let tenant = state.tenants.get(&state.db, tenant).await?;
    Ok(tenant
        .allowed_origins
        .iter()
        .any(|allowed| allowed == origin))
}

/// Refuses a key used from a page that may not use it (403 with the reason).
pub async fn check_origin(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    owner: &KeyOwner,
) -> Result<(), ApiError> {
    let foreign = foreign_origin(headers, uri);
    match (owner.kind, foreign) {
        (KeyKind::Secret, None) => Ok(()),
        (KeyKind::Secret, Some(origin)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "secret_key_in_browser",
            format!(
                "a secret key is never accepted from a web page (Origin: {origin}): every \
                 visitor of the page can read it, so rotate it. Pages send events with a \
                 publishable key (POST /v1/keys with {{\"kind\":\"publishable\"}})"
            ),
        )),
        (KeyKind::Publishable, None) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "a publishable key is accepted only from web pages of the tenant's allowed_origins \
             (the request has no Origin header); servers use a secret key",
        )),
        (KeyKind::Publishable, Some(origin)) => {
            if origin_allowed(state, owner.tenant_id, origin).await? {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    format!(
                        "Origin {origin:?} is not in this tenant's allowed_origins setting \
                         (PATCH /v1/settings); publishable keys work only from those pages"
                    ),
                ))
            }
        }
    }
}

/// Whether this request's page gets a CORS grant: only a valid publishable key's tenant's
/// allowed origins do (a secret key is refused from pages, so its answers are not theirs to
/// read).
async fn granted(state: &AppState, headers: &HeaderMap, uri: &Uri, origin: &str) -> bool {
    let Some(key) = auth::presented(headers, uri) else {
        return false;
    };
    match owner_of(state, &key.secret).await {
        Ok(owner) if owner.kind == KeyKind::Publishable => {
            origin_allowed(state, owner.tenant_id, origin)
                .await
                .unwrap_or(false)
        }
        _ => false,
    }
}

/// Answers preflights on [`CORS_PATHS`] and adds the grant to their answers; other routes pass
/// untouched. Credentials are never allowed: a key, not a cookie, authenticates.
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !CORS_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let grant = granted(
        &state,
        request.headers(),
        request.uri(),
        origin.to_str().unwrap_or(""),
    )
    .await;
    let mut response = if request.method() == Method::OPTIONS {
        if grant {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let h = response.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECS.into());
            response
        } else {
            ApiError::forbidden(
                "no CORS grant: name a publishable key in the URL (?key=pk_...) and send from \
                 one of the tenant's allowed_origins",
            )
            .into_response()
        }
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    if grant {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    // The answer differs by origin: caches must not hand one page's grant to another.
    h.append(header::VARY, HeaderValue::from_static("origin"));
    response
}
