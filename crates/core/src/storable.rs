//! What PostgreSQL can store: the one check every JSON body passes before anything else.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold U+0000, while JSON can carry it as `\u0000` in
//! any string or member name. Such a value fails deep inside an insert, where the error belongs
//! to the whole transaction (a group commit of other requests, a batch, a dead letter), so it is
//! refused at the door instead, wherever it sits in the document.
//!
//! Numbers need no check here: every finite double serde_json accepts is stored exactly by
//! `jsonb` (as `numeric`) and, with serde_json's `float_roundtrip` parser, read back as the same
//! double. (`-0` comes back as `0`, the one value whose spelling changes; it compares equal.)

use crate::pointer::{self, Segment};
use serde_json::Value;

/// Where a NUL was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nul {
    /// JSON Pointer of the string holding it, or of the object whose member *name* holds it
    /// (a pointer cannot spell the name without repeating the NUL).
    pub pointer: String,
    pub in_member_name: bool,
}

/// The first string or member name holding U+0000, if any; `prefix` is prepended to the
/// pointer (e.g. `/events/3` for an event of a batch).
pub fn find_nul(value: &Value, prefix: &str) -> Option<Nul> {
    let mut path = Vec::new();
    let in_member_name = walk(value, &mut path)?;
    Some(Nul {
        pointer: pointer::render(prefix, &path),
        in_member_name,
    })
}

/// `Some(in_member_name)` when `value` holds a NUL; `path` then leads to it.
fn walk<'a>(value: &'a Value, path: &mut Vec<Segment<'a>>) -> Option<bool> {
    match value {
        Value::String(s) => s.contains('\0').then_some(false),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            path.push(Segment::Index(i));
            let found = walk(item, path);
            if found.is_none() {
                path.pop();
            }
            found
        }),
        Value::Object(members) => {
            if members.keys().any(|name| name.contains('\0')) {
                return Some(true);
            }
            members.iter().find_map(|(name, item)| {
                path.push(Segment::Key(name));
                let found = walk(item, path);
                if found.is_none() {
                    path.pop();
                }
                found
            })
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn points_at_the_first_nul_in_a_value_or_name() {
        assert_eq!(find_nul(&json!({"a": [1, "x"], "b": {}}), ""), None);
        let at = |pointer: &str, in_member_name| {
            Some(Nul {
                pointer: pointer.into(),
                in_member_name,
            })
        };
        assert_eq!(
            find_nul(&json!({"a": [1, "x\u{0}y"]}), "/events/2"),
            at("/events/2/a/1", false)
        );
        assert_eq!(
            find_nul(&json!({"p": {"k\u{0}": true}}), ""),
            at("/p", true)
        );
        assert_eq!(find_nul(&json!("\u{0}"), ""), at("", false));
    }
}
