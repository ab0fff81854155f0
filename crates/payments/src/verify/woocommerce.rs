//! WooCommerce: `X-WC-Webhook-Signature` is the base64 HMAC-SHA256 of the raw body, except for
//! the creation ping, which is not signed at all.

use super::{Verified, VerifyError, hmac};
use crate::Headers;

pub(crate) const SIGNATURE_HEADER: &str = "X-WC-Webhook-Signature";

pub(crate) fn verify(
    headers: &dyn Headers,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<Verified, VerifyError> {
    // Only an unsigned request can be the ping: a signed one is checked like any delivery, so a
    // forged signature never turns into a 200 by looking like a ping.
    if headers.header(SIGNATURE_HEADER).is_none()
        && let Some(webhook_id) = creation_ping(body)
    {
        return Ok(Verified::WooCommercePing { webhook_id });
    }
    hmac::verify_base64_header(headers, SIGNATURE_HEADER, body, secrets)
}

/// WooCommerce posts exactly `webhook_id=N`, form-encoded, when a webhook is saved.
fn creation_ping(body: &[u8]) -> Option<u64> {
    let mut pairs = url::form_urlencoded::parse(body);
    let (name, value) = pairs.next()?;
    if name != "webhook_id" || pairs.next().is_some() {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_the_creation_ping() {
        assert_eq!(creation_ping(b"webhook_id=42"), Some(42));
        assert_eq!(creation_ping(b"webhook_id=42&x=1"), None);
        assert_eq!(creation_ping(b"webhook_id=abc"), None);
        assert_eq!(creation_ping(b"{\"id\":42}"), None);
        assert_eq!(creation_ping(b""), None);
    }
}
