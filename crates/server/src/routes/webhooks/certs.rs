//! PayPal's signing certificates, fetched once per URL and kept in memory.
//!
//! PayPal names the certificate in every delivery and rotates it rarely, so fetching it per
//! delivery would add a round trip to PayPal to each one. The URL has already been allow-listed
//! (`paypal_cert_url`); a fetch failure reads as an unusable certificate, so the delivery is
//! refused and PayPal retries it later. Concurrent misses may fetch twice: harmless, and it
//! keeps the cache synchronous.

use reqwest::Url;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tally_payments::VerifyError;

/// Long enough that fetches are rare, short enough that a revoked certificate ages out.
const TTL: Duration = Duration::from_secs(24 * 3600);
/// A certificate is a few KiB; anything much larger is not one.
const MAX_PEM_BYTES: usize = 64 * 1024;

static CACHE: LazyLock<moka::sync::Cache<Url, Arc<str>>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .max_capacity(64)
        .time_to_live(TTL)
        .build()
});

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        // A redirect could leave paypal.com after the URL was checked.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client")
});

/// The PEM certificate at `url`, from the cache or fetched now.
pub(super) async fn fetch(url: Url) -> Result<Arc<str>, VerifyError> {
    if let Some(pem) = CACHE.get(&url) {
        return Ok(pem);
    }
    let unusable = |why: String| VerifyError::BadCertificate(format!("fetching {url}: {why}"));
    let response = CLIENT
        .get(url.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| unusable(e.to_string()))?;
    let body = response
        .bytes()
        .await
        .map_err(|e| unusable(e.to_string()))?;
    if body.len() > MAX_PEM_BYTES {
        return Err(unusable("response too large for a certificate".into()));
    }
    let pem: Arc<str> = String::from_utf8(body.to_vec())
        .map_err(|_| unusable("response is not text".into()))?
        .into();
    CACHE.insert(url, pem.clone());
    Ok(pem)
}
