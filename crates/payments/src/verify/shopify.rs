//! Shopify: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body.

use super::{Verified, VerifyError, hmac};
use crate::Headers;

pub(crate) const SIGNATURE_HEADER: &str = "X-Shopify-Hmac-Sha256";

pub(crate) fn verify(
    headers: &dyn Headers,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<Verified, VerifyError> {
    hmac::verify_base64_header(headers, SIGNATURE_HEADER, body, secrets)
}
