//! Is this request really from the vendor? Answered over the raw body bytes, in constant time.
//!
//! Secrets come as a list so a rotation never drops a delivery: Shopify keeps signing with the old
//! secret for up to an hour after a rotation and Stripe sends one `v1` per live secret, so the
//! endpoint keeps its previous secret valid for a grace period and [`Verified::Signed`] says which
//! one matched (the server can retire the old secret once nothing uses it).

pub(crate) mod hmac;
pub(crate) mod paypal;
pub(crate) mod shopify;
pub(crate) mod stripe;
pub(crate) mod woocommerce;

use crate::{Headers, Source};
use chrono::{DateTime, TimeDelta, Utc};

/// How far a Stripe signature's timestamp may be from `now`: Stripe's own libraries' default,
/// which bounds how long a captured request can be replayed.
pub const STRIPE_TOLERANCE: TimeDelta = TimeDelta::seconds(300);

/// What an endpoint verifies its deliveries with.
#[derive(Debug, Clone, Copy)]
pub enum VerifyingKeys<'a> {
    /// Shopify, Stripe and WooCommerce: shared secrets, current first, then any previous one
    /// still inside its rotation grace period.
    Secrets(&'a [&'a [u8]]),
    /// PayPal signs with its own RSA key; what ties a delivery to this endpoint is the id PayPal
    /// gave the endpoint's webhook subscription, which is part of the signed text.
    PayPal {
        webhook_id: &'a str,
        /// The PEM certificate behind `PAYPAL-CERT-URL` (fetched over HTTPS from a URL that
        /// [`paypal_cert_url`](crate::paypal_cert_url) allowed, and cached), or the one
        /// configured on the endpoint. Trust comes from where it was fetched; no chain is built
        /// here.
        certificate_pem: &'a str,
    },
}

/// A delivery that passed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Signed with `VerifyingKeys::Secrets[key_index]` (always 0 for PayPal's single key).
    Signed { key_index: usize },
    /// WooCommerce's unsigned `webhook_id=N` ping, sent once when a webhook is created. It moves
    /// no money, so it needs no signature; answer 200 or WooCommerce refuses to save the webhook.
    WooCommercePing { webhook_id: u64 },
}

/// Why a request is not trusted. [`VerifyError::code`] is stable and goes into problem+json
/// responses and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("signature does not match any configured key")]
    BadSignature,
    #[error("signature timestamp is {skew_secs} s away from now, beyond the tolerance")]
    StaleTimestamp { skew_secs: u64 },
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("unusable certificate: {0}")]
    BadCertificate(String),
    #[error("certificate is expired or not yet valid")]
    CertificateExpired,
    #[error("certificate URL {0:?} is not an https URL on paypal.com")]
    CertUrlNotAllowed(String),
    #[error("the endpoint has no signing secret configured")]
    NoKeys,
    #[error("the endpoint's keys are not the kind {0} signs with")]
    KeysMismatch(Source),
}

impl VerifyError {
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::MalformedHeader { .. } => "malformed_header",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::StaleTimestamp { .. } => "stale_timestamp",
            VerifyError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            VerifyError::BadCertificate(_) => "bad_certificate",
            VerifyError::CertificateExpired => "certificate_expired",
            VerifyError::CertUrlNotAllowed(_) => "cert_url_not_allowed",
            VerifyError::NoKeys => "no_keys_configured",
            VerifyError::KeysMismatch(_) => "keys_mismatch",
        }
    }
}

/// Checks that `body`, exactly as received, was signed by `source` with one of `keys`. `now` is
/// the server's clock (Stripe's replay window, PayPal's certificate validity), passed in so tests
/// control time.
pub fn verify(
    source: Source,
    headers: &dyn Headers,
    body: &[u8],
    keys: VerifyingKeys<'_>,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    match (source, keys) {
        (_, VerifyingKeys::Secrets([])) => Err(VerifyError::NoKeys),
        (Source::Shopify, VerifyingKeys::Secrets(secrets)) => {
            shopify::verify(headers, body, secrets)
        }
        (Source::Stripe, VerifyingKeys::Secrets(secrets)) => {
            stripe::verify(headers, body, secrets, now, STRIPE_TOLERANCE)
        }
        (Source::WooCommerce, VerifyingKeys::Secrets(secrets)) => {
            woocommerce::verify(headers, body, secrets)
        }
        (
            Source::PayPal,
            VerifyingKeys::PayPal {
                webhook_id,
                certificate_pem,
            },
        ) => paypal::verify(headers, body, webhook_id, certificate_pem, now),
        (source, _) => Err(VerifyError::KeysMismatch(source)),
    }
}
