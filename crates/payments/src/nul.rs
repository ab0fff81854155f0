//! NUL characters in JSON: a valid `\u0000` escape (PHP's `json_encode` writes them for binary
//! data), which neither PostgreSQL's `text` nor its `jsonb` can hold.

use serde_json::Value;

/// Whether any string or member name in `value` holds U+0000.
pub(crate) fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(members) => members
            .iter()
            .any(|(key, member)| key.contains('\0') || contains_nul(member)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Removes every U+0000 from the strings and member names of `value`, so that a delivery refused
/// for holding one can still be kept (dead-lettered) for inspection.
pub fn strip_nul(value: &mut Value) {
    match value {
        Value::String(s) => s.retain(|c| c != '\0'),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(members) => {
            if members.keys().any(|key| key.contains('\0')) {
                *members = std::mem::take(members)
                    .into_iter()
                    .map(|(key, member)| (key.replace('\0', ""), member))
                    .collect();
            }
            members.values_mut().for_each(strip_nul);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_and_strips_nul_in_values_and_names() {
        let mut value: Value =
            serde_json::from_str(r#"{"a": ["x\u0000y"], "b\u0000": {"c": 1}}"#).unwrap();
        assert!(contains_nul(&value));
        strip_nul(&mut value);
        assert!(!contains_nul(&value));
        assert_eq!(value, json!({"a": ["xy"], "b": {"c": 1}}));
        assert!(!contains_nul(&json!({"a": "no nul", "n": 0})));
    }
}
