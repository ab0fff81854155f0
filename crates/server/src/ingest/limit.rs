//! Per-tenant rate limits (GCRA via `governor`), counting events: a batch of 500 costs 500.
//!
//! `tower_governor` keys by IP and counts requests, neither of which fits, so the check lives
//! here and the limiter itself is governor's. A batch over the limit is refused whole, before
//! anything is written, so retrying it later is safe. A limiter is long-lived state: it must
//! outlive every cache of the tenant's other settings (see [`super::tenant`]), or each expiry
//! would hand the tenant a fresh burst.

use crate::error::ApiError;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct TenantLimit {
    limiter: Limiter,
    per_minute: u32,
    burst: u32,
}

/// What the caller is told about its budget, on success and refusal alike.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

impl Budget {
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        [
            (
                HeaderName::from_static("ratelimit-limit"),
                self.limit.into(),
            ),
            (
                HeaderName::from_static("ratelimit-remaining"),
                self.remaining.into(),
            ),
            (
                HeaderName::from_static("ratelimit-reset"),
                self.reset_secs.into(),
            ),
        ]
    }
}

impl TenantLimit {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let per_minute_nz = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst_nz = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(Quota::per_minute(per_minute_nz).allow_burst(burst_nz))
                .with_middleware::<StateInformationMiddleware>(),
            per_minute: per_minute_nz.get(),
            burst: burst_nz.get(),
        }
    }

    /// Whether this limiter enforces these settings (else the tenant's settings changed).
    pub fn enforces(&self, per_minute: u32, burst: u32) -> bool {
        (self.per_minute, self.burst) == (per_minute.max(1), burst.max(1))
    }

    /// Takes `events` cells or refuses with 429 and the time after which a retry can succeed.
    /// A batch larger than the whole burst could never pass, so it gets a 413 that says to
    /// split it, instead of a 429 whose retry would fail forever.
    pub fn take(&self, events: usize) -> Result<Budget, ApiError> {
        let Some(n) = u32::try_from(events).ok().and_then(NonZeroU32::new) else {
            return Ok(self.budget(self.burst));
        };
        match self.limiter.check_n(n) {
            Ok(Ok(snapshot)) => Ok(self.budget(snapshot.remaining_burst_capacity())),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(self.refuse(events, wait))
            }
            Err(_) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_exceeds_burst",
                format!(
                    "{events} events exceed this tenant's burst of {} events, so this batch can never pass the rate limit; send it in batches of at most {} events",
                    self.burst, self.burst
                ),
            )),
        }
    }

    /// `reset_secs` is when the bucket is full again: each used cell comes back after one
    /// replenish interval (an upper bound within one interval, since governor reports whole
    /// remaining cells).
    fn budget(&self, remaining: u32) -> Budget {
        let used = self.burst.saturating_sub(remaining);
        let interval = Duration::from_secs(60) / self.per_minute;
        Budget {
            limit: self.per_minute,
            remaining,
            reset_secs: ceil_secs(interval * used),
        }
    }

    fn refuse(&self, events: usize, wait: Duration) -> ApiError {
        metrics::counter!("tally_rate_limited_events_total").increment(events as u64);
        let secs = ceil_secs(wait);
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "rate limit of {} events per minute (burst {}) reached; retry after {secs} s, nothing was written",
                self.per_minute, self.burst
            ),
        )
        .with_header(header::RETRY_AFTER, secs.into());
        let budget = Budget {
            limit: self.per_minute,
            remaining: 0,
            reset_secs: secs,
        };
        for (name, value) in budget.headers() {
            err = err.with_header(name, value);
        }
        err
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
