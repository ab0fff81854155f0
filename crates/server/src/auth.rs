//! Authentication: tenant API keys, dashboard sessions and the operator token.
//!
//! A request without a key may carry a dashboard session cookie instead (see
//! [`crate::dashboard::session`]); a key, when present, always wins.
//!
//! A key arrives as `Authorization: Bearer tk_...`, `X-API-Key: tk_...` or, as Segment's
//! webhook destinations send it, `Authorization: Basic` with the key as user name. A
//! publishable key (`pk_...`) may also come as `?key=pk_...`, because `navigator.sendBeacon`
//! cannot set headers; a secret key never may (URLs end up in logs and browser history).
//! Which pages may use which key is [`crate::browser`]'s business. Looking a key up costs a
//! database round trip, which would dominate a single-event ingest, so owners are cached briefly
//! (moka, keyed by the secret's SHA-256, never the secret). A revocation through this process
//! evicts at once; another process's revocation takes effect within the TTL, half a second, so
//! that a revoked key stops working everywhere within 1 s with room for a busy machine (0.9 s
//! measured 0.95 s under test load). That still spares the database all but two lookups per
//! key per process per second, which is nothing
//! beside the thousands of events a busy key sends in that second; a LISTEN/NOTIFY channel
//! would save those lookups but adds a connection per process and its reconnect logic.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use base64::Engine;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tally_store::tenants::{KeyKind, KeyLimit, KeyOwner, Scope, hash_secret};
use tally_store::{KeyId, TenantId};

const CACHE_TTL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct KeyCache(moka::future::Cache<[u8; 32], Option<KeyOwner>>);

impl KeyCache {
    pub fn new() -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
        )
    }

    /// Forgets every cached key of a tenant (after a revocation).
    pub async fn evict_tenant(&self, tenant: TenantId) {
        let stale: Vec<[u8; 32]> = self
            .0
            .iter()
            .filter(|(_, owner)| owner.as_ref().is_some_and(|o| o.tenant_id == tenant))
            .map(|(hash, _)| *hash)
            .collect();
        for hash in stale {
            self.0.invalidate(&hash).await;
        }
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The authenticated tenant behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: TenantId,
    pub key_id: KeyId,
    pub kind: KeyKind,
    pub scopes: Vec<Scope>,
    /// The key's own limit, on top of the tenant's (publishable keys have one).
    pub rate_limit: Option<KeyLimit>,
}

/// A caller whose key holds the scope `S` (one of [`scope`]'s markers).
///
/// The scope is checked while the request head is read. Axum runs every head extractor before
/// the one body extractor, so a key lacking the scope gets its 403 before the body is parsed:
/// checking in the handler came too late, and an ingest-only key saw 422 for a bad body on an
/// admin route instead.
pub struct Authorized<S> {
    caller: Caller,
    scope: PhantomData<S>,
}

impl<S> Deref for Authorized<S> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

/// The scopes a route can require, as types for [`Authorized`].
pub mod scope {
    use tally_store::tenants::Scope;

    pub trait Required {
        const SCOPE: Scope;
        /// Whether a publishable key may call the route (only the routes that collect events).
        const PUBLISHABLE: bool = false;
    }

    pub struct Ingest;
    /// `ingest`, from a server or (publishable keys) from the tenant's web pages.
    pub struct Collect;
    pub struct Read;
    pub struct Admin;

    impl Required for Ingest {
        const SCOPE: Scope = Scope::Ingest;
    }
    impl Required for Collect {
        const SCOPE: Scope = Scope::Ingest;
        const PUBLISHABLE: bool = true;
    }
    impl Required for Read {
        const SCOPE: Scope = Scope::Read;
    }
    impl Required for Admin {
        const SCOPE: Scope = Scope::Admin;
    }
}

impl<S: scope::Required + Send> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.kind == KeyKind::Publishable && !S::PUBLISHABLE {
            return Err(ApiError::forbidden(
                "a publishable key can only send events (POST /v1/events, /v1/events/batch, \
                 /v1/segment, /v1/segment/batch); use a secret key from a server",
            ));
        }
        if !caller.scopes.contains(&S::SCOPE) {
            return Err(ApiError::forbidden(format!(
                "this API key lacks the `{}` scope",
                S::SCOPE.as_str()
            )));
        }
        Ok(Self {
            caller,
            scope: PhantomData,
        })
    }
}

/// A key as sent, and whether it came in the URL (`?key=`) rather than a header.
pub struct Presented {
    pub secret: String,
    pub in_url: bool,
}

/// The key a request carries: `Authorization` (Bearer, or Basic with the key as user name),
/// else `X-API-Key`, else the `key` query parameter.
pub fn presented(headers: &HeaderMap, uri: &Uri) -> Option<Presented> {
    let header = |secret: &str| {
        Some(Presented {
            secret: secret.trim().to_string(),
            in_url: false,
        })
    };
    if let Some(v) = headers.get(AUTHORIZATION) {
        let (scheme, token) = v.to_str().ok()?.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return header(token);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()?;
            let credentials = String::from_utf8(decoded).ok()?;
            let user = credentials
                .split_once(':')
                .map_or(&*credentials, |(u, _)| u);
            return header(user);
        }
        return None;
    }
    if let Some(v) = headers.get("x-api-key") {
        return header(v.to_str().ok()?);
    }
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    let (_, secret) = pairs.into_iter().find(|(name, _)| name == "key")?;
    Some(Presented {
        secret,
        in_url: true,
    })
}

/// The owner of a valid (known, unrevoked) key.
pub async fn owner_of(state: &AppState, secret: &str) -> Result<KeyOwner, ApiError> {
    let hash = hash_secret(secret);
    // Concurrent requests with one uncached key share one lookup: a burst of thousands
    // must not queue thousands of identical queries for the pool.
    let owner = state
        .keys
        .0
        .try_get_with(hash, state.db.find_key_owner(secret))
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    match owner {
        Some(o) if !o.revoked => Ok(o),
        Some(_) => Err(ApiError::unauthorized("this API key has been revoked")),
        None => Err(ApiError::unauthorized("unknown API key")),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = presented(&parts.headers, &parts.uri) else {
            if let Some(token) = crate::dashboard::session::token(&parts.headers) {
                return crate::dashboard::session::caller(parts, state, token).await;
            }
            return Err(ApiError::unauthorized(
                "send an API key as `Authorization: Bearer tk_...` or `X-API-Key`",
            ));
        };
        let owner = owner_of(state, &key.secret).await?;
        if key.in_url && owner.kind != KeyKind::Publishable {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "secret_key_in_url",
                "only a publishable key (pk_...) may be sent as `?key=`; a secret key in a URL \
                 ends up in logs and browser history: send it in a header, and rotate this one",
            ));
        }
        crate::browser::check_origin(state, &parts.headers, &parts.uri, &owner).await?;
        Ok(Caller {
            tenant_id: owner.tenant_id,
            key_id: owner.key_id,
            kind: owner.kind,
            scopes: owner.scopes,
            rate_limit: owner.rate_limit,
        })
    }
}

/// The installation's operator (`TALLY_ADMIN_TOKEN`), for cross-tenant administration.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.admin_token.as_deref() else {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: start Tally with TALLY_ADMIN_TOKEN set",
            ));
        };
        let presented = presented(&parts.headers, &parts.uri)
            .filter(|p| !p.in_url)
            .ok_or_else(|| {
                ApiError::unauthorized("send the operator token as `Authorization: Bearer ...`")
            })?;
        if bool::from(presented.secret.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized("invalid operator token"))
        }
    }
}
