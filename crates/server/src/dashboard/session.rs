//! Dashboard sessions: sign-in, sign-out, and the session side of [`crate::auth::Caller`].
//!
//! The cookie holds a random token (its SHA-256 is stored, RLS-scoped); the API key it was
//! exchanged for never reaches the browser again. The CSRF token is derived from the session
//! token (SHA-256 with a label), so it needs no storage and is unknowable without the cookie; it
//! is handed to the page by `GET /dashboard/session` and must come back as `X-CSRF-Token` on
//! every write. SameSite=Strict already keeps other sites' requests cookie-less; the token is
//! the second lock.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::Form;
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tally_store::rollups::{self, ReaderSettings};
use tally_store::tenants::Scope;

pub const COOKIE: &str = "tally_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const LIFETIME_HOURS: i64 = 12;

/// The session token from the `Cookie` header. Hand-parsed: one name looked up in a
/// `name=value; name=value` list does not justify a cookie-jar dependency.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

pub fn csrf_token(session_token: &str) -> String {
    hex::encode(Sha256::digest(format!("tally-csrf:{session_token}")))
}

/// The caller behind a session cookie; writes need the CSRF token.
pub async fn caller(parts: &Parts, state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let owner =
        state.db.find_session(token).await?.ok_or_else(|| {
            ApiError::unauthorized("the dashboard session has ended: sign in again")
        })?;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(csrf_token(token).as_bytes())) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a write from a dashboard session needs its `X-CSRF-Token`",
            ));
        }
    }
    // Sign-in takes read-scoped keys only, and publishable keys never have that scope.
    Ok(Caller {
        tenant_id: owner.tenant_id,
        key_id: owner.key_id,
        kind: tally_store::tenants::KeyKind::Secret,
        scopes: owner.scopes,
        rate_limit: None,
    })
}

#[derive(Deserialize)]
pub struct SignIn {
    key: String,
}

/// Exchanges a key with the `read` scope for a session cookie. A bad key sends the browser back
/// to the sign-in form with a flag (never the key) in the URL.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let owner = state.db.find_key_owner(form.key.trim()).await?;
    let Some(owner) = owner.filter(|o| !o.revoked && o.scopes.contains(&Scope::Read)) else {
        return Ok(Redirect::to("/?sign_in=failed").into_response());
    };
    let expires = Utc::now() + Duration::hours(LIFETIME_HOURS);
    let token = state
        .db
        .create_session(owner.tenant_id, owner.key_id, expires)
        .await?;
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME_HOURS * 3600
    );
    Ok((
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|_| ApiError::internal())?,
        )],
        Redirect::to("/"),
    )
        .into_response())
}

/// Ends the session (CSRF-checked like every write) and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = token(&headers) {
        state.db.delete_session(caller.tenant_id, token).await?;
    }
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&clear).map_err(|_| ApiError::internal())?,
        )],
    )
        .into_response())
}

#[derive(Serialize)]
pub struct Current {
    tenant_id: String,
    scopes: Vec<&'static str>,
    csrf_token: String,
    #[serde(flatten)]
    settings: ReaderSettings,
}

/// Who the page is signed in as, the CSRF token its writes must carry, and the settings it
/// needs before its first API call (time zone for "today", currency, default model). Without a
/// live session it answers 204 rather than 401: the page asks before sign-in, and an expected
/// "not signed in" should not read as an error in the browser's console.
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = token(&headers) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let Some(owner) = state.db.find_session(token).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut tx = state.db.tenant_tx(owner.tenant_id).await?;
    let settings = rollups::reader_settings(&mut tx).await?;
    tx.commit().await?;
    Ok(axum::Json(Current {
        tenant_id: owner.tenant_id.to_string(),
        scopes: owner.scopes.iter().map(|s| s.as_str()).collect(),
        csrf_token: csrf_token(token),
        settings,
    })
    .into_response())
}

/// Refuses a cross-site form post (login CSRF): browsers send `Origin` on POST, and it must name
/// the host the form was posted to.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return Ok(());
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if origin_host == host {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "sign-in must be posted from the dashboard's own origin",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn finds_the_session_among_other_cookies_and_headers() {
        let h = headers(&["theme=dark; tally_session=ts_abc; x=1"]);
        assert_eq!(token(&h), Some("ts_abc"));
        let h = headers(&["theme=dark", "tally_session=ts_def"]);
        assert_eq!(token(&h), Some("ts_def"));
        assert_eq!(token(&headers(&["tally_session_old=ts_x"])), None);
        assert_eq!(token(&headers(&["tally_session="])), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }

    #[test]
    fn csrf_token_depends_on_the_session() {
        assert_ne!(csrf_token("ts_a"), csrf_token("ts_b"));
        assert_eq!(csrf_token("ts_a"), csrf_token("ts_a"));
    }
}
