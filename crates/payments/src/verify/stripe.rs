//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, each `v1` the lowercase hex
//! HMAC-SHA256 of `"{t}.{raw body}"` under one of the account's live secrets.

use super::{Verified, VerifyError, hmac};
use crate::Headers;
use crate::headers::required;
use chrono::{DateTime, TimeDelta, Utc};

pub(crate) const SIGNATURE_HEADER: &str = "Stripe-Signature";

pub(crate) fn verify(
    headers: &dyn Headers,
    body: &[u8],
    secrets: &[&[u8]],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<Verified, VerifyError> {
    let header = SignatureHeader::parse(required(
        headers,
        SIGNATURE_HEADER,
        VerifyError::MissingHeader,
    )?)?;
    // The signed text uses `t` exactly as sent, not re-formatted from the parsed number.
    let verified = hmac::matching_key(
        secrets,
        &[header.timestamp_text.as_bytes(), b".", body],
        &header.signatures,
    )?;
    // Checked after the signature, so a stale error means "authentic but replayed or delayed".
    let skew_secs = now.timestamp().abs_diff(header.timestamp);
    if skew_secs > tolerance.num_seconds().unsigned_abs() {
        return Err(VerifyError::StaleTimestamp { skew_secs });
    }
    Ok(verified)
}

struct SignatureHeader<'h> {
    timestamp_text: &'h str,
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

impl<'h> SignatureHeader<'h> {
    /// Like Stripe's libraries: unknown schemes (`v0`, future ones) are ignored, a `v1` that is
    /// not hex simply matches nothing, but a header without exactly one `t` or without any `v1`
    /// is malformed.
    fn parse(value: &'h str) -> Result<Self, VerifyError> {
        let malformed = |reason| VerifyError::MalformedHeader {
            header: SIGNATURE_HEADER,
            reason,
        };
        let mut timestamp_text = None;
        let mut signatures = Vec::new();
        let mut any_v1 = false;
        for (key, value) in value
            .split(',')
            .filter_map(|item| item.trim().split_once('='))
        {
            match key {
                "t" if timestamp_text.replace(value).is_some() => {
                    return Err(malformed("more than one t"));
                }
                "v1" => {
                    any_v1 = true;
                    signatures.extend(hex::decode(value).ok());
                }
                _ => {}
            }
        }
        let timestamp_text = timestamp_text.ok_or_else(|| malformed("no t"))?;
        let timestamp = timestamp_text
            .parse()
            .map_err(|_| malformed("t is not a unix timestamp"))?;
        if !any_v1 {
            return Err(malformed("no v1 signature"));
        }
        Ok(Self {
            timestamp_text,
            timestamp,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> &'static str {
        match SignatureHeader::parse(value) {
            Err(VerifyError::MalformedHeader { reason, .. }) => reason,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => "ok",
        }
    }

    #[test]
    fn header_parsing() {
        assert_eq!(reason("t=1,v1=00ff"), "ok");
        assert_eq!(reason("t=1, v1=00ff, v0=zz, v1=nothex"), "ok");
        assert_eq!(reason("v1=00ff"), "no t");
        assert_eq!(reason("t=1"), "no v1 signature");
        assert_eq!(reason("t=1,t=2,v1=00"), "more than one t");
        assert_eq!(reason("t=soon,v1=00"), "t is not a unix timestamp");
        assert_eq!(reason(""), "no t");

        let parsed = SignatureHeader::parse("t=1, v1=00ff, v0=aa, v1=nothex,v1=01").unwrap();
        assert_eq!(parsed.signatures, vec![vec![0, 255], vec![1]]);
    }
}
