//! Answers of the read routes that dashboards poll (realtime, channels, time series,
//! reconciliation status and runs, top paths), shared by identical requests of one tenant.
//!
//! On this 2-core machine 32 clients asking for a month's channels each made the database
//! aggregate the month's rollups again: 221 ms at the median, 339 ms at p99 (`tally bench read`).
//! The answer only changes when the tenant's data does, so it is computed once and served from
//! memory until then (moka; concurrent misses of one key wait for one computation).
//!
//! An answer is keyed by the tenant, the route, the raw query string and the tenant's version in
//! [`tally_store::changes::Changes`], which every committed write of the tenant in this process
//! moves on (ingestion, webhooks, the workers that `tally serve` runs beside the API, settings).
//! So within one process a read that follows a write never gets an answer from before it.
//! Writes by other processes are not seen; the TTL bounds how stale an answer can be then, half a
//! second, which keeps the read side's promise that a conversion is visible within 1 s. A
//! transaction that only read leaves the version alone, so reads do not empty each other's
//! answers.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tally_store::{Database, TenantId};

const TTL: Duration = Duration::from_millis(500);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    route: &'static str,
    /// SHA-256 of the raw query string: a fixed size whatever a client pads its URL with.
    query: [u8; 32],
    version: u64,
}

type Answer = Arc<dyn Any + Send + Sync>;

#[derive(Clone)]
pub struct Answers(moka::future::Cache<Key, Answer>);

impl Answers {
    pub fn new() -> Self {
        Self(
            moka::future::Cache::builder()
                // Answers live half a second; this bounds memory (a month's channel table is
                // about 20 KB) when many tenants poll at once.
                .max_capacity(1024)
                .time_to_live(TTL)
                .build(),
        )
    }

    /// The answer of `route` to `query` for `tenant`: a stored one if the tenant's data has not
    /// changed since it was computed (and it is younger than the TTL), else `compute`'s. Errors
    /// are not stored. Each route must store one type `T`.
    pub async fn get<T, F>(
        &self,
        db: &Database,
        (tenant, route): (TenantId, &'static str),
        query: Option<&str>,
        compute: F,
    ) -> Result<Arc<T>, ApiError>
    where
        T: Send + Sync + 'static,
        F: Future<Output = Result<T, ApiError>>,
    {
        let key = Key {
            tenant,
            route,
            query: Sha256::digest(query.unwrap_or_default()).into(),
            version: db.changes().version(tenant),
        };
        let answer = self
            .0
            .try_get_with(
                key,
                async move { compute.await.map(|v| Arc::new(v) as Answer) },
            )
            .await
            .map_err(|e| (*e).clone())?;
        answer.downcast::<T>().map_err(|_| {
            tracing::error!(route, "two types stored under one route");
            ApiError::internal()
        })
    }

    /// [`Self::get`] for a JSON body, stored serialized.
    pub async fn json<T, F>(
        &self,
        db: &Database,
        at: (TenantId, &'static str),
        query: Option<&str>,
        compute: F,
    ) -> Result<Response, ApiError>
    where
        T: Serialize,
        F: Future<Output = Result<T, ApiError>>,
    {
        let body = self
            .get(db, at, query, async move {
                let value = compute.await?;
                serde_json::to_vec(&value).map(Bytes::from).map_err(|e| {
                    tracing::error!(error = %e, "serializing an answer");
                    ApiError::internal()
                })
            })
            .await?;
        Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::clone(&body),
        )
            .into_response())
    }
}

impl Default for Answers {
    fn default() -> Self {
        Self::new()
    }
}
