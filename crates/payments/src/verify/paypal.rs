//! PayPal: RSA-SHA256 (PKCS#1 v1.5) over
//! `"{transmission_id}|{transmission_time}|{webhook_id}|{crc32(raw body)}"`, with PayPal's key
//! taken from the X.509 certificate at `PAYPAL-CERT-URL`.
//!
//! The certificate URL arrives in the request, so an attacker chooses it: only HTTPS URLs on
//! PayPal's own domain may be fetched, or anyone could sign with a certificate of their own.
//! No freshness check on the transmission time: PayPal's retry schedule is not documented well
//! enough to pick a window, and a replayed delivery only finds its postings already in the ledger.

use super::{Verified, VerifyError};
use crate::Headers;
use crate::headers::required;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::Sha256;
use url::{Host, Url};
use x509_cert::Certificate;
use x509_cert::der::DecodePem;
use x509_cert::der::referenced::OwnedToRef;
use x509_cert::time::Time;

pub(crate) const TRANSMISSION_ID_HEADER: &str = "PAYPAL-TRANSMISSION-ID";
pub(crate) const TRANSMISSION_TIME_HEADER: &str = "PAYPAL-TRANSMISSION-TIME";
pub(crate) const SIGNATURE_HEADER: &str = "PAYPAL-TRANSMISSION-SIG";
pub(crate) const CERT_URL_HEADER: &str = "PAYPAL-CERT-URL";
pub(crate) const AUTH_ALGO_HEADER: &str = "PAYPAL-AUTH-ALGO";
/// The only algorithm PayPal signs webhooks with; anything else is refused rather than guessed.
pub(crate) const AUTH_ALGO: &str = "SHA256withRSA";

const ALLOWED_DOMAIN: &str = "paypal.com";

/// The certificate URL of a PayPal delivery, once it is known to be safe to fetch.
pub fn paypal_cert_url(headers: &dyn Headers) -> Result<Url, VerifyError> {
    validate_cert_url(required(
        headers,
        CERT_URL_HEADER,
        VerifyError::MissingHeader,
    )?)
}

/// Allows only `https://` URLs whose host is `paypal.com` or a subdomain of it, on the default
/// port, without userinfo. The host is compared after WHATWG URL parsing, never as a substring,
/// so `paypal.com.evil.com`, `evilpaypal.com` and `https://paypal.com@evil.com` all fail.
pub fn validate_cert_url(raw: &str) -> Result<Url, VerifyError> {
    let not_allowed = || VerifyError::CertUrlNotAllowed(raw.to_string());
    let url = Url::parse(raw).map_err(|_| not_allowed())?;
    let on_paypal = match url.host() {
        Some(Host::Domain(host)) => {
            host == ALLOWED_DOMAIN
                || host
                    .strip_suffix(ALLOWED_DOMAIN)
                    .is_some_and(|sub| sub.ends_with('.'))
        }
        _ => false,
    };
    let plain = url.username().is_empty() && url.password().is_none() && url.port().is_none();
    if url.scheme() == "https" && on_paypal && plain {
        Ok(url)
    } else {
        Err(not_allowed())
    }
}

pub(crate) fn verify(
    headers: &dyn Headers,
    body: &[u8],
    webhook_id: &str,
    certificate_pem: &str,
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    let algorithm = required(headers, AUTH_ALGO_HEADER, VerifyError::MissingHeader)?;
    if algorithm != AUTH_ALGO {
        return Err(VerifyError::UnsupportedAlgorithm(algorithm.to_string()));
    }
    let transmission_id = required(headers, TRANSMISSION_ID_HEADER, VerifyError::MissingHeader)?;
    let transmission_time = required(
        headers,
        TRANSMISSION_TIME_HEADER,
        VerifyError::MissingHeader,
    )?;
    let signature = BASE64
        .decode(required(headers, SIGNATURE_HEADER, VerifyError::MissingHeader)?.trim())
        .map_err(|_| VerifyError::MalformedHeader {
            header: SIGNATURE_HEADER,
            reason: "not base64",
        })?;
    let signature =
        Signature::try_from(signature.as_slice()).map_err(|_| VerifyError::BadSignature)?;
    let key = certificate_key(certificate_pem, now)?;
    let message = signed_text(transmission_id, transmission_time, webhook_id, body);
    key.verify(message.as_bytes(), &signature)
        .map_err(|_| VerifyError::BadSignature)?;
    Ok(Verified::Signed { key_index: 0 })
}

/// The text PayPal signs. The CRC32 is printed as an unsigned decimal, as PayPal's SDKs do; a
/// signed rendering would differ for every body whose CRC has its top bit set.
pub(crate) fn signed_text(
    transmission_id: &str,
    transmission_time: &str,
    webhook_id: &str,
    body: &[u8],
) -> String {
    let crc = crc32fast::hash(body);
    format!("{transmission_id}|{transmission_time}|{webhook_id}|{crc}")
}

fn certificate_key(pem: &str, now: DateTime<Utc>) -> Result<VerifyingKey<Sha256>, VerifyError> {
    let certificate = Certificate::from_pem(pem.as_bytes())
        .map_err(|e| VerifyError::BadCertificate(e.to_string()))?;
    let tbs = &certificate.tbs_certificate;
    let unix = |time: Time| i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    let now = now.timestamp();
    if now < unix(tbs.validity.not_before) || now > unix(tbs.validity.not_after) {
        return Err(VerifyError::CertificateExpired);
    }
    let public_key = RsaPublicKey::try_from(tbs.subject_public_key_info.owned_to_ref())
        .map_err(|e| VerifyError::BadCertificate(e.to_string()))?;
    Ok(VerifyingKey::new(public_key))
}
