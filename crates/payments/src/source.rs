//! The payment vendors Tally takes webhooks from.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A payment vendor. Its code is the `{source}` path segment of `POST /v1/webhooks/{source}/...`
/// and the `source` column of the delivery inbox and the ledger, so codes never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Shopify,
    Stripe,
    PayPal,
    WooCommerce,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Shopify,
        Source::Stripe,
        Source::PayPal,
        Source::WooCommerce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Shopify => "shopify",
            Source::Stripe => "stripe",
            Source::PayPal => "paypal",
            Source::WooCommerce => "woocommerce",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment source {0:?} (expected shopify, stripe, paypal or woocommerce)")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    /// Exact lowercase codes only: a URL path is not the place to be lenient, and one spelling
    /// keeps the inbox free of `Stripe`/`stripe` twins.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| UnknownSource(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(source));
            assert_eq!(
                serde_json::to_string(&source).unwrap(),
                format!("\"{source}\"")
            );
        }
        assert!("Stripe".parse::<Source>().is_err());
        assert!("square".parse::<Source>().is_err());
    }
}
