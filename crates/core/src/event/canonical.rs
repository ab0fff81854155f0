//! Canonical JSON: one byte string per JSON value, whatever the key order or whitespace it was
//! sent with.
//!
//! Idempotency compares payloads by the SHA-256 of this form. It is the *submitted* payload that
//! is hashed, not the normalised event: "same parameters" in Stripe's sense means what the
//! client sent, and a normalisation change (new channel rules, say) must not turn yesterday's
//! retry into a conflict.
//!
//! The form is compact JSON with object members sorted by key (byte order of the UTF-8), at
//! every depth. Strings use serde_json's escaping; numbers are written as serde_json parsed
//! them, so `1.50` and `1.5` hash alike (both are the double 1.5) but `1` and `1.0` do not.
//! This is close to, but not, RFC 8785: the hash never leaves Tally, so only stability matters.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `value` in canonical form.
pub fn to_canonical_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, &Canonical(value))
        .expect("a JSON value always serialises into memory");
    out
}

/// SHA-256 of the canonical form of `value`.
pub fn canonical_sha256(value: &Value) -> [u8; 32] {
    Sha256::digest(to_canonical_vec(value)).into()
}

struct Canonical<'a>(&'a Value);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(members) => {
                let mut sorted: Vec<_> = members.iter().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = serializer.serialize_map(Some(sorted.len()))?;
                for (key, value) in sorted {
                    map.serialize_entry(key, &Canonical(value))?;
                }
                map.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Canonical)),
            leaf => leaf.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_is_dropped() {
        let value: Value = serde_json::from_str(
            r#"{ "b": [ {"z": 1, "a": "x\n"} ], "a": {"d": null, "c": 1.50} }"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(to_canonical_vec(&value)).unwrap(),
            r#"{"a":{"c":1.5,"d":null},"b":[{"a":"x\n","z":1}]}"#
        );
    }

    #[test]
    fn hash_ignores_order_but_not_content() {
        let one =
            json!({"type": "purchase", "revenue": "19.99", "properties": {"a": 1, "b": [1, 2]}});
        let reordered: Value = serde_json::from_str(
            r#"{"properties":{"b":[1,2],"a":1},
                "revenue":"19.99","type":"purchase"}"#,
        )
        .unwrap();
        assert_eq!(canonical_sha256(&one), canonical_sha256(&reordered));
        for changed in [
            json!({"type": "purchase", "revenue": "19.98", "properties": {"a": 1, "b": [1, 2]}}),
            json!({"type": "purchase", "revenue": 19.99, "properties": {"a": 1, "b": [1, 2]}}),
            json!({"type": "purchase", "revenue": "19.99", "properties": {"a": 1, "b": [2, 1]}}),
            json!({"type": "purchase", "revenue": "19.99", "properties": {"a": 1}}),
        ] {
            assert_ne!(
                canonical_sha256(&one),
                canonical_sha256(&changed),
                "{changed}"
            );
        }
    }
}
