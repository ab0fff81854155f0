//! Requests signed exactly the way each vendor signs them, the bodies they sign ([`payloads`]),
//! and the ledger's uniqueness rule as a plain fold, for this crate's tests and the server's.
//! Behind the `testing` feature: nothing here belongs in a production build.

pub mod payloads;

use crate::parse;
use crate::verify::{paypal, shopify, stripe, woocommerce};
use crate::{Posting, PostingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::Mac;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::der::asn1::UtcTime;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// Header name/value pairs, in the vendor's spelling; [`crate::Headers`] reads them directly.
pub type TestHeaders = Vec<(&'static str, String)>;

fn hmac(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    crate::verify::hmac::mac(secret, parts)
        .finalize()
        .into_bytes()
        .to_vec()
}

/// The base64 HMAC-SHA256 of the raw body, as Shopify and WooCommerce sign.
pub fn base64_hmac(secret: &[u8], body: &[u8]) -> String {
    BASE64.encode(hmac(secret, &[body]))
}

/// A Shopify delivery's headers: signature, topic and event id.
pub fn shopify_headers(secret: &[u8], topic: &str, event_id: &str, body: &[u8]) -> TestHeaders {
    vec![
        (shopify::SIGNATURE_HEADER, base64_hmac(secret, body)),
        (parse::shopify::TOPIC_HEADER, topic.to_string()),
        (parse::shopify::EVENT_ID_HEADER, event_id.to_string()),
    ]
}

/// A `Stripe-Signature` value with one `v1` per secret, as Stripe sends during a rotation.
pub fn stripe_signature(secrets: &[&[u8]], timestamp: i64, body: &[u8]) -> String {
    let signed_prefix = format!("{timestamp}.");
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        let signature = hmac(secret, &[signed_prefix.as_bytes(), body]);
        value.push_str(&format!(",v1={}", hex::encode(signature)));
    }
    value
}

/// A Stripe delivery's headers, signed at unix time `timestamp`.
pub fn stripe_headers(secret: &[u8], timestamp: i64, body: &[u8]) -> TestHeaders {
    vec![(
        stripe::SIGNATURE_HEADER,
        stripe_signature(&[secret], timestamp, body),
    )]
}

/// A WooCommerce delivery's headers: signature and topic (`order.updated`, ...).
pub fn woocommerce_headers(secret: &[u8], topic: &str, body: &[u8]) -> TestHeaders {
    vec![
        (woocommerce::SIGNATURE_HEADER, base64_hmac(secret, body)),
        (parse::woocommerce::TOPIC_HEADER, topic.to_string()),
    ]
}

/// An allowed certificate URL of the shape PayPal sends.
pub const PAYPAL_CERT_URL: &str =
    "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-tally-test";

/// Plays PayPal: an RSA key and a self-signed certificate for it, valid from 2000 to 2049 so that
/// tests choosing their own `now` stay inside it.
pub struct PayPalSigner {
    key: SigningKey<Sha256>,
    certificate_pem: String,
}

impl PayPalSigner {
    /// A fresh 2048-bit key (PayPal's size) and certificate. Key generation takes a noticeable
    /// fraction of a second; prefer [`PayPalSigner::shared`] unless a second key is the point.
    pub fn generate() -> Self {
        Self::from_key(
            RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation"),
        )
    }

    /// The same key and certificate for the same `seed`, in every process: a PayPal endpoint
    /// pins the certificate when it is created, and the demo signs again on every rerun.
    pub fn from_seed(seed: u64) -> Self {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        Self::from_key(RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation"))
    }

    fn from_key(private_key: RsaPrivateKey) -> Self {
        let public_key = SubjectPublicKeyInfoOwned::from_key(private_key.to_public_key())
            .expect("encode public key");
        let key = SigningKey::<Sha256>::new(private_key);
        let at = |unix: u64| {
            Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix)).expect("UTCTime"))
        };
        let validity = Validity {
            not_before: at(946_684_800),  // 2000-01-01T00:00:00Z
            not_after: at(2_524_607_999), // 2049-12-31T23:59:59Z
        };
        let subject = Name::from_str("CN=messageverificationcerts.paypal.com,O=Tally tests")
            .expect("subject name");
        let certificate = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(1u32),
            validity,
            subject,
            public_key,
            &key,
        )
        .and_then(|builder| builder.build::<Signature>())
        .expect("self-signed certificate");
        let certificate_pem = certificate.to_pem(LineEnding::LF).expect("PEM certificate");
        Self {
            key,
            certificate_pem,
        }
    }

    /// One signer per process, generated on first use.
    pub fn shared() -> &'static PayPalSigner {
        static SHARED: OnceLock<PayPalSigner> = OnceLock::new();
        SHARED.get_or_init(PayPalSigner::generate)
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A PayPal delivery's headers for `body` sent to the subscription `webhook_id`.
    /// `transmission_time` is PayPal's ISO 8601 text, signed as is.
    pub fn headers(
        &self,
        webhook_id: &str,
        transmission_id: &str,
        transmission_time: &str,
        body: &[u8],
    ) -> TestHeaders {
        let text = paypal::signed_text(transmission_id, transmission_time, webhook_id, body);
        let signature = self.key.sign(text.as_bytes());
        vec![
            (paypal::TRANSMISSION_ID_HEADER, transmission_id.to_string()),
            (
                paypal::TRANSMISSION_TIME_HEADER,
                transmission_time.to_string(),
            ),
            (
                paypal::SIGNATURE_HEADER,
                BASE64.encode(signature.to_bytes()),
            ),
            (paypal::CERT_URL_HEADER, PAYPAL_CERT_URL.to_string()),
            (paypal::AUTH_ALGO_HEADER, paypal::AUTH_ALGO.to_string()),
        ]
    }
}

/// The ledger's uniqueness rule as a fold: one fact per [`PostingKey`], the first posting wins,
/// exactly what the store's unique `(tenant_id, source, external_id, entry_type)` does. Tests use
/// it as the model a real ledger must agree with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    facts: BTreeMap<PostingKey, Posting>,
}

impl Ledger {
    /// Records `posting` unless its fact is already there; says whether it was new.
    pub fn apply(&mut self, posting: Posting) -> bool {
        match self.facts.entry(posting.key()) {
            Entry::Vacant(slot) => {
                slot.insert(posting);
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    pub fn postings(&self) -> impl Iterator<Item = &Posting> {
        self.facts.values()
    }

    /// Net minor units in `currency` (an ISO code, any case).
    pub fn net(&self, currency: &str) -> i64 {
        self.postings()
            .filter(|p| p.currency.as_str().eq_ignore_ascii_case(currency))
            .map(|p| p.amount_minor)
            .sum()
    }
}
