//! Signed requests and the verify-then-parse pipeline the server runs, over the vendor-shaped
//! bodies of `tally_payments::testing::payloads` (shared with the server's HTTP tests, and
//! re-exported here with their clock, [`now`], at which these tests verify).

pub use tally_payments::testing::payloads::*;
use tally_payments::testing::{
    PayPalSigner, TestHeaders, shopify_headers, stripe_headers, woocommerce_headers,
};
use tally_payments::{Delivery, ParseError, Source, Verified, VerifyingKeys, parse, verify};

pub const SECRET: &[u8] = b"whsec_current_0123456789";
pub const OLD_SECRET: &[u8] = b"whsec_previous_9876543210";
pub const PAYPAL_WEBHOOK_ID: &str = "1JE4291016473214C";

/// A request as it reaches the server.
#[derive(Debug, Clone)]
pub struct Request {
    pub source: Source,
    pub headers: TestHeaders,
    pub body: Vec<u8>,
}

/// Signs `body` as `source` would, with [`SECRET`] (or PayPal's shared test key). `id` is the
/// vendor's delivery id where it travels in a header (Shopify's event id, PayPal's transmission
/// id), ignored otherwise.
pub fn signed(source: Source, topic: &str, id: &str, body: Vec<u8>) -> Request {
    let headers = match source {
        Source::Shopify => shopify_headers(SECRET, topic, id, &body),
        Source::Stripe => stripe_headers(SECRET, now().timestamp(), &body),
        Source::PayPal => {
            PayPalSigner::shared().headers(PAYPAL_WEBHOOK_ID, id, "2026-11-20T11:59:58Z", &body)
        }
        Source::WooCommerce => woocommerce_headers(SECRET, topic, &body),
    };
    Request {
        source,
        headers,
        body,
    }
}

pub fn keys(source: Source) -> VerifyingKeys<'static> {
    match source {
        Source::PayPal => VerifyingKeys::PayPal {
            webhook_id: PAYPAL_WEBHOOK_ID,
            certificate_pem: PayPalSigner::shared().certificate_pem(),
        },
        _ => VerifyingKeys::Secrets(&[SECRET]),
    }
}

/// What the server does with a request: verify, then parse. Verification must pass.
pub fn ingest(request: &Request) -> Result<Delivery, ParseError> {
    let verified = verify(
        request.source,
        &request.headers,
        &request.body,
        keys(request.source),
        now(),
    );
    assert_eq!(verified, Ok(Verified::Signed { key_index: 0 }));
    parse(request.source, &request.headers, &request.body)
}
