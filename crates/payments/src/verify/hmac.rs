//! The HMAC-SHA256 core shared by Shopify, Stripe and WooCommerce.

use super::{Verified, VerifyError};
use crate::Headers;
use crate::headers::required;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `secret` over the concatenation of `parts`. Parts, because Stripe signs
/// `"{t}.{body}"` and a body may be a megabyte not worth copying.
pub(crate) fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Which secret, if any, produced one of `signatures` over `parts`. Each comparison is constant
/// time (`verify_slice`), so response timing tells an attacker nothing about how close a forged
/// signature came; which secret matched is no secret.
pub(crate) fn matching_key(
    secrets: &[&[u8]],
    parts: &[&[u8]],
    signatures: &[Vec<u8>],
) -> Result<Verified, VerifyError> {
    secrets
        .iter()
        .position(|secret| {
            let expected = mac(secret, parts);
            signatures
                .iter()
                .any(|signature| expected.clone().verify_slice(signature).is_ok())
        })
        .map(|key_index| Verified::Signed { key_index })
        .ok_or(VerifyError::BadSignature)
}

/// Shopify's and WooCommerce's scheme: one header holding the base64 HMAC of the raw body.
pub(crate) fn verify_base64_header(
    headers: &dyn Headers,
    header: &'static str,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<Verified, VerifyError> {
    let value = required(headers, header, VerifyError::MissingHeader)?;
    let signature = BASE64
        .decode(value.trim())
        .map_err(|_| VerifyError::MalformedHeader {
            header,
            reason: "not base64",
        })?;
    matching_key(secrets, &[body], &[signature])
}
