//! Case-insensitive header lookup, so the domain needs no HTTP framework.

/// Read access to request headers by name, ignoring ASCII case (HTTP header names are
/// case-insensitive, and vendors document them in whatever case they like).
///
/// Implemented for `http::HeaderMap` (what axum hands the server) and for lists of name/value
/// pairs (what tests and the `testing` module build). A value that is not visible ASCII reads as
/// absent: no vendor sends one, so it is as good as missing.
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)?.to_str().ok()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

/// The header `name`, or the caller's error for its absence.
pub(crate) fn required<'h, E>(
    headers: &'h dyn Headers,
    name: &'static str,
    missing: impl FnOnce(&'static str) -> E,
) -> Result<&'h str, E> {
    headers.header(name).ok_or_else(|| missing(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case() {
        let pairs = vec![("x-shopify-topic", "orders/paid")];
        assert_eq!(pairs.header("X-Shopify-Topic"), Some("orders/paid"));
        assert_eq!(pairs.header("X-Shopify-Event-Id"), None);

        let mut map = http::HeaderMap::new();
        map.insert("x-wc-webhook-topic", "order.updated".parse().unwrap());
        map.insert("x-bad", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        assert_eq!(map.header("X-WC-Webhook-Topic"), Some("order.updated"));
        assert_eq!(map.header("X-Bad"), None);
    }
}
