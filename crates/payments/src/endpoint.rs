//! What the endpoint a delivery came through adds to its postings.
//!
//! Stripe, PayPal and Shopify ids are unique across all their merchants, but WooCommerce numbers
//! orders and refunds per site: two shops of one tenant both have an order 727. Its deliveries and
//! facts are therefore keyed per endpoint (one endpoint per shop), so neither shop's order is
//! dropped as the other's duplicate. Order ids are what reconciliation joins tracking on, so a
//! tenant with overlapping shops gives each endpoint an order id prefix that its tracking sends
//! too.

use crate::{Delivery, Outcome, ParseError, Source};

/// The endpoint a delivery came through, as far as it shapes the delivery's postings.
#[derive(Debug, Clone, Copy)]
pub struct EndpointScope<'a> {
    /// The vendor the endpoint takes deliveries from.
    pub source: Source,
    /// Tally's id of the endpoint.
    pub endpoint_id: &'a str,
    /// Prepended to the order id of every posting of the endpoint.
    pub order_id_prefix: Option<&'a str>,
}

impl Source {
    /// Whether the vendor's ids are unique only within one shop (WooCommerce's per-site
    /// sequences), so that they identify nothing across a tenant's endpoints.
    pub fn ids_are_per_shop(self) -> bool {
        matches!(self, Source::WooCommerce)
    }
}

impl Delivery {
    /// The delivery as `scope`'s endpoint records it: for per-shop vendors the delivery key,
    /// external ids and payment references are qualified by the endpoint id; order ids take the
    /// endpoint's prefix. Both lengthen ids, so they are checked against the inbox's and the
    /// ledger's limits again.
    pub fn for_endpoint(mut self, scope: EndpointScope<'_>) -> Result<Delivery, ParseError> {
        let per_shop = scope.source.ids_are_per_shop();
        let qualify = |id: &str| format!("{}:{id}", scope.endpoint_id);
        if per_shop {
            self.delivery_key = qualify(&self.delivery_key);
        }
        if let Outcome::Post(postings) = &mut self.outcome {
            for posting in postings.iter_mut() {
                if per_shop {
                    posting.external_id = qualify(&posting.external_id);
                    posting.payment_ref = posting.payment_ref.as_deref().map(qualify);
                }
                if let Some(prefix) = scope.order_id_prefix {
                    posting.order_id = posting.order_id.as_ref().map(|id| format!("{prefix}{id}"));
                }
            }
        }
        self.check_storable()?;
        Ok(self)
    }
}
